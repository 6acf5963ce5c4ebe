/* plugins/gcra/gcra.c — the generic cell rate algorithm rate limiter.
 *
 * GCRA (ITU-T I.371's virtual scheduling form, as Lighthouse's RPC limiter
 * and redis-cell use it) keeps one number per key: the theoretical arrival
 * time TAT. With emission interval T = 1/rate and tolerance tau = burst * T,
 * a request of cost c at time now is allowed when
 *     max(TAT, now) + c*T - tau <= now,
 * and then TAT = max(TAT, now) + c*T. A refused request learns exactly when
 * it would pass: retry_after = max(TAT, now) + c*T - tau - now. Over any
 * run, allowed cost <= burst + rate * elapsed.
 *
 * Times are kept in units of 1/16 ns, so T for a rate of r per second is
 * ceil(16e9 / r) (rounded up once, at configuration: the limiter never
 * grants more than configured) and every decision is integer arithmetic.
 * Per-key state is 16 bytes in a keyed-hash table bounded by max_keys
 * (plugins/common/ktable.h); a key whose TAT has passed is idle (equal to a
 * new key) and is dropped first; under a key flood the key whose TAT is
 * earliest (closest to idle: evicting it grants the least) goes next. The
 * peer status's factor scales both rate and burst.
 *
 * Entry words: [0] fingerprint, [1] TAT in 1/16 ns.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <prozsec/ratelimit.h>

#include "../common/ktable.h"
#include "../common/rlcommon.h"
#include "gcra.h"

#define SUB 16        /* time units per nanosecond */
#define GCRA_STRIDE 2 /* words per entry */
#define NOW_MAX (UINT64_MAX / SUB / 2)

typedef struct gcra_settings {
    pz_rl_common c;
    double rate;  /* cost units per second, before status factors */
    double burst; /* cost units, before status factors */
    /* Per status, one 64-byte row per pz_peer_status: what a decision reads
     * (one base register on the hot path). */
    struct gcra_per {
        uint64_t t_u;      /* emission interval per cost unit; 0: factor 0 */
        uint64_t tau_u;    /* tolerance */
        uint64_t max_cost; /* floor(tau / T): largest cost that can ever pass; 0 if T is 0 */
        double t_d;        /* T as a double */
        pz_rl_tail tail;   /* limit = tau / T, as reported (0 if T is 0); reason 0 */
        uint64_t pad[2];
    } per[PZ_RL_NSTATUS];
} gcra_settings;

typedef struct gcra {
    const pz_core *core;
    pz_rl_keys keys; /* from a random secret */
    gcra_settings s;
    pz_kt kt;
} gcra;

static int parse(const pz_core *core, const pz_conf *conf, gcra_settings *s, pz_err *err)
{
    int rc = pz__rl_common_parse(core, conf, &s->c, err);
    if (rc)
        goto out;
    s->rate = 10;
    s->burst = 100;
    if (conf) {
        rc = core->conf_double(conf, "rate", 10.0, 1e-6, 1e9, &s->rate, err);
        if (rc)
            goto out;
        rc = core->conf_double(conf, "burst", 100.0, 1.0, 1e9, &s->burst, err);
        if (rc)
            goto out;
    }
    for (int i = 0; i < PZ_RL_NSTATUS; i++) {
        double f = s->c.factor[i];
        if (f <= 0) {
            memset(&s->per[i], 0, sizeof(s->per[i]));
            continue;
        }
        double t = ceil((double)SUB * 1e9 / (s->rate * f));
        double tau = floor(s->burst * f * t);
        if (tau >= ldexp(1.0, 62)) {
            rc = core->error(core, err, PZ_ECONFIG,
                             "burst %g / rate %g x status factor %g: tolerance of more than %g years",
                             s->burst, s->rate, f, ldexp(1.0, 62) / SUB / 1e9 / 86400 / 365);
            goto out;
        }
        struct gcra_per *ps = &s->per[i];
        memset(ps, 0, sizeof(*ps));
        ps->t_u = (uint64_t)t;
        ps->tau_u = (uint64_t)tau;
        ps->max_cost = ps->tau_u / ps->t_u;
        ps->t_d = (double)ps->t_u;
        ps->tail.limit = (double)ps->tau_u / ps->t_d;
    }
out:
    return rc;
}

