/* What the stillpoint CLI's files share: the command table's entry, the global options, output,
 * and opening a VM (store, lock, recovery). stillpoint.c holds the table and main; each topic's
 * file its commands' options, direct runners and D-Bus runners: cli-vm.c (vm ...),
 * cli-checkpoint.c (checkpoint create, list, show), cli-ops.c (the tree operations: delete,
 * rename, export, apply, resume), cli-group.c, cli-backup.c (backup, hook), cli-schedule.c
 * (checkpoint retention, schedule ...). */
#pragma once
#include <gio/gio.h>
#include <signal.h>

#include "daemon-client.h"
#include "render.h"
#include "stillpoint/channel.h"
#include "stillpoint/store.h"

/* A command's runners get its positional arguments in argv[1..argc-1] (argv[0] is the
 * program), its options already parsed into its GOptionEntry[] storage. A FALSE return with
 * error is printed as "stillpoint: MESSAGE" (or the command's own failure prefix), exit 1. */
typedef gboolean (*SpCliRunner)(int argc, char **argv, GError **error);
typedef gboolean (*SpCliDbusRunner)(SpDaemonClient *c, int argc, char **argv, GError **error);

typedef struct {
    const char *group, *name;
    const char *params, *summary;    /* --help's parameter string and summary */
    const GOptionEntry *options;     /* NULL: none besides the global ones */
    SpCliRunner direct;              /* working on the store */
    SpCliDbusRunner dbus;            /* through stillpointd; NULL: not offered there */
    const char *failure;             /* a failure's prefix; NULL: "stillpoint" */
} SpCliCommand;

typedef struct {
    char *store_path;
    gboolean json;
    gboolean quiet;
} SpCliGlobals;

extern SpCliGlobals sp_cli_globals;
extern volatile sig_atomic_t sp_cli_interrupted;

/* Parses the command's options and the global ones (once, in main); positional arguments stay
 * in argv. */
gboolean sp_cli_parse_options(const SpCliCommand *command, int *argc, char ***argv,
                              GError **error);
/* Holds SIGINT/SIGTERM/SIGHUP until the operation is done or rolled back. */
void sp_cli_defer_termination(void);
void sp_cli_progress(const char *message, gpointer user_data);
/* A bar on a terminal, a JSON line per change with --json, nothing otherwise (render.c). */
void sp_cli_percent(const char *disk, double percent, gpointer user_data);
void sp_cli_print_json(const SpJson *value);
/* Sets error unless argc == n (the program and n - 1 arguments): "WHAT: expected EXPECTED". */
gboolean sp_cli_expect(int argc, int n, const char *what, const char *expected, GError **error);
SpStore *sp_cli_open_store(GError **error);
/* A VM opened for an operation: the store, the VM's lock (held until cleared) and the VM. */
typedef struct {
    SpStore *store;
    SpVmLock *lock;
    SpVm *vm;
} SpCliVm;
void sp_cli_vm_clear(SpCliVm *v);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(SpCliVm, sp_cli_vm_clear)
/* Opens the store, loads and locks the VM, and (recover) resolves interrupted operations. */
gboolean sp_cli_open_vm(const char *name, gboolean recover, SpCliVm *ret, GError **error);

/* ---- the commands (their table is in stillpoint.c) ---- */

/* cli-vm.c */
extern const GOptionEntry sp_cli_vm_add_options[], sp_cli_vm_set_options[],
    sp_cli_vm_remove_options[], sp_cli_vm_recover_options[];
gboolean sp_cli_vm_add(int argc, char **argv, GError **error);
gboolean sp_cli_vm_add_dbus(SpDaemonClient *c, int argc, char **argv, GError **error);
gboolean sp_cli_vm_list(int argc, char **argv, GError **error);
gboolean sp_cli_vm_list_dbus(SpDaemonClient *c, int argc, char **argv, GError **error);
gboolean sp_cli_vm_set(int argc, char **argv, GError **error);
gboolean sp_cli_vm_set_dbus(SpDaemonClient *c, int argc, char **argv, GError **error);
gboolean sp_cli_vm_remove(int argc, char **argv, GError **error);
gboolean sp_cli_vm_remove_dbus(SpDaemonClient *c, int argc, char **argv, GError **error);
gboolean sp_cli_vm_recover(int argc, char **argv, GError **error);
gboolean sp_cli_vm_recover_dbus(SpDaemonClient *c, int argc, char **argv, GError **error);
gboolean sp_cli_vm_disks(int argc, char **argv, GError **error);
gboolean sp_cli_vm_disks_dbus(SpDaemonClient *c, int argc, char **argv, GError **error);

