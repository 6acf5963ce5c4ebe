/* core/node_methods.c — the built-in RPC methods of a node:
 *
 *   sys.ping      liveness; answers {node, time}
 *   sys.info      {id, type, version, transports, auth, connection_limiters, rate_limiters}
 *   keys.get      {node, sign_pub, e2e_record}: the node's current signed E2E key record
 *   msg.send      {envelope: ay}: store an E2E envelope for its recipient
 *                 (store-and-forward relay; the relay never sees plaintext)
 *   msg.fetch     {max: u}: hand the caller the envelopes addressed to it
 *   admin.peers   connected peers with status      (unix transport only)
 *   admin.ban     {target: s, duration: s}         (unix transport only)
 *   admin.unban   {target: s}                      (unix transport only)
 *   admin.stats   {text: s} counters and gauges    (unix transport only)
 *   admin.reload  re-read the configuration        (unix transport only)
 *
 * Parameters and results are a{sv} dictionaries.
 */
#include "config.h"

#include <string.h>

#include "conf.h"
#include "coresvc.h"
#include "e2e.h"
#include "node_priv.h"

void node_inbox_free(gpointer queue)
{
    g_queue_free_full(queue, (GDestroyNotify)g_bytes_unref);
}

static unsigned method_flags(pz_node *node, const char *name, unsigned base)
{
    const node_conf *nc = &node->gen->nc;
    for (size_t i = 0; i < nc->n_methods; i++) {
        if (strcmp(nc->methods[i].name, name) == 0) {
            unsigned f = base & ~(unsigned)(PZ_RPC_MAC | PZ_RPC_AUDIT);
            if (nc->methods[i].mac)
                f |= PZ_RPC_MAC;
            if (nc->methods[i].audit)
                f |= PZ_RPC_AUDIT;
            return f;
        }
    }
    return base;
}

/* PARAMS when it is an a{sv} dictionary, else NULL (a method called
 * without parameters gets whatever the caller sent: never trust its type). */
static GVariant *dict(GVariant *params)
{
    return params && g_variant_is_of_type(params, G_VARIANT_TYPE_VARDICT) ? params : NULL;
}

static GVariant *dict_end(GVariantBuilder *b)
{
    return g_variant_builder_end(b);
}

static void m_ping(pz_rpc_call *call, GVariant *params, void *ud)
{
    pz_node *node = ud;
    (void)params;
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add(&b, "{sv}", "node", g_variant_new_string(node->node_id));
    g_variant_builder_add(&b, "{sv}", "time", g_variant_new_uint64(pz_realtime_ns()));
    pz_rpc_call_return(call, dict_end(&b));
}

static GVariant *provider_names(const pz_settings_provider *p, size_t n)
{
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE_STRING_ARRAY);
    for (size_t i = 0; i < n; i++)
        g_variant_builder_add(&b, "s", p[i].name);
    return g_variant_builder_end(&b);
}

static void m_info(pz_rpc_call *call, GVariant *params, void *ud)
{
    pz_node *node = ud;
    (void)params;
    const pz_settings *s = node->gen->settings;
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add(&b, "{sv}", "id", g_variant_new_string(node->node_id));
    g_variant_builder_add(&b, "{sv}", "type", g_variant_new_string(node->node_type));
    g_variant_builder_add(&b, "{sv}", "version", g_variant_new_string(PACKAGE_VERSION));
    g_variant_builder_add(&b, "{sv}", "transports", provider_names(s->transports, s->n_transports));
    if (s->n_auth_chain)
        g_variant_builder_add(&b, "{sv}", "auth", provider_names(s->auth_chain, s->n_auth_chain));
    else if (s->auth_default)
        g_variant_builder_add(&b, "{sv}", "auth", provider_names(s->auth_default, 1));
    g_variant_builder_add(&b, "{sv}", "connection_limiters", provider_names(s->conn_limiters, s->n_conn_limiters));
    g_variant_builder_add(&b, "{sv}", "rate_limiters", provider_names(s->rate_limiters, s->n_rate_limiters));
    pz_rpc_call_return(call, dict_end(&b));
}

static void m_keys_get(pz_rpc_call *call, GVariant *params, void *ud)
{
    pz_node *node = ud;
    (void)params;
    uint8_t rec[PZ_E2E_KEY_RECORD_LEN];
    if (pz_e2e_current_record(node->e2e, pz_realtime_ns(), rec) < 0) {
        pz_rpc_call_fail(call, PZ_RPC_HANDLER_ERROR, "no current E2E key");
        return;
    }
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add(&b, "{sv}", "node", g_variant_new_string(node->node_id));
    g_variant_builder_add(&b, "{sv}", "sign_pub",
                          g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, node->sign_pub, 32, 1));
    g_variant_builder_add(&b, "{sv}", "e2e_record", g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, rec, sizeof(rec), 1));
    pz_rpc_call_return(call, dict_end(&b));
}

