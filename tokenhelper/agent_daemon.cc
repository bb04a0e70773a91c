// The agent's process: start-up checks, detaching, signals, the accept
// loop and shutdown (mailoauth agent).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>

#include "common/fd.h"
#include "tokenhelper/agent.h"
#include "tokenhelper/agent_config.h"
#include "tokenhelper/agent_listen.h"
#include "tokenhelper/agent_log.h"
#include "tokenhelper/agent_server.h"
#include "tokenhelper/errors.h"
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

int run(const Options& opts, const Environment& env, HttpClient& http) {
    openlog("mailoauth-agent", LOG_PID, LOG_MAIL);
    log_to_stderr(!stderr_is_journal());
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
