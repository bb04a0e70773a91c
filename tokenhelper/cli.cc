// The command line: the option and verb tables, parsing, help, dispatch.
#include "tokenhelper/cli.h"

#include <cctype>
#include <clocale>
#include <cstring>

#include "tokenhelper/commands.h"
#include "tokenhelper/doctor.h"
#include "tokenhelper/errors.h"
#include "tokenhelper/settings.h"
#include "tokenhelper/store.h"
#include "tokenhelper/verbs.h"

#ifndef MAILOAUTH_VERSION
#define MAILOAUTH_VERSION "0"
#endif

namespace mailoauth {

namespace {

const OptionSpec kOptions[] = {
    {"store", "DIR", "*", "token store directory (default: $MAILOAUTH_STORE, else $XDG_STATE_HOME/mailoauth)"},
    {"config", "FILE", "*", "configuration file (default: $MAILOAUTH_CONFIG, else " MAILOAUTH_SYSCONFDIR "/mailoauth.conf)"},
    {"http-timeout", "SEC", "*", "time limit for each request to the identity provider (default 30)"},
    {"refresh-margin", "SEC", "*", "refresh tokens that expire within SEC seconds (default 600)"},
    {"provider", "NAME", "login", "identity provider: microsoft (default), google or oidc"},
    {"client-id", "ID", "login", "application (client) ID of your app registration (required)"},
    {"client-secret-file", "FILE", "login", "read the client secret from FILE ('-': standard input); google: required"},
    {"tenant", "TENANT", "login", "microsoft: organizations (default), common, consumers (Outlook.com), a GUID or a domain"},
    {"cloud", "CLOUD", "login", "microsoft: global (default), usgov, usgov-dod or china"},
    {"authority", "URL", "login", "microsoft: login base URL replacing the cloud's host and the tenant"},
    {"issuer", "URL", "login", "oidc: issuer URL; endpoints from ISSUER/.well-known/openid-configuration"},
    {"token-endpoint", "URL", "login", "oidc, google: token endpoint (instead of discovery)"},
    {"device-endpoint", "URL", "login", "oidc, google: device authorization endpoint"},
    {"authorization-endpoint", "URL", "login", "oidc, google: authorization endpoint (browser sign-in)"},
    {"ca-file", "PATH", "login connect", "trust only the CA certificates in PATH (login: the identity provider; connect: the mail server)"},
    {"scope", "SCOPE", "login", "scope to request; repeat for several (default: the provider's mail scopes)"},
    {"user", "NAME", "login", "user name to put on the wire, e.g. a shared mailbox (default: the account)"},
    {"browser", nullptr, "login", "sign in with a browser (authorization code + PKCE) instead of a device code"},
    {"paste", nullptr, "login", "browser sign-in without a listener: paste the address the browser ends on"},
    {"port", "PORT", "login", "browser sign-in: listen on http://127.0.0.1:PORT/ (default: a free port; for ssh -L)"},
    {"allow-insecure-http", nullptr, "login", "allow http:// to a loopback identity provider (tests only)"},
    {"app", nullptr, "login", "microsoft: an app-only account: the app registration signs in as itself (client credentials), no person"},
    {"certificate", "FILE", "login", "--app: the app's certificate (PEM), as uploaded to the app registration"},
    {"private-key", "FILE", "login", "--app: the certificate's private key (PEM, RSA 2048+, readable by you only)"},
    {"assertion-alg", "ALG", "login", "--app: sign the client assertion with PS256 (default) or RS256"},
    {"credential-from", "PATH", "login", "--app: read the secret or key from PATH at each use, never stored (e.g. '$CREDENTIALS_DIRECTORY')"},
    {"force-refresh", nullptr, "token", "refresh even if the current access token is still valid"},
    {"json", nullptr, "status", "machine-readable output"},
    {"protocol", "PROTO", "connect", "imap or pop3 (default: pop3 for ports 110 and 995, else imap)"},
    {"tls", "MODE", "connect", "implicit, starttls, or none for a server on this machine (default: starttls for ports 143 and 110, else implicit)"},
    {"mechanism", "MECH", "connect", "XOAUTH2 (default) or OAUTHBEARER"},
    {"timeout", "SEC", "connect login", "connect: time limit for each step before the session is handed over (default 30); login --browser: how long to wait for the browser (default 300)"},
    {"socket", "NAME", "agent", "listen on @NAME (abstract) or /PATH (default: agent_socket, else @mailoauth-agent)"},
    {"foreground", nullptr, "agent", "do not detach; log to standard error as well as to syslog"},
    {"help", nullptr, "*", "show this help"},
    {"version", nullptr, "*", "show the version"},
};

// How a verb runs: most need the loaded configuration; `doctor` loads it
// itself (a broken file is one of its findings) and `get` answers a broken
// one in the helper protocol.
enum class EnvMode { Load, LoadForProtocol, Doctor };

struct VerbSpec {
    const char* name;
    const char* usage;
    const char* summary;
    EnvMode env;
    int (*run)(const Parsed&, const Environment&, HttpClient&);
};

const VerbSpec kVerbs[] = {
    {"login", "login ACCOUNT --client-id ID [--tenant T]", "sign in once (device code, or --browser) and store the tokens",
     EnvMode::Load, verb_login},
    {"token", "token ACCOUNT [--force-refresh]", "print a valid access token (for msmtp, mutt, mbsync, getmail)",
     EnvMode::Load, verb_token},
    {"get", "get", "answer one helper protocol v1 request on stdin (used by the SASL plugin)",
     EnvMode::LoadForProtocol, verb_get},
    {"status", "status [ACCOUNT] [--json]", "show accounts, token expiry, refresh-token age and last error",
     EnvMode::Load, verb_status},
    {"logout", "logout ACCOUNT", "delete the account's stored tokens", EnvMode::Load, verb_logout},
    {"agent", "agent [--socket NAME] [--foreground]", "serve tokens to allowed local users over a socket",
     EnvMode::Load, verb_agent},
    {"doctor", "doctor [ACCOUNT]", "check configuration, store, accounts, plugin and agent; say what to fix",
     EnvMode::Doctor, nullptr},
    {"connect", "connect ACCOUNT HOST PORT", "an IMAP or POP3 session already logged in, on stdin/stdout (fetchmail plugin, mutt tunnel)",
     EnvMode::Load, verb_connect},
};

}  // namespace

bool Parsed::has(const char* n) const {
    for (auto& o : opts) if (o.first == n) return true;
    return false;
}

std::string Parsed::value(const char* n) const {
    std::string v;
    for (auto& o : opts) if (o.first == n) v = o.second;
    return v;
}

std::vector<std::string> Parsed::values(const char* n) const {
    std::vector<std::string> v;
    for (auto& o : opts) if (o.first == n) v.push_back(o.second);
    return v;
}

const OptionSpec* find_option(const std::string& name) {
    for (const auto& o : kOptions)
        if (name == o.name) return &o;
    return nullptr;
}

static bool option_applies(const OptionSpec& o, const std::string& verb) {
    if (std::strcmp(o.verbs, "*") == 0) return true;
    return (" " + std::string(o.verbs) + " ").find(" " + verb + " ") != std::string::npos;
}

void print_help(FILE* out, const std::string& verb) {
    std::fprintf(out, "Usage: mailoauth [OPTIONS] VERB [ARGS]\n\n"
                      "OAuth2 access tokens for IMAP, POP and SMTP (Microsoft 365, Outlook.com, Gmail, any\n"
                      "OpenID Connect provider).\n\nVerbs:\n");
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

std::string shell_quote(const std::string& v) {
    bool plain = !v.empty();
    for (char c : v)
        plain = plain && (std::isalnum(static_cast<unsigned char>(c)) || std::strchr("-_.,:/@=+%", c) != nullptr);
    if (plain) return v;
    std::string q = "'";
    for (char c : v) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

std::string options_as_typed(const Parsed& p) {
    std::string out;
    for (const auto& o : p.opts) {
        const OptionSpec* spec = find_option(o.first);
        if (spec == nullptr || o.first == "help" || o.first == "version") continue;
        out += " --" + o.first;
        if (spec->arg) out += " " + shell_quote(o.second);
    }
    return out;
}

int fail(const std::string& msg, int code) {
    std::fprintf(stderr, "mailoauth: %s\n", msg.c_str());
    return code;
}

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
    const VerbSpec* verb = nullptr;
    for (const auto& v : kVerbs)
        if (p.verb == v.name) verb = &v;
    if (verb == nullptr) return usage_error("unknown verb '" + p.verb + "'");
    // The user's locale, for the system's messages (strerror) to a person.
    // Not for the helper protocol (`get`, the plugin's request at every
    // login): its replies go to a program and its logs, and loading the
    // locale's dozen files was a tenth of the helper's time there.
    if (verb->env != EnvMode::LoadForProtocol) std::setlocale(LC_ALL, "");

    GlobalOptions g;
    g.store_dir = p.value("store");
    g.config_path = p.value("config");
    if (p.has("http-timeout") && !parse_seconds(p.value("http-timeout"), 1, 600, g.http_timeout))
        return usage_error("--http-timeout must be a number of seconds from 1 to 600");
    if (p.has("refresh-margin") && !parse_seconds(p.value("refresh-margin"), 0, 86400, g.refresh_margin))
        return usage_error("--refresh-margin must be a number of seconds from 0 to 86400");
    if (verb->env == EnvMode::Doctor) {
        if (p.positional.size() > 1) return usage_error("usage: mailoauth doctor [ACCOUNT]");
        if (!p.positional.empty() && !valid_account_name(p.positional[0]))
            return fail("'" + p.positional[0] + "' is not a valid account name", kExitUsage);
        return doctor::run(g, p.positional.empty() ? "" : p.positional[0]);
    }
    Environment env;
    std::string err;
    if (!load_environment(g, env, err)) {
        if (verb->env == EnvMode::LoadForProtocol) return reply_error("config_error", err, kExitConfig);
        return fail(err, kExitConfig);
    }
    return verb->run(p, env, http);
}

}  // namespace mailoauth
