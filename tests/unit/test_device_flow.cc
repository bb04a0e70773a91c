// The device authorization grant's polling rules (tokenhelper/device_flow.cc,
// RFC 8628 section 3.5) with a scripted HTTP client and a fake clock: the
// interval, slow_down's five more seconds, authorization_pending, the
// errors that end the wait, the code's expiry, and transport or server
// trouble retried with a bounded back-off.  No time passes: a sleep moves
// the fake clock, so each case runs in microseconds what takes minutes
// against a real provider (tests/helper/test_login.py sees the same rules
// end to end, briefly).
#include <cppunit/extensions/HelperMacros.h>

#include <string>
#include <vector>

#include "tests/unit/fake_http.h"
#include "tokenhelper/device_flow.h"
#include "tokenhelper/errors.h"

using namespace mailoauth;

namespace {

const char kAuthority[] = "https://login.example.test/organizations";
const char kClientId[] = "11111111-2222-3333-4444-555555555555";
const char kDeviceCode[] = "DAQABIQEAAAB-device-code-SECRET-0815";

// Where the flow sends its requests.  Before the provider seam the flow
// derives both URLs from authority; with it, DeviceFlowParams names them
// (device_endpoint, token_endpoint).  These set them where the struct has
// them, so this test builds on either side of that change; the URLs are
// the same.
template <typename P>
auto set_endpoints(P& p, int) -> decltype(p.device_endpoint = std::string(), void()) {
    p.device_endpoint = std::string(kAuthority) + "/oauth2/v2.0/devicecode";
    p.token_endpoint = std::string(kAuthority) + "/oauth2/v2.0/token";
}
template <typename P>
void set_endpoints(P&, long) {}

// The one place that builds DeviceFlowParams (the struct may grow fields).
DeviceFlowParams params() {
    DeviceFlowParams p;
    p.authority = kAuthority;
    set_endpoints(p, 0);
    p.client_id = kClientId;
    p.scope = "https://outlook.office.com/IMAP.AccessAsUser.All offline_access";
    p.account = "alice@example.com";
    return p;
}

std::string devicecode_body(long interval, long expires_in) {
    return std::string("{\"user_code\":\"ABCD1234\",\"device_code\":\"") + kDeviceCode +
           "\",\"verification_uri\":\"https://microsoft.com/devicelogin\",\"expires_in\":" +
           std::to_string(expires_in) + ",\"interval\":" + std::to_string(interval) +
           ",\"message\":\"To sign in, enter ABCD1234.\"}";
}

const char kTokens[] =
    "{\"token_type\":\"Bearer\",\"expires_in\":3600,\"access_token\":\"EwA-access-SECRET\","
    "\"refresh_token\":\"M.C5-refresh-SECRET\",\"scope\":\"IMAP.AccessAsUser.All\"}";

std::string error_body(const std::string& error) {
    return "{\"error\":\"" + error + "\",\"error_description\":\"AADSTS70016: " + error +
           "\",\"error_codes\":[70016]}";
}

// Monotonic seconds that move only when the code under test sleeps.
struct FakeClock {
    double t = 1000.0;
    double slept = 0;
    DeviceFlowClock clock() {
        DeviceFlowClock c;
        c.now = [this] { return t; };
        c.sleep = [this](double s) {
            CPPUNIT_ASSERT_MESSAGE("a sleep of no time would spin", s > 0);
            t += s;
            slept += s;
        };
        return c;
    }
};

// The shared scripted client, in strict order, noting when each request came.
struct ScriptedHttp : testutil::FakeHttp {
    explicit ScriptedHttp(FakeClock& fc) {
        clock = [&fc] { return fc.t; };
        strict = true;
    }
    // Times of the token-endpoint polls, relative to the devicecode answer.
    std::vector<double> poll_times() const {
        std::vector<double> out;
        for (std::size_t i = 1; i < requests.size(); ++i) out.push_back(requests[i].at - requests[0].at);
        return out;
    }
};

class RecordingUI : public DeviceFlowUI {
public:
    int shown = 0;
    int done_calls = 0;
    std::vector<std::string> notes;
    std::vector<long> seconds_left;
    void show_code(const DeviceCodeResponse& dc) override {
        ++shown;
        user_code = dc.user_code;
    }
    void waiting(long left, long) override { seconds_left.push_back(left); }
    void note(const std::string& line) override { notes.push_back(line); }
    void done() override { ++done_calls; }
    std::string user_code;
};

// Compares a token without printing it: test output carries no token,
// not even a fake one.
#define ASSERT_TOKEN(want, got) \
    CPPUNIT_ASSERT_MESSAGE(#got " is not " #want " (tokens are not shown)", (got).reveal() == (want))

std::string join(const std::vector<double>& v) {
    std::string s;
    for (double d : v) s += std::to_string(d) + " ";
    return s;
}

}  // namespace

class DeviceFlowTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(DeviceFlowTest);
    CPPUNIT_TEST(requests_go_to_the_authority_with_the_code);
    CPPUNIT_TEST(polls_every_interval_while_pending);
    CPPUNIT_TEST(interval_below_one_second_is_one_second);
    CPPUNIT_TEST(slow_down_adds_five_seconds_each_time);
    CPPUNIT_TEST(expired_token_ends_the_wait);
    CPPUNIT_TEST(access_denied_and_declined_end_the_wait);
    CPPUNIT_TEST(other_oauth_error_ends_the_wait_explained);
    CPPUNIT_TEST(local_deadline_ends_the_wait_without_another_poll);
    CPPUNIT_TEST(countdown_is_shown_while_waiting);
    CPPUNIT_TEST(transport_errors_back_off_doubling_to_a_bound);
    CPPUNIT_TEST(pending_after_trouble_resets_the_back_off);
    CPPUNIT_TEST(server_trouble_backs_off_like_transport_errors);
    CPPUNIT_TEST(retries_end_at_the_deadline);
    CPPUNIT_TEST(tls_failure_while_polling_is_not_retried);
    CPPUNIT_TEST(devicecode_failures);
    CPPUNIT_TEST(tokens_without_refresh_token_are_refused);
    CPPUNIT_TEST(unusable_token_reply_is_temporary);
    CPPUNIT_TEST_SUITE_END();

