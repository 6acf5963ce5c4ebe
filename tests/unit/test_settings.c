/* tests/unit/test_settings.c — core/settings.c: the core sections read
 * into pz_settings, every problem reported with its FILE:LINE:COL. */
#include "config.h"

#include <glib.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "conf.h"
#include "err.h"
#include "settings.h"

#define NODE "node: {id: n1, type: validator}\n"

static pz_conf_doc *parse_as(const char *name, const char *text)
{
    pz_err err;
    pz_conf_doc *doc = NULL;
    pz_err_init(&err);
    if (pz_conf_load_string(name, text, strlen(text), &doc, &err) != 0)
        fail_msg("parse error: %s", pz_err_msg(&err));
    pz_err_clear(&err);
    return doc;
}

/* Load TEXT; expect success. */
static pz_settings *load_ok(pz_conf_doc **doc, const char *text)
{
    pz_err err;
    pz_settings *s = NULL;
    pz_err_init_collect(&err);
    *doc = parse_as("test.yaml", text);
    int rc = pz_settings_load(pz_conf_root(*doc), &s, &err);
    if (rc != 0) {
        for (size_t i = 0; i < pz_err_count(&err); i++)
            print_error("  %s\n", pz_err_at(&err, i));
        fail_msg("pz_settings_load: %d", rc);
    }
    assert_int_equal(pz_err_count(&err), 0);
    pz_err_clear(&err);
    return s;
}

/* ------------------------------------------------------------------------ */

static void test_full(void **state)
{
    (void)state;
    pz_conf_doc *doc;
    pz_settings *s = load_ok(&doc, "node:\n"
                                   "  id: Node-1.eu_west\n"
                                   "  type: validator\n"
                                   "  data_dir: /var/lib/pz\n"
                                   "  key_dir: /etc/pz/keys/\n"
                                   "log: {level: debug, format: json}\n"
                                   "plugins:\n"
                                   "  path: [/opt/pz/plugins, /usr/lib/pz]\n"
                                   "transports:\n"
                                   "  - provider: tls\n"
                                   "    listen: 0.0.0.0:7400\n"
                                   "    config: {profile: node}\n"
                                   "  - provider: unix\n"
                                   "    name: local\n"
                                   "auth:\n"
                                   "  default_provider: cert-auth\n"
                                   "  chain:\n"
                                   "    - {provider: cert-auth, control: requisite}\n"
                                   "    - {provider: key-pin, control: sufficient, config: {pins: []}}\n"
                                   "    - {provider: psk-token, name: psk2, control: optional}\n"
                                   "dos:\n"
                                   "  connection_limiters:\n"
                                   "    - provider: conn-limit\n"
                                   "      config: {global: 100}\n"
                                   "    - {provider: reputation, shadow: true}\n"
                                   "  rate_limiters:\n"
                                   "    - provider: token-bucket\n"
                                   "      method_costs: {chain.get_block: 5, ping: 1}\n"
                                   "      config: {capacity: 10, refill: 1}\n"
                                   "    - {provider: gcra, name: gcra-peer, shadow: on}\n"
                                   "identity: {directory: peers.yaml}\n"
                                   "authorization: {rules: []}\n"
                                   "peers: [{node_id: n2, address: \"10.0.0.2:7400\"}]\n"
                                   "rpc: {skew: 30s}\ne2e: {rotate: 7d}\nmetrics: {listen: x}\n");
    assert_string_equal(s->node_id, "Node-1.eu_west");
    assert_string_equal(s->node_type, "validator");
    assert_string_equal(s->data_dir, "/var/lib/pz");
    assert_string_equal(s->key_dir, "/etc/pz/keys");
    assert_int_equal(s->log_level, PZ_LOG_DEBUG);
    assert_int_equal(s->log_format, PZ_LOG_FORMAT_JSON);
    assert_int_equal(s->n_plugin_path, 2);
    assert_string_equal(s->plugin_path[0], "/opt/pz/plugins");
    assert_string_equal(s->plugin_path[1], "/usr/lib/pz");
    assert_null(s->plugin_path[2]);

    assert_int_equal(s->n_transports, 2);
    assert_int_equal(s->transports[0].kind, PZ_KIND_TRANSPORT);
    assert_string_equal(s->transports[0].provider, "tls");
    assert_string_equal(s->transports[0].name, "tls");
    assert_string_equal(s->transports[0].listen, "0.0.0.0:7400");
    assert_string_equal(pz_conf_path(s->transports[0].config), "transports[0].config");
    assert_string_equal(pz_conf_where(s->transports[0].node), "test.yaml:10:5");
    assert_string_equal(s->transports[1].name, "local");
    assert_null(s->transports[1].listen);
    assert_null(s->transports[1].config);

    assert_non_null(s->auth);
    assert_null(s->auth_default); /* a chain is configured */
    assert_int_equal(s->n_auth_chain, 3);
    assert_int_equal(s->auth_chain[0].control, PZ_SETTINGS_REQUISITE);
    assert_int_equal(s->auth_chain[1].control, PZ_SETTINGS_SUFFICIENT);
    assert_string_equal(s->auth_chain[2].name, "psk2");
    assert_int_equal(s->auth_chain[2].control, PZ_SETTINGS_OPTIONAL);
    assert_int_equal(s->auth_chain[2].kind, PZ_KIND_AUTH);

    assert_int_equal(s->n_conn_limiters, 2);
    assert_int_equal(s->conn_limiters[0].shadow, 0);
    assert_int_equal(s->conn_limiters[1].shadow, 1);
    assert_int_equal(s->conn_limiters[1].kind, PZ_KIND_CONNLIMIT);
    assert_int_equal(s->n_rate_limiters, 2);
    assert_int_equal(s->rate_limiters[0].kind, PZ_KIND_RATELIMIT);
    assert_int_equal(s->rate_limiters[0].n_costs, 2);
    assert_string_equal(s->rate_limiters[0].costs[0].method, "chain.get_block");
    assert_int_equal(s->rate_limiters[0].costs[0].cost, 5);
    assert_string_equal(s->rate_limiters[0].costs[1].method, "ping");
    assert_int_equal(s->rate_limiters[0].costs[1].cost, 1);
    assert_string_equal(s->rate_limiters[1].name, "gcra-peer");
    assert_int_equal(s->rate_limiters[1].shadow, 1);
    assert_int_equal(s->rate_limiters[1].n_costs, 0);

    /* Provider maps were left to the providers: their keys are unread. */
    pz_err err;
    pz_err_init_collect(&err);
    assert_int_equal(pz_conf_check_unused(s->rate_limiters[0].config, &err), PZ_ECONFIG);
    assert_int_equal(pz_err_count(&err), 2);
    assert_string_equal(pz_err_at(&err, 0), "test.yaml:29:16: dos.rate_limiters[0].config.capacity: unknown key");
    pz_err_clear(&err);

    pz_settings_free(s);
    pz_conf_doc_free(doc);
}

