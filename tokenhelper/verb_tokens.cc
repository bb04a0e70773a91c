// `mailoauth token` and `mailoauth get`: hand out a valid access token,
// to a mail program on stdout or to the SASL plugin in protocol v1.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <poll.h>
#include <unistd.h>

#include "common/protocol.h"
#include "common/sanitize.h"
#include "common/secret.h"
#include "tokenhelper/errors.h"
#include "tokenhelper/store.h"
#include "tokenhelper/tokens.h"
#include "tokenhelper/verbs.h"

namespace mailoauth {

namespace {

// A message that goes into a protocol value or one log line.
std::string one_line(const std::string& s) { return sanitize::text(s, 2000); }

// Reads one protocol message from stdin: bounded in size and time.
bool read_request(std::string& buf, std::string& err) {
    const int kTimeoutMs = 30000;
    char chunk[4096];
    for (;;) {
        if (buf.find("\n\n") != std::string::npos || (buf.size() >= 1 && buf[0] == '\n')) return true;
        if (buf.size() > protocol::kMaxMessage) {
            err = "request larger than " + std::to_string(protocol::kMaxMessage) + " bytes";
            return false;
        }
        struct pollfd pfd = {STDIN_FILENO, POLLIN, 0};
        int pr = poll(&pfd, 1, kTimeoutMs);
        if (pr < 0 && errno == EINTR) continue;
        if (pr == 0) {
            err = "no request on standard input within 30 s";
            return false;
        }
        ssize_t n = read(STDIN_FILENO, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            err = std::string("cannot read standard input: ") + std::strerror(errno);
            return false;
        }
        if (n == 0) return true;
        buf.append(chunk, static_cast<std::size_t>(n));
    }
}

int reply(const protocol::Message& m, int code) {
    std::string out = protocol::serialize(m);
    std::size_t off = 0;
    while (off < out.size()) {
        ssize_t n = write(STDOUT_FILENO, out.data() + off, out.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        off += static_cast<std::size_t>(n);
    }
    wipe_string(out);
    return code;
}

// Every reply carries status=N, the exit status: a program that reaps its
// children itself (SIGCHLD ignored) loses the exit status, and the plugin
// then reads it here instead.
}  // namespace

int reply_error(const std::string& error, const std::string& description, int code) {
    protocol::Message m;
    protocol::build_error_reply(m, error, one_line(description), code);
    std::fprintf(stderr, "mailoauth: %s\n", description.c_str());
    return reply(m, code);
}

int verb_get(const Parsed& p, const Environment& env, HttpClient& http) {
    if (!p.positional.empty()) return usage_error("'get' takes no arguments; it reads the request on stdin");
    std::string buf, err;
    if (!read_request(buf, err)) return reply_error("bad_request", err, kExitDataErr);
    protocol::Request req;
    protocol::Problem problem;
    const bool parsed = protocol::parse_request(buf, req, problem);
    wipe_string(buf);
    if (!parsed) return reply_error(problem.error, problem.description, problem.status);
    const std::string& account = req.account;
    if (!valid_account_name(account))
        return reply_error("bad_request", "'" + account + "' is not a valid account name", kExitDataErr);
    Store store(env.store_dir);
    // Without the search for crashed saves' temp files: this runs at every
    // login, and every save removes its own account's leftovers (token,
    // status, login and logout search the whole store).
    if (!store.open(false, err, false))
        return reply_error("store_error", err + "; sign in first with: mailoauth login " + account, kExitConfig);
    TokenResult t = get_access_token(env, store, http, account, req.force_refresh, req.rejected);
    if (t.exit_code != 0) return reply_error(t.error.empty() ? "failed" : t.error, t.message, t.exit_code);
    if (!t.warning.empty()) std::fprintf(stderr, "mailoauth: warning: %s\n", t.warning.c_str());
    protocol::Message m;
    if (!protocol::build_token_reply(m, t.record.access_token.reveal(), t.record.access_expires_at,
                                     t.record.user.empty() ? account : t.record.user, t.record.access_lifetime))
        return reply_error("bad_response", "the stored token or user name cannot be sent", kExitTempFail);
    return reply(m, kExitOk);
}

int verb_token(const Parsed& p, const Environment& env, HttpClient& http) {
    if (p.positional.size() != 1) return usage_error("usage: mailoauth token ACCOUNT [--force-refresh]");
    const std::string& account = p.positional[0];
    if (!valid_account_name(account)) return fail("'" + account + "' is not a valid account name", kExitUsage);
    Store store(env.store_dir);
    std::string err;
    if (!store.open(false, err)) return fail(err + "\nSign in first with: mailoauth login " + account, kExitConfig);
    TokenResult t = get_access_token(env, store, http, account, p.has("force-refresh"));
    if (t.exit_code != 0) return fail(t.message, t.exit_code);
    if (!t.warning.empty()) std::fprintf(stderr, "mailoauth: warning: %s\n", t.warning.c_str());
    std::string line = t.record.access_token.reveal() + "\n";
    std::size_t off = 0;
    while (off < line.size()) {
        ssize_t n = write(STDOUT_FILENO, line.data() + off, line.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            wipe_string(line);
            return fail("could not write the token to standard output", kExitTempFail);
        }
        off += static_cast<std::size_t>(n);
    }
    wipe_string(line);
    return kExitOk;
}

}  // namespace mailoauth
