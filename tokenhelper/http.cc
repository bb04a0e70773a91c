#include "tokenhelper/http.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <strings.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string_view>

#include "common/sanitize.h"
#include "common/secret.h"

#ifndef MAILOAUTH_VERSION
#define MAILOAUTH_VERSION "unknown"
#endif

namespace mailoauth {

namespace {

struct EasyDeleter {
    void operator()(CURL* h) const noexcept { curl_easy_cleanup(h); }
};
struct SlistDeleter {
    void operator()(curl_slist* l) const noexcept { curl_slist_free_all(l); }
};
struct UrlDeleter {
    void operator()(CURLU* u) const noexcept { curl_url_cleanup(u); }
};
struct CurlFree {
    void operator()(char* p) const noexcept { curl_free(p); }
};
using EasyHandle = std::unique_ptr<CURL, EasyDeleter>;
using Slist = std::unique_ptr<curl_slist, SlistDeleter>;
using UrlHandle = std::unique_ptr<CURLU, UrlDeleter>;
using CurlString = std::unique_ptr<char, CurlFree>;

// The parts of a URL this module decides on.  curl's own parser is used so
// the host we check is the host curl will connect to.
struct UrlParts {
    std::string scheme;  // lower case
    std::string host;    // IPv6 literals keep their brackets
    std::string port;    // empty when not given
    bool has_userinfo = false;
};

bool split_url(const std::string& url, UrlParts& parts) {
    UrlHandle u(curl_url());
    if (!u) return false;
    // No CURLU_NON_SUPPORT_SCHEME and no default scheme: a URL must name a
    // scheme curl knows.
    if (curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) return false;
    auto get = [&](CURLUPart what, std::string& into) {
        char* p = nullptr;
        if (curl_url_get(u.get(), what, &p, 0) != CURLUE_OK || p == nullptr) return false;
        CurlString owned(p);
        into = p;
        return true;
    };
    if (!get(CURLUPART_SCHEME, parts.scheme) || !get(CURLUPART_HOST, parts.host)) return false;
    get(CURLUPART_PORT, parts.port);
    std::string ignored;
    parts.has_userinfo = get(CURLUPART_USER, ignored) || get(CURLUPART_PASSWORD, ignored);
    return true;
}

bool is_loopback_host(const std::string& host) {
    if (strcasecmp(host.c_str(), "localhost") == 0) return true;
    if (host == "[::1]") return true;
    in_addr a{};
    if (inet_pton(AF_INET, host.c_str(), &a) == 1) {
        return (ntohl(a.s_addr) >> 24) == 127;
    }
    return false;
}

std::string origin_of(const UrlParts& p) {
    std::string o = p.scheme + "://" + p.host;
    if (!p.port.empty()) o += ":" + p.port;
    return o;
}

// curl's error buffer or a header of the server's, made safe to print on
// one line.
std::string printable(const char* s) {
    std::string out = sanitize::text(s != nullptr ? s : "", 300);
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
}

struct Sink {
    std::string* body;
    std::size_t max;
    bool too_large = false;
};

// Grows the body by hand so that a reallocation never leaves part of a token
// in freed memory: the old buffer is wiped before it is released.
extern "C" size_t write_body(char* data, size_t size, size_t nmemb, void* userp) {
    Sink* sink = static_cast<Sink*>(userp);
    const size_t n = size * nmemb;
    std::string& body = *sink->body;
    if (n > sink->max || body.size() > sink->max - n) {
        sink->too_large = true;
        return 0;  // makes curl stop with CURLE_WRITE_ERROR
    }
    try {
        if (body.size() + n > body.capacity()) {
            std::string bigger;
            bigger.reserve(std::max(body.capacity() * 2, body.size() + n));
            bigger.append(body);
            wipe_string(body);
            body.swap(bigger);
        }
        body.append(data, n);
    } catch (...) {
        return 0;  // never let an exception cross libcurl's C frames
    }
    return n;
}

// NO_PROXY as curl would read it from the environment, with loopback always
// added: a test's fake identity provider must never be reached via a proxy.
std::string no_proxy_list() {
#if LIBCURL_VERSION_NUM >= 0x075600  // 7.86: CIDR notation
    std::string list = "localhost,127.0.0.0/8,::1";
#else
    std::string list = "localhost,127.0.0.1,::1";
#endif
    const char* env = std::getenv("no_proxy");
    if (env == nullptr || *env == '\0') env = std::getenv("NO_PROXY");
    if (env != nullptr && *env != '\0') {
        if (std::strcmp(env, "*") == 0) return "*";
        list += ",";
        list += env;
    }
    return list;
}

HttpResult fail(HttpFailure f, std::string msg) {
    HttpResult r;
    r.failure = f;
    r.error = std::move(msg);
    return r;
}

HttpResult map_curl_error(CURLcode rc, const char* errbuf, const UrlParts& parts,
                          const HttpOptions& opts, bool too_large) {
    const std::string origin = origin_of(parts);
    std::string detail = printable(errbuf);
    if (detail.empty()) detail = curl_easy_strerror(rc);
    const std::string ca =
        opts.ca_file.empty()
            ? std::string("that the system's CA certificates are installed "
                          "(or give --ca-file PATH)")
            : "that the CA file " + opts.ca_file +
                  " given with --ca-file is the one that signed it";
    const std::string ca_name =
        opts.ca_file.empty() ? std::string("of the system") : opts.ca_file;

    if (too_large || rc == CURLE_FILESIZE_EXCEEDED) {
        return fail(HttpFailure::TooLarge,
                    origin + " sent a reply larger than " + std::to_string(opts.max_body) +
                        " bytes; refusing it");
    }
    switch (rc) {
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_CRL_BADFILE:
            return fail(HttpFailure::Tls,
                        "the CA file " + ca_name + " could not be used to check " + origin +
                            " (" + detail +
                            "); check the path given with --ca-file and that it holds "
                            "PEM certificates");
        case CURLE_PEER_FAILED_VERIFICATION:  // also CURLE_SSL_CACERT since 7.62
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_CERTPROBLEM:
            return fail(HttpFailure::Tls,
                        "the TLS certificate of " + origin + " was not accepted (" + detail +
                            "); check that the system clock is right, that the server is the "
                            "real identity provider, and " + ca);
        case CURLE_SSL_CONNECT_ERROR:
            // A handshake failure is a certificate problem when the TLS
            // library says so; otherwise treat it as a network problem.
            if (detail.find("certificate") != std::string::npos ||
                detail.find("verify") != std::string::npos) {
                return fail(HttpFailure::Tls,
                            "the TLS handshake with " + origin + " failed (" + detail +
                                "); check that the system clock is right and " + ca);
            }
            return fail(HttpFailure::Transport,
                        "the TLS handshake with " + origin + " failed (" + detail +
                            "); check the network and try again");
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_URL_MALFORMAT:
            return fail(HttpFailure::Policy, "refusing to send a token request to " + origin +
                                                 " (" + detail + ")");
        case CURLE_OPERATION_TIMEDOUT:
            return fail(HttpFailure::Transport,
                        "could not reach " + origin + ": timed out (" + detail +
                            "); check the network and try again");
        default:
            return fail(HttpFailure::Transport, "could not reach " + origin + ": " + detail +
                                                    "; check the network and try again");
    }
}

}  // namespace

void http_global_init() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

namespace {

// "0123abcd.0": the name OpenSSL looks a certificate up by.
bool is_hash_link_name(const char* n) {
    for (int i = 0; i < 8; ++i) {
        const char c = n[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return n[8] == '.' && n[9] >= '0' && n[9] <= '9';
}

bool has_hash_links(const std::string& dir) {
    DIR* d = ::opendir(dir.c_str());
    if (!d) return false;
    bool found = false;
    while (struct dirent* de = ::readdir(d)) {
        if (std::strlen(de->d_name) >= 10 && is_hash_link_name(de->d_name)) {
            found = true;
            break;
        }
    }
    ::closedir(d);
    return found;
}

}  // namespace

std::string choose_system_ca_dir(const SystemCaDefaults& d) {
    // Only OpenSSL reads a hashed directory lazily; only when libcurl has
    // both defaults is the directory known to be the bundle's twin.
    if (d.ssl_version.rfind("OpenSSL/", 0) != 0) return std::string();
    if (d.cainfo.empty() || d.capath.empty() || !d.capath_has_hash_links) return std::string();
    return d.capath;
}

const SystemCaDefaults& system_ca_defaults() {
    static const SystemCaDefaults d = [] {
        SystemCaDefaults x;
        const curl_version_info_data* v = curl_version_info(CURLVERSION_NOW);
        if (!v) return x;
        if (v->ssl_version) x.ssl_version = v->ssl_version;
#if LIBCURL_VERSION_NUM >= 0x074600  // 7.70: cainfo and capath
        if (v->age >= CURLVERSION_SEVENTH) {
            if (v->cainfo) x.cainfo = v->cainfo;
            if (v->capath) x.capath = v->capath;
        }
#endif
        if (!x.capath.empty()) x.capath_has_hash_links = has_hash_links(x.capath);
        return x;
    }();
    return d;
}

bool url_allowed(const std::string& url, bool allow_loopback_http, std::string& why) {
    UrlParts p;
    if (url.size() > 4096 || !split_url(url, p)) {
        why = "not a valid URL";
        return false;
    }
    if (p.has_userinfo) {
        why = "a URL with a user name or password is not accepted";
        return false;
    }
    if (p.scheme == "https") return true;
    if (p.scheme == "http") {
        if (!allow_loopback_http) {
            why = "plain http is not allowed; use an https:// URL";
            return false;
        }
        if (!is_loopback_host(p.host)) {
            why = "plain http is allowed only to a loopback address "
                  "(127.0.0.0/8, localhost, [::1])";
            return false;
        }
        return true;
    }
    why = "only https:// URLs are allowed, not " + p.scheme + "://";
    return false;
}

bool CurlHttpClient::check_url(const std::string& url, bool allow_loopback_http, std::string& why) {
    return url_allowed(url, allow_loopback_http, why);
}

HttpResult CurlHttpClient::post_form(const std::string& url, const std::string& body,
                                     const HttpOptions& opts) {
    return request(url, &body, opts);
}

HttpResult CurlHttpClient::get(const std::string& url, const HttpOptions& opts) {
    return request(url, nullptr, opts);
}

HttpResult CurlHttpClient::request(const std::string& url, const std::string* form,
                                   const HttpOptions& opts) {
    std::string why;
    if (!url_allowed(url, opts.allow_loopback_http, why)) {
        return fail(HttpFailure::Policy, std::string("refusing to send ") +
                                             (form ? "a token request" : "a request") + " to this URL: " + why);
    }
    static const std::string kNoBody;
    const std::string& body = form ? *form : kNoBody;
    UrlParts parts;
    split_url(url, parts);
    const bool plain_http = parts.scheme == "http";

    http_global_init();
    EasyHandle h(curl_easy_init());
    if (!h) return fail(HttpFailure::Transport, "could not initialise libcurl");

    Slist headers;
    for (const char* line : {"Accept: application/json",
                             form ? "Content-Type: application/x-www-form-urlencoded" : nullptr,
                             "Expect:"}) {
        if (line == nullptr) continue;
        curl_slist* next = curl_slist_append(headers.get(), line);
        if (next == nullptr) return fail(HttpFailure::Transport, "out of memory");
        (void)headers.release();
        headers.reset(next);
    }

    HttpResult result;
    Sink sink{&result.response.body, opts.max_body};
    result.response.body.reserve(std::min<std::size_t>(opts.max_body, 16384));
    char errbuf[CURL_ERROR_SIZE] = {0};
    const std::string no_proxy = no_proxy_list();
    const curl_off_t body_size = static_cast<curl_off_t>(body.size());

    CURL* c = h.get();
    bool set_ok = true;
    auto opt = [&set_ok](CURLcode rc) { set_ok = set_ok && rc == CURLE_OK; };
    opt(curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf));
    opt(curl_easy_setopt(c, CURLOPT_URL, url.c_str()));
#if LIBCURL_VERSION_NUM >= 0x075500  // 7.85
    opt(curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, plain_http ? "http,https" : "https"));
    opt(curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "https"));
#else
    opt(curl_easy_setopt(c, CURLOPT_PROTOCOLS,
                         plain_http ? (CURLPROTO_HTTP | CURLPROTO_HTTPS) : CURLPROTO_HTTPS));
    opt(curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS, CURLPROTO_HTTPS));
