/* core/cmd_config.c — `prozsec config check FILE`: parse a configuration
 * file, read the core sections, hand the identity, authorization, peers,
 * rpc, e2e and metrics sections to their modules' readers, and load and
 * instantiate every configured provider so each checks its own `config`
 * map. Prints "FILE: OK" (exit 0) or every problem, one "FILE:LINE:COL:
 * ..." line each (exit 2).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "authz.h"
#include "cmd.h"
#include "conf.h"
#include "err.h"
#include "identity.h"
#include "loader.h"
#include "node_priv.h"
#include "settings.h"

typedef struct check_ctx {
    const char *file;
    pz_loader *loader;
    int n_errors;
} check_ctx;

/* Print every message of ERR, one line each (a message may hold several
 * lines already, e.g. one per unknown key). */
static void print_errors(check_ctx *c, const pz_err *err)
{
    size_t n = pz_err_count(err);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "%s\n", pz_err_at(err, i));
    if (n == 0 && err->code != 0)
        fprintf(stderr, "%s: %s\n", c->file, pz_err_msg(err));
    c->n_errors += n ? (int)n : (err->code != 0);
}

/* The node to blame for entry E's provider: its `provider` value when the
 * entry is a map, else the entry itself. */
static const pz_conf *provider_node(const pz_settings_provider *e)
{
    const pz_conf *n = pz_conf_kind(e->node) == PZ_CONF_NODE_MAP ? pz_conf_child(e->node, "provider") : NULL;
    return n ? n : e->node;
}

/* Load and instantiate one provider entry; report what goes wrong. */
static int check_provider(const pz_settings_provider *e, void *ud)
{
    check_ctx *c = ud;
    const pz_plugin *plugin = NULL;
    pz_provider *prov = NULL;
    pz_err err;

    if (!e->provider)
        return 0; /* already reported by settings */
    pz_err_init_collect(&err);
    const pz_conf *where = provider_node(e);
    if (pz_loader_load(c->loader, e->provider, e->kind, &plugin, &err) != 0) {
        pz_err_prefix(&err, "%s: %s: %s provider \"%s\" cannot be loaded", pz_conf_where(where),
                      pz_conf_path(where), pz_plugin_kind_name(e->kind), e->provider);
        print_errors(c, &err);
        goto out;
    }
    if (pz_provider_new(plugin, e->name, e->config, &prov, &err) != 0) {
        /* Configuration errors from the provider carry their own position;
         * anything else is blamed on the entry. */
        const char *msg = pz_err_msg(&err);
        const char *file = pz_conf_file(e->node);
        size_t nlen = strlen(e->name);
        if (!strncmp(msg, file, strlen(file)))
            ; /* "FILE:LINE:COL: ..." already */
        else if (!strncmp(msg, e->name, nlen) && msg[nlen] == ':')
            pz_err_prefix(&err, "%s: %s", pz_conf_where(e->node), pz_conf_path(e->node));
        else
            pz_err_prefix(&err, "%s: %s: %s", pz_conf_where(e->node), pz_conf_path(e->node), e->name);
        print_errors(c, &err);
    }
    pz_provider_free(prov);
out:
    pz_err_clear(&err);
    return 0;
}

/* The sections other modules own: let their readers check them. */
static void check_delegated(check_ctx *c, const pz_conf *root)
{
    pz_err err;
    pz_identities *ids = NULL;
    pz_authz *authz = NULL;

    pz_err_init_collect(&err);
    if (pz_identities_new_from_conf(root, &ids, &err) != 0)
        print_errors(c, &err);
    pz_identities_free(ids);
    pz_err_clear(&err);
    if (pz_authz_new_from_conf(root, &authz, &err) != 0)
        print_errors(c, &err);
    pz_authz_free(authz);
    pz_err_clear(&err);
    /* peers, rpc, e2e, metrics: the node's reader (it needs no node to
     * read them). */
    node_conf nc;
    if (node_conf_load(NULL, root, &nc, &err) == 0)
        node_conf_clear(&nc);
    else
        print_errors(c, &err);
    pz_err_clear(&err);
}

static int config_check(int argc, char **argv)
{
    int rc = PZ_EXIT_USAGE;
    char **extra_dirs = NULL;
    gboolean syntax_only = FALSE;
    pz_conf_doc *doc = NULL;
    pz_settings *settings = NULL;
    GPtrArray *dirs = g_ptr_array_new_with_free_func(g_free);
    check_ctx c = {0};
    pz_err err;

    pz_err_init_collect(&err);
    const GOptionEntry entries[] = {
        {"plugin-path", 'p', 0, G_OPTION_ARG_FILENAME_ARRAY, &extra_dirs,
         "Look for provider plugins in DIR first (repeatable)", "DIR"},
        {"syntax-only", 0, 0, G_OPTION_ARG_NONE, &syntax_only,
         "Check the YAML and the core sections only; do not load provider plugins", NULL},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    if (pz_cmd_parse("config check", "FILE",
                     "Check a prozsec configuration file: YAML, the core sections, and each\n"
                     "configured provider's own settings (its plugin is loaded and an instance\n"
                     "created, then destroyed). Prints FILE: OK and exits 0, or prints every\n"
                     "problem as FILE:LINE:COL: ... and exits 2.",
                     entries, &argc, &argv) != 0)
        goto out;
    if (argc != 2) {
        pz_cmd_fail("config check: expected one FILE, got %d (try --help)", argc - 1);
        goto out;
    }
    c.file = argv[1];

    if (pz_conf_load_file(c.file, &doc, &err) != 0) {
        print_errors(&c, &err);
        goto out;
    }
    const pz_conf *root = pz_conf_root(doc);
    pz_err_clear(&err);
    if (pz_settings_load_partial(root, &settings, &err) != 0)
        print_errors(&c, &err);
    pz_err_clear(&err);
    check_delegated(&c, root);

    if (!syntax_only && settings) {
        /* Search order: --plugin-path, then plugins.path, then the
         * loader's own ($PROZSEC_PLUGIN_PATH, the built-in directory). */
        for (size_t i = 0; extra_dirs && extra_dirs[i]; i++)
            g_ptr_array_add(dirs, g_canonicalize_filename(extra_dirs[i], NULL));
        for (size_t i = 0; i < settings->n_plugin_path; i++)
            g_ptr_array_add(dirs, g_strdup(settings->plugin_path[i]));
        if (pz_loader_new((const char *const *)dirs->pdata, dirs->len, &c.loader, &err) != 0) {
            print_errors(&c, &err);
            goto out;
        }
        pz_settings_foreach_provider(settings, check_provider, &c);
    }
    if (c.n_errors == 0) {
        printf("%s: OK\n", c.file);
        rc = PZ_EXIT_OK;
    }
out:
    pz_loader_free(c.loader);
    pz_settings_free(settings);
    pz_conf_doc_free(doc);
    pz_err_clear(&err);
    g_ptr_array_free(dirs, TRUE);
    g_strfreev(extra_dirs);
    return rc;
}

int pz_cmd_config(int argc, char **argv)
{
    static const pz_cmd table[] = {
        {"check", "check a configuration file (YAML, core sections, providers' settings)", config_check},
        {NULL, NULL, NULL},
    };
    return pz_cmd_dispatch("config", table, argc, argv);
}
