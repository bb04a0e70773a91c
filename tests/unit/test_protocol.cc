// Helper protocol v1 parser and writer: table-driven cases.
#include <cppunit/extensions/HelperMacros.h>

#include "common/protocol.h"

using namespace mailoauth::protocol;

class ProtocolTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(ProtocolTest);
    CPPUNIT_TEST(parses_request);
    CPPUNIT_TEST(rejects_bad_input_table);
    CPPUNIT_TEST(accepts_input_table);
    CPPUNIT_TEST(stops_at_blank_line);
    CPPUNIT_TEST(serialize_round_trip);
    CPPUNIT_TEST(set_refuses_newlines);
    CPPUNIT_TEST(caps_are_enforced);
    CPPUNIT_TEST(token_id_is_a_hash_prefix);
    CPPUNIT_TEST(request_round_trip);
    CPPUNIT_TEST(request_check_table);
    CPPUNIT_TEST(replies_carry_status);
    CPPUNIT_TEST(reply_status_table);
    CPPUNIT_TEST(token_reply_shape);
    CPPUNIT_TEST(decimal_table);
    CPPUNIT_TEST_SUITE_END();

public:
    void parses_request() {
        Message m;
        auto r = parse("version=1\naccount=alice@example.com\nprotocol=imap\nhost=outlook.office365.com\n\n", m);
        CPPUNIT_ASSERT(r.ok);
        CPPUNIT_ASSERT(r.terminated);
        CPPUNIT_ASSERT_EQUAL(std::string("1"), m.get_or("version", ""));
        CPPUNIT_ASSERT_EQUAL(std::string("alice@example.com"), m.get_or("account", ""));
        CPPUNIT_ASSERT_EQUAL(std::string("imap"), m.get_or("protocol", ""));
        CPPUNIT_ASSERT(m.get("missing") == nullptr);
    }

    void rejects_bad_input_table() {
        struct { const char* in; std::size_t len; const char* why; } cases[] = {
            {"noequals\n", 9, "line without '='"},
            {"=value\n", 7, "invalid key"},
            {"Key=value\n", 10, "invalid key"},
            {"a b=value\n", 10, "invalid key"},
            {"key=va\rlue\n", 11, "value contains CR or NUL"},
            {"key=va\0lue\n", 11, "value contains CR or NUL"},
            {"key=1\nkey=2\n", 12, "duplicate key 'key'"},
        };
        for (const auto& c : cases) {
            Message m;
            auto r = parse(std::string_view(c.in, c.len), m);
            CPPUNIT_ASSERT_MESSAGE(c.in, !r.ok);
            CPPUNIT_ASSERT_EQUAL(std::string(c.why), r.error);
            CPPUNIT_ASSERT(m.fields().empty());
        }
    }

    void accepts_input_table() {
        struct { const char* in; const char* key; const char* value; } cases[] = {
            {"k=v", "k", "v"},                        // no final LF at EOF
            {"k=\n", "k", ""},                        // empty value
            {"k=a=b\n", "k", "a=b"},                  // '=' in value
            {"error_description=x y z\n", "error_description", "x y z"},
            {"unknown_future_key=1\nk=v\n", "k", "v"},  // unknown keys kept
        };
        for (const auto& c : cases) {
            Message m;
            auto r = parse(c.in, m);
            CPPUNIT_ASSERT_MESSAGE(c.in, r.ok);
            CPPUNIT_ASSERT_EQUAL(std::string(c.value), m.get_or(c.key, "<none>"));
        }
    }

    void stops_at_blank_line() {
        Message m;
        std::string in = "a=1\n\nb=2\n";
        auto r = parse(in, m);
        CPPUNIT_ASSERT(r.ok && r.terminated);
        CPPUNIT_ASSERT_EQUAL(std::size_t(5), r.consumed);
        CPPUNIT_ASSERT(!m.has("b"));
    }

    void serialize_round_trip() {
        Message m;
        CPPUNIT_ASSERT(m.set("access_token", "abc.def-ghi"));
        CPPUNIT_ASSERT(m.set("expires_at", "1700000000"));
        CPPUNIT_ASSERT(m.set("access_token", "replaced"));
        std::string s = serialize(m);
        CPPUNIT_ASSERT_EQUAL(std::string("access_token=replaced\nexpires_at=1700000000\n\n"), s);
        Message back;
        CPPUNIT_ASSERT(parse(s, back).ok);
        CPPUNIT_ASSERT_EQUAL(std::string("replaced"), back.get_or("access_token", ""));
    }

    void set_refuses_newlines() {
        Message m;
        CPPUNIT_ASSERT(!m.set("user", "evil\naccess_token=x"));
        CPPUNIT_ASSERT(!m.set("user", "a\rb"));
        CPPUNIT_ASSERT(!m.set("user", std::string("a\0b", 3)));
        CPPUNIT_ASSERT(!m.set("Bad", "x"));
        CPPUNIT_ASSERT(m.fields().empty());
    }

    void caps_are_enforced() {
        Message m;
        std::string longline = "k=" + std::string(kMaxLine + 1, 'x') + "\n";
        CPPUNIT_ASSERT_EQUAL(std::string("line too long"), parse(longline, m).error);
        std::string many;
        for (std::size_t i = 0; i <= kMaxFields; ++i) many += "k" + std::to_string(i) + "=v\n";
        CPPUNIT_ASSERT_EQUAL(std::string("too many fields"), parse(many, m).error);
        std::string huge;
        while (huge.size() <= kMaxMessage) huge += "k" + std::to_string(huge.size()) + "=" + std::string(1000, 'v') + "\n";
        CPPUNIT_ASSERT(!parse(huge, m).ok);
    }

    void token_id_is_a_hash_prefix() {
        // The first 8 bytes of SHA-256("ya29.token"), in hex.
        CPPUNIT_ASSERT_EQUAL(std::string("878e688dda7bafeb"), token_id("ya29.token"));
        CPPUNIT_ASSERT(valid_token_id("878e688dda7bafeb"));
        CPPUNIT_ASSERT(names_token("878e688dda7bafeb", "ya29.token"));
        CPPUNIT_ASSERT(!names_token("878e688dda7bafeb", "ya29.other"));
        CPPUNIT_ASSERT(!names_token("878e688dda7bafeb", ""));
        // Not an id: the old "last characters of the token" form, upper
        // case, wrong length.
        for (const char* bad : {"", "oken", "ya29.token", "878E688DDA7BAFEB", "878e688dda7bafe", "878e688dda7bafeb0",
                                "878e688dda7bafeg"}) {
            CPPUNIT_ASSERT_MESSAGE(bad, !valid_token_id(bad));
            CPPUNIT_ASSERT_MESSAGE(bad, !names_token(bad, "ya29.token"));
        }
    }

    void request_round_trip() {
        Request r;
        r.account = "alice@example.com";
        r.protocol = "smtp";
        r.host = "smtp.office365.com";
        r.port = "587";
        r.mechanism = "XOAUTH2";
        r.force_refresh = true;
        r.rejected = token_id("ya29.token");
        Message m;
        CPPUNIT_ASSERT(build_request(r, m));
        const std::string text = serialize(m);
        CPPUNIT_ASSERT_EQUAL(std::string("version=1\naccount=alice@example.com\nprotocol=smtp\n"
                                         "host=smtp.office365.com\nport=587\nmechanism=XOAUTH2\n"
                                         "force_refresh=1\nrejected=878e688dda7bafeb\n\n"),
                             text);
        Request back;
        Problem p;
        CPPUNIT_ASSERT(parse_request(text, back, p));
        CPPUNIT_ASSERT_EQUAL(r.account, back.account);
        CPPUNIT_ASSERT_EQUAL(r.host, back.host);
        CPPUNIT_ASSERT_EQUAL(r.port, back.port);
        CPPUNIT_ASSERT_EQUAL(r.mechanism, back.mechanism);
        CPPUNIT_ASSERT(back.force_refresh);
        CPPUNIT_ASSERT_EQUAL(r.rejected, back.rejected);
        // Empty fields are left out; a value with a newline cannot be sent.
        Request minimal;
        minimal.account = "a";
        CPPUNIT_ASSERT(build_request(minimal, m));
        CPPUNIT_ASSERT_EQUAL(std::string("version=1\naccount=a\n\n"), serialize(m));
        minimal.host = "evil\nrejected=x";
        CPPUNIT_ASSERT(!build_request(minimal, m));
        CPPUNIT_ASSERT(m.fields().empty());
    }

    void request_check_table() {
        struct { std::string in; bool ok; const char* error; const char* says; } cases[] = {
            {"version=1\naccount=a\n\n", true, "", ""},
            {"account=a\n\n", true, "", ""},                                   // version defaults to 1
            {"account=a\nfuture_key=whatever\n\n", true, "", ""},             // unknown keys ignored
            {"account=a", true, "", ""},                                         // end of input ends it
            {"version=2\naccount=a\n\n", false, "unsupported_version", "version 2 is not supported"},
            {"version=1 x\naccount=a\n\n", false, "unsupported_version", "version '?' is not supported"},
            {"version=1\n\n", false, "bad_request", "the request has no 'account'"},
            {"account=\n\n", false, "bad_request", "the request has no 'account'"},
            {"account=a\rb\n\n", false, "bad_request", "request line 1: value contains CR or NUL"},
            {std::string("account=a\0b\n\n", 13), false, "bad_request", "value contains CR or NUL"},
            {"account=a\naccount=b\n\n", false, "bad_request", "request line 2: duplicate key"},
            {"account=a\n" + std::string(kMaxLine + 1, 'x') + "\n\n", false, "bad_request",
             "request line 2: line too long"},
            {"garbage\n\n", false, "bad_request", "request line 1: line without '='"},
        };
        for (const auto& c : cases) {
            Request r;
            Problem p;
            const bool ok = parse_request(c.in, r, p);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(c.in.substr(0, 40), c.ok, ok);
            if (ok) continue;
            CPPUNIT_ASSERT_EQUAL(std::string(c.error), p.error);
            CPPUNIT_ASSERT_MESSAGE(p.description, p.description.find(c.says) != std::string::npos);
            CPPUNIT_ASSERT_EQUAL(kStatusDataErr, p.status);
        }
        // Too many fields.
        std::string many;
        for (std::size_t i = 0; i <= kMaxFields; ++i) many += "k" + std::to_string(i) + "=v\n";
        Request r;
        Problem p;
        CPPUNIT_ASSERT(!parse_request("account=a\n" + many + "\n", r, p));
        CPPUNIT_ASSERT(p.description.find("too many fields") != std::string::npos);
        // force_refresh only for "1"; a rejected value that is no token id
        // (an older plugin's token tail) is dropped, never kept.
        CPPUNIT_ASSERT(parse_request("account=a\nforce_refresh=yes\nrejected=abcdefghijklmnop\n\n", r, p));
        CPPUNIT_ASSERT(!r.force_refresh);
        CPPUNIT_ASSERT_EQUAL(std::string(), r.rejected);
    }

    void replies_carry_status() {
        Message m;
        CPPUNIT_ASSERT(build_token_reply(m, "ya29.t", 1700000000, "shared@example.com"));
        CPPUNIT_ASSERT_EQUAL(std::string("access_token=ya29.t\nexpires_at=1700000000\nuser=shared@example.com\n"
                                         "status=0\n\n"),
                             serialize(m));
        CPPUNIT_ASSERT(build_token_reply(m, "ya29.t", 5, ""));
        CPPUNIT_ASSERT(!m.has("lifetime"));  // unknown: left out
        CPPUNIT_ASSERT(build_token_reply(m, "ya29.t", 5, "", 300));
        CPPUNIT_ASSERT_EQUAL(std::string("300"), m.get_or("lifetime", ""));
        CPPUNIT_ASSERT(!m.has("user"));
        CPPUNIT_ASSERT(!build_token_reply(m, "", 5, "u"));
        CPPUNIT_ASSERT(!build_token_reply(m, "a\nb", 5, "u"));
        CPPUNIT_ASSERT(m.fields().empty());
        build_error_reply(m, "not_logged_in", "sign in with: mailoauth login a", kStatusNoPerm);
        CPPUNIT_ASSERT_EQUAL(std::string("error=not_logged_in\nerror_description=sign in with: mailoauth login a\n"
                                         "status=77\n\n"),
                             serialize(m));
        // A description that cannot be sent is left out, the status is not.
        build_error_reply(m, "failed", "two\nlines", kStatusTempFail);
        CPPUNIT_ASSERT(!m.has("error_description"));
        CPPUNIT_ASSERT_EQUAL(std::string("75"), m.get_or("status", ""));
    }

    void reply_status_table() {
        struct { const char* in; bool ok; int status; } cases[] = {
            {"status=0\n", true, 0},    {"status=75\n", true, 75}, {"status=255\n", true, 255},
            {"status=256\n", false, 0}, {"status=-1\n", false, 0}, {"status=\n", false, 0},
            {"status=7a\n", false, 0},  {"error=x\n", false, 0},
        };
        for (const auto& c : cases) {
            Message m;
            CPPUNIT_ASSERT(parse(c.in, m).ok);
            int st = -1;
            CPPUNIT_ASSERT_EQUAL_MESSAGE(c.in, c.ok, reply_status(m, st));
            if (c.ok) CPPUNIT_ASSERT_EQUAL(c.status, st);
        }
    }

    void token_reply_shape() {
        struct { const char* in; bool ok; const char* why; } cases[] = {
            {"access_token=t\nexpires_at=1\n", true, ""},
            {"expires_at=1\n", false, "no access_token"},
            {"access_token=\nexpires_at=1\n", false, "no access_token"},
            {"access_token=t\n", false, "no valid expires_at"},
            {"access_token=t\nexpires_at=soon\n", false, "no valid expires_at"},
        };
        for (const auto& c : cases) {
            Message m;
            CPPUNIT_ASSERT(parse(c.in, m).ok);
            std::string why;
            CPPUNIT_ASSERT_EQUAL_MESSAGE(c.in, c.ok, check_token_reply(m, why));
            CPPUNIT_ASSERT_EQUAL(std::string(c.why), why);
        }
    }

    void decimal_table() {
        unsigned long long n = 0;
        CPPUNIT_ASSERT(parse_decimal("0", 10, n) && n == 0);
        CPPUNIT_ASSERT(parse_decimal("999999999999", 999999999999ull, n) && n == 999999999999ull);
        CPPUNIT_ASSERT(!parse_decimal("1000000000000", ~0ull, n));  // 13 digits
        CPPUNIT_ASSERT(!parse_decimal("", 10, n));
        CPPUNIT_ASSERT(!parse_decimal("11", 10, n));
        CPPUNIT_ASSERT(!parse_decimal("+1", 10, n));
        CPPUNIT_ASSERT(!parse_decimal(" 1", 10, n));
    }
};
CPPUNIT_TEST_SUITE_REGISTRATION(ProtocolTest);
