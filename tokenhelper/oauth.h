// Parsers for the identity provider's JSON replies (device authorization,
// token and error responses).  Bodies are untrusted: jsoncpp with limits,
// strict types, unknown fields ignored, expires_in as number or string,
// Google's "verification_url" spelling accepted.
#ifndef MAILOAUTH_TOKENHELPER_OAUTH_H
#define MAILOAUTH_TOKENHELPER_OAUTH_H

#include <string>
#include <string_view>
#include <vector>

#include "common/secret.h"

namespace mailoauth {

struct DeviceCodeResponse {
    Secret device_code;
    std::string user_code;
    std::string verification_uri;
    std::string verification_uri_complete;  // optional
    long expires_in = 0;                    // seconds
    long interval = 5;                      // seconds; default per RFC 8628
    std::string message;                    // Microsoft's ready-made text, optional
};

struct TokenResponse {
    Secret access_token;
    Secret refresh_token;                   // may be empty (not rotated)
    std::string token_type;                 // "Bearer"
    long expires_in = 0;
    std::string scope;
    std::string id_token_username;          // preferred_username from id_token, if any
};

struct OAuthError {
    int http_status = 0;
    std::string error;                      // "invalid_grant", "authorization_pending", ...
    std::string error_description;
    std::vector<long> error_codes;          // AADSTS numbers
    std::string trace_id;
    std::string correlation_id;
    std::string timestamp;
};

// Each returns false with a short reason in err when the body is not valid
// JSON, not an object, lacks a required field or has one of the wrong type.
bool parse_device_code_response(std::string_view body, DeviceCodeResponse& out, std::string& err);
bool parse_token_response(std::string_view body, TokenResponse& out, std::string& err);
// Fills out from an error body.  Optional fields of the wrong type are
// ignored; error_description keeps only its first line, with any other
// control character replaced, so every field is safe to print on one line.  Returns false when the body carries no
// "error" string (e.g. an HTML page); out.http_status is left to the caller.
bool parse_error_response(std::string_view body, OAuthError& out);

// The fields of an OpenID Connect discovery document
// (ISSUER/.well-known/openid-configuration) that mailoauth uses.  The
// parser checks types and lengths only; whether the URLs may be used (the
// issuer matches, https) is decided by the OIDC provider.
struct DiscoveryDocument {
    std::string issuer;
    std::string token_endpoint;
    std::string authorization_endpoint;          // optional
    std::string device_authorization_endpoint;   // optional (RFC 8628)
};
bool parse_discovery_document(std::string_view body, DiscoveryDocument& out, std::string& err);

}  // namespace mailoauth

#endif
