#include "tokenhelper/oauth.h"

#include <json/json.h>
#include <strings.h>

#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>

#include "common/sanitize.h"

namespace mailoauth {

namespace {

constexpr std::size_t kMaxBody = 1 << 20;      // 1 MiB: no real reply comes close
constexpr std::size_t kMaxToken = 16 * 1024;   // access, refresh, id token, device code
constexpr std::size_t kMaxText = 4 * 1024;     // everything else
constexpr std::size_t kMaxDescription = 1024;  // error_description, first line only
constexpr std::size_t kMaxId = 128;            // trace_id, correlation_id, timestamp
constexpr std::size_t kMaxUsername = 320;      // an e-mail address at most
constexpr std::size_t kMaxErrorCodes = 16;
constexpr long kMaxSeconds = 10L * 366 * 24 * 3600;  // beyond this a lifetime is nonsense

// jsoncpp in strict mode: an object at the root, no comments, no trailing
// commas or garbage, duplicate keys refused (which one would win is exactly
// what a confused parser gets wrong), and a shallow nesting limit.
bool parse_object(std::string_view body, Json::Value& root, std::string& err) {
    if (body.size() > kMaxBody) {
        err = "the reply is larger than 1 MiB";
        return false;
    }
    Json::CharReaderBuilder builder;
    Json::CharReaderBuilder::strictMode(&builder.settings_);
    builder["stackLimit"] = 32;
    std::unique_ptr<Json::CharReader> reader(builder.newCharReader());
    std::string errs;  // jsoncpp's messages hold positions, never values; not passed on
    bool ok = false;
    try {
        ok = reader->parse(body.data(), body.data() + body.size(), &root, &errs);
    } catch (const std::exception&) {
        ok = false;  // stackLimit is enforced by throwing
    }
    if (!ok) {
        err = "the reply is not valid JSON";
        return false;
    }
    if (!root.isObject()) {
        err = "the reply is not a JSON object";
        return false;
    }
    return true;
}

// A value used exactly as sent or not at all (a code to type, a URL to
// open, an id): true when it holds anything common/sanitize.h would
// replace (controls in any form, bidi controls, ill-formed UTF-8).
bool has_control(std::string_view s) { return !sanitize::clean(s); }

// Tokens travel inside SASL messages, HTTP headers and key=value lines, so
// only visible ASCII is accepted (RFC 6750 b64token is a subset of this;
// Microsoft's consumer refresh tokens use a few more symbols, like '!').
bool is_token_chars(std::string_view s) {
    for (char ch : s) {
        unsigned char c = static_cast<unsigned char>(ch);
        if (c < 0x21 || c > 0x7e) return false;
    }
    return true;
}

// Overwrites the characters jsoncpp holds for a secret string value, so the
// parsed tree does not keep a copy of a token after it is freed.
void wipe_json_string(const Json::Value& v) {
    const char* b = nullptr;
    const char* e = nullptr;
    if (v.isString() && v.getString(&b, &e) && b != nullptr && e > b) {
        wipe_memory(const_cast<char*>(b), static_cast<std::size_t>(e - b));
    }
}

enum class Field { Missing, Ok, Bad };

// A string member, type-checked and length-capped.  "Bad" sets err.
Field get_string(const Json::Value& root, const char* name, std::size_t cap, std::string& out,
                 std::string& err) {
    const Json::Value* v = root.find(name, name + std::strlen(name));
    if (v == nullptr || v->isNull()) return Field::Missing;
    if (!v->isString()) {
        err = std::string(name) + " is not a string";
        return Field::Bad;
    }
    const char* b = nullptr;
    const char* e = nullptr;
    v->getString(&b, &e);
    const std::size_t n = static_cast<std::size_t>(e - b);
    if (n > cap) {
        err = std::string(name) + " is longer than " + std::to_string(cap) + " bytes";
        return Field::Bad;
    }
    out.assign(b, n);
    return Field::Ok;
}

// A lifetime or interval in seconds: a non-negative integral JSON number or
// a string of digits (some providers quote it).
Field get_seconds(const Json::Value& root, const char* name, long& out, std::string& err) {
    const Json::Value* v = root.find(name, name + std::strlen(name));
    if (v == nullptr || v->isNull()) return Field::Missing;
    if (v->isString()) {
        const std::string s = v->asString();
        if (s.empty() || s.size() > 10) {
            err = std::string(name) + " is not a number of seconds";
            return Field::Bad;
        }
        long n = 0;
        for (char c : s) {
            if (c < '0' || c > '9') {
                err = std::string(name) + " is not a number of seconds";
                return Field::Bad;
            }
            n = n * 10 + (c - '0');
        }
        if (n > kMaxSeconds) {
            err = std::string(name) + " is out of range";
            return Field::Bad;
        }
        out = n;
        return Field::Ok;
    }
    if (v->isNumeric() && v->isIntegral()) {
        if (v->isInt64()) {
            const Json::Int64 n = v->asInt64();
            if (n >= 0 && n <= kMaxSeconds) {
                out = static_cast<long>(n);
                return Field::Ok;
            }
        }
        err = std::string(name) + " is out of range";
        return Field::Bad;
    }
    err = std::string(name) + " is not a number of seconds";
    return Field::Bad;
}

bool base64url_decode(std::string_view in, std::string& out) {
    out.clear();
    while (!in.empty() && in.back() == '=') in.remove_suffix(1);
    if (in.size() % 4 == 1) return false;
    out.reserve(in.size() * 3 / 4);
    std::uint32_t acc = 0;
    int bits = 0;
    for (char ch : in) {
        int v;
        if (ch >= 'A' && ch <= 'Z') v = ch - 'A';
        else if (ch >= 'a' && ch <= 'z') v = ch - 'a' + 26;
        else if (ch >= '0' && ch <= '9') v = ch - '0' + 52;
        else if (ch == '-' || ch == '+') v = 62;  // tolerate the standard alphabet too
        else if (ch == '_' || ch == '/') v = 63;
        else return false;
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((acc >> bits) & 0xff));
        }
    }
    return true;
}

