// The agent's socket: its name, binding and listening.
#ifndef MAILOAUTH_TOKENHELPER_AGENT_LISTEN_H
#define MAILOAUTH_TOKENHELPER_AGENT_LISTEN_H

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include <string>

#include "common/socket_name.h"

namespace mailoauth::agent {

// In the abstract namespace: the same name works inside Postfix's chroot
// and outside it, and nothing is left behind when the agent dies.
constexpr const char* kDefaultSocket = "@mailoauth-agent";

// "@name" (abstract namespace) or "/absolute/path" (a filesystem socket):
// the one parser the plugin and doctor use too.
using ::mailoauth::SocketName;
using ::mailoauth::parse_socket_name;

// Binds and listens.  For a filesystem socket a leftover of a dead agent
// (connect() refused) is removed first; a live agent is left alone.
// Returns -1 and an exit status in rc on failure.
int listen_on(const SocketName& name, ino_t& inode, int& rc, std::string& err);

// Socket activation (systemd's LISTEN_FDS protocol, see sd_listen_fds(3),
// written out here: no libsystemd).  mailoauth-agent.socket binds the name
// as root from early boot and keeps it across restarts of the agent, so no
// other user can take it first; the agent inherits it as fd 3.  Always
// removes LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES from the environment.
// None: nothing passed to this process (LISTEN_PID is not ours); Taken: fd
// is the listening socket and name its address ("@name" or a path); Bad:
// something else was passed (err, exit status in rc).
enum class Activation { None, Taken, Bad };
Activation take_activated_socket(int& fd, std::string& name, int& rc, std::string& err);

// Removes our filesystem socket, unless another agent has replaced it.
void unlink_ours(const SocketName& name, ino_t inode);

}  // namespace mailoauth::agent

#endif
