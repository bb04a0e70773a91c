// Test-only RSA keys and self-signed certificates, made at run time with
// OpenSSL (no private key is committed).  Keys are generated once per test
// program and cached: RSA generation is the slow part.
#ifndef MAILOAUTH_TESTS_UNIT_TESTCERT_H
#define MAILOAUTH_TESTS_UNIT_TESTCERT_H

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>

namespace testcert {

// The cached key of `bits` bits; `slot` tells two keys of one size apart.
inline EVP_PKEY* key(int bits, int slot = 0) {
    // Never destroyed: a map destroyed at exit would leave its keys for
    // LeakSanitizer to report before the process is gone.
    static auto* cache = new std::map<std::pair<int, int>, EVP_PKEY*>;
    auto& k = (*cache)[{bits, slot}];
    if (!k) k = EVP_RSA_gen(static_cast<unsigned>(bits));
    if (!k) throw std::runtime_error("RSA key generation failed");
    return k;
}

inline std::string bio_string(BIO* b) {
    char* data = nullptr;
    long n = BIO_get_mem_data(b, &data);
    std::string s(data ? data : "", n > 0 ? static_cast<std::size_t>(n) : 0);
    BIO_free(b);
    return s;
}

// PKCS #8 PEM ("-----BEGIN PRIVATE KEY-----"), unencrypted.
inline std::string key_pem(EVP_PKEY* k) {
    BIO* b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, k, nullptr, nullptr, 0, nullptr, nullptr);
    return bio_string(b);
}

// Encrypted with a passphrase ("-----BEGIN ENCRYPTED PRIVATE KEY-----").
inline std::string encrypted_key_pem(EVP_PKEY* k) {
    BIO* b = BIO_new(BIO_s_mem());
    PEM_write_bio_PKCS8PrivateKey(b, k, EVP_aes_128_cbc(), nullptr, 0, nullptr,
                                  const_cast<char*>("test-only"));
    return bio_string(b);
}

// A self-signed certificate for k, valid from now+from to now+to seconds
// (real time: X509 dates are absolute).
inline X509* make_x509(EVP_PKEY* k, long from, long to, const std::string& cn = "mailoauth test") {
    X509* x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 4242);
    X509_gmtime_adj(X509_getm_notBefore(x), from);
    X509_gmtime_adj(X509_getm_notAfter(x), to);
    X509_set_pubkey(x, k);
    X509_NAME* n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
    X509_set_issuer_name(x, n);
    X509_sign(x, k, EVP_sha256());
    return x;
}

inline std::string cert_pem(EVP_PKEY* k, long from = -3600, long to = 365L * 86400,
                            const std::string& cn = "mailoauth test") {
    X509* x = make_x509(k, from, to, cn);
    BIO* b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, x);
    X509_free(x);
    return bio_string(b);
}

// The raw digest of a certificate's DER, computed here independently of
// the code under test (i2d + EVP_Digest).
inline std::string der_digest(const std::string& pem, const EVP_MD* md) {
    BIO* b = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    X509* x = PEM_read_bio_X509(b, nullptr, nullptr, nullptr);
    BIO_free(b);
    if (!x) throw std::runtime_error("test certificate does not parse");
    unsigned char* der = nullptr;
    int len = i2d_X509(x, &der);
    X509_free(x);
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(der, static_cast<std::size_t>(len), out, &n, md, nullptr);
    OPENSSL_free(der);
    return std::string(reinterpret_cast<char*>(out), n);
}

inline std::string b64url_decode(const std::string& in) {
    std::string std64 = in;
    for (char& c : std64) {
        if (c == '-') c = '+';
        else if (c == '_') c = '/';
    }
    while (std64.size() % 4) std64 += '=';
    std::string out(std64.size(), '\0');
    int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(&out[0]),
                            reinterpret_cast<const unsigned char*>(std64.data()),
                            static_cast<int>(std64.size()));
    if (n < 0) throw std::runtime_error("bad base64url");
    std::size_t pad = 0;
    for (std::size_t i = std64.size(); i > 0 && std64[i - 1] == '='; --i) ++pad;
    out.resize(static_cast<std::size_t>(n) - pad);
    return out;
}

inline std::string b64url_encode(const std::string& in) {
    std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(&out[0]),
                            reinterpret_cast<const unsigned char*>(in.data()),
                            static_cast<int>(in.size()));
    out.resize(static_cast<std::size_t>(n));
    while (!out.empty() && out.back() == '=') out.pop_back();
    for (char& c : out) {
        if (c == '+') c = '-';
        else if (c == '/') c = '_';
    }
    return out;
}

// Whether sig is a valid PS256 (salt 32, MGF1-SHA256) or RS256 signature of
// input under k's public key.
inline bool verify(EVP_PKEY* k, bool pss, const std::string& input, const std::string& sig) {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX* pctx = nullptr;
    bool ok = EVP_DigestVerifyInit(ctx, &pctx, EVP_sha256(), nullptr, k) == 1;
    if (ok && pss) {
        ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) == 1 &&
             EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) == 1;
    } else if (ok) {
        ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1;
    }
    ok = ok && EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                                reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
}

}  // namespace testcert

#endif
