/* tests/unit/test_authz.c — core/authz.c: per-method rules from
 * configuration, first match wins, default deny, every configuration
 * refusal with its FILE:LINE:COL. */
#include "config.h"

#include <glib.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "authz.h"
#include "conf.h"
#include "err.h"

static pz_authz *build(const char *yaml, pz_conf_doc **doc)
{
    pz_err err;
    pz_authz *az = NULL;
    pz_err_init(&err);
    if (pz_conf_load_string("test.yaml", yaml, strlen(yaml), doc, &err))
        fail_msg("parse: %s", pz_err_msg(&err));
    if (pz_authz_new_from_conf(pz_conf_root(*doc), &az, &err))
        fail_msg("authz: %s", pz_err_msg(&err));
    pz_err_clear(&err);
    return az;
}

static pz_identity ident(const char *id, const char *type, const char *const *roles, size_t n_roles)
{
    pz_identity i = {.struct_size = sizeof(i), .node_id = id, .node_type = type, .roles = roles,
                     .n_roles = n_roles, .source = "test"};
    return i;
}

static const char policy[] = "authorization:\n"
                             "  rules:\n"
                             "    - methods: [\"sys.shutdown\"]\n"          /* rule 0 */
                             "      deny: {node_ids: [mallory]}\n"
                             "    - methods: [\"sys.*\"]\n"                 /* rule 1 */
                             "      allow: {roles: [admin]}\n"
                             "    - methods: [\"chain.get?lock\", \"chain.status\"]\n" /* rule 2 */
                             "      allow: {node_types: [validator, full]}\n"
                             "    - methods: [\"chain.*\"]\n"               /* rule 3 */
                             "      deny: {node_types: [light]}\n"
                             "    - methods: [\"chain.*\"]\n"               /* rule 4 */
                             "      allow: {node_ids: [auditor-1]}\n"
                             "    - methods: [\"ping\"]\n"                  /* rule 5 */
                             "      allow: {roles: [\"*\"]}\n";

typedef struct check_case {
    const char *method;
    const char *id;
    const char *type;
    const char *role; /* NULL: none */
    int allowed;
    pz_authz_why why;
    int rule;
} check_case;

static const check_case check_cases[] = {
    /* First match wins: mallory is an admin, but rule 0 denies first. */
    {"sys.shutdown", "mallory", "validator", "admin", 0, PZ_AUTHZ_RULE_DENY, 0},
    {"sys.shutdown", "alice", "validator", "admin", 1, PZ_AUTHZ_RULE_ALLOW, 1},
    {"sys.reload", "mallory", "validator", "admin", 1, PZ_AUTHZ_RULE_ALLOW, 1},
    /* Named methods whose rules select nobody like this peer. */
    {"sys.reload", "bob", "validator", "rpc", 0, PZ_AUTHZ_NOT_SELECTED, -1},
    {"sys.shutdown", "bob", "validator", NULL, 0, PZ_AUTHZ_NOT_SELECTED, -1},
    /* Glob: ? is one character. */
    {"chain.getBlock", "v1", "validator", NULL, 1, PZ_AUTHZ_RULE_ALLOW, 2},
    {"chain.getblock", "v1", "full", NULL, 1, PZ_AUTHZ_RULE_ALLOW, 2},
    {"chain.getBBlock", "v1", "validator", NULL, 0, PZ_AUTHZ_NOT_SELECTED, -1},
    {"chain.status", "l1", "light", NULL, 0, PZ_AUTHZ_RULE_DENY, 3},
    {"chain.status", "auditor-1", "archive", NULL, 1, PZ_AUTHZ_RULE_ALLOW, 4},
    {"chain.other", "v1", "validator", NULL, 0, PZ_AUTHZ_NOT_SELECTED, -1},
    /* "*" selects everyone, also without type or roles. */
    {"ping", "anyone", "", NULL, 1, PZ_AUTHZ_RULE_ALLOW, 5},
    /* Unknown methods: default deny, also for admins. */
    {"node.status", "alice", "validator", "admin", 0, PZ_AUTHZ_UNKNOWN_METHOD, -1},
    {"sys", "alice", "validator", "admin", 0, PZ_AUTHZ_UNKNOWN_METHOD, -1},
    {"", "alice", "validator", "admin", 0, PZ_AUTHZ_UNKNOWN_METHOD, -1},
    {"pingx", "alice", "validator", "admin", 0, PZ_AUTHZ_UNKNOWN_METHOD, -1},
};

