#include "tokenhelper/connect.h"

#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/protocol.h"
#include "common/secret.h"
#include "plugin/wire.h"
#include "tokenhelper/connect_proto.h"
#include "tokenhelper/connect_relay.h"
#include "tokenhelper/connect_tls.h"
#include "tokenhelper/connect_transport.h"
#include "tokenhelper/errors.h"
#include "tokenhelper/store.h"
#include "tokenhelper/tokens.h"

namespace mailoauth::connect {

namespace {

using Clock = std::chrono::steady_clock;

// Why the hand-over did not happen: the exit status and a sentence for a
// person, which also goes to the client in `* BYE` or `-ERR`.
struct Failure {
    int code = kExitTempFail;
    std::string reason;
};

bool failed(Failure& f, int code, std::string reason) {
    f.code = code;
    f.reason = std::move(reason);
    return false;
}

// Each step before the hand-over (connect, TLS handshake, greeting,
// STARTTLS, capabilities, authentication) gets the whole --timeout.
class Deadline {
public:
    explicit Deadline(long seconds) : end_(Clock::now() + std::chrono::seconds(seconds)) {}
    int remaining_ms() const {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end_ - Clock::now()).count();
        return left <= 0 ? 0 : static_cast<int>(left);
    }

private:
    Clock::time_point end_;
};

// Waits until fd is ready for events or the deadline passes.
bool wait_fd(int fd, short events, const Deadline& d) {
    for (;;) {
        struct pollfd p = {fd, events, 0};
        int ms = d.remaining_ms();
        if (ms == 0) return false;
        int r = poll(&p, 1, ms);
        if (r > 0) return true;
        if (r == 0) return false;
        if (errno != EINTR) return true;  // let the next read or write report it
    }
}

// Writes all of data to a client descriptor (blocking until it can).
bool write_client(int fd, std::string_view data) {
    std::size_t off = 0;
    while (off < data.size()) {
        ssize_t n = write(fd, data.data() + off, data.size() - off);
        if (n > 0) {
            off += static_cast<std::size_t>(n);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd p = {fd, POLLOUT, 0};
            poll(&p, 1, -1);
        } else {
            return false;
        }
    }
    return true;
}

std::string where(const Options& o) { return o.host + " port " + o.port; }

bool is_loopback(const struct sockaddr* sa) {
    if (sa->sa_family == AF_INET) {
        auto* in = reinterpret_cast<const struct sockaddr_in*>(sa);
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        auto* in6 = reinterpret_cast<const struct sockaddr_in6*>(sa);
        if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)) return true;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) return in6->sin6_addr.s6_addr[12] == 127;
    }
    return false;
}

std::string address_text(const struct sockaddr* sa, socklen_t len) {
    char host[NI_MAXHOST];
    if (getnameinfo(sa, len, host, sizeof host, nullptr, 0, NI_NUMERICHOST) != 0) return "?";
    return host;
}

// The server connection: a socket and, once started, TLS over it, with
// the bytes read but not yet taken as lines.
class Conn {
public:
    Conn() = default;
    ~Conn() {
        transport_.reset();  // close_notify before the socket goes
        if (fd_ >= 0) close(fd_);
    }
    Conn(const Conn&) = delete;
    Conn& operator=(const Conn&) = delete;

    bool open(const Options& o, bool clear_text, Failure& f);
    bool start_tls(const Options& o, Failure& f);
    bool read_line(std::string& line, const Deadline& d, const std::string& waiting_for, Failure& f);
    bool send(std::string_view data, const Deadline& d, Failure& f);
    bool buffered() const { return !inbuf_.empty(); }
    std::string take_buffered() { return std::move(inbuf_); }
    Transport& transport() { return *transport_; }

    std::string host;

private:
    int fd_ = -1;
    std::unique_ptr<Transport> transport_;
    std::string inbuf_;
};

