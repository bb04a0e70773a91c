// The OAuth 2.0 device authorization grant (RFC 8628) against any
// provider's device and token endpoints: ask for a code, show it, poll
// until the person has signed in in a browser (or declined, or the code
// expired).
#ifndef MAILOAUTH_TOKENHELPER_DEVICE_FLOW_H
#define MAILOAUTH_TOKENHELPER_DEVICE_FLOW_H

#include <functional>
#include <string>

#include "common/secret.h"
#include "tokenhelper/http.h"
#include "tokenhelper/oauth.h"

namespace mailoauth {

struct Provider;

struct DeviceFlowParams {
    std::string device_endpoint;  // e.g. https://login.microsoftonline.com/TENANT/oauth2/v2.0/devicecode
    std::string token_endpoint;
    std::string authority;        // Microsoft: for the admin-consent link in messages; may be ""
    const Provider* provider = nullptr;  // whose errors; nullptr: Microsoft
    std::string client_id;
    Secret client_secret;         // sent when set (confidential clients)
    // The command that signs in with the browser instead, for the message
    // when a policy blocks the device flow ("mailoauth login A ... --browser").
    std::string browser_command;
    std::string scope;
    std::string account;     // for messages
    HttpOptions http;
};

// What the person sees.  The default implementation writes to stderr, with
// a live countdown when stderr is a terminal.
class DeviceFlowUI {
public:
    virtual ~DeviceFlowUI() = default;
    virtual void show_code(const DeviceCodeResponse& dc);
    // Called about once a second while waiting.
    virtual void waiting(long seconds_left, long interval);
    virtual void note(const std::string& line);
    virtual void done();
};

struct DeviceFlowResult {
    int exit_code = 0;
    std::string error;
    std::string message;
    TokenResponse tokens;
};

// Seams for tests: a clock (monotonic seconds) and a sleep.
struct DeviceFlowClock {
    std::function<double()> now;
    std::function<void(double)> sleep;
    static DeviceFlowClock real();
};

DeviceFlowResult run_device_flow(HttpClient& http, const DeviceFlowParams& p, DeviceFlowUI& ui,
                                 const DeviceFlowClock& clock = DeviceFlowClock::real());

}  // namespace mailoauth

#endif
