/* The stillpoint CLI's backup commands: backup sessions for tools that read disks, and the same
 * as a backup job's pre/post script (hook pre|post: exit status 0 or 1, KEY=VALUE on stdout). */
#include "cli-backup.h"

#include <gio/gio.h>
#include <stdio.h>

#include "stillpoint/backup.h"
#include "stillpoint/store.h"

typedef struct {
    char *store_path;
    gboolean json;
    gboolean quiet;
} Globals;

static Globals globals;

static const GOptionEntry global_entries[] = {
    {"store", 0, 0, G_OPTION_ARG_FILENAME, &globals.store_path,
     "Checkpoint store (default $" SP_STORE_ENV " or " SP_STORE_DEFAULT_PATH ")", "PATH"},
    {"json", 0, 0, G_OPTION_ARG_NONE, &globals.json, "Print the result as JSON", NULL},
    {"quiet", 'q', 0, G_OPTION_ARG_NONE, &globals.quiet, "Do not print progress", NULL},
    G_OPTION_ENTRY_NULL};

static void progress_cb(const char *message, gpointer user_data)
{
    if (!globals.quiet)
        fprintf(stderr, "stillpoint: %s\n", message);
}

static gboolean parse(const char *summary, const GOptionEntry *entries, int *argc, char ***argv,
                      GError **error)
{
    g_autoptr(GOptionContext) ctx = g_option_context_new("VM");
    g_option_context_add_main_entries(ctx, global_entries, NULL);
    if (entries != NULL)
        g_option_context_add_main_entries(ctx, entries, NULL);
    g_option_context_set_summary(ctx, summary);
    if (!g_option_context_parse(ctx, argc, argv, error))
        return FALSE;
    if (*argc != 2) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "%s: expected one VM name (see --help)", g_get_prgname());
        return FALSE;
    }
    return TRUE;
}

/* Store, VM and its lock: the session's steps run under the same lock as every other operation. */
static gboolean open_vm(const char *name, SpStore **ret_store, SpVmLock **ret_lock, SpVm **ret_vm,
                        GError **error)
{
    g_autoptr(SpStore) store = sp_store_open(sp_store_resolve_path(globals.store_path), error);
    g_autoptr(SpVmLock) lock = NULL;
    g_autoptr(SpVm) vm = NULL;
    if (store == NULL || (vm = sp_store_vm_get(store, name, error)) == NULL ||
        (lock = sp_vm_lock_acquire(store, name, error)) == NULL)
        return FALSE;
    *ret_store = g_steal_pointer(&store);
    *ret_lock = g_steal_pointer(&lock);
    *ret_vm = g_steal_pointer(&vm);
    return TRUE;
}

static void print_json(const SpJson *value)
{
    g_autofree char *text = sp_json_serialize(value, NULL);
    printf("%s\n", text != NULL ? text : "null");
}

static void print_session_text(const SpJson *s)
{
    const SpJson *disks = sp_json_object_get(s, "disks");
    const SpJson *cp = sp_json_object_get(s, "checkpoint");
    printf("backup session of VM '%s' open: checkpoint '%s' (%s-consistent), %s\n",
           sp_json_object_get_string(s, "vm"), sp_json_object_get_string(cp, "name"),
           sp_json_object_get_string(s, "consistency"),
           sp_json_object_get_bool(s, "incremental", false) ? "incremental" : "full");
    for (size_t i = 0; i < sp_json_array_len(disks); i++) {
        const SpJson *d = sp_json_array_get(disks, i);
        const char *image = sp_json_object_get_string(d, "image");
        /* A libvirt domain's session has no image file: its point in time is the NBD export. */
        printf("  %s: %s\n      %s\n", sp_json_object_get_string(d, "disk"),
               image != NULL ? image : "(read it over NBD)", sp_json_object_get_string(d, "nbd-uri"));
        if (sp_json_object_get(d, "changed") != NULL)
            printf("      changed: %" G_GINT64_FORMAT " bytes in %zu extent(s)\n",
                   sp_json_object_get_int(d, "changed-bytes", 0),
                   sp_json_array_len(sp_json_object_get(d, "changed")));
    }
}

