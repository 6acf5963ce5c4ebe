/* core/cmd_demo.c — `prozsec demo`: a local network of three prozsecd
 * nodes on 127.0.0.1, exercising the whole data path:
 *
 *   1. a CA and certificates for node-1..N (+ a misbehaving "mallory");
 *   2. N prozsecd processes, each on a TLS port and a unix admin socket;
 *   3. signed calls from node-1 to every other node;
 *   4. an E2E message from node-1 to node-N stored on node-2 (which cannot
 *      read it) and fetched by node-N, which opens it;
 *   5. mallory signs with the wrong key (refused), then floods node-2
 *      (rate-limited) until its reputation falls to blocked;
 *   6. a summary, then every process started is stopped by its pid.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib-unix.h>
#include <glib.h>
#include <glib/gstdio.h>

#include <prozsec/e2e.h>

#include "cmd.h"
#include "coresvc.h"
#include "logging.h"
#include "node.h"
#include "node_priv.h"
#include "nodekeys.h"
#include "pki.h"

#define DEMO_MAX_NODES 9

static int opt_nodes = 3;
static char *opt_dir;
static gboolean opt_keep;
static gboolean opt_verbose;

typedef struct demo_node {
    char id[32];
    char dir[PATH_MAX];
    char config[PATH_MAX];
    char sock[PATH_MAX];
    char log[PATH_MAX];
    char ready[PATH_MAX];
    char address[64];
    GPid pid;
} demo_node;

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

static int write_file(const char *path, const char *text)
{
    GError *ge = NULL;
    if (!g_file_set_contents(path, text, -1, &ge)) {
        pz_cmd_fail("demo: %s", ge->message);
        g_error_free(ge);
        return -1;
    }
    return 0;
}

/* The configuration of one demo node. */
static char *node_config(const char *top, const demo_node *n, const char *type, unsigned uid)
{
    return g_strdup_printf(
        "# prozsec demo node %s (written by `prozsec demo`)\n"
        "node:\n"
        "  id: %s\n"
        "  type: %s\n"
        "  data_dir: %s/data\n"
        "  key_dir: %s\n"
        "log:\n"
        "  level: %s\n"
        "transports:\n"
        "  - provider: tls\n"
        "    listen: 127.0.0.1:0\n"
        "    config:\n"
        "      cert: %s/node.crt\n"
        "      key: %s/node.key\n"
        "      ca: %s/ca/ca.crt\n"
        "      crl: %s/ca/ca.crl\n"
        "      handshake_timeout: 5s\n"
        "  - provider: unix\n"
        "    name: admin\n"
        "    listen: %s\n"
        "    config:\n"
        "      mode: \"0600\"\n"
        "auth:\n"
        "  chain:\n"
        "    - provider: cert-auth\n"
        "      control: sufficient\n"
        "      config:\n"
        "        ca_file: %s/ca/ca.crt\n"
        "        crl_file: %s/ca/ca.crl\n"
        "        cert_file: %s/node.crt\n"
        "    - provider: unix-peercred\n"
        "      control: sufficient\n"
        "      config:\n"
        "        uids: [%u]\n"
        "        identity:\n"
        "          node_id: %s\n"
        "          node_type: admin\n"
        "          roles: [admin]\n"
        "authorization:\n"
        "  rules:\n"
        "    - methods: [\"admin.*\"]\n"
        "      allow: {roles: [admin]}\n"
        "    - methods: [\"sys.*\", \"keys.get\", \"msg.*\"]\n"
        "      allow: {node_types: [validator, client]}\n"
        "dos:\n"
        "  connection_limiters:\n"
        "    - provider: conn-limit\n"
        "      config:\n"
        "        max_connections: 1000\n"
        "        max_per_address: 64\n"
        "        new_per_address: {rate: 50, burst: 100}\n"
        "    - provider: reputation\n"
        "      config:\n"
        "        data_dir: %s/data\n"
        "        initial_score: 50\n"
        "        adjustments:\n"
        "          invalid_signature: -3\n"
        "          rate_limited: -1\n"
        "  rate_limiters:\n"
        "    - provider: token-bucket\n"
        "      method_costs: {sys.info: 2, msg.send: 2}\n"
        "      config:\n"
        "        key: peer\n"
        "        capacity: 40\n"
        "        refill_per_second: 10\n"
        "rpc:\n"
        "  skew: 30s\n"
        "  handshake_timeout: 5s\n",
        n->id, n->id, type, n->dir, n->dir, opt_verbose ? "info" : "notice", n->dir, n->dir, top, top, n->sock, top,
        top, n->dir, uid, n->id, n->dir);
}

