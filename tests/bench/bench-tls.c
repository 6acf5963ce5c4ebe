/* tests/bench/bench-tls.c — TLS 1.3 mutual handshakes with ECDSA P-384
 * through the `tls` transport plugin (loaded by the core loader) against a
 * bare GnuTLS server loop with the same certificates, priority string,
 * session-ticket setup and event loop, in the same run.
 *
 * One client thread (plain GnuTLS, blocking) connects over 127.0.0.1 and
 * exchanges one byte per connection (which also carries the TLS 1.3 session
 * ticket); the server thread handles the connections one after another,
 * non-blocking and poll()-driven, and its CPU time is read with
 * clock_gettime(CLOCK_THREAD_CPUTIME_ID) around the whole server loop, so
 * it counts every bit of server work (accept, handshake, verification,
 * echo, close) and nothing of the client's.
 *
 * Variants, interleaved round by round so machine drift hits all alike:
 *   bare         GnuTLS server, GnuTLS's own chain verification in the
 *                handshake (gnutls_session_set_verify_cert)
 *   plugin       the tls transport, defaults (certval, verified-chain cache)
 *   plugin-nocache  the tls transport with verified_chain_cache: false, i.e.
 *                certval on every handshake (resumed ones re-check the
 *                chain carried in the ticket)
 * each for full handshakes and for resumed ones (ticket from the previous
 * connection). Ratios are medians of per-round server CPU per handshake.
 *
 * Usage: bench-tls [HANDSHAKES_PER_ROUND [ROUNDS [full|resumed]]]
 * (default 100 5, both modes; one mode only is handy under perf).
 * Prints a table and `RESULT <name> <value> <unit>` lines.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <gnutls/gnutls.h>

#include <prozsec/transport.h>

#include "../../plugins/tls/profile.h"
#include "../unit/certfix.h"
#include "conf.h"
#include "coresvc.h"
#include "err.h"
#include "loader.h"

#ifndef PZ_BENCH_BUILDDIR
#define PZ_BENCH_BUILDDIR "."
#endif

enum { V_BARE = 0, V_PLUGIN, V_NOCACHE, N_VARIANTS };
static const char *const vnames[N_VARIANTS] = {"bare", "plugin", "plugin-nocache"};

static char *dir;
static char priority[1024];
static char client_priority[1024];
static gnutls_datum_t ticket_key;

static double now_s(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "bench-tls: %s: %s\n", what, detail);
    exit(1);
}

static void wait_fd(int fd, int want_write)
{
    struct pollfd p = {.fd = fd, .events = want_write ? POLLOUT : POLLIN};
    poll(&p, 1, 5000);
}

/* ------------------------------------------------------------------------ */
/* Client: plain GnuTLS, blocking. */

typedef struct client_job {
    unsigned port;
    int n;
    int resume;
    int resumed; /* out: how many resumed */
    int failed;  /* out */
} client_job;

static void *client_main(void *arg)
{
    client_job *j = arg;
    gnutls_certificate_credentials_t cred;
    gnutls_datum_t data = {NULL, 0};
    char *crt = g_build_filename(dir, "client.crt", NULL), *key = g_build_filename(dir, "client.key", NULL);
    gnutls_certificate_allocate_credentials(&cred);
    if (gnutls_certificate_set_x509_key_file(cred, crt, key, GNUTLS_X509_FMT_PEM) < 0)
        die("client", "cannot load client.crt");
    /* One extra connection first when resuming, to get a ticket. */
    for (int i = 0; i < j->n + (j->resume ? 1 : 0); i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)j->port)};
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0)
            die("client connect", strerror(errno));
        gnutls_session_t s;
        gnutls_init(&s, GNUTLS_CLIENT);
        gnutls_priority_set_direct(s, client_priority, NULL);
        gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred);
        gnutls_transport_set_int(s, fd);
        if (j->resume && data.data)
            gnutls_session_set_data(s, data.data, data.size);
        int rc;
        do
            rc = gnutls_handshake(s);
        while (rc < 0 && !gnutls_error_is_fatal(rc));
        char c = 'x';
        if (rc == 0 && gnutls_record_send(s, &c, 1) == 1) {
            do
                rc = (int)gnutls_record_recv(s, &c, 1);
            while (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED);
        } else {
            rc = -1;
        }
        if (rc != 1)
            j->failed++;
        if (i > 0 || !j->resume)
            j->resumed += gnutls_session_is_resumed(s) ? 1 : 0;
        if (j->resume) {
            gnutls_free(data.data);
            data.data = NULL;
            gnutls_session_get_data2(s, &data);
        }
        gnutls_bye(s, GNUTLS_SHUT_WR);
        gnutls_deinit(s);
        close(fd);
    }
    gnutls_free(data.data);
    gnutls_certificate_free_credentials(cred);
    g_free(crt);
    g_free(key);
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Bare GnuTLS server. */

