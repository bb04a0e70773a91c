#include "tokenhelper/browser_flow.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/sanitize.h"
#include "tokenhelper/form.h"
#include "tokenhelper/loopback_listener.h"
#include "tokenhelper/pkce.h"
#include "tokenhelper/redirect.h"
#include "tokenhelper/timefmt.h"

extern char** environ;

namespace mailoauth {

namespace {

// Parameters mailoauth sets itself; extra_params may not replace them.
const char* const kOwnParams[] = {"response_type", "client_id",  "redirect_uri",          "scope",
                                  "state",         "code_challenge", "code_challenge_method", "login_hint"};

// The pasted line: a whole address is at most this long (see redirect.h).
constexpr std::size_t kMaxPastedLine = kMaxRedirectQuery + 1024;

BrowserFlowResult fail(int code, std::string error, std::string message) {
    BrowserFlowResult r;
    r.exit_code = code;
    r.error = std::move(error);
    r.message = std::move(message);
    return r;
}

// "mailoauth login ACCOUNT --browser", the command to run again.
std::string again(const BrowserFlowParams& p) {
    return "'mailoauth login " + (p.account.empty() ? std::string("ACCOUNT") : p.account) +
           (p.paste ? " --paste'" : " --browser'");
}

// Leading "AADSTSnnnn" codes of a Microsoft error description, so that an
// error redirect is explained as well as the same error from the token
// endpoint (where they come as error_codes).
std::vector<long> aadsts_codes(const std::string& description) {
    std::vector<long> codes;
    std::size_t pos = 0;
    while (codes.size() < 4 && (pos = description.find("AADSTS", pos)) != std::string::npos) {
        pos += 6;
        long v = 0;
        std::size_t digits = 0;
        while (pos < description.size() && digits < 9 && description[pos] >= '0' && description[pos] <= '9') {
            v = v * 10 + (description[pos] - '0');
            ++pos;
            ++digits;
        }
        if (digits > 0) codes.push_back(v);
    }
    return codes;
}

// The token endpoint's invalid_grant for a code means the code, not a
// saved sign-in: the general explanation would talk of a refresh token.
bool code_rejected(const OAuthError& e) {
    if (e.error != "invalid_grant") return false;
    for (long c : e.error_codes) {
        if (c != 70000 && c != 70008 && c != 54005 && c != 501481 && c != 50148) return false;
    }
    return true;
}

void wipe_fields(FormFields& f) {
    for (auto& kv : f) wipe_string(kv.second);
}

}  // namespace

// --- the default user interface -----------------------------------------

BrowserFlowUI::~BrowserFlowUI() {
    // xdg-open, if started, is not waited for; reap it if it is done.
    if (browser_pid_ > 0) waitpid(browser_pid_, nullptr, WNOHANG);
}

void BrowserFlowUI::show_url(const std::string& url, bool paste) {
    std::fprintf(stderr, "\nTo sign in, open this address in a web browser:\n\n    %s\n\n", url.c_str());
    if (paste) {
        std::fprintf(stderr,
                     "After you have signed in, the browser ends on a page that cannot be shown (an\n"
                     "address beginning with http://127.0.0.1).  Copy that whole address from the\n"
                     "browser's address bar, paste it here and press Enter:\n");
    }
    std::fflush(stderr);
}

void BrowserFlowUI::open_browser(const std::string& url) {
    const char* display = std::getenv("DISPLAY");
    const char* wayland = std::getenv("WAYLAND_DISPLAY");
    if ((display == nullptr || *display == '\0') && (wayland == nullptr || *wayland == '\0')) return;

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    if (posix_spawn_file_actions_init(&fa) != 0) return;
    if (posix_spawnattr_init(&attr) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return;
    }
    // Quiet (a browser's chatter would garble the countdown), detached from
    // the terminal's signals (Ctrl-C here must not close the browser), with
    // the default signal dispositions and mask.
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    std::string arg0 = "xdg-open", arg1 = url;
    char* argv[] = {&arg0[0], &arg1[0], nullptr};
    pid_t pid = -1;
    if (posix_spawnp(&pid, "xdg-open", &fa, &attr, argv, environ) == 0) browser_pid_ = pid;
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
}

void BrowserFlowUI::waiting(long seconds_left) {
    if (browser_pid_ > 0 && waitpid(browser_pid_, nullptr, WNOHANG) == browser_pid_) browser_pid_ = -1;
    if (isatty(STDERR_FILENO)) {
        std::fprintf(stderr, "\rWaiting for the sign-in in the browser: %s left   ", format_mmss(seconds_left).c_str());
        std::fflush(stderr);
    } else if (last_line_ < 0 || last_line_ - seconds_left >= 60) {
        // Not a terminal (a log, a script): one line a minute, no \r noise.
        last_line_ = seconds_left;
        std::fprintf(stderr, "Waiting for the sign-in in the browser: %s left\n", format_mmss(seconds_left).c_str());
        std::fflush(stderr);
    }
}

bool BrowserFlowUI::read_pasted(std::string& line, long timeout_s) {
    line.clear();
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    const double deadline = static_cast<double>(start.tv_sec) + start.tv_nsec / 1e9 + static_cast<double>(timeout_s);
    for (;;) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        double left = deadline - (static_cast<double>(now.tv_sec) + now.tv_nsec / 1e9);
        if (left <= 0) return false;
        struct pollfd p = {STDIN_FILENO, POLLIN, 0};
        int n = poll(&p, 1, static_cast<int>(std::min(left, 1.0) * 1000) + 1);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return false;
        if (n == 0) continue;
        char buf[1024];
        ssize_t r = read(STDIN_FILENO, buf, sizeof buf);
        if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (r <= 0) {
            wipe_memory(buf, sizeof buf);
            return !line.empty();  // the last line without its newline
        }
        for (ssize_t i = 0; i < r; ++i) {
            if (buf[i] == '\n') {
                wipe_memory(buf, sizeof buf);
                return true;  // anything after it (a second line) is not the answer
            }
            // One byte over the cap is kept, so that the parser can say the
            // line was too long; the rest is read on to the newline.
            if (line.size() <= kMaxPastedLine) line += buf[i];
        }
        wipe_memory(buf, sizeof buf);
    }
}

