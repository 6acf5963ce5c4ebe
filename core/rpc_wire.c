/* core/rpc_wire.c — RPC envelopes: GVariant encoding/decoding and their
 * Ed25519 signatures or HMAC-SHA256 tags (see rpc_wire.h and
 * docs/rpc-wire.md). */
#include "config.h"

#include <stdarg.h>
#include <string.h>

#include <gcrypt.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <nettle/eddsa.h>

#include "rpc_frame.h"
#include "rpc_wire.h"

#define DOMAIN_LEN (sizeof(PZ_WIRE_DOMAIN_CALL)) /* including the NUL separator */
G_STATIC_ASSERT(sizeof(PZ_WIRE_DOMAIN_CALL) == sizeof(PZ_WIRE_DOMAIN_RESP));

struct pz_rpc_key {
    gnutls_privkey_t priv;
    uint8_t pub[32];
};

struct pz_wire_mac {
    gcry_mac_hd_t hd;
};

PZ_API GQuark pz_rpc_error_quark(void)
{
    return g_quark_from_static_string("pz-rpc-error-quark");
}

int pz_rpc_set_error(GError **error, int code, const char *fmt, ...)
{
    if (error && !*error) {
        va_list ap;
        va_start(ap, fmt);
        char *msg = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        g_set_error_literal(error, PZ_RPC_ERROR, code, msg);
        g_free(msg);
    }
    return code;
}

PZ_API const char *pz_rpc_status_name(int32_t status)
{
    static const char *const names[PZ_RPC_STATUS__COUNT] = {
        [PZ_RPC_OK] = "ok",
        [PZ_RPC_RATE_LIMITED] = "rate_limited",
        [PZ_RPC_BAD_SIGNATURE] = "bad_signature",
        [PZ_RPC_REPLAY] = "replay",
        [PZ_RPC_STALE] = "stale",
        [PZ_RPC_WRONG_TARGET] = "wrong_target",
        [PZ_RPC_WRONG_CALLER] = "wrong_caller",
        [PZ_RPC_UNAUTHORIZED] = "unauthorized",
        [PZ_RPC_NO_METHOD] = "no_method",
        [PZ_RPC_BAD_REQUEST] = "bad_request",
        [PZ_RPC_MODE_MISMATCH] = "mode_mismatch",
        [PZ_RPC_TIMEOUT] = "timeout",
        [PZ_RPC_UNAVAILABLE] = "unavailable",
        [PZ_RPC_HANDLER_ERROR] = "handler_error",
    };
    if (status >= 0 && status < PZ_RPC_STATUS__COUNT)
        return names[status];
    if (status >= PZ_RPC_STATUS_APP)
        return "app";
    return "unknown";
}

