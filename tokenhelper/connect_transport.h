// The server side of `mailoauth connect`: a socket, in clear text (for
// STARTTLS's first exchange, or a loopback server) or under TLS
// (mailoauth-tls.so, see connect_tls.h).  Non-blocking: every call says
// what to poll for when it cannot go on.
#ifndef MAILOAUTH_TOKENHELPER_CONNECT_TRANSPORT_H
#define MAILOAUTH_TOKENHELPER_CONNECT_TRANSPORT_H

#include <cstddef>
#include <string>

#include "tokenhelper/connect_tls.h"

namespace mailoauth::connect {

class Transport {
public:
    virtual ~Transport() = default;
    virtual int fd() const = 0;
    // A byte count (> 0) or one of kTlsWantRead, kTlsWantWrite, kTlsEof,
    // kTlsError (then error() says why).
    virtual long read(char* buf, std::size_t len) = 0;
    virtual long write(const char* buf, std::size_t len) = 0;
    virtual std::string error() const = 0;
};

// A connected socket (or any descriptor), made non-blocking.  Does not
// close it.
class PlainTransport : public Transport {
public:
    explicit PlainTransport(int fd);
    int fd() const override { return fd_; }
    long read(char* buf, std::size_t len) override;
    long write(const char* buf, std::size_t len) override;
    std::string error() const override { return error_; }

private:
    int fd_;
    std::string error_;
};

// TLS on a connected socket, through the module's table.
class TlsTransport : public Transport {
public:
    TlsTransport(const TlsModuleV1& mod, TlsSession* s, int fd) : mod_(mod), s_(s), fd_(fd) {}
    ~TlsTransport() override { mod_.close(s_); }
    TlsTransport(const TlsTransport&) = delete;
    TlsTransport& operator=(const TlsTransport&) = delete;
    int fd() const override { return fd_; }
    long read(char* buf, std::size_t len) override { return mod_.read(s_, buf, len); }
    long write(const char* buf, std::size_t len) override { return mod_.write(s_, buf, len); }
    std::string error() const override { return mod_.error(s_); }

private:
    const TlsModuleV1& mod_;
    TlsSession* s_;
    int fd_;
};

// Makes fd non-blocking; returns its previous flags, or -1.
int set_nonblocking(int fd);

}  // namespace mailoauth::connect

#endif
