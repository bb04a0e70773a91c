// When and how a token is refreshed (tokenhelper/tokens.cc), against a real
// store in a temporary directory and a scripted HTTP client: the refresh
// margin (clamped to a third of the token's lifetime), a rotated refresh
// token saved before the new access token is handed out (and nothing handed
// out when the save fails), a reply without a refresh token keeping the old
// one, forced refreshes named by the refused token's id so that many
// callers cause one refresh, and failed refreshes.
#include <cppunit/extensions/HelperMacros.h>

#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "common/protocol.h"
#include "tests/unit/fake_http.h"
#include "tokenhelper/errors.h"
#include "tokenhelper/store.h"
#include "tokenhelper/tokens.h"

using namespace mailoauth;

namespace {

const char kAccount[] = "alice@example.com";
const char kAuthority[] = "https://login.example.test/organizations";
const char kRefresh0[] = "M.C5-refresh-SECRET-0";
const char kAccess0[] = "EwA-access-SECRET-0";

std::int64_t now() { return static_cast<std::int64_t>(std::time(nullptr)); }

// The one place that builds an AccountRecord (the struct may grow fields):
// signed in, with an access token of `lifetime` seconds that expires
// `expires_in` seconds from now.
AccountRecord signed_in(std::int64_t expires_in, std::int64_t lifetime = 3600) {
    AccountRecord r;
    r.account = kAccount;
    r.authority = kAuthority;
    r.client_id = "11111111-2222-3333-4444-555555555555";
    r.scope = "https://outlook.office.com/IMAP.AccessAsUser.All offline_access";
    r.refresh_token = Secret(kRefresh0);
    r.access_token = Secret(kAccess0);
    r.access_expires_at = now() + expires_in;
    r.access_lifetime = lifetime;
    r.refresh_obtained_at = now() - 86400;
    r.created_at = now() - 86400;
    return r;
}

std::string tokens_body(const std::string& access, const std::string& refresh, long expires_in = 3600) {
    std::string s = "{\"token_type\":\"Bearer\",\"expires_in\":" + std::to_string(expires_in) +
                    ",\"access_token\":\"" + access + "\"";
    if (!refresh.empty()) s += ",\"refresh_token\":\"" + refresh + "\"";
    return s + "}";
}

// The shared scripted client; not strict, as a request may come on another
// thread: the tests count requests instead.
using ScriptedHttp = testutil::FakeHttp;

// Compares a token without printing it: test output carries no token,
// not even a fake one.
#define ASSERT_TOKEN(want, got) \
    CPPUNIT_ASSERT_MESSAGE(#got " is not " #want " (tokens are not shown)", (got).reveal() == (want))

ssize_t disk_full(int, const void*, std::size_t) {
    errno = ENOSPC;
    return -1;
}

}  // namespace

class RefreshRulesTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(RefreshRulesTest);
    CPPUNIT_TEST(fresh_token_needs_no_request);
    CPPUNIT_TEST(margin_table);
    CPPUNIT_TEST(refresh_request_carries_the_stored_grant);
    CPPUNIT_TEST(rotated_refresh_token_is_saved_before_the_token_is_returned);
    CPPUNIT_TEST(failed_save_returns_no_token_and_keeps_the_old_ones);
    CPPUNIT_TEST(reply_without_refresh_token_keeps_the_old_one);
    CPPUNIT_TEST(forced_refresh_named_by_rejected_is_single_flight);
    CPPUNIT_TEST(forced_refresh_without_a_valid_id_always_refreshes);
    CPPUNIT_TEST(forced_refresh_satisfied_by_a_refresh_done_while_waiting_for_the_lock);
    CPPUNIT_TEST(temporary_failure_inside_the_margin_serves_the_current_token);
    CPPUNIT_TEST(revoked_refresh_token_asks_for_login_and_is_noted);
    CPPUNIT_TEST(not_signed_in);
    CPPUNIT_TEST_SUITE_END();

    std::string base_;
    std::string dir_;
    Environment env_;

    Store store() const { return Store(dir_); }

    void put(const AccountRecord& r) {
        std::string err;
        Store s = store();
        Store::Lock lock;
        CPPUNIT_ASSERT_MESSAGE(err, s.lock(r.account, 5000, lock, err));
        CPPUNIT_ASSERT_MESSAGE(err, s.save(r, err));
    }

