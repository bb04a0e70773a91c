// The token store: one file per account in a private directory.
//
// Files are 0600 in a 0700 directory owned by the caller; owner, mode and
// type are checked on every read, and a looser mode, another owner or a
// symlink is refused.  Writes go to a temp file in the same directory,
// fsync, rename, fsync of the directory, so a crash or a full disk leaves
// either the old or the new record, never a torn one.  Refresh is
// single-flight across processes through a per-account lock file (flock).
#ifndef MAILOAUTH_TOKENHELPER_STORE_H
#define MAILOAUTH_TOKENHELPER_STORE_H

#include <cstdint>
#include <string>
#include <vector>

#include "common/secret.h"

namespace mailoauth {

struct AccountRecord {
    std::string account;
    std::string user;                 // name on the wire (shared mailbox), may be empty
    std::string authority;            // https://login.microsoftonline.com/TENANT
    std::string client_id;
    std::string scope;                // space separated
    std::string ca_file;              // empty: system CAs
    bool allow_insecure_http = false; // tests only
    Secret refresh_token;
    Secret access_token;
    std::int64_t access_expires_at = 0;    // UTC epoch seconds
    std::int64_t refresh_obtained_at = 0;  // when the refresh token was issued
    std::int64_t created_at = 0;           // first login
    std::string last_error;                // plain words, no secrets
    std::int64_t last_error_at = 0;
};

// An account name is also a file name: letters, digits and "@._+-", not
// starting with '.', at most 128 characters.
bool valid_account_name(const std::string& name);

// The store directory: --store, else $MAILOAUTH_STORE, else
// $XDG_STATE_HOME/mailoauth, else ~/.local/state/mailoauth.
std::string default_store_dir();

enum class LoadStatus { Ok, NotFound, Error };

class Store {
public:
    explicit Store(std::string dir) : dir_(std::move(dir)) {}
    const std::string& dir() const { return dir_; }

    // Creates the directory (0700, parents as needed) when create is set;
    // then checks owner, mode and type.  Fills err with what to do.
    bool open(bool create, std::string& err);

    LoadStatus load(const std::string& account, AccountRecord& out, std::string& err) const;
    bool save(const AccountRecord& rec, std::string& err) const;
    bool remove(const std::string& account, std::string& err) const;
    std::vector<std::string> list(std::string& err) const;
    std::string path_of(const std::string& account) const;

    // An exclusive lock on ACCOUNT.lock, released on destruction.
    class Lock {
    public:
        Lock() = default;
        Lock(Lock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
        Lock& operator=(Lock&& o) noexcept;
        ~Lock();
        bool held() const { return fd_ >= 0; }
    private:
        friend class Store;
        int fd_ = -1;
    };
    // Waits at most timeout_ms for the lock.
    bool lock(const std::string& account, long timeout_ms, Lock& out, std::string& err) const;

private:
    std::string dir_;
};

// Serialization, exposed for unit tests and fuzzing.
std::string serialize_record(const AccountRecord& rec);
bool parse_record(const std::string& text, AccountRecord& out, std::string& err);

}  // namespace mailoauth

#endif
