// One connection to the agent: read the request, check the caller against
// the account's allow lists, answer from the TokenBroker.
#ifndef MAILOAUTH_TOKENHELPER_AGENT_SERVER_H
#define MAILOAUTH_TOKENHELPER_AGENT_SERVER_H

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "tokenhelper/agent_broker.h"
#include "tokenhelper/peercred.h"

namespace mailoauth {

class HttpClient;
struct Environment;

namespace agent {

constexpr int kMaxConnections = 256;       // more are answered "busy" (status 75)
// Per uid other than root and the agent's own, so that one allowed user
// (or a program of it gone wrong) cannot take every connection.
constexpr int kMaxConnectionsPerUid = 128;
// A caller sends its request as soon as it is connected; one that dawdles
// holds a thread, so it gets little time.
constexpr int kReadTimeoutMs = 2000;
constexpr int kRequestTimeoutMs = 5000;    // to send the reply

// The callers' names and groups and the gids of allow_groups names, from
// the system's databases, remembered for kIdentitySeconds (as the gate
// remembers group membership) and forgotten on SIGHUP: a request is then
// answered without reading /etc/passwd and /etc/group (or asking a
// directory server) each time.  Thread-safe; lookups run outside the lock.
constexpr long kIdentitySeconds = 60;

class Identities {
public:
    struct Lookups {
        std::function<bool(uid_t uid, std::string& user, std::vector<gid_t>& groups)> user_groups;
        GroupLookup group;
    };
    Identities();  // the system's databases
    explicit Identities(Lookups lookups) : lookups_(std::move(lookups)) {}
    // SO_PEERCRED of fd, plus the user's name and groups as peer_caller
    // fills them.
    bool caller(int fd, Caller& out, std::string& err, std::int64_t now);
    void caller(const struct ucred& cred, Caller& out, std::int64_t now);
    // The same from credentials already read.
    void complete(Caller& c, std::int64_t now);
    bool group(const std::string& name, gid_t& gid, std::int64_t now);
    // The same two from what is remembered only, without a lookup: false
    // when nothing fresh is remembered.  known: whether the group exists.
    bool remembered(const struct ucred& cred, Caller& out, std::int64_t now);
    bool remembered_group(const std::string& name, gid_t& gid, bool& known, std::int64_t now);
    void forget();

private:
    struct User {
        bool known = false;
        std::string name;
        std::vector<gid_t> groups;
        std::int64_t at = 0;
    };
    struct Group {
        bool known = false;
        gid_t gid = 0;
        std::int64_t at = 0;
    };
    static bool fresh(std::int64_t at, std::int64_t now) { return now >= at && now - at < kIdentitySeconds; }
    bool remembered_user(uid_t uid, User& u, std::int64_t now);
    static void fill(Caller& c, const User& u);
    Lookups lookups_;
    std::mutex mu_;
    std::map<uid_t, User> users_;
    std::map<std::string, Group> groups_;
};

class Server {
public:
    Server(const Environment& env, HttpClient& http);
    void serve(int fd);
    // The same with the caller's SO_PEERCRED, as the accept loop read it.
    void serve(int fd, const struct ucred& cred);
    // The accept loop's fast path, which needs no worker thread: a whole
    // request already waiting, from a caller the allow lists admit, for a
    // token the broker's cache holds (no refresh, no forced refresh).
    // Answered here and true; anything else (a request still arriving, an
    // error to report and log, a refresh) is false, with what was read
    // from fd in taken, for serve(fd, cred, taken) to go on from.
    bool serve_at_once(int fd, const struct ucred& cred, std::string& taken);
    // serve(fd, cred) for a request of which taken was read already.
    void serve(int fd, const struct ucred& cred, std::string taken);
    TokenBroker& broker() { return broker_; }
    // SIGHUP: look users and groups up again.
    void forget_identities() { identities_.forget(); }

private:
    void serve(int fd, const Caller& caller, std::int64_t now, std::string buf);
    Outcome fetch(const std::string& account, bool force, const std::string& rejected_tail);
    bool peek(const std::string& account, Outcome& out);
    std::string version(const std::string& account);

    const Environment& env_;
    HttpClient& http_;
    TokenBroker broker_;
    Identities identities_;
    const uid_t self_;  // the agent's effective uid (allowed as the store's owner)
    // When the store was last searched for what crashed saves left
    // (Store::open); at most once per kLeftoverScanSeconds here, since
    // every save removes its own account's leftovers anyway.
    std::atomic<std::int64_t> last_scan_{-1};
};

constexpr long kLeftoverScanSeconds = 60;

}  // namespace agent
}  // namespace mailoauth

#endif
