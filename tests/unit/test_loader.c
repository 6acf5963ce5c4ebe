/* tests/unit/test_loader.c — the plugin loader (core/loader.c): search
 * path, every refusal with its message and code, good plugins of each kind
 * working through their tables, provider instances and the unknown-key
 * check, idempotent loads, and the crashing fixture (in a child only). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cmocka.h>
#include <glib.h>
#include <glib/gstdio.h>

#include <prozsec/auth.h>
#include <prozsec/connlimit.h>
#include <prozsec/ratelimit.h>
#include <prozsec/transport.h>

#include "conf.h"
#include "coresvc.h"
#include "err.h"
#include "loader.h"

static char *fixture_dir;

static char *fixture(const char *name)
{
    return g_strdup_printf("%s/%s.so", fixture_dir, name);
}

static pz_loader *new_loader(void)
{
    pz_loader *l = NULL;
    assert_int_equal(pz_loader_new_path(NULL, 0, PZ_LOADER_NO_ENV | PZ_LOADER_NO_PLUGINDIR, &l, NULL), 0);
    return l;
}

static const pz_plugin *load_good(pz_loader *l, const char *name)
{
    g_autofree char *path = fixture(name);
    const pz_plugin *p = NULL;
    pz_load_refusal why = PZ_REFUSE_INIT;
    pz_err err;
    pz_err_init(&err);
    int rc = pz_loader_load_file(l, path, &p, &why, &err);
    if (rc)
        fail_msg("%s: %s", path, pz_err_msg(&err));
    assert_int_equal(why, PZ_REFUSE_NONE);
    assert_non_null(p);
    pz_err_clear(&err);
    return p;
}

static pz_conf_doc *yaml(const char *text)
{
    pz_conf_doc *doc = NULL;
    pz_err err;
    pz_err_init(&err);
    int rc = pz_conf_load_string("test.yaml", text, strlen(text), &doc, &err);
    if (rc)
        fail_msg("yaml: %s", pz_err_msg(&err));
    pz_err_clear(&err);
    return doc;
}

/* ------------------------------------------------------------------------ */
/* Search path */

static void test_search_path(void **state)
{
    (void)state;
    const char *dirs[] = {"/etc/a", "/etc/b/", "", "/etc/a"};
    pz_loader *l = NULL;
    g_setenv("PROZSEC_PLUGIN_PATH", "/env/c::/env/d:/etc/b", TRUE);
    assert_int_equal(pz_loader_new(dirs, 4, &l, NULL), 0);
    const char *const *p = pz_loader_path(l);
    assert_string_equal(p[0], "/etc/a");
    assert_string_equal(p[1], "/etc/b");
    assert_string_equal(p[2], "/env/c");
    assert_string_equal(p[3], "/env/d");
    assert_string_equal(p[4], PZ_PLUGINDIR);
    assert_null(p[5]);
    pz_loader_free(l);

    /* Relative directories become absolute; flags drop env and built-in. */
    const char *rel[] = {"rel/dir"};
    assert_int_equal(pz_loader_new_path(rel, 1, PZ_LOADER_NO_ENV | PZ_LOADER_NO_PLUGINDIR, &l, NULL), 0);
    p = pz_loader_path(l);
    g_autofree char *cwd = g_get_current_dir();
    g_autofree char *want = g_strdup_printf("%s/rel/dir", cwd);
    assert_string_equal(p[0], want);
    assert_null(p[1]);
    pz_loader_free(l);

    /* No directories at all: an empty, NULL-terminated path. */
    l = new_loader();
    assert_null(pz_loader_path(l)[0]);
    pz_loader_free(l);

    g_unsetenv("PROZSEC_PLUGIN_PATH");
    assert_int_equal(pz_loader_new(NULL, 0, &l, NULL), 0);
    assert_string_equal(pz_loader_path(l)[0], PZ_PLUGINDIR);
    pz_loader_free(l);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    pz_loader *l = new_loader();
    const pz_plugin *p = (const pz_plugin *)1;
    pz_provider *pv = (pz_provider *)1;
    pz_err err;
    pz_err_init(&err);
    assert_int_equal(pz_loader_new(NULL, 0, NULL, &err), PZ_EINVAL);
    assert_int_equal(pz_loader_load_file(NULL, "/x.so", &p, NULL, &err), PZ_EINVAL);
    assert_null(p);
    assert_int_equal(pz_loader_load_file(l, NULL, &p, NULL, &err), PZ_EINVAL);
    assert_int_equal(pz_loader_load_file(l, "", &p, NULL, &err), PZ_EINVAL);
    assert_int_equal(pz_loader_load_file(l, "/x.so", NULL, NULL, &err), PZ_EINVAL);
    assert_int_equal(pz_loader_load(NULL, "x", 0, &p, &err), PZ_EINVAL);
    assert_int_equal(pz_loader_load(l, NULL, 0, &p, &err), PZ_EINVAL);
    assert_int_equal(pz_provider_new(NULL, NULL, NULL, &pv, &err), PZ_EINVAL);
    assert_null(pv);
    assert_null(pz_loader_path(NULL));
    assert_null(pz_plugin_desc(NULL));
    assert_null(pz_plugin_path(NULL));
    assert_null(pz_provider_plugin(NULL));
    assert_null(pz_provider_name(NULL));
    assert_null(pz_provider_table(NULL));
    assert_null(pz_provider_state(NULL));
    assert_null(pz_provider_core(NULL));
    assert_int_equal(pz_provider_kind(NULL), 0);
    assert_string_equal(pz_plugin_kind_name(PZ_KIND_AUTH), "auth");
    assert_string_equal(pz_plugin_kind_name(PZ_KIND_RATELIMIT), "ratelimit");
    assert_string_equal(pz_plugin_kind_name(PZ_KIND_CONNLIMIT), "connlimit");
    assert_string_equal(pz_plugin_kind_name(PZ_KIND_TRANSPORT), "transport");
    assert_string_equal(pz_plugin_kind_name((pz_plugin_kind)99), "?");
    pz_provider_free(NULL);
    pz_loader_free(NULL);
    pz_err_clear(&err);
    pz_loader_free(l);
}

