#include "tokenhelper/errors.h"

#include <cstring>

#include "common/sanitize.h"
#include "tokenhelper/form.h"
#include "tokenhelper/provider.h"

namespace mailoauth {

namespace {

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
    OAuthError e;
    e.error_codes.push_back(code);
    const ProviderError* a = default_provider().explain(e);
    return a == nullptr ? std::string() : fill(a->text, ErrorContext{});
}

Explanation explain_oauth_error(const OAuthError& e, const std::string& account) {
    ErrorContext ctx;
    ctx.account = account;
    return explain_oauth_error(e, ctx);
}

// The provider's explanation (for Microsoft: of the AADSTS code) decides
// when it has one: Microsoft sends invalid_grant
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
    const Provider& provider = ctx.provider != nullptr ? *ctx.provider : default_provider();
    const ProviderError* known = nullptr;
    if (!device_word && provider.explain != nullptr) known = provider.explain(e);

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
