/* core/settings.c — the core sections of the configuration, read into a
 * pz_settings (core/settings.h). One reader per section, in the table
 * `sections` below; every problem is reported and reading goes on, so an
 * operator sees all of them at once. See docs/configuration.md for the
 * schema and docs/internals/conf.md for how reading works.
 */
#include "config.h"

#include <string.h>

#include <glib.h>

#include "err.h"
#include "settings.h"

#ifndef PZ_LOCALSTATEDIR
#define PZ_LOCALSTATEDIR "/var"
#endif
#ifndef PZ_SYSCONFDIR
#define PZ_SYSCONFDIR "/etc/prozsec"
#endif

/* Longest instance name (`name:`), bytes. */
#define INSTANCE_NAME_MAX 64
/* Highest cost a method may have. */
#define METHOD_COST_MAX 1000000

typedef struct reader {
    const pz_conf *root;
    pz_err *err;
    int failed;
    int nomem;
    pz_settings *s;
    GHashTable *instances; /* instance name -> entry node (borrowed) */
} reader;

/* ------------------------------------------------------------------------ */
/* Small checks */

static int fail(reader *r, int rc)
{
    if (rc == PZ_ENOMEM)
        r->nomem = 1;
    if (rc < 0)
        r->failed = 1;
    return rc;
}

static int charset_ok(const char *s, size_t min, size_t max, const char *extra, int upper)
{
    size_t n = strlen(s);
    if (n < min || n > max)
        return 0;
    for (const char *p = s; *p; p++) {
        if (g_ascii_islower(*p) || g_ascii_isdigit(*p) || (upper && g_ascii_isupper(*p)) || strchr(extra, *p))
            continue;
        return 0;
    }
    return 1;
}

static int valid_node_id(const char *s)
{
    return charset_ok(s, 1, PZ_NODE_ID_MAX, "._-", 1);
}

static int valid_node_type(const char *s)
{
    return charset_ok(s, 1, PZ_NODE_TYPE_MAX, "_-", 0);
}

static int valid_provider_name(const char *s)
{
    return charset_ok(s, 1, PZ_PLUGIN_NAME_MAX, "-", 0) && s[0] != '-';
}

static int valid_instance_name(const char *s)
{
    return charset_ok(s, 1, INSTANCE_NAME_MAX, "-", 0) && s[0] != '-';
}

/* RPC method names, as include/prozsec/rpc.h has them. */
static int valid_method(const char *s)
{
    return charset_ok(s, 1, 64, "_.-", 0) && g_ascii_islower(s[0]);
}

/* A required key that is missing from MAP. */
static void missing(reader *r, const pz_conf *map, const char *key, const char *what)
{
    if (*pz_conf_path(map))
        pz_err_set(r->err, PZ_ECONFIG, "%s: %s: missing key \"%s\" (%s)", pz_conf_where(map), pz_conf_path(map),
                   key, what);
    else
        pz_err_set(r->err, PZ_ECONFIG, "%s: missing key \"%s\" (%s)", pz_conf_where(map), key, what);
    r->failed = 1;
}

/* Read KEY of MAP as a string that CHECK (may be NULL) accepts. Returns
 * NULL when absent or null (reported as missing when REQUIRED) or bad
 * (reported as "expected WHAT"). */
static const char *get_checked(reader *r, const pz_conf *map, const char *key, int required, const char *what,
                               int (*check)(const char *))
{
    const pz_conf *node = pz_conf_child(map, key);
    if (!node) {
        if (required)
            missing(r, map, key, what);
        return NULL;
    }
    const char *text = pz_conf_scalar(node);
    if (!text || (check && !check(text))) {
        fail(r, pz_conf_expected(node, r->err, what));
        return NULL;
    }
    return text;
}

static int nonempty(const char *s)
{
    return *s != '\0';
}

/* KEY of MAP as one of NAMES (NULL-terminated, index 0 may be a
 * placeholder ""): its index, or DEF when absent (reported as missing when
 * REQUIRED) or bad (reported). */
