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

// --- what the keys mean ---------------------------------------------------
//
// Every speaker of the protocol (the plugin, `mailoauth get`, the agent,
// doctor) builds and checks messages with these, so they cannot drift
// apart.  Unknown keys are ignored, as git's credential protocol does, so
// either side can learn new keys first.

// The reply's "status" and `mailoauth get`'s exit status (sysexits.h).
constexpr int kStatusOk = 0;
constexpr int kStatusUsage = 64;     // EX_USAGE
constexpr int kStatusDataErr = 65;   // EX_DATAERR: a malformed request
constexpr int kStatusTempFail = 75;  // EX_TEMPFAIL: try again later
constexpr int kStatusNoPerm = 77;    // EX_NOPERM: a person must log in again
constexpr int kStatusConfig = 78;    // EX_CONFIG

// A decimal number of 1 to 12 digits, not above max.
bool parse_decimal(std::string_view s, unsigned long long max, unsigned long long& out);

// Names a token without revealing any of it: the first 8 bytes of its
// SHA-256, in hex (16 characters).  The plugin names a token a server
// refused this way ("rejected"), and whoever answers compares it with the
// token it holds: a peer that is not the real agent learns nothing usable.
constexpr std::size_t kTokenIdLength = 16;
std::string token_id(std::string_view token);
bool valid_token_id(std::string_view id);  // 16 lower-case hex digits
// Whether id names token (a valid id and token_id(token) == id).
bool names_token(std::string_view id, std::string_view token);

struct Request {
    std::string account;
    std::string protocol;   // SASL service: imap, pop, smtp...
    std::string host;       // may be empty
    std::string port;       // may be empty
    std::string mechanism;  // XOAUTH2 or OAUTHBEARER; may be empty
    bool force_refresh = false;
    std::string rejected;   // token_id() of the token a server refused, or ""
};

// version=1 and the request's fields (empty ones left out).  Returns false
// when a value cannot be sent (CR, LF or NUL in it).
bool build_request(const Request& req, Message& msg);

// Why a request or reply cannot be used: the protocol's "error" word, a
// sentence for a person (it names keys and limits, never a value), and the
// status to answer with.
struct Problem {
    std::string error;
    std::string description;
    int status = kStatusDataErr;
};

// Parses and checks one request as every server must: well-formed (see
// parse), version 1 (absent means 1), a non-empty account.  force_refresh
// is on only for "1".  A rejected value that is not a token id is ignored
// like an unknown key (an older plugin sent the token's last characters:
// it is not repeated back or compared).  Checking that the account names a
// store entry is left to the caller.
bool parse_request(std::string_view text, Request& out, Problem& problem);

// The replies.  Both carry "status"; the token reply's user is left out
// when empty, and so is "lifetime" (the seconds the token was issued for,
// from which the caller's cache clamps its refresh margin) when unknown
// (0).  Values that cannot be sent are dropped (the description) or make
// build_token_reply return false.
bool build_token_reply(Message& m, std::string_view token, long long expires_at, std::string_view user,
                       long long lifetime = 0);
void build_error_reply(Message& m, std::string_view error, std::string_view description, int status);

// The reply's "status": false when it is absent or not a number up to 255.
bool reply_status(const Message& reply, int& status);

// The shape of a status-0 reply: a non-empty access_token and a numeric
// expires_at.  On failure why says what is missing ("no access_token").
bool check_token_reply(const Message& reply, std::string& why);

}  // namespace mailoauth::protocol

#endif
