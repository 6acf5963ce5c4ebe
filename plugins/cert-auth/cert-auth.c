/* plugins/cert-auth/cert-auth.c — the seed's CertificateAuthProvider: a
 * peer is who its certificate says when the certificate validation service
 * (core/certval.h) accepts its chain, its node id and type pass the allow
 * and deny lists, and the peer directory agrees. See
 * docs/plugins/cert-auth.md. */
#include "config.h"

#include <string.h>

#include <gcrypt.h>
#include <glib.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include <prozsec/auth.h>
#include <prozsec/plugin.h>

#include "cert-auth.h"
#include "certval.h"
#include "err.h"
#include "identity.h"

/* Limits on list sizes read from configuration. */
#define MAX_FILES 64
#define MAX_NAMES 4096
#define CERT_FILE_MAX (1u << 20)

/* Everything reload() replaces. Immutable once built; shared by reference
 * with authentications in progress. */
typedef struct policy {
    char **allow_ids, **allow_types; /* NULL: no allow list */
    char **deny_ids, **deny_types;   /* NULL: empty */
    pz_identities *ids;              /* peer directory, or NULL */
    int require_directory;
    char *cert_pem; /* this node's certificate (PEM) or NULL */
    size_t cert_pem_len;
} policy;

typedef struct cert_auth {
    const pz_core *core;
    pz_certval *cv;
    GMutex lock; /* guards pol (the pointer, not what it points to) */
    policy *pol; /* g_atomic_rc_box */
} cert_auth;

static void policy_clear(gpointer p)
{
    policy *pol = p;
    g_strfreev(pol->allow_ids);
    g_strfreev(pol->allow_types);
    g_strfreev(pol->deny_ids);
    g_strfreev(pol->deny_types);
    pz_identities_free(pol->ids);
    g_free(pol->cert_pem);
}

static void policy_unref(policy *pol)
{
    if (pol)
        g_atomic_rc_box_release_full(pol, policy_clear);
}

/* ------------------------------------------------------------------------ */
/* Settings. */

/* A string or a list of strings at KEY (FILE_KEY: its one-string form). */
static int read_paths(const pz_core *core, const pz_conf *conf, const char *list_key, const char *one_key,
                      GPtrArray *out, pz_err *err)
{
    int rc = 0;
    const char *one = NULL;
    const pz_conf *list = NULL;

    rc = core->conf_string(conf, one_key, NULL, &one, err);
    if (rc)
        return rc;
    if (one) {
        if (!*one)
            return core->error(core, err, PZ_ECONFIG, "%s: %s: expected a file path, found \"\"",
                               core->conf_where(conf), one_key);
        g_ptr_array_add(out, g_strdup(one));
    }
    rc = core->conf_list(conf, list_key, &list, err);
    if (rc)
        return rc;
    size_t n = list ? core->conf_len(list) : 0;
    if (out->len + n > MAX_FILES)
        return core->conf_error(list, err, "at most %d files", MAX_FILES);
    for (size_t i = 0; i < n; i++) {
        const pz_conf *item = core->conf_at(list, i, NULL);
        const char *s = core->conf_scalar(item);
        if (!s || !*s)
            return core->conf_error(item, err, "expected a file path");
        g_ptr_array_add(out, g_strdup(s));
    }
    return 0;
}

/* The list of names KEY of MAP (may be absent: *OUT = NULL), each checked
 * with VALID. */
