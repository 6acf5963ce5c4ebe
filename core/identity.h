/* core/identity.h — the identity manager: who a node id is (node type,
 * roles, public signing and E2E keys, pinned TLS keys) and who vouched for
 * it, from the peer directory file named in configuration and from
 * certificates; look-up by node id or by pinned key.
 *
 * Peer directory format (YAML, docs/internals/auth.md):
 *
 *   peers:
 *     - node_id: validator-1          # [A-Za-z0-9._-]{1,64}, unique
 *       node_type: validator          # optional
 *       roles: [validator, rpc]       # optional, at most PZ_AUTH_MAX_ROLES
 *       sign_pub: <32 bytes>          # optional Ed25519 RPC signing key
 *       e2e_pub: <32 bytes>           # optional X25519 E2E key
 *       spki_sha256: <32 bytes>       # optional key pin: SHA-256 of the TLS SubjectPublicKeyInfo
 *       tls_ed25519: <32 bytes>       # optional key pin: the TLS key itself, when Ed25519
 *
 * 32-byte values are hex (64 digits) or base64 (standard or URL alphabet,
 * padding optional), optionally prefixed "sha256//" (curl's pinnedpubkey
 * form). The file must not be writable by group or others: it grants
 * roles. Every error names FILE:LINE:COL and the key path.
 *
 * This file is also compiled into the key-pin and cert-auth plugins with
 * PZ_IDENTITY_STANDALONE defined: that build leaves out the parts needing
 * the core's configuration and PKI modules, which a plugin cannot call.
 *
 * Thread safety: a pz_identities may be read (lookup) from several threads
 * while another thread loads or puts; each call sees either the old or the
 * new directory.
 */
#ifndef PZ_CORE_IDENTITY_H
#define PZ_CORE_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#include <prozsec/auth.h>
#include <prozsec/plugin.h>

/* One identity, owned by value. */
typedef struct pz_identity_rec {
    char node_id[PZ_NODE_ID_MAX + 1];
    char node_type[PZ_NODE_TYPE_MAX + 1]; /* "" when unknown */
    char roles[PZ_AUTH_MAX_ROLES][PZ_AUTH_ROLE_MAX + 1];
    size_t n_roles;
    uint8_t sign_pub[32]; /* Ed25519 RPC signing key */
    int has_sign_pub;
    uint8_t e2e_pub[32]; /* X25519 E2E key */
    int has_e2e_pub;
    uint8_t spki_sha256[32]; /* pin: SHA-256 of the TLS SubjectPublicKeyInfo (DER) */
    int has_spki_sha256;
    uint8_t tls_ed25519[32]; /* pin: the TLS public key when it is Ed25519 */
    int has_tls_ed25519;
    char source[192]; /* who vouched: "directory PATH:LINE:COL", "certificate", a provider name */
} pz_identity_rec;

/* Kinds of key an identity can be found by. */
typedef enum pz_identity_key {
    PZ_IDKEY_SPKI_SHA256 = 1,
    PZ_IDKEY_TLS_ED25519 = 2,
    PZ_IDKEY_SIGN_PUB = 3,
} pz_identity_key;

typedef struct pz_identities pz_identities;

/* 1 when TEXT is a valid node id ([A-Za-z0-9._-]{1,64}, not starting with
 * "." or "-", as pz_node_id_valid in core/certval.h), else 0. */
int pz_identity_valid_node_id(const char *text);

/* 1 when TEXT is a valid node type or role ([A-Za-z0-9._:-], 1 to MAX
 * bytes), else 0. */
int pz_identity_valid_name(const char *text, size_t max);

/* Decode a 32-byte value TEXT: 64 hex digits, or base64 (standard or URL
 * alphabet, padding optional), optionally prefixed "sha256//". Returns 0,
 * or PZ_EINVAL when TEXT is neither, PZ_ERANGE when it decodes to another
 * length (*GOT_LEN, may be NULL, then has the length). */
