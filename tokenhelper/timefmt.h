// Times as people read them in messages, status and logs.
#ifndef MAILOAUTH_TOKENHELPER_TIMEFMT_H
#define MAILOAUTH_TOKENHELPER_TIMEFMT_H

#include <cstdint>
#include <string>

namespace mailoauth {

// "2026-11-23 17:00:00 UTC", or "never" for 0 and before.
std::string format_utc(std::int64_t epoch_seconds);

// A time relative to now, from its distance in seconds: "in 59 min",
// "3 days ago", "just now".
std::string format_interval(std::int64_t seconds);

// A countdown or a time limit as minutes:seconds: "14:59", "0:05",
// "60:00"; negative is "0:00".
std::string format_mmss(long seconds);

}  // namespace mailoauth

#endif
