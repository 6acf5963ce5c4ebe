/* plugins/tls/creds.c — the `tls` transport's configuration, read into a
 * refcounted credential set that reload() swaps whole. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <gnutls/x509.h>

#include "tls_int.h"

#define MAX_FILES 8

/* The value node of KEY in MAP for messages (NULL when absent). */
static const pz_conf *child(const pz_core *core, const pz_conf *map, const char *key)
{
    if (!map)
        return NULL;
    size_t n = core->conf_len(map);
    for (size_t i = 0; i < n; i++) {
        const char *k = NULL;
        const pz_conf *node = core->conf_at(map, i, &k);
        if (k && !strcmp(k, key))
            return node;
    }
    return NULL;
}

/* Report a problem with KEY of CONF, at the value when there is one. */
static int key_error(const pz_core *core, const pz_conf *conf, const char *key, pz_err *err, int code,
                     const char *fmt, ...) PZ_PRINTF(6, 7);
static int key_error(const pz_core *core, const pz_conf *conf, const char *key, pz_err *err, int code,
                     const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    const pz_conf *node = child(core, conf, key);
    const pz_conf *at = node ? node : conf;
    if (at) {
        if (code == PZ_ECONFIG)
            return core->conf_error(at, err, "%s", msg);
        /* A file problem: keep its own code, still say where it came from. */
        return core->error(core, err, code, "%s: %s: %s", core->conf_where(at), key, msg);
    }
    return core->error(core, err, code, "tls: %s: %s", key, msg);
}

/* Read KEY as one path or a list of paths into PATHS (borrowed from the
 * configuration). *N is 0 when absent. */
static int read_paths(const pz_core *core, const pz_conf *conf, const char *key, const char **paths, size_t *n,
                      pz_err *err)
{
    *n = 0;
    if (!conf || !core->conf_has(conf, key))
        return 0;
    const pz_conf *node = child(core, conf, key);
    if (node && core->conf_len(node) > 0) {
        const pz_conf *list = NULL;
        int rc = core->conf_list(conf, key, &list, err);
        if (rc != 0)
            return rc;
        size_t len = core->conf_len(list);
        if (len > MAX_FILES)
            return core->conf_error(list, err, "%zu files listed; at most %d", len, MAX_FILES);
        for (size_t i = 0; i < len; i++) {
            const pz_conf *e = core->conf_at(list, i, NULL);
            const char *s = e ? core->conf_scalar(e) : NULL;
            if (!s || !*s)
                return core->conf_error(e ? e : list, err, "expected a file path");
            paths[(*n)++] = s;
        }
        return 0;
    }
    const char *s = NULL;
    int rc = core->conf_string(conf, key, NULL, &s, err);
    if (rc != 0)
        return rc;
    if (!s || !*s)
        return key_error(core, conf, key, err, PZ_ECONFIG, "expected a file path, found an empty string");
    paths[(*n)++] = s;
    return 0;
}

static int read_settings(const pz_core *core, const pz_conf *conf, pz_tls_creds *cr, pz_err *err)
{
    int rc;
    rc = core->conf_duration(conf, "handshake_timeout", 10ull * 1000000000ull, &cr->handshake_timeout_ns, err);
    if (rc != 0)
        return rc;
    if (cr->handshake_timeout_ns < 100ull * 1000000ull || cr->handshake_timeout_ns > 300ull * 1000000000ull)
        return key_error(core, conf, "handshake_timeout", err, PZ_ECONFIG,
                         "handshake deadline out of range; expected 100ms to 5m");
    rc = core->conf_int(conf, "max_pending_handshakes", 256, 1, 1000000, &cr->max_pending, err);
    if (rc != 0)
        return rc;
    rc = core->conf_bool(conf, "session_tickets", 1, &cr->tickets, err);
    if (rc != 0)
        return rc;
    rc = core->conf_duration(conf, "ticket_lifetime", 6ull * 3600 * 1000000000ull, &cr->ticket_lifetime_ns, err);
    if (rc != 0)
        return rc;
    if (cr->ticket_lifetime_ns < 1000000000ull || cr->ticket_lifetime_ns > 7ull * 24 * 3600 * 1000000000ull)
        return key_error(core, conf, "ticket_lifetime", err, PZ_ECONFIG,
                         "ticket lifetime out of range; expected 1s to 7d (RFC 8446 caps tickets at 7 days)");
    rc = core->conf_duration(conf, "ticket_key_rotation", 24ull * 3600 * 1000000000ull, &cr->ticket_rotation_ns,
                             err);
    if (rc != 0)
        return rc;
    if (cr->ticket_rotation_ns < 1000000000ull)
        return key_error(core, conf, "ticket_key_rotation", err, PZ_ECONFIG,
                         "ticket key rotation interval too short; expected at least 1s");
    rc = core->conf_bool(conf, "require_extended_master_secret", 1, &cr->require_ems, err);
    if (rc != 0)
        return rc;
    rc = core->conf_bool(conf, "verified_chain_cache", 1, &cr->vcache_on, err);
    if (rc != 0)
        return rc;
    return 0;
}

