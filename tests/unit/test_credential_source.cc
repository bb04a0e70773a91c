// Where an app-only account's credential comes from
// (tokenhelper/credential_source.cc): login files, --credential-from files
// and directories, $CREDENTIALS_DIRECTORY, and the owner/mode rule.
#include <cppunit/extensions/HelperMacros.h>

#include <cstdlib>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/unit/testcert.h"
#include "tokenhelper/credential_source.h"

using mailoauth::AppCredential;

namespace {

void write_file(const std::string& path, const std::string& data, mode_t mode) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CPPUNIT_ASSERT(fd >= 0);
    CPPUNIT_ASSERT_EQUAL(static_cast<ssize_t>(data.size()), ::write(fd, data.data(), data.size()));
    ::close(fd);
    CPPUNIT_ASSERT_EQUAL(0, ::chmod(path.c_str(), mode));
}

bool contains(const std::string& hay, const std::string& needle) {
    return hay.find(needle) != std::string::npos;
}

const char* kSecret = "abc~DEF.ghi-123456789";

}  // namespace

class CredentialSourceTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(CredentialSourceTest);
    CPPUNIT_TEST(secret_file_at_login);
    CPPUNIT_TEST(certificate_pair_at_login);
    CPPUNIT_TEST(world_readable_secret_refused);
    CPPUNIT_TEST(credential_from_secret_file);
    CPPUNIT_TEST(credential_from_combined_pem);
    CPPUNIT_TEST(credential_from_directory);
    CPPUNIT_TEST(credentials_directory_expansion);
    CPPUNIT_TEST(pem_blocks_keep_only_the_label);
    CPPUNIT_TEST_SUITE_END();

