#include "tokenhelper/credential_source.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/sanitize.h"
#include "tokenhelper/secret_file.h"

namespace mailoauth {

namespace {

constexpr std::size_t kMaxCertificate = 64 * 1024;

bool is_pem_key(const std::string& s) {
    return s.find("-----BEGIN") != std::string::npos && s.find("PRIVATE KEY-----") != std::string::npos;
}

// A certificate is public: any owner, any mode, but still bounded.
bool read_public_file(const std::string& path, std::string& out, std::string& err) {
    const std::string shown = sanitize::text(path, 300);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        err = "cannot open the certificate " + shown + ": " + std::strerror(errno);
        return false;
    }
    struct stat st;
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        err = shown + " is not a regular file; give the certificate's PEM file";
        return false;
    }
    out.clear();
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            err = "cannot read the certificate " + shown + ": " + std::strerror(errno);
            ::close(fd);
            return false;
        }
        if (n == 0) break;
        if (out.size() + static_cast<std::size_t>(n) > kMaxCertificate) {
            err = shown + " is larger than 64 KiB: it is not a certificate file";
            ::close(fd);
            return false;
        }
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return true;
}

// The certificate part of a PEM text, with a clear error when there is none.
bool take_certificate(const std::string& text, const std::string& shown, std::string& out,
                      std::string& err) {
    out = pem_blocks(text, "CERTIFICATE");
    if (out.empty()) {
        err = shown + " holds no PEM certificate (a block beginning \"-----BEGIN CERTIFICATE-----\")";
        return false;
    }
    return true;
}

bool is_directory(const std::string& path, bool& dir, std::string& err) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
        err = "cannot use the credential at " + sanitize::text(path, 300) + ": " +
              std::strerror(errno);
        return false;
    }
    dir = S_ISDIR(st.st_mode);
    return true;
}

bool exists(const std::string& path) {
    struct stat st;
    return ::lstat(path.c_str(), &st) == 0;
}

// A key file, and the certificate from cert_path or, when that is empty or
// (for a credential directory, where cert_given is false) absent, from the
// key file itself.
bool load_key_and_cert(const std::string& key_path, const std::string& cert_path, bool cert_given,
                       AppCredential& out, std::string& err) {
    Secret key;
    if (!read_secret_file(key_path, "the private key", key, err)) return false;
    if (!is_pem_key(key.reveal())) {
        err = sanitize::text(key_path, 300) +
              " holds no PEM private key (a block beginning \"-----BEGIN PRIVATE KEY-----\")";
        return false;
    }
    std::string cert;
    if (!cert_path.empty() && (cert_given || exists(cert_path))) {
        std::string text;
        if (!read_public_file(cert_path, text, err)) return false;
        if (!take_certificate(text, sanitize::text(cert_path, 300), cert, err)) return false;
    } else if (!take_certificate(key.reveal(), sanitize::text(key_path, 300), cert, err)) {
        err += "; give the certificate as well (" +
               std::string(cert_given ? "--certificate FILE" : kCredentialCertName) + ")";
        return false;
    }
    out.kind = AppCredential::Kind::Certificate;
    out.client_secret.clear();
    out.certificate_pem = cert;
    out.private_key_pem = std::move(key);
    return true;
}

}  // namespace

std::string pem_blocks(const std::string& text, const std::string& label) {
    const std::string begin = "-----BEGIN " + label + "-----";
    const std::string end = "-----END " + label + "-----";
    std::string out;
    std::size_t at = 0;
    while ((at = text.find(begin, at)) != std::string::npos) {
        std::size_t stop = text.find(end, at + begin.size());
        if (stop == std::string::npos) break;
        stop += end.size();
        out += text.substr(at, stop - at) + "\n";
        at = stop;
    }
    return out;
}

