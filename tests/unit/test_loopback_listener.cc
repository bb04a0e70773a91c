// The redirect listener on real loopback sockets, a thread playing the
// browser: the one answer with the right state, a wrong state, an error
// redirect, the favicon and other requests that do not count, bounded
// requests, a deadline, a port in use, and nothing served after the answer.
#include <cppunit/extensions/HelperMacros.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/unit/browser_test_util.h"
#include "tokenhelper/loopback_listener.h"

using mailoauth::BindStatus;
using mailoauth::ListenerOptions;
using mailoauth::ListenResult;
using mailoauth::ListenStatus;
using mailoauth::LoopbackListener;
using mailoauth::ReplyKind;
namespace tu = mailoauth::testutil;

namespace {

const std::string kState = "c3RhdGUtb2YtdGhpcy1zaWduLWluLTEyMzQ1";

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

// Runs the listener in this thread and the "browser" in another.
struct Run {
    ListenResult result;
    std::vector<std::string> answers;  // what each browser request got
    int ticks = 0;
};

template <typename Browser>
Run serve(LoopbackListener& l, Browser browser, double timeout_s = 5, ListenerOptions opts = ListenerOptions()) {
    Run run;
    const int port = l.port();
    std::thread t([&run, port, browser] { browser(port, run.answers); });
    run.result = l.wait(kState, timeout_s, [&run](long) { ++run.ticks; }, opts);
    t.join();
    return run;
}

}  // namespace

class LoopbackListenerTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(LoopbackListenerTest);
    CPPUNIT_TEST(right_state_gives_the_code);
    CPPUNIT_TEST(wrong_state_stops);
    CPPUNIT_TEST(missing_state_stops);
    CPPUNIT_TEST(error_redirect);
    CPPUNIT_TEST(favicon_and_others_do_not_count);
    CPPUNIT_TEST(idle_and_oversized_connections);
    CPPUNIT_TEST(malformed_answer);
    CPPUNIT_TEST(timeout);
    CPPUNIT_TEST(port_in_use);
    CPPUNIT_TEST(fixed_port_and_bad_ports);
    CPPUNIT_TEST(page_escapes);
    CPPUNIT_TEST_SUITE_END();

