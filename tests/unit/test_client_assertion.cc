// The RFC 7523 client assertion (tokenhelper/client_assertion.cc) and the
// roles claim reader (tokenhelper/jwt_claims.cc): structure, signatures
// checked with OpenSSL, thumbprints, and every refusal.
#include <cppunit/extensions/HelperMacros.h>

#include <json/json.h>

#include <ctime>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "tests/unit/testcert.h"
#include "tokenhelper/client_assertion.h"
#include "tokenhelper/jwt_claims.h"

using mailoauth::AssertionAlg;
using mailoauth::CertificateInfo;
using mailoauth::ClientAssertionParams;
using mailoauth::RolesClaim;
using mailoauth::Secret;

namespace {

const char* kClient = "11111111-2222-3333-4444-555555555555";
const char* kAud = "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token";

std::int64_t now() { return static_cast<std::int64_t>(std::time(nullptr)); }

ClientAssertionParams params(EVP_PKEY* k, AssertionAlg alg = AssertionAlg::PS256) {
    ClientAssertionParams p;
    p.certificate_pem = testcert::cert_pem(k);
    p.private_key_pem = Secret(testcert::key_pem(k));
    p.client_id = kClient;
    p.audience = kAud;
    p.alg = alg;
    p.now = now();
    return p;
}

std::vector<std::string> split(const std::string& s) {
    std::vector<std::string> parts;
    std::size_t at = 0, dot;
    while ((dot = s.find('.', at)) != std::string::npos) {
        parts.push_back(s.substr(at, dot - at));
        at = dot + 1;
    }
    parts.push_back(s.substr(at));
    return parts;
}

Json::Value json(const std::string& text) {
    Json::CharReaderBuilder b;
    std::unique_ptr<Json::CharReader> r(b.newCharReader());
    Json::Value v;
    std::string errs;
    CPPUNIT_ASSERT_MESSAGE(text, r->parse(text.data(), text.data() + text.size(), &v, &errs));
    return v;
}

bool contains(const std::string& hay, const std::string& needle) {
    return hay.find(needle) != std::string::npos;
}

// No line of the key's base64 body appears in err.
void assert_no_key_material(const std::string& err, const std::string& key_pem) {
    std::size_t at = 0, nl;
    while ((nl = key_pem.find('\n', at)) != std::string::npos) {
        std::string line = key_pem.substr(at, nl - at);
        at = nl + 1;
        if (line.size() < 16 || line[0] == '-') continue;
        CPPUNIT_ASSERT_MESSAGE(err, !contains(err, line.substr(0, 16)));
    }
}

std::string jwt_with_payload(const std::string& payload) {
    return testcert::b64url_encode("{\"alg\":\"RS256\",\"typ\":\"JWT\"}") + "." +
           testcert::b64url_encode(payload) + "." + testcert::b64url_encode("signature");
}

}  // namespace

class ClientAssertionTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(ClientAssertionTest);
    CPPUNIT_TEST(ps256_header_and_claims);
    CPPUNIT_TEST(ps256_signature_verifies_with_salt_32);
    CPPUNIT_TEST(rs256_header_and_signature);
    CPPUNIT_TEST(jti_is_fresh_each_time);
    CPPUNIT_TEST(claims_are_json_escaped);
    CPPUNIT_TEST(key_not_matching_certificate);
    CPPUNIT_TEST(short_key_refused);
    CPPUNIT_TEST(expired_and_not_yet_valid_certificate);
    CPPUNIT_TEST(unparsable_and_encrypted_pem);
    CPPUNIT_TEST(combined_pem_works_for_both);
    CPPUNIT_TEST(inspect_reports_dates_and_thumbprints);
    CPPUNIT_TEST(alg_names);
    CPPUNIT_TEST(base64url_vectors);
    CPPUNIT_TEST(roles_claim);
    CPPUNIT_TEST_SUITE_END();

