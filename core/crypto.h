/* core/crypto.h — the one crypto seam of prozsec: every primitive the core
 * uses, each taken from the library where it is best, behind one interface.
 *
 *   AEAD, hashes, CSPRNG ........ libgcrypt
 *   HMAC-SHA256 ................. nettle (state on the stack; libgcrypt's
 *                                 one-shot HMAC costs an allocation and a
 *                                 wipe per call, which dominates the short
 *                                 inputs of HKDF: see docs/internals/crypto.md)
 *   HKDF ........................ RFC 5869, written over that HMAC
 *   keyed HMAC-SHA256 objects ... nettle (keyed once; the RPC mac mode)
 *   Ed25519 sign/verify ......... GnuTLS abstract keys (imported once, cached)
 *   X25519 ...................... nettle (curve25519_mul, curve25519_mul_g)
 *   nonces ...................... libgcrypt's nonce generator
 *
 * Callers never include gcrypt.h, gnutls or nettle headers for crypto; a
 * primitive can move to another library without touching them. Design
 * notes and measurements: docs/internals/crypto.md.
 *
 * Conventions: functions return 0 or a negative PZ_E* code (PZ_ECRYPTO for
 * a failed tag, signature or degenerate key agreement; PZ_EINVAL for a bad
 * argument; PZ_ENOMEM). Secret keys given to this module are borrowed;
 * secret keys it allocates live in libgcrypt secure memory and are wiped
 * when freed. Unless noted, functions are thread-safe (they share no
 * state); key objects serialise their own use with a mutex.
 *
 * pz_crypto_init() must have been called once before any other function
 * (it is idempotent and cheap after the first call); the key constructors
 * call it themselves.
 */
#ifndef PZ_CORE_CRYPTO_H
#define PZ_CORE_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include <prozsec/error.h>

#define PZ_SHA256_LEN 32
#define PZ_X25519_LEN 32
#define PZ_ED25519_PUB_LEN 32
#define PZ_ED25519_SEED_LEN 32
#define PZ_ED25519_SIG_LEN 64
#define PZ_AEAD_NONCE_LEN 12
#define PZ_AEAD_TAG_LEN 16
#define PZ_AEAD_KEY_MAX 32
#define PZ_HKDF_SHA256_MAX (255 * PZ_SHA256_LEN)

/* A borrowed piece of a message made of several buffers (hashing and HMAC
 * take a list of pieces, so callers never copy to concatenate). */
typedef struct pz_iov {
    const void *base;
    size_t len;
} pz_iov;

/* Most pieces one hash/HMAC/HKDF call accepts. */
#define PZ_IOV_MAX 12

/* --- set-up and utilities ----------------------------------------------- */

/* Initialise libgcrypt once per process: version check, 1 MiB of secure
 * memory (growing on demand), initialisation finished. Idempotent and
 * thread-safe (g_once); when someone else already finished libgcrypt's
 * initialisation it only checks the version. Returns 0 or PZ_ECRYPTO
 * (libgcrypt older than the one we were built against). */
int pz_crypto_init(void);

/* Fill BUF with LEN bytes from libgcrypt's CSPRNG (GCRY_STRONG_RANDOM). */
int pz_crypto_random(void *buf, size_t len);

/* Fill BUF with LEN unpredictable bytes for public values (ids, nonces,
 * hash salts) from libgcrypt's nonce generator: cheaper per call than
 * pz_crypto_random, never for keys. Returns 0 or PZ_EINVAL. */
int pz_crypto_nonce(void *buf, size_t len);

/* Overwrite LEN bytes at BUF with zeros in a way the compiler keeps. */
void pz_crypto_wipe(void *buf, size_t len);

/* 1 when the LEN bytes at A and B are equal, else 0; time depends on LEN
 * only. */
int pz_crypto_memeq(const void *a, const void *b, size_t len);

/* LEN zeroed bytes of libgcrypt secure memory, or NULL when exhausted.
 * Free with pz_crypto_secure_free (which wipes). */
void *pz_crypto_secure_alloc(size_t len);
void pz_crypto_secure_free(void *ptr);

/* --- hashes, HMAC, HKDF --------------------------------------------------- */

/* SHA-256 over the concatenation of the N (<= PZ_IOV_MAX) pieces IOV.
 * Returns 0 or PZ_EINVAL. */
