/* core/audit.c — the RPC audit log: append signed call contexts, verify a
 * log file (see audit.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>

#include "audit.h"
#include "rpc_frame.h"
#include "rpc_wire.h"

#define HASH_LEN 32

struct pz_audit_log {
    int fd;
    char *path;
    int fsync_each;
    uint8_t prev[HASH_LEN]; /* hash of the last record */
    uint64_t appended;
};

static void hash_record(const uint8_t *hdr, const uint8_t *payload, size_t len, uint8_t out[HASH_LEN])
{
    GChecksum *ck = g_checksum_new(G_CHECKSUM_SHA256);
    gsize n = HASH_LEN;
    g_checksum_update(ck, hdr, PZ_FRAME_HDR);
    g_checksum_update(ck, payload, len);
    g_checksum_get_digest(ck, out, &n);
    g_checksum_free(ck);
}

/* Read exactly LEN bytes: 1 done, 0 clean end of file before any byte, -1
 * short read (truncated), -2 I/O error (errno). */
static int read_exact(int fd, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, (uint8_t *)buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -2;
        if (n == 0)
            return got == 0 ? 0 : -1;
        got += (size_t)n;
    }
    return 1;
}

static int write_all(int fd, const void *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, (const uint8_t *)buf + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        done += (size_t)n;
    }
    return 0;
}

/* Walk the records after the magic; *END gets the offset after the last
 * complete record, PREV its hash. Returns 1 when the file ends inside a
 * record, 0 when cleanly, -1 on I/O error. */
static int scan_records(int fd, off_t *end, uint8_t prev[HASH_LEN])
{
    uint8_t hdr[PZ_FRAME_HDR];
    *end = PZ_AUDIT_MAGIC_LEN;
    memset(prev, 0, HASH_LEN);
    for (;;) {
        int r = read_exact(fd, hdr, sizeof(hdr));
        if (r == 0)
            return 0;
        if (r == -2)
            return -1;
        if (r == -1)
            return 1;
        uint32_t len = pz_frame_get_header(hdr);
        if (len == 0 || len > PZ_AUDIT_RECORD_MAX)
            return 1;
        uint8_t *p = g_try_malloc(len);
        if (!p)
            return -1;
        r = read_exact(fd, p, len);
        if (r == 1)
            hash_record(hdr, p, len, prev);
        g_free(p);
        if (r == -2)
            return -1;
        if (r != 1)
            return 1;
        *end += PZ_FRAME_HDR + (off_t)len;
    }
}

PZ_API int pz_audit_open(const char *path, int fsync_each, pz_audit_log **out, GError **error)
{
    int rc = 0;
    *out = NULL;
    pz_audit_log *log = g_new0(pz_audit_log, 1);
    log->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    log->path = g_strdup(path);
    log->fsync_each = fsync_each;
    if (log->fd < 0) {
        rc = pz_rpc_set_error(error, PZ_EIO, "%s: %s", path, g_strerror(errno));
        goto out;
    }
    struct stat st;
    if (fstat(log->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        rc = pz_rpc_set_error(error, PZ_EINVAL, "%s: not a regular file", path);
        goto out;
    }
    if (st.st_size == 0) {
        if (write_all(log->fd, PZ_AUDIT_MAGIC, PZ_AUDIT_MAGIC_LEN) < 0) {
            rc = pz_rpc_set_error(error, PZ_EIO, "%s: %s", path, g_strerror(errno));
            goto out;
        }
    } else {
        char magic[PZ_AUDIT_MAGIC_LEN];
        if (read_exact(log->fd, magic, sizeof(magic)) != 1 || memcmp(magic, PZ_AUDIT_MAGIC, sizeof(magic))) {
            rc = pz_rpc_set_error(error, PZ_EINVAL, "%s: not a prozsec audit log (bad magic)", path);
            goto out;
        }
        off_t end;
        int s = scan_records(log->fd, &end, log->prev);
        if (s < 0) {
            rc = pz_rpc_set_error(error, PZ_EIO, "%s: %s", path, g_strerror(errno));
            goto out;
        }
        if (s > 0) {
            /* A record cut short by a crash carries no verifiable
             * statement; drop the tail so new records chain on. */
            g_warning("%s: dropping an incomplete record at offset %lld", path, (long long)end);
            if (ftruncate(log->fd, end) < 0) {
                rc = pz_rpc_set_error(error, PZ_EIO, "%s: truncate: %s", path, g_strerror(errno));
                goto out;
            }
        }
    }
    if (lseek(log->fd, 0, SEEK_END) < 0) {
        rc = pz_rpc_set_error(error, PZ_EIO, "%s: %s", path, g_strerror(errno));
        goto out;
    }
    *out = log;
    log = NULL;
out:
    pz_audit_close(log);
    return rc;
}

PZ_API void pz_audit_close(pz_audit_log *log)
{
    if (!log)
        return;
    if (log->fd >= 0)
        close(log->fd);
    g_free(log->path);
    g_free(log);
}

uint64_t pz_audit_count(const pz_audit_log *log)
{
    return log->appended;
}

int pz_audit_append(pz_audit_log *log, uint64_t received_ns, const char *caller, const uint8_t *context,
                    size_t len, const uint8_t *sig, size_t sig_len, GError **error)
{
    int rc = 0;
    if (!log || !caller || !g_utf8_validate(caller, -1, NULL))
        return pz_rpc_set_error(error, PZ_EINVAL, "audit: bad record");
    GVariant *items[5] = {
        g_variant_new_uint64(received_ns),
        g_variant_new_string(caller),
        g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, context, len, 1),
        g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, sig, sig_len, 1),
        g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, log->prev, HASH_LEN, 1),
    };
    GVariant *rec = g_variant_ref_sink(g_variant_new_tuple(items, 5));
    size_t size = g_variant_get_size(rec);
    uint8_t *buf = NULL;
    if (size > PZ_AUDIT_RECORD_MAX) {
        rc = pz_rpc_set_error(error, PZ_EINVAL, "audit: record too large");
        goto out;
    }
    buf = g_malloc(PZ_FRAME_HDR + size);
    pz_frame_put_header(buf, (uint32_t)size);
    memcpy(buf + PZ_FRAME_HDR, g_variant_get_data(rec), size); /* see rpc_wire.c: alignment */
    off_t before = lseek(log->fd, 0, SEEK_END);
    if (write_all(log->fd, buf, PZ_FRAME_HDR + size) < 0 || (log->fsync_each && fdatasync(log->fd) < 0)) {
        rc = pz_rpc_set_error(error, PZ_EIO, "%s: %s", log->path, g_strerror(errno));
        /* Keep the file a sequence of whole records. */
        if (before >= 0 && ftruncate(log->fd, before) < 0)
            g_warning("%s: cannot drop a partial record: %s", log->path, g_strerror(errno));
        goto out;
    }
    hash_record(buf, buf + PZ_FRAME_HDR, size, log->prev);
    log->appended++;
