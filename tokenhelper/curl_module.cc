// Entry point of mailoauth-curl.so, the module that holds the HTTP stack and
// the JSON parsers (see http_module.h for why it is a module).
//
// The program may carry its own copy of the C++ runtime, so no exception
// may cross from here into it: every entry catches everything.
#include "tokenhelper/http_module.h"

#include <new>

namespace {

using namespace mailoauth;

// CurlHttpClient whose calls never throw across the module boundary.
class GuardedClient : public CurlHttpClient {
public:
    HttpResult post_form(const std::string& url, const std::string& body,
                         const HttpOptions& opts) override {
        try {
            return CurlHttpClient::post_form(url, body, opts);
        } catch (...) {
            HttpResult r;
            r.failure = HttpFailure::Transport;
            r.error = "out of memory during the request";
            return r;
        }
    }
    HttpResult get(const std::string& url, const HttpOptions& opts) override {
        try {
            return CurlHttpClient::get(url, opts);
        } catch (...) {
            HttpResult r;
            r.failure = HttpFailure::Transport;
            r.error = "out of memory during the request";
            return r;
        }
    }
    bool check_url(const std::string& url, bool allow_loopback_http, std::string& why) override {
        try {
            return CurlHttpClient::check_url(url, allow_loopback_http, why);
        } catch (...) {
            return false;
        }
    }
};

HttpClient* new_client() {
    try {
        http_global_init();
        return new (std::nothrow) GuardedClient;
    } catch (...) {
        return nullptr;
    }
}

bool device_code(std::string_view body, DeviceCodeResponse& out, std::string& err) {
    try {
        return parse_device_code_response(body, out, err);
    } catch (...) {
        err = "out of memory";
        return false;
    }
}

bool token(std::string_view body, TokenResponse& out, std::string& err) {
    try {
        return parse_token_response(body, out, err);
    } catch (...) {
        err = "out of memory";
        return false;
    }
}

bool error_reply(std::string_view body, OAuthError& out) {
    try {
        return parse_error_response(body, out);
    } catch (...) {
        return false;
    }
}

bool client_assertion(const ClientAssertionParams& p, Secret& out, std::string& err) {
    try {
        return make_client_assertion(p, out, err);
    } catch (...) {
        out.clear();
        err = "out of memory";
        return false;
    }
}

bool certificate(const std::string& pem, CertificateInfo& out, std::string& err) {
    try {
        return inspect_certificate(pem, out, err);
    } catch (...) {
        err = "out of memory";
        return false;
    }
}

bool discovery(std::string_view body, DiscoveryDocument& out, std::string& err) {
    try {
        return parse_discovery_document(body, out, err);
    } catch (...) {
        err = "out of memory";
        return false;
    }
}

RolesClaim roles(std::string_view token, std::vector<std::string>& out) {
    try {
        return access_token_roles(token, out);
    } catch (...) {
        return RolesClaim::Unknown;
    }
}

const NetModule kTable = {sizeof(NetModule), new_client, device_code, token, error_reply, discovery,
                          client_assertion, certificate, roles};

}  // namespace

extern "C" __attribute__((visibility("default"))) const mailoauth::NetModule* mailoauth_net_module_v3() {
    return &kTable;
}
