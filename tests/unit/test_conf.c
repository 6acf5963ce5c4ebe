/* tests/unit/test_conf.c — core/conf.c: parsing refusals with their exact
 * FILE:LINE:COL, every typed getter, unknown keys, limits. */
#include "config.h"

#include <errno.h>
#include <float.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"
#include "err.h"

/* Parse TEXT as "test.yaml"; fail the test on error. */
static pz_conf_doc *load(const char *text)
{
    pz_err err;
    pz_conf_doc *doc = NULL;
    pz_err_init(&err);
    int rc = pz_conf_load_string("test.yaml", text, strlen(text), &doc, &err);
    if (rc != 0)
        fail_msg("unexpected parse error: %s", pz_err_msg(&err));
    pz_err_clear(&err);
    return doc;
}

/* ------------------------------------------------------------------------ */
/* Refusals while parsing */

typedef struct parse_case {
    const char *yaml;
    int rc;
    const char *msg;
} parse_case;

static const parse_case parse_cases[] = {
    {"a: b: c\n", PZ_ECONFIG, "test.yaml:1:5: invalid YAML: mapping values are not allowed in this context"},
    {"a: [1, 2\n", PZ_ECONFIG,
     "test.yaml:2:1: invalid YAML: did not find expected ',' or ']' (while parsing a flow sequence at line 1, "
     "column 4)"},
    {"a: \"abc\n", PZ_ECONFIG,
     "test.yaml:2:1: invalid YAML: found unexpected end of stream (while scanning a quoted scalar at line 1, "
     "column 4)"},
    {"a:\n\tb: 1\n", PZ_ECONFIG, "test.yaml:2:1: invalid YAML: found character that cannot start any token"},
    {"a: 1\n  b: 2\n", PZ_ECONFIG, "test.yaml:2:4: invalid YAML: mapping values are not allowed in this context"},
    {"a: ok\nb: \xff\n", PZ_ECONFIG, "test.yaml:2:4: invalid YAML: invalid leading UTF-8 octet"},
    {"a: 1\nb: 2\na: 3\n", PZ_ECONFIG, "test.yaml:3:1: a: duplicate key \"a\" (first at line 1, column 1)"},
    {"x:\n  a: 1\n  a: 2\n", PZ_ECONFIG, "test.yaml:3:3: x.a: duplicate key \"a\" (first at line 2, column 3)"},
    {"x: {a: 1, a: 2}\n", PZ_ECONFIG, "test.yaml:1:11: x.a: duplicate key \"a\" (first at line 1, column 5)"},
    {"list:\n  - a\n  - {b: 1, b: 2}\n", PZ_ECONFIG,
     "test.yaml:3:12: list[1].b: duplicate key \"b\" (first at line 3, column 6)"},
    {"? [a]\n: 1\n", PZ_ECONFIG, "test.yaml:1:3: keys must be scalars, found a list"},
    {"m:\n  ? {k: v}\n  : 1\n", PZ_ECONFIG, "test.yaml:2:5: m: keys must be scalars, found a map"},
    {"~: 1\n", PZ_ECONFIG, "test.yaml:1:1: ~: empty or null keys are not allowed"},
    {"a: &x 1\n", PZ_ECONFIG, "test.yaml:1:4: a: anchors (&x) and aliases are not allowed in configuration"},
    {"a: 1\nb: *x\n", PZ_ECONFIG, "test.yaml:2:4: b: aliases (*x) and anchors are not allowed in configuration"},
    {"base: &b {x: 1}\nc: *b\n", PZ_ECONFIG,
     "test.yaml:1:7: base: anchors (&b) and aliases are not allowed in configuration"},
    {"a: !!str 1\n", PZ_ECONFIG,
     "test.yaml:1:4: a: tags (tag:yaml.org,2002:str) are not allowed in configuration"},
    {"a: !custom {x: 1}\n", PZ_ECONFIG, "test.yaml:1:4: a: tags (!custom) are not allowed in configuration"},
    {"a: 1\n---\nb: 2\n", PZ_ECONFIG, "test.yaml:2:1: only one YAML document is allowed in a configuration file"},
    {"- a\n- b\n", PZ_ECONFIG, "test.yaml:1:1: expected a map of sections at the top level, found a list"},
    {"hello\n", PZ_ECONFIG, "test.yaml:1:1: expected a map of sections at the top level, found \"hello\""},
    {"a: \"x\\0y\"\n", PZ_ECONFIG, "test.yaml:1:4: a: NUL characters are not allowed in configuration values"},
};

static void test_parse_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
        const parse_case *c = &parse_cases[i];
        pz_err err;
        pz_conf_doc *doc = (pz_conf_doc *)&err; /* must be reset to NULL */
        pz_err_init(&err);
        int rc = pz_conf_load_string("test.yaml", c->yaml, strlen(c->yaml), &doc, &err);
        if (rc != c->rc || strcmp(pz_err_msg(&err), c->msg))
            fail_msg("case %zu: got [%d] %s\nwant [%d] %s", i, rc, pz_err_msg(&err), c->rc, c->msg);
        assert_null(doc);
        pz_err_clear(&err);
    }
}

static void test_empty_documents(void **state)
{
    (void)state;
    static const char *const texts[] = {"", "# only a comment\n", "~\n", "---\n", "--- \n...\n", "null\n"};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        pz_conf_doc *doc = load(texts[i]);
        const pz_conf *root = pz_conf_root(doc);
        assert_int_equal(pz_conf_kind(root), PZ_CONF_NODE_MAP);
        assert_int_equal(pz_conf_len(root), 0);
        assert_string_equal(pz_conf_path(root), "");
        assert_int_equal(pz_conf_check_unused(root, NULL), 0);
        pz_conf_doc_free(doc);
    }
}

static void test_bad_arguments(void **state)
{
    (void)state;
    pz_err err;
    pz_conf_doc *doc = NULL;
    pz_err_init(&err);
    assert_int_equal(pz_conf_load_string("x.yaml", NULL, 0, &doc, &err), PZ_EINVAL);
    assert_null(doc);
    assert_string_equal(pz_err_msg(&err), "x.yaml: no configuration text");
    pz_err_clear(&err);
    /* A NULL map reads as empty: every getter gives its default. */
    const char *s = NULL;
    int64_t i = 0;
    assert_int_equal(pz_conf_string(NULL, "k", "def", &s, NULL), 0);
    assert_string_equal(s, "def");
    assert_int_equal(pz_conf_int(NULL, "k", 7, 0, 10, &i, NULL), 0);
    assert_int_equal(i, 7);
    assert_int_equal(pz_conf_has(NULL, "k"), 0);
    assert_int_equal(pz_conf_len(NULL), 0);
    assert_null(pz_conf_at(NULL, 0, NULL));
    assert_null(pz_conf_scalar(NULL));
    assert_int_equal(pz_conf_check_unused(NULL, NULL), 0);
    pz_conf_doc_free(NULL);
}

