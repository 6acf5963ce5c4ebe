/* tests/bench/bench-ratelimit.c — the rate-limiter plugins at scale.
 *
 * For 1K, 1M and 10M keys drawn uniformly at random, measures the
 * nanoseconds per allow() decision and the memory per key of the
 * token-bucket and gcra plugins (loaded from the build tree through the
 * loader, exactly as the daemon runs them) side by side, in the same run,
 * with a reference token bucket kept in a GHashTable keyed by strdup'd
 * strings (the obvious implementation). Then a key flood: 5M never-seen
 * keys against max_keys = 100000, where every decision inserts and evicts.
 *
 * Keys are peer ids ("peer-0123abcd", key: peer), written into arrays
 * before the timed loops. Four floors are measured in the same run, before
 * the limiters, on a buffer of the table's size: the memory latency
 * (dependent random reads); the limiters' keyed hash (plugins/common/
 * khash.h, with its inline strlen) of the key plus one read at the hash —
 * what any table keyed with it pays; the same with SipHash-1-3 (the hash
 * the limiters used before: its ~130 instructions ahead of each read limit
 * how many reads of successive decisions overlap); and an unkeyed multiply
 * hash plus one read. Each limiter row prints its ratio to the keyed-hash
 * and SipHash floors (RESULT ..._over_khfloor, _over_sipfloor,
 * _over_memlatency). Memory is the growth of the resident set over the
 * limiter's life (after malloc_trim), divided by the keys it holds:
 * everything the limiter allocated, not a computed table size (page
 * granularity makes the 1K row coarse). Times are this thread's CPU time;
 * the machine is shared, so compare within a run.
 *
 * Usage: bench-ratelimit [--sizes 1000,1000000,10000000] [--decisions N]
 *        [--flood N] [--no-ref]
 * Prints a table and `RESULT <name> <value> <unit>` lines.
 */
#include "config.h"

#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>

#include <prozsec/ratelimit.h>

#include "conf.h"
#include "coresvc.h"
#include "err.h"
#include "loader.h"

#include "../../plugins/common/khash.h"
#include "../../plugins/common/siphash.h"

#ifndef PZ_BENCH_BUILDDIR
#define PZ_BENCH_BUILDDIR "."
#endif

/* Timed loops use the thread's CPU time: on this shared 2-core machine
 * wall time mostly measures the other tenants (both are printed). */
static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

typedef struct stopwatch {
    uint64_t cpu, wall;
} stopwatch;

static stopwatch sw_start(void)
{
    stopwatch s = {clock_ns(CLOCK_THREAD_CPUTIME_ID), clock_ns(CLOCK_MONOTONIC)};
    return s;
}

/* CPU and wall ns per op since S. */
static void sw_per_op(stopwatch s, uint64_t ops, double *cpu, double *wall)
{
    *cpu = (double)(clock_ns(CLOCK_THREAD_CPUTIME_ID) - s.cpu) / (double)ops;
    if (wall)
        *wall = (double)(clock_ns(CLOCK_MONOTONIC) - s.wall) / (double)ops;
}

