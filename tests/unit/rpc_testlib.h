/* tests/unit/rpc_testlib.h — helpers for the RPC tests: a transport
 * provider over socketpair(2) (optionally with a fixed "channel binding"),
 * identities with signing keys, and a raw peer that writes crafted frames
 * and reads responses while the main context runs. */
#ifndef PZ_TESTS_RPC_TESTLIB_H
#define PZ_TESTS_RPC_TESTLIB_H

#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include <prozsec/rpc.h>
#include <prozsec/transport.h>

/* The socketpair transport. Its channel_binding returns the same 32 bytes
 * on both ends of a pair made with WITH_BINDING, else PZ_ENOTSUP. */
extern const pz_transport_provider tl_transport;

typedef struct tl_conn tl_conn;

/* A connected pair of transport connections (non-blocking). */
void tl_pair(int with_binding, void **a, void **b);
int tl_conn_fd(void *conn);

/* A node: id, key, identity pointing into it. */
typedef struct tl_node {
    char id[PZ_NODE_ID_MAX + 1];
    pz_rpc_key *key;
    uint8_t pub[32];
    pz_identity ident;
} tl_node;

void tl_node_init(tl_node *n, const char *id);
void tl_node_clear(tl_node *n);

/* Write all of BUF to the blocking-enough socket FD, running CTX while it
 * would block. */
void tl_write_all(GMainContext *ctx, int fd, const uint8_t *buf, size_t len);

/* Run CTX until a whole frame arrives on FD; returns its payload (g_free)
 * or NULL when the peer closed (or after about 30 s idle). */
uint8_t *tl_read_frame(GMainContext *ctx, int fd, size_t *len);

/* Run CTX until *FLAG is non-zero (or 300 s pass: then abort). */
void tl_run_until(GMainContext *ctx, const int *flag);

/* Run CTX for about MS milliseconds. */
void tl_run_for(GMainContext *ctx, unsigned ms);

#endif
