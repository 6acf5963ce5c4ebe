/* tests/unit/test_key_pin.c — the key-pin provider through the mock core:
 * peers pinned by SHA-256 of their SubjectPublicKeyInfo (hex, base64,
 * "sha256//") or by their Ed25519 TLS key, from configuration and from the
 * peer directory; unpinned and malformed certificates refused; ambiguous
 * pins; generate_credentials; reload; every configuration refusal. */
#include "config.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <prozsec/auth.h>
#include <prozsec/plugintest.h>

#include "certfix.h"
#include "crypto.h"
#include "identity.h"
#include "key-pin.h"

#define NOW 1700000000

static const pz_auth_provider *table;
static char *tmpdir;
static const pz_addr addr = {.family = PZ_AF_INET6, .bytes = {0x20, 0x01, 0x0d, 0xb8, [15] = 7}, .port = 7400};

/* Three peers' leaf certificates (DER): ECDSA, ECDSA, Ed25519. */
static gnutls_datum_t der[3];
static char spki_hex[3][65], spki_b64[3][64];
static char ed_hex[65];

static void hexify(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

static int setup(void **state)
{
    (void)state;
    if (pz_crypto_init() != 0)
        return -1;
    const pz_plugin_descriptor *d = pz_plugin_entry_v1();
    if (strcmp(d->name, "key-pin") || d->kind != PZ_KIND_AUTH)
        return -1;
    table = d->provider;
    pz_mock *m = pz_mock_new();
    int rc = d->init(pz_mock_core(m), pz_mock_err(m));
    pz_mock_free(m);
    if (rc)
        return -1;
    tmpdir = g_dir_make_tmp("pz-keypin-XXXXXX", NULL);

    /* Any CA will do: key-pin looks at the key only. */
    pz_fix_ca ca;
    if (pz_fix_ca_new(&ca, PZ_FIX_P384, "Pin Test", NOW, 0, 0))
        return -1;
    static const pz_fix_key keys[3] = {PZ_FIX_P384, PZ_FIX_P384, PZ_FIX_ED25519};
    static const char *const ids[3] = {"pinned-1", "pinned-2", "ed-node"};
    for (int i = 0; i < 3; i++) {
        gnutls_x509_crt_t crt;
        pz_fix_leaf_opts o = {.node_id = ids[i], .key = keys[i]};
        if (pz_fix_leaf(&ca, &o, NOW, &crt, NULL) || pz_fix_export(crt, GNUTLS_X509_FMT_DER, &der[i]))
            return -1;
        /* The pin, computed here with GnuTLS alone. */
        gnutls_pubkey_t pub;
        gnutls_datum_t spki;
        uint8_t h[32];
        gnutls_pubkey_init(&pub);
        gnutls_pubkey_import_x509(pub, crt, 0);
        gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &spki);
        gnutls_hash_fast(GNUTLS_DIG_SHA256, spki.data, spki.size, h);
        hexify(h, 32, spki_hex[i]);
        char *b = g_base64_encode(h, 32);
        g_strlcpy(spki_b64[i], b, sizeof(spki_b64[i]));
        g_free(b);
        if (keys[i] == PZ_FIX_ED25519) {
            gnutls_datum_t x = {NULL, 0};
            gnutls_ecc_curve_t curve;
            if (gnutls_pubkey_export_ecc_raw2(pub, &curve, &x, NULL, 0) || x.size != 32)
                return -1;
            hexify(x.data, 32, ed_hex);
            gnutls_free(x.data);
        }
        if (i == 0) {
            char *p = g_build_filename(tmpdir, "self.crt", NULL);
            pz_fix_write_crt(p, crt);
            g_free(p);
        }
        gnutls_free(spki.data);
        gnutls_pubkey_deinit(pub);
        gnutls_x509_crt_deinit(crt);
    }
    pz_fix_ca_clear(&ca);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++)
        gnutls_free(der[i].data);
    GDir *d = g_dir_open(tmpdir, 0, NULL);
    const char *name;
    while (d && (name = g_dir_read_name(d))) {
        char *p = g_build_filename(tmpdir, name, NULL);
        g_unlink(p);
        g_free(p);
    }
    if (d)
        g_dir_close(d);
    g_rmdir(tmpdir);
    g_free(tmpdir);
    return 0;
}

