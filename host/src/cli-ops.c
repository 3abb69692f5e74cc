/* The stillpoint CLI's tree operations: checkpoint delete, rename, export, apply and resume. The
 * work is in the library (op-*.c); here are options, progress output and results. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "stillpoint/ops.h"

/* A bar on a terminal, a JSON line per change with --json, nothing otherwise. */
static void percent_cb(const char *disk, double percent, gpointer user_data)
{
    static int last = -1;
    static char *last_disk;
    int pct = (int)percent;
    if (pct == last && g_strcmp0(disk, last_disk) == 0)
        return;
    last = pct;
    if (g_strcmp0(disk, last_disk) != 0) {
        g_free(last_disk);
        last_disk = g_strdup(disk);
    }
    if (globals.json) {
        g_autoptr(SpJson) o = sp_json_new_object();
        sp_json_object_set_string(o, "event", "progress");
        sp_json_object_set_string(o, "disk", disk);
        sp_json_object_set_int(o, "percent", pct);
        print_json(o);
        fflush(stdout);
    } else if (!globals.quiet && isatty(STDERR_FILENO)) {
        char bar[41];
        memset(bar, '#', (size_t)(pct * 40 / 100));
        memset(bar + pct * 40 / 100, ' ', (size_t)(40 - pct * 40 / 100));
        bar[40] = '\0';
        fprintf(stderr, "\r%-8s [%s] %3d%%%s", disk, bar, pct, pct >= 100 ? "\n" : "");
    }
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
    if (globals.json) {
        g_autoptr(SpJson) o = sp_json_new_object();
        sp_json_object_set_string(o, "event", "deleted");
        sp_json_object_set_string(o, "checkpoint", argv[2]);
        sp_json_object_set_bool(o, "subtree", subtree);
        print_json(o);
    } else {
        printf("deleted checkpoint '%s'%s of VM '%s'\n", argv[2], subtree ? " and its subtree" : "",
               vm->name);
    }
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
    if (globals.json) {
        g_autoptr(SpJson) o = sp_json_new_object();
        sp_json_object_set_string(o, "event", "exported");
        sp_json_object_set_string(o, "manifest", manifest);
        print_json(o);
    } else {
        printf("exported checkpoint '%s' of VM '%s': %s\n", argv[2], vm->name, manifest);
    }
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
    g_autoptr(GPtrArray) cps = NULL;
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
    sp_vm_free(g_steal_pointer(&vm));
    if ((vm = sp_store_vm_get(store, argv[1], &error)) == NULL ||
        (cps = sp_store_checkpoint_list(store, vm->id, &error)) == NULL)
        goto fail;
    for (guint i = 0; i < cps->len; i++) {
        SpCheckpoint *cp = g_ptr_array_index(cps, i);
        if (cp->id != vm->current)
            continue;
        if (globals.json) {
            g_autoptr(SpJson) out = checkpoint_to_json(cp, vm->current);
            SpJson *links = sp_json_new_object();
            for (guint j = 0; j < cp->disks->len; j++) {
                SpCheckpointDisk *d = g_ptr_array_index(cp->disks, j);
                g_autofree char *link = sp_op_disk_link(store, vm->name, d->disk);
                sp_json_object_set_string(links, d->disk, link);
            }
            sp_json_object_set(out, "links", links);
            print_json(out);
        } else {
            printf("VM '%s' is at checkpoint '%s'; start it from:\n", vm->name, cp->name);
            for (guint j = 0; j < cp->disks->len; j++) {
                SpCheckpointDisk *d = g_ptr_array_index(cp->disks, j);
                g_autofree char *link = sp_op_disk_link(store, vm->name, d->disk);
                printf("  %s: %s\n", d->disk, link);
            }
            if (cp->state != NULL)
                printf("It is a standard checkpoint: start QEMU with the same options plus "
                       "'-incoming defer', then run 'stillpoint checkpoint resume %s' to "
                       "continue from its saved memory.\n",
                       vm->name);
        }
    }
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

