/* core/pki.c — the node PKI: `prozsec ca init`, `cert issue`, `cert revoke`,
 * `cert show`, and reading a node certificate's identity. See core/pki.h
 * and docs/pki.md. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <yaml.h>

#include "certval.h"
#include "nodekeys.h"
#include "pki.h"

#define PKI_CERT_FILE_MAX (1u << 20)
#define PKI_DEFAULT_ORG "ProzChain"
#define PKI_DEFAULT_CA_DAYS 3650u
#define PKI_DEFAULT_NODE_DAYS 365u
#define PKI_DEFAULT_CRL_DAYS 30u
#define PKI_MAX_DAYS 36500u
#define PKI_BACKDATE_S 300 /* notBefore this far in the past: tolerates clock skew between nodes */

/* ca.yaml */
typedef struct ca_settings {
    char org[65];
    pz_pki_key key;
    unsigned ca_days;
    pz_pki_key node_key;
    unsigned node_days;
    unsigned crl_days;
    uint64_t crl_number;
} ca_settings;

static const char *const key_names[] = {"ecdsa-p384", "ecdsa-p521", "rsa-3072", "rsa-4096"};

int pz_pki_key_parse(const char *name, pz_pki_key *out, pz_err *err)
{
    for (size_t i = 0; name && i < G_N_ELEMENTS(key_names); i++)
        if (!strcmp(name, key_names[i])) {
            *out = (pz_pki_key)i;
            return 0;
        }
    return pz_err_set(err, PZ_EINVAL, "key type \"%s\" unknown: use ecdsa-p384, ecdsa-p521, rsa-3072 or rsa-4096",
                      name ? name : "");
}

const char *pz_pki_key_name(pz_pki_key key)
{
    return (unsigned)key < G_N_ELEMENTS(key_names) ? key_names[key] : "unknown";
}

/* ---- validation of operator-supplied strings ---------------------------- */

/* 1 when S is 1..MAX bytes of UTF-8 without control characters. */
static int text_ok(const char *s, size_t max)
{
    if (!s || !*s || strlen(s) > max || !g_utf8_validate(s, -1, NULL))
        return 0;
    for (const char *p = s; *p; p = g_utf8_next_char(p))
        if (g_unichar_iscntrl(g_utf8_get_char(p)))
            return 0;
    return 1;
}

static int days_ok(unsigned days, const char *what, pz_err *err)
{
    if (days < 1 || days > PKI_MAX_DAYS)
        return pz_err_set(err, PZ_EINVAL, "%s: %u days is out of range (1..%u)", what, days, PKI_MAX_DAYS);
    return 0;
}

/* ---- files: staging directory, all-or-nothing commit -------------------- */

typedef struct stage {
    char *dest; /* destination directory */
    char *dir;  /* private staging directory inside DEST */
} stage;

static int errno_code(int e)
{
    return e == ENOENT ? PZ_ENOENT : e == EEXIST ? PZ_EEXIST : e == EACCES || e == EPERM ? PZ_EPERM : PZ_EIO;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int stage_open(const char *dest, stage *st, pz_err *err)
{
    memset(st, 0, sizeof(*st));
    if (g_mkdir_with_parents(dest, 0700) < 0) {
        int e = errno;
        return pz_err_set(err, errno_code(e), "%s: cannot create directory: %s", dest, g_strerror(e));
    }
    st->dest = g_strdup(dest);
    st->dir = g_build_filename(dest, ".pzstage.XXXXXX", NULL);
    if (!g_mkdtemp_full(st->dir, 0700)) {
        int e = errno;
        g_free(st->dest);
        g_free(st->dir);
        memset(st, 0, sizeof(*st));
        return pz_err_set(err, errno_code(e), "%s: cannot create a staging directory: %s", dest, g_strerror(e));
    }
    return 0;
}

/* Remove the staging directory and whatever is left in it. */
static void stage_discard(stage *st)
{
    if (!st->dir)
        return;
    GDir *d = g_dir_open(st->dir, 0, NULL);
    if (d) {
        const char *name;
        while ((name = g_dir_read_name(d))) {
            g_autofree char *p = g_build_filename(st->dir, name, NULL);
            g_unlink(p);
        }
        g_dir_close(d);
    }
    g_rmdir(st->dir);
    g_free(st->dir);
    g_free(st->dest);
    memset(st, 0, sizeof(*st));
}

/* Write NAME in the staging directory with MODE, fsynced. */
static int stage_write(stage *st, const char *name, const void *data, size_t len, mode_t mode, pz_err *err)
{
    int rc = 0;
    g_autofree char *path = g_build_filename(st->dir, name, NULL);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0) {
        int e = errno;
        return pz_err_set(err, errno_code(e), "%s: %s", path, g_strerror(e));
    }
    if (fchmod(fd, mode) < 0)
        goto fail;
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, (const char *)data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            goto fail;
        off += (size_t)w;
    }
    if (fsync(fd) < 0)
        goto fail;
    if (close(fd) < 0) {
        fd = -1;
        goto fail;
    }
    return 0;
fail:
    rc = pz_err_set(err, PZ_EIO, "%s: %s", path, g_strerror(errno));
    if (fd >= 0)
        close(fd);
    return rc;
}

/* Move every file of the staging directory into DEST. Without FORCE no
 * existing file is replaced (link + unlink fails with EEXIST) and a failure
 * half-way removes what this call moved. Discards the stage in all cases. */
static int stage_commit(stage *st, int force, pz_err *err)
{
    int rc = 0;
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    GDir *d = g_dir_open(st->dir, 0, NULL);
    size_t done = 0;

    if (!d) {
        rc = pz_err_set(err, PZ_EIO, "%s: cannot list the staging directory", st->dir);
        goto out;
    }
    const char *name;
    while ((name = g_dir_read_name(d)))
        g_ptr_array_add(names, g_strdup(name));
    g_dir_close(d);

    if (!force)
        for (size_t i = 0; i < names->len; i++) {
            g_autofree char *to = g_build_filename(st->dest, (char *)names->pdata[i], NULL);
            struct stat sb;
            if (lstat(to, &sb) == 0) {
                rc = pz_err_set(err, PZ_EEXIST, "%s exists (use --force to replace it)", to);
                goto out;
            }
        }
    for (; done < names->len; done++) {
        g_autofree char *from = g_build_filename(st->dir, (char *)names->pdata[done], NULL);
        g_autofree char *to = g_build_filename(st->dest, (char *)names->pdata[done], NULL);
        int r = force ? rename(from, to) : link(from, to);
        if (r < 0) {
            int e = errno;
            rc = pz_err_set(err, errno_code(e), "%s: %s%s", to, g_strerror(e),
                            e == EEXIST ? " (use --force to replace it)" : "");
            goto out;
        }
        if (!force)
            g_unlink(from);
    }
    if (fsync_dir(st->dest) < 0) {
        rc = pz_err_set(err, PZ_EIO, "%s: fsync: %s", st->dest, g_strerror(errno));
        goto out;
    }
out:
    if (rc < 0 && !force)
        for (size_t i = 0; i < done; i++) {
            g_autofree char *to = g_build_filename(st->dest, (char *)names->pdata[i], NULL);
            g_unlink(to);
        }
    g_ptr_array_unref(names);
    stage_discard(st);
    return rc;
}

