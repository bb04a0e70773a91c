// The token store: one file per account in a private directory.
//
// Files are 0600 in a 0700 directory owned by the caller; owner, mode and
// type are checked on every read, and a looser mode, another owner or a
// symlink is refused.  Writes go to an anonymous file (O_TMPFILE) in the
// same directory, fsync, a link to a temp name, rename over the record,
// fsync of the directory, so a crash or a full disk leaves either the old or
// the new record, never a torn one; the only file a crash can leave behind
// (between link and rename) is removed by the next open().  All file
// operations are relative to the checked directory's descriptor.  Refresh
// is single-flight across processes through a per-account lock file
// (flock); every save runs under it.
#ifndef MAILOAUTH_TOKENHELPER_STORE_H
#define MAILOAUTH_TOKENHELPER_STORE_H

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/secret.h"

namespace mailoauth {

struct AccountRecord {
    std::string account;
    std::string user;                 // name on the wire (shared mailbox), may be empty
    std::string provider = "microsoft";  // provider.h; records without one are Microsoft's
    std::string grant = "device";     // how it signed in: device, authorization_code, client_credentials
    std::string authority;            // Microsoft: https://login.microsoftonline.com/TENANT; else ""
    std::string cloud;                // Microsoft: global, usgov, usgov-dod, china; "" = global
    std::string issuer;               // OIDC: the verified issuer; else ""
    // The endpoints, fixed at login: a refresh uses token_endpoint and
    // never derives it again.  Records without them (older versions) get
    // them from authority when loaded.
    std::string token_endpoint;
    std::string device_endpoint;
    std::string authorization_endpoint;
    std::string client_id;
    Secret client_secret;             // Google, confidential OIDC clients, app-only accounts; else empty
    // App-only accounts (grant client_credentials) hold one credential:
    // client_secret, or a certificate with its private key (the key
    // protected like the refresh token), or only the path it is read from
    // at each use (credential_source.h), never its content.
    std::string certificate_pem;      // PEM CERTIFICATE blocks (public)
    Secret private_key_pem;           // PEM private key of certificate_pem
    std::string assertion_alg;        // PS256 or RS256 for a certificate; "" otherwise
    std::string credential_from;      // --credential-from PATH, as given
    std::string scope;                // space separated
    std::string ca_file;              // empty: system CAs
    bool allow_insecure_http = false; // tests only
    Secret refresh_token;
    Secret access_token;
    std::int64_t access_expires_at = 0;    // UTC epoch seconds
    std::int64_t access_lifetime = 0;      // expires_in at issue; 0: unknown (older records)
    std::int64_t refresh_obtained_at = 0;  // when the refresh token was issued
    std::int64_t created_at = 0;           // first login
    std::string last_error;                // plain words, no secrets
    std::int64_t last_error_at = 0;
};

// An account name is also a file name: letters, digits and "@._+-", not
// starting with '.' or '-', 1 to 128 characters, and not ending in ".lock"
// (ACCOUNT.lock is the account's lock file).
bool valid_account_name(const std::string& name);

// The store directory: --store, else $MAILOAUTH_STORE, else
// $XDG_STATE_HOME/mailoauth (when absolute), else $HOME/.local/state/mailoauth,
// else the passwd entry's home.  Empty when none of these is known.
std::string default_store_dir();

// Largest store file load() reads; a larger file is refused unread.  The
// record itself is further bounded by the helper-protocol limits (65536
// bytes, 16384 per line), and save() refuses a record load() could not read.
constexpr std::size_t kMaxStoreFile = 256 * 1024;

enum class LoadStatus { Ok, NotFound, Error };

class Store {
public:
    explicit Store(std::string dir) : dir_(std::move(dir)) {}
    const std::string& dir() const { return dir_; }

    // Creates the directory (0700, parents as needed) when create is set;
    // then checks owner, mode and type.  Fills err with what to do.  Then
    // removes the temp files that crashed saves left (they hold complete
    // records, tokens included) of every account whose lock is free.
    bool open(bool create, std::string& err) { return open(create, err, true); }
    // The same, with the search for crashed saves' temp files only when
    // remove_leftovers is set: a long-lived process (the agent) searches
    // once in a while, not on every request.
    bool open(bool create, std::string& err, bool remove_leftovers);

    // NotFound when the account (or the store directory) does not exist.
    // The file must be a regular file (not a symlink) owned by the caller
    // with no group or other permission bits; its record must name account.
    LoadStatus load(const std::string& account, AccountRecord& out, std::string& err) const;
    // Atomic and durable: on any failure (disk full included) the previous
    // file is left as it was and no temp file remains.  The caller holds the
    // account's lock(): a save removes the account's leftover temp files,
    // and open() takes a temp file whose account is unlocked for debris.
    bool save(const AccountRecord& rec, std::string& err) const;
    // Deletes the record, its lock file and any temp files left by a crash.
    // Succeeds when the account was not there.  Callers that may race with a
    // refresh hold the account's lock while removing.
    bool remove(const std::string& account, std::string& err) const;
    // Sorted account names; empty with err set on failure.
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
    // Waits at most timeout_ms for the lock, asleep in flock until the
    // holder lets go (a waiter wakes at the release, not on a poll).  Uses
    // a per-thread POSIX timer and a real-time signal (SIGRTMIN+3, with a
    // handler that does nothing) to end the wait at the deadline.
    bool lock(const std::string& account, long timeout_ms, Lock& out, std::string& err) const;

private:
    std::string dir_;
};

// Serialization, exposed for unit tests and fuzzing.
std::string serialize_record(const AccountRecord& rec);
bool parse_record(const std::string& text, AccountRecord& out, std::string& err);

}  // namespace mailoauth

// Test seams for the unit tests, null in production.
namespace mailoauth::testing {
// Replaces write(2) while save() writes the temp file (inject ENOSPC, short
// writes, EINTR).
extern ssize_t (*store_write_hook)(int fd, const void* buf, std::size_t n);
// Called after the record is written, synced and linked under its temp
// name, just before the rename over the record: return 0 to go on, an errno
// value to fail, or _exit() to simulate a crash.
extern int (*store_before_rename_hook)(const char* tmp_path);
// false: save() writes named temp files, as on a file system without
// O_TMPFILE.
extern bool store_use_tmpfile;
// true: save() names its O_TMPFILE file only through /proc/self/fd, as on a
// kernel where linkat(AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH (before 6.10).
extern bool store_link_via_proc;
}  // namespace mailoauth::testing

#endif
