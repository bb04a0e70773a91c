// Where each setting of the helper comes from.  Precedence, highest first:
// the command line, the account's record in the store (written at login),
// mailoauth.conf ([account NAME] then global), built-in defaults.
#ifndef MAILOAUTH_TOKENHELPER_SETTINGS_H
#define MAILOAUTH_TOKENHELPER_SETTINGS_H

#include <optional>
#include <string>

#include "common/config.h"
#include "tokenhelper/http.h"

namespace mailoauth {

constexpr long kDefaultRefreshMargin = 600;   // Exchange rejects tokens about to expire
constexpr long kDefaultHttpTimeout = 30;      // seconds, per request

// Options that apply to every verb.
struct GlobalOptions {
    std::string store_dir;       // --store
    std::string config_path;     // --config
    long http_timeout = 0;       // --http-timeout, 0: from config or default
    long refresh_margin = -1;    // --refresh-margin, -1: from config or default
};

// The loaded configuration plus the resolved global values.
struct Environment {
    config::Config cfg;
    std::string store_dir;
    long http_timeout = kDefaultHttpTimeout;
    // Returns the refresh margin for account (command line, config, default).
    long refresh_margin(const std::string& account) const;
    long cli_refresh_margin = -1;
};

// Loads the config file (MAILOAUTH_CONFIG, --config, or the system file,
// which may be missing) and resolves the store directory.  On failure
// returns false with a message naming the file and line.
bool load_environment(const GlobalOptions& opts, Environment& env, std::string& err);

// The documented precedence of a setting, as one pure function: the
// command line, then the account's stored record, then mailoauth.conf
// ([account NAME], then the global part), then the default (the
// provider's or the built-in one).  A record field that is empty counts as
// not stored; a command-line or configuration value counts even when empty.
enum class SettingSource { CommandLine, Record, ConfigAccount, ConfigGlobal, Default };

struct SettingInputs {
    std::optional<std::string> command_line;
    std::optional<std::string> record;
    std::optional<std::string> config_account;
    std::optional<std::string> config_global;
    std::string fallback;
};

struct Setting {
    std::string value;
    SettingSource source = SettingSource::Default;
};

Setting resolve_setting(const SettingInputs& in);

// "command line", "stored record", "mailoauth.conf [account]", ... for
// messages and tests.
const char* setting_source_name(SettingSource s);

// The configuration part of SettingInputs: key in [account NAME] and in
// the global part of cfg.
void config_inputs(const config::Config& cfg, const std::string& account, const std::string& key,
                   SettingInputs& in);

// Joins repeated --scope values and turns commas into spaces.
std::string normalize_scope(const std::string& scope);

// HTTP options for talking to an account's identity provider.
HttpOptions http_options(const Environment& env, const std::string& ca_file, bool allow_insecure_http);

}  // namespace mailoauth

#endif
