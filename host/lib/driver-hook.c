/* The hook driver: between freeze and thaw, run a configured command (LVM, ZFS, Ceph, a cloud
 * snapshot API) with the VM, checkpoint and disks in its environment, under a deadline. Its exit
 * status decides success. */
#include "stillpoint/driver.h"

#include <gio/gio.h>
#include <signal.h>
#include <unistd.h>

#include "test-hooks.h"

/* The disks: as given at registration (vm add --disk), else as QMP reports them, else none (a
 * hook that snapshots the whole VM through a cloud API needs no list). */
static gboolean hook_plan(SpDriver *drv, SpSnapshotPlan *plan, const char *overlay_dir,
                          GError **error)
{
    g_autoptr(GPtrArray) disks = NULL;
    (void)overlay_dir; /* the hook's storage makes no overlays */

    if (drv->vm->hook_command == NULL || drv->vm->hook_command[0] == '\0') {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "VM '%s' uses the hook driver but has no hook command (vm add "
                    "--hook-command CMD)",
                    drv->vm->name);
        return FALSE;
    }
    if (drv->vm->disks != NULL && drv->vm->disks->len > 0)
        disks = sp_vm_registered_disks(drv->vm);
    else if (drv->qmp != NULL && (disks = sp_qmp_discover_disks(drv->qmp, error)) == NULL)
        return FALSE;
    if (disks != NULL)
        sp_snapshot_plan_add_disks(plan, disks);
    return TRUE;
}

static gboolean hook_noop(SpDriver *drv, SpSnapshotPlan *plan, GError **error)
{
    return TRUE;
}

static void child_setup_cb(gpointer data)
{
    /* Its own process group, so a deadline kills the hook's children too. */
    setpgid(0, 0);
}

typedef struct {
    gboolean done;
    gboolean timed_out;
} HookWait;

static void wait_cb(GObject *source, GAsyncResult *res, gpointer data)
{
    HookWait *w = data;
    g_subprocess_wait_finish(G_SUBPROCESS(source), res, NULL);
    w->done = TRUE;
}

static gboolean timeout_cb(gpointer data)
{
    HookWait *w = data;
    w->timed_out = TRUE;
    return G_SOURCE_REMOVE;
}

static void hook_set_env(GSubprocessLauncher *l, SpSnapshotPlan *plan)
{
    g_autoptr(GString) names = g_string_new(NULL);
    g_autofree char *count = g_strdup_printf("%u", plan->disks->len);
    g_autofree char *op = g_strdup_printf("%" G_GINT64_FORMAT, plan->op_id);
    g_subprocess_launcher_setenv(l, "STILLPOINT_VM", plan->vm_name, TRUE);
    g_subprocess_launcher_setenv(l, "STILLPOINT_CHECKPOINT", plan->checkpoint_name, TRUE);
    g_subprocess_launcher_setenv(l, "STILLPOINT_OPERATION", op, TRUE);
    g_subprocess_launcher_setenv(l, "STILLPOINT_DISK_COUNT", count, TRUE);
    for (guint i = 0; i < plan->disks->len; i++) {
        SpPlanDisk *pd = g_ptr_array_index(plan->disks, i);
        g_autofree char *kn = g_strdup_printf("STILLPOINT_DISK_%u_NAME", i);
        g_autofree char *ki = g_strdup_printf("STILLPOINT_DISK_%u_IMAGE", i);
        g_autofree char *ks = g_strdup_printf("STILLPOINT_DISK_%u_SERIAL", i);
        g_autofree char *kf = g_strdup_printf("STILLPOINT_DISK_%u_FORMAT", i);
        g_subprocess_launcher_setenv(l, kn, pd->disk->name, TRUE);
        g_subprocess_launcher_setenv(l, ki, pd->disk->image != NULL ? pd->disk->image : "", TRUE);
        g_subprocess_launcher_setenv(l, ks, pd->disk->serial != NULL ? pd->disk->serial : "",
                                     TRUE);
        g_subprocess_launcher_setenv(l, kf, pd->disk->format != NULL ? pd->disk->format : "",
                                     TRUE);
        g_string_append_printf(names, "%s%s", i > 0 ? " " : "", pd->disk->name);
    }
    g_subprocess_launcher_setenv(l, "STILLPOINT_DISKS", names->str, TRUE);
}

