/* The stillpoint CLI's checkpoint create, list and show (the tree operations are in cli-ops.c),
 * directly and (create, list) through stillpointd. */
#include <stdio.h>

#include "cli.h"
#include "stillpoint/checkpoint-type.h"
#include "stillpoint/coordinator.h"
#include "stillpoint/ops.h"

/* ---- checkpoint create ---- */

static struct {
    char *name, *type, *policy, *group;
    gboolean scheduled;
} create;

const GOptionEntry sp_cli_checkpoint_create_options[] = {
    {"group", 0, 0, G_OPTION_ARG_STRING, &create.group,
     "Instead of one VM: every VM of a consistency group, at one instant", "GROUP"},
    {"name", 0, 0, G_OPTION_ARG_STRING, &create.name,
     "Checkpoint name, 1-100 characters (default \"VM (MM/DD/YYYY - hh:mm:ss)\")", "NAME"},
    {"type", 0, 0, G_OPTION_ARG_STRING, &create.type,
     "production (quiesce the guest; standard when it cannot), production-only, standard "
     "(save the VM's memory too) or crash (no quiescing); default: the VM's checkpoint type "
     "(vm set --checkpoint-type)",
     "TYPE"},
    {"on-quiesce-failure", 0, 0, G_OPTION_ARG_STRING, &create.policy,
     "production only: fail, crash or standard (the default) when the guest cannot quiesce",
     "POLICY"},
    {"scheduled", 0, 0, G_OPTION_ARG_NONE, &create.scheduled,
     "Made by a schedule (its service passes this): the schedule's retention may merge it",
     NULL},
    G_OPTION_ENTRY_NULL};

gboolean sp_cli_checkpoint_create(int argc, char **argv, GError **error)
{
    g_auto(SpCliVm) v = {0};
    g_autoptr(SpCheckpoint) cp = NULL;
    g_autoptr(SpJson) doc = NULL;
    SpCreateOptions opts = {0};

    if (create.group != NULL && argc == 1 && create.type == NULL && create.policy == NULL)
        return sp_cli_group_checkpoint(create.group, create.name, error);
    if (argc != 2 || create.group != NULL) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "checkpoint create: expected one VM name, or --group GROUP (production "
                    "checkpoints only) without one (see --help)");
        return FALSE;
    }
    if ((create.name != NULL && !sp_checkpoint_name_valid(create.name, error)) ||
        !sp_cli_open_vm(argv[1], FALSE, &v, error) ||
        !sp_checkpoint_type_resolve(v.vm, create.type, create.policy, &opts, error))
        return FALSE;
    opts.name = create.name;
    opts.origin = create.scheduled ? SP_ORIGIN_SCHEDULE : SP_ORIGIN_USER;
    sp_cli_defer_termination();
    cp = sp_coordinator_create(v.store, v.vm, &opts, sp_cli_progress, NULL, error);
    if (sp_cli_interrupted)
        fprintf(stderr, "stillpoint: interrupted (signal %d): finished the operation first\n",
                (int)sp_cli_interrupted);
    if (cp == NULL)
        return FALSE;
    doc = sp_document_checkpoint(cp, cp->id);
    sp_cli_print_checkpoint_created(v.vm->name, doc, sp_cli_globals.json);
    return TRUE;
}

gboolean sp_cli_checkpoint_create_dbus(SpDaemonClient *c, int argc, char **argv,
                                       GError **error)
{
    g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);
    g_autoptr(SpJson) doc = NULL;

    if (create.scheduled) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "'checkpoint create --scheduled' is not available through stillpointd");
        return FALSE;
    }
    if (create.group != NULL)
        return sp_daemon_expect(argc, 1, "checkpoint create --group", error) &&
               sp_cli_group_checkpoint_dbus(c, create.group, create.name, error);
    sp_daemon_add_string(&b, "name", create.name);
    sp_daemon_add_string(&b, "type", create.type);
    sp_daemon_add_string(&b, "on-quiesce-failure", create.policy);
    if (!sp_daemon_expect(argc, 2, "checkpoint create", error) ||
        (doc = sp_daemon_call_json(
             c, "CreateCheckpoint",
             g_variant_new("(s@a{sv})", argv[1], g_variant_builder_end(&b)), error)) == NULL)
        return FALSE;
    sp_cli_print_checkpoint_created(argv[1], doc, sp_cli_globals.json);
    return TRUE;
}

