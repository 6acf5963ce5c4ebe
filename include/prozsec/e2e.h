/* prozsec — end-to-end encryption: sealed envelopes between nodes.
 *
 * An envelope is HPKE (RFC 9180, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
 * ChaCha20-Poly1305 by default or AES-256-GCM / AES-128-GCM) to the
 * recipient's current E2E receiving key, signed by the sender's Ed25519
 * key over the whole envelope (version, suite, sender, recipient, key id,
 * timestamp, message id, encapsulated key, associated data, ciphertext).
 * The byte layout is in docs/e2e-format.md; the threat model and the key
 * rotation bound in docs/security-model.md.
 *
 * A pz_e2e is one node's E2E context: its key directory (signing key,
 * long-term and rotated receiving keys), a directory of peers' public keys
 * (from certificates and signed key records), a bounded replay cache and
 * the freshness policy.
 *
 * Conventions: functions return 0 or a negative PZ_E* code (prozsec/error.h)
 * and, on failure, set ERROR (may be NULL) in the PZ_E2E_ERROR domain with
 * a pz_e2e_error code that names the exact check that failed. Time is
 * passed in as wall-clock nanoseconds since the Unix epoch (NOW_NS), never
 * read inside. Thread safety: every function may be called from several
 * threads at once on one context, except pz_e2e_free.
 */
#ifndef PROZSEC_E2E_H
#define PROZSEC_E2E_H

#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include <prozsec/error.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PZ_E2E_VERSION 1
#define PZ_E2E_ID_MAX 64          /* node ids: 1..64 of [A-Za-z0-9._-] */
#define PZ_E2E_MESSAGE_ID_LEN 16  /* 128-bit random message id */
#define PZ_E2E_KEY_ID_LEN 8
#define PZ_E2E_KEY_RECORD_LEN 128 /* a signed key record, raw */
#define PZ_E2E_AAD_MAX 65536      /* associated data travels in clear */

/* Cipher suites: KEM X25519/HKDF-SHA256 and KDF HKDF-SHA256 are fixed; the
 * value is the HPKE aead_id. */
typedef enum pz_e2e_suite {
    PZ_E2E_SUITE_DEFAULT = 0, /* = PZ_E2E_SUITE_CHACHA20_POLY1305 */
    PZ_E2E_SUITE_AES_128_GCM = 1,
    PZ_E2E_SUITE_AES_256_GCM = 2,
    PZ_E2E_SUITE_CHACHA20_POLY1305 = 3,
} pz_e2e_suite;

/* Error domain of pz_e2e_* GErrors. */
#define PZ_E2E_ERROR (pz_e2e_error_quark())
PZ_API GQuark pz_e2e_error_quark(void);

/* GError codes: one per check (the PZ_E* code returned alongside). Open
 * checks run in the order listed from VERSION to DECRYPT. */
typedef enum pz_e2e_error {
    PZ_E2E_ERROR_MALFORMED = 1,      /* not a well-formed envelope (PZ_EINVAL) */
    PZ_E2E_ERROR_VERSION,            /* unknown envelope version (PZ_ENOTSUP) */
    PZ_E2E_ERROR_SUITE,              /* unknown cipher suite (PZ_ENOTSUP) */
    PZ_E2E_ERROR_RECIPIENT,          /* addressed to another node (PZ_EREFUSED) */
    PZ_E2E_ERROR_AAD,                /* associated data is not the expected (PZ_EREFUSED) */
    PZ_E2E_ERROR_KEY_UNKNOWN,        /* no receiving key with this id (PZ_ENOENT) */
    PZ_E2E_ERROR_KEY_RETIRED,        /* receiving key retired past its grace period (PZ_ESTALE) */
    PZ_E2E_ERROR_EXPIRED,            /* timestamp older than max age (PZ_ESTALE) */
    PZ_E2E_ERROR_FUTURE,             /* timestamp ahead by more than the skew (PZ_ESTALE) */
    PZ_E2E_ERROR_SENDER_UNKNOWN,     /* no keys for the sender (PZ_ENOENT) */
    PZ_E2E_ERROR_SENDER_UNEXPECTED,  /* not the sender the caller expects (PZ_EREFUSED) */
    PZ_E2E_ERROR_SIGNATURE,          /* sender's signature invalid (PZ_ECRYPTO) */
    PZ_E2E_ERROR_REPLAY,             /* message id seen within the window (PZ_EREPLAY) */
    PZ_E2E_ERROR_DECRYPT,            /* decryption failed (PZ_ECRYPTO) */
    PZ_E2E_ERROR_RECIPIENT_UNKNOWN,  /* seal: no keys for the recipient (PZ_ENOENT) */
    PZ_E2E_ERROR_INVALID,            /* bad argument (PZ_EINVAL) */
    PZ_E2E_ERROR_TOO_LARGE,          /* message or AAD over the limit (PZ_ERANGE) */
    PZ_E2E_ERROR_KEYS,               /* key files or key records (the PZ_E* code varies) */
    PZ_E2E_ERROR_FAILED,             /* out of memory or a library failure */
} pz_e2e_error;

