/* prozsec — rate limiter provider ABI.
 *
 * A rate limiter decides, for each request, whether a key may spend COST
 * units now. The seed's RateLimiter: allow_request(key, cost),
 * update_config, get_usage, name (the descriptor's name).
 *
 * Thread safety: the core calls one instance from one thread at a time
 * (the event-loop thread); an instance need not lock. Distinct instances
 * share nothing.
 */
#ifndef PROZSEC_RATELIMIT_H
#define PROZSEC_RATELIMIT_H

#include <prozsec/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One request, as a rate limiter sees it. Pointers are borrowed for the
 * duration of the call. The provider chooses which fields make its key
 * (peer id, address, peer + method) from its configuration. */
typedef struct pz_rl_request {
    uint32_t struct_size;
    const char *node_id;  /* authenticated peer, or NULL */
    const pz_addr *addr;  /* remote address, never NULL */
    const char *method;   /* RPC method, or NULL for connection-level */
    uint32_t cost;        /* units to spend; the core passes the method's
                             cost from configuration when the provider has
                             none of its own (>= 1) */
    pz_peer_status status; /* scales the peer's capacity */
    uint64_t now_ns;      /* monotonic time of the decision */
} pz_rl_request;

typedef struct pz_rl_decision {
    uint32_t struct_size;
    int allowed;             /* 1 allowed, 0 refused */
    uint64_t retry_after_ns; /* when refused: time until COST would pass */
    double remaining;        /* units left after the decision */
    double limit;            /* capacity for this key */
    int reason;              /* provider-defined reason code when refused */
} pz_rl_decision;

typedef struct pz_rl_usage {
    uint32_t struct_size;
    int known;        /* 0: the key has no state (a new key starts full) */
    double available; /* units available now */
    double capacity;  /* current capacity for the key */
    uint64_t last_ns; /* time of last update */
} pz_rl_usage;

typedef struct pz_ratelimit_provider {
    uint32_t struct_size;

    /* Create an instance from CONF (the provider's map; may be NULL for
     * all defaults). On success *STATE is the instance. Returns 0, or
     * PZ_ECONFIG / PZ_ENOMEM with ERR set. Mandatory. */
    int (*create)(const pz_core *core, const pz_conf *conf, void **state, pz_err *err);

    /* Destroy an instance; NULL is a no-op. Mandatory. */
    void (*destroy)(void *state);

    /* Decide REQ. Fills OUT and returns 0; a refusal is OUT->allowed = 0,
     * not an error. Errors (PZ_ENOMEM) count as refusals for the core.
     * Must not block. Mandatory. */
    int (*allow)(void *state, const pz_rl_request *req, pz_rl_decision *out);

    /* Apply new settings at run time, keeping each key's level (clamped to
     * the new capacity). On error the old settings stay. Mandatory. */
    int (*update_config)(void *state, const pz_conf *conf, pz_err *err);

    /* Report the state of the key REQ would use, without spending. Mandatory. */
    int (*get_usage)(void *state, const pz_rl_request *req, pz_rl_usage *out);

    /* Appended after 1.0: check struct_size. */
} pz_ratelimit_provider;

#ifdef __cplusplus
}
#endif
#endif /* PROZSEC_RATELIMIT_H */
