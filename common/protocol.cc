#include "common/protocol.h"

#include "common/secret.h"

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

}  // namespace mailoauth::protocol