int pz_identity_parse_key32(const char *text, uint8_t out[32], size_t *got_len);

/* Add ROLE to REC unless present. Returns 0, PZ_EINVAL (invalid role) or
 * PZ_ERANGE (already PZ_AUTH_MAX_ROLES roles). */
int pz_identity_rec_add_role(pz_identity_rec *rec, const char *role);

/* The key pins of the certificate DER (LEN bytes, borrowed): the SHA-256 of
 * its SubjectPublicKeyInfo into SPKI_SHA256, and, when its key is Ed25519,
 * the raw 32-byte key into ED25519 with *IS_ED25519 = 1 (else 0). Parses
 * only; checks no signature, time or trust. Returns 0, PZ_EINVAL (not an
 * X.509 certificate; detail in ERR) or PZ_ENOMEM. */
int pz_identity_cert_keys(const uint8_t *der, size_t len, uint8_t spki_sha256[32], uint8_t ed25519[32],
                          int *is_ed25519, pz_err *err);

/* A new, empty identity manager. Returns 0 or PZ_ENOMEM. */
int pz_identities_new(pz_identities **out, pz_err *err);

/* Free IDS; NULL is a no-op. */
void pz_identities_free(pz_identities *ids);

/* Load the peer directory file PATH, replacing the directory identities of
 * IDS as a whole; on error the previous directory stays and ERR says
 * "PATH:LINE:COL: peers[I].key: ..." (PZ_ECONFIG), "PATH: ..." (PZ_EIO,
 * PZ_EPERM when the file is writable by group or others). Identities put
 * with pz_identities_put are kept. Returns 0 or a PZ_E* code. */
int pz_identities_load_directory(pz_identities *ids, const char *path, pz_err *err);

/* The directory file last loaded, or NULL. Borrowed until the next load. */
const char *pz_identities_directory(const pz_identities *ids);

/* Record REC (copied), an identity learnt at run time (from a certificate
 * or an authentication), replacing an earlier one for the same node id.
 * Directory entries take precedence in look-ups; a learnt identity only
 * fills what the directory leaves empty. Returns 0, PZ_EINVAL (invalid node
 * id) or PZ_ENOMEM. */
int pz_identities_put(pz_identities *ids, const pz_identity_rec *rec, pz_err *err);

/* Look NODE_ID up into OUT (copied). Returns 0 or PZ_ENOENT. */
int pz_identities_lookup(const pz_identities *ids, const char *node_id, pz_identity_rec *out);

/* Look up the identity whose key of kind KIND is KEY (32 bytes), among
 * directory entries. Returns 0 or PZ_ENOENT. */
int pz_identities_lookup_key(const pz_identities *ids, pz_identity_key kind, const uint8_t key[32],
                             pz_identity_rec *out);

/* Number of identities (directory and learnt, each node id once). */
size_t pz_identities_count(const pz_identities *ids);

#ifndef PZ_IDENTITY_STANDALONE
#include "conf.h"

/* Build an identity manager from the root configuration map ROOT, section
 *   identity:
 *     directory: PATH     # optional peer directory file
 * ROOT may be NULL or lack the section: an empty manager. Returns 0,
 * PZ_ECONFIG, PZ_EIO, PZ_EPERM or PZ_ENOMEM with ERR set. */
int pz_identities_new_from_conf(const pz_conf *root, pz_identities **out, pz_err *err);

/* Fill OUT from the prozsec node certificate DER (LEN bytes): node id,
 * node type, the signing and E2E keys of the prozsec extension when
 * present, and the SubjectPublicKeyInfo pin; source "certificate". Does NOT
 * validate the certificate: call it on a chain the validation service
 * accepted. Returns 0, PZ_EINVAL (not a node certificate) or PZ_ENOMEM. */
int pz_identity_rec_from_cert(const uint8_t *der, size_t len, pz_identity_rec *out, pz_err *err);
#endif

#endif /* PZ_CORE_IDENTITY_H */
