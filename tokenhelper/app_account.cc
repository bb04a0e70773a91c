#include "tokenhelper/app_account.h"

#include <cstdlib>

#include "common/sanitize.h"
#include "tokenhelper/app_errors.h"
#include "tokenhelper/app_token.h"
#include "tokenhelper/credential_source.h"

namespace mailoauth {

bool is_app_only(const AccountRecord& r) { return r.grant == "client_credentials"; }

AppCredentialInfo describe_app_credential(const AccountRecord& r, std::int64_t now) {
    AppCredentialInfo out;
    std::string pem;
    if (!r.credential_from.empty()) {
        out.source = "credential-from " + sanitize::text(r.credential_from, 300) + " (read at each use)";
        AppCredential cred;
        std::string err;
        if (!load_credential_from(r.credential_from, std::getenv("CREDENTIALS_DIRECTORY"), cred, err)) {
            out.problem = "cannot be read here: " + err;
            return out;
        }
        out.kind = cred.kind == AppCredential::Kind::Secret ? "secret" : "certificate";
        pem = cred.certificate_pem;
    } else if (!r.private_key_pem.empty()) {
        out.kind = "certificate";
        out.source = "stored certificate";
        pem = r.certificate_pem;
    } else if (!r.client_secret.empty()) {
        out.kind = "secret";
        out.source = "stored client secret";
    } else {
        out.source = "none stored";
        out.problem = "no credential is stored; sign in again with mailoauth login " + r.account + " --app ...";
        return out;
    }
    if (out.kind != "certificate") return out;
    std::string err;
    if (!inspect_certificate(pem, out.certificate, err)) {
        out.problem = "the certificate cannot be read: " + err;
        return out;
    }
    out.have_certificate = true;
    out.expired = out.certificate.not_after <= now;
    out.warning = certificate_expiry_warning(out.certificate.not_after, now, out.certificate.sha1_hex);
    return out;
}

std::string app_default_scope(const Provider& provider, const ProviderSettings& s) {
    MailHosts h = provider.mail_hosts ? provider.mail_hosts(s) : MailHosts();
    if (h.imap.empty()) return kAppDefaultScope;
    return "https://" + h.imap + "/.default";
}

}  // namespace mailoauth
