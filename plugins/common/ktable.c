/* plugins/common/ktable.c — bounded keyed-hash open-addressing table (see
 * ktable.h). */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <prozsec/error.h>

#include "ktable.h"

#define MIN_SLOTS 64
/* Tables at least this large come from mmap, advised to use huge pages: a
 * lookup in a table of millions of keys is one cache miss, and without huge
 * pages it is a TLB miss as well. */
#define MAP_THRESHOLD ((size_t)2 << 20)
/* Live entries compared per eviction. */
#define EVICT_SAMPLE 16

static uint64_t *slots_alloc(size_t nslots, size_t stride, int *mapped)
{
    size_t bytes = nslots * stride * sizeof(uint64_t);
    if (bytes >= MAP_THRESHOLD) {
        void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return NULL;
#ifdef MADV_HUGEPAGE
        (void)madvise(p, bytes, MADV_HUGEPAGE);
#endif
        *mapped = 1;
        return p;
    }
    *mapped = 0;
    return calloc(nslots * stride, sizeof(uint64_t));
}

static void slots_free(uint64_t *slots, size_t nslots, size_t stride, int mapped)
{
    if (!slots)
        return;
    if (mapped)
        munmap(slots, nslots * stride * sizeof(uint64_t));
    else
        free(slots);
}

static size_t slots_for(size_t max_keys)
{
    /* ceil(max_keys * 4 / 3): at max_keys the load factor is exactly 3/4. */
    return max_keys + (max_keys + 2) / 3;
}

static size_t grow_at_for(const pz_kt *t)
{
    if (t->nslots >= t->max_slots)
        return t->max_keys;
    size_t g = t->nslots / 4 * 3 + (t->nslots % 4) * 3 / 4;
    return g < t->max_keys ? g : t->max_keys;
}

int pz__kt_init(pz_kt *t, size_t stride, size_t max_keys, pz_kt_classify_fn classify, void *ctx)
{
    memset(t, 0, sizeof(*t));
    if (stride < 1 || stride > 64 || max_keys < PZ_KT_MIN_KEYS || max_keys > PZ_KT_MAX_KEYS || !classify)
        return PZ_EINVAL;
    t->stride = stride;
    t->max_keys = max_keys;
    t->max_slots = slots_for(max_keys);
    t->nslots = t->max_slots < MIN_SLOTS ? t->max_slots : MIN_SLOTS;
    t->classify = classify;
    t->ctx = ctx;
    t->slots = slots_alloc(t->nslots, stride, &t->mapped);
    if (!t->slots)
        return PZ_ENOMEM;
    t->end = t->slots + t->nslots * stride;
    t->grow_at = grow_at_for(t);
    return 0;
}

void pz__kt_clear(pz_kt *t)
{
    slots_free(t->slots, t->nslots, t->stride, t->mapped);
    memset(t, 0, sizeof(*t));
}

static inline uint64_t *slot(const pz_kt *t, size_t i)
{
    return t->slots + i * t->stride;
}

/* Move every non-idle entry into a fresh array of NEW_SLOTS slots. */
static int rebuild(pz_kt *t, size_t new_slots, uint64_t now)
{
    int mapped;
    uint64_t *ns = slots_alloc(new_slots, t->stride, &mapped);
    if (!ns)
        return PZ_ENOMEM;
    size_t kept = 0;
    for (size_t i = 0; i < t->nslots; i++) {
        uint64_t *e = slot(t, i);
        if (!e[0])
            continue;
        uint64_t age;
        if (t->classify(e, now, &age, t->ctx) == PZ_KT_IDLE) {
            t->evicted_idle++;
            if (t->drop)
                t->drop(e, t->ctx);
            continue;
        }
        size_t j = (size_t)(((unsigned __int128)e[0] * new_slots) >> 64);
        while (ns[j * t->stride])
            if (++j == new_slots)
                j = 0;
        memcpy(ns + j * t->stride, e, t->stride * sizeof(uint64_t));
        kept++;
    }
    slots_free(t->slots, t->nslots, t->stride, t->mapped);
    t->slots = ns;
    t->end = ns + new_slots * t->stride;
    t->mapped = mapped;
    t->nslots = new_slots;
    t->count = kept;
    t->hand = 0;
    t->grow_at = grow_at_for(t);
    return 0;
}

static inline void copy_entry(uint64_t *dst, const uint64_t *src, size_t stride)
{
    for (size_t k = 0; k < stride; k++)
        dst[k] = src[k];
}

void pz__kt_remove(pz_kt *t, uint64_t *entry)
{
    size_t i = (size_t)(entry - t->slots) / t->stride;
    size_t j = i;
    for (;;) {
        if (++j == t->nslots)
            j = 0;
        uint64_t *e = slot(t, j);
        if (!e[0])
            break;
        size_t k = pz__kt_home(t, e[0]);
        /* The entry at j may stay if its home lies cyclically in (i, j]. */
        int stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (stays)
            continue;
        copy_entry(slot(t, i), e, t->stride);
        i = j;
    }
    uint64_t *last = slot(t, i);
    for (size_t k = 0; k < t->stride; k++)
        last[k] = 0;
    t->count--;
}

