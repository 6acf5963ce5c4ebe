/* tests/unit/allocshim.c — the malloc shim of the allocation-failure runs;
 * see allocshim.h. */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "allocshim.h"

/* The shim runs before the sanitizers' runtime is initialised (ASan's own
 * start-up allocates): none of it may be instrumented. */
#if defined(__has_attribute)
#if __has_attribute(no_sanitize)
#define NO_SAN __attribute__((no_sanitize("address", "undefined")))
#endif
#endif
#ifndef NO_SAN
#define NO_SAN
#endif

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);

/* Allocations made while dlsym resolves the real functions. */
static _Alignas(16) unsigned char boot[16384];
static size_t boot_used;

static int armed;
static unsigned long fail_at, count;
static volatile int reached; /* the shim's malloc was called at all */

/* Blocks allocated while armed and not freed yet: an open-addressing set
 * in static memory (the shim cannot allocate). */
#define LIVE_SLOTS 65536
static void *live[LIVE_SLOTS];
static unsigned long live_n;
static int live_overflow;
#define TOMB ((void *)1)

NO_SAN static size_t live_hash(const void *p)
{
    uintptr_t h = (uintptr_t)p;
    h ^= h >> 17;
    h *= 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 40) & (LIVE_SLOTS - 1);
}

NO_SAN static void live_add(void *p)
{
    if (!p)
        return;
    size_t i = live_hash(p);
    for (size_t k = 0; k < LIVE_SLOTS / 2; k++, i = (i + 1) & (LIVE_SLOTS - 1)) {
        if (!live[i] || live[i] == TOMB) {
            live[i] = p;
            live_n++;
            return;
        }
    }
    live_overflow = 1;
}

/* Forget P; 1 when it was tracked. */
NO_SAN static int live_del(void *p)
{
    if (!p || !live_n)
        return 0;
    size_t i = live_hash(p);
    for (size_t k = 0; k < LIVE_SLOTS / 2 && live[i]; k++, i = (i + 1) & (LIVE_SLOTS - 1)) {
        if (live[i] == p) {
            live[i] = TOMB;
            live_n--;
            return 1;
        }
    }
    return 0;
}
static pz_allocshim_report last;
static int busy;          /* inside the shim's own bookkeeping (one armed thread) */
static void *self_base;   /* this program's load address */

NO_SAN static void *boot_alloc(size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n > sizeof(boot) - boot_used)
        return NULL;
    void *p = boot + boot_used;
    boot_used += n;
    return p;
}

NO_SAN static int in_boot(const void *p)
{
    return (const unsigned char *)p >= boot && (const unsigned char *)p < boot + sizeof(boot);
}

NO_SAN static void resolve(void)
{
    static int resolving;
    if (real_free || resolving)
        return;
    resolving = 1;
    real_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
    real_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
    real_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
    real_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
    resolving = 0;
}

NO_SAN static int is_entry(const char *name)
{
    return name && (!strcmp(name, "malloc") || !strcmp(name, "calloc") || !strcmp(name, "realloc"));
}

/* Who made the allocation being decided: its library (LIB, LIB_LEN
 * bytes: the file name) and the first caller in this program (FROM). 1
 * when it is this program itself or libyaml (a plain malloc caller), 0
 * otherwise, -1 when the stack cannot be read. */
NO_SAN static int attribute(char *lib, size_t lib_len, char *from, size_t from_len)
{
    void *frames[48];
    int n = backtrace(frames, 48), i = -1;
    Dl_info info;
    lib[0] = from[0] = '\0';
    /* Skip the shim: up to and including its malloc/calloc/realloc. */
    for (int k = 0; k < n; k++) {
        if (dladdr(frames[k], &info) && is_entry(info.dli_sname) && info.dli_fbase == self_base) {
            i = k + 1;
            break;
        }
    }
    if (i < 0) {
        snprintf(lib, lib_len, "?");
        return -1;
    }
    /* Skip libc (strdup, vasprintf, ...) and the sanitizers' interceptors
     * of its functions: their caller is the one. */
    for (; i < n; i++) {
        if (!dladdr(frames[i], &info) || !info.dli_fname)
            continue;
        if (!strstr(info.dli_fname, "/libc.so") && !strstr(info.dli_fname, "/libc-") &&
            !strstr(info.dli_fname, "/libasan") && !strstr(info.dli_fname, "/libubsan") &&
            !strstr(info.dli_fname, "/liblsan"))
            break;
    }
    if (i >= n) {
        snprintf(lib, lib_len, "libc");
        return -1;
    }
    if (info.dli_fbase == self_base || strstr(info.dli_fname, "libyaml")) {
        snprintf(from, from_len, "%s+0x%lx", info.dli_sname ? info.dli_sname : strstr(info.dli_fname, "libyaml") ? "libyaml" : "program",
                 (unsigned long)((uintptr_t)frames[i] - (uintptr_t)(info.dli_saddr ? info.dli_saddr : info.dli_fbase)));
        return 1;
    }
    const char *slash = strrchr(info.dli_fname, '/');
    snprintf(lib, lib_len, "%s", slash ? slash + 1 : info.dli_fname);
    for (i++; i < n; i++) {
        Dl_info up;
        if (dladdr(frames[i], &up) && up.dli_fbase == self_base) {
            snprintf(from, from_len, "%s+0x%lx", up.dli_sname ? up.dli_sname : "program",
                     (unsigned long)((uintptr_t)frames[i] - (uintptr_t)(up.dli_saddr ? up.dli_saddr : up.dli_fbase)));
            break;
        }
    }
    return 0;
}