// The user's sign-in name from the id_token's payload, only to show it and
// to offer it as the SASL user.  The signature is not checked: the token
// came straight from the token endpoint over verified TLS, and nothing is
// authorised on the strength of this name.
std::string username_from_id_token(std::string_view jwt) {
    const std::size_t dot1 = jwt.find('.');
    if (dot1 == std::string_view::npos) return "";
    const std::size_t dot2 = jwt.find('.', dot1 + 1);
    if (dot2 == std::string_view::npos) return "";
    std::string payload;
    if (!base64url_decode(jwt.substr(dot1 + 1, dot2 - dot1 - 1), payload)) return "";
    Json::Value claims;
    std::string err;
    if (!parse_object(payload, claims, err)) return "";
    for (const char* name : {"preferred_username", "upn", "email"}) {
        std::string value;
        if (get_string(claims, name, kMaxUsername, value, err) == Field::Ok && !value.empty() &&
            !has_control(value)) {
            return value;
        }
    }
    return "";
}

// error_description is shown to people and may end up in a key=value line.
// Microsoft's runs on over CRLF with the trace and correlation ids, which
// have their own fields, so only the first line is kept, sanitized.
std::string first_line(std::string_view s) {
    s = s.substr(0, s.find_first_of("\r\n"));
    std::string out = sanitize::text(s, kMaxDescription);
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
}

// RFC 6749 section 5.2: error is %x20-21 / %x23-5B / %x5D-7E.
bool is_error_word(std::string_view s) {
    if (s.empty() || s.size() > 128) return false;
    for (char ch : s) {
        unsigned char c = static_cast<unsigned char>(ch);
        if (c < 0x20 || c > 0x7e || c == '"' || c == '\\') return false;
    }
    return true;
}

