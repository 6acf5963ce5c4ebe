/* tests/unit/test_conn_limit.c — the conn-limit connection limiter, its
 * sources compiled in, against the mock core. Time is passed in. */
#include "config.h"

#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <prozsec/connlimit.h>
#include <prozsec/plugintest.h>

#include "../../plugins/common/addr.h"
#include "../../plugins/conn-limit/conn-limit.h"

#define S 1000000000ull

static const pz_connlimit_provider *cp(void)
{
    const pz_plugin_descriptor *d = pz_plugin_entry_v1();
    assert_int_equal(d->kind, PZ_KIND_CONNLIMIT);
    assert_string_equal(d->name, "conn-limit");
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
    if (yaml && pz_mock_conf(f->m, yaml, &conf))
        fail_msg("yaml: %s", pz_mock_err_msg(f->m));
    int rc = cp()->create(pz_mock_core(f->m), conf, &f->st, pz_mock_err(f->m));
    if (rc)
        fail_msg("create: %s", pz_mock_err_msg(f->m));
    if (conf && pz_mock_check_unused(f->m, conf))
        fail_msg("unused: %s", pz_mock_err_msg(f->m));
}

static void fx_free(fx *f)
{
    cp()->destroy(f->st);
    pz_mock_free(f->m);
}

static pz_addr ip(const char *text)
{
    pz_addr a;
    memset(&a, 0, sizeof(a));
    if (inet_pton(AF_INET, text, a.bytes) == 1)
        a.family = PZ_AF_INET;
    else if (inet_pton(AF_INET6, text, a.bytes) == 1)
        a.family = PZ_AF_INET6;
    else
        fail_msg("bad address %s", text);
    return a;
}

static pz_admit_result admit(fx *f, const char *addr, uint64_t now)
{
    pz_addr a = ip(addr);
    pz_admit_result r;
    memset(&r, 0x55, sizeof(r));
    r.struct_size = sizeof(r);
    assert_int_equal(cp()->admit_address(f->st, &a, now, &r), 0);
    return r;
}

static pz_admit_result identify(fx *f, const char *addr, const char *node, uint64_t now)
{
    pz_addr a = ip(addr);
    pz_identity id = {sizeof(id), node, "validator", NULL, 0, NULL, NULL, "test"};
    pz_admit_result r;
    memset(&r, 0x55, sizeof(r));
    assert_int_equal(cp()->admit_identity(f->st, &a, &id, now, &r), 0);
    return r;
}

static void release(fx *f, const char *addr, const char *node, pz_conn_stage stage, uint64_t now)
{
    pz_addr a = ip(addr);
    pz_identity id = {sizeof(id), node, "", NULL, 0, NULL, NULL, "test"};
    cp()->release(f->st, &a, node ? &id : NULL, stage, now);
}

static uint64_t total(fx *f, uint64_t *pending)
{
    uint64_t t;
    pz__cl_stats(f->st, &t, pending, NULL, NULL);
    return t;
}

static void test_global_and_pending(void **state)
{
    (void)state;
    fx f;
    fx_new(&f, "max_connections: 3\nmax_pending_handshakes: 2\nnew_per_address: {rate: 0}\n");
    uint64_t pending;
    assert_int_equal(admit(&f, "192.0.2.1", S).admitted, 1);
    assert_int_equal(admit(&f, "192.0.2.2", S).admitted, 1);
    pz_admit_result r = admit(&f, "192.0.2.3", S);
    assert_int_equal(r.admitted, 0);
    assert_int_equal(r.reason, PZ_CL_REASON_PENDING);
    assert_string_equal(r.detail, "pending handshake limit 2 reached");
    assert_int_equal(total(&f, &pending), 2);
    assert_int_equal(pending, 2);
    /* Authentication ends the pending state. */
    assert_int_equal(identify(&f, "192.0.2.1", "n1", S).admitted, 1);
    assert_int_equal(total(&f, &pending), 2);
    assert_int_equal(pending, 1);
    assert_int_equal(admit(&f, "192.0.2.3", S).admitted, 1);
    r = admit(&f, "192.0.2.4", S);
    assert_int_equal(r.admitted, 0);
    assert_int_equal(r.reason, PZ_CL_REASON_GLOBAL);
    assert_string_equal(r.detail, "global limit 3 reached");
    assert_int_equal(pz_mock_metric(f.m, "connections", NULL), 3);
    /* Releases at each stage free their slots. */
    release(&f, "192.0.2.1", "n1", PZ_STAGE_AUTHENTICATED, S);
    release(&f, "192.0.2.2", NULL, PZ_STAGE_PRE_HANDSHAKE, S);
    assert_int_equal(total(&f, &pending), 1);
    assert_int_equal(pending, 1);
    assert_int_equal(admit(&f, "192.0.2.4", S).admitted, 1);
    assert_int_equal(pz_mock_metric(f.m, "pending_handshakes", NULL), 2);
    fx_free(&f);
}

