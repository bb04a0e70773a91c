// Renewing tokens before they are needed (mailoauth agent; issue 11).
//
// On demand, the first request that finds its account's token inside the
// refresh margin waits for the identity provider: half a second on a good
// day, the whole HTTP timeout on a bad one, while Postfix holds a message.
// So the agent renews, from one background thread, the tokens of the
// accounts it has served recently, a little before they enter the margin;
// requests then find a fresh token at every expiry.
//
// A renewal goes through TokenBroker::renew (single flight with the
// requests in this process: none starts while a fetch is in flight) and
// renew_if_due (the store's lock, shared with every other process, and the
// same grant as get_access_token for every kind of account).  A failure
// changes nothing that works: the current token stays in the store and in
// the cache, requests refresh on demand at the margin as they would without
// renewal, and the renewal backs off.
//
// RenewSchedule decides when (pure: the times are arguments and the jitter
// a hook, for the unit tests); Renewer is the thread around it.
#ifndef MAILOAUTH_TOKENHELPER_AGENT_RENEW_H
#define MAILOAUTH_TOKENHELPER_AGENT_RENEW_H

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "tokenhelper/agent_broker.h"

namespace mailoauth {

class HttpClient;
struct Environment;

namespace agent {

// Accounts the agent has handed a token out for within this long are
// renewed; one idle for longer is forgotten until it is served again.
constexpr long kRenewRecentSeconds = 24 * 3600;
// A renewal starts this long before the token enters its refresh margin,
// plus a random part of up to kRenewJitterSeconds, so that agents (or
// accounts) that got their tokens at the same moment do not all ask the
// provider at the same moment again.
constexpr long kRenewLeadSeconds = 60;
constexpr long kRenewJitterSeconds = 10;
// After a failed renewal: the next one after kRenewBackoffMinSeconds,
// doubling up to kRenewBackoffMaxSeconds (plus up to a tenth at random).
constexpr long kRenewBackoffMinSeconds = 30;
constexpr long kRenewBackoffMaxSeconds = 600;
// At most this many accounts are followed (the broker's own bound).
constexpr std::size_t kRenewMaxAccounts = 1024;

// The times above for a token issued for `lifetime` seconds.  A short-lived
// token (its margin is clamped to a third of its life, common/margin.h)
// gets them scaled down, so that it is still renewed in the second half of
// its life (lead a sixth of it, at least 1 s; jitter a thirtieth) and retried
// several times before it expires (back-off from a tenth up to half of it,
// at least 1 s).  lifetime <= 0 (unknown): the constants.
struct RenewTiming {
    long lead = kRenewLeadSeconds;
    long jitter = kRenewJitterSeconds;
    long backoff_min = kRenewBackoffMinSeconds;
    long backoff_max = kRenewBackoffMaxSeconds;
};
RenewTiming renew_timing(std::int64_t lifetime);

// How far ahead of the refresh margin a renewal asks renew_if_due to
// refresh: the whole lead with the largest jitter, and a second for the
// clock's granularity.
long renew_window(std::int64_t lifetime);

// When each account is due.  Not thread-safe (Renewer locks around it).
class RenewSchedule {
public:
    // A number in [0, bound] (bound >= 0).
    using Jitter = std::function<long(long bound)>;

    explicit RenewSchedule(Jitter jitter, long recent = kRenewRecentSeconds,
                           std::size_t max_accounts = kRenewMaxAccounts)
        : jitter_(std::move(jitter)), recent_(recent), max_accounts_(max_accounts) {}

    // A request got account's token at now: valid until expires_at, issued
    // for lifetime seconds (0: unknown); margin: the account's configured
    // refresh_margin.  Returns true when the thread should look again (the
    // account is new, or is due earlier than before).
    bool served(const std::string& account, std::int64_t now, std::int64_t expires_at, std::int64_t lifetime,
                long margin);
    // The cheap part of served, for every request: when account is known
    // with this very token (or is being renewed), notes that it was served
    // and returns true; otherwise served() is needed.
    bool touch(const std::string& account, std::int64_t now, std::int64_t expires_at, std::int64_t lifetime);

