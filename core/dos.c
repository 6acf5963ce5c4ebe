/* core/dos.c — the DoS protection service (see dos.h and
 * docs/internals/dos.md). */
#include "config.h"

#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "coresvc.h"
#include "dos.h"
#include "err.h"

#define SOURCE "dos"
/* Shadow-mode "would refuse" lines: at most this many per second. */
#define SHADOW_LOG_PER_S 20

typedef struct refusal_count {
    pz_dos_stage stage;
    int reason;
    int shadow;
    uint64_t count;
} refusal_count;

typedef struct limiter {
    pz_provider *prov;
    char *name; /* instance name */
    int shadow;
    pz_plugin_kind kind;
    const pz_connlimit_provider *cl; /* kind connlimit */
    const pz_ratelimit_provider *rl; /* kind ratelimit */
    void *state;
    GHashTable *costs; /* rate limiters: method -> cost (GUINT_TO_POINTER) */
    GArray *refusals;  /* refusal_count */
} limiter;

struct pz_dos {
    pz_core *core; /* the service's own services table: metrics as "dos" */
    limiter *conn;
    size_t n_conn;
    limiter *rate;
    size_t n_rate;
    uint64_t events[PZ_BEHAVIOR__COUNT];
    uint64_t events_dropped;
    int delivering; /* inside pz_dos_behavior: nested events are dropped */
    int installed;
    /* shadow log limiter */
    uint64_t log_window_ns;
    unsigned log_in_window;
    uint64_t log_suppressed;
};

struct pz_dos_conn {
    pz_addr addr;
    uint64_t pending; /* limiters holding it as admitted by address */
    uint64_t authed;  /* limiters holding it as admitted by identity */
    int identified;   /* admit_identity was called */
    int refused;      /* refused at the identity stage */
    char *node_id, *node_type;
};

const char *pz_dos_behavior_name(pz_behavior behavior)
{
    return pz_behavior_name(behavior);
}

const char *pz_dos_stage_name(pz_dos_stage stage)
{
    switch (stage) {
    case PZ_DOS_STAGE_ADDRESS: return "address";
    case PZ_DOS_STAGE_IDENTITY: return "identity";
    case PZ_DOS_STAGE_REQUEST: return "request";
    default: return "?";
    }
}

/* ---- construction ------------------------------------------------------ */

static void limiter_clear(limiter *l)
{
    pz_provider_free(l->prov);
    g_free(l->name);
    if (l->costs)
        g_hash_table_destroy(l->costs);
    if (l->refusals)
        g_array_free(l->refusals, TRUE);
    memset(l, 0, sizeof(*l));
}

static int limiter_init(limiter *l, pz_loader *loader, const pz_settings_provider *e, const char *section,
                        size_t index, pz_err *err)
{
    int rc = 0;
    const pz_plugin *plugin = NULL;
    const char *where = e->node ? pz_conf_where(e->node) : "(configuration)";
    memset(l, 0, sizeof(*l));
    if (!e->provider) {
        rc = pz_err_set(err, PZ_EINVAL, "%s: dos.%s[%zu]: no provider name", where, section, index);
        goto out;
    }
    rc = pz_loader_load(loader, e->provider, e->kind, &plugin, err);
    if (rc) {
        pz_err_prefix(err, "%s: dos.%s[%zu] (%s)", where, section, index, e->provider);
        goto out;
    }
    const char *name = e->name ? e->name : e->provider;
    rc = pz_provider_new(plugin, name, e->config, &l->prov, err);
    if (rc) {
        /* Configuration messages already carry FILE:LINE:COL. */
        if (rc != PZ_ECONFIG)
            pz_err_prefix(err, "%s: dos.%s[%zu] (%s)", where, section, index, name);
        goto out;
    }
    l->name = g_strdup(name);
    l->shadow = e->shadow;
    l->kind = pz_provider_kind(l->prov);
    l->state = pz_provider_state(l->prov);
    l->refusals = g_array_new(FALSE, TRUE, sizeof(refusal_count));
    if (l->kind == PZ_KIND_CONNLIMIT) {
        l->cl = pz_provider_table(l->prov);
    } else if (l->kind == PZ_KIND_RATELIMIT) {
        l->rl = pz_provider_table(l->prov);
        l->costs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        for (size_t i = 0; i < e->n_costs; i++)
            g_hash_table_insert(l->costs, g_strdup(e->costs[i].method), GUINT_TO_POINTER(e->costs[i].cost));
    } else {
        rc = pz_err_set(err, PZ_EINVAL, "%s: dos.%s[%zu]: provider %s is a %s provider", where, section, index,
                        e->provider, pz_plugin_kind_name(l->kind));
        goto out;
    }
out:
    if (rc)
        limiter_clear(l);
    return rc;
}