static pz_kt_class classify(const uint64_t *e, uint64_t now, uint64_t *age, void *ctx)
{
    (void)ctx;
    uint64_t now_u = (now < NOW_MAX ? now : NOW_MAX) * SUB;
    if (e[1] <= now_u)
        return PZ_KT_IDLE;
    *age = e[1];
    return PZ_KT_LIVE;
}

/* Time a key with TAT may still spend at NOW_U under tolerance TAU (0 when
 * TAT is beyond it, which a status change with a smaller tau can cause). */
static inline __attribute__((always_inline)) uint64_t headroom(uint64_t tat, uint64_t now_u, uint64_t tau)
{
    uint64_t lim = now_u + tau;
    return tat >= lim ? 0 : lim - (tat > now_u ? tat : now_u);
}

static int gcra_create(const pz_core *core, const pz_conf *conf, void **state, pz_err *err)
{
    int rc = 0;
    gcra *g = calloc(1, sizeof(*g));
    *state = NULL;
    if (!g)
        return core->error(core, err, PZ_ENOMEM, "out of memory");
    g->core = core;
    rc = parse(core, conf, &g->s, err);
    if (rc)
        goto out;
    uint8_t secret[PZ_KHASH_SECRET_LEN];
    rc = core->random(core, secret, sizeof(secret));
    if (rc) {
        rc = core->error(core, err, rc, "cannot draw the key-hash secret");
        goto out;
    }
    pz__rl_keys_init(&g->keys, secret);
    explicit_bzero(secret, sizeof(secret));
    rc = pz__kt_init(&g->kt, GCRA_STRIDE, (size_t)g->s.c.max_keys, classify, g);
    if (rc) {
        rc = core->error(core, err, rc, "cannot allocate the key table");
        goto out;
    }
    core->log(core, PZ_LOG_DEBUG, "rate %g/s, burst %g, key %s, max_keys %llu", g->s.rate, g->s.burst,
              pz__rl_keymode_name(g->s.c.key), (unsigned long long)g->s.c.max_keys);
    *state = g;
out:
    if (rc) {
        pz__kt_clear(&g->kt);
        explicit_bzero(&g->keys, sizeof(g->keys));
        free(g);
    }
    return rc;
}

static void gcra_destroy(void *state)
{
    gcra *g = state;
    if (!g)
        return;
    pz__kt_clear(&g->kt);
    explicit_bzero(&g->keys, sizeof(g->keys));
    free(g);
}

static inline __attribute__((always_inline)) uint64_t now_units(uint64_t now_ns)
{
    return (now_ns < NOW_MAX ? now_ns : NOW_MAX) * SUB;
}

/* The decision for a key with row PS and entry E (NULL: not known; then G
 * and FP are used to insert it): every case (new keys, refusals, costs out
 * of range). */
static inline __attribute__((always_inline)) int decide(gcra *g, uint64_t fp, const struct gcra_per *ps,
                                                        uint64_t *e, const pz_rl_request *req,
                                                        pz_rl_decision *out)
{
    int rc = 0;
    uint64_t t = ps->t_u, tau = ps->tau_u, now_u = now_units(req->now_ns);
    uint64_t tat = e && e[1] > now_u ? e[1] : now_u;
    uint32_t cost = req->cost ? req->cost : 1;
    int reason = 0;
    uint64_t retry = 0, new_tat = tat;

    if (cost > ps->max_cost) {
        /* T = 0 (factor 0) or cost * T > tau: never passes. */
        reason = t ? PZ_RL_REASON_COST : PZ_RL_REASON_STATUS;
        goto out;
    }
    new_tat = tat + (uint64_t)cost * t; /* cost * T <= tau < 2^62 */
    if (new_tat > now_u + tau) {
        reason = PZ_RL_REASON_LIMIT;
        retry = (new_tat - tau - now_u + SUB - 1) / SUB;
        new_tat = tat;
        goto out;
    }
    if (!e) {
        rc = pz__kt_insert(&g->kt, fp, req->now_ns, &e);
        if (rc) {
            reason = PZ_RL_REASON_NOMEM;
            new_tat = tat;
            goto out;
        }
    }
    e[1] = new_tat;
out:
    pz__rl_put(out, reason == 0, reason, retry, t ? (double)headroom(new_tat, now_u, tau) / ps->t_d : 0,
               &ps->tail);
    return rc;
}

