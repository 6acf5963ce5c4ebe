/* plugins/key-pin/key-pin.c — peer authentication by pinned public key, no
 * CA: a peer is the node whose pin matches the key of the certificate it
 * presented (and proved it holds, in the TLS handshake). Pins are the
 * SHA-256 of the SubjectPublicKeyInfo, or the raw key when it is Ed25519,
 * from configuration or the peer directory. See docs/plugins/key-pin.md. */
#include "config.h"

#include <string.h>

#include <gcrypt.h>
#include <glib.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include <prozsec/auth.h>
#include <prozsec/plugin.h>

#include "certval.h"
#include "err.h"
#include "identity.h"
#include "key-pin.h"

#define MAX_PINS 65536
#define CERT_FILE_MAX (1u << 20)

/* Everything reload() replaces; immutable once built. */
typedef struct pinset {
    GHashTable *by_key;   /* "<kind>:<hex>" -> pz_identity_rec* (borrowed from recs) */
    GPtrArray *recs;      /* pz_identity_rec* (owned) */
    pz_identities *dir;   /* peer directory, or NULL */
    char *cert_pem;       /* this node's certificate, or NULL */
    size_t cert_pem_len;
} pinset;

typedef struct key_pin {
    const pz_core *core;
    GMutex lock; /* guards the pointer set */
    pinset *set; /* g_atomic_rc_box */
} key_pin;

static void pinset_clear(gpointer p)
{
    pinset *s = p;
    if (s->by_key)
        g_hash_table_destroy(s->by_key);
    if (s->recs)
        g_ptr_array_free(s->recs, TRUE);
    pz_identities_free(s->dir);
    g_free(s->cert_pem);
}

static void pinset_unref(pinset *s)
{
    if (s)
        g_atomic_rc_box_release_full(s, pinset_clear);
}

static char *key_index(pz_identity_key kind, const uint8_t key[32])
{
    char hex[65];
    for (size_t i = 0; i < 32; i++)
        g_snprintf(hex + 2 * i, 3, "%02x", key[i]);
    return g_strdup_printf("%d:%s", (int)kind, hex);
}

/* "sha256//<base64>", the form operators paste (curl's pinnedpubkey). */
static void pin_text(const uint8_t key[32], const char *prefix, char *buf, size_t len)
{
    char *b64 = g_base64_encode(key, 32);
    g_snprintf(buf, len, "%s%s", prefix, b64);
    g_free(b64);
}

/* ------------------------------------------------------------------------ */
/* Settings. */

static int read_key32(const pz_core *core, const pz_conf *pin, const char *key, uint8_t out[32], int *has,
                      pz_err *err)
{
    const char *s = NULL;
    size_t got = 0;
    int rc = core->conf_string(pin, key, NULL, &s, err);
    if (rc || !s)
        return rc;
    rc = pz_identity_parse_key32(s, out, &got);
    if (rc == PZ_ERANGE)
        return core->error(core, err, PZ_ECONFIG, "%s: %s: expected 32 bytes in hex or base64, found %zu bytes",
                           core->conf_where(pin), key, got);
    if (rc)
        return core->error(core, err, PZ_ECONFIG,
                           "%s: %s: expected 32 bytes in hex or base64 (\"sha256//...\" also works), found \"%.40s\"",
                           core->conf_where(pin), key, s);
    *has = 1;
    return 0;
}

