/* tests/unit/test_certval.c — the certificate validation service: every
 * refusal reason, the option floors, reload, and concurrent use. Fixtures
 * are generated at run time (certfix.h). */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "certfix.h"
#include "certval.h"

#define DAY 86400

typedef struct fx {
    int64_t now;
    char *dir;
    pz_fix_ca ca;      /* trusted, P-384 */
    pz_fix_ca rsa_ca;  /* trusted, RSA-3072 (signs the MD5 fixture) */
    pz_fix_ca foreign; /* not trusted */
    char *ca_file, *rsa_ca_file, *foreign_file, *crl_file, *foreign_crl_file;
    gnutls_x509_crt_t revoked;
    pz_certval *cv;
} fx;

static fx F;

static char *write_crt(const char *name, gnutls_x509_crt_t crt)
{
    char *path = g_build_filename(F.dir, name, NULL);
    assert_int_equal(pz_fix_write_crt(path, crt), 0);
    return path;
}

static char *write_file(const char *name, const void *data, size_t len)
{
    char *path = g_build_filename(F.dir, name, NULL);
    assert_true(g_file_set_contents(path, data, (gssize)len, NULL));
    return path;
}

static char *write_crl(const char *name, const pz_fix_ca *ca, gnutls_x509_crt_t *revoked, size_t n)
{
    gnutls_datum_t d = {NULL, 0};
    assert_int_equal(pz_fix_crl(ca, revoked, n, F.now, GNUTLS_X509_FMT_PEM, &d), 0);
    char *path = write_file(name, d.data, d.size);
    gnutls_free(d.data);
    return path;
}

static int group_setup(void **state)
{
    (void)state;
    assert_int_equal(gnutls_global_init(), 0);
    memset(&F, 0, sizeof(F));
    F.now = (int64_t)time(NULL);
    F.dir = g_dir_make_tmp("pz-certval-XXXXXX", NULL);
    assert_non_null(F.dir);
    assert_int_equal(pz_fix_ca_new(&F.ca, PZ_FIX_P384, "ProzChain Test", F.now, 0, 0), 0);
    assert_int_equal(pz_fix_ca_new(&F.rsa_ca, PZ_FIX_RSA3072, "ProzChain RSA Test", F.now, 0, 0), 0);
    assert_int_equal(pz_fix_ca_new(&F.foreign, PZ_FIX_P384, "Foreign", F.now, 0, 0), 0);
    F.ca_file = write_crt("ca.crt", F.ca.crt);
    F.rsa_ca_file = write_crt("rsa-ca.crt", F.rsa_ca.crt);
    F.foreign_file = write_crt("foreign.crt", F.foreign.crt);
    pz_fix_leaf_opts o = {.node_id = "revoked-1"};
    assert_int_equal(pz_fix_leaf(&F.ca, &o, F.now, &F.revoked, NULL), 0);
    F.crl_file = write_crl("ca.crl", &F.ca, &F.revoked, 1);
    F.foreign_crl_file = write_crl("foreign.crl", &F.foreign, NULL, 0);

    const char *cas[] = {F.ca_file, F.rsa_ca_file};
    const char *crls[] = {F.crl_file};
    pz_certval_opts opts = {.ca_files = cas, .n_ca_files = 2, .crl_files = crls, .n_crl_files = 1};
    pz_err err;
    pz_err_init(&err);
    int rc = pz_certval_new(&opts, &F.cv, &err);
    if (rc)
        print_error("pz_certval_new: %s\n", pz_err_msg(&err));
    assert_int_equal(rc, 0);
    pz_err_clear(&err);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    pz_certval_free(F.cv);
    gnutls_x509_crt_deinit(F.revoked);
    pz_fix_ca_clear(&F.ca);
    pz_fix_ca_clear(&F.rsa_ca);
    pz_fix_ca_clear(&F.foreign);
    GDir *d = g_dir_open(F.dir, 0, NULL);
    const char *name;
    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *p = g_build_filename(F.dir, name, NULL);
        g_unlink(p);
    }
    if (d)
        g_dir_close(d);
    g_rmdir(F.dir);
    g_free(F.dir);
    g_free(F.ca_file);
    g_free(F.rsa_ca_file);
    g_free(F.foreign_file);
    g_free(F.crl_file);
    g_free(F.foreign_crl_file);
    gnutls_global_deinit();
    return 0;
}

/* Verify the chain CRTS[0..N-1] with CV for PURPOSE into OUT; returns the
 * function's return code. */
