/* core/rpc_wire.c — RPC envelopes: encoding in GVariant normal form, a
 * strict allocation-free reader for decoding, and their Ed25519 signatures
 * or HMAC-SHA256 tags through the crypto seam (see rpc_wire.h and
 * docs/rpc-wire.md). */
#include "config.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "rpc_frame.h"
#include "rpc_wire.h"

#define DOMAIN_LEN (sizeof(PZ_WIRE_DOMAIN_CALL)) /* including the NUL separator */
G_STATIC_ASSERT(sizeof(PZ_WIRE_DOMAIN_CALL) == sizeof(PZ_WIRE_DOMAIN_RESP));
G_STATIC_ASSERT(PZ_WIRE_SIG_LEN == PZ_ED25519_SIG_LEN);
G_STATIC_ASSERT(PZ_WIRE_MAC_LEN == PZ_SHA256_LEN);

struct pz_rpc_key {
    pz_sign_key *sk; /* seed in secure memory, GnuTLS key imported once */
};

struct pz_wire_mac {
    pz_hmac_key *key; /* prepared once, secure memory */
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
/* Keys and MACs: all through the crypto seam. */

PZ_API int pz_rpc_key_new(const uint8_t seed[32], pz_rpc_key **out, GError **error)
{
    int rc = 0;
    *out = NULL;
    pz_rpc_key *k = g_try_new0(pz_rpc_key, 1);
    if (!k)
        return pz_rpc_set_error(error, PZ_ENOMEM, "signing key: out of memory");
    rc = pz_sign_key_new(seed, &k->sk);
    if (rc) {
        rc = pz_rpc_set_error(error, rc, "signing key: %s", pz_strerror(rc));
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
    int rc = 0;
    *out = NULL;
    pz_rpc_key *k = g_try_new0(pz_rpc_key, 1);
    if (!k)
        return pz_rpc_set_error(error, PZ_ENOMEM, "signing key: out of memory");
    rc = pz_sign_key_generate(&k->sk);
    if (rc) {
        rc = pz_rpc_set_error(error, rc, "signing key: %s", pz_strerror(rc));
        goto out;
    }
    *out = k;
    k = NULL;
out:
    pz_rpc_key_free(k);
    return rc;
}

PZ_API void pz_rpc_key_public(const pz_rpc_key *key, uint8_t pub[32])
{
    memcpy(pub, pz_sign_key_public(key->sk), PZ_ED25519_PUB_LEN);
}

PZ_API void pz_rpc_key_free(pz_rpc_key *key)
{
    if (!key)
        return;
    pz_sign_key_free(key->sk); /* seed wiped */
    g_free(key);
}

pz_sign_key *pz_rpc_key_sign_key(const pz_rpc_key *key)
{
    return key->sk;
}

int pz_wire_mac_new(const uint8_t *key, size_t key_len, pz_wire_mac **out)
{
    *out = NULL;
    pz_wire_mac *m = g_try_new0(pz_wire_mac, 1);
    if (!m)
        return PZ_ENOMEM;
    int rc = pz_hmac_key_new(key, key_len, &m->key);
    if (rc) {
        g_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

void pz_wire_mac_free(pz_wire_mac *mac)
{
    if (!mac)
        return;
    pz_hmac_key_free(mac->key);
    g_free(mac);
}

int pz_wire_sign(const pz_rpc_key *key, const char *domain, const uint8_t *data, size_t len,
                 uint8_t sig[PZ_WIRE_SIG_LEN])
{
    pz_iov m[2] = {{domain, DOMAIN_LEN}, {data, len}};
    if (!key)
        return PZ_ECRYPTO;
    int rc = pz_sign_iov(key->sk, m, 2, sig);
    return rc == PZ_ENOMEM ? rc : rc ? PZ_ECRYPTO : 0;
}

int pz_wire_verify_sig(pz_verify_key *pub, const char *domain, const uint8_t *data, size_t len, const uint8_t *sig,
                       size_t sig_len)
{
    pz_iov m[2] = {{domain, DOMAIN_LEN}, {data, len}};
    if (!pub || !sig || sig_len != PZ_WIRE_SIG_LEN)
        return PZ_ECRYPTO;
    return pz_verify_iov(pub, m, 2, sig, sig_len) == 0 ? 0 : PZ_ECRYPTO;
}

/* The authenticator of DATA under DOMAIN per AUTH (mode 0: none). */
static int auth_make(const pz_wire_auth *auth, const char *domain, const uint8_t *data, size_t len,
                     uint8_t tag[PZ_WIRE_SIG_LEN], size_t *tag_len)
{
    pz_iov m[2] = {{domain, DOMAIN_LEN}, {data, len}};
    *tag_len = 0;
    if (!auth || auth->mode == 0)
        return 0;
    if (auth->mode == PZ_WIRE_MODE_SIG) {
        *tag_len = PZ_WIRE_SIG_LEN;
        return pz_wire_sign(auth->key, domain, data, len, tag);
    }
    if (auth->mode == PZ_WIRE_MODE_MAC && auth->mac) {
        *tag_len = PZ_WIRE_MAC_LEN;
        return pz_hmac_key_sign(auth->mac->key, m, 2, tag) ? PZ_ECRYPTO : 0;
    }
    return PZ_ECRYPTO;
}

/* Check TAG over DATA under DOMAIN per AUTH (constant time for MACs). */
static int auth_check(const pz_wire_auth *auth, const char *domain, const uint8_t *data, size_t len,
                      const uint8_t *tag, size_t tag_len)
{
    pz_iov m[2] = {{domain, DOMAIN_LEN}, {data, len}};
    if (!auth)
        return PZ_ECRYPTO;
    if (auth->mode == PZ_WIRE_MODE_SIG)
        return pz_wire_verify_sig(auth->pub, domain, data, len, tag, tag_len);
    if (auth->mode == PZ_WIRE_MODE_MAC && auth->mac)
        return pz_hmac_key_verify(auth->mac->key, m, 2, tag, tag_len) == 0 ? 0 : PZ_ECRYPTO;
    return PZ_ECRYPTO;
}

/* ------------------------------------------------------------------------ */
/* Encoding.
 *
 * Envelopes are serialized directly in GVariant normal form (the GVariant
 * specification, "Serialisation") into the caller's output buffer, without
 * GVariant trees or intermediate buffers: their types are fixed. Only
 * params/data are GVariant values, whose serialization GLib provides. The
 * unit tests compare these bytes with g_variant_get_data's. The signed part
 * is signed where it lies in the output. */

/* Framing offsets of one tuple being written: members are appended to the
 * buffer in order, the end of each variable-size member but the last is
 * remembered, and tw_end appends the offsets (last member's first), each of
 * the smallest size that can address the whole tuple. */
typedef struct tuple_w {
    GByteArray *b;
    size_t env0; /* start of the envelope: alignment is relative to it */
    size_t base; /* start of this tuple */
    size_t offs[4];
    size_t n;
} tuple_w;

static void tw_begin(tuple_w *w, GByteArray *b, size_t env0)
{
    w->b = b;
    w->env0 = env0;
    w->base = b->len;
    w->n = 0;
}

static void tw_pad(tuple_w *w, unsigned align)
{
    static const uint8_t zeros[8];
    size_t rem = (w->b->len - w->env0) % align;
    if (rem)
        g_byte_array_append(w->b, zeros, (guint)(align - rem));
}

static void tw_put(tuple_w *w, const void *data, size_t len, unsigned align)
{
    tw_pad(w, align);
    if (len)
        g_byte_array_append(w->b, data, (guint)len);
}

/* The member just written was variable-size and not the last. */
static void tw_mark(tuple_w *w)
{
    w->offs[w->n++] = w->b->len - w->base;
}

static unsigned offset_size_for(size_t body, size_t n)
{
    return body + n <= 0xff ? 1 : body + 2 * n <= 0xffff ? 2 : body + 4 * n <= 0xffffffffu ? 4 : 8;
}

static void tw_end(tuple_w *w)
{
    unsigned osz = offset_size_for(w->b->len - w->base, w->n);
    for (size_t j = w->n; j-- > 0;) {
        uint8_t x[8];
        for (unsigned i = 0; i < osz; i++)
            x[i] = (uint8_t)((uint64_t)w->offs[j] >> (8 * i));
        g_byte_array_append(w->b, x, osz);
    }
}

/* A 'v' member: value ‖ 0x00 ‖ type string (aligned 8; last in its tuple
 * here). V NULL stands for the unit "()". */
static void tw_variant(tuple_w *w, GVariant *v)
{
    const char *type = v ? g_variant_get_type_string(v) : "()";
    tw_pad(w, 8);
    if (v) {
        size_t n = g_variant_get_size(v);
        if (n)
            g_byte_array_append(w->b, g_variant_get_data(v), (guint)n);
    } else {
        g_byte_array_append(w->b, (const guint8 *)"", 1); /* "()" is one zero byte */
    }
    g_byte_array_append(w->b, (const guint8 *)"", 1);
    g_byte_array_append(w->b, (const guint8 *)type, (guint)strlen(type));
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Start a frame in OUT: the length header (zero until frame_finish knows
 * the length), then (yyv)'s version, kind and padding. Returns the
 * envelope's start. */
static size_t frame_begin(GByteArray *out, guint8 kind)
{
    uint8_t hdr[PZ_FRAME_HDR + 8] = {0};
    hdr[PZ_FRAME_HDR] = PZ_WIRE_VERSION;
    hdr[PZ_FRAME_HDR + 1] = kind;
    size_t start = out->len;
    g_byte_array_append(out, hdr, sizeof(hdr));
    return start + PZ_FRAME_HDR;
}

/* The signed part ends at OUT's end, starting at SP0 (= ENV0 + 8). Check
 * the size the envelope will have, authenticate the signed part in place,
 * then finish body and frame: auth, body framing offset, the variant's type
 * string, the frame header. On error OUT is cut back to where the frame
 * began. */
static int frame_finish(GByteArray *out, size_t max_frame, size_t env0, const char *domain, const char *body_type,
                        const pz_wire_auth *auth)
{
    int rc = 0;
    uint8_t tag[PZ_WIRE_SIG_LEN];
    size_t tag_len = auth && auth->mode == PZ_WIRE_MODE_SIG ? PZ_WIRE_SIG_LEN
                     : auth && auth->mode == PZ_WIRE_MODE_MAC ? PZ_WIRE_MAC_LEN
                                                               : 0;
    size_t sp0 = env0 + 8, sp_len = out->len - sp0;
    size_t body = sp_len + tag_len;
    unsigned osz = offset_size_for(body, 1);
    size_t tl = strlen(body_type);
    size_t size = 8 + body + osz + 1 + tl;
    if (size > max_frame || size > G_MAXUINT32) {
        rc = PZ_ERANGE;
        goto out;
    }
    rc = auth_make(auth, domain, out->data + sp0, sp_len, tag, &tag_len);
    if (rc)
        goto out;
    if (tag_len)
        g_byte_array_append(out, tag, (guint)tag_len);
    uint8_t off[8];
    put_le(off, sp_len, osz);
    g_byte_array_append(out, off, osz);
    g_byte_array_append(out, (const guint8 *)"", 1);
    g_byte_array_append(out, (const guint8 *)body_type, (guint)tl);
    pz_frame_put_header(out->data + env0 - PZ_FRAME_HDR, (uint32_t)size);
out:
    if (rc)
        g_byte_array_set_size(out, (guint)(env0 - PZ_FRAME_HDR));
    return rc;
}

int pz_wire_request_encode(GByteArray *out, size_t max_frame, const char *method, uint64_t timestamp_ns,
                           const uint8_t call_id[PZ_RPC_CALL_ID_LEN], const char *caller, const char *target,
                           uint32_t timeout_ms, GVariant *params, const pz_wire_auth *auth)
{
    int rc = 0;
    if (params)
        g_variant_ref_sink(params);
    if (!pz_wire_method_valid(method) || !pz_wire_node_id_valid(caller) || !pz_wire_node_id_valid(target) ||
        !auth || (auth->mode != PZ_WIRE_MODE_SIG && auth->mode != PZ_WIRE_MODE_MAC)) {
        rc = PZ_EINVAL;
        goto out;
    }
    uint8_t ts[8], to[4], mode = (uint8_t)auth->mode;
    put_le(ts, timestamp_ns, 8);
    put_le(to, timeout_ms, 4);
    size_t env0 = frame_begin(out, PZ_WIRE_KIND_REQUEST);
    /* ((stayssuy)v): the context tuple, then params. */
    tuple_w sp, ctx;
    tw_begin(&sp, out, env0);
    tw_begin(&ctx, out, env0);
    tw_put(&ctx, method, strlen(method) + 1, 1);
    tw_mark(&ctx);
    tw_put(&ctx, ts, 8, 8);
    tw_put(&ctx, call_id, PZ_RPC_CALL_ID_LEN, 1);
    tw_mark(&ctx);
    tw_put(&ctx, caller, strlen(caller) + 1, 1);
    tw_mark(&ctx);
    tw_put(&ctx, target, strlen(target) + 1, 1);
    tw_mark(&ctx);
    tw_put(&ctx, to, 4, 4);
    tw_put(&ctx, &mode, 1, 1);
    tw_end(&ctx);
    tw_mark(&sp);
    tw_variant(&sp, params);
    tw_end(&sp);
    rc = frame_finish(out, max_frame, env0, PZ_WIRE_DOMAIN_CALL, PZ_WIRE_TYPE_REQUEST, auth);
out:
    if (params)
        g_variant_unref(params);
    return rc;
}

int pz_wire_response_encode(GByteArray *out, size_t max_frame, GVariant *data,
                            const uint8_t call_id[PZ_RPC_CALL_ID_LEN], uint64_t timestamp_ns, const char *sender,
                            int32_t status, const char *message, const pz_wire_auth *auth)
{
    int rc = 0;
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
    uint8_t ts[8], st[4];
    put_le(ts, timestamp_ns, 8);
    put_le(st, (uint32_t)status, 4);
    size_t env0 = frame_begin(out, PZ_WIRE_KIND_RESPONSE);
    /* (vaytsis) */
    tuple_w sp;
    tw_begin(&sp, out, env0);
    tw_variant(&sp, data);
    tw_mark(&sp);
    tw_put(&sp, call_id, PZ_RPC_CALL_ID_LEN, 1);
    tw_mark(&sp);
    tw_put(&sp, ts, 8, 8);
    tw_put(&sp, sender, strlen(sender) + 1, 1);
    tw_mark(&sp);
    tw_put(&sp, st, 4, 4);
    tw_put(&sp, msg, strlen(msg) + 1, 1);
    tw_end(&sp);
    rc = frame_finish(out, max_frame, env0, PZ_WIRE_DOMAIN_RESP, PZ_WIRE_TYPE_RESPONSE, auth);
out:
    if (data)
        g_variant_unref(data);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Decoding: a strict reader of the GVariant serialisation format.
 *
 * nf_value answers "is this the normal form of a value of this type?"
 * exactly as GLib 2.74's g_variant_serialised_is_normal does (the GVariant
 * specification's normal form plus GLib's nesting limit), without
 * allocating: type information (alignment, fixed size, nesting depth) is
 * computed once per type string into a table on the caller's stack, so
 * checking costs what GLib's check costs. The envelope is checked whole,
 * params included, before a field is read; fields are then read straight
 * from the bytes. test_rpc_wire_nf compares the answers with GLib's on seeds
 * and mutations. */

/* GLib's G_VARIANT_MAX_RECURSION_DEPTH (a gsize: the arithmetic below is
 * unsigned on purpose, as GLib's). */
#define NF_MAX_DEPTH ((size_t)128)

/* What GLib's GVariantTypeInfo says about the type starting at one
 * position of a type string. */
typedef struct nf_node {
    uint32_t fixed; /* fixed size in bytes, 0 when variable-size */
    uint16_t end;   /* position one past this type */
    uint8_t align;  /* alignment mask: 0, 1, 3 or 7 */
    uint8_t depth;  /* GLib's type depth: 1 for basic types, 0 for "()" */
} nf_node;

/* Scratch for the type tables of the variants nested along the path being
 * checked (a stack: a variant's table is dropped when its check returns). */
typedef struct nf_ctx {
    nf_node nodes[PZ_WIRE_TYPES_MAX];
    size_t used;
    int limited; /* a type string exceeded our limits (not GLib's) */
} nf_ctx;

/* A type string and its table: N[i] describes the type starting at S[i]. */
typedef struct nf_type {
    const char *s;
    const nf_node *n;
} nf_type;

static size_t align_up(size_t x, unsigned mask)
{
    return (x + mask) & ~(size_t)mask;
}

/* Scan one complete type at S[POS] (string of LEN bytes) as GLib's
 * variant_type_string_scan_internal does (same grammar, same nesting
 * limit), filling TAB for it and every type inside it. 1 valid, 0 not. */
static int nf_scan(const char *s, size_t len, size_t pos, size_t depth_limit, nf_node *tab)
{
    nf_node *t = &tab[pos];
    size_t p = pos + 1;
    if (pos >= len)
        return 0;
    t->fixed = 0;
    t->align = 0;
    t->depth = 1;
    switch (s[pos]) {
    case '(': {
        size_t off = 0, depth = 0;
        int fixed = 1, any = 0;
        while (p >= len || s[p] != ')') {
            if (depth_limit == 0 || !nf_scan(s, len, p, depth_limit - 1, tab))
                return 0;
            const nf_node *m = &tab[p];
            t->align |= m->align;
            if (m->depth + 1u > depth)
                depth = m->depth + 1u;
            if (fixed && m->fixed)
                off = align_up(off, m->align) + m->fixed;
            else
                fixed = 0;
            any = 1;
            p = m->end;
        }
        p++;
        t->depth = (uint8_t)depth;
        /* "()" is one byte; otherwise fixed when every member is, rounded
         * up to the tuple's alignment. */
        t->fixed = !any ? 1 : fixed ? (uint32_t)align_up(off, t->align) : 0;
        break;
    }
    case '{': {
        if (depth_limit == 0 || p >= len || !strchr("bynqihuxtdsog?", s[p]) || s[p] == '\0')
            return 0;
        if (!nf_scan(s, len, p, 0, tab)) /* the key: a basic type */
            return 0;
        const nf_node *k = &tab[p];
        p++;
        if (!nf_scan(s, len, p, depth_limit - 1, tab))
            return 0;
        const nf_node *v = &tab[p];
        p = v->end;
        if (p >= len || s[p] != '}')
            return 0;
        p++;
        t->align = k->align | v->align;
        t->depth = (uint8_t)(v->depth + 1u);
        t->fixed = k->fixed && v->fixed
                       ? (uint32_t)align_up(align_up(k->fixed, v->align) + v->fixed, t->align)
                       : 0;
        break;
    }
    case 'm':
    case 'a':
        if (depth_limit == 0 || !nf_scan(s, len, p, depth_limit - 1, tab))
            return 0;
        t->align = tab[p].align;
        t->depth = (uint8_t)(tab[p].depth + 1u);
        p = tab[p].end;
        break;
    case 'b': case 'y': t->fixed = 1; break;
    case 'n': case 'q': t->fixed = 2; t->align = 1; break;
    case 'i': case 'u': case 'h': t->fixed = 4; t->align = 3; break;
    case 'x': case 't': case 'd': t->fixed = 8; t->align = 7; break;
    case 's': case 'o': case 'g': break;
    case 'v': t->align = 7; break;
    case 'r': case '*': case '?': break; /* valid, not definite */
    default:
        return 0;
    }
    t->end = (uint16_t)p;
    return 1;
}

/* Build the table of the type string S (LEN bytes, which must be exactly
 * one definite type) on CTX's stack. NULL when it is not one, or exceeds
 * our limits (then CTX->limited is set). */
static const nf_node *nf_push(nf_ctx *ctx, const char *s, size_t len)
{
    if (len > PZ_WIRE_TYPE_MAX || len > PZ_WIRE_TYPES_MAX - ctx->used) {
        ctx->limited = 1;
        return NULL;
    }
    nf_node *tab = ctx->nodes + ctx->used;
    if (!nf_scan(s, len, 0, NF_MAX_DEPTH, tab) || tab[0].end != len)
        return NULL;
    for (size_t i = 0; i < len; i++)
        if (s[i] == 'r' || s[i] == '*' || s[i] == '?')
            return NULL; /* not definite */
    ctx->used += len;
    return tab;
}

/* The tables of the envelope's own types, built once. */
static const char type_env[] = PZ_WIRE_TYPE_ENVELOPE;
static const char type_req[] = PZ_WIRE_TYPE_REQUEST;
static const char type_resp[] = PZ_WIRE_TYPE_RESPONSE;
static nf_node tab_env[sizeof(type_env) - 1], tab_req[sizeof(type_req) - 1], tab_resp[sizeof(type_resp) - 1];

static gpointer known_init(gpointer unused)
{
    (void)unused;
    int ok = nf_scan(type_env, sizeof(type_env) - 1, 0, NF_MAX_DEPTH, tab_env) &&
             nf_scan(type_req, sizeof(type_req) - 1, 0, NF_MAX_DEPTH, tab_req) &&
             nf_scan(type_resp, sizeof(type_resp) - 1, 0, NF_MAX_DEPTH, tab_resp);
    g_assert(ok);
    return NULL;
}

static void known_tables(void)
{
    static GOnce once = G_ONCE_INIT;
    g_once(&once, known_init, NULL);
}

/* The prepared table when S (LEN bytes) is one of the body types. */
static const nf_node *known_body(const char *s, size_t len)
{
    if (len == sizeof(type_req) - 1 && memcmp(s, type_req, len) == 0)
        return tab_req;
    if (len == sizeof(type_resp) - 1 && memcmp(s, type_resp, len) == 0)
        return tab_resp;
    return NULL;
}

static uint64_t read_le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = n; i-- > 0;)
        v = v << 8 | p[i];
    return v;
}

/* Size of the framing offsets of a container of SIZE bytes. */
static unsigned offset_size(size_t size)
{
    return size > G_MAXUINT32 ? 8 : size > G_MAXUINT16 ? 4 : size > G_MAXUINT8 ? 2 : size > 0 ? 1 : 0;
}

/* The size of a container with BODY bytes and N framing offsets of the
 * smallest size that can address it (the normal form's). */
static size_t total_size(size_t body, size_t n)
{
    if (body + n <= G_MAXUINT8)
        return body + n;
    if (body + 2 * n <= G_MAXUINT16)
        return body + 2 * n;
    if (body + 4 * n <= G_MAXUINT32)
        return body + 4 * n;
    return body + 8 * n;
}

static int nf_value(nf_ctx *ctx, nf_type t, size_t pos, const uint8_t *p, size_t n, size_t depth);

/* The bounds of a tuple's (or dict entry's) members, checking them as
 * GLib's gvs_tuple_is_normal does; with CHECK each member's value is
 * checked too. B gets up to MAX [start, end) pairs. Returns the number of
 * members, or -1 when not in normal form. */
static int nf_tuple(nf_ctx *ctx, nf_type t, size_t pos, const uint8_t *p, size_t n, size_t depth, int check,
                    size_t (*b)[2], size_t max)
{
    unsigned osz = offset_size(n);
    size_t offset_ptr = n, off = 0;
    size_t m = pos + 1;
    int count = 0;
    while (t.s[m] != ')' && t.s[m] != '}') {
        const nf_node *mi = &t.n[m];
        size_t next = mi->end, end;
        /* GLib reads one byte past N when padding runs into it; whatever
         * it finds, the member then fails its bounds: refusing here is the
         * same answer. */
        while (off & mi->align) {
            if (off >= n || p[off] != 0)
                return -1;
            off++;
        }
        if (mi->fixed) {
            end = off + mi->fixed;
        } else if (t.s[next] == ')' || t.s[next] == '}') {
            end = offset_ptr;
        } else {
            if (offset_ptr < osz)
                return -1;
            offset_ptr -= osz;
            if (offset_ptr < off)
                return -1;
            end = (size_t)read_le(p + offset_ptr, osz);
        }
        if (end < off || end > offset_ptr)
            return -1;
        if (check && !nf_value(ctx, t, m, p + off, end - off, depth + 1))
            return -1;
        if ((size_t)count < max) {
            b[count][0] = off;
            b[count][1] = end;
        }
        count++;
        off = end;
        m = next;
    }
    if (t.n[pos].fixed) {
        if (count == 0) {
            if (p[off++] != 0)
                return -1;
        } else {
            while (off & t.n[pos].align)
                if (p[off++] != 0)
                    return -1;
        }
    }
    if (offset_ptr != off)
        return -1;
    if (n > 0 && total_size(off, (n - offset_ptr) / osz) != n)
        return -1; /* framing offsets not of the minimal size */
    return count;
}

/* An array of variable-size elements (gvs_variable_sized_array_is_normal). */
static int nf_var_array(nf_ctx *ctx, nf_type t, size_t elem, const uint8_t *p, size_t n, size_t depth)
{
    if (n == 0)
        return 1;
    unsigned osz = offset_size(n);
    size_t last_end = (size_t)read_le(p + n - osz, osz);
    if (last_end > n || (n - last_end) % osz)
        return 0;
    size_t count = (n - last_end) / osz;
    if (count == 0 || total_size(last_end, count) != n)
        return 0;
    unsigned align = t.n[elem].align;
    size_t off = 0;
    for (size_t i = 0; i < count; i++) {
        size_t end = (size_t)read_le(p + last_end + osz * i, osz);
        if (end < off || end > last_end)
            return 0;
        while (off & align) {
            if (!(off < end && p[off] == 0))
                return 0;
            off++;
        }
        if (!nf_value(ctx, t, elem, p + off, end - off, depth + 1))
            return 0;
        off = end;
    }
    return 1;
}

/* An array of fixed-size elements (gvs_fixed_sized_array_is_normal). */
static int nf_fixed_array(nf_ctx *ctx, nf_type t, size_t elem, const uint8_t *p, size_t n, size_t depth)
{
    size_t f = t.n[elem].fixed;
    if (n % f)
        return 0;
    if (n == 0)
        return 1;
    if (depth + 1 >= NF_MAX_DEPTH)
        return 0; /* every element would fail GLib's depth check */
    switch (t.s[elem]) {
    case 'b':
        for (size_t i = 0; i < n; i++)
            if (p[i] > 1)
                return 0;
        return 1;
    case '(':
    case '{':
        for (size_t i = 0; i < n; i += f)
            if (!nf_value(ctx, t, elem, p + i, f, depth + 1))
                return 0;
        return 1;
    default:
        return 1; /* numbers: every value is normal */
    }
}

/* A variant (gvs_variant_get_child + gvs_variant_is_normal): the value,
 * a zero byte, a definite type string; its type gets a table of its own. */
static int nf_variant(nf_ctx *ctx, const uint8_t *p, size_t n, size_t depth)
{
    if (n == 0)
        return 0;
    size_t k = n - 1;
    while (k > 0 && p[k] != 0)
        k--;
    if (p[k] != 0)
        return 0;
    const char *ts = (const char *)p + k + 1;
    size_t tl = n - k - 1, pushed = 0;
    const nf_node *tab = known_body(ts, tl);
    if (!tab) {
        tab = tl ? nf_push(ctx, ts, tl) : NULL;
        if (!tab)
            return 0;
        pushed = tl;
    }
    int ok = (tab[0].fixed == 0 || tab[0].fixed == k) && depth < NF_MAX_DEPTH - tab[0].depth &&
             nf_value(ctx, (nf_type){ts, tab}, 0, p, k, depth + 1);
    ctx->used -= pushed;
    return ok;
}

/* A string: NUL-terminated, valid UTF-8, no NUL before the end
 * (g_variant_serialiser_is_string). */
static int nf_string(const uint8_t *p, size_t n)
{
    const gchar *end = NULL;
    if (n == 0 || p[n - 1] != 0)
        return 0;
    g_utf8_validate_len((const gchar *)p, n, &end);
    return end == (const gchar *)p + n - 1;
}

/* Is P (N bytes) the normal form of a value of the type at T.s[POS], at
 * nesting DEPTH (g_variant_serialised_is_normal)? N is the type's fixed
 * size when it has one (callers guarantee it). */
static int nf_value(nf_ctx *ctx, nf_type t, size_t pos, const uint8_t *p, size_t n, size_t depth)
{
    if (depth >= NF_MAX_DEPTH)
        return 0;
    switch (t.s[pos]) {
    case 'm': {
        size_t elem = pos + 1;
        if (n == 0)
            return 1; /* Nothing */
        if (t.n[elem].fixed)
            return n == t.n[elem].fixed && nf_value(ctx, t, elem, p, n, depth + 1);
        return p[n - 1] == 0 && nf_value(ctx, t, elem, p, n - 1, depth + 1);
    }
    case 'a':
        if (t.n[pos + 1].fixed)
            return nf_fixed_array(ctx, t, pos + 1, p, n, depth);
        return nf_var_array(ctx, t, pos + 1, p, n, depth);
    case '(':
    case '{':
        return nf_tuple(ctx, t, pos, p, n, depth, 1, NULL, 0) >= 0;
    case 'v':
        return nf_variant(ctx, p, n, depth);
    default:
        break;
    }
    if (n == 0)
        return 0; /* GLib: no data */
    switch (t.s[pos]) {
    case 'b':
        return p[0] < 2;
    case 's':
        return nf_string(p, n);
    case 'o':
        return nf_string(p, n) && g_variant_is_object_path((const gchar *)p);
    case 'g':
        return nf_string(p, n) && g_variant_is_signature((const gchar *)p);
    default:
        return 1; /* fixed-size numbers: every value is normal */
    }
}

int pz_wire_is_normal(const char *type, size_t type_len, const uint8_t *data, size_t len)
{
    nf_ctx ctx;
    known_tables();
    ctx.used = 0;
    ctx.limited = 0;
    const nf_node *tab = type && type_len ? nf_push(&ctx, type, type_len) : NULL;
    if (!tab || (len && !data))
        return ctx.limited ? -1 : 0;
    if (tab[0].fixed && tab[0].fixed != len)
        return 0; /* GLib makes such a value with no data: never normal */
    int ok = nf_value(&ctx, (nf_type){type, tab}, 0, data, len, 0);
    return ok ? 1 : ctx.limited ? -1 : 0;
}

/* The value inside a 'v' at P (N bytes) already checked: bytes and type. */
static pz_wire_value variant_parts(const uint8_t *p, size_t n)
{
    size_t k = n - 1;
    while (k > 0 && p[k] != 0)
        k--;
    return (pz_wire_value){p, k, (const char *)p + k + 1, n - k - 1};
}

/* Member bounds of the tuple type at T.s[POS] holding P (N bytes, checked). */
static int split(nf_ctx *ctx, nf_type t, size_t pos, const uint8_t *p, size_t n, size_t (*b)[2], size_t max)
{
    return nf_tuple(ctx, t, pos, p, n, 0, 0, b, max);
}

static int same_type(const pz_wire_value *v, const char *type)
{
    size_t tl = strlen(type);
    return v->type_len == tl && memcmp(v->type, type, tl) == 0;
}

static int decode_request(nf_ctx *ctx, const pz_wire_value *body, pz_wire_request *req, const char **why)
{
    const uint8_t *p = body->data;
    size_t b[2][2], s[2][2], c[7][2];
    nf_type t = {type_req, tab_req}; /* (((stayssuy)v)ay) */
    /* Positions in the type: 0 body, 1 signed part, 2 context. */
    if (split(ctx, t, 0, p, body->len, b, 2) != 2 ||
        split(ctx, t, 1, p + b[0][0], b[0][1] - b[0][0], s, 2) != 2 ||
        split(ctx, t, 2, p + b[0][0] + s[0][0], s[0][1] - s[0][0], c, 7) != 7)
        return *why = "request body unreadable", PZ_EPROTO; /* not reached: checked */
    const uint8_t *sp = p + b[0][0], *cx = sp + s[0][0];
    req->signed_part = sp;
    req->signed_len = b[0][1] - b[0][0];
    req->params = variant_parts(sp + s[1][0], s[1][1] - s[1][0]);
    req->method = (const char *)cx + c[0][0];
    req->timestamp_ns = read_le(cx + c[1][0], 8);
    req->call_id = cx + c[2][0];
    req->caller = (const char *)cx + c[3][0];
    req->target = (const char *)cx + c[4][0];
    req->timeout_ms = (uint32_t)read_le(cx + c[5][0], 4);
    req->mode = cx[c[6][0]];
    req->auth = p + b[1][0];
    req->auth_len = b[1][1] - b[1][0];
    if (c[2][1] - c[2][0] != PZ_RPC_CALL_ID_LEN)
        return *why = "call id is not 16 bytes", PZ_EPROTO;
    if (!pz_wire_method_valid(req->method))
        return *why = "bad method name", PZ_EPROTO;
    if (!pz_wire_node_id_valid(req->caller) || !pz_wire_node_id_valid(req->target))
        return *why = "bad node id", PZ_EPROTO;
    if (req->mode != PZ_WIRE_MODE_SIG && req->mode != PZ_WIRE_MODE_MAC)
        return *why = "unknown integrity mode", PZ_EPROTO;
    return 0;
}

static int decode_response(nf_ctx *ctx, const pz_wire_value *body, pz_wire_response *resp, const char **why)
{
    const uint8_t *p = body->data;
    size_t b[2][2], s[6][2];
    nf_type t = {type_resp, tab_resp}; /* ((vaytsis)ay) */
    if (split(ctx, t, 0, p, body->len, b, 2) != 2 ||
        split(ctx, t, 1, p + b[0][0], b[0][1] - b[0][0], s, 6) != 6)
        return *why = "response body unreadable", PZ_EPROTO; /* not reached: checked */
    const uint8_t *sp = p + b[0][0];
    resp->signed_part = sp;
    resp->signed_len = b[0][1] - b[0][0];
    resp->data = variant_parts(sp + s[0][0], s[0][1] - s[0][0]);
    resp->call_id = sp + s[1][0];
    resp->timestamp_ns = read_le(sp + s[2][0], 8);
    resp->sender = (const char *)sp + s[3][0];
    resp->status = (int32_t)(uint32_t)read_le(sp + s[4][0], 4);
    resp->message = (const char *)sp + s[5][0];
    resp->auth = p + b[1][0];
    resp->auth_len = b[1][1] - b[1][0];
    if (s[1][1] - s[1][0] != PZ_RPC_CALL_ID_LEN)
        return *why = "call id is not 16 bytes", PZ_EPROTO;
    if (!pz_wire_node_id_valid(resp->sender))
        return *why = "bad node id", PZ_EPROTO;
    if (s[5][1] - s[5][0] - 1 > PZ_WIRE_MESSAGE_MAX)
        return *why = "message too long", PZ_EPROTO;
    if (resp->auth_len != 0 && resp->auth_len != PZ_WIRE_SIG_LEN && resp->auth_len != PZ_WIRE_MAC_LEN)
        return *why = "bad authenticator length", PZ_EPROTO;
    return 0;
}

void pz_wire_request_clear(pz_wire_request *req)
{
    if (req)
        memset(req, 0, sizeof(*req));
}

void pz_wire_response_clear(pz_wire_response *resp)
{
    if (resp)
        memset(resp, 0, sizeof(*resp));
}

int pz_wire_decode(const uint8_t *frame, size_t len, int *kind, pz_wire_request *req, pz_wire_response *resp,
                   const char **why)
{
    static const char *dummy;
    nf_ctx ctx;
    int rc = 0;
    known_tables();
    if (!why)
        why = &dummy;
    *why = NULL;
    *kind = 0;
    if (req)
        memset(req, 0, sizeof(*req));
    if (resp)
        memset(resp, 0, sizeof(*resp));
    ctx.used = 0;
    ctx.limited = 0;
    nf_type env = {type_env, tab_env}; /* (yyv) */
    if ((len && !frame) || !nf_value(&ctx, env, 0, frame, len, 0)) {
        *why = ctx.limited ? "envelope has a type string longer than prozsec accepts"
                           : "envelope not in GVariant normal form";
        return PZ_EPROTO;
    }
    /* Normal (yyv): version, kind, zero padding to 8, then the body. */
    uint8_t version = frame[0], k = frame[1];
    pz_wire_value body = variant_parts(frame + 8, len - 8);
    if (version != PZ_WIRE_VERSION) {
        *why = "unknown envelope version";
        return PZ_EPROTO;
    }
    if (k == PZ_WIRE_KIND_REQUEST && req && same_type(&body, PZ_WIRE_TYPE_REQUEST)) {
        rc = decode_request(&ctx, &body, req, why);
        if (rc)
            memset(req, 0, sizeof(*req));
    } else if (k == PZ_WIRE_KIND_RESPONSE && resp && same_type(&body, PZ_WIRE_TYPE_RESPONSE)) {
        rc = decode_response(&ctx, &body, resp, why);
        if (rc)
            memset(resp, 0, sizeof(*resp));
    } else {
        *why = "unexpected envelope kind or body type";
        return PZ_EPROTO;
    }
    if (rc == 0)
        *kind = k;
    return rc;
}

GVariant *pz_wire_value_dup(const pz_wire_value *v)
{
    /* One block: the value (malloc alignment suits every GVariant type),
     * then its type string NUL-terminated for GLib. */
    uint8_t *copy = malloc(v->len + v->type_len + 1);
    if (!copy)
        return NULL;
    if (v->len)
        memcpy(copy, v->data, v->len);
    memcpy(copy + v->len, v->type, v->type_len);
    copy[v->len + v->type_len] = 0;
    GBytes *bytes = g_bytes_new_with_free_func(copy, v->len, free, copy);
    GVariant *r = g_variant_ref_sink(
        g_variant_new_from_bytes((const GVariantType *)(copy + v->len), bytes, TRUE));
    g_bytes_unref(bytes);
    return r;
}

int pz_wire_request_verify(const pz_wire_request *req, const pz_wire_auth *auth)
{
    if (!auth || auth->mode != req->mode)
        return PZ_ECRYPTO;
    return auth_check(auth, PZ_WIRE_DOMAIN_CALL, req->signed_part, req->signed_len, req->auth, req->auth_len);
}

int pz_wire_response_verify(const pz_wire_response *resp, const pz_wire_auth *auth)
{
    return auth_check(auth, PZ_WIRE_DOMAIN_RESP, resp->signed_part, resp->signed_len, resp->auth, resp->auth_len);
}
