/* tests/unit/test_gcra.c — the GCRA rate limiter, its sources compiled in,
 * against the mock core (libprozsec-plugintest). Time is passed in. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <prozsec/plugintest.h>
#include <prozsec/ratelimit.h>

#include "../../plugins/common/rlcommon.h"
#include "../../plugins/gcra/gcra.h"

#define S 1000000000ull
#define MS 1000000ull

static const pz_ratelimit_provider *gp(void)
{
    const pz_plugin_descriptor *d = pz_plugin_entry_v1();
    assert_int_equal(d->kind, PZ_KIND_RATELIMIT);
    assert_string_equal(d->name, "gcra");
    return d->provider;
}

typedef struct fx {
    pz_mock *m;
    void *st;
} fx;

static void fx_new(fx *f, const char *yaml)
{
    const pz_conf *conf = NULL;
    f->m = pz_mock_new();
    assert_non_null(f->m);
    if (yaml)
        assert_int_equal(pz_mock_conf(f->m, yaml, &conf), 0);
    int rc = gp()->create(pz_mock_core(f->m), conf, &f->st, pz_mock_err(f->m));
    if (rc)
        fail_msg("create: %s", pz_mock_err_msg(f->m));
    if (conf && pz_mock_check_unused(f->m, conf))
        fail_msg("unused: %s", pz_mock_err_msg(f->m));
}

static void fx_free(fx *f)
{
    gp()->destroy(f->st);
    pz_mock_free(f->m);
}

static pz_addr the_addr = {PZ_AF_INET6, {0x20, 0x01, 0x0d, 0xb8, [15] = 1}, 443};

static pz_rl_decision ask_st(fx *f, const char *node, uint32_t cost, pz_peer_status st, uint64_t now)
{
    pz_rl_request r = {sizeof(r), node, &the_addr, "m", cost, st, now};
    pz_rl_decision d = {sizeof(d), 0, 0, 0, 0, 0};
    assert_int_equal(gp()->allow(f->st, &r, &d), 0);
    return d;
}

static pz_rl_decision ask(fx *f, const char *node, uint32_t cost, uint64_t now)
{
    return ask_st(f, node, cost, PZ_STATUS_UNKNOWN, now);
}

static pz_rl_usage usage(fx *f, const char *node, uint64_t now)
{
    pz_rl_request r = {sizeof(r), node, &the_addr, NULL, 1, PZ_STATUS_UNKNOWN, now};
    pz_rl_usage u = {sizeof(u), 0, 0, 0, 0};
    assert_int_equal(gp()->get_usage(f->st, &r, &u), 0);
    return u;
}

static uint64_t rng_state = 0x243f6a8885a308d3ull;
static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static void test_burst_then_rate_with_retry_after(void **state)
{
    (void)state;
    fx f;
    fx_new(&f, "rate: 2\nburst: 10\n");
    uint64_t t0 = 7 * S;
    for (int i = 0; i < 10; i++) {
        pz_rl_decision d = ask(&f, "a", 1, t0);
        assert_int_equal(d.allowed, 1);
        assert_true(d.remaining == 9 - i);
        assert_true(d.limit == 10);
    }
    pz_rl_decision d = ask(&f, "a", 1, t0);
    assert_int_equal(d.allowed, 0);
    assert_int_equal(d.reason, PZ_RL_REASON_LIMIT);
    assert_true(d.retry_after_ns == S / 2);
    /* Exactly at retry_after it passes; a nanosecond earlier it does not. */
    assert_int_equal(ask(&f, "a", 1, t0 + S / 2 - 1).allowed, 0);
    assert_int_equal(ask(&f, "a", 1, t0 + S / 2).allowed, 1);
    /* Cost 3 needs 1.5 s more. */
    d = ask(&f, "a", 3, t0 + S / 2);
    assert_int_equal(d.allowed, 0);
    assert_true(d.retry_after_ns == 3 * S / 2);
    assert_int_equal(ask(&f, "a", 3, t0 + 2 * S).allowed, 1);
    /* Other keys are untouched. */
    assert_int_equal(ask(&f, "b", 10, t0).allowed, 1);
    /* After a long pause the key is full again, never fuller. */
    assert_int_equal(ask(&f, "a", 10, t0 + 3600 * S).allowed, 1);
    assert_int_equal(ask(&f, "a", 1, t0 + 3600 * S).allowed, 0);
    fx_free(&f);
}

