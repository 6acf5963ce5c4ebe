/* tests/unit/test_unix_peercred.c — the unix-peercred provider through the
 * mock core: uid/gid/user/group allowlists, the identity template, abstain
 * without SO_PEERCRED, every configuration refusal, reload. */
#include "config.h"

#include <grp.h>
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <prozsec/auth.h>
#include <prozsec/plugintest.h>

#include "unix-peercred.h"

static const pz_auth_provider *table;
static const pz_addr unix_addr = {.family = PZ_AF_UNIX};

static int setup(void **state)
{
    (void)state;
    const pz_plugin_descriptor *d = pz_plugin_entry_v1();
    assert_string_equal(d->name, "unix-peercred");
    assert_int_equal(d->kind, PZ_KIND_AUTH);
    table = d->provider;
    return 0;
}

static void *make(pz_mock *m, const char *yaml)
{
    const pz_conf *conf = NULL;
    void *st = NULL;
    assert_int_equal(pz_mock_conf(m, yaml, &conf), 0);
    int rc = table->create(pz_mock_core(m), conf, &st, pz_mock_err(m));
    if (rc)
        fail_msg("create: %s", pz_mock_err_msg(m));
    if (pz_mock_check_unused(m, conf))
        fail_msg("unused: %s", pz_mock_err_msg(m));
    return st;
}

static pz_auth_result run(void *st, int has_cred, uint32_t uid, uint32_t gid)
{
    pz_auth_credentials c = {.struct_size = sizeof(c), .transport = "unix", .addr = &unix_addr,
                             .has_unix_cred = has_cred, .uid = uid, .gid = gid, .pid = 99};
    pz_auth_result r;
    memset(&r, 0, sizeof(r));
    r.struct_size = sizeof(r);
    assert_int_equal(table->authenticate_peer(st, &c, &r, NULL), 0);
    return r;
}

static void test_allow_and_deny(void **state)
{
    (void)state;
    pz_mock *m = pz_mock_new();
    void *st = make(m, "uids: [0, 1000]\n"
                       "gids: [2000]\n"
                       "identity: {node_id: admin, node_type: operator, roles: [admin, rpc]}\n");
    pz_auth_result r = run(st, 1, 1000, 1000);
    assert_int_equal(r.verdict, PZ_AUTH_ALLOW);
    assert_string_equal(r.node_id, "admin");
    assert_string_equal(r.node_type, "operator");
    assert_int_equal(r.n_roles, 2);
    assert_string_equal(r.roles[1], "rpc");
    r = run(st, 1, 0, 0);
    assert_int_equal(r.verdict, PZ_AUTH_ALLOW);
    /* Allowed by group alone. */
    r = run(st, 1, 1234, 2000);
    assert_int_equal(r.verdict, PZ_AUTH_ALLOW);
    /* Neither. */
    r = run(st, 1, 1001, 1001);
    assert_int_equal(r.verdict, PZ_AUTH_DENY);
    assert_int_equal(r.reason_code, UNIX_PEERCRED_DENY_NOT_ALLOWED);
    assert_string_equal(r.reason, "uid 1001 gid 1001 (pid 99) is not allowed");
    assert_int_equal(pz_mock_metric(m, "denials_total", "not_allowed"), 1);
    /* No SO_PEERCRED (a TLS peer): no opinion. */
    r = run(st, 0, 0, 0);
    assert_int_equal(r.verdict, PZ_AUTH_ABSTAIN);

    /* Methods and credentials. */
    const char *const *methods = table->supported_methods(st);
    assert_string_equal(methods[0], "unix-peercred");
    assert_null(methods[1]);
    uint8_t buf[8];
    size_t len = sizeof(buf);
    assert_int_equal(table->generate_credentials(st, NULL, 0, buf, &len, pz_mock_err(m)), PZ_ENOTSUP);
    table->destroy(st);
    pz_mock_free(m);
}

static void test_identity_template(void **state)
{
    (void)state;
    pz_mock *m = pz_mock_new();
    /* Default: local-{uid}, type local, no roles. */
    void *st = make(m, "uids: [1000]\n");
    pz_auth_result r = run(st, 1, 1000, 5);
    assert_int_equal(r.verdict, PZ_AUTH_ALLOW);
    assert_string_equal(r.node_id, "local-1000");
    assert_string_equal(r.node_type, "local");
    assert_int_equal(r.n_roles, 0);
    table->destroy(st);
    st = make(m, "gids: [7]\nidentity: {node_id: \"ops-{uid}-{uid}\"}\n");
    r = run(st, 1, 4294967294u, 7);
    assert_int_equal(r.verdict, PZ_AUTH_ALLOW);
    assert_string_equal(r.node_id, "ops-4294967294-4294967294");
    table->destroy(st);
    pz_mock_free(m);
}

