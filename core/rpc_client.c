/* core/rpc_client.c — the RPC client: per-peer connection pools, call
 * deadlines, response checks, idempotent retry (see rpc_client.h). */
#include "config.h"

#include <string.h>

#include "crypto.h"
#include "err.h"
#include "rpc_chan.h"
#include "rpc_client.h"
#include "rpc_frame.h"
#include "rpc_wire.h"

#define DEFAULT_SKEW_NS (30ull * 1000000000ull)
#define DEFAULT_MAX_FRAME (1024u * 1024)
#define DEFAULT_MAX_CONNS 2u
#define DEFAULT_MAX_IN_FLIGHT 1024u
#define DEFAULT_MAX_QUEUED 65536u
#define DEFAULT_TIMEOUT_MS 30000u
#define MAX_ATTEMPTS 2u

typedef struct peer peer;
typedef struct cconn cconn;

enum { CALL_NEW, CALL_WAITING, CALL_IN_FLIGHT, CALL_COMPLETING };

typedef struct ccall {
    pz_rpc_client *client;
    peer *peer;
    cconn *conn;
    GList qlink; /* in peer->waiting or client->completions */
    char *method;
    GVariant *params; /* kept for a retry */
    unsigned flags;
    uint32_t timeout_ms;
    int64_t deadline_us;
    uint8_t call_id[PZ_RPC_CALL_ID_LEN];
    pz_rpc_done_fn done;
    void *ud;
    unsigned attempts;
    GSequenceIter *dl;
    int state;
    int rc;    /* CALL_COMPLETING: the result to deliver */
    char *msg;
} ccall;

struct cconn {
    pz_rpc_client *client;
    peer *peer;
    pz_rpc_chan *chan;
    pz_verify_key *pub; /* the server's signing key, imported once */
    pz_wire_mac *mac;
    int mac_state;
    GHashTable *calls; /* call id -> ccall* */
};

struct peer {
    char *id;
    GPtrArray *conns; /* cconn* */
    GQueue waiting;   /* ccall* via qlink */
    int connecting;
};

typedef struct client_source {
    GSource source;
    pz_rpc_client *client;
} client_source;

struct pz_rpc_client {
    char *node_id;
    const pz_rpc_key *key;
    GMainContext *ctx;
    pz_rpc_client_hooks hooks;
    uint64_t skew_ns;
    size_t max_frame, max_conns, max_in_flight, max_queued;
    uint32_t default_timeout_ms;
    GHashTable *peers; /* id -> peer* */
    GHashTable *marks; /* method -> flags */
    GSequence *deadlines;
    client_source *timer;
    client_source *completer;
    GQueue completions;
    pz_rpc_client_stats stats;
};

static const pz_rpc_chan_ops cconn_ops;
static void dispatch_peer(pz_rpc_client *cl, peer *p);

static uint64_t real_ns(const pz_rpc_client *cl)
{
    if (cl->hooks.realtime_ns)
        return cl->hooks.realtime_ns(cl->hooks.ud);
    return (uint64_t)g_get_real_time() * 1000u;
}

static guint id_hash(gconstpointer p)
{
    guint h;
    memcpy(&h, p, sizeof(h));
    return h;
}

static gboolean id_equal(gconstpointer a, gconstpointer b)
{
    return memcmp(a, b, PZ_RPC_CALL_ID_LEN) == 0;
}

/* ------------------------------------------------------------------------ */
/* Completion. */

static void call_free(ccall *c)
{
    if (c->dl)
        g_sequence_remove(c->dl);
    if (c->params)
        g_variant_unref(c->params);
    g_free(c->method);
    g_free(c->msg);
    g_free(c);
}

/* A result as delivered to a pz_rpc_done_fn: the public part first, so
 * pz_rpc_result_retry_after_ms can reach the rest from it. */
typedef struct client_result {
    pz_rpc_result pub;
    uint32_t retry_after_ms; /* rate_limited: the server's hint, else 0 */
} client_result;

