// The entry point of the mailoauth command (main.cc).  The command line is
// parsed in cli.cc (one table of options and their help, one of verbs);
// the verbs live in verb_*.cc (verbs.h).
#ifndef MAILOAUTH_TOKENHELPER_COMMANDS_H
#define MAILOAUTH_TOKENHELPER_COMMANDS_H

#include <string>
#include <vector>

namespace mailoauth {

class HttpClient;

// Runs the program with argv (without argv[0]); returns the exit code.
// Reads stdin only for `get`.
int run_command(const std::vector<std::string>& args, HttpClient& http);

}  // namespace mailoauth

#endif