static int make_pki(const char *top, demo_node *nodes, int count, demo_node *mallory)
{
    pz_err err;
    pz_err_init(&err);
    uint64_t now = (uint64_t)g_get_real_time() / G_USEC_PER_SEC;
    char cadir[PATH_MAX];
    g_snprintf(cadir, sizeof(cadir), "%s/ca", top);
    pz_ca_init_opts ca = {.dir = cadir, .org = "ProzChain Demo", .key = PZ_PKI_KEY_ECDSA_P384, .force = 1};
    int rc = pz_ca_init(&ca, now, &err);
    for (int i = 0; rc == 0 && i <= count; i++) {
        demo_node *n = i < count ? &nodes[i] : mallory;
        pz_cert_issue_opts o = {
            .ca_dir = cadir,
            .node_id = n->id,
            .node_type = i < count ? "validator" : "client",
            .out_dir = n->dir,
            .force = 1,
        };
        rc = pz_cert_issue(&o, now, &err);
    }
    if (rc == 0) {
        /* mallory signs RPC calls with a key that is not the one its
         * certificate carries. */
        uint8_t s[32], e[32];
        char bad[PATH_MAX];
        g_snprintf(bad, sizeof(bad), "%s/wrong-keys", mallory->dir);
        rc = pz_nodekeys_generate(bad, 1, s, e, &err);
    }
    if (rc < 0)
        pz_cmd_fail("demo: PKI: %s", pz_err_msg(&err));
    pz_err_clear(&err);
    return rc;
}

static char *find_daemon(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        g_autofree char *dir = g_path_get_dirname(exe);
        char *cand = g_build_filename(dir, "prozsecd", NULL);
        if (g_file_test(cand, G_FILE_TEST_IS_EXECUTABLE))
            return cand;
        g_free(cand);
    }
    char *installed = g_build_filename(PZ_SBINDIR, "prozsecd", NULL);
    if (g_file_test(installed, G_FILE_TEST_IS_EXECUTABLE))
        return installed;
    g_free(installed);
    return g_find_program_in_path("prozsecd");
}

static int start_daemon(const char *daemon, demo_node *n)
{
    char *argv[] = {(char *)daemon, "--config", n->config, "--ready-file", n->ready, NULL};
    int fd = open(n->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        pz_cmd_fail("demo: %s: %s", n->log, g_strerror(errno));
        return -1;
    }
    GError *ge = NULL;
    gboolean ok = g_spawn_async_with_fds(NULL, argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &n->pid, -1, fd,
                                         fd, &ge);
    close(fd);
    if (!ok) {
        pz_cmd_fail("demo: starting %s: %s", daemon, ge->message);
        g_error_free(ge);
        return -1;
    }
    return 0;
}

/* Wait (bounded) until the daemon wrote its ready file. */
static int wait_ready(demo_node *n)
{
    for (int i = 0; i < 200; i++) {
        char *text = NULL;
        if (g_file_get_contents(n->ready, &text, NULL, NULL) && *text) {
            char *nl = strchr(text, '\n');
            if (nl)
                *nl = '\0';
            g_strlcpy(n->address, text, sizeof(n->address));
            g_free(text);
            return 0;
        }
        g_free(text);
        int status;
        if (waitpid(n->pid, &status, WNOHANG) == n->pid) {
            n->pid = 0;
            pz_cmd_fail("demo: %s exited during start-up; its log %s says:", n->id, n->log);
            char *log = NULL;
            if (g_file_get_contents(n->log, &log, NULL, NULL))
                fputs(log, stderr);
            g_free(log);
            return -1;
        }
        g_usleep(50 * 1000);
    }
    pz_cmd_fail("demo: %s not ready after 10 s (see %s)", n->id, n->log);
    return -1;
}

