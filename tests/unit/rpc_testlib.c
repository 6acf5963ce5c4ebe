/* tests/unit/rpc_testlib.c — see rpc_testlib.h. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "err.h"
#include "rpc_frame.h"
#include "rpc_testlib.h"

struct tl_conn {
    int fd;
    int with_binding;
    uint8_t binding[32];
};

static int t_read(void *conn, void *buf, size_t len, size_t *nread, pz_err *err)
{
    tl_conn *c = conn;
    ssize_t n = read(c->fd, buf, len);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return PZ_EAGAIN;
    if (n < 0)
        return pz_err_set(err, PZ_EIO, "read: %s", strerror(errno));
    if (n == 0)
        return PZ_EOF;
    *nread = (size_t)n;
    return 0;
}

static int t_write(void *conn, const void *buf, size_t len, size_t *nwritten, pz_err *err)
{
    tl_conn *c = conn;
    ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return PZ_EAGAIN;
    if (n < 0)
        return pz_err_set(err, PZ_EIO, "write: %s", strerror(errno));
    *nwritten = (size_t)n;
    return 0;
}

static int t_fd(void *conn)
{
    return ((tl_conn *)conn)->fd;
}

static int t_events(void *conn)
{
    (void)conn;
    return PZ_IO_READ;
}

static void t_close(void *conn)
{
    tl_conn *c = conn;
    close(c->fd);
    free(c);
}

static int t_binding(void *conn, const char *label, uint8_t *out, size_t len, pz_err *err)
{
    tl_conn *c = conn;
    (void)label;
    if (!c->with_binding || len > sizeof(c->binding))
        return pz_err_set(err, PZ_ENOTSUP, "no channel binding");
    memcpy(out, c->binding, len);
    return 0;
}

static int t_creds(void *conn, pz_auth_credentials *cred)
{
    (void)conn;
    (void)cred;
    return PZ_ENOTSUP;
}

const pz_transport_provider tl_transport = {
    .struct_size = sizeof(pz_transport_provider),
    .read = t_read,
    .write = t_write,
    .conn_fd = t_fd,
    .conn_events = t_events,
    .close = t_close,
    .channel_binding = t_binding,
    .peer_credentials = t_creds,
};

void tl_pair(int with_binding, void **a, void **b)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
        abort();
    tl_conn *x = calloc(1, sizeof(*x)), *y = calloc(1, sizeof(*y));
    x->fd = sv[0];
    y->fd = sv[1];
    x->with_binding = y->with_binding = with_binding;
    for (size_t i = 0; i < 32; i++)
        x->binding[i] = y->binding[i] = (uint8_t)(0xa5 ^ i ^ (uintptr_t)x);
    *a = x;
    *b = y;
}

int tl_conn_fd(void *conn)
{
    return ((tl_conn *)conn)->fd;
}

void tl_node_init(tl_node *n, const char *id)
{
    memset(n, 0, sizeof(*n));
    g_strlcpy(n->id, id, sizeof(n->id));
    if (pz_rpc_key_generate(&n->key, NULL) != 0)
        abort();
    pz_rpc_key_public(n->key, n->pub);
    n->ident.struct_size = sizeof(n->ident);
    n->ident.node_id = n->id;
    n->ident.node_type = "validator";
    n->ident.sign_pub = n->pub;
    n->ident.source = "test";
}

void tl_node_clear(tl_node *n)
{
    pz_rpc_key_free(n->key);
    n->key = NULL;
}

void tl_write_all(GMainContext *ctx, int fd, const uint8_t *buf, size_t len)
{
    size_t done = 0;
    int spins = 0;
    while (done < len) {
        ssize_t n = send(fd, buf + done, len - done, MSG_NOSIGNAL);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return; /* peer closed: the test sees it on read */
        g_main_context_iteration(ctx, FALSE);
        g_usleep(1000);
        if (++spins > 10000)
            abort();
    }
}

uint8_t *tl_read_frame(GMainContext *ctx, int fd, size_t *len)
{
    pz_frame_decoder d;
    uint8_t *res = NULL;
    if (pz_frame_decoder_init(&d, PZ_FRAME_MAX_MAX) != 0)
        abort();
    for (int spins = 0; spins < 30000; spins++) {
        const uint8_t *f;
        size_t flen;
        if (pz_frame_decoder_next(&d, &f, &flen) == 0) {
            res = g_memdup2(f, flen);
            *len = flen;
            break;
        }
        /* Read one byte at a time so nothing past this frame is taken. */
        uint8_t b;
        ssize_t n = read(fd, &b, 1);
        if (n == 1) {
            size_t used;
            pz_frame_decoder_feed(&d, &b, 1, &used);
            spins = 0;
            continue;
        }
        if (n == 0)
            break;
        g_main_context_iteration(ctx, FALSE);
        struct pollfd p = {fd, POLLIN, 0};
        poll(&p, 1, 1);
    }
    pz_frame_decoder_clear(&d);
    return res;
}

static gboolean set_flag(gpointer p)
{
    *(int *)p = 1;
    return G_SOURCE_REMOVE;
}

static gboolean tick(gpointer p)
{
    (void)p;
    return G_SOURCE_CONTINUE;
}

void tl_run_until(GMainContext *ctx, const int *flag)
{
    /* A hang guard, not a timing assertion: generous for valgrind. */
    gint64 end = g_get_monotonic_time() + 300 * G_USEC_PER_SEC;
    /* A periodic wake-up so a flag that never gets set ends the test. */
    GSource *t = g_timeout_source_new(50);
    g_source_set_callback(t, tick, NULL, NULL);
    g_source_attach(t, ctx);
    while (!*flag) {
        if (g_get_monotonic_time() > end)
            abort();
        g_main_context_iteration(ctx, TRUE);
    }
    g_source_destroy(t);
    g_source_unref(t);
}

void tl_run_for(GMainContext *ctx, unsigned ms)
{
    int flag = 0;
    GSource *t = g_timeout_source_new(ms);
    g_source_set_callback(t, set_flag, &flag, NULL);
    g_source_attach(t, ctx);
    while (!flag)
        g_main_context_iteration(ctx, TRUE);
    g_source_destroy(t);
    g_source_unref(t);
}
