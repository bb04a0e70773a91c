#include "tokenhelper/settings.h"

#include <cstdlib>

#include "tokenhelper/store.h"

namespace mailoauth {

long Environment::refresh_margin(const std::string& account) const {
    if (cli_refresh_margin >= 0) return cli_refresh_margin;
    long v = kDefaultRefreshMargin;
    config::Error e;
    // Validated in load_environment for the global value; an account value
    // that does not parse falls back to the default rather than failing a
    // token request on a typo that `mailoauth status` would report.
    if (!config::get_int(cfg, account, "refresh_margin", 0, 86400, kDefaultRefreshMargin, v, e))
        v = kDefaultRefreshMargin;
    return v;
}

bool load_environment(const GlobalOptions& opts, Environment& env, std::string& err) {
    bool explicit_ = false;
    std::string path = opts.config_path;
    if (path.empty()) path = config::default_path(explicit_);
    else explicit_ = true;
    config::Error cerr;
    if (!config::load_file(path, !explicit_, env.cfg, cerr)) {
        err = cerr.describe();
        return false;
    }
    long v = 0;
    if (!config::get_int(env.cfg, "", "http_timeout", 1, 600, kDefaultHttpTimeout, v, cerr)) {
        err = cerr.describe();
        return false;
    }
    env.http_timeout = opts.http_timeout > 0 ? opts.http_timeout : v;
    if (!config::get_int(env.cfg, "", "refresh_margin", 0, 86400, kDefaultRefreshMargin, v, cerr)) {
        err = cerr.describe();
        return false;
    }
    env.cli_refresh_margin = opts.refresh_margin;

    const char* from_env = std::getenv("MAILOAUTH_STORE");
    if (!opts.store_dir.empty()) env.store_dir = opts.store_dir;
    else if (from_env && *from_env) env.store_dir = from_env;
    else if (const config::Entry* e = env.cfg.lookup("", "store")) env.store_dir = e->value;
    else env.store_dir = default_store_dir();
    if (env.store_dir.empty() || env.store_dir[0] != '/') {
        err = "the store directory must be an absolute path (got '" + env.store_dir +
              "'); set --store, MAILOAUTH_STORE or 'store' in " + env.cfg.path;
        return false;
    }
    return true;
}

Setting resolve_setting(const SettingInputs& in) {
    if (in.command_line) return {*in.command_line, SettingSource::CommandLine};
    if (in.record && !in.record->empty()) return {*in.record, SettingSource::Record};
    if (in.config_account) return {*in.config_account, SettingSource::ConfigAccount};
    if (in.config_global) return {*in.config_global, SettingSource::ConfigGlobal};
    return {in.fallback, SettingSource::Default};
}

const char* setting_source_name(SettingSource s) {
    switch (s) {
    case SettingSource::CommandLine: return "command line";
    case SettingSource::Record: return "stored record";
    case SettingSource::ConfigAccount: return "mailoauth.conf [account]";
    case SettingSource::ConfigGlobal: return "mailoauth.conf";
    case SettingSource::Default: break;
    }
    return "default";
}

void config_inputs(const config::Config& cfg, const std::string& account, const std::string& key,
                   SettingInputs& in) {
    auto sec = cfg.accounts.find(account);
    if (sec != cfg.accounts.end()) {
        auto e = sec->second.find(key);
        if (e != sec->second.end()) in.config_account = e->second.value;
    }
    auto g = cfg.global.find(key);
    if (g != cfg.global.end()) in.config_global = g->second.value;
}

std::string normalize_scope(const std::string& scope) {
    std::string out;
    std::string word;
    auto flush = [&] {
        if (word.empty()) return;
        if (!out.empty()) out += ' ';
        out += word;
        word.clear();
    };
    for (char c : scope) {
        if (c == ' ' || c == ',' || c == '\t' || c == '\n') flush();
        else word += c;
    }
    flush();
    return out;
}

HttpOptions http_options(const Environment& env, const std::string& ca_file, bool allow_insecure_http) {
    HttpOptions o;
    o.ca_file = ca_file;
    o.total_timeout_ms = env.http_timeout * 1000;
    o.connect_timeout_ms = std::min<long>(10000, o.total_timeout_ms);
    o.allow_loopback_http = allow_insecure_http;
    return o;
}

}  // namespace mailoauth