    FakeClock fc;
    RecordingUI ui;

    DeviceFlowResult run(ScriptedHttp& http) {
        DeviceFlowParams p = params();
        return run_device_flow(http, p, ui, fc.clock());
    }

public:
    void setUp() override {
        fc = FakeClock();
        ui = RecordingUI();
    }

    void requests_go_to_the_authority_with_the_code() {
        ScriptedHttp http(fc);
        http.answer(200, devicecode_body(5, 900));
        http.answer(200, kTokens);
        DeviceFlowResult r = run(http);
        CPPUNIT_ASSERT_EQUAL(0, r.exit_code);
        ASSERT_TOKEN(std::string("EwA-access-SECRET"), r.tokens.access_token);
        ASSERT_TOKEN(std::string("M.C5-refresh-SECRET"), r.tokens.refresh_token);
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), http.requests.size());
        CPPUNIT_ASSERT_EQUAL(std::string(kAuthority) + "/oauth2/v2.0/devicecode", http.requests[0].url);
        CPPUNIT_ASSERT(http.requests[0].body.find("client_id=" + std::string(kClientId)) != std::string::npos);
        CPPUNIT_ASSERT(http.requests[0].body.find("scope=https%3A%2F%2Foutlook.office.com") != std::string::npos);
        CPPUNIT_ASSERT_EQUAL(std::string(kAuthority) + "/oauth2/v2.0/token", http.requests[1].url);
        const std::string& poll = http.requests[1].body;
        CPPUNIT_ASSERT(poll.find("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code") !=
                       std::string::npos);
        CPPUNIT_ASSERT(poll.find("device_code=" + std::string(kDeviceCode)) != std::string::npos);
        CPPUNIT_ASSERT_EQUAL(1, ui.shown);
        CPPUNIT_ASSERT_EQUAL(std::string("ABCD1234"), ui.user_code);
        CPPUNIT_ASSERT(ui.done_calls >= 1);
    }

    void polls_every_interval_while_pending() {
        ScriptedHttp http(fc);
        http.answer(200, devicecode_body(5, 900));
        for (int i = 0; i < 3; ++i) http.answer(400, error_body("authorization_pending"));
        http.answer(200, kTokens);
        DeviceFlowResult r = run(http);
        CPPUNIT_ASSERT_EQUAL(0, r.exit_code);
        const std::vector<double> want = {5, 10, 15, 20};
        CPPUNIT_ASSERT_EQUAL_MESSAGE(join(http.poll_times()), join(want), join(http.poll_times()));
        CPPUNIT_ASSERT(ui.notes.empty());   // pending is not news
    }

    void interval_below_one_second_is_one_second() {
        ScriptedHttp http(fc);
        http.answer(200, devicecode_body(0, 900));
        http.answer(400, error_body("authorization_pending"));
        http.answer(200, kTokens);
        CPPUNIT_ASSERT_EQUAL(0, run(http).exit_code);
        const std::vector<double> want = {1, 2};
        CPPUNIT_ASSERT_EQUAL(join(want), join(http.poll_times()));
    }

    void slow_down_adds_five_seconds_each_time() {
        // RFC 8628 3.5: the interval grows by 5 s with every slow_down and
        // stays there (pending does not shrink it again).
        ScriptedHttp http(fc);
        http.answer(200, devicecode_body(1, 900));
        http.answer(400, error_body("slow_down"));              // at 1: now every 6 s
        http.answer(400, error_body("authorization_pending"));  // at 7
        http.answer(400, error_body("slow_down"));              // at 13: now every 11 s
        http.answer(400, error_body("authorization_pending"));  // at 24
        http.answer(200, kTokens);                              // at 35
        DeviceFlowResult r = run(http);
        CPPUNIT_ASSERT_EQUAL(0, r.exit_code);
        const std::vector<double> want = {1, 7, 13, 24, 35};
        CPPUNIT_ASSERT_EQUAL(join(want), join(http.poll_times()));
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), ui.notes.size());
        CPPUNIT_ASSERT(ui.notes[0].find("more slowly; now every 6 s") != std::string::npos);
        CPPUNIT_ASSERT(ui.notes[1].find("now every 11 s") != std::string::npos);
    }

    void expired_token_ends_the_wait() {
        ScriptedHttp http(fc);
        http.answer(200, devicecode_body(5, 900));
        http.answer(400, error_body("authorization_pending"));
        http.answer(400, "{\"error\":\"expired_token\",\"error_codes\":[70020]}");
        DeviceFlowResult r = run(http);
        CPPUNIT_ASSERT_EQUAL(int(kExitNoPerm), r.exit_code);
        CPPUNIT_ASSERT_EQUAL(std::string("expired_token"), r.error);
        CPPUNIT_ASSERT(r.message.find("mailoauth login alice@example.com") != std::string::npos);
        CPPUNIT_ASSERT(http.script_done());
        CPPUNIT_ASSERT(r.tokens.access_token.empty());
    }

    void access_denied_and_declined_end_the_wait() {
        for (const char* word : {"access_denied", "authorization_declined", "bad_verification_code"}) {
            setUp();
            ScriptedHttp http(fc);
            http.answer(200, devicecode_body(5, 900));
            http.answer(400, "{\"error\":\"" + std::string(word) + "\",\"error_codes\":[70000]}");
            DeviceFlowResult r = run(http);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(word, int(kExitNoPerm), r.exit_code);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(word, std::string(word), r.error);
            CPPUNIT_ASSERT_MESSAGE(word, r.message.find("mailoauth login alice@example.com") != std::string::npos);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(word, std::size_t(2), http.requests.size());
        }
    }

    void other_oauth_error_ends_the_wait_explained() {
        ScriptedHttp http(fc);
        http.answer(200, devicecode_body(5, 900));
        http.answer(400, "{\"error\":\"unauthorized_client\",\"error_codes\":[700016]}");
        DeviceFlowResult r = run(http);
        CPPUNIT_ASSERT_EQUAL(int(kExitConfig), r.exit_code);
        CPPUNIT_ASSERT_EQUAL(std::string("unauthorized_client"), r.error);
        CPPUNIT_ASSERT(r.message.find("AADSTS700016") != std::string::npos);
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), http.requests.size());
    }

    void local_deadline_ends_the_wait_without_another_poll() {
        // expires_in 12, every 5 s: polls at 5 and 10, then the code is
        // dead at 12 whatever the provider would say; no poll after it.
        ScriptedHttp http(fc);
        http.answer(200, devicecode_body(5, 12));
        http.answer(400, error_body("authorization_pending"));
        http.answer(400, error_body("authorization_pending"));
        DeviceFlowResult r = run(http);
        CPPUNIT_ASSERT_EQUAL(int(kExitNoPerm), r.exit_code);
        CPPUNIT_ASSERT_EQUAL(std::string("expired_token"), r.error);
        CPPUNIT_ASSERT(r.message.find("expired") != std::string::npos);
        CPPUNIT_ASSERT(r.message.find("mailoauth login alice@example.com") != std::string::npos);
        const std::vector<double> want = {5, 10};
        CPPUNIT_ASSERT_EQUAL(join(want), join(http.poll_times()));
        CPPUNIT_ASSERT_DOUBLES_EQUAL(12.0, fc.slept, 1e-9);
        CPPUNIT_ASSERT(ui.done_calls >= 1);
    }

    void countdown_is_shown_while_waiting() {
        ScriptedHttp http(fc);
        http.answer(200, devicecode_body(5, 900));
        http.answer(200, kTokens);
        CPPUNIT_ASSERT_EQUAL(0, run(http).exit_code);
        // About once a second (sleeps of at most 1 s), counting down.
        CPPUNIT_ASSERT_EQUAL(std::size_t(5), ui.seconds_left.size());
        CPPUNIT_ASSERT_EQUAL(900L, ui.seconds_left.front());
        CPPUNIT_ASSERT_EQUAL(896L, ui.seconds_left.back());
    }

    void transport_errors_back_off_doubling_to_a_bound() {
        // Every 5 s; after a transport error the extra wait starts at one
        // interval and doubles, up to 60 s: gaps 5, 10, 15, 25, 45, 65, 65.
        ScriptedHttp http(fc);
        http.answer(200, devicecode_body(5, 900));
        for (int i = 0; i < 6; ++i) http.fail(HttpFailure::Transport, "connection reset");
        http.answer(200, kTokens);
        DeviceFlowResult r = run(http);
        CPPUNIT_ASSERT_EQUAL(0, r.exit_code);
        const std::vector<double> want = {5, 15, 30, 55, 100, 165, 230};
        CPPUNIT_ASSERT_EQUAL(join(want), join(http.poll_times()));
        CPPUNIT_ASSERT_EQUAL(std::size_t(6), ui.notes.size());
        CPPUNIT_ASSERT(ui.notes[0].find("connection reset") != std::string::npos);
        CPPUNIT_ASSERT(ui.notes[0].find("retrying in 10 s") != std::string::npos);
        CPPUNIT_ASSERT(ui.notes[5].find("retrying in 65 s") != std::string::npos);
    }

    void pending_after_trouble_resets_the_back_off() {
        ScriptedHttp http(fc);
        http.answer(200, devicecode_body(5, 900));
        http.fail(HttpFailure::Transport, "timed out");           // at 5
        http.answer(400, error_body("authorization_pending"));    // at 15
        http.answer(200, kTokens);                                // at 20
        CPPUNIT_ASSERT_EQUAL(0, run(http).exit_code);
        const std::vector<double> want = {5, 15, 20};
        CPPUNIT_ASSERT_EQUAL(join(want), join(http.poll_times()));
    }

    void server_trouble_backs_off_like_transport_errors() {
        ScriptedHttp http(fc);
        http.answer(200, devicecode_body(5, 900));
        http.answer(503, "<html>Service Unavailable</html>");                     // at 5
        http.answer(429, "");                                                     // at 15
        http.answer(400, "{\"error\":\"temporarily_unavailable\"}");              // at 30
        http.answer(400, "{\"error\":\"server_error\"}");                         // at 55
        http.answer(200, kTokens);                                                // at 100
        DeviceFlowResult r = run(http);
        CPPUNIT_ASSERT_EQUAL(0, r.exit_code);
        const std::vector<double> want = {5, 15, 30, 55, 100};
        CPPUNIT_ASSERT_EQUAL(join(want), join(http.poll_times()));
        CPPUNIT_ASSERT(ui.notes[0].find("HTTP 503") != std::string::npos);
        CPPUNIT_ASSERT(ui.notes[1].find("HTTP 429") != std::string::npos);
    }

    void retries_end_at_the_deadline() {
        // A provider that never recovers: the code's lifetime bounds the
        // retries, and the result says the code expired.
        ScriptedHttp http(fc);
        http.answer(200, devicecode_body(5, 120));
        for (int i = 0; i < 5; ++i) http.fail(HttpFailure::Transport, "connection refused");
        DeviceFlowResult r = run(http);
        CPPUNIT_ASSERT_EQUAL(int(kExitNoPerm), r.exit_code);
        CPPUNIT_ASSERT_EQUAL(std::string("expired_token"), r.error);
        // The next try would be at 165: the wait ends at 120 instead.
        const std::vector<double> want = {5, 15, 30, 55, 100};
        CPPUNIT_ASSERT_EQUAL(join(want), join(http.poll_times()));
        CPPUNIT_ASSERT_DOUBLES_EQUAL(120.0, fc.slept, 1e-9);
    }

    void tls_failure_while_polling_is_not_retried() {
        for (HttpFailure f : {HttpFailure::Tls, HttpFailure::Policy}) {
            setUp();
            ScriptedHttp http(fc);
            http.answer(200, devicecode_body(5, 900));
            http.fail(f, "certificate verify failed");
            DeviceFlowResult r = run(http);
            CPPUNIT_ASSERT_EQUAL(int(kExitConfig), r.exit_code);
            CPPUNIT_ASSERT_EQUAL(std::string("network"), r.error);
            CPPUNIT_ASSERT(r.message.find("certificate verify failed") != std::string::npos);
            CPPUNIT_ASSERT_EQUAL(std::size_t(2), http.requests.size());
        }
    }

    void devicecode_failures() {
        struct Case {
            const char* why;
            bool transport;
            HttpFailure failure;
            long status;
            std::string body;
            int exit_code;
            std::string error;
        };
        const Case cases[] = {
            {"unreachable", true, HttpFailure::Transport, 0, "", kExitTempFail, "network"},
            {"untrusted certificate", true, HttpFailure::Tls, 0, "", kExitConfig, "network"},
            {"not https", true, HttpFailure::Policy, 0, "", kExitConfig, "network"},
            {"502", false, HttpFailure::None, 502, "<html>", kExitTempFail, "server_error"},
            {"429", false, HttpFailure::None, 429, "", kExitTempFail, "temporarily_unavailable"},
            {"unknown client", false, HttpFailure::None, 400,
             "{\"error\":\"unauthorized_client\",\"error_codes\":[700016]}", kExitConfig, "unauthorized_client"},
            {"truncated JSON", false, HttpFailure::None, 200, "{\"user_code\":\"AB", kExitTempFail, "bad_response"},
            {"no device_code", false, HttpFailure::None, 200,
             "{\"user_code\":\"A\",\"verification_uri\":\"https://x\",\"expires_in\":900}", kExitTempFail,
             "bad_response"},
        };
        for (const Case& c : cases) {
            setUp();
            ScriptedHttp http(fc);
            if (c.transport) http.fail(c.failure, "failed");
            else http.answer(c.status, c.body);
            DeviceFlowResult r = run(http);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(c.why, c.exit_code, r.exit_code);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(c.why, c.error, r.error);
            CPPUNIT_ASSERT_MESSAGE(c.why, !r.message.empty());
            CPPUNIT_ASSERT_EQUAL_MESSAGE(c.why, 0, ui.shown);          // no code shown
            CPPUNIT_ASSERT_EQUAL_MESSAGE(c.why, std::size_t(1), http.requests.size());
            CPPUNIT_ASSERT_DOUBLES_EQUAL(0.0, fc.slept, 1e-9);
        }
    }

    void tokens_without_refresh_token_are_refused() {
        ScriptedHttp http(fc);
        http.answer(200, devicecode_body(5, 900));
        http.answer(200, "{\"token_type\":\"Bearer\",\"expires_in\":3600,\"access_token\":\"EwA-x\"}");
        DeviceFlowResult r = run(http);
        CPPUNIT_ASSERT_EQUAL(int(kExitConfig), r.exit_code);
        CPPUNIT_ASSERT_EQUAL(std::string("no_refresh_token"), r.error);
        CPPUNIT_ASSERT(r.message.find("offline_access") != std::string::npos);
    }

    void unusable_token_reply_is_temporary() {
        ScriptedHttp http(fc);
        http.answer(200, devicecode_body(5, 900));
        http.answer(200, "{\"token_type\":\"Bearer\",\"access_tok");
        DeviceFlowResult r = run(http);
        CPPUNIT_ASSERT_EQUAL(int(kExitTempFail), r.exit_code);
        CPPUNIT_ASSERT_EQUAL(std::string("bad_response"), r.error);
        CPPUNIT_ASSERT(r.message.find("mailoauth login alice@example.com") != std::string::npos);
        CPPUNIT_ASSERT(r.tokens.access_token.empty());
    }
};
CPPUNIT_TEST_SUITE_REGISTRATION(DeviceFlowTest);
