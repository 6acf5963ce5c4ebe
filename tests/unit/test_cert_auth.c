/* tests/unit/test_cert_auth.c — the cert-auth provider through the mock
 * core, with certificates generated at run time: a valid node allowed with
 * its identity and directory roles; revoked, expired, not yet valid,
 * foreign-CA and wrong-purpose certificates refused with the validation
 * service's reason; allow and deny lists by id and type; the peer
 * directory (roles, require_directory, contradictions);
 * generate_credentials; reload (a new CRL); every configuration refusal. */
#include "config.h"

#include <glib.h>
#include <glib/gstdio.h>
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

#include "cert-auth.h"
#include "certfix.h"
#include "certval.h"
#include "crypto.h"

/* The mock core's wall clock starts here (PZ_MOCK_REALTIME_START_NS). */
#define NOW ((int64_t)(PZ_MOCK_REALTIME_START_NS / 1000000000ull))
#define DAY 86400

static const pz_auth_provider *table;
static char *tmpdir;
static const pz_addr addr = {.family = PZ_AF_INET, .bytes = {203, 0, 113, 5}, .port = 7401};

enum {
    C_GOOD,       /* validator-1, validator, node keys */
    C_LIGHT,      /* light-1, light */
    C_REVOKED,    /* revoked-1 */
    C_EXPIRED,    /* expired-1: notAfter yesterday */
    C_FUTURE,     /* future-1: notBefore tomorrow */
    C_FOREIGN,    /* foreign-1, signed by an untrusted CA */
    C_NOCLIENT,   /* server-only: no clientAuth */
    C_ARCHIVE,    /* archive-1, type archive */
    C_N
};
static gnutls_datum_t der[C_N];
static uint8_t sign_pub[32], e2e_pub[32];
static gnutls_x509_crt_t revoked_crt, light_crt;
static pz_fix_ca ca;

static char *tpath(const char *name)
{
    return g_build_filename(tmpdir, name, NULL);
}

static int write_datum(const char *name, const gnutls_datum_t *d)
{
    char *p = tpath(name);
    int ok = g_file_set_contents(p, (const char *)d->data, d->size, NULL);
    g_free(p);
    return ok ? 0 : -1;
}

