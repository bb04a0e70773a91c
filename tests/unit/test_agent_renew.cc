// Renewal ahead of need (tokenhelper/agent_renew.cc): when each account is
// due, its jitter and back-off (RenewSchedule, with the times as arguments),
// TokenBroker::renew's single flight with the requests and its "a failure
// changes nothing", and the Renewer thread with a fake clock: it renews at
// the due time, backs off, and stops without waiting for a hung renewal.
#include <cppunit/extensions/HelperMacros.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <limits>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/margin.h"
#include "tokenhelper/agent_broker.h"
#include "tokenhelper/agent_renew.h"
#include "tokenhelper/store.h"
#include "tokenhelper/tokens.h"

using namespace mailoauth;
using namespace mailoauth::agent;

namespace {

constexpr std::int64_t T0 = 1700000000;
const std::string kAlice = "alice@example.com";

// Waits (really) until pred holds, up to 5 s.
template <typename Pred>
bool eventually(Pred pred) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!pred()) {
        if (std::chrono::steady_clock::now() > end) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
}

}  // namespace

class RenewTimingTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(RenewTimingTest);
    CPPUNIT_TEST(hour_long_tokens_get_the_constants);
    CPPUNIT_TEST(short_tokens_get_scaled_times);
    CPPUNIT_TEST(renewal_comes_before_the_margin_and_is_a_real_refresh);
    CPPUNIT_TEST_SUITE_END();

public:
    void hour_long_tokens_get_the_constants() {
        for (std::int64_t lifetime : {std::int64_t(0), std::int64_t(-5), std::int64_t(3600), std::int64_t(5400)}) {
            RenewTiming t = renew_timing(lifetime);
            CPPUNIT_ASSERT_EQUAL(kRenewLeadSeconds, t.lead);
            CPPUNIT_ASSERT_EQUAL(kRenewJitterSeconds, t.jitter);
            CPPUNIT_ASSERT_EQUAL(kRenewBackoffMinSeconds, t.backoff_min);
            CPPUNIT_ASSERT_EQUAL(kRenewBackoffMaxSeconds, t.backoff_max);
            CPPUNIT_ASSERT_EQUAL(kRenewLeadSeconds + kRenewJitterSeconds + 1, renew_window(lifetime));
        }
    }

    void short_tokens_get_scaled_times() {
        struct Case {
            std::int64_t lifetime;
            long lead, jitter, backoff_min, backoff_max;
        } cases[] = {
            {1, 1, 0, 1, 1},     {6, 1, 0, 1, 3},         {12, 2, 0, 1, 6},
            {60, 10, 2, 6, 30},  {300, 50, 10, 30, 150},  {600, 60, 10, 30, 300},
            {1200, 60, 10, 30, 600},
        };
        for (const Case& c : cases) {
            RenewTiming t = renew_timing(c.lifetime);
            CPPUNIT_ASSERT_EQUAL(c.lead, t.lead);
            CPPUNIT_ASSERT_EQUAL(c.jitter, t.jitter);
            CPPUNIT_ASSERT_EQUAL(c.backoff_min, t.backoff_min);
            CPPUNIT_ASSERT_EQUAL(c.backoff_max, t.backoff_max);
        }
    }

    // For every lifetime and jitter: at the due time the token is still
    // outside the margin (requests find it fresh: nobody waits), and
    // renew_if_due with the window does refresh it (no renewal that does
    // nothing, and then the on-demand refresh at the margin after all).
    void renewal_comes_before_the_margin_and_is_a_real_refresh() {
        for (long margin : {0L, 5L, 600L}) {
            for (std::int64_t lifetime = 3; lifetime <= 7200; lifetime += (lifetime < 100 ? 1 : 97)) {
                const RenewTiming t = renew_timing(lifetime);
                for (long j = 0; j <= t.jitter; ++j) {
                    RenewSchedule s([j](long) { return j; });
                    const std::int64_t expires = T0 + lifetime;
                    s.served(kAlice, T0, expires, lifetime, margin);
                    const std::int64_t due = s.view(kAlice).due;
                    AccountRecord r;
                    r.access_token = Secret("token");
                    r.access_expires_at = expires;
                    r.access_lifetime = lifetime;
                    CPPUNIT_ASSERT(due >= T0 + lifetime / 3);  // not in the first third of its life
                    if (margin > 0) CPPUNIT_ASSERT(access_token_fresh(r, due, margin));
                    CPPUNIT_ASSERT(!access_token_fresh(r, due + renew_window(lifetime), margin));
                }
            }
        }
    }
};
CPPUNIT_TEST_SUITE_REGISTRATION(RenewTimingTest);

class RenewScheduleTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(RenewScheduleTest);
    CPPUNIT_TEST(only_served_accounts_are_renewed);
    CPPUNIT_TEST(due_before_the_margin_with_jitter);
    CPPUNIT_TEST(one_at_a_time_earliest_first);
    CPPUNIT_TEST(renewed_moves_to_the_next_token);
    CPPUNIT_TEST(failures_back_off_doubling_to_the_cap);
    CPPUNIT_TEST(backoff_has_jitter);
    CPPUNIT_TEST(permanent_failures_wait_longest);
    CPPUNIT_TEST(busy_looks_again_soon);
    CPPUNIT_TEST(a_token_from_elsewhere_ends_the_backoff);
    CPPUNIT_TEST(gone_accounts_are_forgotten);
    CPPUNIT_TEST(idle_accounts_are_forgotten);
    CPPUNIT_TEST(bounded_number_of_accounts);
    CPPUNIT_TEST(retry_now_after_sighup);
    CPPUNIT_TEST(touch_is_the_cheap_path);
    CPPUNIT_TEST(no_loop_when_a_renewal_finds_nothing_to_do);
    CPPUNIT_TEST_SUITE_END();

    std::vector<long> bounds_;
    long jitter_value_ = 0;  // -1: the bound itself
    RenewSchedule make(long recent = kRenewRecentSeconds, std::size_t max = kRenewMaxAccounts) {
        return RenewSchedule(
            [this](long bound) {
                bounds_.push_back(bound);
                return jitter_value_ < 0 ? bound : jitter_value_;
            },
            recent, max);
    }

