// The client-credentials request (tokenhelper/app_token.cc) against a fake
// HttpClient: the form it sends, what it makes of each reply, and that the
// secret or the key never shows in a message.
#include <cppunit/extensions/HelperMacros.h>

#include <ctime>
#include <map>
#include <string>
#include <vector>

#include "tests/unit/fake_http.h"
#include "tests/unit/testcert.h"
#include "tokenhelper/app_token.h"
#include "tokenhelper/errors.h"

using mailoauth::AppCredential;
using mailoauth::AppTokenParams;
using mailoauth::AppTokenResult;
using mailoauth::HttpFailure;
using mailoauth::Secret;
using mailoauth::testutil::FakeHttp;

namespace {

const char* kSecret = "Xy7~Q8Q~s3cr3t.Value-0123456789abcdefghij";
const char* kEndpoint = "https://login.microsoftonline.com/contoso.com/oauth2/v2.0/token";

std::string pct_decode(const std::string& s) {
    std::string o;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size()) {
            o += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
            i += 2;
        } else {
            o += s[i] == '+' ? ' ' : s[i];
        }
    }
    return o;
}

std::map<std::string, std::string> form(const std::string& body) {
    std::map<std::string, std::string> m;
    std::size_t at = 0;
    while (at <= body.size()) {
        std::size_t amp = body.find('&', at);
        std::string kv = body.substr(at, amp == std::string::npos ? std::string::npos : amp - at);
        std::size_t eq = kv.find('=');
        m[pct_decode(kv.substr(0, eq))] = eq == std::string::npos ? "" : pct_decode(kv.substr(eq + 1));
        if (amp == std::string::npos) break;
        at = amp + 1;
    }
    return m;
}

std::string jwt(const std::string& payload) {
    return testcert::b64url_encode("{\"alg\":\"RS256\",\"typ\":\"JWT\"}") + "." +
           testcert::b64url_encode(payload) + "." + testcert::b64url_encode("sig");
}

std::string token_body(const std::string& access, bool with_refresh = false) {
    return "{\"token_type\":\"Bearer\",\"expires_in\":3599,\"ext_expires_in\":3599,\"access_token\":\"" +
           access + "\"" + (with_refresh ? ",\"refresh_token\":\"M.C5-unexpected\"" : "") + "}";
}

std::string error_body(const std::string& error, long code, const std::string& text) {
    return "{\"error\":\"" + error + "\",\"error_description\":\"AADSTS" + std::to_string(code) + ": " +
           text + "\\r\\nTrace ID: 0000aaaa-11bb-cccc-dd22-eeeeee333333\",\"error_codes\":[" +
           std::to_string(code) +
           "],\"timestamp\":\"2024-01-09 02:02:12Z\",\"trace_id\":\"0000aaaa-11bb-cccc-dd22-eeeeee333333\","
           "\"correlation_id\":\"aaaa0000-bb11-2222-33cc-444444dddddd\"}";
}

AppTokenParams params() {
    AppTokenParams p;
    p.token_endpoint = kEndpoint;
    p.client_id = "11111111-2222-3333-4444-555555555555";
    p.scope = mailoauth::kAppDefaultScope;
    p.account = "relay";
    p.tenant = "contoso.com";
    return p;
}

AppCredential secret_cred() {
    AppCredential c;
    c.kind = AppCredential::Kind::Secret;
    c.client_secret = Secret(kSecret);
    return c;
}

AppCredential cert_cred(EVP_PKEY* k, const std::string& alg = "PS256") {
    AppCredential c;
    c.kind = AppCredential::Kind::Certificate;
    c.certificate_pem = testcert::cert_pem(k);
    c.private_key_pem = Secret(testcert::key_pem(k));
    c.assertion_alg = alg;
    return c;
}

std::int64_t now() { return static_cast<std::int64_t>(std::time(nullptr)); }

bool contains(const std::string& hay, const std::string& needle) {
    return hay.find(needle) != std::string::npos;
}

const std::string kGoodToken =
    jwt("{\"aud\":\"https://outlook.office365.com\",\"roles\":[\"SMTP.SendAsApp\",\"IMAP.AccessAsApp\"]}");

}  // namespace

class AppTokenTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(AppTokenTest);
    CPPUNIT_TEST(secret_form_and_success);
    CPPUNIT_TEST(certificate_form_carries_a_verifiable_assertion);
    CPPUNIT_TEST(rs256_when_asked);
    CPPUNIT_TEST(bad_certificate_stops_before_the_request);
    CPPUNIT_TEST(scope_must_be_default);
    CPPUNIT_TEST(wrong_secret_explained_without_the_secret);
    CPPUNIT_TEST(each_app_refusal_is_explained);
    CPPUNIT_TEST(missing_consent_from_roles);
    CPPUNIT_TEST(opaque_token_is_accepted);
    CPPUNIT_TEST(transport_and_server_failures);
    CPPUNIT_TEST(unknown_refusal_falls_back);
    CPPUNIT_TEST_SUITE_END();

public:
    void secret_form_and_success() {
        FakeHttp http;
        http.answer(200, token_body(kGoodToken, true));
        AppTokenResult r = mailoauth::request_app_token(http, params(), secret_cred(), now());
        CPPUNIT_ASSERT_EQUAL_MESSAGE(r.message, 0, r.exit_code);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), http.requests.size());
        CPPUNIT_ASSERT_EQUAL(std::string(kEndpoint), http.last().url);
        auto f = form(http.last().body);
        CPPUNIT_ASSERT_EQUAL(std::size_t(4), f.size());
        CPPUNIT_ASSERT_EQUAL(std::string("client_credentials"), f["grant_type"]);
        CPPUNIT_ASSERT_EQUAL(std::string("11111111-2222-3333-4444-555555555555"), f["client_id"]);
        CPPUNIT_ASSERT_EQUAL(std::string("https://outlook.office365.com/.default"), f["scope"]);
        CPPUNIT_ASSERT_EQUAL(std::string(kSecret), f["client_secret"]);
        CPPUNIT_ASSERT_EQUAL(kGoodToken, r.tokens.access_token.reveal());
        CPPUNIT_ASSERT_EQUAL(3599L, r.tokens.expires_in);
        CPPUNIT_ASSERT(r.tokens.refresh_token.empty());  // not expected, not kept
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), r.roles.size());
    }

    void certificate_form_carries_a_verifiable_assertion() {
        EVP_PKEY* k = testcert::key(2048);
        FakeHttp http;
        http.answer(200, token_body(kGoodToken));
        AppTokenResult r = mailoauth::request_app_token(http, params(), cert_cred(k), now());
        CPPUNIT_ASSERT_EQUAL_MESSAGE(r.message, 0, r.exit_code);
        auto f = form(http.last().body);
        CPPUNIT_ASSERT_EQUAL(std::size_t(5), f.size());
        CPPUNIT_ASSERT(f.count("client_secret") == 0);
        CPPUNIT_ASSERT_EQUAL(std::string("client_credentials"), f["grant_type"]);
        CPPUNIT_ASSERT_EQUAL(std::string("urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                             f["client_assertion_type"]);
        const std::string& a = f["client_assertion"];
        std::size_t d1 = a.find('.'), d2 = a.rfind('.');
        CPPUNIT_ASSERT(d1 != std::string::npos && d2 > d1);
        const std::string claims = testcert::b64url_decode(a.substr(d1 + 1, d2 - d1 - 1));
        CPPUNIT_ASSERT_MESSAGE(claims, contains(claims, std::string("\"aud\":\"") + kEndpoint + "\""));
        CPPUNIT_ASSERT(testcert::verify(k, true, a.substr(0, d2), testcert::b64url_decode(a.substr(d2 + 1))));
    }

    void rs256_when_asked() {
        EVP_PKEY* k = testcert::key(2048);
        FakeHttp http;
        http.answer(200, token_body(kGoodToken));
        AppTokenResult r = mailoauth::request_app_token(http, params(), cert_cred(k, "RS256"), now());
        CPPUNIT_ASSERT_EQUAL_MESSAGE(r.message, 0, r.exit_code);
        const std::string a = form(http.last().body)["client_assertion"];
        CPPUNIT_ASSERT(contains(testcert::b64url_decode(a.substr(0, a.find('.'))), "\"alg\":\"RS256\""));
        AppCredential bad = cert_cred(k, "HS256");
        r = mailoauth::request_app_token(http, params(), bad, now());
        CPPUNIT_ASSERT_EQUAL(int(mailoauth::kExitConfig), r.exit_code);
        CPPUNIT_ASSERT_MESSAGE(r.message, contains(r.message, "PS256"));
    }

    void bad_certificate_stops_before_the_request() {
        FakeHttp http;
        AppCredential c = cert_cred(testcert::key(2048));
        c.private_key_pem = Secret(testcert::key_pem(testcert::key(2048, 1)));
        AppTokenResult r = mailoauth::request_app_token(http, params(), c, now());
        CPPUNIT_ASSERT(http.requests.empty());
        CPPUNIT_ASSERT_EQUAL(int(mailoauth::kExitConfig), r.exit_code);
        CPPUNIT_ASSERT_EQUAL(std::string("bad_credential"), r.error);
        CPPUNIT_ASSERT_MESSAGE(r.message, contains(r.message, "does not belong to the certificate"));
        CPPUNIT_ASSERT_MESSAGE(r.message, contains(r.message, "'relay'"));
    }

    void scope_must_be_default() {
        FakeHttp http;
        AppTokenParams p = params();
        for (const char* bad : {"https://outlook.office.com/IMAP.AccessAsUser.All",
                                "https://outlook.office365.com/.default offline_access", ""}) {
            p.scope = bad;
            AppTokenResult r = mailoauth::request_app_token(http, p, secret_cred(), now());
            CPPUNIT_ASSERT_EQUAL(int(mailoauth::kExitConfig), r.exit_code);
            CPPUNIT_ASSERT_MESSAGE(r.message, contains(r.message, "/.default"));
        }
        CPPUNIT_ASSERT(http.requests.empty());
        std::string why;
        CPPUNIT_ASSERT(mailoauth::app_scope_valid("https://outlook.office365.us/.default", why));
    }

    void wrong_secret_explained_without_the_secret() {
        FakeHttp http;
        // A provider (or proxy) that echoes the request must not carry the
        // secret into our message.
        http.answer(401, error_body("invalid_client", 7000215,
                                    std::string("Invalid client secret provided: ") + kSecret));
        AppTokenResult r = mailoauth::request_app_token(http, params(), secret_cred(), now());
        CPPUNIT_ASSERT_EQUAL(int(mailoauth::kExitConfig), r.exit_code);
        CPPUNIT_ASSERT_EQUAL(std::string("invalid_client"), r.error);
        CPPUNIT_ASSERT_MESSAGE(r.message, contains(r.message, "Secret ID"));
        CPPUNIT_ASSERT_MESSAGE(r.message, contains(r.message, "AADSTS7000215"));
        CPPUNIT_ASSERT_MESSAGE(r.message, contains(r.message, "trace_id: 0000aaaa-11bb"));
        CPPUNIT_ASSERT_MESSAGE(r.message, !contains(r.message, kSecret));
        CPPUNIT_ASSERT_MESSAGE(r.message, !contains(r.message, "s3cr3t"));

        // Even through the general fallback (an unknown code quoting it).
        http.answer(400, error_body("invalid_request", 9999999, std::string("echo ") + kSecret));
        r = mailoauth::request_app_token(http, params(), secret_cred(), now());
        CPPUNIT_ASSERT_MESSAGE(r.message, !contains(r.message, kSecret));
        CPPUNIT_ASSERT_MESSAGE(r.message, contains(r.message, "[secret]"));
    }

    void each_app_refusal_is_explained() {
        struct Case {
            long status;
            const char* error;
            long code;
            const char* expect;
        };
        const Case cases[] = {
            {401, "invalid_client", 7000222, "expired"},
            {401, "invalid_client", 700027, "Upload the certificate"},
            {401, "invalid_client", 700024, "timedatectl"},
            {400, "unauthorized_client", 700016, "--client-id"},
            {400, "invalid_scope", 1002012, "/.default"},
            {400, "invalid_grant", 65001, "Grant admin consent"},
            {400, "unauthorized_client", 7000112, "disabled"},
        };
        EVP_PKEY* k = testcert::key(2048);
        for (const Case& c : cases) {
            FakeHttp http;
            http.answer(c.status, error_body(c.error, c.code, "text"));
            AppTokenResult r = mailoauth::request_app_token(http, params(), cert_cred(k), now());
            CPPUNIT_ASSERT_EQUAL_MESSAGE(r.message, int(mailoauth::kExitConfig), r.exit_code);
            CPPUNIT_ASSERT_MESSAGE(r.message, contains(r.message, c.expect));
            CPPUNIT_ASSERT_MESSAGE(r.message, contains(r.message, "AADSTS" + std::to_string(c.code)));
            CPPUNIT_ASSERT_MESSAGE(r.message, !contains(r.message, "PRIVATE KEY"));
        }
    }

    void missing_consent_from_roles() {
        FakeHttp http;
        http.answer(200, token_body(jwt("{\"aud\":\"https://outlook.office365.com\",\"appid\":\"x\"}")));
        AppTokenResult r = mailoauth::request_app_token(http, params(), secret_cred(), now());
        CPPUNIT_ASSERT_EQUAL(int(mailoauth::kExitConfig), r.exit_code);
        CPPUNIT_ASSERT_EQUAL(std::string("consent_required"), r.error);
        CPPUNIT_ASSERT_MESSAGE(r.message, contains(r.message, "Grant admin consent"));
        CPPUNIT_ASSERT_MESSAGE(r.message, contains(r.message, "mailoauth login relay --app"));
        // Roles, but not a mail permission.
        http.answer(200, token_body(jwt("{\"roles\":[\"full_access_as_app\"]}")));
        r = mailoauth::request_app_token(http, params(), secret_cred(), now());
        CPPUNIT_ASSERT_EQUAL(int(mailoauth::kExitConfig), r.exit_code);
        CPPUNIT_ASSERT_MESSAGE(r.message, contains(r.message, "full_access_as_app"));
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), r.roles.size());
    }

    void opaque_token_is_accepted() {
        FakeHttp http;
        http.answer(200, token_body("EwAopaqueToken"));
        AppTokenResult r = mailoauth::request_app_token(http, params(), secret_cred(), now());
        CPPUNIT_ASSERT_EQUAL_MESSAGE(r.message, 0, r.exit_code);
        CPPUNIT_ASSERT(r.roles.empty());
    }

    void transport_and_server_failures() {
        FakeHttp http;
        http.fail(HttpFailure::Transport, "connection timed out");
        AppTokenResult r = mailoauth::request_app_token(http, params(), secret_cred(), now());
        CPPUNIT_ASSERT_EQUAL(int(mailoauth::kExitTempFail), r.exit_code);
        CPPUNIT_ASSERT_EQUAL(std::string("network"), r.error);
        http.fail(HttpFailure::Tls, "connection timed out");
        r = mailoauth::request_app_token(http, params(), secret_cred(), now());
        CPPUNIT_ASSERT_EQUAL(int(mailoauth::kExitConfig), r.exit_code);
        http.answer(503, "<html>busy</html>");
        r = mailoauth::request_app_token(http, params(), secret_cred(), now());
        CPPUNIT_ASSERT_EQUAL(int(mailoauth::kExitTempFail), r.exit_code);
        http.answer(200, "{\"token_type\":\"Bearer\"");
        r = mailoauth::request_app_token(http, params(), secret_cred(), now());
        CPPUNIT_ASSERT_EQUAL(int(mailoauth::kExitTempFail), r.exit_code);
        CPPUNIT_ASSERT_EQUAL(std::string("bad_response"), r.error);
    }

    void unknown_refusal_falls_back() {
        FakeHttp http;
        http.answer(400, error_body("invalid_request", 90002, "Tenant 'nosuch' not found."));
        AppTokenResult r = mailoauth::request_app_token(http, params(), secret_cred(), now());
        CPPUNIT_ASSERT_EQUAL(int(mailoauth::kExitConfig), r.exit_code);
        CPPUNIT_ASSERT_MESSAGE(r.message, contains(r.message, "--tenant"));
        // Codes that tell a person to sign in again do not apply: 78.
        http.answer(400, error_body("invalid_grant", 50173, "revoked"));
        r = mailoauth::request_app_token(http, params(), secret_cred(), now());
        CPPUNIT_ASSERT_EQUAL(int(mailoauth::kExitConfig), r.exit_code);
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(AppTokenTest);
