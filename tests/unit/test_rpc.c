/* tests/unit/test_rpc.c — RPC server and client over socketpairs: signed
 * calls, every refusal with its reason and behaviour event, response checks
 * in the client, pipelining, asynchronous handlers, deadlines, mac mode,
 * pool and retry, replay cache. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <glib.h>

#include "rpc_client.h"
#include "rpc_frame.h"
#include "rpc_server.h"
#include "rpc_testlib.h"
#include "rpc_wire.h"

#define MAX_FRAME (1024u * 1024)
/* Wide enough that a slow run (valgrind) never makes a call stale; the skew
 * tests step far outside it. */
#define SKEW_NS (600ull * 1000000000ull)

typedef struct fx {
    GMainContext *ctx;
    tl_node srv, cli, evil;
    pz_rpc_server *server;
    pz_rpc_client *client;
    int with_binding;
    int fail_connect;
    int connects;
    GArray *behaviors; /* pz_behavior */
    const char *deny;  /* method the authorization hook refuses */
    int rate_deny;
    uint32_t rate_retry_ms; /* what on_rate_retry gives a refusal */
    uint32_t last_cost;
    GPtrArray *held; /* pz_rpc_call* held by the "hold" handler */
    GPtrArray *later; /* "num" calls answered later */
    int closed_conns;
    int flaky;
    int tearing_down;
    void *raw;        /* test side of a raw connection */
    pz_verify_key *srv_pub;
    uint8_t *frame;   /* the last frame raw_call read: decoded responses point into it */
} fx;

/* ------------------------------------------------------------------------ */
/* Hooks and handlers. */

static void on_behavior(void *ud, const pz_behavior_event *ev)
{
    fx *f = ud;
    g_array_append_val(f->behaviors, ev->behavior);
}

static int on_rate(void *ud, const pz_identity *peer, const pz_addr *addr, const char *method, uint32_t cost,
                   uint64_t now, int *allowed)
{
    fx *f = ud;
    (void)peer, (void)addr, (void)method, (void)now;
    f->last_cost = cost;
    *allowed = !f->rate_deny;
    return 0;
}

static int on_rate_retry(void *ud, const pz_identity *peer, const pz_addr *addr, const char *method,
                         uint32_t cost, uint64_t now, int *allowed, uint32_t *retry_after_ms)
{
    fx *f = ud;
    assert_int_equal(*retry_after_ms, 0);
    on_rate(ud, peer, addr, method, cost, now, allowed);
    if (!*allowed)
        *retry_after_ms = f->rate_retry_ms;
    return 0;
}

static int on_authorize(void *ud, const pz_identity *peer, const char *method, int *allowed)
{
    fx *f = ud;
    (void)peer;
    *allowed = !(f->deny && strcmp(f->deny, method) == 0);
    return 0;
}

static void on_conn_closed(void *ud, pz_rpc_conn *conn, int code, const char *why)
{
    fx *f = ud;
    (void)conn, (void)code, (void)why;
    f->closed_conns++;
}

static int has_behavior(const fx *f, pz_behavior b)
{
    for (guint i = 0; i < f->behaviors->len; i++)
        if (g_array_index(f->behaviors, pz_behavior, i) == b)
            return 1;
    return 0;
}

static void h_echo(pz_rpc_call *call, GVariant *params, void *ud)
{
    (void)ud;
    pz_rpc_call_return(call, params);
}

static void h_hold(pz_rpc_call *call, GVariant *params, void *ud)
{
    fx *f = ud;
    (void)params;
    g_ptr_array_add(f->held, call);
}

static gboolean answer_later(gpointer p)
{
    pz_rpc_call *call = p;
    pz_rpc_call_return(call, g_variant_new("(s)", "later"));
    return G_SOURCE_REMOVE;
}

static void h_later(pz_rpc_call *call, GVariant *params, void *ud)
{
    fx *f = ud;
    (void)params;
    GSource *s = g_timeout_source_new(2);
    g_source_set_callback(s, answer_later, call, NULL);
    g_source_attach(s, f->ctx);
    g_source_unref(s);
}

static void h_fail(pz_rpc_call *call, GVariant *params, void *ud)
{
    (void)params, (void)ud;
    pz_rpc_call_fail(call, PZ_RPC_STATUS_APP + 7, "no such account");
}

static void h_close(pz_rpc_call *call, GVariant *params, void *ud)
{
    fx *f = ud;
    (void)params;
    const pz_identity *peer = pz_rpc_call_peer(call);
    assert_non_null(peer);
    pz_rpc_server_close_peer(f->server, peer->node_id);
    assert_true(pz_rpc_call_expired(call));
    pz_rpc_call_return(call, NULL); /* dropped */
}

/* "flaky": the first call drops the connection, later ones answer. */
static void h_flaky(pz_rpc_call *call, GVariant *params, void *ud)
{
    fx *f = ud;
    (void)params;
    if (f->flaky++ == 0)
        pz_rpc_server_close_peer(f->server, pz_rpc_call_peer(call)->node_id);
    pz_rpc_call_return(call, g_variant_new("(s)", "flaky"));
}

/* "num": odd numbers answered at once, even ones later in reverse order. */
static void h_num(pz_rpc_call *call, GVariant *params, void *ud)
{
    fx *f = ud;
    guint32 n;
    g_variant_get(params, "(u)", &n);
    if (n % 2)
        pz_rpc_call_return(call, g_variant_new("(u)", n * 3));
    else
        g_ptr_array_add(f->later, call);
}

static gboolean flush_later(gpointer p)
{
    fx *f = p;
    while (f->later->len) {
        pz_rpc_call *call = g_ptr_array_steal_index(f->later, f->later->len - 1);
        /* Even numbers answer 0: the client checks that mapping. */
        pz_rpc_call_return(call, g_variant_new("(u)", 0));
    }
    return G_SOURCE_CONTINUE;
}

/* ------------------------------------------------------------------------ */
/* Client connect hook: pairs a socketpair between client and server from
 * the main loop (never inside the hook). */

typedef struct connect_job {
    fx *f;
    char *peer;
} connect_job;

static gboolean do_connect(gpointer p)
{
    connect_job *j = p;
    fx *f = j->f;
    if (f->tearing_down) {
        /* Too late: the client is gone. */
    } else if (f->fail_connect) {
        pz_rpc_client_connect_failed(f->client, j->peer, PZ_EIO, "connection refused");
    } else {
        void *a, *b;
        tl_pair(f->with_binding, &a, &b);
        assert_int_equal(pz_rpc_server_add_connection(f->server, &tl_transport, a, &f->cli.ident, NULL, NULL, NULL),
                         0);
        assert_int_equal(pz_rpc_client_add_connection(f->client, j->peer, &tl_transport, b, &f->srv.ident, NULL), 0);
    }
    g_free(j->peer);
    g_free(j);
    return G_SOURCE_REMOVE;
}

