/* core/nodekeys.c — key files (PKCS#8 / SPKI PEM), key records, rotation
 * of receiving keys, and the peers' public-key directory. See nodekeys.h
 * and docs/e2e-format.md. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "err.h"
#include "nodekeys.h"

#define SIGN_KEY "sign.key"
#define SIGN_PUB "sign.pub"
#define E2E_KEY "e2e.key"
#define E2E_PUB "e2e.pub"
#define ROT_DIR "e2e.d"
#define KEYFILE_MAX 16384
#define TOMBSTONES_MAX 64

#define PEM_PRIVATE "PRIVATE KEY"
#define PEM_PUBLIC "PUBLIC KEY"
#define PEM_RECORD "PROZSEC E2E KEY RECORD"

#define KEYREC_MAGIC "PZKR"
#define KEYREC_VERSION 1
#define KEYREC_SIGNED_LEN 64
#define KEYREC_DOMAIN "prozsec-e2e-v1 key record"
#define KEY_ID_DOMAIN "prozsec-e2e-v1 key id"

/* RFC 8410 encodings: PKCS#8 v1 (OneAsymmetricKey without attributes or
 * public key) and SubjectPublicKeyInfo, for id-Ed25519 (1.3.101.112) and
 * id-X25519 (1.3.101.110). The key bytes follow the prefix. */
#define PKCS8_PREFIX_LEN 16
#define SPKI_PREFIX_LEN 12
static const uint8_t pkcs8_ed25519[PKCS8_PREFIX_LEN] = {0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06,
                                                       0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20};
static const uint8_t pkcs8_x25519[PKCS8_PREFIX_LEN] = {0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06,
                                                      0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20};
static const uint8_t spki_ed25519[SPKI_PREFIX_LEN] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
                                                     0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};
static const uint8_t spki_x25519[SPKI_PREFIX_LEN] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
                                                    0x2b, 0x65, 0x6e, 0x03, 0x21, 0x00};

/* --- small helpers ------------------------------------------------------ */

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static void hex_id(const uint8_t id[PZ_KEY_ID_LEN], char out[2 * PZ_KEY_ID_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < PZ_KEY_ID_LEN; i++) {
        out[2 * i] = digits[id[i] >> 4];
        out[2 * i + 1] = digits[id[i] & 15];
    }
    out[2 * PZ_KEY_ID_LEN] = 0;
}

/* A + B, saturating at UINT64_MAX. */
static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a + b < a ? UINT64_MAX : a + b;
}

static int node_id_ok(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > PZ_NODE_ID_MAX || id[0] == '.' || id[0] == '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!g_ascii_isalnum(id[i]) && id[i] != '.' && id[i] != '_' && id[i] != '-')
            return 0;
    return 1;
}

void pz_e2e_key_id(const uint8_t pub[PZ_X25519_LEN], uint8_t id[PZ_KEY_ID_LEN])
{
    uint8_t h[PZ_SHA256_LEN];
    pz_iov iov[2] = {{KEY_ID_DOMAIN, sizeof(KEY_ID_DOMAIN)}, {pub, PZ_X25519_LEN}}; /* with the NUL */
    pz_sha256(iov, 2, h);
    memcpy(id, h, PZ_KEY_ID_LEN);
}

/* --- PEM ---------------------------------------------------------------- */

/* PEM text for DER under LABEL, lines of 64 characters. Returns a g_malloc'd
 * string (wipe it when DER is secret). */
static char *pem_encode(const char *label, const uint8_t *der, size_t len)
{
    char *b64 = g_base64_encode(der, len);
    size_t n = strlen(b64);
    GString *s = g_string_sized_new(n + n / 64 + 2 * strlen(label) + 40);
    g_string_append_printf(s, "-----BEGIN %s-----\n", label);
    for (size_t i = 0; i < n; i += 64) {
        g_string_append_len(s, b64 + i, (gssize)(n - i < 64 ? n - i : 64));
        g_string_append_c(s, '\n');
    }
    g_string_append_printf(s, "-----END %s-----\n", label);
    pz_crypto_wipe(b64, n);
    g_free(b64);
    return g_string_free(s, FALSE);
}

/* Decode the first LABEL block of TEXT (LEN bytes, not NUL-terminated).
 * *DER is g_malloc'd; wipe it when secret. Returns 0 or PZ_EINVAL. */
static int pem_decode(const char *text, size_t len, const char *label, uint8_t **der, size_t *der_len)
{
    g_autofree char *begin = g_strdup_printf("-----BEGIN %s-----", label);
    g_autofree char *end = g_strdup_printf("-----END %s-----", label);
    const char *b = g_strstr_len(text, (gssize)len, begin);
    const char *e;
    char *body;
    gsize n = 0;

    *der = NULL;
    *der_len = 0;
    if (!b)
        return PZ_EINVAL;
    b += strlen(begin);
    e = g_strstr_len(b, (gssize)(text + len - b), end);
    if (!e)
        return PZ_EINVAL;
    body = g_strndup(b, (gsize)(e - b));
    /* Only base64 characters and white space may appear between the lines. */
    for (const char *p = body; *p; p++) {
        if (!g_ascii_isalnum(*p) && *p != '+' && *p != '/' && *p != '=' && !g_ascii_isspace(*p)) {
            pz_crypto_wipe(body, strlen(body));
            g_free(body);
            return PZ_EINVAL;
        }
    }
    *der = g_base64_decode(body, &n);
    pz_crypto_wipe(body, strlen(body));
    g_free(body);
    *der_len = n;
    if (n == 0) {
        g_free(*der);
        *der = NULL;
        return PZ_EINVAL;
    }
    return 0;
}

