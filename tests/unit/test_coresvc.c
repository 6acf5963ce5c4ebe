/* tests/unit/test_coresvc.c — the core-services table (core/coresvc.c):
 * every member, the hooks, the GLib log path, the metrics registry. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <gcrypt.h>
#include <glib.h>

#include "conf.h"
#include "coresvc.h"
#include "err.h"

/* ------------------------------------------------------------------------ */
/* Capturing hooks */

typedef struct capture {
    char source[64];
    char msg[256];
    pz_log_level level;
    int n_log;
    pz_behavior_event event;
    char event_source[64];
    int n_behavior;
    char metric_source[64];
    char metric_name[64];
    char metric_label[64];
    int metric_has_label;
    int64_t metric_value;
    int metric_is_gauge;
    int n_metric;
    uint64_t mono, real;
    int random_calls;
} capture;

static capture cap;

static uint64_t fake_mono(void *ud)
{
    return ((capture *)ud)->mono;
}

static uint64_t fake_real(void *ud)
{
    return ((capture *)ud)->real;
}

static int fake_random(void *ud, void *buf, size_t len)
{
    ((capture *)ud)->random_calls++;
    memset(buf, 0xab, len);
    return 0;
}

static void cap_behavior(void *ud, const char *source, const pz_behavior_event *ev)
{
    capture *c = ud;
    c->event = *ev;
    g_strlcpy(c->event_source, source, sizeof(c->event_source));
    c->n_behavior++;
}

static void cap_log(void *ud, const char *source, pz_log_level level, const char *msg)
{
    capture *c = ud;
    g_strlcpy(c->source, source, sizeof(c->source));
    g_strlcpy(c->msg, msg, sizeof(c->msg));
    c->level = level;
    c->n_log++;
}

static void cap_metric(void *ud, const char *source, const char *name, const char *label, int64_t value,
                       int is_gauge)
{
    capture *c = ud;
    g_strlcpy(c->metric_source, source, sizeof(c->metric_source));
    g_strlcpy(c->metric_name, name, sizeof(c->metric_name));
    c->metric_has_label = label != NULL;
    g_strlcpy(c->metric_label, label ? label : "", sizeof(c->metric_label));
    c->metric_value = value;
    c->metric_is_gauge = is_gauge;
    c->n_metric++;
}

static void install_capture(void)
{
    memset(&cap, 0, sizeof(cap));
    pz_core_hooks h = {
        .monotonic_ns = fake_mono,
        .realtime_ns = fake_real,
        .random = fake_random,
        .behavior = cap_behavior,
        .log = cap_log,
        .metric = cap_metric,
        .ud = &cap,
    };
    pz_core_set_hooks(&h);
}

static int reset_hooks(void **state)
{
    (void)state;
    pz_core_set_hooks(NULL);
    pz_metrics_clear();
    return 0;
}

/* ------------------------------------------------------------------------ */
/* GLib writer: the default log hook's output */

typedef struct glib_capture {
    char domain[32];
    char provider[64];
    char message[256];
    GLogLevelFlags level;
    int n;
} glib_capture;

static glib_capture glog;

static GLogWriterOutput test_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer ud)
{
    (void)ud;
    glog.level = level;
    glog.n++;
    for (gsize i = 0; i < n_fields; i++) {
        const char *v = fields[i].value;
        if (fields[i].length >= 0)
            continue; /* every field we set is a NUL-terminated string */
        if (!strcmp(fields[i].key, "GLIB_DOMAIN"))
            g_strlcpy(glog.domain, v, sizeof(glog.domain));
        else if (!strcmp(fields[i].key, "PROVIDER"))
            g_strlcpy(glog.provider, v, sizeof(glog.provider));
        else if (!strcmp(fields[i].key, "MESSAGE"))
            g_strlcpy(glog.message, v, sizeof(glog.message));
    }
    return G_LOG_WRITER_HANDLED;
}

/* ------------------------------------------------------------------------ */

