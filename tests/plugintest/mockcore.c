/* tests/plugintest/mockcore.c — libprozsec-plugintest: a recording mock of
 * the core-services table for plugin unit tests (include/prozsec/plugintest.h).
 *
 * Built with core/conf.c and core/err.c compiled in, so configuration
 * behaves exactly as in the daemon; only pz_mock_* is exported. No GLib.
 */
#include "config.h"

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <prozsec/plugintest.h>

#include "conf.h"
#include "err.h"

typedef struct mock_log {
    pz_log_level level;
    char *msg;
} mock_log;

typedef struct mock_metric {
    char *name;
    char *label; /* NULL: unlabelled */
    int64_t value;
} mock_metric;

typedef struct mock_event {
    pz_behavior_event ev; /* node_id / detail point at the copies below */
    char *node_id;
    char *detail;
} mock_event;

/* A secure block: the header keeps the size so free can wipe it. */
typedef struct secure_hdr {
    size_t len;
    size_t magic;
    max_align_t align[]; /* user memory follows, aligned */
} secure_hdr;

#define SECURE_MAGIC ((size_t)0x707a6d6f636b5365ull)

struct pz_mock {
    pz_core core; /* first: the provider's core pointer leads back here */
    pthread_mutex_t lock;
    pz_err err;

    uint64_t mono_ns;
    uint64_t real_ns;
    uint64_t rng;
    int random_fail;
    int secure_fail;
    size_t secure_in_use;

    mock_log *logs;
    size_t n_logs, cap_logs;
    mock_metric *metrics;
    size_t n_metrics, cap_metrics;
    mock_event **events;
    size_t n_events, cap_events;
    pz_conf_doc **docs;
    size_t n_docs, cap_docs;
    int echo; /* PZ_MOCK_LOG set: copy log lines to stderr */
};

static pz_mock *from_core(const pz_core *core)
{
    return (pz_mock *)((char *)core - offsetof(pz_mock, core));
}

/* Grow *ARR (of *CAP elements of SIZE bytes) to hold one more. */
static int grow(void *arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 8;
    void *p = realloc(*(void **)arr, ncap * size);
    if (!p)
        return PZ_ENOMEM;
    *(void **)arr = p;
    *cap = ncap;
    return 0;
}

static const char *level_name(pz_log_level level)
{
    switch (level) {
    case PZ_LOG_DEBUG: return "debug";
    case PZ_LOG_INFO: return "info";
    case PZ_LOG_NOTICE: return "notice";
    case PZ_LOG_WARNING: return "warning";
    case PZ_LOG_ERROR: return "error";
    default: return "?";
    }
}

/* Record a line; the caller holds the lock. A line that cannot be stored
 * (out of memory) is dropped: a test checking for it fails visibly. */
static void log_locked(pz_mock *m, pz_log_level level, char *msg)
{
    if (m->echo)
        fprintf(stderr, "pz_mock [%s] %s\n", level_name(level), msg);
    if (grow(&m->logs, &m->cap_logs, m->n_logs, sizeof(*m->logs)) < 0) {
        free(msg);
        return;
    }
    m->logs[m->n_logs++] = (mock_log){.level = level, .msg = msg};
}

/* ------------------------------------------------------------------------ */
/* The services table */

static void core_log(const pz_core *core, pz_log_level level, const char *fmt, ...) PZ_PRINTF(3, 4);
static int core_error(const pz_core *core, pz_err *err, int code, const char *fmt, ...) PZ_PRINTF(4, 5);

static void core_log(const pz_core *core, pz_log_level level, const char *fmt, ...)
{
    pz_mock *m = from_core(core);
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    pthread_mutex_lock(&m->lock);
    log_locked(m, level, msg);
    pthread_mutex_unlock(&m->lock);
}

static int core_error(const pz_core *core, pz_err *err, int code, const char *fmt, ...)
{
    (void)core;
    va_list ap;
    va_start(ap, fmt);
    int rc = pz_err_setv(err, code, fmt, ap);
    va_end(ap);
    return rc;
}

static uint64_t core_monotonic_ns(const pz_core *core)
{
    pz_mock *m = from_core(core);
    pthread_mutex_lock(&m->lock);
    uint64_t t = m->mono_ns;
    pthread_mutex_unlock(&m->lock);
    return t;
}