int pz_dos_new(pz_loader *loader, const pz_settings_provider *conn, size_t n_conn,
               const pz_settings_provider *rate, size_t n_rate, pz_dos **out, pz_err *err)
{
    int rc = 0;
    *out = NULL;
    if (n_conn > PZ_DOS_MAX_CONN_LIMITERS)
        return pz_err_set(err, PZ_EINVAL, "dos.connection_limiters: at most %d entries, found %zu",
                          PZ_DOS_MAX_CONN_LIMITERS, n_conn);
    pz_dos *dos = g_new0(pz_dos, 1);
    dos->core = pz_core_new(SOURCE);
    dos->conn = g_new0(limiter, n_conn ? n_conn : 1);
    dos->rate = g_new0(limiter, n_rate ? n_rate : 1);
    if (!dos->core) {
        rc = pz_err_set(err, PZ_ENOMEM, "dos: out of memory");
        goto out;
    }
    for (size_t i = 0; i < n_conn; i++) {
        pz_settings_provider e = conn[i];
        e.kind = PZ_KIND_CONNLIMIT;
        rc = limiter_init(&dos->conn[i], loader, &e, "connection_limiters", i, err);
        if (rc)
            goto out;
        dos->n_conn++;
    }
    for (size_t i = 0; i < n_rate; i++) {
        pz_settings_provider e = rate[i];
        e.kind = PZ_KIND_RATELIMIT;
        rc = limiter_init(&dos->rate[i], loader, &e, "rate_limiters", i, err);
        if (rc)
            goto out;
        dos->n_rate++;
    }
    pz_log(SOURCE, PZ_LOG_INFO, "%zu connection limiter(s), %zu rate limiter(s)", dos->n_conn, dos->n_rate);
    *out = dos;
out:
    if (rc)
        pz_dos_free(dos);
    return rc;
}

int pz_dos_new_from_settings(pz_loader *loader, const pz_settings *settings, pz_dos **out, pz_err *err)
{
    return pz_dos_new(loader, settings->conn_limiters, settings->n_conn_limiters, settings->rate_limiters,
                      settings->n_rate_limiters, out, err);
}

void pz_dos_free(pz_dos *dos)
{
    if (!dos)
        return;
    if (dos->installed)
        pz_core_set_hooks(NULL);
    pz_err err;
    pz_err_init(&err);
    if (pz_dos_flush(dos, &err))
        pz_log(SOURCE, PZ_LOG_WARNING, "saving limiter state at exit: %s", pz_err_msg(&err));
    pz_err_clear(&err);
    for (size_t i = 0; i < dos->n_conn; i++)
        limiter_clear(&dos->conn[i]);
    for (size_t i = 0; i < dos->n_rate; i++)
        limiter_clear(&dos->rate[i]);
    g_free(dos->conn);
    g_free(dos->rate);
    if (dos->core)
        pz_core_free(dos->core);
    g_free(dos);
}

void pz_dos_behavior_hook(void *ud, const char *source, const pz_behavior_event *event)
{
    (void)source;
    pz_dos_behavior(ud, event);
}

void pz_dos_install(pz_dos *dos)
{
    pz_core_hooks h;
    memset(&h, 0, sizeof(h));
    h.behavior = pz_dos_behavior_hook;
    h.ud = dos;
    pz_core_set_hooks(&h);
    dos->installed = 1;
}

/* ---- counting and logging ---------------------------------------------- */

