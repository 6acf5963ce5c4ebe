/* tests/unit/test_reputation.c — the reputation connection limiter, its
 * sources compiled in, against the mock core: the seed's ReputationManager
 * behaviour, decay, bans with escalation, address prefixes, persistence
 * across restarts and simulated crashes, configuration errors. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <glib.h>
#include <glib/gstdio.h>

#include <prozsec/connlimit.h>
#include <prozsec/plugintest.h>

#include "../../plugins/reputation/reputation.h"
#include "../testutil.h"

#define S 1000000000ull
#define MINUTE (60 * S)
#define HOUR (3600 * S)

static const pz_connlimit_provider *rp(void)
{
    const pz_plugin_descriptor *d = pz_plugin_entry_v1();
    assert_int_equal(d->kind, PZ_KIND_CONNLIMIT);
    assert_string_equal(d->name, "reputation");
    return d->provider;
}

typedef struct fx {
    pz_mock *m;
    void *st;
} fx;

static void fx_open(fx *f, const char *yaml)
{
    const pz_conf *conf = NULL;
    if (yaml && pz_mock_conf(f->m, yaml, &conf))
        fail_msg("yaml: %s", pz_mock_err_msg(f->m));
    int rc = rp()->create(pz_mock_core(f->m), conf, &f->st, pz_mock_err(f->m));
    if (rc)
        fail_msg("create: %s", pz_mock_err_msg(f->m));
    if (conf && pz_mock_check_unused(f->m, conf))
        fail_msg("unused: %s", pz_mock_err_msg(f->m));
}

static void fx_new(fx *f, const char *yaml)
{
    f->m = pz_mock_new();
    assert_non_null(f->m);
    fx_open(f, yaml);
}

static void fx_free(fx *f)
{
    rp()->destroy(f->st);
    pz_mock_free(f->m);
}

static pz_addr ip(const char *text)
{
    pz_addr a;
    memset(&a, 0, sizeof(a));
    if (!text)
        return a;
    if (inet_pton(AF_INET, text, a.bytes) == 1)
        a.family = PZ_AF_INET;
    else if (inet_pton(AF_INET6, text, a.bytes) == 1)
        a.family = PZ_AF_INET6;
    else
        fail_msg("bad address %s", text);
    return a;
}

static void ev(fx *f, pz_behavior b, const char *node, const char *addr, uint64_t now)
{
    pz_behavior_event e = {sizeof(e), b, node, ip(addr), now, "test"};
    rp()->on_behavior(f->st, &e);
}

static pz_admit_result admit_id(fx *f, const char *node, uint64_t now)
{
    pz_addr a = ip("192.0.2.1");
    pz_identity id = {sizeof(id), node, "validator", NULL, 0, NULL, NULL, "test"};
    pz_admit_result r;
    memset(&r, 0x55, sizeof(r));
    assert_int_equal(rp()->admit_identity(f->st, &a, &id, now, &r), 0);
    return r;
}

static pz_admit_result admit_addr(fx *f, const char *addr, uint64_t now)
{
    pz_addr a = ip(addr);
    pz_admit_result r;
    memset(&r, 0x55, sizeof(r));
    assert_int_equal(rp()->admit_address(f->st, &a, now, &r), 0);
    return r;
}

static pz_peer_status status(fx *f, const char *node, uint64_t now)
{
    pz_peer_status st = (pz_peer_status)99;
    assert_int_equal(rp()->peer_status(f->st, node, now, &st), 0);
    return st;
}

static int near(double a, double b)
{
    return a - b < 1e-9 && b - a < 1e-9;
}

/* ---- the seed's behaviour ------------------------------------------------ */

