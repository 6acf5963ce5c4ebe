/* tests/fuzz/fuzz_rpc_frame.c — libFuzzer target: untrusted bytes through
 * the frame decoder (fed in chunks whose sizes the input chooses) and every
 * frame through the envelope decoder, as the server and client do. */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "rpc_frame.h"
#include "rpc_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void decode_one(const uint8_t *frame, size_t len)
{
    pz_wire_request req;
    pz_wire_response resp;
    int kind;
    if (pz_wire_decode(frame, len, &kind, &req, &resp, NULL) != 0)
        return;
    if (kind == PZ_WIRE_KIND_REQUEST) {
        /* Walk what a server reads; verification with no key must fail. */
        pz_wire_auth none = {.mode = req.mode};
        (void)pz_wire_request_verify(&req, &none);
        (void)g_variant_get_size(req.params);
        pz_wire_request_clear(&req);
    } else {
        (void)g_variant_get_size(resp.data);
        pz_wire_response_clear(&resp);
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