PZ_API uint32_t pz_rpc_result_retry_after_ms(const pz_rpc_result *result)
{
    const client_result *r = (const client_result *)result;
    return result && result->rc == 0 && result->status == PZ_RPC_RATE_LIMITED ? r->retry_after_ms : 0;
}

/* The retry hint of a rate_limited response: DATA {"retry_after_ms": <u>},
 * else 0 (no data, another type, or no memory to look). */
static uint32_t retry_hint(const pz_wire_value *data)
{
    uint32_t ms = 0;
    if (data->type_len != 5 || memcmp(data->type, "a{sv}", 5) != 0)
        return 0;
    GVariant *v = pz_wire_value_dup(data);
    if (!v)
        return 0;
    if (!g_variant_lookup(v, PZ_WIRE_RETRY_AFTER_KEY, "u", &ms))
        ms = 0;
    g_variant_unref(v);
    return ms;
}

/* Deliver CR to the caller and free CALL (already unlinked from any
 * connection or queue). */
static void deliver(ccall *c, client_result *cr)
{
    pz_rpc_result *res = &cr->pub;
    pz_rpc_client *cl = c->client;
    res->call_id = c->call_id;
    res->attempts = c->attempts ? c->attempts : 1;
    if (!res->message)
        res->message = res->rc ? pz_strerror(res->rc) : pz_rpc_status_name(res->status);
    cl->stats.in_flight--;
    if (res->rc == PZ_ETIMEDOUT)
        cl->stats.timeouts++;
    else if (res->rc == PZ_ECLOSED)
        cl->stats.closed++;
    else if (res->rc == 0 && res->status == PZ_RPC_OK)
        cl->stats.ok++;
    else if (res->rc == 0)
        cl->stats.refused++;
    pz_rpc_done_fn done = c->done;
    void *ud = c->ud;
    if (c->dl) {
        g_sequence_remove(c->dl);
        c->dl = NULL;
    }
    done(res, ud);
    call_free(c);
}

static void fail_now(ccall *c, int rc, const char *msg)
{
    client_result res = {.pub = {.rc = rc, .message = msg}};
    deliver(c, &res);
}

/* Complete CALL with RC from the main loop (never inside the caller's
 * pz_rpc_client_call). */
static void fail_later(ccall *c, int rc, const char *msg)
{
    pz_rpc_client *cl = c->client;
    c->state = CALL_COMPLETING;
    c->rc = rc;
    g_free(c->msg);
    c->msg = g_strdup(msg);
    c->qlink.data = c;
    g_queue_push_tail_link(&cl->completions, &c->qlink);
    g_source_set_ready_time(&cl->completer->source, 0);
}

static gboolean completer_dispatch(GSource *source, GSourceFunc cb, gpointer data)
{
    (void)cb;
    (void)data;
    pz_rpc_client *cl = ((client_source *)source)->client;
    g_source_set_ready_time(source, -1);
    /* Only what is queued now: callbacks may queue more for next time. */
    guint n = cl->completions.length;
    while (n-- > 0) {
        GList *l = g_queue_pop_head_link(&cl->completions);
        ccall *c = l->data;
        fail_now(c, c->rc, c->msg);
    }
    return G_SOURCE_CONTINUE;
}

/* ------------------------------------------------------------------------ */
/* Deadlines. */

static gint deadline_cmp(gconstpointer a, gconstpointer b, gpointer ud)
{
    (void)ud;
    const ccall *x = a, *y = b;
    if (x->deadline_us != y->deadline_us)
        return x->deadline_us < y->deadline_us ? -1 : 1;
    return x < y ? -1 : (x > y ? 1 : 0);
}

static void arm_timer(pz_rpc_client *cl)
{
    GSequenceIter *first = g_sequence_get_begin_iter(cl->deadlines);
    if (g_sequence_iter_is_end(first))
        g_source_set_ready_time(&cl->timer->source, -1);
    else
        g_source_set_ready_time(&cl->timer->source, ((ccall *)g_sequence_get(first))->deadline_us);
}

