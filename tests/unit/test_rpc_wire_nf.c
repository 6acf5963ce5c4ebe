/* tests/unit/test_rpc_wire_nf.c — the envelope reader of core/rpc_wire.c
 * against GLib: for every seed of the fuzz corpus and for many seeded
 * random mutations of valid envelopes and values, the reader accepts iff
 * g_variant_is_normal_form (plus the old field checks) accepts, and the
 * fields agree (tests/unit/rpc_wire_ref.c is the reference). Also edge
 * cases one by one: framing offsets of a non-minimal size, padding,
 * nesting limits, booleans, strings, object paths, signatures, maybes and
 * the reader's own type-string limit. */
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
#include "rpc_wire_ref.h"

#ifndef PZ_TEST_SRCDIR
#define PZ_TEST_SRCDIR "."
#endif

/* Mutations per valid envelope / value; sizes keep the run to seconds. */
#define ENVELOPES 400
#define ENV_MUTATIONS 100
#define VALUES 1000
#define VALUE_MUTATIONS 40

typedef struct tally {
    unsigned accept, refuse, limited;
} tally;

static void count(tally *t, ref_outcome o, const char *what, const uint8_t *d, size_t n, const char *ctx)
{
    if (o == REF_DISAGREE) {
        GString *hex = g_string_new(NULL);
        for (size_t i = 0; i < n && i < 512; i++)
            g_string_append_printf(hex, "%02x", d[i]);
        print_error("%s: %s; %zu bytes: %s\n", ctx, what, n, hex->str);
        g_string_free(hex, TRUE);
        fail();
    }
    if (o == REF_AGREE_ACCEPT)
        t->accept++;
    else if (o == REF_AGREE_REFUSE)
        t->refuse++;
    else
        t->limited++;
}

/* ------------------------------------------------------------------------ */
/* Random GVariants of random types. */

static const char basics[] = "bynqiuxtdsogh";

static char *rand_string(GRand *r)
{
    static const char *const pieces[] = {"a", "Z", "0", "é", "\xe2\x82\xac", "\xf0\x9f\x98\x80", " ", "/", "."};
    int len = g_rand_int_range(r, 0, 10) == 0 ? g_rand_int_range(r, 200, 400) : g_rand_int_range(r, 0, 12);
    GString *s = g_string_new(NULL);
    while ((int)s->len < len)
        g_string_append(s, pieces[g_rand_int_range(r, 0, G_N_ELEMENTS(pieces))]);
    return g_string_free(s, FALSE);
}

static GVariant *rand_basic(GRand *r, char c)
{
    switch (c) {
    case 'b': return g_variant_new_boolean(g_rand_boolean(r));
    case 'y': return g_variant_new_byte((guint8)g_rand_int(r));
    case 'n': return g_variant_new_int16((gint16)g_rand_int(r));
    case 'q': return g_variant_new_uint16((guint16)g_rand_int(r));
    case 'i': return g_variant_new_int32((gint32)g_rand_int(r));
    case 'u': return g_variant_new_uint32(g_rand_int(r));
    case 'x': return g_variant_new_int64((gint64)g_rand_int(r) << 20);
    case 't': return g_variant_new_uint64((guint64)g_rand_int(r) << 24 | g_rand_int(r));
    case 'd': return g_variant_new_double(g_rand_double(r));
    case 'h': return g_variant_new_handle((gint32)g_rand_int_range(r, 0, 100));
    case 'o': {
        static const char *const paths[] = {"/", "/a", "/org/prozchain/Node_1", "/x/y/z0"};
        return g_variant_new_object_path(paths[g_rand_int_range(r, 0, G_N_ELEMENTS(paths))]);
    }
    case 'g': {
        static const char *const sigs[] = {"", "s", "a{sv}", "(iu)as", "v"};
        return g_variant_new_signature(sigs[g_rand_int_range(r, 0, G_N_ELEMENTS(sigs))]);
    }
    default: {
        char *s = rand_string(r);
        GVariant *v = g_variant_new_take_string(s);
        return v;
    }
    }
}

