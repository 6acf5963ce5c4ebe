/* core/e2e.c — E2E envelopes: codec (core/e2e.h) and the public pz_e2e_*
 * API (include/prozsec/e2e.h): seal, and open with its ordered checks. */
#include "config.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "e2e.h"
#include "err.h"
#include "hpke.h"
#include "nodekeys.h"
#include "pki.h"
#include "replay.h"

#define NS_PER_MS UINT64_C(1000000)

/* --- codec -------------------------------------------------------------- */

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

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

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a + b < a ? UINT64_MAX : a + b;
}

int pz__e2e_id_valid(const char *id, size_t len)
{
    if (!id || len == 0 || len > PZ_E2E_ID_MAX || id[0] == '.' || id[0] == '-')
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = id[i];
        if (!g_ascii_isalnum(c) && c != '.' && c != '_' && c != '-')
            return 0;
    }
    return 1;
}

static int suite_known(uint8_t suite)
{
    return suite >= PZ_E2E_SUITE_AES_128_GCM && suite <= PZ_E2E_SUITE_CHACHA20_POLY1305;
}

/* A cursor over the bytes being parsed. */
typedef struct rd {
    const uint8_t *p;
    size_t left;
} rd;

static const uint8_t *take(rd *r, size_t n)
{
    const uint8_t *p;
    if (r->left < n)
        return NULL;
    p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

int pz__e2e_parse(const uint8_t *buf, size_t len, pz__e2e_env *e)
{
    rd r = {buf, len};
    const uint8_t *p;

    memset(e, 0, sizeof(*e));
    if (!buf || len < 3)
        return len >= 1 && buf && buf[0] != PZ_E2E_VERSION ? PZ_E2E_ERROR_VERSION : PZ_E2E_ERROR_MALFORMED;
    if (buf[0] != PZ_E2E_VERSION)
        return PZ_E2E_ERROR_VERSION;
    if (!suite_known(buf[1]))
        return PZ_E2E_ERROR_SUITE;
    p = take(&r, 3);
    e->version = p[0];
    e->suite = p[1];
    e->flags = p[2];
    if (e->flags & ~PZ__E2E_FLAGS_KNOWN)
        return PZ_E2E_ERROR_MALFORMED;

    if (!(p = take(&r, 1)))
        return PZ_E2E_ERROR_MALFORMED;
    e->sender_len = p[0];
    if (!(e->sender = (const char *)take(&r, e->sender_len)))
        return PZ_E2E_ERROR_MALFORMED;
    if (e->flags & PZ__E2E_FLAG_SEALED_SENDER) {
        if (e->sender_len != 0)
            return PZ_E2E_ERROR_MALFORMED;
    } else if (!pz__e2e_id_valid(e->sender, e->sender_len)) {
        return PZ_E2E_ERROR_MALFORMED;
    }
    if (!(p = take(&r, 1)))
        return PZ_E2E_ERROR_MALFORMED;
    e->recipient_len = p[0];
    if (!(e->recipient = (const char *)take(&r, e->recipient_len)) ||
        !pz__e2e_id_valid(e->recipient, e->recipient_len))
        return PZ_E2E_ERROR_MALFORMED;
    if (!(e->key_id = take(&r, PZ_E2E_KEY_ID_LEN)) || !(p = take(&r, 8)))
        return PZ_E2E_ERROR_MALFORMED;
    e->timestamp_ms = get_be64(p);
    if (!(e->message_id = take(&r, PZ_E2E_MESSAGE_ID_LEN)) || !(e->enc = take(&r, PZ__E2E_ENC_LEN)))
        return PZ_E2E_ERROR_MALFORMED;
    if (!(p = take(&r, 4)))
        return PZ_E2E_ERROR_MALFORMED;
    e->aad_len = get_be32(p);
    if (e->aad_len > PZ_E2E_AAD_MAX || !(e->aad = take(&r, e->aad_len)))
        return PZ_E2E_ERROR_MALFORMED;
    e->header_len = len - r.left;
    if (!(p = take(&r, 4)))
        return PZ_E2E_ERROR_MALFORMED;
    e->ct_len = get_be32(p);
    if (e->ct_len < PZ__E2E_TAG_LEN || !(e->ct = take(&r, e->ct_len)))
        return PZ_E2E_ERROR_MALFORMED;
    e->signed_len = len - r.left;
    if (!(e->flags & PZ__E2E_FLAG_SEALED_SENDER)) {
        if (!(e->sig = take(&r, PZ__E2E_SIG_LEN)))
            return PZ_E2E_ERROR_MALFORMED;
    } else if (e->ct_len < PZ__E2E_TAG_LEN + 1 + 1 + PZ__E2E_SIG_LEN) {
        return PZ_E2E_ERROR_MALFORMED; /* no room for the inner sender and signature */
    }
    if (r.left != 0)
        return PZ_E2E_ERROR_MALFORMED;
    return 0;
}

int pz__e2e_parse_inner(const uint8_t *buf, size_t len, pz__e2e_inner *in)
{
    rd r = {buf, len};
    const uint8_t *p;
    memset(in, 0, sizeof(*in));
    if (!buf || !(p = take(&r, 1)))
        return PZ_E2E_ERROR_MALFORMED;
    in->sender_len = p[0];
    if (!(in->sender = (const char *)take(&r, in->sender_len)) || !pz__e2e_id_valid(in->sender, in->sender_len))
        return PZ_E2E_ERROR_MALFORMED;
    if (!(in->sig = take(&r, PZ__E2E_SIG_LEN)))
        return PZ_E2E_ERROR_MALFORMED;
    in->msg = r.p;
    in->msg_len = r.left;
    return 0;
}

size_t pz__e2e_info(const pz__e2e_env *e, uint8_t *out)
{
    uint8_t *p = out;
    memcpy(p, PZ__E2E_INFO_DOMAIN, sizeof(PZ__E2E_INFO_DOMAIN));
    p += sizeof(PZ__E2E_INFO_DOMAIN);
    *p++ = e->version;
    *p++ = e->suite;
    *p++ = e->flags;
    *p++ = (uint8_t)e->sender_len;
    memcpy(p, e->sender, e->sender_len);
    p += e->sender_len;
    *p++ = (uint8_t)e->recipient_len;
    memcpy(p, e->recipient, e->recipient_len);
    p += e->recipient_len;
    memcpy(p, e->key_id, PZ_E2E_KEY_ID_LEN);
    p += PZ_E2E_KEY_ID_LEN;
    put_be64(p, e->timestamp_ms);
    p += 8;
    memcpy(p, e->message_id, PZ_E2E_MESSAGE_ID_LEN);
    p += PZ_E2E_MESSAGE_ID_LEN;
    return (size_t)(p - out);
}

/* --- context ------------------------------------------------------------ */

struct pz_e2e {
    char *node_id;
    size_t node_id_len;
    pz_e2e_options opts;
    GRWLock keys_lock; /* readers: seal/open; writer: rotation */
    pz_nodekeys *keys;
    pz_peerdir *peers;
    pz_replay *replay;
};

G_DEFINE_QUARK(pz-e2e-error-quark, pz_e2e_error)

/* Set ERROR to CODE (a pz_e2e_error) and return RC. */
static int fail(GError **error, int rc, pz_e2e_error code, const char *fmt, ...) G_GNUC_PRINTF(4, 5);
static int fail(GError **error, int rc, pz_e2e_error code, const char *fmt, ...)
{
    if (error) {
        va_list ap;
        va_start(ap, fmt);
        g_autofree char *msg = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        g_set_error_literal(error, PZ_E2E_ERROR, (gint)code, msg);
    }
    return rc;
}

void pz_e2e_options_init(pz_e2e_options *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof(*o));
    o->struct_size = sizeof(*o);
    o->max_skew_ns = 30 * G_GUINT64_CONSTANT(1000000000);
    o->max_age_ns = 300 * G_GUINT64_CONSTANT(1000000000);
    o->replay_capacity = 65536;
    o->rotate_interval_ns = 7 * 86400 * G_GUINT64_CONSTANT(1000000000);
    o->grace_ns = 2 * 86400 * G_GUINT64_CONSTANT(1000000000);
    o->max_message = 16u << 20;
}