/* ------------------------------------------------------------------------ */
/* Refusals */

typedef struct refusal_case {
    const char *fixture;
    pz_load_refusal why;
    int code;
    const char *reason; /* expected after "PATH: " */
} refusal_case;

/* The ABI messages name the versions: filled in by test_refusals from
 * PZ_ABI_MAJOR/MINOR, so an ABI bump needs no edit here. */
static char abi_major_reason[64], abi_minor_reason[64];

static const refusal_case refusals[] = {
    {"bad-noentry", PZ_REFUSE_NO_ENTRY, PZ_EABI, "no entry symbol pz_plugin_entry_v1"},
    {"bad-abi-major", PZ_REFUSE_ABI_MAJOR, PZ_EABI, abi_major_reason},
    {"bad-abi-minor", PZ_REFUSE_ABI_MINOR, PZ_EABI, abi_minor_reason},
    {"bad-short-size", PZ_REFUSE_MALFORMED, PZ_EABI,
     "malformed descriptor: struct_size 8 is smaller than the ABI 1.0 descriptor"},
    {"bad-null-fn", PZ_REFUSE_MALFORMED, PZ_EABI,
     "malformed descriptor: mandatory function ratelimit.allow is NULL"},
    {"bad-name", PZ_REFUSE_MALFORMED, PZ_EABI,
     "malformed descriptor: provider name \"Bad Name!\" is invalid: expected [a-z0-9][a-z0-9-]{0,31}"},
    {"bad-init", PZ_REFUSE_INIT, PZ_ECONFIG, "init failed: fixture refuses to start: no licence key configured"},
    {"bad-undefined", PZ_REFUSE_OPEN, PZ_EIO, "cannot open: "},
    {"no-such-file", PZ_REFUSE_OPEN, PZ_ENOENT, "cannot open: No such file or directory"},
};

static void check_refusal(pz_loader *l, const char *path, pz_load_refusal want_why, int want_code,
                          const char *want_reason)
{
    const pz_plugin *p = (const pz_plugin *)1;
    pz_load_refusal why = PZ_REFUSE_NONE;
    pz_err err;
    pz_err_init(&err);
    int rc = pz_loader_load_file(l, path, &p, &why, &err);
    g_autofree char *prefix = g_strdup_printf("%s: %s", path, want_reason);
    if (rc != want_code || why != want_why || strncmp(pz_err_msg(&err), prefix, strlen(prefix)) != 0)
        fail_msg("%s: rc %d (want %d), refusal %d (want %d), message \"%s\" (want prefix \"%s\")", path, rc,
                 want_code, why, want_why, pz_err_msg(&err), prefix);
    assert_null(p);
    /* One line. */
    assert_null(strchr(pz_err_msg(&err), '\n'));
    pz_err_clear(&err);
}

