/* core/cmd_node.c — `prozsec rpc call`, `prozsec peer list|ban|unban`,
 * `prozsec stats` and `prozsec reload`: the tool acts as the node whose
 * configuration it is given (its certificate, keys and auth chain) and
 * talks to a node over TLS, or to the local daemon over its unix socket
 * (admin.* methods). */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <json-glib/json-glib.h>

#include "cmd.h"
#include "coresvc.h"
#include "logging.h"
#include "node.h"
#include "node_priv.h"

static char *opt_config;
static char *opt_peer;
static char *opt_node_id;
static char *opt_transport;
static int opt_timeout = 10000;
static gboolean opt_mac;
static char *opt_duration;
static gboolean opt_verbose;

static pz_node *open_node(const char *config)
{
    pz_err err;
    pz_err_init_collect(&err);
    pz_node *node = NULL;
    if (!config) {
        pz_cmd_fail("--config FILE is required (the node this tool acts as)");
        return NULL;
    }
    if (pz_node_new(config, PZ_NODE_CLIENT, &node, &err) < 0) {
        size_t n = pz_err_count(&err);
        for (size_t i = 0; i < n; i++)
            pz_cmd_fail("%s", pz_err_at(&err, i));
        if (!n)
            pz_cmd_fail("%s", pz_err_msg(&err));
    }
    pz_err_clear(&err);
    return node;
}

static void print_json(GVariant *v)
{
    if (!v) {
        printf("null\n");
        return;
    }
    char *json = json_gvariant_serialize_data(v, NULL);
    JsonParser *p = json_parser_new();
    if (json_parser_load_from_data(p, json, -1, NULL)) {
        JsonGenerator *g = json_generator_new();
        json_generator_set_pretty(g, TRUE);
        json_generator_set_root(g, json_parser_get_root(p));
        char *pretty = json_generator_to_data(g, NULL);
        printf("%s\n", pretty);
        g_free(pretty);
        g_object_unref(g);
    } else {
        printf("%s\n", json);
    }
    g_object_unref(p);
    g_free(json);
}

/* Call METHOD on NODE_ID and print the result; exit code. */
static int call_and_print(pz_node *node, const char *node_id, const char *method, GVariant *params,
                          int print_text_key)
{
    GVariant *data = NULL;
    int32_t status = 0;
    char *message = NULL;
    pz_err err;
    pz_err_init(&err);
    int rc = pz_node_call_sync(node, node_id, method, params, (unsigned)opt_timeout, opt_mac ? PZ_RPC_MAC : 0,
                               &data, &status, &message, &err);
    int code = PZ_EXIT_OK;
    if (rc < 0) {
        pz_cmd_fail("%s", pz_err_msg(&err));
        code = PZ_EXIT_NO;
    } else if (status != PZ_RPC_OK) {
        pz_cmd_fail("%s on %s refused: %s%s%s", method, node_id, pz_rpc_status_name(status),
                    message && *message ? ": " : "", message ? message : "");
        code = PZ_EXIT_NO;
    } else if (print_text_key) {
        const char *text = NULL;
        if (data && g_variant_lookup(data, "text", "&s", &text))
            fputs(text, stdout);
        else
            print_json(data);
    } else {
        print_json(data);
    }
    pz_err_clear(&err);
    g_free(message);
    if (data)
        g_variant_unref(data);
    return code;
}

static GVariant *params_from_json(const char *json, int *bad)
{
    *bad = 0;
    if (!json)
        return NULL;
    GError *ge = NULL;
    GVariant *v = json_gvariant_deserialize_data(json, -1, "a{sv}", &ge);
    if (!v) {
        pz_cmd_fail("JSON parameters: %s (expected an object such as '{\"max\": 10}')", ge->message);
        g_error_free(ge);
        *bad = 1;
    }
    return v ? g_variant_ref_sink(v) : NULL;
}

