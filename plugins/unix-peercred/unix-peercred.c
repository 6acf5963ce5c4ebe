/* plugins/unix-peercred/unix-peercred.c — peer authentication of local
 * clients on the unix transport by the kernel's account of who is on the
 * other end of the socket (SO_PEERCRED): a uid/gid allowlist, and an
 * identity mapped by configuration. See docs/plugins/unix-peercred.md. */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>

#include <prozsec/auth.h>
#include <prozsec/plugin.h>

#include "unix-peercred.h"

#define MAX_IDS 4096
#define DEFAULT_NODE_ID "local-{uid}"

/* Settings; immutable once built. */
typedef struct settings {
    GArray *uids; /* uint32_t, sorted */
    GArray *gids;
    char *node_id_tmpl; /* may contain {uid} */
    char node_type[PZ_NODE_TYPE_MAX + 1];
    char roles[PZ_AUTH_MAX_ROLES][PZ_AUTH_ROLE_MAX + 1];
    size_t n_roles;
} settings;

typedef struct unix_peercred {
    const pz_core *core;
    GMutex lock;
    settings *set; /* g_atomic_rc_box */
} unix_peercred;

static void settings_clear(gpointer p)
{
    settings *s = p;
    if (s->uids)
        g_array_free(s->uids, TRUE);
    if (s->gids)
        g_array_free(s->gids, TRUE);
    g_free(s->node_id_tmpl);
}

static void settings_unref(settings *s)
{
    if (s)
        g_atomic_rc_box_release_full(s, settings_clear);
}

static int valid_name(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!g_ascii_isalnum(s[i]) && !strchr("._:-", s[i]))
            return 0;
    return 1;
}

static int valid_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > PZ_NODE_ID_MAX || s[0] == '.' || s[0] == '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!g_ascii_isalnum(s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return 0;
    return 1;
}

/* TMPL with every "{uid}" replaced by UID into BUF. Returns 0, or -1 when
 * the result does not fit or is not a valid node id. */
static int expand_node_id(const char *tmpl, uint32_t uid, char *buf, size_t len)
{
    char num[16];
    size_t o = 0;
    g_snprintf(num, sizeof(num), "%u", uid);
    for (const char *p = tmpl; *p;) {
        if (!strncmp(p, "{uid}", 5)) {
            size_t n = strlen(num);
            if (o + n >= len)
                return -1;
            memcpy(buf + o, num, n);
            o += n;
            p += 5;
        } else {
            if (o + 1 >= len)
                return -1;
            buf[o++] = *p++;
        }
    }
    buf[o] = '\0';
    return valid_id(buf) ? 0 : -1;
}

