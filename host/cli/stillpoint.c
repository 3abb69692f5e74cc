/* stillpoint: the command-line coordinator. Registers VMs, makes, lists and manages checkpoints
 * (the tree operations' commands are in cli-ops.c).
 *   stillpoint [--store PATH] [--json] vm add|list|remove|recover ...
 *   stillpoint [--store PATH] [--json] checkpoint create|list|delete|rename|export VM ... */
#include <gio/gio.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli-backup.h"
#include "cli-group.h"
#include "render.h"
#include "cli-schedule.h"
#include "daemon-client.h"
#include "stillpoint/backup.h"
#include "stillpoint/checkpoint-type.h"
#include "stillpoint/channel.h"
#include "stillpoint/coordinator.h"
#include "stillpoint/driver.h"
#include "stillpoint/libvirt.h"
#include "stillpoint/ops.h"
#include "stillpoint/present.h"
#include "stillpoint/qmp.h"
#include "stillpoint/store.h"
#include "cli.h"

Globals globals;

static const GOptionEntry global_entries[] = {
    {"store", 0, 0, G_OPTION_ARG_FILENAME, &globals.store_path,
     "Checkpoint store (default $" SP_STORE_ENV " or " SP_STORE_DEFAULT_PATH ")", "PATH"},
    {"json", 0, 0, G_OPTION_ARG_NONE, &globals.json, "Print the result as JSON", NULL},
    {"quiet", 'q', 0, G_OPTION_ARG_NONE, &globals.quiet, "Do not print progress", NULL},
    G_OPTION_ENTRY_NULL};

static gboolean known_group(const char *group);

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: stillpoint [--store PATH | --daemon] [--json] [-q] COMMAND ...\n"
            "       stillpoint --version\n"
            "\n"
            "Application-consistent checkpoints of virtual machines.\n"
            "\n"
            "Commands:\n"
            "  vm add NAME --qmp SOCKET [--agent SOCKET] [--overlay-dir DIR]\n"
            "         [--checkpoint-type TYPE]\n"
            "  vm add NAME --driver libvirt --domain D [--uri URI] [--overlay-dir DIR]\n"
            "  vm add NAME --driver hook --hook-command CMD [--hook-timeout S] [--agent SOCKET]\n"
            "         [--disk NAME=PATH[,serial=S][,format=F]]... [--qmp SOCKET]\n"
            "                                                    register a VM\n"
            "  vm list                                           list registered VMs\n"
            "  vm set NAME --checkpoint-type production|production-only|standard\n"
            "                                                    what create makes by default\n"
            "  vm remove NAME [--force]                          forget a VM (keeps images)\n"
            "  vm disks NAME                                     the VM's disks (QMP, libvirt)\n"
            "  vm recover NAME [--adopt-running]                 finish or roll back interrupted\n"
            "                                                    operations\n"
            "  checkpoint create VM [--name N]\n"
            "         [--type production|production-only|standard|crash]\n"
            "         [--on-quiesce-failure fail|crash|standard] make a checkpoint\n"
            "  checkpoint list VM                                show the checkpoint tree\n"
            "  checkpoint show VM CP                             one checkpoint in detail\n"
            "  checkpoint delete VM CP [--subtree]               merge a checkpoint away\n"
            "  checkpoint rename VM CP NEW-NAME                  rename (1-100 characters)\n"
            "  checkpoint export VM CP DIR [--format qcow2|raw]  standalone copy of its disks\n"
            "  checkpoint apply VM CP [--save-current NAME] [--force]\n"
            "                                                    revert the (stopped) VM to CP\n"
            "  checkpoint resume VM                              load a standard checkpoint's\n"
            "                                                    memory into QEMU -incoming defer\n"
            "  checkpoint create --group G [--name N]            one instant across a group's VMs\n"
            "  group create G VM... | group list | group remove G consistency groups\n"
            "  checkpoint retention VM --keep N                  merge away the oldest beyond N\n"
            "  schedule create VM [--on-calendar SPEC] [--keep N] [--unit-dir DIR]\n"
            "                                                    a systemd timer for checkpoints,\n"
            "                                                    enabled when systemd runs\n"
            "  schedule list [VM] | schedule remove VM           next/last run and its result;\n"
            "                                                    disable and delete\n"
            "  backup begin VM [--incremental]                   production checkpoint + read-only\n"
            "                                                    NBD export of every disk\n"
            "  backup end VM [--keep] [--failed]                 remove exports, merge back\n"
            "  backup status VM                                  the session (open or last)\n"
            "  hook pre VM [--incremental] | hook post VM [--status N]\n"
            "                                                    a backup job's pre/post script\n"
            "(CP is a checkpoint's name, or its id as #ID)\n"
            "\n"
            "Every command takes --help. The store is $" SP_STORE_ENV " or " SP_STORE_DEFAULT_PATH
            "\nunless --store is given.\n"
            "\n"
            "--daemon: go through stillpointd on the system bus (polkit decides who may do what;\n"
            "vm add|list|remove|disks|recover, checkpoint create [--group]|list|delete|rename|\n"
            "export|apply).\n"
            "Without --store or $" SP_STORE_ENV ", a user who is not root goes through it by itself\n"
            "when it runs; the results are the same as working on the store directly.\n");
}

