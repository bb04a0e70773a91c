#include "tokenhelper/agent_server.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "common/msgio.h"
#include "common/protocol.h"
#include "tokenhelper/agent_config.h"
#include "tokenhelper/agent_log.h"
#include "tokenhelper/errors.h"
#include "tokenhelper/peercred.h"
#include "tokenhelper/settings.h"
#include "tokenhelper/store.h"
#include "tokenhelper/timefmt.h"
#include "tokenhelper/tokens.h"

namespace mailoauth::agent {

namespace {

using msgio::now_ms;

// Reads one request: up to the blank line that ends it or end of input,
// within kReadTimeoutMs and protocol::kMaxMessage bytes.
bool read_request(int fd, std::string& buf, std::string& err) {
    int e = 0;
    msgio::Io io = msgio::read_message(fd, buf, now_ms() + kReadTimeoutMs, e);
    if (io == msgio::Io::TimedOut) {
        err = "no complete request within " + std::to_string(kReadTimeoutMs / 1000) + " s";
        return false;
    }
    if (io != msgio::Io::Ok) {
        err = std::string("cannot read the request: ") + std::strerror(e);
        return false;
    }
    if (buf.size() > protocol::kMaxMessage) {
        err = "request larger than " + std::to_string(protocol::kMaxMessage) + " bytes";
        return false;
    }
    return true;
}

// After an early reply (the request was not read to its end): tell the
// caller we are done writing and swallow what it still sends, briefly, so
// that closing with unread input does not reset the connection before the
// caller has read the reply.
void linger_close(int fd) {
    ::shutdown(fd, SHUT_WR);
    const long long deadline = now_ms() + 1000;
    char chunk[4096];
    std::size_t total = 0;
    while (total < (1u << 20)) {
        long long left = deadline - now_ms();
        if (left <= 0) break;
        struct pollfd p = {fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left)) <= 0) break;
        ssize_t n = ::recv(fd, chunk, sizeof chunk, MSG_DONTWAIT);
        if (n <= 0 && !(n < 0 && (errno == EINTR || errno == EAGAIN))) break;
        if (n > 0) total += static_cast<std::size_t>(n);
    }
}

void send_reply(int fd, protocol::Message& m, int status) {
    m.set("status", std::to_string(status));
    std::string out = protocol::serialize(m);
    int ignored = 0;  // a caller that went away: nothing to tell it
    msgio::send_all(fd, out, now_ms() + kRequestTimeoutMs, ignored);
    wipe_string(out);
    m.clear();
}

void send_error(int fd, const std::string& error, const std::string& description, int status) {
    protocol::Message m;
    m.set("error", error);
    m.set("error_description", one_line(description));
    send_reply(fd, m, status);
}

void send_token(int fd, const std::string& account, const Outcome& o, const Caller& caller, bool force) {
    protocol::Message m;
    if (!protocol::build_token_reply(m, o.access_token.reveal(), o.expires_at, o.user, o.lifetime)) {
        send_error(fd, "bad_response", "the stored token or user name cannot be sent", kExitTempFail);
        return;
    }
    if (log_wanted(LOG_DEBUG))  // a hash of the token and the caller's name, at every request
        logmsg(LOG_DEBUG, "token of %s (%s) to %s%s", account.c_str(), o.access_token.fingerprint().c_str(),
               describe(caller).c_str(), force ? " (forced refresh)" : "");
    send_reply(fd, m, 0);
}

// The length of the whole request at the start of text (through the blank
// line that ends it), or 0 while it is incomplete.
std::size_t request_length(std::string_view text) {
    if (!text.empty() && text[0] == '\n') return 1;
    std::size_t end = text.find("\n\n");
    return end == std::string_view::npos ? 0 : end + 2;
}

}  // namespace

Identities::Identities()
    : lookups_{[](uid_t uid, std::string& user, std::vector<gid_t>& groups) { return user_groups(uid, user, groups); },
               lookup_group} {}

bool Identities::caller(int fd, Caller& out, std::string& err, std::int64_t now) {
    struct ucred cred;
    if (!peer_cred(fd, cred, err)) return false;
    caller(cred, out, now);
    return true;
}

void Identities::caller(const struct ucred& cred, Caller& out, std::int64_t now) {
    out = Caller();
    out.pid = cred.pid;
    out.uid = cred.uid;
    out.gid = cred.gid;
    complete(out, now);
}

bool Identities::remembered_user(uid_t uid, User& u, std::int64_t now) {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = users_.find(uid);
    if (it == users_.end() || !fresh(it->second.at, now)) return false;
    u = it->second;
    return true;
}

