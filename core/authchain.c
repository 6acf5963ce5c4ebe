/* core/authchain.c — the PAM-style peer authentication chain. See
 * authchain.h for the semantics and docs/internals/auth.md for the
 * decision table. */
#include "config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "authchain.h"
#include "conf.h"
#include "coresvc.h"
#include "credframe.h"
#include "err.h"

#define LOG_SOURCE "auth"

typedef struct entry {
    char *name;
    const pz_auth_provider *table;
    void *state;
    pz_auth_control control;
    pz_provider *owned; /* from pz_authchain_add_take, else NULL */
} entry;

struct pz_authchain {
    GPtrArray *entries;    /* entry* */
    pz_identities *ids;    /* borrowed, may be NULL */
    pz_core *core;         /* for metrics, labelled "auth" */
    GMutex lock;           /* guards failures */
    GHashTable *failures;  /* "provider\treason" -> guint64* */
};

/* A provider's answer, errors folded in. */
typedef enum answer {
    ANS_ALLOW,
    ANS_DENY,
    ANS_ABSTAIN,
    ANS_ERROR,
} answer;

static const char *answer_name(answer a)
{
    switch (a) {
    case ANS_ALLOW: return "allow";
    case ANS_DENY: return "deny";
    case ANS_ABSTAIN: return "abstain";
    default: return "error";
    }
}

int pz_auth_control_parse(const char *text, pz_auth_control *out)
{
    static const struct {
        const char *name;
        pz_auth_control c;
    } names[] = {
        {"required", PZ_AUTH_REQUIRED},
        {"requisite", PZ_AUTH_REQUISITE},
        {"sufficient", PZ_AUTH_SUFFICIENT},
        {"optional", PZ_AUTH_OPTIONAL},
    };
    for (size_t i = 0; text && i < G_N_ELEMENTS(names); i++) {
        if (!strcmp(text, names[i].name)) {
            *out = names[i].c;
            return 0;
        }
    }
    return PZ_EINVAL;
}

const char *pz_auth_control_name(pz_auth_control control)
{
    switch (control) {
    case PZ_AUTH_REQUIRED: return "required";
    case PZ_AUTH_REQUISITE: return "requisite";
    case PZ_AUTH_SUFFICIENT: return "sufficient";
    case PZ_AUTH_OPTIONAL: return "optional";
    default: return "?";
    }
}

const char *pz_auth_outcome_name(pz_auth_outcome outcome)
{
    switch (outcome) {
    case PZ_AUTH_OUT_ALLOWED: return "allowed";
    case PZ_AUTH_OUT_DENIED: return "deny";
    case PZ_AUTH_OUT_ERROR: return "error";
    case PZ_AUTH_OUT_ABSTAINED: return "abstain";
    case PZ_AUTH_OUT_NO_DECISION: return "no-decision";
    case PZ_AUTH_OUT_CONFLICT: return "conflict";
    case PZ_AUTH_OUT_MISMATCH: return "mismatch";
    case PZ_AUTH_OUT_DIRECTORY: return "directory";
    default: return "?";
    }
}

/* ------------------------------------------------------------------------ */
/* Building. */

static void entry_free(gpointer p)
{
    entry *e = p;
    if (!e)
        return;
    pz_provider_free(e->owned);
    g_free(e->name);
    g_free(e);
}

int pz_authchain_new(pz_authchain **out, pz_err *err)
{
    (void)err;
    pz_authchain *chain = g_new0(pz_authchain, 1);
    chain->entries = g_ptr_array_new_with_free_func(entry_free);
    g_mutex_init(&chain->lock);
    chain->failures = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    chain->core = pz_core_new(LOG_SOURCE);
    *out = chain;
    return 0;
}

void pz_authchain_free(pz_authchain *chain)
{
    if (!chain)
        return;
    /* Instances go first: their core tables belong to the providers. */
    g_ptr_array_free(chain->entries, TRUE);
    g_hash_table_destroy(chain->failures);
    g_mutex_clear(&chain->lock);
    if (chain->core)
        pz_core_free(chain->core);
    g_free(chain);
}

static int check_table(const char *name, const pz_auth_provider *table, pz_err *err)
{
    if (!table)
        return pz_err_set(err, PZ_EINVAL, "auth provider %s: no function table", name);
    if (table->struct_size < offsetof(pz_auth_provider, reload))
        return pz_err_set(err, PZ_EINVAL, "auth provider %s: function table too short (%u bytes)", name,
                          (unsigned)table->struct_size);
    if (!table->authenticate_peer || !table->supported_methods || !table->generate_credentials)
        return pz_err_set(err, PZ_EINVAL, "auth provider %s: a mandatory function is NULL", name);
    return 0;
}

