// Handing out a valid access token for an account: from the store while it
// is fresh, else by a refresh that is single-flight across processes.
//
// The order matters: the rotated refresh token is written durably before
// the new access token leaves this module, and the old refresh token stays
// in the store until then (Microsoft does not revoke it on rotation), so a
// crash or a full disk at any point leaves a store that still works.
#ifndef MAILOAUTH_TOKENHELPER_TOKENS_H
#define MAILOAUTH_TOKENHELPER_TOKENS_H

#include <cstdint>
#include <string>

#include "tokenhelper/http.h"
#include "tokenhelper/settings.h"
#include "tokenhelper/store.h"

namespace mailoauth {

struct TokenResult {
    int exit_code = 0;          // sysexits, see errors.h
    std::string error;          // short word for protocol v1 "error"
    std::string message;        // plain words with the next step
    AccountRecord record;       // on success: access_token, access_expires_at, user
    bool refreshed = false;
    std::string warning;        // e.g. served a still-valid token after a failed refresh
};

// Returns a token that stays valid for more than the refresh margin, or an
// error.  force_refresh: the server rejected the token we had; refresh unless
// another process already replaced it.  rejected, when given, names the
// token the server refused (protocol::token_id, a hash): the refresh is
// forced only while the stored token is still that one, so many processes
// whose token was refused at once cause one refresh, not one each.
TokenResult get_access_token(const Environment& env, const Store& store, HttpClient& http,
                             const std::string& account, bool force_refresh,
                             const std::string& rejected = "");

// For an agent that renews tokens before its callers need them: the same
// as get_access_token without force, except that the token is refreshed
// already when it enters the refresh margin within lead_seconds from now
// (its expiry is at most margin + lead_seconds away).  Otherwise the stored
// token is returned as it is (refreshed == false).  The same lock, the
// same grant for every kind of account, the same fallback: after a
// temporary failure the current token is returned with a warning, and a
// failure never removes a working token from the store.
TokenResult renew_if_due(const Environment& env, const Store& store, HttpClient& http,
                         const std::string& account, long lead_seconds);

// Whether r's access token is valid beyond the refresh margin at now.  The
// configured margin is clamped to a third of the token's issued lifetime
// (common/margin.h), so short-lived tokens are not refreshed at every use.
bool access_token_fresh(const AccountRecord& r, std::int64_t now, long configured_margin);

// Redeems a refresh token (one HTTP request).  Exposed for tests.
TokenResult refresh_once(const Environment& env, HttpClient& http, const AccountRecord& rec,
                         std::int64_t now);

// Gets a new access token for an app-only account (grant
// client_credentials) with its credential: the stored secret or
// certificate, or the one read now from its credential_from path (with
// $CREDENTIALS_DIRECTORY from this process's environment).  One HTTP
// request.  Exposed for tests.
TokenResult app_token_once(const Environment& env, HttpClient& http, const AccountRecord& rec,
                           std::int64_t now);

}  // namespace mailoauth

#endif