/* Take CALL out of its connection or waiting queue. */
static void unlink_call(ccall *c)
{
    if (c->state == CALL_IN_FLIGHT && c->conn) {
        g_hash_table_remove(c->conn->calls, c->call_id);
        c->conn = NULL;
    } else if (c->state == CALL_WAITING) {
        g_queue_unlink(&c->peer->waiting, &c->qlink);
    } else if (c->state == CALL_COMPLETING) {
        g_queue_unlink(&c->client->completions, &c->qlink);
    }
    c->state = CALL_NEW;
}

static gboolean timer_dispatch(GSource *source, GSourceFunc cb, gpointer data)
{
    (void)cb;
    (void)data;
    pz_rpc_client *cl = ((client_source *)source)->client;
    int64_t now = g_get_monotonic_time();
    GPtrArray *peers = g_ptr_array_new();
    for (;;) {
        GSequenceIter *first = g_sequence_get_begin_iter(cl->deadlines);
        if (g_sequence_iter_is_end(first))
            break;
        ccall *c = g_sequence_get(first);
        if (c->deadline_us > now)
            break;
        if (c->state == CALL_IN_FLIGHT)
            g_ptr_array_add(peers, c->peer); /* a slot frees up */
        unlink_call(c);
        fail_now(c, PZ_ETIMEDOUT, "deadline passed");
    }
    for (guint i = 0; i < peers->len; i++)
        dispatch_peer(cl, peers->pdata[i]);
    g_ptr_array_free(peers, TRUE);
    arm_timer(cl);
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs client_funcs_timer = {NULL, NULL, timer_dispatch, NULL, NULL, NULL};
static GSourceFuncs client_funcs_completer = {NULL, NULL, completer_dispatch, NULL, NULL, NULL};

/* ------------------------------------------------------------------------ */
/* Connections. */

static peer *peer_get(pz_rpc_client *cl, const char *id)
{
    peer *p = g_hash_table_lookup(cl->peers, id);
    if (!p) {
        p = g_new0(peer, 1);
        p->id = g_strdup(id);
        p->conns = g_ptr_array_new();
        g_queue_init(&p->waiting);
        g_hash_table_insert(cl->peers, p->id, p);
    }
    return p;
}

static int ensure_mac(cconn *k)
{
    if (k->mac_state)
        return k->mac_state > 0;
    k->mac_state = -1;
    const pz_transport_provider *tp = pz_rpc_chan_transport(k->chan);
    uint8_t key[PZ_WIRE_MAC_KEY_LEN];
    pz_err err;
    pz_err_init(&err);
    if (tp->channel_binding &&
        tp->channel_binding(pz_rpc_chan_tconn(k->chan), PZ_WIRE_MAC_LABEL, key, sizeof(key), &err) == 0 &&
        pz_wire_mac_new(key, sizeof(key), &k->mac) == 0)
        k->mac_state = 1;
    pz_crypto_wipe(key, sizeof(key));
    pz_err_clear(&err);
    return k->mac_state > 0;
}

static void cconn_free(cconn *k)
{
    g_hash_table_destroy(k->calls);
    if (k->chan)
        pz_rpc_chan_unref(k->chan);
    pz_verify_key_free(k->pub);
    pz_wire_mac_free(k->mac);
    g_free(k);
}

/* The connection is gone (closed by us or failed): retry idempotent calls,
 * fail the others, free it. */
static void cconn_end(cconn *k, const char *why)
{
    pz_rpc_client *cl = k->client;
    peer *p = k->peer;
    pz_rpc_chan_close(k->chan);
    g_ptr_array_remove(p->conns, k);
    cl->stats.connections--;
    GPtrArray *calls = g_ptr_array_new();
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, k->calls);
    while (g_hash_table_iter_next(&it, NULL, &v))
        g_ptr_array_add(calls, v);
    g_hash_table_remove_all(k->calls);
    int64_t now = g_get_monotonic_time();
    for (guint i = 0; i < calls->len; i++) {
        ccall *c = calls->pdata[i];
        c->conn = NULL;
        c->state = CALL_NEW;
        if ((c->flags & PZ_RPC_IDEMPOTENT) && c->attempts < MAX_ATTEMPTS && c->deadline_us > now) {
            cl->stats.retries++;
            c->state = CALL_WAITING;
            c->qlink.data = c;
            g_queue_push_head_link(&p->waiting, &c->qlink);
        } else {
            fail_now(c, PZ_ECLOSED, why);
        }
    }
    g_ptr_array_free(calls, TRUE);
    cconn_free(k);
    dispatch_peer(cl, p);
}

