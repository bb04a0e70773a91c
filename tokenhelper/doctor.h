// `mailoauth doctor [ACCOUNT]`: looks over one machine's set-up the way an
// administrator would after a failed login, and says for each thing what
// is wrong and what to do next.  It changes nothing and never talks to the
// identity provider: the configuration file, the store and its accounts,
// the SASL plugin directory (is libmailoauth.so there, does another module
// shadow its XOAUTH2), the helper the plugin runs, and the agent the plugin
// asks (is it there, who runs it, does it serve the configured accounts to
// the caller).  It never prints a token.
#ifndef MAILOAUTH_TOKENHELPER_DOCTOR_H
#define MAILOAUTH_TOKENHELPER_DOCTOR_H

#include <cstdint>
#include <string>
#include <vector>

#include "tokenhelper/settings.h"
#include "tokenhelper/store.h"

namespace mailoauth::doctor {

enum class Level { Ok, Note, Problem };

struct Finding {
    Level level = Level::Ok;
    std::string text;     // one line for a person: what, and the next step
    bool relogin = false; // a problem only `mailoauth login` fixes
};

// Refresh tokens Microsoft has not seen used for this long expire (the
// Microsoft provider's refresh_lifetime; doctor uses the record's provider).
constexpr std::int64_t kRefreshTokenLifetime = 90 * 86400;
// From this age on, doctor reminds the user to use the account.
constexpr std::int64_t kRefreshTokenWarnAge = 80 * 86400;

// The findings about one stored account at time now (pure, for tests).
std::vector<Finding> check_record(const AccountRecord& r, long refresh_margin, std::int64_t now);

// An app-only account (client credentials): its credential, the
// certificate's expiry, the last failure (pure but for reading a
// credential_from path).
std::vector<Finding> check_app_record(const AccountRecord& r, long refresh_margin, std::int64_t now);
// The Exchange steps most often missing and the server-reply table, as
// notes, for `doctor ACCOUNT` on an app-only account.
std::vector<Finding> app_account_advice(const AccountRecord& r);

// The findings about a SASL plugin directory list ("DIR:DIR", as SASL_PATH).
std::vector<Finding> check_plugin_dirs(const std::string& dirs);

// Runs every check, prints the findings to stdout and returns the exit
// status: 0 when nothing is wrong, 77 when the only problems need a new
// sign-in, 78 otherwise.
int run(const GlobalOptions& opts, const std::string& account);

}  // namespace mailoauth::doctor

#endif