/* --- files -------------------------------------------------------------- */

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

/* Write LEN bytes to DIR/NAME with MODE, atomically: a temporary file in DIR
 * is written and fsynced, then renamed over NAME (REPLACE) or linked to it
 * (fails with PZ_EEXIST when NAME exists). */
static int write_atomic(const char *dir, const char *name, const void *data, size_t len, mode_t mode, int replace,
                        pz_err *err)
{
    int rc = 0, fd = -1;
    g_autofree char *path = g_build_filename(dir, name, NULL);
    g_autofree char *tmp = g_strdup_printf("%s/.%s.XXXXXX", dir, name);
    const uint8_t *p = data;
    size_t left = len;

    fd = g_mkstemp_full(tmp, O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = pz_err_set(err, PZ_EIO, "%s: cannot create a temporary file: %s", dir, g_strerror(errno));
        tmp[0] = 0;
        goto out;
    }
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = pz_err_set(err, PZ_EIO, "%s: write failed: %s", path, g_strerror(errno));
            goto out;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fchmod(fd, mode) || fsync(fd)) {
        rc = pz_err_set(err, PZ_EIO, "%s: %s", path, g_strerror(errno));
        goto out;
    }
    close(fd);
    fd = -1;
    if (replace) {
        if (rename(tmp, path)) {
            rc = pz_err_set(err, PZ_EIO, "%s: cannot move into place: %s", path, g_strerror(errno));
            goto out;
        }
        tmp[0] = 0;
    } else {
        if (link(tmp, path)) {
            int e = errno;
            rc = e == EEXIST ? pz_err_set(err, PZ_EEXIST, "%s: already exists (use --force to replace it)", path)
                             : pz_err_set(err, PZ_EIO, "%s: cannot move into place: %s", path, g_strerror(e));
            goto out;
        }
    }
    if (fsync_dir(dir))
        rc = pz_err_set(err, PZ_EIO, "%s: fsync: %s", dir, g_strerror(errno));
out:
    if (fd >= 0)
        close(fd);
    if (tmp[0])
        unlink(tmp);
    return rc;
}

/* Read PATH (at most KEYFILE_MAX bytes) into a malloc'd buffer with a NUL
 * after it. With SECRET, refuse a file group or others may access. */
