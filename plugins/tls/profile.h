/* plugins/tls/profile.h — TLS profiles of the `tls` transport: which
 * protocol versions, cipher suites and client-authentication mode a peer of
 * each node type gets, read from configuration and mapped to one GnuTLS
 * priority string.
 *
 * A profile names cipher suites by their IANA names
 * ("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384") or their OpenSSL names
 * ("ECDHE-ECDSA-AES256-GCM-SHA384"). Only ECDHE key exchange with an AEAD
 * cipher is accepted; anything weaker (CBC, RC4, 3DES/DES, NULL, export,
 * anonymous, PSK, static RSA/DH/ECDH, DHE, 8-byte-tag CCM) and any version
 * below TLS 1.2 is refused with the FILE:LINE:COL of the offending value.
 *
 * GnuTLS priority strings enable algorithms, not suites: enabling ECDHE-RSA
 * and CHACHA20-POLY1305 for two allowed suites also enables
 * ECDHE-RSA-CHACHA20-POLY1305. The priority string is therefore the closest
 * superset, and the transport checks the suite actually chosen against the
 * profile (pz_tls_profile_has_suite) in the ServerHello, before any key is
 * used.
 *
 * Everything here is pure data: no GnuTLS session, no I/O. Thread safety: a
 * parsed pz_tls_profiles is immutable and may be read from any thread.
 */
#ifndef PZ_TLS_PROFILE_H
#define PZ_TLS_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#include <prozsec/plugin.h>

/* Protocol versions, as TLS minor numbers for easy comparison. */
#define PZ_TLS_V12 12
#define PZ_TLS_V13 13

/* Most suites one profile may list. */
#define PZ_TLS_MAX_SUITES 16
/* Most profiles: "default" plus this many node types minus one. */
#define PZ_TLS_MAX_PROFILES 32

typedef enum pz_tls_client_auth {
    PZ_TLS_CLIENT_AUTH_NONE = 0,     /* do not ask for a client certificate */
    PZ_TLS_CLIENT_AUTH_OPTIONAL = 1, /* ask; a client without one is let through */
    PZ_TLS_CLIENT_AUTH_REQUIRED = 2, /* ask; a client without one is refused */
} pz_tls_client_auth;

/* One supported cipher suite. */
typedef struct pz_tls_suite {
    uint16_t id;           /* IANA code point, e.g. 0xC02C */
    const char *iana;      /* "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" */
    const char *openssl;   /* "ECDHE-ECDSA-AES256-GCM-SHA384" */
    int version;           /* PZ_TLS_V12 or PZ_TLS_V13 */
    const char *gnutls_kx; /* "ECDHE-ECDSA", "ECDHE-RSA", NULL for TLS 1.3 */
    const char *gnutls_cipher; /* "AES-256-GCM", "CHACHA20-POLY1305", ... */
} pz_tls_suite;

typedef struct pz_tls_profile {
    char name[PZ_NODE_TYPE_MAX + 1]; /* "default" or a node type */
    int min_version;                 /* PZ_TLS_V12 or PZ_TLS_V13 */
    size_t n_suites;
    const pz_tls_suite *suites[PZ_TLS_MAX_SUITES]; /* preference order */
    pz_tls_client_auth client_auth;
} pz_tls_profile;

typedef struct pz_tls_profiles {
    size_t n;                                  /* >= 1 */
    pz_tls_profile v[PZ_TLS_MAX_PROFILES];     /* v[0] is "default" */
} pz_tls_profiles;

/* Resolve a cipher suite NAME (IANA or OpenSSL spelling, exact case) to a
 * supported suite. Returns 0 and sets *OUT; PZ_EREFUSED when NAME is a known
 * kind of weak suite (*WHY then says which weakness, a static string), or
 * PZ_ENOENT when it is not a suite this transport knows (*WHY says so).
 * OUT and WHY may be NULL. Thread-safe. */
int pz_tls_suite_lookup(const char *name, const pz_tls_suite **out, const char **why);

/* The supported suite with code point ID, or NULL. Thread-safe. */
const pz_tls_suite *pz_tls_suite_by_id(uint16_t id);

/* Fill PROFILES with the built-in default: one profile "default" with
 * min_version tls1.2, the suites TLS_AES_256_GCM_SHA384,
 * TLS_CHACHA20_POLY1305_SHA256, TLS_AES_128_GCM_SHA256 (TLS 1.3) and
 * ECDHE-ECDSA-AES256-GCM-SHA384, ECDHE-ECDSA-CHACHA20-POLY1305,
 * ECDHE-RSA-AES256-GCM-SHA384 (TLS 1.2), client_auth required. */
void pz_tls_profiles_default(pz_tls_profiles *profiles);

/* Read the `profiles` map of the transport's configuration map CONF (may
 * be NULL: then only defaults) through CORE's typed getters:
 *
 *   profiles:
 *     default:   {min_version: tls1.2, cipher_suites: [...], client_auth: required}
 *     validator: {min_version: tls1.3}
 *
 * A node-type profile starts as a copy of "default" and overrides the keys it
 * sets. Returns 0, or PZ_ECONFIG with ERR set to "FILE:LINE:COL: path:
 * message" for: a version below TLS 1.2 or not understood, a weak or unknown
 * suite, an empty or duplicate suite list, a profile with no suite usable at
 * its minimum version, an unknown client_auth, a bad profile name, too many
 * profiles or suites. */
int pz_tls_profiles_parse(const pz_core *core, const pz_conf *conf, pz_tls_profiles *profiles, pz_err *err);

/* The profile for NODE_TYPE, or "default" when none is configured for it
 * (or NODE_TYPE is NULL or ""). Never NULL. */
const pz_tls_profile *pz_tls_profiles_find(const pz_tls_profiles *profiles, const char *node_type);

/* 1 when PROFILE lists the suite with code point ID, else 0. */
int pz_tls_profile_has_suite(const pz_tls_profile *profile, uint16_t id);

/* 1 when any profile lists the suite ID, else 0. */
int pz_tls_profiles_have_suite(const pz_tls_profiles *profiles, uint16_t id);

/* The GnuTLS priority string offering the union of every profile's versions
 * and suites, in the default profile's preference order first: it starts
 * from "NONE:", adds exactly the versions, key exchanges, AEAD ciphers,
 * signature algorithms (SHA-256 or stronger) and ECDHE groups needed, no
 * compression, and %SERVER_PRECEDENCE. Writes a NUL-terminated string into
 * BUF of LEN bytes; returns 0 or PZ_ERANGE when it does not fit. */
int pz_tls_priority_string(const pz_tls_profiles *profiles, char *buf, size_t len);

/* How a server should ask for client certificates given every profile:
 * REQUIRED when all profiles require one, NONE when none asks for one,
 * OPTIONAL otherwise (each profile's own rule is then applied after the
 * handshake, once the peer's node type is known). */
pz_tls_client_auth pz_tls_profiles_request_mode(const pz_tls_profiles *profiles);

/* "tls1.2" / "tls1.3"; "required" / "optional" / "none". Static strings. */
const char *pz_tls_version_name(int version);
const char *pz_tls_client_auth_name(pz_tls_client_auth mode);

#endif /* PZ_TLS_PROFILE_H */
