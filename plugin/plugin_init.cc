// The C boundary: sasl_client_plug_init and the plug table.  Every function
// libsasl2 calls is a thin trampoline that lets no exception escape into C
// and turns it into a SASL code instead.  Nothing here exits, aborts or
// prints: this code runs inside Postfix, mbsync, ldapsearch...
#include "common/sasl_modules.h"
#include "plugin/log.h"
#include "plugin/mechanism.h"

#include <sasl/sasl.h>
#include <sasl/saslplug.h>

#include <cstring>
#include <new>
#include <string>
#include <vector>

namespace mailoauth::plugin {
namespace {

// Only the account (SASL_CB_AUTHNAME) is needed; libsasl2's default is the
// login name, so the mechanisms are usable by every program.  Not the
// password: listing SASL_CB_PASS would make mbsync ask a person for one.
const unsigned long kRequiredPrompts[] = {SASL_CB_AUTHNAME, SASL_CB_LIST_END};

template <typename F>
int guarded(const sasl_utils_t* utils, F&& f) noexcept {
    try {
        return f();
    } catch (const std::bad_alloc&) {
        if (utils && utils->seterror) utils->seterror(utils->conn, 0, "mailoauth: out of memory");
        return SASL_NOMEM;
    } catch (...) {
        if (utils && utils->seterror) utils->seterror(utils->conn, 0, "mailoauth: internal error");
        return SASL_FAIL;
    }
}

int mech_new(void* glob, sasl_client_params_t* params, void** conn_context, Mech mech) noexcept {
    (void)glob;
    return guarded(params ? params->utils : nullptr, [&]() -> int {
        if (params == nullptr || conn_context == nullptr) return SASL_BADPARAM;
        plugin_state().replay_init_warnings(params->utils);
        Connection* c = new (std::nothrow) Connection(mech);
        if (c == nullptr) return SASL_NOMEM;
        *conn_context = c;
        return SASL_OK;
    });
}

extern "C" {

static int xoauth2_new(void* glob, sasl_client_params_t* params, void** conn_context) {
    return mech_new(glob, params, conn_context, Mech::XOAuth2);
}

static int oauthbearer_new(void* glob, sasl_client_params_t* params, void** conn_context) {
    return mech_new(glob, params, conn_context, Mech::OAuthBearer);
}

static int mech_step(void* conn_context, sasl_client_params_t* params, const char* serverin,
                     unsigned serverinlen, sasl_interact_t** prompt_need, const char** clientout,
                     unsigned* clientoutlen, sasl_out_params_t* oparams) {
    return guarded(params ? params->utils : nullptr, [&]() -> int {
        if (conn_context == nullptr || params == nullptr || clientout == nullptr ||
            clientoutlen == nullptr || oparams == nullptr)
            return SASL_BADPARAM;
        return static_cast<Connection*>(conn_context)
            ->step(params, serverin, serverinlen, prompt_need, clientout, clientoutlen, oparams);
    });
}

static void mech_dispose(void* conn_context, const sasl_utils_t*) {
    delete static_cast<Connection*>(conn_context);  // destructors do not throw
}

static void mech_free(void*, const sasl_utils_t*) {
    // Called once per mechanism; the state is shared and lives until the
    // next init or unload, whose destructor wipes the cached tokens.
}

}  // extern "C"

// Security flags, and why.
//
// libsasl2 drops a mechanism that lacks a flag the application asks for.
// Postfix's default smtp_sasl_security_options is "noplaintext,
// noanonymous", so without SASL_SEC_NOPLAINTEXT XOAUTH2 would silently
// never be offered to Postfix.  A bearer token is not a password: it lives
// about an hour, is bound to one resource, and cannot be turned into the
// user's password, so it is not what "plaintext" protects against (PLAIN,
// LOGIN).  It is still a credential, so the man page insists on TLS
// (Exchange Online offers AUTH only after STARTTLS anyway).  NODICTIONARY:
// a token is random, there is nothing to guess.  Not NOACTIVE, MUTUAL_AUTH or
// FORWARD_SECRECY: a captured token can be replayed until it expires.
//
// Ranking: libsasl2 takes, in the server's order, the first mechanism that
// qualifies and replaces it only with one of higher max_ssf; with equal ssf
// (0 here, like every password mechanism) XOAUTH2 wins wherever the program
// restricts the list (Postfix smtp_sasl_mechanism_filter, mbsync AuthMechs,
// imtest -m) or the server lists it first.  Two modules that both register
// XOAUTH2 are not ranked at all: libsasl2 uses whichever it loaded last, in
// directory order.  So at init we look for other XOAUTH2 modules beside us
// and log a warning naming them instead of being shadowed silently.
constexpr unsigned kSecurityFlags = SASL_SEC_NOANONYMOUS | SASL_SEC_NOPLAINTEXT | SASL_SEC_NODICTIONARY;
constexpr unsigned kFeatures = SASL_FEAT_WANT_CLIENT_FIRST | SASL_FEAT_ALLOWS_PROXY;

sasl_client_plug_t g_plugs[] = {
    {"XOAUTH2", 0, kSecurityFlags, kFeatures, kRequiredPrompts, nullptr, &xoauth2_new, &mech_step,
     &mech_dispose, &mech_free, nullptr, nullptr, nullptr},
    {"OAUTHBEARER", 0, kSecurityFlags, kFeatures, kRequiredPrompts, nullptr, &oauthbearer_new,
     &mech_step, &mech_dispose, &mech_free, nullptr, nullptr, nullptr},
};

// Other modules that register XOAUTH2 or OAUTHBEARER in libsasl2's search
// path (common/sasl_modules.h): warned about, since one of them may take
// XOAUTH2 from us.
void find_rivals(const sasl_utils_t* utils, std::vector<std::string>& warnings) {
    sasl_getpath_t* getpath = nullptr;
    void* ctx = nullptr;
    if (utils->getcallback(nullptr, SASL_CB_GETPATH, reinterpret_cast<sasl_callback_ft*>(&getpath),
                           &ctx) != SASL_OK ||
        getpath == nullptr)
        return;
    const char* path = nullptr;
    if (getpath(ctx, &path) != SASL_OK || path == nullptr) return;
    for (const std::string& rival : mailoauth::sasl_modules::scan(path).rivals)
        warnings.push_back(rival +
                           " also provides XOAUTH2: libsasl2 uses whichever module it loaded "
                           "last, so this program may not get mailoauth's; remove one of them");
}

}  // namespace
}  // namespace mailoauth::plugin