static int read_pin(const pz_core *core, const pz_conf *pin, pz_identity_rec *rec, pz_err *err)
{
    int rc = 0;
    const char *id = NULL, *type = NULL;
    const pz_conf *roles = NULL;

    memset(rec, 0, sizeof(*rec));
    if (core->conf_scalar(pin))
        return core->conf_error(pin, err, "expected a pin {node_id, spki_sha256 or tls_ed25519}, found a scalar");
    rc = core->conf_string(pin, "node_id", NULL, &id, err);
    if (rc)
        return rc;
    if (!id || !pz_identity_valid_node_id(id))
        return core->conf_error(pin, err, "node_id: expected a node id ([A-Za-z0-9._-], 1 to 64 bytes), found %s%.80s%s",
                                id ? "\"" : "", id ? id : "nothing", id ? "\"" : "");
    g_strlcpy(rec->node_id, id, sizeof(rec->node_id));
    rc = core->conf_string(pin, "node_type", NULL, &type, err);
    if (rc)
        return rc;
    if (type) {
        if (!pz_identity_valid_name(type, PZ_NODE_TYPE_MAX))
            return core->conf_error(pin, err, "node_type: expected a node type, found \"%.80s\"", type);
        g_strlcpy(rec->node_type, type, sizeof(rec->node_type));
    }
    rc = core->conf_list(pin, "roles", &roles, err);
    if (rc)
        return rc;
    for (size_t i = 0; roles && i < core->conf_len(roles); i++) {
        const pz_conf *item = core->conf_at(roles, i, NULL);
        const char *r = core->conf_scalar(item);
        int arc = r ? pz_identity_rec_add_role(rec, r) : PZ_EINVAL;
        if (arc == PZ_ERANGE)
            return core->conf_error(item, err, "too many roles: at most %d", PZ_AUTH_MAX_ROLES);
        if (arc)
            return core->conf_error(item, err, "expected a role ([A-Za-z0-9._:-], 1 to %d bytes)", PZ_AUTH_ROLE_MAX);
    }
    rc = read_key32(core, pin, "spki_sha256", rec->spki_sha256, &rec->has_spki_sha256, err);
    if (rc)
        return rc;
    rc = read_key32(core, pin, "tls_ed25519", rec->tls_ed25519, &rec->has_tls_ed25519, err);
    if (rc)
        return rc;
    if (!rec->has_spki_sha256 && !rec->has_tls_ed25519)
        return core->conf_error(pin, err, "pin for %s has no key: give spki_sha256 or tls_ed25519", id);
    g_snprintf(rec->source, sizeof(rec->source), "key-pin %s", core->conf_where(pin));
    return 0;
}

static int index_pin(const pz_core *core, const pz_conf *where, pinset *s, pz_identity_rec *rec,
                     pz_identity_key kind, const uint8_t key[32], pz_err *err)
{
    char *k = key_index(kind, key);
    const pz_identity_rec *other = g_hash_table_lookup(s->by_key, k);
    if (other) {
        g_free(k);
        return core->conf_error(where, err, "the same key is pinned for %s and %s (a key identifies one node)",
                                other->node_id, rec->node_id);
    }
    g_hash_table_insert(s->by_key, k, rec);
    return 0;
}

static int read_cert_pem(const pz_core *core, const char *path, char **pem, size_t *pem_len, uint8_t spki[32],
                         pz_err *err)
{
    int rc = 0;
    gnutls_datum_t raw = {NULL, 0}, out = {NULL, 0}, der = {NULL, 0};
    gnutls_x509_crt_t crt = NULL;
    uint8_t ed[32];
    int is_ed = 0;
    pz_err local;

    pz_err_init(&local);
    int grc = gnutls_load_file(path, &raw);
    if (grc < 0) {
        rc = core->error(core, err, PZ_EIO, "%s: cannot read this node's certificate: %s", path,
                         gnutls_strerror(grc));
        goto out;
    }
    if (raw.size > CERT_FILE_MAX || gnutls_x509_crt_init(&crt) < 0) {
        rc = core->error(core, err, PZ_EINVAL, "%s: too large or out of memory", path);
        goto out;
    }
    grc = gnutls_x509_crt_import(crt, &raw, GNUTLS_X509_FMT_PEM);
    if (grc < 0)
        grc = gnutls_x509_crt_import(crt, &raw, GNUTLS_X509_FMT_DER);
    if (grc >= 0)
        grc = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &out);
    if (grc >= 0)
        grc = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &der);
    if (grc < 0) {
        rc = core->error(core, err, PZ_EINVAL, "%s: not a certificate in PEM or DER: %s", path,
                         gnutls_strerror(grc));
        goto out;
    }
    rc = pz_identity_cert_keys(der.data, der.size, spki, ed, &is_ed, &local);
    if (rc) {
        rc = core->error(core, err, rc, "%s: %s", path, pz_err_msg(&local));
        goto out;
    }
    *pem = g_memdup2(out.data, out.size);
    *pem_len = out.size;
out:
    pz_err_clear(&local);
    gnutls_free(der.data);
    gnutls_free(out.data);
    gnutls_free(raw.data);
    if (crt)
        gnutls_x509_crt_deinit(crt);
    return rc;
}

