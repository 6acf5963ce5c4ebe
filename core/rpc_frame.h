/* core/rpc_frame.h — length-prefixed frames: a 32-bit big-endian length
 * then that many payload bytes (1 <= length <= max_frame_bytes), and an
 * incremental decoder with a bounded buffer.
 *
 * The decoder hands out a region to read into (no copy from the transport),
 * then yields complete frames in order. Its buffer never grows beyond
 * 4 + max_frame_bytes. A length of 0 or above the maximum is a protocol
 * violation: the decoder reports PZ_EPROTO and stays failed.
 *
 * Thread safety: a decoder is used by one thread at a time.
 */
#ifndef PZ_CORE_RPC_FRAME_H
#define PZ_CORE_RPC_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define PZ_FRAME_HDR 4
#define PZ_FRAME_MIN_MAX 256u               /* smallest accepted max_frame_bytes */
#define PZ_FRAME_MAX_MAX (64u * 1024 * 1024) /* largest accepted max_frame_bytes */

typedef struct pz_frame_decoder {
    uint8_t *buf;     /* owned */
    size_t cap;       /* allocated */
    size_t start;     /* first unconsumed byte */
    size_t end;       /* one past the last byte read */
    size_t max_frame; /* payload limit */
    int failed;       /* sticky PZ_EPROTO */
} pz_frame_decoder;

/* Initialise D for payloads of at most MAX_FRAME bytes (PZ_FRAME_MIN_MAX ..
 * PZ_FRAME_MAX_MAX, else PZ_ERANGE). Returns 0, PZ_ERANGE or PZ_ENOMEM. */
int pz_frame_decoder_init(pz_frame_decoder *d, size_t max_frame);

/* Free D's buffer; D may be initialised again. */
void pz_frame_decoder_clear(pz_frame_decoder *d);

/* A region of *AVAIL bytes to read transport bytes into, then report with
 * pz_frame_decoder_commit. Returns NULL with *AVAIL 0 when the buffer is
 * full (only while a complete frame waits to be taken with _next) or on
 * allocation failure (*AVAIL 0 too; check with _next first). */
uint8_t *pz_frame_decoder_space(pz_frame_decoder *d, size_t *avail);

/* N bytes were written at the region _space returned (N <= *AVAIL). */
void pz_frame_decoder_commit(pz_frame_decoder *d, size_t n);

/* Copy up to LEN bytes from DATA into D; *USED gets how many were taken
 * (less than LEN when the buffer is full: take frames with _next, then
 * feed the rest). Returns 0 or PZ_ENOMEM. */
int pz_frame_decoder_feed(pz_frame_decoder *d, const void *data, size_t len, size_t *used);

/* The next complete frame: 0 with *FRAME / *LEN pointing into D's buffer
 * (valid until the next call on D), PZ_EAGAIN when more bytes are needed,
 * PZ_EPROTO when the stream announced a length of 0 or above the maximum
 * (sticky). */
int pz_frame_decoder_next(pz_frame_decoder *d, const uint8_t **frame, size_t *len);

/* Non-zero when _next would return a frame or PZ_EPROTO without more
 * input. */
int pz_frame_decoder_ready(const pz_frame_decoder *d);

/* Bytes buffered and not yet returned as frames. */
size_t pz_frame_decoder_pending(const pz_frame_decoder *d);

/* Write the 4-byte header for a payload of LEN bytes into HDR. */
void pz_frame_put_header(uint8_t hdr[PZ_FRAME_HDR], uint32_t len);

/* Read the payload length from a 4-byte header. */
uint32_t pz_frame_get_header(const uint8_t hdr[PZ_FRAME_HDR]);

#endif /* PZ_CORE_RPC_FRAME_H */
