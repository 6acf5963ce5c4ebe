/* plugins/tls/tls_int.h — internals shared by the files of the `tls`
 * transport plugin: the instance state, the reloadable credential set and
 * connections.
 *
 *   tls.c    provider table, instance state, listeners, reload, resumption
 *   creds.c  configuration -> a refcounted credential set (GnuTLS
 *            credentials, priority cache, profiles, certval, policy)
 *   conn.c   one connection: non-blocking handshake, checks, I/O
 *   profile.c TLS profiles and the priority string
 *
 * Locking: pz_tls_state.lock guards the current credential set pointer, the
 * ticket master key and the client resumption cache; each credential set
 * has its own lock for its verified-chain cache; a connection is used by one
 * thread at a time (transport.h) and holds a reference on the credential
 * set it started with, so reload never pulls credentials from under an
 * established session.
 */
#ifndef PZ_TLS_INT_H
#define PZ_TLS_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <gnutls/gnutls.h>

#include <prozsec/transport.h>

#include "certval.h"
#include "profile.h"

/* Exporter label for pz_auth_credentials.channel_binding (auth.h). */
#define PZ_TLS_CB_LABEL "EXPORTER-prozsec-channel-binding"
#define PZ_TLS_CB_LEN 32

/* Entries in a credential set's cache of verified peer chains (used to
 * accept resumed sessions without re-verifying signatures). */
#define PZ_TLS_VCACHE 512
/* Entries in the client-side resumption cache (session data per dialled
 * address and node id). */
#define PZ_TLS_RESUME_SLOTS 128
/* Size of a GnuTLS session-ticket master key. */
#define PZ_TLS_TICKET_KEY_LEN 64

typedef struct pz_tls_vcache_entry {
    uint8_t chain_sha256[32]; /* over every DER of the chain, in order */
    uint64_t not_after_s;     /* leaf notAfter: the entry is stale after it */
    char node_id[PZ_NODE_ID_MAX + 1];
    char node_type[PZ_NODE_TYPE_MAX + 1];
    int used;
} pz_tls_vcache_entry;

/* A credential set: everything a reload replaces. Immutable after
 * pz_tls_creds_new except refs and the verified-chain cache. */
/* Who decides whether a peer's certificate chain is acceptable (`verify`). */
typedef enum pz_tls_verify {
    PZ_TLS_VERIFY_CA = 0,         /* this transport, against `ca` (the default) */
    PZ_TLS_VERIFY_AUTH_CHAIN = 1, /* the auth chain: chains `ca` does not accept (or all, without `ca`)
                                   * pass with PZ_AUTH_CRED_UNVERIFIED_CHAIN */
} pz_tls_verify;

typedef struct pz_tls_creds {
    atomic_uint refs;
    const pz_core *core;
    gnutls_certificate_credentials_t x509; /* own cert+key (if any); verify function set */
    gnutls_priority_t prio;
    pz_certval *cv;             /* NULL when verify is auth-chain without `ca` */
    pz_tls_verify verify;
    int has_cert;               /* own certificate and key loaded (needed to listen) */
    unsigned min_rsa_bits;      /* key floors, also applied to chains left to the auth chain */
    unsigned min_ecdsa_bits;
    pz_tls_profiles profiles;
    pz_tls_client_auth request; /* what servers ask of clients */
    char priority[1024];        /* the string behind PRIO, for logs and tests */
    /* Settings (plugin configuration). */
    uint64_t handshake_timeout_ns;
    int64_t max_pending;
    int tickets;                 /* session tickets on */
    uint64_t ticket_lifetime_ns; /* ticket validity; GnuTLS rotates its STEK every 3x this */
    uint64_t ticket_rotation_ns; /* master key replaced this often */
    int require_ems;             /* TLS 1.2 needs extended master secret */
    int vcache_on;               /* remember verified chains (see PZ_TLS_VCACHE) */
    /* Cache of verified chains. */
    pthread_mutex_t vlock;
    pz_tls_vcache_entry vcache[PZ_TLS_VCACHE];
} pz_tls_creds;

typedef struct pz_tls_resume_slot {
    char *key;           /* "ADDRESS|NODE_ID" (malloc), NULL when free */
    gnutls_datum_t data; /* gnutls_session_get_data2 output (gnutls_free) */
    uint64_t used_ns;
} pz_tls_resume_slot;

typedef struct pz_tls_state {
    const pz_core *core;
    pthread_mutex_t lock;
    pz_tls_creds *creds;   /* current set; guarded by LOCK */
    atomic_long pending;   /* handshakes accepted and not finished */
    atomic_int listeners;  /* open listeners (reload may not drop cert and key while > 0) */
    uint8_t *ticket_key;   /* PZ_TLS_TICKET_KEY_LEN bytes in secure memory, or NULL */
    uint64_t ticket_born_ns;
    pz_tls_resume_slot resume[PZ_TLS_RESUME_SLOTS];
} pz_tls_state;