volatile sig_atomic_t interrupted;

static void interrupt_cb(int sig)
{
    interrupted = sig;
}

/* While a checkpoint is being made, SIGINT/SIGTERM/SIGHUP are held until it is done or rolled
 * back: dying between freeze and thaw would leave a qemu-ga guest frozen. Every step has a
 * deadline, so this delays the exit by a bounded time. */
void defer_termination(void)
{
    struct sigaction sa = {.sa_handler = interrupt_cb, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

void progress_cb(const char *message, gpointer user_data)
{
    if (!globals.quiet)
        fprintf(stderr, "stillpoint: %s\n", message);
}

/* Parses a subcommand's options (plus the global ones). Leaves positional arguments in argv. */
gboolean parse_options(const char *params, const char *summary, const GOptionEntry *entries,
                              int *argc, char ***argv, GError **error)
{
    g_autoptr(GOptionContext) ctx = g_option_context_new(params);
    g_option_context_add_main_entries(ctx, global_entries, NULL);
    if (entries != NULL)
        g_option_context_add_main_entries(ctx, entries, NULL);
    g_option_context_set_summary(ctx, summary);
    return g_option_context_parse(ctx, argc, argv, error);
}

static SpStore *open_store(GError **error)
{
    return sp_store_open(sp_store_resolve_path(globals.store_path), error);
}

void print_json(SpJson *value)
{
    g_autofree char *text = sp_json_serialize(value, NULL);
    printf("%s\n", text != NULL ? text : "null");
}

/* ---- vm ---- */

static gboolean show_discovered_disks(const SpVm *vm, GError **error)
{
    g_autoptr(GPtrArray) disks = sp_vm_discover_disks(vm, error);
    gboolean libvirt = g_strcmp0(vm->driver, "libvirt") == 0; /* its nodes are its own */
    if (disks == NULL)
        return FALSE;
    for (guint i = 0; i < disks->len; i++) {
        SpDisk *d = g_ptr_array_index(disks, i);
        if (!globals.quiet)
            fprintf(stderr, "stillpoint:   disk %s: %s (%s%s%s%s%s)\n", d->name, d->image,
                    d->format, libvirt ? "" : ", node ", libvirt ? "" : d->node,
                    d->serial != NULL ? ", serial " : "", d->serial != NULL ? d->serial : "");
    }
    return TRUE;
}

static int cmd_vm_add(int argc, char **argv)
{
    g_autofree char *qmp = NULL, *agent = NULL, *driver = NULL, *hook = NULL, *overlay_dir = NULL;
    g_autofree char *domain = NULL, *uri = NULL, *checkpoint_type = NULL;
    g_auto(GStrv) disk_specs = NULL;
    g_autoptr(GPtrArray) disks = NULL;
    gint hook_timeout = 0;
    const GOptionEntry entries[] = {
        {"qmp", 0, 0, G_OPTION_ARG_FILENAME, &qmp, "The VM's QMP unix socket", "SOCKET"},
        {"agent", 0, 0, G_OPTION_ARG_FILENAME, &agent, "The VM's guest agent unix socket",
         "SOCKET"},
        {"driver", 0, 0, G_OPTION_ARG_STRING, &driver, "qemu (default), libvirt or hook",
         "DRIVER"},
        {"domain", 0, 0, G_OPTION_ARG_STRING, &domain, "libvirt driver: the domain's name",
         "NAME"},
        {"uri", 0, 0, G_OPTION_ARG_STRING, &uri,
         "libvirt driver: the connection URI, e.g. qemu+ssh://host/system (default: libvirt's)",
         "URI"},
        {"hook-command", 0, 0, G_OPTION_ARG_STRING, &hook,
         "hook driver: command run between freeze and thaw (and to delete)", "CMD"},
        {"hook-timeout", 0, 0, G_OPTION_ARG_INT, &hook_timeout,
         "hook driver: seconds the command may take (default 30)", "SECONDS"},
        {"disk", 0, 0, G_OPTION_ARG_STRING_ARRAY, &disk_specs,
         "hook driver: a disk the hook snapshots (repeatable; without --qmp the only way "
         "stillpoint knows the VM's disks)", "NAME=PATH[,serial=S][,format=F]"},
        {"overlay-dir", 0, 0, G_OPTION_ARG_FILENAME, &overlay_dir,
         "Directory for overlays (default: next to each disk's image)", "DIR"},
        {"checkpoint-type", 0, 0, G_OPTION_ARG_STRING, &checkpoint_type,
         "What checkpoint create makes without --type: production (the default), "
         "production-only or standard",
         "TYPE"},
        G_OPTION_ENTRY_NULL};
    g_autoptr(GError) error = NULL;
    g_autoptr(SpStore) store = NULL;
    SpVm vm = {0};
    int64_t id = 0;

    if (!parse_options("NAME", "Register a VM. Its disks are discovered from QMP, or from libvirt's domain XML; for the hook driver they may be given with --disk.", entries,
                       &argc, &argv, &error))
        goto fail;
    if (argc != 2) {
        g_set_error(&error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "vm add: expected one VM name (see --help)");
        goto fail;
    }
    if (driver == NULL)
        driver = g_strdup("qemu");
    if (overlay_dir != NULL) {
        char *absolute = g_canonicalize_filename(overlay_dir, NULL);
        g_free(overlay_dir);
        overlay_dir = absolute;
    }
    if ((disks = sp_vm_disks_parse((const char *const *)disk_specs, &error)) == NULL) {
        g_prefix_error(&error, "vm add: ");
        goto fail;
    }
    vm = (SpVm){.disks = disks,
                .name = argv[1],
                .qmp_socket = qmp != NULL ? qmp : (char *)"",
                .agent_socket = agent,
                .driver = driver,
                .hook_command = hook,
                .libvirt_uri = uri,
                .libvirt_domain = domain,
                .overlay_dir = overlay_dir,
                .checkpoint_type = checkpoint_type,
                .hook_timeout_ms = (int64_t)hook_timeout * 1000};
    if (!sp_vm_config_valid(&vm, &error)) {
        g_prefix_error(&error, "vm add: ");
        goto fail;
    }
    store = open_store(&error);
    if (store == NULL || !sp_store_vm_add(store, &vm, &id, &error))
        goto fail;
    progress_cb("registered the VM", NULL);
    if (qmp != NULL || domain != NULL || disks->len > 0) {
        g_autoptr(GError) local = NULL;
        if (!show_discovered_disks(&vm, &local))
            fprintf(stderr, "stillpoint: WARNING: VM '%s' registered, but its disks could not "
                            "be discovered now: %s\n",
                    argv[1], local->message);
    }
    {
        g_autoptr(SpJson) doc = sp_document_vm_added(argv[1], id);
        sp_cli_print_vm_added(doc, globals.json);
    }
    return 0;
fail:
    fprintf(stderr, "stillpoint: %s\n", error->message);
    return 1;
}

static int cmd_vm_set(int argc, char **argv)
{
    g_autofree char *checkpoint_type = NULL;
    const GOptionEntry entries[] = {
        {"checkpoint-type", 0, 0, G_OPTION_ARG_STRING, &checkpoint_type,
         "production (quiesce; standard when the guest cannot), production-only or standard",
         "TYPE"},
        G_OPTION_ENTRY_NULL};
    g_autoptr(GError) error = NULL;
    g_autoptr(SpStore) store = NULL;

    if (!parse_options("NAME", "Change a registered VM's settings (as Hyper-V's Set-VM).",
                       entries, &argc, &argv, &error))
        goto fail;
    if (argc != 2 || checkpoint_type == NULL) {
        g_set_error(&error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "vm set: expected one VM name and --checkpoint-type (see --help)");
        goto fail;
    }
    store = open_store(&error);
    if (store == NULL ||
        !sp_store_vm_set_checkpoint_type(store, argv[1], checkpoint_type, &error))
        goto fail;
    sp_cli_print_json_event(globals.json, "vm-set", "vm", argv[1], "checkpoint-type",
                            checkpoint_type, NULL);
    if (!globals.json && !globals.quiet)
        fprintf(stderr, "stillpoint: VM '%s' makes %s checkpoints by default\n", argv[1],
                checkpoint_type);
    return 0;
fail:
    fprintf(stderr, "stillpoint: %s\n", error->message);
    return 1;
}

static int cmd_vm_list(int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(SpStore) store = NULL;
    g_autoptr(GPtrArray) vms = NULL;

    if (!parse_options("", "List registered VMs.", NULL, &argc, &argv, &error))
        goto fail;
    store = open_store(&error);
    if (store == NULL || (vms = sp_store_vm_list(store, &error)) == NULL)
        goto fail;
    {
        g_autoptr(SpJson) doc = sp_document_vm_list(vms);
        sp_cli_print_vm_list(doc, globals.json);
    }
    return 0;
fail:
    fprintf(stderr, "stillpoint: %s\n", error->message);
    return 1;
}

static int cmd_vm_remove(int argc, char **argv)
{
    gboolean force = FALSE;
    const GOptionEntry entries[] = {
        {"force", 0, 0, G_OPTION_ARG_NONE, &force,
         "Also forget the VM's checkpoint records (image files are kept)", NULL},
        G_OPTION_ENTRY_NULL};
    g_autoptr(GError) error = NULL;
    g_autoptr(SpStore) store = NULL;
    g_autoptr(SpVmLock) lock = NULL;

    if (!parse_options("NAME", "Forget a VM. Image files are never deleted.", entries, &argc,
                       &argv, &error))
        goto fail;
    if (argc != 2) {
        g_set_error(&error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "vm remove: expected one VM name");
        goto fail;
    }
    store = open_store(&error);
    if (store == NULL || (lock = sp_vm_lock_acquire(store, argv[1], &error)) == NULL ||
        !sp_store_vm_remove(store, argv[1], force, &error))
        goto fail;
    sp_cli_print_json_event(globals.json, "vm-removed", "vm", argv[1], NULL);
    return 0;
fail:
    fprintf(stderr, "stillpoint: %s\n", error->message);
    return 1;
}

/* Opens the store, locks and loads the VM, and resolves interrupted operations. */
gboolean open_vm(const char *name, gboolean recover, SpStore **ret_store,
                        SpVmLock **ret_lock, SpVm **ret_vm, GError **error)
{
    g_autoptr(SpStore) store = open_store(error);
    g_autoptr(SpVmLock) lock = NULL;
    g_autoptr(SpVm) vm = NULL;
    if (store == NULL)
        return FALSE;
    if ((vm = sp_store_vm_get(store, name, error)) == NULL)
        return FALSE;
    if ((lock = sp_vm_lock_acquire(store, name, error)) == NULL)
        return FALSE;
    if (recover && !sp_coordinator_recover(store, vm, NULL, progress_cb, NULL, error))
        return FALSE;
    *ret_store = g_steal_pointer(&store);
    *ret_lock = g_steal_pointer(&lock);
    *ret_vm = g_steal_pointer(&vm);
    return TRUE;
}

/* --adopt-running: QEMU was started on a checkpoint's image (present.h). */
static gboolean adopt_running(SpStore *store, SpVm *vm, GError **error)
{
    SpOpReport report = {.progress = progress_cb};
    g_autoptr(GPtrArray) forgotten = NULL, kept = NULL;
    if (!sp_present_adopt(store, vm, &report, &forgotten, &kept, error))
        return FALSE;
    for (guint i = 0; i < forgotten->len && !globals.quiet; i++)
        fprintf(stderr, "stillpoint: forgot checkpoint '%s'\n", (char *)forgotten->pdata[i]);
    for (guint i = 0; i < kept->len && !globals.quiet; i++)
        fprintf(stderr, "stillpoint: kept %s (no checkpoint names it now; remove it when "
                        "you no longer need it)\n",
                (char *)kept->pdata[i]);
    return TRUE;
}

static int cmd_vm_recover(int argc, char **argv)
{
    gboolean adopt = FALSE;
    const GOptionEntry entries[] = {
        {"adopt-running", 0, 0, G_OPTION_ARG_NONE, &adopt,
         "QEMU was started on a checkpoint's image: keep what it runs on as the VM's present "
         "and forget that checkpoint and those below it (their files are kept)",
         NULL},
        G_OPTION_ENTRY_NULL};
    g_autoptr(GError) error = NULL;
    g_autoptr(SpStore) store = NULL;
    g_autoptr(SpVmLock) lock = NULL;
    g_autoptr(SpVm) vm = NULL;

    if (!parse_options("NAME", "Finish or roll back a VM's interrupted operations.", entries,
                       &argc, &argv, &error))
        goto fail;
    if (argc != 2) {
        g_set_error(&error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "vm recover: expected one VM name");
        goto fail;
    }
    if (!open_vm(argv[1], FALSE, &store, &lock, &vm, &error))
        goto fail;
    if (adopt && (!sp_coordinator_recover_journal(store, vm, NULL, progress_cb, NULL, &error) ||
                  !adopt_running(store, vm, &error)))
        goto fail;
    /* Also a backup session a crash left half-begun or half-ended (or whose exports are gone). */
    if (!sp_coordinator_recover(store, vm, NULL, progress_cb, NULL, &error) ||
        !sp_backup_recover(store, vm, progress_cb, NULL, &error))
        goto fail;
    sp_cli_print_json_event(globals.json, "recovered", "vm", argv[1], NULL);
    return 0;
fail:
    fprintf(stderr, "stillpoint: %s\n", error->message);
    return 1;
}

static int cmd_vm_disks(int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(SpStore) store = NULL;
    g_autoptr(SpVm) vm = NULL;
    g_autoptr(GPtrArray) disks = NULL;

    if (!parse_options("NAME", "Show the disks QMP (or libvirt) reports for a VM, and the image "
                               "each one writes to now.",
                       NULL, &argc, &argv, &error))
        goto fail;
    if (argc != 2) {
        g_set_error(&error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "vm disks: expected one VM name");
        goto fail;
    }
    store = open_store(&error);
    if (store == NULL || (vm = sp_store_vm_get(store, argv[1], &error)) == NULL ||
        (disks = sp_vm_discover_disks(vm, &error)) == NULL)
        goto fail;
    {
        g_autoptr(SpJson) doc = sp_document_vm_disks(disks);
        sp_cli_print_vm_disks(doc, globals.json);
    }
    return 0;
fail:
    fprintf(stderr, "stillpoint: %s\n", error->message);
    return 1;
}

/* ---- checkpoint ---- */


static int cmd_checkpoint_create(int argc, char **argv)
{
    g_autofree char *name = NULL, *type = NULL, *policy = NULL, *group = NULL;
    gboolean scheduled = FALSE;
    const GOptionEntry entries[] = {
        {"group", 0, 0, G_OPTION_ARG_STRING, &group,
         "Instead of one VM: every VM of a consistency group, at one instant", "GROUP"},
        {"name", 0, 0, G_OPTION_ARG_STRING, &name,
         "Checkpoint name, 1-100 characters (default \"VM (MM/DD/YYYY - hh:mm:ss)\")", "NAME"},
        {"type", 0, 0, G_OPTION_ARG_STRING, &type,
         "production (quiesce the guest; standard when it cannot), production-only, standard "
         "(save the VM's memory too) or crash (no quiescing); default: the VM's checkpoint type "
         "(vm set --checkpoint-type)",
         "TYPE"},
        {"on-quiesce-failure", 0, 0, G_OPTION_ARG_STRING, &policy,
         "production only: fail, crash or standard (the default) when the guest cannot quiesce",
         "POLICY"},
        {"scheduled", 0, 0, G_OPTION_ARG_NONE, &scheduled,
         "Made by a schedule (its service passes this): the schedule's retention may merge it",
         NULL},
        G_OPTION_ENTRY_NULL};
    g_autoptr(GError) error = NULL;
    g_autoptr(SpStore) store = NULL;
    g_autoptr(SpVmLock) lock = NULL;
    g_autoptr(SpVm) vm = NULL;
    g_autoptr(SpCheckpoint) cp = NULL;
    SpCreateOptions opts = {0};

    if (!parse_options("VM", "Make a checkpoint: freeze the guest, snapshot every disk in one "
                             "transaction, thaw.",
                       entries, &argc, &argv, &error))
        goto fail;
    if (group != NULL && argc == 1 && type == NULL && policy == NULL)
        return sp_cli_group_checkpoint(group, name);
    if (argc != 2 || group != NULL) {
        g_set_error(&error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "checkpoint create: expected one VM name, or --group GROUP (production "
                    "checkpoints only) without one (see --help)");
        goto fail;
    }
    if (name != NULL && !sp_checkpoint_name_valid(name, &error))
        goto fail;
    if (!open_vm(argv[1], FALSE, &store, &lock, &vm, &error) ||
        !sp_checkpoint_type_resolve(vm, type, policy, &opts, &error))
        goto fail;
    opts.name = name;
    opts.origin = scheduled ? SP_ORIGIN_SCHEDULE : SP_ORIGIN_USER;
    defer_termination();
    cp = sp_coordinator_create(store, vm, &opts, progress_cb, NULL, &error);
    if (interrupted)
        fprintf(stderr, "stillpoint: interrupted (signal %d): finished the operation first\n",
                (int)interrupted);
    if (cp == NULL)
        goto fail;
    {
        g_autoptr(SpJson) doc = sp_document_checkpoint(cp, cp->id);
        sp_cli_print_checkpoint_created(vm->name, doc, globals.json);
    }
    return 0;
fail:
    fprintf(stderr, "stillpoint: %s\n", error->message);
    return 1;
}

static int cmd_checkpoint_list(int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(SpStore) store = NULL;
    g_autoptr(SpVmLock) lock = NULL;
    g_autoptr(SpVm) vm = NULL;
    g_autoptr(GPtrArray) cps = NULL;
    g_autoptr(GError) recover_error = NULL;

    if (!parse_options("VM", "Show a VM's checkpoints as a tree.", NULL, &argc, &argv, &error))
        goto fail;
    if (argc != 2) {
        g_set_error(&error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "checkpoint list: expected one VM name");
        goto fail;
    }
    store = open_store(&error);
    if (store == NULL || (vm = sp_store_vm_get(store, argv[1], &error)) == NULL)
        goto fail;
    /* Recovery needs the VM's lock; while another process works on the VM, its operation is not
     * interrupted but in progress, so list what is recorded and leave it alone. */
    lock = sp_vm_lock_acquire(store, argv[1], &recover_error);
    if (lock != NULL) {
        /* Listing must work with the VM off: an unresolvable recovery is only a warning here. */
        if (!sp_coordinator_recover(store, vm, NULL, progress_cb, NULL, &recover_error))
            fprintf(stderr, "stillpoint: WARNING: %s\n", recover_error->message);
    } else if (!globals.quiet) {
        fprintf(stderr, "stillpoint: note: %s\n", recover_error->message);
    }
    sp_vm_free(g_steal_pointer(&vm));
    if ((vm = sp_store_vm_get(store, argv[1], &error)) == NULL)
        goto fail;
    if ((cps = sp_store_checkpoint_list(store, vm->id, &error)) == NULL)
        goto fail;
    {
        g_autoptr(SpJson) doc = sp_document_checkpoint_list(vm, cps);
        sp_cli_print_checkpoint_list(doc, globals.json);
    }
    return 0;
fail:
    fprintf(stderr, "stillpoint: %s\n", error->message);
    return 1;
}

static int cmd_checkpoint_show(int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(SpStore) store = NULL;
    g_autoptr(SpVm) vm = NULL;
    g_autoptr(SpCheckpoint) cp = NULL;
    g_autoptr(GPtrArray) cps = NULL;

    if (!parse_options("VM CP", "Show one checkpoint: its type and why, consistency, who made "
                                "it, its parent and children, and each disk's images and sizes.",
                       NULL, &argc, &argv, &error))
        goto fail;
    if (argc != 3) {
        g_set_error(&error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "checkpoint show: expected a VM and a checkpoint (name or #ID)");
        goto fail;
    }
    store = open_store(&error);
    if (store == NULL || (vm = sp_store_vm_get(store, argv[1], &error)) == NULL ||
        (cp = sp_op_find_checkpoint(store, vm, argv[2], &error)) == NULL ||
        (cps = sp_store_checkpoint_list(store, vm->id, &error)) == NULL)
        goto fail;
    {
        g_autoptr(SpJson) doc = sp_document_checkpoint_show(vm, cps, cp);
        sp_cli_print_checkpoint_show(doc, globals.json);
    }
    return 0;
fail:
    fprintf(stderr, "stillpoint: %s\n", error->message);
    return 1;
}

typedef struct {
    const char *group;
    const char *name;
    int (*fn)(int argc, char **argv);
} Command;

static const Command commands[] = {
    {"vm", "add", cmd_vm_add},
    {"vm", "list", cmd_vm_list},
    {"vm", "set", cmd_vm_set},
    {"vm", "remove", cmd_vm_remove},
    {"vm", "recover", cmd_vm_recover},
    {"vm", "disks", cmd_vm_disks},
    {"checkpoint", "create", cmd_checkpoint_create},
    {"checkpoint", "list", cmd_checkpoint_list},
    {"checkpoint", "show", cmd_checkpoint_show},
    {"checkpoint", "delete", cmd_checkpoint_delete},
    {"checkpoint", "rename", cmd_checkpoint_rename},
    {"checkpoint", "export", cmd_checkpoint_export},
    {"checkpoint", "apply", cmd_checkpoint_apply},
    {"checkpoint", "resume", cmd_checkpoint_resume},
    {"backup", "begin", sp_cli_backup_begin},
    {"backup", "end", sp_cli_backup_end},
    {"backup", "status", sp_cli_backup_status},
    {"hook", "pre", sp_cli_hook_pre},
    {"hook", "post", sp_cli_hook_post},
    {"group", "create", sp_cli_group_create},
    {"group", "list", sp_cli_group_list},
    {"group", "remove", sp_cli_group_remove},
    {"checkpoint", "retention", sp_cli_retention},
    {"schedule", "create", sp_cli_schedule_create},
    {"schedule", "list", sp_cli_schedule_list},
    {"schedule", "remove", sp_cli_schedule_remove},
};

static gboolean known_group(const char *group)
{
    for (guint i = 0; i < G_N_ELEMENTS(commands); i++)
        if (g_strcmp0(commands[i].group, group) == 0)
            return TRUE;
    return FALSE;
}

int main(int argc, char **argv)
{
    g_autoptr(GPtrArray) rest = g_ptr_array_new();
    const char *group = NULL, *name = NULL;
    g_autofree char *prog = NULL;
    int status;

    setlocale(LC_ALL, "");
    /* Through stillpointd when asked (--daemon), or when not root and the daemon runs. */
    if (sp_daemon_client_try(argc, argv, &status))
        return status;
    /* The group and command are the first two non-option words; everything else goes to the
     * command's own option parser (so --store/--json may come anywhere). */
    g_ptr_array_add(rest, argv[0]);
    for (int i = 1; i < argc; i++) {
        gboolean takes_value = g_strcmp0(argv[i], "--store") == 0;
        if (g_strcmp0(argv[i], "--daemon") == 0)
            continue; /* here only with --help: the help is the same */
        if (argv[i][0] != '-' && group == NULL) {
            group = argv[i];
        } else if (argv[i][0] != '-' && name == NULL) {
            name = argv[i];
        } else {
            g_ptr_array_add(rest, argv[i]);
            if (takes_value && i + 1 < argc)
                g_ptr_array_add(rest, argv[++i]);
        }
    }
    if (group == NULL && rest->len == 2 && g_strcmp0(rest->pdata[1], "--version") == 0) {
        printf("stillpoint %s\n", SP_VERSION);
        return 0;
    }
    for (guint i = 0; i < G_N_ELEMENTS(commands); i++) {
        if (g_strcmp0(commands[i].group, group) == 0 && g_strcmp0(commands[i].name, name) == 0) {
            prog = g_strdup_printf("stillpoint %s %s", group, name);
            g_set_prgname(prog);
            g_ptr_array_add(rest, NULL);
            return commands[i].fn((int)rest->len - 1, (char **)rest->pdata);
        }
    }
    for (guint i = 1; i < rest->len; i++) {
        const char *a = g_ptr_array_index(rest, i);
        /* Help for all, or for a command group ("stillpoint vm --help"); not for a typo. */
        if ((g_strcmp0(a, "--help") == 0 || g_strcmp0(a, "-h") == 0) &&
            (group == NULL || (name == NULL && known_group(group)))) {
            usage(stdout);
            return 0;
        }
    }
    if (group == NULL)
        fprintf(stderr, "stillpoint: no command given\n\n");
    else
        fprintf(stderr, "stillpoint: unknown command '%s%s%s'\n\n", group, name ? " " : "",
                name ? name : "");
    usage(stderr);
    return 2;
}
