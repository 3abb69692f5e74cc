/* The hook driver: between freeze and thaw, run a configured command (LVM, ZFS, Ceph, a cloud
 * snapshot API) with the VM, checkpoint and disks in its environment, under a deadline; run it
 * again to delete a checkpoint's snapshot. Its exit status decides success. */
#include "stillpoint/driver.h"

#include <fcntl.h>
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

/* What one run of the hook is asked: the action and what it acts on. */
typedef struct {
    const char *action;     /* "create" (inside the frozen window) or "delete" */
    const char *vm;
    const char *checkpoint;
    int64_t op_id;          /* the journal entry that made (create: makes) the snapshot; 0 =
                             * unknown (a record older than the column) */
    GPtrArray *disks;       /* of SpDisk, borrowed */
} HookCall;

static void hook_set_env(GSubprocessLauncher *l, const HookCall *call)
{
    g_autoptr(GString) names = g_string_new(NULL);
    g_autofree char *count = g_strdup_printf("%u", call->disks->len);
    g_autofree char *op =
        call->op_id != 0 ? g_strdup_printf("%" G_GINT64_FORMAT, call->op_id) : g_strdup("");
    g_subprocess_launcher_setenv(l, "STILLPOINT_ACTION", call->action, TRUE);
    g_subprocess_launcher_setenv(l, "STILLPOINT_VM", call->vm, TRUE);
    g_subprocess_launcher_setenv(l, "STILLPOINT_CHECKPOINT", call->checkpoint, TRUE);
    g_subprocess_launcher_setenv(l, "STILLPOINT_OPERATION", op, TRUE);
    g_subprocess_launcher_setenv(l, "STILLPOINT_DISK_COUNT", count, TRUE);
    for (guint i = 0; i < call->disks->len; i++) {
        SpDisk *d = g_ptr_array_index(call->disks, i);
        g_autofree char *kn = g_strdup_printf("STILLPOINT_DISK_%u_NAME", i);
        g_autofree char *ki = g_strdup_printf("STILLPOINT_DISK_%u_IMAGE", i);
        g_autofree char *ks = g_strdup_printf("STILLPOINT_DISK_%u_SERIAL", i);
        g_autofree char *kf = g_strdup_printf("STILLPOINT_DISK_%u_FORMAT", i);
        g_subprocess_launcher_setenv(l, kn, d->name, TRUE);
        g_subprocess_launcher_setenv(l, ki, d->image != NULL ? d->image : "", TRUE);
        g_subprocess_launcher_setenv(l, ks, d->serial != NULL ? d->serial : "", TRUE);
        g_subprocess_launcher_setenv(l, kf, d->format != NULL ? d->format : "", TRUE);
        g_string_append_printf(names, "%s%s", i > 0 ? " " : "", d->name);
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

/* Runs the VM's hook for call within hook_ms (own_ms: its own deadline, for the message). Its
 * stdout joins its stderr on ours: neither is parsed, and a hook's chatter must not mix into a
 * --json document on our stdout. */
static gboolean hook_run(const SpVm *vm, const HookCall *call, guint hook_ms, guint own_ms,
                         GError **error)
{
    g_autoptr(GSubprocessLauncher) l = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_NONE);
    g_autoptr(GSubprocess) proc = NULL;
    g_autoptr(GMainContext) ctx = g_main_context_new();
    g_autoptr(GSource) timer = NULL;
    HookWait w = {0};
    int out = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);

    hook_set_env(l, call);
    if (out >= 0)
        g_subprocess_launcher_take_stdout_fd(l, out);
    else
        g_subprocess_launcher_set_flags(l, G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
    g_subprocess_launcher_set_child_setup(l, child_setup_cb, NULL, NULL);
    proc = g_subprocess_launcher_spawn(l, error, "/bin/sh", "-c", vm->hook_command, NULL);
    if (proc == NULL) {
        g_prefix_error(error, "VM '%s': starting hook command (%s): ", call->vm, call->action);
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
                    "VM '%s': hook command did not finish within %u ms and was killed (on %s)%s",
                    call->vm, hook_ms, call->action,
                    hook_ms < own_ms ? " (the deadline the guest's freeze lease left it, shorter "
                                       "than its own)"
                                     : "");
        return FALSE;
    }
    if (!g_subprocess_get_if_exited(proc) || g_subprocess_get_exit_status(proc) != 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    "VM '%s': hook command failed (exit status %d) on %s", call->vm,
                    g_subprocess_get_if_exited(proc) ? g_subprocess_get_exit_status(proc) : -1,
                    call->action);
        return FALSE;
    }
    return TRUE;
}

static gboolean hook_snapshot(SpDriver *drv, SpSnapshotPlan *plan, guint timeout_ms,
                              GError **error)
{
    g_autoptr(GPtrArray) disks = g_ptr_array_new();
    HookCall call = {.action = "create", .vm = plan->vm_name,
                     .checkpoint = plan->checkpoint_name, .op_id = plan->op_id, .disks = disks};
    guint own_ms = hook_timeout_ms(drv->vm);

    for (guint i = 0; i < plan->disks->len; i++)
        g_ptr_array_add(disks, ((SpPlanDisk *)g_ptr_array_index(plan->disks, i))->disk);
    /* Inside the lease: a hook still running when the guest thaws would snapshot a guest that
     * runs again, and be recorded as if it were frozen. */
    return hook_run(drv->vm, &call, MIN(own_ms, timeout_ms), own_ms, error);
}

/* The checkpoint's disks as the hook saw them at create: the record's names, images and formats,
 * the serials as registered now. */
static GPtrArray *checkpoint_disks(const SpVm *vm, const SpCheckpoint *cp)
{
    g_autoptr(GPtrArray) registered = sp_vm_registered_disks(vm);
    GPtrArray *disks = g_ptr_array_new_with_free_func((GDestroyNotify)sp_disk_free);
    for (guint i = 0; i < cp->disks->len; i++) {
        const SpCheckpointDisk *cd = g_ptr_array_index(cp->disks, i);
        const SpDisk *r = sp_disk_find(registered, cd->disk);
        g_ptr_array_add(disks, sp_disk_new(cd->disk, cd->node, cd->image, cd->image_format,
                                           r != NULL ? r->serial : NULL));
    }
    return disks;
}

gboolean sp_driver_hook_delete(const SpVm *vm, const SpCheckpoint *cp, GError **error)
{
    g_autoptr(GPtrArray) disks = checkpoint_disks(vm, cp);
    HookCall call = {.action = "delete", .vm = vm->name, .checkpoint = cp->name,
                     .op_id = cp->op_id, .disks = disks};
    guint own_ms = hook_timeout_ms(vm);
    return hook_run(vm, &call, own_ms, own_ms, error);
}

static const char *hook_config_problem(const SpVm *vm)
{
    if (vm->libvirt_domain != NULL || vm->libvirt_uri != NULL)
        return SP_DRIVER_PROBLEM_LIBVIRT_ONLY;
    if (vm->hook_command == NULL)
        return "the hook driver needs its command (--hook-command)";
    return NULL;
}

const SpDriverOps sp_driver_hook_ops = {
    .name = "hook",
    .plan = hook_plan,
    .prepare = hook_noop,
    .snapshot_ms = hook_snapshot_ms,
    .snapshot = hook_snapshot,
    .abort = hook_noop,
    .committed = NULL, /* the journal decides */
    .opaque_storage = TRUE,
    .delete_snapshot = sp_driver_hook_delete,
    .config_problem = hook_config_problem,
};
