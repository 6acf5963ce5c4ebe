/* plugins/reputation/reputation.c — the reputation connection limiter.
 *
 * The seed's ReputationManager: each peer has a score 0..100 starting at
 * initial_score; each behaviour event adjusts it by a configured amount,
 * clamped; a ring of the last history_size adjustments is kept; the status
 * follows from thresholds (below blocked: blocked; below probation:
 * probation; at or above trusted: trusted; otherwise neutral); admission:
 * blocked never, probation with probability score/100 (randomness from the
 * core), neutral and trusted always, unknown nodes per allow_new_nodes.
 *
 * Beyond the seed:
 *  - scores decay toward initial_score with a half-life;
 *  - a score falling below the blocked threshold bans the node (or, for
 *    events that carry only an address, the address prefix) for a duration
 *    that doubles with each ban up to a maximum; the count is forgotten
 *    after forget_after without a ban; ban/unban by hand through the API; a
 *    peer whose ban ends comes back on probation;
 *  - state persists in data_dir/reputation.db, written atomically (temporary
 *    file, fsync, rename, fsync of the directory) and checked on load by a
 *    length + checksum trailer: a torn or truncated file is never loaded
 *    (it is set aside as reputation.db.bad and the limiter starts empty);
 *  - memory is bounded by max_records; records equal to a new one (score
 *    back at initial, no ban history) are dropped first, banned records
 *    never.
 *
 * Records are heap objects found through a keyed-hash table
 * (plugins/common/ktable.h): entry words [0] fingerprint, [1] record
 * pointer. Node records are keyed "N" + id, address records "P" + family +
 * length + masked address.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <prozsec/connlimit.h>

#include "../common/addr.h"
#include "../common/ktable.h"
#include "../common/siphash.h"
#include "reputation.h"

#define NBEHAVIOR PZ_BEHAVIOR__COUNT
#define MAX_FILE_BYTES ((size_t)1 << 30)
#define NEVER UINT64_MAX

typedef struct rec {
    char kind;     /* 'N' node, 'P' address prefix */
    pz_cidr prefix; /* kind P */
    char id[PZ_NODE_ID_MAX + 1]; /* kind N */
    double score;
    uint64_t score_ns;  /* score is as of this time; decays from here */
    uint64_t ban_until; /* 0: not banned; NEVER: until unbanned */
    uint64_t ban_ended; /* when the last ban ended; 0: never banned */
    uint32_t ban_count; /* bans so far (escalation) */
    uint64_t last_seen;
    uint32_t hist_start, hist_len;
    pz_rep_event hist[];
} rec;

typedef struct rep {
    const pz_core *core;
    uint8_t secret[PZ_SIPHASH_KEY_LEN];
    /* settings */
    double initial, th_blocked, th_probation, th_trusted;
    double adj[NBEHAVIOR];
    uint32_t history_size;
    int allow_new;
    uint64_t half_life_ns; /* 0: no decay */
    int auto_ban, ban_addresses;
    uint64_t ban_base_ns, ban_max_ns, forget_ns;
    unsigned prefix_len[2]; /* [0] IPv4, [1] IPv6: what an address-only event is charged to */
    char *data_dir;
    uint64_t max_records;
    /* state */
    pz_kt kt;
    uint32_t ban_lens[2][129]; /* active prefix bans per family and length */
    int dirty;
} rep;

static const double behavior_defaults[NBEHAVIOR] = {
    [PZ_BEHAVIOR_VALID_REQUEST] = 0.1,       [PZ_BEHAVIOR_AUTH_FAILURE] = -10,
    [PZ_BEHAVIOR_INVALID_SIGNATURE] = -20,   [PZ_BEHAVIOR_REPLAY] = -15,
    [PZ_BEHAVIOR_RATE_LIMITED] = -2,         [PZ_BEHAVIOR_MALFORMED_FRAME] = -10,
    [PZ_BEHAVIOR_TIMEOUT] = -1,              [PZ_BEHAVIOR_HANDSHAKE_FAILURE] = -5,
    [PZ_BEHAVIOR_UNAUTHORIZED_METHOD] = -5,  [PZ_BEHAVIOR_STALE_TIMESTAMP] = -3,
    [PZ_BEHAVIOR_PROTOCOL_VIOLATION] = -10,  [PZ_BEHAVIOR_CONNECTION_FLOOD] = -10,
};

static inline int fam_idx(pz_addr_family f)
{
    return f == PZ_AF_INET6;
}

static inline rec *rec_of(const uint64_t *e)
{
    return (rec *)(uintptr_t)e[1];
}

/* ---- scores, status, bans ---------------------------------------------- */

static double decayed(const rep *r, const rec *x, uint64_t now)
{
    if (!r->half_life_ns || now <= x->score_ns)
        return x->score;
    double k = exp2(-(double)(now - x->score_ns) / (double)r->half_life_ns);
    return r->initial + (x->score - r->initial) * k;
}

static int banned_at(const rec *x, uint64_t now)
{
    return x->ban_until && (x->ban_until == NEVER || now < x->ban_until);
}

static void ban_set(rep *r, rec *x, uint64_t until)
{
    if (!x->ban_until && x->kind == 'P')
        r->ban_lens[fam_idx(x->prefix.family)][x->prefix.len]++;
    x->ban_until = until;
    r->dirty = 1;
}

/* Lift X's ban at NOW; the peer comes back on probation at the least. */
static void ban_clear(rep *r, rec *x, uint64_t ended)
{
    if (!x->ban_until)
        return;
    if (x->kind == 'P')
        r->ban_lens[fam_idx(x->prefix.family)][x->prefix.len]--;
    x->ban_until = 0;
    x->ban_ended = ended ? ended : 1;
    if (x->score < r->th_blocked)
        x->score = r->th_blocked;
    r->dirty = 1;
}

/* Bring X up to NOW: decay, ban expiry, forgetting old bans. */
static void settle(rep *r, rec *x, uint64_t now)
{
    if (now > x->score_ns) {
        double s = decayed(r, x, now);
        if (s != x->score)
            r->dirty = 1;
        x->score = s;
        x->score_ns = now;
    }
    if (x->ban_until && x->ban_until != NEVER && now >= x->ban_until)
        ban_clear(r, x, x->ban_until);
    if (x->ban_count && !x->ban_until && x->ban_ended && now > x->ban_ended &&
        now - x->ban_ended > r->forget_ns) {
        x->ban_count = 0;
        r->dirty = 1;
    }
}

