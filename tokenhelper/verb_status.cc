// `mailoauth status` and `mailoauth logout`: what is stored, and removing it.
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <unistd.h>

#include "common/json_quote.h"
#include "common/sanitize.h"
#include "tokenhelper/app_account.h"
#include "tokenhelper/errors.h"
#include "tokenhelper/provider.h"
#include "tokenhelper/store.h"
#include "tokenhelper/timefmt.h"
#include "tokenhelper/tokens.h"
#include "tokenhelper/verbs.h"

namespace mailoauth {

namespace {

// One JSON object, written in the order the fields are added.
class JsonObject {
public:
    JsonObject& str(const char* k, const std::string& v) { return raw(k, json_quote(v)); }
    JsonObject& num(const char* k, std::int64_t v) { return raw(k, std::to_string(v)); }
    JsonObject& flag(const char* k, bool v) { return raw(k, v ? "true" : "false"); }
    std::string text() const { return "  {\n" + body_ + "\n  }"; }

private:
    JsonObject& raw(const char* k, const std::string& v) {
        if (!body_.empty()) body_ += ",\n";
        body_ += "    " + json_quote(k) + ": " + v;
        return *this;
    }
    std::string body_;
};

// A stored time for status: "2026-11-23 17:00:00 UTC (in 59 min)", or
// "at an unknown time" when the record holds none (0: written by an older
// version or by hand), rather than the epoch and its age.
std::string when(std::int64_t t, std::int64_t now) {
    if (t <= 0) return "at an unknown time";
    return format_utc(t) + " (" + format_interval(t - now) + ")";
}

}  // namespace

int verb_status(const Parsed& p, const Environment& env, HttpClient&) {
    if (p.positional.size() > 1) return usage_error("usage: mailoauth status [ACCOUNT] [--json]");
    Store store(env.store_dir);
    std::string err;
    std::vector<std::string> accounts;
    bool json = p.has("json");
    if (!store.open(false, err)) {
        if (access(env.store_dir.c_str(), F_OK) != 0 && errno == ENOENT) {
            if (json) std::printf("[]\n");
            else std::printf("No accounts (store %s does not exist yet). Sign in with: mailoauth login ACCOUNT --client-id ID\n",
                             env.store_dir.c_str());
            return p.positional.empty() ? kExitOk : kExitNoPerm;
        }
        return fail(err, kExitConfig);
    }
    if (!p.positional.empty()) accounts.push_back(p.positional[0]);
    else accounts = store.list(err);
    std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
    std::vector<std::string> arr;
    int rc = kExitOk;
    if (accounts.empty() && !json) std::printf("No accounts in %s.\n", store.dir().c_str());
    for (const auto& a : accounts) {
        AccountRecord r;
        LoadStatus st = store.load(a, r, err);
        if (st != LoadStatus::Ok) {
            std::string msg = st == LoadStatus::NotFound ? "not signed in (run: mailoauth login " + a + ")" : err;
            rc = st == LoadStatus::NotFound ? kExitNoPerm : kExitConfig;
            if (json) {
                arr.push_back(JsonObject().str("account", a).str("error", msg).text());
            } else {
                std::printf("%s\n  %s\n", a.c_str(), msg.c_str());
            }
            continue;
        }
        long margin = env.refresh_margin(a);
        const bool app = is_app_only(r);
        const AppCredentialInfo cred = app ? describe_app_credential(r, now) : AppCredentialInfo();
        if (json) {
            JsonObject o;
            o.str("account", r.account)
                .str("user", r.user)
                .str("provider", r.provider)
                .str("grant", r.grant)
                .str("kind", app ? "app-only" : "delegated");
            if (app) {
                o.str("credential_source", cred.source).str("credential_problem", cred.problem);
                if (cred.have_certificate)
                    o.str("certificate_thumbprint", cred.certificate.sha1_hex)
                        .num("certificate_expires_at", cred.certificate.not_after)
                        .str("certificate_warning", cred.warning)
                        .str("assertion_alg", r.assertion_alg.empty() ? "PS256" : r.assertion_alg);
            }
            arr.push_back(o
                              .str("authority", r.authority)
                              .str("cloud", r.cloud)
                              .str("issuer", r.issuer)
                              .str("token_endpoint", r.token_endpoint)
                              .str("client_id", r.client_id)
                              .str("scope", r.scope)
                              .num("access_token_expires_at", r.access_expires_at)
                              .flag("access_token_valid", access_token_fresh(r, now, margin))
                              .num("refresh_token_obtained_at", r.refresh_obtained_at)
                              .num("refresh_token_age_seconds",
                                   r.refresh_obtained_at > 0 ? now - r.refresh_obtained_at : 0)
                              .num("created_at", r.created_at)
                              .str("last_error", sanitize::text(r.last_error, 1000))
                              .num("last_error_at", r.last_error_at)
                              .text());
        } else {
            std::printf("%s\n", r.account.c_str());
            std::printf("  user:           %s\n", r.user.c_str());
            std::printf("  provider:       %s%s%s\n", r.provider.c_str(), r.cloud.empty() ? "" : ", cloud ",
                        r.cloud.c_str());
            if (!r.authority.empty()) std::printf("  authority:      %s\n", r.authority.c_str());
            if (!r.issuer.empty()) std::printf("  issuer:         %s\n", r.issuer.c_str());
            if (r.authority.empty() && r.issuer.empty())
                std::printf("  token endpoint: %s\n", r.token_endpoint.c_str());
            std::printf("  client id:      %s\n", r.client_id.c_str());
            if (app) {
                std::printf("  kind:           app-only (client credentials): the app uses the mailbox %s\n",
                            r.user.c_str());
                std::string c = cred.source;
                if (cred.have_certificate)
                    c += ", thumbprint " + cred.certificate.sha1_hex + " (" +
                         (r.assertion_alg.empty() ? std::string("PS256") : r.assertion_alg) + "), " +
                         (cred.expired ? "expired " : "valid until ") + when(cred.certificate.not_after, now);
                std::printf("  credential:     %s\n", c.c_str());
                if (!cred.problem.empty()) std::printf("                  %s\n", cred.problem.c_str());
                if (!cred.warning.empty()) std::printf("  warning:        %s\n", cred.warning.c_str());
            } else {
                std::printf("  kind:           delegated (a person signed in)\n");
            }
            if (r.access_token.empty() || r.access_expires_at <= 0)
                std::printf("  access token:   none yet (one is fetched at the next use)\n");
            else
                std::printf("  access token:   %s %s\n",
                            access_token_fresh(r, now, margin) ? "valid until" : "expired or due for refresh at",
                            when(r.access_expires_at, now).c_str());
            if (app)
                std::printf("  refresh token:  none (a new access token comes from the app's credential)\n");
            else
                std::printf("  refresh token:  obtained %s\n", when(r.refresh_obtained_at, now).c_str());
            const Provider* prov = find_provider(r.provider);
            if (!app && prov != nullptr && prov->refresh_lifetime.seconds > 0 && r.refresh_obtained_at > 0)
                std::printf("                  %s until %s if unused\n",
                            prov->refresh_lifetime.sliding ? "valid" : "expires",
                            when(r.refresh_obtained_at + prov->refresh_lifetime.seconds, now).c_str());
            if (r.last_error.empty()) std::printf("  last error:     none\n");
            else std::printf("  last error:     %s: %s\n", format_utc(r.last_error_at).c_str(),
                             sanitize::text(r.last_error, 1000).c_str());
        }
    }
    if (json) {
        std::string out = "[";
        for (std::size_t i = 0; i < arr.size(); ++i) out += (i ? ",\n" : "\n") + arr[i];
        std::printf("%s%s]\n", out.c_str(), arr.empty() ? "" : "\n");
    }
    return rc;
}

int verb_logout(const Parsed& p, const Environment& env, HttpClient&) {
    if (p.positional.size() != 1) return usage_error("usage: mailoauth logout ACCOUNT");
    const std::string& account = p.positional[0];
    if (!valid_account_name(account)) return fail("'" + account + "' is not a valid account name", kExitUsage);
    Store store(env.store_dir);
    std::string err;
    if (!store.open(false, err)) return fail(err, kExitConfig);
    AccountRecord r;
    LoadStatus st = store.load(account, r, err);
    if (st == LoadStatus::NotFound) return fail("no stored tokens for '" + account + "'", kExitNoPerm);
    Store::Lock lock;
    if (!store.lock(account, 30000, lock, err)) return fail(err, kExitTempFail);
    if (!store.remove(account, err)) return fail(err, kExitConfig);
    std::fprintf(stderr, "Deleted the stored tokens of %s.\n", account.c_str());
    if (r.provider == "microsoft")
        std::fprintf(stderr,
                     "The refresh token stays valid at Microsoft until it expires; to revoke every session\n"
                     "of the user now, use 'Revoke sessions' on the user in the Microsoft Entra admin center.\n");
    else
        std::fprintf(stderr,
                     "The refresh token stays valid at the identity provider until it expires or is revoked\n"
                     "there (Google: myaccount.google.com, Security, Third-party apps).\n");
    return kExitOk;
}

}  // namespace mailoauth
