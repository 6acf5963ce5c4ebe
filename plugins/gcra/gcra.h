/* plugins/gcra/gcra.h — internals of the gcra provider shared with its unit
 * test and the benchmark (not part of the ABI). */
#ifndef PZ_PLUGINS_GCRA_H
#define PZ_PLUGINS_GCRA_H

#include <stddef.h>
#include <stdint.h>

/* Keys held, bytes of table memory, and entries evicted (live, idle). */
void pz__gcra_stats(void *state, size_t *keys, size_t *bytes, uint64_t *evicted, uint64_t *evicted_idle);

#endif /* PZ_PLUGINS_GCRA_H */
