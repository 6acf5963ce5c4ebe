/* core/authchain.h — the peer authentication chain: auth providers run in
 * configured order under PAM-style control flags and yield one decision,
 * an identity or a refusal naming the provider that refused and why.
 *
 * Control flags (PAM's, see docs/internals/auth.md for the full table):
 *   required   must allow; on deny, error or abstain the chain goes on but
 *              the result is a refusal (the first failure is reported).
 *   requisite  as required, but a failure ends the chain at once.
 *   sufficient an allow ends the chain: with success when no required or
 *              requisite provider failed before, else with that failure.
 *              A deny, error or abstain of a sufficient provider is
 *              ignored (it is reported only when nothing else decided).
 *   optional   counts only when it is the only decision: when no
 *              required, requisite or sufficient provider allowed or
 *              failed. Among several optional answers a deny wins.
 * A provider error (non-zero return) counts as a deny, never as an allow.
 * Unlike PAM's PAM_IGNORE, an abstain of a required or requisite provider
 * is a failure ("must allow"). When nobody decides, the peer is refused.
 * Every allowing provider whose answer counts must name the same node id
 * (else the peer is refused: identity conflict), and outbound, the node id
 * must be the one dialled (cred->expected_node_id).
 *
 * Where configuration has no chain, `auth.default_provider` alone decides:
 * a chain of that one provider as `required`.
 *
 * Every refusal is logged, emitted as a PZ_BEHAVIOR_AUTH_FAILURE event
 * (pz_emit_behavior, source "auth") and counted by provider and reason
 * (pz_authchain_failure_count and the metric
 * prozsec_auth_failures_total{label="<provider>:<reason>"}).
 *
 * Thread safety: building (new/add/set_identities) is single-threaded;
 * once built, pz_authchain_authenticate and the counters may be used from
 * several threads at once.
 */
#ifndef PZ_CORE_AUTHCHAIN_H
#define PZ_CORE_AUTHCHAIN_H

#include <stddef.h>
#include <stdint.h>

#include <prozsec/auth.h>
#include <prozsec/plugin.h>

#include "credframe.h"
#include "identity.h"
#include "loader.h"

typedef enum pz_auth_control {
    PZ_AUTH_REQUIRED = 1,
    PZ_AUTH_REQUISITE = 2,
    PZ_AUTH_SUFFICIENT = 3,
    PZ_AUTH_OPTIONAL = 4,
} pz_auth_control;

/* Why the chain decided what it decided. */
typedef enum pz_auth_outcome {
    PZ_AUTH_OUT_ALLOWED = 0,     /* allowed; result.provider vouched */
    PZ_AUTH_OUT_DENIED = 1,      /* result.provider denied (reason_code, reason are its own) */
    PZ_AUTH_OUT_ERROR = 2,       /* result.provider failed (counted as a deny) */
    PZ_AUTH_OUT_ABSTAINED = 3,   /* a required/requisite result.provider had no opinion */
    PZ_AUTH_OUT_NO_DECISION = 4, /* every provider abstained (result.provider = "chain") */
    PZ_AUTH_OUT_CONFLICT = 5,    /* result.provider allowed a node id another provider did not */
    PZ_AUTH_OUT_MISMATCH = 6,    /* outbound: authenticated node id is not the one dialled */
    PZ_AUTH_OUT_DIRECTORY = 7,   /* identity contradicts the peer directory (keys, type) */
} pz_auth_outcome;

#define PZ_AUTHCHAIN_NAME_MAX 64

/* The chain's decision. On allow, ID holds the identity (verdict
 * PZ_AUTH_ALLOW), merged from every provider whose allow counted and, when
 * an identity manager is set, completed from the peer directory. */
typedef struct pz_authchain_result {
    int allowed;                               /* 1 allowed, 0 refused */
    pz_auth_outcome outcome;
    char provider[PZ_AUTHCHAIN_NAME_MAX + 1];  /* who vouched / who refused ("chain": nobody) */
    int reason_code;                           /* the refusing provider's own code (DENIED), else 0 */
    char reason[192];                          /* for logs; never secret */
    pz_auth_result id;                         /* on allow: the identity */
} pz_authchain_result;

typedef struct pz_authchain pz_authchain;

/* Parse a control flag name ("required", "requisite", "sufficient",
 * "optional"). Returns 0 or PZ_EINVAL. */
int pz_auth_control_parse(const char *text, pz_auth_control *out);

/* The name of CONTROL ("required", ...), or "?". */
const char *pz_auth_control_name(pz_auth_control control);

/* The short name of OUTCOME ("allowed", "deny", "error", "abstain",
 * "no-decision", "conflict", "mismatch", "directory"). */
const char *pz_auth_outcome_name(pz_auth_outcome outcome);

/* A new, empty chain (an empty chain refuses everyone). Returns 0 or
 * PZ_ENOMEM. Free with pz_authchain_free. */
int pz_authchain_new(pz_authchain **out, pz_err *err);

/* Free CHAIN and the provider instances it owns. NULL is a no-op. */
void pz_authchain_free(pz_authchain *chain);

/* Append a provider given by its table TABLE and instance STATE, both
 * borrowed (they must outlive CHAIN), under NAME (copied; used in logs,
 * results and counters) with CONTROL. Returns 0, PZ_EINVAL (bad control,
 * NULL mandatory function, table too short) or PZ_ENOMEM. */
