/* core/pki.h — the node PKI: CA creation, node certificate issuance (and
 * self-signed node certificates for key pinning without a CA),
 * revocation, and reading a node certificate's identity and embedded keys.
 *
 * Layout of a CA directory (see docs/pki.md): ca.crt, ca.key (0600),
 * ca.crl (signed, possibly empty), ca.yaml (settings and CRL number).
 * Layout of a node directory: node.crt, node.key (0600) and the key files
 * written by pz_nodekeys_generate() (core/nodekeys.h).
 *
 * Every writer stages its files in a private temporary directory next to
 * the destination, fsyncs them and then moves them into place, so a failure
 * leaves nothing half-written; existing files are never replaced unless
 * FORCE is set.
 *
 * Thread safety: functions here share no state; they may run on different
 * threads at once, but two writers on the same directory race (revocation
 * takes an flock on the CA directory).
 */
#ifndef PZ_CORE_PKI_H
#define PZ_CORE_PKI_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct pz_cert_info { char node_id[65]; char node_type[33]; uint8_t sign_pub[32];
    uint8_t e2e_pub[32]; int has_keys; } pz_cert_info;
/* Parse a DER certificate's node identity and embedded keys (no validation). */
int pz_cert_node_info(const uint8_t *der, size_t len, pz_cert_info *out, pz_err *err);
/* Read a PEM or DER certificate file into DER (g_free). */
int pz_cert_load_der(const char *path, uint8_t **der, size_t *len, pz_err *err);

/* Contract of the two functions above, in full:
 *
 * pz_cert_node_info: DER is borrowed. Fills OUT from the certificate's
 * subject CN "node:<id>" and OU "<type>:nodes" (both validated, see
 * pz_node_id_valid in core/certval.h) and from the node-keys extension (PZ_NODE_KEYS_OID) when
 * present (has_keys = 1). It checks no signature, time or trust: use
 * core/certval.h for that. Returns 0, PZ_EINVAL (not a certificate, no or
 * malformed node id or type, malformed key extension; detail in ERR) or
 * PZ_ENOMEM.
 *
 * pz_cert_load_der: reads PATH (at most 1 MiB); a PEM file yields its first
 * CERTIFICATE block. *DER is set to a g_malloc'd buffer the caller frees
 * with g_free. Returns 0, PZ_ENOENT/PZ_EIO (file), PZ_EINVAL (no
 * certificate in it) or PZ_ENOMEM. */

/* Key algorithms the PKI generates. */
typedef enum pz_pki_key {
    PZ_PKI_KEY_ECDSA_P384 = 0, /* the default; signatures with SHA-384 */
    PZ_PKI_KEY_ECDSA_P521,     /* signatures with SHA-512 */
    PZ_PKI_KEY_RSA_3072,       /* signatures with SHA-384 */
    PZ_PKI_KEY_RSA_4096,       /* signatures with SHA-384 */
} pz_pki_key;

/* Parse "ecdsa-p384", "ecdsa-p521", "rsa-3072" or "rsa-4096" into *OUT.
 * Returns 0 or PZ_EINVAL (message names the accepted values). */
int pz_pki_key_parse(const char *name, pz_pki_key *out, pz_err *err);
/* The name pz_pki_key_parse accepts for KEY; "unknown" if out of range. */
const char *pz_pki_key_name(pz_pki_key key);

/* Options of pz_ca_init. Strings are borrowed. */
typedef struct pz_ca_init_opts {
    const char *dir;     /* created (0700) when missing */
    const char *org;     /* organisation (O); NULL = "ProzChain"; 1..64 printable chars */
    pz_pki_key key;      /* the CA's key */
    unsigned days;       /* CA validity; 0 = 3650 */
    unsigned node_days;  /* default validity of issued certificates; 0 = 365 */
    int force;           /* replace an existing CA in DIR */
} pz_ca_init_opts;