/* Send CALL on K now. */
static void send_call(cconn *k, ccall *c)
{
    pz_rpc_client *cl = k->client;
    int mode = (c->flags & PZ_RPC_MAC) ? PZ_WIRE_MODE_MAC : PZ_WIRE_MODE_SIG;
    c->attempts++;
    if (mode == PZ_WIRE_MODE_MAC && !ensure_mac(k)) {
        fail_later(c, PZ_ENOTSUP, "mac mode needs a transport with channel binding");
        return;
    }
    if (pz_crypto_nonce(c->call_id, sizeof(c->call_id)) != 0) {
        fail_later(c, PZ_ECRYPTO, "random generator failed");
        return;
    }
    pz_wire_auth auth = {.mode = mode, .key = cl->key, .mac = k->mac};
    int64_t left_ms = (c->deadline_us - g_get_monotonic_time()) / 1000;
    uint32_t timeout = left_ms < 1 ? 1 : (left_ms > G_MAXUINT32 ? G_MAXUINT32 : (uint32_t)left_ms);
    int rc = pz_wire_request_encode(pz_rpc_chan_out(k->chan), cl->max_frame, c->method, real_ns(cl), c->call_id,
                                    cl->node_id, k->peer->id, timeout, c->params, &auth);
    if (rc) {
        fail_later(c, rc, rc == PZ_ERANGE ? "request exceeds max_frame_bytes" : "cannot encode the request");
        return;
    }
    if (!(c->flags & PZ_RPC_IDEMPOTENT) && c->params) {
        g_variant_unref(c->params); /* never sent again */
        c->params = NULL;
    }
    c->state = CALL_IN_FLIGHT;
    c->conn = k;
    g_hash_table_insert(k->calls, c->call_id, c);
    pz_rpc_chan_kick(k->chan);
}

/* Move waiting calls of P onto connections with room; ask for a new
 * connection when none has room and the pool may grow. */
static void dispatch_peer(pz_rpc_client *cl, peer *p)
{
    while (!g_queue_is_empty(&p->waiting)) {
        cconn *best = NULL;
        for (guint i = 0; i < p->conns->len; i++) {
            cconn *k = p->conns->pdata[i];
            guint n = g_hash_table_size(k->calls);
            if (n < cl->max_in_flight && (!best || n < g_hash_table_size(best->calls)))
                best = k;
        }
        if (!best || (g_hash_table_size(best->calls) > 0 && p->conns->len < cl->max_conns && !p->connecting &&
                      g_hash_table_size(best->calls) >= cl->max_in_flight / 2)) {
            if (p->conns->len < cl->max_conns && !p->connecting) {
                p->connecting = 1;
                cl->hooks.connect(cl->hooks.ud, cl, p->id);
            }
            if (!best)
                return;
        }
        GList *l = g_queue_pop_head_link(&p->waiting);
        ccall *c = l->data;
        c->state = CALL_NEW;
        send_call(best, c);
    }
}

