/* tests/fuzz/fuzz_descriptor.c — libFuzzer target: the plugin loader's
 * descriptor checks (pz__loader_check_desc, core/loader.h) on a descriptor
 * built from untrusted bytes, as a hostile or broken plugin would return it.
 *
 * Input layout (short inputs are zero-padded):
 *   [0..3]  struct_size   [4..5] abi_major   [6..7] abi_minor
 *   [8..11] kind          [12]   flags: bit 0..3 = name, version,
 *                                description, provider present
 *   [13]    name length (bytes of name taken from what follows, up to 80)
 *   then the name bytes, then the provider table bytes (up to 1024; its
 *   first four bytes are the table's struct_size).
 * Function pointers in the table are never called, only tested for NULL. */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "err.h"
#include "loader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HDR 14
#define NAME_MAX_FUZZ 80
#define TABLE_MAX 1024

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t hdr[HDR] = {0};
    char name[NAME_MAX_FUZZ + 1];
    /* Aligned for the function pointers the check reads with memcpy. */
    _Alignas(max_align_t) uint8_t table[TABLE_MAX];
    pz_plugin_descriptor desc;
    pz_load_refusal why = PZ_REFUSE_NONE;
    pz_err err;

    memcpy(hdr, data, size < HDR ? size : HDR);
    size_t off = size < HDR ? size : HDR;

    size_t name_len = hdr[13] > NAME_MAX_FUZZ ? NAME_MAX_FUZZ : hdr[13];
    if (name_len > size - off)
        name_len = size - off;
    memcpy(name, data + off, name_len);
    name[name_len] = '\0';
    off += name_len;

    memset(table, 0, sizeof(table));
    size_t table_len = size - off < TABLE_MAX ? size - off : TABLE_MAX;
    memcpy(table, data + off, table_len);

    memset(&desc, 0, sizeof(desc));
    memcpy(&desc.struct_size, hdr, 4);
    memcpy(&desc.abi_major, hdr + 4, 2);
    memcpy(&desc.abi_minor, hdr + 6, 2);
    int32_t kind;
    memcpy(&kind, hdr + 8, 4);
    desc.kind = (pz_plugin_kind)kind;
    desc.name = (hdr[12] & 1) ? name : NULL;
    desc.version = (hdr[12] & 2) ? "1.0" : NULL;
    desc.description = (hdr[12] & 4) ? "fuzz" : NULL;
    desc.provider = (hdr[12] & 8) ? table : NULL;

    pz_err_init(&err);
    int rc = pz__loader_check_desc("fuzz.so", &desc, &why, &err);
    /* Accepted and refused must agree with the result code. */
    if ((rc == 0) != (why == PZ_REFUSE_NONE) || (rc != 0 && !*pz_err_msg(&err)))
        __builtin_trap();
    pz_err_clear(&err);

    pz_err_init(&err);
    if (pz__loader_check_desc(NULL, NULL, &why, &err) == 0)
        __builtin_trap();
    pz_err_clear(&err);
    return 0;
}
