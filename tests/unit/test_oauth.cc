// The identity provider's JSON replies: strict types, limits, unknown fields
// ignored, the spellings real providers use.
#include <cppunit/extensions/HelperMacros.h>

#include <string>
#include <vector>

#include "tokenhelper/oauth.h"

using mailoauth::DeviceCodeResponse;
using mailoauth::OAuthError;
using mailoauth::TokenResponse;

namespace {

std::string b64url(const std::string& in) {
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    unsigned acc = 0;
    int bits = 0;
    for (unsigned char c : in) {
        acc = (acc << 8) | c;
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out.push_back(tbl[(acc >> bits) & 63]);
        }
    }
    if (bits > 0) out.push_back(tbl[(acc << (6 - bits)) & 63]);
    return out;
}

std::string jwt(const std::string& payload) {
    return b64url(R"({"alg":"RS256","typ":"JWT"})") + "." + b64url(payload) + ".c2lnbmF0dXJl";
}

const char kMicrosoftDevice[] = R"({
  "user_code": "ABCD-EFGH",
  "device_code": "DAQABAAEAAAD--DLA3VO7QrddgJg7WevrAgAAAAAAAAAA",
  "verification_uri": "https://microsoft.com/devicelogin",
  "expires_in": 900,
  "interval": 5,
  "message": "To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code ABCD-EFGH to authenticate."
})";

const char kGoogleDevice[] = R"({
  "device_code": "AH-1Ng2x", "user_code": "GQVQ-JKEC",
  "verification_url": "https://www.google.com/device",
  "expires_in": "1800", "interval": 5
})";

}  // namespace

class OAuthTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(OAuthTest);
    CPPUNIT_TEST(device_code_microsoft);
    CPPUNIT_TEST(device_code_google_spelling);
    CPPUNIT_TEST(device_code_interval_defaults_and_clamps);
    CPPUNIT_TEST(device_code_message_sanitized_link_dropped);
    CPPUNIT_TEST(device_code_c1_in_both_forms);
    CPPUNIT_TEST(device_code_rejects);
    CPPUNIT_TEST(token_full);
    CPPUNIT_TEST(token_minimal_and_defaults);
    CPPUNIT_TEST(token_id_token_username);
    CPPUNIT_TEST(token_rejects);
    CPPUNIT_TEST(error_microsoft);
    CPPUNIT_TEST(error_tolerates_wrong_types);
    CPPUNIT_TEST(error_rejects);
    CPPUNIT_TEST(limits);
    CPPUNIT_TEST_SUITE_END();