static void cconn_frame(void *ud, pz_rpc_chan *chan, const uint8_t *frame, size_t len)
{
    cconn *k = ud;
    pz_rpc_client *cl = k->client;
    (void)chan;
    pz_wire_response resp;
    int kind;
    const char *why = NULL;
    if (pz_wire_decode(frame, len, &kind, NULL, &resp, &why) != 0) {
        cl->stats.bad_responses++;
        cconn_end(k, why ? why : "malformed response");
        return;
    }
    ccall *c = g_hash_table_lookup(k->calls, resp.call_id);
    if (!c) {
        cl->stats.unknown_responses++;
        return;
    }
    g_hash_table_remove(k->calls, c->call_id);
    c->conn = NULL;
    c->state = CALL_NEW;
    client_result cr = {{0}};
    pz_rpc_result res = {0};
    int close_conn = 0;
    const char *bad = NULL;
    if (strcmp(resp.sender, k->peer->id) != 0) {
        res.rc = PZ_EPROTO;
        bad = "response sender is not the target";
        close_conn = 1;
    } else if (resp.auth_len == 0) {
        if (resp.status == PZ_RPC_OK) {
            res.rc = PZ_ECRYPTO;
            bad = "unauthenticated success response";
            close_conn = 1;
        }
    } else {
        int mode = (c->flags & PZ_RPC_MAC) ? PZ_WIRE_MODE_MAC : PZ_WIRE_MODE_SIG;
        pz_wire_auth auth = {.mode = mode, .pub = k->pub, .mac = k->mac};
        if (pz_wire_response_verify(&resp, &auth) != 0) {
            res.rc = PZ_ECRYPTO;
            bad = mode == PZ_WIRE_MODE_MAC ? "bad response MAC" : "bad response signature";
            close_conn = 1;
        } else {
            res.authenticated = 1;
        }
    }
    if (!res.rc) {
        uint64_t now = real_ns(cl);
        uint64_t diff = now > resp.timestamp_ns ? now - resp.timestamp_ns : resp.timestamp_ns - now;
        if (diff > cl->skew_ns) {
            res.rc = PZ_ESTALE;
            bad = "response timestamp outside the allowed skew";
        }
    }
    GVariant *data = NULL;
    if (!res.rc && resp.status == PZ_RPC_OK) {
        /* The data leave the frame (callers may keep them). */
        data = pz_wire_value_dup(&resp.data);
        if (!data) {
            res.rc = PZ_ENOMEM;
            bad = "out of memory for the response data";
        }
    }
    if (res.rc) {
        cl->stats.bad_responses++;
        res.message = bad;
    } else {
        res.status = resp.status;
        res.message = resp.message[0] ? resp.message : NULL;
        res.timestamp_ns = resp.timestamp_ns;
        res.data = data;
        if (resp.status == PZ_RPC_RATE_LIMITED)
            cr.retry_after_ms = retry_hint(&resp.data);
    }
    /* K is not touched after the callback, which may close it. Peers live
     * as long as the client. */
    peer *p = k->peer;
    if (close_conn)
        cconn_end(k, "connection closed after a bad response");
    cr.pub = res;
    deliver(c, &cr);
    if (data)
        g_variant_unref(data);
    if (!close_conn)
        dispatch_peer(cl, p);
}

static void cconn_closed(void *ud, pz_rpc_chan *chan, int code, const char *why)
{
    (void)chan;
    (void)code;
    cconn_end(ud, why);
}

static const pz_rpc_chan_ops cconn_ops = {cconn_frame, cconn_closed};

/* ------------------------------------------------------------------------ */
/* Public API. */

static void peer_free(gpointer p_)
{
    peer *p = p_;
    g_ptr_array_free(p->conns, TRUE);
    g_free(p->id);
    g_free(p);
}

