#include "tokenhelper/agent_gate.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "common/protocol.h"

namespace mailoauth::agent {

namespace {

bool is_number(const std::string& w) {
    return !w.empty() && w.find_first_not_of("0123456789") == std::string::npos;
}

// A decimal id that fits the type (parse_allow_words allows 10 digits);
// an id out of range matches nobody.
template <typename Id>
bool to_id(const std::string& w, Id& out) {
    unsigned long long v = std::stoull(w);
    if (v > static_cast<unsigned long long>(static_cast<Id>(-1))) return false;
    out = static_cast<Id>(v);
    return true;
}

}  // namespace

GateLookups system_lookups() {
    GateLookups l;
    l.user = lookup_user;
    l.group = lookup_group;
    l.groups_of = [](uid_t uid, std::vector<gid_t>& groups) {
        std::string name;
        return user_groups(uid, name, groups);
    };
    return l;
}

void Gate::resolve(const config::Config& cfg, uid_t self, GateLookups lookups) {
    self_ = self;
    lookups_ = std::move(lookups);
    uids_.clear();
    gids_.clear();
    cache_.clear();
    std::vector<const config::Section*> sections{&cfg.global};
    for (const auto& a : cfg.accounts) sections.push_back(&a.second);
    for (const config::Section* sec : sections) {
        for (const char* key : {"allow_users", "allow_groups"}) {
            auto it = sec->find(key);
            if (it == sec->end()) continue;
            std::vector<std::string> words;
            std::string ignored;
            if (!parse_allow_words(it->second.value, words, ignored)) continue;
            const bool users = std::string(key) == "allow_users";
            for (const auto& w : words) {
                if (users) {
                    uid_t u;
                    if (is_number(w) ? to_id(w, u) : lookups_.user && lookups_.user(w, u)) uids_.insert(u);
                } else {
                    gid_t g;
                    if (is_number(w) ? to_id(w, g) : lookups_.group && lookups_.group(w, g)) gids_.insert(g);
                }
            }
        }
    }
}

bool Gate::admits(uid_t uid, gid_t gid, std::int64_t now) {
    if (uid == 0 || uid == self_ || uids_.count(uid) || gids_.count(gid)) return true;
    if (gids_.empty()) return false;
    // Membership by the group database: a lookup (maybe over the network)
    // that a caller retrying in a loop must not repeat each time.
    auto it = cache_.find(uid);
    if (it != cache_.end() && now - it->second.at < kGateCacheSeconds && now >= it->second.at)
        return it->second.admitted;
    bool admitted = false;
    std::vector<gid_t> groups;
    if (lookups_.groups_of && lookups_.groups_of(uid, groups))
        for (gid_t g : groups)
            if (gids_.count(g)) admitted = true;
    if (cache_.size() >= 4096) cache_.clear();
    cache_[uid] = Cached{admitted, now};
    return admitted;
}

std::string refusal_reply(const std::string& error, const std::string& description, int status) {
    protocol::Message m;
    m.set("error", error);
    m.set("error_description", description);
    m.set("status", std::to_string(status));
    return protocol::serialize(m);
}

Refusals::~Refusals() {
    for (const Conn& c : conns_) ::close(c.fd);
}

void Refusals::add(int fd, uid_t uid, const std::string& reply, long long now_ms) {
    ssize_t ignored = ::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)ignored;
    // No more from us: the caller reads the reply, then end of input.
    ::shutdown(fd, SHUT_WR);
    std::size_t same = 0;
    for (const Conn& c : conns_)
        if (c.uid == uid) ++same;
    if (conns_.size() >= kMaxLingering || same >= kMaxLingeringPerUid) {
        // Swallow what has arrived already: unread input would turn the
        // close into a reset that can hide the reply.
        char chunk[4096];
        for (int i = 0; i < 16 && ::recv(fd, chunk, sizeof chunk, MSG_DONTWAIT) > 0; ++i) {
        }
        ::close(fd);
        return;
    }
    conns_.push_back(Conn{fd, uid, now_ms + kRefusalLingerMs, 0});
}

void Refusals::poll_entries(std::vector<struct pollfd>& fds) const {
    for (const Conn& c : conns_) fds.push_back({c.fd, POLLIN, 0});
}

void Refusals::handle(const std::vector<struct pollfd>& fds, std::size_t first, long long now_ms) {
    std::vector<Conn> keep;
    for (std::size_t i = 0; i < conns_.size(); ++i) {
        Conn c = conns_[i];
        bool done = now_ms >= c.deadline;
        const std::size_t k = first + i;
        if (!done && k < fds.size() && fds[k].fd == c.fd && fds[k].revents) {
            char chunk[4096];
            for (;;) {
                ssize_t n = ::recv(c.fd, chunk, sizeof chunk, MSG_DONTWAIT);
                if (n > 0) {
                    c.received += static_cast<std::size_t>(n);
                    if (c.received > 65536) {
                        done = true;
                        break;
                    }
                    continue;
                }
                if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
                done = true;  // end of input (the caller has read and closed) or an error
                break;
            }
        }
        if (done)
            ::close(c.fd);
        else
            keep.push_back(c);
    }
    conns_.swap(keep);
}

int Refusals::timeout_ms(long long now_ms) const {
    if (conns_.empty()) return -1;
    long long next = conns_.front().deadline;
    for (const Conn& c : conns_)
        if (c.deadline < next) next = c.deadline;
    return next <= now_ms ? 0 : static_cast<int>(next - now_ms);
}

}  // namespace mailoauth::agent
