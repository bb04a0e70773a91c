// The agent's pure parts: allow_users/allow_groups parsing and matching
// (tokenhelper/peercred.cc), socket names (agent_listen.cc), the in-process
// single flight of TokenBroker with a fake fetch and a fake clock
// (agent_broker.cc), the accept-time gate and the refusals answered from
// the accept loop (agent_gate.cc), the log's rate limit (agent_log.cc), the
// worker pool (agent_pool.cc) and the remembered user and group lookups
// (agent_server.cc Identities).
#include <cppunit/extensions/HelperMacros.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <sys/socket.h>
#include <unistd.h>

#include "common/config.h"
#include "tokenhelper/agent_broker.h"
#include "tokenhelper/agent_gate.h"
#include "tokenhelper/agent_listen.h"
#include "tokenhelper/agent_log.h"
#include "tokenhelper/agent_pool.h"
#include "tokenhelper/agent_server.h"
#include "common/protocol.h"
#include "tokenhelper/peercred.h"

using namespace mailoauth;
using namespace mailoauth::agent;

namespace {

bool fake_groups(const std::string& name, gid_t& gid) {
    if (name == "mail") { gid = 8; return true; }
    if (name == "postfix") { gid = 105; return true; }
    return false;
}

Caller caller(uid_t uid, const std::string& user, std::vector<gid_t> groups) {
    Caller c;
    c.uid = uid;
    c.user = user;
    c.gid = groups.empty() ? 0 : groups[0];
    c.groups = std::move(groups);
    return c;
}

AllowList allow(const std::string& users, const std::string& groups) {
    AllowList l;
    std::string err;
    CPPUNIT_ASSERT(parse_allow_words(users, l.users, err));
    CPPUNIT_ASSERT(parse_allow_words(groups, l.groups, err));
    return l;
}

}  // namespace

class AllowListTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(AllowListTest);
    CPPUNIT_TEST(parses_words);
    CPPUNIT_TEST(refuses_bad_words);
    CPPUNIT_TEST(matching_table);
    CPPUNIT_TEST_SUITE_END();

public:
    void parses_words() {
        struct Case {
            const char* text;
            std::vector<std::string> words;
        } cases[] = {
            {"", {}},
            {"   ", {}},
            {"postfix", {"postfix"}},
            {"postfix,mail", {"postfix", "mail"}},
            {" postfix , 107\tmail ", {"postfix", "107", "mail"}},
            {",,a,,", {"a"}},
            {"www-data host$ a.b_c", {"www-data", "host$", "a.b_c"}},
            {"4294967295", {"4294967295"}},
        };
        for (const auto& c : cases) {
            std::vector<std::string> out;
            std::string err;
            CPPUNIT_ASSERT_MESSAGE(c.text, parse_allow_words(c.text, out, err));
            CPPUNIT_ASSERT_MESSAGE(c.text, out == c.words);
        }
    }

    void refuses_bad_words() {
        const char* cases[] = {
            "bad;name", "-dash", "a/b", "quote\"", "$", "a$b", "12345678901",
            "x\xc3\xa9", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "ok, b@d",
        };
        for (const char* c : cases) {
            std::vector<std::string> out{"left over"};
            std::string err;
            CPPUNIT_ASSERT_MESSAGE(c, !parse_allow_words(c, out, err));
            CPPUNIT_ASSERT_MESSAGE(c, out.empty());
            CPPUNIT_ASSERT_MESSAGE(c, !err.empty());
        }
    }

    void matching_table() {
        const uid_t self = 999;
        struct Case {
            const char* users;
            const char* groups;
            Caller who;
            bool allowed;
        } cases[] = {
            // Root and the agent's own user, whatever the lists say.
            {"", "", caller(0, "root", {0}), true},
            {"", "", caller(self, "mailoauth", {999}), true},
            // Nothing listed: nobody else.
            {"", "", caller(107, "postfix", {105}), false},
            // By name, by uid.
            {"postfix", "", caller(107, "postfix", {105}), true},
            {"107", "", caller(107, "postfix", {105}), true},
            {"alice, 107", "", caller(107, "", {105}), true},
            {"postfix", "", caller(108, "postfixx", {105}), false},
            {"108", "", caller(107, "postfix", {105}), false},
            // A caller without a passwd entry matches no name.
            {"postfix", "", caller(107, "", {105}), false},
            // By group name (resolved) or gid, primary or supplementary.
            {"", "postfix", caller(107, "postfix", {105}), true},
            {"", "mail", caller(1000, "alice", {1000, 8}), true},
            {"", "8", caller(1000, "alice", {1000, 8}), true},
            {"", "mail", caller(1000, "alice", {1000}), false},
            {"", "no-such-group", caller(1000, "alice", {1000}), false},
            // A gid number that is not the uid number.
            {"", "107", caller(107, "postfix", {105}), false},
            {"bob", "mail", caller(1000, "alice", {1000, 8}), true},
        };
        int i = 0;
        for (const auto& c : cases) {
            Decision d = check_caller(allow(c.users, c.groups), c.who, self, fake_groups);
            std::string msg = "case " + std::to_string(i++) + ": " + d.why;
            CPPUNIT_ASSERT_EQUAL_MESSAGE(msg, c.allowed, d.allowed);
            CPPUNIT_ASSERT_MESSAGE(msg, !d.why.empty());
        }
        Decision d = check_caller(AllowList(), caller(107, "postfix", {105}), self, fake_groups);
        CPPUNIT_ASSERT(d.why.find("no allow_users") != std::string::npos);
        CPPUNIT_ASSERT_EQUAL(std::string("uid 107 (postfix)"), describe(caller(107, "postfix", {})));
        CPPUNIT_ASSERT_EQUAL(std::string("uid 4711 (no passwd entry)"), describe(caller(4711, "", {})));
    }
};
CPPUNIT_TEST_SUITE_REGISTRATION(AllowListTest);

class SocketNameTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(SocketNameTest);
    CPPUNIT_TEST(names);
    CPPUNIT_TEST_SUITE_END();

public:
    void names() {
        SocketName n;
        std::string err;
        CPPUNIT_ASSERT(parse_socket_name("@mailoauth-agent", n, err));
        CPPUNIT_ASSERT(n.abstract);
        CPPUNIT_ASSERT_EQUAL('\0', n.addr.sun_path[0]);
        CPPUNIT_ASSERT_EQUAL(std::string("mailoauth-agent"), std::string(n.addr.sun_path + 1, 15));
        CPPUNIT_ASSERT_EQUAL(static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + 16), n.len);

        CPPUNIT_ASSERT(parse_socket_name("/run/mailoauth/agent.sock", n, err));
        CPPUNIT_ASSERT(!n.abstract);
        CPPUNIT_ASSERT_EQUAL(std::string("/run/mailoauth/agent.sock"), std::string(n.addr.sun_path));

        CPPUNIT_ASSERT(parse_socket_name("@" + std::string(107, 'x'), n, err));
        CPPUNIT_ASSERT(parse_socket_name("/" + std::string(106, 'x'), n, err));
        const std::string bad[] = {
            "", "@", "relative", "mailoauth-agent", "@with space", std::string("@nul\0x", 6),
            "@tab\there", "@" + std::string(108, 'x'), "/" + std::string(107, 'x'),
        };
        for (const auto& b : bad) {
            err.clear();
            CPPUNIT_ASSERT_MESSAGE(b, !parse_socket_name(b, n, err));
            CPPUNIT_ASSERT_MESSAGE(b, !err.empty());
        }
    }
};
CPPUNIT_TEST_SUITE_REGISTRATION(SocketNameTest);

// TokenBroker with a fake fetch: time is a counter the test moves.
class BrokerTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(BrokerTest);
    CPPUNIT_TEST(concurrent_callers_share_one_fetch);
    CPPUNIT_TEST(still_valid_token_served_during_slow_fetch);
    CPPUNIT_TEST(cached_until_margin);
    CPPUNIT_TEST(store_change_invalidates_cache);
    CPPUNIT_TEST(failure_shared_then_backoff);
    CPPUNIT_TEST(force_needs_a_newer_token);
    CPPUNIT_TEST(rejected_tail_names_the_token);
    CPPUNIT_TEST(relogin_drops_cache);
    CPPUNIT_TEST(forced_refresh_is_rate_limited);
    CPPUNIT_TEST(cached_answers_only_what_get_would_at_once);
    CPPUNIT_TEST_SUITE_END();

    std::atomic<std::int64_t> now_{1000000};
    std::atomic<int> fetches_{0};
    std::atomic<int> delay_ms_{0};
    std::atomic<int> fail_status_{0};
    std::atomic<int> version_{1};
    std::atomic<bool> last_force_{false};

    TokenBroker::Hooks hooks() {
        TokenBroker::Hooks h;
        h.fetch = [this](const std::string&, bool force, const std::string&) {
            int n = ++fetches_;
            last_force_ = force;
            if (delay_ms_) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms_));
            Outcome o;
            if (fail_status_) {
                o.status = fail_status_;
                o.error = "failed";
                o.message = "it failed";
                return o;
            }
            o.status = 0;
            o.access_token = Secret("token-" + std::to_string(n) + "-0123456789");
            o.expires_at = now_ + 3600;
            o.user = "alice@example.com";
            o.refreshed = true;
            return o;
        };
        h.version = [this](const std::string&) { return std::to_string(version_.load()); };
        h.margin = [](const std::string&) { return 600L; };
        h.now = [this] { return now_.load(); };
        h.wait_limit = std::chrono::milliseconds(10000);
        return h;
    }

