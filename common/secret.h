// Secret-holding helpers shared by the plugin and the token helper.
//
// Access tokens and refresh tokens live in memory only as long as needed and
// are overwritten before their storage is released, so a later heap dump or
// core file does not carry them.
#ifndef MAILOAUTH_COMMON_SECRET_H
#define MAILOAUTH_COMMON_SECRET_H

#include <cstddef>
#include <string>
#include <string_view>

namespace mailoauth {

// Overwrites n bytes at p in a way the compiler may not optimise away.
void wipe_memory(void* p, std::size_t n) noexcept;

// Overwrites the characters of s and empties it.
void wipe_string(std::string& s) noexcept;

// A string that wipes itself when it is destroyed or reassigned.  It is
// deliberately not printable: use fingerprint() in logs.
class Secret {
public:
    Secret() = default;
    explicit Secret(std::string_view v) : value_(v) {}
    Secret(const Secret& o) : value_(o.value_) {}
    Secret(Secret&& o) noexcept : value_(std::move(o.value_)) { wipe_string(o.value_); }
    Secret& operator=(const Secret& o) {
        if (this != &o) { wipe_string(value_); value_ = o.value_; }
        return *this;
    }
    Secret& operator=(Secret&& o) noexcept {
        if (this != &o) { wipe_string(value_); value_.swap(o.value_); wipe_string(o.value_); }
        return *this;
    }
    ~Secret() { wipe_string(value_); }

    const std::string& reveal() const noexcept { return value_; }
    bool empty() const noexcept { return value_.empty(); }
    std::size_t size() const noexcept { return value_.size(); }
    void clear() noexcept { wipe_string(value_); }
    bool operator==(const Secret& o) const noexcept { return value_ == o.value_; }
    bool operator!=(const Secret& o) const noexcept { return value_ != o.value_; }

    // "…abcd": the last four characters, enough to tell tokens apart in a
    // log without revealing them.
    std::string fingerprint() const;

private:
    std::string value_;
};

}  // namespace mailoauth

#endif