static void count_refusal(pz_dos *dos, limiter *l, pz_dos_stage stage, int reason, const char *detail,
                          uint64_t now)
{
    refusal_count *c = NULL;
    for (guint i = 0; i < l->refusals->len; i++) {
        refusal_count *r = &g_array_index(l->refusals, refusal_count, i);
        if (r->stage == stage && r->reason == reason && r->shadow == l->shadow)
            c = r;
    }
    if (!c) {
        refusal_count n = {stage, reason, l->shadow, 0};
        g_array_append_val(l->refusals, n);
        c = &g_array_index(l->refusals, refusal_count, l->refusals->len - 1);
    }
    c->count++;
    char label[160];
    snprintf(label, sizeof(label), "%s/%s/%d", pz_dos_stage_name(stage), l->name, reason);
    dos->core->metric_add(dos->core, l->shadow ? "shadow_refusals_total" : "refusals_total", label, 1);
    if (!l->shadow)
        return;
    /* "Would refuse": logged, at a bounded rate. */
    if (now >= dos->log_window_ns + 1000000000ull || now < dos->log_window_ns) {
        if (dos->log_suppressed)
            pz_log(SOURCE, PZ_LOG_NOTICE, "shadow: %llu more would-refuse lines suppressed",
                   (unsigned long long)dos->log_suppressed);
        dos->log_window_ns = now;
        dos->log_in_window = 0;
        dos->log_suppressed = 0;
    }
    if (dos->log_in_window++ < SHADOW_LOG_PER_S)
        pz_log(SOURCE, PZ_LOG_NOTICE, "shadow: %s would refuse at %s stage: reason %d%s%s", l->name,
               pz_dos_stage_name(stage), reason, detail && *detail ? ": " : "", detail ? detail : "");
    else
        dos->log_suppressed++;
}

static void verdict_allow(pz_dos_verdict *out)
{
    memset(out, 0, sizeof(*out));
    out->allowed = 1;
}

static void verdict_refuse(pz_dos_verdict *out, const limiter *l, int reason, uint64_t retry, const char *detail)
{
    memset(out, 0, sizeof(*out));
    out->allowed = 0;
    out->provider = l ? l->name : NULL;
    out->reason = reason;
    out->retry_after_ns = retry;
    snprintf(out->detail, sizeof(out->detail), "%s", detail ? detail : "");
}

/* ---- connections ------------------------------------------------------- */

static pz_identity conn_identity(const pz_dos_conn *c)
{
    pz_identity id;
    memset(&id, 0, sizeof(id));
    id.struct_size = sizeof(id);
    id.node_id = c->node_id;
    id.node_type = c->node_type ? c->node_type : "";
    id.source = "dos";
    return id;
}

/* Tell every limiter still holding C that it has ended. */
static void release_all(pz_dos *dos, pz_dos_conn *c, uint64_t now)
{
    pz_identity id = conn_identity(c);
    for (size_t i = 0; i < dos->n_conn; i++) {
        uint64_t bit = (uint64_t)1 << i;
        limiter *l = &dos->conn[i];
        if (c->pending & bit)
            l->cl->release(l->state, &c->addr, NULL, PZ_STAGE_PRE_HANDSHAKE, now);
        else if (c->authed & bit)
            l->cl->release(l->state, &c->addr, c->node_id ? &id : NULL, PZ_STAGE_AUTHENTICATED, now);
    }
    c->pending = c->authed = 0;
}

