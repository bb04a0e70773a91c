// read_secret_file: the store's ownership and mode rule for credential files.
#include <cppunit/extensions/HelperMacros.h>

#include <cstdlib>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

#include "tokenhelper/secret_file.h"

using mailoauth::Secret;
using mailoauth::read_secret_file;

namespace {

std::string make_dir() {
    char tmpl[] = "/tmp/mailoauth-secretfile-XXXXXX";
    const char* d = ::mkdtemp(tmpl);
    return d ? d : "";
}

void write_file(const std::string& path, const std::string& data, mode_t mode) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CPPUNIT_ASSERT(fd >= 0);
    CPPUNIT_ASSERT_EQUAL(static_cast<ssize_t>(data.size()), ::write(fd, data.data(), data.size()));
    ::close(fd);
    CPPUNIT_ASSERT_EQUAL(0, ::chmod(path.c_str(), mode));
}

}  // namespace

class SecretFileTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(SecretFileTest);
    CPPUNIT_TEST(reads_and_strips_newline);
    CPPUNIT_TEST(follows_a_symlink_to_a_private_file);
    CPPUNIT_TEST(refuses_group_or_world_readable);
    CPPUNIT_TEST(refuses_another_owner);
    CPPUNIT_TEST(refuses_empty_missing_directory_and_fifo);
    CPPUNIT_TEST(refuses_oversized_without_echoing);
    CPPUNIT_TEST_SUITE_END();

public:
    void setUp() override { dir_ = make_dir(); CPPUNIT_ASSERT(!dir_.empty()); }
    void tearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }

    void reads_and_strips_newline() {
        write_file(dir_ + "/s", "s3cr3t-value~x\r\n", 0600);
        Secret s;
        std::string err;
        CPPUNIT_ASSERT_MESSAGE(err, read_secret_file(dir_ + "/s", "the client secret", s, err));
        CPPUNIT_ASSERT_EQUAL(std::string("s3cr3t-value~x"), s.reveal());
        write_file(dir_ + "/k", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", 0400);
        CPPUNIT_ASSERT_MESSAGE(err, read_secret_file(dir_ + "/k", "the private key", s, err));
        CPPUNIT_ASSERT_EQUAL(std::string("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"), s.reveal());
    }
    void follows_a_symlink_to_a_private_file() {
        write_file(dir_ + "/real", "abc", 0600);
        CPPUNIT_ASSERT_EQUAL(0, ::symlink((dir_ + "/real").c_str(), (dir_ + "/link").c_str()));
        Secret s;
        std::string err;
        CPPUNIT_ASSERT_MESSAGE(err, read_secret_file(dir_ + "/link", "the client secret", s, err));
        CPPUNIT_ASSERT_EQUAL(std::string("abc"), s.reveal());
    }
    void refuses_group_or_world_readable() {
        for (mode_t m : {0640, 0604, 0660, 0644}) {
            write_file(dir_ + "/s", "topsecretvalue", m);
            Secret s;
            std::string err;
            CPPUNIT_ASSERT(!read_secret_file(dir_ + "/s", "the client secret", s, err));
            CPPUNIT_ASSERT(s.empty());
            CPPUNIT_ASSERT_MESSAGE(err, err.find("chmod 600") != std::string::npos);
            CPPUNIT_ASSERT(err.find("topsecretvalue") == std::string::npos);
        }
    }
    void refuses_another_owner() {
        if (::geteuid() != 0) return;  // only root can make a file another user owns
        write_file(dir_ + "/s", "x", 0600);
        CPPUNIT_ASSERT_EQUAL(0, ::chown((dir_ + "/s").c_str(), 65534, 65534));
        Secret s;
        std::string err;
        CPPUNIT_ASSERT(!read_secret_file(dir_ + "/s", "the client secret", s, err));
        CPPUNIT_ASSERT_MESSAGE(err, err.find("owned by uid 65534") != std::string::npos);
    }
    void refuses_empty_missing_directory_and_fifo() {
        Secret s;
        std::string err;
        write_file(dir_ + "/e", "\n", 0600);
        CPPUNIT_ASSERT(!read_secret_file(dir_ + "/e", "the client secret", s, err));
        CPPUNIT_ASSERT_MESSAGE(err, err.find("empty") != std::string::npos);
        CPPUNIT_ASSERT(!read_secret_file(dir_ + "/missing", "the client secret", s, err));
        CPPUNIT_ASSERT_MESSAGE(err, err.find("cannot open") != std::string::npos);
        CPPUNIT_ASSERT(!read_secret_file(dir_, "the client secret", s, err));
        CPPUNIT_ASSERT_MESSAGE(err, err.find("not a regular file") != std::string::npos);
        CPPUNIT_ASSERT_EQUAL(0, ::mkfifo((dir_ + "/fifo").c_str(), 0600));
        CPPUNIT_ASSERT(!read_secret_file(dir_ + "/fifo", "the client secret", s, err));  // does not block
        CPPUNIT_ASSERT_MESSAGE(err, err.find("not a regular file") != std::string::npos);
    }
    void refuses_oversized_without_echoing() {
        write_file(dir_ + "/big", std::string(100, 'q'), 0600);
        Secret s;
        std::string err;
        CPPUNIT_ASSERT(!read_secret_file(dir_ + "/big", "the client secret", s, err, 64));
        CPPUNIT_ASSERT(err.find("qqqq") == std::string::npos);
        CPPUNIT_ASSERT(s.empty());
    }

private:
    std::string dir_;
};
CPPUNIT_TEST_SUITE_REGISTRATION(SecretFileTest);