extern "C" __attribute__((visibility("default"))) int sasl_client_plug_init(
    const sasl_utils_t* utils, int maxversion, int* out_version, sasl_client_plug_t** pluglist,
    int* plugcount) {
    using namespace mailoauth::plugin;
    if (utils == nullptr || out_version == nullptr || pluglist == nullptr || plugcount == nullptr)
        return SASL_BADPARAM;
    if (maxversion < SASL_CLIENT_PLUG_VERSION) {
        if (utils->seterror) utils->seterror(utils->conn, 0, "mailoauth: libsasl2 is too old");
        return SASL_BADVERS;
    }
    // Configuration problems are remembered, never returned: failing here
    // would remove XOAUTH2 from every program on the machine.
    int r = guarded(utils, [&]() -> int {
        PluginState& st = plugin_state();
        st.init();
        if (!st.settings.error.empty())
            log(utils, SASL_LOG_WARN, "XOAUTH2 and OAUTHBEARER will fail until this is fixed: %s",
                st.settings.error.c_str());
        // libsasl2 sends what a plugin logs at init to syslog, not to the
        // program's log callback: say it again on the first connection.
        std::vector<std::string> warnings;
        find_rivals(utils, warnings);
        for (const std::string& w : warnings) log(utils, SASL_LOG_WARN, "%s", w.c_str());
        st.set_init_warnings(std::move(warnings));
        return SASL_OK;
    });
    if (r != SASL_OK) return r;
    *out_version = SASL_CLIENT_PLUG_VERSION;
    *pluglist = g_plugs;
    *plugcount = 2;
    return SASL_OK;
}