out:
    g_free(buf);
    g_variant_unref(rec);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Verification. */

typedef struct verifier {
    pz_audit_key_lookup lookup;
    void *lookup_ud;
    GHashTable *keys; /* caller -> pz_verify_key*, or NULL for unknown */
    void (*print)(void *ud, const char *line);
    void *print_ud;
} verifier;

static void say(verifier *v, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void say(verifier *v, const char *fmt, ...)
{
    if (!v->print)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *line = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    v->print(v->print_ud, line);
    g_free(line);
}

static void pubkey_free(gpointer p)
{
    if (p)
        pz_verify_key_free(p);
}

/* The caller's key, or NULL when unknown (remembered either way). */
static pz_verify_key *key_for(verifier *v, const char *caller)
{
    gpointer found;
    if (g_hash_table_lookup_extended(v->keys, caller, NULL, &found))
        return found;
    uint8_t raw[32];
    pz_verify_key *pub = NULL;
    if (v->lookup(v->lookup_ud, caller, raw) == 0 && pz_verify_key_new(raw, &pub) != 0)
        pub = NULL;
    g_hash_table_insert(v->keys, g_strdup(caller), pub);
    return pub;
}

static void check_record(verifier *v, uint64_t index, off_t offset, GVariant *rec, const uint8_t expect_prev[HASH_LEN],
                         pz_audit_report *r)
{
    guint64 received;
    const char *caller;
    GVariant *ctxv, *sigv, *prevv;
    g_variant_get(rec, "(t&s@ay@ay@ay)", &received, &caller, &ctxv, &sigv, &prevv);
    gsize ctx_len, sig_len, prev_len;
    const uint8_t *ctx = g_variant_get_fixed_array(ctxv, &ctx_len, 1);
    const uint8_t *sig = g_variant_get_fixed_array(sigv, &sig_len, 1);
    const uint8_t *prev = g_variant_get_fixed_array(prevv, &prev_len, 1);
    GVariant *sp = NULL;

    if (prev_len != HASH_LEN || memcmp(prev, expect_prev, HASH_LEN) != 0) {
        r->chain_breaks++;
        say(v, "record %" G_GUINT64_FORMAT " (offset %lld): hash chain broken (a record before it was removed, "
               "reordered or changed)", index, (long long)offset);
    }
    uint8_t *copy = g_malloc0(ctx_len + 8); /* zeroed slack: GLib 2.74's normal-form check reads a byte past some truncated containers */
    memcpy(copy, ctx, ctx_len);
    GBytes *b = g_bytes_new_with_free_func(copy, ctx_len, g_free, copy);
    sp = g_variant_ref_sink(g_variant_new_from_bytes(G_VARIANT_TYPE(PZ_WIRE_TYPE_REQUEST_SIGNED), b, FALSE));
    g_bytes_unref(b);
    if (!g_variant_is_normal_form(sp)) {
        r->bad_signature++;
        say(v, "record %" G_GUINT64_FORMAT " (offset %lld): call context is malformed", index, (long long)offset);
        goto out;
    }
    const char *method, *ctx_caller, *target;
    guint64 ts;
    GVariant *idv;
    g_variant_get(sp, "((&st@ay&s&suy)v)", &method, &ts, &idv, &ctx_caller, &target, NULL, NULL, NULL);
    gsize id_len;
    const uint8_t *id = g_variant_get_fixed_array(idv, &id_len, 1);
    char idhex[2 * PZ_RPC_CALL_ID_LEN + 1] = "";
    for (gsize i = 0; i < id_len && i < PZ_RPC_CALL_ID_LEN; i++)
        g_snprintf(idhex + 2 * i, 3, "%02x", id[i]);
    g_variant_unref(idv);
    if (strcmp(ctx_caller, caller) != 0) {
        r->bad_signature++;
        say(v, "record %" G_GUINT64_FORMAT " (offset %lld): context caller '%s' differs from recorded caller '%s'",
            index, (long long)offset, ctx_caller, caller);
        goto out;
    }
    pz_verify_key *pub = key_for(v, caller);
    if (!pub) {
        r->unknown_caller++;
        say(v, "record %" G_GUINT64_FORMAT " (offset %lld): no key for caller '%s' (method %s, call %s)", index,
            (long long)offset, caller, method, idhex);
        goto out;
    }
    if (pz_wire_verify_sig(pub, PZ_WIRE_DOMAIN_CALL, ctx, ctx_len, sig, sig_len) != 0) {
        r->bad_signature++;
        say(v, "record %" G_GUINT64_FORMAT " (offset %lld): BAD signature by '%s' (method %s, call %s)", index,
            (long long)offset, caller, method, idhex);
        goto out;
    }
    r->valid++;
out:
    if (sp)
        g_variant_unref(sp);
    g_variant_unref(ctxv);
    g_variant_unref(sigv);
    g_variant_unref(prevv);
}

PZ_API int pz_audit_verify(const char *path, pz_audit_key_lookup lookup, void *lookup_ud,
                           void (*print)(void *ud, const char *line), void *print_ud, pz_audit_report *report,
                           GError **error)
{
    int rc = 0;
    memset(report, 0, sizeof(*report));
    verifier v = {lookup, lookup_ud, g_hash_table_new_full(g_str_hash, g_str_equal, g_free, pubkey_free), print,
                  print_ud};
    uint8_t prev[HASH_LEN] = {0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = pz_rpc_set_error(error, PZ_EIO, "%s: %s", path, g_strerror(errno));
        goto out;
    }
    char magic[PZ_AUDIT_MAGIC_LEN];
    int r = read_exact(fd, magic, sizeof(magic));
    if (r == -2) {
        rc = pz_rpc_set_error(error, PZ_EIO, "%s: %s", path, g_strerror(errno));
        goto out;
    }
    if (r != 1 || memcmp(magic, PZ_AUDIT_MAGIC, sizeof(magic)) != 0) {
        rc = pz_rpc_set_error(error, PZ_EINVAL, "%s: not a prozsec audit log (bad magic)", path);
        goto out;
    }
    off_t offset = PZ_AUDIT_MAGIC_LEN;
    for (;;) {
        uint8_t hdr[PZ_FRAME_HDR];
        r = read_exact(fd, hdr, sizeof(hdr));
        if (r == 0)
            break;
        if (r == -2) {
            rc = pz_rpc_set_error(error, PZ_EIO, "%s: %s", path, g_strerror(errno));
            goto out;
        }
        uint32_t len = r == 1 ? pz_frame_get_header(hdr) : 0;
        uint8_t *p = NULL;
        if (r == 1 && len > 0 && len <= PZ_AUDIT_RECORD_MAX) {
            p = g_try_malloc0((gsize)len + 8); /* zeroed slack: GLib 2.74's normal-form check reads a byte past some truncated containers */
            if (!p) {
                rc = pz_rpc_set_error(error, PZ_ENOMEM, "%s: out of memory", path);
                goto out;
            }
            r = read_exact(fd, p, len);
            if (r == -2) {
                g_free(p);
                rc = pz_rpc_set_error(error, PZ_EIO, "%s: %s", path, g_strerror(errno));
                goto out;
            }
        } else if (r == 1) {
            r = -1; /* a length no writer produces: the rest is unreadable */
        }
        if (r != 1) {
            g_free(p);
            report->truncated = 1;
            say(&v, "offset %lld: file ends inside a record (or a record length is corrupt)", (long long)offset);
            break;
        }
        report->records++;
        GBytes *b = g_bytes_new_take(p, len);
        GVariant *rec = g_variant_ref_sink(g_variant_new_from_bytes(G_VARIANT_TYPE(PZ_AUDIT_RECORD_TYPE), b, FALSE));
        if (!g_variant_is_normal_form(rec)) {
            report->chain_breaks++;
            say(&v, "record %" G_GUINT64_FORMAT " (offset %lld): malformed record", report->records, (long long)offset);
        } else {
            check_record(&v, report->records, offset, rec, prev, report);
        }
        hash_record(hdr, g_bytes_get_data(b, NULL), len, prev);
        g_variant_unref(rec);
        g_bytes_unref(b);
        offset += PZ_FRAME_HDR + (off_t)len;
    }
out:
    if (fd >= 0)
        close(fd);
    g_hash_table_destroy(v.keys);
    return rc;
}