/* ------------------------------------------------------------------------ */
/* Positions and paths */

static void test_positions_and_paths(void **state)
{
    (void)state;
    pz_conf_doc *doc = load("# header\n"
                            "dos:\n"
                            "  rate_limiters:\n"
                            "    - provider: token-bucket\n"
                            "      config: {capacity: 10}\n"
                            "    - provider: gcra\n");
    const pz_conf *root = pz_conf_root(doc), *dos = NULL, *rl = NULL, *cfg = NULL;
    assert_int_equal(pz_conf_map(root, "dos", &dos, NULL), 0);
    assert_int_equal(pz_conf_line(dos), 3);
    assert_int_equal(pz_conf_col(dos), 3);
    assert_string_equal(pz_conf_path(dos), "dos");
    assert_int_equal(pz_conf_list(dos, "rate_limiters", &rl, NULL), 0);
    assert_string_equal(pz_conf_path(rl), "dos.rate_limiters");
    assert_int_equal(pz_conf_len(rl), 2);
    const pz_conf *e0 = pz_conf_at(rl, 0, NULL), *e1 = pz_conf_at(rl, 1, NULL);
    assert_string_equal(pz_conf_path(e0), "dos.rate_limiters[0]");
    assert_string_equal(pz_conf_where(e1), "test.yaml:6:7");
    assert_string_equal(pz_conf_file(e1), "test.yaml");
    assert_int_equal(pz_conf_map(e0, "config", &cfg, NULL), 0);
    assert_string_equal(pz_conf_path(cfg), "dos.rate_limiters[0].config");
    assert_string_equal(pz_conf_where(cfg), "test.yaml:5:15");
    const char *key = NULL;
    const pz_conf *cap = pz_conf_at(cfg, 0, &key);
    assert_string_equal(key, "capacity");
    assert_string_equal(pz_conf_path(cap), "dos.rate_limiters[0].config.capacity");
    assert_string_equal(pz_conf_where(cap), "test.yaml:5:26");
    assert_string_equal(pz_conf_scalar(cap), "10");
    assert_null(pz_conf_at(cfg, 1, &key));
    assert_null(key);
    pz_conf_doc_free(doc);
}

/* ------------------------------------------------------------------------ */
/* Typed getters, table-driven: each case is "k: VALUE", so the value sits at
 * test.yaml:1:4 and messages start "test.yaml:1:4: k: ". */

enum getter { G_STRING, G_INT, G_DOUBLE, G_BOOL, G_DURATION, G_SIZE, G_MAP, G_LIST };

typedef struct getter_case {
    enum getter g;
    const char *value; /* NULL: the key is absent */
    int64_t min, max;  /* G_INT */
    double dmin, dmax; /* G_DOUBLE */
    int rc;
    const char *want_s;  /* G_STRING result */
    int64_t want_i;      /* G_INT/G_BOOL/G_DURATION/G_SIZE result (unsigned ones cast) */
    double want_d;       /* G_DOUBLE result */
    const char *msg;     /* error message, after "test.yaml:1:4: k: " */
} getter_case;

#define NS 1000000000ull