bool expand_credential_path(const std::string& path, const char* credentials_directory,
                            std::string& out, std::string& err) {
    static const std::string kPlain = "$CREDENTIALS_DIRECTORY";
    static const std::string kBraced = "${CREDENTIALS_DIRECTORY}";
    std::size_t n = 0;
    if (path.compare(0, kBraced.size(), kBraced) == 0) n = kBraced.size();
    else if (path.compare(0, kPlain.size(), kPlain) == 0) n = kPlain.size();
    if (n == 0) {
        out = path;
    } else {
        if (n < path.size() && path[n] != '/') {
            err = "the credential path " + sanitize::text(path, 300) +
                  " must continue with '/' after $CREDENTIALS_DIRECTORY";
            return false;
        }
        if (credentials_directory == nullptr || *credentials_directory == '\0') {
            err = "the credential path " + sanitize::text(path, 300) +
                  " names $CREDENTIALS_DIRECTORY, which is not set here: it is set by systemd for a "
                  "unit with LoadCredential= (run this in that unit, e.g. through the agent, or "
                  "with systemd-run -p LoadCredential=...)";
            return false;
        }
        out = credentials_directory + path.substr(n);
    }
    if (out.empty()) {
        err = "no credential path given";
        return false;
    }
    return true;
}

bool load_client_secret(const std::string& file, AppCredential& out, std::string& err) {
    Secret s;
    if (!read_secret_file(file, "the client secret", s, err)) return false;
    if (is_pem_key(s.reveal())) {
        err = sanitize::text(file, 300) +
              " holds a private key, not a client secret; use --certificate and --private-key";
        return false;
    }
    out.kind = AppCredential::Kind::Secret;
    out.client_secret = std::move(s);
    out.certificate_pem.clear();
    out.private_key_pem.clear();
    out.source = file == "-" ? "standard input at login" : "file " + sanitize::text(file, 300) + " at login";
    return true;
}

bool load_certificate_pair(const std::string& cert_file, const std::string& key_file,
                           AppCredential& out, std::string& err) {
    if (key_file.empty()) {
        err = "a certificate credential needs its private key: --private-key FILE";
        return false;
    }
    if (!load_key_and_cert(key_file, cert_file, true, out, err)) return false;
    out.source = "files " + (cert_file.empty() ? std::string() : sanitize::text(cert_file, 300) + " and ") +
                 sanitize::text(key_file, 300) + " at login";
    return true;
}

bool load_credential_from(const std::string& given, const char* credentials_directory,
                          AppCredential& out, std::string& err) {
    std::string path;
    if (!expand_credential_path(given, credentials_directory, path, err)) return false;
    bool dir = false;
    if (!is_directory(path, dir, err)) return false;
    const std::string shown = sanitize::text(path, 300);
    if (dir) {
        std::string base = path;
        if (base.back() != '/') base += '/';
        const std::string secret_path = base + kCredentialSecretName;
        const std::string key_path = base + kCredentialKeyName;
        const bool has_secret = exists(secret_path);
        const bool has_key = exists(key_path);
        if (has_secret && has_key) {
            err = "the credential directory " + shown + " holds both " + kCredentialSecretName +
                  " and " + kCredentialKeyName + "; keep only the one this account uses";
            return false;
        }
        if (has_secret) {
            if (!load_client_secret(secret_path, out, err)) return false;
        } else if (has_key) {
            if (!load_key_and_cert(key_path, base + kCredentialCertName, false, out, err)) return false;
        } else {
            err = "the credential directory " + shown + " holds neither " + kCredentialSecretName +
                  " (a client secret) nor " + kCredentialKeyName + " and " + kCredentialCertName +
                  " (a certificate and its key)";
            return false;
        }
    } else {
        Secret s;
        if (!read_secret_file(path, "the app's credential", s, err)) return false;
        if (is_pem_key(s.reveal())) {
            if (!load_key_and_cert(path, "", false, out, err)) return false;
        } else if (s.reveal().find("-----BEGIN") != std::string::npos) {
            err = shown + " holds PEM data but no private key; give a file with the private key "
                  "and its certificate, or a file holding only the client secret";
            return false;
        } else {
            out.kind = AppCredential::Kind::Secret;
            out.client_secret = std::move(s);
            out.certificate_pem.clear();
            out.private_key_pem.clear();
        }
    }
    out.source = "read at each use from " + sanitize::text(given, 300);
    return true;
}

}  // namespace mailoauth
