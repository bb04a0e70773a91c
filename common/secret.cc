#include "common/secret.h"

#include <cstring>
#include <string.h>

namespace mailoauth {

void wipe_memory(void* p, std::size_t n) noexcept {
    if (p != nullptr && n != 0) explicit_bzero(p, n);
}

void wipe_string(std::string& s) noexcept {
    if (!s.empty()) wipe_memory(&s[0], s.size());
    s.clear();
}

std::string Secret::fingerprint() const {
    if (value_.size() < 12) return "(short)";
    return "..." + value_.substr(value_.size() - 4);
}

}  // namespace mailoauth