public:
    void device_code_microsoft() {
        DeviceCodeResponse d;
        std::string err;
        CPPUNIT_ASSERT_MESSAGE(err, mailoauth::parse_device_code_response(kMicrosoftDevice, d, err));
        CPPUNIT_ASSERT_EQUAL(std::string("DAQABAAEAAAD--DLA3VO7QrddgJg7WevrAgAAAAAAAAAA"),
                             d.device_code.reveal());
        CPPUNIT_ASSERT_EQUAL(std::string("ABCD-EFGH"), d.user_code);
        CPPUNIT_ASSERT_EQUAL(std::string("https://microsoft.com/devicelogin"), d.verification_uri);
        CPPUNIT_ASSERT_EQUAL(900L, d.expires_in);
        CPPUNIT_ASSERT_EQUAL(5L, d.interval);
        CPPUNIT_ASSERT(d.message.find("ABCD-EFGH") != std::string::npos);
        CPPUNIT_ASSERT(d.verification_uri_complete.empty());
    }

    void device_code_google_spelling() {
        DeviceCodeResponse d;
        std::string err;
        CPPUNIT_ASSERT_MESSAGE(err, mailoauth::parse_device_code_response(kGoogleDevice, d, err));
        CPPUNIT_ASSERT_EQUAL(std::string("https://www.google.com/device"), d.verification_uri);
        CPPUNIT_ASSERT_EQUAL(1800L, d.expires_in);
        CPPUNIT_ASSERT(d.message.empty());
    }

    void device_code_interval_defaults_and_clamps() {
        struct Case {
            std::string interval_member;  // "" = absent
            long want;
        } cases[] = {
            {"", 5}, {R"(,"interval":0)", 1}, {R"(,"interval":1)", 1}, {R"(,"interval":7)", 7},
            {R"(,"interval":"10")", 10}, {R"(,"interval":3600)", 60}, {R"(,"interval":null)", 5},
        };
        for (const Case& c : cases) {
            const std::string body = R"({"device_code":"d","user_code":"u","verification_uri":"https://x/","expires_in":600)" +
                                     c.interval_member + "}";
            DeviceCodeResponse d;
            std::string err;
            CPPUNIT_ASSERT_MESSAGE(body + ": " + err, mailoauth::parse_device_code_response(body, d, err));
            CPPUNIT_ASSERT_EQUAL_MESSAGE(body, c.want, d.interval);
        }
    }

    // The message is prose, shown sanitized; the complete link is used
    // exactly as sent or not at all.
    void device_code_message_sanitized_link_dropped() {
        const std::string body =
            R"({"device_code":"d","user_code":"u","verification_uri":"https://x/","expires_in":600,)"
            R"("message":"evil \u001b[2J text","verification_uri_complete":"https://x/?code=u\u0007"})";
        DeviceCodeResponse d;
        std::string err;
        CPPUNIT_ASSERT_MESSAGE(err, mailoauth::parse_device_code_response(body, d, err));
        CPPUNIT_ASSERT_EQUAL(std::string("evil ?[2J text"), d.message);
        CPPUNIT_ASSERT(d.verification_uri_complete.empty());

        const std::string ok =
            R"({"device_code":"d","user_code":"u","verification_uri":"https://x/","expires_in":600,)"
            R"("message":"Öffnen Sie https://x/","verification_uri_complete":"https://x/?code=u","extra":{"a":[1,2]}})";
        CPPUNIT_ASSERT_MESSAGE(err, mailoauth::parse_device_code_response(ok, d, err));
        CPPUNIT_ASSERT_EQUAL(std::string("Öffnen Sie https://x/"), d.message);
        CPPUNIT_ASSERT_EQUAL(std::string("https://x/?code=u"), d.verification_uri_complete);
    }

    // U+009B (CSI) as the escape \u009b, as raw UTF-8 C2 9B, and as the raw
    // byte 0x9B that jsoncpp passes through: in the message it becomes '?';
    // in the URI or the code to type the reply is refused.
    void device_code_c1_in_both_forms() {
        const std::string head = R"({"device_code":"d","expires_in":600,)";
        for (const std::string& c1 : {std::string("\\u009b"), std::string("\xc2\x9b"), std::string("\x9b")}) {
            DeviceCodeResponse d;
            std::string err;
            const std::string msg = head + R"("user_code":"u","verification_uri":"https://x/","message":"a)" + c1 +
                                    R"(31mb"})";
            CPPUNIT_ASSERT_MESSAGE(err, mailoauth::parse_device_code_response(msg, d, err));
            CPPUNIT_ASSERT_EQUAL(std::string("a?31mb"), d.message);

            const std::string uri = head + R"("user_code":"u","verification_uri":"https://x/)" + c1 + R"("})";
            CPPUNIT_ASSERT(!mailoauth::parse_device_code_response(uri, d, err));
            CPPUNIT_ASSERT_MESSAGE(err, err.find("verification_uri") != std::string::npos);

            const std::string code = head + R"("user_code":"u)" + c1 + R"(","verification_uri":"https://x/"})";
            CPPUNIT_ASSERT(!mailoauth::parse_device_code_response(code, d, err));
            CPPUNIT_ASSERT_MESSAGE(err, err.find("user_code") != std::string::npos);

            OAuthError e;
            const std::string error = R"({"error":"x","error_description":"a)" + c1 + R"(31mb","trace_id":"t)" + c1 +
                                      R"("})";
            CPPUNIT_ASSERT(mailoauth::parse_error_response(error, e));
            CPPUNIT_ASSERT_EQUAL(std::string("a?31mb"), e.error_description);
            CPPUNIT_ASSERT(e.trace_id.empty());
        }
    }

    void device_code_rejects() {
        const std::string base_uri = R"("verification_uri":"https://x/")";
        struct Case {
            std::string body;
            std::string err_mentions;
        } cases[] = {
            {"", "JSON"},
            {"[]", "object"},
            {"\"string\"", "JSON"},  // strictRoot
            {"<html><body>Bad gateway</body></html>", "JSON"},
            {R"({"user_code":"u",)" + base_uri + R"(,"expires_in":600})", "device_code"},
            {R"({"device_code":"d",)" + base_uri + R"(,"expires_in":600})", "user_code"},
            {R"({"device_code":"d","user_code":"u","expires_in":600})", "verification_uri"},
            {R"({"device_code":"d","user_code":"u",)" + base_uri + "}", "expires_in"},
            {R"({"device_code":5,"user_code":"u",)" + base_uri + R"(,"expires_in":600})", "device_code"},
            {R"({"device_code":"","user_code":"u",)" + base_uri + R"(,"expires_in":600})", "device_code"},
            {R"({"device_code":"d e","user_code":"u",)" + base_uri + R"(,"expires_in":600})", "device_code"},
            {R"({"device_code":"d","user_code":["u"],)" + base_uri + R"(,"expires_in":600})", "user_code"},
            {R"({"device_code":"d","user_code":"u\u001b]0;x","verification_uri":"https://x/","expires_in":600})", "user_code"},
            {R"({"device_code":"d","user_code":"u","verification_uri":"https://x/\nfake","expires_in":600})", "verification_uri"},
            {R"({"device_code":"d","user_code":"u","verification_uri":"https://x/\u009b2J","expires_in":600})", "verification_uri"},
            {R"({"device_code":"d","user_code":"u","verification_uri":true,"expires_in":600})", "verification_uri"},
            {R"({"device_code":"d","user_code":"u",)" + base_uri + R"(,"expires_in":-1})", "expires_in"},
            {R"({"device_code":"d","user_code":"u",)" + base_uri + R"(,"expires_in":0})", "expires_in"},
            {R"({"device_code":"d","user_code":"u",)" + base_uri + R"(,"expires_in":"9x"})", "expires_in"},
            {R"({"device_code":"d","user_code":"u",)" + base_uri + R"(,"expires_in":1.5})", "expires_in"},
            {R"({"device_code":"d","user_code":"u",)" + base_uri + R"(,"expires_in":1e300})", "expires_in"},
            {R"({"device_code":"d","user_code":"u",)" + base_uri + R"(,"expires_in":600,"interval":"fast"})", "interval"},
            // Strict JSON: duplicates, comments, trailing commas, garbage.
            {R"({"device_code":"d","device_code":"e","user_code":"u",)" + base_uri + R"(,"expires_in":600})", "JSON"},
            {R"({"device_code":"d","user_code":"u",)" + base_uri + R"(,"expires_in":600,})", "JSON"},
            // (jsoncpp tolerates a comment before a member name even in
            // strict mode; one in place of a value is refused.)
            {R"({"device_code": /* c */ "d","user_code":"u",)" + base_uri + R"(,"expires_in":600})", "JSON"},
            {R"({"device_code":"d","user_code":"u",)" + base_uri + R"(,"expires_in":600} x)", "JSON"},
        };
        for (const Case& c : cases) {
            DeviceCodeResponse d;
            std::string err;
            CPPUNIT_ASSERT_MESSAGE(c.body, !mailoauth::parse_device_code_response(c.body, d, err));
            CPPUNIT_ASSERT_MESSAGE(c.body + " -> " + err, err.find(c.err_mentions) != std::string::npos);
            CPPUNIT_ASSERT_MESSAGE(c.body, d.device_code.empty());
        }
    }

    void token_full() {
        const std::string body = R"({"token_type":"Bearer","scope":"https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/SMTP.Send",)"
                                 R"("expires_in":3599,"ext_expires_in":3599,"access_token":"eyJ0eXAi.eyJhdWQi.sig-_+/=",)"
                                 R"("refresh_token":"M.C5_BAY.0.U.-Cr!*$abc","foci":"1"})";
        TokenResponse t;
        std::string err;
        CPPUNIT_ASSERT_MESSAGE(err, mailoauth::parse_token_response(body, t, err));
        CPPUNIT_ASSERT_EQUAL(std::string("eyJ0eXAi.eyJhdWQi.sig-_+/="), t.access_token.reveal());
        CPPUNIT_ASSERT_EQUAL(std::string("M.C5_BAY.0.U.-Cr!*$abc"), t.refresh_token.reveal());
        CPPUNIT_ASSERT_EQUAL(std::string("Bearer"), t.token_type);
        CPPUNIT_ASSERT_EQUAL(3599L, t.expires_in);
        CPPUNIT_ASSERT(t.scope.find("SMTP.Send") != std::string::npos);
        CPPUNIT_ASSERT(t.id_token_username.empty());
    }

    void token_minimal_and_defaults() {
        struct Case {
            std::string body;
            long expires_in;
            std::string refresh;
        } cases[] = {
            {R"({"access_token":"a"})", 3600, ""},
            {R"({"access_token":"a","token_type":"bearer","expires_in":"120"})", 120, ""},
            {R"({"access_token":"a","token_type":"BEARER","expires_in":0,"refresh_token":"r"})", 0, "r"},
            {R"({"access_token":"a","refresh_token":null,"scope":null,"expires_in":null})", 3600, ""},
            {R"({"access_token":"a","refresh_token":""})", 3600, ""},
            {R"({"access_token":"a","id_token":42})", 3600, ""},
        };
        for (const Case& c : cases) {
            TokenResponse t;
            std::string err;
            CPPUNIT_ASSERT_MESSAGE(c.body + ": " + err, mailoauth::parse_token_response(c.body, t, err));
            CPPUNIT_ASSERT_EQUAL_MESSAGE(c.body, std::string("a"), t.access_token.reveal());
            CPPUNIT_ASSERT_EQUAL_MESSAGE(c.body, c.expires_in, t.expires_in);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(c.body, c.refresh, t.refresh_token.reveal());
            CPPUNIT_ASSERT_EQUAL_MESSAGE(c.body, std::string("Bearer"), t.token_type);
        }
    }

    void token_id_token_username() {
        struct Case {
            std::string id_token;
            std::string want;
        } cases[] = {
            {jwt(R"({"preferred_username":"alice@contoso.com","upn":"u@x","email":"e@x"})"), "alice@contoso.com"},
            {jwt(R"({"upn":"bob@contoso.com","email":"e@x"})"), "bob@contoso.com"},
            {jwt(R"({"email":"carol@example.org"})"), "carol@example.org"},
            {jwt(R"({"preferred_username":5,"email":"dave@example.org"})"), "dave@example.org"},
            {jwt(R"({"preferred_username":"a\u001bb"})"), ""},
            {jwt(R"({"name":"No Login"})"), ""},
            {jwt("not json"), ""},
            {jwt(R"(["array"])"), ""},
            {jwt(R"({"preferred_username":")" + std::string(400, 'x') + R"("})"), ""},
            {"only-one-part", ""},
            {"a.!!!.c", ""},
            {"", ""},
        };
        for (const Case& c : cases) {
            const std::string body = R"({"access_token":"a","id_token":")" + c.id_token + R"("})";
            TokenResponse t;
            std::string err;
            CPPUNIT_ASSERT_MESSAGE(body + ": " + err, mailoauth::parse_token_response(body, t, err));
            CPPUNIT_ASSERT_EQUAL_MESSAGE(c.id_token, c.want, t.id_token_username);
        }
        // Padding is tolerated.
        const std::string padded = b64url("{}") + "." + b64url(R"({"upn":"p@x"})") + "==.s";
        TokenResponse t;
        std::string err;
        CPPUNIT_ASSERT(mailoauth::parse_token_response(R"({"access_token":"a","id_token":")" + padded + R"("})", t, err));
        CPPUNIT_ASSERT_EQUAL(std::string("p@x"), t.id_token_username);
    }

    void token_rejects() {
        struct Case {
            std::string body;
            std::string err_mentions;
        } cases[] = {
            {"{}", "access_token"},
            {R"({"access_token":""})", "access_token"},
            {R"({"access_token":null})", "access_token"},
            {R"({"access_token":123})", "access_token"},
            {R"({"access_token":"a b"})", "access_token"},
            {R"({"access_token":"a\u0001b"})", "access_token"},
            {R"({"access_token":"a\r\nuser=x"})", "access_token"},
            {R"({"access_token":"é"})", "access_token"},
            {R"({"access_token":"a","refresh_token":7})", "refresh_token"},
            {R"({"access_token":"a","refresh_token":"r\n"})", "refresh_token"},
            {R"({"access_token":"a","token_type":"mac"})", "token_type"},
            {R"({"access_token":"a","token_type":"Bearerx"})", "token_type"},
            {R"({"access_token":"a","token_type":1})", "token_type"},
            {R"({"access_token":"a","expires_in":"soon"})", "expires_in"},
            {R"({"access_token":"a","expires_in":-5})", "expires_in"},
            {R"({"access_token":"a","expires_in":true})", "expires_in"},
            {R"({"access_token":"a","expires_in":"99999999999"})", "expires_in"},
            {R"({"access_token":"a","scope":["x"]})", "scope"},
            {R"({"access_token":"a","scope":"x\ny"})", "scope"},
            {R"({"access_token":"a","access_token":"b"})", "JSON"},
            {R"({"access_token":"a")", "JSON"},
            {"null", "JSON"},
        };
        for (const Case& c : cases) {
            TokenResponse t;
            std::string err;
            CPPUNIT_ASSERT_MESSAGE(c.body, !mailoauth::parse_token_response(c.body, t, err));
            CPPUNIT_ASSERT_MESSAGE(c.body + " -> " + err, err.find(c.err_mentions) != std::string::npos);
            CPPUNIT_ASSERT_MESSAGE(c.body, t.access_token.empty() && t.refresh_token.empty());
        }
    }

    void error_microsoft() {
        const std::string body =
            R"({"error":"invalid_grant","error_description":"AADSTS700082: The refresh token has expired due to inactivity.\r\nTrace ID: 0000aaaa-11bb-cccc-dd22-eeeeee333333\r\nCorrelation ID: aaaa0000-bb11-2222-33cc-444444dddddd\r\nTimestamp: 2024-01-09 02:02:12Z",)"
            R"("error_codes":[700082],"timestamp":"2024-01-09 02:02:12Z","trace_id":"0000aaaa-11bb-cccc-dd22-eeeeee333333",)"
            R"("correlation_id":"aaaa0000-bb11-2222-33cc-444444dddddd","error_uri":"https://login.microsoftonline.com/error?code=700082"})";
        OAuthError e;
        e.http_status = 400;
        CPPUNIT_ASSERT(mailoauth::parse_error_response(body, e));
        CPPUNIT_ASSERT_EQUAL(400, e.http_status);
        CPPUNIT_ASSERT_EQUAL(std::string("invalid_grant"), e.error);
        CPPUNIT_ASSERT_EQUAL(std::string("AADSTS700082: The refresh token has expired due to inactivity."),
                             e.error_description);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), e.error_codes.size());
        CPPUNIT_ASSERT_EQUAL(700082L, e.error_codes[0]);
        CPPUNIT_ASSERT_EQUAL(std::string("0000aaaa-11bb-cccc-dd22-eeeeee333333"), e.trace_id);
        CPPUNIT_ASSERT_EQUAL(std::string("aaaa0000-bb11-2222-33cc-444444dddddd"), e.correlation_id);
        CPPUNIT_ASSERT_EQUAL(std::string("2024-01-09 02:02:12Z"), e.timestamp);

        OAuthError p;
        CPPUNIT_ASSERT(mailoauth::parse_error_response(R"({"error":"authorization_pending"})", p));
        CPPUNIT_ASSERT_EQUAL(std::string("authorization_pending"), p.error);
        CPPUNIT_ASSERT(p.error_codes.empty() && p.trace_id.empty());
    }

    void error_tolerates_wrong_types() {
        struct Case {
            std::string body;
            std::vector<long> codes;
            std::string description;
            std::string trace_id;
        } cases[] = {
            {R"({"error":"x","error_codes":"700082"})", {}, "", ""},
            {R"({"error":"x","error_codes":[70016,"50076",-1,1.5,null,50173]})", {70016, 50173}, "", ""},
            {R"({"error":"x","error_description":["no"],"trace_id":5})", {}, "", ""},
            {R"({"error":"x","error_description":"one\ttab\u0000nul","trace_id":"t\nx"})", {}, "one tab?nul", ""},
            {R"({"error":"x","trace_id":")" + std::string(200, 'a') + R"("})", {}, "", ""},
            {R"({"error":"x","error_description":")" + std::string(5000, 'd') + R"("})", {}, "", ""},
            {R"({"error":"x","error_description":")" + std::string(2000, 'd') + R"("})", {}, std::string(1021, 'd') + "...", ""},
            {R"({"error":"x","trace_id":"abc","unknown":{"deep":[[[1]]]}})", {}, "", "abc"},
        };
        for (const Case& c : cases) {
            OAuthError e;
            CPPUNIT_ASSERT_MESSAGE(c.body.substr(0, 80), mailoauth::parse_error_response(c.body, e));
            CPPUNIT_ASSERT_EQUAL(std::string("x"), e.error);
            CPPUNIT_ASSERT_MESSAGE(c.body.substr(0, 80), c.codes == e.error_codes);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(c.body.substr(0, 80), c.description, e.error_description);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(c.body.substr(0, 80), c.trace_id, e.trace_id);
        }
        OAuthError many;
        std::string codes;
        for (int i = 0; i < 100; ++i) codes += (i ? "," : "") + std::to_string(50000 + i);
        CPPUNIT_ASSERT(mailoauth::parse_error_response(R"({"error":"x","error_codes":[)" + codes + "]}", many));
        CPPUNIT_ASSERT_EQUAL(std::size_t(16), many.error_codes.size());
    }

    void error_rejects() {
        const std::string cases[] = {
            "",
            "<html><head><title>502 Bad Gateway</title></head></html>",
            "{}",
            R"({"error":""})",
            R"({"error":42})",
            R"({"error":null})",
            R"({"error":"bad\nword"})",
            R"({"error":"quote\"d"})",
            R"({"error":")" + std::string(200, 'e') + R"("})",
            R"(["error","invalid_grant"])",
            R"({"error":"a","error":"b"})",
        };
        for (const std::string& body : cases) {
            OAuthError e;
            e.http_status = 502;
            CPPUNIT_ASSERT_MESSAGE(body.substr(0, 80), !mailoauth::parse_error_response(body, e));
            CPPUNIT_ASSERT_EQUAL(502, e.http_status);
            CPPUNIT_ASSERT(e.error.empty());
        }
    }

    void limits() {
        // Over 1 MiB: refused before parsing.
        std::string huge = R"({"access_token":"a","pad":")" + std::string(1 << 20, 'x') + R"("})";
        TokenResponse t;
        std::string err;
        CPPUNIT_ASSERT(!mailoauth::parse_token_response(huge, t, err));
        CPPUNIT_ASSERT(err.find("1 MiB") != std::string::npos);

        // Deep nesting: refused, not a stack overflow.
        std::string deep = R"({"access_token":"a","x":)" + std::string(100000, '[') +
                           std::string(100000, ']') + "}";
        CPPUNIT_ASSERT(!mailoauth::parse_token_response(deep, t, err));
        OAuthError e;
        CPPUNIT_ASSERT(!mailoauth::parse_error_response(R"({"error":"x","y":)" + std::string(50, '[') +
                                                            std::string(50, ']') + "}", e));
        // Moderate nesting among unknown fields is fine.
        CPPUNIT_ASSERT(mailoauth::parse_error_response(R"({"error":"x","y":)" + std::string(10, '[') +
                                                           std::string(10, ']') + "}", e));

        // Token length caps: 16 KiB passes, one byte more does not.
        const std::string at_cap(16 * 1024, 'a');
        CPPUNIT_ASSERT(mailoauth::parse_token_response(R"({"access_token":")" + at_cap + R"("})", t, err));
        CPPUNIT_ASSERT(!mailoauth::parse_token_response(R"({"access_token":")" + at_cap + R"(a"})", t, err));
        CPPUNIT_ASSERT(err.find("access_token") != std::string::npos);

        DeviceCodeResponse d;
        CPPUNIT_ASSERT(!mailoauth::parse_device_code_response(
            R"({"device_code":"d","user_code":")" + std::string(5000, 'u') +
                R"(","verification_uri":"https://x/","expires_in":600})",
            d, err));
        CPPUNIT_ASSERT(err.find("user_code") != std::string::npos);
    }
};
CPPUNIT_TEST_SUITE_REGISTRATION(OAuthTest);