bool Conn::open(const Options& o, bool clear_text, Failure& f) {
    host = o.host;
    struct addrinfo hints = {};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    struct addrinfo* res = nullptr;
    int g = getaddrinfo(o.host.c_str(), o.port.c_str(), &hints, &res);
    if (g != 0)
        return failed(f, g == EAI_AGAIN ? kExitTempFail : kExitConfig,
                      "cannot find the address of " + o.host + ": " + gai_strerror(g));
    std::unique_ptr<struct addrinfo, void (*)(struct addrinfo*)> hold(res, freeaddrinfo);
    if (clear_text) {
        // A bearer token in clear text is readable by anyone on the path;
        // only a server on this machine is allowed without TLS.
        for (auto* ai = res; ai; ai = ai->ai_next)
            if (!is_loopback(ai->ai_addr))
                return failed(f, kExitConfig,
                              "refusing to send a token in clear text to " + o.host + " (" +
                                  address_text(ai->ai_addr, ai->ai_addrlen) +
                                  "): --tls none is only for a server on this machine; "
                                  "use --tls implicit or --tls starttls");
    }
    Deadline d(o.timeout);
    std::string last = "no address";
    for (auto* ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0) {
            last = std::strerror(errno);
            continue;
        }
        int r = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (r < 0 && errno == EINPROGRESS) {
            if (!wait_fd(fd, POLLOUT, d)) {
                close(fd);
                return failed(f, kExitTempFail,
                              "no connection to " + where(o) + " within " + std::to_string(o.timeout) +
                                  " s; check the host name and port, and the network");
            }
            int err = 0;
            socklen_t len = sizeof err;
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
            r = err ? -1 : 0;
            errno = err;
        }
        if (r == 0) {
            fd_ = fd;
            transport_ = std::make_unique<PlainTransport>(fd);
            return true;
        }
        last = std::strerror(errno);
        close(fd);
    }
    return failed(f, kExitTempFail, "cannot connect to " + where(o) + ": " + last);
}

bool Conn::start_tls(const Options& o, Failure& f) {
    std::string why;
    const TlsModuleV1* mod = tls_module(why);
    if (!mod) return failed(f, kExitConfig, why);
    char buf[512];
    TlsSession* s = mod->open(fd_, o.host.c_str(), o.ca_file.c_str(), buf, sizeof buf);
    if (!s) return failed(f, kExitConfig, buf);
    transport_ = std::make_unique<TlsTransport>(*mod, s, fd_);
    Deadline d(o.timeout);
    for (;;) {
        long r = mod->handshake(s);
        if (r == kTlsDone) return true;
        if (r == kTlsCertError) return failed(f, kExitConfig, mod->error(s));
        if (r == kTlsError || r == kTlsEof)
            return failed(f, kExitTempFail, std::string(mod->error(s)) + " (" + where(o) + ")");
        if (!wait_fd(fd_, r == kTlsWantWrite ? POLLOUT : POLLIN, d))
            return failed(f, kExitTempFail, "no TLS handshake with " + where(o) + " within " +
                                                std::to_string(o.timeout) + " s");
    }
}

bool Conn::read_line(std::string& line, const Deadline& d, const std::string& waiting_for, Failure& f) {
    char chunk[4096];
    for (;;) {
        LineStatus st = take_line(inbuf_, line);
        if (st == LineStatus::Line) return true;
        if (st == LineStatus::TooLong)
            return failed(f, kExitTempFail, host + " sent a line longer than " + std::to_string(kMaxLine) +
                                                " bytes while we waited for " + waiting_for);
        long r = transport_->read(chunk, sizeof chunk);
        if (r > 0) {
            inbuf_.append(chunk, static_cast<std::size_t>(r));
        } else if (r == kTlsEof) {
            return failed(f, kExitTempFail, host + " closed the connection while we waited for " + waiting_for);
        } else if (r == kTlsError) {
            return failed(f, kExitTempFail, transport_->error() + " (waiting for " + waiting_for + " from " + host + ")");
        } else if (!wait_fd(fd_, r == kTlsWantWrite ? POLLOUT : POLLIN, d)) {
            return failed(f, kExitTempFail, host + " sent no " + waiting_for + " within the time limit");
        }
    }
}

bool Conn::send(std::string_view data, const Deadline& d, Failure& f) {
    std::size_t off = 0;
    while (off < data.size()) {
        long r = transport_->write(data.data() + off, data.size() - off);
        if (r > 0) {
            off += static_cast<std::size_t>(r);
        } else if (r == kTlsEof || r == kTlsError) {
            return failed(f, kExitTempFail, host + " closed the connection" +
                                                (r == kTlsError ? " (" + transport_->error() + ")" : std::string()));
        } else if (!wait_fd(fd_, r == kTlsWantWrite ? POLLOUT : POLLIN, d)) {
            return failed(f, kExitTempFail, "cannot send to " + host + " within the time limit");
        }
    }
    return true;
}

