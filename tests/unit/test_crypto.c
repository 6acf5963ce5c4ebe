/* tests/unit/test_crypto.c — the crypto seam against the Wycheproof
 * vectors (tests/vectors/wycheproof, found through $PZ_VECTORS_DIR) plus
 * the seam's own argument checks.
 *
 * Policy for "acceptable" cases (documented in docs/internals/crypto.md):
 * X25519 refuses an all-zero shared secret (RFC 7748 §6.1), so acceptable
 * cases whose expected secret is zero must be refused and are counted as
 * "refused-acceptable"; every other acceptable case must give the expected
 * secret. AEAD cases whose IV is not 96 bits are skipped and counted. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <glib.h>
#include <json-glib/json-glib.h>

#include "crypto.h"

#ifndef PZ_TEST_VECTORS_DIR
#define PZ_TEST_VECTORS_DIR "tests/vectors"
#endif

/* --- helpers ------------------------------------------------------------ */

static uint8_t *unhex(const char *hex, size_t *len)
{
    size_t n = strlen(hex);
    assert_true(n % 2 == 0);
    uint8_t *out = g_malloc(n / 2 + 1);
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
    *len = n / 2;
    return out;
}

static uint8_t *member_hex(JsonObject *o, const char *name, size_t *len)
{
    assert_true(json_object_has_member(o, name));
    return unhex(json_object_get_string_member(o, name), len);
}

static JsonParser *load_vectors(const char *rel, JsonArray **groups)
{
    const char *dir = g_getenv("PZ_VECTORS_DIR");
    g_autofree char *path = g_build_filename(dir ? dir : PZ_TEST_VECTORS_DIR, rel, NULL);
    JsonParser *p = json_parser_new();
    GError *gerr = NULL;
    if (!json_parser_load_from_file(p, path, &gerr))
        fail_msg("%s: %s", path, gerr->message);
    JsonObject *root = json_node_get_object(json_parser_get_root(p));
    *groups = json_object_get_array_member(root, "testGroups");
    assert_non_null(*groups);
    return p;
}

static int has_flag(JsonObject *t, const char *flag)
{
    JsonArray *flags = json_object_get_array_member(t, "flags");
    for (guint i = 0; flags && i < json_array_get_length(flags); i++)
        if (!strcmp(json_array_get_string_element(flags, i), flag))
            return 1;
    return 0;
}

typedef struct counts {
    unsigned total, passed, refused_invalid, refused_acceptable, skipped;
} counts;

static void print_counts(const char *file, const counts *c)
{
    printf("# %s: %u tests: %u passed (valid/acceptable accepted), %u invalid refused, "
           "%u refused-acceptable, %u skipped\n",
           file, c->total, c->passed, c->refused_invalid, c->refused_acceptable, c->skipped);
    fflush(stdout);
}

static int setup(void **state)
{
    (void)state;
    return pz_crypto_init();
}

/* --- X25519 ------------------------------------------------------------- */

