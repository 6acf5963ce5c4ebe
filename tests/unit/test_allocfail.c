/* tests/unit/test_allocfail.c — allocation-failure runs (issue 9) of the
 * YAML configuration loader (core/conf.c with libyaml) and the E2E
 * envelope parser and opener (core/e2e.c): for N = 1, 2, ... the Nth
 * allocation made by the core or by libyaml fails (tests/unit/allocshim.h),
 * until a run completes without reaching N. Each run must end cleanly:
 * either success with exactly the result of an undisturbed run, or an error
 * code with a message; no crash, and no leak (the suite runs under valgrind
 * and LeakSanitizer in CI).
 *
 * Allocations inside GLib (g_malloc aborts when malloc fails), libgcrypt,
 * GnuTLS, nettle and GMP are counted but never failed; the test prints
 * where on the path they are (which library, called from where in the
 * core: resolve "program+0x..." with addr2line -f -e on the binary), once
 * per site, as "# not failed: ..." lines, and "# ...: after the failure,
 * GLib allocates" when an error path formats its report with GLib.
 *
 * Leaks: the configuration runs check in-process that every block
 * allocated during a run is freed by the end (pz_allocshim_live); the
 * valgrind and ASan runs check the rest. Under valgrind the shim is
 * bypassed (memcheck replaces malloc in the program too), so the runs are
 * skipped there. PZ_ALLOCFAIL_VERBOSE=1 names every failure a run
 * absorbed (libc's vasprintf keeps its buffer when a shrinking realloc
 * fails; a key-suggestion list is optional).
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <glib.h>
#include <glib/gstdio.h>

#include <prozsec/e2e.h>

#include "allocshim.h"
#include "conf.h"
#include "coresvc.h"
#include "crypto.h"
#include "e2e.h"
#include "err.h"
#include "nodekeys.h"
#include "../testutil.h"

/* Upper bound on N, far above any run here: a loop that never completes
 * is a bug of its own. */
#define MAX_RUNS 200000

/* The "# not failed" sites already printed. */
static GHashTable *sites;

static void note_skipped(const pz_allocshim_report *r, const char *what)
{
    if (r->skipped) {
        char *key = g_strdup_printf("%s: %s <- %s", what, r->skipped_lib, r->skipped_from[0] ? r->skipped_from : "?");
        if (g_hash_table_add(sites, key))
            print_message("# not failed: %s\n", key);
    }
    if (r->glib_after) {
        char *key = g_strdup_printf("%s: after the failure, GLib allocates (g_malloc aborts) <- %s", what,
                                    r->glib_after_from[0] ? r->glib_after_from : "?");
        if (g_hash_table_add(sites, key))
            print_message("# %s\n", key);
    }
}

/* ---- the configuration loader ------------------------------------------- */

static const char config_text[] =
    "# a node's configuration, as prozsecd reads it\n"
    "node:\n"
    "  id: node-1\n"
    "  type: validator\n"
    "  data_dir: /var/lib/prozsec\n"
    "  key_dir: \"/etc/prozsec/keys\"\n"
    "log: {level: info, format: text}\n"
    "transports:\n"
    "  - provider: tls\n"
    "    listen: 0.0.0.0:7400\n"
    "    config:\n"
    "      cert: /etc/prozsec/keys/node.crt\n"
    "      key: /etc/prozsec/keys/node.key\n"
    "      ca: [/etc/prozsec/ca.crt, /etc/prozsec/ca2.crt]\n"
    "      handshake_timeout: 5s\n"
    "  - provider: unix\n"
    "    name: admin\n"
    "    listen: /run/prozsec/admin.sock\n"
    "dos:\n"
    "  connection_limiters:\n"
    "    - provider: conn-limit\n"
    "      config:\n"
    "        max_per_address: 16\n"
    "        prefixes:\n"
    "          - {family: ipv4, length: 24, max_connections: 64, rate: 20, burst: 40}\n"
    "  rate_limiters:\n"
    "    - provider: token-bucket\n"
    "      method_costs: {sys.info: 2, msg.send: 2}\n"
    "      config: {capacity: 40, refill_per_second: 10.5, key: peer}\n"
    "rpc:\n"
    "  skew: 30s\n"
    "  replay_cache: 262144\n"
    "  max_frame_bytes: 1MiB\n"
    "  handshake_timeout: 10s\n"
    "  methods:\n"
    "    sys.ping: {integrity: mac, idempotent: yes}\n";

/* What a run reads; compared with an undisturbed run's. */
typedef struct conf_vals {
    char id[32], key_dir[64], first_ca[64], level[16];
    int64_t replay, max_per_address;
    uint64_t skew_ns, max_frame, hs_ns;
    double refill;
    size_t n_transports, n_ca;
    int idempotent;
} conf_vals;

