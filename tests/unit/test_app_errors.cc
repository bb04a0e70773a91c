// Plain-words explanations for app-only accounts (tokenhelper/app_errors.cc).
#include <cppunit/extensions/HelperMacros.h>

#include <string>
#include <vector>

#include "tokenhelper/app_errors.h"

using mailoauth::Explanation;

namespace {

bool contains(const std::string& hay, const std::string& needle) {
    return hay.find(needle) != std::string::npos;
}

}  // namespace

class AppErrorsTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(AppErrorsTest);
    CPPUNIT_TEST(each_code_has_its_next_step);
    CPPUNIT_TEST(unknown_code_is_empty);
    CPPUNIT_TEST(missing_consent);
    CPPUNIT_TEST(server_replies);
    CPPUNIT_TEST(exchange_steps);
    CPPUNIT_TEST(certificate_expiry);
    CPPUNIT_TEST_SUITE_END();

public:
    void each_code_has_its_next_step() {
        struct Case {
            long code;
            std::vector<const char*> words;
        };
        const Case cases[] = {
            {7000215, {"Value", "not its Secret ID", "mailoauth login relay --app"}},
            {7000222, {"expired", "App registrations > (the app) > Certificates & secrets",
                       "mailoauth login relay --app", "credential file"}},
            {700027, {"Upload the certificate", "thumbprint"}},
            {700024, {"clock", "timedatectl"}},
            {700016, {"--client-id", "--tenant"}},
            {1002012, {"/.default", "https://outlook.office365.com/.default"}},
            {65001, {"Grant admin consent", "IMAP.AccessAsApp", "POP.AccessAsApp", "SMTP.SendAsApp",
                     "Office 365 Exchange Online"}},
            {501051, {"IMAP.AccessAsApp"}},
            {7000112, {"disabled", "Enterprise applications"}},
            {50013, {"timedatectl"}},
        };
        for (const Case& c : cases) {
            CPPUNIT_ASSERT(mailoauth::is_known_app_error(c.code));
            Explanation x = mailoauth::explain_app_error(c.code, "relay");
            CPPUNIT_ASSERT_EQUAL(int(mailoauth::kExitConfig), x.exit_code);
            CPPUNIT_ASSERT(!x.error.empty());
            for (const char* w : c.words)
                CPPUNIT_ASSERT_MESSAGE(std::to_string(c.code) + ": " + x.message, contains(x.message, w));
        }
        Explanation x = mailoauth::explain_app_error(7000215, "");
        CPPUNIT_ASSERT_MESSAGE(x.message, contains(x.message, "mailoauth login ACCOUNT --app"));
    }

    void unknown_code_is_empty() {
        CPPUNIT_ASSERT(!mailoauth::is_known_app_error(50173));
        CPPUNIT_ASSERT(mailoauth::explain_app_error(50173, "relay").message.empty());
    }

    void missing_consent() {
        Explanation x = mailoauth::explain_missing_app_consent("relay", {});
        CPPUNIT_ASSERT_EQUAL(int(mailoauth::kExitConfig), x.exit_code);
        CPPUNIT_ASSERT_EQUAL(std::string("consent_required"), x.error);
        CPPUNIT_ASSERT_MESSAGE(x.message, contains(x.message, "no \"roles\""));
        CPPUNIT_ASSERT_MESSAGE(x.message, contains(x.message, "Grant admin consent"));
        x = mailoauth::explain_missing_app_consent("relay", {"Mail.Read", "full_access_as_app"});
        CPPUNIT_ASSERT_MESSAGE(x.message, contains(x.message, "Mail.Read, full_access_as_app"));
    }

    void server_replies() {
        std::string s = mailoauth::explain_server_reply(
            "535 5.7.3 Authentication unsuccessful [SN4PR0601CA0015.namprd06.prod.outlook.com]");
        CPPUNIT_ASSERT_MESSAGE(s, contains(s, "New-ServicePrincipal"));
        CPPUNIT_ASSERT_MESSAGE(s, contains(s, "SmtpClientAuthenticationDisabled $false"));
        s = mailoauth::explain_server_reply(
            "430 4.2.0 STOREDRV.Submission.Exception:OutboundSpamException; Failed to process message");
        CPPUNIT_ASSERT_MESSAGE(s, contains(s, "Add-MailboxPermission"));
        CPPUNIT_ASSERT_MESSAGE(s, contains(s, "FullAccess"));
        s = mailoauth::explain_server_reply(
            "554 5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; "
            "Failed to process message due to a permanent exception");
        CPPUNIT_ASSERT_MESSAGE(s, contains(s, "Add-RecipientPermission"));
        CPPUNIT_ASSERT_MESSAGE(s, contains(s, "SendAs"));
        s = mailoauth::explain_server_reply(
            "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.");
        CPPUNIT_ASSERT_MESSAGE(s, contains(s, "Set-TransportConfig"));
        s = mailoauth::explain_server_reply("A1 NO AUTHENTICATE failed.");
        CPPUNIT_ASSERT_MESSAGE(s, contains(s, "IMAP or POP"));
        s = mailoauth::explain_server_reply("-ERR Authentication failure: unknown user name or bad password.");
        CPPUNIT_ASSERT_MESSAGE(s, contains(s, "IMAP or POP"));
        CPPUNIT_ASSERT_EQUAL(std::string(), mailoauth::explain_server_reply("250 2.0.0 OK"));
        CPPUNIT_ASSERT_EQUAL(std::string(), mailoauth::explain_server_reply(""));
        CPPUNIT_ASSERT(mailoauth::server_reply_table().size() >= 4);
        for (const auto& row : mailoauth::server_reply_table())
            CPPUNIT_ASSERT_MESSAGE(row.reply, !mailoauth::explain_server_reply(row.reply).empty());
    }

    void exchange_steps() {
        auto steps = mailoauth::exchange_steps_often_missing("11111111-2222-3333-4444-555555555555",
                                                             "relay@contoso.com");
        CPPUNIT_ASSERT(steps.size() >= 4);
        std::string all;
        for (const auto& s : steps) all += s + "\n";
        CPPUNIT_ASSERT_MESSAGE(all, contains(all, "New-ServicePrincipal -AppId 11111111-2222-3333-4444-555555555555"));
        CPPUNIT_ASSERT_MESSAGE(all, contains(all, "not the one of the app registration"));
        CPPUNIT_ASSERT_MESSAGE(all, contains(all, "Add-MailboxPermission -Identity relay@contoso.com"));
        CPPUNIT_ASSERT_MESSAGE(all, contains(all, "Set-CASMailbox -Identity relay@contoso.com"));
        CPPUNIT_ASSERT_MESSAGE(all, contains(all, "Add-RecipientPermission"));
        CPPUNIT_ASSERT_MESSAGE(all, contains(all, "Grant admin consent"));
        steps = mailoauth::exchange_steps_often_missing("", "");
        all.clear();
        for (const auto& s : steps) all += s + "\n";
        CPPUNIT_ASSERT_MESSAGE(all, contains(all, "<Application (client) ID>"));
        CPPUNIT_ASSERT_MESSAGE(all, contains(all, "<mailbox>"));
    }

    void certificate_expiry() {
        const std::int64_t now = 1700000000;
        CPPUNIT_ASSERT_EQUAL(std::string(), mailoauth::certificate_expiry_warning(now + 31 * 86400, now, "AB"));
        std::string w = mailoauth::certificate_expiry_warning(now + 30 * 86400, now, "AB12");
        CPPUNIT_ASSERT_MESSAGE(w, contains(w, "expires in 30 days"));
        CPPUNIT_ASSERT_MESSAGE(w, contains(w, "thumbprint AB12"));
        CPPUNIT_ASSERT_MESSAGE(w, contains(w, "Certificates & secrets"));
        w = mailoauth::certificate_expiry_warning(now + 86400 + 5, now, "");
        CPPUNIT_ASSERT_MESSAGE(w, contains(w, "expires in 1 day;"));
        w = mailoauth::certificate_expiry_warning(now + 60, now, "");
        CPPUNIT_ASSERT_MESSAGE(w, contains(w, "less than a day"));
        w = mailoauth::certificate_expiry_warning(now - 1, now, "");
        CPPUNIT_ASSERT_MESSAGE(w, contains(w, "expired on 2023-11-14 22:13:19 UTC"));
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(AppErrorsTest);
