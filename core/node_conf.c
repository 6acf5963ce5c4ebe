/* core/node_conf.c — the node's own configuration sections: `peers` (the
 * address book for outbound calls), `rpc`, `e2e` and `metrics`, and the
 * checks across sections the node relies on (a tls transport with `verify:
 * auth-chain` needs an auth provider that vouches for keys). Every key is
 * documented in docs/configuration.md. Also `dos.save_interval` (the rest
 * of `dos` is read by core/settings.c). */
#include "config.h"

#include <string.h>

#include "conf.h"
#include "identity.h"
#include "node_priv.h"

void node_conf_clear(node_conf *nc)
{
    g_free(nc->peers);
    g_free(nc->methods);
    g_free(nc->audit_path_abs);
    memset(nc, 0, sizeof(*nc));
}

static int read_peers(const pz_conf *root, node_conf *nc, pz_err *err)
{
    const pz_conf *list = NULL;
    int rc = pz_conf_list(root, "peers", &list, err);
    if (rc < 0 || !list)
        return rc;
    size_t n = pz_conf_len(list);
    nc->peers = g_new0(node_conf_peer, n ? n : 1);
    for (size_t i = 0; i < n; i++) {
        const pz_conf *e = pz_conf_at(list, i, NULL);
        node_conf_peer *p = &nc->peers[nc->n_peers];
        if (pz_conf_kind(e) != PZ_CONF_NODE_MAP) {
            rc = pz_conf_error(e, err, "expected a map {node_id, address, transport}");
            continue;
        }
        int r1 = pz_conf_string(e, "node_id", NULL, &p->node_id, err);
        int r2 = pz_conf_string(e, "address", NULL, &p->address, err);
        int r3 = pz_conf_string(e, "transport", NULL, &p->transport, err);
        if (r1 < 0 || r2 < 0 || r3 < 0) {
            rc = PZ_ECONFIG;
            continue;
        }
        if (!p->node_id || !pz_identity_valid_node_id(p->node_id)) {
            rc = pz_conf_error(e, err, "node_id: expected a node id ([A-Za-z0-9._-]{1,64}), found %s",
                               p->node_id ? p->node_id : "nothing");
            continue;
        }
        if (!p->address) {
            rc = pz_conf_error(e, err, "address: expected HOST:PORT or a socket path, found nothing");
            continue;
        }
        nc->n_peers++;
    }
    if (pz_conf_check_unused(list, err) < 0)
        rc = PZ_ECONFIG;
    return rc;
}

static int read_rpc(pz_node *node, const pz_conf *root, node_conf *nc, pz_err *err)
{
    const pz_conf *rpc = NULL;
    int rc = pz_conf_map(root, "rpc", &rpc, err);
    int fail = rc < 0;
    uint64_t v = 0;
    int64_t i = 0;
    nc->skew_ns = 30ull * 1000000000ull;
    nc->replay_cache = 262144;
    nc->max_frame_bytes = 1 << 20;
    nc->max_in_flight = 256;
    nc->handshake_timeout_ms = 10000;
    if (!rpc)
        return fail ? PZ_ECONFIG : 0;
    if (pz_conf_duration(rpc, "skew", nc->skew_ns, &nc->skew_ns, err) < 0)
        fail = 1;
    if (pz_conf_int(rpc, "replay_cache", 262144, 1024, 100000000, &i, err) < 0)
        fail = 1;
    else
        nc->replay_cache = (size_t)i;
    if (pz_conf_size(rpc, "max_frame_bytes", 1 << 20, &v, err) < 0)
        fail = 1;
    else if (v < 256 || v > (64u << 20))
        fail = pz_conf_error(rpc, err, "max_frame_bytes: expected a size between 256 and 64MiB") != 0;
    else
        nc->max_frame_bytes = v;
    if (pz_conf_int(rpc, "max_in_flight", 256, 1, 65536, &i, err) < 0)
        fail = 1;
    else
        nc->max_in_flight = (size_t)i;
    if (pz_conf_duration(rpc, "handshake_timeout", 10ull * 1000000000ull, &v, err) < 0)
        fail = 1;
    else
        nc->handshake_timeout_ms = (unsigned)(v / 1000000ull ? v / 1000000ull : 1);
    if (pz_conf_string(rpc, "audit_log", NULL, &nc->audit_path, err) < 0)
        fail = 1;
    else if (nc->audit_path) {
        if (g_path_is_absolute(nc->audit_path)) {
            nc->audit_path_abs = g_strdup(nc->audit_path);
        } else {
            g_autofree char *dir = g_path_get_dirname(pz_conf_file(rpc));
            nc->audit_path_abs = g_build_filename(dir, nc->audit_path, NULL);
        }
        nc->audit_path = nc->audit_path_abs;
    }
    const pz_conf *methods = NULL;
    if (pz_conf_map(rpc, "methods", &methods, err) < 0)
        fail = 1;
    if (methods) {
        size_t n = pz_conf_len(methods);
        nc->methods = g_new0(node_conf_method, n ? n : 1);
        for (size_t k = 0; k < n; k++) {
            const char *name = NULL;
            const pz_conf *m = pz_conf_at(methods, k, &name);
            node_conf_method *nm = &nc->methods[nc->n_methods];
            nm->name = name;
            if (pz_conf_kind(m) != PZ_CONF_NODE_MAP) {
                fail = pz_conf_error(m, err, "expected a map {integrity, audit, idempotent}") != 0;
                continue;
            }
            const char *integ = NULL;
            if (pz_conf_string(m, "integrity", "signature", &integ, err) < 0) {
                fail = 1;
                continue;
            }
            if (strcmp(integ, "signature") == 0)
                nm->mac = 0;
            else if (strcmp(integ, "mac") == 0)
                nm->mac = 1;
            else {
                fail = pz_conf_error(m, err, "integrity: expected signature or mac, found \"%s\"", integ) != 0;
                continue;
            }
            if (pz_conf_bool(m, "audit", 0, &nm->audit, err) < 0 ||
                pz_conf_bool(m, "idempotent", 0, &nm->idempotent, err) < 0) {
                fail = 1;
                continue;
            }
            if (nm->audit && nm->mac) {
                fail = pz_conf_error(m, err, "audit: a MAC is no evidence; audited methods need integrity: signature") != 0;
                continue;
            }
            nc->n_methods++;
        }
    }
    (void)node;
    if (pz_conf_check_unused(rpc, err) < 0)
        fail = 1;
    return fail ? PZ_ECONFIG : 0;
}

