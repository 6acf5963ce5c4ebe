/* tests/unit/certfix.c — run-time certificate fixtures; see certfix.h. */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/crypto.h>

#include "certfix.h"
#include "certval.h"

#define DAY 86400

#define TRY(call)                                                                                            \
    do {                                                                                                     \
        rc = (call);                                                                                         \
        if (rc < 0)                                                                                          \
            goto out;                                                                                        \
    } while (0)

static int key_new(pz_fix_key kt, gnutls_x509_privkey_t *out)
{
    int rc = gnutls_x509_privkey_init(out);
    if (rc < 0)
        return rc;
    switch (kt) {
    case PZ_FIX_P384:
        rc = gnutls_x509_privkey_generate(*out, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP384R1), 0);
        break;
    case PZ_FIX_P521:
        rc = gnutls_x509_privkey_generate(*out, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP521R1), 0);
        break;
    case PZ_FIX_P256:
        rc = gnutls_x509_privkey_generate(*out, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0);
        break;
    case PZ_FIX_RSA1024: rc = gnutls_x509_privkey_generate(*out, GNUTLS_PK_RSA, 1024, 0); break;
    case PZ_FIX_RSA2048: rc = gnutls_x509_privkey_generate(*out, GNUTLS_PK_RSA, 2048, 0); break;
    case PZ_FIX_RSA3072: rc = gnutls_x509_privkey_generate(*out, GNUTLS_PK_RSA, 3072, 0); break;
    case PZ_FIX_ED25519: rc = gnutls_x509_privkey_generate(*out, GNUTLS_PK_EDDSA_ED25519, 0, 0); break;
    default: rc = GNUTLS_E_INVALID_REQUEST; break;
    }
    if (rc < 0) {
        gnutls_x509_privkey_deinit(*out);
        *out = NULL;
    }
    return rc;
}

static int set_serial(gnutls_x509_crt_t crt)
{
    uint8_t s[16];
    int rc = gnutls_rnd(GNUTLS_RND_NONCE, s, sizeof(s));
    if (rc < 0)
        return rc;
    s[0] = (uint8_t)((s[0] & 0x7f) | 0x40); /* positive, 16 bytes */
    return gnutls_x509_crt_set_serial(crt, s, sizeof(s));
}

static int set_ids(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key, const pz_fix_ca *issuer)
{
    uint8_t id[64];
    size_t sz = sizeof(id);
    int rc = gnutls_x509_privkey_get_key_id(key, GNUTLS_KEYID_USE_SHA1, id, &sz);
    if (rc >= 0)
        rc = gnutls_x509_crt_set_subject_key_id(crt, id, sz);
    if (rc >= 0 && issuer) {
        sz = sizeof(id);
        if (gnutls_x509_crt_get_subject_key_id(issuer->crt, id, &sz, NULL) >= 0)
            rc = gnutls_x509_crt_set_authority_key_id(crt, id, sz);
    }
    return rc;
}

static int make_ca(pz_fix_ca *ca, const pz_fix_ca *parent, pz_fix_key kt, const char *org, int64_t now,
                   int64_t not_after, gnutls_digest_algorithm_t hash)
{
    int rc;
    memset(ca, 0, sizeof(*ca));
    TRY(key_new(kt, &ca->key));
    TRY(gnutls_x509_crt_init(&ca->crt));
    TRY(gnutls_x509_crt_set_version(ca->crt, 3));
    TRY(set_serial(ca->crt));
    TRY(gnutls_x509_crt_set_key(ca->crt, ca->key));
    TRY(gnutls_x509_crt_set_dn_by_oid(ca->crt, GNUTLS_OID_X520_ORGANIZATION_NAME, 0, org, (unsigned)strlen(org)));
    char cn[96];
    snprintf(cn, sizeof(cn), "%s %s", org, parent ? "intermediate CA" : "test CA");
    TRY(gnutls_x509_crt_set_dn_by_oid(ca->crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn, (unsigned)strlen(cn)));
    TRY(gnutls_x509_crt_set_activation_time(ca->crt, (time_t)(now - DAY)));
    TRY(gnutls_x509_crt_set_expiration_time(ca->crt, (time_t)(not_after ? not_after : now + 3650 * (int64_t)DAY)));
    TRY(gnutls_x509_crt_set_basic_constraints(ca->crt, 1, parent ? 0 : 1));
    TRY(gnutls_x509_crt_set_key_usage(ca->crt, GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN));
    TRY(set_ids(ca->crt, ca->key, parent));
    if (kt == PZ_FIX_ED25519)
        hash = GNUTLS_DIG_UNKNOWN;
    else if (!hash)
        hash = GNUTLS_DIG_SHA384;
    if (parent)
        TRY(gnutls_x509_crt_sign2(ca->crt, parent->crt, parent->key, hash, 0));
    else
        TRY(gnutls_x509_crt_sign2(ca->crt, ca->crt, ca->key, hash, 0));
    rc = 0;
out:
    if (rc < 0)
        pz_fix_ca_clear(ca);
    return rc;
}

