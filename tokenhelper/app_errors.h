// Plain-words explanations for app-only accounts (client credentials): the
// identity provider's refusals, the mail server's replies when Exchange has
// not been set up for the app, and the Exchange steps most often missing.
//
// Program side, no dependencies: used by login, the token path, status,
// doctor and (for server replies) anything that sees a SASL failure.
#ifndef MAILOAUTH_TOKENHELPER_APP_ERRORS_H
#define MAILOAUTH_TOKENHELPER_APP_ERRORS_H

#include <cstdint>
#include <string>
#include <vector>

#include "tokenhelper/errors.h"

namespace mailoauth {

// The explanation of one AADSTS code as it concerns an app-only account,
// with the next step; account names it in `mailoauth login ACCOUNT --app`.
// Unknown codes give an Explanation whose message is empty (the caller then
// falls back to explain_oauth_error).  The message carries no code, trace
// or correlation ID: the caller appends those.
Explanation explain_app_error(long aadsts, const std::string& account);

// Whether explain_app_error knows code.
bool is_known_app_error(long aadsts);

// A token without the "roles" claim (no application permission consented),
// or with roles none of which is an Exchange mail permission.
Explanation explain_missing_app_consent(const std::string& account,
                                        const std::vector<std::string>& roles);

// The likely cause of a mail server's refusal on an app-only account,
// matched on the reply's text (SMTP "535 5.7.3 Authentication
// unsuccessful", "430 4.2.0 STOREDRV.Submission.Exception", "554 5.2.0 ...
// SendAsDeniedException", "5.7.139", IMAP/POP authentication failures), or
// "" when the reply is not one of them.  The reply itself is not repeated.
std::string explain_server_reply(const std::string& reply);

// One row of the table the man page and doctor show.
struct ServerReplyCause {
    const char* reply;   // what the server says
    const char* cause;   // why, and the next step
};
const std::vector<ServerReplyCause>& server_reply_table();

// The Exchange Online steps an app-only account needs, most often missed
// first, each one line with the PowerShell to run.  client_id and mailbox
// fill the commands when known (else placeholders remain).
std::vector<std::string> exchange_steps_often_missing(const std::string& client_id,
                                                      const std::string& mailbox);

// How many days before a certificate's notAfter status and doctor warn.
constexpr long kCertificateWarnDays = 30;

// "" while the certificate is valid for more than 30 days at now; else a
// warning (expires in N days / expired on DATE) with the next step.
std::string certificate_expiry_warning(std::int64_t not_after, std::int64_t now,
                                       const std::string& thumbprint);

}  // namespace mailoauth

#endif
