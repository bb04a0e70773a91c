// mailoauth.conf parser: table-driven good and bad files, with line numbers.
#include <cppunit/extensions/HelperMacros.h>

#include <cstdio>
#include <cstdlib>
#include <unistd.h>

#include "common/config.h"

using namespace mailoauth::config;

class ConfigTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(ConfigTest);
    CPPUNIT_TEST(parses_globals_and_accounts);
    CPPUNIT_TEST(errors_carry_line_numbers);
    CPPUNIT_TEST(integers_are_checked);
    CPPUNIT_TEST(missing_file);
    CPPUNIT_TEST(loads_a_file);
    CPPUNIT_TEST(plugin_helper_table);
    CPPUNIT_TEST_SUITE_END();

public:
    void parses_globals_and_accounts() {
        const char* text =
            "# system settings\n"
            "helper = /usr/bin/mailoauth\n"
            "timeout=30\n"
            "tenant = organizations\n"
            "\n"
            "[account alice@example.com]\n"
            "  client_id = 11111111-2222-3333-4444-555555555555 \n"
            "user = shared@example.com\n"
            "; another comment style\n"
            "[account bob@example.com]\n"
            "tenant = contoso.onmicrosoft.com\n";
        Config c;
        Error e;
        CPPUNIT_ASSERT_MESSAGE(e.describe(), parse(text, "t.conf", c, e));
        CPPUNIT_ASSERT_EQUAL(std::string("/usr/bin/mailoauth"), c.get("", "helper", ""));
        CPPUNIT_ASSERT_EQUAL(std::string("11111111-2222-3333-4444-555555555555"),
                             c.get("alice@example.com", "client_id", ""));
        CPPUNIT_ASSERT_EQUAL(std::string("organizations"), c.get("alice@example.com", "tenant", ""));
        CPPUNIT_ASSERT_EQUAL(std::string("contoso.onmicrosoft.com"), c.get("bob@example.com", "tenant", ""));
        CPPUNIT_ASSERT_EQUAL(std::string("dflt"), c.get("bob@example.com", "user", "dflt"));
        CPPUNIT_ASSERT_EQUAL(7, c.lookup("alice@example.com", "client_id")->line);
    }

    void errors_carry_line_numbers() {
        struct { const char* text; int line; const char* fragment; } cases[] = {
            {"helper /usr/bin/x\n", 1, "expected 'key = value'"},
            {"\n\nbogus = 1\n", 3, "unknown setting 'bogus'"},
            {"[account a]\nhelper = /x\n", 2, "is a global setting"},
            {"[section]\n", 1, "unknown section"},
            {"[account a\n", 1, "must end with ']'"},
            {"[account ]\n", 1, "account name"},
            {"[account a]\n[account a]\n", 2, "defined twice"},
            {"timeout = 1\ntimeout = 2\n", 2, "set twice (first on line 1)"},
            {"Tenant = x\n", 1, "invalid setting name"},
        };
        for (const auto& c : cases) {
            Config cfg;
            Error e;
            CPPUNIT_ASSERT_MESSAGE(c.text, !parse(c.text, "/etc/mailoauth.conf", cfg, e));
            CPPUNIT_ASSERT_EQUAL_MESSAGE(c.text, c.line, e.line);
            CPPUNIT_ASSERT_MESSAGE(e.describe(), e.message.find(c.fragment) != std::string::npos);
            CPPUNIT_ASSERT_MESSAGE(e.describe(),
                                   e.describe().rfind("/etc/mailoauth.conf:" + std::to_string(c.line) + ": ", 0) == 0);
        }
    }

    void integers_are_checked() {
        Config c;
        Error e;
        CPPUNIT_ASSERT(parse("timeout = 20\n[account a]\nrefresh_margin = soon\n", "x", c, e));
        long v = 0;
        CPPUNIT_ASSERT(get_int(c, "", "timeout", 1, 600, 5, v, e));
        CPPUNIT_ASSERT_EQUAL(20L, v);
        CPPUNIT_ASSERT(get_int(c, "", "http_timeout", 1, 600, 7, v, e));
        CPPUNIT_ASSERT_EQUAL(7L, v);
        CPPUNIT_ASSERT(!get_int(c, "a", "refresh_margin", 0, 3000, 600, v, e));
        CPPUNIT_ASSERT_EQUAL(3, e.line);
        CPPUNIT_ASSERT(!get_int(c, "", "timeout", 30, 600, 5, v, e));
    }

    void missing_file() {
        Config c;
        Error e;
        CPPUNIT_ASSERT(load_file("/nonexistent/mailoauth.conf", true, c, e));
        CPPUNIT_ASSERT(!load_file("/nonexistent/mailoauth.conf", false, c, e));
        CPPUNIT_ASSERT(e.describe().find("/nonexistent/mailoauth.conf: cannot open") == 0);
    }

    void loads_a_file() {
        char path[] = "/tmp/mailoauth-config-test-XXXXXX";
        int fd = mkstemp(path);
        CPPUNIT_ASSERT(fd >= 0);
        std::string text = "store = /var/lib/mailoauth\n";
        CPPUNIT_ASSERT(write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
        close(fd);
        Config c;
        Error e;
        bool ok = load_file(path, false, c, e);
        unlink(path);
        CPPUNIT_ASSERT(ok);
        CPPUNIT_ASSERT_EQUAL(std::string("/var/lib/mailoauth"), c.get("", "store", ""));
    }

    // Which helper the plugin runs, and why: the environment, then the
    // file, then the default; a relative path is refused with its origin.
    void plugin_helper_table() {
        struct {
            const char* env;   // MAILOAUTH_HELPER, nullptr: unset
            const char* text;  // mailoauth.conf
            const char* path;
            const char* origin;
            const char* error;  // fragment, "" for none
        } cases[] = {
            {nullptr, "", MAILOAUTH_BINDIR "/mailoauth", "the default helper", ""},
            {nullptr, "timeout = 5\nhelper = /opt/m\n", "/opt/m", "helper in t.conf:2", ""},
            {nullptr, "helper = bin/m\n", "bin/m", "helper in t.conf:1", "t.conf:1: 'helper' must be an absolute"},
            {"/env/m", "helper = /opt/m\n", "/env/m", "MAILOAUTH_HELPER", ""},
            {"", "helper = /opt/m\n", "/opt/m", "helper in t.conf:1", ""},
            {"rel", "", "rel", "MAILOAUTH_HELPER", "MAILOAUTH_HELPER must be an absolute path"},
        };
        for (const auto& c : cases) {
            Config cfg;
            Error e;
            CPPUNIT_ASSERT(parse(c.text, "t.conf", cfg, e));
            if (c.env) ::setenv("MAILOAUTH_HELPER", c.env, 1);
            else ::unsetenv("MAILOAUTH_HELPER");
            HelperChoice h = plugin_helper(cfg);
            ::unsetenv("MAILOAUTH_HELPER");
            CPPUNIT_ASSERT_EQUAL_MESSAGE(c.text, std::string(c.path), h.path);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(c.text, std::string(c.origin), h.origin);
            if (*c.error)
                CPPUNIT_ASSERT_MESSAGE(h.error, h.error.find(c.error) != std::string::npos);
            else
                CPPUNIT_ASSERT_EQUAL_MESSAGE(c.text, std::string(), h.error);
        }
    }
};
CPPUNIT_TEST_SUITE_REGISTRATION(ConfigTest);