int pz_authchain_add(pz_authchain *chain, const char *name, const pz_auth_provider *table, void *state,
                     pz_auth_control control, pz_err *err)
{
    int rc = 0;
    if (!chain || !name || !*name)
        return pz_err_set(err, PZ_EINVAL, "pz_authchain_add: no chain or name");
    if (control < PZ_AUTH_REQUIRED || control > PZ_AUTH_OPTIONAL)
        return pz_err_set(err, PZ_EINVAL, "auth provider %s: invalid control flag %d", name, (int)control);
    rc = check_table(name, table, err);
    if (rc)
        return rc;
    for (guint i = 0; i < chain->entries->len; i++) {
        const entry *o = g_ptr_array_index(chain->entries, i);
        if (!strcmp(o->name, name))
            return pz_err_set(err, PZ_EEXIST, "auth provider %s: the chain already has an instance of that name "
                              "(give the second one its own `name:`)", name);
    }
    entry *e = g_new0(entry, 1);
    e->name = g_strndup(name, PZ_AUTHCHAIN_NAME_MAX);
    e->table = table;
    e->state = state;
    e->control = control;
    g_ptr_array_add(chain->entries, e);
    return 0;
}

int pz_authchain_add_take(pz_authchain *chain, pz_provider *provider, pz_auth_control control, pz_err *err)
{
    int rc = 0;
    if (!chain || !provider) {
        rc = pz_err_set(err, PZ_EINVAL, "pz_authchain_add_take: NULL argument");
        goto out;
    }
    if (pz_provider_kind(provider) != PZ_KIND_AUTH) {
        rc = pz_err_set(err, PZ_EINVAL, "provider %s is a %s provider, not an auth provider",
                        pz_provider_name(provider), pz_plugin_kind_name(pz_provider_kind(provider)));
        goto out;
    }
    rc = pz_authchain_add(chain, pz_provider_name(provider), pz_provider_table(provider),
                          pz_provider_state(provider), control, err);
    if (rc)
        goto out;
    entry *e = g_ptr_array_index(chain->entries, chain->entries->len - 1);
    e->owned = provider;
    provider = NULL;
out:
    pz_provider_free(provider);
    return rc;
}

void pz_authchain_set_identities(pz_authchain *chain, pz_identities *ids)
{
    if (chain)
        chain->ids = ids;
}

size_t pz_authchain_len(const pz_authchain *chain)
{
    return chain ? chain->entries->len : 0;
}

/* Provider names as the loader accepts them. */
static int valid_provider_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > PZ_PLUGIN_NAME_MAX || !(g_ascii_islower(s[0]) || g_ascii_isdigit(s[0])))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(g_ascii_islower(s[i]) || g_ascii_isdigit(s[i]) || s[i] == '-'))
            return 0;
    return 1;
}

/* Load provider NAME and create an instance INSTANCE configured by CONF;
 * WHERE is the configuration node to blame. */
static int load_one(pz_authchain *chain, pz_loader *loader, const pz_conf *where, const char *name,
                    const char *instance, const pz_conf *conf, pz_auth_control control, pz_err *err)
{
    int rc = 0;
    const pz_plugin *plugin = NULL;
    pz_provider *prov = NULL;

    rc = pz_loader_load(loader, name, PZ_KIND_AUTH, &plugin, err);
    if (rc) {
        pz_err_prefix(err, "%s: %s: auth provider %s cannot be loaded", pz_conf_where(where), pz_conf_path(where),
                      name);
        goto out;
    }
    rc = pz_provider_new(plugin, instance, conf, &prov, err);
    if (rc) {
        pz_err_prefix(err, "%s: %s: auth provider %s", pz_conf_where(where), pz_conf_path(where), name);
        goto out;
    }
    rc = pz_authchain_add_take(chain, prov, control, err);
    prov = NULL;
    if (rc) {
        pz_err_prefix(err, "%s: %s", pz_conf_where(where), pz_conf_path(where));
        goto out;
    }
out:
    return rc;
}