    // The account to renew at now, the one due first; it stays marked as
    // running (not handed out again) until finished().  Accounts not served
    // for `recent` seconds are forgotten here.
    bool take_due(std::int64_t now, std::string& account);
    // When take_due has something next; INT64_MAX when nothing is followed.
    std::int64_t next_due() const;

    enum class Result {
        Renewed,    // the account's token is good beyond the window (refreshed now or before)
        Failed,     // temporary failure: back off, doubling
        Permanent,  // sign in again / configuration: back off at the longest
        Busy,       // a fetch was in flight; look again after the shortest back-off
        Gone,       // the account is not in the store any more: forget it
    };
    // The end of a renewal take_due handed out.  With Renewed, expires_at
    // and lifetime are the token's now.
    void finished(const std::string& account, std::int64_t now, Result result, std::int64_t expires_at = 0,
                  std::int64_t lifetime = 0);

    // SIGHUP: every account that is backing off is due now.  Returns
    // whether there was one.
    bool retry_now(std::int64_t now);

    // For tests and logs.
    struct View {
        bool known = false;
        bool running = false;
        std::int64_t due = 0;
        int failures = 0;
        std::int64_t lifetime = 0;
    };
    View view(const std::string& account) const;
    std::size_t size() const { return entries_.size(); }

private:
    struct Entry {
        std::int64_t last_served = 0;
        std::int64_t expires_at = 0;
        std::int64_t lifetime = 0;
        long margin = 0;
        std::int64_t due = 0;
        int failures = 0;
        bool running = false;
    };
    std::int64_t due_for(const Entry& e);
    long jitter(long bound);

    Jitter jitter_;
    const long recent_;
    const std::size_t max_accounts_;
    std::map<std::string, Entry> entries_;
};

// The renewal thread.
class Renewer {
public:
    struct Hooks {
        // Renews account when its token enters the margin within `window`
        // seconds: TokenBroker::renew around renew_if_due (renew_account).
        std::function<Outcome(const std::string& account, long window)> renew;
        // The account's configured refresh_margin.
        std::function<long(const std::string& account)> margin;
        // Wall-clock milliseconds (tokens expire by the wall clock).
        std::function<std::int64_t()> now_ms;
        RenewSchedule::Jitter jitter;
    };
    explicit Renewer(Hooks hooks);
    // Stops the thread and waits for it (see stop).
    ~Renewer();
    Renewer(const Renewer&) = delete;
    Renewer& operator=(const Renewer&) = delete;

    void start();
    // TokenBroker's observer: a request got this token.  Cheap; never
    // waits for a renewal.
    void served(const std::string& account, const Outcome& o);
    // SIGHUP: retry at once what is backing off.  Never waits for a renewal.
    void retry_now();
    // Wakes the thread to look at the clock again (tests with a fake clock).
    void poke();
    // Asks the thread to stop and waits up to `limit` for it.  A renewal in
    // flight ends within the HTTP timeout; false: the thread still runs (the
    // caller must not destroy what the hooks use; the agent exits instead).
    bool stop(std::chrono::milliseconds limit);

    // Renewals attempted and failed so far (tests).
    std::uint64_t attempts() const;
    std::uint64_t failures() const;
    RenewSchedule::View view(const std::string& account) const;

private:
    void loop();
    std::int64_t now_s() const { return hooks_.now_ms() / 1000; }

    Hooks hooks_;
    mutable std::mutex mu_;
    std::condition_variable cv_;       // the thread waits on it
    std::condition_variable done_cv_;  // stop() waits on it
    RenewSchedule schedule_;
    bool stopping_ = false;
    bool done_ = false;
    std::uint64_t attempts_ = 0;
    std::uint64_t failures_ = 0;
    std::thread thread_;
};

// One renewal of account with the store of env: renew_if_due(window) as an
// Outcome (what the broker caches).  The hook the agent passes to
// TokenBroker::renew.
Outcome renew_account(const Environment& env, HttpClient& http, const std::string& account, long window);

}  // namespace agent
}  // namespace mailoauth

#endif
