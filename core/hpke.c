/* core/hpke.c — RFC 9180 HPKE: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
 * AES-128-GCM / AES-256-GCM / ChaCha20-Poly1305; base and auth modes.
 * Section numbers below are RFC 9180's. */
#include "config.h"

#include <string.h>

#include "hpke.h"

#define HPKE_V1 "HPKE-v1"
#define HPKE_V1_LEN 7
#define KEM_SUITE_LEN 5   /* "KEM" || I2OSP(kem_id, 2) */
#define HPKE_SUITE_LEN 10 /* "HPKE" || kem_id || kdf_id || aead_id */
#define KSC_LEN (1 + 2 * PZ_SHA256_LEN)

static const uint8_t kem_suite[KEM_SUITE_LEN] = {'K', 'E', 'M', 0x00, 0x20};

int pz_hpke_aead_valid(pz_hpke_aead aead)
{
    return aead == PZ_HPKE_AEAD_AES_128_GCM || aead == PZ_HPKE_AEAD_AES_256_GCM ||
           aead == PZ_HPKE_AEAD_CHACHA20_POLY1305;
}

static void hpke_suite(uint8_t out[HPKE_SUITE_LEN], pz_hpke_aead aead)
{
    out[0] = 'H';
    out[1] = 'P';
    out[2] = 'K';
    out[3] = 'E';
    out[4] = 0x00;
    out[5] = 0x20;
    out[6] = 0x00;
    out[7] = 0x01;
    out[8] = (uint8_t)(aead >> 8);
    out[9] = (uint8_t)aead;
}

/* LabeledExtract(salt, label, ikm) = Extract(salt, "HPKE-v1" || suite_id ||
 * label || ikm), IKM given as N pieces (§4). */
static int labeled_extract(const uint8_t *suite, size_t suite_len, const void *salt, size_t salt_len,
                           const char *label, const pz_iov *ikm, size_t n, uint8_t prk[PZ_SHA256_LEN])
{
    pz_iov parts[PZ_IOV_MAX];
    size_t k = 0;
    if (n > PZ_IOV_MAX - 4)
        return PZ_EINVAL;
    parts[k++] = (pz_iov){HPKE_V1, HPKE_V1_LEN};
    parts[k++] = (pz_iov){suite, suite_len};
    parts[k++] = (pz_iov){label, strlen(label)};
    for (size_t i = 0; i < n; i++)
        parts[k++] = ikm[i];
    return pz_hkdf_sha256_extract(salt, salt_len, parts, k, prk);
}

/* LabeledExpand(prk, label, info, L) = Expand(prk, I2OSP(L, 2) ||
 * "HPKE-v1" || suite_id || label || info, L) (§4). */
static int labeled_expand(const uint8_t *suite, size_t suite_len, const uint8_t *prk, const char *label,
                          const void *info, size_t info_len, uint8_t *out, size_t l)
{
    uint8_t l2[2] = {(uint8_t)(l >> 8), (uint8_t)l};
    pz_iov parts[5] = {
        {l2, 2}, {HPKE_V1, HPKE_V1_LEN}, {suite, suite_len}, {label, strlen(label)}, {info, info_len},
    };
    if (l > 0xffff)
        return PZ_ERANGE;
    return pz_hkdf_sha256_expand(prk, PZ_SHA256_LEN, parts, 5, out, l);
}

int pz_hpke_derive_key_pair(const uint8_t *ikm, size_t ikm_len, uint8_t sk[PZ_HPKE_SK_LEN],
                            uint8_t pk[PZ_HPKE_PK_LEN])
{
    uint8_t prk[PZ_SHA256_LEN];
    pz_iov in = {ikm, ikm_len};
    int rc;

    if ((!ikm && ikm_len) || !sk || !pk)
        return PZ_EINVAL;
    /* §7.1.3: for X25519 the secret key is the expanded bytes as they are
     * (X25519 clamps when it uses them). */
    rc = labeled_extract(kem_suite, KEM_SUITE_LEN, NULL, 0, "dkp_prk", &in, 1, prk);
    if (rc == 0)
        rc = labeled_expand(kem_suite, KEM_SUITE_LEN, prk, "sk", NULL, 0, sk, PZ_HPKE_SK_LEN);
    if (rc == 0)
        pz_x25519_public(pk, sk);
    pz_crypto_wipe(prk, sizeof(prk));
    return rc;
}

