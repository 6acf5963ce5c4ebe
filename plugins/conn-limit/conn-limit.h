/* plugins/conn-limit/conn-limit.h — the conn-limit provider's refusal
 * reasons (pz_admit_result.reason) and internals shared with its unit test
 * (not part of the ABI). */
#ifndef PZ_PLUGINS_CONN_LIMIT_H
#define PZ_PLUGINS_CONN_LIMIT_H

#include <stddef.h>
#include <stdint.h>

enum {
    PZ_CL_REASON_GLOBAL = 1,       /* max_connections reached */
    PZ_CL_REASON_PENDING = 2,      /* max_pending_handshakes reached */
    PZ_CL_REASON_PER_ADDRESS = 3,  /* max_per_address reached */
    PZ_CL_REASON_PER_PREFIX = 4,   /* a prefix rule's max_connections reached */
    PZ_CL_REASON_RATE_ADDRESS = 5, /* new_per_address rate exceeded */
    PZ_CL_REASON_RATE_PREFIX = 6,  /* a prefix rule's rate exceeded */
    PZ_CL_REASON_PER_NODE = 7,     /* max_per_node reached */
    PZ_CL_REASON_FULL = 8,         /* no room to track the address or node */
};

/* Connections counted, pending handshakes, counters held and their bytes. */
void pz__cl_stats(void *state, uint64_t *total, uint64_t *pending, size_t *tracked, size_t *bytes);

#endif /* PZ_PLUGINS_CONN_LIMIT_H */