static void test_decisions(void **state)
{
    (void)state;
    pz_conf_doc *doc = NULL;
    pz_authz *az = build(policy, &doc);
    assert_int_equal(pz_authz_rule_count(az), 6);
    for (size_t i = 0; i < G_N_ELEMENTS(check_cases); i++) {
        const check_case *c = &check_cases[i];
        const char *roles[1] = {c->role};
        pz_identity id = ident(c->id, c->type, roles, c->role ? 1 : 0);
        pz_authz_decision d;
        assert_int_equal(pz_authz_check(az, c->method, &id, &d), 0);
        if (d.allowed != c->allowed || d.why != c->why || d.rule != c->rule)
            fail_msg("case %zu (%s by %s): got allowed=%d why=%d rule=%d", i, c->method, c->id, d.allowed,
                     (int)d.why, d.rule);
        if (d.rule >= 0)
            assert_non_null(strstr(d.where, "test.yaml:"));
        else
            assert_string_equal(d.where, "");
    }
    /* Where a rule is. */
    const char *roles[1] = {"admin"};
    pz_identity id = ident("alice", "validator", roles, 1);
    pz_authz_decision d;
    assert_int_equal(pz_authz_check(az, "sys.x", &id, &d), 0);
    assert_string_equal(d.where, "test.yaml:5:7");
    /* Bad arguments. */
    assert_int_equal(pz_authz_check(NULL, "ping", &id, &d), PZ_EINVAL);
    assert_int_equal(pz_authz_check(az, NULL, &id, &d), PZ_EINVAL);
    assert_int_equal(pz_authz_check(az, "ping", NULL, &d), PZ_EINVAL);
    assert_int_equal(pz_authz_check(az, "ping", &id, NULL), PZ_EINVAL);
    pz_identity noid = ident(NULL, "", NULL, 0);
    assert_int_equal(pz_authz_check(az, "ping", &noid, &d), PZ_EINVAL);
    /* A NULL node type and no roles array are tolerated. */
    pz_identity bare = {.struct_size = sizeof(bare), .node_id = "x"};
    assert_int_equal(pz_authz_check(az, "ping", &bare, &d), 0);
    assert_true(d.allowed);
    assert_int_equal(pz_authz_check(az, "chain.status", &bare, &d), 0);
    assert_false(d.allowed);
    pz_authz_free(az);
    pz_conf_doc_free(doc);
}

static void test_no_rules(void **state)
{
    (void)state;
    pz_err err;
    pz_err_init(&err);
    pz_authz *az = NULL;
    /* No configuration at all: every call denied. */
    assert_int_equal(pz_authz_new_from_conf(NULL, &az, &err), 0);
    pz_identity id = ident("a", "validator", NULL, 0);
    pz_authz_decision d;
    assert_int_equal(pz_authz_check(az, "ping", &id, &d), 0);
    assert_false(d.allowed);
    assert_int_equal(d.why, PZ_AUTHZ_UNKNOWN_METHOD);
    pz_authz_free(az);
    pz_conf_doc *doc = NULL;
    az = build("other: 1\n", &doc);
    assert_int_equal(pz_authz_rule_count(az), 0);
    pz_authz_free(az);
    pz_conf_doc_free(doc);
    az = build("authorization: {}\n", &doc);
    assert_int_equal(pz_authz_rule_count(az), 0);
    pz_authz_free(az);
    pz_conf_doc_free(doc);
    pz_authz_free(NULL);
    pz_err_clear(&err);
}

