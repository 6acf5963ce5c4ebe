/* core/node.c — a running node: transports, admission, handshake, auth
 * chain, secure RPC server and client, built-in methods. See node.h. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <glib-unix.h>
#include <glib.h>

#include <prozsec/auth.h>
#include <prozsec/e2e.h>
#include <prozsec/rpc.h>
#include <prozsec/transport.h>

#include "authchain.h"
#include "authz.h"
#include "conf.h"
#include "coresvc.h"
#include "crypto.h"
#include "dos.h"
#include "e2e.h"
#include "identity.h"
#include "loader.h"
#include "metrics_http.h"
#include "node.h"
#include "node_priv.h"
#include "nodekeys.h"
#include "rpc_client.h"
#include "rpc_server.h"
#include "settings.h"

#define LOG_SRC "node"

/* ------------------------------------------------------------------------ */
/* Small helpers                                                             */

static uint64_t now_ns(void)
{
    return pz_now_ns();
}

void pz__addr_format(const pz_addr *a, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (!a || a->family == PZ_AF_NONE) {
        g_strlcpy(buf, "-", len);
        return;
    }
    if (a->family == PZ_AF_UNIX) {
        g_strlcpy(buf, "unix", len);
        return;
    }
    if (a->family == PZ_AF_INET) {
        inet_ntop(AF_INET, a->bytes, ip, sizeof(ip));
        g_snprintf(buf, len, "%s:%u", ip, a->port);
    } else {
        inet_ntop(AF_INET6, a->bytes, ip, sizeof(ip));
        g_snprintf(buf, len, "[%s]:%u", ip, a->port);
    }
}

/* The address a listening socket actually got (port 0 resolved). */
static char *fd_local_address(int fd, int is_unix, const char *fallback)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (is_unix || getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
        return g_strdup(fallback);
    char ip[INET6_ADDRSTRLEN];
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
        return g_strdup_printf("%s:%u", ip, ntohs(s4->sin_port));
    }
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
        return g_strdup_printf("[%s]:%u", ip, ntohs(s6->sin6_port));
    }
    return g_strdup(fallback);
}

/* ------------------------------------------------------------------------ */
/* Generations: everything rebuilt by a reload.                              */

static void gen_unref(node_gen *g);

static node_gen *gen_ref(node_gen *g)
{
    g->refs++;
    return g;
}

static void gen_unref(node_gen *g)
{
    if (!g || --g->refs > 0)
        return;
    if (g->dos) {
        pz_err err;
        pz_err_init(&err);
        if (pz_dos_flush(g->dos, &err) < 0)
            pz_log(LOG_SRC, PZ_LOG_WARNING, "saving DoS state: %s", pz_err_msg(&err));
        pz_err_clear(&err);
        pz_dos_free(g->dos);
    }
    pz_authchain_free(g->auth);
    pz_authz_free(g->authz);
    pz_identities_free(g->ids);
    pz_settings_free(g->settings);
    node_conf_clear(&g->nc);
    /* The document stays: provider instances created from it (transports)
     * may still point into it. It is freed with the node. */
    g_free(g);
}

