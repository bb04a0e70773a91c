// Table-driven tests of common/sanitize.cc: what a peer's text becomes
// before it reaches a terminal, the store or a log.
#include <cppunit/extensions/HelperMacros.h>

#include <string>

#include "common/sanitize.h"

namespace sanitize = mailoauth::sanitize;

namespace {

struct Case {
    const char* name;
    std::string in;
    std::string out;
};

std::string hex(const std::string& s) {
    static const char digits[] = "0123456789abcdef";
    std::string o;
    for (unsigned char c : s) {
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            o += static_cast<char>(c);
        } else {
            o += "\\x";
            o += digits[c >> 4];
            o += digits[c & 15];
        }
    }
    return o;
}

}  // namespace

class SanitizeTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(SanitizeTest);
    CPPUNIT_TEST(replaces_what_a_terminal_acts_on);
    CPPUNIT_TEST(replaces_ill_formed_utf8);
    CPPUNIT_TEST(keeps_valid_text);
    CPPUNIT_TEST(cuts_at_a_character_boundary_marker_included);
    CPPUNIT_TEST(clean_agrees_with_text);
    CPPUNIT_TEST(sanitizing_twice_changes_nothing);
    CPPUNIT_TEST(writes_in_place);
    CPPUNIT_TEST_SUITE_END();

    void check(const Case* cases, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) {
            const Case& c = cases[i];
            CPPUNIT_ASSERT_EQUAL_MESSAGE(std::string(c.name) + ": " + hex(c.in), hex(c.out),
                                         hex(sanitize::text(c.in, 1000)));
        }
    }

