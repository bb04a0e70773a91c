// Helper protocol v1: the key=value lines the SASL plugin and the token
// helper exchange over a pipe or the agent's socket (see HELPER PROTOCOL in mailoauth(1)).
//
// Modelled on git's credential protocol: one "key=value" per line, the
// message ended by a blank line or end of input.  Secrets travel only here,
// never in argv or the environment.  Everything is bounded so a confused or
// hostile peer cannot make the reader allocate without limit.
#ifndef MAILOAUTH_COMMON_PROTOCOL_H
#define MAILOAUTH_COMMON_PROTOCOL_H

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mailoauth::protocol {

constexpr std::size_t kMaxLine = 16384;      // one key=value line, without LF
constexpr std::size_t kMaxKey = 64;
constexpr std::size_t kMaxFields = 64;
constexpr std::size_t kMaxMessage = 65536;   // a whole message

class Message {
public:
    // Returns the value of key, or nullptr when absent.
    const std::string* get(std::string_view key) const;
    std::string get_or(std::string_view key, std::string_view fallback) const;
    bool has(std::string_view key) const { return get(key) != nullptr; }
    // Replaces or appends.  Returns false (and changes nothing) when the key
    // or value may not be sent: bad key characters, CR, LF or NUL in value.
    bool set(std::string_view key, std::string_view value);
    const std::vector<std::pair<std::string, std::string>>& fields() const { return fields_; }
    // Wipes every value: messages carry tokens.
    void clear() noexcept;
    ~Message();

private:
    std::vector<std::pair<std::string, std::string>> fields_;
};

bool valid_key(std::string_view key);
bool valid_value(std::string_view value);

struct ParseResult {
    bool ok = false;
    std::string error;        // for a person; never contains a value
    std::size_t line = 0;     // 1-based line of the error
    std::size_t consumed = 0; // bytes up to and including the terminating blank line
    bool terminated = false;  // a blank line ended the message (vs. end of input)
};

// Parses one message from the start of input.  Unknown keys are kept (the
// caller ignores what it does not know); duplicate keys, lines without '=',
// bad keys, CR or NUL in a value, over-long lines and too many fields are
// errors.  The last line may lack its LF.
ParseResult parse(std::string_view input, Message& out);

// Serializes msg followed by a blank line.
std::string serialize(const Message& msg);

}  // namespace mailoauth::protocol

#endif
