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
    double unit_d;   /* unit as a double */
    uint64_t cap_u[PZ_RL_NSTATUS];    /* capacity in units, per status */
    uint64_t rate_u[PZ_RL_NSTATUS];   /* units per nanosecond, per status */
    uint64_t max_cost[PZ_RL_NSTATUS]; /* floor(cap_u / unit): largest cost that can ever pass */
    double limit[PZ_RL_NSTATUS];      /* cap_u / unit, as reported */
    double inv_rate[PZ_RL_NSTATUS];   /* 1 / rate_u (0 when rate_u is 0) */
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
        s->cap_u[i] = (uint64_t)floor(s->capacity * f * (double)s->unit);
        s->max_cost[i] = s->cap_u[i] / s->unit;
        s->limit[i] = (double)s->cap_u[i] / (double)s->unit;
        double r = floor(s->rate * f * ldexp(1.0, (int)s->shift));
        if (r >= ldexp(1.0, 62)) {
            rc = core->error(core, err, PZ_ECONFIG,
                             "refill_per_second %g is too large for capacity %g (at most 1e9 x capacity)",
                             s->rate, s->capacity);
            goto out;
        }
        s->rate_u[i] = (uint64_t)r;
        s->inv_rate[i] = r > 0 ? 1.0 / r : 0;
        if (s->rate > 0 && f > 0 && s->rate_u[i] == 0) {
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
    uint64_t level = e[2] & LEVEL_MASK, cap = b->s.cap_u[st], rate = b->s.rate_u[st], last = e[1];
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

/* Level of entry E at NOW for a status with capacity CAP and RATE. Without
 * branches on the entry (its load is the decision's cache miss) and without
 * a division: a refill that reaches the room left is a full bucket (the
 * 128-bit product cannot overflow). */
static inline __attribute__((always_inline)) uint64_t level_at(const uint64_t *e, uint64_t now, uint64_t cap,
                                                               uint64_t rate)
{
    uint64_t last = e[1], level = e[2] & LEVEL_MASK;
    uint64_t dt = now > last ? now - last : 0;
    uint64_t room = cap > level ? cap - level : 0;
    unsigned __int128 add = (unsigned __int128)dt * rate;
    return add >= room ? cap : level + (uint64_t)add;
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
    core->log(core, PZ_LOG_DEBUG, "capacity %g, refill %g/s, key %s, max_keys %llu, scale 2^-%u", b->s.capacity,
              b->s.rate, pz__rl_keymode_name(b->s.c.key), (unsigned long long)b->s.c.max_keys, b->s.shift);
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

/* Spend REQ's cost from entry E, whose level at REQ's time is LEVEL, and
 * fill OUT. Every decision, new key or known, ends here. */
static inline __attribute__((always_inline)) void decide(const tb_settings *s, uint64_t *e, uint64_t level,
                                                         unsigned st, const pz_rl_request *req,
                                                         pz_rl_decision *out)
{
    uint32_t cost = req->cost ? req->cost : 1;
    int allowed = 0, reason = 0;
    uint64_t retry = 0;
    if (__builtin_expect(cost <= s->max_cost[st], 1)) {
        /* cost * unit <= cap < 2^61: no overflow. */
        uint64_t need = (uint64_t)cost * s->unit;
        if (__builtin_expect(need <= level, 1)) {
            level -= need;
            allowed = 1;
        } else {
            uint64_t rate = s->rate_u[st];
            reason = PZ_RL_REASON_LIMIT;
            retry = rate ? (need - level + rate - 1) / rate : 0;
        }
    } else {
        reason = s->cap_u[st] == 0 ? PZ_RL_REASON_STATUS : PZ_RL_REASON_COST;
    }
    e[2] = level | (uint64_t)st << LEVEL_BITS;
    out->allowed = allowed;
    out->reason = reason;
    out->retry_after_ns = retry;
    out->remaining = (double)(int64_t)level / s->unit_d; /* level < 2^61 */
    out->limit = s->limit[st];
}

/* A key with no entry: insert one, full, and decide. Off the hot path. */
static __attribute__((noinline)) int allow_new(tb *b, uint64_t fp, unsigned st, const pz_rl_request *req,
                                               pz_rl_decision *out)
{
    const tb_settings *s = &b->s;
    uint64_t *e;
    int rc = pz__kt_insert(&b->kt, fp, req->now_ns, &e);
    if (rc) {
        out->allowed = 0;
        out->reason = PZ_RL_REASON_NOMEM;
        out->retry_after_ns = 0;
        out->remaining = 0;
        out->limit = s->limit[st];
        return rc;
    }
    e[1] = req->now_ns;
    decide(s, e, s->cap_u[st], st, req, out); /* a new bucket starts full */
    return 0;
}

static int tb_allow(void *state, const pz_rl_request *req, pz_rl_decision *out)
{
    tb *b = state;
    const tb_settings *s = &b->s;
    uint64_t fp = pz__kt_fp(pz__rl_key_hash(&b->keys, s->c.key, req));
    uint64_t *e = pz__kt_find_s(&b->kt, fp, TB_STRIDE);
    unsigned st = pz__rl_status(req);
    if (__builtin_expect(!e, 0))
        return allow_new(b, fp, st, req, out);
    uint64_t now = req->now_ns, level = level_at(e, now, s->cap_u[st], s->rate_u[st]);
    e[1] = now > e[1] ? now : e[1]; /* time never runs backward for a bucket */
    decide(s, e, level, st, req, out);
    return 0;
}

static int tb_get_usage(void *state, const pz_rl_request *req, pz_rl_usage *out)
{
    tb *b = state;
    const tb_settings *s = &b->s;
    unsigned st = pz__rl_status(req);
    uint64_t cap = s->cap_u[st];
    const uint64_t *e = pz__kt_find(&b->kt, pz__kt_fp(pz__rl_key_hash(&b->keys, s->c.key, req)));
    out->capacity = (double)cap / (double)s->unit;
    if (!e) {
        out->known = 0;
        out->available = out->capacity;
        out->last_ns = 0;
        return 0;
    }
    out->known = 1;
    out->available = (double)level_at(e, req->now_ns, cap, s->rate_u[st]) / (double)s->unit;
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
            level = level > (ns.cap_u[st] >> d) ? ns.cap_u[st] : level << d;
        } else {
            level >>= b->s.shift - ns.shift;
        }
        if (level > ns.cap_u[st])
            level = ns.cap_u[st];
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
