/* The stillpoint CLI's VM commands: vm add, list, set, remove, recover and disks, directly and
 * (except set) through stillpointd. */
#include <stdio.h>

#include "cli.h"
#include "stillpoint/backup.h"
#include "stillpoint/coordinator.h"
#include "stillpoint/driver.h"
#include "stillpoint/present.h"

/* A local command's document (taken), printed as print shows the daemon's answer. */
static gboolean print_document(SpJson *doc, void (*print)(const SpJson *doc, gboolean json))
{
    g_autoptr(SpJson) owned = doc;
    print(owned, sp_cli_globals.json);
    return TRUE;
}

/* ---- vm add ---- */

static struct {
    char *qmp, *agent, *driver, *hook, *overlay_dir, *domain, *uri, *checkpoint_type;
    char **disks;
    gint hook_timeout;
} add;

const GOptionEntry sp_cli_vm_add_options[] = {
    {"qmp", 0, 0, G_OPTION_ARG_FILENAME, &add.qmp, "The VM's QMP unix socket", "SOCKET"},
    {"agent", 0, 0, G_OPTION_ARG_FILENAME, &add.agent, "The VM's guest agent unix socket",
     "SOCKET"},
    {"driver", 0, 0, G_OPTION_ARG_STRING, &add.driver, "qemu (default), libvirt or hook",
     "DRIVER"},
    {"domain", 0, 0, G_OPTION_ARG_STRING, &add.domain, "libvirt driver: the domain's name",
     "NAME"},
    {"uri", 0, 0, G_OPTION_ARG_STRING, &add.uri,
     "libvirt driver: the connection URI, e.g. qemu+ssh://host/system (default: libvirt's)",
     "URI"},
    {"hook-command", 0, 0, G_OPTION_ARG_STRING, &add.hook,
     "hook driver: command run between freeze and thaw (and to delete)", "CMD"},
    {"hook-timeout", 0, 0, G_OPTION_ARG_INT, &add.hook_timeout,
     "hook driver: seconds the command may take (default 30)", "SECONDS"},
    {"disk", 0, 0, G_OPTION_ARG_STRING_ARRAY, &add.disks,
     "hook driver: a disk the hook snapshots (repeatable; without --qmp the only way "
     "stillpoint knows the VM's disks)", "NAME=PATH[,serial=S][,format=F]"},
    {"overlay-dir", 0, 0, G_OPTION_ARG_FILENAME, &add.overlay_dir,
     "Directory for overlays (default: next to each disk's image)", "DIR"},
    {"checkpoint-type", 0, 0, G_OPTION_ARG_STRING, &add.checkpoint_type,
     "What checkpoint create makes without --type: production (the default), "
     "production-only or standard",
     "TYPE"},
    G_OPTION_ENTRY_NULL};

/* Relative to our working directory, which the daemon does not share. */
static void add_overlay_dir_absolute(void)
{
    if (add.overlay_dir != NULL) {
        char *absolute = g_canonicalize_filename(add.overlay_dir, NULL);
        g_free(add.overlay_dir);
        add.overlay_dir = absolute;
    }
}

static gboolean show_discovered_disks(const SpVm *vm, GError **error)
{
    g_autoptr(GPtrArray) disks = sp_vm_discover_disks(vm, error);
    gboolean libvirt = sp_driver_ops_of(vm)->own_disk_nodes; /* its nodes are its own */
    if (disks == NULL)
        return FALSE;
    for (guint i = 0; i < disks->len; i++) {
        SpDisk *d = g_ptr_array_index(disks, i);
        if (!sp_cli_globals.quiet)
            fprintf(stderr, "stillpoint:   disk %s: %s (%s%s%s%s%s)\n", d->name, d->image,
                    d->format, libvirt ? "" : ", node ", libvirt ? "" : d->node,
                    d->serial != NULL ? ", serial " : "", d->serial != NULL ? d->serial : "");
    }
    return TRUE;
}

