// Moving one helper-protocol message over a stream socket, both ways of
// the agent's socket: the plugin (client) and `mailoauth agent` (server).
// Non-blocking sends with MSG_NOSIGNAL (a peer that went away must neither
// kill the agent nor raise SIGPIPE in the program hosting the plugin),
// reads bounded by protocol::kMaxMessage, everything by a deadline.
#ifndef MAILOAUTH_COMMON_MSGIO_H
#define MAILOAUTH_COMMON_MSGIO_H

#include <string>
#include <string_view>

namespace mailoauth::msgio {

enum class Io { Ok, TimedOut, Closed, Error };

// CLOCK_MONOTONIC in milliseconds, for deadlines.
long long now_ms();

// Sends all of data before deadline (now_ms() based).  err: errno on Error.
Io send_all(int fd, std::string_view data, long long deadline, int& err);

// Appends to out until it holds a whole message (a blank line), the peer
// closes, or out exceeds protocol::kMaxMessage (it then holds one byte
// more, so "too long" can be told from "exactly full").  Ok in all three
// cases; the caller parses.
Io read_message(int fd, std::string& out, long long deadline, int& err);

}  // namespace mailoauth::msgio

#endif