public:
    void concurrent_callers_share_one_fetch() {
        TokenBroker b(hooks());
        delay_ms_ = 200;
        std::vector<std::thread> threads;
        std::atomic<int> ok{0};
        for (int i = 0; i < 50; ++i)
            threads.emplace_back([&] {
                Outcome o = b.get("alice", false);
                if (o.status == 0 && o.access_token.reveal() == "token-1-0123456789") ++ok;
            });
        for (auto& t : threads) t.join();
        CPPUNIT_ASSERT_EQUAL(50, ok.load());
        CPPUNIT_ASSERT_EQUAL(1, fetches_.load());
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(1), b.fetches());
    }

    void still_valid_token_served_during_slow_fetch() {
        TokenBroker b(hooks());
        CPPUNIT_ASSERT_EQUAL(std::string("token-1-0123456789"), b.get("alice", false).access_token.reveal());
        now_ += 3600 - 300;  // inside the margin, 5 minutes left
        delay_ms_ = 500;
        std::string slow_token;
        std::thread slow([&] { slow_token = b.get("alice", false).access_token.reveal(); });
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        auto t0 = std::chrono::steady_clock::now();
        Outcome o = b.get("alice", false);
        auto waited = std::chrono::steady_clock::now() - t0;
        CPPUNIT_ASSERT_EQUAL(0, o.status);
        CPPUNIT_ASSERT_EQUAL(std::string("token-1-0123456789"), o.access_token.reveal());
        CPPUNIT_ASSERT(o.source == Outcome::Source::StillValid);
        CPPUNIT_ASSERT(waited < std::chrono::milliseconds(200));
        slow.join();
        CPPUNIT_ASSERT_EQUAL(std::string("token-2-0123456789"), slow_token);
        CPPUNIT_ASSERT_EQUAL(2, fetches_.load());
    }

    void cached_until_margin() {
        TokenBroker b(hooks());
        b.get("alice", false);
        now_ += 2000;
        Outcome o = b.get("alice", false);
        CPPUNIT_ASSERT(o.source == Outcome::Source::Cache);
        CPPUNIT_ASSERT_EQUAL(1, fetches_.load());
        now_ += 1001;  // 599 s left: inside the 600 s margin
        o = b.get("alice", false);
        CPPUNIT_ASSERT(o.source == Outcome::Source::Fetched);
        CPPUNIT_ASSERT_EQUAL(2, fetches_.load());
        // Accounts are separate.
        b.get("bob", false);
        CPPUNIT_ASSERT_EQUAL(3, fetches_.load());
    }

    // The accept loop's fast path asks cached(): yes only for a token get()
    // would serve from its cache; every other case is left to get(), and
    // cached() itself never fetches or waits.
    void cached_answers_only_what_get_would_at_once() {
        TokenBroker b(hooks());
        std::vector<std::string> observed;
        b.set_observer([&](const std::string& account, const Outcome&) { observed.push_back(account); });
        Outcome o;
        CPPUNIT_ASSERT(!b.cached("alice", o));  // never asked: nothing cached
        CPPUNIT_ASSERT_EQUAL(0, fetches_.load());
        b.get("alice", false);
        CPPUNIT_ASSERT(b.cached("alice", o));
        CPPUNIT_ASSERT_EQUAL(0, o.status);
        CPPUNIT_ASSERT_EQUAL(std::string("token-1-0123456789"), o.access_token.reveal());
        CPPUNIT_ASSERT_EQUAL(std::string("alice@example.com"), o.user);
        CPPUNIT_ASSERT(o.source == Outcome::Source::Cache);
        // The renewal hears of tokens served this way too.
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), observed.size());
        CPPUNIT_ASSERT(!b.cached("bob", o));
        // Inside the margin: get() would refresh, so not here.
        now_ += 3600 - 599;
        CPPUNIT_ASSERT(!b.cached("alice", o));
        CPPUNIT_ASSERT_EQUAL(1, fetches_.load());
        b.get("alice", false);  // refreshed
        CPPUNIT_ASSERT(b.cached("alice", o));
        CPPUNIT_ASSERT_EQUAL(std::string("token-2-0123456789"), o.access_token.reveal());
        // The store changed (login, logout, another refresher): not served
        // again from memory, and get() goes to the store.
        ++version_;
        CPPUNIT_ASSERT(!b.cached("alice", o));
        CPPUNIT_ASSERT(!b.cached("alice", o));
        CPPUNIT_ASSERT(b.get("alice", false).source == Outcome::Source::Fetched);
        CPPUNIT_ASSERT_EQUAL(3, fetches_.load());
    }

    void store_change_invalidates_cache() {
        TokenBroker b(hooks());
        b.get("alice", false);
        ++version_;  // e.g. mailoauth login or logout by hand
        CPPUNIT_ASSERT(b.get("alice", false).source == Outcome::Source::Fetched);
        CPPUNIT_ASSERT_EQUAL(2, fetches_.load());
    }

    void failure_shared_then_backoff() {
        TokenBroker b(hooks());
        fail_status_ = 75;
        delay_ms_ = 200;
        std::vector<std::thread> threads;
        std::atomic<int> temp{0};
        for (int i = 0; i < 10; ++i)
            threads.emplace_back([&] {
                if (b.get("alice", false).status == 75) ++temp;
            });
        for (auto& t : threads) t.join();
        CPPUNIT_ASSERT_EQUAL(10, temp.load());
        CPPUNIT_ASSERT_EQUAL(1, fetches_.load());
        delay_ms_ = 0;
        // Within the pause: the same answer, no new attempt.
        Outcome o = b.get("alice", false);
        CPPUNIT_ASSERT_EQUAL(75, o.status);
        CPPUNIT_ASSERT(o.source == Outcome::Source::Backoff);
        CPPUNIT_ASSERT_EQUAL(1, fetches_.load());
        // After it, a new attempt.
        fail_status_ = 0;
        now_ += kRetryAfterFailure;
        CPPUNIT_ASSERT_EQUAL(0, b.get("alice", false).status);
        CPPUNIT_ASSERT_EQUAL(2, fetches_.load());
    }

    void force_needs_a_newer_token() {
        TokenBroker b(hooks());
        b.get("alice", false);
        now_ += kMinForcedRefreshInterval;
        Outcome o = b.get("alice", true);
        CPPUNIT_ASSERT_EQUAL(std::string("token-2-0123456789"), o.access_token.reveal());
        CPPUNIT_ASSERT(last_force_.load());
        CPPUNIT_ASSERT_EQUAL(2, fetches_.load());
        // Many callers rejecting the same token: one forced fetch.
        now_ += kMinForcedRefreshInterval;
        delay_ms_ = 200;
        std::vector<std::thread> threads;
        std::atomic<int> got3{0};
        for (int i = 0; i < 20; ++i)
            threads.emplace_back([&] {
                if (b.get("alice", true).access_token.reveal() == "token-3-0123456789") ++got3;
            });
        for (auto& t : threads) t.join();
        CPPUNIT_ASSERT_EQUAL(20, got3.load());
        CPPUNIT_ASSERT_EQUAL(3, fetches_.load());
    }

    void rejected_tail_names_the_token() {
        TokenBroker b(hooks());
        b.get("alice", false);                       // token-1 cached
        // The refused token is not the cached one: it was replaced already.
        Outcome o = b.get("alice", true, protocol::token_id("token-0-0123456789"));
        CPPUNIT_ASSERT_EQUAL(std::string("token-1-0123456789"), o.access_token.reveal());
        CPPUNIT_ASSERT_EQUAL(1, fetches_.load());
        // The refused token is the cached one (named by its hash): refresh.
        now_ += kMinForcedRefreshInterval;
        o = b.get("alice", true, protocol::token_id("token-1-0123456789"));
        CPPUNIT_ASSERT_EQUAL(std::string("token-2-0123456789"), o.access_token.reveal());
        CPPUNIT_ASSERT_EQUAL(2, fetches_.load());
    }

    void relogin_drops_cache() {
        TokenBroker b(hooks());
        b.get("alice", false);
        fail_status_ = 77;
        now_ += kMinForcedRefreshInterval;
        CPPUNIT_ASSERT_EQUAL(77, b.get("alice", true).status);
        // The old token is not handed out any more.
        now_ += 3600 - 300;
        Outcome o = b.get("alice", false);
        CPPUNIT_ASSERT_EQUAL(77, o.status);
        CPPUNIT_ASSERT(o.access_token.empty());
    }

    void forced_refresh_is_rate_limited() {
        TokenBroker b(hooks());
        b.get("alice", false);                       // token-1, refreshed now
        // The caller says the current token was refused, right after it
        // was refreshed: no new refresh, the same token and a warning.
        for (long later : {0L, 1L, kMinForcedRefreshInterval - 1}) {
            const std::int64_t saved = now_;
            now_ += later;
            for (const std::string& tail : {protocol::token_id("token-1-0123456789"), std::string()}) {
                Outcome o = b.get("alice", true, tail);
                CPPUNIT_ASSERT_EQUAL(0, o.status);
                CPPUNIT_ASSERT_EQUAL(std::string("token-1-0123456789"), o.access_token.reveal());
                CPPUNIT_ASSERT(o.source == Outcome::Source::RateLimited);
                CPPUNIT_ASSERT(o.warning.find("refreshed " + std::to_string(later) + " s ago") != std::string::npos);
                CPPUNIT_ASSERT(o.warning.find("token-") == std::string::npos);
            }
            now_ = saved;
        }
        CPPUNIT_ASSERT_EQUAL(1, fetches_.load());
        // A refused token that is not the current one: the current one,
        // no warning (it was replaced, not refreshed in a loop).
        Outcome o = b.get("alice", true, protocol::token_id("token-0-0123456789"));
        CPPUNIT_ASSERT(o.source == Outcome::Source::Cache);
        CPPUNIT_ASSERT(o.warning.empty());
        // Once the interval has passed, the forced refresh happens.
        now_ += kMinForcedRefreshInterval;
        o = b.get("alice", true, protocol::token_id("token-1-0123456789"));
        CPPUNIT_ASSERT(o.source == Outcome::Source::Fetched);
        CPPUNIT_ASSERT_EQUAL(std::string("token-2-0123456789"), o.access_token.reveal());
        CPPUNIT_ASSERT_EQUAL(2, fetches_.load());
        // A token served from the store, not refreshed here, is not limited.
        auto h = hooks();
        h.fetch = [this](const std::string&, bool force, const std::string&) {
            ++fetches_;
            Outcome r;
            r.status = 0;
            r.access_token = Secret(force ? "forced-0123456789" : "stored-0123456789");
            r.expires_at = now_ + 3600;
            r.refreshed = force;
            return r;
        };
        TokenBroker store_first(h);
        store_first.get("alice", false);
        CPPUNIT_ASSERT_EQUAL(std::string("forced-0123456789"), store_first.get("alice", true).access_token.reveal());
        CPPUNIT_ASSERT(store_first.get("alice", true).source == Outcome::Source::RateLimited);
    }
};
CPPUNIT_TEST_SUITE_REGISTRATION(BrokerTest);

