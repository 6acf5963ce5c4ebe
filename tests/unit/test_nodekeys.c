/* tests/unit/test_nodekeys.c — key files, key records, rotation and the
 * peer directory (core/nodekeys.c). Each test works in a fresh temporary
 * directory and removes it. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "err.h"
#include "nodekeys.h"
#include "../testutil.h"

static int setup(void **state)
{
    GError *gerr = NULL;
    char *dir = g_dir_make_tmp("pz-nodekeys-XXXXXX", &gerr);
    if (!dir)
        return -1;
    *state = dir;
    return pz_crypto_init();
}

static int teardown(void **state)
{
    pz_test_rm_rf(*state);
    g_free(*state);
    return 0;
}

static mode_t file_mode(const char *dir, const char *name)
{
    struct stat st;
    g_autofree char *p = g_build_filename(dir, name, NULL);
    if (stat(p, &st))
        return (mode_t)-1;
    return st.st_mode & 07777;
}

static char *slurp(const char *dir, const char *name)
{
    char *text = NULL;
    g_autofree char *p = g_build_filename(dir, name, NULL);
    if (!g_file_get_contents(p, &text, NULL, NULL))
        return NULL;
    return text;
}

static void spit(const char *dir, const char *name, const char *text, mode_t mode)
{
    g_autofree char *p = g_build_filename(dir, name, NULL);
    assert_true(g_file_set_contents(p, text, -1, NULL));
    assert_int_equal(chmod(p, mode), 0);
}

static size_t count_suffix(const char *dir, const char *suffix)
{
    size_t n = 0;
    GDir *d = g_dir_open(dir, 0, NULL);
    const char *name;
    if (!d)
        return 0;
    while ((name = g_dir_read_name(d)))
        n += g_str_has_suffix(name, suffix);
    g_dir_close(d);
    return n;
}

/* --- generation and loading --------------------------------------------- */

static void test_generate_and_load(void **state)
{
    const char *dir = *state;
    uint8_t sign_pub[32], e2e_pub[32], again[32];
    pz_nodekeys *nk = NULL;
    pz_err err;

    pz_err_init(&err);
    assert_int_equal(pz_nodekeys_generate(dir, 0, sign_pub, e2e_pub, &err), 0);
    assert_int_equal(file_mode(dir, "sign.key"), 0600);
    assert_int_equal(file_mode(dir, "e2e.key"), 0600);
    assert_int_equal(file_mode(dir, "sign.pub"), 0644);
    assert_int_equal(file_mode(dir, "e2e.pub"), 0644);
    g_autofree char *text = slurp(dir, "sign.key");
    assert_non_null(strstr(text, "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI"));
    g_autofree char *pub = slurp(dir, "e2e.pub");
    assert_non_null(strstr(pub, "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VuAyEA"));
    /* No temporary files left behind. */
    assert_int_equal(count_suffix(dir, "XXXXXX"), 0);

    assert_int_equal(pz_nodekeys_load(dir, &nk, &err), 0);
    assert_memory_equal(pz_nodekeys_sign_pub(nk), sign_pub, 32);
    const pz_recv_key *lt = pz_nodekeys_long_term(nk);
    assert_memory_equal(lt->pub, e2e_pub, 32);
    assert_true(lt->long_term);
    assert_non_null(lt->sk);
    uint8_t id[PZ_KEY_ID_LEN];
    pz_e2e_key_id(e2e_pub, id);
    assert_memory_equal(lt->key_id, id, PZ_KEY_ID_LEN);
    assert_int_equal(pz_nodekeys_count(nk), 1);
    assert_ptr_equal(pz_nodekeys_at(nk, 0), lt);
    assert_null(pz_nodekeys_at(nk, 1));
    assert_ptr_equal(pz_nodekeys_current(nk, 12345), lt);
    assert_int_equal(pz_nodekeys_ignored(nk), 0);
    /* The signing key signs what sign_pub verifies. */
    uint8_t sig[64];
    pz_verify_key *vk = NULL;
    assert_int_equal(pz_sign(pz_nodekeys_sign_key(nk), "x", 1, sig), 0);
    assert_int_equal(pz_verify_key_new(sign_pub, &vk), 0);
    assert_int_equal(pz_verify(vk, "x", 1, sig, 64), 0);
    pz_verify_key_free(vk);
    pz_nodekeys_free(nk);
    pz_nodekeys_free(NULL);

    /* Refuses to overwrite; FORCE replaces. */
    assert_int_equal(pz_nodekeys_generate(dir, 0, NULL, NULL, &err), PZ_EEXIST);
    assert_non_null(strstr(pz_err_msg(&err), "already exists"));
    g_autofree char *text2 = slurp(dir, "sign.key");
    assert_string_equal(text, text2);
    assert_int_equal(pz_nodekeys_generate(dir, 1, again, NULL, &err), 0);
    assert_memory_not_equal(again, sign_pub, 32);
    pz_err_clear(&err);
}

