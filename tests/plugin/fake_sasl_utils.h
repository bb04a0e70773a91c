// A fake of what libsasl2 hands a client mechanism (sasl_utils_t and
// sasl_client_params_t), for unit tests that call the plug table directly:
// no libsasl2, no module loading, and every call the plugin makes back into
// the "application" recorded.  The real libsasl2 path is tested by
// tests/plugin/test_plugin.py through sasl-driver.
//
// What it records and controls:
//   - getcallback: per callback id a value (a procedure the application
//     registered), SASL_INTERACT (an id registered without a procedure, as
//     mbsync does), an error from the procedure, or nothing;
//   - malloc/free: live allocations counted, and malloc can be made to fail;
//   - seterror: the last error string (sasl_errdetail);
//   - log: every line the plugin logged, with its level;
//   - canon_user: the authentication and authorization ids it was given.
#ifndef MAILOAUTH_TESTS_FAKE_SASL_UTILS_H
#define MAILOAUTH_TESTS_FAKE_SASL_UTILS_H

#include <sasl/sasl.h>
#include <sasl/saslplug.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace mailoauth::test {

class FakeSaslUtils {
public:
    FakeSaslUtils();
    ~FakeSaslUtils();
    FakeSaslUtils(const FakeSaslUtils&) = delete;
    FakeSaslUtils& operator=(const FakeSaslUtils&) = delete;

    const sasl_utils_t* utils() const { return &utils_; }

    // The application's answer for callback ID.
    void set_simple(unsigned long id, const std::string& value);  // a procedure giving VALUE
    void set_interact(unsigned long id);                          // registered without a procedure
    void set_callback_error(unsigned long id, int code);           // the procedure fails
    void set_getpath(const std::string& dirs);                    // SASL_CB_GETPATH

    // malloc returns NULL after N more successful calls (-1: never).
    void fail_malloc_after(int n) { malloc_budget_ = n; }
    long live_allocations() const { return live_; }

    // sasl_errdetail: the last seterror text ("" if none).
    std::string last_error;
    // Every utils->log call: (level, formatted line).
    std::vector<std::pair<int, std::string>> logs;
    std::string all_logs() const;
    // What canon_user was given (SASL_CU_AUTHID / SASL_CU_AUTHZID).
    std::string canon_authid, canon_authzid;
    int canon_result = SASL_OK;  // what canon_user answers

    // The sasl_client_params_t for one connection (service, server name,
    // "ip;port" of the server), backed by strings this object keeps.
    sasl_client_params_t* params(const std::string& service = "imap",
                                 const std::string& fqdn = "mail.example.com",
                                 const std::string& remote = "192.0.2.7;993");
    // The ids the application lists in its callbacks (prompt_supp): by
    // default those set with set_simple/set_interact/set_callback_error.
    void list_only(std::vector<unsigned long> ids) { listed_override_ = std::move(ids); listed_set_ = true; }

private:
    enum class Kind { Value, Interact, Error };
    struct Callback {
        Kind kind = Kind::Value;
        std::string value;
        int code = SASL_OK;
    };

    static FakeSaslUtils* self(sasl_conn_t* conn);
    static int getcallback(sasl_conn_t* conn, unsigned long id, sasl_callback_ft* proc, void** ctx);
    static int getsimple(void* ctx, int id, const char** result, unsigned* len);
    static int getpath(void* ctx, const char** path);
    static void* fake_malloc(size_t n);
    static void* fake_calloc(size_t n, size_t size);
    static void* fake_realloc(void* p, size_t n);
    static void fake_free(void* p);
    static void seterror(sasl_conn_t* conn, unsigned flags, const char* fmt, ...)
        __attribute__((format(printf, 3, 4)));
    static void log(sasl_conn_t* conn, int level, const char* fmt, ...)
        __attribute__((format(printf, 3, 4)));
    static int canon_user(sasl_conn_t* conn, const char* in, unsigned len, unsigned flags,
                          sasl_out_params_t* oparams);

    sasl_utils_t utils_{};
    sasl_client_params_t params_{};
    std::string service_, fqdn_, remote_;
    std::vector<sasl_callback_t> supp_;
    std::vector<unsigned long> listed_override_;
    bool listed_set_ = false;
    std::map<unsigned long, Callback> callbacks_;
    bool has_getpath_ = false;
    std::string getpath_;
    int malloc_budget_ = -1;
    long live_ = 0;
};

}  // namespace mailoauth::test

#endif
