/* Inside the backup sessions (backup.c, backup-libvirt.c): the session file, progress, the
 * changed extents, and the libvirt driver's sessions. */
#pragma once
#include <glib.h>

#include "stillpoint/backup.h"

#define STATE_BEGINNING "beginning"
#define STATE_OPEN "open"
#define STATE_ENDING "ending"
#define STATE_CLOSED "closed"

typedef struct {
    SpProgressFn progress;
    gpointer user_data;
} SpBackupReport;

void sp_backup_say(const SpBackupReport *r, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
/* Writes the session file with its state, atomically (write + rename). */
gboolean sp_backup_session_save(SpStore *store, SpVm *vm, SpJson *session, const char *state,
                                GError **error);
/* The dirty extents of bitmap on an NBD export, read back through QEMU's own NBD client; the
 * bytes they cover in *ret_bytes. */
SpJson *sp_backup_changed_extents(const char *socket, const char *export_name,
                                  const char *bitmap, gint64 *ret_bytes, GError **error);

/* The libvirt driver's sessions (backup-libvirt.c): session is the planned one (taken); old the
 * last closed one, restored when nothing was begun. */
SpJson *sp_backup_libvirt_begin(SpStore *store, SpVm *vm, SpJson *session, SpJson *old,
                                const SpBackupReport *r, GError **error);
gboolean sp_backup_libvirt_end(SpStore *store, SpVm *vm, SpJson *session, gboolean keep,
                               gboolean aborted, const SpBackupReport *r, GError **error);
gboolean sp_backup_libvirt_alive(SpVm *vm, gboolean *ret_alive, GError **error);
