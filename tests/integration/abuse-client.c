/* tests/integration/abuse-client.c — abuse scenarios against a running
 * prozsecd on loopback (issue 9), driven by tests/integration/abuse.sh and
 * tests/integration/faults.sh.
 *
 *   abuse-client SCENARIO [OPTIONS]
 *
 *   conn-flood      --attempts N TCP connections from --src in a few seconds
 *                   (then --prefix-attempts spread over the rest of its /24)
 *                   while the legitimate peer (--legit-config) makes signed
 *                   calls, each on a new connection; daemon RSS before/after
 *   slow-handshake  a silent connection, a ClientHello dribbled a byte at a
 *                   time, and --pending-cap + 8 simultaneous silent handshakes
 *   bad-frames      after a real mutual-TLS handshake as --as: a malformed
 *                   E2E envelope in msg.send, oversized and zero lengths,
 *                   garbage, a non-normal-form envelope, a truncated frame
 *                   then close; reputation before/after; the legit peer
 *   replay          a signed call sent twice (same and new connection), one
 *                   re-targeted at --other-id, one stale
 *   tls-close       a TCP close without close_notify between records, then
 *                   a TLS record cut short: malformed counted for each
 *   call-flood      signed calls in rounds until the peer is on probation
 *                   (or --max-calls), `prozsec peer list` while connected,
 *                   the legit peer's calls
 *   ban-storm       --count admin.ban (and some admin.unban) over the admin
 *                   socket as fast as they are answered (faults.sh kills the
 *                   daemon meanwhile)
 *   ban-check       after a restart: every ban and unban a ban-storm had
 *                   acknowledged (--start, --count, --unbans) is in force
 *   peer-info       status, score and last adjustments of --as (admin.peers)
 *   bind-check      whether a socket can be bound to --src
 *
 * Every scenario is bounded in count and time, closes what it opens and
 * prints one line "ABUSE <scenario> key=value ..." (values with spaces are
 * double-quoted). The client measures; the scripts assert. Exit 0 when the
 * scenario ran, 1 when it could not (setup, connection), 2 on usage errors.
 *
 * Signing, envelopes and frames come from the library (rpc_wire.h,
 * rpc_frame.h, nodekeys.h); the legitimate peer and the admin queries are
 * client-mode pz_node instances, like `prozsec rpc call` and `peer list`.
 * Abusive connections are made here with plain sockets and GnuTLS, bound
 * to a --src address in 127.0.0.0/8 so that per-address accounting is
 * separate from the legitimate peer's (127.0.0.1).
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <glib.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <json-glib/json-glib.h>

#include "coresvc.h"
#include "credframe.h"
#include "crypto.h"
#include "err.h"
#include "logging.h"
#include "node.h"
#include "nodekeys.h"
#include "rpc_frame.h"
#include "rpc_wire.h"

#define MAX_FRAME (1024u * 1024u)
#define IO_TIMEOUT_MS 5000

/* ------------------------------------------------------------------------ */
/* Options                                                                   */

static char *o_server;        /* HOST:PORT of the daemon's tls listener */
static char *o_server_id;     /* its node id */
static char *o_other_id = "node-2";
static char *o_ca;            /* CA certificate (PEM) */
static int o_pid;             /* the daemon's pid (RSS) */
static char *o_admin_config;  /* the daemon's own configuration (admin client) */
static char *o_admin_sock;    /* its unix admin socket */
static char *o_admin_transport = "admin";
static char *o_legit_config;  /* the legitimate peer's configuration */
static char *o_as;            /* abusing identity: node id */
static char *o_as_dir;        /* its directory: node.crt, node.key, signing key */
static char *o_src = "127.0.1.2";
static int o_attempts = 10000;
static int o_prefix_attempts = 2000;
static int o_concurrency = 256;
static int o_hold_ms = 300;
static int o_pending_cap = 24;
static int o_deadline_ms = 2000;
static int o_time_limit = 30;
static int o_max_calls = 2000;
static int o_batch = 10;
static int o_count = 200;
static int o_start;
static int o_unbans;
static char *o_prozsec;

static const GOptionEntry entries[] = {
    {"server", 0, 0, G_OPTION_ARG_STRING, &o_server, "Daemon's TLS address", "HOST:PORT"},
    {"server-id", 0, 0, G_OPTION_ARG_STRING, &o_server_id, "Daemon's node id", "ID"},
    {"other-id", 0, 0, G_OPTION_ARG_STRING, &o_other_id, "Another node id (re-targeted calls)", "ID"},
    {"ca", 0, 0, G_OPTION_ARG_FILENAME, &o_ca, "CA certificate", "FILE"},
    {"pid", 0, 0, G_OPTION_ARG_INT, &o_pid, "Daemon's pid (memory)", "PID"},
    {"admin-config", 0, 0, G_OPTION_ARG_FILENAME, &o_admin_config, "Daemon's configuration (admin socket)", "FILE"},
    {"admin-sock", 0, 0, G_OPTION_ARG_FILENAME, &o_admin_sock, "Daemon's admin socket", "PATH"},
    {"admin-transport", 0, 0, G_OPTION_ARG_STRING, &o_admin_transport, "Its unix transport instance", "NAME"},
    {"legit-config", 0, 0, G_OPTION_ARG_FILENAME, &o_legit_config, "Legitimate peer's configuration", "FILE"},
    {"as", 0, 0, G_OPTION_ARG_STRING, &o_as, "Abusing identity's node id", "ID"},
    {"as-dir", 0, 0, G_OPTION_ARG_FILENAME, &o_as_dir, "Its certificate and key directory", "DIR"},
    {"src", 0, 0, G_OPTION_ARG_STRING, &o_src, "Source address of abusive connections", "IP"},
    {"attempts", 0, 0, G_OPTION_ARG_INT, &o_attempts, "conn-flood: attempts from --src", "N"},
    {"prefix-attempts", 0, 0, G_OPTION_ARG_INT, &o_prefix_attempts, "conn-flood: attempts over --src's /24", "N"},
    {"concurrency", 0, 0, G_OPTION_ARG_INT, &o_concurrency, "conn-flood: connections in progress at once", "N"},
    {"hold-ms", 0, 0, G_OPTION_ARG_INT, &o_hold_ms, "A connection still open after this was admitted", "MS"},
    {"pending-cap", 0, 0, G_OPTION_ARG_INT, &o_pending_cap, "slow-handshake: the configured pending cap", "N"},
    {"deadline-ms", 0, 0, G_OPTION_ARG_INT, &o_deadline_ms, "The configured handshake deadline", "MS"},
    {"time-limit", 0, 0, G_OPTION_ARG_INT, &o_time_limit, "Bound on a scenario's main loop", "S"},
    {"max-calls", 0, 0, G_OPTION_ARG_INT, &o_max_calls, "call-flood: most calls sent", "N"},
    {"batch", 0, 0, G_OPTION_ARG_INT, &o_batch, "call-flood: calls per round", "N"},
    {"count", 0, 0, G_OPTION_ARG_INT, &o_count, "ban-storm: bans", "N"},
    {"start", 0, 0, G_OPTION_ARG_INT, &o_start, "ban-storm, ban-check: first index (targets p-INDEX)", "N"},
    {"unbans", 0, 0, G_OPTION_ARG_INT, &o_unbans, "ban-check: unbans the storm acknowledged", "N"},
    {"prozsec", 0, 0, G_OPTION_ARG_FILENAME, &o_prozsec, "The prozsec tool (peer list)", "PATH"},
    {NULL, 0, 0, 0, NULL, NULL, NULL},
};

static void die_usage(const char *what)
{
    fprintf(stderr, "abuse-client: %s (try --help)\n", what);
    exit(2);
}

static void need(const char *value, const char *option)
{
    if (!value || !*value) {
        char msg[96];
        g_snprintf(msg, sizeof(msg), "%s is required for this scenario", option);
        die_usage(msg);
    }
}

static int64_t now_ms(void)
{
    return g_get_monotonic_time() / 1000;
}

/* ------------------------------------------------------------------------ */
/* The summary line                                                          */

static GString *line;

