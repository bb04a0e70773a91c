#include "tokenhelper/agent_renew.h"

#include <syslog.h>

#include <algorithm>
#include <exception>
#include <limits>

#include "common/margin.h"
#include "tokenhelper/agent_log.h"
#include "tokenhelper/errors.h"
#include "tokenhelper/settings.h"
#include "tokenhelper/store.h"
#include "tokenhelper/timefmt.h"
#include "tokenhelper/tokens.h"

namespace mailoauth::agent {

namespace {

constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::max();
// The thread looks at the clock at least this often: waits run on the
// steady clock, tokens expire by the wall clock, which may be set.
constexpr std::int64_t kMaxSleepMs = 60000;

// lifetime / divisor, within [floor, cap].
long part_of(std::int64_t lifetime, std::int64_t divisor, long floor, long cap) {
    std::int64_t v = lifetime / divisor;
    if (v > cap) v = cap;
    if (v < floor) v = floor;
    return static_cast<long>(v);
}

RenewSchedule::Result classify(const Outcome& o) {
    using R = RenewSchedule::Result;
    if (o.source == Outcome::Source::Busy) return R::Busy;
    if (o.status == 0) return o.warning.empty() ? R::Renewed : R::Failed;
    if (o.error == "not_logged_in") return R::Gone;
    return o.status == kExitTempFail ? R::Failed : R::Permanent;
}

}  // namespace

RenewTiming renew_timing(std::int64_t lifetime) {
    RenewTiming t;
    if (lifetime <= 0) return t;
    t.lead = part_of(lifetime, 6, 1, kRenewLeadSeconds);
    t.jitter = part_of(lifetime, 30, 0, kRenewJitterSeconds);
    t.backoff_min = part_of(lifetime, 10, 1, kRenewBackoffMinSeconds);
    t.backoff_max = part_of(lifetime, 2, t.backoff_min, kRenewBackoffMaxSeconds);
    return t;
}

long renew_window(std::int64_t lifetime) {
    const RenewTiming t = renew_timing(lifetime);
    return t.lead + t.jitter + 1;
}

// --- RenewSchedule ---------------------------------------------------------

long RenewSchedule::jitter(long bound) {
    if (bound <= 0 || !jitter_) return 0;
    return std::clamp(jitter_(bound), 0L, bound);
}

std::int64_t RenewSchedule::due_for(const Entry& e) {
    const RenewTiming t = renew_timing(e.lifetime);
    return e.expires_at - effective_refresh_margin(e.margin, e.lifetime) - t.lead - jitter(t.jitter);
}

bool RenewSchedule::touch(const std::string& account, std::int64_t now, std::int64_t expires_at,
                          std::int64_t lifetime) {
    auto it = entries_.find(account);
    if (it == entries_.end()) return false;
    Entry& e = it->second;
    if (!e.running && (e.expires_at != expires_at || e.lifetime != lifetime)) return false;
    e.last_served = now;
    return true;
}

bool RenewSchedule::served(const std::string& account, std::int64_t now, std::int64_t expires_at,
                           std::int64_t lifetime, long margin) {
    auto it = entries_.find(account);
    if (it == entries_.end()) {
        if (entries_.size() >= max_accounts_) {
            // Make room: forget the account served longest ago.
            auto oldest = entries_.end();
            for (auto i = entries_.begin(); i != entries_.end(); ++i)
                if (!i->second.running && (oldest == entries_.end() || i->second.last_served < oldest->second.last_served))
                    oldest = i;
            if (oldest == entries_.end()) return false;
            entries_.erase(oldest);
        }
        Entry e;
        e.last_served = now;
        e.expires_at = expires_at;
        e.lifetime = lifetime;
        e.margin = margin;
        e.due = due_for(e);
        entries_.emplace(account, e);
        return true;
    }
    Entry& e = it->second;
    e.last_served = now;
    e.margin = margin;
    // While a renewal runs, its result decides; a token it did not bring
    // is noticed at the next request after it.
    if (e.running || (e.expires_at == expires_at && e.lifetime == lifetime)) return false;
    // Another token than the one planned for (refreshed on demand, by
    // another process, a new login): whatever failed works again.
    e.expires_at = expires_at;
    e.lifetime = lifetime;
    e.failures = 0;
    const std::int64_t before = e.due;
    e.due = due_for(e);
    return e.due < before;
}

bool RenewSchedule::take_due(std::int64_t now, std::string& account) {
    auto best = entries_.end();
    for (auto i = entries_.begin(); i != entries_.end();) {
        Entry& e = i->second;
        if (!e.running && now - e.last_served > recent_) {
            i = entries_.erase(i);
            continue;
        }
        if (!e.running && e.due <= now && (best == entries_.end() || e.due < best->second.due)) best = i;
        ++i;
    }
    if (best == entries_.end()) return false;
    best->second.running = true;
    account = best->first;
    return true;
}

std::int64_t RenewSchedule::next_due() const {
    std::int64_t next = kNever;
    for (const auto& kv : entries_)
        if (!kv.second.running && kv.second.due < next) next = kv.second.due;
    return next;
}

void RenewSchedule::finished(const std::string& account, std::int64_t now, Result result, std::int64_t expires_at,
                             std::int64_t lifetime) {
    auto it = entries_.find(account);
    if (it == entries_.end()) return;
    Entry& e = it->second;
    e.running = false;
    switch (result) {
    case Result::Renewed:
        if (expires_at > 0) {
            e.expires_at = expires_at;
            e.lifetime = lifetime;
        }
        e.failures = 0;
        e.due = due_for(e);
        // Renewed yet due already: the clocks disagree (renew_if_due found
        // the token fresh); never a loop of renewals that do nothing.
        if (e.due <= now) e.due = now + renew_timing(e.lifetime).backoff_min;
        break;
    case Result::Failed: {
        const RenewTiming t = renew_timing(e.lifetime);
        if (e.failures < 62) ++e.failures;
        long b = t.backoff_min;
        for (int i = 1; i < e.failures && b < t.backoff_max; ++i) b *= 2;
        b = std::min(b, t.backoff_max);
        e.due = now + b + jitter(b / 10);
        break;
    }
    case Result::Permanent: {
        const RenewTiming t = renew_timing(e.lifetime);
        if (e.failures < 62) ++e.failures;
        e.due = now + t.backoff_max + jitter(t.backoff_max / 10);
        break;
    }
    case Result::Busy:
        e.due = now + renew_timing(e.lifetime).backoff_min;
        break;
    case Result::Gone:
        entries_.erase(it);
        break;
    }
}

bool RenewSchedule::retry_now(std::int64_t now) {
    bool any = false;
    for (auto& kv : entries_) {
        if (kv.second.running || kv.second.failures == 0) continue;
        kv.second.due = std::min(kv.second.due, now);
        any = true;
    }
    return any;
}

RenewSchedule::View RenewSchedule::view(const std::string& account) const {
    View v;
    auto it = entries_.find(account);
    if (it == entries_.end()) return v;
    v.known = true;
    v.running = it->second.running;
    v.due = it->second.due;
    v.failures = it->second.failures;
    v.lifetime = it->second.lifetime;
    return v;
}

// --- Renewer ---------------------------------------------------------------

Renewer::Renewer(Hooks hooks) : hooks_(std::move(hooks)), schedule_(hooks_.jitter) {}

Renewer::~Renewer() {
    {
        std::lock_guard<std::mutex> lk(mu_);
        stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void Renewer::start() { thread_ = std::thread([this] { loop(); }); }

void Renewer::served(const std::string& account, const Outcome& o) {
    const std::int64_t now = now_s();
    {
        std::lock_guard<std::mutex> lk(mu_);
        if (schedule_.touch(account, now, o.expires_at, o.lifetime)) return;  // the usual case
    }
    const long margin = hooks_.margin(account);
    bool wake;
    {
        std::lock_guard<std::mutex> lk(mu_);
        wake = schedule_.served(account, now, o.expires_at, o.lifetime, margin);
    }
    if (wake) cv_.notify_one();
}

void Renewer::retry_now() {
    bool wake;
    {
        std::lock_guard<std::mutex> lk(mu_);
        wake = schedule_.retry_now(now_s());
    }
    if (wake) cv_.notify_one();
}

void Renewer::poke() { cv_.notify_one(); }

bool Renewer::stop(std::chrono::milliseconds limit) {
    std::unique_lock<std::mutex> lk(mu_);
    stopping_ = true;
    cv_.notify_all();
    if (!thread_.joinable()) return true;
    if (!done_cv_.wait_for(lk, limit, [this] { return done_; })) return false;
    lk.unlock();
    thread_.join();
    return true;
}

std::uint64_t Renewer::attempts() const {
    std::lock_guard<std::mutex> lk(mu_);
    return attempts_;
}

std::uint64_t Renewer::failures() const {
    std::lock_guard<std::mutex> lk(mu_);
    return failures_;
}

RenewSchedule::View Renewer::view(const std::string& account) const {
    std::lock_guard<std::mutex> lk(mu_);
    return schedule_.view(account);
}

void Renewer::loop() {
    std::unique_lock<std::mutex> lk(mu_);
    while (!stopping_) {
        const std::int64_t now_ms = hooks_.now_ms();
        const std::int64_t now = now_ms / 1000;
        std::string account;
        if (!schedule_.take_due(now, account)) {
            const std::int64_t next = schedule_.next_due();
            std::int64_t wait = kMaxSleepMs;
            // Wake just after the second it is due begins.
            if (next != kNever && next - now < kMaxSleepMs / 1000) wait = std::max<std::int64_t>(next * 1000 - now_ms, 0) + 1;
            cv_.wait_for(lk, std::chrono::milliseconds(wait));
            continue;
        }
        const long window = renew_window(schedule_.view(account).lifetime);
        ++attempts_;
        lk.unlock();
        Outcome o;
        try {
            o = hooks_.renew(account, window);
        } catch (const std::exception& e) {
            o = Outcome();
            o.status = kExitTempFail;
            o.error = "internal";
            o.message = std::string("internal error: ") + e.what();
        }
        const RenewSchedule::Result r = classify(o);
        lk.lock();
        const std::int64_t after = now_s();
        schedule_.finished(account, after, r, o.expires_at, o.lifetime);
        const std::int64_t next_in = schedule_.view(account).due - after;
        const bool failed = r == RenewSchedule::Result::Failed || r == RenewSchedule::Result::Permanent;
        if (failed) ++failures_;
        lk.unlock();

        // Logged outside the lock: requests never wait for the log.
        const std::string why = one_line(o.warning.empty() ? o.message : o.warning);
        switch (r) {
        case RenewSchedule::Result::Renewed:
            if (o.refreshed)
                logmsg(LOG_DEBUG, "renewed the access token of %s ahead of its refresh margin (%s), valid until %s",
                       account.c_str(), o.access_token.fingerprint().c_str(), format_utc(o.expires_at).c_str());
            break;
        case RenewSchedule::Result::Failed:
            logmsg_limited(LOG_WARNING, "renew:" + account,
                           "%s: renewing the token ahead of its expiry failed (next attempt in %lld s; the current "
                           "token is kept): %s",
                           account.c_str(), static_cast<long long>(next_in), why.c_str());
            break;
        case RenewSchedule::Result::Permanent:
            logmsg_limited(LOG_ERR, "renew:" + account,
                           "%s: renewing the token ahead of its expiry failed, status %d (next attempt in %lld s): %s",
                           account.c_str(), o.status, static_cast<long long>(next_in), why.c_str());
            break;
        case RenewSchedule::Result::Gone:
            logmsg(LOG_INFO, "%s is no longer in the store; its token is not renewed any more", account.c_str());
            break;
        case RenewSchedule::Result::Busy:
            break;
        }
        lk.lock();
    }
    done_ = true;
    done_cv_.notify_all();
}

// --- the hook ----------------------------------------------------------------

Outcome renew_account(const Environment& env, HttpClient& http, const std::string& account, long window) {
    Outcome o;
    Store store(env.store_dir);
    std::string err;
    // The request path looks for leftovers of crashed saves; no need here.
    if (!store.open(false, err, false)) {
        o.status = kExitConfig;
        o.error = "store_error";
        o.message = err;
        return o;
    }
    TokenResult t = renew_if_due(env, store, http, account, window);
    return outcome_of(t, account);
}

}  // namespace mailoauth::agent
