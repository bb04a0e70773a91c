// libFuzzer target for the parsers shared by the plugin and the helper:
// helper protocol v1 messages (from a helper, the agent, or a caller of
// `mailoauth get`), the request check every server runs, the agent's
// socket name, and mailoauth.conf.
//
// Invariants: no crash, bounded errors, whatever the protocol parser
// accepts survives serialize/parse unchanged, and an accepted request
// builds again into one that is accepted the same.
//
// Build and run (from the source tree):
//   clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -I. \
//       fuzz/fuzz_protocol.cc common/protocol.cc common/sha256.cc common/socket_name.cc \
//       common/config.cc common/secret.cc \
//       -o /tmp/fuzz_protocol
//   /tmp/fuzz_protocol -max_total_time=60 -max_len=70000
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/config.h"
#include "common/protocol.h"
#include "common/socket_name.h"

using namespace mailoauth;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);

    protocol::Message m;
    protocol::ParseResult r = protocol::parse(in, m);
    if (r.ok) {
        if (r.consumed > in.size()) std::abort();
        std::string again = protocol::serialize(m);
        protocol::Message back;
        if (!protocol::parse(again, back).ok) std::abort();
        if (back.fields() != m.fields()) std::abort();
    } else {
        if (r.error.empty() || r.error.size() > 200 || !m.fields().empty()) std::abort();
    }

    protocol::Request req;
    protocol::Problem problem;
    if (protocol::parse_request(in, req, problem)) {
        if (req.account.empty()) std::abort();
        if (!req.rejected.empty() && !protocol::valid_token_id(req.rejected)) std::abort();
        protocol::Message built;
        if (protocol::build_request(req, built)) {
            protocol::Request again;
            if (!protocol::parse_request(protocol::serialize(built), again, problem)) std::abort();
            if (again.account != req.account || again.rejected != req.rejected ||
                again.force_refresh != req.force_refresh)
                std::abort();
        }
    } else if (problem.error.empty() || problem.description.size() > 300) {
        std::abort();
    }

    SocketName name;
    std::string why;
    std::string spec(in.substr(0, 200));
    if (parse_socket_name(spec, name, why)) {
        if (name.len <= sizeof(sa_family_t) || name.len > sizeof name.addr) std::abort();
    } else if (why.empty()) {
        std::abort();
    }

    config::Config cfg;
    config::Error err;
    if (!config::parse(in, "fuzz.conf", cfg, err)) {
        if (err.message.empty() || err.line < 0) std::abort();
    }
    return 0;
}