/* Read PATH (at most MAX bytes) into *DATA (g_free). */
static int read_file(const char *path, size_t max, gnutls_datum_t *out, pz_err *err)
{
    char *data = NULL;
    gsize len = 0;
    GError *gerr = NULL;
    if (!g_file_get_contents(path, &data, &len, &gerr)) {
        int code = g_error_matches(gerr, G_FILE_ERROR, G_FILE_ERROR_NOENT) ? PZ_ENOENT : PZ_EIO;
        pz_err_set(err, code, "%s", gerr->message);
        g_error_free(gerr);
        return code;
    }
    if (len > max) {
        g_free(data);
        return pz_err_set(err, PZ_EINVAL, "%s: larger than %zu bytes", path, max);
    }
    out->data = (unsigned char *)data;
    out->size = (unsigned)len;
    return 0;
}

static void wipe_free(gnutls_datum_t *d)
{
    if (d->data) {
        gnutls_memset(d->data, 0, d->size);
        g_free(d->data);
    }
    d->data = NULL;
    d->size = 0;
}

/* ---- ca.yaml ------------------------------------------------------------ */

static char *settings_yaml(const ca_settings *s)
{
    GString *o = g_string_new("# prozsec CA settings, written by `prozsec ca init`. `prozsec cert issue`\n"
                              "# takes its defaults from node_key and node_days; `prozsec cert revoke`\n"
                              "# bumps crl_number (the number of the current ca.crl).\n");
    g_string_append(o, "org: \"");
    for (const char *p = s->org; *p; p++) {
        if (*p == '"' || *p == '\\')
            g_string_append_c(o, '\\');
        g_string_append_c(o, *p);
    }
    g_string_append_printf(o,
                           "\"\nkey: %s\nca_days: %u\nnode_key: %s\nnode_days: %u\ncrl_days: %u\n"
                           "crl_number: %" G_GUINT64_FORMAT "\n",
                           pz_pki_key_name(s->key), s->ca_days, pz_pki_key_name(s->node_key), s->node_days,
                           s->crl_days, (guint64)s->crl_number);
    return g_string_free(o, FALSE);
}

static int parse_uint(const char *path, const char *key, const char *v, uint64_t max, uint64_t *out, pz_err *err)
{
    guint64 n = 0;
    if (!g_ascii_string_to_unsigned(v, 10, 1, max, &n, NULL))
        return pz_err_set(err, PZ_ECONFIG, "%s: %s: expected a whole number 1..%" G_GUINT64_FORMAT ", got \"%s\"",
                          path, key, (guint64)max, v);
    *out = n;
    return 0;
}

static int settings_load(const char *ca_dir, ca_settings *s, pz_err *err)
{
    int rc = 0;
    g_autofree char *path = g_build_filename(ca_dir, "ca.yaml", NULL);
    gnutls_datum_t data = {NULL, 0};
    yaml_parser_t parser;
    yaml_document_t doc;
    int have_parser = 0, have_doc = 0;
    unsigned seen = 0;

    memset(s, 0, sizeof(*s));
    if ((rc = read_file(path, 65536, &data, err)) < 0)
        goto out;
    if (!yaml_parser_initialize(&parser)) {
        rc = pz_err_set(err, PZ_ENOMEM, "%s: cannot create a YAML parser", path);
        goto out;
    }
    have_parser = 1;
    yaml_parser_set_input_string(&parser, data.data, data.size);
    if (!yaml_parser_load(&parser, &doc)) {
        rc = pz_err_set(err, PZ_ECONFIG, "%s:%zu:%zu: %s", path, parser.problem_mark.line + 1,
                        parser.problem_mark.column + 1, parser.problem ? parser.problem : "YAML error");
        goto out;
    }
    have_doc = 1;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root || root->type != YAML_MAPPING_NODE) {
        rc = pz_err_set(err, PZ_ECONFIG, "%s: expected a mapping of CA settings", path);
        goto out;
    }
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(&doc, p->key);
        yaml_node_t *v = yaml_document_get_node(&doc, p->value);
        if (!k || !v || k->type != YAML_SCALAR_NODE || v->type != YAML_SCALAR_NODE) {
            rc = pz_err_set(err, PZ_ECONFIG, "%s:%zu:%zu: expected key: value", path,
                            (k ? k->start_mark.line : 0) + 1, (k ? k->start_mark.column : 0) + 1);
            goto out;
        }
        const char *key = (const char *)k->data.scalar.value;
        const char *val = (const char *)v->data.scalar.value;
        uint64_t n = 0;
        if (!strcmp(key, "org")) {
            if (!text_ok(val, 64)) {
                rc = pz_err_set(err, PZ_ECONFIG, "%s: org: expected 1..64 printable characters", path);
                goto out;
            }
            g_strlcpy(s->org, val, sizeof(s->org));
            seen |= 1;
        } else if (!strcmp(key, "key") || !strcmp(key, "node_key")) {
            pz_pki_key kt;
            if ((rc = pz_pki_key_parse(val, &kt, err)) < 0) {
                pz_err_prefix(err, "%s: %s", path, key);
                rc = PZ_ECONFIG;
                goto out;
            }
            if (key[0] == 'k')
                s->key = kt, seen |= 2;
            else
                s->node_key = kt, seen |= 4;
        } else if (!strcmp(key, "ca_days") || !strcmp(key, "node_days") || !strcmp(key, "crl_days")) {
            if ((rc = parse_uint(path, key, val, PKI_MAX_DAYS, &n, err)) < 0)
                goto out;
            if (key[1] == 'a')
                s->ca_days = (unsigned)n, seen |= 8;
            else if (key[0] == 'n')
                s->node_days = (unsigned)n, seen |= 16;
            else
                s->crl_days = (unsigned)n, seen |= 32;
        } else if (!strcmp(key, "crl_number")) {
            if ((rc = parse_uint(path, key, val, G_MAXINT64, &n, err)) < 0)
                goto out;
            s->crl_number = n;
            seen |= 64;
        } else {
            rc = pz_err_set(err, PZ_ECONFIG, "%s:%zu:%zu: unknown key \"%s\"", path, k->start_mark.line + 1,
                            k->start_mark.column + 1, key);
            goto out;
        }
    }
    if (seen != 127) {
        rc = pz_err_set(err, PZ_ECONFIG,
                        "%s: incomplete: org, key, ca_days, node_key, node_days, crl_days and crl_number are all needed",
                        path);
        goto out;
    }
out:
    if (have_doc)
        yaml_document_delete(&doc);
    if (have_parser)
        yaml_parser_delete(&parser);
    g_free(data.data);
    return rc;
}

/* ---- keys, serials, names ----------------------------------------------- */

