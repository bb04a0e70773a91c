#include "common/protocol.h"

#include "common/secret.h"
#include "common/sha256.h"

namespace mailoauth::protocol {

bool valid_key(std::string_view key) {
    if (key.empty() || key.size() > kMaxKey) return false;
    for (char c : key) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
        if (!ok) return false;
    }
    return true;
}

bool valid_value(std::string_view value) {
    if (value.size() > kMaxLine) return false;
    for (char c : value)
        if (c == '\r' || c == '\n' || c == '\0') return false;
    return true;
}

const std::string* Message::get(std::string_view key) const {
    for (const auto& kv : fields_)
        if (kv.first == key) return &kv.second;
    return nullptr;
}

std::string Message::get_or(std::string_view key, std::string_view fallback) const {
    const std::string* v = get(key);
    return v ? *v : std::string(fallback);
}

bool Message::set(std::string_view key, std::string_view value) {
    if (!valid_key(key) || !valid_value(value)) return false;
    for (auto& kv : fields_) {
        if (kv.first == key) {
            wipe_string(kv.second);
            kv.second.assign(value);
            return true;
        }
    }
    if (fields_.size() >= kMaxFields) return false;
    fields_.emplace_back(std::string(key), std::string(value));
    return true;
}

void Message::clear() noexcept {
    for (auto& kv : fields_) wipe_string(kv.second);
    fields_.clear();
}

Message::~Message() { clear(); }

ParseResult parse(std::string_view input, Message& out) {
    ParseResult r;
    out.clear();
    std::size_t pos = 0;
    std::size_t lineno = 0;
    auto fail = [&](std::string msg) {
        r.ok = false;
        r.error = std::move(msg);
        r.line = lineno;
        out.clear();
        return r;
    };
    if (input.size() > kMaxMessage) {
        // Only the prefix up to the cap is ever looked at.
        input = input.substr(0, kMaxMessage + 1);
    }
    while (pos < input.size()) {
        ++lineno;
        std::size_t nl = input.find('\n', pos);
        bool has_nl = nl != std::string_view::npos;
        std::size_t end = has_nl ? nl : input.size();
        std::string_view line = input.substr(pos, end - pos);
        std::size_t next = has_nl ? nl + 1 : input.size();
        if (line.size() > kMaxLine) return fail("line too long");
        if (next > kMaxMessage) return fail("message too long");
        if (line.empty()) {
            if (!has_nl) break;  // cannot happen, kept for clarity
            r.ok = true;
            r.terminated = true;
            r.consumed = next;
            return r;
        }
        std::size_t eq = line.find('=');
        if (eq == std::string_view::npos) return fail("line without '='");
        std::string_view key = line.substr(0, eq);
        std::string_view value = line.substr(eq + 1);
        if (!valid_key(key)) return fail("invalid key");
        if (!valid_value(value)) return fail("value contains CR or NUL");
        if (out.has(key)) return fail("duplicate key '" + std::string(key) + "'");
        if (out.fields().size() >= kMaxFields) return fail("too many fields");
        out.set(key, value);
        pos = next;
    }
    r.ok = true;
    r.consumed = pos;
    return r;
}

std::string serialize(const Message& msg) {
    std::string s;
    for (const auto& kv : msg.fields()) {
        s += kv.first;
        s += '=';
        s += kv.second;
        s += '\n';
    }
    s += '\n';
    return s;
}

bool parse_decimal(std::string_view s, unsigned long long max, unsigned long long& out) {
    if (s.empty() || s.size() > 12) return false;
    unsigned long long n = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
        n = n * 10 + static_cast<unsigned>(c - '0');
    }
    if (n > max) return false;
    out = n;
    return true;
}

std::string token_id(std::string_view token) {
    return sha256::hex(sha256::digest(token), kTokenIdLength / 2);
}

bool valid_token_id(std::string_view id) {
    if (id.size() != kTokenIdLength) return false;
    for (char c : id)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

bool names_token(std::string_view id, std::string_view token) {
    return valid_token_id(id) && !token.empty() && token_id(token) == id;
}

bool build_request(const Request& req, Message& msg) {
    msg.clear();
    bool ok = msg.set("version", "1") && msg.set("account", req.account);
    if (ok && !req.protocol.empty()) ok = msg.set("protocol", req.protocol);
    if (ok && !req.host.empty()) ok = msg.set("host", req.host);
    if (ok && !req.port.empty()) ok = msg.set("port", req.port);
    if (ok && !req.mechanism.empty()) ok = msg.set("mechanism", req.mechanism);
    if (ok && req.force_refresh) ok = msg.set("force_refresh", "1");
    if (ok && !req.rejected.empty()) ok = msg.set("rejected", req.rejected);
    if (!ok) msg.clear();
    return ok;
}

namespace {

// A version worth quoting back: short and plain, else it is not repeated.
bool quotable(std::string_view v) {
    if (v.empty() || v.size() > 20) return false;
    for (char c : v)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.'))
            return false;
    return true;
}

bool refuse(Problem& p, const char* error, std::string description) {
    p.error = error;
    p.description = std::move(description);
    p.status = kStatusDataErr;
    return false;
}

}  // namespace

bool parse_request(std::string_view text, Request& out, Problem& problem) {
    out = Request();
    Message msg;
    ParseResult pr = parse(text, msg);
    if (!pr.ok) return refuse(problem, "bad_request", "request line " + std::to_string(pr.line) + ": " + pr.error);
    const std::string version = msg.get_or("version", "1");
    if (version != "1")
        return refuse(problem, "unsupported_version",
                      "helper protocol version " + (quotable(version) ? version : std::string("'?'")) +
                          " is not supported (this mailoauth speaks version 1)");
    out.account = msg.get_or("account", "");
    if (out.account.empty()) return refuse(problem, "bad_request", "the request has no 'account'");
    out.protocol = msg.get_or("protocol", "");
    out.host = msg.get_or("host", "");
    out.port = msg.get_or("port", "");
    out.mechanism = msg.get_or("mechanism", "");
    out.force_refresh = msg.get_or("force_refresh", "0") == "1";
    const std::string* rejected = msg.get("rejected");
    if (rejected && valid_token_id(*rejected)) out.rejected = *rejected;
    return true;
}

bool build_token_reply(Message& m, std::string_view token, long long expires_at, std::string_view user,
                       long long lifetime) {
    m.clear();
    bool ok = !token.empty() && m.set("access_token", token) && m.set("expires_at", std::to_string(expires_at));
    if (ok && !user.empty()) ok = m.set("user", user);
    if (ok && lifetime > 0) ok = m.set("lifetime", std::to_string(lifetime));
    if (ok) ok = m.set("status", "0");
    if (!ok) m.clear();
    return ok;
}

void build_error_reply(Message& m, std::string_view error, std::string_view description, int status) {
    m.clear();
    if (!m.set("error", error)) m.set("error", "failed");
    m.set("error_description", description);  // left out when it cannot be sent
    m.set("status", std::to_string(status));
}

bool reply_status(const Message& reply, int& status) {
    unsigned long long n = 0;
    const std::string* v = reply.get("status");
    if (!v || !parse_decimal(*v, 255, n)) return false;
    status = static_cast<int>(n);
    return true;
}

bool check_token_reply(const Message& reply, std::string& why) {
    const std::string* token = reply.get("access_token");
    if (token == nullptr || token->empty()) {
        why = "no access_token";
        return false;
    }
    unsigned long long n = 0;
    if (!parse_decimal(reply.get_or("expires_at", ""), 999999999999ull, n)) {
        why = "no valid expires_at";
        return false;
    }
    return true;
}

}  // namespace mailoauth::protocol
