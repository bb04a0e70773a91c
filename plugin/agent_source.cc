#include "plugin/agent_source.h"

#include "common/fd.h"
#include "common/msgio.h"

#include "common/protocol.h"
#include "common/sanitize.h"
#include "common/secret.h"
#include "plugin/wire.h"

#include <poll.h>
#include <pwd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

namespace mailoauth::plugin {

namespace {

using msgio::Io;
using msgio::now_ms;

int remaining(long long deadline) {
    long long left = deadline - now_ms();
    return left <= 0 ? 0 : static_cast<int>(left);
}


bool lookup_uid(const std::string& name, uid_t& uid) {
    char buf[16384];
    struct passwd pw;
    struct passwd* res = nullptr;
    if (getpwnam_r(name.c_str(), &pw, buf, sizeof buf, &res) != 0 || !res) return false;
    uid = pw.pw_uid;
    return true;
}

}  // namespace

AgentSource::AgentSource(std::string socket, std::string agent_user, long timeout_s, std::string config_hint)
    : spec_(socket.empty() ? std::string(kDefaultSocket) : std::move(socket)), timeout_s_(timeout_s),
      config_hint_(std::move(config_hint)) {
    addr_.sun_family = AF_UNIX;
    const std::size_t room = sizeof addr_.sun_path;
    if (spec_.size() >= 2 && spec_[0] == '@' && spec_.size() - 1 <= room - 1) {
        // Abstract namespace: a leading NUL, then the name, no terminator.
        std::memcpy(addr_.sun_path + 1, spec_.data() + 1, spec_.size() - 1);
        addr_len_ = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + spec_.size());
    } else if (spec_[0] == '/' && spec_.size() <= room - 1) {
        std::memcpy(addr_.sun_path, spec_.data(), spec_.size());
        addr_len_ = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + spec_.size() + 1);
    } else {
        setup_error_ = config_hint_ + ": agent_socket '" + sanitize::text(spec_, 120) +
                       "' must be @NAME (abstract, e.g. @mailoauth-agent) or an absolute path of at most " +
                       std::to_string(room - 1) + " bytes";
        return;
    }

    if (!agent_user.empty()) {
        unsigned long long n = 0;
        uid_t uid = 0;
        if (parse_decimal(agent_user, static_cast<uid_t>(-1) - 1ull, n)) {
            uid = static_cast<uid_t>(n);
        } else if (!lookup_uid(agent_user, uid)) {
            setup_error_ = config_hint_ + ": agent_user '" + sanitize::text(agent_user, 64) +
                           "' is not a user on this system";
            return;
        }
        trusted_uids_.push_back(uid);
        trusted_text_ = sanitize::text(agent_user, 64);
        return;
    }
    uid_t uid = 0;
    if (lookup_uid("mailoauth", uid)) {
        trusted_uids_.push_back(0);
        trusted_uids_.push_back(uid);
        trusted_text_ = "root or mailoauth";
    } else {
        trust_any_ = true;  // no system user to expect: a personal agent
    }
}

bool AgentSource::trusted(uid_t uid) const {
    if (trust_any_) return true;
    for (uid_t u : trusted_uids_)
        if (u == uid) return true;
    return false;
}

