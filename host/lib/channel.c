/* A JSON message stream over a unix socket: the protocol library's framer and parser on a
 * non-blocking fd, with poll() deadlines. Blocking I/O keeps the coordinator's sequencing linear;
 * every wait has a deadline so a silent peer cannot hang it. */
#include "stillpoint/channel.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "stillpoint/framer.h"

struct SpChannel {
    int fd;
    char *path;
    char *what;
    SpFramer *framer;
    GQueue queue; /* of SpJson* */
    guint resyncs;
    guint dropped;
    gboolean too_large; /* a message over SP_CHANNEL_MAX_FRAME arrived: never a valid reply */
    guint invalid;      /* messages that were not JSON since the last resync */
};

static int remaining_ms(gint64 deadline)
{
    gint64 left = deadline - g_get_monotonic_time();
    if (left <= 0)
        return 0;
    return (int)MIN((left + 999) / 1000, G_MAXINT);
}

/* Sets error from errno for the system call call on ch; FALSE. */
static gboolean channel_errno(const SpChannel *ch, const char *call, GError **error)
{
    int errsv = errno;
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errsv), "%s %s: %s: %s", ch->what,
                ch->path, call, g_strerror(errsv));
    return FALSE;
}

static gboolean channel_poll(SpChannel *ch, short events, gint64 deadline, const char *doing,
                             GError **error)
{
    for (;;) {
        struct pollfd pfd = {.fd = ch->fd, .events = events};
        int ms = remaining_ms(deadline);
        int n = poll(&pfd, 1, ms);
        if (n > 0)
            return TRUE;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return channel_errno(ch, "poll", error);
        if (ms == 0) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "%s %s: timed out %s",
                        ch->what, ch->path, doing);
            return FALSE;
        }
    }
}

SpChannel *sp_channel_connect_unix(const char *path, const char *what, gint64 deadline,
                                   GError **error)
{
    g_autoptr(SpChannel) ch = g_new0(SpChannel, 1);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int rc;

    ch->fd = -1;
    ch->path = g_strdup(path);
    ch->what = g_strdup(what);
    g_queue_init(&ch->queue);
    ch->framer = sp_framer_new(SP_CHANNEL_MAX_FRAME);
    if (ch->framer == NULL) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s %s: out of memory", what, path);
        return NULL;
    }
    if (strlen(path) >= sizeof(addr.sun_path)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FILENAME_TOO_LONG,
                    "%s %s: path longer than %zu bytes", what, path, sizeof(addr.sun_path) - 1);
        return NULL;
    }
    strcpy(addr.sun_path, path);
    ch->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (ch->fd < 0) {
        channel_errno(ch, "socket", error);
        return NULL;
    }
    rc = connect(ch->fd, (struct sockaddr *)&addr, sizeof(addr));
    if (rc != 0 && errno == EINPROGRESS) {
        int soerr = 0;
        socklen_t len = sizeof(soerr);
        if (!channel_poll(ch, POLLOUT, deadline, "connecting", error))
            return NULL;
        getsockopt(ch->fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
        errno = soerr;
        rc = soerr == 0 ? 0 : -1;
    }
    if (rc != 0) {
        channel_errno(ch, "cannot connect", error);
        return NULL;
    }
    return g_steal_pointer(&ch);
}

void sp_channel_free(SpChannel *ch)
{
    if (ch == NULL)
        return;
    if (ch->fd >= 0)
        close(ch->fd);
    g_queue_clear_full(&ch->queue, (GDestroyNotify)sp_json_free);
    sp_framer_free(ch->framer);
    g_free(ch->path);
    g_free(ch->what);
    g_free(ch);
}

const char *sp_channel_get_path(SpChannel *ch)
{
    return ch->path;
}

gboolean sp_channel_send_raw(SpChannel *ch, const void *data, gsize len, gint64 deadline,
                             GError **error)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = send(ch->fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!channel_poll(ch, POLLOUT, deadline, "sending", error))
                return FALSE;
            continue;
        }
        if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                        "%s %s: the peer closed the connection", ch->what, ch->path);
            return FALSE;
        }
        if (n < 0)
            return channel_errno(ch, "send", error);
        p += n;
        len -= (gsize)n;
    }
    return TRUE;
}