static int read_names(const pz_core *core, const pz_conf *map, const char *key, int (*valid)(const char *),
                      const char *what, char ***out, pz_err *err)
{
    int rc = 0;
    const pz_conf *list = NULL;
    GPtrArray *names = NULL;

    *out = NULL;
    if (!map)
        return 0;
    rc = core->conf_list(map, key, &list, err);
    if (rc || !list)
        return rc;
    size_t n = core->conf_len(list);
    if (n > MAX_NAMES)
        return core->conf_error(list, err, "at most %d entries", MAX_NAMES);
    names = g_ptr_array_new_with_free_func(g_free);
    for (size_t i = 0; i < n; i++) {
        const pz_conf *item = core->conf_at(list, i, NULL);
        const char *s = core->conf_scalar(item);
        if (!s || !valid(s)) {
            rc = core->conf_error(item, err, "expected %s, found %s%.80s%s", what, s ? "\"" : "",
                                  s ? s : "a list or map", s ? "\"" : "");
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

static int valid_type(const char *s)
{
    return pz_node_type_valid(s);
}

/* Read this node's certificate PATH (PEM or DER) as PEM. */
static int read_cert_pem(const pz_core *core, const char *path, char **pem, size_t *pem_len, pz_err *err)
{
    int rc = 0;
    gnutls_datum_t raw = {NULL, 0}, out = {NULL, 0};
    gnutls_x509_crt_t crt = NULL;

    int grc = gnutls_load_file(path, &raw);
    if (grc < 0) {
        rc = core->error(core, err, PZ_EIO, "%s: cannot read this node's certificate: %s", path,
                         gnutls_strerror(grc));
        goto out;
    }
    if (raw.size > CERT_FILE_MAX) {
        rc = core->error(core, err, PZ_EINVAL, "%s: larger than 1 MiB", path);
        goto out;
    }
    if (gnutls_x509_crt_init(&crt) < 0) {
        rc = core->error(core, err, PZ_ENOMEM, "out of memory");
        goto out;
    }
    grc = gnutls_x509_crt_import(crt, &raw, GNUTLS_X509_FMT_PEM);
    if (grc < 0)
        grc = gnutls_x509_crt_import(crt, &raw, GNUTLS_X509_FMT_DER);
    if (grc >= 0)
        grc = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &out);
    if (grc < 0) {
        rc = core->error(core, err, PZ_EINVAL, "%s: not a certificate in PEM or DER: %s", path,
                         gnutls_strerror(grc));
        goto out;
    }
    *pem = g_memdup2(out.data, out.size);
    *pem_len = out.size;
out:
    gnutls_free(out.data);
    gnutls_free(raw.data);
    if (crt)
        gnutls_x509_crt_deinit(crt);
    return rc;
}

/* Parse CONF into a new policy *POL and certval options (paths into
 * CA/CRL, owned by the caller). */
static int read_settings(const pz_core *core, const pz_conf *conf, policy **pol_out, GPtrArray *ca,
                         GPtrArray *crl, pz_certval_opts *opts, pz_err *err)
{
    int rc = 0;
    policy *pol = g_atomic_rc_box_new0(policy);
    const pz_conf *allow = NULL, *deny = NULL;
    const char *cert_file = NULL, *directory = NULL;
    int64_t max_depth = 0, min_rsa = 0;

    if (!conf) {
        rc = core->error(core, err, PZ_ECONFIG, "cert-auth: needs a config with ca_file (the trusted CA)");
        goto out;
    }
    rc = read_paths(core, conf, "ca_files", "ca_file", ca, err);
    if (rc)
        goto out;
    if (ca->len == 0) {
        rc = core->error(core, err, PZ_ECONFIG, "%s: cert-auth: no trusted CA: set ca_file (or ca_files)",
                         core->conf_where(conf));
        goto out;
    }
    rc = read_paths(core, conf, "crl_files", "crl_file", crl, err);
    if (rc)
        goto out;
    rc = core->conf_string(conf, "cert_file", NULL, &cert_file, err);
    if (rc)
        goto out;
    rc = core->conf_string(conf, "directory", NULL, &directory, err);
    if (rc)
        goto out;
    rc = core->conf_bool(conf, "require_directory", 0, &pol->require_directory, err);
    if (rc)
        goto out;
    rc = core->conf_int(conf, "max_depth", 4, 1, 16, &max_depth, err);
    if (rc)
        goto out;
    rc = core->conf_int(conf, "min_rsa_bits", 2048, 2048, 16384, &min_rsa, err);
    if (rc)
        goto out;
    rc = core->conf_map(conf, "allow", &allow, err);
    if (rc)
        goto out;
    rc = core->conf_map(conf, "deny", &deny, err);
    if (rc)
        goto out;
    rc = read_names(core, allow, "node_ids", pz_node_id_valid, "a node id", &pol->allow_ids, err);
    if (rc)
        goto out;
    rc = read_names(core, allow, "node_types", valid_type, "a node type", &pol->allow_types, err);
    if (rc)
        goto out;
    rc = read_names(core, deny, "node_ids", pz_node_id_valid, "a node id", &pol->deny_ids, err);
    if (rc)
        goto out;
    rc = read_names(core, deny, "node_types", valid_type, "a node type", &pol->deny_types, err);
    if (rc)
        goto out;
    if (allow && !pol->allow_ids && !pol->allow_types) {
        rc = core->conf_error(allow, err, "an allow list needs node_ids or node_types (omit allow to allow every "
                                          "node the CA vouches for)");
        goto out;
    }
    if (pol->require_directory && !directory) {
        rc = core->conf_error(conf, err, "require_directory: true needs directory (a peer directory file)");
        goto out;
    }
    if (directory) {
        pz_err local;
        pz_err_init(&local);
        if (pz_identities_new(&pol->ids, &local) == 0)
            rc = pz_identities_load_directory(pol->ids, directory, &local);
        else
            rc = PZ_ENOMEM;
        if (rc)
            core->error(core, err, rc, "%s: cert-auth: %s", core->conf_where(conf), pz_err_msg(&local));
        pz_err_clear(&local);
        if (rc)
            goto out;
    }
    if (cert_file) {
        rc = read_cert_pem(core, cert_file, &pol->cert_pem, &pol->cert_pem_len, err);
        if (rc)
            goto out;
    }
    memset(opts, 0, sizeof(*opts));
    opts->ca_files = (const char *const *)ca->pdata;
    opts->n_ca_files = ca->len;
    opts->crl_files = (const char *const *)crl->pdata;
    opts->n_crl_files = crl->len;
    opts->max_depth = (unsigned)max_depth;
    opts->min_rsa_bits = (unsigned)min_rsa;
    *pol_out = pol;
    pol = NULL;
out:
    policy_unref(pol);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* The provider. */

static void ca_destroy(void *state)
{
    cert_auth *st = state;
    if (!st)
        return;
    pz_certval_free(st->cv);
    policy_unref(st->pol);
    g_mutex_clear(&st->lock);
    g_free(st);
}

static int ca_create(const pz_core *core, const pz_conf *conf, void **state, pz_err *err)
{
    int rc = 0;
    cert_auth *st = g_new0(cert_auth, 1);
    GPtrArray *ca = g_ptr_array_new_with_free_func(g_free);
    GPtrArray *crl = g_ptr_array_new_with_free_func(g_free);
    pz_certval_opts opts;
    pz_err local;

    pz_err_init(&local);
    st->core = core;
    g_mutex_init(&st->lock);
    rc = read_settings(core, conf, &st->pol, ca, crl, &opts, err);
    if (rc)
        goto out;
    rc = pz_certval_new(&opts, &st->cv, &local);
    if (rc) {
        core->error(core, err, rc, "%s: cert-auth: %s", core->conf_where(conf), pz_err_msg(&local));
        goto out;
    }
    *state = st;
    st = NULL;
out:
    pz_err_clear(&local);
    g_ptr_array_free(ca, TRUE);
    g_ptr_array_free(crl, TRUE);
    ca_destroy(st);
    return rc;
}

static int ca_reload(void *state, const pz_conf *conf, pz_err *err)
{
    int rc = 0;
    cert_auth *st = state;
    policy *pol = NULL;
    GPtrArray *ca = g_ptr_array_new_with_free_func(g_free);
    GPtrArray *crl = g_ptr_array_new_with_free_func(g_free);
    pz_certval_opts opts;
    pz_err local;

    pz_err_init(&local);
    rc = read_settings(st->core, conf, &pol, ca, crl, &opts, err);
    if (rc)
        goto out;
    rc = pz_certval_reload(st->cv, &opts, &local);
    if (rc) {
        st->core->error(st->core, err, rc, "cert-auth: %s", pz_err_msg(&local));
        goto out;
    }
    g_mutex_lock(&st->lock);
    policy *old = st->pol;
    st->pol = pol;
    g_mutex_unlock(&st->lock);
    pol = old;
out:
    policy_unref(pol);
    pz_err_clear(&local);
    g_ptr_array_free(ca, TRUE);
    g_ptr_array_free(crl, TRUE);
    return rc;
}

static policy *acquire(cert_auth *st)
{
    g_mutex_lock(&st->lock);
    policy *pol = g_atomic_rc_box_acquire(st->pol);
    g_mutex_unlock(&st->lock);
    return pol;
}

static int in_names(char *const *names, const char *s)
{
    for (size_t i = 0; names && names[i]; i++)
        if (!strcmp(names[i], s))
            return 1;
    return 0;
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

static int ca_authenticate(void *state, const pz_auth_credentials *cred, pz_auth_result *out, pz_err *err)
{
    int rc = 0;
    cert_auth *st = state;
    policy *pol = NULL;
    pz_certval_result cvr;

    if (!cred || !out)
        return st->core->error(st->core, err, PZ_EINVAL, "cert-auth: no credentials");
    if (cred->n_certs == 0 || !cred->cert_der || !cred->cert_der_len) {
        out->verdict = PZ_AUTH_ABSTAIN;
        return 0;
    }
    pol = acquire(st);
    if (PZ_AUTH_CRED_HAS(cred, flags) && (cred->flags & PZ_AUTH_CRED_UNVERIFIED_CHAIN)) {
        /* The transport let this chain through without a CA (verify:
         * auth-chain): what it says is the peer's own claim. cert-auth
         * vouches only for chains the transport validated. */
        deny(out, CERT_AUTH_DENY_UNVERIFIED_CHAIN, "certificate chain not validated by the transport (%s)",
             PZ_AUTH_CRED_HAS(cred, chain_note) && cred->chain_note ? cred->chain_note : "verify: auth-chain");
        goto out;
    }
    uint64_t now_s = st->core->realtime_ns(st->core) / UINT64_C(1000000000);
    /* Outbound, the peer is the server we dialled; inbound, a client. */
    int purpose = cred->expected_node_id ? PZ_CERTVAL_SERVER : PZ_CERTVAL_CLIENT;
    rc = pz_certval_verify(st->cv, cred->cert_der, cred->cert_der_len, cred->n_certs, now_s, purpose, &cvr);
    if (rc) {
        rc = st->core->error(st->core, err, rc, "cert-auth: certificate validation failed: %s", pz_strerror(rc));
        goto out;
    }
    if (!cvr.valid) {
        deny(out, (int)cvr.reason, "certificate %s: %s", pz_certval_reason_name(cvr.reason), cvr.reason_text);
        goto out;
    }
    if (in_names(pol->deny_ids, cvr.node_id)) {
        deny(out, CERT_AUTH_DENY_LISTED_ID, "node %s is on the deny list", cvr.node_id);
        goto out;
    }
    if (in_names(pol->deny_types, cvr.node_type)) {
        deny(out, CERT_AUTH_DENY_LISTED_TYPE, "node type %s is on the deny list (node %s)", cvr.node_type,
             cvr.node_id);
        goto out;
    }
    if ((pol->allow_ids || pol->allow_types) && !in_names(pol->allow_ids, cvr.node_id) &&
        !in_names(pol->allow_types, cvr.node_type)) {
        deny(out, CERT_AUTH_DENY_NOT_ALLOWED, "node %s (type %s) is not on the allow list", cvr.node_id,
             cvr.node_type);
        goto out;
    }
    memset(out->roles, 0, sizeof(out->roles));
    out->n_roles = 0;
    if (pol->ids) {
        pz_identity_rec rec;
        if (pz_identities_lookup(pol->ids, cvr.node_id, &rec) == 0) {
            if (rec.node_type[0] && strcmp(rec.node_type, cvr.node_type)) {
                deny(out, CERT_AUTH_DENY_DIRECTORY, "node %s: certificate says type %s, the peer directory %s",
                     cvr.node_id, cvr.node_type, rec.node_type);
                goto out;
            }
            if (cvr.has_keys && ((rec.has_sign_pub && memcmp(rec.sign_pub, cvr.sign_pub, 32)) ||
                                 (rec.has_e2e_pub && memcmp(rec.e2e_pub, cvr.e2e_pub, 32)))) {
                deny(out, CERT_AUTH_DENY_DIRECTORY,
                     "node %s: the certificate's public keys differ from the peer directory's", cvr.node_id);
                goto out;
            }
            for (size_t i = 0; i < rec.n_roles && i < PZ_AUTH_MAX_ROLES; i++)
                g_strlcpy(out->roles[i], rec.roles[i], sizeof(out->roles[i]));
            out->n_roles = rec.n_roles < PZ_AUTH_MAX_ROLES ? rec.n_roles : PZ_AUTH_MAX_ROLES;
        } else if (pol->require_directory) {
            deny(out, CERT_AUTH_DENY_NOT_IN_DIRECTORY, "node %s is not in the peer directory", cvr.node_id);
            goto out;
        }
    }
    out->verdict = PZ_AUTH_ALLOW;
    g_strlcpy(out->node_id, cvr.node_id, sizeof(out->node_id));
    g_strlcpy(out->node_type, cvr.node_type, sizeof(out->node_type));
    if (cvr.has_keys) {
        memcpy(out->sign_pub, cvr.sign_pub, 32);
        memcpy(out->e2e_pub, cvr.e2e_pub, 32);
        out->has_sign_pub = out->has_e2e_pub = 1;
    }
out:
    if (out->verdict == PZ_AUTH_DENY && st->core->metric_add)
        st->core->metric_add(st->core, "denials_total",
                             out->reason_code < 100 ? pz_certval_reason_name((pz_certval_reason)out->reason_code)
                             : out->reason_code == CERT_AUTH_DENY_UNVERIFIED_CHAIN ? "unverified_chain"
                                                                                    : "policy",
                             1);
    policy_unref(pol);
    return rc;
}

static int ca_generate(void *state, const uint8_t *channel_binding, size_t channel_binding_len, uint8_t *buf,
                       size_t *len, pz_err *err)
{
    int rc = 0;
    cert_auth *st = state;
    policy *pol = acquire(st);
    (void)channel_binding;
    (void)channel_binding_len;

    if (!len) {
        rc = st->core->error(st->core, err, PZ_EINVAL, "cert-auth: no length");
        goto out;
    }
    if (!pol->cert_pem) {
        rc = st->core->error(st->core, err, PZ_ENOTSUP,
                             "cert-auth: no cert_file configured: this node presents no certificate");
        goto out;
    }
    if (!buf || *len < pol->cert_pem_len) {
        *len = pol->cert_pem_len;
        rc = PZ_ERANGE;
        goto out;
    }
    memcpy(buf, pol->cert_pem, pol->cert_pem_len);
    *len = pol->cert_pem_len;
out:
    policy_unref(pol);
    return rc;
}

static const char *const *ca_methods(void *state)
{
    static const char *const methods[] = {"certificate", NULL};
    (void)state;
    return methods;
}

static const pz_auth_provider provider = {
    .struct_size = sizeof(pz_auth_provider),
    .create = ca_create,
    .destroy = ca_destroy,
    .authenticate_peer = ca_authenticate,
    .generate_credentials = ca_generate,
    .supported_methods = ca_methods,
    .reload = ca_reload,
};

static int ca_init(const pz_core *core, pz_err *err)
{
    /* pz_identities uses libgcrypt for hashing; the core has initialised
     * it, this only checks the version. */
    if (!gcry_check_version(GCRYPT_VERSION))
        return core->error(core, err, PZ_ECRYPTO, "cert-auth: libgcrypt older than %s", GCRYPT_VERSION);
    return 0;
}

static const pz_conf_key schema[] = {
    {"ca_file", PZ_CONF_STRING, NULL, "trusted CA certificate(s), PEM or DER (or ca_files: a list)"},
    {"ca_files", PZ_CONF_LIST, "[]", "more trusted CA files"},
    {"crl_file", PZ_CONF_STRING, "", "CRL signed by a trusted CA (or crl_files: a list)"},
    {"crl_files", PZ_CONF_LIST, "[]", "more CRL files"},
    {"cert_file", PZ_CONF_STRING, "", "this node's certificate, presented by generate_credentials"},
    {"directory", PZ_CONF_STRING, "", "peer directory file: roles (and type/keys to check) per node id"},
    {"require_directory", PZ_CONF_BOOL, "false", "refuse nodes the peer directory does not list"},
    {"allow.node_ids", PZ_CONF_LIST, "", "allow only these node ids (or the types below)"},
    {"allow.node_types", PZ_CONF_LIST, "", "allow only these node types (or the ids above)"},
    {"deny.node_ids", PZ_CONF_LIST, "[]", "refuse these node ids (wins over allow)"},
    {"deny.node_types", PZ_CONF_LIST, "[]", "refuse these node types (wins over allow)"},
    {"max_depth", PZ_CONF_INT, "4", "most certificates a peer may present"},
    {"min_rsa_bits", PZ_CONF_INT, "2048", "smallest RSA key accepted (at least 2048)"},
    {NULL, 0, NULL, NULL},
};

static const pz_plugin_descriptor descriptor = {
    PZ_PLUGIN_DESCRIPTOR_INIT,
    .name = "cert-auth",
    .version = PACKAGE_VERSION,
    .description = "peer authentication by X.509 node certificate (CA, CRL, allow/deny lists, peer directory)",
    .kind = PZ_KIND_AUTH,
    .provider = &provider,
    .init = ca_init,
    .config_schema = schema,
};

PZ_PLUGIN_EXPORT const pz_plugin_descriptor *pz_plugin_entry_v1(void)
{
    return &descriptor;
}