// --- the token --------------------------------------------------------------

struct Token {
    Secret value;
    std::string user;  // the name on the wire: the mailbox
};

bool fetch_token(const Options& o, const Environment& env, const Store& store, HttpClient& http, bool force,
                 const std::string& rejected, Token& out, Failure& f) {
    TokenResult t = get_access_token(env, store, http, o.account, force, rejected);
    if (t.exit_code != 0) return failed(f, t.exit_code, t.message);
    if (!t.warning.empty()) std::fprintf(stderr, "mailoauth: warning: %s\n", t.warning.c_str());
    out.value = t.record.access_token;
    out.user = t.record.user.empty() ? o.account : t.record.user;
    if (!plugin::wire::valid_bearer_token(out.value.reveal()) || !plugin::wire::valid_wire_name(out.user))
        return failed(f, kExitTempFail, "the stored token or user name of " + o.account +
                                            " cannot be sent; run: mailoauth token " + o.account +
                                            " --force-refresh");
    return true;
}

// The base64 SASL response carrying the token; the caller wipes it.
std::string sasl_response(const Options& o, const Token& t) {
    std::string raw;
    if (o.mechanism == "OAUTHBEARER")
        plugin::wire::build_oauthbearer(raw, t.user, o.host, o.port, t.value.reveal());
    else
        plugin::wire::build_xoauth2(raw, t.user, t.value.reveal());
    std::string b64 = base64_encode(raw);
    wipe_string(raw);
    return b64;
}

// The protocol's answer to an error challenge (RFC 7628 3.2.3; XOAUTH2
// takes an empty one): the server then ends the exchange with its failure.
const char* challenge_answer(const Options& o) { return o.mechanism == "OAUTHBEARER" ? "AQ==\r\n" : "\r\n"; }

enum class Auth { Ok, Refused, Failed };

// --- IMAP -------------------------------------------------------------------

class Imap {
public:
    Imap(Conn& c, const Options& o) : c_(c), o_(o) {}

    // Sends "TAG command" and reads to its tagged response, collecting
    // capabilities from untagged CAPABILITY lines and the tagged code.
    bool command(const std::string& cmd, ImapResponse& done, const std::string& what, Failure& f) {
        std::string tag = "M" + std::to_string(++tags_);
        Deadline d(o_.timeout);
        if (!c_.send(tag + " " + cmd + "\r\n", d, f)) return false;
        for (;;) {
            std::string line;
            if (!c_.read_line(line, d, what, f)) return false;
            ImapResponse r = parse_imap_response(line);
            if (r.kind == ImapResponse::Untagged && r.status == "BYE")
                return failed(f, kExitTempFail, c_.host + " ended the session: " + peer_text(r.text));
            if (!r.capabilities.empty()) caps = r.capabilities;
            if (r.kind == ImapResponse::Tagged && r.tag == tag) {
                done = r;
                return true;
            }
            if (r.kind == ImapResponse::Invalid)
                return failed(f, kExitTempFail, c_.host + " sent something that is not IMAP: " + peer_text(line, 100));
        }
    }

    bool greeting(Failure& f) {
        Deadline d(o_.timeout);
        std::string line;
        if (!c_.read_line(line, d, "the IMAP greeting", f)) return false;
        ImapResponse r = parse_imap_response(line);
        if (r.kind == ImapResponse::Untagged && r.status == "BYE")
            return failed(f, kExitTempFail, c_.host + " refused the connection: " + peer_text(r.text));
        if (r.kind != ImapResponse::Untagged || (r.status != "OK" && r.status != "PREAUTH"))
            return failed(f, kExitTempFail, c_.host + " did not greet as an IMAP server (is " + o_.port +
                                                " its IMAP port?): " + peer_text(line, 100));
        caps = r.capabilities;
        preauth_ = r.status == "PREAUTH";
        return true;
    }

    bool starttls(Failure& f) {
        if (!capabilities(f)) return false;
        if (!has_capability(caps, "STARTTLS"))
            return failed(f, kExitConfig, c_.host + " does not offer STARTTLS on port " + o_.port +
                                              "; use --tls implicit with its IMAPS port (993)");
        ImapResponse r;
        if (!command("STARTTLS", r, "the answer to STARTTLS", f)) return false;
        if (r.status != "OK")
            return failed(f, kExitTempFail, c_.host + " refused STARTTLS: " + peer_text(r.text));
        // Bytes after the answer were sent in clear text and could have been
        // put there by anyone on the path: refuse them (CVE-2011-0411 class).
        if (c_.buffered())
            return failed(f, kExitTempFail, c_.host + " sent more data after its answer to STARTTLS; refused");
        if (!c_.start_tls(o_, f)) return false;
        caps.clear();  // what was said in clear text no longer counts
        return true;
    }

