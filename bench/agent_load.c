/* Load on a mailoauth agent: THREADS clients, each sending one request per
 * connection (as the plugin does) back to back for SECONDS, on the
 * abstract or path socket SOCKET.  Prints one line:
 *   requests=N errors=E seconds=S rps=R p50_us=A p99_us=B max_us=C
 * A request counts as an error unless its reply holds "access_token=" and
 * "status=0".  The reply holds a token: it is only searched, never printed.
 *
 *   agent_load SOCKET ACCOUNT THREADS SECONDS
 *
 * Built by bench/run and bench/agent.py with the compiler directly.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_un addr;
static socklen_t addr_len;
static char request[512];
static size_t request_len;
static double stop_at;

struct worker {
    pthread_t thread;
    long requests, errors;
    long *lat_us;
    long lat_n, lat_cap;
};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int one_request(void) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    int ok = 0;
    char buf[8192];
    size_t got = 0;
    if (connect(fd, (struct sockaddr *)&addr, addr_len) == 0 &&
        send(fd, request, request_len, MSG_NOSIGNAL) == (ssize_t)request_len) {
        /* Up to the blank line that ends the reply, as the plugin reads
         * it (msgio::read_message): not on to the agent's close. */
        for (;;) {
            ssize_t n = recv(fd, buf + got, sizeof buf - 1 - got, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            got += (size_t)n;
            buf[got] = 0;
            if (got == sizeof buf - 1 || strstr(buf, "\n\n") != NULL) break;
        }
        buf[got] = 0;
        ok = strstr(buf, "access_token=") != NULL && strstr(buf, "status=0\n") != NULL;
    }
    memset(buf, 0, sizeof buf); /* it held a token */
    close(fd);
    return ok;
}

static void *run(void *arg) {
    struct worker *w = arg;
    while (now() < stop_at) {
        double t0 = now();
        int ok = one_request();
        long us = (long)((now() - t0) * 1e6);
        w->requests++;
        if (!ok) w->errors++;
        if (w->lat_n == w->lat_cap) {
            w->lat_cap = w->lat_cap ? 2 * w->lat_cap : 65536;
            w->lat_us = realloc(w->lat_us, (size_t)w->lat_cap * sizeof *w->lat_us);
            if (!w->lat_us) abort();
        }
        w->lat_us[w->lat_n++] = us;
    }
    return NULL;
}

static int cmp_long(const void *a, const void *b) {
    long x = *(const long *)a, y = *(const long *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s SOCKET ACCOUNT THREADS SECONDS\n", argv[0]);
        return 2;
    }
    const char *sock = argv[1];
    int threads = atoi(argv[3]);
    double seconds = atof(argv[4]);
    if (threads < 1 || seconds <= 0 || strlen(sock) >= sizeof addr.sun_path) return 2;
    addr.sun_family = AF_UNIX;
    size_t len = strlen(sock);
    memcpy(addr.sun_path, sock, len);
    if (sock[0] == '@') addr.sun_path[0] = 0; /* abstract */
    addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (sock[0] == '@' ? 0 : 1));
    request_len = (size_t)snprintf(request, sizeof request,
                                   "version=1\naccount=%s\nprotocol=imap\nhost=localhost\n"
                                   "mechanism=XOAUTH2\n\n",
                                   argv[2]);
    struct worker *w = calloc((size_t)threads, sizeof *w);
    if (!w) return 1;
    double start = now();
    stop_at = start + seconds;
    for (int i = 0; i < threads; ++i) pthread_create(&w[i].thread, NULL, run, &w[i]);
    long total = 0, errors = 0, n = 0;
    for (int i = 0; i < threads; ++i) {
        pthread_join(w[i].thread, NULL);
        total += w[i].requests;
        errors += w[i].errors;
        n += w[i].lat_n;
    }
    double took = now() - start;
    long *all = malloc((size_t)(n ? n : 1) * sizeof *all);
    if (!all) return 1;
    long k = 0;
    for (int i = 0; i < threads; ++i) {
        memcpy(all + k, w[i].lat_us, (size_t)w[i].lat_n * sizeof *all);
        k += w[i].lat_n;
    }
    qsort(all, (size_t)n, sizeof *all, cmp_long);
    long p50 = n ? all[n / 2] : 0, p99 = n ? all[(n * 99) / 100] : 0, max = n ? all[n - 1] : 0;
    printf("requests=%ld errors=%ld seconds=%.2f rps=%.0f p50_us=%ld p99_us=%ld max_us=%ld\n", total, errors,
           took, total / took, p50, p99, max);
    return 0;
}
