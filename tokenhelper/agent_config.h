// The agent's settings in mailoauth.conf: allow_users, allow_groups and
// agent_renew.
#ifndef MAILOAUTH_TOKENHELPER_AGENT_CONFIG_H
#define MAILOAUTH_TOKENHELPER_AGENT_CONFIG_H

#include <string>

#include "common/config.h"
#include "tokenhelper/peercred.h"

namespace mailoauth::agent {

// Ties each account to its allow lists, from the configuration.
AllowList allow_list_for(const config::Config& cfg, const std::string& account);

// Checks allow_users and allow_groups in every section; warns about names
// that do not exist (a typo would silently refuse the caller).
bool check_allow_settings(const config::Config& cfg, std::string& err);

// agent_renew (global; yes or no, default yes): whether the agent renews
// the tokens of the accounts it serves before they are needed
// (agent_renew.h).  False with err naming the file and line when the value
// is neither.
bool renew_enabled(const config::Config& cfg, bool& on, std::string& err);

}  // namespace mailoauth::agent

#endif