static const getter_case getter_cases[] = {
    /* strings: any non-null scalar, quoted or not; null means the default */
    {G_STRING, "hello", .want_s = "hello"},
    {G_STRING, "\"123\"", .want_s = "123"},
    {G_STRING, "123", .want_s = "123"},
    {G_STRING, "'it''s'", .want_s = "it's"},
    {G_STRING, "|\n  two\n  lines", .want_s = "two\nlines\n"}, /* clip: one final newline */
    {G_STRING, "\"\"", .want_s = ""},
    {G_STRING, "~", .want_s = "def"},
    {G_STRING, "null", .want_s = "def"},
    {G_STRING, "", .want_s = "def"},
    {G_STRING, "\"null\"", .want_s = "null"},
    {G_STRING, NULL, .want_s = "def"},
    {G_STRING, "[a, b]", .rc = PZ_ECONFIG, .want_s = "def", .msg = "expected a string, found a list"},
    {G_STRING, "{a: b}", .rc = PZ_ECONFIG, .want_s = "def", .msg = "expected a string, found a map"},
    /* integers */
    {G_INT, "42", 0, 100, .want_i = 42},
    {G_INT, "-5", -10, 10, .want_i = -5},
    {G_INT, "+5", -10, 10, .want_i = 5},
    {G_INT, "0x1F", 0, 100, .want_i = 31},
    {G_INT, "1_000_000", 0, INT64_MAX, .want_i = 1000000},
    {G_INT, "9223372036854775807", INT64_MIN, INT64_MAX, .want_i = INT64_MAX},
    {G_INT, "-9223372036854775808", INT64_MIN, INT64_MAX, .want_i = INT64_MIN},
    {G_INT, NULL, 0, 100, .want_i = 9},
    {G_INT, "~", 0, 100, .want_i = 9},
    {G_INT, "101", 0, 100, .rc = PZ_ECONFIG, .want_i = 9,
     .msg = "expected an integer between 0 and 100, found \"101\""},
    {G_INT, "-1", 0, INT64_MAX, .rc = PZ_ECONFIG, .want_i = 9, .msg = "expected an integer >= 0, found \"-1\""},
    {G_INT, "11", INT64_MIN, 10, .rc = PZ_ECONFIG, .want_i = 9, .msg = "expected an integer <= 10, found \"11\""},
    {G_INT, "9223372036854775808", INT64_MIN, INT64_MAX, .rc = PZ_ECONFIG, .want_i = 9,
     .msg = "expected an integer, found \"9223372036854775808\""},
    {G_INT, "fast", 0, 100, .rc = PZ_ECONFIG, .want_i = 9,
     .msg = "expected an integer between 0 and 100, found \"fast\""},
    {G_INT, "1.5", 0, 100, .rc = PZ_ECONFIG, .want_i = 9,
     .msg = "expected an integer between 0 and 100, found \"1.5\""},
    {G_INT, "\"5\"", 0, 100, .rc = PZ_ECONFIG, .want_i = 9,
     .msg = "expected an integer between 0 and 100, found \"5\" (quoted, so a string: remove the quotes)"},
    {G_INT, "\"x\"", 0, 100, .rc = PZ_ECONFIG, .want_i = 9,
     .msg = "expected an integer between 0 and 100, found \"x\""},
    {G_INT, "[1]", 0, 100, .rc = PZ_ECONFIG, .want_i = 9, .msg = "expected an integer between 0 and 100, found a list"},
    {G_INT, "0x", 0, 100, .rc = PZ_ECONFIG, .want_i = 9, .msg = "expected an integer between 0 and 100, found \"0x\""},
    {G_INT, "1__0", 0, 100, .rc = PZ_ECONFIG, .want_i = 9,
     .msg = "expected an integer between 0 and 100, found \"1__0\""},
    /* doubles */
    {G_DOUBLE, "2.5", .dmin = 0, .dmax = 10, .want_d = 2.5},
    {G_DOUBLE, "1e3", .dmin = 0, .dmax = 1e6, .want_d = 1000},
    {G_DOUBLE, ".5", .dmin = 0, .dmax = 1, .want_d = 0.5},
    {G_DOUBLE, "-7", .dmin = -DBL_MAX, .dmax = DBL_MAX, .want_d = -7},
    {G_DOUBLE, NULL, .dmin = 0, .dmax = 1, .want_d = 0.25},
    {G_DOUBLE, "fast", .dmin = 0, .dmax = 1000000, .rc = PZ_ECONFIG, .want_d = 0.25,
     .msg = "expected a number between 0 and 1000000, found \"fast\""},
    {G_DOUBLE, "1000001", .dmin = 0, .dmax = 1000000, .rc = PZ_ECONFIG, .want_d = 0.25,
     .msg = "expected a number between 0 and 1000000, found \"1000001\""},
    {G_DOUBLE, "0.01", .dmin = 0.5, .dmax = 1.5, .rc = PZ_ECONFIG, .want_d = 0.25,
     .msg = "expected a number between 0.5 and 1.5, found \"0.01\""},
    {G_DOUBLE, "-1", .dmin = 0, .dmax = DBL_MAX, .rc = PZ_ECONFIG, .want_d = 0.25,
     .msg = "expected a number >= 0, found \"-1\""},
    {G_DOUBLE, "inf", .dmin = -DBL_MAX, .dmax = DBL_MAX, .rc = PZ_ECONFIG, .want_d = 0.25,
     .msg = "expected a number, found \"inf\""},
    {G_DOUBLE, "nan", .dmin = -DBL_MAX, .dmax = DBL_MAX, .rc = PZ_ECONFIG, .want_d = 0.25,
     .msg = "expected a number, found \"nan\""},
    {G_DOUBLE, "1e999", .dmin = -DBL_MAX, .dmax = DBL_MAX, .rc = PZ_ECONFIG, .want_d = 0.25,
     .msg = "expected a number, found \"1e999\""},
    {G_DOUBLE, "0x10", .dmin = -DBL_MAX, .dmax = DBL_MAX, .rc = PZ_ECONFIG, .want_d = 0.25,
     .msg = "expected a number, found \"0x10\""},
    {G_DOUBLE, "\"2\"", .dmin = 0, .dmax = 10, .rc = PZ_ECONFIG, .want_d = 0.25,
     .msg = "expected a number between 0 and 10, found \"2\" (quoted, so a string: remove the quotes)"},
    {G_DOUBLE, "{}", .dmin = 0, .dmax = 10, .rc = PZ_ECONFIG, .want_d = 0.25,
     .msg = "expected a number between 0 and 10, found a map"},
    /* booleans */
    {G_BOOL, "true", .want_i = 1},
    {G_BOOL, "yes", .want_i = 1},
    {G_BOOL, "on", .want_i = 1},
    {G_BOOL, "True", .want_i = 1},
    {G_BOOL, "false", .want_i = 0},
    {G_BOOL, "no", .want_i = 0},
    {G_BOOL, "OFF", .want_i = 0},
    {G_BOOL, NULL, .want_i = -1},
    {G_BOOL, "1", .rc = PZ_ECONFIG, .want_i = -1, .msg = "expected true or false, found \"1\""},
    {G_BOOL, "maybe", .rc = PZ_ECONFIG, .want_i = -1, .msg = "expected true or false, found \"maybe\""},
    {G_BOOL, "\"true\"", .rc = PZ_ECONFIG, .want_i = -1,
     .msg = "expected true or false, found \"true\" (quoted, so a string: remove the quotes)"},
    {G_BOOL, "[]", .rc = PZ_ECONFIG, .want_i = -1, .msg = "expected true or false, found a list"},
    /* durations */
    {G_DURATION, "10ns", .want_i = 10},
    {G_DURATION, "100us", .want_i = 100000},
    {G_DURATION, "250ms", .want_i = 250000000},
    {G_DURATION, "30s", .want_i = 30 * (int64_t)NS},
    {G_DURATION, "5m", .want_i = 300 * (int64_t)NS},
    {G_DURATION, "2h", .want_i = 7200 * (int64_t)NS},
    {G_DURATION, "1d", .want_i = 86400 * (int64_t)NS},
    {G_DURATION, "45", .want_i = 45 * (int64_t)NS},
    {G_DURATION, "\"30s\"", .want_i = 30 * (int64_t)NS},
    {G_DURATION, "0", .want_i = 0},
    {G_DURATION, NULL, .want_i = 5},
    {G_DURATION, "fast", .rc = PZ_ECONFIG, .want_i = 5,
     .msg = "expected a duration such as 250ms, 30s, 5m, 2h or 1d, found \"fast\""},
    {G_DURATION, "-1s", .rc = PZ_ECONFIG, .want_i = 5,
     .msg = "expected a duration such as 250ms, 30s, 5m, 2h or 1d, found \"-1s\""},
    {G_DURATION, "1.5s", .rc = PZ_ECONFIG, .want_i = 5,
     .msg = "expected a duration such as 250ms, 30s, 5m, 2h or 1d, found \"1.5s\""},
    {G_DURATION, "5 minutes", .rc = PZ_ECONFIG, .want_i = 5,
     .msg = "expected a duration such as 250ms, 30s, 5m, 2h or 1d, found \"5 minutes\""},
    {G_DURATION, "213504d", .rc = PZ_ECONFIG, .want_i = 5,
     .msg = "expected a duration of at most 213503d, found \"213504d\""},
    {G_DURATION, "99999999999999999999", .rc = PZ_ECONFIG, .want_i = 5,
     .msg = "expected a duration of at most 213503d, found \"99999999999999999999\""},
    {G_DURATION, "{a: 1}", .rc = PZ_ECONFIG, .want_i = 5,
     .msg = "expected a duration such as 250ms, 30s, 5m, 2h or 1d, found a map"},
    /* sizes */
    {G_SIZE, "512", .want_i = 512},
    {G_SIZE, "512B", .want_i = 512},
    {G_SIZE, "64KiB", .want_i = 65536},
    {G_SIZE, "1MiB", .want_i = 1048576},
    {G_SIZE, "2GiB", .want_i = 2147483648},
    {G_SIZE, "1kB", .want_i = 1000},
    {G_SIZE, "1MB", .want_i = 1000000},
    {G_SIZE, "16 KiB", .want_i = 16384},
    {G_SIZE, NULL, .want_i = 7},
    {G_SIZE, "1KB", .rc = PZ_ECONFIG, .want_i = 7,
     .msg = "expected a size such as 512, 64KiB, 1MiB or 1MB, found \"1KB\""},
    {G_SIZE, "big", .rc = PZ_ECONFIG, .want_i = 7,
     .msg = "expected a size such as 512, 64KiB, 1MiB or 1MB, found \"big\""},
    {G_SIZE, "16777216TiB", .rc = PZ_ECONFIG, .want_i = 7,
     .msg = "expected a size of at most 16777215TiB, found \"16777216TiB\""},
    /* maps and lists */
    {G_MAP, "{a: 1}", .want_i = 1},
    {G_MAP, NULL, .want_i = 0},
    {G_MAP, "~", .want_i = 0},
    {G_MAP, "[1]", .rc = PZ_ECONFIG, .msg = "expected a map, found a list"},
    {G_MAP, "text", .rc = PZ_ECONFIG, .msg = "expected a map, found \"text\""},
    {G_LIST, "[1, 2]", .want_i = 2},
    {G_LIST, NULL, .want_i = 0},
    {G_LIST, "{a: 1}", .rc = PZ_ECONFIG, .msg = "expected a list, found a map"},
    {G_LIST, "7", .rc = PZ_ECONFIG, .msg = "expected a list, found \"7\""},
};