static int key_generate(pz_pki_key kt, gnutls_x509_privkey_t *out, pz_err *err)
{
    gnutls_x509_privkey_t key = NULL;
    int grc = gnutls_x509_privkey_init(&key);
    if (grc < 0)
        return pz_err_set(err, PZ_ENOMEM, "cannot allocate a key");
    switch (kt) {
    case PZ_PKI_KEY_ECDSA_P384:
        grc = gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP384R1), 0);
        break;
    case PZ_PKI_KEY_ECDSA_P521:
        grc = gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP521R1), 0);
        break;
    case PZ_PKI_KEY_RSA_3072: grc = gnutls_x509_privkey_generate(key, GNUTLS_PK_RSA, 3072, 0); break;
    case PZ_PKI_KEY_RSA_4096: grc = gnutls_x509_privkey_generate(key, GNUTLS_PK_RSA, 4096, 0); break;
    default: grc = GNUTLS_E_INVALID_REQUEST; break;
    }
    if (grc < 0) {
        gnutls_x509_privkey_deinit(key);
        return pz_err_set(err, PZ_ECRYPTO, "generating a %s key failed: %s", pz_pki_key_name(kt), gnutls_strerror(grc));
    }
    *out = key;
    return 0;
}

/* The hash a signer with KEY uses: SHA-512 for P-521, else SHA-384. */
static gnutls_digest_algorithm_t signer_digest(gnutls_x509_privkey_t key)
{
    unsigned bits = 0;
    int pk = gnutls_x509_privkey_get_pk_algorithm2(key, &bits);
    return pk == GNUTLS_PK_ECDSA && bits >= 521 ? GNUTLS_DIG_SHA512 : GNUTLS_DIG_SHA384;
}

/* A random positive 128-bit serial, minimally DER-encoded (16 or 17 bytes
 * with a leading zero when the top bit is set, fewer if it starts with
 * zero bytes). */
static int make_serial(uint8_t out[17], size_t *len, pz_err *err)
{
    uint8_t r[16];
    if (gnutls_rnd(GNUTLS_RND_NONCE, r, sizeof(r)) < 0)
        return pz_err_set(err, PZ_ECRYPTO, "random number generator failed");
    size_t i = 0;
    while (i < sizeof(r) - 1 && r[i] == 0 && !(r[i + 1] & 0x80))
        i++;
    size_t n = 0;
    if (r[i] & 0x80)
        out[n++] = 0;
    memcpy(out + n, r + i, sizeof(r) - i);
    *len = n + sizeof(r) - i;
    return 0;
}

static int export_key_pem(gnutls_x509_privkey_t key, gnutls_datum_t *out, pz_err *err)
{
    gnutls_datum_t d = {NULL, 0};
    int grc = gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN, &d);
    if (grc < 0)
        return pz_err_set(err, PZ_ECRYPTO, "exporting a key failed: %s", gnutls_strerror(grc));
    /* Move into g_malloc memory so one wipe_free() handles both. */
    out->data = g_malloc(d.size);
    memcpy(out->data, d.data, d.size);
    out->size = d.size;
    gnutls_memset(d.data, 0, d.size);
    gnutls_free(d.data);
    return 0;
}

static int export_pem(int (*fn)(void *, gnutls_x509_crt_fmt_t, gnutls_datum_t *), void *obj, gnutls_datum_t *out,
                      pz_err *err)
{
    gnutls_datum_t d = {NULL, 0};
    int grc = fn(obj, GNUTLS_X509_FMT_PEM, &d);
    if (grc < 0)
        return pz_err_set(err, PZ_ECRYPTO, "PEM export failed: %s", gnutls_strerror(grc));
    out->data = g_memdup2(d.data, d.size);
    out->size = d.size;
    gnutls_free(d.data);
    return 0;
}

static int crt_export_pem(gnutls_x509_crt_t crt, gnutls_datum_t *out, pz_err *err)
{
    return export_pem((int (*)(void *, gnutls_x509_crt_fmt_t, gnutls_datum_t *))gnutls_x509_crt_export2, crt, out,
                      err);
}

static int crl_export_pem(gnutls_x509_crl_t crl, gnutls_datum_t *out, pz_err *err)
{
    return export_pem((int (*)(void *, gnutls_x509_crt_fmt_t, gnutls_datum_t *))gnutls_x509_crl_export2, crl, out,
                      err);
}

/* Check a GnuTLS call; on failure record WHAT and jump to out. */
#define GCHECK(call, what)                                                                                   \
    do {                                                                                                     \
        int grc_ = (call);                                                                                   \
        if (grc_ < 0) {                                                                                      \
            rc = pz_err_set(err, grc_ == GNUTLS_E_MEMORY_ERROR ? PZ_ENOMEM : PZ_ECRYPTO, "%s: %s", (what),   \
                            gnutls_strerror(grc_));                                                          \
            goto out;                                                                                        \
        }                                                                                                    \
    } while (0)

static int set_dn(gnutls_x509_crt_t crt, const char *oid, const char *value, pz_err *err)
{
    int rc = 0;
    GCHECK(gnutls_x509_crt_set_dn_by_oid(crt, oid, 0, value, (unsigned)strlen(value)), "setting the subject");
out:
    return rc;
}

/* ---- the CA ------------------------------------------------------------- */

/* Build a CRL of CA listing OLD's entries plus SERIAL (when LEN > 0). */
static int crl_build(gnutls_x509_crt_t ca, gnutls_x509_privkey_t cakey, gnutls_x509_crl_t old, const uint8_t *serial,
                     size_t serial_len, uint64_t number, int64_t now, unsigned crl_days, gnutls_datum_t *pem,
                     pz_err *err)
{
    int rc = 0;
    gnutls_x509_crl_t crl = NULL;
    uint8_t buf[64];
    size_t sz;

    GCHECK(gnutls_x509_crl_init(&crl), "CRL");
    GCHECK(gnutls_x509_crl_set_version(crl, 2), "CRL version");
    GCHECK(gnutls_x509_crl_set_this_update(crl, (time_t)now), "CRL thisUpdate");
    GCHECK(gnutls_x509_crl_set_next_update(crl, (time_t)(now + (int64_t)crl_days * 86400)), "CRL nextUpdate");
    for (int i = 0, n = old ? gnutls_x509_crl_get_crt_count(old) : 0; i < n; i++) {
        time_t t = 0;
        sz = sizeof(buf);
        GCHECK(gnutls_x509_crl_get_crt_serial(old, (unsigned)i, buf, &sz, &t), "reading the CRL");
        GCHECK(gnutls_x509_crl_set_crt_serial(crl, buf, sz, t), "CRL entry");
    }
    if (serial_len)
        GCHECK(gnutls_x509_crl_set_crt_serial(crl, serial, serial_len, (time_t)now), "CRL entry");
    uint8_t nr[8];
    for (int i = 0; i < 8; i++)
        nr[i] = (uint8_t)(number >> (56 - 8 * i));
    size_t skip = 0;
    while (skip < 7 && nr[skip] == 0 && !(nr[skip + 1] & 0x80))
        skip++;
    GCHECK(gnutls_x509_crl_set_number(crl, nr + skip, sizeof(nr) - skip), "CRL number");
    sz = sizeof(buf);
    if (gnutls_x509_crt_get_subject_key_id(ca, buf, &sz, NULL) >= 0)
        GCHECK(gnutls_x509_crl_set_authority_key_id(crl, buf, sz), "CRL authority key id");
    GCHECK(gnutls_x509_crl_sign2(crl, ca, cakey, signer_digest(cakey), 0), "signing the CRL");
    rc = crl_export_pem(crl, pem, err);
out:
    if (crl)
        gnutls_x509_crl_deinit(crl);
    return rc;
}

