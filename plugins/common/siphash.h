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

/* One-shot SipHash-1-3 of DATA under KEY. */
uint64_t pz__siphash13(const uint8_t key[PZ_SIPHASH_KEY_LEN], const void *data, size_t len);

/* Generic SipHash-C-D (slow; for tests against the reference vectors of
 * SipHash-2-4 and to cross-check the unrolled 1-3 paths). */
uint64_t pz__siphash_cd(unsigned c, unsigned d, const uint8_t key[PZ_SIPHASH_KEY_LEN], const void *data,
                        size_t len);

#endif /* PZ_PLUGINS_SIPHASH_H */
