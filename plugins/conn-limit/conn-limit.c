/* plugins/conn-limit/conn-limit.c — the connection limiter: a global cap,
 * a cap on pending handshakes, caps per address, per address prefix (IPv4
 * /24; IPv6 /64, /56, /48 by default) and per node id, a new-connection rate
 * per address and per prefix (GCRA), and an allowlist of CIDRs and node ids
 * that bypasses every limit.
 *
 * Counting: admit_address counts a connection against the global total,
 * the pending handshakes, its address and each of its prefixes; every check
 * passes before anything is counted, so a refusal leaves no trace (a
 * refused attempt does not spend new-connection rate either).
 * admit_identity ends the pending state and counts the node; when it
 * refuses, it uncounts the address too, because the core calls release()
 * only for connections a limiter admitted. release() uncounts at the stage
 * given.
 *
 * State: one bounded keyed-hash table (plugins/common/ktable.h) holds
 * address, prefix and node counters: [0] fingerprint, [1] live
 * connections, [2] new-connection TAT (ns). An entry with live connections
 * is pinned; one with only a future TAT is evictable (oldest first); one
 * with neither is idle. The table is sized so pinned entries always fit:
 * max(max_tracked, (2 + prefix rules) * max_connections + 64).
 */
#include "config.h"

#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <prozsec/connlimit.h>

#include "../common/addr.h"
#include "../common/ktable.h"
#include "../common/siphash.h"
#include "conn-limit.h"

#define MAX_RULES 8

typedef struct cl_rate {
    double rate;  /* new connections per second; 0: unlimited */
    double burst; /* connections at once */
    uint64_t t_ns;   /* emission interval */
    uint64_t tau_ns; /* tolerance */
} cl_rate;

typedef struct cl_rule {
    pz_addr_family family;
    unsigned len;
    uint64_t max_conns; /* 0: unlimited */
    cl_rate rate;
} cl_rule;

typedef struct cl {
    const pz_core *core;
    uint8_t secret[PZ_SIPHASH_KEY_LEN];
    uint64_t max_conns, max_pending, max_per_addr, max_per_node, max_tracked;
    int allow_local;
    cl_rate addr_rate;
    cl_rule rules[MAX_RULES];
    size_t n_rules;
    pz_cidr *allow_cidrs;
    size_t n_allow_cidrs;
    char **allow_nodes;
    size_t n_allow_nodes;
    uint64_t total, pending;
    pz_kt kt;
} cl;

static const cl_rule default_rules[] = {
    {PZ_AF_INET, 24, 64, {20, 40, 0, 0}},
    {PZ_AF_INET6, 64, 64, {20, 40, 0, 0}},
    {PZ_AF_INET6, 56, 128, {40, 80, 0, 0}},
    {PZ_AF_INET6, 48, 256, {80, 160, 0, 0}},
};

static void rate_prepare(cl_rate *r)
{
    if (r->rate <= 0) {
        r->t_ns = r->tau_ns = 0;
        return;
    }
    r->t_ns = (uint64_t)ceil(1e9 / r->rate);
    r->tau_ns = (uint64_t)floor(r->burst * (double)r->t_ns);
}

static pz_kt_class classify(const uint64_t *e, uint64_t now, uint64_t *age, void *ctx)
{
    (void)ctx;
    if (e[1])
        return PZ_KT_PINNED;
    if (e[2] > now) {
        *age = e[2];
        return PZ_KT_LIVE;
    }
    return PZ_KT_IDLE;
}

/* ---- configuration ----------------------------------------------------- */

static const pz_conf *value_node(const pz_core *core, const pz_conf *map, const char *key)
{
    for (size_t i = 0; i < core->conf_len(map); i++) {
        const char *k = NULL;
        const pz_conf *v = core->conf_at(map, i, &k);
        if (k && !strcmp(k, key))
            return v;
    }
    return map;
}

