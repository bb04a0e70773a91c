// The client assertion of an app registration that authenticates with a
// certificate (RFC 7523 section 2.2, Microsoft's "certificate credentials"):
// a JWT the app signs with its private key, sent to the token endpoint
// instead of a client secret.
//
// Module side: the signing needs OpenSSL's libcrypto, which the mailoauth
// program does not link (see http_module.h), so the code lives in
// mailoauth-curl.so and the program reaches it through NetModule
// (app_forward.cc).  Unit tests link client_assertion.cc directly.
//
// Entra accepts PS256 (RSA-PSS, SHA-256, MGF1 with SHA-256, salt length 32,
// as RFC 7518 section 3.5 fixes it) with the certificate named by its
// SHA-256 thumbprint in the header ("x5t#S256"), and the older RS256
// (PKCS #1 v1.5) with the SHA-1 thumbprint ("x5t").  PS256 is the default.
#ifndef MAILOAUTH_TOKENHELPER_CLIENT_ASSERTION_H
#define MAILOAUTH_TOKENHELPER_CLIENT_ASSERTION_H

#include <cstdint>
#include <string>

#include "common/secret.h"

namespace mailoauth {

enum class AssertionAlg { PS256, RS256 };

// "PS256" or "RS256" (case-insensitive); false for anything else.  Inline:
// the program parses the name without loading the module.
inline bool parse_assertion_alg(const std::string& name, AssertionAlg& out) {
    std::string up;
    for (char c : name) up += (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
    if (up == "PS256") out = AssertionAlg::PS256;
    else if (up == "RS256") out = AssertionAlg::RS256;
    else return false;
    return true;
}
inline const char* assertion_alg_name(AssertionAlg alg) {
    return alg == AssertionAlg::PS256 ? "PS256" : "RS256";
}

// How long an assertion is valid: long enough for a slow network, short
// enough that a copy is worth little (Microsoft's libraries use 10 minutes).
constexpr long kAssertionLifetime = 300;
// nbf lies this far before now, so a server whose clock is a little behind
// ours still accepts the assertion.
constexpr long kAssertionBackdate = 60;
// Keys shorter than this are refused (Entra requires RSA 2048 or more).
constexpr int kMinRsaBits = 2048;

struct ClientAssertionParams {
    std::string certificate_pem;   // the app's certificate (the first one is used)
    Secret private_key_pem;        // its RSA private key, unencrypted PEM
    std::string client_id;         // iss and sub
    std::string audience;          // aud: the token endpoint URL
    AssertionAlg alg = AssertionAlg::PS256;
    std::int64_t now = 0;          // seconds since the epoch (injected for tests)
};

// Builds and signs the assertion into out.  Checks first, with plain-words
// errors (never any of the key's bytes): PEM that does not parse, an
// encrypted key, a key that is not RSA or shorter than 2048 bits, a key
// that does not belong to the certificate, a certificate that has expired
// or is not valid yet (at now).
bool make_client_assertion(const ClientAssertionParams& p, Secret& out, std::string& err);

// What status and doctor show about the certificate.
struct CertificateInfo {
    std::string subject;           // one line, RFC 2253
    std::string issuer;
    std::int64_t not_before = 0;   // seconds since the epoch
    std::int64_t not_after = 0;
    std::string sha1_hex;          // the thumbprint Entra shows (upper-case hex)
    std::string x5t;               // base64url SHA-1 of the DER
    std::string x5t_s256;          // base64url SHA-256 of the DER
    int key_bits = 0;              // RSA modulus size; 0 when not RSA
    bool rsa = false;
};

// Parses the first certificate of pem.  False with err when none parses.
bool inspect_certificate(const std::string& pem, CertificateInfo& out, std::string& err);

// base64url without padding (RFC 7515 section 2); shared with the tests.
std::string base64url(const std::string& bytes);

}  // namespace mailoauth

#endif