static void test_wycheproof_x25519(void **state)
{
    (void)state;
    JsonArray *groups;
    JsonParser *p = load_vectors("wycheproof/x25519_test.json", &groups);
    counts c = {0};
    static const uint8_t zero[32];

    for (guint g = 0; g < json_array_get_length(groups); g++) {
        JsonObject *grp = json_array_get_object_element(groups, g);
        JsonArray *tests = json_object_get_array_member(grp, "tests");
        assert_string_equal(json_object_get_string_member(grp, "curve"), "curve25519");
        for (guint i = 0; i < json_array_get_length(tests); i++) {
            JsonObject *t = json_array_get_object_element(tests, i);
            gint64 id = json_object_get_int_member(t, "tcId");
            const char *result = json_object_get_string_member(t, "result");
            size_t pub_len, sk_len, sh_len;
            g_autofree uint8_t *pub = member_hex(t, "public", &pub_len);
            g_autofree uint8_t *sk = member_hex(t, "private", &sk_len);
            g_autofree uint8_t *want = member_hex(t, "shared", &sh_len);
            uint8_t got[32];
            c.total++;
            if (pub_len != 32 || sk_len != 32 || sh_len != 32) {
                c.skipped++;
                continue;
            }
            int rc = pz_x25519(got, sk, pub);
            int want_zero = !memcmp(want, zero, 32);
            if (!strcmp(result, "invalid")) {
                if (rc == 0 && !memcmp(got, want, 32))
                    fail_msg("x25519 tcId %" G_GINT64_FORMAT ": invalid case accepted", id);
                c.refused_invalid++;
            } else if (want_zero) {
                /* Our documented choice: an all-zero secret is refused. */
                if (rc != PZ_ECRYPTO || memcmp(got, zero, 32))
                    fail_msg("x25519 tcId %" G_GINT64_FORMAT ": zero shared secret not refused", id);
                if (!strcmp(result, "valid"))
                    fail_msg("x25519 tcId %" G_GINT64_FORMAT ": valid case has a zero secret", id);
                assert_true(has_flag(t, "ZeroSharedSecret") || has_flag(t, "LowOrderPublic"));
                c.refused_acceptable++;
            } else {
                if (rc != 0 || memcmp(got, want, 32))
                    fail_msg("x25519 tcId %" G_GINT64_FORMAT " (%s): wrong shared secret", id, result);
                c.passed++;
            }
        }
    }
    print_counts("x25519_test.json", &c);
    assert_int_equal(c.total, 518);
    assert_int_equal(c.skipped, 0);
    g_object_unref(p);
}

static void test_x25519_public(void **state)
{
    (void)state;
    /* RFC 7748 §6.1 (Alice). */
    size_t n;
    g_autofree uint8_t *sk = unhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", &n);
    g_autofree uint8_t *want = unhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a", &n);
    uint8_t pub[32], sk2[32], pub2[32], s1[32], s2[32];
    pz_x25519_public(pub, sk);
    assert_memory_equal(pub, want, 32);
    assert_int_equal(pz_x25519_generate(sk2, pub2), 0);
    assert_int_equal(pz_x25519(s1, sk, pub2), 0);
    assert_int_equal(pz_x25519(s2, sk2, pub), 0);
    assert_memory_equal(s1, s2, 32);
    /* The point 0 has order 1: refused. */
    uint8_t zero_pub[32] = {0};
    assert_int_equal(pz_x25519(s1, sk, zero_pub), PZ_ECRYPTO);
}

/* --- Ed25519 ------------------------------------------------------------ */

static void test_wycheproof_ed25519(void **state)
{
    (void)state;
    JsonArray *groups;
    JsonParser *p = load_vectors("wycheproof/ed25519_test.json", &groups);
    counts c = {0};

    for (guint g = 0; g < json_array_get_length(groups); g++) {
        JsonObject *grp = json_array_get_object_element(groups, g);
        JsonObject *pk = json_object_get_object_member(grp, "publicKey");
        JsonArray *tests = json_object_get_array_member(grp, "tests");
        size_t pk_len;
        g_autofree uint8_t *pub = member_hex(pk, "pk", &pk_len);
        pz_verify_key *vk = NULL;
        if (pk_len != 32 || pz_verify_key_new(pub, &vk) != 0) {
            /* A key GnuTLS will not import: every test must be invalid. */
            for (guint i = 0; i < json_array_get_length(tests); i++) {
                JsonObject *t = json_array_get_object_element(tests, i);
                c.total++;
                assert_string_equal(json_object_get_string_member(t, "result"), "invalid");
                c.refused_invalid++;
            }
            continue;
        }
        assert_memory_equal(pz_verify_key_public(vk), pub, 32);
        for (guint i = 0; i < json_array_get_length(tests); i++) {
            JsonObject *t = json_array_get_object_element(tests, i);
            gint64 id = json_object_get_int_member(t, "tcId");
            const char *result = json_object_get_string_member(t, "result");
            size_t msg_len, sig_len;
            g_autofree uint8_t *msg = member_hex(t, "msg", &msg_len);
            g_autofree uint8_t *sig = member_hex(t, "sig", &sig_len);
            int rc = pz_verify(vk, msg, msg_len, sig, sig_len);
            c.total++;
            if (!strcmp(result, "valid")) {
                if (rc != 0)
                    fail_msg("ed25519 tcId %" G_GINT64_FORMAT ": valid signature refused", id);
                c.passed++;
            } else if (!strcmp(result, "invalid")) {
                if (rc != PZ_ECRYPTO)
                    fail_msg("ed25519 tcId %" G_GINT64_FORMAT ": invalid signature accepted", id);
                c.refused_invalid++;
            } else {
                c.skipped++; /* none in this file */
            }
        }
        pz_verify_key_free(vk);
    }
    print_counts("ed25519_test.json", &c);
    assert_int_equal(c.total, 151);
    assert_int_equal(c.skipped, 0);
    g_object_unref(p);
}

