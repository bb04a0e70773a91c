// Who may talk to the agent at all, decided when a connection is accepted,
// from SO_PEERCRED, before a byte of it is read.
//
// The per-account check (peercred.h, in agent_server) needs the request's
// account, so it can only run after the request was read; a caller no
// account admits would meanwhile hold a connection slot and a thread.  The
// gate admits the union of every allow_users and allow_groups in
// mailoauth.conf plus root and the agent's own user; everyone else gets a
// "forbidden" reply at once, from the accept loop, without a thread.  Names
// are resolved at start and again on SIGHUP; group membership (a database
// lookup) is cached per uid for kGateCacheSeconds.
//
// Refusals holds the connections that were answered from the accept loop
// (refused, or over a connection limit) for a moment, so that the caller
// reads the reply before the close; a bounded number, the rest are closed
// at once.
#ifndef MAILOAUTH_TOKENHELPER_AGENT_GATE_H
#define MAILOAUTH_TOKENHELPER_AGENT_GATE_H

#include <poll.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/config.h"
#include "tokenhelper/peercred.h"

namespace mailoauth::agent {

constexpr long kGateCacheSeconds = 60;

// The system's databases, replaceable in tests.
struct GateLookups {
    std::function<bool(const std::string& name, uid_t& uid)> user;
    GroupLookup group;
    // The groups uid belongs to by the databases; false when it has no
    // passwd entry.
    std::function<bool(uid_t uid, std::vector<gid_t>& groups)> groups_of;
};
GateLookups system_lookups();

class Gate {
public:
    // Collects the words of every allow_users and allow_groups in cfg (global
    // and every account) and resolves the names.  Words were checked at
    // start (check_allow_settings); a bad one admits nobody.
    void resolve(const config::Config& cfg, uid_t self, GateLookups lookups);
    // Whether a caller with this uid and primary gid may send a request.
    bool admits(uid_t uid, gid_t gid, std::int64_t now);

    std::size_t uid_count() const { return uids_.size(); }
    std::size_t gid_count() const { return gids_.size(); }

private:
    struct Cached {
        bool admitted = false;
        std::int64_t at = 0;
    };
    uid_t self_ = 0;
    std::set<uid_t> uids_;
    std::set<gid_t> gids_;
    GateLookups lookups_;
    std::map<uid_t, Cached> cache_;
};

// Connections answered from the accept loop, kept until the caller closes,
// kRefusalLingerMs pass, or more than 64 KiB arrive.
constexpr int kRefusalLingerMs = 500;
constexpr std::size_t kMaxLingering = 32;
constexpr std::size_t kMaxLingeringPerUid = 4;

class Refusals {
public:
    Refusals() = default;
    Refusals(const Refusals&) = delete;
    Refusals& operator=(const Refusals&) = delete;
    ~Refusals();
    // Sends the reply (without waiting: it fits in an empty socket buffer)
    // and takes fd over.
    void add(int fd, uid_t uid, const std::string& reply, long long now_ms);
    // pollfd entries for the lingering connections, appended to fds.
    void poll_entries(std::vector<struct pollfd>& fds) const;
    // Handles the revents of the entries poll_entries appended (starting at
    // fds[first]) and closes what is done or expired.
    void handle(const std::vector<struct pollfd>& fds, std::size_t first, long long now_ms);
    // Milliseconds until the next expiry; -1 when nothing lingers.
    int timeout_ms(long long now_ms) const;
    std::size_t size() const { return conns_.size(); }

private:
    struct Conn {
        int fd;
        uid_t uid;
        long long deadline;
        std::size_t received;
    };
    std::vector<Conn> conns_;
};

// The protocol reply of a refusal: error, error_description and status.
std::string refusal_reply(const std::string& error, const std::string& description, int status);

}  // namespace mailoauth::agent

#endif
