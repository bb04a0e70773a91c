// The agent's socket: its name, binding and listening.
#ifndef MAILOAUTH_TOKENHELPER_AGENT_LISTEN_H
#define MAILOAUTH_TOKENHELPER_AGENT_LISTEN_H

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include <string>

namespace mailoauth::agent {

// In the abstract namespace: the same name works inside Postfix's chroot
// and outside it, and nothing is left behind when the agent dies.
constexpr const char* kDefaultSocket = "@mailoauth-agent";

// "@name" (abstract namespace) or "/absolute/path" (a filesystem socket).
struct SocketName {
    bool abstract = false;
    std::string spec;          // as given, for messages
    struct sockaddr_un addr {};
    socklen_t len = 0;
};
bool parse_socket_name(const std::string& spec, SocketName& out, std::string& err);

// Binds and listens.  For a filesystem socket a leftover of a dead agent
// (connect() refused) is removed first; a live agent is left alone.
// Returns -1 and an exit status in rc on failure.
int listen_on(const SocketName& name, ino_t& inode, int& rc, std::string& err);

// Removes our filesystem socket, unless another agent has replaced it.
void unlink_ours(const SocketName& name, ino_t inode);

}  // namespace mailoauth::agent

#endif
