/* core/certval.c — certificate validation service: chain to trusted CAs,
 * time, CRL, key and hash floors, EKU and the node identity. See
 * core/certval.h and docs/internals/certval.md. */
#include "config.h"

#include <limits.h>
#include <string.h>

#include <glib.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "certval.h"

#define CV_FILE_MAX (4u << 20) /* a CA or CRL file larger than this is refused */
#define CV_DEFAULT_RSA 2048u
#define CV_DEFAULT_ECDSA 384u
#define CV_DEFAULT_DEPTH 4u
#define CV_MAX_DEPTH 16u
#define CV_NAME_MAX 256 /* longest CN/OU/SAN value we read */

/* One immutable CA/CRL set with its policy; shared by verifiers through a
 * reference count so reload can swap it while verifications run. */
typedef struct cv_set {
    gint refs;
    gnutls_x509_trust_list_t tl; /* owns the CAs and CRLs */
    unsigned min_rsa;
    unsigned min_ecdsa;
    unsigned max_depth;
    char *required_eku;
} cv_set;

struct pz_certval {
    GMutex lock; /* guards SET (the pointer only) */
    cv_set *set;
};

/* ---- node identity primitives ---------------------------------------- */

int pz_node_id_valid(const char *id)
{
    if (!id || !id[0] || id[0] == '.' || id[0] == '-')
        return 0;
    size_t n = 0;
    for (const char *p = id; *p; p++, n++) {
        if (n >= PZ_NODE_ID_MAX)
            return 0;
        if (!g_ascii_isalnum(*p) && *p != '.' && *p != '_' && *p != '-')
            return 0;
    }
    return 1;
}

int pz_node_type_valid(const char *type)
{
    if (!type || !type[0])
        return 0;
    size_t n = 0;
    for (const char *p = type; *p; p++, n++) {
        if (n >= PZ_NODE_TYPE_MAX)
            return 0;
        if (!(*p >= 'a' && *p <= 'z') && !(*p >= '0' && *p <= '9') && *p != '_' && *p != '-')
            return 0;
    }
    return 1;
}

/* SEQUENCE (0x30, 68) { OCTET STRING (0x04, 32), OCTET STRING (0x04, 32) } */
static const uint8_t keys_hdr[2] = {0x30, 0x44};
static const uint8_t octet32[2] = {0x04, 0x20};

void pz_node_keys_ext_encode(const uint8_t sign_pub[32], const uint8_t e2e_pub[32],
                             uint8_t out[PZ_NODE_KEYS_EXT_LEN])
{
    memcpy(out, keys_hdr, 2);
    memcpy(out + 2, octet32, 2);
    memcpy(out + 4, sign_pub, 32);
    memcpy(out + 36, octet32, 2);
    memcpy(out + 38, e2e_pub, 32);
}

int pz_node_keys_ext_decode(const uint8_t *der, size_t len, uint8_t sign_pub[32], uint8_t e2e_pub[32])
{
    if (!der || len != PZ_NODE_KEYS_EXT_LEN || memcmp(der, keys_hdr, 2) || memcmp(der + 2, octet32, 2) ||
        memcmp(der + 36, octet32, 2))
        return PZ_EINVAL;
    memcpy(sign_pub, der + 4, 32);
    memcpy(e2e_pub, der + 38, 32);
    return 0;
}

const char *pz_certval_reason_name(pz_certval_reason reason)
{
    switch (reason) {
    case PZ_CV_OK: return "ok";
    case PZ_CV_NO_CERT: return "no-certificate";
    case PZ_CV_MALFORMED: return "malformed";
    case PZ_CV_CHAIN_TOO_LONG: return "chain-too-long";
    case PZ_CV_UNTRUSTED: return "untrusted";
    case PZ_CV_EXPIRED: return "expired";
    case PZ_CV_NOT_YET_VALID: return "not-yet-valid";
    case PZ_CV_REVOKED: return "revoked";
    case PZ_CV_WEAK_RSA: return "weak-rsa";
    case PZ_CV_WEAK_ECDSA: return "weak-ecdsa";
    case PZ_CV_WEAK_CURVE: return "weak-curve";
    case PZ_CV_UNSUPPORTED_KEY: return "unsupported-key";
    case PZ_CV_WEAK_HASH: return "weak-hash";
    case PZ_CV_NO_EKU: return "no-eku";
    case PZ_CV_BAD_KEY_USAGE: return "bad-key-usage";
    case PZ_CV_LEAF_IS_CA: return "leaf-is-ca";
    case PZ_CV_BAD_NODE_ID: return "bad-node-id";
    case PZ_CV_NODE_ID_MISMATCH: return "node-id-mismatch";
    case PZ_CV_BAD_NODE_TYPE: return "bad-node-type";
    case PZ_CV_BAD_NODE_KEYS: return "bad-node-keys";
    }
    return "unknown";
}