int pz_ca_init(const pz_ca_init_opts *o, uint64_t now_s, pz_err *err)
{
    int rc = 0;
    gnutls_x509_privkey_t key = NULL;
    gnutls_x509_crt_t crt = NULL;
    gnutls_datum_t key_pem = {NULL, 0}, crt_pem = {NULL, 0}, crl_pem = {NULL, 0};
    stage st = {NULL, NULL};
    char *yaml = NULL;
    ca_settings s;
    int64_t now = (int64_t)now_s;

    if (!o || !o->dir || !*o->dir)
        return pz_err_set(err, PZ_EINVAL, "ca init: no directory given");
    memset(&s, 0, sizeof(s));
    const char *org = o->org ? o->org : PKI_DEFAULT_ORG;
    if (!text_ok(org, 64))
        return pz_err_set(err, PZ_EINVAL, "--org: expected 1..64 printable characters");
    if ((unsigned)o->key >= G_N_ELEMENTS(key_names))
        return pz_err_set(err, PZ_EINVAL, "ca init: key type out of range");
    g_strlcpy(s.org, org, sizeof(s.org));
    s.key = o->key;
    s.ca_days = o->days ? o->days : PKI_DEFAULT_CA_DAYS;
    s.node_key = PZ_PKI_KEY_ECDSA_P384;
    s.node_days = o->node_days ? o->node_days : PKI_DEFAULT_NODE_DAYS;
    s.crl_days = PKI_DEFAULT_CRL_DAYS;
    s.crl_number = 1;
    if ((rc = days_ok(s.ca_days, "--days", err)) < 0 || (rc = days_ok(s.node_days, "node days", err)) < 0)
        return rc;
    if (!o->force) {
        static const char *const files[] = {"ca.crt", "ca.key", "ca.crl", "ca.yaml"};
        for (size_t i = 0; i < G_N_ELEMENTS(files); i++) {
            g_autofree char *p = g_build_filename(o->dir, files[i], NULL);
            if (g_file_test(p, G_FILE_TEST_EXISTS))
                return pz_err_set(err, PZ_EEXIST, "%s exists (use --force to replace the CA)", p);
        }
    }

    if ((rc = key_generate(s.key, &key, err)) < 0)
        goto out;
    uint8_t serial[17], kid[64];
    size_t serial_len = 0, kid_len = sizeof(kid);
    if ((rc = make_serial(serial, &serial_len, err)) < 0)
        goto out;
    GCHECK(gnutls_x509_privkey_get_key_id(key, GNUTLS_KEYID_USE_SHA1, kid, &kid_len), "key id");
    GCHECK(gnutls_x509_crt_init(&crt), "certificate");
    GCHECK(gnutls_x509_crt_set_version(crt, 3), "version");
    GCHECK(gnutls_x509_crt_set_serial(crt, serial, serial_len), "serial");
    GCHECK(gnutls_x509_crt_set_key(crt, key), "public key");
    if ((rc = set_dn(crt, GNUTLS_OID_X520_ORGANIZATION_NAME, s.org, err)) < 0)
        goto out;
    /* The key id in the CN keeps two CAs of one organisation apart. */
    char cn[64];
    g_snprintf(cn, sizeof(cn), "prozsec CA %02x%02x%02x%02x", kid[0], kid[1], kid[2], kid[3]);
    if ((rc = set_dn(crt, GNUTLS_OID_X520_COMMON_NAME, cn, err)) < 0)
        goto out;
    GCHECK(gnutls_x509_crt_set_activation_time(crt, (time_t)(now - PKI_BACKDATE_S)), "notBefore");
    GCHECK(gnutls_x509_crt_set_expiration_time(crt, (time_t)(now + (int64_t)s.ca_days * 86400)), "notAfter");
    GCHECK(gnutls_x509_crt_set_basic_constraints(crt, 1, 0), "basic constraints");
    GCHECK(gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN), "key usage");
    GCHECK(gnutls_x509_crt_set_subject_key_id(crt, kid, kid_len), "subject key id");
    GCHECK(gnutls_x509_crt_sign2(crt, crt, key, signer_digest(key), 0), "signing the CA certificate");

    if ((rc = crl_build(crt, key, NULL, NULL, 0, s.crl_number, now, s.crl_days, &crl_pem, err)) < 0 ||
        (rc = crt_export_pem(crt, &crt_pem, err)) < 0 || (rc = export_key_pem(key, &key_pem, err)) < 0)
        goto out;
    yaml = settings_yaml(&s);

    if ((rc = stage_open(o->dir, &st, err)) < 0)
        goto out;
    if ((rc = stage_write(&st, "ca.key", key_pem.data, key_pem.size, 0600, err)) < 0 ||
        (rc = stage_write(&st, "ca.crt", crt_pem.data, crt_pem.size, 0644, err)) < 0 ||
        (rc = stage_write(&st, "ca.crl", crl_pem.data, crl_pem.size, 0644, err)) < 0 ||
        (rc = stage_write(&st, "ca.yaml", yaml, strlen(yaml), 0644, err)) < 0)
        goto out;
    rc = stage_commit(&st, o->force, err);
out:
    stage_discard(&st);
    wipe_free(&key_pem);
    g_free(crt_pem.data);
    g_free(crl_pem.data);
    g_free(yaml);
    if (crt)
        gnutls_x509_crt_deinit(crt);
    if (key)
        gnutls_x509_privkey_deinit(key);
    return rc;
}

/* Load CA_DIR's certificate and key, checking they belong together and the
 * key file is private. */
static int ca_load(const char *ca_dir, gnutls_x509_crt_t *crt_out, gnutls_x509_privkey_t *key_out, pz_err *err)
{
    int rc = 0;
    g_autofree char *crt_path = g_build_filename(ca_dir, "ca.crt", NULL);
    g_autofree char *key_path = g_build_filename(ca_dir, "ca.key", NULL);
    gnutls_datum_t data = {NULL, 0};
    gnutls_x509_crt_t crt = NULL;
    gnutls_x509_privkey_t key = NULL;
    struct stat sb;

    if ((rc = read_file(crt_path, PKI_CERT_FILE_MAX, &data, err)) < 0)
        goto out;
    GCHECK(gnutls_x509_crt_init(&crt), "certificate");
    if (gnutls_x509_crt_import(crt, &data, GNUTLS_X509_FMT_PEM) < 0) {
        rc = pz_err_set(err, PZ_EINVAL, "%s: not a PEM certificate", crt_path);
        goto out;
    }
    g_free(data.data);
    data.data = NULL;
    if (stat(key_path, &sb) == 0 && (sb.st_mode & 077)) {
        rc = pz_err_set(err, PZ_EPERM, "%s: mode %03o lets others read the CA key; chmod 600 it", key_path,
                        (unsigned)(sb.st_mode & 0777));
        goto out;
    }
    if ((rc = read_file(key_path, 65536, &data, err)) < 0)
        goto out;
    GCHECK(gnutls_x509_privkey_init(&key), "key");
    if (gnutls_x509_privkey_import2(key, &data, GNUTLS_X509_FMT_PEM, NULL, 0) < 0) {
        rc = pz_err_set(err, PZ_EINVAL, "%s: not a PEM private key (encrypted keys are not supported)", key_path);
        goto out;
    }
    uint8_t a[64], b[64];
    size_t asz = sizeof(a), bsz = sizeof(b);
    GCHECK(gnutls_x509_crt_get_key_id(crt, GNUTLS_KEYID_USE_SHA256, a, &asz), "certificate key id");
    GCHECK(gnutls_x509_privkey_get_key_id(key, GNUTLS_KEYID_USE_SHA256, b, &bsz), "key id");
    if (asz != bsz || memcmp(a, b, asz)) {
        rc = pz_err_set(err, PZ_EINVAL, "%s does not belong to %s", key_path, crt_path);
        goto out;
    }
    *crt_out = crt;
    *key_out = key;
    crt = NULL;
    key = NULL;
out:
    wipe_free(&data);
    if (crt)
        gnutls_x509_crt_deinit(crt);
    if (key)
        gnutls_x509_privkey_deinit(key);
    return rc;
}