static void test_table_complete(void **state)
{
    (void)state;
    pz_core *c = pz_core_new("unit");
    assert_non_null(c);
    assert_int_equal(c->struct_size, sizeof(pz_core));
    assert_int_equal(c->abi_major, PZ_ABI_MAJOR);
    assert_int_equal(c->abi_minor, PZ_ABI_MINOR);
    /* Every member after the header is a function: none may be NULL. */
    const size_t first = offsetof(pz_core, log);
    for (size_t off = first; off + sizeof(void (*)(void)) <= sizeof(pz_core); off += sizeof(void (*)(void))) {
        void (*fp)(void);
        memcpy(&fp, (const char *)c + off, sizeof(fp));
        assert_non_null(fp);
    }
    assert_ptr_equal(c->conf_has, pz_conf_has);
    assert_ptr_equal(c->conf_string, pz_conf_string);
    assert_ptr_equal(c->conf_int, pz_conf_int);
    assert_ptr_equal(c->conf_double, pz_conf_double);
    assert_ptr_equal(c->conf_bool, pz_conf_bool);
    assert_ptr_equal(c->conf_duration, pz_conf_duration);
    assert_ptr_equal(c->conf_size, pz_conf_size);
    assert_ptr_equal(c->conf_map, pz_conf_map);
    assert_ptr_equal(c->conf_list, pz_conf_list);
    assert_ptr_equal(c->conf_len, pz_conf_len);
    assert_ptr_equal(c->conf_at, pz_conf_at);
    assert_ptr_equal(c->conf_scalar, pz_conf_scalar);
    assert_ptr_equal(c->conf_where, pz_conf_where);
    assert_ptr_equal(c->conf_error, pz_conf_error);
    pz_core_free(c);
}

static void test_source_copied(void **state)
{
    (void)state;
    char name[] = "inst-1";
    pz_core *c = pz_core_new(name);
    assert_non_null(c);
    name[0] = 'X';
    assert_string_equal(pz_core_source(c), "inst-1");
    pz_core_free(c);
}

static void test_bad_inputs(void **state)
{
    (void)state;
    assert_null(pz_core_new(NULL));
    assert_null(pz_core_source(NULL));
    pz_core_free(NULL);
    assert_int_equal(pz_random(NULL, 8), PZ_EINVAL);
    assert_int_equal(pz_random(NULL, 0), 0);
    pz_emit_behavior("x", NULL); /* ignored */
    assert_int_equal(pz_metrics_foreach(NULL, NULL), PZ_EINVAL);
    assert_int_equal(pz_metrics_format(NULL), PZ_EINVAL);
}

static void test_log_hook(void **state)
{
    (void)state;
    install_capture();
    pz_core *c = pz_core_new("rl-main");
    c->log(c, PZ_LOG_WARNING, "limit %d reached for %s", 5, "peer");
    assert_int_equal(cap.n_log, 1);
    assert_string_equal(cap.source, "rl-main");
    assert_int_equal(cap.level, PZ_LOG_WARNING);
    assert_string_equal(cap.msg, "limit 5 reached for peer");
    /* A provider cannot forge a second log line. */
    c->log(c, PZ_LOG_INFO, "one\nFAKE: two\r");
    assert_string_equal(cap.msg, "one FAKE: two ");
    pz_log(NULL, PZ_LOG_ERROR, "core says %s", "hi");
    assert_string_equal(cap.source, "core");
    assert_string_equal(cap.msg, "core says hi");
    pz_core_free(c);
}

static void test_log_default_glib(void **state)
{
    (void)state;
    memset(&glog, 0, sizeof(glog));
    pz_core *c = pz_core_new("auth-x");
    c->log(c, PZ_LOG_NOTICE, "hello %d", 42);
    assert_int_equal(glog.n, 1);
    assert_string_equal(glog.domain, "prozsec");
    assert_string_equal(glog.provider, "auth-x");
    assert_string_equal(glog.message, "[auth-x] hello 42");
    assert_int_equal(glog.level & G_LOG_LEVEL_MASK, G_LOG_LEVEL_MESSAGE);
    /* Errors are logged as critical, never as GLib's aborting "error". */
    c->log(c, PZ_LOG_ERROR, "bad");
    assert_int_equal(glog.level & G_LOG_LEVEL_MASK, G_LOG_LEVEL_CRITICAL);
    c->log(c, PZ_LOG_DEBUG, "dbg");
    assert_int_equal(glog.level & G_LOG_LEVEL_MASK, G_LOG_LEVEL_DEBUG);
    c->log(c, PZ_LOG_INFO, "info");
    assert_int_equal(glog.level & G_LOG_LEVEL_MASK, G_LOG_LEVEL_INFO);
    c->log(c, PZ_LOG_WARNING, "warn");
    assert_int_equal(glog.level & G_LOG_LEVEL_MASK, G_LOG_LEVEL_WARNING);
    pz_core_free(c);
}