static int read_small(const char *path, int secret, char **out, size_t *out_len, pz_err *err)
{
    int rc = 0, fd;
    struct stat st;
    char *buf = NULL;
    size_t got = 0;

    *out = NULL;
    *out_len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return pz_err_set(err, errno == ENOENT ? PZ_ENOENT : PZ_EIO, "%s: %s", path, g_strerror(errno));
    if (fstat(fd, &st)) {
        rc = pz_err_set(err, PZ_EIO, "%s: %s", path, g_strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = pz_err_set(err, PZ_EIO, "%s: not a regular file", path);
        goto out;
    }
    if (secret && (st.st_mode & 077)) {
        rc = pz_err_set(err, PZ_EPERM, "%s: private key readable by group or others (mode %04o); run chmod 600 %s",
                        path, (unsigned)(st.st_mode & 07777), path);
        goto out;
    }
    if (st.st_size > KEYFILE_MAX) {
        rc = pz_err_set(err, PZ_EINVAL, "%s: too large for a key file (%lld bytes)", path, (long long)st.st_size);
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        rc = PZ_ENOMEM;
        goto out;
    }
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = pz_err_set(err, PZ_EIO, "%s: %s", path, g_strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    buf[got] = 0;
    *out = buf;
    *out_len = got;
    buf = NULL;
out:
    if (buf) {
        pz_crypto_wipe(buf, (size_t)st.st_size + 1);
        free(buf);
    }
    close(fd);
    return rc;
}

static void free_secret_text(char *p, size_t len)
{
    if (p) {
        pz_crypto_wipe(p, len);
        free(p);
    }
}

/* Read the 32-byte private key of a PKCS#8 PEM file into SK (secure). */
static int load_private(const char *path, const uint8_t prefix[PKCS8_PREFIX_LEN], uint8_t sk[32], pz_err *err)
{
    char *text = NULL;
    size_t len = 0;
    uint8_t *der = NULL;
    size_t der_len = 0;
    int rc = read_small(path, 1, &text, &len, err);
    if (rc)
        return rc;
    if (pem_decode(text, len, PEM_PRIVATE, &der, &der_len)) {
        rc = pz_err_set(err, PZ_EINVAL, "%s: no PEM \"PRIVATE KEY\" block", path);
        goto out;
    }
    if (der_len != PKCS8_PREFIX_LEN + 32 || memcmp(der, prefix, PKCS8_PREFIX_LEN)) {
        rc = pz_err_set(err, PZ_EINVAL, "%s: not a PKCS#8 %s private key (expected the 48-byte RFC 8410 form)",
                        path, prefix == pkcs8_ed25519 ? "Ed25519" : "X25519");
        goto out;
    }
    memcpy(sk, der + PKCS8_PREFIX_LEN, 32);
out:
    if (der) {
        pz_crypto_wipe(der, der_len);
        g_free(der);
    }
    free_secret_text(text, len);
    return rc;
}

static int write_private(const char *dir, const char *name, const uint8_t prefix[PKCS8_PREFIX_LEN],
                         const uint8_t sk[32], int replace, pz_err *err)
{
    uint8_t der[PKCS8_PREFIX_LEN + 32];
    char *pem;
    int rc;
    memcpy(der, prefix, PKCS8_PREFIX_LEN);
    memcpy(der + PKCS8_PREFIX_LEN, sk, 32);
    pem = pem_encode(PEM_PRIVATE, der, sizeof(der));
    rc = write_atomic(dir, name, pem, strlen(pem), 0600, replace, err);
    pz_crypto_wipe(der, sizeof(der));
    pz_crypto_wipe(pem, strlen(pem));
    g_free(pem);
    return rc;
}

static int write_public(const char *dir, const char *name, const uint8_t prefix[SPKI_PREFIX_LEN],
                        const uint8_t pub[32], int replace, pz_err *err)
{
    uint8_t der[SPKI_PREFIX_LEN + 32];
    g_autofree char *pem = NULL;
    memcpy(der, prefix, SPKI_PREFIX_LEN);
    memcpy(der + SPKI_PREFIX_LEN, pub, 32);
    pem = pem_encode(PEM_PUBLIC, der, sizeof(der));
    return write_atomic(dir, name, pem, strlen(pem), 0644, replace, err);
}

/* Overwrite PATH with zeros, fsync and unlink it (best effort: the
 * in-memory copy is what matters most; journalling file systems may keep
 * old blocks). */
static void destroy_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0) {
        struct stat st;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
            static const uint8_t zeros[512];
            off_t left = st.st_size;
            while (left > 0) {
                ssize_t w = write(fd, zeros, left > (off_t)sizeof(zeros) ? sizeof(zeros) : (size_t)left);
                if (w <= 0)
                    break;
                left -= w;
            }
            (void)fsync(fd);
        }
        close(fd);
    }
    unlink(path);
}

/* --- generation --------------------------------------------------------- */

static void destroy_rotated(const char *dir)
{
    g_autofree char *rot = g_build_filename(dir, ROT_DIR, NULL);
    GDir *d = g_dir_open(rot, 0, NULL);
    const char *name;
    if (!d)
        return;
    while ((name = g_dir_read_name(d))) {
        g_autofree char *path = g_build_filename(rot, name, NULL);
        if (g_str_has_suffix(name, ".key"))
            destroy_file(path);
        else if (g_str_has_suffix(name, ".rec"))
            unlink(path);
    }
    g_dir_close(d);
}

int pz_nodekeys_generate(const char *dir, int force, uint8_t sign_pub[32], uint8_t e2e_pub[32], pz_err *err)
{
    int rc = 0;
    pz_sign_key *sk = NULL;
    uint8_t *xsk = NULL;
    uint8_t xpub[PZ_X25519_LEN];

    if (!dir || !*dir)
        return pz_err_set(err, PZ_EINVAL, "no key directory given");
    rc = pz_crypto_init();
    if (rc)
        return pz_err_set(err, rc, "libgcrypt initialisation failed");
    if (g_mkdir_with_parents(dir, 0700))
        return pz_err_set(err, PZ_EIO, "%s: cannot create directory: %s", dir, g_strerror(errno));
    if (!force) {
        static const char *const names[] = {SIGN_KEY, E2E_KEY};
        for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
            g_autofree char *p = g_build_filename(dir, names[i], NULL);
            if (g_file_test(p, G_FILE_TEST_EXISTS))
                return pz_err_set(err, PZ_EEXIST, "%s: already exists (use --force to replace the node's keys)", p);
        }
    }
    rc = pz_sign_key_generate(&sk);
    if (rc) {
        pz_err_set(err, rc, "cannot generate the Ed25519 signing key");
        goto out;
    }
    xsk = pz_crypto_secure_alloc(PZ_X25519_LEN);
    if (!xsk) {
        rc = pz_err_set(err, PZ_ENOMEM, "out of secure memory");
        goto out;
    }
    rc = pz_x25519_generate(xsk, xpub);
    if (rc) {
        pz_err_set(err, rc, "cannot generate the X25519 key");
        goto out;
    }
    if (force)
        destroy_rotated(dir);
    /* Private keys first: a crash in between leaves a key without its .pub
     * (harmless, .pub files are derived), never the reverse. */
    rc = write_private(dir, SIGN_KEY, pkcs8_ed25519, pz_sign_key_seed(sk), force, err);
    if (rc == 0)
        rc = write_private(dir, E2E_KEY, pkcs8_x25519, xsk, force, err);
    if (rc == 0)
        rc = write_public(dir, SIGN_PUB, spki_ed25519, pz_sign_key_public(sk), 1, err);
    if (rc == 0)
        rc = write_public(dir, E2E_PUB, spki_x25519, xpub, 1, err);
    if (rc)
        goto out;
    if (sign_pub)
        memcpy(sign_pub, pz_sign_key_public(sk), 32);
    if (e2e_pub)
        memcpy(e2e_pub, xpub, 32);
