/* tests/integration/transport-echo.c — load a transport plugin through the
 * core loader and run an echo server or client over it, for the
 * integration tests (tests/integration/tls-*.sh) and by hand.
 *
 *   transport-echo --plugin tls --config tls.yaml --listen 127.0.0.1:0 \
 *       [--port-file F] [--max-conns N] [--lifetime S]
 *   transport-echo --plugin tls --config client.yaml --connect 127.0.0.1:PORT \
 *       [--expect NODE_ID] [--message TEXT] [--count N]
 *
 * The configuration file is the provider's own map (what would sit under
 * transports.<name> in prozsecd's file). The server prints "LISTENING
 * <port>" once ready (and writes the port to --port-file), then for every
 * connection "PEER <addr> certs=<n> cb=<hex>" after the handshake or
 * "REFUSED <addr> <code>: <message>" when it fails, and echoes every byte
 * back; SIGHUP re-reads --config into the provider's reload() and prints
 * "RELOADED" or "RELOAD-FAILED ...". Provider log lines go to stderr as
 * "LEVEL provider: text". The client prints its own "PEER" line (the
 * server's credentials) and "ECHO <text>" for each of its --count
 * connections, or "FAILED <code>: <message>".
 *
 * Exit status: 0 ok, 1 a connection failed (client), 2 usage/setup error.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include <glib.h>

#include <prozsec/transport.h>

#include "conf.h"
#include "coresvc.h"
#include "err.h"
#include "loader.h"

#define MAX_CONNS 64
#define BUF_LEN 16384

static char *opt_plugin = "tls";
static char *opt_config;
static char *opt_listen;
static char *opt_connect;
static char *opt_expect;
static char *opt_message = "hello";
static char *opt_port_file;
static int opt_max_conns = 0;
static int opt_count = 1;
static int opt_lifetime = 60;
static gboolean opt_quiet;

static volatile sig_atomic_t stop, reload_asked;

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        reload_asked = 1;
    else
        stop = 1;
}

/* Configuration documents read so far (a reload keeps the old ones until
 * exit: the provider may still point into them). */
static GPtrArray *docs;

/* SIGHUP: re-read --config and hand it to the provider's reload(). */
static void do_reload(const pz_transport_provider *t, void *state)
{
    pz_err err;
    pz_err_init(&err);
    pz_conf_doc *doc = NULL;
    int rc = PZ_ENOTSUP;
    if (t->reload && (rc = pz_conf_load_file(opt_config, &doc, &err)) == 0) {
        g_ptr_array_add(docs, doc);
        rc = t->reload(state, pz_conf_root(doc), &err);
    }
    if (rc == 0)
        printf("RELOADED\n");
    else
        printf("RELOAD-FAILED %s: %s\n", pz_strerror(rc), pz_err_msg(&err));
    fflush(stdout);
    pz_err_clear(&err);
}

static void log_hook(void *ud, const char *source, pz_log_level level, const char *msg)
{
    static const char *names[] = {"DEBUG", "INFO", "NOTICE", "WARNING", "ERROR"};
    (void)ud;
    if (opt_quiet && level < PZ_LOG_NOTICE)
        return;
    fprintf(stderr, "%s %s: %s\n", level <= PZ_LOG_ERROR ? names[level] : "?", source, msg);
    fflush(stderr);
}

typedef struct echo_conn {
    void *conn;
    pz_addr addr;
    int open;
    uint8_t buf[BUF_LEN];
    size_t have, sent;
} echo_conn;

static void addr_text(const pz_addr *a, char *out, size_t len)
{
    if (a->family == PZ_AF_INET)
        snprintf(out, len, "%u.%u.%u.%u:%u", a->bytes[0], a->bytes[1], a->bytes[2], a->bytes[3], a->port);
    else if (a->family == PZ_AF_UNIX)
        snprintf(out, len, "unix");
    else if (a->family == PZ_AF_NONE)
        snprintf(out, len, "server");
    else
        snprintf(out, len, "[v6]:%u", a->port);
}