/* cli-checkpoint.c */
extern const GOptionEntry sp_cli_checkpoint_create_options[];
gboolean sp_cli_checkpoint_create(int argc, char **argv, GError **error);
gboolean sp_cli_checkpoint_create_dbus(SpDaemonClient *c, int argc, char **argv, GError **error);
gboolean sp_cli_checkpoint_list(int argc, char **argv, GError **error);
gboolean sp_cli_checkpoint_list_dbus(SpDaemonClient *c, int argc, char **argv, GError **error);
gboolean sp_cli_checkpoint_show(int argc, char **argv, GError **error);
gboolean sp_cli_checkpoint_show_dbus(SpDaemonClient *c, int argc, char **argv, GError **error);

/* cli-ops.c */
extern const GOptionEntry sp_cli_checkpoint_delete_options[],
    sp_cli_checkpoint_export_options[], sp_cli_checkpoint_apply_options[];
gboolean sp_cli_checkpoint_delete(int argc, char **argv, GError **error);
gboolean sp_cli_checkpoint_delete_dbus(SpDaemonClient *c, int argc, char **argv, GError **error);
gboolean sp_cli_checkpoint_rename(int argc, char **argv, GError **error);
gboolean sp_cli_checkpoint_rename_dbus(SpDaemonClient *c, int argc, char **argv, GError **error);
gboolean sp_cli_checkpoint_export(int argc, char **argv, GError **error);
gboolean sp_cli_checkpoint_export_dbus(SpDaemonClient *c, int argc, char **argv, GError **error);
gboolean sp_cli_checkpoint_apply(int argc, char **argv, GError **error);
gboolean sp_cli_checkpoint_apply_dbus(SpDaemonClient *c, int argc, char **argv, GError **error);
gboolean sp_cli_checkpoint_resume(int argc, char **argv, GError **error);
gboolean sp_cli_checkpoint_resume_dbus(SpDaemonClient *c, int argc, char **argv, GError **error);

/* cli-group.c */
gboolean sp_cli_group_create(int argc, char **argv, GError **error);
gboolean sp_cli_group_create_dbus(SpDaemonClient *c, int argc, char **argv, GError **error);
gboolean sp_cli_group_list(int argc, char **argv, GError **error);
gboolean sp_cli_group_list_dbus(SpDaemonClient *c, int argc, char **argv, GError **error);
gboolean sp_cli_group_remove(int argc, char **argv, GError **error);
gboolean sp_cli_group_remove_dbus(SpDaemonClient *c, int argc, char **argv, GError **error);
/* checkpoint create --group GROUP [--name N]: one checkpoint per member, at one instant. */
gboolean sp_cli_group_checkpoint(const char *group, const char *name, GError **error);
gboolean sp_cli_group_checkpoint_dbus(SpDaemonClient *c, const char *group, const char *name,
                                      GError **error);

/* cli-backup.c */
extern const GOptionEntry sp_cli_backup_begin_options[], sp_cli_backup_end_options[],
    sp_cli_hook_pre_options[], sp_cli_hook_post_options[];
gboolean sp_cli_backup_begin(int argc, char **argv, GError **error);
gboolean sp_cli_backup_begin_dbus(SpDaemonClient *c, int argc, char **argv, GError **error);
gboolean sp_cli_backup_end(int argc, char **argv, GError **error);
gboolean sp_cli_backup_end_dbus(SpDaemonClient *c, int argc, char **argv, GError **error);
gboolean sp_cli_backup_status(int argc, char **argv, GError **error);
gboolean sp_cli_backup_status_dbus(SpDaemonClient *c, int argc, char **argv, GError **error);
gboolean sp_cli_hook_pre(int argc, char **argv, GError **error);
gboolean sp_cli_hook_pre_dbus(SpDaemonClient *c, int argc, char **argv, GError **error);
gboolean sp_cli_hook_post(int argc, char **argv, GError **error);
gboolean sp_cli_hook_post_dbus(SpDaemonClient *c, int argc, char **argv, GError **error);

/* cli-schedule.c */
extern const GOptionEntry sp_cli_retention_options[], sp_cli_schedule_create_options[],
    sp_cli_schedule_units_options[];
gboolean sp_cli_retention(int argc, char **argv, GError **error);
gboolean sp_cli_retention_dbus(SpDaemonClient *c, int argc, char **argv, GError **error);
gboolean sp_cli_schedule_create(int argc, char **argv, GError **error);
gboolean sp_cli_schedule_create_dbus(SpDaemonClient *c, int argc, char **argv, GError **error);
gboolean sp_cli_schedule_list(int argc, char **argv, GError **error);
gboolean sp_cli_schedule_list_dbus(SpDaemonClient *c, int argc, char **argv, GError **error);
gboolean sp_cli_schedule_remove(int argc, char **argv, GError **error);
gboolean sp_cli_schedule_remove_dbus(SpDaemonClient *c, int argc, char **argv, GError **error);