static void on_connect(void *ud, pz_rpc_client *client, const char *peer)
{
    fx *f = ud;
    (void)client;
    f->connects++;
    connect_job *j = g_new0(connect_job, 1);
    j->f = f;
    j->peer = g_strdup(peer);
    GSource *s = g_timeout_source_new(0); /* default priority: an idle would starve under load */
    g_source_set_callback(s, do_connect, j, NULL);
    g_source_attach(s, f->ctx);
    g_source_unref(s);
}

/* ------------------------------------------------------------------------ */
/* Fixture. */

static int make_client(fx *f, size_t max_conns, size_t max_in_flight)
{
    pz_rpc_client_hooks ch = {.struct_size = sizeof(ch), .connect = on_connect, .ud = f};
    pz_rpc_client_config cc = {
        .struct_size = sizeof(cc),
        .node_id = f->cli.id,
        .key = f->cli.key,
        .context = f->ctx,
        .hooks = &ch,
        .skew_ns = SKEW_NS,
        .max_conns_per_peer = max_conns,
        .max_in_flight = max_in_flight,
        .max_frame_bytes = MAX_FRAME,
    };
    pz_rpc_client_free(f->client);
    return pz_rpc_client_new(&cc, &f->client, NULL);
}

/* setup_retry: the fixture's server uses the rate_limit_retry hook. */
static int use_retry_hook;

static int setup(void **state)
{
    fx *f = g_new0(fx, 1);
    f->ctx = g_main_context_new();
    g_main_context_push_thread_default(f->ctx);
    tl_node_init(&f->srv, "node-b");
    tl_node_init(&f->cli, "node-a");
    tl_node_init(&f->evil, "node-a");
    f->behaviors = g_array_new(FALSE, FALSE, sizeof(pz_behavior));
    f->held = g_ptr_array_new();
    f->later = g_ptr_array_new();
    f->with_binding = 1;
    pz_rpc_server_hooks sh = {
        .struct_size = sizeof(sh),
        .rate_limit = on_rate,
        .authorize = on_authorize,
        .behavior = on_behavior,
        .conn_closed = on_conn_closed,
        .ud = f,
        .rate_limit_retry = use_retry_hook ? on_rate_retry : NULL,
    };
    pz_rpc_server_config sc = {
        .struct_size = sizeof(sc),
        .node_id = f->srv.id,
        .key = f->srv.key,
        .context = f->ctx,
        .hooks = &sh,
        .skew_ns = SKEW_NS,
        .max_frame_bytes = MAX_FRAME,
    };
    assert_int_equal(pz_rpc_server_new(&sc, &f->server, NULL), 0);
    assert_int_equal(pz_rpc_register(f->server, "echo", h_echo, f, 0), 0);
    assert_int_equal(pz_rpc_register(f->server, "hold", h_hold, f, 0), 0);
    assert_int_equal(pz_rpc_register(f->server, "later", h_later, f, 0), 0);
    assert_int_equal(pz_rpc_register(f->server, "fail", h_fail, f, 0), 0);
    assert_int_equal(pz_rpc_register(f->server, "close", h_close, f, 0), 0);
    assert_int_equal(pz_rpc_register(f->server, "num", h_num, f, 0), 0);
    assert_int_equal(pz_rpc_register(f->server, "flaky", h_flaky, f, 0), 0);
    assert_int_equal(pz_rpc_register(f->server, "secret", h_echo, f, 0), 0);
    assert_int_equal(pz_rpc_register(f->server, "mac.echo", h_echo, f, PZ_RPC_MAC), 0);
    assert_int_equal(pz_rpc_server_set_cost(f->server, "later", 5), 0);
    assert_int_equal(make_client(f, 1, 0), 0);
    assert_int_equal(pz_verify_key_new(f->srv.pub, &f->srv_pub), 0);
    *state = f;
    return 0;
}

static int setup_retry(void **state)
{
    use_retry_hook = 1;
    int rc = setup(state);
    use_retry_hook = 0;
    return rc;
}

