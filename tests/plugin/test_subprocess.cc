// plugin/subprocess.cc: how run() waits for the helper's exit.  With a
// pidfd it learns of the exit from one poll; without one (a kernel before
// 5.3, forced here through the seam) it naps and still gets it right; a
// host that ignores SIGCHLD loses the status either way, promptly; and the
// deadline still kills the whole process group.
#include "plugin/subprocess.h"

#include <cppunit/extensions/HelperMacros.h>

#include <signal.h>
#include <time.h>

#include <string>

using namespace mailoauth::plugin;

namespace {

long long now_ms() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<long long>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// A child that replies, closes its stdout, then exits after delay seconds
// with status 3.
RunOptions replies_then_exits(const char* delay) {
    RunOptions o;
    o.path = "/bin/sh";
    o.argv = {"sh", "-c", std::string("printf 'a=b\\n\\n'; exec >&-; sleep ") + delay + "; exit 3"};
    o.env = {"PATH=/usr/bin:/bin"};
    o.timeout_ms = 10000;
    return o;
}

struct UsePidfd {
    explicit UsePidfd(bool on) { testing::subprocess_use_pidfd = on; }
    ~UsePidfd() { testing::subprocess_use_pidfd = true; }
};

}  // namespace

class SubprocessTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(SubprocessTest);
    CPPUNIT_TEST(testPidfdWakesOnceAtTheExit);
    CPPUNIT_TEST(testFallbackNapsAndStillGetsTheStatus);
    CPPUNIT_TEST(testIgnoredSigchldLosesTheStatusPromptly);
    CPPUNIT_TEST(testDeadlineKillsTheGroup);
    CPPUNIT_TEST_SUITE_END();

public:
    void testPidfdWakesOnceAtTheExit() {
        UsePidfd on(true);
        testing::subprocess_exit_wakeups = 0;
        RunResult r;
        const long long t0 = now_ms();
        run(replies_then_exits("0.3"), r);
        const long long took = now_ms() - t0;
        CPPUNIT_ASSERT(r.end == RunResult::End::Exited);
        CPPUNIT_ASSERT_EQUAL(3, r.exit_code);
        CPPUNIT_ASSERT_EQUAL(std::string("a=b\n\n"), r.output);
        CPPUNIT_ASSERT(took >= 300);  // the premise: it did wait for the exit
        // One look before the poll, one after the pidfd woke it (a stray
        // wake-up from stderr's end may add one): not a nap every 50 ms.
        CPPUNIT_ASSERT_MESSAGE(std::to_string(testing::subprocess_exit_wakeups.load()),
                               testing::subprocess_exit_wakeups <= 3);
    }

    void testFallbackNapsAndStillGetsTheStatus() {
        UsePidfd off(false);
        testing::subprocess_exit_wakeups = 0;
        RunResult r;
        run(replies_then_exits("0.3"), r);
        CPPUNIT_ASSERT(r.end == RunResult::End::Exited);
        CPPUNIT_ASSERT_EQUAL(3, r.exit_code);
        CPPUNIT_ASSERT_EQUAL(std::string("a=b\n\n"), r.output);
        // The growing nap (1, 2, 4 ... 50 ms) looks at least 8 times in
        // 300 ms: what the test above counts does tell the two apart.
        CPPUNIT_ASSERT_MESSAGE(std::to_string(testing::subprocess_exit_wakeups.load()),
                               testing::subprocess_exit_wakeups >= 8);
    }

    void testIgnoredSigchldLosesTheStatusPromptly() {
        for (bool pidfd : {true, false}) {
            UsePidfd use(pidfd);
            struct sigaction ign = {}, old = {};
            ign.sa_handler = SIG_IGN;
            sigaction(SIGCHLD, &ign, &old);
            RunResult r;
            const long long t0 = now_ms();
            run(replies_then_exits("0.2"), r);
            const long long took = now_ms() - t0;
            sigaction(SIGCHLD, &old, nullptr);
            // The kernel reaped the child: no status, but the reply is
            // there and the wait ended with the exit, not the deadline.
            CPPUNIT_ASSERT(r.end == RunResult::End::StatusLost);
            CPPUNIT_ASSERT_EQUAL(std::string("a=b\n\n"), r.output);
            CPPUNIT_ASSERT_MESSAGE(std::to_string(took), took >= 200 && took < 5000);
        }
    }

    void testDeadlineKillsTheGroup() {
        for (bool pidfd : {true, false}) {
            UsePidfd use(pidfd);
            RunOptions o;
            o.path = "/bin/sh";
            // A grandchild that holds nothing of ours, and the child itself
            // quiet after its reply: both are in the group the deadline kills
            // (test_plugin.py's hang test checks that none survives).
            o.argv = {"sh", "-c", "sleep 30 </dev/null >/dev/null 2>&1 & printf 'a=b\\n\\n'; exec >&-; sleep 30"};
            o.env = {"PATH=/usr/bin:/bin"};
            o.timeout_ms = 300;
            RunResult r;
            const long long t0 = now_ms();
            run(o, r);
            const long long took = now_ms() - t0;
            CPPUNIT_ASSERT(r.end == RunResult::End::TimedOut);
            CPPUNIT_ASSERT_MESSAGE(std::to_string(took), took >= 300 && took < 3000);
        }
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(SubprocessTest);