int pz_sha256(const pz_iov *iov, size_t n, uint8_t out[PZ_SHA256_LEN]);

/* HMAC-SHA256 (RFC 2104) with KEY (any length, may be 0) over the N
 * (<= PZ_IOV_MAX - 1) pieces IOV. Returns 0 or PZ_EINVAL. */
int pz_hmac_sha256(const void *key, size_t key_len, const pz_iov *iov, size_t n, uint8_t out[PZ_SHA256_LEN]);

/* HKDF-Extract (RFC 5869 §2.2) with SHA-256: PRK = HMAC(SALT, IKM), where
 * IKM is the concatenation of N pieces and an empty SALT means 32 zero
 * bytes. */
int pz_hkdf_sha256_extract(const void *salt, size_t salt_len, const pz_iov *ikm, size_t n,
                           uint8_t prk[PZ_SHA256_LEN]);

/* HKDF-Expand (RFC 5869 §2.3) with SHA-256: LEN bytes of OKM from PRK and
 * INFO (the concatenation of N <= PZ_IOV_MAX - 3 pieces). LEN above
 * PZ_HKDF_SHA256_MAX (255 * 32) gives PZ_ERANGE and leaves OUT untouched. */
int pz_hkdf_sha256_expand(const uint8_t *prk, size_t prk_len, const pz_iov *info, size_t n, uint8_t *out,
                          size_t len);

/* Extract then expand, with single-buffer inputs. */
int pz_hkdf_sha256(const void *salt, size_t salt_len, const void *ikm, size_t ikm_len, const void *info,
                   size_t info_len, uint8_t *out, size_t len);

/* A HMAC-SHA256 key prepared once (inner and outer pad states computed at
 * creation, kept in secure memory), for many short messages under one key
 * (the RPC mac mode: one key per connection). Using it copies the prepared
 * state to the stack and wipes the copy, so a key is never written after
 * creation: thread-safe. */
typedef struct pz_hmac_key pz_hmac_key;

/* Prepare KEY (KEY_LEN bytes, borrowed; any length). Returns 0, PZ_EINVAL
 * or PZ_ENOMEM. */
int pz_hmac_key_new(const void *key, size_t key_len, pz_hmac_key **out);
/* Wipe and free; NULL is a no-op. */
void pz_hmac_key_free(pz_hmac_key *key);
/* HMAC-SHA256 under KEY of the concatenation of the N (<= PZ_IOV_MAX)
 * pieces IOV into OUT. Returns 0 or PZ_EINVAL. */
int pz_hmac_key_sign(const pz_hmac_key *key, const pz_iov *iov, size_t n, uint8_t out[PZ_SHA256_LEN]);
/* 0 when TAG (TAG_LEN bytes; anything but 32 is refused) is the HMAC of the
 * pieces, compared in constant time; else PZ_ECRYPTO (PZ_EINVAL for bad
 * arguments). */
int pz_hmac_key_verify(const pz_hmac_key *key, const pz_iov *iov, size_t n, const uint8_t *tag, size_t tag_len);

/* --- AEAD (96-bit nonces, 128-bit tags) ----------------------------------- */

typedef enum pz_aead_alg {
    PZ_AEAD_AES_128_GCM = 1,
    PZ_AEAD_AES_256_GCM = 2,
    PZ_AEAD_CHACHA20_POLY1305 = 3,
    PZ_AEAD_AES_192_GCM = 4, /* not used by HPKE; kept for the test vectors */
} pz_aead_alg;

/* Key length of ALG in bytes, 0 when ALG is unknown. */
size_t pz_aead_key_len(pz_aead_alg alg);

/* Encrypt PT (PT_LEN bytes) under KEY and the 12-byte NONCE, authenticating
 * AAD too; writes PT_LEN + 16 bytes (ciphertext then tag) to CT. CT may
 * equal PT (in place). Returns 0, PZ_EINVAL (unknown ALG) or PZ_ECRYPTO. */
int pz_aead_seal(pz_aead_alg alg, const uint8_t *key, const uint8_t nonce[PZ_AEAD_NONCE_LEN], const void *aad,
                 size_t aad_len, const uint8_t *pt, size_t pt_len, uint8_t *ct);

