/* tests/fuzz/fuzz_credframe.c — libFuzzer target: untrusted bytes as a
 * credentials frame, exactly as the accepting node reads one (core/node.c):
 * the 4-byte length checked first, then the payload decoded; every decoded
 * frame is encoded again and must give the same bytes back. */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "credframe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t again[PZ_CREDFRAME_HDR + PZ_CREDFRAME_MAX];
    char why[200];
    pz_credframe f;
    if (size < PZ_CREDFRAME_HDR)
        return 0;
    uint32_t len = (uint32_t)data[0] << 24 | (uint32_t)data[1] << 16 | (uint32_t)data[2] << 8 | data[3];
    if (pz_credframe_check_length(len, why, sizeof(why)) != 0 || len > size - PZ_CREDFRAME_HDR)
        return 0;
    if (pz_credframe_decode(data + PZ_CREDFRAME_HDR, len, &f, why, sizeof(why)) != 0)
        return 0;
    for (size_t i = 0; i < f.n; i++)
        (void)pz_credframe_find(&f, f.e[i].method);
    size_t n = 0;
    if (pz_credframe_encode(&f, again, sizeof(again), &n) != 0 || n != PZ_CREDFRAME_HDR + len ||
        memcmp(again, data, n) != 0)
        __builtin_trap();
    return 0;
}