static uint64_t core_realtime_ns(const pz_core *core)
{
    pz_mock *m = from_core(core);
    pthread_mutex_lock(&m->lock);
    uint64_t t = m->real_ns;
    pthread_mutex_unlock(&m->lock);
    return t;
}

/* SplitMix64: tiny, fully determined by its seed. Not a CSPRNG — this is a
 * test double. */
static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int core_random(const pz_core *core, void *buf, size_t len)
{
    pz_mock *m = from_core(core);
    int rc = 0;
    pthread_mutex_lock(&m->lock);
    if (m->random_fail) {
        rc = PZ_ECRYPTO;
        goto out;
    }
    unsigned char *p = buf;
    while (len > 0) {
        uint64_t v = splitmix64(&m->rng);
        size_t k = len < sizeof(v) ? len : sizeof(v);
        for (size_t i = 0; i < k; i++)
            p[i] = (unsigned char)(v >> (8 * i));
        p += k;
        len -= k;
    }
out:
    pthread_mutex_unlock(&m->lock);
    return rc;
}

static void *core_secure_alloc(const pz_core *core, size_t len)
{
    pz_mock *m = from_core(core);
    secure_hdr *h = NULL;
    pthread_mutex_lock(&m->lock);
    if (m->secure_fail || len > SIZE_MAX - sizeof(*h))
        goto out;
    if (!(h = calloc(1, sizeof(*h) + len)))
        goto out;
    h->len = len;
    h->magic = SECURE_MAGIC;
    m->secure_in_use++;
out:
    pthread_mutex_unlock(&m->lock);
    return h ? (void *)h->align : NULL;
}

static void core_secure_free(const pz_core *core, void *ptr)
{
    pz_mock *m = from_core(core);
    if (!ptr)
        return;
    secure_hdr *h = (secure_hdr *)((char *)ptr - offsetof(secure_hdr, align));
    pthread_mutex_lock(&m->lock);
    if (h->magic != SECURE_MAGIC) {
        /* Not ours, or freed twice: say so rather than corrupt memory. */
        char *msg = strdup("pz_mock: secure_free of a pointer secure_alloc did not return (or freed twice)");
        if (msg)
            log_locked(m, PZ_LOG_ERROR, msg);
        pthread_mutex_unlock(&m->lock);
        return;
    }
    m->secure_in_use--;
    pthread_mutex_unlock(&m->lock);
    explicit_bzero(h, sizeof(*h) + h->len);
    free(h);
}

static int valid_metric_name(const char *name)
{
    if (!name || !*name)
        return 0;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return 0;
    return 1;
}