out:
    pz_sign_key_free(sk);
    pz_crypto_secure_free(xsk);
    return rc;
}

/* --- key records -------------------------------------------------------- */

/* Record layout (docs/e2e-format.md): magic "PZKR" | version 1 | KEM id
 * 0x0020 (2) | reserved 0 | key id (8) | X25519 key (32) | not_before ms
 * (8) | not_after ms (8) | Ed25519 signature (64) over KEYREC_DOMAIN NUL
 * || the first 64 bytes. */
static void keyrec_encode(const pz_keyrec *rec, uint8_t out[KEYREC_SIGNED_LEN])
{
    memcpy(out, KEYREC_MAGIC, 4);
    out[4] = KEYREC_VERSION;
    out[5] = 0x00;
    out[6] = 0x20;
    out[7] = 0;
    pz_e2e_key_id(rec->pub, out + 8);
    memcpy(out + 16, rec->pub, 32);
    put_be64(out + 48, rec->not_before_ms);
    put_be64(out + 56, rec->not_after_ms);
}

int pz_keyrec_sign(pz_sign_key *key, const pz_keyrec *rec, uint8_t out[PZ_KEYREC_LEN])
{
    uint8_t msg[sizeof(KEYREC_DOMAIN) + KEYREC_SIGNED_LEN];
    if (!key || !rec || !out || rec->not_before_ms >= rec->not_after_ms)
        return PZ_EINVAL;
    memcpy(msg, KEYREC_DOMAIN, sizeof(KEYREC_DOMAIN));
    keyrec_encode(rec, msg + sizeof(KEYREC_DOMAIN));
    memcpy(out, msg + sizeof(KEYREC_DOMAIN), KEYREC_SIGNED_LEN);
    return pz_sign(key, msg, sizeof(msg), out + KEYREC_SIGNED_LEN);
}

int pz_keyrec_verify(pz_verify_key *key, const uint8_t *buf, size_t len, pz_keyrec *out, pz_err *err)
{
    uint8_t msg[sizeof(KEYREC_DOMAIN) + KEYREC_SIGNED_LEN];
    uint8_t id[PZ_KEY_ID_LEN];
    uint8_t *der = NULL;
    size_t der_len = 0;
    const uint8_t *r = buf;
    int rc = 0;

    if (!key || !buf || !out)
        return pz_err_set(err, PZ_EINVAL, "key record: missing argument");
    memset(out, 0, sizeof(*out));
    if (len != PZ_KEYREC_LEN) {
        if (pem_decode((const char *)buf, len, PEM_RECORD, &der, &der_len) || der_len != PZ_KEYREC_LEN) {
            rc = pz_err_set(err, PZ_EINVAL, "key record: expected %d bytes or a PEM \"%s\" block", PZ_KEYREC_LEN,
                            PEM_RECORD);
            goto out;
        }
        r = der;
    }
    if (memcmp(r, KEYREC_MAGIC, 4) || r[4] != KEYREC_VERSION || r[5] != 0x00 || r[6] != 0x20 || r[7] != 0) {
        rc = pz_err_set(err, PZ_EINVAL, "key record: unknown magic, version or KEM");
        goto out;
    }
    pz_e2e_key_id(r + 16, id);
    if (memcmp(id, r + 8, PZ_KEY_ID_LEN)) {
        rc = pz_err_set(err, PZ_EINVAL, "key record: key id does not match the key");
        goto out;
    }
    if (get_be64(r + 48) >= get_be64(r + 56)) {
        rc = pz_err_set(err, PZ_EINVAL, "key record: not_before is not before not_after");
        goto out;
    }
    memcpy(msg, KEYREC_DOMAIN, sizeof(KEYREC_DOMAIN));
    memcpy(msg + sizeof(KEYREC_DOMAIN), r, KEYREC_SIGNED_LEN);
    if (pz_verify(key, msg, sizeof(msg), r + KEYREC_SIGNED_LEN, PZ_ED25519_SIG_LEN)) {
        rc = pz_err_set(err, PZ_ECRYPTO, "key record: signature does not verify with the node's signing key");
        goto out;
    }
    memcpy(out->key_id, r + 8, PZ_KEY_ID_LEN);
    memcpy(out->pub, r + 16, 32);
    out->not_before_ms = get_be64(r + 48);
    out->not_after_ms = get_be64(r + 56);
out:
    g_free(der);
    return rc;
}

/* --- the node's keys ---------------------------------------------------- */

struct pz_nodekeys {
    char *dir;
    pz_sign_key *sign;
    pz_verify_key *verify; /* our own, for records on load */
    pz_recv_key *keys;     /* [0] long-term, then rotated by not_before */
    size_t n, cap;
    size_t ignored;
};

