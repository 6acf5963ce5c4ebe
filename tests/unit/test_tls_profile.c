/* tests/unit/test_tls_profile.c — the tls transport's profiles: suite names
 * and their refusals, the mapping to a GnuTLS priority string (checked
 * against what GnuTLS then enables), configuration refusals with
 * FILE:LINE:COL; and, through the provider table on the mock core, the
 * transport's own configuration refusals, the handshake deadline on the
 * core's clock, the pending-handshake cap, and a full in-process handshake
 * (credentials, channel binding, reload keeping the session). */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <gnutls/gnutls.h>

#include <prozsec/plugintest.h>
#include <prozsec/transport.h>

#include "../../plugins/tls/profile.h"
#include "certfix.h"
#include "pki.h"
#include "../testutil.h"

/* ------------------------------------------------------------------------ */
/* Suite names */

static void test_suite_lookup(void **unused)
{
    static const struct {
        const char *name;
        int rc;
        uint16_t id;     /* when rc == 0 */
        const char *why; /* substring when refused */
    } cases[] = {
        {"ECDHE-ECDSA-AES256-GCM-SHA384", 0, 0xC02C, NULL},
        {"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", 0, 0xC02C, NULL},
        {"ECDHE-ECDSA-CHACHA20-POLY1305", 0, 0xCCA9, NULL},
        {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", 0, 0xCCA9, NULL},
        {"ECDHE-RSA-AES256-GCM-SHA384", 0, 0xC030, NULL},
        {"TLS_AES_256_GCM_SHA384", 0, 0x1302, NULL},
        {"TLS_CHACHA20_POLY1305_SHA256", 0, 0x1303, NULL},
        {"TLS_AES_128_GCM_SHA256", 0, 0x1301, NULL},
        {"TLS_AES_128_CCM_SHA256", 0, 0x1304, NULL},
        {"ECDHE-RSA-AES128-GCM-SHA256", 0, 0xC02F, NULL},
        {"ECDHE-ECDSA-AES256-SHA384", PZ_EREFUSED, 0, "CBC"},
        {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", PZ_EREFUSED, 0, "CBC"},
        {"ECDHE-RSA-AES128-SHA", PZ_EREFUSED, 0, "CBC"},
        {"TLS_RSA_WITH_RC4_128_SHA", PZ_EREFUSED, 0, "RC4"},
        {"RC4-MD5", PZ_EREFUSED, 0, "RC4"},
        {"TLS_RSA_WITH_3DES_EDE_CBC_SHA", PZ_EREFUSED, 0, "DES"},
        {"ECDHE-RSA-DES-CBC3-SHA", PZ_EREFUSED, 0, "DES"},
        {"TLS_RSA_WITH_NULL_SHA256", PZ_EREFUSED, 0, "NULL"},
        {"ECDHE-ECDSA-NULL-SHA", PZ_EREFUSED, 0, "NULL"},
        {"TLS_RSA_EXPORT_WITH_RC4_40_MD5", PZ_EREFUSED, 0, "export"},
        {"EXP-RC4-MD5", PZ_EREFUSED, 0, "export"},
        {"TLS_RSA_WITH_AES_256_GCM_SHA384", PZ_EREFUSED, 0, "non-ECDHE"},
        {"AES256-GCM-SHA384", PZ_EREFUSED, 0, "non-ECDHE"},
        {"DHE-RSA-AES256-GCM-SHA384", PZ_EREFUSED, 0, "non-ECDHE"},
        {"TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", PZ_EREFUSED, 0, "non-ECDHE"},
        {"TLS_ECDH_ECDSA_WITH_AES_256_GCM_SHA384", PZ_EREFUSED, 0, "non-ECDHE"},
        {"TLS_DH_anon_WITH_AES_256_GCM_SHA384", PZ_EREFUSED, 0, "anonymous"},
        {"ADH-AES256-GCM-SHA384", PZ_EREFUSED, 0, "anonymous"},
        {"TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256", PZ_EREFUSED, 0, "PSK"},
        {"TLS_AES_128_CCM_8_SHA256", PZ_EREFUSED, 0, "8-byte"},
        {"ECDHE-ECDSA-AES128-CCM8", PZ_EREFUSED, 0, "8-byte"},
        {"ECDHE-ECDSA-ARIA256-GCM-SHA384", PZ_ENOENT, 0, "not a cipher suite"},
        {"ecdhe-ecdsa-aes256-gcm-sha384", PZ_ENOENT, 0, "case-sensitive"},
        {"", PZ_ENOENT, 0, "not a cipher suite"},
        {"TLS_FANCY", PZ_ENOENT, 0, "not a cipher suite"},
    };
    (void)unused;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const pz_tls_suite *s = NULL;
        const char *why = NULL;
        int rc = pz_tls_suite_lookup(cases[i].name, &s, &why);
        if (rc != cases[i].rc)
            fail_msg("%s: rc %d, expected %d", cases[i].name, rc, cases[i].rc);
        if (rc == 0) {
            assert_non_null(s);
            assert_int_equal(s->id, cases[i].id);
            assert_ptr_equal(pz_tls_suite_by_id(cases[i].id), s);
        } else {
            assert_null(s);
            if (!why || !strstr(why, cases[i].why))
                fail_msg("%s: reason \"%s\" lacks \"%s\"", cases[i].name, why ? why : "(null)", cases[i].why);
        }
    }
    assert_int_equal(pz_tls_suite_lookup(NULL, NULL, NULL), PZ_ENOENT);
    assert_null(pz_tls_suite_by_id(0x002F));
}

/* ------------------------------------------------------------------------ */
/* Priority strings */

static const char default_priority[] =
    "NONE:+VERS-TLS1.3:+VERS-TLS1.2:+ECDHE-ECDSA:+ECDHE-RSA:+AES-256-GCM:+CHACHA20-POLY1305:+AES-128-GCM:"
    "+AEAD:"
    "+SIGN-ECDSA-SECP384R1-SHA384:+SIGN-ECDSA-SECP521R1-SHA512:+SIGN-ECDSA-SECP256R1-SHA256:"
    "+SIGN-ECDSA-SHA384:+SIGN-ECDSA-SHA512:+SIGN-ECDSA-SHA256:"
    "+SIGN-RSA-PSS-RSAE-SHA384:+SIGN-RSA-PSS-RSAE-SHA512:+SIGN-RSA-PSS-RSAE-SHA256:"
    "+SIGN-RSA-PSS-SHA384:+SIGN-RSA-PSS-SHA512:+SIGN-RSA-PSS-SHA256:"
    "+SIGN-RSA-SHA384:+SIGN-RSA-SHA512:+SIGN-RSA-SHA256:"
    "+GROUP-X25519:+GROUP-SECP384R1:+GROUP-SECP521R1:+GROUP-SECP256R1:"
    "+CTYPE-X509:+COMP-NULL:%SERVER_PRECEDENCE";

/* Every suite GnuTLS enables for PRIORITY, as IANA code points. */
static size_t gnutls_suites(const char *priority, uint16_t *ids, size_t max)
{
    gnutls_priority_t p;
    const char *where = NULL;
    int g = gnutls_priority_init(&p, priority, &where);
    if (g < 0)
        fail_msg("GnuTLS refused %s at %s: %s", priority, where ? where : "?", gnutls_strerror(g));
    size_t n = 0;
    for (unsigned idx = 0;; idx++) {
        unsigned sidx;
        g = gnutls_priority_get_cipher_suite_index(p, idx, &sidx);
        if (g == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
            break;
        if (g < 0)
            continue;
        unsigned char id[2];
        if (gnutls_cipher_suite_info(sidx, id, NULL, NULL, NULL, NULL) && n < max)
            ids[n++] = (uint16_t)(id[0] << 8 | id[1]);
    }
    gnutls_priority_deinit(p);
    return n;
}

static int has_id(const uint16_t *ids, size_t n, uint16_t id)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id)
            return 1;
    return 0;
}

