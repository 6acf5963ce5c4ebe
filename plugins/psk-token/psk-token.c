/* plugins/psk-token/psk-token.c — peer authentication for light clients: a
 * token that is an HMAC-SHA256, under the node's pre-shared key, of the TLS
 * exporter channel binding and the node id, so a token taken from one
 * connection is useless on any other. Keys come from files of mode 0600
 * and live in secure memory. Wire format in psk-token.h; see
 * docs/plugins/psk-token.md. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gcrypt.h>
#include <glib.h>

#include <prozsec/auth.h>
#include <prozsec/plugin.h>

#include "psk-token.h"

#define KEY_FILE_MAX 1024
#define MAX_KEYS 65536

typedef struct psk_key {
    char node_id[PZ_NODE_ID_MAX + 1];
    char node_type[PZ_NODE_TYPE_MAX + 1];
    char roles[PZ_AUTH_MAX_ROLES][PZ_AUTH_ROLE_MAX + 1];
    size_t n_roles;
    uint8_t *key; /* secure memory (core->secure_alloc) */
    size_t key_len;
    char *path;
} psk_key;

/* Everything reload() replaces; immutable once built. */
typedef struct keyset {
    const pz_core *core;
    GHashTable *by_id; /* node id -> psk_key* (owned) */
    psk_key *self;     /* this node's key, or NULL */
    uint8_t *dummy;    /* a random key, used for unknown nodes so timing does not tell */
} keyset;

typedef struct psk_token {
    const pz_core *core;
    GMutex lock; /* guards the pointer set */
    keyset *set; /* g_atomic_rc_box */
} psk_token;

static void key_free(const pz_core *core, psk_key *k)
{
    if (!k)
        return;
    core->secure_free(core, k->key);
    g_free(k->path);
    g_free(k);
}

static void keyset_clear(gpointer p)
{
    keyset *s = p;
    if (s->by_id) {
        GHashTableIter it;
        gpointer v;
        g_hash_table_iter_init(&it, s->by_id);
        while (g_hash_table_iter_next(&it, NULL, &v))
            key_free(s->core, v);
        g_hash_table_destroy(s->by_id);
    }
    key_free(s->core, s->self);
    s->core->secure_free(s->core, s->dummy);
}

static void keyset_unref(keyset *s)
{
    if (s)
        g_atomic_rc_box_release_full(s, keyset_clear);
}

/* ------------------------------------------------------------------------ */
/* Helpers. */