public:
    void setUp() override {
        bounds_.clear();
        jitter_value_ = 0;
    }

    void only_served_accounts_are_renewed() {
        RenewSchedule s = make();
        std::string a;
        CPPUNIT_ASSERT(!s.take_due(T0 + 100000, a));
        CPPUNIT_ASSERT_EQUAL(std::numeric_limits<std::int64_t>::max(), s.next_due());
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), s.size());
        CPPUNIT_ASSERT(s.served(kAlice, T0, T0 + 3600, 3600, 600));
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), s.size());
        CPPUNIT_ASSERT(!s.view("bob@example.com").known);
    }

    void due_before_the_margin_with_jitter() {
        jitter_value_ = 7;
        RenewSchedule s = make();
        s.served(kAlice, T0, T0 + 3600, 3600, 600);
        // 600 s margin, 60 s lead, 7 s of the jitter (bound 10).
        CPPUNIT_ASSERT_EQUAL(T0 + 3600 - 600 - 60 - 7, s.view(kAlice).due);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), bounds_.size());
        CPPUNIT_ASSERT_EQUAL(kRenewJitterSeconds, bounds_[0]);
        CPPUNIT_ASSERT_EQUAL(s.view(kAlice).due, s.next_due());
        std::string a;
        CPPUNIT_ASSERT(!s.take_due(s.next_due() - 1, a));
        CPPUNIT_ASSERT(s.take_due(s.next_due(), a));
        CPPUNIT_ASSERT_EQUAL(kAlice, a);
        // A jitter hook out of bounds is clamped.
        jitter_value_ = 1000;
        RenewSchedule s2 = make();
        s2.served(kAlice, T0, T0 + 3600, 3600, 600);
        CPPUNIT_ASSERT_EQUAL(T0 + 3600 - 600 - 60 - 10, s2.view(kAlice).due);
        // Short-lived tokens: the margin is clamped to a third (2 s of 6),
        // the lead a sixth (1 s), no jitter.
        RenewSchedule s3 = make();
        s3.served(kAlice, T0, T0 + 6, 6, 600);
        CPPUNIT_ASSERT_EQUAL(T0 + 3, s3.view(kAlice).due);
    }

    void one_at_a_time_earliest_first() {
        RenewSchedule s = make();
        s.served("b", T0, T0 + 3600, 3600, 600);
        s.served("a", T0, T0 + 3000, 3600, 600);
        std::string a;
        const std::int64_t late = T0 + 5000;
        CPPUNIT_ASSERT(s.take_due(late, a));
        CPPUNIT_ASSERT_EQUAL(std::string("a"), a);
        CPPUNIT_ASSERT(s.view("a").running);
        CPPUNIT_ASSERT(s.take_due(late, a));
        CPPUNIT_ASSERT_EQUAL(std::string("b"), a);
        // Both running: nothing else to hand out, and nothing to wait for.
        CPPUNIT_ASSERT(!s.take_due(late, a));
        CPPUNIT_ASSERT_EQUAL(std::numeric_limits<std::int64_t>::max(), s.next_due());
    }

    void renewed_moves_to_the_next_token() {
        RenewSchedule s = make();
        s.served(kAlice, T0, T0 + 3600, 3600, 600);
        std::string a;
        const std::int64_t due = s.next_due();
        CPPUNIT_ASSERT(s.take_due(due, a));
        s.finished(kAlice, due + 1, RenewSchedule::Result::Renewed, due + 1 + 3599, 3599);
        CPPUNIT_ASSERT(!s.view(kAlice).running);
        CPPUNIT_ASSERT_EQUAL(due + 1 + 3599 - 600 - 60, s.view(kAlice).due);
        CPPUNIT_ASSERT(!s.take_due(due + 1, a));
    }

    void failures_back_off_doubling_to_the_cap() {
        RenewSchedule s = make();
        s.served(kAlice, T0, T0 + 3600, 3600, 600);
        std::int64_t now = s.next_due();
        std::vector<std::int64_t> waits;
        std::string a;
        for (int i = 0; i < 8; ++i) {
            CPPUNIT_ASSERT(s.take_due(now, a));
            s.finished(kAlice, now, RenewSchedule::Result::Failed);
            CPPUNIT_ASSERT_EQUAL(i + 1, s.view(kAlice).failures);
            const std::int64_t next = s.view(kAlice).due;
            CPPUNIT_ASSERT(!s.take_due(next - 1, a));  // nothing in between: no storm
            waits.push_back(next - now);
            now = next;
        }
        const std::vector<std::int64_t> want = {30, 60, 120, 240, 480, 600, 600, 600};
        CPPUNIT_ASSERT(want == waits);
        // Short tokens back off in proportion: 6 s tokens from 1 s to 3 s.
        RenewSchedule s2 = make();
        s2.served(kAlice, T0, T0 + 6, 6, 600);
        now = s2.next_due();
        waits.clear();
        for (int i = 0; i < 4; ++i) {
            CPPUNIT_ASSERT(s2.take_due(now, a));
            s2.finished(kAlice, now, RenewSchedule::Result::Failed);
            waits.push_back(s2.view(kAlice).due - now);
            now = s2.view(kAlice).due;
        }
        CPPUNIT_ASSERT((std::vector<std::int64_t>{1, 2, 3, 3}) == waits);
    }

    void backoff_has_jitter() {
        jitter_value_ = -1;  // always the largest
        RenewSchedule s = make();
        s.served(kAlice, T0, T0 + 3600, 3600, 600);
        std::int64_t now = s.next_due();
        std::string a;
        bounds_.clear();
        CPPUNIT_ASSERT(s.take_due(now, a));
        s.finished(kAlice, now, RenewSchedule::Result::Failed);
        CPPUNIT_ASSERT_EQUAL(now + 30 + 3, s.view(kAlice).due);  // a tenth of 30 s, rounded down
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), bounds_.size());
        CPPUNIT_ASSERT_EQUAL(3L, bounds_[0]);
    }

    void permanent_failures_wait_longest() {
        RenewSchedule s = make();
        s.served(kAlice, T0, T0 + 3600, 3600, 600);
        std::int64_t now = s.next_due();
        std::string a;
        CPPUNIT_ASSERT(s.take_due(now, a));
        s.finished(kAlice, now, RenewSchedule::Result::Permanent);
        CPPUNIT_ASSERT_EQUAL(now + 600, s.view(kAlice).due);
        CPPUNIT_ASSERT(s.view(kAlice).known);  // a new login may come
    }

    void busy_looks_again_soon() {
        RenewSchedule s = make();
        s.served(kAlice, T0, T0 + 3600, 3600, 600);
        std::int64_t now = s.next_due();
        std::string a;
        CPPUNIT_ASSERT(s.take_due(now, a));
        s.finished(kAlice, now, RenewSchedule::Result::Busy);
        CPPUNIT_ASSERT_EQUAL(now + 30, s.view(kAlice).due);
        CPPUNIT_ASSERT_EQUAL(0, s.view(kAlice).failures);
        // The fetch in flight brings a new token: the next request says so,
        // and the renewal moves to that token's time.
        CPPUNIT_ASSERT(!s.served(kAlice, now + 1, now + 1 + 3600, 3600, 600));
        CPPUNIT_ASSERT_EQUAL(now + 1 + 3600 - 660, s.view(kAlice).due);
    }

    void a_token_from_elsewhere_ends_the_backoff() {
        RenewSchedule s = make();
        s.served(kAlice, T0, T0 + 3600, 3600, 600);
        std::int64_t now = s.next_due();
        std::string a;
        for (int i = 0; i < 3; ++i) {
            CPPUNIT_ASSERT(s.take_due(now, a));
            s.finished(kAlice, now, RenewSchedule::Result::Failed);
            now = s.view(kAlice).due;
        }
        CPPUNIT_ASSERT_EQUAL(3, s.view(kAlice).failures);
        // The same token served again: still backing off.
        CPPUNIT_ASSERT(!s.served(kAlice, now - 5, T0 + 3600, 3600, 600));
        CPPUNIT_ASSERT_EQUAL(3, s.view(kAlice).failures);
        // A token refreshed on demand (or by `mailoauth token`): back to normal.
        s.served(kAlice, now - 5, now + 3000, 3600, 600);
        CPPUNIT_ASSERT_EQUAL(0, s.view(kAlice).failures);
        CPPUNIT_ASSERT_EQUAL(now + 3000 - 660, s.view(kAlice).due);
        // A token that expires sooner (e.g. a new login with short tokens)
        // makes the renewal earlier, and the thread is told.
        CPPUNIT_ASSERT(s.served(kAlice, now, now + 60, 60, 600));
        CPPUNIT_ASSERT_EQUAL(now + 60 - 20 - 10, s.view(kAlice).due);
    }

    void gone_accounts_are_forgotten() {
        RenewSchedule s = make();
        s.served(kAlice, T0, T0 + 3600, 3600, 600);
        std::string a;
        CPPUNIT_ASSERT(s.take_due(T0 + 3600, a));
        s.finished(kAlice, T0 + 3600, RenewSchedule::Result::Gone);
        CPPUNIT_ASSERT(!s.view(kAlice).known);
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), s.size());
        // Finishing an unknown account is harmless.
        s.finished("nobody", T0, RenewSchedule::Result::Failed);
    }

    void idle_accounts_are_forgotten() {
        RenewSchedule s = make(1000);
        s.served(kAlice, T0, T0 + 3600, 3600, 600);
        s.served("bob", T0, T0 + 3600, 3600, 600);
        std::string a;
        std::int64_t now = s.next_due();
        // alice is served again, bob is not; renewals go on for 1000 s.
        s.served(kAlice, now - 10, T0 + 3600, 3600, 600);
        CPPUNIT_ASSERT(s.take_due(now, a));
        CPPUNIT_ASSERT_EQUAL(kAlice, a);  // bob was last served 2940 s ago: dropped
        CPPUNIT_ASSERT(!s.view("bob").known);
        s.finished(kAlice, now, RenewSchedule::Result::Renewed, now + 3600, 3600);
        CPPUNIT_ASSERT(!s.take_due(now + 2939, a));  // alice too, when she is due
        CPPUNIT_ASSERT(!s.view(kAlice).known);
    }

    void bounded_number_of_accounts() {
        RenewSchedule s = make(kRenewRecentSeconds, 3);
        for (int i = 0; i < 3; ++i) s.served("a" + std::to_string(i), T0 + i, T0 + 3600, 3600, 600);
        s.served("a0", T0 + 10, T0 + 3600, 3600, 600);  // a1 is now the one served longest ago
        s.served("new", T0 + 11, T0 + 3600, 3600, 600);
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), s.size());
        CPPUNIT_ASSERT(!s.view("a1").known);
        CPPUNIT_ASSERT(s.view("a0").known && s.view("a2").known && s.view("new").known);
    }

    void retry_now_after_sighup() {
        RenewSchedule s = make();
        s.served(kAlice, T0, T0 + 3600, 3600, 600);
        s.served("bob", T0, T0 + 3600, 3600, 600);
        std::int64_t now = s.next_due();
        std::string a;
        CPPUNIT_ASSERT(s.take_due(now, a));
        s.finished(a, now, RenewSchedule::Result::Failed);
        CPPUNIT_ASSERT(s.take_due(now, a));
        s.finished(a, now, RenewSchedule::Result::Renewed, now + 3600, 3600);
        CPPUNIT_ASSERT(!s.take_due(now + 1, a));
        CPPUNIT_ASSERT(s.retry_now(now + 1));
        CPPUNIT_ASSERT(s.take_due(now + 1, a));
        CPPUNIT_ASSERT_EQUAL(kAlice, a);  // the one that failed, alone
        CPPUNIT_ASSERT(!s.take_due(now + 1, a));
        CPPUNIT_ASSERT(!make().retry_now(now));
    }

    void touch_is_the_cheap_path() {
        RenewSchedule s = make();
        CPPUNIT_ASSERT(!s.touch(kAlice, T0, T0 + 3600, 3600));
        s.served(kAlice, T0, T0 + 3600, 3600, 600);
        CPPUNIT_ASSERT(s.touch(kAlice, T0 + 5, T0 + 3600, 3600));
        CPPUNIT_ASSERT(!s.touch(kAlice, T0 + 5, T0 + 7200, 3600));  // another token: served() decides
        std::string a;
        CPPUNIT_ASSERT(s.take_due(T0 + 5000, a));
        CPPUNIT_ASSERT(s.touch(kAlice, T0 + 5000, T0 + 7200, 3600));  // running: its result decides
    }

    void no_loop_when_a_renewal_finds_nothing_to_do() {
        RenewSchedule s = make();
        s.served(kAlice, T0, T0 + 3600, 3600, 600);
        std::string a;
        const std::int64_t late = T0 + 3500;
        CPPUNIT_ASSERT(s.take_due(late, a));
        // "Renewed" with the same, old token (the clocks disagree).
        s.finished(kAlice, late, RenewSchedule::Result::Renewed, T0 + 3600, 3600);
        CPPUNIT_ASSERT_EQUAL(late + 30, s.view(kAlice).due);
    }
};
CPPUNIT_TEST_SUITE_REGISTRATION(RenewScheduleTest);

