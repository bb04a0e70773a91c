// sasl-driver: drives libsasl2's real client API for the plugin tests, the
// way Postfix (callbacks) or mbsync (SASL_INTERACT prompts) do, and prints
// one JSON object per action so tests/plugin/test_plugin.py can check the
// bytes exactly.
//
//   sasl-driver [options] ACTION...
//     --interact            register USER/AUTHNAME/PASS without procedures and
//                           answer SASL_INTERACT prompts (mbsync)
//     --user NAME           SASL_CB_USER (authorization id)
//     --authname NAME       SASL_CB_AUTHNAME (the account)
//     --pass TEXT           SASL_CB_PASS
//     --service NAME        default imap
//     --host FQDN           serverFQDN; default none
//     --local IP;PORT --remote IP;PORT
//     --secflags N          sasl_security_properties_t.security_flags
//     --log FILE            append every log message to FILE
//     --plugin-dir DIR      where libsasl2 looks for plugins (SASL_CB_GETPATH),
//                           as a setuid/setgid program must: libsasl2 ignores
//                           SASL_PATH there
//     --sigchld ignore|reap the host's SIGCHLD: ignored (children reaped by
//                           the kernel) or a handler that reaps every child;
//                           each result then counts the children it reaped
//   ACTION: start:MECHLIST | step:HEX | dispose | sleep:MS | listmech
//           | as:NAME (the authname for the following connections)
#include <sasl/sasl.h>

#include <signal.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>
#include <unistd.h>

namespace {

struct Options {
    bool interact = false;
    const char* user = nullptr;
    const char* authname = nullptr;
    const char* pass = nullptr;
    const char* service = "imap";
    const char* host = nullptr;
    const char* local = nullptr;
    const char* remote = nullptr;
    unsigned secflags = 0;
    const char* log_path = nullptr;
    const char* plugin_dir = nullptr;
    const char* sigchld = nullptr;
};

Options opt;

// sasl_callback_t stores every procedure as int (*)(void); going through
// void (*)(void) is the cast GCC accepts without -Wcast-function-type.
template <typename F>
int (*as_cb(F* f))(void) {
    return reinterpret_cast<int (*)(void)>(reinterpret_cast<void (*)(void)>(f));
}
volatile sig_atomic_t g_reaped = 0;

// What a program with its own child handling does (Postfix's master, many
// daemons): reap whatever exited, before anyone else can ask for it.
void reap_children(int) {
    int saved = errno;
    while (waitpid(-1, nullptr, WNOHANG) > 0) g_reaped = g_reaped + 1;
    errno = saved;
}

int getpath_cb(void*, const char** path) {
    *path = opt.plugin_dir;
    return SASL_OK;
}

std::vector<std::string> g_logs;  // messages logged during the current action
std::vector<unsigned long> g_prompts;

std::string json_str(const std::string& s) {
    std::string o = "\"";
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') { o += '\\'; o += static_cast<char>(c); }
        else if (c < 0x20 || c >= 0x7f) { char b[8]; std::snprintf(b, sizeof b, "\\u%04x", c); o += b; }
        else o += static_cast<char>(c);
    }
    return o + "\"";
}

std::string hex(const char* p, unsigned n) {
    static const char d[] = "0123456789abcdef";
    std::string o;
    for (unsigned i = 0; i < n; ++i) {
        o += d[(static_cast<unsigned char>(p[i]) >> 4) & 15];
        o += d[static_cast<unsigned char>(p[i]) & 15];
    }
    return o;
}

std::string unhex(const std::string& h) {
    std::string o;
    for (std::size_t i = 0; i + 1 < h.size(); i += 2) o += static_cast<char>(std::strtol(h.substr(i, 2).c_str(), nullptr, 16));
    return o;
}

int log_cb(void*, int level, const char* message) {
    std::string m = message ? message : "";
    g_logs.push_back(std::to_string(level) + " " + m);
    if (opt.log_path) {
        if (FILE* f = std::fopen(opt.log_path, "a")) {
            std::fprintf(f, "%d\t%s\n", level, m.c_str());
            std::fclose(f);
        }
    }
    return SASL_OK;
}

int simple_cb(void* ctx, int id, const char** result, unsigned* len) {
    (void)ctx;
    const char* v = id == SASL_CB_USER ? opt.user : id == SASL_CB_AUTHNAME ? opt.authname : nullptr;
    if (!v) return SASL_FAIL;
    *result = v;
    if (len) *len = static_cast<unsigned>(std::strlen(v));
    return SASL_OK;
}