/* Each behaviour's default adjustment, from 50, and the clamping. */
static void test_adjustments_and_history(void **state)
{
    (void)state;
    static const struct {
        pz_behavior b;
        double delta;
    } defaults[] = {
        {PZ_BEHAVIOR_VALID_REQUEST, 0.1},       {PZ_BEHAVIOR_AUTH_FAILURE, -10},
        {PZ_BEHAVIOR_INVALID_SIGNATURE, -20},   {PZ_BEHAVIOR_REPLAY, -15},
        {PZ_BEHAVIOR_RATE_LIMITED, -2},         {PZ_BEHAVIOR_MALFORMED_FRAME, -10},
        {PZ_BEHAVIOR_TIMEOUT, -1},              {PZ_BEHAVIOR_HANDSHAKE_FAILURE, -5},
        {PZ_BEHAVIOR_UNAUTHORIZED_METHOD, -5},  {PZ_BEHAVIOR_STALE_TIMESTAMP, -3},
        {PZ_BEHAVIOR_PROTOCOL_VIOLATION, -10},  {PZ_BEHAVIOR_CONNECTION_FLOOD, -10},
    };
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
        fx f;
        fx_new(&f, "decay_half_life: 0\nban: {auto: false}\n");
        assert_true(pz__rep_score(f.st, "n", S) == -1);
        ev(&f, defaults[i].b, "n", "192.0.2.1", 2 * S);
        if (!near(pz__rep_score(f.st, "n", 2 * S), 50 + defaults[i].delta))
            fail_msg("behaviour %d: score %g", defaults[i].b, pz__rep_score(f.st, "n", 2 * S));
        pz_rep_event h[4];
        assert_int_equal(pz__rep_history(f.st, "n", h, 4), 1);
        assert_int_equal(h[0].behavior, defaults[i].b);
        assert_true(h[0].time_ns == 2 * S);
        assert_true(h[0].prev_score == 50);
        assert_true(near(h[0].applied, defaults[i].delta));
        fx_free(&f);
    }

    /* Clamped to [0, 100]; the history keeps the applied change and the
     * last history_size records. */
    fx f;
    fx_new(&f, "decay_half_life: 0\nban: {auto: false}\nhistory_size: 3\n"
               "adjustments: {valid_request: 30, replay: -45}\n");
    for (int i = 0; i < 3; i++)
        ev(&f, PZ_BEHAVIOR_VALID_REQUEST, "n", NULL, S + (uint64_t)i);
    assert_true(pz__rep_score(f.st, "n", 10 * S) == 100);
    pz_rep_event h[8];
    assert_int_equal(pz__rep_history(f.st, "n", h, 8), 3);
    assert_true(h[0].prev_score == 50 && h[0].applied == 30);
    assert_true(h[1].prev_score == 80 && h[1].applied == 20);
    assert_true(h[2].prev_score == 100 && h[2].applied == 0);
    for (int i = 0; i < 4; i++)
        ev(&f, PZ_BEHAVIOR_REPLAY, "n", NULL, 2 * S + (uint64_t)i);
    assert_true(pz__rep_score(f.st, "n", 10 * S) == 0);
    assert_int_equal(pz__rep_history(f.st, "n", h, 8), 3);
    assert_true(h[0].behavior == PZ_BEHAVIOR_REPLAY && h[0].prev_score == 55 && h[0].applied == -45);
    assert_true(h[1].prev_score == 10 && h[1].applied == -10);
    assert_true(h[2].prev_score == 0 && h[2].applied == 0 && h[2].time_ns == 2 * S + 3);
    /* Unknown behaviour values are ignored. */
    ev(&f, (pz_behavior)0, "m", NULL, S);
    ev(&f, (pz_behavior)999, "m", NULL, S);
    assert_true(pz__rep_score(f.st, "m", S) == -1);
    assert_int_equal(pz_mock_metric(f.m, "events", "replay"), 4);
    fx_free(&f);
}