static void kv(const char *key, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void kv(const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *v = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    int quote = strchr(v, ' ') != NULL || !*v;
    g_string_append_printf(line, " %s=%s%s%s", key, quote ? "\"" : "", v, quote ? "\"" : "");
}

static void summary_print(void)
{
    printf("%s\n", line->str);
    fflush(stdout);
}

/* ------------------------------------------------------------------------ */
/* The daemon's memory                                                       */

static long rss_kb(int pid)
{
    char path[64];
    g_snprintf(path, sizeof(path), "/proc/%d/status", pid);
    g_autofree char *text = NULL;
    if (pid <= 0 || !g_file_get_contents(path, &text, NULL, NULL))
        return -1;
    const char *p = strstr(text, "VmRSS:");
    return p ? strtol(p + 6, NULL, 10) : -1;
}

/* ------------------------------------------------------------------------ */
/* Library clients: the legitimate peer and the admin socket                 */

/* A client-mode node acting as CONFIG's node, with PEER_ID reachable at
 * ADDRESS through TRANSPORT (NULL: the default outbound transport). */
static pz_node *client_new(const char *config, const char *peer_id, const char *address, const char *transport)
{
    pz_err err;
    pz_err_init_collect(&err);
    pz_node *node = NULL;
    if (pz_node_new(config, PZ_NODE_CLIENT, &node, &err) < 0 ||
        pz_node_add_peer_address(node, peer_id, address, transport, &err) < 0) {
        fprintf(stderr, "abuse-client: %s: %s\n", config, pz_err_msg(&err));
        pz_node_free(node);
        node = NULL;
    }
    pz_err_clear(&err);
    return node;
}

/* One call; 0 and *DATA on status ok, else -1 with *STATUS / *MESSAGE (may
 * be NULL). */
static int client_call(pz_node *node, const char *peer, const char *method, GVariant *params, GVariant **data,
                       int32_t *status, char **message)
{
    pz_err err;
    pz_err_init(&err);
    int32_t st = -1;
    char *msg = NULL;
    GVariant *d = NULL;
    int rc = pz_node_call_sync(node, peer, method, params, IO_TIMEOUT_MS, 0, &d, &st, &msg, &err);
    if (rc < 0 && !msg)
        msg = g_strdup(pz_err_msg(&err));
    pz_err_clear(&err);
    if (status)
        *status = rc < 0 ? -1 : st;
    if (message)
        *message = msg;
    else
        g_free(msg);
    if (data)
        *data = d;
    else if (d)
        g_variant_unref(d);
    return rc == 0 && st == PZ_RPC_OK ? 0 : -1;
}

static pz_node *admin;

static int admin_open(void)
{
    if (admin)
        return 0;
    need(o_admin_config, "--admin-config");
    need(o_admin_sock, "--admin-sock");
    pz_err err;
    pz_err_init(&err);
    pz_node *probe = NULL;
    /* The admin socket answers as the daemon's own node id. */
    if (pz_node_new(o_admin_config, PZ_NODE_CLIENT, &probe, &err) < 0) {
        fprintf(stderr, "abuse-client: %s: %s\n", o_admin_config, pz_err_msg(&err));
        pz_err_clear(&err);
        return -1;
    }
    pz_err_clear(&err);
    if (pz_node_add_peer_address(probe, pz_node_id(probe), o_admin_sock, o_admin_transport, &err) < 0) {
        fprintf(stderr, "abuse-client: admin socket: %s\n", pz_err_msg(&err));
        pz_err_clear(&err);
        pz_node_free(probe);
        return -1;
    }
    admin = probe;
    return 0;
}

static void admin_close(void)
{
    pz_node_free(admin);
    admin = NULL;
}

/* Status ("unknown" when the daemon has no record) and score (-1 when
 * none) of NODE_ID, from admin.peers {node_id} — the method behind
 * `prozsec peer list`. */
static int admin_peer(const char *node_id, char *status, size_t status_len, double *score)
{
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add(&b, "{sv}", "node_id", g_variant_new_string(node_id));
    GVariant *params = g_variant_ref_sink(g_variant_builder_end(&b));
    GVariant *data = NULL;
    g_strlcpy(status, "?", status_len);
    *score = -1;
    int rc = admin_open() < 0 ? -1 : client_call(admin, pz_node_id(admin), "admin.peers", params, &data, NULL, NULL);
    g_variant_unref(params);
    if (rc == 0 && data) {
        const char *s = NULL;
        if (g_variant_lookup(data, "queried_status", "&s", &s))
            g_strlcpy(status, s, status_len);
        g_variant_lookup(data, "queried_score", "d", score);
    }
    if (data)
        g_variant_unref(data);
    return rc;
}

/* The daemon's counters (admin.stats), or NULL. */
static char *admin_stats(void)
{
    GVariant *data = NULL;
    char *text = NULL;
    if (admin_open() == 0 && client_call(admin, pz_node_id(admin), "admin.stats", NULL, &data, NULL, NULL) == 0 &&
        data) {
        const char *t = NULL;
        if (g_variant_lookup(data, "text", "&s", &t))
            text = g_strdup(t);
    }
    if (data)
        g_variant_unref(data);
    return text;
}

/* The value of the sample named exactly NAME (with labels) in TEXT; 0 when
 * absent. */
static double stat_value(const char *text, const char *name)
{
    if (!text)
        return 0;
    size_t n = strlen(name);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, name, n) == 0 && p[n] == ' ')
            return g_ascii_strtod(p + n + 1, NULL);
    }
    return 0;
}

static double refusals(const char *text, const char *provider, int reason)
{
    char name[160];
    g_snprintf(name, sizeof(name),
               "prozsec_dos_refusals_total{stage=\"address\",provider=\"%s\",reason=\"%d\",shadow=\"0\"}", provider,
               reason);
    return stat_value(text, name);
}

/* Wait (bounded) until the daemon holds no pending handshake. */
static void wait_no_pending(int timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;
    while (now_ms() < end) {
        g_autofree char *st = admin_stats();
        if (st && stat_value(st, "prozsec_conn_limit_pending_handshakes") == 0)
            return;
        g_usleep(100 * 1000);
    }
}

/* The legitimate peer: a signed sys.ping on a new connection. Returns 0
 * when it succeeded; *MS gets the call's duration (connection included). */
typedef struct legit {
    pz_node *node;
    char *peer;
    unsigned calls, ok;
    double ms_max, ms_sum;
    char last_error[160];
} legit;

static int legit_open(legit *l)
{
    need(o_legit_config, "--legit-config");
    need(o_server, "--server");
    need(o_server_id, "--server-id");
    memset(l, 0, sizeof(*l));
    l->peer = o_server_id;
    l->node = client_new(o_legit_config, o_server_id, o_server, NULL);
    return l->node ? 0 : -1;
}

static int legit_call(legit *l, int fresh_connection)
{
    if (fresh_connection)
        pz_rpc_client_close_peer(pz_node_client(l->node), l->peer);
    int64_t t0 = g_get_monotonic_time();
    int32_t st = -1;
    char *msg = NULL;
    int rc = client_call(l->node, l->peer, "sys.ping", NULL, NULL, &st, &msg);
    double ms = (double)(g_get_monotonic_time() - t0) / 1000.0;
    l->calls++;
    if (rc == 0) {
        l->ok++;
        l->ms_sum += ms;
        if (ms > l->ms_max)
            l->ms_max = ms;
    } else {
        g_snprintf(l->last_error, sizeof(l->last_error), "%s: %s", st >= 0 ? pz_rpc_status_name(st) : "failed",
                   msg ? msg : "");
    }
    g_free(msg);
    return rc;
}

static void legit_report(const legit *l, const char *prefix)
{
    char k[64];
    g_snprintf(k, sizeof(k), "%s_calls", prefix);
    kv(k, "%u", l->calls);
    g_snprintf(k, sizeof(k), "%s_ok", prefix);
    kv(k, "%u", l->ok);
    g_snprintf(k, sizeof(k), "%s_ms_max", prefix);
    kv(k, "%.1f", l->ms_max);
    g_snprintf(k, sizeof(k), "%s_ms_avg", prefix);
    kv(k, "%.1f", l->ok ? l->ms_sum / l->ok : 0.0);
    if (l->last_error[0]) {
        g_snprintf(k, sizeof(k), "%s_error", prefix);
        kv(k, "%s", l->last_error);
    }
}

static void legit_close(legit *l)
{
    pz_node_free(l->node);
    l->node = NULL;
}

/* ------------------------------------------------------------------------ */
/* Plain sockets                                                             */

static int parse_hostport(const char *text, struct sockaddr_in *out)
{
    const char *colon = text ? strrchr(text, ':') : NULL;
    if (!colon)
        return -1;
    char host[64];
    size_t n = (size_t)(colon - text);
    if (n >= sizeof(host))
        return -1;
    memcpy(host, text, n);
    host[n] = '\0';
    memset(out, 0, sizeof(*out));
    out->sin_family = AF_INET;
    out->sin_port = htons((uint16_t)atoi(colon + 1));
    return inet_pton(AF_INET, host, &out->sin_addr) == 1 ? 0 : -1;
}

/* A TCP socket bound to SRC, connecting to the server; non-blocking when
 * NONBLOCK. Returns the descriptor or -1 (errno set). With a blocking
 * socket the connect has completed on return. */
