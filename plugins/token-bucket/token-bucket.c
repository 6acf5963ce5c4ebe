/* plugins/token-bucket/token-bucket.c — the token-bucket rate limiter.
 *
 * The seed's TokenBucketRateLimiter (allow(key, cost): a new bucket starts
 * full, refills at refill_per_second up to capacity, update_config keeps
 * each bucket's level, get_usage(key)) with three changes:
 *
 *  - Exact refill. Tokens are integers in units of 1/(1e9 * 2^s) token, so
 *    a refill rate of r tokens/s is floor(r * 2^s) units per nanosecond and
 *    the refill for dt ns is dt * rate units: no division, no truncation,
 *    however often a key calls (the seed floored elapsed * rate to whole
 *    tokens and then set last = now, losing up to a token per call). The
 *    scale s is the largest (up to 32) with capacity * max factor in units
 *    below 2^61; the rate is rounded down once, at configuration, so the
 *    limiter never grants more than configured.
 *  - Bounded memory: state lives in a keyed-hash table (plugins/common/
 *    ktable.h) of at most max_keys entries of 24 bytes; full buckets are idle
 *    and dropped first; under a key flood the bucket that would be full
 *    soonest goes next (dropping it grants the fewest tokens).
 *  - Status budgets: capacity and refill are scaled by the peer status's
 *    factor (status_factors).
 *
 * Entry words: [0] fingerprint, [1] last refill time (ns), [2] level in
 * units | status of the last request << 61.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <prozsec/ratelimit.h>

#include "../common/ktable.h"
#include "../common/rlcommon.h"
#include "token-bucket.h"

#define LEVEL_BITS 61
#define LEVEL_MASK (((uint64_t)1 << LEVEL_BITS) - 1)
#define NS_PER_S 1000000000ULL
#define MAX_SHIFT 32
#define TB_STRIDE 3 /* words per entry */

typedef struct tb_settings {
    pz_rl_common c;
    double capacity; /* tokens, before status factors */
    double rate;     /* tokens per second, before status factors */
    unsigned shift;  /* s: units per token = 1e9 << s */
    uint64_t unit;
    double unit_d; /* unit as a double */
    /* Per status, one 64-byte row per pz_peer_status: what a decision reads
     * (one base register on the hot path). */
    struct tb_per {
        uint64_t cap_u;   /* capacity in units */
        uint64_t rate_u;  /* units per nanosecond */
        uint64_t full_ns; /* ceil(cap_u / rate_u): an empty bucket is full after this (max if rate 0) */
        uint64_t st_bits; /* the status, where entry word 2 keeps it */
        uint64_t unit;    /* = tb_settings.unit */
        double unit_d;    /* = tb_settings.unit_d */
        pz_rl_tail tail;  /* limit = cap_u / unit, as reported; reason 0 */
    } per[PZ_RL_NSTATUS];
    uint64_t max_cost[PZ_RL_NSTATUS]; /* floor(cap_u / unit): largest cost that can ever pass */
    double inv_rate[PZ_RL_NSTATUS];   /* 1 / rate_u (0 when rate_u is 0), for eviction */
} tb_settings;

typedef struct tb {
    const pz_core *core;
    pz_rl_keys keys; /* from a random secret */
    tb_settings s;
    pz_kt kt;
} tb;

