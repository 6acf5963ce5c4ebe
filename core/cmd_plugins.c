/* core/cmd_plugins.c — `prozsec plugins list`: every *.so on the plugin
 * path, each probed by the loader in a child process (a plugin that
 * crashes or hangs while loading takes only the child down), one line per
 * file. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>

#include "cmd.h"
#include "conf.h"
#include "err.h"
#include "loader.h"

/* How long one probe may take before the child is killed. */
#define PROBE_TIMEOUT_MS 5000
/* Largest result record a child may send. */
#define RECORD_MAX (1024 * 1024)
/* Schema keys shown per plugin at most. */
#define SCHEMA_MAX 256

/* ok, reason, name, kind, version, abi, description, schema (key, type, default, help) */
#define RECORD_TYPE "(bssssssa(simsms))"

typedef struct probe {
    char *file;
    int ok;
    char *reason; /* when refused: the reason, without the file name */
    GVariant *record; /* when ok: the child's record */
    const char *name, *kind, *version, *abi; /* borrowed from record */
} probe;

/* ------------------------------------------------------------------------ */
/* Child side */

static const char *utf8(GPtrArray *keep, const char *s)
{
    if (!s)
        return NULL;
    char *v = g_utf8_make_valid(s, -1);
    g_ptr_array_add(keep, v);
    return v;
}

static void write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        p += n;
        len -= (size_t)n;
    }
}

/* Runs in the child: load FILE, send one record on FD, exit. */
G_GNUC_NORETURN static void probe_child(int fd, const char *file)
{
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core); /* a crashing plugin leaves no core file */
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (devnull >= 0)
        dup2(devnull, STDOUT_FILENO); /* keep the listing clean; stderr stays */

    GPtrArray *keep = g_ptr_array_new_with_free_func(g_free);
    pz_loader *loader = NULL;
    const pz_plugin *plugin = NULL;
    pz_err err;
    pz_err_init(&err);
    int rc = pz_loader_new_path(NULL, 0, PZ_LOADER_NO_ENV | PZ_LOADER_NO_PLUGINDIR, &loader, &err);
    if (rc == 0)
        rc = pz_loader_load_file(loader, file, &plugin, NULL, &err);

    GVariantBuilder schema;
    g_variant_builder_init(&schema, G_VARIANT_TYPE("a(simsms)"));
    const char *reason = "", *name = "", *kind = "", *version = "", *description = "";
    char abi[32] = "";
    if (rc != 0) {
        const char *msg = pz_err_msg(&err);
        size_t n = strlen(file);
        /* The loader's message is "FILE: reason". */
        if (strncmp(msg, file, n) == 0 && strncmp(msg + n, ": ", 2) == 0)
            msg += n + 2;
        reason = utf8(keep, msg);
    } else {
        const pz_plugin_descriptor *d = pz_plugin_desc(plugin);
        name = utf8(keep, d->name);
        kind = pz_plugin_kind_name(d->kind);
        version = utf8(keep, d->version);
        description = utf8(keep, d->description);
        snprintf(abi, sizeof(abi), "%u.%u", (unsigned)d->abi_major, (unsigned)d->abi_minor);
        for (size_t i = 0; d->config_schema && d->config_schema[i].key && i < SCHEMA_MAX; i++) {
            const pz_conf_key *k = &d->config_schema[i];
            g_variant_builder_add(&schema, "(simsms)", utf8(keep, k->key), (gint32)k->type,
                                  utf8(keep, k->default_str), utf8(keep, k->help));
        }
    }
    GVariant *rec = g_variant_ref_sink(g_variant_new(RECORD_TYPE, rc == 0, reason, name, kind, version, abi,
                                                     description, &schema));
    gsize size = g_variant_get_size(rec);
    if (size <= RECORD_MAX)
        write_all(fd, g_variant_get_data(rec), size);
    _exit(0);
}

/* ------------------------------------------------------------------------ */
/* Parent side */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read FD to EOF, at most RECORD_MAX + 1 bytes, until DEADLINE (ms).
 * Returns 0, or -1 on timeout. */
static int read_bounded(int fd, GByteArray *buf, int64_t deadline)
{
    char chunk[4096];
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return -1;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            return -1;
        if (r < 0)
            return 0;
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        if (buf->len <= RECORD_MAX)
            g_byte_array_append(buf, (const guint8 *)chunk, (guint)n);
    }
}