/* A random type string (depth-limited) appended to T. */
static void rand_type(GRand *r, GString *t, int depth)
{
    int k = g_rand_int_range(r, 0, depth >= 4 ? 13 : 19);
    if (k < 13) {
        g_string_append_c(t, basics[k]);
        return;
    }
    switch (k) {
    case 13: g_string_append_c(t, 'v'); return;
    case 14:
    case 15: g_string_append_c(t, 'a'); rand_type(r, t, depth + 1); return;
    case 16: g_string_append_c(t, 'm'); rand_type(r, t, depth + 1); return;
    case 17: {
        int n = g_rand_int_range(r, 0, 5);
        g_string_append_c(t, '(');
        for (int i = 0; i < n; i++)
            rand_type(r, t, depth + 1);
        g_string_append_c(t, ')');
        return;
    }
    default:
        g_string_append_c(t, '{');
        g_string_append_c(t, basics[g_rand_int_range(r, 0, 13)]);
        rand_type(r, t, depth + 1);
        g_string_append_c(t, '}');
        return;
    }
}

static GVariant *rand_value(GRand *r, const GVariantType *type, int depth);

static GVariant *rand_variant_value(GRand *r, int depth)
{
    GString *t = g_string_new(NULL);
    rand_type(r, t, depth + 1);
    GVariant *v = rand_value(r, G_VARIANT_TYPE(t->str), depth + 1);
    g_string_free(t, TRUE);
    return v;
}

static GVariant *rand_value(GRand *r, const GVariantType *type, int depth)
{
    if (g_variant_type_is_basic(type))
        return rand_basic(r, g_variant_type_peek_string(type)[0]);
    if (g_variant_type_is_variant(type))
        return g_variant_new_variant(depth > 6 ? g_variant_new_byte(1) : rand_variant_value(r, depth));
    if (g_variant_type_is_maybe(type)) {
        const GVariantType *e = g_variant_type_element(type);
        return g_variant_new_maybe(e, g_rand_boolean(r) ? rand_value(r, e, depth + 1) : NULL);
    }
    if (g_variant_type_is_array(type)) {
        const GVariantType *e = g_variant_type_element(type);
        int n = g_rand_int_range(r, 0, 8) == 0 ? g_rand_int_range(r, 40, 90) : g_rand_int_range(r, 0, 5);
        GVariant **kids = g_new(GVariant *, n ? n : 1);
        for (int i = 0; i < n; i++)
            kids[i] = rand_value(r, e, depth + 1);
        GVariant *v = g_variant_new_array(e, kids, (gsize)n);
        g_free(kids);
        return v;
    }
    /* tuple or dict entry */
    gsize n = g_variant_type_n_items(type);
    GVariant **kids = g_new(GVariant *, n ? n : 1);
    const GVariantType *m = g_variant_type_first(type);
    for (gsize i = 0; i < n; i++, m = g_variant_type_next(m))
        kids[i] = rand_value(r, m, depth + 1);
    GVariant *v = g_variant_type_is_dict_entry(type) ? g_variant_new_dict_entry(kids[0], kids[1])
                                                     : g_variant_new_tuple(kids, n);
    g_free(kids);
    return v;
}

