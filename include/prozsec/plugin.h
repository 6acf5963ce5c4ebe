/* prozsec — plugin ABI: descriptor, entry point and the core-services table.
 *
 * A plugin is a shared object exporting exactly one symbol,
 * pz_plugin_entry_v1(), which returns a pointer to a static, immutable
 * descriptor. The descriptor names one provider of one kind (peer
 * authentication, rate limiter, connection limiter, transport) and points to
 * that kind's function table (auth.h, ratelimit.h, connlimit.h,
 * transport.h).
 *
 * Compatibility rules (see docs/plugin-guide.md):
 *   - PZ_ABI_MAJOR must equal the core's; a plugin's PZ_ABI_MINOR must not be
 *     newer than the core's. Tables only ever grow at their end; each starts
 *     with its own struct_size so the core knows which fields exist.
 *   - No GLib, GnuTLS or libyaml type crosses this ABI. Certificates cross as
 *     DER bytes, configuration as opaque pz_conf nodes read with the typed
 *     getters below, time as uint64_t nanoseconds passed in.
 *   - Plugins are never unloaded.
 */
#ifndef PROZSEC_PLUGIN_H
#define PROZSEC_PLUGIN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <prozsec/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ABI history (docs/plugin-guide.md, "ABI rules"):
 *   1.0  first release.
 *   1.1  connlimit.h: pz_peer_info and the optional peer_info function
 *        appended to pz_connlimit_provider. */
#define PZ_ABI_MAJOR 1
#define PZ_ABI_MINOR 1

#if defined(__GNUC__)
#define PZ_PLUGIN_EXPORT __attribute__((visibility("default")))
#define PZ_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define PZ_PLUGIN_EXPORT
#define PZ_PRINTF(f, a)
#endif

/* Longest provider name, in bytes, without the terminating NUL. Names match
 * [a-z0-9][a-z0-9-]* and are unique in a process. */
#define PZ_PLUGIN_NAME_MAX 32

/* Kinds of provider. Values are stable. */
typedef enum pz_plugin_kind {
    PZ_KIND_AUTH = 1,      /* peer authentication (auth.h) */
    PZ_KIND_RATELIMIT = 2, /* rate limiter (ratelimit.h) */
    PZ_KIND_CONNLIMIT = 3, /* connection limiter (connlimit.h) */
    PZ_KIND_TRANSPORT = 4, /* transport (transport.h) */
} pz_plugin_kind;

/* Opaque, core-owned types. */
typedef struct pz_err pz_err;   /* error sink: one message + code */
typedef struct pz_conf pz_conf; /* configuration node (map, list or scalar) */
typedef struct pz_core pz_core; /* core-services table, see below */

/* Log levels, in increasing severity. */
typedef enum pz_log_level {
    PZ_LOG_DEBUG = 0,
    PZ_LOG_INFO = 1,
    PZ_LOG_NOTICE = 2,
    PZ_LOG_WARNING = 3,
    PZ_LOG_ERROR = 4,
} pz_log_level;

/* ------------------------------------------------------------------------ */
/* Addresses and identities, as they cross the ABI.                          */

typedef enum pz_addr_family {
    PZ_AF_NONE = 0,
    PZ_AF_INET = 4,  /* bytes[0..3] */
    PZ_AF_INET6 = 6, /* bytes[0..15] */
    PZ_AF_UNIX = 1,  /* local socket: no address bytes */
} pz_addr_family;

/* A remote address. IPv4-mapped IPv6 addresses are given as PZ_AF_INET. */
typedef struct pz_addr {
    pz_addr_family family;
    uint8_t bytes[16];
    uint16_t port; /* host byte order; 0 when unknown */
} pz_addr;

/* Maximum node id length in bytes (ids match [A-Za-z0-9._-]{1,64}). */
#define PZ_NODE_ID_MAX 64
#define PZ_NODE_TYPE_MAX 32

/* An authenticated peer. All pointers are borrowed: valid only during the
 * call they are passed to; copy what you keep. */