static int verify_chain(pz_certval *cv, gnutls_x509_crt_t *crts, size_t n, int purpose, pz_certval_result *out)
{
    gnutls_datum_t d[4];
    const uint8_t *ders[4];
    size_t lens[4];
    assert_true(n <= 4);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(pz_fix_export(crts[i], GNUTLS_X509_FMT_DER, &d[i]), 0);
        ders[i] = d[i].data;
        lens[i] = d[i].size;
    }
    int rc = pz_certval_verify(cv, ders, lens, n, (uint64_t)F.now, purpose, out);
    for (size_t i = 0; i < n; i++)
        gnutls_free(d[i].data);
    return rc;
}

/* Make a leaf per O signed by CA and verify it for PURPOSE. */
static pz_certval_reason check_leaf(const pz_fix_ca *ca, const pz_fix_leaf_opts *o, int purpose,
                                    pz_certval_result *out)
{
    gnutls_x509_crt_t crt = NULL;
    assert_int_equal(pz_fix_leaf(ca, o, F.now, &crt, NULL), 0);
    assert_int_equal(verify_chain(F.cv, &crt, 1, purpose, out), 0);
    gnutls_x509_crt_deinit(crt);
    if (out->valid)
        assert_int_equal(out->reason, PZ_CV_OK);
    else
        assert_int_not_equal(out->reason, PZ_CV_OK);
    assert_true(out->reason_text[0] != '\0');
    return out->reason;
}

/* ---- accepted ---- */

static void test_valid_p384_with_keys(void **state)
{
    (void)state;
    uint8_t sp[32], ep[32];
    for (int i = 0; i < 32; i++)
        sp[i] = (uint8_t)i, ep[i] = (uint8_t)(0xa0 + i);
    pz_fix_leaf_opts o = {.node_id = "alpha.node_1-x", .node_type = "full-node", .sign_pub = sp, .e2e_pub = ep};
    pz_certval_result r;
    assert_int_equal(check_leaf(&F.ca, &o, PZ_CERTVAL_CLIENT | PZ_CERTVAL_SERVER, &r), PZ_CV_OK);
    assert_int_equal(r.valid, 1);
    assert_string_equal(r.node_id, "alpha.node_1-x");
    assert_string_equal(r.node_type, "full-node");
    assert_int_equal(r.has_keys, 1);
    assert_memory_equal(r.sign_pub, sp, 32);
    assert_memory_equal(r.e2e_pub, ep, 32);
    assert_true(r.not_after > (uint64_t)F.now);
    static const uint8_t zero[32];
    assert_memory_not_equal(r.leaf_sha256, zero, 32);
    assert_string_equal(pz_certval_reason_name(r.reason), "ok");
}

static void test_valid_variants(void **state)
{
    (void)state;
    pz_certval_result r;
    pz_fix_leaf_opts rsa = {.key = PZ_FIX_RSA2048, .hash = GNUTLS_DIG_SHA256};
    assert_int_equal(check_leaf(&F.ca, &rsa, PZ_CERTVAL_CLIENT, &r), PZ_CV_OK);
    assert_int_equal(r.has_keys, 0);
    pz_fix_leaf_opts p521 = {.key = PZ_FIX_P521, .hash = GNUTLS_DIG_SHA512};
    assert_int_equal(check_leaf(&F.ca, &p521, PZ_CERTVAL_SERVER, &r), PZ_CV_OK);
    /* signed by the second trusted CA */
    assert_int_equal(check_leaf(&F.rsa_ca, NULL, PZ_CERTVAL_SERVER, &r), PZ_CV_OK);
    /* serverAuth only is fine for a client-less server check and vice versa */
    pz_fix_leaf_opts srv = {.no_client_auth = 1};
    assert_int_equal(check_leaf(&F.ca, &srv, PZ_CERTVAL_SERVER, &r), PZ_CV_OK);
    pz_fix_leaf_opts cli = {.no_server_auth = 1};
    assert_int_equal(check_leaf(&F.ca, &cli, PZ_CERTVAL_CLIENT, &r), PZ_CV_OK);
    /* other URIs and key usages alongside are fine */
    pz_fix_leaf_opts extra = {.extra_uri = "https://node-1.example/",
                              .key_usage = GNUTLS_KEY_DIGITAL_SIGNATURE | GNUTLS_KEY_KEY_AGREEMENT};
    assert_int_equal(check_leaf(&F.ca, &extra, PZ_CERTVAL_CLIENT, &r), PZ_CV_OK);
}

