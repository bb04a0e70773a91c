#include <cppunit/extensions/HelperMacros.h>

#include "common/secret.h"

using mailoauth::Secret;

class SecretTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(SecretTest);
    CPPUNIT_TEST(fingerprint_shows_only_the_tail);
    CPPUNIT_TEST(move_leaves_source_empty);
    CPPUNIT_TEST(wipe_string_zeroes_bytes);
    CPPUNIT_TEST_SUITE_END();

public:
    void fingerprint_shows_only_the_tail() {
        CPPUNIT_ASSERT_EQUAL(std::string("...wxyz"), Secret("abcdefghijklmnopqrstuvwxyz").fingerprint());
        CPPUNIT_ASSERT_EQUAL(std::string("(short)"), Secret("abc").fingerprint());
    }
    void move_leaves_source_empty() {
        Secret a("secret-value-1234");
        Secret b(std::move(a));
        CPPUNIT_ASSERT(a.empty());
        CPPUNIT_ASSERT_EQUAL(std::string("secret-value-1234"), b.reveal());
        Secret c;
        c = std::move(b);
        CPPUNIT_ASSERT(b.empty());
        CPPUNIT_ASSERT_EQUAL(std::string("secret-value-1234"), c.reveal());
    }
    void wipe_string_zeroes_bytes() {
        std::string s(100, 'x');
        const char* p = s.data();
        mailoauth::wipe_string(s);
        CPPUNIT_ASSERT(s.empty());
        // Same buffer (clear() keeps capacity): its first bytes are now zero.
        CPPUNIT_ASSERT_EQUAL('\0', p[1]);
        CPPUNIT_ASSERT_EQUAL('\0', p[99]);
    }
};
CPPUNIT_TEST_SUITE_REGISTRATION(SecretTest);
