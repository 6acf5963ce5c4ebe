/* core/rpc_frame.c — length-prefixed frames and their incremental decoder
 * (see rpc_frame.h). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <prozsec/error.h>

#include "rpc_frame.h"

#define INITIAL_CAP 16384u

void pz_frame_put_header(uint8_t hdr[PZ_FRAME_HDR], uint32_t len)
{
    hdr[0] = (uint8_t)(len >> 24);
    hdr[1] = (uint8_t)(len >> 16);
    hdr[2] = (uint8_t)(len >> 8);
    hdr[3] = (uint8_t)len;
}

uint32_t pz_frame_get_header(const uint8_t hdr[PZ_FRAME_HDR])
{
    return ((uint32_t)hdr[0] << 24) | ((uint32_t)hdr[1] << 16) | ((uint32_t)hdr[2] << 8) | (uint32_t)hdr[3];
}

int pz_frame_decoder_init(pz_frame_decoder *d, size_t max_frame)
{
    memset(d, 0, sizeof(*d));
    if (max_frame < PZ_FRAME_MIN_MAX || max_frame > PZ_FRAME_MAX_MAX)
        return PZ_ERANGE;
    d->max_frame = max_frame;
    d->cap = INITIAL_CAP < PZ_FRAME_HDR + max_frame ? INITIAL_CAP : PZ_FRAME_HDR + max_frame;
    d->buf = malloc(d->cap);
    if (!d->buf) {
        d->cap = 0;
        return PZ_ENOMEM;
    }
    return 0;
}

void pz_frame_decoder_clear(pz_frame_decoder *d)
{
    free(d->buf);
    memset(d, 0, sizeof(*d));
}

/* Bytes the frame at START needs in all (header included), or the header
 * size while the header is incomplete; sets FAILED on a bad length. */
static size_t frame_need(pz_frame_decoder *d)
{
    if (d->end - d->start < PZ_FRAME_HDR)
        return PZ_FRAME_HDR;
    uint32_t len = pz_frame_get_header(d->buf + d->start);
    if (len == 0 || len > d->max_frame) {
        d->failed = 1;
        return 0;
    }
    return PZ_FRAME_HDR + (size_t)len;
}

uint8_t *pz_frame_decoder_space(pz_frame_decoder *d, size_t *avail)
{
    *avail = 0;
    if (d->failed || !d->buf)
        return NULL;
    if (d->start == d->end)
        d->start = d->end = 0;
    size_t need = frame_need(d);
    if (d->failed)
        return NULL;
    size_t have = d->end - d->start;
    if (have >= need)
        return NULL; /* a complete frame waits: take it first */
    if (d->end == d->cap || d->start + need > d->cap) {
        if (d->start > 0) {
            memmove(d->buf, d->buf + d->start, have);
            d->start = 0;
            d->end = have;
        }
        if (need > d->cap) {
            size_t ncap = d->cap * 2;
            if (ncap < need)
                ncap = need;
            if (ncap > PZ_FRAME_HDR + d->max_frame)
                ncap = PZ_FRAME_HDR + d->max_frame;
            uint8_t *nbuf = realloc(d->buf, ncap);
            if (!nbuf)
                return NULL;
            d->buf = nbuf;
            d->cap = ncap;
        }
    }
    *avail = d->cap - d->end;
    return d->buf + d->end;
}

void pz_frame_decoder_commit(pz_frame_decoder *d, size_t n)
{
    if (n > d->cap - d->end)
        n = d->cap - d->end; /* defensive: never past the buffer */
    d->end += n;
}

int pz_frame_decoder_feed(pz_frame_decoder *d, const void *data, size_t len, size_t *used)
{
    const uint8_t *p = data;
    size_t done = 0;
    int rc = 0;
    while (done < len) {
        size_t avail;
        uint8_t *dst = pz_frame_decoder_space(d, &avail);
        if (!dst) {
            /* Full with a frame waiting, failed, or out of memory. */
            if (!d->failed && d->buf && d->end - d->start < frame_need(d))
                rc = PZ_ENOMEM;
            break;
        }
        size_t n = len - done < avail ? len - done : avail;
        memcpy(dst, p + done, n);
        pz_frame_decoder_commit(d, n);
        done += n;
        /* Stop once a frame is complete so the caller drains it before the
         * buffer holds more than one frame's worth beyond it. */
        if (d->end - d->start >= frame_need(d))
            break;
    }
    if (used)
        *used = done;
    return rc;
}

int pz_frame_decoder_next(pz_frame_decoder *d, const uint8_t **frame, size_t *len)
{
    if (d->failed)
        return PZ_EPROTO;
    size_t need = frame_need(d);
    if (d->failed)
        return PZ_EPROTO;
    /* While the header is incomplete NEED is the header size alone. */
    if (d->end - d->start < PZ_FRAME_HDR || d->end - d->start < need)
        return PZ_EAGAIN;
    *frame = d->buf + d->start + PZ_FRAME_HDR;
    *len = need - PZ_FRAME_HDR;
    d->start += need;
    return 0;
}

size_t pz_frame_decoder_pending(const pz_frame_decoder *d)
{
    return d->end - d->start;
}

int pz_frame_decoder_ready(const pz_frame_decoder *d)
{
    size_t have = d->end - d->start;
    if (d->failed)
        return 1;
    if (have < PZ_FRAME_HDR)
        return 0;
    uint32_t len = pz_frame_get_header(d->buf + d->start);
    if (len == 0 || len > d->max_frame)
        return 1;
    return have >= PZ_FRAME_HDR + (size_t)len;
}