// TokenBroker::renew beside get(), with fake fetches.
class BrokerRenewTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(BrokerRenewTest);
    CPPUNIT_TEST(renewed_token_is_served_from_the_cache);
    CPPUNIT_TEST(no_renewal_while_a_request_fetches);
    CPPUNIT_TEST(requests_do_not_wait_for_a_renewal);
    CPPUNIT_TEST(failed_renewal_changes_nothing);
    CPPUNIT_TEST(observer_sees_served_tokens_only);
    CPPUNIT_TEST_SUITE_END();

    std::atomic<std::int64_t> now_{T0};
    std::atomic<int> fetches_{0};
    std::atomic<int> delay_ms_{0};
    int version_ = 1;

    Outcome token(int n) {
        Outcome o;
        o.status = 0;
        o.access_token = Secret("token-" + std::to_string(n) + "-0123456789");
        o.expires_at = now_ + 3600;
        o.lifetime = 3600;
        o.user = kAlice;
        o.refreshed = true;
        return o;
    }

    TokenBroker::Hooks hooks() {
        TokenBroker::Hooks h;
        h.fetch = [this](const std::string&, bool, const std::string&) {
            int n = ++fetches_;
            if (delay_ms_) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms_));
            return token(n);
        };
        h.version = [this](const std::string&) { return std::to_string(version_); };
        h.margin = [](const std::string&) { return 600L; };
        h.now = [this] { return now_.load(); };
        h.wait_limit = std::chrono::milliseconds(10000);
        return h;
    }

