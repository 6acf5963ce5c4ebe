/* plugins/cert-auth/cert-auth.h — reason codes of the cert-auth provider.
 *
 * A refusal's pz_auth_result.reason_code is either a certificate
 * validation reason (1..99: pz_certval_reason, core/certval.h — expired,
 * revoked, untrusted, ...) or one of the policy codes below. Values are
 * stable: they are logged and counted.
 */
#ifndef PZ_PLUGIN_CERT_AUTH_H
#define PZ_PLUGIN_CERT_AUTH_H

enum cert_auth_reason {
    CERT_AUTH_DENY_LISTED_ID = 100,      /* node id on deny.node_ids */
    CERT_AUTH_DENY_LISTED_TYPE = 101,    /* node type on deny.node_types */
    CERT_AUTH_DENY_NOT_ALLOWED = 102,    /* allow lists set and neither names the node */
    CERT_AUTH_DENY_NOT_IN_DIRECTORY = 103, /* require_directory and the node is not listed */
    CERT_AUTH_DENY_DIRECTORY = 104,      /* certificate contradicts the peer directory (type, keys) */
    CERT_AUTH_DENY_UNVERIFIED_CHAIN = 105, /* the transport did not validate the chain (tls verify: auth-chain) */
};

#endif /* PZ_PLUGIN_CERT_AUTH_H */
