#include "tokenhelper/connect_transport.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace mailoauth::connect {

int set_nonblocking(int fd) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0) return -1;
    if (!(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) return -1;
    return flags;
}

PlainTransport::PlainTransport(int fd) : fd_(fd) { set_nonblocking(fd); }

long PlainTransport::read(char* buf, std::size_t len) {
    for (;;) {
        ssize_t n = ::read(fd_, buf, len);
        if (n > 0) return n;
        if (n == 0) return kTlsEof;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return kTlsWantRead;
        if (errno == ECONNRESET) return kTlsEof;
        error_ = std::strerror(errno);
        return kTlsError;
    }
}

long PlainTransport::write(const char* buf, std::size_t len) {
    for (;;) {
        ssize_t n = ::write(fd_, buf, len);
        if (n > 0) return n;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return kTlsWantWrite;
        if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) return kTlsEof;
        error_ = n < 0 ? std::strerror(errno) : "wrote nothing";
        return kTlsError;
    }
}

}  // namespace mailoauth::connect