static size_t rss_bytes(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

static size_t rss_settled(void)
{
    malloc_trim(0);
    return rss_bytes();
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static inline uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Uniform in [0, N) by multiply-shift (no division in the timed loops). */
static inline uint64_t pick(uint64_t n)
{
    return (uint64_t)(((unsigned __int128)rnd() * n) >> 64);
}

/* "peer-" + 8 hex digits of I. */
static inline void key_of(uint64_t i, char buf[16])
{
    static const char hex[] = "0123456789abcdef";
    memcpy(buf, "peer-", 5);
    for (int k = 0; k < 8; k++)
        buf[5 + k] = hex[(i >> (28 - 4 * k)) & 0xf];
    buf[13] = 0;
}

/* Keys are written into arrays before the timed loops, as a daemon's peer
 * ids are written at authentication long before a request: formatting a
 * key just before hashing it would make every hash wait for the previous
 * decision's store to its (missed) table line to commit (a byte-wise
 * store cannot forward to SipHash's word loads), which measures the store
 * buffer, not the limiter. */
typedef char keybuf[16];

/* COUNT keys: sequential from BASE when N_KEYS is 0, else uniform in
 * [0, N_KEYS). NULL when out of memory. */
static keybuf *make_keys(uint64_t count, uint64_t n_keys, uint64_t base)
{
    keybuf *ks = g_try_new(keybuf, count ? count : 1);
    for (uint64_t i = 0; ks && i < count; i++)
        key_of(n_keys ? pick(n_keys) : base + i, ks[i]);
    return ks;
}

/* ---- the GHashTable reference ------------------------------------------ */

typedef struct ref_bucket {
    double tokens;
    uint64_t last_ns;
} ref_bucket;

typedef struct ref_limiter {
    GHashTable *t;
    double capacity, rate_per_ns;
} ref_limiter;

static int ref_allow(ref_limiter *r, const char *key, double cost, uint64_t now)
{
    ref_bucket *b = g_hash_table_lookup(r->t, key);
    if (!b) {
        b = g_new(ref_bucket, 1);
        b->tokens = r->capacity;
        b->last_ns = now;
        g_hash_table_insert(r->t, g_strdup(key), b);
    } else if (now > b->last_ns) {
        b->tokens += (double)(now - b->last_ns) * r->rate_per_ns;
        if (b->tokens > r->capacity)
            b->tokens = r->capacity;
        b->last_ns = now;
    }
    if (b->tokens < cost)
        return 0;
    b->tokens -= cost;
    return 1;
}

/* ---- plugin instances -------------------------------------------------- */

typedef struct lim {
    const char *label; /* "token-bucket", "gcra", "ghash-ref" */
    const char *tag;   /* for RESULT names */
    pz_provider *prov;
    const pz_ratelimit_provider *rl;
    void *state;
    ref_limiter ref;
    pz_conf_doc *doc;
} lim;

static pz_loader *loader;

static int lim_new(lim *l, const char *provider, uint64_t max_keys)
{
    memset(l, 0, sizeof(*l));
    l->label = provider;
    if (!strcmp(provider, "ghash-ref")) {
        l->tag = "ghash";
        l->ref.t = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        l->ref.capacity = 100;
        l->ref.rate_per_ns = 10 / 1e9;
        return 0;
    }
    l->tag = !strcmp(provider, "token-bucket") ? "tb" : "gcra";
    char text[256];
    if (!strcmp(provider, "gcra"))
        snprintf(text, sizeof(text), "rate: 10\nburst: 100\nkey: peer\nmax_keys: %llu\n",
                 (unsigned long long)max_keys);
    else
        snprintf(text, sizeof(text), "capacity: 100\nrefill_per_second: 10\nkey: peer\nmax_keys: %llu\n",
                 (unsigned long long)max_keys);
    pz_err err;
    pz_err_init(&err);
    const pz_plugin *plugin = NULL;
    int rc = pz_conf_load_string("bench.yaml", text, strlen(text), &l->doc, &err);
    if (!rc)
        rc = pz_loader_load(loader, provider, PZ_KIND_RATELIMIT, &plugin, &err);
    if (!rc)
        rc = pz_provider_new(plugin, provider, pz_conf_root(l->doc), &l->prov, &err);
    if (rc) {
        fprintf(stderr, "bench-ratelimit: %s: %s\n", provider, pz_err_msg(&err));
        pz_err_clear(&err);
        return rc;
    }
    pz_err_clear(&err);
    l->rl = pz_provider_table(l->prov);
    l->state = pz_provider_state(l->prov);
    return 0;
}

static void lim_free(lim *l)
{
    if (l->ref.t)
        g_hash_table_destroy(l->ref.t);
    pz_provider_free(l->prov);
    pz_conf_doc_free(l->doc);
    memset(l, 0, sizeof(*l));
}

static const pz_addr the_addr = {PZ_AF_INET, {192, 0, 2, 1}, 0};

static inline int lim_allow(lim *l, const char *key, uint64_t t)
{
    if (l->ref.t)
        return ref_allow(&l->ref, key, 1, t);
    pz_rl_request req = {sizeof(req), key, &the_addr, NULL, 1, PZ_STATUS_UNKNOWN, t};
    pz_rl_decision d;
    l->rl->allow(l->state, &req, &d);
    return d.allowed;
}

/* ---- runs -------------------------------------------------------------- */

typedef struct result {
    double insert_ns, decide_ns, decide_wall_ns, bytes_per_key, allowed_frac, bytes;
} result;

static volatile uint64_t sink;

/* A buffer the size of a token-bucket table for N_KEYS keys (32 B a key),
 * allocated as the tables are: mmap, advised to use huge pages. */
static uint64_t *table_like(uint64_t n_keys, size_t *words)
{
    *words = (size_t)n_keys * 4;
    size_t bytes = *words * sizeof(uint64_t);
    uint64_t *buf = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED)
        return NULL;
#ifdef MADV_HUGEPAGE
    (void)madvise(buf, bytes, MADV_HUGEPAGE);
#endif
    memset(buf, 1, bytes);
    return buf;
}

/* The memory floor: one dependent random read per step in a table-sized
 * buffer, i.e. the memory latency (no two reads overlap). */
static double memory_floor_ns(uint64_t n_keys, uint64_t steps)
{
    size_t words;
    uint64_t *buf = table_like(n_keys, &words);
    if (!buf)
        return 0;
    uint64_t x = 0x2545f4914f6cdd1dull, acc = 0;
    stopwatch t0 = sw_start();
    for (uint64_t i = 0; i < steps; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x += acc & 1; /* depends on the previous read */
        acc = buf[(size_t)(((unsigned __int128)x * words) >> 64)];
    }
    sink = acc;
    double cpu;
    sw_per_op(t0, steps, &cpu, NULL);
    munmap(buf, words * sizeof(uint64_t));
    return cpu;
}

typedef enum floor_kind {
    FLOOR_SIP, /* SipHash-1-3 of the key */
    FLOOR_KH,  /* the limiters' keyed multiply hash (plugins/common/khash.h) */
    FLOOR_MUL, /* an unkeyed multiply hash of the key's digits */
} floor_kind;

/* The hash floors: for each decision key, its hash and one read at that
 * hash in a table-sized buffer; nothing else (no probe, no state, no call).
 * FLOOR_KH is what any table keyed with the limiters' hash pays at least;
 * FLOOR_SIP the same with SipHash-1-3 (the hash the limiters used before);
 * FLOOR_MUL what an unkeyed hash would cost. The more instructions ahead of
 * each read, the fewer reads of successive decisions the CPU overlaps. */
static double hash_floor_ns(uint64_t n_keys, const keybuf *dec, uint64_t decisions, floor_kind kind)
{
    size_t words;
    uint64_t *buf = table_like(n_keys, &words);
    if (!buf)
        return 0;
    uint8_t k[PZ_SIPHASH_KEY_LEN];
    for (int i = 0; i < PZ_SIPHASH_KEY_LEN; i++)
        k[i] = (uint8_t)rnd();
    pz_khash_key kh;
    for (int i = 0; i < PZ_KHASH_WORDS; i++)
        kh.k[i] = rnd();
    memcpy(kh.sip, k, sizeof(kh.sip));
    uint64_t acc = 0;
    stopwatch t0 = sw_start();
    for (uint64_t i = 0; i < decisions; i++) {
        uint64_t h;
        if (kind == FLOOR_MUL) {
            uint64_t w;
            memcpy(&w, dec[i] + 5, 8);
            h = w * 0x9e3779b97f4a7c15ull;
        } else if (kind == FLOOR_KH) {
            /* The limiters' path for a peer id of up to 16 bytes. */
            h = pz__khash_short(&kh, dec[i], pz__kh_strlen(dec[i]));
        } else {
            h = pz__siphash13(k, dec[i], strlen(dec[i]));
        }
        acc += buf[(size_t)(((unsigned __int128)h * words) >> 64)];
    }
    sink = acc;
    double cpu;
    sw_per_op(t0, decisions, &cpu, NULL);
    munmap(buf, words * sizeof(uint64_t));
    return cpu;
}

static int run_uniform(const char *provider, uint64_t n_keys, const keybuf *ins, const keybuf *dec,
                       uint64_t decisions, result *out)
{
    lim l;
    size_t rss0 = rss_settled();
    if (lim_new(&l, provider, n_keys < 16 ? 16 : n_keys))
        return -1;
    uint64_t t = 1000000000ull;
    stopwatch t0 = sw_start();
    for (uint64_t i = 0; i < n_keys; i++)
        lim_allow(&l, ins[i], t);
    sw_per_op(t0, n_keys, &out->insert_ns, NULL);
    size_t rss1 = rss_bytes();
    out->bytes_per_key = rss1 > rss0 ? (double)(rss1 - rss0) / (double)n_keys : 0;
    uint64_t allowed = 0;
    t0 = sw_start();
    for (uint64_t i = 0; i < decisions; i++) {
        t += 1000; /* 1 us per decision */
        allowed += (uint64_t)lim_allow(&l, dec[i], t);
    }
    sw_per_op(t0, decisions, &out->decide_ns, &out->decide_wall_ns);
    out->allowed_frac = (double)allowed / (double)decisions;
    lim_free(&l);
    return 0;
}

/* Every decision a new key; max_keys bounds the table. */
static int run_flood(const char *provider, uint64_t max_keys, const keybuf *keys, uint64_t flood, result *out)
{
    lim l;
    size_t rss0 = rss_settled();
    if (lim_new(&l, provider, max_keys))
        return -1;
    uint64_t t = 1000000000ull;
    stopwatch t0 = sw_start();
    for (uint64_t i = 0; i < flood; i++) {
        t += 1000;
        lim_allow(&l, keys[i], t);
    }
    sw_per_op(t0, flood, &out->decide_ns, &out->decide_wall_ns);
    size_t rss1 = rss_bytes();
    out->bytes_per_key = rss1 > rss0 ? (double)(rss1 - rss0) / (double)max_keys : 0;
    out->bytes = (double)(rss1 > rss0 ? rss1 - rss0 : 0);
    out->allowed_frac = 1;
    lim_free(&l);
    return 0;
}

static const char *size_name(uint64_t n, char *buf, size_t len) __attribute__((unused));
static const char *size_name(uint64_t n, char *buf, size_t len)
{
    if (n >= 1000000 && n % 1000000 == 0)
        snprintf(buf, len, "%lluM", (unsigned long long)(n / 1000000));
    else if (n >= 1000 && n % 1000 == 0)
        snprintf(buf, len, "%lluK", (unsigned long long)(n / 1000));
    else
        snprintf(buf, len, "%llu", (unsigned long long)n);
    return buf;
}

int main(int argc, char **argv)
{
    gchar *sizes_opt = NULL;
    gint64 decisions = 2000000, flood = 5000000, flood_max = 100000;
    gboolean no_ref = FALSE;
    GOptionEntry entries[] = {
        {"sizes", 0, 0, G_OPTION_ARG_STRING, &sizes_opt, "key counts, comma-separated", "N,N,..."},
        {"decisions", 0, 0, G_OPTION_ARG_INT64, &decisions, "timed decisions per run", "N"},
        {"flood", 0, 0, G_OPTION_ARG_INT64, &flood, "new keys in the flood run (0: skip)", "N"},
        {"flood-max-keys", 0, 0, G_OPTION_ARG_INT64, &flood_max, "max_keys in the flood run", "N"},
        {"no-ref", 0, 0, G_OPTION_ARG_NONE, &no_ref, "skip the GHashTable reference", NULL},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    GOptionContext *ctx = g_option_context_new("— rate limiters: ns/decision and bytes/key");
    g_option_context_add_main_entries(ctx, entries, NULL);
    GError *gerr = NULL;
    if (!g_option_context_parse(ctx, &argc, &argv, &gerr)) {
        fprintf(stderr, "bench-ratelimit: %s\n", gerr->message);
        return 2;
    }
    g_option_context_free(ctx);
    uint64_t sizes[8] = {1000, 1000000, 10000000};
    size_t n_sizes = 3;
    if (sizes_opt) {
        gchar **parts = g_strsplit(sizes_opt, ",", 8);
        n_sizes = 0;
        for (gchar **p = parts; *p; p++)
            sizes[n_sizes++] = g_ascii_strtoull(*p, NULL, 10);
        g_strfreev(parts);
        g_free(sizes_opt);
    }

    const char *dirs[] = {PZ_BENCH_BUILDDIR "/plugins/.libs"};
    if (pz_loader_new_path(dirs, 1, PZ_LOADER_NO_ENV | PZ_LOADER_NO_PLUGINDIR, &loader, NULL)) {
        fprintf(stderr, "bench-ratelimit: cannot create the loader\n");
        return 1;
    }
    const char *limiters[] = {"token-bucket", "gcra", "ghash-ref"};
    size_t n_lim = no_ref ? 2 : 3;
    /* Load the plugins (and touch their code) before any memory is
     * measured. */
    for (size_t k = 0; k < n_lim; k++) {
        lim l;
        if (lim_new(&l, limiters[k], 16))
            return 1;
        lim_allow(&l, "warm-up", 1);
        lim_free(&l);
    }

    printf("Rate limiters, key: peer id, uniform random keys; %lld timed decisions per run\n",
           (long long)decisions);
    printf("(ns are CPU time of this thread; wall time in brackets)\n");
    printf("%-6s %-13s %12s %9s %10s %10s %8s %9s %9s\n", "keys", "limiter", "ns/decision", "[wall]",
           "insert ns", "bytes/key", "allowed", "/kh+read", "/sip+read");
    double tb_ns[8] = {0}, ref_ns[8] = {0};
    for (size_t s = 0; s < n_sizes; s++) {
        char sn[32];
        size_name(sizes[s], sn, sizeof(sn));
        keybuf *ins = make_keys(sizes[s], 0, 0), *dec = make_keys((uint64_t)decisions, sizes[s], 0);
        if (!ins || !dec) {
            fprintf(stderr, "bench-ratelimit: out of memory for %s keys\n", sn);
            return 1;
        }
        double mf = memory_floor_ns(sizes[s], (uint64_t)decisions / 2);
        double hf = hash_floor_ns(sizes[s], dec, (uint64_t)decisions, FLOOR_SIP);
        double kf = hash_floor_ns(sizes[s], dec, (uint64_t)decisions, FLOOR_KH);
        double uf = hash_floor_ns(sizes[s], dec, (uint64_t)decisions, FLOOR_MUL);
        printf("%-6s %-13s %12.1f\n", sn, "(mem latency)", mf);
        printf("%-6s %-13s %12.1f\n", sn, "(sip+read)", hf);
        printf("%-6s %-13s %12.1f\n", sn, "(kh+read)", kf);
        printf("%-6s %-13s %12.1f\n", sn, "(mul+read)", uf);
        printf("RESULT ratelimit_memlatency_%s_ns %.1f ns\n", sn, mf);
        printf("RESULT ratelimit_sipfloor_%s_ns %.1f ns\n", sn, hf);
        printf("RESULT ratelimit_khfloor_%s_ns %.1f ns\n", sn, kf);
        printf("RESULT ratelimit_mulfloor_%s_ns %.1f ns\n", sn, uf);
        for (size_t k = 0; k < n_lim; k++) {
            result r;
            if (run_uniform(limiters[k], sizes[s], ins, dec, (uint64_t)decisions, &r))
                return 1;
            printf("%-6s %-13s %12.1f %9.0f %10.1f %10.1f %7.1f%% %8.2fx %8.2fx\n", sn, limiters[k],
                   r.decide_ns, r.decide_wall_ns, r.insert_ns, r.bytes_per_key, 100 * r.allowed_frac,
                   kf > 0 ? r.decide_ns / kf : 0, hf > 0 ? r.decide_ns / hf : 0);
            const char *tag = k == 0 ? "tb" : k == 1 ? "gcra" : "ghash";
            printf("RESULT ratelimit_%s_%s_ns_per_decision %.1f ns\n", tag, sn, r.decide_ns);
            printf("RESULT ratelimit_%s_%s_bytes_per_key %.1f B\n", tag, sn, r.bytes_per_key);
            if (kf > 0)
                printf("RESULT ratelimit_%s_%s_over_khfloor %.2f x\n", tag, sn, r.decide_ns / kf);
            if (hf > 0)
                printf("RESULT ratelimit_%s_%s_over_sipfloor %.2f x\n", tag, sn, r.decide_ns / hf);
            if (mf > 0)
                printf("RESULT ratelimit_%s_%s_over_memlatency %.2f x\n", tag, sn, r.decide_ns / mf);
            if (k == 0)
                tb_ns[s] = r.decide_ns;
            if (k == 2)
                ref_ns[s] = r.decide_ns;
            fflush(stdout);
        }
        g_free(ins);
        g_free(dec);
        if (!no_ref && tb_ns[s] > 0)
            printf("RESULT ratelimit_ghash_over_tb_%s %.2f x\n", sn, ref_ns[s] / tb_ns[s]);
    }

    if (flood > 0) {

        printf("\nKey flood: %lld never-seen keys, max_keys %lld (every decision inserts and evicts)\n",
               (long long)flood, (long long)flood_max);
        printf("%-13s %12s %9s %14s %15s\n", "limiter", "ns/decision", "[wall]", "bytes", "bytes/max_key");
        keybuf *fk = make_keys((uint64_t)flood, 0, 0x10000000ull);
        if (!fk) {
            fprintf(stderr, "bench-ratelimit: out of memory for the flood keys\n");
            return 1;
        }
        for (size_t k = 0; k < 2; k++) {
            result r;
            if (run_flood(limiters[k], (uint64_t)flood_max, fk, (uint64_t)flood, &r))
                return 1;
            printf("%-13s %12.1f %9.0f %14.0f %15.1f\n", limiters[k], r.decide_ns, r.decide_wall_ns, r.bytes,
                   r.bytes_per_key);
            const char *tag = k == 0 ? "tb" : "gcra";
            printf("RESULT ratelimit_%s_flood_ns_per_decision %.1f ns\n", tag, r.decide_ns);
            printf("RESULT ratelimit_%s_flood_bytes_per_max_key %.1f B\n", tag, r.bytes_per_key);
            fflush(stdout);
        }
        g_free(fk);
    }
    pz_loader_free(loader);
    return 0;
}