static int setup(void **state)
{
    (void)state;
    if (pz_crypto_init() != 0)
        return -1;
    const pz_plugin_descriptor *d = pz_plugin_entry_v1();
    if (strcmp(d->name, "cert-auth") || d->kind != PZ_KIND_AUTH)
        return -1;
    table = d->provider;
    pz_mock *m = pz_mock_new();
    int rc = d->init(pz_mock_core(m), pz_mock_err(m));
    pz_mock_free(m);
    if (rc)
        return -1;
    tmpdir = g_dir_make_tmp("pz-certauth-XXXXXX", NULL);

    pz_fix_ca foreign;
    if (pz_fix_ca_new(&ca, PZ_FIX_P384, "ProzChain Test", NOW, 0, 0) ||
        pz_fix_ca_new(&foreign, PZ_FIX_P384, "Elsewhere", NOW, 0, 0))
        return -1;
    memset(sign_pub, 0xa1, 32);
    memset(e2e_pub, 0xb2, 32);
    struct {
        pz_fix_leaf_opts o;
        const pz_fix_ca *by;
    } spec[C_N] = {
        [C_GOOD] = {{.node_id = "validator-1", .node_type = "validator", .sign_pub = sign_pub, .e2e_pub = e2e_pub},
                    &ca},
        [C_LIGHT] = {{.node_id = "light-1", .node_type = "light"}, &ca},
        [C_REVOKED] = {{.node_id = "revoked-1"}, &ca},
        [C_EXPIRED] = {{.node_id = "expired-1", .not_before = NOW - 30 * DAY, .not_after = NOW - DAY}, &ca},
        [C_FUTURE] = {{.node_id = "future-1", .not_before = NOW + DAY, .not_after = NOW + 30 * DAY}, &ca},
        [C_FOREIGN] = {{.node_id = "foreign-1"}, &foreign},
        [C_NOCLIENT] = {{.node_id = "server-only", .no_client_auth = 1}, &ca},
        [C_ARCHIVE] = {{.node_id = "archive-1", .node_type = "archive"}, &ca},
    };
    for (int i = 0; i < C_N; i++) {
        gnutls_x509_crt_t crt;
        if (pz_fix_leaf(spec[i].by, &spec[i].o, NOW, &crt, NULL) || pz_fix_export(crt, GNUTLS_X509_FMT_DER, &der[i]))
            return -1;
        if (i == C_REVOKED)
            revoked_crt = crt;
        else if (i == C_LIGHT)
            light_crt = crt;
        else if (i == C_GOOD) {
            char *p = tpath("self.crt");
            pz_fix_write_crt(p, crt);
            g_free(p);
            gnutls_x509_crt_deinit(crt);
        } else
            gnutls_x509_crt_deinit(crt);
    }
    gnutls_datum_t crl, cacrt, cader;
    if (pz_fix_crl(&ca, &revoked_crt, 1, NOW, GNUTLS_X509_FMT_PEM, &crl) ||
        pz_fix_export(ca.crt, GNUTLS_X509_FMT_PEM, &cacrt) || pz_fix_export(ca.crt, GNUTLS_X509_FMT_DER, &cader))
        return -1;
    if (write_datum("ca.crt", &cacrt) || write_datum("ca.der", &cader) || write_datum("ca.crl", &crl))
        return -1;
    gnutls_free(crl.data);
    gnutls_free(cacrt.data);
    gnutls_free(cader.data);
    /* A second CRL that also revokes light-1, for reload. */
    gnutls_x509_crt_t both[2] = {revoked_crt, light_crt};
    if (pz_fix_crl(&ca, both, 2, NOW, GNUTLS_X509_FMT_DER, &crl) || write_datum("ca2.crl", &crl))
        return -1;
    gnutls_free(crl.data);
    pz_fix_ca_clear(&foreign);

    char *dir = tpath("peers.yaml");
    const char *peers = "peers:\n"
                        "  - {node_id: validator-1, node_type: validator, roles: [validator, rpc]}\n"
                        "  - {node_id: light-1, node_type: full}\n"
                        "  - node_id: archive-1\n"
                        "    sign_pub: 0101010101010101010101010101010101010101010101010101010101010101\n";
    if (!g_file_set_contents(dir, peers, -1, NULL))
        return -1;
    g_free(dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < C_N; i++)
        gnutls_free(der[i].data);
    gnutls_x509_crt_deinit(revoked_crt);
    gnutls_x509_crt_deinit(light_crt);
    pz_fix_ca_clear(&ca);
    GDir *d = g_dir_open(tmpdir, 0, NULL);
    const char *name;
    while (d && (name = g_dir_read_name(d))) {
        char *p = tpath(name);
        g_unlink(p);
        g_free(p);
    }
    if (d)
        g_dir_close(d);
    g_rmdir(tmpdir);
    g_free(tmpdir);
    return 0;
}

static void *make(pz_mock *m, const char *extra)
{
    char *yaml = g_strdup_printf("ca_file: %s/ca.crt\ncrl_file: %s/ca.crl\n%s", tmpdir, tmpdir, extra ? extra : "");
    const pz_conf *conf = NULL;
    void *st = NULL;
    assert_int_equal(pz_mock_conf(m, yaml, &conf), 0);
    if (table->create(pz_mock_core(m), conf, &st, pz_mock_err(m)))
        fail_msg("create: %s", pz_mock_err_msg(m));
    if (pz_mock_check_unused(m, conf))
        fail_msg("unused: %s", pz_mock_err_msg(m));
    g_free(yaml);
    return st;
}

