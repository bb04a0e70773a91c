// Exit codes and plain-words explanations of identity-provider errors.
#include <cppunit/extensions/HelperMacros.h>

#include <string>
#include <vector>

#include "tokenhelper/errors.h"

using mailoauth::ErrorContext;
using mailoauth::Explanation;
using mailoauth::OAuthError;

namespace {

OAuthError make(const std::string& error, std::vector<long> codes, int status = 400) {
    OAuthError e;
    e.http_status = status;
    e.error = error;
    e.error_codes = std::move(codes);
    e.trace_id = "0000aaaa-11bb-cccc-dd22-eeeeee333333";
    e.correlation_id = "aaaa0000-bb11-2222-33cc-444444dddddd";
    e.timestamp = "2024-01-09 02:02:12Z";
    return e;
}

bool contains(const std::string& hay, const std::string& needle) {
    return hay.find(needle) != std::string::npos;
}

}  // namespace

class ErrorsTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(ErrorsTest);
    CPPUNIT_TEST(exit_codes_table);
    CPPUNIT_TEST(messages_carry_codes_ids_and_next_step);
    CPPUNIT_TEST(code_wins_over_error_word);
    CPPUNIT_TEST(admin_consent_url);
    CPPUNIT_TEST(http_status_without_oauth_error);
    CPPUNIT_TEST(description_only_for_unknown_codes);
    CPPUNIT_TEST(explain_aadsts_known_and_unknown);
    CPPUNIT_TEST_SUITE_END();

