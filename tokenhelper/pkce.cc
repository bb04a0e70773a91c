#include "tokenhelper/pkce.h"

#include <cerrno>
#include <cstring>
#include <sys/random.h>

#include "common/sha256.h"

namespace mailoauth::pkce {

bool random_bytes(unsigned char* out, std::size_t n, std::string& why) {
    std::size_t got = 0;
    while (got < n) {
        // Blocks only until the kernel's pool is first initialised (early
        // boot); never returns fewer bytes than asked for up to 256 except
        // when interrupted.
        ssize_t r = getrandom(out + got, n - got, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            why = std::string("the system's random number generator failed (") + std::strerror(errno) + ")";
            wipe_memory(out, n);
            return false;
        }
        got += static_cast<std::size_t>(r);
    }
    return true;
}

std::string base64url(const void* data, std::size_t n) {
    static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const auto* p = static_cast<const unsigned char*>(data);
    std::string out;
    out.reserve((n * 4 + 2) / 3);
    std::size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        unsigned v = (unsigned(p[i]) << 16) | (unsigned(p[i + 1]) << 8) | p[i + 2];
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += kAlphabet[(v >> 6) & 63];
        out += kAlphabet[v & 63];
    }
    if (n - i == 1) {
        unsigned v = unsigned(p[i]) << 16;
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
    } else if (n - i == 2) {
        unsigned v = (unsigned(p[i]) << 16) | (unsigned(p[i + 1]) << 8);
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += kAlphabet[(v >> 6) & 63];
    }
    return out;
}

std::string challenge_s256(std::string_view verifier) {
    const sha256::Digest d = sha256::digest(verifier);
    return base64url(d.data(), d.size());
}

bool valid_verifier(std::string_view v) {
    if (v.size() < 43 || v.size() > 128) return false;
    for (char c : v) {
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                  c == '.' || c == '_' || c == '~';
        if (!ok) return false;
    }
    return true;
}

bool make_pkce(Pkce& out, std::string& why, const RandomSource& rnd) {
    unsigned char buf[kVerifierBytes];
    if (!rnd(buf, sizeof buf, why)) {
        wipe_memory(buf, sizeof buf);
        return false;
    }
    std::string v = base64url(buf, sizeof buf);
    wipe_memory(buf, sizeof buf);
    out.challenge = challenge_s256(v);
    out.verifier = Secret(v);
    wipe_string(v);
    return true;
}

bool make_state(std::string& out, std::string& why, const RandomSource& rnd) {
    unsigned char buf[kStateBytes];
    if (!rnd(buf, sizeof buf, why)) return false;
    out = base64url(buf, sizeof buf);
    return true;
}

bool equal_constant_time(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    unsigned char diff = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
        diff |= static_cast<unsigned char>(a[i] ^ b[i]);
    return diff == 0;
}

}  // namespace mailoauth::pkce