static int read_entry(pz_authchain *chain, pz_loader *loader, const pz_conf *item, pz_err *err)
{
    int rc = 0;
    const char *provider = NULL, *control_s = NULL, *instance = NULL;
    const pz_conf *conf = NULL;
    pz_auth_control control = 0;

    if (pz_conf_kind(item) != PZ_CONF_NODE_MAP) {
        rc = pz_conf_error(item, err, "expected a map {provider, control, config}");
        goto out;
    }
    rc = pz_conf_string(item, "provider", NULL, &provider, err);
    if (rc)
        goto out;
    rc = pz_conf_string(item, "control", NULL, &control_s, err);
    if (rc)
        goto out;
    rc = pz_conf_string(item, "name", NULL, &instance, err);
    if (rc)
        goto out;
    rc = pz_conf_map(item, "config", &conf, err);
    if (rc)
        goto out;
    /* The provider checks its own settings (pz_provider_new); here only
     * the entry's keys. */
    if (conf)
        pz_conf_delegate(conf);
    rc = pz_conf_check_unused(item, err);
    if (rc)
        goto out;
    if (!provider || !valid_provider_name(provider)) {
        rc = pz_conf_error(item, err, "provider: expected a provider name ([a-z0-9-], e.g. cert-auth), found %s%s%s",
                           provider ? "\"" : "", provider ? provider : "nothing", provider ? "\"" : "");
        goto out;
    }
    if (!control_s || pz_auth_control_parse(control_s, &control)) {
        rc = pz_conf_error(item, err, "control: expected required, requisite, sufficient or optional, found %s%s%s",
                           control_s ? "\"" : "", control_s ? control_s : "nothing", control_s ? "\"" : "");
        goto out;
    }
    if (instance && (strlen(instance) > PZ_AUTHCHAIN_NAME_MAX || !valid_provider_name(instance))) {
        rc = pz_conf_error(item, err, "name: expected an instance name ([a-z0-9-], up to %d bytes), found \"%.80s\"",
                           PZ_AUTHCHAIN_NAME_MAX, instance);
        goto out;
    }
    rc = load_one(chain, loader, item, provider, instance, conf, control, err);
out:
    return rc;
}