static int parse_rate(const pz_core *core, const pz_conf *map, const char *rkey, const char *bkey, cl_rate *r,
                      pz_err *err)
{
    int rc = core->conf_double(map, rkey, r->rate, 0.0, 1e6, &r->rate, err);
    if (!rc)
        rc = core->conf_double(map, bkey, r->burst, 1.0, 1e6, &r->burst, err);
    if (!rc)
        rate_prepare(r);
    return rc;
}

static int parse_rules(cl *c, const pz_conf *list, pz_err *err)
{
    const pz_core *core = c->core;
    int rc = 0;
    size_t n = core->conf_len(list);
    if (n > MAX_RULES)
        return core->conf_error(list, err, "at most %d prefix rules, found %zu", MAX_RULES, n);
    c->n_rules = 0;
    for (size_t i = 0; i < n; i++) {
        const pz_conf *m = core->conf_at(list, i, NULL);
        cl_rule *r = &c->rules[c->n_rules];
        const char *fam = NULL;
        int64_t len = 0, max = 0;
        rc = core->conf_string(m, "family", NULL, &fam, err);
        if (rc)
            goto out;
        if (!fam) {
            rc = core->conf_error(m, err, "family: required (ipv4 or ipv6)");
            goto out;
        }
        if (!strcmp(fam, "ipv4")) {
            r->family = PZ_AF_INET;
        } else if (!strcmp(fam, "ipv6")) {
            r->family = PZ_AF_INET6;
        } else {
            rc = core->conf_error(value_node(core, m, "family"), err, "expected ipv4 or ipv6, found \"%s\"",
                                  fam);
            goto out;
        }
        unsigned bits = pz__addr_bits(r->family);
        if (!core->conf_has(m, "length")) {
            rc = core->conf_error(m, err, "length: required (prefix length, 1..%u)", bits);
            goto out;
        }
        rc = core->conf_int(m, "length", 0, 1, bits, &len, err);
        if (rc)
            goto out;
        rc = core->conf_int(m, "max_connections", 0, 0, INT64_MAX, &max, err);
        if (rc)
            goto out;
        r->len = (unsigned)len;
        r->max_conns = (uint64_t)max;
        r->rate.rate = 0;
        r->rate.burst = 1;
        rc = parse_rate(core, m, "rate", "burst", &r->rate, err);
        if (rc)
            goto out;
        for (size_t j = 0; j < c->n_rules; j++)
            if (c->rules[j].family == r->family && c->rules[j].len == r->len) {
                rc = core->conf_error(m, err, "duplicate rule for %s /%u", fam, r->len);
                goto out;
            }
        c->n_rules++;
    }
out:
    return rc;
}

static int valid_node_id(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > PZ_NODE_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
              ch == '_' || ch == '-'))
            return 0;
    }
    return 1;
}

static int parse_allowlist(cl *c, const pz_conf *list, pz_err *err)
{
    const pz_core *core = c->core;
    size_t n = core->conf_len(list);
    if (!n)
        return 0;
    c->allow_cidrs = calloc(n, sizeof(*c->allow_cidrs));
    c->allow_nodes = calloc(n, sizeof(*c->allow_nodes));
    if (!c->allow_cidrs || !c->allow_nodes)
        return core->error(core, err, PZ_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const pz_conf *v = core->conf_at(list, i, NULL);
        const char *s = core->conf_scalar(v);
        if (!s)
            return core->conf_error(v, err, "expected a CIDR, an address or a node id");
        if (!strncmp(s, "node:", 5)) {
            s += 5;
        } else if (pz__cidr_parse(s, &c->allow_cidrs[c->n_allow_cidrs]) == 0) {
            c->n_allow_cidrs++;
            continue;
        } else if (strchr(s, '/') || strchr(s, ':')) {
            return core->conf_error(v, err, "expected a CIDR such as 192.0.2.0/24 or 2001:db8::/48, found \"%s\"",
                                    s);
        }
        if (!valid_node_id(s))
            return core->conf_error(v, err, "expected a CIDR, an address or a node id ([A-Za-z0-9._-]{1,64}), "
                                            "found \"%s\"",
                                    s);
        c->allow_nodes[c->n_allow_nodes] = strdup(s);
        if (!c->allow_nodes[c->n_allow_nodes])
            return core->error(core, err, PZ_ENOMEM, "out of memory");
        c->n_allow_nodes++;
    }
    return 0;
}