/* Build a generation from DOC (which the caller keeps alive). */
static int gen_build(pz_node *node, pz_conf_doc *doc, node_gen **out, pz_err *err)
{
    int rc = 0;
    node_gen *g = g_new0(node_gen, 1);
    g->refs = 1;
    const pz_conf *root = pz_conf_root(doc);

    if ((rc = pz_settings_load(root, &g->settings, err)) < 0)
        goto out;
    if ((rc = node_conf_load(node, root, &g->nc, err)) < 0)
        goto out;
    if (!node->loader) {
        rc = pz_loader_new((const char *const *)g->settings->plugin_path, g->settings->n_plugin_path,
                           &node->loader, err);
        if (rc < 0)
            goto out;
    }
    if ((rc = pz_identities_new_from_conf(root, &g->ids, err)) < 0)
        goto out;
    if ((rc = pz_authz_new_from_conf(root, &g->authz, err)) < 0)
        goto out;
    if (g->settings->auth) {
        if ((rc = pz_authchain_new_from_conf(node->loader, g->settings->auth, &g->auth, err)) < 0)
            goto out;
        pz_authchain_set_identities(g->auth, g->ids);
    } else {
        rc = pz_err_set(err, PZ_ECONFIG, "%s: auth: an auth section (default_provider or chain) is required",
                        node->config_path);
        goto out;
    }
    if (node->mode == PZ_NODE_SERVER) {
        if ((rc = pz_dos_new_from_settings(node->loader, g->settings, &g->dos, err)) < 0)
            goto out;
    }
out:
    if (rc < 0) {
        gen_unref(g);
        g = NULL;
    }
    *out = g;
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Transports                                                                */

static void transport_free(node_transport *nt)
{
    if (!nt)
        return;
    pz_provider_free(nt->prov);
    g_free(nt->name);
    g_free(nt->listen);
    g_free(nt);
}

static int transports_build(pz_node *node, const pz_settings *s, pz_err *err)
{
    for (size_t i = 0; i < s->n_transports; i++) {
        const pz_settings_provider *e = &s->transports[i];
        const pz_plugin *plugin = NULL;
        int rc = pz_loader_load(node->loader, e->provider, PZ_KIND_TRANSPORT, &plugin, err);
        if (rc < 0) {
            pz_err_prefix(err, "%s: transports[%zu]", pz_conf_where(e->node), i);
            return rc;
        }
        node_transport *nt = g_new0(node_transport, 1);
        nt->name = g_strdup(e->name);
        nt->listen = g_strdup(e->listen);
        rc = pz_provider_new(plugin, e->name, e->config, &nt->prov, err);
        if (rc < 0) {
            transport_free(nt);
            return rc;
        }
        nt->t = pz_provider_table(nt->prov);
        nt->state = pz_provider_state(nt->prov);
        nt->is_unix = strcmp(e->provider, "unix") == 0;
        g_ptr_array_add(node->transports, nt);
    }
    return 0;
}

static node_transport *transport_by_name(pz_node *node, const char *name)
{
    for (guint i = 0; i < node->transports->len; i++) {
        node_transport *nt = node->transports->pdata[i];
        if (!name ? !nt->is_unix : strcmp(nt->name, name) == 0)
            return nt;
    }
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Connections being set up (handshake + authentication).                   */

static void hs_free(hs_conn *c)
{
    if (c->io) {
        g_source_destroy(c->io);
        g_source_unref(c->io);
    }
    if (c->timer) {
        g_source_destroy(c->timer);
        g_source_unref(c->timer);
    }
    if (c->frame) {
        explicit_bzero(c->frame, PZ_CREDFRAME_HDR + PZ_CREDFRAME_MAX);
        g_free(c->frame);
    }
    g_free(c->res);
    g_free(c->expect);
    g_free(c);
}

static void hs_fail(hs_conn *c, int code, const char *why)
{
    pz_node *node = c->node;
    char a[80];
    pz__addr_format(&c->addr, a, sizeof(a));
    if (c->outbound) {
        pz_log(LOG_SRC, PZ_LOG_WARNING, "connection to %s (%s) failed: %s", c->expect, a, why);
        pz_rpc_client_connect_failed(node->client, c->expect, code, why);
    } else {
        pz_log(LOG_SRC, PZ_LOG_NOTICE, "connection from %s refused: %s", a, why);
    }
    if (c->tconn)
        c->nt->t->close(c->tconn);
    if (c->dc) {
        pz_dos_release(c->gen->dos, c->dc, now_ns());
    }
    if (c->gen)
        gen_unref(c->gen);
    node->pending = g_list_remove(node->pending, c);
    hs_free(c);
}

static void emit(pz_node *node, pz_behavior b, const pz_addr *addr, const char *node_id, const char *detail)
{
    pz_behavior_event ev = {
        .struct_size = sizeof(ev),
        .behavior = b,
        .node_id = node_id,
        .now_ns = now_ns(),
        .detail = detail,
    };
    if (addr)
        ev.addr = *addr;
    if (node->gen->dos)
        pz_dos_behavior(node->gen->dos, &ev);
}

static void conn_info_free(gpointer p)
{
    conn_info *ci = p;
    if (ci->dc && ci->gen)
        pz_dos_release(ci->gen->dos, ci->dc, now_ns());
    if (ci->gen)
        gen_unref(ci->gen);
    for (size_t i = 0; i < ci->n_certs; i++)
        g_free(ci->certs[i]);
    g_free(ci->certs);
    g_free(ci->cert_lens);
    if (ci->tokens)
        g_bytes_unref(ci->tokens);
    g_free(ci);
}

/* The transport's view of the peer, completed by the core: channel binding
 * when the transport did not fill it in, the address, the expected node id
 * outbound. BINDING (32 bytes) backs cred->channel_binding when the core
 * exported it. Returns 0, or fails C (freed) and returns -1. */
static int hs_credentials(hs_conn *c, pz_auth_credentials *cred, uint8_t binding[32])
{
    memset(cred, 0, sizeof(*cred));
    cred->struct_size = sizeof(*cred);
    int rc = c->nt->t->peer_credentials(c->tconn, cred);
    if (rc < 0) {
        hs_fail(c, rc, "no peer credentials");
        return -1;
    }
    /* A transport built against an older auth.h fills less: the rest
     * stays zero (no flags: its chains count as validated, as they were). */
    cred->struct_size = sizeof(*cred);
    if (!cred->channel_binding) {
        pz_err e;
        pz_err_init(&e);
        if (c->nt->t->channel_binding(c->tconn, PZ_CHANNEL_BINDING_LABEL, binding, 32, &e) == 0) {
            cred->channel_binding = binding;
            cred->channel_binding_len = 32;
        }
        pz_err_clear(&e);
    }
    cred->expected_node_id = c->outbound ? c->expect : NULL;
    if (!cred->addr)
        cred->addr = &c->addr;
    return 0;
}

/* The ABI view of the identity RES allowed, completed with keys: a local
 * admin client over the unix socket signs as this node; otherwise the
 * identity manager may know the peer's signing key. RES, ROLES and SOURCE
 * back IDENT and must outlive it. */
static void hs_identity(hs_conn *c, pz_authchain_result *res, const char *roles[PZ_AUTH_MAX_ROLES],
                        char *source, size_t source_len, pz_identity *ident)
{
    pz_node *node = c->node;
    g_snprintf(source, source_len, "%s:%s", c->nt->is_unix ? "unix" : c->nt->name, res->provider);
    pz_auth_result_identity(&res->id, source, roles, ident);
    /* A local admin client over the unix socket acts as this node itself:
     * the kernel vouches for its uid, and it signs with this node's key. */
    if (c->nt->is_unix && !ident->sign_pub && strcmp(ident->node_id, node->node_id) == 0)
        ident->sign_pub = node->sign_pub;
    if (!ident->sign_pub) {
        pz_identity_rec rec;
        if (pz_identities_lookup(c->gen->ids, ident->node_id, &rec) == 0 && rec.has_sign_pub) {
            memcpy(res->id.sign_pub, rec.sign_pub, 32);
            res->id.has_sign_pub = 1;
            ident->sign_pub = res->id.sign_pub;
        }
    }
}

/* Refuse a connection whose credentials frame is malformed: a behaviour
 * event, like any malformed frame. */
static void hs_malformed(hs_conn *c, const char *why)
{
    char detail[300];
    g_snprintf(detail, sizeof(detail), "credentials frame: %s", why);
    emit(c->node, PZ_BEHAVIOR_MALFORMED_FRAME, &c->addr, NULL, detail);
    g_snprintf(detail, sizeof(detail), "malformed credentials frame: %s", why);
    hs_fail(c, PZ_EPROTO, detail);
}

static void hs_watch(hs_conn *c);

/* Outbound, frame sent: hand the connection to the RPC client. */
static void hs_outbound_done(hs_conn *c)
{
    pz_node *node = c->node;
    const char *roles[PZ_AUTH_MAX_ROLES];
    char source[96], a[80];
    pz_identity ident;
    GError *ge = NULL;

    hs_identity(c, c->res, roles, source, sizeof(source), &ident);
    pz__addr_format(&c->addr, a, sizeof(a));
    void *tconn = c->tconn;
    c->tconn = NULL;
    pz_log(LOG_SRC, PZ_LOG_INFO, "connected to %s at %s (auth %s)", ident.node_id, a, c->res->provider);
    if (pz_rpc_client_add_connection(node->client, c->expect, c->nt->t, tconn, &ident, &ge) < 0) {
        pz_log(LOG_SRC, PZ_LOG_WARNING, "connection to %s: %s", c->expect, ge ? ge->message : "refused");
        g_clear_error(&ge);
    }
    gen_unref(c->gen);
    c->gen = NULL;
    node->pending = g_list_remove(node->pending, c);
    hs_free(c);
}

/* Outbound: send the rest of our credentials frame. */
static void hs_frame_write(hs_conn *c)
{
    pz_err err;
    pz_err_init(&err);
    while (c->frame_done < c->frame_len) {
        size_t n = 0;
        int rc = c->nt->t->write(c->tconn, c->frame + c->frame_done, c->frame_len - c->frame_done, &n, &err);
        if (rc == PZ_EAGAIN) {
            hs_watch(c);
            goto out;
        }
        if (rc < 0 || n == 0) {
            char why[300];
            g_snprintf(why, sizeof(why), "sending the credentials frame: %s",
                       rc < 0 ? pz_err_msg(&err) : "transport wrote nothing");
            hs_fail(c, rc < 0 ? rc : PZ_EIO, why);
            goto out;
        }
        c->frame_done += n;
    }
    hs_outbound_done(c);
out:
    pz_err_clear(&err);
}

/* Outbound, handshake done: authenticate the server (the node dialled),
 * then send our credentials frame before any call. */
static void hs_outbound_auth(hs_conn *c)
{
    pz_auth_credentials cred;
    uint8_t binding[32];
    if (hs_credentials(c, &cred, binding) < 0)
        return;
    c->res = g_new0(pz_authchain_result, 1);
    pz_authchain_authenticate(c->gen->auth, &cred, now_ns(), c->res);
    if (!c->res->allowed) {
        char why[320];
        g_snprintf(why, sizeof(why), "authentication refused by %s (%s): %s", c->res->provider,
                   pz_auth_outcome_name(c->res->outcome), c->res->reason);
        hs_fail(c, PZ_EREFUSED, why);
        return;
    }
    if (c->node->e2e && cred.n_certs > 0 && !(cred.flags & PZ_AUTH_CRED_UNVERIFIED_CHAIN)) {
        GError *ge = NULL;
        if (pz_e2e_add_peer_cert(c->node->e2e, cred.cert_der[0], cred.cert_der_len[0], &ge) < 0)
            g_clear_error(&ge);
    }
    size_t ntok = 0;
    c->frame = g_malloc(PZ_CREDFRAME_HDR + PZ_CREDFRAME_MAX);
    int rc = pz_authchain_credentials_frame(c->gen->auth, cred.channel_binding, cred.channel_binding_len, c->frame,
                                            PZ_CREDFRAME_HDR + PZ_CREDFRAME_MAX, &c->frame_len, &ntok);
    if (rc < 0) {
        hs_fail(c, rc, "cannot build the credentials frame");
        return;
    }
    pz_log(LOG_SRC, PZ_LOG_DEBUG, "credentials frame to %s: %zu token%s, %zu bytes", c->expect, ntok,
           ntok == 1 ? "" : "s", c->frame_len);
    c->stage = HS_CRED_WRITE;
    c->frame_done = 0;
    hs_frame_write(c);
}

/* Inbound, credentials frame read: run the auth chain over the transport's
 * credentials and the frame's tokens, admit, hand over to the RPC server. */
static void hs_inbound_auth(hs_conn *c, const pz_credframe *frame)
{
    pz_node *node = c->node;
    pz_auth_credentials cred;
    uint8_t binding[32];
    if (hs_credentials(c, &cred, binding) < 0)
        return;
    pz_authchain_result res;
    pz_authchain_authenticate_frame(c->gen->auth, &cred, frame, now_ns(), &res);
    if (!res.allowed) {
        char why[320];
        g_snprintf(why, sizeof(why), "authentication refused by %s (%s): %s", res.provider,
                   pz_auth_outcome_name(res.outcome), res.reason);
        hs_fail(c, PZ_EREFUSED, why);
        return;
    }

    const char *roles[PZ_AUTH_MAX_ROLES];
    char source[96];
    pz_identity ident;
    hs_identity(c, &res, roles, source, sizeof(source), &ident);
    /* A certificate nobody validated is the peer's own claim: its keys
     * reach the E2E directory only through the identity key-pin vouched
     * for, not from here. */
    if (node->e2e && cred.n_certs > 0 && !(cred.flags & PZ_AUTH_CRED_UNVERIFIED_CHAIN)) {
        GError *ge = NULL;
        if (pz_e2e_add_peer_cert(node->e2e, cred.cert_der[0], cred.cert_der_len[0], &ge) < 0)
            g_clear_error(&ge);
    }

    char a[80];
    pz__addr_format(&c->addr, a, sizeof(a));
    pz_dos_verdict v;
    if (c->gen->dos) {
        pz_dos_admit_identity(c->gen->dos, c->dc, &ident, now_ns(), &v);
        if (!v.allowed) {
            char why[200];
            g_snprintf(why, sizeof(why), "peer %s not admitted by %s: %s", ident.node_id,
                       v.provider ? v.provider : "dos", v.detail);
            hs_fail(c, PZ_EREFUSED, why);
            return;
        }
    }
    conn_info *ci = g_new0(conn_info, 1);
    ci->node = node;
    ci->gen = c->gen;
    c->gen = NULL;
    ci->dc = c->dc;
    c->dc = NULL;
    ci->addr = c->addr;
    ci->nt = c->nt;
    g_strlcpy(ci->node_id, ident.node_id, sizeof(ci->node_id));
    g_strlcpy(ci->auth_provider, res.provider, sizeof(ci->auth_provider));
    ci->since_ns = pz_realtime_ns();
    ci->cred_flags = cred.flags;
    if (frame && frame->n > 0)
        ci->tokens = g_bytes_new(c->frame + PZ_CREDFRAME_HDR, c->frame_need);
    if (cred.n_certs > 0) {
        ci->n_certs = cred.n_certs;
        ci->certs = g_new0(uint8_t *, cred.n_certs);
        ci->cert_lens = g_new0(size_t, cred.n_certs);
        for (size_t i = 0; i < cred.n_certs; i++) {
            ci->certs[i] = g_memdup2(cred.cert_der[i], cred.cert_der_len[i]);
            ci->cert_lens[i] = cred.cert_der_len[i];
        }
    }
    if (cred.channel_binding && cred.channel_binding_len == 32) {
        memcpy(ci->binding, cred.channel_binding, 32);
        ci->has_binding = 1;
    }
    void *tconn = c->tconn;
    c->tconn = NULL;
    node->pending = g_list_remove(node->pending, c);
    hs_free(c);

    pz_rpc_conn *rc_conn = NULL;
    GError *ge = NULL;
    node->adding = ci;
    int rc = pz_rpc_server_add_connection(node->server, ci->nt->t, tconn, &ident, &ci->addr, &rc_conn, &ge);
    node->adding = NULL;
    if (rc < 0) {
        pz_log(LOG_SRC, PZ_LOG_WARNING, "peer %s: %s", ident.node_id, ge ? ge->message : "cannot serve");
        g_clear_error(&ge);
        if (!ci->closed)
            conn_info_free(ci);
        return;
    }
    ci->rpc = rc_conn;
    g_hash_table_insert(node->conns, rc_conn, ci);
    pz_log(LOG_SRC, PZ_LOG_INFO, "peer %s connected from %s (auth %s)", ident.node_id, a, res.provider);
}

/* Inbound: read the peer's credentials frame, exactly its bytes (what
 * follows belongs to the RPC channel), within the handshake deadline. */
static void hs_frame_read(hs_conn *c)
{
    pz_err err;
    pz_err_init(&err);
    for (;;) {
        size_t want = c->frame_len < PZ_CREDFRAME_HDR ? PZ_CREDFRAME_HDR - c->frame_len
                                                      : PZ_CREDFRAME_HDR + c->frame_need - c->frame_len;
        if (want == 0)
            break;
        size_t n = 0;
        int rc = c->nt->t->read(c->tconn, c->frame + c->frame_len, want, &n, &err);
        if (rc == PZ_EAGAIN) {
            hs_watch(c);
            goto out;
        }
        if (rc == PZ_EOF) {
            hs_fail(c, PZ_EOF, "peer closed the connection before sending its credentials frame");
            goto out;
        }
        if (rc < 0 || n == 0 || n > want) {
            char why[300];
            g_snprintf(why, sizeof(why), "reading the credentials frame: %s",
                       rc < 0 ? pz_err_msg(&err) : "transport read nothing");
            hs_fail(c, rc < 0 ? rc : PZ_EIO, why);
            goto out;
        }
        c->frame_len += n;
        if (c->frame_len == PZ_CREDFRAME_HDR) {
            char why[200];
            uint32_t l = (uint32_t)c->frame[0] << 24 | (uint32_t)c->frame[1] << 16 | (uint32_t)c->frame[2] << 8 |
                         c->frame[3];
            if (pz_credframe_check_length(l, why, sizeof(why)) < 0) {
                hs_malformed(c, why);
                goto out;
            }
            c->frame_need = l;
        }
    }
    char why[200];
    pz_credframe f;
    if (pz_credframe_decode(c->frame + PZ_CREDFRAME_HDR, c->frame_need, &f, why, sizeof(why)) < 0) {
        hs_malformed(c, why);
        goto out;
    }
    /* F points into c->frame, which lives until hs_free. */
    hs_inbound_auth(c, &f);
out:
    pz_err_clear(&err);
}

static void hs_step(hs_conn *c);

static gboolean hs_io_cb(gint fd, GIOCondition cond, gpointer ud)
{
    (void)fd;
    (void)cond;
    hs_step(ud);
    return G_SOURCE_CONTINUE;
}

static gboolean hs_timeout_cb(gpointer ud)
{
    hs_conn *c = ud;
    g_source_unref(c->timer);
    c->timer = NULL;
    const char *why = c->stage == HS_CRED_READ    ? "handshake deadline passed before the peer's credentials frame"
                      : c->stage == HS_CRED_WRITE ? "handshake deadline passed while sending the credentials frame"
                                                  : "handshake deadline passed";
    emit(c->node, PZ_BEHAVIOR_TIMEOUT, &c->addr, NULL, "handshake deadline");
    hs_fail(c, PZ_ETIMEDOUT, why);
    return G_SOURCE_REMOVE;
}

static void hs_watch(hs_conn *c)
{
    int ev = c->nt->t->conn_events(c->tconn);
    GIOCondition cond = G_IO_ERR | G_IO_HUP;
    if (ev & PZ_IO_READ)
        cond |= G_IO_IN;
    if (ev & PZ_IO_WRITE)
        cond |= G_IO_OUT;
    if (!(ev & (PZ_IO_READ | PZ_IO_WRITE)))
        cond |= c->stage == HS_CRED_WRITE ? G_IO_OUT : G_IO_IN;
    if (c->io && c->io_cond == cond)
        return;
    if (c->io) {
        g_source_destroy(c->io);
        g_source_unref(c->io);
    }
    c->io = g_unix_fd_source_new(c->nt->t->conn_fd(c->tconn), cond);
    c->io_cond = cond;
    g_source_set_callback(c->io, G_SOURCE_FUNC(hs_io_cb), c, NULL);
    g_source_attach(c->io, c->node->ctx);
}

static void hs_step(hs_conn *c)
{
    if (c->stage == HS_CRED_WRITE) {
        hs_frame_write(c);
        return;
    }
    if (c->stage == HS_CRED_READ) {
        hs_frame_read(c);
        return;
    }
    pz_err err;
    pz_err_init(&err);
    int rc = c->nt->t->handshake(c->tconn, &err);
    if (rc == PZ_EAGAIN) {
        hs_watch(c);
    } else if (rc < 0) {
        char why[300];
        g_snprintf(why, sizeof(why), "handshake failed: %s", pz_err_msg(&err));
        emit(c->node, PZ_BEHAVIOR_HANDSHAKE_FAILURE, &c->addr, NULL, "handshake failed");
        hs_fail(c, rc, why);
    } else if (c->outbound) {
        hs_outbound_auth(c);
    } else {
        c->stage = HS_CRED_READ;
        c->frame = g_malloc(PZ_CREDFRAME_HDR + PZ_CREDFRAME_MAX);
        c->frame_len = c->frame_need = 0;
        hs_frame_read(c);
    }
    pz_err_clear(&err);
}

static hs_conn *hs_new(pz_node *node, node_transport *nt, void *tconn, const pz_addr *addr, int outbound,
                       const char *expect)
{
    hs_conn *c = g_new0(hs_conn, 1);
    c->node = node;
    c->nt = nt;
    c->tconn = tconn;
    if (addr)
        c->addr = *addr;
    c->outbound = outbound;
    c->expect = g_strdup(expect);
    c->gen = gen_ref(node->gen);
    c->timer = g_timeout_source_new(node->gen->nc.handshake_timeout_ms);
    g_source_set_callback(c->timer, hs_timeout_cb, c, NULL);
    g_source_attach(c->timer, node->ctx);
    node->pending = g_list_prepend(node->pending, c);
    return c;
}

/* ------------------------------------------------------------------------ */
/* Listeners                                                                 */

static gboolean accept_cb(gint fd, GIOCondition cond, gpointer ud)
{
    (void)fd;
    (void)cond;
    node_listener *l = ud;
    pz_node *node = l->node;
    /* Bounded: at most 64 accepts per wake-up, so one flood cannot starve
     * the loop. */
    for (int i = 0; i < 64; i++) {
        void *tconn = NULL;
        pz_addr addr;
        memset(&addr, 0, sizeof(addr));
        pz_err err;
        pz_err_init(&err);
        int rc = l->nt->t->accept(l->listener, &tconn, &addr, &err);
        if (rc == PZ_EAGAIN) {
            pz_err_clear(&err);
            break;
        }
        if (rc == PZ_EREFUSED) {
            /* The transport took the connection and closed it itself (the
             * tls plugin's pending-handshake cap): a refusal like the DoS
             * chain's, and the listener is fine, so go on with the batch.
             * The line starts the same each time (the listener, not the
             * remote address), so core/logging.c summarises a flood of them. */
            node->refused_pre++;
            node->refused_transport++;
            pz_log(LOG_SRC, PZ_LOG_NOTICE, "accept on %s: refused by the transport: %s", l->address,
                   pz_err_msg(&err));
            pz_err_clear(&err);
            continue;
        }
        if (rc < 0) {
            /* The listener itself failed (EMFILE, ...): wait for the next
             * wake-up rather than spin. */
            pz_log(LOG_SRC, PZ_LOG_WARNING, "accept on %s: %s", l->address, pz_err_msg(&err));
            pz_err_clear(&err);
            break;
        }
        pz_err_clear(&err);
        pz_dos_conn *dc = NULL;
        if (node->gen->dos) {
            pz_dos_verdict v;
            pz_dos_admit_address(node->gen->dos, &addr, now_ns(), &dc, &v);
            if (!v.allowed) {
                l->nt->t->close(tconn);
                node->refused_pre++;
                continue;
            }
        }
        hs_conn *c = hs_new(node, l->nt, tconn, &addr, 0, NULL);
        c->dc = dc;
        hs_step(c);
    }
    return G_SOURCE_CONTINUE;
}

static void listener_free(node_listener *l)
{
    if (l->src) {
        g_source_destroy(l->src);
        g_source_unref(l->src);
    }
    if (l->listener)
        l->nt->t->listener_close(l->listener);
    g_free(l->address);
    g_free(l);
}

/* ------------------------------------------------------------------------ */
/* RPC hooks                                                                 */

/* The server's rate-limit hook (pz_rpc_server_hooks.rate_limit_retry): the DoS chain's
 * verdict, with the refusing limiter's retry-after (rounded up to whole
 * milliseconds) for the response. */
static int hook_rate_limit(void *ud, const pz_identity *peer, const pz_addr *addr, const char *method,
                           uint32_t cost, uint64_t now, int *allowed, uint32_t *retry_after_ms)
{
    pz_node *node = ud;
    (void)cost; /* the DoS service applies method_costs itself */
    *allowed = 1;
    if (!node->gen->dos)
        return 0;
    pz_dos_verdict v;
    int rc = pz_dos_check_request(node->gen->dos, peer ? peer->node_id : NULL, addr, method, now, &v);
    *allowed = rc == 0 && v.allowed;
    if (!*allowed && rc == 0 && v.retry_after_ns) {
        uint64_t ms = v.retry_after_ns / 1000000u + (v.retry_after_ns % 1000000u != 0);
        *retry_after_ms = ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
    }
    return 0;
}

static int hook_authorize(void *ud, const pz_identity *peer, const char *method, int *allowed)
{
    pz_node *node = ud;
    *allowed = 0;
    /* admin.* exists only on the local socket, whatever the rules say. */
    if (g_str_has_prefix(method, "admin.") && !(peer && peer->source && g_str_has_prefix(peer->source, "unix:")))
        return 0;
    pz_authz_decision d;
    if (pz_authz_check(node->gen->authz, method, peer, &d) == 0)
        *allowed = d.allowed;
    return 0;
}

static void hook_behavior(void *ud, const pz_behavior_event *event)
{
    pz_node *node = ud;
    /* pz_dos_check_request already reported its own refusals. */
    if (event->behavior == PZ_BEHAVIOR_RATE_LIMITED)
        return;
    if (node->gen->dos)
        pz_dos_behavior(node->gen->dos, event);
}

static void hook_call_done(void *ud, const pz_identity *peer, const char *method, int32_t status,
                           uint64_t duration_ns, const char *reason)
{
    pz_node *node = ud;
    const char *st = pz_rpc_status_name(status);
    node->core->metric_add(node->core, "rpc_calls_total", st, 1);
    if (status != PZ_RPC_OK)
        pz_log(LOG_SRC, PZ_LOG_NOTICE, "call %s from %s refused: %s (%s)", method, peer ? peer->node_id : "?", st,
               reason ? reason : "");
    else
        pz_log(LOG_SRC, PZ_LOG_DEBUG, "call %s from %s ok in %" G_GUINT64_FORMAT " us", method,
               peer ? peer->node_id : "?", duration_ns / 1000);
}

static void hook_conn_closed(void *ud, pz_rpc_conn *conn, int code, const char *reason)
{
    pz_node *node = ud;
    conn_info *ci = g_hash_table_lookup(node->conns, conn);
    if (!ci && node->adding) {
        /* closed while being added: the caller frees it */
        node->adding->closed = 1;
        conn_info_free(node->adding);
        return;
    }
    if (ci) {
        pz_log(LOG_SRC, PZ_LOG_INFO, "peer %s disconnected: %s", ci->node_id, reason ? reason : pz_strerror(code));
        g_hash_table_remove(node->conns, conn);
    }
}

static void client_connect_hook(void *ud, pz_rpc_client *client, const char *peer);

static gboolean connect_failed_idle(gpointer ud)
{
    connect_fail *f = ud;
    pz_rpc_client_connect_failed(f->node->client, f->peer, f->code, f->message);
    g_free(f->peer);
    g_free(f->message);
    g_free(f);
    return G_SOURCE_REMOVE;
}

static void connect_failed_later(pz_node *node, const char *peer, int code, const char *message)
{
    connect_fail *f = g_new0(connect_fail, 1);
    f->node = node;
    f->peer = g_strdup(peer);
    f->code = code;
    f->message = g_strdup(message);
    GSource *s = g_idle_source_new();
    g_source_set_callback(s, connect_failed_idle, f, NULL);
    g_source_attach(s, node->ctx);
    g_source_unref(s);
}

static void client_connect_hook(void *ud, pz_rpc_client *client, const char *peer)
{
    pz_node *node = ud;
    (void)client;
    node_peer *p = g_hash_table_lookup(node->peers, peer);
    if (!p) {
        char msg[160];
        g_snprintf(msg, sizeof(msg), "no address for %s (add it under peers: or use --peer)", peer);
        connect_failed_later(node, peer, PZ_ENOENT, msg);
        return;
    }
    node_transport *nt = transport_by_name(node, p->transport);
    if (!nt) {
        connect_failed_later(node, peer, PZ_ENOENT, "no transport to reach it");
        return;
    }
    void *tconn = NULL;
    pz_err err;
    pz_err_init(&err);
    int rc = nt->t->connect(nt->state, p->address, peer, &tconn, &err);
    if (rc < 0) {
        char msg[300];
        g_snprintf(msg, sizeof(msg), "connect %s: %s", p->address, pz_err_msg(&err));
        pz_err_clear(&err);
        connect_failed_later(node, peer, rc, msg);
        return;
    }
    pz_err_clear(&err);
    hs_conn *c = hs_new(node, nt, tconn, NULL, 1, peer);
    hs_step(c);
}

/* ------------------------------------------------------------------------ */
/* Node                                                                      */

static int load_keys(pz_node *node, const char *key_dir, pz_err *err)
{
    pz_nodekeys *keys = NULL;
    int rc = pz_nodekeys_load(key_dir, &keys, err);
    if (rc < 0) {
        pz_err_prefix(err, "node keys in %s", key_dir);
        return rc;
    }
    GError *ge = NULL;
    rc = pz_rpc_key_new(pz_sign_key_seed(pz_nodekeys_sign_key(keys)), &node->rpc_key, &ge);
    memcpy(node->sign_pub, pz_nodekeys_sign_pub(keys), 32);
    pz_nodekeys_free(keys);
    if (rc < 0) {
        rc = pz_err_set(err, rc, "signing key: %s", ge ? ge->message : "invalid");
        g_clear_error(&ge);
        return rc;
    }
    pz_e2e_options o;
    pz_e2e_options_init(&o);
    o.rotate_interval_ns = node->gen->nc.e2e_rotate_ns;
    o.grace_ns = node->gen->nc.e2e_grace_ns;
    rc = pz_e2e_new(node->node_id, key_dir, &o, &node->e2e, &ge);
    if (rc < 0) {
        rc = pz_err_set(err, rc, "E2E keys in %s: %s", key_dir, ge ? ge->message : "invalid");
        g_clear_error(&ge);
        return rc;
    }
    return 0;
}

static void apply_peers(pz_node *node, const node_conf *nc)
{
    for (size_t i = 0; i < nc->n_peers; i++) {
        node_peer *p = g_new0(node_peer, 1);
        p->address = g_strdup(nc->peers[i].address);
        p->transport = g_strdup(nc->peers[i].transport);
        g_hash_table_replace(node->peers, g_strdup(nc->peers[i].node_id), p);
    }
}

static void node_peer_free(gpointer p)
{
    node_peer *np = p;
    g_free(np->address);
    g_free(np->transport);
    g_free(np);
}

int pz_node_new(const char *config_path, pz_node_mode mode, pz_node **out, pz_err *err)
{
    int rc;
    *out = NULL;
    pz_crypto_init();
    pz_node *node = g_new0(pz_node, 1);
    node->mode = mode;
    node->config_path = g_strdup(config_path);
    node->ctx = g_main_context_ref_thread_default();
    node->docs = g_ptr_array_new_with_free_func((GDestroyNotify)pz_conf_doc_free);
    node->transports = g_ptr_array_new_with_free_func((GDestroyNotify)transport_free);
    node->listeners = g_ptr_array_new_with_free_func((GDestroyNotify)listener_free);
    node->conns = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, conn_info_free);
    node->peers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, node_peer_free);
    node->inbox = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, node_inbox_free);
    node->core = pz_core_new("node");

    pz_conf_doc *doc = NULL;
    if ((rc = pz_conf_load_file(config_path, &doc, err)) < 0)
        goto fail;
    g_ptr_array_add(node->docs, doc);
    if ((rc = gen_build(node, doc, &node->gen, err)) < 0)
        goto fail;
    node->node_id = g_strdup(node->gen->settings->node_id);
    node->node_type = g_strdup(node->gen->settings->node_type);
    if ((rc = transports_build(node, node->gen->settings, err)) < 0)
        goto fail;
    if ((rc = load_keys(node, node->gen->settings->key_dir, err)) < 0)
        goto fail;
    apply_peers(node, &node->gen->nc);

    GError *ge = NULL;
    pz_rpc_client_hooks ch = {.struct_size = sizeof(ch), .connect = client_connect_hook, .ud = node};
    pz_rpc_client_config cc = {
        .struct_size = sizeof(cc),
        .node_id = node->node_id,
        .key = node->rpc_key,
        .context = node->ctx,
        .hooks = &ch,
        .skew_ns = node->gen->nc.skew_ns,
        .max_frame_bytes = node->gen->nc.max_frame_bytes,
    };
    if ((rc = pz_rpc_client_new(&cc, &node->client, &ge)) < 0) {
        rc = pz_err_set(err, rc, "rpc client: %s", ge ? ge->message : "failed");
        g_clear_error(&ge);
        goto fail;
    }
    if (mode == PZ_NODE_SERVER) {
        if (node->gen->nc.audit_path) {
            if ((rc = pz_audit_open(node->gen->nc.audit_path, 1, &node->audit, &ge)) < 0) {
                rc = pz_err_set(err, rc, "audit log: %s", ge ? ge->message : "failed");
                g_clear_error(&ge);
                goto fail;
            }
        }
        pz_rpc_server_hooks sh = {
            .struct_size = sizeof(sh),
            .rate_limit_retry = hook_rate_limit,
            .authorize = hook_authorize,
            .behavior = hook_behavior,
            .call_done = hook_call_done,
            .conn_closed = hook_conn_closed,
            .ud = node,
        };
        pz_rpc_server_config sc = {
            .struct_size = sizeof(sc),
            .node_id = node->node_id,
            .key = node->rpc_key,
            .context = node->ctx,
            .hooks = &sh,
            .audit = node->audit,
            .skew_ns = node->gen->nc.skew_ns,
            .replay_cache_max = node->gen->nc.replay_cache,
            .max_frame_bytes = node->gen->nc.max_frame_bytes,
            .max_in_flight = node->gen->nc.max_in_flight,
        };
        if ((rc = pz_rpc_server_new(&sc, &node->server, &ge)) < 0) {
            rc = pz_err_set(err, rc, "rpc server: %s", ge ? ge->message : "failed");
            g_clear_error(&ge);
            goto fail;
        }
        if ((rc = node_methods_register(node, err)) < 0)
            goto fail;
        pz_dos_install(node->gen->dos);
    }
    *out = node;
    return 0;