static void run_getter_case(size_t i, const getter_case *c)
{
    char *yaml = c->value ? g_strdup_printf("k: %s\n", c->value) : g_strdup("other: 1\n");
    pz_conf_doc *doc = load(yaml);
    const pz_conf *root = pz_conf_root(doc);
    pz_err err;
    int rc = 0;
    pz_err_init(&err);
    switch (c->g) {
    case G_STRING: {
        const char *s = NULL;
        rc = pz_conf_string(root, "k", "def", &s, &err);
        if (strcmp(s, c->want_s))
            fail_msg("case %zu: string %s, want %s", i, s, c->want_s);
        break;
    }
    case G_INT: {
        int64_t v = 0;
        rc = pz_conf_int(root, "k", 9, c->min, c->max, &v, &err);
        if (v != c->want_i)
            fail_msg("case %zu: int %lld, want %lld", i, (long long)v, (long long)c->want_i);
        break;
    }
    case G_DOUBLE: {
        double v = 0;
        rc = pz_conf_double(root, "k", 0.25, c->dmin, c->dmax, &v, &err);
        if (v != c->want_d)
            fail_msg("case %zu: double %g, want %g", i, v, c->want_d);
        break;
    }
    case G_BOOL: {
        int v = 0;
        rc = pz_conf_bool(root, "k", -1, &v, &err);
        if (v != c->want_i)
            fail_msg("case %zu: bool %d, want %lld", i, v, (long long)c->want_i);
        break;
    }
    case G_DURATION: {
        uint64_t v = 0;
        rc = pz_conf_duration(root, "k", 5, &v, &err);
        if (v != (uint64_t)c->want_i)
            fail_msg("case %zu: duration %llu, want %lld", i, (unsigned long long)v, (long long)c->want_i);
        break;
    }
    case G_SIZE: {
        uint64_t v = 0;
        rc = pz_conf_size(root, "k", 7, &v, &err);
        if (v != (uint64_t)c->want_i)
            fail_msg("case %zu: size %llu, want %lld", i, (unsigned long long)v, (long long)c->want_i);
        break;
    }
    case G_MAP:
    case G_LIST: {
        const pz_conf *n = (const pz_conf *)&err;
        rc = c->g == G_MAP ? pz_conf_map(root, "k", &n, &err) : pz_conf_list(root, "k", &n, &err);
        if (rc == 0 && c->want_i == 0 && n != NULL)
            fail_msg("case %zu: expected no node", i);
        if (rc == 0 && c->want_i > 0 && pz_conf_len(n) != (size_t)c->want_i)
            fail_msg("case %zu: len %zu", i, n ? pz_conf_len(n) : 0);
        if (rc != 0 && n != NULL)
            fail_msg("case %zu: node set on error", i);
        break;
    }
    }
    if (rc != c->rc)
        fail_msg("case %zu (%s): rc %d, want %d (%s)", i, yaml, rc, c->rc, pz_err_msg(&err));
    if (c->msg) {
        char *want = g_strdup_printf("test.yaml:1:4: k: %s", c->msg);
        if (strcmp(pz_err_msg(&err), want))
            fail_msg("case %zu:\n got %s\nwant %s", i, pz_err_msg(&err), want);
        g_free(want);
    } else if (pz_err_count(&err) != 0) {
        fail_msg("case %zu: unexpected message %s", i, pz_err_msg(&err));
    }
    /* Whatever happened, the key was read: it is not unknown (the keys
     * inside a map or list value were not read, though). */
    if (c->value && c->g != G_MAP && c->g != G_LIST && pz_conf_check_unused(root, NULL) != 0)
        fail_msg("case %zu: key reported unknown", i);
    pz_err_clear(&err);
    pz_conf_doc_free(doc);
    g_free(yaml);
}

