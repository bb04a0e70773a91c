// Proof Key for Code Exchange (RFC 7636) and the `state` of an
// authorization request (RFC 6749 section 10.12), for the browser sign-in.
//
// The verifier is 32 random bytes in base64url without padding (43
// characters, the RFC's recommendation); the challenge is
// base64url(SHA-256(verifier)), method S256.  The state is 24 random bytes
// (32 characters).  The verifier is a secret until the token request has
// used it; the challenge and the state travel in the authorization URL.
//
// Randomness comes from the kernel's generator through getrandom(2), the
// source OpenSSL's own RAND_bytes seeds from: calling OpenSSL here would link
// libcrypto into the program, which links only libc so that `mailoauth
// token` starts fast (see http_module.h).  SHA-256 is common/sha256.h.
#ifndef MAILOAUTH_TOKENHELPER_PKCE_H
#define MAILOAUTH_TOKENHELPER_PKCE_H

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "common/secret.h"

namespace mailoauth::pkce {

inline constexpr const char* kMethod = "S256";
inline constexpr std::size_t kVerifierBytes = 32;  // 43 characters
inline constexpr std::size_t kStateBytes = 24;     // 32 characters

// Fills n bytes; false with why when no randomness can be had.  A seam for
// tests; the default is random_bytes below.
using RandomSource = std::function<bool(unsigned char* out, std::size_t n, std::string& why)>;
bool random_bytes(unsigned char* out, std::size_t n, std::string& why);

// RFC 4648 section 5 alphabet, no '=' padding.
std::string base64url(const void* data, std::size_t n);

// base64url(SHA-256(verifier)) (RFC 7636 section 4.2).
std::string challenge_s256(std::string_view verifier);

// True for a verifier RFC 7636 section 4.1 allows: 43 to 128 characters of
// [A-Z a-z 0-9 - . _ ~].
bool valid_verifier(std::string_view v);

struct Pkce {
    Secret verifier;
    std::string challenge;
};

// A fresh verifier and its challenge; false with why when the random source
// fails (nothing is filled in then).
bool make_pkce(Pkce& out, std::string& why, const RandomSource& rnd = random_bytes);

// A fresh state value; false with why when the random source fails.
bool make_state(std::string& out, std::string& why, const RandomSource& rnd = random_bytes);

// Compares in time independent of where a and b first differ (their
// lengths are not secret): for the state a browser hands back.
bool equal_constant_time(std::string_view a, std::string_view b) noexcept;

}  // namespace mailoauth::pkce

#endif