static void *make(pz_mock *m, const char *yaml)
{
    const pz_conf *conf = NULL;
    void *st = NULL;
    assert_int_equal(pz_mock_conf(m, yaml, &conf), 0);
    if (table->create(pz_mock_core(m), conf, &st, pz_mock_err(m)))
        fail_msg("create: %s", pz_mock_err_msg(m));
    if (pz_mock_check_unused(m, conf))
        fail_msg("unused: %s", pz_mock_err_msg(m));
    return st;
}

static pz_auth_result run_der(void *st, const uint8_t *d, size_t len)
{
    const uint8_t *certs[1] = {d};
    size_t lens[1] = {len};
    pz_auth_credentials c = {.struct_size = sizeof(c), .transport = "tls", .addr = &addr, .n_certs = d ? 1 : 0,
                             .cert_der = d ? certs : NULL, .cert_der_len = d ? lens : NULL};
    pz_auth_result r;
    memset(&r, 0, sizeof(r));
    r.struct_size = sizeof(r);
    assert_int_equal(table->authenticate_peer(st, &c, &r, NULL), 0);
    return r;
}

static pz_auth_result run(void *st, int i)
{
    return run_der(st, der[i].data, der[i].size);
}

static void test_config_pins(void **state)
{
    (void)state;
    pz_mock *m = pz_mock_new();
    char *yaml = g_strdup_printf("pins:\n"
                                 "  - node_id: validator-a\n"
                                 "    spki_sha256: %s\n"
                                 "    node_type: validator\n"
                                 "    roles: [rpc]\n"
                                 "  - {node_id: light-b, tls_ed25519: \"%s\"}\n",
                                 spki_hex[0], ed_hex);
    void *st = make(m, yaml);
    /* The node id is the pin's, not the certificate's (which is unvouched). */
    pz_auth_result r = run(st, 0);
    assert_int_equal(r.verdict, PZ_AUTH_ALLOW);
    assert_string_equal(r.node_id, "validator-a");
    assert_string_equal(r.node_type, "validator");
    assert_int_equal(r.n_roles, 1);
    assert_string_equal(r.roles[0], "rpc");
    r = run(st, 2);
    assert_int_equal(r.verdict, PZ_AUTH_ALLOW);
    assert_string_equal(r.node_id, "light-b");
    /* Unpinned: refused, and the reason gives the pin to add. */
    r = run(st, 1);
    assert_int_equal(r.verdict, PZ_AUTH_DENY);
    assert_int_equal(r.reason_code, KEY_PIN_DENY_NOT_PINNED);
    char *want = g_strdup_printf("key sha256//%s is not pinned", spki_b64[1]);
    assert_string_equal(r.reason, want);
    g_free(want);
    /* Not a certificate. */
    static const uint8_t junk[] = {0x30, 0x82, 0x01};
    r = run_der(st, junk, sizeof(junk));
    assert_int_equal(r.verdict, PZ_AUTH_DENY);
    assert_int_equal(r.reason_code, KEY_PIN_DENY_MALFORMED);
    /* No certificate (a unix peer): no opinion. */
    assert_int_equal(run_der(st, NULL, 0).verdict, PZ_AUTH_ABSTAIN);
    assert_int_equal(pz_mock_metric(m, "denials_total", "not_pinned"), 1);
    assert_int_equal(pz_mock_metric(m, "denials_total", "malformed"), 1);
    const char *const *methods = table->supported_methods(st);
    assert_string_equal(methods[0], "key-pin");
    table->destroy(st);
    g_free(yaml);

    /* The same pin in base64 and in curl's form. */
    yaml = g_strdup_printf("pins:\n  - {node_id: a, spki_sha256: \"%s\"}\n  - {node_id: b, spki_sha256: "
                           "\"sha256//%s\"}\n",
                           spki_b64[0], spki_b64[1]);
    st = make(m, yaml);
    assert_string_equal(run(st, 0).node_id, "a");
    assert_string_equal(run(st, 1).node_id, "b");
    assert_int_equal(run(st, 2).verdict, PZ_AUTH_DENY);
    table->destroy(st);
    g_free(yaml);
    pz_mock_free(m);
}