static void test_ed25519_sign(void **state)
{
    (void)state;
    /* RFC 8032 §7.1 TEST 2. */
    size_t n;
    g_autofree uint8_t *seed = unhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb", &n);
    g_autofree uint8_t *pub = unhex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", &n);
    g_autofree uint8_t *want = unhex("92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
                                     "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
                                     &n);
    uint8_t msg = 0x72, sig[64];
    pz_sign_key *sk = NULL;
    pz_verify_key *vk = NULL;

    assert_int_equal(pz_sign_key_new(seed, &sk), 0);
    assert_memory_equal(pz_sign_key_public(sk), pub, 32);
    assert_memory_equal(pz_sign_key_seed(sk), seed, 32);
    assert_int_equal(pz_sign(sk, &msg, 1, sig), 0);
    assert_memory_equal(sig, want, 64);
    assert_int_equal(pz_verify_key_new(pub, &vk), 0);
    assert_int_equal(pz_verify(vk, &msg, 1, sig, 64), 0);
    msg ^= 1;
    assert_int_equal(pz_verify(vk, &msg, 1, sig, 64), PZ_ECRYPTO);
    assert_int_equal(pz_verify(vk, &msg, 1, sig, 63), PZ_ECRYPTO);
    assert_int_equal(pz_verify(vk, &msg, 1, NULL, 64), PZ_ECRYPTO);
    assert_int_equal(pz_verify(NULL, &msg, 1, sig, 64), PZ_EINVAL);
    assert_int_equal(pz_sign(NULL, &msg, 1, sig), PZ_EINVAL);
    assert_int_equal(pz_sign(sk, NULL, 1, sig), PZ_EINVAL);
    pz_sign_key_free(sk);
    pz_verify_key_free(vk);
    assert_int_equal(pz_sign_key_new(NULL, &sk), PZ_EINVAL);
    assert_null(sk);
    assert_int_equal(pz_verify_key_new(NULL, &vk), PZ_EINVAL);
    assert_null(vk);
    pz_verify_key_free(vk); /* NULL: no-op */
    pz_sign_key_free(NULL);

    /* A generated key signs what its public key verifies. */
    assert_int_equal(pz_sign_key_generate(&sk), 0);
    assert_int_equal(pz_verify_key_new(pz_sign_key_public(sk), &vk), 0);
    assert_int_equal(pz_sign(sk, "", 0, sig), 0);
    assert_int_equal(pz_verify(vk, "", 0, sig, 64), 0);
    pz_sign_key_free(sk);
    pz_verify_key_free(vk);
}

/* --- AEAD --------------------------------------------------------------- */

