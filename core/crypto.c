/* core/crypto.c — the crypto seam: libgcrypt (AEAD, hashes, randomness,
 * secure memory), nettle (HMAC under HKDF, X25519), GnuTLS abstract keys
 * (Ed25519). See crypto.h and docs/internals/crypto.md. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <gcrypt.h>
#include <glib.h>
#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <nettle/curve25519.h>
#include <nettle/eddsa.h>
#include <nettle/hmac.h>

#include <prozsec/error.h>

#include "crypto.h"

/* libgcrypt version we need at run time: the one we were built against. */
#define PZ_GCRYPT_NEED GCRYPT_VERSION

/* Secure memory: 1 MiB locked up front, grown in 1 MiB steps on demand
 * (one cipher handle takes a few hundred bytes of it while in use). */
#define PZ_SECMEM_SIZE (1u << 20)

static gsize crypto_once;
static int crypto_init_rc;

static int crypto_do_init(void)
{
    if (!gcry_check_version(PZ_GCRYPT_NEED))
        return PZ_ECRYPTO;
    if (gcry_control(GCRYCTL_INITIALIZATION_FINISHED_P))
        return 0; /* someone else set libgcrypt up (e.g. coresvc); that is fine */
    /* Without CAP_IPC_LOCK the pool cannot be locked: libgcrypt would then
     * warn on every allocation. We still get wipe-on-free. */
    gcry_control(GCRYCTL_DISABLE_SECMEM_WARN, 0);
    gcry_control(GCRYCTL_AUTO_EXPAND_SECMEM, PZ_SECMEM_SIZE, 0);
    if (gcry_control(GCRYCTL_INIT_SECMEM, PZ_SECMEM_SIZE, 0))
        return PZ_ECRYPTO;
    gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
    return 0;
}

int pz_crypto_init(void)
{
    if (g_once_init_enter(&crypto_once)) {
        crypto_init_rc = crypto_do_init();
        g_once_init_leave(&crypto_once, 1);
    }
    return crypto_init_rc;
}

int pz_crypto_random(void *buf, size_t len)
{
    if (!buf && len)
        return PZ_EINVAL;
    if (len)
        gcry_randomize(buf, len, GCRY_STRONG_RANDOM);
    return 0;
}

int pz_crypto_nonce(void *buf, size_t len)
{
    if (!buf && len)
        return PZ_EINVAL;
    if (pz_crypto_init() != 0)
        return PZ_ECRYPTO;
    if (len)
        gcry_create_nonce(buf, len);
    return 0;
}

void pz_crypto_wipe(void *buf, size_t len)
{
    if (buf && len)
        explicit_bzero(buf, len);
}

int pz_crypto_memeq(const void *a, const void *b, size_t len)
{
    const volatile uint8_t *x = a, *y = b;
    uint8_t d = 0;
    for (size_t i = 0; i < len; i++)
        d |= x[i] ^ y[i];
    return d == 0;
}

void *pz_crypto_secure_alloc(size_t len)
{
    void *p = gcry_malloc_secure(len ? len : 1);
    if (p)
        memset(p, 0, len ? len : 1);
    return p;
}

void pz_crypto_secure_free(void *ptr)
{
    /* libgcrypt wipes secure memory in gcry_free. */
    gcry_free(ptr);
}

/* --- hashes, HMAC, HKDF ------------------------------------------------- */

static void to_gcry_iov(gcry_buffer_t *g, const pz_iov *iov, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        g[i].size = 0;
        g[i].off = 0;
        g[i].len = iov[i].len;
        g[i].data = (void *)iov[i].base;
    }
}

int pz_sha256(const pz_iov *iov, size_t n, uint8_t out[PZ_SHA256_LEN])
{
    gcry_buffer_t g[PZ_IOV_MAX];
    if (n > PZ_IOV_MAX || (n && !iov))
        return PZ_EINVAL;
    to_gcry_iov(g, iov, n);
    if (n == 0) {
        gcry_md_hash_buffer(GCRY_MD_SHA256, out, "", 0);
        return 0;
    }
    return gcry_md_hash_buffers(GCRY_MD_SHA256, 0, out, g, (int)n) ? PZ_ECRYPTO : 0;
}

