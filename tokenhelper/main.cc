// mailoauth: OAuth2 tokens for mail programs (see mailoauth(1)).
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <exception>
#include <cstring>
#include <string>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "tokenhelper/commands.h"
#include "tokenhelper/errors.h"
#include "tokenhelper/http_module.h"

namespace {

// The refresh token opens a mailbox for 90 days: nothing this program holds
// may end up in a core file (SIGQUIT, a crash) or be read by another
// process of the same user (ptrace, /proc/PID/mem, /proc/PID/environ).
// Done first, before the arguments are parsed, for every verb (help and
// version too): then no path can load a secret before it, and it costs two
// system calls.  The hard core limit goes to 0 as well, so nothing later
// can raise it.  Not being dumpable makes /proc/PID/* root's; this program
// reads only /proc/self, which stays its own.
bool disable_core_dumps() {
    struct rlimit none = {0, 0};
    if (setrlimit(RLIMIT_CORE, &none) != 0) return false;
    return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (!disable_core_dumps()) {
        // Only a sandbox that forbids these calls gets here: refuse rather
        // than hold tokens that a core file could keep.
        std::fprintf(stderr,
                     "mailoauth: cannot turn off core dumps (%s); refusing to handle tokens: "
                     "allow prctl(PR_SET_DUMPABLE) and setrlimit(RLIMIT_CORE) for this program\n",
                     std::strerror(errno));
        return mailoauth::kExitConfig;
    }
    // Everything this program creates holds or guards a secret.
    umask(077);
    // A reader that goes away (the plugin timed out) must not kill us in the
    // middle of saving a refreshed token; writes then fail with EPIPE.
    std::signal(SIGPIPE, SIG_IGN);
    try {
        std::vector<std::string> args(argv + 1, argv + argc);
        // libcurl is loaded only if a request is really made.
        mailoauth::LazyHttpClient http;
        const int rc = mailoauth::run_command(args, http);
        if (http.loaded()) {
            // The network stack's clean-up at exit (OpenSSL and libcurl
            // free every table they built, some thirty libraries run their
            // destructors) only delays the caller: the plugin waits for our
            // exit.  What we saved is synced already, and stdio is flushed
            // here; the kernel frees the rest.
            std::fflush(nullptr);
            _exit(rc);
        }
        return rc;
    } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "mailoauth: out of memory\n");
        return mailoauth::kExitTempFail;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "mailoauth: internal error: %s\n", e.what());
        return mailoauth::kExitTempFail;
    }
}