static pz_peer_status status_of(const rep *r, const rec *x, uint64_t now)
{
    if (banned_at(x, now))
        return PZ_STATUS_BLOCKED;
    double s = decayed(r, x, now);
    if (s < r->th_blocked)
        return PZ_STATUS_BLOCKED;
    if (s < r->th_probation)
        return PZ_STATUS_PROBATION;
    if (s >= r->th_trusted)
        return PZ_STATUS_TRUSTED;
    return PZ_STATUS_NEUTRAL;
}

static uint64_t escalated(const rep *r, uint32_t count)
{
    uint64_t d = r->ban_base_ns;
    for (uint32_t i = 0; i < count && d < r->ban_max_ns; i++)
        d = d > UINT64_MAX / 2 ? UINT64_MAX : d * 2;
    return d < r->ban_max_ns ? d : r->ban_max_ns;
}

static void describe(const rec *x, char *buf, size_t len)
{
    if (x->kind == 'N') {
        snprintf(buf, len, "node %s", x->id);
    } else {
        char c[PZ_CIDR_STRLEN];
        snprintf(buf, len, "address %s", pz__cidr_format(&x->prefix, c, sizeof(c)));
    }
}

/* Ban X at NOW for DURATION (0: escalating default). */
static void ban_apply(rep *r, rec *x, uint64_t duration, uint64_t now, const char *why)
{
    settle(r, x, now);
    if (!duration)
        duration = escalated(r, x->ban_count);
    uint64_t until = duration >= NEVER - now ? NEVER : now + duration;
    if (x->ban_until && (x->ban_until == NEVER || x->ban_until >= until) && !why)
        until = x->ban_until; /* a manual ban never shortens one in force */
    x->ban_count++;
    ban_set(r, x, until);
    char who[PZ_NODE_ID_MAX + 16];
    describe(x, who, sizeof(who));
    if (until == NEVER)
        r->core->log(r->core, PZ_LOG_NOTICE, "banned %s until unbanned (ban #%u)%s%s", who, x->ban_count,
                     why ? ": " : "", why ? why : "");
    else
        r->core->log(r->core, PZ_LOG_NOTICE, "banned %s for %.0f s (ban #%u)%s%s", who,
                     (double)(until - now) / 1e9, x->ban_count, why ? ": " : "", why ? why : "");
    r->core->metric_add(r->core, "bans", x->kind == 'N' ? "node" : "address", 1);
}

/* ---- the record table -------------------------------------------------- */

static pz_kt_class classify(const uint64_t *e, uint64_t now, uint64_t *age, void *ctx)
{
    const rep *r = ctx;
    const rec *x = rec_of(e);
    if (banned_at(x, now))
        return PZ_KT_PINNED;
    *age = x->last_seen;
    if (x->kind == 'N' && !r->allow_new)
        return PZ_KT_LIVE; /* forgetting a node would lock it out */
    if (x->ban_count && !(x->ban_ended && now > x->ban_ended && now - x->ban_ended > r->forget_ns))
        return PZ_KT_LIVE;
    if (fabs(decayed(r, x, now) - r->initial) < 0.05)
        return PZ_KT_IDLE;
    return PZ_KT_LIVE;
}

static void drop(uint64_t *e, void *ctx)
{
    rep *r = ctx;
    rec *x = rec_of(e);
    if (x->ban_until && x->kind == 'P')
        r->ban_lens[fam_idx(x->prefix.family)][x->prefix.len]--;
    free(x);
    r->dirty = 1;
}

static uint64_t fp_node(const rep *r, const char *id)
{
    pz_siphash s;
    pz__siphash_init(&s, r->secret);
    pz__siphash_update(&s, "N", 1);
    pz__siphash_update(&s, id, strlen(id));
    return pz__kt_fp(pz__siphash_final(&s));
}

static uint64_t fp_prefix(const rep *r, const pz_cidr *p)
{
    uint8_t b[3 + 16];
    b[0] = 'P';
    b[1] = (uint8_t)p->family;
    b[2] = (uint8_t)p->len;
    memcpy(b + 3, p->bytes, 16);
    return pz__kt_fp(pz__siphash13(r->secret, b, sizeof(b)));
}

static int same_key(const rec *x, char kind, const char *id, const pz_cidr *p)
{
    if (x->kind != kind)
        return 0;
    if (kind == 'N')
        return !strcmp(x->id, id);
    return x->prefix.family == p->family && x->prefix.len == p->len &&
           !memcmp(x->prefix.bytes, p->bytes, sizeof(p->bytes));
}

/* Find the record for node ID or prefix P; with CREATE, make one (score
 * initial) when absent. NULL when absent, out of memory, every record is
 * pinned, or (2^-64) another key shares the fingerprint. */
static rec *lookup(rep *r, char kind, const char *id, const pz_cidr *p, uint64_t now, int create)
{
    uint64_t fp = kind == 'N' ? fp_node(r, id) : fp_prefix(r, p);
    uint64_t *e = pz__kt_find(&r->kt, fp);
    if (e)
        return same_key(rec_of(e), kind, id, p) ? rec_of(e) : NULL;
    if (!create)
        return NULL;
    rec *x = calloc(1, sizeof(*x) + r->history_size * sizeof(pz_rep_event));
    if (!x)
        return NULL;
    if (pz__kt_insert(&r->kt, fp, now, &e)) {
        free(x);
        return NULL;
    }
    x->kind = kind;
    if (kind == 'N')
        snprintf(x->id, sizeof(x->id), "%s", id);
    else
        x->prefix = *p;
    x->score = r->initial;
    x->score_ns = now;
    x->last_seen = now;
    e[1] = (uint64_t)(uintptr_t)x;
    r->dirty = 1;
    return x;
}

static int addr_prefix(const rep *r, const pz_addr *a, pz_cidr *out)
{
    if (a->family != PZ_AF_INET && a->family != PZ_AF_INET6)
        return 0;
    pz__cidr_of(a, r->prefix_len[fam_idx(a->family)], out);
    return 1;
}

