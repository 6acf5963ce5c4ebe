/* core/authz.c — per-method authorization rules. See authz.h. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "authz.h"
#include "err.h"
#include "identity.h"

/* Longest method pattern accepted. */
#define PATTERN_MAX 128

typedef struct selector {
    char **node_ids;   /* NULL-terminated (may be empty) */
    char **node_types;
    char **roles;
} selector;

typedef struct rule {
    GPtrArray *patterns; /* char* glob patterns */
    int allow;           /* 1 allow, 0 deny */
    selector sel;
    char *where;         /* FILE:LINE:COL of the rule */
} rule;

struct pz_authz {
    GPtrArray *rules; /* rule* */
};

static void rule_free(gpointer p)
{
    rule *r = p;
    if (!r)
        return;
    if (r->patterns)
        g_ptr_array_free(r->patterns, TRUE);
    g_strfreev(r->sel.node_ids);
    g_strfreev(r->sel.node_types);
    g_strfreev(r->sel.roles);
    g_free(r->where);
    g_free(r);
}

void pz_authz_free(pz_authz *authz)
{
    if (!authz)
        return;
    g_ptr_array_free(authz->rules, TRUE);
    g_free(authz);
}

size_t pz_authz_rule_count(const pz_authz *authz)
{
    return authz ? authz->rules->len : 0;
}

/* A method pattern: method characters plus the glob characters * and ?. */
static int pattern_valid(const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || n > PATTERN_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (!g_ascii_isalnum(c) && !strchr("._-/:*?", c))
            return 0;
    }
    return 1;
}

/* Read the list of strings KEY of MAP into *OUT (NULL-terminated; empty
 * when absent). VALID checks each entry; WHAT names it in messages. */
static int read_names(const pz_conf *map, const char *key, int (*valid)(const char *), const char *what,
                      char ***out, pz_err *err)
{
    int rc = 0;
    const pz_conf *list = NULL;
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);

    rc = pz_conf_list(map, key, &list, err);
    if (rc)
        goto out;
    size_t n = list ? pz_conf_len(list) : 0;
    for (size_t i = 0; i < n; i++) {
        const pz_conf *item = pz_conf_at(list, i, NULL);
        const char *s = pz_conf_scalar(item);
        if (!s) {
            rc = pz_conf_error(item, err, "expected %s, found a list or map", what);
            goto out;
        }
        if (strcmp(s, "*") && !valid(s)) {
            rc = pz_conf_error(item, err, "expected %s or \"*\", found \"%.80s\"", what, s);
            goto out;
        }
        g_ptr_array_add(names, g_strdup(s));
    }
    g_ptr_array_add(names, NULL);
    *out = (char **)g_ptr_array_free(names, FALSE);
    names = NULL;
out:
    if (names)
        g_ptr_array_free(names, TRUE);
    return rc;
}

static int valid_node_type(const char *s)
{
    return pz_identity_valid_name(s, PZ_NODE_TYPE_MAX);
}

static int valid_role(const char *s)
{
    return pz_identity_valid_name(s, PZ_AUTH_ROLE_MAX);
}

static int read_selector(const pz_conf *map, selector *sel, pz_err *err)
{
    int rc = 0;
    rc = read_names(map, "node_ids", pz_identity_valid_node_id, "a node id", &sel->node_ids, err);
    if (rc)
        goto out;
    rc = read_names(map, "node_types", valid_node_type, "a node type", &sel->node_types, err);
    if (rc)
        goto out;
    rc = read_names(map, "roles", valid_role, "a role", &sel->roles, err);
    if (rc)
        goto out;
    if (!sel->node_ids[0] && !sel->node_types[0] && !sel->roles[0]) {
        rc = pz_conf_error(map, err,
                           "selects nobody: give node_ids, node_types or roles (use [\"*\"] for everyone)");
        goto out;
    }
out:
    return rc;
}

