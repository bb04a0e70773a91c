// libFuzzer target for what the plugin reads from a mail server: the
// base64-decoded error challenge after a rejected token, whose fields must
// come out sanitized (common/sanitize.h has its own target, fuzz_sanitize).
//
// Build and run (from the source tree):
//   clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -I. \
//       fuzz/fuzz_wire.cc plugin/wire.cc common/sanitize.cc common/secret.cc -o /tmp/fuzz_wire
//   /tmp/fuzz_wire -max_total_time=60 -max_len=8192
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/sanitize.h"
#include "plugin/wire.h"

using namespace mailoauth::plugin::wire;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    ErrorChallenge c = parse_error_challenge(in);
    for (const std::string* f : {&c.status, &c.schemes, &c.scope})
        if (!mailoauth::sanitize::clean(*f) || f->size() > 200) std::abort();
    std::string e = gs2_escape(in);
    if (e.find(',') != std::string::npos) std::abort();
    return 0;
}
