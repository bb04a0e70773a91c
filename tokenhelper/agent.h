// mailoauth agent: serves helper protocol v1 on a Unix stream socket so
// that programs which cannot run the helper (Postfix's chrooted smtp
// client) get tokens without the refresh tokens being readable by them.
// See mailoauth-agent(8).
//
// One connection carries one request and one reply; the reply adds
// "status=N", the exit status `mailoauth get` would have had.  Each caller
// is checked with SO_PEERCRED when it connects, against all allow lists
// (agent_gate.h), and for the request's account against the account's
// allow_users and allow_groups (peercred.h).  Tokens are cached per account in memory and
// refreshed single-flight: in this process by TokenBroker, across processes
// by the store's lock (get_access_token).
//
// The agent's parts, one file each:
//   agent_broker    TokenBroker: the per-account cache and single flight
//   agent_server    one connection: read, check the caller, answer
//   agent_gate      who may connect at all (at accept), refusals without threads
//   agent_listen    the socket name, bind and listen
//   agent_daemon    start-up, detaching, signals, the accept loop (run)
//   agent_config    the allow_users/allow_groups settings
//   agent_log       syslog and stderr
//   agent_pool      the worker threads that serve connections
#ifndef MAILOAUTH_TOKENHELPER_AGENT_H
#define MAILOAUTH_TOKENHELPER_AGENT_H

#include <string>

// The socket name (SocketName, parse_socket_name), which doctor uses too.
#include "tokenhelper/agent_listen.h"

namespace mailoauth {

class HttpClient;
struct Environment;

namespace agent {

struct Options {
    std::string socket;        // --socket; "" = agent_socket from the config, else kDefaultSocket
    bool foreground = false;   // --foreground: do not detach; log to stderr too
};

// Serves until SIGTERM or SIGINT; returns the exit status.
int run(const Options& opts, const Environment& env, HttpClient& http);

}  // namespace agent
}  // namespace mailoauth

#endif
