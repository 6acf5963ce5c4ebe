/* core/certval.h — the certificate validation service: every path that
 * accepts a peer certificate (the tls transport, the auth chain,
 * `prozsec cert verify`) asks a pz_certval whether a chain is acceptable
 * and, if so, which node it names.
 *
 * A pz_certval holds a set of trusted CAs and CRLs and a policy (key floors,
 * required EKU, chain depth). pz_certval_verify checks, in this order:
 * chain shape (non-empty, parseable, depth), algorithms of every presented
 * certificate (RSA/ECDSA key floors, curve, signature hash), time validity
 * of every presented certificate against the caller's clock, the chain to a
 * trusted CA (GnuTLS trust list: signatures, CA constraints, CRLs), the
 * trusted CA's own validity, then on the leaf: basic constraints, key usage,
 * EKU for the purpose, node id (CN "node:<id>" and SAN URI
 * "prozchain://<id>" must agree), node type (OU "<type>:nodes") and the
 * node-keys extension. The first failed check gives the refusal's reason
 * code (pz_certval_reason); docs/internals/certval.md has the table.
 *
 * Depends only on GnuTLS, GLib and core/err.{c,h}, so plugins can link it
 * (libpzcertval.la).
 *
 * Thread safety: pz_certval_verify may run on any number of threads at
 * once, also during pz_certval_reload, which swaps the CA/CRL set
 * atomically (a verify in progress finishes with the set it started with).
 * pz_certval_free must not race with anything else on the same object.
 */
#ifndef PZ_CORE_CERTVAL_H
#define PZ_CORE_CERTVAL_H

#include <stddef.h>
#include <stdint.h>

#include <gnutls/x509.h>

#include "err.h"

/* The OID of the non-critical extension that carries a node's public
 * Ed25519 signing key and X25519 E2E key: arc 2.25.961848862481022722 is
 * the project's (UUID 00000000-0000-0000-0d59-2c71bfcb7f02, see
 * docs/pki.md for why the arc fits in 63 bits), .1 is this extension. Its
 * value is DER: SEQUENCE { OCTET STRING (32) sign_pub, OCTET STRING (32)
 * e2e_pub }. */
#define PZ_NODE_KEYS_OID "2.25.961848862481022722.1"
#define PZ_NODE_KEYS_EXT_LEN 70 /* DER length of the extension value */

/* Prefixes and suffixes of the identity fields of a node certificate. */
#define PZ_NODE_CN_PREFIX "node:"
#define PZ_NODE_URI_PREFIX "prozchain://"
#define PZ_NODE_OU_SUFFIX ":nodes"
#define PZ_NODE_DNS_SUFFIX ".nodes.prozchain.io"

/* 1 if ID is a valid node id: 1..64 characters of [A-Za-z0-9._-], not
 * starting with '.' or '-'; else 0. NULL gives 0. Thread-safe. */
int pz_node_id_valid(const char *id);
/* 1 if TYPE is a valid node type: 1..32 characters of [a-z0-9_-]; else 0. */
int pz_node_type_valid(const char *type);

/* Encode the node-keys extension value into OUT (PZ_NODE_KEYS_EXT_LEN
 * bytes). Never fails. */
void pz_node_keys_ext_encode(const uint8_t sign_pub[32], const uint8_t e2e_pub[32],
                             uint8_t out[PZ_NODE_KEYS_EXT_LEN]);
/* Decode the extension value DER (exactly the encoding above, nothing
 * else accepted). Returns 0 or PZ_EINVAL. */
int pz_node_keys_ext_decode(const uint8_t *der, size_t len, uint8_t sign_pub[32], uint8_t e2e_pub[32]);

/* Reasons for a refusal. Values are stable (they are logged and may cross
 * the auth ABI as pz_auth_result.reason_code); new ones are appended. */
typedef enum pz_certval_reason {
    PZ_CV_OK = 0,
    PZ_CV_NO_CERT = 1,           /* empty chain */
    PZ_CV_MALFORMED = 2,         /* a certificate does not parse */
    PZ_CV_CHAIN_TOO_LONG = 3,    /* more certificates than max_depth */
    PZ_CV_UNTRUSTED = 4,         /* does not chain to a trusted CA (unknown issuer, bad signature, issuer not a CA) */
    PZ_CV_EXPIRED = 5,           /* a certificate (or the trusted CA) is past notAfter */
    PZ_CV_NOT_YET_VALID = 6,     /* a certificate (or the trusted CA) is before notBefore */
    PZ_CV_REVOKED = 7,           /* listed on a trusted CRL */
    PZ_CV_WEAK_RSA = 8,          /* RSA modulus below min_rsa_bits */
    PZ_CV_WEAK_ECDSA = 9,        /* ECDSA curve allowed by policy but below a raised min_ecdsa_bits */
    PZ_CV_WEAK_CURVE = 10,       /* ECDSA on a curve under 384 bits (P-192, P-224, P-256) */
    PZ_CV_UNSUPPORTED_KEY = 11,  /* key algorithm other than RSA and ECDSA P-384/P-521 */
    PZ_CV_WEAK_HASH = 12,        /* signature with MD5, SHA-1, SHA-224 or an unknown hash */
    PZ_CV_NO_EKU = 13,           /* leaf lacks the EKU the purpose needs (clientAuth/serverAuth/extra) */
    PZ_CV_BAD_KEY_USAGE = 14,    /* leaf key usage present without digitalSignature */
    PZ_CV_LEAF_IS_CA = 15,       /* leaf has basicConstraints CA:TRUE */
    PZ_CV_BAD_NODE_ID = 16,      /* CN missing, repeated, not "node:<id>" or id invalid */
    PZ_CV_NODE_ID_MISMATCH = 17, /* SAN URI "prozchain://<id>" missing, repeated or not the CN's id */
    PZ_CV_BAD_NODE_TYPE = 18,    /* OU missing, repeated or not "<type>:nodes" */
    PZ_CV_BAD_NODE_KEYS = 19,    /* node-keys extension malformed or critical */
} pz_certval_reason;

