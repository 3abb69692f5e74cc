/* A JSON message stream over a unix socket (QMP and the guest agent channel share it): connect,
 * send, receive with an absolute deadline, with bounded frames and a bounded queue. */
#pragma once
#include <glib.h>
#include "stillpoint/json.h"

G_BEGIN_DECLS

G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpJson, sp_json_free)

#define SP_CHANNEL_MAX_FRAME (4 * 1024 * 1024) /* query-named-block-nodes can be large */
#define SP_CHANNEL_MAX_QUEUE 256               /* messages held before the oldest is dropped */

typedef struct SpChannel SpChannel;

/* Deadlines are absolute, on g_get_monotonic_time()'s clock. */
static inline gint64 sp_deadline_in_ms(guint ms)
{
    return g_get_monotonic_time() + (gint64)ms * 1000;
}

/* what names the peer in errors ("QMP socket", "agent socket"). */
SpChannel *sp_channel_connect_unix(const char *path, const char *what, gint64 deadline,
                                   GError **error);
void sp_channel_free(SpChannel *ch);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpChannel, sp_channel_free)

gboolean sp_channel_send(SpChannel *ch, const SpJson *msg, gint64 deadline, GError **error);
gboolean sp_channel_send_raw(SpChannel *ch, const void *data, gsize len, gint64 deadline,
                             GError **error);
/* The next message, or NULL with G_IO_ERROR_TIMED_OUT at the deadline, or
 * G_IO_ERROR_CONNECTION_CLOSED when the peer hung up. */
SpJson *sp_channel_recv(SpChannel *ch, gint64 deadline, GError **error);
/* Counts 0xFF bytes seen; the queue is emptied at each one (what came before is stale). */
guint sp_channel_resync_count(SpChannel *ch);
/* Drops every queued message and any partial frame. */
void sp_channel_flush(SpChannel *ch);
const char *sp_channel_get_path(SpChannel *ch);

G_END_DECLS