/* ---- node certificates -------------------------------------------------- */

/* Check O; NEED_CA: for pz_cert_issue (self-signing needs no CA). */
static int issue_opts_check(const pz_cert_issue_opts *o, int need_ca, pz_err *err)
{
    if (!o || !o->out_dir || !*o->out_dir || (need_ca && (!o->ca_dir || !*o->ca_dir)))
        return pz_err_set(err, PZ_EINVAL, need_ca ? "cert issue: --ca and --out are required"
                                                   : "cert self-signed: --out is required");
    if (!pz_node_id_valid(o->node_id))
        return pz_err_set(err, PZ_EINVAL,
                          "--node-id \"%s\": expected 1..64 characters of A-Z a-z 0-9 . _ -, not starting with . or -",
                          o->node_id ? o->node_id : "");
    if (!pz_node_type_valid(o->node_type))
        return pz_err_set(err, PZ_EINVAL, "--node-type \"%s\": expected 1..32 characters of a-z 0-9 _ -",
                          o->node_type ? o->node_type : "");
    if (o->country && !(strlen(o->country) == 2 && g_ascii_isupper(o->country[0]) && g_ascii_isupper(o->country[1])))
        return pz_err_set(err, PZ_EINVAL, "--country \"%s\": expected a two-letter code such as DE", o->country);
    if (o->state && !text_ok(o->state, 128))
        return pz_err_set(err, PZ_EINVAL, "--state: expected 1..128 printable characters");
    if (o->locality && !text_ok(o->locality, 128))
        return pz_err_set(err, PZ_EINVAL, "--locality: expected 1..128 printable characters");
    if (o->key_set && (unsigned)o->key >= G_N_ELEMENTS(key_names))
        return pz_err_set(err, PZ_EINVAL, "cert issue: key type out of range");
    if (o->days)
        return days_ok(o->days, "--days", err);
    return 0;
}

/* The SHA-256 of KEY's SubjectPublicKeyInfo (DER) into OUT: key-pin's pin. */
static int spki_sha256(gnutls_x509_crt_t crt, uint8_t out[32], pz_err *err)
{
    int rc = 0;
    gnutls_pubkey_t pub = NULL;
    gnutls_datum_t der = {NULL, 0};
    if (gnutls_pubkey_init(&pub) < 0)
        return pz_err_set(err, PZ_ENOMEM, "out of memory");
    if (gnutls_pubkey_import_x509(pub, crt, 0) < 0 || gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &der) < 0 ||
        gnutls_hash_fast(GNUTLS_DIG_SHA256, der.data, der.size, out) < 0)
        rc = pz_err_set(err, PZ_ECRYPTO, "cannot hash the certificate's public key");
    gnutls_free(der.data);
    gnutls_pubkey_deinit(pub);
    return rc;
}

/* Generate the node's keys and a node certificate per O into O->out_dir,
 * signed by CA/CAKEY, or by its own key when CA is NULL (self-signed, for
 * key-pin without a CA). ORG is the subject's O. SPKI, SIGN_PUB and E2E_PUB
 * (may be NULL) receive the pin and the embedded public keys. */
static int node_cert_write(const pz_cert_issue_opts *o, uint64_t now_s, pz_pki_key kt, unsigned days, const char *org,
                           gnutls_x509_crt_t ca, gnutls_x509_privkey_t cakey, uint8_t *spki, uint8_t *sign_out,
                           uint8_t *e2e_out, pz_err *err)
{
    int rc = 0;
    gnutls_x509_crt_t crt = NULL;
    gnutls_x509_privkey_t key = NULL;
    gnutls_datum_t key_pem = {NULL, 0}, crt_pem = {NULL, 0};
    stage st = {NULL, NULL};
    int64_t now = (int64_t)now_s;
    uint8_t sign_pub[32], e2e_pub[32];
    char *cn = NULL, *ou = NULL, *dns = NULL, *uri = NULL;

    if (!o->force) {
        static const char *const files[] = {"node.crt", "node.key"};
        for (size_t i = 0; i < G_N_ELEMENTS(files); i++) {
            g_autofree char *p = g_build_filename(o->out_dir, files[i], NULL);
            if (g_file_test(p, G_FILE_TEST_EXISTS)) {
                rc = pz_err_set(err, PZ_EEXIST, "%s exists (use --force to replace it)", p);
                goto out;
            }
        }
    }

    if ((rc = stage_open(o->out_dir, &st, err)) < 0)
        goto out;
    if ((rc = pz_nodekeys_generate(st.dir, 0, sign_pub, e2e_pub, err)) < 0) {
        pz_err_prefix(err, "generating the node's signing and E2E keys");
        goto out;
    }
    if ((rc = key_generate(kt, &key, err)) < 0)
        goto out;

    uint8_t serial[17], kid[64], buf[128];
    size_t serial_len = 0, kid_len = sizeof(kid), sz;
    if ((rc = make_serial(serial, &serial_len, err)) < 0)
        goto out;
    GCHECK(gnutls_x509_crt_init(&crt), "certificate");
    GCHECK(gnutls_x509_crt_set_version(crt, 3), "version");
    GCHECK(gnutls_x509_crt_set_serial(crt, serial, serial_len), "serial");
    GCHECK(gnutls_x509_crt_set_key(crt, key), "public key");

    cn = g_strconcat(PZ_NODE_CN_PREFIX, o->node_id, NULL);
    ou = g_strconcat(o->node_type, PZ_NODE_OU_SUFFIX, NULL);
    dns = g_strconcat(o->node_id, PZ_NODE_DNS_SUFFIX, NULL);
    uri = g_strconcat(PZ_NODE_URI_PREFIX, o->node_id, NULL);
    if ((o->country && (rc = set_dn(crt, GNUTLS_OID_X520_COUNTRY_NAME, o->country, err)) < 0) ||
        (o->state && (rc = set_dn(crt, GNUTLS_OID_X520_STATE_OR_PROVINCE_NAME, o->state, err)) < 0) ||
        (o->locality && (rc = set_dn(crt, GNUTLS_OID_X520_LOCALITY_NAME, o->locality, err)) < 0) ||
        (rc = set_dn(crt, GNUTLS_OID_X520_ORGANIZATION_NAME, org, err)) < 0 ||
        (rc = set_dn(crt, GNUTLS_OID_X520_ORGANIZATIONAL_UNIT_NAME, ou, err)) < 0 ||
        (rc = set_dn(crt, GNUTLS_OID_X520_COMMON_NAME, cn, err)) < 0)
        goto out;
    GCHECK(gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, dns, (unsigned)strlen(dns),
                                                GNUTLS_FSAN_APPEND),
           "SAN DNS");
    GCHECK(gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_URI, uri, (unsigned)strlen(uri), GNUTLS_FSAN_APPEND),
           "SAN URI");
    GCHECK(gnutls_x509_crt_set_activation_time(crt, (time_t)(now - PKI_BACKDATE_S)), "notBefore");
    GCHECK(gnutls_x509_crt_set_expiration_time(crt, (time_t)(now + (int64_t)days * 86400)), "notAfter");
    GCHECK(gnutls_x509_crt_set_basic_constraints(crt, 0, -1), "basic constraints");
    GCHECK(gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE | GNUTLS_KEY_KEY_ENCIPHERMENT), "key usage");
    GCHECK(gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0), "EKU serverAuth");
    GCHECK(gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_CLIENT, 0), "EKU clientAuth");
    GCHECK(gnutls_x509_privkey_get_key_id(key, GNUTLS_KEYID_USE_SHA1, kid, &kid_len), "key id");
    GCHECK(gnutls_x509_crt_set_subject_key_id(crt, kid, kid_len), "subject key id");
    sz = sizeof(buf);
    if (ca && gnutls_x509_crt_get_subject_key_id(ca, buf, &sz, NULL) >= 0)
        GCHECK(gnutls_x509_crt_set_authority_key_id(crt, buf, sz), "authority key id");
    uint8_t ext[PZ_NODE_KEYS_EXT_LEN];
    pz_node_keys_ext_encode(sign_pub, e2e_pub, ext);
    GCHECK(gnutls_x509_crt_set_extension_by_oid(crt, PZ_NODE_KEYS_OID, ext, sizeof(ext), 0), "node-keys extension");
    if (ca)
        GCHECK(gnutls_x509_crt_sign2(crt, ca, cakey, signer_digest(cakey), 0), "signing the node certificate");
    else
        GCHECK(gnutls_x509_crt_sign2(crt, crt, key, signer_digest(key), 0), "self-signing the node certificate");
    if (spki && (rc = spki_sha256(crt, spki, err)) < 0)
        goto out;

    if ((rc = crt_export_pem(crt, &crt_pem, err)) < 0 || (rc = export_key_pem(key, &key_pem, err)) < 0)
        goto out;
    if ((rc = stage_write(&st, "node.key", key_pem.data, key_pem.size, 0600, err)) < 0 ||
        (rc = stage_write(&st, "node.crt", crt_pem.data, crt_pem.size, 0644, err)) < 0)
        goto out;
    rc = stage_commit(&st, o->force, err);
    if (rc == 0 && sign_out)
        memcpy(sign_out, sign_pub, 32);
    if (rc == 0 && e2e_out)
        memcpy(e2e_out, e2e_pub, 32);
