// mailoauth-tls.so: the TLS client of `mailoauth connect`, on OpenSSL (see
// connect_tls.h for why OpenSSL itself and why a module).  No C++ exception
// leaves an entry.
#include <arpa/inet.h>
#include <cerrno>
#include <climits>
#include <cstring>
#include <new>
#include <string>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tokenhelper/connect_tls.h"

namespace mailoauth {

struct TlsSession {
    SSL_CTX* ctx = nullptr;
    SSL* ssl = nullptr;
    std::string host;
    std::string error;
};

namespace {

void copy_why(const std::string& s, char* why, std::size_t size) {
    if (!why || size == 0) return;
    std::size_t n = s.size() < size - 1 ? s.size() : size - 1;
    std::memcpy(why, s.data(), n);
    why[n] = '\0';
}

// The oldest error OpenSSL queued, in its words, or fallback.
std::string openssl_error(const char* fallback) {
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (e == 0) return fallback;
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    return buf;
}

void free_session(TlsSession* s) {
    if (!s) return;
    if (s->ssl) SSL_free(s->ssl);
    if (s->ctx) SSL_CTX_free(s->ctx);
    delete s;
}

bool is_ip_literal(const char* host) {
    unsigned char buf[16];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

TlsSession* open_session(int fd, const char* host, const char* ca_file, char* why, std::size_t why_size) {
    try {
        ERR_clear_error();
        auto* s = new TlsSession;
        s->host = host;
        s->ctx = SSL_CTX_new(TLS_client_method());
        if (!s->ctx) {
            copy_why("cannot set up TLS: " + openssl_error("out of memory"), why, why_size);
            free_session(s);
            return nullptr;
        }
        SSL_CTX_set_min_proto_version(s->ctx, TLS1_2_VERSION);
        SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER, nullptr);
        // IMAP and POP3 end their own sessions; servers commonly close
        // without close_notify, and that end is an end, not an error.
        SSL_CTX_set_options(s->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
        // Writes of part of the buffer, and the buffer may move between the
        // retries of one write (the pass-through keeps its place in it).
        SSL_CTX_set_mode(s->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        int loaded = (ca_file && *ca_file) ? SSL_CTX_load_verify_locations(s->ctx, ca_file, nullptr)
                                           : SSL_CTX_set_default_verify_paths(s->ctx);
        if (loaded != 1) {
            copy_why((ca_file && *ca_file) ? std::string("cannot use the CA file ") + ca_file + ": " +
                                                 openssl_error("no certificates in it")
                                           : "cannot load the system's CA certificates: " +
                                                 openssl_error("unknown error"),
                     why, why_size);
            free_session(s);
            return nullptr;
        }
        s->ssl = SSL_new(s->ctx);
        if (!s->ssl || SSL_set_fd(s->ssl, fd) != 1) {
            copy_why("cannot set up TLS: " + openssl_error("out of memory"), why, why_size);
            free_session(s);
            return nullptr;
        }
        X509_VERIFY_PARAM* param = SSL_get0_param(s->ssl);
        bool ok;
        if (is_ip_literal(host)) {
            // No SNI for an address (RFC 6066); the certificate must name it.
            ok = X509_VERIFY_PARAM_set1_ip_asc(param, host) == 1;
        } else {
            X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            ok = SSL_set_tlsext_host_name(s->ssl, host) == 1 && SSL_set1_host(s->ssl, host) == 1;
        }
        if (!ok) {
            copy_why(std::string("cannot check the certificate against the name '") + host + "'", why, why_size);
            free_session(s);
            return nullptr;
        }
        SSL_set_connect_state(s->ssl);
        return s;
    } catch (...) {
        copy_why("out of memory", why, why_size);
        return nullptr;
    }
}

// What an SSL_* call's failure means for the caller.
long classify(TlsSession* s, int ret, bool handshake) {
    int e = SSL_get_error(s->ssl, ret);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        return kTlsWantRead;
    case SSL_ERROR_WANT_WRITE:
        return kTlsWantWrite;
    case SSL_ERROR_ZERO_RETURN:
        return kTlsEof;
    default:
        break;
    }
    try {
        if (handshake) {
            long v = SSL_get_verify_result(s->ssl);
            if (v != X509_V_OK) {
                ERR_clear_error();
                s->error = "the certificate of " + s->host + " was refused: " +
                           X509_verify_cert_error_string(v);
                if (v == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY || v == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN ||
                    v == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT || v == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT)
                    s->error += " (signed by a certificate authority that is not trusted here; "
                                "give the right one with --ca-file, or check that nobody is in between)";
                return kTlsCertError;
            }
        }
        if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
            if (errno == 0 || errno == ECONNRESET || errno == EPIPE) {
                if (!handshake && errno == 0) return kTlsEof;
                s->error = handshake ? "the server closed the connection during the TLS handshake"
                                     : "the server reset the connection";
            } else {
                s->error = std::strerror(errno);
            }
            return kTlsError;
        }
        s->error = (handshake ? "TLS handshake with " + s->host + " failed: " : std::string("TLS: ")) +
                   openssl_error("unknown error");
    } catch (...) {
        ERR_clear_error();
    }
    return kTlsError;
}

long handshake(TlsSession* s) {
    ERR_clear_error();
    errno = 0;
    int r = SSL_connect(s->ssl);
    return r == 1 ? static_cast<long>(kTlsDone) : classify(s, r, true);
}

long read_some(TlsSession* s, char* buf, std::size_t len) {
    ERR_clear_error();
    errno = 0;
    int r = SSL_read(s->ssl, buf, len > INT_MAX ? INT_MAX : static_cast<int>(len));
    return r > 0 ? r : classify(s, r, false);
}

long write_some(TlsSession* s, const char* buf, std::size_t len) {
    ERR_clear_error();
    errno = 0;
    int r = SSL_write(s->ssl, buf, len > INT_MAX ? INT_MAX : static_cast<int>(len));
    return r > 0 ? r : classify(s, r, false);
}

const char* error_of(TlsSession* s) { return s->error.empty() ? "TLS error" : s->error.c_str(); }

void close_session(TlsSession* s) {
    if (!s) return;
    if (s->ssl && SSL_is_init_finished(s->ssl)) {
        ERR_clear_error();
        SSL_shutdown(s->ssl);  // best effort: the socket is non-blocking
    }
    ERR_clear_error();
    free_session(s);
}

const TlsModuleV1 kTable = {sizeof(TlsModuleV1), open_session, handshake, read_some,
                            write_some,          error_of,     close_session};

}  // namespace

}  // namespace mailoauth

extern "C" __attribute__((visibility("default"))) const mailoauth::TlsModuleV1* mailoauth_tls_module_v1() {
    return &mailoauth::kTable;
}