static void test_status_and_admission(void **state)
{
    (void)state;
    static const struct {
        double score;
        pz_peer_status st;
        int admitted, reason;
    } cases[] = {
        {0, PZ_STATUS_BLOCKED, 0, PZ_REP_REASON_BLOCKED},
        {9.9, PZ_STATUS_BLOCKED, 0, PZ_REP_REASON_BLOCKED},
        {10, PZ_STATUS_PROBATION, -1, 0},
        {29.9, PZ_STATUS_PROBATION, -1, 0},
        {30, PZ_STATUS_NEUTRAL, 1, 0},
        {79.9, PZ_STATUS_NEUTRAL, 1, 0},
        {80, PZ_STATUS_TRUSTED, 1, 0},
        {100, PZ_STATUS_TRUSTED, 1, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[256];
        /* initial_score sets the score a first event starts from; a 0
         * adjustment records the node without changing it. */
        snprintf(yaml, sizeof(yaml),
                 "initial_score: %g\ndecay_half_life: 0\nban: {auto: false}\nadjustments: {timeout: 0}\n",
                 cases[i].score);
        fx f;
        fx_new(&f, yaml);
        ev(&f, PZ_BEHAVIOR_TIMEOUT, "n", NULL, S);
        if (status(&f, "n", S) != cases[i].st)
            fail_msg("case %zu: status %d", i, status(&f, "n", S));
        if (cases[i].admitted >= 0) {
            pz_admit_result r = admit_id(&f, "n", S);
            if (r.admitted != cases[i].admitted || r.reason != cases[i].reason)
                fail_msg("case %zu: admitted %d reason %d", i, r.admitted, r.reason);
        }
        fx_free(&f);
    }
    fx f;
    fx_new(&f, NULL);
    assert_int_equal(status(&f, "nobody", S), PZ_STATUS_UNKNOWN);
    assert_int_equal(status(&f, NULL, S), PZ_STATUS_UNKNOWN);
    assert_int_equal(admit_id(&f, "nobody", S).admitted, 1);
    /* admit_address and release are neutral for a peer with no record */
    assert_int_equal(admit_addr(&f, "192.0.2.1", S).admitted, 1);
    pz_addr a = ip("192.0.2.1");
    rp()->release(f.st, &a, NULL, PZ_STAGE_PRE_HANDSHAKE, S);
    fx_free(&f);
    fx_new(&f, "allow_new_nodes: false\n");
    pz_admit_result r = admit_id(&f, "nobody", S);
    assert_int_equal(r.admitted, 0);
    assert_int_equal(r.reason, PZ_REP_REASON_NEW_NODE);
    assert_string_equal(r.detail, "unknown node nobody (allow_new_nodes is false)");
    ev(&f, PZ_BEHAVIOR_VALID_REQUEST, "known", NULL, S);
    assert_int_equal(admit_id(&f, "known", S).admitted, 1);
    fx_free(&f);
}

/* Probation admits with probability score/100, with the core's randomness;
 * without randomness it refuses. */
static void test_probation_probability(void **state)
{
    (void)state;
    static const double scores[] = {10, 20, 25};
    for (size_t i = 0; i < sizeof(scores) / sizeof(scores[0]); i++) {
        char yaml[200];
        snprintf(yaml, sizeof(yaml), "initial_score: %g\ndecay_half_life: 0\nadjustments: {timeout: 0}\n",
                 scores[i]);
        fx f;
        fx_new(&f, yaml);
        ev(&f, PZ_BEHAVIOR_TIMEOUT, "p", NULL, S);
        int n = 20000, yes = 0;
        for (int k = 0; k < n; k++) {
            pz_admit_result r = admit_id(&f, "p", S);
            if (r.admitted)
                yes++;
            else
                assert_int_equal(r.reason, PZ_REP_REASON_PROBATION);
        }
        double p = (double)yes / n, want = scores[i] / 100;
        /* 20000 draws: 5 standard deviations is under 0.015 */
        if (p < want - 0.015 || p > want + 0.015)
            fail_msg("score %g: admitted %.4f", scores[i], p);
        pz_mock_set_random_fail(f.m, 1);
        for (int k = 0; k < 100; k++)
            assert_int_equal(admit_id(&f, "p", S).admitted, 0);
        fx_free(&f);
    }
}

static void test_decay(void **state)
{
    (void)state;
    fx f;
    fx_new(&f, "decay_half_life: 1h\nban: {auto: false}\nadjustments: {replay: -30, valid_request: 40}\n");
    ev(&f, PZ_BEHAVIOR_REPLAY, "d", NULL, S); /* 50 -> 20 */
    assert_true(near(pz__rep_score(f.st, "d", S), 20));
    assert_true(near(pz__rep_score(f.st, "d", S + HOUR), 35));
    assert_true(near(pz__rep_score(f.st, "d", S + 2 * HOUR), 42.5));
    assert_int_equal(status(&f, "d", S), PZ_STATUS_PROBATION);
    assert_int_equal(status(&f, "d", S + HOUR), PZ_STATUS_NEUTRAL);
    /* An adjustment applies to the decayed score. */
    ev(&f, PZ_BEHAVIOR_VALID_REQUEST, "d", NULL, S + 2 * HOUR); /* 42.5 + 40 */
    pz_rep_event h[2];
    assert_int_equal(pz__rep_history(f.st, "d", h, 2), 2);
    assert_true(near(h[1].prev_score, 42.5));
    assert_true(near(pz__rep_score(f.st, "d", S + 2 * HOUR), 82.5));
    /* Good scores decay down toward initial too. */
    assert_true(near(pz__rep_score(f.st, "d", S + 3 * HOUR), 66.25));
    /* Time going backwards never decays. */
    assert_true(near(pz__rep_score(f.st, "d", S), 82.5));
    fx_free(&f);
}

/* ---- bans -------------------------------------------------------------- */

static void test_auto_ban_escalates(void **state)
{
    (void)state;
    fx f;
    fx_new(&f, "decay_half_life: 0\nban: {duration: 10m, max_duration: 35m, forget_after: 1d}\n"
               "adjustments: {invalid_signature: -50}\n");
    uint64_t until;
    uint32_t count;
    static const uint64_t expect[] = {10 * MINUTE, 20 * MINUTE, 35 * MINUTE, 35 * MINUTE};
    uint64_t now = S;
    for (int k = 0; k < 4; k++) {
        ev(&f, PZ_BEHAVIOR_INVALID_SIGNATURE, "bad", NULL, now);
        assert_int_equal(pz__rep_banned(f.st, "bad", now, &until, &count), 1);
        assert_int_equal(count, k + 1);
        if (until - now != expect[k])
            fail_msg("ban %d: %llu s", k + 1, (unsigned long long)((until - now) / S));
        pz_admit_result r = admit_id(&f, "bad", now + 1);
        assert_int_equal(r.admitted, 0);
        assert_int_equal(r.reason, PZ_REP_REASON_BANNED_NODE);
        assert_true(r.retry_after_ns == expect[k] - 1);
        assert_int_equal(status(&f, "bad", now), PZ_STATUS_BLOCKED);
        /* Events while banned do not extend the ban. */
        ev(&f, PZ_BEHAVIOR_INVALID_SIGNATURE, "bad", NULL, now + 2);
        assert_int_equal(pz__rep_banned(f.st, "bad", now + 2, &until, &count), 1);
        assert_int_equal(count, k + 1);
        /* When it ends, the peer is back on probation. */
        now = until;
        assert_int_equal(status(&f, "bad", now), PZ_STATUS_PROBATION);
        assert_true(pz__rep_score(f.st, "bad", now) == 10);
        assert_int_equal(pz__rep_banned(f.st, "bad", now, NULL, NULL), 0);
    }
    assert_true(pz_mock_log_contains(f.m, "banned node bad for 600 s (ban #1): score 0.0 below 10"));
    assert_int_equal(pz_mock_metric(f.m, "bans", "node"), 4);
    /* After forget_after without a ban, escalation starts over. */
    now += 25 * HOUR;
    ev(&f, PZ_BEHAVIOR_INVALID_SIGNATURE, "bad", NULL, now);
    assert_int_equal(pz__rep_banned(f.st, "bad", now, &until, &count), 1);
    assert_int_equal(count, 1);
    assert_true(until - now == 10 * MINUTE);
    fx_free(&f);
}

static void test_manual_ban_unban(void **state)
{
    (void)state;
    fx f;
    fx_new(&f, "ban: {duration: 1m}\n");
    pz_err *err = pz_mock_err(f.m);
    pz_mock_set_time(f.m, 10 * S);
    /* Node ids, "node:" forced ids, addresses and CIDRs. */
    assert_int_equal(rp()->ban(f.st, "node-7", 0, 10 * S, err), 0);
    assert_int_equal(admit_id(&f, "node-7", 10 * S).reason, PZ_REP_REASON_BANNED_NODE);
    assert_int_equal(admit_id(&f, "node-7", 10 * S + MINUTE).admitted, 1); /* default: ban.duration */
    assert_int_equal(rp()->ban(f.st, "node:10.0.0.1", HOUR, 10 * S, err), 0);
    assert_int_equal(admit_id(&f, "10.0.0.1", 10 * S).reason, PZ_REP_REASON_BANNED_NODE);
    assert_int_equal(admit_addr(&f, "10.0.0.1", 10 * S).admitted, 1);
    assert_int_equal(rp()->ban(f.st, "198.51.100.0/24", 2 * HOUR, 10 * S, err), 0);
    pz_admit_result r = admit_addr(&f, "198.51.100.77", 10 * S);
    assert_int_equal(r.admitted, 0);
    assert_int_equal(r.reason, PZ_REP_REASON_BANNED_ADDRESS);
    assert_string_equal(r.detail, "address 198.51.100.0/24 is banned");
    assert_true(r.retry_after_ns == 2 * HOUR);
    assert_int_equal(admit_addr(&f, "198.51.101.1", 10 * S).admitted, 1);
    assert_int_equal(rp()->ban(f.st, "2001:db8::/32", UINT64_MAX, 10 * S, err), 0);
    r = admit_addr(&f, "2001:db8:1:2::3", 10 * S + 1000 * HOUR);
    assert_int_equal(r.reason, PZ_REP_REASON_BANNED_ADDRESS);
    assert_true(r.retry_after_ns == 0); /* until unbanned */
    assert_true(pz_mock_log_contains(f.m, "banned address 2001:db8::/32 until unbanned"));
    /* Unban lifts it and forgives the count. */
    assert_int_equal(rp()->unban(f.st, "2001:db8::/32", err), 0);
    assert_int_equal(admit_addr(&f, "2001:db8:1:2::3", 10 * S).admitted, 1);
    assert_int_equal(rp()->unban(f.st, "node:10.0.0.1", err), 0);
    assert_int_equal(admit_id(&f, "10.0.0.1", 10 * S).admitted, 1);
    uint32_t count = 9;
    pz__rep_banned(f.st, "10.0.0.1", 10 * S, NULL, &count);
    assert_int_equal(count, 0);
    /* Errors. */
    assert_int_equal(rp()->unban(f.st, "node-never", err), PZ_ENOENT);
    assert_string_equal(pz_mock_err_msg(f.m), "unban: node-never is not banned");
    assert_int_equal(rp()->unban(f.st, "node-7", err), PZ_ENOENT); /* expired */
    assert_int_equal(rp()->ban(f.st, "not an id!", 0, 10 * S, err), PZ_EINVAL);
    assert_non_null(strstr(pz_mock_err_msg(f.m), "\"not an id!\" is neither a node id"));
    assert_int_equal(rp()->ban(f.st, "10.0.0.1/8", 0, 10 * S, err), PZ_EINVAL);
    assert_int_equal(rp()->ban(f.st, NULL, 0, 10 * S, err), PZ_EINVAL);
    assert_int_equal(rp()->unban(f.st, "", err), PZ_EINVAL);
    fx_free(&f);
}

static void test_address_events_and_prefix_bans(void **state)
{
    (void)state;
    fx f;
    fx_new(&f, "decay_half_life: 0\naddress_prefix_v6: 56\nadjustments: {handshake_failure: -25}\n");
    /* Events before authentication are charged to the address prefix. */
    ev(&f, PZ_BEHAVIOR_HANDSHAKE_FAILURE, NULL, "192.0.2.9", S);
    assert_true(pz__rep_addr_score(f.st, &(pz_addr){PZ_AF_INET, {192, 0, 2, 9}, 0}, S) == 25);
    assert_int_equal(admit_addr(&f, "192.0.2.9", S).admitted, 1);
    ev(&f, PZ_BEHAVIOR_HANDSHAKE_FAILURE, NULL, "192.0.2.9", S);
    pz_admit_result r = admit_addr(&f, "192.0.2.9", S);
    assert_int_equal(r.admitted, 0);
    assert_int_equal(r.reason, PZ_REP_REASON_BANNED_ADDRESS);
    assert_true(r.retry_after_ns == 10 * MINUTE);
    assert_int_equal(admit_addr(&f, "192.0.2.10", S).admitted, 1);
    assert_int_equal(pz_mock_metric(f.m, "bans", "address"), 1);
    /* IPv6 is charged per /56 here. */
    ev(&f, PZ_BEHAVIOR_HANDSHAKE_FAILURE, NULL, "2001:db8:0:1::1", S);
    ev(&f, PZ_BEHAVIOR_HANDSHAKE_FAILURE, NULL, "2001:db8:0:2::1", S);
    assert_int_equal(admit_addr(&f, "2001:db8:0:3::1", S).reason, PZ_REP_REASON_BANNED_ADDRESS);
    assert_int_equal(admit_addr(&f, "2001:db8:0:100::1", S).admitted, 1);
    /* Events with neither id nor address are dropped; so are unix peers. */
    ev(&f, PZ_BEHAVIOR_REPLAY, NULL, NULL, S);
    pz_behavior_event e = {sizeof(e), PZ_BEHAVIOR_REPLAY, NULL, {PZ_AF_UNIX, {0}, 0}, S, NULL};
    rp()->on_behavior(f.st, &e);
    assert_int_equal(pz__rep_records(f.st), 2); /* 192.0.2.9/32, 2001:db8::/56 */
    pz_addr u = {PZ_AF_UNIX, {0}, 0};
    assert_int_equal(rp()->admit_address(f.st, &u, S, &r), 0);
    assert_int_equal(r.admitted, 1);
    fx_free(&f);

    /* With address bans off, a blocked address is still refused while
     * its score is low. */
    fx_new(&f, "decay_half_life: 10m\nban: {addresses: false}\nadjustments: {malformed_frame: -45}\n");
    ev(&f, PZ_BEHAVIOR_MALFORMED_FRAME, NULL, "203.0.113.5", S);
    r = admit_addr(&f, "203.0.113.5", S);
    assert_int_equal(r.reason, PZ_REP_REASON_BLOCKED);
    assert_string_equal(r.detail, "address 203.0.113.5/32 is blocked (score 5.0)");
    assert_int_equal(admit_addr(&f, "203.0.113.5", S + HOUR).admitted, 1); /* decayed */
    fx_free(&f);
}

/* ABI 1.1 peer_info: what `prozsec peer list` shows. */
static void test_peer_info(void **state)
{
    (void)state;
    fx f;
    fx_new(&f, "decay_half_life: 0\nhistory_size: 20\nadjustments: {replay: -45, timeout: -1}\n");
    pz_peer_info info;
    memset(&info, 0, sizeof(info));
    info.struct_size = sizeof(info);
    assert_true(rp()->struct_size >= offsetof(pz_connlimit_provider, peer_info) + sizeof(void *));
    assert_int_equal(rp()->peer_info(f.st, "nobody", S, &info), PZ_ENOENT);
    assert_int_equal(rp()->peer_info(f.st, NULL, S, &info), PZ_ENOENT);
    for (int i = 0; i < 18; i++)
        ev(&f, PZ_BEHAVIOR_TIMEOUT, "n", NULL, S + (uint64_t)i);
    ev(&f, PZ_BEHAVIOR_REPLAY, "n", NULL, 2 * S); /* 32 - 45: banned */
    assert_int_equal(rp()->peer_info(f.st, "n", 2 * S, &info), 0);
    assert_true(info.score == 0);
    assert_int_equal(info.status, PZ_STATUS_BLOCKED);
    assert_true(info.banned_until_ns == 2 * S + 10 * MINUTE);
    /* 19 records kept, the last 16 shown, oldest first. */
    assert_int_equal(info.n_history, PZ_PEER_HISTORY_MAX);
    assert_int_equal(info.history[0].behavior, PZ_BEHAVIOR_TIMEOUT);
    assert_true(info.history[0].time_ns == S + 3);
    assert_true(info.history[15].behavior == PZ_BEHAVIOR_REPLAY && info.history[15].prev_score == 32 &&
                info.history[15].delta == -32);
    /* A caller built with a smaller struct is refused, not overrun. */
    info.struct_size = 8;
    assert_int_equal(rp()->peer_info(f.st, "n", 2 * S, &info), PZ_EINVAL);
    fx_free(&f);
}

static void test_records_bounded(void **state)
{
    (void)state;
    fx f;
    fx_new(&f, "max_records: 100\nadjustments: {replay: -25}\ndecay_half_life: 0\n");
    char id[32];
    /* 20 banned nodes, then a flood of 10000 others. */
    for (int i = 0; i < 20; i++) {
        snprintf(id, sizeof(id), "banned-%d", i);
        ev(&f, PZ_BEHAVIOR_REPLAY, id, NULL, S);
        assert_int_equal(pz__rep_banned(f.st, id, S, NULL, NULL), 0);
        ev(&f, PZ_BEHAVIOR_REPLAY, id, NULL, S);
        assert_int_equal(pz__rep_banned(f.st, id, S, NULL, NULL), 1);
    }
    for (int i = 0; i < 10000; i++) {
        snprintf(id, sizeof(id), "flood-%d", i);
        ev(&f, PZ_BEHAVIOR_TIMEOUT, id, NULL, S + (uint64_t)i);
        assert_true(pz__rep_records(f.st) <= 100);
    }
    for (int i = 0; i < 20; i++) {
        snprintf(id, sizeof(id), "banned-%d", i);
        assert_int_equal(admit_id(&f, id, 2 * S).reason, PZ_REP_REASON_BANNED_NODE);
    }
    fx_free(&f);
}

/* ---- persistence ------------------------------------------------------- */

static char *tmpdir(void)
{
    GError *gerr = NULL;
    char *d = g_dir_make_tmp("pz-rep-XXXXXX", &gerr);
    if (!d)
        fail_msg("g_dir_make_tmp: %s", gerr->message);
    return d;
}

static char *conf_with_dir(const char *dir, const char *extra)
{
    return g_strdup_printf("data_dir: \"%s\"\nban: {duration: 1h}\nadjustments: {replay: -45}\n%s", dir,
                           extra ? extra : "");
}

static char *path_in(const char *dir, const char *name)
{
    return g_build_filename(dir, name, NULL);
}

static void test_persist_across_restart(void **state)
{
    (void)state;
    char *dir = tmpdir(), *yaml = conf_with_dir(dir, "decay_half_life: 1h\n");
    fx f;
    f.m = pz_mock_new();
    fx_open(&f, yaml);
    uint64_t t = PZ_MOCK_MONOTONIC_START_NS;
    ev(&f, PZ_BEHAVIOR_REPLAY, "villain", NULL, t);
    ev(&f, PZ_BEHAVIOR_REPLAY, "villain", NULL, t); /* banned 1 h */
    ev(&f, PZ_BEHAVIOR_REPLAY, "meh", NULL, t);     /* 5, banned too */
    ev(&f, PZ_BEHAVIOR_VALID_REQUEST, "good", "192.0.2.1", t);
    assert_int_equal(rp()->ban(f.st, "203.0.113.0/24", 3 * HOUR, t, pz_mock_err(f.m)), 0);
    assert_int_equal(rp()->flush(f.st, pz_mock_err(f.m)), 0);
    char *db = path_in(dir, PZ_REP_FILE);
    struct stat st;
    assert_int_equal(stat(db, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    rp()->destroy(f.st);

    /* The node was down 30 minutes: bans shortened by that, scores decayed. */
    pz_mock_advance(f.m, 30 * MINUTE);
    t += 30 * MINUTE;
    fx_open(&f, yaml);
    assert_true(pz_mock_log_contains(f.m, "loaded 4 records"));
    uint64_t until;
    uint32_t count;
    assert_int_equal(pz__rep_banned(f.st, "villain", t, &until, &count), 1);
    assert_int_equal(count, 1);
    assert_true(until == t + 30 * MINUTE);
    pz_admit_result r = admit_addr(&f, "203.0.113.9", t);
    assert_int_equal(r.reason, PZ_REP_REASON_BANNED_ADDRESS);
    assert_true(r.retry_after_ns == 150 * MINUTE);
    /* villain: 0 decays toward 50 with a 1 h half-life: 30 min -> 50(1-2^-0.5). */
    double want = 50 - 50 * 0.70710678118654752;
    assert_true(pz__rep_score(f.st, "villain", t) > want - 1e-6 && pz__rep_score(f.st, "villain", t) < want + 1e-6);
    pz_rep_event h[4];
    assert_int_equal(pz__rep_history(f.st, "villain", h, 4), 2);
    assert_int_equal(h[1].behavior, PZ_BEHAVIOR_REPLAY);
    assert_true(h[1].time_ns == t - 30 * MINUTE);
    assert_true(near(h[1].prev_score, 5) && near(h[1].applied, -5));
    assert_true(pz__rep_score(f.st, "good", t) > 50);
    /* The ban runs out while the node is down: back on probation at least
     * (without decay here, so the score alone would still block). */
    rp()->destroy(f.st);
    pz_mock_advance(f.m, 2 * HOUR);
    t += 2 * HOUR;
    char *yaml0 = conf_with_dir(dir, "decay_half_life: 0\n");
    fx_open(&f, yaml0);
    g_free(yaml0);
    assert_int_equal(pz__rep_banned(f.st, "villain", t, NULL, &count), 0);
    assert_int_equal(count, 1);
    assert_int_equal(status(&f, "villain", t), PZ_STATUS_PROBATION);
    r = admit_addr(&f, "203.0.113.9", t); /* 3 h ban, 2.5 h gone */
    assert_int_equal(r.reason, PZ_REP_REASON_BANNED_ADDRESS);
    assert_true(r.retry_after_ns == 30 * MINUTE);
    /* Escalation survives the restart: the next ban is 2 h. */
    ev(&f, PZ_BEHAVIOR_REPLAY, "villain", NULL, t);
    assert_int_equal(pz__rep_banned(f.st, "villain", t, &until, &count), 1);
    assert_true(until - t == 2 * HOUR);
    fx_free(&f);
    char *tmp = path_in(dir, PZ_REP_TMP_FILE);
    assert_int_equal(access(tmp, F_OK), -1);
    assert_int_equal(access(db, F_OK), 0);
    g_free(tmp);
    pz_test_rm_rf(dir);
    g_free(dir);
    g_free(yaml);
    g_free(db);
}

static void write_bytes(const char *path, const void *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    fclose(fp);
}

/* A crash mid-save leaves a torn temporary file, or (on a file system that
 * reorders) a torn main file. Neither is ever loaded. */
static void test_torn_files_never_load(void **state)
{
    (void)state;
    char *dir = tmpdir(), *yaml = conf_with_dir(dir, "decay_half_life: 0\n");
    char *db = path_in(dir, PZ_REP_FILE), *tmp = path_in(dir, PZ_REP_TMP_FILE), *bad = path_in(dir, PZ_REP_BAD_FILE);
    fx f;
    f.m = pz_mock_new();
    fx_open(&f, yaml);
    uint64_t t = PZ_MOCK_MONOTONIC_START_NS;
    for (int i = 0; i < 10; i++) {
        char id[16];
        snprintf(id, sizeof(id), "n%d", i);
        ev(&f, PZ_BEHAVIOR_REPLAY, id, NULL, t);
        ev(&f, PZ_BEHAVIOR_REPLAY, id, NULL, t);
    }
    rp()->destroy(f.st); /* saves */
    gchar *good = NULL;
    gsize len = 0;
    assert_true(g_file_get_contents(db, &good, &len, NULL));
    assert_true(len > 100);

    /* 1. A torn temporary file beside a good main file: the main file
     *    loads, the temporary one is removed. */
    write_bytes(tmp, good, len / 2);
    fx_open(&f, yaml);
    assert_int_equal(pz__rep_records(f.st), 10);
    assert_int_equal(pz__rep_banned(f.st, "n3", t, NULL, NULL), 1);
    assert_int_equal(access(tmp, F_OK), -1);
    assert_true(pz_mock_log_contains(f.m, "removed an unfinished save"));
    rp()->destroy(f.st);

    /* 2. The main file truncated at every length, or with any byte
     *    flipped: nothing is loaded, the file is set aside. */
    for (size_t cut = 0; cut < len; cut += (cut < 64 ? 1 : 7)) {
        write_bytes(db, good, cut);
        pz_mock_clear_logs(f.m);
        fx_open(&f, yaml);
        if (pz__rep_records(f.st) != 0)
            fail_msg("truncated at %zu of %zu: %zu records loaded", cut, (size_t)len, pz__rep_records(f.st));
        if (cut > 0) {
            assert_true(pz_mock_log_contains(f.m, "not loaded"));
            assert_int_equal(access(bad, F_OK), 0);
        }
        rp()->destroy(f.st);
        g_unlink(bad);
    }
    for (size_t pos = 0; pos < len; pos += 5) {
        gchar *copy = g_memdup2(good, len);
        copy[pos] ^= 0x20;
        write_bytes(db, copy, len);
        g_free(copy);
        fx_open(&f, yaml);
        if (pz__rep_records(f.st) != 0)
            fail_msg("byte %zu flipped: loaded", pos);
        rp()->destroy(f.st);
        g_unlink(bad);
    }
    /* Extra bytes after a good file are not a good file either. */
    gchar *longer = g_malloc(len + 1);
    memcpy(longer, good, len);
    longer[len] = 0;
    write_bytes(db, longer, len + 1);
    g_free(longer);
    fx_open(&f, yaml);
    assert_int_equal(pz__rep_records(f.st), 0);
    rp()->destroy(f.st);

    /* 3. The good file again: everything comes back. */
    g_unlink(bad);
    write_bytes(db, good, len);
    fx_open(&f, yaml);
    assert_int_equal(pz__rep_records(f.st), 10);
    fx_free(&f);
    pz_test_rm_rf(dir);
    g_free(good);
    g_free(dir);
    g_free(yaml);
    g_free(db);
    g_free(tmp);
    g_free(bad);
}

static void test_flush_errors(void **state)
{
    (void)state;
    char *dir = tmpdir(), *yaml = conf_with_dir(dir, NULL);
    fx f;
    f.m = pz_mock_new();
    fx_open(&f, yaml);
    /* Nothing changed: flush writes nothing. */
    assert_int_equal(rp()->flush(f.st, pz_mock_err(f.m)), 0);
    char *db = path_in(dir, PZ_REP_FILE);
    assert_int_equal(access(db, F_OK), -1);
    ev(&f, PZ_BEHAVIOR_TIMEOUT, "x", NULL, S);
    /* The directory vanished: PZ_EIO naming the file and the step. */
    pz_test_rm_rf(dir);
    assert_int_equal(rp()->flush(f.st, pz_mock_err(f.m)), PZ_EIO);
    assert_non_null(strstr(pz_mock_err_msg(f.m), PZ_REP_TMP_FILE ": open: No such file or directory"));
    /* destroy tries once more and only logs. */
    rp()->destroy(f.st);
    assert_true(pz_mock_log_contains(f.m, "final save to"));
    pz_mock_free(f.m);
    g_free(dir);
    g_free(yaml);
    g_free(db);
    /* Without data_dir, flush is a no-op. */
    fx_new(&f, NULL);
    ev(&f, PZ_BEHAVIOR_TIMEOUT, "x", NULL, S);
    assert_int_equal(rp()->flush(f.st, pz_mock_err(f.m)), 0);
    fx_free(&f);
}

/* A manual ban or unban that cannot be saved (here the directory is gone;
 * in tests/integration/faults.sh a full disk) is in force and reported as
 * done, so the core acts on it; the failure is logged with its reason and
 * the next save writes the change. */
static void test_ban_save_fails(void **state)
{
    (void)state;
    char *dir = tmpdir(), *yaml = conf_with_dir(dir, NULL);
    char *db = path_in(dir, PZ_REP_FILE);
    fx f;
    fx_new(&f, yaml);
    uint64_t t = PZ_MOCK_MONOTONIC_START_NS;
    pz_test_rm_rf(dir);
    assert_int_equal(rp()->ban(f.st, "node-9", HOUR, t, pz_mock_err(f.m)), 0);
    assert_true(pz_mock_log_contains(f.m, "ban of node-9 is in force but not saved"));
    assert_true(pz_mock_log_contains(f.m, PZ_REP_TMP_FILE ": open: No such file or directory"));
    assert_int_equal(status(&f, "node-9", t), PZ_STATUS_BLOCKED);
    assert_int_equal(rp()->unban(f.st, "node-9", pz_mock_err(f.m)), 0);
    assert_true(pz_mock_log_contains(f.m, "unban of node-9 is in force but not saved"));
    assert_int_not_equal(status(&f, "node-9", t), PZ_STATUS_BLOCKED);
    assert_int_equal(rp()->ban(f.st, "node-9", HOUR, t, pz_mock_err(f.m)), 0);
    /* The disk is back: the next save writes what was not saved. */
    assert_int_equal(g_mkdir(dir, 0700), 0);
    assert_int_equal(rp()->flush(f.st, pz_mock_err(f.m)), 0);
    assert_int_equal(access(db, F_OK), 0);
    fx_free(&f);
    fx_new(&f, yaml);
    assert_int_equal(status(&f, "node-9", t), PZ_STATUS_BLOCKED);
    fx_free(&f);
    pz_test_rm_rf(dir);
    g_free(db);
    g_free(dir);
    g_free(yaml);
}

/* ---- configuration ----------------------------------------------------- */

static void test_config_errors(void **state)
{
    (void)state;
    static const struct {
        const char *yaml, *want;
    } cases[] = {
        {"initial_score: 101\n", "test.yaml:1:16: initial_score"},
        {"initial_score: high\n", "test.yaml:1:16: initial_score"},
        {"thresholds: 5\n", "test.yaml:1:13: thresholds"},
        {"thresholds: {blocked: -1}\n", "test.yaml:1:23: thresholds.blocked"},
        {"thresholds: {blocked: 40, probation: 30}\n", "test.yaml:1:13: thresholds: expected blocked <= probation"},
        {"thresholds: {trusted: 20}\n", "test.yaml:1:13: thresholds: expected blocked <= probation <= trusted"},
        {"adjustments: {replay: -101}\n", "test.yaml:1:23: adjustments.replay"},
        {"adjustments: {timeout: x}\n", "test.yaml:1:24: adjustments.timeout"},
        {"history_size: -1\n", "test.yaml:1:15: history_size"},
        {"history_size: 5000\n", "test.yaml:1:15: history_size"},
        {"allow_new_nodes: perhaps\n", "test.yaml:1:18: allow_new_nodes"},
        {"decay_half_life: soon\n", "test.yaml:1:18: decay_half_life"},
        {"ban: {duration: 0}\n", "test.yaml:1:17: ban.duration: expected a duration above 0"},
        {"ban: {duration: 2h, max_duration: 1h}\n", "test.yaml:1:35: ban.max_duration: expected at least"},
        {"ban: {auto: 2}\n", "test.yaml:1:13: ban.auto"},
        {"ban: [1]\n", "test.yaml:1:6: ban"},
        {"address_prefix_v4: 33\n", "test.yaml:1:20: address_prefix_v4"},
        {"address_prefix_v6: 8\n", "test.yaml:1:20: address_prefix_v6"},
        {"max_records: 1\n", "test.yaml:1:14: max_records"},
        {"data_dir: /nonexistent/prozsec-test\n", "test.yaml:1:11: data_dir: \"/nonexistent/prozsec-test\": No such file"},
        {"data_dir: /dev/null\n", "test.yaml:1:11: data_dir: \"/dev/null\": not a directory"},
        {"data_dir: \"\"\n", "test.yaml:1:11: data_dir: \"\": empty path"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pz_mock *m = pz_mock_new();
        const pz_conf *conf;
        void *st = NULL;
        assert_int_equal(pz_mock_conf(m, cases[i].yaml, &conf), 0);
        int rc = rp()->create(pz_mock_core(m), conf, &st, pz_mock_err(m));
        if (rc != PZ_ECONFIG || !strstr(pz_mock_err_msg(m), cases[i].want))
            fail_msg("case %zu: rc %d \"%s\", wanted \"%s\"", i, rc, pz_mock_err_msg(m), cases[i].want);
        assert_null(st);
        pz_mock_free(m);
    }
    pz_mock *m = pz_mock_new();
    const pz_conf *conf;
    void *st = NULL;
    assert_int_equal(pz_mock_conf(m, "adjustments: {replay: -5, replays: -6}\n", &conf), 0);
    assert_int_equal(rp()->create(pz_mock_core(m), conf, &st, pz_mock_err(m)), 0);
    assert_int_equal(pz_mock_check_unused(m, conf), PZ_ECONFIG);
    assert_non_null(strstr(pz_mock_err_msg(m), "test.yaml:1:27: adjustments.replays: unknown key"));
    rp()->destroy(st);
    pz_mock_set_random_fail(m, 1);
    st = NULL;
    assert_int_equal(rp()->create(pz_mock_core(m), NULL, &st, pz_mock_err(m)), PZ_ECRYPTO);
    assert_null(st);
    pz_mock_free(m);
    rp()->destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adjustments_and_history),
        cmocka_unit_test(test_status_and_admission),
        cmocka_unit_test(test_probation_probability),
        cmocka_unit_test(test_decay),
        cmocka_unit_test(test_auto_ban_escalates),
        cmocka_unit_test(test_manual_ban_unban),
        cmocka_unit_test(test_address_events_and_prefix_bans),
        cmocka_unit_test(test_peer_info),
        cmocka_unit_test(test_records_bounded),
        cmocka_unit_test(test_persist_across_restart),
        cmocka_unit_test(test_torn_files_never_load),
        cmocka_unit_test(test_flush_errors),
        cmocka_unit_test(test_ban_save_fails),
        cmocka_unit_test(test_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