/* One random mutation of B in place (it may change the length). */
static void mutate(GRand *r, GByteArray *b)
{
    static const uint8_t specials[] = {0, 1, 2, 0x7f, 0x80, 0xc3, 0xff, '(', ')', 'a', 'v', 's', '{', '}', 'y', 'm'};
    guint n = b->len;
    int op = g_rand_int_range(r, 0, 10);
    if (n == 0 || op == 9) {
        guint8 x = specials[g_rand_int_range(r, 0, sizeof(specials))];
        guint at = n ? (guint)g_rand_int_range(r, 0, (gint32)n + 1) : 0;
        g_byte_array_append(b, &x, 1);
        memmove(b->data + at + 1, b->data + at, n - at);
        b->data[at] = x;
        return;
    }
    guint i = (guint)g_rand_int_range(r, 0, (gint32)n);
    switch (op) {
    case 0:
    case 1:
        b->data[i] ^= (uint8_t)(1u << g_rand_int_range(r, 0, 8));
        break;
    case 2:
    case 3:
        b->data[i] = specials[g_rand_int_range(r, 0, sizeof(specials))];
        break;
    case 4:
        b->data[i] = (uint8_t)g_rand_int(r);
        break;
    case 5:
        g_byte_array_remove_index(b, i);
        break;
    case 6:
        g_byte_array_set_size(b, i);
        break;
    case 7: /* an offset-like byte near the end */
        b->data[n - 1 - (i % (n < 8 ? n : 8))] += (uint8_t)g_rand_int_range(r, -2, 3);
        break;
    default: { /* copy a byte from elsewhere */
        guint j = (guint)g_rand_int_range(r, 0, (gint32)n);
        b->data[i] = b->data[j];
        break;
    }
    }
}

/* ------------------------------------------------------------------------ */
/* Envelopes. */

static pz_rpc_key *test_key(void)
{
    static const uint8_t seed[32] = {7, 7, 7};
    pz_rpc_key *k = NULL;
    assert_int_equal(pz_rpc_key_new(seed, &k, NULL), 0);
    return k;
}

/* A valid envelope (payload, no frame header) of a random kind with random
 * params/data. */
static GByteArray *rand_envelope(GRand *r, pz_rpc_key *key, pz_wire_mac *mac)
{
    static const char *const methods[] = {"sys.ping", "keys.get", "a", "msg.send"};
    static const char *const ids[] = {"node-a", "n", "Node_1.b-c", "x"};
    uint8_t id[PZ_RPC_CALL_ID_LEN];
    for (size_t i = 0; i < sizeof(id); i++)
        id[i] = (uint8_t)g_rand_int(r);
    GVariant *v = NULL;
    if (g_rand_int_range(r, 0, 6)) {
        GString *t = g_string_new(NULL);
        rand_type(r, t, 0);
        v = rand_value(r, G_VARIANT_TYPE(t->str), 0);
        g_string_free(t, TRUE);
    }
    int mode = g_rand_int_range(r, 0, 3);
    pz_wire_auth auth = {.mode = mode, .key = key, .mac = mac};
    GByteArray *b = g_byte_array_new();
    if (g_rand_boolean(r)) {
        if (!mode)
            auth.mode = PZ_WIRE_MODE_SIG;
        assert_int_equal(pz_wire_request_encode(b, 1u << 22, methods[g_rand_int_range(r, 0, 4)],
                                                (uint64_t)g_rand_int(r) << 30, id, ids[g_rand_int_range(r, 0, 4)],
                                                ids[g_rand_int_range(r, 0, 4)], g_rand_int(r), v, &auth),
                         0);
    } else {
        char *msg = g_rand_boolean(r) ? rand_string(r) : g_strdup("");
        assert_int_equal(pz_wire_response_encode(b, 1u << 22, v, id, (uint64_t)g_rand_int(r) << 30,
                                                 ids[g_rand_int_range(r, 0, 4)], (int32_t)g_rand_int_range(r, -5, 1200),
                                                 msg, &auth),
                         0);
        g_free(msg);
    }
    g_byte_array_remove_range(b, 0, PZ_FRAME_HDR);
    return b;
}

