/* tests/unit/test_psk_token.c — the psk-token provider through the mock
 * core: the token format checked against an independent HMAC (GLib's), a
 * token replayed on a second connection refused, unknown nodes, malformed
 * tokens, key files (mode 0600 or refused naming the path), key_dir,
 * secure memory given back, generate_credentials, reload, and every
 * configuration refusal. */
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

#include "crypto.h"
#include "psk-token.h"
#include "../testutil.h"

static const pz_auth_provider *table;
static char *tmpdir;
static const pz_addr addr = {.family = PZ_AF_INET, .bytes = {198, 51, 100, 9}, .port = 40000};

/* Two connections' TLS exporter channel bindings. */
static uint8_t cb1[32], cb2[32];

#define KEY_LIGHT1 "6c696768742d312d6b65792d6c696768742d312d6b65792d6c696768742d3131" /* hex, 32 bytes */
#define KEY_LIGHT2 "bGlnaHQtMi1rZXktbGlnaHQtMi1rZXktbGlnaHQtMjI=" /* base64, 32 bytes */
#define KEY_SELF "c2VsZi1rZXktc2VsZi1rZXktc2VsZi1rZXktc2VsZjE"    /* base64 without padding */

static char *path_of(const char *name)
{
    return g_build_filename(tmpdir, name, NULL);
}

static void write_key(const char *name, const char *text, int mode)
{
    char *p = path_of(name);
    assert_true(g_file_set_contents(p, text, -1, NULL));
    assert_int_equal(g_chmod(p, mode), 0);
    g_free(p);
}

static int setup(void **state)
{
    (void)state;
    /* As the daemon does: libgcrypt with secure memory. */
    if (pz_crypto_init() != 0)
        return -1;
    const pz_plugin_descriptor *d = pz_plugin_entry_v1();
    if (strcmp(d->name, "psk-token") || d->kind != PZ_KIND_AUTH)
        return -1;
    table = d->provider;
    pz_mock *m = pz_mock_new();
    int rc = d->init ? d->init(pz_mock_core(m), pz_mock_err(m)) : 0;
    pz_mock_free(m);
    if (rc)
        return -1;
    tmpdir = g_dir_make_tmp("pz-psk-XXXXXX", NULL);
    if (!tmpdir)
        return -1;
    for (int i = 0; i < 32; i++) {
        cb1[i] = (uint8_t)i;
        cb2[i] = (uint8_t)(i + 1);
    }
    write_key("light-1.key", KEY_LIGHT1 "\n", 0600);
    write_key("light-2.key", "  " KEY_LIGHT2 "  \n", 0400);
    write_key("self.key", KEY_SELF, 0600);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    pz_test_rm_rf(tmpdir);
    g_free(tmpdir);
    return 0;
}

