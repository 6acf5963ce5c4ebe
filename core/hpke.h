/* core/hpke.h — Hybrid Public Key Encryption, RFC 9180, for the one KEM
 * and KDF prozsec uses: DHKEM(X25519, HKDF-SHA256) (kem_id 0x0020) and
 * HKDF-SHA256 (kdf_id 0x0001), with AES-128-GCM, AES-256-GCM or
 * ChaCha20-Poly1305 (aead_id 1, 2, 3). Modes: base (0) and auth (2); PSK
 * modes are not implemented.
 *
 * Built only on core/crypto.h. A context lives in caller-owned storage
 * (stack or struct); pz_hpke_ctx_clear() wipes it. A context is used by
 * one thread at a time; distinct contexts are independent.
 */
#ifndef PZ_CORE_HPKE_H
#define PZ_CORE_HPKE_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

#define PZ_HPKE_KEM_X25519_SHA256 0x0020
#define PZ_HPKE_KDF_HKDF_SHA256 0x0001
#define PZ_HPKE_ENC_LEN 32 /* Nenc: the encapsulated key (ephemeral public key) */
#define PZ_HPKE_SK_LEN 32  /* Nsk */
#define PZ_HPKE_PK_LEN 32  /* Npk */

/* AEAD identifiers, with the values of RFC 9180 §7.3 (and pz_aead_alg's). */
typedef enum pz_hpke_aead {
    PZ_HPKE_AEAD_AES_128_GCM = 0x0001,
    PZ_HPKE_AEAD_AES_256_GCM = 0x0002,
    PZ_HPKE_AEAD_CHACHA20_POLY1305 = 0x0003,
} pz_hpke_aead;

typedef enum pz_hpke_mode {
    PZ_HPKE_MODE_BASE = 0x00,
    PZ_HPKE_MODE_AUTH = 0x02,
} pz_hpke_mode;

/* An encryption context (RFC 9180 §5.2). Fields are readable for tests;
 * change them only through the functions below. */
typedef struct pz_hpke_ctx {
    pz_hpke_aead aead;
    size_t key_len;                         /* Nk */
    uint8_t key[PZ_AEAD_KEY_MAX];
    uint8_t base_nonce[PZ_AEAD_NONCE_LEN];
    uint64_t seq;                           /* next sequence number */
    /* The key schedule's secret and context: the exporter secret is derived
     * from them only when pz_hpke_export asks (sealing and opening never
     * need it, and skipping it saves an HMAC per set-up). */
    uint8_t secret[PZ_SHA256_LEN];
    uint8_t key_schedule_context[1 + 2 * PZ_SHA256_LEN];
    int ready;                              /* set up and not cleared */
} pz_hpke_ctx;

/* 1 when AEAD is one of the three above. */
int pz_hpke_aead_valid(pz_hpke_aead aead);

/* DeriveKeyPair(IKM) of DHKEM(X25519, HKDF-SHA256) (RFC 9180 §7.1.3).
 * IKM should hold at least 32 bytes of entropy. Returns 0 or PZ_EINVAL. */
int pz_hpke_derive_key_pair(const uint8_t *ikm, size_t ikm_len, uint8_t sk[PZ_HPKE_SK_LEN],
                            uint8_t pk[PZ_HPKE_PK_LEN]);

/* Sender set-up (SetupBaseS / SetupAuthS): encapsulate to PKR, derive the
 * context into CTX and write the 32-byte ENC. INFO binds application
 * context (may be empty). SKE is the ephemeral secret key — NULL for a
 * fresh one from the CSPRNG (tests pass one derived from the vectors'
 * ikmE). SKS/PKS is the sender's static key pair for auth mode, both NULL
 * for base mode. Returns 0; PZ_EINVAL (unknown AEAD, NULL argument);
 * PZ_ECRYPTO (PKR of low order: the shared secret would be zero). On error
 * CTX is cleared. */
int pz_hpke_setup_sender(pz_hpke_ctx *ctx, pz_hpke_aead aead, const uint8_t pkr[PZ_HPKE_PK_LEN],
                         const uint8_t *info, size_t info_len, const uint8_t *ske, const uint8_t *sks,
                         const uint8_t *pks, uint8_t enc[PZ_HPKE_ENC_LEN]);

/* Recipient set-up (SetupBaseR / SetupAuthR) from ENC with the recipient's
 * key pair SKR/PKR (PKR is passed so it is not recomputed per message) and
 * the same INFO. PKS is the sender's static public key for auth mode, NULL
 * for base mode. Returns 0, PZ_EINVAL or PZ_ECRYPTO (ENC of low order);
 * on error CTX is cleared. */
int pz_hpke_setup_recipient(pz_hpke_ctx *ctx, pz_hpke_aead aead, const uint8_t enc[PZ_HPKE_ENC_LEN],
                            const uint8_t skr[PZ_HPKE_SK_LEN], const uint8_t pkr[PZ_HPKE_PK_LEN],
                            const uint8_t *info, size_t info_len, const uint8_t *pks);

/* Seal the next message (ContextS.Seal): CT gets PT_LEN + 16 bytes (may
 * equal PT). Advances the sequence number. Returns 0, PZ_EINVAL (context
 * not set up) or PZ_ERANGE (sequence numbers exhausted). */
int pz_hpke_seal(pz_hpke_ctx *ctx, const void *aad, size_t aad_len, const uint8_t *pt, size_t pt_len,
                 uint8_t *ct);

/* Open the next message (ContextR.Open): PT gets CT_LEN - 16 bytes (may
 * equal CT). The sequence number advances only on success. Returns 0,
 * PZ_EINVAL, PZ_ERANGE or PZ_ECRYPTO (tag mismatch: PT zeroed). */
int pz_hpke_open(pz_hpke_ctx *ctx, const void *aad, size_t aad_len, const uint8_t *ct, size_t ct_len,
                 uint8_t *pt);

/* Secret export (Context.Export, RFC 9180 §5.3): L bytes into OUT from
 * EXPORTER_CONTEXT. L above 255 * 32 gives PZ_ERANGE. */
int pz_hpke_export(const pz_hpke_ctx *ctx, const void *exporter_context, size_t context_len, uint8_t *out,
                   size_t l);

/* The exporter_secret of the key schedule (RFC 9180 §5.1), for tests.
 * Returns 0 or PZ_EINVAL. */
int pz_hpke_exporter_secret(const pz_hpke_ctx *ctx, uint8_t out[PZ_SHA256_LEN]);

/* Wipe CTX (safe on a cleared or zeroed context). */
void pz_hpke_ctx_clear(pz_hpke_ctx *ctx);

#endif /* PZ_CORE_HPKE_H */