fail:
    pz_node_free(node);
    return rc;
}

/* Rotate E2E receiving keys on schedule and destroy retired ones past
 * their grace period; pz_e2e_rotate does nothing until a key is due. */
static gboolean rotate_tick(gpointer ud)
{
    pz_node *node = ud;
    int created = 0;
    GError *ge = NULL;
    if (pz_e2e_rotate(node->e2e, pz_realtime_ns(), &created, &ge) < 0) {
        pz_log(LOG_SRC, PZ_LOG_WARNING, "E2E key rotation: %s", ge ? ge->message : "failed");
        g_clear_error(&ge);
    } else if (created) {
        pz_log(LOG_SRC, PZ_LOG_NOTICE, "new E2E receiving key (signed record served by keys.get)");
    }
    return G_SOURCE_CONTINUE;
}

/* Save the DoS providers' persistent state (dos.save_interval). A provider
 * writes only when its state changed since its last save (the reputation
 * plugin keeps a dirty flag), so an idle node does not touch the disk. */
static gboolean save_tick(gpointer ud)
{
    pz_node *node = ud;
    if (node->gen && node->gen->dos) {
        pz_err err;
        pz_err_init(&err);
        if (pz_dos_flush(node->gen->dos, &err) < 0)
            pz_log(LOG_SRC, PZ_LOG_WARNING, "saving DoS state: %s", pz_err_msg(&err));
        pz_err_clear(&err);
    }
    return G_SOURCE_CONTINUE;
}