static void m_send(pz_rpc_call *call, GVariant *params, void *ud)
{
    params = dict(params);
    pz_node *node = ud;
    g_autoptr(GVariant) env = params ? g_variant_lookup_value(params, "envelope", G_VARIANT_TYPE_BYTESTRING) : NULL;
    if (!env) {
        pz_rpc_call_fail(call, PZ_RPC_BAD_REQUEST, "expected {envelope: ay}");
        return;
    }
    gsize len = 0;
    const uint8_t *buf = g_variant_get_fixed_array(env, &len, 1);
    if (len > node->gen->nc.inbox_max_bytes) {
        pz_rpc_call_fail(call, PZ_RPC_BAD_REQUEST, "envelope larger than e2e.max_envelope");
        return;
    }
    pz__e2e_env e;
    if (pz__e2e_parse(buf, len, &e) != 0) {
        const pz_identity *peer = pz_rpc_call_peer(call);
        pz_behavior_event ev = {.struct_size = sizeof(ev), .behavior = PZ_BEHAVIOR_MALFORMED_FRAME,
                                .node_id = peer ? peer->node_id : NULL, .now_ns = pz_now_ns(),
                                .detail = "malformed E2E envelope"};
        if (node->gen->dos)
            pz_dos_behavior(node->gen->dos, &ev);
        pz_rpc_call_fail(call, PZ_RPC_BAD_REQUEST, "malformed envelope");
        return;
    }
    char *rcpt = g_strndup(e.recipient, e.recipient_len);
    GQueue *q = g_hash_table_lookup(node->inbox, rcpt);
    if (!q) {
        q = g_queue_new();
        g_hash_table_insert(node->inbox, g_strdup(rcpt), q);
    }
    if (g_queue_get_length(q) >= node->gen->nc.inbox_max) {
        g_free(rcpt);
        pz_rpc_call_fail(call, PZ_RPC_STATUS_APP + 1, "recipient's inbox is full");
        return;
    }
    g_queue_push_tail(q, g_bytes_new(buf, len));
    node->relayed++;
    node->core->metric_add(node->core, "e2e_envelopes_stored_total", NULL, 1);
    pz_log("node", PZ_LOG_INFO, "stored a %zu-byte envelope for %s (%u waiting)", (size_t)len, rcpt,
           g_queue_get_length(q));
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add(&b, "{sv}", "recipient", g_variant_new_string(rcpt));
    g_variant_builder_add(&b, "{sv}", "queued", g_variant_new_uint32(g_queue_get_length(q)));
    g_free(rcpt);
    pz_rpc_call_return(call, dict_end(&b));
}

static void m_fetch(pz_rpc_call *call, GVariant *params, void *ud)
{
    params = dict(params);
    pz_node *node = ud;
    const pz_identity *peer = pz_rpc_call_peer(call);
    guint32 max = 64;
    if (params)
        g_variant_lookup(params, "max", "u", &max);
    GVariantBuilder arr;
    g_variant_builder_init(&arr, G_VARIANT_TYPE("aay"));
    GQueue *q = peer ? g_hash_table_lookup(node->inbox, peer->node_id) : NULL;
    guint32 n = 0;
    while (q && n < max && !g_queue_is_empty(q)) {
        GBytes *bytes = g_queue_pop_head(q);
        gsize len;
        const void *d = g_bytes_get_data(bytes, &len);
        g_variant_builder_add_value(&arr, g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, d, len, 1));
        g_bytes_unref(bytes);
        n++;
    }
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add(&b, "{sv}", "envelopes", g_variant_builder_end(&arr));
    g_variant_builder_add(&b, "{sv}", "remaining", g_variant_new_uint32(q ? g_queue_get_length(q) : 0));
    pz_rpc_call_return(call, dict_end(&b));
}

static const char *status_name(pz_peer_status s)
{
    switch (s) {
    case PZ_STATUS_BLOCKED: return "blocked";
    case PZ_STATUS_PROBATION: return "probation";
    case PZ_STATUS_NEUTRAL: return "neutral";
    case PZ_STATUS_TRUSTED: return "trusted";
    default: return "unknown";
    }
}

/* ABI 1.1: when a connection limiter offers peer_info about ID, add its
 * score (d) and history (aa{sv}: behavior s, time_ns t, age_ms t,
 * prev_score d, delta d; oldest first) to B as KEY_SCORE and KEY_HISTORY. */
