/* tests/bench/bench-e2e.c — E2E envelopes: seal and open of 1 KiB messages
 * per second through the public API, next to a floor measured in the same
 * run: the raw primitives one seal+open needs, called straight on the
 * libraries in sequence (CSPRNG + ephemeral X25519 keygen, X25519, HKDF,
 * AEAD, Ed25519 sign over the envelope's size; then Ed25519 verify,
 * X25519, HKDF, AEAD open). The floor's HKDF runs on nettle's HMAC, as
 * the seam's does; a second floor row on libgcrypt's HMAC shows what that
 * choice is worth.
 *
 * Usage: bench-e2e [ITERATIONS] (default 2000 per round). Times are the
 * thread's CPU time (CLOCK_THREAD_CPUTIME_ID), so time spent descheduled on
 * a busy shared machine does not count; ops/s is per core. For the ratio,
 * one floor pair and one seal+open pair alternate operation by operation,
 * so drift hits both alike; figures are medians over rounds. Prints a
 * table and, for scripts, RESULT <name> <value> <unit> lines. Target:
 * seal+open <= 1.1 x floor. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gcrypt.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <nettle/curve25519.h>
#include <nettle/hmac.h>

#include <prozsec/e2e.h>

#include "crypto.h"
#include "err.h"
#include "nodekeys.h"
#include "../testutil.h"

#define MSG_LEN 1024
#define ROUNDS 7

static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void die(const char *what)
{
    fprintf(stderr, "bench-e2e: %s\n", what);
    exit(1);
}

/* --- the floor: raw primitives, no prozsec code in the loop ------------ */

typedef struct floor_state {
    gnutls_privkey_t sign_key;
    gnutls_pubkey_t verify_key;
    uint8_t r_sk[32], r_pk[32];
    uint8_t msg[MSG_LEN];
    uint8_t env[MSG_LEN + 256]; /* what gets signed: about an envelope's size */
    size_t signed_len;
} floor_state;

/* HKDF-SHA256 (RFC 5869): one extract, then expand to LEN <= 64 bytes (key
 * and nonce: two blocks), over nettle's HMAC — the one the seam uses — or,
 * for the reference row, over libgcrypt's one-shot HMAC. */
static void hkdf_raw(int gcry, const uint8_t *ikm, size_t ikm_len, uint8_t *okm, size_t len)
{
    static const uint8_t salt[32];
    uint8_t prk[32], t[64], c1 = 1, c2 = 2;
    if (gcry) {
        gcry_buffer_t ex[2] = {{0, 0, sizeof(salt), (void *)salt}, {0, 0, ikm_len, (void *)ikm}};
        gcry_buffer_t e1[3] = {{0, 0, 32, prk}, {0, 0, 4, (void *)"info"}, {0, 0, 1, &c1}};
        gcry_buffer_t e2[4] = {{0, 0, 32, prk}, {0, 0, 32, t}, {0, 0, 4, (void *)"info"}, {0, 0, 1, &c2}};
        gcry_md_hash_buffers(GCRY_MD_SHA256, GCRY_MD_FLAG_HMAC, prk, ex, 2);
        gcry_md_hash_buffers(GCRY_MD_SHA256, GCRY_MD_FLAG_HMAC, t, e1, 3);
        if (len > 32)
            gcry_md_hash_buffers(GCRY_MD_SHA256, GCRY_MD_FLAG_HMAC, t + 32, e2, 4);
    } else {
        struct hmac_sha256_ctx c;
        hmac_sha256_set_key(&c, sizeof(salt), salt);
        hmac_sha256_update(&c, ikm_len, ikm);
        hmac_sha256_digest(&c, 32, prk);
        hmac_sha256_set_key(&c, 32, prk);
        hmac_sha256_update(&c, 4, (const uint8_t *)"info");
        hmac_sha256_update(&c, 1, &c1);
        hmac_sha256_digest(&c, 32, t);
        if (len > 32) {
            hmac_sha256_set_key(&c, 32, prk);
            hmac_sha256_update(&c, 32, t);
            hmac_sha256_update(&c, 4, (const uint8_t *)"info");
            hmac_sha256_update(&c, 1, &c2);
            hmac_sha256_digest(&c, 32, t + 32);
        }
    }
    memcpy(okm, t, len);
}

