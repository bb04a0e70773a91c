// One connection to the agent: read the request, check the caller against
// the account's allow lists, answer from the TokenBroker.
#ifndef MAILOAUTH_TOKENHELPER_AGENT_SERVER_H
#define MAILOAUTH_TOKENHELPER_AGENT_SERVER_H

#include <string>

#include "tokenhelper/agent_broker.h"

namespace mailoauth {

class HttpClient;
struct Environment;

namespace agent {

constexpr int kMaxConnections = 256;       // more are answered "busy" (status 75)
// Per uid other than root and the agent's own, so that one allowed user
// (or a program of it gone wrong) cannot take every connection.
constexpr int kMaxConnectionsPerUid = 128;
// A caller sends its request as soon as it is connected; one that dawdles
// holds a thread, so it gets little time.
constexpr int kReadTimeoutMs = 2000;
constexpr int kRequestTimeoutMs = 5000;    // to send the reply

class Server {
public:
    Server(const Environment& env, HttpClient& http);
    void serve(int fd);
    TokenBroker& broker() { return broker_; }

private:
    Outcome fetch(const std::string& account, bool force, const std::string& rejected_tail);
    bool peek(const std::string& account, Outcome& out);
    std::string version(const std::string& account);

    const Environment& env_;
    HttpClient& http_;
    TokenBroker broker_;
};

}  // namespace agent
}  // namespace mailoauth

#endif