static void test_getters(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(getter_cases) / sizeof(getter_cases[0]); i++)
        run_getter_case(i, &getter_cases[i]);
}

static void test_long_value_is_cut(void **state)
{
    (void)state;
    pz_conf_doc *doc = load("k: \"0123456789012345678901234567890123456789012345678901234567890\\t\\\"\"\n"
                            "q: \"a\\\"b\\x01\"\n");
    int64_t v;
    pz_err err;
    pz_err_init(&err);
    assert_int_equal(pz_conf_int(pz_conf_root(doc), "k", 0, 0, 1, &v, &err), PZ_ECONFIG);
    assert_string_equal(pz_err_msg(&err), "test.yaml:1:4: k: expected an integer between 0 and 1, found "
                                          "\"012345678901234567890123456789012345678901234567...\"");
    assert_int_equal(pz_conf_int(pz_conf_root(doc), "q", 0, 0, 1, &v, &err), PZ_ECONFIG);
    assert_string_equal(pz_err_msg(&err), "test.yaml:2:4: q: expected an integer between 0 and 1, found "
                                          "\"a\\\"b\\x01\"");
    pz_err_clear(&err);
    pz_conf_doc_free(doc);
}

static void test_dotted_keys(void **state)
{
    (void)state;
    pz_conf_doc *doc = load("limits:\n  per_ip: 5\n  nested: {deep: yes}\nscalar: 3\n");
    const pz_conf *root = pz_conf_root(doc);
    int64_t v = 0;
    int b = 0;
    pz_err err;
    pz_err_init(&err);
    assert_int_equal(pz_conf_int(root, "limits.per_ip", 0, 0, 10, &v, &err), 0);
    assert_int_equal(v, 5);
    assert_int_equal(pz_conf_bool(root, "limits.nested.deep", 0, &b, &err), 0);
    assert_int_equal(b, 1);
    assert_int_equal(pz_conf_has(root, "limits.per_ip"), 1);
    assert_int_equal(pz_conf_has(root, "limits.per_subnet"), 0);
    assert_int_equal(pz_conf_has(root, "absent.key"), 0);
    assert_int_equal(pz_conf_int(root, "absent.key", 4, 0, 10, &v, &err), 0);
    assert_int_equal(v, 4);
    assert_int_equal(pz_conf_int(root, "scalar.x", 4, 0, 10, &v, &err), PZ_ECONFIG);
    assert_string_equal(pz_err_msg(&err), "test.yaml:4:9: scalar: expected a map, found \"3\"");
    assert_int_equal(pz_conf_has(root, "scalar.x"), 0);
    /* A getter on a node that is not a map. */
    const pz_conf *limits = NULL;
    assert_int_equal(pz_conf_map(root, "limits", &limits, &err), 0);
    const pz_conf *per_ip = pz_conf_at(limits, 0, NULL);
    assert_int_equal(pz_conf_int(per_ip, "x", 0, 0, 1, &v, &err), PZ_ECONFIG);
    assert_string_equal(pz_err_msg(&err), "test.yaml:2:11: limits.per_ip: expected a map, found \"5\"");
    assert_int_equal(pz_conf_check_unused(root, NULL), 0);
    pz_err_clear(&err);
    pz_conf_doc_free(doc);
}

static void test_scalar_where_error(void **state)
{
    (void)state;
    pz_conf_doc *doc = load("a: text\nb: [x, ~]\n");
    const pz_conf *root = pz_conf_root(doc), *b = NULL;
    pz_err err;
    pz_err_init(&err);
    assert_int_equal(pz_conf_list(root, "b", &b, &err), 0);
    assert_null(pz_conf_scalar(b));
    assert_int_equal(pz_conf_len(pz_conf_at(b, 0, NULL)), 0);
    assert_string_equal(pz_conf_scalar(pz_conf_at(b, 0, NULL)), "x");
    assert_true(pz_conf_is_null(pz_conf_at(b, 1, NULL)));
    assert_false(pz_conf_is_null(pz_conf_at(b, 0, NULL)));
    assert_null(pz_conf_at(b, 2, NULL));
    assert_string_equal(pz_conf_where(root), "test.yaml:1:1");
    assert_int_equal(pz_conf_error(pz_conf_at(b, 0, NULL), &err, "no such peer \"%s\"", "x"), PZ_ECONFIG);
    assert_string_equal(pz_err_msg(&err), "test.yaml:2:5: b[0]: no such peer \"x\"");
    assert_int_equal(pz_conf_error(root, &err, "something is missing"), PZ_ECONFIG);
    assert_string_equal(pz_err_msg(&err), "test.yaml:1:1: something is missing");
    assert_int_equal(pz_conf_error(root, NULL, "no sink"), PZ_ECONFIG);
    const char *s = NULL;
    assert_int_equal(pz_conf_string(root, "a", NULL, &s, &err), 0);
    assert_string_equal(s, "text");
    pz_err_clear(&err);
    pz_conf_doc_free(doc);
}

