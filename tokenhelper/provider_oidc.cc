// A generic OAuth 2.0 / OpenID Connect provider (Keycloak, Authentik and
// the like in front of a Dovecot or Cyrus server): endpoints from the
// issuer's discovery document, or given one by one.
#include "common/sanitize.h"
#include "tokenhelper/errors.h"
#include "tokenhelper/provider.h"

namespace mailoauth {

namespace {

constexpr std::size_t kMaxDiscovery = 64 * 1024;  // real documents are a few KiB

bool refuse(std::string& why, int& exit_code, int code, std::string msg) {
    why = std::move(msg);
    exit_code = code;
    return false;
}

// A URL from the document or the command line may be used: absolute https
// (or http to loopback with --allow-insecure-http), as for every request.
bool usable(HttpClient& http, const ProviderSettings& s, const char* what, const std::string& url,
            std::string& why, int& exit_code) {
    std::string reason;
    if (http.check_url(url, s.allow_insecure_http, reason)) return true;
    return refuse(why, exit_code, kExitConfig,
                  std::string(what) + " '" + sanitize::text(url, 200) + "' cannot be used: " + reason);
}

bool discover(const ProviderSettings& s, HttpClient& http, Endpoints& out, std::string& why, int& exit_code) {
    const std::string issuer = strip_trailing_slashes(s.issuer);
    if (!usable(http, s, "the issuer", issuer, why, exit_code)) return false;
    const std::string url = issuer + "/.well-known/openid-configuration";
    HttpOptions o = s.http;
    o.max_body = kMaxDiscovery;
    HttpResult r = http.get(url, o);
    if (!r.ok())
        return refuse(why, exit_code,
                      r.failure == HttpFailure::Transport || r.failure == HttpFailure::TooLarge ? kExitTempFail
                                                                                                : kExitConfig,
                      "could not read the discovery document " + url + ": " + r.error);
    if (r.response.status != 200)
        return refuse(why, exit_code, r.response.status >= 500 ? kExitTempFail : kExitConfig,
                      "the discovery document " + url + " answered HTTP " + std::to_string(r.response.status) +
                          "; check --issuer (the URL the provider calls its issuer)");
    DiscoveryDocument d;
    std::string perr;
    if (!parse_discovery_document(r.response.body, d, perr))
        return refuse(why, exit_code, kExitConfig, "the discovery document " + url + " cannot be used: " + perr);
    // OpenID Connect Discovery 1.0, section 4.3: the document must name
    // the issuer it was fetched for, or a server could speak for another.
    if (d.issuer != s.issuer && d.issuer != issuer)
        return refuse(why, exit_code, kExitConfig,
                      "the discovery document at " + url + " names another issuer ('" +
                          sanitize::text(d.issuer, 200) + "'); give that exact URL as --issuer");
    out = Endpoints();
    out.issuer = d.issuer;
    out.token = d.token_endpoint;
    out.authorization = d.authorization_endpoint;
    out.device = d.device_authorization_endpoint;
    return true;
}

bool oidc_endpoints(const ProviderSettings& s, HttpClient& http, Endpoints& out, std::string& why,
                    int& exit_code) {
    if (s.issuer.empty() && s.token_endpoint.empty())
        return refuse(why, exit_code, kExitUsage,
                      "the oidc provider needs --issuer URL (its discovery document is read) or "
                      "--token-endpoint URL with --device-endpoint and/or --authorization-endpoint");
    if (!s.issuer.empty() && !discover(s, http, out, why, exit_code)) return false;
    if (s.issuer.empty()) out = Endpoints();
    // Endpoints given one by one win over the discovered ones.
    if (!s.token_endpoint.empty()) out.token = s.token_endpoint;
    if (!s.device_endpoint.empty()) out.device = s.device_endpoint;
    if (!s.authorization_endpoint.empty()) out.authorization = s.authorization_endpoint;
    struct Check {
        const char* what;
        const std::string* url;
    };
    for (const Check& c : {Check{"the token endpoint", &out.token}, Check{"the device endpoint", &out.device},
                           Check{"the authorization endpoint", &out.authorization}})
        if (!c.url->empty() && !usable(http, s, c.what, *c.url, why, exit_code)) return false;
    return true;
}

// openid: the id_token names the user (the name put on the wire);
// offline_access: a refresh token.  The mail server's own scope, if it
// wants one, is the user's to add with --scope.
std::string oidc_scope(const ProviderSettings&) { return "openid offline_access"; }

MailHosts oidc_hosts(const ProviderSettings&) { return MailHosts(); }

}  // namespace

extern const Provider kOidcProvider;
const Provider kOidcProvider = {
    "oidc",
    "OAuth 2.0 / OpenID Connect provider",
    oidc_endpoints,
    oidc_scope,
    oidc_hosts,
    nullptr,
    nullptr,
    nullptr,
    {0, false,
     "How long a refresh token lives is the provider's setting (Keycloak: the SSO session idle "
     "and maximum times)."},
    false,
    "",
    "  1. In your identity provider create a public client (or a confidential one; then\n"
    "     keep its secret in a file and pass --client-secret-file FILE) that allows the\n"
    "     device authorization grant or the authorization code flow with PKCE.\n"
    "  2. Run: mailoauth login {account} --provider oidc --issuer URL --client-id CLIENT-ID",
};

}  // namespace mailoauth