static void test_default_priority(void **unused)
{
    pz_tls_profiles p;
    char buf[1024];
    uint16_t ids[64];
    (void)unused;
    pz_tls_profiles_default(&p);
    assert_int_equal(p.n, 1);
    assert_string_equal(p.v[0].name, "default");
    assert_int_equal(p.v[0].min_version, PZ_TLS_V12);
    assert_int_equal(p.v[0].client_auth, PZ_TLS_CLIENT_AUTH_REQUIRED);
    assert_int_equal(pz_tls_priority_string(&p, buf, sizeof(buf)), 0);
    assert_string_equal(buf, default_priority);
    assert_int_equal(pz_tls_profiles_request_mode(&p), PZ_TLS_CLIENT_AUTH_REQUIRED);

    /* GnuTLS enables a superset: exactly the three TLS 1.3 suites and the
     * three TLS 1.2 suites the profile allows, plus three more that the
     * ServerHello check refuses (pz_tls_profiles_have_suite false). */
    size_t n = gnutls_suites(buf, ids, 64);
    static const uint16_t allowed[] = {0x1302, 0x1303, 0x1301, 0xC02C, 0xCCA9, 0xC030};
    static const uint16_t filtered[] = {0xC02B, 0xC02F, 0xCCA8};
    for (size_t i = 0; i < 6; i++) {
        assert_true(has_id(ids, n, allowed[i]));
        assert_true(pz_tls_profiles_have_suite(&p, allowed[i]));
    }
    for (size_t i = 0; i < 3; i++) {
        assert_true(has_id(ids, n, filtered[i]));
        assert_false(pz_tls_profiles_have_suite(&p, filtered[i]));
    }
    assert_int_equal(n, 9);

    /* Too small a buffer. */
    assert_int_equal(pz_tls_priority_string(&p, buf, 40), PZ_ERANGE);
    assert_string_equal(buf, "");
}

/* ------------------------------------------------------------------------ */
/* Configuration */

static int parse(pz_mock *m, const char *yaml, pz_tls_profiles *p)
{
    const pz_conf *conf = NULL;
    assert_int_equal(pz_mock_conf(m, yaml, &conf), 0);
    pz_mock_err_clear(m);
    return pz_tls_profiles_parse(pz_mock_core(m), conf, p, pz_mock_err(m));
}

static void test_parse_profiles(void **unused)
{
    pz_mock *m = pz_mock_new();
    pz_tls_profiles p;
    char buf[1024];
    uint16_t ids[64];
    (void)unused;
    const char *yaml = "profiles:\n"
                       "  default:\n"
                       "    min_version: tls1.2\n"
                       "    cipher_suites: [TLS_AES_256_GCM_SHA384, ECDHE-ECDSA-AES256-GCM-SHA384]\n"
                       "    client_auth: optional\n"
                       "  validator:\n"
                       "    min_version: tls1.3\n"
                       "    client_auth: required\n"
                       "  observer: {}\n";
    assert_int_equal(parse(m, yaml, &p), 0);
    assert_int_equal(p.n, 3);
    const pz_tls_profile *d = pz_tls_profiles_find(&p, NULL);
    const pz_tls_profile *v = pz_tls_profiles_find(&p, "validator");
    const pz_tls_profile *o = pz_tls_profiles_find(&p, "observer");
    assert_string_equal(d->name, "default");
    assert_string_equal(v->name, "validator");
    assert_string_equal(o->name, "observer");
    assert_ptr_equal(pz_tls_profiles_find(&p, "archiver"), d);
    assert_ptr_equal(pz_tls_profiles_find(&p, ""), d);
    assert_int_equal(d->n_suites, 2);
    assert_int_equal(d->client_auth, PZ_TLS_CLIENT_AUTH_OPTIONAL);
    /* validator inherits the default's suites, keeps its own version/auth */
    assert_int_equal(v->n_suites, 2);
    assert_int_equal(v->min_version, PZ_TLS_V13);
    assert_int_equal(v->client_auth, PZ_TLS_CLIENT_AUTH_REQUIRED);
    assert_true(pz_tls_profile_has_suite(v, 0x1302));
    assert_false(pz_tls_profile_has_suite(v, 0xC02C)); /* below its floor */
    assert_true(pz_tls_profile_has_suite(d, 0xC02C));
    assert_int_equal(o->min_version, PZ_TLS_V12);
    assert_int_equal(pz_tls_profiles_request_mode(&p), PZ_TLS_CLIENT_AUTH_OPTIONAL);
    assert_int_equal(pz_mock_check_unused(m, NULL), 0);

    assert_int_equal(pz_tls_priority_string(&p, buf, sizeof(buf)), 0);
    assert_non_null(strstr(buf, "NONE:+VERS-TLS1.3:+VERS-TLS1.2:+ECDHE-ECDSA:+AES-256-GCM:+AEAD:"));
    assert_null(strstr(buf, "ECDHE-RSA"));
    assert_null(strstr(buf, "CHACHA20"));
    size_t n = gnutls_suites(buf, ids, 64);
    assert_int_equal(n, 2); /* exactly TLS_AES_256_GCM_SHA384 and ECDHE-ECDSA-AES256-GCM-SHA384 */
    assert_true(has_id(ids, n, 0x1302) && has_id(ids, n, 0xC02C));

    /* TLS 1.3 only everywhere: no TLS 1.2 version or key exchange. */
    assert_int_equal(parse(m, "profiles: {default: {min_version: tls1.3}}\n", &p), 0);
    assert_int_equal(pz_tls_priority_string(&p, buf, sizeof(buf)), 0);
    assert_non_null(strstr(buf, "NONE:+VERS-TLS1.3:+AES-256-GCM:+CHACHA20-POLY1305:+AES-128-GCM:+AEAD:"));
    assert_null(strstr(buf, "VERS-TLS1.2"));
    assert_null(strstr(buf, "ECDHE-ECDSA"));
    n = gnutls_suites(buf, ids, 64);
    assert_int_equal(n, 3);

    /* No profiles key, or an empty configuration: the default. */
    assert_int_equal(parse(m, "other: 1\n", &p), 0);
    assert_int_equal(p.n, 1);
    assert_int_equal(pz_tls_profiles_parse(pz_mock_core(m), NULL, &p, pz_mock_err(m)), 0);
    assert_int_equal(p.n, 1);

    /* client_auth none everywhere */
    assert_int_equal(parse(m, "profiles: {default: {client_auth: none}}\n", &p), 0);
    assert_int_equal(pz_tls_profiles_request_mode(&p), PZ_TLS_CLIENT_AUTH_NONE);
    pz_mock_free(m);
}

