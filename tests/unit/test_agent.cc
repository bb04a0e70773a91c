// The agent's pure parts: allow_users/allow_groups parsing and matching
// (tokenhelper/peercred.cc), socket names, and the in-process single
// flight of TokenBroker with a fake fetch (tokenhelper/agent.cc).
#include <cppunit/extensions/HelperMacros.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "common/protocol.h"
#include "tokenhelper/agent.h"
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
        Outcome o = b.get("alice", true);
        CPPUNIT_ASSERT_EQUAL(std::string("token-2-0123456789"), o.access_token.reveal());
        CPPUNIT_ASSERT(last_force_.load());
        CPPUNIT_ASSERT_EQUAL(2, fetches_.load());
        // Many callers rejecting the same token: one forced fetch.
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
        o = b.get("alice", true, protocol::token_id("token-1-0123456789"));
        CPPUNIT_ASSERT_EQUAL(std::string("token-2-0123456789"), o.access_token.reveal());
        CPPUNIT_ASSERT_EQUAL(2, fetches_.load());
    }

    void relogin_drops_cache() {
        TokenBroker b(hooks());
        b.get("alice", false);
        fail_status_ = 77;
        CPPUNIT_ASSERT_EQUAL(77, b.get("alice", true).status);
        // The old token is not handed out any more.
        now_ += 3600 - 300;
        Outcome o = b.get("alice", false);
        CPPUNIT_ASSERT_EQUAL(77, o.status);
        CPPUNIT_ASSERT(o.access_token.empty());
    }
};
CPPUNIT_TEST_SUITE_REGISTRATION(BrokerTest);
