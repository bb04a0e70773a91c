#include "plugin/token_cache.h"

#include "common/margin.h"

namespace mailoauth::plugin {

bool TokenCache::lookup(const std::string& account, long long now, long margin, Hit& hit) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(account);
    if (it == entries_.end() || it->second.rejected || it->second.token.empty()) return false;
    if (now + effective_refresh_margin(margin, it->second.lifetime) >= it->second.expires_at) {
        it->second.token.clear();
        return false;
    }
    hit.token = it->second.token;
    hit.expires_at = it->second.expires_at;
    hit.user = it->second.user;
    return true;
}

bool TokenCache::rejected(const std::string& account) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(account);
    return it != entries_.end() && it->second.rejected;
}

void TokenCache::store(const std::string& account, const Secret& token, long long expires_at,
                       const std::string& user, long long now, long margin, long long lifetime) {
    std::lock_guard<std::mutex> lock(mu_);
    Entry& e = entries_[account];
    e.rejected = false;
    e.user = user;
    e.expires_at = expires_at;
    e.lifetime = lifetime;
    if (now + effective_refresh_margin(margin, lifetime) < expires_at) e.token = token;
    else e.token.clear();  // usable once, for this connection, not again
}

void TokenCache::mark_rejected(const std::string& account, const Secret& token) {
    std::lock_guard<std::mutex> lock(mu_);
    Entry& e = entries_[account];
    if (!e.token.empty() && e.token != token) return;  // already replaced by a fresh one
    e.token.clear();
    e.rejected = true;
}

void TokenCache::clear() noexcept {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& kv : entries_) kv.second.token.clear();
    entries_.clear();
}

}  // namespace mailoauth::plugin
