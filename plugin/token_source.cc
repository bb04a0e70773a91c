#include "plugin/token_source.h"

#include "common/sanitize.h"
#include "plugin/wire.h"

namespace mailoauth::plugin {

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
    std::string why;
    if (!protocol::check_token_reply(answer, why)) {
        reply.message = who + " replied with " + why;
        return;
    }
    const std::string* token = answer.get("access_token");
    if (!wire::valid_bearer_token(*token)) {
        reply.message = who + " returned an access token with characters a bearer token cannot have";
        return;
    }
    unsigned long long expires = 0;
    protocol::parse_decimal(answer.get_or("expires_at", ""), 999999999999ull, expires);
    std::string user = answer.get_or("user", "");
    if (!user.empty() && !wire::valid_wire_name(user)) {
        reply.message = who + " returned a user name with control characters";
        return;
    }
    reply.status = TokenStatus::Ok;
    reply.token = Secret(*token);
    reply.expires_at = static_cast<long long>(expires);
    unsigned long long lifetime = 0;  // optional: an older helper does not send it
    if (protocol::parse_decimal(answer.get_or("lifetime", ""), 999999999999ull, lifetime))
        reply.lifetime = static_cast<long long>(lifetime);
    reply.user = std::move(user);
}

}  // namespace mailoauth::plugin
