// Where access tokens come from.  Today: the `mailoauth get` helper run as a
// child process (helper_source.h).  Later: the mailoauth agent over its
// socket, for chrooted programs that cannot run the helper.  Both speak
// helper protocol v1, so the mechanism only sees this interface.
#ifndef MAILOAUTH_PLUGIN_TOKEN_SOURCE_H
#define MAILOAUTH_PLUGIN_TOKEN_SOURCE_H

#include "common/protocol.h"
#include "common/secret.h"

#include <string>

namespace mailoauth::plugin {

// What is asked for (helper protocol v1's request, common/protocol.h).
// rejected: protocol::token_id() of the token a server refused; the helper
// forces a refresh only while that token is still current.
using TokenRequest = protocol::Request;

enum class TokenStatus {
    Ok,
    TryAgain,  // exit 75 or a time-out: the program should defer (SASL_TRYAGAIN)
    Relogin,   // exit 77: the refresh token is gone; a person must log in again
    Config,    // exit 78: configuration problem
    Failed,    // anything else: bad reply, crash, cannot run
};

struct TokenReply {
    TokenStatus status = TokenStatus::Failed;
    Secret token;
    long long expires_at = 0;  // UTC epoch seconds
    long long lifetime = 0;    // seconds it was issued for ("lifetime"); 0: not said
    std::string user;          // the wire name for a shared mailbox, or ""
    // For a person (seterror, log): sanitized, never holds a token or the
    // helper's raw output.
    std::string message;
};

class TokenSource {
public:
    virtual ~TokenSource() = default;
    // Never throws std::exception other than std::bad_alloc.
    virtual void fetch(const TokenRequest& req, TokenReply& reply) = 0;
};

// Shared by the helper and agent sources: how a helper-protocol reply is
// read.  WHO names the peer in messages ("the token helper /usr/bin/...").

// The peer's own words for a failure: error_description (or error),
// sanitized; empty when it said nothing.
std::string peer_says(const protocol::Message& msg);

// Maps the peer's sysexits status (the helper's exit status, the agent's
// "status" key) to reply.status and a message.  Returns true only for 0,
// when the caller goes on to read the reply.  WHAT is "exit status" or
// "status", for messages.
bool accept_status(const std::string& who, unsigned long long code, const char* what,
                   const std::string& says, TokenReply& reply);

// Reads access_token, expires_at and user from a status-0 reply, checking
// each (protocol::check_token_reply, then that the token and user can go
// on the SASL wire); on success reply.status is Ok.
void read_token_reply(const std::string& who, const protocol::Message& answer, TokenReply& reply);

}  // namespace mailoauth::plugin

#endif