int pz_fix_ca_new(pz_fix_ca *ca, pz_fix_key key, const char *org, int64_t now, int64_t not_after,
                  gnutls_digest_algorithm_t hash)
{
    return make_ca(ca, NULL, key, org, now, not_after, hash);
}

int pz_fix_ca_sub(pz_fix_ca *ca, const pz_fix_ca *parent, pz_fix_key key, const char *org, int64_t now)
{
    return make_ca(ca, parent, key, org, now, 0, 0);
}

void pz_fix_ca_clear(pz_fix_ca *ca)
{
    if (!ca)
        return;
    if (ca->crt)
        gnutls_x509_crt_deinit(ca->crt);
    if (ca->key)
        gnutls_x509_privkey_deinit(ca->key);
    ca->crt = NULL;
    ca->key = NULL;
}

int pz_fix_leaf(const pz_fix_ca *ca, const pz_fix_leaf_opts *o, int64_t now, gnutls_x509_crt_t *crt_out,
                gnutls_x509_privkey_t *key_out)
{
    static const pz_fix_leaf_opts defaults;
    int rc;
    gnutls_x509_crt_t crt = NULL;
    gnutls_x509_privkey_t key = NULL;
    char buf[256];
    if (!o)
        o = &defaults;
    const char *id = o->node_id ? o->node_id : "node-1";
    const char *type = o->node_type ? o->node_type : "validator";

    TRY(key_new(o->key, &key));
    TRY(gnutls_x509_crt_init(&crt));
    TRY(gnutls_x509_crt_set_version(crt, 3));
    TRY(set_serial(crt));
    TRY(gnutls_x509_crt_set_key(crt, key));
    TRY(gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_ORGANIZATION_NAME, 0, "ProzChain Test", 14));
    if (!o->ou || *o->ou) {
        if (o->ou)
            snprintf(buf, sizeof(buf), "%s", o->ou);
        else
            snprintf(buf, sizeof(buf), "%s:nodes", type);
        TRY(gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_ORGANIZATIONAL_UNIT_NAME, 0, buf, (unsigned)strlen(buf)));
    }
    if (!o->cn || *o->cn) {
        if (o->cn)
            snprintf(buf, sizeof(buf), "%s", o->cn);
        else
            snprintf(buf, sizeof(buf), "node:%s", id);
        TRY(gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, buf, (unsigned)strlen(buf)));
    }
    snprintf(buf, sizeof(buf), "%s.nodes.prozchain.io", id);
    TRY(gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, buf, (unsigned)strlen(buf), GNUTLS_FSAN_APPEND));
    if (!o->san_id || *o->san_id) {
        snprintf(buf, sizeof(buf), "prozchain://%s", o->san_id ? o->san_id : id);
        TRY(gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_URI, buf, (unsigned)strlen(buf), GNUTLS_FSAN_APPEND));
    }
    TRY(gnutls_x509_crt_set_activation_time(crt, (time_t)(o->not_before ? o->not_before : now - 3600)));
    TRY(gnutls_x509_crt_set_expiration_time(crt, (time_t)(o->not_after ? o->not_after : now + 30 * (int64_t)DAY)));
    TRY(gnutls_x509_crt_set_basic_constraints(crt, o->is_ca ? 1 : 0, -1));
    if (o->extra_uri)
        TRY(gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_URI, o->extra_uri, (unsigned)strlen(o->extra_uri),
                                                 GNUTLS_FSAN_APPEND));
    unsigned ku = o->key_usage ? o->key_usage
                  : o->is_ca   ? GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_DIGITAL_SIGNATURE
                               : GNUTLS_KEY_DIGITAL_SIGNATURE | GNUTLS_KEY_KEY_ENCIPHERMENT;
    TRY(gnutls_x509_crt_set_key_usage(crt, ku));
    if (!o->no_eku) {
        if (!o->no_server_auth)
            TRY(gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0));
        if (!o->no_client_auth)
            TRY(gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_CLIENT, 0));
        if (o->no_server_auth && o->no_client_auth)
            TRY(gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_CODE_SIGNING, 0));
    }
    TRY(set_ids(crt, key, ca));
    if (o->raw_keys_ext) {
        TRY(gnutls_x509_crt_set_extension_by_oid(crt, PZ_NODE_KEYS_OID, o->raw_keys_ext, o->raw_keys_ext_len, 0));
    } else if (o->sign_pub && o->e2e_pub) {
        uint8_t ext[PZ_NODE_KEYS_EXT_LEN];
        pz_node_keys_ext_encode(o->sign_pub, o->e2e_pub, ext);
        TRY(gnutls_x509_crt_set_extension_by_oid(crt, PZ_NODE_KEYS_OID, ext, sizeof(ext),
                                                 o->keys_ext_critical ? 1 : 0));
    }
    gnutls_digest_algorithm_t hash = o->hash ? o->hash : GNUTLS_DIG_SHA384;
    unsigned bits = 0;
    if (gnutls_x509_privkey_get_pk_algorithm2(ca->key, &bits) == GNUTLS_PK_EDDSA_ED25519)
        hash = GNUTLS_DIG_UNKNOWN;
    TRY(gnutls_x509_crt_sign2(crt, ca->crt, ca->key, hash, 0));
    *crt_out = crt;
    crt = NULL;
    if (key_out) {
        *key_out = key;
        key = NULL;
    }
    rc = 0;
