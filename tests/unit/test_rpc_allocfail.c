/* tests/unit/test_rpc_allocfail.c — allocation-failure runs (issue 9,
 * point 5) for the frame decoder and the envelope decoder: a stream of a
 * signed request, a large request (its frame outgrows the decoder's first
 * buffer) and a response is decoded with allocation number N failing, for
 * every N until a run completes without reaching N (the malloc shim of
 * tests/unit/allocshim.c). Every run either decodes everything or stops
 * with PZ_ENOMEM, cleanly: nothing it allocated is left (the shim's live
 * count; ASan's leak check too). The envelope decoder allocates nothing at
 * all, which the shim's counter shows. Under valgrind, whose memcheck
 * replaces malloc in the program, the fault injection is skipped unless
 * valgrind runs with --soname-synonyms=somalloc=nouserintercepts. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <glib.h>

#include "allocshim.h"
#include "rpc_frame.h"
#include "rpc_wire.h"

#define MAX_FRAME (1u << 20)
#define N_FRAMES 3

typedef struct stream {
    GByteArray *bytes;
    uint8_t ids[N_FRAMES][PZ_RPC_CALL_ID_LEN];
} stream;

static void make_stream(stream *s)
{
    static const uint8_t seed[32] = {9};
    pz_rpc_key *key;
    assert_int_equal(pz_rpc_key_new(seed, &key, NULL), 0);
    pz_wire_auth sa = {.mode = PZ_WIRE_MODE_SIG, .key = key};
    s->bytes = g_byte_array_new();
    for (int i = 0; i < N_FRAMES; i++)
        for (int j = 0; j < PZ_RPC_CALL_ID_LEN; j++)
            s->ids[i][j] = (uint8_t)(16 * i + j);
    assert_int_equal(pz_wire_request_encode(s->bytes, MAX_FRAME, "keys.get", 5, s->ids[0], "node-a", "node-b", 0,
                                            g_variant_new("(sx)", "hello", (gint64)3), &sa),
                     0);
    char *big = g_malloc(40000);
    memset(big, 'b', 39999);
    big[39999] = 0;
    assert_int_equal(pz_wire_request_encode(s->bytes, MAX_FRAME, "msg.send", 6, s->ids[1], "node-a", "node-b", 0,
                                            g_variant_new_take_string(big), &sa),
                     0);
    assert_int_equal(pz_wire_response_encode(s->bytes, MAX_FRAME, g_variant_new("(u)", 7u), s->ids[2], 7, "node-b",
                                             PZ_RPC_OK, NULL, &sa),
                     0);
    pz_rpc_key_free(key);
}

/* What one run saw. */
typedef struct result {
    int rc;
    int decoded;          /* envelopes decoded and checked */
    size_t decode_allocs; /* allocations attempted inside pz_wire_decode */
    int bad;              /* a decoded field was wrong */
    size_t fail_at;       /* the allocation to fail (0: none) */
    size_t spent;         /* allocations before the current armed stretch */
    int failed;           /* the shim failed one */
} result;

/* Decode every frame the decoder yields now, counting the allocations
 * pz_wire_decode attempts. */
static void drain(pz_frame_decoder *d, const stream *s, result *r)
{
    const uint8_t *f;
    size_t len;
    while (pz_frame_decoder_next(d, &f, &len) == 0) {
        pz_wire_request req;
        pz_wire_response resp;
        int kind;
        /* Counted apart: pz_wire_decode must make no allocation at all. */
        pz_allocshim_report mid;
        pz_allocshim_disarm(&mid);
        r->spent += mid.count;
        r->failed |= mid.failed;
        pz_allocshim_arm(0);
        int rc = pz_wire_decode(f, len, &kind, &req, &resp, NULL);
        pz_allocshim_disarm(&mid);
        r->decode_allocs += mid.count;
        pz_allocshim_arm(r->fail_at > r->spent ? r->fail_at - r->spent : 0);
        if (r->failed)
            pz_allocshim_arm(0);
        if (rc != 0 || r->decoded >= N_FRAMES) {
            r->bad = 1;
            return;
        }
        const uint8_t *id = kind == PZ_WIRE_KIND_REQUEST ? req.call_id : resp.call_id;
        if (memcmp(id, s->ids[r->decoded], PZ_RPC_CALL_ID_LEN) != 0)
            r->bad = 1;
        r->decoded++;
    }
}

/* One run with allocation FAIL_AT failing (0: none), from the decoder's
 * creation to its end, through pz_frame_decoder_feed (USE_SPACE 0) or the
 * _space/_commit pair rpc_chan uses (1), in chunks of 3000 bytes. */
