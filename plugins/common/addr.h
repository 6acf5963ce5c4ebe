/* plugins/common/addr.h — address prefixes (CIDRs) for the connection
 * limiters: parse "192.0.2.0/24" / "2001:db8::/48" / a bare address, mask,
 * match, format. IPv4-mapped IPv6 text ("::ffff:192.0.2.1") is taken as
 * IPv4, as the core passes such addresses (plugin.h). */
#ifndef PZ_PLUGINS_ADDR_H
#define PZ_PLUGINS_ADDR_H

#include <stddef.h>
#include <stdint.h>

#include <prozsec/plugin.h>

typedef struct pz_cidr {
    pz_addr_family family; /* PZ_AF_INET or PZ_AF_INET6 */
    uint8_t bytes[16];     /* masked: bits beyond len are zero */
    unsigned len;          /* prefix length: 0..32 or 0..128 */
} pz_cidr;

/* Longest text pz__cidr_format writes, with the NUL. */
#define PZ_CIDR_STRLEN 64

/* Bits in an address of FAMILY (32, 128, or 0 for others). */
unsigned pz__addr_bits(pz_addr_family family);

/* Parse TEXT as an address or CIDR. A bare address is a full-length
 * prefix. Host bits set beyond the length are an error (a typo like
 * 10.0.0.1/8 usually means something else). Returns 0 or PZ_EINVAL. */
int pz__cidr_parse(const char *text, pz_cidr *out);

/* The prefix of length LEN (clamped to the family's bits) of ADDR. ADDR
 * must be INET or INET6. */
void pz__cidr_of(const pz_addr *addr, unsigned len, pz_cidr *out);

/* 1 when ADDR lies in C. */
int pz__cidr_contains(const pz_cidr *c, const pz_addr *addr);

/* "192.0.2.0/24" into BUF (at least PZ_CIDR_STRLEN bytes); returns BUF. */
char *pz__cidr_format(const pz_cidr *c, char *buf, size_t len);

/* The address alone ("192.0.2.7", "2001:db8::1", "unix", "?"). */
char *pz__addr_format(const pz_addr *addr, char *buf, size_t len);

#endif /* PZ_PLUGINS_ADDR_H */