int pass_cb(sasl_conn_t* conn, void*, int, sasl_secret_t** psecret) {
    (void)conn;
    static sasl_secret_t* secret = nullptr;
    const char* p = opt.pass ? opt.pass : "";
    std::size_t n = std::strlen(p);
    std::free(secret);
    secret = static_cast<sasl_secret_t*>(std::malloc(sizeof(sasl_secret_t) + n + 1));
    secret->len = n;
    std::memcpy(secret->data, p, n + 1);
    *psecret = secret;
    return SASL_OK;
}

// Fill prompts like mbsync: USER and AUTHNAME get the user, PASS the password.
void answer(sasl_interact_t* in) {
    for (; in->id != SASL_CB_LIST_END; ++in) {
        g_prompts.push_back(in->id);
        const char* v = nullptr;
        if (in->id == SASL_CB_USER) v = opt.user ? opt.user : opt.authname;
        else if (in->id == SASL_CB_AUTHNAME) v = opt.authname ? opt.authname : opt.user;
        else if (in->id == SASL_CB_PASS) v = opt.pass ? opt.pass : "";
        else v = in->defresult ? in->defresult : "";
        if (!v) v = "";
        in->result = v;
        in->len = static_cast<unsigned>(std::strlen(v));
    }
}

const char* rc_name(int rc) {
    switch (rc) {
    case SASL_OK: return "SASL_OK";
    case SASL_CONTINUE: return "SASL_CONTINUE";
    case SASL_INTERACT: return "SASL_INTERACT";
    case SASL_FAIL: return "SASL_FAIL";
    case SASL_NOMEM: return "SASL_NOMEM";
    case SASL_NOMECH: return "SASL_NOMECH";
    case SASL_BADPROT: return "SASL_BADPROT";
    case SASL_BADPARAM: return "SASL_BADPARAM";
    case SASL_TRYAGAIN: return "SASL_TRYAGAIN";
    case SASL_BADAUTH: return "SASL_BADAUTH";
    default: return "other";
    }
}

void emit(const std::string& action, int rc, sasl_conn_t* conn, const char* out, unsigned outlen,
          const char* mech) {
    std::string s = "{\"action\":" + json_str(action) + ",\"rc\":" + json_str(rc_name(rc)) +
                    ",\"rcnum\":" + std::to_string(rc);
    if (out) s += ",\"out\":" + json_str(hex(out, outlen));
    else s += ",\"out\":null";
    if (mech) s += ",\"mech\":" + json_str(mech);
    if (rc < 0 && conn) s += ",\"detail\":" + json_str(sasl_errdetail(conn));
    s += ",\"prompts\":[";
    for (std::size_t i = 0; i < g_prompts.size(); ++i) s += (i ? "," : "") + std::to_string(g_prompts[i]);
    s += "],\"logs\":[";
    for (std::size_t i = 0; i < g_logs.size(); ++i) s += (i ? "," : "") + json_str(g_logs[i]);
    s += "]";
    if (opt.sigchld) s += ",\"reaped\":" + std::to_string(static_cast<int>(g_reaped));
    s += "}";
    std::printf("%s\n", s.c_str());
    std::fflush(stdout);
    g_logs.clear();
    g_prompts.clear();
}

}  // namespace

