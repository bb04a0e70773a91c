// The pass-through of `mailoauth connect` (tokenhelper/connect_relay.cc)
// over socket pairs standing for the server and the client: megabytes both
// ways at once arrive unchanged and in order (no deadlock when both sides
// write more than the kernel buffers hold), bytes read before the hand-over
// go first, and either side's close ends it after what that side sent.
#include <cppunit/extensions/HelperMacros.h>

#include <cerrno>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include "tokenhelper/connect_relay.h"

using namespace mailoauth::connect;

namespace {

std::string pattern(std::size_t n, unsigned seed) {
    std::string s(n, '\0');
    unsigned x = seed;
    for (auto& c : s) {
        x = x * 1103515245u + 12345u;
        c = static_cast<char>(x >> 16);
    }
    return s;
}

void write_all(int fd, const std::string& s) {
    std::size_t off = 0;
    while (off < s.size()) {
        ssize_t n = write(fd, s.data() + off, s.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        off += static_cast<std::size_t>(n);
    }
}

// Reads until EOF, or until want bytes when want > 0.
std::string read_all(int fd, std::size_t want = 0) {
    std::string s;
    char buf[65536];
    while (want == 0 || s.size() < want) {
        ssize_t n = read(fd, buf, want ? std::min(sizeof buf, want - s.size()) : sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        s.append(buf, static_cast<std::size_t>(n));
    }
    return s;
}

struct Pair {
    int ours = -1, theirs = -1;
    Pair() {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0) {
            ours = sv[0];
            theirs = sv[1];
        }
    }
    ~Pair() {
        if (ours >= 0) close(ours);
        if (theirs >= 0) close(theirs);
    }
    void close_theirs() {
        close(theirs);
        theirs = -1;
    }
};

}  // namespace

class ConnectRelayTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(ConnectRelayTest);
    CPPUNIT_TEST(megabytes_both_ways_unchanged);
    CPPUNIT_TEST(small_buffer_same_result);
    CPPUNIT_TEST(pending_bytes_go_first);
    CPPUNIT_TEST(client_close_ends_it_and_closes_nothing_early);
    CPPUNIT_TEST(separate_client_descriptors);
    CPPUNIT_TEST_SUITE_END();

    // The server peer sends down, reads all of up, then closes; the client
    // peer sends up and reads until the relay closes its side.
    void both_ways(std::size_t size, std::size_t buffer) {
        Pair server, client;
        CPPUNIT_ASSERT(server.ours >= 0 && client.ours >= 0);
        const std::string down = pattern(size, 1), up = pattern(size, 2);
        std::string got_up, got_down;
        std::thread srv([&] {
            std::thread w([&] { write_all(server.theirs, down); });
            got_up = read_all(server.theirs, up.size());
            w.join();
            server.close_theirs();
        });
        std::thread cli([&] {
            std::thread w([&] { write_all(client.theirs, up); });
            got_down = read_all(client.theirs);
            w.join();
        });
        PlainTransport s(server.ours), c(client.ours);
        RelayEnd end = relay(s, c, c, "", "", buffer);
        shutdown(client.ours, SHUT_RDWR);  // as the process's exit would
        srv.join();
        cli.join();
        CPPUNIT_ASSERT_EQUAL_MESSAGE(end.error, static_cast<int>(RelayEnd::Server), static_cast<int>(end.who));
        CPPUNIT_ASSERT_EQUAL(up.size(), got_up.size());
        CPPUNIT_ASSERT(up == got_up);
        CPPUNIT_ASSERT_EQUAL(down.size(), got_down.size());
        CPPUNIT_ASSERT(down == got_down);
    }

public:
    void megabytes_both_ways_unchanged() { both_ways(8 << 20, kRelayBuffer); }

    void small_buffer_same_result() { both_ways(1 << 20, 1000); }

    void pending_bytes_go_first() {
        Pair server, client;
        std::string got_up, got_down;
        std::thread srv([&] {
            got_up = read_all(server.theirs, 11);
            write_all(server.theirs, "world");
            server.close_theirs();
        });
        std::thread cli([&] {
            write_all(client.theirs, " and more");
            got_down = read_all(client.theirs);
        });
        PlainTransport s(server.ours), c(client.ours);
        RelayEnd end = relay(s, c, c, "hello ", "STAT\r\n");
        shutdown(client.ours, SHUT_RDWR);
        srv.join();
        cli.join();
        CPPUNIT_ASSERT_EQUAL(static_cast<int>(RelayEnd::Server), static_cast<int>(end.who));
        CPPUNIT_ASSERT_EQUAL(std::string("STAT\r\n and "), got_up);
        CPPUNIT_ASSERT_EQUAL(std::string("hello world"), got_down);
    }

    void client_close_ends_it_and_closes_nothing_early() {
        Pair server, client;
        std::string got_up;
        std::thread cli([&] {
            write_all(client.theirs, "a1 LOGOUT\r\n");
            client.close_theirs();
        });
        PlainTransport s(server.ours), c(client.ours);
        RelayEnd end = relay(s, c, c, "", "");
        cli.join();
        CPPUNIT_ASSERT_EQUAL(static_cast<int>(RelayEnd::Client), static_cast<int>(end.who));
        // What the client sent before it left reached the server.
        shutdown(server.ours, SHUT_WR);
        got_up = read_all(server.theirs);
        CPPUNIT_ASSERT_EQUAL(std::string("a1 LOGOUT\r\n"), got_up);
    }

    // mutt's tunnel: two pipes, not one socket.
    void separate_client_descriptors() {
        int in[2], out[2];
        CPPUNIT_ASSERT(pipe(in) == 0 && pipe(out) == 0);
        Pair server;
        const std::string down = pattern(3 << 20, 3);
        std::string got;
        std::thread srv([&] {
            write_all(server.theirs, down);
            server.close_theirs();
        });
        std::thread cli([&] { got = read_all(out[0]); });
        PlainTransport s(server.ours), ci(in[0]), co(out[1]);
        RelayEnd end = relay(s, ci, co, "", "");
        close(out[1]);
        srv.join();
        cli.join();
        close(in[0]);
        close(in[1]);
        close(out[0]);
        CPPUNIT_ASSERT_EQUAL(static_cast<int>(RelayEnd::Server), static_cast<int>(end.who));
        CPPUNIT_ASSERT(down == got);
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(ConnectRelayTest);
