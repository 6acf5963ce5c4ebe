/* tests/bench/bench-rpc.c — secure RPC throughput and server CPU per call,
 * each next to its floor measured in the same run:
 *
 *   signed  calls in `signature` mode (Ed25519 per call context and per
 *           response), server CPU per call vs the floor "Ed25519 verify +
 *           sign with the same keys" (target <= 1.15x). The calls run in
 *           slices with slices of the floor between them, so drift in the
 *           shared machine's speed hits both alike;
 *   mac     calls in `mac` mode with 32 in flight over TLS 1.3 vs a bare
 *           GnuTLS request/response loop with 32 in flight and messages of
 *           the same size (target >= 0.7x).
 *
 * The server runs in its own thread with its own GMainContext; the client in
 * the main thread. Both ends of every connection are in this process
 * (socketpair), TLS is GnuTLS with a PSK (the handshake is not measured).
 *
 * Usage: bench-rpc [SIGNED_CALLS [MAC_CALLS]]; prints a table and RESULT
 * lines. Speed is never asserted. The table also splits the server
 * thread's CPU into user and kernel (system calls) time.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <glib-unix.h>
#include <glib.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include <prozsec/rpc.h>

#include "err.h"

/* ------------------------------------------------------------------------ */
/* Transports: plain socketpair and TLS 1.3 (PSK) over a socketpair. */

typedef struct bconn {
    int fd;
    gnutls_session_t tls; /* NULL: plain */
} bconn;

static int b_read(void *c_, void *buf, size_t len, size_t *nread, pz_err *err)
{
    bconn *c = c_;
    ssize_t n;
    if (c->tls) {
        n = gnutls_record_recv(c->tls, buf, len);
        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
            return PZ_EAGAIN;
        if (n < 0)
            return pz_err_set(err, PZ_EIO, "tls: %s", gnutls_strerror((int)n));
    } else {
        n = read(c->fd, buf, len);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return PZ_EAGAIN;
        if (n < 0)
            return pz_err_set(err, PZ_EIO, "read: %s", strerror(errno));
    }
    if (n == 0)
        return PZ_EOF;
    *nread = (size_t)n;
    return 0;
}

