// Exit codes (sysexits) and plain-words explanations of identity-provider
// errors, with the next step a person should take.
#ifndef MAILOAUTH_TOKENHELPER_ERRORS_H
#define MAILOAUTH_TOKENHELPER_ERRORS_H

#include <string>

#include "tokenhelper/oauth.h"

namespace mailoauth {

enum ExitCode {
    kExitOk = 0,
    kExitUsage = 64,     // EX_USAGE: bad command line
    kExitDataErr = 65,   // EX_DATAERR: bad input (protocol, store contents)
    kExitTempFail = 75,  // EX_TEMPFAIL: network, timeout, 5xx, 429: try later
    kExitNoPerm = 77,    // EX_NOPERM: sign in again (mailoauth login)
    kExitConfig = 78,    // EX_CONFIG: app registration, tenant, consent, store
};

struct Explanation {
    int exit_code = kExitTempFail;
    std::string error;        // short machine word for protocol v1 "error"
    std::string message;      // plain words and the next step, one paragraph
};

// Classifies and explains an error reply of the token or devicecode
// endpoint.  account names the account in "run mailoauth login ACCOUNT".
// The message mentions the AADSTS code(s), trace_id and correlation_id.
Explanation explain_oauth_error(const OAuthError& e, const std::string& account);

// What the explanation may name besides the account: with the authority and
// client ID known, AADSTS65001's message carries the real admin-consent URL
// ({authority}/adminconsent?client_id=...) instead of placeholders.
struct Provider;
struct ErrorContext {
    std::string account;
    std::string authority;   // e.g. https://login.microsoftonline.com/contoso.com
    std::string client_id;
    const Provider* provider = nullptr;  // whose error codes; nullptr: Microsoft
};
Explanation explain_oauth_error(const OAuthError& e, const ErrorContext& ctx);

// Explains a non-200 reply of the token or devicecode endpoint: its JSON
// error when it has one, else its HTTP status (an HTML page, an empty body).
Explanation explain_error_reply(long http_status, const std::string& body, const ErrorContext& ctx);

// The plain-words text for one AADSTS code (from the Microsoft provider), or "" when unknown.  The next
// step names `mailoauth login ACCOUNT` literally.
std::string explain_aadsts(long code);

}  // namespace mailoauth

#endif