int pz_dos_admit_address(pz_dos *dos, const pz_addr *addr, uint64_t now_ns, pz_dos_conn **conn,
                         pz_dos_verdict *out)
{
    int rc = 0;
    *conn = NULL;
    pz_dos_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        verdict_refuse(out, NULL, PZ_DOS_REASON_ERROR, 0, "out of memory");
        return PZ_ENOMEM;
    }
    c->addr = *addr;
    verdict_allow(out);
    for (size_t i = 0; i < dos->n_conn; i++) {
        limiter *l = &dos->conn[i];
        pz_admit_result r;
        memset(&r, 0, sizeof(r));
        r.struct_size = sizeof(r);
        int prc = l->cl->admit_address(l->state, addr, now_ns, &r);
        if (prc == 0 && r.admitted) {
            c->pending |= (uint64_t)1 << i;
            continue;
        }
        int reason = prc ? PZ_DOS_REASON_ERROR : r.reason;
        r.detail[sizeof(r.detail) - 1] = 0;
        count_refusal(dos, l, PZ_DOS_STAGE_ADDRESS, reason, prc ? pz_strerror(prc) : r.detail, now_ns);
        if (l->shadow)
            continue;
        verdict_refuse(out, l, reason, prc ? 0 : r.retry_after_ns, prc ? pz_strerror(prc) : r.detail);
        release_all(dos, c, now_ns);
        free(c);
        return 0;
    }
    *conn = c;
    return rc;
}

int pz_dos_admit_identity(pz_dos *dos, pz_dos_conn *c, const pz_identity *id, uint64_t now_ns,
                          pz_dos_verdict *out)
{
    if (!c || c->identified || !id || !id->node_id) {
        verdict_refuse(out, NULL, PZ_DOS_REASON_ERROR, 0, "no connection, or identity given twice");
        return PZ_EINVAL;
    }
    c->identified = 1;
    c->node_id = strdup(id->node_id);
    c->node_type = strdup(id->node_type ? id->node_type : "");
    if (!c->node_id || !c->node_type) {
        release_all(dos, c, now_ns);
        c->refused = 1;
        verdict_refuse(out, NULL, PZ_DOS_REASON_ERROR, 0, "out of memory");
        return PZ_ENOMEM;
    }
    verdict_allow(out);
    for (size_t i = 0; i < dos->n_conn; i++) {
        uint64_t bit = (uint64_t)1 << i;
        limiter *l = &dos->conn[i];
        if (!(c->pending & bit))
            continue;
        pz_admit_result r;
        memset(&r, 0, sizeof(r));
        r.struct_size = sizeof(r);
        int prc = l->cl->admit_identity(l->state, &c->addr, id, now_ns, &r);
        c->pending &= ~bit; /* no longer pending for it, either way */
        if (prc == 0 && r.admitted) {
            c->authed |= bit;
            continue;
        }
        int reason = prc ? PZ_DOS_REASON_ERROR : r.reason;
        r.detail[sizeof(r.detail) - 1] = 0;
        count_refusal(dos, l, PZ_DOS_STAGE_IDENTITY, reason, prc ? pz_strerror(prc) : r.detail, now_ns);
        if (l->shadow)
            continue;
        verdict_refuse(out, l, reason, prc ? 0 : r.retry_after_ns, prc ? pz_strerror(prc) : r.detail);
        release_all(dos, c, now_ns);
        c->refused = 1;
        return 0;
    }
    return 0;
}

void pz_dos_release(pz_dos *dos, pz_dos_conn *c, uint64_t now_ns)
{
    if (!c)
        return;
    release_all(dos, c, now_ns);
    free(c->node_id);
    free(c->node_type);
    free(c);
}

/* ---- requests ---------------------------------------------------------- */

pz_peer_status pz_dos_peer_status(pz_dos *dos, const char *node_id, uint64_t now_ns)
{
    if (!node_id)
        return PZ_STATUS_UNKNOWN;
    for (size_t i = 0; i < dos->n_conn; i++) {
        limiter *l = &dos->conn[i];
        pz_peer_status st = PZ_STATUS_UNKNOWN;
        if (l->shadow || l->cl->struct_size < offsetof(pz_connlimit_provider, peer_status) + sizeof(void *) ||
            !l->cl->peer_status)
            continue;
        if (l->cl->peer_status(l->state, node_id, now_ns, &st) == 0 && st != PZ_STATUS_UNKNOWN)
            return st;
    }
    return PZ_STATUS_UNKNOWN;
}

