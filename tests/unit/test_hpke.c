/* tests/unit/test_hpke.c — core/hpke.c against every entry of the RFC 9180
 * vectors in tests/vectors/hpke/rfc9180-x25519.json (base and auth modes,
 * all encryptions and exports, with the vectors' ephemeral keys derived
 * from ikmE), plus round trips and every refusal. */
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

#include "hpke.h"

#ifndef PZ_TEST_VECTORS_DIR
#define PZ_TEST_VECTORS_DIR "tests/vectors"
#endif

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

static void expect_member(JsonObject *o, const char *name, const uint8_t *got, size_t got_len)
{
    size_t n;
    g_autofree uint8_t *want = member_hex(o, name, &n);
    assert_int_equal(n, got_len);
    assert_memory_equal(got, want, n);
}

static int setup(void **state)
{
    (void)state;
    return pz_crypto_init();
}

static void test_rfc9180_vectors(void **state)
{
    (void)state;
    const char *dir = g_getenv("PZ_VECTORS_DIR");
    g_autofree char *path = g_build_filename(dir ? dir : PZ_TEST_VECTORS_DIR, "hpke", "rfc9180-x25519.json", NULL);
    JsonParser *p = json_parser_new();
    GError *gerr = NULL;
    unsigned n_base = 0, n_auth = 0, n_enc = 0, n_exp = 0;

    if (!json_parser_load_from_file(p, path, &gerr))
        fail_msg("%s: %s", path, gerr->message);
    JsonArray *entries = json_node_get_array(json_parser_get_root(p));
    for (guint e = 0; e < json_array_get_length(entries); e++) {
        JsonObject *v = json_array_get_object_element(entries, e);
        int mode = (int)json_object_get_int_member(v, "mode");
        pz_hpke_aead aead = (pz_hpke_aead)json_object_get_int_member(v, "aead_id");
        size_t n, info_len;
        uint8_t ske[32], pke[32], skr[32], pkr[32], sks[32], pks[32], enc[32];
        pz_hpke_ctx s, r;

        assert_int_equal(json_object_get_int_member(v, "kem_id"), PZ_HPKE_KEM_X25519_SHA256);
        assert_int_equal(json_object_get_int_member(v, "kdf_id"), PZ_HPKE_KDF_HKDF_SHA256);
        assert_true(mode == PZ_HPKE_MODE_BASE || mode == PZ_HPKE_MODE_AUTH);

        g_autofree uint8_t *ikme = member_hex(v, "ikmE", &n);
        assert_int_equal(pz_hpke_derive_key_pair(ikme, n, ske, pke), 0);
        expect_member(v, "skEm", ske, 32);
        expect_member(v, "pkEm", pke, 32);
        g_autofree uint8_t *ikmr = member_hex(v, "ikmR", &n);
        assert_int_equal(pz_hpke_derive_key_pair(ikmr, n, skr, pkr), 0);
        expect_member(v, "skRm", skr, 32);
        expect_member(v, "pkRm", pkr, 32);
        if (mode == PZ_HPKE_MODE_AUTH) {
            g_autofree uint8_t *ikms = member_hex(v, "ikmS", &n);
            assert_int_equal(pz_hpke_derive_key_pair(ikms, n, sks, pks), 0);
            expect_member(v, "skSm", sks, 32);
            expect_member(v, "pkSm", pks, 32);
            n_auth++;
        } else {
            n_base++;
        }
        int auth = mode == PZ_HPKE_MODE_AUTH;
        g_autofree uint8_t *info = member_hex(v, "info", &info_len);

        assert_int_equal(pz_hpke_setup_sender(&s, aead, pkr, info, info_len, ske, auth ? sks : NULL,
                                              auth ? pks : NULL, enc),
                         0);
        expect_member(v, "enc", enc, 32);
        expect_member(v, "key", s.key, s.key_len);
        expect_member(v, "base_nonce", s.base_nonce, 12);
        uint8_t xs[32];
        assert_int_equal(pz_hpke_exporter_secret(&s, xs), 0);
        expect_member(v, "exporter_secret", xs, 32);
        expect_member(v, "secret", s.secret, 32);
        expect_member(v, "key_schedule_context", s.key_schedule_context, sizeof(s.key_schedule_context));
        assert_int_equal(pz_hpke_setup_recipient(&r, aead, enc, skr, pkr, info, info_len, auth ? pks : NULL), 0);
        assert_memory_equal(r.key, s.key, s.key_len);
        assert_memory_equal(r.secret, s.secret, 32);

        JsonArray *encs = json_object_get_array_member(v, "encryptions");
        for (guint i = 0; i < json_array_get_length(encs); i++) {
            JsonObject *x = json_array_get_object_element(encs, i);
            size_t aad_len, pt_len, ct_len;
            g_autofree uint8_t *aad = member_hex(x, "aad", &aad_len);
            g_autofree uint8_t *pt = member_hex(x, "pt", &pt_len);
            g_autofree uint8_t *ct = member_hex(x, "ct", &ct_len);
            g_autofree uint8_t *out = g_malloc(pt_len + 16);
            assert_int_equal(ct_len, pt_len + 16);
            assert_int_equal(pz_hpke_seal(&s, aad, aad_len, pt, pt_len, out), 0);
            if (memcmp(out, ct, ct_len))
                fail_msg("entry %u encryption %u: ciphertext differs", e, i);
            assert_int_equal(pz_hpke_open(&r, aad, aad_len, ct, ct_len, out), 0);
            assert_memory_equal(out, pt, pt_len);
            n_enc++;
        }
        JsonArray *exps = json_object_get_array_member(v, "exports");
        for (guint i = 0; i < json_array_get_length(exps); i++) {
            JsonObject *x = json_array_get_object_element(exps, i);
            size_t ctx_len, want_len;
            g_autofree uint8_t *ectx = member_hex(x, "exporter_context", &ctx_len);
            g_autofree uint8_t *want = member_hex(x, "exported_value", &want_len);
            size_t l = (size_t)json_object_get_int_member(x, "L");
            g_autofree uint8_t *out = g_malloc(l + 1);
            assert_int_equal(l, want_len);
            assert_int_equal(pz_hpke_export(&s, ectx, ctx_len, out, l), 0);
            assert_memory_equal(out, want, l);
            assert_int_equal(pz_hpke_export(&r, ectx, ctx_len, out, l), 0);
            assert_memory_equal(out, want, l);
            n_exp++;
        }
        pz_hpke_ctx_clear(&s);
        pz_hpke_ctx_clear(&r);
    }
    printf("# rfc9180-x25519.json: %u entries (%u base, %u auth): %u encryptions and %u exports passed, "
           "0 skipped\n",
           json_array_get_length(entries), n_base, n_auth, n_enc, n_exp);
    assert_int_equal(json_array_get_length(entries), 6);
    assert_int_equal(n_enc, 6 * 257);
    assert_int_equal(n_exp, 6 * 3);
    g_object_unref(p);
}

