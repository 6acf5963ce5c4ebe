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

/* The keyed hash of LEN bytes at DATA (DATA may be NULL when LEN is 0).
 * Inline: it is on the path of every rate-limit decision. */
static inline __attribute__((always_inline)) uint64_t pz__khash(const pz_khash_key *key, const void *data, size_t len)
{
    const uint8_t *p = data;
    const uint64_t *k = key->k;
    unsigned __int128 acc;
    if (len <= 16) {
        uint64_t a = 0, b = 0;
        if (len >= 8) {
            a = pz__sip_le64(p);
            b = pz__sip_le64(p + len - 8);
        } else if (len >= 4) {
            a = pz__kh_le32(p) | pz__kh_le32(p + len - 4) << 32;
        } else if (len) {
            a = (uint64_t)p[0] | (uint64_t)p[len >> 1] << 8 | (uint64_t)p[len - 1] << 16;
        }
        acc = pz__kh_mul(a + k[0], b + k[1]);
    } else if (len <= PZ_KHASH_MAX_NH) {
        size_t i = 0;
        acc = 0;
        for (; len - i > 16; i += 16)
            acc += pz__kh_mul(pz__sip_le64(p + i) + k[i / 8], pz__sip_le64(p + i + 8) + k[i / 8 + 1]);
        acc += pz__kh_mul(pz__sip_le64(p + len - 16) + k[i / 8], pz__sip_le64(p + len - 8) + k[i / 8 + 1]);
    } else {
        return pz__siphash13(key->sip, data, len);
    }
    unsigned __int128 f = pz__kh_mul((uint64_t)acc + k[8], ((uint64_t)(acc >> 64) ^ len) + k[9]);
    return (uint64_t)f ^ (uint64_t)(f >> 64);
}

#endif /* PZ_PLUGINS_KHASH_H */
