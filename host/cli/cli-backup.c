/* The stillpoint CLI's backup commands: backup sessions for tools that read disks, and the same
 * as a backup job's pre/post script (hook pre|post: exit status 0 or 1, KEY=VALUE on stdout). */
#include <stdio.h>

#include "cli.h"
#include "stillpoint/backup.h"

/* Every backup command is about one VM. */
static gboolean expect_vm(int argc, GError **error)
{
    if (argc == 2)
        return TRUE;
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                "%s: expected one VM name (see --help)", g_get_prgname());
    return FALSE;
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

/* Each command's body runs either way: on the store (c == NULL) or through stillpointd. */

/* Store, VM and its lock: the session's steps run under the same lock as every other operation. */
static SpJson *begin(SpDaemonClient *c, int argc, char **argv, gboolean incremental,
                     GError **error)
{
    g_auto(SpCliVm) v = {0};
    if (!expect_vm(argc, error))
        return NULL;
    if (c != NULL)
        return sp_daemon_call_json(c, "BeginBackup", g_variant_new_parsed(
                                       "(%s, {'incremental': <%b>})", argv[1], incremental),
                                   error);
    if (!sp_cli_open_vm(argv[1], FALSE, &v, error))
        return NULL;
    return sp_backup_begin(v.store, v.vm, incremental, sp_cli_progress, NULL, error);
}

static gboolean end(SpDaemonClient *c, int argc, char **argv, gboolean keep, gboolean aborted,
                    GError **error)
{
    g_auto(SpCliVm) v = {0};
    g_autoptr(GVariant) r = NULL;
    if (!expect_vm(argc, error))
        return FALSE;
    if (c != NULL) {
        r = sp_daemon_call(c, "EndBackup", g_variant_new_parsed(
                               "(%s, {'keep': <%b>, 'failed': <%b>})", argv[1], keep, aborted),
                           error);
        return r != NULL;
    }
    if (!sp_cli_open_vm(argv[1], FALSE, &v, error))
        return FALSE;
    return sp_backup_end(v.store, v.vm, keep, aborted, sp_cli_progress, NULL, error);
}

static gboolean begin_incremental, end_keep, end_failed;

const GOptionEntry sp_cli_backup_begin_options[] = {
    {"incremental", 0, 0, G_OPTION_ARG_NONE, &begin_incremental,
     "List the extents changed since the last backup and export its dirty bitmap", NULL},
    G_OPTION_ENTRY_NULL};

static gboolean backup_begin(SpDaemonClient *c, int argc, char **argv, GError **error)
{
    g_autoptr(SpJson) session = begin(c, argc, argv, begin_incremental, error);

    if (session == NULL)
        return FALSE;
    if (sp_cli_globals.json)
        sp_cli_print_json(session);
    else
        print_session_text(session);
    return TRUE;
}

const GOptionEntry sp_cli_backup_end_options[] = {
    {"keep", 0, 0, G_OPTION_ARG_NONE, &end_keep,
     "Keep the session's checkpoint instead of merging it back", NULL},
    {"failed", 0, 0, G_OPTION_ARG_NONE, &end_failed,
     "The backup did not complete: the next incremental starts from the previous one", NULL},
    G_OPTION_ENTRY_NULL};

static gboolean backup_end(SpDaemonClient *c, int argc, char **argv, GError **error)
{
    if (!end(c, argc, argv, end_keep, end_failed, error))
        return FALSE;
    if (!sp_cli_globals.quiet)
        fprintf(stderr, "stillpoint: backup session of VM '%s' ended\n", argv[1]);
    return TRUE;
}

/* The VM's session journal (JSON null: none), on the store or through stillpointd. */
static SpJson *status(SpDaemonClient *c, const char *name, GError **error)
{
    g_autoptr(SpStore) store = NULL;
    g_autoptr(SpVm) vm = NULL;
    GError *local = NULL;
    SpJson *session;

    if (c != NULL)
        return sp_daemon_call_json(c, "GetBackupStatus", g_variant_new("(s)", name), error);
    if ((store = sp_cli_open_store(error)) == NULL ||
        (vm = sp_store_vm_get(store, name, error)) == NULL)
        return NULL;
    session = sp_backup_status(store, vm, &local);
    if (session == NULL && local != NULL)
        g_propagate_error(error, local);
    else if (session == NULL)
        session = sp_json_new_null();
    return session;
}