/* Set OUT's refusal; returns REASON. */
static pz_certval_reason refuse(pz_certval_result *out, pz_certval_reason reason, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);
static pz_certval_reason refuse(pz_certval_result *out, pz_certval_reason reason, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_vsnprintf(out->reason_text, sizeof(out->reason_text), fmt, ap);
    va_end(ap);
    out->valid = 0;
    out->reason = reason;
    return reason;
}

int pz__certval_subject_attr(gnutls_x509_crt_t crt, const char *oid, char *buf, size_t bufsz)
{
    gnutls_x509_dn_t dn; /* owned by CRT */
    int found = 0;
    size_t olen = strlen(oid);
    if (gnutls_x509_crt_get_subject(crt, &dn) < 0)
        return -1;
    for (int i = 0;; i++) {
        int j = 0;
        for (;; j++) {
            gnutls_x509_ava_st ava;
            if (gnutls_x509_dn_get_rdn_ava(dn, i, j, &ava) < 0)
                break;
            /* GnuTLS counts the OID string's NUL in its size */
            size_t alen = ava.oid.size && !ava.oid.data[ava.oid.size - 1] ? ava.oid.size - 1 : ava.oid.size;
            if (alen != olen || memcmp(ava.oid.data, oid, olen))
                continue;
            /* UTF8String, PrintableString, IA5String; no NUL inside */
            if (found++ || (ava.value_tag != 12 && ava.value_tag != 19 && ava.value_tag != 22) ||
                ava.value.size >= bufsz || memchr(ava.value.data, 0, ava.value.size))
                return -1;
            memcpy(buf, ava.value.data, ava.value.size);
            buf[ava.value.size] = '\0';
        }
        if (j == 0)
            break; /* no RDN I */
    }
    return found ? 0 : 1;
}

pz_certval_reason pz__certval_identity(gnutls_x509_crt_t crt, int check_san, pz_certval_result *out)
{
    char buf[CV_NAME_MAX];

    int rc = pz__certval_subject_attr(crt, GNUTLS_OID_X520_COMMON_NAME, buf, sizeof(buf));
    if (rc != 0)
        return refuse(out, PZ_CV_BAD_NODE_ID, rc > 0 ? "no subject CN" : "subject CN repeated, too long or malformed");
    size_t plen = strlen(PZ_NODE_CN_PREFIX);
    if (strncmp(buf, PZ_NODE_CN_PREFIX, plen) || !pz_node_id_valid(buf + plen))
        return refuse(out, PZ_CV_BAD_NODE_ID, "subject CN \"%.64s\" is not node:<id> with a valid id", buf);
    g_strlcpy(out->node_id, buf + plen, sizeof(out->node_id));

    if (check_san) {
        int n_uri = 0, match = 0;
        for (unsigned i = 0;; i++) {
            size_t sz = sizeof(buf);
            rc = gnutls_x509_crt_get_subject_alt_name(crt, i, buf, &sz, NULL);
            if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
                break;
            if (rc == GNUTLS_E_SHORT_MEMORY_BUFFER)
                continue; /* longer than any node URI: not ours */
            if (rc < 0)
                return refuse(out, PZ_CV_NODE_ID_MISMATCH, "subjectAltName does not parse");
            if (rc != GNUTLS_SAN_URI || strncmp(buf, PZ_NODE_URI_PREFIX, strlen(PZ_NODE_URI_PREFIX)))
                continue;
            n_uri++;
            if (strlen(buf) == sz && !strcmp(buf + strlen(PZ_NODE_URI_PREFIX), out->node_id))
                match = 1;
        }
        if (n_uri == 0)
            return refuse(out, PZ_CV_NODE_ID_MISMATCH, "no SAN URI prozchain://%s", out->node_id);
        if (n_uri > 1)
            return refuse(out, PZ_CV_NODE_ID_MISMATCH, "%d prozchain:// SAN URIs, expected one", n_uri);
        if (!match)
            return refuse(out, PZ_CV_NODE_ID_MISMATCH, "SAN URI does not name node %s (the CN's id)", out->node_id);
    }

    rc = pz__certval_subject_attr(crt, GNUTLS_OID_X520_ORGANIZATIONAL_UNIT_NAME, buf, sizeof(buf));
    if (rc != 0)
        return refuse(out, PZ_CV_BAD_NODE_TYPE, rc > 0 ? "no subject OU" : "subject OU repeated, too long or malformed");
    size_t blen = strlen(buf), slen = strlen(PZ_NODE_OU_SUFFIX);
    if (blen <= slen || strcmp(buf + blen - slen, PZ_NODE_OU_SUFFIX))
        return refuse(out, PZ_CV_BAD_NODE_TYPE, "subject OU \"%.64s\" is not <type>:nodes", buf);
    buf[blen - slen] = '\0';
    if (!pz_node_type_valid(buf))
        return refuse(out, PZ_CV_BAD_NODE_TYPE, "node type \"%.64s\" in OU is invalid", buf);
    g_strlcpy(out->node_type, buf, sizeof(out->node_type));

    gnutls_datum_t ext = {NULL, 0};
    unsigned critical = 0;
    rc = gnutls_x509_crt_get_extension_by_oid2(crt, PZ_NODE_KEYS_OID, 0, &ext, &critical);
    if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
        return PZ_CV_OK; /* keys are optional */
    if (rc < 0)
        return refuse(out, PZ_CV_BAD_NODE_KEYS, "node-keys extension unreadable");
    rc = pz_node_keys_ext_decode(ext.data, ext.size, out->sign_pub, out->e2e_pub);
    gnutls_free(ext.data);
    if (rc < 0)
        return refuse(out, PZ_CV_BAD_NODE_KEYS, "node-keys extension is not SEQUENCE { OCTET STRING(32), OCTET STRING(32) }");
    if (critical)
        return refuse(out, PZ_CV_BAD_NODE_KEYS, "node-keys extension is marked critical");
    ext.data = NULL;
    if (gnutls_x509_crt_get_extension_by_oid2(crt, PZ_NODE_KEYS_OID, 1, &ext, &critical) == 0) {
        gnutls_free(ext.data);
        return refuse(out, PZ_CV_BAD_NODE_KEYS, "node-keys extension repeated");
    }
    out->has_keys = 1;
    return PZ_CV_OK;
}

