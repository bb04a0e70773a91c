// libFuzzer target for what `mailoauth connect` reads before it hands the
// session over (tokenhelper/connect_proto.cc): server lines (IMAP
// responses, POP3 status lines, capability lists, error challenges) and the
// POP3 client commands its front answers.  Checks the invariants the
// session relies on: what it writes itself is one line of printable text,
// capabilities never carry a space or the login items, take_line never
// returns a line longer than its limit.
//
// Build and run (from the source tree):
//   clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -I. \
//       fuzz/fuzz_connect.cc tokenhelper/connect_proto.cc plugin/wire.cc -o /tmp/fuzz_connect
//   /tmp/fuzz_connect -max_total_time=60 -max_len=20000
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "tokenhelper/connect_proto.h"

using namespace mailoauth::connect;

namespace {

bool printable(const std::string& s) {
    for (unsigned char c : s)
        if (c < 0x20 || c > 0x7e) return false;
    return true;
}

// One line ending in CRLF, nothing else below 0x20 but what the text had.
bool one_protocol_line(const std::string& s) {
    return s.size() >= 2 && s.compare(s.size() - 2, 2, "\r\n") == 0 &&
           s.find_first_of("\r\n") == s.size() - 2;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);

    std::string buf(in), line;
    while (take_line(buf, line, 512) == LineStatus::Line) {
        if (line.size() >= 512 || line.find('\n') != std::string::npos) std::abort();
        ImapResponse r = parse_imap_response(line);
        for (const auto& c : r.capabilities)
            if (c.empty() || c.find(' ') != std::string::npos) std::abort();
        for (const auto& c : client_capabilities(r.capabilities))
            if (c == "STARTTLS" || c == "LOGINDISABLED" || c.rfind("AUTH=", 0) == 0) std::abort();
        if (!one_protocol_line(imap_preauth_line(client_capabilities(r.capabilities), r.text))) std::abort();
        if (!one_protocol_line(imap_bye_line(line))) std::abort();
        imap_code_is_temporary(r.code);
        Pop3Status s = parse_pop3_status(line);
        pop3_code_is_temporary(s.code);
        classify_pop3_command(line);
        std::string d = describe_error_challenge(r.text);
        if (!printable(d) || d.size() > 400) std::abort();
    }
    std::string t = peer_text(in);
    if (!printable(t) || t.size() > 303) std::abort();
    std::string o = one_line(in);
    if (o.find_first_of("\r\n") != std::string::npos || o.size() > 1003) std::abort();

    std::string decoded;
    if (base64_decode(in, decoded) && base64_encode(decoded) != in) std::abort();
    if (!base64_decode(base64_encode(in), decoded) || decoded != in) std::abort();
    return 0;
}