static void test_refusals(void **state)
{
    (void)state;
    snprintf(abi_major_reason, sizeof(abi_major_reason), "built for ABI %d.x, this core is %d.%d", PZ_ABI_MAJOR + 1,
             PZ_ABI_MAJOR, PZ_ABI_MINOR);
    snprintf(abi_minor_reason, sizeof(abi_minor_reason), "built for ABI %d.%d, newer than this core's %d.%d",
             PZ_ABI_MAJOR, PZ_ABI_MINOR + 1, PZ_ABI_MAJOR, PZ_ABI_MINOR);
    pz_loader *l = new_loader();
    for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
        g_autofree char *path = fixture(refusals[i].fixture);
        check_refusal(l, path, refusals[i].why, refusals[i].code, refusals[i].reason);
    }
    pz_loader_free(l);
}

static void test_refusal_undefined_details(void **state)
{
    (void)state;
    pz_loader *l = new_loader();
    g_autofree char *path = fixture("bad-undefined");
    const pz_plugin *p = NULL;
    pz_err err;
    pz_err_init(&err);
    assert_int_equal(pz_loader_load_file(l, path, &p, NULL, &err), PZ_EIO);
    assert_non_null(strstr(pz_err_msg(&err), "undefined symbol: pz_fixture_no_such_function"));
    assert_non_null(strstr(pz_err_msg(&err), "check its dependencies with `ldd"));
    pz_err_clear(&err);
    /* Refused again the second time: a refusal is not remembered as a load. */
    pz_err_init(&err);
    assert_int_equal(pz_loader_load_file(l, path, &p, NULL, &err), PZ_EIO);
    pz_err_clear(&err);
    pz_loader_free(l);
}

static void test_refusal_duplicate(void **state)
{
    (void)state;
    pz_loader *l = new_loader();
    const pz_plugin *auth = load_good(l, "test-auth");
    g_autofree char *path = fixture("bad-dup");
    g_autofree char *reason = g_strdup_printf("provider name \"test-auth\" is already taken by %s",
                                              pz_plugin_path(auth));
    check_refusal(l, path, PZ_REFUSE_DUPLICATE, PZ_EEXIST, reason);
    pz_loader_free(l);
}

static void test_not_regular_and_writable(void **state)
{
    (void)state;
    pz_loader *l = new_loader();
    GError *gerr = NULL;
    char *tmp = g_dir_make_tmp("pz-loader-XXXXXX", &gerr);
    assert_non_null(tmp);

    g_autofree char *dir = g_build_filename(tmp, "dir.so", NULL);
    assert_int_equal(g_mkdir(dir, 0755), 0);
    check_refusal(l, dir, PZ_REFUSE_NOT_REGULAR, PZ_EINVAL, "not a regular file (a directory)");

    g_autofree char *link = g_build_filename(tmp, "link.so", NULL);
    assert_int_equal(symlink(dir, link), 0);
    check_refusal(l, link, PZ_REFUSE_NOT_REGULAR, PZ_EINVAL,
                  "not a regular file (a symbolic link to a directory)");

    g_autofree char *fifo = g_build_filename(tmp, "fifo.so", NULL);
    assert_int_equal(mkfifo(fifo, 0644), 0);
    check_refusal(l, fifo, PZ_REFUSE_NOT_REGULAR, PZ_EINVAL, "not a regular file (a fifo)");

    /* A copy of a good plugin, writable by others, then by group only. */
    g_autofree char *good = fixture("test-ratelimit");
    g_autofree char *copy = g_build_filename(tmp, "writable.so", NULL);
    gchar *bytes = NULL;
    gsize len = 0;
    assert_true(g_file_get_contents(good, &bytes, &len, NULL));
    assert_true(g_file_set_contents(copy, bytes, (gssize)len, NULL));
    g_free(bytes);
    assert_int_equal(chmod(copy, 0666), 0);
    check_refusal(l, copy, PZ_REFUSE_WRITABLE, PZ_EPERM, "writable by group or others (mode 0666)");
    assert_int_equal(chmod(copy, 0620), 0);
    check_refusal(l, copy, PZ_REFUSE_WRITABLE, PZ_EPERM, "writable by group or others (mode 0620)");

    /* Once safe, the copy is another file claiming test-ratelimit's name. */
    const pz_plugin *orig = load_good(l, "test-ratelimit");
    assert_int_equal(chmod(copy, 0644), 0);
    g_autofree char *dup = g_strdup_printf("provider name \"test-ratelimit\" is already taken by %s",
                                           pz_plugin_path(orig));
    check_refusal(l, copy, PZ_REFUSE_DUPLICATE, PZ_EEXIST, dup);

    assert_int_equal(g_remove(copy), 0);
    assert_int_equal(g_remove(fifo), 0);
    assert_int_equal(g_remove(link), 0);
    assert_int_equal(g_rmdir(dir), 0);
    assert_int_equal(g_rmdir(tmp), 0);
    g_free(tmp);
    pz_loader_free(l);
}