static void test_parse_refusals(void **unused)
{
    static const struct {
        const char *yaml;
        const char *msg; /* exact prefix of the error */
    } cases[] = {
        {"profiles:\n  default:\n    min_version: tls1.1\n",
         "test.yaml:3:18: profiles.default.min_version: \"tls1.1\" is below the TLS 1.2 floor"},
        {"profiles:\n  default:\n    min_version: tls1.0\n", "test.yaml:3:18: profiles.default.min_version: "
                                                              "\"tls1.0\" is below the TLS 1.2 floor"},
        {"profiles:\n  validator:\n    min_version: ssl3\n",
         "test.yaml:3:18: profiles.validator.min_version: \"ssl3\" is below the TLS 1.2 floor"},
        {"profiles:\n  default:\n    min_version: tls9\n",
         "test.yaml:3:18: profiles.default.min_version: \"tls9\" is not a TLS version"},
        {"profiles:\n  default:\n    min_version: [tls1.2]\n", "test.yaml:3:18: profiles.default.min_version: "},
        {"profiles:\n  default:\n    cipher_suites:\n      - TLS_AES_256_GCM_SHA384\n"
         "      - ECDHE-ECDSA-AES256-SHA384\n",
         "test.yaml:5:9: profiles.default.cipher_suites[1]: cipher suite \"ECDHE-ECDSA-AES256-SHA384\" refused: "
         "CBC"},
        {"profiles:\n  default:\n    cipher_suites: [RC4-SHA]\n",
         "test.yaml:3:21: profiles.default.cipher_suites[0]: cipher suite \"RC4-SHA\" refused: RC4"},
        {"profiles:\n  default:\n    cipher_suites: [DES-CBC3-SHA]\n",
         "test.yaml:3:21: profiles.default.cipher_suites[0]: cipher suite \"DES-CBC3-SHA\" refused: 64-bit"},
        {"profiles:\n  default:\n    cipher_suites: [TLS_RSA_WITH_NULL_SHA256]\n",
         "test.yaml:3:21: profiles.default.cipher_suites[0]: cipher suite \"TLS_RSA_WITH_NULL_SHA256\" refused: "
         "NULL"},
        {"profiles:\n  default:\n    cipher_suites: [EXP-RC4-MD5]\n",
         "test.yaml:3:21: profiles.default.cipher_suites[0]: cipher suite \"EXP-RC4-MD5\" refused: export"},
        {"profiles:\n  default:\n    cipher_suites: [AES256-GCM-SHA384]\n",
         "test.yaml:3:21: profiles.default.cipher_suites[0]: cipher suite \"AES256-GCM-SHA384\" refused: "
         "non-ECDHE"},
        {"profiles:\n  default:\n    cipher_suites: [DHE-RSA-AES256-GCM-SHA384]\n",
         "test.yaml:3:21: profiles.default.cipher_suites[0]: cipher suite \"DHE-RSA-AES256-GCM-SHA384\" refused: "
         "non-ECDHE"},
        {"profiles:\n  default:\n    cipher_suites: [TLS_FANCY]\n",
         "test.yaml:3:21: profiles.default.cipher_suites[0]: cipher suite \"TLS_FANCY\": not a cipher suite"},
        {"profiles:\n  default:\n    cipher_suites: [TLS_AES_256_GCM_SHA384, TLS_AES_256_GCM_SHA384]\n",
         "test.yaml:3:45: profiles.default.cipher_suites[1]: cipher suite \"TLS_AES_256_GCM_SHA384\" listed twice"},
        {"profiles:\n  default:\n    cipher_suites: []\n",
         "test.yaml:3:20: profiles.default.cipher_suites: empty cipher suite list"},
        {"profiles:\n  default:\n    cipher_suites: [[TLS_AES_256_GCM_SHA384]]\n",
         "test.yaml:3:21: profiles.default.cipher_suites[0]: expected a cipher suite name"},
        {"profiles:\n  default:\n    cipher_suites: TLS_AES_256_GCM_SHA384\n",
         "test.yaml:3:20: profiles.default.cipher_suites: "},
        {"profiles:\n  default:\n    min_version: tls1.3\n    cipher_suites: [ECDHE-ECDSA-AES256-GCM-SHA384]\n",
         "test.yaml:4:20: profiles.default.cipher_suites: no cipher suite usable with min_version tls1.3"},
        {"profiles:\n  default:\n    client_auth: sometimes\n",
         "test.yaml:3:18: profiles.default.client_auth: \"sometimes\" is not a client_auth mode"},
        {"profiles:\n  Validator: {}\n", "test.yaml:2:14: profiles.Validator: profile name \"Validator\" is not"},
        {"profiles:\n  validator: tls1.3\n", "test.yaml:2:14: profiles.validator: "},
        {"profiles: [default]\n", "test.yaml:1:11: profiles: "},
        {"profiles:\n  default: 12\n", "test.yaml:2:12: profiles.default: "},
    };
    (void)unused;
    pz_mock *m = pz_mock_new();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pz_tls_profiles p;
        int rc = parse(m, cases[i].yaml, &p);
        const char *msg = pz_mock_err_msg(m);
        if (rc != PZ_ECONFIG || strncmp(msg, cases[i].msg, strlen(cases[i].msg)) != 0)
            fail_msg("case %zu: rc %d, message\n  \"%s\"\nexpected prefix\n  \"%s\"", i, rc, msg, cases[i].msg);
    }
    /* Too many suites / profiles. */
    GString *y = g_string_new("profiles:\n  default:\n    cipher_suites: [");
    for (int i = 0; i < 17; i++)
        g_string_append_printf(y, "%sTLS_AES_256_GCM_SHA384", i ? ", " : "");
    g_string_append(y, "]\n");
    pz_tls_profiles p;
    assert_int_equal(parse(m, y->str, &p), PZ_ECONFIG);
    assert_non_null(strstr(pz_mock_err_msg(m), "17 cipher suites listed; at most 16"));
    g_string_assign(y, "profiles:\n");
    for (int i = 0; i < PZ_TLS_MAX_PROFILES + 1; i++)
        g_string_append_printf(y, "  type%d: {}\n", i);
    assert_int_equal(parse(m, y->str, &p), PZ_ECONFIG);
    assert_non_null(strstr(pz_mock_err_msg(m), "too many profiles"));
    g_string_free(y, TRUE);

    /* An unknown key inside a profile is left for the core's check. */
    const pz_conf *conf = NULL;
    assert_int_equal(pz_mock_conf(m, "profiles:\n  default:\n    min_verison: tls1.3\n", &conf), 0);
    assert_int_equal(pz_tls_profiles_parse(pz_mock_core(m), conf, &p, pz_mock_err(m)), 0);
    assert_int_equal(pz_mock_check_unused(m, conf), PZ_ECONFIG);
    assert_non_null(strstr(pz_mock_err_msg(m), "test.yaml:3:5: profiles.default.min_verison: unknown key"));
    pz_mock_free(m);
}

