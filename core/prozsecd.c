/* core/prozsecd.c — the prozsec daemon: runs one node from a configuration
 * file until SIGTERM/SIGINT; SIGHUP reloads. */
#include "config.h"

#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib-unix.h>
#include <glib.h>

#include "buildtree.h"
#include "coresvc.h"
#include "err.h"
#include "logging.h"
#include "node.h"

static char *opt_config;
static char *opt_ready_file;
static char *opt_log_level;
static gboolean opt_check;
static gboolean opt_version;
static int opt_drain_ms = 5000;

static const GOptionEntry entries[] = {
    {"config", 'c', 0, G_OPTION_ARG_FILENAME, &opt_config, "Configuration file (default " PZ_SYSCONFDIR "/prozsec.yaml)", "FILE"},
    {"check", 0, 0, G_OPTION_ARG_NONE, &opt_check, "Load everything, report problems and exit (0 ok, 2 not)", NULL},
    {"ready-file", 0, 0, G_OPTION_ARG_FILENAME, &opt_ready_file, "Once listening, write the listen addresses to FILE (one per line)", "FILE"},
    {"log-level", 0, 0, G_OPTION_ARG_STRING, &opt_log_level, "Override log.level (debug|info|notice|warning|error)", "LEVEL"},
    {"drain-ms", 0, 0, G_OPTION_ARG_INT, &opt_drain_ms, "On SIGTERM, wait this long for calls in flight (default 5000)", "MS"},
    {"version", 'V', 0, G_OPTION_ARG_NONE, &opt_version, "Print the version and exit", NULL},
    {NULL, 0, 0, 0, NULL, NULL, NULL},
};

typedef struct app {
    GMainLoop *loop;
    pz_node *node;
    int exit_code;
} app;

static gboolean on_term(gpointer ud)
{
    app *a = ud;
    pz_log("prozsecd", PZ_LOG_NOTICE, "stopping: draining calls in flight");
    g_main_loop_quit(a->loop);
    return G_SOURCE_CONTINUE;
}

static gboolean on_hup(gpointer ud)
{
    app *a = ud;
    pz_err err;
    pz_err_init_collect(&err);
    if (pz_node_reload(a->node, &err) < 0) {
        for (size_t i = 0; i < pz_err_count(&err); i++)
            pz_log("prozsecd", PZ_LOG_ERROR, "reload: %s", pz_err_at(&err, i));
    }
    pz_err_clear(&err);
    return G_SOURCE_CONTINUE;
}

static int write_ready_file(pz_node *node, const char *path)
{
    GString *s = g_string_new(NULL);
    const char *addr;
    for (size_t i = 0; (addr = pz_node_listen_address(node, i)); i++)
        g_string_append_printf(s, "%s\n", addr);
    GError *ge = NULL;
    gboolean ok = g_file_set_contents(path, s->str, (gssize)s->len, &ge);
    g_string_free(s, TRUE);
    if (!ok) {
        fprintf(stderr, "prozsecd: --ready-file: %s\n", ge->message);
        g_error_free(ge);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    setlocale(LC_ALL, "");
    pz_buildtree_setup();
    GOptionContext *ctx = g_option_context_new(NULL);
    g_option_context_set_summary(ctx, "prozsecd — the ProzChain secure communication daemon.\n\n"
                                      "Listens on the configured transports, admits, authenticates and rate-limits\n"
                                      "peers, serves signed RPC and relays end-to-end encrypted messages.\n"
                                      "SIGHUP reloads the configuration, certificates and CRL; SIGTERM drains and exits.");
    g_option_context_add_main_entries(ctx, entries, NULL);
    GError *ge = NULL;
    if (!g_option_context_parse(ctx, &argc, &argv, &ge)) {
        fprintf(stderr, "prozsecd: %s (try --help)\n", ge->message);
        g_error_free(ge);
        g_option_context_free(ctx);
        return 2;
    }
    g_option_context_free(ctx);
    if (opt_version) {
        printf("prozsecd %s\n", PACKAGE_VERSION);
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "prozsecd: unexpected argument '%s' (try --help)\n", argv[1]);
        return 2;
    }
    const char *config = opt_config ? opt_config : PZ_SYSCONFDIR "/prozsec.yaml";

    pz_logging_setup("prozsecd", opt_log_level);
    signal(SIGPIPE, SIG_IGN);

    app a = {0};
    pz_err err;
    pz_err_init_collect(&err);
    int rc = pz_node_new(config, PZ_NODE_SERVER, &a.node, &err);
    if (rc == 0 && opt_check) {
        printf("%s: OK\n", config);
        pz_node_free(a.node);
        pz_err_clear(&err);
        return 0;
    }
    if (rc == 0)
        rc = pz_node_start(a.node, &err);
    if (rc < 0) {
        size_t n = pz_err_count(&err);
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, "prozsecd: %s\n", pz_err_at(&err, i));
        if (n == 0)
            fprintf(stderr, "prozsecd: %s\n", pz_err_msg(&err));
        pz_err_clear(&err);
        pz_node_free(a.node);
        return 2;
    }
    pz_err_clear(&err);
    pz_logging_set_level_from_node(a.node);
    if (opt_ready_file && write_ready_file(a.node, opt_ready_file) < 0) {
        pz_node_free(a.node);
        return 2;
    }

    a.loop = g_main_loop_new(NULL, FALSE);
    g_unix_signal_add(SIGTERM, on_term, &a);
    g_unix_signal_add(SIGINT, on_term, &a);
    g_unix_signal_add(SIGHUP, on_hup, &a);
    g_main_loop_run(a.loop);

    pz_node_shutdown(a.node, (unsigned)(opt_drain_ms > 0 ? opt_drain_ms : 0));
    pz_node_free(a.node);
    g_main_loop_unref(a.loop);
    pz_log("prozsecd", PZ_LOG_NOTICE, "stopped");
    return a.exit_code;
}