static int cmd_rpc_call(int argc, char **argv)
{
    static const GOptionEntry entries[] = {
        {"config", 'c', 0, G_OPTION_ARG_FILENAME, &opt_config, "Configuration of the node to act as", "FILE"},
        {"peer", 'p', 0, G_OPTION_ARG_STRING, &opt_peer, "Address of the node to call (HOST:PORT)", "HOST:PORT"},
        {"node-id", 'n', 0, G_OPTION_ARG_STRING, &opt_node_id,
         "Node id expected at --peer (checked in the handshake); default: the config's peers: entry", "ID"},
        {"transport", 't', 0, G_OPTION_ARG_STRING, &opt_transport, "Transport instance to use (default: first non-unix)", "NAME"},
        {"timeout", 0, 0, G_OPTION_ARG_INT, &opt_timeout, "Deadline in milliseconds (default 10000)", "MS"},
        {"mac", 0, 0, G_OPTION_ARG_NONE, &opt_mac, "Use the mac integrity mode instead of a signature", NULL},
        {"verbose", 'v', 0, G_OPTION_ARG_NONE, &opt_verbose, "Log connection details to stderr", NULL},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    int rc = pz_cmd_parse("rpc call", "METHOD [JSON]",
                          "Make one signed call and print the result as JSON. Exit 0 when the call\n"
                          "succeeded, 1 when it was refused or failed, 2 on a usage error.",
                          entries, &argc, &argv);
    if (rc)
        return rc;
    if (argc < 2 || argc > 3) {
        pz_cmd_fail("rpc call: expected METHOD [JSON] (try --help)");
        return PZ_EXIT_USAGE;
    }
    pz_logging_setup("prozsec", opt_verbose ? "info" : "warning");
    int bad;
    GVariant *params = params_from_json(argc == 3 ? argv[2] : NULL, &bad);
    if (bad)
        return PZ_EXIT_USAGE;
    pz_node *node = open_node(opt_config);
    if (!node) {
        if (params)
            g_variant_unref(params);
        return PZ_EXIT_USAGE;
    }
    const char *target = opt_node_id;
    if (opt_peer) {
        if (!target) {
            /* Find the node id of this address in the address book. */
            GHashTableIter it;
            gpointer k, v;
            g_hash_table_iter_init(&it, node->peers);
            while (g_hash_table_iter_next(&it, &k, &v))
                if (strcmp(((node_peer *)v)->address, opt_peer) == 0)
                    target = k;
        }
        if (!target) {
            pz_cmd_fail("rpc call: --node-id ID is needed: %s is not in the peers: of %s", opt_peer, opt_config);
            pz_node_free(node);
            if (params)
                g_variant_unref(params);
            return PZ_EXIT_USAGE;
        }
        pz_err err;
        pz_err_init(&err);
        if (pz_node_add_peer_address(node, target, opt_peer, opt_transport, &err) < 0) {
            pz_cmd_fail("rpc call: %s", pz_err_msg(&err));
            pz_err_clear(&err);
            pz_node_free(node);
            if (params)
                g_variant_unref(params);
            return PZ_EXIT_USAGE;
        }
        pz_err_clear(&err);
    }
    if (!target) {
        pz_cmd_fail("rpc call: give --peer HOST:PORT and/or --node-id ID");
        pz_node_free(node);
        if (params)
            g_variant_unref(params);
        return PZ_EXIT_USAGE;
    }
    rc = call_and_print(node, target, argv[1], params, 0);
    if (params)
        g_variant_unref(params);
    pz_node_free(node);
    return rc;
}

/* Connect to the local daemon of CONFIG over its unix transport. */
static pz_node *open_admin(void)
{
    pz_logging_setup("prozsec", opt_verbose ? "info" : "warning");
    pz_node *node = open_node(opt_config);
    if (!node)
        return NULL;
    for (guint i = 0; i < node->transports->len; i++) {
        node_transport *nt = node->transports->pdata[i];
        if (nt->is_unix && nt->listen) {
            pz_err err;
            pz_err_init(&err);
            pz_node_add_peer_address(node, node->node_id, nt->listen, nt->name, &err);
            pz_err_clear(&err);
            return node;
        }
    }
    pz_cmd_fail("%s has no unix transport with listen: (the admin socket)", opt_config);
    pz_node_free(node);
    return NULL;
}

static const GOptionEntry admin_entries[] = {
    {"config", 'c', 0, G_OPTION_ARG_FILENAME, &opt_config, "Configuration of the local node", "FILE"},
    {"timeout", 0, 0, G_OPTION_ARG_INT, &opt_timeout, "Deadline in milliseconds (default 10000)", "MS"},
    {"verbose", 'v', 0, G_OPTION_ARG_NONE, &opt_verbose, "Log connection details to stderr", NULL},
    {NULL, 0, 0, 0, NULL, NULL, NULL},
};

static int admin_simple(const char *name, const char *summary, const char *method, int text, int argc,
                        char **argv)
{
    int rc = pz_cmd_parse(name, NULL, summary, admin_entries, &argc, &argv);
    if (rc)
        return rc;
    if (argc != 1) {
        pz_cmd_fail("%s: unexpected argument '%s'", name, argv[1]);
        return PZ_EXIT_USAGE;
    }
    pz_node *node = open_admin();
    if (!node)
        return PZ_EXIT_USAGE;
    rc = call_and_print(node, node->node_id, method, NULL, text);
    pz_node_free(node);
    return rc;
}

static int cmd_peer_list(int argc, char **argv)
{
    return admin_simple("peer list", "List connected peers with their status (admin socket).", "admin.peers", 0,
                        argc, argv);
}

static int ban_like(const char *name, const char *method, int with_duration, int argc, char **argv)
{
    GOptionEntry entries[] = {
        admin_entries[0],
        admin_entries[1],
        {"duration", 'd', 0, G_OPTION_ARG_STRING, &opt_duration, "Ban length such as 30m or 2h (default: escalating)", "DURATION"},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    if (!with_duration)
        entries[2] = entries[3];
    int rc = pz_cmd_parse(name, "TARGET",
                          "TARGET is a node id or an address prefix (CIDR such as 203.0.113.0/24).\n"
                          "Live sessions of a banned node are closed.",
                          entries, &argc, &argv);
    if (rc)
        return rc;
    if (argc != 2) {
        pz_cmd_fail("%s: expected TARGET (try --help)", name);
        return PZ_EXIT_USAGE;
    }
    pz_node *node = open_admin();
    if (!node)
        return PZ_EXIT_USAGE;
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add(&b, "{sv}", "target", g_variant_new_string(argv[1]));
    if (opt_duration)
        g_variant_builder_add(&b, "{sv}", "duration", g_variant_new_string(opt_duration));
    GVariant *params = g_variant_ref_sink(g_variant_builder_end(&b));
    rc = call_and_print(node, node->node_id, method, params, 0);
    g_variant_unref(params);
    pz_node_free(node);
    return rc;
}

static int cmd_peer_ban(int argc, char **argv)
{
    return ban_like("peer ban", "admin.ban", 1, argc, argv);
}

static int cmd_peer_unban(int argc, char **argv)
{
    return ban_like("peer unban", "admin.unban", 0, argc, argv);
}

int pz_cmd_rpc(int argc, char **argv)
{
    static const pz_cmd table[] = {
        {"call", "make one signed call to a node and print the result", cmd_rpc_call},
        {NULL, NULL, NULL},
    };
    return pz_cmd_dispatch("rpc", table, argc, argv);
}

int pz_cmd_peer(int argc, char **argv)
{
    static const pz_cmd table[] = {
        {"list", "list connected peers with status", cmd_peer_list},
        {"ban", "ban a node id or address prefix", cmd_peer_ban},
        {"unban", "lift a ban", cmd_peer_unban},
        {NULL, NULL, NULL},
    };
    return pz_cmd_dispatch("peer", table, argc, argv);
}

int pz_cmd_stats(int argc, char **argv)
{
    return admin_simple("stats", "Print the local daemon's counters and gauges (Prometheus text format).",
                        "admin.stats", 1, argc, argv);
}

int pz_cmd_reload(int argc, char **argv)
{
    return admin_simple("reload",
                        "Ask the local daemon to re-read its configuration, certificates and CRL\n"
                        "(like SIGHUP). On any error the running configuration stays and the errors\n"
                        "are printed.",
                        "admin.reload", 0, argc, argv);
}
