#include "tokenhelper/doctor.h"
#include "tokenhelper/provider.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "common/fd.h"
#include "common/msgio.h"
#include "common/protocol.h"
#include "common/sanitize.h"
#include "common/sasl_modules.h"
#include "common/secret.h"
#include "tokenhelper/agent.h"
#include "tokenhelper/app_account.h"
#include "tokenhelper/app_errors.h"
#include "tokenhelper/errors.h"
#include "tokenhelper/peercred.h"
#include "tokenhelper/timefmt.h"
#include "tokenhelper/tokens.h"

#ifndef MAILOAUTH_SASLPLUGINDIR
#define MAILOAUTH_SASLPLUGINDIR "/usr/lib/sasl2"
#endif

namespace mailoauth::doctor {

namespace {

Finding ok(std::string text) { return {Level::Ok, std::move(text), false}; }
Finding note(std::string text) { return {Level::Note, std::move(text), false}; }
Finding problem(std::string text, bool relogin = false) { return {Level::Problem, std::move(text), relogin}; }

// "FILE:LINE" of a configuration entry, for "fix it there".
std::string where(const config::Config& cfg, const config::Entry& e) {
    return cfg.path + ":" + std::to_string(e.line);
}


std::vector<Finding> check_config(const GlobalOptions& opts, Environment& env, bool& usable) {
    std::vector<Finding> out;
    std::string err;
    usable = load_environment(opts, env, err);
    if (!usable) {
        out.push_back(problem("configuration: " + err + "; fix that line (mailoauth.conf(5))"));
        return out;
    }
    if (::access(env.cfg.path.c_str(), F_OK) == 0)
        out.push_back(ok("configuration: " + env.cfg.path));
    else
        out.push_back(ok("configuration: no file at " + env.cfg.path + ", built-in defaults"));
    return out;
}

std::vector<Finding> check_store(const Environment& env, const std::string& account) {
    std::vector<Finding> out;
    Store store(env.store_dir);
    std::string err;
    if (!store.open(false, err)) {
        if (::access(env.store_dir.c_str(), F_OK) != 0 && errno == ENOENT) {
            if (!account.empty())
                out.push_back(problem(account + ": not signed in (no store at " + env.store_dir +
                                          "); run: mailoauth login " + account + " --client-id ID",
                                      true));
            else
                out.push_back(note("store: " + env.store_dir +
                                   " does not exist yet; sign in with: mailoauth login ACCOUNT --client-id ID"));
            return out;
        }
        out.push_back(problem("store: " + err));
        return out;
    }
    std::vector<std::string> accounts;
    if (!account.empty()) {
        accounts.push_back(account);
    } else {
        accounts = store.list(err);
        if (!err.empty()) {
            out.push_back(problem("store: " + err));
            return out;
        }
    }
    if (accounts.empty()) {
        out.push_back(note("store: " + store.dir() +
                           " holds no accounts yet; sign in with: mailoauth login ACCOUNT --client-id ID"));
        return out;
    }
    out.push_back(ok("store: " + store.dir() + " (private to you; " + std::to_string(accounts.size()) +
                     (accounts.size() == 1 ? " account)" : " accounts)")));
    const std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
    for (const std::string& a : accounts) {
        AccountRecord r;
        LoadStatus st = store.load(a, r, err);
        if (st == LoadStatus::NotFound) {
            out.push_back(problem(a + ": not signed in; run: mailoauth login " + a + " --client-id ID", true));
            continue;
        }
        if (st != LoadStatus::Ok) {
            out.push_back(problem(a + ": " + err));
            continue;
        }
        std::vector<Finding> f = check_record(r, env.refresh_margin(a), now);
        out.insert(out.end(), f.begin(), f.end());
        // Asked about one app-only account: what Exchange needs, and what
        // the mail server's refusals mean (the plugin cannot see them).
        if (!account.empty() && is_app_only(r)) {
            f = app_account_advice(r);
            out.insert(out.end(), f.begin(), f.end());
        }
    }
    return out;
}

// libsasl2 uses SASL_PATH when it is set, else the directory it was built
// with, which is where `make install` put the plugin.
std::string plugin_dirs() {
    const char* p = std::getenv("SASL_PATH");
    return p && *p ? p : MAILOAUTH_SASLPLUGINDIR;
}

bool executable_file(const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// What the plugin runs when no agent is configured, decided as the plugin
// decides it.
std::vector<Finding> check_helper(const Environment& env) {
    std::vector<Finding> out;
    config::HelperChoice h = config::plugin_helper(env.cfg);
    if (!h.error.empty())
        out.push_back(problem("plugin helper: " + h.error + "; the plugin refuses it"));
    else if (!executable_file(h.path))
        out.push_back(problem("plugin helper: " + h.origin + ", " + h.path +
                              ", is not an executable file; the plugin cannot get tokens until it is "
                              "(or set agent_socket to use the agent)"));
    else
        out.push_back(ok("plugin helper: " + h.path + " (" + h.origin + ")"));
    return out;
}

// Asks the agent for account's token, as the plugin would, and reports the
// answer without the token.
Finding ask_agent(const agent::SocketName& name, const std::string& account, bool& unreachable) {
    unreachable = false;
    // Non-blocking, as the plugin's: a Unix-socket connect to a full
    // backlog fails with EAGAIN instead of waiting; msgio bounds the rest.
    Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (fd.get() < 0) return problem(std::string("agent: socket: ") + std::strerror(errno));
    if (::connect(fd.get(), reinterpret_cast<const struct sockaddr*>(&name.addr), name.len) != 0) {
        if (errno == EAGAIN)
            return problem("agent on " + name.spec + ": too busy to take a connection; try again");
        unreachable = true;
        return problem("agent: nothing listens on " + name.spec + " (" + std::strerror(errno) +
                       "); the plugin's logins wait and fail until it runs: "
                       "systemctl start mailoauth-agent, or mailoauth agent");
    }
    agent::Caller peer;
    std::string err;
    if (!agent::peer_caller(fd.get(), peer, err)) return problem("agent: " + name.spec + ": " + err);
    const std::string who = "agent on " + name.spec + " (" + agent::describe(peer) + ", pid " +
                            std::to_string(peer.pid) + ")";
    if (account.empty()) return ok(who + " is listening");

    protocol::Request question;
    question.account = account;
    question.protocol = "smtp";
    protocol::Message req;
    if (!protocol::build_request(question, req)) return problem(account + ": cannot be sent to the agent");
    std::string out = protocol::serialize(req);
    const long long deadline = msgio::now_ms() + 10000;
    int e = 0;
    if (msgio::send_all(fd.get(), out, deadline, e) != msgio::Io::Ok)
        return problem(who + " did not take a request for " + account);
    ::shutdown(fd.get(), SHUT_WR);
    std::string in;
    msgio::Io io = msgio::read_message(fd.get(), in, deadline, e);
    protocol::Message reply;
    protocol::ParseResult pr = protocol::parse(in, reply);
    // The reply may hold a token: wipe it, keep only what can be shown.
    wipe_string(in);
    if (io == msgio::Io::TimedOut) return problem(who + " did not answer for " + account + " within 10 s");
    if (!pr.ok) return problem(who + " sent a reply that is not helper protocol v1");
    if (reply.has("access_token")) {
        std::string until = format_utc(std::atoll(reply.get_or("expires_at", "0").c_str()));
        return ok(account + ": the " + who + " serves its token to you (valid until " + until + ")");
    }
    int status = -1;
    protocol::reply_status(reply, status);
    // The agent's socket may be held by another program: print its words
    // only sanitized (common/sanitize.h).
    std::string desc = sanitize::text(reply.get_or("error_description", reply.get_or("error", "no token")));
    return problem(account + ": the " + who + " answers: " + desc, status == protocol::kStatusNoPerm);
}

std::vector<Finding> check_agent(const Environment& env, const std::string& account) {
    std::vector<Finding> out;
    const config::Entry* e = env.cfg.lookup("", "agent_socket");
    if (!e) {
        out.push_back(ok("agent: none configured (no agent_socket); the plugin runs the helper"));
        return out;
    }
    agent::SocketName name;
    std::string err;
    if (!agent::parse_socket_name(e->value, name, err)) {
        out.push_back(problem("agent_socket in " + where(env.cfg, *e) + ": " + err));
        return out;
    }
    // The accounts the plugin will ask for: the one named, else those
    // mailoauth.conf has sections for (allow_users lives there).
    std::vector<std::string> accounts;
    if (!account.empty()) accounts.push_back(account);
    else
        for (const auto& s : env.cfg.accounts) accounts.push_back(s.first);
    if (accounts.empty()) accounts.push_back("");
    for (const std::string& a : accounts) {
        bool unreachable = false;
        out.push_back(ask_agent(name, a, unreachable));
        if (unreachable) break;  // once is enough to say so
    }
    return out;
}

void print(const Finding& f) {
    const char* tag = f.level == Level::Ok ? "ok     " : f.level == Level::Note ? "note   " : "PROBLEM";
    std::printf("%s  %s\n", tag, f.text.c_str());
}

}  // namespace

std::vector<Finding> check_app_record(const AccountRecord& r, long refresh_margin, std::int64_t now) {
    std::vector<Finding> out;
    const std::string& a = r.account;
    const AppCredentialInfo cred = describe_app_credential(r, now);
    std::string what = a + ": app-only (client credentials) for the mailbox " + r.user + ", credential: " +
                       cred.source;
    if (cred.have_certificate)
        what += ", thumbprint " + cred.certificate.sha1_hex + ", valid until " +
                format_utc(cred.certificate.not_after);
    if (!cred.problem.empty()) {
        // A credential-from path names $CREDENTIALS_DIRECTORY, which only
        // the agent's unit sets: here it may well be unset.
        const bool elsewhere = r.credential_from.find("CREDENTIALS_DIRECTORY") != std::string::npos &&
                               std::getenv("CREDENTIALS_DIRECTORY") == nullptr;
        if (elsewhere)
            out.push_back(note(what + "; it is read where $CREDENTIALS_DIRECTORY is set (the agent's "
                                      "LoadCredential=), not here"));
        else
            out.push_back(problem(what + ": " + cred.problem));
    } else if (cred.expired) {
        out.push_back(problem(what + ": " + cred.warning));
    } else if (!cred.warning.empty()) {
        out.push_back(note(what + ": " + cred.warning));
    } else {
        out.push_back(ok(what));
    }
    if (!r.last_error.empty()) {
        out.push_back(problem(a + ": the last token request failed " + format_interval(r.last_error_at - now) +
                              ": " + sanitize::text(r.last_error, 1000) + " (to retry: mailoauth token " + a +
                              " >/dev/null)"));
        return out;
    }
    if (!r.ca_file.empty() && ::access(r.ca_file.c_str(), R_OK) != 0) {
        out.push_back(problem(a + ": its CA file " + r.ca_file + " cannot be read (" + std::strerror(errno) +
                              "); token requests will fail: restore it, or run login --app again with another "
                              "--ca-file"));
        return out;
    }
    out.push_back(ok(a + ": " +
                     (!r.access_token.empty() && access_token_fresh(r, now, refresh_margin)
                          ? "access token valid until " + format_utc(r.access_expires_at)
                          : std::string("access token due (fetched with the app's credential at the next use)"))));
    return out;
}

std::vector<Finding> app_account_advice(const AccountRecord& r) {
    std::vector<Finding> out;
    out.push_back(note(r.account + ": if the mail server refuses the token, these Exchange steps are the ones "
                                   "most often missing:"));
    for (const std::string& step : exchange_steps_often_missing(r.client_id, r.user))
        out.push_back(note("  " + step));
    out.push_back(note(r.account + ": what the mail server's replies mean for an app-only account:"));
    for (const ServerReplyCause& c : server_reply_table())
        out.push_back(note(std::string("  \"") + c.reply + "\": " + c.cause));
    return out;
}

std::vector<Finding> check_record(const AccountRecord& r, long refresh_margin, std::int64_t now) {
    std::vector<Finding> out;
    const std::string& a = r.account;
    if (is_app_only(r)) return check_app_record(r, refresh_margin, now);
    if (r.refresh_token.empty()) {
        out.push_back(problem(a + ": no refresh token stored; run: mailoauth login " + a, true));
        return out;
    }
    const std::int64_t age = r.refresh_obtained_at > 0 ? now - r.refresh_obtained_at : 0;
    // The provider's refresh-token lifetime (Microsoft: 90 days unused);
    // none known (Google, OIDC): no age warnings.
    const Provider* provider = find_provider(r.provider);
    if (provider == nullptr) {
        out.push_back(problem(a + ": the record names the unknown provider '" + sanitize::text(r.provider, 64) +
                              "' (written by a newer mailoauth?); sign in again: mailoauth login " + a));
        return out;
    }
    const std::int64_t lifetime = provider->refresh_lifetime.seconds;
    const std::int64_t warn_age = lifetime - (kRefreshTokenLifetime - kRefreshTokenWarnAge);
    if (lifetime > 0 && age >= lifetime) {
        out.push_back(problem(a + ": the refresh token was last renewed " + format_interval(-age) + "; " +
                                  provider->refresh_lifetime.note + " Run: mailoauth login " + a,
                              true));
        return out;
    }
    if (!r.last_error.empty() && r.last_error_at >= r.refresh_obtained_at) {
        // The explanations of errors (errors.cc) name `mailoauth login`
        // exactly when only a new sign-in helps.
        bool relogin = r.last_error.find("mailoauth login") != std::string::npos;
        out.push_back(problem(a + ": the last refresh failed " + format_interval(r.last_error_at - now) + ": " +
                                  sanitize::text(r.last_error, 1000) +
                                  (relogin ? "" : " (to retry: mailoauth token " + a + " >/dev/null)"),
                              relogin));
        return out;
    }
    std::string access = !r.access_token.empty() && access_token_fresh(r, now, refresh_margin)
                             ? "access token valid until " + format_utc(r.access_expires_at)
                             : "access token due for refresh (done at the next use)";
    if (lifetime > 0 && age >= warn_age) {
        out.push_back(note(a + ": " + access + "; the refresh token was last renewed " + format_interval(-age) +
                           " and expires unused " + std::to_string(lifetime / 86400) +
                           " days after that: use the account, or run "
                           "mailoauth token " + a + " >/dev/null"));
        return out;
    }
    if (!r.ca_file.empty() && ::access(r.ca_file.c_str(), R_OK) != 0) {
        out.push_back(problem(a + ": its CA file " + r.ca_file + " cannot be read (" + std::strerror(errno) +
                              "); refreshes will fail: restore it, or sign in again with another --ca-file"));
        return out;
    }
    out.push_back(ok(a + ": " + access + "; refresh token renewed " + format_interval(-age)));
    return out;
}

std::vector<Finding> check_plugin_dirs(const std::string& dirs) {
    std::vector<Finding> out;
    sasl_modules::Found found = sasl_modules::scan(dirs);
    for (const std::string& ours : found.ours)
        out.push_back(ok("SASL plugin: " + ours + " (Postfix, mbsync and imtest get XOAUTH2 and OAUTHBEARER from it)"));
    // The same rule as the plugin's own warning at init.
    for (const std::string& rival : found.rivals)
        out.push_back(problem("SASL plugin: " + rival +
                              " also provides XOAUTH2; libsasl2 uses whichever module it loads last, "
                              "so programs may not get mailoauth's: remove one of them"));
    if (found.ours.empty())
        out.push_back(note("SASL plugin: no libmailoauth.so in " + dirs +
                           "; Postfix, mbsync and imtest need it (Debian: libsasl2-modules-mailoauth); "
                           "mutt, msmtp and getmail use mailoauth token and do not"));
    return out;
}

int run(const GlobalOptions& opts, const std::string& account) {
    std::vector<Finding> all;
    Environment env;
    bool usable = false;
    auto add = [&all](std::vector<Finding> f) {
        for (Finding& x : f) {
            print(x);
            all.push_back(std::move(x));
        }
        std::fflush(stdout);
    };
    add(check_config(opts, env, usable));
    if (usable) {
        add(check_store(env, account));
        std::vector<Finding> plugin = check_plugin_dirs(plugin_dirs());
        bool installed = false;
        for (const Finding& f : plugin) installed = installed || f.level == Level::Ok;
        add(std::move(plugin));
        // Where the plugin gets its tokens; without the plugin nothing
        // runs the helper, so only a configured agent is still checked.
        if (env.cfg.lookup("", "agent_socket")) add(check_agent(env, account));
        else if (installed) add(check_helper(env));
    }
    int problems = 0;
    bool only_relogin = true;
    for (const Finding& f : all) {
        if (f.level != Level::Problem) continue;
        ++problems;
        only_relogin = only_relogin && f.relogin;
    }
    if (problems == 0) {
        std::printf("No problems found.\n");
        return kExitOk;
    }
    std::printf("%d problem%s found: each line above says what to do.\n", problems, problems == 1 ? "" : "s");
    return only_relogin ? kExitNoPerm : kExitConfig;
}

}  // namespace mailoauth::doctor