static void copy(char *dst, size_t len, const char *src)
{
    g_strlcpy(dst, src ? src : "(null)", len);
}

/* Load TEXT (FILE: from that file instead) and read it the way the core
 * and a provider would, ending with the unknown-key check of the rpc
 * section. */
static int conf_run(const char *text, const char *file, conf_vals *v, pz_err *err)
{
    pz_conf_doc *doc = NULL;
    const pz_conf *root, *rpc = NULL, *list = NULL, *tls = NULL, *ca = NULL, *meth = NULL;
    const char *str = NULL;
    int idem = 0;
    memset(v, 0, sizeof(*v));
    int rc = file ? pz_conf_load_file(file, &doc, err) : pz_conf_load_string("alloc.yaml", text, strlen(text), &doc, err);
    if (rc)
        goto out;
    root = pz_conf_root(doc);
    if ((rc = pz_conf_string(root, "node.id", NULL, &str, err)))
        goto out;
    copy(v->id, sizeof(v->id), str);
    if ((rc = pz_conf_string(root, "node.key_dir", NULL, &str, err)))
        goto out;
    copy(v->key_dir, sizeof(v->key_dir), str);
    if ((rc = pz_conf_string(root, "log.level", "notice", &str, err)))
        goto out;
    copy(v->level, sizeof(v->level), str);
    if ((rc = pz_conf_list(root, "transports", &list, err)))
        goto out;
    v->n_transports = list ? pz_conf_len(list) : 0;
    tls = v->n_transports ? pz_conf_at(list, 0, NULL) : NULL;
    if (tls && (rc = pz_conf_map(tls, "config", &tls, err)))
        goto out;
    if (tls && (rc = pz_conf_list(tls, "ca", &ca, err)))
        goto out;
    v->n_ca = ca ? pz_conf_len(ca) : 0;
    copy(v->first_ca, sizeof(v->first_ca), v->n_ca ? pz_conf_scalar(pz_conf_at(ca, 0, NULL)) : NULL);
    if (tls && (rc = pz_conf_duration(tls, "handshake_timeout", 0, &v->hs_ns, err)))
        goto out;
    if ((rc = pz_conf_list(root, "dos.connection_limiters", &list, err)))
        goto out;
    if (list && pz_conf_len(list) &&
        (rc = pz_conf_int(pz_conf_at(list, 0, NULL), "config.max_per_address", 0, 0, 1000, &v->max_per_address, err)))
        goto out;
    if ((rc = pz_conf_list(root, "dos.rate_limiters", &list, err)))
        goto out;
    if (list && pz_conf_len(list) &&
        (rc = pz_conf_double(pz_conf_at(list, 0, NULL), "config.refill_per_second", 0, 0, 1e6, &v->refill, err)))
        goto out;
    if ((rc = pz_conf_map(root, "rpc", &rpc, err)))
        goto out;
    if ((rc = pz_conf_duration(rpc, "skew", 0, &v->skew_ns, err)) ||
        (rc = pz_conf_int(rpc, "replay_cache", 0, 1024, 100000000, &v->replay, err)) ||
        (rc = pz_conf_size(rpc, "max_frame_bytes", 0, &v->max_frame, err)) ||
        (rc = pz_conf_duration(rpc, "handshake_timeout", 0, &v->hs_ns, err)) ||
        (rc = pz_conf_map(rpc, "methods", &meth, err)))
        goto out;
    if (meth && (rc = pz_conf_bool(meth, "sys.ping.idempotent", 0, &idem, err)))
        goto out;
    v->idempotent = idem;
    if (meth) {
        /* The rest of the method's map is someone else's to check. */
        pz_conf_mark_used(meth);
    }
    rc = pz_conf_check_unused(rpc, err);
out:
    pz_conf_doc_free(doc);
    return rc;
}

/* For N = 1, 2, ...: fail the Nth allocation of conf_run(TEXT, FILE). A
 * failed run must return an error with a message; a run that succeeds
 * must read what REF did (WANT_RC: what an undisturbed run returns). */