static void test_names(void **state)
{
    (void)state;
    struct passwd *pw = getpwuid(0);
    struct group *gr = getgrgid(0);
    if (!pw || !gr)
        skip();
    char *yaml = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&yaml, &n);
    fprintf(f, "users: [\"%s\"]\ngroups: [\"%s\"]\n", pw->pw_name, gr->gr_name);
    fclose(f);
    pz_mock *m = pz_mock_new();
    void *st = make(m, yaml);
    assert_int_equal(run(st, 1, 0, 12345).verdict, PZ_AUTH_ALLOW);
    assert_int_equal(run(st, 1, 12345, 0).verdict, PZ_AUTH_ALLOW);
    assert_int_equal(run(st, 1, 12345, 12345).verdict, PZ_AUTH_DENY);
    table->destroy(st);
    pz_mock_free(m);
    free(yaml);
}

typedef struct bad_case {
    const char *yaml;
    const char *msg;
} bad_case;

static const bad_case bad_cases[] = {
    {"{}\n", "allows nobody: set uids, gids, users or groups"},
    {"uids: []\n", "allows nobody"},
    {"uids: [-1]\n", "test.yaml:1:8: uids[0]: expected a numeric uid, found \"-1\""},
    {"uids: [abc]\n", "expected a numeric uid, found \"abc\""},
    {"gids: [4294967295]\n", "expected a numeric gid"},
    {"uids: [99999999999999999999]\n", "expected a numeric uid"},
    {"uids: [[1]]\n", "expected a numeric uid, found a list or map"},
    {"uids: 5\n", "uids: expected a list"},
    {"users: [no-such-user-pz]\n", "no such user \"no-such-user-pz\""},
    {"groups: [no-such-group-pz]\n", "no such group \"no-such-group-pz\""},
    {"users: [\"\"]\n", "expected a user name"},
    {"uids: [1]\nidentity: {node_id: \"bad id\"}\n", "node_id: expected a node id"},
    {"uids: [1]\nidentity: {node_id: \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa{uid}\"}\n",
     "up to 64 bytes once {uid} is replaced"},
    {"uids: [1]\nidentity: {node_type: \"bad type\"}\n", "node_type: expected a node type"},
    {"uids: [1]\nidentity: {roles: [\"a b\"]}\n", "expected a role"},
    {"uids: [1]\nidentity: {roles: [a, b, c, d, e, f, g, h, i]}\n", "too many roles: at most 8"},
    {"uids: [1]\nidentity: 3\n", "identity: expected a map"},
};

static void test_bad_config(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        pz_mock *m = pz_mock_new();
        const pz_conf *conf = NULL;
        void *st = NULL;
        assert_int_equal(pz_mock_conf(m, bad_cases[i].yaml, &conf), 0);
        int rc = table->create(pz_mock_core(m), conf, &st, pz_mock_err(m));
        if (rc != PZ_ECONFIG || !strstr(pz_mock_err_msg(m), bad_cases[i].msg))
            fail_msg("case %zu: rc %d \"%s\", expected \"%s\"", i, rc, pz_mock_err_msg(m), bad_cases[i].msg);
        assert_null(st);
        pz_mock_free(m);
    }
    /* No config at all. */
    pz_mock *m = pz_mock_new();
    void *st = NULL;
    assert_int_equal(table->create(pz_mock_core(m), NULL, &st, pz_mock_err(m)), PZ_ECONFIG);
    pz_mock_free(m);
}

static void test_reload(void **state)
{
    (void)state;
    pz_mock *m = pz_mock_new();
    void *st = make(m, "uids: [1000]\n");
    const pz_conf *conf = NULL;
    assert_int_equal(pz_mock_conf(m, "uids: [1001]\n", &conf), 0);
    assert_int_equal(table->reload(st, conf, pz_mock_err(m)), 0);
    assert_int_equal(run(st, 1, 1000, 0).verdict, PZ_AUTH_DENY);
    assert_int_equal(run(st, 1, 1001, 0).verdict, PZ_AUTH_ALLOW);
    /* A bad reload keeps the old settings. */
    assert_int_equal(pz_mock_conf(m, "uids: [x]\n", &conf), 0);
    assert_int_equal(table->reload(st, conf, pz_mock_err(m)), PZ_ECONFIG);
    assert_int_equal(run(st, 1, 1001, 0).verdict, PZ_AUTH_ALLOW);
    /* NULL credentials are an error, not a verdict. */
    pz_auth_result r;
    memset(&r, 0, sizeof(r));
    assert_int_equal(table->authenticate_peer(st, NULL, &r, pz_mock_err(m)), PZ_EINVAL);
    table->destroy(st);
    table->destroy(NULL);
    pz_mock_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allow_and_deny), cmocka_unit_test(test_identity_template),
        cmocka_unit_test(test_names),          cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_reload),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
