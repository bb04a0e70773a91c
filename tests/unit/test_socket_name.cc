// common/socket_name: "@abstract" and "/path" into a sockaddr_un and the
// length to pass to bind/connect, table-driven.
#include <cppunit/extensions/HelperMacros.h>

#include "common/socket_name.h"

#include <cstddef>
#include <cstring>
#include <string>

using namespace mailoauth;

namespace {
const std::size_t kBase = offsetof(struct sockaddr_un, sun_path);
const std::size_t kRoom = sizeof(((struct sockaddr_un*)nullptr)->sun_path);  // 108 on Linux
}  // namespace

class SocketNameTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(SocketNameTest);
    CPPUNIT_TEST(valid_table);
    CPPUNIT_TEST(invalid_table);
    CPPUNIT_TEST_SUITE_END();

public:
    void valid_table() {
        struct { std::string spec; bool abstract; std::size_t len; } cases[] = {
            {"@mailoauth-agent", true, kBase + 1 + 15},
            {"@a", true, kBase + 2},
            {"@" + std::string(kRoom - 1, 'x'), true, kBase + kRoom},
            {"/run/mailoauth/agent.sock", false, kBase + 25 + 1},
            {"/" + std::string(kRoom - 2, 'p'), false, kBase + kRoom},
        };
        for (const auto& c : cases) {
            SocketName n;
            std::string err;
            CPPUNIT_ASSERT_MESSAGE(c.spec, parse_socket_name(c.spec, n, err));
            CPPUNIT_ASSERT_EQUAL(c.spec, n.spec);
            CPPUNIT_ASSERT_EQUAL(c.abstract, n.abstract);
            CPPUNIT_ASSERT_EQUAL(static_cast<socklen_t>(c.len), n.len);
            CPPUNIT_ASSERT_EQUAL(static_cast<sa_family_t>(AF_UNIX), n.addr.sun_family);
            if (c.abstract) {
                // A leading NUL, then exactly the name, no terminator.
                CPPUNIT_ASSERT_EQUAL('\0', n.addr.sun_path[0]);
                CPPUNIT_ASSERT_EQUAL(0, std::memcmp(n.addr.sun_path + 1, c.spec.data() + 1, c.spec.size() - 1));
            } else {
                CPPUNIT_ASSERT_EQUAL(c.spec, std::string(n.addr.sun_path));
            }
        }
    }

    void invalid_table() {
        struct { std::string spec; const char* says; } cases[] = {
            {"", "must be @NAME"},
            {"@", "must be @NAME"},
            {"mailoauth-agent", "must be @NAME"},
            {"./agent.sock", "must be @NAME"},
            {"@has space", "may not contain spaces or control characters"},
            {"@tab\there", "may not contain spaces or control characters"},
            {"@del\x7f", "may not contain spaces or control characters"},
            {"@" + std::string(kRoom, 'x'), "is longer than 107 characters"},
            {"/" + std::string(kRoom - 1, 'p'), "is longer than 107 bytes"},
            {std::string("/a\0b", 4), "contains a NUL byte"},
        };
        for (const auto& c : cases) {
            SocketName n;
            std::string err;
            CPPUNIT_ASSERT_MESSAGE(c.spec, !parse_socket_name(c.spec, n, err));
            CPPUNIT_ASSERT_MESSAGE(err, err.find(c.says) != std::string::npos);
            CPPUNIT_ASSERT_EQUAL(socklen_t(0), n.len);
        }
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(SocketNameTest);
