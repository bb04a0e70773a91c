// The whole browser sign-in (tokenhelper/browser_flow.cc) against a fake
// HTTP client, with a scripted UI whose "browser" is a thread that follows
// the redirect to the real loopback listener, or a scripted user who
// pastes.  Checks the authorization URL, the token request (the verifier
// matches the challenge, the same redirect URI, a secret only when there is
// one), every way the sign-in can fail with its exit code, and that no
// message carries the code or the verifier.
#include <cppunit/extensions/HelperMacros.h>

#include <fcntl.h>
#include <map>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "tests/unit/browser_test_util.h"
#include "tests/unit/fake_http.h"
#include "tokenhelper/browser_flow.h"
#include "tokenhelper/errors.h"
#include "tokenhelper/pkce.h"

using namespace mailoauth;
namespace tu = mailoauth::testutil;

namespace {

const char* const kCode = "0.AXEA-the-authorization-code_123";
const char* const kTokenBody =
    "{\"token_type\":\"Bearer\",\"scope\":\"https://outlook.office.com/IMAP.AccessAsUser.All\","
    "\"expires_in\":3600,\"access_token\":\"EwA-access\",\"refresh_token\":\"M.C5-refresh\"}";

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

std::string decode(const std::string& s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size()) {
            out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
            i += 2;
        } else {
            out += s[i] == '+' ? ' ' : s[i];
        }
    }
    return out;
}

// The fields of a URL's query or of a form body, decoded; repeated names
// are counted in "#name".
std::map<std::string, std::string> fields(const std::string& s) {
    std::map<std::string, std::string> out;
    std::size_t q = s.find('?');
    std::string rest = q == std::string::npos ? s : s.substr(q + 1);
    std::size_t pos = 0;
    while (pos <= rest.size()) {
        std::size_t amp = rest.find('&', pos);
        if (amp == std::string::npos) amp = rest.size();
        std::string f = rest.substr(pos, amp - pos);
        pos = amp + 1;
        if (f.empty()) continue;
        std::size_t eq = f.find('=');
        std::string name = decode(f.substr(0, eq));
        out[name] = eq == std::string::npos ? "" : decode(f.substr(eq + 1));
        out["#" + name] += "1";
    }
    return out;
}

int port_of(const std::string& redirect_uri) {
    const std::string prefix = "http://127.0.0.1:";
    CPPUNIT_ASSERT(redirect_uri.rfind(prefix, 0) == 0);
    return std::stoi(redirect_uri.substr(prefix.size()));
}

// The shared scripted client whose token endpoint answers with tokens
// unless a test says otherwise.
struct FakeHttp : testutil::FakeHttp {
    FakeHttp() { otherwise = testutil::http_reply(200, kTokenBody); }
};

// What the scripted browser or user does with the URL.
enum class Act { Code, WrongState, NoState, NoCode, Error, Nothing };

struct ScriptedUI : BrowserFlowUI {
    Act act = Act::Code;
    std::string error_query = "error=access_denied&error_description=AADSTS65004%3A+User+declined+to+consent.";
    bool paste_ok = true;          // read_pasted answers (false: times out)
    std::string paste_override;    // pasted instead of the built address
    std::string url;
    int shown = 0;
    bool shown_paste = false;
    int waits = 0;
    std::string browser_got;       // the listener's page
    std::thread browser;

    ~ScriptedUI() override {
        if (browser.joinable()) browser.join();
    }

    std::string answer_target() const {
        auto f = fields(url);
        const std::string state = "state=" + f["state"];
        switch (act) {
        case Act::Code: return "?code=" + std::string(kCode) + "&" + state + "&session_state=abc";
        case Act::WrongState: return "?code=" + std::string(kCode) + "&state=forged";
        case Act::NoState: return "?code=" + std::string(kCode);
        case Act::NoCode: return "?" + state;
        case Act::Error: return "?" + error_query + "&" + state;
        case Act::Nothing: break;
        }
        return "";
    }