static void stop_daemon(demo_node *n)
{
    if (n->pid <= 0)
        return;
    kill(n->pid, SIGTERM);
    for (int i = 0; i < 100; i++) {
        int status;
        if (waitpid(n->pid, &status, WNOHANG) == n->pid) {
            n->pid = 0;
            return;
        }
        g_usleep(50 * 1000);
    }
    kill(n->pid, SIGKILL);
    waitpid(n->pid, NULL, 0);
    n->pid = 0;
}

typedef struct tally {
    unsigned calls_ok;
    unsigned calls_failed;
    double ms_total;
    unsigned bad_sig_sent;
    unsigned bad_sig_refused;
    unsigned flood_sent;
    unsigned flood_limited;
    unsigned flood_ok;
    unsigned flood_other;
    int e2e_ok;
    int relay_blind;
    char mallory_status[32];
    int mallory_reconnect_refused;
} tally;

static pz_node *client_node(const demo_node *n, demo_node *all, int count)
{
    pz_err err;
    pz_err_init_collect(&err);
    pz_node *node = NULL;
    if (pz_node_new(n->config, PZ_NODE_CLIENT, &node, &err) < 0) {
        for (size_t i = 0; i < pz_err_count(&err); i++)
            pz_cmd_fail("demo: %s", pz_err_at(&err, i));
        pz_err_clear(&err);
        return NULL;
    }
    for (int i = 0; i < count; i++)
        pz_node_add_peer_address(node, all[i].id, all[i].address, NULL, &err);
    pz_err_clear(&err);
    return node;
}

static int call(pz_node *node, const char *to, const char *method, GVariant *params, GVariant **data,
                int32_t *status)
{
    pz_err err;
    pz_err_init(&err);
    int32_t st = -1;
    int rc = pz_node_call_sync(node, to, method, params, 5000, 0, data, &st, NULL, &err);
    if (rc < 0 && opt_verbose)
        fprintf(stderr, "  %s on %s: %s\n", method, to, pz_err_msg(&err));
    pz_err_clear(&err);
    if (status)
        *status = st;
    return rc;
}

static void signed_calls(demo_node *nodes, int count, tally *t)
{
    pz_node *n1 = client_node(&nodes[0], nodes, count);
    if (!n1)
        return;
    for (int round = 0; round < 5; round++) {
        for (int i = 1; i < count; i++) {
            gint64 t0 = g_get_monotonic_time();
            int32_t st;
            GVariant *data = NULL;
            int rc = call(n1, nodes[i].id, round == 0 ? "sys.info" : "sys.ping", NULL, &data, &st);
            if (rc == 0 && st == PZ_RPC_OK) {
                t->calls_ok++;
                t->ms_total += (double)(g_get_monotonic_time() - t0) / 1000.0;
            } else {
                t->calls_failed++;
            }
            if (data)
                g_variant_unref(data);
        }
    }
    pz_node_free(n1);
}

static int load_cert(const char *dir, uint8_t **der, size_t *len)
{
    char path[PATH_MAX];
    g_snprintf(path, sizeof(path), "%s/node.crt", dir);
    pz_err err;
    pz_err_init(&err);
    int rc = pz_cert_load_der(path, der, len, &err);
    pz_err_clear(&err);
    return rc;
}

