/* core/replay.c — bounded replay cache: a chained hash table over a fixed
 * pool of entries plus a min-heap by expiry (see replay.h for the
 * guarantees). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "crypto.h"
#include "replay.h"

#define DIGEST_LEN 16
#define NIL UINT32_MAX

typedef struct entry {
    uint8_t digest[DIGEST_LEN];
    uint64_t expires;
    uint32_t next;     /* next in the bucket chain, or in the free list */
    uint32_t heap_pos; /* index in heap[] while in use */
} entry;

struct pz_replay {
    GMutex lock;
    uint8_t salt[16];
    uint32_t cap;
    uint32_t count;
    uint32_t mask; /* buckets - 1 */
    uint32_t *buckets;
    entry *entries;
    uint32_t *heap; /* entry indices, min-heap on expires */
    uint32_t free_head;
    uint64_t watermark;
};

int pz_replay_new(size_t capacity, pz_replay **out)
{
    int rc = 0;
    pz_replay *c = NULL;
    size_t nb = 1;

    if (!out)
        return PZ_EINVAL;
    *out = NULL;
    if (capacity == 0 || capacity > PZ_REPLAY_CAPACITY_MAX)
        return PZ_EINVAL;
    rc = pz_crypto_init();
    if (rc)
        return rc;
    c = calloc(1, sizeof(*c));
    if (!c)
        return PZ_ENOMEM;
    g_mutex_init(&c->lock);
    while (nb < capacity)
        nb <<= 1;
    c->cap = (uint32_t)capacity;
    c->mask = (uint32_t)(nb - 1);
    c->buckets = malloc(nb * sizeof(*c->buckets));
    c->entries = calloc(capacity, sizeof(*c->entries));
    c->heap = malloc(capacity * sizeof(*c->heap));
    if (!c->buckets || !c->entries || !c->heap) {
        rc = PZ_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < nb; i++)
        c->buckets[i] = NIL;
    for (uint32_t i = 0; i < c->cap; i++)
        c->entries[i].next = i + 1 < c->cap ? i + 1 : NIL;
    c->free_head = 0;
    rc = pz_crypto_random(c->salt, sizeof(c->salt));
    if (rc)
        goto out;
    *out = c;
    c = NULL;
out:
    pz_replay_free(c);
    return rc;
}

void pz_replay_free(pz_replay *c)
{
    if (!c)
        return;
    g_mutex_clear(&c->lock);
    free(c->buckets);
    free(c->entries);
    free(c->heap);
    free(c);
}

static int digest_of(const pz_replay *c, const void *key, size_t len, uint8_t d[DIGEST_LEN])
{
    uint8_t full[PZ_SHA256_LEN];
    pz_iov iov[2] = {{c->salt, sizeof(c->salt)}, {key, len}};
    int rc = pz_sha256(iov, 2, full);
    memcpy(d, full, DIGEST_LEN);
    return rc;
}

static uint32_t bucket_of(const pz_replay *c, const uint8_t d[DIGEST_LEN])
{
    uint32_t h;
    memcpy(&h, d, sizeof(h));
    return h & c->mask;
}

/* --- heap --------------------------------------------------------------- */

static void heap_set(pz_replay *c, uint32_t pos, uint32_t idx)
{
    c->heap[pos] = idx;
    c->entries[idx].heap_pos = pos;
}

static void heap_up(pz_replay *c, uint32_t pos)
{
    uint32_t idx = c->heap[pos];
    uint64_t e = c->entries[idx].expires;
    while (pos > 0) {
        uint32_t parent = (pos - 1) / 2;
        if (c->entries[c->heap[parent]].expires <= e)
            break;
        heap_set(c, pos, c->heap[parent]);
        pos = parent;
    }
    heap_set(c, pos, idx);
}

static void heap_down(pz_replay *c, uint32_t pos)
{
    uint32_t n = c->count;
    uint32_t idx = c->heap[pos];
    uint64_t e = c->entries[idx].expires;
    for (;;) {
        uint32_t l = 2 * pos + 1, r = l + 1, m = pos;
        uint64_t me = e;
        if (l < n && c->entries[c->heap[l]].expires < me) {
            m = l;
            me = c->entries[c->heap[l]].expires;
        }
        if (r < n && c->entries[c->heap[r]].expires < me)
            m = r;
        if (m == pos)
            break;
        heap_set(c, pos, c->heap[m]);
        pos = m;
    }
    heap_set(c, pos, idx);
}