    void show_url(const std::string& u, bool paste) override {
        url = u;
        ++shown;
        shown_paste = paste;
    }
    void open_browser(const std::string& u) override {
        CPPUNIT_ASSERT_EQUAL(url, u);
        if (act == Act::Nothing) return;
        const int port = port_of(fields(url)["redirect_uri"]);
        const std::string target = "/" + answer_target();
        browser = std::thread([this, port, target] {
            tu::get(port, "/favicon.ico");  // as browsers do; must not count
            browser_got = tu::get(port, target);
        });
    }
    void waiting(long) override { ++waits; }
    bool read_pasted(std::string& line, long) override {
        if (!paste_ok) return false;
        line = paste_override.empty() ? fields(url)["redirect_uri"] + answer_target() : paste_override;
        return true;
    }
    void note(const std::string&) override {}
    void done() override {}
};

BrowserFlowParams params() {
    BrowserFlowParams p;
    p.authorization_endpoint = "https://login.example/organizations/oauth2/v2.0/authorize";
    p.token_endpoint = "https://login.example/organizations/oauth2/v2.0/token";
    p.client_id = "11111111-2222-3333-4444-555555555555";
    p.scope = "https://outlook.office.com/IMAP.AccessAsUser.All offline_access";
    p.account = "alice@example.com";
    p.timeout_s = 5;
    return p;
}

}  // namespace

class BrowserFlowTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(BrowserFlowTest);
    CPPUNIT_TEST(authorization_url);
    CPPUNIT_TEST(public_client_end_to_end);
    CPPUNIT_TEST(confidential_client_sends_its_secret);
    CPPUNIT_TEST(wrong_or_missing_state);
    CPPUNIT_TEST(missing_code);
    CPPUNIT_TEST(error_redirects);
    CPPUNIT_TEST(listener_timeout);
    CPPUNIT_TEST(port_in_use);
    CPPUNIT_TEST(paste_mode);
    CPPUNIT_TEST(paste_failures);
    CPPUNIT_TEST(token_endpoint_failures);
    CPPUNIT_TEST(unusable_endpoints);
    CPPUNIT_TEST(default_ui_reads_one_pasted_line);
    CPPUNIT_TEST_SUITE_END();

    // Runs the flow; checks what must hold whatever the outcome.
    BrowserFlowResult run(FakeHttp& http, const BrowserFlowParams& p, ScriptedUI& ui) {
        BrowserFlowResult r = run_browser_flow(http, p, ui);
        if (ui.browser.joinable()) ui.browser.join();
        CPPUNIT_ASSERT(!contains(r.message, kCode));
        for (const auto& post : http.requests) {
            std::string verifier = fields(post.body)["code_verifier"];
            if (!verifier.empty()) CPPUNIT_ASSERT(!contains(r.message, verifier));
        }
        if (!p.client_secret.empty()) CPPUNIT_ASSERT(!contains(r.message, p.client_secret.reveal()));
        CPPUNIT_ASSERT_EQUAL(r.exit_code == 0, r.error.empty());
        return r;
    }