public:
    void renewed_token_is_served_from_the_cache() {
        TokenBroker b(hooks());
        CPPUNIT_ASSERT_EQUAL(std::string("token-1-0123456789"), b.get(kAlice, false).access_token.reveal());
        now_ += 3600 - 650;  // 50 s before the margin
        ++version_;          // renew_if_due saved the new token
        Outcome r = b.renew(kAlice, [this] { return token(100); });
        CPPUNIT_ASSERT_EQUAL(0, r.status);
        Outcome o = b.get(kAlice, false);
        CPPUNIT_ASSERT(o.source == Outcome::Source::Cache);
        CPPUNIT_ASSERT_EQUAL(std::string("token-100-0123456789"), o.access_token.reveal());
        now_ += 100;  // the old token's margin: nothing to do
        CPPUNIT_ASSERT(b.get(kAlice, false).source == Outcome::Source::Cache);
        CPPUNIT_ASSERT_EQUAL(1, fetches_.load());
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(1), b.fetches());  // renewals are not request fetches
    }

    void no_renewal_while_a_request_fetches() {
        TokenBroker b(hooks());
        delay_ms_ = 300;
        std::thread req([&] { b.get(kAlice, false); });
        CPPUNIT_ASSERT(eventually([&] { return fetches_.load() == 1; }));
        bool ran = false;
        Outcome r = b.renew(kAlice, [&] {
            ran = true;
            return token(100);
        });
        req.join();
        CPPUNIT_ASSERT(!ran);
        CPPUNIT_ASSERT(r.source == Outcome::Source::Busy);
        CPPUNIT_ASSERT_EQUAL(std::string("token-1-0123456789"), b.get(kAlice, false).access_token.reveal());
    }

    void requests_do_not_wait_for_a_renewal() {
        TokenBroker b(hooks());
        b.get(kAlice, false);
        now_ += 3600 - 590;  // just inside the margin, as a late renewal may be
        std::mutex mu;
        std::condition_variable cv;
        bool release = false, started = false;
        std::thread renewal([&] {
            b.renew(kAlice, [&] {
                std::unique_lock<std::mutex> lk(mu);
                started = true;
                cv.notify_all();
                cv.wait(lk, [&] { return release; });
                return token(100);
            });
        });
        {
            std::unique_lock<std::mutex> lk(mu);
            cv.wait(lk, [&] { return started; });
        }
        const auto t0 = std::chrono::steady_clock::now();
        Outcome o = b.get(kAlice, false);
        CPPUNIT_ASSERT(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(500));
        CPPUNIT_ASSERT(o.source == Outcome::Source::StillValid);
        CPPUNIT_ASSERT_EQUAL(std::string("token-1-0123456789"), o.access_token.reveal());
        CPPUNIT_ASSERT_EQUAL(1, fetches_.load());  // no second refresh started
        {
            std::lock_guard<std::mutex> lk(mu);
            release = true;
        }
        cv.notify_all();
        renewal.join();
        ++version_;
        // The store changed (the renewal saved): read again, the new token.
        delay_ms_ = 0;
        Outcome after = b.get(kAlice, false);
        CPPUNIT_ASSERT_EQUAL(0, after.status);
    }

    void failed_renewal_changes_nothing() {
        TokenBroker b(hooks());
        b.get(kAlice, false);
        now_ += 3600 - 650;
        for (int kind = 0; kind < 3; ++kind) {
            Outcome r = b.renew(kAlice, [&] {
                Outcome o;
                if (kind == 0) {  // temporary, the current token returned with a warning
                    o = token(50);
                    o.access_token = Secret("token-1-0123456789");
                    o.refreshed = false;
                    o.warning = "refreshing the access token failed: HTTP 503";
                } else {
                    o.status = kind == 1 ? 75 : 77;
                    o.error = kind == 1 ? "network" : "invalid_grant";
                    o.message = "it failed";
                }
                return o;
            });
            CPPUNIT_ASSERT(r.status != 0 || !r.warning.empty());
            // Still the cached token, without a fetch, and no back-off
            // (the on-demand path is as without renewal).
            Outcome o = b.get(kAlice, false);
            CPPUNIT_ASSERT(o.source == Outcome::Source::Cache);
            CPPUNIT_ASSERT_EQUAL(std::string("token-1-0123456789"), o.access_token.reveal());
        }
        CPPUNIT_ASSERT_EQUAL(1, fetches_.load());
        // At the margin the request refreshes on demand as ever.
        now_ += 60;
        Outcome o = b.get(kAlice, false);
        CPPUNIT_ASSERT(o.source == Outcome::Source::Fetched);
        CPPUNIT_ASSERT_EQUAL(2, fetches_.load());
    }

    void observer_sees_served_tokens_only() {
        TokenBroker::Hooks h = hooks();
        bool fail = false;
        auto fetch = h.fetch;
        h.fetch = [&](const std::string& a, bool f, const std::string& r) {
            if (!fail) return fetch(a, f, r);
            Outcome o;
            o.status = 77;
            o.error = "not_logged_in";
            return o;
        };
        TokenBroker b(h);
        std::vector<std::pair<std::string, std::int64_t>> seen;
        b.set_observer([&](const std::string& a, const Outcome& o) { seen.emplace_back(a, o.expires_at); });
        b.get(kAlice, false);
        b.get(kAlice, false);
        fail = true;
        b.get("bob", false);
        b.renew(kAlice, [&] { return token(9); });
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), seen.size());
        CPPUNIT_ASSERT_EQUAL(kAlice, seen[0].first);
        CPPUNIT_ASSERT_EQUAL(T0 + 3600, seen[1].second);
    }
};
CPPUNIT_TEST_SUITE_REGISTRATION(BrokerRenewTest);

