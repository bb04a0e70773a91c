// The program's side of the app-only credential code: forwards to the
// network module (see http_module.h), so libcrypto and jsoncpp are loaded
// only with it.  Linked into the mailoauth program only; tests and the
// module link client_assertion.cc and jwt_claims.cc themselves.
#include "tokenhelper/client_assertion.h"
#include "tokenhelper/http_module.h"
#include "tokenhelper/jwt_claims.h"

namespace mailoauth {

bool make_client_assertion(const ClientAssertionParams& p, Secret& out, std::string& err) {
    out.clear();
    const NetModule* m = net_module(err);
    return m && m->make_client_assertion(p, out, err);
}

bool inspect_certificate(const std::string& pem, CertificateInfo& out, std::string& err) {
    const NetModule* m = net_module(err);
    return m && m->inspect_certificate(pem, out, err);
}

RolesClaim access_token_roles(std::string_view token, std::vector<std::string>& roles) {
    std::string ignored;
    const NetModule* m = net_module(ignored);
    if (!m) {
        roles.clear();
        return RolesClaim::Unknown;
    }
    return m->access_token_roles(token, roles);
}

}  // namespace mailoauth