static void recv_key_clear(pz_recv_key *k)
{
    pz_crypto_secure_free(k->sk);
    k->sk = NULL;
}

void pz_nodekeys_free(pz_nodekeys *nk)
{
    if (!nk)
        return;
    for (size_t i = 0; i < nk->n; i++)
        recv_key_clear(&nk->keys[i]);
    free(nk->keys);
    pz_sign_key_free(nk->sign);
    pz_verify_key_free(nk->verify);
    g_free(nk->dir);
    free(nk);
}

static int push_key(pz_nodekeys *nk, const pz_recv_key *k)
{
    if (nk->n == nk->cap) {
        size_t cap = nk->cap ? nk->cap * 2 : 8;
        pz_recv_key *keys = realloc(nk->keys, cap * sizeof(*keys));
        if (!keys)
            return PZ_ENOMEM;
        nk->keys = keys;
        nk->cap = cap;
    }
    nk->keys[nk->n++] = *k;
    return 0;
}

static int cmp_rotated(const void *a, const void *b)
{
    const pz_recv_key *x = a, *y = b;
    if (x->not_before_ms != y->not_before_ms)
        return x->not_before_ms < y->not_before_ms ? -1 : 1;
    return memcmp(x->key_id, y->key_id, PZ_KEY_ID_LEN);
}

static int load_rotated(pz_nodekeys *nk, pz_err *err)
{
    int rc = 0;
    g_autofree char *rot = g_build_filename(nk->dir, ROT_DIR, NULL);
    GDir *d = g_dir_open(rot, 0, NULL);
    const char *name;

    if (!d)
        return 0; /* no rotated keys yet */
    while ((name = g_dir_read_name(d))) {
        char *text = NULL;
        size_t len = 0;
        pz_keyrec rec;
        pz_recv_key k;
        char hex[2 * PZ_KEY_ID_LEN + 1];
        if (!g_str_has_suffix(name, ".rec") || name[0] == '.')
            continue;
        g_autofree char *path = g_build_filename(rot, name, NULL);
        rc = read_small(path, 0, &text, &len, err);
        if (rc)
            goto out;
        rc = pz_keyrec_verify(nk->verify, (const uint8_t *)text, len, &rec, NULL);
        free(text);
        hex_id(rec.key_id, hex);
        if (rc || strlen(name) != 2 * PZ_KEY_ID_LEN + 4 || strncmp(name, hex, 2 * PZ_KEY_ID_LEN)) {
            nk->ignored++;
            rc = 0;
            continue;
        }
        memset(&k, 0, sizeof(k));
        memcpy(k.key_id, rec.key_id, PZ_KEY_ID_LEN);
        memcpy(k.pub, rec.pub, 32);
        k.not_before_ms = rec.not_before_ms;
        k.not_after_ms = rec.not_after_ms;
        rc = pz_keyrec_sign(nk->sign, &rec, k.record); /* Ed25519 is deterministic: the same bytes */
        if (rc)
            goto out;
        g_autofree char *keyname = g_strdup_printf("%s.key", hex);
        g_autofree char *keypath = g_build_filename(rot, keyname, NULL);
        if (g_file_test(keypath, G_FILE_TEST_EXISTS)) {
            uint8_t pub[32];
            k.sk = pz_crypto_secure_alloc(32);
            if (!k.sk) {
                rc = PZ_ENOMEM;
                goto out;
            }
            rc = load_private(keypath, pkcs8_x25519, k.sk, err);
            if (rc) {
                recv_key_clear(&k);
                goto out;
            }
            pz_x25519_public(pub, k.sk);
            if (memcmp(pub, k.pub, 32)) {
                recv_key_clear(&k); /* a key file not matching its record: treat as destroyed */
                nk->ignored++;
            }
        }
        rc = push_key(nk, &k);
        if (rc) {
            recv_key_clear(&k);
            goto out;
        }
    }
    if (nk->n > 2)
        qsort(nk->keys + 1, nk->n - 1, sizeof(*nk->keys), cmp_rotated);
out:
    g_dir_close(d);
    return rc;
}