static void test_names(void **unused)
{
    (void)unused;
    assert_string_equal(pz_tls_version_name(PZ_TLS_V12), "tls1.2");
    assert_string_equal(pz_tls_version_name(PZ_TLS_V13), "tls1.3");
    assert_string_equal(pz_tls_version_name(11), "?");
    assert_string_equal(pz_tls_client_auth_name(PZ_TLS_CLIENT_AUTH_REQUIRED), "required");
    assert_string_equal(pz_tls_client_auth_name(PZ_TLS_CLIENT_AUTH_OPTIONAL), "optional");
    assert_string_equal(pz_tls_client_auth_name(PZ_TLS_CLIENT_AUTH_NONE), "none");
}

/* ------------------------------------------------------------------------ */
/* The transport's table on the mock core */

typedef struct fixture {
    pz_mock *m;
    char *dir;
    const pz_transport_provider *t;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    f->m = pz_mock_new();
    GError *gerr = NULL;
    f->dir = g_dir_make_tmp("pz-tls-XXXXXX", &gerr);
    assert_non_null(f->dir);
    int64_t now = (int64_t)time(NULL);
    assert_int_equal(pz_fix_write_set(f->dir, now), 0);
    /* The fixtures are made now; the mock's wall clock starts in 2023. */
    pz_mock_set_realtime(f->m, (uint64_t)now * 1000000000ull);
    const pz_plugin_descriptor *d = pz_plugin_entry_v1();
    assert_int_equal(d->kind, PZ_KIND_TRANSPORT);
    assert_string_equal(d->name, "tls");
    f->t = d->provider;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    pz_test_rm_rf(f->dir);
    g_free(f->dir);
    pz_mock_free(f->m);
    free(f);
    return 0;
}

/* A transport config for certificate NAME plus EXTRA YAML lines. */
static char *conf_for(fixture *f, const char *name, const char *extra)
{
    return g_strdup_printf("cert: %s/%s.crt\nkey: %s/%s.key\nca: %s/ca.crt\ncrl: %s/ca.crl\n%s", f->dir, name,
                           f->dir, name, f->dir, f->dir, extra ? extra : "");
}

static int create(fixture *f, const char *yaml, void **st)
{
    const pz_conf *conf = NULL;
    *st = NULL;
    assert_int_equal(pz_mock_conf(f->m, yaml, &conf), 0);
    pz_mock_err_clear(f->m);
    int rc = f->t->create(pz_mock_core(f->m), conf, st, pz_mock_err(f->m));
    if (rc == 0)
        rc = pz_mock_check_unused(f->m, conf);
    return rc;
}

static void expect_create_error(fixture *f, const char *yaml, int code, const char *msg)
{
    void *st = NULL;
    int rc = create(f, yaml, &st);
    if (rc != code || !strstr(pz_mock_err_msg(f->m), msg))
        fail_msg("rc %d (expected %d), message \"%s\" lacks \"%s\"", rc, code, pz_mock_err_msg(f->m), msg);
    f->t->destroy(st);
}

static void test_create_refusals(void **state)
{
    fixture *f = *state;
    char *y;
    void *st = NULL;
    int rc = f->t->create(pz_mock_core(f->m), NULL, &st, pz_mock_err(f->m));
    assert_int_equal(rc, PZ_ECONFIG);
    assert_non_null(strstr(pz_mock_err_msg(f->m), "needs at least ca (or verify: auth-chain), and cert and key to listen"));

    expect_create_error(f, "cert: /nonexistent.crt\nca: /x\n", PZ_ECONFIG,
                        "test.yaml:1:1: missing key: the tls transport needs cert");
    y = g_strdup_printf("cert: %s/server.crt\nkey: %s/server.key\n", f->dir, f->dir);
    expect_create_error(f, y, PZ_ECONFIG, "missing ca");
    g_free(y);

    y = conf_for(f, "server", "handshake_timeout: 50ms\n");
    expect_create_error(f, y, PZ_ECONFIG, "test.yaml:5:20: handshake_timeout: handshake deadline out of range");
    g_free(y);
    y = conf_for(f, "server", "handshake_timeout: soon\n");
    expect_create_error(f, y, PZ_ECONFIG, "test.yaml:5:20: handshake_timeout: ");
    g_free(y);
    y = conf_for(f, "server", "min_rsa_bits: 1024\n");
    expect_create_error(f, y, PZ_ECONFIG, "test.yaml:5:15: min_rsa_bits: ");
    g_free(y);
    y = conf_for(f, "server", "min_ecdsa_bits: 256\n");
    expect_create_error(f, y, PZ_ECONFIG, "test.yaml:5:17: min_ecdsa_bits: ");
    g_free(y);
    y = conf_for(f, "server", "max_pending_handshakes: 0\n");
    expect_create_error(f, y, PZ_ECONFIG, "test.yaml:5:25: max_pending_handshakes: ");
    g_free(y);
    y = conf_for(f, "server", "ticket_lifetime: 30d\n");
    expect_create_error(f, y, PZ_ECONFIG, "test.yaml:5:18: ticket_lifetime: ticket lifetime out of range");
    g_free(y);
    y = conf_for(f, "server", "profiles: {default: {min_version: tls1.1}}\n");
    expect_create_error(f, y, PZ_ECONFIG, "test.yaml:5:35: profiles.default.min_version: \"tls1.1\" is below");
    g_free(y);
    y = conf_for(f, "server", "session_tickets: maybe\n");
    expect_create_error(f, y, PZ_ECONFIG, "test.yaml:5:18: session_tickets: ");
    g_free(y);
    y = conf_for(f, "server", "cipher_suites: [TLS_AES_256_GCM_SHA384]\n");
    expect_create_error(f, y, PZ_ECONFIG, "test.yaml:5:1: cipher_suites: unknown key");
    g_free(y);

    /* Files. */
    y = g_strdup_printf("cert: %s/server.crt\nkey: %s/nothere.key\nca: %s/ca.crt\n", f->dir, f->dir, f->dir);
    expect_create_error(f, y, PZ_ENOENT, "test.yaml:2:6: key: cannot read key file");
    g_free(y);
    char *key = g_strdup_printf("%s/server.key", f->dir);
    assert_int_equal(chmod(key, 0640), 0);
    y = conf_for(f, "server", NULL);
    expect_create_error(f, y, PZ_EPERM, "is accessible by group or others (mode 0640); run chmod 600");
    assert_int_equal(chmod(key, 0600), 0);
    g_free(key);
    g_free(y);
    y = g_strdup_printf("cert: %s/server.crt\nkey: %s/client.key\nca: %s/ca.crt\n", f->dir, f->dir, f->dir);
    expect_create_error(f, y, PZ_ECRYPTO, "test.yaml:1:7: cert: cannot load certificate");
    g_free(y);
    y = g_strdup_printf("cert: %s/server.crt\nkey: %s/server.key\nca: %s/nothere.crt\n", f->dir, f->dir, f->dir);
    expect_create_error(f, y, PZ_ENOENT, "test.yaml:3:5: ca: ");
    g_free(y);
    y = g_strdup_printf("cert: %s/server.crt\nkey: %s/server.key\nca: %s/foreign-ca.crt\n", f->dir, f->dir,
                        f->dir);
    expect_create_error(f, y, PZ_ECRYPTO, "is refused by the validation policy (untrusted");
    g_free(y);
    y = conf_for(f, "expired", NULL);
    expect_create_error(f, y, PZ_ECRYPTO, "is refused by the validation policy (expired");
    g_free(y);

    /* ca as a list works; a bad element is located. */
    y = g_strdup_printf("cert: %s/server.crt\nkey: %s/server.key\nca: [%s/ca.crt, 12, []]\n", f->dir, f->dir,
                        f->dir);
    expect_create_error(f, y, PZ_ECONFIG, "ca[2]: expected a file path");
    g_free(y);
    y = g_strdup_printf("cert: %s/server.crt\nkey: %s/server.key\nca: [%s/ca.crt]\ncrl: [%s/ca.crl]\n", f->dir,
                        f->dir, f->dir, f->dir);
    assert_int_equal(create(f, y, &st), 0);
    assert_true(pz_mock_log_contains(f->m, "presenting certificate of node server-1 (type validator)"));
    f->t->destroy(st);
    g_free(y);
}