static void test_generate_bad(void **state)
{
    const char *dir = *state;
    pz_err err;
    pz_err_init(&err);
    assert_int_equal(pz_nodekeys_generate(NULL, 0, NULL, NULL, &err), PZ_EINVAL);
    assert_int_equal(pz_nodekeys_generate("", 0, NULL, NULL, &err), PZ_EINVAL);
    /* A directory that cannot be created (its parent is a file). */
    spit(dir, "file", "x", 0600);
    g_autofree char *bad = g_build_filename(dir, "file", "sub", NULL);
    assert_int_equal(pz_nodekeys_generate(bad, 0, NULL, NULL, &err), PZ_EIO);
    /* Only e2e.key exists: still refused without FORCE. */
    g_autofree char *sub = g_build_filename(dir, "half", NULL);
    assert_int_equal(g_mkdir(sub, 0700), 0);
    spit(sub, "e2e.key", "x", 0600);
    assert_int_equal(pz_nodekeys_generate(sub, 0, NULL, NULL, &err), PZ_EEXIST);
    pz_err_clear(&err);
}

static void test_load_refusals(void **state)
{
    const char *dir = *state;
    pz_nodekeys *nk = NULL;
    pz_err err;
    pz_err_init(&err);

    assert_int_equal(pz_nodekeys_load(dir, &nk, &err), PZ_ENOENT);
    assert_null(nk);
    assert_int_equal(pz_nodekeys_load(NULL, &nk, &err), PZ_EINVAL);
    assert_int_equal(pz_nodekeys_load(dir, NULL, &err), PZ_EINVAL);
    assert_int_equal(pz_nodekeys_generate(dir, 0, NULL, NULL, &err), 0);

    /* Readable by others: refused with the fix in the message. */
    g_autofree char *sign = g_build_filename(dir, "sign.key", NULL);
    assert_int_equal(chmod(sign, 0644), 0);
    assert_int_equal(pz_nodekeys_load(dir, &nk, &err), PZ_EPERM);
    assert_non_null(strstr(pz_err_msg(&err), "chmod 600"));
    assert_int_equal(chmod(sign, 0600), 0);

    /* The keys swapped: an X25519 key where Ed25519 belongs. */
    g_autofree char *s = slurp(dir, "sign.key");
    g_autofree char *x = slurp(dir, "e2e.key");
    spit(dir, "sign.key", x, 0600);
    assert_int_equal(pz_nodekeys_load(dir, &nk, &err), PZ_EINVAL);
    assert_non_null(strstr(pz_err_msg(&err), "Ed25519"));
    spit(dir, "sign.key", s, 0600);
    spit(dir, "e2e.key", s, 0600);
    assert_int_equal(pz_nodekeys_load(dir, &nk, &err), PZ_EINVAL);
    spit(dir, "e2e.key", x, 0600);

    /* Not PEM, bad base64, empty block, a symlink, a directory. */
    static const char *const bad[] = {
        "garbage",
        "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n",
        "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n",
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n",
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAw\n",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        spit(dir, "sign.key", bad[i], 0600);
        assert_int_equal(pz_nodekeys_load(dir, &nk, &err), PZ_EINVAL);
        assert_null(nk);
    }
    g_unlink(sign);
    assert_int_equal(symlink(x, sign), 0);
    assert_int_not_equal(pz_nodekeys_load(dir, &nk, &err), 0);
    g_unlink(sign);
    assert_int_equal(g_mkdir(sign, 0700), 0);
    assert_int_equal(pz_nodekeys_load(dir, &nk, &err), PZ_EIO);
    g_rmdir(sign);
    /* Too large for a key file. */
    char *big = g_malloc0(20000);
    memset(big, 'A', 19999);
    spit(dir, "sign.key", big, 0600);
    g_free(big);
    assert_int_equal(pz_nodekeys_load(dir, &nk, &err), PZ_EINVAL);
    spit(dir, "sign.key", s, 0600);
    assert_int_equal(pz_nodekeys_load(dir, &nk, &err), 0);
    pz_nodekeys_free(nk);
    pz_err_clear(&err);
}

