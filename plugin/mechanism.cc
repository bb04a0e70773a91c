#include "plugin/mechanism.h"

#include "common/sanitize.h"
#include "plugin/agent_source.h"
#include "plugin/credentials.h"
#include "plugin/helper_source.h"
#include "plugin/log.h"
#include "plugin/wire.h"

#include <algorithm>
#include <cerrno>
#include <ctime>

namespace mailoauth::plugin {

PluginState& plugin_state() {
    static PluginState state;
    return state;
}

bool steps_only_after_continue(const std::string& program) {
    const std::string::size_type slash = program.rfind('/');
    const std::string base = slash == std::string::npos ? program : program.substr(slash + 1);
    return base == "mbsync";
}

void PluginState::init() {
    cache.clear();
    // glibc's name of the program as started (argv[0] without directories).
    continue_after_response = steps_only_after_continue(program_invocation_short_name);
    settings.load();
    set_log_level(settings.error.empty() ? settings.log_level : SASL_LOG_NOTE);
    // agent_socket in mailoauth.conf: ask the agent (nothing to run, so it
    // works inside a chroot); otherwise run the helper.
    if (const config::Entry* e = settings.cfg.lookup("", "agent_socket"))
        source.reset(new AgentSource(e->value, settings.cfg.get("", "agent_user", ""), settings.timeout,
                                     settings.config_path));
    else
        source.reset(new HelperSource(settings.helper, settings.timeout, settings.store,
                                      settings.config_path));
}

void PluginState::set_init_warnings(std::vector<std::string> warnings) {
    std::lock_guard<std::mutex> lock(warnings_mu_);
    init_warnings_ = std::move(warnings);
}

void PluginState::replay_init_warnings(const sasl_utils_t* utils) {
    std::vector<std::string> w;
    {
        std::lock_guard<std::mutex> lock(warnings_mu_);
        if (init_warnings_.empty()) return;
        w.swap(init_warnings_);
    }
    for (const std::string& m : w) log(utils, SASL_LOG_WARN, "%s", m.c_str());
}

Connection::~Connection() {
    wipe_string(out_);
}

int Connection::step(sasl_client_params_t* params, const char* serverin, unsigned serverinlen,
                     sasl_interact_t** prompt_need, const char** clientout, unsigned* clientoutlen,
                     sasl_out_params_t* oparams) {
    *clientout = nullptr;
    *clientoutlen = 0;
    switch (state_) {
    case State::Start:
        if (serverinlen != 0) {
            fail(params->utils, SASL_LOG_ERR,
                 std::string(name()) + ": the server sent data before the client's first message");
            return SASL_BADPROT;
        }
        return initial_response(params, prompt_need, clientout, clientoutlen, oparams);
    case State::ResponseSent:
        if (serverinlen == 0) {
            // The server accepted the token (or the application asks us to
            // finish): nothing more to send.
            wipe_string(out_);
            oparams->doneflag = 1;
            return SASL_OK;
        }
        return error_challenge(params, serverin, serverinlen, clientout, clientoutlen);
    case State::ErrorReplySent:
        break;
    }
    fail(params->utils, SASL_LOG_ERR,
         std::string(name()) + ": the server sent another challenge after refusing the token");
    return SASL_BADPROT;
}

int Connection::initial_response(sasl_client_params_t* params, sasl_interact_t** prompt_need,
                                 const char** clientout, unsigned* clientoutlen,
                                 sasl_out_params_t* oparams) {
    const sasl_utils_t* utils = params->utils;
    PluginState& st = plugin_state();
    if (!st.settings.error.empty()) {
        fail(utils, SASL_LOG_ERR, "cannot use the configuration: " + st.settings.error);
        return SASL_FAIL;
    }

    Credentials creds;
    int r = get_credentials(params, prompt_need, creds);
    if (r != SASL_OK) return r;
    account_ = creds.account;
    const std::string acct = sanitize::text(account_, 200);

    // libsasl2 insists that a mechanism names both identities.
    if (!creds.authzid.empty()) {
        r = params->canon_user(utils->conn, creds.authzid.c_str(), 0, SASL_CU_AUTHZID, oparams);
        if (r == SASL_OK)
            r = params->canon_user(utils->conn, account_.c_str(), 0, SASL_CU_AUTHID, oparams);
    } else {
        r = params->canon_user(utils->conn, account_.c_str(), 0, SASL_CU_AUTHID | SASL_CU_AUTHZID,
                               oparams);
    }
    if (r != SASL_OK) return r;

    long margin = kDefaultRefreshMargin;
    std::string err;
    if (!st.settings.refresh_margin(account_, margin, err)) {
        fail(utils, SASL_LOG_ERR, "cannot use the configuration: " + err);
        return SASL_FAIL;
    }

    TokenRequest& req = req_;
    req.account = account_;
    req.protocol = params->service ? std::string(params->service, params->servicelen) : "";
    req.host = params->serverFQDN ? std::string(params->serverFQDN, params->slen) : "";
    req.port = params->ipremoteport ? wire::port_of(std::string_view(params->ipremoteport, params->ipremlen))
                                    : "";
    req.mechanism = name();

    std::string wire_user;
    const long long now = static_cast<long long>(std::time(nullptr));
    TokenCache::Hit hit;
    if (st.cache.lookup(account_, now, margin, hit)) {
        token_ = std::move(hit.token);
        wire_user = hit.user;
        log(utils, SASL_LOG_DEBUG, "%s for account %s: cached token %s, valid for %lld s more",
            name(), acct.c_str(), token_.fingerprint().c_str(), hit.expires_at - now);
    } else {
        req.force_refresh = st.cache.rejected(account_);
        TokenReply reply;
        st.source->fetch(req, reply);
        switch (reply.status) {
        case TokenStatus::Ok:
            break;
        case TokenStatus::TryAgain:
            fail(utils, SASL_LOG_WARN,
                 "temporary failure getting a token for account " + acct + ": " + reply.message +
                     "; try again later");
            return SASL_TRYAGAIN;
        case TokenStatus::Relogin:
            fail(utils, SASL_LOG_ERR,
                 "account " + acct + " must log in again: " + reply.message + ". Run 'mailoauth login " +
                     acct + "' as the user this program runs as");
            return SASL_FAIL;
        case TokenStatus::Config:
            // The message says what to fix (the helper's explanation, or the
            // agent's "not allowed by mailoauth.conf").
            fail(utils, SASL_LOG_ERR,
                 "configuration problem for account " + acct + ": " + reply.message +
                     ". Once it is fixed, sign in again if the account needs it: mailoauth login " + acct);
            return SASL_FAIL;
        case TokenStatus::Failed:
            fail(utils, SASL_LOG_ERR, "no token for account " + acct + ": " + reply.message);
            return SASL_FAIL;
        }
        log(utils, SASL_LOG_DEBUG, "%s for account %s: token %s from the helper%s, expires in %lld s",
            name(), acct.c_str(), reply.token.fingerprint().c_str(),
            req.force_refresh ? " (forced refresh)" : "", reply.expires_at - now);
        st.cache.store(account_, reply.token, reply.expires_at, reply.user, now, margin, reply.lifetime);
        token_ = std::move(reply.token);
        wire_user = reply.user;
    }

    // The name on the wire: the helper's (a shared mailbox), else the
    // mailbox the application asked to act as, else the account.
    if (wire_user.empty()) wire_user = creds.authzid.empty() ? account_ : creds.authzid;
    if (!wire::valid_wire_name(wire_user)) {
        fail(utils, SASL_LOG_ERR, "the user name for account " + acct + " has control characters");
        return SASL_BADPARAM;
    }

    wipe_string(out_);
    if (mech_ == Mech::XOAuth2)
        wire::build_xoauth2(out_, wire_user, token_.reveal());
    else
        wire::build_oauthbearer(out_, wire_user, req.host, req.port, token_.reveal());
    *clientout = out_.data();
    *clientoutlen = static_cast<unsigned>(out_.size());

    oparams->doneflag = 0;
    oparams->mech_ssf = 0;
    oparams->maxoutbuf = 0;
    oparams->encode_context = nullptr;
    oparams->encode = nullptr;
    oparams->decode_context = nullptr;
    oparams->decode = nullptr;
    oparams->param_version = 0;
    state_ = State::ResponseSent;
    // Done as far as this side knows (see mechanism.h); doneflag stays 0 so
    // that an error challenge can still be answered.
    return st.continue_after_response ? SASL_CONTINUE : SASL_OK;
}

int Connection::error_challenge(sasl_client_params_t* params, const char* serverin,
                                unsigned serverinlen, const char** clientout,
                                unsigned* clientoutlen) {
    const sasl_utils_t* utils = params->utils;
    PluginState& st = plugin_state();
    wire::ErrorChallenge ch = wire::parse_error_challenge(std::string_view(serverin, serverinlen));
    const std::string acct = sanitize::text(account_, 200);
    std::string what;
    if (ch.json) {
        what = "status " + (ch.status.empty() ? std::string("?") : ch.status);
        if (!ch.schemes.empty()) what += ", schemes " + ch.schemes;
        if (!ch.scope.empty()) what += ", scope " + ch.scope;
    } else {
        what = "a challenge that is not JSON";
    }
    st.cache.mark_rejected(account_, token_);
    fail(utils, SASL_LOG_WARN,
         "the server refused the " + std::string(name()) + " token " + token_.fingerprint() +
             " for account " + acct + " (" + what + "); asking the helper for a new one");

    // Replace the refused token now, not on this process's next attempt:
    // the next attempt may come from another process (imtest, mbsync, a new
    // Postfix smtp), which would otherwise be handed the same cached token
    // by the helper until it expires.  Naming the refused token lets the
    // helper refresh once however many processes report it.  By a hash,
    // never by characters of the token: whoever answers may not be who we
    // think (a refused token can still be valid elsewhere).
    req_.force_refresh = true;
    req_.rejected = protocol::token_id(token_.reveal());
    token_.clear();
    long margin = kDefaultRefreshMargin;
    std::string err;
    st.settings.refresh_margin(account_, margin, err);
    TokenReply reply;
    st.source->fetch(req_, reply);
    req_.rejected.clear();
    if (reply.status == TokenStatus::Ok) {
        const long long now = static_cast<long long>(std::time(nullptr));
        st.cache.store(account_, reply.token, reply.expires_at, reply.user, now, margin, reply.lifetime);
        log(utils, SASL_LOG_NOTE, "%s for account %s: new token %s ready for the next attempt", name(),
            acct.c_str(), reply.token.fingerprint().c_str());
    } else {
        log(utils, SASL_LOG_WARN, "%s for account %s: no new token yet: %s", name(), acct.c_str(),
            reply.message.c_str());
    }

    // The protocol's answer to an error challenge; the server then reports
    // the failure.
    wipe_string(out_);
    if (mech_ == Mech::OAuthBearer) out_.assign(1, '\x01');
    *clientout = out_.data();
    *clientoutlen = static_cast<unsigned>(out_.size());
    state_ = State::ErrorReplySent;
    return SASL_CONTINUE;
}

}  // namespace mailoauth::plugin
