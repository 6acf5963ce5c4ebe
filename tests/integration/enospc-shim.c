/* tests/integration/enospc-shim.c — an LD_PRELOAD shim for the fault tests
 * (tests/integration/faults.sh): a full disk for one file.
 *
 *   PZ_ENOSPC_MATCH  file name suffix to fail (default "reputation.db.tmp")
 *   PZ_ENOSPC_FLAG   path of a flag file: the shim acts only while it exists
 *                    (checked when the file is opened), so the daemon starts
 *                    and saves normally until the test creates it
 *
 * While the flag exists, a descriptor opened on a path ending in the
 * suffix fails every write() and fsync()/fdatasync() with ENOSPC, like a
 * file system that filled up after the open. Each failure is counted on
 * stderr ("enospc-shim: ..."). Everything else passes through to libc.
 *
 * Only open/open64/openat/openat64 are watched: the state writer in
 * plugins/reputation uses open(2) and write(2) directly.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define MAX_FDS 4096

static unsigned char watched[MAX_FDS];

typedef int (*open_fn)(const char *, int, ...);
typedef int (*openat_fn)(int, const char *, int, ...);
typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef int (*fd_fn)(int);

static void *next(const char *name)
{
    return dlsym(RTLD_NEXT, name);
}

static int active(const char *path)
{
    const char *suffix = getenv("PZ_ENOSPC_MATCH");
    const char *flag = getenv("PZ_ENOSPC_FLAG");
    if (!suffix || !*suffix)
        suffix = "reputation.db.tmp";
    if (!path || !flag || !*flag)
        return 0;
    size_t n = strlen(path), m = strlen(suffix);
    if (n < m || strcmp(path + n - m, suffix) != 0)
        return 0;
    return access(flag, F_OK) == 0;
}

static int track(int fd, const char *path)
{
    if (fd >= 0 && fd < MAX_FDS) {
        watched[fd] = (unsigned char)active(path);
        if (watched[fd])
            fprintf(stderr, "enospc-shim: %s opened (fd %d): writes will fail with ENOSPC\n", path, fd);
    }
    return fd;
}

static int is_watched(int fd)
{
    return fd >= 0 && fd < MAX_FDS && watched[fd];
}

#define MODE_ARG(flags, mode)                                                                                \
    do {                                                                                                     \
        if ((flags) & (O_CREAT | O_TMPFILE)) {                                                               \
            va_list ap;                                                                                      \
            va_start(ap, flags);                                                                             \
            mode = va_arg(ap, mode_t);                                                                       \
            va_end(ap);                                                                                      \
        }                                                                                                    \
    } while (0)

int open(const char *path, int flags, ...)
{
    mode_t mode = 0;
    MODE_ARG(flags, mode);
    static open_fn real;
    if (!real)
        real = (open_fn)next("open");
    return track(real(path, flags, mode), path);
}

int open64(const char *path, int flags, ...)
{
    mode_t mode = 0;
    MODE_ARG(flags, mode);
    static open_fn real;
    if (!real)
        real = (open_fn)next("open64");
    return track(real(path, flags, mode), path);
}

int openat(int dir, const char *path, int flags, ...)
{
    mode_t mode = 0;
    MODE_ARG(flags, mode);
    static openat_fn real;
    if (!real)
        real = (openat_fn)next("openat");
    return track(real(dir, path, flags, mode), path);
}

int openat64(int dir, const char *path, int flags, ...)
{
    mode_t mode = 0;
    MODE_ARG(flags, mode);
    static openat_fn real;
    if (!real)
        real = (openat_fn)next("openat64");
    return track(real(dir, path, flags, mode), path);
}

ssize_t write(int fd, const void *buf, size_t len)
{
    static write_fn real;
    if (is_watched(fd)) {
        fprintf(stderr, "enospc-shim: write of %zu bytes to fd %d: ENOSPC\n", len, fd);
        errno = ENOSPC;
        return -1;
    }
    if (!real)
        real = (write_fn)next("write");
    return real(fd, buf, len);
}

int fsync(int fd)
{
    static fd_fn real;
    if (is_watched(fd)) {
        errno = ENOSPC;
        return -1;
    }
    if (!real)
        real = (fd_fn)next("fsync");
    return real(fd);
}

int fdatasync(int fd)
{
    static fd_fn real;
    if (is_watched(fd)) {
        errno = ENOSPC;
        return -1;
    }
    if (!real)
        real = (fd_fn)next("fdatasync");
    return real(fd);
}

int close(int fd)
{
    static fd_fn real;
    if (fd >= 0 && fd < MAX_FDS)
        watched[fd] = 0;
    if (!real)
        real = (fd_fn)next("close");
    return real(fd);
}
