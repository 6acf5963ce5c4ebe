/* plugins/common/khash.h — a keyed multiply hash for the rate limiters'
 * tables: as cheap as an unkeyed multiply hash on short keys, with every
 * input word mixed with secret words before it is multiplied.
 *
 * The key is expanded once, from a 16-byte random secret, into ten 64-bit
 * words (SipHash-2-4 of the secret as a PRF). A message of up to 64 bytes
 * is read as 16-byte blocks (the last one loaded so that it ends at the
 * message's end; a short message as one block of its bytes, zero-filled)
 * and compressed with NH (UMAC's hash, Black et al. 1999):
 *
 *     acc = sum over blocks i of (a_i + k_2i) * (b_i + k_2i+1)   (mod 2^128)
 *
 * with 64-bit additions mod 2^64 and full 64 x 64 -> 128-bit products. For
 * two distinct messages of the same length, acc collides with probability
 * at most 2^-64 over the key (NH is 2^-64-almost-universal). The 128-bit acc
 * and the length are folded to 64 bits by one more keyed product:
 *
 *     h = lo(p) ^ hi(p),  p = (lo(acc) + k_8) * ((hi(acc) ^ len) + k_9)
 *
 * Longer messages (none of the rate limiters' usual keys: a node id is at
 * most 64 bytes) go to SipHash-1-3 under a key of their own.
 *
 * Not a MAC and not a PRF: the outputs must never leave the process. Why
 * hash flooding stays impractical with it is argued in
 * docs/internals/ratelimit-hash.md.
 *
 * Thread safety: a key is read-only after init; any number of threads may
 * hash with it.
 */
#ifndef PZ_PLUGINS_KHASH_H
#define PZ_PLUGINS_KHASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "siphash.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define PZ_KHASH_SECRET_LEN 16
#define PZ_KHASH_WORDS 10
/* Longest message hashed by NH; longer ones use SipHash-1-3. */
#define PZ_KHASH_MAX_NH 64

typedef struct pz_khash_key {
    uint64_t k[PZ_KHASH_WORDS];
    uint8_t sip[PZ_SIPHASH_KEY_LEN]; /* for messages above PZ_KHASH_MAX_NH */
} pz_khash_key;

/* Expand the 16-byte SECRET into KEY for domain DOMAIN (distinct domains
 * give independent keys from one secret). Thread-safe. Wipe KEY with
 * explicit_bzero when done. */
void pz__khash_key_init(pz_khash_key *key, const uint8_t secret[PZ_KHASH_SECRET_LEN], uint8_t domain);

static inline uint64_t pz__kh_le32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    return v;
}

static inline unsigned __int128 pz__kh_mul(uint64_t a, uint64_t b)
{
    return (unsigned __int128)a * b;
}

/* The 128-bit NH sum and the length, folded to the 64-bit hash. */
static inline __attribute__((always_inline)) uint64_t pz__kh_fold(const uint64_t *k, unsigned __int128 acc,
                                                                  size_t len)
{
    unsigned __int128 f = pz__kh_mul((uint64_t)acc + k[8], ((uint64_t)(acc >> 64) ^ len) + k[9]);
    return (uint64_t)f ^ (uint64_t)(f >> 64);
}

/* pz__khash for LEN > 16 (out of line: keeps the short-key path small). */
uint64_t pz__khash_long(const pz_khash_key *key, const void *data, size_t len);

/* pz__khash for LEN <= 16 only. */
static inline __attribute__((always_inline)) uint64_t pz__khash_short(const pz_khash_key *key,
                                                                      const void *data, size_t len)
{
    const uint8_t *p = data;
    const uint64_t *k = key->k;
    uint64_t a = 0, b = 0;
    if (len >= 8) {
        a = pz__sip_le64(p);
        b = pz__sip_le64(p + len - 8);
    } else if (len >= 4) {
        a = pz__kh_le32(p) | pz__kh_le32(p + len - 4) << 32;
    } else if (len) {
        a = (uint64_t)p[0] | (uint64_t)p[len >> 1] << 8 | (uint64_t)p[len - 1] << 16;
    }
    return pz__kh_fold(k, pz__kh_mul(a + k[0], b + k[1]), len);
}

/* The keyed hash of LEN bytes at DATA (DATA may be NULL when LEN is 0).
 * Inline for keys of up to 16 bytes. Thread-safe. */
static inline __attribute__((always_inline)) uint64_t pz__khash(const pz_khash_key *key, const void *data,
                                                                size_t len)
{
    if (__builtin_expect(len > 16, 0))
        return pz__khash_long(key, data, len);
    return pz__khash_short(key, data, len);
}

/* Whether the word-at-a-time strlen below may read past a string's end:
 * not under AddressSanitizer, which would (rightly) report it. */
#if defined(__SANITIZE_ADDRESS__)
#define PZ_KH_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PZ_KH_ASAN 1
#endif
#endif

/* strlen(S), inline. The hot path of a decision calls nothing else, and a
 * call would cost more than the hash (the PLT jump, and the registers saved
 * around it). Reads 16-byte blocks at 16-byte aligned addresses: such a
 * block never crosses a page, so reading the bytes after the terminating
 * NUL in its block cannot fault (glibc's strlen does the same); bytes
 * before S in the first block are masked off. Valgrind's memcheck accepts
 * these aligned partial loads; AddressSanitizer builds use strlen. */
static inline __attribute__((always_inline)) size_t pz__kh_strlen(const char *s)
{
#if defined(__SSE2__) && !defined(PZ_KH_ASAN)
    const char *p = (const char *)((uintptr_t)s & ~(uintptr_t)15);
    const __m128i zero = _mm_setzero_si128();
    unsigned m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_load_si128((const __m128i *)p), zero));
    m >>= (uintptr_t)s & 15;
    if (__builtin_expect(m != 0, 1))
        return (size_t)__builtin_ctz(m);
    for (;;) {
        p += 16;
        m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_load_si128((const __m128i *)p), zero));
        if (m)
            return (size_t)(p - s) + (size_t)__builtin_ctz(m);
    }
#else
    return strlen(s);
#endif
}

/* The keyed hash of the NUL-terminated string S (without its NUL). */
static inline __attribute__((always_inline)) uint64_t pz__khash_str(const pz_khash_key *key, const char *s)
{
    return pz__khash(key, s, pz__kh_strlen(s));
}

#endif /* PZ_PLUGINS_KHASH_H */
