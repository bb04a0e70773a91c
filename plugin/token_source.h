// Where access tokens come from.  Today: the `mailoauth get` helper run as a
// child process (helper_source.h).  Later: the mailoauth agent over its
// socket, for chrooted programs that cannot run the helper.  Both speak
// helper protocol v1, so the mechanism only sees this interface.
#ifndef MAILOAUTH_PLUGIN_TOKEN_SOURCE_H
#define MAILOAUTH_PLUGIN_TOKEN_SOURCE_H

#include "common/secret.h"

#include <string>

namespace mailoauth::plugin {

struct TokenRequest {
    std::string account;
    std::string protocol;   // SASL service: imap, pop, smtp...
    std::string host;       // serverFQDN, may be empty
    std::string port;       // may be empty
    std::string mechanism;  // XOAUTH2 or OAUTHBEARER
    bool force_refresh = false;
    // The end of the token a server refused (protocol key "rejected"): the
    // helper forces a refresh only while that token is still current.
    std::string rejected_tail;
};

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

}  // namespace mailoauth::plugin

#endif
