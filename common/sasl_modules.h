// Other Cyrus SASL modules that provide XOAUTH2 or OAUTHBEARER, found by
// file name in a plugin search path (moriyoshi/cyrus-sasl-xoauth2:
// libxoauth2.so; tarickb/sasl-xoauth2: libsasl-xoauth2.so).  libsasl2 uses
// whichever module registering a mechanism it loaded last, in directory
// order, so such a module can silently take XOAUTH2 away from mailoauth.
// One directory read per entry, no dlopen: the plugin runs this at init.
#ifndef MAILOAUTH_COMMON_SASL_MODULES_H
#define MAILOAUTH_COMMON_SASL_MODULES_H

#include <string>
#include <vector>

namespace mailoauth::sasl_modules {

constexpr const char* kOurModule = "libmailoauth.so";

struct Found {
    std::vector<std::string> ours;    // DIR/libmailoauth.so, in path order
    std::vector<std::string> rivals;  // DIR/NAME.so of other XOAUTH2/OAUTHBEARER modules
};

// dirs: colon-separated, as SASL_PATH; empty entries and directories that
// cannot be read are passed over.
Found scan(const std::string& dirs);

}  // namespace mailoauth::sasl_modules

#endif