void AgentSource::fetch(const TokenRequest& req, TokenReply& reply) {
    reply = TokenReply();
    if (!setup_error_.empty()) {
        reply.status = TokenStatus::Config;
        reply.message = setup_error_;
        return;
    }
    const std::string who = "the mailoauth agent at " + spec_;

    protocol::Message msg;
    if (!build_request(req, msg)) {
        reply.message = "the account, service or host name contains characters that cannot be sent to " + who;
        return;
    }
    const long long deadline = now_ms() + timeout_s_ * 1000;

    Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (fd.get() < 0) {
        reply.status = TokenStatus::TryAgain;
        reply.message = std::string("cannot create a socket: ") + std::strerror(errno);
        return;
    }
    for (;;) {
        if (::connect(fd.get(), reinterpret_cast<const struct sockaddr*>(&addr_), addr_len_) == 0) break;
        int e = errno;
        if (e == EINTR) continue;
        if (e == EAGAIN && remaining(deadline) > 0) {
            // The agent's backlog is full: it is busy, not gone.
            ::poll(nullptr, 0, 20);
            continue;
        }
        if (e == EACCES || e == EPERM) {
            reply.status = TokenStatus::Config;
            reply.message = "permission denied connecting to " + who + "; with a filesystem socket the caller " +
                            "needs search permission on its directory (or use an @abstract agent_socket)";
        } else if (e == ENOENT || e == ECONNREFUSED) {
            reply.status = TokenStatus::TryAgain;
            reply.message = who + " is not running; start it (systemctl start mailoauth-agent) or fix " +
                            "agent_socket in " + config_hint_;
        } else {
            reply.status = TokenStatus::TryAgain;
            reply.message = "cannot connect to " + who + ": " + std::strerror(e);
        }
        return;
    }

    // Before the request leaves: is this really the agent?  An abstract
    // name can be taken by any local user first.
    struct ucred cred;
    socklen_t clen = sizeof cred;
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0 || clen != sizeof cred) {
        reply.message = std::string("cannot check who listens on ") + spec_ + ": " + std::strerror(errno);
        return;
    }
    if (!trusted(cred.uid)) {
        reply.status = TokenStatus::Config;
        reply.message = "the process listening on " + spec_ + " (pid " + std::to_string(cred.pid) + ") runs as uid " +
                        std::to_string(cred.uid) + ", not as " + trusted_text_ +
                        ": not trusted with the request; check agent_user in " + config_hint_;
        return;
    }

    int err = 0;
    std::string request = protocol::serialize(msg);
    Io io = msgio::send_all(fd.get(), request, deadline, err);
    if (io != Io::Ok) {
        reply.status = TokenStatus::TryAgain;
        reply.message = io == Io::TimedOut ? who + " did not take the request within " + std::to_string(timeout_s_) + " s"
                        : io == Io::Closed ? who + " closed the connection before reading the request"
                                           : "cannot send the request to " + who + ": " + std::strerror(err);
        return;
    }

    std::string raw;
    io = msgio::read_message(fd.get(), raw, deadline, err);
    if (io == Io::TimedOut) {
        wipe_string(raw);
        reply.status = TokenStatus::TryAgain;
        reply.message = who + " did not answer within " + std::to_string(timeout_s_) +
                        " s; check that the identity provider can be reached (journalctl -u mailoauth-agent)";
        return;
    }
    if (io != Io::Ok) {
        wipe_string(raw);
        reply.status = TokenStatus::TryAgain;
        reply.message = "cannot read the reply of " + who + ": " + std::strerror(err);
        return;
    }
    if (raw.size() > protocol::kMaxMessage) {
        wipe_string(raw);
        reply.message = who + " sent more than " + std::to_string(protocol::kMaxMessage / 1024) +
                        " KiB; is " + spec_ + " really the mailoauth agent?";
        return;
    }
    if (raw.empty()) {
        reply.status = TokenStatus::TryAgain;
        reply.message = who + " closed the connection without a reply (stopping or restarting?)";
        return;
    }
    protocol::Message answer;
    protocol::ParseResult pr = protocol::parse(raw, answer);
    wipe_string(raw);
    if (!pr.ok) {
        reply.message = who + " sent a malformed reply (line " + std::to_string(pr.line) + ": " +
                        sanitize::text(pr.error, 100) + ")";
        return;
    }
    unsigned long long code = 0;
    if (!parse_decimal(answer.get_or("status", ""), 255, code)) {
        reply.message = who + " replied without a valid status";
        return;
    }
    if (!accept_status(who, code, "status", peer_says(answer), reply)) return;
    read_token_reply(who, answer, reply);
}

}  // namespace mailoauth::plugin