public:
    void authorization_url() {
        BrowserFlowParams p = params();
        p.login_hint = "alice@example.com";
        p.extra_params = {{"access_type", "offline"}, {"prompt", "consent"}};
        std::string url, why;
        CPPUNIT_ASSERT(build_authorization_url(p, "http://127.0.0.1:8400/", "STATE", "CHALLENGE", url, why));
        CPPUNIT_ASSERT(url.rfind(p.authorization_endpoint + "?", 0) == 0);
        auto f = fields(url);
        CPPUNIT_ASSERT_EQUAL(std::string("code"), f["response_type"]);
        CPPUNIT_ASSERT_EQUAL(p.client_id, f["client_id"]);
        CPPUNIT_ASSERT_EQUAL(std::string("http://127.0.0.1:8400/"), f["redirect_uri"]);
        CPPUNIT_ASSERT_EQUAL(p.scope, f["scope"]);
        CPPUNIT_ASSERT_EQUAL(std::string("STATE"), f["state"]);
        CPPUNIT_ASSERT_EQUAL(std::string("CHALLENGE"), f["code_challenge"]);
        CPPUNIT_ASSERT_EQUAL(std::string("S256"), f["code_challenge_method"]);
        CPPUNIT_ASSERT_EQUAL(std::string("alice@example.com"), f["login_hint"]);
        CPPUNIT_ASSERT_EQUAL(std::string("offline"), f["access_type"]);
        CPPUNIT_ASSERT_EQUAL(std::string("consent"), f["prompt"]);
        // Spaces as %20, never a raw space or '+'.
        CPPUNIT_ASSERT(contains(url, "IMAP.AccessAsUser.All%20offline_access"));
        CPPUNIT_ASSERT(!contains(url, " "));
        // An endpoint that has a query already (Keycloak's kc_idp_hint, ...).
        p.authorization_endpoint = "https://idp.example/auth?tenant=x";
        p.login_hint.clear();
        CPPUNIT_ASSERT(build_authorization_url(p, "http://127.0.0.1:1/", "S", "C", url, why));
        CPPUNIT_ASSERT(url.rfind("https://idp.example/auth?tenant=x&client_id=", 0) == 0);
        CPPUNIT_ASSERT(!contains(url, "login_hint"));
        // An extra parameter may not replace one of ours.
        for (const char* own : {"state", "redirect_uri", "code_challenge_method", "client_id", "response_type"}) {
            p.extra_params = {{own, "x"}};
            CPPUNIT_ASSERT(!build_authorization_url(p, "http://127.0.0.1:1/", "S", "C", url, why));
            CPPUNIT_ASSERT(contains(why, own));
        }
        FakeHttp http;
        ScriptedUI ui;
        p = params();
        p.extra_params = {{"state", "mine"}};
        BrowserFlowResult r = run(http, p, ui);
        CPPUNIT_ASSERT_EQUAL(int(kExitUsage), r.exit_code);
        CPPUNIT_ASSERT_EQUAL(0, ui.shown);
    }

    void public_client_end_to_end() {
        FakeHttp http;
        ScriptedUI ui;
        BrowserFlowParams p = params();
        BrowserFlowResult r = run(http, p, ui);
        CPPUNIT_ASSERT_EQUAL_MESSAGE(r.message, 0, r.exit_code);
        CPPUNIT_ASSERT_EQUAL(std::string("EwA-access"), r.tokens.access_token.reveal());
        CPPUNIT_ASSERT_EQUAL(std::string("M.C5-refresh"), r.tokens.refresh_token.reveal());
        CPPUNIT_ASSERT_EQUAL(1, ui.shown);
        CPPUNIT_ASSERT(!ui.shown_paste);
        CPPUNIT_ASSERT(ui.waits >= 1);
        CPPUNIT_ASSERT(ui.browser_got.rfind("HTTP/1.1 200 ", 0) == 0);
        CPPUNIT_ASSERT(contains(ui.browser_got, "alice@example.com"));

        auto url = fields(ui.url);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), http.requests.size());
        CPPUNIT_ASSERT_EQUAL(p.token_endpoint, http.requests[0].url);
        auto form = fields(http.requests[0].body);
        CPPUNIT_ASSERT_EQUAL(std::string("authorization_code"), form["grant_type"]);
        CPPUNIT_ASSERT_EQUAL(std::string(kCode), form["code"]);
        CPPUNIT_ASSERT_EQUAL(p.client_id, form["client_id"]);
        CPPUNIT_ASSERT_EQUAL(url["redirect_uri"], form["redirect_uri"]);
        CPPUNIT_ASSERT_EQUAL(std::string("http://127.0.0.1:" + std::to_string(port_of(url["redirect_uri"])) + "/"),
                             form["redirect_uri"]);
        // The verifier only this process knew matches the challenge the
        // provider saw; it never appeared in the URL.
        const std::string verifier = form["code_verifier"];
        CPPUNIT_ASSERT(pkce::valid_verifier(verifier));
        CPPUNIT_ASSERT_EQUAL(url["code_challenge"], pkce::challenge_s256(verifier));
        CPPUNIT_ASSERT(!contains(ui.url, verifier));
        CPPUNIT_ASSERT_EQUAL(std::string("S256"), url["code_challenge_method"]);
        CPPUNIT_ASSERT_EQUAL(std::size_t(32), url["state"].size());
        // A public client sends no secret, and each field once.
        CPPUNIT_ASSERT(form.count("client_secret") == 0);
        CPPUNIT_ASSERT(form.count("scope") == 0);
        for (const char* k : {"#grant_type", "#code", "#client_id", "#redirect_uri", "#code_verifier"})
            CPPUNIT_ASSERT_EQUAL(std::string("1"), form[k]);
        // A second sign-in has a new state, verifier and port.
        FakeHttp http2;
        ScriptedUI ui2;
        CPPUNIT_ASSERT_EQUAL(0, run(http2, p, ui2).exit_code);
        CPPUNIT_ASSERT(fields(ui2.url)["state"] != url["state"]);
        CPPUNIT_ASSERT(fields(http2.requests[0].body)["code_verifier"] != verifier);
    }

    void confidential_client_sends_its_secret() {
        FakeHttp http;
        ScriptedUI ui;
        BrowserFlowParams p = params();
        p.client_secret = Secret("GOCSPX-the-client-secret");
        p.extra_params = {{"access_type", "offline"}, {"prompt", "consent"}};
        BrowserFlowResult r = run(http, p, ui);
        CPPUNIT_ASSERT_EQUAL_MESSAGE(r.message, 0, r.exit_code);
        auto form = fields(http.requests.at(0).body);
        CPPUNIT_ASSERT_EQUAL(std::string("GOCSPX-the-client-secret"), form["client_secret"]);
        // The secret goes to the token endpoint only, never into the URL.
        CPPUNIT_ASSERT(!contains(ui.url, "GOCSPX"));
        CPPUNIT_ASSERT_EQUAL(std::string("offline"), fields(ui.url)["access_type"]);
    }

    void wrong_or_missing_state() {
        for (Act act : {Act::WrongState, Act::NoState}) {
            FakeHttp http;
            ScriptedUI ui;
            ui.act = act;
            BrowserFlowResult r = run(http, params(), ui);
            CPPUNIT_ASSERT_EQUAL(int(kExitNoPerm), r.exit_code);
            CPPUNIT_ASSERT_EQUAL(std::string(act == Act::WrongState ? "state_mismatch" : "state_missing"), r.error);
            CPPUNIT_ASSERT_MESSAGE(r.message, contains(r.message, "cross-site request forgery"));
            CPPUNIT_ASSERT(contains(r.message, "'mailoauth login alice@example.com --browser'"));
            CPPUNIT_ASSERT(http.requests.empty());  // the code was not used
            CPPUNIT_ASSERT(ui.browser_got.rfind("HTTP/1.1 400 ", 0) == 0);
        }
    }

    void missing_code() {
        FakeHttp http;
        ScriptedUI ui;
        ui.act = Act::NoCode;
        BrowserFlowResult r = run(http, params(), ui);
        CPPUNIT_ASSERT_EQUAL(int(kExitNoPerm), r.exit_code);
        CPPUNIT_ASSERT_EQUAL(std::string("no_code"), r.error);
        CPPUNIT_ASSERT(http.requests.empty());
    }

    void error_redirects() {
        struct Case {
            std::string query;
            int exit_code;
            std::string error, says;
        } cases[] = {
            {"error=access_denied&error_description=AADSTS65004%3A+User+declined+to+consent.", kExitNoPerm,
             "access_denied", "declined"},
            {"error=access_denied&error_subcode=cancel", kExitNoPerm, "access_denied", "--browser"},
            {"error=invalid_client&error_description=AADSTS700016%3A+Application+not+found", kExitConfig,
             "invalid_client", "AADSTS700016"},
            {"error=unauthorized_client", kExitConfig, "unauthorized_client", "--client-id"},
            {"error=invalid_scope&error_description=bad+scope", kExitConfig, "invalid_scope", "--scope"},
            {"error=interaction_required", kExitNoPerm, "interaction_required", "sign in"},
            {"error=temporarily_unavailable", kExitTempFail, "temporarily_unavailable", "Try again"},
            {"error=unsupported_response_type&error_description=%1B%5B31mred", kExitConfig,
             "unsupported_response_type", "unsupported_response_type"},
        };
        for (const Case& c : cases) {
            FakeHttp http;
            ScriptedUI ui;
            ui.act = Act::Error;
            ui.error_query = c.query;
            BrowserFlowResult r = run(http, params(), ui);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(c.query + " " + r.message, c.exit_code, r.exit_code);
            CPPUNIT_ASSERT_EQUAL(c.error, r.error);
            CPPUNIT_ASSERT_MESSAGE(r.message, contains(r.message, c.says));
            CPPUNIT_ASSERT(contains(r.message, "did not complete"));
            CPPUNIT_ASSERT(r.message.find('\x1b') == std::string::npos);
            CPPUNIT_ASSERT(http.requests.empty());
            CPPUNIT_ASSERT(ui.browser_got.rfind("HTTP/1.1 400 ", 0) == 0);
        }
    }

    void listener_timeout() {
        FakeHttp http;
        ScriptedUI ui;
        ui.act = Act::Nothing;
        BrowserFlowParams p = params();
        p.timeout_s = 1;
        BrowserFlowResult r = run(http, p, ui);
        CPPUNIT_ASSERT_EQUAL(int(kExitTempFail), r.exit_code);
        CPPUNIT_ASSERT_EQUAL(std::string("timeout"), r.error);
        CPPUNIT_ASSERT_MESSAGE(r.message, contains(r.message, "within 0:01 minutes"));
        CPPUNIT_ASSERT(ui.waits >= 1);
        CPPUNIT_ASSERT(http.requests.empty());
        // Nothing listens any more.
        CPPUNIT_ASSERT_EQUAL(-1, tu::connect_loopback(port_of(fields(ui.url)["redirect_uri"])));
    }

    void port_in_use() {
        LoopbackListener taken;
        std::string why;
        CPPUNIT_ASSERT_EQUAL(BindStatus::Ok, taken.open(0, why));
        FakeHttp http;
        ScriptedUI ui;
        BrowserFlowParams p = params();
        p.port = taken.port();
        BrowserFlowResult r = run(http, p, ui);
        CPPUNIT_ASSERT_EQUAL(int(kExitConfig), r.exit_code);
        CPPUNIT_ASSERT_EQUAL(std::string("port_in_use"), r.error);
        CPPUNIT_ASSERT_EQUAL("port " + std::to_string(taken.port()) + " is in use: choose another with --port, or free it",
                             r.message);
        CPPUNIT_ASSERT_EQUAL(0, ui.shown);
        // A fixed free port is used as given.
        int port = taken.port();
        taken.close();
        FakeHttp http2;
        ScriptedUI ui2;
        CPPUNIT_ASSERT_EQUAL(0, run(http2, p, ui2).exit_code);
        CPPUNIT_ASSERT_EQUAL("http://127.0.0.1:" + std::to_string(port) + "/", fields(ui2.url)["redirect_uri"]);
    }

    void paste_mode() {
        FakeHttp http;
        ScriptedUI ui;
        BrowserFlowParams p = params();
        p.paste = true;
        p.port = 8400;  // nothing listens; the browser is elsewhere
        BrowserFlowResult r = run(http, p, ui);
        CPPUNIT_ASSERT_EQUAL_MESSAGE(r.message, 0, r.exit_code);
        CPPUNIT_ASSERT(ui.shown_paste);
        CPPUNIT_ASSERT_EQUAL(0, ui.waits);
        CPPUNIT_ASSERT(!ui.browser.joinable());  // no browser was opened
        auto form = fields(http.requests.at(0).body);
        CPPUNIT_ASSERT_EQUAL(std::string("http://127.0.0.1:8400/"), form["redirect_uri"]);
        CPPUNIT_ASSERT_EQUAL(std::string(kCode), form["code"]);
        CPPUNIT_ASSERT_EQUAL(fields(ui.url)["code_challenge"], pkce::challenge_s256(form["code_verifier"]));
        // Without --port a free port is chosen.
        FakeHttp http2;
        ScriptedUI ui2;
        p.port = 0;
        CPPUNIT_ASSERT_EQUAL(0, run(http2, p, ui2).exit_code);
        CPPUNIT_ASSERT(port_of(fields(ui2.url)["redirect_uri"]) > 0);
        // Only the query pasted is enough.
        FakeHttp http3;
        p.port = 8400;
        struct QueryOnly : ScriptedUI {
            bool read_pasted(std::string& line, long) override {
                line = "  " + answer_target().substr(1) + "  ";
                return true;
            }
        } q;
        CPPUNIT_ASSERT_EQUAL(0, run(http3, p, q).exit_code);
    }

    void paste_failures() {
        BrowserFlowParams p = params();
        p.paste = true;
        p.port = 8400;
        struct Case {
            Act act;
            std::string pasted;
            bool answers;
            int exit_code;
            std::string error;
        } cases[] = {
            {Act::WrongState, "", true, kExitNoPerm, "state_mismatch"},
            {Act::NoCode, "", true, kExitNoPerm, "no_code"},
            {Act::Error, "", true, kExitNoPerm, "access_denied"},
            {Act::Code, "hello there", true, kExitDataErr, "bad_paste"},
            {Act::Code, "https://login.microsoftonline.com/common/oauth2/nativeclient", true, kExitDataErr, "bad_paste"},
            {Act::Code, "http://127.0.0.1:8400/?code=" + std::string(20000, 'a'), true, kExitDataErr, "bad_paste"},
            {Act::Code, "", false, kExitTempFail, "timeout"},
        };
        for (const Case& c : cases) {
            FakeHttp http;
            ScriptedUI ui;
            ui.act = c.act;
            ui.paste_override = c.pasted;
            ui.paste_ok = c.answers;
            BrowserFlowResult r = run(http, p, ui);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(c.error + ": " + r.message, c.exit_code, r.exit_code);
            CPPUNIT_ASSERT_EQUAL(c.error, r.error);
            CPPUNIT_ASSERT_MESSAGE(r.message, contains(r.message, "--paste"));
            CPPUNIT_ASSERT(http.requests.empty());
            CPPUNIT_ASSERT(!contains(r.message, "hello there"));  // what was pasted is not echoed
        }
    }

    void token_endpoint_failures() {
        struct Case {
            long status;
            std::string body;
            HttpFailure failure;
            int exit_code;
            std::string error, says;
        } cases[] = {
            {400,
             "{\"error\":\"invalid_grant\",\"error_description\":\"AADSTS501481: The Code_Verifier does not match.\","
             "\"error_codes\":[501481],\"trace_id\":\"t-1\",\"correlation_id\":\"c-1\"}",
             HttpFailure::None, kExitNoPerm, "invalid_grant", "did not accept the sign-in's authorization code"},
            {400, "{\"error\":\"invalid_grant\",\"error_description\":\"AADSTS54005: already redeemed\","
                  "\"error_codes\":[54005]}",
             HttpFailure::None, kExitNoPerm, "invalid_grant", "AADSTS54005"},
            {400, "{\"error\":\"invalid_grant\",\"error_description\":\"Bad Request\"}", HttpFailure::None, kExitNoPerm,
             "invalid_grant", "Bad Request"},
            {401, "{\"error\":\"invalid_client\",\"error_description\":\"Unauthorized\"}", HttpFailure::None,
             kExitConfig, "invalid_client", "--client-id"},
            {400, "{\"error\":\"invalid_grant\",\"error_codes\":[53003]}", HttpFailure::None, kExitConfig,
             "invalid_grant", "AADSTS53003"},
            {500, "<html>down</html>", HttpFailure::None, kExitTempFail, "server_error", "HTTP 500"},
            {200, "{\"token_type\":\"Bearer\",\"access_token\":\"a\",\"expires_in\":3600}", HttpFailure::None,
             kExitConfig, "no_refresh_token", "offline_access"},
            {200, "{not json", HttpFailure::None, kExitTempFail, "bad_response", "could not be used"},
            {0, "", HttpFailure::Transport, kExitTempFail, "network", "token request failed"},
            {0, "", HttpFailure::Tls, kExitConfig, "network", "token request failed"},
        };
        for (const Case& c : cases) {
            FakeHttp http;
            http.otherwise = c.failure == HttpFailure::None ? testutil::http_reply(c.status, c.body)
                                                            : testutil::http_failure(c.failure, "connection refused");
            ScriptedUI ui;
            BrowserFlowResult r = run(http, params(), ui);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(c.body + " " + r.message, c.exit_code, r.exit_code);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(r.message, c.error, r.error);
            CPPUNIT_ASSERT_MESSAGE(r.message, contains(r.message, c.says));
            CPPUNIT_ASSERT_EQUAL(std::size_t(1), http.requests.size());
            CPPUNIT_ASSERT(r.tokens.access_token.empty());
            // The browser was told it worked: the listener's part did.
            CPPUNIT_ASSERT(ui.browser_got.rfind("HTTP/1.1 200 ", 0) == 0);
        }
    }

    void unusable_endpoints() {
        const char* bad_auth[] = {"", "http://login.example/authorize", "ftp://x/", "https://login.example/a\x1b[2J"};
        for (const char* a : bad_auth) {
            FakeHttp http;
            ScriptedUI ui;
            BrowserFlowParams p = params();
            p.authorization_endpoint = a;
            BrowserFlowResult r = run(http, p, ui);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(a, int(kExitConfig), r.exit_code);
            CPPUNIT_ASSERT_EQUAL(std::string("bad_endpoint"), r.error);
            CPPUNIT_ASSERT_EQUAL(0, ui.shown);
        }
        FakeHttp http;
        ScriptedUI ui;
        BrowserFlowParams p = params();
        p.token_endpoint = "http://login.example/token";
        BrowserFlowResult r = run(http, p, ui);
        CPPUNIT_ASSERT_EQUAL(int(kExitConfig), r.exit_code);
        CPPUNIT_ASSERT(contains(r.message, "token endpoint"));
        // Plain http to loopback only when allowed (tests).
        p = params();
        p.authorization_endpoint = "http://127.0.0.1:9/authorize";
        p.token_endpoint = "http://127.0.0.1:9/token";
        p.http.allow_loopback_http = true;
        FakeHttp http2;
        ScriptedUI ui2;
        CPPUNIT_ASSERT_EQUAL(0, run(http2, p, ui2).exit_code);
    }

    void default_ui_reads_one_pasted_line() {
        int saved = dup(STDIN_FILENO);
        int fds[2];
        CPPUNIT_ASSERT_EQUAL(0, pipe(fds));
        CPPUNIT_ASSERT(dup2(fds[0], STDIN_FILENO) >= 0);
        BrowserFlowUI ui;
        std::string line;
        const std::string text = "http://127.0.0.1:8400/?code=abc&state=s\nsecond line\n";
        CPPUNIT_ASSERT_EQUAL(ssize_t(text.size()), write(fds[1], text.data(), text.size()));
        CPPUNIT_ASSERT(ui.read_pasted(line, 5));
        CPPUNIT_ASSERT_EQUAL(std::string("http://127.0.0.1:8400/?code=abc&state=s"), line);
        // Nothing more within the time allowed.
        int empty[2];
        CPPUNIT_ASSERT_EQUAL(0, pipe(empty));
        CPPUNIT_ASSERT(dup2(empty[0], STDIN_FILENO) >= 0);
        CPPUNIT_ASSERT(!ui.read_pasted(line, 0));
        // End of input without a newline still gives the line; then nothing.
        CPPUNIT_ASSERT_EQUAL(ssize_t(3), write(empty[1], "abc", 3));
        close(empty[1]);
        CPPUNIT_ASSERT(ui.read_pasted(line, 5));
        CPPUNIT_ASSERT_EQUAL(std::string("abc"), line);
        CPPUNIT_ASSERT(!ui.read_pasted(line, 5));
        // A line far too long is cut just over the limit, to be refused.
        int big[2];
        CPPUNIT_ASSERT_EQUAL(0, pipe(big));
        CPPUNIT_ASSERT(dup2(big[0], STDIN_FILENO) >= 0);
        std::thread writer([&big] {
            std::string huge(100000, 'a');
            huge += "\n";
            std::size_t off = 0;
            while (off < huge.size()) {
                ssize_t n = write(big[1], huge.data() + off, huge.size() - off);
                if (n <= 0) break;
                off += static_cast<std::size_t>(n);
            }
            close(big[1]);
        });
        CPPUNIT_ASSERT(ui.read_pasted(line, 5));
        writer.join();
        CPPUNIT_ASSERT(line.size() > kMaxRedirectQuery + 1024);
        CPPUNIT_ASSERT(line.size() < 20000);
        dup2(saved, STDIN_FILENO);
        close(saved);
        for (int fd : {fds[0], fds[1], empty[0], big[0]}) close(fd);
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(BrowserFlowTest);
