/* core/replay.h — a bounded replay cache: remembers message or call ids
 * until they expire, so the same id is accepted at most once.
 *
 * Used by E2E open (message ids) and meant for secure RPC (call ids). The
 * caller decides freshness: an id carries an expiry (its timestamp plus the
 * maximum age plus the allowed skew) and the caller refuses, before asking
 * the cache, anything whose expiry has passed. Inside that window the cache
 * guarantees no id is accepted twice:
 *
 *   - All memory is allocated at creation (CAPACITY entries); inserting
 *     never allocates, so a flood cannot exhaust memory or abort.
 *   - Expired entries are dropped first. When the cache is full of live
 *     entries, the one expiring soonest is evicted and its expiry becomes a
 *     watermark: from then on any id whose expiry is not later than the
 *     watermark is refused as a possible replay (it could be the evicted
 *     one). A flood therefore shrinks the acceptance window; it never
 *     reopens it.
 *   - Keys are hashed (SHA-256, with a per-cache random salt) to 16 bytes,
 *     so an attacker cannot aim ids at one hash bucket.
 *
 * Thread-safe (one mutex per cache).
 */
#ifndef PZ_CORE_REPLAY_H
#define PZ_CORE_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include <prozsec/error.h>

typedef struct pz_replay pz_replay;

/* Largest capacity accepted (entries). */
#define PZ_REPLAY_CAPACITY_MAX (1u << 24)

/* A cache for CAPACITY (1 .. PZ_REPLAY_CAPACITY_MAX) ids. Returns 0,
 * PZ_EINVAL or PZ_ENOMEM. */
int pz_replay_new(size_t capacity, pz_replay **out);

/* Free CACHE; NULL is a no-op. */
void pz_replay_free(pz_replay *cache);

/* Check KEY (KEY_LEN bytes, typically sender id and message id; any
 * length) and remember it until EXPIRES_NS. NOW_NS is the caller's clock in
 * the same time base (entries expiring at or before it are dropped).
 * Returns:
 *   0            first time seen: remembered;
 *   PZ_EREPLAY   seen before and not yet expired, or not later than the
 *                eviction watermark (cannot be proven fresh);
 *   PZ_ESTALE    EXPIRES_NS <= NOW_NS (the caller should have refused it);
 *   PZ_EINVAL    NULL cache or key. */
int pz_replay_check(pz_replay *cache, const void *key, size_t key_len, uint64_t expires_ns, uint64_t now_ns);

/* Whether KEY is remembered (and unexpired at NOW_NS), without adding it:
 * 1 or 0. */
int pz_replay_contains(pz_replay *cache, const void *key, size_t key_len, uint64_t now_ns);

/* Live entries after dropping those expired at NOW_NS. */
size_t pz_replay_count(pz_replay *cache, uint64_t now_ns);

/* The eviction watermark (0 until the cache first had to evict a live
 * entry). */
uint64_t pz_replay_watermark(pz_replay *cache);

#endif /* PZ_CORE_REPLAY_H */
