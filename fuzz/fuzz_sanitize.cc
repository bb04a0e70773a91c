// libFuzzer target for common/sanitize.cc, the filter every peer's text
// goes through.  The first input byte picks the cap; the rest is the text.
// Checked independently of the code under test: the output is well-formed
// UTF-8 (decoded here by a separate, naive decoder) with no C0, DEL, C1 or
// bidi control, at most the cap long, a prefix-preserving cut, and
// sanitizing it again changes nothing; write() in place gives the same.
//
// Build and run (from the source tree):
//   clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -I. \
//       fuzz/fuzz_sanitize.cc common/sanitize.cc -o /tmp/fuzz_sanitize
//   /tmp/fuzz_sanitize -max_total_time=60 -max_len=4096
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/sanitize.h"

namespace sanitize = mailoauth::sanitize;

namespace {

// Decodes s strictly (shortest form, no surrogates, at most U+10FFFF) and
// checks each code point; false on anything a terminal could act on.
bool safe_utf8(const std::string& s) {
    std::size_t i = 0;
    while (i < s.size()) {
        const unsigned char b = static_cast<unsigned char>(s[i]);
        std::size_t n;
        std::uint32_t cp;
        if (b < 0x80) {
            n = 1;
            cp = b;
        } else if ((b & 0xe0) == 0xc0) {
            n = 2;
            cp = b & 0x1f;
        } else if ((b & 0xf0) == 0xe0) {
            n = 3;
            cp = b & 0x0f;
        } else if ((b & 0xf8) == 0xf0) {
            n = 4;
            cp = b & 0x07;
        } else {
            return false;
        }
        if (i + n > s.size()) return false;
        for (std::size_t k = 1; k < n; ++k) {
            const unsigned char c = static_cast<unsigned char>(s[i + k]);
            if ((c & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (c & 0x3f);
        }
        const std::uint32_t min = n == 1 ? 0 : n == 2 ? 0x80 : n == 3 ? 0x800 : 0x10000;
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) return false;
        if (cp == 0x2028 || cp == 0x2029) return false;
        if ((cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069)) return false;
        i += n;
    }
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::size_t max = data[0];  // 0..255: small caps reach the cut often
    const std::string in(reinterpret_cast<const char*>(data + 1), size - 1);

    const std::string out = sanitize::text(in, max);
    if (!safe_utf8(out)) std::abort();
    if (out.size() > max) std::abort();
    if (!sanitize::clean(out)) std::abort();
    if (sanitize::text(out, max) != out) std::abort();  // idempotent

    // Uncut, clean text passes unchanged; anything else is caught by clean().
    const std::string whole = sanitize::text(in, in.size());
    if (sanitize::clean(in) != (whole == in)) std::abort();
    if (whole.size() > in.size()) std::abort();
    // A cut output is a prefix of the uncut one, followed by the marker.
    if (out != whole) {
        const std::string_view m = sanitize::kCutMarker;
        if (max >= m.size()) {
            if (out.size() < m.size() || out.compare(out.size() - m.size(), m.size(), m) != 0) std::abort();
            if (whole.compare(0, out.size() - m.size(), out, 0, out.size() - m.size()) != 0) std::abort();
        } else if (whole.compare(0, out.size(), out) != 0) {
            std::abort();
        }
    }

    // In place, as the plugin's log does.
    std::string buf = in;
    buf.resize(sanitize::write(buf, buf.data(), buf.size()));
    if (buf != whole) std::abort();
    return 0;
}
