/* tests/unit/test_rpc_wire.c — envelopes: round trips, signatures and MACs,
 * domain separation, tampering, and every malformed input refused. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <glib.h>

#include "rpc_frame.h"
#include "rpc_wire.h"

#define MAXF (64u * 1024)

typedef struct keys {
    pz_rpc_key *a, *b;
    uint8_t apub[32], bpub[32];
    pz_verify_key *ap, *bp;
} keys;

static int setup(void **state)
{
    keys *k = g_new0(keys, 1);
    assert_int_equal(pz_rpc_key_generate(&k->a, NULL), 0);
    assert_int_equal(pz_rpc_key_generate(&k->b, NULL), 0);
    pz_rpc_key_public(k->a, k->apub);
    pz_rpc_key_public(k->b, k->bpub);
    assert_int_equal(pz_verify_key_new(k->apub, &k->ap), 0);
    assert_int_equal(pz_verify_key_new(k->bpub, &k->bp), 0);
    *state = k;
    return 0;
}

static int teardown(void **state)
{
    keys *k = *state;
    pz_rpc_key_free(k->a);
    pz_rpc_key_free(k->b);
    pz_verify_key_free(k->ap);
    pz_verify_key_free(k->bp);
    g_free(k);
    return 0;
}

static const uint8_t ID[PZ_RPC_CALL_ID_LEN] = {0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

/* Strip the frame header off B (one frame) and decode it. */
static int decode_frame(const GByteArray *b, int *kind, pz_wire_request *req, pz_wire_response *resp)
{
    assert_true(b->len >= PZ_FRAME_HDR);
    assert_int_equal(pz_frame_get_header(b->data), b->len - PZ_FRAME_HDR);
    return pz_wire_decode(b->data + PZ_FRAME_HDR, b->len - PZ_FRAME_HDR, kind, req, resp, NULL);
}

static void test_key_from_seed(void **state)
{
    (void)state;
    /* RFC 8032 section 7.1, TEST 1. */
    static const uint8_t seed[32] = {0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a,
                                     0xf4, 0x92, 0xec, 0x2c, 0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32,
                                     0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60};
    static const uint8_t pub[32] = {0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe,
                                    0xd3, 0xc9, 0x64, 0x07, 0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6,
                                    0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a};
    pz_rpc_key *k;
    assert_int_equal(pz_rpc_key_new(seed, &k, NULL), 0);
    uint8_t got[32];
    pz_rpc_key_public(k, got);
    assert_memory_equal(got, pub, 32);
    uint8_t sig[64];
    assert_int_equal(pz_wire_sign(k, PZ_WIRE_DOMAIN_CALL, (const uint8_t *)"abc", 3, sig), 0);
    pz_verify_key *p;
    assert_int_equal(pz_verify_key_new(pub, &p), 0);
    assert_int_equal(pz_wire_verify_sig(p, PZ_WIRE_DOMAIN_CALL, (const uint8_t *)"abc", 3, sig, 64), 0);
    /* Domain separation: the same bytes under the response domain fail. */
    assert_int_equal(pz_wire_verify_sig(p, PZ_WIRE_DOMAIN_RESP, (const uint8_t *)"abc", 3, sig, 64), PZ_ECRYPTO);
    assert_int_equal(pz_wire_verify_sig(p, PZ_WIRE_DOMAIN_CALL, (const uint8_t *)"abd", 3, sig, 64), PZ_ECRYPTO);
    assert_int_equal(pz_wire_verify_sig(p, PZ_WIRE_DOMAIN_CALL, (const uint8_t *)"abc", 3, sig, 63), PZ_ECRYPTO);
    pz_verify_key_free(p);
    pz_rpc_key_free(k);
}