static int read_e2e(const pz_conf *root, node_conf *nc, pz_err *err)
{
    const pz_conf *e = NULL;
    int fail = pz_conf_map(root, "e2e", &e, err) < 0;
    int64_t i = 0;
    uint64_t v = 0;
    nc->e2e_rotate_ns = 7ull * 86400ull * 1000000000ull;
    nc->e2e_grace_ns = 2ull * 86400ull * 1000000000ull;
    nc->inbox_max = 1024;
    nc->inbox_max_bytes = 1 << 20;
    if (!e)
        return fail ? PZ_ECONFIG : 0;
    if (pz_conf_duration(e, "rotate", nc->e2e_rotate_ns, &nc->e2e_rotate_ns, err) < 0)
        fail = 1;
    if (pz_conf_duration(e, "grace", nc->e2e_grace_ns, &nc->e2e_grace_ns, err) < 0)
        fail = 1;
    if (pz_conf_int(e, "inbox_max", 1024, 1, 1000000, &i, err) < 0)
        fail = 1;
    else
        nc->inbox_max = (size_t)i;
    if (pz_conf_size(e, "max_envelope", 1 << 20, &v, err) < 0)
        fail = 1;
    else
        nc->inbox_max_bytes = v;
    if (pz_conf_check_unused(e, err) < 0)
        fail = 1;
    return fail ? PZ_ECONFIG : 0;
}

static int read_metrics(const pz_conf *root, node_conf *nc, pz_err *err)
{
    const pz_conf *m = NULL;
    int fail = pz_conf_map(root, "metrics", &m, err) < 0;
    if (!m)
        return fail ? PZ_ECONFIG : 0;
    if (pz_conf_string(m, "listen", NULL, &nc->metrics_listen, err) < 0)
        fail = 1;
    if (pz_conf_check_unused(m, err) < 0)
        fail = 1;
    return fail ? PZ_ECONFIG : 0;
}

/* dos.save_interval (the rest of `dos` is core/settings.c's): how often the
 * DoS providers' persistent state (reputation scores, automatic bans) is
 * saved, so a crash loses at most that much. 0 turns it off. */
#define SAVE_INTERVAL_DEFAULT_NS (30ull * 1000000000ull)
#define SAVE_INTERVAL_MIN_NS (1000000000ull)
#define SAVE_INTERVAL_MAX_NS (86400ull * 1000000000ull)

