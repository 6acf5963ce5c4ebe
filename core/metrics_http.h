/* core/metrics_http.h — the Prometheus text endpoint (`metrics.listen`):
 * GET /metrics on a loopback address, served by libmicrohttpd's own thread
 * from a snapshot the node's thread refreshes every second (the node's
 * counters are read only in its thread). Optional at configure time. */
#ifndef PZ_CORE_METRICS_HTTP_H
#define PZ_CORE_METRICS_HTTP_H

#include <glib.h>

#include "err.h"

typedef struct pz_metrics_http pz_metrics_http;

/* 1 when built with libmicrohttpd. */
int pz_metrics_http_available(void);

/* Serve on LISTEN ("127.0.0.1:9400", "[::1]:9400"; loopback only).
 * SNAPSHOT is called in CTX's thread every second and returns a new
 * string (g_free). */
int pz_metrics_http_start(const char *listen, GMainContext *ctx, char *(*snapshot)(void *ud), void *ud,
                          pz_metrics_http **out, pz_err *err);
void pz_metrics_http_stop(pz_metrics_http *m);

#endif
