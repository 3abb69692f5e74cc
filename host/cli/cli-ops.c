/* The stillpoint CLI's tree operations: checkpoint delete, rename, export, apply and resume,
 * directly and (but resume) through stillpointd. The work is in the library (op-*.c); here are
 * options and progress output. What they print on stdout is rendered by render.c, the same
 * both ways. */
#include <stdio.h>

#include "cli.h"
#include "stillpoint/ops.h"

/* Opens the VM (recovering) for an operation that then runs with termination deferred. */
static gboolean open_for_op(int argc, char **argv, int n, const char *what, SpCliVm *v,
                            GError **error)
{
    const char *expected = n == 3 ? "VM CP" : n == 4 ? "VM CP ARG" : "arguments";
    g_autofree char *command = g_strdup_printf("checkpoint %s", what);

    if (!sp_cli_expect(argc, n, command, expected, error) ||
        !sp_cli_open_vm(argv[1], TRUE, v, error))
        return FALSE;
    sp_cli_defer_termination();
    return TRUE;
}

/* ---- delete ---- */

static gboolean delete_subtree;

const GOptionEntry sp_cli_checkpoint_delete_options[] = {
    {"subtree", 0, 0, G_OPTION_ARG_NONE, &delete_subtree,
     "Also delete every checkpoint below it", NULL},
    G_OPTION_ENTRY_NULL};

gboolean sp_cli_checkpoint_delete(int argc, char **argv, GError **error)
{
    g_auto(SpCliVm) v = {0};
    SpOpReport report = {.progress = sp_cli_progress, .percent = sp_cli_percent};

    if (!open_for_op(argc, argv, 3, "delete", &v, error) ||
        !sp_op_delete(v.store, v.vm, argv[2], delete_subtree, &report, error))
        return FALSE;
    sp_cli_print_checkpoint_deleted(v.vm->name, argv[2], delete_subtree, sp_cli_globals.json);
    return TRUE;
}

gboolean sp_cli_checkpoint_delete_dbus(SpDaemonClient *c, int argc, char **argv, GError **error)
{
    g_autoptr(GVariant) r = NULL;

    if (!sp_daemon_expect(argc, 3, "checkpoint delete", error) ||
        (r = sp_daemon_call(c, "DeleteCheckpoint",
                            g_variant_new("(ssb)", argv[1], argv[2], delete_subtree),
                            error)) == NULL)
        return FALSE;
    sp_cli_print_checkpoint_deleted(argv[1], argv[2], delete_subtree, sp_cli_globals.json);
    return TRUE;
}

/* ---- rename ---- */

gboolean sp_cli_checkpoint_rename(int argc, char **argv, GError **error)
{
    g_auto(SpCliVm) v = {0};

    if (!sp_cli_expect(argc, 4, "checkpoint rename", "VM CP ARG", error) ||
        !sp_cli_open_vm(argv[1], FALSE, &v, error) ||
        !sp_op_rename(v.store, v.vm, argv[2], argv[3], error))
        return FALSE;
    sp_cli_print_json_event(sp_cli_globals.json, "renamed", "vm", v.vm->name, "checkpoint",
                            argv[2], "name", argv[3], NULL);
    return TRUE;
}

gboolean sp_cli_checkpoint_rename_dbus(SpDaemonClient *c, int argc, char **argv, GError **error)
{
    g_autoptr(GVariant) r = NULL;

    if (!sp_daemon_expect(argc, 4, "checkpoint rename", error) ||
        (r = sp_daemon_call(c, "RenameCheckpoint",
                            g_variant_new("(sss)", argv[1], argv[2], argv[3]), error)) == NULL)
        return FALSE;
    sp_cli_print_json_event(sp_cli_globals.json, "renamed", "vm", argv[1], "checkpoint",
                            argv[2], "name", argv[3], NULL);
    return TRUE;
}

/* ---- export ---- */

static char *export_format;

const GOptionEntry sp_cli_checkpoint_export_options[] = {
    {"format", 0, 0, G_OPTION_ARG_STRING, &export_format, "qcow2 (default) or raw", "FORMAT"},
    G_OPTION_ENTRY_NULL};

