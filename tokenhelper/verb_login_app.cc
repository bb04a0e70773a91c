// `mailoauth login ACCOUNT --app`: an app-only account.  The app registration
// authenticates as itself (the client-credentials grant, app_token.h) with
// a client secret, a certificate, or a credential read at each use
// (credential_source.h); no person signs in and no refresh token exists.
// The login gets a token at once, so a wrong secret, a missing Exchange
// registration or a clock that is off is explained now rather than at the
// first relayed message, and stores the record only when that worked.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <unistd.h>

#include "common/sanitize.h"
#include "tokenhelper/app_account.h"
#include "tokenhelper/app_errors.h"
#include "tokenhelper/app_token.h"
#include "tokenhelper/client_assertion.h"
#include "tokenhelper/credential_source.h"
#include "tokenhelper/errors.h"
#include "tokenhelper/login.h"
#include "tokenhelper/provider.h"
#include "tokenhelper/store.h"
#include "tokenhelper/timefmt.h"
#include "tokenhelper/verbs.h"

namespace mailoauth {

namespace {

// Options of the delegated sign-in that mean nothing for an app.
const char* const kNotForApps[] = {"issuer", "token-endpoint", "device-endpoint", "authorization-endpoint",
                                   "browser", "paste", "port"};

// The command line, then mailoauth.conf ([account], then global), then
// fallback.  The stored record is not used: `login --app` states the
// whole account.
std::string setting(const Parsed& p, const Environment& env, const std::string& account, const char* opt,
                    const char* conf_key, const std::string& fallback) {
    SettingInputs in;
    if (p.has(opt)) in.command_line = p.value(opt);
    config_inputs(env.cfg, account, conf_key, in);
    in.fallback = fallback;
    return resolve_setting(in).value;
}

bool generic_tenant(const std::string& t) {
    return t.empty() || t == "organizations" || t == "common" || t == "consumers";
}

}  // namespace

int login_app(const Parsed& p, const Environment& env, HttpClient& http) {
    const std::string& account = p.positional[0];
    const std::string usage =
        "usage: mailoauth login ACCOUNT --app --client-id ID --tenant TENANT --user MAILBOX "
        "(--client-secret-file FILE | --certificate FILE --private-key FILE | --credential-from PATH)";
    for (const char* o : kNotForApps)
        if (p.has(o)) return usage_error(std::string("--") + o + " does not apply to an app-only account (--app)");
    const std::string provider_name = setting(p, env, account, "provider", "provider", "microsoft");
    const Provider* provider = find_provider(provider_name);
    if (provider == nullptr || std::strcmp(provider->name, "microsoft") != 0)
        return usage_error("app-only accounts (--app) are for Microsoft 365 only: Exchange Online lets an app "
                           "registration use IMAP, POP and SMTP as a mailbox; drop --provider");

    // Exactly one credential.
    const bool by_secret = p.has("client-secret-file");
    const bool by_cert = p.has("certificate") || p.has("private-key");
    const bool by_path = p.has("credential-from");
    const int given = (by_secret ? 1 : 0) + (by_cert ? 1 : 0) + (by_path ? 1 : 0);
    if (given == 0)
        return usage_error("an app-only account needs its credential: --client-secret-file FILE, or "
                           "--certificate FILE --private-key FILE, or --credential-from PATH\n" + usage);
    if (given > 1)
        return usage_error("give one credential only: --client-secret-file, --certificate with --private-key, "
                           "or --credential-from");
    if (by_cert && !p.has("private-key"))
        return usage_error("--certificate needs the certificate's key: --private-key FILE");
    AssertionAlg alg = AssertionAlg::PS256;
    if (p.has("assertion-alg")) {
        if (by_secret) return usage_error("--assertion-alg applies to a certificate, not to a client secret");
        if (!parse_assertion_alg(p.value("assertion-alg"), alg))
            return usage_error("--assertion-alg must be PS256 (the default) or RS256");
    }

    const std::string client_id = setting(p, env, account, "client-id", "client_id", "");
    if (client_id.empty())
        return usage_error("give the app registration's Application (client) ID: --client-id ID\n" + usage);
    ProviderSettings ps;
    ps.cloud = setting(p, env, account, "cloud", "cloud", "");
    ps.tenant = setting(p, env, account, "tenant", "tenant", "");
    if (p.has("authority") || !(p.has("tenant") || p.has("cloud")))
        ps.authority = setting(p, env, account, "authority", "authority", "");
    if (ps.authority.empty() && generic_tenant(ps.tenant))
        return usage_error("an app signs in to its own directory: give --tenant with your tenant's ID or "
                           "domain (e.g. contoso.onmicrosoft.com), not '" +
                           (ps.tenant.empty() ? std::string("organizations") : ps.tenant) + "'");
    const std::string user = setting(p, env, account, "user", "user", "");
    if (user.empty())
        return usage_error("give the mailbox the app uses: --user MAILBOX (the address Exchange granted it)");
    ps.allow_insecure_http =
        p.has("allow-insecure-http") || setting(p, env, account, "", "allow_insecure_http", "no") == "yes";
    const std::string ca_file = setting(p, env, account, "ca-file", "ca_file", "");
    ps.http = http_options(env, ca_file, ps.allow_insecure_http);
    if (!ca_file.empty() && access(ca_file.c_str(), R_OK) != 0)
        return fail("cannot read the CA file '" + ca_file + "': " + std::strerror(errno), kExitConfig);

    // The credential, read now (and for --credential-from at each use).
    AppCredential cred;
    std::string err;
    bool loaded = false;
    if (by_secret) loaded = load_client_secret(p.value("client-secret-file"), cred, err);
    else if (by_cert) loaded = load_certificate_pair(p.value("certificate"), p.value("private-key"), cred, err);
    else loaded = load_credential_from(p.value("credential-from"), std::getenv("CREDENTIALS_DIRECTORY"), cred, err);
    if (!loaded) return fail(err, kExitConfig);
    cred.assertion_alg = assertion_alg_name(alg);

    Endpoints ep;
    int code = kExitUsage;
    std::string why;
    if (!provider->endpoints(ps, http, ep, why, code)) return fail(why, code);
    if (!http.check_url(ep.token, ps.allow_insecure_http, why))
        return fail("the token endpoint '" + ep.token + "' refused: " + why, kExitUsage);
    const std::string scope = p.has("scope") ? normalize_scope(p.value("scope")) : app_default_scope(*provider, ps);
    if (!app_scope_valid(scope, why)) return usage_error(why);

    AppTokenParams ap;
    ap.token_endpoint = ep.token;
    ap.client_id = client_id;
    ap.scope = scope;
    ap.account = account;
    ap.tenant = ps.tenant;
    ap.http = ps.http;
    std::fprintf(stderr, "Getting an app-only token for %s (app %s) at %s\n", account.c_str(), client_id.c_str(),
                 ep.authority.c_str());
    const std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
    AppTokenResult r = request_app_token(http, ap, cred, now);
    if (r.exit_code != 0) return fail(r.message, r.exit_code);

    AccountRecord rec;
    rec.account = account;
    rec.user = user;
    rec.provider = provider->name;
    rec.grant = "client_credentials";
    rec.authority = ep.authority;
    rec.cloud = ps.cloud;
    rec.token_endpoint = ep.token;
    rec.client_id = client_id;
    rec.scope = scope;
    rec.ca_file = ca_file;
    rec.allow_insecure_http = ps.allow_insecure_http;
    if (by_path) {
        rec.credential_from = p.value("credential-from");  // as given: $CREDENTIALS_DIRECTORY stays literal
        if (p.has("assertion-alg")) rec.assertion_alg = cred.assertion_alg;
    } else if (by_cert) {
        rec.certificate_pem = cred.certificate_pem;
        rec.private_key_pem = cred.private_key_pem;
        rec.assertion_alg = cred.assertion_alg;
    } else {
        rec.client_secret = cred.client_secret;
    }
    rec.access_token = r.tokens.access_token;
    rec.access_expires_at = now + r.tokens.expires_in;
    rec.access_lifetime = r.tokens.expires_in;
    rec.created_at = now;
    Store store(env.store_dir);
    if (!store.open(true, err)) return fail(err, kExitConfig);
    Store::Lock lock;
    if (!store.lock(account, 30000, lock, err)) return fail(err, kExitTempFail);
    if (!store.save(rec, err)) return fail("got a token, but " + err, kExitTempFail);

    std::string roles;
    for (const std::string& role : r.roles) roles += (roles.empty() ? "" : ", ") + sanitize::text(role, 64);
    std::fprintf(stderr,
                 "Signed in as the app. %s uses the mailbox %s with %s.\n"
                 "Saved in %s. The access token is valid until %s; a new one is fetched\n"
                 "with the app's credential whenever it is due.\n",
                 account.c_str(), user.c_str(), roles.empty() ? "the app's permissions" : roles.c_str(),
                 store.path_of(account).c_str(), format_utc(rec.access_expires_at).c_str());
    const AppCredentialInfo info = describe_app_credential(rec, now);
    if (!info.warning.empty()) std::fprintf(stderr, "Warning: %s\n", info.warning.c_str());
    std::fprintf(stderr,
                 "If the mail server still refuses it, Exchange is not set up for the app yet:\n"
                 "  mailoauth doctor %s\n",
                 account.c_str());
    return kExitOk;
}

}  // namespace mailoauth
