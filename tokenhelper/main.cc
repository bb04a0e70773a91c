// mailoauth: OAuth2 tokens for mail programs (see mailoauth(1)).
#include <clocale>
#include <csignal>
#include <cstdio>
#include <exception>
#include <string>
#include <sys/stat.h>
#include <vector>

#include "tokenhelper/commands.h"
#include "tokenhelper/errors.h"
#include "tokenhelper/http_module.h"

int main(int argc, char** argv) {
    // Everything this program creates holds or guards a secret.
    umask(077);
    std::setlocale(LC_ALL, "");
    // A reader that goes away (the plugin timed out) must not kill us in the
    // middle of saving a refreshed token; writes then fail with EPIPE.
    std::signal(SIGPIPE, SIG_IGN);
    try {
        std::vector<std::string> args(argv + 1, argv + argc);
        // libcurl is loaded only if a request is really made.
        mailoauth::LazyHttpClient http;
        return mailoauth::run_command(args, http);
    } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "mailoauth: out of memory\n");
        return mailoauth::kExitTempFail;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "mailoauth: internal error: %s\n", e.what());
        return mailoauth::kExitTempFail;
    }
}