bool parse_device_code(std::string_view body, DeviceCodeResponse& out, std::string& err) {
    Json::Value root;
    if (!parse_object(body, root, err)) return false;

    std::string device_code;
    switch (get_string(root, "device_code", kMaxToken, device_code, err)) {
        case Field::Missing: err = "device_code is missing"; return false;
        case Field::Bad: return false;
        case Field::Ok: break;
    }
    wipe_json_string(root["device_code"]);
    out.device_code = Secret(device_code);
    wipe_string(device_code);
    if (out.device_code.empty() || !is_token_chars(out.device_code.reveal())) {
        err = "device_code is empty or holds characters that are not allowed";
        return false;
    }

    switch (get_string(root, "user_code", kMaxText, out.user_code, err)) {
        case Field::Missing: err = "user_code is missing"; return false;
        case Field::Bad: return false;
        case Field::Ok: break;
    }
    if (out.user_code.empty() || has_control(out.user_code)) {
        err = "user_code is empty or holds control characters or invalid UTF-8";
        return false;
    }

    // RFC 8628 says verification_uri; Google's endpoint says verification_url.
    Field f = get_string(root, "verification_uri", kMaxText, out.verification_uri, err);
    if (f == Field::Missing) {
        f = get_string(root, "verification_url", kMaxText, out.verification_uri, err);
    }
    if (f == Field::Missing) err = "verification_uri is missing";
    if (f != Field::Ok) return false;
    if (out.verification_uri.empty() || has_control(out.verification_uri)) {
        err = "verification_uri is empty or holds control characters or invalid UTF-8";
        return false;
    }

    switch (get_seconds(root, "expires_in", out.expires_in, err)) {
        case Field::Missing: err = "expires_in is missing"; return false;
        case Field::Bad: return false;
        case Field::Ok: break;
    }
    if (out.expires_in <= 0) {
        err = "expires_in is not positive";
        return false;
    }

    long interval = 5;
    if (get_seconds(root, "interval", interval, err) == Field::Bad) return false;
    // A zero interval would hammer the endpoint; a huge one would outlive
    // the code.  RFC 8628's default is 5.
    out.interval = interval < 1 ? 1 : interval > 60 ? 60 : interval;

    // Optional texts that are only shown: a bad one is dropped, not fatal,
    // since the URL and the code are enough to sign in.  The message is
    // prose: shown sanitized.  The complete URI is a link: exact or nothing.
    std::string ignored;
    if (get_string(root, "message", kMaxText, out.message, ignored) == Field::Ok) {
        out.message = sanitize::text(out.message, kMaxText);
    } else {
        out.message.clear();
    }
    if (get_string(root, "verification_uri_complete", kMaxText, out.verification_uri_complete,
                   ignored) != Field::Ok ||
        has_control(out.verification_uri_complete)) {
        out.verification_uri_complete.clear();
    }
    return true;
}

bool parse_token(std::string_view body, TokenResponse& out, std::string& err) {
    Json::Value root;
    if (!parse_object(body, root, err)) return false;

    // The secrets first, each wiped from the parsed tree once copied.
    struct SecretField {
        const char* name;
        Secret* into;
        bool required;
    };
    std::string id_token;
    for (const SecretField& sf : {SecretField{"access_token", &out.access_token, true},
                                  SecretField{"refresh_token", &out.refresh_token, false}}) {
        std::string value;
        const Field f = get_string(root, sf.name, kMaxToken, value, err);
        if (f == Field::Ok) wipe_json_string(root[sf.name]);
        if (f == Field::Bad || (f == Field::Missing && sf.required)) {
            if (f == Field::Missing) err = std::string(sf.name) + " is missing";
            wipe_string(value);
            return false;
        }
        if (!is_token_chars(value) || (sf.required && value.empty())) {
            err = std::string(sf.name) + " is empty or holds characters that are not allowed";
            wipe_string(value);
            return false;
        }
        *sf.into = Secret(value);
        wipe_string(value);
    }

    out.token_type = "Bearer";
    std::string token_type;
    switch (get_string(root, "token_type", kMaxText, token_type, err)) {
        case Field::Bad: return false;
        case Field::Missing: break;
        case Field::Ok:
            if (strcasecmp(token_type.c_str(), "bearer") != 0 ||
                token_type.size() != std::strlen("bearer")) {
                err = "token_type is not Bearer";
                return false;
            }
    }

    // RFC 6749 only recommends expires_in; an hour is what Microsoft issues.
    out.expires_in = 3600;
    if (get_seconds(root, "expires_in", out.expires_in, err) == Field::Bad) return false;
    if (get_string(root, "scope", kMaxText, out.scope, err) == Field::Bad) return false;
    if (has_control(out.scope)) {
        err = "scope holds control characters or invalid UTF-8";
        return false;
    }

    // The id_token only yields a name to show; a broken one is ignored.
    std::string ignored;
    if (get_string(root, "id_token", kMaxToken, id_token, ignored) == Field::Ok) {
        out.id_token_username = username_from_id_token(id_token);
        wipe_json_string(root["id_token"]);
        wipe_string(id_token);
    }
    return true;
}

}  // namespace