static void test_directory_pins(void **state)
{
    (void)state;
    char *dir = g_build_filename(tmpdir, "peers.yaml", NULL);
    char *text = g_strdup_printf("peers:\n"
                                 "  - node_id: pinned-1\n"
                                 "    node_type: full\n"
                                 "    roles: [archive]\n"
                                 "    sign_pub: 0101010101010101010101010101010101010101010101010101010101010101\n"
                                 "    spki_sha256: %s\n"
                                 "  - {node_id: ed-node, tls_ed25519: %s}\n",
                                 spki_hex[0], ed_hex);
    assert_true(g_file_set_contents(dir, text, -1, NULL));
    assert_int_equal(g_chmod(dir, 0644), 0);
    pz_mock *m = pz_mock_new();
    char *yaml = g_strdup_printf("directory: %s\n", dir);
    void *st = make(m, yaml);
    pz_auth_result r = run(st, 0);
    assert_int_equal(r.verdict, PZ_AUTH_ALLOW);
    assert_string_equal(r.node_id, "pinned-1");
    assert_string_equal(r.node_type, "full");
    assert_string_equal(r.roles[0], "archive");
    assert_true(r.has_sign_pub);
    assert_int_equal(r.sign_pub[0], 1);
    assert_string_equal(run(st, 2).node_id, "ed-node");
    assert_int_equal(run(st, 1).verdict, PZ_AUTH_DENY);
    table->destroy(st);
    g_free(yaml);

    /* A configured pin for the same node is completed from the directory. */
    yaml = g_strdup_printf("directory: %s\npins: [{node_id: pinned-1, spki_sha256: %s, roles: [rpc]}]\n", dir,
                           spki_hex[0]);
    st = make(m, yaml);
    r = run(st, 0);
    assert_int_equal(r.verdict, PZ_AUTH_ALLOW);
    assert_string_equal(r.node_type, "full");
    assert_int_equal(r.n_roles, 2);
    assert_string_equal(r.roles[0], "rpc");
    assert_string_equal(r.roles[1], "archive");
    table->destroy(st);
    g_free(yaml);

    /* Configuration and directory pin one key for two nodes: refused. */
    yaml = g_strdup_printf("directory: %s\npins: [{node_id: someone-else, spki_sha256: %s}]\n", dir, spki_hex[0]);
    st = make(m, yaml);
    r = run(st, 0);
    assert_int_equal(r.verdict, PZ_AUTH_DENY);
    assert_int_equal(r.reason_code, KEY_PIN_DENY_AMBIGUOUS);
    table->destroy(st);
    g_free(yaml);

    /* A directory open to the world is refused at start. */
    assert_int_equal(g_chmod(dir, 0666), 0);
    yaml = g_strdup_printf("directory: %s\n", dir);
    const pz_conf *conf;
    assert_int_equal(pz_mock_conf(m, yaml, &conf), 0);
    st = NULL;
    assert_int_equal(table->create(pz_mock_core(m), conf, &st, pz_mock_err(m)), PZ_EPERM);
    assert_non_null(strstr(pz_mock_err_msg(m), "writable by others"));
    g_free(yaml);
    pz_mock_free(m);
    g_unlink(dir);
    g_free(dir);
    g_free(text);
}

/* A pinned certificate carrying the node-keys extension: with no CA, the
 * holder of the pinned key states its own signing and E2E keys there, and
 * key-pin hands them on; keys a pin or the directory gives win, and a
 * critical or malformed extension gives none. Chains the transport did not
 * validate (verify: auth-chain) are allowed by pin like any other. */
