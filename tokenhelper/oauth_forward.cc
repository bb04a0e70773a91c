// The program's side of the reply parsers: forwards to the network module
// (see http_module.h), so jsoncpp is loaded only with it.  Linked into the
// mailoauth program only; tests and the module link oauth.cc itself.
#include "tokenhelper/http_module.h"
#include "tokenhelper/oauth.h"

namespace mailoauth {

bool parse_device_code_response(std::string_view body, DeviceCodeResponse& out, std::string& err) {
    const NetModule* m = net_module(err);
    return m && m->parse_device_code_response(body, out, err);
}

bool parse_token_response(std::string_view body, TokenResponse& out, std::string& err) {
    const NetModule* m = net_module(err);
    return m && m->parse_token_response(body, out, err);
}

bool parse_error_response(std::string_view body, OAuthError& out) {
    std::string ignored;
    const NetModule* m = net_module(ignored);
    return m && m->parse_error_response(body, out);
}

bool parse_discovery_document(std::string_view body, DiscoveryDocument& out, std::string& err) {
    const NetModule* m = net_module(err);
    return m && m->parse_discovery_document(body, out, err);
}

}  // namespace mailoauth
