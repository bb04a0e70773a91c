#include "plugin/subprocess.h"

#include "common/secret.h"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

namespace mailoauth::plugin {

namespace testing {
bool subprocess_use_pidfd = true;
std::atomic<unsigned long> subprocess_exit_wakeups{0};
}  // namespace testing

RunResult::~RunResult() { wipe_string(output); }

namespace {

long long now_ms() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<long long>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

void close_fd(int& fd) {
    if (fd >= 0) {
        ::close(fd);
        fd = -1;
    }
}

// Owns the three pipes so every early return closes them.
struct Pipes {
    int in[2] = {-1, -1};
    int out[2] = {-1, -1};
    int err[2] = {-1, -1};
    ~Pipes() {
        for (int* p : {in, out, err}) {
            close_fd(p[0]);
            close_fd(p[1]);
        }
    }
};

// Keeps pipe ends off 0, 1 and 2 (a daemon may have closed them), so the
// child's dup2 onto 0..2 never meets itself and the close-on-exec flag of
// every end we hold stays set.
bool make_pipe(int fds[2]) {
    if (::pipe2(fds, O_CLOEXEC) != 0) return false;
    for (int i = 0; i < 2; ++i) {
        if (fds[i] < 3) {
            int high = ::fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
            if (high < 0) return false;
            ::close(fds[i]);
            fds[i] = high;
        }
    }
    return true;
}

void set_nonblock(int fd) {
    int fl = ::fcntl(fd, F_GETFL);
    if (fl >= 0) ::fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

// Writing to a child that already exited raises SIGPIPE, which by default
// kills the host.  Block it for this thread while writing, and swallow one
// we caused (but not one that was already pending for someone else).
class SigpipeGuard {
public:
    SigpipeGuard() {
        sigemptyset(&set_);
        sigaddset(&set_, SIGPIPE);
        sigset_t pending;
        sigemptyset(&pending);
        pthread_sigmask(SIG_BLOCK, &set_, &old_);
        if (sigpending(&pending) == 0) was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    }
    void got_epipe() { epipe_ = true; }
    ~SigpipeGuard() {
        if (epipe_ && !was_pending_) {
            struct timespec zero = {0, 0};
            while (sigtimedwait(&set_, nullptr, &zero) < 0 && errno == EINTR) {
            }
        }
        pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    }

private:
    sigset_t set_, old_;
    bool was_pending_ = false;
    bool epipe_ = false;
};

bool has_blank_line(const std::string& s) {
    return (!s.empty() && s[0] == '\n') || s.find("\n\n") != std::string::npos;
}

// A descriptor that becomes readable when the child exits (pidfd, Linux
// 5.3), so the wait for the exit is one poll instead of a nap that grows.
// -1 where the kernel has none (ENOSYS) or it cannot be had: the caller
// then naps as before.  No SIGCHLD handler of our own is needed either way.
int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
    if (!testing::subprocess_use_pidfd) return -1;
    int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (fd < 0) return -1;
    // pidfd_open names a pid, not a child: were ours reaped by the host
    // already and the pid reused, fd would watch a stranger.  The child is
    // still ours (running, or a zombie whose pid cannot be reused) when
    // waitid finds it; ECHILD means the host took it, and then the loop
    // learns the same from its own waitid.
    siginfo_t info;
    std::memset(&info, 0, sizeof info);
    if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;  // close-on-exec: pidfd_open sets it
#else
    (void)pid;
    return -1;
#endif
}

void reap(pid_t pid, int& status) {
    while (::waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            status = -1;
            return;
        }
    }
}

}  // namespace