int pz_nodekeys_load(const char *dir, pz_nodekeys **out, pz_err *err)
{
    int rc = 0;
    pz_nodekeys *nk = NULL;
    uint8_t *seed = NULL;
    pz_recv_key lt;
    char *sign_path = NULL, *e2e_path = NULL;

    memset(&lt, 0, sizeof(lt));
    if (!out)
        return PZ_EINVAL;
    *out = NULL;
    if (!dir || !*dir)
        return pz_err_set(err, PZ_EINVAL, "no key directory given");
    rc = pz_crypto_init();
    if (rc)
        return pz_err_set(err, rc, "libgcrypt initialisation failed");
    nk = calloc(1, sizeof(*nk));
    seed = pz_crypto_secure_alloc(32);
    lt.sk = pz_crypto_secure_alloc(32);
    if (!nk || !seed || !lt.sk) {
        rc = pz_err_set(err, PZ_ENOMEM, "out of memory");
        goto out;
    }
    nk->dir = g_strdup(dir);
    sign_path = g_build_filename(dir, SIGN_KEY, NULL);
    rc = load_private(sign_path, pkcs8_ed25519, seed, err);
    if (rc)
        goto out;
    rc = pz_sign_key_new(seed, &nk->sign);
    if (rc == 0)
        rc = pz_verify_key_new(pz_sign_key_public(nk->sign), &nk->verify);
    if (rc) {
        pz_err_set(err, rc, "%s: cannot import the Ed25519 key", sign_path);
        goto out;
    }
    e2e_path = g_build_filename(dir, E2E_KEY, NULL);
    rc = load_private(e2e_path, pkcs8_x25519, lt.sk, err);
    if (rc)
        goto out;
    pz_x25519_public(lt.pub, lt.sk);
    pz_e2e_key_id(lt.pub, lt.key_id);
    lt.long_term = 1;
    rc = push_key(nk, &lt);
    if (rc)
        goto out;
    lt.sk = NULL; /* owned by nk now */
    rc = load_rotated(nk, err);
    if (rc)
        goto out;
    *out = nk;
    nk = NULL;
out:
    g_free(sign_path);
    g_free(e2e_path);
    pz_crypto_secure_free(seed);
    pz_crypto_secure_free(lt.sk);
    pz_nodekeys_free(nk);
    return rc;
}

pz_sign_key *pz_nodekeys_sign_key(const pz_nodekeys *nk)
{
    return nk->sign;
}

const uint8_t *pz_nodekeys_sign_pub(const pz_nodekeys *nk)
{
    return pz_sign_key_public(nk->sign);
}

const pz_recv_key *pz_nodekeys_long_term(const pz_nodekeys *nk)
{
    return &nk->keys[0];
}

size_t pz_nodekeys_ignored(const pz_nodekeys *nk)
{
    return nk->ignored;
}

size_t pz_nodekeys_count(const pz_nodekeys *nk)
{
    return nk->n;
}

const pz_recv_key *pz_nodekeys_at(const pz_nodekeys *nk, size_t i)
{
    return i < nk->n ? &nk->keys[i] : NULL;
}

const pz_recv_key *pz_nodekeys_current(const pz_nodekeys *nk, uint64_t now_ms)
{
    for (size_t i = nk->n; i-- > 1;) {
        const pz_recv_key *k = &nk->keys[i];
        if (k->sk && k->not_before_ms <= now_ms && now_ms < k->not_after_ms)
            return k;
    }
    return &nk->keys[0];
}

int pz_nodekeys_find(const pz_nodekeys *nk, const uint8_t key_id[PZ_KEY_ID_LEN], uint64_t now_ms,
                     uint64_t grace_ms, const pz_recv_key **out)
{
    *out = NULL;
    for (size_t i = 0; i < nk->n; i++) {
        const pz_recv_key *k = &nk->keys[i];
        if (memcmp(k->key_id, key_id, PZ_KEY_ID_LEN))
            continue;
        if (k->long_term) {
            *out = k;
            return 0;
        }
        if (!k->sk || now_ms >= add_sat(k->not_after_ms, grace_ms))
            return PZ_ESTALE;
        *out = k;
        return 0;
    }
    return PZ_ENOENT;
}

static int create_rotated(pz_nodekeys *nk, uint64_t now_ms, uint64_t interval_ms, pz_err *err)
{
    int rc = 0;
    pz_recv_key k;
    pz_keyrec rec;
    char hex[2 * PZ_KEY_ID_LEN + 1];
    char *pem = NULL, *keyname = NULL, *recname = NULL;
    g_autofree char *rot = g_build_filename(nk->dir, ROT_DIR, NULL);

    memset(&k, 0, sizeof(k));
    if (g_mkdir_with_parents(rot, 0700))
        return pz_err_set(err, PZ_EIO, "%s: cannot create directory: %s", rot, g_strerror(errno));
    k.sk = pz_crypto_secure_alloc(32);
    if (!k.sk)
        return pz_err_set(err, PZ_ENOMEM, "out of secure memory");
    rc = pz_x25519_generate(k.sk, k.pub);
    if (rc)
        goto out;
    pz_e2e_key_id(k.pub, k.key_id);
    k.not_before_ms = now_ms;
    k.not_after_ms = add_sat(now_ms, interval_ms);
    memcpy(rec.key_id, k.key_id, PZ_KEY_ID_LEN);
    memcpy(rec.pub, k.pub, 32);
    rec.not_before_ms = k.not_before_ms;
    rec.not_after_ms = k.not_after_ms;
    rc = pz_keyrec_sign(nk->sign, &rec, k.record);
    if (rc) {
        pz_err_set(err, rc, "cannot sign the key record");
        goto out;
    }
    hex_id(k.key_id, hex);
    keyname = g_strdup_printf("%s.key", hex);
    recname = g_strdup_printf("%s.rec", hex);
    rc = write_private(rot, keyname, pkcs8_x25519, k.sk, 0, err);
    if (rc)
        goto out;
    pem = pem_encode(PEM_RECORD, k.record, PZ_KEYREC_LEN);
    rc = write_atomic(rot, recname, pem, strlen(pem), 0644, 1, err);
    if (rc) {
        g_autofree char *keypath = g_build_filename(rot, keyname, NULL);
        destroy_file(keypath);
        goto out;
    }
    rc = push_key(nk, &k);
    if (rc == 0)
        k.sk = NULL;
out:
    g_free(pem);
    g_free(keyname);
    g_free(recname);
    recv_key_clear(&k);
    return rc;
}

