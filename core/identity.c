/* core/identity.c — the identity manager: peer directory file, learnt
 * identities, look-up by node id and by key. See identity.h. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gcrypt.h>
#include <glib.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <yaml.h>

#include "err.h"
#include "identity.h"

/* A peer directory is small; refuse anything absurd before parsing it. */
#define DIRECTORY_MAX_BYTES (8u * 1024u * 1024u)

/* One loaded directory: identities by node id and by key. Immutable once
 * built; swapped whole on reload. */
typedef struct directory {
    char *path;
    GHashTable *by_id;   /* node id -> pz_identity_rec* (owned) */
    GHashTable *by_key;  /* "<kind>:<hex>" -> pz_identity_rec* (borrowed from by_id) */
} directory;

struct pz_identities {
    GMutex lock;
    directory *dir;     /* NULL before a load */
    GHashTable *learnt; /* node id -> pz_identity_rec* (owned) */
};

/* ------------------------------------------------------------------------ */
/* Validation and decoding helpers. */

int pz_identity_valid_node_id(const char *text)
{
    if (!text)
        return 0;
    size_t n = strlen(text);
    /* As certificates have them (pz_node_id_valid, core/certval.h). */
    if (n == 0 || n > PZ_NODE_ID_MAX || text[0] == '.' || text[0] == '-')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = text[i];
        if (!g_ascii_isalnum(c) && c != '.' && c != '_' && c != '-')
            return 0;
    }
    return 1;
}

int pz_identity_valid_name(const char *text, size_t max)
{
    if (!text)
        return 0;
    size_t n = strlen(text);
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = text[i];
        if (!g_ascii_isalnum(c) && c != '.' && c != '_' && c != '-' && c != ':')
            return 0;
    }
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

/* Strict base64 (standard or URL alphabet, padding optional) into OUT
 * (CAP bytes). Returns the decoded length, or -1 when TEXT is not base64
 * or does not fit. */
static long b64_decode(const char *text, uint8_t *out, size_t cap)
{
    size_t n = strlen(text);
    while (n > 0 && text[n - 1] == '=')
        n--;
    if (strlen(text) - n > 2)
        return -1;
    if (n % 4 == 1)
        return -1;
    uint32_t acc = 0;
    int bits = 0;
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
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
    /* Leftover bits must be zero (canonical encoding). */
    if (acc != 0)
        return -1;
    return (long)len;
}

int pz_identity_parse_key32(const char *text, uint8_t out[32], size_t *got_len)
{
    uint8_t buf[96];
    if (got_len)
        *got_len = 0;
    if (!text)
        return PZ_EINVAL;
    if (!strncmp(text, "sha256//", 8))
        text += 8;
    size_t n = strlen(text);
    int all_hex = n > 0 && n % 2 == 0;
    for (size_t i = 0; all_hex && i < n; i++)
        all_hex = g_ascii_isxdigit(text[i]);
    /* An even run of hex digits is hex (base64 of 32 bytes always has a
     * '=' or an odd length, so it is never mistaken for hex). */
    if (all_hex) {
        if (got_len)
            *got_len = n / 2;
        if (n != 64)
            return PZ_ERANGE;
        for (size_t i = 0; i < 32; i++)
            out[i] = (uint8_t)(g_ascii_xdigit_value(text[2 * i]) << 4 | g_ascii_xdigit_value(text[2 * i + 1]));
        return 0;
    }
    long len = b64_decode(text, buf, sizeof(buf));
    if (len < 0)
        return PZ_EINVAL;
    if (got_len)
        *got_len = (size_t)len;
    if (len != 32) {
        explicit_bzero(buf, sizeof(buf));
        return PZ_ERANGE;
    }
    memcpy(out, buf, 32);
    explicit_bzero(buf, sizeof(buf));
    return 0;
}

int pz_identity_rec_add_role(pz_identity_rec *rec, const char *role)
{
    if (!pz_identity_valid_name(role, PZ_AUTH_ROLE_MAX))
        return PZ_EINVAL;
    for (size_t i = 0; i < rec->n_roles; i++)
        if (!strcmp(rec->roles[i], role))
            return 0;
    if (rec->n_roles >= PZ_AUTH_MAX_ROLES)
        return PZ_ERANGE;
    g_strlcpy(rec->roles[rec->n_roles++], role, sizeof(rec->roles[0]));
    return 0;
}

