#include "tokenhelper/agent.h"

#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "common/fd.h"
#include "common/msgio.h"
#include "common/protocol.h"
#include "common/sanitize.h"
#include "tokenhelper/errors.h"
#include "tokenhelper/http.h"
#include "tokenhelper/peercred.h"
#include "tokenhelper/settings.h"
#include "tokenhelper/store.h"
#include "tokenhelper/timefmt.h"
#include "tokenhelper/tokens.h"

namespace mailoauth::agent {

// --- the socket name ---------------------------------------------------------

bool parse_socket_name(const std::string& spec, SocketName& out, std::string& err) {
    out = SocketName();
    out.spec = spec;
    out.addr.sun_family = AF_UNIX;
    const std::size_t room = sizeof out.addr.sun_path;  // 108 on Linux
    if (spec.size() >= 2 && spec[0] == '@') {
        // Abstract: sun_path[0] is NUL and the name is the following bytes,
        // exactly addrlen long (no terminator).
        std::string name = spec.substr(1);
        if (name.size() > room - 1) {
            err = "socket name '" + spec + "' is longer than " + std::to_string(room - 1) + " characters";
            return false;
        }
        for (char c : name) {
            if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
                err = "socket name '" + spec + "' may not contain spaces or control characters";
                return false;
            }
        }
        out.abstract = true;
        std::memcpy(out.addr.sun_path + 1, name.data(), name.size());
        out.len = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + 1 + name.size());
        return true;
    }
    if (!spec.empty() && spec[0] == '/') {
        if (spec.size() > room - 1) {
            err = "socket path '" + spec + "' is longer than " + std::to_string(room - 1) + " bytes";
            return false;
        }
        if (spec.find('\0') != std::string::npos) {
            err = "socket path contains a NUL byte";
            return false;
        }
        std::memcpy(out.addr.sun_path, spec.data(), spec.size());
        out.len = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + spec.size() + 1);
        return true;
    }
    err = "socket '" + spec + "' must be @NAME (Linux abstract namespace, e.g. @mailoauth-agent) or an "
          "absolute path";
    return false;
}

// --- single flight ------------------------------------------------------------

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
    o.user = s.user;
    o.source = src;
    return o;
}

namespace {
bool ends_with(const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}
}  // namespace