static void test_mutated_envelopes(void **state)
{
    (void)state;
    GRand *r = g_rand_new_with_seed(0x70727a73); /* fixed: the run is repeatable */
    pz_rpc_key *key = test_key();
    uint8_t mk[32] = {1};
    pz_wire_mac *mac;
    assert_int_equal(pz_wire_mac_new(mk, sizeof(mk), &mac), 0);
    tally t = {0};
    for (int e = 0; e < ENVELOPES; e++) {
        GByteArray *b = rand_envelope(r, key, mac);
        const char *what;
        /* The unmutated envelope is accepted, with its fields. */
        ref_outcome o = ref_compare_envelope(b->data, b->len, &what);
        count(&t, o, what, b->data, b->len, "valid envelope");
        assert_int_equal(o, REF_AGREE_ACCEPT);
        for (int m = 0; m < ENV_MUTATIONS; m++) {
            GByteArray *c = g_byte_array_sized_new(b->len + 1);
            g_byte_array_append(c, b->data, b->len);
            int steps = g_rand_int_range(r, 1, 4);
            for (int s = 0; s < steps; s++)
                mutate(r, c);
            o = ref_compare_envelope(c->data, c->len, &what);
            count(&t, o, what, c->data, c->len, "mutated envelope");
            g_byte_array_unref(c);
        }
        g_byte_array_unref(b);
    }
    print_message("envelopes: %u compared, %u accepted by both, %u refused by both, %u over the type limit\n",
                  t.accept + t.refuse + t.limited, t.accept, t.refuse, t.limited);
    /* Both sides of the question were asked many times. */
    assert_true(t.accept > ENVELOPES);
    assert_true(t.refuse > ENVELOPES);
    pz_wire_mac_free(mac);
    pz_rpc_key_free(key);
    g_rand_free(r);
}

static void test_mutated_values(void **state)
{
    (void)state;
    GRand *r = g_rand_new_with_seed(0x6e666e66);
    tally t = {0};
    for (int i = 0; i < VALUES; i++) {
        GString *ty = g_string_new(NULL);
        rand_type(r, ty, 0);
        GVariant *v = g_variant_ref_sink(rand_value(r, G_VARIANT_TYPE(ty->str), 0));
        GByteArray *b = g_byte_array_new();
        g_byte_array_append(b, g_variant_get_data(v), (guint)g_variant_get_size(v));
        const char *what;
        ref_outcome o = ref_compare_value(ty->str, b->data, b->len, &what);
        count(&t, o, what, b->data, b->len, ty->str);
        assert_int_equal(o, REF_AGREE_ACCEPT);
        /* As a variant too: value ‖ 0 ‖ type, whose type string mutations
         * also exercise the type-string scanner. */
        GByteArray *vb = g_byte_array_new();
        g_byte_array_append(vb, b->data, b->len);
        g_byte_array_append(vb, (const guint8 *)"", 1);
        g_byte_array_append(vb, (const guint8 *)ty->str, (guint)ty->len);
        for (int m = 0; m < VALUE_MUTATIONS; m++) {
            GByteArray *c = g_byte_array_new();
            int as_variant = m % 2;
            GByteArray *src = as_variant ? vb : b;
            g_byte_array_append(c, src->data, src->len);
            int steps = g_rand_int_range(r, 1, 3);
            for (int s = 0; s < steps; s++)
                mutate(r, c);
            o = ref_compare_value(as_variant ? "v" : ty->str, c->data, c->len, &what);
            count(&t, o, what, c->data, c->len, as_variant ? "v" : ty->str);
            g_byte_array_unref(c);
        }
        g_byte_array_unref(vb);
        g_byte_array_unref(b);
        g_variant_unref(v);
        g_string_free(ty, TRUE);
    }
    print_message("values: %u compared, %u accepted by both, %u refused by both\n", t.accept + t.refuse + t.limited,
                  t.accept, t.refuse);
    assert_true(t.accept > VALUES);
    assert_true(t.refuse > VALUES);
    g_rand_free(r);
}

/* Every seed of the fuzz corpus, read as fuzz_rpc_frame reads it: the first
 * byte picks a chunk size, the rest is an envelope on its own and a stream
 * of frames; plus mutations of each frame that decodes. */