/* A key with no entry. Off the hot path (allow_fp). */
static PZ_RL_OUT_OF_LINE int allow_new(gcra *g, uint64_t fp, const pz_rl_request *req, pz_rl_decision *out)
{
    return decide(g, fp, &g->s.per[pz__rl_status(req)], NULL, req, out);
}

/* A known key whose request does not simply pass. Off the hot path. */
static PZ_RL_OUT_OF_LINE int allow_slow(const struct gcra_per *ps, uint64_t *e, const pz_rl_request *req,
                                        pz_rl_decision *out)
{
    return decide(NULL, 0, ps, e, req, out);
}

/* The decision for the key whose fingerprint is FP. Written for the common
 * case, a known key whose request passes, with few instructions, stores and
 * live values; everything else goes to allow_new or allow_slow. */
static inline __attribute__((always_inline)) int allow_fp(gcra *g, uint64_t fp, const pz_rl_request *req,
                                                          pz_rl_decision *out)
{
    const struct gcra_per *ps = &g->s.per[pz__rl_status(req)];
    /* One register for the row: without this the compiler rebuilds its
     * address for each field, and runs out of registers. */
    __asm__("" : "+r"(ps));
    uint64_t *e = pz__kt_find_s(&g->kt, fp, GCRA_STRIDE);
    if (__builtin_expect(!e, 0))
        return allow_new(g, fp, req, out);
    uint64_t now_u = now_units(req->now_ns), tat = e[1] > now_u ? e[1] : now_u;
    uint64_t inc, lim = now_u + ps->tau_u;
    /* Cost 0 or T = 0 (inc - 1 wraps), an overflow, cost * T > tau, or a
     * refusal: the general path. Else tat + inc < 2^64. */
    if (__builtin_expect(__builtin_mul_overflow((uint64_t)req->cost, ps->t_u, &inc) || inc - 1 >= ps->tau_u ||
                             tat + inc > lim,
                         0))
        return allow_slow(ps, e, req, out);
    e[1] = tat + inc;
    pz__rl_put(out, 1, 0, 0, (double)(int64_t)(lim - e[1]) / ps->t_d, &ps->tail);
    return 0;
}

/* Any key (tagged composite keys, peer ids longer than 16 bytes). */
static PZ_RL_OUT_OF_LINE int allow_key(gcra *g, const pz_rl_request *req, pz_rl_decision *out)
{
    return allow_fp(g, pz__rl_fp(pz__rl_key_hash(&g->keys, g->s.c.key, req)), req, out);
}

static int gcra_allow(void *state, const pz_rl_request *req, pz_rl_decision *out)
{
    gcra *g = state;
    const char *id = req->node_id;
    /* The common case, a peer id of up to 16 bytes, hashed in place, calls
     * nothing (see token-bucket.c). */
    if (__builtin_expect(g->s.c.key != PZ_RLKEY_PEER || !id, 0))
        return allow_key(g, req, out);
    size_t len = pz__kh_strlen(id);
    if (__builtin_expect(len > 16, 0))
        return allow_key(g, req, out);
    return allow_fp(g, pz__rl_fp(pz__khash_short(&g->keys.peer, id, len)), req, out);
}

static int gcra_get_usage(void *state, const pz_rl_request *req, pz_rl_usage *out)
{
    gcra *g = state;
    const gcra_settings *s = &g->s;
    unsigned st = pz__rl_status(req);
    uint64_t t = s->per[st].t_u, tau = s->per[st].tau_u;
    uint64_t now_u = now_units(req->now_ns);
    const uint64_t *e =
        pz__kt_find_s(&g->kt, pz__rl_fp(pz__rl_key_hash(&g->keys, s->c.key, req)), GCRA_STRIDE);
    out->capacity = t ? (double)tau / (double)t : 0;
    out->known = e != NULL;
    out->last_ns = e ? e[1] / SUB : 0; /* the theoretical arrival time */
    uint64_t tat = e && e[1] > now_u ? e[1] : now_u;
    out->available = t ? (double)headroom(tat, now_u, tau) / (double)t : 0;
    return 0;
}