static char *key_index(pz_identity_key kind, const uint8_t key[32])
{
    char hex[65];
    for (size_t i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", key[i]);
    return g_strdup_printf("%d:%s", (int)kind, hex);
}

/* ------------------------------------------------------------------------ */
/* Directory parsing (libyaml document API, marks kept for messages). */

typedef struct parse_ctx {
    const char *path;
    yaml_document_t *doc;
    pz_err *err;
} parse_ctx;

static int perr(parse_ctx *pc, const yaml_node_t *node, const char *keypath, const char *fmt, ...)
    PZ_PRINTF(4, 5);

static int perr(parse_ctx *pc, const yaml_node_t *node, const char *keypath, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    pz_err_set(pc->err, PZ_ECONFIG, "%s:%lu:%lu: %s: %s", pc->path,
               node ? (unsigned long)node->start_mark.line + 1 : 1UL,
               node ? (unsigned long)node->start_mark.column + 1 : 1UL, keypath, msg);
    g_free(msg);
    return PZ_ECONFIG;
}

static const char *node_kind_name(const yaml_node_t *node)
{
    switch (node->type) {
    case YAML_SCALAR_NODE: return "a scalar";
    case YAML_SEQUENCE_NODE: return "a list";
    case YAML_MAPPING_NODE: return "a map";
    default: return "nothing";
    }
}

/* The scalar text of NODE, or NULL (error set) when NODE is not a scalar
 * or holds a NUL byte. */
static const char *scalar(parse_ctx *pc, const yaml_node_t *node, const char *keypath, const char *what)
{
    if (node->type != YAML_SCALAR_NODE) {
        perr(pc, node, keypath, "expected %s, found %s", what, node_kind_name(node));
        return NULL;
    }
    const char *s = (const char *)node->data.scalar.value;
    if (strlen(s) != node->data.scalar.length) {
        perr(pc, node, keypath, "expected %s, found text with a NUL byte", what);
        return NULL;
    }
    return s;
}

static int parse_key32(parse_ctx *pc, const yaml_node_t *node, const char *keypath, uint8_t out[32], int *has)
{
    const char *s = scalar(pc, node, keypath, "32 bytes in hex or base64");
    if (!s)
        return PZ_ECONFIG;
    size_t got = 0;
    int rc = pz_identity_parse_key32(s, out, &got);
    if (rc == PZ_ERANGE)
        return perr(pc, node, keypath, "expected 32 bytes in hex or base64, found %zu bytes", got);
    if (rc)
        return perr(pc, node, keypath, "expected 32 bytes in hex or base64, found \"%.40s\"", s);
    *has = 1;
    return 0;
}

static int parse_peer(parse_ctx *pc, const yaml_node_t *node, size_t index, pz_identity_rec *rec)
{
    char kp[96];
    memset(rec, 0, sizeof(*rec));
    if (node->type != YAML_MAPPING_NODE) {
        snprintf(kp, sizeof(kp), "peers[%zu]", index);
        return perr(pc, node, kp, "expected a map with node_id, found %s", node_kind_name(node));
    }
    int have_id = 0;
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(pc->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(pc->doc, p->value);
        snprintf(kp, sizeof(kp), "peers[%zu]", index);
        const char *key = scalar(pc, k, kp, "a key");
        if (!key)
            return PZ_ECONFIG;
        snprintf(kp, sizeof(kp), "peers[%zu].%.40s", index, key);
        if (!strcmp(key, "node_id")) {
            const char *s = scalar(pc, v, kp, "a node id");
            if (!s)
                return PZ_ECONFIG;
            if (!pz_identity_valid_node_id(s))
                return perr(pc, v, kp, "expected a node id ([A-Za-z0-9._-], 1 to %d bytes), found \"%.80s\"",
                            PZ_NODE_ID_MAX, s);
            g_strlcpy(rec->node_id, s, sizeof(rec->node_id));
            have_id = 1;
        } else if (!strcmp(key, "node_type")) {
            const char *s = scalar(pc, v, kp, "a node type");
            if (!s)
                return PZ_ECONFIG;
            if (!pz_identity_valid_name(s, PZ_NODE_TYPE_MAX))
                return perr(pc, v, kp, "expected a node type ([A-Za-z0-9._:-], 1 to %d bytes), found \"%.80s\"",
                            PZ_NODE_TYPE_MAX, s);
            g_strlcpy(rec->node_type, s, sizeof(rec->node_type));
        } else if (!strcmp(key, "roles")) {
            if (v->type != YAML_SEQUENCE_NODE)
                return perr(pc, v, kp, "expected a list of roles, found %s", node_kind_name(v));
            size_t j = 0;
            for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++, j++) {
                yaml_node_t *r = yaml_document_get_node(pc->doc, *it);
                char rkp[112];
                snprintf(rkp, sizeof(rkp), "%s[%zu]", kp, j);
                const char *s = scalar(pc, r, rkp, "a role");
                if (!s)
                    return PZ_ECONFIG;
                int rc = pz_identity_rec_add_role(rec, s);
                if (rc == PZ_EINVAL)
                    return perr(pc, r, rkp, "expected a role ([A-Za-z0-9._:-], 1 to %d bytes), found \"%.80s\"",
                                PZ_AUTH_ROLE_MAX, s);
                if (rc == PZ_ERANGE)
                    return perr(pc, r, rkp, "too many roles: at most %d", PZ_AUTH_MAX_ROLES);
            }
        } else if (!strcmp(key, "sign_pub")) {
            if (parse_key32(pc, v, kp, rec->sign_pub, &rec->has_sign_pub))
                return PZ_ECONFIG;
        } else if (!strcmp(key, "e2e_pub")) {
            if (parse_key32(pc, v, kp, rec->e2e_pub, &rec->has_e2e_pub))
                return PZ_ECONFIG;
        } else if (!strcmp(key, "spki_sha256")) {
            if (parse_key32(pc, v, kp, rec->spki_sha256, &rec->has_spki_sha256))
                return PZ_ECONFIG;
        } else if (!strcmp(key, "tls_ed25519")) {
            if (parse_key32(pc, v, kp, rec->tls_ed25519, &rec->has_tls_ed25519))
                return PZ_ECONFIG;
        } else {
            return perr(pc, k, kp,
                        "unknown key (expected node_id, node_type, roles, sign_pub, e2e_pub, spki_sha256 or "
                        "tls_ed25519)");
        }
    }
    if (!have_id) {
        snprintf(kp, sizeof(kp), "peers[%zu]", index);
        return perr(pc, node, kp, "missing node_id");
    }
    snprintf(rec->source, sizeof(rec->source), "directory %s:%lu:%lu", pc->path,
             (unsigned long)node->start_mark.line + 1, (unsigned long)node->start_mark.column + 1);
    return 0;
}