static void test_corpus(void **state)
{
    (void)state;
    const char *srcdir = g_getenv("srcdir") ? g_getenv("srcdir") : PZ_TEST_SRCDIR;
    char *dir = g_build_filename(srcdir, "tests", "fuzz", "corpus", "rpc_frame", NULL);
    GDir *d = g_dir_open(dir, 0, NULL);
    assert_non_null(d);
    GRand *r = g_rand_new_with_seed(0x73656564);
    tally t = {0};
    unsigned seeds = 0, frames = 0;
    const char *name;
    while ((name = g_dir_read_name(d))) {
        char *path = g_build_filename(dir, name, NULL), *data;
        gsize n;
        assert_true(g_file_get_contents(path, &data, &n, NULL));
        seeds++;
        const char *what;
        if (n >= 1) {
            const uint8_t *p = (const uint8_t *)data + 1;
            count(&t, ref_compare_envelope(p, n - 1, &what), what, p, n - 1, name);
            pz_frame_decoder fd;
            assert_int_equal(pz_frame_decoder_init(&fd, 1u << 20), 0);
            size_t used;
            assert_int_equal(pz_frame_decoder_feed(&fd, p, n - 1, &used), 0);
            const uint8_t *f;
            size_t len;
            while (pz_frame_decoder_next(&fd, &f, &len) == 0) {
                frames++;
                ref_outcome o = ref_compare_envelope(f, len, &what);
                count(&t, o, what, f, len, name);
                for (int m = 0; m < 200; m++) {
                    GByteArray *c = g_byte_array_new();
                    g_byte_array_append(c, f, (guint)len);
                    mutate(r, c);
                    count(&t, ref_compare_envelope(c->data, c->len, &what), what, c->data, c->len, name);
                    g_byte_array_unref(c);
                }
                if (used < n - 1) {
                    size_t more;
                    assert_int_equal(pz_frame_decoder_feed(&fd, p + used, n - 1 - used, &more), 0);
                    used += more;
                }
            }
            pz_frame_decoder_clear(&fd);
        }
        g_free(data);
        g_free(path);
    }
    g_dir_close(d);
    print_message("corpus: %u seeds, %u frames; %u accepted by both, %u refused by both\n", seeds, frames, t.accept,
                  t.refuse);
    assert_true(seeds >= 13);
    assert_true(frames >= 13);
    g_rand_free(r);
    g_free(dir);
}

/* ------------------------------------------------------------------------ */
/* Edge cases one by one. */

typedef struct vcase {
    const char *type;
    const char *hex;
    int normal; /* what GLib says (checked too) */
} vcase;

static GByteArray *unhex(const char *hex)
{
    GByteArray *b = g_byte_array_new();
    for (size_t i = 0; hex[i] && hex[i + 1]; i += 2) {
        char h[3] = {hex[i], hex[i + 1], 0};
        guint8 x = (guint8)strtoul(h, NULL, 16);
        g_byte_array_append(b, &x, 1);
    }
    return b;
}

