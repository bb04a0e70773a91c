#include "tokenhelper/peercred.h"

#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace mailoauth::agent {

namespace {

constexpr std::size_t kMaxName = 64;
constexpr std::size_t kMaxGroups = 65536;  // NGROUPS_MAX on Linux

bool is_digits(std::string_view w) {
    if (w.empty()) return false;
    for (char c : w)
        if (c < '0' || c > '9') return false;
    return true;
}

bool valid_word(std::string_view w) {
    if (w.empty()) return false;
    if (is_digits(w)) return w.size() <= 10;
    if (w.size() > kMaxName || w.front() == '-') return false;
    for (std::size_t i = 0; i < w.size(); ++i) {
        char c = w[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                  c == '_' || c == '-' || (c == '$' && i + 1 == w.size() && i > 0);
        if (!ok) return false;
    }
    return true;
}

// A decimal id that fits the type; false for names and for out-of-range
// numbers (which then match nothing).
template <typename Id>
bool numeric_id(const std::string& w, Id& out) {
    if (!is_digits(w) || w.size() > 10) return false;
    unsigned long long v = 0;
    for (char c : w) v = v * 10 + static_cast<unsigned>(c - '0');
    if (v > static_cast<unsigned long long>(static_cast<Id>(-1))) return false;
    out = static_cast<Id>(v);
    return true;
}

std::size_t buffer_size(int which) {
    long n = sysconf(which);
    return n > 0 && n < (1 << 20) ? static_cast<std::size_t>(n) : 16384;
}

// The passwd name and primary group of uid.
bool user_of(uid_t uid, std::string& name, gid_t& gid) {
    std::vector<char> buf(buffer_size(_SC_GETPW_R_SIZE_MAX));
    for (;;) {
        struct passwd pw;
        struct passwd* res = nullptr;
        int rc = getpwuid_r(uid, &pw, buf.data(), buf.size(), &res);
        if (rc == ERANGE && buf.size() < (1u << 20)) {
            buf.resize(buf.size() * 2);
            continue;
        }
        if (rc != 0 || !res) return false;
        name = pw.pw_name;
        gid = pw.pw_gid;
        return true;
    }
}

}  // namespace

bool parse_allow_words(std::string_view text, std::vector<std::string>& out, std::string& err) {
    out.clear();
    std::size_t i = 0;
    while (i < text.size()) {
        char c = text[i];
        if (c == ',' || c == ' ' || c == '\t') {
            ++i;
            continue;
        }
        std::size_t j = i;
        while (j < text.size() && text[j] != ',' && text[j] != ' ' && text[j] != '\t') ++j;
        std::string_view w = text.substr(i, j - i);
        if (!valid_word(w)) {
            err = "'" + std::string(w.substr(0, 80)) +
                  "' is not a user or group name or a numeric id (names: letters, digits and ._-)";
            out.clear();
            return false;
        }
        out.emplace_back(w);
        i = j;
    }
    return true;
}

Decision check_caller(const AllowList& list, const Caller& caller, uid_t self_uid, const GroupLookup& lookup) {
    Decision d;
    if (caller.uid == 0) {
        d.allowed = true;
        d.why = "root";
        return d;
    }
    if (caller.uid == self_uid) {
        d.allowed = true;
        d.why = "the agent's own user";
        return d;
    }
    for (const auto& w : list.users) {
        uid_t id;
        bool match = numeric_id(w, id) ? id == caller.uid : (!caller.user.empty() && w == caller.user);
        if (match) {
            d.allowed = true;
            d.why = "allow_users lists " + w;
            return d;
        }
    }
    for (const auto& w : list.groups) {
        gid_t id;
        if (!numeric_id(w, id) && !(lookup && lookup(w, id))) continue;
        for (gid_t g : caller.groups) {
            if (g == id) {
                d.allowed = true;
                d.why = "allow_groups lists " + w;
                return d;
            }
        }
    }
    d.why = list.empty() ? "the account has no allow_users or allow_groups"
                         : "not in allow_users/allow_groups";
    return d;
}

bool peer_caller(int fd, Caller& caller, std::string& err) {
    caller = Caller();
    struct ucred cred;
    if (!peer_cred(fd, cred, err)) return false;
    caller.pid = cred.pid;
    caller.uid = cred.uid;
    caller.gid = cred.gid;
    caller.groups.push_back(cred.gid);
    std::vector<gid_t> groups;
    if (!user_groups(cred.uid, caller.user, groups)) return true;
    for (gid_t g : groups)
        if (g != cred.gid) caller.groups.push_back(g);
    return true;
}

bool peer_cred(int fd, struct ucred& cred, std::string& err) {
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof cred) {
        err = std::string("cannot get the peer's credentials (SO_PEERCRED): ") + std::strerror(errno);
        return false;
    }
    return true;
}

bool user_groups(uid_t uid, std::string& user, std::vector<gid_t>& groups) {
    user.clear();
    groups.clear();
    gid_t pw_gid = 0;
    if (!user_of(uid, user, pw_gid)) return false;
    // The groups the user belongs to by the databases.  A process may have
    // dropped some of them (Postfix keeps only its primary group), but the
    // administrator names users and groups, not process states, and a
    // process can regain its own user's groups anyway.
    int n = 64;
    groups.resize(static_cast<std::size_t>(n));
    for (;;) {
        int want = n;
        if (getgrouplist(user.c_str(), pw_gid, groups.data(), &want) >= 0) {
            groups.resize(static_cast<std::size_t>(want));
            break;
        }
        if (want <= n || static_cast<std::size_t>(want) > kMaxGroups) {
            groups.clear();
            break;
        }
        n = want;
        groups.resize(static_cast<std::size_t>(n));
    }
    return true;
}

bool lookup_group(const std::string& name, gid_t& gid) {
    std::vector<char> buf(buffer_size(_SC_GETGR_R_SIZE_MAX));
    for (;;) {
        struct group gr;
        struct group* res = nullptr;
        int rc = getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &res);
        if (rc == ERANGE && buf.size() < (1u << 22)) {
            buf.resize(buf.size() * 2);
            continue;
        }
        if (rc != 0 || !res) return false;
        gid = gr.gr_gid;
        return true;
    }
}

bool lookup_user(const std::string& name, uid_t& uid) {
    std::vector<char> buf(buffer_size(_SC_GETPW_R_SIZE_MAX));
    for (;;) {
        struct passwd pw;
        struct passwd* res = nullptr;
        int rc = getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &res);
        if (rc == ERANGE && buf.size() < (1u << 20)) {
            buf.resize(buf.size() * 2);
            continue;
        }
        if (rc != 0 || !res) return false;
        uid = pw.pw_uid;
        return true;
    }
}

std::string describe(const Caller& caller) {
    return "uid " + std::to_string(caller.uid) + " (" +
           (caller.user.empty() ? std::string("no passwd entry") : caller.user) + ")";
}

std::string describe_uid(uid_t uid) {
    Caller c;
    c.uid = uid;
    gid_t ignored;
    user_of(uid, c.user, ignored);
    return describe(c);
}

}  // namespace mailoauth::agent