static void aead_raw(int encrypt, const uint8_t key[32], const uint8_t nonce[12], uint8_t *buf, size_t len,
                     uint8_t tag[16])
{
    gcry_cipher_hd_t h;
    if (gcry_cipher_open(&h, GCRY_CIPHER_CHACHA20, GCRY_CIPHER_MODE_POLY1305, 0))
        die("gcry_cipher_open");
    gcry_cipher_setkey(h, key, 32);
    gcry_cipher_setiv(h, nonce, 12);
    gcry_cipher_authenticate(h, buf, 64); /* a header's worth of associated data */
    if (encrypt) {
        gcry_cipher_encrypt(h, buf + 64, len - 64, NULL, 0);
        gcry_cipher_gettag(h, tag, 16);
    } else {
        gcry_cipher_decrypt(h, buf + 64, len - 64, NULL, 0);
        if (gcry_cipher_checktag(h, tag, 16))
            die("floor: tag mismatch");
    }
    gcry_cipher_close(h);
}

/* One seal and one open made of the raw primitives (GCRY: HKDF over
 * libgcrypt's HMAC instead of nettle's). */
static void floor_once(floor_state *f, int gcry)
{
    uint8_t e_sk[32], e_pk[32], dh[32], dh2[32], okm[44], okm2[44], tag[16];
    gnutls_datum_t data = {f->env, (unsigned)f->signed_len}, sig = {NULL, 0};

    /* seal: ephemeral key, DH, HKDF, AEAD, sign */
    gcry_randomize(e_sk, sizeof(e_sk), GCRY_STRONG_RANDOM);
    curve25519_mul_g(e_pk, e_sk);
    curve25519_mul(dh, e_sk, f->r_pk);
    hkdf_raw(gcry, dh, 32, okm, sizeof(okm));
    memcpy(f->env + 64, f->msg, MSG_LEN);
    aead_raw(1, okm, okm + 32, f->env, 64 + MSG_LEN, tag);
    if (gnutls_privkey_sign_data2(f->sign_key, GNUTLS_SIGN_EDDSA_ED25519, 0, &data, &sig) < 0)
        die("floor: sign");
    /* open: verify, DH, HKDF, AEAD */
    if (gnutls_pubkey_verify_data2(f->verify_key, GNUTLS_SIGN_EDDSA_ED25519, 0, &data, &sig) < 0)
        die("floor: verify");
    curve25519_mul(dh2, f->r_sk, e_pk);
    hkdf_raw(gcry, dh2, 32, okm2, sizeof(okm2));
    aead_raw(0, okm2, okm2 + 32, f->env, 64 + MSG_LEN, tag);
    gnutls_free(sig.data);
}

static void floor_init(floor_state *f, size_t signed_len)
{
    uint8_t seed[32], pub[32];
    gnutls_datum_t k, x;
    pz_sign_key *sk = NULL;
    memset(f, 0, sizeof(*f));
    gcry_randomize(seed, sizeof(seed), GCRY_STRONG_RANDOM);
    if (pz_sign_key_new(seed, &sk))
        die("floor: key");
    memcpy(pub, pz_sign_key_public(sk), 32);
    pz_sign_key_free(sk);
    k = (gnutls_datum_t){seed, 32};
    x = (gnutls_datum_t){pub, 32};
    if (gnutls_privkey_init(&f->sign_key) < 0 ||
        gnutls_privkey_import_ecc_raw(f->sign_key, GNUTLS_ECC_CURVE_ED25519, &x, NULL, &k) < 0 ||
        gnutls_pubkey_init(&f->verify_key) < 0 ||
        gnutls_pubkey_import_ecc_raw(f->verify_key, GNUTLS_ECC_CURVE_ED25519, &x, NULL) < 0)
        die("floor: GnuTLS key import");
    gcry_randomize(f->r_sk, 32, GCRY_STRONG_RANDOM);
    curve25519_mul_g(f->r_pk, f->r_sk);
    memset(f->msg, 'm', sizeof(f->msg));
    f->signed_len = signed_len < sizeof(f->env) ? signed_len : sizeof(f->env);
}

