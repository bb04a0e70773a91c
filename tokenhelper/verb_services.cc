// `mailoauth agent` and `mailoauth connect`: the long-running services
// other programs use (see agent.h and connect.h).
#include "tokenhelper/agent.h"
#include "tokenhelper/connect.h"
#include "tokenhelper/errors.h"
#include "tokenhelper/store.h"
#include "tokenhelper/verbs.h"

namespace mailoauth {

int verb_agent(const Parsed& p, const Environment& env, HttpClient& http) {
    if (!p.positional.empty()) return usage_error("usage: mailoauth agent [--socket NAME] [--foreground]");
    agent::Options o;
    o.socket = p.value("socket");
    o.foreground = p.has("foreground");
    return agent::run(o, env, http);
}

int verb_connect(const Parsed& p, const Environment& env, HttpClient& http) {
    if (p.positional.size() != 3)
        return usage_error("usage: mailoauth connect ACCOUNT HOST PORT [--protocol imap|pop3] "
                           "[--tls implicit|starttls|none] [--ca-file PATH] [--mechanism XOAUTH2|OAUTHBEARER] "
                           "[--timeout SEC]");
    connect::Options o;
    o.account = p.positional[0];
    o.host = p.positional[1];
    o.port = p.positional[2];
    o.protocol = p.value("protocol");
    o.tls = p.value("tls");
    o.ca_file = p.value("ca-file");
    o.mechanism = p.value("mechanism");
    if (!valid_account_name(o.account)) return fail("'" + o.account + "' is not a valid account name", kExitUsage);
    if (p.has("timeout") && !parse_seconds(p.value("timeout"), 1, 600, o.timeout))
        return usage_error("--timeout must be a number of seconds from 1 to 600");
    std::string why;
    if (!connect::complete_options(o, why)) return usage_error(why);
    return connect::run(o, env, http);
}

}  // namespace mailoauth
