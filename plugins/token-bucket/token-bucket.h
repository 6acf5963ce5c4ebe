/* plugins/token-bucket/token-bucket.h — internals of the token-bucket
 * provider shared with its unit test and the benchmark (not part of the ABI:
 * the .so exports only pz_plugin_entry_v1). */
#ifndef PZ_PLUGINS_TOKEN_BUCKET_H
#define PZ_PLUGINS_TOKEN_BUCKET_H

#include <stddef.h>
#include <stdint.h>

/* Keys held, bytes of table memory, and entries evicted (live, idle) by
 * the instance STATE. */
void pz__tb_stats(void *state, size_t *keys, size_t *bytes, uint64_t *evicted, uint64_t *evicted_idle);

/* Token units per token in STATE's current fixed-point scale. */
uint64_t pz__tb_unit(void *state);

#endif /* PZ_PLUGINS_TOKEN_BUCKET_H */
