/* geo-deny.h — what the geo-deny provider documents to its users and its
 * test: refusal reasons (pz_admit_result.reason) and limits. */
#ifndef GEO_DENY_H
#define GEO_DENY_H

#define GEO_DENY_VERSION "1.0.0"

/* Refusal reasons. Stable: operators see them in logs and metrics. */
#define GEO_DENY_REASON_REGION 1 /* the address is in a denied region */

/* Most ranges (deny + allow) one instance accepts. */
#define GEO_DENY_MAX_RANGES 100000

#endif