static int parse(const pz_core *core, const pz_conf *conf, tb_settings *s, pz_err *err)
{
    int rc = pz__rl_common_parse(core, conf, &s->c, err);
    if (rc)
        goto out;
    s->capacity = 100;
    s->rate = 10;
    if (conf) {
        rc = core->conf_double(conf, "capacity", 100.0, 1.0, 1e12, &s->capacity, err);
        if (rc)
            goto out;
        rc = core->conf_double(conf, "refill_per_second", 10.0, 0.0, 1e12, &s->rate, err);
        if (rc)
            goto out;
    }
    double maxf = 0;
    for (int i = 0; i < PZ_RL_NSTATUS; i++)
        if (s->c.factor[i] > maxf)
            maxf = s->c.factor[i];
    /* Largest s with capacity * maxf * 1e9 * 2^s < 2^61. */
    double room = ldexp(1.0, LEVEL_BITS) / ((maxf > 0 ? maxf : 1.0) * s->capacity * (double)NS_PER_S);
    if (room < 1.0) {
        rc = core->error(core, err, PZ_ECONFIG,
                         "capacity %g times the largest status factor %g is above the limit of %g tokens",
                         s->capacity, maxf, ldexp(1.0, LEVEL_BITS) / (double)NS_PER_S);
        goto out;
    }
    s->shift = (unsigned)floor(log2(room));
    if (s->shift > MAX_SHIFT)
        s->shift = MAX_SHIFT;
    s->unit = NS_PER_S << s->shift;
    s->unit_d = (double)s->unit;
    for (int i = 0; i < PZ_RL_NSTATUS; i++) {
        double f = s->c.factor[i];
        s->per[i].cap_u = (uint64_t)floor(s->capacity * f * (double)s->unit);
        s->max_cost[i] = s->per[i].cap_u / s->unit;
        s->per[i].st_bits = (uint64_t)i << LEVEL_BITS;
        s->per[i].unit = s->unit;
        s->per[i].unit_d = s->unit_d;
        s->per[i].tail = (pz_rl_tail){(double)s->per[i].cap_u / (double)s->unit, 0, 0};
        double r = floor(s->rate * f * ldexp(1.0, (int)s->shift));
        if (r >= ldexp(1.0, 62)) {
            rc = core->error(core, err, PZ_ECONFIG,
                             "refill_per_second %g is too large for capacity %g (at most 1e9 x capacity)",
                             s->rate, s->capacity);
            goto out;
        }
        s->per[i].rate_u = (uint64_t)r;
        s->per[i].full_ns = r > 0 ? (s->per[i].cap_u + s->per[i].rate_u - 1) / s->per[i].rate_u : UINT64_MAX;
        s->inv_rate[i] = r > 0 ? 1.0 / r : 0;
        if (s->rate > 0 && f > 0 && s->per[i].rate_u == 0) {
            rc = core->error(core, err, PZ_ECONFIG,
                             "refill_per_second %g x status factor %g is below the resolution %g/s for "
                             "capacity %g",
                             s->rate, f, ldexp(1.0, -(int)s->shift), s->capacity);
            goto out;
        }
    }
out:
    return rc;
}

static pz_kt_class classify(const uint64_t *e, uint64_t now, uint64_t *age, void *ctx)
{
    const tb *b = ctx;
    unsigned st = (unsigned)(e[2] >> LEVEL_BITS);
    uint64_t level = e[2] & LEVEL_MASK, cap = b->s.per[st].cap_u, rate = b->s.per[st].rate_u, last = e[1];
    if (level >= cap)
        return PZ_KT_IDLE;
    uint64_t add;
    if (now > last && (__builtin_mul_overflow(now - last, rate, &add) || add >= cap - level))
        return PZ_KT_IDLE;
    /* Evict the bucket that will be full soonest: dropping it (a new bucket
     * starts full) grants the fewest tokens. (An estimate is enough here;
     * no division on the eviction path.) */
    double to_full = rate ? (double)(cap - level) * b->s.inv_rate[st] : 1e30;
    *age = to_full >= (double)(UINT64_MAX - last) ? UINT64_MAX : last + (uint64_t)to_full;
    return PZ_KT_LIVE;
}

/* Level of entry E at LAST2 (REQ's time, or E's if later) under the status
 * row PS. Without branches (the entry's load is the decision's cache miss)
 * and without a division: the time refilled is clamped to what fills an
 * empty bucket, so the product fits 64 bits (< cap_u + rate_u < 2^63). */
static inline __attribute__((always_inline)) uint64_t level_at(const uint64_t *e, uint64_t last2,
                                                               const struct tb_per *ps)
{
    uint64_t dt = last2 - e[1];
    dt = dt < ps->full_ns ? dt : ps->full_ns;
    uint64_t level = (e[2] & LEVEL_MASK) + dt * ps->rate_u;
    return level < ps->cap_u ? level : ps->cap_u;
}

