// TLS for `mailoauth connect`, as a module loaded on first use.
//
// OpenSSL directly rather than libcurl's connect-only mode: STARTTLS means
// speaking IMAP or POP3 in clear text on a socket and then starting TLS on
// that same socket, which libcurl cannot do for a connection it did not
// open; for imap:// and pop3:// URLs libcurl runs its own greeting,
// CAPABILITY and login phase before handing over, so we would never see the
// greeting or choose how to log in; and curl_easy_recv/send do not give a
// non-blocking read and write that poll() can drive both ways at once.
//
// A module of its own (mailoauth-tls.so, linking only libssl and
// libcrypto), not a part of mailoauth-curl.so: the program links only libc
// (see http_module.h), and a tunnel with a still-valid token, which is what
// mutt and fetchmail start on every connection, then loads OpenSSL alone,
// not libcurl with its HTTP/2, IDN, LDAP and Kerberos libraries and jsoncpp.
// mailoauth-curl.so is still loaded when the token must be refreshed.
//
// The interface is plain C types and function pointers: the program carries
// its own copy of the C++ runtime, so nothing C++ crosses, and every entry
// of the module catches everything.
#ifndef MAILOAUTH_TOKENHELPER_CONNECT_TLS_H
#define MAILOAUTH_TOKENHELPER_CONNECT_TLS_H

#include <cstddef>
#include <string>

namespace mailoauth {

struct TlsSession;  // opaque, owned by the module

// Results of handshake, read and write besides a byte count (> 0).
enum TlsIo : long {
    kTlsDone = 0,          // handshake finished
    kTlsWantRead = -1,     // poll for POLLIN, then call again
    kTlsWantWrite = -2,    // poll for POLLOUT, then call again
    kTlsEof = -3,          // the peer closed the connection
    kTlsError = -4,        // see error(); the connection is unusable
    kTlsCertError = -5,    // the certificate was refused; see error()
};

struct TlsModuleV1 {
    unsigned size;  // sizeof(TlsModuleV1)
    // A TLS client on the connected, non-blocking socket fd, for host (a
    // name or an IP address literal): TLS 1.2 or later, the certificate
    // verified against ca_file (or the system store when ca_file is empty or
    // null) and matched to host, SNI sent for a name.  nullptr with why
    // (NUL-terminated, cut to why_size) on failure.
    TlsSession* (*open)(int fd, const char* host, const char* ca_file, char* why, std::size_t why_size);
    long (*handshake)(TlsSession*);
    long (*read)(TlsSession*, char* buf, std::size_t len);
    long (*write)(TlsSession*, const char* buf, std::size_t len);
    // The reason of the last kTlsError or kTlsCertError, for a person.
    const char* (*error)(TlsSession*);
    // Sends close_notify if it can without blocking, frees the session.
    // Does not close fd.
    void (*close)(TlsSession*);
};

// Loads mailoauth-tls.so once; nullptr with why on failure.
const TlsModuleV1* tls_module(std::string& why);

}  // namespace mailoauth

#define MAILOAUTH_TLS_MODULE_ENTRY "mailoauth_tls_module_v1"
extern "C" const mailoauth::TlsModuleV1* mailoauth_tls_module_v1();

#endif