static int read_dos(const pz_conf *root, node_conf *nc, pz_err *err)
{
    const pz_conf *d = NULL;
    uint64_t v = 0;
    nc->dos_save_ns = SAVE_INTERVAL_DEFAULT_NS;
    if (pz_conf_map(root, "dos", &d, err) < 0)
        return PZ_ECONFIG;
    if (!d)
        return 0;
    if (pz_conf_duration(d, "save_interval", SAVE_INTERVAL_DEFAULT_NS, &v, err) < 0)
        return PZ_ECONFIG;
    if (v != 0 && (v < SAVE_INTERVAL_MIN_NS || v > SAVE_INTERVAL_MAX_NS))
        return pz_conf_error(pz_conf_child(d, "save_interval"), err,
                             "expected 0 (off) or a duration between 1s and 1d");
    nc->dos_save_ns = v;
    return 0;
}

/* Auth providers that can vouch for a peer by a key they know, with no
 * CA: what `verify: auth-chain` of the tls transport relies on. */
static const char *const key_vouchers[] = {"key-pin", NULL};

static int is_key_voucher(const char *provider)
{
    for (size_t i = 0; provider && key_vouchers[i]; i++)
        if (!strcmp(provider, key_vouchers[i]))
            return 1;
    return 0;
}

/* 1 when the `auth` section names a provider that can vouch for a key: in
 * auth.chain, or auth.default_provider when there is no chain. */
static int auth_has_key_voucher(const pz_conf *root)
{
    const pz_conf *chain = pz_conf_child(root, "auth.chain");
    if (chain && pz_conf_kind(chain) == PZ_CONF_NODE_LIST && pz_conf_len(chain) > 0) {
        for (size_t i = 0; i < pz_conf_len(chain); i++) {
            const pz_conf *e = pz_conf_at(chain, i, NULL);
            const pz_conf *p = pz_conf_kind(e) == PZ_CONF_NODE_MAP ? pz_conf_child(e, "provider") : NULL;
            if (p && is_key_voucher(pz_conf_scalar(p)))
                return 1;
        }
        return 0;
    }
    const pz_conf *def = pz_conf_child(root, "auth.default_provider");
    return def && is_key_voucher(pz_conf_scalar(def));
}

/* A tls transport with `verify: auth-chain` lets certificates no CA
 * vouches for through to the auth chain; cert-auth refuses those, so
 * without a provider that vouches for keys every such peer would be
 * refused (or, worse, a third-party provider might trust the unvalidated
 * names). Refuse the configuration at check time instead. */
static int check_verify_modes(const pz_conf *root, pz_err *err)
{
    int rc = 0;
    const pz_conf *list = pz_conf_child(root, "transports");
    if (!list || pz_conf_kind(list) != PZ_CONF_NODE_LIST)
        return 0;
    for (size_t i = 0; i < pz_conf_len(list); i++) {
        const pz_conf *e = pz_conf_at(list, i, NULL);
        if (pz_conf_kind(e) != PZ_CONF_NODE_MAP)
            continue;
        const pz_conf *prov = pz_conf_child(e, "provider");
        if (!prov || !pz_conf_scalar(prov) || strcmp(pz_conf_scalar(prov), "tls"))
            continue; /* only the tls plugin's `verify` means this */
        const pz_conf *conf = pz_conf_child(e, "config");
        const pz_conf *verify = conf && pz_conf_kind(conf) == PZ_CONF_NODE_MAP ? pz_conf_child(conf, "verify") : NULL;
        const char *v = verify ? pz_conf_scalar(verify) : NULL;
        if (!v || strcmp(v, "auth-chain"))
            continue;
        if (!auth_has_key_voucher(root))
            rc = pz_conf_error(verify, err,
                               "auth-chain leaves peer certificates no CA vouches for to the auth chain, but no "
                               "provider in auth can vouch for a key: add key-pin to auth.chain (cert-auth refuses "
                               "chains the transport did not validate), or use verify: ca");
    }
    return rc;
}

int node_conf_load(pz_node *node, const pz_conf *root, node_conf *out, pz_err *err)
{
    memset(out, 0, sizeof(*out));
    int fail = 0;
    if (check_verify_modes(root, err) < 0)
        fail = 1;
    if (read_peers(root, out, err) < 0)
        fail = 1;
    if (read_rpc(node, root, out, err) < 0)
        fail = 1;
    if (read_e2e(root, out, err) < 0)
        fail = 1;
    if (read_metrics(root, out, err) < 0)
        fail = 1;
    if (read_dos(root, out, err) < 0)
        fail = 1;
    if (fail) {
        node_conf_clear(out);
        return PZ_ECONFIG;
    }
    return 0;
}