int pz_e2e_new(const char *node_id, const char *key_dir, const pz_e2e_options *opts, pz_e2e **out, GError **error)
{
    int rc = 0;
    pz_e2e *e2e = NULL;
    pz_err err;

    pz_err_init(&err);
    if (!out)
        return fail(error, PZ_EINVAL, PZ_E2E_ERROR_INVALID, "pz_e2e_new: OUT is NULL");
    *out = NULL;
    if (!node_id || !pz__e2e_id_valid(node_id, strlen(node_id)))
        return fail(error, PZ_EINVAL, PZ_E2E_ERROR_INVALID,
                    "invalid node id '%s': expected 1..64 of [A-Za-z0-9._-]", node_id ? node_id : "(null)");
    e2e = calloc(1, sizeof(*e2e));
    if (!e2e)
        return fail(error, PZ_ENOMEM, PZ_E2E_ERROR_FAILED, "out of memory");
    g_rw_lock_init(&e2e->keys_lock);
    pz_e2e_options_init(&e2e->opts);
    if (opts) {
        size_t n = opts->struct_size < sizeof(e2e->opts) ? opts->struct_size : sizeof(e2e->opts);
        if (n < sizeof(uint32_t)) {
            rc = fail(error, PZ_EINVAL, PZ_E2E_ERROR_INVALID, "pz_e2e_options: struct_size not set");
            goto out;
        }
        memcpy(&e2e->opts, opts, n);
        e2e->opts.struct_size = sizeof(e2e->opts);
    }
    if (e2e->opts.max_age_ns == 0 || e2e->opts.replay_capacity == 0 || e2e->opts.max_message == 0 ||
        e2e->opts.max_message > (1u << 30)) {
        rc = fail(error, PZ_EINVAL, PZ_E2E_ERROR_INVALID,
                  "E2E options: max_age, replay_capacity and max_message (<= 1 GiB) must be positive");
        goto out;
    }
    e2e->node_id = g_strdup(node_id);
    e2e->node_id_len = strlen(node_id);
    rc = pz_nodekeys_load(key_dir, &e2e->keys, &err);
    if (rc) {
        fail(error, rc, PZ_E2E_ERROR_KEYS, "%s", pz_err_msg(&err));
        goto out;
    }
    rc = pz_peerdir_new(&e2e->peers);
    if (rc == 0)
        rc = pz_replay_new(e2e->opts.replay_capacity, &e2e->replay);
    if (rc) {
        fail(error, rc, PZ_E2E_ERROR_FAILED, "cannot create the E2E context: %s", pz_strerror(rc));
        goto out;
    }
    rc = pz_peerdir_add(e2e->peers, node_id, pz_nodekeys_sign_pub(e2e->keys),
                        pz_nodekeys_long_term(e2e->keys)->pub, &err);
    if (rc) {
        fail(error, rc, PZ_E2E_ERROR_KEYS, "%s", pz_err_msg(&err));
        goto out;
    }
    *out = e2e;
    e2e = NULL;
out:
    pz_err_clear(&err);
    pz_e2e_free(e2e);
    return rc;
}

