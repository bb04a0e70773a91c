#include "tokenhelper/jwt_claims.h"

#include <json/json.h>

#include <exception>
#include <memory>

#include "common/sanitize.h"

namespace mailoauth {

namespace {

constexpr std::size_t kMaxPayload = 16 * 1024;
constexpr std::size_t kMaxRoles = 32;

int b64url_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

// base64url without padding (a JWT part); false on any other character or
// an impossible length.
bool b64url_decode(std::string_view in, std::string& out) {
    if (in.size() % 4 == 1) return false;
    out.clear();
    unsigned acc = 0;
    int bits = 0;
    for (char c : in) {
        int v = b64url_value(c);
        if (v < 0) return false;
        acc = (acc << 6) | static_cast<unsigned>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xff);
        }
    }
    return true;
}

}  // namespace

RolesClaim access_token_roles(std::string_view token, std::vector<std::string>& roles) {
    roles.clear();
    // Exactly three parts: header.payload.signature (an encrypted JWE has five).
    const std::size_t a = token.find('.');
    if (a == std::string_view::npos) return RolesClaim::Unknown;
    const std::size_t b = token.find('.', a + 1);
    if (b == std::string_view::npos || token.find('.', b + 1) != std::string_view::npos)
        return RolesClaim::Unknown;
    const std::string_view part = token.substr(a + 1, b - a - 1);
    if (part.empty() || part.size() > kMaxPayload) return RolesClaim::Unknown;
    std::string payload;
    if (!b64url_decode(part, payload)) return RolesClaim::Unknown;

    Json::CharReaderBuilder builder;
    Json::CharReaderBuilder::strictMode(&builder.settings_);
    builder["stackLimit"] = 16;
    std::unique_ptr<Json::CharReader> reader(builder.newCharReader());
    Json::Value root;
    std::string errs;
    bool ok = false;
    try {
        ok = reader->parse(payload.data(), payload.data() + payload.size(), &root, &errs);
    } catch (const std::exception&) {
        ok = false;
    }
    if (!ok || !root.isObject()) return RolesClaim::Unknown;
    const Json::Value& r = root["roles"];
    if (r.isNull()) return RolesClaim::Absent;
    if (!r.isArray()) return RolesClaim::Unknown;
    for (const Json::Value& v : r) {
        if (roles.size() >= kMaxRoles) break;
        if (v.isString()) roles.push_back(sanitize::text(v.asString(), 100));
    }
    return RolesClaim::Present;
}

}  // namespace mailoauth