/* The VM the options describe (pointing into them and disks), checked. */
static gboolean add_config(const char *name, GPtrArray *disks, SpVm *vm, GError **error)
{
    if (add.driver == NULL)
        add.driver = g_strdup("qemu");
    add_overlay_dir_absolute();
    *vm = (SpVm){.disks = disks,
                 .name = (char *)name,
                 .qmp_socket = add.qmp != NULL ? add.qmp : (char *)"",
                 .agent_socket = add.agent,
                 .driver = add.driver,
                 .hook_command = add.hook,
                 .libvirt_uri = add.uri,
                 .libvirt_domain = add.domain,
                 .overlay_dir = add.overlay_dir,
                 .checkpoint_type = add.checkpoint_type,
                 .hook_timeout_ms = (int64_t)add.hook_timeout * 1000};
    if (!sp_vm_config_valid(vm, error)) {
        g_prefix_error(error, "vm add: ");
        return FALSE;
    }
    return TRUE;
}

gboolean sp_cli_vm_add(int argc, char **argv, GError **error)
{
    g_autoptr(GPtrArray) disks = NULL;
    g_autoptr(SpStore) store = NULL;
    SpVm vm = {0};
    int64_t id = 0;

    if (argc != 2) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "vm add: expected one VM name (see --help)");
        return FALSE;
    }
    if ((disks = sp_vm_disks_parse((const char *const *)add.disks, error)) == NULL) {
        g_prefix_error(error, "vm add: ");
        return FALSE;
    }
    if (!add_config(argv[1], disks, &vm, error) || (store = sp_cli_open_store(error)) == NULL ||
        !sp_store_vm_add(store, &vm, &id, error))
        return FALSE;
    sp_cli_progress("registered the VM", NULL);
    if (add.qmp != NULL || add.domain != NULL || disks->len > 0) {
        g_autoptr(GError) local = NULL;
        if (!show_discovered_disks(&vm, &local))
            fprintf(stderr, "stillpoint: WARNING: VM '%s' registered, but its disks could not "
                            "be discovered now: %s\n",
                    argv[1], local->message);
    }
    return print_document(sp_document_vm_added(argv[1], id), sp_cli_print_vm_added);
}

gboolean sp_cli_vm_add_dbus(SpDaemonClient *c, int argc, char **argv, GError **error)
{
    g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);

    if (!sp_daemon_expect(argc, 2, "vm add", error))
        return FALSE;
    add_overlay_dir_absolute();
    sp_daemon_add_string(&b, "qmp-socket", add.qmp);
    sp_daemon_add_string(&b, "agent-socket", add.agent);
    sp_daemon_add_string(&b, "driver", add.driver);
    sp_daemon_add_string(&b, "hook-command", add.hook);
    sp_daemon_add_string(&b, "overlay-dir", add.overlay_dir);
    sp_daemon_add_string(&b, "libvirt-domain", add.domain);
    sp_daemon_add_string(&b, "libvirt-uri", add.uri);
    sp_daemon_add_string(&b, "checkpoint-type", add.checkpoint_type);
    if (add.hook_timeout > 0)
        g_variant_builder_add(&b, "{sv}", "hook-timeout-ms",
                              g_variant_new_int64(add.hook_timeout * 1000LL));
    if (add.disks != NULL)
        g_variant_builder_add(&b, "{sv}", "disks",
                              g_variant_new_strv((const char *const *)add.disks, -1));
    return sp_daemon_call_document(c, "AddVm",
                                   g_variant_new("(s@a{sv})", argv[1], g_variant_builder_end(&b)),
                                   sp_cli_print_vm_added, error);
}

/* ---- vm list, set, remove ---- */

gboolean sp_cli_vm_list(int argc, char **argv, GError **error)
{
    g_autoptr(SpStore) store = NULL;
    g_autoptr(GPtrArray) vms = NULL;

    if ((store = sp_cli_open_store(error)) == NULL ||
        (vms = sp_store_vm_list(store, error)) == NULL)
        return FALSE;
    return print_document(sp_document_vm_list(vms), sp_cli_print_vm_list);
}

