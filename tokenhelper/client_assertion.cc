#include "tokenhelper/client_assertion.h"

#include <cstdio>
#include <ctime>
#include <memory>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "common/json_quote.h"
#include "common/sanitize.h"

namespace mailoauth {

namespace {

struct BioFree { void operator()(BIO* p) const { BIO_free(p); } };
struct X509Free { void operator()(X509* p) const { X509_free(p); } };
struct PkeyFree { void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); } };
struct MdCtxFree { void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); } };
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

// OpenSSL's default for an encrypted PEM is to prompt on the terminal; a
// token helper run by a mail server must never wait for that.
int no_password(char*, int, int, void*) { return -1; }

BioPtr mem_bio(const std::string& s) {
    return BioPtr(BIO_new_mem_buf(s.data(), static_cast<int>(s.size())));
}

X509Ptr read_certificate(const std::string& pem, std::string& err) {
    if (pem.find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
        err = "the certificate file holds no PEM certificate (a block beginning "
              "\"-----BEGIN CERTIFICATE-----\"); give the certificate in PEM form "
              "(convert one in DER form with: openssl x509 -inform der -in FILE -out FILE.pem)";
        return nullptr;
    }
    BioPtr bio = mem_bio(pem);
    X509Ptr cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, no_password, nullptr) : nullptr);
    ERR_clear_error();
    if (!cert) err = "the certificate does not parse as a PEM X.509 certificate; check that the file is "
                     "the certificate you uploaded to the app registration";
    return cert;
}

PkeyPtr read_private_key(const Secret& pem, std::string& err) {
    const std::string& s = pem.reveal();
    if (s.find("ENCRYPTED") != std::string::npos) {
        err = "the private key is encrypted with a passphrase, which mailoauth cannot ask for; "
              "store it unencrypted in a file only its reader can read (openssl pkey -in KEY "
              "-out KEY.plain, then chmod 600 KEY.plain)";
        return nullptr;
    }
    if (s.find("PRIVATE KEY-----") == std::string::npos) {
        err = "the private key file holds no PEM private key (a block beginning "
              "\"-----BEGIN PRIVATE KEY-----\" or \"-----BEGIN RSA PRIVATE KEY-----\"); give the "
              "key of the certificate in PEM form";
        return nullptr;
    }
    BioPtr bio = mem_bio(s);
    PkeyPtr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, no_password, nullptr) : nullptr);
    ERR_clear_error();
    if (!key) err = "the private key does not parse as a PEM private key; give the unencrypted key "
                    "of the certificate in PEM form";
    return key;
}

bool asn1_to_epoch(const ASN1_TIME* t, std::int64_t& out) {
    struct tm tm {};
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return false;
    out = static_cast<std::int64_t>(timegm(&tm));
    return true;
}

std::string utc(std::int64_t t) {
    std::time_t tt = static_cast<std::time_t>(t);
    struct tm tm {};
    char buf[40];
    if (!gmtime_r(&tt, &tm) || std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        return std::to_string(t);
    return buf;
}

std::string name_line(const X509_NAME* n) {
    BioPtr bio(BIO_new(BIO_s_mem()));
    if (!bio || X509_NAME_print_ex(bio.get(), n, 0, XN_FLAG_RFC2253) < 0) return "";
    char* data = nullptr;
    long len = BIO_get_mem_data(bio.get(), &data);
    return sanitize::text(std::string(data ? data : "", len > 0 ? static_cast<std::size_t>(len) : 0), 300);
}

bool digest(const X509* cert, const EVP_MD* md, std::string& out) {
    unsigned char buf[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (X509_digest(cert, md, buf, &len) != 1) return false;
    out.assign(reinterpret_cast<const char*>(buf), len);
    return true;
}

std::string hex_upper(const std::string& bytes) {
    static const char kHex[] = "0123456789ABCDEF";
    std::string s;
    for (unsigned char c : bytes) {
        s += kHex[c >> 4];
        s += kHex[c & 15];
    }
    return s;
}

bool fill_info(const X509* cert, CertificateInfo& out, std::string& err) {
    out = CertificateInfo();
    std::string sha1, sha256;
    if (!asn1_to_epoch(X509_get0_notBefore(cert), out.not_before) ||
        !asn1_to_epoch(X509_get0_notAfter(cert), out.not_after) ||
        !digest(cert, EVP_sha1(), sha1) || !digest(cert, EVP_sha256(), sha256)) {
        ERR_clear_error();
        err = "the certificate's validity dates or thumbprint cannot be read";
        return false;
    }
    out.subject = name_line(X509_get_subject_name(cert));
    out.issuer = name_line(X509_get_issuer_name(cert));
    out.sha1_hex = hex_upper(sha1);
    out.x5t = base64url(sha1);
    out.x5t_s256 = base64url(sha256);
    if (EVP_PKEY* pub = X509_get0_pubkey(cert)) {
        out.rsa = EVP_PKEY_base_id(pub) == EVP_PKEY_RSA;
        out.key_bits = out.rsa ? EVP_PKEY_bits(pub) : 0;
    }
    ERR_clear_error();
    return true;
}

// A random UUID (version 4): Entra remembers each jti to refuse a replay.
bool random_jti(std::string& out) {
    unsigned char b[16];
    if (RAND_bytes(b, sizeof b) != 1) return false;
    b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);
    b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
    char buf[40];
    std::snprintf(buf, sizeof buf,
                  "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
                  b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
                  b[14], b[15]);
    out = buf;
    return true;
}

bool sign(EVP_PKEY* key, AssertionAlg alg, const std::string& input, std::string& sig) {
    MdCtxPtr ctx(EVP_MD_CTX_new());
    EVP_PKEY_CTX* pctx = nullptr;  // owned by ctx
    if (!ctx || EVP_DigestSignInit(ctx.get(), &pctx, EVP_sha256(), nullptr, key) != 1) return false;
    if (alg == AssertionAlg::PS256) {
        if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
            EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) != 1 ||
            EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) != 1)
            return false;
    } else if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) {
        return false;
    }
    const auto* data = reinterpret_cast<const unsigned char*>(input.data());
    std::size_t len = 0;
    if (EVP_DigestSign(ctx.get(), nullptr, &len, data, input.size()) != 1) return false;
    std::string buf(len, '\0');
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(&buf[0]), &len, data,
                       input.size()) != 1)
        return false;
    buf.resize(len);
    sig.swap(buf);
    return true;
}

}  // namespace