static void test_crash_in_child(void **state)
{
    (void)state;
    g_autofree char *path = fixture("bad-ctor-crash");
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        pz_loader *l = NULL;
        const pz_plugin *p = NULL;
        if (pz_loader_new_path(NULL, 0, PZ_LOADER_NO_ENV | PZ_LOADER_NO_PLUGINDIR, &l, NULL) == 0)
            (void)pz_loader_load_file(l, path, &p, NULL, NULL);
        _exit(0); /* not reached: the constructor kills the child */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGSEGV);
}

/* A probing loader (what prozsecd and config check use) refuses the
 * crashing and the hanging fixture with a message naming the file, and
 * this process survives; everything else is refused exactly as without
 * the probe. */
static void test_probe_refuses_crash_and_hang(void **state)
{
    (void)state;
    pz_loader *l = NULL;
    assert_int_equal(pz_loader_new_path(NULL, 0, PZ_LOADER_NO_ENV | PZ_LOADER_NO_PLUGINDIR | PZ_LOADER_PROBE, &l, NULL),
                     0);
    g_autofree char *crash = fixture("bad-ctor-crash");
    check_refusal(l, crash, PZ_REFUSE_CRASH, PZ_EIO, "crashed while loading (");

    pz__loader_set_probe_timeout(300);
    g_autofree char *hang = fixture("bad-init-hang");
    check_refusal(l, hang, PZ_REFUSE_CRASH, PZ_ETIMEDOUT, "loading it did not finish within 300 ms");
    pz__loader_set_probe_timeout(0);

    for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
        g_autofree char *path = fixture(refusals[i].fixture);
        check_refusal(l, path, refusals[i].why, refusals[i].code, refusals[i].reason);
    }
    const pz_plugin *p = load_good(l, "test-ratelimit");
    assert_string_equal(pz_plugin_desc(p)->name, "test-ratelimit");
    pz_loader_free(l);
}

/* ------------------------------------------------------------------------ */
/* Good plugins */

static void test_load_good_and_idempotent(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        pz_plugin_kind kind;
    } good[] = {
        {"test-ratelimit", PZ_KIND_RATELIMIT},
        {"test-auth", PZ_KIND_AUTH},
        {"test-connlimit", PZ_KIND_CONNLIMIT},
        {"test-transport", PZ_KIND_TRANSPORT},
    };
    pz_loader *l = new_loader();
    for (size_t i = 0; i < 4; i++) {
        const pz_plugin *p = load_good(l, good[i].name);
        const pz_plugin_descriptor *d = pz_plugin_desc(p);
        assert_string_equal(d->name, good[i].name);
        assert_int_equal(d->kind, good[i].kind);
        assert_int_equal(d->abi_major, PZ_ABI_MAJOR);
        assert_non_null(d->config_schema);
        g_autofree char *path = fixture(good[i].name);
        assert_string_equal(pz_plugin_path(p), path);
        /* Same file again: the same plugin. */
        assert_ptr_equal(load_good(l, good[i].name), p);
    }
    pz_loader_free(l);
}

static void test_load_via_symlink_same_plugin(void **state)
{
    (void)state;
    pz_loader *l = new_loader();
    const pz_plugin *p = load_good(l, "test-auth");
    char *tmp = g_dir_make_tmp("pz-loader-XXXXXX", NULL);
    assert_non_null(tmp);
    g_autofree char *link = g_build_filename(tmp, "alias.so", NULL);
    g_autofree char *target = fixture("test-auth");
    assert_int_equal(symlink(target, link), 0);
    const pz_plugin *q = NULL;
    assert_int_equal(pz_loader_load_file(l, link, &q, NULL, NULL), 0);
    assert_ptr_equal(p, q);
    assert_int_equal(g_remove(link), 0);
    assert_int_equal(g_rmdir(tmp), 0);
    g_free(tmp);
    pz_loader_free(l);
}

static gpointer load_thread(gpointer ud)
{
    pz_loader *l = ud;
    g_autofree char *path = fixture("test-connlimit");
    const pz_plugin *p = NULL;
    if (pz_loader_load_file(l, path, &p, NULL, NULL) != 0)
        return NULL;
    return (gpointer)p;
}

static void test_load_concurrent(void **state)
{
    (void)state;
    pz_loader *l = new_loader();
    GThread *t[4];
    for (int i = 0; i < 4; i++)
        t[i] = g_thread_new("load", load_thread, l);
    gpointer first = g_thread_join(t[0]);
    assert_non_null(first);
    for (int i = 1; i < 4; i++)
        assert_ptr_equal(g_thread_join(t[i]), first);
    pz_loader_free(l);
}