static void hist_push(rep *r, rec *x, const pz_rep_event *ev)
{
    if (!r->history_size)
        return;
    uint32_t i = (x->hist_start + x->hist_len) % r->history_size;
    x->hist[i] = *ev;
    if (x->hist_len < r->history_size)
        x->hist_len++;
    else
        x->hist_start = (x->hist_start + 1) % r->history_size;
}

/* ---- configuration ----------------------------------------------------- */

static const pz_conf *value_node(const pz_core *core, const pz_conf *map, const char *key)
{
    for (size_t i = 0; map && i < core->conf_len(map); i++) {
        const char *k = NULL;
        const pz_conf *v = core->conf_at(map, i, &k);
        if (k && !strcmp(k, key))
            return v;
    }
    return map;
}

static int parse(rep *r, const pz_conf *conf, pz_err *err)
{
    const pz_core *core = r->core;
    int rc = 0;
    int64_t v;
    const pz_conf *m = NULL;
    const char *dir = NULL;
    r->initial = 50;
    r->th_blocked = 10;
    r->th_probation = 30;
    r->th_trusted = 80;
    for (int i = 0; i < NBEHAVIOR; i++)
        r->adj[i] = behavior_defaults[i];
    r->history_size = 16;
    r->allow_new = 1;
    r->half_life_ns = 3600ULL * 1000000000ULL;
    r->auto_ban = 1;
    r->ban_addresses = 1;
    r->ban_base_ns = 600ULL * 1000000000ULL;
    r->ban_max_ns = 86400ULL * 1000000000ULL;
    r->forget_ns = 7 * 86400ULL * 1000000000ULL;
    r->prefix_len[0] = 32;
    r->prefix_len[1] = 64;
    r->max_records = 100000;
    if (!conf)
        goto out;

#define TRY(x)                                                                                               \
    do {                                                                                                     \
        rc = (x);                                                                                            \
        if (rc)                                                                                              \
            goto out;                                                                                        \
    } while (0)
    TRY(core->conf_double(conf, "initial_score", 50, 0, 100, &r->initial, err));
    TRY(core->conf_map(conf, "thresholds", &m, err));
    TRY(core->conf_double(conf, "thresholds.blocked", 10, 0, 100, &r->th_blocked, err));
    TRY(core->conf_double(conf, "thresholds.probation", 30, 0, 100, &r->th_probation, err));
    TRY(core->conf_double(conf, "thresholds.trusted", 80, 0, 100, &r->th_trusted, err));
    if (!(r->th_blocked <= r->th_probation && r->th_probation <= r->th_trusted)) {
        rc = core->conf_error(m ? m : conf, err,
                              "expected blocked <= probation <= trusted, found %g, %g, %g", r->th_blocked,
                              r->th_probation, r->th_trusted);
        goto out;
    }
    TRY(core->conf_map(conf, "adjustments", &m, err));
    for (int i = 1; i < NBEHAVIOR; i++) {
        char key[64];
        snprintf(key, sizeof(key), "adjustments.%s", pz_behavior_name((pz_behavior)i));
        TRY(core->conf_double(conf, key, behavior_defaults[i], -100, 100, &r->adj[i], err));
    }
    TRY(core->conf_int(conf, "history_size", 16, 0, 4096, &v, err));
    r->history_size = (uint32_t)v;
    TRY(core->conf_bool(conf, "allow_new_nodes", 1, &r->allow_new, err));
    TRY(core->conf_duration(conf, "decay_half_life", r->half_life_ns, &r->half_life_ns, err));
    TRY(core->conf_map(conf, "ban", &m, err));
    TRY(core->conf_bool(conf, "ban.auto", 1, &r->auto_ban, err));
    TRY(core->conf_bool(conf, "ban.addresses", 1, &r->ban_addresses, err));
    TRY(core->conf_duration(conf, "ban.duration", r->ban_base_ns, &r->ban_base_ns, err));
    TRY(core->conf_duration(conf, "ban.max_duration", r->ban_max_ns, &r->ban_max_ns, err));
    TRY(core->conf_duration(conf, "ban.forget_after", r->forget_ns, &r->forget_ns, err));
    if (!r->ban_base_ns) {
        rc = core->conf_error(value_node(core, m, "duration"), err, "expected a duration above 0");
        goto out;
    }
    if (r->ban_max_ns < r->ban_base_ns) {
        rc = core->conf_error(value_node(core, m, "max_duration"), err,
                              "expected at least ban.duration (%.0f s)", (double)r->ban_base_ns / 1e9);
        goto out;
    }
    TRY(core->conf_int(conf, "address_prefix_v4", 32, 8, 32, &v, err));
    r->prefix_len[0] = (unsigned)v;
    TRY(core->conf_int(conf, "address_prefix_v6", 64, 16, 128, &v, err));
    r->prefix_len[1] = (unsigned)v;
    TRY(core->conf_int(conf, "max_records", 100000, PZ_KT_MIN_KEYS, 1 << 28, &v, err));
    r->max_records = (uint64_t)v;
    TRY(core->conf_string(conf, "data_dir", NULL, &dir, err));
    if (dir) {
        struct stat st;
        const char *why = NULL;
        if (!*dir)
            why = "empty path";
        else if (stat(dir, &st) != 0)
            why = strerror(errno);
        else if (!S_ISDIR(st.st_mode))
            why = "not a directory";
        if (why) {
            rc = core->conf_error(value_node(core, conf, "data_dir"), err, "\"%s\": %s", dir, why);
            goto out;
        }
        r->data_dir = strdup(dir);
        if (!r->data_dir) {
            rc = core->error(core, err, PZ_ENOMEM, "out of memory");
            goto out;
        }
    }
#undef TRY
out:
    return rc;
}

/* ---- persistence ------------------------------------------------------- */

static const char magic_head[8] = {'P', 'Z', 'R', 'E', 'P', 'D', 'B', '1'};
static const char magic_tail[8] = {'P', 'Z', 'R', 'E', 'P', 'E', 'N', 'D'};
/* The checksum detects torn and truncated files, not tampering. */
static const uint8_t sum_key[PZ_SIPHASH_KEY_LEN] = "prozsec-rep-sum";

typedef struct wbuf {
    int fd;
    int err; /* errno of the first failure */
    size_t n;
    uint64_t total;
    pz_siphash sum;
    uint8_t buf[65536];
} wbuf;