PZ_API int pz_rpc_client_new(const pz_rpc_client_config *cfg, pz_rpc_client **out, GError **error)
{
    *out = NULL;
    if (!cfg || cfg->struct_size < sizeof(*cfg) || !pz_wire_node_id_valid(cfg->node_id) || !cfg->key ||
        !cfg->hooks || !cfg->hooks->connect)
        return pz_rpc_set_error(error, PZ_EINVAL,
                                "rpc client: a valid node id, a signing key and a connect hook are required");
    size_t max_frame = cfg->max_frame_bytes ? cfg->max_frame_bytes : DEFAULT_MAX_FRAME;
    if (max_frame < PZ_FRAME_MIN_MAX || max_frame > PZ_FRAME_MAX_MAX)
        return pz_rpc_set_error(error, PZ_ERANGE, "rpc client: max_frame_bytes %zu out of range", max_frame);
    pz_rpc_client *cl = g_new0(pz_rpc_client, 1);
    cl->node_id = g_strdup(cfg->node_id);
    cl->key = cfg->key;
    cl->ctx = cfg->context ? g_main_context_ref(cfg->context) : g_main_context_ref_thread_default();
    size_t n = cfg->hooks->struct_size < sizeof(cl->hooks) ? cfg->hooks->struct_size : sizeof(cl->hooks);
    memcpy(&cl->hooks, cfg->hooks, n);
    cl->skew_ns = cfg->skew_ns ? cfg->skew_ns : DEFAULT_SKEW_NS;
    cl->max_frame = max_frame;
    cl->max_conns = cfg->max_conns_per_peer ? cfg->max_conns_per_peer : DEFAULT_MAX_CONNS;
    cl->max_in_flight = cfg->max_in_flight ? cfg->max_in_flight : DEFAULT_MAX_IN_FLIGHT;
    cl->max_queued = cfg->max_queued ? cfg->max_queued : DEFAULT_MAX_QUEUED;
    cl->default_timeout_ms = cfg->default_timeout_ms ? cfg->default_timeout_ms : DEFAULT_TIMEOUT_MS;
    cl->peers = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, peer_free);
    cl->marks = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    cl->deadlines = g_sequence_new(NULL);
    g_queue_init(&cl->completions);
    cl->timer = (client_source *)g_source_new(&client_funcs_timer, sizeof(client_source));
    cl->timer->client = cl;
    g_source_set_name(&cl->timer->source, "prozsec rpc client deadlines");
    g_source_attach(&cl->timer->source, cl->ctx);
    cl->completer = (client_source *)g_source_new(&client_funcs_completer, sizeof(client_source));
    cl->completer->client = cl;
    g_source_set_name(&cl->completer->source, "prozsec rpc client completions");
    g_source_attach(&cl->completer->source, cl->ctx);
    *out = cl;
    return 0;
}

PZ_API void pz_rpc_client_free(pz_rpc_client *cl)
{
    if (!cl)
        return;
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, cl->peers);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        peer *p = v;
        while (p->conns->len) {
            cconn *k = p->conns->pdata[0];
            GHashTableIter ci;
            gpointer cv;
            g_hash_table_iter_init(&ci, k->calls);
            while (g_hash_table_iter_next(&ci, NULL, &cv)) {
                ccall *c = cv;
                c->conn = NULL;
                c->state = CALL_NEW;
                c->qlink.data = c;
                c->rc = PZ_ECLOSED;
                g_queue_push_tail_link(&cl->completions, &c->qlink);
                c->state = CALL_COMPLETING;
            }
            g_hash_table_remove_all(k->calls);
            pz_rpc_chan_close(k->chan);
            g_ptr_array_remove_index(p->conns, 0);
            cl->stats.connections--;
            cconn_free(k);
        }
        while (!g_queue_is_empty(&p->waiting)) {
            GList *l = g_queue_pop_head_link(&p->waiting);
            ccall *c = l->data;
            c->state = CALL_COMPLETING;
            c->rc = PZ_ECLOSED;
            g_queue_push_tail_link(&cl->completions, l);
        }
    }
    while (!g_queue_is_empty(&cl->completions)) {
        GList *l = g_queue_pop_head_link(&cl->completions);
        ccall *c = l->data;
        int rc = c->rc == PZ_ECLOSED ? PZ_ECLOSED : c->rc;
        fail_now(c, rc, c->rc == PZ_ECLOSED ? "client closed" : c->msg);
    }
    g_source_destroy(&cl->timer->source);
    g_source_unref(&cl->timer->source);
    g_source_destroy(&cl->completer->source);
    g_source_unref(&cl->completer->source);
    g_sequence_free(cl->deadlines);
    g_hash_table_destroy(cl->peers);
    g_hash_table_destroy(cl->marks);
    g_main_context_unref(cl->ctx);
    g_free(cl->node_id);
    g_free(cl);
}

