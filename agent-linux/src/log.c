/* log: stderr writer with a frozen-window hold buffer. */
#define _GNU_SOURCE
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct {
    GMutex lock;
    gboolean verbose;
    gboolean frozen;
    GQueue held;     /* of char* lines, already formatted */
    gsize held_bytes;
    guint dropped;
} logstate;

static const char *level_name(GLogLevelFlags level)
{
    if (level & G_LOG_LEVEL_ERROR)
        return "error";
    if (level & G_LOG_LEVEL_CRITICAL)
        return "critical";
    if (level & G_LOG_LEVEL_WARNING)
        return "warning";
    if (level & G_LOG_LEVEL_MESSAGE)
        return "notice";
    if (level & G_LOG_LEVEL_INFO)
        return "info";
    return "debug";
}

static char *format_line(GLogLevelFlags level, const char *message)
{
    struct timespec ts;
    struct tm tm;

    /* UTC from the clock only: localtime could read /etc/localtime. */
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    return g_strdup_printf("%02d:%02d:%02d.%03ld stillpoint-agent %s: %s\n", tm.tm_hour, tm.tm_min,
                           tm.tm_sec, ts.tv_nsec / 1000000, level_name(level), message);
}

static void write_all(const char *s)
{
    size_t len = strlen(s);
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, s, len);
        if (n <= 0)
            return;
        s += n;
        len -= (size_t)n;
    }
}

static void hold(char *line)
{
    gsize len = strlen(line);
    if (logstate.held.length >= SP_LOG_HELD_MAX_LINES ||
        logstate.held_bytes + len > SP_LOG_HELD_MAX_BYTES) {
        logstate.dropped++;
        g_free(line);
        return;
    }
    g_queue_push_tail(&logstate.held, line);
    logstate.held_bytes += len;
}

static GLogWriterOutput log_writer_cb(GLogLevelFlags level, const GLogField *fields, gsize n_fields,
                                      gpointer user_data)
{
    const char *message = "";
    char *line;

    if ((level & G_LOG_LEVEL_DEBUG) && !logstate.verbose)
        return G_LOG_WRITER_HANDLED;
    for (gsize i = 0; i < n_fields; i++) {
        if (strcmp(fields[i].key, "MESSAGE") == 0 && fields[i].length < 0)
            message = fields[i].value;
    }
    line = format_line(level, message);
    g_mutex_lock(&logstate.lock);
    if (logstate.frozen) {
        hold(line);
    } else {
        write_all(line);
        g_free(line);
    }
    g_mutex_unlock(&logstate.lock);
    return G_LOG_WRITER_HANDLED;
}

void sp_log_init(gboolean verbose)
{
    logstate.verbose = verbose || g_getenv("SP_AGENT_DEBUG") != NULL;
    g_queue_init(&logstate.held);
    g_log_set_writer_func(log_writer_cb, NULL, NULL);
}

void sp_log_set_frozen(gboolean frozen)
{
    char *line;

    g_mutex_lock(&logstate.lock);
    logstate.frozen = frozen;
    if (!frozen) {
        while ((line = g_queue_pop_head(&logstate.held)) != NULL) {
            write_all(line);
            g_free(line);
        }
        if (logstate.dropped > 0) {
            g_autofree char *note = g_strdup_printf("stillpoint-agent: %u log lines dropped while "
                                                    "frozen (buffer full)\n", logstate.dropped);
            write_all(note);
        }
        logstate.held_bytes = 0;
        logstate.dropped = 0;
    }
    g_mutex_unlock(&logstate.lock);
}

guint sp_log_held_count(void)
{
    guint n;
    g_mutex_lock(&logstate.lock);
    n = logstate.held.length;
    g_mutex_unlock(&logstate.lock);
    return n;
}
