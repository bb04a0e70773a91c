#include "common/sanitize.h"

#include <cstring>

namespace mailoauth::sanitize {

namespace {

enum class Fate { Keep, Question, Space };

struct Unit {
    std::size_t len;  // input bytes it covers, 1..4
    Fate fate;
};

bool cont(unsigned char c) { return c >= 0x80 && c <= 0xbf; }

Fate of_ascii(unsigned char c) {
    if (c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r') return Fate::Space;
    if (c < 0x20 || c == 0x7f) return Fate::Question;
    return Fate::Keep;
}

Fate of_code_point(char32_t cp) {
    if (cp >= 0x80 && cp <= 0x9f) return Fate::Question;                // C1
    if (cp == 0x2028 || cp == 0x2029) return Fate::Space;              // line, paragraph separator
    if ((cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069))
        return Fate::Question;                                          // bidi controls
    return Fate::Keep;
}

// The character (or maximal ill-formed subpart) at s[i], i < s.size().
// Well-formed sequences as in the Unicode standard, table 3-7: the second
// byte's range depends on the first, which rules out overlongs, surrogates
// and code points beyond U+10FFFF.
Unit next(std::string_view s, std::size_t i) {
    const unsigned char b0 = static_cast<unsigned char>(s[i]);
    if (b0 < 0x80) return {1, of_ascii(b0)};
    std::size_t need;
    unsigned char lo = 0x80, hi = 0xbf;  // range of the second byte
    char32_t cp;
    if (b0 >= 0xc2 && b0 <= 0xdf) {
        need = 2;
        cp = b0 & 0x1f;
    } else if (b0 >= 0xe0 && b0 <= 0xef) {
        need = 3;
        cp = b0 & 0x0f;
        if (b0 == 0xe0) lo = 0xa0;       // no overlongs
        else if (b0 == 0xed) hi = 0x9f;  // no surrogates
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
        need = 4;
        cp = b0 & 0x07;
        if (b0 == 0xf0) lo = 0x90;       // no overlongs
        else if (b0 == 0xf4) hi = 0x8f;  // nothing beyond U+10FFFF
    } else {
        return {1, Fate::Question};      // a stray continuation, C0, C1, F5..FF
    }
    std::size_t n = 1;
    for (; n < need; ++n) {
        if (i + n >= s.size()) return {n, Fate::Question};  // truncated
        const unsigned char b = static_cast<unsigned char>(s[i + n]);
        const bool ok = n == 1 ? (b >= lo && b <= hi) : cont(b);
        if (!ok) return {n, Fate::Question};
        cp = (cp << 6) | (b & 0x3f);
    }
    return {need, of_code_point(cp)};
}

}  // namespace

std::size_t write(std::string_view in, char* out, std::size_t cap) noexcept {
    const std::size_t marker = kCutMarker.size();
    std::size_t pos = 0;   // bytes written
    std::size_t mark = 0;  // the last character boundary that leaves room for the marker
    for (std::size_t i = 0; i < in.size();) {
        const Unit u = next(in, i);
        const std::size_t len = u.fate == Fate::Keep ? u.len : 1;
        if (pos + len > cap) {
            if (cap >= marker) {
                pos = mark;
                std::memcpy(out + pos, kCutMarker.data(), marker);
                pos += marker;
            }
            return pos;
        }
        // pos <= i holds throughout (no unit grows), so in place is safe.
        if (u.fate == Fate::Keep) std::memmove(out + pos, in.data() + i, len);
        else out[pos] = u.fate == Fate::Space ? ' ' : '?';
        pos += len;
        if (pos + marker <= cap) mark = pos;
        i += u.len;
    }
    return pos;
}

std::string text(std::string_view in, std::size_t max_bytes) {
    // The output is never longer than the input: a buffer of the smaller
    // size always suffices, and only a real overflow cuts.
    std::string out(in.size() < max_bytes ? in.size() : max_bytes, '\0');
    out.resize(write(in, out.data(), out.size()));
    return out;
}

bool clean(std::string_view in) noexcept {
    for (std::size_t i = 0; i < in.size();) {
        const Unit u = next(in, i);
        if (u.fate != Fate::Keep) return false;
        i += u.len;
    }
    return true;
}

}  // namespace mailoauth::sanitize