/* Connect a plain TCP socket to LISTENER's port. */
static int tcp_to(const pz_transport_provider *t, void *listener)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    assert_int_equal(getsockname(t->listener_fd(listener), (struct sockaddr *)&ss, &sl), 0);
    int fd = socket(ss.ss_family, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&ss, sl), 0);
    return fd;
}

static void *accept_one(const pz_transport_provider *t, void *listener, pz_err *err, int *rc)
{
    void *conn = NULL;
    pz_addr remote;
    for (int i = 0; i < 200; i++) {
        *rc = t->accept(listener, &conn, &remote, err);
        if (*rc != PZ_EAGAIN)
            break;
        struct pollfd p = {.fd = t->listener_fd(listener), .events = POLLIN};
        poll(&p, 1, 10);
    }
    if (*rc == 0) {
        assert_int_equal(remote.family, PZ_AF_INET);
        assert_memory_equal(remote.bytes, "\x7f\x00\x00\x01", 4);
        assert_true(remote.port > 0);
    }
    return conn;
}

static void test_deadline_and_cap(void **state)
{
    fixture *f = *state;
    void *st = NULL, *l = NULL;
    int rc;
    char *y = conf_for(f, "server", "handshake_timeout: 2s\nmax_pending_handshakes: 1\n");
    assert_int_equal(create(f, y, &st), 0);
    g_free(y);
    pz_err *err = pz_mock_err(f->m);
    assert_int_equal(f->t->listen(st, "127.0.0.1:0", &l, err), 0);
    int a = tcp_to(f->t, l), b = tcp_to(f->t, l);
    void *c1 = accept_one(f->t, l, err, &rc);
    assert_int_equal(rc, 0);
    /* The second is refused by the cap before any crypto. */
    void *c2 = accept_one(f->t, l, err, &rc);
    assert_null(c2);
    assert_int_equal(rc, PZ_EREFUSED);
    assert_non_null(strstr(pz_mock_err_msg(f->m), "1 handshakes already pending"));
    assert_int_equal(pz_mock_metric(f->m, "handshakes_refused_total", "pending-cap"), 1);

    /* The silent client: waiting, then past the deadline on the core's clock. */
    assert_int_equal(f->t->handshake(c1, err), PZ_EAGAIN);
    assert_int_equal(f->t->conn_events(c1), PZ_IO_READ);
    pz_mock_advance(f->m, 1900000000ull);
    assert_int_equal(f->t->handshake(c1, err), PZ_EAGAIN);
    pz_mock_advance(f->m, 200000000ull);
    assert_int_equal(f->t->handshake(c1, err), PZ_ETIMEDOUT);
    assert_true(pz_mock_log_contains(f->m, "failed: reason=timeout: handshake deadline of 2s passed"));
    assert_int_equal(f->t->handshake(c1, err), PZ_ECLOSED);
    size_t n = 0;
    char buf[4];
    assert_int_equal(f->t->read(c1, buf, sizeof(buf), &n, err), PZ_ECLOSED);
    assert_int_equal(f->t->write(c1, "x", 1, &n, err), PZ_ECLOSED);
    pz_auth_credentials cred;
    assert_int_equal(f->t->peer_credentials(c1, &cred), PZ_EINVAL);
    /* The timed-out handshake no longer counts: a new one is accepted. */
    int c = tcp_to(f->t, l);
    void *c3 = accept_one(f->t, l, err, &rc);
    assert_int_equal(rc, 0);
    f->t->close(c1);
    f->t->close(c3);
    close(a);
    close(b);
    close(c);
    f->t->listener_close(l);
    f->t->destroy(st);
}

/* Drive a client and a server connection until both handshakes end. */
static void drive(const pz_transport_provider *t, void *cli, void *srv, pz_err *err, int *crc, int *src)
{
    *crc = *src = PZ_EAGAIN;
    for (int i = 0; i < 2000 && (*crc == PZ_EAGAIN || *src == PZ_EAGAIN); i++) {
        if (*crc == PZ_EAGAIN)
            *crc = t->handshake(cli, err);
        if (*src == PZ_EAGAIN)
            *src = t->handshake(srv, err);
        struct pollfd p[2] = {{.fd = t->conn_fd(cli), .events = POLLIN}, {.fd = t->conn_fd(srv), .events = POLLIN}};
        poll(p, 2, 5);
    }
}

static void roundtrip(const pz_transport_provider *t, void *a, void *b, pz_err *err, const char *msg)
{
    size_t n = 0, got = 0;
    char buf[64];
    assert_int_equal(t->write(a, msg, strlen(msg), &n, err), 0);
    assert_int_equal(n, strlen(msg));
    for (int i = 0; i < 500 && got < strlen(msg); i++) {
        int rc = t->read(b, buf + got, sizeof(buf) - got, &n, err);
        if (rc == 0)
            got += n;
        else {
            assert_int_equal(rc, PZ_EAGAIN);
            struct pollfd p = {.fd = t->conn_fd(b), .events = POLLIN};
            poll(&p, 1, 10);
        }
    }
    assert_int_equal(got, strlen(msg));
    assert_memory_equal(buf, msg, got);
}