static void test_child_expected_as_int(void **state)
{
    (void)state;
    pz_conf_doc *doc = load("m: {a.b: 3, n: ~, s: x}\nl: [5, \"6\", ~, [7]]\n");
    const pz_conf *root = pz_conf_root(doc), *m = pz_conf_child(root, "m"), *l = pz_conf_child(root, "l");
    pz_err err;
    int64_t v = 0;
    pz_err_init(&err);
    assert_non_null(m);
    assert_null(pz_conf_child(m, "n"));       /* null */
    assert_null(pz_conf_child(m, "absent"));  /* absent */
    assert_null(pz_conf_child(root, "m.s.x")); /* through a scalar */
    assert_null(pz_conf_child(l, "x"));       /* not a map */
    assert_null(pz_conf_child(NULL, "x"));
    assert_string_equal(pz_conf_scalar(pz_conf_child(root, "m.s")), "x");
    /* A key with a dot is reached by position, not by path. */
    const char *key = NULL;
    const pz_conf *ab = pz_conf_at(m, 0, &key);
    assert_string_equal(key, "a.b");
    assert_int_equal(pz_conf_as_int(ab, 0, 10, &v, &err), 0);
    assert_int_equal(v, 3);
    assert_int_equal(pz_conf_as_int(pz_conf_at(l, 0, NULL), 0, 10, &v, &err), 0);
    assert_int_equal(v, 5);
    assert_int_equal(pz_conf_as_int(pz_conf_at(l, 0, NULL), 6, 10, &v, &err), PZ_ECONFIG);
    assert_string_equal(pz_err_msg(&err), "test.yaml:2:5: l[0]: expected an integer between 6 and 10, found \"5\"");
    assert_int_equal(pz_conf_as_int(pz_conf_at(l, 1, NULL), 0, 10, &v, &err), PZ_ECONFIG);
    assert_string_equal(pz_err_msg(&err), "test.yaml:2:8: l[1]: expected an integer between 0 and 10, found \"6\" "
                                          "(quoted, so a string: remove the quotes)");
    assert_int_equal(pz_conf_as_int(pz_conf_at(l, 2, NULL), 0, 10, &v, &err), PZ_ECONFIG);
    assert_string_equal(pz_err_msg(&err), "test.yaml:2:13: l[2]: expected an integer between 0 and 10, found null");
    assert_int_equal(pz_conf_as_int(pz_conf_at(l, 3, NULL), 0, 10, &v, &err), PZ_ECONFIG);
    assert_string_equal(pz_err_msg(&err), "test.yaml:2:16: l[3]: expected an integer between 0 and 10, found a list");
    assert_int_equal(pz_conf_expected(m, &err, "a peer"), PZ_ECONFIG);
    assert_string_equal(pz_err_msg(&err), "test.yaml:1:4: m: expected a peer, found a map");
    assert_int_equal(pz_conf_expected(NULL, &err, "a peer"), PZ_ECONFIG);
    assert_string_equal(pz_err_msg(&err), "expected a peer");
    /* pz_conf_expected marks the value read: it is wrong, not unknown. */
    assert_int_equal(pz_conf_check_unused(root, NULL), 0);
    pz_err_clear(&err);
    pz_conf_doc_free(doc);
}

/* ------------------------------------------------------------------------ */
/* Unknown keys */

static void test_unknown_keys(void **state)
{
    (void)state;
    pz_conf_doc *doc = load("node:\n"
                            "  id: n1\n"
                            "  typo_key: 1\n"
                            "dos:\n"
                            "  rate_limiters:\n"
                            "    - provider: tb\n"
                            "      capcity: 10\n"
                            "      config: {anything: 1}\n"
                            "extra: ~\n");
    const pz_conf *root = pz_conf_root(doc), *node = NULL, *dos = NULL, *rl = NULL;
    pz_err err;
    pz_err_init_collect(&err);
    const char *s;
    int64_t v;
    const pz_conf *cfg;
    assert_int_equal(pz_conf_map(root, "node", &node, &err), 0);
    assert_int_equal(pz_conf_string(node, "id", NULL, &s, &err), 0);
    assert_int_equal(pz_conf_string(node, "type", NULL, &s, &err), 0);
    assert_int_equal(pz_conf_map(root, "dos", &dos, &err), 0);
    assert_int_equal(pz_conf_list(dos, "rate_limiters", &rl, &err), 0);
    const pz_conf *e0 = pz_conf_at(rl, 0, NULL);
    assert_int_equal(pz_conf_string(e0, "provider", NULL, &s, &err), 0);
    assert_int_equal(pz_conf_int(e0, "capacity", 0, 0, 100, &v, &err), 0);
    assert_int_equal(pz_conf_map(e0, "config", &cfg, &err), 0);
    pz_conf_delegate(cfg);
    assert_int_equal(pz_err_count(&err), 0);

    assert_int_equal(pz_conf_check_unused(root, &err), PZ_ECONFIG);
    assert_int_equal(pz_err_count(&err), 3);
    assert_string_equal(pz_err_at(&err, 0), "test.yaml:3:3: node.typo_key: unknown key");
    assert_string_equal(pz_err_at(&err, 1),
                        "test.yaml:7:7: dos.rate_limiters[0].capcity: unknown key (did you mean \"capacity\"?)");
    assert_string_equal(pz_err_at(&err, 2), "test.yaml:9:1: extra: unknown key");
    pz_err_clear(&err);

    /* The delegated map is checked by whoever owns it. */
    assert_int_equal(pz_conf_check_unused(cfg, &err), PZ_ECONFIG);
    assert_int_equal(pz_err_count(&err), 1);
    assert_string_equal(pz_err_at(&err, 0), "test.yaml:8:16: dos.rate_limiters[0].config.anything: unknown key");
    pz_err_clear(&err);

    /* Marking the subtree used silences it. */
    pz_conf_mark_used(cfg);
    assert_int_equal(pz_conf_check_unused(cfg, &err), 0);
    pz_conf_mark_used(root);
    assert_int_equal(pz_conf_check_unused(root, &err), 0);
    assert_int_equal(pz_err_count(&err), 0);
    pz_err_clear(&err);
    pz_conf_doc_free(doc);
}

static void test_suggestions(void **state)
{
    (void)state;
    /* Suggestions come only from keys that were asked for and absent, within
     * an edit distance of 2 (a transposition counts 1). */
    pz_conf_doc *doc = load("refil: 1\ncpacity: 2\nburst_sizes: 3\nrate: 4\nzzz: 5\nratee: 6\n");
    const pz_conf *root = pz_conf_root(doc);
    pz_err err;
    int64_t v;
    pz_err_init_collect(&err);
    assert_int_equal(pz_conf_int(root, "refill", 0, 0, 10, &v, &err), 0);
    assert_int_equal(pz_conf_int(root, "capacity", 0, 0, 10, &v, &err), 0);
    assert_int_equal(pz_conf_int(root, "burst", 0, 0, 10, &v, &err), 0);
    assert_int_equal(pz_conf_int(root, "rate", 0, 0, 10, &v, &err), 0);
    assert_int_equal(pz_conf_check_unused(root, &err), PZ_ECONFIG);
    assert_int_equal(pz_err_count(&err), 5);
    assert_string_equal(pz_err_at(&err, 0), "test.yaml:1:1: refil: unknown key (did you mean \"refill\"?)");
    assert_string_equal(pz_err_at(&err, 1), "test.yaml:2:1: cpacity: unknown key (did you mean \"capacity\"?)");
    assert_string_equal(pz_err_at(&err, 2), "test.yaml:3:1: burst_sizes: unknown key");
    assert_string_equal(pz_err_at(&err, 3), "test.yaml:5:1: zzz: unknown key");
    /* "rate" is present: it is not offered for "ratee". */
    assert_string_equal(pz_err_at(&err, 4), "test.yaml:6:1: ratee: unknown key");
    pz_err_clear(&err);
    pz_conf_doc_free(doc);
}

