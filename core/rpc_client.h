/* core/rpc_client.h — the RPC client (public API in prozsec/rpc.h):
 * outbound calls signed (or MAC'd) per call, a pool of connections per
 * peer opened on demand through the connect hook, deadlines, response
 * checks (sender = target, signature/MAC, call id, timestamp within the
 * skew) and one retry of idempotent calls when a connection is lost.
 *
 * Beyond the public API: the retry hint of a rate-limited result; see
 * docs/internals/rpc.md.
 */
#ifndef PZ_CORE_RPC_CLIENT_H
#define PZ_CORE_RPC_CLIENT_H

#include <stdint.h>

#include <prozsec/rpc.h>

/* The server's retry hint in a rate-limited RESULT: the "retry_after_ms"
 * of the response data (docs/rpc-wire.md), in milliseconds; 0 when the
 * server gave none or RESULT is not a rate_limited refusal. RESULT must be
 * one this client passed to a pz_rpc_done_fn, during that call. Exported
 * with the library's API (to move into prozsec/rpc.h, or become a field
 * appended to pz_rpc_result, with the next change of that header). */
PZ_API uint32_t pz_rpc_result_retry_after_ms(const pz_rpc_result *result);

#endif /* PZ_CORE_RPC_CLIENT_H */
