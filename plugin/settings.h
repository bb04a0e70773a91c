// The plugin's configuration, read once at plugin init: Postfix loads SASL
// plugins before it enters its chroot and drops privileges, so later the
// file may be out of reach.  A missing or broken file never makes init
// fail (that would take XOAUTH2 away from every program on the machine);
// the problem is remembered and each connection fails naming it.
#ifndef MAILOAUTH_PLUGIN_SETTINGS_H
#define MAILOAUTH_PLUGIN_SETTINGS_H

#include "common/config.h"

#include <string>

namespace mailoauth::plugin {

constexpr long kDefaultTimeout = 20;         // seconds for one helper run
constexpr long kDefaultRefreshMargin = 600;  // as the helper's default

struct Settings {
    std::string error;         // "file:line: message"; empty when usable
    config::Config cfg;
    std::string config_path;   // for messages
    std::string helper;        // absolute path
    std::string store;         // "" = the helper's default
    long timeout = kDefaultTimeout;
    int log_level = 0;

    // Reads $MAILOAUTH_CONFIG or SYSCONFDIR/mailoauth.conf, and
    // $MAILOAUTH_HELPER.  Never throws but std::bad_alloc.
    void load();

    // refresh_margin for account (its section, else global, else 600).
    bool refresh_margin(const std::string& account, long& margin, std::string& err) const;
};

}  // namespace mailoauth::plugin

#endif
