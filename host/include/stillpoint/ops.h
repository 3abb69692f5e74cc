/* Checkpoint tree operations beyond create: delete (merge), delete subtree, rename, export.
 * Each image operation is journaled (intent, steps, done) and recovered by the next run. */
#pragma once
#include <glib.h>
#include "stillpoint/coordinator.h"
#include "stillpoint/qmp.h"
#include "stillpoint/store.h"

G_BEGIN_DECLS

/* Progress of a long image job (a merge, a copy): percent in 0..100 for one disk. */
typedef void (*SpPercentFn)(const char *disk, double percent, gpointer user_data);

typedef struct SpOpReport {
    SpProgressFn progress;  /* may be NULL */
    SpPercentFn percent;    /* may be NULL */
    gpointer user_data;
} SpOpReport;

/* Finds a VM's checkpoint by exact name, or by "#ID" / "ID" when no name matches. A name that
 * several checkpoints share is refused (G_IO_ERROR_INVALID_ARGUMENT) with their ids. */
SpCheckpoint *sp_op_find_checkpoint(SpStore *store, SpVm *vm, const char *ref, GError **error);

/* Deletes a checkpoint by merging: the VM's present and every other checkpoint keep their data.
 * Live (QMP block-commit) when the VM's QMP socket answers, offline (qemu-img) when QEMU is not
 * running. With subtree, its descendants go first (leaves up). The caller holds the VM's lock. */
gboolean sp_op_delete(SpStore *store, SpVm *vm, const char *ref, gboolean subtree,
                      const SpOpReport *report, GError **error);

/* Renames; the rules (1-100 characters, no control characters, unique per VM) are checked
 * before anything changes. */
gboolean sp_op_rename(SpStore *store, SpVm *vm, const char *ref, const char *new_name,
                      GError **error);

/* Writes a standalone, flattened copy of every disk at the checkpoint into dir (qcow2 or raw)
 * plus manifest.json. Safe while the VM runs: a checkpoint's images are read-only backing
 * files. *ret_manifest (may be NULL) receives the manifest's path. */
gboolean sp_op_export(SpStore *store, SpVm *vm, const char *ref, const char *dir,
                      const char *format, const SpOpReport *report, char **ret_manifest,
                      GError **error);

/* Applies (reverts to) a checkpoint. The VM must be off: with force, a running QEMU is stopped
 * first (QMP quit, like pulling the plug). With save_current (a name), the present is kept as a
 * new checkpoint first: a running VM gets a checkpoint of its checkpoint type (production: the
 * guest quiesced, as Hyper-V's "create checkpoint and apply") and is then stopped, force or not;
 * for a VM that is off its disks are recorded as a crash-consistent checkpoint. Otherwise the
 * present is discarded. Each disk gets a new overlay on top of the
 * checkpoint's image (other branches stay), and the stable path the VM's launcher opens,
 * sp_present_link_path(), is re-pointed to it atomically. */
gboolean sp_op_apply(SpStore *store, SpVm *vm, const char *ref, const char *save_current,
                     gboolean force, const SpOpReport *report, GError **error);
/* After applying a standard checkpoint, with the VM's QEMU started with -incoming defer: loads
 * the saved state and runs the VM. Refused when the disks were written since the apply (the
 * memory would no longer match them). */
gboolean sp_op_resume(SpStore *store, SpVm *vm, const SpOpReport *report, GError **error);
gboolean sp_op_recover_apply(SpStore *store, SpVm *vm, SpOp *op, const SpOpReport *report,
                             GError **error);

/* Recovery of an interrupted delete or export (called by sp_coordinator_recover). qmp may be
 * NULL when the VM is not running. */
gboolean sp_op_recover_delete(SpStore *store, SpVm *vm, SpQmp *qmp, SpOp *op,
                              const SpOpReport *report, GError **error);
gboolean sp_op_recover_export(SpStore *store, SpOp *op, GError **error);

/* Connects to the VM's QMP socket when QEMU runs. *ret_qmp is NULL (and TRUE is returned) when
 * nothing listens there: the VM is off. */
gboolean sp_op_connect_qmp_if_running(SpVm *vm, SpQmp **ret_qmp, GError **error);

G_END_DECLS
