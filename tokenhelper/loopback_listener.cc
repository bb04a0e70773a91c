#include "tokenhelper/loopback_listener.h"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#include "common/fd.h"
#include "common/secret.h"

namespace mailoauth {

namespace {

// Rounds a non-negative number of seconds (or ms) up, without libm: the
// mailoauth program links only libc (tests/e2e/test_connect.py checks).
long ceil_to_long(double x) {
    long n = static_cast<long>(x);
    return static_cast<double>(n) < x ? n + 1 : n;
}

std::string html_escape(std::string_view s) {
    std::string out;
    out.reserve(s.size() + 16);
    for (char c : s) {
        switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        case '\'': out += "&#39;"; break;
        default: out += c;
        }
    }
    return out;
}

// One accepted connection: its bytes so far and when it must have sent its
// request head.
struct Conn {
    Fd fd;
    std::string buf;
    double deadline = 0;
    bool finished = false;  // answered or gone: to be closed
    explicit Conn(int f) : fd(f) {}
    ~Conn() { wipe_string(buf); }  // the request line may hold the code
};

// Writes all of data within timeout_s, then closes the sending side.  The
// socket is non-blocking; MSG_NOSIGNAL: a browser that went away must not
// kill the program with SIGPIPE.
void send_all(int fd, std::string_view data, double timeout_s) {
    const int step_ms = 100;
    int waited_ms = 0;
    while (!data.empty()) {
        ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n > 0) {
            data.remove_prefix(static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && waited_ms < timeout_s * 1000) {
            struct pollfd p = {fd, POLLOUT, 0};
            ::poll(&p, 1, step_ms);
            waited_ms += step_ms;
            continue;
        }
        return;
    }
    ::shutdown(fd, SHUT_WR);
    // A close with unread input makes the kernel send a reset, which may
    // destroy the page before the browser has read it (a request too large,
    // a pipelined second one): read and drop what still comes, briefly,
    // until the browser closes its side.
    char sink[4096];
    std::size_t dropped = 0;
    for (int waited = 0; waited < 200 && dropped < 64 * 1024;) {
        ssize_t n = ::recv(fd, sink, sizeof sink, 0);
        if (n == 0) break;
        if (n > 0) {
            dropped += static_cast<std::size_t>(n);
            continue;
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) break;
        struct pollfd p = {fd, POLLIN, 0};
        ::poll(&p, 1, 20);
        waited += 20;
    }
    wipe_memory(sink, sizeof sink);
}

std::string http_response(int status, const char* reason, const std::string& body) {
    std::string r = "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\n";
    r += "Content-Type: text/html; charset=utf-8\r\n";
    r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    r += "Connection: close\r\n";
    r += "Cache-Control: no-store\r\n";
    // The page has no scripts, styles or links; the address it was loaded
    // from holds the code, so it must not travel as a Referer either.
    r += "Content-Security-Policy: default-src 'none'\r\n";
    r += "Referrer-Policy: no-referrer\r\n";
    r += "X-Content-Type-Options: nosniff\r\n";
    r += "\r\n";
    r += body;
    return r;
}

// A request that is not the answer: a short page, and the connection closed.
void refuse(Conn& c, int status, const char* reason, const char* text, double timeout_s) {
    send_all(c.fd.get(), http_response(status, reason, listener_page(false, reason, text)), timeout_s);
}

// Where the request head ends, or npos.
std::size_t head_end(const std::string& b) {
    std::size_t p = b.find("\r\n\r\n");
    if (p != std::string::npos) return p + 4;
    p = b.find("\n\n");
    return p == std::string::npos ? std::string::npos : p + 2;
}

}  // namespace

std::string loopback_redirect_uri(int port) { return "http://127.0.0.1:" + std::to_string(port) + "/"; }

std::string listener_page(bool success, const std::string& title, const std::string& text) {
    (void)success;
    return "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
           "<title>mailoauth: " + html_escape(title) + "</title></head>\n<body><h1>" + html_escape(title) +
           "</h1>\n<p>" + html_escape(text) + "</p>\n</body></html>\n";
}

LoopbackListener::~LoopbackListener() { close(); }

void LoopbackListener::close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

