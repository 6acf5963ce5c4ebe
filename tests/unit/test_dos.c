/* tests/unit/test_dos.c — the core DoS service (core/dos.c) driving the
 * real token-bucket, gcra, conn-limit and reputation plugins of the build
 * tree through the loader, configured from YAML through core/settings. */
#include "config.h"

#include <limits.h>
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

#include "conf.h"
#include "coresvc.h"
#include "dos.h"
#include "err.h"
#include "loader.h"
#include "settings.h"

#define S 1000000000ull

/* Reason codes of the plugins (their headers are theirs; the values are
 * part of their documented interface). */
#define CL_GLOBAL 1
#define REP_BANNED_NODE 1
#define REP_BANNED_ADDRESS 5
#define RL_LIMIT 1
#define RL_STATUS 3

static pz_loader *loader;

typedef struct fx {
    pz_conf_doc *doc;
    pz_settings *settings;
    pz_dos *dos;
    pz_err err;
} fx;

static int fx_try(fx *f, const char *dos_yaml)
{
    memset(f, 0, sizeof(*f));
    pz_err_init(&f->err);
    char *text = g_strdup_printf("node: {id: test-node, type: validator}\ndos:\n%s", dos_yaml);
    int rc = pz_conf_load_string("test.yaml", text, strlen(text), &f->doc, &f->err);
    g_free(text);
    if (rc)
        fail_msg("yaml: %s", pz_err_msg(&f->err));
    rc = pz_settings_load(pz_conf_root(f->doc), &f->settings, &f->err);
    if (rc)
        fail_msg("settings: %s", pz_err_msg(&f->err));
    return pz_dos_new_from_settings(loader, f->settings, &f->dos, &f->err);
}

static void fx_new(fx *f, const char *dos_yaml)
{
    if (fx_try(f, dos_yaml))
        fail_msg("dos: %s", pz_err_msg(&f->err));
}

static void fx_free(fx *f)
{
    pz_dos_free(f->dos);
    pz_settings_free(f->settings);
    pz_conf_doc_free(f->doc);
    pz_err_clear(&f->err);
}

static pz_addr ip4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
    pz_addr x;
    memset(&x, 0, sizeof(x));
    x.family = PZ_AF_INET;
    x.bytes[0] = a;
    x.bytes[1] = b;
    x.bytes[2] = c;
    x.bytes[3] = d;
    return x;
}

static pz_identity ident(const char *node)
{
    pz_identity id = {sizeof(id), node, "validator", NULL, 0, NULL, NULL, "test"};
    return id;
}

/* Captured log lines (through the core's log hook). */
static GPtrArray *logs;
static void capture_log(void *ud, const char *source, pz_log_level level, const char *msg)
{
    (void)ud;
    (void)level;
    g_ptr_array_add(logs, g_strdup_printf("%s: %s", source, msg));
}

static int logged(const char *needle)
{
    for (guint i = 0; i < logs->len; i++)
        if (strstr(g_ptr_array_index(logs, i), needle))
            return 1;
    return 0;
}

static int setup(void **state)
{
    (void)state;
    pz_core_hooks h;
    memset(&h, 0, sizeof(h));
    h.log = capture_log;
    pz_core_set_hooks(&h);
    g_ptr_array_set_size(logs, 0);
    return 0;
}

/* ---- connection chain -------------------------------------------------- */