static void conf_torture(const char *what, const char *text, const char *file, int want_rc)
{
    conf_vals ref, v;
    pz_err err;
    pz_allocshim_report r;
    pz_err_init_collect(&err);
    pz_allocshim_arm(0);
    int rc = conf_run(text, file, &ref, &err);
    pz_allocshim_disarm(&r);
    assert_int_equal(rc, want_rc);
    pz_err_clear(&err);
    assert_int_equal(pz_allocshim_live(), 0);
    unsigned long total = r.count, failed = 0, survived = 0;
    for (unsigned long n = 1; n < MAX_RUNS; n++) {
        pz_err_init_collect(&err);
        pz_allocshim_arm(n);
        rc = conf_run(text, file, &v, &err);
        pz_allocshim_disarm(&r);
        note_skipped(&r, what);
        if (r.count < n) {
            /* Nothing failed: the run is complete. */
            assert_int_equal(rc, want_rc);
            pz_err_clear(&err);
            print_message("# %s: %lu allocations, %lu failed one by one (%lu runs recovered fully)\n", what, total,
                          failed, survived);
            return;
        }
        if (r.failed)
            failed++;
        if (rc == 0) {
            /* The failure was absorbed (a cache, a suggestion list): the
             * result must be the undisturbed one. */
            assert_int_equal(want_rc, 0);
            assert_memory_equal(&v, &ref, sizeof(v));
            survived += r.failed;
            if (getenv("PZ_ALLOCFAIL_VERBOSE"))
                print_message("# %s: run %lu absorbed a failure at %s\n", what, n, r.failed_at);
        } else {
            if (!r.failed)
                assert_int_equal(rc, want_rc); /* nothing was failed: the normal answer */
            assert_true(rc < 0);
            const char *msg = pz_err_msg(&err);
            if (!msg || !*msg)
                fail_msg("%s: run %lu: error %d without a message", what, n, rc);
        }
        pz_err_clear(&err);
        /* Everything the run allocated is freed again. */
        long live = pz_allocshim_live();
        if (live != 0)
            fail_msg("%s: run %lu (failure at %s): %ld blocks not freed", what, n, r.failed_at, live);
    }
    fail_msg("%s: no run completed within %d allocations", what, MAX_RUNS);
}

/* Under valgrind, memcheck's own malloc replaces the shim's: nothing can
 * be made to fail, so the runs are skipped there (they run, leak checks
 * included, in the plain and the ASan builds). */
static void need_shim(void)
{
    if (!pz_allocshim_active()) {
        print_message("# the malloc shim is bypassed (valgrind): skipped\n");
        skip();
    }
}

static void test_conf_string(void **state)
{
    (void)state;
    need_shim();
    conf_torture("config", config_text, NULL, 0);
}

static void test_conf_file(void **state)
{
    (void)state;
    need_shim();
    GError *ge = NULL;
    char *dir = g_dir_make_tmp("pz-allocfail-XXXXXX", &ge);
    assert_non_null(dir);
    char *path = g_build_filename(dir, "node.yaml", NULL);
    assert_true(g_file_set_contents(path, config_text, -1, NULL));
    conf_torture("config file", NULL, path, 0);
    g_unlink(path);
    g_rmdir(dir);
    g_free(path);
    g_free(dir);
}

/* Files that must be refused: every run ends in an error. */
static void test_conf_errors(void **state)
{
    (void)state;
    need_shim();
    static const char *const bad[] = {
        "node: {id: node-1, type: validator}\nrpc: {skew: 30s, replay_cach: 1024}\n",   /* unknown key */
        "node: {id: node-1}\nrpc:\n  skew: fast\n",                                    /* bad value */
        "node:\n  id: a\n  id: b\nrpc: {}\n",                                          /* duplicate key */
        "node: [unclosed\n",                                                           /* YAML syntax */
        "a: &x 1\nb: *x\n",                                                            /* alias */
        "node: {id: node-1, key_dir: !!str x}\n",                                      /* tag */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        conf_vals v;
        pz_err err;
        pz_err_init_collect(&err);
        int want = conf_run(bad[i], NULL, &v, &err);
        pz_err_clear(&err);
        assert_true(want < 0);
        char what[32];
        g_snprintf(what, sizeof(what), "bad config %zu", i);
        conf_torture(what, bad[i], NULL, want);
    }
}

/* ---- the E2E envelope parser and opener ---------------------------------- */

typedef struct peer {
    char dir[256];
    uint8_t sign_pub[32], e2e_pub[32];
    pz_e2e *e2e;
} peer;

static void peer_new(peer *p, const char *top, const char *id)
{
    pz_err err;
    GError *ge = NULL;
    pz_err_init(&err);
    g_snprintf(p->dir, sizeof(p->dir), "%s/%s", top, id);
    assert_int_equal(pz_nodekeys_generate(p->dir, 0, p->sign_pub, p->e2e_pub, &err), 0);
    if (pz_e2e_new(id, p->dir, NULL, &p->e2e, &ge))
        fail_msg("pz_e2e_new(%s): %s", id, ge->message);
    pz_err_clear(&err);
}

