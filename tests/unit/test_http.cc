// The HTTP wrapper against loopback sockets: URL policy, timeouts, refused
// connections, redirects, oversized bodies and the request it sends.  No
// network beyond 127.0.0.1 is used.
#include <cppunit/extensions/HelperMacros.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "tokenhelper/http.h"

using mailoauth::CurlHttpClient;
using mailoauth::HttpFailure;
using mailoauth::HttpOptions;
using mailoauth::HttpResult;

namespace {

// A listening socket on 127.0.0.1 with a kernel-chosen port.  With
// serve_once it accepts one connection, reads the request and writes a
// canned reply; without, connections complete in the backlog and never get
// an answer.
class LoopbackServer {
public:
    explicit LoopbackServer(bool listen_now = true) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
        socklen_t len = sizeof a;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
        if (listen_now) ::listen(fd_, 8);
    }
    ~LoopbackServer() {
        if (thread_.joinable()) thread_.join();
        if (fd_ >= 0) ::close(fd_);
    }
    int port() const { return port_; }
    std::string url(const std::string& scheme = "http", const std::string& path = "/token") const {
        return scheme + "://127.0.0.1:" + std::to_string(port_) + path;
    }
    // Closes the socket: its port now refuses connections.
    void close_now() {
        ::close(fd_);
        fd_ = -1;
    }
    void serve_once(std::string reply) {
        thread_ = std::thread([this, reply = std::move(reply)] {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 5000) != 1) return;
            const int c = ::accept(fd_, nullptr, nullptr);
            if (c < 0) return;
            std::string req;
            char buf[4096];
            // Read headers, then Content-Length bytes of body.
            for (;;) {
                pollfd q{c, POLLIN, 0};
                if (::poll(&q, 1, 5000) != 1) break;
                const ssize_t n = ::read(c, buf, sizeof buf);
                if (n <= 0) break;
                req.append(buf, static_cast<std::size_t>(n));
                const std::size_t end = req.find("\r\n\r\n");
                if (end == std::string::npos) continue;
                std::size_t cl = 0;
                const std::size_t h = req.find("Content-Length: ");
                if (h != std::string::npos && h < end) cl = std::stoul(req.substr(h + 16));
                if (req.size() >= end + 4 + cl) break;
            }
            request_ = req;
            std::size_t off = 0;
            while (off < reply.size()) {
                const ssize_t n = ::send(c, reply.data() + off, reply.size() - off, MSG_NOSIGNAL);
                if (n <= 0) break;
                off += static_cast<std::size_t>(n);
            }
            ::shutdown(c, SHUT_WR);
            ::close(c);
        });
    }
    // True when a connection is waiting to be accepted.
    bool has_pending(int ms) const {
        pollfd p{fd_, POLLIN, 0};
        return ::poll(&p, 1, ms) == 1;
    }
    const std::string& request() {
        if (thread_.joinable()) thread_.join();
        return request_;
    }

private:
    int fd_ = -1;
    int port_ = 0;
    std::thread thread_;
    std::string request_;
};

HttpOptions loopback_opts(long total_ms = 3000) {
    HttpOptions o;
    o.allow_loopback_http = true;
    o.connect_timeout_ms = 1000;
    o.total_timeout_ms = total_ms;
    return o;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string reply(const std::string& status_line, const std::string& body,
                  const std::string& extra_headers = "") {
    return "HTTP/1.1 " + status_line + "\r\nContent-Type: application/json; charset=utf-8\r\n" +
           extra_headers + "Content-Length: " + std::to_string(body.size()) +
           "\r\nConnection: close\r\n\r\n" + body;
}

const char kSecretBody[] = "grant_type=refresh_token&refresh_token=SECRET-REFRESH-0123456789";

}  // namespace

class HttpTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(HttpTest);
    CPPUNIT_TEST(url_allowed_table);
    CPPUNIT_TEST(plain_http_without_allow_is_policy);
    CPPUNIT_TEST(refused_port_is_transport_quickly);
    CPPUNIT_TEST(silent_server_times_out_as_transport);
    CPPUNIT_TEST(silent_tls_server_times_out_as_transport);
    CPPUNIT_TEST(unreadable_ca_file_is_tls);
    CPPUNIT_TEST(post_sends_form_and_returns_any_status);
    CPPUNIT_TEST(redirect_is_policy_and_not_followed);
    CPPUNIT_TEST(oversized_body_is_too_large);
    CPPUNIT_TEST(oversized_declared_length_is_too_large);
    CPPUNIT_TEST(system_ca_dir_table);
    CPPUNIT_TEST_SUITE_END();

public:
    void setUp() override { mailoauth::http_global_init(); }

    // Without --ca-file, the system's hashed CA directory replaces the
    // bundle only where that is equivalent and cheaper: OpenSSL, both
    // defaults compiled in, and the directory holds hashed links.
    void system_ca_dir_table() {
        using mailoauth::SystemCaDefaults;
        using mailoauth::choose_system_ca_dir;
        using mailoauth::system_ca_defaults;
        struct Case {
            SystemCaDefaults d;
            std::string want;
        } const cases[] = {
            {SystemCaDefaults{"OpenSSL/3.0.19", "/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/certs", true}, "/etc/ssl/certs"},
            {SystemCaDefaults{"OpenSSL/3.0.19", "/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/certs", false}, ""},
            {SystemCaDefaults{"OpenSSL/3.0.19", "", "/etc/ssl/certs", true}, ""},
            {SystemCaDefaults{"OpenSSL/3.0.19", "/etc/ssl/certs/ca-certificates.crt", "", false}, ""},
            {SystemCaDefaults{"GnuTLS/3.7.9", "/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/certs", true}, ""},
            {SystemCaDefaults{"", "/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/certs", true}, ""},
        };
        for (const auto& c : cases)
            CPPUNIT_ASSERT_EQUAL_MESSAGE(c.d.ssl_version + " " + c.d.capath, c.want, choose_system_ca_dir(c.d));
        // This machine's libcurl, as the helper sees it: whatever it
        // chooses is one of its own defaults.
        const SystemCaDefaults& here = system_ca_defaults();
        const std::string dir = choose_system_ca_dir(here);
        CPPUNIT_ASSERT(dir.empty() || dir == here.capath);
    }

    void url_allowed_table() {
        struct Case {
            std::string url;
            bool allow_loopback_http;
            bool want;
        } cases[] = {
            {"https://login.microsoftonline.com/organizations/oauth2/v2.0/token", false, true},
            {"HTTPS://login.microsoftonline.com/common", false, true},
            {"https://127.0.0.1:8443/x", false, true},
            {"https://[::1]:8443/x", false, true},
            {"http://login.microsoftonline.com/common", false, false},
            {"http://login.microsoftonline.com/common", true, false},
            {"http://127.0.0.1:8080/token", false, false},
            {"http://127.0.0.1:8080/token", true, true},
            {"http://127.1.2.3/token", true, true},
            {"http://localhost:8080/token", true, true},
            {"http://LOCALHOST/token", true, true},
            {"http://[::1]:8080/token", true, true},
            {"http://128.0.0.1/token", true, false},
            {"http://10.0.0.1/token", true, false},
            {"http://[::2]/token", true, false},
            {"http://localhost.evil.example/token", true, false},
            {"http://127.0.0.1.nip.io/token", true, false},
            {"http://127.0.0.1@evil.example/token", true, false},
            {"https://user:pass@login.microsoftonline.com/", false, false},
            {"ftp://127.0.0.1/x", true, false},
            {"file:///etc/passwd", true, false},
            {"ldap://127.0.0.1/", true, false},
            {"login.microsoftonline.com/common", false, false},
            {"", false, false},
            {"https://", false, false},
            {"https://exa mple.com/", false, false},
        };
        for (const Case& c : cases) {
            std::string why;
            const bool got = mailoauth::url_allowed(c.url, c.allow_loopback_http, why);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(c.url + (c.allow_loopback_http ? " (allow)" : ""), c.want, got);
            CPPUNIT_ASSERT_MESSAGE(c.url, got || !why.empty());
        }
    }

    void plain_http_without_allow_is_policy() {
        LoopbackServer s;
        HttpOptions o = loopback_opts();
        o.allow_loopback_http = false;
        CurlHttpClient http;
        const HttpResult r = http.post_form(s.url(), kSecretBody, o);
        CPPUNIT_ASSERT(r.failure == HttpFailure::Policy);
        CPPUNIT_ASSERT_MESSAGE(r.error, r.error.find("https") != std::string::npos);
        CPPUNIT_ASSERT(r.error.find("SECRET") == std::string::npos);
        const HttpResult f = http.post_form("ftp://127.0.0.1/", kSecretBody, loopback_opts());
        CPPUNIT_ASSERT(f.failure == HttpFailure::Policy);
    }

    void refused_port_is_transport_quickly() {
        LoopbackServer s(false);
        const std::string url = s.url();
        s.close_now();
        CurlHttpClient http;
        const auto t0 = std::chrono::steady_clock::now();
        const HttpResult r = http.post_form(url, kSecretBody, loopback_opts());
        CPPUNIT_ASSERT(r.failure == HttpFailure::Transport);
        CPPUNIT_ASSERT(seconds_since(t0) < 2.0);
        CPPUNIT_ASSERT_MESSAGE(r.error, r.error.find("could not reach http://127.0.0.1:") == 0);
        CPPUNIT_ASSERT_MESSAGE(r.error, r.error.find("try again") != std::string::npos);
        CPPUNIT_ASSERT(r.error.find("SECRET") == std::string::npos);
    }

    void silent_server_times_out_as_transport() {
        LoopbackServer s;  // listens, never accepts
        CurlHttpClient http;
        const auto t0 = std::chrono::steady_clock::now();
        const HttpResult r = http.post_form(s.url(), kSecretBody, loopback_opts(500));
        const double took = seconds_since(t0);
        CPPUNIT_ASSERT_MESSAGE(r.error, r.failure == HttpFailure::Transport);
        CPPUNIT_ASSERT_MESSAGE(std::to_string(took), took >= 0.4 && took < 3.0);
        CPPUNIT_ASSERT_MESSAGE(r.error, r.error.find("timed out") != std::string::npos);
        CPPUNIT_ASSERT(r.error.find("SECRET") == std::string::npos);
    }

    void silent_tls_server_times_out_as_transport() {
        LoopbackServer s;
        CurlHttpClient http;
        const auto t0 = std::chrono::steady_clock::now();
        const HttpResult r = http.post_form(s.url("https"), kSecretBody, loopback_opts(500));
        CPPUNIT_ASSERT_MESSAGE(r.error, r.failure == HttpFailure::Transport);
        CPPUNIT_ASSERT(seconds_since(t0) < 3.0);
    }

    void unreadable_ca_file_is_tls() {
        LoopbackServer s;
        HttpOptions o = loopback_opts(2000);
        o.ca_file = "/nonexistent/mailoauth-test-ca.pem";
        CurlHttpClient http;
        const HttpResult r = http.post_form(s.url("https"), kSecretBody, o);
        CPPUNIT_ASSERT_MESSAGE(r.error, r.failure == HttpFailure::Tls);
        CPPUNIT_ASSERT_MESSAGE(r.error, r.error.find("/nonexistent/mailoauth-test-ca.pem") != std::string::npos);
        CPPUNIT_ASSERT_MESSAGE(r.error, r.error.find("--ca-file") != std::string::npos);
    }

    void post_sends_form_and_returns_any_status() {
        struct Case {
            std::string status_line;
            long status;
        } cases[] = {{"200 OK", 200}, {"400 Bad Request", 400}, {"503 Service Unavailable", 503}};
        for (const Case& c : cases) {
            LoopbackServer s;
            const std::string body = R"({"error":"authorization_pending"})";
            s.serve_once(reply(c.status_line, body));
            CurlHttpClient http;
            const HttpResult r = http.post_form(s.url(), kSecretBody, loopback_opts());
            CPPUNIT_ASSERT_MESSAGE(r.error, r.ok());
            CPPUNIT_ASSERT_EQUAL(c.status, r.response.status);
            CPPUNIT_ASSERT_EQUAL(body, r.response.body);
            CPPUNIT_ASSERT_EQUAL(std::string("application/json; charset=utf-8"), r.response.content_type);
            const std::string& req = s.request();
            CPPUNIT_ASSERT_MESSAGE(req, req.rfind("POST /token HTTP/1.1\r\n", 0) == 0);
            CPPUNIT_ASSERT_MESSAGE(req, req.find("\r\nAccept: application/json\r\n") != std::string::npos);
            CPPUNIT_ASSERT_MESSAGE(req, req.find("\r\nContent-Type: application/x-www-form-urlencoded\r\n") !=
                                            std::string::npos);
            CPPUNIT_ASSERT_MESSAGE(req, req.find("\r\nUser-Agent: mailoauth/") != std::string::npos);
            CPPUNIT_ASSERT_MESSAGE(req, req.find("Expect:") == std::string::npos);
            CPPUNIT_ASSERT_MESSAGE(req, req.size() > sizeof kSecretBody &&
                                            req.compare(req.size() - (sizeof kSecretBody - 1),
                                                        std::string::npos, kSecretBody) == 0);
        }
    }

    void redirect_is_policy_and_not_followed() {
        LoopbackServer target;  // a redirect target that must never be contacted
        LoopbackServer s;
        s.serve_once(reply("302 Found", "", "Location: " + target.url() + "\r\n"));
        CurlHttpClient http;
        const HttpResult r = http.post_form(s.url(), kSecretBody, loopback_opts());
        CPPUNIT_ASSERT(r.failure == HttpFailure::Policy);
        CPPUNIT_ASSERT_MESSAGE(r.error, r.error.find("never follow redirects") != std::string::npos);
        CPPUNIT_ASSERT_EQUAL(302L, r.response.status);
        CPPUNIT_ASSERT(r.response.body.empty());
        CPPUNIT_ASSERT_MESSAGE("the redirect target was contacted", !target.has_pending(200));
    }

    void oversized_body_is_too_large() {
        LoopbackServer s;
        // No Content-Length: the limit is enforced while reading.
        s.serve_once("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n" +
                     std::string(64 * 1024, 'x'));
        HttpOptions o = loopback_opts();
        o.max_body = 4096;
        CurlHttpClient http;
        const HttpResult r = http.post_form(s.url(), kSecretBody, o);
        CPPUNIT_ASSERT_MESSAGE(r.error, r.failure == HttpFailure::TooLarge);
        CPPUNIT_ASSERT(r.response.body.empty());
    }

    void oversized_declared_length_is_too_large() {
        LoopbackServer s;
        s.serve_once(reply("200 OK", std::string(8192, 'y')));
        HttpOptions o = loopback_opts();
        o.max_body = 4096;
        CurlHttpClient http;
        const HttpResult r = http.post_form(s.url(), kSecretBody, o);
        CPPUNIT_ASSERT_MESSAGE(r.error, r.failure == HttpFailure::TooLarge);
        // Exactly at the limit is fine.
        LoopbackServer s2;
        s2.serve_once(reply("200 OK", std::string(4096, 'z')));
        const HttpResult ok = http.post_form(s2.url(), kSecretBody, o);
        CPPUNIT_ASSERT_MESSAGE(ok.error, ok.ok());
        CPPUNIT_ASSERT_EQUAL(std::size_t(4096), ok.response.body.size());
    }
};
CPPUNIT_TEST_SUITE_REGISTRATION(HttpTest);
