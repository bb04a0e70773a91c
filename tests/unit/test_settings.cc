// The precedence of a setting (tokenhelper/settings.cc, resolve_setting):
// command line, stored record, mailoauth.conf [account], global part,
// default; as a table.
#include <cppunit/extensions/HelperMacros.h>

#include <optional>
#include <string>

#include "tokenhelper/settings.h"

using mailoauth::resolve_setting;
using mailoauth::SettingInputs;
using mailoauth::SettingSource;

namespace {

using Opt = std::optional<std::string>;

class SettingsTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(SettingsTest);
    CPPUNIT_TEST(precedence_table);
    CPPUNIT_TEST(config_inputs_reads_account_then_global);
    CPPUNIT_TEST_SUITE_END();

public:
    void precedence_table() {
        struct Case {
            Opt cli, record, account, global;
            const char* fallback;
            const char* want;
            SettingSource source;
        };
        const Opt none;
        const Case cases[] = {
            {Opt("cli"), Opt("rec"), Opt("acc"), Opt("glob"), "def", "cli", SettingSource::CommandLine},
            // An empty value on the command line is still the user's word.
            {Opt(""), Opt("rec"), Opt("acc"), Opt("glob"), "def", "", SettingSource::CommandLine},
            {none, Opt("rec"), Opt("acc"), Opt("glob"), "def", "rec", SettingSource::Record},
            // An empty record field is "not stored".
            {none, Opt(""), Opt("acc"), Opt("glob"), "def", "acc", SettingSource::ConfigAccount},
            {none, none, Opt("acc"), Opt("glob"), "def", "acc", SettingSource::ConfigAccount},
            {none, none, none, Opt("glob"), "def", "glob", SettingSource::ConfigGlobal},
            {none, Opt(""), none, Opt("glob"), "def", "glob", SettingSource::ConfigGlobal},
            {none, none, none, none, "def", "def", SettingSource::Default},
            {none, none, none, none, "", "", SettingSource::Default},
            {Opt("cli"), none, none, none, "def", "cli", SettingSource::CommandLine},
        };
        int i = 0;
        for (const Case& c : cases) {
            SettingInputs in;
            in.command_line = c.cli;
            in.record = c.record;
            in.config_account = c.account;
            in.config_global = c.global;
            in.fallback = c.fallback;
            mailoauth::Setting s = resolve_setting(in);
            const std::string what = "case " + std::to_string(i++);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(what, std::string(c.want), s.value);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(what, std::string(mailoauth::setting_source_name(c.source)),
                                         std::string(mailoauth::setting_source_name(s.source)));
        }
    }

    void config_inputs_reads_account_then_global() {
        mailoauth::config::Config cfg;
        cfg.global["cloud"].value = "usgov";
        cfg.accounts["alice"]["cloud"].value = "china";
        SettingInputs a, b;
        mailoauth::config_inputs(cfg, "alice", "cloud", a);
        mailoauth::config_inputs(cfg, "bob", "cloud", b);
        CPPUNIT_ASSERT_EQUAL(std::string("china"), resolve_setting(a).value);
        CPPUNIT_ASSERT_EQUAL(std::string("usgov"), resolve_setting(b).value);
        CPPUNIT_ASSERT(b.config_account == std::nullopt);
        SettingInputs c;
        mailoauth::config_inputs(cfg, "alice", "issuer", c);
        c.fallback = "none";
        CPPUNIT_ASSERT(resolve_setting(c).source == SettingSource::Default);
    }
};

}  // namespace

CPPUNIT_TEST_SUITE_REGISTRATION(SettingsTest);
