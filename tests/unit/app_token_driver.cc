// A test driver, not a test: runs request_app_token (tokenhelper/app_token.cc)
// with the real HTTP client, so tests/fake/test_app_token_driver.py can
// check the C++ client assertion against the fake provider's independent
// verifier before the CLI is wired.  Built for `make check` only.
//
//   app_token_driver TOKEN_ENDPOINT CLIENT_ID CREDENTIAL_PATH CA_FILE [ALG [SCOPE]]
//
// The credential is read with load_credential_from (a secret file, a PEM
// with key and certificate, or a directory), never from argv.  Prints
// exit_code=, error=, message=, roles= and, on success, access_token= (for
// the test to introspect; it never prints it).
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <string>

#include "tokenhelper/app_token.h"
#include "tokenhelper/credential_source.h"
#include "tokenhelper/http.h"

int main(int argc, char** argv) {
    if (argc < 5) {
        std::cerr << "usage: app_token_driver TOKEN_ENDPOINT CLIENT_ID CREDENTIAL_PATH CA_FILE [ALG [SCOPE]]\n";
        return 64;
    }
    mailoauth::AppCredential cred;
    std::string err;
    if (!mailoauth::load_credential_from(argv[3], std::getenv("CREDENTIALS_DIRECTORY"), cred, err)) {
        std::cout << "exit_code=78\nerror=bad_credential\nmessage=" << err << "\n";
        return 0;
    }
    if (argc > 5) cred.assertion_alg = argv[5];
    mailoauth::AppTokenParams p;
    p.token_endpoint = argv[1];
    p.client_id = argv[2];
    p.scope = argc > 6 ? argv[6] : mailoauth::kAppDefaultScope;
    p.account = "relay";
    p.http.ca_file = argv[4];
    p.http.connect_timeout_ms = 5000;
    p.http.total_timeout_ms = 10000;
    mailoauth::http_global_init();
    mailoauth::CurlHttpClient http;
    mailoauth::AppTokenResult r =
        mailoauth::request_app_token(http, p, cred, static_cast<std::int64_t>(std::time(nullptr)));
    std::cout << "exit_code=" << r.exit_code << "\nerror=" << r.error << "\nmessage=" << r.message << "\nroles=";
    for (std::size_t i = 0; i < r.roles.size(); ++i) std::cout << (i ? "," : "") << r.roles[i];
    std::cout << "\n";
    if (r.exit_code == 0) std::cout << "access_token=" << r.tokens.access_token.reveal() << "\n";
    return 0;
}