static pz_auth_result run_out(void *st, int which, const char *expected)
{
    const uint8_t *certs[1] = {which >= 0 ? der[which].data : NULL};
    size_t lens[1] = {which >= 0 ? der[which].size : 0};
    pz_auth_credentials c = {.struct_size = sizeof(c), .transport = "tls", .addr = &addr,
                             .n_certs = which >= 0 ? 1 : 0, .cert_der = which >= 0 ? certs : NULL,
                             .cert_der_len = which >= 0 ? lens : NULL, .expected_node_id = expected};
    pz_auth_result r;
    memset(&r, 0, sizeof(r));
    r.struct_size = sizeof(r);
    assert_int_equal(table->authenticate_peer(st, &c, &r, NULL), 0);
    return r;
}

static pz_auth_result run(void *st, int which)
{
    return run_out(st, which, NULL);
}

static void test_valid_and_refused(void **state)
{
    (void)state;
    pz_mock *m = pz_mock_new();
    void *st = make(m, NULL);
    pz_auth_result r = run(st, C_GOOD);
    assert_int_equal(r.verdict, PZ_AUTH_ALLOW);
    assert_string_equal(r.node_id, "validator-1");
    assert_string_equal(r.node_type, "validator");
    assert_true(r.has_sign_pub && r.has_e2e_pub);
    assert_memory_equal(r.sign_pub, sign_pub, 32);
    assert_memory_equal(r.e2e_pub, e2e_pub, 32);
    assert_int_equal(r.n_roles, 0); /* no directory configured */
    r = run(st, C_LIGHT);
    assert_int_equal(r.verdict, PZ_AUTH_ALLOW);
    assert_false(r.has_sign_pub);

    struct {
        int which;
        pz_certval_reason reason;
        const char *text;
    } refused[] = {
        {C_REVOKED, PZ_CV_REVOKED, "certificate revoked: "},
        {C_EXPIRED, PZ_CV_EXPIRED, "certificate expired: "},
        {C_FUTURE, PZ_CV_NOT_YET_VALID, "certificate "},
        {C_FOREIGN, PZ_CV_UNTRUSTED, "certificate untrusted: "},
        {C_NOCLIENT, PZ_CV_NO_EKU, "certificate "},
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        r = run(st, refused[i].which);
        if (r.verdict != PZ_AUTH_DENY || r.reason_code != (int)refused[i].reason ||
            strncmp(r.reason, refused[i].text, strlen(refused[i].text)))
            fail_msg("case %zu: verdict %d code %d \"%s\"", i, r.verdict, r.reason_code, r.reason);
    }
    assert_int_equal(pz_mock_metric(m, "denials_total", "revoked"), 1);
    assert_int_equal(pz_mock_metric(m, "denials_total", "expired"), 1);

    /* Outbound, the peer is a server: a server-only certificate is fine,
     * and clientAuth alone is not what is checked. */
    r = run_out(st, C_NOCLIENT, "server-only");
    assert_int_equal(r.verdict, PZ_AUTH_ALLOW);
    /* Time moves on: a valid certificate expires (the wall clock is the core's). */
    pz_mock_set_realtime(m, (uint64_t)(NOW + 31 * DAY) * 1000000000ull);
    r = run(st, C_GOOD);
    assert_int_equal(r.verdict, PZ_AUTH_DENY);
    assert_int_equal(r.reason_code, PZ_CV_EXPIRED);
    pz_mock_set_realtime(m, (uint64_t)(NOW + 2 * DAY) * 1000000000ull);
    assert_int_equal(run(st, C_FUTURE).verdict, PZ_AUTH_ALLOW);

    /* No certificate (a unix peer): no opinion. Garbage: refused. */
    assert_int_equal(run(st, -1).verdict, PZ_AUTH_ABSTAIN);
    static const uint8_t junk[] = {0x30, 0x01, 0x00};
    const uint8_t *jc[1] = {junk};
    size_t jl[1] = {sizeof(junk)};
    pz_auth_credentials c = {.struct_size = sizeof(c), .addr = &addr, .n_certs = 1, .cert_der = jc, .cert_der_len = jl};
    pz_auth_result jr;
    memset(&jr, 0, sizeof(jr));
    assert_int_equal(table->authenticate_peer(st, &c, &jr, NULL), 0);
    assert_int_equal(jr.verdict, PZ_AUTH_DENY);
    assert_int_equal(jr.reason_code, PZ_CV_MALFORMED);

    const char *const *methods = table->supported_methods(st);
    assert_string_equal(methods[0], "certificate");
    assert_null(methods[1]);
    assert_int_equal(table->authenticate_peer(st, NULL, &jr, pz_mock_err(m)), PZ_EINVAL);
    table->destroy(st);
    pz_mock_free(m);
}