static int get_enum(reader *r, const pz_conf *map, const char *key, const char *const *names, const char *what,
                    int required, int def)
{
    const char *text = get_checked(r, map, key, required, what, NULL);
    if (!text)
        return def;
    for (int i = 0; names[i]; i++)
        if (*names[i] && !strcmp(text, names[i]))
            return i;
    fail(r, pz_conf_expected(pz_conf_child(map, key), r->err, what));
    return def;
}

/* PATH made absolute against the directory of the configuration file. */
static char *resolve_path(const pz_conf *root, const char *path)
{
    if (g_path_is_absolute(path))
        return g_canonicalize_filename(path, NULL);
    g_autofree char *dir = g_path_get_dirname(pz_conf_file(root));
    g_autofree char *absdir = g_canonicalize_filename(dir, NULL);
    return g_canonicalize_filename(path, absdir);
}

/* The map of top-level section NAME, or NULL when absent or null
 * (reported as missing when REQUIRED, saying WHAT) or not a map
 * (reported). */
static const pz_conf *section(reader *r, const char *name, int required, const char *what)
{
    const pz_conf *sec = pz_conf_child(r->root, name);
    if (!sec) {
        if (required)
            missing(r, r->root, name, what);
        return NULL;
    }
    if (pz_conf_kind(sec) != PZ_CONF_NODE_MAP) {
        fail(r, pz_conf_expected(sec, r->err, "a map"));
        return NULL;
    }
    return sec;
}

/* ------------------------------------------------------------------------ */
/* node, log, plugins */

static void read_node(reader *r)
{
    pz_settings *s = r->s;
    const pz_conf *sec = section(r, "node", 1, "the node section, with at least id and type");
    if (!sec)
        return;
    s->node_id = get_checked(r, sec, "id", 1, "a node id: 1 to 64 of A-Z a-z 0-9 . _ -", valid_node_id);
    s->node_type = get_checked(r, sec, "type", 1, "a node type: 1 to 32 of a-z 0-9 _ -", valid_node_type);
    const char *data = get_checked(r, sec, "data_dir", 0, "a directory path", nonempty);
    const char *keys = get_checked(r, sec, "key_dir", 0, "a directory path", nonempty);
    if (data) {
        g_free(s->data_dir);
        s->data_dir = resolve_path(r->root, data);
    }
    if (keys) {
        g_free(s->key_dir);
        s->key_dir = resolve_path(r->root, keys);
    }
}

static const char *const log_levels[] = {"debug", "info", "notice", "warning", "error", NULL};
static const char *const log_formats[] = {"text", "json", NULL};

static void read_log(reader *r)
{
    const pz_conf *sec = section(r, "log", 0, NULL);
    r->s->log_level = (pz_log_level)get_enum(r, sec, "level", log_levels, "debug, info, notice, warning or error",
                                             0, PZ_LOG_INFO);
    r->s->log_format = (pz_log_format)get_enum(r, sec, "format", log_formats, "text or json", 0, PZ_LOG_FORMAT_TEXT);
}

static void read_plugins(reader *r)
{
    const pz_conf *sec = section(r, "plugins", 0, NULL), *list = NULL;
    if (!sec || fail(r, pz_conf_list(sec, "path", &list, r->err)) < 0 || !list)
        return;
    size_t n = pz_conf_len(list);
    r->s->plugin_path = g_new0(char *, n + 1);
    for (size_t i = 0; i < n; i++) {
        const pz_conf *item = pz_conf_at(list, i, NULL);
        const char *dir = pz_conf_is_null(item) ? NULL : pz_conf_scalar(item);
        if (!dir || !*dir) {
            fail(r, pz_conf_expected(item, r->err, "a directory path"));
            continue;
        }
        r->s->plugin_path[r->s->n_plugin_path++] = resolve_path(r->root, dir);
    }
}

/* ------------------------------------------------------------------------ */
/* Provider lists */

typedef struct entry_spec {
    pz_plugin_kind kind;
    int listen;       /* transports: `listen` */
    int control;      /* auth chain: `control` (required) */
    int shadow;       /* limiters: `shadow` */
    int method_costs; /* rate limiters: `method_costs` */
    const char *shape; /* for "expected a map ..." */
} entry_spec;

static const char *const controls[] = {"", "required", "requisite", "sufficient", "optional", NULL};