int pz_authchain_new_from_conf(pz_loader *loader, const pz_conf *auth, pz_authchain **out, pz_err *err)
{
    int rc = 0;
    pz_authchain *chain = NULL;
    const pz_conf *list = NULL, *defconf = NULL;
    const char *def = NULL;

    *out = NULL;
    if (!loader)
        return pz_err_set(err, PZ_EINVAL, "pz_authchain_new_from_conf: no loader");
    if (!auth)
        return pz_err_set(err, PZ_ECONFIG,
                          "auth: no authentication configured: set auth.default_provider or auth.chain");
    rc = pz_authchain_new(&chain, err);
    if (rc)
        goto out;
    rc = pz_conf_string(auth, "default_provider", NULL, &def, err);
    if (rc)
        goto out;
    rc = pz_conf_map(auth, "default_config", &defconf, err);
    if (rc)
        goto out;
    if (defconf)
        pz_conf_delegate(defconf);
    rc = pz_conf_list(auth, "chain", &list, err);
    if (rc)
        goto out;
    if (list && pz_conf_len(list) > 0) {
        for (size_t i = 0; i < pz_conf_len(list); i++) {
            rc = read_entry(chain, loader, pz_conf_at(list, i, NULL), err);
            if (rc)
                goto out;
        }
        if (def)
            pz_log(LOG_SOURCE, PZ_LOG_NOTICE, "%s: auth.default_provider %s is not used: auth.chain is configured",
                   pz_conf_where(auth), def);
    } else if (def) {
        if (!valid_provider_name(def)) {
            rc = pz_conf_error(auth, err, "default_provider: expected a provider name ([a-z0-9-]), found \"%.80s\"",
                               def);
            goto out;
        }
        rc = load_one(chain, loader, auth, def, NULL, defconf, PZ_AUTH_REQUIRED, err);
        if (rc)
            goto out;
    } else {
        rc = pz_conf_error(auth, err, "no authentication configured: set default_provider or chain");
        goto out;
    }
    *out = chain;
    chain = NULL;
out:
    pz_authchain_free(chain);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Deciding. */

/* The first failure worth reporting. */
typedef struct failure {
    int set;
    const entry *who; /* NULL: the chain itself */
    pz_auth_outcome outcome;
    int reason_code;
    char reason[192];
} failure;

static void fail_set(failure *f, const entry *who, pz_auth_outcome outcome, int code, const char *fmt, ...)
    PZ_PRINTF(5, 6);

static void fail_set(failure *f, const entry *who, pz_auth_outcome outcome, int code, const char *fmt, ...)
{
    if (f->set)
        return;
    va_list ap;
    f->set = 1;
    f->who = who;
    f->outcome = outcome;
    f->reason_code = code;
    va_start(ap, fmt);
    vsnprintf(f->reason, sizeof(f->reason), fmt, ap);
    va_end(ap);
}

/* Make a provider's result safe to read: terminated strings, bounded
 * counts. An allow without a valid node id is turned into an error. */
static answer sanitize(pz_auth_result *r, int rc, char *why, size_t whylen)
{
    r->node_id[sizeof(r->node_id) - 1] = '\0';
    r->node_type[sizeof(r->node_type) - 1] = '\0';
    r->reason[sizeof(r->reason) - 1] = '\0';
    for (size_t i = 0; i < PZ_AUTH_MAX_ROLES; i++)
        r->roles[i][sizeof(r->roles[i]) - 1] = '\0';
    if (r->n_roles > PZ_AUTH_MAX_ROLES)
        r->n_roles = PZ_AUTH_MAX_ROLES;
    if (rc != 0)
        return ANS_ERROR;
    switch (r->verdict) {
    case PZ_AUTH_ALLOW:
        if (!pz_identity_valid_node_id(r->node_id)) {
            snprintf(why, whylen, "allowed without a valid node id");
            return ANS_ERROR;
        }
        return ANS_ALLOW;
    case PZ_AUTH_DENY: return ANS_DENY;
    case PZ_AUTH_ABSTAIN: return ANS_ABSTAIN;
    default:
        snprintf(why, whylen, "returned an unknown verdict %d", (int)r->verdict);
        return ANS_ERROR;
    }
}

static int has_role(const pz_auth_result *r, const char *role)
{
    for (size_t i = 0; i < r->n_roles; i++)
        if (!strcmp(r->roles[i], role))
            return 1;
    return 0;
}

static void add_role(pz_auth_result *r, const char *role)
{
    if (has_role(r, role) || r->n_roles >= PZ_AUTH_MAX_ROLES)
        return;
    g_strlcpy(r->roles[r->n_roles++], role, sizeof(r->roles[0]));
}

/* Merge SRC (an allow) into DST (an allow for the same peer). Returns 0, or
 * -1 with WHY filled when they contradict each other. */
static int merge_identity(pz_auth_result *dst, const pz_auth_result *src, char *why, size_t whylen)
{
    if (strcmp(dst->node_id, src->node_id)) {
        snprintf(why, whylen, "allowed node %s, another provider allowed node %s", src->node_id, dst->node_id);
        return -1;
    }
    if (dst->node_type[0] && src->node_type[0] && strcmp(dst->node_type, src->node_type)) {
        snprintf(why, whylen, "node %s has type %s, another provider said %s", src->node_id, src->node_type,
                 dst->node_type);
        return -1;
    }
    if ((dst->has_sign_pub && src->has_sign_pub && memcmp(dst->sign_pub, src->sign_pub, 32)) ||
        (dst->has_e2e_pub && src->has_e2e_pub && memcmp(dst->e2e_pub, src->e2e_pub, 32))) {
        snprintf(why, whylen, "node %s has other public keys than another provider said", src->node_id);
        return -1;
    }
    if (!dst->node_type[0])
        g_strlcpy(dst->node_type, src->node_type, sizeof(dst->node_type));
    for (size_t i = 0; i < src->n_roles; i++)
        add_role(dst, src->roles[i]);
    if (!dst->has_sign_pub && src->has_sign_pub) {
        memcpy(dst->sign_pub, src->sign_pub, 32);
        dst->has_sign_pub = 1;
    }
    if (!dst->has_e2e_pub && src->has_e2e_pub) {
        memcpy(dst->e2e_pub, src->e2e_pub, 32);
        dst->has_e2e_pub = 1;
    }
    return 0;
}

/* Complete ID from the peer directory; -1 with WHY when they disagree. */
static int complete_from_directory(pz_identities *ids, pz_auth_result *id, char *why, size_t whylen)
{
    pz_identity_rec rec;
    if (!ids || pz_identities_lookup(ids, id->node_id, &rec) != 0)
        return 0;
    if (id->node_type[0] && rec.node_type[0] && strcmp(id->node_type, rec.node_type)) {
        snprintf(why, whylen, "node %s presented type %s, the peer directory says %s", id->node_id, id->node_type,
                 rec.node_type);
        return -1;
    }
    if ((id->has_sign_pub && rec.has_sign_pub && memcmp(id->sign_pub, rec.sign_pub, 32)) ||
        (id->has_e2e_pub && rec.has_e2e_pub && memcmp(id->e2e_pub, rec.e2e_pub, 32))) {
        snprintf(why, whylen, "node %s presented other public keys than the peer directory has", id->node_id);
        return -1;
    }
    if (!id->node_type[0])
        g_strlcpy(id->node_type, rec.node_type, sizeof(id->node_type));
    for (size_t i = 0; i < rec.n_roles; i++)
        add_role(id, rec.roles[i]);
    if (!id->has_sign_pub && rec.has_sign_pub) {
        memcpy(id->sign_pub, rec.sign_pub, 32);
        id->has_sign_pub = 1;
    }
    if (!id->has_e2e_pub && rec.has_e2e_pub) {
        memcpy(id->e2e_pub, rec.e2e_pub, 32);
        id->has_e2e_pub = 1;
    }
    return 0;
}

static void format_addr(const pz_addr *a, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN];
    switch (a->family) {
    case PZ_AF_INET:
        inet_ntop(AF_INET, a->bytes, ip, sizeof(ip));
        if (a->port)
            snprintf(buf, len, "%s:%u", ip, a->port);
        else
            snprintf(buf, len, "%s", ip);
        break;
    case PZ_AF_INET6:
        inet_ntop(AF_INET6, a->bytes, ip, sizeof(ip));
        if (a->port)
            snprintf(buf, len, "[%s]:%u", ip, a->port);
        else
            snprintf(buf, len, "%s", ip);
        break;
    case PZ_AF_UNIX: snprintf(buf, len, "unix"); break;
    default: snprintf(buf, len, "?"); break;
    }
}

