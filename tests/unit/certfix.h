/* tests/unit/certfix.h — certificate fixtures generated at run time with
 * GnuTLS: CAs, node certificates good and bad (foreign CA, expired, not yet
 * valid, RSA-1024, ECDSA P-256, SHA-1-signed, revoked, no clientAuth,
 * CN/SAN mismatch, ...), CRLs. Used by the unit tests and, through the
 * `tests/certfix DIR` program, by the integration tests.
 *
 * Test code only: aborts nothing, returns GnuTLS error codes (< 0).
 */
#ifndef PZ_TESTS_CERTFIX_H
#define PZ_TESTS_CERTFIX_H

#include <stddef.h>
#include <stdint.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

typedef enum pz_fix_key {
    PZ_FIX_P384 = 0, /* the default */
    PZ_FIX_P521,
    PZ_FIX_P256,
    PZ_FIX_RSA1024,
    PZ_FIX_RSA2048,
    PZ_FIX_RSA3072,
    PZ_FIX_ED25519,
} pz_fix_key;

/* A CA: certificate and key (owned). */
typedef struct pz_fix_ca {
    gnutls_x509_crt_t crt;
    gnutls_x509_privkey_t key;
} pz_fix_ca;

/* How to make a node certificate. Zero means "the default" everywhere. */
typedef struct pz_fix_leaf_opts {
    const char *node_id;          /* default "node-1" */
    const char *node_type;        /* default "validator" */
    const char *cn;               /* CN override (default "node:<node_id>"); "" = no CN */
    const char *ou;               /* OU override (default "<type>:nodes"); "" = no OU */
    const char *san_id;           /* id in SAN URI prozchain://<san_id> (default node_id); "" = no URI */
    pz_fix_key key;
    gnutls_digest_algorithm_t hash; /* default SHA-384 */
    int64_t not_before;           /* absolute; 0 = now - 1 hour */
    int64_t not_after;            /* absolute; 0 = now + 30 days */
    int no_client_auth;           /* omit EKU clientAuth */
    int no_server_auth;           /* omit EKU serverAuth */
    int no_eku;                   /* omit the EKU extension altogether */
    int is_ca;                    /* basicConstraints CA:TRUE */
    const uint8_t *sign_pub;      /* with E2E_PUB: embed the node-keys extension */
    const uint8_t *e2e_pub;
    const uint8_t *raw_keys_ext;  /* embed this value as the node-keys extension instead */
    size_t raw_keys_ext_len;
    int keys_ext_critical;        /* mark the node-keys extension critical */
    unsigned key_usage;           /* key usage bits (GNUTLS_KEY_*); 0 = digitalSignature + keyEncipherment */
    const char *extra_uri;        /* a further SAN URI (e.g. a second prozchain:// one) */
} pz_fix_leaf_opts;

/* Make a self-signed CA with KEY, O=ORG, valid from NOW - 1 day to NOW +
 * 10 years (or NOT_AFTER when non-zero), signed with HASH (0 = SHA-384). */
int pz_fix_ca_new(pz_fix_ca *ca, pz_fix_key key, const char *org, int64_t now, int64_t not_after,
                  gnutls_digest_algorithm_t hash);
void pz_fix_ca_clear(pz_fix_ca *ca);

/* Make an intermediate CA signed by PARENT. */
int pz_fix_ca_sub(pz_fix_ca *ca, const pz_fix_ca *parent, pz_fix_key key, const char *org, int64_t now);

/* Make a node certificate signed by CA per O (NULL = defaults) at NOW.
 * *CRT and *KEY are new objects the caller deinits (KEY may be NULL). */
int pz_fix_leaf(const pz_fix_ca *ca, const pz_fix_leaf_opts *o, int64_t now, gnutls_x509_crt_t *crt,
                gnutls_x509_privkey_t *key);

/* A CRL of CA listing REVOKED[0..N-1], this update NOW - 60, next update
 * NOW + 30 days, as FMT into *OUT (gnutls_free). */
int pz_fix_crl(const pz_fix_ca *ca, const gnutls_x509_crt_t *revoked, size_t n, int64_t now,
               gnutls_x509_crt_fmt_t fmt, gnutls_datum_t *out);

/* CRT as DER / PEM into *OUT (gnutls_free). */
int pz_fix_export(gnutls_x509_crt_t crt, gnutls_x509_crt_fmt_t fmt, gnutls_datum_t *out);

/* Write PEM file PATH with mode MODE: the certificate or the key. */
int pz_fix_write_crt(const char *path, gnutls_x509_crt_t crt);
int pz_fix_write_key(const char *path, gnutls_x509_privkey_t key);

/* Write the standard set into DIR (which must exist) at NOW:
 *   ca.crt ca.key ca.crl          trusted CA (P-384) and its CRL (revokes "revoked")
 *   foreign-ca.crt foreign-ca.key another CA, not trusted
 *   NAME.crt NAME.key for NAME in pz_fix_set_names: valid "server"
 *   (node server-1) and "client" (node client-1), then one defect each.
 * Returns 0 or a GnuTLS error; prints nothing. */
int pz_fix_write_set(const char *dir, int64_t now);

/* NULL-terminated: name, then the refusal expected (a
 * pz_certval_reason_name token; "ok" for valid ones), then the next name... */
extern const char *const pz_fix_set_names[];

#endif /* PZ_TESTS_CERTFIX_H */
