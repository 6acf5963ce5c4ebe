/* core/dos.h — the DoS protection service: ordered chains of connection
 * limiters and rate limiters built from configuration (dos.connection_
 * limiters, dos.rate_limiters), the behaviour-event bus that hands every
 * event to every connection limiter, per-provider shadow mode, refusal
 * counters by stage, provider and reason, and the link from a peer's
 * status (reputation) to its rate budget.
 *
 * The path of a connection: pz_dos_admit_address before the handshake,
 * pz_dos_admit_identity after authentication, pz_dos_check_request for
 * each request, pz_dos_release when it ends (always, even after a refusal
 * at the identity stage). Each limiter that admits a connection is told
 * when it ends, at the stage it reached; one that refused is not.
 *
 * Shadow mode (`shadow: true` on an entry): the provider decides and its
 * refusals are counted (as shadow refusals) and logged ("would refuse"),
 * but nothing is refused. A shadow connection limiter's status does not
 * scale rate budgets.
 *
 * Thread safety: like the providers it drives, a pz_dos is used from one
 * thread at a time (the event-loop thread). See docs/internals/dos.md.
 */
#ifndef PZ_CORE_DOS_H
#define PZ_CORE_DOS_H

#include <stddef.h>
#include <stdint.h>

#include <prozsec/connlimit.h>
#include <prozsec/ratelimit.h>

#include "loader.h"
#include "settings.h"

typedef struct pz_dos pz_dos;
/* One inbound connection's passage through the connection limiters. */
typedef struct pz_dos_conn pz_dos_conn;

/* Where a refusal happened. Values are stable (metrics labels). */
typedef enum pz_dos_stage {
    PZ_DOS_STAGE_ADDRESS = 1,  /* before the handshake, by remote address */
    PZ_DOS_STAGE_IDENTITY = 2, /* after authentication, by identity */
    PZ_DOS_STAGE_REQUEST = 3,  /* a request, by a rate limiter */
} pz_dos_stage;

/* Most connection limiters in one chain. */
#define PZ_DOS_MAX_CONN_LIMITERS 64

/* Reason recorded when a provider returns an error instead of a decision
 * (the core counts an error as a refusal). */
#define PZ_DOS_REASON_ERROR (-1)

/* A verdict of the service. */
typedef struct pz_dos_verdict {
    int allowed;             /* 1 allowed, 0 refused */
    const char *provider;    /* instance that refused (valid while the pz_dos lives), else NULL */
    int reason;              /* that provider's reason code, or PZ_DOS_REASON_ERROR */
    uint64_t retry_after_ns; /* hint when refused; 0 if none */
    char detail[96];         /* short human reason when refused */
} pz_dos_verdict;

/* Build the service: load and instantiate, in order, the N_CONN connection
 * limiter entries CONN and the N_RATE rate limiter entries RATE (from
 * core/settings.h) through LOADER. Strings are copied; the entries' config
 * nodes must stay valid until this returns. Returns 0, or PZ_ENOENT (no
 * such plugin), PZ_ECONFIG (a provider refused its config; FILE:LINE:COL
 * in ERR), PZ_EINVAL (more than PZ_DOS_MAX_CONN_LIMITERS, wrong kind),
 * PZ_ENOMEM, or the loader's refusal code; ERR names the entry. *OUT is
 * NULL on error (nothing is left running). */
int pz_dos_new(pz_loader *loader, const pz_settings_provider *conn, size_t n_conn,
               const pz_settings_provider *rate, size_t n_rate, pz_dos **out, pz_err *err);

/* Same from a loaded pz_settings (its dos section). */
int pz_dos_new_from_settings(pz_loader *loader, const pz_settings *settings, pz_dos **out, pz_err *err);

/* Flush persistent provider state (best effort, failures logged), destroy
 * every instance, free DOS. If DOS is the installed behaviour sink, the
 * default sink is restored. NULL is a no-op. */
void pz_dos_free(pz_dos *dos);

/* Make DOS the process's behaviour-event sink: every core->behavior() of
 * every provider and pz_emit_behavior() reach pz_dos_behavior(DOS, ...).
 * Note pz_core_set_hooks replaces every hook: a caller that sets its own
 * clock or log hooks should put pz_dos_behavior_hook (with ud = DOS) into
 * its own pz_core_hooks instead. */
void pz_dos_install(pz_dos *dos);

/* The behaviour hook itself (pz_core_hooks.behavior), UD being a pz_dos. */
void pz_dos_behavior_hook(void *ud, const char *source, const pz_behavior_event *event);

/* Ask every connection limiter, in order, about a new connection from
 * ADDR. The first (non-shadow) refusal stops the chain; limiters that had
 * admitted it are released again. On admission *CONN is a new handle (pass
 * it to the other pz_dos_*conn* calls, and finally to pz_dos_release); on
 * refusal *CONN is NULL. OUT gets the verdict. Returns 0, or PZ_ENOMEM (no
 * handle: treat as refused). */
