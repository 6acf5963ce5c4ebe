/* core/buildtree.c — see buildtree.h. */
#include "config.h"

#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buildtree.h"

void pz_buildtree_setup(void)
{
#ifdef PZ_ABS_BUILDDIR
    if (getenv("PROZSEC_PLUGIN_PATH"))
        return;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return;
    exe[n] = '\0';
    char *dir = dirname(exe);
    char *real_build = realpath(PZ_ABS_BUILDDIR, NULL);
    if (real_build && strcmp(dir, real_build) == 0)
        setenv("PROZSEC_PLUGIN_PATH", PZ_ABS_BUILDDIR "/plugins/.libs", 0);
    free(real_build);
#endif
}