static int read_settings(const pz_core *core, const pz_conf *conf, pinset **out, pz_err *err)
{
    int rc = 0;
    pinset *s = g_atomic_rc_box_new0(pinset);
    const pz_conf *pins = NULL;
    const char *directory = NULL, *cert_file = NULL;

    s->by_key = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    s->recs = g_ptr_array_new_with_free_func(g_free);
    if (!conf) {
        rc = core->error(core, err, PZ_ECONFIG, "key-pin: needs a config with pins or directory");
        goto out;
    }
    rc = core->conf_list(conf, "pins", &pins, err);
    if (rc)
        goto out;
    rc = core->conf_string(conf, "directory", NULL, &directory, err);
    if (rc)
        goto out;
    rc = core->conf_string(conf, "cert_file", NULL, &cert_file, err);
    if (rc)
        goto out;
    size_t n = pins ? core->conf_len(pins) : 0;
    if (n > MAX_PINS) {
        rc = core->conf_error(pins, err, "at most %d pins (use a peer directory)", MAX_PINS);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const pz_conf *pin = core->conf_at(pins, i, NULL);
        pz_identity_rec *rec = g_new0(pz_identity_rec, 1);
        g_ptr_array_add(s->recs, rec);
        rc = read_pin(core, pin, rec, err);
        if (rc)
            goto out;
        if (rec->has_spki_sha256) {
            rc = index_pin(core, pin, s, rec, PZ_IDKEY_SPKI_SHA256, rec->spki_sha256, err);
            if (rc)
                goto out;
        }
        if (rec->has_tls_ed25519) {
            rc = index_pin(core, pin, s, rec, PZ_IDKEY_TLS_ED25519, rec->tls_ed25519, err);
            if (rc)
                goto out;
        }
    }
    if (directory) {
        pz_err local;
        pz_err_init(&local);
        rc = pz_identities_new(&s->dir, &local);
        if (rc == 0)
            rc = pz_identities_load_directory(s->dir, directory, &local);
        if (rc)
            core->error(core, err, rc, "%s: key-pin: %s", core->conf_where(conf), pz_err_msg(&local));
        pz_err_clear(&local);
        if (rc)
            goto out;
    }
    if (n == 0 && !directory) {
        rc = core->error(core, err, PZ_ECONFIG, "%s: key-pin: no pins: set pins or directory",
                         core->conf_where(conf));
        goto out;
    }
    if (cert_file) {
        uint8_t spki[32];
        char pin[64];
        rc = read_cert_pem(core, cert_file, &s->cert_pem, &s->cert_pem_len, spki, err);
        if (rc)
            goto out;
        pin_text(spki, "sha256//", pin, sizeof(pin));
        core->log(core, PZ_LOG_INFO, "this node's certificate %s has spki_sha256 %s", cert_file, pin);
    }
    *out = s;
    s = NULL;
out:
    pinset_unref(s);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* The provider. */

static void kp_destroy(void *state)
{
    key_pin *st = state;
    if (!st)
        return;
    pinset_unref(st->set);
    g_mutex_clear(&st->lock);
    g_free(st);
}

static int kp_create(const pz_core *core, const pz_conf *conf, void **state, pz_err *err)
{
    int rc = 0;
    key_pin *st = g_new0(key_pin, 1);
    st->core = core;
    g_mutex_init(&st->lock);
    rc = read_settings(core, conf, &st->set, err);
    if (rc)
        goto out;
    *state = st;
    st = NULL;
out:
    kp_destroy(st);
    return rc;
}

static int kp_reload(void *state, const pz_conf *conf, pz_err *err)
{
    key_pin *st = state;
    pinset *s = NULL;
    int rc = read_settings(st->core, conf, &s, err);
    if (rc)
        return rc;
    g_mutex_lock(&st->lock);
    pinset *old = st->set;
    st->set = s;
    g_mutex_unlock(&st->lock);
    pinset_unref(old);
    return 0;
}

static pinset *acquire(key_pin *st)
{
    g_mutex_lock(&st->lock);
    pinset *s = g_atomic_rc_box_acquire(st->set);
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

/* The pinned identity for KEY of KIND, from configuration or the
 * directory; 1 found, 0 not, -1 when both name different nodes. */
static int find(const pinset *s, pz_identity_key kind, const uint8_t key[32], pz_identity_rec *out)
{
    char *k = key_index(kind, key);
    const pz_identity_rec *c = g_hash_table_lookup(s->by_key, k);
    g_free(k);
    pz_identity_rec d;
    int in_dir = s->dir && pz_identities_lookup_key(s->dir, kind, key, &d) == 0;
    if (c && in_dir && strcmp(c->node_id, d.node_id))
        return -1;
    if (c) {
        *out = *c;
        if (in_dir) {
            /* The directory completes a configured pin for the same node. */
            if (!out->node_type[0])
                g_strlcpy(out->node_type, d.node_type, sizeof(out->node_type));
            for (size_t i = 0; i < d.n_roles; i++)
                (void)pz_identity_rec_add_role(out, d.roles[i]);
            if (!out->has_sign_pub && d.has_sign_pub) {
                memcpy(out->sign_pub, d.sign_pub, 32);
                out->has_sign_pub = 1;
            }
            if (!out->has_e2e_pub && d.has_e2e_pub) {
                memcpy(out->e2e_pub, d.e2e_pub, 32);
                out->has_e2e_pub = 1;
            }
        }
        return 1;
    }
    if (in_dir) {
        *out = d;
        return 1;
    }
    return 0;
}

/* The node-keys extension (core/certval.h) of the certificate DER into
 * SIGN and E2E: 1 when present, non-critical and well-formed, else 0. The
 * peer proved in the handshake that it holds the key of this certificate,
 * and the handshake covers the certificate, so with no CA these keys are
 * the pinned key holder's own statement, good enough to check its RPC
 * signatures; a pin's or the directory's keys take precedence. */
static int cert_node_keys(const uint8_t *der, size_t len, uint8_t sign[32], uint8_t e2e[32])
{
    int ok = 0;
    gnutls_x509_crt_t crt = NULL;
    gnutls_datum_t d = {(unsigned char *)der, (unsigned)len};
    uint8_t ext[128];
    size_t sz = sizeof(ext);
    unsigned critical = 0;
    if (len == 0 || len > CERT_FILE_MAX || gnutls_x509_crt_init(&crt) < 0)
        return 0;
    if (gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_DER) >= 0 &&
        gnutls_x509_crt_get_extension_by_oid(crt, PZ_NODE_KEYS_OID, 0, ext, &sz, &critical) >= 0 && !critical &&
        pz_node_keys_ext_decode(ext, sz, sign, e2e) == 0)
        ok = 1;
    gnutls_x509_crt_deinit(crt);
    return ok;
}

static int kp_authenticate(void *state, const pz_auth_credentials *cred, pz_auth_result *out, pz_err *err)
{
    key_pin *st = state;
    pinset *s = NULL;
    uint8_t spki[32], ed[32];
    int is_ed = 0;
    pz_identity_rec rec;
    pz_err local;

    if (!cred || !out)
        return st->core->error(st->core, err, PZ_EINVAL, "key-pin: no credentials");
    if (cred->n_certs == 0 || !cred->cert_der || !cred->cert_der_len || !cred->cert_der[0]) {
        out->verdict = PZ_AUTH_ABSTAIN;
        return 0;
    }
    pz_err_init(&local);
    s = acquire(st);
    if (pz_identity_cert_keys(cred->cert_der[0], cred->cert_der_len[0], spki, ed, &is_ed, &local)) {
        deny(out, KEY_PIN_DENY_MALFORMED, "peer certificate unreadable: %s", pz_err_msg(&local));
        goto out;
    }
    int found = find(s, PZ_IDKEY_SPKI_SHA256, spki, &rec);
    if (found == 0 && is_ed)
        found = find(s, PZ_IDKEY_TLS_ED25519, ed, &rec);
    if (found < 0) {
        deny(out, KEY_PIN_DENY_AMBIGUOUS, "key is pinned for two different nodes (configuration and directory)");
        goto out;
    }
    if (found == 0) {
        char pin[64];
        pin_text(spki, "sha256//", pin, sizeof(pin));
        deny(out, KEY_PIN_DENY_NOT_PINNED, "key %s is not pinned", pin);
        goto out;
    }
    out->verdict = PZ_AUTH_ALLOW;
    g_strlcpy(out->node_id, rec.node_id, sizeof(out->node_id));
    g_strlcpy(out->node_type, rec.node_type, sizeof(out->node_type));
    out->n_roles = rec.n_roles < PZ_AUTH_MAX_ROLES ? rec.n_roles : PZ_AUTH_MAX_ROLES;
    for (size_t i = 0; i < out->n_roles; i++)
        g_strlcpy(out->roles[i], rec.roles[i], sizeof(out->roles[i]));
    if (rec.has_sign_pub) {
        memcpy(out->sign_pub, rec.sign_pub, 32);
        out->has_sign_pub = 1;
    }
    if (rec.has_e2e_pub) {
        memcpy(out->e2e_pub, rec.e2e_pub, 32);
        out->has_e2e_pub = 1;
    }
    uint8_t csign[32], ce2e[32];
    if ((!out->has_sign_pub || !out->has_e2e_pub) &&
        cert_node_keys(cred->cert_der[0], cred->cert_der_len[0], csign, ce2e)) {
        if (!out->has_sign_pub) {
            memcpy(out->sign_pub, csign, 32);
            out->has_sign_pub = 1;
        }
        if (!out->has_e2e_pub) {
            memcpy(out->e2e_pub, ce2e, 32);
            out->has_e2e_pub = 1;
        }
    }
out:
    if (out->verdict == PZ_AUTH_DENY && st->core->metric_add)
        st->core->metric_add(st->core, "denials_total",
                             out->reason_code == KEY_PIN_DENY_NOT_PINNED ? "not_pinned"
                             : out->reason_code == KEY_PIN_DENY_AMBIGUOUS ? "ambiguous"
                                                                          : "malformed",
                             1);
    pz_err_clear(&local);
    pinset_unref(s);
    return 0;
}

static int kp_generate(void *state, const uint8_t *channel_binding, size_t channel_binding_len, uint8_t *buf,
                       size_t *len, pz_err *err)
{
    int rc = 0;
    key_pin *st = state;
    pinset *s = acquire(st);
    (void)channel_binding;
    (void)channel_binding_len;

    if (!len) {
        rc = st->core->error(st->core, err, PZ_EINVAL, "key-pin: no length");
        goto out;
    }
    if (!s->cert_pem) {
        rc = st->core->error(st->core, err, PZ_ENOTSUP, "key-pin: no cert_file configured");
        goto out;
    }
    if (!buf || *len < s->cert_pem_len) {
        *len = s->cert_pem_len;
        rc = PZ_ERANGE;
        goto out;
    }
    memcpy(buf, s->cert_pem, s->cert_pem_len);
    *len = s->cert_pem_len;
out:
    pinset_unref(s);
    return rc;
}

static const char *const *kp_methods(void *state)
{
    static const char *const methods[] = {"key-pin", NULL};
    (void)state;
    return methods;
}

static const pz_auth_provider provider = {
    .struct_size = sizeof(pz_auth_provider),
    .create = kp_create,
    .destroy = kp_destroy,
    .authenticate_peer = kp_authenticate,
    .generate_credentials = kp_generate,
    .supported_methods = kp_methods,
    .reload = kp_reload,
};

static int kp_init(const pz_core *core, pz_err *err)
{
    /* SHA-256 comes from libgcrypt, which the core has initialised; this
     * only checks the version. */
    if (!gcry_check_version(GCRYPT_VERSION))
        return core->error(core, err, PZ_ECRYPTO, "key-pin: libgcrypt older than %s", GCRYPT_VERSION);
    return 0;
}

static const pz_conf_key schema[] = {
    {"pins", PZ_CONF_LIST, "[]", "pinned peers: {node_id, spki_sha256 | tls_ed25519, node_type?, roles?}"},
    {"directory", PZ_CONF_STRING, "", "peer directory file with spki_sha256 / tls_ed25519 per peer"},
    {"cert_file", PZ_CONF_STRING, "", "this node's certificate, presented by generate_credentials"},
    {NULL, 0, NULL, NULL},
};

static const pz_plugin_descriptor descriptor = {
    PZ_PLUGIN_DESCRIPTOR_INIT,
    .name = "key-pin",
    .version = PACKAGE_VERSION,
    .description = "peer authentication by pinned public key (SHA-256 of SPKI or Ed25519), no CA",
    .kind = PZ_KIND_AUTH,
    .provider = &provider,
    .init = kp_init,
    .config_schema = schema,
};

PZ_PLUGIN_EXPORT const pz_plugin_descriptor *pz_plugin_entry_v1(void)
{
    return &descriptor;
}
