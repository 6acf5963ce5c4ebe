/* core/node.h — a running prozsec node: the whole inbound and outbound data
 * path wired together from one configuration file.
 *
 *   accept (transport) -> pre-handshake admission (DoS, by address)
 *     -> handshake (deadline) -> the peer's credentials frame (same
 *     deadline; core/credframe.h) -> auth chain over the transport's
 *     credentials and the frame's tokens -> post-auth admission (DoS, by
 *     identity) -> secure RPC server (rate limit -> verify -> authorize
 *     -> handler -> signed response)
 *
 * Outbound calls go through a pooled RPC client whose connections are made
 * with a configured transport to the address book in `peers:`, and are
 * authenticated by the same auth chain with the dialled node id expected;
 * once the server is accepted, the node sends its own credentials frame
 * (the tokens its auth providers make for the connection) before any call.
 *
 * prozsecd runs one node in server mode; the `prozsec` tool runs one in
 * client mode (no listeners) to act as the node whose configuration it was
 * given (`rpc call`, `peer list`, the demo's clients).
 *
 * Thread safety: a node lives in the thread that runs its GMainContext;
 * every function must be called from that thread.
 */
#ifndef PZ_CORE_NODE_H
#define PZ_CORE_NODE_H

#include <glib.h>

#include <prozsec/rpc.h>

#include "err.h"

typedef struct pz_node pz_node;

typedef enum pz_node_mode {
    PZ_NODE_SERVER = 1, /* listen on every transport with `listen:` */
    PZ_NODE_CLIENT = 2, /* no listeners, no persistence: a tool acting as the node */
} pz_node_mode;

/* Load CONFIG_PATH and build everything it names (plugins, DoS, auth,
 * keys, RPC). Nothing listens yet. Every configuration error goes to ERR
 * (use a collecting pz_err to get them all) with FILE:LINE:COL; returns
 * PZ_ECONFIG / PZ_ENOENT / PZ_EABI ... and *OUT NULL on failure. */
int pz_node_new(const char *config_path, pz_node_mode mode, pz_node **out, pz_err *err);

/* Listen on every transport that has `listen:` (server mode). Prints
 * nothing; logs "node ID listening on ADDRESS" per listener. */
int pz_node_start(pz_node *node, pz_err *err);

/* Re-read the configuration file, certificates and CRL. Everything is
 * validated before anything is applied: on any error the running set
 * stays, every error is logged and returned in ERR. Live sessions of peers
 * that are now banned or refused are closed. */
int pz_node_reload(pz_node *node, pz_err *err);

/* Stop accepting, answer calls in flight (bounded by TIMEOUT_MS), save
 * persistent state (bans, scores), close every connection. */
void pz_node_shutdown(pz_node *node, unsigned timeout_ms);

void pz_node_free(pz_node *node);

const char *pz_node_id(const pz_node *node);
const char *pz_node_config_path(const pz_node *node);
/* The actual address each listener got ("127.0.0.1:7401"), in order, or
 * NULL past the end. */
const char *pz_node_listen_address(const pz_node *node, size_t i);

/* The node's RPC client: calls to peers of the address book (`peers:`) or
 * added with pz_node_add_peer_address. */
pz_rpc_client *pz_node_client(pz_node *node);

/* Add or replace an address-book entry: calls to NODE_ID go to ADDRESS
 * through the transport instance TRANSPORT (NULL: the default outbound
 * transport). */
int pz_node_add_peer_address(pz_node *node, const char *node_id, const char *address, const char *transport,
                             pz_err *err);

/* Blocking call helper for tools: call METHOD on NODE_ID and iterate the
 * node's context until the answer or TIMEOUT_MS. */
int pz_node_call_sync(pz_node *node, const char *node_id, const char *method, GVariant *params,
                      unsigned timeout_ms, unsigned flags, GVariant **data, int32_t *status, char **message,
                      pz_err *err);

/* Ask the main loop running the node to quit (signal handlers). */
void pz_node_set_quit_cb(pz_node *node, void (*cb)(void *ud), void *ud);

/* Prometheus-style text of every counter and gauge (`admin.stats`,
 * `prozsec stats`). Caller frees. */
char *pz_node_stats_text(pz_node *node);

#endif /* PZ_CORE_NODE_H */