/* Context settings. Initialise with pz_e2e_options_init, then change. */
typedef struct pz_e2e_options {
    uint32_t struct_size;        /* sizeof(pz_e2e_options) of the caller */
    uint64_t max_skew_ns;        /* how far in the future a timestamp may be; default 30 s */
    uint64_t max_age_ns;         /* how old an envelope may be; default 5 min */
    uint32_t replay_capacity;    /* message ids remembered; default 65536 */
    uint64_t rotate_interval_ns; /* a new receiving key this often; 0 = never; default 7 days */
    uint64_t grace_ns;           /* a retired key still opens this long; default 2 days */
    size_t max_message;          /* largest plaintext; default 16 MiB */
} pz_e2e_options;

PZ_API void pz_e2e_options_init(pz_e2e_options *opts);

typedef struct pz_e2e pz_e2e;

/* Open the E2E context of node NODE_ID with the keys in KEY_DIR (see
 * docs/e2e-format.md; made by pz_nodekeys_generate / `prozsec cert issue`
 * / `prozsec e2e keygen`). OPTS may be NULL for the defaults. The node's
 * own keys are added to its peer directory (so it can open what it sealed
 * to itself). Does not rotate: call pz_e2e_rotate on a schedule. Returns
 * 0, PZ_EINVAL, PZ_ENOENT, PZ_EPERM, PZ_EIO, PZ_ECRYPTO or PZ_ENOMEM. */
PZ_API int pz_e2e_new(const char *node_id, const char *key_dir, const pz_e2e_options *opts, pz_e2e **out,
                      GError **error);

/* Free E2E (wipes its keys). NULL is a no-op. */
PZ_API void pz_e2e_free(pz_e2e *e2e);

PZ_API const char *pz_e2e_node_id(const pz_e2e *e2e);

/* Add or replace a peer's public keys: its Ed25519 signing key and its
 * long-term X25519 E2E key. The caller vouches for them (they come from a
 * certificate it validated). */
PZ_API int pz_e2e_add_peer(pz_e2e *e2e, const char *node_id, const uint8_t sign_pub[32],
                           const uint8_t e2e_pub[32], GError **error);

/* Add a peer from its certificate (DER), reading the node id and keys from
 * the node-keys extension. The certificate is NOT validated here: pass
 * only one that certificate validation accepted. PZ_EINVAL when it has no
 * node id or no keys. */
PZ_API int pz_e2e_add_peer_cert(pz_e2e *e2e, const uint8_t *der, size_t len, GError **error);

/* Add a peer's signed key record (raw PZ_E2E_KEY_RECORD_LEN bytes or the
 * PEM text of a .rec file) after verifying it with the peer's signing
 * key; sealing to that peer then uses the newest valid record. */
PZ_API int pz_e2e_add_key_record(pz_e2e *e2e, const char *node_id, const uint8_t *record, size_t len,
                                 uint64_t now_ns, GError **error);

/* Rotate receiving keys as scheduled: create a new one when the newest is
 * older than rotate_interval, destroy those retired past the grace period.
 * *CREATED (may be NULL) is set to 1 when a key was made; publish it with
 * pz_e2e_current_record. */
PZ_API int pz_e2e_rotate(pz_e2e *e2e, uint64_t now_ns, int *created, GError **error);