    bool capabilities(Failure& f) {
        if (!caps.empty()) return true;
        ImapResponse r;
        if (!command("CAPABILITY", r, "the capability list", f)) return false;
        if (r.status != "OK") return failed(f, kExitTempFail, c_.host + " refused CAPABILITY: " + peer_text(r.text));
        return true;
    }

    Auth authenticate(const Token& t, std::string& refusal, Failure& f) {
        if (preauth_) return Auth::Ok;
        if (!capabilities(f)) return Auth::Failed;
        if (!has_capability(caps, "AUTH=" + o_.mechanism)) {
            failed(f, kExitConfig, c_.host + " does not offer AUTH=" + o_.mechanism + " on port " + o_.port +
                                       (o_.mechanism == "XOAUTH2" ? "; try --mechanism OAUTHBEARER" : ""));
            return Auth::Failed;
        }
        std::string tag = "M" + std::to_string(++tags_);
        std::string response = sasl_response(o_, t);
        bool sent = has_capability(caps, "SASL-IR");
        std::string cmd = tag + " AUTHENTICATE " + o_.mechanism + (sent ? " " + response : std::string()) + "\r\n";
        Deadline d(o_.timeout);
        bool ok = c_.send(cmd, d, f);
        wipe_string(cmd);
        std::string challenge;
        std::vector<std::string> seen;  // an untagged CAPABILITY before the OK
        while (ok) {
            std::string line;
            if (!c_.read_line(line, d, "the answer to AUTHENTICATE", f)) break;
            ImapResponse r = parse_imap_response(line);
            if (r.kind == ImapResponse::Continuation) {
                if (!sent) {
                    std::string msg = response + "\r\n";
                    ok = c_.send(msg, d, f);
                    wipe_string(msg);
                    sent = true;
                } else {
                    challenge = describe_error_challenge(r.text);
                    ok = c_.send(challenge_answer(o_), d, f);
                }
                continue;
            }
            if (r.kind == ImapResponse::Untagged) {
                if (r.status == "BYE") {
                    failed(f, kExitTempFail, c_.host + " ended the session: " + peer_text(r.text));
                    break;
                }
                if (r.status == "CAPABILITY") seen = r.capabilities;
                continue;
            }
            if (r.kind != ImapResponse::Tagged || r.tag != tag) {
                failed(f, kExitTempFail, c_.host + " sent something that is not IMAP: " + peer_text(line, 100));
                break;
            }
            wipe_string(response);
            if (r.status == "OK") {
                // Capabilities change at login; only those sent with or
                // after the OK count.
                caps = r.capabilities.empty() ? seen : r.capabilities;
                return Auth::Ok;
            }
            refusal = peer_text(r.text) + (challenge.empty() ? "" : " (" + challenge + ")");
            if (r.status == "NO" && imap_code_is_temporary(r.code)) {
                failed(f, kExitTempFail, c_.host + " cannot log in " + t.user + " now: " + refusal);
                return Auth::Failed;
            }
            if (r.status == "BAD") {
                failed(f, kExitTempFail, c_.host + " did not accept AUTHENTICATE " + o_.mechanism + ": " + refusal);
                return Auth::Failed;
            }
            return Auth::Refused;
        }
        wipe_string(response);
        return Auth::Failed;
    }

    // After the login: the capabilities the OK named, else asked for.
    bool after_login(Failure& f) {
        if (!caps.empty()) return true;
        ImapResponse r;
        if (!command("CAPABILITY", r, "the capability list", f)) return false;
        return true;  // a NO leaves the client to ask itself
    }

    std::vector<std::string> caps;

private:
    Conn& c_;
    const Options& o_;
    unsigned tags_ = 0;
    bool preauth_ = false;
};

// --- POP3 -------------------------------------------------------------------

class Pop3 {
public:
    Pop3(Conn& c, const Options& o) : c_(c), o_(o) {}

