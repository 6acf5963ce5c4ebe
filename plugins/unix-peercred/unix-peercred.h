/* plugins/unix-peercred/unix-peercred.h — reason codes of the
 * unix-peercred provider (pz_auth_result.reason_code). Values are stable. */
#ifndef PZ_PLUGIN_UNIX_PEERCRED_H
#define PZ_PLUGIN_UNIX_PEERCRED_H

enum unix_peercred_reason {
    UNIX_PEERCRED_DENY_NOT_ALLOWED = 1, /* neither the uid nor the gid is on the allowlist */
    UNIX_PEERCRED_DENY_BAD_ID = 2,      /* the identity template gave no valid node id */
};

#endif /* PZ_PLUGIN_UNIX_PEERCRED_H */
