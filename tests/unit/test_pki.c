/* tests/unit/test_pki.c — CA creation, node certificate issuance (parsed
 * back field by field), revocation, and the helpers of core/pki.h; every
 * bad input refused, nothing half-written. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "certfix.h"
#include "certval.h"
#include "pki.h"
#include "../testutil.h"

#define DAY 86400

static char *tmp_root;
static int64_t now;

static int group_setup(void **state)
{
    (void)state;
    assert_int_equal(gnutls_global_init(), 0);
    tmp_root = g_dir_make_tmp("pz-pki-XXXXXX", NULL);
    assert_non_null(tmp_root);
    now = (int64_t)time(NULL);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    pz_test_rm_rf(tmp_root);
    g_free(tmp_root);
    gnutls_global_deinit();
    return 0;
}

/* A fresh subdirectory path of the temp root (not created). */
static char *fresh(const char *name)
{
    static int n;
    g_autofree char *leaf = g_strdup_printf("%s-%d", name, n++);
    return g_build_filename(tmp_root, leaf, NULL);
}

static char *path_in(const char *dir, const char *name)
{
    return g_build_filename(dir, name, NULL);
}

static gnutls_x509_crt_t load_crt(const char *path)
{
    uint8_t *der = NULL;
    size_t len = 0;
    pz_err err;
    pz_err_init(&err);
    int rc = pz_cert_load_der(path, &der, &len, &err);
    if (rc)
        print_error("%s: %s\n", path, pz_err_msg(&err));
    assert_int_equal(rc, 0);
    gnutls_x509_crt_t crt;
    assert_int_equal(gnutls_x509_crt_init(&crt), 0);
    gnutls_datum_t d = {der, (unsigned)len};
    assert_int_equal(gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_DER), 0);
    g_free(der);
    pz_err_clear(&err);
    return crt;
}

static gnutls_x509_crl_t load_crl(const char *path)
{
    g_autofree char *data = NULL;
    gsize len = 0;
    assert_true(g_file_get_contents(path, &data, &len, NULL));
    gnutls_x509_crl_t crl;
    assert_int_equal(gnutls_x509_crl_init(&crl), 0);
    gnutls_datum_t d = {(unsigned char *)data, (unsigned)len};
    assert_int_equal(gnutls_x509_crl_import(crl, &d, GNUTLS_X509_FMT_PEM), 0);
    return crl;
}

static unsigned file_mode(const char *path)
{
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    return (unsigned)(sb.st_mode & 0777);
}

/* The IDX-th subject attribute OID as its raw string (GnuTLS's raw mode
 * gives the DER of the value: a string tag, a short length, the bytes). */
static char *dn_get(gnutls_x509_crt_t crt, const char *oid, unsigned idx)
{
    uint8_t buf[256];
    size_t sz = sizeof(buf);
    if (gnutls_x509_crt_get_dn_by_oid(crt, oid, idx, 1, buf, &sz) < 0)
        return NULL;
    assert_true(sz >= 2 && buf[1] < 0x80 && (size_t)buf[1] + 2 == sz);
    assert_true(buf[0] == 0x0c || buf[0] == 0x13); /* UTF8String, PrintableString */
    return g_strndup((const char *)buf + 2, buf[1]);
}

static uint64_t crl_number(gnutls_x509_crl_t crl)
{
    uint8_t buf[16];
    size_t sz = sizeof(buf);
    unsigned crit = 0;
    assert_int_equal(gnutls_x509_crl_get_number(crl, buf, &sz, &crit), 0);
    uint64_t n = 0;
    for (size_t i = 0; i < sz; i++)
        n = (n << 8) | buf[i];
    return n;
}

/* Count files in DIR (all entries), and whether a staging dir is left. */
static int count_entries(const char *dir, int *staging_left)
{
    int n = 0;
    GDir *d = g_dir_open(dir, 0, NULL);
    if (!d)
        return -1;
    const char *name;
    while ((name = g_dir_read_name(d))) {
        n++;
        if (staging_left && g_str_has_prefix(name, ".pzstage"))
            *staging_left = 1;
    }
    g_dir_close(d);
    return n;
}

static char *make_ca(pz_pki_key key, const char *org)
{
    char *dir = fresh("ca");
    pz_ca_init_opts o = {.dir = dir, .org = org, .key = key};
    pz_err err;
    pz_err_init(&err);
    int rc = pz_ca_init(&o, (uint64_t)now, &err);
    if (rc)
        print_error("ca init: %s\n", pz_err_msg(&err));
    assert_int_equal(rc, 0);
    pz_err_clear(&err);
    return dir;
}

static int issue(const char *ca, const char *out, const char *id, const char *type, pz_err *err)
{
    pz_cert_issue_opts o = {.ca_dir = ca, .out_dir = out, .node_id = id, .node_type = type};
    return pz_cert_issue(&o, (uint64_t)now, err);
}

/* Validate OUT/node.crt against CA with certval; returns the result. */
static pz_certval_result verify_node(const char *ca, const char *cert)
{
    g_autofree char *ca_file = path_in(ca, "ca.crt");
    g_autofree char *crl_file = path_in(ca, "ca.crl");
    const char *cas[] = {ca_file};
    const char *crls[] = {crl_file};
    pz_certval_opts opts = {.ca_files = cas, .n_ca_files = 1, .crl_files = crls, .n_crl_files = 1};
    pz_certval *cv = NULL;
    pz_err err;
    pz_err_init(&err);
    int rc = pz_certval_new(&opts, &cv, &err);
    if (rc)
        print_error("certval for %s: %s\n", cert, pz_err_msg(&err));
    assert_int_equal(rc, 0);
    uint8_t *der = NULL;
    size_t len = 0;
    assert_int_equal(pz_cert_load_der(cert, &der, &len, NULL), 0);
    pz_certval_result r;
    const uint8_t *ders[] = {der};
    assert_int_equal(pz_certval_verify(cv, ders, &len, 1, (uint64_t)now, PZ_CERTVAL_CLIENT | PZ_CERTVAL_SERVER, &r), 0);
    g_free(der);
    pz_certval_free(cv);
    pz_err_clear(&err);
    return r;
}

/* ---- CA ---- */