static int parse(cl *c, const pz_conf *conf, pz_err *err)
{
    const pz_core *core = c->core;
    int rc = 0;
    int64_t v;
    c->max_conns = 10000;
    c->max_pending = 256;
    c->max_per_addr = 16;
    c->max_per_node = 8;
    c->max_tracked = 65536;
    c->allow_local = 1;
    c->addr_rate = (cl_rate){5, 20, 0, 0};
    memcpy(c->rules, default_rules, sizeof(default_rules));
    c->n_rules = sizeof(default_rules) / sizeof(default_rules[0]);
    for (size_t i = 0; i < c->n_rules; i++)
        rate_prepare(&c->rules[i].rate);
    rate_prepare(&c->addr_rate);
    if (!conf)
        goto out;

    static const struct {
        const char *key;
        int64_t def, min;
        size_t off;
    } ints[] = {
        {"max_connections", 10000, 1, offsetof(cl, max_conns)},
        {"max_pending_handshakes", 256, 1, offsetof(cl, max_pending)},
        {"max_per_address", 16, 0, offsetof(cl, max_per_addr)},
        {"max_per_node", 8, 0, offsetof(cl, max_per_node)},
        {"max_tracked", 65536, PZ_KT_MIN_KEYS, offsetof(cl, max_tracked)},
    };
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        rc = core->conf_int(conf, ints[i].key, ints[i].def, ints[i].min, 1 << 30, &v, err);
        if (rc)
            goto out;
        *(uint64_t *)((char *)c + ints[i].off) = (uint64_t)v;
    }
    rc = core->conf_bool(conf, "allow_local", 1, &c->allow_local, err);
    if (rc)
        goto out;
    const pz_conf *m = NULL;
    rc = core->conf_map(conf, "new_per_address", &m, err);
    if (rc)
        goto out;
    rc = parse_rate(core, conf, "new_per_address.rate", "new_per_address.burst", &c->addr_rate, err);
    if (rc)
        goto out;
    const pz_conf *list = NULL;
    rc = core->conf_list(conf, "prefixes", &list, err);
    if (rc)
        goto out;
    if (list) {
        rc = parse_rules(c, list, err);
        if (rc)
            goto out;
    }
    rc = core->conf_list(conf, "allowlist", &list, err);
    if (rc)
        goto out;
    if (list)
        rc = parse_allowlist(c, list, err);
out:
    return rc;
}

/* ---- keys and counters ------------------------------------------------- */

/* TAG 'A' for the address counter, 'P' for prefix rules (a /32 rule is
 * then a counter of its own). */
static uint64_t key_prefix(const cl *c, char tag, const pz_addr *a, unsigned len)
{
    pz_cidr p;
    pz__cidr_of(a, len, &p);
    uint8_t buf[3 + 16];
    buf[0] = (uint8_t)tag;
    buf[1] = (uint8_t)p.family;
    buf[2] = (uint8_t)p.len;
    memcpy(buf + 3, p.bytes, 16);
    return pz__kt_fp(pz__siphash13(c->secret, buf, sizeof(buf)));
}

static uint64_t key_node(const cl *c, const char *id)
{
    pz_siphash s;
    pz__siphash_init(&s, c->secret);
    pz__siphash_update(&s, "N", 1);
    pz__siphash_update(&s, id, strlen(id));
    return pz__kt_fp(pz__siphash_final(&s));
}

static int addr_allowed(const cl *c, const pz_addr *a)
{
    if (a->family != PZ_AF_INET && a->family != PZ_AF_INET6)
        return a->family == PZ_AF_UNIX && c->allow_local;
    for (size_t i = 0; i < c->n_allow_cidrs; i++)
        if (pz__cidr_contains(&c->allow_cidrs[i], a))
            return 1;
    return 0;
}