// On failure nothing half-parsed (least of all a secret) is left in out.
bool parse_device_code_response(std::string_view body, DeviceCodeResponse& out, std::string& err) {
    out = DeviceCodeResponse{};
    if (parse_device_code(body, out, err)) return true;
    out = DeviceCodeResponse{};
    return false;
}

bool parse_token_response(std::string_view body, TokenResponse& out, std::string& err) {
    out = TokenResponse{};
    if (parse_token(body, out, err)) return true;
    out = TokenResponse{};
    return false;
}

bool parse_error_response(std::string_view body, OAuthError& out) {
    const int status = out.http_status;
    out = OAuthError{};
    out.http_status = status;
    Json::Value root;
    std::string err;
    if (!parse_object(body, root, err)) return false;

    std::string error;
    if (get_string(root, "error", kMaxText, error, err) != Field::Ok || !is_error_word(error)) {
        return false;
    }
    out.error = error;

    // Everything else is optional and only informative: a field of the
    // wrong type is ignored rather than hiding the error itself.
    std::string text;
    if (get_string(root, "error_description", kMaxText, text, err) == Field::Ok) {
        out.error_description = first_line(text);
    }
    static const char kCodes[] = "error_codes";
    const Json::Value* codes = root.find(kCodes, kCodes + sizeof kCodes - 1);
    if (codes != nullptr && codes->isArray()) {
        for (const Json::Value& c : *codes) {
            if (out.error_codes.size() >= kMaxErrorCodes) break;
            if (c.isNumeric() && c.isIntegral() && c.isInt64() && c.asInt64() > 0 &&
                c.asInt64() <= 999999999) {
                out.error_codes.push_back(static_cast<long>(c.asInt64()));
            }
        }
    }
    struct IdField {
        const char* name;
        std::string* into;
    };
    for (const IdField& f : {IdField{"trace_id", &out.trace_id},
                             IdField{"correlation_id", &out.correlation_id},
                             IdField{"timestamp", &out.timestamp}}) {
        std::string value;
        if (get_string(root, f.name, kMaxId, value, err) == Field::Ok && !has_control(value)) {
            *f.into = value;
        }
    }
    return true;
}

// A discovery document: a URL field is kept only when it is a string of
// printable characters without spaces, at most kMaxText bytes; anything
// else in the document is ignored.  issuer and token_endpoint are required.
bool parse_discovery_document(std::string_view body, DiscoveryDocument& out, std::string& err) {
    out = DiscoveryDocument{};
    err.clear();
    Json::Value root;
    if (!parse_object(body, root, err)) return false;
    struct UrlField {
        const char* name;
        std::string* into;
        bool required;
    };
    for (const UrlField& f : {UrlField{"issuer", &out.issuer, true},
                              UrlField{"token_endpoint", &out.token_endpoint, true},
                              UrlField{"authorization_endpoint", &out.authorization_endpoint, false},
                              UrlField{"device_authorization_endpoint", &out.device_authorization_endpoint, false}}) {
        std::string value;
        Field got = get_string(root, f.name, kMaxText, value, err);
        if (got == Field::Missing && !f.required) continue;
        if (got == Field::Missing) err = std::string("the document has no ") + f.name;
        if (got == Field::Ok && (value.empty() || !is_token_chars(value)))
            err = std::string(f.name) + " is not a URL";
        else if (got == Field::Ok)
            *f.into = value;
        if (!err.empty()) {
            out = DiscoveryDocument{};
            return false;
        }
    }
    return true;
}

}  // namespace mailoauth
