/* The stillpoint CLI's tree operations: checkpoint delete, rename, export, apply and resume. The
 * work is in the library (op-*.c); here are options and progress output. What they print on
 * stdout is rendered by render.c, as through stillpointd. */
#include <stdio.h>

#include "cli.h"
#include "stillpoint/ops.h"

/* A bar on a terminal, a JSON line per change with --json, nothing otherwise (render.c). */
static void percent_cb(const char *disk, double percent, gpointer user_data)
{
    sp_cli_print_percent(disk, percent, globals.json, globals.quiet);
}

static gboolean expect_args(int argc, int n, const char *what, GError **error)
{
    if (argc == n)
        return TRUE;
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "checkpoint %s: expected %s",
                what, n == 3 ? "VM CP" : n == 4 ? "VM CP ARG" : "arguments");
    return FALSE;
}

int cmd_checkpoint_delete(int argc, char **argv)
{
    gboolean subtree = FALSE;
    const GOptionEntry entries[] = {
        {"subtree", 0, 0, G_OPTION_ARG_NONE, &subtree,
         "Also delete every checkpoint below it", NULL},
        G_OPTION_ENTRY_NULL};
    g_autoptr(GError) error = NULL;
    g_autoptr(SpStore) store = NULL;
    g_autoptr(SpVmLock) lock = NULL;
    g_autoptr(SpVm) vm = NULL;
    SpOpReport report = {.progress = progress_cb, .percent = percent_cb};

    if (!parse_options("VM CP", "Delete a checkpoint by merging it into its neighbour: the VM's "
                                "present and the other checkpoints keep all their data. Live "
                                "when the VM runs, offline otherwise.",
                       entries, &argc, &argv, &error) ||
        !expect_args(argc, 3, "delete", &error) ||
        !open_vm(argv[1], TRUE, &store, &lock, &vm, &error))
        goto fail;
    defer_termination();
    if (!sp_op_delete(store, vm, argv[2], subtree, &report, &error))
        goto fail;
    sp_cli_print_checkpoint_deleted(vm->name, argv[2], subtree, globals.json);
    return 0;
fail:
    fprintf(stderr, "stillpoint: %s\n", error->message);
    return 1;
}

int cmd_checkpoint_rename(int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(SpStore) store = NULL;
    g_autoptr(SpVmLock) lock = NULL;
    g_autoptr(SpVm) vm = NULL;

    if (!parse_options("VM CP NEW-NAME", "Rename a checkpoint: 1-100 characters, no control "
                                         "characters, unique among the VM's checkpoints.",
                       NULL, &argc, &argv, &error) ||
        !expect_args(argc, 4, "rename", &error) ||
        !open_vm(argv[1], FALSE, &store, &lock, &vm, &error) ||
        !sp_op_rename(store, vm, argv[2], argv[3], &error))
        goto fail;
    sp_cli_print_json_event(globals.json, "renamed", "vm", vm->name, "checkpoint", argv[2],
                            "name", argv[3], NULL);
    return 0;
fail:
    fprintf(stderr, "stillpoint: %s\n", error->message);
    return 1;
}

int cmd_checkpoint_export(int argc, char **argv)
{
    g_autofree char *format = NULL, *manifest = NULL;
    const GOptionEntry entries[] = {
        {"format", 0, 0, G_OPTION_ARG_STRING, &format, "qcow2 (default) or raw", "FORMAT"},
        G_OPTION_ENTRY_NULL};
    g_autoptr(GError) error = NULL;
    g_autoptr(SpStore) store = NULL;
    g_autoptr(SpVmLock) lock = NULL;
    g_autoptr(SpVm) vm = NULL;
    SpOpReport report = {.progress = progress_cb, .percent = percent_cb};

    if (!parse_options("VM CP DIR", "Write a standalone, flattened copy of every disk at the "
                                    "checkpoint, and manifest.json, into DIR. Works while the "
                                    "VM runs.",
                       entries, &argc, &argv, &error) ||
        !expect_args(argc, 4, "export", &error) ||
        !open_vm(argv[1], TRUE, &store, &lock, &vm, &error))
        goto fail;
    defer_termination();
    if (!sp_op_export(store, vm, argv[2], argv[3], format, &report, &manifest, &error))
        goto fail;
    sp_cli_print_checkpoint_exported(vm->name, argv[2], manifest, globals.json);
    return 0;
fail:
    fprintf(stderr, "stillpoint: %s\n", error->message);
    return 1;
}

int cmd_checkpoint_apply(int argc, char **argv)
{
    g_autofree char *save = NULL;
    gboolean force = FALSE;
    const GOptionEntry entries[] = {
        {"save-current", 0, 0, G_OPTION_ARG_STRING, &save,
         "First keep the present as a checkpoint with this name", "NAME"},
        {"force", 0, 0, G_OPTION_ARG_NONE, &force,
         "Stop a running VM first (QMP quit: like pulling the plug)", NULL},
        G_OPTION_ENTRY_NULL};
    g_autoptr(GError) error = NULL;
    g_autoptr(SpStore) store = NULL;
    g_autoptr(SpVmLock) lock = NULL;
    g_autoptr(SpVm) vm = NULL;
    g_autoptr(SpJson) doc = NULL;
    SpOpReport report = {.progress = progress_cb};

    if (!parse_options("VM CP", "Revert the VM to a checkpoint. The VM must be off (or --force). "
                                "Each disk gets a new overlay on the checkpoint's image, and the "
                                "stable path <store dir>/vms/VM/DISK.qcow2 is re-pointed to it: "
                                "start the VM from those paths.",
                       entries, &argc, &argv, &error) ||
        !expect_args(argc, 3, "apply", &error) ||
        !open_vm(argv[1], TRUE, &store, &lock, &vm, &error))
        goto fail;
    defer_termination();
    if (!sp_op_apply(store, vm, argv[2], save, force, &report, &error))
        goto fail;
    if ((doc = sp_document_checkpoint_applied(store, vm->name, &error)) == NULL)
        goto fail;
    sp_cli_print_checkpoint_applied(vm->name, doc, globals.json);
    return 0;
fail:
    fprintf(stderr, "stillpoint: %s\n", error->message);
    return 1;
}

int cmd_checkpoint_resume(int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(SpStore) store = NULL;
    g_autoptr(SpVmLock) lock = NULL;
    g_autoptr(SpVm) vm = NULL;
    SpOpReport report = {.progress = progress_cb};

    if (!parse_options("VM", "After applying a standard checkpoint: load its saved device and "
                             "memory state into the VM's QEMU, started with '-incoming defer' "
                             "from the stable disk paths, and run it.",
                       NULL, &argc, &argv, &error) ||
        !expect_args(argc, 2, "resume", &error) ||
        !open_vm(argv[1], TRUE, &store, &lock, &vm, &error) ||
        !sp_op_resume(store, vm, &report, &error))
        goto fail;
    printf("VM '%s' runs on from its standard checkpoint\n", vm->name);
    return 0;
fail:
    fprintf(stderr, "stillpoint: %s\n", error->message);
    return 1;
}