/* Table-driven caps per address and per prefix: N connections from a
 * pattern of addresses; which one is refused first, and why. */
static void test_address_and_prefix_caps(void **state)
{
    (void)state;
    static const struct {
        const char *yaml;
        const char *addrs[8];
        int refused_at; /* index of the first refusal, -1 none */
        int reason;
        const char *detail;
    } cases[] = {
        {"max_per_address: 2\n", {"192.0.2.1", "192.0.2.1", "192.0.2.1"}, 2, PZ_CL_REASON_PER_ADDRESS,
         "per-address limit 2 reached for 192.0.2.1/32"},
        {"max_per_address: 2\n", {"192.0.2.1", "192.0.2.1", "192.0.2.2"}, -1, 0, NULL},
        {"max_per_address: 0\nprefixes: []\n", {"192.0.2.1", "192.0.2.1", "192.0.2.1", "192.0.2.1"}, -1, 0, NULL},
        {"prefixes: [{family: ipv4, length: 24, max_connections: 3}]\n",
         {"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"}, 3, PZ_CL_REASON_PER_PREFIX,
         "per-prefix limit 3 reached for 192.0.2.0/24"},
        {"prefixes: [{family: ipv4, length: 24, max_connections: 3}]\n",
         {"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.3.4"}, -1, 0, NULL},
        {"prefixes: [{family: ipv4, length: 16, max_connections: 2}]\n", {"10.1.2.3", "10.1.200.3", "10.1.0.1"}, 2,
         PZ_CL_REASON_PER_PREFIX, "per-prefix limit 2 reached for 10.1.0.0/16"},
        {"prefixes: [{family: ipv6, length: 64, max_connections: 2}]\n",
         {"2001:db8:0:1::1", "2001:db8:0:1::2", "2001:db8:0:1:ffff::3"}, 2, PZ_CL_REASON_PER_PREFIX,
         "per-prefix limit 2 reached for 2001:db8:0:1::/64"},
        {"prefixes: [{family: ipv6, length: 64, max_connections: 2}]\n",
         {"2001:db8:0:1::1", "2001:db8:0:1::2", "2001:db8:0:2::3"}, -1, 0, NULL},
        {"prefixes:\n  - {family: ipv6, length: 64, max_connections: 10}\n"
         "  - {family: ipv6, length: 48, max_connections: 3}\n",
         {"2001:db8:0:1::1", "2001:db8:0:2::1", "2001:db8:0:3::1", "2001:db8:0:4::1"}, 3, PZ_CL_REASON_PER_PREFIX,
         "per-prefix limit 3 reached for 2001:db8::/48"},
        /* Rules of the other family do not apply. */
        {"prefixes: [{family: ipv6, length: 8, max_connections: 1}]\n", {"192.0.2.1", "192.0.2.2"}, -1, 0, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[512];
        snprintf(yaml, sizeof(yaml), "%snew_per_address: {rate: 0}\n", cases[i].yaml);
        fx f;
        fx_new(&f, yaml);
        int refused = -1;
        for (int k = 0; k < 8 && cases[i].addrs[k]; k++) {
            pz_admit_result r = admit(&f, cases[i].addrs[k], S);
            if (!r.admitted) {
                refused = k;
                if (r.reason != cases[i].reason || strcmp(r.detail, cases[i].detail))
                    fail_msg("case %zu: reason %d \"%s\"", i, r.reason, r.detail);
                break;
            }
        }
        if (refused != cases[i].refused_at)
            fail_msg("case %zu: first refusal at %d, wanted %d", i, refused, cases[i].refused_at);
        fx_free(&f);
    }
}

static void test_default_prefixes(void **state)
{
    (void)state;
    fx f;
    /* Defaults: IPv4 /24 64; IPv6 /64 64, /56 128, /48 256. */
    fx_new(&f, "max_per_address: 0\nnew_per_address: {rate: 0}\nprefixes:\n"
               "  - {family: ipv4, length: 24, max_connections: 64}\n"
               "  - {family: ipv6, length: 64, max_connections: 64}\n"
               "  - {family: ipv6, length: 56, max_connections: 128}\n"
               "  - {family: ipv6, length: 48, max_connections: 256}\n");
    fx_free(&f);
    fx_new(&f, "max_per_address: 0\nnew_per_address: {rate: 0}\n");
    char a[64];
    for (int i = 0; i < 64; i++) {
        snprintf(a, sizeof(a), "203.0.113.%d", i);
        /* the default prefix rules also rate-limit: spread over time */
        assert_int_equal(admit(&f, a, S + (uint64_t)i * S).admitted, 1);
    }
    pz_admit_result r = admit(&f, "203.0.113.200", 100 * S);
    assert_int_equal(r.reason, PZ_CL_REASON_PER_PREFIX);
    assert_string_equal(r.detail, "per-prefix limit 64 reached for 203.0.113.0/24");
    /* IPv6: 128 connections over two /64s fill the /56. */
    for (int i = 0; i < 128; i++) {
        snprintf(a, sizeof(a), "2001:db8:0:%x::%x", i % 2, i + 1);
        assert_int_equal(admit(&f, a, 200 * S + (uint64_t)i * S).admitted, 1);
    }
    r = admit(&f, "2001:db8:0:7::1", 400 * S);
    assert_int_equal(r.reason, PZ_CL_REASON_PER_PREFIX);
    assert_string_equal(r.detail, "per-prefix limit 128 reached for 2001:db8::/56");
    assert_int_equal(admit(&f, "2001:db8:0:100::1", 400 * S).admitted, 1); /* another /56 */
    fx_free(&f);
}

static void test_new_connection_rates(void **state)
{
    (void)state;
    fx f;
    fx_new(&f, "new_per_address: {rate: 1, burst: 2}\n"
               "prefixes: [{family: ipv4, length: 24, max_connections: 100, rate: 2, burst: 2}]\n");
    /* Per address: 2 at once, then 1/s. Refused attempts do not spend. */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(admit(&f, "192.0.2.1", S).admitted, 1);
        release(&f, "192.0.2.1", NULL, PZ_STAGE_PRE_HANDSHAKE, S);
    }
    for (int i = 0; i < 5; i++) {
        pz_admit_result r = admit(&f, "192.0.2.1", S);
        assert_int_equal(r.admitted, 0);
        assert_int_equal(r.reason, PZ_CL_REASON_RATE_ADDRESS);
        assert_true(r.retry_after_ns == S);
        assert_string_equal(r.detail, "new-connection rate 1/s exceeded for 192.0.2.1/32");
    }
    assert_int_equal(admit(&f, "192.0.2.1", 2 * S).admitted, 1);
    /* Per prefix: burst 2 at 2/s in the /24; 192.0.2.1 took one at 2 s. */
    assert_int_equal(admit(&f, "192.0.2.2", 2 * S).admitted, 1);
    pz_admit_result r = admit(&f, "192.0.2.3", 2 * S);
    assert_int_equal(r.admitted, 0);
    assert_int_equal(r.reason, PZ_CL_REASON_RATE_PREFIX);
    assert_true(r.retry_after_ns == S / 2);
    assert_string_equal(r.detail, "new-connection rate 2/s exceeded for 192.0.2.0/24");
    /* A refusal at the prefix leaves the address's counters untouched:
     * 192.0.2.3 still has its full burst once the prefix allows. */
    assert_int_equal(admit(&f, "192.0.2.3", 2 * S + S / 2).admitted, 1);
    uint64_t pending;
    assert_int_equal(total(&f, &pending), 3);
    fx_free(&f);
}