static void test_ca_init_default(void **state)
{
    (void)state;
    g_autofree char *dir = make_ca(PZ_PKI_KEY_ECDSA_P384, NULL);
    g_autofree char *crt_path = path_in(dir, "ca.crt");
    g_autofree char *key_path = path_in(dir, "ca.key");
    g_autofree char *crl_path = path_in(dir, "ca.crl");
    g_autofree char *yaml_path = path_in(dir, "ca.yaml");
    assert_int_equal(file_mode(key_path), 0600);
    assert_int_equal(file_mode(dir), 0700);
    int staging = 0;
    assert_int_equal(count_entries(dir, &staging), 4);
    assert_int_equal(staging, 0);

    gnutls_x509_crt_t ca = load_crt(crt_path);
    assert_int_equal(gnutls_x509_crt_get_version(ca), 3);
    unsigned crit = 0, ku = 0;
    assert_int_equal(gnutls_x509_crt_get_ca_status(ca, &crit), 1);
    assert_int_equal(gnutls_x509_crt_get_key_usage(ca, &ku, &crit), 0);
    assert_int_equal(ku, GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN);
    assert_true(crit);
    g_autofree char *o = dn_get(ca, GNUTLS_OID_X520_ORGANIZATION_NAME, 0);
    assert_string_equal(o, "ProzChain");
    g_autofree char *cn = dn_get(ca, GNUTLS_OID_X520_COMMON_NAME, 0);
    assert_true(g_str_has_prefix(cn, "prozsec CA "));
    assert_true(gnutls_x509_crt_check_issuer(ca, ca));
    unsigned bits = 0;
    assert_int_equal(gnutls_x509_crt_get_pk_algorithm(ca, &bits), GNUTLS_PK_ECDSA);
    assert_int_equal(bits, 384);
    assert_int_equal(gnutls_x509_crt_get_signature_algorithm(ca), GNUTLS_SIGN_ECDSA_SHA384);
    assert_int_equal((int64_t)gnutls_x509_crt_get_activation_time(ca), now - 300);
    assert_int_equal((int64_t)gnutls_x509_crt_get_expiration_time(ca), now + 3650 * (int64_t)DAY);
    unsigned status = 1;
    assert_int_equal(gnutls_x509_crt_verify(ca, &ca, 1, 0, &status), 0);
    assert_int_equal(status, 0);

    gnutls_x509_crl_t crl = load_crl(crl_path);
    assert_int_equal(gnutls_x509_crl_get_crt_count(crl), 0);
    assert_int_equal(crl_number(crl), 1);
    assert_int_equal(gnutls_x509_crl_get_signature_algorithm(crl), GNUTLS_SIGN_ECDSA_SHA384);
    assert_int_equal((int64_t)gnutls_x509_crl_get_next_update(crl), now + 30 * (int64_t)DAY);
    assert_int_equal(gnutls_x509_crl_verify(crl, &ca, 1, 0, &status), 0);
    assert_int_equal(status, 0);

    g_autofree char *yaml = NULL;
    assert_true(g_file_get_contents(yaml_path, &yaml, NULL, NULL));
    assert_non_null(strstr(yaml, "org: \"ProzChain\"\n"));
    assert_non_null(strstr(yaml, "key: ecdsa-p384\n"));
    assert_non_null(strstr(yaml, "node_days: 365\n"));
    assert_non_null(strstr(yaml, "crl_number: 1\n"));
    gnutls_x509_crl_deinit(crl);
    gnutls_x509_crt_deinit(ca);
}

static void test_ca_init_variants(void **state)
{
    (void)state;
    struct {
        pz_pki_key key;
        int pk;
        unsigned bits; /* GnuTLS reports P-521 as 528 (66 bytes) */
        int sign;
    } cases[] = {
        {PZ_PKI_KEY_ECDSA_P521, GNUTLS_PK_ECDSA, 528, GNUTLS_SIGN_ECDSA_SHA512},
        {PZ_PKI_KEY_RSA_3072, GNUTLS_PK_RSA, 3072, GNUTLS_SIGN_RSA_SHA384},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *dir = make_ca(cases[i].key, "Org \"quoted\" \\ back");
        g_autofree char *crt_path = path_in(dir, "ca.crt");
        gnutls_x509_crt_t ca = load_crt(crt_path);
        unsigned bits = 0;
        assert_int_equal(gnutls_x509_crt_get_pk_algorithm(ca, &bits), cases[i].pk);
        assert_int_equal(bits, cases[i].bits);
        assert_int_equal(gnutls_x509_crt_get_signature_algorithm(ca), cases[i].sign);
        g_autofree char *o = dn_get(ca, GNUTLS_OID_X520_ORGANIZATION_NAME, 0);
        assert_string_equal(o, "Org \"quoted\" \\ back");
        gnutls_x509_crt_deinit(ca);
        /* ca.yaml reads back (issuance uses it) */
        g_autofree char *out = fresh("node");
        pz_err err;
        pz_err_init(&err);
        int rc = issue(dir, out, "n1", "validator", &err);
        if (rc)
            print_error("issue: %s\n", pz_err_msg(&err));
        assert_int_equal(rc, 0);
        g_autofree char *node = path_in(out, "node.crt");
        gnutls_x509_crt_t crt = load_crt(node);
        assert_int_equal(gnutls_x509_crt_get_signature_algorithm(crt), cases[i].sign);
        o = (g_free(o), dn_get(crt, GNUTLS_OID_X520_ORGANIZATION_NAME, 0));
        assert_string_equal(o, "Org \"quoted\" \\ back");
        gnutls_x509_crt_deinit(crt);
        pz_err_clear(&err);
    }
}

static void test_ca_init_refuses_overwrite(void **state)
{
    (void)state;
    g_autofree char *dir = make_ca(PZ_PKI_KEY_ECDSA_P384, NULL);
    g_autofree char *crt_path = path_in(dir, "ca.crt");
    g_autofree char *before = NULL, *after = NULL;
    assert_true(g_file_get_contents(crt_path, &before, NULL, NULL));
    pz_ca_init_opts o = {.dir = dir};
    pz_err err;
    pz_err_init(&err);
    assert_int_equal(pz_ca_init(&o, (uint64_t)now, &err), PZ_EEXIST);
    assert_non_null(strstr(pz_err_msg(&err), "--force"));
    assert_true(g_file_get_contents(crt_path, &after, NULL, NULL));
    assert_string_equal(before, after);
    int staging = 0;
    assert_int_equal(count_entries(dir, &staging), 4);
    assert_int_equal(staging, 0);
    /* only one file present is enough to refuse */
    g_autofree char *dir2 = fresh("ca");
    g_mkdir(dir2, 0700);
    g_autofree char *yaml = path_in(dir2, "ca.yaml");
    assert_true(g_file_set_contents(yaml, "x: 1\n", -1, NULL));
    o.dir = dir2;
    assert_int_equal(pz_ca_init(&o, (uint64_t)now, &err), PZ_EEXIST);
    assert_int_equal(count_entries(dir2, NULL), 1);
    /* --force replaces */
    o.dir = dir;
    o.force = 1;
    assert_int_equal(pz_ca_init(&o, (uint64_t)now, &err), 0);
    g_free(after);
    assert_true(g_file_get_contents(crt_path, &after, NULL, NULL));
    assert_string_not_equal(before, after);
    assert_int_equal(count_entries(dir, NULL), 4);
    pz_err_clear(&err);
}

static void test_ca_init_bad_options(void **state)
{
    (void)state;
    g_autofree char *dir = fresh("ca-bad");
    char long_org[70];
    memset(long_org, 'o', sizeof(long_org) - 1);
    long_org[sizeof(long_org) - 1] = '\0';
    struct {
        const char *what;
        pz_ca_init_opts o;
    } cases[] = {
        {"empty org", {.dir = dir, .org = ""}},
        {"long org", {.dir = dir, .org = long_org}},
        {"control char in org", {.dir = dir, .org = "a\nb"}},
        {"bad UTF-8 org", {.dir = dir, .org = "\xff\xfe"}},
        {"days too many", {.dir = dir, .days = 36501}},
        {"node days too many", {.dir = dir, .node_days = 99999}},
        {"key out of range", {.dir = dir, .key = (pz_pki_key)42}},
        {"no dir", {.dir = NULL}},
        {"empty dir", {.dir = ""}},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        pz_err err;
        pz_err_init(&err);
        int rc = pz_ca_init(&cases[i].o, (uint64_t)now, &err);
        if (rc != PZ_EINVAL)
            print_error("case %s: %d %s\n", cases[i].what, rc, pz_err_msg(&err));
        assert_int_equal(rc, PZ_EINVAL);
        assert_true(pz_err_msg(&err)[0]);
        assert_false(g_file_test(dir, G_FILE_TEST_EXISTS));
        pz_err_clear(&err);
    }
    assert_int_equal(pz_ca_init(NULL, 0, NULL), PZ_EINVAL);
}