static void test_costs_and_status(void **state)
{
    (void)state;
    static const struct {
        pz_peer_status status;
        uint32_t cost;
        int allowed, reason;
        double limit;
    } cases[] = {
        {PZ_STATUS_UNKNOWN, 1, 1, 0, 40},
        {PZ_STATUS_UNKNOWN, 40, 1, 0, 40},
        {PZ_STATUS_UNKNOWN, 41, 0, PZ_RL_REASON_COST, 40},
        {PZ_STATUS_UNKNOWN, 0, 1, 0, 40}, /* 0 counts as 1 */
        {PZ_STATUS_NEUTRAL, 40, 1, 0, 40},
        {PZ_STATUS_TRUSTED, 80, 1, 0, 80},
        {PZ_STATUS_TRUSTED, 81, 0, PZ_RL_REASON_COST, 80},
        {PZ_STATUS_PROBATION, 10, 1, 0, 10},
        {PZ_STATUS_PROBATION, 11, 0, PZ_RL_REASON_COST, 10},
        {PZ_STATUS_BLOCKED, 1, 0, PZ_RL_REASON_STATUS, 0},
        {(pz_peer_status)77, 40, 1, 0, 40}, /* out of range: unknown */
        {PZ_STATUS_UNKNOWN, UINT32_MAX, 0, PZ_RL_REASON_COST, 40},
    };
    /* Each case for a new key and for a known key that is full again (a
     * different code path: known keys that pass take a short one). */
    for (int known = 0; known < 2; known++) {
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            fx f;
            fx_new(&f, "rate: 4\nburst: 40\n");
            uint64_t t = S;
            if (known) {
                assert_int_equal(ask(&f, "p", 7, S).allowed, 1);
                t = 100 * S;
            }
            pz_rl_decision d = ask_st(&f, "p", cases[i].cost, cases[i].status, t);
            if (d.allowed != cases[i].allowed || d.reason != cases[i].reason || d.limit != cases[i].limit)
                fail_msg("case %zu%s: allowed %d reason %d limit %g", i, known ? " (known key)" : "",
                         d.allowed, d.reason, d.limit);
            double left =
                cases[i].allowed ? cases[i].limit - (cases[i].cost ? cases[i].cost : 1) : cases[i].limit;
            if (d.remaining != left)
                fail_msg("case %zu%s: remaining %g, expected %g", i, known ? " (known key)" : "", d.remaining,
                         left);
            fx_free(&f);
        }
    }
}

/* Every field of a decision is written, whatever the path (see the
 * token-bucket test of the same name). */
static void check_fields(fx *f, const char *node, uint32_t cost, uint64_t now, int allowed, int reason,
                         double remaining, double limit, uint64_t retry)
{
    pz_rl_request r = {sizeof(r), node, &the_addr, "m", cost, PZ_STATUS_UNKNOWN, now};
    pz_rl_decision d;
    memset(&d, 0x5a, sizeof(d));
    d.struct_size = sizeof(d);
    assert_int_equal(gp()->allow(f->st, &r, &d), 0);
    if (d.struct_size != sizeof(d) || d.allowed != allowed || d.reason != reason ||
        d.remaining != remaining || d.limit != limit || d.retry_after_ns != retry)
        fail_msg("%s cost %u: allowed %d reason %d remaining %g limit %g retry %llu",
                 node ? node : "(address)", cost, d.allowed, d.reason, d.remaining, d.limit,
                 (unsigned long long)d.retry_after_ns);
}