static void probe_file(probe *pr)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        pr->reason = g_strdup_printf("cannot probe: pipe: %s", g_strerror(errno));
        return;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        pr->reason = g_strdup_printf("cannot probe: fork: %s", g_strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return;
    }
    if (pid == 0) {
        close(fds[0]);
        probe_child(fds[1], pr->file);
    }
    close(fds[1]);
    GByteArray *buf = g_byte_array_new();
    int timed_out = read_bounded(fds[0], buf, now_ms() + PROBE_TIMEOUT_MS) != 0;
    close(fds[0]);
    if (timed_out)
        kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (timed_out) {
        pr->reason = g_strdup_printf("timed out while loading (killed after %d s)", PROBE_TIMEOUT_MS / 1000);
    } else if (buf->len > 0 && buf->len <= RECORD_MAX) {
        GBytes *bytes = g_byte_array_free_to_bytes(buf);
        buf = NULL;
        GVariant *rec = g_variant_ref_sink(g_variant_new_from_bytes(G_VARIANT_TYPE(RECORD_TYPE), bytes, FALSE));
        g_bytes_unref(bytes);
        gboolean ok;
        const char *reason;
        g_variant_get(rec, "(b&s&s&s&s&s&sa(simsms))", &ok, &reason, &pr->name, &pr->kind, &pr->version,
                      &pr->abi, NULL, NULL);
        if (ok) {
            pr->ok = 1;
            pr->record = rec;
        } else {
            pr->reason = g_strdup(*reason ? reason : "refused (no reason given)");
            g_variant_unref(rec);
            pr->name = pr->kind = pr->version = pr->abi = NULL;
        }
    } else if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        pr->reason = g_strdup_printf("crashed while loading (signal %d, %s)", sig, strsignal(sig));
    } else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
        pr->reason = g_strdup_printf("exited with status %d while loading", WEXITSTATUS(status));
    } else {
        pr->reason = g_strdup("the probe process sent no result");
    }
    if (buf)
        g_byte_array_unref(buf);
}

/* Several files may claim one name, but only one can be loaded in a
 * process. The file named NAME.so owns NAME (that is the one the daemon
 * loads); else the first on the path. The others are refused as the
 * loader would refuse them. */
static void refuse_duplicates(probe *probes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!probes[i].ok)
            continue;
        const char *name = probes[i].name;
        g_autofree char *own = g_strdup_printf("%s.so", name);
        size_t owner = n;
        for (size_t j = 0; j < n && owner == n; j++) {
            g_autofree char *base = g_path_get_basename(probes[j].file);
            if (probes[j].ok && strcmp(probes[j].name, name) == 0 && strcmp(base, own) == 0)
                owner = j;
        }
        for (size_t j = 0; j < n && owner == n; j++)
            if (probes[j].ok && strcmp(probes[j].name, name) == 0)
                owner = j;
        if (owner != i)
            probes[i].reason =
                g_strdup_printf("provider name \"%s\" is already taken by %s", name, probes[owner].file);
    }
    for (size_t i = 0; i < n; i++) {
        if (probes[i].ok && probes[i].reason) {
            probes[i].ok = 0;
            g_clear_pointer(&probes[i].record, g_variant_unref);
            probes[i].name = probes[i].kind = probes[i].version = probes[i].abi = NULL;
        }
    }
}

