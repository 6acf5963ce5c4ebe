/* tests/unit/test_token_bucket.c — the token-bucket rate limiter, and the
 * shared limiter code it is built from (the keyed multiply hash, SipHash-1-3,
 * the bounded keyed-hash table). The plugin's sources are compiled in; the core is the mock
 * (libprozsec-plugintest), so time is whatever each test passes. */
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

#include "../../plugins/common/khash.h"
#include "../../plugins/common/ktable.h"
#include "../../plugins/common/rlcommon.h"
#include "../../plugins/common/siphash.h"
#include "../../plugins/token-bucket/token-bucket.h"

#define S 1000000000ull
#define MS 1000000ull

static const pz_ratelimit_provider *tb(void)
{
    const pz_plugin_descriptor *d = pz_plugin_entry_v1();
    assert_int_equal(d->kind, PZ_KIND_RATELIMIT);
    assert_string_equal(d->name, "token-bucket");
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
    int rc = tb()->create(pz_mock_core(f->m), conf, &f->st, pz_mock_err(f->m));
    if (rc)
        fail_msg("create: %s", pz_mock_err_msg(f->m));
    if (conf && pz_mock_check_unused(f->m, conf))
        fail_msg("unused: %s", pz_mock_err_msg(f->m));
}

static void fx_free(fx *f)
{
    tb()->destroy(f->st);
    pz_mock_free(f->m);
}

static pz_addr addr4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
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

static pz_addr default_addr;

static pz_rl_request req(const char *node, const char *method, uint32_t cost, pz_peer_status st, uint64_t now)
{
    pz_rl_request r = {sizeof(r), node, &default_addr, method, cost, st, now};
    return r;
}

static pz_rl_decision ask(fx *f, const char *node, uint32_t cost, uint64_t now)
{
    pz_rl_request r = req(node, NULL, cost, PZ_STATUS_UNKNOWN, now);
    pz_rl_decision d = {sizeof(d), 0, 0, 0, 0, 0};
    assert_int_equal(tb()->allow(f->st, &r, &d), 0);
    return d;
}

static double usage(fx *f, const char *node, uint64_t now, int *known)
{
    pz_rl_request r = req(node, NULL, 1, PZ_STATUS_UNKNOWN, now);
    pz_rl_usage u = {sizeof(u), 0, 0, 0, 0};
    assert_int_equal(tb()->get_usage(f->st, &r, &u), 0);
    if (known)
        *known = u.known;
    return u.available;
}

/* Deterministic PRNG for property tests. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

/* ---- SipHash ------------------------------------------------------------ */

/* SipHash-2-4 reference vectors (key 00..0f, message 00..len-1), from the
 * SipHash paper's reference implementation. */
static const uint64_t sip24[] = {
    0x726fdb47dd0e0e31ull, 0x74f839c593dc67fdull, 0x0d6c8009d9a94f5aull, 0x85676696d7fb7e2dull,
    0xcf2794e0277187b7ull, 0x18765564cd99a68dull, 0xcbc9466e58fee3ceull, 0xab0200f58b01d137ull,
    0x93f5f5799a932462ull, 0x9e0082df0ba9e4b0ull, 0x7a5dbbc594ddb9f3ull, 0xf4b32f46226bada7ull,
    0x751e8fbc860ee5fbull, 0x14ea5627c0843d90ull, 0xf723ca908e7af2eeull, 0xa129ca6149be45e5ull,
    0x3f2acc7f57c29bdbull,
};

static void test_siphash_reference(void **state)
{
    (void)state;
    uint8_t key[16], msg[64];
    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t)i;
    for (int i = 0; i < 64; i++)
        msg[i] = (uint8_t)i;
    for (size_t n = 0; n < sizeof(sip24) / sizeof(sip24[0]); n++)
        assert_true(pz__siphash_cd(2, 4, key, msg, n) == sip24[n]);
    /* The unrolled 1-3 path and the streaming one agree with the generic. */
    for (size_t n = 0; n <= 64; n++) {
        uint64_t want = pz__siphash_cd(1, 3, key, msg, n);
        assert_true(pz__siphash13(key, msg, n) == want);
        for (size_t cut = 0; cut <= n; cut++) {
            pz_siphash s;
            pz__siphash_init(&s, key);
            pz__siphash_update(&s, msg, cut);
            pz__siphash_update(&s, msg + cut, n - cut);
            assert_true(pz__siphash_final(&s) == want);
        }
    }
    /* Keyed: another key, another hash. */
    key[0] ^= 1;
    assert_true(
        pz__siphash13(key, msg, 8) !=
        pz__siphash_cd(1, 3, (uint8_t[16]){0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, msg, 8));
}

/* ---- keyed multiply hash ------------------------------------------------ */

/* The hash as khash.h defines it, written plainly (byte loads, one loop):
 * the inline short path, the out-of-line long path and the SipHash
 * fallback must all agree with it. */