static void test_cert_keys(void **state)
{
    (void)state;
    pz_fix_ca ca;
    uint8_t sp[32], ep[32], other[32];
    memset(sp, 0x5a, 32);
    memset(ep, 0xe2, 32);
    memset(other, 0x77, 32);
    assert_int_equal(pz_fix_ca_new(&ca, PZ_FIX_P384, "Anyone", NOW, 0, 0), 0);
    gnutls_datum_t d[2];
    char pin[2][64];
    for (int i = 0; i < 2; i++) {
        gnutls_x509_crt_t crt;
        pz_fix_leaf_opts o = {.node_id = "claims-x", .sign_pub = sp, .e2e_pub = ep, .keys_ext_critical = i == 1};
        assert_int_equal(pz_fix_leaf(&ca, &o, NOW, &crt, NULL), 0);
        assert_int_equal(pz_fix_export(crt, GNUTLS_X509_FMT_DER, &d[i]), 0);
        gnutls_x509_crt_deinit(crt);
        uint8_t spki[32], ed[32];
        int is_ed = 0;
        assert_int_equal(pz_identity_cert_keys(d[i].data, d[i].size, spki, ed, &is_ed, NULL), 0);
        char *b = g_base64_encode(spki, 32);
        g_snprintf(pin[i], sizeof(pin[i]), "sha256//%s", b);
        g_free(b);
    }
    char *ohex = g_malloc(65);
    hexify(other, 32, ohex);
    pz_mock *m = pz_mock_new();
    char *yaml = g_strdup_printf("pins:\n"
                                 "  - {node_id: pinned-keys, spki_sha256: \"%s\"}\n"
                                 "  - {node_id: pinned-crit, spki_sha256: \"%s\"}\n",
                                 pin[0], pin[1]);
    void *st = make(m, yaml);
    const uint8_t *certs[1] = {d[0].data};
    size_t lens[1] = {d[0].size};
    pz_auth_credentials c = {.struct_size = sizeof(c), .transport = "tls", .addr = &addr, .n_certs = 1,
                             .cert_der = certs, .cert_der_len = lens, .flags = PZ_AUTH_CRED_UNVERIFIED_CHAIN,
                             .chain_note = "not CA-validated (verify: auth-chain): no ca configured"};
    pz_auth_result r;
    memset(&r, 0, sizeof(r));
    assert_int_equal(table->authenticate_peer(st, &c, &r, NULL), 0);
    assert_int_equal(r.verdict, PZ_AUTH_ALLOW);
    assert_string_equal(r.node_id, "pinned-keys"); /* the pin's id, not the certificate's claim */
    assert_true(r.has_sign_pub && r.has_e2e_pub);
    assert_memory_equal(r.sign_pub, sp, 32);
    assert_memory_equal(r.e2e_pub, ep, 32);
    /* A critical extension: no keys taken (still allowed by pin). */
    certs[0] = d[1].data;
    lens[0] = d[1].size;
    memset(&r, 0, sizeof(r));
    assert_int_equal(table->authenticate_peer(st, &c, &r, NULL), 0);
    assert_int_equal(r.verdict, PZ_AUTH_ALLOW);
    assert_string_equal(r.node_id, "pinned-crit");
    assert_false(r.has_sign_pub || r.has_e2e_pub);
    table->destroy(st);
    g_free(yaml);

    /* The directory's signing key wins over the certificate's; the E2E key
     * the directory lacks comes from the certificate. */
    char *dir = g_build_filename(tmpdir, "keys-peers.yaml", NULL);
    char *text = g_strdup_printf("peers:\n  - {node_id: pinned-keys, spki_sha256: \"%s\", sign_pub: \"%s\"}\n",
                                 pin[0], ohex);
    assert_true(g_file_set_contents(dir, text, -1, NULL));
    assert_int_equal(g_chmod(dir, 0644), 0);
    yaml = g_strdup_printf("directory: %s\n", dir);
    st = make(m, yaml);
    certs[0] = d[0].data;
    lens[0] = d[0].size;
    memset(&r, 0, sizeof(r));
    assert_int_equal(table->authenticate_peer(st, &c, &r, NULL), 0);
    assert_int_equal(r.verdict, PZ_AUTH_ALLOW);
    assert_memory_equal(r.sign_pub, other, 32);
    assert_memory_equal(r.e2e_pub, ep, 32);
    table->destroy(st);
    g_unlink(dir);
    g_free(dir);
    g_free(text);
    g_free(yaml);
    g_free(ohex);
    for (int i = 0; i < 2; i++)
        gnutls_free(d[i].data);
    pz_fix_ca_clear(&ca);
    pz_mock_free(m);
}