/* Absorb the pieces into the keyed CTX, write the MAC, wipe CTX. */
static void hmac_finish(struct hmac_sha256_ctx *ctx, const pz_iov *iov, size_t n, uint8_t out[PZ_SHA256_LEN])
{
    for (size_t i = 0; i < n; i++)
        if (iov[i].len)
            hmac_sha256_update(ctx, iov[i].len, iov[i].base);
    hmac_sha256_digest(ctx, PZ_SHA256_LEN, out);
    pz_crypto_wipe(ctx, sizeof(*ctx));
}

int pz_hmac_sha256(const void *key, size_t key_len, const pz_iov *iov, size_t n, uint8_t out[PZ_SHA256_LEN])
{
    struct hmac_sha256_ctx ctx;

    if (n > PZ_IOV_MAX - 1 || (n && !iov) || (key_len && !key) || !out)
        return PZ_EINVAL;
    /* nettle's HMAC keeps its state on our stack: no allocation, and we
     * wipe the key-dependent state ourselves (docs/internals/crypto.md has
     * the measurements behind taking HMAC from nettle). */
    hmac_sha256_set_key(&ctx, key_len, key_len ? key : (const void *)"");
    hmac_finish(&ctx, iov, n, out);
    return 0;
}

struct pz_hmac_key {
    struct hmac_sha256_ctx ready; /* keyed: inner/outer pads applied, state = inner */
};

int pz_hmac_key_new(const void *key, size_t key_len, pz_hmac_key **out)
{
    pz_hmac_key *k;
    int rc;

    if (!out)
        return PZ_EINVAL;
    *out = NULL;
    if (key_len && !key)
        return PZ_EINVAL;
    rc = pz_crypto_init();
    if (rc)
        return rc;
    k = pz_crypto_secure_alloc(sizeof(*k));
    if (!k)
        return PZ_ENOMEM;
    hmac_sha256_set_key(&k->ready, key_len, key_len ? key : (const void *)"");
    *out = k;
    return 0;
}

void pz_hmac_key_free(pz_hmac_key *key)
{
    pz_crypto_secure_free(key); /* wiped by libgcrypt */
}

/* HMAC of the pieces on a stack copy of the prepared state (so KEY stays
 * read-only and shareable); the copy is wiped. */
static int hmac_key_run(const pz_hmac_key *key, const pz_iov *iov, size_t n, uint8_t out[PZ_SHA256_LEN])
{
    struct hmac_sha256_ctx ctx;

    if (!key || n > PZ_IOV_MAX || (n && !iov))
        return PZ_EINVAL;
    memcpy(&ctx, &key->ready, sizeof(ctx));
    hmac_finish(&ctx, iov, n, out);
    return 0;
}

int pz_hmac_key_sign(const pz_hmac_key *key, const pz_iov *iov, size_t n, uint8_t out[PZ_SHA256_LEN])
{
    if (!out)
        return PZ_EINVAL;
    return hmac_key_run(key, iov, n, out);
}

int pz_hmac_key_verify(const pz_hmac_key *key, const pz_iov *iov, size_t n, const uint8_t *tag, size_t tag_len)
{
    uint8_t mac[PZ_SHA256_LEN];
    int rc;

    if (!tag || tag_len != PZ_SHA256_LEN)
        return key && (n == 0 || iov) && n <= PZ_IOV_MAX ? PZ_ECRYPTO : PZ_EINVAL;
    rc = hmac_key_run(key, iov, n, mac);
    if (rc == 0 && !pz_crypto_memeq(mac, tag, PZ_SHA256_LEN))
        rc = PZ_ECRYPTO;
    pz_crypto_wipe(mac, sizeof(mac));
    return rc;
}

int pz_hkdf_sha256_extract(const void *salt, size_t salt_len, const pz_iov *ikm, size_t n,
                           uint8_t prk[PZ_SHA256_LEN])
{
    return pz_hmac_sha256(salt, salt_len, ikm, n, prk);
}