public:
    void exit_codes_table() {
        struct Case {
            std::string error;
            std::vector<long> codes;
            int status;
            int exit_code;
            std::string mentions;  // a word of the next step
        } cases[] = {
            {"invalid_grant", {}, 400, 77, "mailoauth login work"},
            {"invalid_grant", {700082}, 400, 77, "90 days"},
            {"invalid_grant", {70000}, 400, 77, "mailoauth login work"},
            {"invalid_grant", {50173}, 400, 77, "password"},
            {"invalid_grant", {70043}, 400, 77, "sign-in frequency"},
            {"invalid_grant", {50076}, 400, 77, "multi-factor"},
            {"interaction_required", {50079}, 400, 77, "register"},
            {"interaction_required", {}, 400, 77, "mailoauth login work"},
            {"invalid_grant", {53003}, 400, 78, "Conditional Access"},
            {"expired_token", {70020}, 400, 77, "mailoauth login work"},
            {"expired_token", {}, 400, 77, "again"},
            {"authorization_declined", {}, 400, 77, "declined"},
            {"access_denied", {}, 400, 77, "mailoauth login work"},
            {"bad_verification_code", {}, 400, 77, "mailoauth login work"},
            {"invalid_client", {}, 401, 78, "--client-id"},
            {"unauthorized_client", {700016}, 400, 78, "--client-id"},
            {"invalid_client", {7000218}, 401, 78, "Allow public client flows"},
            {"invalid_client", {700025}, 401, 78, "client secret"},
            {"invalid_grant", {65001}, 400, 78, "adminconsent"},
            {"invalid_request", {90130}, 400, 78, "--tenant"},
            {"unauthorized_client", {7000112}, 400, 78, "disabled"},
            {"invalid_request", {90002}, 400, 78, "--tenant"},
            {"invalid_scope", {70011}, 400, 78, "--scope"},
            {"invalid_scope", {}, 400, 78, "--scope"},
            {"unsupported_grant_type", {}, 400, 78, "--authority"},
            {"authorization_pending", {70016}, 400, 75, "not been completed"},
            {"authorization_pending", {}, 400, 75, "not been completed"},
            {"temporarily_unavailable", {}, 503, 75, "Try again"},
            {"server_error", {}, 500, 75, "Try again"},
            {"something_new", {}, 500, 75, "Try again"},
            {"something_new", {}, 429, 75, "Try again"},
            {"something_new", {}, 400, 78, "something_new"},
            {"invalid_grant", {99999999}, 400, 77, "mailoauth login work"},  // unknown code: word decides
        };
        for (const Case& c : cases) {
            const Explanation x = mailoauth::explain_oauth_error(make(c.error, c.codes, c.status), "work");
            const std::string label = c.error + (c.codes.empty() ? "" : "/" + std::to_string(c.codes[0]));
            CPPUNIT_ASSERT_EQUAL_MESSAGE(label, c.exit_code, x.exit_code);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(label, c.error, x.error);
            CPPUNIT_ASSERT_MESSAGE(label + ": " + x.message, contains(x.message, c.mentions));
        }
    }

    void messages_carry_codes_ids_and_next_step() {
        const long codes[] = {700082, 50173, 70043, 50076, 50079, 70000, 65001, 7000218,
                              700025, 700016, 90130, 7000112, 53003, 70016, 70020, 90002};
        for (long code : codes) {
            const Explanation x = mailoauth::explain_oauth_error(make("invalid_grant", {code}), "acct");
            const std::string label = std::to_string(code);
            CPPUNIT_ASSERT_MESSAGE(label + ": " + x.message, contains(x.message, "AADSTS" + label));
            CPPUNIT_ASSERT_MESSAGE(label, contains(x.message, "trace_id: 0000aaaa-11bb-cccc-dd22-eeeeee333333"));
            CPPUNIT_ASSERT_MESSAGE(label, contains(x.message, "correlation_id: aaaa0000-bb11-2222-33cc-444444dddddd"));
            CPPUNIT_ASSERT_MESSAGE(label, x.message.find('\n') == std::string::npos);
            CPPUNIT_ASSERT_MESSAGE(label, !mailoauth::explain_aadsts(code).empty());
            if (x.exit_code == mailoauth::kExitNoPerm) {
                CPPUNIT_ASSERT_MESSAGE(label + ": " + x.message, contains(x.message, "`mailoauth login acct`"));
            }
        }
        // Several codes are all listed; no ids, no "trace_id:".
        OAuthError e;
        e.error = "invalid_grant";
        e.error_codes = {50076, 50079};
        const Explanation x = mailoauth::explain_oauth_error(e, "a");
        CPPUNIT_ASSERT_MESSAGE(x.message, contains(x.message, "(AADSTS50076, AADSTS50079)"));
        CPPUNIT_ASSERT(!contains(x.message, "trace_id"));
    }

    void code_wins_over_error_word() {
        // Conditional Access arrives as invalid_grant but signing in again will not help.
        const Explanation ca = mailoauth::explain_oauth_error(make("invalid_grant", {53003}), "a");
        CPPUNIT_ASSERT_EQUAL(78, ca.exit_code);
        CPPUNIT_ASSERT(contains(ca.message, "administrator"));
        // An unknown code first, a known one second: the known one decides.
        const Explanation two = mailoauth::explain_oauth_error(make("invalid_client", {12345, 700082}), "a");
        CPPUNIT_ASSERT_EQUAL(77, two.exit_code);
    }

    void admin_consent_url() {
        const Explanation generic = mailoauth::explain_oauth_error(make("invalid_grant", {65001}), "a");
        CPPUNIT_ASSERT_MESSAGE(generic.message,
                               contains(generic.message,
                                        "https://login.microsoftonline.com/TENANT/adminconsent?client_id=CLIENT_ID"));
        ErrorContext ctx;
        ctx.account = "a";
        ctx.authority = "https://login.microsoftonline.com/contoso.onmicrosoft.com/";
        ctx.client_id = "11111111-2222-3333-4444-555555555555";
        const Explanation x = mailoauth::explain_oauth_error(make("invalid_grant", {65001}), ctx);
        CPPUNIT_ASSERT_MESSAGE(x.message,
                               contains(x.message, "https://login.microsoftonline.com/contoso.onmicrosoft.com/"
                                                   "adminconsent?client_id=11111111-2222-3333-4444-555555555555"));
        const Explanation notfound = mailoauth::explain_oauth_error(make("unauthorized_client", {700016}), ctx);
        CPPUNIT_ASSERT(contains(notfound.message, ctx.client_id));
    }

    void http_status_without_oauth_error() {
        struct Case {
            int status;
            int exit_code;
            std::string error;
        } cases[] = {
            {500, 75, "server_error"}, {502, 75, "server_error"}, {503, 75, "temporarily_unavailable"},
            {429, 75, "temporarily_unavailable"}, {408, 75, "temporarily_unavailable"},
            {404, 78, "http_error"}, {400, 78, "http_error"},
        };
        for (const Case& c : cases) {
            OAuthError e;
            e.http_status = c.status;
            const Explanation x = mailoauth::explain_oauth_error(e, "a");
            CPPUNIT_ASSERT_EQUAL_MESSAGE(std::to_string(c.status), c.exit_code, x.exit_code);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(std::to_string(c.status), c.error, x.error);
            CPPUNIT_ASSERT_MESSAGE(x.message, contains(x.message, std::to_string(c.status)));
        }
    }

    void description_only_for_unknown_codes() {
        OAuthError known = make("invalid_grant", {700082});
        known.error_description = "AADSTS700082: The refresh token has expired due to inactivity.";
        CPPUNIT_ASSERT(!contains(mailoauth::explain_oauth_error(known, "a").message, "says"));

        OAuthError unknown = make("invalid_request", {9999999});
        unknown.error_description = "AADSTS9999999: Something new happened.";
        const Explanation x = mailoauth::explain_oauth_error(unknown, "a");
        CPPUNIT_ASSERT_MESSAGE(x.message, contains(x.message, "\"AADSTS9999999: Something new happened.\""));
        CPPUNIT_ASSERT(contains(x.message, "AADSTS9999999)"));

        unknown.error_description = std::string(299, 'd') + "\xc3\xa9" + std::string(100, 'e');
        const Explanation cut = mailoauth::explain_oauth_error(unknown, "a");
        // At most 300 bytes, "..." included, never half of the "é".
        CPPUNIT_ASSERT_MESSAGE(cut.message, contains(cut.message, "\"" + std::string(297, 'd') + "...\""));

        // C1 CSI raw and as UTF-8 (common/sanitize.h), whoever built the
        // OAuthError.
        unknown.error_description = "bad\x9b" "2J and\xc2\x9b" "2J";
        const Explanation c1 = mailoauth::explain_oauth_error(unknown, "a");
        CPPUNIT_ASSERT_MESSAGE(c1.message, contains(c1.message, "\"bad?2J and?2J\""));
    }

    void explain_aadsts_known_and_unknown() {
        CPPUNIT_ASSERT(contains(mailoauth::explain_aadsts(700082), "`mailoauth login ACCOUNT`"));
        CPPUNIT_ASSERT(contains(mailoauth::explain_aadsts(7000218), "Allow public client flows"));
        CPPUNIT_ASSERT(contains(mailoauth::explain_aadsts(65001), "adminconsent?client_id="));
        CPPUNIT_ASSERT(mailoauth::explain_aadsts(1).empty());
        CPPUNIT_ASSERT(mailoauth::explain_aadsts(0).empty());
    }
};
CPPUNIT_TEST_SUITE_REGISTRATION(ErrorsTest);