static void test_valid_intermediate(void **state)
{
    (void)state;
    pz_fix_ca sub;
    assert_int_equal(pz_fix_ca_sub(&sub, &F.ca, PZ_FIX_P384, "ProzChain Sub", F.now), 0);
    gnutls_x509_crt_t chain[2] = {NULL, sub.crt};
    pz_fix_leaf_opts o = {.node_id = "via-sub"};
    assert_int_equal(pz_fix_leaf(&sub, &o, F.now, &chain[0], NULL), 0);
    pz_certval_result r;
    assert_int_equal(verify_chain(F.cv, chain, 2, PZ_CERTVAL_CLIENT, &r), 0);
    assert_int_equal(r.valid, 1);
    assert_string_equal(r.node_id, "via-sub");
    /* without the intermediate the leaf does not chain */
    assert_int_equal(verify_chain(F.cv, chain, 1, PZ_CERTVAL_CLIENT, &r), 0);
    assert_int_equal(r.reason, PZ_CV_UNTRUSTED);
    gnutls_x509_crt_deinit(chain[0]);
    pz_fix_ca_clear(&sub);
}

/* ---- each refusal ---- */

typedef struct refusal_case {
    const char *what;
    pz_fix_leaf_opts opts;
    int signer; /* 0 trusted P-384 CA, 1 foreign CA, 2 trusted RSA CA */
    int purpose;
    pz_certval_reason want;
} refusal_case;

static void test_refusals(void **state)
{
    (void)state;
    static const uint8_t bad_ext[] = {0x30, 0x04, 0x04, 0x02, 0x01, 0x02};
    static const uint8_t k32[32] = {1, 2, 3};
    const int64_t now = F.now;
    const int both = PZ_CERTVAL_CLIENT | PZ_CERTVAL_SERVER;
    const refusal_case cases[] = {
        {"foreign CA", {0}, 1, both, PZ_CV_UNTRUSTED},
        {"expired", {.not_before = now - 60 * DAY, .not_after = now - DAY}, 0, both, PZ_CV_EXPIRED},
        {"expired a second ago", {.not_before = now - DAY, .not_after = now - 1}, 0, both, PZ_CV_EXPIRED},
        {"not yet valid", {.not_before = now + DAY, .not_after = now + 60 * DAY}, 0, both, PZ_CV_NOT_YET_VALID},
        {"RSA-1024", {.key = PZ_FIX_RSA1024}, 0, both, PZ_CV_WEAK_RSA},
        {"ECDSA P-256", {.key = PZ_FIX_P256}, 0, both, PZ_CV_WEAK_CURVE},
        {"Ed25519 TLS key", {.key = PZ_FIX_ED25519}, 0, both, PZ_CV_UNSUPPORTED_KEY},
        {"SHA-1 signature", {.hash = GNUTLS_DIG_SHA1}, 0, both, PZ_CV_WEAK_HASH},
        {"MD5 signature", {.hash = GNUTLS_DIG_MD5}, 2, both, PZ_CV_WEAK_HASH},
        {"SHA-224 signature", {.hash = GNUTLS_DIG_SHA224}, 0, both, PZ_CV_WEAK_HASH},
        {"no clientAuth", {.no_client_auth = 1}, 0, PZ_CERTVAL_CLIENT, PZ_CV_NO_EKU},
        {"no serverAuth", {.no_server_auth = 1}, 0, PZ_CERTVAL_SERVER, PZ_CV_NO_EKU},
        {"no clientAuth, both asked", {.no_client_auth = 1}, 0, both, PZ_CV_NO_EKU},
        {"no EKU at all", {.no_eku = 1}, 0, PZ_CERTVAL_CLIENT, PZ_CV_NO_EKU},
        {"leaf is a CA", {.is_ca = 1}, 0, both, PZ_CV_LEAF_IS_CA},
        {"CN/SAN mismatch", {.san_id = "someone-else"}, 0, both, PZ_CV_NODE_ID_MISMATCH},
        {"no SAN URI", {.san_id = ""}, 0, both, PZ_CV_NODE_ID_MISMATCH},
        {"no CN", {.cn = ""}, 0, both, PZ_CV_BAD_NODE_ID},
        {"CN without node:", {.cn = "node-1"}, 0, both, PZ_CV_BAD_NODE_ID},
        {"CN id starting with -", {.cn = "node:-x", .san_id = "-x"}, 0, both, PZ_CV_BAD_NODE_ID},
        {"CN id with space", {.cn = "node:a b", .san_id = "a b"}, 0, both, PZ_CV_BAD_NODE_ID},
        {"CN id too long",
         {.cn = "node:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
         0,
         both,
         PZ_CV_BAD_NODE_ID},
        {"no OU", {.ou = ""}, 0, both, PZ_CV_BAD_NODE_TYPE},
        {"OU without :nodes", {.ou = "validator"}, 0, both, PZ_CV_BAD_NODE_TYPE},
        {"OU type upper case", {.ou = "Validator:nodes"}, 0, both, PZ_CV_BAD_NODE_TYPE},
        {"OU empty type", {.ou = ":nodes"}, 0, both, PZ_CV_BAD_NODE_TYPE},
        {"malformed node-keys", {.raw_keys_ext = bad_ext, .raw_keys_ext_len = sizeof(bad_ext)}, 0, both,
         PZ_CV_BAD_NODE_KEYS},
        {"critical node-keys", {.sign_pub = k32, .e2e_pub = k32, .keys_ext_critical = 1}, 0, both,
         PZ_CV_BAD_NODE_KEYS},
        {"key usage without digitalSignature", {.key_usage = GNUTLS_KEY_KEY_ENCIPHERMENT}, 0, both,
         PZ_CV_BAD_KEY_USAGE},
        {"two prozchain:// URIs", {.extra_uri = "prozchain://node-2"}, 0, both, PZ_CV_NODE_ID_MISMATCH},
        {"same URI twice", {.extra_uri = "prozchain://node-1"}, 0, both, PZ_CV_NODE_ID_MISMATCH},
    };
    const pz_fix_ca *signers[] = {&F.ca, &F.foreign, &F.rsa_ca};
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        pz_certval_result r;
        pz_certval_reason got = check_leaf(signers[cases[i].signer], &cases[i].opts, cases[i].purpose, &r);
        if (got != cases[i].want)
            print_error("case \"%s\": got %s (%s), want %s\n", cases[i].what, pz_certval_reason_name(got),
                        r.reason_text, pz_certval_reason_name(cases[i].want));
        if (g_getenv("PZ_TEST_VERBOSE"))
            print_message("%-28s -> %s: %s\n", cases[i].what, pz_certval_reason_name(got), r.reason_text);
        assert_int_equal(got, cases[i].want);
        assert_int_equal(r.valid, 0);
        assert_int_equal(r.has_keys, 0);
    }
}

