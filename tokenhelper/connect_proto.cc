#include "tokenhelper/connect_proto.h"

#include "common/sanitize.h"

#include "plugin/wire.h"

namespace mailoauth::connect {

namespace {

char upper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c; }

std::string upper(std::string_view s) {
    std::string o(s);
    for (char& c : o) c = upper(c);
    return o;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (upper(a[i]) != upper(b[i])) return false;
    return true;
}

bool istarts(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

// The first word of s (up to a space) and the rest after that space.
std::string_view first_word(std::string_view s, std::string_view& rest) {
    std::size_t sp = s.find(' ');
    if (sp == std::string_view::npos) {
        rest = {};
        return s;
    }
    rest = s.substr(sp + 1);
    return s.substr(0, sp);
}

std::vector<std::string> words(std::string_view s) {
    std::vector<std::string> out;
    while (!s.empty()) {
        std::string_view rest;
        std::string_view w = first_word(s, rest);
        if (!w.empty()) out.emplace_back(w);
        s = rest;
    }
    return out;
}

// "[CODE args] text" -> code "CODE args", text; else text as is.
void split_code(std::string_view s, std::string& code, std::string& text) {
    if (!s.empty() && s[0] == '[') {
        std::size_t end = s.find(']');
        if (end != std::string_view::npos) {
            code.assign(s.substr(1, end - 1));
            s.remove_prefix(end + 1);
            if (!s.empty() && s[0] == ' ') s.remove_prefix(1);
        }
    }
    text.assign(s);
}

bool is_status(std::string_view w) {
    return w == "OK" || w == "NO" || w == "BAD" || w == "BYE" || w == "PREAUTH";
}

bool valid_tag(std::string_view tag) {
    if (tag.empty() || tag.size() > 64) return false;
    for (unsigned char c : tag)
        if (c <= 0x20 || c >= 0x7f || c == '(' || c == ')' || c == '{' || c == '%' || c == '*' ||
            c == '"' || c == '\\' || c == '+')
            return false;
    return true;
}

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int b64_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

}  // namespace

LineStatus take_line(std::string& buf, std::string& line, std::size_t max) {
    std::size_t lf = buf.find('\n');
    if (lf == std::string::npos || lf >= max) {
        line.clear();
        return buf.size() >= max ? LineStatus::TooLong : LineStatus::Incomplete;
    }
    std::size_t end = (lf > 0 && buf[lf - 1] == '\r') ? lf - 1 : lf;
    line.assign(buf, 0, end);
    buf.erase(0, lf + 1);
    return LineStatus::Line;
}

// Server text on its way to a terminal or a log: the one sanitizer
// (common/sanitize.h: no C0, DEL or C1 control in either form, valid UTF-8,
// capped at a character boundary).
std::string peer_text(std::string_view text, std::size_t max) { return sanitize::text(text, max); }

// The same, with runs of blanks (what the sanitizer made of CR, LF, TAB)
// folded into one space, for a reason printed as one line.
std::string one_line(std::string_view text, std::size_t max) {
    const std::string clean = sanitize::text(text, max);
    std::string out;
    for (char c : clean) {
        if (c == ' ' && (out.empty() || out.back() == ' ')) continue;
        out += c;
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
}

// --- IMAP -----------------------------------------------------------------

ImapResponse parse_imap_response(std::string_view line) {
    ImapResponse r;
    if (line.empty()) return r;
    if (line[0] == '+') {
        if (line.size() > 1 && line[1] != ' ') return r;
        r.kind = ImapResponse::Continuation;
        r.text.assign(line.size() > 2 ? line.substr(2) : std::string_view());
        return r;
    }
    std::string_view rest;
    std::string_view tag = first_word(line, rest);
    if (tag == "*") {
        r.kind = ImapResponse::Untagged;
    } else if (valid_tag(tag)) {
        r.kind = ImapResponse::Tagged;
        r.tag.assign(tag);
    } else {
        return r;
    }
    std::string_view after;
    std::string_view word = first_word(rest, after);
    if (word.empty()) {
        r.kind = ImapResponse::Invalid;
        return r;
    }
    r.status = upper(word);
    if (is_status(r.status)) {
        split_code(after, r.code, r.text);
        if (istarts(r.code, "CAPABILITY ")) r.capabilities = words(std::string_view(r.code).substr(11));
    } else if (r.kind == ImapResponse::Tagged) {
        // A tagged response is always a status response.
        r.kind = ImapResponse::Invalid;
    } else {
        r.text.assign(after);
        if (r.status == "CAPABILITY") r.capabilities = words(after);
    }
    return r;
}

bool has_capability(const std::vector<std::string>& caps, std::string_view name) {
    for (const auto& c : caps)
        if (iequals(c, name)) return true;
    return false;
}

std::vector<std::string> client_capabilities(const std::vector<std::string>& caps) {
    std::vector<std::string> out;
    for (const auto& c : caps) {
        if (iequals(c, "STARTTLS") || iequals(c, "LOGINDISABLED") || istarts(c, "AUTH=")) continue;
        out.push_back(c);
    }
    return out;
}

std::string imap_preauth_line(const std::vector<std::string>& caps, std::string_view text) {
    std::string out = "* PREAUTH ";
    if (!caps.empty()) {
        out += "[CAPABILITY";
        for (const auto& c : caps) out += " " + c;
        out += "] ";
    }
    out += one_line(text);
    return out + "\r\n";
}

std::string imap_bye_line(std::string_view text) { return "* BYE " + one_line(text) + "\r\n"; }

bool imap_code_is_temporary(std::string_view code) {
    std::string_view rest;
    std::string word = upper(first_word(code, rest));
    return word == "UNAVAILABLE" || word == "INUSE" || word == "LIMIT" || word == "SERVERBUG";
}

// --- POP3 -----------------------------------------------------------------

Pop3Status parse_pop3_status(std::string_view line) {
    Pop3Status s;
    std::string_view rest;
    std::string_view word = first_word(line, rest);
    if (word == "+OK") {
        s.kind = Pop3Status::Ok;
    } else if (word == "-ERR") {
        s.kind = Pop3Status::Err;
    } else if (word == "+") {
        s.kind = Pop3Status::Continuation;
        s.text.assign(rest);
        return s;
    } else {
        return s;
    }
    split_code(rest, s.code, s.text);
    return s;
}

bool pop3_code_is_temporary(std::string_view code) {
    std::string c = upper(code);
    return c == "SYS/TEMP" || c == "IN-USE" || c == "LOGIN-DELAY";
}

std::vector<std::string> pop3_client_capa(const std::vector<std::string>& lines) {
    std::vector<std::string> out;
    for (const auto& l : lines) {
        std::string_view rest;
        std::string word = upper(first_word(l, rest));
        if (word == "STLS" || word == "SASL" || word == "USER" || word.empty()) continue;
        out.push_back(l);
    }
    return out;
}

std::string pop3_capa_reply(const std::vector<std::string>& lines) {
    std::string out = "+OK Capability list follows\r\n";
    for (const auto& l : lines) out += (!l.empty() && l[0] == '.' ? "." : "") + l + "\r\n";
    return out + ".\r\n";
}

Pop3Front classify_pop3_command(std::string_view line) {
    std::string_view rest;
    std::string verb = upper(first_word(line, rest));
    if (verb == "USER" || verb == "PASS" || verb == "APOP") return Pop3Front::AnswerOk;
    if (verb == "AUTH") return rest.empty() ? Pop3Front::AnswerAuthList : Pop3Front::AnswerOk;
    if (verb == "CAPA") return Pop3Front::AnswerCapa;
    if (verb == "STLS") return Pop3Front::AnswerStls;
    return Pop3Front::Forward;
}

// --- SASL -------------------------------------------------------------------

std::string base64_encode(std::string_view in) {
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                     (static_cast<unsigned char>(in[i + 1]) << 8) | static_cast<unsigned char>(in[i + 2]);
        out += kB64[(v >> 18) & 63];
        out += kB64[(v >> 12) & 63];
        out += kB64[(v >> 6) & 63];
        out += kB64[v & 63];
    }
    if (i < in.size()) {
        unsigned v = static_cast<unsigned char>(in[i]) << 16;
        if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
        out += kB64[(v >> 18) & 63];
        out += kB64[(v >> 12) & 63];
        out += i + 1 < in.size() ? kB64[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

bool base64_decode(std::string_view in, std::string& out) {
    out.clear();
    if (in.size() % 4 != 0) return false;
    for (std::size_t i = 0; i < in.size(); i += 4) {
        int v[4];
        for (int k = 0; k < 4; ++k) {
            char c = in[i + k];
            bool last_group = i + 4 == in.size();
            if (c == '=' && last_group && k >= 2 && (k == 3 || in[i + 3] == '=')) {
                v[k] = -2;
            } else {
                v[k] = b64_value(c);
                if (v[k] < 0) return false;
            }
        }
        // Padding: the unused bits must be zero (one encoding per value).
        out += static_cast<char>((v[0] << 2) | (v[1] >> 4));
        if (v[2] == -2) return (v[1] & 15) == 0;
        out += static_cast<char>(((v[1] & 15) << 4) | (v[2] >> 2));
        if (v[3] == -2) return (v[2] & 3) == 0;
        out += static_cast<char>(((v[2] & 3) << 6) | v[3]);
    }
    return true;
}

std::string describe_error_challenge(std::string_view base64_challenge) {
    std::string json;
    if (base64_challenge.size() > 8192 || !base64_decode(base64_challenge, json)) return "";
    plugin::wire::ErrorChallenge c = plugin::wire::parse_error_challenge(json);
    if (!c.json || c.status.empty()) return "";
    std::string out = "status " + peer_text(c.status, 100);
    if (!c.scope.empty()) out += ", scope " + peer_text(c.scope, 200);
    return out;
}

}  // namespace mailoauth::connect
