/* tests/unit/allocfail.c — see allocfail.h. The real allocator is looked up
 * with dlsym(RTLD_NEXT); dlsym itself may allocate (calloc) before that
 * lookup finished, which a small static arena serves. */
#define _GNU_SOURCE
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "allocfail.h"

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static void *(*real_memalign)(size_t, size_t);

static int armed;
static size_t counter, fail_at;
static int fired;
static int resolving;

static _Alignas(16) unsigned char arena[4096];
static size_t arena_used;

static int in_arena(const void *p)
{
    return (const unsigned char *)p >= arena && (const unsigned char *)p < arena + sizeof(arena);
}

static void *arena_alloc(size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n > sizeof(arena) - arena_used)
        return NULL;
    void *p = arena + arena_used;
    arena_used += n;
    return p;
}

static void resolve(void)
{
    if (real_malloc || resolving)
        return;
    resolving = 1;
    real_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
    real_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
    real_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
    real_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
    real_posix_memalign = (int (*)(void **, size_t, size_t))dlsym(RTLD_NEXT, "posix_memalign");
    real_aligned_alloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "aligned_alloc");
    real_memalign = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "memalign");
    resolving = 0;
}

/* Whether this allocation is the one to fail. */
static int should_fail(void)
{
    if (!__atomic_load_n(&armed, __ATOMIC_SEQ_CST))
        return 0;
    size_t n = __atomic_add_fetch(&counter, 1, __ATOMIC_SEQ_CST);
    if (fail_at && n == fail_at) {
        __atomic_store_n(&fired, 1, __ATOMIC_SEQ_CST);
        return 1;
    }
    return 0;
}

void allocfail_arm(size_t n)
{
    resolve();
    __atomic_store_n(&counter, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&fired, 0, __ATOMIC_SEQ_CST);
    fail_at = n;
    __atomic_store_n(&armed, 1, __ATOMIC_SEQ_CST);
}

size_t allocfail_disarm(void)
{
    __atomic_store_n(&armed, 0, __ATOMIC_SEQ_CST);
    return __atomic_load_n(&counter, __ATOMIC_SEQ_CST);
}

int allocfail_active(void)
{
    /* Through a volatile pointer: the compiler may drop a malloc/free pair. */
    void *(*volatile m)(size_t) = malloc;
    allocfail_arm(0);
    void *p = m(16);
    size_t n = allocfail_disarm();
    free(p);
    return n == 1;
}

size_t allocfail_count(void)
{
    return __atomic_load_n(&counter, __ATOMIC_SEQ_CST);
}

int allocfail_fired(void)
{
    return __atomic_load_n(&fired, __ATOMIC_SEQ_CST);
}

void *malloc(size_t n)
{
    resolve();
    if (!real_malloc)
        return arena_alloc(n);
    if (should_fail()) {
        errno = ENOMEM;
        return NULL;
    }
    return real_malloc(n);
}

void *calloc(size_t n, size_t size)
{
    resolve();
    if (!real_calloc)
        return n && size > SIZE_MAX / n ? NULL : arena_alloc(n * size); /* arena memory is zero */
    if (should_fail()) {
        errno = ENOMEM;
        return NULL;
    }
    return real_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
    resolve();
    if (in_arena(p)) {
        void *q = malloc(n);
        size_t room = (size_t)(arena + sizeof(arena) - (unsigned char *)p);
        if (q)
            memcpy(q, p, n < room ? n : room);
        return q;
    }
    if (should_fail()) {
        errno = ENOMEM;
        return NULL;
    }
    return real_realloc(p, n);
}

void free(void *p)
{
    if (!p || in_arena(p))
        return;
    resolve();
    real_free(p);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    resolve();
    if (should_fail())
        return ENOMEM;
    return real_posix_memalign(out, align, n);
}

void *aligned_alloc(size_t align, size_t n)
{
    resolve();
    if (should_fail()) {
        errno = ENOMEM;
        return NULL;
    }
    return real_aligned_alloc(align, n);
}

void *memalign(size_t align, size_t n); /* obsolete, still interposed: GLib may use it */
void *memalign(size_t align, size_t n)
{
    resolve();
    if (should_fail()) {
        errno = ENOMEM;
        return NULL;
    }
    return real_memalign(align, n);
}