/* Evict one entry chosen by the sweep hand. */
static int evict_one(pz_kt *t, uint64_t now)
{
    size_t i = t->hand % t->nslots, best = SIZE_MAX, live = 0;
    uint64_t best_age = UINT64_MAX;
    for (size_t n = 0; n < t->nslots; n++, i = i + 1 == t->nslots ? 0 : i + 1) {
        uint64_t *e = slot(t, i);
        if (!e[0])
            continue;
        uint64_t age = 0;
        pz_kt_class c = t->classify(e, now, &age, t->ctx);
        if (c == PZ_KT_IDLE) {
            t->evicted_idle++;
            if (t->drop)
                t->drop(e, t->ctx);
            pz__kt_remove(t, e);
            t->hand = i;
            return 0;
        }
        if (c == PZ_KT_LIVE) {
            if (best == SIZE_MAX || age < best_age) {
                best = i;
                best_age = age;
            }
            if (++live >= EVICT_SAMPLE)
                break;
        }
    }
    if (best == SIZE_MAX)
        return PZ_ERANGE;
    t->evicted++;
    if (t->drop)
        t->drop(slot(t, best), t->ctx);
    pz__kt_remove(t, slot(t, best));
    t->hand = best + 1;
    return 0;
}

int pz__kt_insert(pz_kt *t, uint64_t fp, uint64_t now, uint64_t **out)
{
    int rc = 0;
    *out = NULL;
    if (t->count >= t->grow_at) {
        if (t->nslots < t->max_slots) {
            /* Count what a rebuild would keep; when idle entries make up
             * most of the table, rebuild at the same size. */
            size_t live = 0;
            for (size_t i = 0; i < t->nslots; i++) {
                uint64_t age, *e = slot(t, i);
                if (e[0] && t->classify(e, now, &age, t->ctx) != PZ_KT_IDLE)
                    live++;
            }
            size_t target = t->nslots;
            if (live > t->nslots * 3 / 8) {
                target = t->nslots + t->nslots / 2;
                if (target > t->max_slots)
                    target = t->max_slots;
            }
            rc = rebuild(t, target, now);
            if (rc == PZ_ENOMEM && t->count + 1 < t->nslots)
                rc = evict_one(t, now);
            if (rc)
                goto out;
        }
        if (t->count >= t->max_keys) {
            rc = evict_one(t, now);
            if (rc)
                goto out;
        }
    }
    size_t i = pz__kt_home(t, fp);
    while (slot(t, i)[0])
        if (++i == t->nslots)
            i = 0;
    uint64_t *e = slot(t, i);
    memset(e, 0, t->stride * sizeof(uint64_t));
    e[0] = fp;
    t->count++;
    *out = e;
out:
    return rc;
}

size_t pz__kt_sweep(pz_kt *t, size_t n, uint64_t now)
{
    size_t dropped = 0, i = t->hand % t->nslots;
    while (n--) {
        uint64_t age, *e = slot(t, i);
        if (e[0] && t->classify(e, now, &age, t->ctx) == PZ_KT_IDLE) {
            t->evicted_idle++;
            if (t->drop)
                t->drop(e, t->ctx);
            pz__kt_remove(t, e);
            dropped++;
            continue; /* a later entry may have shifted into slot i */
        }
        if (++i == t->nslots)
            i = 0;
    }
    t->hand = i;
    return dropped;
}

int pz__kt_set_max_keys(pz_kt *t, size_t max_keys, uint64_t now)
{
    int rc = 0;
    if (max_keys < PZ_KT_MIN_KEYS || max_keys > PZ_KT_MAX_KEYS)
        return PZ_EINVAL;
    while (t->count > max_keys) {
        rc = evict_one(t, now);
        if (rc)
            goto out;
    }
    size_t max_slots = slots_for(max_keys);
    size_t target = t->nslots;
    if (target > max_slots)
        target = max_slots;
    size_t need = slots_for(t->count + t->count / 2);
    if (need > target)
        target = need < max_slots ? need : max_slots;
    if (target < MIN_SLOTS)
        target = max_slots < MIN_SLOTS ? max_slots : MIN_SLOTS;
    size_t old_max = t->max_keys, old_max_slots = t->max_slots;
    t->max_keys = max_keys;
    t->max_slots = max_slots;
    if (target != t->nslots) {
        rc = rebuild(t, target, now);
        if (rc) {
            t->max_keys = old_max;
            t->max_slots = old_max_slots;
            goto out;
        }
    }
    t->grow_at = grow_at_for(t);
out:
    return rc;
}