/* A short stable token for REASON ("untrusted", "expired", ...), for logs
 * and metrics labels. Never NULL. */
const char *pz_certval_reason_name(pz_certval_reason reason);

/* Purposes: what the certificate is being accepted as. OR them to require
 * both (`prozsec cert verify` does). */
#define PZ_CERTVAL_CLIENT 1 /* requires EKU clientAuth */
#define PZ_CERTVAL_SERVER 2 /* requires EKU serverAuth */

/* Options. Everything is borrowed for the duration of pz_certval_new /
 * pz_certval_reload only. */
typedef struct pz_certval_opts {
    const char *const *ca_files;  /* PEM (bundles) or DER files of trusted CAs; at least one */
    size_t n_ca_files;
    const char *const *crl_files; /* PEM or DER CRLs, each must be signed by a trusted CA */
    size_t n_crl_files;
    unsigned min_rsa_bits;        /* 0 = 2048; lower values refused */
    unsigned min_ecdsa_bits;      /* 0 = 384; lower values refused */
    const char *required_eku;     /* an extra EKU OID the leaf must carry; NULL = none */
    unsigned max_depth;           /* most certificates a peer may present (leaf + intermediates); 0 = 4; at most 16 */
} pz_certval_opts;

/* The answer of pz_certval_verify. */
typedef struct pz_certval_result {
    int valid;                   /* 1 accepted, 0 refused */
    pz_certval_reason reason;    /* PZ_CV_OK when valid */
    char reason_text[192];       /* human detail, e.g. "certificate 0: RSA key of 1024 bits, policy minimum 2048" */
    /* When valid (and node_id also when refused after the identity was read): */
    char node_id[65];
    char node_type[33];
    uint8_t sign_pub[32];
    uint8_t e2e_pub[32];
    int has_keys;                /* 1 when the node-keys extension was present */
    uint8_t leaf_sha256[32];     /* SHA-256 of the leaf DER (set whenever the leaf parsed) */
    uint64_t not_after;          /* leaf notAfter, seconds since the epoch */
} pz_certval_result;

typedef struct pz_certval pz_certval;

/* Create a validation service from OPTS into *OUT (free with
 * pz_certval_free). Every CA must be a CA certificate meeting the key
 * floors; every CRL must parse and be signed by one of the CAs. Returns 0,
 * PZ_EINVAL (bad option: a floor below the minimum, no CA, depth out of
 * range), PZ_ENOENT/PZ_EIO (a file), PZ_ECRYPTO (a CA or CRL refused) or
 * PZ_ENOMEM; detail (naming the file) in ERR. */
int pz_certval_new(const pz_certval_opts *opts, pz_certval **out, pz_err *err);

/* Re-read CAs, CRLs and policy from OPTS and swap them in atomically; on
 * error the old set stays and the error is returned as by pz_certval_new. */
int pz_certval_reload(pz_certval *cv, const pz_certval_opts *opts, pz_err *err);

/* Free CV (NULL allowed). */
void pz_certval_free(pz_certval *cv);

/* Validate the chain DER[0..N-1] (leaf first, then intermediates; borrowed)
 * at time NOW_S (seconds since the epoch) for PURPOSE (PZ_CERTVAL_CLIENT
 * and/or PZ_CERTVAL_SERVER). Always fills OUT. Returns 0 with OUT->valid
 * set (a refusal is a result), or PZ_EINVAL (NULL arguments, PURPOSE 0) or
 * PZ_ENOMEM (then OUT->valid is 0). */
int pz_certval_verify(pz_certval *cv, const uint8_t *const *der, const size_t *len, size_t n, uint64_t now_s,
                      int purpose_client_or_server, pz_certval_result *out);

/* Internal (core/pki.c, core/certval.c): read the node identity of CRT into
 * OUT->node_id, node_type, sign_pub/e2e_pub/has_keys: CN "node:<id>", OU
 * "<type>:nodes", the node-keys extension and, when CHECK_SAN, exactly one
 * SAN URI "prozchain://<id>" naming the same id. Returns PZ_CV_OK or the
 * refusal (with OUT->reason/reason_text set). Checks nothing else. */
pz_certval_reason pz__certval_identity(gnutls_x509_crt_t crt, int check_san, pz_certval_result *out);

/* Internal: the raw value of the subject attribute OID (no RFC 4514
 * escaping) into BUF: 0 when exactly one is present, a UTF8String,
 * PrintableString or IA5String that fits BUFSZ with no NUL; 1 when absent;
 * -1 otherwise. */
int pz__certval_subject_attr(gnutls_x509_crt_t crt, const char *oid, char *buf, size_t bufsz);

/* Internal (core/pki.c, core/certval.c): 1 if CRL's signature verifies
 * with one of CAS[0..N_CAS-1], ignoring its thisUpdate/nextUpdate; else 0. */
int pz__certval_crl_signed_by(gnutls_x509_crl_t crl, const gnutls_x509_crt_t *cas, unsigned n_cas);

#endif /* PZ_CORE_CERTVAL_H */