PZ_API int pz_rpc_client_mark(pz_rpc_client *cl, const char *method, unsigned flags)
{
    if (!pz_wire_method_valid(method) || (flags & ~(unsigned)(PZ_RPC_MAC | PZ_RPC_IDEMPOTENT)))
        return PZ_EINVAL;
    g_hash_table_insert(cl->marks, g_strdup(method), GUINT_TO_POINTER(flags));
    return 0;
}

PZ_API int pz_rpc_client_add_connection(pz_rpc_client *cl, const char *peer_id, const pz_transport_provider *tp,
                                        void *tconn, const pz_identity *server, GError **error)
{
    int rc = 0;
    if (!pz_wire_node_id_valid(peer_id) || !server || !server->node_id || strcmp(server->node_id, peer_id) != 0) {
        if (tp && tp->close && tconn)
            tp->close(tconn);
        rc = pz_rpc_set_error(error, PZ_EPERM, "rpc client: the server's node id '%s' is not the peer dialled '%s'",
                              server && server->node_id ? server->node_id : "(none)", peer_id ? peer_id : "(none)");
        if (peer_id && pz_wire_node_id_valid(peer_id)) {
            peer *p = g_hash_table_lookup(cl->peers, peer_id);
            if (p && p->connecting)
                pz_rpc_client_connect_failed(cl, peer_id, PZ_EPERM, "server identity is not the peer dialled");
        }
        return rc;
    }
    peer *p = peer_get(cl, peer_id);
    cconn *k = g_new0(cconn, 1);
    k->client = cl;
    k->peer = p;
    k->calls = g_hash_table_new(id_hash, id_equal);
    if (server->sign_pub && pz_verify_key_new(server->sign_pub, &k->pub) != 0)
        k->pub = NULL; /* signed responses will not verify */
    rc = pz_rpc_chan_new(cl->ctx, tp, tconn, cl->max_frame, 4 * cl->max_frame + 65536, &cconn_ops, k, &k->chan);
    if (rc) {
        cconn_free(k);
        p->connecting = 0;
        pz_rpc_client_connect_failed(cl, peer_id, rc, "cannot use the connection");
        return pz_rpc_set_error(error, rc, "rpc client: cannot use the connection: %s", pz_strerror(rc));
    }
    g_ptr_array_add(p->conns, k);
    cl->stats.connections++;
    p->connecting = 0;
    dispatch_peer(cl, p);
    return 0;
}

PZ_API void pz_rpc_client_connect_failed(pz_rpc_client *cl, const char *peer_id, int code, const char *message)
{
    peer *p = peer_id ? g_hash_table_lookup(cl->peers, peer_id) : NULL;
    if (!p)
        return;
    p->connecting = 0;
    if (p->conns->len > 0)
        return; /* the calls wait for room on the connections there are */
    while (!g_queue_is_empty(&p->waiting)) {
        GList *l = g_queue_pop_head_link(&p->waiting);
        ccall *c = l->data;
        c->state = CALL_NEW;
        fail_later(c, code ? code : PZ_EIO, message ? message : "cannot connect");
    }
}