static void print_peer(const pz_transport_provider *t, echo_conn *ec)
{
    pz_auth_credentials cred;
    char a[64];
    addr_text(&ec->addr, a, sizeof(a));
    if (t->peer_credentials(ec->conn, &cred) != 0) {
        printf("PEER %s (no credentials)\n", a);
        return;
    }
    printf("PEER %s transport=%s certs=%zu", a, cred.transport, cred.n_certs);
    if (cred.has_unix_cred)
        printf(" uid=%u gid=%u pid=%d", cred.uid, cred.gid, cred.pid);
    if (cred.channel_binding) {
        printf(" cb=");
        for (size_t i = 0; i < cred.channel_binding_len; i++)
            printf("%02x", cred.channel_binding[i]);
    }
    printf("\n");
    fflush(stdout);
}

/* Advance one server connection; returns 1 when it is finished. */
static int step(const pz_transport_provider *t, echo_conn *ec)
{
    pz_err err;
    pz_err_init(&err);
    int rc, done = 0;
    char a[64];
    addr_text(&ec->addr, a, sizeof(a));
    if (!ec->open) {
        rc = t->handshake(ec->conn, &err);
        if (rc == PZ_EAGAIN)
            goto out;
        if (rc != 0) {
            printf("REFUSED %s %s: %s\n", a, pz_strerror(rc), pz_err_msg(&err));
            fflush(stdout);
            done = 1;
            goto out;
        }
        ec->open = 1;
        print_peer(t, ec);
    }
    for (;;) {
        size_t n = 0;
        if (ec->sent < ec->have) {
            rc = t->write(ec->conn, ec->buf + ec->sent, ec->have - ec->sent, &n, &err);
            if (rc == PZ_EAGAIN)
                goto out;
            if (rc != 0) {
                done = 1;
                goto out;
            }
            ec->sent += n;
            continue;
        }
        ec->have = ec->sent = 0;
        rc = t->read(ec->conn, ec->buf, sizeof(ec->buf), &n, &err);
        if (rc == PZ_EAGAIN)
            goto out;
        if (rc != 0) {
            if (rc != PZ_EOF && !opt_quiet)
                fprintf(stderr, "transport-echo: %s: %s\n", a, pz_err_msg(&err));
            done = 1;
            goto out;
        }
        ec->have = n;
    }
out:
    pz_err_clear(&err);
    return done;
}

static int serve(const pz_transport_provider *t, void *state)
{
    pz_err err;
    pz_err_init(&err);
    void *listener = NULL;
    echo_conn *conns[MAX_CONNS] = {0};
    int handled = 0, rc = 0;
    if (t->listen(state, opt_listen, &listener, &err) != 0) {
        fprintf(stderr, "transport-echo: %s\n", pz_err_msg(&err));
        pz_err_clear(&err);
        return 2;
    }
    int lfd = t->listener_fd(listener);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    unsigned port = 0;
    if (getsockname(lfd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET)
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6)
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    printf("LISTENING %u\n", port);
    fflush(stdout);
    if (opt_port_file) {
        g_autofree char *text = g_strdup_printf("%u\n", port);
        g_file_set_contents(opt_port_file, text, -1, NULL);
    }
    gint64 end = g_get_monotonic_time() + (gint64)opt_lifetime * G_USEC_PER_SEC;
    while (!stop && g_get_monotonic_time() < end) {
        if (reload_asked) {
            reload_asked = 0;
            do_reload(t, state);
        }
        struct pollfd pfd[MAX_CONNS + 1];
        int map[MAX_CONNS + 1];
        int n = 0;
        pfd[n].fd = lfd;
        pfd[n].events = POLLIN;
        map[n++] = -1;
        for (int i = 0; i < MAX_CONNS; i++) {
            if (!conns[i])
                continue;
            int ev = t->conn_events(conns[i]->conn);
            pfd[n].fd = t->conn_fd(conns[i]->conn);
            pfd[n].events = (short)((ev & PZ_IO_READ ? POLLIN : 0) | (ev & PZ_IO_WRITE ? POLLOUT : 0));
            map[n++] = i;
        }
        int r = poll(pfd, (nfds_t)n, 100);
        if (r < 0 && errno != EINTR)
            break;
        if (pfd[0].revents & POLLIN) {
            for (;;) {
                void *conn = NULL;
                pz_addr remote;
                int slot = -1;
                for (int i = 0; i < MAX_CONNS; i++)
                    if (!conns[i]) {
                        slot = i;
                        break;
                    }
                if (slot < 0)
                    break;
                rc = t->accept(listener, &conn, &remote, &err);
                if (rc == PZ_EAGAIN)
                    break;
                if (rc != 0) {
                    printf("REFUSED - %s: %s\n", pz_strerror(rc), pz_err_msg(&err));
                    fflush(stdout);
                    handled++;
                    continue;
                }
                echo_conn *ec = g_new0(echo_conn, 1);
                ec->conn = conn;
                ec->addr = remote;
                conns[slot] = ec;
            }
        }
        /* Every connection steps on each round: the handshake deadline is
         * checked inside handshake() even when nothing arrived. */
        for (int i = 0; i < MAX_CONNS; i++) {
            if (!conns[i])
                continue;
            if (step(t, conns[i])) {
                t->close(conns[i]->conn);
                g_free(conns[i]);
                conns[i] = NULL;
                handled++;
            }
        }
        (void)map;
        if (opt_max_conns > 0 && handled >= opt_max_conns)
            break;
    }
    for (int i = 0; i < MAX_CONNS; i++) {
        if (conns[i]) {
            t->close(conns[i]->conn);
            g_free(conns[i]);
        }
    }
    t->listener_close(listener);
    pz_err_clear(&err);
    return 0;
}