static void test_chain_admits_and_counts(void **state)
{
    (void)state;
    fx f;
    fx_new(&f, "  connection_limiters:\n"
               "    - provider: conn-limit\n"
               "      name: cl\n"
               "      config: {max_connections: 2, new_per_address: {rate: 0}}\n"
               "    - {provider: reputation, name: rep}\n");
    pz_addr a = ip4(192, 0, 2, 1);
    pz_dos_conn *c1, *c2, *c3;
    pz_dos_verdict v;
    assert_int_equal(pz_dos_admit_address(f.dos, &a, S, &c1, &v), 0);
    assert_int_equal(v.allowed, 1);
    assert_non_null(c1);
    assert_int_equal(pz_dos_admit_address(f.dos, &a, S, &c2, &v), 0);
    assert_int_equal(v.allowed, 1);
    assert_int_equal(pz_dos_admit_address(f.dos, &a, S, &c3, &v), 0);
    assert_int_equal(v.allowed, 0);
    assert_null(c3);
    assert_string_equal(v.provider, "cl");
    assert_int_equal(v.reason, CL_GLOBAL);
    assert_string_equal(v.detail, "global limit 2 reached");
    assert_int_equal(pz_dos_refusals(f.dos, PZ_DOS_STAGE_ADDRESS, "cl", CL_GLOBAL, 0), 1);
    assert_int_equal(pz_dos_refusals(f.dos, 0, NULL, INT_MIN, 0), 1);
    assert_int_equal(pz_dos_refusals(f.dos, PZ_DOS_STAGE_IDENTITY, NULL, INT_MIN, 0), 0);
    /* Identity, then release: the slot comes back. */
    pz_identity id = ident("peer-1");
    assert_int_equal(pz_dos_admit_identity(f.dos, c1, &id, S, &v), 0);
    assert_int_equal(v.allowed, 1);
    assert_int_equal(pz_dos_admit_identity(f.dos, c1, &id, S, &v), PZ_EINVAL); /* twice */
    pz_dos_release(f.dos, c1, 2 * S);
    pz_dos_release(f.dos, NULL, 2 * S);
    assert_int_equal(pz_dos_admit_address(f.dos, &a, 2 * S, &c3, &v), 0);
    assert_int_equal(v.allowed, 1);
    pz_dos_release(f.dos, c2, 3 * S);
    pz_dos_release(f.dos, c3, 3 * S);
    fx_free(&f);
}

/* A later limiter's refusal releases the earlier ones: conn-limit's only
 * slot is free again after reputation refuses a banned address. */
static void test_refusal_undoes_earlier_limiters(void **state)
{
    (void)state;
    fx f;
    fx_new(&f, "  connection_limiters:\n"
               "    - {provider: conn-limit, name: cl, config: {max_connections: 1, new_per_address: {rate: 0}}}\n"
               "    - {provider: reputation, name: rep}\n");
    assert_int_equal(pz_dos_ban(f.dos, "198.51.100.0/24", 60 * S, S, &f.err), 0);
    pz_addr bad = ip4(198, 51, 100, 9), good = ip4(192, 0, 2, 1);
    pz_dos_conn *c;
    pz_dos_verdict v;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pz_dos_admit_address(f.dos, &bad, S, &c, &v), 0);
        assert_int_equal(v.allowed, 0);
        assert_string_equal(v.provider, "rep");
        assert_int_equal(v.reason, REP_BANNED_ADDRESS);
        assert_true(v.retry_after_ns == 59 * S + S); /* banned at S for 60 s */
    }
    assert_int_equal(pz_dos_admit_address(f.dos, &good, S, &c, &v), 0);
    assert_int_equal(v.allowed, 1);
    /* Identity stage: a banned node; conn-limit had admitted the identity
     * and is released at once, and pz_dos_release does not release twice. */
    assert_int_equal(pz_dos_ban(f.dos, "evil", 0, S, &f.err), 0);
    pz_identity id = ident("evil");
    assert_int_equal(pz_dos_admit_identity(f.dos, c, &id, S, &v), 0);
    assert_int_equal(v.allowed, 0);
    assert_string_equal(v.provider, "rep");
    assert_int_equal(v.reason, REP_BANNED_NODE);
    assert_int_equal(pz_dos_refusals(f.dos, PZ_DOS_STAGE_IDENTITY, "rep", REP_BANNED_NODE, 0), 1);
    pz_dos_conn *c2;
    assert_int_equal(pz_dos_admit_address(f.dos, &good, S, &c2, &v), 0);
    assert_int_equal(v.allowed, 1);
    assert_int_equal(pz_dos_admit_identity(f.dos, c, &id, S, &v), PZ_EINVAL); /* already refused */
    pz_dos_release(f.dos, c, S);
    pz_dos_conn *c3;
    assert_int_equal(pz_dos_admit_address(f.dos, &good, S, &c3, &v), 0);
    assert_int_equal(v.allowed, 0); /* c2 holds the only slot */
    pz_dos_release(f.dos, c2, S);
    assert_int_equal(pz_dos_refusals(f.dos, PZ_DOS_STAGE_ADDRESS, NULL, INT_MIN, 0), 4);
    fx_free(&f);
}