static int key_file_private(const pz_core *core, const pz_conf *conf, const char *path, pz_err *err)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return key_error(core, conf, "key", err, PZ_ENOENT, "cannot read key file %s: %s", path, strerror(errno));
    if (sb.st_mode & 0077)
        return key_error(core, conf, "key", err, PZ_EPERM,
                         "key file %s is accessible by group or others (mode %04o); run chmod 600 %s", path,
                         (unsigned)(sb.st_mode & 07777), path);
    return 0;
}

static int load_own(const pz_core *core, const pz_conf *conf, pz_tls_creds *cr, const char *cert,
                    const char *key, pz_err *err)
{
    int rc = key_file_private(core, conf, key, err);
    if (rc != 0)
        return rc;
    int g = gnutls_certificate_set_x509_key_file2(cr->x509, cert, key, GNUTLS_X509_FMT_PEM, NULL, 0);
    if (g < 0)
        g = gnutls_certificate_set_x509_key_file2(cr->x509, cert, key, GNUTLS_X509_FMT_DER, NULL, 0);
    if (g < 0)
        return key_error(core, conf, "cert", err, g == GNUTLS_E_FILE_ERROR ? PZ_EIO : PZ_ECRYPTO,
                         "cannot load certificate %s with key %s: %s", cert, key, gnutls_strerror(g));
    return 0;
}

/* Our own chain must pass the policy we apply to peers: a node presenting
 * a certificate its peers refuse is a configuration error worth stopping
 * for. */
static int check_own(const pz_core *core, const pz_conf *conf, pz_tls_creds *cr, const char *cert, pz_err *err)
{
    gnutls_x509_crt_t *list = NULL;
    unsigned n = 0;
    int rc = 0;
    gnutls_datum_t der[4];
    size_t nder = 0;
    int g = gnutls_certificate_get_x509_crt(cr->x509, 0, &list, &n);
    if (g < 0 || n == 0)
        return key_error(core, conf, "cert", err, PZ_ECRYPTO, "cannot read back certificate %s: %s", cert,
                         gnutls_strerror(g));
    for (unsigned i = 0; i < n && nder < 4; i++) {
        if (gnutls_x509_crt_export2(list[i], GNUTLS_X509_FMT_DER, &der[nder]) < 0) {
            rc = key_error(core, conf, "cert", err, PZ_ECRYPTO, "cannot encode certificate %s", cert);
            goto out;
        }
        nder++;
    }
    const uint8_t *ders[4];
    size_t lens[4];
    for (size_t i = 0; i < nder; i++) {
        ders[i] = der[i].data;
        lens[i] = der[i].size;
    }
    pz_certval_result res;
    uint64_t now_s = core->realtime_ns(core) / 1000000000ull;
    char pin[64] = "?";
    (void)pz_tls_spki_pin(ders[0], lens[0], pin, sizeof(pin));
    if (!cr->cv) {
        /* verify: auth-chain without a CA: peers pin this key. */
        char why[192];
        memset(&res, 0, sizeof(res));
        (void)pz__certval_identity(list[0], 0, &res);
        if (pz_tls_leaf_key_ok(cr, ders[0], lens[0], why, sizeof(why)) != 0) {
            rc = key_error(core, conf, "cert", err, PZ_ECRYPTO, "this node's certificate %s: %s", cert, why);
            goto out;
        }
        core->log(core, PZ_LOG_INFO, "presenting certificate of node %s (type %s, no CA) from %s; spki_sha256 %s",
                  res.node_id[0] ? res.node_id : "?", res.node_type[0] ? res.node_type : "?", cert, pin);
        goto out;
    }
    rc = pz_certval_verify(cr->cv, ders, lens, nder, now_s, PZ_CERTVAL_CLIENT | PZ_CERTVAL_SERVER, &res);
    if (rc != 0) {
        rc = key_error(core, conf, "cert", err, rc, "cannot check certificate %s", cert);
        goto out;
    }
    if (!res.valid && cr->verify == PZ_TLS_VERIFY_AUTH_CHAIN)
        core->log(core, PZ_LOG_NOTICE,
                  "this node's certificate %s is not accepted by ca (%s: %s): peers must pin its key, spki_sha256 %s",
                  cert, pz_certval_reason_name(res.reason), res.reason_text, pin);
    else if (!res.valid)
        rc = key_error(core, conf, "cert", err, PZ_ECRYPTO,
                       "this node's certificate %s is refused by the validation policy (%s: %s); issue a new "
                       "one with `prozsec cert issue`",
                       cert, pz_certval_reason_name(res.reason), res.reason_text);
    else
        core->log(core, PZ_LOG_INFO, "presenting certificate of node %s (type %s) from %s; spki_sha256 %s",
                  res.node_id, res.node_type, cert, pin);
out:
    for (size_t i = 0; i < nder; i++)
        gnutls_free(der[i].data);
    for (unsigned i = 0; i < n; i++)
        gnutls_x509_crt_deinit(list[i]);
    gnutls_free(list);
    return rc;
}