static void test_load_by_name(void **state)
{
    (void)state;
    const char *dirs[] = {"/nonexistent/first", fixture_dir};
    pz_loader *l = NULL;
    pz_err err;
    pz_err_init(&err);
    assert_int_equal(pz_loader_new_path(dirs, 2, PZ_LOADER_NO_ENV | PZ_LOADER_NO_PLUGINDIR, &l, NULL), 0);
    const pz_plugin *p = NULL;
    assert_int_equal(pz_loader_load(l, "test-ratelimit", PZ_KIND_RATELIMIT, &p, &err), 0);
    assert_string_equal(pz_plugin_desc(p)->name, "test-ratelimit");
    assert_int_equal(pz_loader_load(l, "test-auth", 0, &p, &err), 0);
    assert_int_equal(pz_plugin_desc(p)->kind, PZ_KIND_AUTH);

    /* Wrong kind. */
    assert_int_equal(pz_loader_load(l, "test-auth", PZ_KIND_TRANSPORT, &p, &err), PZ_EINVAL);
    assert_null(p);
    assert_non_null(strstr(pz_err_msg(&err), "is a auth provider, not a transport provider"));
    /* Not on the path: the message lists the path. */
    assert_int_equal(pz_loader_load(l, "nothere", 0, &p, &err), PZ_ENOENT);
    g_autofree char *want = g_strdup_printf("provider \"nothere\" not found: no nothere.so in "
                                            "/nonexistent/first:%s", fixture_dir);
    assert_string_equal(pz_err_msg(&err), want);
    /* Names are validated before touching the file system. */
    assert_int_equal(pz_loader_load(l, "../etc/x", 0, &p, &err), PZ_EINVAL);
    assert_non_null(strstr(pz_err_msg(&err), "invalid provider name \"../etc/x\""));
    assert_int_equal(pz_loader_load(l, "", 0, &p, &err), PZ_EINVAL);
    /* A refusal of the file found is reported, not skipped. */
    assert_int_equal(pz_loader_load(l, "bad-abi-major", 0, &p, &err), PZ_EABI);
    assert_non_null(strstr(pz_err_msg(&err), "built for ABI "));
    /* bad-dup.so provides "test-auth", not "bad-dup". */
    assert_int_not_equal(pz_loader_load(l, "bad-dup", 0, &p, &err), 0);
    assert_null(p);
    pz_err_clear(&err);
    pz_loader_free(l);
}

/* ------------------------------------------------------------------------ */
/* Provider instances */

static void test_provider_ratelimit(void **state)
{
    (void)state;
    pz_loader *l = new_loader();
    const pz_plugin *p = load_good(l, "test-ratelimit");
    pz_conf_doc *doc = yaml("limit: 2\n");
    pz_provider *pv = NULL;
    pz_err err;
    pz_err_init(&err);
    assert_int_equal(pz_provider_new(p, "rl-main", pz_conf_root(doc), &pv, &err), 0);
    assert_string_equal(pz_provider_name(pv), "rl-main");
    assert_string_equal(pz_core_source(pz_provider_core(pv)), "rl-main");
    assert_ptr_equal(pz_provider_plugin(pv), p);
    assert_int_equal(pz_provider_kind(pv), PZ_KIND_RATELIMIT);
    const pz_ratelimit_provider *t = pz_provider_table(pv);
    assert_ptr_equal(t, pz_plugin_desc(p)->provider);
    void *st = pz_provider_state(pv);
    pz_addr addr = {.family = PZ_AF_INET, .bytes = {127, 0, 0, 1}};
    pz_rl_request req = {.struct_size = sizeof(req), .node_id = "n1", .addr = &addr, .cost = 1};
    pz_rl_decision d;
    for (int i = 0; i < 3; i++) {
        memset(&d, 0, sizeof(d));
        assert_int_equal(t->allow(st, &req, &d), 0);
        assert_int_equal(d.allowed, i < 2);
    }
    /* Another key has its own budget. */
    req.node_id = "n2";
    assert_int_equal(t->allow(st, &req, &d), 0);
    assert_int_equal(d.allowed, 1);
    pz_rl_usage u;
    assert_int_equal(t->get_usage(st, &req, &u), 0);
    assert_true(u.known);
    assert_true(u.available == 1.0);
    pz_provider_free(pv);
    pz_conf_doc_free(doc);

    /* No configuration: the defaults (limit 3), instance named for the provider. */
    assert_int_equal(pz_provider_new(p, NULL, NULL, &pv, &err), 0);
    assert_string_equal(pz_provider_name(pv), "test-ratelimit");
    t = pz_provider_table(pv);
    st = pz_provider_state(pv);
    int allowed = 0;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(t->allow(st, &req, &d), 0);
        allowed += d.allowed;
    }
    assert_int_equal(allowed, 3);
    pz_provider_free(pv);
    pz_err_clear(&err);
    pz_loader_free(l);
}