int pz_hkdf_sha256_expand(const uint8_t *prk, size_t prk_len, const pz_iov *info, size_t n, uint8_t *out,
                          size_t len)
{
    int rc = 0;
    uint8_t t[PZ_SHA256_LEN];
    pz_iov parts[PZ_IOV_MAX - 1];
    size_t done = 0;
    uint8_t counter = 0;

    if (len > PZ_HKDF_SHA256_MAX)
        return PZ_ERANGE;
    if (n > PZ_IOV_MAX - 3 || (n && !info) || (len && !out))
        return PZ_EINVAL;
    /* T(i) = HMAC(PRK, T(i-1) | info | i), T(0) empty. */
    while (done < len) {
        size_t k = 0;
        counter++;
        if (counter > 1)
            parts[k++] = (pz_iov){t, sizeof(t)};
        for (size_t i = 0; i < n; i++)
            parts[k++] = info[i];
        parts[k++] = (pz_iov){&counter, 1};
        rc = pz_hmac_sha256(prk, prk_len, parts, k, t);
        if (rc)
            goto out;
        size_t take = len - done < sizeof(t) ? len - done : sizeof(t);
        memcpy(out + done, t, take);
        done += take;
    }
out:
    if (rc && out)
        pz_crypto_wipe(out, len);
    pz_crypto_wipe(t, sizeof(t));
    return rc;
}

int pz_hkdf_sha256(const void *salt, size_t salt_len, const void *ikm, size_t ikm_len, const void *info,
                   size_t info_len, uint8_t *out, size_t len)
{
    uint8_t prk[PZ_SHA256_LEN];
    pz_iov in = {ikm, ikm_len};
    pz_iov inf = {info, info_len};
    int rc;

    if (len > PZ_HKDF_SHA256_MAX)
        return PZ_ERANGE;
    rc = pz_hkdf_sha256_extract(salt, salt_len, &in, 1, prk);
    if (rc == 0)
        rc = pz_hkdf_sha256_expand(prk, sizeof(prk), &inf, 1, out, len);
    pz_crypto_wipe(prk, sizeof(prk));
    return rc;
}

/* --- AEAD --------------------------------------------------------------- */

size_t pz_aead_key_len(pz_aead_alg alg)
{
    switch (alg) {
    case PZ_AEAD_AES_128_GCM: return 16;
    case PZ_AEAD_AES_192_GCM: return 24;
    case PZ_AEAD_AES_256_GCM: return 32;
    case PZ_AEAD_CHACHA20_POLY1305: return 32;
    }
    return 0;
}

/* An AEAD handle keyed and nonced, its key schedule in secure memory. */
static int aead_start(pz_aead_alg alg, const uint8_t *key, const uint8_t *nonce, const void *aad,
                      size_t aad_len, gcry_cipher_hd_t *out)
{
    int algo, mode;
    gcry_cipher_hd_t h = NULL;

    switch (alg) {
    case PZ_AEAD_AES_128_GCM: algo = GCRY_CIPHER_AES128; mode = GCRY_CIPHER_MODE_GCM; break;
    case PZ_AEAD_AES_192_GCM: algo = GCRY_CIPHER_AES192; mode = GCRY_CIPHER_MODE_GCM; break;
    case PZ_AEAD_AES_256_GCM: algo = GCRY_CIPHER_AES256; mode = GCRY_CIPHER_MODE_GCM; break;
    case PZ_AEAD_CHACHA20_POLY1305: algo = GCRY_CIPHER_CHACHA20; mode = GCRY_CIPHER_MODE_POLY1305; break;
    default: return PZ_EINVAL;
    }
    if (!key || !nonce || (aad_len && !aad))
        return PZ_EINVAL;
    if (gcry_cipher_open(&h, algo, mode, GCRY_CIPHER_SECURE))
        return PZ_ENOMEM;
    if (gcry_cipher_setkey(h, key, pz_aead_key_len(alg)) || gcry_cipher_setiv(h, nonce, PZ_AEAD_NONCE_LEN) ||
        (aad_len && gcry_cipher_authenticate(h, aad, aad_len))) {
        gcry_cipher_close(h);
        return PZ_ECRYPTO;
    }
    *out = h;
    return 0;
}