void pz_e2e_free(pz_e2e *e2e)
{
    if (!e2e)
        return;
    pz_nodekeys_free(e2e->keys);
    pz_peerdir_free(e2e->peers);
    pz_replay_free(e2e->replay);
    g_rw_lock_clear(&e2e->keys_lock);
    g_free(e2e->node_id);
    free(e2e);
}

const char *pz_e2e_node_id(const pz_e2e *e2e)
{
    return e2e ? e2e->node_id : NULL;
}

int pz_e2e_add_peer(pz_e2e *e2e, const char *node_id, const uint8_t sign_pub[32], const uint8_t e2e_pub[32],
                    GError **error)
{
    pz_err err;
    int rc;
    if (!e2e)
        return fail(error, PZ_EINVAL, PZ_E2E_ERROR_INVALID, "pz_e2e_add_peer: no context");
    pz_err_init(&err);
    rc = pz_peerdir_add(e2e->peers, node_id, sign_pub, e2e_pub, &err);
    if (rc)
        fail(error, rc, rc == PZ_ENOMEM ? PZ_E2E_ERROR_FAILED : PZ_E2E_ERROR_INVALID, "%s", pz_err_msg(&err));
    pz_err_clear(&err);
    return rc;
}

int pz_e2e_add_peer_cert(pz_e2e *e2e, const uint8_t *der, size_t len, GError **error)
{
    pz_cert_info info;
    pz_err err;
    int rc;
    if (!e2e || !der)
        return fail(error, PZ_EINVAL, PZ_E2E_ERROR_INVALID, "pz_e2e_add_peer_cert: missing argument");
    pz_err_init(&err);
    rc = pz_cert_node_info(der, len, &info, &err);
    if (rc == 0 && !info.has_keys)
        rc = pz_err_set(&err, PZ_EINVAL, "the certificate of node %s carries no E2E keys", info.node_id);
    if (rc)
        fail(error, rc, rc == PZ_ENOMEM ? PZ_E2E_ERROR_FAILED : PZ_E2E_ERROR_INVALID, "certificate: %s",
             pz_err_msg(&err));
    pz_err_clear(&err);
    if (rc)
        return rc;
    return pz_e2e_add_peer(e2e, info.node_id, info.sign_pub, info.e2e_pub, error);
}

int pz_e2e_add_key_record(pz_e2e *e2e, const char *node_id, const uint8_t *record, size_t len, uint64_t now_ns,
                          GError **error)
{
    pz_err err;
    int rc;
    if (!e2e)
        return fail(error, PZ_EINVAL, PZ_E2E_ERROR_INVALID, "pz_e2e_add_key_record: no context");
    pz_err_init(&err);
    rc = pz_peerdir_add_record(e2e->peers, node_id, record, len, now_ns / NS_PER_MS, &err);
    if (rc)
        fail(error, rc, PZ_E2E_ERROR_KEYS, "%s", pz_err_msg(&err));
    pz_err_clear(&err);
    return rc;
}

