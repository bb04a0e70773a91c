// Helpers shared by the browser sign-in's unit tests: printing the enums in
// assertion messages, and a minimal blocking HTTP/1.1 client on loopback
// playing the browser.
#ifndef MAILOAUTH_TESTS_UNIT_BROWSER_TEST_UTIL_H
#define MAILOAUTH_TESTS_UNIT_BROWSER_TEST_UTIL_H

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <ostream>
#include <string>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "tokenhelper/loopback_listener.h"
#include "tokenhelper/redirect.h"

namespace mailoauth {

inline std::ostream& operator<<(std::ostream& os, ReplyKind k) { return os << "ReplyKind(" << static_cast<int>(k) << ")"; }
inline std::ostream& operator<<(std::ostream& os, ListenStatus s) {
    return os << "ListenStatus(" << static_cast<int>(s) << ")";
}
inline std::ostream& operator<<(std::ostream& os, BindStatus s) { return os << "BindStatus(" << static_cast<int>(s) << ")"; }

namespace testutil {

// A connected socket to 127.0.0.1:port, or -1 with errno.
inline int connect_loopback(int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_in sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<struct sockaddr*>(&sa), sizeof sa) != 0) {
        int e = errno;
        ::close(fd);
        errno = e;
        return -1;
    }
    struct timeval tv = {5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

// Sends raw bytes and reads the answer until the server closes (5 s at
// most); "" when the connection failed.
inline std::string exchange(int port, const std::string& request) {
    int fd = connect_loopback(port);
    if (fd < 0) return "";
    std::size_t off = 0;
    while (off < request.size()) {
        ssize_t n = ::send(fd, request.data() + off, request.size() - off, MSG_NOSIGNAL);
        if (n <= 0) break;
        off += static_cast<std::size_t>(n);
    }
    std::string out;
    char buf[4096];
    for (;;) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
}

inline std::string get(int port, const std::string& target) {
    return exchange(port, "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                              "\r\nUser-Agent: test\r\nAccept: text/html\r\n\r\n");
}

}  // namespace testutil
}  // namespace mailoauth

#endif