typedef struct bare_server {
    gnutls_certificate_credentials_t cred;
    gnutls_priority_t prio;
    int lfd;
    unsigned port;
} bare_server;

static void bare_init(bare_server *b)
{
    char *crt = g_build_filename(dir, "server.crt", NULL), *key = g_build_filename(dir, "server.key", NULL);
    char *ca = g_build_filename(dir, "ca.crt", NULL), *crl = g_build_filename(dir, "ca.crl", NULL);
    gnutls_certificate_allocate_credentials(&b->cred);
    if (gnutls_certificate_set_x509_key_file(b->cred, crt, key, GNUTLS_X509_FMT_PEM) < 0 ||
        gnutls_certificate_set_x509_trust_file(b->cred, ca, GNUTLS_X509_FMT_PEM) < 0 ||
        gnutls_certificate_set_x509_crl_file(b->cred, crl, GNUTLS_X509_FMT_PEM) < 0)
        die("bare server", "cannot load fixtures");
    if (gnutls_priority_init(&b->prio, priority, NULL) < 0)
        die("bare server", "priority");
    b->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof(sin);
    if (bind(b->lfd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(b->lfd, 128) != 0 ||
        getsockname(b->lfd, (struct sockaddr *)&sin, &sl) != 0)
        die("bare server", strerror(errno));
    b->port = ntohs(sin.sin_port);
    g_free(crt);
    g_free(key);
    g_free(ca);
    g_free(crl);
}

static void bare_clear(bare_server *b)
{
    close(b->lfd);
    gnutls_priority_deinit(b->prio);
    gnutls_certificate_free_credentials(b->cred);
}

static int bare_one(bare_server *b)
{
    int fd;
    while ((fd = accept4(b->lfd, NULL, NULL, SOCK_NONBLOCK)) < 0)
        wait_fd(b->lfd, 0);
    int one = 1, ok = 0;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    gnutls_session_t s;
    gnutls_init(&s, GNUTLS_SERVER | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL);
    gnutls_priority_set(s, b->prio);
    gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, b->cred);
    gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
    gnutls_session_ticket_enable_server(s, &ticket_key);
    /* GnuTLS's own verification, inside the handshake, whenever the client
     * sends certificates (full handshakes; a resumed one sends none). */
    gnutls_session_set_verify_cert(s, NULL, 0);
    gnutls_transport_set_int(s, fd);
    int rc;
    while ((rc = gnutls_handshake(s)) < 0) {
        if (gnutls_error_is_fatal(rc))
            goto out;
        wait_fd(fd, gnutls_record_get_direction(s));
    }
    char c;
    ssize_t n;
    while ((n = gnutls_record_recv(s, &c, 1)) == GNUTLS_E_AGAIN)
        wait_fd(fd, gnutls_record_get_direction(s));
    if (n != 1)
        goto out;
    while ((n = gnutls_record_send(s, &c, 1)) == GNUTLS_E_AGAIN)
        wait_fd(fd, gnutls_record_get_direction(s));
    ok = n == 1;
    gnutls_bye(s, GNUTLS_SHUT_WR);
out:
    gnutls_deinit(s);
    close(fd);
    return ok;
}

/* ------------------------------------------------------------------------ */
/* The plugin. */

typedef struct plugin_server {
    const pz_transport_provider *t;
    pz_provider *prov;
    pz_conf_doc *doc;
    void *listener;
    unsigned port;
} plugin_server;

static void plugin_init(plugin_server *p, const pz_plugin *plugin, int cache)
{
    pz_err err;
    pz_err_init(&err);
    char *yaml = g_strdup_printf("cert: %s/server.crt\nkey: %s/server.key\nca: %s/ca.crt\ncrl: %s/ca.crl\n"
                                 "verified_chain_cache: %s\n",
                                 dir, dir, dir, dir, cache ? "true" : "false");
    if (pz_conf_load_string("bench.yaml", yaml, strlen(yaml), &p->doc, &err) != 0 ||
        pz_provider_new(plugin, cache ? "tls" : "tls-nocache", pz_conf_root(p->doc), &p->prov, &err) != 0)
        die("plugin", pz_err_msg(&err));
    p->t = pz_provider_table(p->prov);
    if (p->t->listen(pz_provider_state(p->prov), "127.0.0.1:0", &p->listener, &err) != 0)
        die("plugin listen", pz_err_msg(&err));
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    getsockname(p->t->listener_fd(p->listener), (struct sockaddr *)&sin, &sl);
    p->port = ntohs(sin.sin_port);
    g_free(yaml);
    pz_err_clear(&err);
}