static void test_shadow_mode(void **state)
{
    (void)state;
    fx f;
    fx_new(&f, "  connection_limiters:\n"
               "    - provider: conn-limit\n"
               "      name: cl-shadow\n"
               "      shadow: true\n"
               "      config: {max_connections: 1, new_per_address: {rate: 0}}\n"
               "  rate_limiters:\n"
               "    - {provider: gcra, name: g, shadow: true, config: {rate: 1, burst: 1}}\n");
    pz_addr a = ip4(203, 0, 113, 1);
    pz_dos_conn *c[3];
    pz_dos_verdict v;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pz_dos_admit_address(f.dos, &a, S, &c[i], &v), 0);
        assert_int_equal(v.allowed, 1);
    }
    assert_int_equal(pz_dos_refusals(f.dos, PZ_DOS_STAGE_ADDRESS, "cl-shadow", CL_GLOBAL, 1), 2);
    assert_int_equal(pz_dos_refusals(f.dos, PZ_DOS_STAGE_ADDRESS, "cl-shadow", CL_GLOBAL, 0), 0);
    assert_true(logged("shadow: cl-shadow would refuse at address stage: reason 1: global limit 1 reached"));
    /* Only the connection it admitted is released to it: afterwards it
     * admits exactly one again. */
    for (int i = 0; i < 3; i++)
        pz_dos_release(f.dos, c[i], S);
    assert_int_equal(pz_dos_admit_address(f.dos, &a, S, &c[0], &v), 0);
    assert_int_equal(pz_dos_refusals(f.dos, 0, "cl-shadow", INT_MIN, 1), 2);
    pz_dos_release(f.dos, c[0], S);
    /* Requests: the shadow rate limiter would refuse the second. */
    for (int i = 0; i < 5; i++) {
        assert_int_equal(pz_dos_check_request(f.dos, "p", &a, "m", 2 * S, &v), 0);
        assert_int_equal(v.allowed, 1);
    }
    assert_int_equal(pz_dos_refusals(f.dos, PZ_DOS_STAGE_REQUEST, "g", RL_LIMIT, 1), 4);
    assert_int_equal(pz_dos_events(f.dos, PZ_BEHAVIOR_RATE_LIMITED), 0); /* nothing refused */
    /* Would-refuse lines are rate-limited. */
    g_ptr_array_set_size(logs, 0);
    for (int i = 0; i < 1000; i++)
        pz_dos_check_request(f.dos, "p", &a, "m", 10 * S, &v);
    guint lines = logs->len;
    assert_true(lines <= 21);
    pz_dos_check_request(f.dos, "p", &a, "m", 12 * S, &v); /* allowed */
    pz_dos_check_request(f.dos, "p", &a, "m", 12 * S, &v); /* would refuse: new window */
    assert_true(logged("shadow: 979 more would-refuse lines suppressed"));
    fx_free(&f);
}

/* ---- requests, status link, behaviour bus ------------------------------ */

static void test_requests_costs_and_status(void **state)
{
    (void)state;
    fx f;
    fx_new(&f, "  connection_limiters:\n"
               "    - provider: reputation\n"
               "      name: rep\n"
               "      config:\n"
               "        decay_half_life: 0\n"
               "        adjustments: {rate_limited: -22}\n"
               "  rate_limiters:\n"
               "    - provider: token-bucket\n"
               "      name: tb\n"
               "      method_costs: {chain.get_block: 3}\n"
               "      config: {capacity: 4, refill_per_second: 1, status_factors: {probation: 0.5}}\n");
    pz_addr a = ip4(192, 0, 2, 5);
    pz_dos_verdict v;
    /* Unknown peer: capacity 4; get_block costs 3. */
    assert_int_equal(pz_dos_peer_status(f.dos, "n", S), PZ_STATUS_UNKNOWN);
    assert_int_equal(pz_dos_check_request(f.dos, "n", &a, "chain.get_block", S, &v), 0);
    assert_int_equal(v.allowed, 1);
    assert_int_equal(pz_dos_check_request(f.dos, "n", &a, "chain.get_block", S, &v), 0);
    assert_int_equal(v.allowed, 0);
    assert_string_equal(v.provider, "tb");
    assert_int_equal(v.reason, RL_LIMIT);
    assert_true(v.retry_after_ns == 2 * S);
    assert_string_equal(v.detail, "chain.get_block: cost 3, 1.00 of 4.00 left");
    /* The refusal is a behaviour event: reputation now has the node at 28
     * (probation), and its budget is halved. */
    assert_int_equal(pz_dos_events(f.dos, PZ_BEHAVIOR_RATE_LIMITED), 1);
    assert_int_equal(pz_dos_peer_status(f.dos, "n", S), PZ_STATUS_PROBATION);
    assert_int_equal(pz_dos_check_request(f.dos, "n", &a, "ping", S, &v), 0);
    assert_int_equal(v.allowed, 1); /* 1 token left, capacity now 2 */
    assert_int_equal(pz_dos_check_request(f.dos, "n", &a, "chain.get_block", 100 * S, &v), 0);
    assert_int_equal(v.allowed, 0); /* cost 3 > capacity 2 */
    assert_int_equal(v.reason, 2);   /* PZ_RL_REASON_COST */
    /* Second refusal: score 6, blocked and banned: budget 0. */
    assert_int_equal(pz_dos_peer_status(f.dos, "n", 100 * S), PZ_STATUS_BLOCKED);
    assert_int_equal(pz_dos_check_request(f.dos, "n", &a, "ping", 100 * S, &v), 0);
    assert_int_equal(v.allowed, 0);
    assert_int_equal(v.reason, RL_STATUS);
    /* Others are unaffected; connection-level requests cost 1. */
    assert_int_equal(pz_dos_check_request(f.dos, "m", &a, NULL, 100 * S, &v), 0);
    assert_int_equal(v.allowed, 1);
    assert_int_equal(pz_dos_refusals(f.dos, PZ_DOS_STAGE_REQUEST, "tb", INT_MIN, 0), 3);
    assert_int_equal(pz_dos_events(f.dos, PZ_BEHAVIOR_RATE_LIMITED), 3);
    fx_free(&f);
}

