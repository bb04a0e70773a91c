// The one HTTP wrapper of the token helper.  HTTPS only (plain http only to
// a loopback address and only when explicitly allowed, for tests), peer and
// host verification always on, connect and total timeouts, a bounded body,
// no redirects (every request here carries a secret or a code).
#ifndef MAILOAUTH_TOKENHELPER_HTTP_H
#define MAILOAUTH_TOKENHELPER_HTTP_H

#include <cstddef>
#include <string>

namespace mailoauth {

struct HttpOptions {
    std::string ca_file;                   // empty: the system's CA store
    long connect_timeout_ms = 10000;
    long total_timeout_ms = 30000;
    std::size_t max_body = 1 << 20;        // larger responses are an error
    bool allow_loopback_http = false;      // tests only
};

enum class HttpFailure {
    None,
    Transport,   // DNS, connect, reset, timeout: temporary (exit 75)
    Tls,         // certificate not trusted, host mismatch: configuration (78)
    TooLarge,    // body over max_body: bad input (treated as temporary)
    Policy,      // URL refused (not https, redirect, bad scheme): configuration
};

struct HttpResponse {
    long status = 0;
    std::string content_type;
    std::string body;
};

struct HttpResult {
    HttpFailure failure = HttpFailure::None;
    std::string error;      // for a person; never contains the request body
    HttpResponse response;  // valid when failure == None (any status code)
    bool ok() const { return failure == HttpFailure::None; }
};

// The seam: tests and the device flow depend on this interface.
class HttpClient {
public:
    virtual ~HttpClient() = default;
    // POSTs an application/x-www-form-urlencoded body with
    // "Accept: application/json".  The body is never logged or echoed.
    virtual HttpResult post_form(const std::string& url, const std::string& body,
                                 const HttpOptions& opts) = 0;
    // GETs url with "Accept: application/json" (a discovery document).  No
    // secret goes with it; redirects are still refused.  The default, for
    // fakes in tests that need none, fails with Policy.
    virtual HttpResult get(const std::string& url, const HttpOptions& opts) {
        (void)opts;
        HttpResult r;
        r.failure = HttpFailure::Policy;
        r.error = "this HTTP client cannot fetch " + url;
        return r;
    }
    // Whether post_form would accept url (see url_allowed below).  Fakes in
    // tests may keep the default, which accepts everything.
    virtual bool check_url(const std::string& url, bool allow_loopback_http, std::string& why) {
        (void)url;
        (void)allow_loopback_http;
        why.clear();
        return true;
    }
};

// libcurl implementation.  Call curl_global_init once in main (done by
// http_global_init) before creating clients.
class CurlHttpClient : public HttpClient {
public:
    HttpResult post_form(const std::string& url, const std::string& body,
                         const HttpOptions& opts) override;
    HttpResult get(const std::string& url, const HttpOptions& opts) override;
    bool check_url(const std::string& url, bool allow_loopback_http, std::string& why) override;

private:
    // One request: a POST of *form when form is set, else a GET.
    HttpResult request(const std::string& url, const std::string* form, const HttpOptions& opts);
};

void http_global_init();

// The system's CA store, the cheap way.  libcurl's default is its CA bundle
// file (Debian: /etc/ssl/certs/ca-certificates.crt, some 140
// certificates), which OpenSSL parses in full for every handshake: 28 to
// 37 ms on the benchmark machine, more than the rest of a refresh.  The
// same certificates are in the hashed directory beside it (Debian's
// update-ca-certificates writes both), from which OpenSSL reads only the
// issuer a chain needs.  So with OpenSSL, and a default CA directory that
// holds hashed certificate links, a request without --ca-file trusts that
// directory alone; should verification fail that way, it is tried once
// more with the bundle (no request data is sent before the handshake
// completes), so a directory that lacks a root costs time, not a refusal.
// Returns the directory, or "" to keep libcurl's defaults.
struct SystemCaDefaults {
    std::string ssl_version;  // curl_version_info()->ssl_version
    std::string cainfo;       // libcurl's default bundle ("" when none)
    std::string capath;       // libcurl's default directory ("" when none)
    bool capath_has_hash_links = false;
};
std::string choose_system_ca_dir(const SystemCaDefaults& d);
// This process's libcurl and file system, looked at once.
const SystemCaDefaults& system_ca_defaults();

// True for https URLs, and for http URLs to 127.0.0.0/8 or [::1] when
// allow_loopback_http is set.  Fills why otherwise.
bool url_allowed(const std::string& url, bool allow_loopback_http, std::string& why);

}  // namespace mailoauth

#endif