/* ---- algorithm policy -------------------------------------------------- */

/* Key floors for CRT (named WHO in messages). */
static pz_certval_reason check_key(gnutls_x509_crt_t crt, const char *who, unsigned min_rsa, unsigned min_ecdsa,
                                   pz_certval_result *out)
{
    unsigned bits = 0;
    int pk = gnutls_x509_crt_get_pk_algorithm(crt, &bits);
    if (pk == GNUTLS_PK_RSA || pk == GNUTLS_PK_RSA_PSS) {
        if (bits < min_rsa)
            return refuse(out, PZ_CV_WEAK_RSA, "%s: RSA key of %u bits, policy minimum %u", who, bits, min_rsa);
        return PZ_CV_OK;
    }
    if (pk != GNUTLS_PK_ECDSA)
        return refuse(out, PZ_CV_UNSUPPORTED_KEY, "%s: %s keys are not accepted (RSA or ECDSA P-384/P-521)", who,
                      pk < 0 ? "unreadable" : gnutls_pk_get_name(pk));
    gnutls_ecc_curve_t curve = GNUTLS_ECC_CURVE_INVALID;
    gnutls_datum_t x = {NULL, 0}, y = {NULL, 0};
    if (gnutls_x509_crt_get_pk_ecc_raw(crt, &curve, &x, &y) < 0)
        return refuse(out, PZ_CV_UNSUPPORTED_KEY, "%s: ECDSA key unreadable", who);
    gnutls_free(x.data);
    gnutls_free(y.data);
    unsigned cbits;
    switch (curve) {
    case GNUTLS_ECC_CURVE_SECP384R1: cbits = 384; break;
    case GNUTLS_ECC_CURVE_SECP521R1: cbits = 521; break;
    case GNUTLS_ECC_CURVE_SECP192R1:
    case GNUTLS_ECC_CURVE_SECP224R1:
    case GNUTLS_ECC_CURVE_SECP256R1:
        return refuse(out, PZ_CV_WEAK_CURVE, "%s: ECDSA curve %s is below the 384-bit floor", who,
                      gnutls_ecc_curve_get_name(curve));
    default:
        return refuse(out, PZ_CV_UNSUPPORTED_KEY, "%s: ECDSA curve %s is not accepted", who,
                      gnutls_ecc_curve_get_name(curve) ? gnutls_ecc_curve_get_name(curve) : "unknown");
    }
    if (cbits < min_ecdsa)
        return refuse(out, PZ_CV_WEAK_ECDSA, "%s: ECDSA key of %u bits, policy minimum %u", who, cbits, min_ecdsa);
    return PZ_CV_OK;
}