static void test_unknown_in_lists(void **state)
{
    (void)state;
    pz_conf_doc *doc = load("items:\n  - {name: a, bogus: 1}\n  - [x, {deep: 2}]\n");
    const pz_conf *root = pz_conf_root(doc), *items = NULL;
    pz_err err;
    pz_err_init_collect(&err);
    assert_int_equal(pz_conf_list(root, "items", &items, &err), 0);
    const char *s;
    assert_int_equal(pz_conf_string(pz_conf_at(items, 0, NULL), "name", NULL, &s, &err), 0);
    assert_int_equal(pz_conf_check_unused(root, &err), PZ_ECONFIG);
    assert_int_equal(pz_err_count(&err), 2);
    assert_string_equal(pz_err_at(&err, 0), "test.yaml:2:15: items[0].bogus: unknown key");
    assert_string_equal(pz_err_at(&err, 1), "test.yaml:3:10: items[1][1].deep: unknown key");
    /* Without a sink the result alone tells. */
    assert_int_equal(pz_conf_check_unused(root, NULL), PZ_ECONFIG);
    pz_err_clear(&err);
    pz_conf_doc_free(doc);
}

/* ------------------------------------------------------------------------ */
/* Limits */

static void expect_refused(const char *text, size_t len, int code, const char *msg)
{
    pz_err err;
    pz_conf_doc *doc = NULL;
    pz_err_init(&err);
    assert_int_equal(pz_conf_load_string("test.yaml", text, len, &doc, &err), code);
    assert_null(doc);
    assert_string_equal(pz_err_msg(&err), msg);
    pz_err_clear(&err);
}

static void test_depth_limit(void **state)
{
    (void)state;
    /* The root map is level 1: "a:" plus 63 lists is 64 levels, allowed. */
    GString *s = g_string_new("a: ");
    for (int i = 0; i < 63; i++)
        g_string_append_c(s, '[');
    for (int i = 0; i < 63; i++)
        g_string_append_c(s, ']');
    pz_conf_doc *doc = load(s->str);
    pz_conf_doc_free(doc);
    g_string_assign(s, "a: ");
    for (int i = 0; i < 64; i++)
        g_string_append_c(s, '[');
    for (int i = 0; i < 64; i++)
        g_string_append_c(s, ']');
    /* The 64th '[' is at column 3 + 64. */
    GString *path = g_string_new("a");
    for (int i = 0; i < 63; i++)
        g_string_append(path, "[0]");
    char *msg = g_strdup_printf("test.yaml:1:67: %s: nested deeper than 64 levels", path->str);
    expect_refused(s->str, s->len, PZ_ECONFIG, msg);
    g_free(msg);
    g_string_free(path, TRUE);
    g_string_free(s, TRUE);
}

static void test_node_limit(void **state)
{
    (void)state;
    /* root map + key + list = 3 nodes; 99997 items make 100000. */
    GString *s = g_string_new("a: [1");
    for (int i = 1; i < 99997; i++)
        g_string_append(s, ",1");
    g_string_append(s, "]\n");
    pz_conf_doc *doc = load(s->str);
    const pz_conf *a = NULL;
    assert_int_equal(pz_conf_list(pz_conf_root(doc), "a", &a, NULL), 0);
    assert_int_equal(pz_conf_len(a), 99997);
    pz_conf_doc_free(doc);
    g_string_truncate(s, s->len - 2);
    g_string_append(s, ",1]\n");
    /* Item 99998 starts at column 5 + 2 * 99997. */
    char *msg = g_strdup_printf("test.yaml:1:%d: more than 100000 nodes: the configuration is too large",
                                5 + 2 * 99997);
    expect_refused(s->str, s->len, PZ_ECONFIG, msg);
    g_free(msg);
    g_string_free(s, TRUE);
}

static void test_many_keys(void **state)
{
    (void)state;
    /* Duplicate detection stays fast and exact on a big map. */
    GString *s = g_string_new("");
    for (int i = 0; i < 20000; i++)
        g_string_append_printf(s, "k%d: %d\n", i, i);
    pz_conf_doc *doc = load(s->str);
    assert_int_equal(pz_conf_len(pz_conf_root(doc)), 20000);
    pz_conf_doc_free(doc);
    g_string_append(s, "k12345: dup\n");
    expect_refused(s->str, s->len, PZ_ECONFIG,
                   "test.yaml:20001:1: k12345: duplicate key \"k12345\" (first at line 12346, column 1)");
    g_string_free(s, TRUE);
}

static void test_size_limit(void **state)
{
    (void)state;
    size_t max = 16u * 1024 * 1024;
    char *text = malloc(max + 1);
    assert_non_null(text);
    /* Exactly 16 MiB: one comment line. */
    memset(text, 'x', max);
    text[0] = '#';
    pz_err err;
    pz_conf_doc *doc = NULL;
    pz_err_init(&err);
    assert_int_equal(pz_conf_load_string("test.yaml", text, max, &doc, &err), 0);
    pz_conf_doc_free(doc);
    text[max] = 'x';
    expect_refused(text, max + 1, PZ_ECONFIG, "test.yaml: larger than the 16 MiB limit for a configuration file");
    pz_err_clear(&err);
    free(text);
}

/* ------------------------------------------------------------------------ */
/* Files */