static void floor_free(floor_state *f)
{
    gnutls_privkey_deinit(f->sign_key);
    gnutls_pubkey_deinit(f->verify_key);
}

/* --- prozsec ------------------------------------------------------------ */

typedef struct e2e_state {
    char *tmp;
    pz_e2e *alice, *bob;
    uint8_t msg[MSG_LEN];
} e2e_state;

static pz_e2e *make_node(const char *tmp, const char *id, uint8_t sign_pub[32], uint8_t e2e_pub[32],
                         const pz_e2e_options *o)
{
    g_autofree char *dir = g_build_filename(tmp, id, NULL);
    pz_e2e *e = NULL;
    GError *gerr = NULL;
    if (pz_nodekeys_generate(dir, 0, sign_pub, e2e_pub, NULL) || pz_e2e_new(id, dir, o, &e, &gerr))
        die("cannot create a node");
    return e;
}

static void e2e_init(e2e_state *s, uint32_t replay_capacity)
{
    uint8_t as[32], ae[32], bs[32], be[32];
    pz_e2e_options o;
    pz_e2e_options_init(&o);
    o.replay_capacity = replay_capacity;
    s->tmp = g_dir_make_tmp("pz-bench-e2e-XXXXXX", NULL);
    if (!s->tmp)
        die("no temporary directory");
    s->alice = make_node(s->tmp, "alice", as, ae, &o);
    s->bob = make_node(s->tmp, "bob", bs, be, &o);
    if (pz_e2e_add_peer(s->alice, "bob", bs, be, NULL) || pz_e2e_add_peer(s->bob, "alice", as, ae, NULL))
        die("add_peer");
    memset(s->msg, 'm', sizeof(s->msg));
}

static void e2e_free(e2e_state *s)
{
    pz_e2e_free(s->alice);
    pz_e2e_free(s->bob);
    pz_test_rm_rf(s->tmp);
    g_free(s->tmp);
}

static uint8_t *seal_once(e2e_state *s, uint64_t now, size_t *len)
{
    uint8_t *env = NULL;
    if (pz_e2e_seal(s->alice, "bob", NULL, s->msg, MSG_LEN, now, &env, len, NULL))
        die("seal failed");
    return env;
}

