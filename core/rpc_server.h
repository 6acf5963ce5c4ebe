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

/* A rate-limit hook that can say when to come back: like
 * pz_rpc_server_hooks.rate_limit (same arguments, called with hooks.ud),
 * plus *RETRY_AFTER_MS (0 on entry) to set when it refuses: the time until
 * the request would pass, 0 when unknown. The server answers a refusal
 * with data {"retry_after_ms": <u>} when it is non-zero
 * (docs/rpc-wire.md). */
typedef int (*pz__rpc_rate_limit_fn)(void *ud, const pz_identity *peer, const pz_addr *addr, const char *method,
                                     uint32_t cost, uint64_t now_ns, int *allowed, uint32_t *retry_after_ms);

/* Use FN instead of hooks.rate_limit for SERVER's requests (NULL: back to
 * hooks.rate_limit). An internal extension until the public hooks table
 * grows a member for it. Call from the server's thread. */
void pz__rpc_server_set_rate_limit(pz_rpc_server *server, pz__rpc_rate_limit_fn fn);

#endif /* PZ_CORE_RPC_SERVER_H */