static void test_revoked(void **state)
{
    (void)state;
    pz_certval_result r;
    assert_int_equal(verify_chain(F.cv, &F.revoked, 1, PZ_CERTVAL_CLIENT, &r), 0);
    assert_int_equal(r.valid, 0);
    assert_int_equal(r.reason, PZ_CV_REVOKED);
    assert_string_equal(pz_certval_reason_name(r.reason), "revoked");
}

static void test_malformed_and_empty(void **state)
{
    (void)state;
    pz_certval_result r;
    static const uint8_t junk[] = {0x30, 0x03, 0x02, 0x01, 0x01};
    const uint8_t *ders[] = {junk};
    size_t lens[] = {sizeof(junk)};
    assert_int_equal(pz_certval_verify(F.cv, ders, lens, 1, (uint64_t)F.now, PZ_CERTVAL_CLIENT, &r), 0);
    assert_int_equal(r.reason, PZ_CV_MALFORMED);
    lens[0] = 0;
    assert_int_equal(pz_certval_verify(F.cv, ders, lens, 1, (uint64_t)F.now, PZ_CERTVAL_CLIENT, &r), 0);
    assert_int_equal(r.reason, PZ_CV_MALFORMED);
    ders[0] = NULL;
    lens[0] = 10;
    assert_int_equal(pz_certval_verify(F.cv, ders, lens, 1, (uint64_t)F.now, PZ_CERTVAL_CLIENT, &r), 0);
    assert_int_equal(r.reason, PZ_CV_MALFORMED);
    assert_int_equal(pz_certval_verify(F.cv, NULL, NULL, 0, (uint64_t)F.now, PZ_CERTVAL_CLIENT, &r), 0);
    assert_int_equal(r.valid, 0);
    assert_int_equal(r.reason, PZ_CV_NO_CERT);
    /* bad arguments are errors, not refusals */
    assert_int_equal(pz_certval_verify(F.cv, ders, lens, 1, (uint64_t)F.now, 0, &r), PZ_EINVAL);
    assert_int_equal(r.valid, 0);
    assert_int_equal(pz_certval_verify(NULL, ders, lens, 1, (uint64_t)F.now, PZ_CERTVAL_CLIENT, &r), PZ_EINVAL);
    assert_int_equal(pz_certval_verify(F.cv, NULL, lens, 1, (uint64_t)F.now, PZ_CERTVAL_CLIENT, &r), PZ_EINVAL);
    assert_int_equal(pz_certval_verify(F.cv, ders, lens, 1, (uint64_t)F.now, PZ_CERTVAL_CLIENT, NULL), PZ_EINVAL);
}