/* (Re)arm the save timer for the running generation's interval. */
static void arm_save_timer(pz_node *node)
{
    uint64_t ns = node->gen && node->gen->dos ? node->gen->nc.dos_save_ns : 0;
    if (node->save_timer && node->save_timer_ns == ns)
        return;
    if (node->save_timer) {
        GSource *t = g_main_context_find_source_by_id(node->ctx, node->save_timer);
        if (t)
            g_source_destroy(t);
        node->save_timer = 0;
    }
    node->save_timer_ns = ns;
    if (!ns)
        return;
    uint64_t ms = ns / 1000000u;
    GSource *t = g_timeout_source_new(ms > G_MAXUINT ? G_MAXUINT : (guint)ms);
    g_source_set_name(t, "prozsec dos save");
    g_source_set_callback(t, save_tick, node, NULL);
    node->save_timer = g_source_attach(t, node->ctx);
    g_source_unref(t);
}

int pz_node_start(pz_node *node, pz_err *err)
{
    arm_save_timer(node);
    if (node->e2e && !node->rotate_timer) {
        rotate_tick(node);
        GSource *t = g_timeout_source_new_seconds(60);
        g_source_set_callback(t, rotate_tick, node, NULL);
        node->rotate_timer = g_source_attach(t, node->ctx);
        g_source_unref(t);
    }
    for (guint i = 0; i < node->transports->len; i++) {
        node_transport *nt = node->transports->pdata[i];
        if (!nt->listen)
            continue;
        node_listener *l = g_new0(node_listener, 1);
        l->node = node;
        l->nt = nt;
        int rc = nt->t->listen(nt->state, nt->listen, &l->listener, err);
        if (rc < 0) {
            pz_err_prefix(err, "transport %s: listen on %s", nt->name, nt->listen);
            g_free(l);
            return rc;
        }
        int fd = nt->t->listener_fd(l->listener);
        l->address = fd_local_address(fd, nt->is_unix, nt->listen);
        l->src = g_unix_fd_source_new(fd, G_IO_IN);
        g_source_set_callback(l->src, G_SOURCE_FUNC(accept_cb), l, NULL);
        g_source_attach(l->src, node->ctx);
        g_ptr_array_add(node->listeners, l);
        pz_log(LOG_SRC, PZ_LOG_NOTICE, "node %s listening on %s (%s)", node->node_id, l->address, nt->name);
    }
    if (node->gen->nc.metrics_listen) {
        int rc = pz_metrics_http_start(node->gen->nc.metrics_listen, node->ctx, (char *(*)(void *))pz_node_stats_text,
                                       node, &node->metrics, err);
        if (rc < 0)
            return rc;
        pz_log(LOG_SRC, PZ_LOG_NOTICE, "metrics on http://%s/metrics", node->gen->nc.metrics_listen);
    }
    return 0;
}

