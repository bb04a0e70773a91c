#include "tokenhelper/app_token.h"

#include "common/sanitize.h"
#include "common/secret.h"
#include "tokenhelper/app_errors.h"
#include "tokenhelper/client_assertion.h"
#include "tokenhelper/errors.h"
#include "tokenhelper/form.h"
#include "tokenhelper/jwt_claims.h"

namespace mailoauth {

namespace {

AppTokenResult fail(int code, const std::string& error, const std::string& message) {
    AppTokenResult r;
    r.exit_code = code;
    r.error = error;
    r.message = message;
    return r;
}

std::string account_name(const AppTokenParams& p) {
    return p.account.empty() ? std::string("ACCOUNT") : p.account;
}

// Nothing the provider echoes may carry our secret into a message (a
// provider that quotes the request, a proxy's error page): cut it out.
void scrub(std::string& text, const std::string& secret) {
    if (secret.size() < 8) return;
    std::size_t at;
    while ((at = text.find(secret)) != std::string::npos) text.replace(at, secret.size(), "[secret]");
}

bool is_mail_role(const std::string& role) {
    return role == "IMAP.AccessAsApp" || role == "POP.AccessAsApp" || role == "SMTP.SendAsApp";
}

// Microsoft's codes, trace and correlation IDs, for a support request.
std::string reference(const OAuthError& e) {
    std::string s;
    if (!e.error_codes.empty()) {
        s += " (";
        for (std::size_t i = 0; i < e.error_codes.size() && i < 4; ++i) {
            if (i > 0) s += ", ";
            s += "AADSTS" + std::to_string(e.error_codes[i]);
        }
        s += ")";
    }
    if (!e.trace_id.empty()) s += " trace_id: " + sanitize::text(e.trace_id, 100);
    if (!e.correlation_id.empty()) s += " correlation_id: " + sanitize::text(e.correlation_id, 100);
    if (!e.timestamp.empty() && (!e.trace_id.empty() || !e.correlation_id.empty()))
        s += " timestamp: " + sanitize::text(e.timestamp, 100);
    return s;
}

AppTokenResult explain_refusal(const AppTokenParams& p, long status, const std::string& body) {
    OAuthError e;
    if (!parse_error_response(body, e)) e = OAuthError();
    e.http_status = static_cast<int>(status);
    for (long code : e.error_codes) {
        if (!is_known_app_error(code)) continue;
        Explanation x = explain_app_error(code, account_name(p));
        return fail(x.exit_code, x.error, x.message + reference(e));
    }
    // Not an app-specific refusal (throttling, an unknown tenant, a 5xx, an
    // HTML page): the general explanations apply.
    ErrorContext ctx;
    ctx.account = account_name(p);
    ctx.client_id = p.client_id;
    const std::string suffix = "/oauth2/v2.0/token";
    ctx.authority = p.token_endpoint;
    if (ctx.authority.size() > suffix.size() &&
        ctx.authority.compare(ctx.authority.size() - suffix.size(), suffix.size(), suffix) == 0)
        ctx.authority.erase(ctx.authority.size() - suffix.size());
    Explanation x = explain_oauth_error(e, ctx);
    // A sign-in again does not help an app-only account: no person signs in.
    if (x.exit_code == kExitNoPerm) x.exit_code = kExitConfig;
    return fail(x.exit_code, x.error, x.message);
}

}  // namespace

bool app_scope_valid(const std::string& scope, std::string& why) {
    const std::string suffix = "/.default";
    if (scope.find_first_of(" \t\r\n") != std::string::npos) {
        why = "an app-only token is asked for one resource at a time: give a single scope such as " +
              std::string(kAppDefaultScope);
        return false;
    }
    if (scope.size() <= suffix.size() ||
        scope.compare(scope.size() - suffix.size(), suffix.size(), suffix) != 0) {
        why = "the scope of an app-only token must be RESOURCE/.default (the application "
              "permissions granted to the app), for Exchange Online " + std::string(kAppDefaultScope) +
              "; --scope " + sanitize::text(scope, 200) + " is not of that form";
        return false;
    }
    return true;
}

AppTokenResult request_app_token(HttpClient& http, const AppTokenParams& p,
                                 const AppCredential& cred, std::int64_t now) {
    std::string why;
    if (p.client_id.empty())
        return fail(kExitConfig, "bad_config", "the app-only account has no client ID; run `mailoauth login " +
                                                   account_name(p) + " --app --client-id ID ...`");
    if (!app_scope_valid(p.scope, why)) return fail(kExitConfig, "invalid_scope", why);

    FormFields form = {
        {"client_id", p.client_id},
        {"scope", p.scope},
        {"grant_type", "client_credentials"},
    };
    const std::string* secret_value = nullptr;
    Secret assertion;
    if (cred.kind == AppCredential::Kind::Secret) {
        if (cred.client_secret.empty())
            return fail(kExitConfig, "bad_credential",
                        "the client secret of account '" + account_name(p) +
                            "' is empty; give it again with `mailoauth login " + account_name(p) +
                            " --app ... --client-secret-file FILE`");
        form.emplace_back("client_secret", cred.client_secret.reveal());
        secret_value = &cred.client_secret.reveal();
    } else {
        ClientAssertionParams ap;
        if (!parse_assertion_alg(cred.assertion_alg, ap.alg))
            return fail(kExitConfig, "bad_credential",
                        "the assertion algorithm '" + sanitize::text(cred.assertion_alg, 20) +
                            "' is not supported; use PS256 (the default) or RS256");
        ap.certificate_pem = cred.certificate_pem;
        ap.private_key_pem = cred.private_key_pem;
        ap.client_id = p.client_id;
        ap.audience = p.token_endpoint;
        ap.now = now;
        if (!make_client_assertion(ap, assertion, why))
            return fail(kExitConfig, "bad_credential",
                        "the certificate credential of account '" + account_name(p) +
                            "' cannot be used: " + why);
        form.emplace_back("client_assertion_type", kClientAssertionType);
        form.emplace_back("client_assertion", assertion.reveal());
    }
    std::string body = form_encode(form);
    for (auto& f : form) wipe_string(f.second);
    HttpResult res = http.post_form(p.token_endpoint, body, p.http);
    wipe_string(body);

    AppTokenResult r;
    if (!res.ok()) {
        r = fail((res.failure == HttpFailure::Tls || res.failure == HttpFailure::Policy) ? kExitConfig
                                                                                        : kExitTempFail,
                 res.failure == HttpFailure::Transport ? "network" : "http",
                 "getting an app-only token failed: " + res.error);
    } else if (res.response.status != 200) {
        r = explain_refusal(p, res.response.status, res.response.body);
    } else if (!parse_token_response(res.response.body, r.tokens, why)) {
        r = fail(kExitTempFail, "bad_response",
                 "the identity provider's token response could not be used (" + why +
                     "); this is usually temporary: try again later");
    } else {
        // The grant issues none; should one come anyway, it is not kept.
        r.tokens.refresh_token.clear();
        const RolesClaim rc = access_token_roles(r.tokens.access_token.reveal(), r.roles);
        bool mail = false;
        for (const std::string& role : r.roles) mail = mail || is_mail_role(role);
        if (rc == RolesClaim::Absent || (rc == RolesClaim::Present && !mail)) {
            Explanation x = explain_missing_app_consent(account_name(p), r.roles);
            std::vector<std::string> roles = r.roles;
            r = fail(x.exit_code, x.error, x.message);
            r.roles = roles;
        }
    }
    if (secret_value) scrub(r.message, *secret_value);
    scrub(r.message, assertion.reveal());
    r.message = sanitize::text(r.message, 2000);
    return r;
}

}  // namespace mailoauth