gboolean sp_cli_checkpoint_export(int argc, char **argv, GError **error)
{
    g_auto(SpCliVm) v = {0};
    g_autofree char *manifest = NULL;
    SpOpReport report = {.progress = sp_cli_progress, .percent = sp_cli_percent};

    if (!open_for_op(argc, argv, 4, "export", &v, error) ||
        !sp_op_export(v.store, v.vm, argv[2], argv[3], export_format, &report, &manifest, error))
        return FALSE;
    sp_cli_print_checkpoint_exported(v.vm->name, argv[2], manifest, sp_cli_globals.json);
    return TRUE;
}

gboolean sp_cli_checkpoint_export_dbus(SpDaemonClient *c, int argc, char **argv, GError **error)
{
    g_autoptr(GVariant) r = NULL;
    g_autofree char *dir = NULL;
    const char *manifest;

    if (!sp_daemon_expect(argc, 4, "checkpoint export", error))
        return FALSE;
    /* The daemon does not share our working directory. */
    dir = g_canonicalize_filename(argv[3], NULL);
    if ((r = sp_daemon_call(c, "ExportCheckpoint",
                            g_variant_new("(ssss)", argv[1], argv[2], dir,
                                          export_format ? export_format : ""),
                            error)) == NULL)
        return FALSE;
    g_variant_get(r, "(&s)", &manifest);
    sp_cli_print_checkpoint_exported(argv[1], argv[2], manifest, sp_cli_globals.json);
    return TRUE;
}

/* ---- apply, resume ---- */

static char *apply_save;
static gboolean apply_force;

const GOptionEntry sp_cli_checkpoint_apply_options[] = {
    {"save-current", 0, 0, G_OPTION_ARG_STRING, &apply_save,
     "First keep the present as a checkpoint with this name", "NAME"},
    {"force", 0, 0, G_OPTION_ARG_NONE, &apply_force,
     "Stop a running VM first (QMP quit: like pulling the plug)", NULL},
    G_OPTION_ENTRY_NULL};

gboolean sp_cli_checkpoint_apply(int argc, char **argv, GError **error)
{
    g_auto(SpCliVm) v = {0};
    g_autoptr(SpJson) doc = NULL;
    SpOpReport report = {.progress = sp_cli_progress};

    if (!open_for_op(argc, argv, 3, "apply", &v, error) ||
        !sp_op_apply(v.store, v.vm, argv[2], apply_save, apply_force, &report, error) ||
        (doc = sp_document_checkpoint_applied(v.store, v.vm->name, error)) == NULL)
        return FALSE;
    sp_cli_print_checkpoint_applied(v.vm->name, doc, sp_cli_globals.json);
    return TRUE;
}

gboolean sp_cli_checkpoint_apply_dbus(SpDaemonClient *c, int argc, char **argv, GError **error)
{
    g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);
    g_autoptr(SpJson) doc = NULL;

    sp_daemon_add_string(&b, "save-current", apply_save);
    if (apply_force)
        g_variant_builder_add(&b, "{sv}", "force", g_variant_new_boolean(TRUE));
    if (!sp_daemon_expect(argc, 3, "checkpoint apply", error) ||
        (doc = sp_daemon_call_json(c, "ApplyCheckpoint",
                                   g_variant_new("(ss@a{sv})", argv[1], argv[2],
                                                 g_variant_builder_end(&b)),
                                   error)) == NULL)
        return FALSE;
    sp_cli_print_checkpoint_applied(argv[1], doc, sp_cli_globals.json);
    return TRUE;
}

gboolean sp_cli_checkpoint_resume(int argc, char **argv, GError **error)
{
    g_auto(SpCliVm) v = {0};
    SpOpReport report = {.progress = sp_cli_progress};

    if (!sp_cli_expect(argc, 2, "checkpoint resume", "arguments", error) ||
        !sp_cli_open_vm(argv[1], TRUE, &v, error) ||
        !sp_op_resume(v.store, v.vm, &report, error))
        return FALSE;
    printf("VM '%s' runs on from its standard checkpoint\n", v.vm->name);
    return TRUE;
}

gboolean sp_cli_checkpoint_resume_dbus(SpDaemonClient *c, int argc, char **argv, GError **error)
{
    g_autoptr(GVariant) r = NULL;

    if (!sp_daemon_expect(argc, 2, "checkpoint resume", error) ||
        (r = sp_daemon_call(c, "ResumeCheckpoint", g_variant_new("(s)", argv[1]), error)) == NULL)
        return FALSE;
    printf("VM '%s' runs on from its standard checkpoint\n", argv[1]);
    return TRUE;
}
