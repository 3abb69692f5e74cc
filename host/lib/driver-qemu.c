/* The qemu driver. Overlays are created and opened BEFORE the freeze (qemu-img create, then
 * blockdev-add with "backing": null), so the frozen window holds one QMP transaction of
 * blockdev-snapshot actions: atomic across disks, and quick. */
#include "stillpoint/driver.h"

#include <gio/gio.h>
#include <string.h>
#include "backup-internal.h"
#include "test-hooks.h"

static gboolean qemu_plan(SpDriver *drv, SpSnapshotPlan *plan, const char *overlay_dir,
                          GError **error)
{
    g_autoptr(GPtrArray) disks = sp_qmp_discover_disks(drv->qmp, error);
    return disks != NULL && sp_plan_overlay_disks(plan, disks, overlay_dir, TRUE, error);
}

static gboolean add_overlay_node(SpDriver *drv, SpPlanDisk *pd, GError **error)
{
    g_autoptr(SpJson) args = sp_json_new_object();
    g_autoptr(SpJson) ret = NULL;
    SpJson *file = sp_json_new_object();
    sp_json_object_set_string(args, "driver", "qcow2");
    sp_json_object_set_string(args, "node-name", pd->overlay_node);
    sp_json_object_set_string(file, "driver", "file");
    sp_json_object_set_string(file, "filename", pd->overlay);
    sp_json_object_set(args, "file", file);
    /* The backing is attached by blockdev-snapshot, in the transaction. */
    sp_json_object_set(args, "backing", sp_json_new_null());
    ret = sp_qmp_execute(drv->qmp, "blockdev-add", g_steal_pointer(&args),
                         SP_QMP_DEFAULT_TIMEOUT_MS, error);
    if (ret == NULL) {
        g_prefix_error(error, "disk %s: opening overlay %s: ", pd->disk->name, pd->overlay);
        return FALSE;
    }
    return TRUE;
}

static gboolean qemu_prepare(SpDriver *drv, SpSnapshotPlan *plan, GError **error)
{
    for (guint i = 0; i < plan->disks->len; i++) {
        SpPlanDisk *pd = g_ptr_array_index(plan->disks, i);
        if (!sp_overlay_create(pd, error))
            return FALSE;
        pd->added = TRUE;
        if (!add_overlay_node(drv, pd, error))
            return FALSE;
    }
    return TRUE;
}

/* Backup sessions: the new bitmap starts clean at the instant of the checkpoint (the commit that
 * ends the session dirties it with everything written since), the previous one stops there. */
static void add_bitmap_actions(SpJson *actions, const char *node, const SpSnapshotPlan *plan)
{
    if (plan->bitmap_add != NULL) {
        SpJson *action = sp_json_new_object(), *data = sp_json_new_object();
        sp_json_object_set_string(data, "node", node);
        sp_json_object_set_string(data, "name", plan->bitmap_add);
        sp_json_object_set_bool(data, "persistent", true);
        sp_json_object_set_string(action, "type", "block-dirty-bitmap-add");
        sp_json_object_set(action, "data", data);
        sp_json_array_append(actions, action);
    }
    if (plan->bitmap_disable != NULL) {
        SpJson *action = sp_json_new_object(), *data = sp_json_new_object();
        sp_json_object_set_string(data, "node", node);
        sp_json_object_set_string(data, "name", plan->bitmap_disable);
        sp_json_object_set_string(action, "type", "block-dirty-bitmap-disable");
        sp_json_object_set(action, "data", data);
        sp_json_array_append(actions, action);
    }
}