out:
    if (crt)
        gnutls_x509_crt_deinit(crt);
    if (key)
        gnutls_x509_privkey_deinit(key);
    return rc;
}

int pz_fix_crl(const pz_fix_ca *ca, const gnutls_x509_crt_t *revoked, size_t n, int64_t now,
               gnutls_x509_crt_fmt_t fmt, gnutls_datum_t *out)
{
    int rc;
    gnutls_x509_crl_t crl = NULL;
    TRY(gnutls_x509_crl_init(&crl));
    TRY(gnutls_x509_crl_set_version(crl, 2));
    TRY(gnutls_x509_crl_set_this_update(crl, (time_t)(now - 60)));
    TRY(gnutls_x509_crl_set_next_update(crl, (time_t)(now + 30 * (int64_t)DAY)));
    for (size_t i = 0; i < n; i++)
        TRY(gnutls_x509_crl_set_crt(crl, revoked[i], (time_t)(now - 60)));
    uint8_t nr = 1;
    TRY(gnutls_x509_crl_set_number(crl, &nr, 1));
    TRY(gnutls_x509_crl_sign2(crl, ca->crt, ca->key, GNUTLS_DIG_SHA384, 0));
    TRY(gnutls_x509_crl_export2(crl, fmt, out));
    rc = 0;
out:
    if (crl)
        gnutls_x509_crl_deinit(crl);
    return rc;
}

int pz_fix_export(gnutls_x509_crt_t crt, gnutls_x509_crt_fmt_t fmt, gnutls_datum_t *out)
{
    return gnutls_x509_crt_export2(crt, fmt, out);
}

static int write_datum(const char *path, const gnutls_datum_t *d, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return GNUTLS_E_FILE_ERROR;
    ssize_t w = write(fd, d->data, d->size);
    int ok = w == (ssize_t)d->size && fchmod(fd, mode) == 0;
    if (close(fd) < 0)
        ok = 0;
    return ok ? 0 : GNUTLS_E_FILE_ERROR;
}

int pz_fix_write_crt(const char *path, gnutls_x509_crt_t crt)
{
    gnutls_datum_t d = {NULL, 0};
    int rc = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &d);
    if (rc >= 0)
        rc = write_datum(path, &d, 0644);
    gnutls_free(d.data);
    return rc;
}

int pz_fix_write_key(const char *path, gnutls_x509_privkey_t key)
{
    gnutls_datum_t d = {NULL, 0};
    int rc = gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN, &d);
    if (rc >= 0)
        rc = write_datum(path, &d, 0600);
    gnutls_free(d.data);
    return rc;
}

