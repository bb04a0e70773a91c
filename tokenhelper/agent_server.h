// One connection to the agent: read the request, check the caller against
// the account's allow lists, answer from the TokenBroker.
#ifndef MAILOAUTH_TOKENHELPER_AGENT_SERVER_H
#define MAILOAUTH_TOKENHELPER_AGENT_SERVER_H

#include <condition_variable>
#include <mutex>
#include <string>

#include "tokenhelper/agent_broker.h"

namespace mailoauth {

class HttpClient;
struct Environment;

namespace agent {

constexpr int kMaxConnections = 256;      // more are answered "busy" (status 75)
constexpr int kRequestTimeoutMs = 5000;   // to receive a request, and to send the reply

struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    int active = 0;
};

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

// Answers a caller over the connection limit at once, without reading.
void refuse_busy(int fd);

}  // namespace agent
}  // namespace mailoauth

#endif