int pz_e2e_rotate(pz_e2e *e2e, uint64_t now_ns, int *created, GError **error)
{
    pz_err err;
    int rc, made = 0;
    uint64_t now_ms = now_ns / NS_PER_MS;
    if (created)
        *created = 0;
    if (!e2e)
        return fail(error, PZ_EINVAL, PZ_E2E_ERROR_INVALID, "pz_e2e_rotate: no context");
    pz_err_init(&err);
    g_rw_lock_writer_lock(&e2e->keys_lock);
    rc = pz_nodekeys_rotate(e2e->keys, now_ms, e2e->opts.rotate_interval_ns / NS_PER_MS,
                            e2e->opts.grace_ns / NS_PER_MS, &made, NULL, &err);
    g_rw_lock_writer_unlock(&e2e->keys_lock);
    if (rc)
        fail(error, rc, PZ_E2E_ERROR_KEYS, "key rotation: %s", pz_err_msg(&err));
    if (created)
        *created = made;
    pz_err_clear(&err);
    return rc;
}

int pz_e2e_current_record(pz_e2e *e2e, uint64_t now_ns, uint8_t record[PZ_E2E_KEY_RECORD_LEN])
{
    int rc = PZ_ENOENT;
    if (!e2e || !record)
        return PZ_EINVAL;
    g_rw_lock_reader_lock(&e2e->keys_lock);
    const pz_recv_key *k = pz_nodekeys_current(e2e->keys, now_ns / NS_PER_MS);
    if (!k->long_term) {
        memcpy(record, k->record, PZ_E2E_KEY_RECORD_LEN);
        rc = 0;
    }
    g_rw_lock_reader_unlock(&e2e->keys_lock);
    return rc;
}

void pz_e2e_free_bytes(uint8_t *buf, size_t len)
{
    if (!buf)
        return;
    pz_crypto_wipe(buf, len);
    free(buf);
}

/* --- seal --------------------------------------------------------------- */