// The thread, with a fake wall clock the test moves (and then pokes).
class RenewerTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(RenewerTest);
    CPPUNIT_TEST(renews_at_the_due_time_with_the_window);
    CPPUNIT_TEST(backs_off_after_failures);
    CPPUNIT_TEST(stop_does_not_wait_for_a_hung_renewal);
    CPPUNIT_TEST(stop_when_idle_is_prompt);
    CPPUNIT_TEST_SUITE_END();

    std::atomic<std::int64_t> now_ms_{T0 * 1000};
    std::atomic<int> calls_{0};
    std::atomic<long> window_{0};
    std::atomic<int> status_{0};

    Renewer::Hooks hooks() {
        Renewer::Hooks h;
        h.renew = [this](const std::string&, long window) {
            ++calls_;
            window_ = window;
            Outcome o;
            o.status = status_;
            if (o.status == 0) {
                o.access_token = Secret("renewed-0123456789");
                o.expires_at = now_ms_ / 1000 + 3600;
                o.lifetime = 3600;
                o.refreshed = true;
            } else {
                o.error = "network";
                o.message = "connection refused";
            }
            return o;
        };
        h.margin = [](const std::string&) { return 600L; };
        h.now_ms = [this] { return now_ms_.load(); };
        h.jitter = [](long) { return 0L; };
        return h;
    }

    Outcome served(std::int64_t expires_at) {
        Outcome o;
        o.status = 0;
        o.expires_at = expires_at;
        o.lifetime = 3600;
        return o;
    }

    void advance_to(Renewer& r, std::int64_t seconds) {
        now_ms_ = seconds * 1000;
        r.poke();
    }

