/* tests/unit/test_abi_compat.c — ABI compatibility: a plugin built against
 * the frozen ABI 1.0 headers (tests/abi/abi10-connlimit.c, compiled with
 * -I tests/abi/1.0/include) loads into this 1.1 core and works through the
 * DoS service (admit, release, behaviour events, status), and the core
 * never calls the 1.1 member peer_info on its shorter table; a 1.1
 * provider (reputation) next to it does answer peer_info. A plugin built
 * for ABI major+1, or for a newer minor, is refused with the loader's
 * messages. */
#include "config.h"

#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <glib.h>

#include <prozsec/connlimit.h>

#include "conf.h"
#include "coresvc.h"
#include "dos.h"
#include "err.h"
#include "loader.h"
#include "settings.h"

#define S 1000000000ull

/* Size of pz_connlimit_provider as ABI 1.0 defined it (its last 1.0 member
 * is flush). */
#define CONNLIMIT_SIZE_1_0 (offsetof(pz_connlimit_provider, flush) + sizeof(void (*)(void)))

static pz_loader *loader;
static char *fixture_dir; /* tests/fixtures/plugins/.libs */
static char *abi_dir;     /* tests/abi/.libs */

/* ---- captured metrics (the core's metric hook) -------------------------- */

static GHashTable *metrics; /* "source/name/label" -> gint64 */

static void capture_metric(void *ud, const char *source, const char *name, const char *label, int64_t value,
                           int is_gauge)
{
    (void)ud;
    char *key = g_strdup_printf("%s/%s/%s", source, name, label ? label : "");
    gint64 *v = g_hash_table_lookup(metrics, key);
    if (!v) {
        v = g_new0(gint64, 1);
        g_hash_table_insert(metrics, key, v);
    } else {
        g_free(key);
    }
    *v = is_gauge ? value : *v + value;
}

static int64_t metric(const char *source, const char *name, const char *label)
{
    char *key = g_strdup_printf("%s/%s/%s", source, name, label ? label : "");
    gint64 *v = g_hash_table_lookup(metrics, key);
    g_free(key);
    return v ? *v : 0;
}

static int setup(void **state)
{
    (void)state;
    pz_core_hooks h;
    memset(&h, 0, sizeof(h));
    h.metric = capture_metric;
    pz_core_set_hooks(&h);
    g_hash_table_remove_all(metrics);
    return 0;
}

/* ---- a DoS service from YAML --------------------------------------------- */

typedef struct fx {
    pz_conf_doc *doc;
    pz_settings *settings;
    pz_dos *dos;
    pz_err err;
} fx;

static void fx_new(fx *f, const char *dos_yaml)
{
    memset(f, 0, sizeof(*f));
    pz_err_init(&f->err);
    char *text = g_strdup_printf("node: {id: test-node, type: validator}\ndos:\n%s", dos_yaml);
    int rc = pz_conf_load_string("test.yaml", text, strlen(text), &f->doc, &f->err);
    g_free(text);
    if (rc)
        fail_msg("yaml: %s", pz_err_msg(&f->err));
    if (pz_settings_load(pz_conf_root(f->doc), &f->settings, &f->err))
        fail_msg("settings: %s", pz_err_msg(&f->err));
    if (pz_dos_new_from_settings(loader, f->settings, &f->dos, &f->err))
        fail_msg("dos: %s", pz_err_msg(&f->err));
}

static void fx_free(fx *f)
{
    pz_dos_free(f->dos);
    pz_settings_free(f->settings);
    pz_conf_doc_free(f->doc);
    pz_err_clear(&f->err);
}

static pz_addr ip4(uint8_t d)
{
    pz_addr x;
    memset(&x, 0, sizeof(x));
    x.family = PZ_AF_INET;
    x.bytes[0] = 192;
    x.bytes[2] = 2;
    x.bytes[3] = d;
    return x;
}

static void event(pz_dos *dos, pz_behavior b, const char *node, uint64_t now)
{
    pz_behavior_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.struct_size = sizeof(ev);
    ev.behavior = b;
    ev.node_id = node;
    ev.addr = ip4(1);
    ev.now_ns = now;
    pz_dos_behavior(dos, &ev);
}

/* ---- the 1.0 plugin loads ------------------------------------------------- */