int pz_e2e_seal(pz_e2e *e2e, const char *recipient_id, const pz_e2e_seal_params *params, const uint8_t *msg,
                size_t len, uint64_t now_ns, uint8_t **out, size_t *out_len, GError **error)
{
    int rc = 0;
    pz_e2e_seal_params p = {sizeof(p), PZ_E2E_SUITE_DEFAULT, 0, NULL, 0};
    uint8_t pub[PZ_X25519_LEN], key_id[PZ_KEY_ID_LEN];
    /* One CSPRNG call for the ephemeral secret key and the message id. */
    uint8_t rnd[PZ_HPKE_SK_LEN + PZ_E2E_MESSAGE_ID_LEN];
    const uint8_t *ske = rnd, *msg_id = rnd + PZ_HPKE_SK_LEN;
    uint8_t info[PZ__E2E_INFO_MAX];
    size_t info_len, rlen, slen, header_len, ct_len, inner_len, total;
    const size_t dom = sizeof(PZ__E2E_SIG_DOMAIN);
    uint8_t *buf = NULL, *env, *w, *inner = NULL, *tbs = NULL;
    size_t tbs_len = 0;
    pz__e2e_env view;
    pz_hpke_ctx hpke;
    uint64_t now_ms = now_ns / NS_PER_MS;

    memset(&hpke, 0, sizeof(hpke));
    if (out)
        *out = NULL;
    if (out_len)
        *out_len = 0;
    if (!e2e || !out || !out_len || (len && !msg))
        return fail(error, PZ_EINVAL, PZ_E2E_ERROR_INVALID, "pz_e2e_seal: missing argument");
    if (params) {
        if (params->struct_size < sizeof(uint32_t))
            return fail(error, PZ_EINVAL, PZ_E2E_ERROR_INVALID, "pz_e2e_seal_params: struct_size not set");
        memcpy(&p, params, params->struct_size < sizeof(p) ? params->struct_size : sizeof(p));
    }
    if (p.suite == PZ_E2E_SUITE_DEFAULT)
        p.suite = PZ_E2E_SUITE_CHACHA20_POLY1305;
    if ((unsigned)p.suite > 255 || !suite_known((uint8_t)p.suite))
        return fail(error, PZ_EINVAL, PZ_E2E_ERROR_INVALID, "unknown suite %d", (int)p.suite);
    if (!recipient_id || !pz__e2e_id_valid(recipient_id, strlen(recipient_id)))
        return fail(error, PZ_EINVAL, PZ_E2E_ERROR_INVALID, "invalid recipient id");
    if (len > e2e->opts.max_message)
        return fail(error, PZ_ERANGE, PZ_E2E_ERROR_TOO_LARGE, "message of %zu bytes exceeds the limit of %zu", len,
                    e2e->opts.max_message);
    if (p.aad_len > PZ_E2E_AAD_MAX || (p.aad_len && !p.aad))
        return fail(error, p.aad_len && !p.aad ? PZ_EINVAL : PZ_ERANGE,
                    p.aad_len && !p.aad ? PZ_E2E_ERROR_INVALID : PZ_E2E_ERROR_TOO_LARGE,
                    "associated data over %d bytes or NULL", PZ_E2E_AAD_MAX);
    if (!strcmp(recipient_id, e2e->node_id)) {
        /* To ourselves: our current receiving key, straight from the key
         * set (no record needs to travel). */
        g_rw_lock_reader_lock(&e2e->keys_lock);
        const pz_recv_key *k = pz_nodekeys_current(e2e->keys, now_ms);
        memcpy(pub, k->pub, sizeof(pub));
        memcpy(key_id, k->key_id, sizeof(key_id));
        g_rw_lock_reader_unlock(&e2e->keys_lock);
        rc = 0;
    } else {
        rc = pz_peerdir_seal_key(e2e->peers, recipient_id, now_ms, pub, key_id);
    }
    if (rc)
        return fail(error, rc, PZ_E2E_ERROR_RECIPIENT_UNKNOWN, "no E2E keys for node %s (add its certificate)",
                    recipient_id);
    rc = pz_crypto_random(rnd, sizeof(rnd));
    if (rc)
        return fail(error, rc, PZ_E2E_ERROR_FAILED, "random generator failed");

    rlen = strlen(recipient_id);
    slen = p.sealed_sender ? 0 : e2e->node_id_len;
    inner_len = p.sealed_sender ? 1 + e2e->node_id_len + PZ__E2E_SIG_LEN + len : len;
    header_len = 3 + 1 + slen + 1 + rlen + PZ_KEY_ID_LEN + 8 + PZ_E2E_MESSAGE_ID_LEN + PZ__E2E_ENC_LEN + 4 + p.aad_len;
    ct_len = inner_len + PZ__E2E_TAG_LEN;
    total = header_len + 4 + ct_len + (p.sealed_sender ? 0 : PZ__E2E_SIG_LEN);
    /* The signed bytes are DOMAIN || envelope: build the envelope after room
     * for the domain, sign in place, then move it to the front. */
    buf = malloc(dom + total);
    if (!buf) {
        rc = fail(error, PZ_ENOMEM, PZ_E2E_ERROR_FAILED, "out of memory");
        goto out;
    }
    env = buf + dom;
    w = env;
    *w++ = PZ_E2E_VERSION;
    *w++ = (uint8_t)p.suite;
    *w++ = p.sealed_sender ? PZ__E2E_FLAG_SEALED_SENDER : 0;
    *w++ = (uint8_t)slen;
    memcpy(w, e2e->node_id, slen);
    w += slen;
    *w++ = (uint8_t)rlen;
    memcpy(w, recipient_id, rlen);
    w += rlen;
    memcpy(w, key_id, PZ_KEY_ID_LEN);
    w += PZ_KEY_ID_LEN;
    put_be64(w, now_ms);
    w += 8;
    memcpy(w, msg_id, PZ_E2E_MESSAGE_ID_LEN);
    w += PZ_E2E_MESSAGE_ID_LEN;
    uint8_t *enc = w;
    w += PZ__E2E_ENC_LEN;
    put_be32(w, (uint32_t)p.aad_len);
    w += 4;
    if (p.aad_len)
        memcpy(w, p.aad, p.aad_len);
    w += p.aad_len;
    g_assert((size_t)(w - env) == header_len);
    put_be32(w, (uint32_t)ct_len);
    w += 4;

    memset(&view, 0, sizeof(view));
    view.version = env[0];
    view.suite = env[1];
    view.flags = env[2];
    view.sender = e2e->node_id;
    view.sender_len = slen;
    view.recipient = recipient_id;
    view.recipient_len = rlen;
    view.key_id = key_id;
    view.timestamp_ms = now_ms;
    view.message_id = msg_id;
    info_len = pz__e2e_info(&view, info);

    rc = pz_hpke_setup_sender(&hpke, (pz_hpke_aead)p.suite, pub, info, info_len, ske, NULL, NULL, enc);
    if (rc) {
        fail(error, rc, PZ_E2E_ERROR_FAILED, "HPKE set-up failed: %s", pz_strerror(rc));
        goto out;
    }
    if (!p.sealed_sender) {
        rc = pz_hpke_seal(&hpke, env, header_len, msg, len, w);
        if (rc == 0) {
            memcpy(buf, PZ__E2E_SIG_DOMAIN, dom);
            rc = pz_sign(pz_nodekeys_sign_key(e2e->keys), buf, dom + header_len + 4 + ct_len, w + ct_len);
        }
    } else {
        /* Inner signature over DOMAIN || header || sender_len || sender ||
         * message; the inner plaintext is sender_len || sender || sig ||
         * message. */
        const size_t idom = sizeof(PZ__E2E_INNER_SIG_DOMAIN);
        const size_t sl = e2e->node_id_len;
        tbs_len = idom + header_len + 1 + sl + len;
        tbs = malloc(tbs_len);
        inner = malloc(inner_len);
        if (!tbs || !inner) {
            rc = fail(error, PZ_ENOMEM, PZ_E2E_ERROR_FAILED, "out of memory");
            goto out;
        }
        uint8_t *t = tbs;
        memcpy(t, PZ__E2E_INNER_SIG_DOMAIN, idom);
        t += idom;
        memcpy(t, env, header_len);
        t += header_len;
        *t++ = (uint8_t)sl;
        memcpy(t, e2e->node_id, sl);
        t += sl;
        if (len)
            memcpy(t, msg, len);
        inner[0] = (uint8_t)sl;
        memcpy(inner + 1, e2e->node_id, sl);
        if (len)
            memcpy(inner + 1 + sl + PZ__E2E_SIG_LEN, msg, len);
        rc = pz_sign(pz_nodekeys_sign_key(e2e->keys), tbs, tbs_len, inner + 1 + sl);
        if (rc == 0)
            rc = pz_hpke_seal(&hpke, env, header_len, inner, inner_len, w);
    }
    if (rc) {
        if (!(error && *error))
            fail(error, rc, PZ_E2E_ERROR_FAILED, "sealing failed: %s", pz_strerror(rc));
        goto out;
    }
    memmove(buf, env, total);
    *out = buf;
    *out_len = total;
    buf = NULL;
out:
    pz_hpke_ctx_clear(&hpke);
    pz_crypto_wipe(rnd, sizeof(rnd));
    if (tbs)
        pz_e2e_free_bytes(tbs, tbs_len);
    if (inner)
        pz_e2e_free_bytes(inner, inner_len);
    free(buf);
    return rc;
}