static void add_peer_info(GVariantBuilder *b, pz_dos *dos, const char *id, uint64_t now, const char *key_score,
                          const char *key_history)
{
    pz_peer_info info;
    if (!dos || !id || pz_dos_peer_info(dos, id, now, &info) != 0)
        return;
    GVariantBuilder h;
    g_variant_builder_init(&h, G_VARIANT_TYPE("aa{sv}"));
    for (size_t i = 0; i < info.n_history; i++) {
        const pz_peer_history *e = &info.history[i];
        GVariantBuilder r;
        g_variant_builder_init(&r, G_VARIANT_TYPE_VARDICT);
        g_variant_builder_add(&r, "{sv}", "behavior", g_variant_new_string(pz_dos_behavior_name(e->behavior)));
        g_variant_builder_add(&r, "{sv}", "time_ns", g_variant_new_uint64(e->time_ns));
        g_variant_builder_add(&r, "{sv}", "age_ms",
                              g_variant_new_uint64(now > e->time_ns ? (now - e->time_ns) / 1000000u : 0));
        g_variant_builder_add(&r, "{sv}", "prev_score", g_variant_new_double(e->prev_score));
        g_variant_builder_add(&r, "{sv}", "delta", g_variant_new_double(e->delta));
        g_variant_builder_add_value(&h, g_variant_builder_end(&r));
    }
    g_variant_builder_add(b, "{sv}", key_score, g_variant_new_double(info.score));
    g_variant_builder_add(b, "{sv}", key_history, g_variant_builder_end(&h));
}

static void m_peers(pz_rpc_call *call, GVariant *params, void *ud)
{
    params = dict(params);
    pz_node *node = ud;
    GVariantBuilder arr;
    g_variant_builder_init(&arr, G_VARIANT_TYPE("aa{sv}"));
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, node->conns);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        conn_info *ci = v;
        char a[80];
        pz__addr_format(&ci->addr, a, sizeof(a));
        GVariantBuilder b;
        g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
        g_variant_builder_add(&b, "{sv}", "node_id", g_variant_new_string(ci->node_id));
        g_variant_builder_add(&b, "{sv}", "address", g_variant_new_string(a));
        g_variant_builder_add(&b, "{sv}", "transport", g_variant_new_string(ci->nt->name));
        g_variant_builder_add(&b, "{sv}", "auth", g_variant_new_string(ci->auth_provider));
        pz_peer_status st = node->gen->dos ? pz_dos_peer_status(node->gen->dos, ci->node_id, pz_now_ns())
                                           : PZ_STATUS_UNKNOWN;
        g_variant_builder_add(&b, "{sv}", "status", g_variant_new_string(status_name(st)));
        add_peer_info(&b, node->gen->dos, ci->node_id, pz_now_ns(), "score", "history");
        g_variant_builder_add(&b, "{sv}", "since", g_variant_new_uint64(ci->since_ns / 1000000000ull));
        g_variant_builder_add_value(&arr, g_variant_builder_end(&b));
    }
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add(&b, "{sv}", "peers", g_variant_builder_end(&arr));
    /* {node_id: s}: also report that node's status, connected or not. */
    const char *q = NULL;
    if (params && g_variant_lookup(params, "node_id", "&s", &q)) {
        pz_peer_status st = node->gen->dos ? pz_dos_peer_status(node->gen->dos, q, pz_now_ns()) : PZ_STATUS_UNKNOWN;
        g_variant_builder_add(&b, "{sv}", "queried", g_variant_new_string(q));
        g_variant_builder_add(&b, "{sv}", "queried_status", g_variant_new_string(status_name(st)));
        add_peer_info(&b, node->gen->dos, q, pz_now_ns(), "queried_score", "queried_history");
    }
    pz_rpc_call_return(call, dict_end(&b));
}

static void m_ban(pz_rpc_call *call, GVariant *params, void *ud)
{
    params = dict(params);
    pz_node *node = ud;
    const char *target = NULL, *dur = NULL;
    if (!params || !g_variant_lookup(params, "target", "&s", &target)) {
        pz_rpc_call_fail(call, PZ_RPC_BAD_REQUEST, "expected {target: s, duration: s}");
        return;
    }
    uint64_t ns = 0;
    if (g_variant_lookup(params, "duration", "&s", &dur) && pz_parse_duration(dur, &ns) < 0) {
        pz_rpc_call_fail(call, PZ_RPC_BAD_REQUEST, "duration: expected a duration such as 30m or 2h");
        return;
    }
    pz_err err;
    pz_err_init(&err);
    if (!node->gen->dos || pz_dos_ban(node->gen->dos, target, ns, pz_now_ns(), &err) < 0) {
        pz_rpc_call_fail(call, PZ_RPC_HANDLER_ERROR, node->gen->dos ? pz_err_msg(&err) : "no DoS service");
        pz_err_clear(&err);
        return;
    }
    pz_err_clear(&err);
    size_t closed = pz_rpc_server_close_peer(node->server, target);
    pz_log("node", PZ_LOG_NOTICE, "banned %s (%zu sessions closed)", target, closed);
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add(&b, "{sv}", "banned", g_variant_new_string(target));
    g_variant_builder_add(&b, "{sv}", "sessions_closed", g_variant_new_uint32((guint32)closed));
    pz_rpc_call_return(call, dict_end(&b));
}