const char *pz_node_listen_address(const pz_node *node, size_t i)
{
    if (i >= node->listeners->len)
        return NULL;
    node_listener *l = node->listeners->pdata[i];
    return l->address;
}

/* After a reload: close sessions whose peer the new generation refuses
 * (banned, blocked, revoked certificate). */
static void recheck_sessions(pz_node *node)
{
    GHashTableIter it;
    gpointer k, v;
    GPtrArray *doomed = g_ptr_array_new();
    g_hash_table_iter_init(&it, node->conns);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        conn_info *ci = v;
        const char *why = NULL;
        if (node->gen->dos && pz_dos_peer_status(node->gen->dos, ci->node_id, now_ns()) == PZ_STATUS_BLOCKED)
            why = "peer is blocked";
        if (!why && (ci->n_certs > 0 || ci->tokens)) {
            pz_auth_credentials cred = {
                .struct_size = sizeof(cred),
                .transport = ci->nt->name,
                .addr = &ci->addr,
                .n_certs = ci->n_certs,
                .cert_der = (const uint8_t *const *)ci->certs,
                .cert_der_len = ci->cert_lens,
                .channel_binding = ci->has_binding ? ci->binding : NULL,
                .channel_binding_len = ci->has_binding ? 32 : 0,
                .flags = ci->cred_flags,
                .chain_note = ci->cred_flags & PZ_AUTH_CRED_UNVERIFIED_CHAIN ? "not CA-validated at connect" : NULL,
            };
            pz_credframe f;
            memset(&f, 0, sizeof(f));
            if (ci->tokens) {
                gsize tl = 0;
                const uint8_t *tp = g_bytes_get_data(ci->tokens, &tl);
                (void)pz_credframe_decode(tp, tl, &f, NULL, 0); /* decoded once already */
            }
            pz_authchain_result res;
            pz_authchain_authenticate_frame(node->gen->auth, &cred, &f, now_ns(), &res);
            if (!res.allowed || strcmp(res.id.node_id, ci->node_id) != 0)
                why = "credentials no longer accepted";
        }
        if (why) {
            pz_log(LOG_SRC, PZ_LOG_NOTICE, "closing session of %s after reload: %s", ci->node_id, why);
            g_ptr_array_add(doomed, k);
        }
    }
    for (guint i = 0; i < doomed->len; i++)
        pz_rpc_conn_close(doomed->pdata[i]);
    g_ptr_array_free(doomed, TRUE);
}

