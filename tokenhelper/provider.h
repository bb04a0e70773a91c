// The provider seam: what mailoauth knows about one identity provider
// (Microsoft, Google, a generic OpenID Connect issuer).  A provider turns
// the sign-in settings into endpoint URLs, names its default scopes and
// mail hosts, explains its own error codes and says how long its refresh
// tokens live.  Everything else (the grants, the store, refresh) is
// provider-neutral and works from the endpoints stored in the account's
// record, so a refresh never re-derives them.
//
// Adding a provider is a file provider_NAME.cc defining one Provider and a
// row in the table in providers.cc.
#ifndef MAILOAUTH_TOKENHELPER_PROVIDER_H
#define MAILOAUTH_TOKENHELPER_PROVIDER_H

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tokenhelper/http.h"
#include "tokenhelper/oauth.h"

namespace mailoauth {

// The settings that say where an account signs in, already resolved
// (command line, record, mailoauth.conf, default; see settings.h).  Each
// provider reads the ones that concern it.
struct ProviderSettings {
    std::string cloud;                   // Microsoft: global (default), usgov, usgov-dod, china
    std::string tenant;                  // Microsoft: organizations (default), common, consumers, ID
    std::string authority;               // Microsoft: base URL replacing login host and tenant
    std::string issuer;                  // OIDC: discovery at ISSUER/.well-known/openid-configuration
    std::string token_endpoint;          // OIDC: explicit endpoints instead of discovery
    std::string device_endpoint;
    std::string authorization_endpoint;
    bool allow_insecure_http = false;    // tests: http:// to loopback
    HttpOptions http;                    // for discovery requests
};

// An account's endpoints, stored in its record at login.
struct Endpoints {
    std::string authorization;  // empty: no browser sign-in known
    std::string device;         // empty: no device flow
    std::string token;          // always set
    std::string authority;      // Microsoft: the base URL (admin-consent link); else ""
    std::string issuer;         // OIDC: the verified issuer; else ""
};

// The mail servers of a provider (for help, status and doctor).  Empty
// when not known.
struct MailHosts {
    std::string imap;
    std::string pop;
    std::string smtp;
};

// One explanation of a provider's own error: exit code (errors.h) and the
// plain words.  "{login}", "{consent}" and "{client}" are filled in by
// errors.cc (the sign-in command, the admin-consent URL, the client ID).
struct ProviderError {
    long code;          // the provider's error number (AADSTS), 0 when not numbered
    const char* word;   // or the OAuth error word it explains, nullptr when numbered
    int exit_code;
    const char* text;
};

// How long an unused refresh token lives at the provider.
struct RefreshLifetime {
    std::int64_t seconds;  // 0: no fixed limit known
    bool sliding;          // each use restarts the clock
    const char* note;      // one sentence for status and doctor, may be ""
};

struct Provider {
    const char* name;       // --provider NAME, stored in the record
    const char* title;      // for people: "Microsoft 365 / Outlook.com"
    // Fills out from s; false with why (a message with the next step) when
    // s is incomplete or the provider's metadata cannot be used.  exit_code
    // tells 64 (usage), 75 (network) or 78 (the provider's answer).
    bool (*endpoints)(const ProviderSettings& s, HttpClient& http, Endpoints& out, std::string& why,
                      int& exit_code);
    // The scopes to ask for when none are given (space separated); "" means
    // the user must give --scope.
    std::string (*default_scope)(const ProviderSettings& s);
    MailHosts (*mail_hosts)(const ProviderSettings& s);
    // The provider's explanation of e, or nullptr for the generic OAuth words.
    const ProviderError* (*explain)(const OAuthError& e);
    // Whether e means that a policy blocks the device flow (Microsoft's
    // Conditional Access "Block device code flow"); nullptr: never.
    bool (*device_flow_blocked)(const OAuthError& e);
    // "" when the device flow can be used with scope, else why not (a
    // message naming --browser).  nullptr: always usable.
    std::string (*device_flow_refusal)(const std::string& scope);
    RefreshLifetime refresh_lifetime;
    bool requires_client_secret;
    // Extra query parameters for the browser flow's authorization request,
    // "&name=value..." or "" (Google needs access_type=offline and
    // prompt=consent to hand out a refresh token).
    const char* authorize_extra;
    // Steps to register an app, shown when no client ID is given; "{account}"
    // becomes the account name.
    const char* registration_help;
};

// The provider named name, or nullptr.
const Provider* find_provider(const std::string& name);
// Microsoft: old records without a provider, and the default.
const Provider& default_provider();
// Every provider in the order of the table, for help and doctor.
std::vector<const Provider*> all_providers();
// "microsoft, google, oidc", for messages.
std::string provider_names();

// Helpers shared by the providers.
// The entry of table (n rows) whose code is among e's error codes, else
// the one whose word is e's error word, else nullptr.
const ProviderError* find_provider_error(const ProviderError* table, std::size_t n, const OAuthError& e);
// Trailing slashes removed.
std::string strip_trailing_slashes(std::string url);
// Whether the space separated scope list holds word.
bool scope_has(const std::string& scope, const std::string& word);

// Exposed for tests: the Microsoft login host and scope prefix of a cloud
// (false for an unknown cloud).
bool microsoft_cloud(const std::string& cloud, std::string& login_host, std::string& scope_prefix);

}  // namespace mailoauth

#endif
