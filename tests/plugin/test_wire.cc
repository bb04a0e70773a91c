// Table-driven tests of plugin/wire.cc: the exact bytes of both initial
// responses, GS2 escaping, the token and name checks, the port parser and
// the error-challenge reader.
#include "plugin/wire.h"

#include <cppunit/extensions/HelperMacros.h>

#include <string>

using namespace mailoauth::plugin::wire;

class WireTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(WireTest);
    CPPUNIT_TEST(testXoauth2);
    CPPUNIT_TEST(testOauthbearer);
    CPPUNIT_TEST(testGs2Escape);
    CPPUNIT_TEST(testBearerToken);
    CPPUNIT_TEST(testWireName);
    CPPUNIT_TEST(testPort);
    CPPUNIT_TEST(testErrorChallenge);
    CPPUNIT_TEST_SUITE_END();

public:
    void testXoauth2() {
        std::string out;
        build_xoauth2(out, "alice@example.com", "tok");
        CPPUNIT_ASSERT_EQUAL(std::string("user=alice@example.com\x01" "auth=Bearer tok\x01\x01"), out);
    }

    void testOauthbearer() {
        std::string out;
        build_oauthbearer(out, "a,b", "imap.example.com", "993", "tok");
        CPPUNIT_ASSERT_EQUAL(std::string("n,a=a=2Cb,\x01host=imap.example.com\x01port=993\x01"
                                         "auth=Bearer tok\x01\x01"),
                             out);
        build_oauthbearer(out, "u", "", "", "tok");
        CPPUNIT_ASSERT_EQUAL(std::string("n,a=u,\x01" "auth=Bearer tok\x01\x01"), out);
        build_oauthbearer(out, "u", "h", "", "tok");
        CPPUNIT_ASSERT_EQUAL(std::string("n,a=u,\x01host=h\x01" "auth=Bearer tok\x01\x01"), out);
    }

    void testGs2Escape() {
        struct { const char* in; const char* out; } cases[] = {
            {"plain", "plain"}, {",", "=2C"}, {"=", "=3D"}, {"a=,b", "a=3D=2Cb"}, {"", ""},
        };
        for (auto& c : cases) CPPUNIT_ASSERT_EQUAL(std::string(c.out), gs2_escape(c.in));
    }

    void testBearerToken() {
        const char* good[] = {"abc", "ya29.A-_~+/x", "eyJ0eXAi.eyJhdWQi.sig==", "a="};
        const char* bad[] = {"", "=", "a b", "a\x01" "b", "a=b", "a\nb", "tok\xc3\xa9"};
        for (const char* g : good) CPPUNIT_ASSERT_MESSAGE(g, valid_bearer_token(g));
        for (const char* b : bad) CPPUNIT_ASSERT_MESSAGE(b, !valid_bearer_token(b));
    }

    void testWireName() {
        CPPUNIT_ASSERT(valid_wire_name("shared@example.com"));
        CPPUNIT_ASSERT(!valid_wire_name(""));
        CPPUNIT_ASSERT(!valid_wire_name("a\x01" "b"));
        CPPUNIT_ASSERT(!valid_wire_name("a\tb"));
        CPPUNIT_ASSERT(!valid_wire_name(std::string(513, 'a')));
    }

    void testPort() {
        struct { const char* in; const char* out; } cases[] = {
            {"127.0.0.1;993", "993"}, {"::1;587", "587"}, {"192.0.2.1:25", "25"},
            {"fe80::1", ""},          {"1.2.3.4;", ""},   {"1.2.3.4;0", ""},
            {"1.2.3.4;65536", ""},    {"1.2.3.4;x1", ""}, {"", ""},
        };
        for (auto& c : cases) CPPUNIT_ASSERT_EQUAL_MESSAGE(c.in, std::string(c.out), port_of(c.in));
    }

    void testErrorChallenge() {
        ErrorChallenge e = parse_error_challenge(
            R"({"status":"401","schemes":"bearer","scope":"https://outlook.office.com/IMAP.AccessAsUser.All"})");
        CPPUNIT_ASSERT(e.json);
        CPPUNIT_ASSERT_EQUAL(std::string("401"), e.status);
        CPPUNIT_ASSERT_EQUAL(std::string("bearer"), e.schemes);
        CPPUNIT_ASSERT_EQUAL(std::string("https://outlook.office.com/IMAP.AccessAsUser.All"), e.scope);

        e = parse_error_challenge(R"( { "status" : "invalid_token", "n": 1, "ok": true,
                                       "openid-configuration": "https:\/\/x\/y" } )");
        CPPUNIT_ASSERT(e.json);
        CPPUNIT_ASSERT_EQUAL(std::string("invalid_token"), e.status);
        CPPUNIT_ASSERT(e.scope.empty());

        e = parse_error_challenge("{\"status\":\"4\\u001b01\\n\"}");
        CPPUNIT_ASSERT(e.json);
        CPPUNIT_ASSERT_EQUAL(std::string("4?01?"), e.status);
        // C1 CSI raw and as UTF-8, a bidi override: common/sanitize.h.
        e = parse_error_challenge("{\"status\":\"4\x9b" "0\xc2\x9b" "1\xe2\x80\xae\"}");
        CPPUNIT_ASSERT(e.json);
        CPPUNIT_ASSERT_EQUAL(std::string("4?0?1?"), e.status);

        const char* bad[] = {"", "junk", "{", "{\"a\":{\"b\":\"c\"}}", "[1]", "{\"a\":\"b\"} x",
                             "{\"a\" \"b\"}", "{\"a\":\"b\",}", "{\"a\":\"\x01\"}"};
        for (const char* b : bad) CPPUNIT_ASSERT_MESSAGE(b, !parse_error_challenge(b).json);
        CPPUNIT_ASSERT(!parse_error_challenge(std::string(9000, ' ')).json);
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(WireTest);
