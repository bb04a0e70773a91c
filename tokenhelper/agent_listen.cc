#include "tokenhelper/agent_listen.h"

#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include "common/fd.h"
#include "tokenhelper/agent_log.h"
#include "tokenhelper/errors.h"

namespace mailoauth::agent {

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

}  // namespace mailoauth::agent
