// The agent's process: start-up checks, detaching, signals, the accept
// loop and shutdown (mailoauth agent).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <condition_variable>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <vector>

#include "common/fd.h"
#include "common/msgio.h"
#include "tokenhelper/agent.h"
#include "tokenhelper/agent_config.h"
#include "tokenhelper/agent_gate.h"
#include "tokenhelper/agent_listen.h"
#include "tokenhelper/agent_log.h"
#include "tokenhelper/agent_pool.h"
#include "tokenhelper/agent_renew.h"
#include "tokenhelper/agent_server.h"
#include "tokenhelper/errors.h"
#include "tokenhelper/peercred.h"
#include "tokenhelper/settings.h"
#include "tokenhelper/store.h"

namespace mailoauth::agent {

namespace {

constexpr int kShutdownGraceMs = 5000;    // for requests in flight at SIGTERM

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
    log_to_stderr(false);
}

}  // namespace

// Connections in flight: overall, and per uid of the caller.
struct Active {
    std::mutex mu;
    std::condition_variable cv;
    int total = 0;
    std::map<uid_t, int> by_uid;
};

int run(const Options& opts, const Environment& env, HttpClient& http) {
    openlog("mailoauth-agent", LOG_PID, LOG_MAIL);
    log_to_stderr(!stderr_is_journal());
    std::string err;

    // First, while LISTEN_PID can still be compared with our pid (before
    // detaching) and before any thread reads the environment.
    int activated_fd = -1;
    std::string activated_name;
    int rc = 0;
    const Activation activation = take_activated_socket(activated_fd, activated_name, rc, err);
    Fd activated(activated_fd);
    if (activation == Activation::Bad) {
        logmsg(LOG_ERR, "%s", err.c_str());
        return rc;
    }

    std::string spec = !opts.socket.empty() ? opts.socket : env.cfg.get("", "agent_socket", "");
    if (spec.empty()) spec = kDefaultSocket;
    SocketName name;
    if (!parse_socket_name(spec, name, err)) {
        logmsg(LOG_ERR, "%s", err.c_str());
        return kExitConfig;
    }
    if (activation == Activation::Taken && activated_name != spec)
        logmsg(LOG_WARNING,
               "systemd passed the socket %s, but %s names %s: callers that use %s do not reach this agent; "
               "make agent_socket in %s and ListenStream= in mailoauth-agent.socket agree",
               activated_name.c_str(), opts.socket.empty() ? "agent_socket" : "--socket", spec.c_str(),
               spec.c_str(), env.cfg.path.c_str());
    if (!check_allow_settings(env.cfg, err)) {
        logmsg(LOG_ERR, "%s", err.c_str());
        return kExitConfig;
    }
    bool renew = true;
    if (!renew_enabled(env.cfg, renew, err)) {
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
    Gate gate;
    gate.resolve(env.cfg, self, system_lookups());

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
    Fd lfd(activation == Activation::Taken ? activated.release() : listen_on(name, inode, rc, err));
    if (lfd.get() < 0) {
        logmsg(LOG_ERR, "%s", err.c_str());
        finish_detach(ready_fd, rc);
        return rc;
    }
    // A detached agent is another process than the one that took the
    // socket: listen again so that SO_PEERCRED names the one serving.
    if (activation == Activation::Taken && ready_fd >= 0) ::listen(lfd.get(), SOMAXCONN);
    Fd sfd(::signalfd(-1, &mask, SFD_CLOEXEC));
    if (sfd.get() < 0) {
        logmsg(LOG_ERR, "signalfd: %s", std::strerror(errno));
        unlink_ours(name, inode);
        finish_detach(ready_fd, kExitTempFail);
        return kExitTempFail;
    }
    finish_detach(ready_fd, kExitOk);

    if (activation == Activation::Taken)
        logmsg(LOG_NOTICE, "listening on %s (socket from systemd) as %s, store %s", activated_name.c_str(),
               user_name(self).c_str(), env.store_dir.c_str());
    else
        logmsg(LOG_NOTICE, "listening on %s as %s, store %s", name.spec.c_str(), user_name(self).c_str(),
               env.store_dir.c_str());

    auto active = std::make_shared<Active>();
    Server server(env, http);
    // Renews the tokens of the accounts served, before they are needed.
    // Started here, after detaching (fork keeps only the calling thread)
    // and with the signals blocked; after server, so destroyed before it.
    std::unique_ptr<Renewer> renewer;
    if (renew) {
        TokenBroker& broker = server.broker();
        auto rng = std::make_shared<std::minstd_rand>(std::random_device{}());
        renewer = std::make_unique<Renewer>(Renewer::Hooks{
            [&env, &http, &broker](const std::string& account, long window) {
                return broker.renew(account, [&] { return renew_account(env, http, account, window); });
            },
            [&env](const std::string& account) { return env.refresh_margin(account); },
            [] {
                struct timespec ts;
                ::clock_gettime(CLOCK_REALTIME, &ts);
                return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
            },
            // Only the renewal thread draws.
            [rng](long bound) { return std::uniform_int_distribution<long>(0, bound)(*rng); },
        });
        Renewer* r = renewer.get();
        broker.set_observer([r](const std::string& account, const Outcome& o) { r->served(account, o); });
        renewer->start();
    } else {
        logmsg(LOG_NOTICE, "agent_renew = no in %s: tokens are refreshed only when a request needs one",
               env.cfg.path.c_str());
    }
    Refusals refusals;
    // After server (which its jobs use): destroyed first, once every
    // request is done.
    WorkerPool pool(kMaxConnections);
    // Admits a connection and queues it to the worker pool, or answers it
    // from here: refused, or over a limit.
    auto dispatch = [&](int cfd) {
        Fd conn(cfd);
        const long long now = msgio::now_ms();
        struct ucred cred;
        if (!peer_cred(conn.get(), cred, err)) {
            logmsg_limited(LOG_ERR, "nocred", "refused a caller: %s", err.c_str());
            refusals.add(conn.release(), static_cast<uid_t>(-1),
                         refusal_reply("forbidden", "not allowed by mailoauth.conf: the agent cannot identify the caller",
                                       kExitConfig),
                         now);
            return;
        }
        if (!gate.admits(cred.uid, cred.gid, now / 1000)) {
            const std::string who = describe_uid(cred.uid);
            logmsg_limited(LOG_WARNING, "gate:" + std::to_string(cred.uid),
                           "refused %s (pid %ld): in no allow_users or allow_groups of %s", who.c_str(),
                           static_cast<long>(cred.pid), env.cfg.path.c_str());
            refusals.add(conn.release(), cred.uid,
                         refusal_reply("forbidden",
                                       "not allowed by mailoauth.conf: " + who +
                                           " is in no allow_users or allow_groups",
                                       kExitConfig),
                         now);
            return;
        }
        // Most requests: a token from the cache, answered here at once
        // (a hand-over to a worker would cost more than the answer).
        std::string taken;
        try {
            if (server.serve_at_once(conn.get(), cred, taken)) return;
        } catch (const std::exception& e) {
            logmsg_limited(LOG_ERR, "fastpath", "request failed: %s", e.what());
            return;  // conn closes: the caller sees the agent fail, as for a worker's exception
        }
        // Root and the agent's own user can read the store anyway; anyone
        // else gets a share of the connections.
        const bool capped = cred.uid != 0 && cred.uid != self;
        std::string busy;
        {
            std::lock_guard<std::mutex> lk(active->mu);
            if (active->total >= kMaxConnections)
                busy = "the mailoauth agent is serving " + std::to_string(kMaxConnections) +
                       " requests; try again shortly";
            else if (capped && active->by_uid[cred.uid] >= kMaxConnectionsPerUid)
                busy = "the mailoauth agent is serving " + std::to_string(kMaxConnectionsPerUid) +
                       " requests of " + describe_uid(cred.uid) + " already; try again shortly";
            if (busy.empty()) {
                ++active->total;
                if (capped) ++active->by_uid[cred.uid];
            } else if (capped && active->by_uid[cred.uid] == 0) {
                active->by_uid.erase(cred.uid);
            }
        }
        if (!busy.empty()) {
            logmsg_limited(LOG_WARNING, "busy:" + std::to_string(cred.uid), "busy: %s", busy.c_str());
            refusals.add(conn.release(), cred.uid, refusal_reply("busy", busy, kExitTempFail), now);
            return;
        }
        const uid_t uid = cred.uid;
        auto release = [active, capped, uid] {
            std::lock_guard<std::mutex> lk(active->mu);
            --active->total;
            if (capped && --active->by_uid[uid] <= 0) active->by_uid.erase(uid);
            active->cv.notify_all();
        };
        const int fd = conn.get();
        bool queued = false;
        try {
            queued = pool.submit([release, &server, fd, cred, taken = std::move(taken)]() mutable {
                try {
                    server.serve(fd, cred, std::move(taken));
                } catch (const std::exception& e) {
                    logmsg(LOG_ERR, "request failed: %s", e.what());
                }
                ::close(fd);
                release();
            });
        } catch (const std::exception&) {
            queued = false;  // no memory for the job
        }
        if (queued) {
            conn.release();
            return;
        }
        release();
        logmsg_limited(LOG_WARNING, "nothread", "cannot start a thread to serve a request");
        refusals.add(conn.release(), uid,
                     refusal_reply("busy", "the mailoauth agent cannot start a thread; try again shortly",
                                   kExitTempFail),
                     now);
    };
    int stop_signal = 0;
    std::vector<struct pollfd> fds;
    while (!stop_signal) {
        fds.assign({{lfd.get(), POLLIN, 0}, {sfd.get(), POLLIN, 0}});
        refusals.poll_entries(fds);
        if (::poll(fds.data(), fds.size(), refusals.timeout_ms(msgio::now_ms())) < 0) {
            if (errno == EINTR) continue;
            logmsg(LOG_ERR, "poll: %s", std::strerror(errno));
            break;
        }
        refusals.handle(fds, 2, msgio::now_ms());
        if (fds[1].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (::read(sfd.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
                if (si.ssi_signo == SIGHUP) {
                    gate.resolve(env.cfg, self, system_lookups());
                    server.forget_identities();
                    // Something was fixed, perhaps: renewals backing off
                    // try again now (without waiting for one in flight).
                    if (renewer) renewer->retry_now();
                    logmsg(LOG_NOTICE,
                           "SIGHUP: looked up the users and groups of allow_users and allow_groups again; "
                           "restart the agent to read %s again",
                           env.cfg.path.c_str());
                } else {
                    stop_signal = static_cast<int>(si.ssi_signo);
                }
            }
            continue;
        }
        if (!(fds[0].revents & POLLIN)) continue;
        // Every caller already queued (the socket is non-blocking), up to a
        // bound so that signals and lingering refusals get their turn: one
        // poll per burst instead of one per connection.
        for (int n = 0; n < 64; ++n) {
            int cfd = ::accept4(lfd.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (cfd < 0) {
                if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                    logmsg_limited(LOG_WARNING, "accept", "accept: %s", std::strerror(errno));
                    ::poll(nullptr, 0, 100);  // let requests finish instead of spinning
                }
                break;
            }
            dispatch(cfd);
        }
    }

    // Stop accepting first: remove the name (so a new agent can start at
    // once and no one connects to a socket that is going away), then close.
    // A socket from systemd stays where it is: systemd holds it, and
    // callers queue on it until the next agent accepts them.
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
    // No new renewal starts; one in flight gets what is left of the grace
    // period, like the requests, and no more (never the HTTP timeout).
    const auto grace_end = std::chrono::steady_clock::now() + std::chrono::milliseconds(kShutdownGraceMs);
    if (renewer) renewer->stop(std::chrono::milliseconds(0));
    std::unique_lock<std::mutex> lk(active->mu);
    const bool requests_done = active->cv.wait_until(lk, grace_end, [&] { return active->total == 0; });
    const int left = active->total;
    lk.unlock();
    const bool renewal_done =
        !renewer || renewer->stop(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::max(grace_end - std::chrono::steady_clock::now(),
                                               std::chrono::steady_clock::duration::zero())));
    if (!requests_done || !renewal_done) {
        // Workers still refreshing use this stack; end the process here.
        // An interrupted refresh is safe: the store keeps the previous
        // refresh token until a new one is saved.
        if (!requests_done)
            logmsg(LOG_WARNING, "%d requests still in progress after %d s; exiting anyway", left,
                   kShutdownGraceMs / 1000);
        else
            logmsg(LOG_WARNING, "a token renewal still in progress after %d s; exiting anyway",
                   kShutdownGraceMs / 1000);
        closelog();
        std::fflush(nullptr);
        _exit(stop_signal ? kExitOk : kExitTempFail);
    }
    logmsg(LOG_NOTICE, "stopped");
    closelog();
    return stop_signal ? kExitOk : kExitTempFail;
}

}  // namespace mailoauth::agent