// The accept-time gate with fake user and group databases.
class GateTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(GateTest);
    CPPUNIT_TEST(union_of_every_allow_list);
    CPPUNIT_TEST(group_lookups_are_cached);
    CPPUNIT_TEST(refusals_reply_and_are_bounded);
    CPPUNIT_TEST(log_limiter);
    CPPUNIT_TEST_SUITE_END();

    int group_lookups_ = 0;

    GateLookups lookups() {
        GateLookups l;
        l.user = [](const std::string& name, uid_t& uid) {
            if (name == "postfix") { uid = 107; return true; }
            if (name == "alice") { uid = 1000; return true; }
            return false;
        };
        l.group = fake_groups;
        l.groups_of = [this](uid_t uid, std::vector<gid_t>& groups) {
            ++group_lookups_;
            if (uid == 1001) { groups = {1001, 8}; return true; }     // bob, in group mail
            if (uid == 1002) { groups = {1002}; return true; }        // carol
            return false;
        };
        return l;
    }

    static config::Config conf(const std::string& text) {
        config::Config c;
        config::Error e;
        CPPUNIT_ASSERT_MESSAGE(e.describe(), config::parse(text, "test.conf", c, e));
        return c;
    }

public:
    void union_of_every_allow_list() {
        Gate g;
        g.resolve(conf("allow_users = 4242\n[account a@example.com]\nallow_users = postfix, no-such-user\n"
                       "[account b@example.com]\nallow_groups = mail 77\n"),
                  999, lookups());
        struct Case {
            uid_t uid;
            gid_t gid;
            bool admitted;
        } cases[] = {
            {0, 0, true},          // root
            {999, 999, true},      // the agent's own user
            {4242, 4242, true},    // global allow_users, by uid
            {107, 105, true},      // an account's allow_users, by name
            {1001, 1001, true},    // in group mail by the databases
            {5000, 77, true},      // primary gid listed, no passwd entry
            {1002, 1002, false},   // carol: in no list
            {65534, 65534, false}, // nobody
            {1000, 1000, false},   // alice exists but is listed nowhere
        };
        for (const auto& c : cases)
            CPPUNIT_ASSERT_EQUAL_MESSAGE("uid " + std::to_string(c.uid), c.admitted, g.admits(c.uid, c.gid, 100));
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), g.uid_count());   // 4242, postfix
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), g.gid_count());   // mail, 77

        // No allow list at all: root and the agent's own user only.
        Gate none;
        none.resolve(conf(""), 999, lookups());
        CPPUNIT_ASSERT(none.admits(0, 0, 100));
        CPPUNIT_ASSERT(none.admits(999, 999, 100));
        CPPUNIT_ASSERT(!none.admits(107, 105, 100));
        CPPUNIT_ASSERT(!none.admits(1001, 8, 100));
    }

    void group_lookups_are_cached() {
        Gate g;
        g.resolve(conf("allow_groups = mail\n"), 999, lookups());
        group_lookups_ = 0;
        for (int i = 0; i < 300; ++i) CPPUNIT_ASSERT(!g.admits(1002, 1002, 100));
        CPPUNIT_ASSERT_EQUAL(1, group_lookups_);
        CPPUNIT_ASSERT(g.admits(1001, 1001, 100));
        CPPUNIT_ASSERT_EQUAL(2, group_lookups_);
        // Looked up again once the cached answer is old, and after SIGHUP.
        CPPUNIT_ASSERT(!g.admits(1002, 1002, 100 + kGateCacheSeconds));
        CPPUNIT_ASSERT_EQUAL(3, group_lookups_);
        g.resolve(conf("allow_groups = mail\n"), 999, lookups());
        CPPUNIT_ASSERT(!g.admits(1002, 1002, 101 + kGateCacheSeconds));
        CPPUNIT_ASSERT_EQUAL(4, group_lookups_);
    }

    static std::string read_all(int fd) {
        std::string out;
        char buf[4096];
        ssize_t n;
        while ((n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0) out.append(buf, static_cast<std::size_t>(n));
        return out;
    }

    void refusals_reply_and_are_bounded() {
        Refusals r;
        const std::string reply = refusal_reply("forbidden", "not allowed by mailoauth.conf", 78);
        CPPUNIT_ASSERT_EQUAL(std::string("error=forbidden\nerror_description=not allowed by mailoauth.conf\n"
                                         "status=78\n\n"),
                             reply);
        std::vector<int> callers;
        for (std::size_t i = 0; i < kMaxLingeringPerUid + 2; ++i) {
            int sv[2];
            CPPUNIT_ASSERT_EQUAL(0, ::socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
            CPPUNIT_ASSERT(::send(sv[0], "version=1\n", 10, 0) == 10);   // a partial request
            r.add(sv[1], 65534, reply, 1000);
            callers.push_back(sv[0]);
        }
        // The first few of one uid linger; the others were closed at once.
        CPPUNIT_ASSERT_EQUAL(kMaxLingeringPerUid, r.size());
        for (int fd : callers) CPPUNIT_ASSERT_EQUAL(reply, read_all(fd));
        char c;
        CPPUNIT_ASSERT_EQUAL(ssize_t(0), ::recv(callers.back(), &c, 1, MSG_DONTWAIT));   // closed
        // A caller that closes is let go; the rest expire.
        ::close(callers[0]);
        std::vector<struct pollfd> fds;
        r.poll_entries(fds);
        CPPUNIT_ASSERT_EQUAL(kMaxLingeringPerUid, fds.size());
        CPPUNIT_ASSERT(::poll(fds.data(), fds.size(), 1000) >= 1);
        CPPUNIT_ASSERT_EQUAL(kRefusalLingerMs, r.timeout_ms(1000));
        r.handle(fds, 0, 1000);
        CPPUNIT_ASSERT_EQUAL(kMaxLingeringPerUid - 1, r.size());
        fds.clear();
        r.poll_entries(fds);
        r.handle(fds, 0, 1000 + kRefusalLingerMs);
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), r.size());
        CPPUNIT_ASSERT_EQUAL(-1, r.timeout_ms(2000));
        for (std::size_t i = 1; i < callers.size(); ++i) {
            CPPUNIT_ASSERT_EQUAL(ssize_t(0), ::recv(callers[i], &c, 1, MSG_DONTWAIT));
            ::close(callers[i]);
        }
    }

    void log_limiter() {
        LogLimiter l(60, 3);
        std::uint64_t held = 99;
        CPPUNIT_ASSERT(l.allow("gate:65534", 1000, held));
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(0), held);
        for (int i = 0; i < 299; ++i) CPPUNIT_ASSERT(!l.allow("gate:65534", 1000 + i % 60, held));
        CPPUNIT_ASSERT(l.allow("gate:107", 1001, held));    // another key is separate
        CPPUNIT_ASSERT(l.allow("gate:65534", 1060, held));
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(299), held);
        CPPUNIT_ASSERT(!l.allow("gate:65534", 1061, held));
        // Bounded: new keys push out quiet ones.
        CPPUNIT_ASSERT(l.allow("k1", 2000, held));
        CPPUNIT_ASSERT(l.allow("k2", 2000, held));
        CPPUNIT_ASSERT(l.allow("k3", 2000, held));
        CPPUNIT_ASSERT(l.allow("k4", 2000, held));
        CPPUNIT_ASSERT(!l.allow("k4", 2001, held));
    }
};
CPPUNIT_TEST_SUITE_REGISTRATION(GateTest);

class PoolTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(PoolTest);
    CPPUNIT_TEST(steady_load_reuses_threads);
    CPPUNIT_TEST(blocked_jobs_do_not_hold_up_others);
    CPPUNIT_TEST(extra_threads_end_when_idle);
    CPPUNIT_TEST(destructor_waits_for_running_jobs);
    CPPUNIT_TEST_SUITE_END();

    static void wait_until(const std::function<bool()>& cond) {
        for (int i = 0; i < 5000 && !cond(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }

public:
    // One request after another: the same thread serves them all (a thread
    // per connection would start 200).
    void steady_load_reuses_threads() {
        WorkerPool pool(256);
        std::atomic<int> done{0};
        for (int i = 0; i < 200; ++i) {
            CPPUNIT_ASSERT(pool.submit([&] { ++done; }));
            wait_until([&] { return done == i + 1; });
        }
        CPPUNIT_ASSERT_EQUAL(200, done.load());
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), pool.started());
    }

    // Jobs that wait (a slow refresh) do not make a later job queue behind
    // them: the pool grows, up to its maximum.
    void blocked_jobs_do_not_hold_up_others() {
        WorkerPool pool(64, 2, 30);
        std::mutex mu;
        std::condition_variable cv;
        bool open = false;
        std::atomic<int> waiting{0}, done{0};
        for (int i = 0; i < 20; ++i)
            CPPUNIT_ASSERT(pool.submit([&] {
                ++waiting;
                std::unique_lock<std::mutex> lk(mu);
                cv.wait(lk, [&] { return open; });
                ++done;
            }));
        wait_until([&] { return waiting == 20; });
        CPPUNIT_ASSERT_EQUAL(20, waiting.load());
        std::atomic<bool> quick{false};
        CPPUNIT_ASSERT(pool.submit([&] { quick = true; }));
        wait_until([&] { return quick.load(); });
        CPPUNIT_ASSERT(quick);
        CPPUNIT_ASSERT_EQUAL(std::size_t(21), pool.started());
        {
            std::lock_guard<std::mutex> lk(mu);
            open = true;
        }
        cv.notify_all();
        wait_until([&] { return done == 20; });
        CPPUNIT_ASSERT_EQUAL(20, done.load());
    }

    // After a burst, threads beyond keep_idle end once idle for
    // idle_seconds; keep_idle stay.
    void extra_threads_end_when_idle() {
        WorkerPool pool(64, 2, 1);
        std::atomic<int> running{0};
        std::atomic<bool> go{false};
        for (int i = 0; i < 6; ++i)
            pool.submit([&] {
                ++running;
                while (!go) std::this_thread::sleep_for(std::chrono::milliseconds(1));
            });
        wait_until([&] { return running == 6; });
        CPPUNIT_ASSERT_EQUAL(std::size_t(6), pool.threads());
        go = true;
        wait_until([&] { return pool.threads() == 2; });
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), pool.threads());
    }

    void destructor_waits_for_running_jobs() {
        std::atomic<int> done{0};
        {
            WorkerPool pool(8);
            for (int i = 0; i < 8; ++i)
                pool.submit([&] {
                    std::this_thread::sleep_for(std::chrono::milliseconds(50));
                    ++done;
                });
        }
        CPPUNIT_ASSERT_EQUAL(8, done.load());
    }
};
CPPUNIT_TEST_SUITE_REGISTRATION(PoolTest);

class IdentitiesTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(IdentitiesTest);
    CPPUNIT_TEST(lookups_are_remembered_for_a_while);
    CPPUNIT_TEST(remembered_only_never_looks_up);
    CPPUNIT_TEST(caller_from_a_socket);
    CPPUNIT_TEST_SUITE_END();

    // uid 107 is postfix (groups 113 and 8); no other uid has an entry.
    static Identities::Lookups counting_lookups(int& user_calls, int& group_calls) {
        return Identities::Lookups{
            [&user_calls](uid_t uid, std::string& user, std::vector<gid_t>& groups) {
                ++user_calls;
                if (uid != 107) return false;
                user = "postfix";
                groups = {113, 8};
                return true;
            },
            [&group_calls](const std::string& name, gid_t& gid) {
                ++group_calls;
                return fake_groups(name, gid);
            }};
    }

public:
    void lookups_are_remembered_for_a_while() {
        int user_calls = 0, group_calls = 0;
        Identities ids(counting_lookups(user_calls, group_calls));
        Caller c;
        c.uid = 107;
        c.gid = 113;
        ids.complete(c, 1000);
        CPPUNIT_ASSERT_EQUAL(std::string("postfix"), c.user);
        CPPUNIT_ASSERT(c.groups == std::vector<gid_t>({113, 8}));  // primary first, once
        for (int i = 0; i < 100; ++i) ids.complete(c, 1000 + i % kIdentitySeconds);
        CPPUNIT_ASSERT_EQUAL(1, user_calls);
        CPPUNIT_ASSERT(c.groups == std::vector<gid_t>({113, 8}));
        // No passwd entry: remembered too, and the caller keeps only its gid.
        Caller n;
        n.uid = 4711;
        n.gid = 4711;
        ids.complete(n, 1000);
        ids.complete(n, 1001);
        CPPUNIT_ASSERT_EQUAL(2, user_calls);
        CPPUNIT_ASSERT(n.user.empty());
        CPPUNIT_ASSERT(n.groups == std::vector<gid_t>({4711}));
        gid_t g = 0;
        CPPUNIT_ASSERT(ids.group("mail", g, 1000) && g == 8);
        CPPUNIT_ASSERT(ids.group("mail", g, 1030) && g == 8);
        CPPUNIT_ASSERT(!ids.group("nosuch", g, 1000));
        CPPUNIT_ASSERT(!ids.group("nosuch", g, 1001));
        CPPUNIT_ASSERT_EQUAL(2, group_calls);
        // Looked up again once kIdentitySeconds have passed, when the clock
        // went back, and after forget() (SIGHUP).
        ids.complete(c, 1000 + kIdentitySeconds);
        CPPUNIT_ASSERT_EQUAL(3, user_calls);
        ids.complete(c, 999);
        CPPUNIT_ASSERT_EQUAL(4, user_calls);
        ids.forget();
        ids.complete(c, 999);
        CPPUNIT_ASSERT_EQUAL(5, user_calls);
        CPPUNIT_ASSERT(ids.group("mail", g, 1030));
        CPPUNIT_ASSERT_EQUAL(3, group_calls);
        // The decision is the same as with fresh lookups.
        Decision d = check_caller(allow({}, "mail"), c, 0, [&](const std::string& name, gid_t& gid) {
            return ids.group(name, gid, 1030);
        });
        CPPUNIT_ASSERT(d.allowed);
    }

    // The accept loop's fast path asks remembered() and remembered_group():
    // what a worker looked up, never a lookup of their own.
    void remembered_only_never_looks_up() {
        int user_calls = 0, group_calls = 0;
        Identities ids(counting_lookups(user_calls, group_calls));
        struct ucred cred = {4242, 107, 113};
        Caller c;
        gid_t g = 0;
        bool known = true;
        CPPUNIT_ASSERT(!ids.remembered(cred, c, 1000));
        CPPUNIT_ASSERT(!ids.remembered_group("mail", g, known, 1000));
        CPPUNIT_ASSERT_EQUAL(0, user_calls);
        CPPUNIT_ASSERT_EQUAL(0, group_calls);
        Caller looked;
        ids.caller(cred, looked, 1000);
        ids.group("mail", g, 1000);
        ids.group("nosuch", g, 1000);
        CPPUNIT_ASSERT(ids.remembered(cred, c, 1010));
        CPPUNIT_ASSERT_EQUAL(static_cast<pid_t>(4242), c.pid);
        CPPUNIT_ASSERT_EQUAL(std::string("postfix"), c.user);
        CPPUNIT_ASSERT(c.groups == looked.groups);
        CPPUNIT_ASSERT(ids.remembered_group("mail", g, known, 1010) && known && g == 8);
        CPPUNIT_ASSERT(ids.remembered_group("nosuch", g, known, 1010) && !known);
        // Old entries are not remembered (a worker looks them up again).
        CPPUNIT_ASSERT(!ids.remembered(cred, c, 1000 + kIdentitySeconds));
        CPPUNIT_ASSERT(!ids.remembered_group("mail", g, known, 1000 + kIdentitySeconds));
        CPPUNIT_ASSERT_EQUAL(1, user_calls);
        CPPUNIT_ASSERT_EQUAL(2, group_calls);
    }

    // The same Caller as peer_caller() fills, from SO_PEERCRED.
    void caller_from_a_socket() {
        int sv[2];
        CPPUNIT_ASSERT_EQUAL(0, ::socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
        Identities ids;
        Caller a, b;
        std::string err;
        CPPUNIT_ASSERT_MESSAGE(err, ids.caller(sv[0], a, err, 1000));
        CPPUNIT_ASSERT_MESSAGE(err, peer_caller(sv[0], b, err));
        // From credentials the accept loop already read: the same again.
        struct ucred cred;
        CPPUNIT_ASSERT_MESSAGE(err, peer_cred(sv[0], cred, err));
        Caller c;
        ids.caller(cred, c, 1000);
        CPPUNIT_ASSERT_EQUAL(b.user, c.user);
        CPPUNIT_ASSERT(b.groups == c.groups && b.uid == c.uid && b.pid == c.pid);
        ::close(sv[0]);
        ::close(sv[1]);
        CPPUNIT_ASSERT_EQUAL(b.pid, a.pid);
        CPPUNIT_ASSERT_EQUAL(b.uid, a.uid);
        CPPUNIT_ASSERT_EQUAL(b.gid, a.gid);
        CPPUNIT_ASSERT_EQUAL(b.user, a.user);
        CPPUNIT_ASSERT(b.groups == a.groups);
    }
};
CPPUNIT_TEST_SUITE_REGISTRATION(IdentitiesTest);