gboolean sp_cli_vm_list_dbus(SpDaemonClient *c, int argc, char **argv, GError **error)
{
    return sp_daemon_query(c, argc, argv, 1, "vm list", "ListVms", sp_cli_print_vm_list,
                           error);
}

static char *set_checkpoint_type;

const GOptionEntry sp_cli_vm_set_options[] = {
    {"checkpoint-type", 0, 0, G_OPTION_ARG_STRING, &set_checkpoint_type,
     "production (quiesce; standard when the guest cannot), production-only or standard",
     "TYPE"},
    G_OPTION_ENTRY_NULL};

/* What vm set prints, directly and through stillpointd. */
static gboolean vm_set_done(const char *vm)
{
    sp_cli_print_json_event(sp_cli_globals.json, "vm-set", "vm", vm, "checkpoint-type",
                            set_checkpoint_type, NULL);
    if (!sp_cli_globals.json && !sp_cli_globals.quiet)
        fprintf(stderr, "stillpoint: VM '%s' makes %s checkpoints by default\n", vm,
                set_checkpoint_type);
    return TRUE;
}

gboolean sp_cli_vm_set(int argc, char **argv, GError **error)
{
    g_autoptr(SpStore) store = NULL;

    if (argc != 2 || set_checkpoint_type == NULL) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "vm set: expected one VM name and --checkpoint-type (see --help)");
        return FALSE;
    }
    if ((store = sp_cli_open_store(error)) == NULL ||
        !sp_store_vm_set_checkpoint_type(store, argv[1], set_checkpoint_type, error))
        return FALSE;
    return vm_set_done(argv[1]);
}

gboolean sp_cli_vm_set_dbus(SpDaemonClient *c, int argc, char **argv, GError **error)
{
    g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);
    g_autoptr(GVariant) r = NULL;

    if (!sp_daemon_expect(argc, 2, "vm set", error))
        return FALSE;
    sp_daemon_add_string(&b, "checkpoint-type", set_checkpoint_type);
    r = sp_daemon_call(c, "SetVm", g_variant_new("(s@a{sv})", argv[1], g_variant_builder_end(&b)),
                       error);
    return r != NULL && vm_set_done(argv[1]);
}

static gboolean remove_force;

const GOptionEntry sp_cli_vm_remove_options[] = {
    {"force", 0, 0, G_OPTION_ARG_NONE, &remove_force,
     "Also forget the VM's checkpoint records (image files are kept)", NULL},
    G_OPTION_ENTRY_NULL};

gboolean sp_cli_vm_remove(int argc, char **argv, GError **error)
{
    g_autoptr(SpStore) store = NULL;
    g_autoptr(SpVmLock) lock = NULL;

    if (!sp_cli_expect(argc, 2, "vm remove", "one VM name", error) ||
        (store = sp_cli_open_store(error)) == NULL ||
        (lock = sp_vm_lock_acquire(store, argv[1], error)) == NULL ||
        !sp_store_vm_remove(store, argv[1], remove_force, error))
        return FALSE;
    sp_cli_print_json_event(sp_cli_globals.json, "vm-removed", "vm", argv[1], NULL);
    return TRUE;
}

gboolean sp_cli_vm_remove_dbus(SpDaemonClient *c, int argc, char **argv, GError **error)
{
    g_autoptr(GVariant) r = NULL;

    if (!sp_daemon_expect(argc, 2, "vm remove", error) ||
        (r = sp_daemon_call(c, "RemoveVm", g_variant_new("(sb)", argv[1], remove_force),
                            error)) == NULL)
        return FALSE;
    sp_cli_print_json_event(sp_cli_globals.json, "vm-removed", "vm", argv[1], NULL);
    return TRUE;
}

/* ---- vm recover ---- */

static gboolean recover_adopt;

