/* test_geo_deny.c — unit tests of the geo-deny provider on prozsec's mock
 * core (libprozsec-plugintest): configuration from YAML strings, the
 * decisions, the metrics it records, and every configuration error with its
 * FILE:LINE:COL message. Build: see Makefile (`make check`). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <prozsec/connlimit.h>
#include <prozsec/plugintest.h>

#include "geo-deny.h"

#define HOUR_NS (3600ull * 1000000000ull)

/* The provider under test, taken from its own descriptor, as the core
 * takes it. */
static const pz_connlimit_provider *table(void)
{
    const pz_plugin_descriptor *d = pz_plugin_entry_v1();
    assert_non_null(d);
    assert_int_equal(d->abi_major, PZ_ABI_MAJOR);
    assert_int_equal(d->kind, PZ_KIND_CONNLIMIT);
    return d->provider;
}

static pz_addr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
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

static pz_addr v6(uint16_t first, uint16_t second, uint8_t last)
{
    pz_addr x;
    memset(&x, 0, sizeof(x));
    x.family = PZ_AF_INET6;
    x.bytes[0] = (uint8_t)(first >> 8);
    x.bytes[1] = (uint8_t)first;
    x.bytes[2] = (uint8_t)(second >> 8);
    x.bytes[3] = (uint8_t)second;
    x.bytes[15] = last;
    return x;
}

/* An instance from YAML; fails the test when create() or the unknown-key
 * check does. */
static void *instance(pz_mock *m, const char *yaml)
{
    const pz_conf *conf = NULL;
    void *st = NULL;
    if (pz_mock_conf(m, yaml, &conf) != 0)
        fail_msg("yaml: %s", pz_mock_err_msg(m));
    if (table()->create(pz_mock_core(m), conf, &st, pz_mock_err(m)) != 0)
        fail_msg("create: %s", pz_mock_err_msg(m));
    if (pz_mock_check_unused(m, conf) != 0)
        fail_msg("unused: %s", pz_mock_err_msg(m));
    return st;
}

static int admitted(void *st, pz_addr a, pz_admit_result *out)
{
    memset(out, 0, sizeof(*out));
    out->struct_size = sizeof(*out);
    assert_int_equal(table()->admit_address(st, &a, PZ_MOCK_MONOTONIC_START_NS, out), 0);
    return out->admitted;
}

static const char *full_yaml = "regions:\n"
                               "  test-net-3: [203.0.113.0/24]\n"
                               "  doc-v6: [\"2001:db8::/32\"]\n"
                               "  nowhere: [198.51.100.0/24]\n"
                               "deny: [test-net-3, doc-v6]\n"
                               "allow: [203.0.113.7]\n"
                               "retry_after: 30m\n";

static void test_decisions(void **state)
{
    (void)state;
    pz_mock *m = pz_mock_new();
    void *st = instance(m, full_yaml);
    pz_admit_result r;

    assert_int_equal(admitted(st, v4(203, 0, 113, 9), &r), 0);
    assert_int_equal(r.reason, GEO_DENY_REASON_REGION);
    assert_string_equal(r.detail, "address in denied region test-net-3");
    assert_true(r.retry_after_ns == HOUR_NS / 2);

    assert_int_equal(admitted(st, v4(203, 0, 113, 7), &r), 1);  /* allow wins */
    assert_int_equal(admitted(st, v4(203, 0, 114, 1), &r), 1);  /* outside the /24 */
    assert_int_equal(admitted(st, v4(198, 51, 100, 1), &r), 1); /* region not denied */
    assert_int_equal(admitted(st, v6(0x2001, 0x0db8, 1), &r), 0);
    assert_string_equal(r.detail, "address in denied region doc-v6");
    assert_int_equal(admitted(st, v6(0x2001, 0x0db9, 1), &r), 1);

    /* Local connections have no address: admitted. */
    pz_addr local;
    memset(&local, 0, sizeof(local));
    local.family = PZ_AF_UNIX;
    assert_int_equal(admitted(st, local, &r), 1);

    /* The other functions do not refuse and do not fail. */
    pz_identity id = {sizeof(id), "node-1", "validator", NULL, 0, NULL, NULL, "test"};
    pz_addr a = v4(192, 0, 2, 1);
    memset(&r, 0, sizeof(r));
    assert_int_equal(table()->admit_identity(st, &a, &id, PZ_MOCK_MONOTONIC_START_NS, &r), 0);
    assert_int_equal(r.admitted, 1);
    pz_behavior_event ev = {sizeof(ev), PZ_BEHAVIOR_REPLAY, "node-1", a, PZ_MOCK_MONOTONIC_START_NS, NULL};
    table()->on_behavior(st, &ev);
    table()->release(st, &a, &id, PZ_STAGE_AUTHENTICATED, PZ_MOCK_MONOTONIC_START_NS);
    assert_int_equal(admitted(st, a, &r), 1);

    /* Metrics: refusals by region, ranges loaded; no events emitted. */
    assert_int_equal(pz_mock_metric(m, "refused_total", "test-net-3"), 1);
    assert_int_equal(pz_mock_metric(m, "refused_total", "doc-v6"), 1);
    assert_int_equal(pz_mock_metric(m, "ranges", "deny"), 2);
    assert_int_equal(pz_mock_metric(m, "ranges", "allow"), 1);
    assert_int_equal(pz_mock_event_count(m), 0);

    /* The region nobody denies was reported, with where it is. */
    assert_true(pz_mock_log_contains(m, "test.yaml:4:12: region \"nowhere\" is not listed in deny"));

    table()->destroy(st);
    pz_mock_free(m);
}

