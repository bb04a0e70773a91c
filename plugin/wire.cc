#include "plugin/wire.h"

#include "common/sanitize.h"

namespace mailoauth::plugin::wire {

namespace {
constexpr char kSep = '\x01';
constexpr std::size_t kMaxJson = 8192;   // a real error challenge is ~150 bytes
constexpr std::size_t kMaxField = 200;
}  // namespace

std::string gs2_escape(std::string_view name) {
    std::string out;
    out.reserve(name.size());
    for (char c : name) {
        if (c == ',') out += "=2C";
        else if (c == '=') out += "=3D";
        else out += c;
    }
    return out;
}

bool valid_bearer_token(std::string_view token) {
    if (token.empty() || token.size() > 16384) return false;
    std::size_t i = 0;
    for (; i < token.size(); ++i) {
        char c = token[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
        if (!ok) break;
    }
    if (i == 0) return false;
    for (; i < token.size(); ++i)
        if (token[i] != '=') return false;
    return true;
}

bool valid_wire_name(std::string_view name) {
    if (name.empty() || name.size() > 512) return false;
    for (char c : name) {
        unsigned char u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f) return false;
    }
    return true;
}

void build_xoauth2(std::string& out, std::string_view user, std::string_view token) {
    out.clear();
    out.reserve(5 + user.size() + 13 + token.size() + 2);
    out.append("user=").append(user);
    out += kSep;
    out.append("auth=Bearer ").append(token);
    out += kSep;
    out += kSep;
}

void build_oauthbearer(std::string& out, std::string_view user, std::string_view host,
                       std::string_view port, std::string_view token) {
    std::string escaped = gs2_escape(user);
    out.clear();
    out.reserve(8 + escaped.size() + host.size() + port.size() + 32 + token.size());
    out.append("n,a=").append(escaped).append(",");
    out += kSep;
    if (!host.empty()) {
        out.append("host=").append(host);
        out += kSep;
    }
    if (!port.empty()) {
        out.append("port=").append(port);
        out += kSep;
    }
    out.append("auth=Bearer ").append(token);
    out += kSep;
    out += kSep;
}

std::string port_of(std::string_view ipport) {
    std::size_t sep = ipport.rfind(';');
    if (sep == std::string_view::npos) {
        // "a.b.c.d:port"; an IPv6 literal without ';' has no port we can tell.
        sep = ipport.find(':');
        if (sep == std::string_view::npos || ipport.find(':', sep + 1) != std::string_view::npos)
            return "";
    }
    std::string_view p = ipport.substr(sep + 1);
    if (p.empty() || p.size() > 5) return "";
    long n = 0;
    for (char c : p) {
        if (c < '0' || c > '9') return "";
        n = n * 10 + (c - '0');
    }
    if (n < 1 || n > 65535) return "";
    return std::to_string(n);
}

namespace {

// A deliberately small JSON reader: one flat object whose members are
// strings (kept), numbers, true/false/null (skipped).  Nested values make it
// give up; the caller then just logs that the challenge was not JSON.
class FlatJson {
public:
    explicit FlatJson(std::string_view s) : s_(s) {}

    template <typename F>
    bool parse(F&& member) {
        ws();
        if (!eat('{')) return false;
        ws();
        if (eat('}')) return end();
        for (;;) {
            std::string key, value;
            ws();
            if (!string(key)) return false;
            ws();
            if (!eat(':')) return false;
            ws();
            if (peek() == '"') {
                if (!string(value)) return false;
                member(key, value);
            } else if (!scalar()) {
                return false;
            }
            ws();
            if (eat(',')) continue;
            if (eat('}')) return end();
            return false;
        }
    }

private:
    char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
    bool eat(char c) {
        if (peek() != c || i_ >= s_.size()) return false;
        ++i_;
        return true;
    }
    void ws() {
        while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\r' || s_[i_] == '\n')) ++i_;
    }
    bool end() {
        ws();
        return i_ == s_.size();
    }
    bool scalar() {
        std::size_t start = i_;
        while (i_ < s_.size()) {
            char c = s_[i_];
            bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '-' || c == '+' ||
                      c == '.' || c == 'E';
            if (!ok) break;
            ++i_;
        }
        return i_ > start;
    }
    bool string(std::string& out) {
        if (!eat('"')) return false;
        while (i_ < s_.size()) {
            char c = s_[i_++];
            if (c == '"') return true;
            if (static_cast<unsigned char>(c) < 0x20) return false;
            if (c == '\\') {
                if (i_ >= s_.size()) return false;
                char e = s_[i_++];
                switch (e) {
                case '"': case '\\': case '/': c = e; break;
                case 'b': case 'f': case 'n': case 'r': case 't': c = '?'; break;
                case 'u':
                    if (i_ + 4 > s_.size()) return false;
                    i_ += 4;  // not needed for status/scope: keep a placeholder
                    c = '?';
                    break;
                default: return false;
                }
            }
            if (out.size() < kMaxField) out += c;
        }
        return false;
    }

    std::string_view s_;
    std::size_t i_ = 0;
};

}  // namespace

ErrorChallenge parse_error_challenge(std::string_view challenge) {
    ErrorChallenge r;
    if (challenge.size() > kMaxJson) return r;
    ErrorChallenge tmp;
    FlatJson j(challenge);
    bool ok = j.parse([&](const std::string& key, const std::string& value) {
        if (key == "status") tmp.status = sanitize::text(value, kMaxField);
        else if (key == "schemes") tmp.schemes = sanitize::text(value, kMaxField);
        else if (key == "scope") tmp.scope = sanitize::text(value, kMaxField);
    });
    if (!ok) return r;
    tmp.json = true;
    return tmp;
}

}  // namespace mailoauth::plugin::wire