void Identities::fill(Caller& c, const User& u) {
    c.user.clear();
    c.groups.assign(1, c.gid);
    if (!u.known) return;
    c.user = u.name;
    for (gid_t g : u.groups)
        if (g != c.gid) c.groups.push_back(g);
}

void Identities::complete(Caller& c, std::int64_t now) {
    User u;
    if (!remembered_user(c.uid, u, now)) {
        u.known = lookups_.user_groups && lookups_.user_groups(c.uid, u.name, u.groups);
        u.at = now;
        std::lock_guard<std::mutex> lk(mu_);
        if (users_.size() >= 4096) users_.clear();
        users_[c.uid] = u;
    }
    fill(c, u);
}

bool Identities::remembered(const struct ucred& cred, Caller& out, std::int64_t now) {
    User u;
    if (!remembered_user(cred.uid, u, now)) return false;
    out = Caller();
    out.pid = cred.pid;
    out.uid = cred.uid;
    out.gid = cred.gid;
    fill(out, u);
    return true;
}

bool Identities::remembered_group(const std::string& name, gid_t& gid, bool& known, std::int64_t now) {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = groups_.find(name);
    if (it == groups_.end() || !fresh(it->second.at, now)) return false;
    gid = it->second.gid;
    known = it->second.known;
    return true;
}

bool Identities::group(const std::string& name, gid_t& gid, std::int64_t now) {
    bool known = false;
    if (remembered_group(name, gid, known, now)) return known;
    Group g;
    g.known = lookups_.group && lookups_.group(name, g.gid);
    g.at = now;
    std::lock_guard<std::mutex> lk(mu_);
    if (groups_.size() >= 4096) groups_.clear();
    groups_[name] = g;
    gid = g.gid;
    return g.known;
}

void Identities::forget() {
    std::lock_guard<std::mutex> lk(mu_);
    users_.clear();
    groups_.clear();
}

Server::Server(const Environment& env, HttpClient& http)
    : env_(env), http_(http), broker_(TokenBroker::Hooks{
          [this](const std::string& a, bool f, const std::string& r) { return fetch(a, f, r); },
          [this](const std::string& a, Outcome& o) { return peek(a, o); },
          [this](const std::string& a) { return version(a); },
          [this](const std::string& a) { return env_.refresh_margin(a); },
          [] { return static_cast<std::int64_t>(std::time(nullptr)); },
          // One refresh by this process or another: the lock wait and the
          // HTTP request, as get_access_token bounds them.
          std::chrono::milliseconds((2 * env.http_timeout + 15) * 1000),
      }),
      self_(::geteuid()) {}

Outcome Server::fetch(const std::string& account, bool force, const std::string& rejected_tail) {
    Outcome o;
    Store store(env_.store_dir);
    std::string err;
    const std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
    std::int64_t last = last_scan_.load();
    const bool scan = last < 0 || now < last || now - last >= kLeftoverScanSeconds;
    if (scan) last_scan_.store(now);
    if (!store.open(false, err, scan)) {
        o.status = kExitConfig;
        o.error = "store_error";
        o.message = err + "; sign in first with: mailoauth login " + account;
        return o;
    }
    TokenResult t = get_access_token(env_, store, http_, account, force, rejected_tail);
    return outcome_of(t, account);
}

bool Server::peek(const std::string& account, Outcome& out) {
    Store store(env_.store_dir);
    AccountRecord rec;
    std::string err;
    if (store.load(account, rec, err) != LoadStatus::Ok || rec.access_token.empty()) return false;
    out.access_token = rec.access_token;
    out.expires_at = rec.access_expires_at;
    out.lifetime = rec.access_lifetime;
    out.user = rec.user.empty() ? account : rec.user;
    return true;
}

std::string Server::version(const std::string& account) {
    struct stat st;
    if (::lstat(Store(env_.store_dir).path_of(account).c_str(), &st) != 0) return "";
    return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
           std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
}

void Server::serve(int fd) {
    Caller caller;
    std::string err;
    const std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
    if (!identities_.caller(fd, caller, err, now)) {
        logmsg_limited(LOG_ERR, "nocred", "refused a caller: %s", err.c_str());
        send_error(fd, "forbidden", "not allowed by mailoauth.conf: the agent cannot identify the caller", kExitConfig);
        return;
    }
    serve(fd, caller, now, std::string());
}

void Server::serve(int fd, const struct ucred& cred) { serve(fd, cred, std::string()); }

