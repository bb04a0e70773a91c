// Per-process token cache, per account.  A long-lived Postfix smtp process
// or an mbsync run with many channels asks the helper once, then reuses the
// token until it comes within the refresh margin of its expiry (Exchange
// rejects tokens about to expire).  A token the server rejected is dropped
// and the account marked, so the next request asks for force_refresh=1.
#ifndef MAILOAUTH_PLUGIN_TOKEN_CACHE_H
#define MAILOAUTH_PLUGIN_TOKEN_CACHE_H

#include "common/secret.h"

#include <map>
#include <mutex>
#include <string>

namespace mailoauth::plugin {

class TokenCache {
public:
    struct Hit {
        Secret token;
        long long expires_at = 0;
        std::string user;
    };

    // A token valid beyond now + margin, if there is one.  The margin is
    // clamped to a third of the token's issued lifetime when that is known
    // (common/margin.h), as the helper and the agent clamp theirs.
    bool lookup(const std::string& account, long long now, long margin, Hit& hit);
    // Whether the last token for account was rejected by a server.
    bool rejected(const std::string& account);
    // Keeps token unless it is already inside the margin; clears the mark.
    // lifetime: the seconds the token was issued for (reply key
    // "lifetime"), 0 when unknown.
    void store(const std::string& account, const Secret& token, long long expires_at,
               const std::string& user, long long now, long margin, long long lifetime = 0);
    // The server refused token: forget it (unless a newer one replaced it
    // meanwhile) and mark the account.
    void mark_rejected(const std::string& account, const Secret& token);
    // Wipes everything (plugin re-initialisation, unload).
    void clear() noexcept;

private:
    struct Entry {
        Secret token;
        long long expires_at = 0;
        long long lifetime = 0;
        std::string user;
        bool rejected = false;
    };
    std::mutex mu_;
    std::map<std::string, Entry> entries_;
};

}  // namespace mailoauth::plugin

#endif