static void test_edge_cases(void **state)
{
    (void)state;
    static const vcase cases[] = {
        {"b", "00", 1},
        {"b", "01", 1},
        {"b", "02", 0},                     /* booleans are 0 or 1 */
        {"ab", "000100", 1},
        {"ab", "0002", 0},
        {"s", "6100", 1},
        {"s", "61", 0},                     /* not NUL-terminated */
        {"s", "610062", 0},                 /* inner NUL / bytes after it */
        {"s", "c300", 0},                   /* bad UTF-8 */
        {"s", "eda08000", 0},               /* UTF-8 surrogate */
        {"s", "", 0},
        {"o", "2f00", 1},
        {"o", "2f6100", 1},
        {"o", "2f612f00", 0},               /* trailing slash */
        {"o", "6100", 0},
        {"g", "00", 1},
        {"g", "61287300", 0},               /* not a signature */
        {"g", "7b737d00", 0},               /* a dict entry alone is no signature */
        {"(yt)", "010000000000000002000000000000000", 1},
        {"(yt)", "01000000000000000200000000000000", 1},
        {"(yt)", "01ff000000000000020000000000000000", 0}, /* padding not zero (and size) */
        {"(yt)", "01ff0000000000000200000000000000", 0},
        {"()", "00", 1},
        {"()", "01", 0},
        {"(yy)", "0102", 1},
        {"(ty)", "0100000000000000020000000000000000", 0},
        {"(ty)", "01000000000000000200000000000000", 1},
        {"(ty)", "01000000000000000201000000000000", 0}, /* trailing padding of a fixed tuple */
        {"(sy)", "61000102", 1},
        {"(sy)", "6100010203", 0},          /* trailing byte */
        {"(sy)", "61000101", 0},            /* offset points past the end */
        {"(ss)", "610062000200", 0},        /* offset too wide for the size: not minimal */
        {"(ss)", "6100620002", 1},
        {"as", "610062000204", 1},
        {"as", "61006200020400", 0},
        {"as", "6100620004", 0},            /* offsets out of order */
        {"as", "00", 0},
        {"as", "", 1},
        {"ay", "", 1},
        {"at", "0100000000000000", 1},
        {"at", "01000000000000", 0},        /* not a multiple of the element size */
        {"mi", "", 1},
        {"mi", "01000000", 1},
        {"mi", "010000", 0},
        {"ms", "610000", 1},
        {"ms", "6100", 0},                  /* no Just marker */
        {"ms", "00", 0},                    /* Just(""), string without its NUL */
        {"v", "0000287929", 1},             /* (y) holding 0 */
        {"v", "000028287929", 0},           /* "()" needs exactly 1 byte */
        {"v", "00002829", 1},
        {"v", "01000079", 0},               /* type "y" with 2 bytes */
        {"v", "010079", 1},
        {"v", "01007979", 0},               /* two types */
        {"v", "010072", 0},                 /* "r": not definite */
        {"v", "01003f", 0},                 /* "?" */
        {"v", "0100", 0},                   /* empty type */
        {"v", "0179", 0},                   /* no separator */
        {"v", "", 0},
        {"v", "00617b79797d", 1},           /* empty a{yy} */
        {"v", "0000617b79797d", 0},         /* a{yy} of 1 byte */
        {"v", "00617b3f797d", 0},           /* indefinite key */
        {"{ys}", "0161000000", 0},
        {"{ys}", "01610000", 0},
        {"{ys}", "016100", 1},
        {"{yy}", "0102", 1},
        {"a{yy}", "01020304", 1},
        {"(uay)", "0100000002", 1},
        {"(uay)", "01000000020304", 1},
        {"(ayu)", "0203000001000000", 0},   /* misplaced padding */
        {"(ayu)", "0203000001000000" "02", 1},
        {"(ayu)", "0203ff0001000000" "02", 0},
        {"(vu)", "0100790000000000" "070000000" "3", 0},
        {"((yy)s)", "0102610000", 0},
        {"((yy)s)", "01026100", 1},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        GByteArray *b = unhex(cases[i].hex);
        const char *what = NULL;
        ref_outcome o = ref_compare_value(cases[i].type, b->data, b->len, &what);
        if (o == REF_DISAGREE || (o == REF_AGREE_ACCEPT) != cases[i].normal)
            print_error("case %zu: %s %s: outcome %d (%s)\n", i, cases[i].type, cases[i].hex, (int)o,
                        what ? what : "-");
        assert_int_not_equal(o, REF_DISAGREE);
        assert_int_equal(o == REF_AGREE_ACCEPT, cases[i].normal);
        g_byte_array_unref(b);
    }
}

/* Wrap the value bytes of B (of type TYPE) in a variant, in place. */
static void wrap_variant(GByteArray *b, const char *type)
{
    g_byte_array_append(b, (const guint8 *)"", 1);
    g_byte_array_append(b, (const guint8 *)type, (guint)strlen(type));
}

/* Nesting limits. GLib refuses a value nested 128 deep, and a variant
 * whose type is too deep for the depth it sits at; that arithmetic is
 * unsigned (a type 129 deep passes it, and only the values inside stop),
 * and values may nest less deeply than their type (empty arrays,
 * Nothing). Types 120..130 deep, as the value of 1 to 4 nested variants. */
