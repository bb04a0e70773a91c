#include "tokenhelper/timefmt.h"

#include <cstdio>
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

std::string format_interval(std::int64_t s) {
    if (s == 0) return "just now";
    bool neg = s < 0;
    if (neg) s = -s;
    std::string v;
    if (s < 120) v = std::to_string(s) + " s";
    else if (s < 7200) v = std::to_string(s / 60) + " min";
    else if (s < 172800) v = std::to_string(s / 3600) + " h";
    else v = std::to_string(s / 86400) + " days";
    return neg ? v + " ago" : "in " + v;
}

std::string format_mmss(long s) {
    if (s < 0) s = 0;
    char buf[32];
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
    return buf;
}

}  // namespace mailoauth