static void test_loads_with_1_0_sizes(void **state)
{
    (void)state;
    /* The trap in the fixture sits exactly where 1.1 put peer_info. */
    assert_int_equal(offsetof(pz_connlimit_provider, peer_info), CONNLIMIT_SIZE_1_0);
    assert_int_equal(offsetof(pz_peer_info, score), 8);

    char *path = g_build_filename(abi_dir, "abi10-connlimit.so", NULL);
    const pz_plugin *p = NULL;
    pz_load_refusal why = PZ_REFUSE_MALFORMED;
    pz_err err;
    pz_err_init(&err);
    int rc = pz_loader_load_file(loader, path, &p, &why, &err);
    if (rc)
        fail_msg("%s", pz_err_msg(&err));
    assert_int_equal(why, PZ_REFUSE_NONE);
    const pz_plugin_descriptor *d = pz_plugin_desc(p);
    assert_int_equal(d->abi_major, 1);
    assert_int_equal(d->abi_minor, 0);
    assert_int_equal(PZ_ABI_MINOR, 1);
    assert_int_equal(d->kind, PZ_KIND_CONNLIMIT);
    const pz_connlimit_provider *t = d->provider;
    assert_int_equal(t->struct_size, CONNLIMIT_SIZE_1_0);
    assert_true(t->struct_size < sizeof(pz_connlimit_provider));
    pz_err_clear(&err);
    g_free(path);
}

/* A 1.0 plugin reads its configuration through the 1.1 core's getters:
 * range errors carry FILE:LINE:COL, unread keys are unknown keys. */