static void count_failure(pz_authchain *chain, const char *provider, const char *reason)
{
    char *key = g_strdup_printf("%s\t%s", provider, reason);
    g_mutex_lock(&chain->lock);
    guint64 *n = g_hash_table_lookup(chain->failures, key);
    if (n) {
        (*n)++;
        g_free(key);
    } else {
        n = g_new(guint64, 1);
        *n = 1;
        g_hash_table_insert(chain->failures, key, n);
    }
    g_mutex_unlock(&chain->lock);
    if (chain->core && chain->core->metric_add) {
        char *label = g_strdup_printf("%s:%s", provider, reason);
        chain->core->metric_add(chain->core, "failures_total", label, 1);
        g_free(label);
    }
}

uint64_t pz_authchain_failure_count(const pz_authchain *chain, const char *provider, const char *reason)
{
    uint64_t total = 0;
    if (!chain)
        return 0;
    pz_authchain *c = (pz_authchain *)chain; /* the lock is not part of the value */
    g_mutex_lock(&c->lock);
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, c->failures);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        const char *key = k;
        const char *tab = strchr(key, '\t');
        size_t plen = (size_t)(tab - key);
        if (provider && (strlen(provider) != plen || strncmp(key, provider, plen)))
            continue;
        if (reason && strcmp(tab + 1, reason))
            continue;
        total += *(guint64 *)v;
    }
    g_mutex_unlock(&c->lock);
    return total;
}

/* Report a refusal: log line, counter, behaviour event. */
static void report_refusal(pz_authchain *chain, const pz_auth_credentials *cred, uint64_t now_ns,
                           const pz_authchain_result *res)
{
    char addr[INET6_ADDRSTRLEN + 16];
    char reason_key[32];
    format_addr(cred->addr, addr, sizeof(addr));
    if (res->outcome == PZ_AUTH_OUT_DENIED)
        snprintf(reason_key, sizeof(reason_key), "deny:%d", res->reason_code);
    else
        g_strlcpy(reason_key, pz_auth_outcome_name(res->outcome), sizeof(reason_key));
    pz_log(LOG_SOURCE, PZ_LOG_NOTICE, "peer %s (%s) refused by %s: %s (%s)", addr,
           cred->transport ? cred->transport : "?", res->provider, res->reason, reason_key);
    count_failure(chain, res->provider, reason_key);

    char detail[PZ_AUTHCHAIN_NAME_MAX + 96];
    snprintf(detail, sizeof(detail), "auth refused by %s (%s)", res->provider, reason_key);
    pz_behavior_event ev = {
        .struct_size = sizeof(ev),
        .behavior = PZ_BEHAVIOR_AUTH_FAILURE,
        /* Not the node id a provider saw: it is unproven, and blaming it
         * would let anyone lower another node's reputation. */
        .node_id = NULL,
        .addr = *cred->addr,
        .now_ns = now_ns,
        .detail = detail,
    };
    pz_emit_behavior(LOG_SOURCE, &ev);
}

