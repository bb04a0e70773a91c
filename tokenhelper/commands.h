// The verbs of the mailoauth command: login, token, get, status, logout.
// Parsing of the command line and the text of --help live here too, so the
// options and their help are one table.
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
