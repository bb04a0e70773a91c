// Google (Gmail, Google Workspace): fixed endpoints, the one mail scope
// https://mail.google.com/, and a "Desktop app" registration of the user's
// own whose client secret Google requires even though it is no secret.
// Google refuses the mail scope in the device flow, so sign-in is the
// browser flow only.
#include "tokenhelper/errors.h"
#include "tokenhelper/provider.h"

namespace mailoauth {

namespace {

constexpr const char* kMailScope = "https://mail.google.com/";

const ProviderError kGoogleErrors[] = {
    {0, "invalid_grant", kExitNoPerm,
     "Google no longer accepts the saved sign-in: it was revoked, the password was changed, or "
     "it expired (an app left in the \"Testing\" publishing status gets refresh tokens that "
     "expire after 7 days; publish the app \"In production\" to avoid this). Sign in again: "
     "{login}."},
    {0, "invalid_client", kExitConfig,
     "Google does not accept the client ID ({client}) or its client secret. Check both against "
     "the \"Desktop app\" OAuth client in the Google Cloud console (APIs & Services, "
     "Credentials), then run {login} with --client-secret-file."},
    {0, "deleted_client", kExitConfig,
     "The OAuth client ({client}) was deleted in the Google Cloud console. Create a new "
     "\"Desktop app\" client and run {login} with its client ID and secret."},
    {0, "admin_policy_enforced", kExitConfig,
     "Your Google Workspace administrator does not allow this app. Ask them to trust the app's "
     "client ID ({client}) under Security, API controls."},
    {0, "org_internal", kExitConfig,
     "This app is limited to the users of one Google Workspace organisation. Sign in with an "
     "account of that organisation, or change the app's user type to External."},
};

bool google_endpoints(const ProviderSettings& s, HttpClient&, Endpoints& out, std::string&, int&) {
    // Explicit endpoints replace the fixed ones (a test server).
    out = Endpoints();
    out.authorization = s.authorization_endpoint.empty() ? "https://accounts.google.com/o/oauth2/v2/auth"
                                                         : s.authorization_endpoint;
    out.device = s.device_endpoint.empty() ? "https://oauth2.googleapis.com/device/code" : s.device_endpoint;
    out.token = s.token_endpoint.empty() ? "https://oauth2.googleapis.com/token" : s.token_endpoint;
    return true;
}

std::string google_scope(const ProviderSettings&) { return kMailScope; }

MailHosts google_hosts(const ProviderSettings&) {
    return MailHosts{"imap.gmail.com", "pop.gmail.com", "smtp.gmail.com"};
}

const ProviderError* google_explain(const OAuthError& e) {
    return find_provider_error(kGoogleErrors, sizeof kGoogleErrors / sizeof kGoogleErrors[0], e);
}

std::string google_device_refusal(const std::string& scope) {
    if (!scope_has(scope, kMailScope)) return "";
    return "Google does not allow the Gmail scope (https://mail.google.com/) in the device-code "
           "sign-in; sign in with a browser instead (--browser)";
}

}  // namespace

extern const Provider kGoogleProvider;
const Provider kGoogleProvider = {
    "google",
    "Google (Gmail, Google Workspace)",
    google_endpoints,
    google_scope,
    google_hosts,
    google_explain,
    nullptr,
    google_device_refusal,
    {0, false,
     "Google keeps refresh tokens until they are revoked, except that an app left in the "
     "\"Testing\" publishing status gets refresh tokens that expire after 7 days."},
    true,
    "&access_type=offline&prompt=consent",
    "  1. In the Google Cloud console create a project, enable the Gmail API, and configure\n"
    "     the OAuth consent screen (add yourself as a test user, or publish the app).\n"
    "  2. Under APIs & Services > Credentials create an OAuth client ID of type 'Desktop app'.\n"
    "  3. Save its client secret alone in a file only you can read (chmod 600 FILE).\n"
    "  4. Run: mailoauth login {account} --provider google --client-id CLIENT-ID \\\n"
    "       --client-secret-file FILE --browser",
};

}  // namespace mailoauth