static gboolean qemu_snapshot(SpDriver *drv, SpSnapshotPlan *plan, guint timeout_ms,
                              GError **error)
{
    g_autoptr(SpJson) args = sp_json_new_object();
    g_autoptr(SpJson) ret = NULL;
    SpJson *actions = sp_json_new_array();

    for (guint i = 0; i < plan->disks->len; i++) {
        SpPlanDisk *pd = g_ptr_array_index(plan->disks, i);
        SpJson *action = sp_json_new_object();
        SpJson *data = sp_json_new_object();
        const char *overlay = pd->overlay_node;
        /* Before the node becomes a backing file: it is still the writable top here. */
        add_bitmap_actions(actions, pd->disk->node, plan);
        /* Test fault: a real transaction failure, on the last action, so QEMU must undo the
         * actions before it. */
        if (sp_test_fail_at("transaction") && i + 1 == plan->disks->len)
            overlay = "sp-fault-no-such-node";
        sp_json_object_set_string(data, "node", pd->disk->node);
        sp_json_object_set_string(data, "overlay", overlay);
        sp_json_object_set_string(action, "type", "blockdev-snapshot");
        sp_json_object_set(action, "data", data);
        sp_json_array_append(actions, action);
    }
    sp_json_object_set(args, "actions", actions);
    ret = sp_qmp_execute(drv->qmp, "transaction", g_steal_pointer(&args), timeout_ms, error);
    if (ret == NULL) {
        g_prefix_error(error, "VM '%s': snapshot of %u disk(s): ", plan->vm_name,
                       plan->disks->len);
        return FALSE;
    }
    return TRUE;
}

static gboolean qemu_abort(SpDriver *drv, SpSnapshotPlan *plan, GError **error)
{
    gboolean ok = TRUE;
    for (guint i = 0; i < plan->disks->len; i++) {
        SpPlanDisk *pd = g_ptr_array_index(plan->disks, i);
        if (pd->added && drv->qmp != NULL) {
            g_autoptr(SpJson) args = sp_json_new_object();
            g_autoptr(SpJson) ret = NULL;
            g_autoptr(GError) local = NULL;
            sp_json_object_set_string(args, "node-name", pd->overlay_node);
            ret = sp_qmp_execute(drv->qmp, "blockdev-del", g_steal_pointer(&args),
                                 SP_QMP_DEFAULT_TIMEOUT_MS, &local);
            /* "Failed to find node" means it was never added: nothing to undo. */
            if (ret == NULL && strstr(local->message, "find node") == NULL) {
                if (ok)
                    g_propagate_prefixed_error(error, g_steal_pointer(&local),
                                               "disk %s: removing overlay node %s: ",
                                               pd->disk->name, pd->overlay_node);
                ok = FALSE;
                continue; /* the file is still open in QEMU: keep it */
            }
            pd->added = FALSE;
        }
        if (!sp_overlay_remove(pd, ok ? error : NULL))
            ok = FALSE;
    }
    return ok;
}

static gboolean qemu_committed(SpDriver *drv, SpSnapshotPlan *plan, gboolean *ret_committed,
                               GError **error)
{
    g_autoptr(GPtrArray) disks = sp_qmp_discover_disks(drv->qmp, error);
    return disks != NULL && sp_plan_committed(plan, disks, ret_committed, error);
}

static const char *qemu_config_problem(const SpVm *vm)
{
    if (vm->libvirt_domain != NULL || vm->libvirt_uri != NULL)
        return SP_DRIVER_PROBLEM_LIBVIRT_ONLY;
    if (!sp_vm_has_qmp(vm))
        return "the qemu driver needs the VM's QMP socket (--qmp)";
    if (vm->disks != NULL && vm->disks->len > 0)
        return SP_DRIVER_PROBLEM_DISKS;
    return NULL;
}

const SpDriverOps sp_driver_qemu_ops = {
    .name = "qemu",
    .plan = qemu_plan,
    .prepare = qemu_prepare,
    .snapshot = qemu_snapshot,
    .abort = qemu_abort,
    .committed = qemu_committed,
    .needs_qmp = TRUE,
    .one_transaction = TRUE,
    .stable_links = TRUE,
    .config_problem = qemu_config_problem,
    .backup = &sp_backup_qemu_ops,
};
