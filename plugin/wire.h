// The bytes on the wire: the XOAUTH2 and OAUTHBEARER (RFC 7628) initial
// responses, the server's error challenge, and the small checks that keep
// a value from smuggling a field separator into them.  Pure functions, no
// I/O, so they are tested table-driven (tests/plugin/test_wire.cc).
#ifndef MAILOAUTH_PLUGIN_WIRE_H
#define MAILOAUTH_PLUGIN_WIRE_H

#include <cstddef>
#include <string>
#include <string_view>

namespace mailoauth::plugin::wire {

// RFC 5801 saslname escaping for the GS2 header: ',' -> "=2C", '=' -> "=3D".
std::string gs2_escape(std::string_view name);

// RFC 6750 b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
// Anything else (a ^A, a space, a newline) could forge fields, so refuse it.
bool valid_bearer_token(std::string_view token);

// A user name that may go on the wire: non-empty, no control characters
// (in particular no ^A), at most 512 bytes.
bool valid_wire_name(std::string_view name);

// "user=" user ^A "auth=Bearer " token ^A ^A.  out is overwritten; the caller
// wipes it (it holds the token).
void build_xoauth2(std::string& out, std::string_view user, std::string_view token);

// "n,a=" gs2(user) "," ^A ["host=" host ^A] ["port=" port ^A]
// "auth=Bearer " token ^A ^A.  host and port are left out when empty.
void build_oauthbearer(std::string& out, std::string_view user, std::string_view host,
                       std::string_view port, std::string_view token);

// The port of libsasl2's "addr;port" (or "a.b.c.d:port") ip-port string, or
// "" when there is none or it is not a number from 1 to 65535.
std::string port_of(std::string_view ipport);

// What the server said in its error challenge (RFC 7628 section 3.2.2,
// Google's and Microsoft's XOAUTH2): a JSON object with string members.
// Fields are sanitized (common/sanitize.h, capped) and empty when absent.
struct ErrorChallenge {
    bool json = false;  // it parsed as a flat JSON object
    std::string status;
    std::string schemes;
    std::string scope;
};
ErrorChallenge parse_error_challenge(std::string_view challenge);

}  // namespace mailoauth::plugin::wire

#endif
