/* prozsec — secure RPC: signed calls between nodes (library API).
 *
 * A node runs a pz_rpc_server with handlers registered per method and
 * calls other nodes through a pz_rpc_client. Both move length-prefixed
 * GVariant envelopes (docs/rpc-wire.md) over any byte stream a transport
 * provider (prozsec/transport.h) offers: the caller establishes and
 * authenticates the connection (TLS handshake, auth chain) and hands it to
 * the server or client together with the peer's authenticated identity.
 *
 * Every call context is signed by the caller's Ed25519 key and every
 * response by the server's, or — for methods registered with PZ_RPC_MAC —
 * authenticated with HMAC-SHA256 keyed from the connection's channel
 * binding (docs/security-model-rpc.md explains the trade-off).
 *
 * Threading: a server or client, and everything reached through it, is used
 * from the thread that runs its GMainContext (handlers and callbacks run
 * there). Distinct servers and clients may live in distinct threads. The
 * pz_rpc_key functions are thread-safe.
 *
 * Errors: functions return 0 or a negative PZ_E* code (prozsec/error.h) and
 * set GError (domain PZ_RPC_ERROR, code = the PZ_E* code) when given one.
 */
#ifndef PROZSEC_RPC_H
#define PROZSEC_RPC_H

#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include <prozsec/error.h>
#include <prozsec/plugin.h>
#include <prozsec/transport.h>

