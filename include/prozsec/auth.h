/* prozsec — peer authentication provider ABI.
 *
 * The auth chain (core) runs providers in configured order with PAM-style
 * control flags. Each provider looks at a peer's credentials (certificate
 * chain as DER, TLS channel binding, token, Unix peer credentials) and
 * answers allow (with an identity), deny (with a reason) or abstain. The
 * seed's PeerAuthProvider: authenticate_peer, generate_credentials, name
 * (the descriptor's), supported_methods.
 *
 * Thread safety: authenticate_peer may be called from several threads at
 * once on one instance (the core may authenticate on a worker pool); an
 * instance must lock what it mutates. Other functions: one thread at a time.
 */
#ifndef PROZSEC_AUTH_H
#define PROZSEC_AUTH_H

#include <prozsec/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What the transport learnt about the peer. Pointers are borrowed for the
 * duration of the call. */
typedef struct pz_auth_credentials {
    uint32_t struct_size;
    const char *transport;          /* "tls", "unix", ... */
    const pz_addr *addr;            /* remote address, never NULL */
    size_t n_certs;                 /* peer certificate chain, leaf first */
    const uint8_t *const *cert_der;
    const size_t *cert_der_len;
    const uint8_t *channel_binding; /* TLS exporter "EXPORTER-prozsec-channel-binding", 32 bytes; NULL if none */
    size_t channel_binding_len;
    const uint8_t *token;           /* token the peer presented (psk-token); NULL if none */
    size_t token_len;
    int has_unix_cred;              /* 1 when uid/gid/pid are set (SO_PEERCRED) */
    uint32_t uid, gid;
    int32_t pid;
    const char *expected_node_id;   /* outbound: the node id dialled; NULL inbound */
    /* Appended in 1.1: read only when PZ_AUTH_CRED_HAS(cred, flags). */
    uint32_t flags;                 /* PZ_AUTH_CRED_* bits */
    const char *chain_note;         /* with PZ_AUTH_CRED_UNVERIFIED_CHAIN: why, for logs; else NULL */
} pz_auth_credentials;

/* pz_auth_credentials.flags: the transport did NOT validate cert_der
 * against a trusted CA (tls `verify: auth-chain`). The handshake still
 * proved that the peer holds the private key of cert_der[0], and nothing
 * more: its names, type, issuer and extensions are the peer's own claims.
 * A provider that trusts a certificate's contents (cert-auth) must deny
 * such a chain; one that trusts a key it knows (key-pin) may allow it. */
#define PZ_AUTH_CRED_UNVERIFIED_CHAIN 0x1u

/* 1 when CRED (built against an older header, perhaps) has field F. */
#define PZ_AUTH_CRED_HAS(cred, f) \
    ((cred)->struct_size >= offsetof(pz_auth_credentials, f) + sizeof((cred)->f))

typedef enum pz_auth_verdict {
    PZ_AUTH_ABSTAIN = 0, /* no opinion: credentials this provider does not handle */
    PZ_AUTH_ALLOW = 1,
    PZ_AUTH_DENY = 2,
} pz_auth_verdict;

#define PZ_AUTH_MAX_ROLES 8
#define PZ_AUTH_ROLE_MAX 32

/* Filled by authenticate_peer. The core zeroes it and sets struct_size
 * before the call; providers write into the fixed buffers. */
typedef struct pz_auth_result {
    uint32_t struct_size;
    pz_auth_verdict verdict;
    /* On allow: */
    char node_id[PZ_NODE_ID_MAX + 1];
    char node_type[PZ_NODE_TYPE_MAX + 1];
    char roles[PZ_AUTH_MAX_ROLES][PZ_AUTH_ROLE_MAX + 1];
    size_t n_roles;
    uint8_t sign_pub[32];
    int has_sign_pub;
    uint8_t e2e_pub[32];
    int has_e2e_pub;
    /* On deny: */
    int reason_code;  /* provider-defined, stable; 0 = unspecified */
    char reason[128]; /* short text for logs; never secret */
} pz_auth_result;

typedef struct pz_auth_provider {
    uint32_t struct_size;

    /* As in ratelimit.h. Mandatory. */
    int (*create)(const pz_core *core, const pz_conf *conf, void **state, pz_err *err);
    void (*destroy)(void *state);

    /* Authenticate CRED into OUT. Returns 0 with a verdict; a non-zero
     * return (PZ_ENOMEM, PZ_EINTERNAL) is counted by the chain as a deny,
     * never as an allow. Mandatory. */
    int (*authenticate_peer)(void *state, const pz_auth_credentials *cred, pz_auth_result *out,
                             pz_err *err);

    /* Credentials this node presents to peers with this method (a PEM
     * certificate, a token bound to CHANNEL_BINDING, ...). Writes up to
     * *LEN bytes into BUF and sets *LEN to the bytes written; when BUF is
     * too small returns PZ_ERANGE with *LEN set to the size needed.
     * CHANNEL_BINDING may be NULL. PZ_ENOTSUP if the provider presents
     * nothing. Mandatory. */
    int (*generate_credentials)(void *state, const uint8_t *channel_binding, size_t channel_binding_len,
                                uint8_t *buf, size_t *len, pz_err *err);

    /* Methods this provider handles ("certificate", "key-pin", "psk",
     * "unix-peercred"), as a NULL-terminated static array. Mandatory. */
    const char *const *(*supported_methods)(void *state);

    /* Optional (NULL): re-read settings at run time; on error the old ones stay. */
    int (*reload)(void *state, const pz_conf *conf, pz_err *err);

    /* Appended after 1.0: check struct_size. */
} pz_auth_provider;

#ifdef __cplusplus
}
#endif
#endif /* PROZSEC_AUTH_H */