static void test_depth(void **state)
{
    (void)state;
    static const int depths[] = {1, 60, 63, 64, 65, 120, 124, 125, 126, 127, 128, 129, 130};
    /* Container wrapped K times around a core value: array, maybe, 1-tuple,
     * dict entry, 2-tuple with a byte first, arrays around one such
     * 2-tuple (the deep types within the reader's type-string limit). */
    static const char kinds[] = "am({pq";
    unsigned n = 0, accepted = 0;
    for (size_t ki = 0; ki < sizeof(kinds) - 1; ki++) {
        for (int core = 0; core < 4; core++) {
            for (size_t di = 0; di < G_N_ELEMENTS(depths); di++) {
                GVariant *v = core == 0   ? g_variant_new_byte(7)
                              : core == 1 ? g_variant_new_array(G_VARIANT_TYPE_BYTE, NULL, 0)
                              : core == 2 ? g_variant_new_string("a")
                                          : g_variant_new_maybe(G_VARIANT_TYPE_BYTE, NULL);
                for (int j = 0; j < depths[di]; j++) {
                    switch (kinds[ki]) {
                    case 'a': v = g_variant_new_array(NULL, &v, 1); break;
                    case 'm': v = g_variant_new_maybe(NULL, v); break;
                    case '(': v = g_variant_new_tuple(&v, 1); break;
                    case '{': v = g_variant_new_dict_entry(g_variant_new_byte(1), v); break;
                    case 'q':
                        if (j > 0) {
                            v = g_variant_new_array(NULL, &v, 1);
                            break;
                        }
                        /* fall through */
                    default: {
                        GVariant *two[2] = {g_variant_new_byte(1), v};
                        v = g_variant_new_tuple(two, 2);
                        break;
                    }
                    }
                }
                v = g_variant_ref_sink(v);
                for (int wraps = 1; wraps <= 3; wraps++) {
                    GByteArray *b = g_byte_array_new();
                    g_byte_array_append(b, g_variant_get_data(v), (guint)g_variant_get_size(v));
                    wrap_variant(b, g_variant_get_type_string(v));
                    for (int w = 1; w < wraps; w++)
                        wrap_variant(b, "v");
                    const char *what;
                    ref_outcome o = ref_compare_value("v", b->data, b->len, &what);
                    if (o == REF_DISAGREE)
                        print_error("depth: %c x %d around core %d, %d variants: %s\n", kinds[ki], depths[di], core,
                                    wraps, what);
                    assert_int_not_equal(o, REF_DISAGREE);
                    n++;
                    accepted += o == REF_AGREE_ACCEPT;
                    g_byte_array_unref(b);
                }
                g_variant_unref(v);
            }
        }
    }
    print_message("depth: %u cases, %u accepted by both\n", n, accepted);

    /* Variants in variants around a byte, 1 to 130 deep. */
    for (int d = 1; d <= 130; d++) {
        GVariant *v = g_variant_new_byte(7);
        for (int k = 0; k < d; k++)
            v = g_variant_new_variant(v);
        v = g_variant_ref_sink(v);
        const char *what;
        ref_outcome o = ref_compare_value("v", g_variant_get_data(v), g_variant_get_size(v), &what);
        assert_int_not_equal(o, REF_DISAGREE);
        g_variant_unref(v);
    }
}

