// The OAuth 2.0 device authorization grant (RFC 8628) against the Microsoft
// identity platform v2.0: ask for a code, show it, poll until the person
// has signed in in a browser (or declined, or the code expired).
#ifndef MAILOAUTH_TOKENHELPER_DEVICE_FLOW_H
#define MAILOAUTH_TOKENHELPER_DEVICE_FLOW_H

#include <functional>
#include <string>

#include "tokenhelper/http.h"
#include "tokenhelper/oauth.h"

namespace mailoauth {

struct DeviceFlowParams {
    std::string authority;   // https://login.microsoftonline.com/TENANT
    std::string client_id;
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
