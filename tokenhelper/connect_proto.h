// The lines `mailoauth connect` reads from a mail server before it hands the
// session to its client, and the few it writes itself: IMAP greetings and
// tagged responses, capability lists, POP3 status lines and CAPA, the POP3
// commands the front answers locally.  Pure functions over bounded input,
// no I/O: tested table-driven (tests/unit/test_connect_proto.cc) and fuzzed
// (fuzz/fuzz_connect.cc).  Nothing here looks at bytes once the session is
// handed over: the pass-through copies them unchanged.
#ifndef MAILOAUTH_TOKENHELPER_CONNECT_PROTO_H
#define MAILOAUTH_TOKENHELPER_CONNECT_PROTO_H

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace mailoauth::connect {

// A line from the server or the client before the hand-over.  Real greeting,
// capability and status lines are well under 2 KiB; a peer that sends more
// without a line end is not speaking the protocol.
constexpr std::size_t kMaxLine = 16384;

enum class LineStatus { Line, Incomplete, TooLong };

// Takes the first line (without its CRLF or LF) off the front of buf.
// Incomplete: no line end yet and buf is within max.  TooLong: buf holds
// max bytes or more and no line end among them.
LineStatus take_line(std::string& buf, std::string& line, std::size_t max = kMaxLine);

// Text from a server (a BYE or -ERR reason, an error challenge field) made
// safe for a terminal, a log and our own protocol lines: printable ASCII
// only (other bytes become '?'), at most max bytes ("..." appended when
// cut).  The one place such text is filtered; it becomes common/sanitize's
// sanitize::text when that lands.
std::string peer_text(std::string_view text, std::size_t max = 300);

// One line for a protocol answer or a log: each run of CR, LF, other
// controls and blanks becomes one space, capped at max.  For our own messages, which may hold
// several sentences or lines.
std::string one_line(std::string_view text, std::size_t max = 1000);

// --- IMAP -----------------------------------------------------------------

struct ImapResponse {
    enum Kind { Invalid, Untagged, Tagged, Continuation } kind = Invalid;
    std::string tag;                     // Tagged only
    std::string status;                  // upper case: OK NO BAD BYE PREAUTH CAPABILITY ...
    std::string code;                    // inside [ ] after OK/NO/BAD/BYE/PREAUTH, raw
    std::string text;                    // what follows; a continuation's challenge
    std::vector<std::string> capabilities;  // from [CAPABILITY ...] or * CAPABILITY ...
};

ImapResponse parse_imap_response(std::string_view line);

// Whether caps holds name (ASCII case-insensitive).
bool has_capability(const std::vector<std::string>& caps, std::string_view name);

// What the client may see once it is logged in: the server's list without
// STARTTLS, LOGINDISABLED and AUTH=... (the tunnel has done those).
std::vector<std::string> client_capabilities(const std::vector<std::string>& caps);

// "* PREAUTH [CAPABILITY ...] text\r\n" for caps as given.
std::string imap_preauth_line(const std::vector<std::string>& caps, std::string_view text);

// "* BYE text\r\n"; text is made one line.
std::string imap_bye_line(std::string_view text);

// Whether a NO to AUTHENTICATE says "later" rather than "this token":
// [UNAVAILABLE] (RFC 5530), [INUSE], [LIMIT], [SERVERBUG].
bool imap_code_is_temporary(std::string_view code);

// --- POP3 -----------------------------------------------------------------

struct Pop3Status {
    enum Kind { Invalid, Ok, Err, Continuation } kind = Invalid;
    std::string code;   // the RFC 2449/3206 response code inside [ ], if any
    std::string text;   // after the status (and code)
};

Pop3Status parse_pop3_status(std::string_view line);

// Whether an -ERR to AUTH says "later": [SYS/TEMP], [IN-USE], [LOGIN-DELAY].
bool pop3_code_is_temporary(std::string_view code);

// The CAPA lines (without "+OK" and the final ".") the client may see
// once it is in the TRANSACTION state: without STLS, SASL ... and USER.
std::vector<std::string> pop3_client_capa(const std::vector<std::string>& lines);

// "+OK ...\r\n" each line dot-stuffed "\r\n" ".\r\n".
std::string pop3_capa_reply(const std::vector<std::string>& lines);

// What the front does with a client command before the session is handed
// over.  The client thinks it must still log in (or asks what it may do);
// the tunnel has logged in, so those are answered here.
enum class Pop3Front {
    Forward,      // a real command: send it and everything after it on
    AnswerOk,     // USER, PASS, APOP, AUTH MECH...: "+OK", not forwarded
    AnswerAuthList,  // AUTH alone (a request for the list): an empty list
    AnswerCapa,   // CAPA: the server's post-login capabilities
    AnswerStls,   // STLS: refused, the tunnel is already encrypted
};
Pop3Front classify_pop3_command(std::string_view line);

// --- SASL -------------------------------------------------------------------

std::string base64_encode(std::string_view in);
// Strict RFC 4648 with padding; false on anything else.
bool base64_decode(std::string_view in, std::string& out);

// The server's error challenge after a refused token, in words for a
// person: "status 401", "status invalid_token, scope ...", or "" when it
// is not one.
std::string describe_error_challenge(std::string_view base64_challenge);

}  // namespace mailoauth::connect

#endif