std::string base64url(const std::string& bytes) {
    static const char kAlphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    std::size_t i = 0;
    const auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
    for (; i + 3 <= bytes.size(); i += 3) {
        unsigned v = (b[i] << 16) | (b[i + 1] << 8) | b[i + 2];
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += kAlphabet[(v >> 6) & 63];
        out += kAlphabet[v & 63];
    }
    if (bytes.size() - i == 1) {
        unsigned v = b[i] << 16;
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
    } else if (bytes.size() - i == 2) {
        unsigned v = (b[i] << 16) | (b[i + 1] << 8);
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += kAlphabet[(v >> 6) & 63];
    }
    return out;
}

bool inspect_certificate(const std::string& pem, CertificateInfo& out, std::string& err) {
    X509Ptr cert = read_certificate(pem, err);
    return cert && fill_info(cert.get(), out, err);
}

bool make_client_assertion(const ClientAssertionParams& p, Secret& out, std::string& err) {
    out.clear();
    if (p.client_id.empty() || p.audience.empty()) {
        err = "a client assertion needs the client ID and the token endpoint";
        return false;
    }
    X509Ptr cert = read_certificate(p.certificate_pem, err);
    if (!cert) return false;
    CertificateInfo info;
    if (!fill_info(cert.get(), info, err)) return false;
    PkeyPtr key = read_private_key(p.private_key_pem, err);
    if (!key) return false;

    if (EVP_PKEY_base_id(key.get()) != EVP_PKEY_RSA) {
        err = "the private key is not an RSA key; Microsoft Entra accepts RSA certificates of "
              "2048 bits or more for app credentials: create one with "
              "openssl req -x509 -newkey rsa:3072 -nodes -keyout KEY -out CERT -days 365 -subj /CN=mailoauth";
        return false;
    }
    const int bits = EVP_PKEY_bits(key.get());
    if (bits < kMinRsaBits) {
        err = "the private key is an RSA key of " + std::to_string(bits) +
              " bits; at least 2048 are required: create a new certificate with "
              "openssl req -x509 -newkey rsa:3072 -nodes -keyout KEY -out CERT -days 365 -subj /CN=mailoauth "
              "and upload it to the app registration";
        return false;
    }
    if (X509_check_private_key(cert.get(), key.get()) != 1) {
        ERR_clear_error();
        err = "the private key does not belong to the certificate (" + info.subject +
              ", thumbprint " + info.sha1_hex + "); give the key the certificate was made with";
        return false;
    }
    if (p.now >= info.not_after) {
        err = "the certificate (" + info.subject + ", thumbprint " + info.sha1_hex +
              ") expired on " + utc(info.not_after) +
              " (notAfter); create a new certificate, upload it in Microsoft Entra admin center > "
              "App registrations > Certificates & secrets, and give it to mailoauth";
        return false;
    }
    if (p.now < info.not_before) {
        err = "the certificate (" + info.subject + ", thumbprint " + info.sha1_hex +
              ") is not valid before " + utc(info.not_before) +
              " (notBefore); check this machine's clock (timedatectl) or wait until then";
        return false;
    }

    std::string jti;
    if (!random_jti(jti)) {
        ERR_clear_error();
        err = "no random numbers available for the assertion's jti; try again";
        return false;
    }
    std::string header = std::string("{\"alg\":\"") + assertion_alg_name(p.alg) + "\",\"typ\":\"JWT\",";
    if (p.alg == AssertionAlg::PS256)
        header += "\"x5t#S256\":\"" + info.x5t_s256 + "\"}";
    else
        header += "\"x5t\":\"" + info.x5t + "\"}";
    const std::string claims =
        "{\"aud\":" + json_quote(p.audience) + ",\"iss\":" + json_quote(p.client_id) +
        ",\"sub\":" + json_quote(p.client_id) + ",\"jti\":\"" + jti +
        "\",\"nbf\":" + std::to_string(p.now - kAssertionBackdate) +
        ",\"iat\":" + std::to_string(p.now) +
        ",\"exp\":" + std::to_string(p.now + kAssertionLifetime) + "}";
    const std::string input = base64url(header) + "." + base64url(claims);
    std::string sig;
    if (!sign(key.get(), p.alg, input, sig)) {
        ERR_clear_error();
        err = std::string("signing the client assertion with ") + assertion_alg_name(p.alg) +
              " failed; check that the key is a plain RSA key";
        return false;
    }
    out = Secret(input + "." + base64url(sig));
    return true;
}

}  // namespace mailoauth