static void test_handshake_in_process(void **state)
{
    fixture *f = *state;
    void *sst = NULL, *cst = NULL, *l = NULL, *cli = NULL, *srv = NULL;
    int rc, crc, src;
    pz_err *err = pz_mock_err(f->m);
    char *sy = conf_for(f, "server", NULL), *cy = conf_for(f, "client", NULL);
    assert_int_equal(create(f, sy, &sst), 0);
    assert_int_equal(create(f, cy, &cst), 0);
    assert_int_equal(f->t->listen(sst, "127.0.0.1:0", &l, err), 0);
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    assert_int_equal(getsockname(f->t->listener_fd(l), (struct sockaddr *)&sin, &sl), 0);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(sin.sin_port));

    /* Bad dial arguments. */
    assert_int_equal(f->t->connect(cst, addr, "-bad id", &cli, err), PZ_EINVAL);
    assert_int_equal(f->t->connect(cst, "localhost:1", NULL, &cli, err), PZ_EINVAL);
    assert_int_equal(f->t->connect(cst, "127.0.0.1", NULL, &cli, err), PZ_EINVAL);
    assert_int_equal(f->t->connect(cst, "127.0.0.1:70000", NULL, &cli, err), PZ_EINVAL);
    assert_int_equal(f->t->connect(cst, "[::1:5", NULL, &cli, err), PZ_EINVAL);
    void *l2 = NULL;
    assert_int_equal(f->t->listen(sst, "300.1.1.1:0", &l2, err), PZ_EINVAL);
    assert_null(l2);

    for (int round = 0; round < 2; round++) {
        assert_int_equal(f->t->connect(cst, addr, "server-1", &cli, err), 0);
        srv = accept_one(f->t, l, err, &rc);
        assert_int_equal(rc, 0);
        drive(f->t, cli, srv, err, &crc, &src);
        assert_int_equal(crc, 0);
        assert_int_equal(src, 0);
        pz_auth_credentials sc, cc;
        assert_int_equal(f->t->peer_credentials(srv, &sc), 0);
        assert_int_equal(f->t->peer_credentials(cli, &cc), 0);
        assert_string_equal(sc.transport, "tls");
        assert_int_equal(sc.n_certs, 1);
        assert_int_equal(cc.n_certs, 1);
        assert_null(sc.expected_node_id);
        assert_string_equal(cc.expected_node_id, "server-1");
        assert_int_equal(sc.channel_binding_len, 32);
        assert_memory_equal(sc.channel_binding, cc.channel_binding, 32);
        uint8_t e1[48], e2[48];
        assert_int_equal(f->t->channel_binding(srv, "EXPORTER-test", e1, sizeof(e1), err), 0);
        assert_int_equal(f->t->channel_binding(cli, "EXPORTER-test", e2, sizeof(e2), err), 0);
        assert_memory_equal(e1, e2, sizeof(e1));
        assert_int_equal(f->t->channel_binding(cli, "", e2, sizeof(e2), err), PZ_EINVAL);
        roundtrip(f->t, cli, srv, err, "ping");
        roundtrip(f->t, srv, cli, err, "pong");
        if (round == 1) {
            /* Reload the server: the established session keeps working. */
            const pz_conf *conf = NULL;
            char *ry = conf_for(f, "server", "handshake_timeout: 5s\n");
            assert_int_equal(pz_mock_conf(f->m, ry, &conf), 0);
            assert_int_equal(f->t->reload(sst, conf, err), 0);
            g_free(ry);
            roundtrip(f->t, cli, srv, err, "after reload");
            /* A failing reload keeps the running set. */
            assert_int_equal(pz_mock_conf(f->m, "cert: /nonexistent\nkey: /nonexistent\nca: /x\n", &conf), 0);
            assert_true(f->t->reload(sst, conf, err) != 0);
            roundtrip(f->t, srv, cli, err, "still here");
        }
        f->t->close(cli);
        f->t->close(srv);
    }
    /* The second connection resumed with the first one's ticket. */
    assert_int_equal(pz_mock_metric(f->m, "handshakes_total", "resumed"), 2);
    assert_int_equal(pz_mock_metric(f->m, "handshakes_total", "full"), 2);

    /* Dialling the wrong node: the client refuses. */
    assert_int_equal(f->t->connect(cst, addr, "server-2", &cli, err), 0);
    srv = accept_one(f->t, l, err, &rc);
    assert_int_equal(rc, 0);
    drive(f->t, cli, srv, err, &crc, &src);
    assert_int_equal(crc, PZ_EREFUSED);
    assert_true(pz_mock_log_contains(f->m, "refused: reason=unexpected-node: dialled node server-2 but the server "
                                           "is node server-1"));
    assert_true(src != 0);
    f->t->close(cli);
    f->t->close(srv);

    f->t->listener_close(l);
    f->t->destroy(sst);
    f->t->destroy(cst);
    g_free(sy);
    g_free(cy);
}

/* ------------------------------------------------------------------------ */
/* verify: auth-chain — chains no CA accepts go to the auth chain */

/* A self-signed node certificate for NODE_ID in F->dir/ss-NAME/ (node.crt,
 * node.key), made by core/pki.c as `prozsec cert self-signed` does. */
static char *self_signed(fixture *f, const char *name, const char *node_id)
{
    char *dir = g_strdup_printf("%s/ss-%s", f->dir, name);
    pz_cert_issue_opts o = {.node_id = node_id, .node_type = "validator", .out_dir = dir};
    pz_err err;
    pz_err_init(&err);
    uint8_t spki[32];
    if (pz_cert_self_sign(&o, (uint64_t)time(NULL), spki, NULL, NULL, &err) != 0)
        fail_msg("self-signed %s: %s", name, pz_err_msg(&err));
    pz_err_clear(&err);
    return dir;
}