bool Server::serve_at_once(int fd, const struct ucred& cred, std::string& taken) {
    taken.clear();
    // Requests are a few hundred bytes; a longer one takes the full path,
    // which reads the rest.
    char chunk[2048];
    ssize_t n = ::recv(fd, chunk, sizeof chunk, MSG_DONTWAIT);
    if (n <= 0) return false;
    taken.assign(chunk, static_cast<std::size_t>(n));
    wipe_memory(chunk, sizeof chunk);
    const std::size_t len = request_length(taken);
    protocol::Request req;
    protocol::Problem problem;
    // Only a whole request and nothing after it: what a caller sends.
    if (len != taken.size() || !protocol::parse_request(taken, req, problem) || !problem.error.empty() ||
        req.force_refresh || !valid_account_name(req.account))
        return false;
    // Only what the workers looked up already: a lookup in the user and
    // group databases (perhaps a directory server) must not hold up the
    // accept loop.
    Caller caller;
    const std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
    if (!identities_.remembered(cred, caller, now)) return false;
    bool unknown_group = false;
    Decision d = check_caller(allow_list_for(env_.cfg, req.account), caller, self_,
                              [this, now, &unknown_group](const std::string& name, gid_t& gid) {
                                  bool known = false;
                                  if (!identities_.remembered_group(name, gid, known, now)) unknown_group = true;
                                  return known;
                              });
    Outcome o;
    if (unknown_group || !d.allowed || !broker_.cached(req.account, o)) return false;
    wipe_string(taken);
    taken.clear();
    send_token(fd, req.account, o, caller, false);
    return true;
}

void Server::serve(int fd, const struct ucred& cred, std::string taken) {
    // The credentials the kernel recorded at connect() do not change: the
    // accept loop's reading is as good as a second one.
    Caller caller;
    const std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
    identities_.caller(cred, caller, now);
    serve(fd, caller, now, std::move(taken));
}

void Server::serve(int fd, const Caller& caller, std::int64_t now, std::string buf) {
    std::string err;
    const std::string who = describe(caller);
    // What a caller can repeat at will is logged once a minute per uid.
    const std::string bad_key = "bad:" + std::to_string(caller.uid);
    if (!read_request(fd, buf, err)) {
        logmsg_limited(LOG_WARNING, bad_key, "%s: bad request: %s", who.c_str(), err.c_str());
        send_error(fd, "bad_request", err, kExitDataErr);
        linger_close(fd);
        return;
    }
    protocol::Request req;
    protocol::Problem problem;
    const bool parsed = protocol::parse_request(buf, req, problem);
    wipe_string(buf);
    const std::string& account = req.account;
    if (parsed && !valid_account_name(account)) {
        problem.error = "bad_request";
        problem.description = "'" + one_line(account, 130) + "' is not a valid account name";
    }
    if (!problem.error.empty()) {
        logmsg_limited(LOG_WARNING, bad_key, "%s: bad request: %s", who.c_str(),
                       one_line(problem.description, 300).c_str());
        send_error(fd, problem.error, problem.description, kExitDataErr);
        return;
    }
    Decision d = check_caller(allow_list_for(env_.cfg, account), caller, self_,
                              [this, now](const std::string& name, gid_t& gid) {
                                  return identities_.group(name, gid, now);
                              });
    if (!d.allowed) {
        logmsg_limited(LOG_WARNING, "refused:" + std::to_string(caller.uid) + ":" + account,
                       "refused %s (pid %ld) for account %s: %s", who.c_str(), static_cast<long>(caller.pid),
                       account.c_str(), d.why.c_str());
        send_error(fd, "forbidden",
                   "not allowed by mailoauth.conf: " + who + " is not in allow_users/allow_groups of account " +
                       account,
                   kExitConfig);
        return;
    }
    const bool force = req.force_refresh;
    Outcome o = broker_.get(account, force, req.rejected);
    if (o.refreshed)
        logmsg(LOG_INFO, "refreshed the access token of %s (%s), valid until %s", account.c_str(),
               o.access_token.fingerprint().c_str(), format_utc(o.expires_at).c_str());
    if (!o.warning.empty() && o.source == Outcome::Source::Fetched)
        logmsg(LOG_WARNING, "%s: %s", account.c_str(), one_line(o.warning).c_str());
    if (o.source == Outcome::Source::RateLimited)
        logmsg_limited(LOG_WARNING, "force:" + account, "%s: %s", account.c_str(), o.warning.c_str());
    if (o.status == 0) {
        send_token(fd, account, o, caller, force);
        return;
    }
    // Once a minute per account and status: a caller asking in a loop for
    // an account that is signed out would otherwise log every request.
    if (o.source == Outcome::Source::Fetched)
        logmsg_limited(o.status == kExitTempFail ? LOG_WARNING : LOG_ERR,
                       "failed:" + account + ":" + std::to_string(o.status), "token for %s failed (status %d): %s",
                       account.c_str(), o.status, one_line(o.message).c_str());
    send_error(fd, o.error.empty() ? "failed" : o.error, o.message, o.status);
}

}  // namespace mailoauth::agent