static void test_provider_unknown_keys(void **state)
{
    (void)state;
    pz_loader *l = new_loader();
    const pz_plugin *p = load_good(l, "test-ratelimit");
    pz_conf_doc *doc = yaml("limit: 2\nbogus: 1\nother: x\n");
    pz_provider *pv = (pz_provider *)1;
    pz_err err;
    pz_err_init_collect(&err);
    assert_int_equal(pz_provider_new(p, NULL, pz_conf_root(doc), &pv, &err), PZ_ECONFIG);
    assert_null(pv);
    assert_int_equal(pz_err_count(&err), 2);
    assert_non_null(strstr(pz_err_at(&err, 0), "bogus"));
    assert_non_null(strstr(pz_err_at(&err, 0), "unknown key"));
    assert_non_null(strstr(pz_err_at(&err, 1), "other"));
    pz_err_clear(&err);
    pz_conf_doc_free(doc);

    /* A plain sink gets every message too, one per line. */
    doc = yaml("limit: 2\nbogus: 1\nother: x\n");
    pz_err_init(&err);
    assert_int_equal(pz_provider_new(p, NULL, pz_conf_root(doc), &pv, &err), PZ_ECONFIG);
    assert_non_null(strstr(pz_err_msg(&err), "bogus"));
    assert_non_null(strstr(pz_err_msg(&err), "\n"));
    assert_non_null(strstr(pz_err_msg(&err), "other"));
    pz_err_clear(&err);
    pz_conf_doc_free(doc);
    pz_loader_free(l);
}

static void test_provider_bad_value(void **state)
{
    (void)state;
    pz_loader *l = new_loader();
    const pz_plugin *p = load_good(l, "test-ratelimit");
    pz_conf_doc *doc = yaml("limit: many\n");
    pz_provider *pv = NULL;
    pz_err err;
    pz_err_init(&err);
    assert_int_equal(pz_provider_new(p, NULL, pz_conf_root(doc), &pv, &err), PZ_ECONFIG);
    assert_null(pv);
    assert_non_null(strstr(pz_err_msg(&err), "test.yaml:1:"));
    assert_non_null(strstr(pz_err_msg(&err), "limit"));
    pz_err_clear(&err);
    pz_conf_doc_free(doc);

    /* update_config keeps the old limit on error and applies a good one. */
    doc = yaml("limit: 1\n");
    pz_err_init(&err);
    assert_int_equal(pz_provider_new(p, NULL, pz_conf_root(doc), &pv, &err), 0);
    const pz_ratelimit_provider *t = pz_provider_table(pv);
    pz_conf_doc *bad = yaml("limit: -4\n");
    assert_int_equal(t->update_config(pz_provider_state(pv), pz_conf_root(bad), &err), PZ_ECONFIG);
    pz_conf_doc *good = yaml("limit: 7\n");
    assert_int_equal(t->update_config(pz_provider_state(pv), pz_conf_root(good), &err), 0);
    pz_addr addr = {.family = PZ_AF_INET6};
    pz_rl_request req = {.struct_size = sizeof(req), .addr = &addr, .cost = 1};
    pz_rl_usage u;
    assert_int_equal(t->get_usage(pz_provider_state(pv), &req, &u), 0);
    assert_false(u.known);
    assert_true(u.capacity == 7.0);
    pz_provider_free(pv);
    pz_conf_doc_free(good);
    pz_conf_doc_free(bad);
    pz_conf_doc_free(doc);
    pz_err_clear(&err);
    pz_loader_free(l);
}

