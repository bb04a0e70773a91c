#include "tokenhelper/form.h"

#include "common/secret.h"

namespace mailoauth {

namespace {

bool unreserved(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

}  // namespace

// RFC 3986 section 2.3: only unreserved characters pass unchanged.  Encoding
// space as %20 rather than '+' is valid in application/x-www-form-urlencoded
// bodies too, and cannot be confused with a literal '+' in a token.
std::string percent_encode(std::string_view s) {
    static const char hex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(s.size() * 3);
    for (unsigned char c : s) {
        if (unreserved(c)) {
            out.push_back(static_cast<char>(c));
        } else {
            out.push_back('%');
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 0x0f]);
        }
    }
    return out;
}

std::string form_encode(const FormFields& fields) {
    // Reserved for the worst case up front: a reallocation would free a
    // buffer that still holds part of a secret.
    std::size_t worst = 0;
    for (const auto& [key, value] : fields) worst += 3 * (key.size() + value.size()) + 2;
    std::string out;
    out.reserve(worst);
    for (const auto& [key, value] : fields) {
        if (!out.empty()) out.push_back('&');
        out += percent_encode(key);
        out.push_back('=');
        // The encoded value may be a secret: wipe the temporary.
        std::string v = percent_encode(value);
        out += v;
        wipe_string(v);
    }
    return out;
}

}  // namespace mailoauth