typedef struct pz_identity {
    uint32_t struct_size;
    const char *node_id;          /* never NULL */
    const char *node_type;        /* "" when unknown */
    const char *const *roles;     /* n_roles role names */
    size_t n_roles;
    const uint8_t *sign_pub;      /* Ed25519 public key (32 bytes) or NULL */
    const uint8_t *e2e_pub;       /* X25519 public key (32 bytes) or NULL */
    const char *source;           /* who vouched: provider name, "directory", ... */
} pz_identity;

/* Peer status, as the reputation provider sees it; rate limiters scale a
 * peer's budget by a per-status factor. */
typedef enum pz_peer_status {
    PZ_STATUS_UNKNOWN = 0,
    PZ_STATUS_BLOCKED = 1,
    PZ_STATUS_PROBATION = 2,
    PZ_STATUS_NEUTRAL = 3,
    PZ_STATUS_TRUSTED = 4,
} pz_peer_status;

/* ------------------------------------------------------------------------ */
/* Behaviour events: every security-relevant thing a peer does.              */

typedef enum pz_behavior {
    PZ_BEHAVIOR_VALID_REQUEST = 1,
    PZ_BEHAVIOR_AUTH_FAILURE = 2,
    PZ_BEHAVIOR_INVALID_SIGNATURE = 3,
    PZ_BEHAVIOR_REPLAY = 4,
    PZ_BEHAVIOR_RATE_LIMITED = 5,
    PZ_BEHAVIOR_MALFORMED_FRAME = 6,
    PZ_BEHAVIOR_TIMEOUT = 7,
    PZ_BEHAVIOR_HANDSHAKE_FAILURE = 8,
    PZ_BEHAVIOR_UNAUTHORIZED_METHOD = 9,
    PZ_BEHAVIOR_STALE_TIMESTAMP = 10,
    PZ_BEHAVIOR_PROTOCOL_VIOLATION = 11,
    PZ_BEHAVIOR_CONNECTION_FLOOD = 12,
    PZ_BEHAVIOR__COUNT /* not a behaviour; values may be appended before it */
} pz_behavior;

/* The behaviour's name as used in configuration keys (reputation's
 * `adjustments.<name>`), metric labels and logs: "valid_request",
 * "auth_failure", ...; "?" for a value this header does not know. */
static inline const char *pz_behavior_name(pz_behavior behavior)
{
    switch (behavior) {
    case PZ_BEHAVIOR_VALID_REQUEST: return "valid_request";
    case PZ_BEHAVIOR_AUTH_FAILURE: return "auth_failure";
    case PZ_BEHAVIOR_INVALID_SIGNATURE: return "invalid_signature";
    case PZ_BEHAVIOR_REPLAY: return "replay";
    case PZ_BEHAVIOR_RATE_LIMITED: return "rate_limited";
    case PZ_BEHAVIOR_MALFORMED_FRAME: return "malformed_frame";
    case PZ_BEHAVIOR_TIMEOUT: return "timeout";
    case PZ_BEHAVIOR_HANDSHAKE_FAILURE: return "handshake_failure";
    case PZ_BEHAVIOR_UNAUTHORIZED_METHOD: return "unauthorized_method";
    case PZ_BEHAVIOR_STALE_TIMESTAMP: return "stale_timestamp";
    case PZ_BEHAVIOR_PROTOCOL_VIOLATION: return "protocol_violation";
    case PZ_BEHAVIOR_CONNECTION_FLOOD: return "connection_flood";
    case PZ_BEHAVIOR__COUNT: break;
    }
    return "?";
}

typedef struct pz_behavior_event {
    uint32_t struct_size;
    pz_behavior behavior;
    const char *node_id; /* NULL before authentication */
    pz_addr addr;        /* family PZ_AF_NONE when unknown */
    uint64_t now_ns;     /* monotonic time of the event */
    const char *detail;  /* short human text, may be NULL; never secret */
} pz_behavior_event;

/* ------------------------------------------------------------------------ */
/* Configuration schema a provider declares, so `prozsec plugins list
 * --verbose` can show operators every key. */

