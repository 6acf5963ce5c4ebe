/* core/nodekeys.h — the node's own key files (Ed25519 signing key, X25519
 * E2E key), rotation of E2E receiving keys with signed key records, and the
 * directory of peers' public keys.
 *
 * File names and formats are documented in docs/e2e-format.md ("Key
 * files"); in short, in the node's key directory:
 *   sign.key, sign.pub   Ed25519 signing key: PKCS#8 / SubjectPublicKeyInfo PEM
 *   e2e.key, e2e.pub     long-term X25519 E2E key (the one in the certificate)
 *   e2e.d/<id>.key       rotated X25519 receiving keys (PKCS#8 PEM)
 *   e2e.d/<id>.rec       their key records, signed by sign.key (PEM)
 * Private key files are written with mode 0600, atomically (temporary file,
 * fsync, link/rename, fsync of the directory), and refused on load when
 * group or others may read them. Private keys are held in libgcrypt secure
 * memory and wiped when freed; a retired key past its grace period is wiped
 * in memory and its file overwritten and unlinked.
 *
 * Times are milliseconds since the Unix epoch (the unit of the key records
 * and envelopes). Thread safety: pz_nodekeys_generate and the key-record
 * functions share no state. A pz_nodekeys is not locked: the E2E context
 * serialises rotation against use. A pz_peerdir is thread-safe.
 */
#ifndef PZ_CORE_NODEKEYS_H
#define PZ_CORE_NODEKEYS_H

#include <stddef.h>
#include <stdint.h>

#include <prozsec/plugin.h>

#include "crypto.h"

/* Generate the node's Ed25519 signing key and X25519 E2E key in DIR (files written 0600,
 * atomically; refuses to overwrite existing ones unless FORCE). Public keys out. */
int pz_nodekeys_generate(const char *dir, int force, uint8_t sign_pub[32], uint8_t e2e_pub[32], pz_err *err);

/* Contract of pz_nodekeys_generate, in full: DIR is created (0700) when
 * missing. Writes sign.key, sign.pub, e2e.key and e2e.pub. Without FORCE,
 * PZ_EEXIST when sign.key or e2e.key exists (nothing is written). With
 * FORCE the four files are replaced and every rotated key in DIR/e2e.d is
 * destroyed (they were signed by the old signing key). SIGN_PUB and E2E_PUB
 * may be NULL. Returns 0, PZ_EEXIST, PZ_EIO (detail in ERR), PZ_ECRYPTO or
 * PZ_ENOMEM. */

/* --- key ids and key records -------------------------------------------- */

#define PZ_KEY_ID_LEN 8
#define PZ_KEYREC_LEN 128

/* The id of an X25519 E2E public key: the first 8 bytes of
 * SHA-256("prozsec-e2e-v1 key id" || 0x00 || PUB). */
void pz_e2e_key_id(const uint8_t pub[PZ_X25519_LEN], uint8_t id[PZ_KEY_ID_LEN]);

/* The content of a key record: a rotated receiving key and its validity. */
typedef struct pz_keyrec {
    uint8_t key_id[PZ_KEY_ID_LEN];
    uint8_t pub[PZ_X25519_LEN];
    uint64_t not_before_ms; /* creation */
    uint64_t not_after_ms;  /* senders stop using it; the owner opens until not_after + grace */
} pz_keyrec;

/* Encode REC (its key_id is recomputed from pub) and sign it with KEY into
 * OUT (PZ_KEYREC_LEN bytes). Returns 0, PZ_EINVAL or PZ_ECRYPTO. */
int pz_keyrec_sign(pz_sign_key *key, const pz_keyrec *rec, uint8_t out[PZ_KEYREC_LEN]);

/* Parse and verify a record (BUF: LEN bytes, raw or the PEM text of a .rec
 * file) against the signer's KEY. Returns 0 with *OUT filled, PZ_EINVAL
 * (malformed, wrong magic/version/KEM, key id not matching the key,
 * not_before >= not_after) or PZ_ECRYPTO (bad signature); ERR says which. */
int pz_keyrec_verify(pz_verify_key *key, const uint8_t *buf, size_t len, pz_keyrec *out, pz_err *err);

/* --- the node's own keys ------------------------------------------------ */

/* A receiving key the node holds (the long-term key or a rotated one). */
typedef struct pz_recv_key {
    uint8_t key_id[PZ_KEY_ID_LEN];
    uint8_t pub[PZ_X25519_LEN];
    uint8_t *sk;            /* secure memory; NULL once destroyed */
    int long_term;          /* e2e.key: no validity window, never rotated away */
    uint64_t not_before_ms; /* rotated keys: from the record */
    uint64_t not_after_ms;
    uint8_t record[PZ_KEYREC_LEN]; /* rotated keys: the signed record */
} pz_recv_key;

typedef struct pz_nodekeys pz_nodekeys;

/* Load the keys in DIR: sign.key and e2e.key (mandatory), and every valid
 * record in DIR/e2e.d with its private key when still there. Records that
 * do not verify with sign.key are ignored (ERR is not set for them; they
 * are counted in pz_nodekeys_ignored). Returns 0, PZ_ENOENT (missing key
 * file), PZ_EPERM (a private key file readable by group or others), PZ_EIO,
 * PZ_EINVAL (malformed key file), PZ_ECRYPTO or PZ_ENOMEM. */