static void claim_instance(reader *r, const pz_settings_provider *e)
{
    const pz_conf *prev = g_hash_table_lookup(r->instances, e->name);
    if (prev) {
        pz_err_set(r->err, PZ_ECONFIG,
                   "%s: %s: instance name \"%s\" is already used by %s (line %u, column %u); give one of "
                   "them a distinct `name:`",
                   pz_conf_where(e->node), pz_conf_path(e->node), e->name, pz_conf_path(prev), pz_conf_line(prev),
                   pz_conf_col(prev));
        r->failed = 1;
        return;
    }
    g_hash_table_insert(r->instances, (gpointer)e->name, (gpointer)e->node);
}

static void read_costs(reader *r, const pz_conf *item, pz_settings_provider *e)
{
    const pz_conf *map = NULL;
    if (fail(r, pz_conf_map(item, "method_costs", &map, r->err)) < 0 || !map)
        return;
    size_t n = pz_conf_len(map);
    e->costs = g_new0(pz_settings_cost, n ? n : 1);
    for (size_t i = 0; i < n; i++) {
        const char *method = NULL;
        const pz_conf *v = pz_conf_at(map, i, &method);
        int64_t cost = 0;
        if (!valid_method(method)) {
            pz_err_set(r->err, PZ_ECONFIG,
                       "%s: %s: expected an RPC method name (a-z, then up to 63 of a-z 0-9 _ . -), found \"%.80s\"",
                       pz_conf_where(v), pz_conf_path(v), method);
            r->failed = 1;
            continue;
        }
        /* Method names have dots: read the value node, not a dotted key. */
        if (fail(r, pz_conf_as_int(v, 1, METHOD_COST_MAX, &cost, r->err)) < 0)
            continue;
        e->costs[e->n_costs++] = (pz_settings_cost){.method = method, .cost = (uint32_t)cost};
    }
}

/* Read one provider entry ITEM of a list into E. */
static void read_entry(reader *r, const pz_conf *item, const entry_spec *spec, pz_settings_provider *e)
{
    e->kind = spec->kind;
    e->node = item;
    if (pz_conf_kind(item) != PZ_CONF_NODE_MAP) {
        fail(r, pz_conf_expected(item, r->err, spec->shape));
        return;
    }
    e->provider = get_checked(r, item, "provider", 1, "a provider name: a-z 0-9 first, then up to 31 of a-z 0-9 -",
                              valid_provider_name);
    e->name = get_checked(r, item, "name", 0, "an instance name: a-z 0-9 first, then up to 63 of a-z 0-9 -",
                          valid_instance_name);
    if (spec->listen)
        e->listen = get_checked(r, item, "listen", 0, "an address to listen on", nonempty);
    if (spec->control)
        e->control = (pz_settings_control)get_enum(r, item, "control", controls,
                                                   "required, requisite, sufficient or optional", 1, 0);
    if (spec->shadow)
        fail(r, pz_conf_bool(item, "shadow", 0, &e->shadow, r->err));
    if (spec->method_costs)
        read_costs(r, item, e);
    /* The provider checks its own map when it is instantiated. */
    if (fail(r, pz_conf_map(item, "config", &e->config, r->err)) == 0 && e->config)
        pz_conf_delegate(e->config);
    if (!e->name)
        e->name = e->provider;
    if (e->name)
        claim_instance(r, e);
}

/* Read the list KEY of MAP into *OUT / *N. */
static void read_list(reader *r, const pz_conf *map, const char *key, const entry_spec *spec,
                      pz_settings_provider **out, size_t *n)
{
    const pz_conf *list = NULL;
    if (!map || fail(r, pz_conf_list(map, key, &list, r->err)) < 0 || !list)
        return;
    size_t len = pz_conf_len(list);
    *out = g_new0(pz_settings_provider, len ? len : 1);
    for (size_t i = 0; i < len; i++)
        read_entry(r, pz_conf_at(list, i, NULL), spec, &(*out)[(*n)++]);
}