static SpJson *begin(const char *vm_name, gboolean incremental, GError **error)
{
    g_autoptr(SpStore) store = NULL;
    g_autoptr(SpVmLock) lock = NULL;
    g_autoptr(SpVm) vm = NULL;
    if (!open_vm(vm_name, &store, &lock, &vm, error))
        return NULL;
    return sp_backup_begin(store, vm, incremental, progress_cb, NULL, error);
}

static gboolean end(const char *vm_name, gboolean keep, gboolean aborted, GError **error)
{
    g_autoptr(SpStore) store = NULL;
    g_autoptr(SpVmLock) lock = NULL;
    g_autoptr(SpVm) vm = NULL;
    if (!open_vm(vm_name, &store, &lock, &vm, error))
        return FALSE;
    return sp_backup_end(store, vm, keep, aborted, progress_cb, NULL, error);
}

int sp_cli_backup_begin(int argc, char **argv)
{
    gboolean incremental = FALSE;
    const GOptionEntry entries[] = {
        {"incremental", 0, 0, G_OPTION_ARG_NONE, &incremental,
         "List the extents changed since the last backup and export its dirty bitmap", NULL},
        G_OPTION_ENTRY_NULL};
    g_autoptr(GError) error = NULL;
    g_autoptr(SpJson) session = NULL;

    if (!parse("Begin a backup session: a production checkpoint, and a read-only view of every "
               "disk at that instant (image paths, NBD exports) while the VM runs on.",
               entries, &argc, &argv, &error) ||
        (session = begin(argv[1], incremental, &error)) == NULL) {
        fprintf(stderr, "stillpoint: %s\n", error->message);
        return 1;
    }
    if (globals.json)
        print_json(session);
    else
        print_session_text(session);
    return 0;
}

int sp_cli_backup_end(int argc, char **argv)
{
    gboolean keep = FALSE, aborted = FALSE;
    const GOptionEntry entries[] = {
        {"keep", 0, 0, G_OPTION_ARG_NONE, &keep,
         "Keep the session's checkpoint instead of merging it back", NULL},
        {"failed", 0, 0, G_OPTION_ARG_NONE, &aborted,
         "The backup did not complete: the next incremental starts from the previous one", NULL},
        G_OPTION_ENTRY_NULL};
    g_autoptr(GError) error = NULL;

    if (!parse("End the VM's backup session: remove the exports, merge the checkpoint back.",
               entries, &argc, &argv, &error) ||
        !end(argv[1], keep, aborted, &error)) {
        fprintf(stderr, "stillpoint: %s\n", error->message);
        return 1;
    }
    if (!globals.quiet)
        fprintf(stderr, "stillpoint: backup session of VM '%s' ended\n", argv[1]);
    return 0;
}

int sp_cli_backup_status(int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(SpStore) store = NULL;
    g_autoptr(SpVm) vm = NULL;
    g_autoptr(SpJson) session = NULL;

    if (!parse("Show the VM's backup session (its journal), open or last closed.", NULL, &argc,
               &argv, &error) ||
        (store = sp_store_open(sp_store_resolve_path(globals.store_path), &error)) == NULL ||
        (vm = sp_store_vm_get(store, argv[1], &error)) == NULL)
        goto fail;
    session = sp_backup_status(store, vm, &error);
    if (session == NULL && error != NULL)
        goto fail;
    if (session == NULL)
        printf(globals.json ? "null\n" : "VM '%s' never had a backup session\n", argv[1]);
    else if (globals.json)
        print_json(session);
    else
        printf("VM '%s': backup session %s\n", argv[1],
               sp_json_object_get_string(session, "state"));
    return 0;
fail:
    fprintf(stderr, "stillpoint: %s\n", error->message);
    return 1;
}