static int tb_create(const pz_core *core, const pz_conf *conf, void **state, pz_err *err)
{
    int rc = 0;
    tb *b = calloc(1, sizeof(*b));
    *state = NULL;
    if (!b)
        return core->error(core, err, PZ_ENOMEM, "out of memory");
    b->core = core;
    rc = parse(core, conf, &b->s, err);
    if (rc)
        goto out;
    uint8_t secret[PZ_KHASH_SECRET_LEN];
    rc = core->random(core, secret, sizeof(secret));
    if (rc) {
        rc = core->error(core, err, rc, "cannot draw the key-hash secret");
        goto out;
    }
    pz__rl_keys_init(&b->keys, secret);
    explicit_bzero(secret, sizeof(secret));
    rc = pz__kt_init(&b->kt, TB_STRIDE, (size_t)b->s.c.max_keys, classify, b);
    if (rc) {
        rc = core->error(core, err, rc, "cannot allocate the bucket table");
        goto out;
    }
    core->log(core, PZ_LOG_DEBUG, "capacity %g, refill %g/s, key %s, max_keys %llu, scale 2^-%u",
              b->s.capacity, b->s.rate, pz__rl_keymode_name(b->s.c.key), (unsigned long long)b->s.c.max_keys,
              b->s.shift);
    *state = b;
out:
    if (rc) {
        pz__kt_clear(&b->kt);
        explicit_bzero(&b->keys, sizeof(b->keys));
        free(b);
    }
    return rc;
}

static void tb_destroy(void *state)
{
    tb *b = state;
    if (!b)
        return;
    pz__kt_clear(&b->kt);
    explicit_bzero(&b->keys, sizeof(b->keys));
    free(b);
}

/* Spend REQ's cost from entry E, whose level at LAST (REQ's time, or the
 * entry's if later) is LEVEL under the status row PS of status ST; store the
 * entry and fill OUT. */
static inline __attribute__((always_inline)) void decide(const tb_settings *s, unsigned st, uint64_t *e,
                                                         uint64_t last, uint64_t level,
                                                         const pz_rl_request *req, pz_rl_decision *out)
{
    const struct tb_per *ps = &s->per[st];
    uint32_t cost = req->cost ? req->cost : 1;
    int allowed = 0, reason = 0;
    uint64_t retry = 0;
    if (cost <= s->max_cost[st]) {
        /* cost * unit <= cap < 2^61: no overflow. */
        uint64_t need = (uint64_t)cost * ps->unit;
        if (need <= level) {
            level -= need;
            allowed = 1;
        } else {
            reason = PZ_RL_REASON_LIMIT;
            retry = ps->rate_u ? (need - level + ps->rate_u - 1) / ps->rate_u : 0;
        }
    } else {
        reason = ps->cap_u == 0 ? PZ_RL_REASON_STATUS : PZ_RL_REASON_COST;
    }
    e[1] = last;
    e[2] = level | ps->st_bits;
    pz__rl_put(out, allowed, reason, retry, (double)(int64_t)level / ps->unit_d /* level < 2^61 */,
               &ps->tail);
}

/* A key with no entry: insert one, full, and decide. Off the hot path. */
static PZ_RL_OUT_OF_LINE int allow_new(tb *b, uint64_t fp, const pz_rl_request *req, pz_rl_decision *out)
{
    unsigned st = pz__rl_status(req);
    uint64_t *e;
    int rc = pz__kt_insert(&b->kt, fp, req->now_ns, &e);
    if (rc) {
        pz__rl_put(out, 0, PZ_RL_REASON_NOMEM, 0, 0, &b->s.per[st].tail);
        return rc;
    }
    decide(&b->s, st, e, req->now_ns, b->s.per[st].cap_u, req, out); /* a new bucket starts full */
    return 0;
}

/* A known key whose request does not simply pass (see allow_fp): the
 * general decision. Off the hot path. */
static PZ_RL_OUT_OF_LINE int allow_slow(const tb *b, uint64_t *e, const pz_rl_request *req,
                                        pz_rl_decision *out)
{
    unsigned st = pz__rl_status(req);
    uint64_t now = req->now_ns, last2 = now > e[1] ? now : e[1];
    decide(&b->s, st, e, last2, level_at(e, last2, &b->s.per[st]), req, out);
    return 0;
}

