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

/* Most history records a pz_peer_info carries. */
#define PZ_PEER_HISTORY_MAX 16

/* One score adjustment of a peer (ABI 1.1). */
typedef struct pz_peer_history {
    pz_behavior behavior; /* the event that caused it */
    uint64_t time_ns;     /* monotonic time of the event */
    double prev_score;    /* score just before (after decay) */
    double delta;         /* change actually applied (after clamping) */
} pz_peer_history;

/* What a connection limiter knows about one peer, for operators
 * (`prozsec peer list`). Filled by peer_info (ABI 1.1). The core zeroes it
 * and sets struct_size to the size it was built with before the call; a
 * provider writes no field that lies beyond struct_size. */
typedef struct pz_peer_info {
    uint32_t struct_size;
    double score;             /* now, 0..100 (after decay) */
    pz_peer_status status;    /* as peer_status would answer */
    uint64_t banned_until_ns; /* monotonic end of a ban in force; 0: not banned; UINT64_MAX: until unbanned */
    size_t n_history;         /* records in history[], at most PZ_PEER_HISTORY_MAX */
    pz_peer_history history[PZ_PEER_HISTORY_MAX]; /* the last n_history adjustments, oldest first */
} pz_peer_info;

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

    /* --- ABI 1.1 ---------------------------------------------------------
     * Members below were appended after 1.0. A table built against 1.0
     * headers ends before them: the core reads one only when the table's
     * struct_size covers it, and treats it as NULL otherwise. */

    /* Optional (NULL): what this limiter knows about NODE_ID at NOW, into
     * OUT (see pz_peer_info). Returns 0, or PZ_ENOENT when it keeps no
     * record of NODE_ID. Must not block or emit events. Same thread rule
     * as the other functions. */
    int (*peer_info)(void *state, const char *node_id, uint64_t now_ns, pz_peer_info *out);

    /* Appended after 1.1: check struct_size. */
} pz_connlimit_provider;

#ifdef __cplusplus
}
#endif
#endif /* PROZSEC_CONNLIMIT_H */