static void report_allow(const pz_auth_credentials *cred, const pz_authchain_result *res)
{
    char addr[INET6_ADDRSTRLEN + 16];
    char roles[PZ_AUTH_MAX_ROLES * (PZ_AUTH_ROLE_MAX + 1) + 1] = "";
    format_addr(cred->addr, addr, sizeof(addr));
    for (size_t i = 0; i < res->id.n_roles; i++) {
        if (i)
            g_strlcat(roles, ",", sizeof(roles));
        g_strlcat(roles, res->id.roles[i], sizeof(roles));
    }
    pz_log(LOG_SOURCE, PZ_LOG_INFO, "peer %s (%s) allowed as %s (type %s, roles %s) by %s", addr,
           cred->transport ? cred->transport : "?", res->id.node_id, res->id.node_type[0] ? res->id.node_type : "-",
           roles[0] ? roles : "-", res->provider);
}

static void fill_refusal(pz_authchain_result *out, const failure *f)
{
    out->allowed = 0;
    out->outcome = f->outcome;
    g_strlcpy(out->provider, f->who ? f->who->name : "chain", sizeof(out->provider));
    out->reason_code = f->outcome == PZ_AUTH_OUT_DENIED ? f->reason_code : 0;
    g_strlcpy(out->reason, f->reason, sizeof(out->reason));
}

/* Record the refusal of entry E answering A (not an allow) with R. */
static void fail_from_answer(failure *f, const entry *e, answer a, const pz_auth_result *r, int rc,
                             const pz_err *perr, const char *why)
{
    switch (a) {
    case ANS_DENY:
        fail_set(f, e, PZ_AUTH_OUT_DENIED, r->reason_code, "%s", r->reason[0] ? r->reason : "denied");
        break;
    case ANS_ABSTAIN:
        fail_set(f, e, PZ_AUTH_OUT_ABSTAINED, 0, "no credentials it handles, and it is %s",
                 pz_auth_control_name(e->control));
        break;
    default:
        if (why && *why)
            fail_set(f, e, PZ_AUTH_OUT_ERROR, 0, "provider error: %s", why);
        else
            fail_set(f, e, PZ_AUTH_OUT_ERROR, 0, "provider error: %s",
                     perr && perr->msg ? perr->msg : pz_strerror(rc));
        break;
    }
}

/* 1 when entry E handles METHOD (one of its supported_methods). */
static int handles(const entry *e, const char *method)
{
    const char *const *m = e->table->supported_methods(e->state);
    for (size_t i = 0; m && m[i] && i < 64; i++)
        if (!strcmp(m[i], method))
            return 1;
    return 0;
}

/* The token of FRAME meant for entry E: the first whose method E handles. */
static const pz_credframe_entry *token_for(const entry *e, const pz_credframe *frame)
{
    for (size_t i = 0; frame && i < frame->n; i++)
        if (handles(e, frame->e[i].method))
            return &frame->e[i];
    return NULL;
}

int pz_authchain_authenticate(pz_authchain *chain, const pz_auth_credentials *cred, uint64_t now_ns,
                              pz_authchain_result *out)
{
    return pz_authchain_authenticate_frame(chain, cred, NULL, now_ns, out);
}