static void e2e_relay(demo_node *nodes, int count, tally *t)
{
    demo_node *from = &nodes[0], *relay = &nodes[1], *to = &nodes[count - 1];
    const char *secret = "meet at block 1000000";
    GError *ge = NULL;
    pz_e2e *e1 = NULL, *e3 = NULL, *e2 = NULL;
    uint8_t *der1 = NULL, *der3 = NULL, *sealed = NULL, *plain = NULL;
    size_t l1 = 0, l3 = 0, sealed_len = 0, plain_len = 0;
    pz_node *c1 = NULL, *c3 = NULL;
    GVariant *data = NULL, *envs = NULL, *env = NULL;

    if (pz_e2e_new(from->id, from->dir, NULL, &e1, &ge) < 0 || pz_e2e_new(to->id, to->dir, NULL, &e3, &ge) < 0 ||
        pz_e2e_new(relay->id, relay->dir, NULL, &e2, &ge) < 0)
        goto out;
    if (load_cert(from->dir, &der1, &l1) < 0 || load_cert(to->dir, &der3, &l3) < 0)
        goto out;
    if (pz_e2e_add_peer_cert(e1, der3, l3, &ge) < 0 || pz_e2e_add_peer_cert(e3, der1, l1, &ge) < 0 ||
        pz_e2e_add_peer_cert(e2, der1, l1, &ge) < 0)
        goto out;
    pz_e2e_seal_params sp;
    memset(&sp, 0, sizeof(sp));
    sp.struct_size = sizeof(sp);
    if (pz_e2e_seal(e1, to->id, &sp, (const uint8_t *)secret, strlen(secret), pz_realtime_ns(), &sealed, &sealed_len, &ge) < 0)
        goto out;

    /* node-1 hands the envelope to node-2 for node-N. */
    c1 = client_node(from, nodes, count);
    if (!c1)
        goto out;
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add(&b, "{sv}", "envelope", g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, sealed, sealed_len, 1));
    GVariant *params = g_variant_ref_sink(g_variant_builder_end(&b));
    int32_t st;
    int rc = call(c1, relay->id, "msg.send", params, NULL, &st);
    g_variant_unref(params);
    if (rc < 0 || st != PZ_RPC_OK)
        goto out;

    /* The relay holds the envelope but cannot open it. */
    pz_e2e_open_params op;
    memset(&op, 0, sizeof(op));
    op.struct_size = sizeof(op);
    uint8_t *peek = NULL;
    size_t peek_len = 0;
    if (pz_e2e_open(e2, sealed, sealed_len, &op, pz_realtime_ns(), &peek, &peek_len, NULL, &ge) < 0) {
        t->relay_blind = 1;
        g_clear_error(&ge);
    } else {
        pz_e2e_free_bytes(peek, peek_len);
    }

    /* node-N fetches its mail from node-2 and opens it. */
    c3 = client_node(to, nodes, count);
    if (!c3)
        goto out;
    rc = call(c3, relay->id, "msg.fetch", NULL, &data, &st);
    if (rc < 0 || st != PZ_RPC_OK || !data)
        goto out;
    envs = g_variant_lookup_value(data, "envelopes", G_VARIANT_TYPE("aay"));
    if (!envs || g_variant_n_children(envs) < 1)
        goto out;
    env = g_variant_get_child_value(envs, 0);
    gsize elen = 0;
    const uint8_t *ebuf = g_variant_get_fixed_array(env, &elen, 1);
    if (pz_e2e_open(e3, ebuf, elen, &op, pz_realtime_ns(), &plain, &plain_len, NULL, &ge) < 0)
        goto out;
    t->e2e_ok = plain_len == strlen(secret) && memcmp(plain, secret, plain_len) == 0;
out:
    if (ge) {
        pz_cmd_fail("demo: E2E: %s", ge->message);
        g_error_free(ge);
    }
    if (data)
        g_variant_unref(data);
    if (envs)
        g_variant_unref(envs);
    if (env)
        g_variant_unref(env);
    if (plain)
        pz_e2e_free_bytes(plain, plain_len);
    if (sealed)
        pz_e2e_free_bytes(sealed, sealed_len);
    g_free(der1);
    g_free(der3);
    pz_node_free(c1);
    pz_node_free(c3);
    pz_e2e_free(e1);
    pz_e2e_free(e2);
    pz_e2e_free(e3);
}

