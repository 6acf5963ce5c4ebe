/* tests/unit/test_audit.c — the audit log: audited calls recorded by a
 * server, verification against the callers' keys, and every kind of
 * damage detected (edited, removed, truncated records, wrong keys, not a
 * log). */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "audit.h"
#include "rpc_frame.h"
#include "rpc_testlib.h"

typedef struct afx {
    char *dir;
    char *path;
    GMainContext *ctx;
    tl_node srv, cli, other;
    pz_rpc_server *server;
    pz_rpc_client *client;
    pz_audit_log *log;
    GPtrArray *lines;
} afx;

static void h_echo(pz_rpc_call *call, GVariant *params, void *ud)
{
    (void)ud;
    pz_rpc_call_return(call, params);
}

static gboolean do_connect(gpointer p)
{
    afx *f = p;
    void *a, *b;
    tl_pair(0, &a, &b);
    assert_int_equal(pz_rpc_server_add_connection(f->server, &tl_transport, a, &f->cli.ident, NULL, NULL, NULL), 0);
    assert_int_equal(pz_rpc_client_add_connection(f->client, "srv", &tl_transport, b, &f->srv.ident, NULL), 0);
    return G_SOURCE_REMOVE;
}

static void on_connect(void *ud, pz_rpc_client *client, const char *peer)
{
    afx *f = ud;
    (void)client, (void)peer;
    GSource *s = g_idle_source_new();
    g_source_set_callback(s, do_connect, f, NULL);
    g_source_attach(s, f->ctx);
    g_source_unref(s);
}

static int setup(void **state)
{
    afx *f = g_new0(afx, 1);
    f->dir = g_dir_make_tmp("pz-audit-XXXXXX", NULL);
    assert_non_null(f->dir);
    f->path = g_build_filename(f->dir, "audit.log", NULL);
    f->ctx = g_main_context_new();
    f->lines = g_ptr_array_new_with_free_func(g_free);
    tl_node_init(&f->srv, "srv");
    tl_node_init(&f->cli, "cli");
    tl_node_init(&f->other, "cli");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    afx *f = *state;
    pz_rpc_client_free(f->client);
    pz_rpc_server_free(f->server);
    pz_audit_close(f->log);
    while (g_main_context_iteration(f->ctx, FALSE))
        ;
    g_main_context_unref(f->ctx);
    tl_node_clear(&f->srv);
    tl_node_clear(&f->cli);
    tl_node_clear(&f->other);
    GDir *d = g_dir_open(f->dir, 0, NULL);
    const char *name;
    while (d && (name = g_dir_read_name(d))) {
        char *p = g_build_filename(f->dir, name, NULL);
        g_unlink(p);
        g_free(p);
    }
    if (d)
        g_dir_close(d);
    g_rmdir(f->dir);
    g_free(f->dir);
    g_free(f->path);
    g_ptr_array_free(f->lines, TRUE);
    g_free(f);
    return 0;
}

/* Serve N calls of "tx" (audited) and "plain" (not) each, then close the
 * log. */
static void record_calls(afx *f, int n)
{
    assert_int_equal(pz_audit_open(f->path, 1, &f->log, NULL), 0);
    pz_rpc_server_config sc = {.struct_size = sizeof(sc), .node_id = "srv", .key = f->srv.key, .context = f->ctx,
                               .audit = f->log};
    assert_int_equal(pz_rpc_server_new(&sc, &f->server, NULL), 0);
    assert_int_equal(pz_rpc_register(f->server, "tx", h_echo, NULL, PZ_RPC_AUDIT), 0);
    assert_int_equal(pz_rpc_register(f->server, "plain", h_echo, NULL, 0), 0);
    pz_rpc_client_hooks ch = {.struct_size = sizeof(ch), .connect = on_connect, .ud = f};
    pz_rpc_client_config cc = {.struct_size = sizeof(cc), .node_id = "cli", .key = f->cli.key, .context = f->ctx,
                               .hooks = &ch};
    assert_int_equal(pz_rpc_client_new(&cc, &f->client, NULL), 0);
    for (int i = 0; i < n; i++) {
        assert_int_equal(pz_rpc_client_call_sync(f->client, "srv", "tx", g_variant_new("(i)", i), NULL, NULL, NULL,
                                                 NULL),
                         0);
        assert_int_equal(pz_rpc_client_call_sync(f->client, "srv", "plain", NULL, NULL, NULL, NULL, NULL), 0);
    }
    assert_int_equal(pz_audit_count(f->log), (uint64_t)n);
    pz_rpc_client_free(f->client);
    f->client = NULL;
    pz_rpc_server_free(f->server);
    f->server = NULL;
    pz_audit_close(f->log);
    f->log = NULL;
}

