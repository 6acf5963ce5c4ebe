/* plugins/reputation/reputation.h — the reputation provider's refusal
 * reasons (pz_admit_result.reason) and internals shared with its unit test
 * (not part of the ABI: the .so exports only pz_plugin_entry_v1). */
#ifndef PZ_PLUGINS_REPUTATION_H
#define PZ_PLUGINS_REPUTATION_H

#include <stddef.h>
#include <stdint.h>

#include <prozsec/plugin.h>

enum {
    PZ_REP_REASON_BANNED_NODE = 1,    /* node id banned; retry_after_ns = time left */
    PZ_REP_REASON_BLOCKED = 2,        /* score below the blocked threshold */
    PZ_REP_REASON_PROBATION = 3,      /* on probation, lost the score/100 draw */
    PZ_REP_REASON_NEW_NODE = 4,       /* unknown node and allow_new_nodes is false */
    PZ_REP_REASON_BANNED_ADDRESS = 5, /* address prefix banned; retry_after_ns = time left */
};

/* Name of the persistent file inside data_dir, and of its temporary twin. */
#define PZ_REP_FILE "reputation.db"
#define PZ_REP_TMP_FILE "reputation.db.tmp"
#define PZ_REP_BAD_FILE "reputation.db.bad"

/* One history record (the seed's ReputationEvent). */
typedef struct pz_rep_event {
    pz_behavior behavior;
    uint64_t time_ns;  /* monotonic */
    double prev_score; /* before the adjustment (after decay) */
    double applied;    /* adjustment actually applied (after clamping) */
} pz_rep_event;

/* The score of node ID at NOW (decayed), or -1 when unknown. */
double pz__rep_score(void *state, const char *node_id, uint64_t now);

/* The score of the address record ADDR is charged to (its configured
 * prefix), or -1 when unknown. */
double pz__rep_addr_score(void *state, const pz_addr *addr, uint64_t now);

/* Copy up to MAX history records of node ID, oldest first, into OUT;
 * returns how many the node has (0 when unknown). */
size_t pz__rep_history(void *state, const char *node_id, pz_rep_event *out, size_t max);

/* Ban state of node ID: 1 and *UNTIL (monotonic ns) when banned at NOW, and
 * *COUNT (may be NULL) = bans so far. */
int pz__rep_banned(void *state, const char *node_id, uint64_t now, uint64_t *until, uint32_t *count);

/* Records held. */
size_t pz__rep_records(void *state);

#endif /* PZ_PLUGINS_REPUTATION_H */
