// mailoauth.conf: the configuration file shared by the SASL plugin and the
// token helper (format in mailoauth.conf(5)).
//
//   # comment
//   key = value                 global settings and account defaults
//   [account NAME]              settings for one account
//   key = value
//
// Parsing is strict and reports "file:line: what is wrong" so an
// administrator can fix the file without guessing.  The parser is pure (no
// I/O besides load_file) and bounded, so the plugin can use it inside any
// process.
#ifndef MAILOAUTH_COMMON_CONFIG_H
#define MAILOAUTH_COMMON_CONFIG_H

#include <cstddef>
#include <map>
#include <string>
#include <string_view>

namespace mailoauth::config {

constexpr std::size_t kMaxFile = 1 << 20;
constexpr std::size_t kMaxLine = 4096;

struct Entry {
    std::string value;
    int line = 0;
};

using Section = std::map<std::string, Entry>;

struct Config {
    std::string path;                         // where it came from, for messages
    Section global;
    std::map<std::string, Section> accounts;  // by account name

    // The value for key in account's section, else the global one, else
    // nullptr.  Account may be empty for global-only lookups.
    const Entry* lookup(std::string_view account, std::string_view key) const;
    std::string get(std::string_view account, std::string_view key, std::string_view fallback) const;
};

struct Error {
    std::string path;
    int line = 0;              // 0: not tied to a line
    std::string message;
    std::string describe() const;  // "path:line: message"
};

// Parses text.  Returns false and fills err on the first problem.
bool parse(std::string_view text, const std::string& path, Config& out, Error& err);

// Reads and parses path.  When the file does not exist and missing_ok is
// true, returns true with an empty configuration.
bool load_file(const std::string& path, bool missing_ok, Config& out, Error& err);

// Parses an integer setting in [min, max]; on failure fills err.
bool get_int(const Config& cfg, std::string_view account, std::string_view key, long min, long max,
             long fallback, long& out, Error& err);

// Whether this process runs in secure-execution mode (AT_SECURE: setuid,
// setgid or file capabilities).  The plugin lives in every program that
// calls libsasl2, some of them setuid or setgid: there the environment
// belongs to the caller and is not trusted (libsasl2 likewise ignores
// SASL_PATH).  Every variable below is read with secure_getenv.
bool secure_execution();

// The configuration file to use: $MAILOAUTH_CONFIG, else
// SYSCONFDIR/mailoauth.conf ($MAILOAUTH_CONFIG is not read in a
// secure-execution process).  explicit_ is set when it came from the
// environment (a missing explicit file is an error, a missing default is not).
std::string default_path(bool& explicit_);

// The helper program the SASL plugin runs: $MAILOAUTH_HELPER (not in a
// secure-execution process), else
// `helper` in cfg, else BINDIR/mailoauth.  One decision for the plugin and
// for `mailoauth doctor`, which reports what the plugin will do.
struct HelperChoice {
    std::string path;
    std::string origin;  // "MAILOAUTH_HELPER", "helper in FILE:LINE" or "the default helper"
    std::string error;   // set when path is not absolute (the plugin refuses it)
};
HelperChoice plugin_helper(const Config& cfg);

}  // namespace mailoauth::config

#endif
