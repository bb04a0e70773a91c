#include "tokenhelper/agent_broker.h"

#include "common/margin.h"
#include "common/protocol.h"

#include "tokenhelper/errors.h"
#include "tokenhelper/tokens.h"

namespace mailoauth::agent {

std::shared_ptr<TokenBroker::Slot> TokenBroker::slot_for(const std::string& account) {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = slots_.find(account);
    if (it != slots_.end()) return it->second;
    // Callers may ask for any number of names; forget idle slots without a
    // token before the map grows without bound.
    if (slots_.size() >= 1024) {
        for (auto i = slots_.begin(); i != slots_.end();) {
            bool idle = i->second.use_count() == 1;
            if (idle) {
                std::lock_guard<std::mutex> slk(i->second->mu);
                idle = !i->second->have && !i->second->busy;
            }
            i = idle ? slots_.erase(i) : std::next(i);
        }
    }
    auto s = std::make_shared<Slot>();
    slots_.emplace(account, s);
    return s;
}

std::uint64_t TokenBroker::fetches() const {
    std::lock_guard<std::mutex> lk(mu_);
    return fetches_;
}

Outcome TokenBroker::from_cache(const Slot& s, Outcome::Source src) {
    Outcome o;
    o.status = 0;
    o.access_token = s.token;
    o.expires_at = s.expires_at;
    o.lifetime = s.lifetime;
    o.user = s.user;
    o.source = src;
    return o;
}

bool TokenBroker::fresh(Slot& s, const std::string& account, const std::string& version, std::int64_t now) {
    if (s.have && version != s.version) {
        s.have = false;  // the store changed under us: login, logout, another refresher
        s.token.clear();
    }
    if (!s.have) return false;
    // Clamped for tokens issued for less than three margins, as the
    // store's own check is: else a short-lived token would never be
    // served from here.
    const long margin = effective_refresh_margin(hooks_.margin(account), s.lifetime);
    return s.expires_at - margin > now;
}

bool TokenBroker::cached(const std::string& account, Outcome& out) {
    std::shared_ptr<Slot> slot;
    {
        std::lock_guard<std::mutex> lk(mu_);
        auto it = slots_.find(account);
        if (it == slots_.end()) return false;
        slot = it->second;
    }
    {
        std::lock_guard<std::mutex> lk(slot->mu);
        if (!fresh(*slot, account, hooks_.version(account), hooks_.now())) return false;
        out = from_cache(*slot, Outcome::Source::Cache);
    }
    if (observer_) observer_(account, out);
    return true;
}

Outcome TokenBroker::get(const std::string& account, bool force, const std::string& rejected_tail) {
    Outcome o = obtain(account, force, rejected_tail);
    if (o.status == 0 && observer_) observer_(account, o);
    return o;
}

Outcome TokenBroker::run_fetch(const std::string& account, const std::function<Outcome()>& fetch,
                               std::string& after, std::int64_t& done) {
    Outcome o;
    try {
        o = fetch();
    } catch (const std::exception& e) {
        o = Outcome();
        o.status = kExitTempFail;
        o.error = "internal";
        o.message = std::string("internal error: ") + e.what();
    }
    try {
        after = hooks_.version(account);
    } catch (...) {
    }
    done = hooks_.now();
    return o;
}

void TokenBroker::keep_token(Slot& s, const Outcome& o, const std::string& after, std::int64_t done,
                             std::int64_t retry_at) {
    s.have = true;
    s.token = o.access_token;
    s.expires_at = o.expires_at;
    s.lifetime = o.lifetime;
    s.user = o.user;
    s.version = after;
    s.failed = false;
    s.failure = Outcome();
    s.retry_at = retry_at;
    s.failure_version = after;
    if (o.refreshed) s.refreshed_at = done;
}

Outcome TokenBroker::renew(const std::string& account, const std::function<Outcome()>& fetch) {
    std::shared_ptr<Slot> slot = slot_for(account);
    Slot& s = *slot;
    std::unique_lock<std::mutex> lk(s.mu);
    if (s.busy) {
        Outcome o;
        o.status = kExitTempFail;
        o.error = "busy";
        o.message = "a refresh of account '" + account + "' is in progress already";
        o.source = Outcome::Source::Busy;
        return o;
    }
    s.busy = true;
    lk.unlock();
    std::string after;
    std::int64_t done = 0;
    Outcome o = run_fetch(account, fetch, after, done);
    lk.lock();
    s.busy = false;
    o.source = Outcome::Source::Fetched;
    // Only a working token is news for the requests waiting on this slot
    // (completed); after a failure they go on as if no renewal had run.
    if (o.status == 0 && o.warning.empty()) {
        ++s.completed;
        keep_token(s, o, after, done, 0);
    }
    s.cv.notify_all();
    return o;
}

Outcome TokenBroker::obtain(const std::string& account, bool force, const std::string& rejected_tail) {
    std::shared_ptr<Slot> slot = slot_for(account);
    Slot& s = *slot;
    std::unique_lock<std::mutex> lk(s.mu);
    // With force, the caller's token was rejected: only another token will
    // do.  Which one was rejected: the one rejected_tail names (a hash) when the
    // caller says so, else the one cached when it arrived (and then only a
    // token obtained after its arrival counts as newer).
    const bool tail_known = protocol::valid_token_id(rejected_tail);
    const std::uint64_t arrival = s.completed;
    Secret rejected;
    if (force && s.have) rejected = s.token;

    for (;;) {
        const std::int64_t now = hooks_.now();
        const std::string version = hooks_.version(account);
        const bool good = fresh(s, account, version, now);
        const bool still_valid = s.have && s.expires_at - kMinValidity > now;
        if (s.have) {
            if (!force && good) return from_cache(s, Outcome::Source::Cache);
            const bool replaced = tail_known ? !protocol::names_token(rejected_tail, s.token.reveal())
                                             : s.completed > arrival && s.token != rejected;
            if (force && replaced && still_valid) return from_cache(s, Outcome::Source::Cache);
            // The caller's token is the current one, and it is brand new:
            // a server that refuses it will refuse the next one too.
            const std::int64_t age = now - s.refreshed_at;
            if (force && still_valid && s.refreshed_at != 0 && age >= 0 && age < kMinForcedRefreshInterval) {
                Outcome o = from_cache(s, Outcome::Source::RateLimited);
                o.warning = "forced refresh not done: the token was refreshed " + std::to_string(age) +
                            " s ago (less than " + std::to_string(kMinForcedRefreshInterval) +
                            " s); served it again.  If the server keeps refusing new tokens, check the "
                            "account's scope and permissions";
                return o;
            }
        }
        if (s.busy) {
            if (!force) {
                // A refresh is slow; a token that is merely inside the
                // margin still works, so do not make this caller wait.
                if (still_valid) return from_cache(s, Outcome::Source::StillValid);
                Outcome o;
                if (!s.have && hooks_.peek && hooks_.peek(account, o) && o.expires_at - kMinValidity > now) {
                    o.status = 0;
                    o.source = Outcome::Source::Store;
                    return o;
                }
            }
            const std::uint64_t gen = s.completed;
            if (!s.cv.wait_for(lk, hooks_.wait_limit, [&] { return !s.busy; })) {
                Outcome o;
                o.status = kExitTempFail;
                o.error = "busy";
                o.message = "the refresh of account '" + account + "' is taking too long; try again later";
                o.source = Outcome::Source::Busy;
                return o;
            }
            if (s.completed != gen && s.failed) {
                // Share the failure instead of repeating the same request.
                Outcome o = s.failure;
                o.source = Outcome::Source::SharedFailure;
                return o;
            }
            continue;
        }
        if (!force && now < s.retry_at && version == s.failure_version) {
            if (still_valid) return from_cache(s, Outcome::Source::StillValid);
            if (s.failed) {
                Outcome o = s.failure;
                o.source = Outcome::Source::Backoff;
                return o;
            }
        }

        s.busy = true;
        {
            std::lock_guard<std::mutex> mlk(mu_);
            ++fetches_;
        }
        lk.unlock();
        std::string after;
        std::int64_t done = 0;
        Outcome o = run_fetch(
            account, [&] { return hooks_.fetch(account, force, rejected_tail); }, after, done);
        lk.lock();
        s.busy = false;
        ++s.completed;
        o.source = Outcome::Source::Fetched;
        if (o.status == 0) {
            // A warning means the refresh failed and the old token was
            // served: back off before trying again.
            keep_token(s, o, after, done, o.warning.empty() ? 0 : done + kRetryAfterFailure);
        } else {
            s.failed = true;
            s.failure = Outcome();
            s.failure.status = o.status;
            s.failure.error = o.error;
            s.failure.message = o.message;
            s.failure_version = after;
            s.retry_at = o.status == kExitTempFail ? done + kRetryAfterFailure : 0;
            if (o.status == kExitNoPerm || o.status == kExitConfig) {
                s.have = false;  // signed out or misconfigured: stop serving the old token
                s.token.clear();
            }
        }
        s.cv.notify_all();
        return o;
    }
}

Outcome outcome_of(const TokenResult& t, const std::string& account) {
    Outcome o;
    o.status = t.exit_code;
    o.error = t.error.empty() && t.exit_code != 0 ? "failed" : t.error;
    o.message = t.message;
    o.warning = t.warning;
    o.refreshed = t.refreshed;
    if (t.exit_code == 0) {
        o.access_token = t.record.access_token;
        o.expires_at = t.record.access_expires_at;
        o.lifetime = t.record.access_lifetime;
        o.user = t.record.user.empty() ? account : t.record.user;
    }
    return o;
}

}  // namespace mailoauth::agent