public:
    void ps256_header_and_claims() {
        EVP_PKEY* k = testcert::key(2048);
        ClientAssertionParams p = params(k);
        Secret out;
        std::string err;
        CPPUNIT_ASSERT_MESSAGE(err, mailoauth::make_client_assertion(p, out, err));
        std::vector<std::string> parts = split(out.reveal());
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), parts.size());
        Json::Value h = json(testcert::b64url_decode(parts[0]));
        CPPUNIT_ASSERT_EQUAL(std::string("PS256"), h["alg"].asString());
        CPPUNIT_ASSERT_EQUAL(std::string("JWT"), h["typ"].asString());
        CPPUNIT_ASSERT_EQUAL(testcert::b64url_encode(testcert::der_digest(p.certificate_pem, EVP_sha256())),
                             h["x5t#S256"].asString());
        CPPUNIT_ASSERT(!h.isMember("x5t"));
        Json::Value c = json(testcert::b64url_decode(parts[1]));
        CPPUNIT_ASSERT_EQUAL(std::string(kAud), c["aud"].asString());
        CPPUNIT_ASSERT_EQUAL(std::string(kClient), c["iss"].asString());
        CPPUNIT_ASSERT_EQUAL(std::string(kClient), c["sub"].asString());
        CPPUNIT_ASSERT(std::regex_match(c["jti"].asString(),
                                        std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")));
        CPPUNIT_ASSERT_EQUAL(static_cast<Json::Int64>(p.now), c["iat"].asInt64());
        CPPUNIT_ASSERT_EQUAL(static_cast<Json::Int64>(p.now - mailoauth::kAssertionBackdate), c["nbf"].asInt64());
        CPPUNIT_ASSERT_EQUAL(static_cast<Json::Int64>(p.now + mailoauth::kAssertionLifetime), c["exp"].asInt64());
        CPPUNIT_ASSERT(mailoauth::kAssertionLifetime >= 120 && mailoauth::kAssertionLifetime <= 600);
    }

    void ps256_signature_verifies_with_salt_32() {
        EVP_PKEY* k = testcert::key(2048);
        Secret out;
        std::string err;
        CPPUNIT_ASSERT_MESSAGE(err, mailoauth::make_client_assertion(params(k), out, err));
        std::vector<std::string> parts = split(out.reveal());
        const std::string input = parts[0] + "." + parts[1];
        const std::string sig = testcert::b64url_decode(parts[2]);
        CPPUNIT_ASSERT_EQUAL(std::size_t(256), sig.size());
        CPPUNIT_ASSERT(testcert::verify(k, true, input, sig));
        CPPUNIT_ASSERT(!testcert::verify(k, false, input, sig));         // not PKCS #1 v1.5
        CPPUNIT_ASSERT(!testcert::verify(k, true, input + "x", sig));    // bound to the input
        CPPUNIT_ASSERT(!testcert::verify(testcert::key(2048, 1), true, input, sig));
    }

    void rs256_header_and_signature() {
        EVP_PKEY* k = testcert::key(3072);
        ClientAssertionParams p = params(k, AssertionAlg::RS256);
        Secret out;
        std::string err;
        CPPUNIT_ASSERT_MESSAGE(err, mailoauth::make_client_assertion(p, out, err));
        std::vector<std::string> parts = split(out.reveal());
        Json::Value h = json(testcert::b64url_decode(parts[0]));
        CPPUNIT_ASSERT_EQUAL(std::string("RS256"), h["alg"].asString());
        CPPUNIT_ASSERT_EQUAL(testcert::b64url_encode(testcert::der_digest(p.certificate_pem, EVP_sha1())),
                             h["x5t"].asString());
        CPPUNIT_ASSERT(!h.isMember("x5t#S256"));
        const std::string sig = testcert::b64url_decode(parts[2]);
        CPPUNIT_ASSERT_EQUAL(std::size_t(384), sig.size());
        CPPUNIT_ASSERT(testcert::verify(k, false, parts[0] + "." + parts[1], sig));
    }

    void jti_is_fresh_each_time() {
        EVP_PKEY* k = testcert::key(2048);
        ClientAssertionParams p = params(k);
        Secret a, b;
        std::string err;
        CPPUNIT_ASSERT(mailoauth::make_client_assertion(p, a, err));
        CPPUNIT_ASSERT(mailoauth::make_client_assertion(p, b, err));
        Json::Value ca = json(testcert::b64url_decode(split(a.reveal())[1]));
        Json::Value cb = json(testcert::b64url_decode(split(b.reveal())[1]));
        CPPUNIT_ASSERT(ca["jti"].asString() != cb["jti"].asString());
    }

    void claims_are_json_escaped() {
        EVP_PKEY* k = testcert::key(2048);
        ClientAssertionParams p = params(k);
        p.client_id = "a\"b\\c\x01";
        Secret out;
        std::string err;
        CPPUNIT_ASSERT_MESSAGE(err, mailoauth::make_client_assertion(p, out, err));
        Json::Value c = json(testcert::b64url_decode(split(out.reveal())[1]));
        CPPUNIT_ASSERT_EQUAL(p.client_id, c["iss"].asString());
    }

    void key_not_matching_certificate() {
        ClientAssertionParams p = params(testcert::key(2048));
        const std::string other = testcert::key_pem(testcert::key(2048, 1));
        p.private_key_pem = Secret(other);
        Secret out;
        std::string err;
        CPPUNIT_ASSERT(!mailoauth::make_client_assertion(p, out, err));
        CPPUNIT_ASSERT(out.empty());
        CPPUNIT_ASSERT_MESSAGE(err, contains(err, "does not belong to the certificate"));
        CPPUNIT_ASSERT_MESSAGE(err, contains(err, "CN=mailoauth test"));
        assert_no_key_material(err, other);
    }

    void short_key_refused() {
        ClientAssertionParams p = params(testcert::key(1024));
        Secret out;
        std::string err;
        CPPUNIT_ASSERT(!mailoauth::make_client_assertion(p, out, err));
        CPPUNIT_ASSERT_MESSAGE(err, contains(err, "1024 bits"));
        CPPUNIT_ASSERT_MESSAGE(err, contains(err, "2048"));
        assert_no_key_material(err, p.private_key_pem.reveal());
    }

    void expired_and_not_yet_valid_certificate() {
        EVP_PKEY* k = testcert::key(2048);
        ClientAssertionParams p = params(k);
        p.certificate_pem = testcert::cert_pem(k, -10 * 86400, -86400);
        Secret out;
        std::string err;
        CPPUNIT_ASSERT(!mailoauth::make_client_assertion(p, out, err));
        CPPUNIT_ASSERT_MESSAGE(err, contains(err, "expired on"));
        CPPUNIT_ASSERT_MESSAGE(err, contains(err, "notAfter"));
        CPPUNIT_ASSERT_MESSAGE(err, contains(err, "Certificates & secrets"));
        // The same certificate a week earlier (injected now) is fine.
        p.now -= 7 * 86400;
        CPPUNIT_ASSERT_MESSAGE(err, mailoauth::make_client_assertion(p, out, err));

        p = params(k);
        p.certificate_pem = testcert::cert_pem(k, 86400, 10 * 86400);
        CPPUNIT_ASSERT(!mailoauth::make_client_assertion(p, out, err));
        CPPUNIT_ASSERT_MESSAGE(err, contains(err, "not valid before"));
        CPPUNIT_ASSERT_MESSAGE(err, contains(err, "timedatectl"));
    }

    void unparsable_and_encrypted_pem() {
        EVP_PKEY* k = testcert::key(2048);
        ClientAssertionParams p = params(k);
        Secret out;
        std::string err;
        p.certificate_pem = "not a certificate";
        CPPUNIT_ASSERT(!mailoauth::make_client_assertion(p, out, err));
        CPPUNIT_ASSERT_MESSAGE(err, contains(err, "no PEM certificate"));
        p.certificate_pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        CPPUNIT_ASSERT(!mailoauth::make_client_assertion(p, out, err));
        CPPUNIT_ASSERT_MESSAGE(err, contains(err, "does not parse"));

        p = params(k);
        p.private_key_pem = Secret("-----BEGIN PRIVATE KEY-----\nAAAAsecretish\n-----END PRIVATE KEY-----\n");
        CPPUNIT_ASSERT(!mailoauth::make_client_assertion(p, out, err));
        CPPUNIT_ASSERT_MESSAGE(err, contains(err, "does not parse"));
        CPPUNIT_ASSERT_MESSAGE(err, !contains(err, "AAAAsecretish"));
        p.private_key_pem = Secret("just text");
        CPPUNIT_ASSERT(!mailoauth::make_client_assertion(p, out, err));
        CPPUNIT_ASSERT_MESSAGE(err, contains(err, "no PEM private key"));
        // Never a prompt on the terminal: refused with the fix.
        p.private_key_pem = Secret(testcert::encrypted_key_pem(k));
        CPPUNIT_ASSERT(!mailoauth::make_client_assertion(p, out, err));
        CPPUNIT_ASSERT_MESSAGE(err, contains(err, "encrypted"));
        CPPUNIT_ASSERT_MESSAGE(err, contains(err, "openssl pkey"));
    }

    void combined_pem_works_for_both() {
        EVP_PKEY* k = testcert::key(2048);
        ClientAssertionParams p = params(k);
        const std::string both = testcert::key_pem(k) + p.certificate_pem;
        p.private_key_pem = Secret(both);
        p.certificate_pem = both;
        Secret out;
        std::string err;
        CPPUNIT_ASSERT_MESSAGE(err, mailoauth::make_client_assertion(p, out, err));
    }

    void inspect_reports_dates_and_thumbprints() {
        EVP_PKEY* k = testcert::key(2048);
        const std::int64_t t0 = now();
        const std::string pem = testcert::cert_pem(k, -3600, 40L * 86400, "relay.example.org");
        CertificateInfo info;
        std::string err;
        CPPUNIT_ASSERT_MESSAGE(err, mailoauth::inspect_certificate(pem, info, err));
        CPPUNIT_ASSERT(info.not_after >= t0 + 40L * 86400 - 5 && info.not_after <= t0 + 40L * 86400 + 5);
        CPPUNIT_ASSERT(info.not_before >= t0 - 3600 - 5 && info.not_before <= t0 - 3600 + 5);
        CPPUNIT_ASSERT_EQUAL(std::string("CN=relay.example.org"), info.subject);
        CPPUNIT_ASSERT_EQUAL(info.subject, info.issuer);
        CPPUNIT_ASSERT_EQUAL(testcert::b64url_encode(testcert::der_digest(pem, EVP_sha1())), info.x5t);
        CPPUNIT_ASSERT_EQUAL(testcert::b64url_encode(testcert::der_digest(pem, EVP_sha256())), info.x5t_s256);
        CPPUNIT_ASSERT_EQUAL(std::size_t(40), info.sha1_hex.size());
        CPPUNIT_ASSERT(std::regex_match(info.sha1_hex, std::regex("[0-9A-F]{40}")));
        CPPUNIT_ASSERT(info.rsa);
        CPPUNIT_ASSERT_EQUAL(2048, info.key_bits);
        CPPUNIT_ASSERT(!mailoauth::inspect_certificate("garbage", info, err));
    }

    void alg_names() {
        AssertionAlg a = AssertionAlg::RS256;
        CPPUNIT_ASSERT(mailoauth::parse_assertion_alg("ps256", a));
        CPPUNIT_ASSERT(a == AssertionAlg::PS256);
        CPPUNIT_ASSERT(mailoauth::parse_assertion_alg("RS256", a));
        CPPUNIT_ASSERT(a == AssertionAlg::RS256);
        CPPUNIT_ASSERT(!mailoauth::parse_assertion_alg("HS256", a));
        CPPUNIT_ASSERT(!mailoauth::parse_assertion_alg("", a));
        CPPUNIT_ASSERT_EQUAL(std::string("PS256"), std::string(mailoauth::assertion_alg_name(AssertionAlg::PS256)));
    }

    void base64url_vectors() {
        // RFC 4648 section 10, in the URL alphabet without padding.
        CPPUNIT_ASSERT_EQUAL(std::string(""), mailoauth::base64url(""));
        CPPUNIT_ASSERT_EQUAL(std::string("Zg"), mailoauth::base64url("f"));
        CPPUNIT_ASSERT_EQUAL(std::string("Zm8"), mailoauth::base64url("fo"));
        CPPUNIT_ASSERT_EQUAL(std::string("Zm9v"), mailoauth::base64url("foo"));
        CPPUNIT_ASSERT_EQUAL(std::string("Zm9vYmFy"), mailoauth::base64url("foobar"));
        CPPUNIT_ASSERT_EQUAL(std::string("-_8"), mailoauth::base64url("\xfb\xff"));
    }

    void roles_claim() {
        std::vector<std::string> roles;
        CPPUNIT_ASSERT(mailoauth::access_token_roles(
                           jwt_with_payload("{\"aud\":\"https://outlook.office365.com\","
                                            "\"roles\":[\"IMAP.AccessAsApp\",\"SMTP.SendAsApp\"]}"),
                           roles) == RolesClaim::Present);
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), roles.size());
        CPPUNIT_ASSERT_EQUAL(std::string("SMTP.SendAsApp"), roles[1]);
        CPPUNIT_ASSERT(mailoauth::access_token_roles(jwt_with_payload("{\"aud\":\"x\"}"), roles) ==
                       RolesClaim::Absent);
        CPPUNIT_ASSERT(roles.empty());
        // Opaque, encrypted (five parts), broken: no judgement.
        CPPUNIT_ASSERT(mailoauth::access_token_roles("EwAopaque", roles) == RolesClaim::Unknown);
        CPPUNIT_ASSERT(mailoauth::access_token_roles("a.b.c.d.e", roles) == RolesClaim::Unknown);
        CPPUNIT_ASSERT(mailoauth::access_token_roles("a.!!.c", roles) == RolesClaim::Unknown);
        CPPUNIT_ASSERT(mailoauth::access_token_roles(jwt_with_payload("[1]"), roles) == RolesClaim::Unknown);
        CPPUNIT_ASSERT(mailoauth::access_token_roles(jwt_with_payload("{\"roles\":\"x\"}"), roles) ==
                       RolesClaim::Unknown);
        CPPUNIT_ASSERT(mailoauth::access_token_roles(jwt_with_payload("{\"roles\":[\"a\\u001b[2J\"]}"), roles) ==
                       RolesClaim::Present);
        CPPUNIT_ASSERT_EQUAL(std::string("a?[2J"), roles[0]);
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(ClientAssertionTest);
