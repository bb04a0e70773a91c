#include "common/msgio.h"

#include <cerrno>
#include <ctime>
#include <poll.h>
#include <sys/socket.h>

#include "common/protocol.h"
#include "common/secret.h"

namespace mailoauth::msgio {

namespace {
int remaining(long long deadline) {
    long long left = deadline - now_ms();
    return left <= 0 ? 0 : static_cast<int>(left);
}
}  // namespace

long long now_ms() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<long long>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

Io send_all(int fd, std::string_view data, long long deadline, int& err) {
    std::size_t off = 0;
    while (off < data.size()) {
        ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            off += static_cast<std::size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int left = remaining(deadline);
            if (left == 0) return Io::TimedOut;
            struct pollfd p = {fd, POLLOUT, 0};
            if (::poll(&p, 1, left) < 0 && errno != EINTR) {
                err = errno;
                return Io::Error;
            }
            continue;
        }
        err = errno;
        return err == EPIPE || err == ECONNRESET ? Io::Closed : Io::Error;
    }
    return Io::Ok;
}

Io read_message(int fd, std::string& out, long long deadline, int& err) {
    char chunk[4096];
    Io result = Io::Ok;
    for (;;) {
        if (out.find("\n\n") != std::string::npos || (!out.empty() && out[0] == '\n')) break;
        if (out.size() > protocol::kMaxMessage) break;
        int left = remaining(deadline);
        if (left == 0) {
            result = Io::TimedOut;
            break;
        }
        // Read first, wait only when nothing is there: the peer usually
        // sent its message before we look (one system call, not two).
        ssize_t n = ::recv(fd, chunk, sizeof chunk, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd p = {fd, POLLIN, 0};
            if (::poll(&p, 1, left) < 0 && errno != EINTR) {
                err = errno;
                result = Io::Error;
                break;
            }
            continue;
        }
        if (n < 0) {
            err = errno;
            result = errno == ECONNRESET ? Io::Closed : Io::Error;
            break;
        }
        if (n == 0) break;
        std::size_t take = static_cast<std::size_t>(n);
        if (out.size() + take > protocol::kMaxMessage + 1) take = protocol::kMaxMessage + 1 - out.size();
        out.append(chunk, take);
    }
    wipe_memory(chunk, sizeof chunk);  // it held a token
    return result;
}

}  // namespace mailoauth::msgio