/* A chain the transport did not validate (tls verify: auth-chain) is
 * refused even when it would pass cert-auth's own CA: cert-auth vouches
 * only for chains the transport validated. A transport built against the
 * 1.0 header has no flags field: its chains count as validated. */
static void test_unverified_chain(void **state)
{
    (void)state;
    pz_mock *m = pz_mock_new();
    void *st = make(m, NULL);
    const uint8_t *certs[1] = {der[C_GOOD].data};
    size_t lens[1] = {der[C_GOOD].size};
    pz_auth_credentials c = {.struct_size = sizeof(c), .transport = "tls", .addr = &addr, .n_certs = 1,
                             .cert_der = certs, .cert_der_len = lens, .flags = PZ_AUTH_CRED_UNVERIFIED_CHAIN,
                             .chain_note = "not CA-validated (verify: auth-chain): no ca configured"};
    pz_auth_result r;
    memset(&r, 0, sizeof(r));
    r.struct_size = sizeof(r);
    assert_int_equal(table->authenticate_peer(st, &c, &r, NULL), 0);
    assert_int_equal(r.verdict, PZ_AUTH_DENY);
    assert_int_equal(r.reason_code, CERT_AUTH_DENY_UNVERIFIED_CHAIN);
    assert_string_equal(r.reason, "certificate chain not validated by the transport (not CA-validated (verify: "
                                  "auth-chain): no ca configured)");
    assert_int_equal(pz_mock_metric(m, "denials_total", "unverified_chain"), 1);
    /* Outbound too, and without a note. */
    c.expected_node_id = "validator-1";
    c.chain_note = NULL;
    memset(&r, 0, sizeof(r));
    assert_int_equal(table->authenticate_peer(st, &c, &r, NULL), 0);
    assert_int_equal(r.verdict, PZ_AUTH_DENY);
    assert_int_equal(r.reason_code, CERT_AUTH_DENY_UNVERIFIED_CHAIN);
    assert_non_null(strstr(r.reason, "(verify: auth-chain)"));
    /* The same credentials from a 1.0 transport (struct ends before flags):
     * the flag field is not read, the chain is validated as usual. */
    c.struct_size = (uint32_t)offsetof(pz_auth_credentials, flags);
    memset(&r, 0, sizeof(r));
    assert_int_equal(table->authenticate_peer(st, &c, &r, NULL), 0);
    assert_int_equal(r.verdict, PZ_AUTH_ALLOW);
    /* No certificate: still no opinion, flag or not. */
    c.struct_size = sizeof(c);
    c.n_certs = 0;
    memset(&r, 0, sizeof(r));
    assert_int_equal(table->authenticate_peer(st, &c, &r, NULL), 0);
    assert_int_equal(r.verdict, PZ_AUTH_ABSTAIN);
    table->destroy(st);
    pz_mock_free(m);
}