out:
    stage_discard(&st);
    wipe_free(&key_pem);
    g_free(crt_pem.data);
    g_free(cn);
    g_free(ou);
    g_free(dns);
    g_free(uri);
    gnutls_memset(sign_pub, 0, sizeof(sign_pub));
    gnutls_memset(e2e_pub, 0, sizeof(e2e_pub));
    if (crt)
        gnutls_x509_crt_deinit(crt);
    if (key)
        gnutls_x509_privkey_deinit(key);
    return rc;
}

int pz_cert_issue(const pz_cert_issue_opts *o, uint64_t now_s, pz_err *err)
{
    int rc = 0;
    gnutls_x509_crt_t ca = NULL;
    gnutls_x509_privkey_t cakey = NULL;
    ca_settings s;

    if ((rc = issue_opts_check(o, 1, err)) < 0)
        return rc;
    if ((rc = settings_load(o->ca_dir, &s, err)) < 0 || (rc = ca_load(o->ca_dir, &ca, &cakey, err)) < 0)
        goto out;
    char org[65];
    if (pz__certval_subject_attr(ca, GNUTLS_OID_X520_ORGANIZATION_NAME, org, sizeof(org)) != 0)
        g_strlcpy(org, s.org, sizeof(org));
    rc = node_cert_write(o, now_s, o->key_set ? o->key : s.node_key, o->days ? o->days : s.node_days, org, ca, cakey,
                         NULL, NULL, NULL, err);
out:
    if (ca)
        gnutls_x509_crt_deinit(ca);
    if (cakey)
        gnutls_x509_privkey_deinit(cakey);
    return rc;
}

int pz_cert_self_sign(const pz_cert_issue_opts *o, uint64_t now_s, uint8_t spki_sha256_out[32],
                      uint8_t sign_pub[32], uint8_t e2e_pub[32], pz_err *err)
{
    int rc = issue_opts_check(o, 0, err);
    if (rc < 0)
        return rc;
    return node_cert_write(o, now_s, o->key_set ? o->key : PZ_PKI_KEY_ECDSA_P384,
                           o->days ? o->days : PKI_DEFAULT_NODE_DAYS, PKI_DEFAULT_ORG, NULL, NULL, spki_sha256_out,
                           sign_pub, e2e_pub, err);
}

int pz_cert_load_der(const char *path, uint8_t **der, size_t *len, pz_err *err)
{
    int rc = 0;
    gnutls_datum_t data = {NULL, 0}, dec = {NULL, 0};
    gnutls_x509_crt_t crt = NULL;

    if (!path || !der || !len)
        return pz_err_set(err, PZ_EINVAL, "pz_cert_load_der: NULL argument");
    if ((rc = read_file(path, PKI_CERT_FILE_MAX, &data, err)) < 0)
        goto out;
    if (memmem(data.data, data.size, "-----BEGIN", 10)) {
        if (gnutls_pem_base64_decode2("CERTIFICATE", &data, &dec) < 0) {
            rc = pz_err_set(err, PZ_EINVAL, "%s: no PEM CERTIFICATE block", path);
            goto out;
        }
    } else {
        dec.data = gnutls_malloc(data.size);
        if (!dec.data) {
            rc = pz_err_set(err, PZ_ENOMEM, "%s: out of memory", path);
            goto out;
        }
        memcpy(dec.data, data.data, data.size);
        dec.size = data.size;
    }
    GCHECK(gnutls_x509_crt_init(&crt), "certificate");
    if (gnutls_x509_crt_import(crt, &dec, GNUTLS_X509_FMT_DER) < 0) {
        rc = pz_err_set(err, PZ_EINVAL, "%s: not an X.509 certificate", path);
        goto out;
    }
    *der = g_memdup2(dec.data, dec.size);
    *len = dec.size;
out:
    if (crt)
        gnutls_x509_crt_deinit(crt);
    gnutls_free(dec.data);
    g_free(data.data);
    return rc;
}

static int import_der(const uint8_t *der, size_t len, gnutls_x509_crt_t *out, pz_err *err)
{
    int rc = 0;
    gnutls_x509_crt_t crt = NULL;
    if (!der || len == 0 || len > PKI_CERT_FILE_MAX)
        return pz_err_set(err, PZ_EINVAL, "no certificate");
    GCHECK(gnutls_x509_crt_init(&crt), "certificate");
    gnutls_datum_t d = {(unsigned char *)der, (unsigned)len};
    if (gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_DER) < 0) {
        rc = pz_err_set(err, PZ_EINVAL, "not a DER X.509 certificate");
        goto out;
    }
    *out = crt;
    crt = NULL;
