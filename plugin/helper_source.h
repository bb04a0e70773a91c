// TokenSource that runs `mailoauth get` and speaks helper protocol v1 with
// it over stdin/stdout (see mailoauth-helper(7)).
#ifndef MAILOAUTH_PLUGIN_HELPER_SOURCE_H
#define MAILOAUTH_PLUGIN_HELPER_SOURCE_H

#include "plugin/token_source.h"

#include <string>
#include <vector>

namespace mailoauth::plugin {

class HelperSource : public TokenSource {
public:
    // path: absolute path of the helper; store: passed as MAILOAUTH_STORE
    // unless the environment already has one; config_hint: the file to name
    // in messages.
    HelperSource(std::string path, long timeout_s, std::string store, std::string config_hint);
    void fetch(const TokenRequest& req, TokenReply& reply) override;

    // The helper's environment: a whitelist of the host's (MAILOAUTH_*,
    // HOME, XDG_*_HOME/XDG_RUNTIME_DIR, LANG, LC_*, TZ) plus a fixed PATH.
    static std::vector<std::string> clean_environment(const std::string& store);

private:
    std::string path_;
    long timeout_s_;
    std::string store_;
    std::string config_hint_;
};

}  // namespace mailoauth::plugin

#endif