int pz_dos_admit_address(pz_dos *dos, const pz_addr *addr, uint64_t now_ns, pz_dos_conn **conn,
                         pz_dos_verdict *out);

/* Ask, after authentication, every limiter that admitted CONN by address,
 * with the identity ID (node_id and node_type are copied). On refusal the
 * other limiters are released at once and CONN is left refused (still
 * pass it to pz_dos_release). Calling it twice, or after a refusal,
 * refuses with PZ_EINVAL. Returns 0 or PZ_EINVAL / PZ_ENOMEM. */
int pz_dos_admit_identity(pz_dos *dos, pz_dos_conn *conn, const pz_identity *id, uint64_t now_ns,
                          pz_dos_verdict *out);

/* The connection has ended: tell each limiter holding it, at its stage,
 * and free CONN. NULL is a no-op. */
void pz_dos_release(pz_dos *dos, pz_dos_conn *conn, uint64_t now_ns);

/* Decide one request: peer NODE_ID (NULL before authentication) from ADDR
 * (not NULL) calling METHOD (NULL: connection-level). Each rate limiter,
 * in order, is asked with the cost its entry's method_costs gives METHOD
 * (default 1) and the peer's status (the first non-shadow connection
 * limiter with peer_status that knows the node). The first (non-shadow)
 * refusal stops the chain and emits a PZ_BEHAVIOR_RATE_LIMITED event to
 * the connection limiters. Returns 0 (the verdict is in OUT). */
int pz_dos_check_request(pz_dos *dos, const char *node_id, const pz_addr *addr, const char *method,
                         uint64_t now_ns, pz_dos_verdict *out);

/* Hand EVENT to every connection limiter's on_behavior and count it.
 * Events emitted from inside another event's delivery are dropped (and
 * counted): providers must not emit from on_behavior. */
void pz_dos_behavior(pz_dos *dos, const pz_behavior_event *event);

/* The status of NODE_ID as the first non-shadow limiter that keeps
 * statuses reports it; PZ_STATUS_UNKNOWN when none knows it. */
pz_peer_status pz_dos_peer_status(pz_dos *dos, const char *node_id, uint64_t now_ns);

/* What the first non-shadow connection limiter offering peer_info (ABI
 * 1.1) and knowing NODE_ID reports about it, into OUT (zeroed, struct_size
 * set, first). Limiters whose table is too short for peer_info (built
 * against ABI 1.0) are skipped, never called. Returns 0, PZ_ENOENT when no
 * limiter has a record (or none offers peer_info), or PZ_EINVAL. */
int pz_dos_peer_info(pz_dos *dos, const char *node_id, uint64_t now_ns, pz_peer_info *out);

/* Ban / unban TARGET (a node id, "node:<id>", an address or a CIDR) in
 * every connection limiter that keeps bans (shadow ones included).
 * DURATION_NS 0: each provider's escalating default. Returns 0 when at
 * least one provider did it, PZ_ENOTSUP when none keeps bans, else the
 * first error (ERR set). */
int pz_dos_ban(pz_dos *dos, const char *target, uint64_t duration_ns, uint64_t now_ns, pz_err *err);
int pz_dos_unban(pz_dos *dos, const char *target, pz_err *err);

/* Ask every connection limiter with persistent state to write it now.
 * Returns 0 or the first error (ERR set); the others are still tried. */
int pz_dos_flush(pz_dos *dos, pz_err *err);

/* Refusals counted so far at STAGE (0: any) by instance PROVIDER (NULL:
 * any) with REASON (INT_MIN: any); SHADOW 1 counts shadow refusals ("would
 * refuse"), 0 real ones. */
uint64_t pz_dos_refusals(const pz_dos *dos, pz_dos_stage stage, const char *provider, int reason, int shadow);

/* Call FN for every non-zero refusal counter; stops and returns FN's value
 * when non-zero. */
typedef int (*pz_dos_refusal_fn)(pz_dos_stage stage, const char *provider, int reason, int shadow, uint64_t count,
                                 void *ud);
int pz_dos_foreach_refusal(const pz_dos *dos, pz_dos_refusal_fn fn, void *ud);

/* Behaviour events delivered so far of kind BEHAVIOR (0: all), and those
 * dropped because they were emitted during another's delivery. */
uint64_t pz_dos_events(const pz_dos *dos, pz_behavior behavior);
uint64_t pz_dos_events_dropped(const pz_dos *dos);

/* "address", "identity", "request", or "?". */
const char *pz_dos_stage_name(pz_dos_stage stage);

/* Name of a behaviour ("auth_failure"...), or "?". */
const char *pz_dos_behavior_name(pz_behavior behavior);

#endif /* PZ_CORE_DOS_H */