const GOptionEntry sp_cli_vm_recover_options[] = {
    {"adopt-running", 0, 0, G_OPTION_ARG_NONE, &recover_adopt,
     "QEMU was started on a checkpoint's image: keep what it runs on as the VM's present "
     "and forget that checkpoint and those below it (their files are kept)",
     NULL},
    G_OPTION_ENTRY_NULL};

/* --adopt-running: QEMU was started on a checkpoint's image (present.h). */
static gboolean adopt_running(SpStore *store, SpVm *vm, GError **error)
{
    SpOpReport report = {.progress = sp_cli_progress};
    g_autoptr(GPtrArray) forgotten = NULL, kept = NULL;
    if (!sp_present_adopt(store, vm, &report, &forgotten, &kept, error))
        return FALSE;
    for (guint i = 0; i < forgotten->len && !sp_cli_globals.quiet; i++)
        fprintf(stderr, "stillpoint: forgot checkpoint '%s'\n", (char *)forgotten->pdata[i]);
    for (guint i = 0; i < kept->len && !sp_cli_globals.quiet; i++)
        fprintf(stderr, "stillpoint: kept %s (no checkpoint names it now; remove it when "
                        "you no longer need it)\n",
                (char *)kept->pdata[i]);
    return TRUE;
}

gboolean sp_cli_vm_recover(int argc, char **argv, GError **error)
{
    g_auto(SpCliVm) v = {0};

    if (!sp_cli_expect(argc, 2, "vm recover", "one VM name", error) ||
        !sp_cli_open_vm(argv[1], FALSE, &v, error))
        return FALSE;
    if (recover_adopt &&
        (!sp_coordinator_recover_journal(v.store, v.vm, NULL, sp_cli_progress, NULL, error) ||
         !adopt_running(v.store, v.vm, error)))
        return FALSE;
    /* Also a backup session a crash left half-begun or half-ended (or whose exports are gone). */
    if (!sp_coordinator_recover(v.store, v.vm, NULL, sp_cli_progress, NULL, error) ||
        !sp_backup_recover(v.store, v.vm, sp_cli_progress, NULL, error))
        return FALSE;
    sp_cli_print_json_event(sp_cli_globals.json, "recovered", "vm", argv[1], NULL);
    return TRUE;
}

gboolean sp_cli_vm_recover_dbus(SpDaemonClient *c, int argc, char **argv, GError **error)
{
    g_autoptr(GVariant) r = NULL;

    if (recover_adopt) {
        /* Never dropped silently: adopting forgets checkpoints. */
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "vm recover --adopt-running is not available through stillpointd; run it "
                    "as root on the store");
        return FALSE;
    }
    if (!sp_daemon_expect(argc, 2, "vm recover", error) ||
        (r = sp_daemon_call(c, "RecoverVm", g_variant_new("(s)", argv[1]), error)) == NULL)
        return FALSE;
    sp_cli_print_json_event(sp_cli_globals.json, "recovered", "vm", argv[1], NULL);
    return TRUE;
}

/* ---- vm disks ---- */

gboolean sp_cli_vm_disks(int argc, char **argv, GError **error)
{
    g_autoptr(SpStore) store = NULL;
    g_autoptr(SpVm) vm = NULL;
    g_autoptr(GPtrArray) disks = NULL;

    if (!sp_cli_expect(argc, 2, "vm disks", "one VM name", error) ||
        (store = sp_cli_open_store(error)) == NULL ||
        (vm = sp_store_vm_get(store, argv[1], error)) == NULL ||
        (disks = sp_vm_discover_disks(vm, error)) == NULL)
        return FALSE;
    return print_document(sp_document_vm_disks(disks), sp_cli_print_vm_disks);
}

gboolean sp_cli_vm_disks_dbus(SpDaemonClient *c, int argc, char **argv, GError **error)
{
    return sp_daemon_query(c, argc, argv, 2, "vm disks", "GetVmDisks", sp_cli_print_vm_disks,
                           error);
}