static int lookup(void *ud, const char *caller, uint8_t pub[32])
{
    const tl_node *n = ud;
    if (!n || strcmp(caller, n->id) != 0)
        return PZ_ENOENT;
    memcpy(pub, n->pub, 32);
    return 0;
}

static void collect(void *ud, const char *line)
{
    g_ptr_array_add(ud, g_strdup(line));
}

static void verify(afx *f, const tl_node *keys, pz_audit_report *r)
{
    g_ptr_array_set_size(f->lines, 0);
    assert_int_equal(pz_audit_verify(f->path, lookup, (void *)keys, collect, f->lines, r, NULL), 0);
}

static void test_record_and_verify(void **state)
{
    afx *f = *state;
    record_calls(f, 3);
    pz_audit_report r;
    verify(f, &f->cli, &r);
    assert_int_equal(r.records, 3);
    assert_int_equal(r.valid, 3);
    assert_int_equal(r.bad_signature + r.unknown_caller + r.chain_breaks, 0);
    assert_false(r.truncated);
    assert_int_equal(f->lines->len, 0);

    /* Unknown caller, wrong key. */
    verify(f, NULL, &r);
    assert_int_equal(r.unknown_caller, 3);
    assert_int_equal(r.valid, 0);
    verify(f, &f->other, &r);
    assert_int_equal(r.bad_signature, 3);
    assert_int_equal(f->lines->len, 3);
    assert_non_null(strstr(f->lines->pdata[0], "BAD signature"));

    /* Reopening continues the chain. */
    record_calls(f, 2);
    verify(f, &f->cli, &r);
    assert_int_equal(r.records, 5);
    assert_int_equal(r.valid, 5);
    assert_int_equal(r.chain_breaks, 0);
}

/* Byte offsets of each record (header included). */
static GArray *record_offsets(const uint8_t *d, size_t n)
{
    GArray *a = g_array_new(FALSE, FALSE, sizeof(size_t));
    size_t off = PZ_AUDIT_MAGIC_LEN;
    while (off + PZ_FRAME_HDR <= n) {
        g_array_append_val(a, off);
        off += PZ_FRAME_HDR + pz_frame_get_header(d + off);
    }
    return a;
}

static void test_damage_detected(void **state)
{
    afx *f = *state;
    record_calls(f, 3);
    gchar *orig;
    gsize n;
    assert_true(g_file_get_contents(f->path, &orig, &n, NULL));
    GArray *offs = record_offsets((uint8_t *)orig, n);
    assert_int_equal(offs->len, 3);
    pz_audit_report r;

    /* Edit: change the call's parameter inside record 2's context (the
     * int32 parameter is the value 1). */
    gchar *ed = g_memdup2(orig, n);
    size_t r2 = g_array_index(offs, size_t, 1), r3 = g_array_index(offs, size_t, 2);
    int edited = 0;
    for (size_t i = r2 + PZ_FRAME_HDR; i + 4 <= r3; i++) {
        if (memcmp(ed + i, "\x01\x00\x00\x00", 4) == 0) {
            ed[i] = 2;
            edited = 1;
            break;
        }
    }
    assert_true(edited);
    assert_true(g_file_set_contents(f->path, ed, (gssize)n, NULL));
    verify(f, &f->cli, &r);
    assert_int_equal(r.bad_signature, 1);
    assert_int_equal(r.chain_breaks, 1); /* record 3 no longer links */
    assert_int_equal(r.valid, 2);
    g_free(ed);

    /* Removal of the middle record. */
    GByteArray *cut = g_byte_array_new();
    g_byte_array_append(cut, (uint8_t *)orig, (guint)r2);
    g_byte_array_append(cut, (uint8_t *)orig + r3, (guint)(n - r3));
    assert_true(g_file_set_contents(f->path, (gchar *)cut->data, cut->len, NULL));
    verify(f, &f->cli, &r);
    assert_int_equal(r.records, 2);
    assert_int_equal(r.chain_breaks, 1);
    assert_int_equal(r.valid, 2); /* each remaining statement is still genuine */
    g_byte_array_unref(cut);

    /* Truncation inside the last record: reported; reopening for append
     * drops the partial record and the chain goes on. */
    assert_true(g_file_set_contents(f->path, orig, (gssize)(n - 5), NULL));
    verify(f, &f->cli, &r);
    assert_true(r.truncated);
    assert_int_equal(r.records, 2);
    record_calls(f, 1);
    verify(f, &f->cli, &r);
    assert_false(r.truncated);
    assert_int_equal(r.records, 3);
    assert_int_equal(r.valid, 3);
    assert_int_equal(r.chain_breaks, 0);

    /* A corrupt length. */
    gchar *bad = g_memdup2(orig, n);
    memset(bad + g_array_index(offs, size_t, 1), 0xff, 4);
    assert_true(g_file_set_contents(f->path, bad, (gssize)n, NULL));
    verify(f, &f->cli, &r);
    assert_true(r.truncated);
    assert_int_equal(r.records, 1);
    g_free(bad);

    g_array_free(offs, TRUE);
    g_free(orig);
}

