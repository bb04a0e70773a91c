#include "tokenhelper/agent_log.h"

#include <pwd.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "common/sanitize.h"

namespace mailoauth::agent {

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

// Where there is no syslog socket (a container, a minimal chroot), every
// syslog() call would try to connect to it again, and fail: a socket and a
// connect per line, on every request.  Whether /dev/log is a socket is
// looked at once per kSyslogRecheckSeconds instead (so a syslog daemon
// started later is still found); while it is there, glibc keeps its one
// connection.
constexpr long kSyslogRecheckSeconds = 30;
std::atomic<long long> g_syslog_checked{-1};
std::atomic<bool> g_syslog_there{false};

bool syslog_there() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    const long long now = ts.tv_sec;
    long long checked = g_syslog_checked.load(std::memory_order_relaxed);
    if (checked < 0 || now - checked >= kSyslogRecheckSeconds) {
        struct stat st;
        g_syslog_there.store(::stat(_PATH_LOG, &st) == 0 && S_ISSOCK(st.st_mode), std::memory_order_relaxed);
        g_syslog_checked.store(now, std::memory_order_relaxed);
    }
    return g_syslog_there.load(std::memory_order_relaxed);
}

}  // namespace

void log_to_stderr(bool on) { g_log_stderr = on; }

bool log_wanted(int prio) { return (g_log_stderr && prio != LOG_DEBUG) || syslog_there(); }

void logmsg(int prio, const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    va_list copy;
    va_copy(copy, ap);
    if (syslog_there()) vsyslog(prio, fmt, ap);
    va_end(ap);
    if (g_log_stderr && prio != LOG_DEBUG) {
        char line[2048];
        std::vsnprintf(line, sizeof line, fmt, copy);
        std::fprintf(stderr, "mailoauth-agent[%ld]: %s: %s\n", static_cast<long>(getpid()), level_name(prio), line);
        std::fflush(stderr);
    }
    va_end(copy);
}

bool LogLimiter::allow(const std::string& key, std::int64_t now, std::uint64_t& held) {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = keys_.find(key);
    if (it == keys_.end()) {
        if (keys_.size() >= max_keys_) {
            // Forget keys that are quiet; when all are busy, forget all (a
            // few counts of held-back lines are lost, the bound is kept).
            for (auto i = keys_.begin(); i != keys_.end();)
                i = now - i->second.last >= interval_ ? keys_.erase(i) : std::next(i);
            if (keys_.size() >= max_keys_) keys_.clear();
        }
        keys_[key].last = now;
        held = 0;
        return true;
    }
    Entry& e = it->second;
    if (now - e.last < interval_) {
        ++e.held;
        return false;
    }
    held = e.held;
    e.held = 0;
    e.last = now;
    return true;
}

void logmsg_limited(int prio, const std::string& key, const char* fmt, ...) {
    static LogLimiter limiter;
    std::uint64_t held = 0;
    if (!limiter.allow(key, static_cast<std::int64_t>(std::time(nullptr)), held)) return;
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (held)
        logmsg(prio, "%s (and %llu more like this since the last one logged)", line,
               static_cast<unsigned long long>(held));
    else
        logmsg(prio, "%s", line);
}

bool stderr_is_journal() {
    const char* js = std::getenv("JOURNAL_STREAM");
    if (!js || !*js) return false;
    struct stat st;
    if (fstat(STDERR_FILENO, &st) != 0) return false;
    unsigned long long dev = 0, ino = 0;
    if (std::sscanf(js, "%llu:%llu", &dev, &ino) != 2) return false;
    return dev == static_cast<unsigned long long>(st.st_dev) && ino == static_cast<unsigned long long>(st.st_ino);
}

// Peer text (account names, the identity provider's words) through the one
// sanitizer: no control characters of either C0 or C1 form, valid UTF-8.
std::string one_line(const std::string& s, std::size_t max) { return sanitize::text(s, max); }

std::string user_name(uid_t uid) {
    struct passwd pw;
    struct passwd* res = nullptr;
    char buf[4096];
    if (getpwuid_r(uid, &pw, buf, sizeof buf, &res) == 0 && res) return pw.pw_name;
    return "uid " + std::to_string(uid);
}

}  // namespace mailoauth::agent
