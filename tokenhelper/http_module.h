// The network layer as a module loaded on first use.
//
// libcurl drags in TLS, HTTP/2, IDN, LDAP and Kerberos libraries, and
// jsoncpp and the shared C++ runtime cost more to load than everything else
// `mailoauth token` does when the cached token is still good (bench/token.py).
// So the program links none of them: the HTTP client (http.cc) and the JSON
// reply parsers (oauth.cc) live in the module mailoauth-curl.so, which is
// dlopen()ed the first time a request is really made (a refresh, a login).
#ifndef MAILOAUTH_TOKENHELPER_HTTP_MODULE_H
#define MAILOAUTH_TOKENHELPER_HTTP_MODULE_H

#include <string>
#include <string_view>

#include <vector>

#include "tokenhelper/client_assertion.h"
#include "tokenhelper/http.h"
#include "tokenhelper/jwt_claims.h"
#include "tokenhelper/oauth.h"

namespace mailoauth {

// What the module offers.  The program and the module are built together
// from the same headers; the version in the entry's name changes whenever
// this table or the types it carries change (v2: HttpClient::get and
// parse_discovery_document).
struct NetModule {
    unsigned size;  // sizeof(NetModule), a cheap sanity check
    // A new CurlHttpClient, or nullptr when libcurl cannot be initialised.
    HttpClient* (*new_client)();
    bool (*parse_device_code_response)(std::string_view, DeviceCodeResponse&, std::string&);
    bool (*parse_token_response)(std::string_view, TokenResponse&, std::string&);
    bool (*parse_error_response)(std::string_view, OAuthError&);
    bool (*parse_discovery_document)(std::string_view, DiscoveryDocument&, std::string&);
    // App-only accounts (app_forward.cc forwards to these): the signed
    // client assertion and the certificate's facts need libcrypto, the
    // token's roles claim jsoncpp.
    bool (*make_client_assertion)(const ClientAssertionParams&, Secret&, std::string&);
    bool (*inspect_certificate)(const std::string&, CertificateInfo&, std::string&);
    RolesClaim (*access_token_roles)(std::string_view, std::vector<std::string>&);
};

// Loads the module once (thread-safe); nullptr with why on failure.
const NetModule* net_module(std::string& why);

// Where the module is looked for: beside a build-tree binary
// (EXE_DIR/tokenhelper/.libs/), else the installed PKGLIBDIR.
std::string net_module_path();

class LazyHttpClient : public HttpClient {
public:
    LazyHttpClient() = default;
    ~LazyHttpClient() override;
    LazyHttpClient(const LazyHttpClient&) = delete;
    LazyHttpClient& operator=(const LazyHttpClient&) = delete;

    HttpResult post_form(const std::string& url, const std::string& body,
                         const HttpOptions& opts) override;
    HttpResult get(const std::string& url, const HttpOptions& opts) override;
    bool check_url(const std::string& url, bool allow_loopback_http, std::string& why) override;
    // Whether a request loaded the module (and with it libcurl and TLS).
    bool loaded() const { return impl_ != nullptr; }

private:
    HttpClient* client(std::string& why);
    HttpClient* impl_ = nullptr;
    bool tried_ = false;
};

}  // namespace mailoauth

#define MAILOAUTH_NET_MODULE_ENTRY "mailoauth_net_module_v3"
extern "C" const mailoauth::NetModule* mailoauth_net_module_v3();

#endif