int pz_aead_seal(pz_aead_alg alg, const uint8_t *key, const uint8_t nonce[PZ_AEAD_NONCE_LEN], const void *aad,
                 size_t aad_len, const uint8_t *pt, size_t pt_len, uint8_t *ct)
{
    gcry_cipher_hd_t h = NULL;
    int rc;

    if (!ct || (pt_len && !pt))
        return PZ_EINVAL;
    rc = aead_start(alg, key, nonce, aad, aad_len, &h);
    if (rc)
        return rc;
    if (pt_len) {
        gcry_error_t e = ct == pt ? gcry_cipher_encrypt(h, ct, pt_len, NULL, 0)
                                  : gcry_cipher_encrypt(h, ct, pt_len, pt, pt_len);
        if (e) {
            rc = PZ_ECRYPTO;
            goto out;
        }
    }
    if (gcry_cipher_gettag(h, ct + pt_len, PZ_AEAD_TAG_LEN))
        rc = PZ_ECRYPTO;
out:
    gcry_cipher_close(h);
    return rc;
}

int pz_aead_open(pz_aead_alg alg, const uint8_t *key, const uint8_t nonce[PZ_AEAD_NONCE_LEN], const void *aad,
                 size_t aad_len, const uint8_t *ct, size_t ct_len, uint8_t *pt)
{
    gcry_cipher_hd_t h = NULL;
    size_t pt_len;
    int rc;

    if (!ct || ct_len < PZ_AEAD_TAG_LEN || (ct_len > PZ_AEAD_TAG_LEN && !pt))
        return PZ_EINVAL;
    pt_len = ct_len - PZ_AEAD_TAG_LEN;
    rc = aead_start(alg, key, nonce, aad, aad_len, &h);
    if (rc)
        return rc;
    if (pt_len) {
        gcry_error_t e = ct == pt ? gcry_cipher_decrypt(h, pt, pt_len, NULL, 0)
                                  : gcry_cipher_decrypt(h, pt, pt_len, ct, pt_len);
        if (e) {
            rc = PZ_ECRYPTO;
            goto out;
        }
    }
    /* checktag compares in constant time. */
    if (gcry_cipher_checktag(h, ct + pt_len, PZ_AEAD_TAG_LEN))
        rc = PZ_ECRYPTO;
out:
    if (rc && pt_len)
        pz_crypto_wipe(pt, pt_len);
    gcry_cipher_close(h);
    return rc;
}

/* --- X25519 ------------------------------------------------------------- */

void pz_x25519_public(uint8_t pub[PZ_X25519_LEN], const uint8_t sk[PZ_X25519_LEN])
{
    /* nettle clamps the scalar itself. */
    curve25519_mul_g(pub, sk);
}

int pz_x25519(uint8_t shared[PZ_X25519_LEN], const uint8_t sk[PZ_X25519_LEN], const uint8_t pub[PZ_X25519_LEN])
{
    uint8_t u[PZ_X25519_LEN];
    static const uint8_t zero[PZ_X25519_LEN];

    /* RFC 7748 §5: mask the most significant bit of the u-coordinate;
     * nettle reduces values >= p. */
    memcpy(u, pub, sizeof(u));
    u[31] &= 0x7f;
    curve25519_mul(shared, sk, u);
    if (pz_crypto_memeq(shared, zero, PZ_X25519_LEN)) {
        pz_crypto_wipe(shared, PZ_X25519_LEN);
        return PZ_ECRYPTO;
    }
    return 0;
}

int pz_x25519_generate(uint8_t sk[PZ_X25519_LEN], uint8_t pub[PZ_X25519_LEN])
{
    int rc = pz_crypto_random(sk, PZ_X25519_LEN);
    if (rc == 0)
        pz_x25519_public(pub, sk);
    return rc;
}

/* --- Ed25519 ------------------------------------------------------------ */

struct pz_sign_key {
    GMutex lock; /* GnuTLS objects are not documented as shareable across threads */
    gnutls_privkey_t priv;
    uint8_t pub[PZ_ED25519_PUB_LEN];
    uint8_t *seed; /* secure memory */
};