static void test_allowlist(void **state)
{
    (void)state;
    fx f;
    fx_new(&f, "max_connections: 1\nmax_per_node: 1\nnew_per_address: {rate: 1, burst: 1}\n"
               "allowlist: [\"10.0.0.0/8\", \"2001:db8::1\", \"validator-1\", \"node:10.0.0.1\"]\n");
    /* Allowlisted addresses bypass every limit and are not counted. */
    for (int i = 0; i < 10; i++) {
        assert_int_equal(admit(&f, "10.9.8.7", S).admitted, 1);
        assert_int_equal(admit(&f, "2001:db8::1", S).admitted, 1);
    }
    assert_int_equal(total(&f, NULL), 0);
    release(&f, "10.9.8.7", NULL, PZ_STAGE_PRE_HANDSHAKE, S);
    assert_int_equal(total(&f, NULL), 0);
    assert_int_equal(admit(&f, "192.0.2.1", S).admitted, 1);
    assert_int_equal(admit(&f, "192.0.2.2", S).reason, PZ_CL_REASON_GLOBAL);
    /* Allowlisted node ids bypass the per-node cap. */
    assert_int_equal(identify(&f, "10.1.1.1", "validator-1", S).admitted, 1);
    assert_int_equal(identify(&f, "10.1.1.2", "validator-1", S).admitted, 1);
    assert_int_equal(identify(&f, "10.1.1.3", "10.0.0.1", S).admitted, 1); /* "node:" forced an id */
    assert_int_equal(identify(&f, "10.1.1.4", "10.0.0.1", S).admitted, 1);
    assert_int_equal(identify(&f, "10.1.1.5", "other", S).admitted, 1);
    assert_int_equal(identify(&f, "10.1.1.6", "other", S).reason, PZ_CL_REASON_PER_NODE);
    /* Local clients bypass by default. */
    pz_addr u = {PZ_AF_UNIX, {0}, 0};
    pz_admit_result r;
    assert_int_equal(cp()->admit_address(f.st, &u, S, &r), 0);
    assert_int_equal(r.admitted, 1);
    fx_free(&f);

    fx_new(&f, "max_connections: 1\nallow_local: false\n");
    assert_int_equal(cp()->admit_address(f.st, &u, S, &r), 0);
    assert_int_equal(cp()->admit_address(f.st, &u, S, &r), 0);
    assert_int_equal(r.reason, PZ_CL_REASON_GLOBAL);
    fx_free(&f);
}

