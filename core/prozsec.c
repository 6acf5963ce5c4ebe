/* core/prozsec.c — the operator's tool: dispatches `prozsec GROUP ...` to
 * the subcommand files named in core/cmd.h. */
#include "config.h"

#include <locale.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "buildtree.h"
#include "cmd.h"

static const pz_cmd commands[] = {
    {"plugins", "list the provider plugins on the plugin path", pz_cmd_plugins},
    {"config", "check a configuration file", pz_cmd_config},
    {"audit", "verify an RPC audit log", pz_cmd_audit},
    {"ca", "create a certificate authority", pz_cmd_ca},
    {"cert", "issue, revoke, show and verify node certificates", pz_cmd_cert},
    {"e2e", "seal and open end-to-end encrypted envelopes; node E2E keys", pz_cmd_e2e},
    {"rpc", "make a signed call to a node", pz_cmd_rpc},
    {"peer", "list, ban and unban peers of the local daemon", pz_cmd_peer},
    {"stats", "print the local daemon's counters", pz_cmd_stats},
    {"reload", "make the local daemon re-read its configuration", pz_cmd_reload},
    {"demo", "run a local demo network of three nodes", pz_cmd_demo},
    {NULL, NULL, NULL},
};

void pz_cmd_fail(const char *fmt, ...)
{
    va_list ap;
    fputs("prozsec: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static gboolean opt_version;

int pz_cmd_parse(const char *name, const char *params, const char *summary, const GOptionEntry *entries,
                 int *argc, char ***argv)
{
    static const GOptionEntry common[] = {
        {"version", 'V', 0, G_OPTION_ARG_NONE, &opt_version, "Print the version and exit", NULL},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    g_autofree char *title = g_strdup(params ? params : "");
    GOptionContext *ctx = g_option_context_new(title);
    g_autofree char *prog = g_strdup_printf("prozsec %s", name);
    g_set_prgname(prog);
    if (summary)
        g_option_context_set_summary(ctx, summary);
    if (entries)
        g_option_context_add_main_entries(ctx, entries, NULL);
    g_option_context_add_main_entries(ctx, common, NULL);
    GError *gerr = NULL;
    opt_version = FALSE;
    gboolean ok = g_option_context_parse(ctx, argc, argv, &gerr);
    if (!ok) {
        pz_cmd_fail("%s: %s (try --help)", name, gerr->message);
        g_error_free(gerr);
        g_option_context_free(ctx);
        return PZ_EXIT_USAGE;
    }
    g_option_context_free(ctx);
    if (opt_version) {
        printf("prozsec %s\n", PACKAGE_VERSION);
        exit(0);
    }
    return 0;
}

static void group_help(FILE *out, const char *group, const pz_cmd *table)
{
    fprintf(out, "Usage: prozsec %s COMMAND [OPTION...]\n\nCommands:\n", group ? group : "");
    for (const pz_cmd *c = table; c->name; c++)
        fprintf(out, "  %-12s %s\n", c->name, c->summary);
    fprintf(out, "\nRun `prozsec %s%sCOMMAND --help` for a command's options.\n", group ? group : "",
            group ? " " : "");
}

int pz_cmd_dispatch(const char *group, const pz_cmd *table, int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        group_help(argc < 2 ? stderr : stdout, group, table);
        return argc < 2 ? PZ_EXIT_USAGE : PZ_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
        printf("prozsec %s\n", PACKAGE_VERSION);
        return PZ_EXIT_OK;
    }
    for (const pz_cmd *c = table; c->name; c++)
        if (!strcmp(argv[1], c->name))
            return c->run(argc - 1, argv + 1);
    pz_cmd_fail("%s%sunknown command '%s' (try `prozsec %s%s--help`)", group ? group : "", group ? ": " : "",
                argv[1], group ? group : "", group ? " " : "");
    return PZ_EXIT_USAGE;
}

int main(int argc, char **argv)
{
    setlocale(LC_ALL, "");
    pz_buildtree_setup();
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("prozsec — ProzChain secure communication layer, operator's tool\n\n");
        group_help(stdout, NULL, commands);
        return PZ_EXIT_OK;
    }
    return pz_cmd_dispatch(NULL, commands, argc, argv);
}