int pz_nodekeys_rotate(pz_nodekeys *nk, uint64_t now_ms, uint64_t interval_ms, uint64_t grace_ms, int *created,
                       size_t *destroyed, pz_err *err)
{
    int rc = 0;
    size_t n_destroyed = 0, tombstones = 0;
    g_autofree char *rot = NULL;

    if (created)
        *created = 0;
    if (destroyed)
        *destroyed = 0;
    if (!nk)
        return PZ_EINVAL;
    rot = g_build_filename(nk->dir, ROT_DIR, NULL);
    if (interval_ms > 0) {
        int due = 1;
        for (size_t i = 1; i < nk->n; i++)
            if (nk->keys[i].sk && add_sat(nk->keys[i].not_before_ms, interval_ms) > now_ms)
                due = 0;
        if (due) {
            rc = create_rotated(nk, now_ms, interval_ms, err);
            if (rc)
                return rc;
            if (created)
                *created = 1;
        }
    }
    for (size_t i = 1; i < nk->n; i++) {
        pz_recv_key *k = &nk->keys[i];
        if (!k->sk) {
            tombstones++;
            continue;
        }
        if (now_ms < add_sat(k->not_after_ms, grace_ms))
            continue;
        char hex[2 * PZ_KEY_ID_LEN + 1];
        hex_id(k->key_id, hex);
        g_autofree char *keyname = g_strdup_printf("%s.key", hex);
        g_autofree char *keypath = g_build_filename(rot, keyname, NULL);
        recv_key_clear(k);
        destroy_file(keypath);
        n_destroyed++;
        tombstones++;
    }
    /* Keep the newest TOMBSTONES_MAX tombstones (the array is oldest first). */
    for (size_t i = 1; i < nk->n && tombstones > TOMBSTONES_MAX;) {
        if (nk->keys[i].sk) {
            i++;
            continue;
        }
        char hex[2 * PZ_KEY_ID_LEN + 1];
        hex_id(nk->keys[i].key_id, hex);
        g_autofree char *recname = g_strdup_printf("%s.rec", hex);
        g_autofree char *recpath = g_build_filename(rot, recname, NULL);
        unlink(recpath);
        memmove(&nk->keys[i], &nk->keys[i + 1], (nk->n - i - 1) * sizeof(*nk->keys));
        nk->n--;
        tombstones--;
    }
    if (n_destroyed)
        (void)fsync_dir(rot);
    if (destroyed)
        *destroyed = n_destroyed;
    return rc;
}

/* --- peers -------------------------------------------------------------- */

typedef struct peer_record {
    uint8_t key_id[PZ_KEY_ID_LEN];
    uint8_t pub[PZ_X25519_LEN];
    uint64_t not_before_ms, not_after_ms;
} peer_record;

struct pz_peer {
    gint ref;
    char *node_id;
    uint8_t sign_pub[PZ_ED25519_PUB_LEN];
    pz_verify_key *verify;
    uint8_t e2e_pub[PZ_X25519_LEN];
    uint8_t e2e_key_id[PZ_KEY_ID_LEN];
    /* Guarded by the directory's lock. */
    peer_record records[PZ_PEERDIR_RECORDS_MAX];
    size_t n_records;
};

struct pz_peerdir {
    GMutex lock;
    GHashTable *peers; /* node id -> pz_peer (one reference) */
};

pz_peer *pz_peer_ref(pz_peer *peer)
{
    if (peer)
        g_atomic_int_inc(&peer->ref);
    return peer;
}

void pz_peer_unref(pz_peer *peer)
{
    if (!peer || !g_atomic_int_dec_and_test(&peer->ref))
        return;
    pz_verify_key_free(peer->verify);
    g_free(peer->node_id);
    free(peer);
}

const char *pz_peer_node_id(const pz_peer *peer)
{
    return peer->node_id;
}

pz_verify_key *pz_peer_verify_key(const pz_peer *peer)
{
    return peer->verify;
}

const uint8_t *pz_peer_e2e_pub(const pz_peer *peer)
{
    return peer->e2e_pub;
}

int pz_peerdir_new(pz_peerdir **out)
{
    pz_peerdir *d = calloc(1, sizeof(*d));
    *out = NULL;
    if (!d)
        return PZ_ENOMEM;
    g_mutex_init(&d->lock);
    d->peers = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)pz_peer_unref);
    *out = d;
    return 0;
}

void pz_peerdir_free(pz_peerdir *d)
{
    if (!d)
        return;
    g_hash_table_destroy(d->peers);
    g_mutex_clear(&d->lock);
    free(d);
}

