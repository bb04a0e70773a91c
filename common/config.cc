#include "common/config.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef MAILOAUTH_SYSCONFDIR
#define MAILOAUTH_SYSCONFDIR "/etc"
#endif

#ifndef MAILOAUTH_BINDIR
#define MAILOAUTH_BINDIR "/usr/bin"
#endif

namespace mailoauth::config {

namespace {

// Settings allowed in the global part (the account keys are also accepted
// there, as defaults for every account).
const char* const kGlobalKeys[] = {
    "helper", "store", "timeout", "log_level", "agent_socket", "agent_user", "http_timeout",
    "agent_renew", nullptr,
};
const char* const kAccountKeys[] = {
    "tenant", "client_id", "authority", "ca_file", "scope", "user", "refresh_margin",
    "allow_users", "allow_groups", "allow_insecure_http",
    "provider", "cloud", "issuer", "token_endpoint", "device_endpoint", "authorization_endpoint",
    "client_secret_file", nullptr,
};

bool in_list(const char* const* list, std::string_view key) {
    for (; *list; ++list)
        if (key == *list) return true;
    return false;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

bool valid_key_chars(std::string_view k) {
    if (k.empty()) return false;
    for (char c : k)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
    return true;
}

}  // namespace

const Entry* Config::lookup(std::string_view account, std::string_view key) const {
    if (!account.empty()) {
        auto a = accounts.find(std::string(account));
        if (a != accounts.end()) {
            auto e = a->second.find(std::string(key));
            if (e != a->second.end()) return &e->second;
        }
    }
    auto g = global.find(std::string(key));
    return g != global.end() ? &g->second : nullptr;
}

std::string Config::get(std::string_view account, std::string_view key, std::string_view fallback) const {
    const Entry* e = lookup(account, key);
    return e ? e->value : std::string(fallback);
}

std::string Error::describe() const {
    std::string s = path.empty() ? std::string("configuration") : path;
    if (line > 0) s += ":" + std::to_string(line);
    s += ": " + message;
    return s;
}

bool parse(std::string_view text, const std::string& path, Config& out, Error& err) {
    out = Config();
    out.path = path;
    err = Error();
    err.path = path;
    if (text.size() > kMaxFile) {
        err.message = "file is larger than 1 MiB; is this really mailoauth.conf?";
        return false;
    }
    Section* current = &out.global;
    bool in_account = false;
    int lineno = 0;
    std::size_t pos = 0;
    while (pos < text.size()) {
        ++lineno;
        std::size_t nl = text.find('\n', pos);
        std::size_t end = nl == std::string_view::npos ? text.size() : nl;
        std::string_view raw = text.substr(pos, end - pos);
        pos = nl == std::string_view::npos ? text.size() : nl + 1;
        err.line = lineno;
        if (raw.size() > kMaxLine) {
            err.message = "line is longer than 4096 characters";
            return false;
        }
        if (raw.find('\0') != std::string_view::npos) {
            err.message = "line contains a NUL byte";
            return false;
        }
        std::string_view line = trim(raw);
        if (line.empty() || line.front() == '#' || line.front() == ';') continue;
        if (line.front() == '[') {
            if (line.back() != ']') {
                err.message = "section header must end with ']', e.g. [account alice@example.com]";
                return false;
            }
            std::string_view inner = trim(line.substr(1, line.size() - 2));
            if (inner == "account") {
                err.message = "account name missing, e.g. [account alice@example.com]";
                return false;
            }
            if (inner.substr(0, 8) != "account " && inner.substr(0, 8) != "account\t") {
                err.message = "unknown section '[" + std::string(inner) +
                              "]'; the only section is [account NAME]";
                return false;
            }
            std::string_view name = trim(inner.substr(8));
            if (name.empty() || name.find_first_of(" \t/") != std::string_view::npos) {
                err.message = "account name must be one word without '/', e.g. [account alice@example.com]";
                return false;
            }
            std::string n(name);
            if (out.accounts.count(n)) {
                err.message = "account '" + n + "' is defined twice";
                return false;
            }
            current = &out.accounts[n];
            in_account = true;
            continue;
        }
        std::size_t eq = line.find('=');
        if (eq == std::string_view::npos) {
            err.message = "expected 'key = value', '[account NAME]' or a '#' comment";
            return false;
        }
        std::string key(trim(line.substr(0, eq)));
        std::string_view value = trim(line.substr(eq + 1));
        if (!valid_key_chars(key)) {
            err.message = "invalid setting name '" + key + "' (lower-case letters, digits and '_')";
            return false;
        }
        bool known = in_list(kAccountKeys, key) || (!in_account && in_list(kGlobalKeys, key));
        if (!known) {
            if (in_account && in_list(kGlobalKeys, key))
                err.message = "'" + key + "' is a global setting; move it above the first [account] section";
            else
                err.message = "unknown setting '" + key + "' (see mailoauth.conf(5))";
            return false;
        }
        if (current->count(key)) {
            err.message = "'" + key + "' is set twice (first on line " +
                          std::to_string((*current)[key].line) + ")";
            return false;
        }
        (*current)[key] = Entry{std::string(value), lineno};
    }
    err = Error();
    return true;
}

bool load_file(const std::string& path, bool missing_ok, Config& out, Error& err) {
    out = Config();
    out.path = path;
    err = Error();
    err.path = path;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT && missing_ok) return true;
        err.message = std::string("cannot open: ") + std::strerror(e);
        return false;
    }
    struct stat st;
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        err.message = "not a regular file";
        return false;
    }
    std::string text;
    char buf[8192];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            ::close(fd);
            err.message = std::string("cannot read: ") + std::strerror(e);
            return false;
        }
        if (n == 0) break;
        text.append(buf, static_cast<std::size_t>(n));
        if (text.size() > kMaxFile) break;
    }
    ::close(fd);
    return parse(text, path, out, err);
}

