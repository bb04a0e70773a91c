// SHA-256 (FIPS 180-4), small and dependency-free: the plugin links nothing
// but libc (no OpenSSL inside every program that loads libsasl2), yet needs
// a one-way name for a token a server refused (protocol::token_id).  Not
// for passwords or signatures; tested against the FIPS 180 examples.
#ifndef MAILOAUTH_COMMON_SHA256_H
#define MAILOAUTH_COMMON_SHA256_H

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mailoauth::sha256 {

using Digest = std::array<std::uint8_t, 32>;

class Hasher {
public:
    Hasher();
    ~Hasher();  // wipes the buffered input: it may be part of a token
    Hasher(const Hasher&) = delete;
    Hasher& operator=(const Hasher&) = delete;
    void update(const void* data, std::size_t n);
    void update(std::string_view s) { update(s.data(), s.size()); }
    Digest finish();  // the hasher is spent afterwards

private:
    void block(const std::uint8_t* p);
    std::uint32_t h_[8];
    std::uint8_t buf_[64];
    std::size_t used_ = 0;
    std::uint64_t total_ = 0;
};

Digest digest(std::string_view data);

// Lower-case hex of the first n bytes of d (all 32 by default).
std::string hex(const Digest& d, std::size_t n = 32);

}  // namespace mailoauth::sha256

#endif
