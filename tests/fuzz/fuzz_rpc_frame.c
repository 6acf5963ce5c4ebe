/* tests/fuzz/fuzz_rpc_frame.c — libFuzzer target: untrusted bytes through
 * the frame decoder (fed in chunks whose sizes the input chooses) and every
 * frame through the envelope decoder, as the server and client do; each
 * envelope is also decoded by the GLib reference (tests/unit/rpc_wire_ref.c)
 * and any disagreement between the two aborts (differential fuzzing of the
 * strict reader against g_variant_is_normal_form). */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc_frame.h"
#include "rpc_wire.h"
#include "../unit/rpc_wire_ref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void decode_one(const uint8_t *frame, size_t len)
{
    const char *what = NULL;
    if (ref_compare_envelope(frame, len, &what) == REF_DISAGREE) {
        fprintf(stderr, "fuzz_rpc_frame: reader and GLib disagree: %s\n", what);
        abort();
    }
    pz_wire_request req;
    pz_wire_response resp;
    int kind;
    if (pz_wire_decode(frame, len, &kind, &req, &resp, NULL) != 0)
        return;
    if (kind == PZ_WIRE_KIND_REQUEST) {
        /* Walk what a server reads; verification with no key must fail. */
        pz_wire_auth none = {.mode = req.mode};
        if (pz_wire_request_verify(&req, &none) == 0)
            abort();
        GVariant *params = pz_wire_value_dup(&req.params);
        if (params) {
            (void)g_variant_get_size(params);
            g_variant_unref(params);
        }
    } else {
        GVariant *d = pz_wire_value_dup(&resp.data);
        if (d) {
            /* The copy is in normal form: GLib must agree. */
            if (!g_variant_is_normal_form(d))
                abort();
            g_variant_unref(d);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pz_frame_decoder d;
    if (size < 1 || pz_frame_decoder_init(&d, 4096) != 0)
        return 0;
    /* The first byte picks the chunk size: splitting must not matter. */
    size_t chunk = (size_t)data[0] + 1;
    data++;
    size--;
    /* Envelopes on their own too (the first frame without framing). */
    decode_one(data, size);
    size_t off = 0;
    while (off < size) {
        size_t n = size - off < chunk ? size - off : chunk, used = 0;
        if (pz_frame_decoder_feed(&d, data + off, n, &used) != 0)
            break;
        off += used;
        const uint8_t *f;
        size_t len;
        int rc;
        while ((rc = pz_frame_decoder_next(&d, &f, &len)) == 0)
            decode_one(f, len);
        if (rc == PZ_EPROTO)
            break;
        if (used == 0)
            break;
    }
    pz_frame_decoder_clear(&d);
    return 0;
}