/* The VM's configured deadline (the tests may replace it). */
static guint hook_timeout_ms(const SpVm *vm)
{
    guint ms = SP_HOOK_DEFAULT_TIMEOUT_MS;
    if (vm->hook_timeout_ms > 0 && vm->hook_timeout_ms < G_MAXUINT)
        ms = (guint)vm->hook_timeout_ms;
    return sp_test_deadline_ms(SP_TEST_DEADLINE_HOOK, ms);
}

static guint hook_snapshot_ms(SpDriver *drv, const SpSnapshotPlan *plan)
{
    (void)plan;
    return hook_timeout_ms(drv->vm);
}

static gboolean hook_snapshot(SpDriver *drv, SpSnapshotPlan *plan, guint timeout_ms,
                              GError **error)
{
    g_autoptr(GSubprocessLauncher) l = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_NONE);
    g_autoptr(GSubprocess) proc = NULL;
    g_autoptr(GMainContext) ctx = g_main_context_new();
    g_autoptr(GSource) timer = NULL;
    HookWait w = {0};
    guint own_ms = hook_timeout_ms(drv->vm);
    /* Inside the lease: a hook still running when the guest thaws would snapshot a guest that
     * runs again, and be recorded as if it were frozen. */
    guint hook_ms = MIN(own_ms, timeout_ms);

    hook_set_env(l, plan);
    g_subprocess_launcher_set_child_setup(l, child_setup_cb, NULL, NULL);
    proc = g_subprocess_launcher_spawn(l, error, "/bin/sh", "-c", drv->vm->hook_command, NULL);
    if (proc == NULL) {
        g_prefix_error(error, "VM '%s': starting hook command: ", plan->vm_name);
        return FALSE;
    }
    g_main_context_push_thread_default(ctx);
    g_subprocess_wait_async(proc, NULL, wait_cb, &w);
    timer = g_timeout_source_new(hook_ms);
    g_source_set_callback(timer, timeout_cb, &w, NULL);
    g_source_attach(timer, ctx);
    while (!w.done && !w.timed_out)
        g_main_context_iteration(ctx, TRUE);
    if (!w.done) {
        const char *pid = g_subprocess_get_identifier(proc);
        if (pid != NULL)
            kill(-(pid_t)g_ascii_strtoll(pid, NULL, 10), SIGKILL);
        while (!w.done)
            g_main_context_iteration(ctx, TRUE);
    }
    g_source_destroy(timer);
    g_main_context_pop_thread_default(ctx);

    if (w.timed_out) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                    "VM '%s': hook command did not finish within %u ms and was killed%s",
                    plan->vm_name, hook_ms,
                    hook_ms < own_ms ? " (the deadline the guest's freeze lease left it, shorter "
                                       "than its own)"
                                     : "");
        return FALSE;
    }
    if (!g_subprocess_get_if_exited(proc) || g_subprocess_get_exit_status(proc) != 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    "VM '%s': hook command failed (exit status %d)", plan->vm_name,
                    g_subprocess_get_if_exited(proc) ? g_subprocess_get_exit_status(proc) : -1);
        return FALSE;
    }
    return TRUE;
}

const SpDriverOps sp_driver_hook_ops = {
    .name = "hook",
    .plan = hook_plan,
    .prepare = hook_noop,
    .snapshot_ms = hook_snapshot_ms,
    .snapshot = hook_snapshot,
    .abort = hook_noop,
    .committed = NULL, /* the journal decides */
};