int pz_tls_creds_new(const pz_core *core, const pz_conf *conf, pz_tls_creds **out, pz_err *err)
{
    int rc = 0;
    const char *cert = NULL, *key = NULL;
    const char *cas[MAX_FILES], *crls[MAX_FILES];
    size_t n_ca = 0, n_crl = 0;
    int64_t rsa_bits = 0, ecdsa_bits = 0;
    *out = NULL;
    pz_tls_creds *cr = calloc(1, sizeof(*cr));
    if (!cr)
        return core->error(core, err, PZ_ENOMEM, "tls: out of memory");
    atomic_init(&cr->refs, 1);
    cr->core = core;
    pthread_mutex_init(&cr->vlock, NULL);

    if (!conf) {
        rc = core->error(core, err, PZ_ECONFIG,
                         "tls: no configuration; the transport needs at least ca (or verify: auth-chain), and "
                         "cert and key to listen");
        goto out;
    }
    const char *verify = NULL;
    rc = core->conf_string(conf, "verify", "ca", &verify, err);
    if (rc != 0)
        goto out;
    if (!strcmp(verify, "ca")) {
        cr->verify = PZ_TLS_VERIFY_CA;
    } else if (!strcmp(verify, "auth-chain")) {
        cr->verify = PZ_TLS_VERIFY_AUTH_CHAIN;
    } else {
        rc = key_error(core, conf, "verify", err, PZ_ECONFIG,
                       "expected ca (this transport validates peer chains against ca) or auth-chain (the auth "
                       "chain decides, e.g. key-pin), found \"%.40s\"",
                       verify);
        goto out;
    }
    rc = read_settings(core, conf, cr, err);
    if (rc != 0)
        goto out;
    rc = pz_tls_profiles_parse(core, conf, &cr->profiles, err);
    if (rc != 0)
        goto out;
    rc = core->conf_string(conf, "cert", NULL, &cert, err);
    if (rc == 0)
        rc = core->conf_string(conf, "key", NULL, &key, err);
    if (rc == 0)
        rc = read_paths(core, conf, "ca", cas, &n_ca, err);
    if (rc == 0)
        rc = read_paths(core, conf, "crl", crls, &n_crl, err);
    if (rc == 0)
        rc = core->conf_int(conf, "min_rsa_bits", 2048, 2048, 16384, &rsa_bits, err);
    if (rc == 0)
        rc = core->conf_int(conf, "min_ecdsa_bits", 384, 384, 521, &ecdsa_bits, err);
    if (rc != 0)
        goto out;
    cr->min_rsa_bits = (unsigned)rsa_bits;
    cr->min_ecdsa_bits = (unsigned)ecdsa_bits;
    if (!cert != !key) {
        rc = core->conf_error(conf, err, "missing %s: the tls transport needs cert (this node's certificate) and "
                              "key (its private key) together; only a transport that never listens may have "
                              "neither (a client without a certificate)",
                              !cert ? "cert" : "key");
        goto out;
    }
    if (n_ca == 0 && cr->verify == PZ_TLS_VERIFY_CA) {
        rc = core->conf_error(conf, err, "missing ca: the tls transport needs ca (the trusted CA certificates), "
                              "unless verify: auth-chain leaves peer chains to the auth chain (key-pin)");
        goto out;
    }
    if (n_ca == 0 && n_crl > 0) {
        rc = key_error(core, conf, "crl", err, PZ_ECONFIG, "a CRL needs ca (the CA that signed it)");
        goto out;
    }
    if (n_ca > 0) {
        pz_certval_opts opts = {
            .ca_files = cas,
            .n_ca_files = n_ca,
            .crl_files = crls,
            .n_crl_files = n_crl,
            .min_rsa_bits = (unsigned)rsa_bits,
            .min_ecdsa_bits = (unsigned)ecdsa_bits,
        };
        pz_err cverr;
        memset(&cverr, 0, sizeof(cverr));
        rc = pz_certval_new(&opts, &cr->cv, &cverr);
        if (rc != 0)
            rc = key_error(core, conf, n_crl && strstr(pz_err_msg(&cverr), "CRL") ? "crl" : "ca", err,
                           rc == PZ_EINVAL ? PZ_ECONFIG : rc, "%s", pz_err_msg(&cverr));
        pz_err_clear(&cverr);
        if (rc != 0)
            goto out;
    }

    int g = gnutls_certificate_allocate_credentials(&cr->x509);
    if (g < 0) {
        cr->x509 = NULL;
        rc = core->error(core, err, PZ_ENOMEM, "tls: %s", gnutls_strerror(g));
        goto out;
    }
    if (cert) {
        rc = load_own(core, conf, cr, cert, key, err);
        if (rc != 0)
            goto out;
        rc = check_own(core, conf, cr, cert, err);
        if (rc != 0)
            goto out;
        cr->has_cert = 1;
    } else {
        core->log(core, PZ_LOG_INFO, "no cert and key: this transport only dials, presenting no certificate");
    }
    if (cr->verify == PZ_TLS_VERIFY_AUTH_CHAIN)
        core->log(core, PZ_LOG_INFO, "verify: auth-chain: peer chains %s are left to the auth chain (flagged "
                                     "not CA-validated)",
                  cr->cv ? "that ca does not accept" : "(no ca)");
    gnutls_certificate_set_verify_function(cr->x509, pz_tls_verify_cb);

    cr->request = pz_tls_profiles_request_mode(&cr->profiles);
    rc = pz_tls_priority_string(&cr->profiles, cr->priority, sizeof(cr->priority));
    if (rc != 0) {
        rc = core->error(core, err, PZ_EINTERNAL, "tls: priority string too long");
        goto out;
    }
    const char *where = NULL;
    g = gnutls_priority_init(&cr->prio, cr->priority, &where);
    if (g < 0) {
        cr->prio = NULL;
        rc = core->error(core, err, PZ_EINTERNAL, "tls: GnuTLS refused priority string at \"%s\": %s",
                         where ? where : "?", gnutls_strerror(g));
        goto out;
    }
    *out = cr;
    cr = NULL;
out:
    pz_tls_creds_unref(cr);
    return rc;
}

