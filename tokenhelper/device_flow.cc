#include "tokenhelper/device_flow.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <unistd.h>

#include "common/secret.h"
#include "tokenhelper/errors.h"
#include "tokenhelper/form.h"
#include "tokenhelper/provider.h"
#include "tokenhelper/timefmt.h"

namespace mailoauth {

namespace {

constexpr long kSlowDownStep = 5;     // RFC 8628 section 3.5
constexpr long kMaxBackoff = 60;

DeviceFlowResult fail(int code, std::string error, std::string message) {
    DeviceFlowResult r;
    r.exit_code = code;
    r.error = std::move(error);
    r.message = std::move(message);
    return r;
}

DeviceFlowResult from_oauth_error(const HttpResponse& resp, const DeviceFlowParams& p) {
    const Provider& provider = p.provider != nullptr ? *p.provider : default_provider();
    Explanation ex = explain_error_reply(resp.status, resp.body,
                                         ErrorContext{p.account, p.authority, p.client_id, &provider});
    OAuthError oe;
    if (provider.device_flow_blocked != nullptr && parse_error_response(resp.body, oe) &&
        provider.device_flow_blocked(oe)) {
        // A tenant policy ("Block device code flow") refuses this grant,
        // not the person: the browser sign-in may well be allowed.
        return fail(kExitConfig, "device_code_blocked",
                    "your organisation blocks sign-in with a device code (Conditional Access). Sign in "
                    "with a browser instead:\n  " + p.browser_command + "\n" + ex.message);
    }
    return fail(ex.exit_code, ex.error, ex.message);
}

// The form of a request: fields plus the client secret when there is one.
std::string client_form(FormFields fields, const DeviceFlowParams& p) {
    fields.emplace_back("client_id", p.client_id);
    if (!p.client_secret.empty()) fields.emplace_back("client_secret", p.client_secret.reveal());
    std::string body = form_encode(fields);
    for (auto& f : fields) wipe_string(f.second);
    return body;
}

}  // namespace

void DeviceFlowUI::show_code(const DeviceCodeResponse& dc) {
    std::fprintf(stderr, "\n");
    if (!dc.message.empty()) std::fprintf(stderr, "%s\n\n", dc.message.c_str());
    std::fprintf(stderr, "    Open:        %s\n", dc.verification_uri.c_str());
    std::fprintf(stderr, "    Enter code:  %s\n\n", dc.user_code.c_str());
    std::fflush(stderr);
}

void DeviceFlowUI::waiting(long seconds_left, long interval) {
    static long last_line = -1;
    if (isatty(STDERR_FILENO)) {
        std::fprintf(stderr, "\rWaiting for you to sign in: %s left (checking every %ld s)   ",
                     format_mmss(seconds_left).c_str(), interval);
        std::fflush(stderr);
    } else if (last_line < 0 || last_line - seconds_left >= 60) {
        // Not a terminal (a log, a script): one line a minute, no \r noise.
        last_line = seconds_left;
        std::fprintf(stderr, "Waiting for you to sign in: %s left\n", format_mmss(seconds_left).c_str());
        std::fflush(stderr);
    }
}

void DeviceFlowUI::note(const std::string& line) {
    if (isatty(STDERR_FILENO)) std::fprintf(stderr, "\r%-70s\r", "");
    std::fprintf(stderr, "%s\n", line.c_str());
    std::fflush(stderr);
}

void DeviceFlowUI::done() {
    if (isatty(STDERR_FILENO)) std::fprintf(stderr, "\r%-78s\r", "");
    std::fflush(stderr);
}

DeviceFlowClock DeviceFlowClock::real() {
    DeviceFlowClock c;
    c.now = [] {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return static_cast<double>(ts.tv_sec) + ts.tv_nsec / 1e9;
    };
    c.sleep = [](double s) {
        if (s <= 0) return;
        struct timespec ts;
        ts.tv_sec = static_cast<time_t>(s);
        ts.tv_nsec = static_cast<long>((s - static_cast<double>(ts.tv_sec)) * 1e9);
        while (nanosleep(&ts, &ts) != 0) {}
    };
    return c;
}

DeviceFlowResult run_device_flow(HttpClient& http, const DeviceFlowParams& p, DeviceFlowUI& ui,
                                 const DeviceFlowClock& clock) {
    std::string body = client_form({{"scope", p.scope}}, p);
    HttpResult res = http.post_form(p.device_endpoint, body, p.http);
    wipe_string(body);
    if (!res.ok()) {
        int code = (res.failure == HttpFailure::Tls || res.failure == HttpFailure::Policy)
                       ? kExitConfig : kExitTempFail;
        return fail(code, "network", "could not start the sign-in: " + res.error);
    }
    if (res.response.status != 200) return from_oauth_error(res.response, p);
    DeviceCodeResponse dc;
    std::string perr;
    if (!parse_device_code_response(res.response.body, dc, perr))
        return fail(kExitTempFail, "bad_response",
                    "the identity provider's device-code response could not be used (" + perr +
                        "); try again later");

    ui.show_code(dc);
    const double start = clock.now();
    const double deadline = start + static_cast<double>(dc.expires_in);
    long interval = std::max(1L, dc.interval);
    long backoff = 0;  // extra wait after transport errors
    const std::string& token_url = p.token_endpoint;

    for (;;) {
        // Wait one interval (plus any backoff), showing the countdown.
        double wake = clock.now() + static_cast<double>(interval + backoff);
        for (;;) {
            double t = clock.now();
            if (t >= deadline) {
                ui.done();
                return fail(kExitNoPerm, "expired_token",
                            "the code expired before the sign-in was finished; run 'mailoauth login " +
                                p.account + "' again and complete the sign-in within the time shown");
            }
            if (t >= wake) break;
            ui.waiting(static_cast<long>(deadline - t), interval);
            clock.sleep(std::min({1.0, wake - t, deadline - t}));
        }

        std::string poll = client_form({{"grant_type", "urn:ietf:params:oauth:grant-type:device_code"},
                                        {"device_code", dc.device_code.reveal()}},
                                       p);
        HttpResult pr = http.post_form(token_url, poll, p.http);
        wipe_string(poll);
        if (!pr.ok()) {
            if (pr.failure == HttpFailure::Tls || pr.failure == HttpFailure::Policy) {
                ui.done();
                return fail(kExitConfig, "network", "sign-in stopped: " + pr.error);
            }
            // Transport trouble: keep the code alive, but ask less often.
            backoff = std::min(kMaxBackoff, backoff == 0 ? interval : backoff * 2);
            ui.note("Network problem while waiting (" + pr.error + "); retrying in " +
                    std::to_string(interval + backoff) + " s");
            continue;
        }
        const HttpResponse& r = pr.response;
        if (r.status == 200) {
            DeviceFlowResult ok;
            if (!parse_token_response(r.body, ok.tokens, perr)) {
                ui.done();
                return fail(kExitTempFail, "bad_response",
                            "the identity provider's token response could not be used (" + perr +
                                "); run 'mailoauth login " + p.account + "' again");
            }
            if (ok.tokens.refresh_token.empty()) {
                ui.done();
                return fail(kExitConfig, "no_refresh_token",
                            "signed in, but the identity provider returned no refresh token; "
                            "include 'offline_access' in the scopes (--scope) and log in again");
            }
            ui.done();
            return ok;
        }
        OAuthError oe;
        bool parsed = parse_error_response(r.body, oe);
        if (parsed && oe.error == "authorization_pending") {
            backoff = 0;
            continue;
        }
        if (parsed && oe.error == "slow_down") {
            interval += kSlowDownStep;
            backoff = 0;
            ui.note("The identity provider asked to poll more slowly; now every " + std::to_string(interval) +
                    " s");
            continue;
        }
        bool server_trouble = r.status >= 500 || r.status == 429 ||
                              (parsed && (oe.error == "temporarily_unavailable" || oe.error == "server_error"));
        if (server_trouble) {
            // The provider is having a bad moment; the code stays valid.
            backoff = std::min(kMaxBackoff, backoff == 0 ? interval : backoff * 2);
            ui.note("The identity provider answered HTTP " + std::to_string(r.status) + "; retrying in " +
                    std::to_string(interval + backoff) + " s");
            continue;
        }
        ui.done();
        return from_oauth_error(r, p);
    }
}

}  // namespace mailoauth