int pz_wire_method_valid(const char *m)
{
    if (!m || !(m[0] >= 'a' && m[0] <= 'z'))
        return 0;
    size_t i = 0;
    for (; m[i]; i++) {
        char c = m[i];
        if (i >= PZ_RPC_METHOD_MAX)
            return 0;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

int pz_wire_node_id_valid(const char *id)
{
    if (!id || !id[0])
        return 0;
    for (size_t i = 0; id[i]; i++) {
        char c = id[i];
        if (i >= PZ_NODE_ID_MAX)
            return 0;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Keys and MACs. */

static gpointer gcrypt_init(gpointer unused)
{
    (void)unused;
    /* Selects the library version; initialisation proper (secure memory)
     * belongs to the process (core crypto), which may finish it later. */
    gcry_check_version(NULL);
    return NULL;
}

static void ensure_gcrypt(void)
{
    static GOnce once = G_ONCE_INIT;
    g_once(&once, gcrypt_init, NULL);
}

PZ_API int pz_rpc_key_new(const uint8_t seed[32], pz_rpc_key **out, GError **error)
{
    int rc = 0;
    *out = NULL;
    pz_rpc_key *k = g_new0(pz_rpc_key, 1);
    ed25519_sha512_public_key(k->pub, seed);
    if (gnutls_privkey_init(&k->priv) < 0) {
        rc = pz_rpc_set_error(error, PZ_ENOMEM, "signing key: out of memory");
        goto out;
    }
    gnutls_datum_t x = {k->pub, 32};
    gnutls_datum_t d = {(unsigned char *)seed, 32};
    int grc = gnutls_privkey_import_ecc_raw(k->priv, GNUTLS_ECC_CURVE_ED25519, &x, NULL, &d);
    if (grc < 0) {
        rc = pz_rpc_set_error(error, PZ_ECRYPTO, "signing key: %s", gnutls_strerror(grc));
        goto out;
    }
    *out = k;
    k = NULL;
out:
    pz_rpc_key_free(k);
    return rc;
}

PZ_API int pz_rpc_key_generate(pz_rpc_key **out, GError **error)
{
    uint8_t seed[32];
    *out = NULL;
    if (gnutls_rnd(GNUTLS_RND_KEY, seed, sizeof(seed)) < 0)
        return pz_rpc_set_error(error, PZ_ECRYPTO, "signing key: random generator failed");
    int rc = pz_rpc_key_new(seed, out, error);
    gnutls_memset(seed, 0, sizeof(seed));
    return rc;
}

PZ_API void pz_rpc_key_public(const pz_rpc_key *key, uint8_t pub[32])
{
    memcpy(pub, key->pub, 32);
}

PZ_API void pz_rpc_key_free(pz_rpc_key *key)
{
    if (!key)
        return;
    if (key->priv)
        gnutls_privkey_deinit(key->priv);
    g_free(key);
}

int pz_wire_pubkey_import(const uint8_t raw[32], gnutls_pubkey_t *out)
{
    gnutls_pubkey_t pub;
    *out = NULL;
    if (gnutls_pubkey_init(&pub) < 0)
        return PZ_ENOMEM;
    gnutls_datum_t x = {(unsigned char *)raw, 32};
    if (gnutls_pubkey_import_ecc_raw(pub, GNUTLS_ECC_CURVE_ED25519, &x, NULL) < 0) {
        gnutls_pubkey_deinit(pub);
        return PZ_ECRYPTO;
    }
    *out = pub;
    return 0;
}

int pz_wire_mac_new(const uint8_t *key, size_t key_len, pz_wire_mac **out)
{
    ensure_gcrypt();
    *out = NULL;
    pz_wire_mac *m = g_try_new0(pz_wire_mac, 1);
    if (!m)
        return PZ_ENOMEM;
    if (gcry_mac_open(&m->hd, GCRY_MAC_HMAC_SHA256, GCRY_MAC_FLAG_SECURE, NULL) != 0) {
        g_free(m);
        return PZ_ECRYPTO;
    }
    if (gcry_mac_setkey(m->hd, key, key_len) != 0) {
        pz_wire_mac_free(m);
        return PZ_ECRYPTO;
    }
    *out = m;
    return 0;
}

void pz_wire_mac_free(pz_wire_mac *mac)
{
    if (!mac)
        return;
    gcry_mac_close(mac->hd); /* secure handle: key wiped */
    g_free(mac);
}

/* DOMAIN ‖ 0x00 ‖ DATA in one buffer (Ed25519 signs a whole message). Small
 * messages use the caller's stack buffer. */
static uint8_t *domain_message(const char *domain, const uint8_t *data, size_t len, uint8_t *stack,
                               size_t stack_len, size_t *total)
{
    *total = DOMAIN_LEN + len;
    uint8_t *m = *total <= stack_len ? stack : g_try_malloc(*total);
    if (!m)
        return NULL;
    memcpy(m, domain, DOMAIN_LEN);
    memcpy(m + DOMAIN_LEN, data, len);
    return m;
}

int pz_wire_sign(const pz_rpc_key *key, const char *domain, const uint8_t *data, size_t len,
                 uint8_t sig[PZ_WIRE_SIG_LEN])
{
    uint8_t stack[1024];
    size_t total;
    int rc = PZ_ECRYPTO;
    uint8_t *m = domain_message(domain, data, len, stack, sizeof(stack), &total);
    if (!m)
        return PZ_ENOMEM;
    gnutls_datum_t in = {m, (unsigned)total}, s = {NULL, 0};
    if (gnutls_privkey_sign_data2(key->priv, GNUTLS_SIGN_EDDSA_ED25519, 0, &in, &s) < 0)
        goto out;
    if (s.size != PZ_WIRE_SIG_LEN)
        goto out;
    memcpy(sig, s.data, PZ_WIRE_SIG_LEN);
    rc = 0;
out:
    gnutls_free(s.data);
    if (m != stack)
        g_free(m);
    return rc;
}

int pz_wire_verify_sig(gnutls_pubkey_t pub, const char *domain, const uint8_t *data, size_t len,
                       const uint8_t *sig, size_t sig_len)
{
    uint8_t stack[1024];
    size_t total;
    if (!pub || sig_len != PZ_WIRE_SIG_LEN)
        return PZ_ECRYPTO;
    uint8_t *m = domain_message(domain, data, len, stack, sizeof(stack), &total);
    if (!m)
        return PZ_ENOMEM;
    gnutls_datum_t in = {m, (unsigned)total}, s = {(unsigned char *)sig, (unsigned)sig_len};
    int grc = gnutls_pubkey_verify_data2(pub, GNUTLS_SIGN_EDDSA_ED25519, 0, &in, &s);
    if (m != stack)
        g_free(m);
    return grc < 0 ? PZ_ECRYPTO : 0;
}

static int mac_compute(pz_wire_mac *mac, const char *domain, const uint8_t *data, size_t len,
                       uint8_t tag[PZ_WIRE_MAC_LEN])
{
    size_t tlen = PZ_WIRE_MAC_LEN;
    if (gcry_mac_reset(mac->hd) || gcry_mac_write(mac->hd, domain, DOMAIN_LEN) ||
        gcry_mac_write(mac->hd, data, len) || gcry_mac_read(mac->hd, tag, &tlen) || tlen != PZ_WIRE_MAC_LEN)
        return PZ_ECRYPTO;
    return 0;
}

static int mac_check(pz_wire_mac *mac, const char *domain, const uint8_t *data, size_t len, const uint8_t *tag,
                     size_t tag_len)
{
    if (!mac || tag_len != PZ_WIRE_MAC_LEN)
        return PZ_ECRYPTO;
    if (gcry_mac_reset(mac->hd) || gcry_mac_write(mac->hd, domain, DOMAIN_LEN) ||
        gcry_mac_write(mac->hd, data, len))
        return PZ_ECRYPTO;
    return gcry_mac_verify(mac->hd, tag, tag_len) == 0 ? 0 : PZ_ECRYPTO; /* constant time */
}

/* Authenticate the serialized signed part DATA: the tag goes in TAG, its
 * length in *TAG_LEN (0 for mode 0). */
static int auth_make(const pz_wire_auth *auth, const char *domain, const uint8_t *data, size_t len, uint8_t *tag,
                     size_t *tag_len)
{
    *tag_len = 0;
    if (!auth || auth->mode == 0)
        return 0;
    if (auth->mode == PZ_WIRE_MODE_SIG) {
        if (!auth->key)
            return PZ_ECRYPTO;
        *tag_len = PZ_WIRE_SIG_LEN;
        return pz_wire_sign(auth->key, domain, data, len, tag);
    }
    if (auth->mode == PZ_WIRE_MODE_MAC) {
        if (!auth->mac)
            return PZ_ECRYPTO;
        *tag_len = PZ_WIRE_MAC_LEN;
        return mac_compute(auth->mac, domain, data, len, tag);
    }
    return PZ_EINVAL;
}

static int auth_check(const pz_wire_auth *auth, const char *domain, GVariant *signed_part, const uint8_t *tag,
                      size_t tag_len)
{
    const uint8_t *data = g_variant_get_data(signed_part);
    size_t len = g_variant_get_size(signed_part);
    if (!auth)
        return PZ_ECRYPTO;
    if (auth->mode == PZ_WIRE_MODE_SIG)
        return pz_wire_verify_sig(auth->pub, domain, data, len, tag, tag_len);
    if (auth->mode == PZ_WIRE_MODE_MAC)
        return mac_check(auth->mac, domain, data, len, tag, tag_len);
    return PZ_ECRYPTO;
}

/* ------------------------------------------------------------------------ */
/* Encoding.
 *
 * Envelopes are serialized directly in GVariant normal form (the GVariant
 * specification, "Serialisation"), without building GVariant trees: their
 * types are fixed, and building and serializing trees cost more than the
 * MAC of a mac-mode call. Only params/data are GVariant values, whose
 * serialization GLib provides. Receivers check normal form with GLib; the
 * unit tests compare these bytes with g_variant_get_data's. */

/* One tuple member: DATA/LEN serialized, ALIGN its alignment (1, 4, 8),
 * VARIABLE when its type is not fixed-size. */
typedef struct member {
    const void *data;
    size_t len;
    unsigned align;
    int variable;
} member;

static void put_le(GByteArray *b, uint64_t v, unsigned n)
{
    uint8_t x[8];
    for (unsigned i = 0; i < n; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    g_byte_array_append(b, x, n);
}

static void pad_to(GByteArray *b, size_t base, unsigned align)
{
    static const uint8_t zeros[8];
    size_t rem = (b->len - base) % align;
    if (rem)
        g_byte_array_append(b, zeros, (guint)(align - rem));
}

/* Append the normal-form serialization of a variable-size tuple of the N
 * members M to B (whose length is aligned for the tuple). */
static void put_tuple(GByteArray *b, const member *m, size_t n)
{
    size_t base = b->len, offs[8];
    size_t no = 0;
    for (size_t i = 0; i < n; i++) {
        pad_to(b, base, m[i].align);
        g_byte_array_append(b, m[i].data, (guint)m[i].len);
        if (m[i].variable && i + 1 < n)
            offs[no++] = b->len - base;
    }
    /* Framing offsets, last member's first, each of the smallest size
     * that can address the whole tuple (gvs_calculate_total_size). */
    size_t body = b->len - base;
    unsigned osz = body + no <= 0xff ? 1 : body + 2 * no <= 0xffff ? 2 : body + 4 * no <= 0xffffffffu ? 4 : 8;
    for (size_t j = no; j-- > 0;)
        put_le(b, offs[j], osz);
}

static member m_str(const char *s)
{
    return (member){s, strlen(s) + 1, 1, 1};
}

static member m_bytes(const void *p, size_t n)
{
    return (member){p, n, 1, 1};
}

static member m_fixed(const void *p, unsigned n)
{
    return (member){p, n, n, 0};
}

/* A 'v' member's bytes: value ‖ 0x00 ‖ type string, built in TMP. */
static member m_variant(GByteArray *tmp, GVariant *v)
{
    const char *type = g_variant_get_type_string(v);
    g_byte_array_set_size(tmp, 0);
    g_byte_array_append(tmp, g_variant_get_data(v), (guint)g_variant_get_size(v));
    g_byte_array_append(tmp, (const guint8 *)"", 1);
    g_byte_array_append(tmp, (const guint8 *)type, (guint)strlen(type));
    return (member){tmp->data, tmp->len, 8, 1};
}

/* Frame (header + envelope) around the serialized signed part SP and its
 * authenticator, appended to OUT. */
static int put_envelope(GByteArray *out, size_t max_frame, guint8 kind, const GByteArray *sp, const uint8_t *tag,
                        size_t tag_len, const char *body_type)
{
    GByteArray *body = g_byte_array_sized_new(sp->len + tag_len + 64);
    member bm[2] = {{sp->data, sp->len, 8, 1}, m_bytes(tag, tag_len)};
    put_tuple(body, bm, 2);
    size_t tl = strlen(body_type);
    /* (yyv): version, kind, padding to 8, then the variant (last: no
     * framing offset). */
    size_t size = 8 + body->len + 1 + tl;
    int rc = 0;
    if (size > max_frame || size > G_MAXUINT32) {
        rc = PZ_ERANGE;
        goto out;
    }
    uint8_t hdr[PZ_FRAME_HDR + 8] = {0};
    pz_frame_put_header(hdr, (uint32_t)size);
    hdr[PZ_FRAME_HDR] = PZ_WIRE_VERSION;
    hdr[PZ_FRAME_HDR + 1] = kind;
    g_byte_array_append(out, hdr, sizeof(hdr));
    g_byte_array_append(out, body->data, body->len);
    g_byte_array_append(out, (const guint8 *)"", 1);
    g_byte_array_append(out, (const guint8 *)body_type, (guint)tl);
out:
    g_byte_array_unref(body);
    return rc;
}

int pz_wire_request_encode(GByteArray *out, size_t max_frame, const char *method, uint64_t timestamp_ns,
                           const uint8_t call_id[PZ_RPC_CALL_ID_LEN], const char *caller, const char *target,
                           uint32_t timeout_ms, GVariant *params, const pz_wire_auth *auth)
{
    int rc = 0;
    GByteArray *ctx = NULL, *sp = NULL, *vt = NULL;
    uint8_t tag[PZ_WIRE_SIG_LEN];
    size_t tag_len = 0;
    if (params)
        g_variant_ref_sink(params);
    if (!pz_wire_method_valid(method) || !pz_wire_node_id_valid(caller) || !pz_wire_node_id_valid(target) ||
        !auth || (auth->mode != PZ_WIRE_MODE_SIG && auth->mode != PZ_WIRE_MODE_MAC)) {
        rc = PZ_EINVAL;
        goto out;
    }
    guint64 ts = GUINT64_TO_LE(timestamp_ns);
    guint32 to = GUINT32_TO_LE(timeout_ms);
    guint8 mode = (guint8)auth->mode;
    ctx = g_byte_array_sized_new(128);
    member cm[7] = {m_str(method),  m_fixed(&ts, 8), m_bytes(call_id, PZ_RPC_CALL_ID_LEN), m_str(caller),
                    m_str(target), m_fixed(&to, 4), m_fixed(&mode, 1)};
    put_tuple(ctx, cm, 7);
    vt = g_byte_array_new();
    GVariant *unit = params ? NULL : g_variant_ref_sink(g_variant_new_tuple(NULL, 0));
    member pm = m_variant(vt, params ? params : unit);
    if (unit)
        g_variant_unref(unit);
    sp = g_byte_array_sized_new(ctx->len + vt->len + 16);
    member sm[2] = {{ctx->data, ctx->len, 8, 1}, pm};
    put_tuple(sp, sm, 2);
    rc = auth_make(auth, PZ_WIRE_DOMAIN_CALL, sp->data, sp->len, tag, &tag_len);
    if (rc == 0)
        rc = put_envelope(out, max_frame, PZ_WIRE_KIND_REQUEST, sp, tag, tag_len, PZ_WIRE_TYPE_REQUEST);
out:
    if (ctx)
        g_byte_array_unref(ctx);
    if (sp)
        g_byte_array_unref(sp);
    if (vt)
        g_byte_array_unref(vt);
    if (params)
        g_variant_unref(params);
    return rc;
}

int pz_wire_response_encode(GByteArray *out, size_t max_frame, GVariant *data,
                            const uint8_t call_id[PZ_RPC_CALL_ID_LEN], uint64_t timestamp_ns, const char *sender,
                            int32_t status, const char *message, const pz_wire_auth *auth)
{
    int rc = 0;
    GByteArray *sp = NULL, *vt = NULL;
    uint8_t tag[PZ_WIRE_SIG_LEN];
    size_t tag_len = 0;
    char msg[PZ_WIRE_MESSAGE_MAX + 1];
    if (data)
        g_variant_ref_sink(data);
    if (!pz_wire_node_id_valid(sender)) {
        rc = PZ_EINVAL;
        goto out;
    }
    /* Cut the message on a UTF-8 character boundary. */
    g_strlcpy(msg, message ? message : "", sizeof(msg));
    const char *end = NULL;
    if (!g_utf8_validate(msg, -1, &end))
        msg[end - msg] = '\0';
    guint64 ts = GUINT64_TO_LE(timestamp_ns);
    guint32 st = GUINT32_TO_LE((guint32)status);
    vt = g_byte_array_new();
    GVariant *unit = data ? NULL : g_variant_ref_sink(g_variant_new_tuple(NULL, 0));
    member dm = m_variant(vt, data ? data : unit);
    if (unit)
        g_variant_unref(unit);
    sp = g_byte_array_sized_new(vt->len + 128);
    member sm[6] = {dm, m_bytes(call_id, PZ_RPC_CALL_ID_LEN), m_fixed(&ts, 8), m_str(sender), m_fixed(&st, 4),
                    m_str(msg)};
    put_tuple(sp, sm, 6);
    rc = auth_make(auth, PZ_WIRE_DOMAIN_RESP, sp->data, sp->len, tag, &tag_len);
    if (rc == 0)
        rc = put_envelope(out, max_frame, PZ_WIRE_KIND_RESPONSE, sp, tag, tag_len, PZ_WIRE_TYPE_RESPONSE);
out:
    if (sp)
        g_byte_array_unref(sp);
    if (vt)
        g_byte_array_unref(vt);
    if (data)
        g_variant_unref(data);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Decoding. */

static void unref0(GVariant **v)
{
    if (*v) {
        g_variant_unref(*v);
        *v = NULL;
    }
}

void pz_wire_request_clear(pz_wire_request *req)
{
    if (!req)
        return;
    for (size_t i = 0; i < G_N_ELEMENTS(req->kids); i++)
        unref0(&req->kids[i]);
    unref0(&req->params);
    unref0(&req->signed_part);
    unref0(&req->env);
    memset(req, 0, sizeof(*req));
}

void pz_wire_response_clear(pz_wire_response *resp)
{
    if (!resp)
        return;
    for (size_t i = 0; i < G_N_ELEMENTS(resp->kids); i++)
        unref0(&resp->kids[i]);
    unref0(&resp->data);
    unref0(&resp->signed_part);
    unref0(&resp->env);
    memset(resp, 0, sizeof(*resp));
}

static const uint8_t *fixed_bytes(GVariant *v, size_t *n)
{
    gsize len = 0;
    const uint8_t *p = g_variant_get_fixed_array(v, &len, 1);
    *n = len;
    return p;
}

/* Child I of a tuple whose type was checked: a new reference. */
#define CHILD(v, i) g_variant_get_child_value((v), (i))

/* Scalars straight from a child, without keeping it (g_variant_get's
 * format parsing costs more than the rest of decoding). */
static guint64 child_u64(GVariant *t, gsize i)
{
    GVariant *c = CHILD(t, i);
    guint64 x = g_variant_get_uint64(c);
    g_variant_unref(c);
    return x;
}

static guint32 child_u32(GVariant *t, gsize i)
{
    GVariant *c = CHILD(t, i);
    guint32 x = g_variant_get_uint32(c);
    g_variant_unref(c);
    return x;
}

static gint32 child_i32(GVariant *t, gsize i)
{
    GVariant *c = CHILD(t, i);
    gint32 x = g_variant_get_int32(c);
    g_variant_unref(c);
    return x;
}

static guint8 child_byte(GVariant *t, gsize i)
{
    GVariant *c = CHILD(t, i);
    guint8 x = g_variant_get_byte(c);
    g_variant_unref(c);
    return x;
}

/* A string child: pointer valid while the (serialized) parent T is, as
 * for g_variant_get's "&s". */
static const char *child_str(GVariant *t, gsize i)
{
    GVariant *c = CHILD(t, i);
    const char *x = g_variant_get_string(c, NULL);
    g_variant_unref(c);
    return x;
}

static int decode_request(GVariant *env, GVariant *body, pz_wire_request *req, const char **why)
{
    memset(req, 0, sizeof(*req));
    req->env = env;
    req->signed_part = CHILD(body, 0);
    GVariant *ctx = req->kids[0] = CHILD(req->signed_part, 0);
    GVariant *pv = CHILD(req->signed_part, 1);
    req->params = g_variant_get_variant(pv);
    g_variant_unref(pv);
    GVariant *auth = req->kids[1] = CHILD(body, 1);
    req->method = child_str(ctx, 0);
    req->timestamp_ns = child_u64(ctx, 1);
    req->kids[2] = CHILD(ctx, 2);
    req->caller = child_str(ctx, 3);
    req->target = child_str(ctx, 4);
    req->timeout_ms = child_u32(ctx, 5);
    req->mode = child_byte(ctx, 6);
    size_t n;
    req->call_id = fixed_bytes(req->kids[2], &n);
    if (n != PZ_RPC_CALL_ID_LEN)
        return *why = "call id is not 16 bytes", PZ_EPROTO;
    req->auth = fixed_bytes(auth, &req->auth_len);
    if (!pz_wire_method_valid(req->method))
        return *why = "bad method name", PZ_EPROTO;
    if (!pz_wire_node_id_valid(req->caller) || !pz_wire_node_id_valid(req->target))
        return *why = "bad node id", PZ_EPROTO;
    if (req->mode != PZ_WIRE_MODE_SIG && req->mode != PZ_WIRE_MODE_MAC)
        return *why = "unknown integrity mode", PZ_EPROTO;
    return 0;
}

static int decode_response(GVariant *env, GVariant *body, pz_wire_response *resp, const char **why)
{
    memset(resp, 0, sizeof(*resp));
    resp->env = env;
    resp->signed_part = g_variant_get_child_value(body, 0);
    GVariant *auth = resp->kids[0] = g_variant_get_child_value(body, 1);
    GVariant *sp = resp->signed_part, *dv = CHILD(sp, 0);
    resp->data = g_variant_get_variant(dv);
    g_variant_unref(dv);
    resp->kids[1] = CHILD(sp, 1);
    resp->timestamp_ns = child_u64(sp, 2);
    resp->sender = child_str(sp, 3);
    resp->status = child_i32(sp, 4);
    resp->message = child_str(sp, 5);
    size_t n;
    resp->call_id = fixed_bytes(resp->kids[1], &n);
    if (n != PZ_RPC_CALL_ID_LEN)
        return *why = "call id is not 16 bytes", PZ_EPROTO;
    resp->auth = fixed_bytes(auth, &resp->auth_len);
    if (!pz_wire_node_id_valid(resp->sender))
        return *why = "bad node id", PZ_EPROTO;
    if (strlen(resp->message) > PZ_WIRE_MESSAGE_MAX)
        return *why = "message too long", PZ_EPROTO;
    if (resp->auth_len != 0 && resp->auth_len != PZ_WIRE_SIG_LEN && resp->auth_len != PZ_WIRE_MAC_LEN)
        return *why = "bad authenticator length", PZ_EPROTO;
    return 0;
}

int pz_wire_decode(const uint8_t *frame, size_t len, int *kind, pz_wire_request *req, pz_wire_response *resp,
                   const char **why)
{
    static const char *dummy;
    int rc = 0;
    GVariant *env = NULL, *bodyv = NULL, *body = NULL;
    if (!why)
        why = &dummy;
    *why = NULL;
    *kind = 0;
    /* A private copy with zeroed slack after it: GLib 2.74's normal-form
     * check reads a byte past some truncated containers. */
    uint8_t *copy = g_try_malloc0(len + 8);
    if (!copy)
        return PZ_ENOMEM;
    if (len)
        memcpy(copy, frame, len);
    GBytes *bytes = g_bytes_new_with_free_func(copy, len, g_free, copy);
    env = g_variant_ref_sink(g_variant_new_from_bytes(G_VARIANT_TYPE(PZ_WIRE_TYPE_ENVELOPE), bytes, FALSE));
    g_bytes_unref(bytes);
    if (!g_variant_is_normal_form(env)) {
        *why = "envelope not in GVariant normal form";
        rc = PZ_EPROTO;
        goto out;
    }
    guint8 version = child_byte(env, 0), k = child_byte(env, 1);
    bodyv = CHILD(env, 2);
    body = g_variant_get_variant(bodyv);
    if (version != PZ_WIRE_VERSION) {
        *why = "unknown envelope version";
        rc = PZ_EPROTO;
        goto out;
    }
    if (k == PZ_WIRE_KIND_REQUEST && req && g_variant_is_of_type(body, G_VARIANT_TYPE(PZ_WIRE_TYPE_REQUEST))) {
        rc = decode_request(env, body, req, why);
        env = NULL; /* owned by REQ now */
        if (rc)
            pz_wire_request_clear(req);
    } else if (k == PZ_WIRE_KIND_RESPONSE && resp &&
               g_variant_is_of_type(body, G_VARIANT_TYPE(PZ_WIRE_TYPE_RESPONSE))) {
        rc = decode_response(env, body, resp, why);
        env = NULL;
        if (rc)
            pz_wire_response_clear(resp);
    } else {
        *why = "unexpected envelope kind or body type";
        rc = PZ_EPROTO;
        goto out;
    }
    if (rc == 0)
        *kind = k;
out:
    if (body)
        g_variant_unref(body);
    if (bodyv)
        g_variant_unref(bodyv);
    if (env)
        g_variant_unref(env);
    return rc;
}

int pz_wire_request_verify(const pz_wire_request *req, const pz_wire_auth *auth)
{
    if (!auth || auth->mode != req->mode)
        return PZ_ECRYPTO;
    return auth_check(auth, PZ_WIRE_DOMAIN_CALL, req->signed_part, req->auth, req->auth_len);
}

int pz_wire_response_verify(const pz_wire_response *resp, const pz_wire_auth *auth)
{
    return auth_check(auth, PZ_WIRE_DOMAIN_RESP, resp->signed_part, resp->auth, resp->auth_len);
}
