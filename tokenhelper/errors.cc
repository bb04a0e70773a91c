#include "tokenhelper/errors.h"

#include <cstring>

#include "common/sanitize.h"
#include "tokenhelper/form.h"

namespace mailoauth {

namespace {

// One known AADSTS code: what happened and what to do, in plain words.
// "{login}" becomes the command that signs the account in again, "{consent}"
// the admin-consent URL, "{client}" the client ID.
struct Aadsts {
    long code;
    int exit_code;
    const char* text;
};

// Exit codes: 77 when the person can fix it by signing in again (in a
// browser, with MFA, after a password change); 78 when only a change to the
// app registration, the tenant, the command line or a Conditional Access
// policy helps, i.e. usually an administrator; 75 when trying later helps.
// A device code that expired or was declined during `mailoauth login` is 77:
// what the user does next is run login again, the same as for a dead
// refresh token.
const Aadsts kAadsts[] = {
    // Refresh token no longer usable: sign in again.
    {700082, kExitNoPerm,
     "The saved sign-in has expired because it was not used for 90 days. Sign in again: "
     "{login}."},
    {70000, kExitNoPerm,
     "The saved sign-in (refresh token) was rejected as invalid or revoked. Sign in again: "
     "{login}."},
    {70008, kExitNoPerm,
     "The saved sign-in has reached its maximum age and expired. Sign in again: {login}."},
    {50173, kExitNoPerm,
     "The saved sign-in was revoked, usually because the password was changed or reset or an "
     "administrator revoked the sessions. Sign in again: {login}."},
    {70043, kExitNoPerm,
     "The saved sign-in expired under a Conditional Access sign-in frequency policy of your "
     "organisation. Sign in again: {login}; if this keeps happening, ask your administrator "
     "about the sign-in frequency set for this app."},
    {50076, kExitNoPerm,
     "Your organisation requires multi-factor authentication for this sign-in. Sign in again "
     "and complete the MFA prompt in the browser: {login}."},
    {50079, kExitNoPerm,
     "Your account must register for multi-factor authentication first. Sign in again and "
     "follow the MFA registration steps in the browser: {login}."},
    {50055, kExitNoPerm,
     "The account's password has expired. Change it (for example at "
     "https://myaccount.microsoft.com) and sign in again: {login}."},
    {50089, kExitNoPerm, "The sign-in took too long and its flow expired. Sign in again: {login}."},
    {50158, kExitNoPerm,
     "An external security challenge (for example a third-party MFA) was not completed. Sign in "
     "again: {login}."},
    {65004, kExitNoPerm,
     "The permissions this app asks for were declined in the consent prompt. Sign in again and "
     "accept them: {login}."},
    {700003, kExitNoPerm,
     "The device this sign-in belonged to was removed from the directory. Sign in again: {login}."},
    // Device authorization grant.
    {70016, kExitTempFail,
     "The sign-in in the browser has not been completed yet (authorization pending)."},
    {70018, kExitNoPerm,
     "The code entered in the browser was not valid. Run {login} again and enter the new code "
     "exactly as shown."},
    {70019, kExitNoPerm,
     "The device code expired before the sign-in in the browser was completed. Run {login} "
     "again and finish the sign-in before the countdown ends."},
    {70020, kExitNoPerm,
     "The device code expired before the sign-in in the browser was completed. Run {login} "
     "again and finish the sign-in before the countdown ends."},
    // Blocked by policy: an administrator must act.
    {53003, kExitConfig,
     "Access was blocked by a Conditional Access policy of your organisation. Ask your tenant "
     "administrator to check the sign-in logs for this trace ID; signing in again will not help."},
    {53000, kExitConfig,
     "A Conditional Access policy requires a compliant (managed) device for this app. Ask your "
     "tenant administrator; signing in again will not help."},
    {53001, kExitConfig,
     "A Conditional Access policy requires a domain-joined device for this app. Ask your tenant "
     "administrator; signing in again will not help."},
    {50097, kExitConfig,
     "Your organisation requires device authentication for this app. Ask your tenant "
     "administrator; signing in again will not help."},
    {50105, kExitConfig,
     "Your account is not assigned to this app in your organisation. Ask your tenant "
     "administrator to assign you (or to turn off \"Assignment required\" for the app)."},
    {50057, kExitConfig, "The account is disabled. Ask your tenant administrator."},
    {50053, kExitTempFail,
     "The account is locked, temporarily or after too many failed sign-ins. Wait and try "
     "again, or ask your tenant administrator."},
    // The app registration or the command line is wrong.
    {700016, kExitConfig,
     "The application (client ID {client}) was not found in the directory. Check --client-id "
     "(the \"Application (client) ID\" of your app registration) and --tenant: an app "
     "registered for one organisation only cannot be used with another tenant."},
    {7000218, kExitConfig,
     "The app registration does not allow the device code flow. In the Microsoft Entra admin "
     "center, open the app registration, Authentication, and set \"Allow public client flows\" "
     "to Yes."},
    {700025, kExitConfig,
     "The app is registered as a public client, so no client secret may be sent. Remove the "
     "client secret from this account's settings."},
    {7000215, kExitConfig,
     "The client secret is not valid. Check the secret in this account's settings, or remove "
     "it and allow public client flows for the app."},
    {65001, kExitConfig,
     "Nobody has consented to this app's permissions (IMAP, POP, SMTP) in your organisation, "
     "and users may not consent themselves. Ask your tenant administrator to open {consent} "
     "and grant consent, then run {login}."},
    {90130, kExitConfig,
     "The app registration does not support this kind of account on this endpoint. For work "
     "or school accounts use --tenant organizations or your tenant ID; for personal accounts "
     "the app's \"Supported account types\" must include personal Microsoft accounts."},
    {7000112, kExitConfig,
     "The application is disabled in the directory. Ask your tenant administrator to enable it."},
    {90002, kExitConfig,
     "The tenant was not found. Check --tenant (a domain such as contoso.com, a tenant ID, or "
     "organizations) and, for national clouds, --authority."},
    {50059, kExitConfig,
     "The tenant could not be determined. Give your tenant with --tenant (a domain or the "
     "tenant ID) instead of common."},
    {50034, kExitConfig,
     "The account does not exist in this tenant. Sign in with an account of the tenant the app "
     "is registered in, or check --tenant."},
    {50020, kExitConfig,
     "The account is not a member or guest of this tenant. Check --tenant, or ask the tenant "
     "administrator to invite the account."},
    {500011, kExitConfig,
     "The resource of a requested scope (Exchange Online) does not exist in this tenant. Check "
     "--scope and that the tenant has Exchange Online."},
    {70011, kExitConfig, "A requested scope is not valid. Check --scope."},
    {900144, kExitConfig,
     "The request lacked a required parameter. This is a bug in mailoauth or a wrong "
     "--authority; please report it."},
    {9002313, kExitConfig,
     "The identity provider found the request malformed. Check --authority; if it is right, "
     "please report this."},
    // The service itself.
    {90033, kExitTempFail,
     "The identity provider is temporarily unavailable. Try again in a few minutes."},
    {50196, kExitTempFail,
     "The identity provider saw too many requests in a short time (loop detected). Try again "
     "in a few minutes."},
};

const Aadsts* find_aadsts(long code) {
    for (const Aadsts& a : kAadsts) {
        if (a.code == code) return &a;
    }
    return nullptr;
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
    std::size_t at = s.find(from);
    while (at != std::string::npos) {
        s.replace(at, from.size(), to);
        at = s.find(from, at + to.size());
    }
}

std::string login_command(const std::string& account) {
    return "`mailoauth login " + (account.empty() ? std::string("ACCOUNT") : account) + "`";
}

std::string consent_url(const ErrorContext& ctx) {
    std::string authority = ctx.authority.empty()
                                ? std::string("https://login.microsoftonline.com/TENANT")
                                : ctx.authority;
    while (!authority.empty() && authority.back() == '/') authority.pop_back();
    return authority + "/adminconsent?client_id=" +
           (ctx.client_id.empty() ? std::string("CLIENT_ID") : percent_encode(ctx.client_id));
}

std::string fill(const char* text, const ErrorContext& ctx) {
    std::string s = text;
    replace_all(s, "{login}", login_command(ctx.account));
    replace_all(s, "{consent}", consent_url(ctx));
    replace_all(s, "{client}", ctx.client_id.empty() ? std::string("given") : ctx.client_id);
    return s;
}

// The OAuth error word when no AADSTS code is known.
struct Word {
    const char* error;
    int exit_code;
    const char* text;
};

const Word kWords[] = {
    {"invalid_grant", kExitNoPerm,
     "The saved sign-in is no longer valid (expired or revoked). Sign in again: {login}."},
    {"interaction_required", kExitNoPerm,
     "The identity provider wants you to sign in interactively again. Sign in again: {login}."},
    {"login_required", kExitNoPerm, "You need to sign in again: {login}."},
    {"consent_required", kExitNoPerm,
     "The app's permissions need your consent. Sign in again and accept them: {login}."},
    {"expired_token", kExitNoPerm,
     "The device code expired before the sign-in in the browser was completed. Run {login} "
     "again and finish the sign-in before the countdown ends."},
    {"authorization_declined", kExitNoPerm,
     "The sign-in was declined in the browser. Run {login} again if that was a mistake."},
    {"access_denied", kExitNoPerm,
     "The sign-in was declined or denied. Run {login} again if that was a mistake."},
    {"bad_verification_code", kExitNoPerm,
     "The identity provider did not recognise the device code. Run {login} again."},
    {"authorization_pending", kExitTempFail,
     "The sign-in in the browser has not been completed yet."},
    {"slow_down", kExitTempFail, "The identity provider asked to poll more slowly."},
    {"invalid_client", kExitConfig,
     "The identity provider does not accept this client. Check --client-id and that the app "
     "registration allows public client flows."},
    {"unauthorized_client", kExitConfig,
     "This app may not use this grant type. In the app registration, under Authentication, set "
     "\"Allow public client flows\" to Yes, and check --client-id and --tenant."},
    {"invalid_scope", kExitConfig, "A requested scope is not valid. Check --scope."},
    {"unsupported_grant_type", kExitConfig,
     "The identity provider does not support this grant type. Check --authority."},
    {"invalid_request", kExitConfig,
     "The identity provider rejected the request as malformed. Check --authority, --tenant and "
     "--client-id."},
    {"invalid_resource", kExitConfig,
     "A requested scope names an unknown resource. Check --scope."},
    {"temporarily_unavailable", kExitTempFail,
     "The identity provider is temporarily unavailable. Try again in a few minutes."},
    {"server_error", kExitTempFail,
     "The identity provider had an internal error. Try again in a few minutes."},
};

const Word* find_word(const std::string& error) {
    for (const Word& w : kWords) {
        if (error == w.error) return &w;
    }
    return nullptr;
}

bool is_temporary_status(int status) { return status == 408 || status == 429 || status >= 500; }

}  // namespace

Explanation explain_error_reply(long http_status, const std::string& body, const ErrorContext& ctx) {
    OAuthError oe;
    if (!parse_error_response(body, oe)) oe = OAuthError();
    oe.http_status = static_cast<int>(http_status);
    return explain_oauth_error(oe, ctx);
}

std::string explain_aadsts(long code) {
    const Aadsts* a = find_aadsts(code);
    return a == nullptr ? std::string() : fill(a->text, ErrorContext{});
}

Explanation explain_oauth_error(const OAuthError& e, const std::string& account) {
    ErrorContext ctx;
    ctx.account = account;
    return explain_oauth_error(e, ctx);
}

// The AADSTS code decides when one is known: Microsoft sends invalid_grant
// both for an expired refresh token (sign in again) and for a Conditional
// Access block (only an administrator helps).  The error word decides
// otherwise, then the HTTP status.  The provider's own error_description is
// quoted only when nothing better is known: its first line (the parser drops
// the rest), sanitized and short, so the message stays readable.
Explanation explain_oauth_error(const OAuthError& e, const ErrorContext& ctx) {
    Explanation x;
    const Word* word = find_word(e.error);
    // The device-flow words are unambiguous, while their AADSTS code is not
    // (Microsoft sends 70000 both for a declined sign-in and for a bad
    // refresh token): for these the word decides.
    const bool device_word = e.error == "authorization_declined" || e.error == "expired_token" ||
                             e.error == "bad_verification_code" || e.error == "access_denied";
    const Aadsts* known = nullptr;
    for (long code : e.error_codes) {
        if (device_word) break;
        if ((known = find_aadsts(code)) != nullptr) break;
    }

    std::string text;
    if (known != nullptr) {
        x.exit_code = known->exit_code;
        text = fill(known->text, ctx);
    } else if (word != nullptr) {
        x.exit_code = word->exit_code;
        text = fill(word->text, ctx);
    } else if (e.error.empty() && e.http_status == 429) {
        x.exit_code = kExitTempFail;
        text = "The identity provider is limiting requests (HTTP 429). Try again in a few minutes.";
    } else if (e.error.empty() && is_temporary_status(e.http_status)) {
        x.exit_code = kExitTempFail;
        text = "The identity provider is not answering properly (HTTP " +
               std::to_string(e.http_status) + "). Try again in a few minutes.";
    } else if (e.error.empty()) {
        // No OAuth error at all, e.g. an HTML page: most likely the wrong URL.
        x.exit_code = kExitConfig;
        text = "The identity provider answered HTTP " + std::to_string(e.http_status) +
               " without an OAuth error. Check --authority.";
    } else {
        x.exit_code = is_temporary_status(e.http_status) ? kExitTempFail : kExitConfig;
        text = "The identity provider refused the request (" + e.error + ").";
        if (x.exit_code == kExitTempFail) text += " Try again in a few minutes.";
    }

    if (!e.error.empty()) {
        x.error = e.error;
    } else if (e.http_status == 429 || e.http_status == 408 || e.http_status == 503) {
        x.error = "temporarily_unavailable";
    } else if (e.http_status >= 500) {
        x.error = "server_error";
    } else {
        x.error = "http_error";
    }

    x.message = text;
    if (!e.error_codes.empty()) {
        x.message += " (";
        for (std::size_t i = 0; i < e.error_codes.size() && i < 4; ++i) {
            if (i > 0) x.message += ", ";
            x.message += "AADSTS" + std::to_string(e.error_codes[i]);
        }
        x.message += ")";
    }
    if (known == nullptr && !e.error_description.empty()) {
        x.message += " The identity provider says: \"" + sanitize::text(e.error_description, 300) + "\"";
    }
    if (!e.trace_id.empty()) x.message += " trace_id: " + e.trace_id;
    if (!e.correlation_id.empty()) x.message += " correlation_id: " + e.correlation_id;
    if (!e.timestamp.empty() && (!e.trace_id.empty() || !e.correlation_id.empty())) {
        x.message += " timestamp: " + e.timestamp;
    }
    return x;
}

}  // namespace mailoauth
