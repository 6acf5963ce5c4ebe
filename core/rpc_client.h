/* core/rpc_client.h — the RPC client (public API in prozsec/rpc.h):
 * outbound calls signed (or MAC'd) per call, a pool of connections per
 * peer opened on demand through the connect hook, deadlines, response
 * checks (sender = target, signature/MAC, call id, timestamp within the
 * skew) and one retry of idempotent calls when a connection is lost.
 * Everything it exports, the rate-limit retry hint included, is declared
 * in prozsec/rpc.h; see docs/internals/rpc.md.
 */
#ifndef PZ_CORE_RPC_CLIENT_H
#define PZ_CORE_RPC_CLIENT_H

#include <stdint.h>

#include <prozsec/rpc.h>

#endif /* PZ_CORE_RPC_CLIENT_H */