static void test_generate(void **state)
{
    (void)state;
    pz_mock *m = pz_mock_new();
    char *yaml = g_strdup_printf("pins: [{node_id: a, spki_sha256: %s}]\ncert_file: %s/self.crt\n", spki_hex[1],
                                 tmpdir);
    void *st = make(m, yaml);
    /* The node's own pin, logged for operators to hand out. */
    char *logged = g_strdup_printf("spki_sha256 sha256//%s", spki_b64[0]);
    assert_true(pz_mock_log_contains(m, logged));
    g_free(logged);
    size_t len = 10;
    uint8_t small[10];
    assert_int_equal(table->generate_credentials(st, NULL, 0, small, &len, pz_mock_err(m)), PZ_ERANGE);
    assert_true(len > 100);
    uint8_t *buf = g_malloc(len);
    assert_int_equal(table->generate_credentials(st, NULL, 0, buf, &len, pz_mock_err(m)), 0);
    assert_memory_equal(buf, "-----BEGIN CERTIFICATE-----", 27);
    g_free(buf);
    assert_int_equal(table->generate_credentials(st, NULL, 0, small, NULL, pz_mock_err(m)), PZ_EINVAL);
    table->destroy(st);
    g_free(yaml);
    yaml = g_strdup_printf("pins: [{node_id: a, spki_sha256: %s}]\n", spki_hex[1]);
    st = make(m, yaml);
    len = 10;
    assert_int_equal(table->generate_credentials(st, NULL, 0, small, &len, pz_mock_err(m)), PZ_ENOTSUP);
    table->destroy(st);
    g_free(yaml);
    pz_mock_free(m);
}

static void test_reload(void **state)
{
    (void)state;
    pz_mock *m = pz_mock_new();
    char *yaml = g_strdup_printf("pins: [{node_id: a, spki_sha256: %s}]\n", spki_hex[0]);
    void *st = make(m, yaml);
    char *yaml2 = g_strdup_printf("pins: [{node_id: b, spki_sha256: %s}]\n", spki_hex[1]);
    const pz_conf *conf;
    assert_int_equal(pz_mock_conf(m, yaml2, &conf), 0);
    assert_int_equal(table->reload(st, conf, pz_mock_err(m)), 0);
    assert_int_equal(run(st, 0).verdict, PZ_AUTH_DENY);
    assert_string_equal(run(st, 1).node_id, "b");
    assert_int_equal(pz_mock_conf(m, "pins: []\n", &conf), 0);
    assert_int_equal(table->reload(st, conf, pz_mock_err(m)), PZ_ECONFIG);
    assert_string_equal(run(st, 1).node_id, "b");
    pz_auth_result r;
    memset(&r, 0, sizeof(r));
    assert_int_equal(table->authenticate_peer(st, NULL, &r, pz_mock_err(m)), PZ_EINVAL);
    table->destroy(st);
    table->destroy(NULL);
    g_free(yaml);
    g_free(yaml2);
    pz_mock_free(m);
}