int pz_dos_check_request(pz_dos *dos, const char *node_id, const pz_addr *addr, const char *method,
                         uint64_t now_ns, pz_dos_verdict *out)
{
    verdict_allow(out);
    if (!dos->n_rate)
        return 0;
    pz_peer_status st = pz_dos_peer_status(dos, node_id, now_ns);
    for (size_t i = 0; i < dos->n_rate; i++) {
        limiter *l = &dos->rate[i];
        uint32_t cost = 1;
        gpointer v;
        if (method && g_hash_table_lookup_extended(l->costs, method, NULL, &v))
            cost = GPOINTER_TO_UINT(v);
        pz_rl_request req = {sizeof(req), node_id, addr, method, cost, st, now_ns};
        pz_rl_decision d;
        memset(&d, 0, sizeof(d));
        d.struct_size = sizeof(d);
        int prc = l->rl->allow(l->state, &req, &d);
        if (prc == 0 && d.allowed)
            continue;
        int reason = prc ? PZ_DOS_REASON_ERROR : d.reason;
        char detail[96];
        if (prc)
            snprintf(detail, sizeof(detail), "%s", pz_strerror(prc));
        else
            snprintf(detail, sizeof(detail), "%s: cost %u, %.2f of %.2f left", method ? method : "(connection)",
                     cost, d.remaining, d.limit);
        count_refusal(dos, l, PZ_DOS_STAGE_REQUEST, reason, detail, now_ns);
        if (l->shadow)
            continue;
        verdict_refuse(out, l, reason, prc ? 0 : d.retry_after_ns, detail);
        pz_behavior_event ev = {sizeof(ev), PZ_BEHAVIOR_RATE_LIMITED, node_id, *addr, now_ns, out->detail};
        pz_dos_behavior(dos, &ev);
        return 0;
    }
    return 0;
}

/* ---- behaviour events -------------------------------------------------- */

void pz_dos_behavior(pz_dos *dos, const pz_behavior_event *event)
{
    if (!dos || !event)
        return;
    if (dos->delivering) {
        dos->events_dropped++;
        dos->core->metric_add(dos->core, "events_dropped_total", NULL, 1);
        return;
    }
    pz_behavior b = event->behavior;
    if (b > 0 && b < PZ_BEHAVIOR__COUNT)
        dos->events[b]++;
    dos->core->metric_add(dos->core, "events_total", pz_dos_behavior_name(b), 1);
    dos->delivering = 1;
    for (size_t i = 0; i < dos->n_conn; i++)
        dos->conn[i].cl->on_behavior(dos->conn[i].state, event);
    dos->delivering = 0;
}

uint64_t pz_dos_events(const pz_dos *dos, pz_behavior behavior)
{
    if (behavior > 0 && behavior < PZ_BEHAVIOR__COUNT)
        return dos->events[behavior];
    uint64_t n = 0;
    for (int i = 0; i < PZ_BEHAVIOR__COUNT; i++)
        n += dos->events[i];
    return n;
}

uint64_t pz_dos_events_dropped(const pz_dos *dos)
{
    return dos->events_dropped;
}

/* ---- bans, persistence, counters --------------------------------------- */

static int has_fn(const limiter *l, size_t offset)
{
    return l->cl->struct_size >= offset + sizeof(void *) && *(void *const *)((const char *)l->cl + offset);
}

int pz_dos_peer_info(pz_dos *dos, const char *node_id, uint64_t now_ns, pz_peer_info *out)
{
    if (!dos || !node_id || !out)
        return PZ_EINVAL;
    for (size_t i = 0; i < dos->n_conn; i++) {
        limiter *l = &dos->conn[i];
        /* has_fn checks struct_size: a table built against ABI 1.0 ends
         * before peer_info and is never asked. */
        if (l->shadow || !has_fn(l, offsetof(pz_connlimit_provider, peer_info)))
            continue;
        memset(out, 0, sizeof(*out));
        out->struct_size = sizeof(*out);
        if (l->cl->peer_info(l->state, node_id, now_ns, out) == 0) {
            if (out->n_history > PZ_PEER_HISTORY_MAX)
                out->n_history = PZ_PEER_HISTORY_MAX;
            return 0;
        }
    }
    memset(out, 0, sizeof(*out));
    out->struct_size = sizeof(*out);
    return PZ_ENOENT;
}