static void read_transports(reader *r)
{
    static const entry_spec spec = {
        .kind = PZ_KIND_TRANSPORT,
        .listen = 1,
        .shape = "a map with provider and optionally name, listen, config",
    };
    /* `transports` is a list at the top level, not a section map. */
    read_list(r, r->root, "transports", &spec, &r->s->transports, &r->s->n_transports);
}

static void read_auth(reader *r)
{
    static const entry_spec spec = {
        .kind = PZ_KIND_AUTH,
        .control = 1,
        .shape = "a map with provider, control and optionally name, config",
    };
    pz_settings *s = r->s;
    const pz_conf *sec = section(r, "auth", 0, NULL);
    if (!sec)
        return;
    s->auth = sec;
    read_list(r, sec, "chain", &spec, &s->auth_chain, &s->n_auth_chain);
    const char *def = get_checked(r, sec, "default_provider", 0,
                                  "a provider name: a-z 0-9 first, then up to 31 of a-z 0-9 -", valid_provider_name);
    const pz_conf *defconf = NULL;
    if (fail(r, pz_conf_map(sec, "default_config", &defconf, r->err)) == 0 && defconf)
        pz_conf_delegate(defconf);
    /* The default provider runs only when there is no chain. */
    if (def && s->n_auth_chain == 0) {
        s->auth_default = g_new0(pz_settings_provider, 1);
        *s->auth_default = (pz_settings_provider){
            .kind = PZ_KIND_AUTH,
            .provider = def,
            .name = def,
            .config = defconf,
            .node = pz_conf_child(sec, "default_provider"),
            .control = PZ_SETTINGS_REQUIRED,
        };
        claim_instance(r, s->auth_default);
    }
}

static void read_dos(reader *r)
{
    static const entry_spec conn = {
        .kind = PZ_KIND_CONNLIMIT,
        .shadow = 1,
        .shape = "a map with provider and optionally name, shadow, config",
    };
    static const entry_spec rate = {
        .kind = PZ_KIND_RATELIMIT,
        .shadow = 1,
        .method_costs = 1,
        .shape = "a map with provider and optionally name, shadow, method_costs, config",
    };
    const pz_conf *sec = section(r, "dos", 0, NULL);
    read_list(r, sec, "connection_limiters", &conn, &r->s->conn_limiters, &r->s->n_conn_limiters);
    read_list(r, sec, "rate_limiters", &rate, &r->s->rate_limiters, &r->s->n_rate_limiters);
    /* dos.save_interval is read and checked by core/node_conf.c. */
    if (sec && pz_conf_child(sec, "save_interval"))
        pz_conf_delegate(pz_conf_child(sec, "save_interval"));
}

/* A section another module reads and checks (its keys are its business):
 * here it only has to be of KIND. */
static void read_delegated(reader *r, const char *name, pz_conf_node_kind kind)
{
    const pz_conf *sec = pz_conf_child(r->root, name);
    if (!sec)
        return;
    if (pz_conf_kind(sec) != kind) {
        fail(r, pz_conf_expected(sec, r->err, kind == PZ_CONF_NODE_LIST ? "a list" : "a map"));
        return;
    }
    pz_conf_delegate(sec);
}

/* ======================================================================== */
/* The sections. To add one: write a reader above and add a line here (and
 * document it in docs/configuration.md). A section another module reads
 * has no reader here, only the kind it must be: the module checks its keys
 * (and `prozsec config check` runs the module's reader). A top-level key no
 * entry claims is reported as an unknown key. Order is the order problems
 * are reported in.
 */
typedef struct section_def {
    const char *name;
    void (*read)(reader *r);
    pz_conf_node_kind delegated; /* read == NULL: the kind the section must be */
} section_def;

static const section_def sections[] = {
    {"node", read_node, 0},
    {"log", read_log, 0},
    {"plugins", read_plugins, 0},
    {"transports", read_transports, 0},
    {"auth", read_auth, 0},
    {"dos", read_dos, 0},
    /* Owned by other modules, read with their own readers: */
    {"identity", NULL, PZ_CONF_NODE_MAP},      /* core/identity.c: pz_identities_new_from_conf */
    {"authorization", NULL, PZ_CONF_NODE_MAP}, /* core/authz.c: pz_authz_new_from_conf */
    {"peers", NULL, PZ_CONF_NODE_LIST},        /* core/node_conf.c: the address book */
    {"rpc", NULL, PZ_CONF_NODE_MAP},           /* core/node_conf.c */
    {"e2e", NULL, PZ_CONF_NODE_MAP},           /* core/node_conf.c */
    {"metrics", NULL, PZ_CONF_NODE_MAP},       /* core/node_conf.c */
};
/* ======================================================================== */