static uint64_t ref_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t ref_khash(const pz_khash_key *key, const uint8_t *p, size_t len)
{
    const uint64_t *k = key->k;
    unsigned __int128 acc = 0;
    if (len > PZ_KHASH_MAX_NH)
        return pz__siphash_cd(1, 3, key->sip, p, len);
    if (len <= 16) {
        uint64_t a = 0, b = 0;
        if (len >= 8) {
            a = ref_le(p, 8);
            b = ref_le(p + len - 8, 8);
        } else if (len >= 4) {
            a = ref_le(p, 4) | ref_le(p + len - 4, 4) << 32;
        } else if (len) {
            a = p[0] | (uint64_t)p[len / 2] << 8 | (uint64_t)p[len - 1] << 16;
        }
        acc = (unsigned __int128)(a + k[0]) * (b + k[1]);
    } else {
        size_t blocks = (len + 15) / 16; /* the last one is the last 16 bytes */
        for (size_t i = 0; i < blocks; i++) {
            const uint8_t *q = i + 1 < blocks ? p + 16 * i : p + len - 16;
            acc += (unsigned __int128)(ref_le(q, 8) + k[2 * i]) * (ref_le(q + 8, 8) + k[2 * i + 1]);
        }
    }
    unsigned __int128 f = (unsigned __int128)((uint64_t)acc + k[8]) * (((uint64_t)(acc >> 64) ^ len) + k[9]);
    return (uint64_t)f ^ (uint64_t)(f >> 64);
}

static void test_khash_reference(void **state)
{
    (void)state;
    static const uint8_t secret[PZ_KHASH_SECRET_LEN] = "0123456789abcdef";
    pz_khash_key key, other;
    pz__khash_key_init(&key, secret, 'P');
    pz__khash_key_init(&other, secret, 'T');
    for (int i = 0; i < PZ_KHASH_WORDS; i++)
        assert_true(key.k[i] != other.k[i]); /* domains give independent keys */
    uint8_t msg[100];
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)(i * 37 + 11);
    for (size_t n = 0; n <= sizeof(msg); n++) {
        uint64_t want = ref_khash(&key, msg, n);
        if (pz__khash(&key, msg, n) != want)
            fail_msg("length %zu: khash differs from the reference", n);
        if (n <= 16)
            assert_true(pz__khash_short(&key, msg, n) == want);
        assert_true(pz__khash(&other, msg, n) != want);
    }
    /* The length is part of the input: "a" and "a\0" differ. */
    assert_true(pz__khash(&key, "a", 1) != pz__khash(&key, "a\0", 2));
    assert_true(pz__khash(&key, NULL, 0) == ref_khash(&key, NULL, 0));
    explicit_bzero(&key, sizeof(key));
    explicit_bzero(&other, sizeof(other));
}

/* The inline strlen reads aligned 16-byte blocks: check it at every
 * alignment and length, on heap strings that end where their block ends
 * (valgrind checks the reads). */
static void test_khash_strlen(void **state)
{
    (void)state;
    static const uint8_t secret[PZ_KHASH_SECRET_LEN] = "fedcba9876543210";
    pz_khash_key key;
    pz__khash_key_init(&key, secret, 'P');
    for (size_t n = 0; n < 90; n++) {
        for (size_t off = 0; off < 16; off++) {
            char *b = malloc(off + n + 1);
            assert_non_null(b);
            for (size_t i = 0; i < n; i++)
                b[off + i] = (char)('a' + (i + off) % 26);
            b[off + n] = 0;
            assert_int_equal(pz__kh_strlen(b + off), n);
            assert_true(pz__khash_str(&key, b + off) == pz__khash(&key, b + off, n));
            free(b);
        }
    }
    explicit_bzero(&key, sizeof(key));
}

/* With a fixed key (so the test is deterministic): peer-id-like keys that
 * differ in one character spread like random numbers. No two of 2^17 keys
 * share a hash; their home slots in a table of 2^17 slots fill like balls
 * thrown at random (sum of squared deviations near n, no crowded slot);
 * flipping one input bit flips about half the output bits. */
