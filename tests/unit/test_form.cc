// percent_encode and form_encode: every byte outside RFC 3986's unreserved
// set is escaped, so no value can add a field or end the body.
#include <cppunit/extensions/HelperMacros.h>

#include <string>

#include "tokenhelper/form.h"

using mailoauth::FormFields;
using mailoauth::form_encode;
using mailoauth::percent_encode;

class FormTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(FormTest);
    CPPUNIT_TEST(percent_encode_table);
    CPPUNIT_TEST(every_byte_round_trips);
    CPPUNIT_TEST(form_encode_table);
    CPPUNIT_TEST_SUITE_END();

public:
    void percent_encode_table() {
        struct Case {
            std::string in;
            std::string out;
        } cases[] = {
            {"", ""},
            {"abcXYZ019", "abcXYZ019"},
            {"-._~", "-._~"},
            {" ", "%20"},
            {"+", "%2B"},
            {"a b+c", "a%20b%2Bc"},
            {"&=?#%/", "%26%3D%3F%23%25%2F"},
            {"https://outlook.office.com/IMAP.AccessAsUser.All offline_access",
             "https%3A%2F%2Foutlook.office.com%2FIMAP.AccessAsUser.All%20offline_access"},
            {"urn:ietf:params:oauth:grant-type:device_code",
             "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code"},
            {std::string("\0\x01\n\r\x7f", 5), "%00%01%0A%0D%7F"},
            {"\xc3\xa9\xff", "%C3%A9%FF"},
            {"M.C5_BAY.0.U.-Cr!*$", "M.C5_BAY.0.U.-Cr%21%2A%24"},
        };
        for (const Case& c : cases) {
            CPPUNIT_ASSERT_EQUAL_MESSAGE(c.in, c.out, percent_encode(c.in));
        }
    }

    void every_byte_round_trips() {
        for (int b = 0; b < 256; ++b) {
            const std::string in(1, static_cast<char>(b));
            const std::string out = percent_encode(in);
            const bool unreserved = (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') ||
                                    (b >= '0' && b <= '9') || b == '-' || b == '.' || b == '_' ||
                                    b == '~';
            if (unreserved) {
                CPPUNIT_ASSERT_EQUAL(in, out);
            } else {
                CPPUNIT_ASSERT_EQUAL(std::size_t(3), out.size());
                CPPUNIT_ASSERT_EQUAL('%', out[0]);
                CPPUNIT_ASSERT_EQUAL(b, std::stoi(out.substr(1), nullptr, 16));
                // Upper-case hex digits only.
                CPPUNIT_ASSERT(out.find_first_of("abcdef") == std::string::npos);
            }
        }
    }

    void form_encode_table() {
        struct Case {
            FormFields in;
            std::string out;
        } cases[] = {
            {{}, ""},
            {{{"a", "1"}}, "a=1"},
            {{{"a", ""}}, "a="},
            {{{"client_id", "00000000-0000-0000-0000-000000000000"},
              {"scope", "offline_access openid"}},
             "client_id=00000000-0000-0000-0000-000000000000&scope=offline_access%20openid"},
            // A value can never smuggle in another field.
            {{{"refresh_token", "x&grant_type=password"}},
             "refresh_token=x%26grant_type%3Dpassword"},
            {{{"k y", "v=w"}, {"n", "\r\n"}}, "k%20y=v%3Dw&n=%0D%0A"},
        };
        for (const Case& c : cases) {
            CPPUNIT_ASSERT_EQUAL(c.out, form_encode(c.in));
        }
    }
};
CPPUNIT_TEST_SUITE_REGISTRATION(FormTest);