/* Create a self-signed CA in O->dir: ca.crt, ca.key (0600), an empty signed
 * ca.crl (number 1) and ca.yaml. NOW_S is the time of issue (seconds since
 * the epoch). Returns 0, PZ_EINVAL (bad option), PZ_EEXIST (a CA file exists
 * and !force), PZ_EIO, PZ_ECRYPTO or PZ_ENOMEM; on error nothing was
 * written. */
int pz_ca_init(const pz_ca_init_opts *o, uint64_t now_s, pz_err *err);

/* Options of pz_cert_issue. Strings are borrowed; NULL means absent. */
typedef struct pz_cert_issue_opts {
    const char *ca_dir;
    const char *node_id;   /* see pz_node_id_valid (core/certval.h) */
    const char *node_type; /* see pz_node_type_valid (core/certval.h) */
    const char *out_dir;   /* created (0700) when missing */
    int key_set;           /* 0: use the CA's node_key setting; 1: use KEY */
    pz_pki_key key;
    unsigned days;         /* 0: the CA's node_days setting */
    const char *country;   /* C: two letters A-Z */
    const char *state;     /* ST: 1..128 printable chars */
    const char *locality;  /* L: 1..128 printable chars */
    int force;             /* replace existing node files in OUT_DIR */
} pz_cert_issue_opts;

/* Issue a node certificate signed by the CA in O->ca_dir into O->out_dir:
 * node.crt, node.key (0600) and the node's Ed25519/X25519 key files
 * (pz_nodekeys_generate). The certificate: CN "node:<id>", O of the CA,
 * OU "<type>:nodes", optional C/ST/L, SAN DNS "<id>.nodes.prozchain.io" and
 * URI "prozchain://<id>", KU digitalSignature+keyEncipherment, EKU
 * serverAuth+clientAuth, a random positive 128-bit serial, validity from
 * NOW_S - 300 s to NOW_S + days, and the non-critical node-keys extension.
 * Returns 0, PZ_EINVAL, PZ_ENOENT (no CA), PZ_EEXIST (a node file exists and
 * !force), PZ_EIO, PZ_ECRYPTO or PZ_ENOMEM; on error nothing was written. */
int pz_cert_issue(const pz_cert_issue_opts *o, uint64_t now_s, pz_err *err);

/* Make a self-signed node certificate in O->out_dir, for peers that pin
 * its key (key-pin) instead of trusting a CA: node.crt, node.key (0600)
 * and the node's Ed25519/X25519 key files, with exactly the fields of
 * pz_cert_issue (O->ca_dir is ignored; O "ProzChain"; the key is O->key
 * when key_set, else ECDSA P-384; validity O->days, else 365) but signed by
 * its own key. SPKI_SHA256 receives the SHA-256 of its
 * SubjectPublicKeyInfo (the pin: "sha256//" + base64), SIGN_PUB and
 * E2E_PUB the public keys embedded in it (each may be NULL). Returns as
 * pz_cert_issue, without PZ_ENOENT; on error nothing was written. */
int pz_cert_self_sign(const pz_cert_issue_opts *o, uint64_t now_s, uint8_t spki_sha256[32], uint8_t sign_pub[32],
                      uint8_t e2e_pub[32], pz_err *err);

/* Add the certificate in CERT_PATH (PEM or DER; must be issued by the CA
 * in CA_DIR) to CA_DIR/ca.crl, bump the CRL number and re-sign; ca.crl and
 * ca.yaml are replaced together. Returns 0, PZ_EINVAL (not issued by this
 * CA), PZ_EEXIST (already revoked), PZ_ENOENT, PZ_EIO, PZ_ECRYPTO or
 * PZ_ENOMEM. */
int pz_cert_revoke(const char *ca_dir, const char *cert_path, uint64_t now_s, pz_err *err);

/* Describe the certificate DER for `prozsec cert show`: node id and type,
 * subject, issuer, serial, validity, key, fingerprints, embedded keys in
 * hex. *TEXT is g_malloc'd (g_free). Returns 0, PZ_EINVAL or PZ_ENOMEM. */
int pz_cert_describe(const uint8_t *der, size_t len, char **text, pz_err *err);

#endif /* PZ_CORE_PKI_H */
