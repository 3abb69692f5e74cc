/* render: what every stillpoint command prints on stdout, from its document (document.h): the
 * JSON document itself with --json, else text rendered from it — the same directly and through
 * stillpointd. */
#pragma once
#include <glib.h>

#include "stillpoint/document.h"

void sp_cli_print_vm_list(const SpJson *doc, gboolean json);
void sp_cli_print_checkpoint_list(const SpJson *doc, gboolean json);
void sp_cli_print_checkpoint_show(const SpJson *doc, gboolean json);
void sp_cli_print_vm_disks(const SpJson *doc, gboolean json);
/* `vm add`: printed only as JSON (the text goes to stderr as progress). */
void sp_cli_print_vm_added(const SpJson *doc, gboolean json);
/* `checkpoint create`: doc is sp_document_checkpoint(cp, cp->id). */
void sp_cli_print_checkpoint_created(const char *vm, const SpJson *doc, gboolean json);
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
void sp_cli_print_checkpoint_applied(const char *vm, const SpJson *doc, gboolean json);
/* The percentage of a long image job (merge, copy) on a disk: with json, a JSON line on stdout
 * each time the whole percent changes; otherwise a bar on stderr when it is a terminal (not
 * quiet). */
void sp_cli_print_percent(const char *disk, double percent, gboolean json, gboolean quiet);