/* --- open --------------------------------------------------------------- */

/* Verify SIG by NODE_ID (LEN bytes, not NUL-terminated) over DOMAIN ||
 * PARTS, looking the key up in the peer directory. Returns 0 or fails with
 * SENDER_UNEXPECTED / SENDER_UNKNOWN / SIGNATURE. */
static int check_sender(pz_e2e *e2e, const pz_e2e_open_params *p, const char *id, size_t id_len,
                        const char *domain, size_t domain_len, const pz_iov *parts, size_t n, const uint8_t *sig,
                        char sender_out[PZ_E2E_ID_MAX + 1], GError **error)
{
    int rc = 0;
    pz_peer *peer = NULL;
    uint8_t *tbs = NULL;
    size_t tbs_len = domain_len;

    memcpy(sender_out, id, id_len);
    sender_out[id_len] = 0;
    if (p->expect_sender && strcmp(p->expect_sender, sender_out))
        return fail(error, PZ_EREFUSED, PZ_E2E_ERROR_SENDER_UNEXPECTED, "sent by %s, expected %s", sender_out,
                    p->expect_sender);
    peer = pz_peerdir_get(e2e->peers, sender_out);
    if (!peer)
        return fail(error, PZ_ENOENT, PZ_E2E_ERROR_SENDER_UNKNOWN, "sender %s is unknown (no certificate)",
                    sender_out);
    for (size_t i = 0; i < n; i++)
        tbs_len += parts[i].len;
    tbs = malloc(tbs_len);
    if (!tbs) {
        rc = fail(error, PZ_ENOMEM, PZ_E2E_ERROR_FAILED, "out of memory");
        goto out;
    }
    memcpy(tbs, domain, domain_len);
    size_t off = domain_len;
    for (size_t i = 0; i < n; i++) {
        if (parts[i].len)
            memcpy(tbs + off, parts[i].base, parts[i].len);
        off += parts[i].len;
    }
    if (pz_verify(pz_peer_verify_key(peer), tbs, tbs_len, sig, PZ__E2E_SIG_LEN))
        rc = fail(error, PZ_ECRYPTO, PZ_E2E_ERROR_SIGNATURE, "signature by %s does not verify", sender_out);
out:
    if (tbs)
        pz_e2e_free_bytes(tbs, tbs_len);
    pz_peer_unref(peer);
    return rc;
}

/* Check-and-remember (SENDER, MESSAGE_ID) sent at TIMESTAMP_MS. */
static int replay_check(pz_e2e *e2e, const char *sender, const uint8_t *message_id, uint64_t timestamp_ms,
                        uint64_t now_ns)
{
    uint8_t key[PZ_E2E_ID_MAX + 1 + PZ_E2E_MESSAGE_ID_LEN];
    size_t sl = strlen(sender);
    uint64_t max_age_ms = e2e->opts.max_age_ns / NS_PER_MS;
    /* Remember the id until the envelope is refused as expired anyway:
     * after timestamp + max_age (a function of the signed timestamp, so a
     * replay carries the same expiry; see replay.h). */
    uint64_t expires_ms = add_sat(add_sat(timestamp_ms, max_age_ms), 1);
    uint64_t expires_ns = expires_ms > UINT64_MAX / NS_PER_MS ? UINT64_MAX : expires_ms * NS_PER_MS;

    memcpy(key, sender, sl);
    key[sl] = 0;
    memcpy(key + sl + 1, message_id, PZ_E2E_MESSAGE_ID_LEN);
    return pz_replay_check(e2e->replay, key, sl + 1 + PZ_E2E_MESSAGE_ID_LEN, expires_ns, now_ns);
}