Outcome TokenBroker::get(const std::string& account, bool force, const std::string& rejected_tail) {
    std::shared_ptr<Slot> slot = slot_for(account);
    Slot& s = *slot;
    std::unique_lock<std::mutex> lk(s.mu);
    // With force, the caller's token was rejected: only another token will
    // do.  Which one was rejected: the one ending in rejected_tail when the
    // caller says so, else the one cached when it arrived (and then only a
    // token obtained after its arrival counts as newer).
    const bool tail_known = rejected_tail.size() >= kRejectedTailMin;
    const std::uint64_t arrival = s.completed;
    Secret rejected;
    if (force && s.have) rejected = s.token;

    for (;;) {
        const std::int64_t now = hooks_.now();
        const long margin = hooks_.margin(account);
        const std::string version = hooks_.version(account);
        if (s.have && version != s.version) {
            s.have = false;  // the store changed under us: login, logout, another refresher
            s.token.clear();
        }
        const bool still_valid = s.have && s.expires_at - kMinValidity > now;
        if (s.have) {
            if (!force && s.expires_at - margin > now) return from_cache(s, Outcome::Source::Cache);
            const bool replaced = tail_known ? !ends_with(s.token.reveal(), rejected_tail)
                                             : s.completed > arrival && s.token != rejected;
            if (force && replaced && still_valid) return from_cache(s, Outcome::Source::Cache);
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
        Outcome o;
        try {
            o = hooks_.fetch(account, force, rejected_tail);
        } catch (const std::exception& e) {
            o = Outcome();
            o.status = kExitTempFail;
            o.error = "internal";
            o.message = std::string("internal error: ") + e.what();
        }
        std::string after;
        try {
            after = hooks_.version(account);
        } catch (...) {
        }
        const std::int64_t done = hooks_.now();
        lk.lock();
        s.busy = false;
        ++s.completed;
        o.source = Outcome::Source::Fetched;
        if (o.status == 0) {
            s.have = true;
            s.token = o.access_token;
            s.expires_at = o.expires_at;
            s.user = o.user;
            s.version = after;
            s.failed = false;
            s.failure = Outcome();
            // A warning means the refresh failed and the old token was
            // served: back off before trying again.
            s.retry_at = o.warning.empty() ? 0 : done + kRetryAfterFailure;
            s.failure_version = after;
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

// --- logging -------------------------------------------------------------------

namespace {

bool g_log_stderr = true;

const char* level_name(int prio) {
    switch (prio) {
    case LOG_ERR: return "error";
    case LOG_WARNING: return "warning";
    case LOG_NOTICE: return "notice";
    case LOG_INFO: return "info";
    default: return "debug";
    }
}

// Never pass a token here: the log is read by people and kept.
__attribute__((format(printf, 2, 3))) void logmsg(int prio, const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    va_list copy;
    va_copy(copy, ap);
    vsyslog(prio, fmt, ap);
    va_end(ap);
    if (g_log_stderr && prio != LOG_DEBUG) {
        char line[2048];
        std::vsnprintf(line, sizeof line, fmt, copy);
        std::fprintf(stderr, "mailoauth-agent[%ld]: %s: %s\n", static_cast<long>(getpid()), level_name(prio), line);
        std::fflush(stderr);
    }
    va_end(copy);
}

// When systemd connects stderr to the journal, syslog already reaches it.
bool stderr_is_journal() {
    const char* js = std::getenv("JOURNAL_STREAM");
    if (!js || !*js) return false;
    struct stat st;
    if (fstat(STDERR_FILENO, &st) != 0) return false;
    unsigned long long dev = 0, ino = 0;
    if (std::sscanf(js, "%llu:%llu", &dev, &ino) != 2) return false;
    return dev == static_cast<unsigned long long>(st.st_dev) && ino == static_cast<unsigned long long>(st.st_ino);
}

// A value for one protocol line or one log line: printable, bounded.
std::string one_line(const std::string& s, std::size_t max = 1000) { return sanitize::text(s, max); }

std::string user_name(uid_t uid) {
    struct passwd pw;
    struct passwd* res = nullptr;
    char buf[4096];
    if (getpwuid_r(uid, &pw, buf, sizeof buf, &res) == 0 && res) return pw.pw_name;
    return "uid " + std::to_string(uid);
}

using msgio::now_ms;


// Reads one request: up to the blank line that ends it or end of input,
// within kRequestTimeoutMs and protocol::kMaxMessage bytes.
bool read_request(int fd, std::string& buf, std::string& err) {
    int e = 0;
    msgio::Io io = msgio::read_message(fd, buf, now_ms() + kRequestTimeoutMs, e);
    if (io == msgio::Io::TimedOut) {
        err = "no complete request within " + std::to_string(kRequestTimeoutMs / 1000) + " s";
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

// Ties each account to its allow lists, from the configuration.
AllowList allow_list_for(const config::Config& cfg, const std::string& account) {
    AllowList l;
    std::string ignored;
    // Validated at start; a word that does not parse allows nobody.
    parse_allow_words(cfg.get(account, "allow_users", ""), l.users, ignored);
    parse_allow_words(cfg.get(account, "allow_groups", ""), l.groups, ignored);
    return l;
}

// Checks allow_users and allow_groups in every section; warns about names
// that do not exist (a typo would silently refuse the caller).
bool check_allow_settings(const config::Config& cfg, std::string& err) {
    std::vector<std::pair<std::string, const config::Section*>> sections;
    sections.emplace_back("", &cfg.global);
    for (const auto& a : cfg.accounts) sections.emplace_back(a.first, &a.second);
    for (const auto& sec : sections) {
        for (const char* key : {"allow_users", "allow_groups"}) {
            auto it = sec.second->find(key);
            if (it == sec.second->end()) continue;
            std::vector<std::string> words;
            std::string why;
            if (!parse_allow_words(it->second.value, words, why)) {
                err = cfg.path + ":" + std::to_string(it->second.line) + ": " + key + ": " + why;
                return false;
            }
            const bool users = std::strcmp(key, "allow_users") == 0;
            for (const auto& w : words) {
                if (w.find_first_not_of("0123456789") == std::string::npos) continue;
                uid_t u;
                gid_t g;
                if (users ? lookup_user(w, u) : lookup_group(w, g)) continue;
                logmsg(LOG_WARNING, "%s:%d: %s: there is no %s '%s'; it allows nobody", cfg.path.c_str(),
                       it->second.line, key, users ? "user" : "group", w.c_str());
            }
        }
    }
    return true;
}

struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    int active = 0;
};

class Server {
public:
    Server(const Environment& env, HttpClient& http);
    void serve(int fd);
    TokenBroker& broker() { return broker_; }

private:
    Outcome fetch(const std::string& account, bool force, const std::string& rejected_tail);
    bool peek(const std::string& account, Outcome& out);
    std::string version(const std::string& account);

    const Environment& env_;
    HttpClient& http_;
    TokenBroker broker_;
};

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
      }) {}

Outcome Server::fetch(const std::string& account, bool force, const std::string& rejected_tail) {
    Outcome o;
    Store store(env_.store_dir);
    std::string err;
    if (!store.open(false, err)) {
        o.status = kExitConfig;
        o.error = "store_error";
        o.message = err + "; sign in first with: mailoauth login " + account;
        return o;
    }
    TokenResult t = get_access_token(env_, store, http_, account, force, rejected_tail);
    o.status = t.exit_code;
    o.error = t.error.empty() && t.exit_code != 0 ? "failed" : t.error;
    o.message = t.message;
    o.warning = t.warning;
    o.refreshed = t.refreshed;
    if (t.exit_code == 0) {
        o.access_token = t.record.access_token;
        o.expires_at = t.record.access_expires_at;
        o.user = t.record.user.empty() ? account : t.record.user;
    }
    return o;
}

bool Server::peek(const std::string& account, Outcome& out) {
    Store store(env_.store_dir);
    AccountRecord rec;
    std::string err;
    if (store.load(account, rec, err) != LoadStatus::Ok || rec.access_token.empty()) return false;
    out.access_token = rec.access_token;
    out.expires_at = rec.access_expires_at;
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
    if (!peer_caller(fd, caller, err)) {
        logmsg(LOG_ERR, "refused a caller: %s", err.c_str());
        send_error(fd, "forbidden", "not allowed by mailoauth.conf: the agent cannot identify the caller", kExitConfig);
        return;
    }
    const std::string who = describe(caller);
    std::string buf;
    if (!read_request(fd, buf, err)) {
        logmsg(LOG_WARNING, "%s: bad request: %s", who.c_str(), err.c_str());
        send_error(fd, "bad_request", err, kExitDataErr);
        linger_close(fd);
        return;
    }
    protocol::Message req;
    protocol::ParseResult pr = protocol::parse(buf, req);
    wipe_string(buf);
    if (!pr.ok) {
        std::string why = "request line " + std::to_string(pr.line) + ": " + pr.error;
        logmsg(LOG_WARNING, "%s: bad request: %s", who.c_str(), one_line(why, 300).c_str());
        send_error(fd, "bad_request", why, kExitDataErr);
        return;
    }
    std::string version = req.get_or("version", "1");
    if (version != "1") {
        send_error(fd, "unsupported_version", "helper protocol version " + one_line(version, 20) +
                   " is not supported (this mailoauth agent speaks version 1)", kExitDataErr);
        return;
    }
    const std::string account = req.get_or("account", "");
    if (account.empty() || !valid_account_name(account)) {
        std::string why = account.empty() ? "the request has no 'account'"
                                          : "'" + one_line(account, 130) + "' is not a valid account name";
        logmsg(LOG_WARNING, "%s: bad request: %s", who.c_str(), why.c_str());
        send_error(fd, "bad_request", why, kExitDataErr);
        return;
    }
    Decision d = check_caller(allow_list_for(env_.cfg, account), caller, ::geteuid(), lookup_group);
    if (!d.allowed) {
        logmsg(LOG_WARNING, "refused %s (pid %ld) for account %s: %s", who.c_str(), static_cast<long>(caller.pid),
               account.c_str(), d.why.c_str());
        send_error(fd, "forbidden",
                   "not allowed by mailoauth.conf: " + who + " is not in allow_users/allow_groups of account " +
                       account,
                   kExitConfig);
        return;
    }
    const bool force = req.get_or("force_refresh", "0") == "1";
    Outcome o = broker_.get(account, force, req.get_or("rejected", ""));
    if (o.refreshed)
        logmsg(LOG_INFO, "refreshed the access token of %s (%s), valid until %s", account.c_str(),
               o.access_token.fingerprint().c_str(), format_utc(o.expires_at).c_str());
    if (!o.warning.empty() && o.source == Outcome::Source::Fetched)
        logmsg(LOG_WARNING, "%s: %s", account.c_str(), one_line(o.warning).c_str());
    protocol::Message m;
    if (o.status == 0) {
        if (!m.set("access_token", o.access_token.reveal()) || !m.set("user", o.user)) {
            send_error(fd, "bad_response", "the stored token or user name cannot be sent", kExitTempFail);
            return;
        }
        m.set("expires_at", std::to_string(o.expires_at));
        logmsg(LOG_DEBUG, "token of %s (%s) to %s%s", account.c_str(), o.access_token.fingerprint().c_str(),
               who.c_str(), force ? " (forced refresh)" : "");
        send_reply(fd, m, 0);
        return;
    }
    if (o.source == Outcome::Source::Fetched)
        logmsg(o.status == kExitTempFail ? LOG_WARNING : LOG_ERR, "token for %s failed (status %d): %s",
               account.c_str(), o.status, one_line(o.message).c_str());
    send_error(fd, o.error.empty() ? "failed" : o.error, o.message, o.status);
}

// --- listening -----------------------------------------------------------------

// Binds and listens.  For a filesystem socket a leftover of a dead agent
// (connect() refused) is removed first; a live agent is left alone.
// Returns -1 and an exit status in rc on failure.
int listen_on(const SocketName& name, ino_t& inode, int& rc, std::string& err) {
    if (!name.abstract) {
        const char* path = name.addr.sun_path;
        struct stat st;
        if (::lstat(path, &st) == 0) {
            if (!S_ISSOCK(st.st_mode)) {
                err = std::string(path) + " exists and is not a socket; remove it or choose another --socket";
                rc = kExitConfig;
                return -1;
            }
            Fd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
            if (probe.get() >= 0 &&
                ::connect(probe.get(), reinterpret_cast<const struct sockaddr*>(&name.addr), name.len) == 0) {
                err = "another agent is already running on " + name.spec;
                rc = kExitTempFail;
                return -1;
            }
            if (errno != ECONNREFUSED) {
                err = "cannot check the existing socket " + name.spec + ": " + std::strerror(errno);
                rc = errno == EACCES ? kExitConfig : kExitTempFail;
                return -1;
            }
            if (::unlink(path) != 0 && errno != ENOENT) {
                err = "cannot remove the stale socket " + name.spec + ": " + std::strerror(errno);
                rc = kExitConfig;
                return -1;
            }
            logmsg(LOG_NOTICE, "removed the stale socket %s of an agent that is gone", path);
        }
    }
    Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (fd.get() < 0) {
        err = std::string("socket: ") + std::strerror(errno);
        rc = kExitTempFail;
        return -1;
    }
    if (::bind(fd.get(), reinterpret_cast<const struct sockaddr*>(&name.addr), name.len) != 0) {
        int e = errno;
        if (e == EADDRINUSE) {
            err = name.abstract ? "another agent (or another program) already listens on " + name.spec
                                : "another agent started on " + name.spec + " at the same time";
            rc = kExitTempFail;
        } else {
            err = "cannot bind " + name.spec + ": " + std::strerror(e);
            rc = (e == EACCES || e == ENOENT || e == EROFS || e == ENOTDIR) ? kExitConfig : kExitTempFail;
        }
        return -1;
    }
    if (!name.abstract) {
        // Access control is the credential check, as for the abstract
        // socket, so everyone may connect (the umask made it 0600).
        ::chmod(name.addr.sun_path, 0666);
        struct stat st;
        inode = ::lstat(name.addr.sun_path, &st) == 0 ? st.st_ino : 0;
    }
    if (::listen(fd.get(), SOMAXCONN) != 0) {
        err = std::string("listen: ") + std::strerror(errno);
        rc = kExitTempFail;
        if (!name.abstract) ::unlink(name.addr.sun_path);
        return -1;
    }
    return fd.release();
}

// Removes our filesystem socket, unless another agent has replaced it.
void unlink_ours(const SocketName& name, ino_t inode) {
    if (name.abstract || inode == 0) return;
    struct stat st;
    if (::lstat(name.addr.sun_path, &st) == 0 && st.st_ino == inode && S_ISSOCK(st.st_mode))
        ::unlink(name.addr.sun_path);
}

// Answers a caller over the connection limit at once, without reading.
void refuse_busy(int fd) {
    protocol::Message m;
    m.set("error", "busy");
    m.set("error_description", "the mailoauth agent is serving " + std::to_string(kMaxConnections) +
                                   " requests; try again shortly");
    m.set("status", std::to_string(kExitTempFail));
    std::string out = protocol::serialize(m);
    ssize_t ignored = ::send(fd, out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)ignored;
    // Swallow a request that has already arrived, without waiting: unread
    // input would turn the close into a reset that hides the reply.
    ::shutdown(fd, SHUT_WR);
    char chunk[4096];
    for (int i = 0; i < 16 && ::recv(fd, chunk, sizeof chunk, MSG_DONTWAIT) > 0; ++i) {
    }
}

// Starts the daemon: the parent waits until the child has bound the socket
// (or failed to) and exits with its status, so `mailoauth agent` returns
// when the socket is ready, and SO_PEERCRED names the daemon's pid.
// Returns the write end of the pipe in the child, -1 on failure.
int start_detached(std::string& err) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) {
        err = std::string("pipe: ") + std::strerror(errno);
        return -1;
    }
    pid_t pid = ::fork();
    if (pid < 0) {
        err = std::string("fork: ") + std::strerror(errno);
        return -1;
    }
    if (pid > 0) {
        ::close(p[1]);
        unsigned char status = 0;
        ssize_t n;
        do n = ::read(p[0], &status, 1);
        while (n < 0 && errno == EINTR);
        _exit(n == 1 ? static_cast<int>(status) : static_cast<int>(kExitTempFail));
    }
    ::close(p[0]);
    ::setsid();
    return p[1];
}

// Tells the waiting parent the status and leaves the terminal.
void finish_detach(int& ready_fd, int status) {
    if (ready_fd < 0) return;
    unsigned char c = static_cast<unsigned char>(status);
    ssize_t ignored = ::write(ready_fd, &c, 1);
    (void)ignored;
    ::close(ready_fd);
    ready_fd = -1;
    if (status != 0) return;
    if (::chdir("/") != 0) {
        // Nothing uses relative paths; the directory only pins a mount.
    }
    int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        ::dup2(null, STDIN_FILENO);
        ::dup2(null, STDOUT_FILENO);
        ::dup2(null, STDERR_FILENO);
        if (null > STDERR_FILENO) ::close(null);
    }
    g_log_stderr = false;
}

}  // namespace

