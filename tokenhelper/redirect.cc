#include "tokenhelper/redirect.h"

#include "common/sanitize.h"
#include "tokenhelper/pkce.h"

namespace mailoauth {

namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Form decoding: '+' is a space, %XX a byte.  False on a bad escape.
bool form_decode(std::string_view in, std::string& out) {
    out.clear();
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        char c = in[i];
        if (c == '+') {
            out += ' ';
        } else if (c == '%') {
            if (i + 2 >= in.size()) return false;
            int hi = hex_value(in[i + 1]);
            int lo = hex_value(in[i + 2]);
            if (hi < 0 || lo < 0) return false;
            out += static_cast<char>(hi * 16 + lo);
            i += 2;
        } else {
            out += c;
        }
    }
    return true;
}

// Authorization codes are printable ASCII in every provider we know
// (Microsoft's base64url-like codes, Google's "4/0A...", Keycloak's dotted
// UUIDs); anything else is not a code and must not reach the token request.
bool printable_ascii(std::string_view s) {
    for (char c : s) {
        if (c < 0x21 || c > 0x7e) return false;
    }
    return true;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }

}  // namespace

bool parse_redirect_query(std::string_view query, AuthorizationReply& out, std::string& why) {
    out = AuthorizationReply();
    if (query.size() > kMaxRedirectQuery) {
        why = "the answer is longer than " + std::to_string(kMaxRedirectQuery) + " bytes";
        return false;
    }
    std::size_t fields = 0;
    bool seen_code = false, seen_error = false;
    std::string name, value;
    std::size_t pos = 0;
    bool ok = true;
    while (ok && pos <= query.size()) {
        std::size_t amp = query.find('&', pos);
        if (amp == std::string_view::npos) amp = query.size();
        std::string_view field = query.substr(pos, amp - pos);
        pos = amp + 1;
        if (field.empty()) continue;
        if (++fields > kMaxRedirectFields) {
            why = "the answer has more than " + std::to_string(kMaxRedirectFields) + " fields";
            ok = false;
            break;
        }
        std::size_t eq = field.find('=');
        std::string_view raw_name = field.substr(0, eq);
        std::string_view raw_value = eq == std::string_view::npos ? std::string_view() : field.substr(eq + 1);
        if (!form_decode(raw_name, name) || !form_decode(raw_value, value)) {
            why = "the answer has a malformed %-escape";
            ok = false;
            break;
        }
        if (name == "code") {
            if (seen_code) {
                why = "the answer has more than one code";
                ok = false;
            } else if (!printable_ascii(value)) {
                why = "the answer's code has characters no authorization code has";
                ok = false;
            } else {
                seen_code = true;
                out.code = Secret(value);
            }
        } else if (name == "state") {
            if (out.has_state) {
                why = "the answer has more than one state";
                ok = false;
            } else {
                out.has_state = true;
                out.state = value;
            }
        } else if (name == "error") {
            if (seen_error) {
                why = "the answer has more than one error";
                ok = false;
            } else {
                seen_error = true;
                out.error = sanitize::text(value, 100);
                // A present but empty error is still an error answer.
                if (out.error.empty()) out.error = "unknown_error";
            }
        } else if (name == "error_description") {
            std::string_view first(value);
            std::size_t nl = first.find_first_of("\r\n");
            if (nl != std::string_view::npos) first = first.substr(0, nl);
            out.error_description = sanitize::text(first, 300);
        } else if (name == "error_uri") {
            out.error_uri = sanitize::text(value, 300);
        }
        wipe_string(value);
    }
    wipe_string(value);
    if (!ok) {
        out = AuthorizationReply();
        return false;
    }
    return true;
}

bool parse_pasted_redirect(std::string_view text, AuthorizationReply& out, std::string& why) {
    out = AuthorizationReply();
    while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
    while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
    if (text.empty()) {
        why = "nothing was pasted";
        return false;
    }
    // Room for the scheme, host, port and path around the longest query.
    if (text.size() > kMaxRedirectQuery + 1024) {
        why = "what was pasted is longer than any sign-in address";
        return false;
    }
    for (char c : text) {
        if (is_space(c) || static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
            why = "what was pasted has spaces or control characters in it; paste the address as one line";
            return false;
        }
    }
    std::size_t hash = text.find('#');
    if (hash != std::string_view::npos) text = text.substr(0, hash);
    std::string_view query;
    std::size_t q = text.find('?');
    if (q != std::string_view::npos) {
        query = text.substr(q + 1);
    } else if (text.find('/') == std::string_view::npos && text.find(':') == std::string_view::npos &&
               text.find('=') != std::string_view::npos) {
        query = text;  // only the query, without its '?'
    } else {
        why = "what was pasted has no '?code=...' part: copy the whole address from the browser's address bar";
        return false;
    }
    if (!parse_redirect_query(query, out, why)) return false;
    if (out.code.empty() && out.error.empty() && !out.has_state) {
        why = "what was pasted has neither a code, nor a state, nor an error: it is not the address the "
              "sign-in ended on";
        return false;
    }
    return true;
}

ReplyKind judge_reply(const AuthorizationReply& r, std::string_view expected_state) {
    if (!r.has_state) return ReplyKind::MissingState;
    if (expected_state.empty() || !pkce::equal_constant_time(r.state, expected_state))
        return ReplyKind::StateMismatch;
    if (!r.error.empty()) return ReplyKind::ProviderError;
    if (r.code.empty()) return ReplyKind::MissingCode;
    return ReplyKind::Code;
}

std::string describe_reply(ReplyKind kind, const AuthorizationReply& r) {
    switch (kind) {
    case ReplyKind::Code:
        return "The sign-in was received.";
    case ReplyKind::ProviderError: {
        std::string s = "The identity provider did not complete the sign-in: " + r.error;
        if (!r.error_description.empty()) s += " (" + r.error_description + ")";
        return s + ".";
    }
    case ReplyKind::StateMismatch:
        return "This answer does not belong to the sign-in that mailoauth started (its state does not "
               "match): it may come from an older sign-in, or from a forged request.";
    case ReplyKind::MissingState:
        return "This answer carries no state, so mailoauth cannot tell that it belongs to its sign-in.";
    case ReplyKind::MissingCode:
        return "This answer carries neither an authorization code nor an error.";
    }
    return "";
}

}  // namespace mailoauth