static void run_aead_file(const char *rel, const char *name, int chacha)
{
    JsonArray *groups;
    JsonParser *p = load_vectors(rel, &groups);
    counts c = {0};

    for (guint g = 0; g < json_array_get_length(groups); g++) {
        JsonObject *grp = json_array_get_object_element(groups, g);
        JsonArray *tests = json_object_get_array_member(grp, "tests");
        gint64 iv_bits = json_object_get_int_member(grp, "ivSize");
        gint64 key_bits = json_object_get_int_member(grp, "keySize");
        gint64 tag_bits = json_object_get_int_member(grp, "tagSize");
        pz_aead_alg alg;
        if (chacha)
            alg = PZ_AEAD_CHACHA20_POLY1305;
        else
            alg = key_bits == 128 ? PZ_AEAD_AES_128_GCM
                : key_bits == 192 ? PZ_AEAD_AES_192_GCM
                                  : PZ_AEAD_AES_256_GCM;
        for (guint i = 0; i < json_array_get_length(tests); i++) {
            JsonObject *t = json_array_get_object_element(tests, i);
            gint64 id = json_object_get_int_member(t, "tcId");
            const char *result = json_object_get_string_member(t, "result");
            size_t key_len, iv_len, aad_len, msg_len, ct_len, tag_len;
            g_autofree uint8_t *key = member_hex(t, "key", &key_len);
            g_autofree uint8_t *iv = member_hex(t, "iv", &iv_len);
            g_autofree uint8_t *aad = member_hex(t, "aad", &aad_len);
            g_autofree uint8_t *msg = member_hex(t, "msg", &msg_len);
            g_autofree uint8_t *ct = member_hex(t, "ct", &ct_len);
            g_autofree uint8_t *tag = member_hex(t, "tag", &tag_len);
            c.total++;
            /* A 96-bit-nonce, 128-bit-tag API: other sizes are skipped. */
            if (iv_bits != 96 || iv_len != 12 || tag_bits != 128 || tag_len != 16) {
                c.skipped++;
                continue;
            }
            assert_int_equal(key_len * 8, (size_t)key_bits);
            assert_int_equal(key_len, pz_aead_key_len(alg));
            g_autofree uint8_t *full = g_malloc(ct_len + 16);
            g_autofree uint8_t *out = g_malloc(msg_len + 16);
            memcpy(full, ct, ct_len);
            memcpy(full + ct_len, tag, 16);
            int rc = pz_aead_open(alg, key, iv, aad, aad_len, full, ct_len + 16, out);
            if (!strcmp(result, "valid")) {
                if (rc != 0 || ct_len != msg_len || memcmp(out, msg, msg_len))
                    fail_msg("%s tcId %" G_GINT64_FORMAT ": valid case not opened", name, id);
                assert_int_equal(pz_aead_seal(alg, key, iv, aad, aad_len, msg, msg_len, out), 0);
                if (memcmp(out, full, ct_len + 16))
                    fail_msg("%s tcId %" G_GINT64_FORMAT ": seal differs", name, id);
                /* In place, both ways. */
                memcpy(out, msg, msg_len);
                assert_int_equal(pz_aead_seal(alg, key, iv, aad, aad_len, out, msg_len, out), 0);
                assert_memory_equal(out, full, ct_len + 16);
                assert_int_equal(pz_aead_open(alg, key, iv, aad, aad_len, out, msg_len + 16, out), 0);
                assert_memory_equal(out, msg, msg_len);
                c.passed++;
            } else if (!strcmp(result, "invalid")) {
                if (rc != PZ_ECRYPTO)
                    fail_msg("%s tcId %" G_GINT64_FORMAT ": invalid case opened", name, id);
                for (size_t k = 0; k < ct_len; k++)
                    if (out[k])
                        fail_msg("%s tcId %" G_GINT64_FORMAT ": plaintext released", name, id);
                c.refused_invalid++;
            } else {
                fail_msg("%s tcId %" G_GINT64_FORMAT ": unexpected result %s", name, id, result);
            }
        }
    }
    print_counts(name, &c);
    assert_int_equal(c.passed + c.refused_invalid + c.skipped, c.total);
    g_object_unref(p);
}

static void test_wycheproof_chacha20_poly1305(void **state)
{
    (void)state;
    run_aead_file("wycheproof/chacha20_poly1305_test.json", "chacha20_poly1305_test.json", 1);
}

static void test_wycheproof_aes_gcm(void **state)
{
    (void)state;
    run_aead_file("wycheproof/aes_gcm_test.json", "aes_gcm_test.json", 0);
}