static void test_chain_too_long(void **state)
{
    (void)state;
    const char *cas[] = {F.ca_file};
    pz_certval_opts opts = {.ca_files = cas, .n_ca_files = 1, .max_depth = 2};
    pz_certval *cv = NULL;
    assert_int_equal(pz_certval_new(&opts, &cv, NULL), 0);
    gnutls_x509_crt_t chain[3] = {NULL, F.ca.crt, F.ca.crt};
    assert_int_equal(pz_fix_leaf(&F.ca, NULL, F.now, &chain[0], NULL), 0);
    pz_certval_result r;
    assert_int_equal(verify_chain(cv, chain, 3, PZ_CERTVAL_CLIENT, &r), 0);
    assert_int_equal(r.reason, PZ_CV_CHAIN_TOO_LONG);
    /* leaf + its CA is within the limit and valid */
    assert_int_equal(verify_chain(cv, chain, 2, PZ_CERTVAL_CLIENT, &r), 0);
    assert_int_equal(r.valid, 1);
    gnutls_x509_crt_deinit(chain[0]);
    pz_certval_free(cv);
}

static void test_expired_trusted_ca(void **state)
{
    (void)state;
    pz_fix_ca old;
    assert_int_equal(pz_fix_ca_new(&old, PZ_FIX_P384, "Old CA", F.now - 400 * DAY, F.now - DAY, 0), 0);
    g_autofree char *path = write_crt("old-ca.crt", old.crt);
    const char *cas[] = {path};
    pz_certval_opts opts = {.ca_files = cas, .n_ca_files = 1};
    pz_certval *cv = NULL;
    assert_int_equal(pz_certval_new(&opts, &cv, NULL), 0);
    gnutls_x509_crt_t leaf = NULL;
    assert_int_equal(pz_fix_leaf(&old, NULL, F.now, &leaf, NULL), 0);
    pz_certval_result r;
    assert_int_equal(verify_chain(cv, &leaf, 1, PZ_CERTVAL_CLIENT, &r), 0);
    assert_int_equal(r.reason, PZ_CV_EXPIRED);
    assert_non_null(strstr(r.reason_text, "trusted CA"));
    gnutls_x509_crt_deinit(leaf);
    pz_certval_free(cv);
    pz_fix_ca_clear(&old);
}

static void test_raised_floors_and_extra_eku(void **state)
{
    (void)state;
    const char *cas[] = {F.ca_file};
    pz_certval_opts opts = {.ca_files = cas, .n_ca_files = 1, .min_ecdsa_bits = 521, .min_rsa_bits = 3072};
    pz_certval *cv = NULL;
    pz_err err;
    pz_err_init(&err);
    /* the CA itself (P-384) is below the raised ECDSA floor: refused at load */
    assert_int_equal(pz_certval_new(&opts, &cv, &err), PZ_ECRYPTO);
    assert_non_null(strstr(pz_err_msg(&err), "ca.crt"));
    pz_err_clear(&err);

    /* with a P-521 CA the floors apply to leaves */
    pz_fix_ca big;
    assert_int_equal(pz_fix_ca_new(&big, PZ_FIX_P521, "Big CA", F.now, 0, GNUTLS_DIG_SHA512), 0);
    g_autofree char *path = write_crt("big-ca.crt", big.crt);
    cas[0] = path;
    assert_int_equal(pz_certval_new(&opts, &cv, &err), 0);
    gnutls_x509_crt_t leaf = NULL;
    pz_certval_result r;
    pz_fix_leaf_opts p384 = {0};
    assert_int_equal(pz_fix_leaf(&big, &p384, F.now, &leaf, NULL), 0);
    assert_int_equal(verify_chain(cv, &leaf, 1, PZ_CERTVAL_CLIENT, &r), 0);
    assert_int_equal(r.reason, PZ_CV_WEAK_ECDSA);
    gnutls_x509_crt_deinit(leaf);
    pz_fix_leaf_opts rsa = {.key = PZ_FIX_RSA2048};
    assert_int_equal(pz_fix_leaf(&big, &rsa, F.now, &leaf, NULL), 0);
    assert_int_equal(verify_chain(cv, &leaf, 1, PZ_CERTVAL_CLIENT, &r), 0);
    assert_int_equal(r.reason, PZ_CV_WEAK_RSA);
    gnutls_x509_crt_deinit(leaf);
    pz_certval_free(cv);

    /* an extra required EKU */
    opts.min_ecdsa_bits = opts.min_rsa_bits = 0;
    opts.required_eku = GNUTLS_KP_TIME_STAMPING;
    assert_int_equal(pz_certval_new(&opts, &cv, &err), 0);
    assert_int_equal(pz_fix_leaf(&big, NULL, F.now, &leaf, NULL), 0);
    assert_int_equal(verify_chain(cv, &leaf, 1, PZ_CERTVAL_CLIENT, &r), 0);
    assert_int_equal(r.reason, PZ_CV_NO_EKU);
    assert_non_null(strstr(r.reason_text, GNUTLS_KP_TIME_STAMPING));
    gnutls_x509_crt_deinit(leaf);
    pz_certval_free(cv);
    pz_fix_ca_clear(&big);
    pz_err_clear(&err);
}

