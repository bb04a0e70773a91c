// Who is logging in: the SASL authentication name (the mailoauth account)
// and the optional authorization name (the mailbox to act as), taken from
// the application's callbacks or, when it registered the ids without
// procedures (mbsync), through SASL_INTERACT prompts, the way Cyrus's own
// plugins (plugins/plain.c) do.
//
// The password is never asked for: the token comes from the helper.  Asking
// would make mbsync run PassCmd or prompt a person for nothing.
#ifndef MAILOAUTH_PLUGIN_CREDENTIALS_H
#define MAILOAUTH_PLUGIN_CREDENTIALS_H

#include <sasl/sasl.h>
#include <sasl/saslplug.h>

#include <string>

namespace mailoauth::plugin {

struct Credentials {
    std::string account;  // SASL authname (or SASL_CB_USER when only that is given)
    std::string authzid;  // SASL_CB_USER; empty when not given
};

// Returns SASL_OK with creds filled; SASL_INTERACT with *prompt_need set to
// a prompt list the application must answer before calling again; or an
// error with seterror set.  Consumes (frees) an answered prompt list.
int get_credentials(sasl_client_params_t* params, sasl_interact_t** prompt_need, Credentials& creds);

}  // namespace mailoauth::plugin

#endif
