// `mailoauth connect ACCOUNT HOST PORT`: an already-authenticated IMAP or
// POP3 session on standard input and output, for programs that can hand
// their connection to a command (fetchmail's plugin with `auth ssh`, mutt's
// and neomutt's tunnel, mbsync's Tunnel, offlineimap's preauthtunnel).
//
// It opens TCP and TLS to the server itself, logs in with XOAUTH2 (or
// OAUTHBEARER) using the account's token, obtained as `mailoauth token`
// obtains it, and then gives the client an IMAP `* PREAUTH` greeting or a
// POP3 session in the TRANSACTION state; from then on it copies bytes both
// ways unchanged until either side closes.  No daemon, no listening port,
// no local password.
#ifndef MAILOAUTH_TOKENHELPER_CONNECT_H
#define MAILOAUTH_TOKENHELPER_CONNECT_H

#include <string>

#include "tokenhelper/http.h"
#include "tokenhelper/settings.h"

namespace mailoauth::connect {

struct Options {
    std::string account;
    std::string host;
    std::string port;        // decimal, 1 to 65535
    std::string protocol;    // imap or pop3; "" = from the port
    std::string tls;         // implicit, starttls or none; "" = from the port
    std::string ca_file;     // "" = the system store
    std::string mechanism;   // XOAUTH2 or OAUTHBEARER; "" = XOAUTH2
    long timeout = 30;       // seconds for each step before the hand-over
    int in_fd = 0;           // the client
    int out_fd = 1;
};

// Checks the options and fills in what follows from the port (993 and 995
// implicit TLS, 143 and 110 STARTTLS; 110 and 995 POP3, else IMAP).
// Returns false with a sentence for a usage error.
bool complete_options(Options& o, std::string& why);

// Runs the session; returns the exit status (0 when either side closed
// after the hand-over; 75, 77 or 78 when the hand-over did not happen, after
// telling the client with `* BYE` or `-ERR` and standard error why).
int run(const Options& o, const Environment& env, HttpClient& http);

}  // namespace mailoauth::connect

#endif
