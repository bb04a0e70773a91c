// The agent's log: syslog (facility mail), and stderr as well unless stderr
// is the journal (which already receives syslog) or the agent detached.
#ifndef MAILOAUTH_TOKENHELPER_AGENT_LOG_H
#define MAILOAUTH_TOKENHELPER_AGENT_LOG_H

#include <sys/types.h>

#include <cstddef>
#include <string>

namespace mailoauth::agent {

// Whether logmsg also writes to stderr.
void log_to_stderr(bool on);

// Never pass a token here: the log is read by people and kept.
__attribute__((format(printf, 2, 3))) void logmsg(int prio, const char* fmt, ...);

// When systemd connects stderr to the journal, syslog already reaches it.
bool stderr_is_journal();

// A value for one protocol line or one log line: printable, bounded.
std::string one_line(const std::string& s, std::size_t max = 1000);

// The passwd name of uid, else "uid N".
std::string user_name(uid_t uid);

}  // namespace mailoauth::agent

#endif