    AccountRecord stored() const {
        AccountRecord r;
        std::string err;
        CPPUNIT_ASSERT_MESSAGE(err, store().load(kAccount, r, err) == LoadStatus::Ok);
        return r;
    }

    TokenResult get(ScriptedHttp& http, bool force = false, const std::string& rejected = "") {
        return get_access_token(env_, store(), http, kAccount, force, rejected);
    }

public:
    void setUp() override {
        char tmpl[] = "/tmp/mailoauth-refresh-XXXXXX";
        CPPUNIT_ASSERT(mkdtemp(tmpl) != nullptr);
        base_ = tmpl;
        dir_ = base_ + "/store";
        std::string err;
        Store s(dir_);
        CPPUNIT_ASSERT_MESSAGE(err, s.open(true, err));
        env_ = Environment();
        env_.store_dir = dir_;
        env_.http_timeout = 5;
        env_.cli_refresh_margin = 600;
        testing::store_write_hook = nullptr;
    }

    void tearDown() override {
        testing::store_write_hook = nullptr;
        std::error_code ec;
        std::filesystem::remove_all(base_, ec);
    }

    void fresh_token_needs_no_request() {
        put(signed_in(3600));
        ScriptedHttp http;
        TokenResult t = get(http);
        CPPUNIT_ASSERT_EQUAL(0, t.exit_code);
        ASSERT_TOKEN(std::string(kAccess0), t.record.access_token);
        CPPUNIT_ASSERT(!t.refreshed);
        CPPUNIT_ASSERT(http.requests.empty());
    }

    void margin_table() {
        // Seconds left rather than exact boundaries: a second may pass
        // between writing the record and the check.
        struct Case {
            std::int64_t lifetime;
            std::int64_t left;
            long margin;
            bool refresh;
            const char* why;
        };
        const Case cases[] = {
            {3600, 620, 600, false, "an hour's token outside the 600 s margin"},
            {3600, 580, 600, true, "inside it"},
            {3600, 1190, 1200, true, "a margin of a third of the lifetime applies in full"},
            {3600, 1250, 1300, false, "a larger one is clamped to 1200 s"},
            {60, 30, 600, false, "a minute's token: the margin is 20 s"},
            {60, 10, 600, true, "inside those 20 s"},
            {0, 620, 600, false, "unknown lifetime (older record): the configured margin"},
            {0, 580, 600, true, "inside it"},
            {3600, 10, 0, false, "margin 0: valid until it expires"},
            {3600, -5, 0, true, "expired"},
        };
        for (const Case& c : cases) {
            tearDown();
            setUp();
            env_.cli_refresh_margin = c.margin;
            put(signed_in(c.left, c.lifetime));
            ScriptedHttp http;
            if (c.refresh) http.answer(200, tokens_body("EwA-new", "M.C5-new"));
            TokenResult t = get(http);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(c.why, 0, t.exit_code);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(c.why, c.refresh, t.refreshed);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(c.why, std::size_t(c.refresh ? 1 : 0), http.requests.size());
            CPPUNIT_ASSERT_MESSAGE(std::string(c.why) + ": not the expected token",
                                   t.record.access_token.reveal() == (c.refresh ? "EwA-new" : kAccess0));
        }
        // No access token at all: a refresh, whatever the expiry says.
        tearDown();
        setUp();
        AccountRecord r = signed_in(3600);
        r.access_token = Secret();
        put(r);
        ScriptedHttp http;
        http.answer(200, tokens_body("EwA-new", ""));
        CPPUNIT_ASSERT(get(http).refreshed);
    }