int pz_e2e_mark_seen(pz_e2e *e2e, const char *sender_id, const uint8_t message_id[PZ_E2E_MESSAGE_ID_LEN],
                     uint64_t timestamp_ns, uint64_t now_ns)
{
    if (!e2e || !sender_id || !message_id || !pz__e2e_id_valid(sender_id, strlen(sender_id)))
        return PZ_EINVAL;
    return replay_check(e2e, sender_id, message_id, timestamp_ns / NS_PER_MS, now_ns);
}

static int check_replay(pz_e2e *e2e, const char *sender, const pz__e2e_env *env, uint64_t now_ns, GError **error)
{
    int rc = replay_check(e2e, sender, env->message_id, env->timestamp_ms, now_ns);
    if (rc == PZ_EREPLAY)
        return fail(error, PZ_EREPLAY, PZ_E2E_ERROR_REPLAY, "message id already seen from %s (replay)", sender);
    if (rc == PZ_ESTALE)
        return fail(error, PZ_ESTALE, PZ_E2E_ERROR_EXPIRED, "envelope expired");
    if (rc)
        return fail(error, rc, PZ_E2E_ERROR_FAILED, "replay cache: %s", pz_strerror(rc));
    return 0;
}

int pz_e2e_open(pz_e2e *e2e, const uint8_t *envbuf, size_t len, const pz_e2e_open_params *params, uint64_t now_ns,
                uint8_t **msg, size_t *msg_len, pz_e2e_meta *meta, GError **error)
{
    int rc = 0, code;
    pz_e2e_open_params p = {sizeof(p), NULL, 0, NULL, 0};
    pz__e2e_env env;
    const pz_recv_key *key = NULL;
    uint8_t info[PZ__E2E_INFO_MAX];
    size_t info_len, pt_len = 0;
    uint8_t *pt = NULL;
    const uint8_t *out_msg = NULL;
    size_t out_msg_len = 0;
    char sender[PZ_E2E_ID_MAX + 1] = "";
    pz_hpke_ctx hpke;
    uint64_t now_ms = now_ns / NS_PER_MS;
    int locked = 0;

    memset(&hpke, 0, sizeof(hpke));
    if (msg)
        *msg = NULL;
    if (msg_len)
        *msg_len = 0;
    if (!e2e || !msg || !msg_len || (!envbuf && len))
        return fail(error, PZ_EINVAL, PZ_E2E_ERROR_INVALID, "pz_e2e_open: missing argument");
    if (params) {
        if (params->struct_size < sizeof(uint32_t))
            return fail(error, PZ_EINVAL, PZ_E2E_ERROR_INVALID, "pz_e2e_open_params: struct_size not set");
        memcpy(&p, params, params->struct_size < sizeof(p) ? params->struct_size : sizeof(p));
    }

    /* 1. version and suite (and structure). */
    code = pz__e2e_parse(envbuf, len, &env);
    if (code == PZ_E2E_ERROR_VERSION)
        return fail(error, PZ_ENOTSUP, PZ_E2E_ERROR_VERSION, "unknown envelope version %u", envbuf[0]);
    if (code == PZ_E2E_ERROR_SUITE)
        return fail(error, PZ_ENOTSUP, PZ_E2E_ERROR_SUITE, "unknown cipher suite %u", envbuf[1]);
    if (code)
        return fail(error, PZ_EINVAL, PZ_E2E_ERROR_MALFORMED, "malformed envelope");

    /* 2. recipient is us. */
    if (env.recipient_len != e2e->node_id_len || memcmp(env.recipient, e2e->node_id, e2e->node_id_len))
        return fail(error, PZ_EREFUSED, PZ_E2E_ERROR_RECIPIENT, "envelope is for node %.*s, this is %s",
                    (int)env.recipient_len, env.recipient, e2e->node_id);
    if (p.check_aad && (env.aad_len != p.expect_aad_len || (env.aad_len && memcmp(env.aad, p.expect_aad, env.aad_len))))
        return fail(error, PZ_EREFUSED, PZ_E2E_ERROR_AAD, "associated data differs from the expected");

    /* 3. recipient key: current, or retired within its grace period. The
     * read lock keeps rotation from destroying it while we use it. */
    g_rw_lock_reader_lock(&e2e->keys_lock);
    locked = 1;
    rc = pz_nodekeys_find(e2e->keys, env.key_id, now_ms, e2e->opts.grace_ns / NS_PER_MS, &key);
    if (rc == PZ_ENOENT) {
        fail(error, rc, PZ_E2E_ERROR_KEY_UNKNOWN, "unknown recipient key id");
        goto out;
    }
    if (rc) {
        rc = fail(error, PZ_ESTALE, PZ_E2E_ERROR_KEY_RETIRED, "recipient key retired past its grace period");
        goto out;
    }

    /* 4. timestamp within skew and maximum age. */
    if (env.timestamp_ms > add_sat(now_ms, e2e->opts.max_skew_ns / NS_PER_MS)) {
        rc = fail(error, PZ_ESTALE, PZ_E2E_ERROR_FUTURE, "timestamp %" G_GUINT64_FORMAT " ms is in the future",
                  env.timestamp_ms);
        goto out;
    }
    if (now_ms > add_sat(env.timestamp_ms, e2e->opts.max_age_ns / NS_PER_MS)) {
        rc = fail(error, PZ_ESTALE, PZ_E2E_ERROR_EXPIRED, "envelope expired (sealed %" G_GUINT64_FORMAT " ms ago)",
                  now_ms - env.timestamp_ms);
        goto out;
    }

    info_len = pz__e2e_info(&env, info);
    if (!(env.flags & PZ__E2E_FLAG_SEALED_SENDER)) {
        /* 5. the sender's signature over everything before it. 6. replay. */
        pz_iov part = {envbuf, env.signed_len};
        rc = check_sender(e2e, &p, env.sender, env.sender_len, PZ__E2E_SIG_DOMAIN, sizeof(PZ__E2E_SIG_DOMAIN),
                          &part, 1, env.sig, sender, error);
        if (rc == 0)
            rc = check_replay(e2e, sender, &env, now_ns, error);
        if (rc)
            goto out;
    }

    /* 7. decrypt. */
    pt_len = env.ct_len - PZ__E2E_TAG_LEN;
    pt = malloc(pt_len ? pt_len : 1);
    if (!pt) {
        rc = fail(error, PZ_ENOMEM, PZ_E2E_ERROR_FAILED, "out of memory");
        goto out;
    }
    rc = pz_hpke_setup_recipient(&hpke, (pz_hpke_aead)env.suite, env.enc, key->sk, key->pub, info, info_len, NULL);
    if (rc == 0)
        rc = pz_hpke_open(&hpke, envbuf, env.header_len, env.ct, env.ct_len, pt);
    if (rc) {
        rc = fail(error, PZ_ECRYPTO, PZ_E2E_ERROR_DECRYPT, "decryption failed");
        goto out;
    }
    out_msg = pt;
    out_msg_len = pt_len;

    if (env.flags & PZ__E2E_FLAG_SEALED_SENDER) {
        /* Sealed sender: sender, signature and replay after decryption. */
        pz__e2e_inner in;
        if (pz__e2e_parse_inner(pt, pt_len, &in)) {
            rc = fail(error, PZ_EINVAL, PZ_E2E_ERROR_MALFORMED, "malformed sealed-sender content");
            goto out;
        }
        uint8_t sl = (uint8_t)in.sender_len;
        pz_iov parts[4] = {{envbuf, env.header_len}, {&sl, 1}, {in.sender, in.sender_len}, {in.msg, in.msg_len}};
        rc = check_sender(e2e, &p, in.sender, in.sender_len, PZ__E2E_INNER_SIG_DOMAIN,
                          sizeof(PZ__E2E_INNER_SIG_DOMAIN), parts, 4, in.sig, sender, error);
        if (rc == 0)
            rc = check_replay(e2e, sender, &env, now_ns, error);
        if (rc)
            goto out;
        out_msg = in.msg;
        out_msg_len = in.msg_len;
    }

    if (meta) {
        uint32_t size = meta->struct_size ? meta->struct_size : sizeof(*meta);
        pz_e2e_meta m;
        memset(&m, 0, sizeof(m));
        m.struct_size = sizeof(m);
        memcpy(m.sender_id, sender, sizeof(m.sender_id));
        m.timestamp_ns = env.timestamp_ms > UINT64_MAX / NS_PER_MS ? UINT64_MAX : env.timestamp_ms * NS_PER_MS;
        memcpy(m.message_id, env.message_id, PZ_E2E_MESSAGE_ID_LEN);
        memcpy(m.key_id, env.key_id, PZ_E2E_KEY_ID_LEN);
        m.suite = (pz_e2e_suite)env.suite;
        m.sealed_sender = !!(env.flags & PZ__E2E_FLAG_SEALED_SENDER);
        m.aad = env.aad;
        m.aad_len = env.aad_len;
        memcpy(meta, &m, size < sizeof(m) ? size : sizeof(m));
    }
    if (out_msg != pt) {
        memmove(pt, out_msg, out_msg_len);
        pz_crypto_wipe(pt + out_msg_len, pt_len - out_msg_len);
    }
    *msg = pt;
    *msg_len = out_msg_len;
    pt = NULL;
out:
    if (locked)
        g_rw_lock_reader_unlock(&e2e->keys_lock);
    pz_hpke_ctx_clear(&hpke);
    if (pt)
        pz_e2e_free_bytes(pt, pt_len);
    return rc;
}