    bool greeting(Failure& f) {
        Deadline d(o_.timeout);
        std::string line;
        if (!c_.read_line(line, d, "the POP3 greeting", f)) return false;
        Pop3Status s = parse_pop3_status(line);
        if (s.kind == Pop3Status::Err)
            return failed(f, kExitTempFail, c_.host + " refused the connection: " + peer_text(s.text));
        if (s.kind != Pop3Status::Ok)
            return failed(f, kExitTempFail, c_.host + " did not greet as a POP3 server (is " + o_.port +
                                                " its POP3 port?): " + peer_text(line, 100));
        return true;
    }

    bool starttls(Failure& f) {
        Pop3Status s;
        if (!command("STLS", s, "the answer to STLS", f)) return false;
        if (s.kind != Pop3Status::Ok)
            return failed(f, kExitConfig, c_.host + " refused STLS on port " + o_.port + " (" + peer_text(s.text) +
                                              "); use --tls implicit with its POP3S port (995)");
        if (c_.buffered())
            return failed(f, kExitTempFail, c_.host + " sent more data after its answer to STLS; refused");
        return c_.start_tls(o_, f);
    }

    // AUTH MECH, then the response on its own line: a POP3 command line is
    // limited to 255 octets (RFC 5034 4), far less than a token.
    Auth authenticate(const Token& t, std::string& refusal, Failure& f) {
        Deadline d(o_.timeout);
        if (!c_.send("AUTH " + o_.mechanism + "\r\n", d, f)) return Auth::Failed;
        std::string line;
        if (!c_.read_line(line, d, "the answer to AUTH", f)) return Auth::Failed;
        Pop3Status s = parse_pop3_status(line);
        if (s.kind != Pop3Status::Continuation) {
            failed(f, kExitConfig, c_.host + " does not accept AUTH " + o_.mechanism + " on port " + o_.port + ": " +
                                       peer_text(s.kind == Pop3Status::Invalid ? line : s.text));
            return Auth::Failed;
        }
        std::string msg = sasl_response(o_, t) + "\r\n";
        bool ok = c_.send(msg, d, f);
        wipe_string(msg);
        if (!ok || !c_.read_line(line, d, "the answer to AUTH", f)) return Auth::Failed;
        s = parse_pop3_status(line);
        std::string challenge;
        if (s.kind == Pop3Status::Continuation) {
            challenge = describe_error_challenge(s.text);
            if (!c_.send(challenge_answer(o_), d, f) || !c_.read_line(line, d, "the answer to AUTH", f))
                return Auth::Failed;
            s = parse_pop3_status(line);
        }
        if (s.kind == Pop3Status::Ok) return Auth::Ok;
        if (s.kind != Pop3Status::Err) {
            failed(f, kExitTempFail, c_.host + " sent something that is not POP3: " + peer_text(line, 100));
            return Auth::Failed;
        }
        refusal = peer_text(s.text) + (challenge.empty() ? "" : " (" + challenge + ")");
        if (pop3_code_is_temporary(s.code)) {
            failed(f, kExitTempFail, c_.host + " cannot log in " + t.user + " now: " + refusal);
            return Auth::Failed;
        }
        return Auth::Refused;
    }

    // The post-login CAPA, for the client's CAPA.  A server without CAPA
    // (-ERR) leaves an empty list.
    bool after_login(Failure& f) {
        Pop3Status s;
        if (!command("CAPA", s, "the answer to CAPA", f)) return false;
        if (s.kind != Pop3Status::Ok) return true;
        Deadline d(o_.timeout);
        std::vector<std::string> lines;
        for (std::size_t n = 0;; ++n) {
            std::string line;
            if (!c_.read_line(line, d, "the capability list", f)) return false;
            if (line == ".") break;
            if (n >= 1000) return failed(f, kExitTempFail, c_.host + " sent a capability list without end");
            if (!line.empty() && line[0] == '.') line.erase(0, 1);
            lines.push_back(line);
        }
        capa = pop3_client_capa(lines);
        return true;
    }

    std::vector<std::string> capa;

private:
    bool command(const std::string& cmd, Pop3Status& s, const std::string& what, Failure& f) {
        Deadline d(o_.timeout);
        std::string line;
        if (!c_.send(cmd + "\r\n", d, f) || !c_.read_line(line, d, what, f)) return false;
        s = parse_pop3_status(line);
        if (s.kind == Pop3Status::Invalid)
            return failed(f, kExitTempFail, c_.host + " sent something that is not POP3: " + peer_text(line, 100));
        return true;
    }