static void m_unban(pz_rpc_call *call, GVariant *params, void *ud)
{
    params = dict(params);
    pz_node *node = ud;
    const char *target = NULL;
    if (!params || !g_variant_lookup(params, "target", "&s", &target)) {
        pz_rpc_call_fail(call, PZ_RPC_BAD_REQUEST, "expected {target: s}");
        return;
    }
    pz_err err;
    pz_err_init(&err);
    if (!node->gen->dos || pz_dos_unban(node->gen->dos, target, &err) < 0) {
        pz_rpc_call_fail(call, PZ_RPC_HANDLER_ERROR, node->gen->dos ? pz_err_msg(&err) : "no DoS service");
        pz_err_clear(&err);
        return;
    }
    pz_err_clear(&err);
    pz_log("node", PZ_LOG_NOTICE, "unbanned %s", target);
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add(&b, "{sv}", "unbanned", g_variant_new_string(target));
    pz_rpc_call_return(call, dict_end(&b));
}

static void m_stats(pz_rpc_call *call, GVariant *params, void *ud)
{
    pz_node *node = ud;
    (void)params;
    char *text = pz_node_stats_text(node);
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add(&b, "{sv}", "text", g_variant_new_take_string(text));
    pz_rpc_call_return(call, dict_end(&b));
}

static void m_reload(pz_rpc_call *call, GVariant *params, void *ud)
{
    pz_node *node = ud;
    (void)params;
    pz_err err;
    pz_err_init_collect(&err);
    if (pz_node_reload(node, &err) < 0) {
        GString *s = g_string_new(NULL);
        for (size_t i = 0; i < pz_err_count(&err); i++)
            g_string_append_printf(s, "%s%s", i ? "\n" : "", pz_err_at(&err, i));
        if (!s->len)
            g_string_append(s, pz_err_msg(&err));
        pz_rpc_call_fail(call, PZ_RPC_HANDLER_ERROR, s->str);
        g_string_free(s, TRUE);
    } else {
        GVariantBuilder b;
        g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
        g_variant_builder_add(&b, "{sv}", "reloaded", g_variant_new_boolean(TRUE));
        pz_rpc_call_return(call, dict_end(&b));
    }
    pz_err_clear(&err);
}

static int refusal_line(pz_dos_stage stage, const char *provider, int reason, int shadow, uint64_t count, void *ud)
{
    GString *out = ud;
    g_string_append_printf(out,
                           "prozsec_dos_refusals_total{stage=\"%s\",provider=\"%s\",reason=\"%d\",shadow=\"%d\"} %" G_GUINT64_FORMAT
                           "\n",
                           pz_dos_stage_name(stage), provider, reason, shadow, count);
    return 0;
}

void node_stats_refusals(pz_node *node, GString *out)
{
    pz_dos_foreach_refusal(node->gen->dos, refusal_line, out);
    g_string_append_printf(out, "prozsec_e2e_envelopes_relayed_total %" G_GUINT64_FORMAT "\n", node->relayed);
}

int node_methods_register(pz_node *node, pz_err *err)
{
    static const struct {
        const char *name;
        pz_rpc_handler fn;
        unsigned flags;
    } table[] = {
        {"sys.ping", m_ping, 0},
        {"sys.info", m_info, 0},
        {"keys.get", m_keys_get, 0},
        {"msg.send", m_send, 0},
        {"msg.fetch", m_fetch, 0},
        {"admin.peers", m_peers, 0},
        {"admin.ban", m_ban, 0},
        {"admin.unban", m_unban, 0},
        {"admin.stats", m_stats, 0},
        {"admin.reload", m_reload, 0},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(table); i++) {
        int rc = pz_rpc_register(node->server, table[i].name, table[i].fn, node,
                                 method_flags(node, table[i].name, table[i].flags));
        if (rc < 0)
            return pz_err_set(err, rc, "registering %s: %s", table[i].name, pz_strerror(rc));
    }
    return 0;
}
