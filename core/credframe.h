/* core/credframe.h — the credentials frame: the one frame a connecting
 * side sends right after the transport handshake, carrying the tokens its
 * auth providers made for this connection (generate_credentials, bound to
 * the TLS exporter channel binding), so the accepting side's auth chain can
 * see them (pz_auth_credentials.token). docs/internals/credentials-frame.md
 * has the format byte by byte and the reasons behind it.
 *
 * On the wire, as every frame (core/rpc_frame.h): a 32-bit big-endian
 * payload length L (PZ_CREDFRAME_MIN..PZ_CREDFRAME_MAX), then the payload:
 *
 *   offset  size  field
 *   0       4     magic "PZCF"
 *   4       1     version, 1
 *   5       1     N, number of entries (0..PZ_CREDFRAME_MAX_ENTRIES)
 *   6       ...   N entries, each:
 *                   1  M, method name length (1..PZ_CREDFRAME_METHOD_MAX)
 *                   M  method name, [a-z0-9-] ("psk": the psk-token provider's)
 *                   2  D, token length, big-endian (1..PZ_CREDFRAME_TOKEN_MAX)
 *                   D  token bytes (opaque here; the provider's own format)
 *
 * Nothing may follow the last entry; method names are unique in a frame.
 * Anything else is malformed: the accepting side ends the connection and
 * reports a PZ_BEHAVIOR_MALFORMED_FRAME event with the reason.
 *
 * Pure functions: no I/O, no allocation except where stated. Thread-safe.
 */
#ifndef PZ_CORE_CREDFRAME_H
#define PZ_CORE_CREDFRAME_H

#include <stddef.h>
#include <stdint.h>

#define PZ_CREDFRAME_MAGIC "PZCF"
#define PZ_CREDFRAME_VERSION 1
#define PZ_CREDFRAME_HDR 4           /* the length prefix */
#define PZ_CREDFRAME_MIN 6           /* smallest payload: magic, version, N = 0 */
#define PZ_CREDFRAME_MAX 4096        /* largest payload */
#define PZ_CREDFRAME_MAX_ENTRIES 8
#define PZ_CREDFRAME_METHOD_MAX 32
#define PZ_CREDFRAME_TOKEN_MAX 1024

/* One token. In a decoded frame DATA points into the payload (borrowed). */
typedef struct pz_credframe_entry {
    char method[PZ_CREDFRAME_METHOD_MAX + 1];
    const uint8_t *data;
    size_t len;
} pz_credframe_entry;

typedef struct pz_credframe {
    size_t n;
    pz_credframe_entry e[PZ_CREDFRAME_MAX_ENTRIES];
} pz_credframe;

/* 1 when NAME is a valid method name ([a-z0-9-], 1..PZ_CREDFRAME_METHOD_MAX
 * bytes), else 0. */
int pz_credframe_method_valid(const char *name);

/* Check the payload length L read from a frame's 4-byte header before
 * reading the payload. Returns 0, or PZ_EPROTO with WHY (WHYLEN bytes, may
 * be NULL) saying what is wrong. */
int pz_credframe_check_length(uint32_t len, char *why, size_t whylen);

/* Decode the payload P (LEN bytes, borrowed: OUT points into it). Returns 0,
 * or PZ_EPROTO with WHY set ("bad magic", "version 2 is not supported",
 * "entry 1: method name ...", "3 bytes after the last entry", ...). */
int pz_credframe_decode(const uint8_t *p, size_t len, pz_credframe *out, char *why, size_t whylen);

/* The token for METHOD in F, or NULL. */
const pz_credframe_entry *pz_credframe_find(const pz_credframe *f, const char *method);

/* Encode F as a whole frame (4-byte length, then the payload) into BUF of
 * CAP bytes; *LEN gets the bytes written. Returns 0, PZ_EINVAL (an entry
 * breaks the rules above: bad or repeated method, empty or oversized token,
 * too many entries, a payload over PZ_CREDFRAME_MAX) or PZ_ERANGE (CAP too
 * small; *LEN gets the size needed).
 * PZ_CREDFRAME_HDR + PZ_CREDFRAME_MAX bytes always suffice. */
int pz_credframe_encode(const pz_credframe *f, uint8_t *buf, size_t cap, size_t *len);

#endif /* PZ_CORE_CREDFRAME_H */
