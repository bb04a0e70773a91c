// `mailoauth login ACCOUNT`: settle where and as whom the account signs
// in (provider, endpoints, client, scopes; see settings.h for the
// precedence of each setting), run a grant (login.h), store the tokens.
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <unistd.h>

#include "tokenhelper/browser_flow.h"
#include "tokenhelper/device_flow.h"
#include "tokenhelper/errors.h"
#include "tokenhelper/login.h"
#include "tokenhelper/secret_file.h"
#include "tokenhelper/store.h"
#include "tokenhelper/timefmt.h"
#include "tokenhelper/verbs.h"

namespace mailoauth {

namespace {

// A grant that stops before it starts (bad options, no endpoint).
LoginResult refused(int exit_code, const char* error, std::string message) {
    LoginResult out;
    out.exit_code = exit_code;
    out.error = error;
    out.message = std::move(message);
    return out;
}

// What a flow (DeviceFlowResult, BrowserFlowResult) ends with, as login
// takes it.
template <typename FlowResult>
LoginResult login_result(const FlowResult& r) {
    LoginResult out;
    out.exit_code = r.exit_code;
    out.error = r.error;
    out.message = r.message;
    out.tokens = r.tokens;
    return out;
}

}  // namespace

LoginResult device_grant(HttpClient& http, const LoginRequest& req) {
    if (req.endpoints.device.empty())
        return refused(kExitConfig, "no_device_endpoint",
                       std::string("the ") + req.provider->name +
                           " provider has no device authorization endpoint for this account; give "
                           "--device-endpoint URL, or sign in with a browser (--browser)");
    DeviceFlowParams dp;
    dp.device_endpoint = req.endpoints.device;
    dp.token_endpoint = req.endpoints.token;
    dp.authority = req.endpoints.authority;
    dp.provider = req.provider;
    dp.client_id = req.client_id;
    dp.client_secret = req.client_secret;
    dp.browser_command = req.command + " --browser";
    dp.scope = req.scope;
    dp.account = req.account;
    dp.http = req.http;
    DeviceFlowUI ui;
    return login_result(run_device_flow(http, dp, ui));
}

// The authorization code grant with PKCE (browser_flow.h) as a LoginGrantFn:
// --browser with a loopback listener, --paste without one.
LoginResult browser_grant(HttpClient& http, const LoginRequest& req) {
    const Parsed& p = *req.args;
    if (req.endpoints.authorization.empty())
        return refused(kExitConfig, "no_authorization_endpoint",
                       std::string("the ") + req.provider->name +
                           " provider has no authorization endpoint for this account; give "
                           "--authorization-endpoint URL, or sign in with a device code (without --browser)");
    BrowserFlowParams bp;
    bp.authorization_endpoint = req.endpoints.authorization;
    bp.token_endpoint = req.endpoints.token;
    bp.client_id = req.client_id;
    bp.client_secret = req.client_secret;
    bp.scope = req.scope;
    bp.account = req.account;
    bp.paste = p.has("paste");
    bp.http = req.http;
    bp.error_context.account = req.account;
    bp.error_context.authority = req.endpoints.authority;
    bp.error_context.client_id = req.client_id;
    bp.error_context.provider = req.provider;
    long n = 0;
    if (p.has("port")) {
        if (!parse_seconds(p.value("port"), 1024, 65535, n))
            return refused(kExitUsage, "bad_port",
                           "--port needs a number from 1024 to 65535 (a port you forward with ssh -L "
                           "PORT:127.0.0.1:PORT)");
        bp.port = static_cast<int>(n);
    }
    if (p.has("timeout")) {
        if (!parse_seconds(p.value("timeout"), 1, 3600, n))
            return refused(kExitUsage, "bad_timeout", "--timeout needs a number of seconds from 1 to 3600");
        bp.timeout_s = n;
    }
    // The provider's extra authorization parameters ("&k=v&k=v"), e.g.
    // Google's access_type=offline, without which it issues no refresh token.
    std::string extra = req.provider->authorize_extra ? req.provider->authorize_extra : "";
    for (std::size_t at = 0; at < extra.size();) {
        std::size_t end = extra.find('&', at);
        if (end == std::string::npos) end = extra.size();
        std::string kv = extra.substr(at, end - at);
        std::size_t eq = kv.find('=');
        if (!kv.empty() && eq != std::string::npos) bp.extra_params.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
        at = end + 1;
    }
    BrowserFlowUI ui;
    return login_result(run_browser_flow(http, bp, ui));
}

namespace {

// The grants, the default first (see login.h).
const LoginGrant kGrants[] = {
    {"device", nullptr, device_grant},
    {"authorization_code", "browser", browser_grant},
    {"authorization_code", "paste", browser_grant},
};

// Options that say where the account signs in.  When any is on the
// command line, the stored location and scopes are not used: they belong
// to the old place.
const char* const kLocationOptions[] = {"provider", "cloud", "tenant", "authority", "issuer",
                                        "token-endpoint", "device-endpoint", "authorization-endpoint"};

// One login setting: the command-line option, the record's value (nullptr:
// not used), the mailoauth.conf key, and the default.
class Settings {
public:
    Settings(const Parsed& p, const Environment& env, const std::string& account)
        : p_(p), env_(env), account_(account) {}
    std::string get(const char* opt, const std::string* stored, const char* conf_key,
                    const std::string& fallback) const {
        SettingInputs in;
        if (p_.has(opt)) in.command_line = p_.value(opt);
        if (stored != nullptr) in.record = *stored;
        config_inputs(env_.cfg, account_, conf_key, in);
        in.fallback = fallback;
        return resolve_setting(in).value;
    }

private:
    const Parsed& p_;
    const Environment& env_;
    const std::string& account_;
};

std::string joined_scopes(const Parsed& p) {
    std::string s;
    for (const auto& v : p.values("scope")) s += v + " ";
    return s;
}

}  // namespace

int verb_login(const Parsed& p, const Environment& env, HttpClient& http) {
    if (p.positional.size() != 1) return usage_error("usage: mailoauth login ACCOUNT --client-id ID [--tenant T]");
    const std::string& account = p.positional[0];
    if (!valid_account_name(account))
        return fail("'" + account + "' is not a valid account name (letters, digits and @._+- only, "
                    "e.g. alice@example.com)", kExitUsage);
    if (p.has("app")) return login_app(p, env, http);  // verb_login_app.cc
    Store store(env.store_dir);
    std::string err;
    if (!store.open(true, err)) return fail(err, kExitConfig);
    AccountRecord old;
    const bool have_old = store.load(account, old, err) == LoadStatus::Ok;
    const Settings set(p, env, account);

    // The provider, and whether the stored record is still about it.
    const std::string provider_name = set.get("provider", have_old ? &old.provider : nullptr, "provider", "");
    const Provider* provider = provider_name.empty() ? &default_provider() : find_provider(provider_name);
    if (provider == nullptr)
        return usage_error("unknown provider '" + provider_name + "'; use one of " + provider_names());
    const AccountRecord* prev = have_old && old.provider == provider->name ? &old : nullptr;
    bool moved = false;
    for (const char* o : kLocationOptions) moved = moved || p.has(o);
    const AccountRecord* place = moved ? nullptr : prev;

    // The grant: the one whose flag is given, else the default.
    const LoginGrant* grant = &kGrants[0];
    for (const LoginGrant& g : kGrants)
        if (g.option != nullptr && p.has(g.option)) grant = &g;

    if ((p.has("port") || p.has("timeout")) && std::strcmp(grant->name, "authorization_code") != 0)
        return usage_error("--port and --timeout apply to the browser sign-in: add --browser (or --paste)");
    if (p.has("browser") && p.has("paste"))
        return usage_error("give --browser (a listener on this machine) or --paste (no listener), not both");

    ProviderSettings ps;
    ps.cloud = set.get("cloud", place ? &place->cloud : nullptr, "cloud", "");
    ps.tenant = set.get("tenant", nullptr, "tenant", "");
    // The authority holds the cloud's host and the tenant, so a --tenant or
    // --cloud on the command line replaces a configured authority.
    if (p.has("authority") || !(p.has("tenant") || p.has("cloud")))
        ps.authority = set.get("authority", place ? &place->authority : nullptr, "authority", "");
    ps.issuer = set.get("issuer", place ? &place->issuer : nullptr, "issuer", "");
    // Stored endpoints stand for explicit ones only where no issuer finds them.
    const AccountRecord* explicit_place = place && place->issuer.empty() && place->authority.empty() ? place : nullptr;
    ps.token_endpoint = set.get("token-endpoint", explicit_place ? &explicit_place->token_endpoint : nullptr,
                                "token_endpoint", "");
    ps.device_endpoint = set.get("device-endpoint", explicit_place ? &explicit_place->device_endpoint : nullptr,
                                 "device_endpoint", "");
    ps.authorization_endpoint =
        set.get("authorization-endpoint", explicit_place ? &explicit_place->authorization_endpoint : nullptr,
                "authorization_endpoint", "");
    // A flag: given on the command line, stored, or "yes" in mailoauth.conf.
    const std::string stored_insecure = prev && prev->allow_insecure_http ? "yes" : "";
    ps.allow_insecure_http = p.has("allow-insecure-http") ||
                             set.get("", &stored_insecure, "allow_insecure_http", "no") == "yes";
    const std::string ca_file = set.get("ca-file", prev ? &prev->ca_file : nullptr, "ca_file", "");
    ps.http = http_options(env, ca_file, ps.allow_insecure_http);

    const std::string client_id = set.get("client-id", prev ? &prev->client_id : nullptr, "client_id", "");
    if (client_id.empty()) {
        std::string help = provider->registration_help;
        for (std::size_t at; (at = help.find("{account}")) != std::string::npos;) help.replace(at, 9, account);
        return fail("no client ID given; mailoauth has none built in, you use your own app registration.\n" + help,
                    kExitUsage);
    }
    // The client secret: from a file only (never argv), else the stored one.
    Secret client_secret;
    const std::string secret_file = set.get("client-secret-file", nullptr, "client_secret_file", "");
    if (!secret_file.empty()) {
        if (!read_secret_file(secret_file, "the client secret", client_secret, err)) return fail(err, kExitConfig);
    } else if (prev != nullptr && prev->client_id == client_id) {
        client_secret = prev->client_secret;
    }
    if (provider->requires_client_secret && client_secret.empty())
        return usage_error(std::string(provider->title) +
                           " requires the client secret of your app registration: save it alone in a file "
                           "only you can read and give --client-secret-file FILE");

    if (!ca_file.empty() && access(ca_file.c_str(), R_OK) != 0)
        return fail("cannot read the CA file '" + ca_file + "': " + std::strerror(errno), kExitConfig);

    LoginRequest req;
    int code = kExitUsage;
    std::string why;
    if (!provider->endpoints(ps, http, req.endpoints, why, code)) return fail(why, code);
    if (!http.check_url(req.endpoints.token, ps.allow_insecure_http, why))
        return fail("the token endpoint '" + req.endpoints.token + "' refused: " + why, kExitUsage);

    std::string scope = p.has("scope") ? joined_scopes(p) : set.get("scope-unused", place ? &place->scope : nullptr,
                                                                      "scope", provider->default_scope(ps));
    scope = normalize_scope(scope);
    if (scope.empty()) return usage_error("no scope to request; give --scope");

    req.account = account;
    req.provider = provider;
    req.client_id = client_id;
    req.client_secret = client_secret;
    req.scope = scope;
    req.http = ps.http;
    req.args = &p;
    req.command = "mailoauth login " + shell_quote(account) + options_as_typed(p);
    if (std::strcmp(grant->name, "device") == 0 && provider->device_flow_refusal != nullptr) {
        std::string refusal = provider->device_flow_refusal(scope);
        if (!refusal.empty())
            return fail(refusal + ":\n  " + req.command + " --browser", kExitConfig);
    }

    std::fprintf(stderr, "Signing in %s with %s at %s\n", account.c_str(), provider->title,
                 (req.endpoints.authority.empty() ? req.endpoints.token : req.endpoints.authority).c_str());
    LoginResult r = grant->run(http, req);
    if (r.exit_code != 0) return fail(r.message, r.exit_code);

    AccountRecord rec;
    rec.account = account;
    std::string user = set.get("user", prev ? &prev->user : nullptr, "user", "");
    if (user.empty()) user = !r.tokens.id_token_username.empty() ? r.tokens.id_token_username : account;
    rec.user = user;
    rec.provider = provider->name;
    rec.grant = grant->name;
    rec.authority = req.endpoints.authority;
    rec.cloud = ps.cloud;
    rec.issuer = req.endpoints.issuer;
    rec.token_endpoint = req.endpoints.token;
    rec.device_endpoint = req.endpoints.device;
    rec.authorization_endpoint = req.endpoints.authorization;
    rec.client_id = client_id;
    rec.client_secret = client_secret;
    rec.scope = scope;
    rec.ca_file = ca_file;
    rec.allow_insecure_http = ps.allow_insecure_http;
    rec.refresh_token = r.tokens.refresh_token;
    rec.access_token = r.tokens.access_token;
    std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
    rec.access_expires_at = now + r.tokens.expires_in;
    rec.access_lifetime = r.tokens.expires_in;
    rec.refresh_obtained_at = now;
    rec.created_at = have_old && old.created_at > 0 ? old.created_at : now;
    Store::Lock lock;
    if (!store.lock(account, 30000, lock, err)) return fail(err, kExitTempFail);
    if (!store.save(rec, err)) return fail("signed in, but " + err, kExitTempFail);
    std::fprintf(stderr,
                 "Signed in. Tokens for %s are saved in %s.\n"
                 "The access token is valid until %s and is refreshed automatically.\n"
                 "Mail programs can now use: mailoauth token %s\n",
                 account.c_str(), store.path_of(account).c_str(), format_utc(rec.access_expires_at).c_str(),
                 account.c_str());
    return kExitOk;
}

}  // namespace mailoauth