static int tcp_open(const char *src, int nonblock)
{
    struct sockaddr_in dst, me;
    if (parse_hostport(o_server, &dst) < 0) {
        errno = EINVAL;
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0)
        return -1;
    memset(&me, 0, sizeof(me));
    me.sin_family = AF_INET;
    if (src && inet_pton(AF_INET, src, &me.sin_addr) == 1 && bind(fd, (struct sockaddr *)&me, sizeof(me)) != 0)
        goto fail;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (!nonblock) {
        struct timeval tv = {IO_TIMEOUT_MS / 1000, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    if (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) != 0 && !(nonblock && errno == EINPROGRESS))
        goto fail;
    return fd;
fail:;
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}

/* Wait up to TIMEOUT_MS for the other end to close FD (EOF or reset);
 * bytes it sends meanwhile are read and dropped. 1 when closed, 0 not. */
static int wait_closed(int fd, int timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;
    for (int first = 1;; first = 0) {
        /* At least one look, even with no time left. */
        int64_t left = end - now_ms();
        if (left < 0 && !first)
            return 0;
        struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
        int n = poll(&p, 1, left > 0 ? (int)left : 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        char buf[4096];
        ssize_t k = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR))
            return 1;
    }
}

/* ------------------------------------------------------------------------ */
/* Abusive TLS connections (GnuTLS, the --as identity)                       */

typedef struct ident {
    char id[PZ_NODE_ID_MAX + 1];
    pz_rpc_key *key;
    gnutls_certificate_credentials_t x509;
} ident;

static int ident_load(ident *me)
{
    need(o_as, "--as");
    need(o_as_dir, "--as-dir");
    need(o_ca, "--ca");
    memset(me, 0, sizeof(*me));
    g_strlcpy(me->id, o_as, sizeof(me->id));
    pz_nodekeys *keys = NULL;
    pz_err err;
    pz_err_init(&err);
    int rc = pz_nodekeys_load(o_as_dir, &keys, &err);
    if (rc == 0) {
        GError *ge = NULL;
        rc = pz_rpc_key_new(pz_sign_key_seed(pz_nodekeys_sign_key(keys)), &me->key, &ge);
        if (rc < 0)
            pz_err_set(&err, rc, "signing key: %s", ge ? ge->message : "refused");
        g_clear_error(&ge);
    }
    pz_nodekeys_free(keys);
    if (rc < 0) {
        fprintf(stderr, "abuse-client: keys in %s: %s\n", o_as_dir, pz_err_msg(&err));
        pz_err_clear(&err);
        return -1;
    }
    pz_err_clear(&err);
    g_autofree char *crt = g_build_filename(o_as_dir, "node.crt", NULL);
    g_autofree char *key = g_build_filename(o_as_dir, "node.key", NULL);
    int g;
    if ((g = gnutls_certificate_allocate_credentials(&me->x509)) < 0 ||
        (g = gnutls_certificate_set_x509_trust_file(me->x509, o_ca, GNUTLS_X509_FMT_PEM)) < 0 ||
        (g = gnutls_certificate_set_x509_key_file(me->x509, crt, key, GNUTLS_X509_FMT_PEM)) < 0) {
        fprintf(stderr, "abuse-client: credentials from %s: %s\n", o_as_dir, gnutls_strerror(g));
        return -1;
    }
    return 0;
}

static void ident_clear(ident *me)
{
    pz_rpc_key_free(me->key);
    if (me->x509)
        gnutls_certificate_free_credentials(me->x509);
    memset(me, 0, sizeof(*me));
}

typedef struct tconn {
    int fd;
    gnutls_session_t s;
    pz_frame_decoder dec;
    int closed; /* the server closed the connection */
} tconn;

static int session_new(const ident *me, gnutls_session_t *out)
{
    gnutls_session_t s;
    if (gnutls_init(&s, GNUTLS_CLIENT) < 0)
        return -1;
    /* GnuTLS keeps the hostname pointer for the session's lifetime. */
    static char host[PZ_NODE_ID_MAX + 32];
    g_snprintf(host, sizeof(host), "%s.nodes.prozchain.io", o_server_id);
    if (gnutls_priority_set_direct(s, "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2", NULL) < 0 ||
        gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, me->x509) < 0) {
        gnutls_deinit(s);
        return -1;
    }
    gnutls_session_set_verify_cert(s, host, 0);
    *out = s;
    return 0;
}

static int tls_send(tconn *c, const void *data, size_t len);

/* Connect from --src, complete a mutual-TLS handshake as ME and send the
 * credentials frame. */
static int tls_open(tconn *c, const ident *me)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    if (pz_frame_decoder_init(&c->dec, MAX_FRAME) < 0)
        return -1;
    c->fd = tcp_open(o_src, 0);
    if (c->fd < 0) {
        fprintf(stderr, "abuse-client: connect %s from %s: %s\n", o_server, o_src, g_strerror(errno));
        return -1;
    }
    if (session_new(me, &c->s) < 0)
        return -1;
    gnutls_transport_set_int(c->s, c->fd);
    gnutls_handshake_set_timeout(c->s, IO_TIMEOUT_MS);
    int g;
    do
        g = gnutls_handshake(c->s);
    while (g < 0 && !gnutls_error_is_fatal(g) && g != GNUTLS_E_AGAIN);
    if (g < 0) {
        fprintf(stderr, "abuse-client: TLS handshake with %s as %s: %s\n", o_server, me->id, gnutls_strerror(g));
        return -1;
    }
    gnutls_record_set_timeout(c->s, IO_TIMEOUT_MS);
    /* The connecting side's first frame: its credentials (none here, the
     * certificate authenticates). */
    uint8_t cf[PZ_CREDFRAME_HDR + PZ_CREDFRAME_MAX];
    size_t cf_len = 0;
    pz_credframe none = {0};
    if (pz_credframe_encode(&none, cf, sizeof(cf), &cf_len) < 0 || tls_send(c, cf, cf_len) < 0) {
        fprintf(stderr, "abuse-client: cannot send the credentials frame\n");
        return -1;
    }
    return 0;
}

/* End C politely (close_notify) unless the server already ended it: an
 * abrupt close is itself reported by the daemon as a protocol violation. */
static void tls_close(tconn *c)
{
    if (c->s && c->fd >= 0 && !c->closed)
        gnutls_bye(c->s, GNUTLS_SHUT_WR);
    if (c->s)
        gnutls_deinit(c->s);
    if (c->fd >= 0)
        close(c->fd);
    pz_frame_decoder_clear(&c->dec);
    memset(c, 0, sizeof(*c));
    c->fd = -1;
}

static int tls_send(tconn *c, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len) {
        ssize_t k = gnutls_record_send(c->s, p, len);
        if (k == GNUTLS_E_AGAIN || k == GNUTLS_E_INTERRUPTED)
            continue;
        if (k < 0) {
            c->closed = 1;
            return -1;
        }
        p += k;
        len -= (size_t)k;
    }
    return 0;
}

/* The next response: 0 with RESP filled (clear it), PZ_EOF when the server
 * closed, PZ_ETIMEDOUT, or PZ_EPROTO when what came is not a response. */
static int tls_recv_response(tconn *c, pz_wire_response *resp)
{
    int64_t end = now_ms() + IO_TIMEOUT_MS;
    for (;;) {
        const uint8_t *frame;
        size_t len;
        int rc = pz_frame_decoder_next(&c->dec, &frame, &len);
        if (rc == 0) {
            int kind = 0;
            const char *why = NULL;
            rc = pz_wire_decode(frame, len, &kind, NULL, resp, &why);
            return rc == 0 ? 0 : PZ_EPROTO;
        }
        if (rc != PZ_EAGAIN)
            return PZ_EPROTO;
        size_t avail = 0;
        uint8_t *dst = pz_frame_decoder_space(&c->dec, &avail);
        if (!dst)
            return PZ_EPROTO;
        ssize_t k = gnutls_record_recv(c->s, dst, avail);
        /* E_AGAIN also follows a TLS 1.3 post-handshake message (a
         * session ticket): read on until the deadline. */
        if (k == GNUTLS_E_INTERRUPTED || (k == GNUTLS_E_AGAIN && now_ms() < end))
            continue;
        if (k == GNUTLS_E_AGAIN || k == GNUTLS_E_TIMEDOUT)
            return PZ_ETIMEDOUT;
        if (k <= 0) {
            c->closed = 1;
            return PZ_EOF;
        }
        pz_frame_decoder_commit(&c->dec, (size_t)k);
    }
}

