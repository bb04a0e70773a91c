#include "plugin/token_source.h"

#include "common/sanitize.h"
#include "plugin/wire.h"

namespace mailoauth::plugin {

bool build_request(const TokenRequest& req, protocol::Message& msg) {
    bool ok = msg.set("version", "1") && msg.set("account", req.account) &&
              msg.set("protocol", req.protocol);
    if (ok && !req.host.empty()) ok = msg.set("host", req.host);
    if (ok && !req.port.empty()) ok = msg.set("port", req.port);
    if (ok) ok = msg.set("mechanism", req.mechanism);
    if (ok && req.force_refresh) ok = msg.set("force_refresh", "1");
    if (ok && !req.rejected_tail.empty()) ok = msg.set("rejected", req.rejected_tail);
    return ok;
}

bool parse_decimal(const std::string& s, unsigned long long max, unsigned long long& out) {
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

std::string peer_says(const protocol::Message& msg) {
    std::string d = msg.get_or("error_description", "");
    if (d.empty()) d = msg.get_or("error", "");
    return sanitize::text(d, 300);
}

bool accept_status(const std::string& who, unsigned long long code, const char* what,
                   const std::string& says, TokenReply& reply) {
    const std::string because = says.empty() ? std::string() : ": " + says;
    switch (code) {
    case 0:
        return true;
    case 75:
        reply.status = TokenStatus::TryAgain;
        reply.message = who + " reports a temporary failure" + because;
        return false;
    case 77:
        reply.status = TokenStatus::Relogin;
        reply.message = says.empty() ? std::string("the stored login is no longer valid") : says;
        return false;
    case 78:
        reply.status = TokenStatus::Config;
        reply.message = says.empty() ? std::string("configuration error") : says;
        return false;
    case 64:
    case 65:
        reply.message = who + " refused the request (" + what + " " + std::to_string(code) + ")" + because;
        return false;
    default:
        reply.message = who + " failed with " + what + " " + std::to_string(code) + because;
        return false;
    }
}

void read_token_reply(const std::string& who, const protocol::Message& answer, TokenReply& reply) {
    if (answer.has("error")) {
        reply.message = who + " reports an error: " + peer_says(answer);
        return;
    }
    const std::string* token = answer.get("access_token");
    if (token == nullptr || token->empty()) {
        reply.message = who + " replied without an access_token";
        return;
    }
    if (!wire::valid_bearer_token(*token)) {
        reply.message = who + " returned an access token with characters a bearer token cannot have";
        return;
    }
    unsigned long long expires = 0;
    if (!parse_decimal(answer.get_or("expires_at", ""), 999999999999ull, expires)) {
        reply.message = who + " replied without a valid expires_at";
        return;
    }
    std::string user = answer.get_or("user", "");
    if (!user.empty() && !wire::valid_wire_name(user)) {
        reply.message = who + " returned a user name with control characters";
        return;
    }
    reply.status = TokenStatus::Ok;
    reply.token = Secret(*token);
    reply.expires_at = static_cast<long long>(expires);
    reply.user = std::move(user);
}

}  // namespace mailoauth::plugin
