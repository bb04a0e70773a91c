// TokenSource that asks the mailoauth agent over its Unix socket (helper
// protocol v1, one request and one reply per connection; the reply's
// "status" is the exit status `mailoauth get` would have had).  See
// mailoauth-agent(8).
//
// Nothing needs to exist inside a chroot but the socket, and with an
// abstract name (the default, @mailoauth-agent) not even that.  Because
// anyone could bind an abstract name first, the listener's credentials are
// checked (SO_PEERCRED) before a byte is sent: only root, agent_user, the
// user "mailoauth" and this program's own effective uid (a personal agent)
// get the request, and we take tokens from no one else.
#ifndef MAILOAUTH_PLUGIN_AGENT_SOURCE_H
#define MAILOAUTH_PLUGIN_AGENT_SOURCE_H

#include "common/socket_name.h"
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
    // agent_user: a name or a uid the agent may run as, besides root, the
    // user "mailoauth" when it exists, and geteuid().  Names are resolved
    // here, at plugin init: inside Postfix's chroot there is no passwd
    // file.  A bad value is remembered and fails every fetch.
    AgentSource(std::string socket, std::string agent_user, long timeout_s, std::string config_hint);
    void fetch(const TokenRequest& req, TokenReply& reply) override;

    // Whether a listener running as uid gets the request: root, agent_user,
    // mailoauth, or geteuid() now.
    bool trusted(uid_t uid) const;

    // For tests: why the source cannot work, or "", and the uids trusted
    // besides geteuid().
    const std::string& setup_error() const { return setup_error_; }
    const std::vector<uid_t>& trusted_uids() const { return trusted_uids_; }

private:

    SocketName name_;
    long timeout_s_;
    std::string config_hint_;
    std::string setup_error_;
    std::vector<uid_t> trusted_uids_;
    std::string trusted_text_;  // "root, mailoauth", for messages
};

}  // namespace mailoauth::plugin

#endif