/* Wait (bounded) for the server to end C. 1 closed, 0 not. */
static int tls_wait_closed(tconn *c, int timeout_ms)
{
    gnutls_record_set_timeout(c->s, (unsigned)timeout_ms);
    int64_t end = now_ms() + timeout_ms;
    while (now_ms() < end) {
        uint8_t buf[4096];
        ssize_t k = gnutls_record_recv(c->s, buf, sizeof(buf));
        if (k == GNUTLS_E_TIMEDOUT)
            break;
        if (k == GNUTLS_E_INTERRUPTED || k == GNUTLS_E_AGAIN || k > 0)
            continue;
        c->closed = 1;
        return 1;
    }
    gnutls_record_set_timeout(c->s, IO_TIMEOUT_MS);
    return 0;
}

/* A signed request frame from ME (header included) into OUT; CALL_ID gets
 * its id. TS_SKEW_NS shifts the timestamp. */
static int build_call(const ident *me, const char *target, const char *method, GVariant *params,
                      int64_t ts_skew_ns, uint8_t call_id[PZ_RPC_CALL_ID_LEN], GByteArray *out)
{
    if (gnutls_rnd(GNUTLS_RND_NONCE, call_id, PZ_RPC_CALL_ID_LEN) < 0)
        return -1;
    uint64_t ts = (uint64_t)((int64_t)pz_realtime_ns() + ts_skew_ns);
    pz_wire_auth auth = {.mode = PZ_WIRE_MODE_SIG, .key = me->key};
    return pz_wire_request_encode(out, MAX_FRAME, method, ts, call_id, me->id, target, IO_TIMEOUT_MS, params, &auth);
}

/* Send FRAME and read one response: its status, or -1 when the connection
 * ended / -2 on timeout / -3 garbage. MESSAGE (may be NULL) gets a copy of
 * the response's message. */
static int exchange(tconn *c, const GByteArray *frame, char *message, size_t message_len)
{
    if (message)
        message[0] = '\0';
    if (tls_send(c, frame->data, frame->len) < 0)
        return -1;
    pz_wire_response resp;
    int rc = tls_recv_response(c, &resp);
    if (rc == PZ_EOF)
        return -1;
    if (rc == PZ_ETIMEDOUT)
        return -2;
    if (rc)
        return -3;
    int st = resp.status;
    if (message)
        g_strlcpy(message, resp.message, message_len);
    pz_wire_response_clear(&resp);
    return st;
}

static const char *status_text(int st)
{
    switch (st) {
    case -1: return "closed";
    case -2: return "timeout";
    case -3: return "garbage";
    default: return pz_rpc_status_name(st);
    }
}

/* ------------------------------------------------------------------------ */
/* conn-flood                                                                */

enum { SLOT_FREE, SLOT_CONNECTING, SLOT_CONNECTED };

typedef struct fslot {
    int fd;
    int state;
    int64_t t0; /* ms: connect started, then connected */
} fslot;

typedef struct flood_stats {
    unsigned attempts, connected, closed_by_server, admitted, connect_failed, connect_timeouts;
    int64_t duration_ms;
} flood_stats;

typedef struct flood_job {
    char **srcs;
    size_t n_srcs;
    unsigned attempts;
    flood_stats st;
} flood_job;

static atomic_uint flood_launched;
static atomic_int flood_running;
static atomic_uint legit_done; /* legit calls finished (either way) */

static void slot_end(int ep, fslot *s)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
    close(s->fd);
    s->fd = -1;
    s->state = SLOT_FREE;
}

/* Connections from JOB's addresses, at most --concurrency in progress:
 * each is counted once as closed by the server (within --hold-ms of being
 * connected: refused at admission), admitted (still open after --hold-ms;
 * kept open until the end of the run), or failed to connect. */