struct pz_verify_key {
    GMutex lock;
    gnutls_pubkey_t pub;
    uint8_t raw[PZ_ED25519_PUB_LEN];
};

int pz_sign_key_new(const uint8_t seed[PZ_ED25519_SEED_LEN], pz_sign_key **out)
{
    int rc = 0;
    pz_sign_key *k = NULL;
    gnutls_datum_t x, d;

    *out = NULL;
    if (!seed)
        return PZ_EINVAL;
    rc = pz_crypto_init();
    if (rc)
        return rc;
    k = calloc(1, sizeof(*k));
    if (!k)
        return PZ_ENOMEM;
    g_mutex_init(&k->lock);
    k->seed = pz_crypto_secure_alloc(PZ_ED25519_SEED_LEN);
    if (!k->seed) {
        rc = PZ_ENOMEM;
        goto out;
    }
    memcpy(k->seed, seed, PZ_ED25519_SEED_LEN);
    /* The same derivation GnuTLS runs underneath (nettle's). */
    ed25519_sha512_public_key(k->pub, k->seed);
    if (gnutls_privkey_init(&k->priv) < 0) {
        k->priv = NULL;
        rc = PZ_ENOMEM;
        goto out;
    }
    x = (gnutls_datum_t){k->pub, PZ_ED25519_PUB_LEN};
    d = (gnutls_datum_t){k->seed, PZ_ED25519_SEED_LEN};
    if (gnutls_privkey_import_ecc_raw(k->priv, GNUTLS_ECC_CURVE_ED25519, &x, NULL, &d) < 0) {
        rc = PZ_ECRYPTO;
        goto out;
    }
    *out = k;
    k = NULL;
out:
    pz_sign_key_free(k);
    return rc;
}

int pz_sign_key_generate(pz_sign_key **out)
{
    uint8_t seed[PZ_ED25519_SEED_LEN];
    int rc;

    *out = NULL;
    rc = pz_crypto_init();
    if (rc == 0)
        rc = pz_crypto_random(seed, sizeof(seed));
    if (rc == 0)
        rc = pz_sign_key_new(seed, out);
    pz_crypto_wipe(seed, sizeof(seed));
    return rc;
}

void pz_sign_key_free(pz_sign_key *key)
{
    if (!key)
        return;
    if (key->priv)
        gnutls_privkey_deinit(key->priv); /* GnuTLS zeroises its copy */
    pz_crypto_secure_free(key->seed);
    g_mutex_clear(&key->lock);
    free(key);
}

const uint8_t *pz_sign_key_public(const pz_sign_key *key)
{
    return key->pub;
}

const uint8_t *pz_sign_key_seed(const pz_sign_key *key)
{
    return key->seed;
}

int pz_sign(pz_sign_key *key, const void *msg, size_t len, uint8_t sig[PZ_ED25519_SIG_LEN])
{
    gnutls_datum_t data = {(unsigned char *)(msg ? msg : ""), (unsigned int)len};
    gnutls_datum_t s = {NULL, 0};
    int rc = 0, r;

    if (!key || !sig || (len && !msg) || len > UINT32_MAX)
        return PZ_EINVAL;
    g_mutex_lock(&key->lock);
    r = gnutls_privkey_sign_data2(key->priv, GNUTLS_SIGN_EDDSA_ED25519, 0, &data, &s);
    g_mutex_unlock(&key->lock);
    if (r < 0 || s.size != PZ_ED25519_SIG_LEN)
        rc = PZ_ECRYPTO;
    else
        memcpy(sig, s.data, PZ_ED25519_SIG_LEN);
    gnutls_free(s.data);
    return rc;
}

