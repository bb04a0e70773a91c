#include "plugin/credentials.h"

#include "plugin/log.h"

#include <cstring>

namespace mailoauth::plugin {

namespace {

// Prompt texts live as long as the process: the application reads them
// after we return SASL_INTERACT.
const char kUserChallenge[] = "Authorization Name";
const char kUserPrompt[] = "Please enter the mailbox to act as (empty: the account itself)";
const char kAuthChallenge[] = "Authentication Name";
const char kAuthPrompt[] = "Please enter the mailoauth account name";

sasl_interact_t* find_prompt(sasl_interact_t** list, unsigned long id) {
    if (list == nullptr || *list == nullptr) return nullptr;
    for (sasl_interact_t* p = *list; p->id != SASL_CB_LIST_END; ++p)
        if (p->id == id) return p;
    return nullptr;
}

std::string prompt_value(const sasl_interact_t* p) {
    if (p->result == nullptr) return "";
    const char* s = static_cast<const char*>(p->result);
    return p->len ? std::string(s, ::strnlen(s, p->len)) : std::string(s);
}

// Whether the application itself listed id for this connection (as
// opposed to libsasl2's built-in default, which for SASL_CB_AUTHNAME is the
// Unix login name: not an account when the program gave SASL_CB_USER only).
bool app_lists(const sasl_client_params_t* params, unsigned long id) {
    for (const sasl_callback_t* cb = params->prompt_supp; cb && cb->id != SASL_CB_LIST_END; ++cb)
        if (cb->id == id) return true;
    return false;
}

enum class Got { Value, Absent, Interact, Error };

// One simple string from the callback id.  sets value on Got::Value.
Got get_simple(const sasl_utils_t* utils, unsigned long id, std::string& value, int& err) {
    sasl_getsimple_t* proc = nullptr;
    void* ctx = nullptr;
    int r = utils->getcallback(utils->conn, id, reinterpret_cast<sasl_callback_ft*>(&proc), &ctx);
    if (r == SASL_INTERACT) return Got::Interact;
    if (r != SASL_OK || proc == nullptr) return Got::Absent;
    const char* s = nullptr;
    unsigned len = 0;
    r = proc(ctx, static_cast<int>(id), &s, &len);
    if (r != SASL_OK) {
        err = r;
        return Got::Error;
    }
    if (s == nullptr) return Got::Absent;
    value = len ? std::string(s, ::strnlen(s, len)) : std::string(s);
    return Got::Value;
}

}  // namespace

int get_credentials(sasl_client_params_t* params, sasl_interact_t** prompt_need, Credentials& creds) {
    const sasl_utils_t* utils = params->utils;
    bool need_user = false, need_auth = false;
    int err = SASL_OK;

    // Answers to an earlier SASL_INTERACT come first.
    sasl_interact_t* up = find_prompt(prompt_need, SASL_CB_USER);
    sasl_interact_t* ap = find_prompt(prompt_need, SASL_CB_AUTHNAME);
    bool have_user = false, have_auth = false;
    if (up) {
        creds.authzid = prompt_value(up);
        have_user = true;
    }
    if (ap) {
        creds.account = prompt_value(ap);
        have_auth = true;
    }
    if (prompt_need && *prompt_need) {
        utils->free(*prompt_need);
        *prompt_need = nullptr;
    }

    if (!have_user) {
        switch (get_simple(utils, SASL_CB_USER, creds.authzid, err)) {
        case Got::Value: break;
        case Got::Absent: creds.authzid.clear(); break;
        case Got::Interact: need_user = true; break;
        case Got::Error:
            fail(utils, SASL_LOG_ERR, "the application's SASL_CB_USER callback failed");
            return err;
        }
    }
    if (!have_auth) {
        if (!app_lists(params, SASL_CB_AUTHNAME) && !need_user && !creds.authzid.empty()) {
            // Only SASL_CB_USER given: that name is the account.
            creds.account = creds.authzid;
        } else {
            switch (get_simple(utils, SASL_CB_AUTHNAME, creds.account, err)) {
            case Got::Value: break;
            case Got::Absent: creds.account.clear(); break;
            case Got::Interact: need_auth = true; break;
            case Got::Error:
                fail(utils, SASL_LOG_ERR, "the application's SASL_CB_AUTHNAME callback failed");
                return err;
            }
        }
    }

    if (need_user || need_auth) {
        int n = 1 + (need_user ? 1 : 0) + (need_auth ? 1 : 0);
        auto* prompts = static_cast<sasl_interact_t*>(utils->malloc(sizeof(sasl_interact_t) * n));
        if (prompts == nullptr) return SASL_NOMEM;
        std::memset(prompts, 0, sizeof(sasl_interact_t) * n);
        sasl_interact_t* p = prompts;
        if (need_user) {
            p->id = SASL_CB_USER;
            p->challenge = kUserChallenge;
            p->prompt = kUserPrompt;
            ++p;
        }
        if (need_auth) {
            p->id = SASL_CB_AUTHNAME;
            p->challenge = kAuthChallenge;
            p->prompt = kAuthPrompt;
            ++p;
        }
        p->id = SASL_CB_LIST_END;
        *prompt_need = prompts;
        return SASL_INTERACT;
    }

    if (creds.account.empty()) {
        fail(utils, SASL_LOG_ERR,
             "no account name: the SASL authentication name must be the mailoauth account "
             "(for example the user name in Postfix's smtp_sasl_password_maps)");
        return SASL_BADPARAM;
    }
    return SASL_OK;
}

}  // namespace mailoauth::plugin