#ifdef __cplusplus
extern "C" {
#endif

/* GError domain of this API; error codes are PZ_E* values. */
#define PZ_RPC_ERROR (pz_rpc_error_quark())
PZ_API GQuark pz_rpc_error_quark(void);

/* Size of a call id in bytes (random, 128 bits). */
#define PZ_RPC_CALL_ID_LEN 16

/* Longest method name: [a-z0-9_.-]{1,64} and starting with a letter. */
#define PZ_RPC_METHOD_MAX 64

/* Status of a response. Values are stable (they cross the wire). Values
 * below PZ_RPC_STATUS_APP are set by the RPC layer; a handler may fail a
 * call with PZ_RPC_HANDLER_ERROR or any value >= PZ_RPC_STATUS_APP. */
typedef enum pz_rpc_status {
    PZ_RPC_OK = 0,
    PZ_RPC_RATE_LIMITED = 1,  /* a rate limiter refused the request */
    PZ_RPC_BAD_SIGNATURE = 2, /* signature / MAC over the call context did not verify */
    PZ_RPC_REPLAY = 3,        /* call id already seen within the replay window */
    PZ_RPC_STALE = 4,         /* |now - timestamp| > skew */
    PZ_RPC_WRONG_TARGET = 5,  /* target is not this node */
    PZ_RPC_WRONG_CALLER = 6,  /* caller is not the connection's authenticated identity */
    PZ_RPC_UNAUTHORIZED = 7,  /* the authorization hook refused the method */
    PZ_RPC_NO_METHOD = 8,     /* no handler registered under that name */
    PZ_RPC_BAD_REQUEST = 9,   /* parameters of the wrong type or value (handlers) */
    PZ_RPC_MODE_MISMATCH = 10, /* integrity mode differs from the method's, or mac unavailable */
    PZ_RPC_TIMEOUT = 11,      /* the handler did not answer before the call's deadline */
    PZ_RPC_UNAVAILABLE = 12,  /* server shutting down */
    PZ_RPC_HANDLER_ERROR = 13, /* the handler failed the call */
    PZ_RPC_STATUS__COUNT,     /* not a status: number of RPC-layer statuses */
    PZ_RPC_STATUS_APP = 1000, /* first application-defined status */
} pz_rpc_status;

/* Short static name of STATUS ("ok", "rate_limited", ...; "app" for
 * application statuses, "unknown" otherwise); never NULL. Thread-safe. */
PZ_API const char *pz_rpc_status_name(int32_t status);

/* Flags of pz_rpc_register (server) and pz_rpc_client_mark /
 * pz_rpc_call_opts.flags (client). */
#define PZ_RPC_MAC 0x1        /* integrity by HMAC keyed from the channel binding, not Ed25519 */
#define PZ_RPC_AUDIT 0x2      /* server: append each verified inbound call to the audit log */
#define PZ_RPC_IDEMPOTENT 0x4 /* client: may be retried once on a new connection */

/* ------------------------------------------------------------------------ */
/* Signing keys.                                                              */

/* An Ed25519 signing key (the node's RPC signing key). */
typedef struct pz_rpc_key pz_rpc_key;

/* Import the 32-byte Ed25519 private key SEED (borrowed; the caller wipes
 * its copy). PZ_ECRYPTO when GnuTLS refuses it. */
PZ_API int pz_rpc_key_new(const uint8_t seed[32], pz_rpc_key **out, GError **error);
/* Generate a fresh key (tests, tools). */
PZ_API int pz_rpc_key_generate(pz_rpc_key **out, GError **error);
/* The 32-byte public key. */
PZ_API void pz_rpc_key_public(const pz_rpc_key *key, uint8_t pub[32]);
/* Free KEY; the private key is wiped by GnuTLS. NULL is a no-op. */
PZ_API void pz_rpc_key_free(pz_rpc_key *key);

/* ------------------------------------------------------------------------ */
/* Audit log of inbound signed call contexts (docs/rpc-wire.md "Audit log"). */

typedef struct pz_audit_log pz_audit_log;

/* Open (creating with mode 0600, or appending to) the audit log PATH. An
 * existing file is scanned to continue its hash chain; a file that is not an
 * audit log gives PZ_EINVAL. FSYNC non-zero: fdatasync after every record.
 * Not thread-safe: one log per server thread. */
PZ_API int pz_audit_open(const char *path, int fsync_each, pz_audit_log **out, GError **error);
/* Close LOG. NULL is a no-op. */
PZ_API void pz_audit_close(pz_audit_log *log);

/* Looks up the Ed25519 public key of CALLER for pz_audit_verify: fill PUB
 * and return 0, or return PZ_ENOENT when the caller is unknown. */
typedef int (*pz_audit_key_lookup)(void *ud, const char *caller, uint8_t pub[32]);

/* Result of pz_audit_verify. */
typedef struct pz_audit_report {
    uint64_t records;      /* records read */
    uint64_t valid;        /* signature verified with the caller's key */
    uint64_t bad_signature; /* signature did not verify */
    uint64_t unknown_caller; /* no key for the caller */
    uint64_t chain_breaks; /* records whose hash chain link is wrong (deletion, reordering, edit) */
    int truncated;         /* the file ends inside a record */
} pz_audit_report;

/* Check every record of the audit log PATH: hash chain and each call
 * context's signature with the key LOOKUP gives for its caller. PRINT (may be
 * NULL) is called with one human line per problem found. Returns 0 when the
 * file could be read (look at REPORT for the verdict), PZ_EIO / PZ_EINVAL
 * when it could not or is not an audit log. */
PZ_API int pz_audit_verify(const char *path, pz_audit_key_lookup lookup, void *lookup_ud,
                           void (*print)(void *ud, const char *line), void *print_ud, pz_audit_report *report,
                           GError **error);

/* ------------------------------------------------------------------------ */
/* Server.                                                                    */

typedef struct pz_rpc_server pz_rpc_server;
typedef struct pz_rpc_conn pz_rpc_conn; /* one inbound connection */
typedef struct pz_rpc_call pz_rpc_call; /* one inbound call being handled */

/* Policy hooks the server calls for every request; the daemon wires the DoS
 * and authorization services in. All members may be NULL (then: allowed /
 * nothing happens). PEER is the connection's authenticated identity,
 * borrowed for the duration of the call. Called from the server's thread. */
typedef struct pz_rpc_server_hooks {
    uint32_t struct_size; /* sizeof(pz_rpc_server_hooks) */
    /* Rate limiters: set *ALLOWED to 0 to refuse. COST is the method's cost
     * (pz_rpc_server_set_cost; 1 by default). A non-zero return refuses too. */
    int (*rate_limit)(void *ud, const pz_identity *peer, const pz_addr *addr, const char *method, uint32_t cost,
                      uint64_t now_ns, int *allowed);
    /* Authorization: set *ALLOWED to 0 to refuse METHOD for PEER. */
    int (*authorize)(void *ud, const pz_identity *peer, const char *method, int *allowed);
    /* Behaviour events (every refusal and every valid request). */
    void (*behavior)(void *ud, const pz_behavior_event *event);
    /* A call finished with STATUS (metrics, logs). DURATION_NS from arrival
     * to response. REASON is a short static text. */
    void (*call_done)(void *ud, const pz_identity *peer, const char *method, int32_t status,
                      uint64_t duration_ns, const char *reason);
    /* A connection ended; REASON is a short text (PZ_EOF on orderly close). */
    void (*conn_closed)(void *ud, pz_rpc_conn *conn, int code, const char *reason);
    /* Wall clock in ns since the epoch (tests); NULL: g_get_real_time(). */
    uint64_t (*realtime_ns)(void *ud);
    void *ud;
    /* Appended (check struct_size): a rate-limit hook that can say when to
     * come back. Like rate_limit, plus *RETRY_AFTER_MS (0 on entry) to set
     * when it refuses: the time until the request would pass, 0 when
     * unknown. The server answers such a refusal with data
     * {"retry_after_ms": <u>} (docs/rpc-wire.md). Used instead of
     * rate_limit when set. */
    int (*rate_limit_retry)(void *ud, const pz_identity *peer, const pz_addr *addr, const char *method,
                            uint32_t cost, uint64_t now_ns, int *allowed, uint32_t *retry_after_ms);
} pz_rpc_server_hooks;

typedef struct pz_rpc_server_config {
    uint32_t struct_size;     /* sizeof(pz_rpc_server_config) */
    const char *node_id;      /* this node; required (copied) */
    const pz_rpc_key *key;    /* this node's signing key; required; borrowed, must outlive the server */
    GMainContext *context;    /* NULL: the thread-default context at creation */
    const pz_rpc_server_hooks *hooks; /* may be NULL; copied */
    pz_audit_log *audit;      /* log for PZ_RPC_AUDIT methods; may be NULL; borrowed */
    uint64_t skew_ns;         /* allowed |now - timestamp|; 0: 30 s */
    size_t replay_cache_max;  /* entries; 0: 262144 */
    size_t max_frame_bytes;   /* 0: 1 MiB; at least 256 */
    size_t max_in_flight;     /* per connection; reading pauses above it; 0: 256 */
    uint32_t max_timeout_ms;  /* cap on a call's timeout; 0: 300000 */
} pz_rpc_server_config;

/* Counters since creation. */
typedef struct pz_rpc_server_stats {
    uint64_t by_status[PZ_RPC_STATUS__COUNT]; /* responses by status (app statuses count as HANDLER_ERROR) */
    uint64_t requests;         /* well-formed requests received */
    uint64_t malformed;        /* frames that were not a valid request (connection closed) */
    uint64_t connections;      /* connections added */
    uint64_t open_connections;
    uint64_t in_flight;        /* calls handed to handlers and not answered yet */
    uint64_t replay_cache_entries;
} pz_rpc_server_stats;

/* A method handler. It owns CALL and must answer it exactly once, now or
 * later, with pz_rpc_call_return or pz_rpc_call_fail (even after the
 * deadline passed or the connection closed: then the answer is dropped).
 * PARAMS is borrowed for the duration of the call to the handler (ref it to
 * keep it). Runs in the server's thread. */
typedef void (*pz_rpc_handler)(pz_rpc_call *call, GVariant *params, void *user_data);

/* Create a server. Returns PZ_EINVAL for a missing node id or key. */
PZ_API int pz_rpc_server_new(const pz_rpc_server_config *config, pz_rpc_server **out, GError **error);

/* Close every connection and free SERVER. Calls still held by handlers are
 * orphaned: their later answer is dropped and frees them. NULL is a no-op. */
PZ_API void pz_rpc_server_free(pz_rpc_server *server);

/* Register HANDLER for METHOD with FLAGS (PZ_RPC_MAC, PZ_RPC_AUDIT).
 * PZ_EEXIST when METHOD is taken, PZ_EINVAL for a bad name or for
 * PZ_RPC_AUDIT together with PZ_RPC_MAC (a MAC is no evidence). */
PZ_API int pz_rpc_register(pz_rpc_server *server, const char *method, pz_rpc_handler handler, void *user_data,
                           unsigned flags);

/* Set the rate-limit cost of METHOD (default 1). PZ_ENOENT if unregistered. */
PZ_API int pz_rpc_server_set_cost(pz_rpc_server *server, const char *method, uint32_t cost);

/* Serve the established, authenticated connection TCONN of transport TP.
 * The server takes TCONN (it calls TP->close when the connection ends, even
 * when this fails). PEER is the authenticated identity (copied; node_id
 * and sign_pub required for signed methods), ADDR the remote address (may be
 * NULL). *OUT (may be NULL) is valid until the conn_closed hook ran. */
PZ_API int pz_rpc_server_add_connection(pz_rpc_server *server, const pz_transport_provider *tp, void *tconn,
                                        const pz_identity *peer, const pz_addr *addr, pz_rpc_conn **out,
                                        GError **error);

/* Close CONN now (revoked or banned peer): pending calls are orphaned. */
PZ_API void pz_rpc_conn_close(pz_rpc_conn *conn);
/* The authenticated identity of CONN (valid while CONN is). */
PZ_API const pz_identity *pz_rpc_conn_peer(const pz_rpc_conn *conn);

/* Close every connection of NODE_ID; returns how many were closed. */
PZ_API size_t pz_rpc_server_close_peer(pz_rpc_server *server, const char *node_id);

/* Stop taking new calls (they are refused with PZ_RPC_UNAVAILABLE) while the
 * calls in flight finish; returns the number in flight. */
PZ_API size_t pz_rpc_server_drain(pz_rpc_server *server);

PZ_API void pz_rpc_server_get_stats(const pz_rpc_server *server, pz_rpc_server_stats *stats);

/* Answer CALL with DATA (NULL: the unit "()"; a floating reference is
 * sunk) and free CALL. */
PZ_API void pz_rpc_call_return(pz_rpc_call *call, GVariant *data);
/* Fail CALL with STATUS (PZ_RPC_BAD_REQUEST, PZ_RPC_HANDLER_ERROR or
 * >= PZ_RPC_STATUS_APP) and a short MESSAGE for the caller (may be NULL;
 * never secret), and free CALL. */
PZ_API void pz_rpc_call_fail(pz_rpc_call *call, int32_t status, const char *message);

PZ_API const char *pz_rpc_call_method(const pz_rpc_call *call);
/* The caller's identity; NULL once the connection closed. */
PZ_API const pz_identity *pz_rpc_call_peer(const pz_rpc_call *call);
/* Deadline on the g_get_monotonic_time() clock, in microseconds. */
PZ_API int64_t pz_rpc_call_deadline(const pz_rpc_call *call);
/* Non-zero once the answer would be dropped (deadline passed, connection
 * gone, server freed): a long handler may stop early. */
PZ_API int pz_rpc_call_expired(const pz_rpc_call *call);

/* ------------------------------------------------------------------------ */
/* Client.                                                                    */

typedef struct pz_rpc_client pz_rpc_client;

typedef struct pz_rpc_client_hooks {
    uint32_t struct_size; /* sizeof(pz_rpc_client_hooks) */
    /* The pool needs a new connection to PEER (a node id). Start
     * connecting (transport connect + handshake + auth, checking the
     * server's node id is PEER) and later call pz_rpc_client_add_connection
     * or pz_rpc_client_connect_failed, from the client's thread, never
     * from inside this hook. Required. */
    void (*connect)(void *ud, pz_rpc_client *client, const char *peer);
    /* Wall clock in ns since the epoch (tests); NULL: g_get_real_time(). */
    uint64_t (*realtime_ns)(void *ud);
    void *ud;
} pz_rpc_client_hooks;

typedef struct pz_rpc_client_config {
    uint32_t struct_size;      /* sizeof(pz_rpc_client_config) */
    const char *node_id;       /* this node (the caller id); required */
    const pz_rpc_key *key;     /* signing key; required; borrowed, must outlive the client */
    GMainContext *context;     /* NULL: the thread-default context at creation */
    const pz_rpc_client_hooks *hooks; /* required (connect); copied */
    uint64_t skew_ns;          /* allowed |now - response timestamp|; 0: 30 s */
    size_t max_frame_bytes;    /* 0: 1 MiB */
    size_t max_conns_per_peer; /* 0: 2 */
    size_t max_in_flight;      /* per connection before another is opened; 0: 1024 */
    size_t max_queued;         /* calls waiting for a connection, per peer; 0: 65536 */
    uint32_t default_timeout_ms; /* 0: 30000 */
} pz_rpc_client_config;

/* Per-call options; NULL means all defaults. */
typedef struct pz_rpc_call_opts {
    uint32_t struct_size; /* sizeof(pz_rpc_call_opts) */
    uint32_t timeout_ms;  /* 0: the client's default */
    unsigned flags;       /* PZ_RPC_MAC, PZ_RPC_IDEMPOTENT (OR'd with pz_rpc_client_mark) */
} pz_rpc_call_opts;

/* What a call came to. Everything is borrowed for the duration of the
 * callback. */
typedef struct pz_rpc_result {
    /* 0: a response that passed every check arrived (see STATUS).
     * PZ_ETIMEDOUT: deadline passed; PZ_ECLOSED: connection lost before the
     * response; PZ_ECRYPTO: response signature/MAC wrong (connection
     * closed); PZ_EPROTO: response sender is not the target; PZ_ESTALE:
     * response timestamp outside the skew; PZ_EIO / other: connecting
     * failed (MESSAGE says why); PZ_ENOTSUP: mac mode without channel
     * binding. */
    int rc;
    int32_t status;       /* when rc == 0: the server's status */
    const char *message;  /* server's message or local reason; never NULL */
    GVariant *data;       /* when rc == 0 and status == PZ_RPC_OK; else NULL */
    int authenticated;    /* the response was signed/MAC'd (refusals before
                             verification are not; see docs/rpc-wire.md) */
    const uint8_t *call_id; /* PZ_RPC_CALL_ID_LEN bytes */
    uint64_t timestamp_ns;  /* response timestamp (rc == 0) */
    unsigned attempts;      /* 1, or 2 after a retry of an idempotent call */
} pz_rpc_result;

typedef void (*pz_rpc_done_fn)(const pz_rpc_result *result, void *user_data);

/* The server's retry hint in a rate-limited RESULT: the "retry_after_ms"
 * of the response data (docs/rpc-wire.md), in milliseconds; 0 when the
 * server gave none or RESULT is not a rate_limited refusal. The hint is
 * unauthenticated advice (rate-limited refusals are not signed). RESULT
 * must be one the client passed to a pz_rpc_done_fn, during that call. */
PZ_API uint32_t pz_rpc_result_retry_after_ms(const pz_rpc_result *result);

PZ_API int pz_rpc_client_new(const pz_rpc_client_config *config, pz_rpc_client **out, GError **error);

/* Fail every pending call with PZ_ECLOSED (callbacks run inside this
 * function), close every connection and free CLIENT. NULL is a no-op. */
PZ_API void pz_rpc_client_free(pz_rpc_client *client);

/* Default flags for METHOD (PZ_RPC_MAC, PZ_RPC_IDEMPOTENT). */
PZ_API int pz_rpc_client_mark(pz_rpc_client *client, const char *method, unsigned flags);

/* Add the established connection TCONN of TP to PEER's pool (the answer to
 * the connect hook, or unsolicited). Takes TCONN. SERVER is the
 * authenticated identity of the other end: its node_id must equal PEER
 * (else PZ_EPERM, connection closed) and its sign_pub is the key responses
 * are checked against. */
PZ_API int pz_rpc_client_add_connection(pz_rpc_client *client, const char *peer, const pz_transport_provider *tp,
                                        void *tconn, const pz_identity *server, GError **error);

/* Connecting to PEER failed: calls waiting for it fail with CODE and
 * MESSAGE (idempotent ones too: nothing was sent). */
PZ_API void pz_rpc_client_connect_failed(pz_rpc_client *client, const char *peer, int code, const char *message);

/* Call METHOD on PEER with PARAMS (NULL: "()"; a floating reference is
 * sunk). Returns 0 and calls DONE exactly once later from the client's
 * main context (never from inside this function), or returns an error
 * (PZ_EINVAL bad method/peer, PZ_EAGAIN queue full) and never calls DONE. */
PZ_API int pz_rpc_client_call(pz_rpc_client *client, const char *peer, const char *method, GVariant *params,
                              const pz_rpc_call_opts *opts, pz_rpc_done_fn done, void *user_data);

/* Blocking wrapper: runs the client's main context until the call is done.
 * Call from the thread that owns (or may acquire) that context. Returns the
 * result's rc, or PZ_EREFUSED when the server answered a status other than
 * PZ_RPC_OK (*STATUS gets it; ERROR says it). *DATA (may be NULL) gets a
 * reference to the data on success. */
PZ_API int pz_rpc_client_call_sync(pz_rpc_client *client, const char *peer, const char *method, GVariant *params,
                                   const pz_rpc_call_opts *opts, GVariant **data, int32_t *status,
                                   GError **error);

/* Close every connection to PEER (calls in flight fail with PZ_ECLOSED). */
PZ_API void pz_rpc_client_close_peer(pz_rpc_client *client, const char *peer);

typedef struct pz_rpc_client_stats {
    uint64_t calls;           /* calls accepted */
    uint64_t ok;              /* responses with status OK */
    uint64_t refused;         /* responses with another status */
    uint64_t timeouts;
    uint64_t closed;          /* calls failed with PZ_ECLOSED */
    uint64_t bad_responses;   /* responses failing a check */
    uint64_t unknown_responses; /* responses to no call in flight (late, after a timeout) */
    uint64_t retries;
    uint64_t in_flight;
    uint64_t connections;     /* open */
} pz_rpc_client_stats;

PZ_API void pz_rpc_client_get_stats(const pz_rpc_client *client, pz_rpc_client_stats *stats);

#ifdef __cplusplus
}
#endif
#endif /* PROZSEC_RPC_H */