static void test_behavior_bus(void **state)
{
    (void)state;
    fx f;
    fx_new(&f, "  connection_limiters:\n"
               "    - {provider: conn-limit, name: cl}\n"
               "    - {provider: reputation, name: rep, config: {decay_half_life: 0}}\n"
               "    - {provider: reputation, name: rep-shadow, shadow: true, config: {initial_score: 90}}\n");
    pz_dos_install(f.dos);
    pz_addr a = ip4(192, 0, 2, 5);
    pz_behavior_event e = {sizeof(e), PZ_BEHAVIOR_INVALID_SIGNATURE, "n", a, S, "bad sig"};
    /* Through the process-wide sink, as every provider's core->behavior. */
    pz_emit_behavior("rpc", &e);
    assert_int_equal(pz_dos_events(f.dos, PZ_BEHAVIOR_INVALID_SIGNATURE), 1);
    /* rep: 50 - 20; rep-shadow saw it too but, shadow, does not set status. */
    assert_int_equal(pz_dos_peer_status(f.dos, "n", S), PZ_STATUS_NEUTRAL);
    e.behavior = PZ_BEHAVIOR_REPLAY;
    pz_dos_behavior(f.dos, &e); /* 30 - 15 */
    assert_int_equal(pz_dos_peer_status(f.dos, "n", S), PZ_STATUS_PROBATION);
    assert_int_equal(pz_dos_events(f.dos, 0), 2);
    /* peer_info comes from the first non-shadow limiter that has it. */
    pz_peer_info info;
    assert_int_equal(pz_dos_peer_info(f.dos, "n", S, &info), 0);
    assert_true(info.score == 15);
    assert_int_equal(info.status, PZ_STATUS_PROBATION);
    assert_int_equal(info.n_history, 2);
    assert_int_equal(info.history[1].behavior, PZ_BEHAVIOR_REPLAY);
    assert_int_equal(pz_dos_peer_info(f.dos, "stranger", S, &info), PZ_ENOENT);
    assert_int_equal(pz_dos_peer_info(f.dos, NULL, S, &info), PZ_EINVAL);
    assert_int_equal(pz_dos_events_dropped(f.dos), 0);
    pz_dos_behavior(f.dos, NULL);
    assert_string_equal(pz_dos_behavior_name(PZ_BEHAVIOR_REPLAY), "replay");
    assert_string_equal(pz_dos_behavior_name((pz_behavior)99), "?");
    assert_string_equal(pz_behavior_name((pz_behavior)0), "?");
    /* Every behaviour has its own name, usable as a configuration key. */
    for (int i = 1; i < PZ_BEHAVIOR__COUNT; i++) {
        const char *n = pz_behavior_name((pz_behavior)i);
        assert_true(strspn(n, "abcdefghijklmnopqrstuvwxyz_") == strlen(n) && n[0] != '\0');
        for (int j = 1; j < i; j++)
            assert_string_not_equal(n, pz_behavior_name((pz_behavior)j));
    }
    assert_string_equal(pz_dos_stage_name(PZ_DOS_STAGE_REQUEST), "request");
    assert_string_equal(pz_dos_stage_name((pz_dos_stage)9), "?");
    fx_free(&f);
    /* The default sink is back: no one to deliver to, nothing breaks. */
    pz_emit_behavior("rpc", &e);
}