std::string LoopbackListener::redirect_uri() const { return loopback_redirect_uri(port_); }

BindStatus LoopbackListener::open(int port, std::string& why) {
    close();
    port_ = 0;
    if (port < 0 || port > 65535) {
        why = "port " + std::to_string(port) + " is not a TCP port: choose one from 1024 to 65535 with --port";
        return BindStatus::BadPort;
    }
    Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (fd.get() < 0) {
        why = std::string("cannot open a socket for the sign-in's redirect (") + std::strerror(errno) + ")";
        return BindStatus::Failed;
    }
    // A fixed port left in TIME_WAIT by the previous sign-in may be bound
    // again at once; a port another program listens on still is refused.
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd.get(), reinterpret_cast<struct sockaddr*>(&sa), sizeof sa) != 0) {
        int e = errno;
        if (e == EADDRINUSE) {
            why = "port " + std::to_string(port) + " is in use: choose another with --port, or free it";
            return BindStatus::InUse;
        }
        if (e == EACCES) {
            why = "port " + std::to_string(port) +
                  " may only be used by the administrator: choose one from 1024 to 65535 with --port";
            return BindStatus::Denied;
        }
        why = "cannot listen on 127.0.0.1 port " + std::to_string(port) + " (" + std::strerror(e) + ")";
        return BindStatus::Failed;
    }
    if (::listen(fd.get(), 16) != 0) {
        int e = errno;
        if (e == EADDRINUSE) {
            why = "port " + std::to_string(port) + " is in use: choose another with --port, or free it";
            return BindStatus::InUse;
        }
        why = std::string("cannot listen for the sign-in's redirect (") + std::strerror(e) + ")";
        return BindStatus::Failed;
    }
    socklen_t len = sizeof sa;
    if (::getsockname(fd.get(), reinterpret_cast<struct sockaddr*>(&sa), &len) != 0) {
        why = std::string("cannot learn the redirect listener's port (") + std::strerror(errno) + ")";
        return BindStatus::Failed;
    }
    port_ = ntohs(sa.sin_port);
    fd_ = fd.release();
    return BindStatus::Ok;
}

