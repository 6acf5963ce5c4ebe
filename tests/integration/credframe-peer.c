/* tests/integration/credframe-peer.c — a peer that connects to a prozsecd
 * like the node does (the first non-unix transport of a configuration
 * file, its auth chain making the tokens), but sends a credentials frame of
 * the test's choosing, for tests/integration/auth-providers.sh:
 *
 *   credframe-peer --config FILE --peer HOST:PORT --node-id ID \
 *       [--save FILE]     the frame the auth chain made, also written to FILE
 *       [--replay FILE]   send FILE's bytes instead (a frame from another connection)
 *       [--raw HEX]       send these bytes instead (a malformed frame)
 *       [--wait MS]       how long to wait for the server to close (default 3000)
 *
 * After sending it waits: "CLOSED" (exit 1) when the server ends the
 * connection (it refused us), "OPEN" (exit 0) when the connection is still
 * up after --wait (the server accepted us and waits for calls). The test
 * pairs this with the daemon's log line, so the wait only bounds it. Exit 2
 * on a usage or setup error, 3 when the handshake fails.
 */
#include "config.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include <prozsec/transport.h>

#include "authchain.h"
#include "conf.h"
#include "coresvc.h"
#include "credframe.h"
#include "crypto.h"
#include "err.h"
#include "loader.h"
#include "settings.h"

static char *opt_config, *opt_peer, *opt_node_id, *opt_save, *opt_replay, *opt_raw;
static int opt_wait = 3000;

static const GOptionEntry entries[] = {
    {"config", 'c', 0, G_OPTION_ARG_FILENAME, &opt_config, "Configuration of the node to act as", "FILE"},
    {"peer", 'p', 0, G_OPTION_ARG_STRING, &opt_peer, "Address to dial", "HOST:PORT"},
    {"node-id", 'n', 0, G_OPTION_ARG_STRING, &opt_node_id, "Node id expected there", "ID"},
    {"save", 0, 0, G_OPTION_ARG_FILENAME, &opt_save, "Write the frame sent to FILE", "FILE"},
    {"replay", 0, 0, G_OPTION_ARG_FILENAME, &opt_replay, "Send FILE's bytes as the frame", "FILE"},
    {"raw", 0, 0, G_OPTION_ARG_STRING, &opt_raw, "Send these bytes (hex) as the frame", "HEX"},
    {"wait", 0, 0, G_OPTION_ARG_INT, &opt_wait, "Milliseconds to wait for the server to close", "MS"},
    {NULL, 0, 0, 0, NULL, NULL, NULL},
};

static void wait_fd(int fd, int events, int ms)
{
    struct pollfd p = {.fd = fd, .events = (short)events};
    poll(&p, 1, ms);
}

static int write_all(const pz_transport_provider *t, void *conn, const uint8_t *buf, size_t len, pz_err *err)
{
    size_t done = 0;
    for (int i = 0; done < len && i < 1000; i++) {
        size_t n = 0;
        int rc = t->write(conn, buf + done, len - done, &n, err);
        if (rc == PZ_EAGAIN) {
            wait_fd(t->conn_fd(conn), t->conn_events(conn) & PZ_IO_READ ? POLLIN : POLLOUT, 10);
            continue;
        }
        if (rc)
            return rc;
        done += n;
    }
    return done == len ? 0 : PZ_ETIMEDOUT;
}