int pz_nodekeys_load(const char *dir, pz_nodekeys **out, pz_err *err);
void pz_nodekeys_free(pz_nodekeys *keys);

pz_sign_key *pz_nodekeys_sign_key(const pz_nodekeys *keys);
const uint8_t *pz_nodekeys_sign_pub(const pz_nodekeys *keys);
/* The long-term E2E key (e2e.key). */
const pz_recv_key *pz_nodekeys_long_term(const pz_nodekeys *keys);
/* Records in e2e.d ignored at load (bad signature or malformed). */
size_t pz_nodekeys_ignored(const pz_nodekeys *keys);
/* Number of keys held, and key I (0 is the long-term key, then rotated
 * keys oldest first); destroyed keys stay listed with sk == NULL. */
size_t pz_nodekeys_count(const pz_nodekeys *keys);
const pz_recv_key *pz_nodekeys_at(const pz_nodekeys *keys, size_t i);

/* The key a sender should use at NOW_MS: the newest rotated key with
 * not_before <= now < not_after, else the long-term key. Never NULL. */
const pz_recv_key *pz_nodekeys_current(const pz_nodekeys *keys, uint64_t now_ms);

/* Look a receiving key up by KEY_ID for opening at NOW_MS. Returns 0 with
 * *OUT (a key whose sk is usable), PZ_ENOENT (no such key id) or PZ_ESTALE
 * (a rotated key retired past its grace: now >= not_after + GRACE_MS, or
 * already destroyed). */
int pz_nodekeys_find(const pz_nodekeys *keys, const uint8_t key_id[PZ_KEY_ID_LEN], uint64_t now_ms,
                     uint64_t grace_ms, const pz_recv_key **out);

/* Rotate at NOW_MS: when INTERVAL_MS > 0 and no rotated key was created in
 * the last INTERVAL_MS, create one (valid INTERVAL_MS from now; private key
 * and signed record written to e2e.d). Then destroy every rotated key with
 * now >= not_after + GRACE_MS: wipe it in memory, overwrite and unlink its
 * file (the record stays as a tombstone so a late envelope is reported as
 * "retired", not "unknown"; only the newest 64 tombstones are kept).
 * *CREATED (may be NULL) gets 1 when a key was created, *DESTROYED (may be
 * NULL) the number destroyed. Returns 0, PZ_EIO, PZ_ECRYPTO or PZ_ENOMEM. */
int pz_nodekeys_rotate(pz_nodekeys *keys, uint64_t now_ms, uint64_t interval_ms, uint64_t grace_ms, int *created,
                       size_t *destroyed, pz_err *err);

/* --- peers' public keys ------------------------------------------------- */

/* A peer's keys as learnt from its certificate: immutable, refcounted. */
typedef struct pz_peer pz_peer;

pz_peer *pz_peer_ref(pz_peer *peer);
void pz_peer_unref(pz_peer *peer);
const char *pz_peer_node_id(const pz_peer *peer);
/* The peer's Ed25519 verification key (imported once). */
pz_verify_key *pz_peer_verify_key(const pz_peer *peer);
const uint8_t *pz_peer_e2e_pub(const pz_peer *peer);

typedef struct pz_peerdir pz_peerdir;

/* Most key records remembered per peer (the newest are kept). */
#define PZ_PEERDIR_RECORDS_MAX 8

int pz_peerdir_new(pz_peerdir **out);
void pz_peerdir_free(pz_peerdir *dir);

/* Add or replace NODE_ID's keys (the caller validated the certificate they
 * come from). Replacing a peer whose signing key changed drops its
 * records. Returns 0, PZ_EINVAL (bad node id), PZ_ECRYPTO (GnuTLS refused
 * SIGN_PUB) or PZ_ENOMEM. */
int pz_peerdir_add(pz_peerdir *dir, const char *node_id, const uint8_t sign_pub[PZ_ED25519_PUB_LEN],
                   const uint8_t e2e_pub[PZ_X25519_LEN], pz_err *err);

/* Add a signed key record (raw or PEM) for the known peer NODE_ID after
 * verifying it with the peer's signing key. Records already expired at
 * NOW_MS are refused (PZ_ESTALE). Returns 0, PZ_ENOENT (unknown peer),
 * PZ_EINVAL, PZ_ECRYPTO or PZ_ESTALE. */
int pz_peerdir_add_record(pz_peerdir *dir, const char *node_id, const uint8_t *rec, size_t len,
                          uint64_t now_ms, pz_err *err);

/* A new reference to NODE_ID's entry, or NULL when unknown. */
pz_peer *pz_peerdir_get(pz_peerdir *dir, const char *node_id);

/* The key to seal to NODE_ID at NOW_MS: the newest verified record valid
 * at NOW_MS, else the certificate's long-term key. Returns 0 or PZ_ENOENT. */
int pz_peerdir_seal_key(pz_peerdir *dir, const char *node_id, uint64_t now_ms, uint8_t pub[PZ_X25519_LEN],
                        uint8_t key_id[PZ_KEY_ID_LEN]);

#endif /* PZ_CORE_NODEKEYS_H */
