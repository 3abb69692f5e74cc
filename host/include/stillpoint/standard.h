/* Standard checkpoints: stop, save and load the VM's device and memory state over QMP. */
#pragma once
#include <glib.h>
#include "stillpoint/qmp.h"

G_BEGIN_DECLS

#define SP_STANDARD_TIMEOUT_MS (10 * 60 * 1000)

gboolean sp_standard_runstate(SpQmp *qmp, char **ret_status, GError **error);
/* Stops the VM; *ret_was_running says whether it ran. */
gboolean sp_standard_stop(SpQmp *qmp, gboolean *ret_was_running, GError **error);
/* Streams the (stopped) VM's state to path and waits until it is complete. */
gboolean sp_standard_save(SpQmp *qmp, const char *path, GError **error);
/* Takes the images back after a save and runs the VM again if it ran before. */
gboolean sp_standard_resume(SpQmp *qmp, gboolean was_running, GError **error);
/* Cancels a save in progress (recovery after a kill). */
gboolean sp_standard_cancel(SpQmp *qmp, GError **error);
/* Loads path into a QEMU started with -incoming defer and waits until it is complete. */
gboolean sp_standard_load(SpQmp *qmp, const char *path, GError **error);

G_END_DECLS
