/* sasl_login_loop: a long-lived IMAP client that logs in N times from ONE
 * process, the way a Postfix smtp process or a mail client daemon does, so
 * libmailoauth.so's in-process token cache is warm after the first login.
 *
 *   sasl_login_loop --port PORT --user NAME --pass PASSWORD
 *                   [--store-file FILE] [-n N] ARM...
 *
 *   ARM  plain    AUTHENTICATE PLAIN through libsasl2 (static password)
 *        xoauth2  AUTHENTICATE XOAUTH2 through libsasl2, i.e. the plugin
 *        raw      AUTHENTICATE XOAUTH2 built here from the access_token
 *                 line of FILE, read for every login, without libsasl2's
 *                 mechanism: what a plugin that reads its token file
 *                 in-process would cost, and the floor of the server side
 *
 * The arms are interleaved: iteration i runs every ARM once, starting with
 * ARM number i modulo the number of arms (so the order rotates).  Each
 * login connects to 127.0.0.1:PORT (Dovecot treats 127.0.0.1 -> 127.0.0.1
 * as secure, so no TLS), authenticates with SASL-IR, then LOGOUT and close.
 * One line per login on stdout:
 *
 *   ARM ITERATION LOGIN_US TOTAL_US OK
 *
 * LOGIN_US runs from connect() to the tagged OK of AUTHENTICATE, TOTAL_US
 * to after close().  Tokens are never printed; server replies that are not
 * OK are printed to stderr (they hold no secret).
 *
 * Build: cc -O2 -o sasl_login_loop sasl_login_loop.c $(pkg-config --libs libsasl2)
 */
#define _POSIX_C_SOURCE 200809L
#include <sasl/sasl.h>
#include <sasl/saslutil.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define IO_TIMEOUT_MS 15000
#define MAX_LINE 16384

static const char *opt_user;
static const char *opt_pass;
static const char *opt_store_file;
static int opt_port;

/* ---- callbacks ---------------------------------------------------------- */

static int simple_cb(void *ctx, int id, const char **result, unsigned *len) {
    (void)ctx;
    if (id != SASL_CB_USER && id != SASL_CB_AUTHNAME) return SASL_FAIL;
    *result = opt_user;
    if (len) *len = (unsigned)strlen(opt_user);
    return SASL_OK;
}

static int pass_cb(sasl_conn_t *conn, void *ctx, int id, sasl_secret_t **psecret) {
    static sasl_secret_t *secret;
    size_t n = strlen(opt_pass);
    (void)conn; (void)ctx; (void)id;
    if (!secret) {
        secret = malloc(sizeof(sasl_secret_t) + n + 1);
        if (!secret) return SASL_NOMEM;
        secret->len = n;
        memcpy(secret->data, opt_pass, n + 1);
    }
    *psecret = secret;
    return SASL_OK;
}

static int log_cb(void *ctx, int level, const char *message) {
    (void)ctx;
    if (level <= SASL_LOG_WARN) fprintf(stderr, "sasl: %s\n", message ? message : "");
    return SASL_OK;
}

typedef int (*cb_fn)(void);
static sasl_callback_t callbacks[] = {
    {SASL_CB_LOG, (cb_fn)(void (*)(void))log_cb, NULL},
    {SASL_CB_USER, (cb_fn)(void (*)(void))simple_cb, NULL},
    {SASL_CB_AUTHNAME, (cb_fn)(void (*)(void))simple_cb, NULL},
    {SASL_CB_PASS, (cb_fn)(void (*)(void))pass_cb, NULL},
    {SASL_CB_LIST_END, NULL, NULL},
};

/* ---- a bounded line reader -------------------------------------------- */

struct conn {
    int fd;
    char buf[MAX_LINE];
    size_t len;
};

static long long now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

/* Reads one line (without CRLF) into line; returns its length or -1. */
static int read_line(struct conn *c, char *line, size_t cap) {
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->len);
        if (nl) {
            size_t n = (size_t)(nl - c->buf);
            size_t keep = n;
            if (keep && c->buf[keep - 1] == '\r') keep--;
            if (keep >= cap) return -1;
            memcpy(line, c->buf, keep);
            line[keep] = 0;
            memmove(c->buf, nl + 1, c->len - n - 1);
            c->len -= n + 1;
            return (int)keep;
        }
        if (c->len == sizeof c->buf) return -1;
        struct pollfd p = {c->fd, POLLIN, 0};
        int r = poll(&p, 1, IO_TIMEOUT_MS);
        if (r <= 0) return -1;
        ssize_t got = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
        if (got <= 0) return -1;
        c->len += (size_t)got;
    }
}