static void test_bad_config(void **state)
{
    (void)state;
    char *dup = g_strdup_printf("pins:\n  - {node_id: a, spki_sha256: %s}\n  - {node_id: b, spki_sha256: "
                                "\"sha256//%s\"}\n",
                                spki_hex[0], spki_b64[0]);
    struct {
        const char *yaml;
        int rc;
        const char *msg;
    } cases[] = {
        {"{}\n", PZ_ECONFIG, "key-pin: no pins: set pins or directory"},
        {"pins: []\n", PZ_ECONFIG, "no pins"},
        {"pins: {a: 1}\n", PZ_ECONFIG, "pins: expected a list"},
        {"pins: [a]\n", PZ_ECONFIG, "test.yaml:1:8: pins[0]: expected a pin {node_id, spki_sha256 or tls_ed25519}"},
        {"pins: [{spki_sha256: " "0101010101010101010101010101010101010101010101010101010101010101}]\n", PZ_ECONFIG,
         "node_id: expected a node id"},
        {"pins: [{node_id: \"a b\", spki_sha256: 0101}]\n", PZ_ECONFIG, "node_id: expected a node id"},
        {"pins: [{node_id: a}]\n", PZ_ECONFIG, "pin for a has no key: give spki_sha256 or tls_ed25519"},
        {"pins: [{node_id: a, spki_sha256: 0101}]\n", PZ_ECONFIG,
         "spki_sha256: expected 32 bytes in hex or base64, found 2 bytes"},
        {"pins: [{node_id: a, tls_ed25519: \"what?\"}]\n", PZ_ECONFIG,
         "tls_ed25519: expected 32 bytes in hex or base64 (\"sha256//...\" also works), found \"what?\""},
        {"pins: [{node_id: a, spki_sha256: [1]}]\n", PZ_ECONFIG, "spki_sha256: expected a string"},
        {"pins: [{node_id: a, tls_ed25519: 0101010101010101010101010101010101010101010101010101010101010101, "
         "node_type: \"x y\"}]\n",
         PZ_ECONFIG, "node_type: expected a node type"},
        {"pins: [{node_id: a, tls_ed25519: 0101010101010101010101010101010101010101010101010101010101010101, "
         "roles: [\"x y\"]}]\n",
         PZ_ECONFIG, "expected a role"},
        {"pins: [{node_id: a, tls_ed25519: 0101010101010101010101010101010101010101010101010101010101010101, "
         "roles: [a, b, c, d, e, f, g, h, i]}]\n",
         PZ_ECONFIG, "too many roles: at most 8"},
        {dup, PZ_ECONFIG, "the same key is pinned for a and b"},
        {"directory: /nonexistent/pz/peers.yaml\n", PZ_ENOENT, "key-pin: /nonexistent/pz/peers.yaml: cannot open peer "
                                                               "directory"},
        {"pins: [{node_id: a, tls_ed25519: 0101010101010101010101010101010101010101010101010101010101010101}]\n"
         "cert_file: /nonexistent/pz/node.crt\n",
         PZ_EIO, "/nonexistent/pz/node.crt: cannot read this node's certificate"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pz_mock *m = pz_mock_new();
        const pz_conf *conf;
        void *st = NULL;
        assert_int_equal(pz_mock_conf(m, cases[i].yaml, &conf), 0);
        int rc = table->create(pz_mock_core(m), conf, &st, pz_mock_err(m));
        if (rc != cases[i].rc || !strstr(pz_mock_err_msg(m), cases[i].msg))
            fail_msg("case %zu: rc %d \"%s\", expected \"%s\"", i, rc, pz_mock_err_msg(m), cases[i].msg);
        assert_null(st);
        pz_mock_free(m);
    }
    /* A cert_file that is not a certificate. */
    char *notcert = g_build_filename(tmpdir, "notcert.pem", NULL);
    assert_true(g_file_set_contents(notcert, "hello\n", -1, NULL));
    char *yaml = g_strdup_printf("pins: [{node_id: a, spki_sha256: %s}]\ncert_file: %s\n", spki_hex[0], notcert);
    pz_mock *m = pz_mock_new();
    const pz_conf *conf;
    void *st = NULL;
    assert_int_equal(pz_mock_conf(m, yaml, &conf), 0);
    assert_int_equal(table->create(pz_mock_core(m), conf, &st, pz_mock_err(m)), PZ_EINVAL);
    assert_non_null(strstr(pz_mock_err_msg(m), "not a certificate in PEM or DER"));
    assert_int_equal(table->create(pz_mock_core(m), NULL, &st, pz_mock_err(m)), PZ_ECONFIG);
    pz_mock_free(m);
    g_unlink(notcert);
    g_free(notcert);
    g_free(yaml);
    g_free(dup);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_pins), cmocka_unit_test(test_directory_pins), cmocka_unit_test(test_generate),
        cmocka_unit_test(test_reload),      cmocka_unit_test(test_bad_config), cmocka_unit_test(test_cert_keys),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
