/* core/authz.h — the authorization service: may this authenticated peer
 * call this RPC method? Per-method rules from configuration, first match
 * wins, everything not allowed is denied.
 *
 *   authorization:
 *     rules:
 *       - methods: ["sys.*", "node.status"]   # glob patterns (* and ?)
 *         allow:                              # or deny:
 *           node_ids: [admin-1]               # any of these node ids,
 *           node_types: [validator]           # or of these node types,
 *           roles: [admin]                    # or holding one of these roles
 *
 * A rule applies to a call when one of its method patterns matches the
 * method AND its selector matches the peer (node id, node type or any
 * role; "*" in a list matches everyone). The first rule that applies
 * decides. When no rule applies the call is denied: a method that no rule
 * names ("unknown method") and a known method whose rules do not select
 * the peer are both denied, with different reasons.
 *
 * The caller (secure RPC) reports a denial as PZ_BEHAVIOR_UNAUTHORIZED_METHOD.
 *
 * Thread safety: a built pz_authz is immutable; pz_authz_check may be
 * called from several threads at once.
 */
#ifndef PZ_CORE_AUTHZ_H
#define PZ_CORE_AUTHZ_H

#include <stddef.h>

#include <prozsec/plugin.h>

#include "conf.h"

typedef struct pz_authz pz_authz;

typedef enum pz_authz_why {
    PZ_AUTHZ_RULE_ALLOW = 1,     /* rule RULE allowed */
    PZ_AUTHZ_RULE_DENY = 2,      /* rule RULE denied */
    PZ_AUTHZ_UNKNOWN_METHOD = 3, /* no rule names the method: default deny */
    PZ_AUTHZ_NOT_SELECTED = 4,   /* rules name the method but none selects the peer */
} pz_authz_why;

typedef struct pz_authz_decision {
    int allowed;          /* 1 allowed, 0 denied */
    pz_authz_why why;
    int rule;             /* index of the deciding rule, -1 when none */
    const char *where;    /* "FILE:LINE:COL" of the deciding rule, or "" (borrowed from the authz) */
} pz_authz_decision;

/* Build the authorization service from the root configuration map ROOT,
 * section `authorization` (see above). ROOT may be NULL or lack the
 * section: then every call is denied. Unknown keys inside the section,
 * empty method lists, invalid patterns, a rule with both or neither of
 * allow/deny, or a selector with no entries are PZ_ECONFIG with ERR naming
 * FILE:LINE:COL. Returns 0, PZ_ECONFIG or PZ_ENOMEM. */
int pz_authz_new_from_conf(const pz_conf *root, pz_authz **out, pz_err *err);

/* Free AUTHZ; NULL is a no-op. */
void pz_authz_free(pz_authz *authz);

/* Number of rules. */
size_t pz_authz_rule_count(const pz_authz *authz);

/* Decide whether the peer ID (borrowed) may call METHOD. Fills OUT and
 * returns 0 (a denial is a result); PZ_EINVAL when an argument is NULL or
 * ID has no node id. Thread-safe. */
int pz_authz_check(const pz_authz *authz, const char *method, const pz_identity *id, pz_authz_decision *out);

#endif /* PZ_CORE_AUTHZ_H */
