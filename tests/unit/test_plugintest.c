/* tests/unit/test_plugintest.c — libprozsec-plugintest, used the way a
 * plugin author uses it: only <prozsec/plugintest.h>, the pz_core table
 * and cmocka. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <prozsec/plugintest.h>

/* A miniature provider, as a plugin would write it. */
typedef struct toy {
    const pz_core *core;
    int64_t capacity;
    double refill;
    uint64_t window_ns;
    uint64_t max_bytes;
    int shadow;
    const char *mode;
    unsigned char *secret;
} toy;

static int toy_create(const pz_core *core, const pz_conf *conf, void **state, pz_err *err)
{
    int rc = 0;
    toy *t = calloc(1, sizeof(*t));
    if (!t)
        return core->error(core, err, PZ_ENOMEM, "out of memory");
    t->core = core;
    if ((rc = core->conf_int(conf, "capacity", 100, 1, 1000000, &t->capacity, err)) < 0 ||
        (rc = core->conf_double(conf, "refill", 10, 0, 1000000, &t->refill, err)) < 0 ||
        (rc = core->conf_duration(conf, "window", 1000000000ull, &t->window_ns, err)) < 0 ||
        (rc = core->conf_size(conf, "max_bytes", 65536, &t->max_bytes, err)) < 0 ||
        (rc = core->conf_bool(conf, "shadow", 0, &t->shadow, err)) < 0 ||
        (rc = core->conf_string(conf, "mode", "peer", &t->mode, err)) < 0)
        goto out;
    if (strcmp(t->mode, "peer") && strcmp(t->mode, "address")) {
        const pz_conf *node = NULL;
        for (size_t i = 0; i < core->conf_len(conf); i++) {
            const char *k = NULL;
            const pz_conf *v = core->conf_at(conf, i, &k);
            if (!strcmp(k, "mode"))
                node = v;
        }
        rc = core->conf_error(node, err, "expected peer or address, found \"%s\"", t->mode);
        goto out;
    }
    if (!(t->secret = core->secure_alloc(core, 32))) {
        rc = core->error(core, err, PZ_ENOMEM, "out of secure memory");
        goto out;
    }
    if ((rc = core->random(core, t->secret, 32)) < 0) {
        core->error(core, err, rc, "no randomness");
        goto out;
    }
    core->log(core, PZ_LOG_INFO, "capacity %lld, refill %g", (long long)t->capacity, t->refill);
    core->metric_set(core, "capacity", NULL, t->capacity);
out:
    if (rc < 0) {
        core->secure_free(core, t->secret);
        free(t);
        return rc;
    }
    *state = t;
    return 0;
}

static void toy_destroy(void *state)
{
    toy *t = state;
    if (!t)
        return;
    t->core->secure_free(t->core, t->secret);
    free(t);
}

static void toy_request(toy *t, const char *peer, int ok)
{
    const pz_core *core = t->core;
    core->metric_add(core, "requests_total", ok ? "allowed" : "refused", 1);
    if (!ok) {
        pz_behavior_event ev = {
            .struct_size = sizeof(ev),
            .behavior = PZ_BEHAVIOR_RATE_LIMITED,
            .node_id = peer,
            .now_ns = core->monotonic_ns(core),
            .detail = "over capacity",
        };
        core->behavior(core, &ev);
        core->log(core, PZ_LOG_WARNING, "refused %s", peer);
    }
}

/* ------------------------------------------------------------------------ */

static void test_table_is_complete(void **state)
{
    (void)state;
    pz_mock *m = pz_mock_new();
    assert_non_null(m);
    const pz_core *c = pz_mock_core(m);
    assert_int_equal(c->struct_size, sizeof(pz_core));
    assert_int_equal(c->abi_major, PZ_ABI_MAJOR);
    assert_int_equal(c->abi_minor, PZ_ABI_MINOR);
    /* Every member after the header is a function pointer; none is NULL. */
    const char *p = (const char *)c + offsetof(pz_core, log);
    for (size_t off = offsetof(pz_core, log); off + sizeof(void (*)(void)) <= sizeof(pz_core);
         off += sizeof(void (*)(void)), p += sizeof(void (*)(void))) {
        void (*fn)(void);
        memcpy(&fn, p, sizeof(fn));
        assert_non_null(fn);
    }
    pz_mock_free(m);
    pz_mock_free(NULL);
}