static void directory_free(directory *d)
{
    if (!d)
        return;
    if (d->by_key)
        g_hash_table_destroy(d->by_key);
    if (d->by_id)
        g_hash_table_destroy(d->by_id);
    g_free(d->path);
    g_free(d);
}

static void rec_free(gpointer p)
{
    g_free(p);
}

/* Index REC by KEY of kind KIND; two nodes with one key is an error. */
static int index_key(parse_ctx *pc, directory *d, const yaml_node_t *node, size_t i, pz_identity_rec *rec,
                     pz_identity_key kind, const uint8_t key[32], const char *keyname)
{
    char *k = key_index(kind, key);
    const pz_identity_rec *other = g_hash_table_lookup(d->by_key, k);
    if (other) {
        char kp[64];
        snprintf(kp, sizeof(kp), "peers[%zu].%s", i, keyname);
        g_free(k);
        return perr(pc, node, kp, "same key as node \"%s\" (a key identifies one node)", other->node_id);
    }
    g_hash_table_insert(d->by_key, k, rec);
    return 0;
}

static int directory_parse(const char *path, const char *text, size_t len, directory **out, pz_err *err)
{
    int rc = 0;
    yaml_parser_t parser;
    yaml_document_t doc;
    int have_doc = 0;
    directory *d = g_new0(directory, 1);
    parse_ctx pc = {.path = path, .doc = &doc, .err = err};

    d->path = g_strdup(path);
    d->by_id = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, rec_free);
    d->by_key = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

    if (!yaml_parser_initialize(&parser)) {
        rc = pz_err_set(err, PZ_ENOMEM, "%s: out of memory", path);
        goto out_noparser;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        rc = pz_err_set(err, PZ_ECONFIG, "%s:%lu:%lu: %s", path, (unsigned long)parser.problem_mark.line + 1,
                        (unsigned long)parser.problem_mark.column + 1,
                        parser.problem ? parser.problem : "YAML syntax error");
        goto out;
    }
    have_doc = 1;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root)
        goto done; /* empty file: no peers */
    if (root->type == YAML_SCALAR_NODE && root->data.scalar.length == 0)
        goto done;
    if (root->type != YAML_MAPPING_NODE) {
        rc = perr(&pc, root, "(root)", "expected a map with key peers, found %s", node_kind_name(root));
        goto out;
    }
    yaml_node_t *peers = NULL;
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(&doc, p->key);
        const char *key = scalar(&pc, k, "(root)", "a key");
        if (!key) {
            rc = PZ_ECONFIG;
            goto out;
        }
        if (strcmp(key, "peers")) {
            rc = perr(&pc, k, key, "unknown key (expected peers)");
            goto out;
        }
        peers = yaml_document_get_node(&doc, p->value);
    }
    if (!peers)
        goto done;
    if (peers->type == YAML_SCALAR_NODE && peers->data.scalar.length == 0)
        goto done; /* "peers:" with nothing */
    if (peers->type != YAML_SEQUENCE_NODE) {
        rc = perr(&pc, peers, "peers", "expected a list of peers, found %s", node_kind_name(peers));
        goto out;
    }
    size_t i = 0;
    for (yaml_node_item_t *it = peers->data.sequence.items.start; it < peers->data.sequence.items.top; it++, i++) {
        yaml_node_t *pn = yaml_document_get_node(&doc, *it);
        pz_identity_rec *rec = g_new0(pz_identity_rec, 1);
        rc = parse_peer(&pc, pn, i, rec);
        if (rc) {
            g_free(rec);
            goto out;
        }
        pz_identity_rec *dup = g_hash_table_lookup(d->by_id, rec->node_id);
        if (dup) {
            char kp[32];
            snprintf(kp, sizeof(kp), "peers[%zu].node_id", i);
            rc = perr(&pc, pn, kp, "node \"%s\" is listed twice (first at %s)", rec->node_id, dup->source);
            g_free(rec);
            goto out;
        }
        g_hash_table_insert(d->by_id, rec->node_id, rec);
        struct {
            int has;
            const uint8_t *key;
            pz_identity_key kind;
            const char *name;
        } keys[] = {
            {rec->has_spki_sha256, rec->spki_sha256, PZ_IDKEY_SPKI_SHA256, "spki_sha256"},
            {rec->has_tls_ed25519, rec->tls_ed25519, PZ_IDKEY_TLS_ED25519, "tls_ed25519"},
            {rec->has_sign_pub, rec->sign_pub, PZ_IDKEY_SIGN_PUB, "sign_pub"},
        };
        for (size_t j = 0; j < G_N_ELEMENTS(keys); j++) {
            if (!keys[j].has)
                continue;
            rc = index_key(&pc, d, pn, i, rec, keys[j].kind, keys[j].key, keys[j].name);
            if (rc)
                goto out;
        }
    }
