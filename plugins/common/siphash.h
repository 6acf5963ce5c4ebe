/* plugins/common/siphash.h — SipHash-1-3, a keyed 64-bit hash for tables
 * whose keys an attacker chooses (peer ids, addresses).
 *
 * SipHash-c-d by Aumasson and Bernstein with c = 1 compression and d = 3
 * finalisation rounds (the variant Rust's HashMap and Python use for
 * hash-flooding resistance). Not a MAC: use it to index tables only.
 */
#ifndef PZ_PLUGINS_SIPHASH_H
#define PZ_PLUGINS_SIPHASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define PZ_SIPHASH_KEY_LEN 16

/* Incremental state, for keys assembled from several pieces. */
typedef struct pz_siphash {
    uint64_t v0, v1, v2, v3;
    uint64_t tail; /* up to 7 pending bytes, little-endian */
    size_t ntail;
    uint64_t total; /* bytes absorbed */
} pz_siphash;

/* Start a hash with the 16-byte KEY. Thread-safe (no shared state). */
void pz__siphash_init(pz_siphash *s, const uint8_t key[PZ_SIPHASH_KEY_LEN]);
/* Absorb LEN bytes of DATA (DATA may be NULL when LEN is 0). */
void pz__siphash_update(pz_siphash *s, const void *data, size_t len);
/* The 64-bit hash of everything absorbed. S must not be used afterwards. */
uint64_t pz__siphash_final(pz_siphash *s);

#define PZ_SIP_ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define PZ_SIP_ROUND                                                                                         \
    do {                                                                                                     \
        v0 += v1;                                                                                            \
        v1 = PZ_SIP_ROTL(v1, 13);                                                                            \
        v1 ^= v0;                                                                                            \
        v0 = PZ_SIP_ROTL(v0, 32);                                                                            \
        v2 += v3;                                                                                            \
        v3 = PZ_SIP_ROTL(v3, 16);                                                                            \
        v3 ^= v2;                                                                                            \
        v0 += v3;                                                                                            \
        v3 = PZ_SIP_ROTL(v3, 21);                                                                            \
        v3 ^= v0;                                                                                            \
        v2 += v1;                                                                                            \
        v1 = PZ_SIP_ROTL(v1, 17);                                                                            \
        v1 ^= v2;                                                                                            \
        v2 = PZ_SIP_ROTL(v2, 32);                                                                            \
    } while (0)

static inline uint64_t pz__sip_le64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

/* One-shot SipHash-1-3 of DATA under KEY. Inline: it is the hot path of
 * every rate-limit decision. */
static inline uint64_t pz__siphash13(const uint8_t key[PZ_SIPHASH_KEY_LEN], const void *data, size_t len)
{
    uint64_t k0 = pz__sip_le64(key), k1 = pz__sip_le64(key + 8);
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0;
    uint64_t v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0;
    uint64_t v3 = 0x7465646279746573ULL ^ k1;
    const uint8_t *p = data;
    size_t left = len;
    for (; left >= 8; p += 8, left -= 8) {
        uint64_t m = pz__sip_le64(p);
        v3 ^= m;
        PZ_SIP_ROUND;
        v0 ^= m;
    }
    uint8_t tail[8] = {0}; /* the last LEFT < 8 bytes, zero-padded */
    if (left)
        memcpy(tail, p, left);
    uint64_t b = (uint64_t)len << 56 | pz__sip_le64(tail);
    v3 ^= b;
    PZ_SIP_ROUND;
    v0 ^= b;
    v2 ^= 0xff;
    PZ_SIP_ROUND;
    PZ_SIP_ROUND;
    PZ_SIP_ROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

/* Generic SipHash-C-D (slow; for tests against the reference vectors of
 * SipHash-2-4 and to cross-check the unrolled 1-3 paths). */
uint64_t pz__siphash_cd(unsigned c, unsigned d, const uint8_t key[PZ_SIPHASH_KEY_LEN], const void *data,
                        size_t len);

#endif /* PZ_PLUGINS_SIPHASH_H */
