/* core/rpc_chan.c — framed channel over a transport connection, driven by a
 * GSource (see rpc_chan.h). */
#include "config.h"

#include <string.h>

#include <prozsec/error.h>

#include "err.h"
#include "rpc_chan.h"
#include "rpc_frame.h"

/* Inbound bytes read per dispatch before yielding to other sources. */
#define READ_BUDGET (256u * 1024)

typedef struct chan_source {
    GSource source;
    pz_rpc_chan *chan; /* weak: the channel destroys the source first */
} chan_source;

struct pz_rpc_chan {
    gint refs;
    const pz_transport_provider *tp;
    void *tconn;
    pz_frame_decoder dec;
    GByteArray *out;
    size_t out_off;  /* first unwritten byte of OUT */
    size_t out_high;
    const pz_rpc_chan_ops *ops;
    void *ud;
    chan_source *src;
    gpointer fd_tag;
    int read_events;  /* what the transport's read waits for */
    int write_events; /* what the transport's write waits for */
    int paused;
    int closed;
    int in_dispatch;
    GIOCondition cond; /* what the source polls for now */
};

static void update_events(pz_rpc_chan *c);

static void chan_fail(pz_rpc_chan *c, int code, const char *why)
{
    if (c->closed)
        return;
    pz_rpc_chan_close(c);
    if (c->ops->closed)
        c->ops->closed(c->ud, c, code, why);
}

static int reading(const pz_rpc_chan *c)
{
    return !c->paused && pz_rpc_chan_out_pending(c) <= c->out_high;
}

/* Write what we can; 0, or a failure (the channel is then failed). */
static int flush_out(pz_rpc_chan *c)
{
    int rc = 0;
    pz_err err;
    pz_err_init(&err);
    while (c->out_off < c->out->len) {
        size_t n = 0;
        rc = c->tp->write(c->tconn, c->out->data + c->out_off, c->out->len - c->out_off, &n, &err);
        if (rc == PZ_EAGAIN) {
            c->write_events = c->tp->conn_events ? c->tp->conn_events(c->tconn) : PZ_IO_WRITE;
            if (!c->write_events)
                c->write_events = PZ_IO_WRITE;
            rc = 0;
            break;
        }
        if (rc) {
            chan_fail(c, rc, err.msg ? err.msg : "write failed");
            goto out;
        }
        c->out_off += n;
    }
    if (c->out_off == c->out->len) {
        g_byte_array_set_size(c->out, 0);
        c->out_off = 0;
        c->write_events = 0;
    } else if (c->out_off > 65536 && c->out_off > c->out->len / 2) {
        g_byte_array_remove_range(c->out, 0, (guint)c->out_off);
        c->out_off = 0;
    }
out:
    pz_err_clear(&err);
    return rc;
}

/* Hand complete frames to the owner while allowed. */
static void deliver_frames(pz_rpc_chan *c)
{
    while (!c->closed && !c->paused) {
        const uint8_t *frame;
        size_t len;
        int rc = pz_frame_decoder_next(&c->dec, &frame, &len);
        if (rc == PZ_EAGAIN)
            return;
        if (rc) {
            chan_fail(c, PZ_EPROTO, "frame length out of range");
            return;
        }
        c->ops->frame(c->ud, c, frame, len);
    }
}

/* Read and deliver until the transport would block, the budget is used or
 * reading pauses. */
static void read_in(pz_rpc_chan *c)
{
    size_t budget = READ_BUDGET;
    pz_err err;
    pz_err_init(&err);
    deliver_frames(c);
    while (!c->closed && reading(c)) {
        size_t avail = 0;
        uint8_t *dst = pz_frame_decoder_space(&c->dec, &avail);
        if (!dst) {
            if (c->dec.failed)
                chan_fail(c, PZ_EPROTO, "frame length out of range");
            else if (!pz_frame_decoder_ready(&c->dec))
                chan_fail(c, PZ_ENOMEM, "out of memory for an inbound frame");
            break; /* else a frame waits while paused */
        }
        size_t n = 0;
        int rc = c->tp->read(c->tconn, dst, avail, &n, &err);
        if (rc == PZ_EAGAIN) {
            c->read_events = c->tp->conn_events ? c->tp->conn_events(c->tconn) : PZ_IO_READ;
            if (!c->read_events)
                c->read_events = PZ_IO_READ;
            break;
        }
        if (rc == PZ_EOF && pz_frame_decoder_pending(&c->dec) > 0 && !pz_frame_decoder_ready(&c->dec)) {
            /* An end (even an orderly one) that cuts a frame short is a
             * framing violation, not a close between frames. */
            chan_fail(c, PZ_EPROTO, "connection closed inside a frame");
            break;
        }
        if (rc) {
            chan_fail(c, rc, rc == PZ_EOF ? "peer closed the connection" : (err.msg ? err.msg : "read failed"));
            break;
        }
        pz_frame_decoder_commit(&c->dec, n);
        deliver_frames(c);
        if (n >= budget) {
            /* Come back next iteration: a TLS layer may hold buffered
             * records the descriptor will not announce. */
            if (!c->closed)
                g_source_set_ready_time(&c->src->source, 0);
            break;
        }
        budget -= n;
    }
    pz_err_clear(&err);
}