static int write_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int dial(struct conn *c, char *local, char *remote, size_t cap) {
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    int one = 1;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)opt_port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->len = 0;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) return -1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0) return -1;
    if (getsockname(c->fd, (struct sockaddr *)&sa, &sl) < 0) return -1;
    snprintf(local, cap, "127.0.0.1;%u", (unsigned)ntohs(sa.sin_port));
    snprintf(remote, cap, "127.0.0.1;%d", opt_port);
    return 0;
}

/* ---- the raw XOAUTH2 arm's token: read the store file every time -------- */

static int read_store_token(char *tok, size_t cap) {
    FILE *f = fopen(opt_store_file, "re");
    char line[8192];
    int found = -1;
    if (!f) return -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "access_token=", 13) == 0) {
            size_t n = strcspn(line + 13, "\r\n");
            if (n < cap) {
                memcpy(tok, line + 13, n);
                tok[n] = 0;
                found = 0;
            }
        }
        memset(line, 0, sizeof line);
    }
    fclose(f);
    return found;
}

/* ---- one login ---------------------------------------------------------- */

enum arm { ARM_PLAIN, ARM_XOAUTH2, ARM_RAW };

static void report_server(const char *what, const char *line) {
    /* Server lines hold no secret; clip them anyway. */
    fprintf(stderr, "%s: %.200s\n", what, line);
}

/* Returns 1 on success; fills *login_us and *total_us. */
static int login_once(enum arm arm, long long *login_us, long long *total_us) {
    static char line[MAX_LINE], out64[MAX_LINE], cmd[MAX_LINE + 64], dec[MAX_LINE];
    struct conn c;
    char local[64], remote[64];
    sasl_conn_t *sc = NULL;
    int ok = 0;
    unsigned o64len = 0;
    long long t0 = now_us();

    *login_us = *total_us = -1;
    if (dial(&c, local, remote, sizeof local) < 0) {
        perror("connect");
        if (c.fd >= 0) close(c.fd);
        return 0;
    }
    if (read_line(&c, line, sizeof line) < 0 || strncmp(line, "* OK", 4) != 0) {
        report_server("greeting", line);
        goto done;
    }

    if (arm == ARM_RAW) {
        char tok[8192], ir[8400];
        if (read_store_token(tok, sizeof tok) < 0) {
            fprintf(stderr, "no access_token in %s\n", opt_store_file);
            goto done;
        }
        int n = snprintf(ir, sizeof ir, "user=%s\001auth=Bearer %s\001\001", opt_user, tok);
        memset(tok, 0, sizeof tok);
        if (n < 0 || (size_t)n >= sizeof ir ||
            sasl_encode64(ir, (unsigned)n, out64, sizeof out64, &o64len) != SASL_OK) {
            memset(ir, 0, sizeof ir);
            goto done;
        }
        memset(ir, 0, sizeof ir);
        n = snprintf(cmd, sizeof cmd, "A AUTHENTICATE XOAUTH2 %s\r\n", out64);
        memset(out64, 0, sizeof out64);
        if (write_all(c.fd, cmd, (size_t)n) < 0) goto done;
        memset(cmd, 0, sizeof cmd);
    } else {
        const char *mech = arm == ARM_PLAIN ? "PLAIN" : "XOAUTH2";
        const char *out = NULL, *used = NULL;
        unsigned outlen = 0;
        int r = sasl_client_new("imap", "localhost", local, remote, callbacks, 0, &sc);
        if (r != SASL_OK) {
            fprintf(stderr, "sasl_client_new: %s\n", sasl_errstring(r, NULL, NULL));
            goto done;
        }
        r = sasl_client_start(sc, mech, NULL, &out, &outlen, &used);
        if (r != SASL_OK && r != SASL_CONTINUE) {
            fprintf(stderr, "sasl_client_start %s: %s\n", mech, sasl_errdetail(sc));
            goto done;
        }
        if (outlen == 0) {
            strcpy(out64, "=");
        } else if (sasl_encode64(out, outlen, out64, sizeof out64, &o64len) != SASL_OK) {
            goto done;
        }
        int n = snprintf(cmd, sizeof cmd, "A AUTHENTICATE %s %s\r\n", mech, out64);
        memset(out64, 0, sizeof out64);
        if (write_all(c.fd, cmd, (size_t)n) < 0) goto done;
        memset(cmd, 0, sizeof cmd);
    }

    for (int rounds = 0; rounds < 8; ++rounds) {
        int n = read_line(&c, line, sizeof line);
        if (n < 0) {
            fprintf(stderr, "connection lost during AUTHENTICATE\n");
            goto done;
        }
        if (line[0] == '*') { --rounds; continue; }
        if (strncmp(line, "A OK", 4) == 0) { ok = 1; break; }
        if (line[0] == 'A') { report_server("AUTHENTICATE", line); break; }
        if (line[0] == '+') {
            /* A challenge: for XOAUTH2 the server's error (base64 JSON). */
            const char *b = line[1] == ' ' ? line + 2 : line + 1;
            unsigned dlen = 0;
            if (arm == ARM_RAW) {
                write_all(c.fd, "\r\n", 2);
                continue;
            }
            if (sasl_decode64(b, (unsigned)strlen(b), dec, sizeof dec, &dlen) != SASL_OK) dlen = 0;
            const char *out = NULL;
            unsigned outlen = 0;
            int r = sasl_client_step(sc, dec, dlen, NULL, &out, &outlen);
            if (r != SASL_OK && r != SASL_CONTINUE) {
                write_all(c.fd, "*\r\n", 3);
                continue;
            }
            o64len = 0;
            if (outlen && sasl_encode64(out, outlen, out64, sizeof out64 - 3, &o64len) != SASL_OK) goto done;
            out64[o64len] = 0;
            strcat(out64, "\r\n");
            write_all(c.fd, out64, strlen(out64));
            continue;
        }
        report_server("unexpected", line);
    }
    if (ok) *login_us = now_us() - t0;

    /* LOGOUT, as imtest does, so the server side ends the same way. */
    if (write_all(c.fd, "Z LOGOUT\r\n", 10) == 0) {
        for (int i = 0; i < 8; ++i) {
            if (read_line(&c, line, sizeof line) < 0) break;
            if (strncmp(line, "Z ", 2) == 0) break;
        }
    }
done:
    if (sc) sasl_dispose(&sc);
    close(c.fd);
    *total_us = now_us() - t0;
    return ok;
}

