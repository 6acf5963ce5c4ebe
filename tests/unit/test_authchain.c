/* tests/unit/test_authchain.c — core/authchain.c: the PAM-style decision
 * as a table over every control flag x answer for chains of one and two
 * providers, properties over every chain of three, identity merging and
 * conflicts, the outbound node id check, peer-directory completion,
 * behaviour events and failure counts, building chains from
 * configuration (a provider that cannot be loaded stops start-up), tokens
 * of the credentials frame (to the providers of their method; the frame
 * this node sends), the verify: auth-chain configuration check, and the
 * example configurations. */
#include "config.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "authchain.h"
#include "authz.h"
#include "certfix.h"
#include "conf.h"
#include "coresvc.h"
#include "crypto.h"
#include "err.h"
#include "identity.h"
#include "loader.h"
#include "node_priv.h"
#include "settings.h"

/* ------------------------------------------------------------------------ */
/* Captured behaviour events and log lines. */

static GPtrArray *events; /* char* "behavior|node_id|detail" */
static GPtrArray *logs;   /* char* */

static void hook_behavior(void *ud, const char *source, const pz_behavior_event *ev)
{
    (void)ud;
    g_ptr_array_add(events, g_strdup_printf("%s|%d|%s|%d|%s", source, (int)ev->behavior,
                                            ev->node_id ? ev->node_id : "(null)", (int)ev->addr.family,
                                            ev->detail ? ev->detail : ""));
}

static void hook_log(void *ud, const char *source, pz_log_level level, const char *msg)
{
    (void)ud;
    (void)level;
    g_ptr_array_add(logs, g_strdup_printf("%s: %s", source, msg));
    if (g_getenv("PZ_TEST_LOG"))
        fprintf(stderr, "[%s] %s\n", source, msg);
}

static int setup(void **state)
{
    (void)state;
    events = g_ptr_array_new_with_free_func(g_free);
    logs = g_ptr_array_new_with_free_func(g_free);
    pz_core_hooks h = {.behavior = hook_behavior, .log = hook_log};
    pz_core_set_hooks(&h);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    g_ptr_array_free(events, TRUE);
    g_ptr_array_free(logs, TRUE);
    return 0;
}

static int log_contains(const char *needle)
{
    for (guint i = 0; i < logs->len; i++)
        if (strstr(g_ptr_array_index(logs, i), needle))
            return 1;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* A fake provider whose answer the test sets. */

typedef enum fake_answer { F_ALLOW, F_DENY, F_ABSTAIN, F_ERROR, F_BADVERDICT, F_BADID } fake_answer;

typedef struct fake {
    fake_answer answer;
    char node_id[PZ_NODE_ID_MAX + 1];
    char node_type[PZ_NODE_TYPE_MAX + 1];
    const char *role;
    int has_sign_pub;
    uint8_t sign_pub[32];
    int calls;
} fake;

static int fake_authenticate(void *state, const pz_auth_credentials *cred, pz_auth_result *out, pz_err *err)
{
    fake *f = state;
    (void)cred;
    f->calls++;
    assert_int_equal(out->struct_size, sizeof(*out));
    assert_int_equal(out->verdict, PZ_AUTH_ABSTAIN); /* zeroed by the chain */
    switch (f->answer) {
    case F_ALLOW:
        out->verdict = PZ_AUTH_ALLOW;
        g_strlcpy(out->node_id, f->node_id, sizeof(out->node_id));
        g_strlcpy(out->node_type, f->node_type, sizeof(out->node_type));
        if (f->role) {
            g_strlcpy(out->roles[0], f->role, sizeof(out->roles[0]));
            out->n_roles = 1;
        }
        if (f->has_sign_pub) {
            memcpy(out->sign_pub, f->sign_pub, 32);
            out->has_sign_pub = 1;
        }
        return 0;
    case F_DENY:
        out->verdict = PZ_AUTH_DENY;
        out->reason_code = 42;
        g_strlcpy(out->reason, "fake says no", sizeof(out->reason));
        return 0;
    case F_ABSTAIN: out->verdict = PZ_AUTH_ABSTAIN; return 0;
    case F_ERROR: return pz_err_set(err, PZ_ENOMEM, "fake ran out of memory");
    case F_BADVERDICT: out->verdict = (pz_auth_verdict)7; return 0;
    case F_BADID:
        out->verdict = PZ_AUTH_ALLOW;
        g_strlcpy(out->node_id, "bad id with spaces", sizeof(out->node_id));
        return 0;
    }
    return PZ_EINTERNAL;
}

static int fake_generate(void *state, const uint8_t *cb, size_t cb_len, uint8_t *buf, size_t *len, pz_err *err)
{
    (void)state, (void)cb, (void)cb_len, (void)buf, (void)len, (void)err;
    return PZ_ENOTSUP;
}

static const char *const *fake_methods(void *state)
{
    static const char *const m[] = {"fake", NULL};
    (void)state;
    return m;
}

static const pz_auth_provider fake_table = {
    .struct_size = sizeof(pz_auth_provider),
    .authenticate_peer = fake_authenticate,
    .generate_credentials = fake_generate,
    .supported_methods = fake_methods,
};

static const pz_addr test_addr = {.family = PZ_AF_INET, .bytes = {192, 0, 2, 7}, .port = 51234};

static pz_auth_credentials creds(void)
{
    pz_auth_credentials c = {.struct_size = sizeof(c), .transport = "tls", .addr = &test_addr};
    return c;
}

static void fake_init(fake *f, fake_answer a)
{
    memset(f, 0, sizeof(*f));
    f->answer = a;
    g_strlcpy(f->node_id, "peer-1", sizeof(f->node_id));
}

/* ------------------------------------------------------------------------ */
/* The decision table. */

static const pz_auth_control flags[4] = {PZ_AUTH_REQUIRED, PZ_AUTH_REQUISITE, PZ_AUTH_SUFFICIENT,
                                         PZ_AUTH_OPTIONAL};
static const char flag_ch[4] = {'R', 'Q', 'S', 'O'};
static const fake_answer answers[4] = {F_ALLOW, F_DENY, F_ABSTAIN, F_ERROR};
static const char answer_ch[4] = {'a', 'd', 's', 'e'};

/* Expected decision, derived by hand from PAM's rules (authchain.h):
 *   A / B  allowed, identity vouched for by entry 1 / entry 2
 *   1 / 2  refused by entry 1 / entry 2
 *   N      refused, nobody decided ("chain")
 * One chain of one entry, index flag*4 + answer (R,Q,S,O x a,d,s,e). */
static const char one[16] = {
    'A', '1', '1', '1', /* Ra Rd Rs Re */
    'A', '1', '1', '1', /* Qa Qd Qs Qe */
    'A', '1', 'N', '1', /* Sa Sd Ss Se: a sufficient deny is reported when nothing else decided */
    'A', '1', 'N', '1', /* Oa Od Os Oe: optional is the only decision */
};

/* Chains of two: row = entry 1, column = entry 2, both as flag*4 + answer:
 *                     Ra Rd Rs Re Qa Qd Qs Qe Sa Sd Ss Se Oa Od Os Oe */
static const char *const two[16] = {
    /* Ra */ "A222A222AAAAAAAA", /* required allow: later required/requisite failures refuse */
    /* Rd */ "1111111111111111", /* a required failure always refuses, reported first */
    /* Rs */ "1111111111111111", /* abstaining is a failure for required */
    /* Re */ "1111111111111111", /* an error is a deny */
    /* Qa */ "A222A222AAAAAAAA",
    /* Qd */ "1111111111111111", /* requisite failure ends the chain */
    /* Qs */ "1111111111111111",
    /* Qe */ "1111111111111111",
    /* Sa */ "AAAAAAAAAAAAAAAA", /* sufficient allow ends the chain */
    /* Sd */ "B222B222B111B212", /* ignored unless nothing else decides; optional deny beats it */
    /* Ss */ "B222B222B2N2B2N2",
    /* Se */ "B222B222B111B212",
    /* Oa */ "B222B222BAAAA2A2", /* optional counts only alone; among optionals a deny wins */
    /* Od */ "B222B222B1111111",
    /* Os */ "B222B222B2N2B2N2",
    /* Oe */ "B222B222B1111111",
};

/* Entry 2 of a chain of two runs unless entry 1 ended the chain. */
static int second_runs(int i1)
{
    int flag = i1 / 4, ans = i1 % 4;
    if (flags[flag] == PZ_AUTH_REQUISITE && answers[ans] != F_ALLOW)
        return 0;
    if (flags[flag] == PZ_AUTH_SUFFICIENT && answers[ans] == F_ALLOW)
        return 0;
    return 1;
}

static pz_auth_outcome outcome_for(fake_answer a)
{
    switch (a) {
    case F_DENY: return PZ_AUTH_OUT_DENIED;
    case F_ABSTAIN: return PZ_AUTH_OUT_ABSTAINED;
    default: return PZ_AUTH_OUT_ERROR;
    }
}

/* Run a chain of N entries with codes IDX[] and check it against EXPECT. */
static void run_case(const int *idx, size_t n, char expect)
{
    pz_authchain *chain = NULL;
    fake f[3];
    char names[3][8];
    char label[16] = "";
    pz_authchain_result res;

    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(label);
        snprintf(label + l, sizeof(label) - l, "%s%c%c", i ? " " : "", flag_ch[idx[i] / 4], answer_ch[idx[i] % 4]);
    }
    assert_int_equal(pz_authchain_new(&chain, NULL), 0);
    for (size_t i = 0; i < n; i++) {
        fake_init(&f[i], answers[idx[i] % 4]);
        snprintf(names[i], sizeof(names[i]), "p%zu", i + 1);
        assert_int_equal(pz_authchain_add(chain, names[i], &fake_table, &f[i], flags[idx[i] / 4], NULL), 0);
    }
    pz_auth_credentials c = creds();
    guint ev_before = events->len;
    uint64_t fails_before = pz_authchain_failure_count(chain, NULL, NULL);
    assert_int_equal(pz_authchain_authenticate(chain, &c, 5, &res), 0);

    char got;
    if (res.allowed)
        got = res.provider[1] == '1' ? 'A' : 'B';
    else if (!strcmp(res.provider, "chain"))
        got = 'N';
    else
        got = res.provider[1];
    if (got != expect)
        fail_msg("chain [%s]: expected %c, got %c (%s: %s)", label, expect, got, res.provider, res.reason);

    if (res.allowed) {
        assert_string_equal(res.id.node_id, "peer-1");
        assert_int_equal(res.id.verdict, PZ_AUTH_ALLOW);
        assert_int_equal(events->len, ev_before);
        assert_int_equal(pz_authchain_failure_count(chain, NULL, NULL), fails_before);
    } else {
        /* Exactly one behaviour event and one count per refusal. */
        assert_int_equal(events->len, ev_before + 1);
        assert_int_equal(pz_authchain_failure_count(chain, NULL, NULL), fails_before + 1);
        assert_int_equal(pz_authchain_failure_count(chain, res.provider, NULL), 1);
        if (got == 'N') {
            assert_int_equal(res.outcome, PZ_AUTH_OUT_NO_DECISION);
        } else {
            fake_answer a = f[got - '1'].answer;
            if (res.outcome != outcome_for(a))
                fail_msg("chain [%s]: outcome %s, expected the refusing entry's %s", label,
                         pz_auth_outcome_name(res.outcome), pz_auth_outcome_name(outcome_for(a)));
            if (a == F_DENY) {
                assert_int_equal(res.reason_code, 42);
                assert_string_equal(res.reason, "fake says no");
                assert_int_equal(pz_authchain_failure_count(chain, res.provider, "deny:42"), 1);
            }
            if (a == F_ERROR)
                assert_non_null(strstr(res.reason, "fake ran out of memory"));
        }
    }
    pz_authchain_free(chain);
    (void)f;
}