/* Count one allocation; 1 when it must fail. */
NO_SAN static int should_fail(void)
{
    if (!armed || busy)
        return 0;
    unsigned long k = ++count;
    if (k != fail_at && !last.failed)
        return 0;
    busy = 1;
    char lib[64], from[96];
    int who = attribute(lib, sizeof(lib), from, sizeof(from));
    int f = 0;
    if (last.failed) {
        /* After the failure: GLib allocating on the way out. */
        if (strstr(lib, "libglib") && !last.glib_after++)
            snprintf(last.glib_after_from, sizeof(last.glib_after_from), "%s", from);
    } else if (who == 1) {
        f = last.failed = 1;
        snprintf(last.failed_at, sizeof(last.failed_at), "%s", from);
    } else {
        last.skipped = 1;
        snprintf(last.skipped_lib, sizeof(last.skipped_lib), "%s", lib);
        snprintf(last.skipped_from, sizeof(last.skipped_from), "%s", from);
    }
    busy = 0;
    return f;
}

NO_SAN void *malloc(size_t n)
{
    if (!real_malloc) {
        resolve();
        if (!real_malloc)
            return boot_alloc(n);
    }
    reached = 1;
    if (should_fail()) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = real_malloc(n);
    if (armed && !busy)
        live_add(p);
    return p;
}

NO_SAN void *calloc(size_t n, size_t m)
{
    if (!real_calloc) {
        resolve();
        if (!real_calloc)
            return m && n > SIZE_MAX / m ? NULL : boot_alloc(n * m); /* static storage: zeroed */
    }
    if (should_fail()) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = real_calloc(n, m);
    if (armed && !busy)
        live_add(p);
    return p;
}

NO_SAN void *realloc(void *p, size_t n)
{
    if (!real_realloc)
        resolve();
    if (p && in_boot(p)) {
        /* Rare: a block from the boot area grows. */
        void *q = malloc(n);
        size_t avail = (size_t)(boot + sizeof(boot) - (unsigned char *)p);
        if (q)
            memcpy(q, p, n < avail ? n : avail);
        return q;
    }
    if (!real_realloc)
        return p ? NULL : boot_alloc(n);
    if (should_fail()) {
        errno = ENOMEM;
        return NULL;
    }
    void *q = real_realloc(p, n);
    if (q) {
        int tracked = live_del(p);
        if (tracked || (armed && !busy))
            live_add(q);
    }
    return q;
}

NO_SAN void free(void *p)
{
    if (!p || in_boot(p))
        return;
    live_del(p);
    if (!real_free)
        resolve();
    if (real_free)
        real_free(p);
}

/* LeakSanitizer's switches, when it is linked in (ASan builds). */
extern void __lsan_disable(void) __attribute__((weak));
extern void __lsan_enable(void) __attribute__((weak));

void pz_allocshim_init(void)
{
    resolve();
    /* The first backtrace() loads libgcc_s through libc's private dlopen,
     * whose allocations LeakSanitizer would report: it stays loaded. */
    if (__lsan_disable)
        __lsan_disable();
    void *frames[4];
    backtrace(frames, 4);
    if (__lsan_enable)
        __lsan_enable();
    Dl_info info;
    if (dladdr((void *)pz_allocshim_init, &info))
        self_base = info.dli_fbase;
}

int pz_allocshim_active(void)
{
    reached = 0;
    void *(*volatile fn)(size_t) = malloc;
    void *p = fn(16);
    free(p);
    return reached;
}

void pz_allocshim_arm(unsigned long n)
{
    memset(&last, 0, sizeof(last));
    memset(live, 0, sizeof(live));
    live_n = 0;
    live_overflow = 0;
    count = 0;
    fail_at = n;
    armed = 1;
}

void pz_allocshim_disarm(pz_allocshim_report *out)
{
    armed = 0;
    last.count = count;
    if (out)
        *out = last;
}

long pz_allocshim_live(void)
{
    return live_overflow ? -1 : (long)live_n;
}