/* Signature hash of CRT: SHA-256 or stronger (or EdDSA). */
static pz_certval_reason check_hash(gnutls_x509_crt_t crt, const char *who, pz_certval_result *out)
{
    int sign = gnutls_x509_crt_get_signature_algorithm(crt);
    if (sign < 0 || sign == GNUTLS_SIGN_UNKNOWN)
        return refuse(out, PZ_CV_WEAK_HASH, "%s: unknown signature algorithm", who);
    if (sign == GNUTLS_SIGN_EDDSA_ED25519 || sign == GNUTLS_SIGN_EDDSA_ED448)
        return PZ_CV_OK;
    gnutls_digest_algorithm_t dig = gnutls_sign_get_hash_algorithm(sign);
    switch (dig) {
    case GNUTLS_DIG_SHA256:
    case GNUTLS_DIG_SHA384:
    case GNUTLS_DIG_SHA512:
    case GNUTLS_DIG_SHA3_256:
    case GNUTLS_DIG_SHA3_384:
    case GNUTLS_DIG_SHA3_512:
        return PZ_CV_OK;
    default:
        return refuse(out, PZ_CV_WEAK_HASH, "%s: signature %s uses a hash weaker than SHA-256", who,
                      gnutls_sign_get_name(sign) ? gnutls_sign_get_name(sign) : "unknown");
    }
}

/* Validity window of CRT at NOW. */
static pz_certval_reason check_time(gnutls_x509_crt_t crt, const char *who, int64_t now, pz_certval_result *out)
{
    int64_t nb = gnutls_x509_crt_get_activation_time(crt);
    int64_t na = gnutls_x509_crt_get_expiration_time(crt);
    if (nb == -1 || na == -1)
        return refuse(out, PZ_CV_MALFORMED, "%s: validity unreadable", who);
    if (now < nb) {
        GDateTime *dt = g_date_time_new_from_unix_utc(nb);
        g_autofree char *s = dt ? g_date_time_format(dt, "%Y-%m-%d %H:%M:%S UTC") : NULL;
        if (dt)
            g_date_time_unref(dt);
        return refuse(out, PZ_CV_NOT_YET_VALID, "%s: not valid before %s", who, s ? s : "?");
    }
    if (now > na) {
        GDateTime *dt = g_date_time_new_from_unix_utc(na);
        g_autofree char *s = dt ? g_date_time_format(dt, "%Y-%m-%d %H:%M:%S UTC") : NULL;
        if (dt)
            g_date_time_unref(dt);
        return refuse(out, PZ_CV_EXPIRED, "%s: expired at %s", who, s ? s : "?");
    }
    return PZ_CV_OK;
}

/* ---- loading ----------------------------------------------------------- */

static int read_file(const char *path, gnutls_datum_t *out, pz_err *err)
{
    char *data = NULL;
    gsize len = 0;
    GError *gerr = NULL;
    if (!g_file_get_contents(path, &data, &len, &gerr)) {
        int code = g_error_matches(gerr, G_FILE_ERROR, G_FILE_ERROR_NOENT) ? PZ_ENOENT : PZ_EIO;
        pz_err_set(err, code, "%s", gerr->message);
        g_error_free(gerr);
        return code;
    }
    if (len > CV_FILE_MAX || len == 0) {
        g_free(data);
        return pz_err_set(err, PZ_EINVAL, "%s: %s", path, len ? "larger than 4 MiB" : "empty file");
    }
    out->data = (unsigned char *)data;
    out->size = (unsigned)len;
    return 0;
}

static gnutls_x509_crt_fmt_t guess_fmt(const gnutls_datum_t *d)
{
    return memmem(d->data, d->size, "-----BEGIN", 10) ? GNUTLS_X509_FMT_PEM : GNUTLS_X509_FMT_DER;
}

int pz__certval_crl_signed_by(gnutls_x509_crl_t crl, const gnutls_x509_crt_t *cas, unsigned n_cas)
{
    /* Signature only: a CRL past its nextUpdate still lists what it lists,
     * and one a few seconds "from the future" (clock skew with the CA's
     * machine) is as good as any (docs/internals/certval.md). */
    const unsigned timing = GNUTLS_CERT_REVOCATION_DATA_ISSUED_IN_FUTURE | GNUTLS_CERT_REVOCATION_DATA_SUPERSEDED;
    unsigned status = 0;
    int grc = gnutls_x509_crl_verify(crl, cas, n_cas,
                                     GNUTLS_VERIFY_DISABLE_TIME_CHECKS | GNUTLS_VERIFY_DISABLE_TRUSTED_TIME_CHECKS,
                                     &status);
    if (grc < 0)
        return 0;
    if (status == 0)
        return 1;
    return (status & timing) && !(status & ~(timing | (unsigned)GNUTLS_CERT_INVALID));
}

static void set_unref(cv_set *s)
{
    if (!s || !g_atomic_int_dec_and_test(&s->refs))
        return;
    if (s->tl)
        gnutls_x509_trust_list_deinit(s->tl, 1);
    g_free(s->required_eku);
    g_free(s);
}