/* ExtractAndExpand(dh, kem_context) of §4.1. */
static int dhkem_extract_and_expand(const uint8_t *dh, size_t dh_len, const uint8_t *kem_context,
                                    size_t kc_len, uint8_t shared_secret[PZ_SHA256_LEN])
{
    uint8_t eae_prk[PZ_SHA256_LEN];
    pz_iov in = {dh, dh_len};
    int rc = labeled_extract(kem_suite, KEM_SUITE_LEN, NULL, 0, "eae_prk", &in, 1, eae_prk);
    if (rc == 0)
        rc = labeled_expand(kem_suite, KEM_SUITE_LEN, eae_prk, "shared_secret", kem_context, kc_len,
                            shared_secret, PZ_SHA256_LEN);
    pz_crypto_wipe(eae_prk, sizeof(eae_prk));
    return rc;
}

/* psk_id_hash = LabeledExtract("", "psk_id_hash", "") depends only on the
 * suite in the modes we implement (empty psk_id), so it is a constant per
 * AEAD; the RFC 9180 vectors' key_schedule_context checks these values. */
static const uint8_t psk_id_hash_table[4][PZ_SHA256_LEN] = {
    [PZ_HPKE_AEAD_AES_128_GCM] = {0x72, 0x56, 0x11, 0xc9, 0xd9, 0x8c, 0x07, 0xc0, 0x3f, 0x60, 0x09,
                                  0x5c, 0xd3, 0x2d, 0x40, 0x0d, 0x83, 0x47, 0xd4, 0x5e, 0xd6, 0x70,
                                  0x97, 0xbb, 0xad, 0x50, 0xfc, 0x56, 0xda, 0x74, 0x2d, 0x07},
    [PZ_HPKE_AEAD_AES_256_GCM] = {0x4c, 0xe5, 0x47, 0x2e, 0xcd, 0xd5, 0x09, 0x3b, 0xa0, 0xae, 0xcb,
                                  0x8f, 0x87, 0x1f, 0xf1, 0x3f, 0x1f, 0xbc, 0x90, 0xee, 0x76, 0xf0,
                                  0xe1, 0x8a, 0xce, 0x1a, 0x1b, 0x7e, 0x56, 0x5b, 0xaf, 0xa3},
    [PZ_HPKE_AEAD_CHACHA20_POLY1305] = {0x43, 0x1d, 0xf6, 0xcd, 0x95, 0xe1, 0x1f, 0xf4, 0x9d, 0x70, 0x13,
                                        0x56, 0x3b, 0xaf, 0x7f, 0x11, 0x58, 0x8c, 0x75, 0xa6, 0x61, 0x1e,
                                        0xe2, 0xa4, 0x40, 0x4a, 0x49, 0x30, 0x6a, 0xe4, 0xcf, 0xc5},
};

/* KeySchedule of §5.1 with default (empty) psk and psk_id. The exporter
 * secret is left for pz_hpke_export to derive. */
static int key_schedule(pz_hpke_ctx *ctx, pz_hpke_mode mode, pz_hpke_aead aead,
                        const uint8_t shared_secret[PZ_SHA256_LEN], const uint8_t *info, size_t info_len)
{
    uint8_t suite[HPKE_SUITE_LEN];
    uint8_t *ksc = ctx->key_schedule_context;
    pz_iov in = {info, info_len};
    int rc;

    hpke_suite(suite, aead);
    ksc[0] = (uint8_t)mode;
    memcpy(ksc + 1, psk_id_hash_table[aead], PZ_SHA256_LEN);
    rc = labeled_extract(suite, HPKE_SUITE_LEN, NULL, 0, "info_hash", &in, 1, ksc + 1 + PZ_SHA256_LEN);
    if (rc)
        return rc;
    rc = labeled_extract(suite, HPKE_SUITE_LEN, shared_secret, PZ_SHA256_LEN, "secret", NULL, 0, ctx->secret);
    if (rc)
        return rc;
    ctx->aead = aead;
    ctx->key_len = pz_aead_key_len((pz_aead_alg)aead);
    ctx->seq = 0;
    rc = labeled_expand(suite, HPKE_SUITE_LEN, ctx->secret, "key", ksc, KSC_LEN, ctx->key, ctx->key_len);
    if (rc == 0)
        rc = labeled_expand(suite, HPKE_SUITE_LEN, ctx->secret, "base_nonce", ksc, KSC_LEN, ctx->base_nonce,
                            PZ_AEAD_NONCE_LEN);
    if (rc == 0)
        ctx->ready = 1;
    return rc;
}

