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
};
CPPUNIT_TEST_SUITE_REGISTRATION(ProtocolTest);