public:
    void renews_at_the_due_time_with_the_window() {
        Renewer r(hooks());
        r.start();
        r.served(kAlice, served(T0 + 3600));
        const std::int64_t due = T0 + 3600 - 660;
        CPPUNIT_ASSERT_EQUAL(due, r.view(kAlice).due);
        advance_to(r, due - 1);
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        CPPUNIT_ASSERT_EQUAL(0, calls_.load());
        advance_to(r, due);
        CPPUNIT_ASSERT(eventually([&] { return calls_.load() == 1; }));
        CPPUNIT_ASSERT_EQUAL(kRenewLeadSeconds + kRenewJitterSeconds + 1, window_.load());
        CPPUNIT_ASSERT(eventually([&] { return r.view(kAlice).due == due + 3600 - 660; }));
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(1), r.attempts());
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(0), r.failures());
        // Serving the renewed token changes nothing; no second renewal.
        r.served(kAlice, served(due + 3600));
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        CPPUNIT_ASSERT_EQUAL(1, calls_.load());
        CPPUNIT_ASSERT(r.stop(std::chrono::milliseconds(2000)));
    }

    void backs_off_after_failures() {
        Renewer r(hooks());
        r.start();
        status_ = 75;
        r.served(kAlice, served(T0 + 3600));
        std::int64_t t = T0 + 3600 - 660;
        advance_to(r, t);
        CPPUNIT_ASSERT(eventually([&] { return r.failures() == 1; }));
        CPPUNIT_ASSERT(eventually([&] { return r.view(kAlice).due == t + 30; }));
        advance_to(r, t + 29);
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        CPPUNIT_ASSERT_EQUAL(1, calls_.load());
        advance_to(r, t + 30);
        CPPUNIT_ASSERT(eventually([&] { return r.failures() == 2; }));
        CPPUNIT_ASSERT(eventually([&] { return r.view(kAlice).due == t + 30 + 60; }));
        // SIGHUP: again now, and this time it works.
        status_ = 0;
        r.retry_now();
        CPPUNIT_ASSERT(eventually([&] { return calls_.load() == 3; }));
        CPPUNIT_ASSERT(eventually([&] { return r.view(kAlice).failures == 0 && !r.view(kAlice).running; }));
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(2), r.failures());
    }

    void stop_does_not_wait_for_a_hung_renewal() {
        Renewer::Hooks h = hooks();
        std::mutex mu;
        std::condition_variable cv;
        bool release = false;
        h.renew = [&](const std::string&, long) {
            ++calls_;
            std::unique_lock<std::mutex> lk(mu);
            cv.wait(lk, [&] { return release; });
            return Outcome();
        };
        Renewer r(h);
        r.start();
        r.served(kAlice, served(T0 + 100));  // due at once
        CPPUNIT_ASSERT(eventually([&] { return calls_.load() == 1; }));
        const auto t0 = std::chrono::steady_clock::now();
        CPPUNIT_ASSERT(!r.stop(std::chrono::milliseconds(200)));
        CPPUNIT_ASSERT(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(1500));
        {
            std::lock_guard<std::mutex> lk(mu);
            release = true;
        }
        cv.notify_all();
        CPPUNIT_ASSERT(r.stop(std::chrono::milliseconds(5000)));
        CPPUNIT_ASSERT_EQUAL(1, calls_.load());  // nothing after stop
    }

    void stop_when_idle_is_prompt() {
        Renewer r(hooks());
        r.start();
        r.served(kAlice, served(T0 + 3600));
        const auto t0 = std::chrono::steady_clock::now();
        CPPUNIT_ASSERT(r.stop(std::chrono::milliseconds(5000)));
        CPPUNIT_ASSERT(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(500));
        // Never started: nothing to wait for.
        Renewer idle(hooks());
        CPPUNIT_ASSERT(idle.stop(std::chrono::milliseconds(0)));
    }
};
CPPUNIT_TEST_SUITE_REGISTRATION(RenewerTest);
