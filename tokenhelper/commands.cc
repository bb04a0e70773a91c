#include "tokenhelper/commands.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <poll.h>
#include <unistd.h>


#include "common/protocol.h"
#include "common/sanitize.h"
#include "common/secret.h"
#include "tokenhelper/agent.h"
#include "tokenhelper/connect.h"
#include "tokenhelper/device_flow.h"
#include "tokenhelper/doctor.h"
#include "tokenhelper/errors.h"
#include "tokenhelper/http.h"
#include "tokenhelper/settings.h"
#include "tokenhelper/store.h"
#include "tokenhelper/timefmt.h"
#include "tokenhelper/tokens.h"

#ifndef MAILOAUTH_VERSION
#define MAILOAUTH_VERSION "0"
#endif

namespace mailoauth {

namespace {

// One table for the options and their help text.
struct OptionSpec {
    const char* name;      // without the leading "--"
    const char* arg;       // nullptr for a flag
    const char* verbs;     // "*" for global, else space separated verbs
    const char* help;
};

const OptionSpec kOptions[] = {
    {"store", "DIR", "*", "token store directory (default: $MAILOAUTH_STORE, else $XDG_STATE_HOME/mailoauth)"},
    {"config", "FILE", "*", "configuration file (default: $MAILOAUTH_CONFIG, else " MAILOAUTH_SYSCONFDIR "/mailoauth.conf)"},
    {"http-timeout", "SEC", "*", "time limit for each request to the identity provider (default 30)"},
    {"refresh-margin", "SEC", "*", "refresh tokens that expire within SEC seconds (default 600)"},
    {"tenant", "TENANT", "login", "directory (tenant): organizations (default), common, consumers, a GUID or a domain"},
    {"client-id", "ID", "login", "application (client) ID of your app registration (required)"},
    {"authority", "URL", "login", "identity provider base URL (default https://login.microsoftonline.com/TENANT)"},
    {"ca-file", "PATH", "login connect", "trust only the CA certificates in PATH (login: the identity provider; connect: the mail server)"},
    {"scope", "SCOPE", "login", "scope to request; repeat for several (default: IMAP, POP, SMTP and offline_access)"},
    {"user", "NAME", "login", "user name to put on the wire, e.g. a shared mailbox (default: the account)"},
    {"allow-insecure-http", nullptr, "login", "allow http:// to a loopback authority (tests only)"},
    {"force-refresh", nullptr, "token", "refresh even if the current access token is still valid"},
    {"json", nullptr, "status", "machine-readable output"},
    {"protocol", "PROTO", "connect", "imap or pop3 (default: pop3 for ports 110 and 995, else imap)"},
    {"tls", "MODE", "connect", "implicit, starttls, or none for a server on this machine (default: starttls for ports 143 and 110, else implicit)"},
    {"mechanism", "MECH", "connect", "XOAUTH2 (default) or OAUTHBEARER"},
    {"timeout", "SEC", "connect", "time limit for each step before the session is handed over (default 30)"},
    {"socket", "NAME", "agent", "listen on @NAME (abstract) or /PATH (default: agent_socket, else @mailoauth-agent)"},
    {"foreground", nullptr, "agent", "do not detach; log to standard error as well as to syslog"},
    {"help", nullptr, "*", "show this help"},
    {"version", nullptr, "*", "show the version"},
};

struct VerbSpec {
    const char* name;
    const char* usage;
    const char* summary;
};

const VerbSpec kVerbs[] = {
    {"login", "login ACCOUNT --client-id ID [--tenant T]", "sign in once with a device code and store the tokens"},
    {"token", "token ACCOUNT [--force-refresh]", "print a valid access token (for msmtp, mutt, mbsync, getmail)"},
    {"get", "get", "answer one helper protocol v1 request on stdin (used by the SASL plugin)"},
    {"status", "status [ACCOUNT] [--json]", "show accounts, token expiry, refresh-token age and last error"},
    {"logout", "logout ACCOUNT", "delete the account's stored tokens"},
    {"agent", "agent [--socket NAME] [--foreground]", "serve tokens to allowed local users over a socket"},
    {"doctor", "doctor [ACCOUNT]", "check configuration, store, accounts, plugin and agent; say what to fix"},
    {"connect", "connect ACCOUNT HOST PORT", "an IMAP or POP3 session already logged in, on stdin/stdout (fetchmail plugin, mutt tunnel)"},
};

struct Parsed {
    std::string verb;
    std::vector<std::string> positional;
    std::vector<std::pair<std::string, std::string>> opts;  // name, value ("" for flags)
    bool has(const char* n) const {
        for (auto& o : opts) if (o.first == n) return true;
        return false;
    }
    std::string value(const char* n) const {
        std::string v;
        for (auto& o : opts) if (o.first == n) v = o.second;
        return v;
    }
    std::vector<std::string> values(const char* n) const {
        std::vector<std::string> v;
        for (auto& o : opts) if (o.first == n) v.push_back(o.second);
        return v;
    }
};

const OptionSpec* find_option(const std::string& name) {
    for (const auto& o : kOptions)
        if (name == o.name) return &o;
    return nullptr;
}

bool option_applies(const OptionSpec& o, const std::string& verb) {
    if (std::strcmp(o.verbs, "*") == 0) return true;
    return (" " + std::string(o.verbs) + " ").find(" " + verb + " ") != std::string::npos;
}

void print_help(FILE* out, const std::string& verb) {
    std::fprintf(out, "Usage: mailoauth [OPTIONS] VERB [ARGS]\n\n"
                      "OAuth2 access tokens for IMAP, POP and SMTP with Microsoft 365.\n\nVerbs:\n");
    for (const auto& v : kVerbs)
        if (verb.empty() || verb == v.name) std::fprintf(out, "  %-42s %s\n", v.usage, v.summary);
    std::fprintf(out, "\nOptions:\n");
    for (const auto& o : kOptions) {
        if (!verb.empty() && !option_applies(o, verb)) continue;
        std::string left = std::string("--") + o.name + (o.arg ? std::string(" ") + o.arg : "");
        std::fprintf(out, "  %-24s %s%s\n", left.c_str(), o.help,
                     std::strcmp(o.verbs, "*") == 0 ? "" : (std::string(" [") + o.verbs + "]").c_str());
    }
    std::fprintf(out, "\nExit status: 0 ok, 64 usage, 65 bad input, 75 temporary failure (try later),\n"
                      "77 sign in again (mailoauth login), 78 configuration problem.\n"
                      "See mailoauth(1) and mailoauth.conf(5).\n");
}

int usage_error(const std::string& msg) {
    std::fprintf(stderr, "mailoauth: %s\nTry 'mailoauth --help'.\n", msg.c_str());
    return kExitUsage;
}

// Returns -1 on success, else an exit code.
int parse_args(const std::vector<std::string>& args, Parsed& p) {
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a == "-h") {
            p.opts.emplace_back("help", "");
        } else if (a.size() > 2 && a.compare(0, 2, "--") == 0) {
            std::string name = a.substr(2), value;
            bool inline_value = false;
            std::size_t eq = name.find('=');
            if (eq != std::string::npos) {
                value = name.substr(eq + 1);
                name.resize(eq);
                inline_value = true;
            }
            const OptionSpec* o = find_option(name);
            if (!o) return usage_error("unknown option '--" + name + "'");
            if (o->arg) {
                if (!inline_value) {
                    if (i + 1 >= args.size()) return usage_error("option '--" + name + "' needs " + o->arg);
                    value = args[++i];
                }
            } else if (inline_value) {
                return usage_error("option '--" + name + "' takes no value");
            }
            p.opts.emplace_back(name, value);
        } else if (a == "--") {
            for (++i; i < args.size(); ++i) p.positional.push_back(args[i]);
        } else if (!a.empty() && a[0] == '-' && a != "-") {
            return usage_error("unknown option '" + a + "'");
        } else if (p.verb.empty()) {
            p.verb = a;
        } else {
            p.positional.push_back(a);
        }
    }
    for (const auto& o : p.opts) {
        const OptionSpec* spec = find_option(o.first);
        if (!p.verb.empty() && !option_applies(*spec, p.verb))
            return usage_error("option '--" + o.first + "' does not apply to '" + p.verb + "'");
    }
    return -1;
}