/* Wait for what CONN asked, at most until DEADLINE (monotonic µs). */
static int wait_conn(const pz_transport_provider *t, void *conn, gint64 deadline)
{
    int ev = t->conn_events(conn);
    struct pollfd p = {.fd = t->conn_fd(conn),
                       .events = (short)((ev & PZ_IO_READ ? POLLIN : 0) | (ev & PZ_IO_WRITE ? POLLOUT : 0))};
    gint64 left = (deadline - g_get_monotonic_time()) / 1000;
    if (left <= 0)
        return -1;
    poll(&p, 1, (int)(left > 100 ? 100 : left));
    return 0;
}

static int client_once(const pz_transport_provider *t, void *state)
{
    pz_err err;
    pz_err_init(&err);
    void *conn = NULL;
    int rc, status = 1;
    gint64 deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
    size_t len = strlen(opt_message), off = 0, got = 0;
    char *back = g_malloc0(len + 1);
    rc = t->connect(state, opt_connect, opt_expect, &conn, &err);
    if (rc != 0)
        goto out;
    while ((rc = t->handshake(conn, &err)) == PZ_EAGAIN)
        if (wait_conn(t, conn, deadline) != 0)
            goto out;
    if (rc != 0)
        goto out;
    {
        echo_conn ec = {.conn = conn};
        print_peer(t, &ec);
    }
    while (off < len) {
        size_t n = 0;
        rc = t->write(conn, opt_message + off, len - off, &n, &err);
        if (rc == PZ_EAGAIN) {
            if (wait_conn(t, conn, deadline) != 0)
                goto out;
            continue;
        }
        if (rc != 0)
            goto out;
        off += n;
    }
    while (got < len) {
        size_t n = 0;
        rc = t->read(conn, back + got, len - got, &n, &err);
        if (rc == PZ_EAGAIN) {
            if (wait_conn(t, conn, deadline) != 0)
                goto out;
            continue;
        }
        if (rc != 0)
            goto out;
        got += n;
    }
    printf("ECHO %s\n", back);
    fflush(stdout);
    status = 0;
out:
    if (status != 0)
        printf("FAILED %s: %s\n", pz_strerror(rc), pz_err_msg(&err));
    if (conn) {
        /* Give a TLS 1.3 server's session ticket a moment to arrive. */
        for (int i = 0; i < 5 && status == 0; i++) {
            char c;
            size_t n = 0;
            if (t->read(conn, &c, 1, &n, &err) != PZ_EAGAIN)
                break;
            wait_conn(t, conn, g_get_monotonic_time() + 20000);
        }
        t->close(conn);
    }
    g_free(back);
    pz_err_clear(&err);
    return status;
}