static int b_write(void *c_, const void *buf, size_t len, size_t *nw, pz_err *err)
{
    bconn *c = c_;
    ssize_t n;
    if (c->tls) {
        n = gnutls_record_send(c->tls, buf, len > 16384 ? 16384 : len);
        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
            return PZ_EAGAIN;
        if (n < 0)
            return pz_err_set(err, PZ_EIO, "tls: %s", gnutls_strerror((int)n));
    } else {
        n = send(c->fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return PZ_EAGAIN;
        if (n < 0)
            return pz_err_set(err, PZ_EIO, "write: %s", strerror(errno));
    }
    *nw = (size_t)n;
    return 0;
}

static int b_fd(void *c)
{
    return ((bconn *)c)->fd;
}

static int b_events(void *c_)
{
    bconn *c = c_;
    if (c->tls && gnutls_record_get_direction(c->tls))
        return PZ_IO_WRITE;
    return PZ_IO_READ;
}

static void b_close(void *c_)
{
    bconn *c = c_;
    if (c->tls)
        gnutls_deinit(c->tls);
    close(c->fd);
    g_free(c);
}

static int b_binding(void *c_, const char *label, uint8_t *out, size_t len, pz_err *err)
{
    bconn *c = c_;
    if (!c->tls)
        return pz_err_set(err, PZ_ENOTSUP, "no channel binding on a plain socket");
    if (gnutls_prf_rfc5705(c->tls, strlen(label), label, 0, NULL, len, (char *)out) < 0)
        return pz_err_set(err, PZ_ECRYPTO, "tls exporter failed");
    return 0;
}

static const pz_transport_provider btp = {
    .struct_size = sizeof(pz_transport_provider),
    .read = b_read,
    .write = b_write,
    .conn_fd = b_fd,
    .conn_events = b_events,
    .close = b_close,
    .channel_binding = b_binding,
};

static const uint8_t psk_bytes[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                      17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

static int psk_server_cb(gnutls_session_t s, const char *user, gnutls_datum_t *key)
{
    (void)s, (void)user;
    key->data = gnutls_malloc(sizeof(psk_bytes));
    memcpy(key->data, psk_bytes, sizeof(psk_bytes));
    key->size = sizeof(psk_bytes);
    return 0;
}

static gnutls_psk_server_credentials_t scred;
static gnutls_psk_client_credentials_t ccred;

typedef struct hs_job {
    gnutls_session_t s;
    int rc;
} hs_job;

static void *hs_thread(void *p)
{
    hs_job *j = p;
    do
        j->rc = gnutls_handshake(j->s);
    while (j->rc < 0 && !gnutls_error_is_fatal(j->rc));
    return NULL;
}

/* A connected pair; TLS when WITH_TLS (handshake done, then non-blocking
 * unless BLOCKING). */
static void make_pair(int with_tls, int blocking, bconn **server, bconn **client)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        abort();
    bconn *s = g_new0(bconn, 1), *c = g_new0(bconn, 1);
    s->fd = sv[0];
    c->fd = sv[1];
    if (with_tls) {
        const char *prio = "NORMAL:-VERS-ALL:+VERS-TLS1.3:+PSK:+ECDHE-PSK";
        gnutls_init(&s->tls, GNUTLS_SERVER);
        gnutls_init(&c->tls, GNUTLS_CLIENT);
        if (gnutls_priority_set_direct(s->tls, prio, NULL) < 0 || gnutls_priority_set_direct(c->tls, prio, NULL) < 0)
            abort();
        gnutls_credentials_set(s->tls, GNUTLS_CRD_PSK, scred);
        gnutls_credentials_set(c->tls, GNUTLS_CRD_PSK, ccred);
        gnutls_transport_set_int(s->tls, s->fd);
        gnutls_transport_set_int(c->tls, c->fd);
        hs_job js = {s->tls, 0}, jc = {c->tls, 0};
        pthread_t t;
        pthread_create(&t, NULL, hs_thread, &js);
        hs_thread(&jc);
        pthread_join(t, NULL);
        if (js.rc < 0 || jc.rc < 0) {
            fprintf(stderr, "bench-rpc: TLS handshake failed: %s / %s\n", gnutls_strerror(js.rc),
                    gnutls_strerror(jc.rc));
            exit(1);
        }
    }
    if (!blocking) {
        g_unix_set_fd_nonblocking(s->fd, TRUE, NULL);
        g_unix_set_fd_nonblocking(c->fd, TRUE, NULL);
    }
    *server = s;
    *client = c;
}

/* ------------------------------------------------------------------------ */
/* Server thread. */

typedef struct srv {
    GMainContext *ctx;
    pz_rpc_server *server;
    pz_rpc_key *key;
    pthread_t thread;
    clockid_t cpu;
    long tid; /* for its user/system split in /proc */
    volatile int stop;
    GMutex lock;
    GCond cond;
    int ready;
} srv;

static void h_echo(pz_rpc_call *call, GVariant *params, void *ud)
{
    (void)ud;
    pz_rpc_call_return(call, params);
}

static void *server_main(void *p)
{
    srv *s = p;
    s->tid = (long)syscall(SYS_gettid);
    g_main_context_push_thread_default(s->ctx);
    pz_rpc_server_config sc = {.struct_size = sizeof(sc), .node_id = "bench-server", .key = s->key,
                               .context = s->ctx, .max_in_flight = 1024};
    if (pz_rpc_server_new(&sc, &s->server, NULL) != 0)
        abort();
    pz_rpc_register(s->server, "bench.echo", h_echo, NULL, 0);
    pz_rpc_register(s->server, "bench.mac", h_echo, NULL, PZ_RPC_MAC);
    g_mutex_lock(&s->lock);
    s->ready = 1;
    g_cond_signal(&s->cond);
    g_mutex_unlock(&s->lock);
    while (!s->stop)
        g_main_context_iteration(s->ctx, TRUE);
    pz_rpc_server_free(s->server);
    g_main_context_pop_thread_default(s->ctx);
    return NULL;
}

typedef struct add_job {
    srv *s;
    bconn *conn;
    const pz_identity *peer;
    int done;
} add_job;

static gboolean do_add(gpointer p)
{
    add_job *j = p;
    if (pz_rpc_server_add_connection(j->s->server, &btp, j->conn, j->peer, NULL, NULL, NULL) != 0)
        abort();
    g_atomic_int_set(&j->done, 1);
    return G_SOURCE_REMOVE;
}

static void server_add(srv *s, bconn *conn, const pz_identity *peer)
{
    add_job j = {s, conn, peer, 0};
    g_main_context_invoke(s->ctx, do_add, &j);
    while (!g_atomic_int_get(&j.done))
        g_usleep(100);
}

static double cpu_now(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double wall_now(void)
{
    return (double)g_get_monotonic_time() / 1e6;
}

/* The server thread's user and system time so far, in clock ticks. */
static void thread_ticks(const srv *s, unsigned long long *user, unsigned long long *sys)
{
    char path[64], buf[1024];
    *user = *sys = 0;
    g_snprintf(path, sizeof(path), "/proc/self/task/%ld/stat", s->tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    /* Fields after the parenthesised name: state is field 3, utime 14,
     * stime 15. */
    char *p = strrchr(buf, ')');
    if (p)
        sscanf(p + 2, "%*c %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %llu %llu", user, sys);
}

/* ------------------------------------------------------------------------ */
/* Client side. */

typedef struct run {
    pz_rpc_client *client;
    const char *method;
    unsigned total, sent, done, failed, in_flight_max;
    GVariant *params;
    int finished;
} run;

static void issue(run *r);

static void on_done(const pz_rpc_result *res, void *ud)
{
    run *r = ud;
    if (res->rc != 0 || res->status != PZ_RPC_OK) {
        if (r->failed++ == 0)
            fprintf(stderr, "bench-rpc: call failed: %s\n", res->message);
    }
    r->done++;
    if (r->done == r->total)
        r->finished = 1;
    else if (r->sent < r->total)
        issue(r);
}

static void issue(run *r)
{
    r->sent++;
    if (pz_rpc_client_call(r->client, "bench-server", r->method, g_variant_ref(r->params), NULL, on_done, r) != 0)
        abort();
}

typedef struct conn_ctx {
    srv *s;
    int tls;
    const pz_identity *client_id, *server_id;
} conn_ctx;

typedef struct cjob {
    conn_ctx *cc;
    pz_rpc_client *client;
    char *peer;
} cjob;

static gboolean do_connect(gpointer p)
{
    cjob *j = p;
    bconn *a, *b;
    make_pair(j->cc->tls, 0, &a, &b);
    server_add(j->cc->s, a, j->cc->client_id);
    if (pz_rpc_client_add_connection(j->client, j->peer, &btp, b, j->cc->server_id, NULL) != 0)
        abort();
    g_free(j->peer);
    g_free(j);
    return G_SOURCE_REMOVE;
}

/* Connect from the main loop, never inside the hook (as documented). */
static void on_connect(void *ud, pz_rpc_client *client, const char *peer)
{
    cjob *j = g_new0(cjob, 1);
    j->cc = ud;
    j->client = client;
    j->peer = g_strdup(peer);
    GSource *src = g_timeout_source_new(0);
    g_source_set_callback(src, do_connect, j, NULL);
    g_source_attach(src, NULL);
    g_source_unref(src);
}

static double run_calls(pz_rpc_client *client, const char *method, unsigned total, unsigned window,
                        GVariant *params, srv *s, double *server_cpu)
{
    run r = {.client = client, .method = method, .total = total, .params = params};
    double c0 = cpu_now(s->cpu), w0 = wall_now();
    for (unsigned i = 0; i < window && i < total; i++)
        issue(&r);
    while (!r.finished)
        g_main_context_iteration(NULL, TRUE);
    double w1 = wall_now(), c1 = cpu_now(s->cpu);
    if (r.failed)
        fprintf(stderr, "bench-rpc: %u of %u calls failed\n", r.failed, total);
    *server_cpu = c1 - c0;
    return w1 - w0;
}

/* ------------------------------------------------------------------------ */
/* Floors. */

/* The floor: Ed25519 verify + sign with the same keys (imported once, as
 * the server's are) on messages of the sizes the server handles, through
 * GnuTLS as the crypto seam does. Runs in the calling thread; CPU seconds
 * and pairs accumulate over slices. */
typedef struct floor_ctx {
    gnutls_privkey_t spriv;
    gnutls_pubkey_t cpub;
    uint8_t req[160], resp[120];
    gnutls_datum_t sig;
    double cpu;
    unsigned pairs;
} floor_ctx;

static void floor_init(floor_ctx *f, const uint8_t *cli_seed, const uint8_t *srv_seed)
{
    gnutls_privkey_t cpriv;
    pz_rpc_key *ck, *sk;
    uint8_t cp[32], sp[32];
    memset(f, 0, sizeof(*f));
    gnutls_privkey_init(&cpriv);
    gnutls_privkey_init(&f->spriv);
    gnutls_pubkey_init(&f->cpub);
    pz_rpc_key_new(cli_seed, &ck, NULL);
    pz_rpc_key_new(srv_seed, &sk, NULL);
    pz_rpc_key_public(ck, cp);
    pz_rpc_key_public(sk, sp);
    gnutls_datum_t cx = {cp, 32}, sx = {sp, 32}, ck_d = {(unsigned char *)cli_seed, 32},
                   sk_d = {(unsigned char *)srv_seed, 32};
    gnutls_privkey_import_ecc_raw(cpriv, GNUTLS_ECC_CURVE_ED25519, &cx, NULL, &ck_d);
    gnutls_privkey_import_ecc_raw(f->spriv, GNUTLS_ECC_CURVE_ED25519, &sx, NULL, &sk_d);
    gnutls_pubkey_import_ecc_raw(f->cpub, GNUTLS_ECC_CURVE_ED25519, &cx, NULL);
    memset(f->req, 'q', sizeof(f->req));
    memset(f->resp, 'r', sizeof(f->resp));
    gnutls_datum_t rq = {f->req, sizeof(f->req)};
    gnutls_privkey_sign_data2(cpriv, GNUTLS_SIGN_EDDSA_ED25519, 0, &rq, &f->sig);
    gnutls_privkey_deinit(cpriv);
    pz_rpc_key_free(ck);
    pz_rpc_key_free(sk);
}

static void floor_run(floor_ctx *f, unsigned n)
{
    gnutls_datum_t rq = {f->req, sizeof(f->req)}, rs = {f->resp, sizeof(f->resp)};
    double c0 = cpu_now(CLOCK_THREAD_CPUTIME_ID);
    for (unsigned i = 0; i < n; i++) {
        gnutls_datum_t out;
        if (gnutls_pubkey_verify_data2(f->cpub, GNUTLS_SIGN_EDDSA_ED25519, 0, &rq, &f->sig) < 0)
            abort();
        gnutls_privkey_sign_data2(f->spriv, GNUTLS_SIGN_EDDSA_ED25519, 0, &rs, &out);
        gnutls_free(out.data);
    }
    f->cpu += cpu_now(CLOCK_THREAD_CPUTIME_ID) - c0;
    f->pairs += n;
}

static void floor_free(floor_ctx *f)
{
    gnutls_free(f->sig.data);
    gnutls_privkey_deinit(f->spriv);
    gnutls_pubkey_deinit(f->cpub);
}

/* Bare GnuTLS: the server thread echoes fixed-size records; the client keeps
 * WINDOW requests in flight. Blocking sockets, no framing beyond TLS. */
typedef struct bare {
    bconn *conn;
    size_t size;
    unsigned total;
} bare;

static void read_exact_tls(gnutls_session_t s, uint8_t *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = gnutls_record_recv(s, buf + got, len - got);
        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
            continue;
        if (n <= 0)
            abort();
        got += (size_t)n;
    }
}

static void write_tls(gnutls_session_t s, const uint8_t *buf, size_t len)
{
    ssize_t n;
    do
        n = gnutls_record_send(s, buf, len);
    while (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED);
    if (n != (ssize_t)len)
        abort();
}

static void *bare_server(void *p)
{
    bare *b = p;
    uint8_t *buf = g_malloc(b->size);
    for (unsigned i = 0; i < b->total; i++) {
        read_exact_tls(b->conn->tls, buf, b->size);
        write_tls(b->conn->tls, buf, b->size);
    }
    g_free(buf);
    return NULL;
}

static double bare_tls_loop(size_t req_size, unsigned total, unsigned window)
{
    bconn *s, *c;
    make_pair(1, 1, &s, &c);
    bare b = {s, req_size, total};
    pthread_t t;
    pthread_create(&t, NULL, bare_server, &b);
    uint8_t *buf = g_malloc0(req_size);
    double w0 = wall_now();
    unsigned sent = 0;
    for (; sent < window && sent < total; sent++)
        write_tls(c->tls, buf, req_size);
    for (unsigned done = 0; done < total; done++) {
        read_exact_tls(c->tls, buf, req_size);
        if (sent < total) {
            write_tls(c->tls, buf, req_size);
            sent++;
        }
    }
    double w1 = wall_now();
    pthread_join(t, NULL);
    g_free(buf);
    b_close(s);
    b_close(c);
    return w1 - w0;
}

/* ------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    unsigned n_signed = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 20000;
    unsigned n_mac = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 200000;
    if (n_signed < 100)
        n_signed = 100;
    if (n_mac < 1000)
        n_mac = 1000;
    gnutls_global_init();
    gnutls_psk_allocate_server_credentials(&scred);
    gnutls_psk_set_server_credentials_function(scred, psk_server_cb);
    gnutls_psk_allocate_client_credentials(&ccred);
    gnutls_datum_t k = {(unsigned char *)psk_bytes, sizeof(psk_bytes)};
    gnutls_psk_set_client_credentials(ccred, "bench", &k, GNUTLS_PSK_KEY_RAW);

    uint8_t cli_seed[32], srv_seed[32];
    gnutls_rnd(GNUTLS_RND_KEY, cli_seed, 32);
    gnutls_rnd(GNUTLS_RND_KEY, srv_seed, 32);
    pz_rpc_key *ckey, *skey;
    pz_rpc_key_new(cli_seed, &ckey, NULL);
    pz_rpc_key_new(srv_seed, &skey, NULL);
    uint8_t cpub[32], spub[32];
    pz_rpc_key_public(ckey, cpub);
    pz_rpc_key_public(skey, spub);
    pz_identity cid = {.struct_size = sizeof(cid), .node_id = "bench-client", .node_type = "", .sign_pub = cpub};
    pz_identity sid = {.struct_size = sizeof(sid), .node_id = "bench-server", .node_type = "", .sign_pub = spub};

    srv s = {.ctx = g_main_context_new(), .key = skey};
    g_mutex_init(&s.lock);
    g_cond_init(&s.cond);
    pthread_create(&s.thread, NULL, server_main, &s);
    g_mutex_lock(&s.lock);
    while (!s.ready)
        g_cond_wait(&s.cond, &s.lock);
    g_mutex_unlock(&s.lock);
    pthread_getcpuclockid(s.thread, &s.cpu);

    GVariant *params = g_variant_ref_sink(g_variant_new("(sx)", "prozchain block 123456 header hash", (gint64)42));
    const unsigned window_signed = 64, window_mac = 32;
    struct {
        const char *name;
        int tls;
        const char *method;
        unsigned n, window;
        double wall, cpu;
        unsigned long long user, sys; /* server thread, clock ticks */
        floor_ctx floor;              /* interleaved with the signed runs */
    } runs[] = {
        {"signed, plain socket", 0, "bench.echo", n_signed, window_signed, 0, 0, 0, 0, {0}},
        {"signed, TLS 1.3", 1, "bench.echo", n_signed, window_signed, 0, 0, 0, 0, {0}},
        {"mac, TLS 1.3", 1, "bench.mac", n_mac, window_mac, 0, 0, 0, 0, {0}},
    };
    /* Signed runs go in SLICES slices, each followed by a slice of the
     * floor (FLOOR_N pairs in all per run): the machine's speed drifts, and
     * both sides then sample it alike. */
    const unsigned slices = 10;
    unsigned floor_n = n_signed / 4 > 1000 ? n_signed / 4 : 1000;
    for (size_t i = 0; i < G_N_ELEMENTS(runs); i++) {
        conn_ctx cc = {&s, runs[i].tls, &cid, &sid};
        pz_rpc_client_hooks ch = {.struct_size = sizeof(ch), .connect = on_connect, .ud = &cc};
        pz_rpc_client_config cfg = {.struct_size = sizeof(cfg), .node_id = "bench-client", .key = ckey,
                                    .hooks = &ch, .max_conns_per_peer = 1, .max_in_flight = 4096};
        pz_rpc_client *client;
        if (pz_rpc_client_new(&cfg, &client, NULL) != 0 || pz_rpc_client_mark(client, "bench.mac", PZ_RPC_MAC) != 0)
            abort();
        double warm_cpu;
        int signed_run = strcmp(runs[i].method, "bench.echo") == 0;
        unsigned parts = signed_run ? slices : 1;
        unsigned long long u0, s0, u1, s1;
        if (signed_run)
            floor_init(&runs[i].floor, cli_seed, srv_seed);
        run_calls(client, runs[i].method, runs[i].window * 4, runs[i].window, params, &s, &warm_cpu);
        thread_ticks(&s, &u0, &s0);
        for (unsigned sl = 0; sl < parts; sl++) {
            double cpu;
            unsigned n = runs[i].n / parts + (sl < runs[i].n % parts);
            runs[i].wall += run_calls(client, runs[i].method, n, runs[i].window, params, &s, &cpu);
            runs[i].cpu += cpu;
            if (signed_run)
                floor_run(&runs[i].floor, floor_n / parts);
        }
        thread_ticks(&s, &u1, &s1);
        runs[i].user = u1 - u0;
        runs[i].sys = s1 - s0;
        pz_rpc_client_free(client);
    }

    /* The floor of the two signed runs together (each ratio uses its own). */
    double floor_s = (runs[0].floor.cpu + runs[1].floor.cpu) / (runs[0].floor.pairs + runs[1].floor.pairs);
    /* The size of a mac-mode request envelope with these params, framed. */
    size_t req_size = 4 + 180;
    double bare_wall = bare_tls_loop(req_size, n_mac, window_mac);

    printf("\nprozsec RPC benchmark (server thread CPU; client in another thread, same process)\n\n");
    printf("%-24s %10s %12s %16s %12s %10s\n", "run", "calls", "calls/s", "server CPU/call", "its floor",
           "kernel");
    for (size_t i = 0; i < G_N_ELEMENTS(runs); i++) {
        char fl[32] = "-";
        if (runs[i].floor.pairs)
            g_snprintf(fl, sizeof(fl), "%.1f us", runs[i].floor.cpu / runs[i].floor.pairs * 1e6);
        unsigned long long t = runs[i].user + runs[i].sys;
        printf("%-24s %10u %12.0f %13.1f us %12s %9.1f%%\n", runs[i].name, runs[i].n, runs[i].n / runs[i].wall,
               runs[i].cpu / runs[i].n * 1e6, fl, t ? 100.0 * (double)runs[i].sys / (double)t : 0.0);
    }
    printf("%-24s %10u %12.0f %13.1f us\n", "floor: verify+sign", runs[0].floor.pairs + runs[1].floor.pairs,
           1.0 / floor_s, floor_s * 1e6);
    printf("%-24s %10u %12.0f %16s\n", "bare GnuTLS req/resp", n_mac, n_mac / bare_wall, "-");
    double r_plain = runs[0].cpu / runs[0].n / (runs[0].floor.cpu / runs[0].floor.pairs);
    double r_tls = runs[1].cpu / runs[1].n / (runs[1].floor.cpu / runs[1].floor.pairs);
    double r_mac = (n_mac / runs[2].wall) / (n_mac / bare_wall);
    printf("\nsigned server CPU/call vs floor: %.3fx plain, %.3fx TLS (target <= 1.15x)\n", r_plain, r_tls);
    printf("mac calls/s vs bare GnuTLS loop, 32 in flight: %.3fx (target >= 0.7x)\n\n", r_mac);

    printf("RESULT rpc_signed_calls_per_s %.0f calls/s\n", runs[0].n / runs[0].wall);
    printf("RESULT rpc_signed_server_cpu_per_call %.1f us\n", runs[0].cpu / runs[0].n * 1e6);
    printf("RESULT rpc_signed_tls_calls_per_s %.0f calls/s\n", runs[1].n / runs[1].wall);
    printf("RESULT rpc_signed_tls_server_cpu_per_call %.1f us\n", runs[1].cpu / runs[1].n * 1e6);
    printf("RESULT rpc_floor_verify_sign %.1f us\n", floor_s * 1e6);
    printf("RESULT rpc_signed_cpu_ratio %.3f x\n", r_plain);
    printf("RESULT rpc_signed_tls_cpu_ratio %.3f x\n", r_tls);
    printf("RESULT rpc_mac_calls_per_s %.0f calls/s\n", n_mac / runs[2].wall);
    printf("RESULT rpc_mac_server_cpu_per_call %.1f us\n", runs[2].cpu / runs[2].n * 1e6);
    printf("RESULT tls_bare_requests_per_s %.0f requests/s\n", n_mac / bare_wall);
    printf("RESULT rpc_mac_vs_bare_ratio %.3f x\n", r_mac);
    for (size_t i = 0; i < 2; i++)
        floor_free(&runs[i].floor);

    s.stop = 1;
    g_main_context_wakeup(s.ctx);
    pthread_join(s.thread, NULL);
    g_main_context_unref(s.ctx);
    g_variant_unref(params);
    pz_rpc_key_free(ckey);
    pz_rpc_key_free(skey);
    gnutls_psk_free_server_credentials(scred);
    gnutls_psk_free_client_credentials(ccred);
    gnutls_global_deinit();
    return 0;
}