public:
    void replaces_what_a_terminal_acts_on() {
        const Case cases[] = {
            {"ESC CSI", "a\x1b[2Jb", "a?[2Jb"},
            {"NUL", std::string("a\0b", 3), "a?b"},
            {"BEL BS", "a\x07\x08z", "a??z"},
            {"DEL", "a\x7f" "b", "a?b"},
            {"whitespace becomes a space", "a\tb\nc\rd\ve\ff", "a b c d e f"},
            {"CRLF", "line one\r\nline two", "line one  line two"},
            {"C1 CSI as UTF-8", "a\xc2\x9b" "31mb", "a?31mb"},
            {"C1 CSI raw", "a\x9b" "31mb", "a?31mb"},
            {"first and last C1 as UTF-8", "\xc2\x80\xc2\x9f", "??"},
            {"NEL as UTF-8", "a\xc2\x85" "b", "a?b"},
            {"every raw C1 byte", "\x80\x85\x8f\x90\x9b\x9f", "??????"},
            {"line separator", "a\xe2\x80\xa8" "b\xe2\x80\xa9" "c", "a b c"},
            {"LRE PDF", "\xe2\x80\xaa" "x\xe2\x80\xac", "?x?"},
            {"RLO", "evil\xe2\x80\xae" "gpj.exe", "evil?gpj.exe"},
            {"LRI FSI PDI", "\xe2\x81\xa6\xe2\x81\xa8\xe2\x81\xa9", "???"},
        };
        check(cases, sizeof cases / sizeof cases[0]);
    }

    void replaces_ill_formed_utf8() {
        const Case cases[] = {
            {"stray continuation", "a\x80" "b", "a?b"},
            {"lone lead at end", "ab\xc3", "ab?"},
            {"truncated three-byte at end", "ab\xe2\x82", "ab?"},
            {"truncated four-byte at end", "ab\xf0\x9f\x98", "ab?"},
            {"truncated then ASCII", "\xe2\x82" "A", "?A"},
            {"overlong two-byte NUL", "\xc0\x80", "??"},
            {"overlong two-byte ESC", "\xc1\x9b", "??"},
            {"overlong three-byte", "\xe0\x80\xaf", "???"},
            {"overlong four-byte", "\xf0\x8f\xbf\xbf", "????"},
            {"surrogate", "\xed\xa0\x80", "???"},
            {"beyond U+10FFFF", "\xf4\x90\x80\x80", "????"},
            {"F5 lead", "\xf5\x80\x80\x80", "????"},
            {"FF", "\xff" "x", "?x"},
            {"lead then lead", "\xc3\xc3\xa9", "?\xc3\xa9"},
            {"Latin-1 text", "caf\xe9 ok", "caf? ok"},
        };
        check(cases, sizeof cases / sizeof cases[0]);
    }

    void keeps_valid_text() {
        const Case cases[] = {
            {"ASCII", "AADSTS70000: The provided grant is invalid.", "AADSTS70000: The provided grant is invalid."},
            {"two-byte", "caf\xc3\xa9 \xc2\xa0nbsp \xc2\xa9", "caf\xc3\xa9 \xc2\xa0nbsp \xc2\xa9"},
            {"three-byte", "\xe2\x80\x94 \xe6\x97\xa5\xe6\x9c\xac \xef\xbb\xbf", "\xe2\x80\x94 \xe6\x97\xa5\xe6\x9c\xac \xef\xbb\xbf"},
            {"LRM stays", "a\xe2\x80\x8e" "b", "a\xe2\x80\x8e" "b"},
            {"four-byte", "\xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf", "\xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf"},
            {"last before surrogates", "\xed\x9f\xbf", "\xed\x9f\xbf"},
            {"replacement char", "\xef\xbf\xbd", "\xef\xbf\xbd"},
            {"empty", "", ""},
        };
        check(cases, sizeof cases / sizeof cases[0]);
    }

    void cuts_at_a_character_boundary_marker_included() {
        struct Cut {
            std::string in;
            std::size_t max;
            std::string out;
        };
        const Cut cases[] = {
            {"abcdef", 6, "abcdef"},
            {"abcdefg", 6, "abc..."},
            {"abcdefg", 3, "..."},
            {"abcdefg", 2, "ab"},
            {"abcdefg", 0, ""},
            {"", 0, ""},
            // "é" is two bytes: never half of it.
            {"ab\xc3\xa9\xc3\xa9xyz", 7, "ab\xc3\xa9..."},
            {"ab\xc3\xa9\xc3\xa9xyz", 6, "ab..."},
            {"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", 8, "\xe6\x97\xa5..."},
            {"\xf0\x9f\x98\x80\xf0\x9f\x98\x80", 7, "\xf0\x9f\x98\x80..."},
            {"\xf0\x9f\x98\x80\xf0\x9f\x98\x80", 6, "..."},
            // The length that counts is the sanitized one: two-byte C1s
            // shrink to one '?' each, so this fits.
            {"\xc2\x9b\xc2\x9b\xc2\x9b\xc2\x9b", 5, "????"},
            {"a\x9b" "bcdefgh", 6, "a?b..."},
        };
        for (const Cut& c : cases) {
            const std::string got = sanitize::text(c.in, c.max);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(hex(c.in) + " max " + std::to_string(c.max), hex(c.out), hex(got));
            CPPUNIT_ASSERT(got.size() <= c.max);
        }
        // The default cap is 300 bytes.
        CPPUNIT_ASSERT_EQUAL(std::size_t{300}, sanitize::text(std::string(5000, 'x')).size());
        CPPUNIT_ASSERT_EQUAL(std::string("..."), sanitize::text(std::string(5000, 'x')).substr(297));
    }

    void clean_agrees_with_text() {
        const char* ins[] = {"https://microsoft.com/devicelogin", "ABCD-EFGH", "caf\xc3\xa9",
                             "a b", "a\tb", "a\x9b", "a\xc2\x9b", "\xe2\x80\xae", "\xc0\x80",
                             "a\x7f", "", "\xe2\x80\xa8"};
        for (const char* s : ins) {
            CPPUNIT_ASSERT_EQUAL_MESSAGE(hex(s), sanitize::text(s, 1000) == s, sanitize::clean(s));
        }
        CPPUNIT_ASSERT(sanitize::clean("https://microsoft.com/devicelogin"));
        CPPUNIT_ASSERT(!sanitize::clean("https://microsoft.com/device\x9blogin"));
        CPPUNIT_ASSERT(!sanitize::clean("https://microsoft.com/device\xc2\x9blogin"));
        CPPUNIT_ASSERT(!sanitize::clean(std::string("a\0b", 3)));
    }

    void sanitizing_twice_changes_nothing() {
        const std::string ins[] = {
            "a\x1b[2J\xc2\x9b\x9b\xe2\x80\xae\xf0\x9f\x98\x80\xc3",
            std::string(400, '\x9b'),
            "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
            "abcdefghij\xc2\x9b" "klmnop",
        };
        for (const std::string& in : ins) {
            for (std::size_t max : {0, 1, 2, 3, 4, 5, 7, 10, 13, 300}) {
                const std::string once = sanitize::text(in, max);
                CPPUNIT_ASSERT_EQUAL_MESSAGE(hex(in), hex(once), hex(sanitize::text(once, max)));
                CPPUNIT_ASSERT(sanitize::clean(once));
            }
        }
    }

    void writes_in_place() {
        // The plugin sanitizes its log buffer where it lies.
        char buf[] = "x\xc2\x9b\x1b[1mbold\xe2\x80\xae" "end\xe2\x82";
        const std::size_t n = sanitize::write(std::string_view(buf, sizeof buf - 1), buf, sizeof buf - 1);
        CPPUNIT_ASSERT_EQUAL(std::string("x??[1mbold?end?"), std::string(buf, n));
        char small[] = "abcdefghij";
        const std::size_t m = sanitize::write(std::string_view(small, 10), small, 8);
        CPPUNIT_ASSERT_EQUAL(std::string("abcde..."), std::string(small, m));
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(SanitizeTest);
