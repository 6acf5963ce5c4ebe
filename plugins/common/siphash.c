/* plugins/common/siphash.c — SipHash-1-3 (see siphash.h). */
#include "config.h"

#include <string.h>

#include "siphash.h"

/* The round (PZ_SIP_ROUND) and the little-endian load (pz__sip_le64) come
 * from the header, shared with the inline one-shot pz__siphash13. */
static inline void compress(pz_siphash *s, uint64_t m)
{
    uint64_t v0 = s->v0, v1 = s->v1, v2 = s->v2, v3 = s->v3;
    v3 ^= m;
    PZ_SIP_ROUND;
    v0 ^= m;
    s->v0 = v0;
    s->v1 = v1;
    s->v2 = v2;
    s->v3 = v3;
}

void pz__siphash_init(pz_siphash *s, const uint8_t key[PZ_SIPHASH_KEY_LEN])
{
    uint64_t k0 = pz__sip_le64(key), k1 = pz__sip_le64(key + 8);
    s->v0 = 0x736f6d6570736575ULL ^ k0;
    s->v1 = 0x646f72616e646f6dULL ^ k1;
    s->v2 = 0x6c7967656e657261ULL ^ k0;
    s->v3 = 0x7465646279746573ULL ^ k1;
    s->tail = 0;
    s->ntail = 0;
    s->total = 0;
}

void pz__siphash_update(pz_siphash *s, const void *data, size_t len)
{
    const uint8_t *p = data;
    s->total += len;
    while (len && s->ntail) {
        s->tail |= (uint64_t)*p++ << (8 * s->ntail);
        len--;
        if (++s->ntail == 8) {
            compress(s, s->tail);
            s->tail = 0;
            s->ntail = 0;
        }
    }
    while (len >= 8) {
        compress(s, pz__sip_le64(p));
        p += 8;
        len -= 8;
    }
    while (len--) {
        s->tail |= (uint64_t)*p++ << (8 * s->ntail);
        s->ntail++;
    }
}

uint64_t pz__siphash_final(pz_siphash *s)
{
    uint64_t b = s->tail | (s->total & 0xff) << 56;
    compress(s, b);
    uint64_t v0 = s->v0, v1 = s->v1, v2 = s->v2 ^ 0xff, v3 = s->v3;
    PZ_SIP_ROUND;
    PZ_SIP_ROUND;
    PZ_SIP_ROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

uint64_t pz__siphash_cd(unsigned c, unsigned d, const uint8_t key[PZ_SIPHASH_KEY_LEN], const void *data,
                        size_t len)
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
        for (unsigned i = 0; i < c; i++)
            PZ_SIP_ROUND;
        v0 ^= m;
    }
    uint64_t b = (uint64_t)len << 56;
    for (size_t i = 0; i < left; i++)
        b |= (uint64_t)p[i] << (8 * i);
    v3 ^= b;
    for (unsigned i = 0; i < c; i++)
        PZ_SIP_ROUND;
    v0 ^= b;
    v2 ^= 0xff;
    for (unsigned i = 0; i < d; i++)
        PZ_SIP_ROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}
