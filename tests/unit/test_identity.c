/* tests/unit/test_identity.c — core/identity.c: the peer directory file
 * (every refusal with FILE:LINE:COL), look-ups by node id and by key,
 * learnt identities, 32-byte key decoding, identities from certificates,
 * and the `identity` configuration section. */
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
#include <time.h>

#include <cmocka.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>

#include "certfix.h"
#include "conf.h"
#include "err.h"
#include "identity.h"

static char *tmpdir;

static int setup(void **state)
{
    (void)state;
    tmpdir = g_dir_make_tmp("pz-identity-XXXXXX", NULL);
    return tmpdir ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
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

static char *write_file(const char *name, const char *text, int mode)
{
    char *path = g_build_filename(tmpdir, name, NULL);
    assert_true(g_file_set_contents(path, text, -1, NULL));
    assert_int_equal(g_chmod(path, mode), 0);
    return path;
}

#define HEX1 "0101010101010101010101010101010101010101010101010101010101010101"
#define HEX2 "0202020202020202020202020202020202020202020202020202020202020202"
#define HEX3 "0303030303030303030303030303030303030303030303030303030303030303"
/* base64 of 32 bytes 0x04 */
#define B64_4 "BAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQ="

static const char good_dir[] = "# peers\n"
                               "peers:\n"
                               "  - node_id: validator-1\n"
                               "    node_type: validator\n"
                               "    roles: [validator, rpc]\n"
                               "    sign_pub: " HEX1 "\n"
                               "    e2e_pub: " HEX2 "\n"
                               "    spki_sha256: \"sha256//" B64_4 "\"\n"
                               "  - node_id: light-7\n"
                               "    tls_ed25519: " HEX3 "\n"
                               "  - {node_id: bare}\n";

static void test_directory(void **state)
{
    (void)state;
    char *path = write_file("peers.yaml", good_dir, 0644);
    pz_identities *ids = NULL;
    pz_err err;
    pz_err_init(&err);
    assert_int_equal(pz_identities_new(&ids, &err), 0);
    assert_null(pz_identities_directory(ids));
    assert_int_equal(pz_identities_load_directory(ids, path, &err), 0);
    assert_string_equal(pz_identities_directory(ids), path);
    assert_int_equal(pz_identities_count(ids), 3);

    pz_identity_rec r;
    assert_int_equal(pz_identities_lookup(ids, "validator-1", &r), 0);
    assert_string_equal(r.node_id, "validator-1");
    assert_string_equal(r.node_type, "validator");
    assert_int_equal(r.n_roles, 2);
    assert_string_equal(r.roles[0], "validator");
    assert_string_equal(r.roles[1], "rpc");
    assert_true(r.has_sign_pub && r.has_e2e_pub && r.has_spki_sha256);
    assert_false(r.has_tls_ed25519);
    assert_int_equal(r.sign_pub[0], 1);
    assert_int_equal(r.e2e_pub[31], 2);
    assert_int_equal(r.spki_sha256[5], 4);
    char *src = g_strdup_printf("directory %s:3:5", path);
    assert_string_equal(r.source, src);
    g_free(src);
    assert_int_equal(pz_identities_lookup(ids, "bare", &r), 0);
    assert_string_equal(r.node_type, "");
    assert_int_equal(pz_identities_lookup(ids, "nobody", &r), PZ_ENOENT);
    assert_int_equal(pz_identities_lookup(ids, NULL, &r), PZ_EINVAL);

    /* By key. */
    uint8_t k[32];
    memset(k, 4, 32);
    assert_int_equal(pz_identities_lookup_key(ids, PZ_IDKEY_SPKI_SHA256, k, &r), 0);
    assert_string_equal(r.node_id, "validator-1");
    memset(k, 3, 32);
    assert_int_equal(pz_identities_lookup_key(ids, PZ_IDKEY_TLS_ED25519, k, &r), 0);
    assert_string_equal(r.node_id, "light-7");
    /* The same bytes under another kind are not a match. */
    assert_int_equal(pz_identities_lookup_key(ids, PZ_IDKEY_SPKI_SHA256, k, &r), PZ_ENOENT);
    memset(k, 1, 32);
    assert_int_equal(pz_identities_lookup_key(ids, PZ_IDKEY_SIGN_PUB, k, &r), 0);
    assert_string_equal(r.node_id, "validator-1");

    /* Learnt identities: fill gaps, never override the directory. */
    pz_identity_rec l;
    memset(&l, 0, sizeof(l));
    g_strlcpy(l.node_id, "bare", sizeof(l.node_id));
    g_strlcpy(l.node_type, "full", sizeof(l.node_type));
    l.has_sign_pub = 1;
    memset(l.sign_pub, 9, 32);
    assert_int_equal(pz_identity_rec_add_role(&l, "rpc"), 0);
    assert_int_equal(pz_identities_put(ids, &l, &err), 0);
    g_strlcpy(l.node_id, "validator-1", sizeof(l.node_id));
    assert_int_equal(pz_identities_put(ids, &l, &err), 0);
    g_strlcpy(l.node_id, "new-node", sizeof(l.node_id));
    assert_int_equal(pz_identities_put(ids, &l, &err), 0);
    assert_int_equal(pz_identities_count(ids), 4);
    assert_int_equal(pz_identities_lookup(ids, "bare", &r), 0);
    assert_string_equal(r.node_type, "full");
    assert_int_equal(r.sign_pub[0], 9);
    assert_int_equal(pz_identities_lookup(ids, "validator-1", &r), 0);
    assert_string_equal(r.node_type, "validator");
    assert_int_equal(r.sign_pub[0], 1);
    assert_int_equal(pz_identities_lookup(ids, "new-node", &r), 0);
    g_strlcpy(l.node_id, "bad id", sizeof(l.node_id));
    assert_int_equal(pz_identities_put(ids, &l, &err), PZ_EINVAL);

    /* A failed reload keeps the old directory; learnt ones survive a good one. */
    char *bad = write_file("bad.yaml", "peers: 3\n", 0644);
    assert_int_equal(pz_identities_load_directory(ids, bad, &err), PZ_ECONFIG);
    assert_int_equal(pz_identities_lookup(ids, "light-7", &r), 0);
    char *other = write_file("other.yaml", "peers:\n  - node_id: z\n", 0600);
    assert_int_equal(pz_identities_load_directory(ids, other, &err), 0);
    assert_int_equal(pz_identities_lookup(ids, "light-7", &r), PZ_ENOENT);
    assert_int_equal(pz_identities_lookup(ids, "new-node", &r), 0);
    assert_int_equal(pz_identities_count(ids), 4); /* z, new-node, bare, validator-1 (learnt) */

    pz_identities_free(ids);
    pz_identities_free(NULL);
    pz_err_clear(&err);
    g_free(path);
    g_free(bad);
    g_free(other);
}

static void test_empty_directories(void **state)
{
    (void)state;
    static const char *const texts[] = {"", "# nothing\n", "peers:\n", "peers: []\n", "---\n"};
    for (size_t i = 0; i < G_N_ELEMENTS(texts); i++) {
        char *path = write_file("empty.yaml", texts[i], 0600);
        pz_identities *ids = NULL;
        pz_err err;
        pz_err_init(&err);
        assert_int_equal(pz_identities_new(&ids, &err), 0);
        if (pz_identities_load_directory(ids, path, &err))
            fail_msg("case %zu: %s", i, pz_err_msg(&err));
        assert_int_equal(pz_identities_count(ids), 0);
        pz_identities_free(ids);
        pz_err_clear(&err);
        g_free(path);
    }
}

typedef struct bad_case {
    const char *yaml;
    const char *msg; /* after "PATH:" */
} bad_case;

static const bad_case bad_cases[] = {
    {"- a\n", "1:1: (root): expected a map with key peers, found a list"},
    {"peerz: []\n", "1:1: peerz: unknown key (expected peers)"},
    {"peers: {a: 1}\n", "1:8: peers: expected a list of peers, found a map"},
    {"peers:\n  - validator-1\n", "2:5: peers[0]: expected a map with node_id, found a scalar"},
    {"peers:\n  - node_type: x\n", "2:5: peers[0]: missing node_id"},
    {"peers:\n  - node_id: \"a b\"\n", "2:14: peers[0].node_id: expected a node id"},
    {"peers:\n  - node_id: [a]\n", "2:14: peers[0].node_id: expected a node id, found a list"},
    {"peers:\n  - node_id: "
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
     "2:14: peers[0].node_id: expected a node id ([A-Za-z0-9._-], 1 to 64 bytes)"},
    {"peers:\n  - {node_id: a, node_type: \"x y\"}\n", "peers[0].node_type: expected a node type"},
    {"peers:\n  - {node_id: a, roles: admin}\n", "2:25: peers[0].roles: expected a list of roles, found a scalar"},
    {"peers:\n  - {node_id: a, roles: [ok, \"no way\"]}\n", "peers[0].roles[1]: expected a role"},
    {"peers:\n  - {node_id: a, roles: [{x: 1}]}\n", "peers[0].roles[0]: expected a role, found a map"},
    {"peers:\n  - {node_id: a, roles: [a, b, c, d, e, f, g, h, i]}\n", "peers[0].roles[8]: too many roles: at most 8"},
    {"peers:\n  - {node_id: a, sign_pub: 0101}\n",
     "2:28: peers[0].sign_pub: expected 32 bytes in hex or base64, found 2 bytes"},
    {"peers:\n  - {node_id: a, e2e_pub: \"not base64!\"}\n",
     "peers[0].e2e_pub: expected 32 bytes in hex or base64, found \"not base64!\""},
    {"peers:\n  - {node_id: a, spki_sha256: " HEX1 "01}\n", "expected 32 bytes in hex or base64, found 33 bytes"},
    {"peers:\n  - {node_id: a, tls_ed25519: [1]}\n", "peers[0].tls_ed25519: expected 32 bytes in hex or base64, "
                                                       "found a list"},
    {"peers:\n  - {node_id: a, nodeid: b}\n", "2:18: peers[0].nodeid: unknown key (expected node_id, node_type"},
    {"peers:\n  - {node_id: a}\n  - {node_id: a}\n", "3:5: peers[1].node_id: node \"a\" is listed twice (first at "
                                                      "directory "},
    {"peers:\n  - {node_id: a, sign_pub: " HEX1 "}\n  - {node_id: b, sign_pub: " HEX1 "}\n",
     "3:5: peers[1].sign_pub: same key as node \"a\""},
    {"peers:\n  - {node_id: a, spki_sha256: " HEX1 "}\n  - {node_id: b, spki_sha256: \"sha256//AQEBAQEBAQEBAQEBAQEB"
     "AQEBAQEBAQEBAQEBAQEBAQE=\"}\n",
     "peers[1].spki_sha256: same key as node \"a\""},
    {"peers: [\n", "2:1: did not find expected node content"},
    {"peers:\n  - {node_id: a}\n---\npeers: []\n", ""}, /* a second document is ignored by the loader */
};

static void test_bad_directories(void **state)
{
    (void)state;
    for (size_t i = 0; i < G_N_ELEMENTS(bad_cases); i++) {
        char *path = write_file("bad.yaml", bad_cases[i].yaml, 0600);
        pz_identities *ids = NULL;
        pz_err err;
        pz_err_init(&err);
        assert_int_equal(pz_identities_new(&ids, &err), 0);
        int rc = pz_identities_load_directory(ids, path, &err);
        if (!*bad_cases[i].msg) {
            assert_int_equal(rc, 0);
        } else {
            /* "PATH:LINE:COL: key.path: ..." — MSG with or without LINE:COL. */
            char *want = g_strdup_printf("%s:%s", path, bad_cases[i].msg);
            char *prefix = g_strdup_printf("%s:", path);
            const char *got = pz_err_msg(&err);
            int ok = rc == PZ_ECONFIG && g_str_has_prefix(got, prefix) &&
                     (strstr(got, want) || (g_ascii_isalpha(bad_cases[i].msg[0]) && strstr(got, bad_cases[i].msg)));
            g_free(prefix);
            if (!ok)
                fail_msg("case %zu: rc %d \"%s\", expected \"%s\"", i, rc, pz_err_msg(&err), want);
            g_free(want);
            assert_int_equal(pz_identities_count(ids), 0);
        }
        pz_identities_free(ids);
        pz_err_clear(&err);
        g_free(path);
    }
}

static void test_directory_file_checks(void **state)
{
    (void)state;
    pz_identities *ids = NULL;
    pz_err err;
    pz_err_init(&err);
    assert_int_equal(pz_identities_new(&ids, &err), 0);
    char *path = write_file("open.yaml", "peers: []\n", 0666);
    assert_int_equal(pz_identities_load_directory(ids, path, &err), PZ_EPERM);
    assert_non_null(strstr(pz_err_msg(&err), "peer directory is writable by others (mode 0666)"));
    assert_non_null(strstr(pz_err_msg(&err), "chmod go-w"));
    assert_int_equal(g_chmod(path, 0664), 0);
    assert_int_equal(pz_identities_load_directory(ids, path, &err), PZ_EPERM);
    assert_non_null(strstr(pz_err_msg(&err), "writable by its group"));
    assert_int_equal(g_chmod(path, 0444), 0);
    assert_int_equal(pz_identities_load_directory(ids, path, &err), 0);
    char *missing = g_build_filename(tmpdir, "missing.yaml", NULL);
    assert_int_equal(pz_identities_load_directory(ids, missing, &err), PZ_ENOENT);
    assert_non_null(strstr(pz_err_msg(&err), "cannot open peer directory"));
    assert_int_equal(pz_identities_load_directory(ids, tmpdir, &err), PZ_EIO);
    assert_non_null(strstr(pz_err_msg(&err), "not a regular file"));
    assert_int_equal(pz_identities_load_directory(ids, NULL, &err), PZ_EINVAL);
    pz_identities_free(ids);
    pz_err_clear(&err);
    g_free(path);
    g_free(missing);
}

static void test_parse_key32(void **state)
{
    (void)state;
    uint8_t k[32];
    size_t got = 0;
    assert_int_equal(pz_identity_parse_key32(HEX1, k, &got), 0);
    assert_int_equal(got, 32);
    assert_int_equal(k[31], 1);
    /* Upper-case hex. */
    assert_int_equal(pz_identity_parse_key32("AB01010101010101010101010101010101010101010101010101010101010101", k, NULL), 0);
    assert_int_equal(k[0], 0xab);
    assert_int_equal(pz_identity_parse_key32(B64_4, k, NULL), 0);
    assert_int_equal(k[0], 4);
    /* Without padding, URL alphabet, curl's prefix. */
    assert_int_equal(pz_identity_parse_key32("BAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQ", k, NULL), 0);
    assert_int_equal(pz_identity_parse_key32("sha256//" B64_4, k, NULL), 0);
    assert_int_equal(pz_identity_parse_key32("_____________________________________________w", k, &got), PZ_ERANGE);
    assert_int_equal(pz_identity_parse_key32("__________________________________________8", k, NULL), 0);
    assert_int_equal(k[0], 0xff);
    /* Wrong lengths and garbage. */
    assert_int_equal(pz_identity_parse_key32("0101", k, &got), PZ_ERANGE);
    assert_int_equal(got, 2);
    assert_int_equal(pz_identity_parse_key32(HEX1 "0101", k, &got), PZ_ERANGE);
    assert_int_equal(got, 34);
    assert_int_equal(pz_identity_parse_key32("AAAA", k, &got), PZ_ERANGE); /* even hex: hex */
    assert_int_equal(got, 2);
    assert_int_equal(pz_identity_parse_key32("AAAAAA==", k, &got), PZ_ERANGE); /* base64 */
    assert_int_equal(got, 4);
    assert_int_equal(pz_identity_parse_key32("", k, &got), PZ_ERANGE);
    assert_int_equal(pz_identity_parse_key32("zz!", k, &got), PZ_EINVAL);
    assert_int_equal(pz_identity_parse_key32("A", k, &got), PZ_EINVAL);
    assert_int_equal(pz_identity_parse_key32("AB===", k, &got), PZ_EINVAL);
    /* Non-canonical base64 (leftover bits set). */
    assert_int_equal(pz_identity_parse_key32("BAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAR=", k, NULL), PZ_EINVAL);
    assert_int_equal(pz_identity_parse_key32(NULL, k, &got), PZ_EINVAL);
}

static void test_names(void **state)
{
    (void)state;
    assert_true(pz_identity_valid_node_id("a"));
    assert_true(pz_identity_valid_node_id("Node_1.x-y"));
    assert_true(pz_identity_valid_node_id("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")); /* 64 */
    assert_false(pz_identity_valid_node_id("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
    assert_false(pz_identity_valid_node_id(""));
    assert_false(pz_identity_valid_node_id(NULL));
    assert_false(pz_identity_valid_node_id("a/b"));
    assert_false(pz_identity_valid_node_id("a:b"));
    assert_false(pz_identity_valid_node_id("-a"));
    assert_false(pz_identity_valid_node_id(".a"));
    assert_true(pz_identity_valid_node_id("a-"));
    assert_true(pz_identity_valid_name("role:admin", 32));
    assert_false(pz_identity_valid_name("abc", 2));
    assert_false(pz_identity_valid_name(NULL, 2));

    pz_identity_rec r;
    memset(&r, 0, sizeof(r));
    for (int i = 0; i < PZ_AUTH_MAX_ROLES; i++) {
        char name[8];
        snprintf(name, sizeof(name), "r%d", i);
        assert_int_equal(pz_identity_rec_add_role(&r, name), 0);
    }
    assert_int_equal(pz_identity_rec_add_role(&r, "r0"), 0); /* present: no-op */
    assert_int_equal(pz_identity_rec_add_role(&r, "extra"), PZ_ERANGE);
    assert_int_equal(pz_identity_rec_add_role(&r, "bad role"), PZ_EINVAL);
}

static void test_from_conf(void **state)
{
    (void)state;
    char *peers = write_file("dir-peers.yaml", "peers:\n  - {node_id: conf-peer, roles: [rpc]}\n", 0600);
    /* A relative directory path is taken from the configuration file's directory. */
    char *conf = write_file("node.yaml", "identity:\n  directory: dir-peers.yaml\n", 0600);
    pz_conf_doc *doc = NULL;
    pz_err err;
    pz_err_init(&err);
    assert_int_equal(pz_conf_load_file(conf, &doc, &err), 0);
    pz_identities *ids = NULL;
    if (pz_identities_new_from_conf(pz_conf_root(doc), &ids, &err))
        fail_msg("%s", pz_err_msg(&err));
    pz_identity_rec r;
    assert_int_equal(pz_identities_lookup(ids, "conf-peer", &r), 0);
    assert_string_equal(pz_identities_directory(ids), peers);
    assert_int_equal(pz_conf_check_unused(pz_conf_root(doc), &err), 0);
    pz_identities_free(ids);
    pz_conf_doc_free(doc);

    /* No section, or none at all: an empty manager. */
    assert_int_equal(pz_identities_new_from_conf(NULL, &ids, &err), 0);
    assert_int_equal(pz_identities_count(ids), 0);
    pz_identities_free(ids);

    static const bad_case cases[] = {
        {"identity: []\n", "test.yaml:1:11: identity: expected a map"},
        {"identity: {directory: [a]}\n", "identity.directory: expected a string"},
        {"identity: {directory: \"\"}\n", "directory: expected the path of a peer directory file"},
        {"identity: {directroy: x}\n", "identity.directroy: unknown key"},
        {"identity: {directory: /nonexistent/pz/peers.yaml}\n",
         "test.yaml:1:11: identity.directory: /nonexistent/pz/peers.yaml: cannot open peer directory"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        assert_int_equal(pz_conf_load_string("test.yaml", cases[i].yaml, strlen(cases[i].yaml), &doc, &err), 0);
        ids = (pz_identities *)&err;
        int rc = pz_identities_new_from_conf(pz_conf_root(doc), &ids, &err);
        if (rc == 0 || !strstr(pz_err_msg(&err), cases[i].msg))
            fail_msg("case %zu: rc %d \"%s\", expected \"%s\"", i, rc, pz_err_msg(&err), cases[i].msg);
        assert_null(ids);
        pz_conf_doc_free(doc);
    }
    pz_err_clear(&err);
    g_free(peers);
    g_free(conf);
}

static void test_from_cert(void **state)
{
    (void)state;
    int64_t now = (int64_t)time(NULL);
    pz_fix_ca ca;
    assert_int_equal(pz_fix_ca_new(&ca, PZ_FIX_P384, "Test", now, 0, 0), 0);
    uint8_t sign[32], e2e[32];
    memset(sign, 0x11, 32);
    memset(e2e, 0x22, 32);
    pz_fix_leaf_opts o = {.node_id = "val-3", .node_type = "validator", .sign_pub = sign, .e2e_pub = e2e};
    gnutls_x509_crt_t crt;
    assert_int_equal(pz_fix_leaf(&ca, &o, now, &crt, NULL), 0);
    gnutls_datum_t der;
    assert_int_equal(pz_fix_export(crt, GNUTLS_X509_FMT_DER, &der), 0);

    pz_identity_rec r;
    pz_err err;
    pz_err_init(&err);
    assert_int_equal(pz_identity_rec_from_cert(der.data, der.size, &r, &err), 0);
    assert_string_equal(r.node_id, "val-3");
    assert_string_equal(r.node_type, "validator");
    assert_true(r.has_sign_pub && r.has_e2e_pub && r.has_spki_sha256);
    assert_false(r.has_tls_ed25519);
    assert_memory_equal(r.sign_pub, sign, 32);
    assert_memory_equal(r.e2e_pub, e2e, 32);
    assert_string_equal(r.source, "certificate");

    /* The pin is SHA-256 of the DER SubjectPublicKeyInfo. */
    gnutls_pubkey_t pub;
    gnutls_datum_t spki;
    uint8_t want[32];
    assert_int_equal(gnutls_pubkey_init(&pub), 0);
    assert_int_equal(gnutls_pubkey_import_x509(pub, crt, 0), 0);
    assert_int_equal(gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &spki), 0);
    assert_int_equal(gnutls_hash_fast(GNUTLS_DIG_SHA256, spki.data, spki.size, want), 0);
    assert_memory_equal(r.spki_sha256, want, 32);
    gnutls_free(spki.data);
    gnutls_pubkey_deinit(pub);

    /* An Ed25519 leaf gives its raw key too. */
    gnutls_x509_crt_t ed;
    pz_fix_leaf_opts oe = {.node_id = "light-1", .node_type = "light", .key = PZ_FIX_ED25519};
    assert_int_equal(pz_fix_leaf(&ca, &oe, now, &ed, NULL), 0);
    gnutls_datum_t edder;
    assert_int_equal(pz_fix_export(ed, GNUTLS_X509_FMT_DER, &edder), 0);
    uint8_t spki2[32], raw[32];
    int is_ed = 0;
    assert_int_equal(pz_identity_cert_keys(edder.data, edder.size, spki2, raw, &is_ed, &err), 0);
    assert_true(is_ed);
    assert_int_equal(pz_identity_rec_from_cert(edder.data, edder.size, &r, &err), 0);
    assert_true(r.has_tls_ed25519);
    assert_memory_equal(r.tls_ed25519, raw, 32);
    assert_false(r.has_sign_pub);

    /* Not a certificate; a certificate that is not a node's. */
    static const uint8_t junk[] = {0x30, 0x03, 0x02, 0x01, 0x01};
    assert_int_equal(pz_identity_rec_from_cert(junk, sizeof(junk), &r, &err), PZ_EINVAL);
    assert_int_equal(pz_identity_cert_keys(junk, sizeof(junk), spki2, raw, &is_ed, &err), PZ_EINVAL);
    assert_non_null(strstr(pz_err_msg(&err), "not an X.509 certificate"));
    assert_int_equal(pz_identity_cert_keys(NULL, 0, spki2, raw, &is_ed, &err), PZ_EINVAL);
    gnutls_datum_t cader;
    assert_int_equal(pz_fix_export(ca.crt, GNUTLS_X509_FMT_DER, &cader), 0);
    assert_int_equal(pz_identity_rec_from_cert(cader.data, cader.size, &r, &err), PZ_EINVAL);

    gnutls_free(cader.data);
    gnutls_free(edder.data);
    gnutls_free(der.data);
    gnutls_x509_crt_deinit(ed);
    gnutls_x509_crt_deinit(crt);
    pz_fix_ca_clear(&ca);
    pz_err_clear(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_directory),
        cmocka_unit_test(test_empty_directories),
        cmocka_unit_test(test_bad_directories),
        cmocka_unit_test(test_directory_file_checks),
        cmocka_unit_test(test_parse_key32),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_from_conf),
        cmocka_unit_test(test_from_cert),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
