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