static void test_khash_spread(void **state)
{
    (void)state;
    static const uint8_t secret[PZ_KHASH_SECRET_LEN] = "prozsec-khash-t1";
    enum { N = 1 << 17 };
    pz_khash_key key;
    pz__khash_key_init(&key, secret, 'P');
    uint64_t *h = malloc(N * sizeof(*h));
    uint32_t *bins = calloc(N, sizeof(*bins));
    assert_non_null(h);
    assert_non_null(bins);
    char id[32];
    for (uint32_t i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "peer-%08x", i);
        h[i] = pz__khash_str(&key, id);
        bins[(size_t)(((unsigned __int128)(h[i] | 1) * N) >> 64)]++;
    }
    double sq = 0;
    uint32_t most = 0;
    for (uint32_t i = 0; i < N; i++) {
        sq += ((double)bins[i] - 1) * ((double)bins[i] - 1);
        most = bins[i] > most ? bins[i] : most;
    }
    if (sq < 0.95 * N || sq > 1.05 * N || most > 12)
        fail_msg("home slots: sum of squared deviations %.0f (expected about %d), fullest slot %u", sq, N,
                 most);
    /* Distinct: sort and compare neighbours. */
    for (uint32_t gap = N / 2; gap; gap /= 2) /* shell sort, good enough here */
        for (uint32_t i = gap; i < N; i++)
            for (uint32_t j = i; j >= gap && h[j - gap] > h[j]; j -= gap) {
                uint64_t t = h[j];
                h[j] = h[j - gap];
                h[j - gap] = t;
            }
    for (uint32_t i = 1; i < N; i++)
        assert_true(h[i] != h[i - 1]);
    /* Avalanche over single-bit flips of a 13-byte and a 40-byte key. */
    static const size_t lens[] = {13, 40};
    for (size_t l = 0; l < 2; l++) {
        uint8_t m[40];
        for (size_t i = 0; i < lens[l]; i++)
            m[i] = (uint8_t)(0x41 + i);
        uint64_t base = pz__khash(&key, m, lens[l]);
        double flips = 0;
        for (size_t bit = 0; bit < lens[l] * 8; bit++) {
            m[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            flips += __builtin_popcountll(base ^ pz__khash(&key, m, lens[l]));
            m[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
        flips /= (double)(lens[l] * 8);
        if (flips < 28 || flips > 36)
            fail_msg("length %zu: %.1f output bits flip per input bit", lens[l], flips);
    }
    free(h);
    free(bins);
    explicit_bzero(&key, sizeof(key));
}

/* ---- ktable ------------------------------------------------------------- */

/* Entry words: [0] fp, [1] value, [2] class (0 idle, 1 live, 2 pinned), age = value. */
static pz_kt_class kt_classify(const uint64_t *e, uint64_t now, uint64_t *age, void *ctx)
{
    (void)now;
    (*(int *)ctx)++;
    *age = e[1];
    return (pz_kt_class)e[2];
}

static void test_ktable_ops(void **state)
{
    (void)state;
    int calls = 0;
    pz_kt t;
    assert_int_equal(pz__kt_init(&t, 3, 100000, kt_classify, &calls), 0);
    enum { N = 20000 };
    static uint64_t keys[N];
    static int present[N];
    for (int i = 0; i < N; i++) {
        keys[i] = pz__kt_fp(rnd());
        present[i] = 0;
    }
    /* Random inserts and removals against a shadow set. */
    size_t live = 0;
    for (int round = 0; round < 200000; round++) {
        int i = (int)(rnd() % N);
        uint64_t *e = pz__kt_find(&t, keys[i]);
        assert_int_equal(e != NULL, present[i]);
        if (!e) {
            assert_int_equal(pz__kt_insert(&t, keys[i], 0, &e), 0);
            e[1] = (uint64_t)i;
            e[2] = PZ_KT_LIVE;
            present[i] = 1;
            live++;
        } else {
            assert_true(e[1] == (uint64_t)i);
            if (rnd() % 2) {
                pz__kt_remove(&t, e);
                present[i] = 0;
                live--;
            }
        }
        assert_int_equal(t.count, live);
    }
    for (int i = 0; i < N; i++) {
        uint64_t *e = pz__kt_find(&t, keys[i]);
        assert_int_equal(e != NULL, present[i]);
        if (e)
            assert_true(e[1] == (uint64_t)i);
    }
    assert_true(t.count <= (size_t)(t.nslots * 3 / 4 + 1));
    pz__kt_clear(&t);
    assert_int_equal(pz__kt_init(&t, 0, 100, kt_classify, &calls), PZ_EINVAL);
    assert_int_equal(pz__kt_init(&t, 2, 3, kt_classify, &calls), PZ_EINVAL);
    assert_int_equal(pz__kt_init(&t, 2, 100, NULL, &calls), PZ_EINVAL);
}

static void test_ktable_bound_and_pins(void **state)
{
    (void)state;
    int calls = 0;
    pz_kt t;
    assert_int_equal(pz__kt_init(&t, 3, 64, kt_classify, &calls), 0);
    size_t max_slots = t.max_slots;
    /* 16 pinned entries survive any flood. */
    for (uint64_t i = 1; i <= 16; i++) {
        uint64_t *e;
        assert_int_equal(pz__kt_insert(&t, pz__kt_fp(i * 0x9e3779b97f4a7c15ull), 0, &e), 0);
        e[1] = 0;
        e[2] = PZ_KT_PINNED;
    }
    for (uint64_t i = 0; i < 10000; i++) {
        uint64_t *e;
        uint64_t fp = pz__kt_fp(rnd());
        if (pz__kt_find(&t, fp))
            continue;
        assert_int_equal(pz__kt_insert(&t, fp, i, &e), 0);
        e[1] = i + 100;
        e[2] = i % 3 == 0 ? PZ_KT_IDLE : PZ_KT_LIVE;
        assert_true(t.count <= 64);
        assert_true(t.nslots <= max_slots);
    }
    for (uint64_t i = 1; i <= 16; i++)
        assert_non_null(pz__kt_find(&t, pz__kt_fp(i * 0x9e3779b97f4a7c15ull)));
    assert_true(t.evicted > 0);
    assert_true(t.evicted_idle > 0);
    /* Shrinking keeps the pinned ones. */
    assert_int_equal(pz__kt_set_max_keys(&t, 20, 0), 0);
    assert_true(t.count <= 20);
    for (uint64_t i = 1; i <= 16; i++)
        assert_non_null(pz__kt_find(&t, pz__kt_fp(i * 0x9e3779b97f4a7c15ull)));
    assert_int_equal(pz__kt_set_max_keys(&t, 2, 0), PZ_EINVAL);
    pz__kt_clear(&t);

    /* Every entry pinned: an insert reports PZ_ERANGE instead of evicting. */
    assert_int_equal(pz__kt_init(&t, 3, 16, kt_classify, &calls), 0);
    for (uint64_t i = 1; i <= 16; i++) {
        uint64_t *e;
        assert_int_equal(pz__kt_insert(&t, i, 0, &e), 0);
        e[2] = PZ_KT_PINNED;
    }
    uint64_t *e;
    assert_int_equal(pz__kt_insert(&t, 999, 0, &e), PZ_ERANGE);
    assert_null(e);
    /* The sweep drops idle entries only. */
    pz__kt_find(&t, 3)[2] = PZ_KT_IDLE;
    pz__kt_find(&t, 5)[2] = PZ_KT_IDLE;
    assert_int_equal(pz__kt_sweep(&t, t.nslots, 0), 2);
    assert_null(pz__kt_find(&t, 3));
    assert_non_null(pz__kt_find(&t, 4));
    pz__kt_clear(&t);
}

/* ---- seed behaviour ----------------------------------------------------- */

static void test_new_bucket_full_then_refill(void **state)
{
    (void)state;
    fx f;
    fx_new(&f, "capacity: 10\nrefill_per_second: 2\n");
    uint64_t t0 = 5 * S;
    int known;
    assert_true(usage(&f, "a", t0, &known) == 10.0);
    assert_int_equal(known, 0);
    for (int i = 0; i < 10; i++) {
        pz_rl_decision d = ask(&f, "a", 1, t0);
        assert_int_equal(d.allowed, 1);
        assert_true(d.remaining == 9 - i);
        assert_true(d.limit == 10.0);
    }
    pz_rl_decision d = ask(&f, "a", 1, t0);
    assert_int_equal(d.allowed, 0);
    assert_int_equal(d.reason, PZ_RL_REASON_LIMIT);
    assert_true(d.retry_after_ns == S / 2); /* 1 token at 2/s */
    /* Another key has its own full bucket. */
    assert_int_equal(ask(&f, "b", 10, t0).allowed, 1);
    /* 250 ms later: half a token, still refused, retry in 250 ms. */
    d = ask(&f, "a", 1, t0 + 250 * MS);
    assert_int_equal(d.allowed, 0);
    assert_true(d.retry_after_ns == 250 * MS);
    assert_true(usage(&f, "a", t0 + 250 * MS, &known) == 0.5);
    assert_int_equal(known, 1);
    /* Refill up to capacity, never beyond. */
    assert_true(usage(&f, "a", t0 + 3 * S, NULL) == 6.0);
    assert_true(usage(&f, "a", t0 + 1000 * S, NULL) == 10.0);
    d = ask(&f, "a", 10, t0 + 1000 * S);
    assert_int_equal(d.allowed, 1);
    assert_int_equal(ask(&f, "a", 1, t0 + 1000 * S).allowed, 0);
    fx_free(&f);
}

/* Table-driven: cost against capacity and status. */
static void test_costs_and_status(void **state)
{
    (void)state;
    static const struct {
        pz_peer_status status;
        uint32_t cost;
        int allowed, reason;
        double limit;
    } cases[] = {
        {PZ_STATUS_UNKNOWN, 1, 1, 0, 100},
        {PZ_STATUS_UNKNOWN, 100, 1, 0, 100},
        {PZ_STATUS_UNKNOWN, 101, 0, PZ_RL_REASON_COST, 100},
        {PZ_STATUS_NEUTRAL, 100, 1, 0, 100},
        {PZ_STATUS_TRUSTED, 200, 1, 0, 200},
        {PZ_STATUS_TRUSTED, 201, 0, PZ_RL_REASON_COST, 200},
        {PZ_STATUS_PROBATION, 25, 1, 0, 25},
        {PZ_STATUS_PROBATION, 26, 0, PZ_RL_REASON_COST, 25},
        {PZ_STATUS_BLOCKED, 1, 0, PZ_RL_REASON_STATUS, 0},
        {(pz_peer_status)77, 100, 1, 0, 100}, /* out of range: unknown */
        {PZ_STATUS_UNKNOWN, 0, 1, 0, 100},    /* 0 counts as 1 */
        {PZ_STATUS_UNKNOWN, UINT32_MAX, 0, PZ_RL_REASON_COST, 100},
    };
    /* Each case for a new key and for a known key whose bucket is full
     * again (a different code path: known keys that pass take a short one). */
    for (int known = 0; known < 2; known++) {
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            fx f;
            fx_new(&f, "capacity: 100\nrefill_per_second: 1\n");
            uint64_t t = S;
            if (known) {
                assert_int_equal(ask(&f, "peer", 7, S).allowed, 1);
                t = 1000 * S;
            }
            pz_rl_request r = req("peer", NULL, cases[i].cost, cases[i].status, t);
            pz_rl_decision d;
            assert_int_equal(tb()->allow(f.st, &r, &d), 0);
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

/* Every field of a decision is written, whatever the path: new key, known
 * key passing, refusals, a peer id hashed inline (<= 16 bytes) or not, a
 * tagged key. The decision starts as garbage each time. */
static void check_fields(fx *f, const char *node, pz_addr *a, uint32_t cost, uint64_t now, int allowed,
                         int reason, double remaining, double limit, uint64_t retry)
{
    pz_rl_request r = {sizeof(r), node, a, NULL, cost, PZ_STATUS_UNKNOWN, now};
    pz_rl_decision d;
    memset(&d, 0x5a, sizeof(d));
    d.struct_size = sizeof(d);
    assert_int_equal(tb()->allow(f->st, &r, &d), 0);
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
        fx_new(&f, ids[i] ? "capacity: 4\nrefill_per_second: 2\n"
                          : "capacity: 4\nrefill_per_second: 2\nkey: address\n");
        pz_addr a = addr4(203, 0, 113, (uint8_t)i);
        check_fields(&f, ids[i], &a, 1, S, 1, 0, 3, 4, 0);                      /* new key */
        check_fields(&f, ids[i], &a, 2, S, 1, 0, 1, 4, 0);                      /* known, passes */
        check_fields(&f, ids[i], &a, 2, S, 0, PZ_RL_REASON_LIMIT, 1, 4, S / 2); /* refused */
        check_fields(&f, ids[i], &a, 5, S, 0, PZ_RL_REASON_COST, 1, 4, 0);
        check_fields(&f, ids[i], &a, 0, S + S / 2, 1, 0, 1, 4, 0); /* 0 counts as 1; +1 refilled */
        check_fields(&f, ids[i], &a, 1, 10 * S, 1, 0, 3, 4, 0);    /* refilled to full */
        fx_free(&f);
    }
}

static void test_status_changes_clamp(void **state)
{
    (void)state;
    fx f;
    fx_new(&f, "capacity: 100\nrefill_per_second: 10\nstatus_factors: {probation: 0.5, trusted: 3}\n");
    pz_rl_request r = req("p", NULL, 10, PZ_STATUS_TRUSTED, S);
    pz_rl_decision d;
    assert_int_equal(tb()->allow(f.st, &r, &d), 0);
    assert_true(d.remaining == 290);
    /* Demoted to probation: the level clamps to the smaller capacity, and
     * refills at half rate. */
    r = req("p", NULL, 1, PZ_STATUS_PROBATION, S);
    assert_int_equal(tb()->allow(f.st, &r, &d), 0);
    assert_true(d.remaining == 49 && d.limit == 50);
    /* 1 s at 5/s: 49 + 5, capped at 50. */
    r = req("p", NULL, 50, PZ_STATUS_PROBATION, 2 * S);
    assert_int_equal(tb()->allow(f.st, &r, &d), 0);
    assert_int_equal(d.allowed, 1);
    assert_true(d.remaining == 0);
    r = req("p", NULL, 1, PZ_STATUS_PROBATION, 2 * S);
    assert_int_equal(tb()->allow(f.st, &r, &d), 0);
    assert_int_equal(d.allowed, 0);
    assert_true(d.retry_after_ns == 200 * MS);
    /* Promoted again: the trusted capacity and rate apply. */
    r = req("p", NULL, 1, PZ_STATUS_TRUSTED, 3 * S);
    assert_int_equal(tb()->allow(f.st, &r, &d), 0);
    assert_true(d.remaining == 29 && d.limit == 300);
    fx_free(&f);
}

static void test_keys(void **state)
{
    (void)state;
    static const struct {
        const char *mode;
        /* two requests: node, method, address last byte; same bucket? */
        const char *n1, *m1;
        uint8_t a1;
        const char *n2, *m2;
        uint8_t a2;
        int same;
    } cases[] = {
        {"peer", "x", "get", 1, "x", "put", 2, 1},
        {"peer", "x", NULL, 1, "y", NULL, 1, 0},
        {"peer", NULL, NULL, 1, NULL, NULL, 1, 1},
        {"peer", NULL, NULL, 1, NULL, NULL, 2, 0},
        {"address", "x", NULL, 1, "y", NULL, 1, 1},
        {"address", "x", NULL, 1, "x", NULL, 2, 0},
        {"peer_method", "x", "get", 1, "x", "get", 2, 1},
        {"peer_method", "x", "get", 1, "x", "put", 1, 0},
        {"peer_method", "x", "get", 1, "y", "get", 1, 0},
        {"peer_method", NULL, "get", 1, NULL, "get", 1, 1},
        {"peer_method", NULL, "get", 1, NULL, "put", 1, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[128];
        snprintf(yaml, sizeof(yaml), "capacity: 5\nrefill_per_second: 1\nkey: %s\n", cases[i].mode);
        fx f;
        fx_new(&f, yaml);
        pz_addr a1 = addr4(192, 0, 2, cases[i].a1), a2 = addr4(192, 0, 2, cases[i].a2);
        pz_rl_request r1 = {sizeof(r1), cases[i].n1, &a1, cases[i].m1, 5, 0, S};
        pz_rl_request r2 = {sizeof(r2), cases[i].n2, &a2, cases[i].m2, 1, 0, S};
        pz_rl_decision d;
        assert_int_equal(tb()->allow(f.st, &r1, &d), 0);
        assert_int_equal(d.allowed, 1);
        assert_int_equal(tb()->allow(f.st, &r2, &d), 0);
        if (d.allowed == cases[i].same)
            fail_msg("case %zu (%s): second request allowed=%d", i, cases[i].mode, d.allowed);
        fx_free(&f);
    }
    /* A method name longer than the fast path's buffer still keys. */
    fx f;
    fx_new(&f, "capacity: 1\nrefill_per_second: 1\nkey: peer_method\n");
    char longm[300];
    memset(longm, 'm', sizeof(longm) - 1);
    longm[sizeof(longm) - 1] = 0;
    pz_rl_request r = req("node-1", longm, 1, 0, S);
    pz_rl_decision d;
    assert_int_equal(tb()->allow(f.st, &r, &d), 0);
    assert_int_equal(d.allowed, 1);
    assert_int_equal(tb()->allow(f.st, &r, &d), 0);
    assert_int_equal(d.allowed, 0);
    longm[0] = 'n';
    assert_int_equal(tb()->allow(f.st, &r, &d), 0);
    assert_int_equal(d.allowed, 1);
    fx_free(&f);
}

/* ---- exactness and invariants ------------------------------------------ */

/* The seed's bug: floor(elapsed * rate) with last = now loses the fraction
 * on every call. Calling every 1 ms at 3 tokens/s must still earn 3/s. */
static void test_exact_refill_frequent_calls(void **state)
{
    (void)state;
    fx f;
    fx_new(&f, "capacity: 5\nrefill_per_second: 3\n");
    uint64_t now = S, allowed = 0;
    for (uint64_t i = 0; i <= 100000; i++, now += MS) /* 100 s */
        allowed += (uint64_t)ask(&f, "k", 1, now).allowed;
    /* 5 at start + 3/s * 100 s: exactly, since the rate is representable. */
    assert_int_equal(allowed, 5 + 300);
    fx_free(&f);

    /* A rate with no short binary expansion: within one token of exact. */
    fx_new(&f, "capacity: 2\nrefill_per_second: 0.7\n");
    now = S;
    allowed = 0;
    for (uint64_t i = 0; i <= 1000000; i++, now += 100000) /* every 100 us, 100 s */
        allowed += (uint64_t)ask(&f, "k", 1, now).allowed;
    assert_true(allowed <= 2 + 70);
    assert_true(allowed >= 2 + 70 - 1);
    fx_free(&f);
}

/* Over a long random run: allowed cost <= capacity + rate * time, and the
 * level stays in [0, capacity]. */
static void test_invariants_long_run(void **state)
{
    (void)state;
    static const struct {
        double cap, rate;
    } params[] = {{10, 1}, {100, 33.3}, {7.5, 0.125}, {1000, 1e4}, {3, 1e-3}};
    for (size_t p = 0; p < sizeof(params) / sizeof(params[0]); p++) {
        char yaml[128];
        snprintf(yaml, sizeof(yaml), "capacity: %g\nrefill_per_second: %g\n", params[p].cap, params[p].rate);
        fx f;
        fx_new(&f, yaml);
        double cap = params[p].cap, rate = params[p].rate;
        uint64_t t0 = 10 * S, now = t0, allowed = 0, maxcost = (uint64_t)cap;
        double mean_gap = 1.0 / rate / 4 * 1e9; /* ask ~4x faster than the rate */
        for (int i = 0; i < 200000; i++) {
            now += (uint64_t)((double)(rnd() % 1000) / 500.0 * mean_gap);
            uint32_t cost = (uint32_t)(1 + rnd() % (maxcost < 3 ? maxcost : 3));
            pz_rl_decision d = ask(&f, "k", cost, now);
            if (d.allowed)
                allowed += cost;
            assert_true(d.remaining >= 0 && d.remaining <= cap);
            double bound = cap + rate * (double)(now - t0) / 1e9;
            if ((double)allowed > bound)
                fail_msg("params %zu step %d: allowed %llu > bound %.9f", p, i, (unsigned long long)allowed,
                         bound);
            double avail = usage(&f, "k", now, NULL);
            assert_true(avail >= 0 && avail <= cap);
        }
        /* Not vacuous: demand is ~8x supply, so most of it was granted. */
        assert_true((double)allowed >= 0.8 * rate * (double)(now - t0) / 1e9);
        fx_free(&f);
    }
}

/* ---- update_config, get_usage ------------------------------------------ */

static void test_update_config_keeps_level(void **state)
{
    (void)state;
    fx f;
    fx_new(&f, "capacity: 10\nrefill_per_second: 1\n");
    assert_int_equal(ask(&f, "a", 6, S).allowed, 1);
    assert_true(usage(&f, "a", S, NULL) == 4.0);

    /* Larger capacity (a different fixed-point scale): level kept. */
    const pz_conf *c = NULL;
    assert_int_equal(pz_mock_conf(f.m, "capacity: 1000000\nrefill_per_second: 1\n", &c), 0);
    assert_int_equal(tb()->update_config(f.st, c, pz_mock_err(f.m)), 0);
    assert_true(usage(&f, "a", S, NULL) == 4.0);
    /* Smaller capacity: level clamped to it. */
    assert_int_equal(pz_mock_conf(f.m, "capacity: 2.5\nrefill_per_second: 1\n", &c), 0);
    assert_int_equal(tb()->update_config(f.st, c, pz_mock_err(f.m)), 0);
    assert_true(usage(&f, "a", S, NULL) == 2.5);
    /* New rate applies from now on. */
    assert_int_equal(pz_mock_conf(f.m, "capacity: 100\nrefill_per_second: 4\n", &c), 0);
    assert_int_equal(tb()->update_config(f.st, c, pz_mock_err(f.m)), 0);
    assert_true(usage(&f, "a", S + S / 2, NULL) == 4.5);
    /* A bad update keeps the old settings. */
    assert_int_equal(pz_mock_conf(f.m, "capacity: 100\nrefill_per_second: -4\n", &c), 0);
    assert_int_equal(tb()->update_config(f.st, c, pz_mock_err(f.m)), PZ_ECONFIG);
    assert_non_null(strstr(pz_mock_err_msg(f.m), "test.yaml:2:20"));
    assert_true(usage(&f, "a", 2 * S, NULL) == 6.5);
    /* max_keys shrinks the table; changing the key starts afresh. */
    assert_int_equal(
        pz_mock_conf(f.m, "capacity: 100\nrefill_per_second: 4\nmax_keys: 16\nkey: address\n", &c), 0);
    assert_int_equal(tb()->update_config(f.st, c, pz_mock_err(f.m)), 0);
    int known = 1;
    usage(&f, "a", 2 * S, &known);
    assert_int_equal(known, 0);
    assert_true(pz_mock_log_contains(f.m, "every bucket starts full"));
    fx_free(&f);
}

static void test_get_usage_does_not_spend(void **state)
{
    (void)state;
    fx f;
    fx_new(&f, NULL); /* defaults: capacity 100, 10/s */
    int known;
    for (int i = 0; i < 5; i++)
        assert_true(usage(&f, "z", S, &known) == 100.0);
    assert_int_equal(known, 0);
    assert_int_equal(ask(&f, "z", 100, S).allowed, 1);
    pz_rl_request r = req("z", NULL, 1, 0, S + 100 * MS);
    pz_rl_usage u;
    assert_int_equal(tb()->get_usage(f.st, &r, &u), 0);
    assert_int_equal(u.known, 1);
    assert_true(u.available == 1.0);
    assert_true(u.capacity == 100.0);
    assert_true(u.last_ns == S);
    fx_free(&f);
}

/* ---- memory bound ------------------------------------------------------- */

static void test_key_flood_evicts(void **state)
{
    (void)state;
    fx f;
    fx_new(&f, "capacity: 10\nrefill_per_second: 1\nmax_keys: 1000\n");
    size_t keys, bytes, max_bytes = 0;
    uint64_t now = S, evicted = 0, idle = 0;
    char name[32];
    /* 200 depleted keys that keep asking, 200 idle (full) keys. */
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof(name), "busy-%d", i);
        assert_int_equal(ask(&f, name, 10, now).allowed, 1);
    }
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof(name), "idle-%d", i);
        ask(&f, name, 0, now); /* cost 0 counts as 1 */
    }
    now += 2 * S; /* idle keys refill completely; busy keys have 2 of 10 */
    /* A flood of 100000 new keys, with the busy keys asking in between. */
    for (int i = 0; i < 100000; i++) {
        snprintf(name, sizeof(name), "flood-%d", i);
        now += 1000;
        ask(&f, name, 1, now);
        if (i % 20 == 0)
            for (int j = 0; j < 200; j++) {
                snprintf(name, sizeof(name), "busy-%d", j);
                ask(&f, name, 1, now);
            }
        pz__tb_stats(f.st, &keys, &bytes, NULL, NULL);
        assert_true(keys <= 1000);
        if (bytes > max_bytes)
            max_bytes = bytes;
    }
    pz__tb_stats(f.st, &keys, &bytes, &evicted, &idle);
    assert_true(evicted > 90000);
    assert_true(idle >= 200);
    /* Bounded: 24-byte entries at load >= 3/4 (plus the instance). */
    assert_true(max_bytes <= 1000 * 32 + 1024);
    /* Busy keys are depleted (far from full): none was evicted and reset to
     * full (it would show 9 or 10 tokens). */
    for (int j = 0; j < 200; j++) {
        int known;
        snprintf(name, sizeof(name), "busy-%d", j);
        double avail = usage(&f, name, now, &known);
        assert_int_equal(known, 1);
        assert_true(avail < 3.0);
    }
    fx_free(&f);
}