static void test_round_trips(void **state)
{
    (void)state;
    static const pz_hpke_aead aeads[] = {PZ_HPKE_AEAD_AES_128_GCM, PZ_HPKE_AEAD_AES_256_GCM,
                                         PZ_HPKE_AEAD_CHACHA20_POLY1305};
    uint8_t skr[32], pkr[32], sks[32], pks[32], enc[32];
    uint8_t msg[100], ct[116], pt[100];
    pz_hpke_ctx s, r;

    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)i;
    assert_int_equal(pz_x25519_generate(skr, pkr), 0);
    assert_int_equal(pz_x25519_generate(sks, pks), 0);
    for (size_t a = 0; a < 3; a++) {
        for (int auth = 0; auth < 2; auth++) {
            assert_int_equal(pz_hpke_setup_sender(&s, aeads[a], pkr, (const uint8_t *)"info", 4, NULL,
                                                  auth ? sks : NULL, auth ? pks : NULL, enc),
                             0);
            assert_int_equal(pz_hpke_setup_recipient(&r, aeads[a], enc, skr, pkr, (const uint8_t *)"info", 4,
                                                     auth ? pks : NULL),
                             0);
            for (int k = 0; k < 3; k++) {
                assert_int_equal(pz_hpke_seal(&s, "ad", 2, msg, sizeof(msg), ct), 0);
                assert_int_equal(pz_hpke_open(&r, "ad", 2, ct, sizeof(ct), pt), 0);
                assert_memory_equal(pt, msg, sizeof(msg));
            }
            /* Wrong AAD, a flipped bit, a replayed (earlier) message: refused,
             * and the failed opens do not advance the sequence. */
            assert_int_equal(pz_hpke_seal(&s, "ad", 2, msg, sizeof(msg), ct), 0);
            assert_int_equal(pz_hpke_open(&r, "AD", 2, ct, sizeof(ct), pt), PZ_ECRYPTO);
            for (size_t k = 0; k < sizeof(pt); k++)
                assert_int_equal(pt[k], 0);
            ct[50] ^= 1;
            assert_int_equal(pz_hpke_open(&r, "ad", 2, ct, sizeof(ct), pt), PZ_ECRYPTO);
            ct[50] ^= 1;
            assert_int_equal(pz_hpke_open(&r, "ad", 2, ct, sizeof(ct), pt), 0);
            assert_int_equal(pz_hpke_open(&r, "ad", 2, ct, sizeof(ct), pt), PZ_ECRYPTO);
            pz_hpke_ctx_clear(&s);
            pz_hpke_ctx_clear(&r);
        }
    }

    /* Different info, mode or sender key: different keys. */
    assert_int_equal(pz_hpke_setup_sender(&s, PZ_HPKE_AEAD_CHACHA20_POLY1305, pkr, (const uint8_t *)"a", 1, NULL,
                                          NULL, NULL, enc),
                     0);
    assert_int_equal(pz_hpke_seal(&s, NULL, 0, msg, 10, ct), 0);
    assert_int_equal(
        pz_hpke_setup_recipient(&r, PZ_HPKE_AEAD_CHACHA20_POLY1305, enc, skr, pkr, (const uint8_t *)"b", 1, NULL),
        0);
    assert_int_equal(pz_hpke_open(&r, NULL, 0, ct, 26, pt), PZ_ECRYPTO);
    assert_int_equal(
        pz_hpke_setup_recipient(&r, PZ_HPKE_AEAD_CHACHA20_POLY1305, enc, skr, pkr, (const uint8_t *)"a", 1, pks),
        0);
    assert_int_equal(pz_hpke_open(&r, NULL, 0, ct, 26, pt), PZ_ECRYPTO);
    assert_int_equal(
        pz_hpke_setup_recipient(&r, PZ_HPKE_AEAD_AES_256_GCM, enc, skr, pkr, (const uint8_t *)"a", 1, NULL), 0);
    assert_int_equal(pz_hpke_open(&r, NULL, 0, ct, 26, pt), PZ_ECRYPTO);
    pz_hpke_ctx_clear(&s);
    pz_hpke_ctx_clear(&r);
}