static void test_aead_bad_args(void **state)
{
    (void)state;
    uint8_t key[32] = {1}, nonce[12] = {2}, buf[64] = {0}, out[64];
    assert_int_equal(pz_aead_key_len((pz_aead_alg)99), 0);
    assert_int_equal(pz_aead_seal((pz_aead_alg)99, key, nonce, NULL, 0, buf, 4, out), PZ_EINVAL);
    assert_int_equal(pz_aead_open((pz_aead_alg)0, key, nonce, NULL, 0, buf, 20, out), PZ_EINVAL);
    assert_int_equal(pz_aead_seal(PZ_AEAD_AES_256_GCM, NULL, nonce, NULL, 0, buf, 4, out), PZ_EINVAL);
    assert_int_equal(pz_aead_seal(PZ_AEAD_AES_256_GCM, key, NULL, NULL, 0, buf, 4, out), PZ_EINVAL);
    assert_int_equal(pz_aead_seal(PZ_AEAD_AES_256_GCM, key, nonce, NULL, 3, buf, 4, out), PZ_EINVAL);
    assert_int_equal(pz_aead_seal(PZ_AEAD_AES_256_GCM, key, nonce, NULL, 0, NULL, 4, out), PZ_EINVAL);
    assert_int_equal(pz_aead_seal(PZ_AEAD_AES_256_GCM, key, nonce, NULL, 0, buf, 4, NULL), PZ_EINVAL);
    /* Shorter than a tag. */
    assert_int_equal(pz_aead_open(PZ_AEAD_CHACHA20_POLY1305, key, nonce, NULL, 0, buf, 15, out), PZ_EINVAL);
    assert_int_equal(pz_aead_open(PZ_AEAD_CHACHA20_POLY1305, key, nonce, NULL, 0, NULL, 20, out), PZ_EINVAL);
    /* Empty plaintext round trip; a flipped tag bit refused. */
    assert_int_equal(pz_aead_seal(PZ_AEAD_CHACHA20_POLY1305, key, nonce, "ad", 2, NULL, 0, out), 0);
    assert_int_equal(pz_aead_open(PZ_AEAD_CHACHA20_POLY1305, key, nonce, "ad", 2, out, 16, NULL), 0);
    out[3] ^= 0x10;
    assert_int_equal(pz_aead_open(PZ_AEAD_CHACHA20_POLY1305, key, nonce, "ad", 2, out, 16, NULL), PZ_ECRYPTO);
}

/* --- HKDF, HMAC --------------------------------------------------------- */

static void test_wycheproof_hkdf(void **state)
{
    (void)state;
    JsonArray *groups;
    JsonParser *p = load_vectors("wycheproof/hkdf_sha256_test.json", &groups);
    counts c = {0};

    for (guint g = 0; g < json_array_get_length(groups); g++) {
        JsonObject *grp = json_array_get_object_element(groups, g);
        JsonArray *tests = json_object_get_array_member(grp, "tests");
        for (guint i = 0; i < json_array_get_length(tests); i++) {
            JsonObject *t = json_array_get_object_element(tests, i);
            gint64 id = json_object_get_int_member(t, "tcId");
            const char *result = json_object_get_string_member(t, "result");
            size_t ikm_len, salt_len, info_len, okm_len;
            g_autofree uint8_t *ikm = member_hex(t, "ikm", &ikm_len);
            g_autofree uint8_t *salt = member_hex(t, "salt", &salt_len);
            g_autofree uint8_t *info = member_hex(t, "info", &info_len);
            g_autofree uint8_t *okm = member_hex(t, "okm", &okm_len);
            size_t size = (size_t)json_object_get_int_member(t, "size");
            g_autofree uint8_t *out = g_malloc0(size + 1);
            int rc = pz_hkdf_sha256(salt, salt_len, ikm, ikm_len, info, info_len, out, size);
            c.total++;
            if (!strcmp(result, "valid")) {
                if (rc != 0 || okm_len != size || memcmp(out, okm, size))
                    fail_msg("hkdf tcId %" G_GINT64_FORMAT ": wrong okm", id);
                c.passed++;
            } else {
                if (rc != PZ_ERANGE)
                    fail_msg("hkdf tcId %" G_GINT64_FORMAT ": invalid size accepted", id);
                c.refused_invalid++;
            }
        }
    }
    print_counts("hkdf_sha256_test.json", &c);
    assert_int_equal(c.total, 86);
    g_object_unref(p);
}