static result run(const stream *s, size_t fail_at, int use_space, size_t *allocs, int *fired)
{
    result r = {0};
    pz_frame_decoder d;
    const uint8_t *p = s->bytes->data;
    size_t n = s->bytes->len, off = 0;
    r.fail_at = fail_at;
    pz_allocshim_arm(fail_at);
    r.rc = pz_frame_decoder_init(&d, MAX_FRAME);
    if (r.rc == 0) {
        while (off < n && r.rc == 0 && !r.bad) {
            size_t chunk = n - off < 3000 ? n - off : 3000;
            if (use_space) {
                size_t avail = 0;
                uint8_t *dst = pz_frame_decoder_space(&d, &avail);
                if (!dst) {
                    if (!pz_frame_decoder_ready(&d))
                        r.rc = PZ_ENOMEM; /* what rpc_chan reports: out of memory for a frame */
                } else {
                    size_t k = chunk < avail ? chunk : avail;
                    memcpy(dst, p + off, k);
                    pz_frame_decoder_commit(&d, k);
                    off += k;
                }
            } else {
                size_t used = 0;
                r.rc = pz_frame_decoder_feed(&d, p + off, chunk, &used);
                off += used;
            }
            if (r.rc == 0)
                drain(&d, s, &r);
        }
        if (r.rc == 0)
            drain(&d, s, &r);
        pz_frame_decoder_clear(&d);
    }
    pz_allocshim_report end;
    pz_allocshim_disarm(&end);
    *allocs = r.spent + end.count;
    *fired = r.failed || end.failed;
    return r;
}

static void test_every_allocation_fails(void **state)
{
    (void)state;
    if (!pz_allocshim_active()) {
        print_message("malloc is not the shim's here (valgrind replaces it in the program unless run with "
                      "--soname-synonyms=somalloc=nouserintercepts): no fault injection\n");
        skip();
    }
    stream s;
    make_stream(&s);
    for (int use_space = 0; use_space <= 1; use_space++) {
        size_t total = 0;
        int fired = 0;
        /* A run without failures first: it decodes everything, and the
         * envelope decoder never allocated. */
        result ok = run(&s, 0, use_space, &total, &fired);
        assert_int_equal(ok.rc, 0);
        assert_false(ok.bad);
        assert_int_equal(ok.decoded, N_FRAMES);
        assert_int_equal(ok.decode_allocs, 0);
        assert_true(total >= 2); /* the decoder's buffer, and its growth for the large frame */
        size_t failures = 0;
        for (size_t n = 1;; n++) {
            size_t allocs = 0;
            result r = run(&s, n, use_space, &allocs, &fired);
            assert_false(r.bad);
            assert_int_equal(r.decode_allocs, 0);
            assert_int_equal(pz_allocshim_live(), 0); /* the run freed what it allocated */
            if (!fired) {
                /* N is past the last allocation: the run is a clean one. */
                assert_int_equal(r.rc, 0);
                assert_int_equal(r.decoded, N_FRAMES);
                break;
            }
            failures++;
            /* The failed allocation is a clean error, never a crash or a
             * wrong frame: frames before it were decoded, none after. */
            assert_int_equal(r.rc, PZ_ENOMEM);
            assert_true(r.decoded < N_FRAMES);
            assert_true(n < 1000);
        }
        print_message("%s: %zu allocations in a clean run, each failed in turn: %zu clean PZ_ENOMEM runs\n",
                      use_space ? "space/commit" : "feed", total, failures);
        assert_int_equal(failures, total);
    }
    g_byte_array_unref(s.bytes);
}

/* Copying a decoded value out of the frame (for a handler) fails cleanly
 * when its one fallible allocation fails. GLib's own allocations that
 * follow it (GBytes, GVariant) abort on failure by GLib's design; they are
 * outside the decoders. */
static void test_value_dup_fails(void **state)
{
    (void)state;
    if (!pz_allocshim_active())
        skip();
    stream s;
    make_stream(&s);
    pz_wire_request req;
    int kind;
    assert_int_equal(pz_wire_decode(s.bytes->data + PZ_FRAME_HDR, pz_frame_get_header(s.bytes->data), &kind, &req,
                                    NULL, NULL),
                     0);
    pz_allocshim_report rep;
    pz_allocshim_arm(1);
    GVariant *v = pz_wire_value_dup(&req.params);
    pz_allocshim_disarm(&rep);
    assert_true(rep.failed);
    assert_null(v);
    assert_int_equal(pz_allocshim_live(), 0);
    v = pz_wire_value_dup(&req.params);
    assert_non_null(v);
    assert_true(g_variant_is_of_type(v, G_VARIANT_TYPE("(sx)")));
    g_variant_unref(v);
    g_byte_array_unref(s.bytes);
}

int main(void)
{
    /* Warm up GLib and libgcrypt before counting. */
    pz_allocshim_init();
    pz_wire_decode((const uint8_t *)"", 0, &(int){0}, NULL, NULL, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_allocation_fails),
        cmocka_unit_test(test_value_dup_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