static void test_key_names(void **state)
{
    (void)state;
    const char *names[] = {"ecdsa-p384", "ecdsa-p521", "rsa-3072", "rsa-4096"};
    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        pz_pki_key k;
        assert_int_equal(pz_pki_key_parse(names[i], &k, NULL), 0);
        assert_int_equal(k, (pz_pki_key)i);
        assert_string_equal(pz_pki_key_name(k), names[i]);
    }
    pz_pki_key k;
    pz_err err;
    pz_err_init(&err);
    assert_int_equal(pz_pki_key_parse("rsa-1024", &k, &err), PZ_EINVAL);
    assert_non_null(strstr(pz_err_msg(&err), "ecdsa-p384"));
    assert_int_equal(pz_pki_key_parse(NULL, &k, NULL), PZ_EINVAL);
    assert_string_equal(pz_pki_key_name((pz_pki_key)9), "unknown");
    pz_err_clear(&err);
}

/* ---- issuance ---- */

static void test_issue_every_field(void **state)
{
    (void)state;
    g_autofree char *ca_dir = make_ca(PZ_PKI_KEY_ECDSA_P384, "ProzChain Labs");
    g_autofree char *out = fresh("node");
    pz_cert_issue_opts o = {.ca_dir = ca_dir, .out_dir = out, .node_id = "Val-01.eu_west", .node_type = "validator",
                            .days = 90, .country = "DE", .state = "Berlin", .locality = "Kreuzberg"};
    pz_err err;
    pz_err_init(&err);
    int rc = pz_cert_issue(&o, (uint64_t)now, &err);
    if (rc)
        print_error("issue: %s\n", pz_err_msg(&err));
    assert_int_equal(rc, 0);
    g_autofree char *crt_path = path_in(out, "node.crt");
    g_autofree char *key_path = path_in(out, "node.key");
    g_autofree char *ca_path = path_in(ca_dir, "ca.crt");
    assert_int_equal(file_mode(key_path), 0600);
    int staging = 0;
    assert_true(count_entries(out, &staging) >= 3); /* node.crt, node.key + the node's key files */
    assert_int_equal(staging, 0);

    gnutls_x509_crt_t crt = load_crt(crt_path), ca = load_crt(ca_path);
    assert_int_equal(gnutls_x509_crt_get_version(crt), 3);
    /* subject */
    g_autofree char *cn = dn_get(crt, GNUTLS_OID_X520_COMMON_NAME, 0);
    g_autofree char *org = dn_get(crt, GNUTLS_OID_X520_ORGANIZATION_NAME, 0);
    g_autofree char *ou = dn_get(crt, GNUTLS_OID_X520_ORGANIZATIONAL_UNIT_NAME, 0);
    g_autofree char *c = dn_get(crt, GNUTLS_OID_X520_COUNTRY_NAME, 0);
    g_autofree char *st = dn_get(crt, GNUTLS_OID_X520_STATE_OR_PROVINCE_NAME, 0);
    g_autofree char *l = dn_get(crt, GNUTLS_OID_X520_LOCALITY_NAME, 0);
    assert_string_equal(cn, "node:Val-01.eu_west");
    assert_string_equal(org, "ProzChain Labs");
    assert_string_equal(ou, "validator:nodes");
    assert_string_equal(c, "DE");
    assert_string_equal(st, "Berlin");
    assert_string_equal(l, "Kreuzberg");
    assert_null(dn_get(crt, GNUTLS_OID_X520_COMMON_NAME, 1));
    /* issuer = the CA's subject, and the CA's signature verifies */
    assert_true(gnutls_x509_crt_check_issuer(crt, ca));
    unsigned status = 1;
    assert_int_equal(gnutls_x509_crt_verify(crt, &ca, 1, 0, &status), 0);
    assert_int_equal(status, 0);
    assert_int_equal(gnutls_x509_crt_get_signature_algorithm(crt), GNUTLS_SIGN_ECDSA_SHA384);
    /* key */
    unsigned bits = 0;
    assert_int_equal(gnutls_x509_crt_get_pk_algorithm(crt, &bits), GNUTLS_PK_ECDSA);
    assert_int_equal(bits, 384);
    /* serial: positive, 128 random bits */
    uint8_t serial[32];
    size_t sz = sizeof(serial);
    assert_int_equal(gnutls_x509_crt_get_serial(crt, serial, &sz), 0);
    assert_true(sz >= 8 && sz <= 17);
    assert_int_equal(serial[0] & 0x80, 0);
    if (sz == 17)
        assert_int_equal(serial[0], 0);
    /* validity */
    assert_int_equal((int64_t)gnutls_x509_crt_get_activation_time(crt), now - 300);
    assert_int_equal((int64_t)gnutls_x509_crt_get_expiration_time(crt), now + 90 * (int64_t)DAY);
    /* SAN: exactly DNS and URI */
    char san[256];
    sz = sizeof(san);
    assert_int_equal(gnutls_x509_crt_get_subject_alt_name(crt, 0, san, &sz, NULL), GNUTLS_SAN_DNSNAME);
    assert_string_equal(san, "Val-01.eu_west.nodes.prozchain.io");
    sz = sizeof(san);
    assert_int_equal(gnutls_x509_crt_get_subject_alt_name(crt, 1, san, &sz, NULL), GNUTLS_SAN_URI);
    assert_string_equal(san, "prozchain://Val-01.eu_west");
    sz = sizeof(san);
    assert_int_equal(gnutls_x509_crt_get_subject_alt_name(crt, 2, san, &sz, NULL), GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE);
    /* key usage, EKU, basic constraints */
    unsigned ku = 0, crit = 0;
    assert_int_equal(gnutls_x509_crt_get_key_usage(crt, &ku, &crit), 0);
    assert_int_equal(ku, GNUTLS_KEY_DIGITAL_SIGNATURE | GNUTLS_KEY_KEY_ENCIPHERMENT);
    char oid[128];
    sz = sizeof(oid);
    assert_int_equal(gnutls_x509_crt_get_key_purpose_oid(crt, 0, oid, &sz, NULL), 0);
    assert_string_equal(oid, GNUTLS_KP_TLS_WWW_SERVER);
    sz = sizeof(oid);
    assert_int_equal(gnutls_x509_crt_get_key_purpose_oid(crt, 1, oid, &sz, NULL), 0);
    assert_string_equal(oid, GNUTLS_KP_TLS_WWW_CLIENT);
    sz = sizeof(oid);
    assert_int_equal(gnutls_x509_crt_get_key_purpose_oid(crt, 2, oid, &sz, NULL), GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE);
    assert_int_equal(gnutls_x509_crt_get_ca_status(crt, &crit), 0);
    /* the node-keys extension: non-critical, 70 bytes, decodes */
    gnutls_datum_t ext = {NULL, 0};
    crit = 1;
    assert_int_equal(gnutls_x509_crt_get_extension_by_oid2(crt, PZ_NODE_KEYS_OID, 0, &ext, &crit), 0);
    assert_int_equal(crit, 0);
    assert_int_equal(ext.size, PZ_NODE_KEYS_EXT_LEN);
    uint8_t sp[32], ep[32];
    static const uint8_t zero[32];
    assert_int_equal(pz_node_keys_ext_decode(ext.data, ext.size, sp, ep), 0);
    assert_memory_not_equal(sp, zero, 32);
    assert_memory_not_equal(ep, zero, 32);
    gnutls_free(ext.data);
    /* key ids */
    uint8_t a[64], b[64];
    size_t asz = sizeof(a), bsz = sizeof(b);
    assert_int_equal(gnutls_x509_crt_get_authority_key_id(crt, a, &asz, NULL), 0);
    assert_int_equal(gnutls_x509_crt_get_subject_key_id(ca, b, &bsz, NULL), 0);
    assert_int_equal(asz, bsz);
    assert_memory_equal(a, b, asz);

    /* node.key is the certificate's key */
    g_autofree char *kdata = NULL;
    gsize klen = 0;
    assert_true(g_file_get_contents(key_path, &kdata, &klen, NULL));
    assert_non_null(strstr(kdata, "-----BEGIN PRIVATE KEY-----"));
    gnutls_x509_privkey_t key;
    assert_int_equal(gnutls_x509_privkey_init(&key), 0);
    gnutls_datum_t kd = {(unsigned char *)kdata, (unsigned)klen};
    assert_int_equal(gnutls_x509_privkey_import(key, &kd, GNUTLS_X509_FMT_PEM), 0);
    asz = sizeof(a);
    bsz = sizeof(b);
    assert_int_equal(gnutls_x509_privkey_get_key_id(key, GNUTLS_KEYID_USE_SHA256, a, &asz), 0);
    assert_int_equal(gnutls_x509_crt_get_key_id(crt, GNUTLS_KEYID_USE_SHA256, b, &bsz), 0);
    assert_memory_equal(a, b, asz);
    gnutls_x509_privkey_deinit(key);

    /* pz_cert_node_info and the validation service agree */
    uint8_t *der = NULL;
    size_t len = 0;
    assert_int_equal(pz_cert_load_der(crt_path, &der, &len, NULL), 0);
    pz_cert_info info;
    assert_int_equal(pz_cert_node_info(der, len, &info, NULL), 0);
    assert_string_equal(info.node_id, "Val-01.eu_west");
    assert_string_equal(info.node_type, "validator");
    assert_int_equal(info.has_keys, 1);
    assert_memory_equal(info.sign_pub, sp, 32);
    assert_memory_equal(info.e2e_pub, ep, 32);
    g_free(der);
    pz_certval_result r = verify_node(ca_dir, crt_path);
    if (!r.valid)
        print_error("certval: %s\n", r.reason_text);
    assert_int_equal(r.valid, 1);
    assert_string_equal(r.node_id, "Val-01.eu_west");
    assert_string_equal(r.node_type, "validator");
    assert_memory_equal(r.sign_pub, sp, 32);

    gnutls_x509_crt_deinit(crt);
    gnutls_x509_crt_deinit(ca);
    pz_err_clear(&err);
}

