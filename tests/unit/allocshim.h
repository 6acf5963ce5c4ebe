/* tests/unit/allocshim.h — a malloc shim for allocation-failure runs
 * (curl's torture mode, SQLite's fault tests): the test program that links
 * allocshim.c defines malloc, calloc, realloc and free, so every allocation
 * of the process (libc's strdup and vasprintf included) goes through it and
 * on to the real allocator (the next definition: libc's, or ASan's).
 *
 * Armed with N, the shim counts allocations and fails the Nth (returns NULL
 * with errno ENOMEM) when it is made by this program's own code (the core,
 * statically linked) or by libyaml — plain malloc callers that must turn a
 * NULL into an error. An Nth allocation made inside another library is not
 * failed but recorded ("skipped"), with the library and the first caller in
 * this program: GLib's g_malloc aborts on failure, and libgcrypt's and
 * GnuTLS's internal allocations are theirs to handle. Once the Nth has
 * failed, the allocations GLib makes in the rest of the run (an error path
 * formatting its message with g_strdup_printf...) are counted too: under a
 * real shortage each of those would abort.
 *
 * Not thread-safe beyond one armed thread: arm, run the code under test in
 * the same thread, disarm.
 */
#ifndef PZ_TESTS_ALLOCSHIM_H
#define PZ_TESTS_ALLOCSHIM_H

#include <stddef.h>

/* What one armed run saw. */
typedef struct pz_allocshim_report {
    unsigned long count;   /* allocations made while armed */
    int failed;            /* the Nth was failed */
    char failed_at[96];    /* where: "function+0x12", "program+0x1234" or "libyaml+0x..." */
    int skipped;           /* the Nth was made inside another library: not failed */
    char skipped_lib[64];  /* that library's file name */
    char skipped_from[96]; /* the first caller in this program ("function+0x12" or "program+0x1234"), or "" */
    unsigned long glib_after;  /* allocations GLib made after the failure (each would abort under real OOM) */
    char glib_after_from[96];  /* the first one's caller in this program */
} pz_allocshim_report;

/* Resolve the real allocator and warm up backtrace() (which loads libgcc_s
 * on first use). Call once before arming. */
void pz_allocshim_init(void);

/* 1 when this program's allocations really go through the shim; 0 under
 * valgrind, whose memcheck replaces malloc in the main program too. */
int pz_allocshim_active(void);

/* Start counting; fail the FAIL_AT-th allocation (1-based) as described
 * above. 0 only counts. Blocks allocated from now on are tracked until
 * freed (see pz_allocshim_live). */
void pz_allocshim_arm(unsigned long fail_at);

/* Stop counting and say what happened. */
void pz_allocshim_disarm(pz_allocshim_report *out);

/* Blocks allocated while armed (by anyone) and not freed since, even after
 * disarming: 0 once the code under test freed all it allocated; -1 when
 * there were too many to track. */
long pz_allocshim_live(void);

#endif /* PZ_TESTS_ALLOCSHIM_H */
