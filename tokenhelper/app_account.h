// What status, doctor and login say about an app-only account (grant
// client_credentials): where its credential comes from and, for a
// certificate, its thumbprint and expiry.  Never any of the secret.
#ifndef MAILOAUTH_TOKENHELPER_APP_ACCOUNT_H
#define MAILOAUTH_TOKENHELPER_APP_ACCOUNT_H

#include <cstdint>
#include <string>

#include "tokenhelper/client_assertion.h"
#include "tokenhelper/provider.h"
#include "tokenhelper/store.h"

namespace mailoauth {

bool is_app_only(const AccountRecord& r);

struct AppCredentialInfo {
    std::string kind;         // "secret", "certificate", or "" when unknown (credential-from not readable)
    std::string source;       // "stored client secret", "stored certificate", "credential-from PATH"
    bool have_certificate = false;
    CertificateInfo certificate;
    std::string problem;      // the credential cannot be read or used now (plain words)
    std::string warning;      // certificate_expiry_warning, "" when more than 30 days remain
    bool expired = false;     // the certificate's notAfter has passed
};

// Reads a credential_from path as the token path would (with this
// process's $CREDENTIALS_DIRECTORY); a failure fills problem.
AppCredentialInfo describe_app_credential(const AccountRecord& r, std::int64_t now);

// RESOURCE/.default of Exchange Online in the account's cloud, e.g.
// https://outlook.office365.com/.default.
std::string app_default_scope(const Provider& provider, const ProviderSettings& s);

}  // namespace mailoauth

#endif