static gboolean chan_dispatch(GSource *source, GSourceFunc cb, gpointer data)
{
    (void)cb;
    (void)data;
    pz_rpc_chan *c = ((chan_source *)source)->chan;
    if (!c || c->closed)
        return G_SOURCE_CONTINUE;
    g_source_set_ready_time(source, -1);
    pz_rpc_chan_ref(c);
    c->in_dispatch = 1;
    GIOCondition rev = g_source_query_unix_fd(source, c->fd_tag);
    if (rev & (G_IO_OUT | G_IO_ERR | G_IO_HUP) || c->write_events & PZ_IO_READ)
        flush_out(c);
    if (!c->closed && reading(c))
        read_in(c);
    if (!c->closed)
        flush_out(c);
    c->in_dispatch = 0;
    if (!c->closed) {
        /* Frames left in the decoder while reading was paused get no
         * descriptor event: come back for them. */
        if (reading(c) && pz_frame_decoder_ready(&c->dec))
            g_source_set_ready_time(source, 0);
        update_events(c);
    }
    pz_rpc_chan_unref(c);
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs chan_funcs = {NULL, NULL, chan_dispatch, NULL, NULL, NULL};

static void update_events(pz_rpc_chan *c)
{
    if (c->closed || !c->src)
        return;
    int want = 0;
    if (reading(c))
        want |= c->read_events ? c->read_events : PZ_IO_READ;
    if (c->out_off < c->out->len)
        want |= c->write_events ? c->write_events : PZ_IO_WRITE;
    GIOCondition cond = G_IO_ERR | G_IO_HUP;
    if (want & PZ_IO_READ)
        cond |= G_IO_IN;
    if (want & PZ_IO_WRITE)
        cond |= G_IO_OUT;
    if (cond != c->cond) { /* a change makes the context rebuild its poll set */
        c->cond = cond;
        g_source_modify_unix_fd(&c->src->source, c->fd_tag, cond);
    }
}

int pz_rpc_chan_new(GMainContext *ctx, const pz_transport_provider *tp, void *tconn, size_t max_frame,
                    size_t out_high, const pz_rpc_chan_ops *ops, void *ud, pz_rpc_chan **out)
{
    *out = NULL;
    if (!tp || !tconn || !ops || !ops->frame || !tp->read || !tp->write || !tp->conn_fd || !tp->close) {
        if (tp && tp->close && tconn)
            tp->close(tconn);
        return PZ_EINVAL;
    }
    int fd = tp->conn_fd(tconn);
    pz_rpc_chan *c = g_try_new0(pz_rpc_chan, 1);
    if (!c) {
        tp->close(tconn);
        return PZ_ENOMEM;
    }
    c->refs = 1;
    c->tp = tp;
    c->tconn = tconn;
    c->ops = ops;
    c->ud = ud;
    c->out_high = out_high;
    c->out = g_byte_array_new();
    int rc = pz_frame_decoder_init(&c->dec, max_frame);
    if (rc || fd < 0) {
        pz_rpc_chan_close(c);
        pz_rpc_chan_unref(c);
        return rc ? rc : PZ_EINVAL;
    }
    c->src = (chan_source *)g_source_new(&chan_funcs, sizeof(chan_source));
    c->src->chan = c;
    g_source_set_name(&c->src->source, "prozsec rpc channel");
    c->cond = G_IO_IN | G_IO_ERR | G_IO_HUP;
    c->fd_tag = g_source_add_unix_fd(&c->src->source, fd, c->cond);
    g_source_attach(&c->src->source, ctx);
    /* Bytes may already wait inside the transport (read during the
     * handshake): look once without waiting for the descriptor. */
    g_source_set_ready_time(&c->src->source, 0);
    *out = c;
    return 0;
}

pz_rpc_chan *pz_rpc_chan_ref(pz_rpc_chan *c)
{
    g_atomic_int_inc(&c->refs);
    return c;
}

void pz_rpc_chan_unref(pz_rpc_chan *c)
{
    if (!c || !g_atomic_int_dec_and_test(&c->refs))
        return;
    pz_rpc_chan_close(c);
    pz_frame_decoder_clear(&c->dec);
    g_byte_array_unref(c->out);
    g_free(c);
}

void pz_rpc_chan_close(pz_rpc_chan *c)
{
    if (c->closed)
        return;
    c->closed = 1;
    if (c->src) {
        c->src->chan = NULL;
        g_source_destroy(&c->src->source);
        g_source_unref(&c->src->source);
        c->src = NULL;
    }
    c->tp->close(c->tconn);
    c->tconn = NULL;
}

int pz_rpc_chan_is_closed(const pz_rpc_chan *c)
{
    return c->closed;
}

GByteArray *pz_rpc_chan_out(pz_rpc_chan *c)
{
    return c->out;
}

size_t pz_rpc_chan_out_pending(const pz_rpc_chan *c)
{
    return c->out->len - c->out_off;
}

void pz_rpc_chan_kick(pz_rpc_chan *c)
{
    if (c->closed || c->in_dispatch)
        return; /* the dispatch flushes on its way out */
    update_events(c);
}

void pz_rpc_chan_pause(pz_rpc_chan *c, int paused)
{
    int was = c->paused;
    c->paused = paused != 0;
    if (c->closed)
        return;
    if (was && !c->paused)
        g_source_set_ready_time(&c->src->source, 0); /* frames may wait in the decoder */
    if (!c->in_dispatch)
        update_events(c);
}

const pz_transport_provider *pz_rpc_chan_transport(const pz_rpc_chan *c)
{
    return c->tp;
}

void *pz_rpc_chan_tconn(const pz_rpc_chan *c)
{
    return c->tconn;
}