typedef struct flood_state {
    unsigned pending;
    tally *t;
} flood_state;

static void flood_done(const pz_rpc_result *r, void *ud)
{
    flood_state *f = ud;
    f->pending--;
    if (r->rc == 0 && r->status == PZ_RPC_OK)
        f->t->flood_ok++;
    else if (r->rc == 0 && r->status == PZ_RPC_RATE_LIMITED)
        f->t->flood_limited++;
    else if (r->rc == 0 && r->status == PZ_RPC_BAD_SIGNATURE)
        f->t->bad_sig_refused++;
    else
        f->t->flood_other++;
}

static void mallory(demo_node *nodes, int count, demo_node *m, tally *t)
{
    pz_node *c = client_node(m, nodes, count);
    if (!c)
        return;
    const char *target = nodes[1].id;
    flood_state f = {.t = t};
    gint64 end;
    pz_node_free(c);

    /* 2. then a flood of well-signed calls (mallory fixed its key) */
    c = client_node(m, nodes, count);
    if (!c)
        return;
    /* the flood: 400 calls, 32 in flight */
    unsigned sent = 0;
    end = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
    while ((sent < 400 || f.pending) && g_get_monotonic_time() < end) {
        while (sent < 400 && f.pending < 32) {
            pz_rpc_call_opts o = {.struct_size = sizeof(o), .timeout_ms = 5000};
            if (pz_rpc_client_call(pz_node_client(c), target, "sys.ping", NULL, &o, flood_done, &f) < 0)
                break;
            f.pending++;
            sent++;
        }
        g_main_context_iteration(NULL, TRUE);
    }
    t->flood_sent = sent;
    pz_node_free(c);

    /* 3. a fresh connection after the flood */
    c = client_node(m, nodes, count);
    if (c) {
        int32_t st = -1;
        if (call(c, target, "sys.ping", NULL, NULL, &st) < 0 || st != PZ_RPC_OK)
            t->mallory_reconnect_refused = 1;
        pz_node_free(c);
    }

    /* 4. ask node-2 (admin socket) what it thinks of mallory */
    pz_node *admin = client_node(&nodes[1], nodes, count);
    if (admin) {
        pz_err err;
        pz_err_init(&err);
        pz_node_add_peer_address(admin, nodes[1].id, nodes[1].sock, "admin", &err);
        pz_err_clear(&err);
        GVariantBuilder b;
        g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
        g_variant_builder_add(&b, "{sv}", "node_id", g_variant_new_string(m->id));
        GVariant *params = g_variant_ref_sink(g_variant_builder_end(&b));
        GVariant *data = NULL;
        int32_t st;
        if (call(admin, nodes[1].id, "admin.peers", params, &data, &st) == 0 && st == PZ_RPC_OK && data) {
            const char *status = NULL;
            if (g_variant_lookup(data, "queried_status", "&s", &status))
                g_strlcpy(t->mallory_status, status, sizeof(t->mallory_status));
        }
        if (data)
            g_variant_unref(data);
        g_variant_unref(params);
        pz_node_free(admin);
    }
}

