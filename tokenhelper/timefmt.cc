#include "tokenhelper/timefmt.h"

#include <ctime>

namespace mailoauth {

std::string format_utc(std::int64_t t) {
    if (t <= 0) return "never";
    time_t tt = static_cast<time_t>(t);
    struct tm tm;
    gmtime_r(&tt, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
    return buf;
}

}  // namespace mailoauth