static int read_rule(const pz_conf *node, rule **out, pz_err *err)
{
    int rc = 0;
    rule *r = g_new0(rule, 1);
    const pz_conf *methods = NULL, *allow = NULL, *deny = NULL;

    r->patterns = g_ptr_array_new_with_free_func(g_free);
    r->where = g_strdup(pz_conf_where(node));
    if (pz_conf_kind(node) != PZ_CONF_NODE_MAP) {
        rc = pz_conf_error(node, err, "expected a rule (a map with methods and allow or deny)");
        goto out;
    }
    rc = pz_conf_list(node, "methods", &methods, err);
    if (rc)
        goto out;
    if (!methods || pz_conf_len(methods) == 0) {
        rc = pz_conf_error(node, err, "methods: expected a non-empty list of method patterns (\"sys.*\")");
        goto out;
    }
    for (size_t i = 0; i < pz_conf_len(methods); i++) {
        const pz_conf *item = pz_conf_at(methods, i, NULL);
        const char *s = pz_conf_scalar(item);
        if (!s || !pattern_valid(s)) {
            rc = pz_conf_error(item, err,
                               "expected a method pattern ([A-Za-z0-9._-/:] and the globs * ?), found %s%.80s%s",
                               s ? "\"" : "", s ? s : "a list or map", s ? "\"" : "");
            goto out;
        }
        g_ptr_array_add(r->patterns, g_strdup(s));
    }
    rc = pz_conf_map(node, "allow", &allow, err);
    if (rc)
        goto out;
    rc = pz_conf_map(node, "deny", &deny, err);
    if (rc)
        goto out;
    if ((allow != NULL) == (deny != NULL)) {
        rc = pz_conf_error(node, err, "expected exactly one of allow or deny, found %s",
                           allow ? "both" : "neither");
        goto out;
    }
    r->allow = allow != NULL;
    rc = read_selector(allow ? allow : deny, &r->sel, err);
    if (rc)
        goto out;
    *out = r;
    r = NULL;
out:
    rule_free(r);
    return rc;
}

int pz_authz_new_from_conf(const pz_conf *root, pz_authz **out, pz_err *err)
{
    int rc = 0;
    pz_authz *authz = g_new0(pz_authz, 1);
    const pz_conf *sec = NULL, *rules = NULL;

    *out = NULL;
    authz->rules = g_ptr_array_new_with_free_func(rule_free);
    if (root) {
        rc = pz_conf_map(root, "authorization", &sec, err);
        if (rc)
            goto out;
    }
    if (sec) {
        rc = pz_conf_list(sec, "rules", &rules, err);
        if (rc)
            goto out;
    }
    size_t n = rules ? pz_conf_len(rules) : 0;
    for (size_t i = 0; i < n; i++) {
        rule *r = NULL;
        rc = read_rule(pz_conf_at(rules, i, NULL), &r, err);
        if (rc)
            goto out;
        g_ptr_array_add(authz->rules, r);
    }
    if (sec) {
        rc = pz_conf_check_unused(sec, err);
        if (rc)
            goto out;
    }
    *out = authz;
    authz = NULL;
out:
    pz_authz_free(authz);
    return rc;
}

static int in_list(char *const *list, const char *s)
{
    if (!s || !*s)
        return 0;
    for (size_t i = 0; list[i]; i++)
        if (!strcmp(list[i], s))
            return 1;
    return 0;
}

static int has_star(char *const *list)
{
    for (size_t i = 0; list[i]; i++)
        if (!strcmp(list[i], "*"))
            return 1;
    return 0;
}

static int selects(const selector *sel, const pz_identity *id)
{
    /* "*" selects everyone, also a peer without a type or roles. */
    if (has_star(sel->node_ids) || has_star(sel->node_types) || has_star(sel->roles))
        return 1;
    if (in_list(sel->node_ids, id->node_id))
        return 1;
    if (in_list(sel->node_types, id->node_type))
        return 1;
    for (size_t i = 0; id->roles && i < id->n_roles; i++)
        if (in_list(sel->roles, id->roles[i]))
            return 1;
    return 0;
}

/* Glob match: '*' any run of characters (also '.'), '?' one character.
 * Iterative with one backtrack point, so linear-ish and never recursive. */
static int glob_match(const char *pat, const char *s)
{
    const char *star = NULL, *resume = NULL;
    while (*s) {
        if (*pat == '?' || (*pat && *pat != '*' && *pat == *s)) {
            pat++;
            s++;
        } else if (*pat == '*') {
            star = pat++;
            resume = s;
        } else if (star) {
            pat = star + 1;
            s = ++resume;
        } else {
            return 0;
        }
    }
    while (*pat == '*')
        pat++;
    return *pat == '\0';
}

int pz_authz_check(const pz_authz *authz, const char *method, const pz_identity *id, pz_authz_decision *out)
{
    if (!authz || !method || !id || !id->node_id || !out)
        return PZ_EINVAL;
    memset(out, 0, sizeof(*out));
    out->rule = -1;
    out->where = "";
    int named = 0;
    for (guint i = 0; i < authz->rules->len; i++) {
        const rule *r = g_ptr_array_index(authz->rules, i);
        int matches = 0;
        for (guint j = 0; j < r->patterns->len && !matches; j++)
            matches = glob_match(g_ptr_array_index(r->patterns, j), method);
        if (!matches)
            continue;
        named = 1;
        if (!selects(&r->sel, id))
            continue;
        out->allowed = r->allow;
        out->why = r->allow ? PZ_AUTHZ_RULE_ALLOW : PZ_AUTHZ_RULE_DENY;
        out->rule = (int)i;
        out->where = r->where;
        return 0;
    }
    out->allowed = 0;
    out->why = named ? PZ_AUTHZ_NOT_SELECTED : PZ_AUTHZ_UNKNOWN_METHOD;
    return 0;
}