static void test_hkdf_pieces(void **state)
{
    (void)state;
    /* RFC 5869 A.1, with IKM and info given in several pieces. */
    size_t n;
    g_autofree uint8_t *ikm = unhex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", &n);
    g_autofree uint8_t *salt = unhex("000102030405060708090a0b0c", &n);
    g_autofree uint8_t *info = unhex("f0f1f2f3f4f5f6f7f8f9", &n);
    g_autofree uint8_t *want_prk = unhex("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5", &n);
    g_autofree uint8_t *want = unhex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
                                     "34007208d5b887185865",
                                     &n);
    uint8_t prk[32], okm[42];
    pz_iov in[3] = {{ikm, 5}, {ikm + 5, 0}, {ikm + 5, 17}};
    pz_iov inf[2] = {{info, 4}, {info + 4, 6}};
    assert_int_equal(pz_hkdf_sha256_extract(salt, 13, in, 3, prk), 0);
    assert_memory_equal(prk, want_prk, 32);
    assert_int_equal(pz_hkdf_sha256_expand(prk, 32, inf, 2, okm, 42), 0);
    assert_memory_equal(okm, want, 42);
    /* Bad arguments. */
    assert_int_equal(pz_hkdf_sha256_expand(prk, 32, inf, 2, okm, PZ_HKDF_SHA256_MAX + 1), PZ_ERANGE);
    assert_int_equal(pz_hkdf_sha256_expand(prk, 32, NULL, 2, okm, 42), PZ_EINVAL);
    assert_int_equal(pz_hkdf_sha256_expand(prk, 32, inf, PZ_IOV_MAX, okm, 42), PZ_EINVAL);
    assert_int_equal(pz_hkdf_sha256_expand(prk, 32, inf, 2, NULL, 42), PZ_EINVAL);
    assert_int_equal(pz_hkdf_sha256_extract(salt, 13, in, PZ_IOV_MAX, prk), PZ_EINVAL);
    assert_int_equal(pz_hkdf_sha256_extract(NULL, 13, in, 3, prk), PZ_EINVAL);
    /* Zero-length output is fine. */
    assert_int_equal(pz_hkdf_sha256_expand(prk, 32, inf, 2, NULL, 0), 0);
}

static void test_wycheproof_hmac(void **state)
{
    (void)state;
    JsonArray *groups;
    JsonParser *p = load_vectors("wycheproof/hmac_sha256_test.json", &groups);
    counts c = {0};
    unsigned truncated = 0;

    for (guint g = 0; g < json_array_get_length(groups); g++) {
        JsonObject *grp = json_array_get_object_element(groups, g);
        JsonArray *tests = json_object_get_array_member(grp, "tests");
        size_t tag_bytes = (size_t)json_object_get_int_member(grp, "tagSize") / 8;
        assert_true(tag_bytes > 0 && tag_bytes <= 32);
        for (guint i = 0; i < json_array_get_length(tests); i++) {
            JsonObject *t = json_array_get_object_element(tests, i);
            gint64 id = json_object_get_int_member(t, "tcId");
            const char *result = json_object_get_string_member(t, "result");
            size_t key_len, msg_len, tag_len;
            g_autofree uint8_t *key = member_hex(t, "key", &key_len);
            g_autofree uint8_t *msg = member_hex(t, "msg", &msg_len);
            g_autofree uint8_t *tag = member_hex(t, "tag", &tag_len);
            uint8_t out[32];
            pz_iov iov = {msg, msg_len};
            c.total++;
            assert_int_equal(pz_hmac_sha256(key, key_len, &iov, 1, out), 0);
            /* A prepared key gives the same tag, every time it is used. */
            pz_hmac_key *hk;
            uint8_t out2[32];
            assert_int_equal(pz_hmac_key_new(key, key_len, &hk), 0);
            for (int rep = 0; rep < 2; rep++) {
                assert_int_equal(pz_hmac_key_sign(hk, &iov, 1, out2), 0);
                assert_memory_equal(out, out2, 32);
            }
            if (tag_bytes == 32)
                assert_int_equal(pz_hmac_key_verify(hk, &iov, 1, tag, tag_len),
                                 strcmp(result, "valid") ? PZ_ECRYPTO : 0);
            pz_hmac_key_free(hk);
            /* A truncated tag compares its leftmost bytes (RFC 2104 §5). */
            int ok = tag_len == tag_bytes && pz_crypto_memeq(out, tag, tag_bytes);
            if (tag_bytes < 32)
                truncated++;
            if (!strcmp(result, "valid")) {
                if (!ok)
                    fail_msg("hmac tcId %" G_GINT64_FORMAT ": valid tag refused", id);
                c.passed++;
            } else {
                if (ok)
                    fail_msg("hmac tcId %" G_GINT64_FORMAT ": invalid tag accepted", id);
                c.refused_invalid++;
            }
        }
    }
    print_counts("hmac_sha256_test.json", &c);
    printf("# hmac_sha256_test.json: %u of them with truncated tags\n", truncated);
    assert_int_equal(c.total, 174);
    assert_true(truncated > 0);
    g_object_unref(p);
}