static void test_ban_and_flush(void **state)
{
    (void)state;
    fx f;
    fx_new(&f, "  connection_limiters:\n    - {provider: conn-limit, name: cl}\n");
    assert_int_equal(pz_dos_ban(f.dos, "x", 0, S, &f.err), PZ_ENOTSUP);
    assert_non_null(strstr(pz_err_msg(&f.err), "no connection limiter keeps bans"));
    assert_int_equal(pz_dos_unban(f.dos, "x", &f.err), PZ_ENOTSUP);
    assert_int_equal(pz_dos_flush(f.dos, &f.err), 0);
    fx_free(&f);

    GError *gerr = NULL;
    char *dir = g_dir_make_tmp("pz-dos-XXXXXX", &gerr);
    assert_non_null(dir);
    char *yaml = g_strdup_printf("  connection_limiters:\n"
                                 "    - {provider: reputation, name: rep, config: {data_dir: \"%s\"}}\n",
                                 dir);
    fx_new(&f, yaml);
    assert_int_equal(pz_dos_ban(f.dos, "bad id!", 0, S, &f.err), PZ_EINVAL);
    assert_non_null(strstr(pz_err_msg(&f.err), "rep: ban: \"bad id!\""));
    assert_int_equal(pz_dos_ban(f.dos, "villain", 3600 * S, pz_now_ns(), &f.err), 0);
    char *db = g_build_filename(dir, "reputation.db", NULL);
    assert_int_equal(access(db, F_OK), 0); /* a manual ban is saved at once */
    pz_addr a = ip4(192, 0, 2, 5);
    pz_behavior_event e = {sizeof(e), PZ_BEHAVIOR_TIMEOUT, "n", a, S, NULL};
    pz_dos_behavior(f.dos, &e);
    assert_int_equal(pz_dos_flush(f.dos, &f.err), 0);
    assert_int_equal(pz_dos_unban(f.dos, "villain", &f.err), 0);
    assert_int_equal(pz_dos_unban(f.dos, "villain", &f.err), PZ_ENOENT);
    assert_non_null(strstr(pz_err_msg(&f.err), "rep: unban: villain is not banned"));
    fx_free(&f);
    /* Restart: the state is back (one record: n; villain was unbanned but
     * is remembered). */
    fx_new(&f, yaml);
    assert_true(logged("loaded 2 records"));
    fx_free(&f);
    g_unlink(db);
    g_rmdir(dir);
    g_free(db);
    g_free(dir);
    g_free(yaml);
}

/* ---- construction errors ----------------------------------------------- */