void BrowserFlowUI::note(const std::string& line) {
    if (isatty(STDERR_FILENO)) std::fprintf(stderr, "\r%-70s\r", "");
    std::fprintf(stderr, "%s\n", line.c_str());
    std::fflush(stderr);
}

void BrowserFlowUI::done() {
    if (isatty(STDERR_FILENO)) std::fprintf(stderr, "\r%-78s\r", "");
    std::fflush(stderr);
}

// --- the flow ------------------------------------------------------------

bool build_authorization_url(const BrowserFlowParams& p, const std::string& redirect_uri, const std::string& state,
                             const std::string& challenge, std::string& url, std::string& why) {
    FormFields f = {{"client_id", p.client_id},
                    {"response_type", "code"},
                    {"redirect_uri", redirect_uri},
                    {"scope", p.scope},
                    {"state", state},
                    {"code_challenge", challenge},
                    {"code_challenge_method", pkce::kMethod}};
    if (!p.login_hint.empty()) f.push_back({"login_hint", p.login_hint});
    for (const auto& kv : p.extra_params) {
        for (const char* own : kOwnParams) {
            if (kv.first == own) {
                why = "the extra authorization parameter '" + sanitize::text(kv.first, 60) +
                      "' would replace one that mailoauth sets itself";
                return false;
            }
        }
        f.push_back(kv);
    }
    const std::string& ep = p.authorization_endpoint;
    url = ep + (ep.find('?') == std::string::npos ? "?" : "&") + form_encode(f);
    return true;
}