int pz_authchain_add(pz_authchain *chain, const char *name, const pz_auth_provider *table, void *state,
                     pz_auth_control control, pz_err *err);

/* Append the auth provider instance PROVIDER (from pz_provider_new) with
 * CONTROL; the chain takes ownership of PROVIDER, also on failure. Returns
 * 0, PZ_EINVAL (not an auth provider) or PZ_ENOMEM. */
int pz_authchain_add_take(pz_authchain *chain, pz_provider *provider, pz_auth_control control, pz_err *err);

/* Build a chain from the `auth` map AUTH of the configuration:
 *   auth:
 *     default_provider: NAME          # used only when there is no chain
 *     default_config: {...}           # that provider's settings (optional)
 *     chain:
 *       - provider: NAME              # plugin NAME.so on the loader's path
 *         control: required           # required|requisite|sufficient|optional
 *         name: INSTANCE              # optional, default NAME; unique
 *         config: {...}               # the provider's settings (optional)
 * Each provider is loaded through LOADER (kind auth) and instantiated; any
 * provider that cannot be loaded or created fails the whole call (start-up
 * stops) with ERR naming the entry (FILE:LINE:COL) and the reason. AUTH
 * NULL or with neither key is PZ_ECONFIG. On success *OUT owns the
 * instances. Returns 0, PZ_ECONFIG, PZ_ENOENT, PZ_EABI, PZ_EPERM, PZ_ENOMEM
 * (the loader's codes pass through). */
int pz_authchain_new_from_conf(pz_loader *loader, const pz_conf *auth, pz_authchain **out, pz_err *err);

/* Let the chain complete allowed identities from IDS (borrowed; may be
 * NULL): node type and keys the providers did not give are filled from the
 * peer directory, roles are merged (up to PZ_AUTH_MAX_ROLES); a provider's
 * node type or key that contradicts the directory refuses the peer
 * (PZ_AUTH_OUT_DIRECTORY). An allowed identity that carries public keys
 * (cert-auth's, from the certificate) is recorded in IDS as learnt
 * (pz_identities_put, source = the vouching provider), so other modules
 * find a peer's keys by node id. */
void pz_authchain_set_identities(pz_authchain *chain, pz_identities *ids);

/* Number of providers in CHAIN. */
size_t pz_authchain_len(const pz_authchain *chain);

/* Run CHAIN over CRED (borrowed) at NOW_NS (monotonic, for the behaviour
 * event) and fill OUT. A refusal is a result: returns 0 with OUT->allowed =
 * 0. Returns PZ_EINVAL only when CHAIN, CRED, CRED->addr or OUT is NULL.
 * Thread-safe. */
int pz_authchain_authenticate(pz_authchain *chain, const pz_auth_credentials *cred, uint64_t now_ns,
                              pz_authchain_result *out);

/* As pz_authchain_authenticate, with the tokens of the peer's credentials
 * frame FRAME (borrowed; may be NULL: then exactly
 * pz_authchain_authenticate): each provider sees as cred->token the first
 * token of FRAME whose method is one of its supported_methods, or, when
 * none is, the token the transport put in CRED (usually none). So a token
 * reaches only the providers that handle its method. Thread-safe. */
int pz_authchain_authenticate_frame(pz_authchain *chain, const pz_auth_credentials *cred, const pz_credframe *frame,
                                    uint64_t now_ns, pz_authchain_result *out);

/* Build the credentials frame this node sends after a transport handshake
 * it initiated (docs/internals/credentials-frame.md): for each provider of
 * CHAIN in order, its first supported method that is not carried by the
 * handshake itself ("certificate", "key-pin") nor already in the frame,
 * with the token generate_credentials makes for the channel binding CB
 * (CB_LEN bytes; NULL when the transport has none). A provider that
 * presents nothing (PZ_ENOTSUP) or cannot for this connection (no binding,
 * no key) is left out: the accepting side decides. Writes the whole frame,
 * length prefix included, into BUF (CAP >= PZ_CREDFRAME_HDR +
 * PZ_CREDFRAME_MAX always suffices), *LEN its size, *N_TOKENS (may be NULL)
 * the number of tokens. Returns 0, PZ_EINVAL (NULL CHAIN or LEN) or
 * PZ_ERANGE (CAP too small). Tokens are wiped from scratch memory. One
 * thread at a time (auth.h: generate_credentials is not thread-safe). */
int pz_authchain_credentials_frame(pz_authchain *chain, const uint8_t *cb, size_t cb_len, uint8_t *buf, size_t cap,
                                   size_t *len, size_t *n_tokens);

/* How many refusals CHAIN counted for PROVIDER (an instance name or
 * "chain") with REASON: "deny:<code>", "error", "abstain", "no-decision",
 * "conflict", "mismatch" or "directory"; REASON NULL sums every reason of
 * PROVIDER, PROVIDER NULL sums every provider. Thread-safe. */
uint64_t pz_authchain_failure_count(const pz_authchain *chain, const char *provider, const char *reason);

/* A borrowed view of the identity in R (an allowed pz_auth_result) as the
 * ABI's pz_identity, for connection limiters and authorization. ROLES_BUF
 * receives the role pointers; OUT points into R and ROLES_BUF, so both must
 * outlive OUT. SOURCE (borrowed) names who vouched. */
void pz_auth_result_identity(const pz_auth_result *r, const char *source,
                             const char *roles_buf[PZ_AUTH_MAX_ROLES], pz_identity *out);

#endif /* PZ_CORE_AUTHCHAIN_H */