static void test_defaults(void **state)
{
    (void)state;
    pz_conf_doc *doc;
    pz_settings *s = load_ok(&doc, NODE "log: ~\nplugins: {}\ndos: {}\n");
    assert_int_equal(s->log_level, PZ_LOG_INFO);
    assert_int_equal(s->log_format, PZ_LOG_FORMAT_TEXT);
    assert_string_equal(s->data_dir, PZ_LOCALSTATEDIR "/lib/prozsec");
    assert_string_equal(s->key_dir, PZ_SYSCONFDIR "/keys");
    assert_int_equal(s->n_plugin_path, 0);
    assert_int_equal(s->n_transports + s->n_auth_chain + s->n_conn_limiters + s->n_rate_limiters, 0);
    assert_null(s->auth);
    assert_null(s->auth_default);
    pz_settings_free(s);
    pz_conf_doc_free(doc);
    pz_settings_free(NULL);
}

static void test_relative_paths(void **state)
{
    (void)state;
    pz_err err;
    pz_settings *s = NULL;
    pz_err_init_collect(&err);
    pz_conf_doc *doc = parse_as("/etc/prozsec/node.yaml", "node: {id: a, type: b, data_dir: data, key_dir: ../k}\n"
                                                          "plugins: {path: [plugins, ./x/../y, /abs]}\n");
    assert_int_equal(pz_settings_load(pz_conf_root(doc), &s, &err), 0);
    assert_string_equal(s->data_dir, "/etc/prozsec/data");
    assert_string_equal(s->key_dir, "/etc/k");
    assert_string_equal(s->plugin_path[0], "/etc/prozsec/plugins");
    assert_string_equal(s->plugin_path[1], "/etc/prozsec/y");
    assert_string_equal(s->plugin_path[2], "/abs");
    pz_settings_free(s);
    pz_conf_doc_free(doc);
    pz_err_clear(&err);
}