static gboolean backup_status(SpDaemonClient *c, int argc, char **argv, GError **error)
{
    g_autoptr(SpJson) session = NULL;

    if (!expect_vm(argc, error) || (session = status(c, argv[1], error)) == NULL)
        return FALSE;
    if (sp_json_type(session) == SP_JSON_NULL)
        printf(sp_cli_globals.json ? "null\n" : "VM '%s' never had a backup session\n", argv[1]);
    else if (sp_cli_globals.json)
        sp_cli_print_json(session);
    else
        printf("VM '%s': backup session %s\n", argv[1],
               sp_json_object_get_string(session, "state"));
    return TRUE;
}

/* Prints a KEY=VALUE line a shell can eval (values quoted). */
static void print_var(const char *key, const char *value)
{
    g_autofree char *quoted = g_shell_quote(value != NULL ? value : "");
    printf("%s=%s\n", key, quoted);
}

/* A backup job's pre script: begin, then tell the job where to read as shell assignments. */
static gboolean pre_incremental;
static int post_status;

const GOptionEntry sp_cli_hook_pre_options[] = {
    {"incremental", 0, 0, G_OPTION_ARG_NONE, &pre_incremental,
     "Begin an incremental session (see backup begin)", NULL},
    G_OPTION_ENTRY_NULL};

static gboolean hook_pre(SpDaemonClient *c, int argc, char **argv, GError **error)
{
    g_autoptr(SpJson) s = begin(c, argc, argv, pre_incremental, error);
    const SpJson *disks;
    g_autoptr(GString) names = g_string_new(NULL);

    if (s == NULL)
        return FALSE;
    if (sp_cli_globals.json) {
        sp_cli_print_json(s);
        return TRUE;
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
    if (!sp_cli_globals.quiet)
        fprintf(stderr, "stillpoint hook pre: OK: VM '%s' is ready to back up (%s-consistent)\n",
                argv[1], sp_json_object_get_string(s, "consistency"));
    return TRUE;
}

/* A backup job's post script: end the session; the job's own status decides whether the next
 * incremental starts from this backup (--status 0) or from the previous one. */
const GOptionEntry sp_cli_hook_post_options[] = {
    {"status", 0, 0, G_OPTION_ARG_INT, &post_status,
     "The backup job's exit status (non-zero: the backup failed)", "N"},
    G_OPTION_ENTRY_NULL};

static gboolean hook_post(SpDaemonClient *c, int argc, char **argv, GError **error)
{
    if (!end(c, argc, argv, FALSE, post_status != 0, error))
        return FALSE;
    if (!sp_cli_globals.quiet)
        fprintf(stderr, "stillpoint hook post: OK: backup session of VM '%s' ended (%s)\n",
                argv[1],
                post_status != 0 ? "backup failed: the next incremental starts from the previous backup"
                            : "backup complete");
    return TRUE;
}

/* ---- the runners: each body on the store, or through stillpointd ---- */

#define SP_CLI_BACKUP_RUNNERS(cmd, body)                                                     \
    gboolean sp_cli_##cmd(int argc, char **argv, GError **error)                              \
    {                                                                                         \
        return body(NULL, argc, argv, error);                                                 \
    }                                                                                         \
    gboolean sp_cli_##cmd##_dbus(SpDaemonClient *c, int argc, char **argv, GError **error)    \
    {                                                                                         \
        return body(c, argc, argv, error);                                                    \
    }

SP_CLI_BACKUP_RUNNERS(backup_begin, backup_begin)
SP_CLI_BACKUP_RUNNERS(backup_end, backup_end)
SP_CLI_BACKUP_RUNNERS(backup_status, backup_status)
SP_CLI_BACKUP_RUNNERS(hook_pre, hook_pre)
SP_CLI_BACKUP_RUNNERS(hook_post, hook_post)