public:
    void right_state_gives_the_code() {
        LoopbackListener l;
        std::string why;
        CPPUNIT_ASSERT_EQUAL(BindStatus::Ok, l.open(0, why));
        CPPUNIT_ASSERT(l.port() > 0);
        CPPUNIT_ASSERT_EQUAL("http://127.0.0.1:" + std::to_string(l.port()) + "/", l.redirect_uri());
        ListenerOptions opts;
        opts.account = "<alice>@example.com";
        const int port = l.port();
        Run run = serve(
            l,
            [](int p, std::vector<std::string>& answers) {
                answers.push_back(tu::get(p, "/?code=C0DE.abc-_&state=" + kState + "&session_state=1"));
            },
            5, opts);
        CPPUNIT_ASSERT_EQUAL(ListenStatus::Reply, run.result.status);
        CPPUNIT_ASSERT_EQUAL(ReplyKind::Code, run.result.kind);
        CPPUNIT_ASSERT_EQUAL(std::string("C0DE.abc-_"), run.result.reply.code.reveal());
        const std::string& a = run.answers.at(0);
        CPPUNIT_ASSERT_MESSAGE(a, a.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
        CPPUNIT_ASSERT(contains(a, "Connection: close\r\n"));
        CPPUNIT_ASSERT(contains(a, "Content-Type: text/html; charset=utf-8\r\n"));
        CPPUNIT_ASSERT(contains(a, "Cache-Control: no-store\r\n"));
        CPPUNIT_ASSERT(contains(a, "Referrer-Policy: no-referrer\r\n"));
        CPPUNIT_ASSERT(contains(a, "Signed in"));
        CPPUNIT_ASSERT(contains(a, "&lt;alice&gt;@example.com"));
        CPPUNIT_ASSERT(!contains(a, "C0DE"));  // the page never shows the code
        CPPUNIT_ASSERT(!l.is_open());
        // A second request finds nothing listening.
        CPPUNIT_ASSERT_EQUAL(-1, tu::connect_loopback(port));
        CPPUNIT_ASSERT_EQUAL(ECONNREFUSED, errno);
        CPPUNIT_ASSERT(run.ticks >= 1);
    }

    void wrong_state_stops() {
        LoopbackListener l;
        std::string why;
        CPPUNIT_ASSERT_EQUAL(BindStatus::Ok, l.open(0, why));
        const int port = l.port();
        Run run = serve(l, [](int p, std::vector<std::string>& answers) {
            answers.push_back(tu::get(p, "/?code=abc&state=someone-elses"));
        });
        CPPUNIT_ASSERT_EQUAL(ListenStatus::Reply, run.result.status);
        CPPUNIT_ASSERT_EQUAL(ReplyKind::StateMismatch, run.result.kind);
        const std::string& a = run.answers.at(0);
        CPPUNIT_ASSERT_MESSAGE(a, a.rfind("HTTP/1.1 400 ", 0) == 0);
        CPPUNIT_ASSERT(contains(a, "Sign-in not completed"));
        CPPUNIT_ASSERT(contains(a, "does not match"));
        CPPUNIT_ASSERT(contains(a, "Connection: close"));
        CPPUNIT_ASSERT_EQUAL(-1, tu::connect_loopback(port));
    }

    void missing_state_stops() {
        LoopbackListener l;
        std::string why;
        CPPUNIT_ASSERT_EQUAL(BindStatus::Ok, l.open(0, why));
        Run run = serve(l, [](int p, std::vector<std::string>& answers) { answers.push_back(tu::get(p, "/?code=abc")); });
        CPPUNIT_ASSERT_EQUAL(ReplyKind::MissingState, run.result.kind);
        CPPUNIT_ASSERT(contains(run.answers.at(0), "no state"));
    }

    void error_redirect() {
        LoopbackListener l;
        std::string why;
        CPPUNIT_ASSERT_EQUAL(BindStatus::Ok, l.open(0, why));
        Run run = serve(l, [](int p, std::vector<std::string>& answers) {
            answers.push_back(tu::get(p, "/?error=access_denied&error_description=AADSTS65004%3A+User+declined"
                                         "+%3Cb%3Eto%3C%2Fb%3E+consent.&state=" + kState));
        });
        CPPUNIT_ASSERT_EQUAL(ListenStatus::Reply, run.result.status);
        CPPUNIT_ASSERT_EQUAL(ReplyKind::ProviderError, run.result.kind);
        CPPUNIT_ASSERT_EQUAL(std::string("access_denied"), run.result.reply.error);
        CPPUNIT_ASSERT_EQUAL(std::string("AADSTS65004: User declined <b>to</b> consent."),
                             run.result.reply.error_description);
        const std::string& a = run.answers.at(0);
        CPPUNIT_ASSERT(contains(a, "access_denied"));
        CPPUNIT_ASSERT(contains(a, "&lt;b&gt;to&lt;/b&gt;"));  // the provider's text, escaped
        CPPUNIT_ASSERT(!contains(a, "<b>"));
    }

    void favicon_and_others_do_not_count() {
        LoopbackListener l;
        std::string why;
        CPPUNIT_ASSERT_EQUAL(BindStatus::Ok, l.open(0, why));
        Run run = serve(l, [](int p, std::vector<std::string>& answers) {
            answers.push_back(tu::get(p, "/favicon.ico"));
            answers.push_back(tu::get(p, "/other?code=x&state=" + kState));
            answers.push_back(tu::exchange(p, "POST /?code=x&state=" + kState + " HTTP/1.1\r\nContent-Length: 0\r\n\r\n"));
            answers.push_back(tu::exchange(p, "garbage\r\n\r\n"));
            answers.push_back(tu::get(p, "/?code=the-code&state=" + kState));
        });
        CPPUNIT_ASSERT_EQUAL(ListenStatus::Reply, run.result.status);
        CPPUNIT_ASSERT_EQUAL(ReplyKind::Code, run.result.kind);
        CPPUNIT_ASSERT_EQUAL(std::string("the-code"), run.result.reply.code.reveal());
        CPPUNIT_ASSERT_EQUAL(std::size_t(5), run.answers.size());
        CPPUNIT_ASSERT_MESSAGE(run.answers[0], run.answers[0].rfind("HTTP/1.1 404 ", 0) == 0);
        CPPUNIT_ASSERT(run.answers[1].rfind("HTTP/1.1 404 ", 0) == 0);
        CPPUNIT_ASSERT(run.answers[2].rfind("HTTP/1.1 405 ", 0) == 0);
        CPPUNIT_ASSERT(run.answers[3].rfind("HTTP/1.1 400 ", 0) == 0);
        CPPUNIT_ASSERT(run.answers[4].rfind("HTTP/1.1 200 ", 0) == 0);
    }

    void idle_and_oversized_connections() {
        LoopbackListener l;
        std::string why;
        CPPUNIT_ASSERT_EQUAL(BindStatus::Ok, l.open(0, why));
        ListenerOptions opts;
        opts.read_timeout_s = 0.3;
        opts.max_request = 4096;
        auto start = std::chrono::steady_clock::now();
        Run run = serve(
            l,
            [](int p, std::vector<std::string>& answers) {
                // A spare connection that never sends (browsers open them)
                // and one that stops half-way do not hold up the answer.
                int idle = tu::connect_loopback(p);
                int half = tu::connect_loopback(p);
                ::send(half, "GET /?code=", 11, MSG_NOSIGNAL);
                // Too large a request head is refused, and does not count.
                answers.push_back(tu::get(p, "/?pad=" + std::string(8000, 'a')));
                answers.push_back(tu::get(p, "/?code=ok&state=" + kState));
                // The half request was dropped at its deadline, or at the answer.
                char c;
                ssize_t n = ::recv(half, &c, 1, 0);
                answers.push_back(n == 0 ? "closed" : "open");
                ::close(idle);
                ::close(half);
            },
            5, opts);
        CPPUNIT_ASSERT_EQUAL(ReplyKind::Code, run.result.kind);
        CPPUNIT_ASSERT_EQUAL(std::string("ok"), run.result.reply.code.reveal());
        CPPUNIT_ASSERT_MESSAGE(run.answers[0].substr(0, 60), run.answers[0].rfind("HTTP/1.1 431 ", 0) == 0);
        CPPUNIT_ASSERT(run.answers[1].rfind("HTTP/1.1 200 ", 0) == 0);
        CPPUNIT_ASSERT_EQUAL(std::string("closed"), run.answers[2]);
        CPPUNIT_ASSERT(std::chrono::steady_clock::now() - start < std::chrono::seconds(3));
    }

    void malformed_answer() {
        LoopbackListener l;
        std::string why;
        CPPUNIT_ASSERT_EQUAL(BindStatus::Ok, l.open(0, why));
        Run run = serve(l, [](int p, std::vector<std::string>& answers) {
            answers.push_back(tu::get(p, "/?code=%zz&state=" + kState));
        });
        CPPUNIT_ASSERT_EQUAL(ListenStatus::Malformed, run.result.status);
        CPPUNIT_ASSERT(contains(run.result.why, "%-escape"));
        CPPUNIT_ASSERT(run.answers[0].rfind("HTTP/1.1 400 ", 0) == 0);
        CPPUNIT_ASSERT(!l.is_open());
    }

    void timeout() {
        LoopbackListener l;
        std::string why;
        CPPUNIT_ASSERT_EQUAL(BindStatus::Ok, l.open(0, why));
        const int port = l.port();
        std::vector<long> ticks;
        auto start = std::chrono::steady_clock::now();
        ListenResult r = l.wait(kState, 0.3, [&ticks](long s) { ticks.push_back(s); });
        auto took = std::chrono::steady_clock::now() - start;
        CPPUNIT_ASSERT_EQUAL(ListenStatus::Timeout, r.status);
        CPPUNIT_ASSERT(took >= std::chrono::milliseconds(250));
        CPPUNIT_ASSERT(took < std::chrono::seconds(2));
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), ticks.size());
        CPPUNIT_ASSERT_EQUAL(1L, ticks[0]);  // 0.3 s left, rounded up
        CPPUNIT_ASSERT(!l.is_open());
        CPPUNIT_ASSERT_EQUAL(-1, tu::connect_loopback(port));
        // Waiting on a closed listener fails at once.
        CPPUNIT_ASSERT_EQUAL(ListenStatus::Failed, l.wait(kState, 5, nullptr).status);
    }

    void port_in_use() {
        LoopbackListener first, second;
        std::string why;
        CPPUNIT_ASSERT_EQUAL(BindStatus::Ok, first.open(0, why));
        CPPUNIT_ASSERT_EQUAL(BindStatus::InUse, second.open(first.port(), why));
        CPPUNIT_ASSERT_EQUAL("port " + std::to_string(first.port()) +
                                 " is in use: choose another with --port, or free it",
                             why);
        CPPUNIT_ASSERT(!second.is_open());
        CPPUNIT_ASSERT_EQUAL(0, second.port());
    }

    void fixed_port_and_bad_ports() {
        // Learn a free port, free it, and bind it by number.
        int port;
        {
            LoopbackListener probe;
            std::string why;
            CPPUNIT_ASSERT_EQUAL(BindStatus::Ok, probe.open(0, why));
            port = probe.port();
        }
        LoopbackListener l;
        std::string why;
        CPPUNIT_ASSERT_EQUAL_MESSAGE(why, BindStatus::Ok, l.open(port, why));
        CPPUNIT_ASSERT_EQUAL(port, l.port());
        LoopbackListener bad;
        CPPUNIT_ASSERT_EQUAL(BindStatus::BadPort, bad.open(65536, why));
        CPPUNIT_ASSERT(contains(why, "--port"));
        CPPUNIT_ASSERT_EQUAL(BindStatus::BadPort, bad.open(-1, why));
        if (geteuid() != 0) {
            CPPUNIT_ASSERT_EQUAL(BindStatus::Denied, bad.open(1, why));
            CPPUNIT_ASSERT(contains(why, "--port"));
        }
    }

    void page_escapes() {
        const std::string page = mailoauth::listener_page(false, "a<b", "x & \"y\" 'z' <script>");
        CPPUNIT_ASSERT(contains(page, "a&lt;b"));
        CPPUNIT_ASSERT(contains(page, "x &amp; &quot;y&quot; &#39;z&#39; &lt;script&gt;"));
        CPPUNIT_ASSERT(!contains(page, "<script>"));
        CPPUNIT_ASSERT(contains(page, "<meta charset=\"utf-8\">"));
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(LoopbackListenerTest);
