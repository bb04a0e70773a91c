#include "plugin/log.h"

#include <atomic>
#include <cstdarg>
#include <cstdio>

#include "common/sanitize.h"

namespace mailoauth::plugin {

namespace {
// Default: errors, failures, warnings and notices; per-connection chatter
// (token from cache, helper ran) is debug so a busy Postfix stays quiet.
std::atomic<int> g_level{SASL_LOG_NOTE};
}  // namespace

bool parse_log_level(std::string_view name, int& level) {
    struct Name { const char* name; int level; };
    static const Name names[] = {
        {"none", SASL_LOG_NONE},   {"error", SASL_LOG_ERR},   {"err", SASL_LOG_ERR},
        {"warning", SASL_LOG_WARN}, {"warn", SASL_LOG_WARN},   {"notice", SASL_LOG_NOTE},
        {"note", SASL_LOG_NOTE},   {"info", SASL_LOG_NOTE},   {"debug", SASL_LOG_DEBUG},
        {"trace", SASL_LOG_TRACE},
    };
    for (const Name& n : names) {
        if (name == n.name) {
            level = n.level;
            return true;
        }
    }
    return false;
}

void set_log_level(int level) noexcept { g_level.store(level, std::memory_order_relaxed); }
int log_level() noexcept { return g_level.load(std::memory_order_relaxed); }

void log(const sasl_utils_t* utils, int level, const char* fmt, ...) noexcept {
    if (utils == nullptr || utils->log == nullptr || level > log_level()) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    const int n = std::vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    // The last filter before the application's log: whatever a caller put
    // in, one line without controls (common/sanitize.h), also where the
    // buffer's end cut a UTF-8 sequence.  In place: nothing to allocate.
    std::size_t len = static_cast<std::size_t>(n) < sizeof buf ? static_cast<std::size_t>(n) : sizeof buf - 1;
    len = sanitize::write(std::string_view(buf, len), buf, len);
    buf[len] = '\0';
    utils->log(utils->conn, level, "mailoauth: %s", buf);
}

void fail(const sasl_utils_t* utils, int level, const std::string& msg) noexcept {
    if (utils == nullptr) return;
    // What the application shows its user (sasl_errdetail): sanitized into
    // a buffer of our own, since this must not allocate or throw.
    char buf[1024];
    const std::size_t len = sanitize::write(msg, buf, sizeof buf - 1);
    buf[len] = '\0';
    // SASL_NOLOG: sasl_seterror would log it again at SASL_LOG_FAIL.
    if (utils->seterror != nullptr)
        utils->seterror(utils->conn, SASL_NOLOG, "mailoauth: %s", buf);
    log(utils, level, "%s", buf);
}

}  // namespace mailoauth::plugin