PZ_API int pz_rpc_client_call(pz_rpc_client *cl, const char *peer_id, const char *method, GVariant *params,
                              const pz_rpc_call_opts *opts, pz_rpc_done_fn done, void *user_data)
{
    if (params)
        g_variant_ref_sink(params);
    int rc = 0;
    if (!cl || !done || !pz_wire_method_valid(method) || !pz_wire_node_id_valid(peer_id) ||
        (opts && opts->struct_size < sizeof(*opts))) {
        rc = PZ_EINVAL;
        goto out;
    }
    peer *p = peer_get(cl, peer_id);
    if (p->waiting.length >= cl->max_queued) {
        rc = PZ_EAGAIN;
        goto out;
    }
    ccall *c = g_new0(ccall, 1);
    c->client = cl;
    c->peer = p;
    c->method = g_strdup(method);
    c->params = params;
    params = NULL;
    c->flags = GPOINTER_TO_UINT(g_hash_table_lookup(cl->marks, method)) | (opts ? opts->flags : 0);
    c->timeout_ms = opts && opts->timeout_ms ? opts->timeout_ms : cl->default_timeout_ms;
    c->deadline_us = g_get_monotonic_time() + (int64_t)c->timeout_ms * 1000;
    c->done = done;
    c->ud = user_data;
    c->dl = g_sequence_insert_sorted(cl->deadlines, c, deadline_cmp, NULL);
    if (g_sequence_iter_is_begin(c->dl))
        arm_timer(cl);
    cl->stats.calls++;
    cl->stats.in_flight++;
    c->state = CALL_WAITING;
    c->qlink.data = c;
    g_queue_push_tail_link(&p->waiting, &c->qlink);
    dispatch_peer(cl, p);
out:
    if (params)
        g_variant_unref(params);
    return rc;
}

typedef struct sync_wait {
    int done;
    int rc;
    int32_t status;
    uint32_t retry_after_ms;
    char *message;
    GVariant *data;
} sync_wait;

static void sync_done(const pz_rpc_result *res, void *ud)
{
    sync_wait *w = ud;
    w->done = 1;
    w->rc = res->rc;
    w->status = res->status;
    w->retry_after_ms = pz_rpc_result_retry_after_ms(res);
    w->message = g_strdup(res->message);
    if (res->data)
        w->data = g_variant_ref(res->data);
}

PZ_API int pz_rpc_client_call_sync(pz_rpc_client *cl, const char *peer_id, const char *method, GVariant *params,
                                   const pz_rpc_call_opts *opts, GVariant **data, int32_t *status, GError **error)
{
    sync_wait w = {0};
    if (data)
        *data = NULL;
    if (status)
        *status = -1;
    int rc = pz_rpc_client_call(cl, peer_id, method, params, opts, sync_done, &w);
    if (rc)
        return pz_rpc_set_error(error, rc, "rpc call %s to %s: %s", method ? method : "?", peer_id ? peer_id : "?",
                                pz_strerror(rc));
    while (!w.done)
        g_main_context_iteration(cl->ctx, TRUE);
    if (status && w.rc == 0)
        *status = w.status;
    if (w.rc) {
        rc = pz_rpc_set_error(error, w.rc, "rpc call %s to %s: %s", method, peer_id, w.message);
    } else if (w.status != PZ_RPC_OK) {
        if (w.retry_after_ms)
            rc = pz_rpc_set_error(error, PZ_EREFUSED, "rpc call %s to %s refused: %s (%s; retry after %" G_GUINT32_FORMAT " ms)",
                                  method, peer_id, pz_rpc_status_name(w.status), w.message, w.retry_after_ms);
        else
            rc = pz_rpc_set_error(error, PZ_EREFUSED, "rpc call %s to %s refused: %s (%s)", method, peer_id,
                                  pz_rpc_status_name(w.status), w.message);
    } else if (data) {
        *data = w.data;
        w.data = NULL;
    }
    if (w.data)
        g_variant_unref(w.data);
    g_free(w.message);
    return rc;
}

PZ_API void pz_rpc_client_close_peer(pz_rpc_client *cl, const char *peer_id)
{
    peer *p = peer_id ? g_hash_table_lookup(cl->peers, peer_id) : NULL;
    if (!p)
        return;
    while (p->conns->len) {
        cconn *k = p->conns->pdata[0];
        /* No retry: the caller asked for these connections to go. */
        GHashTableIter it;
        gpointer v;
        g_hash_table_iter_init(&it, k->calls);
        while (g_hash_table_iter_next(&it, NULL, &v))
            ((ccall *)v)->attempts = MAX_ATTEMPTS;
        cconn_end(k, "connection closed by the client");
    }
}

PZ_API void pz_rpc_client_get_stats(const pz_rpc_client *cl, pz_rpc_client_stats *stats)
{
    *stats = cl->stats;
}
