// libFuzzer target for the token store's record parser.
//
// Store files are read from disk, so parse_record must turn any bytes into
// either a record or an error, within its bounds, and never put a value in
// the error.  Whatever it accepts must survive serialize/parse unchanged.
//
// Build and run (from the source tree):
//   clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -I. \
//       fuzz/fuzz_store.cc tokenhelper/store.cc common/protocol.cc common/sha256.cc common/secret.cc \
//       -o /tmp/fuzz_store
//   /tmp/fuzz_store -max_total_time=60 -max_len=70000
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "tokenhelper/store.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string text(reinterpret_cast<const char*>(data), size);
    mailoauth::AccountRecord rec;
    std::string err;
    if (!mailoauth::parse_record(text, rec, err)) {
        if (err.empty()) std::abort();
        // Errors name keys and line numbers, never values: no error may be
        // longer than a fixed bound whatever the input.
        if (err.size() > 200) std::abort();
        return 0;
    }
    if (!mailoauth::valid_account_name(rec.account) || rec.refresh_token.empty()) std::abort();
    std::string again = mailoauth::serialize_record(rec);
    mailoauth::AccountRecord rec2;
    if (!mailoauth::parse_record(again, rec2, err)) std::abort();
    if (rec2.account != rec.account || rec2.refresh_token != rec.refresh_token ||
        rec2.access_token != rec.access_token || rec2.access_expires_at != rec.access_expires_at ||
        rec2.access_lifetime != rec.access_lifetime ||
        rec2.scope != rec.scope || rec2.last_error != rec.last_error ||
        rec2.allow_insecure_http != rec.allow_insecure_http)
        std::abort();
    // Canonical: serializing the reparsed record gives the same bytes.
    if (mailoauth::serialize_record(rec2) != again) std::abort();
    return 0;
}