/* Check and decrypt CT (CT_LEN >= 16 bytes: ciphertext then tag) into PT
 * (CT_LEN - 16 bytes; may equal CT). Returns 0, PZ_EINVAL (unknown ALG,
 * CT_LEN < 16) or PZ_ECRYPTO when the tag does not match — then PT holds
 * zeros, never unauthenticated plaintext. */
int pz_aead_open(pz_aead_alg alg, const uint8_t *key, const uint8_t nonce[PZ_AEAD_NONCE_LEN], const void *aad,
                 size_t aad_len, const uint8_t *ct, size_t ct_len, uint8_t *pt);

/* --- X25519 (RFC 7748) -------------------------------------------------------- */

/* PUB = X25519(SK, 9): the public key of the secret scalar SK (clamped as
 * RFC 7748 says). */
void pz_x25519_public(uint8_t pub[PZ_X25519_LEN], const uint8_t sk[PZ_X25519_LEN]);

/* SHARED = X25519(SK, PUB). PUB's top bit is ignored and non-canonical
 * values are reduced, as RFC 7748 §5 says. Returns PZ_ECRYPTO (SHARED
 * zeroed) when the result is all zeros — a low-order PUB — as RFC 7748 §6.1
 * allows and HPKE's DHKEM requires. */
int pz_x25519(uint8_t shared[PZ_X25519_LEN], const uint8_t sk[PZ_X25519_LEN], const uint8_t pub[PZ_X25519_LEN]);

/* A fresh key pair from the CSPRNG. */
int pz_x25519_generate(uint8_t sk[PZ_X25519_LEN], uint8_t pub[PZ_X25519_LEN]);

/* --- Ed25519 (RFC 8032, pure) ------------------------------------------------ */

/* A signing key: the 32-byte seed in secure memory, its public key and the
 * GnuTLS key object imported once (so signing does not re-import). */
typedef struct pz_sign_key pz_sign_key;

/* Import SEED (borrowed; copied to secure memory). Returns 0, PZ_ENOMEM or
 * PZ_ECRYPTO. */
int pz_sign_key_new(const uint8_t seed[PZ_ED25519_SEED_LEN], pz_sign_key **out);
/* A fresh key from the CSPRNG. */
int pz_sign_key_generate(pz_sign_key **out);
/* Wipe and free; NULL is a no-op. */
void pz_sign_key_free(pz_sign_key *key);
/* The 32-byte public key, owned by KEY. */
const uint8_t *pz_sign_key_public(const pz_sign_key *key);
/* The 32-byte secret seed (secure memory owned by KEY), for writing the key
 * file. Never log it. */
const uint8_t *pz_sign_key_seed(const pz_sign_key *key);

/* Sign the LEN bytes at MSG: SIG gets 64 bytes. Thread-safe (the key's
 * mutex). Returns 0 or PZ_ECRYPTO. */
int pz_sign(pz_sign_key *key, const void *msg, size_t len, uint8_t sig[PZ_ED25519_SIG_LEN]);

/* A verification key: the GnuTLS public key imported once. */
typedef struct pz_verify_key pz_verify_key;

/* Import the 32-byte PUB. PZ_ECRYPTO when GnuTLS refuses it. */
int pz_verify_key_new(const uint8_t pub[PZ_ED25519_PUB_LEN], pz_verify_key **out);
void pz_verify_key_free(pz_verify_key *key);
const uint8_t *pz_verify_key_public(const pz_verify_key *key);

/* 0 when SIG (SIG_LEN bytes; anything but 64 is refused) is a valid
 * signature of MSG by KEY, else PZ_ECRYPTO. Thread-safe. */
int pz_verify(pz_verify_key *key, const void *msg, size_t len, const uint8_t *sig, size_t sig_len);

/* The same over the concatenation of the N (<= PZ_IOV_MAX) pieces IOV, for
 * domain-separated messages (a prefix and a payload): pieces of up to 1 KiB
 * in all are joined on the stack, larger ones in a temporary heap buffer
 * (PZ_ENOMEM when that fails; Ed25519 reads its message twice, so it needs
 * one buffer). */
int pz_sign_iov(pz_sign_key *key, const pz_iov *iov, size_t n, uint8_t sig[PZ_ED25519_SIG_LEN]);
int pz_verify_iov(pz_verify_key *key, const pz_iov *iov, size_t n, const uint8_t *sig, size_t sig_len);

#endif /* PZ_CORE_CRYPTO_H */