static void test_per_node_refusal_uncounts(void **state)
{
    (void)state;
    fx f;
    fx_new(&f, "max_per_node: 1\nmax_per_address: 2\nnew_per_address: {rate: 0}\n");
    assert_int_equal(admit(&f, "192.0.2.1", S).admitted, 1);
    assert_int_equal(identify(&f, "192.0.2.1", "n", S).admitted, 1);
    assert_int_equal(admit(&f, "192.0.2.1", S).admitted, 1);
    pz_admit_result r = identify(&f, "192.0.2.1", "n", S);
    assert_int_equal(r.admitted, 0);
    assert_int_equal(r.reason, PZ_CL_REASON_PER_NODE);
    assert_string_equal(r.detail, "per-node limit 1 reached for n");
    /* The refused connection no longer counts against its address. */
    uint64_t pending;
    assert_int_equal(total(&f, &pending), 1);
    assert_int_equal(pending, 0);
    assert_int_equal(admit(&f, "192.0.2.1", S).admitted, 1);
    assert_int_equal(admit(&f, "192.0.2.1", S).reason, PZ_CL_REASON_PER_ADDRESS);
    /* Once n's connection ends, n may connect again. */
    release(&f, "192.0.2.1", "n", PZ_STAGE_AUTHENTICATED, S);
    assert_int_equal(identify(&f, "192.0.2.1", "n", S).admitted, 1);
    fx_free(&f);
}

/* Random admit / identify / release: the limiter's counts always match the
 * connections the test holds, and never exceed the caps. */
static void test_counts_random_walk(void **state)
{
    (void)state;
    fx f;
    fx_new(&f, "max_connections: 50\nmax_pending_handshakes: 20\nmax_per_address: 3\nmax_per_node: 2\n"
               "new_per_address: {rate: 50, burst: 5}\n"
               "prefixes: [{family: ipv4, length: 28, max_connections: 6, rate: 100, burst: 10}]\n");
    struct conn {
        char addr[32];
        char node[16];
        int stage; /* 0 free, 1 pending, 2 authenticated */
    } conns[200];
    memset(conns, 0, sizeof(conns));
    uint64_t seed = 12345, now = S;
    size_t live = 0, pending_n = 0;
    for (int step = 0; step < 100000; step++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        int i = (int)((seed >> 33) % 200);
        now += 1000000; /* 1 ms */
        struct conn *c = &conns[i];
        if (c->stage == 0) {
            snprintf(c->addr, sizeof(c->addr), "198.51.100.%d", (int)((seed >> 20) % 48));
            if (admit(&f, c->addr, now).admitted) {
                c->stage = 1;
                live++;
                pending_n++;
            }
        } else if (c->stage == 1) {
            pending_n--;
            if ((seed >> 40) % 4 == 0) {
                release(&f, c->addr, NULL, PZ_STAGE_PRE_HANDSHAKE, now);
                c->stage = 0;
                live--;
            } else {
                snprintf(c->node, sizeof(c->node), "node-%d", (int)((seed >> 24) % 30));
                if (identify(&f, c->addr, c->node, now).admitted) {
                    c->stage = 2;
                } else {
                    c->stage = 0;
                    live--;
                }
            }
        } else {
            release(&f, c->addr, c->node, PZ_STAGE_AUTHENTICATED, now);
            c->stage = 0;
            live--;
        }
        uint64_t pending, t = total(&f, &pending);
        if (t != live || pending != pending_n)
            fail_msg("step %d: limiter %llu/%llu, test %zu/%zu", step, (unsigned long long)t,
                     (unsigned long long)pending, live, pending_n);
        assert_true(t <= 50 && pending <= 20);
    }
    fx_free(&f);
}

