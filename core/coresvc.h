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

#include <prozsec/plugin.h>

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

/* Convenience used by core code itself (same behaviour as the table). */
uint64_t pz_now_ns(void);      /* monotonic */
uint64_t pz_realtime_ns(void); /* wall clock */
int pz_random(void *buf, size_t len);
void pz_log(const char *source, pz_log_level level, const char *fmt, ...) PZ_PRINTF(3, 4);
void pz_emit_behavior(const char *source, const pz_behavior_event *event);

#endif /* PZ_CORE_CORESVC_H */