done:
    *out = d;
    d = NULL;
out:
    if (have_doc)
        yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
out_noparser:
    directory_free(d);
    return rc;
}

/* Read PATH (a regular file, not writable by group or others, at most
 * DIRECTORY_MAX_BYTES) into *TEXT. */
static int read_directory_file(const char *path, char **text, size_t *len, pz_err *err)
{
    int rc = 0;
    int fd = -1;
    char *buf = NULL;
    struct stat st;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        rc = pz_err_set(err, errno == ENOENT ? PZ_ENOENT : PZ_EIO, "%s: cannot open peer directory: %s", path,
                        g_strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) < 0) {
        rc = pz_err_set(err, PZ_EIO, "%s: %s", path, g_strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = pz_err_set(err, PZ_EIO, "%s: peer directory is not a regular file", path);
        goto out;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        rc = pz_err_set(err, PZ_EPERM,
                        "%s: peer directory is writable by %s (mode %04o): it grants roles; chmod go-w %s", path,
                        (st.st_mode & S_IWOTH) ? "others" : "its group", (unsigned)(st.st_mode & 07777), path);
        goto out;
    }
    if ((uint64_t)st.st_size > DIRECTORY_MAX_BYTES) {
        rc = pz_err_set(err, PZ_ERANGE, "%s: peer directory is %llu bytes, more than the %u allowed", path,
                        (unsigned long long)st.st_size, DIRECTORY_MAX_BYTES);
        goto out;
    }
    buf = g_malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = pz_err_set(err, PZ_EIO, "%s: read: %s", path, g_strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    *text = buf;
    *len = got;
    buf = NULL;
out:
    g_free(buf);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Key pins of a certificate. */

int pz_identity_cert_keys(const uint8_t *der, size_t len, uint8_t spki_sha256[32], uint8_t ed25519[32],
                          int *is_ed25519, pz_err *err)
{
    int rc = 0;
    int grc;
    gnutls_x509_crt_t crt = NULL;
    gnutls_pubkey_t pub = NULL;
    gnutls_datum_t spki = {NULL, 0};
    gnutls_datum_t x = {NULL, 0};
    gnutls_ecc_curve_t curve;

    *is_ed25519 = 0;
    if (!der || len == 0 || len > UINT_MAX)
        return pz_err_set(err, PZ_EINVAL, "certificate: empty or too large");
    if (gnutls_x509_crt_init(&crt) < 0 || gnutls_pubkey_init(&pub) < 0) {
        rc = pz_err_set(err, PZ_ENOMEM, "certificate: out of memory");
        goto out;
    }
    gnutls_datum_t d = {(unsigned char *)der, (unsigned)len};
    grc = gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_DER);
    if (grc < 0) {
        rc = pz_err_set(err, PZ_EINVAL, "certificate: not an X.509 certificate in DER: %s", gnutls_strerror(grc));
        goto out;
    }
    grc = gnutls_pubkey_import_x509(pub, crt, 0);
    if (grc >= 0)
        grc = gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &spki);
    if (grc < 0) {
        rc = pz_err_set(err, PZ_EINVAL, "certificate: cannot read its public key: %s", gnutls_strerror(grc));
        goto out;
    }
    gcry_md_hash_buffer(GCRY_MD_SHA256, spki_sha256, spki.data, spki.size);
    if (gnutls_pubkey_get_pk_algorithm(pub, NULL) == GNUTLS_PK_EDDSA_ED25519) {
        grc = gnutls_pubkey_export_ecc_raw2(pub, &curve, &x, NULL, 0);
        if (grc < 0 || x.size != 32) {
            rc = pz_err_set(err, PZ_EINVAL, "certificate: malformed Ed25519 key");
            goto out;
        }
        memcpy(ed25519, x.data, 32);
        *is_ed25519 = 1;
    }
out:
    gnutls_free(x.data);
    gnutls_free(spki.data);
    if (pub)
        gnutls_pubkey_deinit(pub);
    if (crt)
        gnutls_x509_crt_deinit(crt);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* The manager. */

int pz_identities_new(pz_identities **out, pz_err *err)
{
    (void)err;
    pz_identities *ids = g_new0(pz_identities, 1);
    g_mutex_init(&ids->lock);
    ids->learnt = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, rec_free);
    *out = ids;
    return 0;
}