    Conn& c_;
    const Options& o_;
};

// The client's part of a POP3 session before its first real command: it
// may believe it must still log in.  Returns what the client sent from that
// command on (to go to the server), or false when the client left.
bool pop3_front(const Options& o, const Pop3& pop, std::string& to_server) {
    std::string buf;
    char chunk[4096];
    for (;;) {
        std::string line;
        LineStatus st = take_line(buf, line, 1024);
        if (st == LineStatus::TooLong) {
            to_server = std::move(buf);  // not a login command: the server judges it
            return true;
        }
        if (st == LineStatus::Line) {
            std::string answer;
            switch (classify_pop3_command(line)) {
            case Pop3Front::Forward:
                to_server = line + "\r\n" + buf;
                return true;
            case Pop3Front::AnswerOk: answer = "+OK already logged in by mailoauth\r\n"; break;
            case Pop3Front::AnswerAuthList: answer = "+OK\r\n.\r\n"; break;
            case Pop3Front::AnswerCapa: answer = pop3_capa_reply(pop.capa); break;
            case Pop3Front::AnswerStls: answer = "-ERR the connection is already encrypted by mailoauth\r\n"; break;
            }
            wipe_string(line);  // may have been a password
            if (!write_client(o.out_fd, answer)) return false;
            continue;
        }
        ssize_t n = read(o.in_fd, chunk, sizeof chunk);
        if (n > 0) {
            buf.append(chunk, static_cast<std::size_t>(n));
        } else if (n == 0) {
            return false;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            struct pollfd p = {o.in_fd, POLLIN, 0};
            poll(&p, 1, -1);
        } else if (errno != EINTR) {
            return false;
        }
    }
}

// --- the session ------------------------------------------------------------

// Connects, starts TLS, reads the greeting and logs in with t.  On Ok the
// caller hands the session over.
Auth establish(Conn& c, const Options& o, const Token& t, std::unique_ptr<Imap>& imap,
               std::unique_ptr<Pop3>& pop, std::string& refusal, Failure& f) {
    if (!c.open(o, o.tls == "none", f)) return Auth::Failed;
    if (o.tls == "implicit" && !c.start_tls(o, f)) return Auth::Failed;
    if (o.protocol == "imap") {
        imap = std::make_unique<Imap>(c, o);
        if (!imap->greeting(f)) return Auth::Failed;
        if (o.tls == "starttls" && !imap->starttls(f)) return Auth::Failed;
        Auth a = imap->authenticate(t, refusal, f);
        if (a == Auth::Ok && !imap->after_login(f)) return Auth::Failed;
        return a;
    }
    pop = std::make_unique<Pop3>(c, o);
    if (!pop->greeting(f)) return Auth::Failed;
    if (o.tls == "starttls" && !pop->starttls(f)) return Auth::Failed;
    Auth a = pop->authenticate(t, refusal, f);
    if (a == Auth::Ok && !pop->after_login(f)) return Auth::Failed;
    return a;
}

// Tells the client and the person why, in the client's protocol.
int fail_client(const Options& o, const Failure& f) {
    std::string reason = one_line(f.reason);
    std::fprintf(stderr, "mailoauth: %s\n", reason.c_str());
    write_client(o.out_fd, o.protocol == "imap" ? imap_bye_line("mailoauth: " + reason)
                                                : "-ERR mailoauth: " + reason + "\r\n");
    return f.code;
}

// Restores the client descriptors' flags (O_NONBLOCK is a property of the
// open file, which the client may share).
class ClientFlags {
public:
    explicit ClientFlags(const Options& o) : o_(o) {
        in_ = fcntl(o.in_fd, F_GETFL);
        out_ = fcntl(o.out_fd, F_GETFL);
    }
    ~ClientFlags() {
        if (in_ >= 0) fcntl(o_.in_fd, F_SETFL, in_);
        if (out_ >= 0) fcntl(o_.out_fd, F_SETFL, out_);
    }

private:
    const Options& o_;
    int in_, out_;
};

}  // namespace

