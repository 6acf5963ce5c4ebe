/* core/loader.h — finding, checking and loading provider plugins (libltdl),
 * and creating provider instances from configuration.
 *
 * Search path, in order: directories from configuration (plugins.path),
 * then $PROZSEC_PLUGIN_PATH (colon-separated), then the built-in
 * PZ_PLUGINDIR ($(libdir)/prozsec/plugins). A provider named NAME is the
 * file NAME.so in the first directory that has one.
 *
 * libltdl is used with local + resident advice and every lt_* call is made
 * under one process-wide mutex (libltdl's error string is global). Plugins
 * are never unloaded. Thread-safe.
 */
#ifndef PZ_CORE_LOADER_H
#define PZ_CORE_LOADER_H

#include <stddef.h>

#include <prozsec/plugin.h>

typedef struct pz_loader pz_loader;
typedef struct pz_plugin pz_plugin;     /* a loaded, checked plugin; lives until exit */
typedef struct pz_provider pz_provider; /* one configured instance of a provider */

/* Refusal reasons; each has its own message (see pz_loader_load_file). */
typedef enum pz_load_refusal {
    PZ_REFUSE_NONE = 0,
    PZ_REFUSE_NOT_REGULAR,    /* not a regular file */
    PZ_REFUSE_WRITABLE,       /* writable by group or others */
    PZ_REFUSE_OPEN,           /* lt_dlopen failed (libltdl's error + hint) */
    PZ_REFUSE_NO_ENTRY,       /* pz_plugin_entry_v1 missing */
    PZ_REFUSE_ABI_MAJOR,      /* descriptor ABI major differs */
    PZ_REFUSE_ABI_MINOR,      /* descriptor ABI minor newer than the core's */
    PZ_REFUSE_MALFORMED,      /* short struct_size, NULL mandatory field, bad name/kind */
    PZ_REFUSE_DUPLICATE,      /* provider name already taken by another file */
    PZ_REFUSE_INIT,           /* descriptor init() failed */
    PZ_REFUSE_CRASH,          /* loading it in a child process crashed or hung (PZ_LOADER_PROBE) */
} pz_load_refusal;

/* Create a loader whose search path starts with the N_DIRS directories
 * DIRS (may be NULL/0), with PZ_LOADER_PROBE set (what prozsecd and
 * `prozsec config check` use). Returns 0 or PZ_ENOMEM. */
int pz_loader_new(const char *const *dirs, size_t n_dirs, pz_loader **out, pz_err *err);

/* Flags for pz_loader_new_path. */
#define PZ_LOADER_NO_ENV 0x1u       /* leave $PROZSEC_PLUGIN_PATH out of the path */
#define PZ_LOADER_NO_PLUGINDIR 0x2u /* leave PZ_PLUGINDIR out of the path */
/* Before loading a file in this process, load it (dlopen, entry point,
 * init()) in a forked child: a plugin that crashes or hangs there is
 * refused (PZ_REFUSE_CRASH) with a message naming it, instead of killing
 * the daemon with a bare signal. Costs one fork per plugin file, once. */
#define PZ_LOADER_PROBE 0x4u

/* Like pz_loader_new, with FLAGS choosing which of the environment and
 * built-in parts follow DIRS (`prozsec plugins list --path` replaces the
 * configuration and environment parts). Relative directories are made
 * absolute against the current directory; empty ones and repeats are
 * dropped. Returns 0, PZ_EINVAL (OUT is NULL) or PZ_ENOMEM. */
int pz_loader_new_path(const char *const *dirs, size_t n_dirs, unsigned flags, pz_loader **out, pz_err *err);

/* Free the loader's bookkeeping. Loaded plugins stay resident. */
void pz_loader_free(pz_loader *loader);

/* The search path, NULL-terminated, owned by LOADER. */
const char *const *pz_loader_path(const pz_loader *loader);

/* Load (or return the already loaded) plugin file PATH, checking it. On
 * refusal returns PZ_EPERM/PZ_EABI/PZ_EIO/PZ_EEXIST..., sets *REFUSAL (may
 * be NULL) and ERR to one line "PATH: reason". */
int pz_loader_load_file(pz_loader *loader, const char *path, const pz_plugin **out, pz_load_refusal *refusal,
                        pz_err *err);

/* Load the provider NAME: NAME.so along the search path. KIND 0 accepts any
 * kind; otherwise the descriptor's kind must match. PZ_ENOENT when no
 * directory has it (ERR lists the path searched). */
int pz_loader_load(pz_loader *loader, const char *name, pz_plugin_kind kind, const pz_plugin **out,
                   pz_err *err);

const pz_plugin_descriptor *pz_plugin_desc(const pz_plugin *plugin);
const char *pz_plugin_path(const pz_plugin *plugin);
/* "auth", "ratelimit", "connlimit", "transport" or "?" */
const char *pz_plugin_kind_name(pz_plugin_kind kind);

/* Create an instance of PLUGIN's provider configured by CONF (the
 * provider's own map; may be NULL), with its own core-services table
 * labelled INSTANCE_NAME (defaults to the provider name). After create()
 * succeeds, keys of CONF nobody read are reported as "unknown key" errors
 * and the instance is destroyed (PZ_ECONFIG). */
int pz_provider_new(const pz_plugin *plugin, const char *instance_name, const pz_conf *conf, pz_provider **out,
                    pz_err *err);
void pz_provider_free(pz_provider *provider);

const pz_plugin *pz_provider_plugin(const pz_provider *provider);
const char *pz_provider_name(const pz_provider *provider);
pz_plugin_kind pz_provider_kind(const pz_provider *provider);
/* The kind-specific table (cast to const pz_ratelimit_provider * etc.). */
const void *pz_provider_table(const pz_provider *provider);
void *pz_provider_state(const pz_provider *provider);
const pz_core *pz_provider_core(const pz_provider *provider);

/* Internal (tests/fuzz/fuzz_descriptor.c): the descriptor checks
 * pz_loader_load_file applies after the entry call, on DESC (may be NULL)
 * with PATH (NULL = "(descriptor)") in messages. Reads DESC's name only up
 * to PZ_PLUGIN_NAME_MAX + 1 bytes (and at most 41 for the message), the
 * provider table only up to its kind's ABI 1.0 size, calls nothing.
 * Returns 0 with *WHY (may be NULL) = PZ_REFUSE_NONE, or PZ_EABI with *WHY
 * = PZ_REFUSE_ABI_MAJOR/_ABI_MINOR/_MALFORMED and ERR set. */
/* Internal (tests): the PZ_LOADER_PROBE deadline, 10000 ms by default
 * (MS <= 0 restores it). Not thread-safe: set it before loading. */
void pz__loader_set_probe_timeout(int ms);

int pz__loader_check_desc(const char *path, const pz_plugin_descriptor *desc, pz_load_refusal *why, pz_err *err);

#endif /* PZ_CORE_LOADER_H */
