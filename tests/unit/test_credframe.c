/* tests/unit/test_credframe.c — the credentials frame codec
 * (core/credframe.c): a table of payloads, good and malformed (every
 * refusal of the decoder has a row), the length check of the header, and
 * encoding (round trip, and every refusal of the encoder). */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <glib.h>

#include "credframe.h"
#include "err.h"

/* A payload written as text: "M" = magic, "v1" = version byte 1, "nK" = N
 * entries, "mLEN:NAME" method, "dLEN:BYTE*COUNT" token, "xHH" raw byte. */
static size_t build(const char *spec, uint8_t *out, size_t cap)
{
    size_t n = 0;
    char **parts = g_strsplit(spec, " ", -1);
    for (char **p = parts; *p; p++) {
        const char *t = *p;
        if (!*t)
            continue;
        if (!strcmp(t, "M")) {
            memcpy(out + n, "PZCF", 4);
            n += 4;
        } else if (t[0] == 'v' || t[0] == 'n' || t[0] == 'x') {
            out[n++] = (uint8_t)strtoul(t + 1, NULL, t[0] == 'x' ? 16 : 10);
        } else if (t[0] == 'm') {
            char *colon = strchr(t, ':');
            out[n++] = (uint8_t)strtoul(t + 1, NULL, 10);
            memcpy(out + n, colon + 1, strlen(colon + 1));
            n += strlen(colon + 1);
        } else if (t[0] == 'd') {
            char *colon = strchr(t, ':');
            unsigned long len = strtoul(t + 1, NULL, 10);
            char *star = strchr(colon, '*');
            unsigned long count = star ? strtoul(star + 1, NULL, 10) : 0;
            out[n++] = (uint8_t)(len >> 8);
            out[n++] = (uint8_t)len;
            for (unsigned long i = 0; i < count; i++)
                out[n++] = (uint8_t)strtoul(colon + 1, NULL, 16);
        } else {
            fail_msg("bad spec token %s", t);
        }
        assert_true(n <= cap);
    }
    g_strfreev(parts);
    return n;
}