/* No configuration at all (the core passes NULL): admits everything. */
static void test_no_config(void **state)
{
    (void)state;
    pz_mock *m = pz_mock_new();
    void *st = NULL;
    assert_int_equal(table()->create(pz_mock_core(m), NULL, &st, pz_mock_err(m)), 0);
    pz_admit_result r;
    assert_int_equal(admitted(st, v4(203, 0, 113, 9), &r), 1);
    table()->destroy(st);
    table()->destroy(NULL);
    pz_mock_free(m);
}

/* Host bits are cleared and bare addresses are single hosts. */
static void test_ranges(void **state)
{
    (void)state;
    pz_mock *m = pz_mock_new();
    void *st = instance(m, "regions: {r: [10.1.2.3/8, 192.0.2.1, \"::1\", 172.16.0.0/12]}\ndeny: [r]\n");
    pz_admit_result r;
    assert_int_equal(admitted(st, v4(10, 200, 0, 1), &r), 0);
    assert_int_equal(admitted(st, v4(192, 0, 2, 1), &r), 0);
    assert_int_equal(admitted(st, v4(192, 0, 2, 2), &r), 1);
    assert_int_equal(admitted(st, v4(172, 31, 255, 255), &r), 0);
    assert_int_equal(admitted(st, v4(172, 32, 0, 0), &r), 1);
    assert_int_equal(admitted(st, v6(0, 0, 1), &r), 0);
    assert_int_equal(admitted(st, v6(0, 0, 2), &r), 1);
    table()->destroy(st);
    pz_mock_free(m);
}

/* Every bad configuration, and the message the operator gets. */
static void test_config_errors(void **state)
{
    (void)state;
    static const struct {
        const char *yaml;
        const char *msg; /* the whole message */
    } cases[] = {
        {"regions: {a: [bogus]}\ndeny: [a]\n",
         "test.yaml:1:15: regions.a[0]: expected an address or CIDR such as 203.0.113.0/24 or 2001:db8::/32, "
         "found \"bogus\""},
        {"regions: {a: [10.0.0.0/33]}\ndeny: [a]\n", NULL},
        {"regions: {a: [\"::/129\"]}\ndeny: [a]\n", NULL},
        {"regions: {a: [10.0.0.0/]}\ndeny: [a]\n", NULL},
        {"regions: {a: [10.0.0.0/-1]}\ndeny: [a]\n", NULL},
        {"regions: {a: [[10.0.0.0]]}\ndeny: [a]\n", NULL},
        {"regions: {a: [10.0.0.0/8]}\ndeny: [b]\n", "test.yaml:2:8: deny[0]: no region \"b\" under regions:"},
        {"deny: [a]\n", "test.yaml:1:8: deny[0]: no region \"a\" under regions:"},
        {"regions: {a: 10.0.0.0/8}\ndeny: [a]\n", NULL},
        {"regions: {A.b: [10.0.0.0/8]}\n", NULL},
        {"regions: [10.0.0.0/8]\n", NULL},
        {"deny: a\n", NULL},
        {"deny: [{a: 1}]\n", NULL},
        {"allow: [300.1.1.1]\n", NULL},
        {"retry_after: soon\n", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pz_mock *m = pz_mock_new();
        const pz_conf *conf = NULL;
        void *st = NULL;
        assert_int_equal(pz_mock_conf(m, cases[i].yaml, &conf), 0);
        int rc = table()->create(pz_mock_core(m), conf, &st, pz_mock_err(m));
        if (rc != PZ_ECONFIG)
            fail_msg("case %zu (%s): create returned %d, expected PZ_ECONFIG", i, cases[i].yaml, rc);
        assert_null(st);
        const char *msg = pz_mock_err_msg(m);
        if (strncmp(msg, "test.yaml:", 10) != 0)
            fail_msg("case %zu: message without FILE:LINE:COL: %s", i, msg);
        if (cases[i].msg)
            assert_string_equal(msg, cases[i].msg);
        pz_mock_free(m);
    }
}

/* A key the provider never reads is the core's "unknown key" error. */
static void test_unknown_key(void **state)
{
    (void)state;
    pz_mock *m = pz_mock_new();
    const pz_conf *conf = NULL;
    void *st = NULL;
    assert_int_equal(pz_mock_conf(m, "deny: []\nretry-after: 1h\n", &conf), 0);
    assert_int_equal(table()->create(pz_mock_core(m), conf, &st, pz_mock_err(m)), 0);
    assert_int_equal(pz_mock_check_unused(m, conf), PZ_ECONFIG);
    assert_string_equal(pz_mock_err_msg(m), "test.yaml:2:1: retry-after: unknown key (did you mean \"retry_after\"?)");
    table()->destroy(st);
    pz_mock_free(m);
}

/* The configuration schema `prozsec plugins list --verbose` prints. */
static void test_schema(void **state)
{
    (void)state;
    const pz_plugin_descriptor *d = pz_plugin_entry_v1();
    size_t n = 0;
    for (const pz_conf_key *k = d->config_schema; k->key; k++, n++)
        assert_non_null(k->help);
    assert_int_equal(n, 5);
    assert_string_equal(d->name, "geo-deny");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decisions),   cmocka_unit_test(test_no_config),
        cmocka_unit_test(test_ranges),      cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_unknown_key), cmocka_unit_test(test_schema),
    };
    return cmocka_run_group_tests_name("geo-deny", tests, NULL, NULL);
}
