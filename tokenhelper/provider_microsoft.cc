// The Microsoft identity platform (Entra ID): work or school accounts in
// the global cloud and the national clouds, and personal Outlook.com
// accounts (--tenant consumers).  The AADSTS explanations live here.
#include <cstring>

#include "tokenhelper/errors.h"
#include "tokenhelper/provider.h"

namespace mailoauth {

namespace {

// One national cloud: its login host, the resource prefix of the Exchange
// Online scopes, and its mail hosts where Microsoft documents them.  US
// Government (GCC High) and DoD share a login host but not the Exchange
// resource.
struct Cloud {
    const char* name;
    const char* login;
    const char* scope_prefix;
    MailHosts hosts;
};

const Cloud kClouds[] = {
    {"global", "https://login.microsoftonline.com", "https://outlook.office.com/",
     {"outlook.office365.com", "outlook.office365.com", "smtp.office365.com"}},
    {"usgov", "https://login.microsoftonline.us", "https://outlook.office365.us/",
     {"outlook.office365.us", "outlook.office365.us", "smtp.office365.us"}},
    {"usgov-dod", "https://login.microsoftonline.us", "https://outlook-dod.office365.us/",
     {"outlook-dod.office365.us", "outlook-dod.office365.us", ""}},
    {"china", "https://login.partner.microsoftonline.cn", "https://partner.outlook.cn/",
     {"partner.outlook.cn", "partner.outlook.cn", "smtp.partner.outlook.cn"}},
};

const Cloud* find_cloud(const std::string& name) {
    const std::string n = name.empty() ? "global" : name;
    for (const Cloud& c : kClouds)
        if (n == c.name) return &c;
    return nullptr;
}

// Exit codes: 77 when the person can fix it by signing in again (in a
// browser, with MFA, after a password change); 78 when only a change to the
// app registration, the tenant, the command line or a Conditional Access
// policy helps, i.e. usually an administrator; 75 when trying later helps.
// A device code that expired or was declined during `mailoauth login` is 77:
// what the user does next is run login again, the same as for a dead
// refresh token.
const ProviderError kAadsts[] = {
    // Refresh token no longer usable: sign in again.
    {700082, nullptr, kExitNoPerm,
     "The saved sign-in has expired because it was not used for 90 days. Sign in again: "
     "{login}."},
    {70000, nullptr, kExitNoPerm,
     "The saved sign-in (refresh token) was rejected as invalid or revoked. Sign in again: "
     "{login}."},
    {70008, nullptr, kExitNoPerm,
     "The saved sign-in has reached its maximum age and expired. Sign in again: {login}."},
    {50173, nullptr, kExitNoPerm,
     "The saved sign-in was revoked, usually because the password was changed or reset or an "
     "administrator revoked the sessions. Sign in again: {login}."},
    {70043, nullptr, kExitNoPerm,
     "The saved sign-in expired under a Conditional Access sign-in frequency policy of your "
     "organisation. Sign in again: {login}; if this keeps happening, ask your administrator "
     "about the sign-in frequency set for this app."},
    {50076, nullptr, kExitNoPerm,
     "Your organisation requires multi-factor authentication for this sign-in. Sign in again "
     "and complete the MFA prompt in the browser: {login}."},
    {50079, nullptr, kExitNoPerm,
     "Your account must register for multi-factor authentication first. Sign in again and "
     "follow the MFA registration steps in the browser: {login}."},
    {50055, nullptr, kExitNoPerm,
     "The account's password has expired. Change it (for example at "
     "https://myaccount.microsoft.com) and sign in again: {login}."},
    {50089, nullptr, kExitNoPerm, "The sign-in took too long and its flow expired. Sign in again: {login}."},
    {50158, nullptr, kExitNoPerm,
     "An external security challenge (for example a third-party MFA) was not completed. Sign in "
     "again: {login}."},
    {65004, nullptr, kExitNoPerm,
     "The permissions this app asks for were declined in the consent prompt. Sign in again and "
     "accept them: {login}."},
    {700003, nullptr, kExitNoPerm,
     "The device this sign-in belonged to was removed from the directory. Sign in again: {login}."},
    // Device authorization grant.
    {70016, nullptr, kExitTempFail,
     "The sign-in in the browser has not been completed yet (authorization pending)."},
    {70018, nullptr, kExitNoPerm,
     "The code entered in the browser was not valid. Run {login} again and enter the new code "
     "exactly as shown."},
    {70019, nullptr, kExitNoPerm,
     "The device code expired before the sign-in in the browser was completed. Run {login} "
     "again and finish the sign-in before the countdown ends."},
    {70020, nullptr, kExitNoPerm,
     "The device code expired before the sign-in in the browser was completed. Run {login} "
     "again and finish the sign-in before the countdown ends."},
    // Blocked by policy: an administrator must act.
    {53003, nullptr, kExitConfig,
     "Access was blocked by a Conditional Access policy of your organisation. Ask your tenant "
     "administrator to check the sign-in logs for this trace ID; signing in again will not help."},
    {530033, nullptr, kExitConfig,
     "A Conditional Access policy requires a managed device, which this machine is not. Ask "
     "your tenant administrator; signing in again will not help."},
    {53000, nullptr, kExitConfig,
     "A Conditional Access policy requires a compliant (managed) device for this app. Ask your "
     "tenant administrator; signing in again will not help."},
    {53001, nullptr, kExitConfig,
     "A Conditional Access policy requires a domain-joined device for this app. Ask your tenant "
     "administrator; signing in again will not help."},
    {50097, nullptr, kExitConfig,
     "Your organisation requires device authentication for this app. Ask your tenant "
     "administrator; signing in again will not help."},
    {50105, nullptr, kExitConfig,
     "Your account is not assigned to this app in your organisation. Ask your tenant "
     "administrator to assign you (or to turn off \"Assignment required\" for the app)."},
    {50057, nullptr, kExitConfig, "The account is disabled. Ask your tenant administrator."},
    {50053, nullptr, kExitTempFail,
     "The account is locked, temporarily or after too many failed sign-ins. Wait and try "
     "again, or ask your tenant administrator."},
    // The app registration or the command line is wrong.
    {700016, nullptr, kExitConfig,
     "The application (client ID {client}) was not found in the directory. Check --client-id "
     "(the \"Application (client) ID\" of your app registration) and --tenant: an app "
     "registered for one organisation only cannot be used with another tenant."},
    {7000218, nullptr, kExitConfig,
     "The app registration does not allow the device code flow. In the Microsoft Entra admin "
     "center, open the app registration, Authentication, and set \"Allow public client flows\" "
     "to Yes."},
    {700025, nullptr, kExitConfig,
     "The app is registered as a public client, so no client secret may be sent. Remove the "
     "client secret from this account's settings."},
    {7000215, nullptr, kExitConfig,
     "The client secret is not valid. Check the secret in this account's settings, or remove "
     "it and allow public client flows for the app."},
    {65001, nullptr, kExitConfig,
     "Nobody has consented to this app's permissions (IMAP, POP, SMTP) in your organisation, "
     "and users may not consent themselves. Ask your tenant administrator to open {consent} "
     "and grant consent, then run {login}."},
    {90130, nullptr, kExitConfig,
     "The app registration does not support this kind of account on this endpoint. For work "
     "or school accounts use --tenant organizations or your tenant ID; for personal accounts "
     "the app's \"Supported account types\" must include personal Microsoft accounts."},
    {7000112, nullptr, kExitConfig,
     "The application is disabled in the directory. Ask your tenant administrator to enable it."},
    {90002, nullptr, kExitConfig,
     "The tenant was not found. Check --tenant (a domain such as contoso.com, a tenant ID, or "
     "organizations) and, for national clouds, --authority."},
    {50059, nullptr, kExitConfig,
     "The tenant could not be determined. Give your tenant with --tenant (a domain or the "
     "tenant ID) instead of common."},
    {50034, nullptr, kExitConfig,
     "The account does not exist in this tenant. Sign in with an account of the tenant the app "
     "is registered in, or check --tenant."},
    {50020, nullptr, kExitConfig,
     "The account is not a member or guest of this tenant. Check --tenant, or ask the tenant "
     "administrator to invite the account."},
    {500011, nullptr, kExitConfig,
     "The resource of a requested scope (Exchange Online) does not exist in this tenant. Check "
     "--scope and that the tenant has Exchange Online."},
    {70011, nullptr, kExitConfig, "A requested scope is not valid. Check --scope."},
    {900144, nullptr, kExitConfig,
     "The request lacked a required parameter. This is a bug in mailoauth or a wrong "
     "--authority; please report it."},
    {9002313, nullptr, kExitConfig,
     "The identity provider found the request malformed. Check --authority; if it is right, "
     "please report this."},
    // The service itself.
    {90033, nullptr, kExitTempFail,
     "The identity provider is temporarily unavailable. Try again in a few minutes."},
    {50196, nullptr, kExitTempFail,
     "The identity provider saw too many requests in a short time (loop detected). Try again "
     "in a few minutes."},
};


bool ms_endpoints(const ProviderSettings& s, HttpClient&, Endpoints& out, std::string& why, int& exit_code) {
    const Cloud* c = find_cloud(s.cloud);
    if (c == nullptr) {
        why = "unknown cloud '" + s.cloud + "'; use --cloud global, usgov, usgov-dod or china";
        exit_code = kExitUsage;
        return false;
    }
    // --authority replaces the login host and tenant (a test server, or a
    // cloud not listed here); --cloud still picks the scopes.
    std::string base = strip_trailing_slashes(s.authority);
    if (base.empty()) base = std::string(c->login) + "/" + (s.tenant.empty() ? "organizations" : s.tenant);
    out = Endpoints();
    out.authority = base;
    out.authorization = base + "/oauth2/v2.0/authorize";
    out.device = base + "/oauth2/v2.0/devicecode";
    out.token = base + "/oauth2/v2.0/token";
    return true;
}

// The same Exchange Online scopes serve work accounts and personal
// Outlook.com accounts; only the national clouds have their own resource.
std::string ms_scope(const ProviderSettings& s) {
    const Cloud* c = find_cloud(s.cloud);
    const std::string p = c ? c->scope_prefix : kClouds[0].scope_prefix;
    return p + "IMAP.AccessAsUser.All " + p + "POP.AccessAsUser.All " + p + "SMTP.Send offline_access";
}

MailHosts ms_hosts(const ProviderSettings& s) {
    if (s.tenant == "consumers" && (s.cloud.empty() || s.cloud == "global"))
        return MailHosts{"outlook.office365.com", "outlook.office365.com", "smtp-mail.outlook.com"};
    const Cloud* c = find_cloud(s.cloud);
    return c ? c->hosts : MailHosts();
}

const ProviderError* ms_explain(const OAuthError& e) {
    return find_provider_error(kAadsts, sizeof kAadsts / sizeof kAadsts[0], e);
}

// The managed policy "Block device code flow" answers 53003; a policy that
// requires a managed device answers 530033.  Either way the browser flow
// may still be allowed.
bool ms_device_blocked(const OAuthError& e) {
    for (long code : e.error_codes)
        if (code == 53003 || code == 530033) return true;
    return false;
}

}  // namespace

bool microsoft_cloud(const std::string& cloud, std::string& login_host, std::string& scope_prefix) {
    const Cloud* c = find_cloud(cloud);
    if (c == nullptr) return false;
    login_host = c->login;
    scope_prefix = c->scope_prefix;
    return true;
}

extern const Provider kMicrosoftProvider;
const Provider kMicrosoftProvider = {
    "microsoft",
    "Microsoft 365 / Outlook.com",
    ms_endpoints,
    ms_scope,
    ms_hosts,
    ms_explain,
    ms_device_blocked,
    nullptr,
    {90 * 86400, true,
     "Microsoft lets a refresh token expire after 90 days without use (each use restarts the clock)."},
    false,
    "",
    "  1. In the Microsoft Entra admin center open App registrations > New registration\n"
    "     (any name; supported accounts as fits your tenant; no redirect URI needed).\n"
    "  2. Under Authentication set 'Allow public client flows' to Yes.\n"
    "  3. Under API permissions add the delegated Office 365 Exchange Online permissions\n"
    "     IMAP.AccessAsUser.All, POP.AccessAsUser.All and SMTP.Send (and grant consent).\n"
    "  4. Run: mailoauth login {account} --client-id APPLICATION-ID --tenant YOUR-TENANT\n"
    "     (or put client_id in the [account {account}] section of mailoauth.conf).",
};

}  // namespace mailoauth
