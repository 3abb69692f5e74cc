/* Consistency groups: several VMs checkpointed at one instant (an application spread over a
 * database VM and an app VM). Every member is frozen (concurrently) before any is snapshotted. */
#pragma once
#include <glib.h>
#include "stillpoint/coordinator.h"
#include "stillpoint/store.h"

G_BEGIN_DECLS

/* Groups are kept in "<store>.groups.json" (rewritten atomically). Names follow the VM name
 * rules; members must be registered VMs, at least one, each at most once. */
gboolean sp_group_create(SpStore *store, const char *name, const char *const *members,
                         GError **error);
gboolean sp_group_remove(SpStore *store, const char *name, GError **error);
/* name -> members (a GStrv), NULL on error. */
GHashTable *sp_group_list(SpStore *store, GError **error);

/* One checkpoint across the group: locks every member (in name order), prepares every overlay,
 * freezes every guest at once, snapshots each VM in its own transaction while all are frozen,
 * thaws all. If any member cannot be frozen, all are thawed and no member gets a checkpoint
 * (G_IO_ERROR_FAILED naming the members that failed). Returns the checkpoints, one per member in
 * member order (a GPtrArray of SpCheckpoint). made_by: who asked, as recorded (NULL: this
 * process's user). */
GPtrArray *sp_group_checkpoint(SpStore *store, const char *group, const char *name,
                               const char *made_by, SpProgressFn progress, gpointer user_data,
                               GError **error);

G_END_DECLS