static int valid_id(const char *s, size_t len)
{
    if (len == 0 || len > PZ_NODE_ID_MAX || s[0] == '.' || s[0] == '-')
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!g_ascii_isalnum(s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return 0;
    return 1;
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

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/* Decode TEXT[0..N) — hex, or base64 (either alphabet, padding optional) —
 * into OUT (CAP bytes). Returns the length, or -1. */
static long decode_key(const char *text, size_t n, uint8_t *out, size_t cap)
{
    int all_hex = n > 0 && n % 2 == 0;
    for (size_t i = 0; all_hex && i < n; i++)
        all_hex = g_ascii_isxdigit(text[i]);
    /* A 64+ digit hex string is hex; shorter ones (also valid base64) are
     * too short to be a key in hex anyway. */
    if (all_hex && n / 2 >= PSK_KEY_MIN) {
        if (n / 2 > cap)
            return -1;
        for (size_t i = 0; i < n / 2; i++)
            out[i] = (uint8_t)(g_ascii_xdigit_value(text[2 * i]) << 4 | g_ascii_xdigit_value(text[2 * i + 1]));
        return (long)(n / 2);
    }
    size_t m = n;
    while (m > 0 && text[m - 1] == '=')
        m--;
    if (n - m > 2 || m % 4 == 1)
        return -1;
    uint32_t acc = 0;
    int bits = 0;
    size_t len = 0;
    for (size_t i = 0; i < m; i++) {
        int v = b64_value(text[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (len >= cap)
                return -1;
            out[len++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    acc = 0;
    return (long)len;
}

/* Load the key file PATH into secure memory *KEY / *KEY_LEN. The file must
 * be a regular file that neither group nor others may access (0600 or
 * 0400). */
static int load_key_file(const pz_core *core, const char *path, uint8_t **key, size_t *key_len, pz_err *err)
{
    int rc = 0;
    int fd = -1;
    struct stat st;
    char *text = NULL;
    uint8_t *k = NULL;
    size_t got = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        rc = core->error(core, err, errno == ENOENT ? PZ_ENOENT : PZ_EIO, "%s: cannot open key file: %s", path,
                         g_strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        rc = core->error(core, err, PZ_EIO, "%s: not a regular file", path);
        goto out;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        rc = core->error(core, err, PZ_EPERM,
                         "%s: key file has mode %04o, readable or writable by others; it must be 0600 "
                         "(chmod 600 %s)",
                         path, (unsigned)(st.st_mode & 07777), path);
        goto out;
    }
    if (st.st_size > KEY_FILE_MAX) {
        rc = core->error(core, err, PZ_EINVAL, "%s: key file larger than %d bytes", path, KEY_FILE_MAX);
        goto out;
    }
    text = core->secure_alloc(core, KEY_FILE_MAX + 1);
    k = core->secure_alloc(core, PSK_KEY_MAX + 3);
    if (!text || !k) {
        rc = core->error(core, err, PZ_ENOMEM, "%s: out of secure memory", path);
        goto out;
    }
    while (got < KEY_FILE_MAX) {
        ssize_t n = read(fd, text + got, KEY_FILE_MAX - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = core->error(core, err, PZ_EIO, "%s: read: %s", path, g_strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    while (got > 0 && g_ascii_isspace(text[got - 1]))
        got--;
    size_t start = 0;
    while (start < got && g_ascii_isspace(text[start]))
        start++;
    long len = decode_key(text + start, got - start, k, PSK_KEY_MAX + 3);
    if (len < 0) {
        rc = core->error(core, err, PZ_EINVAL, "%s: expected the key in hex or base64 on one line", path);
        goto out;
    }
    if (len < PSK_KEY_MIN || len > PSK_KEY_MAX) {
        rc = core->error(core, err, PZ_EINVAL, "%s: key of %ld bytes; expected %d to %d (make one with: "
                         "head -c 32 /dev/urandom | base64 > FILE; chmod 600 FILE)",
                         path, len, PSK_KEY_MIN, PSK_KEY_MAX);
        goto out;
    }
    *key = k;
    *key_len = (size_t)len;
    k = NULL;
out:
    core->secure_free(core, text); /* wipes */
    core->secure_free(core, k);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* HMAC-SHA256(KEY, label || 0 || u8 |CB| || CB || u8 |ID| || ID) into MAC. */
static int token_mac(const uint8_t *key, size_t key_len, const uint8_t *cb, size_t cb_len, const char *id,
                     size_t id_len, uint8_t mac[PSK_TOKEN_MAC_LEN])
{
    gcry_mac_hd_t h = NULL;
    uint8_t l;
    size_t outlen = PSK_TOKEN_MAC_LEN;
    int rc = 0;

    if (gcry_mac_open(&h, GCRY_MAC_HMAC_SHA256, GCRY_MAC_FLAG_SECURE, NULL) ||
        gcry_mac_setkey(h, key, key_len)) {
        rc = PZ_ECRYPTO;
        goto out;
    }
    gcry_mac_write(h, PSK_TOKEN_LABEL, sizeof(PSK_TOKEN_LABEL)); /* includes the 0 byte */
    l = (uint8_t)cb_len;
    gcry_mac_write(h, &l, 1);
    gcry_mac_write(h, cb, cb_len);
    l = (uint8_t)id_len;
    gcry_mac_write(h, &l, 1);
    gcry_mac_write(h, id, id_len);
    if (gcry_mac_read(h, mac, &outlen) || outlen != PSK_TOKEN_MAC_LEN)
        rc = PZ_ECRYPTO;
out:
    if (h)
        gcry_mac_close(h);
    return rc;
}

/* Compare without a data-dependent branch or early exit. */
static int equal_ct(const uint8_t *a, const uint8_t *b, size_t n)
{
    volatile uint8_t d = 0;
    for (size_t i = 0; i < n; i++)
        d |= a[i] ^ b[i];
    return d == 0;
}

/* ------------------------------------------------------------------------ */
/* Settings. */

static int read_entry(keyset *s, const pz_conf *item, int need_identity_fields, psk_key **out, pz_err *err)
{
    const pz_core *core = s->core;
    int rc = 0;
    const char *id = NULL, *file = NULL, *type = NULL;
    const pz_conf *roles = NULL;
    psk_key *k = g_new0(psk_key, 1);

    if (core->conf_scalar(item)) {
        rc = core->conf_error(item, err, "expected {node_id, key_file}, found a scalar");
        goto out;
    }
    rc = core->conf_string(item, "node_id", NULL, &id, err);
    if (rc)
        goto out;
    rc = core->conf_string(item, "key_file", NULL, &file, err);
    if (rc)
        goto out;
    if (need_identity_fields) {
        rc = core->conf_string(item, "node_type", NULL, &type, err);
        if (rc)
            goto out;
        rc = core->conf_list(item, "roles", &roles, err);
        if (rc)
            goto out;
    }
    if (!id || !valid_id(id, strlen(id))) {
        rc = core->conf_error(item, err, "node_id: expected a node id ([A-Za-z0-9._-], 1 to 64 bytes)");
        goto out;
    }
    if (!file || !*file) {
        rc = core->conf_error(item, err, "key_file: expected the path of the key file (mode 0600)");
        goto out;
    }
    g_strlcpy(k->node_id, id, sizeof(k->node_id));
    if (type) {
        if (!valid_name(type, PZ_NODE_TYPE_MAX)) {
            rc = core->conf_error(item, err, "node_type: expected a node type, found \"%.80s\"", type);
            goto out;
        }
        g_strlcpy(k->node_type, type, sizeof(k->node_type));
    }
    for (size_t i = 0; roles && i < core->conf_len(roles); i++) {
        const pz_conf *r = core->conf_at(roles, i, NULL);
        const char *name = core->conf_scalar(r);
        if (!name || !valid_name(name, PZ_AUTH_ROLE_MAX)) {
            rc = core->conf_error(r, err, "expected a role ([A-Za-z0-9._:-], 1 to %d bytes)", PZ_AUTH_ROLE_MAX);
            goto out;
        }
        if (k->n_roles >= PZ_AUTH_MAX_ROLES) {
            rc = core->conf_error(r, err, "too many roles: at most %d", PZ_AUTH_MAX_ROLES);
            goto out;
        }
        g_strlcpy(k->roles[k->n_roles++], name, sizeof(k->roles[0]));
    }
    k->path = g_strdup(file);
    rc = load_key_file(core, file, &k->key, &k->key_len, err);
    if (rc)
        goto out;
    *out = k;
    k = NULL;
out:
    key_free(core, k);
    return rc;
}

static int add_key(keyset *s, psk_key *k, const pz_conf *where, pz_err *err)
{
    psk_key *other = g_hash_table_lookup(s->by_id, k->node_id);
    if (other) {
        int rc = where ? s->core->conf_error(where, err, "node %s has two keys (%s and %s)", k->node_id,
                                             other->path, k->path)
                       : s->core->error(s->core, err, PZ_ECONFIG, "node %s has two keys (%s and %s)", k->node_id,
                                        other->path, k->path);
        key_free(s->core, k);
        return rc;
    }
    if (g_hash_table_size(s->by_id) >= MAX_KEYS) {
        key_free(s->core, k);
        return s->core->error(s->core, err, PZ_ECONFIG, "psk-token: more than %d keys", MAX_KEYS);
    }
    g_hash_table_insert(s->by_id, k->node_id, k);
    return 0;
}

/* Every <node id>.key in DIR. */
static int read_key_dir(keyset *s, const pz_conf *conf, const char *dir, pz_err *err)
{
    const pz_core *core = s->core;
    int rc = 0;
    DIR *d = opendir(dir);
    if (!d)
        return core->error(core, err, PZ_EIO, "%s: key_dir %s: %s", core->conf_where(conf), dir, g_strerror(errno));
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n <= 4 || strcmp(de->d_name + n - 4, ".key") || !valid_id(de->d_name, n - 4))
            continue;
        psk_key *k = g_new0(psk_key, 1);
        memcpy(k->node_id, de->d_name, n - 4);
        k->path = g_build_filename(dir, de->d_name, NULL);
        rc = load_key_file(core, k->path, &k->key, &k->key_len, err);
        if (rc) {
            key_free(core, k);
            goto out;
        }
        rc = add_key(s, k, NULL, err);
        if (rc)
            goto out;
    }
out:
    closedir(d);
    return rc;
}

static int read_settings(const pz_core *core, const pz_conf *conf, keyset **out, pz_err *err)
{
    int rc = 0;
    keyset *s = g_atomic_rc_box_new0(keyset);
    const pz_conf *keys = NULL, *self = NULL;
    const char *key_dir = NULL;

    s->core = core;
    s->by_id = g_hash_table_new(g_str_hash, g_str_equal);
    s->dummy = core->secure_alloc(core, PSK_KEY_MIN);
    if (!s->dummy || core->random(core, s->dummy, PSK_KEY_MIN)) {
        rc = core->error(core, err, PZ_ENOMEM, "psk-token: out of secure memory or randomness");
        goto out;
    }
    if (!conf) {
        rc = core->error(core, err, PZ_ECONFIG, "psk-token: needs a config with keys, key_dir or self");
        goto out;
    }
    rc = core->conf_list(conf, "keys", &keys, err);
    if (rc)
        goto out;
    rc = core->conf_string(conf, "key_dir", NULL, &key_dir, err);
    if (rc)
        goto out;
    rc = core->conf_map(conf, "self", &self, err);
    if (rc)
        goto out;
    for (size_t i = 0; keys && i < core->conf_len(keys); i++) {
        const pz_conf *item = core->conf_at(keys, i, NULL);
        psk_key *k = NULL;
        rc = read_entry(s, item, 1, &k, err);
        if (rc)
            goto out;
        rc = add_key(s, k, item, err);
        if (rc)
            goto out;
    }
    if (key_dir) {
        rc = read_key_dir(s, conf, key_dir, err);
        if (rc)
            goto out;
    }
    if (self) {
        rc = read_entry(s, self, 0, &s->self, err);
        if (rc)
            goto out;
    }
    if (g_hash_table_size(s->by_id) == 0 && !s->self) {
        rc = core->error(core, err, PZ_ECONFIG, "%s: psk-token: no keys: set keys, key_dir or self",
                         core->conf_where(conf));
        goto out;
    }
    *out = s;
    s = NULL;
out:
    keyset_unref(s);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* The provider. */

static void psk_destroy(void *state)
{
    psk_token *st = state;
    if (!st)
        return;
    keyset_unref(st->set);
    g_mutex_clear(&st->lock);
    g_free(st);
}

static int psk_create(const pz_core *core, const pz_conf *conf, void **state, pz_err *err)
{
    int rc = 0;
    psk_token *st = g_new0(psk_token, 1);
    st->core = core;
    g_mutex_init(&st->lock);
    rc = read_settings(core, conf, &st->set, err);
    if (rc)
        goto out;
    *state = st;
    st = NULL;
out:
    psk_destroy(st);
    return rc;
}

static int psk_reload(void *state, const pz_conf *conf, pz_err *err)
{
    psk_token *st = state;
    keyset *s = NULL;
    int rc = read_settings(st->core, conf, &s, err);
    if (rc)
        return rc;
    g_mutex_lock(&st->lock);
    keyset *old = st->set;
    st->set = s;
    g_mutex_unlock(&st->lock);
    keyset_unref(old);
    return 0;
}

static keyset *acquire(psk_token *st)
{
    g_mutex_lock(&st->lock);
    keyset *s = g_atomic_rc_box_acquire(st->set);
    g_mutex_unlock(&st->lock);
    return s;
}

static int deny(pz_auth_result *out, int code, const char *fmt, ...) PZ_PRINTF(3, 4);

static int deny(pz_auth_result *out, int code, const char *fmt, ...)
{
    va_list ap;
    out->verdict = PZ_AUTH_DENY;
    out->reason_code = code;
    va_start(ap, fmt);
    g_vsnprintf(out->reason, sizeof(out->reason), fmt, ap);
    va_end(ap);
    return 0;
}

static int psk_authenticate(void *state, const pz_auth_credentials *cred, pz_auth_result *out, pz_err *err)
{
    int rc = 0;
    psk_token *st = state;
    keyset *s = NULL;
    uint8_t mac[PSK_TOKEN_MAC_LEN];
    char id[PZ_NODE_ID_MAX + 1];

    if (!cred || !out)
        return st->core->error(st->core, err, PZ_EINVAL, "psk-token: no credentials");
    if (!cred->token || cred->token_len == 0) {
        out->verdict = PZ_AUTH_ABSTAIN;
        return 0;
    }
    s = acquire(st);
    const uint8_t *t = cred->token;
    size_t idlen = cred->token_len >= 2 ? t[1] : 0;
    if (cred->token_len < 2 + 1 + PSK_TOKEN_MAC_LEN || t[0] != PSK_TOKEN_VERSION ||
        cred->token_len != 2 + idlen + PSK_TOKEN_MAC_LEN || !valid_id((const char *)t + 2, idlen)) {
        deny(out, PSK_TOKEN_DENY_MALFORMED, "malformed token (%zu bytes)", cred->token_len);
        goto out;
    }
    memcpy(id, t + 2, idlen);
    id[idlen] = '\0';
    if (!cred->channel_binding || cred->channel_binding_len < PSK_BINDING_MIN ||
        cred->channel_binding_len > PSK_BINDING_MAX) {
        deny(out, PSK_TOKEN_DENY_NO_BINDING, "node %s: no channel binding on this connection (psk-token needs TLS)",
             id);
        goto out;
    }
    const psk_key *k = g_hash_table_lookup(s->by_id, id);
    /* Same work for an unknown node as for a known one. */
    rc = token_mac(k ? k->key : s->dummy, k ? k->key_len : PSK_KEY_MIN, cred->channel_binding,
                   cred->channel_binding_len, id, idlen, mac);
    if (rc) {
        rc = st->core->error(st->core, err, rc, "psk-token: HMAC-SHA256 failed");
        goto out;
    }
    int same = equal_ct(mac, t + 2 + idlen, PSK_TOKEN_MAC_LEN);
    if (!k) {
        deny(out, PSK_TOKEN_DENY_UNKNOWN_NODE, "node %s has no pre-shared key here", id);
        goto out;
    }
    if (!same) {
        deny(out, PSK_TOKEN_DENY_BAD_MAC, "node %s: token does not verify (wrong key, or made for another "
                                          "connection)", id);
        goto out;
    }
    out->verdict = PZ_AUTH_ALLOW;
    g_strlcpy(out->node_id, k->node_id, sizeof(out->node_id));
    g_strlcpy(out->node_type, k->node_type, sizeof(out->node_type));
    for (size_t i = 0; i < k->n_roles; i++)
        g_strlcpy(out->roles[i], k->roles[i], sizeof(out->roles[i]));
    out->n_roles = k->n_roles;
out:
    if (out->verdict == PZ_AUTH_DENY && st->core->metric_add) {
        static const char *const names[] = {"", "malformed", "unknown_node", "no_binding", "bad_mac"};
        int c = out->reason_code;
        st->core->metric_add(st->core, "denials_total", c > 0 && c <= 4 ? names[c] : "other", 1);
    }
    explicit_bzero(mac, sizeof(mac));
    keyset_unref(s);
    return rc;
}

static int psk_generate(void *state, const uint8_t *channel_binding, size_t channel_binding_len, uint8_t *buf,
                        size_t *len, pz_err *err)
{
    int rc = 0;
    psk_token *st = state;
    keyset *s = acquire(st);
    uint8_t mac[PSK_TOKEN_MAC_LEN];

    if (!len) {
        rc = st->core->error(st->core, err, PZ_EINVAL, "psk-token: no length");
        goto out;
    }
    if (!s->self) {
        rc = st->core->error(st->core, err, PZ_ENOTSUP, "psk-token: no self key configured: this node presents "
                                                        "no token");
        goto out;
    }
    if (!channel_binding || channel_binding_len < PSK_BINDING_MIN || channel_binding_len > PSK_BINDING_MAX) {
        rc = st->core->error(st->core, err, PZ_EINVAL, "psk-token: a token needs the connection's channel binding "
                                                       "(%d to %d bytes)", PSK_BINDING_MIN, PSK_BINDING_MAX);
        goto out;
    }
    size_t idlen = strlen(s->self->node_id);
    size_t need = 2 + idlen + PSK_TOKEN_MAC_LEN;
    if (!buf || *len < need) {
        *len = need;
        rc = PZ_ERANGE;
        goto out;
    }
    rc = token_mac(s->self->key, s->self->key_len, channel_binding, channel_binding_len, s->self->node_id, idlen,
                   mac);
    if (rc) {
        rc = st->core->error(st->core, err, rc, "psk-token: HMAC-SHA256 failed");
        goto out;
    }
    buf[0] = PSK_TOKEN_VERSION;
    buf[1] = (uint8_t)idlen;
    memcpy(buf + 2, s->self->node_id, idlen);
    memcpy(buf + 2 + idlen, mac, PSK_TOKEN_MAC_LEN);
    *len = need;
out:
    explicit_bzero(mac, sizeof(mac));
    keyset_unref(s);
    return rc;
}

static const char *const *psk_methods(void *state)
{
    static const char *const methods[] = {"psk", NULL};
    (void)state;
    return methods;
}

static const pz_auth_provider provider = {
    .struct_size = sizeof(pz_auth_provider),
    .create = psk_create,
    .destroy = psk_destroy,
    .authenticate_peer = psk_authenticate,
    .generate_credentials = psk_generate,
    .supported_methods = psk_methods,
    .reload = psk_reload,
};

static int psk_init(const pz_core *core, pz_err *err)
{
    /* HMAC comes from libgcrypt, which the core has initialised (with
     * secure memory); this only checks the version. */
    if (!gcry_check_version(GCRYPT_VERSION))
        return core->error(core, err, PZ_ECRYPTO, "psk-token: libgcrypt older than %s", GCRYPT_VERSION);
    return 0;
}

static const pz_conf_key schema[] = {
    {"keys", PZ_CONF_LIST, "[]", "peers' keys: {node_id, key_file (mode 0600), node_type?, roles?}"},
    {"key_dir", PZ_CONF_STRING, "", "directory of <node_id>.key files (each mode 0600)"},
    {"self.node_id", PZ_CONF_STRING, "", "this node's id, for the token it presents"},
    {"self.key_file", PZ_CONF_STRING, "", "this node's key file (mode 0600)"},
    {NULL, 0, NULL, NULL},
};

static const pz_plugin_descriptor descriptor = {
    PZ_PLUGIN_DESCRIPTOR_INIT,
    .name = "psk-token",
    .version = PACKAGE_VERSION,
    .description = "peer authentication by HMAC-SHA256 token over the TLS channel binding (pre-shared keys)",
    .kind = PZ_KIND_AUTH,
    .provider = &provider,
    .init = psk_init,
    .config_schema = schema,
};

PZ_PLUGIN_EXPORT const pz_plugin_descriptor *pz_plugin_entry_v1(void)
{
    return &descriptor;
}