/* Prints a KEY=VALUE line a shell can eval (values quoted). */
static void print_var(const char *key, const char *value)
{
    g_autofree char *quoted = g_shell_quote(value != NULL ? value : "");
    printf("%s=%s\n", key, quoted);
}

/* A backup job's pre script: begin, then tell the job where to read as shell assignments. */
int sp_cli_hook_pre(int argc, char **argv)
{
    gboolean incremental = FALSE;
    const GOptionEntry entries[] = {
        {"incremental", 0, 0, G_OPTION_ARG_NONE, &incremental,
         "Begin an incremental session (see backup begin)", NULL},
        G_OPTION_ENTRY_NULL};
    g_autoptr(GError) error = NULL;
    g_autoptr(SpJson) s = NULL;
    const SpJson *disks;
    g_autoptr(GString) names = g_string_new(NULL);

    if (!parse("Backup job pre script: begin a backup session; prints STILLPOINT_* shell "
               "assignments; exit status 0 = go ahead, 1 = abort the job.",
               entries, &argc, &argv, &error) ||
        (s = begin(argv[1], incremental, &error)) == NULL) {
        fprintf(stderr, "stillpoint hook pre: FAILED: %s\n", error->message);
        return 1;
    }
    if (globals.json) {
        print_json(s);
        return 0;
    }
    disks = sp_json_object_get(s, "disks");
    print_var("STILLPOINT_VM", argv[1]);
    print_var("STILLPOINT_CHECKPOINT",
              sp_json_object_get_string(sp_json_object_get(s, "checkpoint"), "name"));
    print_var("STILLPOINT_CONSISTENCY", sp_json_object_get_string(s, "consistency"));
    print_var("STILLPOINT_NBD_SOCKET",
              sp_json_object_get_string(sp_json_object_get(s, "nbd"), "socket"));
    for (size_t i = 0; i < sp_json_array_len(disks); i++) {
        const SpJson *d = sp_json_array_get(disks, i);
        g_autofree char *key = g_strdup(sp_json_object_get_string(d, "disk"));
        g_autofree char *k_img = NULL, *k_uri = NULL;
        g_strcanon(key, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", '_');
        k_img = g_strdup_printf("STILLPOINT_DISK_%s_IMAGE", key);
        k_uri = g_strdup_printf("STILLPOINT_DISK_%s_NBD", key);
        print_var(k_img, sp_json_object_get_string(d, "image"));
        print_var(k_uri, sp_json_object_get_string(d, "nbd-uri"));
        g_string_append_printf(names, "%s%s", i ? " " : "", key);
    }
    print_var("STILLPOINT_DISKS", names->str);
    if (!globals.quiet)
        fprintf(stderr, "stillpoint hook pre: OK: VM '%s' is ready to back up (%s-consistent)\n",
                argv[1], sp_json_object_get_string(s, "consistency"));
    return 0;
}

/* A backup job's post script: end the session; the job's own status decides whether the next
 * incremental starts from this backup (--status 0) or from the previous one. */
int sp_cli_hook_post(int argc, char **argv)
{
    int status = 0;
    const GOptionEntry entries[] = {
        {"status", 0, 0, G_OPTION_ARG_INT, &status,
         "The backup job's exit status (non-zero: the backup failed)", "N"},
        G_OPTION_ENTRY_NULL};
    g_autoptr(GError) error = NULL;

    if (!parse("Backup job post script: end the backup session (always; the job's --status says "
               "whether the backup counts as the base of the next incremental).",
               entries, &argc, &argv, &error) ||
        !end(argv[1], FALSE, status != 0, &error)) {
        fprintf(stderr, "stillpoint hook post: FAILED: %s\n", error->message);
        return 1;
    }
    if (!globals.quiet)
        fprintf(stderr, "stillpoint hook post: OK: backup session of VM '%s' ended (%s)\n",
                argv[1],
                status != 0 ? "backup failed: the next incremental starts from the previous backup"
                            : "backup complete");
    return 0;
}
