// The token store.  See store.h for the contract; the notes here are about
// how each step keeps the store valid at every instant.
//
// Every operation opens the directory itself (O_DIRECTORY|O_NOFOLLOW) and
// checks it with fstat, then works relative to that descriptor, so a
// directory swapped for a symlink after open() is still refused.  Records
// are written to a fresh temp file in the same directory, synced, renamed
// over the old file and the directory is synced: a reader sees either the
// old record or the new one, and a crash or a full disk leaves the old one.
#include "tokenhelper/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common/fd.h"
#include "common/protocol.h"

namespace mailoauth {

namespace testing {
ssize_t (*store_write_hook)(int fd, const void* buf, std::size_t n) = nullptr;
int (*store_before_rename_hook)(const char* tmp_path) = nullptr;
bool store_use_tmpfile = true;
bool store_link_via_proc = false;
}  // namespace testing

namespace {

constexpr const char* kFormat = "mailoauth-store-1";
constexpr const char* kLockSuffix = ".lock";
constexpr const char* kTmpInfix = ".tmp.";
constexpr const char* kDiskFull = "disk full: the previous tokens are kept";

std::string errno_text(int e) { return std::strerror(e); }

std::string mode_text(mode_t m) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
    return buf;
}

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}


// Checks that st (from lstat or fstat of the store directory) is a private
// directory of ours.  The messages say what to do.
bool check_dir_stat(const std::string& dir, const struct stat& st, std::string& err) {
    if (S_ISLNK(st.st_mode)) {
        err = "store directory " + dir + " is a symlink, refused: point --store or MAILOAUTH_STORE at the real directory";
        return false;
    }
    if (!S_ISDIR(st.st_mode)) {
        err = "store directory " + dir + " is not a directory";
        return false;
    }
    if (st.st_uid != ::geteuid()) {
        err = "store directory " + dir + " is owned by uid " + std::to_string(st.st_uid) +
              ", not by you (uid " + std::to_string(::geteuid()) +
              "): refused; it holds refresh tokens and must be yours alone";
        return false;
    }
    if ((st.st_mode & 077) != 0) {
        err = "store directory " + dir + " has mode " + mode_text(st.st_mode) +
              "; it holds refresh tokens and must be private: run chmod 700 " + dir;
        return false;
    }
    return true;
}

enum class DirOpen { Ok, Missing, Error };

// Opens and checks the store directory.  Missing when it does not exist.
DirOpen open_dir(const std::string& dir, Fd& out, std::string& err) {
    if (dir.empty()) {
        err = "no store directory: set MAILOAUTH_STORE or use --store DIR";
        return DirOpen::Error;
    }
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT) {
            err = "store directory " + dir + " does not exist";
            return DirOpen::Missing;
        }
        struct stat st;
        if ((e == ELOOP || e == ENOTDIR) && ::lstat(dir.c_str(), &st) == 0 && !check_dir_stat(dir, st, err))
            return DirOpen::Error;
        err = "cannot open store directory " + dir + ": " + errno_text(e);
        return DirOpen::Error;
    }
    out.reset(fd);
    struct stat st;
    if (::fstat(fd, &st) != 0) {
        err = "cannot stat store directory " + dir + ": " + errno_text(errno);
        return DirOpen::Error;
    }
    if (!check_dir_stat(dir, st, err)) return DirOpen::Error;
    return DirOpen::Ok;
}

bool is_disk_full(int e) { return e == ENOSPC || e == EDQUOT; }

ssize_t do_write(int fd, const void* buf, std::size_t n) {
    if (testing::store_write_hook) return testing::store_write_hook(fd, buf, n);
    return ::write(fd, buf, n);
}

// Writes all of data, through short writes and EINTR.  Returns 0 or errno.
int write_all(int fd, const std::string& data) {
    const char* p = data.data();
    std::size_t left = data.size();
    while (left > 0) {
        ssize_t w = do_write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        if (w == 0) return EIO;  // no progress: do not spin
        p += w;
        left -= static_cast<std::size_t>(w);
    }
    return 0;
}

int fsync_retry(int fd) {
    while (::fsync(fd) != 0) {
        if (errno == EINTR) continue;
        return errno;
    }
    return 0;
}

// Some file systems cannot sync a directory; that is not a failure.
int fsync_dir(int dfd) {
    int e = fsync_retry(dfd);
    return (e == EINVAL || e == EROFS) ? 0 : e;
}

bool valid_integer(const std::string& v, std::int64_t& out) {
    // Non-negative decimal, no sign, no leading zeros beyond "0", fits int64.
    if (v.empty() || v.size() > 19) return false;
    if (v.size() > 1 && v[0] == '0') return false;
    std::int64_t n = 0;
    for (char c : v) {
        if (c < '0' || c > '9') return false;
        int d = c - '0';
        if (n > (INT64_MAX - d) / 10) return false;
        n = n * 10 + d;
    }
    out = n;
    return true;
}

std::string temp_prefix(const std::string& account) { return "." + account + kTmpInfix; }
constexpr std::size_t kTempSuffixLen = 6;

// The account whose temp file name is: ".ACCOUNT.tmp.XXXXXX", else empty.
// Parsed from the end, so an account name that itself contains ".tmp." is
// still read right.
std::string temp_file_account(const std::string& name) {
    const std::size_t infix = std::strlen(kTmpInfix);
    if (name.size() < 1 + infix + kTempSuffixLen + 1 || name[0] != '.') return std::string();
    const std::size_t at = name.size() - kTempSuffixLen - infix;
    if (name.compare(at, infix, kTmpInfix) != 0) return std::string();
    std::string account = name.substr(1, at - 1);
    return valid_account_name(account) ? account : std::string();
}