int main(int argc, char** argv) {
    int i = 1;
    for (; i < argc && std::strncmp(argv[i], "--", 2) == 0; ++i) {
        std::string a = argv[i];
        const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
        if (a == "--interact") { opt.interact = true; continue; }
        if (!v) { std::fprintf(stderr, "missing value for %s\n", a.c_str()); return 2; }
        ++i;
        if (a == "--user") opt.user = v;
        else if (a == "--authname") opt.authname = v;
        else if (a == "--pass") opt.pass = v;
        else if (a == "--service") opt.service = v;
        else if (a == "--host") opt.host = v;
        else if (a == "--local") opt.local = v;
        else if (a == "--remote") opt.remote = v;
        else if (a == "--secflags") opt.secflags = static_cast<unsigned>(std::strtoul(v, nullptr, 0));
        else if (a == "--log") opt.log_path = v;
        else if (a == "--plugin-dir") opt.plugin_dir = v;
        else if (a == "--sigchld") opt.sigchld = v;
        else { std::fprintf(stderr, "unknown option %s\n", a.c_str()); return 2; }
    }

    if (opt.sigchld) {
        struct sigaction sa;
        std::memset(&sa, 0, sizeof sa);
        sigemptyset(&sa.sa_mask);
        if (std::strcmp(opt.sigchld, "ignore") == 0) {
            sa.sa_handler = SIG_IGN;
        } else if (std::strcmp(opt.sigchld, "reap") == 0) {
            sa.sa_handler = &reap_children;
            sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
        } else {
            std::fprintf(stderr, "--sigchld takes ignore or reap\n");
            return 2;
        }
        sigaction(SIGCHLD, &sa, nullptr);
    }
    std::vector<sasl_callback_t> global_cbs;
    global_cbs.push_back({SASL_CB_LOG, as_cb(&log_cb), nullptr});
    if (opt.plugin_dir) global_cbs.push_back({SASL_CB_GETPATH, as_cb(&getpath_cb), nullptr});
    global_cbs.push_back({SASL_CB_LIST_END, nullptr, nullptr});
    std::vector<sasl_callback_t> cbs;
    cbs.push_back({SASL_CB_LOG, as_cb(&log_cb), nullptr});
    if (opt.interact) {
        cbs.push_back({SASL_CB_USER, nullptr, nullptr});
        cbs.push_back({SASL_CB_AUTHNAME, nullptr, nullptr});
        cbs.push_back({SASL_CB_PASS, nullptr, nullptr});
    } else {
        if (opt.user) cbs.push_back({SASL_CB_USER, as_cb(&simple_cb), nullptr});
        if (opt.authname) cbs.push_back({SASL_CB_AUTHNAME, as_cb(&simple_cb), nullptr});
        if (opt.pass) cbs.push_back({SASL_CB_PASS, as_cb(&pass_cb), nullptr});
    }
    cbs.push_back({SASL_CB_LIST_END, nullptr, nullptr});

    int rc = sasl_client_init(global_cbs.data());
    emit("init", rc, nullptr, nullptr, 0, nullptr);
    if (rc != SASL_OK) return 1;

    sasl_conn_t* conn = nullptr;
    sasl_interact_t* prompts = nullptr;
    for (; i < argc; ++i) {
        std::string a = argv[i];
        if (a.rfind("start:", 0) == 0) {
            if (conn) sasl_dispose(&conn);
            rc = sasl_client_new(opt.service, opt.host, opt.local, opt.remote, cbs.data(), 0, &conn);
            if (rc != SASL_OK) { emit("new", rc, conn, nullptr, 0, nullptr); continue; }
            sasl_security_properties_t props;
            std::memset(&props, 0, sizeof props);
            props.max_ssf = 256;
            props.maxbufsize = 65536;
            props.security_flags = opt.secflags;
            sasl_setprop(conn, SASL_SEC_PROPS, &props);
            const char* out = nullptr;
            unsigned outlen = 0;
            const char* mech = nullptr;
            prompts = nullptr;
            for (;;) {
                rc = sasl_client_start(conn, a.c_str() + 6, &prompts, &out, &outlen, &mech);
                if (rc != SASL_INTERACT) break;
                answer(prompts);
            }
            emit("start", rc, conn, out, outlen, mech);
        } else if (a.rfind("step:", 0) == 0) {
            std::string in = unhex(a.substr(5));
            const char* out = nullptr;
            unsigned outlen = 0;
            prompts = nullptr;
            for (;;) {
                rc = sasl_client_step(conn, in.data(), static_cast<unsigned>(in.size()), &prompts, &out, &outlen);
                if (rc != SASL_INTERACT) break;
                answer(prompts);
            }
            emit("step", rc, conn, out, outlen, nullptr);
        } else if (a.rfind("as:", 0) == 0) {
            opt.authname = argv[i] + 3;
        } else if (a == "dispose") {
            if (conn) sasl_dispose(&conn);
            emit("dispose", SASL_OK, nullptr, nullptr, 0, nullptr);
        } else if (a.rfind("sleep:", 0) == 0) {
            usleep(static_cast<useconds_t>(std::atol(a.c_str() + 6)) * 1000);
        } else if (a == "listmech") {
            const char* list = nullptr;
            if (!conn) sasl_client_new(opt.service, opt.host, opt.local, opt.remote, cbs.data(), 0, &conn);
            rc = sasl_listmech(conn, nullptr, "", " ", "", &list, nullptr, nullptr);
            emit("listmech", rc, conn, list, list ? static_cast<unsigned>(std::strlen(list)) : 0, nullptr);
        } else {
            std::fprintf(stderr, "unknown action %s\n", a.c_str());
            return 2;
        }
    }
    if (conn) sasl_dispose(&conn);
    sasl_client_done();
    return 0;
}