bool complete_options(Options& o, std::string& why) {
    unsigned long long port = 0;
    if (!protocol::parse_decimal(o.port, 65535, port) || port == 0) {
        why = "PORT must be a number from 1 to 65535, not '" + o.port + "'";
        return false;
    }
    if (o.host.empty() || o.host.size() > 253 || o.host[0] == '-' ||
        o.host.find_first_of(" \t\r\n/") != std::string::npos) {
        why = "'" + o.host + "' is not a host name";
        return false;
    }
    if (o.protocol.empty()) o.protocol = (port == 110 || port == 995) ? "pop3" : "imap";
    if (o.protocol == "pop") o.protocol = "pop3";
    if (o.protocol != "imap" && o.protocol != "pop3") {
        why = "--protocol must be imap or pop3";
        return false;
    }
    if (o.tls.empty()) o.tls = (port == 143 || port == 110) ? "starttls" : "implicit";
    if (o.tls != "implicit" && o.tls != "starttls" && o.tls != "none") {
        why = "--tls must be implicit, starttls or none";
        return false;
    }
    if (o.mechanism.empty()) o.mechanism = "XOAUTH2";
    for (char& c : o.mechanism) c = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c;
    if (o.mechanism != "XOAUTH2" && o.mechanism != "OAUTHBEARER") {
        why = "--mechanism must be XOAUTH2 or OAUTHBEARER";
        return false;
    }
    if (!o.ca_file.empty() && access(o.ca_file.c_str(), R_OK) != 0) {
        why = "cannot read the CA file '" + o.ca_file + "': " + std::strerror(errno);
        return false;
    }
    return true;
}

int run(const Options& o, const Environment& env, HttpClient& http) {
    ClientFlags restore(o);
    Failure f;
    Store store(env.store_dir);
    std::string err;
    if (!store.open(false, err)) {
        f.code = kExitConfig;
        f.reason = err + "; sign in first with: mailoauth login " + o.account;
        return fail_client(o, f);
    }
    // The token first: a refresh may take a while, and the server's
    // pre-login timer should not run meanwhile.
    Token token;
    if (!fetch_token(o, env, store, http, false, "", token, f)) return fail_client(o, f);

    std::unique_ptr<Conn> conn;
    std::unique_ptr<Imap> imap;
    std::unique_ptr<Pop3> pop;
    for (int attempt = 0;; ++attempt) {
        // A new connection for the second try: some servers close the
        // connection after a failed login, and a fresh one is simplest.
        imap.reset();
        pop.reset();
        conn = std::make_unique<Conn>();
        std::string refusal;
        Auth a = establish(*conn, o, token, imap, pop, refusal, f);
        if (a == Auth::Ok) break;
        if (a == Auth::Failed) return fail_client(o, f);
        if (attempt == 1) {
            f.code = kExitNoPerm;
            f.reason = o.host + " refused the token of " + token.user + " even after a refresh: " + refusal +
                       "; check that the mailbox exists and may use IMAP or POP, and that the sign-in "
                       "has the scopes for it, then sign in again with: mailoauth login " + o.account;
            return fail_client(o, f);
        }
        // As the plugin does: a refused token is refreshed once, named by
        // its hash so that many tunnels refused at once refresh once.
        std::fprintf(stderr, "mailoauth: %s refused the token of %s (%s); getting a new one\n", o.host.c_str(),
                     token.user.c_str(), refusal.c_str());
        std::string rejected = protocol::token_id(token.value.reveal());
        if (!fetch_token(o, env, store, http, true, rejected, token, f)) return fail_client(o, f);
    }
    token.value.clear();

    std::string to_server;
    if (imap) {
        std::string hello = imap_preauth_line(client_capabilities(imap->caps), "Logged in as " + token.user +
                                                                                     " by mailoauth");
        if (!write_client(o.out_fd, hello)) return kExitOk;
    } else {
        if (!write_client(o.out_fd, "+OK Logged in as " + token.user + " by mailoauth\r\n")) return kExitOk;
        if (!pop3_front(o, *pop, to_server)) return kExitOk;
    }
    PlainTransport client_in(o.in_fd);
    PlainTransport client_out(o.out_fd);
    RelayEnd end = relay(conn->transport(), client_in, client_out, conn->take_buffered(), std::move(to_server));
    if (end.who == RelayEnd::Error) {
        std::fprintf(stderr, "mailoauth: the session with %s ended: %s\n", o.host.c_str(),
                     one_line(end.error).c_str());
        return kExitTempFail;
    }
    return kExitOk;
}

}  // namespace mailoauth::connect
