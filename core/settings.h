/* core/settings.h — the core sections of the configuration (node, log,
 * plugins, transports, auth, dos) read through the typed getters into a
 * pz_settings struct, with every problem collected.
 *
 * Sections are read by a table of section readers in core/settings.c (one
 * clearly marked place to add a section). Sections owned by another module
 * (identity, authorization, peers, rpc, e2e, metrics) are handed to it
 * whole: settings only checks their kind and leaves their keys to that
 * module's own reader. A top-level key no reader claims is an "unknown
 * key".
 *
 * Provider `config` maps are not checked here: the provider checks its own
 * when it is instantiated (pz_provider_new), so they are exposed as
 * `const pz_conf *`.
 *
 * Thread safety: none needed; load once, then read-only.
 */
#ifndef PZ_CORE_SETTINGS_H
#define PZ_CORE_SETTINGS_H

#include <stddef.h>
#include <stdint.h>

#include <prozsec/plugin.h>

#include "conf.h"

/* How an auth provider's verdict counts in the chain (PAM-style; the
 * values are those of pz_auth_control in core/authchain.h). */
typedef enum pz_settings_control {
    PZ_SETTINGS_REQUIRED = 1,
    PZ_SETTINGS_REQUISITE = 2,
    PZ_SETTINGS_SUFFICIENT = 3,
    PZ_SETTINGS_OPTIONAL = 4,
} pz_settings_control;

/* One `METHOD: COST` of a rate limiter's method_costs. */
typedef struct pz_settings_cost {
    const char *method; /* borrowed from the document */
    uint32_t cost;      /* >= 1 */
} pz_settings_cost;

/* One provider entry of transports, auth.chain, dos.connection_limiters or
 * dos.rate_limiters. Strings and nodes are borrowed from the document. */
typedef struct pz_settings_provider {
    pz_plugin_kind kind;   /* from the section it is in */
    const char *provider;  /* plugin name: [a-z0-9][a-z0-9-]{0,31} */
    const char *name;      /* instance name (`name:`, else = provider); unique in the file */
    const pz_conf *config; /* the provider's own map, or NULL; not checked here */
    const pz_conf *node;   /* the entry itself, for FILE:LINE:COL in messages */
    /* transports */
    const char *listen; /* address to listen on, or NULL (outbound only) */
    /* auth.chain */
    pz_settings_control control;
    /* connection and rate limiters */
    int shadow; /* 1: decide and log, never refuse */
    /* rate limiters */
    pz_settings_cost *costs; /* method_costs, in file order (owned) */
    size_t n_costs;
} pz_settings_provider;

typedef enum pz_log_format {
    PZ_LOG_FORMAT_TEXT = 0,
    PZ_LOG_FORMAT_JSON = 1,
} pz_log_format;

typedef struct pz_settings {
    /* node */
    const char *node_id;   /* [A-Za-z0-9._-]{1,64}; required */
    const char *node_type; /* [a-z0-9_-]{1,32}; required */
    char *data_dir;        /* absolute (relative ones are taken from the file's directory) */
    char *key_dir;         /* likewise */
    /* log */
    pz_log_level log_level;
    pz_log_format log_format;
    /* plugins */
    char **plugin_path; /* n_plugin_path absolute directories, in order */
    size_t n_plugin_path;
    /* transports */
    pz_settings_provider *transports;
    size_t n_transports;
    /* auth */
    const pz_conf *auth; /* the whole section (for pz_authchain_new_from_conf), or NULL */
    /* auth.default_provider with auth.default_config as an entry (control
     * required), set only when auth.chain is empty: it runs only then. */
    pz_settings_provider *auth_default;
    pz_settings_provider *auth_chain;
    size_t n_auth_chain;
    /* dos */
    pz_settings_provider *conn_limiters;
    size_t n_conn_limiters;
    pz_settings_provider *rate_limiters;
    size_t n_rate_limiters;
} pz_settings;

/* Read the core sections of the document whose root map is ROOT. Every
 * problem is reported to ERR, one message each ("FILE:LINE:COL: path:
 * ..."): pass a collecting pz_err (pz_err_init_collect) to get them all.
 * Finally reports unknown keys (pz_conf_check_unused) outside provider
 * `config` maps and delegated sections. On success *OUT is a new
 * pz_settings that borrows strings and nodes from the document: free it
 * with pz_settings_free before the document. Returns 0, PZ_ECONFIG (*OUT
 * NULL) or PZ_ENOMEM. */
int pz_settings_load(const pz_conf *root, pz_settings **out, pz_err *err);

/* Same, but on PZ_ECONFIG *OUT still holds what could be read, so a tool
 * can go on checking (`prozsec config check` still instantiates every
 * provider entry whose provider name was readable). Entries with a
 * problem in `provider` have provider == NULL. */
int pz_settings_load_partial(const pz_conf *root, pz_settings **out, pz_err *err);

/* Free SETTINGS; NULL is a no-op. */
void pz_settings_free(pz_settings *settings);

/* Call FN for every provider entry of SETTINGS, in file order by section
 * (transports, auth chain or auth default, connection limiters, rate
 * limiters); stop and
 * return FN's value when it is non-zero. Returns 0 otherwise. */
int pz_settings_foreach_provider(const pz_settings *settings,
                                 int (*fn)(const pz_settings_provider *entry, void *ud), void *ud);

/* Top-level sections owned by other modules, NULL-terminated ("identity",
 * "authorization", "peers", "rpc", "e2e", "metrics"): settings checks their
 * kind (map, or list for peers) and leaves their keys to their readers. */
extern const char *const pz_settings_delegated_sections[];

/* Names for messages: "required", "info", "json"... */
const char *pz_settings_control_name(pz_settings_control control);
const char *pz_settings_log_level_name(pz_log_level level);

#endif /* PZ_CORE_SETTINGS_H */