static void test_errors(void **state)
{
    (void)state;
    static const struct {
        const char *yaml;
        int rc;
        const char *want;
    } cases[] = {
        {"  rate_limiters:\n    - {provider: no-such-limiter}\n", PZ_ENOENT,
         "test.yaml:4:7: dos.rate_limiters[0] (no-such-limiter)"},
        {"  rate_limiters:\n    - {provider: token-bucket, config: {capacity: lots}}\n", PZ_ECONFIG,
         "test.yaml:4:51: dos.rate_limiters[0].config.capacity"},
        {"  rate_limiters:\n    - {provider: gcra, config: {rat: 5}}\n", PZ_ECONFIG,
         "test.yaml:4:33: dos.rate_limiters[0].config.rat: unknown key"},
        {"  connection_limiters:\n    - {provider: token-bucket}\n", PZ_EABI, "token-bucket"},
        {"  connection_limiters:\n    - {provider: conn-limit}\n    - {provider: reputation, config: {history_size: "
         "-2}}\n",
         PZ_ECONFIG, "test.yaml:5:53: dos.connection_limiters[1].config.history_size"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fx f;
        int rc = fx_try(&f, cases[i].yaml);
        if (!rc || !strstr(pz_err_msg(&f.err), cases[i].want))
            fail_msg("case %zu: rc %d \"%s\", wanted \"%s\"", i, rc, pz_err_msg(&f.err), cases[i].want);
        if (cases[i].rc != PZ_EABI && rc != cases[i].rc)
            fail_msg("case %zu: rc %d, wanted %d", i, rc, cases[i].rc);
        assert_null(f.dos);
        fx_free(&f);
    }
    /* Too many connection limiters. */
    pz_settings_provider many[PZ_DOS_MAX_CONN_LIMITERS + 1];
    memset(many, 0, sizeof(many));
    pz_dos *dos = NULL;
    pz_err err;
    pz_err_init(&err);
    assert_int_equal(pz_dos_new(loader, many, PZ_DOS_MAX_CONN_LIMITERS + 1, NULL, 0, &dos, &err), PZ_EINVAL);
    assert_null(dos);
    pz_err_clear(&err);
    /* An entry without a provider name (a partial settings load). */
    assert_int_equal(pz_dos_new(loader, many, 1, NULL, 0, &dos, &err), PZ_EINVAL);
    assert_non_null(strstr(pz_err_msg(&err), "no provider name"));
    pz_err_clear(&err);
    /* No limiters at all: everything passes. */
    assert_int_equal(pz_dos_new(loader, NULL, 0, NULL, 0, &dos, &err), 0);
    pz_dos_conn *c;
    pz_dos_verdict v;
    pz_addr a = ip4(192, 0, 2, 1);
    assert_int_equal(pz_dos_admit_address(dos, &a, S, &c, &v), 0);
    assert_int_equal(v.allowed, 1);
    assert_int_equal(pz_dos_check_request(dos, NULL, &a, "m", S, &v), 0);
    assert_int_equal(v.allowed, 1);
    pz_dos_release(dos, c, S);
    pz_dos_free(dos);
    pz_dos_free(NULL);
}

static int count_cb(pz_dos_stage stage, const char *provider, int reason, int shadow, uint64_t count, void *ud)
{
    GString *s = ud;
    g_string_append_printf(s, "%s/%s/%d/%d=%llu;", pz_dos_stage_name(stage), provider, reason, shadow,
                           (unsigned long long)count);
    return 0;
}

static void test_foreach_refusal(void **state)
{
    (void)state;
    fx f;
    fx_new(&f, "  connection_limiters:\n"
               "    - {provider: conn-limit, name: cl, config: {max_connections: 1, new_per_address: {rate: 0}}}\n"
               "  rate_limiters:\n"
               "    - {provider: gcra, name: g1, config: {rate: 1, burst: 1}}\n"
               "    - {provider: gcra, name: g2, shadow: true, config: {rate: 1, burst: 1}}\n");
    pz_addr a = ip4(192, 0, 2, 1);
    pz_dos_conn *c, *d;
    pz_dos_verdict v;
    pz_dos_admit_address(f.dos, &a, S, &c, &v);
    pz_dos_admit_address(f.dos, &a, S, &d, &v);
    pz_dos_admit_address(f.dos, &a, S, &d, &v);
    pz_dos_check_request(f.dos, "p", &a, NULL, S, &v); /* both allow */
    pz_dos_check_request(f.dos, "p", &a, NULL, S, &v); /* g1 refuses: g2 not asked */
    pz_dos_check_request(f.dos, "q", &a, NULL, S, &v); /* allowed */
    pz_dos_check_request(f.dos, "q", &a, NULL, 2 * S, &v); /* allowed */
    GString *s = g_string_new("");
    assert_int_equal(pz_dos_foreach_refusal(f.dos, count_cb, s), 0);
    assert_string_equal(s->str, "address/cl/1/0=2;request/g1/1/0=1;");
    g_string_free(s, TRUE);
    pz_dos_release(f.dos, c, S);
    fx_free(&f);
}

int main(void)
{
    logs = g_ptr_array_new_with_free_func(g_free);
    const char *b = getenv("top_builddir");
    char *dir = g_strdup_printf("%s/plugins/.libs", b ? b : PZ_TEST_BUILDDIR);
    const char *dirs[] = {dir};
    if (pz_loader_new_path(dirs, 1, PZ_LOADER_NO_ENV | PZ_LOADER_NO_PLUGINDIR, &loader, NULL)) {
        fprintf(stderr, "cannot create the loader\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_chain_admits_and_counts, setup),
        cmocka_unit_test_setup(test_refusal_undoes_earlier_limiters, setup),
        cmocka_unit_test_setup(test_shadow_mode, setup),
        cmocka_unit_test_setup(test_requests_costs_and_status, setup),
        cmocka_unit_test_setup(test_behavior_bus, setup),
        cmocka_unit_test_setup(test_ban_and_flush, setup),
        cmocka_unit_test_setup(test_errors, setup),
        cmocka_unit_test_setup(test_foreach_refusal, setup),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    pz_loader_free(loader);
    pz_core_set_hooks(NULL);
    g_ptr_array_free(logs, TRUE);
    g_free(dir);
    return rc;
}