// A new temp file name for account.  Not a secret and need not be
// unpredictable: the directory is ours alone, and every use of the name
// fails on an existing entry (O_EXCL, linkat) and is retried with another.
std::string new_temp_name(const std::string& account) {
    static const char kChars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    static std::uint64_t counter = 0;
    struct timespec ts;
    ::clock_gettime(CLOCK_REALTIME, &ts);
    std::uint64_t x = static_cast<std::uint64_t>(ts.tv_nsec) ^ (static_cast<std::uint64_t>(ts.tv_sec) << 30) ^
                      (static_cast<std::uint64_t>(::getpid()) << 40) ^ (++counter * 0x9E3779B97F4A7C15ull);
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 32;
    std::string name = temp_prefix(account);
    for (std::size_t i = 0; i < kTempSuffixLen; ++i) {
        name += kChars[x % 62];
        x /= 62;
    }
    return name;
}

// Removes the temp files of account (all of them).  Only for a caller that
// holds the account's lock: every save runs under it, so no save of this
// account is in progress and any temp file is debris of a crash.  Best
// effort.
void remove_temp_files(int dfd, const std::string& account) {
    int dup = ::fcntl(dfd, F_DUPFD_CLOEXEC, 0);
    if (dup < 0) return;
    DIR* d = ::fdopendir(dup);
    if (!d) {
        ::close(dup);
        return;
    }
    // The duplicate shares its position with dfd, which an earlier scan
    // left at the end.
    ::rewinddir(d);
    std::vector<std::string> doomed;
    while (struct dirent* de = ::readdir(d)) {
        std::string name = de->d_name;
        if (temp_file_account(name) != account) continue;
        struct stat st;
        if (::fstatat(dfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        if (!S_ISREG(st.st_mode)) continue;
        doomed.push_back(name);
    }
    ::closedir(d);
    for (const auto& name : doomed) ::unlinkat(dfd, name.c_str(), 0);
}

enum class TryLock { Locked, Busy, Replaced, Error };

// Waiting for a busy lock.  A waiter must wake when the holder lets go, not
// on its next poll, so it blocks in flock(LOCK_EX) and the kernel wakes it
// at the release.  flock has no time-out, so the deadline is a POSIX timer
// that signals this thread alone (SIGEV_THREAD_ID); the handler does
// nothing, and, installed without SA_RESTART, makes flock return EINTR.
// After the deadline the timer repeats every kTimerRepeatMs: should the
// first expiry come between arming and the flock call, the next ends the
// wait.  Why this way and not another:
//  - flock stays the lock: the lock file and how it is used do not change,
//    so a mailoauth of an older version, the agent and `mailoauth get`
//    still exclude each other (fcntl and OFD locks do not see flock locks).
//  - a thread-directed signal touches only the waiting thread: the agent's
//    other threads and its signalfd (SIGTERM, SIGHUP) are not disturbed, as
//    they would be by alarm() and a process-wide SIGALRM.
//  - flock in a helper thread with a timed wait could not be called off:
//    the thread would still take the lock later and hold it.
// The signal is one of the real-time signals, which nothing else in
// mailoauth (nor libcurl, which is told not to use signals) uses.
constexpr long kTimerRepeatMs = 5;

extern "C" void lock_timer_handler(int) {}

int lock_timer_signal() { return SIGRTMIN + 3; }

bool install_lock_timer_handler() {
    static const bool ok = [] {
        struct sigaction sa;
        std::memset(&sa, 0, sizeof sa);
        sa.sa_handler = lock_timer_handler;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = 0;  // no SA_RESTART: the point is to interrupt flock
        return ::sigaction(lock_timer_signal(), &sa, nullptr) == 0;
    }();
    return ok;
}

// A timer that interrupts this thread's blocking calls from timeout_ms on.
class Deadline {
public:
    explicit Deadline(long timeout_ms) {
        if (!install_lock_timer_handler()) return;
        struct sigevent sev;
        std::memset(&sev, 0, sizeof sev);
        sev.sigev_notify = SIGEV_THREAD_ID;
        sev.sigev_signo = lock_timer_signal();
        sev._sigev_un._tid = static_cast<pid_t>(::syscall(SYS_gettid));
        if (::timer_create(CLOCK_MONOTONIC, &sev, &timer_) != 0) return;
        sigset_t unblock;
        sigemptyset(&unblock);
        sigaddset(&unblock, lock_timer_signal());
        pthread_sigmask(SIG_UNBLOCK, &unblock, &old_mask_);
        have_ = true;
        struct itimerspec its;
        its.it_value = {timeout_ms / 1000, (timeout_ms % 1000) * 1000000L};
        if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0) its.it_value.tv_nsec = 1;  // 0 disarms
        its.it_interval = {0, kTimerRepeatMs * 1000000L};
        armed_ = ::timer_settime(timer_, 0, &its, nullptr) == 0;
    }
    ~Deadline() {
        if (!have_) return;
        ::timer_delete(timer_);
        // An expiry after the flock returned was delivered (to the empty
        // handler) when timer_delete returned: nothing stays pending.
        pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
    }
    bool armed() const { return armed_; }

private:
    timer_t timer_{};
    sigset_t old_mask_;
    bool have_ = false;
    bool armed_ = false;
};

// One attempt at the exclusive lock on NAME (ACCOUNT.lock) in dfd, waiting
// at most wait_ms for it (0: not at all).  Busy: held by someone else
// (also when the wait was cut short by a signal; the caller looks at its
// clock).  Replaced: we locked an inode that remove() had unlinked
// meanwhile; try again with the new file.
TryLock try_lock_once(int dfd, const std::string& name, const std::string& path, Fd& out, std::string& err,
                      long wait_ms = 0) {
    int fd = ::openat(dfd, name.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0) {
        int e = errno;
        if (e == ELOOP)
            err = "lock file " + path + " is a symlink, refused";
        else
            err = "cannot open lock file " + path + ": " + (is_disk_full(e) ? std::string("disk full") : errno_text(e));
        return TryLock::Error;
    }
    Fd file(fd);
    struct stat st;
    if (::fstat(fd, &st) != 0) {
        err = "cannot stat lock file " + path + ": " + errno_text(errno);
        return TryLock::Error;
    }
    if (!S_ISREG(st.st_mode) || st.st_uid != ::geteuid()) {
        err = "lock file " + path + " is not a regular file of yours, refused";
        return TryLock::Error;
    }
    for (;;) {
        if (::flock(fd, LOCK_EX | LOCK_NB) == 0) break;
        int e = errno;
        if (e == EINTR) continue;
        if (e != EWOULDBLOCK) {
            err = "cannot lock " + path + ": " + errno_text(e);
            return TryLock::Error;
        }
        if (wait_ms <= 0) return TryLock::Busy;
        Deadline deadline(wait_ms);
        if (!deadline.armed()) {
            // No timer to be had: a short nap, then the caller looks again.
            struct timespec ts = {0, std::min(wait_ms, 5L) * 1000000L};
            while (::nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
            return TryLock::Busy;
        }
        if (::flock(fd, LOCK_EX) == 0) break;
        e = errno;
        if (e == EINTR) return TryLock::Busy;
        err = "cannot lock " + path + ": " + errno_text(e);
        return TryLock::Error;
    }
    // The lock only counts if the inode is still the lock file.
    struct stat now;
    if (::fstatat(dfd, name.c_str(), &now, AT_SYMLINK_NOFOLLOW) != 0 || now.st_ino != st.st_ino ||
        now.st_dev != st.st_dev)
        return TryLock::Replaced;
    out.reset(file.release());
    return TryLock::Locked;
}

// Removes what crashed saves left behind: a process killed between writing
// its temp file and renaming it leaves a complete record, tokens included,
// under a temp name.  A temp file is debris once nobody holds its account's
// lock (every save runs under it); one whose account is locked may be a
// save in progress and is left to that save, which removes its account's
// temp files when it is done.  Best effort: a failure only leaves the file
// for the next time.
void remove_abandoned_temp_files(int dfd, const std::string& dir) {
    int dup = ::fcntl(dfd, F_DUPFD_CLOEXEC, 0);
    if (dup < 0) return;
    DIR* d = ::fdopendir(dup);
    if (!d) {
        ::close(dup);
        return;
    }
    // The duplicate shares its position with dfd, which an earlier scan
    // left at the end.
    ::rewinddir(d);
    std::vector<std::string> accounts;
    while (struct dirent* de = ::readdir(d)) {
        std::string account = temp_file_account(de->d_name);
        if (!account.empty()) accounts.push_back(std::move(account));
    }
    ::closedir(d);
    std::sort(accounts.begin(), accounts.end());
    accounts.erase(std::unique(accounts.begin(), accounts.end()), accounts.end());
    for (const auto& account : accounts) {
        const std::string lock_name = account + kLockSuffix;
        Fd lock;
        std::string ignored;
        if (try_lock_once(dfd, lock_name, dir + "/" + lock_name, lock, ignored) == TryLock::Locked)
            remove_temp_files(dfd, account);
    }
}

// mkdir -p, one component at a time relative to its parent's descriptor.
// Every directory created gets 0700 whatever the umask, set through its own
// descriptor (opened O_NOFOLLOW), so a name swapped for a symlink meanwhile
// is never chmod'ed.  Components that exist are followed as mkdir -p does;
// the store directory itself is checked afterwards.
bool make_dirs(const std::string& dir, std::string& err) {
    Fd cur(::open(dir[0] == '/' ? "/" : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (cur.get() < 0) {
        err = "cannot open " + std::string(dir[0] == '/' ? "/" : "the current directory") + ": " + errno_text(errno);
        return false;
    }
    std::string sofar = dir[0] == '/' ? "" : ".";
    std::size_t pos = 0;
    while (pos < dir.size()) {
        std::size_t end = dir.find('/', pos);
        if (end == std::string::npos) end = dir.size();
        std::string comp = dir.substr(pos, end - pos);
        pos = end + 1;
        if (comp.empty() || comp == ".") continue;
        sofar += "/" + comp;
        bool created = false;
        if (::mkdirat(cur.get(), comp.c_str(), 0700) == 0) {
            created = true;
        } else if (errno != EEXIST) {
            err = "cannot create store directory " + sofar + ": " + errno_text(errno);
            return false;
        }
        int fd = ::openat(cur.get(), comp.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | (created ? O_NOFOLLOW : 0));
        if (fd < 0) {
            if (!created) return true;  // not a directory: the checks that follow say what is wrong
            err = "cannot open the new directory " + sofar + ": " + errno_text(errno);
            return false;
        }
        cur.reset(fd);
        if (created && ::fchmod(fd, 0700) != 0) {
            err = "cannot set mode 0700 on " + sofar + ": " + errno_text(errno);
            return false;
        }
    }
    return true;
}

// Mode, contents and sync of a new record file.  Returns 0, or errno with
// what names the step that failed.
int fill_file(int fd, const std::string& text, const char*& what) {
    if (::fchmod(fd, 0600) != 0) {
        what = "cannot set mode 0600 on a temporary file";
        return errno;
    }
    if (int e = write_all(fd, text)) {
        what = "cannot write a temporary file";
        return e;
    }
    if (int e = fsync_retry(fd)) {
        what = "cannot sync a temporary file";
        return e;
    }
    return 0;
}

// Opens an anonymous file (O_TMPFILE) in dfd for writing.  Returns the
// descriptor, or -1 with errno; EOPNOTSUPP when the file system or kernel
// cannot (older kernels answer EISDIR, as for O_DIRECTORY|O_WRONLY).
int open_anonymous(int dfd) {
#ifdef O_TMPFILE
    if (!testing::store_use_tmpfile) {
        errno = EOPNOTSUPP;
        return -1;
    }
    int fd = ::openat(dfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0 && (errno == EISDIR || errno == EINVAL || errno == ENOTSUP)) errno = EOPNOTSUPP;
    return fd;
#else
    (void)dfd;
    errno = EOPNOTSUPP;
    return -1;
#endif
}

// Gives the anonymous file fd the name NAME in dfd.  linkat(AT_EMPTY_PATH)
// needs CAP_DAC_READ_SEARCH before Linux 6.10; without it the link goes
// through /proc/self/fd, which works in a non-dumpable process too (the
// descriptor is our own).  Returns 0 or errno;
// EOPNOTSUPP when neither way exists (no /proc, e.g. in a chroot).
int link_anonymous(int fd, int dfd, const std::string& name) {
    if (!testing::store_link_via_proc) {
        if (::linkat(fd, "", dfd, name.c_str(), AT_EMPTY_PATH) == 0) return 0;
        if (errno == EEXIST) return EEXIST;
    }
    char proc[64];
    std::snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    if (::linkat(AT_FDCWD, proc, dfd, name.c_str(), AT_SYMLINK_FOLLOW) == 0) return 0;
    int e = errno;
    return (e == ENOENT || e == ENOTDIR || e == EPERM || e == EACCES) ? EOPNOTSUPP : e;
}

// The Microsoft v2.0 endpoint (token, devicecode, authorize) under a
// record's authority, for records written before providers (and records
// built with an authority only): derived once, then stored.
std::string endpoint_or_derived(const AccountRecord& rec, const std::string& stored, const char* leaf) {
    if (!stored.empty() || rec.authority.empty()) return stored;
    return rec.authority + "/oauth2/v2.0/" + leaf;
}

void append_field(std::string& s, const char* key, const std::string& value) {
    s += key;
    s += '=';
    s += value;
    s += '\n';
}

// A record value is one line: PEM text is stored with its line breaks
// written as \n (and a backslash as \\), which PEM itself never holds.
std::string pem_to_field(const std::string& pem) {
    std::string out;
    out.reserve(pem.size() + pem.size() / 32 + 8);
    for (char c : pem) {
        if (c == '\n') out += "\\n";
        else if (c == '\\') out += "\\\\";
        else if (c != '\r') out += c;
    }
    return out;
}

bool field_to_pem(const std::string& v, std::string& out) {
    out.clear();
    out.reserve(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (v[i] != '\\') {
            out += v[i];
            continue;
        }
        if (++i >= v.size()) return false;
        if (v[i] == 'n') out += '\n';
        else if (v[i] == '\\') out += '\\';
        else return false;
    }
    return true;
}

// Checks everything save() needs so that load() can read back what it
// writes.  Never mentions a value.
bool validate_for_save(const AccountRecord& rec, std::string& err) {
    if (!valid_account_name(rec.account)) {
        err = "invalid account name: use 1 to 128 letters, digits and @._+-, not starting with . or -";
        return false;
    }
    struct { const char* key; const std::string* value; } fields[] = {
        {"user", &rec.user},
        {"provider", &rec.provider},
        {"grant", &rec.grant},
        {"authority", &rec.authority},
        {"cloud", &rec.cloud},
        {"issuer", &rec.issuer},
        {"token_endpoint", &rec.token_endpoint},
        {"device_endpoint", &rec.device_endpoint},
        {"authorization_endpoint", &rec.authorization_endpoint},
        {"client_id", &rec.client_id},
        {"client_secret", &rec.client_secret.reveal()},
        {"assertion_alg", &rec.assertion_alg},
        {"credential_from", &rec.credential_from},
        {"scope", &rec.scope},
        {"ca_file", &rec.ca_file},
        {"refresh_token", &rec.refresh_token.reveal()},
        {"access_token", &rec.access_token.reveal()},
        {"last_error", &rec.last_error},
    };
    for (const auto& f : fields) {
        if (!protocol::valid_value(*f.value)) {
            err = std::string("cannot save account '") + rec.account + "': field " + f.key +
                  " contains a line break or NUL, or is longer than " +
                  std::to_string(protocol::kMaxLine) + " bytes";
            return false;
        }
    }
    // PEM is stored on one line (pem_to_field): its length counts there.
    struct { const char* key; const std::string* value; } pems[] = {
        {"certificate", &rec.certificate_pem},
        {"private_key", &rec.private_key_pem.reveal()},
    };
    for (const auto& f : pems) {
        std::size_t n = 0;
        for (char c : *f.value) n += (c == '\n' || c == '\\') ? 2 : (c == '\r' ? 0 : 1);
        if (n > protocol::kMaxLine || f.value->find('\0') != std::string::npos) {
            err = std::string("cannot save account '") + rec.account + "': the " + f.key +
                  " is longer than " + std::to_string(protocol::kMaxLine) + " bytes or holds a NUL";
            return false;
        }
    }
    // An app's token (client credentials) comes without a refresh token.
    const bool needs_refresh_token = rec.grant != "client_credentials";
    if (rec.provider.empty() || (rec.token_endpoint.empty() && rec.authority.empty()) || rec.client_id.empty() ||
        (needs_refresh_token && rec.refresh_token.empty())) {
        err = "cannot save account '" + rec.account +
              "': provider, token_endpoint (or authority), client_id and refresh_token are required";
        return false;
    }
    if (rec.access_expires_at < 0 || rec.access_lifetime < 0 || rec.refresh_obtained_at < 0 || rec.created_at < 0 ||
        rec.last_error_at < 0) {
        err = "cannot save account '" + rec.account + "': a time stamp is negative";
        return false;
    }
    return true;
}

}  // namespace

bool valid_account_name(const std::string& name) {
    if (name.empty() || name.size() > 128) return false;
    if (name[0] == '.' || name[0] == '-') return false;
    for (char c : name) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '@' || c == '.' || c == '_' || c == '+' || c == '-';
        if (!ok) return false;
    }
    if (ends_with(name, kLockSuffix)) return false;
    return true;
}

std::string default_store_dir() {
    const char* v = std::getenv("MAILOAUTH_STORE");
    if (v && *v) return v;
    v = std::getenv("XDG_STATE_HOME");
    if (v && v[0] == '/') return std::string(v) + "/mailoauth";
    v = std::getenv("HOME");
    if (v && *v) return std::string(v) + "/.local/state/mailoauth";
    if (struct passwd* pw = ::getpwuid(::geteuid()); pw && pw->pw_dir && *pw->pw_dir)
        return std::string(pw->pw_dir) + "/.local/state/mailoauth";
    return std::string();
}

std::string Store::path_of(const std::string& account) const { return dir_ + "/" + account; }

bool Store::open(bool create, std::string& err, bool remove_leftovers) {
    if (dir_.empty()) {
        err = "no store directory: set MAILOAUTH_STORE or use --store DIR";
        return false;
    }
    if (create && !make_dirs(dir_, err)) return false;
    struct stat st;
    if (::lstat(dir_.c_str(), &st) != 0) {
        int e = errno;
        if (e == ENOENT)
            err = "store directory " + dir_ + " does not exist: run 'mailoauth login ACCOUNT' first";
        else
            err = "cannot stat store directory " + dir_ + ": " + errno_text(e);
        return false;
    }
    if (!check_dir_stat(dir_, st, err)) return false;
    Fd dfd;
    if (open_dir(dir_, dfd, err) != DirOpen::Ok) return false;
    if (remove_leftovers) remove_abandoned_temp_files(dfd.get(), dir_);
    return true;
}

LoadStatus Store::load(const std::string& account, AccountRecord& out, std::string& err) const {
    if (!valid_account_name(account)) {
        err = "invalid account name: use 1 to 128 letters, digits and @._+-, not starting with . or -";
        return LoadStatus::Error;
    }
    Fd dfd;
    switch (open_dir(dir_, dfd, err)) {
    case DirOpen::Ok: break;
    case DirOpen::Missing: return LoadStatus::NotFound;
    case DirOpen::Error: return LoadStatus::Error;
    }
    const std::string path = path_of(account);
    // O_NONBLOCK: a FIFO planted here must not hang us before fstat refuses it.
    int fd = ::openat(dfd.get(), account.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT) {
            err = "account '" + account + "' is not in the store " + dir_;
            return LoadStatus::NotFound;
        }
        if (e == ELOOP)
            err = "store file " + path + " is a symlink, refused: the store must hold the file itself";
        else
            err = "cannot open store file " + path + ": " + errno_text(e);
        return LoadStatus::Error;
    }
    Fd file(fd);
    struct stat st;
    if (::fstat(fd, &st) != 0) {
        err = "cannot stat store file " + path + ": " + errno_text(errno);
        return LoadStatus::Error;
    }
    if (!S_ISREG(st.st_mode)) {
        err = "store file " + path + " is not a regular file, refused";
        return LoadStatus::Error;
    }
    if (st.st_uid != ::geteuid()) {
        err = "store file " + path + " is owned by uid " + std::to_string(st.st_uid) + ", not by you (uid " +
              std::to_string(::geteuid()) + "): refused";
        return LoadStatus::Error;
    }
    if ((st.st_mode & 077) != 0) {
        err = "store file " + path + " has mode " + mode_text(st.st_mode) +
              "; it holds a refresh token and must be private: run chmod 600 " + path;
        return LoadStatus::Error;
    }
    if (st.st_size < 0 || static_cast<std::uint64_t>(st.st_size) > kMaxStoreFile) {
        err = "store file " + path + " is too large (" + std::to_string(st.st_size) +
              " bytes, at most " + std::to_string(kMaxStoreFile) + "): not a store record";
        return LoadStatus::Error;
    }
    // Reserve once, so no reallocation leaves a copy of the tokens behind.
    std::string text;
    text.reserve(kMaxStoreFile + 1);
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            int e = errno;
            wipe_memory(buf, sizeof buf);
            wipe_string(text);
            err = "cannot read store file " + path + ": " + errno_text(e);
            return LoadStatus::Error;
        }
        if (n == 0) break;
        if (text.size() + static_cast<std::size_t>(n) > kMaxStoreFile) {
            wipe_memory(buf, sizeof buf);
            wipe_string(text);
            err = "store file " + path + " is too large: not a store record";
            return LoadStatus::Error;
        }
        text.append(buf, static_cast<std::size_t>(n));
    }
    wipe_memory(buf, sizeof buf);
    AccountRecord rec;
    std::string perr;
    bool ok = parse_record(text, rec, perr);
    wipe_string(text);
    if (!ok) {
        err = "store file " + path + " is damaged: " + perr + "; remove it and run 'mailoauth login " + account +
              "' again";
        return LoadStatus::Error;
    }
    if (rec.account != account) {
        err = "store file " + path + " holds account '" + rec.account + "', not '" + account + "': refused";
        return LoadStatus::Error;
    }
    out = std::move(rec);
    return LoadStatus::Ok;
}