static void test_issue_defaults_and_options(void **state)
{
    (void)state;
    g_autofree char *ca_dir = make_ca(PZ_PKI_KEY_ECDSA_P384, NULL);
    g_autofree char *out1 = fresh("node"), *out2 = fresh("node");
    assert_int_equal(issue(ca_dir, out1, "a", "light", NULL), 0);
    pz_cert_issue_opts o = {.ca_dir = ca_dir, .out_dir = out2, .node_id = "b", .node_type = "light",
                            .key_set = 1, .key = PZ_PKI_KEY_RSA_3072, .days = 1};
    assert_int_equal(pz_cert_issue(&o, (uint64_t)now, NULL), 0);
    g_autofree char *p1 = path_in(out1, "node.crt"), *p2 = path_in(out2, "node.crt");
    gnutls_x509_crt_t c1 = load_crt(p1), c2 = load_crt(p2);
    /* defaults: the CA's node_days, no C/ST/L */
    assert_int_equal((int64_t)gnutls_x509_crt_get_expiration_time(c1), now + 365 * (int64_t)DAY);
    assert_null(dn_get(c1, GNUTLS_OID_X520_COUNTRY_NAME, 0));
    assert_null(dn_get(c1, GNUTLS_OID_X520_LOCALITY_NAME, 0));
    unsigned bits = 0;
    assert_int_equal(gnutls_x509_crt_get_pk_algorithm(c2, &bits), GNUTLS_PK_RSA);
    assert_int_equal(bits, 3072);
    assert_int_equal((int64_t)gnutls_x509_crt_get_expiration_time(c2), now + DAY);
    /* serials differ */
    uint8_t s1[32], s2[32];
    size_t z1 = sizeof(s1), z2 = sizeof(s2);
    assert_int_equal(gnutls_x509_crt_get_serial(c1, s1, &z1), 0);
    assert_int_equal(gnutls_x509_crt_get_serial(c2, s2, &z2), 0);
    assert_false(z1 == z2 && !memcmp(s1, s2, z1));
    gnutls_x509_crt_deinit(c1);
    gnutls_x509_crt_deinit(c2);
}

static void test_issue_refuses_overwrite(void **state)
{
    (void)state;
    g_autofree char *ca_dir = make_ca(PZ_PKI_KEY_ECDSA_P384, NULL);
    g_autofree char *out = fresh("node");
    assert_int_equal(issue(ca_dir, out, "n", "validator", NULL), 0);
    g_autofree char *crt = path_in(out, "node.crt");
    g_autofree char *key = path_in(out, "node.key");
    g_autofree char *before = NULL, *after = NULL;
    assert_true(g_file_get_contents(crt, &before, NULL, NULL));
    int n_files = count_entries(out, NULL);
    pz_err err;
    pz_err_init(&err);
    assert_int_equal(issue(ca_dir, out, "n", "validator", &err), PZ_EEXIST);
    assert_non_null(strstr(pz_err_msg(&err), "--force"));
    assert_true(g_file_get_contents(crt, &after, NULL, NULL));
    assert_string_equal(before, after);
    int staging = 0;
    assert_int_equal(count_entries(out, &staging), n_files);
    assert_int_equal(staging, 0);

    /* node.crt and node.key gone but the node's key files left: the
     * commit refuses as a whole and writes neither certificate nor key */
    g_unlink(crt);
    g_unlink(key);
    assert_int_equal(issue(ca_dir, out, "n", "validator", &err), PZ_EEXIST);
    assert_false(g_file_test(crt, G_FILE_TEST_EXISTS));
    assert_false(g_file_test(key, G_FILE_TEST_EXISTS));
    staging = 0;
    assert_int_equal(count_entries(out, &staging), n_files - 2);
    assert_int_equal(staging, 0);

    /* --force replaces everything */
    pz_cert_issue_opts o = {.ca_dir = ca_dir, .out_dir = out, .node_id = "n", .node_type = "validator", .force = 1};
    assert_int_equal(pz_cert_issue(&o, (uint64_t)now, &err), 0);
    g_free(after);
    assert_true(g_file_get_contents(crt, &after, NULL, NULL));
    assert_string_not_equal(before, after);
    assert_int_equal(count_entries(out, NULL), n_files);
    assert_int_equal(file_mode(key), 0600);
    pz_err_clear(&err);
}

