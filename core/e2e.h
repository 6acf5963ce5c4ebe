/* core/e2e.h — the E2E envelope codec (version 1), shared by core/e2e.c,
 * its tests and the fuzz target. The public API is include/prozsec/e2e.h;
 * the byte layout, field by field, is docs/e2e-format.md.
 *
 * Envelope v1 (integers big-endian):
 *   version(1) suite(1) flags(1)
 *   sender_len(1) sender(sender_len)          0 and empty with sealed sender
 *   recipient_len(1) recipient(recipient_len)
 *   key_id(8) timestamp_ms(8) message_id(16) enc(32)
 *   aad_len(4) aad(aad_len)
 *   ct_len(4) ct(ct_len)                      HPKE ciphertext, tag included
 *   signature(64)                             absent with sealed sender
 *
 * Sealed-sender plaintext (inside ct):
 *   sender_len(1) sender signature(64) message
 *
 * Parsing only checks structure; every pointer it returns points into the
 * buffer parsed. Pure functions: thread-safe.
 */
#ifndef PZ_CORE_E2E_H
#define PZ_CORE_E2E_H

#include <stddef.h>
#include <stdint.h>

#include <prozsec/e2e.h>

#define PZ__E2E_FLAG_SEALED_SENDER 0x01
#define PZ__E2E_FLAGS_KNOWN 0x01
#define PZ__E2E_ENC_LEN 32
#define PZ__E2E_SIG_LEN 64
#define PZ__E2E_TAG_LEN 16

/* Domain-separation prefixes (each with its terminating NUL). */
#define PZ__E2E_SIG_DOMAIN "prozsec-e2e-v1 envelope signature"
#define PZ__E2E_INNER_SIG_DOMAIN "prozsec-e2e-v1 sealed-sender signature"
#define PZ__E2E_INFO_DOMAIN "prozsec-e2e-v1 hpke info"

/* A parsed envelope. */
typedef struct pz__e2e_env {
    uint8_t version;
    uint8_t suite;
    uint8_t flags;
    const char *sender; /* not NUL-terminated */
    size_t sender_len;
    const char *recipient;
    size_t recipient_len;
    const uint8_t *key_id;     /* PZ_E2E_KEY_ID_LEN */
    uint64_t timestamp_ms;
    const uint8_t *message_id; /* PZ_E2E_MESSAGE_ID_LEN */
    const uint8_t *enc;        /* PZ__E2E_ENC_LEN */
    const uint8_t *aad;
    size_t aad_len;
    size_t header_len; /* bytes before ct_len: the HPKE associated data */
    const uint8_t *ct;
    size_t ct_len;
    size_t signed_len; /* bytes the outer signature covers (all before it) */
    const uint8_t *sig; /* NULL with sealed sender */
} pz__e2e_env;

/* Parse BUF (LEN bytes). Returns 0, or the pz_e2e_error of the first
 * problem: PZ_E2E_ERROR_VERSION (first byte not 1), PZ_E2E_ERROR_SUITE
 * (unknown suite), PZ_E2E_ERROR_MALFORMED (anything else: truncation,
 * trailing bytes, unknown flags, bad id length or characters, ciphertext
 * shorter than a tag, AAD over PZ_E2E_AAD_MAX, a sender with sealed sender
 * or none without). */
int pz__e2e_parse(const uint8_t *buf, size_t len, pz__e2e_env *out);

/* A parsed sealed-sender plaintext. */
typedef struct pz__e2e_inner {
    const char *sender;
    size_t sender_len;
    const uint8_t *sig;
    const uint8_t *msg;
    size_t msg_len;
} pz__e2e_inner;

/* Parse a sealed-sender plaintext; 0 or PZ_E2E_ERROR_MALFORMED. */
int pz__e2e_parse_inner(const uint8_t *buf, size_t len, pz__e2e_inner *out);

/* 1 if the LEN bytes at ID form a valid node id. */
int pz__e2e_id_valid(const char *id, size_t len);

/* The HPKE info for an envelope: INFO_DOMAIN NUL || version || suite ||
 * flags || sender_len || sender || recipient_len || recipient || key_id ||
 * timestamp || message_id. OUT must hold PZ__E2E_INFO_MAX bytes; returns
 * the length written. */
#define PZ__E2E_INFO_MAX (sizeof(PZ__E2E_INFO_DOMAIN) + 3 + 2 * (1 + PZ_E2E_ID_MAX) + 8 + 8 + 16)
size_t pz__e2e_info(const pz__e2e_env *env, uint8_t *out);

#endif /* PZ_CORE_E2E_H */