static void test_request_roundtrip(void **state)
{
    keys *k = *state;
    GByteArray *b = g_byte_array_new();
    pz_wire_auth sa = {.mode = PZ_WIRE_MODE_SIG, .key = k->a};
    assert_int_equal(pz_wire_request_encode(b, MAXF, "keys.get", 1234567890123ull, ID, "node-a", "node-b", 2500,
                                            g_variant_new("(sx)", "hi", (gint64)-5), &sa),
                     0);
    pz_wire_request req;
    int kind;
    assert_int_equal(decode_frame(b, &kind, &req, NULL), 0);
    assert_int_equal(kind, PZ_WIRE_KIND_REQUEST);
    assert_string_equal(req.method, "keys.get");
    assert_int_equal(req.timestamp_ns, 1234567890123ull);
    assert_memory_equal(req.call_id, ID, sizeof(ID));
    assert_string_equal(req.caller, "node-a");
    assert_string_equal(req.target, "node-b");
    assert_int_equal(req.timeout_ms, 2500);
    assert_int_equal(req.mode, PZ_WIRE_MODE_SIG);
    assert_int_equal(req.auth_len, PZ_WIRE_SIG_LEN);
    assert_int_equal(req.params.type_len, 4);
    assert_memory_equal(req.params.type, "(sx)", 4);
    GVariant *pv = pz_wire_value_dup(&req.params);
    assert_non_null(pv);
    assert_true(g_variant_is_of_type(pv, G_VARIANT_TYPE("(sx)")));
    const char *hi;
    gint64 x;
    g_variant_get(pv, "(&sx)", &hi, &x);
    assert_string_equal(hi, "hi");
    assert_int_equal(x, -5);
    g_variant_unref(pv);
    pz_wire_auth va = {.mode = PZ_WIRE_MODE_SIG, .pub = k->ap};
    assert_int_equal(pz_wire_request_verify(&req, &va), 0);
    va.pub = k->bp;
    assert_int_equal(pz_wire_request_verify(&req, &va), PZ_ECRYPTO);
    /* A MAC check of a signed request fails (mode differs). */
    pz_wire_auth ma = {.mode = PZ_WIRE_MODE_MAC};
    assert_int_equal(pz_wire_request_verify(&req, &ma), PZ_ECRYPTO);
    pz_wire_request_clear(&req);

    /* Tampering with any signed byte breaks the signature: flip the params'
     * "hi" and the timeout in turn. */
    uint8_t *p = memmem(b->data, b->len, "hi", 2);
    assert_non_null(p);
    p[0] = 'H';
    assert_int_equal(decode_frame(b, &kind, &req, NULL), 0);
    va.pub = k->ap;
    assert_int_equal(pz_wire_request_verify(&req, &va), PZ_ECRYPTO);
    pz_wire_request_clear(&req);
    g_byte_array_unref(b);
}

static void test_response_roundtrip(void **state)
{
    keys *k = *state;
    GByteArray *b = g_byte_array_new();
    pz_wire_auth sa = {.mode = PZ_WIRE_MODE_SIG, .key = k->b};
    assert_int_equal(pz_wire_response_encode(b, MAXF, g_variant_new("(u)", 7u), ID, 99, "node-b", PZ_RPC_OK, NULL,
                                             &sa),
                     0);
    pz_wire_response r;
    int kind;
    assert_int_equal(decode_frame(b, &kind, NULL, &r), 0);
    assert_int_equal(kind, PZ_WIRE_KIND_RESPONSE);
    assert_int_equal(r.status, PZ_RPC_OK);
    assert_int_equal(r.timestamp_ns, 99);
    assert_string_equal(r.sender, "node-b");
    assert_string_equal(r.message, "");
    assert_memory_equal(r.call_id, ID, sizeof(ID));
    pz_wire_auth va = {.mode = PZ_WIRE_MODE_SIG, .pub = k->bp};
    assert_int_equal(pz_wire_response_verify(&r, &va), 0);
    va.pub = k->ap;
    assert_int_equal(pz_wire_response_verify(&r, &va), PZ_ECRYPTO);
    pz_wire_response_clear(&r);

    /* A response cannot be decoded where only requests are accepted. */
    pz_wire_request only_req;
    assert_int_equal(decode_frame(b, &kind, &only_req, NULL), PZ_EPROTO);
    g_byte_array_unref(b);

    /* Unauthenticated refusal; long non-ASCII message cut on a character. */
    b = g_byte_array_new();
    GString *msg = g_string_new("x");
    while (msg->len < 400)
        g_string_append(msg, "\xc3\xa9"); /* é */
    pz_wire_auth none = {0};
    assert_int_equal(pz_wire_response_encode(b, MAXF, NULL, ID, 1, "node-b", PZ_RPC_RATE_LIMITED, msg->str, &none),
                     0);
    assert_int_equal(decode_frame(b, &kind, NULL, &r), 0);
    assert_int_equal(r.auth_len, 0);
    assert_int_equal(r.status, PZ_RPC_RATE_LIMITED);
    assert_true(strlen(r.message) <= PZ_WIRE_MESSAGE_MAX);
    assert_true(g_utf8_validate(r.message, -1, NULL));
    assert_int_equal(pz_wire_response_verify(&r, &va), PZ_ECRYPTO);
    pz_wire_response_clear(&r);
    g_string_free(msg, TRUE);
    g_byte_array_unref(b);
}