static void test_not_a_log(void **state)
{
    afx *f = *state;
    pz_audit_report r;
    GError *err = NULL;
    assert_int_equal(pz_audit_verify(f->path, lookup, NULL, NULL, NULL, &r, &err), PZ_EIO); /* missing */
    g_clear_error(&err);
    assert_true(g_file_set_contents(f->path, "hello world", -1, NULL));
    assert_int_equal(pz_audit_verify(f->path, lookup, NULL, NULL, NULL, &r, &err), PZ_EINVAL);
    assert_non_null(strstr(err->message, "not a prozsec audit log"));
    g_clear_error(&err);
    pz_audit_log *log = NULL;
    assert_int_equal(pz_audit_open(f->path, 0, &log, &err), PZ_EINVAL);
    assert_null(log);
    g_clear_error(&err);
    assert_int_equal(pz_audit_open(f->dir, 0, &log, &err), PZ_EIO); /* a directory */
    g_clear_error(&err);
    char *missing = g_build_filename(f->dir, "no", "such", NULL);
    assert_int_equal(pz_audit_open(missing, 0, &log, &err), PZ_EIO);
    g_clear_error(&err);
    g_free(missing);
    /* An empty new log verifies as zero records. */
    char *fresh = g_build_filename(f->dir, "fresh.log", NULL);
    assert_int_equal(pz_audit_open(fresh, 0, &log, NULL), 0);
    GStatBuf st;
    assert_int_equal(g_stat(fresh, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(pz_audit_append(log, 1, NULL, NULL, 0, NULL, 0, &err), PZ_EINVAL);
    g_clear_error(&err);
    pz_audit_close(log);
    assert_int_equal(pz_audit_verify(fresh, lookup, NULL, NULL, NULL, &r, NULL), 0);
    assert_int_equal(r.records, 0);
    g_free(fresh);
}

/* `prozsec audit verify` on a real log (skipped outside `make check`). */
static int run_tool(afx *f, const char *keys_text, char **out)
{
    const char *top = g_getenv("top_builddir");
    char *tool = top ? g_build_filename(top, "prozsec", NULL) : NULL;
    if (!tool || !g_file_test(tool, G_FILE_TEST_IS_EXECUTABLE)) {
        g_free(tool);
        return -1;
    }
    char *keys = g_build_filename(f->dir, "keys.txt", NULL);
    assert_true(g_file_set_contents(keys, keys_text, -1, NULL));
    const char *argv[] = {tool, "audit", "verify", "--keys", keys, f->path, NULL};
    int status = 0;
    GError *err = NULL;
    assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, out, NULL, &status, &err));
    g_free(keys);
    g_free(tool);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 99;
}

static void test_tool(void **state)
{
    afx *f = *state;
    record_calls(f, 2);
    char hex[65];
    for (int i = 0; i < 32; i++)
        g_snprintf(hex + 2 * i, 3, "%02x", f->cli.pub[i]);
    char *good = g_strdup_printf("# callers\ncli %s\n", hex);
    char *out = NULL;
    int rc = run_tool(f, good, &out);
    if (rc == -1) {
        g_free(good);
        skip();
    }
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "2 records: 2 valid"));
    g_free(out);
    out = NULL;
    char *b64 = g_base64_encode(f->other.pub, 32);
    char *wrong = g_strdup_printf("cli %s\n", b64);
    assert_int_equal(run_tool(f, wrong, &out), 1);
    assert_non_null(strstr(out, "BAD signature"));
    g_free(out);
    out = NULL;
    assert_int_equal(run_tool(f, "cli not-a-key\n", &out), 2);
    g_free(out);
    g_free(b64);
    g_free(wrong);
    g_free(good);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_record_and_verify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damage_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tool, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
