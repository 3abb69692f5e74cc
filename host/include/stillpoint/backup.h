/* Backup sessions: a production checkpoint held open as a stable, read-only point in time (image
 * paths and an NBD export from the running QEMU) while the guest runs on, then merged back. */
#pragma once
#include <glib.h>
#include "stillpoint/coordinator.h"
#include "stillpoint/channel.h" /* SpJson with g_autoptr */
#include "stillpoint/store.h"

G_BEGIN_DECLS

/* Runtime files of the system's store (NBD sockets of backup sessions): root's (0711: a session's
 * directory in it can be given to a caller), not persistent. */
#define SP_RUNTIME_DIR "/run/stillpoint"
#define SP_BACKUP_SOCKET_NAME "nbd.sock"

/* Where a backup session of vm_name puts its NBD socket, alone in a directory of its own (0700)
 * so that it can be given to one user: for the system's store (SP_STORE_DEFAULT_PATH), in
 * SP_RUNTIME_DIR (stillpointd.service's RuntimeDirectory=), not beside the store in /var/lib
 * (SP_RUNTIME_DIR/VM.nbd/nbd.sock); for any other store, beside it (STORE.VM.nbd/nbd.sock). */
char *sp_backup_socket_path(const char *store_path, const char *vm_name);

/* Gives an open session's socket and its directory to uid (stillpointd's caller: it may read
 * the session, nobody else may), by fd, never following a path. No-op for root and for a socket
 * not in a directory of its own (the libvirt driver's). */
gboolean sp_backup_socket_give(const char *socket, guint32 uid, GError **error);

/* Begins a session (the caller holds the VM's lock): a production checkpoint whose transaction
 * also adds a persistent dirty bitmap on every frozen node, then an NBD export of each frozen
 * node on a unix socket (sp_backup_socket_path). With incremental, the previous session's bitmap
 * (stopped in the same transaction) is exposed as qemu:dirty-bitmap:NAME and its changed extents
 * are listed. Returns the session as JSON (README "For backup tools"). */
SpJson *sp_backup_begin(SpStore *store, SpVm *vm, gboolean incremental, SpProgressFn progress,
                        gpointer user_data, GError **error);

/* Ends the open session: removes the exports, then merges the temporary checkpoint back (or, with
 * keep, keeps it as an ordinary checkpoint). aborted: the tool did not finish, so the next
 * incremental still starts from the previous good backup. Ending is idempotent: each step is journaled in the
 * session file and a repeated end resumes where one stopped. */
gboolean sp_backup_end(SpStore *store, SpVm *vm, gboolean keep, gboolean aborted,
                       SpProgressFn progress, gpointer user_data, GError **error);

/* The session file's content (NULL and no error when the VM never had a session). */
SpJson *sp_backup_status(SpStore *store, SpVm *vm, GError **error);

/* A session left half-begun or half-ended by a crash, or open with its exports gone (QEMU
 * restarted), is ended; an open one with live exports is left for "backup end". */
gboolean sp_backup_recover(SpStore *store, SpVm *vm, SpProgressFn progress, gpointer user_data,
                           GError **error);

G_END_DECLS