static void test_issue_bad_input(void **state)
{
    (void)state;
    g_autofree char *ca_dir = make_ca(PZ_PKI_KEY_ECDSA_P384, NULL);
    g_autofree char *out = fresh("node-bad");
    char id65[66], type33[34];
    memset(id65, 'a', 65);
    id65[65] = '\0';
    memset(type33, 'a', 33);
    type33[33] = '\0';
    struct {
        const char *what;
        pz_cert_issue_opts o;
    } cases[] = {
        {"empty id", {.node_id = "", .node_type = "v"}},
        {"NULL id", {.node_id = NULL, .node_type = "v"}},
        {"id starts with .", {.node_id = ".a", .node_type = "v"}},
        {"id starts with -", {.node_id = "-a", .node_type = "v"}},
        {"id with /", {.node_id = "a/b", .node_type = "v"}},
        {"id with space", {.node_id = "a b", .node_type = "v"}},
        {"id with :", {.node_id = "a:b", .node_type = "v"}},
        {"id 65 chars", {.node_id = id65, .node_type = "v"}},
        {"type upper", {.node_id = "a", .node_type = "Validator"}},
        {"type empty", {.node_id = "a", .node_type = ""}},
        {"type with .", {.node_id = "a", .node_type = "a.b"}},
        {"type 33 chars", {.node_id = "a", .node_type = type33}},
        {"country 3 letters", {.node_id = "a", .node_type = "v", .country = "DEU"}},
        {"country lower", {.node_id = "a", .node_type = "v", .country = "de"}},
        {"state empty", {.node_id = "a", .node_type = "v", .state = ""}},
        {"locality control", {.node_id = "a", .node_type = "v", .locality = "x\ty"}},
        {"days too many", {.node_id = "a", .node_type = "v", .days = 40000}},
        {"key out of range", {.node_id = "a", .node_type = "v", .key_set = 1, .key = (pz_pki_key)7}},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        pz_err err;
        pz_err_init(&err);
        cases[i].o.ca_dir = ca_dir;
        cases[i].o.out_dir = out;
        int rc = pz_cert_issue(&cases[i].o, (uint64_t)now, &err);
        if (rc != PZ_EINVAL)
            print_error("case %s: %d %s\n", cases[i].what, rc, pz_err_msg(&err));
        assert_int_equal(rc, PZ_EINVAL);
        assert_true(pz_err_msg(&err)[0]);
        assert_false(g_file_test(out, G_FILE_TEST_EXISTS));
        pz_err_clear(&err);
    }
    pz_cert_issue_opts o = {.ca_dir = ca_dir, .node_id = "a", .node_type = "v"};
    assert_int_equal(pz_cert_issue(&o, (uint64_t)now, NULL), PZ_EINVAL); /* no --out */
    assert_int_equal(pz_cert_issue(NULL, (uint64_t)now, NULL), PZ_EINVAL);
}

static void test_issue_bad_ca(void **state)
{
    (void)state;
    pz_err err;
    pz_err_init(&err);
    g_autofree char *out = fresh("node-badca");
    g_autofree char *missing = fresh("no-ca");
    assert_int_equal(issue(missing, out, "a", "v", &err), PZ_ENOENT);
    pz_err_clear(&err);

    /* CA key readable by others */
    g_autofree char *ca1 = make_ca(PZ_PKI_KEY_ECDSA_P384, NULL);
    g_autofree char *key1 = path_in(ca1, "ca.key");
    assert_int_equal(g_chmod(key1, 0644), 0);
    assert_int_equal(issue(ca1, out, "a", "v", &err), PZ_EPERM);
    assert_non_null(strstr(pz_err_msg(&err), "chmod 600"));
    pz_err_clear(&err);

    /* CA key of another CA */
    g_autofree char *ca2 = make_ca(PZ_PKI_KEY_ECDSA_P384, NULL);
    g_autofree char *key2 = path_in(ca2, "ca.key");
    g_autofree char *kdata = NULL;
    gsize klen = 0;
    assert_true(g_file_get_contents(key2, &kdata, &klen, NULL));
    assert_int_equal(g_chmod(key1, 0600), 0);
    assert_true(g_file_set_contents(key1, kdata, (gssize)klen, NULL));
    assert_int_equal(g_chmod(key1, 0600), 0);
    assert_int_equal(issue(ca1, out, "a", "v", &err), PZ_EINVAL);
    assert_non_null(strstr(pz_err_msg(&err), "does not belong"));
    pz_err_clear(&err);

    /* ca.yaml: broken, unknown key, missing key, bad value */
    g_autofree char *ca3 = make_ca(PZ_PKI_KEY_ECDSA_P384, NULL);
    g_autofree char *yaml = path_in(ca3, "ca.yaml");
    g_autofree char *good = NULL;
    assert_true(g_file_get_contents(yaml, &good, NULL, NULL));
    const char *bad_yaml[] = {
        "org: [unclosed\n",
        "- a list\n",
        "org: \"x\"\nkey: ecdsa-p384\nca_days: 1\nnode_key: ecdsa-p384\nnode_days: 1\ncrl_days: 1\n", /* no crl_number */
        NULL, /* good + unknown key */
        NULL, /* good with node_days: lots */
        NULL, /* good with node_key: dsa */
    };
    g_autofree char *extra = g_strconcat(good, "colour: blue\n", NULL);
    g_autofree char *bad_days = g_strdup(good);
    char *p = strstr(bad_days, "node_days: 365");
    assert_non_null(p);
    memcpy(p, "node_days: lot", 14);
    g_autofree char *bad_key = g_strdup(good);
    p = strstr(bad_key, "node_key: ecdsa-p384");
    assert_non_null(p);
    memcpy(p, "node_key: ecdsa-p999", 20);
    bad_yaml[3] = extra;
    bad_yaml[4] = bad_days;
    bad_yaml[5] = bad_key;
    for (size_t i = 0; i < G_N_ELEMENTS(bad_yaml); i++) {
        assert_true(g_file_set_contents(yaml, bad_yaml[i], -1, NULL));
        int rc = issue(ca3, out, "a", "v", &err);
        if (rc != PZ_ECONFIG)
            print_error("yaml case %zu: %d %s\n", i, rc, pz_err_msg(&err));
        assert_int_equal(rc, PZ_ECONFIG);
        assert_non_null(strstr(pz_err_msg(&err), "ca.yaml"));
        pz_err_clear(&err);
    }
    assert_false(g_file_test(out, G_FILE_TEST_EXISTS));
}

/* ---- revocation ---- */

/* `prozsec cert self-signed`: the fields of an issued certificate, signed
 * by its own key; the pin and public keys returned are the certificate's;
 * it is what key-pin pins and what no CA accepts. */
