/* log: the agent's GLib log writer. Lines go to stderr, except while filesystems are frozen:
 * then they are held in a bounded memory buffer (stderr may be a pipe into journald, which can
 * sit on a frozen disk) and written after the thaw. */
#pragma once
#include <glib.h>

#define SP_LOG_HELD_MAX_LINES 512
#define SP_LOG_HELD_MAX_BYTES (128 * 1024)

void sp_log_init(gboolean verbose);
/* Entering frozen: hold lines. Leaving: write the held lines (and how many were dropped). */
void sp_log_set_frozen(gboolean frozen);
guint sp_log_held_count(void);