int pz_node_reload(pz_node *node, pz_err *err)
{
    pz_conf_doc *doc = NULL;
    node_gen *g = NULL;
    int rc;
    /* Save the running DoS state first, so the new generation loads it. */
    if (node->gen->dos)
        pz_dos_flush(node->gen->dos, NULL);
    if ((rc = pz_conf_load_file(node->config_path, &doc, err)) < 0)
        goto fail;
    if ((rc = gen_build(node, doc, &g, err)) < 0)
        goto fail;
    if (strcmp(g->settings->node_id, node->node_id) != 0) {
        rc = pz_err_set(err, PZ_ECONFIG, "%s: node.id changed from %s to %s: restart the daemon to change it",
                        node->config_path, node->node_id, g->settings->node_id);
        goto fail;
    }
    /* Transports keep their instances; credentials and CRL are reloaded in
     * place (established sessions stay). Check all before applying any. */
    for (size_t i = 0; i < g->settings->n_transports; i++) {
        const pz_settings_provider *e = &g->settings->transports[i];
        node_transport *nt = transport_by_name(node, e->name);
        if (!nt) {
            rc = pz_err_set(err, PZ_ECONFIG, "%s: transport %s is new: restart the daemon to add a transport",
                            pz_conf_where(e->node), e->name);
            goto fail;
        }
    }
    for (size_t i = 0; i < g->settings->n_transports; i++) {
        const pz_settings_provider *e = &g->settings->transports[i];
        node_transport *nt = transport_by_name(node, e->name);
        if (nt->t->reload && (rc = nt->t->reload(nt->state, e->config, err)) < 0) {
            pz_err_prefix(err, "transport %s", e->name);
            goto fail;
        }
    }
    g_ptr_array_add(node->docs, doc);
    doc = NULL;
    node_gen *old = node->gen;
    node->gen = g;
    if (g->dos)
        pz_dos_install(g->dos);
    g_hash_table_remove_all(node->peers);
    apply_peers(node, &g->nc);
    gen_unref(old);
    if (node->save_timer || node->listeners->len)
        arm_save_timer(node);
    pz_log(LOG_SRC, PZ_LOG_NOTICE, "configuration reloaded from %s", node->config_path);
    recheck_sessions(node);
    return 0;
fail:
    if (g)
        gen_unref(g);
    if (doc)
        pz_conf_doc_free(doc);
    pz_log(LOG_SRC, PZ_LOG_ERROR, "reload refused, the running configuration stays: %s", pz_err_msg(err));
    return rc;
}

