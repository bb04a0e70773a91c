// Times as people read them (tokenhelper/timefmt.cc): the minutes:seconds
// of the sign-in countdowns and time limits (device and browser flow).
#include <cppunit/extensions/HelperMacros.h>

#include <climits>
#include <string>

#include "tokenhelper/timefmt.h"

using mailoauth::format_mmss;

class TimefmtTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(TimefmtTest);
    CPPUNIT_TEST(mmss_table);
    CPPUNIT_TEST_SUITE_END();

public:
    void mmss_table() {
        struct Case { long seconds; const char* want; };
        const Case cases[] = {
            {0, "0:00"},
            {5, "0:05"},
            {59, "0:59"},
            {60, "1:00"},
            {61, "1:01"},
            {899, "14:59"},     // a device code's usual 15 minutes, counting down
            {900, "15:00"},
            {3600, "60:00"},    // the longest --timeout: minutes do not wrap into hours
            {6000, "100:00"},
            {-1, "0:00"},       // past the deadline: never a negative countdown
            {LONG_MIN, "0:00"},
        };
        for (const Case& c : cases)
            CPPUNIT_ASSERT_EQUAL_MESSAGE(std::to_string(c.seconds), std::string(c.want), format_mmss(c.seconds));
        // The largest value fits (the buffer holds any long).
        static_assert(LONG_MAX == 9223372036854775807L, "a 64-bit long");
        CPPUNIT_ASSERT_EQUAL(std::string("153722867280912930:07"), format_mmss(LONG_MAX));
    }
};
CPPUNIT_TEST_SUITE_REGISTRATION(TimefmtTest);
