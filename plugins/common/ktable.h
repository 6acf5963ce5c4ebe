/* plugins/common/ktable.h — a bounded open-addressing table of fixed-size
 * entries found by a 64-bit keyed hash, for per-key limiter state.
 *
 * Each entry is STRIDE 64-bit words; word 0 is the key's fingerprint (a
 * 64-bit hash keyed with the instance's random secret: SipHash-1-3 for the
 * connection limiters, the multiply hash of khash.h with its low bit set for
 * the rate limiters; 0 marks an empty slot), the other words belong to the
 * caller. Keys themselves are not stored: two distinct keys share an entry
 * only when their fingerprints are equal (about n^2 / 2^64 over a table's
 * life, and not something a client can aim for without the secret). Linear probing, home slot by
 * multiply-shift (any table size works), load factor at most 3/4, deletion
 * by backward shift (no tombstones).
 *
 * Memory is bounded: the table never holds more than MAX_KEYS entries and
 * never has more than ceil(MAX_KEYS * 4/3) slots. It starts small and grows
 * by half; a rebuild drops entries the caller's classify() says are idle
 * (state equal to "no entry", such as a full token bucket). At MAX_KEYS an
 * insert first evicts: a sweep hand walks the table and, among the next
 * sixteen occupied slots, takes the first idle entry, else the one with the
 * smallest age, never a pinned one. What "age" means is the caller's: the
 * rate limiters use the time the key would become idle, so the entry
 * closest to idle (whose loss matters least) goes first.
 *
 * Thread safety: none; one instance per limiter instance, called from one
 * thread at a time.
 */
#ifndef PZ_PLUGINS_KTABLE_H
#define PZ_PLUGINS_KTABLE_H

#include <stddef.h>
#include <stdint.h>

/* What an entry is worth keeping, as classify() reports it. */
typedef enum pz_kt_class {
    PZ_KT_IDLE = 0,   /* equivalent to absent: may be dropped at any time */
    PZ_KT_LIVE = 1,   /* may be evicted under pressure, smallest AGE first */
    PZ_KT_PINNED = 2, /* must not be evicted (live connections, an active ban) */
} pz_kt_class;

/* Classify ENTRY at time NOW; for PZ_KT_LIVE set *AGE (smaller = older,
 * evicted first). CTX is the table's. Must not modify the table. */
typedef pz_kt_class (*pz_kt_classify_fn)(const uint64_t *entry, uint64_t now, uint64_t *age, void *ctx);

/* Called just before the table itself drops ENTRY (eviction, rebuild,
 * sweep), so a caller whose entries own memory can free it. */
typedef void (*pz_kt_drop_fn)(uint64_t *entry, void *ctx);

typedef struct pz_kt {
    uint64_t *slots; /* nslots * stride words */
    uint64_t *end;   /* slots + nslots * stride */
    size_t nslots;
    size_t stride;    /* words per entry, >= 1 */
    size_t count;     /* occupied slots */
    size_t max_keys;  /* bound on count */
    size_t max_slots; /* bound on nslots */
    size_t grow_at;   /* count that triggers a rebuild */
    size_t hand;      /* eviction sweep position */
    int mapped;       /* slots came from mmap (large tables) */
    pz_kt_classify_fn classify;
    pz_kt_drop_fn drop; /* optional; set after init */
    void *ctx;
    uint64_t evicted;      /* live entries evicted under pressure */
    uint64_t evicted_idle; /* idle entries reclaimed (eviction or rebuild) */
} pz_kt;

/* Smallest and largest MAX_KEYS accepted. */
#define PZ_KT_MIN_KEYS 16
#define PZ_KT_MAX_KEYS ((size_t)1 << 32)

/* Initialise T for entries of STRIDE words holding at most MAX_KEYS keys.
 * CLASSIFY is mandatory. Returns 0, PZ_EINVAL (bad stride or max_keys) or
 * PZ_ENOMEM. */
int pz__kt_init(pz_kt *t, size_t stride, size_t max_keys, pz_kt_classify_fn classify, void *ctx);

/* Free T's memory; T may be re-initialised. */
void pz__kt_clear(pz_kt *t);

/* Change the bound on the number of keys. A smaller bound evicts down to it
 * (idle and oldest first) and shrinks the table. Returns 0, PZ_EINVAL or
 * PZ_ENOMEM (then T is unchanged). */
int pz__kt_set_max_keys(pz_kt *t, size_t max_keys, uint64_t now);

/* The fingerprint to store for hash H (0 is reserved for empty slots). */
static inline uint64_t pz__kt_fp(uint64_t h)
{
    return h ? h : 1;
}

static inline size_t pz__kt_home(const pz_kt *t, uint64_t fp)
{
    return (size_t)(((unsigned __int128)fp * t->nslots) >> 64);
}

/* Forced inline: find is most of a rate-limit decision's table work. */
#define PZ_KT_INLINE static inline __attribute__((always_inline))

/* The entry with fingerprint FP in a table of STRIDE-word entries (STRIDE
 * must equal t->stride; pass a constant so the probe loop is specialised),
 * or NULL. The pointer is valid until the next insert, remove or
 * set_max_keys. */
PZ_KT_INLINE uint64_t *pz__kt_find_s(const pz_kt *t, uint64_t fp, size_t stride)
{
    uint64_t *e = t->slots + pz__kt_home(t, fp) * stride;
    for (;;) {
        uint64_t w = e[0];
        if (w == fp)
            return e;
        if (w == 0)
            return NULL;
        e += stride;
        if (e == t->end)
            e = t->slots;
    }
}

/* The entry with fingerprint FP, or NULL (as pz__kt_find_s). */
PZ_KT_INLINE uint64_t *pz__kt_find(const pz_kt *t, uint64_t fp)
{
    return pz__kt_find_s(t, fp, t->stride);
}

/* Insert fingerprint FP, which must be absent; the caller's words are zeroed.
 * Grows, or at max_keys evicts one entry first (classified at NOW). On
 * success *OUT points at the new entry (valid as for find) and 0 is
 * returned; PZ_ERANGE when every entry is pinned; PZ_ENOMEM only when the
 * table must grow, cannot, and nothing can be evicted. */
int pz__kt_insert(pz_kt *t, uint64_t fp, uint64_t now, uint64_t **out);

/* Remove ENTRY (a pointer returned by find/insert or from iteration). The
 * drop callback is not called: the caller is removing it. */
void pz__kt_remove(pz_kt *t, uint64_t *entry);

/* Drop the idle entries among the next N slots from the sweep hand; returns
 * how many were dropped. For periodic housekeeping. */
size_t pz__kt_sweep(pz_kt *t, size_t n, uint64_t now);

/* Bytes of memory the table holds. */
static inline size_t pz__kt_bytes(const pz_kt *t)
{
    return t->nslots * t->stride * sizeof(uint64_t);
}

/* Slot I (0 <= I < nslots), for iteration: occupied when word 0 != 0. */
static inline uint64_t *pz__kt_slot(const pz_kt *t, size_t i)
{
    return t->slots + i * t->stride;
}

#endif /* PZ_PLUGINS_KTABLE_H */
