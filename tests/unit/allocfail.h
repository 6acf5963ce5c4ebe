/* tests/unit/allocfail.h — a malloc shim for allocation-failure runs: the
 * test binary that links tests/unit/allocfail.c interposes malloc, calloc,
 * realloc, posix_memalign, aligned_alloc, memalign and free (forwarding to
 * the next definitions: libc's, or a sanitizer's), counts allocations while
 * armed and makes the Nth one fail. Thread-safe enough for one test thread
 * (counters are atomic). */
#ifndef PZ_TESTS_ALLOCFAIL_H
#define PZ_TESTS_ALLOCFAIL_H

#include <stddef.h>

/* Start counting; allocation number FAIL_AT (1-based) returns NULL (0:
 * none fails). */
void allocfail_arm(size_t fail_at);

/* Allocations attempted since the last allocfail_arm. */
size_t allocfail_count(void);

/* Stop counting; returns how many allocations were attempted while armed. */
size_t allocfail_disarm(void);

/* Whether allocations reach this shim (not so when valgrind replaces
 * malloc in the executable: run valgrind with
 * --soname-synonyms=somalloc=nouserintercepts to keep the shim). */
int allocfail_active(void);

/* Whether the failure was injected during the last armed period. */
int allocfail_fired(void);

#endif
