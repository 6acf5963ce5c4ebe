/* core/rpc_server.h — the RPC server (public API in prozsec/rpc.h) and its
 * bounded replay cache of call ids, exposed here for unit tests.
 *
 * Replay cache: remembers (caller, call id) of every verified call until
 * its timestamp leaves the skew window (timestamp + skew). When full, the
 * oldest entry is evicted and the cache's floor rises to its timestamp:
 * calls stamped at or below the floor are refused as possible replays, so
 * eviction can never let a replay through — it only narrows the window
 * under load. Keys are hashed with a per-cache random key.
 *
 * Thread safety: one thread at a time (the server's).
 *
 * Also the server's internal extensions used by the daemon (core/node.c).
 */
#ifndef PZ_CORE_RPC_SERVER_H
#define PZ_CORE_RPC_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <prozsec/rpc.h>

typedef struct pz_replay_cache pz_replay_cache;

/* A cache of at most MAX entries for a skew window of SKEW_NS. */
pz_replay_cache *pz_replay_cache_new(size_t max, uint64_t skew_ns);
void pz_replay_cache_free(pz_replay_cache *cache);

/* Check (CALLER, ID) stamped TIMESTAMP_NS at wall time NOW_NS and remember
 * it. Returns 0 when new, PZ_EREPLAY when seen (or at or below the floor). */
int pz_replay_cache_check(pz_replay_cache *cache, const char *caller, const uint8_t id[PZ_RPC_CALL_ID_LEN],
                          uint64_t timestamp_ns, uint64_t now_ns);

size_t pz_replay_cache_size(const pz_replay_cache *cache);

#endif /* PZ_CORE_RPC_SERVER_H */