static void test_refusals(void **state)
{
    (void)state;
    uint8_t skr[32], pkr[32], enc[32], buf[64], low[32] = {0};
    pz_hpke_ctx c;

    assert_int_equal(pz_x25519_generate(skr, pkr), 0);
    /* Unknown AEAD, NULL arguments, half an auth key pair. */
    assert_int_equal(pz_hpke_setup_sender(&c, (pz_hpke_aead)4, pkr, NULL, 0, NULL, NULL, NULL, enc), PZ_EINVAL);
    assert_false(c.ready);
    assert_int_equal(pz_hpke_setup_sender(&c, (pz_hpke_aead)0, pkr, NULL, 0, NULL, NULL, NULL, enc), PZ_EINVAL);
    assert_int_equal(pz_hpke_setup_sender(NULL, PZ_HPKE_AEAD_AES_128_GCM, pkr, NULL, 0, NULL, NULL, NULL, enc),
                     PZ_EINVAL);
    assert_int_equal(pz_hpke_setup_sender(&c, PZ_HPKE_AEAD_AES_128_GCM, NULL, NULL, 0, NULL, NULL, NULL, enc),
                     PZ_EINVAL);
    assert_int_equal(pz_hpke_setup_sender(&c, PZ_HPKE_AEAD_AES_128_GCM, pkr, NULL, 3, NULL, NULL, NULL, enc),
                     PZ_EINVAL);
    assert_int_equal(pz_hpke_setup_sender(&c, PZ_HPKE_AEAD_AES_128_GCM, pkr, NULL, 0, NULL, skr, NULL, enc),
                     PZ_EINVAL);
    assert_int_equal(pz_hpke_setup_sender(&c, PZ_HPKE_AEAD_AES_128_GCM, pkr, NULL, 0, NULL, NULL, NULL, NULL),
                     PZ_EINVAL);
    assert_int_equal(pz_hpke_setup_recipient(&c, (pz_hpke_aead)7, pkr, skr, pkr, NULL, 0, NULL), PZ_EINVAL);
    assert_int_equal(pz_hpke_setup_recipient(&c, PZ_HPKE_AEAD_AES_128_GCM, NULL, skr, pkr, NULL, 0, NULL),
                     PZ_EINVAL);
    assert_int_equal(pz_hpke_setup_recipient(&c, PZ_HPKE_AEAD_AES_128_GCM, pkr, NULL, pkr, NULL, 0, NULL),
                     PZ_EINVAL);
    assert_int_equal(pz_hpke_setup_recipient(NULL, PZ_HPKE_AEAD_AES_128_GCM, pkr, skr, pkr, NULL, 0, NULL),
                     PZ_EINVAL);
    /* Low-order public keys: the DH would be zero (RFC 9180 §7.1.4). */
    assert_int_equal(pz_hpke_setup_sender(&c, PZ_HPKE_AEAD_AES_128_GCM, low, NULL, 0, NULL, NULL, NULL, enc),
                     PZ_ECRYPTO);
    assert_false(c.ready);
    assert_int_equal(pz_hpke_setup_recipient(&c, PZ_HPKE_AEAD_AES_128_GCM, low, skr, pkr, NULL, 0, NULL),
                     PZ_ECRYPTO);
    assert_int_equal(pz_hpke_setup_recipient(&c, PZ_HPKE_AEAD_AES_128_GCM, pkr, skr, pkr, NULL, 0, low),
                     PZ_ECRYPTO);
    /* A context not set up, or cleared. */
    memset(&c, 0, sizeof(c));
    assert_int_equal(pz_hpke_seal(&c, NULL, 0, buf, 4, buf), PZ_EINVAL);
    assert_int_equal(pz_hpke_open(&c, NULL, 0, buf, 20, buf), PZ_EINVAL);
    assert_int_equal(pz_hpke_export(&c, NULL, 0, buf, 4), PZ_EINVAL);
    assert_int_equal(pz_hpke_exporter_secret(&c, buf), PZ_EINVAL);
    assert_int_equal(pz_hpke_seal(NULL, NULL, 0, buf, 4, buf), PZ_EINVAL);
    assert_int_equal(pz_hpke_setup_sender(&c, PZ_HPKE_AEAD_AES_128_GCM, pkr, NULL, 0, NULL, NULL, NULL, enc), 0);
    /* Export: too long, bad arguments. */
    assert_int_equal(pz_hpke_export(&c, NULL, 0, buf, PZ_HKDF_SHA256_MAX + 1), PZ_ERANGE);
    assert_int_equal(pz_hpke_export(&c, NULL, 5, buf, 4), PZ_EINVAL);
    assert_int_equal(pz_hpke_export(&c, NULL, 0, NULL, 4), PZ_EINVAL);
    /* Sequence numbers exhausted. */
    c.seq = UINT64_MAX;
    assert_int_equal(pz_hpke_seal(&c, NULL, 0, buf, 4, buf), PZ_ERANGE);
    assert_int_equal(pz_hpke_open(&c, NULL, 0, buf, 20, buf), PZ_ERANGE);
    pz_hpke_ctx_clear(&c);
    assert_false(c.ready);
    assert_int_equal(pz_hpke_seal(&c, NULL, 0, buf, 4, buf), PZ_EINVAL);
    pz_hpke_ctx_clear(NULL);
    /* derive_key_pair arguments. */
    assert_int_equal(pz_hpke_derive_key_pair(NULL, 4, skr, pkr), PZ_EINVAL);
    assert_int_equal(pz_hpke_derive_key_pair(buf, 4, NULL, pkr), PZ_EINVAL);
    assert_int_equal(pz_hpke_aead_valid(PZ_HPKE_AEAD_CHACHA20_POLY1305), 1);
    assert_int_equal(pz_hpke_aead_valid((pz_hpke_aead)4), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc9180_vectors),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