typedef struct bad_case {
    const char *yaml;
    const char *msg;
} bad_case;

static const bad_case bad_cases[] = {
    {"authorization: []\n", "test.yaml:1:16: authorization: expected a map"},
    {"authorization: {rules: {}}\n", "authorization.rules: expected a list"},
    {"authorization: {rulez: []}\n", "authorization.rulez: unknown key"},
    {"authorization:\n  rules:\n    - ping\n", "test.yaml:3:7: authorization.rules[0]: expected a rule"},
    {"authorization:\n  rules:\n    - allow: {roles: [a]}\n",
     "test.yaml:3:7: authorization.rules[0]: methods: expected a non-empty list"},
    {"authorization:\n  rules:\n    - {methods: [], allow: {roles: [a]}}\n", "methods: expected a non-empty list"},
    {"authorization:\n  rules:\n    - {methods: ping, allow: {roles: [a]}}\n", "methods: expected a list"},
    {"authorization:\n  rules:\n    - {methods: [\"a b\"], allow: {roles: [a]}}\n",
     "test.yaml:3:18: authorization.rules[0].methods[0]: expected a method pattern"},
    {"authorization:\n  rules:\n    - {methods: [[x]], allow: {roles: [a]}}\n",
     "expected a method pattern ([A-Za-z0-9._-/:] and the globs * ?), found a list or map"},
    {"authorization:\n  rules:\n    - {methods: [ping]}\n", "expected exactly one of allow or deny, found neither"},
    {"authorization:\n  rules:\n    - {methods: [ping], allow: {roles: [a]}, deny: {roles: [b]}}\n",
     "expected exactly one of allow or deny, found both"},
    {"authorization:\n  rules:\n    - {methods: [ping], allow: [a]}\n", "allow: expected a map"},
    {"authorization:\n  rules:\n    - {methods: [ping], allow: {}}\n", "selects nobody"},
    {"authorization:\n  rules:\n    - {methods: [ping], allow: {roles: []}}\n", "selects nobody"},
    {"authorization:\n  rules:\n    - {methods: [ping], allow: {node_ids: [\"bad id\"]}}\n",
     "expected a node id or \"*\", found \"bad id\""},
    {"authorization:\n  rules:\n    - {methods: [ping], allow: {node_types: [\"a/b\"]}}\n",
     "expected a node type or \"*\""},
    {"authorization:\n  rules:\n    - {methods: [ping], deny: {roles: [[x]]}}\n",
     "expected a role, found a list or map"},
    {"authorization:\n  rules:\n    - {methods: [ping], deny: {roles: [a], groups: [b]}}\n",
     "authorization.rules[0].deny.groups: unknown key"},
    {"authorization:\n  rules:\n    - {methods: [ping], deny: {roles: [a]}, comment: x}\n",
     "authorization.rules[0].comment: unknown key"},
};

static void test_bad_config(void **state)
{
    (void)state;
    for (size_t i = 0; i < G_N_ELEMENTS(bad_cases); i++) {
        pz_conf_doc *doc = NULL;
        pz_err err;
        pz_err_init(&err);
        const char *y = bad_cases[i].yaml;
        assert_int_equal(pz_conf_load_string("test.yaml", y, strlen(y), &doc, &err), 0);
        pz_authz *az = (pz_authz *)&err;
        int rc = pz_authz_new_from_conf(pz_conf_root(doc), &az, &err);
        if (rc != PZ_ECONFIG || !strstr(pz_err_msg(&err), bad_cases[i].msg))
            fail_msg("case %zu: rc %d \"%s\", expected \"%s\"", i, rc, pz_err_msg(&err), bad_cases[i].msg);
        assert_null(az);
        pz_err_clear(&err);
        pz_conf_doc_free(doc);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decisions),
        cmocka_unit_test(test_no_rules),
        cmocka_unit_test(test_bad_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
