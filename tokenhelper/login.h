// Sign-in grants: how `mailoauth login` obtains the first tokens.  The
// login verb (verb_login.cc) settles the provider, endpoints, client and
// scopes, then runs one grant from its table kGrants:
//
//     {"device", nullptr, device_grant}          // the default
//
// A new grant is a function with the LoginGrantFn signature and a row
// naming the value stored in the record's "grant" field and the login flag
// that selects it (e.g. {"authorization_code", "browser", browser_grant});
// the flag also needs a row in kOptions (cli.cc) for the verb "login".
#ifndef MAILOAUTH_TOKENHELPER_LOGIN_H
#define MAILOAUTH_TOKENHELPER_LOGIN_H

#include <string>

#include "common/secret.h"
#include "tokenhelper/cli.h"
#include "tokenhelper/http.h"
#include "tokenhelper/oauth.h"
#include "tokenhelper/provider.h"
#include "tokenhelper/settings.h"

namespace mailoauth {

struct LoginRequest {
    std::string account;
    const Provider* provider = nullptr;
    Endpoints endpoints;          // token always set; device/authorization may be empty
    std::string client_id;
    Secret client_secret;         // empty for public clients
    std::string scope;            // space separated
    HttpOptions http;             // for the identity provider
    const Parsed* args = nullptr; // the command line, for grant options (--port, ...)
    // The login command as typed, without the grant's flag, e.g.
    // "mailoauth login alice --client-id ID --tenant T", for messages that
    // tell the user what to run instead.
    std::string command;
};

struct LoginResult {
    int exit_code = 0;            // errors.h
    std::string error;            // short word
    std::string message;          // plain words with the next step
    TokenResponse tokens;         // on success; refresh_token required unless the grant has none
};

using LoginGrantFn = LoginResult (*)(HttpClient& http, const LoginRequest& req);

struct LoginGrant {
    const char* name;    // stored in AccountRecord::grant
    const char* option;  // the login flag selecting it; nullptr: the default grant
    LoginGrantFn run;
};

// `mailoauth login ACCOUNT --app` (verb_login_app.cc): an app-only account
// (client credentials).  Its settings, credential and record differ from a
// person's sign-in, so it is its own path rather than a row of kGrants;
// the record's grant is "client_credentials".
int login_app(const Parsed& p, const Environment& env, HttpClient& http);

// The device authorization grant (device_flow.h) as a LoginGrantFn.
LoginResult device_grant(HttpClient& http, const LoginRequest& req);
// The authorization code grant with PKCE (browser_flow.h): --browser, --paste.
LoginResult browser_grant(HttpClient& http, const LoginRequest& req);

}  // namespace mailoauth

#endif
