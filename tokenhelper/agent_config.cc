#include "tokenhelper/agent_config.h"

#include <syslog.h>

#include <cstring>
#include <utility>
#include <vector>

#include "tokenhelper/agent_log.h"

namespace mailoauth::agent {

AllowList allow_list_for(const config::Config& cfg, const std::string& account) {
    AllowList l;
    std::string ignored;
    // Validated at start; a word that does not parse allows nobody.
    parse_allow_words(cfg.get(account, "allow_users", ""), l.users, ignored);
    parse_allow_words(cfg.get(account, "allow_groups", ""), l.groups, ignored);
    return l;
}

bool check_allow_settings(const config::Config& cfg, std::string& err) {
    std::vector<std::pair<std::string, const config::Section*>> sections;
    sections.emplace_back("", &cfg.global);
    for (const auto& a : cfg.accounts) sections.emplace_back(a.first, &a.second);
    for (const auto& sec : sections) {
        for (const char* key : {"allow_users", "allow_groups"}) {
            auto it = sec.second->find(key);
            if (it == sec.second->end()) continue;
            std::vector<std::string> words;
            std::string why;
            if (!parse_allow_words(it->second.value, words, why)) {
                err = cfg.path + ":" + std::to_string(it->second.line) + ": " + key + ": " + why;
                return false;
            }
            const bool users = std::strcmp(key, "allow_users") == 0;
            for (const auto& w : words) {
                if (w.find_first_not_of("0123456789") == std::string::npos) continue;
                uid_t u;
                gid_t g;
                if (users ? lookup_user(w, u) : lookup_group(w, g)) continue;
                logmsg(LOG_WARNING, "%s:%d: %s: there is no %s '%s'; it allows nobody", cfg.path.c_str(),
                       it->second.line, key, users ? "user" : "group", w.c_str());
            }
        }
    }
    return true;
}

bool renew_enabled(const config::Config& cfg, bool& on, std::string& err) {
    on = true;
    const config::Entry* e = cfg.global.count("agent_renew") ? &cfg.global.at("agent_renew") : nullptr;
    if (!e) return true;
    if (e->value == "yes" || e->value == "true" || e->value == "1") return true;
    if (e->value == "no" || e->value == "false" || e->value == "0") {
        on = false;
        return true;
    }
    err = cfg.path + ":" + std::to_string(e->line) + ": agent_renew: '" + one_line(e->value, 100) +
          "' is neither yes nor no";
    return false;
}

}  // namespace mailoauth::agent