int pz_cmd_demo(int argc, char **argv)
{
    static const GOptionEntry entries[] = {
        {"nodes", 'n', 0, G_OPTION_ARG_INT, &opt_nodes, "Number of nodes (3 to 9; default 3)", "N"},
        {"dir", 'd', 0, G_OPTION_ARG_FILENAME, &opt_dir, "Work directory (default: a new temporary one, removed unless --keep-running)", "DIR"},
        {"keep-running", 'k', 0, G_OPTION_ARG_NONE, &opt_keep, "Leave the nodes running until Ctrl-C", NULL},
        {"verbose", 'v', 0, G_OPTION_ARG_NONE, &opt_verbose, "Show more detail", NULL},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    int rc = pz_cmd_parse("demo", NULL,
                          "Start a local demo network: a CA, N node certificates, N prozsecd daemons on\n"
                          "127.0.0.1 over mutual TLS; signed calls, an end-to-end encrypted message\n"
                          "relayed through node-2, and a misbehaving client that is refused, rate-limited\n"
                          "and blocked. Prints a summary and stops every process it started.",
                          entries, &argc, &argv);
    if (rc)
        return rc;
    if (argc != 1 || opt_nodes < 3 || opt_nodes > DEMO_MAX_NODES) {
        pz_cmd_fail("demo: --nodes must be 3 to %d (try --help)", DEMO_MAX_NODES);
        return PZ_EXIT_USAGE;
    }
    pz_logging_setup("prozsec", opt_verbose ? "notice" : "error");
    signal(SIGPIPE, SIG_IGN);

    int temp = 0;
    char top[PATH_MAX];
    if (opt_dir) {
        if (g_mkdir_with_parents(opt_dir, 0700) < 0) {
            pz_cmd_fail("demo: %s: %s", opt_dir, g_strerror(errno));
            return PZ_EXIT_USAGE;
        }
        char *abs = realpath(opt_dir, NULL);
        g_strlcpy(top, abs ? abs : opt_dir, sizeof(top));
        free(abs);
    } else {
        GError *ge = NULL;
        char *d = g_dir_make_tmp("prozsec-demo-XXXXXX", &ge);
        if (!d) {
            pz_cmd_fail("demo: %s", ge->message);
            g_error_free(ge);
            return PZ_EXIT_USAGE;
        }
        g_strlcpy(top, d, sizeof(top));
        g_free(d);
        temp = 1;
    }
    g_autofree char *daemon = find_daemon();
    if (!daemon) {
        pz_cmd_fail("demo: prozsecd not found next to prozsec, in " PZ_SBINDIR " or on PATH");
        return PZ_EXIT_USAGE;
    }

    demo_node nodes[DEMO_MAX_NODES], mal;
    memset(nodes, 0, sizeof(nodes));
    memset(&mal, 0, sizeof(mal));
    for (int i = 0; i <= opt_nodes; i++) {
        demo_node *n = i < opt_nodes ? &nodes[i] : &mal;
        if (i < opt_nodes)
            g_snprintf(n->id, sizeof(n->id), "node-%d", i + 1);
        else
            g_strlcpy(n->id, "mallory", sizeof(n->id));
        g_snprintf(n->dir, sizeof(n->dir), "%s/%s", top, n->id);
        g_snprintf(n->config, sizeof(n->config), "%s/%s.yaml", top, n->id);
        g_snprintf(n->sock, sizeof(n->sock), "%s/admin.sock", n->dir);
        g_snprintf(n->log, sizeof(n->log), "%s/%s.log", top, n->id);
        g_snprintf(n->ready, sizeof(n->ready), "%s/%s.ready", top, n->id);
        g_unlink(n->ready);
    }
    printf("prozsec demo: %d nodes on 127.0.0.1\n", opt_nodes);
    printf("pki: %s\n", top);
    fflush(stdout);
    int code = PZ_EXIT_NO;
    if (make_pki(top, nodes, opt_nodes, &mal) < 0)
        goto out;
    for (int i = 0; i <= opt_nodes; i++) {
        demo_node *n = i < opt_nodes ? &nodes[i] : &mal;
        g_autofree char *cfg = node_config(top, n, i < opt_nodes ? "validator" : "client", (unsigned)getuid());
        if (i == opt_nodes) {
            /* mallory's first key directory holds the wrong signing key */
            char *wrong = g_strdup_printf("  key_dir: %s/wrong-keys\n", n->dir);
            char *right = g_strdup_printf("  key_dir: %s\n", n->dir);
            char *pos = strstr(cfg, right);
            if (pos) {
                GString *s = g_string_new_len(cfg, pos - cfg);
                g_string_append(s, wrong);
                g_string_append(s, pos + strlen(right));
                char *badcfg = g_string_free(s, FALSE);
                char path[PATH_MAX];
                g_snprintf(path, sizeof(path), "%s/mallory-wrong-key.yaml", top);
                write_file(path, badcfg);
                g_free(badcfg);
            }
            g_free(wrong);
            g_free(right);
        }
        char data[PATH_MAX];
        g_snprintf(data, sizeof(data), "%s/data", n->dir);
        if (g_mkdir_with_parents(data, 0700) < 0 || write_file(n->config, cfg) < 0)
            goto out;
    }
    for (int i = 0; i < opt_nodes; i++)
        if (start_daemon(daemon, &nodes[i]) < 0)
            goto out;
    for (int i = 0; i < opt_nodes; i++) {
        if (wait_ready(&nodes[i]) < 0)
            goto out;
        printf("node %s listening on %s\n", nodes[i].id, nodes[i].address);
    }
    fflush(stdout);

    tally t;
    memset(&t, 0, sizeof(t));
    g_strlcpy(t.mallory_status, "unknown", sizeof(t.mallory_status));
    signed_calls(nodes, opt_nodes, &t);
    e2e_relay(nodes, opt_nodes, &t);
    /* mallory's first client uses the wrong key directory */
    demo_node bad = mal;
    g_snprintf(bad.config, sizeof(bad.config), "%s/mallory-wrong-key.yaml", top);
    {
        pz_node *c = client_node(&bad, nodes, opt_nodes);
        if (c) {
            flood_state f = {.t = &t};
            for (int i = 0; i < 5; i++) {
                pz_rpc_call_opts o = {.struct_size = sizeof(o), .timeout_ms = 5000};
                if (pz_rpc_client_call(pz_node_client(c), nodes[1].id, "sys.ping", NULL, &o, flood_done, &f) == 0) {
                    f.pending++;
                    t.bad_sig_sent++;
                }
            }
            gint64 end = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
            while (f.pending && g_get_monotonic_time() < end)
                g_main_context_iteration(NULL, TRUE);
            pz_node_free(c);
        }
    }
    mallory(nodes, opt_nodes, &mal, &t);

    printf("\nsummary\n");
    printf("  signed calls from node-1: %u ok, %u failed, %.1f ms average round trip\n", t.calls_ok,
           t.calls_failed, t.calls_ok ? t.ms_total / t.calls_ok : 0.0);
    printf("  e2e message node-1 -> %s via node-2: %s; node-2 could read it: %s\n", nodes[opt_nodes - 1].id,
           t.e2e_ok ? "delivered and opened" : "FAILED", t.relay_blind ? "no" : "YES (bug)");
    printf("  mallory, calls signed with the wrong key: %u sent, %u refused (bad signature)\n", t.bad_sig_sent,
           t.bad_sig_refused);
    printf("  mallory, flood: %u calls sent, %u served, %u rate-limited, %u refused otherwise\n", t.flood_sent,
           t.flood_ok, t.flood_limited, t.flood_other);
    printf("  mallory's reputation on node-2: %s; new connection after the flood: %s\n", t.mallory_status,
           t.mallory_reconnect_refused ? "refused" : "admitted");
    int good = t.calls_ok > 0 && t.calls_failed == 0 && t.e2e_ok && t.relay_blind &&
               t.bad_sig_refused == t.bad_sig_sent && t.flood_limited > 0;
    code = good ? PZ_EXIT_OK : PZ_EXIT_NO;
    if (!good)
        printf("  the demo did not go as expected: logs are in %s\n", top);
    fflush(stdout);

    if (opt_keep) {
        printf("\nnodes keep running (configs in %s); press Ctrl-C to stop them\n", top);
        fflush(stdout);
        signal(SIGINT, on_sigint);
        signal(SIGTERM, on_sigint);
        while (!interrupted)
            pause();
    }
out:
    for (int i = 0; i < opt_nodes; i++)
        stop_daemon(&nodes[i]);
    (void)temp;
    printf("stopped %d nodes; configurations, keys and logs are in %s\n", opt_nodes, top);
    return code;
}
