/* tests/unit/test_rpc_frame.c — length-prefixed frames and the bounded
 * incremental decoder. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <glib.h>

#include <prozsec/error.h>

#include "rpc_frame.h"

/* Append a frame of LEN bytes of value V to B. */
static void add_frame(GByteArray *b, uint32_t len, uint8_t v)
{
    uint8_t hdr[PZ_FRAME_HDR];
    pz_frame_put_header(hdr, len);
    g_byte_array_append(b, hdr, sizeof(hdr));
    guint off = b->len;
    g_byte_array_set_size(b, off + len);
    memset(b->data + off, v, len);
}

/* Feed all of B in chunks of CHUNK bytes, collecting frame lengths and
 * checking each frame's content byte. Returns the last non-EAGAIN code of
 * _next (0 when all went well). */
static int feed_all(pz_frame_decoder *d, const GByteArray *b, size_t chunk, GArray *lens)
{
    size_t off = 0;
    while (off < b->len) {
        size_t n = b->len - off < chunk ? b->len - off : chunk;
        size_t used = 0;
        assert_int_equal(pz_frame_decoder_feed(d, b->data + off, n, &used), 0);
        off += used;
        for (;;) {
            const uint8_t *f;
            size_t len;
            int rc = pz_frame_decoder_next(d, &f, &len);
            if (rc == PZ_EAGAIN)
                break;
            if (rc)
                return rc;
            for (size_t i = 1; i < len; i++)
                assert_int_equal(f[i], f[0]);
            guint32 l = (guint32)len;
            g_array_append_val(lens, l);
        }
        if (used == 0 && d->failed)
            return PZ_EPROTO;
    }
    return 0;
}

static void test_header(void **state)
{
    (void)state;
    static const struct {
        uint32_t len;
        uint8_t bytes[4];
    } cases[] = {
        {1, {0, 0, 0, 1}},
        {256, {0, 0, 1, 0}},
        {0x01020304, {1, 2, 3, 4}},
        {0xffffffffu, {0xff, 0xff, 0xff, 0xff}},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        uint8_t h[4];
        pz_frame_put_header(h, cases[i].len);
        assert_memory_equal(h, cases[i].bytes, 4);
        assert_int_equal(pz_frame_get_header(h), cases[i].len);
    }
}

static void test_init_range(void **state)
{
    (void)state;
    pz_frame_decoder d;
    assert_int_equal(pz_frame_decoder_init(&d, 0), PZ_ERANGE);
    assert_int_equal(pz_frame_decoder_init(&d, PZ_FRAME_MIN_MAX - 1), PZ_ERANGE);
    assert_int_equal(pz_frame_decoder_init(&d, (size_t)PZ_FRAME_MAX_MAX + 1), PZ_ERANGE);
    assert_int_equal(pz_frame_decoder_init(&d, PZ_FRAME_MIN_MAX), 0);
    pz_frame_decoder_clear(&d);
}

/* Frame sequences fed in various chunk sizes. */
static void test_sequences(void **state)
{
    (void)state;
    static const uint32_t seq[] = {1, 5, 256, 1000, 4096, 70000, 1, 65536, 3};
    static const size_t chunks[] = {1, 3, 7, 4096, 100000, 1u << 20};
    for (size_t c = 0; c < G_N_ELEMENTS(chunks); c++) {
        pz_frame_decoder d;
        assert_int_equal(pz_frame_decoder_init(&d, 70000), 0);
        GByteArray *b = g_byte_array_new();
        for (size_t i = 0; i < G_N_ELEMENTS(seq); i++)
            add_frame(b, seq[i], (uint8_t)(i + 1));
        GArray *lens = g_array_new(FALSE, FALSE, sizeof(guint32));
        assert_int_equal(feed_all(&d, b, chunks[c], lens), 0);
        assert_int_equal(lens->len, G_N_ELEMENTS(seq));
        for (size_t i = 0; i < G_N_ELEMENTS(seq); i++)
            assert_int_equal(g_array_index(lens, guint32, i), seq[i]);
        assert_int_equal(pz_frame_decoder_pending(&d), 0);
        /* Never more than one maximal frame plus its header. */
        assert_true(d.cap <= PZ_FRAME_HDR + 70000);
        g_array_free(lens, TRUE);
        g_byte_array_unref(b);
        pz_frame_decoder_clear(&d);
    }
}