int pz_dos_ban(pz_dos *dos, const char *target, uint64_t duration_ns, uint64_t now_ns, pz_err *err)
{
    int rc = 0, done = 0;
    for (size_t i = 0; i < dos->n_conn; i++) {
        limiter *l = &dos->conn[i];
        if (!has_fn(l, offsetof(pz_connlimit_provider, ban)))
            continue;
        int prc = l->cl->ban(l->state, target, duration_ns, now_ns, err);
        if (prc == PZ_ENOTSUP)
            continue;
        if (prc) {
            if (!rc) {
                rc = prc;
                pz_err_prefix(err, "%s", l->name);
            }
            continue;
        }
        done++;
    }
    if (!rc && !done)
        rc = pz_err_set(err, PZ_ENOTSUP, "ban %s: no connection limiter keeps bans (configure reputation)",
                        target ? target : "");
    return rc;
}

int pz_dos_unban(pz_dos *dos, const char *target, pz_err *err)
{
    int rc = 0, done = 0, tried = 0;
    pz_err first;
    pz_err_init(&first);
    for (size_t i = 0; i < dos->n_conn; i++) {
        limiter *l = &dos->conn[i];
        if (!has_fn(l, offsetof(pz_connlimit_provider, unban)))
            continue;
        pz_err one;
        pz_err_init(&one);
        int prc = l->cl->unban(l->state, target, &one);
        if (prc != PZ_ENOTSUP)
            tried++;
        if (prc == 0)
            done++;
        else if (prc != PZ_ENOTSUP && !rc) {
            rc = prc;
            pz_err_set(&first, prc, "%s: %s", l->name, pz_err_msg(&one));
        }
        pz_err_clear(&one);
    }
    if (done)
        rc = 0;
    else if (!tried)
        rc = pz_err_set(err, PZ_ENOTSUP, "unban %s: no connection limiter keeps bans", target ? target : "");
    else
        pz_err_set(err, rc, "%s", pz_err_msg(&first));
    pz_err_clear(&first);
    return rc;
}

int pz_dos_flush(pz_dos *dos, pz_err *err)
{
    int rc = 0;
    for (size_t i = 0; i < dos->n_conn; i++) {
        limiter *l = &dos->conn[i];
        if (!has_fn(l, offsetof(pz_connlimit_provider, flush)))
            continue;
        int prc = l->cl->flush(l->state, rc ? NULL : err);
        if (prc && !rc) {
            rc = prc;
            pz_err_prefix(err, "%s", l->name);
        }
    }
    return rc;
}

static int foreach_in(const limiter *ls, size_t n, pz_dos_refusal_fn fn, void *ud)
{
    for (size_t i = 0; i < n; i++)
        for (guint k = 0; k < ls[i].refusals->len; k++) {
            const refusal_count *r = &g_array_index(ls[i].refusals, refusal_count, k);
            int v = fn(r->stage, ls[i].name, r->reason, r->shadow, r->count, ud);
            if (v)
                return v;
        }
    return 0;
}

int pz_dos_foreach_refusal(const pz_dos *dos, pz_dos_refusal_fn fn, void *ud)
{
    int v = foreach_in(dos->conn, dos->n_conn, fn, ud);
    return v ? v : foreach_in(dos->rate, dos->n_rate, fn, ud);
}

typedef struct sum_ctx {
    pz_dos_stage stage;
    const char *provider;
    int reason, shadow;
    uint64_t total;
} sum_ctx;

static int sum_one(pz_dos_stage stage, const char *provider, int reason, int shadow, uint64_t count, void *ud)
{
    sum_ctx *s = ud;
    if ((!s->stage || s->stage == stage) && (!s->provider || !strcmp(s->provider, provider)) &&
        (s->reason == INT_MIN || s->reason == reason) && s->shadow == shadow)
        s->total += count;
    return 0;
}

uint64_t pz_dos_refusals(const pz_dos *dos, pz_dos_stage stage, const char *provider, int reason, int shadow)
{
    sum_ctx s = {stage, provider, reason, shadow ? 1 : 0, 0};
    pz_dos_foreach_refusal(dos, sum_one, &s);
    return s.total;
}
