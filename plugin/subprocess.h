// Running a child program from inside a library: posix_spawn (no fork of a
// possibly huge, multi-threaded host), no shell, an explicit argv and
// environment, its own process group, and a deadline after which the whole
// group is killed and the child reaped, so nothing is left behind in the
// host (cf. Postfix's spawn_command).  Reads are bounded.
#ifndef MAILOAUTH_PLUGIN_SUBPROCESS_H
#define MAILOAUTH_PLUGIN_SUBPROCESS_H

#include <atomic>
#include <cstddef>
#include <string>
#include <vector>

namespace mailoauth::plugin {

struct RunOptions {
    std::string path;               // absolute
    std::vector<std::string> argv;  // argv[0] included
    std::vector<std::string> env;   // "NAME=value", the whole environment
    std::string input;              // written to stdin, then stdin is closed
    std::size_t max_output = 65536; // more on stdout is an error
    long timeout_ms = 20000;
    // Stop reading stdout once a blank line ended a message: the reply is
    // complete, whatever else the child prints.
    bool stop_at_blank_line = true;
};

struct RunResult {
    enum class End { Exited, Signaled, TimedOut, TooMuchOutput, SpawnFailed, StatusLost };
    End end = End::SpawnFailed;
    int exit_code = -1;
    int signal = 0;
    int error = 0;        // errno for SpawnFailed
    std::string output;   // stdout; may hold a token: wiped on destruction
    RunResult() = default;
    RunResult(const RunResult&) = delete;
    RunResult& operator=(const RunResult&) = delete;
    ~RunResult();
};

// Never throws except std::bad_alloc before the child is started.
void run(const RunOptions& opts, RunResult& result);

// Test seams for the unit tests.
namespace testing {
// false: wait for the exit with the growing nap, as on a kernel without
// pidfd_open (before Linux 5.3).
extern bool subprocess_use_pidfd;
// How often run() looked for the child's exit after its stdout ended.
extern std::atomic<unsigned long> subprocess_exit_wakeups;
}  // namespace testing

}  // namespace mailoauth::plugin

#endif