const char *const pz_fix_set_names[] = {
    "server", "ok",
    "client", "ok",
    "rsa3072", "ok",
    "foreign", "untrusted",
    "expired", "expired",
    "notyet", "not-yet-valid",
    "rsa1024", "weak-rsa",
    "p256", "weak-curve",
    "sha1", "weak-hash",
    "revoked", "revoked",
    "noclientauth", "no-eku",
    "noserverauth", "no-eku",
    "mismatch", "node-id-mismatch",
    NULL,
};

int pz_fix_write_set(const char *dir, int64_t now)
{
    int rc;
    pz_fix_ca ca = {NULL, NULL}, foreign = {NULL, NULL};
    gnutls_x509_crt_t crts[16] = {NULL};
    gnutls_x509_privkey_t keys[16] = {NULL};
    gnutls_datum_t crl = {NULL, 0};
    char path[4096];
    size_t n = 0, revoked = 0;

    TRY(pz_fix_ca_new(&ca, PZ_FIX_P384, "ProzChain Test", now, 0, 0));
    TRY(pz_fix_ca_new(&foreign, PZ_FIX_P384, "Foreign Test", now, 0, 0));
    for (; pz_fix_set_names[2 * n]; n++) {
        const char *name = pz_fix_set_names[2 * n];
        pz_fix_leaf_opts o;
        const pz_fix_ca *signer = &ca;
        memset(&o, 0, sizeof(o));
        char id[64];
        snprintf(id, sizeof(id), "%s-1", name);
        o.node_id = id;
        if (!strcmp(name, "rsa3072"))
            o.key = PZ_FIX_RSA3072;
        else if (!strcmp(name, "foreign"))
            signer = &foreign;
        else if (!strcmp(name, "expired"))
            o.not_before = now - 60 * DAY, o.not_after = now - DAY;
        else if (!strcmp(name, "notyet"))
            o.not_before = now + DAY, o.not_after = now + 60 * DAY;
        else if (!strcmp(name, "rsa1024"))
            o.key = PZ_FIX_RSA1024;
        else if (!strcmp(name, "p256"))
            o.key = PZ_FIX_P256;
        else if (!strcmp(name, "sha1"))
            o.hash = GNUTLS_DIG_SHA1;
        else if (!strcmp(name, "revoked"))
            revoked = n;
        else if (!strcmp(name, "noclientauth"))
            o.no_client_auth = 1;
        else if (!strcmp(name, "noserverauth"))
            o.no_server_auth = 1;
        else if (!strcmp(name, "mismatch"))
            o.san_id = "someone-else";
        TRY(pz_fix_leaf(signer, &o, now, &crts[n], &keys[n]));
        snprintf(path, sizeof(path), "%s/%s.crt", dir, name);
        TRY(pz_fix_write_crt(path, crts[n]));
        snprintf(path, sizeof(path), "%s/%s.key", dir, name);
        TRY(pz_fix_write_key(path, keys[n]));
    }
    TRY(pz_fix_crl(&ca, &crts[revoked], 1, now, GNUTLS_X509_FMT_PEM, &crl));
    snprintf(path, sizeof(path), "%s/ca.crl", dir);
    TRY(write_datum(path, &crl, 0644));
    snprintf(path, sizeof(path), "%s/ca.crt", dir);
    TRY(pz_fix_write_crt(path, ca.crt));
    snprintf(path, sizeof(path), "%s/ca.key", dir);
    TRY(pz_fix_write_key(path, ca.key));
    snprintf(path, sizeof(path), "%s/foreign-ca.crt", dir);
    TRY(pz_fix_write_crt(path, foreign.crt));
    snprintf(path, sizeof(path), "%s/foreign-ca.key", dir);
    TRY(pz_fix_write_key(path, foreign.key));
    rc = 0;
out:
    for (size_t i = 0; i < sizeof(crts) / sizeof(crts[0]); i++) {
        if (crts[i])
            gnutls_x509_crt_deinit(crts[i]);
        if (keys[i])
            gnutls_x509_privkey_deinit(keys[i]);
    }
    gnutls_free(crl.data);
    pz_fix_ca_clear(&ca);
    pz_fix_ca_clear(&foreign);
    return rc;
}
