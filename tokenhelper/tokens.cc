#include "tokenhelper/tokens.h"

#include <cstdlib>
#include <ctime>

#include "common/margin.h"
#include "common/protocol.h"
#include "common/sanitize.h"
#include "common/secret.h"
#include "tokenhelper/app_token.h"
#include "tokenhelper/credential_source.h"
#include "tokenhelper/errors.h"
#include "tokenhelper/form.h"
#include "tokenhelper/oauth.h"
#include "tokenhelper/provider.h"

namespace mailoauth {

namespace {

std::int64_t now_seconds() { return static_cast<std::int64_t>(std::time(nullptr)); }

bool fresh(const AccountRecord& r, std::int64_t now, long margin) { return access_token_fresh(r, now, margin); }

TokenResult not_logged_in(const std::string& account, const std::string& dir) {
    TokenResult t;
    t.exit_code = kExitNoPerm;
    t.error = "not_logged_in";
    t.message = "no tokens for account '" + account + "' in " + dir +
                "; sign in once with: mailoauth login " + account;
    return t;
}

TokenResult store_error(const std::string& why) {
    TokenResult t;
    t.exit_code = kExitConfig;
    t.error = "store_error";
    t.message = why;
    return t;
}

// Remembers the failure in the record so `mailoauth status` can show it.
void note_failure(const Store& store, AccountRecord rec, const std::string& message, std::int64_t now) {
    rec.last_error = sanitize::text(message, 1000);
    rec.last_error_at = now;
    std::string ignored;
    store.save(rec, ignored);
}

}  // namespace

bool access_token_fresh(const AccountRecord& r, std::int64_t now, long configured_margin) {
    const long margin = effective_refresh_margin(configured_margin, r.access_lifetime);
    return !r.access_token.empty() && r.access_expires_at - margin > now;
}

TokenResult refresh_once(const Environment& env, HttpClient& http, const AccountRecord& rec,
                         std::int64_t now) {
    TokenResult t;
    FormFields form = {
        {"client_id", rec.client_id},
        {"grant_type", "refresh_token"},
        {"refresh_token", rec.refresh_token.reveal()},
        {"scope", rec.scope},
    };
    // Google and confidential OIDC clients authenticate with their secret.
    if (!rec.client_secret.empty()) form.emplace_back("client_secret", rec.client_secret.reveal());
    std::string body = form_encode(form);
    for (auto& field : form) wipe_string(field.second);
    // The endpoint stored at login, never derived again: the account's
    // provider, cloud and tenant are settled.
    HttpResult res = http.post_form(rec.token_endpoint, body,
                                    http_options(env, rec.ca_file, rec.allow_insecure_http));
    wipe_string(body);
    if (!res.ok()) {
        t.exit_code = (res.failure == HttpFailure::Tls || res.failure == HttpFailure::Policy)
                          ? kExitConfig : kExitTempFail;
        t.error = res.failure == HttpFailure::Transport ? "network" : "http";
        t.message = "refreshing the access token failed: " + res.error;
        return t;
    }
    const HttpResponse& r = res.response;
    if (r.status == 200) {
        TokenResponse tr;
        std::string perr;
        if (!parse_token_response(r.body, tr, perr)) {
            t.exit_code = kExitTempFail;
            t.error = "bad_response";
            t.message = "the identity provider's token response could not be used (" + perr +
                        "); this is usually temporary: try again later";
            return t;
        }
        t.record = rec;
        t.record.access_token = tr.access_token;
        t.record.access_expires_at = now + tr.expires_in;
        t.record.access_lifetime = tr.expires_in;
        if (!tr.refresh_token.empty()) {
            t.record.refresh_token = tr.refresh_token;
            t.record.refresh_obtained_at = now;
        }
        t.record.last_error.clear();
        t.record.last_error_at = 0;
        t.refreshed = true;
        return t;
    }
    Explanation ex = explain_error_reply(r.status, r.body,
                                         ErrorContext{rec.account, rec.authority, rec.client_id,
                                                      find_provider(rec.provider)});
    t.exit_code = ex.exit_code;
    t.error = ex.error;
    t.message = ex.message;
    return t;
}

namespace {

bool app_only(const AccountRecord& rec) { return rec.grant == "client_credentials"; }

bool app_credential_of(const AccountRecord& rec, AppCredential& cred, std::string& err) {
    cred = AppCredential();
    if (!rec.credential_from.empty()) {
        // Read at each use, from the environment of this process (the
        // agent's LoadCredential= directory, the administrator's tooling).
        if (!load_credential_from(rec.credential_from, std::getenv("CREDENTIALS_DIRECTORY"), cred, err))
            return false;
    } else if (!rec.private_key_pem.empty()) {
        cred.kind = AppCredential::Kind::Certificate;
        cred.certificate_pem = rec.certificate_pem;
        cred.private_key_pem = rec.private_key_pem;
        cred.source = "stored certificate";
    } else if (!rec.client_secret.empty()) {
        cred.kind = AppCredential::Kind::Secret;
        cred.client_secret = rec.client_secret;
        cred.source = "stored client secret";
    } else {
        err = "the app-only account '" + rec.account + "' has no stored credential; sign in again with "
              "`mailoauth login " + rec.account + " --app ...` and a --client-secret-file, a --certificate "
              "with its --private-key, or --credential-from";
        return false;
    }
    if (!rec.assertion_alg.empty()) cred.assertion_alg = rec.assertion_alg;
    return true;
}

std::string tenant_of(const std::string& authority) {
    const std::size_t slash = authority.rfind('/');
    return slash == std::string::npos ? "" : authority.substr(slash + 1);
}

}  // namespace

TokenResult app_token_once(const Environment& env, HttpClient& http, const AccountRecord& rec,
                           std::int64_t now) {
    TokenResult t;
    AppCredential cred;
    std::string err;
    if (!app_credential_of(rec, cred, err)) {
        t.exit_code = kExitConfig;
        t.error = "bad_credential";
        t.message = err;
        return t;
    }
    AppTokenParams p;
    p.token_endpoint = rec.token_endpoint;
    p.client_id = rec.client_id;
    p.scope = rec.scope;
    p.account = rec.account;
    p.tenant = tenant_of(rec.authority);
    p.http = http_options(env, rec.ca_file, rec.allow_insecure_http);
    AppTokenResult r = request_app_token(http, p, cred, now);
    if (r.exit_code != 0) {
        t.exit_code = r.exit_code;
        t.error = r.error;
        t.message = r.message;
        return t;
    }
    t.record = rec;
    t.record.access_token = r.tokens.access_token;
    t.record.access_expires_at = now + r.tokens.expires_in;
    t.record.access_lifetime = r.tokens.expires_in;
    t.record.last_error.clear();
    t.record.last_error_at = 0;
    t.refreshed = true;
    return t;
}

namespace {

// A new access token: by the refresh token, or for an app-only account by
// the client-credentials grant (there is no refresh token).
TokenResult renew_once(const Environment& env, HttpClient& http, const AccountRecord& rec, std::int64_t now) {
    return app_only(rec) ? app_token_once(env, http, rec, now) : refresh_once(env, http, rec, now);
}

}  // namespace

// get_access_token and renew_if_due: lead moves "now" ahead for the
// freshness checks only, so that a token about to enter the margin counts
// as inside it already.
static TokenResult obtain_token(const Environment& env, const Store& store, HttpClient& http,
                                const std::string& account, bool force_refresh,
                                const std::string& rejected, long lead) {
    const long margin = env.refresh_margin(account);
    std::string err;
    AccountRecord seen;
    LoadStatus st = store.load(account, seen, err);
    if (st == LoadStatus::NotFound) return not_logged_in(account, store.dir());
    if (st == LoadStatus::Error) return store_error(err);

    std::int64_t now = now_seconds();
    // Refused token already replaced (by another process): nothing to force.
    const bool tail_known = protocol::valid_token_id(rejected);
    if (force_refresh && tail_known && !protocol::names_token(rejected, seen.access_token.reveal()))
        force_refresh = false;
    if (!force_refresh && fresh(seen, now + lead, margin)) {
        TokenResult t;
        t.record = seen;
        return t;
    }

    // Single flight: whoever holds the lock refreshes; the others then find
    // the new token when they re-read.  Wait long enough for one full
    // refresh by another process, and a little more.
    Store::Lock lock;
    if (!store.lock(account, (env.http_timeout + 15) * 1000, lock, err)) {
        TokenResult t;
        t.exit_code = kExitTempFail;
        t.error = "busy";
        t.message = err;
        return t;
    }
    AccountRecord rec;
    st = store.load(account, rec, err);
    if (st == LoadStatus::NotFound) return not_logged_in(account, store.dir());
    if (st == LoadStatus::Error) return store_error(err);
    now = now_seconds();
    // A forced refresh is satisfied by a token another process obtained
    // after the one that was rejected.
    bool replaced = rec.access_token != seen.access_token ||
                    (tail_known && !protocol::names_token(rejected, rec.access_token.reveal()));
    if (fresh(rec, now + lead, margin) && (!force_refresh || replaced)) {
        TokenResult t;
        t.record = rec;
        return t;
    }

    TokenResult t = renew_once(env, http, rec, now);
    if (t.exit_code != 0) {
        note_failure(store, rec, t.message, now);
        // Still valid for a while (just inside the margin) and the failure is
        // temporary: better to hand out the current token than to defer mail.
        // An app-only account's token stays good whatever happened to its
        // credential since (a secret that expired, a file that moved):
        // status and doctor show the failure while mail still flows.
        if ((t.exit_code == kExitTempFail || app_only(rec)) && !force_refresh && !rec.access_token.empty() &&
            rec.access_expires_at - 60 > now) {
            TokenResult ok;
            ok.record = rec;
            ok.warning = t.message + " (using the current token, valid until it expires)";
            return ok;
        }
        return t;
    }
    if (!store.save(t.record, err)) {
        // The new refresh token is lost, but the previous one stays valid at
        // the provider and is still in the store: nothing is broken.
        TokenResult f;
        f.exit_code = kExitTempFail;
        f.error = "store_write";
        f.message = "could not save the refreshed tokens (" + err +
                    "); the previous tokens are kept; free some space and try again";
        return f;
    }
    return t;
}

TokenResult get_access_token(const Environment& env, const Store& store, HttpClient& http,
                             const std::string& account, bool force_refresh,
                             const std::string& rejected) {
    return obtain_token(env, store, http, account, force_refresh, rejected, 0);
}

TokenResult renew_if_due(const Environment& env, const Store& store, HttpClient& http,
                         const std::string& account, long lead_seconds) {
    return obtain_token(env, store, http, account, false, "", lead_seconds > 0 ? lead_seconds : 0);
}

}  // namespace mailoauth