static void test_lists(void **state)
{
    (void)state;
    pz_mock *m = pz_mock_new();
    /* Deny by id and by type; deny wins over allow. */
    void *st = make(m, "deny: {node_ids: [light-1], node_types: [archive]}\n"
                       "allow: {node_types: [validator, light, archive]}\n");
    assert_int_equal(run(st, C_GOOD).verdict, PZ_AUTH_ALLOW);
    pz_auth_result r = run(st, C_LIGHT);
    assert_int_equal(r.verdict, PZ_AUTH_DENY);
    assert_int_equal(r.reason_code, CERT_AUTH_DENY_LISTED_ID);
    assert_string_equal(r.reason, "node light-1 is on the deny list");
    r = run(st, C_ARCHIVE);
    assert_int_equal(r.reason_code, CERT_AUTH_DENY_LISTED_TYPE);
    assert_int_equal(pz_mock_metric(m, "denials_total", "policy"), 2);
    table->destroy(st);
    /* Allow lists: by id or by type. */
    st = make(m, "allow: {node_ids: [light-1], node_types: [archive]}\n");
    assert_int_equal(run(st, C_LIGHT).verdict, PZ_AUTH_ALLOW);
    assert_int_equal(run(st, C_ARCHIVE).verdict, PZ_AUTH_ALLOW);
    r = run(st, C_GOOD);
    assert_int_equal(r.verdict, PZ_AUTH_DENY);
    assert_int_equal(r.reason_code, CERT_AUTH_DENY_NOT_ALLOWED);
    assert_string_equal(r.reason, "node validator-1 (type validator) is not on the allow list");
    /* Validation comes first: a revoked node on the allow list stays out. */
    table->destroy(st);
    st = make(m, "allow: {node_ids: [revoked-1]}\n");
    assert_int_equal(run(st, C_REVOKED).reason_code, PZ_CV_REVOKED);
    table->destroy(st);
    pz_mock_free(m);
}

static void test_directory(void **state)
{
    (void)state;
    pz_mock *m = pz_mock_new();
    char *extra = g_strdup_printf("directory: %s/peers.yaml\n", tmpdir);
    void *st = make(m, extra);
    pz_auth_result r = run(st, C_GOOD);
    assert_int_equal(r.verdict, PZ_AUTH_ALLOW);
    assert_int_equal(r.n_roles, 2);
    assert_string_equal(r.roles[0], "validator");
    assert_string_equal(r.roles[1], "rpc");
    /* The directory says light-1 is a full node; its certificate says light. */
    r = run(st, C_LIGHT);
    assert_int_equal(r.verdict, PZ_AUTH_DENY);
    assert_int_equal(r.reason_code, CERT_AUTH_DENY_DIRECTORY);
    assert_string_equal(r.reason, "node light-1: certificate says type light, the peer directory full");
    /* archive-1 has no node keys in its certificate: nothing to contradict. */
    assert_int_equal(run(st, C_ARCHIVE).verdict, PZ_AUTH_ALLOW);
    /* Not listed, not required: allowed without roles. */
    r = run(st, C_NOCLIENT);
    assert_int_equal(r.verdict, PZ_AUTH_DENY); /* wrong purpose, still */
    table->destroy(st);
    g_free(extra);

    /* require_directory */
    extra = g_strdup_printf("directory: %s/peers.yaml\nrequire_directory: true\n", tmpdir);
    st = make(m, extra);
    assert_int_equal(run(st, C_GOOD).verdict, PZ_AUTH_ALLOW);
    r = run_out(st, C_NOCLIENT, "server-only");
    assert_int_equal(r.verdict, PZ_AUTH_DENY);
    assert_int_equal(r.reason_code, CERT_AUTH_DENY_NOT_IN_DIRECTORY);
    table->destroy(st);
    g_free(extra);

    /* Keys that contradict the directory. */
    char *dir2 = tpath("peers2.yaml");
    assert_true(g_file_set_contents(dir2,
                                    "peers:\n  - node_id: validator-1\n    sign_pub: "
                                    "0101010101010101010101010101010101010101010101010101010101010101\n",
                                    -1, NULL));
    extra = g_strdup_printf("directory: %s\n", dir2);
    st = make(m, extra);
    r = run(st, C_GOOD);
    assert_int_equal(r.verdict, PZ_AUTH_DENY);
    assert_int_equal(r.reason_code, CERT_AUTH_DENY_DIRECTORY);
    assert_non_null(strstr(r.reason, "public keys differ"));
    table->destroy(st);
    g_free(extra);
    g_free(dir2);
    pz_mock_free(m);
}