/* ---- creds.c ------------------------------------------------------------ */

/* Build a credential set from the transport's configuration map CONF
 * (may be NULL: then "cert", "key" and "ca" are missing and it fails),
 * reading every key through CORE's getters. Returns 0 with *OUT holding one
 * reference, or PZ_ECONFIG / PZ_ENOENT / PZ_EIO / PZ_EPERM / PZ_ECRYPTO /
 * PZ_ENOMEM with ERR naming the key, file and fix. */
int pz_tls_creds_new(const pz_core *core, const pz_conf *conf, pz_tls_creds **out, pz_err *err);
void pz_tls_creds_ref(pz_tls_creds *cr);
/* Drop a reference; the last one frees the set. NULL is a no-op. */
void pz_tls_creds_unref(pz_tls_creds *cr);

/* Look up / remember a verified chain by its hash. Lookup returns 1 and
 * fills NODE_ID/NODE_TYPE when a fresh entry exists at NOW_S. Thread-safe. */
int pz_tls_vcache_get(pz_tls_creds *cr, const uint8_t sha[32], uint64_t now_s, char *node_id, char *node_type);
void pz_tls_vcache_put(pz_tls_creds *cr, const uint8_t sha[32], uint64_t not_after_s, const char *node_id,
                       const char *node_type);

/* ---- tls.c -------------------------------------------------------------- */

/* The current credential set with a reference taken. Thread-safe. */
pz_tls_creds *pz_tls_state_creds(pz_tls_state *st);

/* Copy the current ticket master key into KEY (rotating it first when it
 * is older than the set's rotation interval). Returns 0 or PZ_ENOMEM /
 * PZ_ECRYPTO. Thread-safe. */
int pz_tls_ticket_key(pz_tls_state *st, const pz_tls_creds *cr, uint8_t key[PZ_TLS_TICKET_KEY_LEN]);

/* Client resumption cache: store a copy of DATA under KEY / fetch a copy
 * (the caller gnutls_free()s OUT->data). Thread-safe; failures are silent
 * (resumption is an optimisation). */
void pz_tls_resume_put(pz_tls_state *st, const char *key, const gnutls_datum_t *data);
int pz_tls_resume_get(pz_tls_state *st, const char *key, gnutls_datum_t *out);

/* Parse a numeric "HOST:PORT" / "[V6]:PORT" into a sockaddr. Returns 0 or
 * PZ_EINVAL with ERR set. */
struct sockaddr_storage;
int pz_tls_parse_address(const pz_core *core, const char *address, struct sockaddr_storage *ss,
                         unsigned *sslen, pz_err *err);

/* ---- conn.c ------------------------------------------------------------- */

/* Transport table entries implemented in conn.c. */
int pz_tls_conn_accepted(pz_tls_state *st, int fd, const pz_addr *remote, void **conn, pz_err *err);
int pz_tls_connect(void *state, const char *address, const char *expected_node_id, void **conn, pz_err *err);
int pz_tls_handshake(void *conn, pz_err *err);
int pz_tls_conn_fd(void *conn);
int pz_tls_conn_events(void *conn);
int pz_tls_read(void *conn, void *buf, size_t len, size_t *nread, pz_err *err);
int pz_tls_write(void *conn, const void *buf, size_t len, size_t *nwritten, pz_err *err);
void pz_tls_close(void *conn);
int pz_tls_peer_credentials(void *conn, pz_auth_credentials *cred);
int pz_tls_channel_binding(void *conn, const char *label, uint8_t *out, size_t len, pz_err *err);

/* Check the key of the certificate DER (LEN bytes) against CR's floors
 * (RSA >= min_rsa_bits, ECDSA on a curve of >= min_ecdsa_bits, Ed25519 and
 * Ed448 accepted, anything else refused): what certval would check, for a
 * chain no CA vouches for. Returns 0, or -1 with WHY (WHYLEN bytes) set. */
int pz_tls_leaf_key_ok(const pz_tls_creds *cr, const uint8_t *der, size_t len, char *why, size_t whylen);

/* "sha256//<base64>" of the SHA-256 of the SubjectPublicKeyInfo of the
 * certificate DER into BUF (>= 54 bytes), the pin key-pin takes. Returns 0
 * or -1. */
int pz_tls_spki_pin(const uint8_t *der, size_t len, char *buf, size_t buflen);

/* The verify function installed on every credential set's x509 creds. */
int pz_tls_verify_cb(gnutls_session_t session);

/* Fill ADDR from a sockaddr (IPv4-mapped IPv6 becomes PZ_AF_INET). */
void pz_tls_addr_from_sockaddr(const struct sockaddr_storage *ss, pz_addr *addr);

/* "1.2.3.4:5" / "[::1]:5" for logs. */
void pz_tls_addr_format(const pz_addr *addr, char *buf, size_t len);

#endif /* PZ_TLS_INT_H */