static void test_mac_mode(void **state)
{
    keys *k = *state;
    uint8_t key1[32], key2[32];
    memset(key1, 1, sizeof(key1));
    memset(key2, 2, sizeof(key2));
    pz_wire_mac *m1, *m2;
    assert_int_equal(pz_wire_mac_new(key1, 32, &m1), 0);
    assert_int_equal(pz_wire_mac_new(key2, 32, &m2), 0);
    GByteArray *b = g_byte_array_new();
    pz_wire_auth a1 = {.mode = PZ_WIRE_MODE_MAC, .mac = m1}, a2 = {.mode = PZ_WIRE_MODE_MAC, .mac = m2};
    assert_int_equal(pz_wire_request_encode(b, MAXF, "tx.submit", 5, ID, "a", "b", 0, NULL, &a1), 0);
    pz_wire_request req;
    int kind;
    assert_int_equal(decode_frame(b, &kind, &req, NULL), 0);
    assert_int_equal(req.mode, PZ_WIRE_MODE_MAC);
    assert_int_equal(req.auth_len, PZ_WIRE_MAC_LEN);
    assert_int_equal(pz_wire_request_verify(&req, &a1), 0);
    assert_int_equal(pz_wire_request_verify(&req, &a2), PZ_ECRYPTO);
    pz_wire_auth sig = {.mode = PZ_WIRE_MODE_SIG, .pub = k->ap};
    assert_int_equal(pz_wire_request_verify(&req, &sig), PZ_ECRYPTO);
    pz_wire_request_clear(&req);
    g_byte_array_set_size(b, 0);

    /* Reflection: a request's MAC is no response MAC (domains differ). */
    assert_int_equal(pz_wire_response_encode(b, MAXF, NULL, ID, 5, "b", 0, NULL, &a1), 0);
    pz_wire_response r;
    assert_int_equal(decode_frame(b, &kind, NULL, &r), 0);
    assert_int_equal(pz_wire_response_verify(&r, &a1), 0);
    assert_int_equal(pz_wire_response_verify(&r, &a2), PZ_ECRYPTO);
    pz_wire_response_clear(&r);
    g_byte_array_unref(b);
    pz_wire_mac_free(m1);
    pz_wire_mac_free(m2);
}

static void test_encode_errors(void **state)
{
    keys *k = *state;
    GByteArray *b = g_byte_array_new();
    pz_wire_auth sa = {.mode = PZ_WIRE_MODE_SIG, .key = k->a};
    pz_wire_auth none = {0};
    assert_int_equal(pz_wire_request_encode(b, MAXF, "Bad", 1, ID, "a", "b", 0, NULL, &sa), PZ_EINVAL);
    assert_int_equal(pz_wire_request_encode(b, MAXF, "ok", 1, ID, "a b", "b", 0, NULL, &sa), PZ_EINVAL);
    assert_int_equal(pz_wire_request_encode(b, MAXF, "ok", 1, ID, "a", "", 0, NULL, &sa), PZ_EINVAL);
    assert_int_equal(pz_wire_request_encode(b, MAXF, "ok", 1, ID, "a", "b", 0, NULL, &none), PZ_EINVAL);
    assert_int_equal(pz_wire_request_encode(b, MAXF, "ok", 1, ID, "a", "b", 0, g_variant_new("(s)", "x"), NULL),
                     PZ_EINVAL);
    assert_int_equal(pz_wire_response_encode(b, MAXF, NULL, ID, 1, "bad/id", 0, NULL, &sa), PZ_EINVAL);
    /* Too large for the frame limit: refused, OUT unchanged. */
    char *big = g_malloc(2000);
    memset(big, 'x', 1999);
    big[1999] = 0;
    assert_int_equal(pz_wire_request_encode(b, 1024, "ok", 1, ID, "a", "b", 0, g_variant_new_take_string(big), &sa),
                     PZ_ERANGE);
    assert_int_equal(b->len, 0);
    g_byte_array_unref(b);

    assert_true(pz_wire_method_valid("sys.ping"));
    assert_true(pz_wire_method_valid("admin.peer-list_2"));
    assert_false(pz_wire_method_valid("1abc"));
    assert_false(pz_wire_method_valid("Sys.ping"));
    char longm[80];
    memset(longm, 'a', sizeof(longm) - 1);
    longm[79] = 0;
    assert_false(pz_wire_method_valid(longm));
    assert_true(pz_wire_node_id_valid("Node_1.a-b"));
    assert_false(pz_wire_node_id_valid("node:1"));
}