static void test_decision_fields(void **state)
{
    (void)state;
    static const char *const ids[] = {"p", "sixteen-bytes-id", "a-peer-id-of-forty-bytes-0123456789abcde",
                                      NULL};
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        fx f;
        fx_new(&f, ids[i] ? "rate: 2\nburst: 4\n" : "rate: 2\nburst: 4\nkey: address\n");
        check_fields(&f, ids[i], 1, S, 1, 0, 3, 4, 0);                      /* new key */
        check_fields(&f, ids[i], 2, S, 1, 0, 1, 4, 0);                      /* known, passes */
        check_fields(&f, ids[i], 2, S, 0, PZ_RL_REASON_LIMIT, 1, 4, S / 2); /* refused */
        check_fields(&f, ids[i], 5, S, 0, PZ_RL_REASON_COST, 1, 4, 0);
        check_fields(&f, ids[i], 0, S + S / 2, 1, 0, 1, 4, 0); /* 0 counts as 1; +1 regained */
        check_fields(&f, ids[i], 1, 10 * S, 1, 0, 3, 4, 0);    /* full again */
        fx_free(&f);
    }
}

/* Allowed cost over any run <= burst + rate * elapsed; the remaining
 * budget reported stays within [0, burst]. */
static void test_invariants_long_run(void **state)
{
    (void)state;
    static const struct {
        double rate, burst;
    } params[] = {{1, 10}, {33.3, 100}, {0.125, 7.5}, {1e4, 1000}, {1e-3, 3}, {3, 1}};
    for (size_t p = 0; p < sizeof(params) / sizeof(params[0]); p++) {
        char yaml[128];
        snprintf(yaml, sizeof(yaml), "rate: %g\nburst: %g\n", params[p].rate, params[p].burst);
        fx f;
        fx_new(&f, yaml);
        double rate = params[p].rate, burst = params[p].burst;
        uint64_t t0 = 10 * S, now = t0, allowed = 0, maxcost = (uint64_t)burst;
        double gap = 1.0 / rate / 4 * 1e9;
        for (int i = 0; i < 200000; i++) {
            now += (uint64_t)((double)(rnd() % 1000) / 500.0 * gap);
            uint32_t cost = (uint32_t)(1 + rnd() % (maxcost < 3 ? maxcost : 3));
            pz_rl_decision d = ask(&f, "k", cost, now);
            assert_true(d.remaining >= 0 && d.remaining <= burst);
            if (d.allowed)
                allowed += cost;
            else
                assert_true(d.reason == PZ_RL_REASON_LIMIT && d.retry_after_ns > 0);
            double bound = burst + rate * (double)(now - t0) / 1e9;
            if ((double)allowed > bound)
                fail_msg("params %zu step %d: allowed %llu > %.9f", p, i, (unsigned long long)allowed, bound);
            pz_rl_usage u = usage(&f, "k", now);
            assert_true(u.available >= 0 && u.available <= burst);
        }
        assert_true((double)allowed >= 0.8 * rate * (double)(now - t0) / 1e9);
        fx_free(&f);
    }
}

static void test_retry_after_is_exact(void **state)
{
    (void)state;
    fx f;
    fx_new(&f, "rate: 7\nburst: 3\n");
    uint64_t now = S;
    for (int i = 0; i < 2000; i++) {
        uint32_t cost = (uint32_t)(1 + rnd() % 3);
        pz_rl_decision d = ask(&f, "k", cost, now);
        if (!d.allowed) {
            assert_int_equal(d.reason, PZ_RL_REASON_LIMIT);
            /* Asking again just before is refused; at retry_after allowed. */
            assert_int_equal(ask(&f, "k", cost, now + d.retry_after_ns - 1).allowed, 0);
            assert_int_equal(ask(&f, "k", cost, now + d.retry_after_ns).allowed, 1);
            now += d.retry_after_ns;
        }
        now += rnd() % (S / 10);
    }
    fx_free(&f);
}