static void test_verify_settings(void **state)
{
    fixture *f = *state;
    void *st = NULL, *l = NULL;
    char *y;
    pz_err *err = pz_mock_err(f->m);

    y = conf_for(f, "server", "verify: maybe\n");
    expect_create_error(f, y, PZ_ECONFIG, "test.yaml:5:9: verify: expected ca (this transport validates");
    g_free(y);
    expect_create_error(f, "cert: /x.crt\nverify: auth-chain\n", PZ_ECONFIG,
                        "missing key: the tls transport needs cert (this node's certificate) and key");
    expect_create_error(f, "key: /x.key\nverify: auth-chain\n", PZ_ECONFIG, "missing cert:");
    expect_create_error(f, "verify: auth-chain\ncrl: /x.crl\n", PZ_ECONFIG, "test.yaml:2:6: crl: a CRL needs ca");
    y = g_strdup_printf("cert: %s/server.crt\nkey: %s/server.key\n", f->dir, f->dir);
    expect_create_error(f, y, PZ_ECONFIG, "missing ca: the tls transport needs ca (the trusted CA certificates), "
                                          "unless verify: auth-chain");
    g_free(y);

    /* A client without a certificate and without a CA: it only dials. */
    assert_int_equal(create(f, "verify: auth-chain\n", &st), 0);
    assert_true(pz_mock_log_contains(f->m, "no cert and key: this transport only dials"));
    assert_true(pz_mock_log_contains(f->m, "peer chains (no ca) are left to the auth chain"));
    assert_int_equal(f->t->listen(st, "127.0.0.1:0", &l, err), PZ_ECONFIG);
    assert_non_null(strstr(pz_mock_err_msg(f->m), "cannot listen on 127.0.0.1:0 without this node's certificate"));
    assert_null(l);
    f->t->destroy(st);

    /* A self-signed certificate with no CA: its pin is logged. */
    char *ss = self_signed(f, "srv", "server-9");
    y = g_strdup_printf("cert: %s/node.crt\nkey: %s/node.key\nverify: auth-chain\n", ss, ss);
    assert_int_equal(create(f, y, &st), 0);
    assert_true(pz_mock_log_contains(f->m, "presenting certificate of node server-9 (type validator, no CA)"));
    assert_true(pz_mock_log_contains(f->m, "; spki_sha256 sha256//"));
    assert_int_equal(f->t->listen(st, "127.0.0.1:0", &l, err), 0);
    /* While it listens, a reload may not take its certificate away. */
    const pz_conf *conf = NULL;
    assert_int_equal(pz_mock_conf(f->m, "verify: auth-chain\n", &conf), 0);
    assert_int_equal(f->t->reload(st, conf, err), PZ_ECONFIG);
    assert_non_null(strstr(pz_mock_err_msg(f->m), "cert and key are gone from the configuration"));
    f->t->listener_close(l);
    assert_int_equal(f->t->reload(st, conf, err), 0); /* not listening: fine */
    f->t->destroy(st);
    g_free(y);

    /* With a CA that does not accept this node's own certificate: a notice,
     * not an error (peers pin it). */
    y = g_strdup_printf("cert: %s/node.crt\nkey: %s/node.key\nca: %s/ca.crt\nverify: auth-chain\n", ss, ss, f->dir);
    assert_int_equal(create(f, y, &st), 0);
    assert_true(pz_mock_log_contains(f->m, "is not accepted by ca (untrusted"));
    assert_true(pz_mock_log_contains(f->m, "peer chains that ca does not accept are left to the auth chain"));
    f->t->destroy(st);
    g_free(y);
    /* The same with verify: ca is refused, as before. */
    y = g_strdup_printf("cert: %s/node.crt\nkey: %s/node.key\nca: %s/ca.crt\n", ss, ss, f->dir);
    expect_create_error(f, y, PZ_ECRYPTO, "is refused by the validation policy (untrusted");
    g_free(y);
    g_free(ss);
}

/* Listen with server config SY, dial with client config CY expecting
 * node EXPECT; run both handshakes; return their results and the
 * connections (the caller closes them). */
typedef struct pair {
    void *sst, *cst, *l, *cli, *srv;
    int crc, src;
} pair;

static void pair_run(fixture *f, const char *sy, const char *cy, const char *expect, pair *p)
{
    pz_err *err = pz_mock_err(f->m);
    int rc;
    memset(p, 0, sizeof(*p));
    assert_int_equal(create(f, sy, &p->sst), 0);
    assert_int_equal(create(f, cy, &p->cst), 0);
    assert_int_equal(f->t->listen(p->sst, "127.0.0.1:0", &p->l, err), 0);
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    assert_int_equal(getsockname(f->t->listener_fd(p->l), (struct sockaddr *)&sin, &sl), 0);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(sin.sin_port));
    assert_int_equal(f->t->connect(p->cst, addr, expect, &p->cli, err), 0);
    p->srv = accept_one(f->t, p->l, err, &rc);
    assert_int_equal(rc, 0);
    drive(f->t, p->cli, p->srv, err, &p->crc, &p->src);
}

static void pair_free(fixture *f, pair *p)
{
    f->t->close(p->cli);
    f->t->close(p->srv);
    f->t->listener_close(p->l);
    f->t->destroy(p->sst);
    f->t->destroy(p->cst);
}

static void test_handshake_auth_chain(void **state)
{
    fixture *f = *state;
    pz_err *err = pz_mock_err(f->m);
    pair p;
    pz_auth_credentials sc, cc;
    char *srv = self_signed(f, "srv", "server-9"), *cli = self_signed(f, "cli", "client-9");
    char *sy = g_strdup_printf("cert: %s/node.crt\nkey: %s/node.key\nverify: auth-chain\n", srv, srv);
    char *cy = g_strdup_printf("cert: %s/node.crt\nkey: %s/node.key\nverify: auth-chain\n", cli, cli);

    /* Self-signed both ways, no CA: both chains reach the auth chain,
     * flagged; the dialled node id is the auth chain's to check (key-pin
     * maps the key to a node id), so no unexpected-node refusal here. */
    pair_run(f, sy, cy, "someone-else", &p);
    assert_int_equal(p.crc, 0);
    assert_int_equal(p.src, 0);
    assert_int_equal(f->t->peer_credentials(p.srv, &sc), 0);
    assert_int_equal(f->t->peer_credentials(p.cli, &cc), 0);
    assert_int_equal(sc.n_certs, 1);
    assert_int_equal(cc.n_certs, 1);
    assert_true(PZ_AUTH_CRED_HAS(&sc, chain_note));
    assert_int_equal(sc.flags, PZ_AUTH_CRED_UNVERIFIED_CHAIN);
    assert_int_equal(cc.flags, PZ_AUTH_CRED_UNVERIFIED_CHAIN);
    assert_string_equal(sc.chain_note, "not CA-validated (verify: auth-chain): no ca configured");
    assert_string_equal(cc.expected_node_id, "someone-else");
    assert_memory_equal(sc.channel_binding, cc.channel_binding, 32);
    roundtrip(f->t, p.cli, p.srv, err, "pinned");
    assert_true(pz_mock_metric(f->m, "chains_left_to_auth_total", NULL) >= 2);
    pair_free(f, &p);

    /* A client without a certificate, to a server whose profile lets it in:
     * nothing to flag. */
    char *sy2 = g_strdup_printf("%sprofiles:\n  default:\n    client_auth: optional\n", sy);
    pair_run(f, sy2, "verify: auth-chain\n", "server-9", &p);
    assert_int_equal(p.crc, 0);
    assert_int_equal(p.src, 0);
    assert_int_equal(f->t->peer_credentials(p.srv, &sc), 0);
    assert_int_equal(sc.n_certs, 0);
    assert_int_equal(sc.flags, 0);
    assert_null(sc.chain_note);
    pair_free(f, &p);
    /* ... and with client_auth required (the default), refused. */
    pair_run(f, sy, "verify: auth-chain\n", "server-9", &p);
    assert_true(p.src != 0);
    assert_true(pz_mock_log_contains(f->m, "refused: reason=no-certificate"));
    pair_free(f, &p);

    /* With a CA as well: a chain it accepts is validated as with verify:
     * ca (no flag, node id checked); one it refuses goes on flagged. */
    char *my = conf_for(f, "server", "verify: auth-chain\n");
    char *goody = conf_for(f, "client", NULL);
    pair_run(f, my, goody, "server-1", &p);
    assert_int_equal(p.crc, 0);
    assert_int_equal(p.src, 0);
    assert_int_equal(f->t->peer_credentials(p.srv, &sc), 0);
    assert_int_equal(sc.flags, 0);
    assert_null(sc.chain_note);
    pair_free(f, &p);
    char *foreign = g_strdup_printf("cert: %s/foreign.crt\nkey: %s/foreign.key\nverify: auth-chain\n", f->dir, f->dir);
    pair_run(f, my, foreign, "server-1", &p);
    assert_int_equal(p.crc, 0); /* the client trusts the server through ca... no: it has no ca, so flagged too */
    assert_int_equal(p.src, 0);
    assert_int_equal(f->t->peer_credentials(p.srv, &sc), 0);
    assert_int_equal(sc.flags, PZ_AUTH_CRED_UNVERIFIED_CHAIN);
    assert_non_null(strstr(sc.chain_note, "ca does not accept it (untrusted: "));
    assert_int_equal(f->t->peer_credentials(p.cli, &cc), 0);
    assert_int_equal(cc.flags, PZ_AUTH_CRED_UNVERIFIED_CHAIN);
    pair_free(f, &p);
    /* verify: ca, as before: the foreign chain is refused in the handshake. */
    char *plain = conf_for(f, "server", NULL);
    pair_run(f, plain, foreign, "server-1", &p);
    assert_true(p.src != 0);
    pair_free(f, &p);

    g_free(plain);
    g_free(foreign);
    g_free(goody);
    g_free(my);
    g_free(sy2);
    g_free(sy);
    g_free(cy);
    g_free(srv);
    g_free(cli);
}

