// The agent's socket name, as written in mailoauth.conf (agent_socket) and
// on the agent's command line: "@NAME" for Linux's abstract namespace (no
// file, so it reaches into Postfix's chroot without anything copied there)
// or "/absolute/path" for a filesystem socket.  One parser for the plugin,
// the agent and doctor, so they can never disagree about an address.
#ifndef MAILOAUTH_COMMON_SOCKET_NAME_H
#define MAILOAUTH_COMMON_SOCKET_NAME_H

#include <sys/socket.h>
#include <sys/un.h>

#include <string>

namespace mailoauth {

struct SocketName {
    bool abstract = false;
    std::string spec;          // as given, for messages
    struct sockaddr_un addr {};
    socklen_t len = 0;         // the address length to pass to bind/connect
};

// An abstract name: no NUL terminator, sun_path[0] is NUL and the length
// counts exactly the name, which may hold no space or control character
// (it is shown in logs and ss(8)).  A path: NUL-terminated, the length
// includes the terminator.  Either must fit sun_path (107 bytes of name).
// On failure err says what to write instead.
bool parse_socket_name(const std::string& spec, SocketName& out, std::string& err);

}  // namespace mailoauth

#endif