static void test_error(void **state)
{
    (void)state;
    pz_core *c = pz_core_new("e");
    pz_err err;
    pz_err_init(&err);
    assert_int_equal(c->error(c, &err, PZ_ECONFIG, "bad %s", "thing"), PZ_ECONFIG);
    assert_int_equal(err.code, PZ_ECONFIG);
    assert_string_equal(pz_err_msg(&err), "bad thing");
    assert_int_equal(c->error(c, &err, PZ_EINVAL, "second"), PZ_EINVAL);
    assert_string_equal(pz_err_msg(&err), "second");
    /* A NULL sink is allowed: the code still comes back. */
    assert_int_equal(c->error(c, NULL, PZ_EIO, "ignored"), PZ_EIO);
    pz_err_clear(&err);
    pz_core_free(c);
}

static void test_clocks_default(void **state)
{
    (void)state;
    pz_core *c = pz_core_new("clk");
    uint64_t a = c->monotonic_ns(c);
    uint64_t b = c->monotonic_ns(c);
    assert_true(a > 0);
    assert_true(b >= a);
    /* After 2020-01-01: the wall clock is in nanoseconds since the epoch. */
    assert_true(c->realtime_ns(c) > UINT64_C(1577836800) * UINT64_C(1000000000));
    assert_true(pz_now_ns() > 0);
    assert_true(pz_realtime_ns() > 0);
    pz_core_free(c);
}

static void test_clock_and_random_hooks(void **state)
{
    (void)state;
    install_capture();
    cap.mono = 123;
    cap.real = 456;
    pz_core *c = pz_core_new("h");
    assert_int_equal(c->monotonic_ns(c), 123);
    assert_int_equal(c->realtime_ns(c), 456);
    assert_int_equal(pz_now_ns(), 123);
    uint8_t buf[4] = {0};
    assert_int_equal(c->random(c, buf, sizeof(buf)), 0);
    assert_int_equal(buf[0], 0xab);
    assert_int_equal(cap.random_calls, 1);
    /* Replacing with NULL members brings the defaults back. */
    pz_core_hooks partial = {.realtime_ns = fake_real, .ud = &cap};
    pz_core_set_hooks(&partial);
    assert_int_equal(c->realtime_ns(c), 456);
    assert_int_not_equal(c->monotonic_ns(c), 123);
    pz_core_free(c);
}

static void test_random_default(void **state)
{
    (void)state;
    pz_core *c = pz_core_new("rnd");
    uint8_t a[32], b[32], zero[32] = {0};
    assert_int_equal(c->random(c, a, sizeof(a)), 0);
    assert_int_equal(c->random(c, b, sizeof(b)), 0);
    assert_memory_not_equal(a, b, sizeof(a));
    assert_memory_not_equal(a, zero, sizeof(a));
    assert_int_equal(c->random(c, a, 0), 0);
    assert_true(gcry_control(GCRYCTL_INITIALIZATION_FINISHED_P));
    pz_core_free(c);
}

static void test_secure_memory(void **state)
{
    (void)state;
    pz_core *c = pz_core_new("sec");
    uint8_t *p = c->secure_alloc(c, 64);
    assert_non_null(p);
    assert_true(gcry_is_secure(p));
    memset(p, 0x5a, 64);
    c->secure_free(c, p);
    c->secure_free(c, NULL);
    /* A zero-length request still yields a freeable pointer. */
    p = c->secure_alloc(c, 0);
    assert_non_null(p);
    c->secure_free(c, p);
    pz_core_free(c);
}