void pz_identities_free(pz_identities *ids)
{
    if (!ids)
        return;
    directory_free(ids->dir);
    g_hash_table_destroy(ids->learnt);
    g_mutex_clear(&ids->lock);
    g_free(ids);
}

int pz_identities_load_directory(pz_identities *ids, const char *path, pz_err *err)
{
    int rc = 0;
    char *text = NULL;
    size_t len = 0;
    directory *d = NULL;

    if (!ids || !path)
        return pz_err_set(err, PZ_EINVAL, "pz_identities_load_directory: NULL argument");
    rc = read_directory_file(path, &text, &len, err);
    if (rc)
        goto out;
    rc = directory_parse(path, text, len, &d, err);
    if (rc)
        goto out;
    g_mutex_lock(&ids->lock);
    directory *old = ids->dir;
    ids->dir = d;
    g_mutex_unlock(&ids->lock);
    directory_free(old);
out:
    g_free(text);
    return rc;
}

const char *pz_identities_directory(const pz_identities *ids)
{
    return ids && ids->dir ? ids->dir->path : NULL;
}

int pz_identities_put(pz_identities *ids, const pz_identity_rec *rec, pz_err *err)
{
    if (!ids || !rec || !pz_identity_valid_node_id(rec->node_id))
        return pz_err_set(err, PZ_EINVAL, "identity: invalid node id");
    pz_identity_rec *copy = g_new(pz_identity_rec, 1);
    *copy = *rec;
    copy->node_id[sizeof(copy->node_id) - 1] = '\0';
    g_mutex_lock(&ids->lock);
    g_hash_table_replace(ids->learnt, copy->node_id, copy);
    g_mutex_unlock(&ids->lock);
    return 0;
}

