/* retention: merge away the oldest checkpoints of a VM beyond a number to keep — what
 * `stillpoint checkpoint retention` and a schedule's run do, directly and through stillpointd. */
#pragma once
#include <glib.h>

#include "stillpoint/ops.h"
#include "stillpoint/store.h"

G_BEGIN_DECLS

/* Merges away (sp_op_delete) the oldest of vm's checkpoints that schedules made (with all:
 * every checkpoint) until at most keep remain; the one an open backup session stands on stays.
 * Each merge is announced through report->progress first. The caller holds the VM's lock.
 * ret_merged: how many were merged, also when a later merge fails. */
gboolean sp_retention_apply(SpStore *store, SpVm *vm, guint keep, gboolean all,
                            const SpOpReport *report, guint *ret_merged, GError **error);

G_END_DECLS
