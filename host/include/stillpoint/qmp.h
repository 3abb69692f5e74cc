/* A QMP client: greeting, capabilities negotiation, commands with deadlines, events queued. */
#pragma once
#include <glib.h>
#include "stillpoint/channel.h"

G_BEGIN_DECLS

#define SP_QMP_MAX_EVENTS 128
#define SP_QMP_DEFAULT_TIMEOUT_MS 10000
/* After a command timed out, the next ones wait at most this long until QEMU answers again. */
#define SP_QMP_STALLED_TIMEOUT_MS 2000

typedef struct SpQmp SpQmp;

/* Connects, reads the greeting and negotiates capabilities, all within timeout_ms. */
SpQmp *sp_qmp_connect(const char *path, guint timeout_ms, GError **error);
void sp_qmp_free(SpQmp *qmp);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpQmp, sp_qmp_free)

/* Runs a command (arguments owned, may be NULL) and returns its "return" value (owned).
 * A QMP error becomes G_IO_ERROR_FAILED "QMP command NAME failed: CLASS: DESC". */
SpJson *sp_qmp_execute(SpQmp *qmp, const char *command, SpJson *arguments, guint timeout_ms,
                       GError **error);
/* The oldest queued event named name (NULL = any), removed from the queue; NULL if none. */
SpJson *sp_qmp_take_event(SpQmp *qmp, const char *name);
/* Waits for an event named name whose "data" member key equals value (both may be NULL). */
SpJson *sp_qmp_wait_event(SpQmp *qmp, const char *name, const char *key, const char *value,
                          guint timeout_ms, GError **error);

G_END_DECLS
