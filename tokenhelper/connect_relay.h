// The pass-through of `mailoauth connect` once the session is handed over:
// every byte from the server to the client and back, unchanged, through a
// fixed buffer per direction, with poll() on both sides (no busy loop, no
// per-byte work, no timeout of its own: IMAP IDLE can last for hours).
// It ends when either side closes, after passing on what that side sent.
#ifndef MAILOAUTH_TOKENHELPER_CONNECT_RELAY_H
#define MAILOAUTH_TOKENHELPER_CONNECT_RELAY_H

#include <cstddef>
#include <string>

#include "tokenhelper/connect_transport.h"

namespace mailoauth::connect {

// Large enough that one read takes a whole TLS record (16 KiB) several
// times over; small enough not to matter.
constexpr std::size_t kRelayBuffer = 256 * 1024;

struct RelayEnd {
    enum Who { Client, Server, Error } who = Error;
    std::string error;  // for Error: which side and why
};

// to_client is sent to the client first (what the server sent beyond the
// lines read before the hand-over), to_server to the server first (what the
// client sent beyond the command that ended the front's part).
RelayEnd relay(Transport& server, Transport& client_in, Transport& client_out, std::string to_client,
               std::string to_server, std::size_t buffer = kRelayBuffer);

}  // namespace mailoauth::connect

#endif