bool parse_seconds(const std::string& s, long min, long max, long& out) {
    if (s.empty() || s.size() > 9) return false;
    for (char c : s)
        if (c < '0' || c > '9') return false;
    out = std::stol(s);
    return out >= min && out <= max;
}

// A JSON string literal.  status --json writes its few fields by hand so
// that the program does not load jsoncpp (see http_module.h).
std::string json_quote(const std::string& v) {
    std::string o = "\"";
    for (unsigned char c : v) {
        switch (c) {
        case '"': o += "\\\""; break;
        case '\\': o += "\\\\"; break;
        case '\n': o += "\\n"; break;
        case '\r': o += "\\r"; break;
        case '\t': o += "\\t"; break;
        default:
            if (c < 0x20) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\u%04x", c);
                o += buf;
            } else {
                o += static_cast<char>(c);
            }
        }
    }
    return o + "\"";
}

// One JSON object, written in the order the fields are added.
class JsonObject {
public:
    JsonObject& str(const char* k, const std::string& v) { return raw(k, json_quote(v)); }
    JsonObject& num(const char* k, std::int64_t v) { return raw(k, std::to_string(v)); }
    JsonObject& flag(const char* k, bool v) { return raw(k, v ? "true" : "false"); }
    std::string text() const { return "  {\n" + body_ + "\n  }"; }

private:
    JsonObject& raw(const char* k, const std::string& v) {
        if (!body_.empty()) body_ += ",\n";
        body_ += "    " + json_quote(k) + ": " + v;
        return *this;
    }
    std::string body_;
};