bool get_int(const Config& cfg, std::string_view account, std::string_view key, long min, long max,
             long fallback, long& out, Error& err) {
    const Entry* e = cfg.lookup(account, key);
    if (!e) {
        out = fallback;
        return true;
    }
    const std::string& v = e->value;
    bool digits = !v.empty() && v.size() < 12;
    for (char c : v)
        if (c < '0' || c > '9') digits = false;
    long n = digits ? std::strtol(v.c_str(), nullptr, 10) : -1;
    if (!digits || n < min || n > max) {
        err.path = cfg.path;
        err.line = e->line;
        err.message = "'" + std::string(key) + "' must be a whole number from " + std::to_string(min) +
                      " to " + std::to_string(max) + ", not '" + v + "'";
        return false;
    }
    out = n;
    return true;
}

bool secure_execution() { return ::getauxval(AT_SECURE) != 0; }

std::string default_path(bool& explicit_) {
    const char* env = ::secure_getenv("MAILOAUTH_CONFIG");
    if (env && *env) {
        explicit_ = true;
        return env;
    }
    explicit_ = false;
    return std::string(MAILOAUTH_SYSCONFDIR) + "/mailoauth.conf";
}

HelperChoice plugin_helper(const Config& cfg) {
    HelperChoice h;
    const char* env = ::secure_getenv("MAILOAUTH_HELPER");
    if (env && *env) {
        h.path = env;
        h.origin = "MAILOAUTH_HELPER";
        if (h.path[0] != '/') h.error = "MAILOAUTH_HELPER must be an absolute path, not '" + h.path + "'";
    } else if (const Entry* e = cfg.lookup("", "helper")) {
        h.path = e->value;
        h.origin = "helper in " + cfg.path + ":" + std::to_string(e->line);
        if (h.path.empty() || h.path[0] != '/')
            h.error = cfg.path + ":" + std::to_string(e->line) +
                      ": 'helper' must be an absolute path, e.g. " MAILOAUTH_BINDIR "/mailoauth";
    } else {
        h.path = MAILOAUTH_BINDIR "/mailoauth";
        h.origin = "the default helper";
    }
    return h;
}

}  // namespace mailoauth::config
