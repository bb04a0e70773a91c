#include "tokenhelper/secret_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/sanitize.h"

namespace mailoauth {

namespace {

// Reads fd to end of file into out, at most max bytes.  The buffer is wiped
// by Secret; the temporary chunk by wipe_memory.
bool read_all(int fd, const std::string& shown, const std::string& what, Secret& out,
              std::string& err, std::size_t max) {
    std::string data;
    char chunk[4096];
    for (;;) {
        ssize_t n = ::read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            err = "cannot read " + what + " from " + shown + ": " + std::strerror(errno);
            wipe_string(data);
            wipe_memory(chunk, sizeof chunk);
            return false;
        }
        if (n == 0) break;
        if (data.size() + static_cast<std::size_t>(n) > max) {
            err = shown + " is larger than " + std::to_string(max / 1024) + " KiB: it does not hold " +
                  what + " alone; give the file that does";
            wipe_string(data);
            wipe_memory(chunk, sizeof chunk);
            return false;
        }
        data.append(chunk, static_cast<std::size_t>(n));
    }
    wipe_memory(chunk, sizeof chunk);
    while (!data.empty() && (data.back() == '\n' || data.back() == '\r')) data.pop_back();
    if (data.empty()) {
        err = shown + " is empty: put " + what + " in it";
        return false;
    }
    out = Secret(data);
    wipe_string(data);
    return true;
}

}  // namespace

bool read_secret_file(const std::string& path, const std::string& what, Secret& out,
                      std::string& err, std::size_t max_bytes) {
    out.clear();
    if (path == "-") return read_all(0, "standard input", what, out, err, max_bytes);
    const std::string shown = sanitize::text(path, 300);
    if (path.empty()) {
        err = "no file named for " + what;
        return false;
    }
    // O_NONBLOCK: a FIFO or device planted at the path must not hang us
    // before fstat says it is not a regular file.
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        err = "cannot open " + shown + " (" + what + "): " + std::strerror(errno);
        return false;
    }
    struct stat st;
    bool ok = false;
    if (::fstat(fd, &st) != 0) {
        err = "cannot inspect " + shown + ": " + std::strerror(errno);
    } else if (!S_ISREG(st.st_mode)) {
        err = shown + " is not a regular file; give the file that holds " + what;
    } else if (st.st_uid != ::geteuid()) {
        err = shown + " is owned by uid " + std::to_string(st.st_uid) + ", not by uid " +
              std::to_string(::geteuid()) + " who reads it; " + what +
              " must be in a file only its reader owns: chown " + std::to_string(::geteuid()) + " " + shown;
    } else if (st.st_mode & 077) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        err = shown + " holds " + what + " but is readable by others (mode " + mode +
              "); run: chmod 600 " + shown;
    } else {
        int flags = ::fcntl(fd, F_GETFL);
        if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
        ok = read_all(fd, shown, what, out, err, max_bytes);
    }
    ::close(fd);
    return ok;
}

}  // namespace mailoauth