static void w_flush(wbuf *w)
{
    size_t off = 0;
    while (!w->err && off < w->n) {
        ssize_t k = write(w->fd, w->buf + off, w->n - off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            w->err = k < 0 ? errno : EIO;
        else
            off += (size_t)k;
    }
    w->n = 0;
}

static void w_raw(wbuf *w, const void *p, size_t len)
{
    const uint8_t *b = p;
    while (len) {
        size_t k = sizeof(w->buf) - w->n < len ? sizeof(w->buf) - w->n : len;
        memcpy(w->buf + w->n, b, k);
        w->n += k;
        b += k;
        len -= k;
        if (w->n == sizeof(w->buf))
            w_flush(w);
    }
}

static void w_put(wbuf *w, const void *p, size_t len)
{
    pz__siphash_update(&w->sum, p, len);
    w->total += len;
    w_raw(w, p, len);
}

static void w_u8(wbuf *w, uint8_t v)
{
    w_put(w, &v, 1);
}

static void w_u64(wbuf *w, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    w_put(w, b, 8);
}

static void w_f64(wbuf *w, double d)
{
    uint64_t v;
    memcpy(&v, &d, 8);
    w_u64(w, v);
}

static uint64_t age(uint64_t now, uint64_t t)
{
    return now > t ? now - t : 0;
}

/* Write the state to TMP, then rename it over PATH. On failure the error
 * ("FILE: STEP: REASON") goes to ERR and into WHY (WHY_LEN bytes). */
static int write_file(rep *r, const char *tmp, const char *path, pz_err *err, char *why, size_t why_len)
{
    const pz_core *core = r->core;
    int rc = 0, fd = -1, dfd = -1;
    const char *step = "open", *what = tmp;
    int renamed = 0;
    uint64_t now = core->monotonic_ns(core), real = core->realtime_ns(core);
    wbuf *w = malloc(sizeof(*w));
    if (!w)
        return core->error(core, err, PZ_ENOMEM, "out of memory");
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = errno;
        goto fail;
    }
    w->fd = fd;
    w->err = 0;
    w->n = 0;
    w->total = 0;
    pz__siphash_init(&w->sum, sum_key);
    w_put(w, magic_head, sizeof(magic_head));
    w_u64(w, real);
    w_u64(w, r->kt.count);
    for (size_t i = 0; i < r->kt.nslots; i++) {
        const uint64_t *e = pz__kt_slot(&r->kt, i);
        if (!e[0])
            continue;
        rec *x = rec_of(e);
        settle(r, x, now);
        w_u8(w, (uint8_t)x->kind);
        if (x->kind == 'N') {
            size_t n = strlen(x->id);
            w_u8(w, (uint8_t)n);
            w_put(w, x->id, n);
        } else {
            w_u8(w, (uint8_t)x->prefix.family);
            w_u8(w, (uint8_t)x->prefix.len);
            w_put(w, x->prefix.bytes, 16);
        }
        w_f64(w, x->score);
        w_u64(w, x->ban_until == NEVER ? NEVER : x->ban_until ? x->ban_until - now : 0);
        w_u64(w, x->ban_ended ? age(now, x->ban_ended) : NEVER);
        w_u64(w, x->ban_count);
        w_u64(w, age(now, x->last_seen));
        w_u64(w, x->hist_len);
        for (uint32_t k = 0; k < x->hist_len; k++) {
            const pz_rep_event *h = &x->hist[(x->hist_start + k) % r->history_size];
            w_u8(w, (uint8_t)h->behavior);
            w_u64(w, age(now, h->time_ns));
            w_f64(w, h->prev_score);
            w_f64(w, h->applied);
        }
    }
    uint64_t total = w->total, sum = pz__siphash_final(&w->sum);
    w_raw(w, magic_tail, sizeof(magic_tail));
    uint8_t b[16];
    for (int i = 0; i < 8; i++) {
        b[i] = (uint8_t)(total >> (8 * i));
        b[8 + i] = (uint8_t)(sum >> (8 * i));
    }
    w_raw(w, b, sizeof(b));
    step = "write";
    w_flush(w);
    if (w->err) {
        rc = w->err;
        goto fail;
    }
    step = "fsync";
    if (fsync(fd) != 0) {
        rc = errno;
        goto fail;
    }
    step = "close";
    int crc = close(fd);
    fd = -1;
    if (crc != 0) {
        rc = errno;
        goto fail;
    }
    step = "rename";
    if (rename(tmp, path) != 0) {
        rc = errno;
        goto fail;
    }
    /* Make the rename itself durable. */
    renamed = 1;
    what = r->data_dir;
    step = "fsync directory";
    dfd = open(r->data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0) {
        rc = errno;
        goto fail;
    }
    close(dfd);
    free(w);
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    if (!renamed)
        unlink(tmp);
    free(w);
    snprintf(why, why_len, "%s: %s: %s", what, step, strerror(rc));
    return core->error(core, err, PZ_EIO, "%s", why);
}

typedef struct rbuf {
    const uint8_t *p;
    size_t n;
    int bad;
} rbuf;

static const uint8_t *r_get(rbuf *b, size_t len)
{
    if (b->bad || b->n < len) {
        b->bad = 1;
        return NULL;
    }
    const uint8_t *p = b->p;
    b->p += len;
    b->n -= len;
    return p;
}

static uint8_t r_u8(rbuf *b)
{
    const uint8_t *p = r_get(b, 1);
    return p ? *p : 0;
}

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t r_u64(rbuf *b)
{
    const uint8_t *p = r_get(b, 8);
    return p ? le64(p) : 0;
}

static double r_f64(rbuf *b)
{
    uint64_t v = r_u64(b);
    double d;
    memcpy(&d, &v, 8);
    return d;
}

