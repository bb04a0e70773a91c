// The HTTP stack as a module loaded on first use.
//
// libcurl drags in TLS, HTTP/2, IDN, LDAP and Kerberos libraries whose
// loading costs more than everything else `mailoauth token` does when the
// cached token is still good (bench/token.py: about 6x the cost of `cat`).
// So the program links none of it: CurlHttpClient lives in the module
// mailoauth-curl.so, which LazyHttpClient dlopen()s the first time a request
// is really made (a refresh, a login).
#ifndef MAILOAUTH_TOKENHELPER_HTTP_MODULE_H
#define MAILOAUTH_TOKENHELPER_HTTP_MODULE_H

#include <string>

#include "tokenhelper/http.h"

// The module's one exported function: returns a new CurlHttpClient, or
// nullptr when libcurl cannot be initialised.  The version in the name
// changes whenever HttpClient's layout does.
#define MAILOAUTH_HTTP_MODULE_ENTRY "mailoauth_http_module_new_v1"
extern "C" mailoauth::HttpClient* mailoauth_http_module_new_v1();

namespace mailoauth {

class LazyHttpClient : public HttpClient {
public:
    LazyHttpClient() = default;
    ~LazyHttpClient() override;
    LazyHttpClient(const LazyHttpClient&) = delete;
    LazyHttpClient& operator=(const LazyHttpClient&) = delete;

    HttpResult post_form(const std::string& url, const std::string& body,
                         const HttpOptions& opts) override;
    bool check_url(const std::string& url, bool allow_loopback_http, std::string& why) override;

private:
    // Loads the module once; on failure fills why and returns nullptr.
    HttpClient* get(std::string& why);
    HttpClient* impl_ = nullptr;
    std::string load_error_;
    bool tried_ = false;
};

// Where the module is looked for: beside a build-tree binary
// (EXE_DIR/tokenhelper/.libs/), else the installed PKGLIBDIR.
std::string http_module_path();

}  // namespace mailoauth

#endif