/* The files are the standard encodings other tools read. */
static void test_interop_tools(void **state)
{
    const char *dir = *state;
    uint8_t sign_pub[32];
    pz_err err;
    pz_err_init(&err);
    assert_int_equal(pz_nodekeys_generate(dir, 0, sign_pub, NULL, &err), 0);
    g_autofree char *certtool = g_find_program_in_path("certtool");
    g_autofree char *openssl = g_find_program_in_path("openssl");
    g_autofree char *sign = g_build_filename(dir, "sign.key", NULL);
    g_autofree char *e2e = g_build_filename(dir, "e2e.key", NULL);
    if (certtool) {
        char *argv[] = {certtool, "-k", "--infile", sign, NULL};
        g_autofree char *out = NULL;
        gint status = -1;
        assert_true(g_spawn_sync(NULL, argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &out, NULL, &status, NULL));
        assert_true(g_spawn_check_wait_status(status, NULL));
        assert_non_null(strstr(out, "EdDSA (Ed25519)"));
        printf("# certtool -k reads sign.key\n");
    }
    if (openssl) {
        char *argv[] = {openssl, "pkey", "-in", e2e, "-pubout", NULL};
        g_autofree char *out = NULL;
        g_autofree char *want = slurp(dir, "e2e.pub");
        gint status = -1;
        assert_true(g_spawn_sync(NULL, argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &out, NULL, &status, NULL));
        assert_true(g_spawn_check_wait_status(status, NULL));
        assert_string_equal(out, want);
        printf("# openssl pkey derives e2e.pub from e2e.key\n");
    }
    pz_err_clear(&err);
}

/* --- key records -------------------------------------------------------- */

