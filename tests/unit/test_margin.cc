// The refresh margin clamped to a third of a token's issued lifetime
// (common/margin.h).
#include <cppunit/extensions/HelperMacros.h>

#include <cstdint>
#include <string>

#include "common/margin.h"

using mailoauth::effective_refresh_margin;

// Usable in constant expressions (the plugin may compute it anywhere).
static_assert(effective_refresh_margin(600, 60) == 20, "clamped at compile time");

class MarginTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(MarginTest);
    CPPUNIT_TEST(margin_table);
    CPPUNIT_TEST(short_tokens_leave_two_thirds_of_their_life);
    CPPUNIT_TEST_SUITE_END();

public:
    void margin_table() {
        struct Case { long configured; std::int64_t lifetime; long want; const char* why; };
        const Case cases[] = {
            {600, 3600, 600, "an hour: the configured margin"},
            {600, 5400, 600, "90 minutes: the configured margin"},
            {600, 1800, 600, "a third is exactly the margin"},
            {600, 1799, 599, "just under: clamped"},
            {600, 600, 200, "10 minutes (shortest Entra lifetime)"},
            {600, 300, 100, "5 minutes (Keycloak's default)"},
            {600, 60, 20, "one minute"},
            {600, 2, 0, "two seconds: no margin at all"},
            {600, 1, 0, "one second"},
            {600, 0, 600, "unknown lifetime (older record): as before"},
            {600, -5, 600, "nonsense lifetime: as unknown"},
            {0, 60, 0, "margin 0 stays 0"},
            {0, 0, 0, "margin 0, unknown lifetime"},
            {30, 60, 20, "a small margin is clamped too"},
            {10, 60, 10, "a margin below a third is kept"},
            {86400, 1000000, 86400, "the largest configurable margin"},
            {600, INT64_MAX, 600, "huge lifetime does not overflow"},
            {-1, 60, 0, "negative margin (never configured) counts as 0"},
        };
        for (const auto& c : cases)
            CPPUNIT_ASSERT_EQUAL_MESSAGE(std::string(c.why), c.want, effective_refresh_margin(c.configured, c.lifetime));
    }

    void short_tokens_leave_two_thirds_of_their_life() {
        for (std::int64_t lifetime : {3, 59, 60, 61, 299, 300, 600, 1000, 1799}) {
            long m = effective_refresh_margin(600, lifetime);
            CPPUNIT_ASSERT_MESSAGE(std::to_string(lifetime), m * 3 <= lifetime);
            CPPUNIT_ASSERT_MESSAGE(std::to_string(lifetime), lifetime - m >= (2 * lifetime) / 3);
        }
    }
};
CPPUNIT_TEST_SUITE_REGISTRATION(MarginTest);