static int check_opts(const pz_certval_opts *o, pz_err *err)
{
    if (!o)
        return pz_err_set(err, PZ_EINVAL, "certval: no options");
    if (o->n_ca_files == 0 || !o->ca_files)
        return pz_err_set(err, PZ_EINVAL, "certval: no trusted CA file given");
    if (o->n_crl_files && !o->crl_files)
        return pz_err_set(err, PZ_EINVAL, "certval: crl_files is NULL");
    if (o->min_rsa_bits && o->min_rsa_bits < CV_DEFAULT_RSA)
        return pz_err_set(err, PZ_EINVAL, "certval: min_rsa_bits %u is below the floor %u (it can only be raised)",
                          o->min_rsa_bits, CV_DEFAULT_RSA);
    if (o->min_ecdsa_bits && o->min_ecdsa_bits < CV_DEFAULT_ECDSA)
        return pz_err_set(err, PZ_EINVAL,
                          "certval: min_ecdsa_bits %u is below the floor %u (it can only be raised)",
                          o->min_ecdsa_bits, CV_DEFAULT_ECDSA);
    if (o->max_depth > CV_MAX_DEPTH)
        return pz_err_set(err, PZ_EINVAL, "certval: max_depth %u is above %u", o->max_depth, CV_MAX_DEPTH);
    if (o->required_eku) {
        /* dotted decimal, at least two arcs */
        const char *p = o->required_eku;
        int ok = g_ascii_isdigit(*p) && strchr(p, '.') != NULL;
        for (; ok && *p; p++)
            if (!g_ascii_isdigit(*p) && !(*p == '.' && g_ascii_isdigit(p[1])))
                ok = 0;
        if (!ok)
            return pz_err_set(err, PZ_EINVAL, "certval: required_eku \"%s\" is not a dotted OID", o->required_eku);
    }
    return 0;
}

/* Build a new set from O into *OUT. */
static int set_new(const pz_certval_opts *o, cv_set **out, pz_err *err)
{
    int rc = 0;
    GPtrArray *cas = g_ptr_array_new_with_free_func((GDestroyNotify)gnutls_x509_crt_deinit);
    GPtrArray *crls = g_ptr_array_new_with_free_func((GDestroyNotify)gnutls_x509_crl_deinit);
    cv_set *s = NULL;
    gnutls_datum_t data = {NULL, 0};

    if ((rc = check_opts(o, err)) < 0)
        goto out;
    s = g_new0(cv_set, 1);
    s->refs = 1;
    s->min_rsa = o->min_rsa_bits ? o->min_rsa_bits : CV_DEFAULT_RSA;
    s->min_ecdsa = o->min_ecdsa_bits ? o->min_ecdsa_bits : CV_DEFAULT_ECDSA;
    s->max_depth = o->max_depth ? o->max_depth : CV_DEFAULT_DEPTH;
    s->required_eku = g_strdup(o->required_eku);

    for (size_t i = 0; i < o->n_ca_files; i++) {
        const char *path = o->ca_files[i];
        gnutls_x509_crt_t *list = NULL;
        unsigned n = 0;
        if ((rc = read_file(path, &data, err)) < 0)
            goto out;
        int grc = gnutls_x509_crt_list_import2(&list, &n, &data, guess_fmt(&data), 0);
        g_free(data.data);
        data.data = NULL;
        if (grc < 0 || n == 0) {
            rc = pz_err_set(err, PZ_ECRYPTO, "%s: no certificate could be read (%s)", path,
                            grc < 0 ? gnutls_strerror(grc) : "empty");
            goto out;
        }
        for (unsigned j = 0; j < n; j++)
            g_ptr_array_add(cas, list[j]);
        gnutls_free(list);
        for (unsigned j = cas->len - n; j < cas->len; j++) {
            gnutls_x509_crt_t ca = g_ptr_array_index(cas, j);
            unsigned crit = 0;
            if (gnutls_x509_crt_get_ca_status(ca, &crit) <= 0) {
                rc = pz_err_set(err, PZ_ECRYPTO, "%s: certificate %u is not a CA (basicConstraints CA:TRUE missing)",
                                path, j - (cas->len - n));
                goto out;
            }
            pz_certval_result tmp;
            memset(&tmp, 0, sizeof(tmp));
            g_autofree char *who = g_strdup_printf("CA %u", j - (cas->len - n));
            if (check_key(ca, who, s->min_rsa, s->min_ecdsa, &tmp) != PZ_CV_OK) {
                rc = pz_err_set(err, PZ_ECRYPTO, "%s: %s", path, tmp.reason_text);
                goto out;
            }
        }
    }
    for (size_t i = 0; i < o->n_crl_files; i++) {
        const char *path = o->crl_files[i];
        gnutls_x509_crl_t *list = NULL;
        unsigned n = 0;
        if ((rc = read_file(path, &data, err)) < 0)
            goto out;
        int grc = gnutls_x509_crl_list_import2(&list, &n, &data, guess_fmt(&data), 0);
        g_free(data.data);
        data.data = NULL;
        if (grc < 0 || n == 0) {
            rc = pz_err_set(err, PZ_ECRYPTO, "%s: no CRL could be read (%s)", path,
                            grc < 0 ? gnutls_strerror(grc) : "empty");
            goto out;
        }
        for (unsigned j = 0; j < n; j++)
            g_ptr_array_add(crls, list[j]);
        gnutls_free(list);
        for (unsigned j = crls->len - n; j < crls->len; j++) {
            if (!pz__certval_crl_signed_by(g_ptr_array_index(crls, j), (const gnutls_x509_crt_t *)cas->pdata,
                                           cas->len)) {
                rc = pz_err_set(err, PZ_ECRYPTO, "%s: CRL %u is not signed by a trusted CA", path,
                                j - (crls->len - n));
                goto out;
            }
        }
    }

    if (gnutls_x509_trust_list_init(&s->tl, 0) < 0) {
        s->tl = NULL;
        rc = pz_err_set(err, PZ_ENOMEM, "certval: cannot create a trust list");
        goto out;
    }
    /* The trust list takes ownership of what it adds. */
    int added = gnutls_x509_trust_list_add_cas(s->tl, (const gnutls_x509_crt_t *)cas->pdata, cas->len, 0);
    if (added < 0 || (unsigned)added != cas->len) {
        rc = pz_err_set(err, PZ_ENOMEM, "certval: adding CAs failed");
        goto out;
    }
    g_ptr_array_set_free_func(cas, NULL);
    if (crls->len) {
        added = gnutls_x509_trust_list_add_crls(s->tl, (const gnutls_x509_crl_t *)crls->pdata, crls->len, 0, 0);
        if (added < 0 || (unsigned)added != crls->len) {
            rc = pz_err_set(err, PZ_ENOMEM, "certval: adding CRLs failed");
            goto out;
        }
    }
    g_ptr_array_set_free_func(crls, NULL);
    *out = s;
    s = NULL;
out:
    g_free(data.data);
    g_ptr_array_unref(cas);
    g_ptr_array_unref(crls);
    set_unref(s);
    return rc;
}