static void test_auth_default(void **state)
{
    (void)state;
    pz_conf_doc *doc;
    pz_settings *s = load_ok(&doc, NODE "auth:\n  default_provider: cert-auth\n  default_config: {crl: x}\n");
    assert_non_null(s->auth_default);
    assert_string_equal(s->auth_default->provider, "cert-auth");
    assert_int_equal(s->auth_default->control, PZ_SETTINGS_REQUIRED);
    assert_string_equal(pz_conf_path(s->auth_default->config), "auth.default_config");
    assert_string_equal(pz_conf_where(s->auth_default->node), "test.yaml:3:21");
    assert_int_equal(s->n_auth_chain, 0);
    pz_settings_free(s);
    pz_conf_doc_free(doc);
}

/* ------------------------------------------------------------------------ */
/* Every error, with its position. */

typedef struct error_case {
    const char *yaml;
    const char *msgs[4]; /* expected messages in order; the rest NULL */
} error_case;

static const error_case error_cases[] = {
    {"", {"test.yaml:1:1: missing key \"node\" (the node section, with at least id and type)"}},
    {"node: [a]\n", {"test.yaml:1:7: node: expected a map, found a list"}},
    {"node: {type: validator}\n",
     {"test.yaml:1:7: node: missing key \"id\" (a node id: 1 to 64 of A-Z a-z 0-9 . _ -)"}},
    {"node: {id: ~, type: validator}\n",
     {"test.yaml:1:7: node: missing key \"id\" (a node id: 1 to 64 of A-Z a-z 0-9 . _ -)"}},
    {"node:\n  id: bad id\n  type: validator\n",
     {"test.yaml:2:7: node.id: expected a node id: 1 to 64 of A-Z a-z 0-9 . _ -, found \"bad id\""}},
    {"node:\n  id: [x]\n  type: validator\n",
     {"test.yaml:2:7: node.id: expected a node id: 1 to 64 of A-Z a-z 0-9 . _ -, found a list"}},
    {"node:\n  id: "
     "a1234567890123456789012345678901234567890123456789012345678901234\n"
     "  type: validator\n",
     {"test.yaml:2:7: node.id: expected a node id: 1 to 64 of A-Z a-z 0-9 . _ -, found "
      "\"a12345678901234567890123456789012345678901234567...\""}},
    {"node: {id: n1}\n", {"test.yaml:1:7: node: missing key \"type\" (a node type: 1 to 32 of a-z 0-9 _ -)"}},
    {"node: {id: n1, type: Validator}\n",
     {"test.yaml:1:22: node.type: expected a node type: 1 to 32 of a-z 0-9 _ -, found \"Validator\""}},
    {"node: {id: n1, type: v, data_dir: \"\"}\n",
     {"test.yaml:1:35: node.data_dir: expected a directory path, found \"\""}},
    {NODE "log: {level: verbose}\n",
     {"test.yaml:2:14: log.level: expected debug, info, notice, warning or error, found \"verbose\""}},
    {NODE "log: {format: xml}\n", {"test.yaml:2:15: log.format: expected text or json, found \"xml\""}},
    {NODE "log: loud\n", {"test.yaml:2:6: log: expected a map, found \"loud\""}},
    {NODE "plugins: {path: /opt}\n", {"test.yaml:2:17: plugins.path: expected a list, found \"/opt\""}},
    {NODE "plugins: {path: [/a, {x: 1}, \"\", ~]}\n",
     {"test.yaml:2:22: plugins.path[1]: expected a directory path, found a map",
      "test.yaml:2:30: plugins.path[2]: expected a directory path, found \"\"",
      "test.yaml:2:34: plugins.path[3]: expected a directory path, found null"}},
    {NODE "transports: {provider: tls}\n", {"test.yaml:2:13: transports: expected a list, found a map"}},
    {NODE "transports: [tls]\n",
     {"test.yaml:2:14: transports[0]: expected a map with provider and optionally name, listen, config, found "
      "\"tls\""}},
    {NODE "transports:\n  - listen: x\n",
     {"test.yaml:3:5: transports[0]: missing key \"provider\" (a provider name: a-z 0-9 first, then up to 31 of "
      "a-z 0-9 -)"}},
    {NODE "transports:\n  - {provider: TLS, listen: \"\", name: -x}\n",
     {"test.yaml:3:16: transports[0].provider: expected a provider name: a-z 0-9 first, then up to 31 of a-z "
      "0-9 -, found \"TLS\"",
      "test.yaml:3:39: transports[0].name: expected an instance name: a-z 0-9 first, then up to 63 of a-z 0-9 "
      "-, found \"-x\"",
      "test.yaml:3:29: transports[0].listen: expected an address to listen on, found \"\""}},
    {NODE "transports:\n  - {provider: tls, config: [1]}\n",
     {"test.yaml:3:29: transports[0].config: expected a map, found a list"}},
    {NODE "auth:\n  chain:\n    - {provider: cert-auth}\n",
     {"test.yaml:4:7: auth.chain[0]: missing key \"control\" (required, requisite, sufficient or optional)"}},
    {NODE "auth:\n  chain:\n    - {provider: cert-auth, control: mandatory}\n",
     {"test.yaml:4:38: auth.chain[0].control: expected required, requisite, sufficient or optional, found "
      "\"mandatory\""}},
    {NODE "auth: {default_provider: Cert}\n",
     {"test.yaml:2:26: auth.default_provider: expected a provider name: a-z 0-9 first, then up to 31 of a-z 0-9 "
      "-, found \"Cert\""}},
    {NODE "auth: {chain: {}}\n", {"test.yaml:2:15: auth.chain: expected a list, found a map"}},
    {NODE "dos:\n  connection_limiters:\n    - {provider: conn-limit, shadow: maybe}\n",
     {"test.yaml:4:38: dos.connection_limiters[0].shadow: expected true or false, found \"maybe\""}},
    {NODE "dos:\n  connection_limiters:\n    - {provider: conn-limit, method_costs: {a: 1}}\n",
     {"test.yaml:4:30: dos.connection_limiters[0].method_costs: unknown key"}},
    {NODE "dos:\n  rate_limiters:\n    - provider: gcra\n      method_costs: {Ping: 1, ping: 0, pong: \"2\", "
          "x: [1]}\n",
     {"test.yaml:5:28: dos.rate_limiters[0].method_costs.Ping: expected an RPC method name (a-z, then up to 63 of "
      "a-z 0-9 _ . -), found \"Ping\"",
      "test.yaml:5:37: dos.rate_limiters[0].method_costs.ping: expected an integer between 1 and 1000000, found "
      "\"0\"",
      "test.yaml:5:46: dos.rate_limiters[0].method_costs.pong: expected an integer between 1 and 1000000, found "
      "\"2\" (quoted, so a string: remove the quotes)",
      "test.yaml:5:54: dos.rate_limiters[0].method_costs.x: expected an integer between 1 and 1000000, found a "
      "list"}},
    {NODE "dos:\n  rate_limiters:\n    - {provider: gcra, method_costs: [ping]}\n",
     {"test.yaml:4:38: dos.rate_limiters[0].method_costs: expected a map, found a list"}},
    {NODE "dos: [1]\n", {"test.yaml:2:6: dos: expected a map, found a list"}},
    /* instance names are unique in the file */
    {NODE "transports: [{provider: tls}]\n"
          "dos:\n  rate_limiters:\n    - {provider: gcra}\n    - {provider: gcra}\n    - {provider: gcra, name: tls}\n",
     {"test.yaml:6:7: dos.rate_limiters[1]: instance name \"gcra\" is already used by dos.rate_limiters[0] (line 5, "
      "column 7); give one of them a distinct `name:`",
      "test.yaml:7:7: dos.rate_limiters[2]: instance name \"tls\" is already used by transports[0] (line 2, column "
      "14); give one of them a distinct `name:`"}},
    /* unknown keys, with suggestions from what was read in the same map */
    {NODE "lgo: {level: info}\n", {"test.yaml:2:1: lgo: unknown key (did you mean \"log\"?)"}},
    {NODE "tls_profiles: {port: 1}\nbogus: {}\n",
     {"test.yaml:2:1: tls_profiles: unknown key", "test.yaml:3:1: bogus: unknown key"}},
    {NODE "log: {levle: info}\n", {"test.yaml:2:7: log.levle: unknown key (did you mean \"level\"?)"}},
    {NODE "dos:\n  rate_limiters:\n    - provder: gcra\n",
     {"test.yaml:4:7: dos.rate_limiters[0]: missing key \"provider\" (a provider name: a-z 0-9 first, then up to 31 "
      "of a-z 0-9 -)",
      "test.yaml:4:7: dos.rate_limiters[0].provder: unknown key (did you mean \"provider\"?)"}},
    {NODE "transports:\n  - {provider: tls, listen: x, shadow: true}\n",
     {"test.yaml:3:32: transports[0].shadow: unknown key"}},
    /* delegated sections must be maps */
    {NODE "identity: peers.yaml\n", {"test.yaml:2:11: identity: expected a map, found \"peers.yaml\""}},
    {NODE "authorization: [1]\n", {"test.yaml:2:16: authorization: expected a map, found a list"}},
    {NODE "peers: {a: 1}\n", {"test.yaml:2:8: peers: expected a list, found a map"}},
    {NODE "rpc: 5\n", {"test.yaml:2:6: rpc: expected a map, found \"5\""}},
    /* several problems at once, in section order */
    {"node: {id: \"a b\"}\nlog: {level: 3}\nbogus: 1\n",
     {"test.yaml:1:12: node.id: expected a node id: 1 to 64 of A-Z a-z 0-9 . _ -, found \"a b\"",
      "test.yaml:1:7: node: missing key \"type\" (a node type: 1 to 32 of a-z 0-9 _ -)",
      "test.yaml:2:14: log.level: expected debug, info, notice, warning or error, found \"3\"",
      "test.yaml:3:1: bogus: unknown key"}},
};

