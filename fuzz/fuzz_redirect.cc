// libFuzzer target for what the browser brings back from the sign-in
// (tokenhelper/redirect.cc): the redirect's query as the loopback listener
// receives it, and the address a person pastes.  The same bytes go to both
// parsers; what either lets through must be safe to print and to send.
//
// Build and run (from the source tree):
//   clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -I. \
//       fuzz/fuzz_redirect.cc tokenhelper/redirect.cc tokenhelper/pkce.cc \
//       common/sanitize.cc common/secret.cc common/sha256.cc -o /tmp/fuzz_redirect
//   mkdir -p /tmp/corpus_redirect && /tmp/fuzz_redirect -max_total_time=60 -max_len=20000 \
//       /tmp/corpus_redirect fuzz/seeds/redirect
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/sanitize.h"
#include "tokenhelper/redirect.h"

namespace {

void check(bool ok, const mailoauth::AuthorizationReply& r) {
    using mailoauth::ReplyKind;
    if (!ok) {
        // A refused answer leaves nothing behind, least of all a code.
        if (!r.code.empty() || r.has_state || !r.error.empty()) __builtin_trap();
        return;
    }
    // The code goes into the token request: printable ASCII only.
    for (char c : r.code.reveal())
        if (c < 0x21 || c > 0x7e) __builtin_trap();
    // What may reach a terminal or the browser page is one clean line.
    for (const std::string* s : {&r.error, &r.error_description, &r.error_uri})
        if (!mailoauth::sanitize::clean(*s)) __builtin_trap();
    if (r.error_description.size() > 300 || r.error.size() > 100) __builtin_trap();
    for (ReplyKind k : {ReplyKind::Code, ReplyKind::ProviderError, ReplyKind::StateMismatch,
                        ReplyKind::MissingState, ReplyKind::MissingCode}) {
        const std::string d = mailoauth::describe_reply(k, r);
        if (!mailoauth::sanitize::clean(d)) __builtin_trap();
    }
    // The state decides first: an answer without ours is never a code.
    const ReplyKind k = mailoauth::judge_reply(r, "expected-state");
    if (k == ReplyKind::Code && (r.state != "expected-state" || r.code.empty())) __builtin_trap();
    if (!r.has_state && k != ReplyKind::MissingState) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    std::string why;
    mailoauth::AuthorizationReply q;
    check(mailoauth::parse_redirect_query(in, q, why), q);
    mailoauth::AuthorizationReply p;
    check(mailoauth::parse_pasted_redirect(in, p, why), p);
    return 0;
}