/* ---- options refused ---- */

static void test_bad_options(void **state)
{
    (void)state;
    pz_fix_ca weak;
    assert_int_equal(pz_fix_ca_new(&weak, PZ_FIX_RSA1024, "Weak CA", F.now, 0, GNUTLS_DIG_SHA256), 0);
    g_autofree char *weak_file = write_crt("weak-ca.crt", weak.crt);
    gnutls_x509_crt_t leaf = NULL;
    assert_int_equal(pz_fix_leaf(&F.ca, NULL, F.now, &leaf, NULL), 0);
    g_autofree char *leaf_file = write_crt("leaf.crt", leaf);
    g_autofree char *junk_file = write_file("junk.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", 58);
    g_autofree char *empty_file = write_file("empty", "", 0);
    g_autofree char *missing = g_build_filename(F.dir, "missing.crt", NULL);

    const char *ca1[] = {F.ca_file};
    const char *weak1[] = {weak_file};
    const char *leaf1[] = {leaf_file};
    const char *junk1[] = {junk_file};
    const char *empty1[] = {empty_file};
    const char *missing1[] = {missing};
    const char *foreign_crl[] = {F.foreign_crl_file};
    const char *junk_crl[] = {junk_file};
    struct {
        const char *what;
        pz_certval_opts o;
        int want;
    } cases[] = {
        {"no CA", {.n_ca_files = 0}, PZ_EINVAL},
        {"RSA floor lowered", {.ca_files = ca1, .n_ca_files = 1, .min_rsa_bits = 1024}, PZ_EINVAL},
        {"ECDSA floor lowered", {.ca_files = ca1, .n_ca_files = 1, .min_ecdsa_bits = 256}, PZ_EINVAL},
        {"depth too high", {.ca_files = ca1, .n_ca_files = 1, .max_depth = 17}, PZ_EINVAL},
        {"EKU not an OID", {.ca_files = ca1, .n_ca_files = 1, .required_eku = "clientAuth"}, PZ_EINVAL},
        {"EKU trailing dot", {.ca_files = ca1, .n_ca_files = 1, .required_eku = "1.3."}, PZ_EINVAL},
        {"CRL count without list", {.ca_files = ca1, .n_ca_files = 1, .n_crl_files = 1}, PZ_EINVAL},
        {"missing CA file", {.ca_files = missing1, .n_ca_files = 1}, PZ_ENOENT},
        {"empty CA file", {.ca_files = empty1, .n_ca_files = 1}, PZ_EINVAL},
        {"junk CA file", {.ca_files = junk1, .n_ca_files = 1}, PZ_ECRYPTO},
        {"leaf as CA", {.ca_files = leaf1, .n_ca_files = 1}, PZ_ECRYPTO},
        {"RSA-1024 CA", {.ca_files = weak1, .n_ca_files = 1}, PZ_ECRYPTO},
        {"CRL of a foreign CA", {.ca_files = ca1, .n_ca_files = 1, .crl_files = foreign_crl, .n_crl_files = 1},
         PZ_ECRYPTO},
        {"junk CRL", {.ca_files = ca1, .n_ca_files = 1, .crl_files = junk_crl, .n_crl_files = 1}, PZ_ECRYPTO},
        {"missing CRL", {.ca_files = ca1, .n_ca_files = 1, .crl_files = missing1, .n_crl_files = 1}, PZ_ENOENT},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        pz_err err;
        pz_err_init(&err);
        pz_certval *cv = (pz_certval *)&err; /* must be reset to NULL */
        int rc = pz_certval_new(&cases[i].o, &cv, &err);
        if (rc != cases[i].want)
            print_error("case \"%s\": got %d (%s), want %d\n", cases[i].what, rc, pz_err_msg(&err), cases[i].want);
        assert_int_equal(rc, cases[i].want);
        assert_null(cv);
        assert_true(pz_err_msg(&err)[0] != '\0');
        pz_err_clear(&err);
    }
    assert_int_equal(pz_certval_new(NULL, NULL, NULL), PZ_EINVAL);
    pz_certval *cv = NULL;
    assert_int_equal(pz_certval_new(NULL, &cv, NULL), PZ_EINVAL);
    gnutls_x509_crt_deinit(leaf);
    pz_fix_ca_clear(&weak);
}

