/* tests/unit/rpc_wire_ref.c — see rpc_wire_ref.h. */
#include "config.h"

#include <string.h>

#include <glib.h>

#include "rpc_wire.h"
#include "rpc_wire_ref.h"

/* The fields of a decoded envelope, owned. */
typedef struct ref_msg {
    int kind;
    char *method, *caller, *target, *sender, *message;
    uint64_t ts;
    uint32_t timeout;
    uint8_t mode;
    int32_t status;
    GBytes *call_id, *auth, *signed_part, *vdata;
    char *vtype;
} ref_msg;

static void ref_msg_clear(ref_msg *m)
{
    g_free(m->method);
    g_free(m->caller);
    g_free(m->target);
    g_free(m->sender);
    g_free(m->message);
    g_free(m->vtype);
    if (m->call_id)
        g_bytes_unref(m->call_id);
    if (m->auth)
        g_bytes_unref(m->auth);
    if (m->signed_part)
        g_bytes_unref(m->signed_part);
    if (m->vdata)
        g_bytes_unref(m->vdata);
    memset(m, 0, sizeof(*m));
}

/* A GVariant of TYPE over a private copy of DATA with zeroed slack after
 * it (GLib 2.74's normal-form check reads a byte past some truncated
 * containers). */
static GVariant *from_bytes(const GVariantType *type, const uint8_t *data, size_t len)
{
    uint8_t *copy = g_malloc0(len + 8);
    if (len)
        memcpy(copy, data, len);
    GBytes *b = g_bytes_new_with_free_func(copy, len, g_free, copy);
    GVariant *v = g_variant_ref_sink(g_variant_new_from_bytes(type, b, FALSE));
    g_bytes_unref(b);
    return v;
}

static GBytes *bytes_of(GVariant *v)
{
    return g_bytes_new(g_variant_get_data(v), g_variant_get_size(v));
}

static GVariant *child(GVariant *t, gsize i)
{
    return g_variant_get_child_value(t, i);
}

static char *child_str(GVariant *t, gsize i)
{
    GVariant *c = child(t, i);
    char *s = g_variant_dup_string(c, NULL);
    g_variant_unref(c);
    return s;
}

static GBytes *child_bytes(GVariant *t, gsize i)
{
    GVariant *c = child(t, i);
    GBytes *b = bytes_of(c);
    g_variant_unref(c);
    return b;
}

/* The value inside the variant child I of T: its type and bytes. */
static void child_variant(GVariant *t, gsize i, ref_msg *m)
{
    GVariant *c = child(t, i), *v = g_variant_get_variant(c);
    m->vtype = g_strdup(g_variant_get_type_string(v));
    m->vdata = bytes_of(v);
    g_variant_unref(v);
    g_variant_unref(c);
}

/* The old decoder: 0 or -1 (refused). */
static int ref_decode(const uint8_t *frame, size_t len, ref_msg *m)
{
    int rc = -1;
    GVariant *env = from_bytes(G_VARIANT_TYPE("(yyv)"), frame, len), *bv = NULL, *body = NULL, *sp = NULL,
             *ctx = NULL;
    memset(m, 0, sizeof(*m));
    if (!g_variant_is_normal_form(env))
        goto out;
    guint8 version, kind;
    g_variant_get(env, "(yy@v)", &version, &kind, &bv);
    body = g_variant_get_variant(bv);
    if (version != PZ_WIRE_VERSION)
        goto out;
    if (kind == PZ_WIRE_KIND_REQUEST && g_variant_is_of_type(body, G_VARIANT_TYPE(PZ_WIRE_TYPE_REQUEST))) {
        sp = child(body, 0);
        ctx = child(sp, 0);
        m->signed_part = bytes_of(sp);
        child_variant(sp, 1, m);
        m->auth = child_bytes(body, 1);
        m->method = child_str(ctx, 0);
        GVariant *c = child(ctx, 1);
        m->ts = g_variant_get_uint64(c);
        g_variant_unref(c);
        m->call_id = child_bytes(ctx, 2);
        m->caller = child_str(ctx, 3);
        m->target = child_str(ctx, 4);
        c = child(ctx, 5);
        m->timeout = g_variant_get_uint32(c);
        g_variant_unref(c);
        c = child(ctx, 6);
        m->mode = g_variant_get_byte(c);
        g_variant_unref(c);
        if (g_bytes_get_size(m->call_id) != PZ_RPC_CALL_ID_LEN || !pz_wire_method_valid(m->method) ||
            !pz_wire_node_id_valid(m->caller) || !pz_wire_node_id_valid(m->target) ||
            (m->mode != PZ_WIRE_MODE_SIG && m->mode != PZ_WIRE_MODE_MAC))
            goto out;
    } else if (kind == PZ_WIRE_KIND_RESPONSE && g_variant_is_of_type(body, G_VARIANT_TYPE(PZ_WIRE_TYPE_RESPONSE))) {
        sp = child(body, 0);
        m->signed_part = bytes_of(sp);
        child_variant(sp, 0, m);
        m->call_id = child_bytes(sp, 1);
        GVariant *c = child(sp, 2);
        m->ts = g_variant_get_uint64(c);
        g_variant_unref(c);
        m->sender = child_str(sp, 3);
        c = child(sp, 4);
        m->status = g_variant_get_int32(c);
        g_variant_unref(c);
        m->message = child_str(sp, 5);
        m->auth = child_bytes(body, 1);
        gsize al = g_bytes_get_size(m->auth);
        if (g_bytes_get_size(m->call_id) != PZ_RPC_CALL_ID_LEN || !pz_wire_node_id_valid(m->sender) ||
            strlen(m->message) > PZ_WIRE_MESSAGE_MAX ||
            (al != 0 && al != PZ_WIRE_SIG_LEN && al != PZ_WIRE_MAC_LEN))
            goto out;
    } else {
        goto out;
    }
    m->kind = kind;
    rc = 0;
out:
    if (ctx)
        g_variant_unref(ctx);
    if (sp)
        g_variant_unref(sp);
    if (body)
        g_variant_unref(body);
    if (bv)
        g_variant_unref(bv);
    g_variant_unref(env);
    if (rc)
        ref_msg_clear(m);
    return rc;
}