static int same_label(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

static void record_metric(const pz_core *core, const char *name, const char *label, int64_t v, int is_gauge)
{
    pz_mock *m = from_core(core);
    pthread_mutex_lock(&m->lock);
    if (!valid_metric_name(name)) {
        char *msg = NULL;
        if (asprintf(&msg, "pz_mock: invalid metric name \"%s\" (must be [a-z0-9_]+)", name ? name : "(null)") >= 0)
            log_locked(m, PZ_LOG_ERROR, msg);
        if (!name)
            goto out;
    }
    for (size_t i = 0; i < m->n_metrics; i++) {
        mock_metric *mm = &m->metrics[i];
        if (!strcmp(mm->name, name) && same_label(mm->label, label)) {
            mm->value = is_gauge ? v : mm->value + v;
            goto out;
        }
    }
    if (grow(&m->metrics, &m->cap_metrics, m->n_metrics, sizeof(*m->metrics)) < 0)
        goto out;
    char *n = strdup(name), *l = label ? strdup(label) : NULL;
    if (!n || (label && !l)) {
        free(n);
        free(l);
        goto out;
    }
    m->metrics[m->n_metrics++] = (mock_metric){.name = n, .label = l, .value = v};
out:
    pthread_mutex_unlock(&m->lock);
}

static void core_metric_add(const pz_core *core, const char *name, const char *label, int64_t delta)
{
    record_metric(core, name, label, delta, 0);
}

static void core_metric_set(const pz_core *core, const char *name, const char *label, int64_t value)
{
    record_metric(core, name, label, value, 1);
}

static void event_free(mock_event *e)
{
    if (!e)
        return;
    free(e->node_id);
    free(e->detail);
    free(e);
}

static void core_behavior(const pz_core *core, const pz_behavior_event *event)
{
    pz_mock *m = from_core(core);
    if (!event)
        return;
    mock_event *e = calloc(1, sizeof(*e));
    if (!e)
        return;
    /* Copy only the fields the emitter's struct has. */
    size_t n = event->struct_size < sizeof(e->ev) ? event->struct_size : sizeof(e->ev);
    if (n < offsetof(pz_behavior_event, behavior) + sizeof(event->behavior))
        n = offsetof(pz_behavior_event, behavior) + sizeof(event->behavior);
    memcpy(&e->ev, event, n);
    e->ev.struct_size = sizeof(e->ev);
    e->node_id = NULL;
    e->detail = NULL;
    if ((n >= offsetof(pz_behavior_event, node_id) + sizeof(event->node_id) && event->node_id &&
         !(e->node_id = strdup(event->node_id))) ||
        (n >= offsetof(pz_behavior_event, detail) + sizeof(event->detail) && event->detail &&
         !(e->detail = strdup(event->detail)))) {
        event_free(e);
        return;
    }
    e->ev.node_id = e->node_id;
    e->ev.detail = e->detail;
    pthread_mutex_lock(&m->lock);
    if (grow(&m->events, &m->cap_events, m->n_events, sizeof(*m->events)) < 0) {
        pthread_mutex_unlock(&m->lock);
        event_free(e);
        return;
    }
    m->events[m->n_events++] = e;
    pthread_mutex_unlock(&m->lock);
}

/* ------------------------------------------------------------------------ */
/* The mock */

pz_mock *pz_mock_new(void)
{
    pz_mock *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        free(m);
        return NULL;
    }
    pz_err_init(&m->err);
    m->mono_ns = PZ_MOCK_MONOTONIC_START_NS;
    m->real_ns = PZ_MOCK_REALTIME_START_NS;
    m->rng = 0;
    const char *echo = getenv("PZ_MOCK_LOG");
    m->echo = echo && *echo;
    m->core = (pz_core){
        .struct_size = sizeof(pz_core),
        .abi_major = PZ_ABI_MAJOR,
        .abi_minor = PZ_ABI_MINOR,
        .log = core_log,
        .error = core_error,
        .monotonic_ns = core_monotonic_ns,
        .realtime_ns = core_realtime_ns,
        .random = core_random,
        .secure_alloc = core_secure_alloc,
        .secure_free = core_secure_free,
        .metric_add = core_metric_add,
        .metric_set = core_metric_set,
        .behavior = core_behavior,
        .conf_has = pz_conf_has,
        .conf_string = pz_conf_string,
        .conf_int = pz_conf_int,
        .conf_double = pz_conf_double,
        .conf_bool = pz_conf_bool,
        .conf_duration = pz_conf_duration,
        .conf_size = pz_conf_size,
        .conf_map = pz_conf_map,
        .conf_list = pz_conf_list,
        .conf_len = pz_conf_len,
        .conf_at = pz_conf_at,
        .conf_scalar = pz_conf_scalar,
        .conf_where = pz_conf_where,
        .conf_error = pz_conf_error,
    };
    return m;
}