static int node_allowed(const cl *c, const char *id)
{
    for (size_t i = 0; id && i < c->n_allow_nodes; i++)
        if (!strcmp(c->allow_nodes[i], id))
            return 1;
    return 0;
}

/* One counter a connection is checked against. */
typedef struct counter {
    uint64_t fp;
    uint64_t max;        /* 0: no cap */
    const cl_rate *rate; /* NULL: no rate */
    int reason_cap, reason_rate;
    unsigned len; /* prefix length, for messages */
    uint64_t old_tat;
} counter;

static size_t counters_for(const cl *c, const pz_addr *a, counter *out)
{
    size_t n = 0;
    if (a->family != PZ_AF_INET && a->family != PZ_AF_INET6)
        return 0;
    out[n++] = (counter){key_prefix(c, 'A', a, pz__addr_bits(a->family)), c->max_per_addr, &c->addr_rate,
                         PZ_CL_REASON_PER_ADDRESS, PZ_CL_REASON_RATE_ADDRESS, pz__addr_bits(a->family), 0};
    for (size_t i = 0; i < c->n_rules; i++)
        if (c->rules[i].family == a->family)
            out[n++] = (counter){key_prefix(c, 'P', a, c->rules[i].len), c->rules[i].max_conns, &c->rules[i].rate,
                                 PZ_CL_REASON_PER_PREFIX, PZ_CL_REASON_RATE_PREFIX, c->rules[i].len, 0};
    return n;
}

/* Add DELTA (+1/-1) to the connection count of FP (which must exist when
 * DELTA < 0). */
static void count_add(cl *c, uint64_t fp, int delta)
{
    uint64_t *e = pz__kt_find(&c->kt, fp);
    if (!e)
        return; /* never: counted entries are pinned */
    if (delta < 0 && e[1] > 0)
        e[1]--;
    else if (delta > 0)
        e[1]++;
}

static void gauges(cl *c)
{
    c->core->metric_set(c->core, "connections", NULL, (int64_t)c->total);
    c->core->metric_set(c->core, "pending_handshakes", NULL, (int64_t)c->pending);
}

static void refuse(pz_admit_result *out, int reason, uint64_t retry, const char *fmt, ...) PZ_PRINTF(4, 5);
static void refuse(pz_admit_result *out, int reason, uint64_t retry, const char *fmt, ...)
{
    va_list ap;
    out->admitted = 0;
    out->reason = reason;
    out->retry_after_ns = retry;
    va_start(ap, fmt);
    vsnprintf(out->detail, sizeof(out->detail), fmt, ap);
    va_end(ap);
}

static void admit(pz_admit_result *out)
{
    out->admitted = 1;
    out->reason = 0;
    out->retry_after_ns = 0;
    out->detail[0] = 0;
}

/* ---- provider ---------------------------------------------------------- */

static void cl_destroy(void *state)
{
    cl *c = state;
    if (!c)
        return;
    pz__kt_clear(&c->kt);
    for (size_t i = 0; i < c->n_allow_nodes; i++)
        free(c->allow_nodes[i]);
    free(c->allow_nodes);
    free(c->allow_cidrs);
    explicit_bzero(c->secret, sizeof(c->secret));
    free(c);
}

static int cl_create(const pz_core *core, const pz_conf *conf, void **state, pz_err *err)
{
    int rc = 0;
    cl *c = calloc(1, sizeof(*c));
    *state = NULL;
    if (!c)
        return core->error(core, err, PZ_ENOMEM, "out of memory");
    c->core = core;
    rc = parse(c, conf, err);
    if (rc)
        goto out;
    rc = core->random(core, c->secret, sizeof(c->secret));
    if (rc) {
        rc = core->error(core, err, rc, "cannot draw the key-hash secret");
        goto out;
    }
    uint64_t need = (2 + c->n_rules) * c->max_conns + 64;
    uint64_t keys = c->max_tracked > need ? c->max_tracked : need;
    rc = pz__kt_init(&c->kt, 3, (size_t)keys, classify, c);
    if (rc) {
        rc = core->error(core, err, rc, "cannot allocate the counter table for %llu keys",
                         (unsigned long long)keys);
        goto out;
    }
    *state = c;
out:
    if (rc)
        cl_destroy(c);
    return rc;
}