ListenResult LoopbackListener::wait(std::string_view expected_state, double timeout_s,
                                    const std::function<void(long)>& tick, const ListenerOptions& opts,
                                    const DeviceFlowClock& clock) {
    ListenResult res;
    if (fd_ < 0) {
        res.status = ListenStatus::Failed;
        res.why = "the redirect listener is not open";
        return res;
    }
    std::vector<std::unique_ptr<Conn>> conns;
    const double deadline = clock.now() + timeout_s;
    double next_tick = clock.now();
    const std::size_t max_conns = std::max<std::size_t>(1, opts.max_connections);

    for (;;) {
        double now = clock.now();
        if (now >= deadline) {
            close();
            res.status = ListenStatus::Timeout;
            res.why = "no answer from the browser within " + std::to_string(static_cast<long>(timeout_s)) + " s";
            return res;
        }
        if (now >= next_tick) {
            if (tick) tick(ceil_to_long(deadline - now));
            next_tick = now + 1.0;
        }
        // Connections that did not send a whole request head in time.
        conns.erase(std::remove_if(conns.begin(), conns.end(),
                                   [now](const std::unique_ptr<Conn>& c) { return now >= c->deadline; }),
                    conns.end());

        std::vector<struct pollfd> pfds;
        pfds.push_back({fd_, POLLIN, 0});
        double wake = std::min(deadline, next_tick);
        for (const auto& c : conns) {
            pfds.push_back({c->fd.get(), POLLIN, 0});
            wake = std::min(wake, c->deadline);
        }
        int ms = static_cast<int>(ceil_to_long(std::max(0.0, wake - now) * 1000.0));
        int n = ::poll(pfds.data(), pfds.size(), std::max(ms, 1));
        if (n < 0) {
            if (errno == EINTR) continue;
            res.status = ListenStatus::Failed;
            res.why = std::string("waiting for the browser failed (") + std::strerror(errno) + ")";
            close();
            return res;
        }
        if (n == 0) continue;

        // Read what the open connections sent, before accepting more.
        for (std::size_t i = 1; i < pfds.size(); ++i) {
            if (!(pfds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            Conn& c = *conns[i - 1];
            char buf[4096];
            ssize_t r = ::recv(c.fd.get(), buf, sizeof buf, 0);
            if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
            if (r <= 0) {
                c.finished = true;  // closed or broken before a whole request
                continue;
            }
            c.buf.append(buf, static_cast<std::size_t>(r));
            wipe_memory(buf, sizeof buf);
            std::size_t end = head_end(c.buf);
            if ((end == std::string::npos ? c.buf.size() : end) > opts.max_request) {
                refuse(c, 431, "Request Header Fields Too Large", "This request is too large to be a sign-in answer.",
                       opts.write_timeout_s);
                c.finished = true;
                continue;
            }
            if (end == std::string::npos) continue;
            // The request line: METHOD SP TARGET SP VERSION.
            std::size_t eol = c.buf.find('\n');
            std::string_view line(c.buf.data(), eol);
            if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
            std::size_t sp1 = line.find(' ');
            std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
            if (sp1 == std::string_view::npos || sp2 == std::string_view::npos ||
                line.substr(sp2 + 1).rfind("HTTP/1.", 0) != 0) {
                refuse(c, 400, "Bad Request", "This is not an HTTP request mailoauth understands.",
                       opts.write_timeout_s);
                c.finished = true;
                continue;
            }
            std::string_view method = line.substr(0, sp1);
            std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
            std::size_t q = target.find('?');
            std::string_view path = target.substr(0, q);
            std::string_view query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
            std::size_t hash = query.find('#');
            if (hash != std::string_view::npos) query = query.substr(0, hash);
            if (path != "/") {
                // Not the redirect URI: the browser's /favicon.ico, a probe.
                refuse(c, 404, "Not Found", "There is nothing here.", opts.write_timeout_s);
                c.finished = true;
                continue;
            }
            if (method != "GET") {
                refuse(c, 405, "Method Not Allowed", "The sign-in answer comes as a GET request.",
                       opts.write_timeout_s);
                c.finished = true;
                continue;
            }

            // The one answer.  No second one: the listener closes first.
            close();
            std::string title, text;
            int status = 400;
            const char* reason = "Bad Request";
            if (!parse_redirect_query(query, res.reply, res.why)) {
                res.status = ListenStatus::Malformed;
                title = "Sign-in not completed";
                text = "The answer could not be read: " + res.why +
                       ". Nothing was saved; return to the terminal and sign in again.";
            } else {
                res.status = ListenStatus::Reply;
                res.kind = judge_reply(res.reply, expected_state);
                if (res.kind == ReplyKind::Code) {
                    status = 200;
                    reason = "OK";
                    title = "Signed in";
                    text = "mailoauth received the sign-in" +
                           (opts.account.empty() ? std::string() : " for " + opts.account) +
                           ". You can close this window and return to the terminal.";
                } else {
                    title = "Sign-in not completed";
                    text = describe_reply(res.kind, res.reply) +
                           " Nothing was saved; return to the terminal and sign in again.";
                }
            }
            send_all(c.fd.get(), http_response(status, reason, listener_page(status == 200, title, text)),
                     opts.write_timeout_s);
            return res;  // conns close as they go out of scope
        }
        conns.erase(std::remove_if(conns.begin(), conns.end(),
                                   [](const std::unique_ptr<Conn>& c) { return c->finished; }),
                    conns.end());

        if (pfds[0].revents & POLLIN) {
            for (;;) {
                int cfd = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (cfd < 0) {
                    if (errno == EINTR) continue;
                    if (errno == EMFILE || errno == ENFILE) {
                        // Out of descriptors: polling on would only spin.
                        res.status = ListenStatus::Failed;
                        res.why = std::string("cannot accept the browser's connection (") +
                                  std::strerror(errno) + ")";
                        close();
                        return res;
                    }
                    // EAGAIN: all taken; ECONNABORTED and the like: that
                    // client is gone already.
                    break;
                }
                if (conns.size() >= max_conns) conns.erase(conns.begin());
                auto c = std::make_unique<Conn>(cfd);
                c->deadline = clock.now() + opts.read_timeout_s;
                conns.push_back(std::move(c));
            }
        }
    }
}

}  // namespace mailoauth