bool Store::save(const AccountRecord& rec, std::string& err) const {
    if (!validate_for_save(rec, err)) return false;
    std::string text = serialize_record(rec);
    // Mirror load(): never write what parse_record would refuse.
    if (text.size() > protocol::kMaxMessage) {
        wipe_string(text);
        err = "cannot save account '" + rec.account + "': the record is larger than " +
              std::to_string(protocol::kMaxMessage) + " bytes";
        return false;
    }
    const std::string prefix = "cannot save account '" + rec.account + "' in " + dir_ + ": ";
    const std::string kept = "; the previous tokens are kept";
    Fd dfd;
    if (open_dir(dir_, dfd, err) != DirOpen::Ok) {
        wipe_string(text);
        err = prefix + err;
        return false;
    }

    // The record is written to an anonymous file (O_TMPFILE) that has no
    // name until it is complete and synced: a crash while writing leaves
    // nothing behind.  linkat cannot replace the record, so the finished
    // file gets a temp name and is renamed over it; a crash between the two
    // leaves a complete temp file, which the next Store::open() removes.
    // Where O_TMPFILE is missing, a named temp file is written instead.
    std::string tmp_name;
    auto tmp_path = [&] { return dir_ + "/" + tmp_name; };
    auto failed = [&](const std::string& what, int e) {
        if (!tmp_name.empty()) ::unlinkat(dfd.get(), tmp_name.c_str(), 0);
        wipe_string(text);
        err = prefix + (is_disk_full(e) ? std::string(kDiskFull) : what + ": " + errno_text(e) + kept);
        return false;
    };
    const char* what = "";
    Fd file(open_anonymous(dfd.get()));
    if (file.get() >= 0) {
        if (int e = fill_file(file.get(), text, what)) return failed(what, e);
        int e = EEXIST;
        for (int tries = 0; tries < 100 && e == EEXIST; ++tries) {
            tmp_name = new_temp_name(rec.account);
            e = link_anonymous(file.get(), dfd.get(), tmp_name);
        }
        if (e != 0) {
            tmp_name.clear();
            if (e != EOPNOTSUPP) return failed("cannot link the new record into " + dir_, e);
            file.reset();  // no way to name it: write a named file below
        }
    } else if (errno != EOPNOTSUPP) {
        return failed("cannot create a temporary file", errno);
    }
    if (tmp_name.empty()) {
        int fd = -1;
        for (int tries = 0; tries < 100 && fd < 0; ++tries) {
            tmp_name = new_temp_name(rec.account);
            fd = ::openat(dfd.get(), tmp_name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY,
                          0600);
            if (fd < 0 && errno != EEXIST) break;
        }
        if (fd < 0) {
            int e = errno;
            tmp_name.clear();
            return failed("cannot create a temporary file", e);
        }
        file.reset(fd);
        if (int e = fill_file(fd, text, what)) return failed(what + (" " + tmp_path()), e);
    }
    wipe_string(text);
    if (::close(file.release()) != 0) return failed("cannot close " + tmp_path(), errno);
    if (testing::store_before_rename_hook) {
        if (int e = testing::store_before_rename_hook(tmp_path().c_str()))
            return failed("cannot rename " + tmp_path(), e);
    }
    if (::renameat(dfd.get(), tmp_name.c_str(), dfd.get(), rec.account.c_str()) != 0)
        return failed("cannot rename " + tmp_path() + " to " + path_of(rec.account), errno);
    // The new record is in place; make the rename itself durable.
    if (int e = fsync_dir(dfd.get())) {
        err = "saved account '" + rec.account + "', but cannot sync the store directory " + dir_ + ": " +
              errno_text(e) + "; the new tokens may be lost in a crash";
        return false;
    }
    // Debris of an earlier crashed save of this account (we hold its lock).
    remove_temp_files(dfd.get(), rec.account);
    return true;
}

