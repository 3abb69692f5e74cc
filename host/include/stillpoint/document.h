/* document: what each command that stillpointd offers returns, as one JSON document (vm list,
 * checkpoint list, a created or applied checkpoint, ...). Built once, by the CLI working directly
 * and by stillpointd alike, and rendered by the CLI from the document either way (cli/render.h),
 * so both ways print the same. */
#pragma once
#include <glib.h>

#include "stillpoint/channel.h"
#include "stillpoint/driver.h"
#include "stillpoint/store.h"

/* One checkpoint: id, parent, name, type, consistency, created, sizes, disks; "current" when its
 * id is current. */
SpJson *sp_document_checkpoint(const SpCheckpoint *cp, int64_t current);
/* `checkpoint show`: one checkpoint of vm (cps: all of vm's) with its parent and children. */
SpJson *sp_document_checkpoint_show(const SpVm *vm, GPtrArray *cps, const SpCheckpoint *cp);
/* The `vm list --json` document: an array of VMs. */
SpJson *sp_document_vm_list(GPtrArray *vms);
/* The `checkpoint list --json` document: {"vm", "current", "checkpoints": [...]}. */
SpJson *sp_document_checkpoint_list(const SpVm *vm, GPtrArray *cps);
/* The `vm disks --json` document: an array of the SpDisk QMP reports. */
SpJson *sp_document_vm_disks(GPtrArray *disks);
/* `vm add`: {"name", "id"}. */
SpJson *sp_document_vm_added(const char *name, int64_t id);
/* `group list`: {GROUP: [VM, ...], ...}, groups in name order (groups: sp_group_list). */
SpJson *sp_document_group_list(GHashTable *groups);
/* `checkpoint create --group`: each member's new checkpoint with its "vm", in member order. */
SpJson *sp_document_group_checkpoint(SpStore *store, const char *group, GPtrArray *cps,
                                     GError **error);
/* `checkpoint apply`: the VM's current checkpoint plus "links", the stable path of each disk to
 * start the VM from; JSON null when the VM has no current checkpoint. */
SpJson *sp_document_checkpoint_applied(SpStore *store, const char *vm, GError **error);