static void test_table_one(void **state)
{
    (void)state;
    for (int i = 0; i < 16; i++)
        run_case(&i, 1, one[i]);
}

static void test_table_two(void **state)
{
    (void)state;
    for (int i = 0; i < 16; i++) {
        for (int j = 0; j < 16; j++) {
            int idx[2] = {i, j};
            run_case(idx, 2, two[i][j]);
        }
    }
}

static void test_second_runs(void **state)
{
    (void)state;
    for (int i = 0; i < 16; i++) {
        pz_authchain *chain = NULL;
        fake f1, f2;
        pz_authchain_result res;
        fake_init(&f1, answers[i % 4]);
        fake_init(&f2, F_ALLOW);
        assert_int_equal(pz_authchain_new(&chain, NULL), 0);
        assert_int_equal(pz_authchain_add(chain, "p1", &fake_table, &f1, flags[i / 4], NULL), 0);
        assert_int_equal(pz_authchain_add(chain, "p2", &fake_table, &f2, PZ_AUTH_REQUIRED, NULL), 0);
        pz_auth_credentials c = creds();
        assert_int_equal(pz_authchain_authenticate(chain, &c, 0, &res), 0);
        assert_int_equal(f1.calls, 1);
        assert_int_equal(f2.calls, second_runs(i));
        pz_authchain_free(chain);
    }
}

/* Properties over every chain of three (16^3 chains). */
static void decide3(const int *idx, const fake_answer *override, int *allowed, char *who)
{
    pz_authchain *chain = NULL;
    fake f[3];
    pz_authchain_result res;
    assert_int_equal(pz_authchain_new(&chain, NULL), 0);
    for (int i = 0; i < 3; i++) {
        fake_init(&f[i], override ? override[i] : answers[idx[i] % 4]);
        char name[4] = {'p', (char)('1' + i), 0};
        assert_int_equal(pz_authchain_add(chain, name, &fake_table, &f[i], flags[idx[i] / 4], NULL), 0);
    }
    pz_auth_credentials c = creds();
    assert_int_equal(pz_authchain_authenticate(chain, &c, 0, &res), 0);
    *allowed = res.allowed;
    *who = !strcmp(res.provider, "chain") ? 'N' : res.provider[1];
    if (res.allowed) {
        /* The vouching entry answered allow and ran. */
        assert_int_equal(f[*who - '1'].answer, F_ALLOW);
        assert_int_equal(f[*who - '1'].calls, 1);
    } else if (*who != 'N') {
        assert_int_not_equal(f[*who - '1'].answer, F_ALLOW);
        assert_int_equal(f[*who - '1'].calls, 1);
    }
    pz_authchain_free(chain);
}