int pz_hpke_setup_sender(pz_hpke_ctx *ctx, pz_hpke_aead aead, const uint8_t pkr[PZ_HPKE_PK_LEN],
                         const uint8_t *info, size_t info_len, const uint8_t *ske, const uint8_t *sks,
                         const uint8_t *pks, uint8_t enc[PZ_HPKE_ENC_LEN])
{
    uint8_t sk_e[PZ_HPKE_SK_LEN];
    uint8_t dh[2 * PZ_X25519_LEN];
    uint8_t kem_context[3 * PZ_HPKE_PK_LEN];
    uint8_t shared_secret[PZ_SHA256_LEN];
    int auth = sks != NULL;
    int rc;

    if (!ctx)
        return PZ_EINVAL;
    memset(ctx, 0, sizeof(*ctx));
    if (!pz_hpke_aead_valid(aead) || !pkr || !enc || (!info && info_len) || (!sks != !pks))
        return PZ_EINVAL;
    /* Encap / AuthEncap (§4.1). */
    if (ske) {
        memcpy(sk_e, ske, sizeof(sk_e));
    } else {
        rc = pz_crypto_random(sk_e, sizeof(sk_e));
        if (rc)
            goto out;
    }
    pz_x25519_public(enc, sk_e);
    rc = pz_x25519(dh, sk_e, pkr);
    if (rc == 0 && auth)
        rc = pz_x25519(dh + PZ_X25519_LEN, sks, pkr);
    if (rc)
        goto out;
    memcpy(kem_context, enc, PZ_HPKE_ENC_LEN);
    memcpy(kem_context + PZ_HPKE_ENC_LEN, pkr, PZ_HPKE_PK_LEN);
    if (auth)
        memcpy(kem_context + PZ_HPKE_ENC_LEN + PZ_HPKE_PK_LEN, pks, PZ_HPKE_PK_LEN);
    rc = dhkem_extract_and_expand(dh, auth ? 2 * PZ_X25519_LEN : PZ_X25519_LEN, kem_context,
                                  auth ? 3 * PZ_HPKE_PK_LEN : 2 * PZ_HPKE_PK_LEN, shared_secret);
    if (rc == 0)
        rc = key_schedule(ctx, auth ? PZ_HPKE_MODE_AUTH : PZ_HPKE_MODE_BASE, aead, shared_secret, info, info_len);
out:
    if (rc)
        pz_hpke_ctx_clear(ctx);
    pz_crypto_wipe(sk_e, sizeof(sk_e));
    pz_crypto_wipe(dh, sizeof(dh));
    pz_crypto_wipe(shared_secret, sizeof(shared_secret));
    return rc;
}

int pz_hpke_setup_recipient(pz_hpke_ctx *ctx, pz_hpke_aead aead, const uint8_t enc[PZ_HPKE_ENC_LEN],
                            const uint8_t skr[PZ_HPKE_SK_LEN], const uint8_t pkr[PZ_HPKE_PK_LEN],
                            const uint8_t *info, size_t info_len, const uint8_t *pks)
{
    uint8_t dh[2 * PZ_X25519_LEN];
    uint8_t kem_context[3 * PZ_HPKE_PK_LEN];
    uint8_t shared_secret[PZ_SHA256_LEN];
    int auth = pks != NULL;
    int rc;

    if (!ctx)
        return PZ_EINVAL;
    memset(ctx, 0, sizeof(*ctx));
    if (!pz_hpke_aead_valid(aead) || !enc || !skr || !pkr || (!info && info_len))
        return PZ_EINVAL;
    /* Decap / AuthDecap (§4.1). */
    rc = pz_x25519(dh, skr, enc);
    if (rc == 0 && auth)
        rc = pz_x25519(dh + PZ_X25519_LEN, skr, pks);
    if (rc)
        goto out;
    memcpy(kem_context, enc, PZ_HPKE_ENC_LEN);
    memcpy(kem_context + PZ_HPKE_ENC_LEN, pkr, PZ_HPKE_PK_LEN);
    if (auth)
        memcpy(kem_context + PZ_HPKE_ENC_LEN + PZ_HPKE_PK_LEN, pks, PZ_HPKE_PK_LEN);
    rc = dhkem_extract_and_expand(dh, auth ? 2 * PZ_X25519_LEN : PZ_X25519_LEN, kem_context,
                                  auth ? 3 * PZ_HPKE_PK_LEN : 2 * PZ_HPKE_PK_LEN, shared_secret);
    if (rc == 0)
        rc = key_schedule(ctx, auth ? PZ_HPKE_MODE_AUTH : PZ_HPKE_MODE_BASE, aead, shared_secret, info, info_len);
out:
    if (rc)
        pz_hpke_ctx_clear(ctx);
    pz_crypto_wipe(dh, sizeof(dh));
    pz_crypto_wipe(shared_secret, sizeof(shared_secret));
    return rc;
}