static gint cmp_u32(gconstpointer a, gconstpointer b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int contains(const GArray *a, uint32_t v)
{
    guint lo = 0, hi = a->len;
    while (lo < hi) {
        guint mid = lo + (hi - lo) / 2;
        uint32_t m = g_array_index(a, uint32_t, mid);
        if (m == v)
            return 1;
        if (m < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

/* Numbers at KEY (a list of integers 0..2^32-2) into A. */
static int read_numbers(const pz_core *core, const pz_conf *conf, const char *key, GArray *a, pz_err *err)
{
    const pz_conf *list = NULL;
    int rc = core->conf_list(conf, key, &list, err);
    if (rc || !list)
        return rc;
    for (size_t i = 0; i < core->conf_len(list); i++) {
        const pz_conf *item = core->conf_at(list, i, NULL);
        const char *s = core->conf_scalar(item);
        char *end = NULL;
        errno = 0;
        unsigned long long v = s && g_ascii_isdigit(s[0]) ? strtoull(s, &end, 10) : 0;
        if (!s || !g_ascii_isdigit(s[0]) || *end || errno || v >= UINT32_MAX)
            return core->conf_error(item, err, "expected a numeric %s, found %s%.40s%s",
                                    strcmp(key, "uids") ? "gid" : "uid", s ? "\"" : "", s ? s : "a list or map",
                                    s ? "\"" : "");
        uint32_t u = (uint32_t)v;
        g_array_append_val(a, u);
    }
    return 0;
}

/* User (IS_GROUP 0) or group names at KEY, resolved now, into A. */
static int read_names(const pz_core *core, const pz_conf *conf, const char *key, int is_group, GArray *a,
                      pz_err *err)
{
    const pz_conf *list = NULL;
    int rc = core->conf_list(conf, key, &list, err);
    if (rc || !list)
        return rc;
    long bufsz = sysconf(is_group ? _SC_GETGR_R_SIZE_MAX : _SC_GETPW_R_SIZE_MAX);
    size_t len = bufsz > 0 ? (size_t)bufsz : 16384;
    for (size_t i = 0; i < core->conf_len(list); i++) {
        const pz_conf *item = core->conf_at(list, i, NULL);
        const char *name = core->conf_scalar(item);
        if (!name || !*name)
            return core->conf_error(item, err, "expected a %s name", is_group ? "group" : "user");
        uint32_t id = 0;
        int found = 0, e = 0;
        for (;;) {
            char *buf = g_malloc(len);
            if (is_group) {
                struct group gr, *res = NULL;
                e = getgrnam_r(name, &gr, buf, len, &res);
                if (!e && res) {
                    id = (uint32_t)res->gr_gid;
                    found = 1;
                }
            } else {
                struct passwd pw, *res = NULL;
                e = getpwnam_r(name, &pw, buf, len, &res);
                if (!e && res) {
                    id = (uint32_t)res->pw_uid;
                    found = 1;
                }
            }
            g_free(buf);
            if (e == ERANGE && len < (1u << 20)) {
                len *= 2;
                continue;
            }
            break;
        }
        if (!found)
            return core->conf_error(item, err, "no such %s \"%.64s\"%s%s", is_group ? "group" : "user", name,
                                    e ? ": " : "", e ? g_strerror(e) : "");
        g_array_append_val(a, id);
    }
    return 0;
}

static int read_settings(const pz_core *core, const pz_conf *conf, settings **out, pz_err *err)
{
    int rc = 0;
    settings *s = g_atomic_rc_box_new0(settings);
    const pz_conf *ident = NULL, *roles = NULL;
    const char *node_id = NULL, *node_type = NULL;
    char probe[PZ_NODE_ID_MAX + 1];

    s->uids = g_array_new(FALSE, FALSE, sizeof(uint32_t));
    s->gids = g_array_new(FALSE, FALSE, sizeof(uint32_t));
    if (!conf) {
        rc = core->error(core, err, PZ_ECONFIG, "unix-peercred: needs a config with uids, gids, users or groups");
        goto out;
    }
    if ((rc = read_numbers(core, conf, "uids", s->uids, err)) || (rc = read_numbers(core, conf, "gids", s->gids, err)) ||
        (rc = read_names(core, conf, "users", 0, s->uids, err)) ||
        (rc = read_names(core, conf, "groups", 1, s->gids, err)))
        goto out;
    if (s->uids->len + s->gids->len == 0) {
        rc = core->error(core, err, PZ_ECONFIG, "%s: unix-peercred: allows nobody: set uids, gids, users or groups",
                         core->conf_where(conf));
        goto out;
    }
    if (s->uids->len > MAX_IDS || s->gids->len > MAX_IDS) {
        rc = core->error(core, err, PZ_ECONFIG, "%s: unix-peercred: at most %d uids and %d gids",
                         core->conf_where(conf), MAX_IDS, MAX_IDS);
        goto out;
    }
    g_array_sort(s->uids, cmp_u32);
    g_array_sort(s->gids, cmp_u32);
    rc = core->conf_map(conf, "identity", &ident, err);
    if (rc)
        goto out;
    if (ident) {
        if ((rc = core->conf_string(ident, "node_id", DEFAULT_NODE_ID, &node_id, err)) ||
            (rc = core->conf_string(ident, "node_type", "local", &node_type, err)) ||
            (rc = core->conf_list(ident, "roles", &roles, err)))
            goto out;
    } else {
        node_id = DEFAULT_NODE_ID;
        node_type = "local";
    }
    if (expand_node_id(node_id, 4294967294u, probe, sizeof(probe))) {
        rc = core->conf_error(ident ? ident : conf, err,
                              "node_id: expected a node id ([A-Za-z0-9._-], up to 64 bytes once {uid} is "
                              "replaced), found \"%.80s\"",
                              node_id);
        goto out;
    }
    s->node_id_tmpl = g_strdup(node_id);
    if (!valid_name(node_type, PZ_NODE_TYPE_MAX)) {
        rc = core->conf_error(ident, err, "node_type: expected a node type, found \"%.80s\"", node_type);
        goto out;
    }
    g_strlcpy(s->node_type, node_type, sizeof(s->node_type));
    for (size_t i = 0; roles && i < core->conf_len(roles); i++) {
        const pz_conf *item = core->conf_at(roles, i, NULL);
        const char *r = core->conf_scalar(item);
        if (!r || !valid_name(r, PZ_AUTH_ROLE_MAX)) {
            rc = core->conf_error(item, err, "expected a role ([A-Za-z0-9._:-], 1 to %d bytes)", PZ_AUTH_ROLE_MAX);
            goto out;
        }
        if (s->n_roles >= PZ_AUTH_MAX_ROLES) {
            rc = core->conf_error(item, err, "too many roles: at most %d", PZ_AUTH_MAX_ROLES);
            goto out;
        }
        g_strlcpy(s->roles[s->n_roles++], r, sizeof(s->roles[0]));
    }
    *out = s;
    s = NULL;
out:
    settings_unref(s);
    return rc;
}

static void up_destroy(void *state)
{
    unix_peercred *st = state;
    if (!st)
        return;
    settings_unref(st->set);
    g_mutex_clear(&st->lock);
    g_free(st);
}

static int up_create(const pz_core *core, const pz_conf *conf, void **state, pz_err *err)
{
    int rc = 0;
    unix_peercred *st = g_new0(unix_peercred, 1);
    st->core = core;
    g_mutex_init(&st->lock);
    rc = read_settings(core, conf, &st->set, err);
    if (rc)
        goto out;
    *state = st;
    st = NULL;
out:
    up_destroy(st);
    return rc;
}

static int up_reload(void *state, const pz_conf *conf, pz_err *err)
{
    unix_peercred *st = state;
    settings *s = NULL;
    int rc = read_settings(st->core, conf, &s, err);
    if (rc)
        return rc;
    g_mutex_lock(&st->lock);
    settings *old = st->set;
    st->set = s;
    g_mutex_unlock(&st->lock);
    settings_unref(old);
    return 0;
}

static int up_authenticate(void *state, const pz_auth_credentials *cred, pz_auth_result *out, pz_err *err)
{
    unix_peercred *st = state;
    if (!cred || !out)
        return st->core->error(st->core, err, PZ_EINVAL, "unix-peercred: no credentials");
    if (!cred->has_unix_cred) {
        out->verdict = PZ_AUTH_ABSTAIN;
        return 0;
    }
    g_mutex_lock(&st->lock);
    settings *s = g_atomic_rc_box_acquire(st->set);
    g_mutex_unlock(&st->lock);
    if (!contains(s->uids, cred->uid) && !contains(s->gids, cred->gid)) {
        out->verdict = PZ_AUTH_DENY;
        out->reason_code = UNIX_PEERCRED_DENY_NOT_ALLOWED;
        g_snprintf(out->reason, sizeof(out->reason), "uid %u gid %u (pid %d) is not allowed", cred->uid, cred->gid,
                   (int)cred->pid);
        if (st->core->metric_add)
            st->core->metric_add(st->core, "denials_total", "not_allowed", 1);
    } else if (expand_node_id(s->node_id_tmpl, cred->uid, out->node_id, sizeof(out->node_id))) {
        /* Cannot happen: the template was checked with the longest uid. */
        out->verdict = PZ_AUTH_DENY;
        out->reason_code = UNIX_PEERCRED_DENY_BAD_ID;
        g_snprintf(out->reason, sizeof(out->reason), "uid %u maps to no valid node id", cred->uid);
    } else {
        out->verdict = PZ_AUTH_ALLOW;
        g_strlcpy(out->node_type, s->node_type, sizeof(out->node_type));
        for (size_t i = 0; i < s->n_roles; i++)
            g_strlcpy(out->roles[i], s->roles[i], sizeof(out->roles[i]));
        out->n_roles = s->n_roles;
    }
    settings_unref(s);
    return 0;
}

static int up_generate(void *state, const uint8_t *channel_binding, size_t channel_binding_len, uint8_t *buf,
                       size_t *len, pz_err *err)
{
    unix_peercred *st = state;
    (void)channel_binding;
    (void)channel_binding_len;
    (void)buf;
    (void)len;
    /* The kernel vouches for the client; there is nothing to present. */
    return st->core->error(st->core, err, PZ_ENOTSUP, "unix-peercred: credentials come from the kernel");
}

static const char *const *up_methods(void *state)
{
    static const char *const methods[] = {"unix-peercred", NULL};
    (void)state;
    return methods;
}

static const pz_auth_provider provider = {
    .struct_size = sizeof(pz_auth_provider),
    .create = up_create,
    .destroy = up_destroy,
    .authenticate_peer = up_authenticate,
    .generate_credentials = up_generate,
    .supported_methods = up_methods,
    .reload = up_reload,
};

static const pz_conf_key schema[] = {
    {"uids", PZ_CONF_LIST, "[]", "allowed user ids"},
    {"gids", PZ_CONF_LIST, "[]", "allowed (primary) group ids"},
    {"users", PZ_CONF_LIST, "[]", "allowed user names (resolved at start)"},
    {"groups", PZ_CONF_LIST, "[]", "allowed group names (resolved at start)"},
    {"identity.node_id", PZ_CONF_STRING, DEFAULT_NODE_ID, "node id of an allowed client; {uid} is replaced"},
    {"identity.node_type", PZ_CONF_STRING, "local", "node type of an allowed client"},
    {"identity.roles", PZ_CONF_LIST, "[]", "roles of an allowed client"},
    {NULL, 0, NULL, NULL},
};

static const pz_plugin_descriptor descriptor = {
    PZ_PLUGIN_DESCRIPTOR_INIT,
    .name = "unix-peercred",
    .version = PACKAGE_VERSION,
    .description = "peer authentication of local clients by Unix socket credentials (uid/gid allowlist)",
    .kind = PZ_KIND_AUTH,
    .provider = &provider,
    .config_schema = schema,
};

PZ_PLUGIN_EXPORT const pz_plugin_descriptor *pz_plugin_entry_v1(void)
{
    return &descriptor;
}
