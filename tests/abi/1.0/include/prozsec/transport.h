/* prozsec — transport provider ABI.
 *
 * A transport moves bytes between nodes: it listens, accepts, connects,
 * runs its handshake, reads, writes and closes, and tells the auth chain
 * what it learnt about the peer (certificate chain, channel binding, Unix
 * credentials). Everything is non-blocking and file-descriptor driven: the
 * core polls the descriptor a transport names, for the events it asks for,
 * from its event loop. No event-loop type crosses the ABI.
 *
 * Thread safety: one connection or listener is used by one thread at a
 * time; distinct connections may be used from distinct threads.
 */
#ifndef PROZSEC_TRANSPORT_H
#define PROZSEC_TRANSPORT_H

#include <prozsec/auth.h>
#include <prozsec/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Events a handle waits for (bit mask). */
#define PZ_IO_READ 0x1
#define PZ_IO_WRITE 0x2

typedef struct pz_transport_provider {
    uint32_t struct_size;

    /* As in ratelimit.h. Mandatory. */
    int (*create)(const pz_core *core, const pz_conf *conf, void **state, pz_err *err);
    void (*destroy)(void *state);

    /* Listen on ADDRESS ("127.0.0.1:7400", "[::1]:7400", a socket path).
     * *LISTENER is owned by the caller until listener_close. Mandatory. */
    int (*listen)(void *state, const char *address, void **listener, pz_err *err);

    /* The descriptor to poll for PZ_IO_READ before accept. Mandatory. */
    int (*listener_fd)(void *listener);

    /* Accept one pending connection without blocking: PZ_EAGAIN when none.
     * *CONN is owned by the caller until close. *REMOTE gets the peer's
     * address; the caller runs pre-handshake admission before handshake().
     * Mandatory. */
    int (*accept)(void *listener, void **conn, pz_addr *remote, pz_err *err);

    void (*listener_close)(void *listener);

    /* Start connecting to ADDRESS; EXPECTED_NODE_ID (may be NULL) is the
     * node dialled, which the handshake checks. Mandatory. */
    int (*connect)(void *state, const char *address, const char *expected_node_id, void **conn,
                   pz_err *err);

    /* Advance the handshake: 0 when complete, PZ_EAGAIN when waiting (poll
     * conn_fd for conn_events), another code when it failed (ERR says
     * why). Mandatory. */
    int (*handshake)(void *conn, pz_err *err);

    int (*conn_fd)(void *conn);
    /* PZ_IO_READ and/or PZ_IO_WRITE: what the last call that returned
     * PZ_EAGAIN waits for. */
    int (*conn_events)(void *conn);

    /* Read up to LEN bytes: 0 with *NREAD > 0, PZ_EAGAIN, PZ_EOF, or an
     * error. Mandatory. */
    int (*read)(void *conn, void *buf, size_t len, size_t *nread, pz_err *err);

    /* Write up to LEN bytes: 0 with *NWRITTEN > 0, PZ_EAGAIN, or an error.
     * Mandatory. */
    int (*write)(void *conn, const void *buf, size_t len, size_t *nwritten, pz_err *err);

    /* Close and free CONN (sending a close notification when it can without
     * blocking). Mandatory. */
    void (*close)(void *conn);

    /* Fill CRED with what the handshake learnt. Pointers inside stay valid
     * until close(CONN). Mandatory. */
    int (*peer_credentials)(void *conn, pz_auth_credentials *cred);

    /* Export LEN bytes of keying material bound to this connection under
     * LABEL (TLS: RFC 8446 section 7.5 exporter). PZ_ENOTSUP when the
     * transport has none (unix). Mandatory. */
    int (*channel_binding)(void *conn, const char *label, uint8_t *out, size_t len, pz_err *err);

    /* Optional (NULL): reload credentials and settings without dropping
     * established connections. */
    int (*reload)(void *state, const pz_conf *conf, pz_err *err);

    /* Appended after 1.0: check struct_size. */
} pz_transport_provider;

#ifdef __cplusplus
}
#endif
#endif /* PROZSEC_TRANSPORT_H */
