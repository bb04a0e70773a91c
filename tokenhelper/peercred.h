// Who may ask the agent for an account's token.
//
// The agent's socket is reachable by every local process (an abstract
// socket has no file permissions at all), so the kernel-verified
// credentials of the caller (SO_PEERCRED) are the access control: the
// caller's uid must be listed in the account's allow_users, or one of its
// groups in allow_groups.  Root and the agent's own user are always
// allowed: both can read the store directly anyway.
//
// Parsing and matching are pure functions (table-tested in
// tests/unit/test_agent.cc); only peer_caller() and the lookup seams touch
// the system's user and group databases.
#ifndef MAILOAUTH_TOKENHELPER_PEERCRED_H
#define MAILOAUTH_TOKENHELPER_PEERCRED_H

#include <sys/socket.h>
#include <sys/types.h>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace mailoauth::agent {

// The words of allow_users or allow_groups: names or decimal ids,
// separated by commas and/or white space.
struct AllowList {
    std::vector<std::string> users;
    std::vector<std::string> groups;
    bool empty() const { return users.empty() && groups.empty(); }
};

// Splits text into words.  A word is a decimal id (at most 10 digits) or a
// name of letters, digits and "._-" (not starting with '-'), optionally
// ending in '$', at most 64 characters.  On a bad word returns false and
// names it in err.
bool parse_allow_words(std::string_view text, std::vector<std::string>& out, std::string& err);

// A connected caller as the kernel reports it, plus its names and groups
// from the user and group databases.
struct Caller {
    pid_t pid = 0;
    uid_t uid = 0;
    gid_t gid = 0;               // the primary gid the process runs with
    std::string user;            // passwd name of uid; "" when it has none
    std::vector<gid_t> groups;   // gid, and the groups of user (getgrouplist)
};

// name -> gid, for allow_groups entries given by name.
using GroupLookup = std::function<bool(const std::string& name, gid_t& gid)>;

struct Decision {
    bool allowed = false;
    std::string why;   // for the log: "listed in allow_users", "root", ...
};

// Root (uid 0) and self_uid are always allowed; otherwise the caller must
// match a word of list.users (its uid or user name) or of list.groups (a
// gid in caller.groups, names resolved through lookup).  An empty list
// allows nobody else.
Decision check_caller(const AllowList& list, const Caller& caller, uid_t self_uid,
                      const GroupLookup& lookup);

// Fills caller from SO_PEERCRED of the connected socket fd and the passwd
// and group databases.  False with err when the kernel gives no
// credentials.
bool peer_caller(int fd, Caller& caller, std::string& err);

// SO_PEERCRED of the connected socket fd: the peer's pid, uid and gid (for
// a listening peer, those of the process that last called listen()).
bool peer_cred(int fd, struct ucred& cred, std::string& err);

// The passwd name of uid and the groups it belongs to by the databases
// (getgrouplist, its primary group included); false when uid has no
// passwd entry.
bool user_groups(uid_t uid, std::string& user, std::vector<gid_t>& groups);

// getgrnam_r; false when there is no such group.
bool lookup_group(const std::string& name, gid_t& gid);
// getpwnam_r; false when there is no such user.
bool lookup_user(const std::string& name, uid_t& uid);

// "uid 107 (postfix)" or "uid 4711 (no passwd entry)".
std::string describe(const Caller& caller);
// The same for a bare uid (looks its name up).
std::string describe_uid(uid_t uid);

}  // namespace mailoauth::agent

#endif