/* The decision for the key whose fingerprint is FP. Written for the common
 * case, a known key whose request passes, with few instructions, stores and
 * live values (the settings row PS stands for B once the entry is found);
 * everything else goes to allow_new or allow_slow. */
static inline __attribute__((always_inline)) int allow_fp(tb *b, uint64_t fp, const pz_rl_request *req,
                                                          pz_rl_decision *out)
{
    const struct tb_per *ps = &b->s.per[pz__rl_status(req)];
    /* One register for the row: without this the compiler rebuilds its
     * address for each field, and runs out of registers. */
    __asm__("" : "+r"(ps));
    uint64_t *e = pz__kt_find_s(&b->kt, fp, TB_STRIDE);
    if (__builtin_expect(!e, 0))
        return allow_new(b, fp, req, out);
    uint64_t now = req->now_ns, last = e[1], last2 = now > last ? now : last; /* time never runs backward */
    uint64_t level = level_at(e, last2, ps);
    int64_t need;
    /* A cost of 0 (need - 1 wraps), one whose need overflows, or a refusal:
     * the general path. Else need <= level <= cap, so cost is in range. */
    if (__builtin_expect(__builtin_mul_overflow((int64_t)req->cost, (int64_t)ps->unit, &need) ||
                             (uint64_t)need - 1 >= level,
                         0))
        return allow_slow(b, e, req, out);
    level -= (uint64_t)need;
    e[1] = last2; /* time never runs backward */
    e[2] = level | ps->st_bits;
    pz__rl_put(out, 1, 0, 0, (double)(int64_t)level / ps->unit_d, &ps->tail);
    return 0;
}

/* Any key (tagged composite keys, peer ids longer than 16 bytes). */
static PZ_RL_OUT_OF_LINE int allow_general(tb *b, const pz_rl_request *req, pz_rl_decision *out)
{
    return allow_fp(b, pz__rl_fp(pz__rl_key_hash(&b->keys, b->s.c.key, req)), req, out);
}

static int tb_allow(void *state, const pz_rl_request *req, pz_rl_decision *out)
{
    tb *b = state;
    const char *id = req->node_id;
    /* The common case, a peer id of up to 16 bytes, hashed in place, calls
     * nothing: a call would make the compiler save registers on the stack,
     * and stores are what limits this path (see pz__rl_put). */
    if (__builtin_expect(b->s.c.key != PZ_RLKEY_PEER || !id, 0))
        return allow_general(b, req, out);
    size_t len = pz__kh_strlen(id);
    if (__builtin_expect(len > 16, 0))
        return allow_general(b, req, out);
    return allow_fp(b, pz__rl_fp(pz__khash_short(&b->keys.peer, id, len)), req, out);
}

static int tb_get_usage(void *state, const pz_rl_request *req, pz_rl_usage *out)
{
    tb *b = state;
    const tb_settings *s = &b->s;
    unsigned st = pz__rl_status(req);
    uint64_t cap = s->per[st].cap_u;
    const uint64_t *e = pz__kt_find_s(&b->kt, pz__rl_fp(pz__rl_key_hash(&b->keys, s->c.key, req)), TB_STRIDE);
    out->capacity = (double)cap / (double)s->unit;
    if (!e) {
        out->known = 0;
        out->available = out->capacity;
        out->last_ns = 0;
        return 0;
    }
    out->known = 1;
    uint64_t last2 = req->now_ns > e[1] ? req->now_ns : e[1];
    out->available = (double)level_at(e, last2, &s->per[st]) / (double)s->unit;
    out->last_ns = e[1];
    return 0;
}