static void test_behavior(void **state)
{
    (void)state;
    pz_core *c = pz_core_new("cl");
    pz_behavior_event ev = {.struct_size = sizeof(ev), .behavior = PZ_BEHAVIOR_REPLAY, .node_id = "n1"};
    c->behavior(c, &ev); /* default: dropped, no crash */
    install_capture();
    c->behavior(c, &ev);
    assert_int_equal(cap.n_behavior, 1);
    assert_string_equal(cap.event_source, "cl");
    assert_int_equal(cap.event.behavior, PZ_BEHAVIOR_REPLAY);
    assert_string_equal(cap.event.node_id, "n1");
    pz_emit_behavior(NULL, &ev);
    assert_string_equal(cap.event_source, "core");
    pz_core_free(c);
}

static void test_metric_hook(void **state)
{
    (void)state;
    install_capture();
    pz_core *c = pz_core_new("rl");
    c->metric_add(c, "refused_total", "peer-a", 2);
    assert_int_equal(cap.n_metric, 1);
    assert_string_equal(cap.metric_source, "rl");
    assert_string_equal(cap.metric_name, "refused_total");
    assert_string_equal(cap.metric_label, "peer-a");
    assert_int_equal(cap.metric_value, 2);
    assert_int_equal(cap.metric_is_gauge, 0);
    c->metric_set(c, "open", NULL, 7);
    assert_int_equal(cap.metric_is_gauge, 1);
    assert_false(cap.metric_has_label);
    c->metric_add(c, NULL, NULL, 1); /* no name: ignored */
    assert_int_equal(cap.n_metric, 2);
    pz_core_free(c);
}

typedef struct seen {
    GString *text;
    int n;
} seen;

static void collect(const char *name, const char *label, int64_t value, int is_gauge, void *ud)
{
    seen *s = ud;
    s->n++;
    g_string_append_printf(s->text, "%s|%s|%lld|%d\n", name, label ? label : "-", (long long)value, is_gauge);
}

static void test_metrics_registry(void **state)
{
    (void)state;
    pz_core *c = pz_core_new("test-rl");
    c->metric_add(c, "refused_total", "b", 1);
    c->metric_add(c, "refused_total", "a", 2);
    c->metric_add(c, "refused_total", "a", 3);
    c->metric_add(c, "refused_total", NULL, 1);
    c->metric_set(c, "open", NULL, 9);
    c->metric_set(c, "open", NULL, 4);
    seen s = {g_string_new(NULL), 0};
    assert_int_equal(pz_metrics_foreach(collect, &s), 0);
    assert_int_equal(s.n, 4);
    assert_string_equal(s.text->str, "prozsec_test_rl_open|-|4|1\n"
                                     "prozsec_test_rl_refused_total|-|1|0\n"
                                     "prozsec_test_rl_refused_total|a|5|0\n"
                                     "prozsec_test_rl_refused_total|b|1|0\n");
    g_string_free(s.text, TRUE);
    pz_core_free(c);
}

static void test_metrics_bad_names(void **state)
{
    (void)state;
    pz_core *c = pz_core_new("m");
    c->metric_add(c, "Bad-Name", NULL, 1);
    c->metric_add(c, "", NULL, 1);
    c->metric_add(c, "x{y}", NULL, 1);
    char label[PZ_METRICS_LABEL_MAX + 2];
    memset(label, 'l', sizeof(label) - 1);
    label[sizeof(label) - 1] = '\0';
    c->metric_add(c, "long_label", label, 1);
    seen s = {g_string_new(NULL), 0};
    assert_int_equal(pz_metrics_foreach(collect, &s), 0);
    assert_int_equal(s.n, 0);
    g_string_free(s.text, TRUE);
    pz_core_free(c);
}

static void test_metrics_cap(void **state)
{
    (void)state;
    pz_core *c = pz_core_new("cap");
    char label[32];
    for (int i = 0; i < PZ_METRICS_MAX_SERIES + 10; i++) {
        snprintf(label, sizeof(label), "%d", i);
        c->metric_add(c, "per_peer_total", label, 1);
    }
    seen s = {g_string_new(NULL), 0};
    assert_int_equal(pz_metrics_foreach(collect, &s), 0);
    /* The cap, plus the counter of dropped updates. */
    assert_int_equal(s.n, PZ_METRICS_MAX_SERIES + 1);
    assert_non_null(strstr(s.text->str, "prozsec_core_metrics_dropped_total|-|10|0\n"));
    g_string_free(s.text, TRUE);
    pz_core_free(c);
}

