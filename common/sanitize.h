// The one filter for text that came from a peer (the identity provider, a
// mail server's challenge, a helper or an agent, an old store record) on its
// way to a terminal, the store, a log line or a protocol value.
//
// What comes out is one line of valid UTF-8 that a terminal shows and never
// acts on:
//   - C0 controls, DEL and the C1 controls U+0080..U+009F become '?', in
//     both forms a terminal may honour: the UTF-8 encoding (C2 80..C2 9F) and
//     the raw byte 0x80..0x9F of an 8-bit terminal (U+009B and 0x9B are CSI,
//     as ESC [ is);
//   - TAB, CR, LF, VT, FF and U+2028/U+2029 become a space, so a message
//     that wraps stays readable on one line;
//   - the bidirectional embedding, override and isolate controls (U+202A..
//     U+202E, U+2066..U+2069) become '?': they reorder what a person reads
//     (a URL or a code that is not what it seems), and no message of ours
//     needs them;
//   - ill-formed UTF-8 (a stray continuation byte, an overlong form, a
//     surrogate, beyond U+10FFFF, a truncated sequence) becomes one '?' per
//     maximal ill-formed subpart, as Unicode recommends for U+FFFD.
// A replacement rather than a silent drop, so a reader sees that something
// was there (and "a\x9b2J" does not turn into a different word "a2J").
// Everything else, printable ASCII and valid UTF-8 such as "é" or "—",
// passes unchanged.
//
// The result is at most max_bytes long, "..." included when the text was
// cut, and never ends inside a UTF-8 sequence.  Sanitizing a result again
// changes nothing.
//
// No dependency but the C++ runtime: the plugin uses it too.  write() does
// not allocate, so it serves code that must not throw (the plugin's log).
#ifndef MAILOAUTH_COMMON_SANITIZE_H
#define MAILOAUTH_COMMON_SANITIZE_H

#include <cstddef>
#include <string>
#include <string_view>

namespace mailoauth::sanitize {

// Appended when the text was cut.
inline constexpr std::string_view kCutMarker = "...";

// The sanitized text, at most max_bytes long ("..." included when cut).
std::string text(std::string_view in, std::size_t max_bytes = 300);

// True when text() would return in unchanged (no cut counted): for a value
// that must be used exactly as sent or not at all (a verification URI, a
// user code, an id).
bool clean(std::string_view in) noexcept;

// The sanitized text written to out (no NUL appended), at most cap bytes;
// returns the length.  out may be in.data() itself (sanitizing in place):
// the output never runs ahead of the input.
std::size_t write(std::string_view in, char* out, std::size_t cap) noexcept;

}  // namespace mailoauth::sanitize

#endif
