/* present: what a VM runs on now, against the store's "now". The store's now is the current
 * checkpoint's overlays (before the first checkpoint: the disks' own images); a checkpoint's
 * image is frozen. A QEMU started on a checkpoint's image (a launcher that opens the original
 * disk.qcow2 after a checkpoint) writes into that checkpoint. Three defences: the stable launch
 * path of each disk always names the now; every command compares what QEMU runs on with the
 * now and refuses to build on a checkpoint's image; and checkpoint images are read-only files
 * (QEMU itself reopens a snapshot's backing node read-only). */
#pragma once
#include <glib.h>

#include "stillpoint/channel.h"
#include "stillpoint/ops.h"
#include "stillpoint/qmp.h"
#include "stillpoint/store.h"

G_BEGIN_DECLS

/* The stable launch path of a disk: "<store dir>/vms/VM/DISK.qcow2", a symlink to the image the
 * VM runs on now. */
char *sp_present_link_path(SpStore *store, const char *vm_name, const char *disk);
/* Points link at target atomically (a symlink to a temporary name, renamed over the link). */
gboolean sp_present_point(const char *link, const char *target, const char *disk,
                          GError **error);

/* `vm add`: makes each disk's stable path point at its image (disks: SpDisk, as discovered).
 * *ret_links (may be NULL) gets {disk: stable path}. */
gboolean sp_present_link_disks(SpStore *store, const SpVm *vm, GPtrArray *disks,
                               SpJson **ret_links, GError **error);

/* After anything moved the now (create, delete, apply, recovery): the stable paths point at the
 * now (qemu driver: made when missing; other drivers: only re-pointed when they exist), every
 * checkpoint image is made read-only and the now's images writable (qemu driver). With no
 * current checkpoint, now_if_none (may be NULL) names each disk's image: {disk: image}. */
gboolean sp_present_sync(SpStore *store, SpVm *vm, GHashTable *now_if_none, GError **error);

/* Gives the owner write permission back before stillpoint itself writes into a checkpoint's
 * image (a merge), for a QEMU that is not root. Missing files are fine. */
void sp_present_make_writable(const char *image);

/* qemu driver: refuses (G_IO_ERROR_FAILED) when the running QEMU writes to a checkpoint's image
 * or to an image that is not the store's now, saying what happened and how to recover. qmp may
 * be NULL: connects when QEMU runs. A VM that is off passes. */
gboolean sp_present_check(SpStore *store, SpVm *vm, SpQmp *qmp, GError **error);

/* Recovery from a QEMU started on checkpoint X's image (every disk on X's): what the guest wrote
 * is kept as the VM's now, X and every checkpoint below it (which no longer hold their content)
 * are forgotten — records only, their files are kept and named in *ret_kept — and X's parent
 * becomes current. QEMU must run (it shows where the VM runs). *ret_forgotten gets the names. */
gboolean sp_present_adopt(SpStore *store, SpVm *vm, const SpOpReport *report,
                          GPtrArray **ret_forgotten, GPtrArray **ret_kept, GError **error);

G_END_DECLS
