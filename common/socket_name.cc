#include "common/socket_name.h"

#include <cstddef>
#include <cstring>

namespace mailoauth {

bool parse_socket_name(const std::string& spec, SocketName& out, std::string& err) {
    out = SocketName();
    out.spec = spec;
    out.addr.sun_family = AF_UNIX;
    const std::size_t room = sizeof out.addr.sun_path;  // 108 on Linux
    if (spec.size() >= 2 && spec[0] == '@') {
        const std::string name = spec.substr(1);
        if (name.size() > room - 1) {
            err = "socket name '" + spec + "' is longer than " + std::to_string(room - 1) + " characters";
            return false;
        }
        for (char c : name) {
            if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
                err = "socket name '" + spec + "' may not contain spaces or control characters";
                return false;
            }
        }
        out.abstract = true;
        std::memcpy(out.addr.sun_path + 1, name.data(), name.size());
        out.len = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + 1 + name.size());
        return true;
    }
    if (!spec.empty() && spec[0] == '/') {
        if (spec.size() > room - 1) {
            err = "socket path '" + spec + "' is longer than " + std::to_string(room - 1) + " bytes";
            return false;
        }
        if (spec.find('\0') != std::string::npos) {
            err = "socket path contains a NUL byte";
            return false;
        }
        std::memcpy(out.addr.sun_path, spec.data(), spec.size());
        out.len = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + spec.size() + 1);
        return true;
    }
    err = "socket '" + spec + "' must be @NAME (Linux abstract namespace, e.g. @mailoauth-agent) or an "
          "absolute path";
    return false;
}

}  // namespace mailoauth