static void test_tracking_is_bounded(void **state)
{
    (void)state;
    fx f;
    fx_new(&f, "max_connections: 10\nmax_tracked: 1000\n");
    size_t tracked, bytes;
    char a[64];
    for (int i = 0; i < 50000; i++) {
        snprintf(a, sizeof(a), "2001:db8:%x:%x::1", i >> 8, i & 0xff);
        pz_admit_result r = admit(&f, a, S + (uint64_t)i);
        if (r.admitted)
            release(&f, a, NULL, PZ_STAGE_PRE_HANDSHAKE, S + (uint64_t)i);
        pz__cl_stats(f.st, NULL, NULL, &tracked, &bytes);
        assert_true(tracked <= 1000);
    }
    assert_true(bytes <= 1334 * 24);
    /* Counted connections are never evicted: hold 5, flood, release. */
    for (int i = 0; i < 5; i++) {
        snprintf(a, sizeof(a), "192.0.2.%d", i);
        assert_int_equal(admit(&f, a, 100 * S).admitted, 1);
    }
    uint64_t admitted = 0;
    for (int i = 0; i < 5000; i++) {
        snprintf(a, sizeof(a), "2001:%x::1", i);
        if (admit(&f, a, 100 * S + (uint64_t)i).admitted) {
            admitted++;
            release(&f, a, NULL, PZ_STAGE_PRE_HANDSHAKE, 100 * S + (uint64_t)i);
        }
        pz__cl_stats(f.st, NULL, NULL, &tracked, NULL);
        assert_true(tracked <= 1000);
    }
    assert_int_equal(admitted, 5000); /* 20000 counters through a table of 1000 */
    assert_int_equal(total(&f, NULL), 5);
    for (int i = 0; i < 5; i++) {
        snprintf(a, sizeof(a), "192.0.2.%d", i);
        release(&f, a, NULL, PZ_STAGE_PRE_HANDSHAKE, 200 * S);
    }
    assert_int_equal(total(&f, NULL), 0);
    fx_free(&f);
}