public:
    void setUp() override {
        char tmpl[] = "/tmp/mailoauth-credsrc-XXXXXX";
        const char* d = ::mkdtemp(tmpl);
        CPPUNIT_ASSERT(d != nullptr);
        dir_ = d;
        key_ = testcert::key_pem(testcert::key(2048));
        cert_ = testcert::cert_pem(testcert::key(2048));
    }
    void tearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }

    void secret_file_at_login() {
        write_file(dir_ + "/s", std::string(kSecret) + "\n", 0600);
        AppCredential c;
        std::string err;
        CPPUNIT_ASSERT_MESSAGE(err, mailoauth::load_client_secret(dir_ + "/s", c, err));
        CPPUNIT_ASSERT(c.kind == AppCredential::Kind::Secret);
        CPPUNIT_ASSERT_EQUAL(std::string(kSecret), c.client_secret.reveal());
        CPPUNIT_ASSERT_MESSAGE(c.source, contains(c.source, dir_ + "/s"));
        // A key given as a secret: the wrong option, said so.
        write_file(dir_ + "/k", key_, 0600);
        CPPUNIT_ASSERT(!mailoauth::load_client_secret(dir_ + "/k", c, err));
        CPPUNIT_ASSERT_MESSAGE(err, contains(err, "--certificate"));
    }

    void certificate_pair_at_login() {
        write_file(dir_ + "/key.pem", key_, 0600);
        write_file(dir_ + "/cert.pem", cert_, 0644);  // a certificate is public
        AppCredential c;
        std::string err;
        CPPUNIT_ASSERT_MESSAGE(err, mailoauth::load_certificate_pair(dir_ + "/cert.pem", dir_ + "/key.pem", c, err));
        CPPUNIT_ASSERT(c.kind == AppCredential::Kind::Certificate);
        CPPUNIT_ASSERT_EQUAL(key_, c.private_key_pem.reveal() + "\n");
        CPPUNIT_ASSERT(contains(c.certificate_pem, "-----BEGIN CERTIFICATE-----"));
        // The key file must be private.
        write_file(dir_ + "/key.pem", key_, 0640);
        CPPUNIT_ASSERT(!mailoauth::load_certificate_pair(dir_ + "/cert.pem", dir_ + "/key.pem", c, err));
        CPPUNIT_ASSERT_MESSAGE(err, contains(err, "chmod 600"));
        CPPUNIT_ASSERT_MESSAGE(err, !contains(err, "PRIVATE KEY"));
        // No certificate anywhere.
        write_file(dir_ + "/key.pem", key_, 0600);
        CPPUNIT_ASSERT(!mailoauth::load_certificate_pair("", dir_ + "/key.pem", c, err));
        CPPUNIT_ASSERT_MESSAGE(err, contains(err, "--certificate FILE"));
        CPPUNIT_ASSERT(!mailoauth::load_certificate_pair(dir_ + "/cert.pem", "", c, err));
        CPPUNIT_ASSERT_MESSAGE(err, contains(err, "--private-key"));
    }

    void world_readable_secret_refused() {
        write_file(dir_ + "/s", kSecret, 0644);
        AppCredential c;
        std::string err;
        CPPUNIT_ASSERT(!mailoauth::load_client_secret(dir_ + "/s", c, err));
        CPPUNIT_ASSERT_MESSAGE(err, contains(err, "readable by others"));
        CPPUNIT_ASSERT_MESSAGE(err, !contains(err, kSecret));
        CPPUNIT_ASSERT(!mailoauth::load_credential_from(dir_ + "/s", nullptr, c, err));
        CPPUNIT_ASSERT_MESSAGE(err, !contains(err, kSecret));
    }

    void credential_from_secret_file() {
        write_file(dir_ + "/s", kSecret, 0400);
        AppCredential c;
        std::string err;
        CPPUNIT_ASSERT_MESSAGE(err, mailoauth::load_credential_from(dir_ + "/s", nullptr, c, err));
        CPPUNIT_ASSERT(c.kind == AppCredential::Kind::Secret);
        CPPUNIT_ASSERT_EQUAL(std::string(kSecret), c.client_secret.reveal());
        CPPUNIT_ASSERT_MESSAGE(c.source, contains(c.source, "at each use"));
        write_file(dir_ + "/c", cert_, 0600);
        CPPUNIT_ASSERT(!mailoauth::load_credential_from(dir_ + "/c", nullptr, c, err));
        CPPUNIT_ASSERT_MESSAGE(err, contains(err, "no private key"));
        CPPUNIT_ASSERT(!mailoauth::load_credential_from(dir_ + "/missing", nullptr, c, err));
        CPPUNIT_ASSERT_MESSAGE(err, contains(err, "No such file"));
    }

    void credential_from_combined_pem() {
        write_file(dir_ + "/relay.pem", key_ + cert_, 0600);
        AppCredential c;
        std::string err;
        CPPUNIT_ASSERT_MESSAGE(err, mailoauth::load_credential_from(dir_ + "/relay.pem", nullptr, c, err));
        CPPUNIT_ASSERT(c.kind == AppCredential::Kind::Certificate);
        CPPUNIT_ASSERT(!contains(c.certificate_pem, "PRIVATE KEY"));  // the store may hold this part
        CPPUNIT_ASSERT(contains(c.certificate_pem, "-----END CERTIFICATE-----"));
        CPPUNIT_ASSERT(contains(c.private_key_pem.reveal(), "PRIVATE KEY"));
        write_file(dir_ + "/keyonly.pem", key_, 0600);
        CPPUNIT_ASSERT(!mailoauth::load_credential_from(dir_ + "/keyonly.pem", nullptr, c, err));
        CPPUNIT_ASSERT_MESSAGE(err, contains(err, "no PEM certificate"));
    }

    void credential_from_directory() {
        const std::string d = dir_ + "/creds";
        CPPUNIT_ASSERT_EQUAL(0, ::mkdir(d.c_str(), 0700));
        AppCredential c;
        std::string err;
        CPPUNIT_ASSERT(!mailoauth::load_credential_from(d, nullptr, c, err));
        CPPUNIT_ASSERT_MESSAGE(err, contains(err, "holds neither client-secret"));
        write_file(d + "/client-secret", kSecret, 0400);
        CPPUNIT_ASSERT_MESSAGE(err, mailoauth::load_credential_from(d, nullptr, c, err));
        CPPUNIT_ASSERT(c.kind == AppCredential::Kind::Secret);
        write_file(d + "/private-key.pem", key_, 0400);
        CPPUNIT_ASSERT(!mailoauth::load_credential_from(d + "/", nullptr, c, err));
        CPPUNIT_ASSERT_MESSAGE(err, contains(err, "holds both"));
        CPPUNIT_ASSERT_EQUAL(0, ::unlink((d + "/client-secret").c_str()));
        // Key alone (no certificate inside): said so.
        CPPUNIT_ASSERT(!mailoauth::load_credential_from(d, nullptr, c, err));
        CPPUNIT_ASSERT_MESSAGE(err, contains(err, "certificate.pem"));
        write_file(d + "/certificate.pem", cert_, 0444);
        CPPUNIT_ASSERT_MESSAGE(err, mailoauth::load_credential_from(d, nullptr, c, err));
        CPPUNIT_ASSERT(c.kind == AppCredential::Kind::Certificate);
        CPPUNIT_ASSERT(contains(c.certificate_pem, "BEGIN CERTIFICATE"));
    }

    void credentials_directory_expansion() {
        std::string out, err;
        CPPUNIT_ASSERT(mailoauth::expand_credential_path("$CREDENTIALS_DIRECTORY/relay", "/run/credentials/a.service", out, err));
        CPPUNIT_ASSERT_EQUAL(std::string("/run/credentials/a.service/relay"), out);
        CPPUNIT_ASSERT(mailoauth::expand_credential_path("${CREDENTIALS_DIRECTORY}", "/run/c", out, err));
        CPPUNIT_ASSERT_EQUAL(std::string("/run/c"), out);
        CPPUNIT_ASSERT(mailoauth::expand_credential_path("/etc/x", nullptr, out, err));
        CPPUNIT_ASSERT_EQUAL(std::string("/etc/x"), out);
        CPPUNIT_ASSERT(!mailoauth::expand_credential_path("$CREDENTIALS_DIRECTORY/relay", nullptr, out, err));
        CPPUNIT_ASSERT_MESSAGE(err, contains(err, "LoadCredential="));
        CPPUNIT_ASSERT(!mailoauth::expand_credential_path("$CREDENTIALS_DIRECTORYX", "/run/c", out, err));

        const std::string d = dir_ + "/unit";
        CPPUNIT_ASSERT_EQUAL(0, ::mkdir(d.c_str(), 0500 | 0200));
        write_file(d + "/client-secret", kSecret, 0400);
        AppCredential c;
        CPPUNIT_ASSERT_MESSAGE(err, mailoauth::load_credential_from("$CREDENTIALS_DIRECTORY", d.c_str(), c, err));
        CPPUNIT_ASSERT_EQUAL(std::string(kSecret), c.client_secret.reveal());
        CPPUNIT_ASSERT_MESSAGE(c.source, contains(c.source, "$CREDENTIALS_DIRECTORY"));
        CPPUNIT_ASSERT_MESSAGE(err, mailoauth::load_credential_from("$CREDENTIALS_DIRECTORY/client-secret", d.c_str(), c, err));
    }

    void pem_blocks_keep_only_the_label() {
        const std::string both = key_ + cert_ + cert_;
        const std::string certs = mailoauth::pem_blocks(both, "CERTIFICATE");
        CPPUNIT_ASSERT(!contains(certs, "PRIVATE"));
        CPPUNIT_ASSERT_EQUAL(cert_ + cert_, certs);
        CPPUNIT_ASSERT_EQUAL(std::string(), mailoauth::pem_blocks("nothing", "CERTIFICATE"));
        CPPUNIT_ASSERT_EQUAL(std::string(), mailoauth::pem_blocks("-----BEGIN CERTIFICATE-----\nAAA", "CERTIFICATE"));
    }

private:
    std::string dir_, key_, cert_;
};

CPPUNIT_TEST_SUITE_REGISTRATION(CredentialSourceTest);