/* Framing offsets of 1, 2 and 4 bytes at their size boundaries. */
static void test_offset_sizes(void **state)
{
    (void)state;
    /* String lengths around where the tuple's and the array's offsets
     * change size (and where one size wider would still be consistent). */
    static const size_t lens[] = {0,     1,     100,   244,   245,   246,   247,   248,   249,   250,   251,
                                  252,   253,   254,   255,   256,   300,   65520, 65521, 65522, 65523, 65524,
                                  65525, 65526, 65527, 65528, 65529, 65530, 65531, 65532, 65533, 65534, 65535,
                                  65536, 70000};
    for (size_t i = 0; i < G_N_ELEMENTS(lens); i++) {
        char *s = g_malloc(lens[i] + 1);
        memset(s, 'q', lens[i]);
        s[lens[i]] = 0;
        GVariant *v = g_variant_ref_sink(g_variant_new("(sasy)", s, NULL, 9));
        const char *types[] = {"(sasy)"};
        const char *what;
        ref_outcome o = ref_compare_value(types[0], g_variant_get_data(v), g_variant_get_size(v), &what);
        assert_int_equal(o, REF_AGREE_ACCEPT);
        /* The same value with framing offsets one size wider: refused. */
        GByteArray *b = g_byte_array_new();
        size_t n = g_variant_get_size(v);
        const uint8_t *p = g_variant_get_data(v);
        unsigned osz = n > 0xffff ? 4 : n > 0xff ? 2 : 1, wider = osz * 2;
        size_t body = n - 2 * osz;
        g_byte_array_append(b, p, (guint)body);
        for (int k = 1; k >= 0; k--) {
            uint64_t off = 0;
            for (unsigned j = 0; j < osz; j++)
                off |= (uint64_t)p[body + (size_t)k * osz + j] << (8 * j);
            for (unsigned j = 0; j < wider; j++) {
                guint8 x = (guint8)(off >> (8 * j));
                g_byte_array_append(b, &x, 1);
            }
        }
        o = ref_compare_value(types[0], b->data, b->len, &what);
        assert_int_not_equal(o, REF_DISAGREE);
        g_byte_array_unref(b);
        g_variant_unref(v);

        /* An array of two strings, its offsets (in order) widened too. */
        const char *strv[] = {s, "tail", NULL};
        v = g_variant_ref_sink(g_variant_new_strv(strv, -1));
        n = g_variant_get_size(v);
        p = g_variant_get_data(v);
        o = ref_compare_value("as", p, n, &what);
        assert_int_equal(o, REF_AGREE_ACCEPT);
        osz = n > 0xffff ? 4 : n > 0xff ? 2 : 1;
        wider = osz * 2;
        body = n - 2 * osz;
        b = g_byte_array_new();
        g_byte_array_append(b, p, (guint)body);
        for (int k = 0; k < 2; k++) {
            uint64_t off = 0;
            for (unsigned j = 0; j < osz; j++)
                off |= (uint64_t)p[body + (size_t)k * osz + j] << (8 * j);
            for (unsigned j = 0; j < wider; j++) {
                guint8 x = (guint8)(off >> (8 * j));
                g_byte_array_append(b, &x, 1);
            }
        }
        o = ref_compare_value("as", b->data, b->len, &what);
        assert_int_not_equal(o, REF_DISAGREE);
        g_byte_array_unref(b);
        g_variant_unref(v);
        g_free(s);
    }
}

/* The reader's own limit: a params type string longer than
 * PZ_WIRE_TYPE_MAX is refused (GLib would accept it). */
static void test_type_limit(void **state)
{
    (void)state;
    pz_rpc_key *key = test_key();
    for (int len = PZ_WIRE_TYPE_MAX - 2; len <= PZ_WIRE_TYPE_MAX + 2; len++) {
        /* "(yyy...y)" with LEN characters in all. */
        GVariantBuilder gb;
        g_variant_builder_init(&gb, G_VARIANT_TYPE_TUPLE);
        for (int k = 0; k < len - 2; k++)
            g_variant_builder_add(&gb, "y", (guint8)k);
        GVariant *params = g_variant_builder_end(&gb);
        GByteArray *b = g_byte_array_new();
        uint8_t id[PZ_RPC_CALL_ID_LEN] = {0};
        pz_wire_auth sa = {.mode = PZ_WIRE_MODE_SIG, .key = key};
        assert_int_equal(pz_wire_request_encode(b, 1u << 20, "m", 1, id, "a", "b", 0, params, &sa), 0);
        const char *what;
        ref_outcome o = ref_compare_envelope(b->data + PZ_FRAME_HDR, b->len - PZ_FRAME_HDR, &what);
        assert_int_equal(o, len <= PZ_WIRE_TYPE_MAX ? REF_AGREE_ACCEPT : REF_LIMITED);
        g_byte_array_unref(b);
    }
    pz_rpc_key_free(key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edge_cases),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_offset_sizes),
        cmocka_unit_test(test_type_limit),
        cmocka_unit_test(test_corpus),
        cmocka_unit_test(test_mutated_values),
        cmocka_unit_test(test_mutated_envelopes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