int pz_authchain_authenticate_frame(pz_authchain *chain, const pz_auth_credentials *cred, const pz_credframe *frame,
                                    uint64_t now_ns, pz_authchain_result *out)
{
    failure fail = {0};     /* first failure of a required/requisite provider */
    failure ignored = {0};  /* first deny/error of a sufficient provider */
    failure opt_fail = {0}; /* first deny/error of an optional provider */
    pz_auth_result id, opt_id;
    int have_id = 0, have_opt = 0;
    const entry *id_by = NULL, *opt_by = NULL;

    if (!chain || !cred || !cred->addr || !out)
        return PZ_EINVAL;
    memset(out, 0, sizeof(*out));
    memset(&id, 0, sizeof(id));
    memset(&opt_id, 0, sizeof(opt_id));

    for (guint i = 0; i < chain->entries->len; i++) {
        const entry *e = g_ptr_array_index(chain->entries, i);
        pz_auth_result r;
        pz_err perr;
        char why[400] = "";
        int stop = 0;

        memset(&r, 0, sizeof(r));
        r.struct_size = sizeof(r);
        pz_err_init(&perr);
        /* Each provider sees the token meant for its method, if the peer
         * sent one; a token the transport itself supplied stays. */
        pz_auth_credentials pc = *cred;
        const pz_credframe_entry *tok = token_for(e, frame);
        if (tok) {
            pc.token = tok->data;
            pc.token_len = tok->len;
        }
        int rc = e->table->authenticate_peer(e->state, &pc, &r, &perr);
        if (rc > 0)
            rc = PZ_EINTERNAL;
        answer a = sanitize(&r, rc, why, sizeof(why));
        if (chain->core && chain->core->metric_add) {
            char label[PZ_AUTHCHAIN_NAME_MAX + 16];
            snprintf(label, sizeof(label), "%s:%s", e->name, answer_name(a));
            chain->core->metric_add(chain->core, "provider_answers_total", label, 1);
        }

        switch (e->control) {
        case PZ_AUTH_REQUIRED:
        case PZ_AUTH_REQUISITE:
            if (a == ANS_ALLOW) {
                if (!have_id) {
                    id = r;
                    have_id = 1;
                    id_by = e;
                } else if (merge_identity(&id, &r, why, sizeof(why))) {
                    fail_set(&fail, e, PZ_AUTH_OUT_CONFLICT, 0, "%s", why);
                    stop = e->control == PZ_AUTH_REQUISITE;
                }
            } else {
                fail_from_answer(&fail, e, a, &r, rc, &perr, why);
                stop = e->control == PZ_AUTH_REQUISITE;
            }
            break;
        case PZ_AUTH_SUFFICIENT:
            if (a == ANS_ALLOW) {
                /* PAM's "done": the chain ends here either way; an earlier
                 * failure still stands. */
                stop = 1;
                if (fail.set)
                    break;
                if (!have_id) {
                    id = r;
                    have_id = 1;
                    id_by = e;
                } else if (merge_identity(&id, &r, why, sizeof(why))) {
                    fail_set(&fail, e, PZ_AUTH_OUT_CONFLICT, 0, "%s", why);
                }
            } else if (a != ANS_ABSTAIN) {
                fail_from_answer(&ignored, e, a, &r, rc, &perr, why);
            }
            break;
        case PZ_AUTH_OPTIONAL:
            if (a == ANS_ALLOW) {
                if (!have_opt) {
                    opt_id = r;
                    have_opt = 1;
                    opt_by = e;
                } else if (merge_identity(&opt_id, &r, why, sizeof(why))) {
                    fail_set(&opt_fail, e, PZ_AUTH_OUT_CONFLICT, 0, "%s", why);
                }
            } else if (a != ANS_ABSTAIN) {
                fail_from_answer(&opt_fail, e, a, &r, rc, &perr, why);
            }
            break;
        }
        pz_err_clear(&perr);
        explicit_bzero(&r, sizeof(r));
        if (stop)
            break;
    }

    /* Who decided. */
    const failure *refusal = NULL;
    failure none = {0};
    if (fail.set) {
        refusal = &fail;
    } else if (have_id) {
        /* A required, requisite or sufficient allow. */
    } else if (opt_fail.set) {
        refusal = &opt_fail;
    } else if (have_opt) {
        id = opt_id;
        have_id = 1;
        id_by = opt_by;
    } else if (ignored.set) {
        refusal = &ignored;
    } else {
        fail_set(&none, NULL, PZ_AUTH_OUT_NO_DECISION, 0, "%s",
                 chain->entries->len ? "no provider decided (every provider abstained)"
                                     : "no authentication provider is configured");
        refusal = &none;
    }

    failure post = {0};
    if (!refusal) {
        char why[400] = "";
        if (cred->expected_node_id && strcmp(cred->expected_node_id, id.node_id)) {
            fail_set(&post, id_by, PZ_AUTH_OUT_MISMATCH, 0, "dialled node %.64s, authenticated node %s",
                     cred->expected_node_id, id.node_id);
            refusal = &post;
        } else if (complete_from_directory(chain->ids, &id, why, sizeof(why))) {
            fail_set(&post, id_by, PZ_AUTH_OUT_DIRECTORY, 0, "%s", why);
            refusal = &post;
        }
    }

    if (!refusal && chain->ids && (id.has_sign_pub || id.has_e2e_pub)) {
        /* Remember the keys this peer proved (its certificate's, for
         * cert-auth), so other modules can find them by node id. */
        pz_identity_rec rec;
        memset(&rec, 0, sizeof(rec));
        g_strlcpy(rec.node_id, id.node_id, sizeof(rec.node_id));
        g_strlcpy(rec.node_type, id.node_type, sizeof(rec.node_type));
        for (size_t i = 0; i < id.n_roles; i++)
            (void)pz_identity_rec_add_role(&rec, id.roles[i]);
        memcpy(rec.sign_pub, id.sign_pub, 32);
        rec.has_sign_pub = id.has_sign_pub;
        memcpy(rec.e2e_pub, id.e2e_pub, 32);
        rec.has_e2e_pub = id.has_e2e_pub;
        g_strlcpy(rec.source, id_by->name, sizeof(rec.source));
        (void)pz_identities_put(chain->ids, &rec, NULL);
    }

    if (refusal) {
        fill_refusal(out, refusal);
        report_refusal(chain, cred, now_ns, out);
    } else {
        out->allowed = 1;
        out->outcome = PZ_AUTH_OUT_ALLOWED;
        g_strlcpy(out->provider, id_by->name, sizeof(out->provider));
        out->id = id;
        out->id.struct_size = sizeof(out->id);
        out->id.verdict = PZ_AUTH_ALLOW;
        out->id.reason_code = 0;
        out->id.reason[0] = '\0';
        report_allow(cred, out);
    }
    explicit_bzero(&id, sizeof(id));
    explicit_bzero(&opt_id, sizeof(opt_id));
    return 0;
}

