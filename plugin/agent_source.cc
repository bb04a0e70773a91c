#include "plugin/agent_source.h"

#include "common/fd.h"
#include "common/msgio.h"
#include "common/socket_name.h"

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
    : timeout_s_(timeout_s), config_hint_(std::move(config_hint)) {
    std::string err;
    if (!parse_socket_name(socket.empty() ? std::string(kDefaultSocket) : socket, name_, err)) {
        setup_error_ = config_hint_ + ": agent_socket: " + sanitize::text(err, 300);
        return;
    }

    // Whom the request may go to.  Never "anyone": an abstract name can be
    // bound by any local user first, and whoever holds it would receive
    // every request and could answer with a token of its choosing.
    // Root, the agent's system users, and our own effective uid (a personal
    // agent; checked at each fetch, since Postfix loads us as root and
    // then drops privileges) are the only candidates.  Names are resolved
    // now, at plugin init, because inside Postfix's chroot there is no
    // passwd file.
    trusted_uids_.push_back(0);
    trusted_text_ = "root";
    auto add = [&](uid_t uid, const std::string& text) {
        for (uid_t u : trusted_uids_)
            if (u == uid) return;
        trusted_uids_.push_back(uid);
        trusted_text_ += ", " + text;
    };
    if (!agent_user.empty()) {
        unsigned long long n = 0;
        uid_t uid = 0;
        if (protocol::parse_decimal(agent_user, static_cast<uid_t>(-1) - 1ull, n)) {
            uid = static_cast<uid_t>(n);
        } else if (!lookup_uid(agent_user, uid)) {
            setup_error_ = config_hint_ + ": agent_user '" + sanitize::text(agent_user, 64) +
                           "' is not a user on this system";
            return;
        }
        add(uid, sanitize::text(agent_user, 64) + " (agent_user)");
    }
    uid_t uid = 0;
    if (lookup_uid("mailoauth", uid)) add(uid, "mailoauth");
}

bool AgentSource::trusted(uid_t uid) const {
    if (uid == ::geteuid()) return true;  // the same user could read our memory anyway
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
    const std::string& spec = name_.spec;
    const std::string who = "the mailoauth agent at " + spec;

    protocol::Message msg;
    if (!protocol::build_request(req, msg)) {
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
        if (::connect(fd.get(), reinterpret_cast<const struct sockaddr*>(&name_.addr), name_.len) == 0) break;
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
        reply.message = std::string("cannot check who listens on ") + spec + ": " + std::strerror(errno);
        return;
    }
    if (!trusted(cred.uid)) {
        // Nothing was sent: the listener learns neither the account nor
        // the host.  The message (logged by the mechanism) names it so an
        // administrator can find the process.
        reply.status = TokenStatus::Config;
        reply.message = "the process listening on " + spec + " (pid " + std::to_string(cred.pid) + ") runs as uid " +
                        std::to_string(cred.uid) + ", which is not trusted with the request (trusted: " +
                        trusted_text_ + " and this program's uid " + std::to_string(::geteuid()) + "); is the mailoauth agent running, or has another program taken " +
                        "its name?  Check agent_socket and agent_user in " + config_hint_;
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
                        " KiB; is " + spec + " really the mailoauth agent?";
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
    int code = 0;
    if (!protocol::reply_status(answer, code)) {
        reply.message = who + " replied without a valid status";
        return;
    }
    if (!accept_status(who, static_cast<unsigned long long>(code), "status", peer_says(answer), reply)) return;
    read_token_reply(who, answer, reply);
}

}  // namespace mailoauth::plugin