static int valid_id(const char *s, size_t n)
{
    if (n < 1 || n > PZ_NODE_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static uint64_t back(uint64_t now, uint64_t a)
{
    return a < now ? now - a : 1;
}

/* Parse a verified file body. With APPLY 0 only check it; with APPLY 1
 * create the records (a record with no room, every slot pinned, is
 * skipped). Returns 0 or PZ_EINVAL (*WHY says how). */
static int parse_file(rep *r, const uint8_t *data, size_t len, int apply, const char **why)
{
    const pz_core *core = r->core;
    rbuf b = {data, len, 0};
    uint64_t now = core->monotonic_ns(core), real = core->realtime_ns(core);
    r_get(&b, sizeof(magic_head));
    uint64_t saved = r_u64(&b), count = r_u64(&b);
    uint64_t off = real > saved ? real - saved : 0; /* time the node was down */
    *why = "malformed record";
    for (uint64_t i = 0; i < count && !b.bad; i++) {
        char kind = (char)r_u8(&b), id[PZ_NODE_ID_MAX + 1] = "";
        pz_cidr p;
        memset(&p, 0, sizeof(p));
        if (kind == 'N') {
            uint8_t n = r_u8(&b);
            const uint8_t *s = r_get(&b, n);
            if (!s || !valid_id((const char *)s, n))
                return PZ_EINVAL;
            memcpy(id, s, n);
            id[n] = 0;
        } else if (kind == 'P') {
            p.family = (pz_addr_family)r_u8(&b);
            p.len = r_u8(&b);
            const uint8_t *s = r_get(&b, 16);
            if (!s || (p.family != PZ_AF_INET && p.family != PZ_AF_INET6) || p.len > pz__addr_bits(p.family))
                return PZ_EINVAL;
            memcpy(p.bytes, s, 16);
        } else {
            return PZ_EINVAL;
        }
        double score = r_f64(&b);
        uint64_t ban_left = r_u64(&b), ended_age = r_u64(&b), ban_count = r_u64(&b), seen_age = r_u64(&b);
        uint64_t nh = r_u64(&b);
        if (b.bad || !isfinite(score) || score < 0 || score > 100 || ban_count > UINT32_MAX || nh > b.n / 25)
            return PZ_EINVAL;
        rec *x = apply ? lookup(r, kind, id, &p, now, 1) : NULL;
        if (x) {
            x->score = score;
            /* Decay over the downtime too. */
            x->score_ns = back(now, off);
            settle(r, x, now);
            x->ban_count = (uint32_t)ban_count;
            x->ban_ended = ended_age == NEVER ? 0 : back(now, ended_age > NEVER - off ? NEVER - 1 : ended_age + off);
            x->last_seen = back(now, seen_age > NEVER - off ? NEVER - 1 : seen_age + off);
            if (ban_left == NEVER)
                ban_set(r, x, NEVER);
            else if (ban_left > off)
                ban_set(r, x, now + (ban_left - off));
            else if (ban_left) {
                /* Ended while the node was down: as ban_clear does. */
                x->ban_ended = back(now, off - ban_left);
                if (x->score < r->th_blocked)
                    x->score = r->th_blocked;
            }
        } else if (apply) {
            core->log(core, PZ_LOG_WARNING, "no room to load a record (max_records %llu)",
                      (unsigned long long)r->max_records);
        }
        for (uint64_t k = 0; k < nh; k++) {
            pz_rep_event ev;
            ev.behavior = (pz_behavior)r_u8(&b);
            uint64_t a = r_u64(&b);
            ev.time_ns = back(now, a > NEVER - off ? NEVER - 1 : a + off);
            ev.prev_score = r_f64(&b);
            ev.applied = r_f64(&b);
            if (b.bad || ev.behavior < 1 || ev.behavior >= NBEHAVIOR)
                return PZ_EINVAL;
            if (x)
                hist_push(r, x, &ev);
        }
    }
    if (b.bad || b.n) {
        *why = "length does not match its records";
        return PZ_EINVAL;
    }
    return 0;
}

/* Read PATH whole and check its trailer. 0 with *DATA (free it) and
 * *LEN; PZ_ENOENT when absent; PZ_EIO on read errors; PZ_EINVAL when torn
 * (*WHY says how). */
static int read_verified(const char *path, uint8_t **data, size_t *len, const char **why)
{
    int rc = 0;
    uint8_t *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    *data = NULL;
    if (fd < 0)
        return errno == ENOENT ? PZ_ENOENT : PZ_EIO;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = PZ_EIO;
        *why = "not a regular file";
        goto out;
    }
    size_t size = (size_t)st.st_size;
    if (size < sizeof(magic_head) + 16 + 24 || size > MAX_FILE_BYTES) {
        rc = PZ_EINVAL;
        *why = "truncated (too short)";
        goto out;
    }
    buf = malloc(size);
    if (!buf) {
        rc = PZ_ENOMEM;
        *why = "out of memory";
        goto out;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t k = read(fd, buf + got, size - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    if (got != size) {
        rc = PZ_EIO;
        *why = "short read";
        goto out;
    }
    const uint8_t *t = buf + size - 24;
    uint64_t body = le64(t + 8), sum = le64(t + 16);
    if (memcmp(t, magic_tail, 8) || body != size - 24) {
        rc = PZ_EINVAL;
        *why = "torn or truncated (no valid trailer)";
        goto out;
    }
    if (memcmp(buf, magic_head, 8)) {
        rc = PZ_EINVAL;
        *why = "not a reputation file (bad magic)";
        goto out;
    }
    if (pz__siphash13(sum_key, buf, body) != sum) {
        rc = PZ_EINVAL;
        *why = "checksum mismatch";
        goto out;
    }
    *data = buf;
    *len = body;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return rc;
}

static void clear_records(rep *r)
{
    for (size_t i = 0; i < r->kt.nslots; i++) {
        uint64_t *e = pz__kt_slot(&r->kt, i);
        if (e[0])
            free(rec_of(e));
        memset(e, 0, r->kt.stride * sizeof(uint64_t));
    }
    r->kt.count = 0;
    memset(r->ban_lens, 0, sizeof(r->ban_lens));
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s/%s", dir, name);
    return s;
}

static int load(rep *r, pz_err *err)
{
    const pz_core *core = r->core;
    int rc = 0;
    const char *why = "";
    uint8_t *data = NULL;
    size_t len = 0;
    char *path = join(r->data_dir, PZ_REP_FILE), *tmp = join(r->data_dir, PZ_REP_TMP_FILE);
    char *bad = join(r->data_dir, PZ_REP_BAD_FILE);
    if (!path || !tmp || !bad) {
        rc = core->error(core, err, PZ_ENOMEM, "out of memory");
        goto out;
    }
    /* A temporary file is what a crash during flush leaves: never load it. */
    if (unlink(tmp) == 0)
        core->log(core, PZ_LOG_WARNING, "%s: removed an unfinished save", tmp);
    rc = read_verified(path, &data, &len, &why);
    if (rc == PZ_ENOENT) {
        rc = 0;
        goto out;
    }
    if (rc == 0) {
        rc = parse_file(r, data, len, 0, &why);
        if (rc == 0) {
            parse_file(r, data, len, 1, &why);
            core->log(core, PZ_LOG_INFO, "%s: loaded %zu records", path, r->kt.count);
            r->dirty = 0;
            goto out;
        }
    }
    if (rc == PZ_ENOMEM) {
        rc = core->error(core, err, PZ_ENOMEM, "%s: %s", path, why);
        goto out;
    }
    /* Torn, truncated or unreadable: start empty, keep the file aside. */
    core->log(core, PZ_LOG_WARNING, "%s: not loaded: %s; starting with no reputation state (kept as %s)", path,
              why, PZ_REP_BAD_FILE);
    if (rename(path, bad) != 0)
        core->log(core, PZ_LOG_WARNING, "%s: cannot rename to %s: %s", path, bad, strerror(errno));
    rc = 0;
out:
    free(data);
    free(path);
    free(tmp);
    free(bad);
    return rc;
}

/* ---- provider ---------------------------------------------------------- */

/* Save the state when it changed; WHY (WHY_LEN bytes) gets the reason of
 * a failure. The previous file stays until a save succeeds, and the state
 * stays dirty, so the next save tries again. */
static int save(rep *r, pz_err *err, char *why, size_t why_len)
{
    int rc = 0;
    if (!r->data_dir || !r->dirty)
        return 0;
    char *path = join(r->data_dir, PZ_REP_FILE), *tmp = join(r->data_dir, PZ_REP_TMP_FILE);
    if (!path || !tmp) {
        snprintf(why, why_len, "out of memory");
        rc = r->core->error(r->core, err, PZ_ENOMEM, "out of memory");
    } else {
        rc = write_file(r, tmp, path, err, why, why_len);
    }
    if (!rc)
        r->dirty = 0;
    free(path);
    free(tmp);
    return rc;
}

static int rep_flush(void *state, pz_err *err)
{
    char why[PATH_MAX + 128];
    return save(state, err, why, sizeof(why));
}

/* After a manual ban or unban: the change is in force in memory whatever
 * the disk says, so a failed save (a full disk) is logged and not
 * returned — the caller then acts on the ban (the core closes the peer's
 * sessions) — and the next save tries again. */
static void save_after(rep *r, const char *what, const char *target)
{
    char why[PATH_MAX + 128];
    if (save(r, NULL, why, sizeof(why)) != 0)
        r->core->log(r->core, PZ_LOG_WARNING, "%s %s is in force but not saved (the next save retries): %s", what,
                     target, why);
}

static void rep_destroy(void *state)
{
    rep *r = state;
    if (!r)
        return;
    if (r->kt.slots && r->data_dir && r->dirty) {
        /* Best effort: the core normally flushes before it destroys. */
        int rc = rep_flush(r, NULL);
        if (rc)
            r->core->log(r->core, PZ_LOG_WARNING, "final save to %s failed (error %d)", r->data_dir, rc);
    }
    if (r->kt.slots)
        clear_records(r);
    pz__kt_clear(&r->kt);
    free(r->data_dir);
    explicit_bzero(r->secret, sizeof(r->secret));
    free(r);
}

static int rep_create(const pz_core *core, const pz_conf *conf, void **state, pz_err *err)
{
    int rc = 0;
    rep *r = calloc(1, sizeof(*r));
    *state = NULL;
    if (!r)
        return core->error(core, err, PZ_ENOMEM, "out of memory");
    r->core = core;
    rc = parse(r, conf, err);
    if (rc)
        goto out;
    rc = core->random(core, r->secret, sizeof(r->secret));
    if (rc) {
        rc = core->error(core, err, rc, "cannot draw the key-hash secret");
        goto out;
    }
    rc = pz__kt_init(&r->kt, 2, (size_t)r->max_records, classify, r);
    if (rc) {
        rc = core->error(core, err, rc, "cannot allocate the record table");
        goto out;
    }
    r->kt.drop = drop;
    if (r->data_dir) {
        rc = load(r, err);
        if (rc)
            goto out;
    }
    *state = r;
out:
    if (rc) {
        r->dirty = 0;
        rep_destroy(r);
    }
    return rc;
}

static void admit(pz_admit_result *out)
{
    out->admitted = 1;
    out->reason = 0;
    out->retry_after_ns = 0;
    out->detail[0] = 0;
}

static void refuse(pz_admit_result *out, int reason, uint64_t until, uint64_t now, const char *fmt, ...)
    PZ_PRINTF(5, 6);
static void refuse(pz_admit_result *out, int reason, uint64_t until, uint64_t now, const char *fmt, ...)
{
    va_list ap;
    out->admitted = 0;
    out->reason = reason;
    out->retry_after_ns = until && until != NEVER && until > now ? until - now : 0;
    va_start(ap, fmt);
    vsnprintf(out->detail, sizeof(out->detail), fmt, ap);
    va_end(ap);
}

static int rep_admit_address(void *state, const pz_addr *addr, uint64_t now, pz_admit_result *out)
{
    rep *r = state;
    if (addr->family != PZ_AF_INET && addr->family != PZ_AF_INET6) {
        admit(out);
        return 0;
    }
    int f = fam_idx(addr->family);
    unsigned bits = pz__addr_bits(addr->family);
    char text[PZ_CIDR_STRLEN];
    for (unsigned len = 0; len <= bits; len++) {
        if (!r->ban_lens[f][len] && len != r->prefix_len[f])
            continue;
        pz_cidr p;
        pz__cidr_of(addr, len, &p);
        rec *x = lookup(r, 'P', NULL, &p, now, 0);
        if (!x)
            continue;
        settle(r, x, now);
        if (banned_at(x, now)) {
            refuse(out, PZ_REP_REASON_BANNED_ADDRESS, x->ban_until, now, "address %s is banned",
                   pz__cidr_format(&p, text, sizeof(text)));
            return 0;
        }
        if (len == r->prefix_len[f] && x->score < r->th_blocked) {
            refuse(out, PZ_REP_REASON_BLOCKED, 0, now, "address %s is blocked (score %.1f)",
                   pz__cidr_format(&p, text, sizeof(text)), x->score);
            return 0;
        }
    }
    admit(out);
    return 0;
}

static int rep_admit_identity(void *state, const pz_addr *addr, const pz_identity *id, uint64_t now,
                              pz_admit_result *out)
{
    rep *r = state;
    (void)addr;
    if (!id || !id->node_id) {
        admit(out);
        return 0;
    }
    rec *x = lookup(r, 'N', id->node_id, NULL, now, 0);
    if (!x) {
        if (r->allow_new)
            admit(out);
        else
            refuse(out, PZ_REP_REASON_NEW_NODE, 0, now, "unknown node %.64s (allow_new_nodes is false)",
                   id->node_id);
        return 0;
    }
    settle(r, x, now);
    switch (status_of(r, x, now)) {
    case PZ_STATUS_BLOCKED:
        if (banned_at(x, now))
            refuse(out, PZ_REP_REASON_BANNED_NODE, x->ban_until, now, "node %.64s is banned", x->id);
        else
            refuse(out, PZ_REP_REASON_BLOCKED, 0, now, "node %.64s is blocked (score %.1f)", x->id, x->score);
        return 0;
    case PZ_STATUS_PROBATION: {
        uint32_t draw = 0;
        /* Admit with probability score/100; fail closed without randomness. */
        int ok = r->core->random(r->core, &draw, sizeof(draw)) == 0 &&
                 (double)draw < x->score / 100.0 * 4294967296.0;
        if (ok)
            admit(out);
        else
            refuse(out, PZ_REP_REASON_PROBATION, 0, now, "node %.64s on probation (score %.1f)", x->id,
                   x->score);
        return 0;
    }
    default:
        admit(out);
        return 0;
    }
}

static void rep_release(void *state, const pz_addr *addr, const pz_identity *id, pz_conn_stage stage,
                        uint64_t now)
{
    (void)state;
    (void)addr;
    (void)id;
    (void)stage;
    (void)now;
}

static void rep_on_behavior(void *state, const pz_behavior_event *ev)
{
    rep *r = state;
    if (!ev || ev->behavior < 1 || ev->behavior >= NBEHAVIOR)
        return;
    uint64_t now = ev->now_ns;
    rec *x = NULL;
    pz_cidr p;
    if (ev->node_id && valid_id(ev->node_id, strlen(ev->node_id)))
        x = lookup(r, 'N', ev->node_id, NULL, now, 1);
    else if (addr_prefix(r, &ev->addr, &p))
        x = lookup(r, 'P', NULL, &p, now, 1);
    else
        return;
    r->core->metric_add(r->core, "events", pz_behavior_name(ev->behavior), 1);
    if (!x) {
        r->core->metric_add(r->core, "events_dropped", NULL, 1);
        return;
    }
    settle(r, x, now);
    double prev = x->score, next = prev + r->adj[ev->behavior];
    if (next < 0)
        next = 0;
    if (next > 100)
        next = 100;
    x->score = next;
    if (now > x->last_seen)
        x->last_seen = now;
    pz_rep_event h = {ev->behavior, now, prev, next - prev};
    hist_push(r, x, &h);
    r->dirty = 1;
    if (r->auto_ban && next < r->th_blocked && !banned_at(x, now) && (x->kind == 'N' || r->ban_addresses)) {
        char why[64];
        snprintf(why, sizeof(why), "score %.1f below %g after %s", next, r->th_blocked,
                 pz_behavior_name(ev->behavior));
        ban_apply(r, x, 0, now, why);
    }
}

static int rep_peer_status(void *state, const char *node_id, uint64_t now, pz_peer_status *out)
{
    rep *r = state;
    rec *x = node_id ? lookup(r, 'N', node_id, NULL, now, 0) : NULL;
    if (!x) {
        *out = PZ_STATUS_UNKNOWN;
        return 0;
    }
    settle(r, x, now);
    *out = status_of(r, x, now);
    return 0;
}

/* ABI 1.1 peer_info: score, status, ban and the last adjustments of NODE_ID
 * (at most PZ_PEER_HISTORY_MAX, oldest first). */
static int rep_peer_info(void *state, const char *node_id, uint64_t now, pz_peer_info *out)
{
    rep *r = state;
    if (!out || out->struct_size < sizeof(*out))
        return PZ_EINVAL;
    rec *x = node_id ? lookup(r, 'N', node_id, NULL, now, 0) : NULL;
    if (!x)
        return PZ_ENOENT;
    settle(r, x, now);
    out->score = x->score;
    out->status = status_of(r, x, now);
    out->banned_until_ns = banned_at(x, now) ? x->ban_until : 0;
    out->n_history = 0;
    uint32_t first = x->hist_len > PZ_PEER_HISTORY_MAX ? x->hist_len - PZ_PEER_HISTORY_MAX : 0;
    for (uint32_t k = first; k < x->hist_len; k++) {
        const pz_rep_event *h = &x->hist[(x->hist_start + k) % r->history_size];
        pz_peer_history *o = &out->history[out->n_history++];
        o->behavior = h->behavior;
        o->time_ns = h->time_ns;
        o->prev_score = h->prev_score;
        o->delta = h->applied;
    }
    return 0;
}

/* Parse a ban target: "node:<id>", an address or CIDR, or a node id. */
static int target_parse(const char *target, char *id, pz_cidr *p, char *kind)
{
    if (!target)
        return PZ_EINVAL;
    if (!strncmp(target, "node:", 5)) {
        target += 5;
    } else if (pz__cidr_parse(target, p) == 0) {
        *kind = 'P';
        return 0;
    }
    if (!valid_id(target, strlen(target)))
        return PZ_EINVAL;
    strcpy(id, target);
    *kind = 'N';
    return 0;
}

static int rep_ban(void *state, const char *target, uint64_t duration_ns, uint64_t now, pz_err *err)
{
    rep *r = state;
    char id[PZ_NODE_ID_MAX + 1], kind = 0;
    pz_cidr p;
    if (target_parse(target, id, &p, &kind))
        return r->core->error(r->core, err, PZ_EINVAL,
                              "ban: \"%s\" is neither a node id ([A-Za-z0-9._-]{1,64}, or node:<id>) nor a CIDR",
                              target ? target : "(null)");
    rec *x = lookup(r, kind, id, &p, now, 1);
    if (!x)
        return r->core->error(r->core, err, PZ_ENOMEM, "ban %s: no room for another record (max_records %llu)",
                              target, (unsigned long long)r->max_records);
    ban_apply(r, x, duration_ns, now, NULL);
    save_after(r, "ban of", target);
    return 0;
}

static int rep_unban(void *state, const char *target, pz_err *err)
{
    rep *r = state;
    char id[PZ_NODE_ID_MAX + 1], kind = 0;
    pz_cidr p;
    uint64_t now = r->core->monotonic_ns(r->core);
    if (target_parse(target, id, &p, &kind))
        return r->core->error(r->core, err, PZ_EINVAL,
                              "unban: \"%s\" is neither a node id ([A-Za-z0-9._-]{1,64}, or node:<id>) nor a CIDR",
                              target ? target : "(null)");
    rec *x = lookup(r, kind, id, &p, now, 0);
    if (x)
        settle(r, x, now);
    if (!x || !banned_at(x, now))
        return r->core->error(r->core, err, PZ_ENOENT, "unban: %s is not banned", target);
    ban_clear(r, x, now);
    x->ban_count = 0; /* forgiven: the next ban starts short again */
    char who[PZ_NODE_ID_MAX + 16];
    describe(x, who, sizeof(who));
    r->core->log(r->core, PZ_LOG_NOTICE, "unbanned %s", who);
    save_after(r, "unban of", target);
    return 0;
}

/* ---- test hooks (reputation.h) ------------------------------------------ */

double pz__rep_score(void *state, const char *node_id, uint64_t now)
{
    rep *r = state;
    rec *x = lookup(r, 'N', node_id, NULL, now, 0);
    return x ? decayed(r, x, now) : -1;
}

double pz__rep_addr_score(void *state, const pz_addr *addr, uint64_t now)
{
    rep *r = state;
    pz_cidr p;
    rec *x = addr_prefix(r, addr, &p) ? lookup(r, 'P', NULL, &p, now, 0) : NULL;
    return x ? decayed(r, x, now) : -1;
}

size_t pz__rep_history(void *state, const char *node_id, pz_rep_event *out, size_t max)
{
    rep *r = state;
    rec *x = lookup(r, 'N', node_id, NULL, 0, 0);
    if (!x)
        return 0;
    for (uint32_t k = 0; k < x->hist_len && k < max; k++)
        out[k] = x->hist[(x->hist_start + k) % r->history_size];
    return x->hist_len;
}

int pz__rep_banned(void *state, const char *node_id, uint64_t now, uint64_t *until, uint32_t *count)
{
    rep *r = state;
    rec *x = lookup(r, 'N', node_id, NULL, now, 0);
    if (count)
        *count = x ? x->ban_count : 0;
    if (until)
        *until = x ? x->ban_until : 0;
    return x && banned_at(x, now);
}

size_t pz__rep_records(void *state)
{
    return ((rep *)state)->kt.count;
}

static const pz_connlimit_provider provider = {
    .struct_size = sizeof(pz_connlimit_provider),
    .create = rep_create,
    .destroy = rep_destroy,
    .admit_address = rep_admit_address,
    .admit_identity = rep_admit_identity,
    .release = rep_release,
    .on_behavior = rep_on_behavior,
    .peer_status = rep_peer_status,
    .ban = rep_ban,
    .unban = rep_unban,
    .flush = rep_flush,
    .peer_info = rep_peer_info,
};

static const pz_conf_key schema[] = {
    {"initial_score", PZ_CONF_DOUBLE, "50", "score of a new peer, 0..100; scores decay back toward it"},
    {"thresholds.blocked", PZ_CONF_DOUBLE, "10", "below: blocked (never admitted; auto-ban)"},
    {"thresholds.probation", PZ_CONF_DOUBLE, "30", "below: probation (admitted with probability score/100)"},
    {"thresholds.trusted", PZ_CONF_DOUBLE, "80", "at or above: trusted"},
    {"adjustments.<behaviour>", PZ_CONF_DOUBLE, "see docs",
     "score change per event: valid_request 0.1, auth_failure -10, invalid_signature -20, replay -15, ..."},
    {"history_size", PZ_CONF_INT, "16", "adjustments remembered per peer"},
    {"allow_new_nodes", PZ_CONF_BOOL, "true", "admit nodes with no record"},
    {"decay_half_life", PZ_CONF_DURATION, "1h", "time for a score to get halfway back to initial; 0 = never"},
    {"ban.auto", PZ_CONF_BOOL, "true", "ban a peer whose score falls below thresholds.blocked"},
    {"ban.addresses", PZ_CONF_BOOL, "true", "also auto-ban address prefixes (events before authentication)"},
    {"ban.duration", PZ_CONF_DURATION, "10m", "first ban; each further ban doubles"},
    {"ban.max_duration", PZ_CONF_DURATION, "24h", "longest automatic ban"},
    {"ban.forget_after", PZ_CONF_DURATION, "7d", "a clean period after which escalation restarts"},
    {"address_prefix_v4", PZ_CONF_INT, "32", "IPv4 prefix an address-only event is charged to"},
    {"address_prefix_v6", PZ_CONF_INT, "64", "IPv6 prefix an address-only event is charged to"},
    {"max_records", PZ_CONF_INT, "100000", "peers and prefixes remembered (banned ones are never evicted)"},
    {"data_dir", PZ_CONF_STRING, "unset", "directory for reputation.db (atomic saves); unset: memory only"},
    {NULL, 0, NULL, NULL},
};

static const pz_plugin_descriptor descriptor = {
    PZ_PLUGIN_DESCRIPTOR_INIT,
    .name = "reputation",
    .version = PACKAGE_VERSION,
    .description = "reputation: behaviour scores, decay, escalating bans, probation, persistent state",
    .kind = PZ_KIND_CONNLIMIT,
    .provider = &provider,
    .config_schema = schema,
};

PZ_PLUGIN_EXPORT const pz_plugin_descriptor *pz_plugin_entry_v1(void)
{
    return &descriptor;
}