static int gcra_update_config(void *state, const pz_conf *conf, pz_err *err)
{
    gcra *g = state;
    gcra_settings ns;
    int rc = parse(g->core, conf, &ns, err);
    if (rc)
        goto out;
    uint64_t now = g->core->monotonic_ns(g->core);
    uint64_t now_u = (now < NOW_MAX ? now : NOW_MAX) * SUB;
    if (ns.c.max_keys != g->s.c.max_keys) {
        rc = pz__kt_set_max_keys(&g->kt, (size_t)ns.c.max_keys, now);
        if (rc) {
            rc = g->core->error(g->core, err, rc, "cannot resize the key table to max_keys %llu",
                                (unsigned long long)ns.c.max_keys);
            goto out;
        }
    }
    int rekey = ns.c.key != g->s.c.key;
    /* Keep each key's level (in unscaled cost units): level = (tau - debt)
     * / T, clamped to the new burst, then debt' = tau' - level * T'. */
    double t1 = (double)SUB * 1e9 / g->s.rate, tau1 = g->s.burst * t1;
    double t1n = (double)SUB * 1e9 / ns.rate, tau1n = ns.burst * t1n;
    for (size_t i = 0; i < g->kt.nslots; i++) {
        uint64_t *e = pz__kt_slot(&g->kt, i);
        if (!e[0])
            continue;
        if (rekey) {
            memset(e, 0, g->kt.stride * sizeof(uint64_t));
            continue;
        }
        double debt = e[1] > now_u ? (double)(e[1] - now_u) : 0;
        double level = (tau1 - debt) / t1;
        if (level < 0)
            level = 0;
        if (level > ns.burst)
            level = ns.burst;
        double debt_n = tau1n - level * t1n;
        e[1] = now_u + (debt_n > 0 ? (uint64_t)ceil(debt_n) : 0);
    }
    if (rekey) {
        g->kt.count = 0;
        g->core->log(g->core, PZ_LOG_NOTICE, "key changed from %s to %s: every key starts full",
                     pz__rl_keymode_name(g->s.c.key), pz__rl_keymode_name(ns.c.key));
    }
    g->s = ns;
out:
    return rc;
}

void pz__gcra_stats(void *state, size_t *keys, size_t *bytes, uint64_t *evicted, uint64_t *evicted_idle)
{
    gcra *g = state;
    if (keys)
        *keys = g->kt.count;
    if (bytes)
        *bytes = pz__kt_bytes(&g->kt) + sizeof(*g);
    if (evicted)
        *evicted = g->kt.evicted;
    if (evicted_idle)
        *evicted_idle = g->kt.evicted_idle;
}

static const pz_ratelimit_provider provider = {
    .struct_size = sizeof(pz_ratelimit_provider),
    .create = gcra_create,
    .destroy = gcra_destroy,
    .allow = gcra_allow,
    .update_config = gcra_update_config,
    .get_usage = gcra_get_usage,
};

static const pz_conf_key schema[] = {
    {"rate", PZ_CONF_DOUBLE, "10", "sustained cost units per second"},
    {"burst", PZ_CONF_DOUBLE, "100", "cost units a fresh key may spend at once (capacity)"},
    {"key", PZ_CONF_STRING, "peer", "peer | address | peer_method: what a key is"},
    {"max_keys", PZ_CONF_INT, "1048576", "most keys kept (16 B each + 1/3 slack); LRU eviction beyond"},
    {"status_factors.unknown", PZ_CONF_DOUBLE, "1", "budget factor for peers of unknown status"},
    {"status_factors.blocked", PZ_CONF_DOUBLE, "0", "budget factor for blocked peers"},
    {"status_factors.probation", PZ_CONF_DOUBLE, "0.25", "budget factor for peers on probation"},
    {"status_factors.neutral", PZ_CONF_DOUBLE, "1", "budget factor for neutral peers"},
    {"status_factors.trusted", PZ_CONF_DOUBLE, "2", "budget factor for trusted peers"},
    {NULL, 0, NULL, NULL},
};

static const pz_plugin_descriptor descriptor = {
    PZ_PLUGIN_DESCRIPTOR_INIT,
    .name = "gcra",
    .version = PACKAGE_VERSION,
    .description = "GCRA rate limiter (generic cell rate algorithm) with retry-after, bounded state",
    .kind = PZ_KIND_RATELIMIT,
    .provider = &provider,
    .config_schema = schema,
};

PZ_PLUGIN_EXPORT const pz_plugin_descriptor *pz_plugin_entry_v1(void)
{
    return &descriptor;
}
