// The redirect's query and the pasted address (tokenhelper/redirect.cc):
// what is taken, what is refused, and the judgement of state, code and
// error.
#include <cppunit/extensions/HelperMacros.h>

#include <string>

#include "tests/unit/browser_test_util.h"
#include "tokenhelper/redirect.h"

using mailoauth::AuthorizationReply;
using mailoauth::judge_reply;
using mailoauth::parse_pasted_redirect;
using mailoauth::parse_redirect_query;
using mailoauth::ReplyKind;

namespace {
const std::string kState = "Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4";
}

class RedirectTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(RedirectTest);
    CPPUNIT_TEST(query_fields);
    CPPUNIT_TEST(query_refusals);
    CPPUNIT_TEST(error_fields_are_sanitized);
    CPPUNIT_TEST(paste_forms);
    CPPUNIT_TEST(paste_garbage);
    CPPUNIT_TEST(paste_oversized);
    CPPUNIT_TEST(judgement);
    CPPUNIT_TEST(description_never_has_the_code);
    CPPUNIT_TEST_SUITE_END();

public:
    void query_fields() {
        AuthorizationReply r;
        std::string why;
        // Microsoft's shape: code first, then state and session_state.
        CPPUNIT_ASSERT(parse_redirect_query("code=M.C5_a%2Fb-c.d&state=" + kState + "&session_state=x-y", r, why));
        CPPUNIT_ASSERT_EQUAL(std::string("M.C5_a/b-c.d"), r.code.reveal());
        CPPUNIT_ASSERT(r.has_state);
        CPPUNIT_ASSERT_EQUAL(kState, r.state);
        CPPUNIT_ASSERT(r.error.empty());
        // Google's: state first, the code with an escaped '/', then scope.
        CPPUNIT_ASSERT(parse_redirect_query("state=" + kState + "&code=4%2F0AQSTg&scope=https%3A%2F%2Fmail.google.com%2F",
                                            r, why));
        CPPUNIT_ASSERT_EQUAL(std::string("4/0AQSTg"), r.code.reveal());
        // '+' is a space in a query; empty fields and fields without '=' pass.
        CPPUNIT_ASSERT(parse_redirect_query("&&state=a+b&flag&code=c&", r, why));
        CPPUNIT_ASSERT_EQUAL(std::string("a b"), r.state);
        CPPUNIT_ASSERT_EQUAL(std::string("c"), r.code.reveal());
        // Nothing at all is a valid (empty) query.
        CPPUNIT_ASSERT(parse_redirect_query("", r, why));
        CPPUNIT_ASSERT(!r.has_state);
        CPPUNIT_ASSERT(r.code.empty());
        // An empty state is still a state (and will not match).
        CPPUNIT_ASSERT(parse_redirect_query("state=&code=x", r, why));
        CPPUNIT_ASSERT(r.has_state);
    }

    void query_refusals() {
        struct Case {
            std::string query;
            std::string why_part;
        } cases[] = {
            {"code=a&code=b&state=s", "more than one code"},
            {"code=a&state=s&state=t", "more than one state"},
            {"error=a&error=b&state=s", "more than one error"},
            {"code=%zz&state=s", "%-escape"},
            {"code=abc%2&state=s", "%-escape"},
            {"code=abc%&state=s", "%-escape"},
            {"st%ate=s", "%-escape"},
            {"code=a%20b&state=s", "characters no authorization code"},
            {"code=a%0Ab&state=s", "characters no authorization code"},
            {"code=%C3%A9&state=s", "characters no authorization code"},
            {std::string("code=") + std::string(mailoauth::kMaxRedirectQuery, 'a'), "longer than"},
        };
        for (const Case& c : cases) {
            AuthorizationReply r;
            std::string why;
            CPPUNIT_ASSERT_MESSAGE(c.query.substr(0, 60), !parse_redirect_query(c.query, r, why));
            CPPUNIT_ASSERT_MESSAGE(why, why.find(c.why_part) != std::string::npos);
            // Nothing half-parsed is left behind, and why never quotes the input.
            CPPUNIT_ASSERT(r.code.empty());
            CPPUNIT_ASSERT(!r.has_state);
            CPPUNIT_ASSERT(why.find("abc") == std::string::npos);
        }
        std::string many;
        for (int i = 0; i < 65; ++i) many += "f" + std::to_string(i) + "=1&";
        AuthorizationReply r;
        std::string why;
        CPPUNIT_ASSERT(!parse_redirect_query(many, r, why));
        CPPUNIT_ASSERT(why.find("more than 64 fields") != std::string::npos);
    }

    void error_fields_are_sanitized() {
        AuthorizationReply r;
        std::string why;
        CPPUNIT_ASSERT(parse_redirect_query(
            "error=access_denied&error_description=AADSTS65004%3A+User+declined+to+consent.%0D%0ATrace+ID%3A+1"
            "&error_uri=https%3A%2F%2Fx%1B%5B2J&state=" + kState,
            r, why));
        CPPUNIT_ASSERT_EQUAL(std::string("access_denied"), r.error);
        // The first line only.
        CPPUNIT_ASSERT_EQUAL(std::string("AADSTS65004: User declined to consent."), r.error_description);
        // ESC is replaced, so a terminal will not act on it.
        CPPUNIT_ASSERT(r.error_uri.find('\x1b') == std::string::npos);
        CPPUNIT_ASSERT(parse_redirect_query("error=%9B31m&state=s", r, why));
        CPPUNIT_ASSERT(r.error.find('\x9b') == std::string::npos);
        // An empty error still makes an error answer.
        CPPUNIT_ASSERT(parse_redirect_query("error=&state=s", r, why));
        CPPUNIT_ASSERT(!r.error.empty());
    }

    void paste_forms() {
        const std::string q = "code=abc&state=" + kState;
        const std::string forms[] = {
            "http://127.0.0.1:8400/?" + q,
            "  http://127.0.0.1:8400/?" + q + "\r\n",
            "127.0.0.1:8400/?" + q,  // the browser hid "http://"
            "http://localhost:8400/?" + q + "#",
            "http://127.0.0.1:8400/?" + q + "#fragment=1",
            "?" + q,
            q,
            "\t" + q + " ",
        };
        for (const std::string& f : forms) {
            AuthorizationReply r;
            std::string why;
            CPPUNIT_ASSERT_MESSAGE(f + ": " + why, parse_pasted_redirect(f, r, why));
            CPPUNIT_ASSERT_EQUAL(std::string("abc"), r.code.reveal());
            CPPUNIT_ASSERT_EQUAL(ReplyKind::Code, judge_reply(r, kState));
        }
        // The pasted address of an error redirect.
        AuthorizationReply r;
        std::string why;
        CPPUNIT_ASSERT(parse_pasted_redirect(
            "http://127.0.0.1:8400/?error=access_denied&error_description=the+user+said+no&state=" + kState, r, why));
        CPPUNIT_ASSERT_EQUAL(ReplyKind::ProviderError, judge_reply(r, kState));
        CPPUNIT_ASSERT_EQUAL(std::string("the user said no"), r.error_description);
        // Wrong state, missing code.
        CPPUNIT_ASSERT(parse_pasted_redirect("http://127.0.0.1:8400/?code=abc&state=other", r, why));
        CPPUNIT_ASSERT_EQUAL(ReplyKind::StateMismatch, judge_reply(r, kState));
        CPPUNIT_ASSERT(parse_pasted_redirect("http://127.0.0.1:8400/?state=" + kState, r, why));
        CPPUNIT_ASSERT_EQUAL(ReplyKind::MissingCode, judge_reply(r, kState));
        CPPUNIT_ASSERT(parse_pasted_redirect("http://127.0.0.1:8400/?code=abc", r, why));
        CPPUNIT_ASSERT_EQUAL(ReplyKind::MissingState, judge_reply(r, kState));
    }

    void paste_garbage() {
        const std::string garbage[] = {
            "",
            "   \n",
            "hello",
            "https://login.microsoftonline.com/common/oauth2/nativeclient",
            "http://127.0.0.1:8400/",
            "http://127.0.0.1:8400/?",
            "http://127.0.0.1:8400/?foo=bar",
            "http://127.0.0.1:8400/?code=a b&state=" + kState,
            "http://127.0.0.1:8400/?code=a\x1b[2J&state=" + kState,
            "code=abc&state=s\ncode=def",
            "http://127.0.0.1:8400/?code=%G1&state=s",
        };
        for (const std::string& g : garbage) {
            AuthorizationReply r;
            std::string why;
            CPPUNIT_ASSERT_MESSAGE(g, !parse_pasted_redirect(g, r, why));
            CPPUNIT_ASSERT(!why.empty());
            CPPUNIT_ASSERT(r.code.empty());
        }
    }

    void paste_oversized() {
        AuthorizationReply r;
        std::string why;
        std::string big = "http://127.0.0.1:8400/?state=" + kState + "&code=" + std::string(20000, 'a');
        CPPUNIT_ASSERT(!parse_pasted_redirect(big, r, why));
        CPPUNIT_ASSERT(why.find("longer") != std::string::npos);
        CPPUNIT_ASSERT(r.code.empty());
        // Just under the query cap passes.
        std::string fits = "state=" + kState + "&code=" +
                           std::string(mailoauth::kMaxRedirectQuery - 12 - kState.size(), 'a');
        CPPUNIT_ASSERT_MESSAGE(why, parse_pasted_redirect("http://127.0.0.1:8400/?" + fits, r, why));
    }

    void judgement() {
        AuthorizationReply r;
        std::string why;
        CPPUNIT_ASSERT(parse_redirect_query("code=abc&state=" + kState, r, why));
        CPPUNIT_ASSERT_EQUAL(ReplyKind::Code, judge_reply(r, kState));
        CPPUNIT_ASSERT_EQUAL(ReplyKind::StateMismatch, judge_reply(r, kState + "x"));
        CPPUNIT_ASSERT_EQUAL(ReplyKind::StateMismatch, judge_reply(r, kState.substr(1)));
        CPPUNIT_ASSERT_EQUAL(ReplyKind::StateMismatch, judge_reply(r, ""));
        // An error with a wrong state is not believed either.
        CPPUNIT_ASSERT(parse_redirect_query("error=access_denied&state=nope", r, why));
        CPPUNIT_ASSERT_EQUAL(ReplyKind::StateMismatch, judge_reply(r, kState));
        // Error and code together: the error wins.
        CPPUNIT_ASSERT(parse_redirect_query("code=abc&error=server_error&state=" + kState, r, why));
        CPPUNIT_ASSERT_EQUAL(ReplyKind::ProviderError, judge_reply(r, kState));
    }

    void description_never_has_the_code() {
        AuthorizationReply r;
        std::string why;
        CPPUNIT_ASSERT(parse_redirect_query("code=SECRETCODE123&state=bad", r, why));
        for (ReplyKind k : {ReplyKind::Code, ReplyKind::ProviderError, ReplyKind::StateMismatch,
                            ReplyKind::MissingState, ReplyKind::MissingCode}) {
            const std::string d = mailoauth::describe_reply(k, r);
            CPPUNIT_ASSERT(!d.empty());
            CPPUNIT_ASSERT(d.find("SECRETCODE123") == std::string::npos);
        }
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(RedirectTest);
