// The client-credentials grant (RFC 6749 section 4.4) for app-only
// accounts: the app authenticates as itself, with a client secret or a
// client assertion signed with its certificate's key (RFC 7523), and gets
// an access token for the mailbox an Exchange administrator granted it.
// No person signs in and no refresh token comes back: a new token is asked
// for whenever the cached one nears its expiry.
//
// Program side: the HTTP request goes through the HttpClient seam, the
// signing and the JWT reading through the network module (see
// http_module.h); the unit tests link both directly.
#ifndef MAILOAUTH_TOKENHELPER_APP_TOKEN_H
#define MAILOAUTH_TOKENHELPER_APP_TOKEN_H

#include <cstdint>
#include <string>
#include <vector>

#include "tokenhelper/credential_source.h"
#include "tokenhelper/http.h"
#include "tokenhelper/oauth.h"

namespace mailoauth {

constexpr const char* kClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
// Exchange Online's resource in the worldwide cloud; national clouds have
// their own host (e.g. outlook.office365.us), always with "/.default".
constexpr const char* kAppDefaultScope = "https://outlook.office365.com/.default";

struct AppTokenParams {
    std::string token_endpoint;  // {authority}/oauth2/v2.0/token; also the assertion's aud
    std::string client_id;
    std::string scope;           // RESOURCE/.default, e.g. kAppDefaultScope
    std::string account;         // for messages: `mailoauth login ACCOUNT --app`
    std::string tenant;          // for messages
    HttpOptions http;
};

struct AppTokenResult {
    int exit_code = 0;               // sysexits (errors.h): 0, 75, 78, 65
    std::string error;               // short word for protocol v1 "error"
    std::string message;             // plain words with the next step; never a secret
    TokenResponse tokens;            // on success; refresh_token always empty
    std::vector<std::string> roles;  // the token's application permissions, when readable
};

// Whether scope is one RESOURCE/.default, as the grant requires; fills why.
bool app_scope_valid(const std::string& scope, std::string& why);

// One token request.  now (seconds since the epoch) dates the client
// assertion.  Fails with 78 for a credential or registration problem (each
// AADSTS code explained, see app_errors.h), 75 for a network failure or a
// temporary refusal, and 78 when the token carries no Exchange application
// permission (admin consent missing).
AppTokenResult request_app_token(HttpClient& http, const AppTokenParams& p,
                                 const AppCredential& cred, std::int64_t now);

}  // namespace mailoauth

#endif
