// The agent's settings in mailoauth.conf: allow_users and allow_groups.
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

}  // namespace mailoauth::agent

#endif