/* Serialize ENV (floating) as a frame payload. */
static GBytes *payload_of(GVariant *env)
{
    g_variant_ref_sink(env);
    GBytes *b = g_variant_get_data_as_bytes(env);
    g_variant_unref(env);
    return b;
}

static GVariant *req_body(const char *method, gsize idlen, const char *caller, const char *target, guint8 mode,
                          gsize authlen)
{
    guint8 id[32] = {0}, auth[64] = {0};
    return g_variant_new("(((st@ayssuy)v)@ay)", method, (guint64)1,
                         g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, id, idlen, 1), caller, target, 0u, mode,
                         g_variant_new("()"), g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, auth, authlen, 1));
}

static GVariant *resp_body(gsize idlen, const char *sender, const char *msg, gsize authlen)
{
    guint8 id[32] = {0}, auth[64] = {0};
    return g_variant_new("((v@aytsis)@ay)", g_variant_new("()"),
                         g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, id, idlen, 1), (guint64)1, sender, 0, msg,
                         g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, auth, authlen, 1));
}

static void test_malformed(void **state)
{
    (void)state;
    char longmsg[PZ_WIRE_MESSAGE_MAX + 2];
    memset(longmsg, 'm', sizeof(longmsg) - 1);
    longmsg[sizeof(longmsg) - 1] = 0;
    GVariant *cases[] = {
        g_variant_new("(yyv)", 2, 1, req_body("m", 16, "a", "b", 1, 64)), /* version */
        g_variant_new("(yyv)", 1, 3, req_body("m", 16, "a", "b", 1, 64)), /* kind */
        g_variant_new("(yyv)", 1, 1, g_variant_new("(s)", "x")),          /* body type */
        g_variant_new("(yyv)", 1, 1, resp_body(16, "a", "", 64)),         /* kind/body mismatch */
        g_variant_new("(yyv)", 1, 1, req_body("m", 15, "a", "b", 1, 64)), /* call id length */
        g_variant_new("(yyv)", 1, 1, req_body("M!", 16, "a", "b", 1, 64)), /* method */
        g_variant_new("(yyv)", 1, 1, req_body("m", 16, "", "b", 1, 64)),  /* caller */
        g_variant_new("(yyv)", 1, 1, req_body("m", 16, "a", "b c", 1, 64)), /* target */
        g_variant_new("(yyv)", 1, 1, req_body("m", 16, "a", "b", 7, 64)), /* mode */
        g_variant_new("(yyv)", 1, 2, resp_body(17, "a", "", 64)),         /* call id length */
        g_variant_new("(yyv)", 1, 2, resp_body(16, "a/b", "", 64)),       /* sender */
        g_variant_new("(yyv)", 1, 2, resp_body(16, "a", longmsg, 64)),    /* message */
        g_variant_new("(yyv)", 1, 2, resp_body(16, "a", "", 5)),          /* auth length */
        g_variant_new("(s)", "not an envelope"),
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        GBytes *p = payload_of(cases[i]);
        gsize n;
        const uint8_t *d = g_bytes_get_data(p, &n);
        pz_wire_request req;
        pz_wire_response resp;
        int kind = -1;
        const char *why = NULL;
        assert_int_equal(pz_wire_decode(d, n, &kind, &req, &resp, &why), PZ_EPROTO);
        assert_non_null(why);
        assert_int_equal(kind, 0);
        g_bytes_unref(p);
    }
    /* Raw byte strings: empty, junk, non-zero padding (not normal form),
     * truncated envelope. */
    static const struct {
        const uint8_t *d;
        size_t n;
    } raws[] = {
        {(const uint8_t *)"", 0},
        {(const uint8_t *)"\xff\xff\xff\xff\xff", 5},
        {(const uint8_t *)"\x01\x01\xff\xff\xff\xff\xff\xff\x05\x00\x00\x00\x00u", 14},
        {(const uint8_t *)"\x01\x01", 2},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(raws); i++) {
        pz_wire_request req;
        pz_wire_response resp;
        int kind = -1;
        assert_int_equal(pz_wire_decode(raws[i].d, raws[i].n, &kind, &req, &resp, NULL), PZ_EPROTO);
    }
}