static void test_provider_happy_path(void **state)
{
    (void)state;
    pz_mock *m = pz_mock_new();
    const pz_conf *conf = NULL;
    void *st = NULL;
    assert_int_equal(pz_mock_conf(m,
                                  "capacity: 10\n"
                                  "refill: 2.5\n"
                                  "window: 250ms\n"
                                  "max_bytes: 1MiB\n"
                                  "shadow: yes\n"
                                  "mode: address\n",
                                  &conf),
                     0);
    assert_int_equal(toy_create(pz_mock_core(m), conf, &st, pz_mock_err(m)), 0);
    assert_int_equal(pz_mock_check_unused(m, conf), 0);
    assert_int_equal(pz_mock_err_code(m), 0);
    assert_string_equal(pz_mock_err_msg(m), "");
    toy *t = st;
    assert_int_equal(t->capacity, 10);
    assert_true(t->refill == 2.5);
    assert_int_equal(t->window_ns, 250000000);
    assert_int_equal(t->max_bytes, 1048576);
    assert_int_equal(t->shadow, 1);
    assert_string_equal(t->mode, "address");
    assert_int_equal(pz_mock_secure_in_use(m), 1);

    assert_int_equal(pz_mock_log_count(m), 1);
    pz_log_level lvl = PZ_LOG_ERROR;
    assert_string_equal(pz_mock_log_at(m, 0, &lvl), "capacity 10, refill 2.5");
    assert_int_equal(lvl, PZ_LOG_INFO);
    assert_null(pz_mock_log_at(m, 1, &lvl));
    assert_int_equal(pz_mock_metric(m, "capacity", NULL), 10);

    toy_request(t, "node-a", 1);
    toy_request(t, "node-a", 1);
    pz_mock_advance(m, 5000);
    toy_request(t, "node-b", 0);
    assert_int_equal(pz_mock_metric(m, "requests_total", "allowed"), 2);
    assert_int_equal(pz_mock_metric(m, "requests_total", "refused"), 1);
    assert_int_equal(pz_mock_metric(m, "requests_total", NULL), 0);
    assert_int_equal(pz_mock_metric(m, "never", NULL), 0);
    assert_true(pz_mock_log_contains(m, "refused node-b"));
    assert_false(pz_mock_log_contains(m, "refused node-a"));

    assert_int_equal(pz_mock_event_count(m), 1);
    const pz_behavior_event *ev = pz_mock_event_at(m, 0);
    assert_non_null(ev);
    assert_int_equal(ev->behavior, PZ_BEHAVIOR_RATE_LIMITED);
    assert_string_equal(ev->node_id, "node-b");
    assert_string_equal(ev->detail, "over capacity");
    assert_int_equal(ev->now_ns, PZ_MOCK_MONOTONIC_START_NS + 5000);
    assert_null(pz_mock_event_at(m, 1));

    pz_mock_clear_logs(m);
    pz_mock_clear_events(m);
    assert_int_equal(pz_mock_log_count(m), 0);
    assert_int_equal(pz_mock_event_count(m), 0);

    toy_destroy(st);
    assert_int_equal(pz_mock_secure_in_use(m), 0);
    pz_mock_free(m);
}

typedef struct bad_case {
    const char *yaml;
    int rc;
    const char *msg;
} bad_case;

