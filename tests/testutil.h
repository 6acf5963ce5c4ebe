/* tests/testutil.h — small helpers shared by unit tests, fuzz targets and
 * benchmarks (header-only: each program takes what it uses). */
#ifndef PZ_TESTS_TESTUTIL_H
#define PZ_TESTS_TESTUTIL_H

#include <glib.h>
#include <glib/gstdio.h>

/* Remove PATH and, when it is a directory, everything below it (a test's
 * temporary directory). Errors are ignored: cleanup must not fail a test. */
static inline void pz_test_rm_rf(const char *path)
{
    GDir *d = g_dir_open(path, 0, NULL);
    if (d) {
        const char *name;
        while ((name = g_dir_read_name(d))) {
            char *p = g_build_filename(path, name, NULL);
            pz_test_rm_rf(p);
            g_free(p);
        }
        g_dir_close(d);
        g_rmdir(path);
    } else {
        g_unlink(path);
    }
}

#endif /* PZ_TESTS_TESTUTIL_H */
