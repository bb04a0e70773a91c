#include "tokenhelper/agent_listen.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>

#include "common/fd.h"
#include "tokenhelper/agent_log.h"
#include "tokenhelper/errors.h"
#include "tokenhelper/peercred.h"

namespace mailoauth::agent {

namespace {

// "uid 65534 (nobody), pid 4242": who listens on the socket fd is
// connected to (SO_PEERCRED of a connection names the process that called
// listen()).
std::string holder_of_connected(int fd) {
    struct ucred cred;
    std::string err;
    if (!peer_cred(fd, cred, err)) return "";
    return describe_uid(cred.uid) + ", pid " + std::to_string(cred.pid);
}

// Who holds name, as above, or a hint when it does not accept connections.
std::string holder_of(const SocketName& name) {
    Fd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (probe.get() < 0 ||
        ::connect(probe.get(), reinterpret_cast<const struct sockaddr*>(&name.addr), name.len) != 0)
        return "a process that does not accept connections (find it with: ss -xlp | grep -- '" + name.spec + "')";
    std::string who = holder_of_connected(probe.get());
    return who.empty() ? "a process whose credentials the kernel does not give" : who;
}

}  // namespace

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
                err = "another agent is already running on " + name.spec + ": " + holder_of_connected(probe.get());
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
    // A filesystem socket gets mode 0666 from the umask at bind: access
    // control is the credential check, as for the abstract name.  No chmod
    // by path afterwards, which would follow a symlink put in its place.
    // (Start-up runs before any thread, so the process umask is ours.)
    const mode_t old_umask = ::umask(0111);
    const int bound = ::bind(fd.get(), reinterpret_cast<const struct sockaddr*>(&name.addr), name.len);
    const int bind_errno = errno;
    ::umask(old_umask);
    if (bound != 0) {
        int e = bind_errno;
        if (e == EADDRINUSE) {
            // An abstract name has no owner and no permissions: anyone may
            // take it first.  Say who did; socket activation prevents it.
            err = name.abstract ? "another agent (or another program) already listens on " + name.spec + ": " +
                                      holder_of(name) +
                                      "; stop it, or let systemd hold the name from boot "
                                      "(mailoauth-agent.socket, see mailoauth-agent(8))"
                                : "another agent started on " + name.spec + " at the same time";
            rc = kExitTempFail;
        } else {
            err = "cannot bind " + name.spec + ": " + std::strerror(e);
            rc = (e == EACCES || e == ENOENT || e == EROFS || e == ENOTDIR) ? kExitConfig : kExitTempFail;
        }
        return -1;
    }
    if (!name.abstract) {
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

Activation take_activated_socket(int& fd, std::string& name, int& rc, std::string& err) {
    fd = -1;
    const char* fds = std::getenv("LISTEN_FDS");
    const char* pid = std::getenv("LISTEN_PID");
    const std::string fds_s = fds ? fds : "", pid_s = pid ? pid : "";
    // Not for our children (the HTTP module runs none, but a detached
    // agent's child must not take fd 3 again), whatever happens next.
    ::unsetenv("LISTEN_FDS");
    ::unsetenv("LISTEN_PID");
    ::unsetenv("LISTEN_FDNAMES");
    if (fds_s.empty()) return Activation::None;
    // Variables meant for another process (inherited through a shell).
    if (pid_s != std::to_string(::getpid())) return Activation::None;
    rc = kExitConfig;
    if (fds_s != "1") {
        err = "systemd passed " + fds_s.substr(0, 12) +
              " sockets (LISTEN_FDS); mailoauth-agent.socket must have exactly one ListenStream=";
        return Activation::Bad;
    }
    const int cand = 3;  // SD_LISTEN_FDS_START
    struct stat st;
    int domain = 0, type = 0, listening = 0;
    socklen_t len = sizeof domain;
    bool ok = ::fstat(cand, &st) == 0 && S_ISSOCK(st.st_mode) &&
              ::getsockopt(cand, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 && domain == AF_UNIX;
    len = sizeof type;
    ok = ok && ::getsockopt(cand, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
    len = sizeof listening;
    ok = ok && ::getsockopt(cand, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening == 1;
    struct sockaddr_un addr {};
    socklen_t alen = sizeof addr;
    ok = ok && ::getsockname(cand, reinterpret_cast<struct sockaddr*>(&addr), &alen) == 0 &&
         alen > offsetof(struct sockaddr_un, sun_path) + 1;
    if (!ok) {
        err = "the socket systemd passed (fd 3) is not a listening Unix stream socket with a name; "
              "mailoauth-agent.socket needs ListenStream=@NAME or ListenStream=/PATH";
        return Activation::Bad;
    }
    const std::size_t n = alen - offsetof(struct sockaddr_un, sun_path);
    if (addr.sun_path[0] == '\0')
        name = "@" + std::string(addr.sun_path + 1, n - 1);
    else
        name = std::string(addr.sun_path, ::strnlen(addr.sun_path, n));
    int flags = ::fcntl(cand, F_GETFL);
    if (flags < 0 || ::fcntl(cand, F_SETFL, flags | O_NONBLOCK) != 0 || ::fcntl(cand, F_SETFD, FD_CLOEXEC) != 0) {
        err = std::string("cannot set up the socket systemd passed: ") + std::strerror(errno);
        rc = kExitTempFail;
        return Activation::Bad;
    }
    // listen() again: the kernel then records this process as the one
    // listening, and SO_PEERCRED tells callers (the plugin, doctor) this
    // agent's uid and pid instead of systemd's.
    if (::listen(cand, SOMAXCONN) != 0) {
        err = std::string("listen on the socket systemd passed: ") + std::strerror(errno);
        rc = kExitTempFail;
        return Activation::Bad;
    }
    fd = cand;
    rc = 0;
    return Activation::Taken;
}

// Removes our filesystem socket, unless another agent has replaced it.
void unlink_ours(const SocketName& name, ino_t inode) {
    if (name.abstract || inode == 0) return;
    struct stat st;
    if (::lstat(name.addr.sun_path, &st) == 0 && st.st_ino == inode && S_ISSOCK(st.st_mode))
        ::unlink(name.addr.sun_path);
}

}  // namespace mailoauth::agent
