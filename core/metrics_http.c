/* core/metrics_http.c — see metrics_http.h. */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "metrics_http.h"

#ifdef HAVE_MICROHTTPD
#include <microhttpd.h>
#endif

struct pz_metrics_http {
    GMutex lock;
    char *text; /* guarded by lock */
    GSource *timer;
    char *(*snapshot)(void *ud);
    void *ud;
#ifdef HAVE_MICROHTTPD
    struct MHD_Daemon *mhd;
#endif
};

int pz_metrics_http_available(void)
{
#ifdef HAVE_MICROHTTPD
    return 1;
#else
    return 0;
#endif
}

#ifdef HAVE_MICROHTTPD
static gboolean refresh(gpointer ud)
{
    pz_metrics_http *m = ud;
    char *t = m->snapshot(m->ud);
    g_mutex_lock(&m->lock);
    g_free(m->text);
    m->text = t;
    g_mutex_unlock(&m->lock);
    return G_SOURCE_CONTINUE;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    pz_metrics_http *m = cls;
    (void)version;
    (void)upload;
    (void)con_cls;
    if (*upload_size)
        return MHD_NO;
    struct MHD_Response *r;
    unsigned code = MHD_HTTP_OK;
    if (strcmp(method, "GET") != 0) {
        r = MHD_create_response_from_buffer(strlen("method not allowed\n"), (void *)"method not allowed\n",
                                            MHD_RESPMEM_PERSISTENT);
        code = MHD_HTTP_METHOD_NOT_ALLOWED;
    } else if (strcmp(url, "/metrics") != 0) {
        r = MHD_create_response_from_buffer(strlen("not found: try /metrics\n"), (void *)"not found: try /metrics\n",
                                            MHD_RESPMEM_PERSISTENT);
        code = MHD_HTTP_NOT_FOUND;
    } else {
        g_mutex_lock(&m->lock);
        char *copy = g_strdup(m->text ? m->text : "");
        g_mutex_unlock(&m->lock);
        r = MHD_create_response_from_buffer(strlen(copy), copy, MHD_RESPMEM_MUST_FREE);
        MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4");
    }
    enum MHD_Result ret = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return ret;
}
#endif

/* Parse a loopback HOST:PORT into SS. */
static int parse_loopback(const char *listen, struct sockaddr_storage *ss, pz_err *err)
{
    memset(ss, 0, sizeof(*ss));
    const char *colon = strrchr(listen, ':');
    if (!colon || !colon[1])
        return pz_err_set(err, PZ_ECONFIG, "metrics.listen: expected HOST:PORT, found \"%s\"", listen);
    char *end = NULL;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (*end || port == 0 || port > 65535)
        return pz_err_set(err, PZ_ECONFIG, "metrics.listen: bad port in \"%s\"", listen);
    g_autofree char *host = g_strndup(listen, (gsize)(colon - listen));
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        host[strlen(host) - 1] = '\0';
        memmove(host, host + 1, strlen(host));
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    if (strcmp(host, "localhost") == 0 || inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        if (strcmp(host, "localhost") == 0)
            inet_pton(AF_INET, "127.0.0.1", &s4->sin_addr);
        if ((ntohl(s4->sin_addr.s_addr) >> 24) != 127)
            return pz_err_set(err, PZ_ECONFIG, "metrics.listen: %s is not a loopback address", host);
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
        if (!IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr))
            return pz_err_set(err, PZ_ECONFIG, "metrics.listen: %s is not a loopback address", host);
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        return 0;
    }
    return pz_err_set(err, PZ_ECONFIG, "metrics.listen: expected a loopback IP address, found \"%s\"", host);
}

int pz_metrics_http_start(const char *listen, GMainContext *ctx, char *(*snapshot)(void *ud), void *ud,
                          pz_metrics_http **out, pz_err *err)
{
    *out = NULL;
    struct sockaddr_storage ss;
    int rc = parse_loopback(listen, &ss, err);
    if (rc < 0)
        return rc;
#ifdef HAVE_MICROHTTPD
    pz_metrics_http *m = g_new0(pz_metrics_http, 1);
    g_mutex_init(&m->lock);
    m->snapshot = snapshot;
    m->ud = ud;
    m->text = snapshot(ud);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    m->mhd = MHD_start_daemon(flags, 0, NULL, NULL, answer, m, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned)16, MHD_OPTION_CONNECTION_TIMEOUT,
                              (unsigned)10, MHD_OPTION_END);
    if (!m->mhd) {
        g_free(m->text);
        g_mutex_clear(&m->lock);
        g_free(m);
        return pz_err_set(err, PZ_EIO, "metrics.listen: cannot listen on %s (address in use?)", listen);
    }
    m->timer = g_timeout_source_new_seconds(1);
    g_source_set_callback(m->timer, refresh, m, NULL);
    g_source_attach(m->timer, ctx);
    *out = m;
    return 0;
#else
    (void)ctx;
    (void)snapshot;
    (void)ud;
    return pz_err_set(err, PZ_ENOTSUP,
                      "metrics.listen: this build has no HTTP server (install libmicrohttpd-dev and reconfigure)");
#endif
}

void pz_metrics_http_stop(pz_metrics_http *m)
{
    if (!m)
        return;
#ifdef HAVE_MICROHTTPD
    MHD_stop_daemon(m->mhd);
    g_source_destroy(m->timer);
    g_source_unref(m->timer);
#endif
    g_free(m->text);
    g_mutex_clear(&m->lock);
    g_free(m);
}