static void test_properties_three(void **state)
{
    (void)state;
    for (int a = 0; a < 16; a++) {
        for (int b = 0; b < 16; b++) {
            for (int c = 0; c < 16; c++) {
                int idx[3] = {a, b, c};
                fake_answer ans[3] = {answers[a % 4], answers[b % 4], answers[c % 4]};
                int allowed;
                char who;
                decide3(idx, NULL, &allowed, &who);
                int any_allow = ans[0] == F_ALLOW || ans[1] == F_ALLOW || ans[2] == F_ALLOW;
                /* Never allowed without an allow. */
                if (allowed)
                    assert_true(any_allow);
                for (int k = 0; k < 3; k++) {
                    /* An error decides exactly like a deny. */
                    if (ans[k] == F_ERROR) {
                        fake_answer alt[3] = {ans[0], ans[1], ans[2]};
                        alt[k] = F_DENY;
                        int allowed2;
                        char who2;
                        decide3(idx, alt, &allowed2, &who2);
                        assert_int_equal(allowed, allowed2);
                        assert_int_equal(who, who2);
                    }
                    /* Monotone: taking an allow away never lets a refused peer in. */
                    if (!allowed && ans[k] == F_ALLOW) {
                        for (int r = 1; r < 4; r++) {
                            fake_answer alt[3] = {ans[0], ans[1], ans[2]};
                            alt[k] = answers[r];
                            int allowed2;
                            char who2;
                            decide3(idx, alt, &allowed2, &who2);
                            assert_false(allowed2);
                        }
                    }
                }
                /* A required or requisite non-allow anywhere refuses. */
                for (int k = 0; k < 3; k++)
                    if ((idx[k] / 4 == 0 || idx[k] / 4 == 1) && ans[k] != F_ALLOW) {
                        /* ...unless a sufficient allow before it ended the chain. */
                        int ended = 0;
                        for (int j = 0; j < k; j++)
                            if ((idx[j] / 4 == 2 && ans[j] == F_ALLOW) || (idx[j] / 4 == 1 && ans[j] != F_ALLOW))
                                ended = 1;
                        if (!ended)
                            assert_false(allowed);
                    }
            }
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Identity handling. */

static void test_conflict(void **state)
{
    (void)state;
    pz_authchain *chain = NULL;
    fake f1, f2;
    pz_authchain_result res;
    fake_init(&f1, F_ALLOW);
    fake_init(&f2, F_ALLOW);
    g_strlcpy(f2.node_id, "peer-2", sizeof(f2.node_id));
    assert_int_equal(pz_authchain_new(&chain, NULL), 0);
    assert_int_equal(pz_authchain_add(chain, "cert", &fake_table, &f1, PZ_AUTH_REQUIRED, NULL), 0);
    assert_int_equal(pz_authchain_add(chain, "psk", &fake_table, &f2, PZ_AUTH_SUFFICIENT, NULL), 0);
    pz_auth_credentials c = creds();
    assert_int_equal(pz_authchain_authenticate(chain, &c, 0, &res), 0);
    assert_false(res.allowed);
    assert_int_equal(res.outcome, PZ_AUTH_OUT_CONFLICT);
    assert_string_equal(res.provider, "psk");
    assert_non_null(strstr(res.reason, "peer-2"));
    assert_int_equal(pz_authchain_failure_count(chain, "psk", "conflict"), 1);

    /* Types that disagree also conflict; agreeing ones merge roles. */
    g_strlcpy(f2.node_id, "peer-1", sizeof(f2.node_id));
    g_strlcpy(f1.node_type, "validator", sizeof(f1.node_type));
    g_strlcpy(f2.node_type, "light", sizeof(f2.node_type));
    assert_int_equal(pz_authchain_authenticate(chain, &c, 0, &res), 0);
    assert_false(res.allowed);
    assert_int_equal(res.outcome, PZ_AUTH_OUT_CONFLICT);
    f2.node_type[0] = '\0';
    f1.role = "rpc";
    f2.role = "admin";
    assert_int_equal(pz_authchain_authenticate(chain, &c, 0, &res), 0);
    assert_true(res.allowed);
    assert_string_equal(res.provider, "cert");
    assert_string_equal(res.id.node_type, "validator");
    assert_int_equal(res.id.n_roles, 2);
    assert_string_equal(res.id.roles[0], "rpc");
    assert_string_equal(res.id.roles[1], "admin");
    /* Keys that disagree conflict. */
    f1.has_sign_pub = f2.has_sign_pub = 1;
    memset(f1.sign_pub, 1, 32);
    memset(f2.sign_pub, 2, 32);
    assert_int_equal(pz_authchain_authenticate(chain, &c, 0, &res), 0);
    assert_false(res.allowed);
    assert_int_equal(res.outcome, PZ_AUTH_OUT_CONFLICT);
    pz_authchain_free(chain);
}

static void test_bad_provider_results(void **state)
{
    (void)state;
    static const fake_answer bad[] = {F_BADVERDICT, F_BADID};
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        pz_authchain *chain = NULL;
        fake f;
        pz_authchain_result res;
        fake_init(&f, bad[i]);
        assert_int_equal(pz_authchain_new(&chain, NULL), 0);
        /* Even as optional (counted only alone), a broken answer is never an allow. */
        assert_int_equal(pz_authchain_add(chain, "broken", &fake_table, &f, PZ_AUTH_OPTIONAL, NULL), 0);
        pz_auth_credentials c = creds();
        assert_int_equal(pz_authchain_authenticate(chain, &c, 0, &res), 0);
        assert_false(res.allowed);
        assert_int_equal(res.outcome, PZ_AUTH_OUT_ERROR);
        assert_string_equal(res.provider, "broken");
        pz_authchain_free(chain);
    }
}

static void test_expected_node_id(void **state)
{
    (void)state;
    pz_authchain *chain = NULL;
    fake f;
    pz_authchain_result res;
    fake_init(&f, F_ALLOW);
    assert_int_equal(pz_authchain_new(&chain, NULL), 0);
    assert_int_equal(pz_authchain_add(chain, "cert", &fake_table, &f, PZ_AUTH_REQUIRED, NULL), 0);
    pz_auth_credentials c = creds();
    c.expected_node_id = "peer-9";
    assert_int_equal(pz_authchain_authenticate(chain, &c, 0, &res), 0);
    assert_false(res.allowed);
    assert_int_equal(res.outcome, PZ_AUTH_OUT_MISMATCH);
    assert_string_equal(res.provider, "cert");
    assert_non_null(strstr(res.reason, "dialled node peer-9, authenticated node peer-1"));
    c.expected_node_id = "peer-1";
    assert_int_equal(pz_authchain_authenticate(chain, &c, 0, &res), 0);
    assert_true(res.allowed);
    pz_authchain_free(chain);
}

static char *write_tmp(const char *dir, const char *name, const char *text, int mode)
{
    char *path = g_build_filename(dir, name, NULL);
    assert_true(g_file_set_contents(path, text, -1, NULL));
    assert_int_equal(g_chmod(path, mode), 0);
    return path;
}

static void test_directory_completion(void **state)
{
    (void)state;
    char *dir = g_dir_make_tmp("pz-authchain-XXXXXX", NULL);
    assert_non_null(dir);
    char *path = write_tmp(dir, "peers.yaml",
                           "peers:\n"
                           "  - node_id: peer-1\n"
                           "    node_type: validator\n"
                           "    roles: [admin, rpc]\n"
                           "    sign_pub: 0101010101010101010101010101010101010101010101010101010101010101\n",
                           0644);
    pz_identities *ids = NULL;
    pz_err err;
    pz_err_init(&err);
    assert_int_equal(pz_identities_new(&ids, &err), 0);
    assert_int_equal(pz_identities_load_directory(ids, path, &err), 0);

    pz_authchain *chain = NULL;
    fake f;
    pz_authchain_result res;
    pz_identity_rec rec;
    fake_init(&f, F_ALLOW);
    f.role = "rpc";
    assert_int_equal(pz_authchain_new(&chain, NULL), 0);
    assert_int_equal(pz_authchain_add(chain, "cert", &fake_table, &f, PZ_AUTH_REQUIRED, NULL), 0);
    pz_authchain_set_identities(chain, ids);
    pz_auth_credentials c = creds();
    assert_int_equal(pz_authchain_authenticate(chain, &c, 0, &res), 0);
    assert_true(res.allowed);
    assert_string_equal(res.id.node_type, "validator");
    assert_int_equal(res.id.n_roles, 2); /* rpc (provider) + admin (directory) */
    assert_string_equal(res.id.roles[0], "rpc");
    assert_string_equal(res.id.roles[1], "admin");
    assert_true(res.id.has_sign_pub);
    assert_int_equal(res.id.sign_pub[31], 1);

    /* The view for connection limiters and authorization. */
    const char *roles[PZ_AUTH_MAX_ROLES];
    pz_identity view;
    pz_auth_result_identity(&res.id, res.provider, roles, &view);
    assert_string_equal(view.node_id, "peer-1");
    assert_int_equal(view.n_roles, 2);
    assert_string_equal(view.roles[1], "admin");
    assert_non_null(view.sign_pub);
    assert_null(view.e2e_pub);
    assert_string_equal(view.source, "cert");

    /* Keys a provider vouched for are learnt, for a node the directory
     * does not list. */
    fake_init(&f, F_ALLOW);
    g_strlcpy(f.node_id, "peer-77", sizeof(f.node_id));
    f.has_sign_pub = 1;
    memset(f.sign_pub, 7, 32);
    assert_int_equal(pz_identities_lookup(ids, "peer-77", &rec), PZ_ENOENT);
    assert_int_equal(pz_authchain_authenticate(chain, &c, 0, &res), 0);
    assert_true(res.allowed);
    assert_int_equal(pz_identities_lookup(ids, "peer-77", &rec), 0);
    assert_int_equal(rec.sign_pub[0], 7);
    assert_string_equal(rec.source, "cert");
    fake_init(&f, F_ALLOW);
    f.role = "rpc";

    /* A provider contradicting the directory refuses the peer. */
    g_strlcpy(f.node_type, "light", sizeof(f.node_type));
    assert_int_equal(pz_authchain_authenticate(chain, &c, 0, &res), 0);
    assert_false(res.allowed);
    assert_int_equal(res.outcome, PZ_AUTH_OUT_DIRECTORY);
    f.node_type[0] = '\0';
    f.has_sign_pub = 1;
    memset(f.sign_pub, 2, 32);
    assert_int_equal(pz_authchain_authenticate(chain, &c, 0, &res), 0);
    assert_false(res.allowed);
    assert_int_equal(res.outcome, PZ_AUTH_OUT_DIRECTORY);
    assert_int_equal(pz_authchain_failure_count(chain, "cert", "directory"), 2);

    pz_authchain_free(chain);
    pz_identities_free(ids);
    pz_err_clear(&err);
    g_unlink(path);
    g_rmdir(dir);
    g_free(path);
    g_free(dir);
}

/* ------------------------------------------------------------------------ */
/* Events, logs and counters. */

static void test_events_and_logs(void **state)
{
    (void)state;
    pz_authchain *chain = NULL;
    fake f;
    pz_authchain_result res;
    fake_init(&f, F_DENY);
    assert_int_equal(pz_authchain_new(&chain, NULL), 0);
    assert_int_equal(pz_authchain_add(chain, "cert-auth", &fake_table, &f, PZ_AUTH_REQUIRED, NULL), 0);
    pz_auth_credentials c = creds();
    g_ptr_array_set_size(events, 0);
    g_ptr_array_set_size(logs, 0);
    assert_int_equal(pz_authchain_authenticate(chain, &c, 77, &res), 0);
    assert_false(res.allowed);
    assert_int_equal(events->len, 1);
    /* AUTH_FAILURE, no node id (it is unproven), the address, and a detail. */
    assert_string_equal(g_ptr_array_index(events, 0), "auth|2|(null)|4|auth refused by cert-auth (deny:42)");
    assert_true(log_contains("peer 192.0.2.7:51234 (tls) refused by cert-auth: fake says no (deny:42)"));
    assert_int_equal(pz_authchain_failure_count(chain, "cert-auth", "deny:42"), 1);
    assert_int_equal(pz_authchain_failure_count(chain, "cert-auth", "error"), 0);
    assert_int_equal(pz_authchain_failure_count(chain, "other", NULL), 0);

    f.answer = F_ERROR;
    assert_int_equal(pz_authchain_authenticate(chain, &c, 78, &res), 0);
    assert_int_equal(pz_authchain_failure_count(chain, "cert-auth", "error"), 1);
    assert_int_equal(pz_authchain_failure_count(chain, "cert-auth", NULL), 2);
    assert_int_equal(events->len, 2);

    f.answer = F_ALLOW;
    g_strlcpy(f.node_type, "validator", sizeof(f.node_type));
    f.role = "rpc";
    assert_int_equal(pz_authchain_authenticate(chain, &c, 79, &res), 0);
    assert_true(res.allowed);
    assert_int_equal(events->len, 2);
    assert_true(log_contains("peer 192.0.2.7:51234 (tls) allowed as peer-1 (type validator, roles rpc) by cert-auth"));

    /* IPv6 and unix addresses in log lines. */
    pz_addr a6 = {.family = PZ_AF_INET6, .bytes = {0x20, 0x01, 0x0d, 0xb8, [15] = 1}, .port = 7400};
    c.addr = &a6;
    assert_int_equal(pz_authchain_authenticate(chain, &c, 80, &res), 0);
    assert_true(log_contains("peer [2001:db8::1]:7400 (tls) allowed"));
    pz_addr au = {.family = PZ_AF_UNIX};
    c.addr = &au;
    c.transport = "unix";
    assert_int_equal(pz_authchain_authenticate(chain, &c, 81, &res), 0);
    assert_true(log_contains("peer unix (unix) allowed"));
    pz_authchain_free(chain);
}

static void test_empty_chain_and_bad_args(void **state)
{
    (void)state;
    pz_authchain *chain = NULL;
    pz_authchain_result res;
    fake f;
    pz_err err;
    pz_err_init(&err);
    fake_init(&f, F_ALLOW);
    assert_int_equal(pz_authchain_new(&chain, NULL), 0);
    pz_auth_credentials c = creds();
    assert_int_equal(pz_authchain_authenticate(chain, &c, 0, &res), 0);
    assert_false(res.allowed);
    assert_int_equal(res.outcome, PZ_AUTH_OUT_NO_DECISION);
    assert_string_equal(res.provider, "chain");
    assert_string_equal(res.reason, "no authentication provider is configured");

    assert_int_equal(pz_authchain_authenticate(NULL, &c, 0, &res), PZ_EINVAL);
    assert_int_equal(pz_authchain_authenticate(chain, NULL, 0, &res), PZ_EINVAL);
    assert_int_equal(pz_authchain_authenticate(chain, &c, 0, NULL), PZ_EINVAL);
    c.addr = NULL;
    assert_int_equal(pz_authchain_authenticate(chain, &c, 0, &res), PZ_EINVAL);

    /* Bad tables, names and flags. */
    pz_auth_provider short_table = fake_table;
    short_table.struct_size = 8;
    assert_int_equal(pz_authchain_add(chain, "x", &short_table, &f, PZ_AUTH_REQUIRED, &err), PZ_EINVAL);
    assert_non_null(strstr(pz_err_msg(&err), "too short"));
    pz_auth_provider null_fn = fake_table;
    null_fn.authenticate_peer = NULL;
    assert_int_equal(pz_authchain_add(chain, "x", &null_fn, &f, PZ_AUTH_REQUIRED, &err), PZ_EINVAL);
    assert_int_equal(pz_authchain_add(chain, "x", NULL, &f, PZ_AUTH_REQUIRED, &err), PZ_EINVAL);
    assert_int_equal(pz_authchain_add(chain, "x", &fake_table, &f, (pz_auth_control)9, &err), PZ_EINVAL);
    assert_int_equal(pz_authchain_add(chain, "", &fake_table, &f, PZ_AUTH_REQUIRED, &err), PZ_EINVAL);
    assert_int_equal(pz_authchain_add(chain, "x", &fake_table, &f, PZ_AUTH_REQUIRED, &err), 0);
    assert_int_equal(pz_authchain_add(chain, "x", &fake_table, &f, PZ_AUTH_OPTIONAL, &err), PZ_EEXIST);
    assert_int_equal(pz_authchain_len(chain), 1);
    assert_int_equal(pz_authchain_add_take(chain, NULL, PZ_AUTH_REQUIRED, &err), PZ_EINVAL);

    /* Flag names. */
    pz_auth_control ctl;
    assert_int_equal(pz_auth_control_parse("requisite", &ctl), 0);
    assert_int_equal(ctl, PZ_AUTH_REQUISITE);
    assert_int_equal(pz_auth_control_parse("Required", &ctl), PZ_EINVAL);
    assert_int_equal(pz_auth_control_parse(NULL, &ctl), PZ_EINVAL);
    assert_string_equal(pz_auth_control_name(PZ_AUTH_SUFFICIENT), "sufficient");
    assert_string_equal(pz_auth_control_name((pz_auth_control)0), "?");
    assert_string_equal(pz_auth_outcome_name(PZ_AUTH_OUT_NO_DECISION), "no-decision");

    pz_authchain_free(chain);
    pz_authchain_free(NULL);
    pz_err_clear(&err);
}

/* ------------------------------------------------------------------------ */
/* From configuration, through the loader. */

static pz_loader *fixture_loader(void)
{
    const char *top = g_getenv("top_builddir");
    char *fixtures = g_build_filename(top ? top : ".", "tests", "fixtures", "plugins", ".libs", NULL);
    char *plugins = g_build_filename(top ? top : ".", "plugins", ".libs", NULL);
    const char *dirs[] = {fixtures, plugins};
    pz_loader *loader = NULL;
    assert_int_equal(pz_loader_new_path(dirs, 2, PZ_LOADER_NO_ENV | PZ_LOADER_NO_PLUGINDIR, &loader, NULL), 0);
    g_free(fixtures);
    g_free(plugins);
    return loader;
}

typedef struct conf_case {
    const char *yaml;
    int rc;
    const char *msg; /* substring of the error */
} conf_case;

static const conf_case conf_cases[] = {
    {"auth: {}\n", PZ_ECONFIG, "test.yaml:1:7: auth: no authentication configured: set default_provider or chain"},
    {"auth: {chain: []}\n", PZ_ECONFIG, "no authentication configured"},
    {"auth:\n  chain:\n    - provider: no-such-auth\n      control: required\n", PZ_ENOENT,
     "test.yaml:3:7: auth.chain[0]: auth provider no-such-auth cannot be loaded"},
    {"auth:\n  default_provider: no-such-auth\n", PZ_ENOENT, "auth provider no-such-auth cannot be loaded"},
    /* A plugin whose init fails stops start-up. */
    {"auth:\n  chain:\n    - provider: bad-init\n      control: required\n", PZ_ECONFIG,
     "fixture refuses to start: no licence key configured"},
    /* A plugin of another kind. */
    {"auth:\n  chain:\n    - provider: test-ratelimit\n      control: required\n", PZ_EINVAL, "test-ratelimit"},
    /* A provider whose create() refuses its settings. */
    {"auth:\n  chain:\n    - provider: unix-peercred\n      control: required\n      config: {uids: []}\n",
     PZ_ECONFIG, "allows nobody"},
    {"auth:\n  chain:\n    - provider: test-auth\n      control: required\n      config: {allow: [a], bogus: 1}\n",
     PZ_ECONFIG, "bogus"},
    {"auth:\n  chain:\n    - provider: test-auth\n      control: mandatory\n", PZ_ECONFIG,
     "test.yaml:3:7: auth.chain[0]: control: expected required, requisite, sufficient or optional, found "
     "\"mandatory\""},
    {"auth:\n  chain:\n    - provider: test-auth\n", PZ_ECONFIG, "control: expected required"},
    {"auth:\n  chain:\n    - control: required\n", PZ_ECONFIG, "provider: expected a provider name"},
    {"auth:\n  chain:\n    - provider: Test_Auth\n      control: required\n", PZ_ECONFIG,
     "found \"Test_Auth\""},
    {"auth:\n  chain:\n    - provider: test-auth\n      control: required\n      contol: optional\n", PZ_ECONFIG,
     "contol: unknown key"},
    {"auth:\n  chain:\n    - test-auth\n", PZ_ECONFIG, "expected a map {provider, control, config}"},
    {"auth:\n  chain:\n    - {provider: test-auth, control: required}\n    - {provider: test-auth, control: "
     "optional}\n",
     PZ_EEXIST, "give the second one its own `name:`"},
    {"auth:\n  chain:\n    - {provider: test-auth, control: required, name: Bad_Name}\n", PZ_ECONFIG,
     "name: expected an instance name"},
    {"auth:\n  default_provider: \"Bad Name\"\n", PZ_ECONFIG, "default_provider: expected a provider name"},
};

static void test_from_conf_errors(void **state)
{
    (void)state;
    pz_loader *loader = fixture_loader();
    for (size_t i = 0; i < G_N_ELEMENTS(conf_cases); i++) {
        const conf_case *cc = &conf_cases[i];
        pz_conf_doc *doc = NULL;
        pz_err err;
        pz_err_init(&err);
        assert_int_equal(pz_conf_load_string("test.yaml", cc->yaml, strlen(cc->yaml), &doc, &err), 0);
        const pz_conf *auth = NULL;
        assert_int_equal(pz_conf_map(pz_conf_root(doc), "auth", &auth, &err), 0);
        pz_authchain *chain = (pz_authchain *)&err; /* must be reset to NULL */
        int rc = pz_authchain_new_from_conf(loader, auth, &chain, &err);
        if (rc != cc->rc || !strstr(pz_err_msg(&err), cc->msg))
            fail_msg("case %zu: got %d \"%s\", expected %d with \"%s\"", i, rc, pz_err_msg(&err), cc->rc, cc->msg);
        assert_null(chain);
        pz_err_clear(&err);
        pz_conf_doc_free(doc);
    }
    pz_authchain *chain = NULL;
    pz_err err;
    pz_err_init(&err);
    assert_int_equal(pz_authchain_new_from_conf(loader, NULL, &chain, &err), PZ_ECONFIG);
    assert_int_equal(pz_authchain_new_from_conf(NULL, NULL, &chain, &err), PZ_EINVAL);
    pz_err_clear(&err);
    pz_loader_free(loader);
}

static void test_from_conf_good(void **state)
{
    (void)state;
    pz_loader *loader = fixture_loader();
    static const char yaml[] = "auth:\n"
                               "  default_provider: unix-peercred\n" /* not used: there is a chain */
                               "  chain:\n"
                               "    - provider: unix-peercred\n"
                               "      control: sufficient\n"
                               "      config:\n"
                               "        uids: [1000]\n"
                               "        identity: {node_id: admin, roles: [admin]}\n"
                               "    - provider: test-auth\n"
                               "      control: required\n"
                               "      name: tokens\n"
                               "      config: {allow: [light-1]}\n";
    pz_conf_doc *doc = NULL;
    pz_err err;
    pz_err_init(&err);
    assert_int_equal(pz_conf_load_string("test.yaml", yaml, strlen(yaml), &doc, &err), 0);
    const pz_conf *auth = NULL;
    assert_int_equal(pz_conf_map(pz_conf_root(doc), "auth", &auth, &err), 0);
    pz_authchain *chain = NULL;
    int rc = pz_authchain_new_from_conf(loader, auth, &chain, &err);
    if (rc)
        fail_msg("%s", pz_err_msg(&err));
    assert_int_equal(pz_authchain_len(chain), 2);
    assert_int_equal(pz_conf_check_unused(pz_conf_root(doc), &err), 0);

    pz_authchain_result res;
    pz_addr au = {.family = PZ_AF_UNIX};
    pz_auth_credentials c = {.struct_size = sizeof(c), .transport = "unix", .addr = &au, .has_unix_cred = 1,
                             .uid = 1000, .gid = 1000, .pid = 4242};
    assert_int_equal(pz_authchain_authenticate(chain, &c, 0, &res), 0);
    assert_true(res.allowed);
    assert_string_equal(res.provider, "unix-peercred");
    assert_string_equal(res.id.node_id, "admin");
    assert_string_equal(res.id.roles[0], "admin");
    /* uid 1001 is ignored by the sufficient provider; test-auth abstains
     * (no token) and, being required, that refuses. */
    c.uid = c.gid = 1001;
    assert_int_equal(pz_authchain_authenticate(chain, &c, 0, &res), 0);
    assert_false(res.allowed);
    assert_string_equal(res.provider, "tokens");
    assert_int_equal(res.outcome, PZ_AUTH_OUT_ABSTAINED);
    /* A light client over TLS with a token. */
    pz_auth_credentials t = creds();
    t.token = (const uint8_t *)"light-1";
    t.token_len = 7;
    assert_int_equal(pz_authchain_authenticate(chain, &t, 0, &res), 0);
    assert_true(res.allowed);
    assert_string_equal(res.provider, "tokens");
    assert_string_equal(res.id.node_id, "light-1");
    pz_authchain_free(chain);
    pz_conf_doc_free(doc);

    /* No chain: the default provider alone decides. */
    static const char yaml2[] = "auth:\n"
                                "  default_provider: test-auth\n"
                                "  default_config: {allow: [light-1]}\n";
    assert_int_equal(pz_conf_load_string("test.yaml", yaml2, strlen(yaml2), &doc, &err), 0);
    assert_int_equal(pz_conf_map(pz_conf_root(doc), "auth", &auth, &err), 0);
    rc = pz_authchain_new_from_conf(loader, auth, &chain, &err);
    if (rc)
        fail_msg("%s", pz_err_msg(&err));
    assert_int_equal(pz_authchain_len(chain), 1);
    assert_int_equal(pz_authchain_authenticate(chain, &t, 0, &res), 0);
    assert_true(res.allowed);
    t.token = (const uint8_t *)"light-2";
    assert_int_equal(pz_authchain_authenticate(chain, &t, 0, &res), 0);
    assert_false(res.allowed);
    assert_int_equal(res.outcome, PZ_AUTH_OUT_DENIED);
    t.token = NULL;
    t.token_len = 0;
    assert_int_equal(pz_authchain_authenticate(chain, &t, 0, &res), 0);
    assert_false(res.allowed); /* the default provider abstaining is no allow */
    pz_authchain_free(chain);
    pz_conf_doc_free(doc);
    pz_err_clear(&err);
    pz_loader_free(loader);
}

/* ------------------------------------------------------------------------ */
/* Tokens of the credentials frame (core/credframe.h): routing to the
 * providers of their method, and the frame this node sends. */

typedef struct tokp {
    const char *const *methods; /* NULL-terminated */
    int gen_rc;                 /* generate_credentials: 0 makes a token */
    size_t gen_need;            /* its size (0: 6 bytes) */
    int gen_calls;
    char seen[64];              /* the token authenticate_peer saw, as text ("" none) */
} tokp;

static int tok_authenticate(void *state, const pz_auth_credentials *cred, pz_auth_result *out, pz_err *err)
{
    tokp *t = state;
    (void)err;
    g_snprintf(t->seen, sizeof(t->seen), "%.*s", cred->token ? (int)cred->token_len : 0,
               cred->token ? (const char *)cred->token : "");
    out->verdict = PZ_AUTH_ABSTAIN;
    return 0;
}

static int tok_generate(void *state, const uint8_t *cb, size_t cb_len, uint8_t *buf, size_t *len, pz_err *err)
{
    tokp *t = state;
    t->gen_calls++;
    if (t->gen_rc)
        return pz_err_set(err, t->gen_rc, "tokp: cannot (%d)", t->gen_rc);
    size_t need = t->gen_need ? t->gen_need : 6;
    if (*len < need) {
        *len = need;
        return PZ_ERANGE;
    }
    memset(buf, 'z', need);
    /* "<first method>:<first binding byte>" so the test sees both. */
    int n = g_snprintf((char *)buf, need, "%s:%c", t->methods[0], cb && cb_len ? (char)cb[0] : '-');
    *len = need < (size_t)n ? need : (size_t)n;
    return 0;
}

static const char *const *tok_methods(void *state)
{
    return ((tokp *)state)->methods;
}

static const pz_auth_provider tok_table = {
    .struct_size = sizeof(pz_auth_provider),
    .authenticate_peer = tok_authenticate,
    .generate_credentials = tok_generate,
    .supported_methods = tok_methods,
};

static void test_frame_tokens(void **state)
{
    (void)state;
    static const char *const m_psk[] = {"psk", NULL}, *const m_other_psk[] = {"other", "psk", NULL},
                             *const m_cert[] = {"certificate", NULL}, *const m_x[] = {"x", NULL};
    tokp a = {.methods = m_psk}, b = {.methods = m_other_psk}, c = {.methods = m_cert}, d = {.methods = m_x};
    pz_authchain *chain = NULL;
    assert_int_equal(pz_authchain_new(&chain, NULL), 0);
    assert_int_equal(pz_authchain_add(chain, "a", &tok_table, &a, PZ_AUTH_OPTIONAL, NULL), 0);
    assert_int_equal(pz_authchain_add(chain, "b", &tok_table, &b, PZ_AUTH_OPTIONAL, NULL), 0);
    assert_int_equal(pz_authchain_add(chain, "c", &tok_table, &c, PZ_AUTH_OPTIONAL, NULL), 0);
    assert_int_equal(pz_authchain_add(chain, "d", &tok_table, &d, PZ_AUTH_OPTIONAL, NULL), 0);

    pz_credframe f = {.n = 2};
    g_strlcpy(f.e[0].method, "psk", sizeof(f.e[0].method));
    f.e[0].data = (const uint8_t *)"P-token";
    f.e[0].len = 7;
    g_strlcpy(f.e[1].method, "other", sizeof(f.e[1].method));
    f.e[1].data = (const uint8_t *)"O-token";
    f.e[1].len = 7;
    pz_auth_credentials cr = creds();
    cr.token = (const uint8_t *)"T";
    cr.token_len = 1;
    pz_authchain_result res;
    assert_int_equal(pz_authchain_authenticate_frame(chain, &cr, &f, 0, &res), 0);
    assert_false(res.allowed);
    assert_string_equal(a.seen, "P-token");
    assert_string_equal(b.seen, "P-token"); /* the frame's first token it handles */
    assert_string_equal(c.seen, "T");       /* nothing for "certificate": the transport's own */
    assert_string_equal(d.seen, "T");
    /* Without a frame (pz_authchain_authenticate): the transport's token. */
    assert_int_equal(pz_authchain_authenticate(chain, &cr, 0, &res), 0);
    assert_string_equal(a.seen, "T");
    cr.token = NULL;
    cr.token_len = 0;
    assert_int_equal(pz_authchain_authenticate_frame(chain, &cr, &f, 0, &res), 0);
    assert_string_equal(c.seen, "");
    assert_string_equal(b.seen, "P-token");
    f.n = 1;
    f.e[0] = f.e[1]; /* only "other" */
    assert_int_equal(pz_authchain_authenticate_frame(chain, &cr, &f, 0, &res), 0);
    assert_string_equal(a.seen, "");
    assert_string_equal(b.seen, "O-token");
    pz_authchain_free(chain);
}

static void test_credentials_frame(void **state)
{
    (void)state;
    static const char *const m_psk[] = {"psk", NULL}, *const m_cert[] = {"certificate", NULL},
                             *const m_pin_then[] = {"key-pin", "psk2", NULL}, *const m_none[] = {"nothing", NULL},
                             *const m_err[] = {"err", NULL}, *const m_big[] = {"big", NULL},
                             *const m_bad[] = {"Bad Name", NULL};
    tokp a = {.methods = m_psk}, b = {.methods = m_cert}, c = {.methods = m_pin_then}, d = {.methods = m_psk},
        e = {.methods = m_none, .gen_rc = PZ_ENOTSUP}, g = {.methods = m_err, .gen_rc = PZ_EINVAL},
        h = {.methods = m_big, .gen_need = 2000}, k = {.methods = m_bad};
    tokp *all[] = {&a, &b, &c, &d, &e, &g, &h, &k};
    pz_authchain *chain = NULL;
    assert_int_equal(pz_authchain_new(&chain, NULL), 0);
    for (size_t i = 0; i < G_N_ELEMENTS(all); i++) {
        char name[8];
        g_snprintf(name, sizeof(name), "p%zu", i);
        assert_int_equal(pz_authchain_add(chain, name, &tok_table, all[i], PZ_AUTH_OPTIONAL, NULL), 0);
    }
    uint8_t cb[32];
    memset(cb, 'Q', sizeof(cb));
    uint8_t buf[PZ_CREDFRAME_HDR + PZ_CREDFRAME_MAX];
    size_t len = 0, n = 0;
    assert_int_equal(pz_authchain_credentials_frame(chain, cb, sizeof(cb), buf, sizeof(buf), &len, &n), 0);
    assert_int_equal(n, 2);
    pz_credframe f;
    char why[160];
    assert_int_equal(pz_credframe_decode(buf + 4, len - 4, &f, why, sizeof(why)), 0);
    assert_int_equal(f.n, 2);
    assert_string_equal(f.e[0].method, "psk");
    assert_int_equal(f.e[0].len, 5);
    assert_memory_equal(f.e[0].data, "psk:Q", 5); /* bound to the binding given */
    assert_string_equal(f.e[1].method, "psk2"); /* key-pin travels in the handshake */
    assert_memory_equal(f.e[1].data, "key-p", 5);
    assert_int_equal(b.gen_calls, 0); /* "certificate": never asked */
    assert_int_equal(d.gen_calls, 0); /* "psk" already in the frame */
    assert_int_equal(k.gen_calls, 0); /* not a method name the frame can carry */
    assert_int_equal(e.gen_calls, 1);
    assert_int_equal(g.gen_calls, 1);
    assert_int_equal(h.gen_calls, 1);
    assert_true(log_contains("p6: its big credentials do not fit in the credentials frame"));
    assert_true(log_contains("p5 presents no err token on this connection: tokp: cannot"));
    /* No binding (unix): the providers are asked with none. */
    assert_int_equal(pz_authchain_credentials_frame(chain, NULL, 0, buf, sizeof(buf), &len, NULL), 0);
    assert_int_equal(pz_credframe_decode(buf + 4, len - 4, &f, why, sizeof(why)), 0);
    assert_memory_equal(f.e[0].data, "psk:-", 5);
    /* Too small a buffer; no chain. */
    assert_int_equal(pz_authchain_credentials_frame(chain, cb, 32, buf, 12, &len, &n), PZ_ERANGE);
    assert_int_equal(pz_authchain_credentials_frame(NULL, cb, 32, buf, sizeof(buf), &len, &n), PZ_EINVAL);
    pz_authchain_free(chain);
    /* An empty chain sends an empty frame. */
    assert_int_equal(pz_authchain_new(&chain, NULL), 0);
    assert_int_equal(pz_authchain_credentials_frame(chain, cb, 32, buf, sizeof(buf), &len, &n), 0);
    assert_int_equal(len, 10);
    assert_int_equal(n, 0);
    pz_authchain_free(chain);
}

/* A tls transport with verify: auth-chain needs a provider that vouches
 * for keys (key-pin): node_conf_load (run by `prozsec config check` and at
 * start) refuses the file otherwise, at the `verify` value. */
static void test_verify_needs_key_voucher(void **state)
{
    (void)state;
    static const struct {
        const char *auth;
        const char *verify;
        const char *transport;
        int ok;
    } cases[] = {
        {"auth:\n  chain:\n    - {provider: cert-auth, control: required}\n", "auth-chain", "tls", 0},
        {"auth:\n  default_provider: cert-auth\n", "auth-chain", "tls", 0},
        {"auth:\n  default_provider: psk-token\n", "auth-chain", "tls", 0},
        {"auth:\n  chain: []\n  default_provider: key-pin\n", "auth-chain", "tls", 1},
        {"auth:\n  chain:\n    - {provider: cert-auth, control: sufficient}\n"
         "    - {provider: key-pin, control: sufficient}\n",
         "auth-chain", "tls", 1},
        {"auth:\n  default_provider: key-pin\n  chain:\n    - {provider: cert-auth, control: required}\n",
         "auth-chain", "tls", 0}, /* the default is not used when there is a chain */
        {"auth:\n  default_provider: cert-auth\n", "ca", "tls", 1},
        {"auth:\n  default_provider: cert-auth\n", "auth-chain", "unix", 1}, /* not the tls plugin's key */
        {"", "auth-chain", "tls", 0},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        char *y = g_strdup_printf("transports:\n  - provider: %s\n    config:\n      verify: %s\n%s",
                                  cases[i].transport, cases[i].verify, cases[i].auth);
        pz_conf_doc *doc = NULL;
        pz_err err;
        pz_err_init(&err);
        assert_int_equal(pz_conf_load_string("test.yaml", y, strlen(y), &doc, &err), 0);
        node_conf nc;
        int rc = node_conf_load(NULL, pz_conf_root(doc), &nc, &err);
        if ((rc == 0) != cases[i].ok)
            fail_msg("case %zu: rc %d (%s)", i, rc, pz_err_msg(&err));
        if (rc == 0)
            node_conf_clear(&nc);
        else if (!strstr(pz_err_msg(&err), "test.yaml:4:15: transports[0].config.verify: auth-chain leaves peer "
                                           "certificates no CA vouches for to the auth chain, but no provider "
                                           "in auth can vouch for a key: add key-pin"))
            fail_msg("case %zu: message \"%s\"", i, pz_err_msg(&err));
        pz_err_clear(&err);
        pz_conf_doc_free(doc);
        g_free(y);
    }
}

/* ------------------------------------------------------------------------ */
/* The example configurations (conf/examples/auth-*.yaml), run for real:
 * the files with /etc/prozsec/ pointed at a temporary directory of
 * generated fixtures (and the example pins replaced by the fixtures'),
 * through settings, identity, authorization and the chain, with one
 * allowed and one refused peer each. Run with PZ_TEST_LOG=1 to see the
 * log lines. */

static char *demo_dir;

static void demo_write(const char *rel, const void *data, size_t len, int mode)
{
    char *p = g_build_filename(demo_dir, rel, NULL);
    char *d = g_path_get_dirname(p);
    assert_int_equal(g_mkdir_with_parents(d, 0700), 0);
    assert_true(g_file_set_contents(p, data, (gssize)len, NULL));
    assert_int_equal(g_chmod(p, mode), 0);
    g_free(d);
    g_free(p);
}

static char *demo_read_example(const char *name)
{
    const char *src = g_getenv("top_srcdir");
    char *p = g_build_filename(src ? src : "../..", "conf", "examples", name, NULL);
    char *text = NULL;
    if (!g_file_get_contents(p, &text, NULL, NULL))
        fail_msg("cannot read %s", p);
    g_free(p);
    return text;
}

static char *replace(const char *text, const char *from, const char *to)
{
    char **parts = g_strsplit(text, from, -1);
    char *out = g_strjoinv(to, parts);
    g_strfreev(parts);
    return out;
}

typedef struct demo_cert {
    gnutls_datum_t der;
    char pin[64]; /* "sha256//..." */
} demo_cert;

static void demo_leaf(pz_fix_ca *ca, const char *id, const char *type, demo_cert *out, gnutls_x509_crt_t *keep)
{
    gnutls_x509_crt_t crt;
    pz_fix_leaf_opts o = {.node_id = id, .node_type = type};
    assert_int_equal(pz_fix_leaf(ca, &o, (int64_t)time(NULL), &crt, NULL), 0);
    assert_int_equal(pz_fix_export(crt, GNUTLS_X509_FMT_DER, &out->der), 0);
    uint8_t spki[32], ed[32];
    int is_ed = 0;
    assert_int_equal(pz_identity_cert_keys(out->der.data, out->der.size, spki, ed, &is_ed, NULL), 0);
    char *b = g_base64_encode(spki, 32);
    snprintf(out->pin, sizeof(out->pin), "sha256//%s", b);
    g_free(b);
    if (keep)
        *keep = crt;
    else
        gnutls_x509_crt_deinit(crt);
}

/* Load example NAME (with REPLACEMENTS: pairs of from/to, NULL-ended) into
 * settings, identity, authorization and a chain. */
typedef struct demo {
    pz_conf_doc *doc;
    pz_settings *settings;
    pz_identities *ids;
    pz_authz *authz;
    pz_authchain *chain;
} demo;

static void demo_load(pz_loader *loader, const char *name, const char *const *repl, demo *d)
{
    char *text = demo_read_example(name);
    char *dirslash = g_strconcat(demo_dir, "/", NULL);
    char *t = replace(text, "/etc/prozsec/", dirslash);
    for (size_t i = 0; repl && repl[i]; i += 2) {
        assert_non_null(strstr(t, repl[i]));
        char *t2 = replace(t, repl[i], repl[i + 1]);
        g_free(t);
        t = t2;
    }
    demo_write(name, t, strlen(t), 0600);
    char *path = g_build_filename(demo_dir, name, NULL);
    pz_err err;
    pz_err_init(&err);
    memset(d, 0, sizeof(*d));
    if (g_getenv("PZ_TEST_LOG"))
        fprintf(stderr, "== conf/examples/%s\n", name);
    if (pz_conf_load_file(path, &d->doc, &err) || pz_settings_load(pz_conf_root(d->doc), &d->settings, &err) ||
        pz_identities_new_from_conf(pz_conf_root(d->doc), &d->ids, &err) ||
        pz_authz_new_from_conf(pz_conf_root(d->doc), &d->authz, &err) ||
        pz_authchain_new_from_conf(loader, d->settings->auth, &d->chain, &err))
        fail_msg("%s: %s", name, pz_err_msg(&err));
    pz_authchain_set_identities(d->chain, d->ids);
    pz_err_clear(&err);
    g_free(path);
    g_free(t);
    g_free(dirslash);
    g_free(text);
}

static void demo_free(demo *d)
{
    pz_authchain_free(d->chain);
    pz_authz_free(d->authz);
    pz_identities_free(d->ids);
    pz_settings_free(d->settings);
    pz_conf_doc_free(d->doc);
}

static pz_authchain_result demo_tls(demo *d, const demo_cert *c, const uint8_t *token, size_t token_len,
                                    const uint8_t *cb, uint8_t last_octet)
{
    pz_addr a = {.family = PZ_AF_INET, .bytes = {192, 0, 2, last_octet}, .port = 40000 + last_octet};
    const uint8_t *certs[1] = {c ? c->der.data : NULL};
    size_t lens[1] = {c ? c->der.size : 0};
    pz_auth_credentials cr = {.struct_size = sizeof(cr), .transport = "tls", .addr = &a, .n_certs = c ? 1 : 0,
                              .cert_der = c ? certs : NULL, .cert_der_len = c ? lens : NULL,
                              .channel_binding = cb, .channel_binding_len = cb ? 32 : 0, .token = token,
                              .token_len = token_len};
    pz_authchain_result res;
    assert_int_equal(pz_authchain_authenticate(d->chain, &cr, 0, &res), 0);
    return res;
}

static void demo_authz(demo *d, const pz_authchain_result *res, const char *method, int expect)
{
    const char *roles[PZ_AUTH_MAX_ROLES];
    pz_identity id;
    pz_authz_decision dec;
    pz_auth_result_identity(&res->id, res->provider, roles, &id);
    assert_int_equal(pz_authz_check(d->authz, method, &id, &dec), 0);
    if (dec.allowed != expect)
        fail_msg("%s by %s: authorization %d, expected %d", method, id.node_id, dec.allowed, expect);
    if (g_getenv("PZ_TEST_LOG"))
        fprintf(stderr, "   authz: %s by %s -> %s (rule at %s)\n", method, id.node_id,
                dec.allowed ? "allowed" : "denied", dec.where[0] ? dec.where : "none: default deny");
}

static void test_examples(void **state)
{
    (void)state;
    demo_dir = g_dir_make_tmp("pz-auth-examples-XXXXXX", NULL);
    assert_non_null(demo_dir);
    assert_int_equal(pz_crypto_init(), 0);
    pz_loader *loader = fixture_loader();

    /* PKI: a CA, this node, peers; a CRL revoking validator-9. */
    int64_t now = (int64_t)time(NULL);
    pz_fix_ca ca;
    assert_int_equal(pz_fix_ca_new(&ca, PZ_FIX_P384, "ProzChain Demo", now, 0, 0), 0);
    demo_cert self, v1, v2, v3, v4, v9, light;
    gnutls_x509_crt_t v9crt;
    demo_leaf(&ca, "validator-1", "validator", &self, NULL);
    demo_leaf(&ca, "validator-1", "validator", &v1, NULL);
    demo_leaf(&ca, "validator-2", "validator", &v2, NULL);
    demo_leaf(&ca, "validator-3", "validator", &v3, NULL);
    demo_leaf(&ca, "validator-4", "validator", &v4, NULL);
    demo_leaf(&ca, "validator-9", "validator", &v9, &v9crt);
    demo_leaf(&ca, "light-5", "light", &light, NULL);
    gnutls_datum_t d;
    assert_int_equal(pz_fix_export(ca.crt, GNUTLS_X509_FMT_PEM, &d), 0);
    demo_write("keys/ca.crt", d.data, d.size, 0644);
    gnutls_free(d.data);
    assert_int_equal(pz_fix_crl(&ca, &v9crt, 1, now, GNUTLS_X509_FMT_PEM, &d), 0);
    demo_write("keys/ca.crl", d.data, d.size, 0644);
    gnutls_free(d.data);
    demo_write("keys/node.crt", self.der.data, self.der.size, 0644);
    /* The example peer directory, with validator-2's pin made real. */
    char *peers = demo_read_example("peers.yaml");
    char *peers2 = replace(peers, "sha256//yZ3Vz1xR0pG0w7s1bq4yTZ6Jp8b0oQzKcGm3Xv2nA1E=", v2.pin);
    demo_write("peers.yaml", peers2, strlen(peers2), 0644);
    /* psk keys. */
    static const char k_light1[] = "bGlnaHQtMS1kZW1vLWtleS1saWdodC0xLWRlbW8ta2V5\n";
    demo_write("psk/light-1.key", k_light1, strlen(k_light1), 0600);
    demo_write("psk/self.key", "c2VsZi1kZW1vLWtleS1zZWxmLWRlbW8ta2V5LXNlbGYtZGVtbw==\n", 53, 0600);
    demo_write("psk/clients.d/light-2.key", "bGlnaHQtMi1kZW1vLWtleS1saWdodC0yLWRlbW8ta2V5\n", 45, 0600);

    demo dm;
    pz_authchain_result res;

    /* cert-auth */
    demo_load(loader, "auth-cert-auth.yaml", NULL, &dm);
    res = demo_tls(&dm, &v1, NULL, 0, NULL, 11);
    assert_true(res.allowed);
    assert_string_equal(res.id.node_id, "validator-1");
    assert_string_equal(res.id.roles[1], "rpc"); /* from the directory */
    demo_authz(&dm, &res, "chain.getBlock", 1);
    demo_authz(&dm, &res, "sys.shutdown", 0);
    res = demo_tls(&dm, &v9, NULL, 0, NULL, 19);
    assert_false(res.allowed);
    assert_string_equal(res.provider, "cert-auth");
    assert_int_equal(res.reason_code, 7); /* PZ_CV_REVOKED */
    res = demo_tls(&dm, &light, NULL, 0, NULL, 15);
    assert_false(res.allowed); /* deny.node_types: [light] */
    demo_free(&dm);

    /* key-pin */
    const char *const kp_repl[] = {"sha256//pG2v4S0k9bQ6pZ7tq1m3T1y5sQe8Yc4Kq9f3J0Ww2Xc=", v3.pin, NULL};
    demo_load(loader, "auth-key-pin.yaml", kp_repl, &dm);
    res = demo_tls(&dm, &v3, NULL, 0, NULL, 13);
    assert_true(res.allowed);
    assert_string_equal(res.id.node_id, "validator-3");
    res = demo_tls(&dm, &v2, NULL, 0, NULL, 12); /* pinned in the directory */
    assert_true(res.allowed);
    assert_string_equal(res.id.node_id, "validator-2");
    res = demo_tls(&dm, &v4, NULL, 0, NULL, 14);
    assert_false(res.allowed);
    assert_string_equal(res.provider, "key-pin");
    demo_free(&dm);

    /* psk-token: a token made for one connection, replayed on another. */
    demo_load(loader, "auth-psk-token.yaml", NULL, &dm);
    uint8_t cb1[32], cb2[32];
    for (int i = 0; i < 32; i++) {
        cb1[i] = (uint8_t)(7 * i);
        cb2[i] = (uint8_t)(7 * i + 1);
    }
    gsize klen = 0;
    guchar *key = g_base64_decode(k_light1, &klen);
    GHmac *h = g_hmac_new(G_CHECKSUM_SHA256, key, klen);
    uint8_t l = 32;
    g_hmac_update(h, (const guchar *)"prozsec psk-token v1", 21);
    g_hmac_update(h, &l, 1);
    g_hmac_update(h, cb1, 32);
    l = 7;
    g_hmac_update(h, &l, 1);
    g_hmac_update(h, (const guchar *)"light-1", 7);
    uint8_t tok[2 + 7 + 32] = {1, 7, 'l', 'i', 'g', 'h', 't', '-', '1'};
    gsize dl = 32;
    g_hmac_get_digest(h, tok + 9, &dl);
    g_hmac_unref(h);
    g_free(key);
    res = demo_tls(&dm, NULL, tok, sizeof(tok), cb1, 21);
    assert_true(res.allowed);
    assert_string_equal(res.id.node_id, "light-1");
    demo_authz(&dm, &res, "chain.getBlock", 1);
    res = demo_tls(&dm, NULL, tok, sizeof(tok), cb2, 22);
    assert_false(res.allowed);
    assert_string_equal(res.provider, "psk-token");
    demo_free(&dm);

    /* unix-peercred */
    demo_load(loader, "auth-unix-peercred.yaml", NULL, &dm);
    pz_addr au = {.family = PZ_AF_UNIX};
    pz_auth_credentials uc = {.struct_size = sizeof(uc), .transport = "unix", .addr = &au, .has_unix_cred = 1,
                              .uid = 1000, .gid = 1000, .pid = 4242};
    assert_int_equal(pz_authchain_authenticate(dm.chain, &uc, 0, &res), 0);
    assert_true(res.allowed);
    assert_string_equal(res.id.node_id, "validator-1"); /* the node itself: the local tool signs as it */
    demo_authz(&dm, &res, "sys.shutdown", 1);
    uc.uid = uc.gid = 1001;
    uc.pid = 4343;
    assert_int_equal(pz_authchain_authenticate(dm.chain, &uc, 0, &res), 0);
    assert_false(res.allowed);
    demo_free(&dm);

    demo_cert *all[] = {&self, &v1, &v2, &v3, &v4, &v9, &light};
    for (size_t i = 0; i < G_N_ELEMENTS(all); i++)
        gnutls_free(all[i]->der.data);
    gnutls_x509_crt_deinit(v9crt);
    pz_fix_ca_clear(&ca);
    g_free(peers);
    g_free(peers2);
    pz_loader_free(loader);
    /* Remove the fixture tree. */
    char *argv[] = {"rm", "-rf", demo_dir, NULL};
    assert_true(g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL));
    g_free(demo_dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_one),
        cmocka_unit_test(test_table_two),
        cmocka_unit_test(test_second_runs),
        cmocka_unit_test(test_properties_three),
        cmocka_unit_test(test_conflict),
        cmocka_unit_test(test_bad_provider_results),
        cmocka_unit_test(test_expected_node_id),
        cmocka_unit_test(test_directory_completion),
        cmocka_unit_test(test_events_and_logs),
        cmocka_unit_test(test_empty_chain_and_bad_args),
        cmocka_unit_test(test_from_conf_errors),
        cmocka_unit_test(test_from_conf_good),
        cmocka_unit_test(test_frame_tokens),
        cmocka_unit_test(test_credentials_frame),
        cmocka_unit_test(test_verify_needs_key_voucher),
        cmocka_unit_test(test_examples),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