static void test_decode_table(void **unused)
{
    (void)unused;
    static const struct {
        const char *spec;
        int rc;
        size_t n;        /* entries when rc == 0 */
        const char *why; /* substring of the refusal */
    } cases[] = {
        {"M v1 n0", 0, 0, NULL},
        {"M v1 n1 m3:psk d41:aa*41", 0, 1, NULL},
        {"M v1 n2 m3:psk d1:01*1 m9:x-token-2 d2:02*2", 0, 2, NULL},
        {"M v1 n1 m32:abcdefghijklmnopqrstuvwxyz012345 d1024:ff*1024", 0, 1, NULL},
        {"M v1", PZ_EPROTO, 0, "expected 6 to 4096"},
        {"x50 x5a x43 x47 v1 n0", PZ_EPROTO, 0, "bad magic 505a4347"},
        {"M v2 n0", PZ_EPROTO, 0, "version 2 is not supported"},
        {"M v0 n0", PZ_EPROTO, 0, "version 0 is not supported"},
        {"M v1 n9", PZ_EPROTO, 0, "9 entries; at most 8"},
        {"M v1 n1", PZ_EPROTO, 0, "entry 0: truncated before its method name"},
        {"M v1 n1 m0:", PZ_EPROTO, 0, "entry 0: method name of 0 bytes"},
        {"M v1 n1 m33:abcdefghijklmnopqrstuvwxyz0123456", PZ_EPROTO, 0, "method name of 33 bytes"},
        {"M v1 n1 m9:psk", PZ_EPROTO, 0, "entry 0: truncated in its method name"},
        {"M v1 n1 m3:PSK d1:01*1", PZ_EPROTO, 0, "method name has byte 0x50"},
        {"M v1 n1 m3:p_k d1:01*1", PZ_EPROTO, 0, "method name has byte 0x5f"},
        {"M v1 n2 m3:psk d1:01*1 m3:psk d1:01*1", PZ_EPROTO, 0, "entry 1: method psk repeated"},
        {"M v1 n1 m3:psk", PZ_EPROTO, 0, "entry 0 (psk): truncated before its token length"},
        {"M v1 n1 m3:psk x00", PZ_EPROTO, 0, "truncated before its token length"},
        {"M v1 n1 m3:psk d0:00*0", PZ_EPROTO, 0, "token of 0 bytes; expected 1 to 1024"},
        {"M v1 n1 m3:psk d1025:00*1025", PZ_EPROTO, 0, "token of 1025 bytes"},
        {"M v1 n1 m3:psk d41:aa*40", PZ_EPROTO, 0, "token of 41 bytes but only 40 left"},
        {"M v1 n1 m3:psk d1:aa*1 x00", PZ_EPROTO, 0, "1 bytes after the last entry"},
        {"M v1 n0 x00 x00", PZ_EPROTO, 0, "2 bytes after the last entry"},
        {"M v1 n2 m3:psk d1:01*1", PZ_EPROTO, 0, "entry 1: truncated before its method name"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        uint8_t buf[8192];
        char why[200] = "";
        pz_credframe f;
        size_t len = build(cases[i].spec, buf, sizeof(buf));
        int rc = pz_credframe_decode(buf, len, &f, why, sizeof(why));
        if (rc != cases[i].rc)
            fail_msg("case %zu (%s): rc %d, expected %d (%s)", i, cases[i].spec, rc, cases[i].rc, why);
        if (rc == 0) {
            assert_int_equal(f.n, cases[i].n);
            for (size_t k = 0; k < f.n; k++) {
                assert_true(pz_credframe_method_valid(f.e[k].method));
                assert_true(f.e[k].data >= buf && f.e[k].data + f.e[k].len <= buf + len);
            }
        } else {
            assert_int_equal(f.n, 0);
            if (!strstr(why, cases[i].why))
                fail_msg("case %zu (%s): \"%s\" lacks \"%s\"", i, cases[i].spec, why, cases[i].why);
        }
    }
    /* Beyond the maximum, and no payload at all. */
    static uint8_t big[PZ_CREDFRAME_MAX + 1];
    char why[200];
    pz_credframe f;
    memcpy(big, "PZCF\x01\x00", 6);
    assert_int_equal(pz_credframe_decode(big, sizeof(big), &f, why, sizeof(why)), PZ_EPROTO);
    assert_non_null(strstr(why, "4097 bytes; at most 4096"));
    assert_int_equal(pz_credframe_decode(NULL, 6, &f, why, sizeof(why)), PZ_EPROTO);
    assert_int_equal(pz_credframe_decode(big, 3, &f, NULL, 0), PZ_EPROTO); /* WHY may be NULL */
}

static void test_check_length(void **unused)
{
    (void)unused;
    char why[120];
    assert_int_equal(pz_credframe_check_length(6, why, sizeof(why)), 0);
    assert_int_equal(pz_credframe_check_length(4096, why, sizeof(why)), 0);
    assert_int_equal(pz_credframe_check_length(5, why, sizeof(why)), PZ_EPROTO);
    assert_string_equal(why, "credentials frame of 5 bytes; expected 6 to 4096");
    assert_int_equal(pz_credframe_check_length(0, why, sizeof(why)), PZ_EPROTO);
    assert_int_equal(pz_credframe_check_length(4097, why, sizeof(why)), PZ_EPROTO);
    /* An RPC request's header read as a length: far too long. */
    assert_int_equal(pz_credframe_check_length(0x00100000u, NULL, 0), PZ_EPROTO);
}

static void test_method_names(void **unused)
{
    (void)unused;
    assert_true(pz_credframe_method_valid("psk"));
    assert_true(pz_credframe_method_valid("unix-peercred"));
    assert_true(pz_credframe_method_valid("abcdefghijklmnopqrstuvwxyz012345"));
    assert_false(pz_credframe_method_valid("abcdefghijklmnopqrstuvwxyz0123456"));
    assert_false(pz_credframe_method_valid(""));
    assert_false(pz_credframe_method_valid(NULL));
    assert_false(pz_credframe_method_valid("Psk"));
    assert_false(pz_credframe_method_valid("psk token"));
}

static void test_encode(void **unused)
{
    (void)unused;
    uint8_t tok1[41], tok2[3] = {1, 2, 3}, buf[PZ_CREDFRAME_HDR + PZ_CREDFRAME_MAX];
    memset(tok1, 0xab, sizeof(tok1));
    pz_credframe f = {.n = 2};
    g_strlcpy(f.e[0].method, "psk", sizeof(f.e[0].method));
    f.e[0].data = tok1;
    f.e[0].len = sizeof(tok1);
    g_strlcpy(f.e[1].method, "other", sizeof(f.e[1].method));
    f.e[1].data = tok2;
    f.e[1].len = sizeof(tok2);
    size_t len = 0;
    assert_int_equal(pz_credframe_encode(&f, buf, sizeof(buf), &len), 0);
    size_t want = 4 + 6 + (1 + 3 + 2 + 41) + (1 + 5 + 2 + 3);
    assert_int_equal(len, want);
    assert_memory_equal(buf, "\x00\x00\x00\x40PZCF\x01\x02\x03psk\x00\x29", 16);
    /* Round trip. */
    pz_credframe g;
    char why[120];
    assert_int_equal(pz_credframe_decode(buf + 4, len - 4, &g, why, sizeof(why)), 0);
    assert_int_equal(g.n, 2);
    const pz_credframe_entry *e = pz_credframe_find(&g, "psk");
    assert_non_null(e);
    assert_int_equal(e->len, sizeof(tok1));
    assert_memory_equal(e->data, tok1, sizeof(tok1));
    assert_non_null(pz_credframe_find(&g, "other"));
    assert_null(pz_credframe_find(&g, "missing"));
    assert_null(pz_credframe_find(NULL, "psk"));
    /* Too small a buffer: the size needed. */
    size_t need = 0;
    assert_int_equal(pz_credframe_encode(&f, buf, want - 1, &need), PZ_ERANGE);
    assert_int_equal(need, want);
    assert_int_equal(pz_credframe_encode(&f, NULL, 0, &need), PZ_ERANGE);
    /* An empty frame. */
    pz_credframe empty = {0};
    assert_int_equal(pz_credframe_encode(&empty, buf, sizeof(buf), &len), 0);
    assert_int_equal(len, 10);
    assert_memory_equal(buf, "\x00\x00\x00\x06PZCF\x01\x00", 10);

    /* Refusals. */
    pz_credframe bad = f;
    g_strlcpy(bad.e[1].method, "psk", sizeof(bad.e[1].method));
    assert_int_equal(pz_credframe_encode(&bad, buf, sizeof(buf), &len), PZ_EINVAL); /* repeated method */
    bad = f;
    g_strlcpy(bad.e[0].method, "Bad", sizeof(bad.e[0].method));
    assert_int_equal(pz_credframe_encode(&bad, buf, sizeof(buf), &len), PZ_EINVAL);
    bad = f;
    bad.e[0].len = 0;
    assert_int_equal(pz_credframe_encode(&bad, buf, sizeof(buf), &len), PZ_EINVAL);
    bad = f;
    bad.e[0].data = NULL;
    assert_int_equal(pz_credframe_encode(&bad, buf, sizeof(buf), &len), PZ_EINVAL);
    bad = f;
    bad.e[0].len = PZ_CREDFRAME_TOKEN_MAX + 1;
    assert_int_equal(pz_credframe_encode(&bad, buf, sizeof(buf), &len), PZ_EINVAL);
    bad = f;
    bad.n = PZ_CREDFRAME_MAX_ENTRIES + 1;
    assert_int_equal(pz_credframe_encode(&bad, buf, sizeof(buf), &len), PZ_EINVAL);
    assert_int_equal(pz_credframe_encode(NULL, buf, sizeof(buf), &len), PZ_EINVAL);
    assert_int_equal(pz_credframe_encode(&f, buf, sizeof(buf), NULL), PZ_EINVAL);
    /* Eight tokens of 1 KiB: more than one frame may carry. */
    static uint8_t kib[PZ_CREDFRAME_TOKEN_MAX];
    pz_credframe full = {.n = PZ_CREDFRAME_MAX_ENTRIES};
    for (size_t i = 0; i < full.n; i++) {
        g_snprintf(full.e[i].method, sizeof(full.e[i].method), "m%zu", i);
        full.e[i].data = kib;
        full.e[i].len = sizeof(kib);
    }
    assert_int_equal(pz_credframe_encode(&full, buf, sizeof(buf), &len), PZ_EINVAL);
    full.n = 3; /* 3 KiB fits */
    assert_int_equal(pz_credframe_encode(&full, buf, sizeof(buf), &len), 0);
    assert_int_equal(pz_credframe_decode(buf + 4, len - 4, &g, why, sizeof(why)), 0);
    assert_int_equal(g.n, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_table),
        cmocka_unit_test(test_check_length),
        cmocka_unit_test(test_method_names),
        cmocka_unit_test(test_encode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
