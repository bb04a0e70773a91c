// A JSON string literal written by hand, for the few places that build a
// small JSON text without jsoncpp: `status --json` (the program does not
// load jsoncpp, see tokenhelper/http_module.h) and the client assertion's
// header and claims (a quote or a control character in a client ID from the
// command line must not break the token's JSON).  Header-only, so the
// program and the network module each get their own copy.
#ifndef MAILOAUTH_COMMON_JSON_QUOTE_H
#define MAILOAUTH_COMMON_JSON_QUOTE_H

#include <cstdio>
#include <string>

namespace mailoauth {

inline std::string json_quote(const std::string& v) {
    std::string o = "\"";
    for (unsigned char c : v) {
        switch (c) {
        case '"': o += "\\\""; break;
        case '\\': o += "\\\\"; break;
        case '\n': o += "\\n"; break;
        case '\r': o += "\\r"; break;
        case '\t': o += "\\t"; break;
        default:
            if (c < 0x20) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\u%04x", c);
                o += buf;
            } else {
                o += static_cast<char>(c);
            }
        }
    }
    return o + "\"";
}

}  // namespace mailoauth

#endif
