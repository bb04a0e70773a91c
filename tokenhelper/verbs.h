// The verbs of the mailoauth command, one file each concern:
// verb_login.cc (login), verb_tokens.cc (token, get), verb_status.cc
// (status, logout), verb_services.cc (agent, connect).  cli.cc parses the
// command line and calls them through its verb table.
#ifndef MAILOAUTH_TOKENHELPER_VERBS_H
#define MAILOAUTH_TOKENHELPER_VERBS_H

#include <string>

#include "tokenhelper/cli.h"
#include "tokenhelper/http.h"
#include "tokenhelper/settings.h"

namespace mailoauth {

// Each returns the exit code (errors.h).
int verb_login(const Parsed& p, const Environment& env, HttpClient& http);
int verb_token(const Parsed& p, const Environment& env, HttpClient& http);
int verb_get(const Parsed& p, const Environment& env, HttpClient& http);
int verb_status(const Parsed& p, const Environment& env, HttpClient& http);
int verb_logout(const Parsed& p, const Environment& env, HttpClient& http);
int verb_agent(const Parsed& p, const Environment& env, HttpClient& http);
int verb_connect(const Parsed& p, const Environment& env, HttpClient& http);

// A protocol v1 error reply on stdout (for `get`), also said on stderr.
int reply_error(const std::string& error, const std::string& description, int code);

}  // namespace mailoauth

#endif