static void test_config_getters(void **state)
{
    (void)state;
    const pz_plugin *p = NULL;
    pz_err err;
    pz_err_init(&err);
    assert_int_equal(pz_loader_load(loader, "abi10-connlimit", PZ_KIND_CONNLIMIT, &p, &err), 0);

    static const struct {
        const char *yaml;
        int rc;
        const char *msg;
    } cases[] = {
        {"max_open: 3\nblock_after: 1\n", 0, NULL},
        {"max_open: 0\n", PZ_ECONFIG, "test.yaml:1:11: max_open: expected"},
        {"max_open: lots\n", PZ_ECONFIG, "test.yaml:1:11: max_open: expected"},
        {"max_open: 3\nmax_opne: 4\n", PZ_ECONFIG, "test.yaml:2:1: max_opne: unknown key"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pz_conf_doc *doc = NULL;
        assert_int_equal(pz_conf_load_string("test.yaml", cases[i].yaml, strlen(cases[i].yaml), &doc, &err), 0);
        pz_provider *pv = NULL;
        pz_err_clear(&err);
        pz_err_init(&err);
        int rc = pz_provider_new(p, NULL, pz_conf_root(doc), &pv, &err);
        if (rc != cases[i].rc)
            fail_msg("case %zu: rc %d, expected %d (%s)", i, rc, cases[i].rc, pz_err_msg(&err));
        if (cases[i].msg && !strstr(pz_err_msg(&err), cases[i].msg))
            fail_msg("case %zu: message \"%s\" lacks \"%s\"", i, pz_err_msg(&err), cases[i].msg);
        pz_provider_free(pv);
        pz_conf_doc_free(doc);
    }
    pz_err_clear(&err);
}

/* ---- it works through the 1.1 core ------------------------------------------ */

static void test_admit_release_behaviour(void **state)
{
    (void)state;
    fx f;
    fx_new(&f, "  connection_limiters:\n"
               "    - {provider: abi10-connlimit, name: old, config: {max_open: 2, block_after: 2}}\n");
    pz_addr a = ip4(1);
    pz_dos_conn *c1 = NULL, *c2 = NULL, *c3 = NULL;
    pz_dos_verdict v;
    assert_int_equal(pz_dos_admit_address(f.dos, &a, S, &c1, &v), 0);
    assert_int_equal(v.allowed, 1);
    assert_int_equal(pz_dos_admit_address(f.dos, &a, S, &c2, &v), 0);
    assert_int_equal(v.allowed, 1);
    assert_int_equal(metric("old", "open", NULL), 2);
    assert_int_equal(pz_dos_admit_address(f.dos, &a, S, &c3, &v), 0);
    assert_int_equal(v.allowed, 0);
    assert_null(c3);
    assert_string_equal(v.provider, "old");
    assert_int_equal(v.reason, 1);
    assert_string_equal(v.detail, "abi10: max_open reached");

    pz_identity id = {sizeof(id), "peer-1", "validator", NULL, 0, NULL, NULL, "test"};
    assert_int_equal(pz_dos_admit_identity(f.dos, c1, &id, S, &v), 0);
    assert_int_equal(v.allowed, 1);
    pz_dos_release(f.dos, c1, 2 * S);
    assert_int_equal(metric("old", "released_total", NULL), 1);
    assert_int_equal(metric("old", "open", NULL), 1);
    assert_int_equal(pz_dos_admit_address(f.dos, &a, 2 * S, &c3, &v), 0);
    assert_int_equal(v.allowed, 1);

    /* Behaviour events reach on_behavior; peer_status follows them. */
    assert_int_equal(pz_dos_peer_status(f.dos, "peer-1", 3 * S), PZ_STATUS_UNKNOWN);
    event(f.dos, PZ_BEHAVIOR_VALID_REQUEST, "peer-1", 3 * S);
    assert_int_equal(pz_dos_peer_status(f.dos, "peer-1", 3 * S), PZ_STATUS_UNKNOWN);
    event(f.dos, PZ_BEHAVIOR_REPLAY, "peer-1", 3 * S);
    assert_int_equal(pz_dos_peer_status(f.dos, "peer-1", 3 * S), PZ_STATUS_PROBATION);
    event(f.dos, PZ_BEHAVIOR_INVALID_SIGNATURE, "peer-1", 4 * S);
    assert_int_equal(pz_dos_peer_status(f.dos, "peer-1", 4 * S), PZ_STATUS_BLOCKED);
    assert_int_equal(metric("old", "events_total", "1"), 1);
    assert_int_equal(metric("old", "events_total", "4"), 1);
    assert_int_equal(metric("old", "events_total", "3"), 1);
    assert_int_equal(pz_dos_events(f.dos, 0), 3);

    /* ... and the identity stage refuses the blocked node. */
    assert_int_equal(pz_dos_admit_identity(f.dos, c2, &id, 4 * S, &v), 0);
    assert_int_equal(v.allowed, 0);
    assert_string_equal(v.detail, "abi10: node blocked");
    assert_int_equal(metric("old", "open", NULL), 1); /* a refusing limiter is not released */

    /* No peer_info: the table ends before it, so the trap is never called. */
    pz_peer_info info;
    assert_int_equal(pz_dos_peer_info(f.dos, "peer-1", 4 * S, &info), PZ_ENOENT);
    assert_int_equal(info.struct_size, sizeof(info));
    assert_true(info.score == 0);
    assert_int_equal(metric("old", "peer_info_trap_total", NULL), 0);

    pz_dos_release(f.dos, c2, 5 * S);
    pz_dos_release(f.dos, c3, 5 * S);
    assert_int_equal(metric("old", "released_total", NULL), 2);
    assert_int_equal(metric("old", "open", NULL), 0);
    fx_free(&f);
}

/* Next to a 1.1 provider that has peer_info (reputation), in either order:
 * the 1.0 table is skipped and reputation answers. */
static void test_peer_info_skips_1_0_table(void **state)
{
    (void)state;
    static const char *const chains[] = {
        "  connection_limiters:\n"
        "    - {provider: abi10-connlimit, name: old, config: {max_open: 10, block_after: 5}}\n"
        "    - {provider: reputation, name: rep}\n",
        "  connection_limiters:\n"
        "    - {provider: reputation, name: rep}\n"
        "    - {provider: abi10-connlimit, name: old, config: {max_open: 10, block_after: 5}}\n",
    };
    for (size_t c = 0; c < 2; c++) {
        fx f;
        fx_new(&f, chains[c]);
        event(f.dos, PZ_BEHAVIOR_AUTH_FAILURE, "peer-1", S);
        event(f.dos, PZ_BEHAVIOR_VALID_REQUEST, "peer-1", S);
        pz_peer_info info;
        memset(&info, 0xa5, sizeof(info));
        assert_int_equal(pz_dos_peer_info(f.dos, "peer-1", S, &info), 0);
        assert_int_equal(info.struct_size, sizeof(info));
        assert_true(info.score > 40.09 && info.score < 40.11); /* 50 - 10 + 0.1 */
        assert_int_equal(info.status, PZ_STATUS_NEUTRAL);
        assert_true(info.banned_until_ns == 0);
        assert_int_equal(info.n_history, 2);
        assert_int_equal(info.history[0].behavior, PZ_BEHAVIOR_AUTH_FAILURE);
        assert_true(info.history[0].time_ns == S);
        assert_true(info.history[0].prev_score == 50);
        assert_true(info.history[0].delta == -10);
        assert_int_equal(info.history[1].behavior, PZ_BEHAVIOR_VALID_REQUEST);
        assert_true(info.history[1].prev_score == 40);
        /* A node nobody knows. */
        assert_int_equal(pz_dos_peer_info(f.dos, "stranger", S, &info), PZ_ENOENT);
        /* Bad arguments. */
        assert_int_equal(pz_dos_peer_info(f.dos, NULL, S, &info), PZ_EINVAL);
        assert_int_equal(pz_dos_peer_info(f.dos, "peer-1", S, NULL), PZ_EINVAL);
        assert_int_equal(pz_dos_peer_info(NULL, "peer-1", S, &info), PZ_EINVAL);
        assert_int_equal(metric("old", "peer_info_trap_total", NULL), 0);
        fx_free(&f);
    }
}

/* peer_info carries only the last PZ_PEER_HISTORY_MAX adjustments, oldest
 * first, even when the provider remembers more; a ban shows. */
static void test_peer_info_history_cap_and_ban(void **state)
{
    (void)state;
    fx f;
    fx_new(&f, "  connection_limiters:\n"
               "    - {provider: reputation, name: rep, config: {history_size: 40}}\n");
    for (uint64_t i = 0; i < 30; i++)
        event(f.dos, PZ_BEHAVIOR_VALID_REQUEST, "busy", (i + 1) * S);
    pz_peer_info info;
    assert_int_equal(pz_dos_peer_info(f.dos, "busy", 30 * S, &info), 0);
    assert_int_equal(info.n_history, PZ_PEER_HISTORY_MAX);
    assert_true(info.history[0].time_ns == 15 * S);
    assert_true(info.history[PZ_PEER_HISTORY_MAX - 1].time_ns == 30 * S);
    assert_int_equal(pz_dos_ban(f.dos, "busy", 60 * S, 30 * S, &f.err), 0);
    assert_int_equal(pz_dos_peer_info(f.dos, "busy", 31 * S, &info), 0);
    assert_true(info.banned_until_ns == 90 * S);
    assert_int_equal(info.status, PZ_STATUS_BLOCKED);
    fx_free(&f);
}

/* ---- refusals: major+1 and a newer minor ------------------------------------ */

static void test_refuses_newer_abi(void **state)
{
    (void)state;
    char *major = g_strdup_printf("built for ABI %d.x, this core is %d.%d", PZ_ABI_MAJOR + 1, PZ_ABI_MAJOR,
                                  PZ_ABI_MINOR);
    char *minor = g_strdup_printf("built for ABI %d.%d, newer than this core's %d.%d: upgrade prozsec or rebuild "
                                  "the plugin against these headers",
                                  PZ_ABI_MAJOR, PZ_ABI_MINOR + 1, PZ_ABI_MAJOR, PZ_ABI_MINOR);
    static const struct {
        const char *file;
        pz_load_refusal why;
    } cases[] = {
        {"bad-abi-major.so", PZ_REFUSE_ABI_MAJOR},
        {"bad-abi-minor.so", PZ_REFUSE_ABI_MINOR},
    };
    for (size_t i = 0; i < 2; i++) {
        char *path = g_build_filename(fixture_dir, cases[i].file, NULL);
        const pz_plugin *p = NULL;
        pz_load_refusal why = PZ_REFUSE_NONE;
        pz_err err;
        pz_err_init(&err);
        assert_int_equal(pz_loader_load_file(loader, path, &p, &why, &err), PZ_EABI);
        assert_null(p);
        assert_int_equal(why, cases[i].why);
        char *want = g_strdup_printf("%s: %s", path, i == 0 ? major : minor);
        assert_string_equal(pz_err_msg(&err), want);
        g_free(want);
        pz_err_clear(&err);
        g_free(path);
    }
    g_free(major);
    g_free(minor);
}

int main(void)
{
    const char *top = getenv("top_builddir");
    if (!top)
        top = ".";
    fixture_dir = g_build_filename(top, "tests", "fixtures", "plugins", ".libs", NULL);
    abi_dir = g_build_filename(top, "tests", "abi", ".libs", NULL);
    char *plugins = g_build_filename(top, "plugins", ".libs", NULL);
    const char *dirs[] = {abi_dir, plugins};
    if (pz_loader_new_path(dirs, 2, PZ_LOADER_NO_ENV | PZ_LOADER_NO_PLUGINDIR, &loader, NULL)) {
        fprintf(stderr, "cannot create the loader\n");
        return 1;
    }
    metrics = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_loads_with_1_0_sizes, setup),
        cmocka_unit_test_setup(test_config_getters, setup),
        cmocka_unit_test_setup(test_admit_release_behaviour, setup),
        cmocka_unit_test_setup(test_peer_info_skips_1_0_table, setup),
        cmocka_unit_test_setup(test_peer_info_history_cap_and_ban, setup),
        cmocka_unit_test_setup(test_refuses_newer_abi, setup),
    };
    int rc = cmocka_run_group_tests_name("abi_compat", tests, NULL, NULL);
    pz_core_set_hooks(NULL);
    g_hash_table_destroy(metrics);
    pz_loader_free(loader);
    g_free(plugins);
    g_free(abi_dir);
    g_free(fixture_dir);
    return rc;
}