/* The configuration used by most tests, with paths in TMPDIR. */
static char *std_conf(void)
{
    return g_strdup_printf("keys:\n"
                           "  - node_id: light-1\n"
                           "    key_file: %s/light-1.key\n"
                           "    node_type: light\n"
                           "    roles: [reader, wallet]\n"
                           "  - {node_id: light-2, key_file: %s/light-2.key}\n"
                           "self:\n"
                           "  node_id: node-a\n"
                           "  key_file: %s/self.key\n",
                           tmpdir, tmpdir, tmpdir);
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

/* The token for ID under KEY (raw bytes) over CB, computed with GLib's
 * HMAC from the documented format: an independent implementation. */
static size_t ref_token(const uint8_t *key, size_t key_len, const uint8_t *cb, size_t cb_len, const char *id,
                        uint8_t *out)
{
    GHmac *h = g_hmac_new(G_CHECKSUM_SHA256, key, key_len);
    uint8_t l;
    g_hmac_update(h, (const guchar *)"prozsec psk-token v1", 21); /* with its 0 byte */
    l = (uint8_t)cb_len;
    g_hmac_update(h, &l, 1);
    g_hmac_update(h, cb, cb_len);
    l = (uint8_t)strlen(id);
    g_hmac_update(h, &l, 1);
    g_hmac_update(h, (const guchar *)id, strlen(id));
    size_t n = strlen(id);
    out[0] = 1;
    out[1] = (uint8_t)n;
    memcpy(out + 2, id, n);
    gsize dlen = 32;
    g_hmac_get_digest(h, out + 2 + n, &dlen);
    g_hmac_unref(h);
    return 2 + n + 32;
}

static pz_auth_result run(void *st, const uint8_t *token, size_t token_len, const uint8_t *cb, size_t cb_len)
{
    pz_auth_credentials c = {.struct_size = sizeof(c), .transport = "tls", .addr = &addr, .token = token,
                             .token_len = token_len, .channel_binding = cb, .channel_binding_len = cb_len};
    pz_auth_result r;
    memset(&r, 0, sizeof(r));
    r.struct_size = sizeof(r);
    assert_int_equal(table->authenticate_peer(st, &c, &r, NULL), 0);
    return r;
}

static void test_allow_and_replay(void **state)
{
    (void)state;
    pz_mock *m = pz_mock_new();
    char *yaml = std_conf();
    void *st = make(m, yaml);
    uint8_t key1[32];
    for (int i = 0; i < 32; i++)
        key1[i] = (uint8_t)g_ascii_xdigit_value(KEY_LIGHT1[2 * i]) << 4 | (uint8_t)g_ascii_xdigit_value(KEY_LIGHT1[2 * i + 1]);
    uint8_t tok[PSK_TOKEN_MAX_LEN];
    size_t n = ref_token(key1, 32, cb1, 32, "light-1", tok);

    pz_auth_result r = run(st, tok, n, cb1, 32);
    assert_int_equal(r.verdict, PZ_AUTH_ALLOW);
    assert_string_equal(r.node_id, "light-1");
    assert_string_equal(r.node_type, "light");
    assert_int_equal(r.n_roles, 2);
    assert_string_equal(r.roles[1], "wallet");

    /* The same token on a second connection (another channel binding). */
    r = run(st, tok, n, cb2, 32);
    assert_int_equal(r.verdict, PZ_AUTH_DENY);
    assert_int_equal(r.reason_code, PSK_TOKEN_DENY_BAD_MAC);
    assert_non_null(strstr(r.reason, "made for another connection"));
    /* A flipped bit anywhere in the MAC. */
    for (size_t i = n - 32; i < n; i++) {
        tok[i] ^= 0x40;
        assert_int_equal(run(st, tok, n, cb1, 32).reason_code, PSK_TOKEN_DENY_BAD_MAC);
        tok[i] ^= 0x40;
    }
    /* light-2's name with light-1's key: wrong key. */
    n = ref_token(key1, 32, cb1, 32, "light-2", tok);
    r = run(st, tok, n, cb1, 32);
    assert_int_equal(r.verdict, PZ_AUTH_DENY);
    assert_int_equal(r.reason_code, PSK_TOKEN_DENY_BAD_MAC);
    /* light-2 with its own (base64) key. */
    gsize k2len = 0;
    guchar *key2 = g_base64_decode(KEY_LIGHT2, &k2len);
    n = ref_token(key2, k2len, cb2, 32, "light-2", tok);
    r = run(st, tok, n, cb2, 32);
    assert_int_equal(r.verdict, PZ_AUTH_ALLOW);
    assert_string_equal(r.node_type, "");
    assert_int_equal(r.n_roles, 0);
    g_free(key2);
    /* A node without a key here. */
    n = ref_token(key1, 32, cb1, 32, "stranger", tok);
    r = run(st, tok, n, cb1, 32);
    assert_int_equal(r.verdict, PZ_AUTH_DENY);
    assert_int_equal(r.reason_code, PSK_TOKEN_DENY_UNKNOWN_NODE);
    assert_string_equal(r.reason, "node stranger has no pre-shared key here");
    /* No channel binding (not TLS), or one of a silly length. */
    n = ref_token(key1, 32, cb1, 32, "light-1", tok);
    assert_int_equal(run(st, tok, n, NULL, 0).reason_code, PSK_TOKEN_DENY_NO_BINDING);
    assert_int_equal(run(st, tok, n, cb1, 8).reason_code, PSK_TOKEN_DENY_NO_BINDING);
    /* No token: no opinion. */
    assert_int_equal(run(st, NULL, 0, cb1, 32).verdict, PZ_AUTH_ABSTAIN);
    assert_int_equal(run(st, tok, 0, cb1, 32).verdict, PZ_AUTH_ABSTAIN);
    assert_int_equal(pz_mock_metric(m, "denials_total", "bad_mac"), 34);
    assert_int_equal(pz_mock_metric(m, "denials_total", "unknown_node"), 1);
    assert_int_equal(pz_mock_metric(m, "denials_total", "no_binding"), 2);
    /* Nothing secret in the log. */
    assert_false(pz_mock_log_contains(m, KEY_LIGHT1));

    const char *const *methods = table->supported_methods(st);
    assert_string_equal(methods[0], "psk");
    assert_null(methods[1]);
    table->destroy(st);
    assert_int_equal(pz_mock_secure_in_use(m), 0);
    pz_mock_free(m);
    g_free(yaml);
}

static void test_malformed(void **state)
{
    (void)state;
    pz_mock *m = pz_mock_new();
    char *yaml = std_conf();
    void *st = make(m, yaml);
    uint8_t key1[32] = {0};
    uint8_t tok[PSK_TOKEN_MAX_LEN + 8];
    size_t n = ref_token(key1, 32, cb1, 32, "light-1", tok);
    uint8_t bad[sizeof(tok)];

    struct {
        size_t at;
        uint8_t value;
        long len_delta;
    } cases[] = {
        {0, 2, 0},     /* version 2 */
        {0, 0, 0},     /* version 0 */
        {1, 8, 0},     /* id length larger than the token says */
        {1, 6, 0},     /* smaller */
        {1, 0, 0},     /* empty id */
        {2, ' ', 0},   /* a space in the id */
        {2, '/', 0},   /* a slash in the id */
        {0, 1, -1},    /* one byte short */
        {0, 1, +1},    /* one byte long */
        {0, 1, -(long)n + 1}, /* one byte */
        {0, 1, -(long)n + 34}, /* shorter than any token */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memcpy(bad, tok, n);
        bad[cases[i].at] = cases[i].value;
        size_t len = (size_t)((long)n + cases[i].len_delta);
        pz_auth_result r = run(st, bad, len, cb1, 32);
        if (r.verdict != PZ_AUTH_DENY || r.reason_code != PSK_TOKEN_DENY_MALFORMED)
            fail_msg("case %zu: verdict %d code %d (%s)", i, r.verdict, r.reason_code, r.reason);
    }
    /* A 64-byte id is the longest. */
    char id64[65];
    memset(id64, 'x', 64);
    id64[64] = '\0';
    n = ref_token(key1, 32, cb1, 32, id64, tok);
    assert_int_equal(run(st, tok, n, cb1, 32).reason_code, PSK_TOKEN_DENY_UNKNOWN_NODE);
    table->destroy(st);
    pz_mock_free(m);
    g_free(yaml);
}

static void test_generate(void **state)
{
    (void)state;
    pz_mock *m = pz_mock_new();
    char *yaml = std_conf();
    void *st = make(m, yaml);
    uint8_t buf[PSK_TOKEN_MAX_LEN];
    size_t len = 3;
    /* Too small: the size needed. */
    assert_int_equal(table->generate_credentials(st, cb1, 32, buf, &len, pz_mock_err(m)), PZ_ERANGE);
    assert_int_equal(len, 2 + 6 + 32);
    len = 0;
    assert_int_equal(table->generate_credentials(st, cb1, 32, NULL, &len, pz_mock_err(m)), PZ_ERANGE);
    len = sizeof(buf);
    assert_int_equal(table->generate_credentials(st, cb1, 32, buf, &len, pz_mock_err(m)), 0);
    assert_int_equal(len, 40);
    gsize klen = 0;
    char *padded = g_strconcat(KEY_SELF, "=", NULL);
    guchar *key = g_base64_decode(padded, &klen);
    uint8_t want[PSK_TOKEN_MAX_LEN];
    size_t wn = ref_token(key, klen, cb1, 32, "node-a", want);
    assert_int_equal(wn, len);
    assert_memory_equal(buf, want, len);
    /* A token is for one connection: another binding, another token. */
    uint8_t buf2[PSK_TOKEN_MAX_LEN];
    size_t len2 = sizeof(buf2);
    assert_int_equal(table->generate_credentials(st, cb2, 32, buf2, &len2, pz_mock_err(m)), 0);
    assert_memory_not_equal(buf + 8, buf2 + 8, 32);
    /* No binding. */
    len = sizeof(buf);
    assert_int_equal(table->generate_credentials(st, NULL, 0, buf, &len, pz_mock_err(m)), PZ_EINVAL);
    assert_non_null(strstr(pz_mock_err_msg(m), "channel binding"));
    assert_int_equal(table->generate_credentials(st, cb1, 32, buf, NULL, pz_mock_err(m)), PZ_EINVAL);
    table->destroy(st);
    g_free(key);
    g_free(padded);

    /* Without self: nothing to present. */
    char *noself = g_strdup_printf("keys: [{node_id: light-1, key_file: %s/light-1.key}]\n", tmpdir);
    st = make(m, noself);
    len = sizeof(buf);
    assert_int_equal(table->generate_credentials(st, cb1, 32, buf, &len, pz_mock_err(m)), PZ_ENOTSUP);
    table->destroy(st);
    /* Self only: a light client that authenticates to others, accepts nobody. */
    char *selfonly = g_strdup_printf("self: {node_id: node-a, key_file: %s/self.key}\n", tmpdir);
    st = make(m, selfonly);
    len = sizeof(buf);
    assert_int_equal(table->generate_credentials(st, cb1, 32, buf, &len, pz_mock_err(m)), 0);
    /* Its own token is not accepted by itself: it knows no peer keys. */
    assert_int_equal(run(st, buf, len, cb1, 32).reason_code, PSK_TOKEN_DENY_UNKNOWN_NODE);
    table->destroy(st);
    assert_int_equal(pz_mock_secure_in_use(m), 0);
    pz_mock_free(m);
    g_free(noself);
    g_free(selfonly);
    g_free(yaml);
}

static void test_key_dir(void **state)
{
    (void)state;
    char *kd = path_of("keys.d");
    assert_int_equal(g_mkdir(kd, 0700), 0);
    char *p1 = g_build_filename(kd, "dir-node.key", NULL);
    char *p2 = g_build_filename(kd, "README", NULL);
    char *p3 = g_build_filename(kd, "bad name.key", NULL);
    assert_true(g_file_set_contents(p1, KEY_LIGHT1, -1, NULL));
    assert_int_equal(g_chmod(p1, 0600), 0);
    assert_true(g_file_set_contents(p2, "not a key", -1, NULL));
    assert_true(g_file_set_contents(p3, "not a key", -1, NULL));
    pz_mock *m = pz_mock_new();
    char *yaml = g_strdup_printf("key_dir: %s\n", kd);
    void *st = make(m, yaml);
    uint8_t key1[32];
    for (int i = 0; i < 32; i++)
        key1[i] = (uint8_t)g_ascii_xdigit_value(KEY_LIGHT1[2 * i]) << 4 | (uint8_t)g_ascii_xdigit_value(KEY_LIGHT1[2 * i + 1]);
    uint8_t tok[PSK_TOKEN_MAX_LEN];
    size_t n = ref_token(key1, 32, cb1, 32, "dir-node", tok);
    assert_int_equal(run(st, tok, n, cb1, 32).verdict, PZ_AUTH_ALLOW);
    table->destroy(st);
    g_free(yaml);

    /* A node in both keys and key_dir. */
    yaml = g_strdup_printf("key_dir: %s\nkeys: [{node_id: dir-node, key_file: %s/light-1.key}]\n", kd, tmpdir);
    const pz_conf *conf;
    assert_int_equal(pz_mock_conf(m, yaml, &conf), 0);
    st = NULL;
    assert_int_equal(table->create(pz_mock_core(m), conf, &st, pz_mock_err(m)), PZ_ECONFIG);
    assert_non_null(strstr(pz_mock_err_msg(m), "node dir-node has two keys"));
    g_free(yaml);
    /* A key in key_dir readable by others. */
    assert_int_equal(g_chmod(p1, 0644), 0);
    yaml = g_strdup_printf("key_dir: %s\n", kd);
    assert_int_equal(pz_mock_conf(m, yaml, &conf), 0);
    assert_int_equal(table->create(pz_mock_core(m), conf, &st, pz_mock_err(m)), PZ_EPERM);
    assert_non_null(strstr(pz_mock_err_msg(m), p1));
    g_free(yaml);
    /* A key_dir that is not there. */
    yaml = g_strdup_printf("key_dir: %s/nope\n", kd);
    assert_int_equal(pz_mock_conf(m, yaml, &conf), 0);
    assert_int_equal(table->create(pz_mock_core(m), conf, &st, pz_mock_err(m)), PZ_EIO);
    assert_non_null(strstr(pz_mock_err_msg(m), "key_dir"));
    g_free(yaml);
    assert_int_equal(pz_mock_secure_in_use(m), 0);
    pz_mock_free(m);
    g_unlink(p1);
    g_unlink(p2);
    g_unlink(p3);
    g_rmdir(kd);
    g_free(p1);
    g_free(p2);
    g_free(p3);
    g_free(kd);
}

static void test_key_files(void **state)
{
    (void)state;
    write_key("open.key", KEY_LIGHT1, 0644);
    write_key("group.key", KEY_LIGHT1, 0640);
    write_key("short.key", "c2hvcnQ=", 0600);
    write_key("junk.key", "this is not a key at all!", 0600);
    write_key("empty.key", "", 0600);
    GString *big = g_string_new(NULL);
    for (int i = 0; i < 1100; i++)
        g_string_append_c(big, 'A');
    write_key("big.key", big->str, 0600);
    g_string_free(big, TRUE);
    GString *long_key = g_string_new(NULL);
    for (int i = 0; i < 129; i++)
        g_string_append(long_key, "ab");
    write_key("long.key", long_key->str, 0600);
    g_string_free(long_key, TRUE);

    struct {
        const char *file;
        int rc;
        const char *msg;
    } cases[] = {
        {"open.key", PZ_EPERM, "open.key: key file has mode 0644, readable or writable by others; it must be 0600"},
        {"group.key", PZ_EPERM, "group.key: key file has mode 0640"},
        {"short.key", PZ_EINVAL, "short.key: key of 5 bytes; expected 32 to 128"},
        {"junk.key", PZ_EINVAL, "junk.key: expected the key in hex or base64 on one line"},
        {"empty.key", PZ_EINVAL, "empty.key: key of 0 bytes"},
        {"big.key", PZ_EINVAL, "big.key: key file larger than 1024 bytes"},
        {"long.key", PZ_EINVAL, "long.key: key of 129 bytes; expected 32 to 128"},
        {"missing.key", PZ_ENOENT, "missing.key: cannot open key file"},
        {".", PZ_EIO, "not a regular file"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pz_mock *m = pz_mock_new();
        char *yaml = g_strdup_printf("keys: [{node_id: n1, key_file: %s/%s}]\n", tmpdir, cases[i].file);
        const pz_conf *conf;
        void *st = NULL;
        assert_int_equal(pz_mock_conf(m, yaml, &conf), 0);
        int rc = table->create(pz_mock_core(m), conf, &st, pz_mock_err(m));
        if (rc != cases[i].rc || !strstr(pz_mock_err_msg(m), cases[i].msg))
            fail_msg("case %s: rc %d \"%s\"", cases[i].file, rc, pz_mock_err_msg(m));
        assert_null(st);
        assert_int_equal(pz_mock_secure_in_use(m), 0);
        pz_mock_free(m);
        g_free(yaml);
    }
    /* The self key is checked the same way. */
    pz_mock *m = pz_mock_new();
    char *yaml = g_strdup_printf("self: {node_id: me, key_file: %s/open.key}\n", tmpdir);
    const pz_conf *conf;
    void *st = NULL;
    assert_int_equal(pz_mock_conf(m, yaml, &conf), 0);
    assert_int_equal(table->create(pz_mock_core(m), conf, &st, pz_mock_err(m)), PZ_EPERM);
    pz_mock_free(m);
    g_free(yaml);
}

static void test_bad_config(void **state)
{
    (void)state;
    struct {
        const char *yaml;
        const char *msg;
    } cases[] = {
        {"{}\n", "no keys: set keys, key_dir or self"},
        {"keys: []\n", "no keys"},
        {"keys: [light-1]\n", "test.yaml:1:8: keys[0]: expected {node_id, key_file}, found a scalar"},
        {"keys: [{key_file: /x}]\n", "keys[0]: node_id: expected a node id"},
        {"keys: [{node_id: \"a b\", key_file: /x}]\n", "node_id: expected a node id"},
        {"keys: [{node_id: a}]\n", "key_file: expected the path of the key file (mode 0600)"},
        {"keys: [{node_id: a, key_file: \"\"}]\n", "key_file: expected the path"},
        {"keys: [{node_id: a, key_file: /x, node_type: \"x y\"}]\n", "node_type: expected a node type"},
        {"keys: [{node_id: a, key_file: /x, roles: [\"a b\"]}]\n", "expected a role"},
        {"keys: [{node_id: a, key_file: /x, roles: [a, b, c, d, e, f, g, h, i]}]\n", "too many roles: at most 8"},
        {"keys: {a: 1}\n", "keys: expected a list"},
        {"self: [a]\n", "self: expected a map"},
        {"key_dir: [a]\n", "key_dir: expected a string"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pz_mock *m = pz_mock_new();
        const pz_conf *conf;
        void *st = NULL;
        assert_int_equal(pz_mock_conf(m, cases[i].yaml, &conf), 0);
        int rc = table->create(pz_mock_core(m), conf, &st, pz_mock_err(m));
        if (rc == 0) {
            /* Only the unknown-key check (the core's) may catch it. */
            rc = pz_mock_check_unused(m, conf);
            table->destroy(st);
            st = NULL;
        }
        if (rc != PZ_ECONFIG || !strstr(pz_mock_err_msg(m), cases[i].msg))
            fail_msg("case %zu: rc %d \"%s\", expected \"%s\"", i, rc, pz_mock_err_msg(m), cases[i].msg);
        assert_null(st);
        pz_mock_free(m);
    }
    pz_mock *m = pz_mock_new();
    void *st = NULL;
    assert_int_equal(table->create(pz_mock_core(m), NULL, &st, pz_mock_err(m)), PZ_ECONFIG);
    /* self takes no roles: the core's unknown-key check says so. */
    char *selfroles = g_strdup_printf("self: {node_id: a, key_file: %s/self.key, roles: [r]}\n", tmpdir);
    const pz_conf *sconf;
    assert_int_equal(pz_mock_conf(m, selfroles, &sconf), 0);
    assert_int_equal(table->create(pz_mock_core(m), sconf, &st, pz_mock_err(m)), 0);
    assert_int_equal(pz_mock_check_unused(m, sconf), PZ_ECONFIG);
    assert_non_null(strstr(pz_mock_err_msg(m), "self.roles: unknown key"));
    table->destroy(st);
    st = NULL;
    g_free(selfroles);
    /* Out of secure memory, out of randomness. */
    char *yaml = std_conf();
    const pz_conf *conf;
    assert_int_equal(pz_mock_conf(m, yaml, &conf), 0);
    pz_mock_set_secure_fail(m, 1);
    assert_int_equal(table->create(pz_mock_core(m), conf, &st, pz_mock_err(m)), PZ_ENOMEM);
    pz_mock_set_secure_fail(m, 0);
    pz_mock_set_random_fail(m, 1);
    assert_int_equal(table->create(pz_mock_core(m), conf, &st, pz_mock_err(m)), PZ_ENOMEM);
    pz_mock_set_random_fail(m, 0);
    assert_int_equal(pz_mock_secure_in_use(m), 0);
    pz_mock_free(m);
    g_free(yaml);
}

static void test_reload(void **state)
{
    (void)state;
    pz_mock *m = pz_mock_new();
    char *yaml = std_conf();
    void *st = make(m, yaml);
    uint8_t key1[32];
    for (int i = 0; i < 32; i++)
        key1[i] = (uint8_t)g_ascii_xdigit_value(KEY_LIGHT1[2 * i]) << 4 | (uint8_t)g_ascii_xdigit_value(KEY_LIGHT1[2 * i + 1]);
    uint8_t tok[PSK_TOKEN_MAX_LEN];
    size_t n = ref_token(key1, 32, cb1, 32, "light-1", tok);
    /* light-1's key rotates to light-2's file. */
    char *rotated = g_strdup_printf("keys: [{node_id: light-1, key_file: %s/light-2.key}]\n", tmpdir);
    const pz_conf *conf;
    assert_int_equal(pz_mock_conf(m, rotated, &conf), 0);
    assert_int_equal(table->reload(st, conf, pz_mock_err(m)), 0);
    assert_int_equal(run(st, tok, n, cb1, 32).reason_code, PSK_TOKEN_DENY_BAD_MAC);
    /* A bad reload keeps the keys in use. */
    assert_int_equal(pz_mock_conf(m, "keys: []\n", &conf), 0);
    assert_int_equal(table->reload(st, conf, pz_mock_err(m)), PZ_ECONFIG);
    assert_int_equal(run(st, tok, n, cb1, 32).reason_code, PSK_TOKEN_DENY_BAD_MAC);
    assert_int_equal(pz_mock_conf(m, yaml, &conf), 0);
    assert_int_equal(table->reload(st, conf, pz_mock_err(m)), 0);
    assert_int_equal(run(st, tok, n, cb1, 32).verdict, PZ_AUTH_ALLOW);
    pz_auth_result r;
    memset(&r, 0, sizeof(r));
    assert_int_equal(table->authenticate_peer(st, NULL, &r, pz_mock_err(m)), PZ_EINVAL);
    table->destroy(st);
    table->destroy(NULL);
    assert_int_equal(pz_mock_secure_in_use(m), 0);
    pz_mock_free(m);
    g_free(rotated);
    g_free(yaml);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allow_and_replay), cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_generate),         cmocka_unit_test(test_key_dir),
        cmocka_unit_test(test_key_files),        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_reload),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