void pz_node_shutdown(pz_node *node, unsigned timeout_ms)
{
    for (guint i = 0; i < node->listeners->len; i++) {
        node_listener *l = node->listeners->pdata[i];
        if (l->src) {
            g_source_destroy(l->src);
            g_source_unref(l->src);
            l->src = NULL;
        }
    }
    if (node->server) {
        gint64 end = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
        while (pz_rpc_server_drain(node->server) > 0 && g_get_monotonic_time() < end)
            g_main_context_iteration(node->ctx, FALSE);
    }
    while (node->pending)
        hs_fail(node->pending->data, PZ_ECLOSED, "shutting down");
    if (node->gen && node->gen->dos) {
        pz_err err;
        pz_err_init(&err);
        if (pz_dos_flush(node->gen->dos, &err) < 0)
            pz_log(LOG_SRC, PZ_LOG_WARNING, "saving DoS state: %s", pz_err_msg(&err));
        pz_err_clear(&err);
    }
}

void pz_node_free(pz_node *node)
{
    if (!node)
        return;
    while (node->pending)
        hs_fail(node->pending->data, PZ_ECLOSED, "shutting down");
    pz_metrics_http_stop(node->metrics);
    if (node->rotate_timer) {
        GSource *t = g_main_context_find_source_by_id(node->ctx, node->rotate_timer);
        if (t)
            g_source_destroy(t);
    }
    if (node->save_timer) {
        GSource *t = g_main_context_find_source_by_id(node->ctx, node->save_timer);
        if (t)
            g_source_destroy(t);
    }
    g_ptr_array_free(node->listeners, TRUE);
    pz_rpc_client_free(node->client);
    pz_rpc_server_free(node->server);
    g_hash_table_destroy(node->conns);
    pz_audit_close(node->audit);
    pz_e2e_free(node->e2e);
    pz_rpc_key_free(node->rpc_key);
    if (node->gen && node->gen->dos)
        pz_core_set_hooks(&(pz_core_hooks){0});
    gen_unref(node->gen);
    g_ptr_array_free(node->transports, TRUE);
    g_hash_table_destroy(node->peers);
    g_hash_table_destroy(node->inbox);
    g_ptr_array_free(node->docs, TRUE);
    pz_loader_free(node->loader);
    pz_core_free(node->core);
    g_main_context_unref(node->ctx);
    g_free(node->config_path);
    g_free(node->node_id);
    g_free(node->node_type);
    g_free(node);
}