static void test_keyrec(void **state)
{
    (void)state;
    pz_sign_key *sk = NULL, *other = NULL;
    pz_verify_key *vk = NULL, *ovk = NULL;
    pz_keyrec rec = {{0}}, got;
    uint8_t buf[PZ_KEYREC_LEN], sk_x[32];
    pz_err err;
    pz_err_init(&err);

    assert_int_equal(pz_sign_key_generate(&sk), 0);
    assert_int_equal(pz_sign_key_generate(&other), 0);
    assert_int_equal(pz_verify_key_new(pz_sign_key_public(sk), &vk), 0);
    assert_int_equal(pz_verify_key_new(pz_sign_key_public(other), &ovk), 0);
    assert_int_equal(pz_x25519_generate(sk_x, rec.pub), 0);
    rec.not_before_ms = 1000;
    rec.not_after_ms = 2000;
    assert_int_equal(pz_keyrec_sign(sk, &rec, buf), 0);
    assert_memory_equal(buf, "PZKR", 4);
    assert_int_equal(pz_keyrec_verify(vk, buf, sizeof(buf), &got, &err), 0);
    pz_e2e_key_id(rec.pub, rec.key_id);
    assert_memory_equal(got.key_id, rec.key_id, PZ_KEY_ID_LEN);
    assert_memory_equal(got.pub, rec.pub, 32);
    assert_int_equal(got.not_before_ms, 1000);
    assert_int_equal(got.not_after_ms, 2000);

    /* Every single-byte change is refused. */
    for (size_t i = 0; i < sizeof(buf); i++) {
        buf[i] ^= 0x01;
        int rc = pz_keyrec_verify(vk, buf, sizeof(buf), &got, &err);
        assert_true(rc == PZ_EINVAL || rc == PZ_ECRYPTO);
        buf[i] ^= 0x01;
    }
    /* Signed by someone else; truncated; extended. */
    assert_int_equal(pz_keyrec_verify(ovk, buf, sizeof(buf), &got, &err), PZ_ECRYPTO);
    assert_int_equal(pz_keyrec_verify(vk, buf, sizeof(buf) - 1, &got, &err), PZ_EINVAL);
    assert_int_equal(pz_keyrec_verify(vk, NULL, sizeof(buf), &got, &err), PZ_EINVAL);
    /* PEM text is accepted too. */
    g_autofree char *b64 = g_base64_encode(buf, sizeof(buf));
    g_autofree char *pem = g_strdup_printf("-----BEGIN PROZSEC E2E KEY RECORD-----\n%s\n"
                                           "-----END PROZSEC E2E KEY RECORD-----\n",
                                           b64);
    assert_int_equal(pz_keyrec_verify(vk, (const uint8_t *)pem, strlen(pem), &got, &err), 0);
    /* A record with the key id of another key: refused even if signed. */
    uint8_t forged[PZ_KEYREC_LEN + sizeof("prozsec-e2e-v1 key record")];
    memcpy(forged, "prozsec-e2e-v1 key record", sizeof("prozsec-e2e-v1 key record"));
    memcpy(forged + sizeof("prozsec-e2e-v1 key record"), buf, 64);
    forged[sizeof("prozsec-e2e-v1 key record") + 8] ^= 1;
    assert_int_equal(pz_sign(sk, forged, sizeof("prozsec-e2e-v1 key record") + 64, buf + 64), 0);
    memcpy(buf, forged + sizeof("prozsec-e2e-v1 key record"), 64);
    assert_int_equal(pz_keyrec_verify(vk, buf, sizeof(buf), &got, &err), PZ_EINVAL);
    assert_non_null(strstr(pz_err_msg(&err), "key id"));
    /* Empty or inverted validity. */
    rec.not_after_ms = rec.not_before_ms;
    assert_int_equal(pz_keyrec_sign(sk, &rec, buf), PZ_EINVAL);
    assert_int_equal(pz_keyrec_sign(NULL, &rec, buf), PZ_EINVAL);
    pz_sign_key_free(sk);
    pz_sign_key_free(other);
    pz_verify_key_free(vk);
    pz_verify_key_free(ovk);
    pz_err_clear(&err);
}

/* --- rotation ----------------------------------------------------------- */

