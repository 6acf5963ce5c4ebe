/* core/logging.c — see logging.h. */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>

#include "logging.h"
#include "node_priv.h"

static const char *prog_name = "prozsec";
static pz_log_level threshold = PZ_LOG_NOTICE;
static int overridden;
static GMutex lock;

/* Flood summary: a line whose first 48 bytes match the previous line's
 * is counted; beyond BURST repeats within WINDOW seconds they are dropped
 * and one summary line is printed when the run ends. */
#define FLOOD_KEY 48
#define FLOOD_BURST 10
#define FLOOD_WINDOW_US (10 * G_USEC_PER_SEC)
static char last_key[FLOOD_KEY + 1];
static unsigned repeats;
static unsigned suppressed;
static gint64 run_start;

int pz_logging_parse_level(const char *text)
{
    static const char *const names[] = {"debug", "info", "notice", "warning", "error"};
    for (int i = 0; text && i < 5; i++)
        if (strcmp(text, names[i]) == 0)
            return i;
    return -1;
}

static pz_log_level from_glib(GLogLevelFlags f)
{
    if (f & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
        return PZ_LOG_ERROR;
    if (f & G_LOG_LEVEL_WARNING)
        return PZ_LOG_WARNING;
    if (f & G_LOG_LEVEL_MESSAGE)
        return PZ_LOG_NOTICE;
    if (f & G_LOG_LEVEL_INFO)
        return PZ_LOG_INFO;
    return PZ_LOG_DEBUG;
}

static const char *level_word(pz_log_level l)
{
    static const char *const w[] = {"debug", "info", "notice", "warning", "error"};
    return (unsigned)l < 5 ? w[l] : "?";
}

static GLogWriterOutput writer(GLogLevelFlags flags, const GLogField *fields, gsize n, gpointer ud)
{
    (void)ud;
    pz_log_level lvl = from_glib(flags);
    if (lvl < threshold)
        return G_LOG_WRITER_HANDLED;
    if (g_log_writer_is_journald(fileno(stderr)))
        return g_log_writer_journald(flags, fields, n, NULL);
    const char *msg = "";
    for (gsize i = 0; i < n; i++)
        if (strcmp(fields[i].key, "MESSAGE") == 0 && fields[i].length < 0)
            msg = fields[i].value;

    g_mutex_lock(&lock);
    gint64 now = g_get_monotonic_time();
    if (strncmp(msg, last_key, FLOOD_KEY) == 0 && now - run_start < FLOOD_WINDOW_US) {
        if (++repeats > FLOOD_BURST) {
            suppressed++;
            g_mutex_unlock(&lock);
            return G_LOG_WRITER_HANDLED;
        }
    } else {
        if (suppressed)
            fprintf(stderr, "%s[%d]: %s: ... %u similar lines suppressed\n", prog_name, (int)getpid(),
                    level_word(lvl), suppressed);
        g_strlcpy(last_key, msg, sizeof(last_key));
        repeats = 0;
        suppressed = 0;
        run_start = now;
    }
    char ts[32];
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(ts, sizeof(ts), "%H:%M:%S", &tm);
    fprintf(stderr, "%s %s[%d]: %s: %s\n", ts, prog_name, (int)getpid(), level_word(lvl), msg);
    g_mutex_unlock(&lock);
    return G_LOG_WRITER_HANDLED;
}

void pz_logging_setup(const char *prog, const char *level_override)
{
    prog_name = prog;
    int l = pz_logging_parse_level(level_override);
    if (l >= 0) {
        threshold = (pz_log_level)l;
        overridden = 1;
    }
    g_log_set_writer_func(writer, NULL, NULL);
}

void pz_logging_set_level(pz_log_level level)
{
    threshold = level;
}

void pz_logging_set_level_from_node(struct pz_node *node)
{
    if (!overridden && node && node->gen && node->gen->settings)
        threshold = node->gen->settings->log_level;
}
