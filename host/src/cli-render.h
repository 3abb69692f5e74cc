/* cli-render: the documents `stillpoint vm list` and `checkpoint list` print, built once (by the
 * CLI working directly, and by stillpointd for the CLI through the daemon) and rendered from
 * that document by the same functions either way, so both ways print the same. */
#pragma once
#include <glib.h>

#include "stillpoint/channel.h"
#include "stillpoint/driver.h"
#include "stillpoint/store.h"

SpJson *checkpoint_to_json(const SpCheckpoint *cp, int64_t current);
/* The `vm list --json` document: an array of VMs. */
SpJson *sp_cli_vm_list_json(GPtrArray *vms);
/* The `checkpoint list --json` document: {"vm", "current", "checkpoints": [...]}. */
SpJson *sp_cli_checkpoint_list_json(const SpVm *vm, GPtrArray *cps);
/* The `vm disks --json` document: an array of the SpDisk QMP reports. */
SpJson *sp_cli_vm_disks_json(GPtrArray *disks);
/* Prints a document on stdout: as JSON (json), or as text by render. */
void sp_cli_print_vm_list(const SpJson *doc, gboolean json);
void sp_cli_print_checkpoint_list(const SpJson *doc, gboolean json);
void sp_cli_print_vm_disks(const SpJson *doc, gboolean json);