int pz_peerdir_add(pz_peerdir *d, const char *node_id, const uint8_t sign_pub[PZ_ED25519_PUB_LEN],
                   const uint8_t e2e_pub[PZ_X25519_LEN], pz_err *err)
{
    int rc;
    pz_peer *p, *old;

    if (!d || !sign_pub || !e2e_pub)
        return pz_err_set(err, PZ_EINVAL, "peer directory: missing argument");
    if (!node_id_ok(node_id))
        return pz_err_set(err, PZ_EINVAL, "peer directory: invalid node id");
    p = calloc(1, sizeof(*p));
    if (!p)
        return PZ_ENOMEM;
    p->ref = 1;
    p->node_id = g_strdup(node_id);
    memcpy(p->sign_pub, sign_pub, sizeof(p->sign_pub));
    memcpy(p->e2e_pub, e2e_pub, sizeof(p->e2e_pub));
    pz_e2e_key_id(e2e_pub, p->e2e_key_id);
    rc = pz_verify_key_new(sign_pub, &p->verify);
    if (rc) {
        pz_peer_unref(p);
        return pz_err_set(err, rc, "peer %s: the signing key is not a valid Ed25519 key", node_id);
    }
    g_mutex_lock(&d->lock);
    old = g_hash_table_lookup(d->peers, node_id);
    if (old && !memcmp(old->sign_pub, sign_pub, sizeof(old->sign_pub))) {
        memcpy(p->records, old->records, sizeof(p->records));
        p->n_records = old->n_records;
    }
    g_hash_table_replace(d->peers, p->node_id, p);
    g_mutex_unlock(&d->lock);
    return 0;
}

int pz_peerdir_add_record(pz_peerdir *d, const char *node_id, const uint8_t *rec, size_t len, uint64_t now_ms,
                          pz_err *err)
{
    int rc;
    pz_keyrec kr;
    pz_peer *p = pz_peerdir_get(d, node_id);

    if (!p)
        return pz_err_set(err, PZ_ENOENT, "key record for unknown peer %s", node_id ? node_id : "(null)");
    rc = pz_keyrec_verify(p->verify, rec, len, &kr, err);
    if (rc) {
        pz_err_prefix(err, "peer %s", node_id);
        goto out;
    }
    if (now_ms >= kr.not_after_ms) {
        rc = pz_err_set(err, PZ_ESTALE, "peer %s: key record expired", node_id);
        goto out;
    }
    g_mutex_lock(&d->lock);
    size_t i;
    for (i = 0; i < p->n_records; i++)
        if (!memcmp(p->records[i].key_id, kr.key_id, PZ_KEY_ID_LEN))
            break;
    if (i == p->n_records) {
        /* Drop expired ones, then the oldest when full. */
        size_t k = 0;
        for (size_t j = 0; j < p->n_records; j++)
            if (now_ms < p->records[j].not_after_ms)
                p->records[k++] = p->records[j];
        p->n_records = k;
        if (p->n_records == PZ_PEERDIR_RECORDS_MAX) {
            size_t oldest = 0;
            for (size_t j = 1; j < p->n_records; j++)
                if (p->records[j].not_before_ms < p->records[oldest].not_before_ms)
                    oldest = j;
            p->records[oldest] = p->records[--p->n_records];
        }
        peer_record *r = &p->records[p->n_records++];
        memcpy(r->key_id, kr.key_id, PZ_KEY_ID_LEN);
        memcpy(r->pub, kr.pub, PZ_X25519_LEN);
        r->not_before_ms = kr.not_before_ms;
        r->not_after_ms = kr.not_after_ms;
    }
    g_mutex_unlock(&d->lock);
out:
    pz_peer_unref(p);
    return rc;
}

pz_peer *pz_peerdir_get(pz_peerdir *d, const char *node_id)
{
    pz_peer *p;
    if (!d || !node_id)
        return NULL;
    g_mutex_lock(&d->lock);
    p = pz_peer_ref(g_hash_table_lookup(d->peers, node_id));
    g_mutex_unlock(&d->lock);
    return p;
}

int pz_peerdir_seal_key(pz_peerdir *d, const char *node_id, uint64_t now_ms, uint8_t pub[PZ_X25519_LEN],
                        uint8_t key_id[PZ_KEY_ID_LEN])
{
    pz_peer *p;
    const peer_record *best = NULL;
    if (!d || !node_id)
        return PZ_EINVAL;
    g_mutex_lock(&d->lock);
    p = g_hash_table_lookup(d->peers, node_id);
    if (!p) {
        g_mutex_unlock(&d->lock);
        return PZ_ENOENT;
    }
    for (size_t i = 0; i < p->n_records; i++) {
        const peer_record *r = &p->records[i];
        if (r->not_before_ms <= now_ms && now_ms < r->not_after_ms &&
            (!best || r->not_before_ms > best->not_before_ms))
            best = r;
    }
    memcpy(pub, best ? best->pub : p->e2e_pub, PZ_X25519_LEN);
    memcpy(key_id, best ? best->key_id : p->e2e_key_id, PZ_KEY_ID_LEN);
    g_mutex_unlock(&d->lock);
    return 0;
}
