// mailoauth doctor's judgements (tokenhelper/doctor.cc): an account's
// record at a given time, and a SASL plugin directory.
#include <cppunit/extensions/HelperMacros.h>

#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "tokenhelper/doctor.h"

using mailoauth::AccountRecord;
using mailoauth::doctor::check_plugin_dirs;
using mailoauth::doctor::check_record;
using mailoauth::doctor::Finding;
using mailoauth::doctor::Level;

namespace {

constexpr std::int64_t kNow = 1800000000;
constexpr std::int64_t kDay = 86400;

AccountRecord healthy() {
    AccountRecord r;
    r.account = "alice@example.com";
    r.authority = "https://login.microsoftonline.com/organizations";
    r.client_id = "11111111-2222-3333-4444-555555555555";
    r.refresh_token = mailoauth::Secret("refresh-secret-value-1234");
    r.access_token = mailoauth::Secret("access-secret-value-5678");
    r.access_expires_at = kNow + 3600;
    r.refresh_obtained_at = kNow - 2 * kDay;
    r.created_at = kNow - 30 * kDay;
    return r;
}

bool contains(const std::string& hay, const std::string& needle) {
    return hay.find(needle) != std::string::npos;
}

std::string make_dir() {
    char tmpl[] = "/tmp/mailoauth-doctor-XXXXXX";
    const char* d = ::mkdtemp(tmpl);
    CPPUNIT_ASSERT(d != nullptr);
    return d;
}

void touch(const std::string& path) { std::ofstream(path) << ""; }

}  // namespace

class DoctorTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(DoctorTest);
    CPPUNIT_TEST(record_table);
    CPPUNIT_TEST(record_findings_never_show_tokens);
    CPPUNIT_TEST(plugin_dirs_table);
    CPPUNIT_TEST_SUITE_END();

public:
    void record_table() {
        struct Case {
            const char* name;
            void (*change)(AccountRecord&);
            Level level;
            bool relogin;
            const char* mentions;
        } cases[] = {
            {"healthy", [](AccountRecord&) {}, Level::Ok, false, "valid until"},
            {"access token expired: refreshed at next use",
             [](AccountRecord& r) { r.access_expires_at = kNow - 10; }, Level::Ok, false, "due for refresh"},
            {"inside the margin counts as due",
             [](AccountRecord& r) { r.access_expires_at = kNow + 300; }, Level::Ok, false, "due for refresh"},
            {"refresh token 85 days old: a reminder",
             [](AccountRecord& r) { r.refresh_obtained_at = kNow - 85 * kDay; }, Level::Note, false,
             "mailoauth token alice@example.com"},
            {"refresh token 91 days old: sign in again",
             [](AccountRecord& r) { r.refresh_obtained_at = kNow - 91 * kDay; }, Level::Problem, true,
             "mailoauth login alice@example.com"},
            {"no refresh token", [](AccountRecord& r) { r.refresh_token = mailoauth::Secret(); },
             Level::Problem, true, "mailoauth login alice@example.com"},
            {"temporary failure after the last refresh: retry",
             [](AccountRecord& r) {
                 r.last_error = "the identity provider did not answer within 30 s";
                 r.last_error_at = kNow - 60;
             },
             Level::Problem, false, "to retry: mailoauth token alice@example.com"},
            {"revoked: the explanation names the sign-in",
             [](AccountRecord& r) {
                 r.last_error = "AADSTS70000: rejected. Sign in again: `mailoauth login alice@example.com`.";
                 r.last_error_at = kNow - 60;
             },
             Level::Problem, true, "AADSTS70000"},
            {"an error from before the last refresh is history",
             [](AccountRecord& r) {
                 r.last_error = "the identity provider did not answer";
                 r.last_error_at = r.refresh_obtained_at - 10;
             },
             Level::Ok, false, "valid until"},
            {"unreadable CA file",
             [](AccountRecord& r) { r.ca_file = "/nonexistent/mailoauth-test-ca.pem"; }, Level::Problem, false,
             "/nonexistent/mailoauth-test-ca.pem"},
        };
        for (const Case& c : cases) {
            AccountRecord r = healthy();
            c.change(r);
            std::vector<Finding> f = check_record(r, 600, kNow);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(c.name, std::size_t(1), f.size());
            CPPUNIT_ASSERT_MESSAGE(c.name, f[0].level == c.level);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(c.name, c.relogin, f[0].relogin);
            CPPUNIT_ASSERT_MESSAGE(std::string(c.name) + ": " + f[0].text, contains(f[0].text, c.mentions));
            CPPUNIT_ASSERT_MESSAGE(c.name, contains(f[0].text, "alice@example.com"));
        }
    }

    void record_findings_never_show_tokens() {
        AccountRecord r = healthy();
        for (std::int64_t age : {std::int64_t(0), 85 * kDay, 91 * kDay}) {
            r.refresh_obtained_at = kNow - age;
            for (const Finding& f : check_record(r, 600, kNow)) {
                CPPUNIT_ASSERT(!contains(f.text, "refresh-secret-value"));
                CPPUNIT_ASSERT(!contains(f.text, "access-secret-value"));
            }
        }
    }

    void plugin_dirs_table() {
        std::string a = make_dir(), b = make_dir();
        // Nothing installed: a note, not a problem (token-command users do
        // not need the plugin).
        std::vector<Finding> f = check_plugin_dirs(a);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), f.size());
        CPPUNIT_ASSERT(f[0].level == Level::Note);
        CPPUNIT_ASSERT(contains(f[0].text, "libsasl2-modules-mailoauth"));
        // Installed, beside Debian's modules: ok.
        touch(a + "/libmailoauth.so");
        touch(a + "/libplain.so");
        f = check_plugin_dirs(a);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), f.size());
        CPPUNIT_ASSERT(f[0].level == Level::Ok);
        CPPUNIT_ASSERT(contains(f[0].text, a + "/libmailoauth.so"));
        // A rival XOAUTH2 module in another directory of the path.
        touch(b + "/libsasl-xoauth2.so");
        f = check_plugin_dirs(b + ":" + a + ":");
        int problems = 0;
        for (const Finding& x : f)
            if (x.level == Level::Problem) {
                ++problems;
                CPPUNIT_ASSERT(contains(x.text, b + "/libsasl-xoauth2.so"));
                CPPUNIT_ASSERT(contains(x.text, "remove one of them"));
            }
        CPPUNIT_ASSERT_EQUAL(1, problems);
        // A directory that does not exist is passed over.
        f = check_plugin_dirs("/nonexistent/sasl2");
        CPPUNIT_ASSERT(f.size() == 1 && f[0].level == Level::Note);
        for (const std::string& p : {a + "/libmailoauth.so", a + "/libplain.so", b + "/libsasl-xoauth2.so"})
            ::unlink(p.c_str());
        ::rmdir(a.c_str());
        ::rmdir(b.c_str());
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(DoctorTest);