static void test_rotation(void **state)
{
    const char *dir = *state;
    pz_nodekeys *nk = NULL;
    const pz_recv_key *k = NULL;
    int created = -1;
    size_t destroyed = 99;
    uint8_t id1[PZ_KEY_ID_LEN], id2[PZ_KEY_ID_LEN], nope[PZ_KEY_ID_LEN] = {1, 2, 3};
    const uint64_t T = 1700000000000ull, R = 1000, G = 500;
    pz_err err;
    pz_err_init(&err);

    assert_int_equal(pz_nodekeys_generate(dir, 0, NULL, NULL, &err), 0);
    assert_int_equal(pz_nodekeys_load(dir, &nk, &err), 0);
    /* Interval 0: never rotates. */
    assert_int_equal(pz_nodekeys_rotate(nk, T, 0, G, &created, &destroyed, &err), 0);
    assert_int_equal(created, 0);
    assert_int_equal(destroyed, 0);
    assert_int_equal(pz_nodekeys_count(nk), 1);

    assert_int_equal(pz_nodekeys_rotate(nk, T, R, G, &created, &destroyed, &err), 0);
    assert_int_equal(created, 1);
    k = pz_nodekeys_current(nk, T);
    assert_false(k->long_term);
    assert_int_equal(k->not_before_ms, T);
    assert_int_equal(k->not_after_ms, T + R);
    memcpy(id1, k->key_id, sizeof(id1));
    g_autofree char *rot = g_build_filename(dir, "e2e.d", NULL);
    assert_int_equal(count_suffix(rot, ".key"), 1);
    assert_int_equal(count_suffix(rot, ".rec"), 1);
    char hex[17];
    for (int i = 0; i < 8; i++)
        sprintf(hex + 2 * i, "%02x", id1[i]);
    g_autofree char *keyname = g_strdup_printf("%s.key", hex);
    assert_int_equal(file_mode(rot, keyname), 0600);

    /* Not due yet. */
    assert_int_equal(pz_nodekeys_rotate(nk, T + R / 2, R, G, &created, NULL, &err), 0);
    assert_int_equal(created, 0);
    /* Due: a second key; the first still opens within its grace. */
    assert_int_equal(pz_nodekeys_rotate(nk, T + R, R, G, &created, &destroyed, &err), 0);
    assert_int_equal(created, 1);
    assert_int_equal(destroyed, 0);
    k = pz_nodekeys_current(nk, T + R);
    memcpy(id2, k->key_id, sizeof(id2));
    assert_memory_not_equal(id1, id2, sizeof(id1));
    assert_int_equal(pz_nodekeys_find(nk, id1, T + R + G - 1, G, &k), 0);
    assert_memory_equal(k->key_id, id1, sizeof(id1));
    assert_int_equal(pz_nodekeys_find(nk, id1, T + R + G, G, &k), PZ_ESTALE);
    assert_null(k);
    assert_int_equal(pz_nodekeys_find(nk, nope, T, G, &k), PZ_ENOENT);
    assert_int_equal(pz_nodekeys_find(nk, pz_nodekeys_long_term(nk)->key_id, UINT64_MAX, G, &k), 0);
    /* An enormous grace does not wrap around. */
    assert_int_equal(pz_nodekeys_find(nk, id1, T + 10 * R, UINT64_MAX, &k), 0);

    /* Past the grace: destroyed, the file gone, the record kept. */
    assert_int_equal(pz_nodekeys_rotate(nk, T + R + G, R, G, &created, &destroyed, &err), 0);
    assert_int_equal(created, 0);
    assert_int_equal(destroyed, 1);
    assert_int_equal(count_suffix(rot, ".key"), 1);
    assert_int_equal(count_suffix(rot, ".rec"), 2);
    assert_int_equal(pz_nodekeys_find(nk, id1, T + R, UINT64_MAX, &k), PZ_ESTALE);
    pz_nodekeys_free(nk);

    /* Reloaded from disk: the same picture. */
    assert_int_equal(pz_nodekeys_load(dir, &nk, &err), 0);
    assert_int_equal(pz_nodekeys_count(nk), 3);
    assert_int_equal(pz_nodekeys_find(nk, id1, T, G, &k), PZ_ESTALE);
    assert_int_equal(pz_nodekeys_find(nk, id2, T + R, G, &k), 0);
    assert_non_null(k->sk);
    k = pz_nodekeys_current(nk, T + R + 1);
    assert_memory_equal(k->key_id, id2, sizeof(id2));
    /* After every rotated key expired, senders fall back to the long-term key. */
    assert_true(pz_nodekeys_current(nk, T + 5 * R)->long_term);
    pz_nodekeys_free(nk);

    /* A tampered record is ignored at load; its key is then unknown. */
    g_autofree char *recname = g_strdup_printf("%s.rec", hex);
    spit(rot, recname, "-----BEGIN PROZSEC E2E KEY RECORD-----\nAAAA\n-----END PROZSEC E2E KEY RECORD-----\n",
         0644);
    assert_int_equal(pz_nodekeys_load(dir, &nk, &err), 0);
    assert_int_equal(pz_nodekeys_ignored(nk), 1);
    assert_int_equal(pz_nodekeys_find(nk, id1, T, G, &k), PZ_ENOENT);
    pz_nodekeys_free(nk);

    /* A world-readable rotated key refuses the load. */
    for (int i = 0; i < 8; i++)
        sprintf(hex + 2 * i, "%02x", id2[i]);
    g_autofree char *key2 = g_strdup_printf("%s/%s.key", rot, hex);
    assert_int_equal(chmod(key2, 0640), 0);
    assert_int_equal(pz_nodekeys_load(dir, &nk, &err), PZ_EPERM);
    assert_int_equal(chmod(key2, 0600), 0);

    /* Regenerating the node's keys with FORCE destroys rotated keys. */
    assert_int_equal(pz_nodekeys_generate(dir, 1, NULL, NULL, &err), 0);
    assert_int_equal(count_suffix(rot, ".key"), 0);
    assert_int_equal(count_suffix(rot, ".rec"), 0);
    assert_int_equal(pz_nodekeys_rotate(NULL, T, R, G, NULL, NULL, &err), PZ_EINVAL);
    pz_err_clear(&err);
}

