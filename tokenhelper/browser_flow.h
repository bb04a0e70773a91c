// The browser sign-in: the OAuth 2.0 authorization code grant (RFC 6749
// section 4.1) with PKCE (RFC 7636) and a loopback redirect (RFC 8252), for
// tenants that block the device-code flow and for providers that refuse it
// (Google's mail scope).  No client secret is needed where the provider
// treats the app as a public client (Microsoft); Google's "Desktop app"
// registrations come with one, sent only in the token request.
//
//   1. A PKCE verifier and a state (tokenhelper/pkce.h).
//   2. A listener on http://127.0.0.1:PORT/ (tokenhelper/loopback_listener.h)
//      or, with paste, only a redirect URI on that port: the browser's
//      final page fails to load, and the person pastes its address.
//   3. The authorization URL, printed always and opened with xdg-open when
//      there is a display.
//   4. The answer judged (tokenhelper/redirect.h): our state, then a code.
//   5. The code, the verifier and the same redirect URI to the token
//      endpoint; the reply parsed like any token reply.
//
// Exit codes (tokenhelper/errors.h):
//   77  the sign-in did not complete: a wrong or missing state (possible
//       cross-site request forgery), no code, an error redirect such as
//       access_denied, a code the token endpoint refused (invalid_grant);
//   78  configuration: the provider's error says so (invalid_client,
//       unauthorized_client, invalid_scope, an AADSTS policy code), the
//       port is in use or privileged, an endpoint URL is unusable, no
//       refresh token was issued;
//   75  no answer before the deadline, network trouble, a listener failure;
//   65  what was pasted is not a redirect address at all;
//   64  extra_params tries to replace a parameter mailoauth sets itself.
// The code, the verifier and the client secret never appear in a message.
#ifndef MAILOAUTH_TOKENHELPER_BROWSER_FLOW_H
#define MAILOAUTH_TOKENHELPER_BROWSER_FLOW_H

#include <string>
#include <utility>
#include <vector>

#include "common/secret.h"
#include "tokenhelper/device_flow.h"
#include "tokenhelper/errors.h"
#include "tokenhelper/http.h"
#include "tokenhelper/oauth.h"

namespace mailoauth {

struct BrowserFlowParams {
    std::string authorization_endpoint, token_endpoint, client_id;
    Secret client_secret;            // empty for public clients (Microsoft); Google needs one
    std::string scope, account;      // account for messages ("mailoauth login ACCOUNT ...")
    std::string login_hint;          // optional
    std::vector<std::pair<std::string, std::string>> extra_params;  // e.g. Google access_type=offline, prompt=consent
    int port = 0;                    // 0: a port the kernel picks
    bool paste = false;
    long timeout_s = 300;
    HttpOptions http;
    // For explain_error_reply.  When its account is empty, the flow uses
    // "ACCOUNT --browser" (or "--paste"), so that the next step a message
    // names is the command that was run.
    ErrorContext error_context;
};

// What the person sees and does.  The default implementation uses stderr
// and stdin.
class BrowserFlowUI {
public:
    virtual ~BrowserFlowUI();
    // Prints the URL (always: the browser may be on another machine) and,
    // for paste, what to do with the address the browser ends on.
    virtual void show_url(const std::string& url, bool paste);
    // Starts xdg-open (posix_spawnp, own process group, stdio on
    // /dev/null) when DISPLAY or WAYLAND_DISPLAY is set; never waits for it.
    virtual void open_browser(const std::string& url);
    // About once a second while the listener waits: a countdown on a
    // terminal, a line a minute otherwise.
    virtual void waiting(long seconds_left);
    // One line from stdin within timeout_s; false on timeout or end of
    // input.  The line may hold a code: the caller wipes it.
    virtual bool read_pasted(std::string& line, long timeout_s);
    virtual void note(const std::string& line);
    virtual void done();

private:
    long last_line_ = -1;  // the non-terminal countdown's last line
    int browser_pid_ = -1;
};

struct BrowserFlowResult {
    int exit_code = 0;
    std::string error, message;
    TokenResponse tokens;
};

BrowserFlowResult run_browser_flow(HttpClient& http, const BrowserFlowParams& p, BrowserFlowUI& ui,
                                   const DeviceFlowClock& clock = DeviceFlowClock::real());

// The authorization URL (exposed for tests): authorization_endpoint plus
// response_type=code, client_id, redirect_uri, scope, state,
// code_challenge, code_challenge_method=S256, login_hint when set, then
// extra_params, each percent-encoded.  False with why when an extra
// parameter would replace one of these.
bool build_authorization_url(const BrowserFlowParams& p, const std::string& redirect_uri,
                             const std::string& state, const std::string& challenge, std::string& url,
                             std::string& why);

}  // namespace mailoauth

#endif