/* Prepared HMAC keys and Ed25519 over pieces (the RPC's domain-separated
 * messages): same results as the one-buffer functions, bad arguments
 * refused. */
static void test_prepared_keys(void **state)
{
    (void)state;
    uint8_t big[3000], sig1[64], sig2[64], mac1[32], mac2[32];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 7);
    pz_sign_key *sk;
    pz_verify_key *vk;
    assert_int_equal(pz_sign_key_generate(&sk), 0);
    assert_int_equal(pz_verify_key_new(pz_sign_key_public(sk), &vk), 0);
    /* Short (joined on the stack) and long (joined on the heap) messages. */
    static const size_t lens[] = {0, 10, 1000, 1024, 3000};
    for (size_t i = 0; i < G_N_ELEMENTS(lens); i++) {
        size_t cut = lens[i] / 3;
        pz_iov parts[3] = {{big, cut}, {NULL, 0}, {big + cut, lens[i] - cut}};
        assert_int_equal(pz_sign(sk, big, lens[i], sig1), 0);
        assert_int_equal(pz_sign_iov(sk, parts, 3, sig2), 0);
        assert_memory_equal(sig1, sig2, 64); /* Ed25519 is deterministic */
        assert_int_equal(pz_verify_iov(vk, parts, 3, sig2, 64), 0);
        assert_int_equal(pz_verify(vk, big, lens[i], sig2, 64), 0);
        sig2[5] ^= 1;
        assert_int_equal(pz_verify_iov(vk, parts, 3, sig2, 64), PZ_ECRYPTO);
        assert_int_equal(pz_verify_iov(vk, parts, 3, sig1, 63), PZ_ECRYPTO);

        pz_hmac_key *hk;
        assert_int_equal(pz_hmac_key_new("key", 3, &hk), 0);
        pz_iov one = {big, lens[i]};
        assert_int_equal(pz_hmac_sha256("key", 3, &one, 1, mac1), 0);
        assert_int_equal(pz_hmac_key_sign(hk, parts, 3, mac2), 0);
        assert_memory_equal(mac1, mac2, 32);
        assert_int_equal(pz_hmac_key_verify(hk, parts, 3, mac1, 32), 0);
        mac1[31] ^= 1;
        assert_int_equal(pz_hmac_key_verify(hk, parts, 3, mac1, 32), PZ_ECRYPTO);
        assert_int_equal(pz_hmac_key_verify(hk, parts, 3, mac2, 31), PZ_ECRYPTO);
        pz_hmac_key_free(hk);
    }
    pz_iov bad = {NULL, 4};
    assert_int_equal(pz_sign_iov(sk, &bad, 1, sig1), PZ_EINVAL);
    assert_int_equal(pz_sign_iov(sk, NULL, 1, sig1), PZ_EINVAL);
    assert_int_equal(pz_verify_iov(NULL, NULL, 0, sig1, 64), PZ_EINVAL);
    pz_iov many[PZ_IOV_MAX + 1] = {{0}};
    assert_int_equal(pz_verify_iov(vk, many, PZ_IOV_MAX + 1, sig1, 64), PZ_EINVAL);
    pz_hmac_key *hk = NULL;
    assert_int_equal(pz_hmac_key_new(NULL, 3, &hk), PZ_EINVAL);
    assert_null(hk);
    assert_int_equal(pz_hmac_key_new(NULL, 0, &hk), 0); /* an empty key is a key */
    assert_int_equal(pz_hmac_key_sign(hk, many, PZ_IOV_MAX + 1, mac1), PZ_EINVAL);
    assert_int_equal(pz_hmac_key_sign(NULL, NULL, 0, mac1), PZ_EINVAL);
    assert_int_equal(pz_hmac_key_verify(hk, NULL, 0, NULL, 32), PZ_ECRYPTO);
    pz_hmac_key_free(hk);
    pz_hmac_key_free(NULL);
    pz_verify_key_free(vk);
    pz_sign_key_free(sk);

    /* Nonces: unpredictable bytes, arguments checked. */
    uint8_t n1[16] = {0}, n2[16] = {0};
    assert_int_equal(pz_crypto_nonce(n1, sizeof(n1)), 0);
    assert_int_equal(pz_crypto_nonce(n2, sizeof(n2)), 0);
    assert_false(pz_crypto_memeq(n1, n2, sizeof(n1)));
    assert_int_equal(pz_crypto_nonce(NULL, 4), PZ_EINVAL);
    assert_int_equal(pz_crypto_nonce(NULL, 0), 0);
}