int pz_verify_key_new(const uint8_t pub[PZ_ED25519_PUB_LEN], pz_verify_key **out)
{
    int rc = 0;
    pz_verify_key *k = NULL;
    gnutls_datum_t x;

    *out = NULL;
    if (!pub)
        return PZ_EINVAL;
    k = calloc(1, sizeof(*k));
    if (!k)
        return PZ_ENOMEM;
    g_mutex_init(&k->lock);
    memcpy(k->raw, pub, PZ_ED25519_PUB_LEN);
    if (gnutls_pubkey_init(&k->pub) < 0) {
        k->pub = NULL;
        rc = PZ_ENOMEM;
        goto out;
    }
    x = (gnutls_datum_t){k->raw, PZ_ED25519_PUB_LEN};
    if (gnutls_pubkey_import_ecc_raw(k->pub, GNUTLS_ECC_CURVE_ED25519, &x, NULL) < 0) {
        rc = PZ_ECRYPTO;
        goto out;
    }
    *out = k;
    k = NULL;
out:
    pz_verify_key_free(k);
    return rc;
}

void pz_verify_key_free(pz_verify_key *key)
{
    if (!key)
        return;
    if (key->pub)
        gnutls_pubkey_deinit(key->pub);
    g_mutex_clear(&key->lock);
    free(key);
}

const uint8_t *pz_verify_key_public(const pz_verify_key *key)
{
    return key->raw;
}

int pz_verify(pz_verify_key *key, const void *msg, size_t len, const uint8_t *sig, size_t sig_len)
{
    gnutls_datum_t data = {(unsigned char *)(msg ? msg : ""), (unsigned int)len};
    gnutls_datum_t s = {(unsigned char *)sig, PZ_ED25519_SIG_LEN};
    int r;

    if (!key || (len && !msg) || len > UINT32_MAX)
        return PZ_EINVAL;
    if (!sig || sig_len != PZ_ED25519_SIG_LEN)
        return PZ_ECRYPTO;
    g_mutex_lock(&key->lock);
    r = gnutls_pubkey_verify_data2(key->pub, GNUTLS_SIGN_EDDSA_ED25519, 0, &data, &s);
    g_mutex_unlock(&key->lock);
    return r < 0 ? PZ_ECRYPTO : 0;
}

/* Join the pieces into STACK (STACK_LEN bytes) or a heap buffer; *TOTAL
 * gets the length. NULL: PZ_EINVAL in *RC (bad pieces) or PZ_ENOMEM. */
static uint8_t *join_iov(const pz_iov *iov, size_t n, uint8_t *stack, size_t stack_len, size_t *total, int *rc)
{
    size_t len = 0;
    uint8_t *m;

    *rc = PZ_EINVAL;
    if (n > PZ_IOV_MAX || (n && !iov))
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if ((iov[i].len && !iov[i].base) || iov[i].len > UINT32_MAX - len)
            return NULL;
        len += iov[i].len;
    }
    m = len <= stack_len ? stack : malloc(len);
    if (!m) {
        *rc = PZ_ENOMEM;
        return NULL;
    }
    *total = 0;
    for (size_t i = 0; i < n; i++) {
        if (iov[i].len)
            memcpy(m + *total, iov[i].base, iov[i].len);
        *total += iov[i].len;
    }
    *rc = 0;
    return m;
}

#define JOIN_STACK 1024

int pz_sign_iov(pz_sign_key *key, const pz_iov *iov, size_t n, uint8_t sig[PZ_ED25519_SIG_LEN])
{
    uint8_t stack[JOIN_STACK];
    size_t total = 0;
    int rc;
    uint8_t *m = join_iov(iov, n, stack, sizeof(stack), &total, &rc);

    if (!m)
        return rc;
    rc = pz_sign(key, m, total, sig);
    if (m != stack)
        free(m);
    return rc;
}

int pz_verify_iov(pz_verify_key *key, const pz_iov *iov, size_t n, const uint8_t *sig, size_t sig_len)
{
    uint8_t stack[JOIN_STACK];
    size_t total = 0;
    int rc;
    uint8_t *m;

    if (!key)
        return PZ_EINVAL;
    if (!sig || sig_len != PZ_ED25519_SIG_LEN)
        return PZ_ECRYPTO;
    m = join_iov(iov, n, stack, sizeof(stack), &total, &rc);
    if (!m)
        return rc;
    rc = pz_verify(key, m, total, sig, sig_len);
    if (m != stack)
        free(m);
    return rc;
}
