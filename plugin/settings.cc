#include "plugin/settings.h"

#include "plugin/log.h"


namespace mailoauth::plugin {

void Settings::load() {
    *this = Settings();
    log_level = SASL_LOG_NOTE;
    bool explicit_path = false;
    config_path = config::default_path(explicit_path);
    config::Error err;
    if (!config::load_file(config_path, !explicit_path, cfg, err)) {
        error = err.describe();
        if (!explicit_path && err.line == 0) error += " (set MAILOAUTH_CONFIG to use another file)";
        return;
    }

    config::HelperChoice h = config::plugin_helper(cfg);
    if (!h.error.empty()) {
        error = h.error;
        return;
    }
    helper = h.path;

    store = cfg.get("", "store", "");
    if (!config::get_int(cfg, "", "timeout", 1, 600, kDefaultTimeout, timeout, err)) {
        error = err.describe();
        return;
    }
    if (const config::Entry* e = cfg.lookup("", "log_level")) {
        if (!parse_log_level(e->value, log_level)) {
            error = config_path + ":" + std::to_string(e->line) + ": unknown log_level '" + e->value +
                    "' (none, error, warning, notice, debug or trace)";
            return;
        }
    }
    // Catch a bad global refresh_margin now rather than on first use.
    long margin = 0;
    std::string merr;
    if (!refresh_margin("", margin, merr)) error = merr;
}

bool Settings::refresh_margin(const std::string& account, long& margin, std::string& err) const {
    config::Error e;
    if (!config::get_int(cfg, account, "refresh_margin", 0, 86400, kDefaultRefreshMargin, margin, e)) {
        err = e.describe();
        return false;
    }
    return true;
}

}  // namespace mailoauth::plugin
