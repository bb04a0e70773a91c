// PKCE (RFC 7636) and the state: the RFC's own example, base64url without
// padding, fresh values of the right shape, a failing random source.
#include <cppunit/extensions/HelperMacros.h>

#include <cstring>
#include <set>
#include <string>

#include "common/sha256.h"
#include "tokenhelper/pkce.h"

namespace pkce = mailoauth::pkce;

namespace {

// RFC 7636 Appendix B: the 32 octets of the example's verifier.
const unsigned char kRfcOctets[32] = {116, 24,  223, 180, 151, 153, 224, 37,  79,  250, 96,
                                      125, 216, 173, 187, 186, 22,  212, 37,  77,  105, 214,
                                      191, 240, 91,  88,  5,   88,  83,  132, 141, 121};

bool rfc_source(unsigned char* out, std::size_t n, std::string&) {
    if (n != sizeof kRfcOctets) return false;
    std::memcpy(out, kRfcOctets, n);
    return true;
}

bool broken_source(unsigned char*, std::size_t, std::string& why) {
    why = "no entropy today";
    return false;
}

}  // namespace

class PkceTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(PkceTest);
    CPPUNIT_TEST(rfc7636_appendix_b);
    CPPUNIT_TEST(base64url_table);
    CPPUNIT_TEST(fresh_values_have_the_right_shape);
    CPPUNIT_TEST(failing_random_source);
    CPPUNIT_TEST(verifier_rules);
    CPPUNIT_TEST(constant_time_compare);
    CPPUNIT_TEST_SUITE_END();

public:
    void rfc7636_appendix_b() {
        pkce::Pkce p;
        std::string why;
        CPPUNIT_ASSERT(pkce::make_pkce(p, why, rfc_source));
        CPPUNIT_ASSERT_EQUAL(std::string("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"), p.verifier.reveal());
        CPPUNIT_ASSERT_EQUAL(std::string("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"), p.challenge);
        CPPUNIT_ASSERT_EQUAL(p.challenge, pkce::challenge_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"));
        CPPUNIT_ASSERT_EQUAL(std::string("S256"), std::string(pkce::kMethod));
    }

    void base64url_table() {
        struct Case {
            std::string in, out;
        } cases[] = {
            {"", ""},           {"f", "Zg"},         {"fo", "Zm8"},          {"foo", "Zm9v"},
            {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"},
            // '+' and '/' of standard base64 become '-' and '_'; no '='.
            {"\xfb\xff", "-_8"}, {"\xff\xff\xff", "____"}, {std::string("\0\0\0", 3), "AAAA"},
        };
        for (const Case& c : cases)
            CPPUNIT_ASSERT_EQUAL_MESSAGE(c.in, c.out, pkce::base64url(c.in.data(), c.in.size()));
    }

    void fresh_values_have_the_right_shape() {
        std::set<std::string> verifiers, states;
        for (int i = 0; i < 20; ++i) {
            pkce::Pkce p;
            std::string state, why;
            CPPUNIT_ASSERT(pkce::make_pkce(p, why));
            CPPUNIT_ASSERT(pkce::make_state(state, why));
            CPPUNIT_ASSERT_EQUAL(std::size_t(43), p.verifier.size());
            CPPUNIT_ASSERT(pkce::valid_verifier(p.verifier.reveal()));
            CPPUNIT_ASSERT_EQUAL(std::size_t(43), p.challenge.size());
            CPPUNIT_ASSERT_EQUAL(pkce::challenge_s256(p.verifier.reveal()), p.challenge);
            CPPUNIT_ASSERT(p.challenge != p.verifier.reveal());
            CPPUNIT_ASSERT_EQUAL(std::size_t(32), state.size());  // 24 bytes: more than the 16 asked for
            CPPUNIT_ASSERT(state.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
                           std::string::npos);
            verifiers.insert(p.verifier.reveal());
            states.insert(state);
        }
        CPPUNIT_ASSERT_EQUAL(std::size_t(20), verifiers.size());
        CPPUNIT_ASSERT_EQUAL(std::size_t(20), states.size());
    }

    void failing_random_source() {
        pkce::Pkce p;
        std::string why, state;
        CPPUNIT_ASSERT(!pkce::make_pkce(p, why, broken_source));
        CPPUNIT_ASSERT_EQUAL(std::string("no entropy today"), why);
        CPPUNIT_ASSERT(p.verifier.empty());
        CPPUNIT_ASSERT(p.challenge.empty());
        CPPUNIT_ASSERT(!pkce::make_state(state, why, broken_source));
        CPPUNIT_ASSERT(state.empty());
    }

    void verifier_rules() {
        CPPUNIT_ASSERT(!pkce::valid_verifier(std::string(42, 'a')));
        CPPUNIT_ASSERT(pkce::valid_verifier(std::string(43, 'a')));
        CPPUNIT_ASSERT(pkce::valid_verifier(std::string(128, '~')));
        CPPUNIT_ASSERT(!pkce::valid_verifier(std::string(129, 'a')));
        CPPUNIT_ASSERT(!pkce::valid_verifier(std::string(42, 'a') + "+"));
        CPPUNIT_ASSERT(!pkce::valid_verifier(std::string(42, 'a') + "="));
        CPPUNIT_ASSERT(pkce::valid_verifier(std::string(40, 'a') + "-._"));
    }

    void constant_time_compare() {
        CPPUNIT_ASSERT(pkce::equal_constant_time("", ""));
        CPPUNIT_ASSERT(pkce::equal_constant_time("abc", "abc"));
        CPPUNIT_ASSERT(!pkce::equal_constant_time("abc", "abd"));
        CPPUNIT_ASSERT(!pkce::equal_constant_time("abc", "ab"));
        CPPUNIT_ASSERT(!pkce::equal_constant_time("", "a"));
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(PkceTest);