static int teardown(void **state)
{
    fx *f = *state;
    f->tearing_down = 1;
    pz_rpc_client_free(f->client);
    /* Held calls outlive the server: their answers are dropped. */
    pz_rpc_server_free(f->server);
    for (guint i = 0; i < f->held->len; i++)
        pz_rpc_call_return(f->held->pdata[i], NULL);
    while (f->later->len)
        pz_rpc_call_return(g_ptr_array_steal_index(f->later, 0), NULL);
    if (f->raw)
        tl_transport.close(f->raw);
    while (g_main_context_iteration(f->ctx, FALSE))
        ;
    pz_verify_key_free(f->srv_pub);
    g_free(f->frame);
    tl_node_clear(&f->srv);
    tl_node_clear(&f->cli);
    tl_node_clear(&f->evil);
    g_array_free(f->behaviors, TRUE);
    g_ptr_array_free(f->held, TRUE);
    g_ptr_array_free(f->later, TRUE);
    g_main_context_pop_thread_default(f->ctx);
    g_main_context_unref(f->ctx);
    g_free(f);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Raw peer: crafted requests straight to the server. */

static void raw_open(fx *f)
{
    void *a;
    tl_pair(f->with_binding, &a, &f->raw);
    assert_int_equal(pz_rpc_server_add_connection(f->server, &tl_transport, a, &f->cli.ident, NULL, NULL, NULL), 0);
}

typedef struct raw_req {
    const char *method;
    int64_t skew_s;         /* added to now */
    const uint8_t *call_id; /* NULL: random */
    const char *caller;     /* NULL: node-a */
    const char *target;     /* NULL: node-b */
    uint32_t timeout_ms;
    const pz_rpc_key *key;  /* NULL: the client's */
    int mode;               /* 0: signature */
    GVariant *params;
} raw_req;

/* Send R on the raw connection and decode the response into OUT. Returns 0,
 * or -1 when the server closed the connection instead. */
static int raw_call(fx *f, const raw_req *r, pz_wire_response *out)
{
    uint8_t id[PZ_RPC_CALL_ID_LEN];
    if (r->call_id)
        memcpy(id, r->call_id, sizeof(id));
    else
        for (size_t i = 0; i < sizeof(id); i++)
            id[i] = (uint8_t)g_random_int();
    pz_wire_mac *mac = NULL;
    pz_wire_auth auth = {.mode = r->mode ? r->mode : PZ_WIRE_MODE_SIG, .key = r->key ? r->key : f->cli.key};
    if (auth.mode == PZ_WIRE_MODE_MAC) {
        uint8_t k[32];
        assert_int_equal(tl_transport.channel_binding(f->raw, PZ_WIRE_MAC_LABEL, k, sizeof(k), NULL), 0);
        if (r->key) /* "wrong key" for a MAC: flip the binding */
            k[0] ^= 1;
        assert_int_equal(pz_wire_mac_new(k, sizeof(k), &mac), 0);
        auth.mac = mac;
    }
    GByteArray *b = g_byte_array_new();
    uint64_t now = (uint64_t)g_get_real_time() * 1000u + (uint64_t)(r->skew_s * 1000000000ll);
    assert_int_equal(pz_wire_request_encode(b, MAX_FRAME, r->method, now, id, r->caller ? r->caller : "node-a",
                                            r->target ? r->target : "node-b", r->timeout_ms ? r->timeout_ms : 5000,
                                            r->params, &auth),
                     0);
    pz_wire_mac_free(mac);
    tl_write_all(f->ctx, tl_conn_fd(f->raw), b->data, b->len);
    g_byte_array_unref(b);
    size_t len;
    uint8_t *frame = tl_read_frame(f->ctx, tl_conn_fd(f->raw), &len);
    if (!frame)
        return -1;
    int kind;
    g_free(f->frame);
    f->frame = frame; /* OUT points into it */
    assert_int_equal(pz_wire_decode(frame, len, &kind, NULL, out, NULL), 0);
    assert_memory_equal(out->call_id, id, sizeof(id));
    return 0;
}

static void expect_refusal(fx *f, const raw_req *r, int32_t status, pz_behavior b, int authenticated)
{
    pz_wire_response resp;
    g_array_set_size(f->behaviors, 0);
    assert_int_equal(raw_call(f, r, &resp), 0);
    assert_int_equal(resp.status, status);
    assert_string_equal(resp.sender, "node-b");
    assert_true(resp.message[0] != '\0');
    if (authenticated) {
        pz_wire_auth a = {.mode = PZ_WIRE_MODE_SIG, .pub = f->srv_pub};
        assert_int_equal(pz_wire_response_verify(&resp, &a), 0);
    } else {
        assert_int_equal(resp.auth_len, 0);
    }
    assert_true(has_behavior(f, b));
    pz_wire_response_clear(&resp);
}

/* ------------------------------------------------------------------------ */
/* Tests. */

static void test_signed_call(void **state)
{
    fx *f = *state;
    GVariant *data = NULL;
    int32_t status;
    GError *err = NULL;
    int rc = pz_rpc_client_call_sync(f->client, "node-b", "echo", g_variant_new("(si)", "hello", 42), NULL, &data,
                                     &status, &err);
    assert_int_equal(rc, 0);
    assert_null(err);
    assert_int_equal(status, PZ_RPC_OK);
    const char *s;
    gint32 n;
    g_variant_get(data, "(&si)", &s, &n);
    assert_string_equal(s, "hello");
    assert_int_equal(n, 42);
    g_variant_unref(data);
    assert_int_equal(f->connects, 1);
    assert_true(has_behavior(f, PZ_BEHAVIOR_VALID_REQUEST));
    assert_int_equal(f->last_cost, 1);

    /* Cost per method reaches the rate limiter; async handler answers. */
    rc = pz_rpc_client_call_sync(f->client, "node-b", "later", NULL, NULL, &data, &status, NULL);
    assert_int_equal(rc, 0);
    assert_int_equal(f->last_cost, 5);
    g_variant_get(data, "(&s)", &s);
    assert_string_equal(s, "later");
    g_variant_unref(data);

    /* An application failure is a signed refusal with its status. */
    rc = pz_rpc_client_call_sync(f->client, "node-b", "fail", NULL, NULL, &data, &status, &err);
    assert_int_equal(rc, PZ_EREFUSED);
    assert_int_equal(status, PZ_RPC_STATUS_APP + 7);
    assert_non_null(strstr(err->message, "no such account"));
    g_clear_error(&err);

    pz_rpc_server_stats st;
    pz_rpc_server_get_stats(f->server, &st);
    assert_int_equal(st.by_status[PZ_RPC_OK], 2);
    assert_int_equal(st.by_status[PZ_RPC_HANDLER_ERROR], 1);
    assert_int_equal(st.open_connections, 1);
    pz_rpc_client_stats cs;
    pz_rpc_client_get_stats(f->client, &cs);
    assert_int_equal(cs.ok, 2);
    assert_int_equal(cs.refused, 1);
    assert_int_equal(cs.in_flight, 0);
}

static void test_replay_refused(void **state)
{
    fx *f = *state;
    raw_open(f);
    uint8_t id[PZ_RPC_CALL_ID_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    raw_req r = {.method = "echo", .call_id = id};
    pz_wire_response resp;
    assert_int_equal(raw_call(f, &r, &resp), 0);
    assert_int_equal(resp.status, PZ_RPC_OK);
    pz_wire_auth a = {.mode = PZ_WIRE_MODE_SIG, .pub = f->srv_pub};
    assert_int_equal(pz_wire_response_verify(&resp, &a), 0);
    pz_wire_response_clear(&resp);
    expect_refusal(f, &r, PZ_RPC_REPLAY, PZ_BEHAVIOR_REPLAY, 0);
    pz_rpc_server_stats st;
    pz_rpc_server_get_stats(f->server, &st);
    assert_int_equal(st.by_status[PZ_RPC_REPLAY], 1);
    assert_int_equal(st.replay_cache_entries, 1);
}

static void test_skew_refused(void **state)
{
    fx *f = *state;
    raw_open(f);
    raw_req past = {.method = "echo", .skew_s = -3600};
    expect_refusal(f, &past, PZ_RPC_STALE, PZ_BEHAVIOR_STALE_TIMESTAMP, 0);
    raw_req future = {.method = "echo", .skew_s = 3600};
    expect_refusal(f, &future, PZ_RPC_STALE, PZ_BEHAVIOR_STALE_TIMESTAMP, 0);
    raw_req near = {.method = "echo", .skew_s = -5};
    pz_wire_response resp;
    assert_int_equal(raw_call(f, &near, &resp), 0);
    assert_int_equal(resp.status, PZ_RPC_OK);
    pz_wire_response_clear(&resp);
}

static void test_wrong_target_refused(void **state)
{
    fx *f = *state;
    raw_open(f);
    raw_req r = {.method = "echo", .target = "node-c"};
    expect_refusal(f, &r, PZ_RPC_WRONG_TARGET, PZ_BEHAVIOR_PROTOCOL_VIOLATION, 0);
}

static void test_wrong_caller_refused(void **state)
{
    fx *f = *state;
    raw_open(f);
    raw_req r = {.method = "echo", .caller = "node-z"};
    expect_refusal(f, &r, PZ_RPC_WRONG_CALLER, PZ_BEHAVIOR_PROTOCOL_VIOLATION, 0);
}

static void test_unauthorized_refused(void **state)
{
    fx *f = *state;
    raw_open(f);
    f->deny = "secret";
    raw_req r = {.method = "secret"};
    expect_refusal(f, &r, PZ_RPC_UNAUTHORIZED, PZ_BEHAVIOR_UNAUTHORIZED_METHOD, 1);
    /* Through the client too: a signed refusal, rc PZ_EREFUSED. */
    int32_t status;
    assert_int_equal(pz_rpc_client_call_sync(f->client, "node-b", "secret", NULL, NULL, NULL, &status, NULL),
                     PZ_EREFUSED);
    assert_int_equal(status, PZ_RPC_UNAUTHORIZED);
}

static void test_forged_signature_refused(void **state)
{
    fx *f = *state;
    raw_open(f);
    raw_req r = {.method = "echo", .key = f->evil.key}; /* right name, wrong key */
    expect_refusal(f, &r, PZ_RPC_BAD_SIGNATURE, PZ_BEHAVIOR_INVALID_SIGNATURE, 0);
    pz_rpc_server_stats st;
    pz_rpc_server_get_stats(f->server, &st);
    assert_int_equal(st.by_status[PZ_RPC_BAD_SIGNATURE], 1);
    /* A forged call leaves no replay entry behind. */
    assert_int_equal(st.replay_cache_entries, 0);
}

static void test_rate_limited_and_no_method(void **state)
{
    fx *f = *state;
    raw_open(f);
    raw_req nm = {.method = "nothing.here"};
    expect_refusal(f, &nm, PZ_RPC_NO_METHOD, PZ_BEHAVIOR_PROTOCOL_VIOLATION, 1);
    f->rate_deny = 1;
    raw_req r = {.method = "echo"};
    expect_refusal(f, &r, PZ_RPC_RATE_LIMITED, PZ_BEHAVIOR_RATE_LIMITED, 0);
    /* The client reports an unauthenticated refusal as a refusal. */
    int32_t status;
    assert_int_equal(pz_rpc_client_call_sync(f->client, "node-b", "echo", NULL, NULL, NULL, &status, NULL),
                     PZ_EREFUSED);
    assert_int_equal(status, PZ_RPC_RATE_LIMITED);
}

static void test_draining(void **state)
{
    fx *f = *state;
    raw_open(f);
    assert_int_equal(pz_rpc_server_drain(f->server), 0);
    pz_wire_response resp;
    raw_req r = {.method = "echo"};
    assert_int_equal(raw_call(f, &r, &resp), 0);
    assert_int_equal(resp.status, PZ_RPC_UNAVAILABLE);
    pz_wire_response_clear(&resp);
}

static void test_malformed_frames_close(void **state)
{
    fx *f = *state;
    /* Garbage that is a complete frame but no envelope. */
    raw_open(f);
    uint8_t junk[12] = {0, 0, 0, 8, 'n', 'o', 't', ' ', 'g', 'v', 'a', 'r'};
    tl_write_all(f->ctx, tl_conn_fd(f->raw), junk, sizeof(junk));
    size_t len;
    assert_null(tl_read_frame(f->ctx, tl_conn_fd(f->raw), &len));
    assert_true(has_behavior(f, PZ_BEHAVIOR_MALFORMED_FRAME));
    tl_transport.close(f->raw);
    f->raw = NULL;

    /* A length above max_frame_bytes. */
    g_array_set_size(f->behaviors, 0);
    raw_open(f);
    uint8_t big[4];
    pz_frame_put_header(big, MAX_FRAME + 1);
    tl_write_all(f->ctx, tl_conn_fd(f->raw), big, sizeof(big));
    assert_null(tl_read_frame(f->ctx, tl_conn_fd(f->raw), &len));
    assert_true(has_behavior(f, PZ_BEHAVIOR_MALFORMED_FRAME));
    tl_transport.close(f->raw);
    f->raw = NULL;

    /* A response envelope sent to the server. */
    g_array_set_size(f->behaviors, 0);
    raw_open(f);
    GByteArray *b = g_byte_array_new();
    uint8_t id[PZ_RPC_CALL_ID_LEN] = {0};
    pz_wire_auth none = {0};
    assert_int_equal(pz_wire_response_encode(b, MAX_FRAME, NULL, id, 1, "node-a", 0, NULL, &none), 0);
    tl_write_all(f->ctx, tl_conn_fd(f->raw), b->data, b->len);
    g_byte_array_unref(b);
    assert_null(tl_read_frame(f->ctx, tl_conn_fd(f->raw), &len));
    assert_true(has_behavior(f, PZ_BEHAVIOR_MALFORMED_FRAME));

    pz_rpc_server_stats st;
    pz_rpc_server_get_stats(f->server, &st);
    assert_int_equal(st.malformed, 3);
    assert_int_equal(st.open_connections, 0);
    assert_int_equal(f->closed_conns, 3);
}

/* A close inside a frame is malformed; a close between frames is not. */
static void test_truncated_frame_close(void **state)
{
    fx *f = *state;
    size_t len;
    /* A header announcing 100 bytes, 10 of them, then end of stream. */
    raw_open(f);
    uint8_t part[4 + 10] = {0};
    pz_frame_put_header(part, 100);
    tl_write_all(f->ctx, tl_conn_fd(f->raw), part, sizeof(part));
    assert_int_equal(shutdown(tl_conn_fd(f->raw), SHUT_WR), 0);
    assert_null(tl_read_frame(f->ctx, tl_conn_fd(f->raw), &len));
    assert_true(has_behavior(f, PZ_BEHAVIOR_MALFORMED_FRAME));
    pz_rpc_server_stats st;
    pz_rpc_server_get_stats(f->server, &st);
    assert_int_equal(st.malformed, 1);
    tl_transport.close(f->raw);
    f->raw = NULL;

    /* Only part of a header counts too. */
    g_array_set_size(f->behaviors, 0);
    raw_open(f);
    tl_write_all(f->ctx, tl_conn_fd(f->raw), part, 2);
    assert_int_equal(shutdown(tl_conn_fd(f->raw), SHUT_WR), 0);
    assert_null(tl_read_frame(f->ctx, tl_conn_fd(f->raw), &len));
    assert_true(has_behavior(f, PZ_BEHAVIOR_MALFORMED_FRAME));
    tl_transport.close(f->raw);
    f->raw = NULL;

    /* A whole call, then end of stream: answered, and an orderly close. */
    g_array_set_size(f->behaviors, 0);
    raw_open(f);
    pz_wire_response resp;
    raw_req r = {.method = "echo"};
    assert_int_equal(raw_call(f, &r, &resp), 0);
    assert_int_equal(resp.status, PZ_RPC_OK);
    pz_wire_response_clear(&resp);
    int closed0 = f->closed_conns;
    assert_int_equal(shutdown(tl_conn_fd(f->raw), SHUT_WR), 0);
    assert_null(tl_read_frame(f->ctx, tl_conn_fd(f->raw), &len));
    assert_int_equal(f->closed_conns, closed0 + 1);
    assert_false(has_behavior(f, PZ_BEHAVIOR_MALFORMED_FRAME));
    pz_rpc_server_get_stats(f->server, &st);
    assert_int_equal(st.malformed, 2);
}

/* --- client-side response checks against a fake server ------------------ */

typedef struct done_box {
    int done;
    int rc;
    int32_t status;
    int authenticated;
    uint32_t retry_ms;
    char *msg;
} done_box;

static void box_done(const pz_rpc_result *res, void *ud)
{
    done_box *b = ud;
    b->done = 1;
    b->rc = res->rc;
    b->status = res->status;
    b->authenticated = res->authenticated;
    b->retry_ms = pz_rpc_result_retry_after_ms(res);
    g_free(b->msg);
    b->msg = g_strdup(res->message);
}

typedef enum tamper { T_NONE, T_DATA, T_SENDER, T_UNSIGNED_OK, T_STALE, T_WRONG_KEY } tamper;

/* The client calls "echo" on a fake node-b whose response is altered per T. */
static void fake_server_call(fx *f, tamper t, done_box *box)
{
    void *a, *b;
    tl_pair(1, &a, &b);
    assert_int_equal(pz_rpc_client_add_connection(f->client, "node-b", &tl_transport, a, &f->srv.ident, NULL), 0);
    assert_int_equal(
        pz_rpc_client_call(f->client, "node-b", "echo", g_variant_new("(s)", "hello"), NULL, box_done, box), 0);
    size_t len;
    uint8_t *frame = tl_read_frame(f->ctx, tl_conn_fd(b), &len);
    assert_non_null(frame);
    pz_wire_request req;
    int kind;
    assert_int_equal(pz_wire_decode(frame, len, &kind, &req, NULL, NULL), 0); /* REQ points into FRAME */
    assert_int_equal(kind, PZ_WIRE_KIND_REQUEST);
    assert_string_equal(req.caller, "node-a");
    assert_string_equal(req.target, "node-b");
    pz_wire_auth ca = {.mode = PZ_WIRE_MODE_SIG};
    assert_int_equal(pz_verify_key_new(f->cli.pub, &ca.pub), 0);
    assert_int_equal(pz_wire_request_verify(&req, &ca), 0);
    pz_verify_key_free(ca.pub);

    pz_wire_auth sa = {.mode = PZ_WIRE_MODE_SIG, .key = t == T_WRONG_KEY ? f->evil.key : f->srv.key};
    pz_wire_auth none = {0};
    uint64_t now = (uint64_t)g_get_real_time() * 1000u;
    if (t == T_STALE)
        now -= 7200ull * 1000000000ull;
    GByteArray *out = g_byte_array_new();
    assert_int_equal(pz_wire_response_encode(out, MAX_FRAME, g_variant_new("(s)", "hello"), req.call_id, now,
                                             t == T_SENDER ? "node-c" : "node-b", PZ_RPC_OK, NULL,
                                             t == T_UNSIGNED_OK ? &none : &sa),
                     0);
    if (t == T_DATA) {
        /* Flip "hello" to "jello" inside the signed data. */
        uint8_t *p = memmem(out->data, out->len, "hello", 5);
        assert_non_null(p);
        p[0] = 'j';
    }
    g_free(frame);
    tl_write_all(f->ctx, tl_conn_fd(b), out->data, out->len);
    g_byte_array_unref(out);
    tl_run_until(f->ctx, &box->done);
    tl_transport.close(b);
}

static void test_client_response_checks(void **state)
{
    fx *f = *state;
    struct {
        tamper t;
        int rc;
    } cases[] = {
        {T_NONE, 0},
        {T_DATA, PZ_ECRYPTO},
        {T_WRONG_KEY, PZ_ECRYPTO},
        {T_SENDER, PZ_EPROTO},
        {T_UNSIGNED_OK, PZ_ECRYPTO},
        {T_STALE, PZ_ESTALE},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        done_box box = {0};
        fake_server_call(f, cases[i].t, &box);
        assert_int_equal(box.rc, cases[i].rc);
        if (cases[i].rc == 0)
            assert_true(box.authenticated);
        g_free(box.msg);
        pz_rpc_client_close_peer(f->client, "node-b");
    }
    pz_rpc_client_stats cs;
    pz_rpc_client_get_stats(f->client, &cs);
    assert_int_equal(cs.bad_responses, 5);
    assert_int_equal(cs.ok, 1);
}

/* --- pipelining, async, deadlines ---------------------------------------- */

typedef struct pipe_state {
    int done;
    unsigned answered;
    unsigned total;
    unsigned wrong;
    unsigned order_breaks;
    unsigned last_index;
} pipe_state;

typedef struct pipe_call {
    pipe_state *ps;
    unsigned n;
} pipe_call;

static void pipe_done(const pz_rpc_result *res, void *ud)
{
    pipe_call *pc = ud;
    pipe_state *ps = pc->ps;
    if (res->rc != 0 || res->status != PZ_RPC_OK) {
        ps->wrong++;
    } else {
        guint32 v;
        g_variant_get(res->data, "(u)", &v);
        if (pc->n % 2 ? v != pc->n * 3 : v != 0)
            ps->wrong++;
    }
    if (pc->n < ps->last_index)
        ps->order_breaks++;
    ps->last_index = pc->n;
    if (++ps->answered == ps->total)
        ps->done = 1;
    g_free(pc);
}

static void test_pipelined_1000(void **state)
{
    fx *f = *state;
    pipe_state ps = {.total = 1000};
    /* No deadline may fire, even under valgrind. */
    pz_rpc_call_opts o = {.struct_size = sizeof(o), .timeout_ms = 600000};
    GSource *flusher = g_timeout_source_new(3);
    g_source_set_callback(flusher, flush_later, f, NULL);
    g_source_attach(flusher, f->ctx);
    for (unsigned i = 0; i < ps.total; i++) {
        pipe_call *pc = g_new0(pipe_call, 1);
        pc->ps = &ps;
        pc->n = i;
        assert_int_equal(pz_rpc_client_call(f->client, "node-b", "num", g_variant_new("(u)", i), &o, pipe_done, pc),
                         0);
    }
    tl_run_until(f->ctx, &ps.done);
    g_source_destroy(flusher);
    g_source_unref(flusher);
    assert_int_equal(ps.answered, 1000);
    assert_int_equal(ps.wrong, 0);
    /* Out of order is allowed, and with deferred even answers it happens. */
    assert_true(ps.order_breaks > 0);
    pz_rpc_server_stats st;
    pz_rpc_server_get_stats(f->server, &st);
    assert_int_equal(st.by_status[PZ_RPC_OK], 1000);
    assert_int_equal(st.in_flight, 0);
}

static void test_deadline(void **state)
{
    fx *f = *state;
    done_box box = {0};
    /* Connected first, so the request is on the wire before its deadline. */
    assert_int_equal(pz_rpc_client_call_sync(f->client, "node-b", "echo", NULL, NULL, NULL, NULL, NULL), 0);
    pz_rpc_call_opts o = {.struct_size = sizeof(o), .timeout_ms = 50};
    assert_int_equal(pz_rpc_client_call(f->client, "node-b", "hold", NULL, &o, box_done, &box), 0);
    tl_run_until(f->ctx, &box.done);
    while (f->held->len < 1)
        g_main_context_iteration(f->ctx, TRUE);
    /* Either the client's timer or the server's TIMEOUT answer came first. */
    assert_true(box.rc == PZ_ETIMEDOUT || (box.rc == 0 && box.status == PZ_RPC_TIMEOUT));
    g_free(box.msg);
    assert_int_equal(f->held->len, 1);

    /* Server side alone: a raw call with a short timeout gets TIMEOUT. */
    raw_open(f);
    raw_req r = {.method = "hold", .timeout_ms = 20};
    pz_wire_response resp;
    assert_int_equal(raw_call(f, &r, &resp), 0);
    assert_int_equal(resp.status, PZ_RPC_TIMEOUT);
    pz_wire_auth a = {.mode = PZ_WIRE_MODE_SIG, .pub = f->srv_pub};
    assert_int_equal(pz_wire_response_verify(&resp, &a), 0);
    pz_wire_response_clear(&resp);
    /* The late answer is dropped. */
    assert_int_equal(f->held->len, 2);
    pz_rpc_call_return(g_ptr_array_steal_index(f->held, 1), g_variant_new("(s)", "too late"));
    tl_run_for(f->ctx, 5);
    pz_rpc_server_stats st;
    pz_rpc_server_get_stats(f->server, &st);
    assert_true(st.by_status[PZ_RPC_TIMEOUT] >= 1);
    assert_int_equal(st.in_flight, 0);
}

/* --- mac mode ------------------------------------------------------------ */

static void test_mac_mode(void **state)
{
    fx *f = *state;
    assert_int_equal(pz_rpc_client_mark(f->client, "mac.echo", PZ_RPC_MAC), 0);
    GVariant *data = NULL;
    assert_int_equal(pz_rpc_client_call_sync(f->client, "node-b", "mac.echo", g_variant_new("(s)", "fast"), NULL,
                                             &data, NULL, NULL),
                     0);
    const char *s;
    g_variant_get(data, "(&s)", &s);
    assert_string_equal(s, "fast");
    g_variant_unref(data);

    /* A signed call to a mac method, and a mac call to a signed method. */
    raw_open(f);
    raw_req sig = {.method = "mac.echo"};
    expect_refusal(f, &sig, PZ_RPC_MODE_MISMATCH, PZ_BEHAVIOR_PROTOCOL_VIOLATION, 0);
    raw_req mac_to_sig = {.method = "echo", .mode = PZ_WIRE_MODE_MAC};
    expect_refusal(f, &mac_to_sig, PZ_RPC_MODE_MISMATCH, PZ_BEHAVIOR_PROTOCOL_VIOLATION, 0);
    /* A MAC under the wrong key. */
    raw_req forged = {.method = "mac.echo", .mode = PZ_WIRE_MODE_MAC, .key = f->evil.key};
    expect_refusal(f, &forged, PZ_RPC_BAD_SIGNATURE, PZ_BEHAVIOR_INVALID_SIGNATURE, 0);
    /* A good raw MAC call gets a MAC'd answer. */
    raw_req good = {.method = "mac.echo", .mode = PZ_WIRE_MODE_MAC};
    pz_wire_response resp;
    assert_int_equal(raw_call(f, &good, &resp), 0);
    assert_int_equal(resp.status, PZ_RPC_OK);
    assert_int_equal(resp.auth_len, PZ_WIRE_MAC_LEN);
    pz_wire_response_clear(&resp);
}

static void test_mac_without_binding(void **state)
{
    fx *f = *state;
    f->with_binding = 0;
    done_box box = {0};
    pz_rpc_call_opts o = {.struct_size = sizeof(o), .flags = PZ_RPC_MAC};
    assert_int_equal(pz_rpc_client_call(f->client, "node-b", "mac.echo", NULL, &o, box_done, &box), 0);
    tl_run_until(f->ctx, &box.done);
    assert_int_equal(box.rc, PZ_ENOTSUP);
    g_free(box.msg);
}

/* --- pool, retry, connect failure ---------------------------------------- */

static void test_pool_grows(void **state)
{
    fx *f = *state;
    assert_int_equal(make_client(f, 3, 2), 0);
    done_box boxes[6] = {{0}};
    for (int i = 0; i < 6; i++)
        assert_int_equal(pz_rpc_client_call(f->client, "node-b", "later", NULL, NULL, box_done, &boxes[i]), 0);
    for (int i = 0; i < 6; i++) {
        tl_run_until(f->ctx, &boxes[i].done);
        assert_int_equal(boxes[i].rc, 0);
        g_free(boxes[i].msg);
    }
    assert_true(f->connects >= 2 && f->connects <= 3);
    pz_rpc_client_stats cs;
    pz_rpc_client_get_stats(f->client, &cs);
    for (int i = 0; i < 100 && cs.connections < (uint64_t)f->connects; i++) {
        tl_run_for(f->ctx, 10); /* let requested connections arrive */
        pz_rpc_client_get_stats(f->client, &cs);
    }
    assert_true(cs.connections >= 2);
}

typedef struct attempts_box {
    int done;
    int rc;
    unsigned attempts;
} attempts_box;

static void attempts_done(const pz_rpc_result *res, void *ud)
{
    attempts_box *b = ud;
    b->done = 1;
    b->rc = res->rc;
    b->attempts = res->attempts;
}

static void test_retry_only_idempotent(void **state)
{
    fx *f = *state;
    /* Non-idempotent: the connection drops, the call fails. */
    done_box box = {0};
    assert_int_equal(pz_rpc_client_call(f->client, "node-b", "close", NULL, NULL, box_done, &box), 0);
    tl_run_until(f->ctx, &box.done);
    assert_int_equal(box.rc, PZ_ECLOSED);
    g_free(box.msg);
    assert_int_equal(f->connects, 1);

    /* Idempotent: retried once on a new connection — which drops again, so
     * the second failure is final. */
    done_box box2 = {0};
    pz_rpc_call_opts o = {.struct_size = sizeof(o), .flags = PZ_RPC_IDEMPOTENT};
    assert_int_equal(pz_rpc_client_call(f->client, "node-b", "close", NULL, &o, box_done, &box2), 0);
    tl_run_until(f->ctx, &box2.done);
    assert_int_equal(box2.rc, PZ_ECLOSED);
    g_free(box2.msg);
    assert_int_equal(f->connects, 3);
    pz_rpc_client_stats cs;
    pz_rpc_client_get_stats(f->client, &cs);
    assert_int_equal(cs.retries, 1);

    /* Idempotent call whose connection drops once: the retry succeeds. */
    attempts_box box3 = {0};
    assert_int_equal(pz_rpc_client_call(f->client, "node-b", "flaky", NULL, &o, attempts_done, &box3), 0);
    tl_run_until(f->ctx, &box3.done);
    assert_int_equal(box3.rc, 0);
    assert_int_equal(box3.attempts, 2);
    assert_int_equal(f->flaky, 2);
}

static void test_connect_failure(void **state)
{
    fx *f = *state;
    f->fail_connect = 1;
    done_box box = {0};
    assert_int_equal(pz_rpc_client_call(f->client, "node-b", "echo", NULL, NULL, box_done, &box), 0);
    assert_int_equal(box.done, 0); /* never from inside the call */
    tl_run_until(f->ctx, &box.done);
    assert_int_equal(box.rc, PZ_EIO);
    assert_string_equal(box.msg, "connection refused");
    g_free(box.msg);

    /* A server identity that is not the peer dialled is refused. */
    void *a, *b;
    tl_pair(0, &a, &b);
    GError *err = NULL;
    assert_int_equal(pz_rpc_client_add_connection(f->client, "node-b", &tl_transport, a, &f->cli.ident, &err),
                     PZ_EPERM);
    assert_non_null(err);
    g_clear_error(&err);
    tl_transport.close(b);
}

/* --- bad inputs ------------------------------------------------------------ */

static void test_bad_inputs(void **state)
{
    fx *f = *state;
    assert_int_equal(pz_rpc_register(f->server, "echo", h_echo, f, 0), PZ_EEXIST);
    assert_int_equal(pz_rpc_register(f->server, "Bad", h_echo, f, 0), PZ_EINVAL);
    assert_int_equal(pz_rpc_register(f->server, "", h_echo, f, 0), PZ_EINVAL);
    assert_int_equal(pz_rpc_register(f->server, "x", NULL, f, 0), PZ_EINVAL);
    assert_int_equal(pz_rpc_register(f->server, "x", h_echo, f, PZ_RPC_MAC | PZ_RPC_AUDIT), PZ_EINVAL);
    assert_int_equal(pz_rpc_register(f->server, "x", h_echo, f, 0x100), PZ_EINVAL);
    assert_int_equal(pz_rpc_server_set_cost(f->server, "nope", 3), PZ_ENOENT);

    pz_rpc_server *s = NULL;
    GError *err = NULL;
    pz_rpc_server_config sc = {.struct_size = sizeof(sc), .node_id = "bad id!", .key = f->srv.key};
    assert_int_equal(pz_rpc_server_new(&sc, &s, &err), PZ_EINVAL);
    assert_non_null(err);
    g_clear_error(&err);
    sc.node_id = "ok";
    sc.key = NULL;
    assert_int_equal(pz_rpc_server_new(&sc, &s, NULL), PZ_EINVAL);
    sc.key = f->srv.key;
    sc.max_frame_bytes = 10;
    assert_int_equal(pz_rpc_server_new(&sc, &s, NULL), PZ_ERANGE);

    pz_rpc_client *c = NULL;
    pz_rpc_client_config cc = {.struct_size = sizeof(cc), .node_id = "a", .key = f->cli.key};
    assert_int_equal(pz_rpc_client_new(&cc, &c, NULL), PZ_EINVAL); /* no connect hook */

    done_box called = {0};
    assert_int_equal(pz_rpc_client_call(f->client, "node-b", "Bad Method", NULL, NULL, box_done, &called), PZ_EINVAL);
    assert_int_equal(pz_rpc_client_call(f->client, "", "echo", NULL, NULL, box_done, &called), PZ_EINVAL);
    assert_int_equal(pz_rpc_client_call(f->client, "node-b", "echo", g_variant_new("(s)", "x"), NULL, NULL, NULL),
                     PZ_EINVAL);
    assert_int_equal(pz_rpc_client_mark(f->client, "echo", 0x100), PZ_EINVAL);
    assert_int_equal(called.done, 0);

    /* A connection without a valid identity is refused (and closed). */
    void *a, *b;
    tl_pair(0, &a, &b);
    pz_identity nobody = {.struct_size = sizeof(nobody), .node_id = ""};
    assert_int_equal(pz_rpc_server_add_connection(f->server, &tl_transport, a, &nobody, NULL, NULL, NULL), PZ_EINVAL);
    tl_transport.close(b);

    assert_string_equal(pz_rpc_status_name(PZ_RPC_REPLAY), "replay");
    assert_string_equal(pz_rpc_status_name(PZ_RPC_STATUS_APP + 1), "app");
    assert_string_equal(pz_rpc_status_name(-3), "unknown");
}

static void test_oversized_request(void **state)
{
    fx *f = *state;
    done_box box = {0};
    gsize n = MAX_FRAME + 10;
    guint8 *blob = g_malloc0(n);
    GVariant *big = g_variant_new_from_data(G_VARIANT_TYPE_BYTESTRING, blob, n, TRUE, g_free, blob);
    assert_int_equal(pz_rpc_client_call(f->client, "node-b", "echo", big, NULL, box_done, &box), 0);
    tl_run_until(f->ctx, &box.done);
    assert_int_equal(box.rc, PZ_ERANGE);
    g_free(box.msg);
}

/* --- replay cache ---------------------------------------------------------- */

/* A rate-limited refusal carries the hook's retry hint in its data, and
 * the client hands it on; without a hint the data stay "()". */
static void test_rate_limited_retry_hint(void **state)
{
    fx *f = *state;
    f->rate_deny = 1;
    f->rate_retry_ms = 1234;
    raw_open(f);
    raw_req r = {.method = "echo"};
    pz_wire_response resp;
    assert_int_equal(raw_call(f, &r, &resp), 0);
    assert_int_equal(resp.status, PZ_RPC_RATE_LIMITED);
    assert_int_equal(resp.auth_len, 0);
    assert_string_equal(resp.message, "rate limited");
    GVariant *d = pz_wire_value_dup(&resp.data);
    assert_non_null(d);
    assert_string_equal(g_variant_get_type_string(d), "a{sv}");
    uint32_t ms = 0;
    assert_true(g_variant_lookup(d, PZ_WIRE_RETRY_AFTER_KEY, "u", &ms));
    assert_int_equal(ms, 1234);
    g_variant_unref(d);
    pz_wire_response_clear(&resp);
    assert_true(has_behavior(f, PZ_BEHAVIOR_RATE_LIMITED));

    /* The client: the result and the sync call's error. */
    done_box box = {0};
    assert_int_equal(pz_rpc_client_call(f->client, "node-b", "echo", NULL, NULL, box_done, &box), 0);
    tl_run_until(f->ctx, &box.done);
    assert_int_equal(box.rc, 0);
    assert_int_equal(box.status, PZ_RPC_RATE_LIMITED);
    assert_int_equal(box.retry_ms, 1234);
    g_free(box.msg);
    GError *ge = NULL;
    int32_t status;
    assert_int_equal(pz_rpc_client_call_sync(f->client, "node-b", "echo", NULL, NULL, NULL, &status, &ge),
                     PZ_EREFUSED);
    assert_non_null(ge);
    assert_non_null(strstr(ge->message, "retry after 1234 ms"));
    g_clear_error(&ge);

    /* No hint: no data, nothing for the client. */
    f->rate_retry_ms = 0;
    assert_int_equal(raw_call(f, &r, &resp), 0);
    assert_int_equal(resp.status, PZ_RPC_RATE_LIMITED);
    assert_true(resp.data.type_len == 2 && memcmp(resp.data.type, "()", 2) == 0);
    pz_wire_response_clear(&resp);
    done_box box2 = {0};
    assert_int_equal(pz_rpc_client_call(f->client, "node-b", "echo", NULL, NULL, box_done, &box2), 0);
    tl_run_until(f->ctx, &box2.done);
    assert_int_equal(box2.status, PZ_RPC_RATE_LIMITED);
    assert_int_equal(box2.retry_ms, 0);
    g_free(box2.msg);

    /* Allowed again: the hint is only for refusals. */
    f->rate_deny = 0;
    done_box box3 = {0};
    assert_int_equal(pz_rpc_client_call(f->client, "node-b", "echo", NULL, NULL, box_done, &box3), 0);
    tl_run_until(f->ctx, &box3.done);
    assert_int_equal(box3.status, PZ_RPC_OK);
    assert_int_equal(box3.retry_ms, 0);
    g_free(box3.msg);
    assert_int_equal(pz_rpc_result_retry_after_ms(NULL), 0);
}

/* Hints the client ignores: data of another type, or the key with another
 * value type, or on another status. */
static void test_retry_hint_bad_data(void **state)
{
    fx *f = *state;
    static const struct {
        const char *data; /* GVariant text */
        int32_t status;
    } cases[] = {
        {"(uint32 5,)", PZ_RPC_RATE_LIMITED},
        {"{'retry_after_ms': <'5'>}", PZ_RPC_RATE_LIMITED},
        {"{'retry_after_ms': <uint64 5>}", PZ_RPC_RATE_LIMITED},
        {"@a{sv} {}", PZ_RPC_RATE_LIMITED},
        {"{'retry_after_ms': <uint32 5>}", PZ_RPC_UNAVAILABLE},
        {"{'retry_after_ms': <uint32 5>}", PZ_RPC_RATE_LIMITED}, /* the one good case */
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        void *a, *b;
        tl_pair(1, &a, &b);
        assert_int_equal(pz_rpc_client_add_connection(f->client, "node-b", &tl_transport, a, &f->srv.ident, NULL),
                         0);
        done_box box = {0};
        assert_int_equal(pz_rpc_client_call(f->client, "node-b", "echo", NULL, NULL, box_done, &box), 0);
        size_t len;
        uint8_t *frame = tl_read_frame(f->ctx, tl_conn_fd(b), &len);
        assert_non_null(frame);
        pz_wire_request req;
        int kind;
        assert_int_equal(pz_wire_decode(frame, len, &kind, &req, NULL, NULL), 0);
        GVariant *data = g_variant_parse(NULL, cases[i].data, NULL, NULL, NULL);
        assert_non_null(data);
        pz_wire_auth none = {0};
        GByteArray *out = g_byte_array_new();
        assert_int_equal(pz_wire_response_encode(out, MAX_FRAME, data, req.call_id,
                                                 (uint64_t)g_get_real_time() * 1000u, "node-b", cases[i].status,
                                                 "refused", &none),
                         0);
        g_variant_unref(data);
        g_free(frame);
        tl_write_all(f->ctx, tl_conn_fd(b), out->data, out->len);
        g_byte_array_unref(out);
        tl_run_until(f->ctx, &box.done);
        assert_int_equal(box.rc, 0);
        assert_int_equal(box.status, cases[i].status);
        assert_int_equal(box.retry_ms, i + 1 == G_N_ELEMENTS(cases) ? 5 : 0);
        g_free(box.msg);
        pz_rpc_client_close_peer(f->client, "node-b");
        tl_transport.close(b);
    }
}

static void test_replay_cache(void **state)
{
    (void)state;
    const uint64_t s = 1000000000ull;
    pz_replay_cache *c = pz_replay_cache_new(3, 30 * s);
    uint8_t id[PZ_RPC_CALL_ID_LEN] = {0};
    uint64_t now = 1000 * s;
    for (int i = 0; i < 3; i++) {
        id[0] = (uint8_t)i;
        assert_int_equal(pz_replay_cache_check(c, "a", id, now + (uint64_t)i, now), 0);
    }
    id[0] = 1;
    assert_int_equal(pz_replay_cache_check(c, "a", id, now + 1, now), PZ_EREPLAY);
    assert_int_equal(pz_replay_cache_check(c, "b", id, now + 1, now), 0); /* another caller: evicts id 0 */
    assert_int_equal(pz_replay_cache_size(c), 3);
    /* The evicted entry cannot come back: the floor covers it. */
    id[0] = 0;
    assert_int_equal(pz_replay_cache_check(c, "a", id, now, now), PZ_EREPLAY);
    /* Later timestamps still pass. */
    id[0] = 9;
    assert_int_equal(pz_replay_cache_check(c, "a", id, now + 100, now), 0);
    /* After the window, entries expire. */
    id[0] = 1;
    assert_int_equal(pz_replay_cache_check(c, "a", id, now + 200 * s, now + 200 * s), 0);
    assert_int_equal(pz_replay_cache_size(c), 1);
    pz_replay_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_signed_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_skew_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_target_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_caller_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unauthorized_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forged_signature_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limited_and_no_method, setup, teardown),
        cmocka_unit_test_setup_teardown(test_draining, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_frames_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_frame_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_response_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipelined_1000, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mac_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mac_without_binding, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_grows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_only_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_inputs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limited_retry_hint, setup_retry, teardown),
        cmocka_unit_test_setup_teardown(test_retry_hint_bad_data, setup, teardown),
        cmocka_unit_test(test_replay_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