static void test_update_config_keeps_level(void **state)
{
    (void)state;
    fx f;
    fx_new(&f, "rate: 1\nburst: 10\n");
    pz_mock_set_time(f.m, 100 * S);
    assert_int_equal(ask(&f, "a", 6, 100 * S).allowed, 1);
    assert_true(usage(&f, "a", 100 * S).available == 4);
    const pz_conf *c;
    /* Bigger burst, same rate: the level (4) is kept. */
    assert_int_equal(pz_mock_conf(f.m, "rate: 1\nburst: 100\n", &c), 0);
    assert_int_equal(gp()->update_config(f.st, c, pz_mock_err(f.m)), 0);
    pz_rl_usage u = usage(&f, "a", 100 * S);
    assert_true(u.available > 3.999999 && u.available < 4.000001);
    assert_true(u.capacity == 100);
    /* Smaller burst: clamped. */
    assert_int_equal(pz_mock_conf(f.m, "rate: 1\nburst: 2\n", &c), 0);
    assert_int_equal(gp()->update_config(f.st, c, pz_mock_err(f.m)), 0);
    assert_true(usage(&f, "a", 100 * S).available == 2);
    /* Faster rate: level kept, refills faster from now. */
    assert_int_equal(pz_mock_conf(f.m, "rate: 4\nburst: 10\n", &c), 0);
    assert_int_equal(gp()->update_config(f.st, c, pz_mock_err(f.m)), 0);
    u = usage(&f, "a", 100 * S + S / 2);
    assert_true(u.available > 3.999999 && u.available < 4.000001);
    /* Bad: old settings stay. */
    assert_int_equal(pz_mock_conf(f.m, "rate: 0\nburst: 10\n", &c), 0);
    assert_int_equal(gp()->update_config(f.st, c, pz_mock_err(f.m)), PZ_ECONFIG);
    assert_non_null(strstr(pz_mock_err_msg(f.m), "test.yaml:1:7: rate"));
    assert_true(usage(&f, "a", 100 * S + S).available > 5.999999);
    /* Changing the key forgets every key. */
    assert_int_equal(pz_mock_conf(f.m, "rate: 4\nburst: 10\nkey: peer_method\nmax_keys: 100\n", &c), 0);
    assert_int_equal(gp()->update_config(f.st, c, pz_mock_err(f.m)), 0);
    size_t keys = 1;
    pz__gcra_stats(f.st, &keys, NULL, NULL, NULL);
    assert_int_equal(keys, 0);
    fx_free(&f);
}

static void test_get_usage(void **state)
{
    (void)state;
    fx f;
    fx_new(&f, NULL); /* rate 10, burst 100 */
    pz_rl_usage u = usage(&f, "n", S);
    assert_int_equal(u.known, 0);
    assert_true(u.available == 100 && u.capacity == 100);
    assert_int_equal(ask(&f, "n", 100, S).allowed, 1);
    for (int i = 0; i < 3; i++) {
        u = usage(&f, "n", S + S / 2);
        assert_int_equal(u.known, 1);
        assert_true(u.available == 5);
        assert_true(u.last_ns == S + 10 * S); /* the theoretical arrival time */
    }
    fx_free(&f);
}