static int cl_admit_address(void *state, const pz_addr *addr, uint64_t now, pz_admit_result *out)
{
    cl *c = state;
    int rc = 0;
    char text[PZ_CIDR_STRLEN];
    counter ctr[1 + MAX_RULES];
    size_t n = 0, done = 0;

    if (addr_allowed(c, addr)) {
        admit(out);
        goto out;
    }
    if (c->total >= c->max_conns) {
        refuse(out, PZ_CL_REASON_GLOBAL, 0, "global limit %llu reached", (unsigned long long)c->max_conns);
        goto out;
    }
    if (c->pending >= c->max_pending) {
        refuse(out, PZ_CL_REASON_PENDING, 0, "pending handshake limit %llu reached",
               (unsigned long long)c->max_pending);
        goto out;
    }
    n = counters_for(c, addr, ctr);
    /* Check and count one counter at a time; on a refusal, undo the ones
     * already counted. Lookups are repeated after each insert because an
     * insert may move entries. */
    for (done = 0; done < n; done++) {
        counter *k = &ctr[done];
        uint64_t *e = pz__kt_find(&c->kt, k->fp);
        if (!e) {
            rc = pz__kt_insert(&c->kt, k->fp, now, &e);
            if (rc) {
                refuse(out, PZ_CL_REASON_FULL, 0, "cannot track more addresses (max_tracked)");
                rc = 0;
                break;
            }
        }
        if (k->max && e[1] >= k->max) {
            pz_cidr p;
            pz__cidr_of(addr, k->len, &p);
            refuse(out, k->reason_cap, 0, "%s limit %llu reached for %s",
                   k->reason_cap == PZ_CL_REASON_PER_ADDRESS ? "per-address" : "per-prefix",
                   (unsigned long long)k->max, pz__cidr_format(&p, text, sizeof(text)));
            break;
        }
        uint64_t new_tat = 0;
        if (k->rate->t_ns) {
            uint64_t tat = e[2] > now ? e[2] : now;
            new_tat = tat + k->rate->t_ns;
            if (new_tat > now + k->rate->tau_ns) {
                pz_cidr p;
                pz__cidr_of(addr, k->len, &p);
                refuse(out, k->reason_rate, new_tat - k->rate->tau_ns - now, "new-connection rate %g/s exceeded for %s",
                       k->rate->rate, pz__cidr_format(&p, text, sizeof(text)));
                break;
            }
        }
        k->old_tat = e[2];
        if (new_tat)
            e[2] = new_tat;
        e[1]++;
    }
    if (done < n) {
        while (done--) {
            uint64_t *e = pz__kt_find(&c->kt, ctr[done].fp);
            if (e) {
                e[1]--;
                e[2] = ctr[done].old_tat;
            }
        }
        goto out;
    }
    c->total++;
    c->pending++;
    admit(out);
    gauges(c);
out:
    return rc;
}

static void uncount_address(cl *c, const pz_addr *addr)
{
    counter ctr[1 + MAX_RULES];
    size_t n = counters_for(c, addr, ctr);
    for (size_t i = 0; i < n; i++)
        count_add(c, ctr[i].fp, -1);
    if (c->total)
        c->total--;
}

