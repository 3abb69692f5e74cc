/* writers: application writers on the system bus — the agent owns org.stillpoint.Agent1,
 * keeps a registry of writers (forgetting those that leave the bus) and calls their
 * Prepare/Freeze/Thaw concurrently, each round bounded by a deadline. */
#pragma once
#include <gio/gio.h>
#include "stillpoint/freeze-backend.h"

#define SP_WRITERS_BUS_NAME "org.stillpoint.Agent1"
#define SP_WRITERS_OBJECT_PATH "/org/stillpoint/Agent1"
#define SP_WRITERS_WRITER_INTERFACE "org.stillpoint.Writer1"
#define SP_WRITERS_MAX 64          /* registrations a guest may make: each costs a bus watch */
#define SP_WRITERS_NAME_MAX 64
#define SP_WRITERS_TIMEOUT_MS_DEFAULT 10000

#define SP_WRITERS_ERROR (sp_writers_error_quark())
GQuark sp_writers_error_quark(void);
typedef enum {
    SP_WRITERS_ERROR_FAILED,   /* a writer failed, missed its deadline or left the bus */
} SpWritersError;

typedef struct SpWriters SpWriters;

/* Starts owning the name on the system bus (asynchronously: with no bus there are simply no
 * writers). abort_on_failure: a failed writer fails the freeze, else it is only reported. */
SpWriters *sp_writers_new(gint64 timeout_ms, gboolean abort_on_failure);
void sp_writers_free(SpWriters *writers);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpWriters, sp_writers_free)
/* Called every 250 ms while waiting for writers (the main loop is not turning then). */
void sp_writers_set_keepalive(SpWriters *writers, void (*fn)(void *data), void *data);
guint sp_writers_count(const SpWriters *writers);

/* Prepare every registered writer, then Freeze those that prepared. When one fails and
 * abort_on_failure is set, every writer asked to Prepare is told Thaw (reason "aborted") and
 * an error naming the writer is returned. Never waits longer than 2 × timeout (+1 s). */
gboolean sp_writers_freeze(SpWriters *writers, gint64 epoch, GError **error);
/* Thaw every writer that took part in the last freeze (bounded by the timeout). */
void sp_writers_thaw(SpWriters *writers, gint64 epoch, const char *reason, gboolean consistent);
/* The first writer of the last freeze that left the bus after answering Freeze and before
 * answering Thaw (it crashed while frozen), or NULL. Such a freeze is not consistent. Valid
 * after sp_writers_thaw. */
const char *sp_writers_left_while_frozen(const SpWriters *writers);
/* What each writer of the current or last freeze did: malloc'd copies (free with
 * sp_writer_reports_free). */
SpWriterReport *sp_writers_reports(const SpWriters *writers, size_t *ret_n);