static void test_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
        const error_case *c = &error_cases[i];
        pz_err err;
        pz_settings *s = (pz_settings *)&err;
        pz_err_init_collect(&err);
        pz_conf_doc *doc = parse_as("test.yaml", c->yaml);
        int rc = pz_settings_load(pz_conf_root(doc), &s, &err);
        size_t want = 0;
        while (want < 4 && c->msgs[want])
            want++;
        int ok = rc == PZ_ECONFIG && s == NULL && pz_err_count(&err) == want;
        for (size_t k = 0; ok && k < want; k++)
            ok = !strcmp(pz_err_at(&err, k), c->msgs[k]);
        if (!ok) {
            print_error("case %zu: rc %d, %zu messages:\n", i, rc, pz_err_count(&err));
            for (size_t k = 0; k < pz_err_count(&err); k++)
                print_error("   got  %s\n", pz_err_at(&err, k));
            for (size_t k = 0; k < want; k++)
                print_error("   want %s\n", c->msgs[k]);
            fail();
        }
        pz_err_clear(&err);
        pz_conf_doc_free(doc);
    }
}

static void test_bad_arguments(void **state)
{
    (void)state;
    pz_err err;
    pz_settings *s = (pz_settings *)&err;
    pz_err_init(&err);
    assert_int_equal(pz_settings_load(NULL, &s, &err), PZ_EINVAL);
    assert_null(s);
    pz_err_clear(&err);
}

