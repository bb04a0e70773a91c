// What an app-only access token says about the permissions it carries.
//
// Entra's access tokens for Exchange Online are JWTs the client may read
// (it need not and cannot verify them: the resource does).  A token from
// the client-credentials grant carries the application permissions that an
// administrator consented to in its "roles" claim; without consent Entra
// still issues a token, with no roles, which Exchange then refuses with a
// bare "authentication failed".  Reading the claim at login turns that into
// a clear message before any mail server is asked.
//
// Module side (jsoncpp; see http_module.h), reached through NetModule.
#ifndef MAILOAUTH_TOKENHELPER_JWT_CLAIMS_H
#define MAILOAUTH_TOKENHELPER_JWT_CLAIMS_H

#include <string>
#include <string_view>
#include <vector>

namespace mailoauth {

enum class RolesClaim {
    Unknown,   // not a readable JWT (opaque, encrypted, malformed): no judgement
    Absent,    // a JWT without a "roles" claim: no application permission consented
    Present,   // roles holds the claim's strings (at most 32, each sanitized)
};

RolesClaim access_token_roles(std::string_view token, std::vector<std::string>& roles);

}  // namespace mailoauth

#endif