int pz_certval_new(const pz_certval_opts *opts, pz_certval **out, pz_err *err)
{
    int rc = 0;
    cv_set *s = NULL;
    if (!out)
        return pz_err_set(err, PZ_EINVAL, "certval: no output");
    *out = NULL;
    if ((rc = set_new(opts, &s, err)) < 0)
        goto out;
    pz_certval *cv = g_new0(pz_certval, 1);
    g_mutex_init(&cv->lock);
    cv->set = s;
    *out = cv;
out:
    return rc;
}

int pz_certval_reload(pz_certval *cv, const pz_certval_opts *opts, pz_err *err)
{
    int rc = 0;
    cv_set *s = NULL, *old;
    if (!cv)
        return pz_err_set(err, PZ_EINVAL, "certval: no object");
    if ((rc = set_new(opts, &s, err)) < 0)
        goto out;
    g_mutex_lock(&cv->lock);
    old = cv->set;
    cv->set = s;
    g_mutex_unlock(&cv->lock);
    set_unref(old);
out:
    return rc;
}

void pz_certval_free(pz_certval *cv)
{
    if (!cv)
        return;
    set_unref(cv->set);
    g_mutex_clear(&cv->lock);
    g_free(cv);
}

/* ---- verification ------------------------------------------------------ */

/* Map GnuTLS chain status bits to our reasons (time is checked by us). */
static pz_certval_reason chain_status(unsigned status, pz_certval_result *out)
{
    if (status & GNUTLS_CERT_REVOKED)
        return refuse(out, PZ_CV_REVOKED, "certificate revoked by its CA");
    if (status & (GNUTLS_CERT_SIGNER_NOT_FOUND | GNUTLS_CERT_SIGNATURE_FAILURE | GNUTLS_CERT_SIGNER_NOT_CA |
                  GNUTLS_CERT_SIGNER_CONSTRAINTS_FAILURE)) {
        const char *why = status & GNUTLS_CERT_SIGNER_NOT_FOUND ? "issuer is not a trusted CA"
                          : status & GNUTLS_CERT_SIGNATURE_FAILURE ? "signature does not verify"
                          : status & GNUTLS_CERT_SIGNER_NOT_CA ? "issuer is not a CA"
                                                               : "issuer's constraints violated";
        return refuse(out, PZ_CV_UNTRUSTED, "untrusted chain: %s", why);
    }
    if (status & GNUTLS_CERT_INSECURE_ALGORITHM)
        return refuse(out, PZ_CV_WEAK_HASH, "chain uses an algorithm GnuTLS deems insecure");
    if (status & GNUTLS_CERT_EXPIRED)
        return refuse(out, PZ_CV_EXPIRED, "a certificate in the chain has expired");
    if (status & GNUTLS_CERT_NOT_ACTIVATED)
        return refuse(out, PZ_CV_NOT_YET_VALID, "a certificate in the chain is not yet valid");
    gnutls_datum_t txt = {NULL, 0};
    pz_certval_reason r;
    if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &txt, 0) == 0) {
        r = refuse(out, PZ_CV_UNTRUSTED, "untrusted chain: %s", (const char *)txt.data);
        gnutls_free(txt.data);
    } else {
        r = refuse(out, PZ_CV_UNTRUSTED, "untrusted chain (status 0x%x)", status);
    }
    return r;
}