static void flood_run(flood_job *job)
{
    flood_stats *st = &job->st;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    size_t n = (size_t)(o_concurrency > 0 ? o_concurrency : 1);
    fslot *slots = g_new0(fslot, n);
    GArray *held = g_array_new(FALSE, FALSE, sizeof(int));
    for (size_t i = 0; i < n; i++)
        slots[i].fd = -1;
    unsigned launched = 0, done = 0;
    int64_t t_start = now_ms(), hard_end = t_start + (int64_t)o_time_limit * 1000;
    while (done < job->attempts && now_ms() < hard_end) {
        for (size_t i = 0; i < n && launched < job->attempts; i++) {
            if (slots[i].state != SLOT_FREE)
                continue;
            const char *src = job->srcs[launched % job->n_srcs];
            launched++;
            atomic_fetch_add(&flood_launched, 1);
            int fd = tcp_open(src, 1);
            if (fd < 0) {
                st->connect_failed++;
                done++;
                continue;
            }
            slots[i] = (fslot){fd, SLOT_CONNECTING, now_ms()};
            struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP, .data.ptr = &slots[i]};
            epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        }
        struct epoll_event evs[128];
        int k = epoll_wait(ep, evs, 128, 10);
        for (int j = 0; j < k; j++) {
            fslot *s = evs[j].data.ptr;
            uint32_t e = evs[j].events;
            if (s->state == SLOT_CONNECTING) {
                int soerr = 0;
                socklen_t sl = sizeof(soerr);
                getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
                if (soerr) {
                    st->connect_failed++;
                    done++;
                    slot_end(ep, s);
                    continue;
                }
                st->connected++;
                s->state = SLOT_CONNECTED;
                s->t0 = now_ms();
                struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = s};
                epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
                if (!(e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
                    continue;
            }
            if (s->state == SLOT_CONNECTED && (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
                st->closed_by_server++;
                done++;
                slot_end(ep, s);
            }
        }
        int64_t t = now_ms();
        for (size_t i = 0; i < n; i++) {
            fslot *s = &slots[i];
            if (s->state == SLOT_CONNECTED && t - s->t0 > o_hold_ms) {
                st->admitted++;
                done++;
                epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
                g_array_append_val(held, s->fd);
                s->fd = -1;
                s->state = SLOT_FREE;
            } else if (s->state == SLOT_CONNECTING && t - s->t0 > 3000) {
                st->connect_timeouts++;
                done++;
                slot_end(ep, s);
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        if (slots[i].state != SLOT_FREE)
            slot_end(ep, &slots[i]);
    for (guint i = 0; i < held->len; i++)
        close(g_array_index(held, int, i));
    st->attempts = launched;
    st->duration_ms = now_ms() - t_start;
    g_array_free(held, TRUE);
    g_free(slots);
    close(ep);
}

static void *flood_thread(void *arg)
{
    flood_job *jobs = arg;
    flood_run(&jobs[0]);
    /* However fast the machine, one legit call has finished during the
     * flood before its second phase starts (bounded wait). */
    int64_t end = now_ms() + 10000;
    while (atomic_load(&legit_done) == 0 && now_ms() < end)
        g_usleep(1000);
    flood_run(&jobs[1]);
    atomic_store(&flood_running, 0);
    return NULL;
}

static int scenario_conn_flood(void)
{
    need(o_server, "--server");
    legit lg;
    if (legit_open(&lg) < 0 || admin_open() < 0)
        return 1;
    /* The per-prefix phase: every other address of --src's /24. */
    struct in_addr a;
    if (inet_pton(AF_INET, o_src, &a) != 1)
        die_usage("--src: expected an IPv4 address");
    uint32_t base = ntohl(a.s_addr) & 0xffffff00u;
    GPtrArray *spread = g_ptr_array_new_with_free_func(g_free);
    for (uint32_t h = 10; h < 250; h++) {
        struct in_addr x = {htonl(base | h)};
        char text[INET_ADDRSTRLEN];
        if (x.s_addr != a.s_addr)
            g_ptr_array_add(spread, g_strdup(inet_ntop(AF_INET, &x, text, sizeof(text))));
    }
    char *one[] = {o_src};
    flood_job jobs[2];
    memset(jobs, 0, sizeof(jobs));
    jobs[0].srcs = one;
    jobs[0].n_srcs = 1;
    jobs[0].attempts = (unsigned)o_attempts;
    jobs[1].srcs = (char **)spread->pdata;
    jobs[1].n_srcs = spread->len;
    jobs[1].attempts = (unsigned)o_prefix_attempts;

    g_autofree char *st0 = admin_stats();
    long rss0 = rss_kb(o_pid);
    atomic_store(&flood_running, 1);
    pthread_t th;
    if (pthread_create(&th, NULL, flood_thread, jobs) != 0) {
        fprintf(stderr, "abuse-client: cannot start the flood thread\n");
        return 1;
    }
    /* Signed calls of the legitimate peer during the flood, each on a new
     * connection (so each passes admission during the flood), every 300 ms;
     * only those that finished while the flood ran count as "during". */
    unsigned during = 0, during_ok = 0;
    while (atomic_load(&flood_running) && atomic_load(&flood_launched) < 300)
        g_usleep(1000);
    while (atomic_load(&flood_running) && lg.calls < 60) {
        int rc = legit_call(&lg, 1);
        if (atomic_load(&flood_running)) {
            during++;
            during_ok += rc == 0;
        }
        atomic_fetch_add(&legit_done, 1);
        for (int i = 0; i < 30 && atomic_load(&flood_running); i++)
            g_usleep(10 * 1000);
    }
    pthread_join(th, NULL);
    long rss1 = rss_kb(o_pid);
    /* After the flood: one more call, and the counters once the held
     * connections are gone. */
    legit_call(&lg, 1);
    wait_no_pending(o_deadline_ms + 3000);
    g_autofree char *st1 = admin_stats();

    flood_stats *f = &jobs[0].st, *p = &jobs[1].st;
    double d[7];
    for (int r = 1; r <= 6; r++)
        d[r] = refusals(st1, "conn-limit", r) - refusals(st0, "conn-limit", r);
    double rep = 0;
    for (int r = 1; r <= 5; r++)
        rep += refusals(st1, "reputation", r) - refusals(st0, "reputation", r);
    kv("attempts", "%u", f->attempts);
    kv("connected", "%u", f->connected);
    kv("refused", "%u", f->closed_by_server);
    kv("admitted", "%u", f->admitted);
    kv("connect_failed", "%u", f->connect_failed + f->connect_timeouts);
    kv("duration_ms", "%" G_GINT64_FORMAT, f->duration_ms);
    kv("prefix_attempts", "%u", p->attempts);
    kv("prefix_refused", "%u", p->closed_by_server);
    kv("prefix_admitted", "%u", p->admitted);
    kv("prefix_connect_failed", "%u", p->connect_failed + p->connect_timeouts);
    kv("refused_per_address", "%.0f", d[3] + d[5]);
    kv("refused_per_prefix", "%.0f", d[4] + d[6]);
    kv("refused_pending", "%.0f", d[2]);
    kv("refused_global", "%.0f", d[1]);
    kv("refused_reputation", "%.0f", rep);
    kv("legit_during", "%u", during);
    kv("legit_during_ok", "%u", during_ok);
    legit_report(&lg, "legit");
    kv("rss_before_kb", "%ld", rss0);
    kv("rss_after_kb", "%ld", rss1);
    kv("rss_growth_kb", "%ld", rss0 >= 0 && rss1 >= 0 ? rss1 - rss0 : -1);
    legit_close(&lg);
    g_ptr_array_free(spread, TRUE);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* slow-handshake                                                            */

typedef struct membuf {
    GByteArray *out;
} membuf;

static ssize_t mem_push(gnutls_transport_ptr_t p, const void *data, size_t len)
{
    g_byte_array_append(((membuf *)p)->out, data, (guint)len);
    return (ssize_t)len;
}

static ssize_t mem_pull(gnutls_transport_ptr_t p, void *data, size_t len)
{
    (void)p;
    (void)data;
    (void)len;
    errno = EAGAIN;
    return -1;
}

/* The ClientHello a real client (ME) sends first. */
static GByteArray *client_hello(const ident *me)
{
    gnutls_session_t s;
    if (session_new(me, &s) < 0)
        return NULL;
    membuf m = {g_byte_array_new()};
    gnutls_transport_set_ptr(s, &m);
    gnutls_transport_set_push_function(s, mem_push);
    gnutls_transport_set_pull_function(s, mem_pull);
    gnutls_transport_set_errno(s, EAGAIN);
    int g = gnutls_handshake(s);
    gnutls_deinit(s);
    if (g != GNUTLS_E_AGAIN || m.out->len == 0) {
        g_byte_array_free(m.out, TRUE);
        return NULL;
    }
    return m.out;
}

static int scenario_slow_handshake(void)
{
    ident me;
    if (ident_load(&me) < 0 || admin_open() < 0)
        return 1;
    wait_no_pending(o_deadline_ms + 3000);
    int bound = o_deadline_ms + 10000;
    struct in_addr a;
    if (inet_pton(AF_INET, o_src, &a) != 1)
        die_usage("--src: expected an IPv4 address");
    uint32_t base = ntohl(a.s_addr);
    char src[INET_ADDRSTRLEN];

    /* 1. Connect and send nothing. */
    struct in_addr x = {htonl(base)};
    inet_ntop(AF_INET, &x, src, sizeof(src));
    int fd = tcp_open(src, 0);
    if (fd < 0) {
        fprintf(stderr, "abuse-client: connect: %s\n", g_strerror(errno));
        return 1;
    }
    int64_t t0 = now_ms();
    int silent_closed = wait_closed(fd, bound);
    int64_t silent_ms = now_ms() - t0;
    close(fd);

    /* 2. A ClientHello a byte at a time, one every 20 ms. */
    GByteArray *hello = client_hello(&me);
    if (!hello) {
        fprintf(stderr, "abuse-client: cannot make a ClientHello\n");
        return 1;
    }
    x.s_addr = htonl(base + 1);
    inet_ntop(AF_INET, &x, src, sizeof(src));
    fd = tcp_open(src, 0);
    if (fd < 0) {
        fprintf(stderr, "abuse-client: connect: %s\n", g_strerror(errno));
        return 1;
    }
    t0 = now_ms();
    guint sent = 0;
    int dribble_closed = 0;
    while (!dribble_closed && now_ms() - t0 < bound) {
        if (sent < hello->len) {
            if (send(fd, hello->data + sent, 1, MSG_NOSIGNAL) != 1) {
                dribble_closed = 1;
                break;
            }
            sent++;
        }
        dribble_closed = wait_closed(fd, 20);
    }
    int64_t dribble_ms = now_ms() - t0;
    close(fd);

    /* 3. More simultaneous silent handshakes than the pending cap, each
     * from its own /24 so only the pending cap applies. */
    int total = o_pending_cap + 8;
    int *fds = g_new(int, total);
    for (int i = 0; i < total; i++) {
        x.s_addr = htonl(0x7f000001u | (uint32_t)(10 + i) << 8); /* 127.0.(10+i).1 */
        inet_ntop(AF_INET, &x, src, sizeof(src));
        fds[i] = tcp_open(src, 0);
    }
    int opened = 0, at_once = 0, held = 0, at_deadline = 0;
    int64_t t1 = now_ms();
    g_usleep((gulong)o_hold_ms * 1000);
    for (int i = 0; i < total; i++) {
        if (fds[i] < 0)
            continue;
        opened++;
        if (wait_closed(fds[i], 0)) {
            at_once++;
            close(fds[i]);
            fds[i] = -1;
        }
    }
    for (int i = 0; i < total; i++)
        if (fds[i] >= 0)
            held++;
    int64_t last_close = 0;
    for (int i = 0; i < total; i++) {
        if (fds[i] < 0)
            continue;
        int64_t left = bound - (now_ms() - t1);
        if (wait_closed(fds[i], left > 0 ? (int)left : 0)) {
            at_deadline++;
            last_close = now_ms() - t1;
        }
        close(fds[i]);
    }
    g_free(fds);

    kv("silent_closed", "%d", silent_closed);
    kv("silent_closed_ms", "%" G_GINT64_FORMAT, silent_ms);
    kv("hello_bytes", "%u", hello->len);
    kv("dribble_sent", "%u", sent);
    kv("dribble_closed", "%d", dribble_closed);
    kv("dribble_closed_ms", "%" G_GINT64_FORMAT, dribble_ms);
    kv("pending_cap", "%d", o_pending_cap);
    kv("pending_opened", "%d", opened);
    kv("pending_held", "%d", held);
    kv("pending_closed_at_once", "%d", at_once);
    kv("pending_closed_at_deadline", "%d", at_deadline);
    kv("pending_last_close_ms", "%" G_GINT64_FORMAT, last_close);
    kv("deadline_ms", "%d", o_deadline_ms);
    g_byte_array_free(hello, TRUE);
    ident_clear(&me);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* bad-frames                                                                */

/* A copy of the envelope ENV (frame payload) with one padding byte set, so
 * it is no longer in GVariant normal form but still means the same value;
 * NULL if none was found. */
static GByteArray *non_normal(const uint8_t *env, size_t len)
{
    g_autoptr(GBytes) orig_b = g_bytes_new(env, len);
    g_autoptr(GVariant) orig = g_variant_ref_sink(g_variant_new_from_bytes(G_VARIANT_TYPE(PZ_WIRE_TYPE_ENVELOPE), orig_b, FALSE));
    for (size_t i = 0; i < len; i++) {
        if (env[i] != 0)
            continue;
        GByteArray *copy = g_byte_array_new();
        g_byte_array_append(copy, env, (guint)len);
        copy->data[i] = 0x5a;
        g_autoptr(GBytes) b = g_bytes_new(copy->data, copy->len);
        g_autoptr(GVariant) v = g_variant_ref_sink(g_variant_new_from_bytes(G_VARIANT_TYPE(PZ_WIRE_TYPE_ENVELOPE), b, FALSE));
        int found = 0;
        if (!g_variant_is_normal_form(v)) {
            g_autoptr(GVariant) nf = g_variant_get_normal_form(v);
            found = g_variant_equal(nf, orig);
        }
        if (found)
            return copy;
        g_byte_array_free(copy, TRUE);
    }
    return NULL;
}

/* Open a connection as ME, send RAW (a whole frame or a piece), and wait
 * for the server to end the connection. 1 closed, 0 still open, -1 no
 * connection. */
static int send_and_wait(const ident *me, const uint8_t *raw, size_t len)
{
    tconn c;
    int rc = -1;
    if (tls_open(&c, me) == 0) {
        rc = tls_send(&c, raw, len) < 0 ? 1 : tls_wait_closed(&c, IO_TIMEOUT_MS);
    }
    tls_close(&c);
    return rc;
}

/* Append eve's current score to TRAIL (after each case). */
static void score_trail(GString *trail, const char *id)
{
    char st[32];
    double sc = -1;
    admin_peer(id, st, sizeof(st), &sc);
    g_string_append_printf(trail, "%s%.1f", trail->len ? "," : "", sc);
}

static const char *closed_text(int r)
{
    return r == 1 ? "closed" : r == 0 ? "open" : "no-connection";
}

static int scenario_bad_frames(void)
{
    ident me;
    legit lg;
    if (ident_load(&me) < 0 || admin_open() < 0 || legit_open(&lg) < 0)
        return 1;
    char status0[32], status1[32];
    double score0, score1;
    admin_peer(me.id, status0, sizeof(status0), &score0);
    g_autofree char *st0 = admin_stats();
    GString *trail = g_string_new(NULL);

    /* 1. A malformed E2E envelope inside a well-signed msg.send: refused
     * with bad_request, the connection stays (a signed call after it). */
    tconn c;
    int e2e_status = -1, after_status = -1;
    if (tls_open(&c, &me) == 0) {
        uint8_t junk[48], id[PZ_RPC_CALL_ID_LEN];
        gnutls_rnd(GNUTLS_RND_NONCE, junk, sizeof(junk));
        junk[0] = 1; /* version 1, then garbage */
        GVariantBuilder b;
        g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
        g_variant_builder_add(&b, "{sv}", "envelope", g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, junk, sizeof(junk), 1));
        GByteArray *f = g_byte_array_new();
        if (build_call(&me, o_server_id, "msg.send", g_variant_builder_end(&b), 0, id, f) == 0)
            e2e_status = exchange(&c, f, NULL, 0);
        g_byte_array_set_size(f, 0);
        if (build_call(&me, o_server_id, "sys.ping", NULL, 0, id, f) == 0)
            after_status = exchange(&c, f, NULL, 0);
        g_byte_array_free(f, TRUE);
    }
    tls_close(&c);
    score_trail(trail, me.id);

    /* 2..4: frames the decoder refuses. */
    uint8_t oversized[4] = {0x7f, 0xff, 0xff, 0xff};
    int r_oversized = send_and_wait(&me, oversized, sizeof(oversized));
    score_trail(trail, me.id);
    uint8_t zero[4] = {0, 0, 0, 0};
    int r_zero = send_and_wait(&me, zero, sizeof(zero));
    score_trail(trail, me.id);
    uint8_t garbage[4 + 64];
    pz_frame_put_header(garbage, 64);
    gnutls_rnd(GNUTLS_RND_NONCE, garbage + 4, 64);
    int r_garbage = send_and_wait(&me, garbage, sizeof(garbage));
    score_trail(trail, me.id);

    /* 5. A real signed request whose envelope is not in normal form. */
    int r_nonnormal = -1;
    {
        uint8_t id[PZ_RPC_CALL_ID_LEN];
        GByteArray *f = g_byte_array_new();
        if (build_call(&me, o_server_id, "sys.ping", NULL, 0, id, f) == 0) {
            GByteArray *nn = non_normal(f->data + 4, f->len - 4);
            if (nn) {
                GByteArray *frame = g_byte_array_new();
                uint8_t hdr[4];
                pz_frame_put_header(hdr, nn->len);
                g_byte_array_append(frame, hdr, 4);
                g_byte_array_append(frame, nn->data, nn->len);
                r_nonnormal = send_and_wait(&me, frame->data, frame->len);
                g_byte_array_free(frame, TRUE);
                g_byte_array_free(nn, TRUE);
            }
        }
        g_byte_array_free(f, TRUE);
    }
    score_trail(trail, me.id);

    /* 6. A frame cut short, then the connection closed by us: does the
     * server count it? */
    g_autofree char *st_trunc0 = admin_stats();
    int truncated_sent = 0;
    if (tls_open(&c, &me) == 0) {
        uint8_t part[4 + 10];
        pz_frame_put_header(part, 100);
        memset(part + 4, 0, 10);
        truncated_sent = tls_send(&c, part, sizeof(part)) == 0;
    }
    tls_close(&c); /* close_notify: an orderly end, right after a partial frame */
    g_usleep(300 * 1000);
    g_autofree char *st_trunc1 = admin_stats();
    double trunc_counted = stat_value(st_trunc1, "prozsec_rpc_malformed_total") -
                           stat_value(st_trunc0, "prozsec_rpc_malformed_total");

    admin_peer(me.id, status1, sizeof(status1), &score1);
    g_autofree char *st1 = admin_stats();
    /* The node keeps serving another peer. */
    legit_call(&lg, 1);

    kv("peer", "%s", me.id);
    kv("e2e_garbage", "%s", status_text(e2e_status));
    kv("conn_kept_after_e2e", "%s", status_text(after_status));
    kv("oversized", "%s", closed_text(r_oversized));
    kv("zero_length", "%s", closed_text(r_zero));
    kv("garbage", "%s", closed_text(r_garbage));
    kv("non_normal", "%s", closed_text(r_nonnormal));
    kv("truncated_sent", "%d", truncated_sent);
    kv("truncated_counted", "%.0f", trunc_counted);
    kv("malformed_events", "%.0f",
       stat_value(st1, "prozsec_dos_events_total{label=\"malformed_frame\"}") -
           stat_value(st0, "prozsec_dos_events_total{label=\"malformed_frame\"}"));
    kv("score_before", "%.1f", score0 < 0 ? 50.0 : score0);
    kv("status_before", "%s", status0);
    kv("score_after", "%.1f", score1);
    kv("score_trail", "%s", trail->str);
    kv("status_after", "%s", status1);
    legit_report(&lg, "legit");
    legit_close(&lg);
    ident_clear(&me);
    g_string_free(trail, TRUE);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* replay                                                                    */

static int scenario_replay(void)
{
    ident me;
    if (ident_load(&me) < 0)
        return 1;
    tconn c1, c2;
    char m_first[PZ_WIRE_MESSAGE_MAX + 1], m_same[PZ_WIRE_MESSAGE_MAX + 1], m_new[PZ_WIRE_MESSAGE_MAX + 1];
    char m_target[PZ_WIRE_MESSAGE_MAX + 1], m_stale[PZ_WIRE_MESSAGE_MAX + 1];
    int first = -1, same = -1, fresh = -1, retarget = -1, stale = -1;
    uint8_t id[PZ_RPC_CALL_ID_LEN];
    GByteArray *call = g_byte_array_new(), *other = g_byte_array_new(), *old = g_byte_array_new();
    m_first[0] = m_same[0] = m_new[0] = m_target[0] = m_stale[0] = '\0';
    if (build_call(&me, o_server_id, "sys.ping", NULL, 0, id, call) < 0 ||
        build_call(&me, o_other_id, "sys.ping", NULL, 0, id, other) < 0 ||
        build_call(&me, o_server_id, "sys.ping", NULL, -(int64_t)600 * 1000000000, id, old) < 0) {
        fprintf(stderr, "abuse-client: cannot sign\n");
        return 1;
    }
    if (tls_open(&c1, &me) < 0) {
        tls_close(&c1);
        return 1;
    }
    {
        first = exchange(&c1, call, m_first, sizeof(m_first));
        /* The captured bytes again, on the same connection. */
        same = exchange(&c1, call, m_same, sizeof(m_same));
    }
    tls_close(&c1);
    if (tls_open(&c2, &me) == 0) {
        fresh = exchange(&c2, call, m_new, sizeof(m_new));
        retarget = exchange(&c2, other, m_target, sizeof(m_target));
        stale = exchange(&c2, old, m_stale, sizeof(m_stale));
    }
    tls_close(&c2);
    kv("peer", "%s", me.id);
    kv("first", "%s", status_text(first));
    kv("replay_same_conn", "%s", status_text(same));
    kv("replay_same_conn_reason", "%s", m_same);
    kv("replay_new_conn", "%s", status_text(fresh));
    kv("retarget", "%s", status_text(retarget));
    kv("retarget_reason", "%s", m_target);
    kv("stale", "%s", status_text(stale));
    kv("stale_reason", "%s", m_stale);
    g_byte_array_free(call, TRUE);
    g_byte_array_free(other, TRUE);
    g_byte_array_free(old, TRUE);
    ident_clear(&me);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* tls-close                                                                 */

/* One sys.ping on C: 1 when answered ok, so the connection is past its
 * admission and served by the RPC server. */
static int ping_ok(tconn *c, const ident *me)
{
    uint8_t id[PZ_RPC_CALL_ID_LEN];
    GByteArray *f = g_byte_array_new();
    int ok = 0;
    if (build_call(me, o_server_id, "sys.ping", NULL, 0, id, f) == 0 && tls_send(c, f->data, f->len) == 0) {
        pz_wire_response resp;
        if (tls_recv_response(c, &resp) == 0) {
            ok = resp.status == PZ_RPC_OK;
            pz_wire_response_clear(&resp);
        }
    }
    g_byte_array_free(f, TRUE);
    return ok;
}

/* How the end of a TLS connection is judged: a TCP close without
 * close_notify between records is a plain end (a killed peer), a record cut
 * short is truncation (malformed). Its own identity, so the malformed one
 * costs no other scenario's peer reputation. */
static int scenario_tls_close(void)
{
    ident me;
    if (ident_load(&me) < 0 || admin_open() < 0)
        return 1;
    tconn c;
    /* 1. The TCP connection dropped without close_notify, between TLS
     * records (a killed peer): a plain end, not malformed. */
    g_autofree char *st_abrupt0 = admin_stats();
    int abrupt_sent = 0;
    if (tls_open(&c, &me) == 0 && ping_ok(&c, &me)) {
        abrupt_sent = 1;
        c.closed = 1; /* no close_notify */
    }
    tls_close(&c);
    g_usleep(300 * 1000);
    g_autofree char *st_abrupt1 = admin_stats();
    double abrupt_counted = stat_value(st_abrupt1, "prozsec_rpc_malformed_total") -
                            stat_value(st_abrupt0, "prozsec_rpc_malformed_total");

    /* 2. A TLS record cut short (its header announces 100 bytes, 10 come),
     * then the connection closed: truncation, malformed. */
    int trec_sent = 0;
    if (tls_open(&c, &me) == 0 && ping_ok(&c, &me)) {
        uint8_t rec[5 + 10] = {0x17, 0x03, 0x03, 0x00, 100};
        trec_sent = write(c.fd, rec, sizeof(rec)) == (ssize_t)sizeof(rec);
        c.closed = 1;
    }
    tls_close(&c);
    g_usleep(300 * 1000);
    g_autofree char *st_trec1 = admin_stats();
    double trec_counted = stat_value(st_trec1, "prozsec_rpc_malformed_total") -
                          stat_value(st_abrupt1, "prozsec_rpc_malformed_total");

    char status[32];
    double score = -1;
    admin_peer(me.id, status, sizeof(status), &score);
    kv("peer", "%s", me.id);
    kv("abrupt_close_sent", "%d", abrupt_sent);
    kv("abrupt_close_counted", "%.0f", abrupt_counted);
    kv("truncated_record_sent", "%d", trec_sent);
    kv("truncated_record_counted", "%.0f", trec_counted);
    kv("score", "%.1f", score);
    kv("status", "%s", status);
    ident_clear(&me);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* call-flood                                                                */

/* `prozsec peer list`: the status and score it shows for NODE_ID (must be
 * connected). 0 when found. */
static int peer_list_status(const char *node_id, char *status, size_t len, double *score)
{
    need(o_prozsec, "--prozsec");
    char *argv[] = {o_prozsec, "peer", "list", "--config", o_admin_config, NULL};
    g_autofree char *out = NULL;
    int wait_status = 0;
    GError *ge = NULL;
    g_strlcpy(status, "?", len);
    *score = -1;
    if (!g_spawn_sync(NULL, argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &out, NULL, &wait_status, &ge)) {
        fprintf(stderr, "abuse-client: %s: %s\n", o_prozsec, ge->message);
        g_error_free(ge);
        return -1;
    }
    JsonParser *p = json_parser_new();
    int rc = -1;
    if (json_parser_load_from_data(p, out, -1, NULL)) {
        JsonNode *root = json_parser_get_root(p);
        JsonObject *o = JSON_NODE_HOLDS_OBJECT(root) ? json_node_get_object(root) : NULL;
        JsonArray *peers = o && json_object_has_member(o, "peers") ? json_object_get_array_member(o, "peers") : NULL;
        for (guint i = 0; peers && i < json_array_get_length(peers); i++) {
            JsonObject *e = json_array_get_object_element(peers, i);
            if (e && json_object_has_member(e, "node_id") &&
                strcmp(json_object_get_string_member(e, "node_id"), node_id) == 0) {
                if (json_object_has_member(e, "status"))
                    g_strlcpy(status, json_object_get_string_member(e, "status"), len);
                if (json_object_has_member(e, "score"))
                    *score = json_object_get_double_member(e, "score");
                rc = 0;
                break;
            }
        }
    }
    g_object_unref(p);
    return rc;
}

static int scenario_call_flood(void)
{
    ident me;
    legit lg;
    if (ident_load(&me) < 0 || admin_open() < 0 || legit_open(&lg) < 0)
        return 1;
    tconn c;
    if (tls_open(&c, &me) < 0)
        return 1;
    unsigned sent = 0, ok = 0, limited = 0, other = 0, rounds = 0;
    char limited_msg[PZ_WIRE_MESSAGE_MAX + 1] = "", status[32] = "?", other_msg[PZ_WIRE_MESSAGE_MAX + 1] = "";
    int64_t retry_ms = -1; /* the first refusal's retry hint, -1 when it had none */
    double score = -1;
    int64_t end = now_ms() + (int64_t)o_time_limit * 1000;
    GByteArray *f = g_byte_array_new();
    int broken = 0;
    while (!broken && sent < (unsigned)o_max_calls && now_ms() < end) {
        /* A round: BATCH calls pipelined, then their responses. */
        g_byte_array_set_size(f, 0);
        unsigned n = 0;
        for (; n < (unsigned)o_batch; n++) {
            uint8_t id[PZ_RPC_CALL_ID_LEN];
            if (build_call(&me, o_server_id, "sys.ping", NULL, 0, id, f) < 0)
                break;
        }
        if (tls_send(&c, f->data, f->len) < 0)
            break;
        sent += n;
        for (unsigned i = 0; i < n; i++) {
            pz_wire_response resp;
            if (tls_recv_response(&c, &resp) != 0) {
                broken = 1;
                break;
            }
            if (resp.status == PZ_RPC_OK) {
                ok++;
            } else if (resp.status == PZ_RPC_RATE_LIMITED) {
                if (!limited++) {
                    g_strlcpy(limited_msg, resp.message, sizeof(limited_msg));
                    /* The retry hint: {"retry_after_ms": <u>} in the data. */
                    GVariant *d = pz_wire_value_dup(&resp.data);
                    uint32_t ms;
                    if (d && g_variant_is_of_type(d, G_VARIANT_TYPE_VARDICT) &&
                        g_variant_lookup(d, PZ_WIRE_RETRY_AFTER_KEY, "u", &ms))
                        retry_ms = (int64_t)ms;
                    if (d)
                        g_variant_unref(d);
                }
            } else {
                if (!other++)
                    g_snprintf(other_msg, sizeof(other_msg), "%s: %s", pz_rpc_status_name(resp.status), resp.message);
            }
            pz_wire_response_clear(&resp);
        }
        rounds++;
        admin_peer(me.id, status, sizeof(status), &score);
        if (strcmp(status, "probation") == 0 || strcmp(status, "blocked") == 0)
            break;
    }
    g_byte_array_free(f, TRUE);
    /* While this peer is still connected: what `prozsec peer list` says. */
    char pl_status[32];
    double pl_score;
    int listed = peer_list_status(me.id, pl_status, sizeof(pl_status), &pl_score);
    /* Another peer's calls. */
    for (int i = 0; i < 5; i++)
        legit_call(&lg, 0);
    tls_close(&c);

    /* Retry information: the refusal's data (docs/rpc-wire.md). */
    char retry[64] = "absent";
    if (retry_ms >= 0)
        g_snprintf(retry, sizeof(retry), "%" G_GINT64_FORMAT, retry_ms);
    kv("peer", "%s", me.id);
    kv("calls", "%u", sent);
    kv("rounds", "%u", rounds);
    kv("ok", "%u", ok);
    kv("rate_limited", "%u", limited);
    kv("other", "%u", other);
    if (other)
        kv("other_reason", "%s", other_msg);
    kv("limited_reason", "%s", limited_msg);
    kv("retry_after", "%s", retry);
    kv("connection_kept", "%d", !broken);
    kv("status_admin", "%s", status);
    kv("score", "%.1f", score);
    kv("peer_list_status", "%s", listed == 0 ? pl_status : "not-listed");
    kv("peer_list_score", "%.1f", pl_score);
    legit_report(&lg, "legit");
    legit_close(&lg);
    ident_clear(&me);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* ban-storm                                                                 */

static int scenario_ban_storm(void)
{
    if (admin_open() < 0)
        return 1;
    unsigned bans = 0, unbans = 0;
    char error[200] = "";
    for (int i = 0; i < o_count; i++) {
        char target[32];
        g_snprintf(target, sizeof(target), "p-%d", o_start + i);
        GVariantBuilder b;
        g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
        g_variant_builder_add(&b, "{sv}", "target", g_variant_new_string(target));
        g_variant_builder_add(&b, "{sv}", "duration", g_variant_new_string("1h"));
        GVariant *params = g_variant_ref_sink(g_variant_builder_end(&b));
        char *msg = NULL;
        int rc = client_call(admin, pz_node_id(admin), "admin.ban", params, NULL, NULL, &msg);
        g_variant_unref(params);
        if (rc < 0) {
            g_snprintf(error, sizeof(error), "ban %s: %s", target, msg ? msg : "failed");
            g_free(msg);
            break;
        }
        g_free(msg);
        bans++;
        if (i % 4 == 3) {
            /* Unban one (a save that does not add a record). */
            g_snprintf(target, sizeof(target), "p-%d", o_start + i - 1);
            g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
            g_variant_builder_add(&b, "{sv}", "target", g_variant_new_string(target));
            params = g_variant_ref_sink(g_variant_builder_end(&b));
            rc = client_call(admin, pz_node_id(admin), "admin.unban", params, NULL, NULL, &msg);
            g_variant_unref(params);
            if (rc < 0) {
                g_snprintf(error, sizeof(error), "unban %s: %s", target, msg ? msg : "failed");
                g_free(msg);
                break;
            }
            g_free(msg);
            unbans++;
        }
    }
    kv("start", "%d", o_start);
    kv("acked_bans", "%u", bans);
    kv("acked_unbans", "%u", unbans);
    kv("stopped_by", "%s", error[0] ? error : "count");
    return 0;
}

/* ban-check: after a restart, is every change a ban-storm acknowledged
 * (--count bans, --unbans unbans, from --start) in force? The storm bans
 * p-I for I = 0, 1, 2, ... and after each ban I with I % 4 == 3 unbans
 * p-(I-1): so p-(4K-2) is unbanned by the K-th unban. A change sent but
 * not acknowledged when the daemon died (the next ban, or the unban
 * following the last ban) may be either way: saved or not. */
static int scenario_ban_check(void)
{
    if (admin_open() < 0)
        return 1;
    unsigned banned = 0, free_ = 0, wrong = 0, either = 0;
    GString *bad = g_string_new(NULL);
    for (int i = 0; i <= o_count; i++) {
        char target[32], st[32];
        double score;
        g_snprintf(target, sizeof(target), "p-%d", o_start + i);
        if (admin_peer(target, st, sizeof(st), &score) < 0) {
            fprintf(stderr, "abuse-client: admin.peers %s failed\n", target);
            g_string_free(bad, TRUE);
            return 1;
        }
        int is_banned = strcmp(st, "blocked") == 0;
        banned += is_banned;
        free_ += !is_banned;
        /* 1 must be banned, 0 must not, -1 either. */
        int want;
        if (i == o_count) {
            want = is_banned ? -1 : 0; /* in flight, or never sent */
        } else if (i % 4 == 2) {
            int k = (i + 2) / 4; /* the K-th unban lifts it */
            want = k <= o_unbans ? 0 : (k == o_unbans + 1 && i + 1 < o_count) ? -1 : 1;
        } else {
            want = 1;
        }
        if (want < 0)
            either++;
        else if (want != is_banned) {
            wrong++;
            g_string_append_printf(bad, "%s%s:%s", bad->len ? "," : "", target, st);
        }
    }
    kv("start", "%d", o_start);
    kv("checked", "%d", o_count + 1);
    kv("banned", "%u", banned);
    kv("not_banned", "%u", free_);
    kv("either", "%u", either);
    kv("wrong", "%u", wrong);
    if (wrong)
        kv("wrong_targets", "%s", bad->str);
    g_string_free(bad, TRUE);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* bind-check: can sockets be bound to --src (other 127/8 addresses)?        */

static int scenario_bind_check(void)
{
    struct sockaddr_in me;
    memset(&me, 0, sizeof(me));
    me.sin_family = AF_INET;
    if (inet_pton(AF_INET, o_src, &me.sin_addr) != 1)
        die_usage("--src: expected an IPv4 address");
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int ok = fd >= 0 && bind(fd, (struct sockaddr *)&me, sizeof(me)) == 0;
    if (fd >= 0)
        close(fd);
    kv("src", "%s", o_src);
    kv("bindable", "%d", ok);
    return ok ? 0 : 1;
}

/* ------------------------------------------------------------------------ */
/* peer-info: what the daemon remembers of --as (admin.peers {node_id})      */

static int scenario_peer_info(void)
{
    need(o_as, "--as");
    if (admin_open() < 0)
        return 1;
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add(&b, "{sv}", "node_id", g_variant_new_string(o_as));
    GVariant *params = g_variant_ref_sink(g_variant_builder_end(&b));
    GVariant *data = NULL;
    int rc = client_call(admin, pz_node_id(admin), "admin.peers", params, &data, NULL, NULL);
    g_variant_unref(params);
    if (rc < 0 || !data)
        return 1;
    const char *st = "?";
    double score = -1;
    g_variant_lookup(data, "queried_status", "&s", &st);
    g_variant_lookup(data, "queried_score", "d", &score);
    GString *h = g_string_new(NULL);
    GVariant *hist = g_variant_lookup_value(data, "queried_history", G_VARIANT_TYPE("aa{sv}"));
    for (gsize i = 0; hist && i < g_variant_n_children(hist); i++) {
        GVariant *e = g_variant_get_child_value(hist, i);
        const char *beh = "?";
        double delta = 0;
        g_variant_lookup(e, "behavior", "&s", &beh);
        g_variant_lookup(e, "delta", "d", &delta);
        g_string_append_printf(h, "%s%s%+.1f", h->len ? "," : "", beh, delta);
        g_variant_unref(e);
    }
    kv("peer", "%s", o_as);
    kv("status", "%s", st);
    kv("score", "%.1f", score);
    kv("history", "%s", h->str);
    if (hist)
        g_variant_unref(hist);
    g_variant_unref(data);
    g_string_free(h, TRUE);
    return 0;
}

/* ------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(void);
    } scenarios[] = {
        {"conn-flood", scenario_conn_flood},
        {"slow-handshake", scenario_slow_handshake},
        {"bad-frames", scenario_bad_frames},
        {"replay", scenario_replay},
        {"call-flood", scenario_call_flood},
        {"tls-close", scenario_tls_close},
        {"ban-storm", scenario_ban_storm},
        {"ban-check", scenario_ban_check},
        {"bind-check", scenario_bind_check},
        {"peer-info", scenario_peer_info},
    };
    GOptionContext *ctx = g_option_context_new("SCENARIO");
    g_option_context_set_summary(ctx, "Abuse scenarios against a running prozsecd: conn-flood, slow-handshake, "
                                      "bad-frames, replay, call-flood, ban-storm.");
    g_option_context_add_main_entries(ctx, entries, NULL);
    GError *ge = NULL;
    if (!g_option_context_parse(ctx, &argc, &argv, &ge)) {
        fprintf(stderr, "abuse-client: %s\n", ge->message);
        g_error_free(ge);
        g_option_context_free(ctx);
        return 2;
    }
    g_option_context_free(ctx);
    if (argc != 2)
        die_usage("expected one SCENARIO");
    signal(SIGPIPE, SIG_IGN);
    pz_logging_setup("abuse-client", "error");
    pz_crypto_init();
    int rc = 2;
    for (size_t i = 0; i < G_N_ELEMENTS(scenarios); i++) {
        if (strcmp(argv[1], scenarios[i].name) != 0)
            continue;
        line = g_string_new("ABUSE ");
        g_string_append(line, argv[1]);
        rc = scenarios[i].fn();
        if (rc == 0)
            summary_print();
        g_string_free(line, TRUE);
        admin_close();
        return rc;
    }
    die_usage("unknown SCENARIO");
    return rc;
}
