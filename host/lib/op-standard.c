/* Standard checkpoints (Hyper-V's): the VM's device and memory state saved with its disks. The
 * VM is stopped, its disks snapshotted, its state streamed to a file by QMP migrate (to
 * "exec:cat > FILE": QEMU 7.2 has no file: URI), and it runs on. Applying one starts QEMU with
 * -incoming defer on the checkpoint's disks and feeds the file back (migrate-incoming). */
#include "op-util.h"
#include "image-path.h"

#include <gio/gio.h>
#include <string.h>

#include "stillpoint/channel.h"
#include "stillpoint/standard.h"

#define MIGRATE_POLL_MS 100

gboolean sp_standard_runstate(SpQmp *qmp, char **ret_status, GError **error)
{
    g_autoptr(SpJson) st = sp_qmp_execute(qmp, "query-status", NULL, SP_QMP_DEFAULT_TIMEOUT_MS,
                                          error);
    if (st == NULL)
        return FALSE;
    *ret_status = g_strdup(sp_json_object_get_string(st, "status"));
    return TRUE;
}

gboolean sp_standard_stop(SpQmp *qmp, gboolean *ret_was_running, GError **error)
{
    g_autofree char *status = NULL;
    g_autoptr(SpJson) ret = NULL;
    if (!sp_standard_runstate(qmp, &status, error))
        return FALSE;
    *ret_was_running = g_strcmp0(status, "running") == 0;
    ret = sp_qmp_execute(qmp, "stop", NULL, SP_QMP_DEFAULT_TIMEOUT_MS, error);
    return ret != NULL;
}

/* Waits until query-migrate says completed (TRUE) or failed/cancelled (FALSE). */
static gboolean wait_migration(SpQmp *qmp, const char *what, guint timeout_ms, GError **error)
{
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
    for (;;) {
        g_autoptr(SpJson) st = sp_qmp_execute(qmp, "query-migrate", NULL,
                                              SP_QMP_DEFAULT_TIMEOUT_MS, error);
        const char *status;
        g_autoptr(SpJson) ev = NULL;
        if (st == NULL)
            return FALSE;
        status = sp_json_object_get_string(st, "status");
        if (g_strcmp0(status, "completed") == 0)
            return TRUE;
        if (g_strcmp0(status, "failed") == 0 || g_strcmp0(status, "cancelled") == 0) {
            const char *desc = sp_json_object_get_string(st, "error-desc");
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s: migration %s%s%s", what,
                        status, desc != NULL ? ": " : "", desc != NULL ? desc : "");
            return FALSE;
        }
        if (g_get_monotonic_time() > deadline) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "%s: not done within %u s",
                        what, timeout_ms / 1000);
            return FALSE;
        }
        ev = sp_qmp_wait_event(qmp, "MIGRATION", NULL, NULL, MIGRATE_POLL_MS, NULL);
    }
}

gboolean sp_standard_save(SpQmp *qmp, const char *path, GError **error)
{
    g_autofree char *quoted = g_shell_quote(path);
    g_autofree char *uri = g_strdup_printf("exec:cat > %s", quoted);
    g_autoptr(SpJson) args = sp_json_new_object();
    g_autoptr(SpJson) ret = NULL;
    /* The shell's ">" follows a symlink and truncates: the name is made ours first, in the
     * overlay directory sp_plan_overlays checked. */
    if (!sp_image_create_exclusive(path, NULL, NULL, error)) {
        g_prefix_error(error, "state file: ");
        return FALSE;
    }
    sp_json_object_set_string(args, "uri", uri);
    ret = sp_qmp_execute(qmp, "migrate", g_steal_pointer(&args), SP_QMP_DEFAULT_TIMEOUT_MS,
                         error);
    if (ret == NULL || !wait_migration(qmp, "saving the VM state", SP_STANDARD_TIMEOUT_MS, error)) {
        g_prefix_error(error, "state file %s: ", path);
        return FALSE;
    }
    return TRUE;
}

gboolean sp_standard_resume(SpQmp *qmp, gboolean was_running, GError **error)
{
    g_autofree char *status = NULL;
    g_autoptr(SpJson) ret = NULL;
    if (!sp_standard_runstate(qmp, &status, error))
        return FALSE;
    if (g_strcmp0(status, "running") == 0)
        return TRUE;
    /* After an outgoing migration QEMU has let go of its images; cont takes them back. A VM that
     * was paused before runs for an instant and is paused again. */
    if (!was_running && g_strcmp0(status, "postmigrate") != 0)
        return TRUE;
    ret = sp_qmp_execute(qmp, "cont", NULL, SP_QMP_DEFAULT_TIMEOUT_MS, error);
    if (ret == NULL)
        return FALSE;
    if (!was_running) {
        g_autoptr(SpJson) r2 = sp_qmp_execute(qmp, "stop", NULL, SP_QMP_DEFAULT_TIMEOUT_MS,
                                              error);
        return r2 != NULL;
    }
    return TRUE;
}

gboolean sp_standard_cancel(SpQmp *qmp, GError **error)
{
    g_autoptr(SpJson) st = sp_qmp_execute(qmp, "query-migrate", NULL, SP_QMP_DEFAULT_TIMEOUT_MS,
                                          error);
    const char *status;
    if (st == NULL)
        return FALSE;
    status = sp_json_object_get_string(st, "status");
    if (status != NULL && (g_strcmp0(status, "active") == 0 || g_strcmp0(status, "setup") == 0 ||
                           g_strcmp0(status, "device") == 0)) {
        g_autoptr(SpJson) r = sp_qmp_execute(qmp, "migrate_cancel", NULL,
                                             SP_QMP_DEFAULT_TIMEOUT_MS, error);
        if (r == NULL)
            return FALSE;
        wait_migration(qmp, "cancelling", 30000, NULL);
    }
    return TRUE;
}

gboolean sp_standard_load(SpQmp *qmp, const char *path, GError **error)
{
    g_autofree char *quoted = g_shell_quote(path);
    g_autofree char *uri = g_strdup_printf("exec:cat %s", quoted);
    g_autoptr(SpJson) args = sp_json_new_object();
    g_autoptr(SpJson) ret = NULL;
    sp_json_object_set_string(args, "uri", uri);
    ret = sp_qmp_execute(qmp, "migrate-incoming", g_steal_pointer(&args),
                         SP_QMP_DEFAULT_TIMEOUT_MS, error);
    if (ret == NULL || !wait_migration(qmp, "loading the VM state", SP_STANDARD_TIMEOUT_MS, error)) {
        g_prefix_error(error, "state file %s: ", path);
        return FALSE;
    }
    return TRUE;
}