int main(int argc, char **argv) {
    long n = 50;
    int i = 1;
    enum arm arms[16];
    const char *names[16];
    int narms = 0;

    for (; i < argc; ++i) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--port") == 0 && v) { opt_port = atoi(v); ++i; }
        else if (strcmp(a, "--user") == 0 && v) { opt_user = v; ++i; }
        else if (strcmp(a, "--pass") == 0 && v) { opt_pass = v; ++i; }
        else if (strcmp(a, "--store-file") == 0 && v) { opt_store_file = v; ++i; }
        else if (strcmp(a, "-n") == 0 && v) { n = atol(v); ++i; }
        else if (narms < 16 && strcmp(a, "plain") == 0) { arms[narms] = ARM_PLAIN; names[narms++] = a; }
        else if (narms < 16 && strcmp(a, "xoauth2") == 0) { arms[narms] = ARM_XOAUTH2; names[narms++] = a; }
        else if (narms < 16 && strcmp(a, "raw") == 0) { arms[narms] = ARM_RAW; names[narms++] = a; }
        else {
            fprintf(stderr, "usage: %s --port PORT --user NAME --pass PASSWORD "
                            "[--store-file FILE] [-n N] plain|xoauth2|raw...\n", argv[0]);
            return 2;
        }
    }
    if (!opt_port || !opt_user || !opt_pass || !narms || n < 1 || n > 100000) {
        fprintf(stderr, "%s: --port, --user, --pass, -n 1..100000 and at least one arm are needed\n",
                argv[0]);
        return 2;
    }
    for (int k = 0; k < narms; ++k)
        if (arms[k] == ARM_RAW && !opt_store_file) {
            fprintf(stderr, "%s: the raw arm needs --store-file\n", argv[0]);
            return 2;
        }

    int r = sasl_client_init(NULL);
    if (r != SASL_OK) {
        fprintf(stderr, "sasl_client_init: %s\n", sasl_errstring(r, NULL, NULL));
        return 1;
    }
    int failures = 0;
    for (long it = 0; it < n; ++it) {
        /* Rotate the order so no arm always runs right after another. */
        for (int j = 0; j < narms; ++j) {
            int k = (int)((it + j) % narms);
            long long lu, tu;
            int ok = login_once(arms[k], &lu, &tu);
            if (!ok) ++failures;
            printf("%s %ld %lld %lld %d\n", names[k], it, lu, tu, ok);
            fflush(stdout);
        }
    }
    sasl_client_done();
    return failures ? 1 : 0;
}