const char *pz_node_id(const pz_node *node)
{
    return node->node_id;
}

const char *pz_node_config_path(const pz_node *node)
{
    return node->config_path;
}

pz_rpc_client *pz_node_client(pz_node *node)
{
    return node->client;
}

int pz_node_add_peer_address(pz_node *node, const char *node_id, const char *address, const char *transport,
                             pz_err *err)
{
    if (!pz_identity_valid_node_id(node_id))
        return pz_err_set(err, PZ_EINVAL, "invalid node id \"%s\"", node_id);
    if (transport && !transport_by_name(node, transport))
        return pz_err_set(err, PZ_ENOENT, "no transport named %s in %s", transport, node->config_path);
    node_peer *p = g_new0(node_peer, 1);
    p->address = g_strdup(address);
    p->transport = g_strdup(transport);
    g_hash_table_replace(node->peers, g_strdup(node_id), p);
    return 0;
}

typedef struct sync_call {
    int done;
    int rc;
    int32_t status;
    GVariant *data;
    char *message;
} sync_call;

static void sync_done(const pz_rpc_result *r, void *ud)
{
    sync_call *s = ud;
    s->done = 1;
    s->rc = r->rc;
    s->status = r->status;
    s->data = r->data ? g_variant_ref(r->data) : NULL;
    uint32_t retry = pz_rpc_result_retry_after_ms(r);
    if (retry)
        s->message = g_strdup_printf("%s; retry after %" G_GUINT32_FORMAT " ms", r->message, retry);
    else
        s->message = g_strdup(r->message);
}

int pz_node_call_sync(pz_node *node, const char *node_id, const char *method, GVariant *params,
                      unsigned timeout_ms, unsigned flags, GVariant **data, int32_t *status, char **message,
                      pz_err *err)
{
    sync_call s = {0};
    pz_rpc_call_opts o = {.struct_size = sizeof(o), .timeout_ms = timeout_ms, .flags = flags};
    int rc = pz_rpc_client_call(node->client, node_id, method, params, &o, sync_done, &s);
    if (rc < 0)
        return pz_err_set(err, rc, "call %s on %s: %s", method, node_id, pz_strerror(rc));
    /* The client enforces the deadline, so this loop ends; the extra bound
     * guards against a bug there. */
    gint64 end = g_get_monotonic_time() + ((gint64)(timeout_ms ? timeout_ms : 30000) + 5000) * 1000;
    while (!s.done && g_get_monotonic_time() < end)
        g_main_context_iteration(node->ctx, TRUE);
    if (!s.done)
        return pz_err_set(err, PZ_ETIMEDOUT, "call %s on %s: no answer", method, node_id);
    if (status)
        *status = s.status;
    if (data)
        *data = s.data;
    else if (s.data)
        g_variant_unref(s.data);
    if (message)
        *message = s.message;
    else
        g_free(s.message);
    if (s.rc < 0)
        return pz_err_set(err, s.rc, "call %s on %s: %s", method, node_id, message && *message ? *message : pz_strerror(s.rc));
    return 0;
}

char *pz_node_stats_text(pz_node *node)
{
    GString *s = g_string_new(NULL);
    pz_metrics_format(s);
    if (node->server) {
        pz_rpc_server_stats st;
        pz_rpc_server_get_stats(node->server, &st);
        g_string_append_printf(s, "prozsec_rpc_requests_total %" G_GUINT64_FORMAT "\n", st.requests);
        g_string_append_printf(s, "prozsec_rpc_malformed_total %" G_GUINT64_FORMAT "\n", st.malformed);
        g_string_append_printf(s, "prozsec_rpc_open_connections %" G_GUINT64_FORMAT "\n", st.open_connections);
        g_string_append_printf(s, "prozsec_rpc_in_flight %" G_GUINT64_FORMAT "\n", st.in_flight);
        for (int i = 0; i < PZ_RPC_STATUS__COUNT; i++)
            if (st.by_status[i])
                g_string_append_printf(s, "prozsec_rpc_responses_total{status=\"%s\"} %" G_GUINT64_FORMAT "\n",
                                       pz_rpc_status_name(i), st.by_status[i]);
    }
    g_string_append_printf(s, "prozsec_connections_refused_pre_handshake_total %" G_GUINT64_FORMAT "\n",
                           node->refused_pre);
    g_string_append_printf(s, "prozsec_connections_refused_by_transport_total %" G_GUINT64_FORMAT "\n",
                           node->refused_transport);
    if (node->gen->dos) {
        node_stats_refusals(node, s);
    }
    return g_string_free(s, FALSE);
}