gboolean sp_channel_send(SpChannel *ch, const SpJson *msg, gint64 deadline, GError **error)
{
    size_t len = 0;
    g_autofree char *text = sp_json_serialize(msg, &len);
    g_autofree char *line = NULL;
    if (text == NULL) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s %s: out of memory", ch->what,
                    ch->path);
        return FALSE;
    }
    line = g_strconcat(text, "\n", NULL);
    return sp_channel_send_raw(ch, line, len + 1, deadline, error);
}

static void frame_cb(const SpFrame *frame, void *userdata)
{
    SpChannel *ch = userdata;
    SpJsonLimits limits = {.max_size = SP_CHANNEL_MAX_FRAME};
    SpJson *value = NULL;

    switch (frame->kind) {
    case SP_FRAME_RESYNC:
        /* Garbage before a 0xFF is what guest-sync-delimited exists to skip. */
        ch->resyncs++;
        ch->invalid = 0;
        g_queue_clear_full(&ch->queue, (GDestroyNotify)sp_json_free);
        return;
    case SP_FRAME_ERROR:
        ch->dropped++;
        if (frame->status == SP_E_TOO_LARGE)
            ch->too_large = TRUE;
        else
            ch->invalid++;
        return;
    case SP_FRAME_OBJECT:
        break;
    }
    if (sp_json_parse(frame->data, frame->len, &limits, &value, NULL) != SP_OK) {
        ch->dropped++;
        ch->invalid++;
        return;
    }
    /* Bounded: a peer flooding events cannot make us allocate without limit. */
    if (g_queue_get_length(&ch->queue) >= SP_CHANNEL_MAX_QUEUE) {
        sp_json_free(g_queue_pop_head(&ch->queue));
        ch->dropped++;
    }
    g_queue_push_tail(&ch->queue, value);
}

/* A timeout after the peer sent messages that were not JSON says so: the user then knows the
 * peer is talking, just not sensibly. */
static gboolean wait_reply(SpChannel *ch, short events, gint64 deadline, GError **error)
{
    if (channel_poll(ch, events, deadline, "waiting for a reply", error))
        return TRUE;
    if (ch->invalid > 0 && g_error_matches(*error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT)) {
        char *plain = (*error)->message;
        (*error)->message = g_strdup_printf("%s (it sent %u message(s) that were not valid "
                                            "JSON)", plain, ch->invalid);
        g_free(plain);
    }
    return FALSE;
}

SpJson *sp_channel_recv(SpChannel *ch, gint64 deadline, GError **error)
{
    char buf[8192];
    while (g_queue_is_empty(&ch->queue)) {
        ssize_t n;
        if (ch->too_large) {
            ch->too_large = FALSE;
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE,
                        "%s %s: the peer sent a message over the %d MiB limit", ch->what,
                        ch->path, SP_CHANNEL_MAX_FRAME / (1024 * 1024));
            return NULL;
        }
        /* A peer that always has more to send never makes recv() wait: check the deadline. */
        if (g_get_monotonic_time() >= deadline && !wait_reply(ch, 0, deadline, error))
            return NULL;
        n = recv(ch->fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!wait_reply(ch, POLLIN, deadline, error))
                return NULL;
            continue;
        }
        if (n < 0 && errno == ECONNRESET)
            n = 0; /* the same as a hang-up */
        if (n < 0) {
            channel_errno(ch, "recv", error);
            return NULL;
        }
        if (n == 0) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                        "%s %s: the peer closed the connection", ch->what, ch->path);
            return NULL;
        }
        if (sp_framer_feed(ch->framer, buf, (size_t)n, frame_cb, ch) != SP_OK) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s %s: out of memory", ch->what,
                        ch->path);
            return NULL;
        }
    }
    return g_queue_pop_head(&ch->queue);
}

guint sp_channel_resync_count(SpChannel *ch)
{
    return ch->resyncs;
}

void sp_channel_flush(SpChannel *ch)
{
    g_queue_clear_full(&ch->queue, (GDestroyNotify)sp_json_free);
    sp_framer_reset(ch->framer);
}