/* ---- reload ---- */

static void test_reload(void **state)
{
    (void)state;
    const char *cas[] = {F.ca_file};
    pz_certval_opts opts = {.ca_files = cas, .n_ca_files = 1};
    pz_certval *cv = NULL;
    assert_int_equal(pz_certval_new(&opts, &cv, NULL), 0);
    gnutls_x509_crt_t leaf = NULL;
    assert_int_equal(pz_fix_leaf(&F.foreign, NULL, F.now, &leaf, NULL), 0);
    pz_certval_result r;
    assert_int_equal(verify_chain(cv, &leaf, 1, PZ_CERTVAL_CLIENT, &r), 0);
    assert_int_equal(r.reason, PZ_CV_UNTRUSTED);

    /* trust the foreign CA */
    cas[0] = F.foreign_file;
    assert_int_equal(pz_certval_reload(cv, &opts, NULL), 0);
    assert_int_equal(verify_chain(cv, &leaf, 1, PZ_CERTVAL_CLIENT, &r), 0);
    assert_int_equal(r.valid, 1);

    /* a failing reload keeps the running set */
    pz_err err;
    pz_err_init(&err);
    opts.min_rsa_bits = 1000;
    assert_int_equal(pz_certval_reload(cv, &opts, &err), PZ_EINVAL);
    assert_int_equal(verify_chain(cv, &leaf, 1, PZ_CERTVAL_CLIENT, &r), 0);
    assert_int_equal(r.valid, 1);
    pz_err_clear(&err);
    assert_int_equal(pz_certval_reload(NULL, &opts, NULL), PZ_EINVAL);

    /* a CRL arrives: the same certificate is now revoked */
    opts.min_rsa_bits = 0;
    g_autofree char *crl = write_crl("foreign-revokes.crl", &F.foreign, &leaf, 1);
    const char *crls[] = {crl};
    opts.crl_files = crls;
    opts.n_crl_files = 1;
    assert_int_equal(pz_certval_reload(cv, &opts, NULL), 0);
    assert_int_equal(verify_chain(cv, &leaf, 1, PZ_CERTVAL_CLIENT, &r), 0);
    assert_int_equal(r.reason, PZ_CV_REVOKED);
    gnutls_x509_crt_deinit(leaf);
    pz_certval_free(cv);
    pz_certval_free(NULL);
}

/* Verifications on threads while the main thread reloads. */
typedef struct worker {
    pz_certval *cv;
    const uint8_t *der;
    size_t len;
    int bad;
} worker;

static gpointer verify_loop(gpointer p)
{
    worker *w = p;
    for (int i = 0; i < 200; i++) {
        pz_certval_result r;
        const uint8_t *ders[] = {w->der};
        if (pz_certval_verify(w->cv, ders, &w->len, 1, (uint64_t)F.now, PZ_CERTVAL_CLIENT, &r) != 0 || !r.valid)
            w->bad++;
    }
    return NULL;
}

static void test_concurrent_reload(void **state)
{
    (void)state;
    const char *cas[] = {F.ca_file};
    pz_certval_opts opts = {.ca_files = cas, .n_ca_files = 1};
    pz_certval *cv = NULL;
    assert_int_equal(pz_certval_new(&opts, &cv, NULL), 0);
    gnutls_x509_crt_t leaf = NULL;
    assert_int_equal(pz_fix_leaf(&F.ca, NULL, F.now, &leaf, NULL), 0);
    gnutls_datum_t d = {NULL, 0};
    assert_int_equal(pz_fix_export(leaf, GNUTLS_X509_FMT_DER, &d), 0);
    worker w[2] = {{cv, d.data, d.size, 0}, {cv, d.data, d.size, 0}};
    GThread *t[2];
    for (int i = 0; i < 2; i++)
        t[i] = g_thread_new("verify", verify_loop, &w[i]);
    for (int i = 0; i < 20; i++)
        assert_int_equal(pz_certval_reload(cv, &opts, NULL), 0);
    for (int i = 0; i < 2; i++)
        g_thread_join(t[i]);
    assert_int_equal(w[0].bad + w[1].bad, 0);
    gnutls_free(d.data);
    gnutls_x509_crt_deinit(leaf);
    pz_certval_free(cv);
}

