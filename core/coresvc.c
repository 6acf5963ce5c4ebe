/* core/coresvc.c — the core-services table (pz_core) handed to providers,
 * the process-wide hooks behind it and the in-process metrics registry.
 * libgcrypt is initialised by pz_crypto_init() (core/crypto.c). */
#include "config.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gcrypt.h>
#include <glib.h>

#include "conf.h"
#include "coresvc.h"
#include "crypto.h"
#include "err.h"

/* The table a provider sees is the first member, so a const pz_core *
 * handed back to us converts to the whole record. */
typedef struct core_impl {
    pz_core table;
    char *source;
} core_impl;

static const char *source_of(const pz_core *core)
{
    return core ? ((const core_impl *)core)->source : "core";
}

/* ------------------------------------------------------------------------ */
/* Default hooks */

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    if (clock_gettime(id, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

static uint64_t default_monotonic(void *ud)
{
    (void)ud;
    return clock_ns(CLOCK_MONOTONIC);
}

static uint64_t default_realtime(void *ud)
{
    (void)ud;
    return clock_ns(CLOCK_REALTIME);
}

static int default_random(void *ud, void *buf, size_t len)
{
    (void)ud;
    if (pz_crypto_init() != 0)
        return PZ_ECRYPTO;
    if (len)
        gcry_randomize(buf, len, GCRY_STRONG_RANDOM);
    return 0;
}

static void default_behavior(void *ud, const char *source, const pz_behavior_event *event)
{
    /* Dropped until the DoS service installs its sink. */
    (void)ud;
    (void)source;
    (void)event;
}

static GLogLevelFlags glib_level(pz_log_level level)
{
    switch (level) {
    case PZ_LOG_DEBUG: return G_LOG_LEVEL_DEBUG;
    case PZ_LOG_INFO: return G_LOG_LEVEL_INFO;
    case PZ_LOG_NOTICE: return G_LOG_LEVEL_MESSAGE;
    case PZ_LOG_WARNING: return G_LOG_LEVEL_WARNING;
    /* Not G_LOG_LEVEL_ERROR: GLib aborts on it, and a provider's error is
     * not a reason to stop the node. */
    case PZ_LOG_ERROR: return G_LOG_LEVEL_CRITICAL;
    }
    return G_LOG_LEVEL_MESSAGE;
}

static void default_log(void *ud, const char *source, pz_log_level level, const char *msg)
{
    (void)ud;
    g_log_structured("prozsec", glib_level(level), "PROVIDER", source, "MESSAGE", "[%s] %s", source, msg);
}

static void registry_update(const char *source, const char *name, const char *label, int64_t value,
                            int is_gauge);

static void default_metric(void *ud, const char *source, const char *name, const char *label, int64_t value,
                           int is_gauge)
{
    (void)ud;
    registry_update(source, name, label, value, is_gauge);
}

static const pz_core_hooks default_hooks = {
    .monotonic_ns = default_monotonic,
    .realtime_ns = default_realtime,
    .random = default_random,
    .behavior = default_behavior,
    .log = default_log,
    .metric = default_metric,
    .ud = NULL,
};

static pz_core_hooks hooks = {
    .monotonic_ns = default_monotonic,
    .realtime_ns = default_realtime,
    .random = default_random,
    .behavior = default_behavior,
    .log = default_log,
    .metric = default_metric,
    .ud = NULL,
};

void pz_core_set_hooks(const pz_core_hooks *h)
{
    pz_core_hooks n = default_hooks;
    if (h) {
        if (h->monotonic_ns)
            n.monotonic_ns = h->monotonic_ns;
        if (h->realtime_ns)
            n.realtime_ns = h->realtime_ns;
        if (h->random)
            n.random = h->random;
        if (h->behavior)
            n.behavior = h->behavior;
        if (h->log)
            n.log = h->log;
        if (h->metric)
            n.metric = h->metric;
        n.ud = h->ud;
    }
    hooks = n;
}

/* ------------------------------------------------------------------------ */
/* Logging */

static void log_v(const char *source, pz_log_level level, const char *fmt, va_list ap) G_GNUC_PRINTF(3, 0);

static void log_v(const char *source, pz_log_level level, const char *fmt, va_list ap)
{
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    if (msg) {
        /* One event, one line: a provider cannot forge extra log lines. */
        for (char *p = msg; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                *p = ' ';
    }
    hooks.log(hooks.ud, source ? source : "core", level, msg ? msg : "(log message lost: out of memory)");
    free(msg);
}

void pz_log(const char *source, pz_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_v(source, level, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------------ */
/* Convenience for the core itself */

uint64_t pz_now_ns(void)
{
    return hooks.monotonic_ns(hooks.ud);
}

uint64_t pz_realtime_ns(void)
{
    return hooks.realtime_ns(hooks.ud);
}

int pz_random(void *buf, size_t len)
{
    if (!buf && len)
        return PZ_EINVAL;
    return hooks.random(hooks.ud, buf, len);
}

void pz_emit_behavior(const char *source, const pz_behavior_event *event)
{
    if (!event)
        return;
    hooks.behavior(hooks.ud, source ? source : "core", event);
}

/* ------------------------------------------------------------------------ */
/* The table's functions */

static void core_log(const pz_core *core, pz_log_level level, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static void core_log(const pz_core *core, pz_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_v(source_of(core), level, fmt, ap);
    va_end(ap);
}

static int core_error(const pz_core *core, pz_err *err, int code, const char *fmt, ...) G_GNUC_PRINTF(4, 5);
static int core_error(const pz_core *core, pz_err *err, int code, const char *fmt, ...)
{
    (void)core;
    va_list ap;
    va_start(ap, fmt);
    int rc = pz_err_setv(err, code, fmt, ap);
    va_end(ap);
    return rc;
}

static uint64_t core_monotonic(const pz_core *core)
{
    (void)core;
    return pz_now_ns();
}

static uint64_t core_realtime(const pz_core *core)
{
    (void)core;
    return pz_realtime_ns();
}

static int core_random(const pz_core *core, void *buf, size_t len)
{
    (void)core;
    return pz_random(buf, len);
}

static void *core_secure_alloc(const pz_core *core, size_t len)
{
    (void)core;
    if (pz_crypto_init() != 0)
        return NULL;
    return gcry_malloc_secure(len ? len : 1);
}

static void core_secure_free(const pz_core *core, void *ptr)
{
    (void)core;
    /* gcry_free wipes secure memory before releasing it; NULL is a no-op. */
    gcry_free(ptr);
}

static void core_metric_add(const pz_core *core, const char *name, const char *label, int64_t delta)
{
    if (name)
        hooks.metric(hooks.ud, source_of(core), name, label, delta, 0);
}

static void core_metric_set(const pz_core *core, const char *name, const char *label, int64_t value)
{
    if (name)
        hooks.metric(hooks.ud, source_of(core), name, label, value, 1);
}

static void core_behavior(const pz_core *core, const pz_behavior_event *event)
{
    pz_emit_behavior(source_of(core), event);
}

pz_core *pz_core_new(const char *source)
{
    core_impl *c = NULL;
    if (!source)
        goto out;
    (void)pz_crypto_init();
    c = calloc(1, sizeof(*c));
    if (!c)
        goto out;
    c->source = strdup(source);
    if (!c->source) {
        free(c);
        c = NULL;
        goto out;
    }
    pz_core *t = &c->table;
    t->struct_size = sizeof(pz_core);
    t->abi_major = PZ_ABI_MAJOR;
    t->abi_minor = PZ_ABI_MINOR;
    t->log = core_log;
    t->error = core_error;
    t->monotonic_ns = core_monotonic;
    t->realtime_ns = core_realtime;
    t->random = core_random;
    t->secure_alloc = core_secure_alloc;
    t->secure_free = core_secure_free;
    t->metric_add = core_metric_add;
    t->metric_set = core_metric_set;
    t->behavior = core_behavior;
    t->conf_has = pz_conf_has;
    t->conf_string = pz_conf_string;
    t->conf_int = pz_conf_int;
    t->conf_double = pz_conf_double;
    t->conf_bool = pz_conf_bool;
    t->conf_duration = pz_conf_duration;
    t->conf_size = pz_conf_size;
    t->conf_map = pz_conf_map;
    t->conf_list = pz_conf_list;
    t->conf_len = pz_conf_len;
    t->conf_at = pz_conf_at;
    t->conf_scalar = pz_conf_scalar;
    t->conf_where = pz_conf_where;
    t->conf_error = pz_conf_error;
out:
    return c ? &c->table : NULL;
}

void pz_core_free(pz_core *core)
{
    if (!core)
        return;
    core_impl *c = (core_impl *)core;
    free(c->source);
    free(c);
}

const char *pz_core_source(const pz_core *core)
{
    return core ? source_of(core) : NULL;
}

/* ------------------------------------------------------------------------ */
/* Metrics registry */

typedef struct series {
    char *name;  /* full metric name */
    char *label; /* NULL for none */
    int64_t value;
    int is_gauge;
} series;

static GMutex metrics_lock;
static GHashTable *metrics; /* "name\037label" (or "name") -> series */

#define DROPPED_NAME "prozsec_core_metrics_dropped_total"

static void series_free(gpointer p)
{
    series *s = p;
    free(s->name);
    free(s->label);
    free(s);
}

static int valid_metric_name(const char *name)
{
    if (!*name)
        return 0;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return 0;
    return 1;
}

static int64_t sat_add(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

/* Called with metrics_lock held. Takes nothing; copies NAME and LABEL. */
static series *series_get(const char *name, const char *label, int may_exceed)
{
    char *key = NULL;
    series *s = NULL;
    if (asprintf(&key, "%s%s%s", name, label ? "\037" : "", label ? label : "") < 0)
        return NULL;
    if (!metrics)
        metrics = g_hash_table_new_full(g_str_hash, g_str_equal, free, series_free);
    s = g_hash_table_lookup(metrics, key);
    if (s || (!may_exceed && g_hash_table_size(metrics) >= PZ_METRICS_MAX_SERIES))
        goto out;
    s = calloc(1, sizeof(*s));
    if (!s)
        goto out;
    s->name = strdup(name);
    s->label = label ? strdup(label) : NULL;
    if (!s->name || (label && !s->label)) {
        series_free(s);
        s = NULL;
        goto out;
    }
    g_hash_table_insert(metrics, key, s);
    key = NULL;
out:
    free(key);
    return s;
}

static void registry_update(const char *source, const char *name, const char *label, int64_t value,
                            int is_gauge)
{
    char *full = NULL;
    if (!valid_metric_name(name) || (label && strlen(label) > PZ_METRICS_LABEL_MAX))
        return;
    if (asprintf(&full, "prozsec_%s_%s", source, name) < 0)
        return;
    for (char *p = full; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_'))
            *p = '_';
    g_mutex_lock(&metrics_lock);
    series *s = series_get(full, label, 0);
    if (!s) {
        series *d = series_get(DROPPED_NAME, NULL, 1);
        if (d)
            d->value = sat_add(d->value, 1);
    } else if (is_gauge) {
        s->value = value;
        s->is_gauge = 1;
    } else {
        s->value = sat_add(s->value, value);
        s->is_gauge = 0;
    }
    g_mutex_unlock(&metrics_lock);
    free(full);
}

static int series_cmp(const void *a, const void *b)
{
    const series *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    if (!x->label || !y->label)
        return (x->label != NULL) - (y->label != NULL);
    return strcmp(x->label, y->label);
}

static void snapshot_free(series *snap, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(snap[i].name);
        free(snap[i].label);
    }
    free(snap);
}

/* A sorted deep copy of the registry, so callbacks run without the lock. */
static int snapshot(series **out, size_t *n_out)
{
    int rc = 0;
    size_t n = 0;
    series *snap = NULL;
    g_mutex_lock(&metrics_lock);
    size_t total = metrics ? g_hash_table_size(metrics) : 0;
    if (total) {
        snap = calloc(total, sizeof(*snap));
        if (!snap) {
            rc = PZ_ENOMEM;
            goto out;
        }
        GHashTableIter it;
        gpointer v;
        g_hash_table_iter_init(&it, metrics);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
            const series *s = v;
            snap[n].name = strdup(s->name);
            snap[n].label = s->label ? strdup(s->label) : NULL;
            snap[n].value = s->value;
            snap[n].is_gauge = s->is_gauge;
            n++;
            if (!snap[n - 1].name || (s->label && !snap[n - 1].label)) {
                rc = PZ_ENOMEM;
                goto out;
            }
        }
    }
out:
    g_mutex_unlock(&metrics_lock);
    if (rc) {
        snapshot_free(snap, n);
        return rc;
    }
    if (n)
        qsort(snap, n, sizeof(*snap), series_cmp);
    *out = snap;
    *n_out = n;
    return 0;
}

int pz_metrics_foreach(pz_metric_fn fn, void *ud)
{
    series *snap = NULL;
    size_t n = 0;
    int rc = fn ? snapshot(&snap, &n) : PZ_EINVAL;
    if (rc)
        goto out;
    for (size_t i = 0; i < n; i++)
        fn(snap[i].name, snap[i].label, snap[i].value, snap[i].is_gauge, ud);
    snapshot_free(snap, n);
out:
    return rc;
}

static void append_label_value(GString *out, const char *v)
{
    for (const char *p = v; *p; p++) {
        switch (*p) {
        case '\\': g_string_append(out, "\\\\"); break;
        case '"': g_string_append(out, "\\\""); break;
        case '\n': g_string_append(out, "\\n"); break;
        default: g_string_append_c(out, *p); break;
        }
    }
}

int pz_metrics_format(GString *out)
{
    series *snap = NULL;
    size_t n = 0;
    int rc = out ? snapshot(&snap, &n) : PZ_EINVAL;
    if (rc)
        goto out;
    for (size_t i = 0; i < n; i++) {
        const series *s = &snap[i];
        if (i == 0 || strcmp(s->name, snap[i - 1].name) != 0)
            g_string_append_printf(out, "# TYPE %s %s\n", s->name, s->is_gauge ? "gauge" : "counter");
        g_string_append(out, s->name);
        if (s->label) {
            g_string_append(out, "{label=\"");
            append_label_value(out, s->label);
            g_string_append(out, "\"}");
        }
        g_string_append_printf(out, " %" G_GINT64_FORMAT "\n", (gint64)s->value);
    }
    snapshot_free(snap, n);
out:
    return rc;
}

void pz_metrics_clear(void)
{
    g_mutex_lock(&metrics_lock);
    if (metrics)
        g_hash_table_remove_all(metrics);
    g_mutex_unlock(&metrics_lock);
}