/* OUT = directory record D completed with what learnt record L has and D
 * does not. */
static void merge_learnt(pz_identity_rec *out, const pz_identity_rec *l)
{
    if (!out->node_type[0])
        g_strlcpy(out->node_type, l->node_type, sizeof(out->node_type));
    for (size_t i = 0; i < l->n_roles; i++)
        (void)pz_identity_rec_add_role(out, l->roles[i]);
    if (!out->has_sign_pub && l->has_sign_pub) {
        memcpy(out->sign_pub, l->sign_pub, 32);
        out->has_sign_pub = 1;
    }
    if (!out->has_e2e_pub && l->has_e2e_pub) {
        memcpy(out->e2e_pub, l->e2e_pub, 32);
        out->has_e2e_pub = 1;
    }
    if (!out->has_spki_sha256 && l->has_spki_sha256) {
        memcpy(out->spki_sha256, l->spki_sha256, 32);
        out->has_spki_sha256 = 1;
    }
    if (!out->has_tls_ed25519 && l->has_tls_ed25519) {
        memcpy(out->tls_ed25519, l->tls_ed25519, 32);
        out->has_tls_ed25519 = 1;
    }
}

int pz_identities_lookup(const pz_identities *ids, const char *node_id, pz_identity_rec *out)
{
    int rc = PZ_ENOENT;
    if (!ids || !node_id || !out)
        return PZ_EINVAL;
    pz_identities *m = (pz_identities *)ids; /* the lock is not part of the value */
    g_mutex_lock(&m->lock);
    const pz_identity_rec *d = m->dir ? g_hash_table_lookup(m->dir->by_id, node_id) : NULL;
    const pz_identity_rec *l = g_hash_table_lookup(m->learnt, node_id);
    if (d) {
        *out = *d;
        if (l)
            merge_learnt(out, l);
        rc = 0;
    } else if (l) {
        *out = *l;
        rc = 0;
    }
    g_mutex_unlock(&m->lock);
    return rc;
}

int pz_identities_lookup_key(const pz_identities *ids, pz_identity_key kind, const uint8_t key[32],
                             pz_identity_rec *out)
{
    int rc = PZ_ENOENT;
    if (!ids || !key || !out)
        return PZ_EINVAL;
    char *k = key_index(kind, key);
    pz_identities *m = (pz_identities *)ids;
    g_mutex_lock(&m->lock);
    const pz_identity_rec *d = m->dir ? g_hash_table_lookup(m->dir->by_key, k) : NULL;
    if (d) {
        *out = *d;
        rc = 0;
    }
    g_mutex_unlock(&m->lock);
    g_free(k);
    return rc;
}

