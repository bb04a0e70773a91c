#include "tokenhelper/connect_relay.h"

#include <cerrno>
#include <cstring>
#include <memory>
#include <poll.h>

namespace mailoauth::connect {

namespace {

// One direction: bytes read from `from` wait in buf[off, off+len) until
// `to` takes them.  New bytes are only appended, so a TLS write that must
// be repeated finds its bytes where it left them.
struct Direction {
    Direction(Transport& f, Transport& t, const std::string& pending, std::size_t size)
        : from(f), to(t), cap(pending.size() > size ? pending.size() : size), buf(new char[cap]) {
        std::memcpy(buf.get(), pending.data(), pending.size());
        len = pending.size();
    }
    Transport& from;
    Transport& to;
    std::size_t cap;
    std::unique_ptr<char[]> buf;
    std::size_t off = 0, len = 0;
    bool eof = false;          // `from` closed
    bool closed_to = false;    // `to` closed
    short from_wants = 0, to_wants = 0;
};

short wants(long r) { return r == kTlsWantRead ? POLLIN : r == kTlsWantWrite ? POLLOUT : 0; }

// Moves what it can without blocking; false on an error (why set).
bool step(Direction& d, bool& progress, std::string& why, const char* from_name, const char* to_name) {
    d.from_wants = d.to_wants = 0;
    while (!d.eof && d.off + d.len < d.cap) {
        long r = d.from.read(d.buf.get() + d.off + d.len, d.cap - d.off - d.len);
        if (r > 0) {
            d.len += static_cast<std::size_t>(r);
            progress = true;
        } else if (r == kTlsEof) {
            d.eof = true;
            progress = true;
        } else if (r == kTlsError) {
            why = std::string("reading from the ") + from_name + ": " + d.from.error();
            return false;
        } else {
            d.from_wants = wants(r);
            break;
        }
    }
    while (d.len > 0) {
        long w = d.to.write(d.buf.get() + d.off, d.len);
        if (w > 0) {
            d.off += static_cast<std::size_t>(w);
            d.len -= static_cast<std::size_t>(w);
            if (d.len == 0) d.off = 0;
            progress = true;
        } else if (w == kTlsEof) {
            d.closed_to = true;
            d.len = 0;
            return true;
        } else if (w == kTlsError) {
            why = std::string("writing to the ") + to_name + ": " + d.to.error();
            return false;
        } else {
            d.to_wants = wants(w);
            break;
        }
    }
    return true;
}

void add(struct pollfd* fds, int& n, int fd, short events) {
    if (!events) return;
    for (int i = 0; i < n; ++i)
        if (fds[i].fd == fd) {
            fds[i].events |= events;
            return;
        }
    fds[n].fd = fd;
    fds[n].events = events;
    fds[n].revents = 0;
    ++n;
}

}  // namespace

RelayEnd relay(Transport& server, Transport& client_in, Transport& client_out, std::string to_client,
               std::string to_server, std::size_t buffer) {
    RelayEnd end;
    Direction down(server, client_out, std::move(to_client), buffer);
    Direction up(client_in, server, std::move(to_server), buffer);
    for (;;) {
        bool progress;
        do {
            progress = false;
            if (!step(down, progress, end.error, "server", "client") ||
                !step(up, progress, end.error, "client", "server")) {
                end.who = RelayEnd::Error;
                return end;
            }
            // Either side closed, and what it sent has been passed on.
            if (up.closed_to || (down.eof && down.len == 0)) {
                end.who = RelayEnd::Server;
                return end;
            }
            if (down.closed_to || (up.eof && up.len == 0)) {
                end.who = RelayEnd::Client;
                return end;
            }
        } while (progress);
        struct pollfd fds[3];
        int n = 0;
        add(fds, n, server.fd(), static_cast<short>(down.from_wants | up.to_wants));
        add(fds, n, client_in.fd(), up.from_wants);
        add(fds, n, client_out.fd(), down.to_wants);
        if (n == 0) {
            end.who = RelayEnd::Error;
            end.error = "nothing to wait for";  // cannot happen: every stop sets a want
            return end;
        }
        if (poll(fds, static_cast<nfds_t>(n), -1) < 0 && errno != EINTR) {
            end.who = RelayEnd::Error;
            end.error = std::string("poll: ") + std::strerror(errno);
            return end;
        }
    }
}

}  // namespace mailoauth::connect