// A message that goes into a protocol value or one log line.
std::string one_line(const std::string& s) { return sanitize::text(s, 2000); }

int fail(const std::string& msg, int code) {
    std::fprintf(stderr, "mailoauth: %s\n", msg.c_str());
    return code;
}

int cmd_login(const Parsed& p, const Environment& env, HttpClient& http) {
    if (p.positional.size() != 1) return usage_error("usage: mailoauth login ACCOUNT --client-id ID [--tenant T]");
    const std::string& account = p.positional[0];
    if (!valid_account_name(account))
        return fail("'" + account + "' is not a valid account name (letters, digits and @._+- only, "
                    "e.g. alice@example.com)", kExitUsage);
    Store store(env.store_dir);
    std::string err;
    if (!store.open(true, err)) return fail(err, kExitConfig);

    AccountRecord old;
    bool have_old = store.load(account, old, err) == LoadStatus::Ok;
    auto pick = [&](const char* opt, const std::string& stored, const char* conf_key, const std::string& dflt) {
        if (p.has(opt)) return p.value(opt);
        if (!stored.empty()) return stored;
        return env.cfg.get(account, conf_key, dflt);
    };
    std::string client_id = pick("client-id", have_old ? old.client_id : "", "client_id", "");
    if (client_id.empty())
        return fail("no client ID given; mailoauth has none built in, you use your own app registration.\n"
                    "  1. In the Microsoft Entra admin center open App registrations > New registration\n"
                    "     (any name; supported accounts as fits your tenant; no redirect URI needed).\n"
                    "  2. Under Authentication set 'Allow public client flows' to Yes.\n"
                    "  3. Under API permissions add the delegated Office 365 Exchange Online permissions\n"
                    "     IMAP.AccessAsUser.All, POP.AccessAsUser.All and SMTP.Send (and grant consent).\n"
                    "  4. Run: mailoauth login " + account + " --client-id APPLICATION-ID --tenant YOUR-TENANT\n"
                    "     (or put client_id in the [account " + account + "] section of mailoauth.conf).",
                    kExitUsage);
    std::string tenant = p.has("tenant") ? p.value("tenant") : env.cfg.get(account, "tenant", kDefaultTenant);
    std::string authority;
    if (p.has("authority")) authority = make_authority(p.value("authority"), tenant);
    else if (p.has("tenant")) authority = make_authority("", tenant);
    else if (have_old && !old.authority.empty()) authority = old.authority;
    else authority = make_authority(env.cfg.get(account, "authority", ""), tenant);
    std::string ca_file = pick("ca-file", have_old ? old.ca_file : "", "ca_file", "");
    std::string scope;
    if (p.has("scope")) {
        for (const auto& s : p.values("scope")) scope += s + " ";
    } else {
        scope = pick("scope-unused", have_old ? old.scope : "", "scope", kDefaultScope);
    }
    scope = normalize_scope(scope);
    bool insecure = p.has("allow-insecure-http") || (have_old && old.allow_insecure_http) ||
                    env.cfg.get(account, "allow_insecure_http", "no") == "yes";
    std::string why;
    if (!http.check_url(authority + "/", insecure, why))
        return fail("authority '" + authority + "' refused: " + why, kExitUsage);
    if (!ca_file.empty() && access(ca_file.c_str(), R_OK) != 0)
        return fail("cannot read the CA file '" + ca_file + "': " + std::strerror(errno), kExitConfig);

    DeviceFlowParams dp;
    dp.authority = authority;
    dp.client_id = client_id;
    dp.scope = scope;
    dp.account = account;
    dp.http = http_options(env, ca_file, insecure);
    std::fprintf(stderr, "Signing in %s at %s\n", account.c_str(), authority.c_str());
    DeviceFlowUI ui;
    DeviceFlowResult r = run_device_flow(http, dp, ui);
    if (r.exit_code != 0) return fail(r.message, r.exit_code);

    AccountRecord rec;
    rec.account = account;
    std::string user = p.has("user") ? p.value("user")
                                     : (have_old && !old.user.empty()) ? old.user
                                                                       : env.cfg.get(account, "user", "");
    if (user.empty()) user = !r.tokens.id_token_username.empty() ? r.tokens.id_token_username : account;
    rec.user = user;
    rec.authority = authority;
    rec.client_id = client_id;
    rec.scope = scope;
    rec.ca_file = ca_file;
    rec.allow_insecure_http = insecure;
    rec.refresh_token = r.tokens.refresh_token;
    rec.access_token = r.tokens.access_token;
    std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
    rec.access_expires_at = now + r.tokens.expires_in;
    rec.access_lifetime = r.tokens.expires_in;
    rec.refresh_obtained_at = now;
    rec.created_at = have_old && old.created_at > 0 ? old.created_at : now;
    Store::Lock lock;
    if (!store.lock(account, 30000, lock, err)) return fail(err, kExitTempFail);
    if (!store.save(rec, err)) return fail("signed in, but " + err, kExitTempFail);
    std::fprintf(stderr,
                 "Signed in. Tokens for %s are saved in %s.\n"
                 "The access token is valid until %s and is refreshed automatically.\n"
                 "Mail programs can now use: mailoauth token %s\n",
                 account.c_str(), store.path_of(account).c_str(), format_utc(rec.access_expires_at).c_str(),
                 account.c_str());
    return kExitOk;
}

