/* cli-render: what every stillpoint command that stillpointd offers prints on stdout. The
 * documents (vm list, checkpoint list, a created or applied checkpoint, ...) are built once (by
 * the CLI working directly, and by stillpointd for the CLI through the daemon) and rendered
 * from that document by the same functions either way, so both ways print the same. */
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

/* `vm add`: {"name", "id"}; printed only as JSON (the text goes to stderr as progress). */
SpJson *sp_cli_vm_added_json(const char *name, int64_t id);
void sp_cli_print_vm_added(const SpJson *doc, gboolean json);
/* `checkpoint create`: doc is checkpoint_to_json(cp, cp->id). */
void sp_cli_print_checkpoint_created(const char *vm, const SpJson *doc, gboolean json);
/* `checkpoint create --group`: each member's new checkpoint (checkpoint_to_json) with its "vm",
 * in member order. */
SpJson *sp_cli_group_checkpoint_json(SpStore *store, const char *group, GPtrArray *cps,
                                     GError **error);
void sp_cli_print_group_checkpoint(const char *group, const SpJson *doc, gboolean json);
/* `checkpoint delete` (ref as the user gave it). */
void sp_cli_print_checkpoint_deleted(const char *vm, const char *ref, gboolean subtree,
                                     gboolean json);
/* What quiet commands (rename, vm remove, vm recover) print with --json only:
 * {"event": EVENT, KEY: VALUE, ...}; the pairs are strings, NULL-terminated. */
void sp_cli_print_json_event(gboolean json, const char *event, ...) G_GNUC_NULL_TERMINATED;
/* `checkpoint export`: the manifest written. */
void sp_cli_print_checkpoint_exported(const char *vm, const char *ref, const char *manifest,
                                      gboolean json);
/* `checkpoint apply`: the VM's current checkpoint (checkpoint_to_json) plus "links", the stable
 * path of each disk to start the VM from; JSON null when the VM has no current checkpoint. */
SpJson *sp_cli_checkpoint_applied_json(SpStore *store, const char *vm, GError **error);
void sp_cli_print_checkpoint_applied(const char *vm, const SpJson *doc, gboolean json);
/* The percentage of a long image job (merge, copy) on a disk: with json, a JSON line on stdout
 * each time the whole percent changes; otherwise a bar on stderr when it is a terminal (not
 * quiet). */
void sp_cli_print_percent(const char *disk, double percent, gboolean json, gboolean quiet);
