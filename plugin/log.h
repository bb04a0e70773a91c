// Logging for code that lives inside someone else's process: everything goes
// through the application's SASL log callback (utils->log), never stderr or
// syslog directly, and is filtered by mailoauth.conf's log_level.
//
// Never pass a token, the SASL response or a helper's raw output here; use
// mailoauth::Secret::fingerprint() when tokens must be told apart.
#ifndef MAILOAUTH_PLUGIN_LOG_H
#define MAILOAUTH_PLUGIN_LOG_H

#include <sasl/sasl.h>
#include <sasl/saslplug.h>

#include <string>
#include <string_view>

namespace mailoauth::plugin {

// log_level names (mailoauth.conf) to SASL_LOG_* levels: none, error,
// warning, notice, debug, trace.  Returns false for an unknown name.
bool parse_log_level(std::string_view name, int& level);

// The most verbose level that is passed on; messages above it are dropped
// before they are formatted.
void set_log_level(int level) noexcept;
int log_level() noexcept;

// Formats with vsnprintf (libsasl2's own formatter knows only a few
// conversions) and hands "mailoauth: <message>" to utils->log.  Never throws.
void log(const sasl_utils_t* utils, int level, const char* fmt, ...) noexcept
    __attribute__((format(printf, 3, 4)));

// Sets the connection's error string (sasl_errdetail) to "mailoauth: <msg>"
// and logs it at level.
void fail(const sasl_utils_t* utils, int level, const std::string& msg) noexcept;

}  // namespace mailoauth::plugin

#endif