static void test_config_errors(void **state)
{
    (void)state;
    static const struct {
        const char *yaml, *want;
    } cases[] = {
        {"max_connections: 0\n", "test.yaml:1:18: max_connections"},
        {"max_pending_handshakes: many\n", "test.yaml:1:25: max_pending_handshakes"},
        {"max_per_address: -1\n", "test.yaml:1:18: max_per_address"},
        {"max_tracked: 2\n", "test.yaml:1:14: max_tracked"},
        {"allow_local: maybe\n", "test.yaml:1:14: allow_local"},
        {"new_per_address: 5\n", "test.yaml:1:18: new_per_address"},
        {"new_per_address: {rate: -1}\n", "test.yaml:1:25: new_per_address.rate"},
        {"new_per_address: {burst: 0}\n", "test.yaml:1:26: new_per_address.burst"},
        {"prefixes: {a: 1}\n", "test.yaml:1:11: prefixes"},
        {"prefixes: [{length: 24}]\n", "test.yaml:1:12: prefixes[0]: family: required"},
        {"prefixes: [{family: ipx, length: 24}]\n", "test.yaml:1:21: prefixes[0].family: expected ipv4 or ipv6"},
        {"prefixes: [{family: ipv4}]\n", "test.yaml:1:12: prefixes[0]: length: required"},
        {"prefixes: [{family: ipv4, length: 33}]\n", "test.yaml:1:35: prefixes[0].length"},
        {"prefixes: [{family: ipv6, length: 0}]\n", "test.yaml:1:35: prefixes[0].length"},
        {"prefixes:\n  - {family: ipv4, length: 24}\n  - {family: ipv4, length: 24}\n",
         "test.yaml:3:5: prefixes[1]: duplicate rule for ipv4 /24"},
        {"prefixes: [{family: ipv4, length: 24, rate: x}]\n", "test.yaml:1:45: prefixes[0].rate"},
        {"allowlist: [\"10.0.0.1/8\"]\n", "test.yaml:1:13: allowlist[0]: expected a CIDR"},
        {"allowlist: [\"300.1.1.1/8\"]\n", "test.yaml:1:13: allowlist[0]: expected a CIDR"},
        {"allowlist: [\"bad id!\"]\n", "test.yaml:1:13: allowlist[0]: expected a CIDR, an address or a node id"},
        {"allowlist: [[1]]\n", "test.yaml:1:13: allowlist[0]: expected a CIDR"},
        {"allowlist: \"10.0.0.0/8\"\n", "test.yaml:1:12: allowlist"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pz_mock *m = pz_mock_new();
        const pz_conf *conf;
        void *st = NULL;
        assert_int_equal(pz_mock_conf(m, cases[i].yaml, &conf), 0);
        int rc = cp()->create(pz_mock_core(m), conf, &st, pz_mock_err(m));
        if (rc != PZ_ECONFIG || !strstr(pz_mock_err_msg(m), cases[i].want))
            fail_msg("case %zu: rc %d \"%s\", wanted \"%s\"", i, rc, pz_mock_err_msg(m), cases[i].want);
        assert_null(st);
        pz_mock_free(m);
    }
    pz_mock *m = pz_mock_new();
    void *st = NULL;
    pz_mock_set_random_fail(m, 1);
    assert_int_equal(cp()->create(pz_mock_core(m), NULL, &st, pz_mock_err(m)), PZ_ECRYPTO);
    assert_null(st);
    pz_mock_free(m);
    cp()->destroy(NULL);
}

static void test_cidr_helpers(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int ok;
        const char *canon;
    } cases[] = {
        {"192.0.2.0/24", 1, "192.0.2.0/24"},
        {"192.0.2.7", 1, "192.0.2.7/32"},
        {"192.0.2.7/24", 0, NULL},
        {"0.0.0.0/0", 1, "0.0.0.0/0"},
        {"10.0.0.0/33", 0, NULL},
        {"10.0.0.0/", 0, NULL},
        {"10.0.0.0/-1", 0, NULL},
        {"10.0.0.0/8x", 0, NULL},
        {"2001:db8::/32", 1, "2001:db8::/32"},
        {"2001:db8::1/64", 0, NULL},
        {"::ffff:192.0.2.1", 1, "192.0.2.1/32"},
        {"::ffff:192.0.2.0/120", 1, "192.0.2.0/24"},
        {"::/0", 1, "::/0"},
        {"::/129", 0, NULL},
        {"node-1", 0, NULL},
        {"", 0, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pz_cidr c;
        char buf[PZ_CIDR_STRLEN];
        int rc = pz__cidr_parse(cases[i].text, &c);
        if ((rc == 0) != cases[i].ok)
            fail_msg("case %zu (%s): rc %d", i, cases[i].text, rc);
        if (rc == 0)
            assert_string_equal(pz__cidr_format(&c, buf, sizeof(buf)), cases[i].canon);
    }
    pz_cidr c;
    assert_int_equal(pz__cidr_parse("192.0.2.128/25", &c), 0);
    pz_addr a = ip("192.0.2.200"), b = ip("192.0.2.100"), v6 = ip("::1");
    assert_true(pz__cidr_contains(&c, &a));
    assert_false(pz__cidr_contains(&c, &b));
    assert_false(pz__cidr_contains(&c, &v6));
    assert_int_equal(pz__cidr_parse(NULL, &c), PZ_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_global_and_pending),
        cmocka_unit_test(test_address_and_prefix_caps),
        cmocka_unit_test(test_default_prefixes),
        cmocka_unit_test(test_new_connection_rates),
        cmocka_unit_test(test_allowlist),
        cmocka_unit_test(test_per_node_refusal_uncounts),
        cmocka_unit_test(test_counts_random_walk),
        cmocka_unit_test(test_tracking_is_bounded),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_cidr_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