/* ComputeNonce(seq) of §5.2: base_nonce XOR I2OSP(seq, Nn). */
static void compute_nonce(const pz_hpke_ctx *ctx, uint8_t nonce[PZ_AEAD_NONCE_LEN])
{
    memcpy(nonce, ctx->base_nonce, PZ_AEAD_NONCE_LEN);
    for (int i = 0; i < 8; i++)
        nonce[PZ_AEAD_NONCE_LEN - 1 - i] ^= (uint8_t)(ctx->seq >> (8 * i));
}

int pz_hpke_seal(pz_hpke_ctx *ctx, const void *aad, size_t aad_len, const uint8_t *pt, size_t pt_len,
                 uint8_t *ct)
{
    uint8_t nonce[PZ_AEAD_NONCE_LEN];
    int rc;
    if (!ctx || !ctx->ready)
        return PZ_EINVAL;
    /* Our sequence numbers are 64-bit, well inside Nn = 96 bits; refuse to
     * wrap (§5.2 "MessageLimitReachedError"). */
    if (ctx->seq == UINT64_MAX)
        return PZ_ERANGE;
    compute_nonce(ctx, nonce);
    rc = pz_aead_seal((pz_aead_alg)ctx->aead, ctx->key, nonce, aad, aad_len, pt, pt_len, ct);
    if (rc == 0)
        ctx->seq++;
    return rc;
}

int pz_hpke_open(pz_hpke_ctx *ctx, const void *aad, size_t aad_len, const uint8_t *ct, size_t ct_len,
                 uint8_t *pt)
{
    uint8_t nonce[PZ_AEAD_NONCE_LEN];
    int rc;
    if (!ctx || !ctx->ready)
        return PZ_EINVAL;
    if (ctx->seq == UINT64_MAX)
        return PZ_ERANGE;
    compute_nonce(ctx, nonce);
    rc = pz_aead_open((pz_aead_alg)ctx->aead, ctx->key, nonce, aad, aad_len, ct, ct_len, pt);
    if (rc == 0)
        ctx->seq++;
    return rc;
}

int pz_hpke_exporter_secret(const pz_hpke_ctx *ctx, uint8_t out[PZ_SHA256_LEN])
{
    uint8_t suite[HPKE_SUITE_LEN];
    if (!ctx || !ctx->ready || !out)
        return PZ_EINVAL;
    hpke_suite(suite, ctx->aead);
    return labeled_expand(suite, HPKE_SUITE_LEN, ctx->secret, "exp", ctx->key_schedule_context, KSC_LEN, out,
                          PZ_SHA256_LEN);
}

int pz_hpke_export(const pz_hpke_ctx *ctx, const void *exporter_context, size_t context_len, uint8_t *out,
                   size_t l)
{
    uint8_t suite[HPKE_SUITE_LEN];
    uint8_t exporter_secret[PZ_SHA256_LEN];
    int rc;
    if (!ctx || !ctx->ready || (!exporter_context && context_len) || (!out && l))
        return PZ_EINVAL;
    if (l > PZ_HKDF_SHA256_MAX)
        return PZ_ERANGE;
    rc = pz_hpke_exporter_secret(ctx, exporter_secret);
    if (rc == 0) {
        hpke_suite(suite, ctx->aead);
        rc = labeled_expand(suite, HPKE_SUITE_LEN, exporter_secret, "sec", exporter_context, context_len, out, l);
    }
    pz_crypto_wipe(exporter_secret, sizeof(exporter_secret));
    return rc;
}

void pz_hpke_ctx_clear(pz_hpke_ctx *ctx)
{
    if (ctx)
        pz_crypto_wipe(ctx, sizeof(*ctx));
}