static void test_self_sign(void **state)
{
    (void)state;
    g_autofree char *out = fresh("self");
    pz_cert_issue_opts o = {.out_dir = out, .node_id = "pin-1", .node_type = "validator", .country = "NL"};
    uint8_t spki[32], sign_pub[32], e2e_pub[32];
    pz_err err;
    pz_err_init(&err);
    int rc = pz_cert_self_sign(&o, (uint64_t)now, spki, sign_pub, e2e_pub, &err);
    if (rc)
        print_error("self-sign: %s\n", pz_err_msg(&err));
    assert_int_equal(rc, 0);
    g_autofree char *crt_path = path_in(out, "node.crt"), *key_path = path_in(out, "node.key");
    assert_int_equal(file_mode(key_path), 0600);
    int staging = 0;
    assert_true(count_entries(out, &staging) >= 3);
    assert_int_equal(staging, 0);
    gnutls_x509_crt_t crt = load_crt(crt_path);
    g_autofree char *cn = dn_get(crt, GNUTLS_OID_X520_COMMON_NAME, 0);
    g_autofree char *ou = dn_get(crt, GNUTLS_OID_X520_ORGANIZATIONAL_UNIT_NAME, 0);
    g_autofree char *org = dn_get(crt, GNUTLS_OID_X520_ORGANIZATION_NAME, 0);
    g_autofree char *c = dn_get(crt, GNUTLS_OID_X520_COUNTRY_NAME, 0);
    assert_string_equal(cn, "node:pin-1");
    assert_string_equal(ou, "validator:nodes");
    assert_string_equal(org, "ProzChain");
    assert_string_equal(c, "NL");
    /* Its own issuer, and its own key's signature verifies. */
    assert_true(gnutls_x509_crt_check_issuer(crt, crt));
    unsigned status = 1;
    assert_int_equal(gnutls_x509_crt_verify(crt, &crt, 1, GNUTLS_VERIFY_ALLOW_UNSORTED_CHAIN, &status), 0);
    unsigned ca = 1, critical = 0;
    assert_int_equal(gnutls_x509_crt_get_basic_constraints(crt, &critical, &ca, NULL), 0);
    assert_int_equal(ca, 0);
    unsigned bits = 0;
    assert_int_equal(gnutls_x509_crt_get_pk_algorithm(crt, &bits), GNUTLS_PK_ECDSA);
    assert_int_equal(bits, 384);
    assert_int_equal((int64_t)gnutls_x509_crt_get_expiration_time(crt), now + 365 * (int64_t)DAY);
    /* The identity and keys read back, and the pin key-pin computes. */
    uint8_t *der = NULL;
    size_t len = 0;
    assert_int_equal(pz_cert_load_der(crt_path, &der, &len, NULL), 0);
    pz_cert_info info;
    assert_int_equal(pz_cert_node_info(der, len, &info, NULL), 0);
    assert_string_equal(info.node_id, "pin-1");
    assert_true(info.has_keys);
    assert_memory_equal(info.sign_pub, sign_pub, 32);
    assert_memory_equal(info.e2e_pub, e2e_pub, 32);
    gnutls_pubkey_t pub;
    gnutls_datum_t spki_der;
    uint8_t h[32];
    assert_int_equal(gnutls_pubkey_init(&pub), 0);
    assert_int_equal(gnutls_pubkey_import_x509(pub, crt, 0), 0);
    assert_int_equal(gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &spki_der), 0);
    assert_int_equal(gnutls_hash_fast(GNUTLS_DIG_SHA256, spki_der.data, spki_der.size, h), 0);
    assert_memory_equal(h, spki, 32);
    gnutls_free(spki_der.data);
    gnutls_pubkey_deinit(pub);
    /* No CA accepts it. */
    g_autofree char *ca_dir = make_ca(PZ_PKI_KEY_ECDSA_P384, NULL);
    pz_certval_result res = verify_node(ca_dir, crt_path);
    assert_false(res.valid);
    assert_int_equal(res.reason, PZ_CV_UNTRUSTED);
    g_free(der);
    gnutls_x509_crt_deinit(crt);

    /* Options: another key, days; NULL outputs are fine. */
    g_autofree char *out2 = fresh("self");
    pz_cert_issue_opts o2 = {.out_dir = out2, .node_id = "pin-2", .node_type = "light", .key_set = 1,
                             .key = PZ_PKI_KEY_ECDSA_P521, .days = 7};
    assert_int_equal(pz_cert_self_sign(&o2, (uint64_t)now, NULL, NULL, NULL, NULL), 0);
    g_autofree char *p2 = path_in(out2, "node.crt");
    crt = load_crt(p2);
    assert_int_equal(gnutls_x509_crt_get_pk_algorithm(crt, &bits), GNUTLS_PK_ECDSA);
    assert_int_equal(bits, 528); /* GnuTLS reports P-521 as 66 bytes */
    assert_int_equal((int64_t)gnutls_x509_crt_get_expiration_time(crt), now + 7 * (int64_t)DAY);
    gnutls_x509_crt_deinit(crt);

    /* Refusals: existing files without force, bad id, no --out; nothing written. */
    assert_int_equal(pz_cert_self_sign(&o, (uint64_t)now, spki, NULL, NULL, &err), PZ_EEXIST);
    assert_non_null(strstr(pz_err_msg(&err), "exists (use --force to replace it)"));
    o.force = 1;
    assert_int_equal(pz_cert_self_sign(&o, (uint64_t)now, spki, NULL, NULL, &err), 0);
    g_autofree char *out3 = fresh("self");
    pz_cert_issue_opts bad = {.out_dir = out3, .node_id = "-bad", .node_type = "validator"};
    assert_int_equal(pz_cert_self_sign(&bad, (uint64_t)now, NULL, NULL, NULL, &err), PZ_EINVAL);
    assert_non_null(strstr(pz_err_msg(&err), "--node-id \"-bad\""));
    bad.node_id = "ok";
    bad.node_type = "Bad Type";
    assert_int_equal(pz_cert_self_sign(&bad, (uint64_t)now, NULL, NULL, NULL, &err), PZ_EINVAL);
    bad.node_type = "validator";
    bad.out_dir = NULL;
    assert_int_equal(pz_cert_self_sign(&bad, (uint64_t)now, NULL, NULL, NULL, &err), PZ_EINVAL);
    assert_non_null(strstr(pz_err_msg(&err), "cert self-signed: --out is required"));
    assert_false(g_file_test(out3, G_FILE_TEST_EXISTS));
    /* pz_cert_issue still wants its CA. */
    pz_cert_issue_opts noca = {.out_dir = out3, .node_id = "ok", .node_type = "validator"};
    assert_int_equal(pz_cert_issue(&noca, (uint64_t)now, &err), PZ_EINVAL);
    assert_non_null(strstr(pz_err_msg(&err), "--ca and --out are required"));
    pz_err_clear(&err);
}

