// The agent's log: syslog (facility mail), and stderr as well unless stderr
// is the journal (which already receives syslog) or the agent detached.
#ifndef MAILOAUTH_TOKENHELPER_AGENT_LOG_H
#define MAILOAUTH_TOKENHELPER_AGENT_LOG_H

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace mailoauth::agent {

// Whether logmsg also writes to stderr.
void log_to_stderr(bool on);

// Whether a line of priority prio goes anywhere (debug lines go only to
// syslog, and there is no syslog where /dev/log is missing): a line that
// costs work to build is built only then.
bool log_wanted(int prio);

// Never pass a token here: the log is read by people and kept.
__attribute__((format(printf, 2, 3))) void logmsg(int prio, const char* fmt, ...);

// Warnings a caller can trigger at will (refusals, bad requests, forced
// refreshes) are logged at most once per kWarnIntervalSeconds for the same
// key (e.g. the caller's uid); the next line that is logged says how many
// were held back.  A caller that tries 1000 times a second costs the log
// one line a minute.
constexpr long kWarnIntervalSeconds = 60;

class LogLimiter {
public:
    explicit LogLimiter(long interval = kWarnIntervalSeconds, std::size_t max_keys = 4096)
        : interval_(interval), max_keys_(max_keys) {}
    // True when a line for key may be logged at now; held is then the
    // number of lines for key held back since the last one logged.
    bool allow(const std::string& key, std::int64_t now, std::uint64_t& held);

private:
    struct Entry {
        std::int64_t last = 0;
        std::uint64_t held = 0;
    };
    const long interval_;
    const std::size_t max_keys_;
    std::mutex mu_;
    std::map<std::string, Entry> keys_;
};

// logmsg through one process-wide LogLimiter, with the count of lines held
// back appended.
__attribute__((format(printf, 3, 4))) void logmsg_limited(int prio, const std::string& key, const char* fmt, ...);

// When systemd connects stderr to the journal, syslog already reaches it.
bool stderr_is_journal();

// A value for one protocol line or one log line: printable, bounded.
std::string one_line(const std::string& s, std::size_t max = 1000);

// The passwd name of uid, else "uid N".
std::string user_name(uid_t uid);

}  // namespace mailoauth::agent

#endif