/* ------------------------------------------------------------------------ */

typedef struct visit {
    GString *seen;
    size_t stop_after;
    size_t count;
} visit;

static int visit_one(const pz_settings_provider *e, void *ud)
{
    visit *v = ud;
    g_string_append_printf(v->seen, "%s%d:%s", v->seen->len ? " " : "", (int)e->kind, e->name);
    return ++v->count == v->stop_after ? 42 : 0;
}

static void test_foreach(void **state)
{
    (void)state;
    pz_conf_doc *doc;
    pz_settings *s = load_ok(&doc, NODE "dos:\n"
                                        "  rate_limiters: [{provider: gcra}]\n"
                                        "  connection_limiters: [{provider: conn-limit}]\n"
                                        "auth: {default_provider: cert-auth}\n"
                                        "transports: [{provider: tls}, {provider: unix}]\n");
    visit v = {.seen = g_string_new(""), .stop_after = 0};
    assert_int_equal(pz_settings_foreach_provider(s, visit_one, &v), 0);
    assert_string_equal(v.seen->str, "4:tls 4:unix 1:cert-auth 3:conn-limit 2:gcra");
    g_string_truncate(v.seen, 0);
    v.count = 0;
    v.stop_after = 2;
    assert_int_equal(pz_settings_foreach_provider(s, visit_one, &v), 42);
    assert_string_equal(v.seen->str, "4:tls 4:unix");
    g_string_free(v.seen, TRUE);
    pz_settings_free(s);
    pz_conf_doc_free(doc);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(pz_settings_control_name(PZ_SETTINGS_REQUIRED), "required");
    assert_string_equal(pz_settings_control_name(PZ_SETTINGS_OPTIONAL), "optional");
    assert_string_equal(pz_settings_control_name((pz_settings_control)0), "?");
    assert_string_equal(pz_settings_control_name((pz_settings_control)9), "?");
    assert_string_equal(pz_settings_log_level_name(PZ_LOG_WARNING), "warning");
    assert_string_equal(pz_settings_log_level_name((pz_log_level)7), "?");
    assert_string_equal(pz_settings_delegated_sections[0], "identity");
    assert_string_equal(pz_settings_delegated_sections[1], "authorization");
    assert_string_equal(pz_settings_delegated_sections[2], "peers");
    assert_null(pz_settings_delegated_sections[6]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_relative_paths),
        cmocka_unit_test(test_auth_default),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_foreach),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
