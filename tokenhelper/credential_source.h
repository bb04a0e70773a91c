// Where an app-only account's credential comes from: a client secret, or a
// certificate with its private key.
//
// Two ways, chosen at `mailoauth login ACCOUNT --app`:
//
//  * Files named at login (--client-secret-file FILE, or --certificate FILE
//    --private-key FILE): read once by login, checked, and kept in the
//    account's store record, which is protected like a refresh token.
//
//  * --credential-from PATH: the store keeps PATH only, and the credential
//    is read from it at each use, so the store never holds it (the
//    administrator's secret tooling, or systemd's credentials, own it).
//    PATH is one of
//      - a directory holding either `client-secret` (the secret's value),
//        or `private-key.pem` with `certificate.pem` beside it (or with the
//        certificate inside private-key.pem itself);
//      - a file holding a PEM private key and its certificate together;
//      - any other file: its content is the client secret.
//    A PATH that begins with `$CREDENTIALS_DIRECTORY` (or
//    `${CREDENTIALS_DIRECTORY}`), written literally, takes that variable
//    from the environment of the process that uses the account, which is
//    how a systemd unit's LoadCredential= reaches the agent:
//        LoadCredential=client-secret:/etc/mailoauth/relay.secret
//        mailoauth login relay --app ... --credential-from '$CREDENTIALS_DIRECTORY'
//    (or LoadCredential=relay.pem:/etc/mailoauth/relay.pem with
//    --credential-from '$CREDENTIALS_DIRECTORY/relay.pem').
//
// Every file holding a secret or a private key is read with
// read_secret_file (secret_file.h): owned by its reader, no group or other
// permission bits, at most 64 KiB.  A certificate named with --certificate
// is public and may be world-readable.  Errors name files, never content;
// they are configuration errors (exit 78) for the caller.
#ifndef MAILOAUTH_TOKENHELPER_CREDENTIAL_SOURCE_H
#define MAILOAUTH_TOKENHELPER_CREDENTIAL_SOURCE_H

#include <string>

#include "common/secret.h"

namespace mailoauth {

struct AppCredential {
    enum class Kind { Secret, Certificate } kind = Kind::Secret;
    Secret client_secret;            // Kind::Secret
    std::string certificate_pem;     // Kind::Certificate: CERTIFICATE blocks only, never a key
    Secret private_key_pem;          // Kind::Certificate
    std::string assertion_alg = "PS256";  // or "RS256"
    std::string source;              // for status: where it was read from (no content)
};

// The names looked for inside a --credential-from directory.
constexpr const char* kCredentialSecretName = "client-secret";
constexpr const char* kCredentialKeyName = "private-key.pem";
constexpr const char* kCredentialCertName = "certificate.pem";

// --client-secret-file FILE ("-": standard input).
bool load_client_secret(const std::string& file, AppCredential& out, std::string& err);

// --certificate FILE --private-key FILE.  The key file may hold the
// certificate too, in which case cert_file may be empty.
bool load_certificate_pair(const std::string& cert_file, const std::string& key_file,
                           AppCredential& out, std::string& err);

// --credential-from PATH, at each use.  credentials_directory is the value
// of $CREDENTIALS_DIRECTORY in the caller's environment (nullptr: unset).
bool load_credential_from(const std::string& path, const char* credentials_directory,
                          AppCredential& out, std::string& err);

// PATH with a leading $CREDENTIALS_DIRECTORY / ${CREDENTIALS_DIRECTORY}
// replaced; false with err when PATH names it and it is unset or empty.
bool expand_credential_path(const std::string& path, const char* credentials_directory,
                            std::string& out, std::string& err);

// The PEM blocks of text whose label is label ("CERTIFICATE"), each from
// its BEGIN line to its END line, joined by newlines; "" when none.
std::string pem_blocks(const std::string& text, const std::string& label);

}  // namespace mailoauth

#endif