static void test_provider_auth(void **state)
{
    (void)state;
    pz_loader *l = new_loader();
    const pz_plugin *p = load_good(l, "test-auth");
    pz_conf_doc *doc = yaml("allow: [alpha, beta]\nnode_id: self-1\n");
    pz_provider *pv = NULL;
    pz_err err;
    pz_err_init(&err);
    assert_int_equal(pz_provider_new(p, NULL, pz_conf_root(doc), &pv, &err), 0);
    const pz_auth_provider *t = pz_provider_table(pv);
    void *st = pz_provider_state(pv);
    pz_addr addr = {.family = PZ_AF_INET};
    pz_auth_credentials cred = {.struct_size = sizeof(cred), .transport = "tcp", .addr = &addr};
    pz_auth_result r;

    memset(&r, 0, sizeof(r));
    assert_int_equal(t->authenticate_peer(st, &cred, &r, &err), 0);
    assert_int_equal(r.verdict, PZ_AUTH_ABSTAIN);

    cred.token = (const uint8_t *)"beta";
    cred.token_len = 4;
    memset(&r, 0, sizeof(r));
    assert_int_equal(t->authenticate_peer(st, &cred, &r, &err), 0);
    assert_int_equal(r.verdict, PZ_AUTH_ALLOW);
    assert_string_equal(r.node_id, "beta");
    assert_string_equal(r.node_type, "test");

    cred.token = (const uint8_t *)"gamma";
    cred.token_len = 5;
    memset(&r, 0, sizeof(r));
    assert_int_equal(t->authenticate_peer(st, &cred, &r, &err), 0);
    assert_int_equal(r.verdict, PZ_AUTH_DENY);

    uint8_t buf[64];
    size_t len = 2;
    assert_int_equal(t->generate_credentials(st, NULL, 0, buf, &len, &err), PZ_ERANGE);
    assert_int_equal(len, 6);
    len = sizeof(buf);
    assert_int_equal(t->generate_credentials(st, NULL, 0, buf, &len, &err), 0);
    assert_memory_equal(buf, "self-1", 6);
    assert_string_equal(t->supported_methods(st)[0], "test-token");
    pz_provider_free(pv);
    pz_conf_doc_free(doc);

    /* A list item that is not a node id is refused with its position. */
    doc = yaml("allow: [alpha, [nested]]\n");
    assert_int_equal(pz_provider_new(p, NULL, pz_conf_root(doc), &pv, &err), PZ_ECONFIG);
    assert_non_null(strstr(pz_err_msg(&err), "test.yaml:1:"));
    pz_conf_doc_free(doc);
    pz_err_clear(&err);
    pz_loader_free(l);
}

static void test_provider_connlimit(void **state)
{
    (void)state;
    pz_loader *l = new_loader();
    const pz_plugin *p = load_good(l, "test-connlimit");
    pz_conf_doc *doc = yaml("max_per_addr: 2\nblock_after: 2\n");
    pz_provider *pv = NULL;
    pz_err err;
    pz_err_init(&err);
    pz_metrics_clear();
    assert_int_equal(pz_provider_new(p, "cl", pz_conf_root(doc), &pv, &err), 0);
    const pz_connlimit_provider *t = pz_provider_table(pv);
    void *st = pz_provider_state(pv);
    pz_addr a = {.family = PZ_AF_INET, .bytes = {10, 0, 0, 1}, .port = 1000};
    pz_admit_result r;
    for (int i = 0; i < 3; i++) {
        memset(&r, 0, sizeof(r));
        a.port = (uint16_t)(1000 + i); /* ports do not matter */
        assert_int_equal(t->admit_address(st, &a, 0, &r), 0);
        assert_int_equal(r.admitted, i < 2);
    }
    assert_string_equal(r.detail, "per-address limit 2 reached");
    t->release(st, &a, NULL, PZ_STAGE_PRE_HANDSHAKE, 0);
    assert_int_equal(t->admit_address(st, &a, 0, &r), 0);
    assert_int_equal(r.admitted, 1);

    /* Behaviour events are recorded: status moves, metrics count them. */
    pz_peer_status s;
    assert_int_equal(t->peer_status(st, "bad-peer", 0, &s), 0);
    assert_int_equal(s, PZ_STATUS_UNKNOWN);
    pz_behavior_event ev = {.struct_size = sizeof(ev), .behavior = PZ_BEHAVIOR_INVALID_SIGNATURE,
                            .node_id = "bad-peer"};
    t->on_behavior(st, &ev);
    assert_int_equal(t->peer_status(st, "bad-peer", 0, &s), 0);
    assert_int_equal(s, PZ_STATUS_PROBATION);
    ev.behavior = PZ_BEHAVIOR_REPLAY;
    t->on_behavior(st, &ev);
    assert_int_equal(t->peer_status(st, "bad-peer", 0, &s), 0);
    assert_int_equal(s, PZ_STATUS_BLOCKED);
    pz_identity id = {.struct_size = sizeof(id), .node_id = "bad-peer", .node_type = ""};
    assert_int_equal(t->admit_identity(st, &a, &id, 0, &r), 0);
    assert_int_equal(r.admitted, 0);
    GString *m = g_string_new(NULL);
    assert_int_equal(pz_metrics_format(m), 0);
    assert_non_null(strstr(m->str, "prozsec_cl_behavior_total{label=\"3\"} 1\n"));
    assert_non_null(strstr(m->str, "prozsec_cl_behavior_total{label=\"4\"} 1\n"));
    assert_non_null(strstr(m->str, "prozsec_cl_refused_total 1\n"));
    g_string_free(m, TRUE);
    pz_metrics_clear();
    pz_provider_free(pv);
    pz_conf_doc_free(doc);
    pz_err_clear(&err);
    pz_loader_free(l);
}