/* Plugin-supplied text, safe for a terminal. */
static char *clean(const char *s)
{
    char *c = g_strdup(s ? s : "");
    for (char *p = c; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    return c;
}

static const char *conf_type_name(gint32 t)
{
    switch (t) {
    case PZ_CONF_STRING: return "string";
    case PZ_CONF_INT: return "int";
    case PZ_CONF_BOOL: return "bool";
    case PZ_CONF_DURATION: return "duration";
    case PZ_CONF_SIZE: return "size";
    case PZ_CONF_LIST: return "list";
    case PZ_CONF_MAP: return "map";
    case PZ_CONF_DOUBLE: return "double";
    default: return "?";
    }
}

static void print_verbose(const probe *pr)
{
    const char *description;
    GVariantIter *keys;
    g_variant_get(pr->record, "(b&s&s&s&s&s&sa(simsms))", NULL, NULL, NULL, NULL, NULL, NULL, &description, &keys);
    g_autofree char *desc = clean(description);
    printf("    %s\n", desc);
    GPtrArray *rows = g_ptr_array_new_with_free_func(g_free);
    int wk = 0, wt = 0, wd = 0;
    const char *key, *def, *help;
    gint32 type;
    while (g_variant_iter_next(keys, "(&sim&sm&s)", &key, &type, &def, &help)) {
        char *k = clean(key), *d = def ? clean(def) : g_strdup("(required)"), *h = clean(help);
        const char *t = conf_type_name(type);
        wk = MAX(wk, (int)strlen(k));
        wt = MAX(wt, (int)strlen(t));
        wd = MAX(wd, (int)strlen(d));
        g_ptr_array_add(rows, k);
        g_ptr_array_add(rows, g_strdup(t));
        g_ptr_array_add(rows, d);
        g_ptr_array_add(rows, h);
    }
    g_variant_iter_free(keys);
    if (rows->len)
        printf("    config:\n");
    for (guint i = 0; i + 3 < rows->len; i += 4)
        printf("      %-*s  %-*s  %-*s  %s\n", wk, (char *)rows->pdata[i], wt, (char *)rows->pdata[i + 1], wd,
               (char *)rows->pdata[i + 2], (char *)rows->pdata[i + 3]);
    g_ptr_array_unref(rows);
}

/* ------------------------------------------------------------------------ */
/* File collection */

static int cmp_str(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Append DIR's *.so files, sorted, skipping files already listed (the same
 * file reached through two directories or a link). */
static void collect_dir(const char *dir, GPtrArray *files, GArray *seen)
{
    GDir *d = g_dir_open(dir, 0, NULL);
    if (!d)
        return;
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    const char *n;
    while ((n = g_dir_read_name(d)) != NULL)
        if (g_str_has_suffix(n, ".so"))
            g_ptr_array_add(names, g_strdup(n));
    g_dir_close(d);
    g_ptr_array_sort(names, cmp_str);
    for (guint i = 0; i < names->len; i++) {
        char *path = g_build_filename(dir, (char *)names->pdata[i], NULL);
        struct stat st;
        if (stat(path, &st) == 0) {
            int dup = 0;
            for (guint j = 0; j < seen->len; j += 2)
                if (g_array_index(seen, guint64, j) == (guint64)st.st_dev &&
                    g_array_index(seen, guint64, j + 1) == (guint64)st.st_ino)
                    dup = 1;
            if (dup) {
                g_free(path);
                continue;
            }
            guint64 id[2] = {(guint64)st.st_dev, (guint64)st.st_ino};
            g_array_append_vals(seen, id, 2);
        }
        g_ptr_array_add(files, path);
    }
    g_ptr_array_unref(names);
}

/* plugins.path of the configuration file FILE, relative entries taken from
 * the file's directory (as the daemon does). Returns 0 or 2 (reported). */
static int config_dirs(const char *file, GPtrArray *dirs)
{
    int rc = 0;
    pz_conf_doc *doc = NULL;
    const pz_conf *list = NULL;
    char *base = NULL, *absbase = NULL;
    pz_err err;
    pz_err_init(&err);
    if (pz_conf_load_file(file, &doc, &err) != 0 ||
        pz_conf_list(pz_conf_root(doc), "plugins.path", &list, &err) != 0) {
        pz_cmd_fail("plugins list: %s", pz_err_msg(&err));
        rc = PZ_EXIT_USAGE;
        goto out;
    }
    base = g_path_get_dirname(file);
    absbase = g_canonicalize_filename(base, NULL);
    for (size_t i = 0; list && i < pz_conf_len(list); i++) {
        const pz_conf *item = pz_conf_at(list, i, NULL);
        const char *dir = pz_conf_scalar(item);
        if (!dir || !*dir) {
            pz_conf_error(item, &err, "expected a directory path");
            pz_cmd_fail("plugins list: %s", pz_err_msg(&err));
            rc = PZ_EXIT_USAGE;
            goto out;
        }
        g_ptr_array_add(dirs, g_canonicalize_filename(dir, absbase));
    }
out:
    g_free(absbase);
    g_free(base);
    pz_conf_doc_free(doc);
    pz_err_clear(&err);
    return rc;
}

/* ------------------------------------------------------------------------ */

static int cmd_list(int argc, char **argv)
{
    char **opt_paths = NULL;
    char *opt_config = NULL;
    gboolean opt_verbose = FALSE;
    const GOptionEntry entries[] = {
        {"path", 'p', 0, G_OPTION_ARG_FILENAME_ARRAY, &opt_paths,
         "List DIR instead of the configured and $PROZSEC_PLUGIN_PATH directories (repeatable)", "DIR"},
        {"config", 'c', 0, G_OPTION_ARG_FILENAME, &opt_config, "Take plugins.path from FILE", "FILE"},
        {"verbose", 'v', 0, G_OPTION_ARG_NONE, &opt_verbose,
         "Also show each plugin's description and configuration keys", NULL},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    const char *summary =
        "List every *.so on the plugin path: directories from --path, else plugins.path of --config FILE\n"
        "followed by $PROZSEC_PLUGIN_PATH; then the built-in " PZ_PLUGINDIR ".\n"
        "Each file is loaded and checked by the loader in a child process, so a plugin that crashes or\n"
        "hangs while loading cannot take this command down. One line per file:\n"
        "  NAME  KIND  VERSION  ABI  FILE     a plugin the daemon can load\n"
        "  REFUSED FILE: reason              a file the loader refuses, and why\n"
        "\n"
        "Exit status: 0 when every file loaded, 1 when any was refused, 2 on a usage or\n"
        "configuration error.";
    int rc = pz_cmd_parse("plugins list", NULL, summary, entries, &argc, &argv);
    GPtrArray *dirs = g_ptr_array_new_with_free_func(g_free);
    GPtrArray *files = g_ptr_array_new_with_free_func(g_free);
    GArray *seen = g_array_new(FALSE, FALSE, sizeof(guint64));
    pz_loader *loader = NULL;
    probe *probes = NULL;
    size_t n = 0;
    if (rc)
        goto out;
    if (argc > 1) {
        pz_cmd_fail("plugins list: unexpected argument '%s' (try --help)", argv[1]);
        rc = PZ_EXIT_USAGE;
        goto out;
    }
    unsigned flags = 0;
    if (opt_paths && opt_paths[0]) {
        for (char **p = opt_paths; *p; p++) {
            /* A directory named on the command line should exist; the
             * built-in and environment ones need not. */
            if (!g_file_test(*p, G_FILE_TEST_IS_DIR))
                fprintf(stderr, "prozsec: plugins list: %s: not a directory\n", *p);
            g_ptr_array_add(dirs, g_strdup(*p));
        }
        flags |= PZ_LOADER_NO_ENV;
    } else if (opt_config && (rc = config_dirs(opt_config, dirs)) != 0) {
        goto out;
    }
    pz_err err;
    pz_err_init(&err);
    if (pz_loader_new_path((const char *const *)dirs->pdata, dirs->len, flags, &loader, &err) != 0) {
        pz_cmd_fail("plugins list: %s", pz_err_msg(&err));
        pz_err_clear(&err);
        rc = PZ_EXIT_USAGE;
        goto out;
    }
    const char *const *path = pz_loader_path(loader);
    for (size_t i = 0; path[i]; i++)
        collect_dir(path[i], files, seen);
    n = files->len;
    if (n == 0) {
        g_autofree char *joined = g_strjoinv(":", (char **)path);
        fprintf(stderr, "prozsec: plugins list: no *.so files in %s\n", *joined ? joined : "(empty path)");
        goto out;
    }
    probes = g_new0(probe, n);
    for (size_t i = 0; i < n; i++) {
        probes[i].file = files->pdata[i];
        probe_file(&probes[i]);
    }
    refuse_duplicates(probes, n);

    int wn = 4, wk = 4, wv = 7, wa = 3; /* NAME KIND VERSION ABI */
    for (size_t i = 0; i < n; i++) {
        if (!probes[i].ok)
            continue;
        g_autofree char *v = clean(probes[i].version);
        wn = MAX(wn, (int)strlen(probes[i].name));
        wk = MAX(wk, (int)strlen(probes[i].kind));
        wv = MAX(wv, (int)strlen(v));
        wa = MAX(wa, (int)strlen(probes[i].abi));
    }
    printf("%-*s  %-*s  %-*s  %-*s  %s\n", wn, "NAME", wk, "KIND", wv, "VERSION", wa, "ABI", "FILE");
    for (size_t i = 0; i < n; i++) {
        const probe *pr = &probes[i];
        if (!pr->ok) {
            g_autofree char *why = clean(pr->reason);
            printf("REFUSED %s: %s\n", pr->file, why);
            rc = PZ_EXIT_NO;
            continue;
        }
        g_autofree char *v = clean(pr->version);
        printf("%-*s  %-*s  %-*s  %-*s  %s\n", wn, pr->name, wk, pr->kind, wv, v, wa, pr->abi, pr->file);
        if (opt_verbose)
            print_verbose(pr);
    }
out:
    for (size_t i = 0; i < n && probes; i++) {
        g_free(probes[i].reason);
        if (probes[i].record)
            g_variant_unref(probes[i].record);
    }
    g_free(probes);
    pz_loader_free(loader);
    g_array_unref(seen);
    g_ptr_array_unref(files);
    g_ptr_array_unref(dirs);
    g_strfreev(opt_paths);
    g_free(opt_config);
    return rc;
}

static const pz_cmd plugin_cmds[] = {
    {"list", "list every plugin on the plugin path, probing each in a child process", cmd_list},
    {NULL, NULL, NULL},
};

/* `prozsec plugins SUBCOMMAND ...` (ARGV[0] is "plugins"). Returns the exit
 * status: 0 every file loaded, 1 some refused, 2 usage or configuration
 * error. Forks one child per file; not for use from a threaded program. */
int pz_cmd_plugins(int argc, char **argv)
{
    return pz_cmd_dispatch("plugins", plugin_cmds, argc, argv);
}
