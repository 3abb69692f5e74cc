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

/* A driver's backup sessions (SpDriverOps.backup). begin: session is the planned one (taken),
 * old the last closed one, restored when nothing was begun. end: the exports go, the session's
 * checkpoint is merged back unless kept. alive: the session's exports still serve. */
typedef struct SpBackupOps {
    SpJson *(*begin)(SpStore *store, SpVm *vm, SpJson *session, SpJson *old,
                     const SpBackupReport *r, GError **error);
    gboolean (*end)(SpStore *store, SpVm *vm, SpJson *session, gboolean keep, gboolean aborted,
                    const SpBackupReport *r, GError **error);
    gboolean (*alive)(SpStore *store, SpVm *vm, SpJson *session, gboolean *ret_alive,
                      GError **error);
} SpBackupOps;

/* Exports from the VM's own QEMU (backup.c); through libvirt's backup job (backup-libvirt.c). */
extern const SpBackupOps sp_backup_qemu_ops;
extern const SpBackupOps sp_backup_libvirt_ops;