static void test_generate(void **state)
{
    (void)state;
    pz_mock *m = pz_mock_new();
    char *extra = g_strdup_printf("cert_file: %s/self.crt\n", tmpdir);
    void *st = make(m, extra);
    size_t len = 0;
    assert_int_equal(table->generate_credentials(st, NULL, 0, NULL, &len, pz_mock_err(m)), PZ_ERANGE);
    assert_true(len > 100);
    char *buf = g_malloc(len + 1);
    assert_int_equal(table->generate_credentials(st, NULL, 0, (uint8_t *)buf, &len, pz_mock_err(m)), 0);
    buf[len] = '\0';
    char *want = NULL;
    char *p = tpath("self.crt");
    assert_true(g_file_get_contents(p, &want, NULL, NULL));
    assert_string_equal(buf, want);
    assert_int_equal(table->generate_credentials(st, NULL, 0, (uint8_t *)buf, NULL, pz_mock_err(m)), PZ_EINVAL);
    g_free(p);
    g_free(want);
    g_free(buf);
    table->destroy(st);
    g_free(extra);
    /* The CA in DER is accepted; without cert_file nothing to present. */
    char *yaml = g_strdup_printf("ca_files: [%s/ca.der]\n", tmpdir);
    const pz_conf *conf;
    assert_int_equal(pz_mock_conf(m, yaml, &conf), 0);
    assert_int_equal(table->create(pz_mock_core(m), conf, &st, pz_mock_err(m)), 0);
    len = 16;
    uint8_t small[16];
    assert_int_equal(table->generate_credentials(st, NULL, 0, small, &len, pz_mock_err(m)), PZ_ENOTSUP);
    /* No CRL: the revoked certificate passes (what a CRL is for). */
    assert_int_equal(run(st, C_REVOKED).verdict, PZ_AUTH_ALLOW);
    table->destroy(st);
    g_free(yaml);
    pz_mock_free(m);
}

static void test_reload(void **state)
{
    (void)state;
    pz_mock *m = pz_mock_new();
    void *st = make(m, NULL);
    assert_int_equal(run(st, C_LIGHT).verdict, PZ_AUTH_ALLOW);
    /* A new CRL revokes light-1 as well. */
    char *yaml = g_strdup_printf("ca_file: %s/ca.crt\ncrl_files: [%s/ca2.crl]\n", tmpdir, tmpdir);
    const pz_conf *conf;
    assert_int_equal(pz_mock_conf(m, yaml, &conf), 0);
    assert_int_equal(table->reload(st, conf, pz_mock_err(m)), 0);
    assert_int_equal(run(st, C_LIGHT).reason_code, PZ_CV_REVOKED);
    /* A bad reload keeps the CRL in force. */
    assert_int_equal(pz_mock_conf(m, "ca_file: /nonexistent/ca.crt\n", &conf), 0);
    assert_int_not_equal(table->reload(st, conf, pz_mock_err(m)), 0);
    assert_int_equal(run(st, C_LIGHT).reason_code, PZ_CV_REVOKED);
    assert_int_equal(pz_mock_conf(m, "ca_file: [x]\n", &conf), 0);
    assert_int_equal(table->reload(st, conf, pz_mock_err(m)), PZ_ECONFIG);
    assert_int_equal(run(st, C_GOOD).verdict, PZ_AUTH_ALLOW);
    table->destroy(st);
    table->destroy(NULL);
    g_free(yaml);
    pz_mock_free(m);
}