int cmd_token(const Parsed& p, const Environment& env, HttpClient& http) {
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
int reply_error(const std::string& error, const std::string& description, int code) {
    protocol::Message m;
    protocol::build_error_reply(m, error, one_line(description), code);
    std::fprintf(stderr, "mailoauth: %s\n", description.c_str());
    return reply(m, code);
}

int cmd_get(const Parsed& p, const Environment& env, HttpClient& http) {
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
    if (!store.open(false, err))
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

// A stored time for status: "2026-11-23 17:00:00 UTC (in 59 min)", or
// "at an unknown time" when the record holds none (0: written by an older
// version or by hand), rather than the epoch and its age.
std::string when(std::int64_t t, std::int64_t now) {
    if (t <= 0) return "at an unknown time";
    return format_utc(t) + " (" + format_interval(t - now) + ")";
}

int cmd_status(const Parsed& p, const Environment& env) {
    if (p.positional.size() > 1) return usage_error("usage: mailoauth status [ACCOUNT] [--json]");
    Store store(env.store_dir);
    std::string err;
    std::vector<std::string> accounts;
    bool json = p.has("json");
    if (!store.open(false, err)) {
        if (access(env.store_dir.c_str(), F_OK) != 0 && errno == ENOENT) {
            if (json) std::printf("[]\n");
            else std::printf("No accounts (store %s does not exist yet). Sign in with: mailoauth login ACCOUNT --client-id ID\n",
                             env.store_dir.c_str());
            return p.positional.empty() ? kExitOk : kExitNoPerm;
        }
        return fail(err, kExitConfig);
    }
    if (!p.positional.empty()) accounts.push_back(p.positional[0]);
    else accounts = store.list(err);
    std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
    std::vector<std::string> arr;
    int rc = kExitOk;
    if (accounts.empty() && !json) std::printf("No accounts in %s.\n", store.dir().c_str());
    for (const auto& a : accounts) {
        AccountRecord r;
        LoadStatus st = store.load(a, r, err);
        if (st != LoadStatus::Ok) {
            std::string msg = st == LoadStatus::NotFound ? "not signed in (run: mailoauth login " + a + ")" : err;
            rc = st == LoadStatus::NotFound ? kExitNoPerm : kExitConfig;
            if (json) {
                arr.push_back(JsonObject().str("account", a).str("error", msg).text());
            } else {
                std::printf("%s\n  %s\n", a.c_str(), msg.c_str());
            }
            continue;
        }
        long margin = env.refresh_margin(a);
        if (json) {
            arr.push_back(JsonObject()
                              .str("account", r.account)
                              .str("user", r.user)
                              .str("authority", r.authority)
                              .str("client_id", r.client_id)
                              .str("scope", r.scope)
                              .num("access_token_expires_at", r.access_expires_at)
                              .flag("access_token_valid", access_token_fresh(r, now, margin))
                              .num("refresh_token_obtained_at", r.refresh_obtained_at)
                              .num("refresh_token_age_seconds",
                                   r.refresh_obtained_at > 0 ? now - r.refresh_obtained_at : 0)
                              .num("created_at", r.created_at)
                              .str("last_error", sanitize::text(r.last_error, 1000))
                              .num("last_error_at", r.last_error_at)
                              .text());
        } else {
            std::printf("%s\n", r.account.c_str());
            std::printf("  user:           %s\n", r.user.c_str());
            std::printf("  authority:      %s\n", r.authority.c_str());
            std::printf("  client id:      %s\n", r.client_id.c_str());
            if (r.access_token.empty() || r.access_expires_at <= 0)
                std::printf("  access token:   none yet (one is fetched at the next use)\n");
            else
                std::printf("  access token:   %s %s\n",
                            access_token_fresh(r, now, margin) ? "valid until" : "expired or due for refresh at",
                            when(r.access_expires_at, now).c_str());
            std::printf("  refresh token:  obtained %s\n", when(r.refresh_obtained_at, now).c_str());
            if (r.last_error.empty()) std::printf("  last error:     none\n");
            else std::printf("  last error:     %s: %s\n", format_utc(r.last_error_at).c_str(),
                             sanitize::text(r.last_error, 1000).c_str());
        }
    }
    if (json) {
        std::string out = "[";
        for (std::size_t i = 0; i < arr.size(); ++i) out += (i ? ",\n" : "\n") + arr[i];
        std::printf("%s%s]\n", out.c_str(), arr.empty() ? "" : "\n");
    }
    return rc;
}

int cmd_logout(const Parsed& p, const Environment& env) {
    if (p.positional.size() != 1) return usage_error("usage: mailoauth logout ACCOUNT");
    const std::string& account = p.positional[0];
    if (!valid_account_name(account)) return fail("'" + account + "' is not a valid account name", kExitUsage);
    Store store(env.store_dir);
    std::string err;
    if (!store.open(false, err)) return fail(err, kExitConfig);
    AccountRecord r;
    LoadStatus st = store.load(account, r, err);
    if (st == LoadStatus::NotFound) return fail("no stored tokens for '" + account + "'", kExitNoPerm);
    Store::Lock lock;
    if (!store.lock(account, 30000, lock, err)) return fail(err, kExitTempFail);
    if (!store.remove(account, err)) return fail(err, kExitConfig);
    std::fprintf(stderr,
                 "Deleted the stored tokens of %s.\n"
                 "The refresh token stays valid at Microsoft until it expires; to revoke every session\n"
                 "of the user now, use 'Revoke sessions' on the user in the Microsoft Entra admin center.\n",
                 account.c_str());
    return kExitOk;
}

int cmd_agent(const Parsed& p, const Environment& env, HttpClient& http) {
    if (!p.positional.empty()) return usage_error("usage: mailoauth agent [--socket NAME] [--foreground]");
    agent::Options o;
    o.socket = p.value("socket");
    o.foreground = p.has("foreground");
    return agent::run(o, env, http);
}

int cmd_connect(const Parsed& p, const Environment& env, HttpClient& http) {
    if (p.positional.size() != 3)
        return usage_error("usage: mailoauth connect ACCOUNT HOST PORT [--protocol imap|pop3] "
                           "[--tls implicit|starttls|none] [--ca-file PATH] [--mechanism XOAUTH2|OAUTHBEARER] "
                           "[--timeout SEC]");
    connect::Options o;
    o.account = p.positional[0];
    o.host = p.positional[1];
    o.port = p.positional[2];
    o.protocol = p.value("protocol");
    o.tls = p.value("tls");
    o.ca_file = p.value("ca-file");
    o.mechanism = p.value("mechanism");
    if (!valid_account_name(o.account)) return fail("'" + o.account + "' is not a valid account name", kExitUsage);
    if (p.has("timeout") && !parse_seconds(p.value("timeout"), 1, 600, o.timeout))
        return usage_error("--timeout must be a number of seconds from 1 to 600");
    std::string why;
    if (!connect::complete_options(o, why)) return usage_error(why);
    return connect::run(o, env, http);
}

}  // namespace

int run_command(const std::vector<std::string>& args, HttpClient& http) {
    Parsed p;
    int rc = parse_args(args, p);
    if (rc >= 0) return rc;
    if (p.has("version")) {
        std::printf("mailoauth %s\n", MAILOAUTH_VERSION);
        return kExitOk;
    }
    if (p.has("help") || p.verb == "help") {
        print_help(stdout, p.verb == "help" && !p.positional.empty() ? p.positional[0] : (p.verb == "help" ? "" : p.verb));
        return kExitOk;
    }
    if (p.verb.empty()) {
        print_help(stderr, "");
        return kExitUsage;
    }
    bool known = false;
    for (const auto& v : kVerbs) known = known || p.verb == v.name;
    if (!known) return usage_error("unknown verb '" + p.verb + "'");

    GlobalOptions g;
    g.store_dir = p.value("store");
    g.config_path = p.value("config");
    if (p.has("http-timeout") && !parse_seconds(p.value("http-timeout"), 1, 600, g.http_timeout))
        return usage_error("--http-timeout must be a number of seconds from 1 to 600");
    if (p.has("refresh-margin") && !parse_seconds(p.value("refresh-margin"), 0, 86400, g.refresh_margin))
        return usage_error("--refresh-margin must be a number of seconds from 0 to 86400");
    if (p.verb == "doctor") {
        // Loads the configuration itself: a broken file is one of its findings.
        if (p.positional.size() > 1) return usage_error("usage: mailoauth doctor [ACCOUNT]");
        if (!p.positional.empty() && !valid_account_name(p.positional[0]))
            return fail("'" + p.positional[0] + "' is not a valid account name", kExitUsage);
        return doctor::run(g, p.positional.empty() ? "" : p.positional[0]);
    }
    Environment env;
    std::string err;
    if (!load_environment(g, env, err)) {
        if (p.verb == "get") return reply_error("config_error", err, kExitConfig);
        return fail(err, kExitConfig);
    }
    if (p.verb == "login") return cmd_login(p, env, http);
    if (p.verb == "token") return cmd_token(p, env, http);
    if (p.verb == "get") return cmd_get(p, env, http);
    if (p.verb == "agent") return cmd_agent(p, env, http);
    if (p.verb == "connect") return cmd_connect(p, env, http);
    if (p.verb == "status") return cmd_status(p, env);
    return cmd_logout(p, env);
}

}  // namespace mailoauth