const char *const pz_settings_delegated_sections[] = {"identity", "authorization", "peers", "rpc", "e2e", "metrics",
                                                      NULL};

static int load(const pz_conf *root, int partial, pz_settings **out, pz_err *err)
{
    int rc = 0;
    reader r = {.root = root, .err = err};

    *out = NULL;
    if (!root)
        return pz_err_set(err, PZ_EINVAL, "pz_settings_load: no configuration");
    r.s = g_new0(pz_settings, 1);
    r.s->data_dir = g_strdup(PZ_LOCALSTATEDIR "/lib/prozsec");
    r.s->key_dir = g_strdup(PZ_SYSCONFDIR "/keys");
    r.s->log_level = PZ_LOG_INFO;
    r.instances = g_hash_table_new(g_str_hash, g_str_equal);

    for (size_t i = 0; i < G_N_ELEMENTS(sections); i++) {
        if (sections[i].read)
            sections[i].read(&r);
        else
            read_delegated(&r, sections[i].name, sections[i].delegated);
    }
    if (pz_conf_check_unused(root, err) < 0)
        r.failed = 1;

    if (r.nomem)
        rc = PZ_ENOMEM;
    else if (r.failed)
        rc = PZ_ECONFIG;
    if (rc == 0 || (partial && rc == PZ_ECONFIG)) {
        *out = r.s;
        r.s = NULL;
    }
    pz_settings_free(r.s);
    g_hash_table_destroy(r.instances);
    return rc;
}

int pz_settings_load(const pz_conf *root, pz_settings **out, pz_err *err)
{
    return load(root, 0, out, err);
}

int pz_settings_load_partial(const pz_conf *root, pz_settings **out, pz_err *err)
{
    return load(root, 1, out, err);
}

static void free_entries(pz_settings_provider *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        g_free(v[i].costs);
    g_free(v);
}

void pz_settings_free(pz_settings *s)
{
    if (!s)
        return;
    g_free(s->data_dir);
    g_free(s->key_dir);
    for (size_t i = 0; i < s->n_plugin_path; i++)
        g_free(s->plugin_path[i]);
    g_free(s->plugin_path);
    free_entries(s->transports, s->n_transports);
    free_entries(s->auth_chain, s->n_auth_chain);
    free_entries(s->auth_default, s->auth_default ? 1 : 0);
    free_entries(s->conn_limiters, s->n_conn_limiters);
    free_entries(s->rate_limiters, s->n_rate_limiters);
    g_free(s);
}

static int each(const pz_settings_provider *v, size_t n, int (*fn)(const pz_settings_provider *, void *), void *ud)
{
    for (size_t i = 0; i < n; i++) {
        int rc = fn(&v[i], ud);
        if (rc)
            return rc;
    }
    return 0;
}

int pz_settings_foreach_provider(const pz_settings *s, int (*fn)(const pz_settings_provider *entry, void *ud),
                                 void *ud)
{
    int rc;
    if ((rc = each(s->transports, s->n_transports, fn, ud)) ||
        (rc = each(s->auth_chain, s->n_auth_chain, fn, ud)) ||
        (rc = each(s->auth_default, s->auth_default ? 1 : 0, fn, ud)) ||
        (rc = each(s->conn_limiters, s->n_conn_limiters, fn, ud)) ||
        (rc = each(s->rate_limiters, s->n_rate_limiters, fn, ud)))
        return rc;
    return 0;
}

const char *pz_settings_control_name(pz_settings_control control)
{
    return control >= PZ_SETTINGS_REQUIRED && control <= PZ_SETTINGS_OPTIONAL ? controls[control] : "?";
}

const char *pz_settings_log_level_name(pz_log_level level)
{
    return level <= PZ_LOG_ERROR ? log_levels[level] : "?";
}
