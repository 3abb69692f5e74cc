/* checkpoint-type: what `checkpoint create` makes, as Hyper-V's checkpoint types (Set-VM
 * -CheckpointType). production quiesces the guest and falls back to a standard checkpoint when it
 * cannot (Hyper-V's default); production-only never falls back; standard saves the VM's memory
 * with its disks and does not quiesce. crash (stillpoint's own) only snapshots the disks. */
#pragma once
#include <glib.h>

#include "stillpoint/coordinator.h"
#include "stillpoint/store.h"

G_BEGIN_DECLS

/* Fills opts (requested, crash_only, standard, on_quiesce_failure, fallback_if_possible) from
 * what was asked: type NULL = the VM's checkpoint type; policy NULL = the type's own fallback
 * ("fail", "crash" or "standard"). A policy is refused for a type that does not quiesce or that
 * never falls back. */
gboolean sp_checkpoint_type_resolve(const SpVm *vm, const char *type, const char *policy,
                                    SpCreateOptions *opts, GError **error);

/* "root (uid 0)": the user this process runs as, for a checkpoint's made_by. */
char *sp_checkpoint_made_by_self(void);

G_END_DECLS