static int same_bytes(GBytes *b, const void *p, size_t len)
{
    gsize n;
    const void *d = g_bytes_get_data(b, &n);
    return n == len && (n == 0 || memcmp(d, p, n) == 0);
}

static int same_value(const ref_msg *m, const pz_wire_value *v)
{
    return strlen(m->vtype) == v->type_len && memcmp(m->vtype, v->type, v->type_len) == 0 &&
           same_bytes(m->vdata, v->data, v->len);
}

#define DIFF(what_)                                                                                                \
    do {                                                                                                           \
        if (what)                                                                                                  \
            *what = (what_);                                                                                       \
        out = REF_DISAGREE;                                                                                        \
        goto done;                                                                                                 \
    } while (0)

ref_outcome ref_compare_envelope(const uint8_t *frame, size_t len, const char **what)
{
    ref_outcome out;
    ref_msg m;
    pz_wire_request req;
    pz_wire_response resp;
    int kind = -1;
    const char *why = NULL;
    int ours = pz_wire_decode(frame, len, &kind, &req, &resp, &why);
    int theirs = ref_decode(frame, len, &m);
    if (what)
        *what = NULL;
    if (ours != 0 && ours != PZ_EPROTO)
        DIFF("pz_wire_decode returned neither 0 nor PZ_EPROTO");
    if (ours && !why)
        DIFF("refusal without a reason");
    if (ours && theirs) {
        out = REF_AGREE_REFUSE;
        goto done;
    }
    if (ours && !theirs) {
        if (strstr(why, "type string longer")) {
            out = REF_LIMITED;
            goto done;
        }
        DIFF("the reader refuses what GLib accepts");
    }
    if (!ours && theirs)
        DIFF("the reader accepts what GLib refuses");
    if (kind != m.kind)
        DIFF("kind differs");
    if (kind == PZ_WIRE_KIND_REQUEST) {
        if (strcmp(req.method, m.method) || strcmp(req.caller, m.caller) || strcmp(req.target, m.target))
            DIFF("request strings differ");
        if (req.timestamp_ns != m.ts || req.timeout_ms != m.timeout || req.mode != m.mode)
            DIFF("request numbers differ");
        if (!same_bytes(m.call_id, req.call_id, PZ_RPC_CALL_ID_LEN) || !same_bytes(m.auth, req.auth, req.auth_len) ||
            !same_bytes(m.signed_part, req.signed_part, req.signed_len))
            DIFF("request bytes differ");
        if (!same_value(&m, &req.params))
            DIFF("params differ");
    } else {
        if (strcmp(resp.sender, m.sender) || strcmp(resp.message, m.message))
            DIFF("response strings differ");
        if (resp.timestamp_ns != m.ts || resp.status != m.status)
            DIFF("response numbers differ");
        if (!same_bytes(m.call_id, resp.call_id, PZ_RPC_CALL_ID_LEN) ||
            !same_bytes(m.auth, resp.auth, resp.auth_len) ||
            !same_bytes(m.signed_part, resp.signed_part, resp.signed_len))
            DIFF("response bytes differ");
        if (!same_value(&m, &resp.data))
            DIFF("data differ");
    }
    out = REF_AGREE_ACCEPT;
done:
    if (!theirs)
        ref_msg_clear(&m);
    return out;
}

ref_outcome ref_compare_value(const char *type, const uint8_t *data, size_t len, const char **what)
{
    GVariant *v = from_bytes(G_VARIANT_TYPE(type), data, len);
    int theirs = g_variant_is_normal_form(v);
    g_variant_unref(v);
    int ours = pz_wire_is_normal(type, strlen(type), data, len);
    if (what)
        *what = NULL;
    if (ours < 0)
        return theirs ? REF_LIMITED : REF_AGREE_REFUSE;
    if (ours == theirs)
        return ours ? REF_AGREE_ACCEPT : REF_AGREE_REFUSE;
    if (what)
        *what = ours ? "the reader accepts what GLib refuses" : "the reader refuses what GLib accepts";
    return REF_DISAGREE;
}