static pz_certval_reason check_eku(gnutls_x509_crt_t crt, int purpose, const char *extra, pz_certval_result *out)
{
    int client = 0, server = 0, have_extra = 0;
    for (unsigned i = 0;; i++) {
        char oid[128];
        size_t sz = sizeof(oid);
        int rc = gnutls_x509_crt_get_key_purpose_oid(crt, i, oid, &sz, NULL);
        if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
            break;
        if (rc == GNUTLS_E_SHORT_MEMORY_BUFFER)
            continue;
        if (rc < 0)
            return refuse(out, PZ_CV_NO_EKU, "extended key usage does not parse");
        if (!strcmp(oid, GNUTLS_KP_TLS_WWW_CLIENT))
            client = 1;
        else if (!strcmp(oid, GNUTLS_KP_TLS_WWW_SERVER))
            server = 1;
        if (extra && !strcmp(oid, extra))
            have_extra = 1;
    }
    if ((purpose & PZ_CERTVAL_CLIENT) && !client)
        return refuse(out, PZ_CV_NO_EKU, "no clientAuth extended key usage");
    if ((purpose & PZ_CERTVAL_SERVER) && !server)
        return refuse(out, PZ_CV_NO_EKU, "no serverAuth extended key usage");
    if (extra && !have_extra)
        return refuse(out, PZ_CV_NO_EKU, "no %s extended key usage", extra);
    return PZ_CV_OK;
}