static int cl_admit_identity(void *state, const pz_addr *addr, const pz_identity *id, uint64_t now,
                             pz_admit_result *out)
{
    cl *c = state;
    int rc = 0;
    int addr_ok = addr_allowed(c, addr);
    if (!addr_ok && c->pending)
        c->pending--;
    if (!id || !id->node_id || !c->max_per_node || node_allowed(c, id->node_id)) {
        admit(out);
        goto out;
    }
    uint64_t fp = key_node(c, id->node_id);
    uint64_t *e = pz__kt_find(&c->kt, fp);
    if (!e && pz__kt_insert(&c->kt, fp, now, &e)) {
        refuse(out, PZ_CL_REASON_FULL, 0, "cannot track more nodes (max_tracked)");
    } else if (e[1] >= c->max_per_node) {
        refuse(out, PZ_CL_REASON_PER_NODE, 0, "per-node limit %llu reached for %.64s",
               (unsigned long long)c->max_per_node, id->node_id);
    } else {
        e[1]++;
        admit(out);
        goto out;
    }
    if (!addr_ok)
        uncount_address(c, addr);
out:
    gauges(c);
    return rc;
}

static void cl_release(void *state, const pz_addr *addr, const pz_identity *id, pz_conn_stage stage,
                       uint64_t now)
{
    cl *c = state;
    (void)now;
    if (!addr_allowed(c, addr)) {
        uncount_address(c, addr);
        if (stage == PZ_STAGE_PRE_HANDSHAKE && c->pending)
            c->pending--;
    }
    if (stage == PZ_STAGE_AUTHENTICATED && id && id->node_id && c->max_per_node &&
        !node_allowed(c, id->node_id))
        count_add(c, key_node(c, id->node_id), -1);
    gauges(c);
}

static void cl_on_behavior(void *state, const pz_behavior_event *event)
{
    (void)state;
    (void)event;
}

void pz__cl_stats(void *state, uint64_t *total, uint64_t *pending, size_t *tracked, size_t *bytes)
{
    cl *c = state;
    if (total)
        *total = c->total;
    if (pending)
        *pending = c->pending;
    if (tracked)
        *tracked = c->kt.count;
    if (bytes)
        *bytes = pz__kt_bytes(&c->kt);
}

static const pz_connlimit_provider provider = {
    .struct_size = sizeof(pz_connlimit_provider),
    .create = cl_create,
    .destroy = cl_destroy,
    .admit_address = cl_admit_address,
    .admit_identity = cl_admit_identity,
    .release = cl_release,
    .on_behavior = cl_on_behavior,
};

static const pz_conf_key schema[] = {
    {"max_connections", PZ_CONF_INT, "10000", "connections in total (pending + authenticated)"},
    {"max_pending_handshakes", PZ_CONF_INT, "256", "connections admitted by address, not yet authenticated"},
    {"max_per_address", PZ_CONF_INT, "16", "connections from one address; 0 = no cap"},
    {"max_per_node", PZ_CONF_INT, "8", "authenticated connections of one node id; 0 = no cap"},
    {"new_per_address.rate", PZ_CONF_DOUBLE, "5", "new connections per second from one address; 0 = off"},
    {"new_per_address.burst", PZ_CONF_DOUBLE, "20", "new connections from one address at once"},
    {"prefixes", PZ_CONF_LIST, "ipv4/24: 64 conns, 20/s burst 40; ipv6/64: 64, 20/s; /56: 128, 40/s; /48: 256, 80/s",
     "list of {family: ipv4|ipv6, length, max_connections, rate, burst}; replaces the defaults"},
    {"allowlist", PZ_CONF_LIST, "[]", "CIDRs, addresses and node ids (node:<id> to force) that bypass limits"},
    {"allow_local", PZ_CONF_BOOL, "true", "local (unix socket) clients bypass limits"},
    {"max_tracked", PZ_CONF_INT, "65536", "address/prefix/node counters kept (at least (2 + rules) x max_connections)"},
    {NULL, 0, NULL, NULL},
};

static const pz_plugin_descriptor descriptor = {
    PZ_PLUGIN_DESCRIPTOR_INIT,
    .name = "conn-limit",
    .version = PACKAGE_VERSION,
    .description = "connection limiter: global, pending, per address/prefix/node caps and rates, allowlist",
    .kind = PZ_KIND_CONNLIMIT,
    .provider = &provider,
    .config_schema = schema,
};

PZ_PLUGIN_EXPORT const pz_plugin_descriptor *pz_plugin_entry_v1(void)
{
    return &descriptor;
}