static void e2e_torture(int sealed_sender)
{
    GError *ge = NULL;
    char *top = g_dir_make_tmp("pz-allocfail-e2e-XXXXXX", &ge);
    assert_non_null(top);
    peer alice, bob;
    peer_new(&alice, top, "alice");
    peer_new(&bob, top, "bob");
    assert_int_equal(pz_e2e_add_peer(alice.e2e, "bob", bob.sign_pub, bob.e2e_pub, NULL), 0);
    assert_int_equal(pz_e2e_add_peer(bob.e2e, "alice", alice.sign_pub, alice.e2e_pub, NULL), 0);
    static const char msg[] = "meet at block 1000000";
    static const uint8_t aad[] = "chain-id 7";
    pz_e2e_seal_params sp = {.struct_size = sizeof(sp), .sealed_sender = sealed_sender, .aad = aad, .aad_len = sizeof(aad)};
    const char *what = sealed_sender ? "e2e open (sealed sender)" : "e2e open";
    unsigned long total = 0, failed = 0;
    for (unsigned long n = 0; n < MAX_RUNS; n++) {
        /* A fresh envelope each run (the replay cache remembers opened ones). */
        uint8_t *env = NULL, *out = NULL;
        size_t env_len = 0, out_len = 0;
        uint64_t now = pz_realtime_ns();
        assert_int_equal(pz_e2e_seal(alice.e2e, "bob", &sp, (const uint8_t *)msg, strlen(msg), now, &env, &env_len, NULL), 0);
        pz__e2e_env parsed;
        pz_allocshim_report r;
        /* The structural parser allocates nothing at all. */
        pz_allocshim_arm(1);
        int prc = pz__e2e_parse(env, env_len, &parsed);
        pz_allocshim_disarm(&r);
        assert_int_equal(prc, 0);
        assert_int_equal(r.count, 0);
        pz_e2e_meta meta = {.struct_size = sizeof(meta)};
        pz_allocshim_arm(n);
        int rc = pz_e2e_open(bob.e2e, env, env_len, NULL, now, &out, &out_len, &meta, &ge);
        pz_allocshim_disarm(&r);
        note_skipped(&r, what);
        if (n == 0)
            total = r.count;
        if (rc == 0) {
            assert_null(ge);
            assert_int_equal(out_len, strlen(msg));
            assert_memory_equal(out, msg, out_len);
            assert_string_equal(meta.sender_id, "alice");
            pz_e2e_free_bytes(out, out_len);
        } else {
            assert_true(r.failed);
            assert_null(out);
            assert_non_null(ge); /* a GError saying what failed */
            assert_non_null(ge->message);
            g_clear_error(&ge);
            failed++;
        }
        free(env);
        if (n > 0 && r.count < n) {
            print_message("# %s: %lu allocations, %lu failed one by one\n", what, total, failed);
            break;
        }
    }
    pz_e2e_free(alice.e2e);
    pz_e2e_free(bob.e2e);
    pz_test_rm_rf(top);
    g_free(top);
}

static void test_e2e_open(void **state)
{
    (void)state;
    need_shim();
    e2e_torture(0);
}

static void test_e2e_open_sealed_sender(void **state)
{
    (void)state;
    need_shim();
    e2e_torture(1);
}

/* The shim fails what it should: a plain malloc from the core fails, one
 * from GLib does not. */
static void test_shim(void **state)
{
    (void)state;
    need_shim();
    pz_allocshim_report r;
    pz_err err;
    pz_err_init(&err);
    pz_allocshim_arm(1);
    int rc = pz_err_set(&err, PZ_EINVAL, "%s", "needs vasprintf's malloc");
    pz_allocshim_disarm(&r);
    assert_int_equal(rc, PZ_EINVAL);
    assert_true(r.failed);
    assert_string_equal(pz_err_msg(&err), pz_strerror(PZ_EINVAL)); /* the fallback */
    pz_err_clear(&err);
    pz_allocshim_arm(1);
    char *g = g_strdup("glib");
    pz_allocshim_disarm(&r);
    assert_non_null(g);
    assert_false(r.failed);
    assert_true(r.skipped);
    assert_non_null(strstr(r.skipped_lib, "glib"));
    g_free(g);
}

int main(void)
{
    pz_allocshim_init();
    pz_crypto_init();
    sites = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shim),
        cmocka_unit_test(test_conf_string),
        cmocka_unit_test(test_conf_file),
        cmocka_unit_test(test_conf_errors),
        cmocka_unit_test(test_e2e_open),
        cmocka_unit_test(test_e2e_open_sealed_sender),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    g_hash_table_destroy(sites);
    return rc;
}