/* With no CA the handshake is what proves the peer holds the key of the
 * certificate it presents (CertificateVerify, checked by GnuTLS against
 * that certificate whatever the trust): a raw GnuTLS client presenting a
 * pinned certificate with another key must fail, in TLS 1.3 and 1.2. */
static int raw_client_handshake(fixture *f, void *sst, void *l, const char *crt, const char *key, const char *prio,
                                int *server_rc)
{
    pz_err *err = pz_mock_err(f->m);
    gnutls_certificate_credentials_t x = NULL;
    gnutls_session_t s = NULL;
    int rc;
    assert_int_equal(gnutls_certificate_allocate_credentials(&x), 0);
    gnutls_certificate_set_flags(x, GNUTLS_CERTIFICATE_SKIP_KEY_CERT_MATCH);
    assert_int_equal(gnutls_certificate_set_x509_key_file(x, crt, key, GNUTLS_X509_FMT_PEM), 0);
    int fd = tcp_to(f->t, l);
    assert_int_equal(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
    void *srv = accept_one(f->t, l, err, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(gnutls_init(&s, GNUTLS_CLIENT | GNUTLS_NONBLOCK), 0);
    assert_int_equal(gnutls_priority_set_direct(s, prio, NULL), 0);
    assert_int_equal(gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, x), 0);
    gnutls_transport_set_int(s, fd);
    int g = GNUTLS_E_AGAIN;
    *server_rc = PZ_EAGAIN;
    for (int i = 0; i < 2000 && (*server_rc == PZ_EAGAIN || g == GNUTLS_E_AGAIN || g == GNUTLS_E_INTERRUPTED); i++) {
        if (g == GNUTLS_E_AGAIN || g == GNUTLS_E_INTERRUPTED)
            g = gnutls_handshake(s);
        if (*server_rc == PZ_EAGAIN)
            *server_rc = f->t->handshake(srv, err);
        struct pollfd pf[2] = {{.fd = fd, .events = POLLIN}, {.fd = f->t->conn_fd(srv), .events = POLLIN}};
        poll(pf, 2, 5);
    }
    gnutls_deinit(s);
    gnutls_certificate_free_credentials(x);
    close(fd);
    f->t->close(srv);
    return g;
}

static void test_proof_of_possession(void **state)
{
    fixture *f = *state;
    pz_err *err = pz_mock_err(f->m);
    void *sst = NULL, *l = NULL;
    int src;
    char *srv = self_signed(f, "srv", "server-9"), *pin = self_signed(f, "pinned", "client-9"),
         *other = self_signed(f, "other", "client-8");
    char *sy = g_strdup_printf("cert: %s/node.crt\nkey: %s/node.key\nverify: auth-chain\nsession_tickets: false\n",
                               srv, srv);
    char *crt = g_strdup_printf("%s/node.crt", pin), *key = g_strdup_printf("%s/node.key", pin),
         *wrong = g_strdup_printf("%s/node.key", other);
    assert_int_equal(create(f, sy, &sst), 0);
    assert_int_equal(f->t->listen(sst, "127.0.0.1:0", &l, err), 0);
    static const char *const prios[] = {"NORMAL:-VERS-ALL:+VERS-TLS1.3", "NORMAL:-VERS-ALL:+VERS-TLS1.2"};
    for (size_t i = 0; i < G_N_ELEMENTS(prios); i++) {
        /* The holder of the key gets in (the harness works)... */
        int g = raw_client_handshake(f, sst, l, crt, key, prios[i], &src);
        if (g != 0 || src != 0)
            fail_msg("%s, right key: client %s, server %d (%s)", prios[i], gnutls_strerror(g), src,
                     pz_mock_err_msg(f->m));
        /* ... a client presenting the same certificate without its key
         * does not. */
        raw_client_handshake(f, sst, l, crt, wrong, prios[i], &src);
        if (src == 0 || src == PZ_EAGAIN)
            fail_msg("%s, wrong key: the server accepted the handshake (%d)", prios[i], src);
        /* Refused for the signature, not for anything else. */
        if (!strstr(pz_mock_err_msg(f->m), "signature verification has failed"))
            fail_msg("%s, wrong key: refused for another reason: %s", prios[i], pz_mock_err_msg(f->m));
    }
    /* Key floors still apply to a chain no CA checks: a P-256 key (which
     * this transport would not even load as its own) is refused. */
    char *p256 = g_strdup_printf("%s/p256.crt", f->dir), *p256k = g_strdup_printf("%s/p256.key", f->dir);
    raw_client_handshake(f, sst, l, p256, p256k, prios[0], &src);
    assert_int_equal(src, PZ_EREFUSED);
    assert_true(pz_mock_log_contains(f->m, "refused: reason=weak-key: client certificate: ECDSA key on a 256-bit "
                                           "curve, policy minimum 384"));
    g_free(p256);
    g_free(p256k);
    f->t->listener_close(l);
    f->t->destroy(sst);
    g_free(sy);
    g_free(crt);
    g_free(key);
    g_free(wrong);
    g_free(srv);
    g_free(pin);
    g_free(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_suite_lookup),
        cmocka_unit_test(test_default_priority),
        cmocka_unit_test(test_parse_profiles),
        cmocka_unit_test(test_parse_refusals),
        cmocka_unit_test(test_names),
        cmocka_unit_test_setup_teardown(test_create_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadline_and_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handshake_in_process, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_settings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handshake_auth_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_proof_of_possession, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