int main(int argc, char **argv)
{
    int code = 2;
    pz_err err;
    pz_conf_doc *doc = NULL;
    pz_settings *s = NULL;
    pz_loader *loader = NULL;
    pz_provider *prov = NULL;
    pz_authchain *chain = NULL;
    void *conn = NULL;
    const pz_transport_provider *t = NULL;
    uint8_t frame[PZ_CREDFRAME_HDR + PZ_CREDFRAME_MAX];
    size_t flen = 0;
    GError *ge = NULL;

    pz_err_init(&err);
    GOptionContext *ctx = g_option_context_new("- send a chosen credentials frame to a prozsecd");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &ge) || !opt_config || !opt_peer || !opt_node_id) {
        fprintf(stderr, "credframe-peer: %s\n", ge ? ge->message : "--config, --peer and --node-id are required");
        goto out;
    }
    if (pz_crypto_init() != 0 || pz_conf_load_file(opt_config, &doc, &err) ||
        pz_settings_load(pz_conf_root(doc), &s, &err) ||
        pz_loader_new((const char *const *)s->plugin_path, s->n_plugin_path, &loader, &err) ||
        pz_authchain_new_from_conf(loader, s->auth, &chain, &err)) {
        fprintf(stderr, "credframe-peer: %s\n", pz_err_msg(&err));
        goto out;
    }
    const pz_settings_provider *e = NULL;
    for (size_t i = 0; i < s->n_transports && !e; i++)
        if (strcmp(s->transports[i].provider, "unix"))
            e = &s->transports[i];
    const pz_plugin *plugin = NULL;
    if (!e || pz_loader_load(loader, e->provider, PZ_KIND_TRANSPORT, &plugin, &err) ||
        pz_provider_new(plugin, e->name, e->config, &prov, &err)) {
        fprintf(stderr, "credframe-peer: transport: %s\n", e ? pz_err_msg(&err) : "none but unix");
        goto out;
    }
    t = pz_provider_table(prov);
    if (t->connect(pz_provider_state(prov), opt_peer, opt_node_id, &conn, &err)) {
        fprintf(stderr, "credframe-peer: connect: %s\n", pz_err_msg(&err));
        goto out;
    }
    int rc = PZ_EAGAIN;
    for (int i = 0; i < 2000 && rc == PZ_EAGAIN; i++) {
        rc = t->handshake(conn, &err);
        if (rc == PZ_EAGAIN)
            wait_fd(t->conn_fd(conn), t->conn_events(conn) & PZ_IO_WRITE ? POLLOUT : POLLIN, 10);
    }
    if (rc) {
        printf("HANDSHAKE-FAILED %s\n", pz_err_msg(&err));
        code = 3;
        goto out;
    }
    if (opt_raw) {
        size_t n = strlen(opt_raw);
        for (size_t i = 0; i + 1 < n && flen < sizeof(frame); i += 2) {
            char hx[3] = {opt_raw[i], opt_raw[i + 1], 0};
            frame[flen++] = (uint8_t)strtoul(hx, NULL, 16);
        }
    } else if (opt_replay) {
        gchar *data = NULL;
        gsize dl = 0;
        if (!g_file_get_contents(opt_replay, &data, &dl, &ge) || dl > sizeof(frame)) {
            fprintf(stderr, "credframe-peer: %s\n", ge ? ge->message : "frame file too large");
            g_free(data);
            goto out;
        }
        memcpy(frame, data, dl);
        flen = dl;
        g_free(data);
    } else {
        pz_auth_credentials cred;
        memset(&cred, 0, sizeof(cred));
        cred.struct_size = sizeof(cred);
        size_t ntok = 0;
        if (t->peer_credentials(conn, &cred) ||
            pz_authchain_credentials_frame(chain, cred.channel_binding, cred.channel_binding_len, frame,
                                           sizeof(frame), &flen, &ntok)) {
            fprintf(stderr, "credframe-peer: cannot build the credentials frame\n");
            goto out;
        }
        printf("FRAME %zu bytes, %zu token%s\n", flen, ntok, ntok == 1 ? "" : "s");
        if (opt_save && !g_file_set_contents(opt_save, (const char *)frame, (gssize)flen, &ge)) {
            fprintf(stderr, "credframe-peer: %s\n", ge->message);
            goto out;
        }
    }
    if (flen && write_all(t, conn, frame, flen, &err)) {
        printf("CLOSED (write: %s)\n", pz_err_msg(&err));
        code = 1;
        goto out;
    }
    /* Wait for the server's verdict: it closes on a refusal. */
    gint64 end = g_get_monotonic_time() + (gint64)opt_wait * 1000;
    code = 0;
    while (g_get_monotonic_time() < end) {
        uint8_t b[256];
        size_t n = 0;
        rc = t->read(conn, b, sizeof(b), &n, &err);
        if (rc == PZ_EAGAIN) {
            wait_fd(t->conn_fd(conn), POLLIN, 50);
            continue;
        }
        if (rc) {
            printf("CLOSED (%s)\n", rc == PZ_EOF ? "end of stream" : pz_err_msg(&err));
            code = 1;
            break;
        }
        /* TLS 1.3 tickets and the like arrive as no application data;
         * any application byte before a call is unexpected, but not a
         * refusal. */
    }
    if (code == 0)
        printf("OPEN\n");
out:
    fflush(stdout);
    if (conn)
        t->close(conn);
    pz_authchain_free(chain);
    pz_provider_free(prov);
    pz_settings_free(s);
    pz_loader_free(loader);
    pz_conf_doc_free(doc);
    pz_err_clear(&err);
    g_clear_error(&ge);
    g_option_context_free(ctx);
    return code;
}