/* Bad lengths: sticky PZ_EPROTO. */
static void test_bad_lengths(void **state)
{
    (void)state;
    static const uint32_t bad[] = {0, 1025, 0xffffffffu};
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        pz_frame_decoder d;
        assert_int_equal(pz_frame_decoder_init(&d, 1024), 0);
        GByteArray *b = g_byte_array_new();
        add_frame(b, 3, 1);
        uint8_t h[4];
        pz_frame_put_header(h, bad[i]);
        g_byte_array_append(b, h, 4);
        GArray *lens = g_array_new(FALSE, FALSE, sizeof(guint32));
        assert_int_equal(feed_all(&d, b, 2, lens), PZ_EPROTO);
        assert_int_equal(lens->len, 1); /* the good frame before it came out */
        const uint8_t *f;
        size_t len;
        assert_int_equal(pz_frame_decoder_next(&d, &f, &len), PZ_EPROTO);
        assert_true(pz_frame_decoder_ready(&d));
        size_t avail = 7;
        assert_null(pz_frame_decoder_space(&d, &avail));
        assert_int_equal(avail, 0);
        g_array_free(lens, TRUE);
        g_byte_array_unref(b);
        pz_frame_decoder_clear(&d);
    }
}

/* A frame of exactly the maximum passes; the buffer grows to it. */
static void test_exact_max(void **state)
{
    (void)state;
    pz_frame_decoder d;
    assert_int_equal(pz_frame_decoder_init(&d, 100000), 0);
    GByteArray *b = g_byte_array_new();
    add_frame(b, 100000, 9);
    GArray *lens = g_array_new(FALSE, FALSE, sizeof(guint32));
    assert_int_equal(feed_all(&d, b, 30000, lens), 0);
    assert_int_equal(lens->len, 1);
    assert_int_equal(g_array_index(lens, guint32, 0), 100000);
    assert_int_equal(d.cap, PZ_FRAME_HDR + 100000);
    g_array_free(lens, TRUE);
    g_byte_array_unref(b);
    pz_frame_decoder_clear(&d);
}

/* The zero-copy interface: read into _space, _commit, take frames. A full
 * buffer with a waiting frame offers no space until the frame is taken. */
static void test_space_commit(void **state)
{
    (void)state;
    pz_frame_decoder d;
    assert_int_equal(pz_frame_decoder_init(&d, 256), 0);
    GByteArray *b = g_byte_array_new();
    add_frame(b, 256, 4);
    add_frame(b, 10, 5);
    size_t off = 0;
    int frames = 0;
    while (off < b->len || pz_frame_decoder_ready(&d)) {
        const uint8_t *f;
        size_t len;
        if (pz_frame_decoder_next(&d, &f, &len) == 0) {
            frames++;
            continue;
        }
        size_t avail;
        uint8_t *dst = pz_frame_decoder_space(&d, &avail);
        assert_non_null(dst);
        assert_true(avail > 0);
        size_t n = b->len - off < avail ? b->len - off : avail;
        memcpy(dst, b->data + off, n);
        pz_frame_decoder_commit(&d, n);
        off += n;
        if (pz_frame_decoder_ready(&d) && d.end == d.cap && d.start == 0) {
            size_t a2 = 1;
            assert_null(pz_frame_decoder_space(&d, &a2));
            assert_int_equal(a2, 0);
        }
    }
    assert_int_equal(frames, 2);
    assert_false(pz_frame_decoder_ready(&d));
    g_byte_array_unref(b);
    pz_frame_decoder_clear(&d);
}

/* A partial header or body is not a frame. */
static void test_partial(void **state)
{
    (void)state;
    pz_frame_decoder d;
    assert_int_equal(pz_frame_decoder_init(&d, 1024), 0);
    static const uint8_t part[] = {0, 0, 0, 5, 'a', 'b'};
    const uint8_t *f;
    size_t len, used;
    for (size_t i = 0; i < sizeof(part); i++) {
        assert_int_equal(pz_frame_decoder_feed(&d, part + i, 1, &used), 0);
        assert_int_equal(used, 1);
        assert_int_equal(pz_frame_decoder_next(&d, &f, &len), PZ_EAGAIN);
        assert_false(pz_frame_decoder_ready(&d));
    }
    assert_int_equal(pz_frame_decoder_pending(&d), sizeof(part));
    assert_int_equal(pz_frame_decoder_feed(&d, "cde", 3, &used), 0);
    assert_int_equal(pz_frame_decoder_next(&d, &f, &len), 0);
    assert_int_equal(len, 5);
    assert_memory_equal(f, "abcde", 5);
    pz_frame_decoder_clear(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header),     cmocka_unit_test(test_init_range),   cmocka_unit_test(test_sequences),
        cmocka_unit_test(test_bad_lengths), cmocka_unit_test(test_exact_max),   cmocka_unit_test(test_space_commit),
        cmocka_unit_test(test_partial),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