/* ---- configuration errors ----------------------------------------------- */

static void test_config_errors(void **state)
{
    (void)state;
    static const struct {
        const char *yaml;
        const char *where; /* expected in the message */
    } cases[] = {
        {"capacity: fast\n", "test.yaml:1:11: capacity"},
        {"capacity: 0.5\n", "test.yaml:1:11: capacity"},
        {"refill_per_second: -1\n", "test.yaml:1:20: refill_per_second"},
        {"refill_per_second: [1]\n", "test.yaml:1:20: refill_per_second"},
        {"key: ip\n", "test.yaml:1:6: key: expected peer, address or peer_method, found \"ip\""},
        {"max_keys: 3\n", "test.yaml:1:11: max_keys"},
        {"max_keys: 1.5\n", "test.yaml:1:11: max_keys"},
        {"status_factors: 3\n", "test.yaml:1:17: status_factors"},
        {"status_factors:\n  probation: -0.5\n", "test.yaml:2:14: status_factors.probation"},
        {"status_factors:\n  trusted: 2000\n", "test.yaml:2:12: status_factors.trusted"},
        {"capacity: 1000000000000\n", "above the limit"},
        {"capacity: 1000000\nrefill_per_second: 0.0000001\n", "below the resolution"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pz_mock *m = pz_mock_new();
        const pz_conf *conf;
        void *st = NULL;
        assert_int_equal(pz_mock_conf(m, cases[i].yaml, &conf), 0);
        int rc = tb()->create(pz_mock_core(m), conf, &st, pz_mock_err(m));
        if (rc != PZ_ECONFIG || !strstr(pz_mock_err_msg(m), cases[i].where))
            fail_msg("case %zu: rc %d, message \"%s\", wanted \"%s\"", i, rc, pz_mock_err_msg(m),
                     cases[i].where);
        assert_null(st);
        pz_mock_free(m);
    }
    /* A misspelt key is left unread: the core reports it. */
    pz_mock *m = pz_mock_new();
    const pz_conf *conf;
    void *st = NULL;
    assert_int_equal(pz_mock_conf(m, "capacity: 5\ncapcity: 6\n", &conf), 0);
    assert_int_equal(tb()->create(pz_mock_core(m), conf, &st, pz_mock_err(m)), 0);
    assert_int_equal(pz_mock_check_unused(m, conf), PZ_ECONFIG);
    assert_non_null(strstr(pz_mock_err_msg(m), "test.yaml:2:1: capcity: unknown key"));
    tb()->destroy(st);
    /* No randomness: no instance. */
    pz_mock_set_random_fail(m, 1);
    st = NULL;
    assert_int_equal(tb()->create(pz_mock_core(m), NULL, &st, pz_mock_err(m)), PZ_ECRYPTO);
    assert_null(st);
    pz_mock_free(m);
    tb()->destroy(NULL);
}

int main(void)
{
    default_addr = addr4(198, 51, 100, 7);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_siphash_reference),
        cmocka_unit_test(test_khash_reference),
        cmocka_unit_test(test_khash_strlen),
        cmocka_unit_test(test_khash_spread),
        cmocka_unit_test(test_ktable_ops),
        cmocka_unit_test(test_ktable_bound_and_pins),
        cmocka_unit_test(test_new_bucket_full_then_refill),
        cmocka_unit_test(test_costs_and_status),
        cmocka_unit_test(test_decision_fields),
        cmocka_unit_test(test_status_changes_clamp),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_exact_refill_frequent_calls),
        cmocka_unit_test(test_invariants_long_run),
        cmocka_unit_test(test_update_config_keeps_level),
        cmocka_unit_test(test_get_usage_does_not_spend),
        cmocka_unit_test(test_key_flood_evicts),
        cmocka_unit_test(test_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
