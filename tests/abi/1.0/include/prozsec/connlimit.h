/* prozsec — connection limiter provider ABI.
 *
 * A connection limiter is asked twice per inbound connection: before the
 * handshake with the remote address (refuse before spending crypto), and
 * after authentication with the identity. It hears every behaviour event
 * (the reputation provider adjusts scores from them) and is told when each
 * admitted connection ends. The seed's ConnectionLimiter and
 * ReputationManager map onto this table.
 *
 * Thread safety: the core calls one instance from one thread at a time.
 */
#ifndef PROZSEC_CONNLIMIT_H
#define PROZSEC_CONNLIMIT_H

#include <prozsec/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pz_admit_result {
    uint32_t struct_size;
    int admitted;             /* 1 admitted, 0 refused */
    int reason;               /* provider-defined reason code when refused */
    char detail[96];          /* short human reason when refused ("per-prefix limit 64 reached") */
    uint64_t retry_after_ns;  /* hint when refused; 0 if none */
} pz_admit_result;

/* How far a connection got; release() tells the limiter which counters to
 * decrement. */
typedef enum pz_conn_stage {
    PZ_STAGE_PRE_HANDSHAKE = 1, /* admitted by address; handshake pending */
    PZ_STAGE_AUTHENTICATED = 2, /* admitted by identity */
} pz_conn_stage;

typedef struct pz_connlimit_provider {
    uint32_t struct_size;

    /* As in ratelimit.h. Mandatory. */
    int (*create)(const pz_core *core, const pz_conf *conf, void **state, pz_err *err);
    void (*destroy)(void *state);

    /* Admit a new connection from ADDR before any handshake. A limiter that
     * admits counts the connection as pending until release() or
     * admit_identity(). Mandatory. */
    int (*admit_address)(void *state, const pz_addr *addr, uint64_t now_ns, pz_admit_result *out);

    /* Admit the authenticated peer ID on a connection from ADDR that this
     * limiter admitted by address. The connection stops being pending either
     * way. Mandatory (return admitted = 1 when not relevant). */
    int (*admit_identity)(void *state, const pz_addr *addr, const pz_identity *id, uint64_t now_ns,
                          pz_admit_result *out);

    /* A connection this limiter admitted has ended, at STAGE. ID is NULL
     * when STAGE is PZ_STAGE_PRE_HANDSHAKE. Mandatory. */
    void (*release)(void *state, const pz_addr *addr, const pz_identity *id, pz_conn_stage stage,
                    uint64_t now_ns);

    /* A behaviour event. Must not block or emit events. Mandatory. */
    void (*on_behavior)(void *state, const pz_behavior_event *event);

    /* Optional (NULL): the status of NODE_ID (reputation). */
    int (*peer_status)(void *state, const char *node_id, uint64_t now_ns, pz_peer_status *out);

    /* Optional (NULL): ban TARGET (a node id or a CIDR) for DURATION_NS
     * (0: the provider's escalating default) / lift a ban. PZ_ENOTSUP when
     * the provider does not keep bans. */
    int (*ban)(void *state, const char *target, uint64_t duration_ns, uint64_t now_ns, pz_err *err);
    int (*unban)(void *state, const char *target, pz_err *err);

    /* Optional (NULL): write persistent state now (atomically). */
    int (*flush)(void *state, pz_err *err);

    /* Appended after 1.0: check struct_size. */
} pz_connlimit_provider;

#ifdef __cplusplus
}
#endif
#endif /* PROZSEC_CONNLIMIT_H */