static void plugin_clear(plugin_server *p)
{
    p->t->listener_close(p->listener);
    pz_provider_free(p->prov);
    pz_conf_doc_free(p->doc);
}

static void wait_conn(const pz_transport_provider *t, void *conn)
{
    wait_fd(t->conn_fd(conn), t->conn_events(conn) & PZ_IO_WRITE);
}

static int plugin_one(plugin_server *p)
{
    const pz_transport_provider *t = p->t;
    void *conn = NULL;
    pz_addr remote;
    int rc, ok = 0;
    while ((rc = t->accept(p->listener, &conn, &remote, NULL)) == PZ_EAGAIN)
        wait_fd(t->listener_fd(p->listener), 0);
    if (rc != 0)
        return 0;
    while ((rc = t->handshake(conn, NULL)) == PZ_EAGAIN)
        wait_conn(t, conn);
    if (rc != 0)
        goto out;
    pz_auth_credentials cred;
    if (t->peer_credentials(conn, &cred) != 0 || cred.n_certs == 0)
        goto out;
    char c;
    size_t n = 0;
    while ((rc = t->read(conn, &c, 1, &n, NULL)) == PZ_EAGAIN)
        wait_conn(t, conn);
    if (rc != 0)
        goto out;
    while ((rc = t->write(conn, &c, 1, &n, NULL)) == PZ_EAGAIN)
        wait_conn(t, conn);
    ok = rc == 0;
out:
    t->close(conn);
    return ok;
}

/* ------------------------------------------------------------------------ */

typedef struct round_result {
    double cpu_per_hs; /* seconds */
    double hs_per_s;
    int ok, resumed, n;
} round_result;