    void refresh_request_carries_the_stored_grant() {
        put(signed_in(10));
        ScriptedHttp http;
        http.answer(200, tokens_body("EwA-new", "M.C5-new"));
        CPPUNIT_ASSERT_EQUAL(0, get(http).exit_code);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), http.requests.size());
        CPPUNIT_ASSERT_EQUAL(std::string(kAuthority) + "/oauth2/v2.0/token", http.requests[0].url);
        const std::string& body = http.requests[0].body;
        for (const std::string& want : {std::string("grant_type=refresh_token"),
                                        std::string("refresh_token=") + kRefresh0,
                                        std::string("client_id=11111111-2222-3333-4444-555555555555"),
                                        std::string("scope=https%3A%2F%2Foutlook.office.com")})
            CPPUNIT_ASSERT_MESSAGE(want, body.find(want) != std::string::npos);
    }

    void rotated_refresh_token_is_saved_before_the_token_is_returned() {
        put(signed_in(10));
        ScriptedHttp http;
        // While the request is in flight the old tokens are in the store.
        bool old_kept = false;
        http.on_request = [&] { old_kept = stored().refresh_token.reveal() == kRefresh0; };
        http.answer(200, tokens_body("EwA-new", "M.C5-rotated", 1800));
        const std::int64_t before = now();
        TokenResult t = get(http);
        CPPUNIT_ASSERT(old_kept);
        CPPUNIT_ASSERT_EQUAL(0, t.exit_code);
        CPPUNIT_ASSERT(t.refreshed);
        ASSERT_TOKEN(std::string("EwA-new"), t.record.access_token);
        // On return the store already holds what was returned, and the
        // rotated refresh token.
        AccountRecord r = stored();
        ASSERT_TOKEN(std::string("M.C5-rotated"), r.refresh_token);
        ASSERT_TOKEN(std::string("EwA-new"), r.access_token);
        CPPUNIT_ASSERT_EQUAL(std::int64_t(1800), r.access_lifetime);
        CPPUNIT_ASSERT(r.access_expires_at >= before + 1800 && r.access_expires_at <= now() + 1800);
        CPPUNIT_ASSERT(r.refresh_obtained_at >= before);
        CPPUNIT_ASSERT(r.last_error.empty());
    }

    void failed_save_returns_no_token_and_keeps_the_old_ones() {
        put(signed_in(10));
        ScriptedHttp http;
        http.answer(200, tokens_body("EwA-new", "M.C5-rotated"));
        testing::store_write_hook = disk_full;
        TokenResult t = get(http);
        testing::store_write_hook = nullptr;
        CPPUNIT_ASSERT_EQUAL(int(kExitTempFail), t.exit_code);
        CPPUNIT_ASSERT_EQUAL(std::string("store_write"), t.error);
        CPPUNIT_ASSERT(t.message.find("previous tokens are kept") != std::string::npos);
        CPPUNIT_ASSERT(t.record.access_token.empty());
        CPPUNIT_ASSERT(t.record.refresh_token.empty());
        AccountRecord r = stored();
        ASSERT_TOKEN(std::string(kRefresh0), r.refresh_token);
        ASSERT_TOKEN(std::string(kAccess0), r.access_token);
    }

    void reply_without_refresh_token_keeps_the_old_one() {
        AccountRecord old = signed_in(10);
        put(old);
        ScriptedHttp http;
        http.answer(200, tokens_body("EwA-new", ""));
        TokenResult t = get(http);
        CPPUNIT_ASSERT_EQUAL(0, t.exit_code);
        AccountRecord r = stored();
        ASSERT_TOKEN(std::string(kRefresh0), r.refresh_token);
        CPPUNIT_ASSERT_EQUAL(old.refresh_obtained_at, r.refresh_obtained_at);
        ASSERT_TOKEN(std::string("EwA-new"), r.access_token);
    }

    void forced_refresh_named_by_rejected_is_single_flight() {
        put(signed_in(3600));
        const std::string refused = protocol::token_id(kAccess0);
        ScriptedHttp http;
        http.answer(200, tokens_body("EwA-new", "M.C5-new"));
        // The first caller whose token was refused refreshes ...
        TokenResult first = get(http, true, refused);
        CPPUNIT_ASSERT_EQUAL(0, first.exit_code);
        CPPUNIT_ASSERT(first.refreshed);
        ASSERT_TOKEN(std::string("EwA-new"), first.record.access_token);
        // ... every later one naming the same refused token gets the new
        // one without a request.
        for (int i = 0; i < 5; ++i) {
            TokenResult again = get(http, true, refused);
            CPPUNIT_ASSERT_EQUAL(0, again.exit_code);
            CPPUNIT_ASSERT(!again.refreshed);
            ASSERT_TOKEN(std::string("EwA-new"), again.record.access_token);
        }
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), http.requests.size());
        // An id of some other token does not force anything either.
        TokenResult other = get(http, true, protocol::token_id("EwA-some-other-token"));
        CPPUNIT_ASSERT(!other.refreshed);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), http.requests.size());
    }

    void forced_refresh_without_a_valid_id_always_refreshes() {
        // No id, or the old form (the token's tail): nothing to compare, so
        // each forced call refreshes.
        put(signed_in(3600));
        ScriptedHttp http;
        http.answer(200, tokens_body("EwA-new-1", "M.C5-new-1"));
        http.answer(200, tokens_body("EwA-new-2", "M.C5-new-2"));
        CPPUNIT_ASSERT(get(http, true).refreshed);
        TokenResult t = get(http, true, std::string("EwA-new-1").substr(1));
        CPPUNIT_ASSERT(t.refreshed);
        ASSERT_TOKEN(std::string("EwA-new-2"), t.record.access_token);
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), http.requests.size());
    }

    void forced_refresh_satisfied_by_a_refresh_done_while_waiting_for_the_lock() {
        // Another process holds the account's lock and refreshes; this
        // caller, forced by the same refused token, waits for the lock and
        // then takes the new token instead of refreshing again.
        put(signed_in(3600));
        Store::Lock held;
        std::string err;
        CPPUNIT_ASSERT_MESSAGE(err, store().lock(kAccount, 5000, held, err));
        ScriptedHttp http;   // no answers: a request would fail the test
        TokenResult t;
        std::thread caller([&] { t = get(http, true, protocol::token_id(kAccess0)); });
        std::this_thread::sleep_for(std::chrono::milliseconds(100));   // it waits for the lock
        AccountRecord other = signed_in(3600);
        other.access_token = Secret("EwA-from-the-other-process");
        other.refresh_token = Secret("M.C5-from-the-other-process");
        CPPUNIT_ASSERT_MESSAGE(err, store().save(other, err));
        held = Store::Lock();
        caller.join();
        CPPUNIT_ASSERT_EQUAL(0, t.exit_code);
        CPPUNIT_ASSERT(!t.refreshed);
        ASSERT_TOKEN(std::string("EwA-from-the-other-process"), t.record.access_token);
        CPPUNIT_ASSERT(http.requests.empty());
    }

    void temporary_failure_inside_the_margin_serves_the_current_token() {
        put(signed_in(300));          // inside the 600 s margin, valid for 5 minutes
        ScriptedHttp http;
        http.answer(503, "{\"error\":\"temporarily_unavailable\"}");
        TokenResult t = get(http);
        CPPUNIT_ASSERT_EQUAL(0, t.exit_code);
        ASSERT_TOKEN(std::string(kAccess0), t.record.access_token);
        CPPUNIT_ASSERT(t.warning.find("using the current token") != std::string::npos);
        CPPUNIT_ASSERT(!stored().last_error.empty());    // noted for `status`
        // Forced (a server refused the token): no fallback.
        http.fail(HttpFailure::Transport, "connection refused");
        TokenResult forced = get(http, true);
        CPPUNIT_ASSERT_EQUAL(int(kExitTempFail), forced.exit_code);
        CPPUNIT_ASSERT(forced.record.access_token.empty());
        // Nearly expired (under a minute left): no fallback either.
        tearDown();
        setUp();
        put(signed_in(30));
        ScriptedHttp http2;
        http2.answer(503, "{\"error\":\"temporarily_unavailable\"}");
        CPPUNIT_ASSERT_EQUAL(int(kExitTempFail), get(http2).exit_code);
    }

    void revoked_refresh_token_asks_for_login_and_is_noted() {
        put(signed_in(10));
        ScriptedHttp http;
        http.answer(400, "{\"error\":\"invalid_grant\",\"error_codes\":[50173]}");
        TokenResult t = get(http);
        CPPUNIT_ASSERT_EQUAL(int(kExitNoPerm), t.exit_code);
        CPPUNIT_ASSERT_EQUAL(std::string("invalid_grant"), t.error);
        CPPUNIT_ASSERT(t.message.find("mailoauth login alice@example.com") != std::string::npos);
        CPPUNIT_ASSERT(t.record.access_token.empty());
        AccountRecord r = stored();
        CPPUNIT_ASSERT(r.last_error.find("mailoauth login") != std::string::npos);
        CPPUNIT_ASSERT(r.last_error_at > 0);
        ASSERT_TOKEN(std::string(kRefresh0), r.refresh_token);
    }

    void not_signed_in() {
        ScriptedHttp http;
        TokenResult t = get(http);
        CPPUNIT_ASSERT_EQUAL(int(kExitNoPerm), t.exit_code);
        CPPUNIT_ASSERT_EQUAL(std::string("not_logged_in"), t.error);
        CPPUNIT_ASSERT(t.message.find("mailoauth login alice@example.com") != std::string::npos);
        CPPUNIT_ASSERT(http.requests.empty());
    }
};
CPPUNIT_TEST_SUITE_REGISTRATION(RefreshRulesTest);