size_t pz_identities_count(const pz_identities *ids)
{
    if (!ids)
        return 0;
    pz_identities *m = (pz_identities *)ids;
    g_mutex_lock(&m->lock);
    size_t n = m->dir ? g_hash_table_size(m->dir->by_id) : 0;
    GHashTableIter it;
    gpointer key;
    g_hash_table_iter_init(&it, m->learnt);
    while (g_hash_table_iter_next(&it, &key, NULL))
        if (!m->dir || !g_hash_table_contains(m->dir->by_id, key))
            n++;
    g_mutex_unlock(&m->lock);
    return n;
}

#ifndef PZ_IDENTITY_STANDALONE
/* ------------------------------------------------------------------------ */
/* Configuration and certificates (core build only). */

#include "crypto.h"
#include "pki.h"

/* PATH made absolute against the directory of the configuration file that
 * named it, so a configuration works from any working directory. */
static char *resolve_path(const pz_conf *node, const char *path)
{
    if (g_path_is_absolute(path))
        return g_strdup(path);
    const char *file = pz_conf_file(node);
    if (!file || !*file)
        return g_strdup(path);
    char *dir = g_path_get_dirname(file);
    char *full = g_build_filename(dir, path, NULL);
    g_free(dir);
    return full;
}

int pz_identities_new_from_conf(const pz_conf *root, pz_identities **out, pz_err *err)
{
    int rc = 0;
    pz_identities *ids = NULL;
    const pz_conf *sec = NULL;
    const char *dirpath = NULL;
    char *full = NULL;

    *out = NULL;
    rc = pz_identities_new(&ids, err);
    if (rc)
        goto out;
    if (root) {
        rc = pz_conf_map(root, "identity", &sec, err);
        if (rc)
            goto out;
    }
    if (sec) {
        rc = pz_conf_string(sec, "directory", NULL, &dirpath, err);
        if (rc)
            goto out;
        rc = pz_conf_check_unused(sec, err);
        if (rc)
            goto out;
    }
    if (dirpath) {
        if (!*dirpath) {
            rc = pz_conf_error(sec, err, "directory: expected the path of a peer directory file, found \"\"");
            goto out;
        }
        full = resolve_path(sec, dirpath);
        rc = pz_identities_load_directory(ids, full, err);
        if (rc) {
            pz_err_prefix(err, "%s: identity.directory", pz_conf_where(sec));
            goto out;
        }
    }
    *out = ids;
    ids = NULL;
out:
    g_free(full);
    pz_identities_free(ids);
    return rc;
}
int pz_identity_rec_from_cert(const uint8_t *der, size_t len, pz_identity_rec *out, pz_err *err)
{
    int rc = 0;
    pz_cert_info info;
    uint8_t ed[32];
    int is_ed = 0;

    memset(out, 0, sizeof(*out));
    if (pz_crypto_init() != 0)
        return pz_err_set(err, PZ_ECRYPTO, "libgcrypt is older than the one prozsec was built with");
    rc = pz_cert_node_info(der, len, &info, err);
    if (rc)
        goto out;
    rc = pz_identity_cert_keys(der, len, out->spki_sha256, ed, &is_ed, err);
    if (rc)
        goto out;
    out->has_spki_sha256 = 1;
    if (is_ed) {
        memcpy(out->tls_ed25519, ed, 32);
        out->has_tls_ed25519 = 1;
    }
    g_strlcpy(out->node_id, info.node_id, sizeof(out->node_id));
    g_strlcpy(out->node_type, info.node_type, sizeof(out->node_type));
    if (info.has_keys) {
        memcpy(out->sign_pub, info.sign_pub, 32);
        memcpy(out->e2e_pub, info.e2e_pub, 32);
        out->has_sign_pub = out->has_e2e_pub = 1;
    }
    g_strlcpy(out->source, "certificate", sizeof(out->source));
out:
    return rc;
}
#endif /* PZ_IDENTITY_STANDALONE */