static void test_metrics_format(void **state)
{
    (void)state;
    pz_core *c = pz_core_new("fmt");
    c->metric_add(c, "events_total", "a\"b\\c\nd", 2);
    c->metric_add(c, "events_total", "plain", 1);
    c->metric_set(c, "open", NULL, -3);
    GString *out = g_string_new("# head\n");
    assert_int_equal(pz_metrics_format(out), 0);
    assert_string_equal(out->str, "# head\n"
                                  "# TYPE prozsec_fmt_events_total counter\n"
                                  "prozsec_fmt_events_total{label=\"a\\\"b\\\\c\\nd\"} 2\n"
                                  "prozsec_fmt_events_total{label=\"plain\"} 1\n"
                                  "# TYPE prozsec_fmt_open gauge\n"
                                  "prozsec_fmt_open -3\n");
    g_string_free(out, TRUE);
    /* Empty registry: nothing appended. */
    pz_metrics_clear();
    out = g_string_new(NULL);
    assert_int_equal(pz_metrics_format(out), 0);
    assert_int_equal(out->len, 0);
    g_string_free(out, TRUE);
    pz_core_free(c);
}

static void test_metrics_saturate(void **state)
{
    (void)state;
    pz_core *c = pz_core_new("sat");
    c->metric_add(c, "big_total", NULL, INT64_MAX);
    c->metric_add(c, "big_total", NULL, 5);
    GString *out = g_string_new(NULL);
    assert_int_equal(pz_metrics_format(out), 0);
    assert_non_null(strstr(out->str, "prozsec_sat_big_total 9223372036854775807\n"));
    g_string_free(out, TRUE);
    pz_core_free(c);
}

typedef struct worker_arg {
    pz_core *core;
    int n;
} worker_arg;

static gpointer worker(gpointer p)
{
    worker_arg *a = p;
    for (int i = 0; i < a->n; i++)
        a->core->metric_add(a->core, "hits_total", (i & 1) ? "odd" : "even", 1);
    return NULL;
}

static void test_metrics_threads(void **state)
{
    (void)state;
    pz_core *c = pz_core_new("thr");
    worker_arg a = {c, 2000};
    GThread *t[4];
    for (int i = 0; i < 4; i++)
        t[i] = g_thread_new("metrics", worker, &a);
    for (int i = 0; i < 4; i++)
        g_thread_join(t[i]);
    GString *out = g_string_new(NULL);
    assert_int_equal(pz_metrics_format(out), 0);
    assert_non_null(strstr(out->str, "prozsec_thr_hits_total{label=\"even\"} 4000\n"));
    assert_non_null(strstr(out->str, "prozsec_thr_hits_total{label=\"odd\"} 4000\n"));
    g_string_free(out, TRUE);
    pz_core_free(c);
}

int main(void)
{
    g_log_set_writer_func(test_writer, NULL, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_table_complete, reset_hooks),
        cmocka_unit_test_teardown(test_source_copied, reset_hooks),
        cmocka_unit_test_teardown(test_bad_inputs, reset_hooks),
        cmocka_unit_test_teardown(test_log_hook, reset_hooks),
        cmocka_unit_test_teardown(test_log_default_glib, reset_hooks),
        cmocka_unit_test_teardown(test_error, reset_hooks),
        cmocka_unit_test_teardown(test_clocks_default, reset_hooks),
        cmocka_unit_test_teardown(test_clock_and_random_hooks, reset_hooks),
        cmocka_unit_test_teardown(test_random_default, reset_hooks),
        cmocka_unit_test_teardown(test_secure_memory, reset_hooks),
        cmocka_unit_test_teardown(test_behavior, reset_hooks),
        cmocka_unit_test_teardown(test_metric_hook, reset_hooks),
        cmocka_unit_test_teardown(test_metrics_registry, reset_hooks),
        cmocka_unit_test_teardown(test_metrics_bad_names, reset_hooks),
        cmocka_unit_test_teardown(test_metrics_cap, reset_hooks),
        cmocka_unit_test_teardown(test_metrics_format, reset_hooks),
        cmocka_unit_test_teardown(test_metrics_saturate, reset_hooks),
        cmocka_unit_test_teardown(test_metrics_threads, reset_hooks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
