// TokenSource that runs `mailoauth get` and speaks helper protocol v1 with
// it over stdin/stdout (see mailoauth-helper(7)).
//
// When the exit status and the reply's "status" disagree, the exit status
// wins; the reply's stands in when the host program reaped the helper
// before we could (SIGCHLD ignored, or its own handler calling wait).
#ifndef MAILOAUTH_PLUGIN_HELPER_SOURCE_H
#define MAILOAUTH_PLUGIN_HELPER_SOURCE_H

#include "common/protocol.h"
#include "plugin/subprocess.h"
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
    // HOME, XDG_*_HOME/XDG_RUNTIME_DIR, LANG, LC_*, TZ) plus a fixed PATH
    // and the configured store.  secure (a setuid or setgid host,
    // config::secure_execution): none of the host's, only PATH and store.
    static std::vector<std::string> clean_environment(const std::string& store, bool secure);

    // The status to act on: the exit status when known, else the reply's
    // "status" (a host that reaps children loses the exit status), else 0
    // for a reply with a token (an older helper).  answer: the parsed
    // reply, or nullptr when it did not parse.  False when nothing says.
    static bool decide_status(const RunResult& run, const protocol::Message* answer, int& code);

private:
    std::string path_;
    long timeout_s_;
    std::string store_;
    std::string config_hint_;
};

}  // namespace mailoauth::plugin

#endif