void pz_auth_result_identity(const pz_auth_result *r, const char *source,
                             const char *roles_buf[PZ_AUTH_MAX_ROLES], pz_identity *out)
{
    memset(out, 0, sizeof(*out));
    out->struct_size = sizeof(*out);
    out->node_id = r->node_id;
    out->node_type = r->node_type;
    size_t n = r->n_roles > PZ_AUTH_MAX_ROLES ? PZ_AUTH_MAX_ROLES : r->n_roles;
    for (size_t i = 0; i < n; i++)
        roles_buf[i] = r->roles[i];
    out->roles = roles_buf;
    out->n_roles = n;
    out->sign_pub = r->has_sign_pub ? r->sign_pub : NULL;
    out->e2e_pub = r->has_e2e_pub ? r->e2e_pub : NULL;
    out->source = source ? source : "";
}

/* ------------------------------------------------------------------------ */
/* What this node presents: the credentials frame. */

/* Methods whose credentials the transport handshake itself carries and
 * proves (the certificate and possession of its key): sending them again
 * in the frame would prove nothing. */
static int handshake_method(const char *m)
{
    return !strcmp(m, "certificate") || !strcmp(m, "key-pin");
}

int pz_authchain_credentials_frame(pz_authchain *chain, const uint8_t *cb, size_t cb_len, uint8_t *buf, size_t cap,
                                   size_t *len, size_t *n_tokens)
{
    int rc = 0;
    pz_credframe f;
    size_t payload = PZ_CREDFRAME_MIN;
    uint8_t store[PZ_CREDFRAME_MAX_ENTRIES][PZ_CREDFRAME_TOKEN_MAX];

    memset(&f, 0, sizeof(f));
    if (n_tokens)
        *n_tokens = 0;
    if (!chain || !len)
        return PZ_EINVAL;
    for (guint i = 0; i < chain->entries->len && f.n < PZ_CREDFRAME_MAX_ENTRIES; i++) {
        const entry *e = g_ptr_array_index(chain->entries, i);
        const char *const *m = e->table->supported_methods(e->state);
        const char *method = NULL;
        for (size_t k = 0; m && m[k] && k < 64 && !method; k++)
            if (!handshake_method(m[k]) && pz_credframe_method_valid(m[k]) && !pz_credframe_find(&f, m[k]))
                method = m[k];
        if (!method)
            continue;
        size_t l = PZ_CREDFRAME_TOKEN_MAX;
        pz_err perr;
        pz_err_init(&perr);
        int grc = e->table->generate_credentials(e->state, cb, cb_len, store[f.n], &l, &perr);
        if (grc == 0 && l > 0 && l <= PZ_CREDFRAME_TOKEN_MAX &&
            payload + 1 + strlen(method) + 2 + l <= PZ_CREDFRAME_MAX) {
            pz_credframe_entry *t = &f.e[f.n++];
            g_strlcpy(t->method, method, sizeof(t->method));
            t->data = store[f.n - 1];
            t->len = l;
            payload += 1 + strlen(method) + 2 + l;
        } else if (grc == 0 || grc == PZ_ERANGE) {
            pz_log(LOG_SOURCE, PZ_LOG_WARNING,
                   "%s: its %s credentials do not fit in the credentials frame (%d bytes at most); not sent",
                   e->name, method, PZ_CREDFRAME_TOKEN_MAX);
        } else if (grc != PZ_ENOTSUP) {
            /* e.g. psk-token on a transport without channel binding. */
            pz_log(LOG_SOURCE, PZ_LOG_DEBUG, "%s presents no %s token on this connection: %s", e->name, method,
                   perr.msg ? perr.msg : pz_strerror(grc));
        }
        pz_err_clear(&perr);
    }
    rc = pz_credframe_encode(&f, buf, cap, len);
    if (rc == 0 && n_tokens)
        *n_tokens = f.n;
    explicit_bzero(store, sizeof(store));
    return rc;
}