/* The hand serializer must produce exactly GLib's normal form, for small
 * envelopes (1-byte framing offsets) and large ones (2- and 4-byte). */
static void test_matches_glib(void **state)
{
    keys *k = *state;
    static const size_t sizes[] = {0, 1, 200, 300, 70000};
    for (size_t i = 0; i < G_N_ELEMENTS(sizes); i++) {
        char *str = g_malloc(sizes[i] + 1);
        memset(str, 'p', sizes[i]);
        str[sizes[i]] = 0;
        GVariant *params = g_variant_ref_sink(g_variant_new("(sqx)", str, (guint16)7, (gint64)-1));
        GByteArray *b = g_byte_array_new();
        pz_wire_auth sa = {.mode = PZ_WIRE_MODE_SIG, .key = k->a};
        assert_int_equal(pz_wire_request_encode(b, 1u << 20, "m.x", 77, ID, "caller-1", "t", 9, params, &sa), 0);
        pz_wire_request req;
        int kind;
        assert_int_equal(decode_frame(b, &kind, &req, NULL), 0);
        GVariant *ref = g_variant_ref_sink(g_variant_new(
            "(yyv)", 1, 1,
            g_variant_new("(((st@ayssuy)v)@ay)", "m.x", (guint64)77,
                          g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, ID, 16, 1), "caller-1", "t", 9u, 1, params,
                          g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, req.auth, req.auth_len, 1))));
        assert_int_equal(g_variant_get_size(ref), b->len - PZ_FRAME_HDR);
        assert_memory_equal(g_variant_get_data(ref), b->data + PZ_FRAME_HDR, b->len - PZ_FRAME_HDR);
        g_variant_unref(ref);
        pz_wire_request_clear(&req);

        g_byte_array_set_size(b, 0);
        pz_wire_auth none = {0};
        assert_int_equal(pz_wire_response_encode(b, 1u << 20, params, ID, 5, "s", -3, str + (sizes[i] > 10 ? sizes[i] - 10 : 0),
                                                 i % 2 ? &sa : &none),
                         0);
        pz_wire_response resp;
        assert_int_equal(decode_frame(b, &kind, NULL, &resp), 0);
        ref = g_variant_ref_sink(g_variant_new(
            "(yyv)", 1, 2,
            g_variant_new("((v@aytsis)@ay)", params, g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, ID, 16, 1),
                          (guint64)5, "s", -3, resp.message,
                          g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, resp.auth, resp.auth_len, 1))));
        assert_int_equal(g_variant_get_size(ref), b->len - PZ_FRAME_HDR);
        assert_memory_equal(g_variant_get_data(ref), b->data + PZ_FRAME_HDR, b->len - PZ_FRAME_HDR);
        g_variant_unref(ref);
        pz_wire_response_clear(&resp);
        g_byte_array_unref(b);
        g_variant_unref(params);
        g_free(str);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_from_seed),
        cmocka_unit_test_setup_teardown(test_request_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_response_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mac_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encode_errors, setup, teardown),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test_setup_teardown(test_matches_glib, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