static int tb_update_config(void *state, const pz_conf *conf, pz_err *err)
{
    tb *b = state;
    tb_settings ns;
    int rc = parse(b->core, conf, &ns, err);
    if (rc)
        goto out;
    uint64_t now = b->core->monotonic_ns(b->core);
    if (ns.c.max_keys != b->s.c.max_keys) {
        rc = pz__kt_set_max_keys(&b->kt, (size_t)ns.c.max_keys, now);
        if (rc) {
            rc = b->core->error(b->core, err, rc, "cannot resize the bucket table to max_keys %llu",
                                (unsigned long long)ns.c.max_keys);
            goto out;
        }
    }
    int rekey = ns.c.key != b->s.c.key;
    for (size_t i = 0; i < b->kt.nslots; i++) {
        uint64_t *e = pz__kt_slot(&b->kt, i);
        if (!e[0])
            continue;
        if (rekey) {
            e[0] = 0;
            memset(e, 0, b->kt.stride * sizeof(uint64_t));
            continue;
        }
        /* Keep the level: bring it to the new scale, clamp to the new
         * capacity for the entry's status. */
        unsigned st = (unsigned)(e[2] >> LEVEL_BITS);
        uint64_t level = e[2] & LEVEL_MASK;
        if (ns.shift > b->s.shift) {
            unsigned d = ns.shift - b->s.shift;
            level = level > (ns.per[st].cap_u >> d) ? ns.per[st].cap_u : level << d;
        } else {
            level >>= b->s.shift - ns.shift;
        }
        if (level > ns.per[st].cap_u)
            level = ns.per[st].cap_u;
        e[2] = level | (uint64_t)st << LEVEL_BITS;
    }
    if (rekey) {
        b->kt.count = 0;
        b->core->log(b->core, PZ_LOG_NOTICE, "key changed from %s to %s: every bucket starts full",
                     pz__rl_keymode_name(b->s.c.key), pz__rl_keymode_name(ns.c.key));
    }
    b->s = ns;
out:
    return rc;
}

void pz__tb_stats(void *state, size_t *keys, size_t *bytes, uint64_t *evicted, uint64_t *evicted_idle)
{
    tb *b = state;
    if (keys)
        *keys = b->kt.count;
    if (bytes)
        *bytes = pz__kt_bytes(&b->kt) + sizeof(*b);
    if (evicted)
        *evicted = b->kt.evicted;
    if (evicted_idle)
        *evicted_idle = b->kt.evicted_idle;
}

uint64_t pz__tb_unit(void *state)
{
    return ((tb *)state)->s.unit;
}

static const pz_ratelimit_provider provider = {
    .struct_size = sizeof(pz_ratelimit_provider),
    .create = tb_create,
    .destroy = tb_destroy,
    .allow = tb_allow,
    .update_config = tb_update_config,
    .get_usage = tb_get_usage,
};

static const pz_conf_key schema[] = {
    {"capacity", PZ_CONF_DOUBLE, "100", "bucket size in cost units (burst); a new key starts full"},
    {"refill_per_second", PZ_CONF_DOUBLE, "10", "cost units added per second, exactly, up to capacity"},
    {"key", PZ_CONF_STRING, "peer", "peer | address | peer_method: what a bucket belongs to"},
    {"max_keys", PZ_CONF_INT, "1048576", "most buckets kept (24 B each + 1/3 slack); LRU eviction beyond"},
    {"status_factors.unknown", PZ_CONF_DOUBLE, "1", "budget factor for peers of unknown status"},
    {"status_factors.blocked", PZ_CONF_DOUBLE, "0", "budget factor for blocked peers"},
    {"status_factors.probation", PZ_CONF_DOUBLE, "0.25", "budget factor for peers on probation"},
    {"status_factors.neutral", PZ_CONF_DOUBLE, "1", "budget factor for neutral peers"},
    {"status_factors.trusted", PZ_CONF_DOUBLE, "2", "budget factor for trusted peers"},
    {NULL, 0, NULL, NULL},
};

static const pz_plugin_descriptor descriptor = {
    PZ_PLUGIN_DESCRIPTOR_INIT,
    .name = "token-bucket",
    .version = PACKAGE_VERSION,
    .description = "token-bucket rate limiter: exact fractional refill, bounded keyed-hash state",
    .kind = PZ_KIND_RATELIMIT,
    .provider = &provider,
    .config_schema = schema,
};

PZ_PLUGIN_EXPORT const pz_plugin_descriptor *pz_plugin_entry_v1(void)
{
    return &descriptor;
}