out:
    if (crt)
        gnutls_x509_crt_deinit(crt);
    return rc;
}

int pz_cert_node_info(const uint8_t *der, size_t len, pz_cert_info *out, pz_err *err)
{
    int rc = 0;
    gnutls_x509_crt_t crt = NULL;
    pz_certval_result res;

    if (!out)
        return pz_err_set(err, PZ_EINVAL, "pz_cert_node_info: no output");
    memset(out, 0, sizeof(*out));
    memset(&res, 0, sizeof(res));
    if ((rc = import_der(der, len, &crt, err)) < 0)
        goto out;
    if (pz__certval_identity(crt, 0, &res) != PZ_CV_OK) {
        rc = pz_err_set(err, PZ_EINVAL, "%s", res.reason_text);
        goto out;
    }
    g_strlcpy(out->node_id, res.node_id, sizeof(out->node_id));
    g_strlcpy(out->node_type, res.node_type, sizeof(out->node_type));
    memcpy(out->sign_pub, res.sign_pub, 32);
    memcpy(out->e2e_pub, res.e2e_pub, 32);
    out->has_keys = res.has_keys;
out:
    if (crt)
        gnutls_x509_crt_deinit(crt);
    return rc;
}

/* ---- revocation ---------------------------------------------------------- */

int pz_cert_revoke(const char *ca_dir, const char *cert_path, uint64_t now_s, pz_err *err)
{
    int rc = 0, dirfd = -1;
    gnutls_x509_crt_t ca = NULL, crt = NULL;
    gnutls_x509_privkey_t cakey = NULL;
    gnutls_x509_crl_t old = NULL;
    gnutls_datum_t data = {NULL, 0}, crl_pem = {NULL, 0};
    uint8_t *der = NULL;
    size_t der_len = 0;
    stage st = {NULL, NULL};
    char *yaml = NULL;
    ca_settings s;
    g_autofree char *crl_path = ca_dir ? g_build_filename(ca_dir, "ca.crl", NULL) : NULL;

    if (!ca_dir || !cert_path)
        return pz_err_set(err, PZ_EINVAL, "cert revoke: --ca and a certificate are required");
    dirfd = open(ca_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        int e = errno;
        return pz_err_set(err, errno_code(e), "%s: %s", ca_dir, g_strerror(e));
    }
    /* One revocation at a time per CA: the CRL number must not fork. */
    if (flock(dirfd, LOCK_EX) < 0) {
        rc = pz_err_set(err, PZ_EIO, "%s: cannot lock: %s", ca_dir, g_strerror(errno));
        goto out;
    }
    if ((rc = settings_load(ca_dir, &s, err)) < 0 || (rc = ca_load(ca_dir, &ca, &cakey, err)) < 0 ||
        (rc = pz_cert_load_der(cert_path, &der, &der_len, err)) < 0 || (rc = import_der(der, der_len, &crt, err)) < 0)
        goto out;

    unsigned status = 0;
    if (!gnutls_x509_crt_check_issuer(crt, ca) ||
        gnutls_x509_crt_verify(crt, &ca, 1, GNUTLS_VERIFY_DISABLE_TIME_CHECKS, &status) < 0 ||
        (status & ~(unsigned)GNUTLS_CERT_INSECURE_ALGORITHM)) {
        rc = pz_err_set(err, PZ_EINVAL, "%s was not issued by the CA in %s", cert_path, ca_dir);
        goto out;
    }
    uint8_t serial[64];
    size_t serial_len = sizeof(serial);
    GCHECK(gnutls_x509_crt_get_serial(crt, serial, &serial_len), "reading the serial");

    rc = read_file(crl_path, 64u << 20, &data, err);
    if (rc == 0) {
        GCHECK(gnutls_x509_crl_init(&old), "CRL");
        if (gnutls_x509_crl_import(old, &data, GNUTLS_X509_FMT_PEM) < 0 ||
            !pz__certval_crl_signed_by(old, &ca, 1)) {
            rc = pz_err_set(err, PZ_EINVAL, "%s: not a CRL signed by this CA", crl_path);
            goto out;
        }
        for (int i = 0, n = gnutls_x509_crl_get_crt_count(old); i < n; i++) {
            uint8_t b[64];
            size_t bsz = sizeof(b);
            time_t t = 0;
            if (gnutls_x509_crl_get_crt_serial(old, (unsigned)i, b, &bsz, &t) == 0 && bsz == serial_len &&
                !memcmp(b, serial, bsz)) {
                rc = pz_err_set(err, PZ_EEXIST, "%s is already revoked (CRL number %" G_GUINT64_FORMAT ")",
                                cert_path, (guint64)s.crl_number);
                goto out;
            }
        }
    } else if (rc == PZ_ENOENT) {
        pz_err_clear(err);
        rc = 0;
    } else {
        goto out;
    }

    s.crl_number++;
    if ((rc = crl_build(ca, cakey, old, serial, serial_len, s.crl_number, (int64_t)now_s, s.crl_days, &crl_pem,
                        err)) < 0)
        goto out;
    yaml = settings_yaml(&s);
    if ((rc = stage_open(ca_dir, &st, err)) < 0 ||
        (rc = stage_write(&st, "ca.crl", crl_pem.data, crl_pem.size, 0644, err)) < 0 ||
        (rc = stage_write(&st, "ca.yaml", yaml, strlen(yaml), 0644, err)) < 0)
        goto out;
    rc = stage_commit(&st, 1, err);
out:
    stage_discard(&st);
    g_free(yaml);
    g_free(der);
    g_free(data.data);
    g_free(crl_pem.data);
    if (old)
        gnutls_x509_crl_deinit(old);
    if (crt)
        gnutls_x509_crt_deinit(crt);
    if (ca)
        gnutls_x509_crt_deinit(ca);
    if (cakey)
        gnutls_x509_privkey_deinit(cakey);
    if (dirfd >= 0)
        close(dirfd); /* releases the lock */
    return rc;
}

/* ---- description ---------------------------------------------------------- */

static void append_hex(GString *o, const uint8_t *b, size_t n, char sep)
{
    for (size_t i = 0; i < n; i++) {
        if (sep && i)
            g_string_append_c(o, sep);
        g_string_append_printf(o, "%02x", b[i]);
    }
}

static void append_time(GString *o, const char *label, time_t t)
{
    GDateTime *dt = g_date_time_new_from_unix_utc((gint64)t);
    g_autofree char *s = dt ? g_date_time_format(dt, "%Y-%m-%d %H:%M:%S UTC") : NULL;
    if (dt)
        g_date_time_unref(dt);
    g_string_append_printf(o, "%-21s%s\n", label, s ? s : "(unreadable)");
}