/* --- entries ------------------------------------------------------------ */

static uint32_t find(const pz_replay *c, const uint8_t d[DIGEST_LEN])
{
    for (uint32_t i = c->buckets[bucket_of(c, d)]; i != NIL; i = c->entries[i].next)
        if (!memcmp(c->entries[i].digest, d, DIGEST_LEN))
            return i;
    return NIL;
}

static void remove_entry(pz_replay *c, uint32_t idx)
{
    entry *e = &c->entries[idx];
    uint32_t *link = &c->buckets[bucket_of(c, e->digest)];
    while (*link != idx)
        link = &c->entries[*link].next;
    *link = e->next;

    uint32_t pos = e->heap_pos;
    uint32_t last = c->heap[c->count - 1];
    c->count--;
    if (pos < c->count) {
        heap_set(c, pos, last);
        heap_down(c, pos);
        heap_up(c, c->entries[last].heap_pos);
    }
    memset(e, 0, sizeof(*e));
    e->next = c->free_head;
    c->free_head = idx;
}

static void insert_entry(pz_replay *c, const uint8_t d[DIGEST_LEN], uint64_t expires)
{
    uint32_t idx = c->free_head;
    entry *e = &c->entries[idx];
    uint32_t b = bucket_of(c, d);
    c->free_head = e->next;
    memcpy(e->digest, d, DIGEST_LEN);
    e->expires = expires;
    e->next = c->buckets[b];
    c->buckets[b] = idx;
    c->heap[c->count] = idx;
    e->heap_pos = c->count;
    c->count++;
    heap_up(c, e->heap_pos);
}

static void purge(pz_replay *c, uint64_t now_ns)
{
    while (c->count > 0 && c->entries[c->heap[0]].expires <= now_ns)
        remove_entry(c, c->heap[0]);
}

/* --- API ---------------------------------------------------------------- */

int pz_replay_check(pz_replay *c, const void *key, size_t key_len, uint64_t expires_ns, uint64_t now_ns)
{
    uint8_t d[DIGEST_LEN];
    int rc = 0;

    if (!c || (!key && key_len))
        return PZ_EINVAL;
    if (expires_ns <= now_ns)
        return PZ_ESTALE;
    rc = digest_of(c, key, key_len, d);
    if (rc)
        return rc;
    g_mutex_lock(&c->lock);
    purge(c, now_ns);
    if (find(c, d) != NIL || expires_ns <= c->watermark) {
        rc = PZ_EREPLAY;
        goto out;
    }
    if (c->count == c->cap) {
        entry *oldest = &c->entries[c->heap[0]];
        /* Refuse rather than evict something expiring later than this id:
         * it would be the next one evicted anyway. Not remembering it is
         * safe: it was never accepted. */
        if (expires_ns <= oldest->expires) {
            rc = PZ_EREPLAY;
            goto out;
        }
        if (oldest->expires > c->watermark)
            c->watermark = oldest->expires;
        remove_entry(c, c->heap[0]);
    }
    insert_entry(c, d, expires_ns);
out:
    g_mutex_unlock(&c->lock);
    return rc;
}

int pz_replay_contains(pz_replay *c, const void *key, size_t key_len, uint64_t now_ns)
{
    uint8_t d[DIGEST_LEN];
    int found;
    if (!c || (!key && key_len) || digest_of(c, key, key_len, d))
        return 0;
    g_mutex_lock(&c->lock);
    purge(c, now_ns);
    found = find(c, d) != NIL;
    g_mutex_unlock(&c->lock);
    return found;
}

size_t pz_replay_count(pz_replay *c, uint64_t now_ns)
{
    size_t n;
    if (!c)
        return 0;
    g_mutex_lock(&c->lock);
    purge(c, now_ns);
    n = c->count;
    g_mutex_unlock(&c->lock);
    return n;
}

uint64_t pz_replay_watermark(pz_replay *c)
{
    uint64_t w;
    if (!c)
        return 0;
    g_mutex_lock(&c->lock);
    w = c->watermark;
    g_mutex_unlock(&c->lock);
    return w;
}