void pz_mock_free(pz_mock *m)
{
    if (!m)
        return;
    pz_mock_clear_logs(m);
    pz_mock_clear_events(m);
    free(m->logs);
    free(m->events);
    for (size_t i = 0; i < m->n_metrics; i++) {
        free(m->metrics[i].name);
        free(m->metrics[i].label);
    }
    free(m->metrics);
    for (size_t i = 0; i < m->n_docs; i++)
        pz_conf_doc_free(m->docs[i]);
    free(m->docs);
    pz_err_clear(&m->err);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

const pz_core *pz_mock_core(pz_mock *m)
{
    return &m->core;
}

int pz_mock_conf(pz_mock *m, const char *yaml, const pz_conf **out)
{
    int rc = 0;
    pz_conf_doc *doc = NULL;
    *out = NULL;
    if ((rc = grow(&m->docs, &m->cap_docs, m->n_docs, sizeof(*m->docs))) < 0) {
        pz_err_set(&m->err, rc, "pz_mock: out of memory");
        goto out;
    }
    rc = pz_conf_load_string("test.yaml", yaml, yaml ? strlen(yaml) : 0, &doc, &m->err);
    if (rc < 0)
        goto out;
    m->docs[m->n_docs++] = doc;
    *out = pz_conf_root(doc);
out:
    return rc;
}

int pz_mock_check_unused(pz_mock *m, const pz_conf *conf)
{
    pz_err all;
    char *joined = NULL;
    size_t len = 0;
    pz_err_init_collect(&all);
    int rc = pz_conf_check_unused(conf, &all);
    if (rc == 0)
        goto out;
    for (size_t i = 0; i < pz_err_count(&all); i++)
        len += strlen(pz_err_at(&all, i)) + 1;
    if (!(joined = malloc(len + 1))) {
        pz_err_set(&m->err, rc, "%s", pz_err_msg(&all));
        goto out;
    }
    joined[0] = '\0';
    for (size_t i = 0; i < pz_err_count(&all); i++) {
        if (i)
            strcat(joined, "\n");
        strcat(joined, pz_err_at(&all, i));
    }
    pz_err_set(&m->err, rc, "%s", joined);
out:
    free(joined);
    pz_err_clear(&all);
    return rc;
}

pz_err *pz_mock_err(pz_mock *m)
{
    return &m->err;
}

const char *pz_mock_err_msg(pz_mock *m)
{
    return pz_err_msg(&m->err);
}

int pz_mock_err_code(pz_mock *m)
{
    return m->err.code;
}

void pz_mock_err_clear(pz_mock *m)
{
    pz_err_clear(&m->err);
}

void pz_mock_set_time(pz_mock *m, uint64_t mono_ns)
{
    pthread_mutex_lock(&m->lock);
    m->mono_ns = mono_ns;
    pthread_mutex_unlock(&m->lock);
}

void pz_mock_advance(pz_mock *m, uint64_t ns)
{
    pthread_mutex_lock(&m->lock);
    m->mono_ns += ns;
    m->real_ns += ns;
    pthread_mutex_unlock(&m->lock);
}

void pz_mock_set_realtime(pz_mock *m, uint64_t realtime_ns)
{
    pthread_mutex_lock(&m->lock);
    m->real_ns = realtime_ns;
    pthread_mutex_unlock(&m->lock);
}

void pz_mock_seed(pz_mock *m, uint64_t seed)
{
    pthread_mutex_lock(&m->lock);
    m->rng = seed;
    pthread_mutex_unlock(&m->lock);
}

void pz_mock_set_random_fail(pz_mock *m, int fail)
{
    pthread_mutex_lock(&m->lock);
    m->random_fail = fail;
    pthread_mutex_unlock(&m->lock);
}

void pz_mock_set_secure_fail(pz_mock *m, int fail)
{
    pthread_mutex_lock(&m->lock);
    m->secure_fail = fail;
    pthread_mutex_unlock(&m->lock);
}

size_t pz_mock_secure_in_use(pz_mock *m)
{
    return m->secure_in_use;
}

size_t pz_mock_log_count(pz_mock *m)
{
    return m->n_logs;
}

const char *pz_mock_log_at(pz_mock *m, size_t i, pz_log_level *level)
{
    if (i >= m->n_logs)
        return NULL;
    if (level)
        *level = m->logs[i].level;
    return m->logs[i].msg;
}

int pz_mock_log_contains(pz_mock *m, const char *needle)
{
    for (size_t i = 0; i < m->n_logs; i++)
        if (strstr(m->logs[i].msg, needle))
            return 1;
    return 0;
}

void pz_mock_clear_logs(pz_mock *m)
{
    for (size_t i = 0; i < m->n_logs; i++)
        free(m->logs[i].msg);
    m->n_logs = 0;
}

int64_t pz_mock_metric(pz_mock *m, const char *name, const char *label)
{
    for (size_t i = 0; i < m->n_metrics; i++)
        if (!strcmp(m->metrics[i].name, name) && same_label(m->metrics[i].label, label))
            return m->metrics[i].value;
    return 0;
}

size_t pz_mock_event_count(pz_mock *m)
{
    return m->n_events;
}

const pz_behavior_event *pz_mock_event_at(pz_mock *m, size_t i)
{
    return i < m->n_events ? &m->events[i]->ev : NULL;
}

void pz_mock_clear_events(pz_mock *m)
{
    for (size_t i = 0; i < m->n_events; i++)
        event_free(m->events[i]);
    m->n_events = 0;
}
