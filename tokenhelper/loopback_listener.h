// The redirect listener of the browser sign-in (RFC 8252 section 7.3): a
// tiny HTTP server on http://127.0.0.1:PORT/ that takes exactly one answer
// from the browser, tells the browser in a short page what happened, and
// closes.
//
// Contract:
//   - binds 127.0.0.1 only (never a wildcard address), port 0 = a port the
//     kernel picks, else the given one (for `ssh -L PORT:127.0.0.1:PORT`);
//   - serves until a deadline; once a second calls tick(seconds_left);
//   - the one answer is the first GET of "/" (with any query).  Its query
//     is parsed and judged (tokenhelper/redirect.h): a code or an error
//     with our state, or a wrong or missing state, which stops the sign-in
//     (possible cross-site request forgery).  Requests for other paths
//     (the browser's /favicon.ico), other methods and incomplete requests
//     get a small error answer and do not count;
//   - every request is bounded: its head at most max_request bytes, read
//     within read_timeout_s, at most max_connections open at once (a
//     browser opens spare connections it may never use);
//   - after the answer the listening socket is closed before the page is
//     written, so a second request finds nothing to connect to;
//   - nothing is printed or logged, least of all the code.
#ifndef MAILOAUTH_TOKENHELPER_LOOPBACK_LISTENER_H
#define MAILOAUTH_TOKENHELPER_LOOPBACK_LISTENER_H

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "tokenhelper/device_flow.h"
#include "tokenhelper/redirect.h"

namespace mailoauth {

struct ListenerOptions {
    std::size_t max_request = kMaxRedirectQuery + 8 * 1024;  // request line and headers
    double read_timeout_s = 10;       // per connection, from its accept
    std::size_t max_connections = 8;  // open at once; the oldest goes first
    double write_timeout_s = 5;       // for the page
    std::string account;              // named on the success page
};

enum class ListenStatus {
    Reply,      // the one answer came; see kind and reply
    Malformed,  // the one answer came, but its query could not be parsed; see why
    Timeout,    // the deadline passed without an answer
    Failed,     // the listener broke (poll or accept failed); see why
};

struct ListenResult {
    ListenStatus status = ListenStatus::Failed;
    ReplyKind kind = ReplyKind::MissingState;  // when status is Reply
    AuthorizationReply reply;                  // when status is Reply
    std::string why;
};

enum class BindStatus {
    Ok,
    InUse,     // EADDRINUSE: another program has the port
    Denied,    // EACCES: a port below 1024 without privilege
    BadPort,   // outside 0..65535
    Failed,    // anything else (no sockets left, ...)
};

class LoopbackListener {
public:
    LoopbackListener() = default;
    ~LoopbackListener();
    LoopbackListener(const LoopbackListener&) = delete;
    LoopbackListener& operator=(const LoopbackListener&) = delete;

    // Binds 127.0.0.1:port and listens.  On failure why says it in plain
    // words with the next step ("port 8400 is in use: choose another with
    // --port, or free it").
    BindStatus open(int port, std::string& why);
    bool is_open() const { return fd_ >= 0; }
    // The port bound (the kernel's choice for port 0); 0 when not open.
    int port() const { return port_; }
    // The redirect URI this listener answers: http://127.0.0.1:PORT/
    std::string redirect_uri() const;

    // Serves until the one answer or timeout_s (measured with clock.now;
    // poll() does the waiting).  Closes the listener in every case.
    ListenResult wait(std::string_view expected_state, double timeout_s,
                      const std::function<void(long seconds_left)>& tick,
                      const ListenerOptions& opts = ListenerOptions(),
                      const DeviceFlowClock& clock = DeviceFlowClock::real());

    void close();

private:
    int fd_ = -1;
    int port_ = 0;
};

// The redirect URI for a port: http://127.0.0.1:PORT/ (RFC 8252 section
// 7.3 prefers the IP literal to "localhost", which may resolve elsewhere).
std::string loopback_redirect_uri(int port);

// The page the browser gets for a judged answer (exposed for tests): HTML,
// every interpolated text escaped.
std::string listener_page(bool success, const std::string& title, const std::string& text);

}  // namespace mailoauth

#endif