/* Wait (without a deadline assertion) until FD is ready for EVENTS. */
static void wait_fd(int fd, int events)
{
    struct pollfd pfd = {.fd = fd, .events = (short)((events & PZ_IO_READ ? POLLIN : 0) |
                                                     (events & PZ_IO_WRITE ? POLLOUT : 0))};
    assert_int_equal(poll(&pfd, 1, 30000), 1);
}

static void test_provider_transport(void **state)
{
    (void)state;
    pz_loader *l = new_loader();
    const pz_plugin *p = load_good(l, "test-transport");
    pz_provider *pv = NULL;
    pz_err err;
    pz_err_init(&err);
    assert_int_equal(pz_provider_new(p, NULL, NULL, &pv, &err), 0);
    const pz_transport_provider *t = pz_provider_table(pv);
    void *st = pz_provider_state(pv);

    void *listener = NULL;
    assert_int_equal(t->listen(st, "not-an-address", &listener, &err), PZ_EINVAL);
    assert_int_equal(t->listen(st, "127.0.0.1:0", &listener, &err), 0);
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    assert_int_equal(getsockname(t->listener_fd(listener), (struct sockaddr *)&sa, &sl), 0);
    g_autofree char *addr = g_strdup_printf("127.0.0.1:%u", ntohs(sa.sin_port));

    void *server = NULL, *client = NULL;
    pz_addr remote;
    assert_int_equal(t->accept(listener, &server, &remote, &err), PZ_EAGAIN);
    assert_int_equal(t->connect(st, addr, NULL, &client, &err), 0);
    int rc;
    while ((rc = t->handshake(client, &err)) == PZ_EAGAIN)
        wait_fd(t->conn_fd(client), t->conn_events(client));
    assert_int_equal(rc, 0);
    wait_fd(t->listener_fd(listener), PZ_IO_READ);
    assert_int_equal(t->accept(listener, &server, &remote, &err), 0);
    assert_int_equal(remote.family, PZ_AF_INET);
    assert_int_equal(remote.bytes[0], 127);
    assert_int_equal(t->handshake(server, &err), 0);

    size_t n = 0;
    assert_int_equal(t->write(client, "ping", 4, &n, &err), 0);
    assert_int_equal(n, 4);
    char buf[16];
    size_t got = 0;
    while (got < 4) {
        rc = t->read(server, buf + got, sizeof(buf) - got, &n, &err);
        if (rc == PZ_EAGAIN) {
            wait_fd(t->conn_fd(server), t->conn_events(server));
            continue;
        }
        assert_int_equal(rc, 0);
        got += n;
    }
    assert_memory_equal(buf, "ping", 4);
    pz_auth_credentials cred = {.struct_size = sizeof(cred)};
    assert_int_equal(t->peer_credentials(server, &cred), 0);
    assert_string_equal(cred.transport, "tcp");
    uint8_t cb[32];
    assert_int_equal(t->channel_binding(server, "x", cb, sizeof(cb), &err), PZ_ENOTSUP);

    t->close(client);
    do {
        rc = t->read(server, buf, sizeof(buf), &n, &err);
        if (rc == PZ_EAGAIN)
            wait_fd(t->conn_fd(server), PZ_IO_READ);
    } while (rc == PZ_EAGAIN);
    assert_int_equal(rc, PZ_EOF);
    t->close(server);
    t->listener_close(listener);
    pz_provider_free(pv);
    pz_err_clear(&err);
    pz_loader_free(l);
}

int main(void)
{
    const char *b = getenv("top_builddir");
    fixture_dir = g_strdup_printf("%s/tests/fixtures/plugins/.libs", b ? b : PZ_TEST_BUILDDIR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_search_path),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_refusal_undefined_details),
        cmocka_unit_test(test_refusal_duplicate),
        cmocka_unit_test(test_not_regular_and_writable),
        cmocka_unit_test(test_crash_in_child),
        cmocka_unit_test(test_probe_refuses_crash_and_hang),
        cmocka_unit_test(test_load_good_and_idempotent),
        cmocka_unit_test(test_load_via_symlink_same_plugin),
        cmocka_unit_test(test_load_concurrent),
        cmocka_unit_test(test_load_by_name),
        cmocka_unit_test(test_provider_ratelimit),
        cmocka_unit_test(test_provider_unknown_keys),
        cmocka_unit_test(test_provider_bad_value),
        cmocka_unit_test(test_provider_auth),
        cmocka_unit_test(test_provider_connlimit),
        cmocka_unit_test(test_provider_transport),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    g_free(fixture_dir);
    return rc;
}
