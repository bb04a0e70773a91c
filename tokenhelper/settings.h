// Where each setting of the helper comes from.  Precedence, highest first:
// the command line, the account's record in the store (written at login),
// mailoauth.conf ([account NAME] then global), built-in defaults.
#ifndef MAILOAUTH_TOKENHELPER_SETTINGS_H
#define MAILOAUTH_TOKENHELPER_SETTINGS_H

#include <string>

#include "common/config.h"
#include "tokenhelper/http.h"

namespace mailoauth {

constexpr const char* kDefaultScope =
    "https://outlook.office.com/IMAP.AccessAsUser.All "
    "https://outlook.office.com/POP.AccessAsUser.All "
    "https://outlook.office.com/SMTP.Send "
    "offline_access";
constexpr const char* kDefaultTenant = "organizations";
constexpr const char* kMicrosoftLogin = "https://login.microsoftonline.com";
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

// "https://login.microsoftonline.com/TENANT" unless an authority is given;
// trailing slashes removed.
std::string make_authority(const std::string& authority, const std::string& tenant);

// Joins repeated --scope values and turns commas into spaces.
std::string normalize_scope(const std::string& scope);

// HTTP options for talking to an account's identity provider.
HttpOptions http_options(const Environment& env, const std::string& ca_file, bool allow_insecure_http);

}  // namespace mailoauth

#endif
