// libFuzzer target for the identity provider's reply parsers
// (tokenhelper/oauth.cc) and the error explanations built on them.  The
// same bytes go to all three parsers, as a hostile or broken provider could
// send any body to any endpoint.
//
// Build and run (from the source tree):
//   clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -I. \
//       $(pkg-config --cflags jsoncpp) fuzz/fuzz_oauth.cc tokenhelper/oauth.cc \
//       tokenhelper/errors.cc tokenhelper/form.cc common/sanitize.cc common/secret.cc \
//       $(pkg-config --libs jsoncpp) -o /tmp/fuzz_oauth
//   /tmp/fuzz_oauth -max_total_time=60 -max_len=4096
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/sanitize.h"
#include "tokenhelper/errors.h"
#include "tokenhelper/oauth.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view body(reinterpret_cast<const char*>(data), size);
    std::string err;

    mailoauth::DeviceCodeResponse d;
    if (mailoauth::parse_device_code_response(body, d, err)) {
        // What the device flow prints holds nothing a terminal acts on.
        for (const std::string* s : {&d.user_code, &d.verification_uri, &d.message, &d.verification_uri_complete})
            if (!mailoauth::sanitize::clean(*s)) __builtin_trap();
        if (d.interval < 1 || d.interval > 60 || d.expires_in <= 0) __builtin_trap();
    } else if (!d.device_code.empty()) {
        __builtin_trap();  // a failed parse leaves no secret behind
    }

    mailoauth::TokenResponse t;
    if (mailoauth::parse_token_response(body, t, err)) {
        if (t.access_token.empty() || t.token_type != "Bearer" || t.expires_in < 0) __builtin_trap();
    } else if (!t.access_token.empty() || !t.refresh_token.empty()) {
        __builtin_trap();
    }

    mailoauth::OAuthError e;
    e.http_status = 400;
    if (mailoauth::parse_error_response(body, e)) {
        const mailoauth::Explanation x = mailoauth::explain_oauth_error(e, "fuzz");
        if (x.error.empty() || x.message.empty()) __builtin_trap();
        // What reaches the terminal, the store and the log: one clean line.
        if (!mailoauth::sanitize::clean(x.message)) __builtin_trap();
        for (const std::string* s : {&e.error_description, &e.trace_id, &e.correlation_id, &e.timestamp})
            if (!mailoauth::sanitize::clean(*s)) __builtin_trap();
    }
    return 0;
}