/* The signed record of the receiving key senders should use now, for
 * peers (PZ_ENOENT when only the long-term key from the certificate is in
 * use). */
PZ_API int pz_e2e_current_record(pz_e2e *e2e, uint64_t now_ns, uint8_t record[PZ_E2E_KEY_RECORD_LEN]);

/* Seal parameters. Zero-initialise, set struct_size, then change. */
typedef struct pz_e2e_seal_params {
    uint32_t struct_size;
    pz_e2e_suite suite; /* 0: ChaCha20-Poly1305 */
    /* Sealed sender: the sender id and signature travel inside the
     * ciphertext, so relays see only the recipient; they can then no longer
     * check the sender before storing (see docs/e2e-format.md). */
    int sealed_sender;
    const uint8_t *aad; /* associated data: in clear, authenticated, signed */
    size_t aad_len;     /* <= PZ_E2E_AAD_MAX */
} pz_e2e_seal_params;

/* Seal MSG (LEN bytes) for RECIPIENT_ID (a known peer, or this node) at
 * NOW_NS. PARAMS may be NULL. *OUT gets a malloc'd envelope of *OUT_LEN
 * bytes (free with free() or pz_e2e_free_bytes). Errors: RECIPIENT_UNKNOWN,
 * INVALID, TOO_LARGE, FAILED. */
PZ_API int pz_e2e_seal(pz_e2e *e2e, const char *recipient_id, const pz_e2e_seal_params *params,
                       const uint8_t *msg, size_t len, uint64_t now_ns, uint8_t **out, size_t *out_len,
                       GError **error);

/* Open parameters. Zero-initialise, set struct_size, then change. */
typedef struct pz_e2e_open_params {
    uint32_t struct_size;
    const char *expect_sender; /* refuse another sender (NULL: any known sender) */
    int check_aad;             /* refuse unless the envelope's AAD equals EXPECT_AAD */
    const uint8_t *expect_aad;
    size_t expect_aad_len;
} pz_e2e_open_params;

/* What open learnt about an envelope. */
typedef struct pz_e2e_meta {
    uint32_t struct_size;
    char sender_id[PZ_E2E_ID_MAX + 1];
    uint64_t timestamp_ns;
    uint8_t message_id[PZ_E2E_MESSAGE_ID_LEN];
    uint8_t key_id[PZ_E2E_KEY_ID_LEN];
    pz_e2e_suite suite;
    int sealed_sender;
    const uint8_t *aad; /* points into ENV; valid while ENV is */
    size_t aad_len;
} pz_e2e_meta;

/* Open the envelope ENV (LEN bytes) at NOW_NS. Checks, in order, each with
 * its own error code: version and suite; recipient is this node; (AAD as
 * expected); recipient key id current or within its grace; timestamp within
 * skew and max age; sender known (and expected) and its signature valid;
 * message id unseen (then remembered); decryption. With sealed sender the
 * sender and signature checks and the replay check follow decryption. On
 * success *MSG gets a malloc'd plaintext of *MSG_LEN bytes (free with
 * pz_e2e_free_bytes, which wipes it) and META (may be NULL) is filled. On
 * any failure no plaintext is released: *MSG is NULL. */
PZ_API int pz_e2e_open(pz_e2e *e2e, const uint8_t *env, size_t len, const pz_e2e_open_params *params,
                       uint64_t now_ns, uint8_t **msg, size_t *msg_len, pz_e2e_meta *meta, GError **error);

/* Remember that SENDER_ID sent MESSAGE_ID at TIMESTAMP_NS, as if its
 * envelope had been opened: for callers that persist what they opened
 * across restarts (the `prozsec e2e open` tool keeps KEY_DIR/e2e.seen).
 * Returns 0, PZ_EREPLAY (already remembered), PZ_ESTALE (too old to
 * matter at NOW_NS) or PZ_EINVAL. */
PZ_API int pz_e2e_mark_seen(pz_e2e *e2e, const char *sender_id, const uint8_t message_id[PZ_E2E_MESSAGE_ID_LEN],
                            uint64_t timestamp_ns, uint64_t now_ns);

/* Wipe LEN bytes at BUF and free it. NULL is a no-op. */
PZ_API void pz_e2e_free_bytes(uint8_t *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* PROZSEC_E2E_H */