void pz_tls_creds_ref(pz_tls_creds *cr)
{
    atomic_fetch_add_explicit(&cr->refs, 1, memory_order_relaxed);
}

void pz_tls_creds_unref(pz_tls_creds *cr)
{
    if (!cr)
        return;
    if (atomic_fetch_sub_explicit(&cr->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (cr->prio)
        gnutls_priority_deinit(cr->prio);
    if (cr->x509)
        gnutls_certificate_free_credentials(cr->x509);
    pz_certval_free(cr->cv);
    pthread_mutex_destroy(&cr->vlock);
    free(cr);
}

static size_t vslot(const uint8_t sha[32])
{
    return ((size_t)sha[0] << 8 | sha[1]) % PZ_TLS_VCACHE;
}

int pz_tls_vcache_get(pz_tls_creds *cr, const uint8_t sha[32], uint64_t now_s, char *node_id, char *node_type)
{
    int hit = 0;
    pthread_mutex_lock(&cr->vlock);
    pz_tls_vcache_entry *e = &cr->vcache[vslot(sha)];
    if (e->used && !memcmp(e->chain_sha256, sha, 32) && now_s < e->not_after_s) {
        memcpy(node_id, e->node_id, sizeof(e->node_id));
        memcpy(node_type, e->node_type, sizeof(e->node_type));
        hit = 1;
    }
    pthread_mutex_unlock(&cr->vlock);
    return hit;
}

void pz_tls_vcache_put(pz_tls_creds *cr, const uint8_t sha[32], uint64_t not_after_s, const char *node_id,
                       const char *node_type)
{
    pthread_mutex_lock(&cr->vlock);
    pz_tls_vcache_entry *e = &cr->vcache[vslot(sha)];
    memcpy(e->chain_sha256, sha, 32);
    e->not_after_s = not_after_s;
    snprintf(e->node_id, sizeof(e->node_id), "%s", node_id);
    snprintf(e->node_type, sizeof(e->node_type), "%s", node_type);
    e->used = 1;
    pthread_mutex_unlock(&cr->vlock);
}
