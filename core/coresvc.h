/* core/coresvc.h — the core-services table (pz_core, plugin.h) the core
 * hands to each provider instance, and the hooks behind it.
 *
 * The clock, randomness and behaviour-event sink are process-wide hooks so
 * the daemon, tests and the mock core can replace them. Defaults:
 * CLOCK_MONOTONIC / CLOCK_REALTIME, libgcrypt's CSPRNG (GCRY_STRONG_RANDOM),
 * gcry_malloc_secure, GLib structured logging (domain "prozsec"), an
 * in-process metrics registry, and a behaviour sink that drops events until
 * the DoS service installs itself.
 */
#ifndef PZ_CORE_CORESVC_H
#define PZ_CORE_CORESVC_H

#include <glib.h>

#include <prozsec/plugin.h>

/* Process-wide hooks behind every pz_core table. SOURCE is the label of the
 * table the call came through (the provider instance). For metric,
 * VALUE is the delta when IS_GAUGE is 0 and the new value otherwise. The
 * default log hook writes through GLib structured logging; the default
 * metric hook feeds the registry below. */
typedef struct pz_core_hooks {
    uint64_t (*monotonic_ns)(void *ud);
    uint64_t (*realtime_ns)(void *ud);
    int (*random)(void *ud, void *buf, size_t len);
    void (*behavior)(void *ud, const char *source, const pz_behavior_event *event);
    void (*log)(void *ud, const char *source, pz_log_level level, const char *msg);
    void (*metric)(void *ud, const char *source, const char *name, const char *label, int64_t value,
                   int is_gauge);
    void *ud;
} pz_core_hooks;

/* Replace the hooks (NULL members keep the default). Not thread-safe with
 * respect to concurrent provider calls: set at start-up or in tests. */
void pz_core_set_hooks(const pz_core_hooks *hooks);

/* A new services table labelled SOURCE (copied). Free with pz_core_free. */
pz_core *pz_core_new(const char *source);
void pz_core_free(pz_core *core);
const char *pz_core_source(const pz_core *core);

/* --- metrics registry ----------------------------------------------------
 * The default metric hook keeps counters and gauges in a process-wide,
 * thread-safe registry keyed by series: "prozsec_<source>_<name>" (a '-' in
 * SOURCE becomes '_', so names are valid Prometheus names) plus an optional
 * label value. At most PZ_METRICS_MAX_SERIES series are kept; updates to
 * further new series are dropped and counted in
 * prozsec_core_metrics_dropped_total. Names not matching [a-z0-9_]+ and
 * labels longer than PZ_METRICS_LABEL_MAX bytes are dropped too. */
#define PZ_METRICS_MAX_SERIES 4096
#define PZ_METRICS_LABEL_MAX 256

/* Called once per series, in order of name then label (NULL label first).
 * NAME and LABEL are borrowed for the call; LABEL may be NULL. */
typedef void (*pz_metric_fn)(const char *name, const char *label, int64_t value, int is_gauge, void *ud);

/* Call FN for every series of the registry, from a snapshot taken under
 * the registry's lock (FN runs without it, so it may update metrics).
 * Returns 0, or PZ_ENOMEM when the snapshot could not be taken. */
int pz_metrics_foreach(pz_metric_fn fn, void *ud);

/* Append every series to OUT in the Prometheus text exposition format
 * (version 0.0.4): a "# TYPE name counter|gauge" line per name, then
 * `name{label="value"} 42` lines (label value escaped). Returns 0 or
 * PZ_ENOMEM. */
int pz_metrics_format(GString *out);

/* Forget every series (tests; a daemon reload keeps them). */
void pz_metrics_clear(void);

/* Convenience used by core code itself (same behaviour as the table). */
uint64_t pz_now_ns(void);      /* monotonic */
uint64_t pz_realtime_ns(void); /* wall clock */
int pz_random(void *buf, size_t len);
void pz_log(const char *source, pz_log_level level, const char *fmt, ...) PZ_PRINTF(3, 4);
void pz_emit_behavior(const char *source, const pz_behavior_event *event);

#endif /* PZ_CORE_CORESVC_H */