static void test_revoke(void **state)
{
    (void)state;
    g_autofree char *ca_dir = make_ca(PZ_PKI_KEY_ECDSA_P384, NULL);
    g_autofree char *out1 = fresh("node"), *out2 = fresh("node");
    assert_int_equal(issue(ca_dir, out1, "one", "validator", NULL), 0);
    assert_int_equal(issue(ca_dir, out2, "two", "validator", NULL), 0);
    g_autofree char *c1 = path_in(out1, "node.crt"), *c2 = path_in(out2, "node.crt");
    g_autofree char *crl_path = path_in(ca_dir, "ca.crl"), *yaml_path = path_in(ca_dir, "ca.yaml");
    g_autofree char *ca_path = path_in(ca_dir, "ca.crt");
    assert_int_equal(verify_node(ca_dir, c1).valid, 1);

    pz_err err;
    pz_err_init(&err);
    assert_int_equal(pz_cert_revoke(ca_dir, c1, (uint64_t)now, &err), 0);
    gnutls_x509_crt_t crt1 = load_crt(c1), ca = load_crt(ca_path);
    gnutls_x509_crl_t crl = load_crl(crl_path);
    assert_int_equal(gnutls_x509_crl_get_crt_count(crl), 1);
    assert_int_equal(crl_number(crl), 2);
    uint8_t s[32], e[32];
    size_t ssz = sizeof(s), esz = sizeof(e);
    time_t t = 0;
    assert_int_equal(gnutls_x509_crt_get_serial(crt1, s, &ssz), 0);
    assert_int_equal(gnutls_x509_crl_get_crt_serial(crl, 0, e, &esz, &t), 0);
    assert_int_equal(ssz, esz);
    assert_memory_equal(s, e, ssz);
    assert_int_equal((int64_t)t, now);
    unsigned status = 1;
    assert_int_equal(gnutls_x509_crl_verify(crl, &ca, 1, 0, &status), 0);
    assert_int_equal(status, 0);
    gnutls_x509_crl_deinit(crl);
    g_autofree char *yaml = NULL;
    assert_true(g_file_get_contents(yaml_path, &yaml, NULL, NULL));
    assert_non_null(strstr(yaml, "crl_number: 2\n"));

    pz_certval_result r = verify_node(ca_dir, c1);
    assert_int_equal(r.valid, 0);
    assert_int_equal(r.reason, PZ_CV_REVOKED);
    assert_int_equal(verify_node(ca_dir, c2).valid, 1);

    /* again: refused, CRL unchanged */
    assert_int_equal(pz_cert_revoke(ca_dir, c1, (uint64_t)now, &err), PZ_EEXIST);
    assert_non_null(strstr(pz_err_msg(&err), "already revoked"));
    pz_err_clear(&err);
    crl = load_crl(crl_path);
    assert_int_equal(crl_number(crl), 2);
    gnutls_x509_crl_deinit(crl);

    /* a second one keeps the first */
    assert_int_equal(pz_cert_revoke(ca_dir, c2, (uint64_t)now + 10, &err), 0);
    crl = load_crl(crl_path);
    assert_int_equal(gnutls_x509_crl_get_crt_count(crl), 2);
    assert_int_equal(crl_number(crl), 3);
    gnutls_x509_crl_deinit(crl);
    assert_int_equal(verify_node(ca_dir, c1).reason, PZ_CV_REVOKED);
    assert_int_equal(verify_node(ca_dir, c2).reason, PZ_CV_REVOKED);
    int staging = 0;
    assert_int_equal(count_entries(ca_dir, &staging), 4);
    assert_int_equal(staging, 0);

    /* a missing ca.crl is started afresh */
    g_unlink(crl_path);
    g_autofree char *out3 = fresh("node");
    assert_int_equal(issue(ca_dir, out3, "three", "validator", NULL), 0);
    g_autofree char *c3 = path_in(out3, "node.crt");
    assert_int_equal(pz_cert_revoke(ca_dir, c3, (uint64_t)now, &err), 0);
    crl = load_crl(crl_path);
    assert_int_equal(gnutls_x509_crl_get_crt_count(crl), 1);
    assert_int_equal(crl_number(crl), 4);
    gnutls_x509_crl_deinit(crl);

    gnutls_x509_crt_deinit(crt1);
    gnutls_x509_crt_deinit(ca);
    pz_err_clear(&err);
}

static void test_revoke_bad_input(void **state)
{
    (void)state;
    g_autofree char *ca_dir = make_ca(PZ_PKI_KEY_ECDSA_P384, NULL);
    g_autofree char *other = make_ca(PZ_PKI_KEY_ECDSA_P384, NULL);
    g_autofree char *out = fresh("node");
    assert_int_equal(issue(other, out, "x", "validator", NULL), 0);
    g_autofree char *foreign = path_in(out, "node.crt");
    g_autofree char *crl_path = path_in(ca_dir, "ca.crl");
    g_autofree char *before = NULL, *after = NULL;
    assert_true(g_file_get_contents(crl_path, &before, NULL, NULL));
    pz_err err;
    pz_err_init(&err);
    assert_int_equal(pz_cert_revoke(ca_dir, foreign, (uint64_t)now, &err), PZ_EINVAL);
    assert_non_null(strstr(pz_err_msg(&err), "not issued by"));
    pz_err_clear(&err);
    g_autofree char *missing = path_in(out, "nope.crt");
    assert_int_equal(pz_cert_revoke(ca_dir, missing, (uint64_t)now, &err), PZ_ENOENT);
    pz_err_clear(&err);
    g_autofree char *junk = path_in(out, "junk.crt");
    assert_true(g_file_set_contents(junk, "not a certificate", -1, NULL));
    assert_int_equal(pz_cert_revoke(ca_dir, junk, (uint64_t)now, &err), PZ_EINVAL);
    pz_err_clear(&err);
    g_autofree char *nodir = fresh("no-ca");
    assert_int_equal(pz_cert_revoke(nodir, foreign, (uint64_t)now, &err), PZ_ENOENT);
    pz_err_clear(&err);
    /* a CRL signed by someone else is not extended */
    g_autofree char *other_crl = path_in(other, "ca.crl");
    g_autofree char *ocrl = NULL;
    assert_true(g_file_get_contents(other_crl, &ocrl, NULL, NULL));
    assert_true(g_file_set_contents(crl_path, ocrl, -1, NULL));
    g_autofree char *out2 = fresh("node");
    assert_int_equal(issue(ca_dir, out2, "y", "validator", NULL), 0);
    g_autofree char *mine = path_in(out2, "node.crt");
    assert_int_equal(pz_cert_revoke(ca_dir, mine, (uint64_t)now, &err), PZ_EINVAL);
    assert_true(g_file_get_contents(crl_path, &after, NULL, NULL));
    assert_string_equal(after, ocrl);
    assert_int_equal(pz_cert_revoke(NULL, mine, (uint64_t)now, NULL), PZ_EINVAL);
    assert_int_equal(pz_cert_revoke(ca_dir, NULL, (uint64_t)now, NULL), PZ_EINVAL);
    pz_err_clear(&err);
}

/* ---- reading certificates ---- */