static void test_tombstones_bounded(void **state)
{
    const char *dir = *state;
    pz_nodekeys *nk = NULL;
    int created;
    size_t destroyed;
    pz_err err;
    pz_err_init(&err);
    assert_int_equal(pz_nodekeys_generate(dir, 0, NULL, NULL, &err), 0);
    assert_int_equal(pz_nodekeys_load(dir, &nk, &err), 0);
    for (uint64_t t = 1; t <= 80; t++) {
        assert_int_equal(pz_nodekeys_rotate(nk, t * 10, 10, 0, &created, &destroyed, &err), 0);
        assert_int_equal(created, 1);
    }
    g_autofree char *rot = g_build_filename(dir, "e2e.d", NULL);
    /* One live key (the newest), at most 64 tombstones. */
    assert_int_equal(count_suffix(rot, ".key"), 1);
    assert_true(count_suffix(rot, ".rec") <= 65);
    assert_true(pz_nodekeys_count(nk) <= 66);
    pz_nodekeys_free(nk);
    pz_err_clear(&err);
}

/* --- peer directory ----------------------------------------------------- */

static void test_peerdir(void **state)
{
    const char *dir = *state;
    pz_peerdir *pd = NULL;
    pz_nodekeys *nk = NULL;
    uint8_t sign_pub[32], e2e_pub[32], pub[32], id[PZ_KEY_ID_LEN], lt_id[PZ_KEY_ID_LEN];
    const uint64_t T = 5000000;
    pz_err err;
    pz_err_init(&err);

    assert_int_equal(pz_nodekeys_generate(dir, 0, sign_pub, e2e_pub, &err), 0);
    assert_int_equal(pz_nodekeys_load(dir, &nk, &err), 0);
    assert_int_equal(pz_peerdir_new(&pd), 0);
    assert_int_equal(pz_peerdir_add(pd, "bad id", sign_pub, e2e_pub, &err), PZ_EINVAL);
    assert_int_equal(pz_peerdir_add(pd, "", sign_pub, e2e_pub, &err), PZ_EINVAL);
    assert_int_equal(pz_peerdir_add(pd, "-x", sign_pub, e2e_pub, &err), PZ_EINVAL);
    assert_int_equal(pz_peerdir_add(pd, NULL, sign_pub, e2e_pub, &err), PZ_EINVAL);
    assert_int_equal(pz_peerdir_add(pd, "n1", NULL, e2e_pub, &err), PZ_EINVAL);
    char long_id[66];
    memset(long_id, 'a', 65);
    long_id[65] = 0;
    assert_int_equal(pz_peerdir_add(pd, long_id, sign_pub, e2e_pub, &err), PZ_EINVAL);
    assert_int_equal(pz_peerdir_add(pd, "n1", sign_pub, e2e_pub, &err), 0);
    assert_null(pz_peerdir_get(pd, "n2"));
    pz_peer *peer = pz_peerdir_get(pd, "n1");
    assert_non_null(peer);
    assert_string_equal(pz_peer_node_id(peer), "n1");
    assert_memory_equal(pz_peer_e2e_pub(peer), e2e_pub, 32);
    assert_memory_equal(pz_verify_key_public(pz_peer_verify_key(peer)), sign_pub, 32);

    /* Sealing falls back to the certificate's key. */
    assert_int_equal(pz_peerdir_seal_key(pd, "n1", T, pub, lt_id), 0);
    assert_memory_equal(pub, e2e_pub, 32);
    assert_int_equal(pz_peerdir_seal_key(pd, "n2", T, pub, id), PZ_ENOENT);

    /* A rotated key's record: verified, then preferred while valid. */
    int created;
    assert_int_equal(pz_nodekeys_rotate(nk, T, 1000, 0, &created, NULL, &err), 0);
    const pz_recv_key *k = pz_nodekeys_current(nk, T);
    assert_int_equal(pz_peerdir_add_record(pd, "n2", k->record, PZ_KEYREC_LEN, T, &err), PZ_ENOENT);
    assert_int_equal(pz_peerdir_add_record(pd, "n1", k->record, PZ_KEYREC_LEN, T + 1000, &err), PZ_ESTALE);
    uint8_t bad[PZ_KEYREC_LEN];
    memcpy(bad, k->record, sizeof(bad));
    bad[100] ^= 1;
    assert_int_equal(pz_peerdir_add_record(pd, "n1", bad, sizeof(bad), T, &err), PZ_ECRYPTO);
    assert_non_null(strstr(pz_err_msg(&err), "n1"));
    assert_int_equal(pz_peerdir_add_record(pd, "n1", k->record, PZ_KEYREC_LEN, T, &err), 0);
    assert_int_equal(pz_peerdir_add_record(pd, "n1", k->record, PZ_KEYREC_LEN, T, &err), 0); /* idempotent */
    assert_int_equal(pz_peerdir_seal_key(pd, "n1", T + 10, pub, id), 0);
    assert_memory_equal(pub, k->pub, 32);
    assert_memory_equal(id, k->key_id, PZ_KEY_ID_LEN);
    /* Expired record: back to the long-term key. */
    assert_int_equal(pz_peerdir_seal_key(pd, "n1", T + 1000, pub, id), 0);
    assert_memory_equal(id, lt_id, PZ_KEY_ID_LEN);

    /* Many records: the newest are kept; the newest valid one is used. */
    for (uint64_t i = 1; i <= 12; i++) {
        assert_int_equal(pz_nodekeys_rotate(nk, T + i * 1000, 1000, 0, &created, NULL, &err), 0);
        k = pz_nodekeys_current(nk, T + i * 1000);
        assert_int_equal(pz_peerdir_add_record(pd, "n1", k->record, PZ_KEYREC_LEN, T + i * 1000 - 1, &err), 0);
    }
    assert_int_equal(pz_peerdir_seal_key(pd, "n1", T + 12 * 1000 + 5, pub, id), 0);
    assert_memory_equal(id, k->key_id, PZ_KEY_ID_LEN);

    /* Re-adding with the same signing key keeps records; a new signing key
     * drops them. The old reference stays valid. */
    assert_int_equal(pz_peerdir_add(pd, "n1", sign_pub, e2e_pub, &err), 0);
    assert_int_equal(pz_peerdir_seal_key(pd, "n1", T + 12 * 1000 + 5, pub, id), 0);
    assert_memory_equal(id, k->key_id, PZ_KEY_ID_LEN);
    uint8_t other_sign[32];
    pz_sign_key *osk = NULL;
    assert_int_equal(pz_sign_key_generate(&osk), 0);
    memcpy(other_sign, pz_sign_key_public(osk), 32);
    pz_sign_key_free(osk);
    assert_int_equal(pz_peerdir_add(pd, "n1", other_sign, e2e_pub, &err), 0);
    assert_int_equal(pz_peerdir_seal_key(pd, "n1", T + 12 * 1000 + 5, pub, id), 0);
    assert_memory_equal(id, lt_id, PZ_KEY_ID_LEN);
    assert_string_equal(pz_peer_node_id(peer), "n1");
    pz_peer_unref(peer);
    pz_peer_unref(NULL);

    pz_peerdir_free(pd);
    pz_peerdir_free(NULL);
    pz_nodekeys_free(nk);
    pz_err_clear(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_generate_and_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_generate_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interop_tools, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyrec, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tombstones_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peerdir, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
