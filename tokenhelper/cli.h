// The command line of mailoauth: one table of options with their help, one
// table of verbs, the parser, and the helpers every verb uses.  The verbs
// themselves live in verb_*.cc (see verbs.h).
//
// Adding an option: a row in kOptions (cli.cc) naming the verbs it applies
// to; the verb reads it with Parsed::has/value/values.  Adding a verb: a
// row in kVerbs (cli.cc) and its function in a verb_*.cc file.
#ifndef MAILOAUTH_TOKENHELPER_CLI_H
#define MAILOAUTH_TOKENHELPER_CLI_H

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace mailoauth {

struct OptionSpec {
    const char* name;      // without the leading "--"
    const char* arg;       // nullptr for a flag
    const char* verbs;     // "*" for global, else space separated verbs
    const char* help;
};

// The command line after parsing: the verb, its arguments, and the options
// in the order given (name, value; "" for flags).
struct Parsed {
    std::string verb;
    std::vector<std::string> positional;
    std::vector<std::pair<std::string, std::string>> opts;
    bool has(const char* n) const;
    std::string value(const char* n) const;              // the last one given
    std::vector<std::string> values(const char* n) const; // all, in order
};

// Returns -1 on success, else the exit code (a message is printed).
int parse_args(const std::vector<std::string>& args, Parsed& p);
const OptionSpec* find_option(const std::string& name);
void print_help(FILE* out, const std::string& verb);

// "mailoauth: MSG\nTry 'mailoauth --help'." on stderr; returns 64.
int usage_error(const std::string& msg);
// "mailoauth: MSG" on stderr; returns code.
int fail(const std::string& msg, int code);
// Digits only, within [min, max].
bool parse_seconds(const std::string& s, long min, long max, long& out);
// A value as the shell would need it quoted ('...' when it has anything
// but letters, digits and -_.,:/@=+%).
std::string shell_quote(const std::string& v);
// The options of p as typed, e.g. " --client-id ID --tenant T" (empty
// when none), for messages that give a command to run again.
std::string options_as_typed(const Parsed& p);

}  // namespace mailoauth

#endif
