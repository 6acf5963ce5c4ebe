/* core/node_priv.h — the node's internal structures, shared by node.c
 * (data path), node_conf.c (its configuration sections) and
 * node_methods.c (built-in RPC methods). Not installed. */
#ifndef PZ_CORE_NODE_PRIV_H
#define PZ_CORE_NODE_PRIV_H

#include <glib.h>

#include <prozsec/e2e.h>
#include <prozsec/rpc.h>
#include <prozsec/transport.h>

#include "authchain.h"
#include "authz.h"
#include "conf.h"
#include "credframe.h"
#include "dos.h"
#include "identity.h"
#include "loader.h"
#include "node.h"
#include "settings.h"

#define PZ_CHANNEL_BINDING_LABEL "EXPORTER-prozsec-channel-binding"

/* One address-book entry of `peers:`. */
typedef struct node_conf_peer {
    const char *node_id;   /* borrowed from the document */
    const char *address;
    const char *transport; /* instance name or NULL (default outbound transport) */
} node_conf_peer;

/* One method's settings from `rpc.methods`. */
typedef struct node_conf_method {
    const char *name;
    int mac;        /* integrity: mac */
    int audit;
    int idempotent;
} node_conf_method;

/* The node's own sections: peers, rpc, e2e, metrics. */
typedef struct node_conf {
    node_conf_peer *peers;
    size_t n_peers;
    node_conf_method *methods;
    size_t n_methods;
    uint64_t skew_ns;
    size_t replay_cache;
    size_t max_frame_bytes;
    size_t max_in_flight;
    unsigned handshake_timeout_ms;
    const char *audit_path; /* absolute or NULL */
    char *audit_path_abs;
    uint64_t e2e_rotate_ns;
    uint64_t e2e_grace_ns;
    size_t inbox_max;       /* envelopes per recipient */
    size_t inbox_max_bytes; /* per envelope */
    const char *metrics_listen;
    uint64_t dos_save_ns;   /* dos.save_interval: periodic pz_dos_flush; 0 = off */
} node_conf;

/* Everything a reload rebuilds, reference-counted: connections admitted by
 * one generation's DoS service are released to that same service. */
typedef struct node_gen {
    int refs;
    pz_settings *settings;
    node_conf nc;
    pz_dos *dos;
    pz_authchain *auth;
    pz_authz *authz;
    pz_identities *ids;
} node_gen;

typedef struct node_transport {
    char *name;
    char *listen;
    int is_unix;
    pz_provider *prov;
    const pz_transport_provider *t;
    void *state;
} node_transport;

typedef struct node_listener {
    pz_node *node;
    node_transport *nt;
    void *listener;
    char *address;
    GSource *src;
} node_listener;

/* Stages of a connection being set up (node.c). */
typedef enum hs_stage {
    HS_TRANSPORT = 0, /* the transport's handshake */
    HS_CRED_WRITE,    /* outbound: server authenticated, sending our credentials frame */
    HS_CRED_READ,     /* inbound: reading the peer's credentials frame */
} hs_stage;

/* A connection in handshake/authentication. */
typedef struct hs_conn {
    pz_node *node;
    node_transport *nt;
    node_gen *gen;
    void *tconn;
    pz_addr addr;
    pz_dos_conn *dc;
    GSource *io;
    GIOCondition io_cond;
    GSource *timer;
    int outbound;
    char *expect;
    hs_stage stage;
    /* The credentials frame (core/credframe.h) being written or read:
     * PZ_CREDFRAME_HDR + PZ_CREDFRAME_MAX bytes, wiped when freed. */
    uint8_t *frame;
    size_t frame_len;  /* bytes in FRAME (read), or its total size (write) */
    size_t frame_need; /* read: payload length from the header, 0 until read */
    size_t frame_done; /* write: bytes written */
    pz_authchain_result *res; /* outbound: the server's authentication, kept until the frame is sent */
} hs_conn;

/* An authenticated inbound connection served by the RPC server. */
typedef struct conn_info {
    pz_node *node;
    node_gen *gen;
    pz_dos_conn *dc;
    pz_rpc_conn *rpc;
    node_transport *nt;
    pz_addr addr;
    char node_id[PZ_NODE_ID_MAX + 1];
    char auth_provider[PZ_AUTHCHAIN_NAME_MAX + 1];
    uint64_t since_ns;
    uint8_t **certs;
    size_t *cert_lens;
    size_t n_certs;
    uint8_t binding[32];
    int has_binding;
    uint32_t cred_flags; /* pz_auth_credentials.flags of the handshake (PZ_AUTH_CRED_*) */
    GBytes *tokens;      /* payload of its credentials frame when it held tokens (re-checked on reload) */
    int closed;
} conn_info;

typedef struct node_peer {
    char *address;
    char *transport;
} node_peer;

typedef struct connect_fail {
    pz_node *node;
    char *peer;
    int code;
    char *message;
} connect_fail;

struct pz_node {
    pz_node_mode mode;
    char *config_path;
    char *node_id;
    char *node_type;
    GMainContext *ctx;
    GPtrArray *docs;       /* every configuration document loaded (providers point into them) */
    pz_loader *loader;
    node_gen *gen;         /* current generation */
    GPtrArray *transports; /* node_transport */
    GPtrArray *listeners;  /* node_listener */
    GList *pending;        /* hs_conn */
    GHashTable *conns;     /* pz_rpc_conn* -> conn_info */
    conn_info *adding;     /* the connection pz_rpc_server_add_connection is adding */
    GHashTable *peers;     /* node id -> node_peer */
    GHashTable *inbox;     /* recipient -> GQueue of GBytes (envelopes) */
    pz_rpc_key *rpc_key;
    uint8_t sign_pub[32];
    pz_rpc_server *server;
    pz_rpc_client *client;
    pz_audit_log *audit;
    pz_e2e *e2e;
    pz_core *core;
    struct pz_metrics_http *metrics;
    guint rotate_timer; /* E2E receiving-key rotation (server mode) */
    guint save_timer;   /* periodic save of DoS state (dos.save_interval) */
    uint64_t save_timer_ns; /* its period */
    uint64_t refused_pre;       /* connections closed before the handshake (DoS chain or transport) */
    uint64_t refused_transport; /* ... of them by the transport's accept (tls pending-handshake cap) */
    uint64_t relayed;
    void (*quit_cb)(void *ud);
    void *quit_ud;
};

/* node_conf.c */
int node_conf_load(pz_node *node, const pz_conf *root, node_conf *out, pz_err *err);
void node_conf_clear(node_conf *nc);

/* node_methods.c */
int node_methods_register(pz_node *node, pz_err *err);
void node_inbox_free(gpointer queue);
void node_stats_refusals(pz_node *node, GString *out);

/* node.c */
void pz__addr_format(const pz_addr *a, char *buf, size_t len);

#endif /* PZ_CORE_NODE_PRIV_H */
