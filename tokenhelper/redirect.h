// What the browser brings back from the authorization endpoint (RFC 6749
// section 4.1.2): the query of the redirect to http://127.0.0.1:PORT/, as
// the loopback listener receives it or as a person pastes the address the
// browser ended on.  Untrusted bytes, so a small pure parser with length
// caps (fuzz/fuzz_redirect.cc), and one judgement shared by the listener
// and the paste mode.
#ifndef MAILOAUTH_TOKENHELPER_REDIRECT_H
#define MAILOAUTH_TOKENHELPER_REDIRECT_H

#include <cstddef>
#include <string>
#include <string_view>

#include "common/secret.h"

namespace mailoauth {

// Microsoft's authorization codes run to about 2 KB; a query or a pasted
// line beyond this is not an answer to our request.
inline constexpr std::size_t kMaxRedirectQuery = 16 * 1024;
inline constexpr std::size_t kMaxRedirectFields = 64;

struct AuthorizationReply {
    Secret code;                    // empty when absent
    std::string state;              // as received; not a secret
    bool has_state = false;
    std::string error;              // e.g. "access_denied"; sanitized
    std::string error_description;  // first line, sanitized, at most 300 bytes
    std::string error_uri;          // sanitized
};

// Parses an application/x-www-form-urlencoded query ("code=..&state=..",
// without the '?'): '+' is a space, %XX is decoded.  False with why (never
// quoting the input: it may hold a code) when the query is over
// kMaxRedirectQuery, has more than kMaxRedirectFields fields, a bad %
// escape, or code, state or error more than once (RFC 6749 section 3.1).
// Unknown fields (session_state, iss, scope, ...) are ignored.
bool parse_redirect_query(std::string_view query, AuthorizationReply& out, std::string& why);

// Takes what a person pasted: the whole address (with or without
// "http://"), or only its query ("?code=...&state=..." or
// "code=...&state=..."), surrounded by any white space.  A '#fragment' is
// dropped.  False with why when there is no query to be found.
bool parse_pasted_redirect(std::string_view text, AuthorizationReply& out, std::string& why);

enum class ReplyKind {
    Code,           // a code with the expected state
    ProviderError,  // error=... with the expected state
    StateMismatch,  // a state that is not ours: another sign-in, or forged
    MissingState,   // no state at all
    MissingCode,    // the expected state, but neither code nor error
};

// The judgement of a parsed reply.  The state is checked first, so an
// error or a code that does not carry our state is never acted upon.
ReplyKind judge_reply(const AuthorizationReply& r, std::string_view expected_state);

// A short, plain-words description of a judgement for a person (the
// browser page, the terminal), without the code.  For ProviderError it
// quotes the provider's error and description (already sanitized).
std::string describe_reply(ReplyKind kind, const AuthorizationReply& r);

}  // namespace mailoauth

#endif
