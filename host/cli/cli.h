/* What the stillpoint CLI's files share: the global options, option parsing, output, and opening
 * a VM (store, lock, recovery). stillpoint.c has the VM commands, create and list; cli-ops.c
 * the tree operations (delete, rename, export, apply, resume). */
#pragma once
#include <gio/gio.h>
#include <signal.h>

#include "stillpoint/channel.h"
#include "stillpoint/store.h"
#include "render.h"

typedef struct {
    char *store_path;
    gboolean json;
    gboolean quiet;
} Globals;

extern Globals globals;
extern volatile sig_atomic_t interrupted;

/* Holds SIGINT/SIGTERM/SIGHUP until the operation is done or rolled back. */
void defer_termination(void);
void progress_cb(const char *message, gpointer user_data);
/* Parses a subcommand's options (plus the global ones); positional arguments stay in argv. */
gboolean parse_options(const char *params, const char *summary, const GOptionEntry *entries,
                       int *argc, char ***argv, GError **error);
void print_json(SpJson *value);
/* Opens the store, locks and loads the VM, and (recover) resolves interrupted operations. */
gboolean open_vm(const char *name, gboolean recover, SpStore **ret_store, SpVmLock **ret_lock,
                 SpVm **ret_vm, GError **error);

int cmd_checkpoint_delete(int argc, char **argv);
int cmd_checkpoint_rename(int argc, char **argv);
int cmd_checkpoint_export(int argc, char **argv);
int cmd_checkpoint_apply(int argc, char **argv);
int cmd_checkpoint_resume(int argc, char **argv);