typedef enum pz_conf_type {
    PZ_CONF_STRING = 1,
    PZ_CONF_INT = 2,
    PZ_CONF_BOOL = 3,
    PZ_CONF_DURATION = 4, /* "500ms", "30s", "1h" */
    PZ_CONF_SIZE = 5,     /* "64KiB", "1MiB" */
    PZ_CONF_LIST = 6,
    PZ_CONF_MAP = 7,
    PZ_CONF_DOUBLE = 8,
} pz_conf_type;

typedef struct pz_conf_key {
    const char *key;         /* dotted path below the provider's config map */
    pz_conf_type type;
    const char *default_str; /* default as text, NULL if required */
    const char *help;        /* one line */
} pz_conf_key;

/* ------------------------------------------------------------------------ */
/* The core-services table. The core passes one to each provider instance
 * (its log lines and metrics are labelled with that instance); it stays
 * valid until the instance is destroyed. Every function is thread-safe
 * unless noted. */

struct pz_core {
    uint32_t struct_size; /* sizeof(pz_core) as the core was built */
    uint16_t abi_major;
    uint16_t abi_minor;

    /* Log a line at LEVEL. The core prefixes the provider name. Never pass
     * secrets. */
    void (*log)(const pz_core *core, pz_log_level level, const char *fmt, ...) PZ_PRINTF(3, 4);

    /* Set ERR (may be NULL: then nothing happens) to CODE and a message.
     * An earlier message in ERR is replaced. Returns CODE, so
     * `return core->error(core, err, PZ_EINVAL, "...")` reads naturally. */
    int (*error)(const pz_core *core, pz_err *err, int code, const char *fmt, ...) PZ_PRINTF(4, 5);

    /* Monotonic clock in nanoseconds (CLOCK_MONOTONIC in the daemon, a fake
     * clock in tests). Decision functions take time as an argument instead
     * of calling this. */
    uint64_t (*monotonic_ns)(const pz_core *core);

    /* Wall-clock time in nanoseconds since the Unix epoch. */
    uint64_t (*realtime_ns)(const pz_core *core);

    /* Fill BUF with LEN bytes from the core's CSPRNG. Returns 0 or
     * PZ_ECRYPTO. */
    int (*random)(const pz_core *core, void *buf, size_t len);

    /* Secure memory for secrets: locked, wiped on free. secure_alloc
     * returns NULL when out of secure memory. secure_free(NULL) is a no-op. */
    void *(*secure_alloc)(const pz_core *core, size_t len);
    void (*secure_free)(const pz_core *core, void *ptr);

    /* Metrics: add DELTA to counter NAME (an [a-z0-9_]+ name; the core
     * prefixes "prozsec_<provider>_") with an optional LABEL value (NULL for
     * none). */
    void (*metric_add)(const pz_core *core, const char *name, const char *label, int64_t delta);

    /* Metrics: set gauge NAME to VALUE. */
    void (*metric_set)(const pz_core *core, const char *name, const char *label, int64_t value);

    /* Emit a behaviour event to every connection limiter (including, with
     * care, the caller: providers must not emit from on_behavior). */
    void (*behavior)(const pz_core *core, const pz_behavior_event *event);