bool Store::remove(const std::string& account, std::string& err) const {
    if (!valid_account_name(account)) {
        err = "invalid account name: use 1 to 128 letters, digits and @._+-, not starting with . or -";
        return false;
    }
    Fd dfd;
    switch (open_dir(dir_, dfd, err)) {
    case DirOpen::Ok: break;
    case DirOpen::Missing: return true;
    case DirOpen::Error: return false;
    }
    if (::unlinkat(dfd.get(), account.c_str(), 0) != 0 && errno != ENOENT) {
        err = "cannot remove " + path_of(account) + ": " + errno_text(errno);
        return false;
    }
    remove_temp_files(dfd.get(), account);
    std::string lock = account + kLockSuffix;
    if (::unlinkat(dfd.get(), lock.c_str(), 0) != 0 && errno != ENOENT) {
        err = "cannot remove " + path_of(lock) + ": " + errno_text(errno);
        return false;
    }
    if (int e = fsync_dir(dfd.get())) {
        err = "cannot sync the store directory " + dir_ + ": " + errno_text(e);
        return false;
    }
    return true;
}

std::vector<std::string> Store::list(std::string& err) const {
    std::vector<std::string> names;
    Fd dfd;
    switch (open_dir(dir_, dfd, err)) {
    case DirOpen::Ok: break;
    case DirOpen::Missing: err.clear(); return names;
    case DirOpen::Error: return names;
    }
    int dup = ::fcntl(dfd.get(), F_DUPFD_CLOEXEC, 0);
    DIR* d = dup >= 0 ? ::fdopendir(dup) : nullptr;
    if (!d) {
        if (dup >= 0) ::close(dup);
        err = "cannot list store directory " + dir_ + ": " + errno_text(errno);
        return names;
    }
    errno = 0;
    while (struct dirent* de = ::readdir(d)) {
        std::string name = de->d_name;
        // valid_account_name() excludes ".", "..", temp files (leading '.')
        // and lock files (".lock").  Directories are not records; anything
        // else is listed, so that load() can say what is wrong with it.
        if (!valid_account_name(name)) continue;
        struct stat st;
        if (::fstatat(dfd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        if (S_ISDIR(st.st_mode)) continue;
        names.push_back(std::move(name));
        errno = 0;
    }
    int e = errno;
    ::closedir(d);
    if (e != 0) {
        err = "cannot list store directory " + dir_ + ": " + errno_text(e);
        names.clear();
        return names;
    }
    std::sort(names.begin(), names.end());
    return names;
}

Store::Lock& Store::Lock::operator=(Lock&& o) noexcept {
    if (this != &o) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = o.fd_;
        o.fd_ = -1;
    }
    return *this;
}

Store::Lock::~Lock() {
    if (fd_ >= 0) ::close(fd_);
}

bool Store::lock(const std::string& account, long timeout_ms, Lock& out, std::string& err) const {
    if (!valid_account_name(account)) {
        err = "invalid account name: use 1 to 128 letters, digits and @._+-, not starting with . or -";
        return false;
    }
    Fd dfd;
    if (open_dir(dir_, dfd, err) != DirOpen::Ok) return false;
    const std::string name = account + kLockSuffix;
    const std::string path = path_of(name);

    struct timespec start;
    ::clock_gettime(CLOCK_MONOTONIC, &start);
    auto elapsed_ms = [&]() {
        struct timespec now;
        ::clock_gettime(CLOCK_MONOTONIC, &now);
        return (now.tv_sec - start.tv_sec) * 1000L + (now.tv_nsec - start.tv_nsec) / 1000000L;
    };
    for (;;) {
        // Blocks until the holder lets go or the time is up (see Deadline).
        const long left = timeout_ms - elapsed_ms();
        Fd file;
        switch (try_lock_once(dfd.get(), name, path, file, err, left > 0 ? left : 0)) {
        case TryLock::Locked:
            out = Lock();
            out.fd_ = file.release();
            return true;
        case TryLock::Error:
            return false;
        case TryLock::Replaced:
            // remove() unlinked the file we locked: try again with the new one.
            if (elapsed_ms() > timeout_ms) {
                err = "timed out waiting for the lock on account '" + account + "'";
                return false;
            }
            continue;
        case TryLock::Busy:
            break;
        }
        if (timeout_ms - elapsed_ms() > 0) continue;  // another signal cut the wait short
        char secs[32];
        std::snprintf(secs, sizeof secs, "%.1f", static_cast<double>(timeout_ms) / 1000.0);
        err = std::string("timed out after ") + secs + " s waiting for the lock on account '" + account +
              "' (" + path + "): another mailoauth is still refreshing it";
        return false;
    }
}

std::string serialize_record(const AccountRecord& rec) {
    const std::string token_endpoint = endpoint_or_derived(rec, rec.token_endpoint, "token");
    const std::string device_endpoint = endpoint_or_derived(rec, rec.device_endpoint, "devicecode");
    const std::string authorization_endpoint = endpoint_or_derived(rec, rec.authorization_endpoint, "authorize");
    struct { const char* key; const std::string* value; } strings[] = {
        {"account", &rec.account},
        {"user", &rec.user},
        {"provider", &rec.provider},
        {"grant", &rec.grant},
        {"authority", &rec.authority},
        {"cloud", &rec.cloud},
        {"issuer", &rec.issuer},
        {"token_endpoint", &token_endpoint},
        {"device_endpoint", &device_endpoint},
        {"authorization_endpoint", &authorization_endpoint},
        {"client_id", &rec.client_id},
        {"scope", &rec.scope},
        {"ca_file", &rec.ca_file},
    };
    const std::string& rt = rec.refresh_token.reveal();
    const std::string& at = rec.access_token.reveal();
    const std::string& cs = rec.client_secret.reveal();
    const std::string cert = pem_to_field(rec.certificate_pem);
    std::string key_line = pem_to_field(rec.private_key_pem.reveal());
    const Secret key(key_line);
    wipe_string(key_line);
    const std::string& k = key.reveal();
    std::size_t size = 640 + rt.size() + at.size() + cs.size() + cert.size() + k.size() +
                       rec.assertion_alg.size() + rec.credential_from.size() + rec.last_error.size();
    for (const auto& f : strings) size += f.value->size();
    // One allocation, so no reallocation leaves a copy of the tokens behind.
    std::string s;
    s.reserve(size);
    append_field(s, "format", kFormat);
    for (const auto& f : strings) append_field(s, f.key, *f.value);
    append_field(s, "allow_insecure_http", rec.allow_insecure_http ? "1" : "0");
    if (!cs.empty()) append_field(s, "client_secret", cs);
    if (!cert.empty()) append_field(s, "certificate", cert);
    if (!k.empty()) append_field(s, "private_key", k);
    if (!rec.assertion_alg.empty()) append_field(s, "assertion_alg", rec.assertion_alg);
    if (!rec.credential_from.empty()) append_field(s, "credential_from", rec.credential_from);
    append_field(s, "refresh_token", rt);
    append_field(s, "access_token", at);
    append_field(s, "access_expires_at", std::to_string(rec.access_expires_at));
    append_field(s, "access_lifetime", std::to_string(rec.access_lifetime));
    append_field(s, "refresh_obtained_at", std::to_string(rec.refresh_obtained_at));
    append_field(s, "created_at", std::to_string(rec.created_at));
    append_field(s, "last_error", rec.last_error);
    append_field(s, "last_error_at", std::to_string(rec.last_error_at));
    s += '\n';
    return s;
}

bool parse_record(const std::string& text, AccountRecord& out, std::string& err) {
    if (text.size() > protocol::kMaxMessage) {
        err = "record too large (" + std::to_string(text.size()) + " bytes, at most " +
              std::to_string(protocol::kMaxMessage) + ")";
        return false;
    }
    protocol::Message m;
    protocol::ParseResult r = protocol::parse(text, m);
    if (!r.ok) {
        // protocol::parse never puts a value in its error.
        err = "line " + std::to_string(r.line) + ": " + r.error;
        return false;
    }
    if (m.fields().empty() || m.fields()[0].first != "format") {
        err = "not a mailoauth store record (the first line must be format=" + std::string(kFormat) + ")";
        return false;
    }
    if (m.fields()[0].second != kFormat) {
        err = "unsupported store format (this mailoauth reads " + std::string(kFormat) + ")";
        return false;
    }
    if (!r.terminated) {
        err = "record is truncated (no blank line at its end)";
        return false;
    }
    if (r.consumed != text.size()) {
        err = "unexpected data after the end of the record";
        return false;
    }
    AccountRecord rec;
    const std::string* grant = m.get("grant");
    const bool app_grant = grant && *grant == "client_credentials";
    // Records of older versions have an authority and no token_endpoint.
    const char* where = m.get("token_endpoint") ? "token_endpoint" : "authority";
    for (const char* key : {"account", where, "client_id", app_grant ? "client_id" : "refresh_token"}) {
        const std::string* v = m.get(key);
        if (!v) {
            err = std::string("missing field '") + key + "'";
            return false;
        }
        if (v->empty()) {
            err = std::string("field '") + key + "' is empty";
            return false;
        }
    }
    rec.account = *m.get("account");
    if (!valid_account_name(rec.account)) {
        err = "field 'account' is not a valid account name";
        return false;
    }
    rec.user = m.get_or("user", "");
    rec.provider = m.get_or("provider", "microsoft");
    rec.grant = m.get_or("grant", "device");
    if (rec.provider.empty() || rec.grant.empty()) {
        err = "field 'provider' or 'grant' is empty";
        return false;
    }
    rec.authority = m.get_or("authority", "");
    rec.cloud = m.get_or("cloud", "");
    rec.issuer = m.get_or("issuer", "");
    rec.token_endpoint = m.get_or("token_endpoint", "");
    rec.device_endpoint = m.get_or("device_endpoint", "");
    rec.authorization_endpoint = m.get_or("authorization_endpoint", "");
    if (rec.token_endpoint.empty()) {
        // Written before providers: stored by the next save.
        rec.token_endpoint = endpoint_or_derived(rec, "", "token");
        rec.device_endpoint = endpoint_or_derived(rec, "", "devicecode");
        rec.authorization_endpoint = endpoint_or_derived(rec, "", "authorize");
    }
    rec.client_id = *m.get("client_id");
    if (const std::string* v = m.get("client_secret")) rec.client_secret = Secret(*v);
    if (const std::string* v = m.get("certificate")) {
        if (!field_to_pem(*v, rec.certificate_pem)) {
            err = "field 'certificate' is not stored PEM";
            return false;
        }
    }
    if (const std::string* v = m.get("private_key")) {
        std::string pem;
        const bool ok = field_to_pem(*v, pem);
        rec.private_key_pem = Secret(pem);
        wipe_string(pem);
        if (!ok) {
            err = "field 'private_key' is not stored PEM";
            return false;
        }
    }
    rec.assertion_alg = m.get_or("assertion_alg", "");
    rec.credential_from = m.get_or("credential_from", "");
    rec.scope = m.get_or("scope", "");
    rec.ca_file = m.get_or("ca_file", "");
    if (const std::string* v = m.get("allow_insecure_http")) {
        if (*v == "1")
            rec.allow_insecure_http = true;
        else if (*v == "0" || v->empty())
            rec.allow_insecure_http = false;
        else {
            err = "field 'allow_insecure_http' must be 0 or 1";
            return false;
        }
    }
    if (const std::string* v = m.get("refresh_token")) rec.refresh_token = Secret(*v);
    if (const std::string* v = m.get("access_token")) rec.access_token = Secret(*v);
    struct { const char* key; std::int64_t* dst; } ints[] = {
        {"access_expires_at", &rec.access_expires_at},
        {"access_lifetime", &rec.access_lifetime},
        {"refresh_obtained_at", &rec.refresh_obtained_at},
        {"created_at", &rec.created_at},
        {"last_error_at", &rec.last_error_at},
    };
    for (const auto& f : ints) {
        const std::string* v = m.get(f.key);
        if (!v) continue;  // absent: 0
        if (!valid_integer(*v, *f.dst)) {
            err = std::string("field '") + f.key + "' is not a non-negative integer";
            return false;
        }
    }
    rec.last_error = m.get_or("last_error", "");
    out = std::move(rec);
    return true;
}

}  // namespace mailoauth