int main(int argc, char **argv)
{
    GOptionEntry entries[] = {
        {"plugin", 0, 0, G_OPTION_ARG_STRING, &opt_plugin, "transport provider name (tls)", "NAME"},
        {"config", 0, 0, G_OPTION_ARG_FILENAME, &opt_config, "the provider's YAML map", "FILE"},
        {"listen", 0, 0, G_OPTION_ARG_STRING, &opt_listen, "serve echo on ADDRESS", "ADDRESS"},
        {"port-file", 0, 0, G_OPTION_ARG_FILENAME, &opt_port_file, "write the bound port here", "FILE"},
        {"max-conns", 0, 0, G_OPTION_ARG_INT, &opt_max_conns, "exit after N connections", "N"},
        {"lifetime", 0, 0, G_OPTION_ARG_INT, &opt_lifetime, "exit after S seconds (60)", "S"},
        {"connect", 0, 0, G_OPTION_ARG_STRING, &opt_connect, "dial ADDRESS", "ADDRESS"},
        {"expect", 0, 0, G_OPTION_ARG_STRING, &opt_expect, "node id the server must have", "ID"},
        {"message", 0, 0, G_OPTION_ARG_STRING, &opt_message, "text to echo", "TEXT"},
        {"count", 0, 0, G_OPTION_ARG_INT, &opt_count, "client connections, one after another", "N"},
        {"quiet", 'q', 0, G_OPTION_ARG_NONE, &opt_quiet, "log NOTICE and above only", NULL},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    GOptionContext *ctx = g_option_context_new("- echo over a transport plugin");
    g_option_context_add_main_entries(ctx, entries, NULL);
    GError *gerr = NULL;
    if (!g_option_context_parse(ctx, &argc, &argv, &gerr) || (!opt_listen == !opt_connect)) {
        fprintf(stderr, "transport-echo: %s\n", gerr ? gerr->message : "give exactly one of --listen, --connect");
        g_clear_error(&gerr);
        g_option_context_free(ctx);
        return 2;
    }
    g_option_context_free(ctx);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGHUP, on_signal);
    docs = g_ptr_array_new_with_free_func((GDestroyNotify)pz_conf_doc_free);
    signal(SIGPIPE, SIG_IGN);

    pz_core_hooks hooks = {.log = log_hook};
    pz_core_set_hooks(&hooks);

    int status = 2;
    pz_err err;
    pz_err_init(&err);
    pz_loader *loader = NULL;
    pz_conf_doc *doc = NULL;
    pz_provider *prov = NULL;
    const pz_plugin *plugin = NULL;
    if (pz_loader_new(NULL, 0, &loader, &err) != 0 ||
        pz_loader_load(loader, opt_plugin, PZ_KIND_TRANSPORT, &plugin, &err) != 0)
        goto out;
    if (opt_config && pz_conf_load_file(opt_config, &doc, &err) != 0)
        goto out;
    if (doc)
        g_ptr_array_add(docs, doc);
    if (pz_provider_new(plugin, NULL, doc ? pz_conf_root(doc) : NULL, &prov, &err) != 0)
        goto out;
    const pz_transport_provider *t = pz_provider_table(prov);
    void *state = pz_provider_state(prov);
    if (opt_listen) {
        status = serve(t, state);
    } else {
        status = 0;
        for (int i = 0; i < opt_count; i++)
            if (client_once(t, state) != 0)
                status = 1;
    }
out:
    if (status == 2 && pz_err_msg(&err)[0])
        fprintf(stderr, "transport-echo: %s\n", pz_err_msg(&err));
    pz_provider_free(prov);
    g_ptr_array_free(docs, TRUE);
    pz_loader_free(loader);
    pz_err_clear(&err);
    return status;
}