int pz_cert_describe(const uint8_t *der, size_t len, char **text, pz_err *err)
{
    int rc = 0;
    gnutls_x509_crt_t crt = NULL;
    GString *o = NULL;
    pz_certval_result id;
    uint8_t buf[256];
    size_t sz;

    if (!text)
        return pz_err_set(err, PZ_EINVAL, "pz_cert_describe: no output");
    *text = NULL;
    if ((rc = import_der(der, len, &crt, err)) < 0)
        goto out;
    o = g_string_new(NULL);
    memset(&id, 0, sizeof(id));
    pz_certval_reason r = pz__certval_identity(crt, 1, &id);
    if (r == PZ_CV_OK || id.node_id[0]) {
        g_string_append_printf(o, "%-21s%s\n", "node id:", id.node_id);
        g_string_append_printf(o, "%-21s%s\n", "node type:", id.node_type[0] ? id.node_type : "(none)");
    }
    if (r != PZ_CV_OK)
        g_string_append_printf(o, "%-21s%s (%s)\n", "identity:", id.reason_text, pz_certval_reason_name(r));

    gnutls_datum_t dn = {NULL, 0};
    if (gnutls_x509_crt_get_dn3(crt, &dn, 0) >= 0) {
        g_string_append_printf(o, "%-21s%s\n", "subject:", (const char *)dn.data);
        gnutls_free(dn.data);
    }
    if (gnutls_x509_crt_get_issuer_dn3(crt, &dn, 0) >= 0) {
        g_string_append_printf(o, "%-21s%s\n", "issuer:", (const char *)dn.data);
        gnutls_free(dn.data);
    }
    sz = sizeof(buf);
    if (gnutls_x509_crt_get_serial(crt, buf, &sz) >= 0) {
        g_string_append_printf(o, "%-21s", "serial:");
        append_hex(o, buf, sz, 0);
        g_string_append_c(o, '\n');
    }
    append_time(o, "valid from:", gnutls_x509_crt_get_activation_time(crt));
    append_time(o, "valid until:", gnutls_x509_crt_get_expiration_time(crt));

    unsigned bits = 0;
    int pk = gnutls_x509_crt_get_pk_algorithm(crt, &bits);
    if (pk == GNUTLS_PK_ECDSA) {
        gnutls_ecc_curve_t curve = GNUTLS_ECC_CURVE_INVALID;
        gnutls_datum_t x = {NULL, 0}, y = {NULL, 0};
        if (gnutls_x509_crt_get_pk_ecc_raw(crt, &curve, &x, &y) >= 0) {
            gnutls_free(x.data);
            gnutls_free(y.data);
        }
        g_string_append_printf(o, "%-21sECDSA %s\n", "key:",
                               gnutls_ecc_curve_get_name(curve) ? gnutls_ecc_curve_get_name(curve) : "?");
    } else {
        g_string_append_printf(o, "%-21s%s (%u bits)\n", "key:", pk >= 0 ? gnutls_pk_get_name(pk) : "?", bits);
    }
    int sign = gnutls_x509_crt_get_signature_algorithm(crt);
    g_string_append_printf(o, "%-21s%s\n", "signature:",
                           sign >= 0 && gnutls_sign_get_name(sign) ? gnutls_sign_get_name(sign) : "unknown");

    for (unsigned i = 0;; i++) {
        char san[256];
        size_t ssz = sizeof(san);
        int t = gnutls_x509_crt_get_subject_alt_name(crt, i, san, &ssz, NULL);
        if (t == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
            break;
        if (t < 0)
            continue;
        const char *kind = t == GNUTLS_SAN_DNSNAME ? "DNS" : t == GNUTLS_SAN_URI ? "URI" : t == GNUTLS_SAN_IPADDRESS ? "IP" : "other";
        if (t == GNUTLS_SAN_IPADDRESS)
            g_string_append_printf(o, "%-21s%s (%zu bytes)\n", i ? "" : "alt names:", kind, ssz);
        else
            g_string_append_printf(o, "%-21s%s:%.*s\n", i ? "" : "alt names:", kind, (int)ssz, san);
    }
    unsigned ku = 0;
    if (gnutls_x509_crt_get_key_usage(crt, &ku, NULL) >= 0) {
        static const struct { unsigned bit; const char *name; } kus[] = {
            {GNUTLS_KEY_DIGITAL_SIGNATURE, "digitalSignature"}, {GNUTLS_KEY_NON_REPUDIATION, "nonRepudiation"},
            {GNUTLS_KEY_KEY_ENCIPHERMENT, "keyEncipherment"},   {GNUTLS_KEY_DATA_ENCIPHERMENT, "dataEncipherment"},
            {GNUTLS_KEY_KEY_AGREEMENT, "keyAgreement"},         {GNUTLS_KEY_KEY_CERT_SIGN, "keyCertSign"},
            {GNUTLS_KEY_CRL_SIGN, "cRLSign"},
        };
        g_string_append_printf(o, "%-21s", "key usage:");
        const char *sep = "";
        for (size_t i = 0; i < G_N_ELEMENTS(kus); i++)
            if (ku & kus[i].bit) {
                g_string_append_printf(o, "%s%s", sep, kus[i].name);
                sep = ", ";
            }
        g_string_append_c(o, '\n');
    }
    const char *sep = NULL;
    for (unsigned i = 0;; i++) {
        char oid[128];
        size_t osz = sizeof(oid);
        int grc = gnutls_x509_crt_get_key_purpose_oid(crt, i, oid, &osz, NULL);
        if (grc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
            break;
        if (grc < 0)
            continue;
        if (!sep)
            g_string_append_printf(o, "%-21s", "extended key usage:");
        g_string_append_printf(o, "%s%s", sep ? sep : "",
                               !strcmp(oid, GNUTLS_KP_TLS_WWW_SERVER)   ? "serverAuth"
                               : !strcmp(oid, GNUTLS_KP_TLS_WWW_CLIENT) ? "clientAuth"
                                                                       : oid);
        sep = ", ";
    }
    if (sep)
        g_string_append_c(o, '\n');

    gnutls_datum_t d = {(unsigned char *)der, (unsigned)len};
    sz = sizeof(buf);
    if (gnutls_fingerprint(GNUTLS_DIG_SHA256, &d, buf, &sz) >= 0) {
        g_string_append_printf(o, "%-21s", "SHA-256 fingerprint:");
        append_hex(o, buf, sz, ':');
        g_string_append_c(o, '\n');
    }
    sz = sizeof(buf);
    if (gnutls_x509_crt_get_key_id(crt, GNUTLS_KEYID_USE_SHA256, buf, &sz) >= 0) {
        g_string_append_printf(o, "%-21s", "public key SHA-256:");
        append_hex(o, buf, sz, 0);
        g_string_append_c(o, '\n');
    }
    if (id.has_keys) {
        g_string_append_printf(o, "%-21s", "signing key:");
        append_hex(o, id.sign_pub, 32, 0);
        g_string_append_printf(o, " (Ed25519)\n%-21s", "E2E key:");
        append_hex(o, id.e2e_pub, 32, 0);
        g_string_append(o, " (X25519)\n");
    } else {
        g_string_append_printf(o, "%-21s(no node-keys extension %s)\n", "embedded keys:", PZ_NODE_KEYS_OID);
    }
    *text = g_string_free(o, FALSE);
    o = NULL;
out:
    if (o)
        g_string_free(o, TRUE);
    if (crt)
        gnutls_x509_crt_deinit(crt);
    return rc;
}
