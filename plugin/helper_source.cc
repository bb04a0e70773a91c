#include "plugin/helper_source.h"

#include "common/config.h"
#include "common/protocol.h"
#include "common/sanitize.h"
#include "plugin/subprocess.h"
#include "plugin/wire.h"

#include <cstring>
#include <string.h>

extern char** environ;

namespace mailoauth::plugin {

namespace {

constexpr const char* kPath = "PATH=/usr/local/bin:/usr/bin:/bin";

bool allowed_name(std::string_view name) {
    static const char* const exact[] = {
        "HOME", "LANG", "LANGUAGE", "TZ", "XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_RUNTIME_DIR", nullptr,
    };
    for (const char* const* e = exact; *e; ++e)
        if (name == *e) return true;
    return name.substr(0, 3) == "LC_" || name.substr(0, 10) == "MAILOAUTH_";
}

std::string signal_name(int sig) {
    const char* abbrev = sigabbrev_np(sig);
    return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

}  // namespace

bool HelperSource::decide_status(const RunResult& run, const protocol::Message* answer, int& code) {
    // The exit status, when we have it, is the helper's last word: a reply
    // may have been written before something failed (it cannot be taken
    // back), and an older helper sends no "status" at all.  The reply's
    // status stands in only when the exit status was lost.
    if (run.end == RunResult::End::Exited) {
        code = run.exit_code;
        return true;
    }
    if (answer == nullptr) return false;
    if (protocol::reply_status(*answer, code)) return true;
    // An older helper: no status key.  A token means it succeeded.
    if (answer->has("access_token")) {
        code = 0;
        return true;
    }
    return false;
}

HelperSource::HelperSource(std::string path, long timeout_s, std::string store, std::string config_hint)
    : path_(std::move(path)), timeout_s_(timeout_s), store_(std::move(store)),
      config_hint_(std::move(config_hint)) {}

std::vector<std::string> HelperSource::clean_environment(const std::string& store, bool secure) {
    std::vector<std::string> env;
    bool have_store = false;
    // In a setuid or setgid program the caller's environment is the
    // caller's, not the program's: HOME, XDG_* or MAILOAUTH_* would point
    // the helper, run with the program's privileges, at files of the
    // caller's choosing.  Then only the configured store and PATH.
    for (char** e = secure ? nullptr : environ; e && *e; ++e) {
        std::string_view kv(*e);
        std::size_t eq = kv.find('=');
        if (eq == std::string_view::npos || eq == 0) continue;
        std::string_view name = kv.substr(0, eq);
        if (!allowed_name(name)) continue;
        if (name == "MAILOAUTH_STORE") have_store = true;
        env.emplace_back(kv);
    }
    env.emplace_back(kPath);
    if (!have_store && !store.empty()) env.push_back("MAILOAUTH_STORE=" + store);
    return env;
}

void HelperSource::fetch(const TokenRequest& req, TokenReply& reply) {
    reply = TokenReply();
    const std::string who = "the token helper " + path_;

    protocol::Message msg;
    if (!protocol::build_request(req, msg)) {
        reply.message = "the account, service or host name contains characters that cannot be sent "
                        "to the token helper";
        return;
    }

    RunOptions opts;
    opts.path = path_;
    opts.argv = {path_, "get"};
    opts.env = clean_environment(store_, config::secure_execution());
    opts.input = protocol::serialize(msg);
    opts.max_output = protocol::kMaxMessage;
    opts.timeout_ms = timeout_s_ * 1000;
    RunResult run_result;
    run(opts, run_result);

    switch (run_result.end) {
    case RunResult::End::SpawnFailed:
        reply.message = "cannot run " + who + ": " + std::strerror(run_result.error) +
                        "; install mailoauth, or set 'helper' in " + config_hint_ +
                        " (inside a chroot the helper must exist there too)";
        return;
    case RunResult::End::TimedOut:
        reply.status = TokenStatus::TryAgain;
        reply.message = who + " did not answer within " + std::to_string(timeout_s_) +
                        " s and was stopped; check that the identity provider can be reached "
                        "(run 'mailoauth status " + sanitize::text(req.account, 200) + "')";
        return;
    case RunResult::End::TooMuchOutput:
        reply.message = who + " printed more than " + std::to_string(protocol::kMaxMessage / 1024) +
                        " KiB and was stopped; is 'helper' in " + config_hint_ + " really mailoauth?";
        return;
    case RunResult::End::Signaled:
        reply.message = who + " was killed by " + signal_name(run_result.signal);
        return;
    case RunResult::End::StatusLost:
    case RunResult::End::Exited:
        break;
    }

    protocol::Message answer;
    protocol::ParseResult pr = protocol::parse(run_result.output, answer);
    int code = 0;
    if (!decide_status(run_result, pr.ok ? &answer : nullptr, code) && pr.ok && !run_result.output.empty()) {
        // The program hosting us reaps children itself (SIGCHLD ignored or
        // a handler calling wait) and the reply does not say either.  (An
        // empty or malformed reply is named as such below.)
        const std::string says = peer_says(answer);
        reply.message = "the exit status of " + who + " was lost (this program reaps its children) and its " +
                        "reply carries no status" + (says.empty() ? std::string() : ": " + says);
        return;
    }
    if (!accept_status(who, static_cast<unsigned long long>(code), "exit status",
                       pr.ok ? peer_says(answer) : std::string(), reply))
        return;

    if (run_result.output.empty()) {
        reply.message = who + " printed no reply";
        return;
    }
    if (!pr.ok) {
        reply.message = who + " printed a malformed reply (line " + std::to_string(pr.line) + ": " +
                        sanitize::text(pr.error, 100) + ")";
        return;
    }
    read_token_reply(who, answer, reply);
}

}  // namespace mailoauth::plugin