/* ---- primitives ---- */

static void test_node_id_rules(void **state)
{
    (void)state;
    const char *good[] = {"a", "Z", "0", "node-1", "a.b_c-d", "_x", "a-", "a.",
                          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" /* 64 */};
    const char *bad[] = {"", ".a", "-a", "a b", "a/b", "a:b", "é", "a\n",
                         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" /* 65 */};
    for (size_t i = 0; i < G_N_ELEMENTS(good); i++)
        assert_true(pz_node_id_valid(good[i]));
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++)
        assert_false(pz_node_id_valid(bad[i]));
    assert_false(pz_node_id_valid(NULL));
    const char *tgood[] = {"validator", "full-node", "a_b", "0", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" /* 32 */};
    const char *tbad[] = {"", "Validator", "a.b", "a b", "a:b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" /* 33 */};
    for (size_t i = 0; i < G_N_ELEMENTS(tgood); i++)
        assert_true(pz_node_type_valid(tgood[i]));
    for (size_t i = 0; i < G_N_ELEMENTS(tbad); i++)
        assert_false(pz_node_type_valid(tbad[i]));
    assert_false(pz_node_type_valid(NULL));
}

static void test_keys_ext_codec(void **state)
{
    (void)state;
    uint8_t sp[32], ep[32], ext[PZ_NODE_KEYS_EXT_LEN], a[32], b[32];
    memset(sp, 0x11, 32);
    memset(ep, 0x22, 32);
    pz_node_keys_ext_encode(sp, ep, ext);
    static const uint8_t head[] = {0x30, 0x44, 0x04, 0x20};
    assert_memory_equal(ext, head, 4);
    assert_int_equal(ext[36], 0x04);
    assert_int_equal(ext[37], 0x20);
    assert_int_equal(pz_node_keys_ext_decode(ext, sizeof(ext), a, b), 0);
    assert_memory_equal(a, sp, 32);
    assert_memory_equal(b, ep, 32);
    assert_int_equal(pz_node_keys_ext_decode(ext, sizeof(ext) - 1, a, b), PZ_EINVAL);
    assert_int_equal(pz_node_keys_ext_decode(NULL, sizeof(ext), a, b), PZ_EINVAL);
    const size_t tag_pos[] = {0, 1, 2, 3, 36, 37};
    for (size_t i = 0; i < G_N_ELEMENTS(tag_pos); i++) {
        uint8_t bad[PZ_NODE_KEYS_EXT_LEN];
        memcpy(bad, ext, sizeof(bad));
        bad[tag_pos[i]] ^= 0x01;
        assert_int_equal(pz_node_keys_ext_decode(bad, sizeof(bad), a, b), PZ_EINVAL);
    }
}

static void test_reason_names(void **state)
{
    (void)state;
    GHashTable *seen = g_hash_table_new(g_str_hash, g_str_equal);
    for (int r = PZ_CV_OK; r <= PZ_CV_BAD_NODE_KEYS; r++) {
        const char *n = pz_certval_reason_name((pz_certval_reason)r);
        assert_string_not_equal(n, "unknown");
        assert_false(g_hash_table_contains(seen, n));
        g_hash_table_add(seen, (gpointer)n);
    }
    assert_string_equal(pz_certval_reason_name((pz_certval_reason)999), "unknown");
    g_hash_table_unref(seen);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_p384_with_keys),
        cmocka_unit_test(test_valid_variants),
        cmocka_unit_test(test_valid_intermediate),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_revoked),
        cmocka_unit_test(test_malformed_and_empty),
        cmocka_unit_test(test_chain_too_long),
        cmocka_unit_test(test_expired_trusted_ca),
        cmocka_unit_test(test_raised_floors_and_extra_eku),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_reload),
        cmocka_unit_test(test_concurrent_reload),
        cmocka_unit_test(test_node_id_rules),
        cmocka_unit_test(test_keys_ext_codec),
        cmocka_unit_test(test_reason_names),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
