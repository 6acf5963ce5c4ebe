/* core/rpc_chan.h — a framed channel: length-prefixed frames (rpc_frame.h)
 * in and out over one connection of a transport provider, driven by a
 * GSource on a GMainContext.
 *
 * Inbound frames are handed to the owner's callback in order. Outbound
 * bytes are appended by the owner to the channel's output buffer and
 * written when the descriptor is writable (at the end of the current
 * dispatch when the owner answers from inside a callback). Reading pauses
 * while the owner asks (pz_rpc_chan_pause) or while more than OUT_HIGH
 * bytes wait to be written, so a peer that does not read its responses
 * cannot grow the buffer without bound.
 *
 * Thread safety: used from the thread running its GMainContext only.
 */
#ifndef PZ_CORE_RPC_CHAN_H
#define PZ_CORE_RPC_CHAN_H

#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include <prozsec/transport.h>

typedef struct pz_rpc_chan pz_rpc_chan;

typedef struct pz_rpc_chan_ops {
    /* One complete frame payload (borrowed: valid during the call). The
     * owner may close the channel or pause it from here. */
    void (*frame)(void *ud, pz_rpc_chan *chan, const uint8_t *frame, size_t len);
    /* The channel failed or the peer closed: CODE is PZ_EOF (closed between
     * frames), PZ_EPROTO (bad frame length, or closed inside a frame: "connection
     * closed inside a frame"), PZ_EIO or the transport's code; WHY a short text. The
     * transport is already closed; the owner drops its reference. Not called
     * after pz_rpc_chan_close. */
    void (*closed)(void *ud, pz_rpc_chan *chan, int code, const char *why);
} pz_rpc_chan_ops;

/* Create a channel over TCONN of TP (taken: closed with TP->close when the
 * channel closes, also when this fails). MAX_FRAME bounds inbound frames,
 * OUT_HIGH the output backlog before reading pauses. One reference is
 * returned. 0, PZ_ERANGE, PZ_EINVAL or PZ_ENOMEM. */
int pz_rpc_chan_new(GMainContext *ctx, const pz_transport_provider *tp, void *tconn, size_t max_frame,
                    size_t out_high, const pz_rpc_chan_ops *ops, void *ud, pz_rpc_chan **out);

pz_rpc_chan *pz_rpc_chan_ref(pz_rpc_chan *chan);
void pz_rpc_chan_unref(pz_rpc_chan *chan);

/* Close the transport now (pending output is dropped) without calling
 * ops->closed. Idempotent. */
void pz_rpc_chan_close(pz_rpc_chan *chan);
int pz_rpc_chan_is_closed(const pz_rpc_chan *chan);

/* The output buffer: append whole frames, then call pz_rpc_chan_kick. */
GByteArray *pz_rpc_chan_out(pz_rpc_chan *chan);
void pz_rpc_chan_kick(pz_rpc_chan *chan);
/* Bytes not yet written. */
size_t pz_rpc_chan_out_pending(const pz_rpc_chan *chan);

/* Pause (non-zero) or resume reading inbound frames. */
void pz_rpc_chan_pause(pz_rpc_chan *chan, int paused);

/* The transport and its connection (borrowed). */
const pz_transport_provider *pz_rpc_chan_transport(const pz_rpc_chan *chan);
void *pz_rpc_chan_tconn(const pz_rpc_chan *chan);

#endif /* PZ_CORE_RPC_CHAN_H */