int run(const Options& opts, const Environment& env, HttpClient& http) {
    openlog("mailoauth-agent", LOG_PID, LOG_MAIL);
    g_log_stderr = !stderr_is_journal();
    std::string err;

    std::string spec = !opts.socket.empty() ? opts.socket : env.cfg.get("", "agent_socket", "");
    if (spec.empty()) spec = kDefaultSocket;
    SocketName name;
    if (!parse_socket_name(spec, name, err)) {
        logmsg(LOG_ERR, "%s", err.c_str());
        return kExitConfig;
    }
    if (!check_allow_settings(env.cfg, err)) {
        logmsg(LOG_ERR, "%s", err.c_str());
        return kExitConfig;
    }
    const uid_t self = ::geteuid();
    const bool any_allow = env.cfg.lookup("", "allow_users") || env.cfg.lookup("", "allow_groups") ||
                           [&] {
                               for (const auto& a : env.cfg.accounts)
                                   if (a.second.count("allow_users") || a.second.count("allow_groups")) return true;
                               return false;
                           }();
    if (!any_allow)
        logmsg(LOG_WARNING, "%s sets no allow_users or allow_groups: only root and %s may get tokens",
               env.cfg.path.c_str(), user_name(self).c_str());
    if (self == 0)
        logmsg(LOG_WARNING, "running as root; run the agent as its own user (mailoauth), which alone owns the store");
    {
        Store store(env.store_dir);
        if (!store.open(false, err))
            logmsg(LOG_WARNING, "the store is not usable yet (%s); requests fail until it is", err.c_str());
    }

    // Signals are taken synchronously through a signalfd; blocked before
    // any thread exists, so every thread inherits the mask.
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    if (pthread_sigmask(SIG_BLOCK, &mask, nullptr) != 0) {
        logmsg(LOG_ERR, "cannot block signals");
        return kExitTempFail;
    }

    int ready_fd = -1;
    if (!opts.foreground && (ready_fd = start_detached(err)) < 0) {
        logmsg(LOG_ERR, "%s", err.c_str());
        return kExitTempFail;
    }
    ino_t inode = 0;
    int rc = 0;
    Fd lfd(listen_on(name, inode, rc, err));
    if (lfd.get() < 0) {
        logmsg(LOG_ERR, "%s", err.c_str());
        finish_detach(ready_fd, rc);
        return rc;
    }
    Fd sfd(::signalfd(-1, &mask, SFD_CLOEXEC));
    if (sfd.get() < 0) {
        logmsg(LOG_ERR, "signalfd: %s", std::strerror(errno));
        unlink_ours(name, inode);
        finish_detach(ready_fd, kExitTempFail);
        return kExitTempFail;
    }
    finish_detach(ready_fd, kExitOk);

    logmsg(LOG_NOTICE, "listening on %s as %s, store %s", name.spec.c_str(), user_name(self).c_str(),
           env.store_dir.c_str());

    auto shared = std::make_shared<Shared>();
    Server server(env, http);
    // Hands a connection to a thread of its own, or answers "busy".
    auto dispatch = [&](int cfd) {
        Fd conn(cfd);
        {
            std::lock_guard<std::mutex> lk(shared->mu);
            if (shared->active >= kMaxConnections) {
                refuse_busy(conn.get());
                return;
            }
            ++shared->active;
        }
        try {
            std::thread([shared, &server, fd = conn.get()] {
                try {
                    server.serve(fd);
                } catch (const std::exception& e) {
                    logmsg(LOG_ERR, "request failed: %s", e.what());
                }
                ::close(fd);
                std::lock_guard<std::mutex> lk(shared->mu);
                --shared->active;
                shared->cv.notify_all();
            }).detach();
            conn.release();
        } catch (const std::exception& e) {
            {
                std::lock_guard<std::mutex> lk(shared->mu);
                --shared->active;
            }
            logmsg(LOG_WARNING, "cannot start a thread: %s", e.what());
            refuse_busy(conn.get());
        }
    };
    int stop_signal = 0;
    while (!stop_signal) {
        struct pollfd fds[2] = {{lfd.get(), POLLIN, 0}, {sfd.get(), POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            logmsg(LOG_ERR, "poll: %s", std::strerror(errno));
            break;
        }
        if (fds[1].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (::read(sfd.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
                if (si.ssi_signo == SIGHUP)
                    logmsg(LOG_NOTICE, "SIGHUP ignored: restart the agent to read %s again", env.cfg.path.c_str());
                else
                    stop_signal = static_cast<int>(si.ssi_signo);
            }
            continue;
        }
        if (!(fds[0].revents & POLLIN)) continue;
        int cfd = ::accept4(lfd.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (cfd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                logmsg(LOG_WARNING, "accept: %s", std::strerror(errno));
                ::poll(nullptr, 0, 100);  // let requests finish instead of spinning
            }
            continue;
        }
        dispatch(cfd);
    }

    // Stop accepting first: remove the name (so a new agent can start at
    // once and no one connects to a socket that is going away), then close.
    unlink_ours(name, inode);
    // Callers already queued in the backlog are served like those in
    // flight rather than dropped by the close.
    for (;;) {
        int cfd = ::accept4(lfd.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (cfd < 0) {
            if (errno == EINTR) continue;
            break;
        }
        dispatch(cfd);
    }
    lfd.reset();
    const char* abbrev = stop_signal ? sigabbrev_np(stop_signal) : nullptr;
    logmsg(LOG_NOTICE, "stopping (%s%s)", abbrev ? "SIG" : "", abbrev ? abbrev : "error");
    std::unique_lock<std::mutex> lk(shared->mu);
    if (!shared->cv.wait_for(lk, std::chrono::milliseconds(kShutdownGraceMs), [&] { return shared->active == 0; })) {
        // Threads still refreshing use this stack; end the process here.
        // An interrupted refresh is safe: the store keeps the previous
        // refresh token until a new one is saved.
        logmsg(LOG_WARNING, "%d requests still in progress after %d s; exiting anyway", shared->active,
               kShutdownGraceMs / 1000);
        closelog();
        std::fflush(nullptr);
        _exit(stop_signal ? kExitOk : kExitTempFail);
    }
    lk.unlock();
    logmsg(LOG_NOTICE, "stopped");
    closelog();
    return stop_signal ? kExitOk : kExitTempFail;
}

}  // namespace mailoauth::agent