static void test_key_flood_evicts(void **state)
{
    (void)state;
    fx f;
    fx_new(&f, "rate: 1\nburst: 10\nmax_keys: 500\n");
    char name[32];
    uint64_t now = S;
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof(name), "busy-%d", i);
        assert_int_equal(ask(&f, name, 10, now).allowed, 1);
    }
    size_t keys, bytes, max_bytes = 0;
    uint64_t evicted, idle;
    for (int i = 0; i < 50000; i++) {
        snprintf(name, sizeof(name), "flood-%d", i);
        now += 1000;
        ask(&f, name, 1, now);
        if (i % 20 == 0)
            for (int j = 0; j < 100; j++) {
                snprintf(name, sizeof(name), "busy-%d", j);
                ask(&f, name, 1, now);
            }
        pz__gcra_stats(f.st, &keys, &bytes, NULL, NULL);
        assert_true(keys <= 500);
        if (bytes > max_bytes)
            max_bytes = bytes;
    }
    pz__gcra_stats(f.st, &keys, &bytes, &evicted, &idle);
    assert_true(evicted > 40000);
    assert_true(max_bytes <= 500 * 22 + 1024); /* 16-byte entries at load 3/4 */
    for (int j = 0; j < 100; j++) {
        snprintf(name, sizeof(name), "busy-%d", j);
        pz_rl_usage u = usage(&f, name, now);
        assert_int_equal(u.known, 1);
        assert_true(u.available < 1);
    }
    /* Once every key's TAT has passed, they are all idle: a new flood
     * reclaims them without counting live evictions. */
    now += 3600 * S;
    uint64_t idle_before = idle;
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof(name), "late-%d", i);
        ask(&f, name, 1, now);
    }
    pz__gcra_stats(f.st, NULL, NULL, &evicted, &idle);
    assert_true(idle - idle_before >= 400);
    fx_free(&f);
}

static void test_config_errors(void **state)
{
    (void)state;
    static const struct {
        const char *yaml, *want;
    } cases[] = {
        {"rate: 0\n", "test.yaml:1:7: rate"},
        {"rate: lots\n", "test.yaml:1:7: rate"},
        {"burst: 0.5\n", "test.yaml:1:8: burst"},
        {"burst: {a: 1}\n", "test.yaml:1:8: burst"},
        {"key: everything\n", "test.yaml:1:6: key: expected peer, address or peer_method"},
        {"max_keys: 5\n", "test.yaml:1:11: max_keys"},
        {"max_keys: 99999999999\n", "test.yaml:1:11: max_keys"},
        {"status_factors:\n  neutral: x\n", "test.yaml:2:12: status_factors.neutral"},
        {"rate: 0.000001\nburst: 1000000000\n", "tolerance of more than"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pz_mock *m = pz_mock_new();
        const pz_conf *conf;
        void *st = NULL;
        assert_int_equal(pz_mock_conf(m, cases[i].yaml, &conf), 0);
        int rc = gp()->create(pz_mock_core(m), conf, &st, pz_mock_err(m));
        if (rc != PZ_ECONFIG || !strstr(pz_mock_err_msg(m), cases[i].want))
            fail_msg("case %zu: rc %d \"%s\", wanted \"%s\"", i, rc, pz_mock_err_msg(m), cases[i].want);
        assert_null(st);
        pz_mock_free(m);
    }
    pz_mock *m = pz_mock_new();
    const pz_conf *conf;
    void *st = NULL;
    assert_int_equal(pz_mock_conf(m, "rate: 5\nbrust: 6\n", &conf), 0);
    assert_int_equal(gp()->create(pz_mock_core(m), conf, &st, pz_mock_err(m)), 0);
    assert_int_equal(pz_mock_check_unused(m, conf), PZ_ECONFIG);
    assert_non_null(strstr(pz_mock_err_msg(m), "test.yaml:2:1: brust: unknown key"));
    gp()->destroy(st);
    pz_mock_set_random_fail(m, 1);
    st = NULL;
    assert_int_equal(gp()->create(pz_mock_core(m), NULL, &st, pz_mock_err(m)), PZ_ECRYPTO);
    assert_null(st);
    pz_mock_free(m);
    gp()->destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_rate_with_retry_after),
        cmocka_unit_test(test_costs_and_status),
        cmocka_unit_test(test_decision_fields),
        cmocka_unit_test(test_invariants_long_run),
        cmocka_unit_test(test_retry_after_is_exact),
        cmocka_unit_test(test_update_config_keeps_level),
        cmocka_unit_test(test_get_usage),
        cmocka_unit_test(test_key_flood_evicts),
        cmocka_unit_test(test_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