#endif
    // Every request carries a device code, refresh token or secret: a
    // redirect would hand it to another URL, so none is followed.
    opt(curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L));
    opt(curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L));
    opt(curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L));
    opt(curl_easy_setopt(c, CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2)));
    // Without --ca-file: the system's CA directory alone, where that is
    // as good as the bundle and much cheaper (see choose_system_ca_dir).
    const std::string ca_dir = opts.ca_file.empty() ? choose_system_ca_dir(system_ca_defaults()) : std::string();
    if (!opts.ca_file.empty()) {
        opt(curl_easy_setopt(c, CURLOPT_CAINFO, opts.ca_file.c_str()));
    } else if (!ca_dir.empty()) {
        opt(curl_easy_setopt(c, CURLOPT_CAINFO, static_cast<const char*>(nullptr)));
        opt(curl_easy_setopt(c, CURLOPT_CAPATH, ca_dir.c_str()));
    }
    opt(curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, opts.connect_timeout_ms));
    opt(curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, opts.total_timeout_ms));
    // No SIGALRM-based DNS timeouts: the helper may run threads (the agent).
    opt(curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L));
    opt(curl_easy_setopt(c, CURLOPT_NOPROXY, no_proxy.c_str()));
    opt(curl_easy_setopt(c, CURLOPT_USERAGENT, "mailoauth/" MAILOAUTH_VERSION));
    opt(curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get()));
    if (form) {
        opt(curl_easy_setopt(c, CURLOPT_POST, 1L));
        // POSTFIELDS, not COPYPOSTFIELDS: curl reads the caller's buffer, which
        // the caller wipes, instead of keeping its own unwiped copy.
        opt(curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, body_size));
        opt(curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str()));
    } else {
        opt(curl_easy_setopt(c, CURLOPT_HTTPGET, 1L));
    }
    opt(curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(opts.max_body)));
    opt(curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_body));
    opt(curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink));
    if (!set_ok) {
        return fail(HttpFailure::Transport,
                    "this libcurl lacks an option mailoauth needs (libcurl 7.85 or later, "
                    "built with https support)");
    }

    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_PEER_FAILED_VERIFICATION && !ca_dir.empty()) {
        // The directory lacked the root the bundle may have.  Verification
        // failed in the handshake, before the request was sent: send it
        // again, trusting the bundle as libcurl would by default.
        set_ok = true;
        opt(curl_easy_setopt(c, CURLOPT_CAINFO, system_ca_defaults().cainfo.c_str()));
        errbuf[0] = 0;
        sink.too_large = false;
        wipe_string(result.response.body);
        result.response.body.clear();
        if (set_ok) rc = curl_easy_perform(c);
    }
    if (rc != CURLE_OK) {
        wipe_string(result.response.body);
        return map_curl_error(rc, errbuf, parts, opts, sink.too_large);
    }

    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &result.response.status);
    char* ct = nullptr;
    if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct != nullptr) {
        result.response.content_type = printable(ct);
    }
    if (result.response.status >= 300 && result.response.status < 400) {
        wipe_string(result.response.body);
        HttpResult r = fail(HttpFailure::Policy,
                            "the identity provider at " + origin_of(parts) + " redirected (HTTP " +
                                std::to_string(result.response.status) +
                                "); requests to it never follow redirects; check the "
                                "URL (--authority, --issuer or the endpoint options)");
        r.response.status = result.response.status;
        return r;
    }
    return result;
}

}  // namespace mailoauth
