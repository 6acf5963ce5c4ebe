/* core/rpc_server.c — the RPC server: per-request pipeline (rate limit,
 * context verification, replay cache, authorization, handler, response),
 * calls in flight with deadlines, and the replay cache (see rpc_server.h,
 * prozsec/rpc.h and docs/internals/rpc.md). */
#include "config.h"

#include <string.h>

#include "audit.h"
#include "crypto.h"
#include "err.h"
#include "rpc_chan.h"
#include "rpc_frame.h"
#include "rpc_server.h"
#include "rpc_wire.h"

#define DEFAULT_SKEW_NS (30ull * 1000000000ull)
#define DEFAULT_REPLAY_MAX 262144u
#define DEFAULT_MAX_FRAME (1024u * 1024)
#define DEFAULT_MAX_IN_FLIGHT 256u
#define DEFAULT_MAX_TIMEOUT_MS 300000u
#define DEFAULT_TIMEOUT_MS 30000u

/* ------------------------------------------------------------------------ */
/* Replay cache. */

typedef struct replay_entry {
    uint64_t timestamp_ns;
    uint64_t expiry_ns;
    guint hash;
    uint8_t id[PZ_RPC_CALL_ID_LEN];
    char caller[]; /* NUL-terminated */
} replay_entry;

struct pz_replay_cache {
    GHashTable *set; /* replay_entry* (owned by FIFO) */
    GQueue fifo;     /* arrival order */
    size_t max;
    uint64_t skew_ns;
    uint64_t floor_ns; /* timestamps <= floor are refused */
    uint64_t k0, k1;   /* hash key */
};

static guint entry_hash(gconstpointer p)
{
    return ((const replay_entry *)p)->hash;
}

static gboolean entry_equal(gconstpointer a, gconstpointer b)
{
    const replay_entry *x = a, *y = b;
    return memcmp(x->id, y->id, PZ_RPC_CALL_ID_LEN) == 0 && strcmp(x->caller, y->caller) == 0;
}

static guint keyed_hash(const pz_replay_cache *c, const char *caller, const uint8_t *id)
{
    uint64_t a, b;
    memcpy(&a, id, 8);
    memcpy(&b, id + 8, 8);
    /* Call ids are chosen by the (authenticated) caller: mix with a random
     * key so colliding ids cannot be precomputed. */
    uint64_t h = (a ^ c->k0) * (c->k1 | 1);
    h ^= (b + c->k1) * 0x9e3779b97f4a7c15ull;
    h ^= h >> 29;
    return (guint)(h ^ (h >> 32)) ^ g_str_hash(caller);
}

pz_replay_cache *pz_replay_cache_new(size_t max, uint64_t skew_ns)
{
    pz_replay_cache *c = g_new0(pz_replay_cache, 1);
    c->set = g_hash_table_new(entry_hash, entry_equal);
    g_queue_init(&c->fifo);
    c->max = max ? max : 1;
    c->skew_ns = skew_ns;
    if (pz_crypto_nonce(&c->k0, sizeof(c->k0)) != 0 || pz_crypto_nonce(&c->k1, sizeof(c->k1)) != 0) {
        c->k0 = (uint64_t)g_get_monotonic_time() * 0x2545f4914f6cdd1dull;
        c->k1 = (uint64_t)g_random_int() << 32 | g_random_int();
    }
    return c;
}

void pz_replay_cache_free(pz_replay_cache *c)
{
    if (!c)
        return;
    g_hash_table_destroy(c->set);
    g_queue_clear_full(&c->fifo, g_free);
    g_free(c);
}

size_t pz_replay_cache_size(const pz_replay_cache *c)
{
    return g_hash_table_size(c->set);
}

static void drop_head(pz_replay_cache *c)
{
    replay_entry *e = g_queue_pop_head(&c->fifo);
    g_hash_table_remove(c->set, e);
    g_free(e);
}

