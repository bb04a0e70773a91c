// application/x-www-form-urlencoded bodies for the token endpoint.
// Every value is percent-encoded (RFC 3986 unreserved characters pass, space
// becomes %20), so a refresh token or scope can never break the body.
#ifndef MAILOAUTH_TOKENHELPER_FORM_H
#define MAILOAUTH_TOKENHELPER_FORM_H

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mailoauth {

using FormFields = std::vector<std::pair<std::string, std::string>>;

std::string percent_encode(std::string_view s);
// "k1=v1&k2=v2", each key and value percent-encoded.  The result may hold a
// secret: callers wipe it (wipe_string) when done.
std::string form_encode(const FormFields& fields);

}  // namespace mailoauth

#endif