static void run_round(int variant, bare_server *bare, plugin_server *plug, int n, int resume, round_result *r)
{
    client_job job = {.port = variant == V_BARE ? bare->port : plug->port, .n = n, .resume = resume};
    pthread_t th;
    int total = n + (resume ? 1 : 0);
    pthread_create(&th, NULL, client_main, &job);
    /* The ticket-fetching first connection is not measured. */
    int ok = 0;
    if (resume)
        ok += variant == V_BARE ? bare_one(bare) : plugin_one(plug);
    double w0 = now_s(CLOCK_MONOTONIC), c0 = now_s(CLOCK_THREAD_CPUTIME_ID);
    for (int i = resume ? 1 : 0; i < total; i++)
        ok += variant == V_BARE ? bare_one(bare) : plugin_one(plug);
    double c1 = now_s(CLOCK_THREAD_CPUTIME_ID), w1 = now_s(CLOCK_MONOTONIC);
    pthread_join(th, NULL);
    r->cpu_per_hs = (c1 - c0) / n;
    r->hs_per_s = n / (w1 - w0);
    r->ok = ok - (resume ? 1 : 0) - job.failed;
    r->resumed = job.resumed;
    r->n = n;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void log_quiet(void *ud, const char *source, pz_log_level level, const char *msg)
{
    (void)ud;
    if (level >= PZ_LOG_WARNING)
        fprintf(stderr, "%s: %s\n", source, msg);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 100;
    int rounds = argc > 2 ? atoi(argv[2]) : 5;
    int first_mode = 0, last_mode = 1;
    if (argc > 3 && !strcmp(argv[3], "full"))
        last_mode = 0;
    else if (argc > 3 && !strcmp(argv[3], "resumed"))
        first_mode = 1;
    else if (argc > 3) {
        n = 0;
    }
    if (n < 1 || rounds < 1) {
        fprintf(stderr, "usage: bench-tls [HANDSHAKES_PER_ROUND [ROUNDS [full|resumed]]]\n");
        return 2;
    }
    if (!getenv("PROZSEC_PLUGIN_PATH"))
        setenv("PROZSEC_PLUGIN_PATH", PZ_BENCH_BUILDDIR "/plugins/.libs", 1);
    pz_core_hooks hooks = {.log = log_quiet};
    pz_core_set_hooks(&hooks);

    GError *gerr = NULL;
    dir = g_dir_make_tmp("pz-bench-tls-XXXXXX", &gerr);
    if (!dir || pz_fix_write_set(dir, (int64_t)time(NULL)) != 0)
        die("fixtures", gerr ? gerr->message : "certfix failed");
    pz_tls_profiles profiles;
    pz_tls_profiles_default(&profiles);
    pz_tls_priority_string(&profiles, priority, sizeof(priority));
    snprintf(client_priority, sizeof(client_priority), "%s", priority);
    /* The client offers TLS 1.3 only: the benchmark is about TLS 1.3. */
    char *v12 = strstr(client_priority, ":+VERS-TLS1.2");
    if (v12)
        memmove(v12, v12 + strlen(":+VERS-TLS1.2"), strlen(v12 + strlen(":+VERS-TLS1.2")) + 1);
    gnutls_session_ticket_key_generate(&ticket_key);

    pz_err err;
    pz_err_init(&err);
    pz_loader *loader = NULL;
    const pz_plugin *plugin = NULL;
    if (pz_loader_new(NULL, 0, &loader, &err) != 0 ||
        pz_loader_load(loader, "tls", PZ_KIND_TRANSPORT, &plugin, &err) != 0)
        die("loader", pz_err_msg(&err));
    bare_server bare;
    plugin_server plug[2];
    bare_init(&bare);
    plugin_init(&plug[0], plugin, 1);
    plugin_init(&plug[1], plugin, 0);

    printf("bench-tls: TLS 1.3 mutual handshakes, ECDSA P-384 certificates, X25519 key share, %d per round, "
           "%d rounds, one client thread, server CPU by CLOCK_THREAD_CPUTIME_ID\n\n",
           n, rounds);
    double cpu[2][N_VARIANTS][64], rate[2][N_VARIANTS][64];
    int bad = 0;
    if (rounds > 64)
        rounds = 64;
    /* Warm-up: one short round of each, not counted. */
    for (int resume = first_mode; resume <= last_mode; resume++)
        for (int v = 0; v < N_VARIANTS; v++) {
            round_result r;
            run_round(v, &bare, &plug[v == V_NOCACHE], 5, resume, &r);
        }
    for (int k = 0; k < rounds; k++) {
        for (int resume = first_mode; resume <= last_mode; resume++) {
            for (int v = 0; v < N_VARIANTS; v++) {
                round_result r;
                run_round(v, &bare, &plug[v == V_NOCACHE], n, resume, &r);
                cpu[resume][v][k] = r.cpu_per_hs;
                rate[resume][v][k] = r.hs_per_s;
                if (r.ok != n || (resume && r.resumed != n) || (!resume && r.resumed != 0)) {
                    fprintf(stderr, "bench-tls: %s %s round %d: %d/%d ok, %d resumed\n", vnames[v],
                            resume ? "resumed" : "full", k, r.ok, n, r.resumed);
                    bad = 1;
                }
            }
        }
    }
    printf("%-8s %-15s %14s %16s %10s\n", "mode", "server", "handshakes/s", "server CPU/hs", "vs bare");
    double med[2][N_VARIANTS];
    for (int resume = first_mode; resume <= last_mode; resume++) {
        for (int v = 0; v < N_VARIANTS; v++) {
            med[resume][v] = median(cpu[resume][v], rounds);
            double r = median(rate[resume][v], rounds);
            printf("%-8s %-15s %14.0f %13.3f ms %9.3fx\n", resume ? "resumed" : "full", vnames[v], r,
                   med[resume][v] * 1e3, med[resume][v] / med[resume][V_BARE]);
            printf("RESULT tls_%s_%s_handshakes_per_s %.0f hs/s\n", resume ? "resumed" : "full",
                   v == V_BARE ? "bare" : v == V_PLUGIN ? "plugin" : "plugin_nocache", r);
            printf("RESULT tls_%s_%s_server_cpu_per_hs %.1f us\n", resume ? "resumed" : "full",
                   v == V_BARE ? "bare" : v == V_PLUGIN ? "plugin" : "plugin_nocache", med[resume][v] * 1e6);
        }
    }
    for (int resume = first_mode; resume <= last_mode; resume++) {
        const char *m = resume ? "resumed" : "full";
        printf("RESULT tls_%s_ratio %.3f x\n", m, med[resume][V_PLUGIN] / med[resume][V_BARE]);
        printf("RESULT tls_%s_nocache_ratio %.3f x\n", m, med[resume][V_NOCACHE] / med[resume][V_BARE]);
    }
    printf("\ntargets: full <= 1.10x, resumed <= 1.15x the bare loop's server CPU per handshake\n");

    plugin_clear(&plug[0]);
    plugin_clear(&plug[1]);
    bare_clear(&bare);
    pz_loader_free(loader);
    pz_err_clear(&err);
    gnutls_free(ticket_key.data);
    GDir *d = g_dir_open(dir, 0, NULL);
    const char *name;
    while (d && (name = g_dir_read_name(d))) {
        char *p = g_build_filename(dir, name, NULL);
        g_unlink(p);
        g_free(p);
    }
    if (d)
        g_dir_close(d);
    g_rmdir(dir);
    g_free(dir);
    return bad;
}
