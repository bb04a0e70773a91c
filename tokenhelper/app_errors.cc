#include "tokenhelper/app_errors.h"

#include <cctype>
#include <ctime>

namespace mailoauth {

namespace {

// "{login}" becomes `mailoauth login ACCOUNT --app ...`.
struct AppCode {
    long code;
    int exit_code;
    const char* error;
    const char* text;
};

// All of these need a change by whoever manages the app registration, the
// credential or the machine, so all but a passing glitch are 78: running
// the same request again will not help.
const AppCode kAppCodes[] = {
    {7000215, kExitConfig, "invalid_client",
     "The client secret is wrong. Give the secret's Value as Microsoft Entra showed it when the "
     "secret was created, not its Secret ID; if the value is lost, create a new secret in "
     "Microsoft Entra admin center > App registrations > (the app) > Certificates & secrets, "
     "then run {login} again or update the credential file."},
    {7000222, kExitConfig, "invalid_client",
     "The client secret has expired. Create a new one in Microsoft Entra admin center > App "
     "registrations > (the app) > Certificates & secrets, then run {login} again or update the "
     "credential file; a certificate credential (--certificate, --private-key) avoids the "
     "short lifetime of secrets."},
    {700027, kExitConfig, "invalid_client",
     "Microsoft Entra did not accept the signature of the client assertion: the certificate is "
     "not (or no longer) registered for this app. Upload the certificate (the .pem or .crt "
     "file, never the key) in Microsoft Entra admin center > App registrations > (the app) > "
     "Certificates & secrets > Certificates, and check that its thumbprint matches the one "
     "`mailoauth status` shows."},
    {700024, kExitConfig, "invalid_client",
     "The client assertion was not within its valid time range, which means this machine's "
     "clock is off. Check it with `timedatectl` (\"System clock synchronized: yes\") and turn on "
     "time synchronisation (timedatectl set-ntp true), then try again."},
    {50013, kExitConfig, "invalid_client",
     "Microsoft Entra refused the client assertion as invalid (a reused or malformed "
     "assertion). Check this machine's clock with `timedatectl`; if it is right, run {login} "
     "again, and report the problem if it stays."},
    {700016, kExitConfig, "unauthorized_client",
     "No application with this client ID exists in the tenant. Check --client-id (the "
     "\"Application (client) ID\" on the app registration's Overview page) and --tenant (the "
     "tenant that owns the app registration: its domain or \"Directory (tenant) ID\")."},
    {1002012, kExitConfig, "invalid_scope",
     "An app-only token must be asked for with a scope of the form RESOURCE/.default, for "
     "Exchange Online https://outlook.office365.com/.default; give that as --scope (or leave "
     "--scope out)."},
    {70011, kExitConfig, "invalid_scope",
     "The scope is not valid for an app-only token. Use https://outlook.office365.com/.default "
     "(or the national cloud's equivalent) as --scope."},
    {65001, kExitConfig, "consent_required",
     "An administrator has not granted consent for the app's permissions. In Microsoft Entra "
     "admin center > App registrations > (the app) > API permissions, add the application "
     "permissions IMAP.AccessAsApp, POP.AccessAsApp or SMTP.SendAsApp of \"Office 365 Exchange "
     "Online\" and click \"Grant admin consent\", then run {login} again."},
    {501051, kExitConfig, "consent_required",
     "The app has not been granted the application permission it asks for. Grant admin "
     "consent for IMAP.AccessAsApp, POP.AccessAsApp or SMTP.SendAsApp of \"Office 365 Exchange "
     "Online\" in the app registration's API permissions, then run {login} again."},
    {7000112, kExitConfig, "unauthorized_client",
     "The application is disabled in this tenant. An administrator can enable it in Microsoft "
     "Entra admin center > Enterprise applications > (the app) > Properties (\"Enabled for "
     "users to sign-in?\")."},
    {500011, kExitConfig, "invalid_resource",
     "The resource of the scope (Exchange Online) is not known in this tenant. Check --scope "
     "and that the tenant has Exchange Online."},
    {700025, kExitConfig, "invalid_client",
     "The app registration is a public client, which cannot hold a secret or a certificate. "
     "Use an app registration with a client secret or certificate (a confidential client)."},
    {7000218, kExitConfig, "invalid_client",
     "The request carried no client credential. Give the account a client secret or a "
     "certificate: run {login} again with --client-secret-file, --certificate and "
     "--private-key, or --credential-from."},
};

const AppCode* find_code(long code) {
    for (const AppCode& c : kAppCodes) {
        if (c.code == code) return &c;
    }
    return nullptr;
}

std::string login_command(const std::string& account) {
    return "`mailoauth login " + (account.empty() ? std::string("ACCOUNT") : account) + " --app ...`";
}

std::string fill(const char* text, const std::string& account) {
    std::string s = text;
    const std::string mark = "{login}";
    std::size_t at;
    while ((at = s.find(mark)) != std::string::npos) s.replace(at, mark.size(), login_command(account));
    return s;
}

std::string lower(const std::string& s) {
    std::string o;
    o.reserve(s.size());
    for (char c : s) o += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return o;
}

bool has(const std::string& hay, const char* needle) { return hay.find(needle) != std::string::npos; }

}  // namespace

Explanation explain_app_error(long aadsts, const std::string& account) {
    Explanation x;
    const AppCode* c = find_code(aadsts);
    if (c == nullptr) {
        x.message.clear();
        return x;
    }
    x.exit_code = c->exit_code;
    x.error = c->error;
    x.message = fill(c->text, account);
    return x;
}

bool is_known_app_error(long aadsts) { return find_code(aadsts) != nullptr; }

Explanation explain_missing_app_consent(const std::string& account,
                                        const std::vector<std::string>& roles) {
    Explanation x;
    x.exit_code = kExitConfig;
    x.error = "consent_required";
    std::string have;
    for (const std::string& r : roles) have += (have.empty() ? "" : ", ") + r;
    x.message = (roles.empty()
                     ? std::string("Microsoft Entra issued a token without any application permission "
                                   "(no \"roles\"), so Exchange will refuse it: ")
                     : "The token carries the application permissions " + have +
                           " but none of Exchange's mail permissions, so Exchange will refuse it: ") +
                "in Microsoft Entra admin center > App registrations > (the app) > API permissions, "
                "add the application permissions (not delegated) IMAP.AccessAsApp, POP.AccessAsApp "
                "and/or SMTP.SendAsApp of \"Office 365 Exchange Online\" (under \"APIs my "
                "organization uses\") and click \"Grant admin consent\"; then run " +
                login_command(account) + " again.";
    return x;
}

const std::vector<ServerReplyCause>& server_reply_table() {
    static const std::vector<ServerReplyCause> kTable = {
        {"535 5.7.3 Authentication unsuccessful",
         "The app's service principal is not registered in Exchange (New-ServicePrincipal -AppId "
         "<client ID> -ObjectId <Enterprise application object ID>) or has no FullAccess to the "
         "mailbox (Add-MailboxPermission), or SMTP AUTH is disabled for the mailbox "
         "(Set-CASMailbox -Identity <mailbox> -SmtpClientAuthenticationDisabled $false)."},
        {"535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled",
         "SMTP AUTH is disabled for the tenant or the mailbox: Set-CASMailbox -Identity <mailbox> "
         "-SmtpClientAuthenticationDisabled $false (or Set-TransportConfig "
         "-SmtpClientAuthenticationDisabled $false for the tenant)."},
        {"430 4.2.0 STOREDRV.Submission.Exception",
         "The app may sign in but has no permission on the mailbox: Add-MailboxPermission "
         "-Identity <mailbox> -User <Enterprise application object ID> -AccessRights FullAccess."},
        {"554 5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException",
         "The app may not send as the From address: Add-RecipientPermission -Identity <From "
         "address> -Trustee <Enterprise application object ID> -AccessRights SendAs."},
        {"NO AUTHENTICATE failed / -ERR Authentication failure",
         "IMAP or POP refused the token: the service principal is not registered in Exchange or "
         "has no FullAccess to this mailbox (New-ServicePrincipal, Add-MailboxPermission), or the "
         "XOAUTH2 user is not the mailbox the app was granted."},
    };
    return kTable;
}

std::string explain_server_reply(const std::string& reply) {
    const std::string r = lower(reply);
    const auto& t = server_reply_table();
    if (has(r, "sendasdenied")) return t[3].cause;
    if (has(r, "storedrv.submission") || has(r, "430 4.2.0")) return t[2].cause;
    if (has(r, "5.7.139") || has(r, "smtpclientauthentication is disabled")) return t[1].cause;
    if (has(r, "5.7.3") || (has(r, "535") && has(r, "authentication unsuccessful"))) return t[0].cause;
    if (has(r, "authenticate failed") || has(r, "authentication failure") ||
        has(r, "[authenticationfailed]") || has(r, "[auth]"))
        return t[4].cause;
    return "";
}

std::vector<std::string> exchange_steps_often_missing(const std::string& client_id,
                                                      const std::string& mailbox) {
    const std::string app = client_id.empty() ? "<Application (client) ID>" : client_id;
    const std::string mb = mailbox.empty() ? "<mailbox>" : mailbox;
    return {
        "Grant admin consent: in Microsoft Entra admin center > App registrations > (the app) > "
        "API permissions, add the application permissions SMTP.SendAsApp, IMAP.AccessAsApp and/or "
        "POP.AccessAsApp of \"Office 365 Exchange Online\" and click \"Grant admin consent\".",
        "Register the service principal in Exchange (Exchange Online PowerShell, "
        "Connect-ExchangeOnline): New-ServicePrincipal -AppId " + app +
            " -ObjectId <OBJECT_ID>, where OBJECT_ID is the Object ID shown under Enterprise "
            "applications for this app, not the one of the app registration.",
        "Give it the mailbox: Add-MailboxPermission -Identity " + mb +
            " -User <OBJECT_ID> -AccessRights FullAccess.",
        "For SMTP, allow SMTP AUTH for the mailbox: Set-CASMailbox -Identity " + mb +
            " -SmtpClientAuthenticationDisabled $false.",
        "To send as another address than the mailbox: Add-RecipientPermission -Identity <address> "
        "-Trustee <OBJECT_ID> -AccessRights SendAs.",
        "Changes in Exchange can take up to an hour to apply; wait before concluding a step did "
        "not help.",
    };
}

std::string certificate_expiry_warning(std::int64_t not_after, std::int64_t now,
                                       const std::string& thumbprint) {
    const std::int64_t left = not_after - now;
    if (left > static_cast<std::int64_t>(kCertificateWarnDays) * 86400) return "";
    const std::string which = "the app's certificate" +
                              (thumbprint.empty() ? std::string() : " (thumbprint " + thumbprint + ")");
    const std::string next =
        "create a new certificate, upload it in Microsoft Entra admin center > App registrations > "
        "(the app) > Certificates & secrets, and give it to mailoauth (mailoauth login ACCOUNT "
        "--app ... --certificate FILE --private-key FILE, or the --credential-from path)";
    if (left <= 0) {
        std::time_t tt = static_cast<std::time_t>(not_after);
        struct tm tm {};
        char buf[40] = "";
        if (gmtime_r(&tt, &tm)) std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
        return which + " expired on " + buf + "; " + next + ".";
    }
    const std::int64_t days = left / 86400;
    return which + " expires in " +
           (days == 0 ? std::string("less than a day") : std::to_string(days) + (days == 1 ? " day" : " days")) +
           "; " + next + " before then.";
}

}  // namespace mailoauth
