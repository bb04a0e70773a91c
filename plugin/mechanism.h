// The XOAUTH2 and OAUTHBEARER client state machine.
//
//   start ──step(empty)──▶ initial response sent (SASL_OK, doneflag 0)
//                                  │
//                                  ├─step(empty)──▶ done (SASL_OK, doneflag 1)
//                                  └─step(error JSON)──▶ error reply sent (SASL_CONTINUE)
//
// The initial response is the client's last word when the server accepts
// the token, so the first step returns SASL_OK, as Cyrus SASL's own PLAIN
// does: a program that follows the API strictly (nmh) takes the server's
// success as the end of the exchange, where SASL_CONTINUE would make it
// wait for one more challenge and report the success as a protocol error.
// oparams->doneflag stays 0, so libsasl2 still lets the program call
// sasl_client_step() when a server that refuses the token sends an error
// challenge (base64 JSON, decoded by the program); it must be answered
// before the server reports the failure: with an empty response for
// XOAUTH2, with a single ^A for OAUTHBEARER (RFC 7628 section 3.2.3).
//
// mbsync is the exception: after SASL_OK it refuses to pass a challenge on
// ("IMAP wants more steps despite successful SASL authentication"), leaves
// the server waiting for the reply until it drops the connection minutes
// later, and the refused token is never replaced.  In mbsync the first
// step returns SASL_CONTINUE, which it handles both ways (it calls
// sasl_client_step() once more after the server's OK).
#ifndef MAILOAUTH_PLUGIN_MECHANISM_H
#define MAILOAUTH_PLUGIN_MECHANISM_H

#include "common/secret.h"
#include "plugin/settings.h"
#include "plugin/token_cache.h"
#include "plugin/token_source.h"

#include <sasl/sasl.h>
#include <sasl/saslplug.h>

#include <memory>
#include <mutex>
#include <vector>
#include <string>

namespace mailoauth::plugin {

enum class Mech { XOAuth2, OAuthBearer };

// Process-wide state shared by every connection (the plug table's
// glob_context points at it).
struct PluginState {
    Settings settings;
    TokenCache cache;
    std::unique_ptr<TokenSource> source;

    // Re-reads the configuration and forgets cached tokens.
    void init();

    // SASL_CONTINUE rather than SASL_OK after the initial response (see
    // above); set at init from the program's name.
    bool continue_after_response = false;

    // Warnings found at init, logged once more through the first
    // connection's utils (the program's own log callback).
    void set_init_warnings(std::vector<std::string> warnings);
    void replay_init_warnings(const sasl_utils_t* utils);

private:
    std::mutex warnings_mu_;
    std::vector<std::string> init_warnings_;
};

PluginState& plugin_state();

// True for the programs that pass no challenge to the mechanism after it
// returned SASL_OK (mbsync), by the name the program was started as.
bool steps_only_after_continue(const std::string& program);

class Connection {
public:
    explicit Connection(Mech mech) : mech_(mech) {}
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    int step(sasl_client_params_t* params, const char* serverin, unsigned serverinlen,
             sasl_interact_t** prompt_need, const char** clientout, unsigned* clientoutlen,
             sasl_out_params_t* oparams);

private:
    enum class State { Start, ResponseSent, ErrorReplySent };

    int initial_response(sasl_client_params_t* params, sasl_interact_t** prompt_need,
                         const char** clientout, unsigned* clientoutlen, sasl_out_params_t* oparams);
    int error_challenge(sasl_client_params_t* params, const char* serverin, unsigned serverinlen,
                        const char** clientout, unsigned* clientoutlen);
    const char* name() const { return mech_ == Mech::XOAuth2 ? "XOAUTH2" : "OAUTHBEARER"; }

    Mech mech_;
    State state_ = State::Start;
    std::string account_;
    TokenRequest req_; // what was asked for, to ask again after a refusal
    Secret token_;     // the token sent, to mark it if the server refuses it
    std::string out_;  // what *clientout points at; holds the token: wiped
};

}  // namespace mailoauth::plugin

#endif