static void test_bad_config(void **state)
{
    (void)state;
    char *ca_line = g_strdup_printf("ca_file: %s/ca.crt\n", tmpdir);
    struct {
        const char *prefix; /* prepended: the CA line, or "" */
        const char *yaml;
        int rc;
        const char *msg;
    } cases[] = {
        {"", "{}\n", PZ_ECONFIG, "cert-auth: no trusted CA: set ca_file (or ca_files)"},
        {"", "ca_files: []\n", PZ_ECONFIG, "no trusted CA"},
        {"", "ca_file: \"\"\n", PZ_ECONFIG, "ca_file: expected a file path"},
        {"", "ca_files: [\"\"]\n", PZ_ECONFIG, "ca_files[0]: expected a file path"},
        {"", "ca_file: /nonexistent/pz/ca.crt\n", PZ_ENOENT, "/nonexistent/pz/ca.crt"},
        {"", "ca_file: [a]\n", PZ_ECONFIG, "ca_file: expected a string"},
        {ca_line, "crl_file: /nonexistent/pz/ca.crl\n", PZ_ENOENT, "/nonexistent/pz/ca.crl"},
        {ca_line, "allow: {}\n", PZ_ECONFIG, "an allow list needs node_ids or node_types"},
        {ca_line, "allow: [a]\n", PZ_ECONFIG, "allow: expected a map"},
        {ca_line, "allow: {node_ids: [\"a b\"]}\n", PZ_ECONFIG, "expected a node id, found \"a b\""},
        {ca_line, "deny: {node_types: [Validator]}\n", PZ_ECONFIG, "expected a node type, found \"Validator\""},
        {ca_line, "deny: {node_ids: [[x]]}\n", PZ_ECONFIG, "expected a node id, found a list or map"},
        {ca_line, "require_directory: true\n", PZ_ECONFIG, "require_directory: true needs directory"},
        {ca_line, "directory: /nonexistent/pz/peers.yaml\n", PZ_ENOENT, "cannot open peer directory"},
        {ca_line, "min_rsa_bits: 1024\n", PZ_ECONFIG, "min_rsa_bits"},
        {ca_line, "max_depth: 17\n", PZ_ECONFIG, "max_depth"},
        {ca_line, "cert_file: /nonexistent/pz/node.crt\n", PZ_EIO, "cannot read this node's certificate"},
        {ca_line, "require_directory: maybe\n", PZ_ECONFIG, "require_directory"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pz_mock *m = pz_mock_new();
        char *yaml = g_strconcat(cases[i].prefix, cases[i].yaml, NULL);
        const pz_conf *conf;
        void *st = NULL;
        assert_int_equal(pz_mock_conf(m, yaml, &conf), 0);
        int rc = table->create(pz_mock_core(m), conf, &st, pz_mock_err(m));
        if (rc != cases[i].rc || !strstr(pz_mock_err_msg(m), cases[i].msg))
            fail_msg("case %zu: rc %d \"%s\", expected %d \"%s\"", i, rc, pz_mock_err_msg(m), cases[i].rc,
                     cases[i].msg);
        assert_null(st);
        pz_mock_free(m);
        g_free(yaml);
    }
    pz_mock *m = pz_mock_new();
    void *st = NULL;
    assert_int_equal(table->create(pz_mock_core(m), NULL, &st, pz_mock_err(m)), PZ_ECONFIG);
    /* A CRL from another CA is refused by the validation service. */
    char *yaml = g_strdup_printf("ca_file: %s/ca.crt\ncrl_file: %s/ca.crt\n", tmpdir, tmpdir);
    const pz_conf *conf;
    assert_int_equal(pz_mock_conf(m, yaml, &conf), 0);
    assert_int_not_equal(table->create(pz_mock_core(m), conf, &st, pz_mock_err(m)), 0);
    assert_null(st);
    pz_mock_free(m);
    g_free(yaml);
    g_free(ca_line);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_and_refused), cmocka_unit_test(test_unverified_chain),
        cmocka_unit_test(test_lists),
        cmocka_unit_test(test_directory),         cmocka_unit_test(test_generate),
        cmocka_unit_test(test_reload),            cmocka_unit_test(test_bad_config),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
