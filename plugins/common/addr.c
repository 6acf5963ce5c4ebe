/* plugins/common/addr.c — address prefixes (see addr.h). */
#include "config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <prozsec/error.h>

#include "addr.h"

unsigned pz__addr_bits(pz_addr_family family)
{
    return family == PZ_AF_INET ? 32 : family == PZ_AF_INET6 ? 128 : 0;
}

static void mask_bytes(uint8_t *b, unsigned len, unsigned bits)
{
    for (unsigned i = 0; i < bits / 8; i++) {
        unsigned lo = i * 8;
        if (len >= lo + 8)
            continue;
        b[i] = len <= lo ? 0 : (uint8_t)(b[i] & (0xff00 >> (len - lo)));
    }
}

int pz__cidr_parse(const char *text, pz_cidr *out)
{
    char buf[INET6_ADDRSTRLEN + 8];
    memset(out, 0, sizeof(*out));
    if (!text || strlen(text) >= sizeof(buf))
        return PZ_EINVAL;
    strcpy(buf, text);
    char *slash = strchr(buf, '/');
    long len = -1;
    if (slash) {
        *slash = 0;
        char *end = NULL;
        if (!slash[1] || slash[1] == '-' || slash[1] == '+')
            return PZ_EINVAL;
        len = strtol(slash + 1, &end, 10);
        if (*end)
            return PZ_EINVAL;
    }
    uint8_t b[16];
    if (inet_pton(AF_INET, buf, b) == 1) {
        out->family = PZ_AF_INET;
        memcpy(out->bytes, b, 4);
    } else if (inet_pton(AF_INET6, buf, b) == 1) {
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (!memcmp(b, mapped, 12)) {
            if (len >= 0 && len < 96)
                return PZ_EINVAL;
            out->family = PZ_AF_INET;
            memcpy(out->bytes, b + 12, 4);
            if (len >= 0)
                len -= 96;
        } else {
            out->family = PZ_AF_INET6;
            memcpy(out->bytes, b, 16);
        }
    } else {
        return PZ_EINVAL;
    }
    unsigned bits = pz__addr_bits(out->family);
    if (len < 0)
        len = bits;
    if (len > (long)bits)
        return PZ_EINVAL;
    out->len = (unsigned)len;
    uint8_t m[16];
    memcpy(m, out->bytes, sizeof(m));
    mask_bytes(m, out->len, bits);
    if (memcmp(m, out->bytes, bits / 8))
        return PZ_EINVAL; /* host bits set */
    return 0;
}

void pz__cidr_of(const pz_addr *addr, unsigned len, pz_cidr *out)
{
    unsigned bits = pz__addr_bits(addr->family);
    memset(out, 0, sizeof(*out));
    out->family = addr->family;
    out->len = len < bits ? len : bits;
    memcpy(out->bytes, addr->bytes, bits / 8);
    mask_bytes(out->bytes, out->len, bits);
}

int pz__cidr_contains(const pz_cidr *c, const pz_addr *addr)
{
    if (addr->family != c->family)
        return 0;
    pz_cidr a;
    pz__cidr_of(addr, c->len, &a);
    return !memcmp(a.bytes, c->bytes, sizeof(a.bytes));
}

char *pz__addr_format(const pz_addr *addr, char *buf, size_t len)
{
    if (!addr || (addr->family != PZ_AF_INET && addr->family != PZ_AF_INET6)) {
        snprintf(buf, len, "%s", addr && addr->family == PZ_AF_UNIX ? "unix" : "?");
        return buf;
    }
    char tmp[INET6_ADDRSTRLEN];
    if (!inet_ntop(addr->family == PZ_AF_INET ? AF_INET : AF_INET6, addr->bytes, tmp, sizeof(tmp)))
        snprintf(tmp, sizeof(tmp), "?");
    snprintf(buf, len, "%s", tmp);
    return buf;
}

char *pz__cidr_format(const pz_cidr *c, char *buf, size_t len)
{
    pz_addr a;
    memset(&a, 0, sizeof(a));
    a.family = c->family;
    memcpy(a.bytes, c->bytes, sizeof(a.bytes));
    char tmp[INET6_ADDRSTRLEN + 1];
    pz__addr_format(&a, tmp, sizeof(tmp));
    snprintf(buf, len, "%s/%u", tmp, c->len);
    return buf;
}