static pz_certval_reason check_leaf(gnutls_x509_crt_t leaf, int purpose, const cv_set *s, pz_certval_result *out)
{
    unsigned crit = 0, ku = 0;
    if (gnutls_x509_crt_get_ca_status(leaf, &crit) > 0)
        return refuse(out, PZ_CV_LEAF_IS_CA, "the presented certificate is a CA certificate");
    int rc = gnutls_x509_crt_get_key_usage(leaf, &ku, &crit);
    if (rc < 0 && rc != GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
        return refuse(out, PZ_CV_BAD_KEY_USAGE, "key usage does not parse");
    if (rc >= 0 && !(ku & GNUTLS_KEY_DIGITAL_SIGNATURE))
        return refuse(out, PZ_CV_BAD_KEY_USAGE, "key usage lacks digitalSignature");
    pz_certval_reason r = check_eku(leaf, purpose, s->required_eku, out);
    if (r != PZ_CV_OK)
        return r;
    return pz__certval_identity(leaf, 1, out);
}

static pz_certval_reason verify_chain(const cv_set *s, gnutls_x509_crt_t *crts, size_t n, int64_t now, int purpose,
                                      pz_certval_result *out)
{
    pz_certval_reason r;
    char who[32];

    for (size_t i = 0; i < n; i++) {
        g_snprintf(who, sizeof(who), i == 0 ? "leaf" : "certificate %zu", i);
        if ((r = check_key(crts[i], who, s->min_rsa, s->min_ecdsa, out)) != PZ_CV_OK)
            return r;
        /* A self-signature proves nothing, so its hash does not matter. */
        if (!gnutls_x509_crt_check_issuer(crts[i], crts[i]) && (r = check_hash(crts[i], who, out)) != PZ_CV_OK)
            return r;
    }
    for (size_t i = 0; i < n; i++) {
        g_snprintf(who, sizeof(who), i == 0 ? "leaf" : "certificate %zu", i);
        if ((r = check_time(crts[i], who, now, out)) != PZ_CV_OK)
            return r;
    }

    unsigned status = 0;
    unsigned flags = GNUTLS_VERIFY_DISABLE_TIME_CHECKS | GNUTLS_VERIFY_DISABLE_TRUSTED_TIME_CHECKS;
    int rc = gnutls_x509_trust_list_verify_crt2(s->tl, crts, (unsigned)n, NULL, 0, flags, &status, NULL);
    if (rc < 0)
        return refuse(out, PZ_CV_UNTRUSTED, "chain verification failed: %s", gnutls_strerror(rc));
    if (status && !(status & ~(unsigned)(GNUTLS_CERT_INVALID | GNUTLS_CERT_UNKNOWN_CRIT_EXTENSIONS))) {
        /* GnuTLS refuses critical extensions it does not know; when the
         * only one is ours, say so. */
        gnutls_datum_t ext = {NULL, 0};
        unsigned critical = 0;
        if (gnutls_x509_crt_get_extension_by_oid2(crts[0], PZ_NODE_KEYS_OID, 0, &ext, &critical) == 0) {
            gnutls_free(ext.data);
            if (critical)
                return refuse(out, PZ_CV_BAD_NODE_KEYS, "node-keys extension is marked critical");
        }
    }
    if (status)
        return chain_status(status, out);

    /* The trusted CA that anchors the chain must itself be in its validity. */
    gnutls_x509_crt_t anchor = NULL;
    if (gnutls_x509_trust_list_get_issuer(s->tl, crts[n - 1], &anchor, GNUTLS_TL_GET_COPY) == 0) {
        r = check_time(anchor, "trusted CA", now, out);
        gnutls_x509_crt_deinit(anchor);
        if (r != PZ_CV_OK)
            return r;
    }
    return check_leaf(crts[0], purpose, s, out);
}

int pz_certval_verify(pz_certval *cv, const uint8_t *const *der, const size_t *len, size_t n, uint64_t now_s,
                      int purpose_client_or_server, pz_certval_result *out)
{
    int rc = 0;
    cv_set *s = NULL;
    gnutls_x509_crt_t *crts = NULL;
    size_t n_crts = 0;

    if (!out)
        return PZ_EINVAL;
    memset(out, 0, sizeof(*out));
    if (!cv || (n && (!der || !len)) || !(purpose_client_or_server & (PZ_CERTVAL_CLIENT | PZ_CERTVAL_SERVER))) {
        refuse(out, PZ_CV_NO_CERT, "invalid arguments");
        return PZ_EINVAL;
    }
    if (n == 0) {
        refuse(out, PZ_CV_NO_CERT, "no certificate presented");
        goto out;
    }

    g_mutex_lock(&cv->lock);
    s = cv->set;
    g_atomic_int_inc(&s->refs);
    g_mutex_unlock(&cv->lock);

    if (n > s->max_depth) {
        refuse(out, PZ_CV_CHAIN_TOO_LONG, "%zu certificates presented, at most %u accepted", n, s->max_depth);
        goto out;
    }
    crts = g_try_new0(gnutls_x509_crt_t, n);
    if (!crts) {
        rc = PZ_ENOMEM;
        refuse(out, PZ_CV_MALFORMED, "out of memory");
        goto out;
    }
    for (; n_crts < n; n_crts++) {
        if (gnutls_x509_crt_init(&crts[n_crts]) < 0) {
            rc = PZ_ENOMEM;
            refuse(out, PZ_CV_MALFORMED, "out of memory");
            goto out;
        }
        gnutls_datum_t d = {(unsigned char *)der[n_crts], (unsigned)len[n_crts]};
        if (!der[n_crts] || len[n_crts] == 0 || len[n_crts] > UINT_MAX ||
            gnutls_x509_crt_import(crts[n_crts], &d, GNUTLS_X509_FMT_DER) < 0) {
            refuse(out, PZ_CV_MALFORMED, "certificate %zu is not valid DER X.509", n_crts);
            n_crts++; /* so it is freed */
            goto out;
        }
        if (n_crts == 0) {
            size_t fsz = sizeof(out->leaf_sha256);
            gnutls_fingerprint(GNUTLS_DIG_SHA256, &d, out->leaf_sha256, &fsz);
            out->not_after = (uint64_t)gnutls_x509_crt_get_expiration_time(crts[0]);
        }
    }
    if (verify_chain(s, crts, n, now_s > INT64_MAX ? INT64_MAX : (int64_t)now_s, purpose_client_or_server, out) ==
        PZ_CV_OK) {
        out->valid = 1;
        out->reason = PZ_CV_OK;
        g_strlcpy(out->reason_text, "valid", sizeof(out->reason_text));
    }
out:
    if (!out->valid) {
        /* Keys and type are only meaningful on acceptance. */
        memset(out->sign_pub, 0, sizeof(out->sign_pub));
        memset(out->e2e_pub, 0, sizeof(out->e2e_pub));
        out->has_keys = 0;
        out->node_type[0] = '\0';
    }
    for (size_t i = 0; i < n_crts; i++)
        gnutls_x509_crt_deinit(crts[i]);
    g_free(crts);
    set_unref(s);
    return rc;
}
