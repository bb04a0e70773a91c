// common/sha256: the FIPS 180-2 examples (appendix B: one block, two
// blocks, a million 'a'), the 896-bit example of FIPS 180-4's companion
// test vectors, and messages at the padding boundaries (55, 56, 64 bytes),
// fed whole and a byte at a time.
#include <cppunit/extensions/HelperMacros.h>

#include "common/sha256.h"

#include <string>

using namespace mailoauth;

class Sha256Test : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(Sha256Test);
    CPPUNIT_TEST(fips_vectors);
    CPPUNIT_TEST(million_a);
    CPPUNIT_TEST(byte_at_a_time_matches_whole);
    CPPUNIT_TEST(hex_prefix);
    CPPUNIT_TEST_SUITE_END();

public:
    void fips_vectors() {
        struct { std::string in; const char* want; } cases[] = {
            {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
            {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
            {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
             "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
            {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrs"
             "mnopqrstnopqrstu",
             "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
            {std::string(55, 'a'), "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
            {std::string(56, 'a'), "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
            {std::string(64, 'a'), "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
        };
        for (const auto& c : cases)
            CPPUNIT_ASSERT_EQUAL_MESSAGE(std::to_string(c.in.size()) + " bytes", std::string(c.want),
                                         sha256::hex(sha256::digest(c.in)));
    }

    void million_a() {
        sha256::Hasher h;
        const std::string chunk(1000, 'a');
        for (int i = 0; i < 1000; ++i) h.update(chunk);
        CPPUNIT_ASSERT_EQUAL(std::string("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
                             sha256::hex(h.finish()));
    }

    void byte_at_a_time_matches_whole() {
        std::string msg;
        for (int n = 0; n < 200; ++n) {
            sha256::Hasher h;
            for (char c : msg) h.update(&c, 1);
            CPPUNIT_ASSERT(h.finish() == sha256::digest(msg));
            msg += static_cast<char>('A' + n % 26);
        }
    }

    void hex_prefix() {
        CPPUNIT_ASSERT_EQUAL(std::string("ba7816bf8f01cfea"), sha256::hex(sha256::digest("abc"), 8));
        CPPUNIT_ASSERT_EQUAL(std::string(), sha256::hex(sha256::digest("abc"), 0));
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(Sha256Test);