static void test_load_der_and_node_info(void **state)
{
    (void)state;
    pz_fix_ca ca;
    assert_int_equal(pz_fix_ca_new(&ca, PZ_FIX_P384, "T", now, 0, 0), 0);
    uint8_t sp[32], ep[32];
    memset(sp, 7, 32);
    memset(ep, 9, 32);
    pz_fix_leaf_opts o = {.node_id = "n-1", .node_type = "archive", .sign_pub = sp, .e2e_pub = ep};
    gnutls_x509_crt_t crt;
    assert_int_equal(pz_fix_leaf(&ca, &o, now, &crt, NULL), 0);
    g_autofree char *dir = fresh("load");
    g_mkdir(dir, 0700);
    g_autofree char *pem = path_in(dir, "c.pem"), *der_path = path_in(dir, "c.der");
    assert_int_equal(pz_fix_write_crt(pem, crt), 0);
    gnutls_datum_t d = {NULL, 0};
    assert_int_equal(pz_fix_export(crt, GNUTLS_X509_FMT_DER, &d), 0);
    assert_true(g_file_set_contents(der_path, (const char *)d.data, d.size, NULL));

    uint8_t *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    assert_int_equal(pz_cert_load_der(pem, &a, &alen, NULL), 0);
    assert_int_equal(pz_cert_load_der(der_path, &b, &blen, NULL), 0);
    assert_int_equal(alen, d.size);
    assert_int_equal(blen, d.size);
    assert_memory_equal(a, d.data, d.size);
    assert_memory_equal(b, d.data, d.size);

    pz_cert_info info;
    assert_int_equal(pz_cert_node_info(a, alen, &info, NULL), 0);
    assert_string_equal(info.node_id, "n-1");
    assert_string_equal(info.node_type, "archive");
    assert_int_equal(info.has_keys, 1);
    assert_memory_equal(info.sign_pub, sp, 32);
    assert_memory_equal(info.e2e_pub, ep, 32);

    /* bad files */
    g_autofree char *junk = path_in(dir, "junk"), *badpem = path_in(dir, "bad.pem"), *big = path_in(dir, "big");
    g_autofree char *nokey = path_in(dir, "key.pem"), *missing = path_in(dir, "missing");
    assert_true(g_file_set_contents(junk, "\x30\x03\x02\x01\x01", 5, NULL));
    assert_true(g_file_set_contents(badpem, "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n", -1, NULL));
    assert_true(g_file_set_contents(nokey, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", -1, NULL));
    g_autofree char *bigdata = g_malloc0((1u << 20) + 1);
    assert_true(g_file_set_contents(big, bigdata, (1 << 20) + 1, NULL));
    const char *bad[] = {junk, badpem, nokey, big};
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        uint8_t *x = NULL;
        size_t xl = 0;
        pz_err err;
        pz_err_init(&err);
        assert_int_equal(pz_cert_load_der(bad[i], &x, &xl, &err), PZ_EINVAL);
        assert_null(x);
        assert_non_null(strstr(pz_err_msg(&err), dir));
        pz_err_clear(&err);
    }
    uint8_t *x = NULL;
    size_t xl = 0;
    assert_int_equal(pz_cert_load_der(missing, &x, &xl, NULL), PZ_ENOENT);
    assert_int_equal(pz_cert_load_der(NULL, &x, &xl, NULL), PZ_EINVAL);

    /* node info refusals */
    pz_err err;
    pz_err_init(&err);
    assert_int_equal(pz_cert_node_info(a, alen - 1, &info, &err), PZ_EINVAL);
    assert_int_equal(pz_cert_node_info(NULL, 10, &info, NULL), PZ_EINVAL);
    assert_int_equal(pz_cert_node_info(a, alen, NULL, NULL), PZ_EINVAL);
    struct {
        pz_fix_leaf_opts o;
        const char *msg;
    } cases[] = {
        {{.cn = "server.example"}, "CN"},
        {{.ou = "admins"}, "OU"},
        {{.cn = ""}, "CN"},
        {{.raw_keys_ext = (const uint8_t *)"\x30\x00", .raw_keys_ext_len = 2}, "node-keys"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        gnutls_x509_crt_t bad_crt;
        assert_int_equal(pz_fix_leaf(&ca, &cases[i].o, now, &bad_crt, NULL), 0);
        gnutls_datum_t bd = {NULL, 0};
        assert_int_equal(pz_fix_export(bad_crt, GNUTLS_X509_FMT_DER, &bd), 0);
        assert_int_equal(pz_cert_node_info(bd.data, bd.size, &info, &err), PZ_EINVAL);
        assert_non_null(strstr(pz_err_msg(&err), cases[i].msg));
        pz_err_clear(&err);
        gnutls_free(bd.data);
        gnutls_x509_crt_deinit(bad_crt);
    }
    /* without the extension: has_keys 0 */
    gnutls_x509_crt_t plain;
    assert_int_equal(pz_fix_leaf(&ca, NULL, now, &plain, NULL), 0);
    gnutls_datum_t pd = {NULL, 0};
    assert_int_equal(pz_fix_export(plain, GNUTLS_X509_FMT_DER, &pd), 0);
    assert_int_equal(pz_cert_node_info(pd.data, pd.size, &info, NULL), 0);
    assert_int_equal(info.has_keys, 0);
    gnutls_free(pd.data);
    gnutls_x509_crt_deinit(plain);

    g_free(a);
    g_free(b);
    gnutls_free(d.data);
    gnutls_x509_crt_deinit(crt);
    pz_fix_ca_clear(&ca);
}

static void test_describe(void **state)
{
    (void)state;
    g_autofree char *ca_dir = make_ca(PZ_PKI_KEY_ECDSA_P384, NULL);
    g_autofree char *out = fresh("node");
    assert_int_equal(issue(ca_dir, out, "shown", "validator", NULL), 0);
    g_autofree char *path = path_in(out, "node.crt");
    uint8_t *der = NULL;
    size_t len = 0;
    assert_int_equal(pz_cert_load_der(path, &der, &len, NULL), 0);
    char *text = NULL;
    assert_int_equal(pz_cert_describe(der, len, &text, NULL), 0);
    const char *want[] = {"node id:             shown\n", "node type:           validator\n", "serial:",
                          "valid from:", "valid until:", "ECDSA SECP384R1\n", "ECDSA-SHA384",
                          "DNS:shown.nodes.prozchain.io", "URI:prozchain://shown",
                          "digitalSignature, keyEncipherment", "serverAuth, clientAuth", "SHA-256 fingerprint:",
                          "public key SHA-256:", "signing key:", "(Ed25519)", "E2E key:", "(X25519)"};
    for (size_t i = 0; i < G_N_ELEMENTS(want); i++) {
        if (!strstr(text, want[i]))
            print_error("missing \"%s\" in:\n%s", want[i], text);
        assert_non_null(strstr(text, want[i]));
    }
    g_free(text);
    /* a non-node certificate is still described, with the identity problem */
    g_autofree char *ca_crt = path_in(ca_dir, "ca.crt");
    g_free(der);
    assert_int_equal(pz_cert_load_der(ca_crt, &der, &len, NULL), 0);
    assert_int_equal(pz_cert_describe(der, len, &text, NULL), 0);
    assert_non_null(strstr(text, "identity:"));
    assert_non_null(strstr(text, "keyCertSign, cRLSign"));
    assert_non_null(strstr(text, "embedded keys:"));
    g_free(text);
    assert_int_equal(pz_cert_describe(der, 3, &text, NULL), PZ_EINVAL);
    assert_null(text);
    assert_int_equal(pz_cert_describe(der, len, NULL, NULL), PZ_EINVAL);
    g_free(der);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ca_init_default),
        cmocka_unit_test(test_ca_init_variants),
        cmocka_unit_test(test_ca_init_refuses_overwrite),
        cmocka_unit_test(test_ca_init_bad_options),
        cmocka_unit_test(test_key_names),
        cmocka_unit_test(test_issue_every_field),
        cmocka_unit_test(test_issue_defaults_and_options),
        cmocka_unit_test(test_issue_refuses_overwrite),
        cmocka_unit_test(test_issue_bad_input),
        cmocka_unit_test(test_issue_bad_ca),
        cmocka_unit_test(test_self_sign),
        cmocka_unit_test(test_revoke),
        cmocka_unit_test(test_revoke_bad_input),
        cmocka_unit_test(test_load_der_and_node_info),
        cmocka_unit_test(test_describe),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
