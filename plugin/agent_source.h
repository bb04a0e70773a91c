// TokenSource that asks the mailoauth agent over its Unix socket (helper
// protocol v1, one request and one reply per connection; the reply's
// "status" is the exit status `mailoauth get` would have had).  See
// mailoauth-agent(8).
//
// Nothing needs to exist inside a chroot but the socket, and with an
// abstract name (the default, @mailoauth-agent) not even that.  Because
// anyone could bind an abstract name first, the agent's own credentials
// are checked (SO_PEERCRED) before a request is sent: a process that is
// not the configured agent_user never gets the request, and we never take
// a token from it.
#ifndef MAILOAUTH_PLUGIN_AGENT_SOURCE_H
#define MAILOAUTH_PLUGIN_AGENT_SOURCE_H

#include "plugin/token_source.h"

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include <string>
#include <vector>

namespace mailoauth::plugin {

class AgentSource : public TokenSource {
public:
    static constexpr const char* kDefaultSocket = "@mailoauth-agent";

    // socket: agent_socket from mailoauth.conf ("" = kDefaultSocket).
    // agent_user: who the agent must run as, a name or a uid; "" means root
    // or the user "mailoauth" when it exists, else anyone.  Names are
    // resolved here, at plugin init: inside Postfix's chroot there is no
    // passwd file.  A bad value is remembered and fails every fetch.
    AgentSource(std::string socket, std::string agent_user, long timeout_s, std::string config_hint);
    void fetch(const TokenRequest& req, TokenReply& reply) override;

    // For tests: why the source cannot work, or "".
    const std::string& setup_error() const { return setup_error_; }

private:
    bool trusted(uid_t uid) const;

    std::string spec_;
    struct sockaddr_un addr_ {};
    socklen_t addr_len_ = 0;
    long timeout_s_;
    std::string config_hint_;
    std::string setup_error_;
    bool trust_any_ = false;
    std::vector<uid_t> trusted_uids_;
    std::string trusted_text_;  // "root or mailoauth", for messages
};

}  // namespace mailoauth::plugin

#endif