int pz_replay_cache_check(pz_replay_cache *c, const char *caller, const uint8_t id[PZ_RPC_CALL_ID_LEN],
                          uint64_t timestamp_ns, uint64_t now_ns)
{
    /* Expire from the head: arrival order is close to timestamp order, and
     * an entry kept a little longer only costs memory within the bound. */
    while (!g_queue_is_empty(&c->fifo)) {
        replay_entry *h = g_queue_peek_head(&c->fifo);
        if (h->expiry_ns >= now_ns)
            break;
        drop_head(c);
    }
    if (timestamp_ns <= c->floor_ns)
        return PZ_EREPLAY;
    size_t clen = strlen(caller);
    replay_entry *e = g_malloc(sizeof(*e) + clen + 1);
    memcpy(e->id, id, PZ_RPC_CALL_ID_LEN);
    memcpy(e->caller, caller, clen + 1);
    e->timestamp_ns = timestamp_ns;
    e->expiry_ns = timestamp_ns + c->skew_ns;
    e->hash = keyed_hash(c, caller, id);
    if (g_hash_table_contains(c->set, e)) {
        g_free(e);
        return PZ_EREPLAY;
    }
    while (g_hash_table_size(c->set) >= c->max) {
        replay_entry *h = g_queue_peek_head(&c->fifo);
        if (h->timestamp_ns > c->floor_ns)
            c->floor_ns = h->timestamp_ns;
        drop_head(c);
    }
    if (timestamp_ns <= c->floor_ns) {
        /* Evicting raised the floor over this call: refusing is the only
         * answer that cannot admit a replay. */
        g_free(e);
        return PZ_EREPLAY;
    }
    g_hash_table_add(c->set, e);
    g_queue_push_tail(&c->fifo, e);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Server structures. */

typedef struct rpc_method {
    char *name;
    pz_rpc_handler handler;
    void *ud;
    unsigned flags;
    uint32_t cost;
} rpc_method;

typedef struct timer_source {
    GSource source;
    pz_rpc_server *server;
} timer_source;

struct pz_rpc_conn {
    pz_rpc_server *server;
    pz_rpc_chan *chan;
    pz_identity id;
    char *node_id, *node_type, *source;
    char **roles;
    uint8_t sign_pub[32], e2e_pub[32];
    pz_addr addr;
    pz_verify_key *pub; /* the peer's signing key, imported once */
    pz_wire_mac *mac;
    int mac_state; /* 0 not tried, 1 ready, -1 unavailable */
    size_t in_flight;
    pz_rpc_call *calls; /* doubly linked list of unanswered calls */
    GList link;         /* in server->conns */
};

struct pz_rpc_call {
    pz_rpc_server *server; /* NULL once orphaned by server free */
    pz_rpc_conn *conn;     /* NULL once orphaned */
    pz_rpc_call *prev, *next;
    GSequenceIter *deadline_iter;
    char method[PZ_RPC_METHOD_MAX + 1];
    uint8_t call_id[PZ_RPC_CALL_ID_LEN];
    uint8_t mode;
    int in_handler;
    int answered;
    int64_t arrival_us;
    int64_t deadline_us;
};

struct pz_rpc_server {
    char *node_id;
    const pz_rpc_key *key;
    GMainContext *ctx;
    pz_rpc_server_hooks hooks;
    pz_audit_log *audit;
    uint64_t skew_ns;
    size_t max_frame;
    size_t max_in_flight;
    uint32_t max_timeout_ms;
    GHashTable *methods; /* name -> method* */
    GQueue conns;
    pz_replay_cache *replay;
    GSequence *deadlines; /* pz_rpc_call* by deadline */
    timer_source *timer;
    pz_rpc_server_stats stats;
    int draining;
};

static const pz_rpc_chan_ops conn_ops;

static uint64_t real_ns(const pz_rpc_server *s)
{
    if (s->hooks.realtime_ns)
        return s->hooks.realtime_ns(s->hooks.ud);
    return (uint64_t)g_get_real_time() * 1000u;
}

static void emit(pz_rpc_server *s, pz_rpc_conn *c, pz_behavior b, const char *detail)
{
    if (!s->hooks.behavior)
        return;
    pz_behavior_event ev = {
        .struct_size = sizeof(ev),
        .behavior = b,
        .node_id = c ? c->id.node_id : NULL,
        .now_ns = (uint64_t)g_get_monotonic_time() * 1000u,
        .detail = detail,
    };
    if (c)
        ev.addr = c->addr;
    s->hooks.behavior(s->hooks.ud, &ev);
}

static void count_status(pz_rpc_server *s, int32_t status)
{
    if (status < 0 || status >= PZ_RPC_STATUS__COUNT)
        status = PZ_RPC_HANDLER_ERROR;
    s->stats.by_status[status]++;
}

/* Sign (AUTHENTICATED) or not and queue a response on C. */
static void respond(pz_rpc_conn *c, const uint8_t *call_id, uint8_t mode, int authenticated, int32_t status,
                    const char *message, GVariant *data)
{
    pz_rpc_server *s = c->server;
    pz_wire_auth auth = {0};
    if (authenticated) {
        auth.mode = mode;
        auth.key = s->key;
        auth.mac = c->mac;
    }
    GByteArray *out = pz_rpc_chan_out(c->chan);
    uint64_t now = real_ns(s);
    int rc = pz_wire_response_encode(out, s->max_frame, data, call_id, now, s->node_id, status, message, &auth);
    if (rc == PZ_ERANGE) {
        status = PZ_RPC_HANDLER_ERROR;
        rc = pz_wire_response_encode(out, s->max_frame, NULL, call_id, now, s->node_id, status,
                                     "response exceeds max_frame_bytes", &auth);
    }
    if (rc) {
        /* Signing failed: a connection-level fault, not the caller's. */
        g_warning("rpc: cannot encode a response: %s", pz_strerror(rc));
        return;
    }
    pz_rpc_chan_kick(c->chan);
}

static void finish(pz_rpc_server *s, pz_rpc_conn *c, const char *method, int32_t status, int64_t arrival_us,
                   const char *reason)
{
    count_status(s, status);
    if (s->hooks.call_done) {
        int64_t d = g_get_monotonic_time() - arrival_us;
        s->hooks.call_done(s->hooks.ud, c ? &c->id : NULL, method, status, d > 0 ? (uint64_t)d * 1000u : 0,
                           reason);
    }
}

/* Refuse a request: behaviour event, counted reason, response. */
static void refuse(pz_rpc_conn *c, const pz_wire_request *req, int authenticated, int32_t status,
                   pz_behavior behavior, const char *reason, int64_t arrival_us)
{
    pz_rpc_server *s = c->server;
    emit(s, c, behavior, reason);
    respond(c, req->call_id, req->mode, authenticated, status, reason, NULL);
    finish(s, c, req->method, status, arrival_us, reason);
}

/* Refuse a rate-limited request, with the retry hint RETRY_MS (0: none) in
 * the response data. */
static void refuse_rate_limited(pz_rpc_conn *c, const pz_wire_request *req, uint32_t retry_ms, int64_t arrival_us)
{
    pz_rpc_server *s = c->server;
    const char *reason = "rate limited";
    GVariant *data = NULL;
    if (retry_ms) {
        GVariantBuilder b;
        g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
        g_variant_builder_add(&b, "{sv}", PZ_WIRE_RETRY_AFTER_KEY, g_variant_new_uint32(retry_ms));
        data = g_variant_ref_sink(g_variant_builder_end(&b));
    }
    emit(s, c, PZ_BEHAVIOR_RATE_LIMITED, reason);
    respond(c, req->call_id, req->mode, 0, PZ_RPC_RATE_LIMITED, reason, data);
    finish(s, c, req->method, PZ_RPC_RATE_LIMITED, arrival_us, reason);
    if (data)
        g_variant_unref(data);
}

/* ------------------------------------------------------------------------ */
/* Calls and deadlines. */

static gint deadline_cmp(gconstpointer a, gconstpointer b, gpointer ud)
{
    (void)ud;
    const pz_rpc_call *x = a, *y = b;
    if (x->deadline_us != y->deadline_us)
        return x->deadline_us < y->deadline_us ? -1 : 1;
    return x < y ? -1 : (x > y ? 1 : 0);
}

static void arm_timer(pz_rpc_server *s)
{
    GSequenceIter *first = g_sequence_get_begin_iter(s->deadlines);
    if (g_sequence_iter_is_end(first)) {
        g_source_set_ready_time(&s->timer->source, -1);
        return;
    }
    pz_rpc_call *call = g_sequence_get(first);
    g_source_set_ready_time(&s->timer->source, call->deadline_us);
}

/* Detach CALL from its connection (answered, expired or orphaned). */
static void call_detach(pz_rpc_call *call)
{
    pz_rpc_conn *c = call->conn;
    if (call->deadline_iter) {
        g_sequence_remove(call->deadline_iter);
        call->deadline_iter = NULL;
    }
    if (!c)
        return;
    if (call->prev)
        call->prev->next = call->next;
    else
        c->calls = call->next;
    if (call->next)
        call->next->prev = call->prev;
    call->prev = call->next = NULL;
    call->conn = NULL;
    c->in_flight--;
    c->server->stats.in_flight--;
    if (c->in_flight < c->server->max_in_flight)
        pz_rpc_chan_pause(c->chan, 0);
}

static void call_answer(pz_rpc_call *call, int32_t status, const char *message, GVariant *data)
{
    if (data)
        g_variant_ref_sink(data);
    pz_rpc_conn *c = call->conn;
    if (!call->answered && c) {
        pz_rpc_server *s = c->server;
        respond(c, call->call_id, call->mode, 1, status, message, data);
        finish(s, c, call->method, status, call->arrival_us, status == PZ_RPC_OK ? "ok" : message);
        call_detach(call);
        if (s->deadlines)
            arm_timer(s);
    }
    call->answered = 1;
    if (data)
        g_variant_unref(data);
    if (!call->in_handler) {
        call_detach(call);
        g_free(call);
    }
}

PZ_API void pz_rpc_call_return(pz_rpc_call *call, GVariant *data)
{
    call_answer(call, PZ_RPC_OK, NULL, data);
}

PZ_API void pz_rpc_call_fail(pz_rpc_call *call, int32_t status, const char *message)
{
    if (status != PZ_RPC_BAD_REQUEST && status != PZ_RPC_HANDLER_ERROR && status < PZ_RPC_STATUS_APP)
        status = PZ_RPC_HANDLER_ERROR;
    call_answer(call, status, message ? message : pz_rpc_status_name(status), NULL);
}

PZ_API const char *pz_rpc_call_method(const pz_rpc_call *call)
{
    return call->method;
}

PZ_API const pz_identity *pz_rpc_call_peer(const pz_rpc_call *call)
{
    return call->conn ? &call->conn->id : NULL;
}

PZ_API int64_t pz_rpc_call_deadline(const pz_rpc_call *call)
{
    return call->deadline_us;
}

PZ_API int pz_rpc_call_expired(const pz_rpc_call *call)
{
    return call->answered || !call->conn || g_get_monotonic_time() >= call->deadline_us;
}

static gboolean timer_dispatch(GSource *source, GSourceFunc cb, gpointer data)
{
    (void)cb;
    (void)data;
    pz_rpc_server *s = ((timer_source *)source)->server;
    int64_t now = g_get_monotonic_time();
    for (;;) {
        GSequenceIter *first = g_sequence_get_begin_iter(s->deadlines);
        if (g_sequence_iter_is_end(first))
            break;
        pz_rpc_call *call = g_sequence_get(first);
        if (call->deadline_us > now)
            break;
        pz_rpc_conn *c = call->conn;
        g_sequence_remove(first);
        call->deadline_iter = NULL;
        /* The handler still owns CALL; answer for it and drop its later
         * answer. */
        respond(c, call->call_id, call->mode, 1, PZ_RPC_TIMEOUT, "deadline passed", NULL);
        finish(s, c, call->method, PZ_RPC_TIMEOUT, call->arrival_us, "deadline passed");
        call_detach(call);
    }
    arm_timer(s);
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs timer_funcs = {NULL, NULL, timer_dispatch, NULL, NULL, NULL};

/* ------------------------------------------------------------------------ */
/* The request pipeline. */

static int ensure_mac(pz_rpc_conn *c)
{
    if (c->mac_state)
        return c->mac_state > 0;
    c->mac_state = -1;
    const pz_transport_provider *tp = pz_rpc_chan_transport(c->chan);
    uint8_t key[PZ_WIRE_MAC_KEY_LEN];
    pz_err err;
    pz_err_init(&err);
    if (tp->channel_binding &&
        tp->channel_binding(pz_rpc_chan_tconn(c->chan), PZ_WIRE_MAC_LABEL, key, sizeof(key), &err) == 0 &&
        pz_wire_mac_new(key, sizeof(key), &c->mac) == 0)
        c->mac_state = 1;
    pz_crypto_wipe(key, sizeof(key));
    pz_err_clear(&err);
    return c->mac_state > 0;
}

static void handle_request(pz_rpc_conn *c, pz_wire_request *req)
{
    pz_rpc_server *s = c->server;
    int64_t arrival = g_get_monotonic_time();
    s->stats.requests++;
    if (s->draining) {
        respond(c, req->call_id, req->mode, 0, PZ_RPC_UNAVAILABLE, "server shutting down", NULL);
        finish(s, c, req->method, PZ_RPC_UNAVAILABLE, arrival, "server shutting down");
        return;
    }
    rpc_method *m = g_hash_table_lookup(s->methods, req->method);
    uint32_t cost = m ? m->cost : 1;

    /* 1. Rate limiters, before any crypto. */
    if (s->hooks.rate_limit_retry || s->hooks.rate_limit) {
        int allowed = 1;
        uint32_t retry_ms = 0;
        uint64_t now_mono = (uint64_t)arrival * 1000u;
        int hrc = s->hooks.rate_limit_retry
                      ? s->hooks.rate_limit_retry(s->hooks.ud, &c->id, &c->addr, req->method, cost, now_mono, &allowed,
                                            &retry_ms)
                      : s->hooks.rate_limit(s->hooks.ud, &c->id, &c->addr, req->method, cost, now_mono, &allowed);
        if (hrc != 0)
            allowed = 0;
        if (!allowed) {
            refuse_rate_limited(c, req, retry_ms, arrival);
            return;
        }
    }
    /* 2. The call context: integrity mode, caller, target, time, signature,
     * replay — the cheap checks first, the replay cache only after the
     * signature so it holds verified ids only. */
    int want_mode = m ? ((m->flags & PZ_RPC_MAC) ? PZ_WIRE_MODE_MAC : PZ_WIRE_MODE_SIG) : req->mode;
    if (req->mode != want_mode || (req->mode == PZ_WIRE_MODE_MAC && !ensure_mac(c))) {
        refuse(c, req, 0, PZ_RPC_MODE_MISMATCH, PZ_BEHAVIOR_PROTOCOL_VIOLATION,
               req->mode != want_mode ? "integrity mode differs from the method's"
                                      : "mac mode needs a transport with channel binding",
               arrival);
        return;
    }
    if (strcmp(req->caller, c->id.node_id) != 0) {
        refuse(c, req, 0, PZ_RPC_WRONG_CALLER, PZ_BEHAVIOR_PROTOCOL_VIOLATION,
               "caller is not the authenticated peer", arrival);
        return;
    }
    if (strcmp(req->target, s->node_id) != 0) {
        refuse(c, req, 0, PZ_RPC_WRONG_TARGET, PZ_BEHAVIOR_PROTOCOL_VIOLATION, "target is not this node", arrival);
        return;
    }
    uint64_t now = real_ns(s);
    uint64_t diff = now > req->timestamp_ns ? now - req->timestamp_ns : req->timestamp_ns - now;
    if (diff > s->skew_ns) {
        refuse(c, req, 0, PZ_RPC_STALE, PZ_BEHAVIOR_STALE_TIMESTAMP, "timestamp outside the allowed skew", arrival);
        return;
    }
    pz_wire_auth auth = {.mode = req->mode, .pub = c->pub, .mac = c->mac};
    if (pz_wire_request_verify(req, &auth) != 0) {
        refuse(c, req, 0, PZ_RPC_BAD_SIGNATURE, PZ_BEHAVIOR_INVALID_SIGNATURE,
               req->mode == PZ_WIRE_MODE_MAC ? "bad call context MAC" : "bad call context signature", arrival);
        return;
    }
    if (pz_replay_cache_check(s->replay, req->caller, req->call_id, req->timestamp_ns, now) != 0) {
        refuse(c, req, 0, PZ_RPC_REPLAY, PZ_BEHAVIOR_REPLAY, "call id already seen", arrival);
        return;
    }
    /* 3. Method and authorization (the context is authentic now: sign). */
    if (!m) {
        refuse(c, req, 1, PZ_RPC_NO_METHOD, PZ_BEHAVIOR_PROTOCOL_VIOLATION, "no such method", arrival);
        return;
    }
    if (s->hooks.authorize) {
        int allowed = 1;
        if (s->hooks.authorize(s->hooks.ud, &c->id, req->method, &allowed) != 0)
            allowed = 0;
        if (!allowed) {
            refuse(c, req, 1, PZ_RPC_UNAUTHORIZED, PZ_BEHAVIOR_UNAUTHORIZED_METHOD, "method not authorized",
                   arrival);
            return;
        }
    }
    if ((m->flags & PZ_RPC_AUDIT) && s->audit) {
        GError *gerr = NULL;
        if (pz_audit_append(s->audit, now, req->caller, req->signed_part, req->signed_len, req->auth, req->auth_len,
                            &gerr) != 0) {
            /* Without its evidence an audited method does not run. */
            g_warning("rpc: audit log: %s", gerr->message);
            g_error_free(gerr);
            respond(c, req->call_id, req->mode, 1, PZ_RPC_UNAVAILABLE, "audit log unavailable", NULL);
            finish(s, c, req->method, PZ_RPC_UNAVAILABLE, arrival, "audit log unavailable");
            return;
        }
    }
    emit(s, c, PZ_BEHAVIOR_VALID_REQUEST, NULL);

    /* 4. The handler, with the call's deadline. The params leave the frame
     * (handlers may keep them): the only copy of a request's bytes. */
    pz_rpc_call *call = g_try_new0(pz_rpc_call, 1);
    GVariant *params = call ? pz_wire_value_dup(&req->params) : NULL;
    if (!params) {
        g_free(call);
        respond(c, req->call_id, req->mode, 1, PZ_RPC_UNAVAILABLE, "out of memory", NULL);
        finish(s, c, req->method, PZ_RPC_UNAVAILABLE, arrival, "out of memory");
        return;
    }
    uint32_t timeout = req->timeout_ms ? req->timeout_ms : DEFAULT_TIMEOUT_MS;
    if (timeout > s->max_timeout_ms)
        timeout = s->max_timeout_ms;
    call->server = s;
    call->conn = c;
    g_strlcpy(call->method, req->method, sizeof(call->method));
    memcpy(call->call_id, req->call_id, PZ_RPC_CALL_ID_LEN);
    call->mode = req->mode;
    call->arrival_us = arrival;
    call->deadline_us = arrival + (int64_t)timeout * 1000;
    call->next = c->calls;
    if (c->calls)
        c->calls->prev = call;
    c->calls = call;
    c->in_flight++;
    s->stats.in_flight++;
    if (c->in_flight >= s->max_in_flight)
        pz_rpc_chan_pause(c->chan, 1);

    call->in_handler = 1;
    m->handler(call, params, m->ud);
    call->in_handler = 0;
    g_variant_unref(params);
    if (call->answered) {
        call_detach(call);
        g_free(call);
        return;
    }
    if (call->conn) {
        call->deadline_iter = g_sequence_insert_sorted(s->deadlines, call, deadline_cmp, NULL);
        if (g_sequence_iter_is_begin(call->deadline_iter))
            arm_timer(s);
    }
}

static void conn_free(pz_rpc_conn *c);

static void conn_end(pz_rpc_conn *c, int code, const char *why)
{
    pz_rpc_server *s = c->server;
    while (c->calls)
        call_detach(c->calls); /* orphans: the handler's later answer frees them */
    arm_timer(s);
    g_queue_unlink(&s->conns, &c->link);
    s->stats.open_connections--;
    if (s->hooks.conn_closed)
        s->hooks.conn_closed(s->hooks.ud, c, code, why);
    conn_free(c);
}

static void on_frame(void *ud, pz_rpc_chan *chan, const uint8_t *frame, size_t len)
{
    pz_rpc_conn *c = ud;
    (void)chan;
    pz_wire_request req;
    int kind;
    const char *why = NULL;
    int rc = pz_wire_decode(frame, len, &kind, &req, NULL, &why);
    if (rc) {
        c->server->stats.malformed++;
        emit(c->server, c, PZ_BEHAVIOR_MALFORMED_FRAME, why ? why : "malformed envelope");
        pz_rpc_chan_close(c->chan);
        conn_end(c, PZ_EPROTO, why ? why : "malformed envelope");
        return;
    }
    handle_request(c, &req); /* REQ points into FRAME, valid until we return */
}

static void on_closed(void *ud, pz_rpc_chan *chan, int code, const char *why)
{
    pz_rpc_conn *c = ud;
    (void)chan;
    if (code == PZ_EPROTO) {
        c->server->stats.malformed++;
        emit(c->server, c, PZ_BEHAVIOR_MALFORMED_FRAME, why);
    }
    conn_end(c, code, why);
}

static const pz_rpc_chan_ops conn_ops = {on_frame, on_closed};

/* ------------------------------------------------------------------------ */
/* Server and connections. */

static void method_free(gpointer p)
{
    rpc_method *m = p;
    g_free(m->name);
    g_free(m);
}

PZ_API int pz_rpc_server_new(const pz_rpc_server_config *cfg, pz_rpc_server **out, GError **error)
{
    *out = NULL;
    if (!cfg || cfg->struct_size < sizeof(*cfg) || !pz_wire_node_id_valid(cfg->node_id) || !cfg->key)
        return pz_rpc_set_error(error, PZ_EINVAL, "rpc server: a valid node id and a signing key are required");
    size_t max_frame = cfg->max_frame_bytes ? cfg->max_frame_bytes : DEFAULT_MAX_FRAME;
    if (max_frame < PZ_FRAME_MIN_MAX || max_frame > PZ_FRAME_MAX_MAX)
        return pz_rpc_set_error(error, PZ_ERANGE, "rpc server: max_frame_bytes %zu out of range", max_frame);
    pz_rpc_server *s = g_new0(pz_rpc_server, 1);
    s->node_id = g_strdup(cfg->node_id);
    s->key = cfg->key;
    s->ctx = cfg->context ? g_main_context_ref(cfg->context) : g_main_context_ref_thread_default();
    if (cfg->hooks) {
        size_t n = cfg->hooks->struct_size < sizeof(s->hooks) ? cfg->hooks->struct_size : sizeof(s->hooks);
        memcpy(&s->hooks, cfg->hooks, n);
    }
    s->audit = cfg->audit;
    s->skew_ns = cfg->skew_ns ? cfg->skew_ns : DEFAULT_SKEW_NS;
    s->max_frame = max_frame;
    s->max_in_flight = cfg->max_in_flight ? cfg->max_in_flight : DEFAULT_MAX_IN_FLIGHT;
    s->max_timeout_ms = cfg->max_timeout_ms ? cfg->max_timeout_ms : DEFAULT_MAX_TIMEOUT_MS;
    s->methods = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, method_free);
    g_queue_init(&s->conns);
    s->replay = pz_replay_cache_new(cfg->replay_cache_max ? cfg->replay_cache_max : DEFAULT_REPLAY_MAX, s->skew_ns);
    s->deadlines = g_sequence_new(NULL);
    s->timer = (timer_source *)g_source_new(&timer_funcs, sizeof(timer_source));
    s->timer->server = s;
    g_source_set_name(&s->timer->source, "prozsec rpc server deadlines");
    g_source_attach(&s->timer->source, s->ctx);
    *out = s;
    return 0;
}

PZ_API void pz_rpc_server_free(pz_rpc_server *s)
{
    if (!s)
        return;
    while (!g_queue_is_empty(&s->conns)) {
        pz_rpc_conn *c = g_queue_peek_head_link(&s->conns)->data;
        pz_rpc_chan_close(c->chan);
        conn_end(c, PZ_ECLOSED, "server stopped");
    }
    g_source_destroy(&s->timer->source);
    g_source_unref(&s->timer->source);
    g_sequence_free(s->deadlines);
    pz_replay_cache_free(s->replay);
    g_hash_table_destroy(s->methods);
    g_main_context_unref(s->ctx);
    g_free(s->node_id);
    g_free(s);
}

PZ_API int pz_rpc_register(pz_rpc_server *s, const char *name, pz_rpc_handler handler, void *user_data,
                           unsigned flags)
{
    if (!s || !handler || !pz_wire_method_valid(name) || (flags & ~(unsigned)(PZ_RPC_MAC | PZ_RPC_AUDIT)))
        return PZ_EINVAL;
    if ((flags & PZ_RPC_MAC) && (flags & PZ_RPC_AUDIT))
        return PZ_EINVAL; /* a MAC proves nothing to a third party */
    if (g_hash_table_contains(s->methods, name))
        return PZ_EEXIST;
    rpc_method *m = g_new0(rpc_method, 1);
    m->name = g_strdup(name);
    m->handler = handler;
    m->ud = user_data;
    m->flags = flags;
    m->cost = 1;
    g_hash_table_insert(s->methods, m->name, m);
    return 0;
}

PZ_API int pz_rpc_server_set_cost(pz_rpc_server *s, const char *name, uint32_t cost)
{
    rpc_method *m = name ? g_hash_table_lookup(s->methods, name) : NULL;
    if (!m)
        return PZ_ENOENT;
    m->cost = cost;
    return 0;
}

static void conn_free(pz_rpc_conn *c)
{
    if (c->chan)
        pz_rpc_chan_unref(c->chan);
    pz_verify_key_free(c->pub);
    pz_wire_mac_free(c->mac);
    g_free(c->node_id);
    g_free(c->node_type);
    g_free(c->source);
    g_strfreev(c->roles);
    g_free(c);
}

PZ_API int pz_rpc_server_add_connection(pz_rpc_server *s, const pz_transport_provider *tp, void *tconn,
                                        const pz_identity *peer, const pz_addr *addr, pz_rpc_conn **out,
                                        GError **error)
{
    int rc = 0;
    if (out)
        *out = NULL;
    if (!peer || !pz_wire_node_id_valid(peer->node_id)) {
        if (tp && tp->close && tconn)
            tp->close(tconn);
        return pz_rpc_set_error(error, PZ_EINVAL, "rpc server: connection without a valid peer identity");
    }
    pz_rpc_conn *c = g_new0(pz_rpc_conn, 1);
    c->server = s;
    c->node_id = g_strdup(peer->node_id);
    c->node_type = g_strdup(peer->node_type ? peer->node_type : "");
    c->source = g_strdup(peer->source ? peer->source : "");
    c->roles = g_new0(char *, peer->n_roles + 1);
    for (size_t i = 0; i < peer->n_roles; i++)
        c->roles[i] = g_strdup(peer->roles[i]);
    c->id.struct_size = sizeof(c->id);
    c->id.node_id = c->node_id;
    c->id.node_type = c->node_type;
    c->id.roles = (const char *const *)c->roles;
    c->id.n_roles = peer->n_roles;
    c->id.source = c->source;
    if (peer->sign_pub) {
        memcpy(c->sign_pub, peer->sign_pub, 32);
        c->id.sign_pub = c->sign_pub;
        if (pz_verify_key_new(c->sign_pub, &c->pub) != 0)
            c->pub = NULL; /* signed calls will fail verification */
    }
    if (peer->e2e_pub) {
        memcpy(c->e2e_pub, peer->e2e_pub, 32);
        c->id.e2e_pub = c->e2e_pub;
    }
    if (addr)
        c->addr = *addr;
    rc = pz_rpc_chan_new(s->ctx, tp, tconn, s->max_frame, 4 * s->max_frame + 65536, &conn_ops, c, &c->chan);
    if (rc) {
        conn_free(c);
        return pz_rpc_set_error(error, rc, "rpc server: cannot serve the connection: %s", pz_strerror(rc));
    }
    c->link.data = c;
    g_queue_push_tail_link(&s->conns, &c->link);
    s->stats.connections++;
    s->stats.open_connections++;
    if (out)
        *out = c;
    return 0;
}

PZ_API void pz_rpc_conn_close(pz_rpc_conn *c)
{
    if (!c)
        return;
    pz_rpc_chan_close(c->chan);
    conn_end(c, PZ_ECLOSED, "closed by the server");
}

PZ_API const pz_identity *pz_rpc_conn_peer(const pz_rpc_conn *c)
{
    return &c->id;
}

PZ_API size_t pz_rpc_server_close_peer(pz_rpc_server *s, const char *node_id)
{
    size_t n = 0;
    GList *l = s->conns.head;
    while (l) {
        GList *next = l->next;
        pz_rpc_conn *c = l->data;
        if (strcmp(c->id.node_id, node_id) == 0) {
            pz_rpc_conn_close(c);
            n++;
        }
        l = next;
    }
    return n;
}

PZ_API size_t pz_rpc_server_drain(pz_rpc_server *s)
{
    s->draining = 1;
    return (size_t)s->stats.in_flight;
}

PZ_API void pz_rpc_server_get_stats(const pz_rpc_server *s, pz_rpc_server_stats *stats)
{
    *stats = s->stats;
    stats->replay_cache_entries = pz_replay_cache_size(s->replay);
}