static void test_load_file(void **state)
{
    (void)state;
    GError *gerr = NULL;
    char *dir = g_dir_make_tmp("pz-conf-XXXXXX", &gerr);
    assert_non_null(dir);
    char *good = g_build_filename(dir, "good.yaml", NULL);
    char *bad = g_build_filename(dir, "bad.yaml", NULL);
    char *big = g_build_filename(dir, "big.yaml", NULL);
    char *missing = g_build_filename(dir, "missing.yaml", NULL);
    assert_true(g_file_set_contents(good, "log:\n  level: info\n", -1, NULL));
    assert_true(g_file_set_contents(bad, "log:\n  level: [info\n", -1, NULL));
    pz_err err;
    pz_conf_doc *doc = NULL;
    pz_err_init(&err);

    assert_int_equal(pz_conf_load_file(good, &doc, &err), 0);
    const char *s = NULL;
    assert_int_equal(pz_conf_string(pz_conf_root(doc), "log.level", NULL, &s, &err), 0);
    assert_string_equal(s, "info");
    assert_string_equal(pz_conf_file(pz_conf_root(doc)), good);
    pz_conf_doc_free(doc);

    assert_int_equal(pz_conf_load_file(bad, &doc, &err), PZ_ECONFIG);
    assert_null(doc);
    char *want = g_strdup_printf("%s:3:1: invalid YAML: did not find expected ',' or ']' (while parsing a flow "
                                 "sequence at line 2, column 10)",
                                 bad);
    assert_string_equal(pz_err_msg(&err), want);
    g_free(want);

    assert_int_equal(pz_conf_load_file(missing, &doc, &err), PZ_EIO);
    want = g_strdup_printf("%s: cannot open: %s", missing, strerror(ENOENT));
    assert_string_equal(pz_err_msg(&err), want);
    g_free(want);

    assert_int_equal(pz_conf_load_file(dir, &doc, &err), PZ_EIO);
    want = g_strdup_printf("%s: cannot read: %s", dir, strerror(EISDIR));
    assert_string_equal(pz_err_msg(&err), want);
    g_free(want);

    FILE *fp = fopen(big, "w");
    assert_non_null(fp);
    assert_int_equal(ftruncate(fileno(fp), 16 * 1024 * 1024 + 1), 0);
    fclose(fp);
    assert_int_equal(pz_conf_load_file(big, &doc, &err), PZ_ECONFIG);
    want = g_strdup_printf("%s: larger than the 16 MiB limit for a configuration file", big);
    assert_string_equal(pz_err_msg(&err), want);
    g_free(want);

    if (geteuid() != 0) { /* root reads mode 000 files anyway */
        assert_int_equal(chmod(good, 0), 0);
        assert_int_equal(pz_conf_load_file(good, &doc, &err), PZ_EIO);
        want = g_strdup_printf("%s: cannot open: %s", good, strerror(EACCES));
        assert_string_equal(pz_err_msg(&err), want);
        g_free(want);
    }

    pz_err_clear(&err);
    g_unlink(good);
    g_unlink(bad);
    g_unlink(big);
    g_rmdir(dir);
    g_free(good);
    g_free(bad);
    g_free(big);
    g_free(missing);
    g_free(dir);
}

/* ------------------------------------------------------------------------ */
/* Shared parse helpers */

typedef struct unit_case {
    const char *text;
    int rc;
    uint64_t want;
} unit_case;

static void test_parse_duration(void **state)
{
    (void)state;
    static const unit_case cases[] = {
        {"10ns", 0, 10},
        {"100us", 0, 100000},
        {"100\xc2\xb5s", 0, 100000},
        {"250ms", 0, 250000000},
        {"30s", 0, 30 * NS},
        {"5m", 0, 300 * NS},
        {"2h", 0, 7200 * NS},
        {"1d", 0, 86400 * NS},
        {"7", 0, 7 * NS},
        {"1_000ms", 0, 1000000000},
        {"30 s", 0, 30 * NS},
        {"18446744073709551615ns", 0, UINT64_MAX},
        {"18446744073709551616ns", PZ_ERANGE, 0},
        {"213503d", 0, 213503ull * 86400 * NS},
        {"213504d", PZ_ERANGE, 0},
        {"18446744074s", PZ_ERANGE, 0},
        {"", PZ_EINVAL, 0},
        {"s", PZ_EINVAL, 0},
        {"-1s", PZ_EINVAL, 0},
        {" 1s", PZ_EINVAL, 0},
        {"1s ", PZ_EINVAL, 0},
        {"30 ", PZ_EINVAL, 0},
        {"1S", PZ_EINVAL, 0},
        {"1sec", PZ_EINVAL, 0},
        {"1h30m", PZ_EINVAL, 0},
        {"_1s", PZ_EINVAL, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t v = 12345;
        int rc = pz_parse_duration(cases[i].text, &v);
        if (rc != cases[i].rc || (rc == 0 && v != cases[i].want))
            fail_msg("duration case %zu \"%s\": rc %d v %llu", i, cases[i].text, rc, (unsigned long long)v);
    }
    uint64_t v;
    assert_int_equal(pz_parse_duration(NULL, &v), PZ_EINVAL);
    assert_int_equal(pz_parse_duration("1s", NULL), PZ_EINVAL);
}

static void test_parse_size(void **state)
{
    (void)state;
    static const unit_case cases[] = {
        {"0", 0, 0},
        {"512", 0, 512},
        {"512B", 0, 512},
        {"1kB", 0, 1000},
        {"1MB", 0, 1000000},
        {"1GB", 0, 1000000000},
        {"1TB", 0, 1000000000000ull},
        {"64KiB", 0, 65536},
        {"1MiB", 0, 1048576},
        {"2GiB", 0, 2147483648ull},
        {"1TiB", 0, 1099511627776ull},
        {"16777215TiB", 0, 16777215ull << 40},
        {"16777216TiB", PZ_ERANGE, 0},
        {"18446744073709551616", PZ_ERANGE, 0},
        {"1K", PZ_EINVAL, 0},
        {"1KB", PZ_EINVAL, 0},
        {"1kib", PZ_EINVAL, 0},
        {"1.5MiB", PZ_EINVAL, 0},
        {"-1", PZ_EINVAL, 0},
        {"MiB", PZ_EINVAL, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t v = 12345;
        int rc = pz_parse_size(cases[i].text, &v);
        if (rc != cases[i].rc || (rc == 0 && v != cases[i].want))
            fail_msg("size case %zu \"%s\": rc %d v %llu", i, cases[i].text, rc, (unsigned long long)v);
    }
    uint64_t v;
    assert_int_equal(pz_parse_size(NULL, &v), PZ_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_empty_documents),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_positions_and_paths),
        cmocka_unit_test(test_getters),
        cmocka_unit_test(test_long_value_is_cut),
        cmocka_unit_test(test_dotted_keys),
        cmocka_unit_test(test_scalar_where_error),
        cmocka_unit_test(test_child_expected_as_int),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_suggestions),
        cmocka_unit_test(test_unknown_in_lists),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_node_limit),
        cmocka_unit_test(test_many_keys),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_parse_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
