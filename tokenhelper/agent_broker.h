// The agent's token cache: per account, in-process single flight over a
// token fetch (TokenBroker).  Pure apart from its hooks, so that the unit
// tests drive it with a fake fetch and a fake clock.
#ifndef MAILOAUTH_TOKENHELPER_AGENT_BROKER_H
#define MAILOAUTH_TOKENHELPER_AGENT_BROKER_H

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "common/secret.h"

namespace mailoauth {
struct TokenResult;
}

namespace mailoauth::agent {

// A token this close to expiry is not handed out, not even while a refresh
// is in progress (the server might reject it before it is used).
constexpr long kMinValidity = 60;
// After a temporary refresh failure, no new attempt for this long unless a
// caller forces one: callers meanwhile get the still-valid token or the
// same failure, instead of hammering an identity provider that is down.
constexpr long kRetryAfterFailure = 10;
// A forced refresh of a token this process refreshed less than this long
// ago is not done: the caller gets that fresh token again.  A caller that
// loops on force_refresh (a server that refuses every token, a broken
// client) would otherwise make the agent refresh in a loop, which the
// identity provider punishes (Microsoft's loop detection, AADSTS50196).
constexpr long kMinForcedRefreshInterval = 30;

// What one token request gets.
struct Outcome {
    // RateLimited: a forced refresh not done (kMinForcedRefreshInterval);
    // the cached token, with a warning.
    enum class Source { Fetched, Cache, StillValid, Store, SharedFailure, Backoff, Busy, RateLimited };
    int status = 75;            // sysexits, as `mailoauth get` exits
    std::string error;          // protocol v1 "error" word
    std::string message;        // for a person, one line, no secret
    Secret access_token;
    std::int64_t expires_at = 0;
    std::int64_t lifetime = 0;  // seconds the token was issued for; 0: unknown
    std::string user;
    std::string warning;        // served despite a failed refresh, or without the forced one
    bool refreshed = false;     // a refresh happened for this request
    Source source = Source::Fetched;
};

// Per-account, in-process single flight over a token fetch.  At most one
// fetch per account runs at a time; while it runs, callers that need a
// fresh token wait for it and share its result, and callers for whom a
// still-valid token will do (not expired, merely inside the refresh
// margin) get it at once.
class TokenBroker {
public:
    struct Hooks {
        // get_access_token: never throws (exceptions become status 75).
        std::function<Outcome(const std::string& account, bool force, const std::string& rejected_tail)> fetch;
        // The store's current token without taking the lock; optional.
        std::function<bool(const std::string& account, Outcome& out)> peek;
        // Changes whenever the account's store file changes ("" when it is
        // gone): a login, logout or refresh by another process makes the
        // cached token stale.
        std::function<std::string(const std::string& account)> version;
        std::function<long(const std::string& account)> margin;
        std::function<std::int64_t()> now;
        std::chrono::milliseconds wait_limit{std::chrono::seconds(90)};
    };
    explicit TokenBroker(Hooks hooks) : hooks_(std::move(hooks)) {}
    // force: the caller's server rejected the token it had; rejected_tail
    // (protocol key "rejected"), when given, names that token by its id
    // (protocol::token_id: a hash, never characters of the token).
    Outcome get(const std::string& account, bool force, const std::string& rejected_tail = "");
    // get() without waiting and without a fetch: true with out set (and
    // the observer told) only when the cache holds a token that get()
    // would hand out at once; false changes nothing and says nothing.
    bool cached(const std::string& account, Outcome& out);
    // How many fetches have run, over all accounts (tests).
    std::uint64_t fetches() const;

    // Renewal ahead of need (agent_renew.h): runs fetch (renew_if_due)
    // unless a fetch of the account is in flight already, in which case it
    // returns Source::Busy at once and that fetch's result will do.  While
    // it runs, requests are single-flight with it as with any fetch.  A
    // token it obtains is cached; a failure changes nothing (the cached
    // token still works, and requests refresh on demand at the margin as
    // they would without renewal).
    Outcome renew(const std::string& account, const std::function<Outcome()>& fetch);
    // Called with every token that get() hands out (status 0), outside the
    // broker's locks: tells the renewal which accounts are in use.  Set it
    // before the first get().
    void set_observer(std::function<void(const std::string& account, const Outcome& served)> observer) {
        observer_ = std::move(observer);
    }

private:
    struct Slot {
        std::mutex mu;
        std::condition_variable cv;
        bool busy = false;
        std::uint64_t completed = 0;
        bool have = false;
        Secret token;
        std::int64_t expires_at = 0;
        std::int64_t lifetime = 0;
        std::string user;
        std::string version;
        bool failed = false;        // the last fetch failed
        Outcome failure;            // its outcome (no secret)
        std::string failure_version;
        std::int64_t retry_at = 0;  // no unforced fetch before this
        std::int64_t refreshed_at = 0;  // when a fetch last refreshed the token
    };
    Outcome obtain(const std::string& account, bool force, const std::string& rejected_tail);
    std::shared_ptr<Slot> slot_for(const std::string& account);
    // With s.mu held: drops a token the store no longer has (login,
    // logout, another refresher), then says whether the token is good
    // beyond the account's margin.  version: the store's, read now.
    bool fresh(Slot& s, const std::string& account, const std::string& version, std::int64_t now);
    static Outcome from_cache(const Slot& s, Outcome::Source src);
    // Runs fetch with the slot unlocked: an exception becomes a temporary
    // failure; after is the store's version once it ran, done the time.
    Outcome run_fetch(const std::string& account, const std::function<Outcome()>& fetch,
                      std::string& after, std::int64_t& done);
    // A fetch gave a working token: the slot serves it from now on.
    static void keep_token(Slot& s, const Outcome& o, const std::string& after, std::int64_t done,
                           std::int64_t retry_at);

    Hooks hooks_;
    std::function<void(const std::string&, const Outcome&)> observer_;
    mutable std::mutex mu_;
    std::map<std::string, std::shared_ptr<Slot>> slots_;
    std::uint64_t fetches_ = 0;
};

// What get_access_token or renew_if_due (tokens.h) gave, as the broker's
// Outcome; the user on the wire defaults to the account.
Outcome outcome_of(const TokenResult& t, const std::string& account);

}  // namespace mailoauth::agent

#endif