/* ---- checkpoint list, show ---- */

/* Recovery needs the VM's lock; while another process works on the VM, its operation is not
 * interrupted but in progress, so list what is recorded and leave it alone. */
static SpVmLock *recover_for_listing(SpStore *store, SpVm *vm, const char *name)
{
    g_autoptr(GError) recover_error = NULL;
    SpVmLock *lock = sp_vm_lock_acquire(store, name, &recover_error);

    if (lock != NULL) {
        /* Listing must work with the VM off: an unresolvable recovery is only a warning here. */
        if (!sp_coordinator_recover(store, vm, NULL, sp_cli_progress, NULL, &recover_error))
            fprintf(stderr, "stillpoint: WARNING: %s\n", recover_error->message);
    } else if (!sp_cli_globals.quiet) {
        fprintf(stderr, "stillpoint: note: %s\n", recover_error->message);
    }
    return lock;
}

gboolean sp_cli_checkpoint_list(int argc, char **argv, GError **error)
{
    g_autoptr(SpStore) store = NULL;
    g_autoptr(SpVmLock) lock = NULL; /* held while listing, when we could take it */
    g_autoptr(SpVm) vm = NULL;
    g_autoptr(GPtrArray) cps = NULL;
    g_autoptr(SpJson) doc = NULL;

    if (!sp_cli_expect(argc, 2, "checkpoint list", "one VM name", error) ||
        (store = sp_cli_open_store(error)) == NULL ||
        (vm = sp_store_vm_get(store, argv[1], error)) == NULL)
        return FALSE;
    lock = recover_for_listing(store, vm, argv[1]);
    sp_vm_free(g_steal_pointer(&vm));
    if ((vm = sp_store_vm_get(store, argv[1], error)) == NULL ||
        (cps = sp_store_checkpoint_list(store, vm->id, error)) == NULL)
        return FALSE;
    doc = sp_document_checkpoint_list(vm, cps);
    sp_cli_print_checkpoint_list(doc, sp_cli_globals.json);
    return TRUE;
}

gboolean sp_cli_checkpoint_list_dbus(SpDaemonClient *c, int argc, char **argv, GError **error)
{
    return sp_daemon_query(c, argc, argv, 2, "checkpoint list", "ListCheckpoints",
                           sp_cli_print_checkpoint_list, error);
}

gboolean sp_cli_checkpoint_show(int argc, char **argv, GError **error)
{
    g_autoptr(SpStore) store = NULL;
    g_autoptr(SpVm) vm = NULL;
    g_autoptr(SpCheckpoint) cp = NULL;
    g_autoptr(GPtrArray) cps = NULL;
    g_autoptr(SpJson) doc = NULL;

    if (!sp_cli_expect(argc, 3, "checkpoint show", "a VM and a checkpoint (name or #ID)",
                       error) ||
        (store = sp_cli_open_store(error)) == NULL ||
        (vm = sp_store_vm_get(store, argv[1], error)) == NULL ||
        (cp = sp_op_find_checkpoint(store, vm, argv[2], error)) == NULL ||
        (cps = sp_store_checkpoint_list(store, vm->id, error)) == NULL)
        return FALSE;
    doc = sp_document_checkpoint_show(vm, cps, cp);
    sp_cli_print_checkpoint_show(doc, sp_cli_globals.json);
    return TRUE;
}

gboolean sp_cli_checkpoint_show_dbus(SpDaemonClient *c, int argc, char **argv, GError **error)
{
    return sp_daemon_query(c, argc, argv, 3, "checkpoint show", "ShowCheckpoint",
                           sp_cli_print_checkpoint_show, error);
}
