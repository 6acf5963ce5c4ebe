/* plugins/common/khash.c — key expansion for the keyed multiply hash (see
 * khash.h). */
#include "config.h"

#include <string.h>

#include "khash.h"

void pz__khash_key_init(pz_khash_key *key, const uint8_t secret[PZ_KHASH_SECRET_LEN], uint8_t domain)
{
    /* SipHash-2-4 (the PRF variant) of "pz-khash" || domain || index. */
    uint8_t msg[10] = {'p', 'z', '-', 'k', 'h', 'a', 's', 'h', domain, 0};
    for (unsigned i = 0; i < PZ_KHASH_WORDS; i++) {
        msg[9] = (uint8_t)i;
        key->k[i] = pz__siphash_cd(2, 4, secret, msg, sizeof(msg));
    }
    for (unsigned i = 0; i < 2; i++) {
        msg[9] = (uint8_t)(0x80 + i);
        uint64_t w = pz__siphash_cd(2, 4, secret, msg, sizeof(msg));
        for (int b = 0; b < 8; b++)
            key->sip[8 * i + b] = (uint8_t)(w >> (8 * b));
    }
}

uint64_t pz__khash_long(const pz_khash_key *key, const void *data, size_t len)
{
    const uint8_t *p = data;
    const uint64_t *k = key->k;
    unsigned __int128 acc = 0;
    size_t i = 0;
    if (len > PZ_KHASH_MAX_NH)
        return pz__siphash13(key->sip, data, len);
    /* Whole blocks, then the last 16 bytes (overlapping the one before
     * when LEN is not a multiple of 16; the length is folded in). */
    for (; len - i > 16; i += 16)
        acc += pz__kh_mul(pz__sip_le64(p + i) + k[i / 8], pz__sip_le64(p + i + 8) + k[i / 8 + 1]);
    acc += pz__kh_mul(pz__sip_le64(p + len - 16) + k[i / 8], pz__sip_le64(p + len - 8) + k[i / 8 + 1]);
    return pz__kh_fold(k, acc, len);
}