static void open_once(e2e_state *s, const uint8_t *env, size_t len, uint64_t now)
{
    uint8_t *out = NULL;
    size_t out_len = 0;
    GError *gerr = NULL;
    if (pz_e2e_open(s->bob, env, len, NULL, now, &out, &out_len, NULL, &gerr) || out_len != MSG_LEN) {
        fprintf(stderr, "bench-e2e: open failed: %s\n", gerr ? gerr->message : "short message");
        exit(1);
    }
    pz_e2e_free_bytes(out, out_len);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 2000;
    double floor_us[ROUNDS], gfloor_us[ROUNDS], pair_us[ROUNDS], seal_us[ROUNDS], open_us[ROUNDS];
    floor_state fl;
    e2e_state s;
    size_t env_len = 0;
    uint8_t **envs;

    if (n < 10)
        n = 10;
    if (pz_crypto_init())
        die("libgcrypt initialisation failed");
    /* Enough replay memory for every envelope opened in a run. */
    e2e_init(&s, (uint32_t)n * ROUNDS * 2 + 1000);
    uint64_t now = real_ns();
    free(seal_once(&s, now, &env_len));
    floor_init(&fl, env_len - 64); /* sign what the envelope signs */
    envs = calloc((size_t)n, sizeof(*envs));
    if (!envs)
        die("out of memory");

    /* Warm-up. */
    for (int i = 0; i < 50; i++) {
        floor_once(&fl, 0);
        floor_once(&fl, 1);
        uint8_t *e = seal_once(&s, now, &env_len);
        open_once(&s, e, env_len, now);
        free(e);
    }

    for (int r = 0; r < ROUNDS; r++) {
        uint64_t floor_ns = 0, gfloor_ns = 0, pair_ns = 0;
        for (int i = 0; i < n; i++) {
            size_t len;
            uint64_t t0 = cpu_ns();
            floor_once(&fl, 0);
            uint64_t t1 = cpu_ns();
            uint8_t *e = seal_once(&s, now, &len);
            open_once(&s, e, len, now);
            uint64_t t2 = cpu_ns();
            floor_once(&fl, 1);
            uint64_t t3 = cpu_ns();
            free(e);
            floor_ns += t1 - t0;
            pair_ns += t2 - t1;
            gfloor_ns += t3 - t2;
        }
        uint64_t t2 = cpu_ns();
        for (int i = 0; i < n; i++)
            envs[i] = seal_once(&s, now, &env_len);
        uint64_t t3 = cpu_ns();
        for (int i = 0; i < n; i++)
            open_once(&s, envs[i], env_len, now);
        uint64_t t4 = cpu_ns();
        for (int i = 0; i < n; i++)
            free(envs[i]);
        floor_us[r] = (double)floor_ns / n / 1000.0;
        gfloor_us[r] = (double)gfloor_ns / n / 1000.0;
        pair_us[r] = (double)pair_ns / n / 1000.0;
        seal_us[r] = (double)(t3 - t2) / n / 1000.0;
        open_us[r] = (double)(t4 - t3) / n / 1000.0;
    }
    double f = median(floor_us, ROUNDS), p = median(pair_us, ROUNDS), gf = median(gfloor_us, ROUNDS);
    double se = median(seal_us, ROUNDS), op = median(open_us, ROUNDS);

    printf("E2E envelopes, 1 KiB message (%zu-byte envelope, ChaCha20-Poly1305, signed), %d x %d iterations;\n"
           "thread CPU time, medians over rounds; floor and E2E alternate op by op in the same run\n\n",
           env_len, ROUNDS, n);
    printf("  %-44s %10s %12s\n", "", "us/op", "ops/s/core");
    printf("  %-44s %10.1f %12.0f\n", "seal (pz_e2e_seal)", se, 1e6 / se);
    printf("  %-44s %10.1f %12.0f\n", "open (pz_e2e_open)", op, 1e6 / op);
    printf("  %-44s %10.1f %12.0f\n", "seal + open", p, 1e6 / p);
    printf("  %-44s %10.1f %12.0f\n", "floor: raw primitives for seal + open", f, 1e6 / f);
    printf("  %-44s %10.1f %12.0f\n", "  the same, HKDF on libgcrypt's HMAC", gf, 1e6 / gf);
    printf("\n  ratio seal+open / floor: %.3f (target <= 1.10)\n\n", p / f);
    printf("RESULT e2e_seal_1k %.0f ops/s\n", 1e6 / se);
    printf("RESULT e2e_open_1k %.0f ops/s\n", 1e6 / op);
    printf("RESULT e2e_seal_open_1k %.1f us\n", p);
    printf("RESULT e2e_floor_seal_open_1k %.1f us\n", f);
    printf("RESULT e2e_floor_gcry_hmac_seal_open_1k %.1f us\n", gf);
    printf("RESULT e2e_ratio_vs_floor %.3f x\n", p / f);

    free(envs);
    floor_free(&fl);
    e2e_free(&s);
    return 0;
}