static void test_provider_bad_config(void **state)
{
    (void)state;
    static const bad_case cases[] = {
        {"capacity: 0\n", PZ_ECONFIG,
         "test.yaml:1:11: capacity: expected an integer between 1 and 1000000, found \"0\""},
        {"refill: fast\n", PZ_ECONFIG,
         "test.yaml:1:9: refill: expected a number between 0 and 1000000, found \"fast\""},
        {"window: soon\n", PZ_ECONFIG,
         "test.yaml:1:9: window: expected a duration such as 250ms, 30s, 5m, 2h or 1d, found \"soon\""},
        {"max_bytes: lots\n", PZ_ECONFIG,
         "test.yaml:1:12: max_bytes: expected a size such as 512, 64KiB, 1MiB or 1MB, found \"lots\""},
        {"shadow: \"yes\"\n", PZ_ECONFIG,
         "test.yaml:1:9: shadow: expected true or false, found \"yes\" (quoted, so a string: remove the quotes)"},
        {"mode: [a]\n", PZ_ECONFIG, "test.yaml:1:7: mode: expected a string, found a list"},
        {"\nmode: node\n", PZ_ECONFIG, "test.yaml:2:7: mode: expected peer or address, found \"node\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pz_mock *m = pz_mock_new();
        const pz_conf *conf = NULL;
        void *st = NULL;
        assert_int_equal(pz_mock_conf(m, cases[i].yaml, &conf), 0);
        int rc = toy_create(pz_mock_core(m), conf, &st, pz_mock_err(m));
        if (rc != cases[i].rc || strcmp(pz_mock_err_msg(m), cases[i].msg))
            fail_msg("case %zu: [%d] %s", i, rc, pz_mock_err_msg(m));
        assert_int_equal(pz_mock_err_code(m), cases[i].rc);
        assert_null(st);
        assert_int_equal(pz_mock_secure_in_use(m), 0);
        pz_mock_err_clear(m);
        assert_int_equal(pz_mock_err_code(m), 0);
        pz_mock_free(m);
    }
}

static void test_unknown_keys(void **state)
{
    (void)state;
    pz_mock *m = pz_mock_new();
    const pz_conf *conf = NULL;
    void *st = NULL;
    assert_int_equal(pz_mock_conf(m, "capacity: 5\ncapcity: 6\nextra: {a: 1}\n", &conf), 0);
    assert_int_equal(toy_create(pz_mock_core(m), conf, &st, pz_mock_err(m)), 0);
    assert_int_equal(pz_mock_check_unused(m, conf), PZ_ECONFIG);
    assert_string_equal(pz_mock_err_msg(m), "test.yaml:2:1: capcity: unknown key\n"
                                            "test.yaml:3:1: extra: unknown key");
    toy_destroy(st);
    pz_mock_free(m);
}

static void test_conf_errors(void **state)
{
    (void)state;
    pz_mock *m = pz_mock_new();
    const pz_conf *conf = (const pz_conf *)m;
    assert_int_equal(pz_mock_conf(m, "a: [1\n", &conf), PZ_ECONFIG);
    assert_null(conf);
    assert_string_equal(pz_mock_err_msg(m), "test.yaml:2:1: invalid YAML: did not find expected ',' or ']' "
                                            "(while parsing a flow sequence at line 1, column 4)");
    assert_int_equal(pz_mock_conf(m, "a: &x 1\n", &conf), PZ_ECONFIG);
    assert_int_equal(pz_mock_conf(m, NULL, &conf), PZ_EINVAL);
    /* An empty document is an empty map: every default. */
    assert_int_equal(pz_mock_conf(m, "", &conf), 0);
    assert_non_null(conf);
    void *st = NULL;
    assert_int_equal(toy_create(pz_mock_core(m), conf, &st, pz_mock_err(m)), 0);
    assert_int_equal(((toy *)st)->capacity, 100);
    toy_destroy(st);
    /* NULL configuration: all defaults too. */
    assert_int_equal(toy_create(pz_mock_core(m), NULL, &st, pz_mock_err(m)), 0);
    toy_destroy(st);
    pz_mock_free(m);
}

static void test_clocks(void **state)
{
    (void)state;
    pz_mock *m = pz_mock_new();
    const pz_core *c = pz_mock_core(m);
    assert_int_equal(c->monotonic_ns(c), PZ_MOCK_MONOTONIC_START_NS);
    assert_int_equal(c->realtime_ns(c), PZ_MOCK_REALTIME_START_NS);
    pz_mock_advance(m, 1500);
    assert_int_equal(c->monotonic_ns(c), PZ_MOCK_MONOTONIC_START_NS + 1500);
    assert_int_equal(c->realtime_ns(c), PZ_MOCK_REALTIME_START_NS + 1500);
    pz_mock_set_time(m, 42);
    assert_int_equal(c->monotonic_ns(c), 42);
    assert_int_equal(c->realtime_ns(c), PZ_MOCK_REALTIME_START_NS + 1500);
    pz_mock_set_realtime(m, 7);
    assert_int_equal(c->realtime_ns(c), 7);
    assert_int_equal(c->monotonic_ns(c), 42);
    pz_mock_free(m);
}

static void test_random(void **state)
{
    (void)state;
    pz_mock *m = pz_mock_new();
    const pz_core *c = pz_mock_core(m);
    unsigned char a[37], b[37], z[37] = {0};
    pz_mock_seed(m, 99);
    assert_int_equal(c->random(c, a, sizeof(a)), 0);
    pz_mock_seed(m, 99);
    assert_int_equal(c->random(c, b, sizeof(b)), 0);
    assert_memory_equal(a, b, sizeof(a));
    assert_memory_not_equal(a, z, sizeof(a));
    /* The stream moves on; another seed gives other bytes. */
    assert_int_equal(c->random(c, b, sizeof(b)), 0);
    assert_memory_not_equal(a, b, sizeof(a));
    pz_mock_seed(m, 100);
    assert_int_equal(c->random(c, b, sizeof(b)), 0);
    assert_memory_not_equal(a, b, sizeof(a));
    /* Failure on demand leaves the buffer alone. */
    memset(b, 0xAA, sizeof(b));
    pz_mock_set_random_fail(m, 1);
    assert_int_equal(c->random(c, b, sizeof(b)), PZ_ECRYPTO);
    for (size_t i = 0; i < sizeof(b); i++)
        assert_int_equal(b[i], 0xAA);
    pz_mock_set_random_fail(m, 0);
    assert_int_equal(c->random(c, b, 0), 0);
    pz_mock_free(m);

    /* The provider's error path. */
    m = pz_mock_new();
    void *st = NULL;
    pz_mock_set_random_fail(m, 1);
    assert_int_equal(toy_create(pz_mock_core(m), NULL, &st, pz_mock_err(m)), PZ_ECRYPTO);
    assert_string_equal(pz_mock_err_msg(m), "no randomness");
    assert_int_equal(pz_mock_secure_in_use(m), 0);
    pz_mock_free(m);
}

static void test_secure_memory(void **state)
{
    (void)state;
    pz_mock *m = pz_mock_new();
    const pz_core *c = pz_mock_core(m);
    unsigned char *p = c->secure_alloc(c, 64);
    assert_non_null(p);
    for (size_t i = 0; i < 64; i++)
        assert_int_equal(p[i], 0);
    assert_int_equal((uintptr_t)p % _Alignof(max_align_t), 0);
    memset(p, 0x5A, 64);
    void *q = c->secure_alloc(c, 0);
    assert_non_null(q);
    assert_int_equal(pz_mock_secure_in_use(m), 2);
    c->secure_free(c, p);
    c->secure_free(c, q);
    c->secure_free(c, NULL);
    assert_int_equal(pz_mock_secure_in_use(m), 0);
    assert_null(c->secure_alloc(c, SIZE_MAX));
    pz_mock_set_secure_fail(m, 1);
    assert_null(c->secure_alloc(c, 16));
    void *st = NULL;
    assert_int_equal(toy_create(c, NULL, &st, pz_mock_err(m)), PZ_ENOMEM);
    assert_string_equal(pz_mock_err_msg(m), "out of secure memory");
    pz_mock_set_secure_fail(m, 0);
    assert_int_equal(pz_mock_secure_in_use(m), 0);
    pz_mock_free(m);
}

static void test_metrics_and_misuse(void **state)
{
    (void)state;
    pz_mock *m = pz_mock_new();
    const pz_core *c = pz_mock_core(m);
    c->metric_add(c, "hits", NULL, 3);
    c->metric_add(c, "hits", NULL, -1);
    c->metric_set(c, "level", "x", 9);
    c->metric_set(c, "level", "x", 4);
    c->metric_add(c, "level", "y", 1);
    assert_int_equal(pz_mock_metric(m, "hits", NULL), 2);
    assert_int_equal(pz_mock_metric(m, "level", "x"), 4);
    assert_int_equal(pz_mock_metric(m, "level", "y"), 1);
    assert_int_equal(pz_mock_log_count(m), 0);
    /* A bad name is recorded and flagged as a provider bug. */
    c->metric_add(c, "Bad-Name", NULL, 1);
    assert_int_equal(pz_mock_metric(m, "Bad-Name", NULL), 1);
    pz_log_level lvl;
    assert_string_equal(pz_mock_log_at(m, 0, &lvl), "pz_mock: invalid metric name \"Bad-Name\" (must be [a-z0-9_]+)");
    assert_int_equal(lvl, PZ_LOG_ERROR);
    c->metric_add(c, NULL, NULL, 1);
    assert_int_equal(pz_mock_log_count(m), 2);
    /* Freeing foreign memory through secure_free is flagged, not fatal. */
    struct {
        size_t a, b;
        max_align_t user;
    } fake = {0};
    c->secure_free(c, &fake.user);
    assert_true(pz_mock_log_contains(m, "secure_free of a pointer"));
    pz_mock_free(m);
}

static void test_events(void **state)
{
    (void)state;
    pz_mock *m = pz_mock_new();
    const pz_core *c = pz_mock_core(m);
    char id[] = "peer-1";
    pz_behavior_event ev = {
        .struct_size = sizeof(ev),
        .behavior = PZ_BEHAVIOR_REPLAY,
        .node_id = id,
        .addr = {.family = PZ_AF_INET, .bytes = {10, 0, 0, 1}, .port = 4000},
        .now_ns = 77,
        .detail = NULL,
    };
    c->behavior(c, &ev);
    id[0] = 'X'; /* the mock kept its own copy */
    /* An older emitter whose struct stops before node_id. */
    pz_behavior_event old = {.struct_size = offsetof(pz_behavior_event, node_id),
                             .behavior = PZ_BEHAVIOR_TIMEOUT,
                             .node_id = "not copied"};
    c->behavior(c, &old);
    c->behavior(c, NULL);
    assert_int_equal(pz_mock_event_count(m), 2);
    const pz_behavior_event *e = pz_mock_event_at(m, 0);
    assert_int_equal(e->struct_size, sizeof(pz_behavior_event));
    assert_int_equal(e->behavior, PZ_BEHAVIOR_REPLAY);
    assert_string_equal(e->node_id, "peer-1");
    assert_null(e->detail);
    assert_int_equal(e->addr.family, PZ_AF_INET);
    assert_int_equal(e->addr.bytes[3], 1);
    assert_int_equal(e->addr.port, 4000);
    assert_int_equal(e->now_ns, 77);
    e = pz_mock_event_at(m, 1);
    assert_int_equal(e->behavior, PZ_BEHAVIOR_TIMEOUT);
    assert_null(e->node_id);
    assert_int_equal(e->now_ns, 0);
    pz_mock_free(m);
}

static void test_error_sink(void **state)
{
    (void)state;
    pz_mock *m = pz_mock_new();
    const pz_core *c = pz_mock_core(m);
    assert_int_equal(c->error(c, pz_mock_err(m), PZ_EINVAL, "bad %s", "thing"), PZ_EINVAL);
    assert_string_equal(pz_mock_err_msg(m), "bad thing");
    assert_int_equal(pz_mock_err_code(m), PZ_EINVAL);
    assert_int_equal(c->error(c, pz_mock_err(m), PZ_ERANGE, "second"), PZ_ERANGE);
    assert_string_equal(pz_mock_err_msg(m), "second");
    assert_int_equal(c->error(c, NULL, PZ_EIO, "nowhere"), PZ_EIO);
    pz_mock_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_is_complete),
        cmocka_unit_test(test_provider_happy_path),
        cmocka_unit_test(test_provider_bad_config),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_conf_errors),
        cmocka_unit_test(test_clocks),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_secure_memory),
        cmocka_unit_test(test_metrics_and_misuse),
        cmocka_unit_test(test_events),
        cmocka_unit_test(test_error_sink),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