BrowserFlowResult run_browser_flow(HttpClient& http, const BrowserFlowParams& p, BrowserFlowUI& ui,
                                   const DeviceFlowClock& clock) {
    // The explanations' {login} is the command to run again: with the
    // flag, whether or not the caller named the account in its context.
    ErrorContext ctx = p.error_context;
    if (ctx.account.empty()) ctx.account = p.account.empty() ? std::string("ACCOUNT") : p.account;
    ctx.account += p.paste ? " --paste" : " --browser";
    if (ctx.client_id.empty()) ctx.client_id = p.client_id;

    // The endpoints come from the command line, a stored record or a
    // discovery document: check them before anything is shown or bound.
    std::string why;
    if (p.authorization_endpoint.empty() || !sanitize::clean(p.authorization_endpoint) ||
        !http.check_url(p.authorization_endpoint, p.http.allow_loopback_http, why)) {
        return fail(kExitConfig, "bad_endpoint",
                    "the authorization endpoint cannot be used" + (why.empty() ? std::string() : ": " + why) +
                        "; check --authorization-endpoint or --issuer");
    }
    if (!http.check_url(p.token_endpoint, p.http.allow_loopback_http, why)) {
        return fail(kExitConfig, "bad_endpoint",
                    "the token endpoint cannot be used: " + why + "; check --token-endpoint or --issuer");
    }

    pkce::Pkce pk;
    std::string state;
    if (!pkce::make_pkce(pk, why) || !pkce::make_state(state, why))
        return fail(kExitTempFail, "no_randomness", "cannot start the sign-in: " + why);

    // The redirect URI.  With paste, nothing listens here (the browser may
    // be on another machine); a port of 0 is still made a real free one so
    // a browser on this machine finds nothing else listening there.
    LoopbackListener listener;
    int port = p.port;
    if (!p.paste || p.port == 0) {
        BindStatus bs = listener.open(p.port, why);
        if (bs != BindStatus::Ok) {
            return fail(bs == BindStatus::Failed ? kExitTempFail : kExitConfig,
                        bs == BindStatus::InUse ? "port_in_use" : "listener", why);
        }
        port = listener.port();
        if (p.paste) listener.close();
    } else if (port < 1 || port > 65535) {
        return fail(kExitConfig, "listener",
                    "port " + std::to_string(port) + " is not a TCP port: choose one from 1024 to 65535 with --port");
    }
    const std::string redirect_uri = loopback_redirect_uri(port);

    std::string url;
    if (!build_authorization_url(p, redirect_uri, state, pk.challenge, url, why))
        return fail(kExitUsage, "usage", why);
    ui.show_url(url, p.paste);

    AuthorizationReply reply;
    ReplyKind kind;
    if (p.paste) {
        std::string line;
        bool got = ui.read_pasted(line, p.timeout_s);
        ui.done();
        if (!got) {
            wipe_string(line);
            return fail(kExitTempFail, "timeout",
                        "no address was pasted within " + format_mmss(p.timeout_s) + " minutes; nothing was saved. Run " +
                            again(p) + " again when you are ready to sign in");
        }
        bool ok = parse_pasted_redirect(line, reply, why);
        wipe_string(line);
        if (!ok) {
            return fail(kExitDataErr, "bad_paste",
                        "that is not the address the sign-in ended on: " + why + ". Nothing was saved; run " +
                            again(p) + " again and paste the whole address the browser shows after the sign-in");
        }
        kind = judge_reply(reply, state);
    } else {
        ui.open_browser(url);
        ListenerOptions lo;
        lo.account = p.account;
        ListenResult lr = listener.wait(state, static_cast<double>(p.timeout_s),
                                        [&ui](long left) { ui.waiting(left); }, lo, clock);
        ui.done();
        switch (lr.status) {
        case ListenStatus::Timeout:
            return fail(kExitTempFail, "timeout",
                        "the sign-in was not completed in the browser within " + format_mmss(p.timeout_s) +
                            " minutes; nothing was saved. Run " + again(p) + " again and finish the sign-in in time");
        case ListenStatus::Failed:
            return fail(kExitTempFail, "listener", "the sign-in stopped: " + lr.why + "; run " + again(p) + " again");
        case ListenStatus::Malformed:
            return fail(kExitNoPerm, "bad_redirect",
                        "the browser brought back an answer that could not be read (" + lr.why +
                            "); nothing was saved. Run " + again(p) + " again");
        case ListenStatus::Reply:
            break;
        }
        reply = std::move(lr.reply);
        kind = lr.kind;
    }

    switch (kind) {
    case ReplyKind::StateMismatch:
    case ReplyKind::MissingState:
        return fail(kExitNoPerm, kind == ReplyKind::StateMismatch ? "state_mismatch" : "state_missing",
                    describe_reply(kind, reply) +
                        " mailoauth stopped, as this is how a forged sign-in (cross-site request forgery) would "
                        "look; nothing was saved. Run " + again(p) +
                        " again and use only the address it prints.");
    case ReplyKind::MissingCode:
        return fail(kExitNoPerm, "no_code",
                    describe_reply(kind, reply) + " Nothing was saved; run " + again(p) + " again.");
    case ReplyKind::ProviderError: {
        OAuthError oe;
        oe.error = reply.error;
        oe.error_description = reply.error_description;
        oe.error_codes = aadsts_codes(reply.error_description);
        Explanation ex = explain_oauth_error(oe, ctx);
        return fail(ex.exit_code, ex.error, "the sign-in in the browser did not complete: " + ex.message);
    }
    case ReplyKind::Code:
        break;
    }

    // The code, with the verifier only this process knows, for tokens.
    FormFields f = {{"grant_type", "authorization_code"},
                    {"client_id", p.client_id},
                    {"code", reply.code.reveal()},
                    {"redirect_uri", redirect_uri},
                    {"code_verifier", pk.verifier.reveal()}};
    if (!p.client_secret.empty()) f.push_back({"client_secret", p.client_secret.reveal()});
    std::string body = form_encode(f);
    wipe_fields(f);
    reply.code.clear();
    pk.verifier.clear();
    HttpResult res = http.post_form(p.token_endpoint, body, p.http);
    wipe_string(body);
    if (!res.ok()) {
        int code = (res.failure == HttpFailure::Tls || res.failure == HttpFailure::Policy) ? kExitConfig
                                                                                          : kExitTempFail;
        return fail(code, "network",
                    "the sign-in was received, but the token request failed: " + res.error + ". Run " + again(p) +
                        " again (the sign-in's code can be used only once)");
    }
    const HttpResponse& r = res.response;
    if (r.status != 200) {
        Explanation ex = explain_error_reply(r.status, r.body, ctx);
        OAuthError oe;
        if (parse_error_response(r.body, oe) && code_rejected(oe)) {
            ex.exit_code = kExitNoPerm;
            ex.message = "The identity provider did not accept the sign-in's authorization code (it may have "
                         "expired or been used already). Nothing was saved; run " + again(p) + " again.";
            std::string codes;
            for (std::size_t i = 0; i < oe.error_codes.size() && i < 4; ++i)
                codes += (i == 0 ? "AADSTS" : ", AADSTS") + std::to_string(oe.error_codes[i]);
            if (!codes.empty()) ex.message += " (" + codes + ")";
            if (oe.error_codes.empty() && !oe.error_description.empty())
                ex.message += " The identity provider says: \"" + sanitize::text(oe.error_description, 300) + "\"";
            if (!oe.trace_id.empty()) ex.message += " trace_id: " + oe.trace_id;
            if (!oe.correlation_id.empty()) ex.message += " correlation_id: " + oe.correlation_id;
        }
        return fail(ex.exit_code, ex.error, ex.message);
    }
    BrowserFlowResult ok;
    std::string perr;
    if (!parse_token_response(r.body, ok.tokens, perr)) {
        return fail(kExitTempFail, "bad_response",
                    "the identity provider's token response could not be used (" + perr + "); run " + again(p) +
                        " again");
    }
    if (ok.tokens.refresh_token.empty()) {
        return fail(kExitConfig, "no_refresh_token",
                    "signed in, but the identity provider returned no refresh token, so the sign-in could not "
                    "be kept. For Microsoft include 'offline_access' in the scopes; for Google the request needs "
                    "access_type=offline");
    }
    return ok;
}

}  // namespace mailoauth
