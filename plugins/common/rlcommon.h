/* plugins/common/rlcommon.h — what the rate-limiter plugins (token-bucket,
 * gcra) share: the key a request maps to, the per-status budget factors,
 * the max_keys bound, and their refusal reason codes.
 *
 * Configuration keys read here (below the provider's `config:` map):
 *   key: peer | address | peer_method        (default peer)
 *   max_keys: 1..2^32                         (default 1048576)
 *   status_factors: {unknown, blocked, probation, neutral, trusted}
 *                    each 0..1000             (defaults 1, 0, 0.25, 1, 2)
 */
#ifndef PZ_PLUGINS_RLCOMMON_H
#define PZ_PLUGINS_RLCOMMON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <prozsec/ratelimit.h>

#include "khash.h"
#include "siphash.h"

/* Refusal reasons (pz_rl_decision.reason), shared by token-bucket and gcra. */
enum {
    PZ_RL_REASON_LIMIT = 1,  /* not enough budget now; retry_after_ns says when */
    PZ_RL_REASON_COST = 2,   /* cost exceeds the key's whole capacity: never passes */
    PZ_RL_REASON_STATUS = 3, /* the peer's status has a budget factor of 0 */
    PZ_RL_REASON_NOMEM = 4,  /* no memory for a new key's state */
};

/* How a request maps to a key. */
typedef enum pz_rl_keymode {
    PZ_RLKEY_PEER = 0,        /* node id; the address before authentication */
    PZ_RLKEY_ADDRESS = 1,     /* remote address (port ignored) */
    PZ_RLKEY_PEER_METHOD = 2, /* node id (or address) + method */
} pz_rl_keymode;

/* A rare case kept out of line, so the decision path saves no registers
 * for it (gcc's noipa also stops it from being analysed back in). */
#if defined(__clang__) || !defined(__GNUC__)
#define PZ_RL_OUT_OF_LINE __attribute__((noinline))
#else
#define PZ_RL_OUT_OF_LINE __attribute__((noinline, noipa))
#endif

#define PZ_RL_NSTATUS 5 /* pz_peer_status values 0..4 */
#define PZ_RL_DEFAULT_MAX_KEYS 1048576

typedef struct pz_rl_common {
    pz_rl_keymode key;
    uint64_t max_keys;
    double factor[PZ_RL_NSTATUS]; /* by pz_peer_status */
} pz_rl_common;

/* Read the shared keys from CONF (may be NULL) through CORE's getters.
 * Returns 0 or PZ_ECONFIG with ERR set to FILE:LINE:COL. */
int pz__rl_common_parse(const pz_core *core, const pz_conf *conf, pz_rl_common *out, pz_err *err);

/* Hash keys derived from an instance's random secret: one for bare peer
 * ids (hashed in place, the hot path), one for tagged composite keys, so a
 * peer id never collides with a tagged key by construction. Both are the
 * keyed multiply hash of khash.h. */
typedef struct pz_rl_keys {
    pz_khash_key peer;
    pz_khash_key tagged;
} pz_rl_keys;

/* Derive K from the 16-byte random SECRET. Wipe K with explicit_bzero. */
void pz__rl_keys_init(pz_rl_keys *k, const uint8_t secret[PZ_KHASH_SECRET_LEN]);

/* Composite keys (addresses, peer + method): tagged bytes under K->tagged. */
uint64_t pz__rl_key_hash_tagged(const pz_rl_keys *keys, pz_rl_keymode mode, const pz_rl_request *req);

/* The keyed 64-bit hash of REQ's key under KEYS. A bare peer id, the
 * common case, is hashed in place under a key of its own (so it never
 * equals a tagged key). */
static inline __attribute__((always_inline)) uint64_t
pz__rl_key_hash(const pz_rl_keys *keys, pz_rl_keymode mode, const pz_rl_request *req)
{
    if (mode == PZ_RLKEY_PEER && req->node_id)
        return pz__khash_str(&keys->peer, req->node_id);
    return pz__rl_key_hash_tagged(keys, mode, req);
}

/* The table fingerprint (pz__kt_find) of a key whose hash is H: H with
 * its low bit set, never 0 (an empty slot) and one instruction. */
static inline __attribute__((always_inline)) uint64_t pz__rl_fp(uint64_t h)
{
    return h | 1;
}

/* REQ's status, clamped to a known value (out-of-range -> UNKNOWN). */
static inline __attribute__((always_inline)) unsigned pz__rl_status(const pz_rl_request *req)
{
    unsigned st = (unsigned)req->status;
    return st & -(unsigned)(st < PZ_RL_NSTATUS); /* no branch: one row address */
}

/* The last 16 bytes of a pz_rl_decision (limit, reason, the struct's
 * padding), precomputed per status for the allowed case (reason 0). */
typedef struct pz_rl_tail {
    double limit;
    int32_t reason;
    int32_t pad;
} pz_rl_tail;

/* Whether pz_rl_decision ends with limit and reason, adjacent (true for
 * every x86-64 and AArch64 ABI; otherwise pz__rl_put stores them apart). */
#define PZ_RL_DECISION_TAIL                                                                                  \
    (offsetof(pz_rl_decision, reason) == offsetof(pz_rl_decision, limit) + 8 &&                              \
     sizeof(pz_rl_decision) == offsetof(pz_rl_decision, limit) + 16)

/* Fill OUT: ALLOWED, REASON, RETRY, REMAINING, and TAIL's limit. Limit and
 * reason (with the struct's padding) go in one 16-byte copy of TAIL when
 * REASON is 0: at a million keys a decision waits on one cache miss, and the
 * stores in flight bound how many decisions the CPU overlaps with it
 * (docs/internals/ratelimit-hash.md). */
static inline __attribute__((always_inline)) void pz__rl_put(pz_rl_decision *out, int allowed, int reason,
                                                             uint64_t retry, double remaining,
                                                             const pz_rl_tail *tail)
{
    out->allowed = allowed;
    out->retry_after_ns = retry;
    out->remaining = remaining;
    if (PZ_RL_DECISION_TAIL && reason == 0) {
        memcpy((char *)out + offsetof(pz_rl_decision, limit), tail, sizeof(*tail));
    } else {
        out->limit = tail->limit;
        out->reason = reason;
    }
}

/* Name of a keymode / parse one ("peer", ...); parse returns -1 if unknown. */
const char *pz__rl_keymode_name(pz_rl_keymode mode);

#endif /* PZ_PLUGINS_RLCOMMON_H */
