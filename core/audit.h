/* core/audit.h — the RPC audit log: an append-only file of inbound signed
 * call contexts (public API in prozsec/rpc.h: pz_audit_open, pz_audit_close,
 * pz_audit_verify).
 *
 * File format (docs/rpc-wire.md, "Audit log"): the 8-byte magic
 * "PZAUDIT\x01", then records, each a 32-bit big-endian length and a
 * normal-form GVariant of type (tsayayay):
 *   received_ns  wall-clock time the server received the call
 *   caller       the authenticated caller's node id
 *   context      the signed part of the request, ((stayssuy)v), verbatim
 *   signature    the caller's Ed25519 signature over
 *                "prozsec-rpc-call-v1" ‖ 0x00 ‖ context
 *   prev         SHA-256 of the previous record (length prefix included);
 *                32 zero bytes for the first
 * The chain makes deleting, reordering or editing a record detectable;
 * the signatures make each context the caller's own statement.
 *
 * Thread safety: a log is used by one thread at a time.
 */
#ifndef PZ_CORE_AUDIT_H
#define PZ_CORE_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include <prozsec/rpc.h>

#define PZ_AUDIT_MAGIC "PZAUDIT\001"
#define PZ_AUDIT_MAGIC_LEN 8
#define PZ_AUDIT_RECORD_TYPE "(tsayayay)"
#define PZ_AUDIT_RECORD_MAX (16u * 1024 * 1024)

/* Append one record. CONTEXT (LEN bytes) and SIG are borrowed. Returns 0,
 * PZ_EIO (ERROR says why; the log stays usable) or PZ_EINVAL. */
int pz_audit_append(pz_audit_log *log, uint64_t received_ns, const char *caller, const uint8_t *context,
                    size_t len, const uint8_t *sig, size_t sig_len, GError **error);

/* Records appended through LOG since it was opened. */
uint64_t pz_audit_count(const pz_audit_log *log);

#endif /* PZ_CORE_AUDIT_H */