    /* --- configuration: typed getters --------------------------------------
     * Every getter reads KEY from the map node MAP. KEY may be a dotted path
     * ("limits.per_ip"). When the key is absent, *out = DEF and 0 is
     * returned; use conf_has to tell. When the value has the wrong type or is
     * out of range, ERR receives "FILE:LINE:COL: key.path: expected ...,
     * found ..." and PZ_ECONFIG is returned. Every key read through a
     * getter (present or not) is marked used; keys never read are reported
     * as "unknown key" after the provider's create() returns. Strings and
     * nodes returned are owned by the configuration and live as long as it
     * does (at least until the provider's destroy). */
    int (*conf_has)(const pz_conf *map, const char *key);
    int (*conf_string)(const pz_conf *map, const char *key, const char *def, const char **out, pz_err *err);
    int (*conf_int)(const pz_conf *map, const char *key, int64_t def, int64_t min, int64_t max, int64_t *out, pz_err *err);
    int (*conf_double)(const pz_conf *map, const char *key, double def, double min, double max, double *out, pz_err *err);
    int (*conf_bool)(const pz_conf *map, const char *key, int def, int *out, pz_err *err);
    /* Durations: "250ms", "30s", "5m", "2h", "1d", "100us", "10ns"; a bare
     * integer is seconds. Result in nanoseconds. */
    int (*conf_duration)(const pz_conf *map, const char *key, uint64_t def, uint64_t *out_ns, pz_err *err);
    /* Sizes: "512", "64KiB", "1MiB", "2GiB", "1kB" (decimal). Result in bytes. */
    int (*conf_size)(const pz_conf *map, const char *key, uint64_t def, uint64_t *out, pz_err *err);
    /* Child node KEY, which must be a map (or absent: *out = NULL). */
    int (*conf_map)(const pz_conf *map, const char *key, const pz_conf **out, pz_err *err);
    /* Child node KEY, which must be a list (or absent: *out = NULL). */
    int (*conf_list)(const pz_conf *map, const char *key, const pz_conf **out, pz_err *err);
    /* Number of elements of a list or entries of a map; 0 for a scalar. */
    size_t (*conf_len)(const pz_conf *node);
    /* Element I of a list, or value I of a map (then *key_out gets the key if
     * KEY_OUT is non-NULL). NULL when out of range. */
    const pz_conf *(*conf_at)(const pz_conf *node, size_t i, const char **key_out);
    /* The scalar text of NODE, or NULL when NODE is not a scalar. Marks
     * NODE used. */
    const char *(*conf_scalar)(const pz_conf *node);
    /* "FILE:LINE:COL" of NODE for messages; static per node. */
    const char *(*conf_where)(const pz_conf *node);
    /* Report a custom problem with NODE: sets ERR to
     * "FILE:LINE:COL: path: MESSAGE" and returns PZ_ECONFIG. */
    int (*conf_error)(const pz_conf *node, pz_err *err, const char *fmt, ...) PZ_PRINTF(3, 4);

    /* Fields may be appended here in later minor versions; check
     * struct_size before using one added after 1.0. */
};

/* ------------------------------------------------------------------------ */
/* The descriptor. */

typedef struct pz_plugin_descriptor {
    uint32_t struct_size; /* sizeof(pz_plugin_descriptor) the plugin was built with */
    uint16_t abi_major;   /* PZ_ABI_MAJOR the plugin was built with */
    uint16_t abi_minor;   /* PZ_ABI_MINOR the plugin was built with */
    const char *name;     /* provider name, [a-z0-9][a-z0-9-]{0,31}; mandatory */
    const char *version;  /* plugin version, free text ("1.2.0"); mandatory */
    const char *description; /* one line; mandatory */
    pz_plugin_kind kind;
    /* Kind-specific table: const pz_auth_provider *, const
     * pz_ratelimit_provider *, const pz_connlimit_provider * or const
     * pz_transport_provider *. Mandatory. */
    const void *provider;
    /* Called once, after the checks pass and before any provider instance
     * is created. May be NULL. Returns 0 or a PZ_E* code with ERR set; a
     * failing init refuses the plugin. Called with the loader's lock held:
     * must not call back into the loader. */
    int (*init)(const pz_core *core, pz_err *err);
    /* Called once at process exit if init succeeded. May be NULL. */
    void (*fini)(void);
    /* Configuration keys the provider reads, terminated by an entry with
     * key == NULL. May be NULL. */
    const pz_conf_key *config_schema;
} pz_plugin_descriptor;

/* The entry function every plugin exports. Side-effect free: the core may
 * call it in a short-lived child to list plugins. Returns a pointer to
 * static storage. */
typedef const pz_plugin_descriptor *(*pz_plugin_entry_fn)(void);

#define PZ_PLUGIN_ENTRY_SYMBOL "pz_plugin_entry_v1"

PZ_PLUGIN_EXPORT const pz_plugin_descriptor *pz_plugin_entry_v1(void);

/* Fill the version fields of a descriptor with the values of the headers in
 * use. */
#define PZ_PLUGIN_DESCRIPTOR_INIT \
    .struct_size = sizeof(pz_plugin_descriptor), .abi_major = PZ_ABI_MAJOR, .abi_minor = PZ_ABI_MINOR

#ifdef __cplusplus
}
#endif
#endif /* PROZSEC_PLUGIN_H */