static void test_hash_and_utils(void **state)
{
    (void)state;
    size_t n;
    g_autofree uint8_t *abc = unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", &n);
    g_autofree uint8_t *empty = unhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", &n);
    uint8_t out[32];
    pz_iov iov[2] = {{"a", 1}, {"bc", 2}};
    assert_int_equal(pz_sha256(iov, 2, out), 0);
    assert_memory_equal(out, abc, 32);
    assert_int_equal(pz_sha256(NULL, 0, out), 0);
    assert_memory_equal(out, empty, 32);
    assert_int_equal(pz_sha256(NULL, 1, out), PZ_EINVAL);
    assert_int_equal(pz_sha256(iov, PZ_IOV_MAX + 1, out), PZ_EINVAL);
    assert_int_equal(pz_hmac_sha256("k", 1, iov, PZ_IOV_MAX, out), PZ_EINVAL);
    assert_int_equal(pz_hmac_sha256(NULL, 1, iov, 1, out), PZ_EINVAL);
    /* RFC 4231 test case 2. */
    g_autofree uint8_t *want = unhex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", &n);
    pz_iov m = {"what do ya want for nothing?", 28};
    assert_int_equal(pz_hmac_sha256("Jefe", 4, &m, 1, out), 0);
    assert_memory_equal(out, want, 32);
    /* Empty key and empty message. */
    assert_int_equal(pz_hmac_sha256(NULL, 0, NULL, 0, out), 0);

    uint8_t a[8] = {1, 2, 3, 4, 5, 6, 7, 8}, b[8];
    memcpy(b, a, 8);
    assert_true(pz_crypto_memeq(a, b, 8));
    b[7] ^= 0x80;
    assert_false(pz_crypto_memeq(a, b, 8));
    assert_true(pz_crypto_memeq(a, b, 0));
    pz_crypto_wipe(a, 8);
    for (int i = 0; i < 8; i++)
        assert_int_equal(a[i], 0);
    pz_crypto_wipe(NULL, 8);
    assert_int_equal(pz_crypto_random(NULL, 4), PZ_EINVAL);
    assert_int_equal(pz_crypto_random(a, 8), 0);
    uint8_t *s = pz_crypto_secure_alloc(48);
    assert_non_null(s);
    for (int i = 0; i < 48; i++)
        assert_int_equal(s[i], 0);
    pz_crypto_secure_free(s);
    pz_crypto_secure_free(NULL);
    assert_int_equal(pz_crypto_init(), 0); /* idempotent */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wycheproof_x25519),
        cmocka_unit_test(test_x25519_public),
        cmocka_unit_test(test_wycheproof_ed25519),
        cmocka_unit_test(test_ed25519_sign),
        cmocka_unit_test(test_wycheproof_chacha20_poly1305),
        cmocka_unit_test(test_wycheproof_aes_gcm),
        cmocka_unit_test(test_aead_bad_args),
        cmocka_unit_test(test_wycheproof_hkdf),
        cmocka_unit_test(test_hkdf_pieces),
        cmocka_unit_test(test_wycheproof_hmac),
        cmocka_unit_test(test_prepared_keys),
        cmocka_unit_test(test_hash_and_utils),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