void run(const RunOptions& opts, RunResult& r) {
    r.end = RunResult::End::SpawnFailed;
    r.output.clear();
    // Reserved once so the token never sits in a buffer that a reallocation
    // frees without wiping.
    r.output.reserve(opts.max_output + 4096);

    std::vector<char*> argv, envp;
    for (const std::string& a : opts.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    for (const std::string& e : opts.env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);

    Pipes p;
    if (!make_pipe(p.in) || !make_pipe(p.out) || !make_pipe(p.err)) {
        r.error = errno;
        return;
    }

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    if (posix_spawn_file_actions_init(&fa) != 0) {
        r.error = ENOMEM;
        return;
    }
    if (posix_spawnattr_init(&attr) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        r.error = ENOMEM;
        return;
    }
    posix_spawn_file_actions_adddup2(&fa, p.in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, p.out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, p.err[1], 2);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    // Descriptors the host opened without O_CLOEXEC (sockets, files) must
    // not leak into the helper.
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
#endif
    // A process group of its own, so a time-out can kill the helper and
    // anything it started; no signals blocked; the dispositions a host may
    // have set to "ignore" back to default (caught ones reset at exec).
    sigset_t mask, defaults;
    sigemptyset(&mask);
    sigemptyset(&defaults);
    for (int s : {SIGPIPE, SIGCHLD, SIGINT, SIGQUIT, SIGTERM, SIGHUP, SIGALRM, SIGUSR1, SIGUSR2,
                  SIGTSTP, SIGTTIN, SIGTTOU, SIGXFSZ, SIGXCPU})
        sigaddset(&defaults, s);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                        POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setsigmask(&attr, &mask);
    posix_spawnattr_setsigdefault(&attr, &defaults);

    pid_t pid = -1;
    int rc = posix_spawn(&pid, opts.path.c_str(), &fa, &attr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
        r.error = rc;
        return;
    }
    close_fd(p.in[0]);
    close_fd(p.out[1]);
    close_fd(p.err[1]);
    set_nonblock(p.in[1]);
    set_nonblock(p.out[0]);
    set_nonblock(p.err[0]);
    int pidfd = open_pidfd(pid);

    const long long deadline = now_ms() + opts.timeout_ms;
    std::size_t written = 0;
    if (opts.input.empty()) close_fd(p.in[1]);
    bool timed_out = false, too_much = false, exited = false, status_lost = false;
    long nap_ms = 1;
    bool pidfd_ready = false;
    char buf[8192];
    {
        SigpipeGuard guard;
        for (;;) {
            long long left = deadline - now_ms();
            if (left <= 0) {
                timed_out = true;
                break;
            }
            // Once stdout is done, what is left is waiting for the exit:
            // on the pidfd, which wakes the poll below when the child
            // exits (also when a host that ignores SIGCHLD has the kernel
            // reap it: waitid then says ECHILD); without one, poll the
            // child with a short, growing nap (no SIGCHLD handler of our
            // own in someone else's process).
            bool waiting = p.out[0] < 0;
            if (waiting) {
                testing::subprocess_exit_wakeups.fetch_add(1, std::memory_order_relaxed);
                siginfo_t info;
                std::memset(&info, 0, sizeof info);
                int w = ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT);
                if (w == 0 && info.si_pid == pid) {
                    exited = true;
                    break;
                }
                if (w < 0 && errno == ECHILD) {
                    // The host reaps children itself (SIGCHLD ignored or a
                    // handler calling wait): the status is gone.
                    status_lost = true;
                    break;
                }
                // Readable, yet no exit to collect (a tracer's doing?):
                // do not spin on it, nap instead.
                if (pidfd_ready) close_fd(pidfd);
            }
            struct pollfd fds[4];
            int n = 0;
            int idx_in = -1, idx_out = -1, idx_err = -1, idx_pid = -1;
            if (p.in[1] >= 0) { idx_in = n; fds[n++] = {p.in[1], POLLOUT, 0}; }
            if (p.out[0] >= 0) { idx_out = n; fds[n++] = {p.out[0], POLLIN, 0}; }
            if (p.err[0] >= 0) { idx_err = n; fds[n++] = {p.err[0], POLLIN, 0}; }
            if (waiting && pidfd >= 0) { idx_pid = n; fds[n++] = {pidfd, POLLIN, 0}; }
            long wait_ms = left;
            if (waiting && pidfd < 0) {
                wait_ms = nap_ms < left ? nap_ms : left;
                if (nap_ms < 50) nap_ms *= 2;
            }
            int pr = ::poll(fds, static_cast<nfds_t>(n), static_cast<int>(wait_ms));
            if (pr < 0) {
                if (errno == EINTR) continue;
                timed_out = true;  // cannot wait properly: treat like a hang
                break;
            }
            pidfd_ready = idx_pid >= 0 && fds[idx_pid].revents != 0;
            if (idx_in >= 0 && fds[idx_in].revents) {
                ssize_t w = ::write(p.in[1], opts.input.data() + written, opts.input.size() - written);
                if (w > 0) {
                    written += static_cast<std::size_t>(w);
                    if (written == opts.input.size()) close_fd(p.in[1]);
                } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                    if (errno == EPIPE) guard.got_epipe();
                    close_fd(p.in[1]);  // the child stopped reading; its reply tells why
                }
            }
            if (idx_out >= 0 && fds[idx_out].revents) {
                ssize_t got = ::read(p.out[0], buf, sizeof buf);
                if (got > 0) {
                    if (r.output.size() + static_cast<std::size_t>(got) > opts.max_output) {
                        too_much = true;
                        wipe_memory(buf, sizeof buf);
                        break;
                    }
                    r.output.append(buf, static_cast<std::size_t>(got));
                    if (opts.stop_at_blank_line && has_blank_line(r.output)) {
                        close_fd(p.out[0]);
                        close_fd(p.in[1]);
                    }
                } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
                    close_fd(p.out[0]);
                    close_fd(p.in[1]);
                }
            }
            if (idx_err >= 0 && fds[idx_err].revents) {
                // The helper's stderr is for a person at a terminal, not for
                // this host's logs: drain and discard it.
                ssize_t got = ::read(p.err[0], buf, sizeof buf);
                if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) close_fd(p.err[0]);
            }
        }
        wipe_memory(buf, sizeof buf);
        close_fd(p.in[1]);
    }
    close_fd(pidfd);

    int status = 0;
    if (status_lost) {
        r.end = RunResult::End::StatusLost;
        return;
    }
    // Kill the whole group: on a time-out or flood the helper and its
    // children; after a normal exit anything it left running.  The leader
    // is still a zombie here, so the group id cannot have been reused.
    ::kill(-pid, SIGKILL);
    reap(pid, status);
    if (timed_out) {
        r.end = RunResult::End::TimedOut;
    } else if (too_much) {
        r.end = RunResult::End::TooMuchOutput;
    } else if (exited && status != -1 && WIFEXITED(status)) {
        r.end = RunResult::End::Exited;
        r.exit_code = WEXITSTATUS(status);
    } else if (exited && status != -1 && WIFSIGNALED(status)) {
        r.end = RunResult::End::Signaled;
        r.signal = WTERMSIG(status);
    } else {
        r.end = RunResult::End::StatusLost;
    }
}

}  // namespace mailoauth::plugin
