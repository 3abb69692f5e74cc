/* The libvirt driver: libvirt owns the domain's monitor, so the snapshot is libvirt's own
 * disk-only external snapshot, onto overlays created before the freeze (REUSE_EXT) and without
 * its quiesce (the coordinator froze the guest, with a lease). libvirt then knows the new chain
 * and lists the checkpoint among its snapshots. */
#include "stillpoint/driver.h"

#include <gio/gio.h>

#include "stillpoint/libvirt.h"
#include "test-hooks.h"

static SpLibvirt *domain_of(SpDriver *drv, GError **error)
{
    if (drv->priv == NULL)
        drv->priv = sp_libvirt_open(drv->vm->libvirt_uri, drv->vm->libvirt_domain, error);
    return drv->priv;
}

static gboolean libvirt_plan(SpDriver *drv, SpSnapshotPlan *plan, const char *overlay_dir,
                             GError **error)
{
    SpLibvirt *lv = domain_of(drv, error);
    g_autoptr(GPtrArray) disks = NULL;
    if (lv == NULL)
        return FALSE;
    if (!sp_libvirt_is_running(lv)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_CONNECTED,
                    "VM '%s': libvirt domain '%s' is not running", plan->vm_name,
                    drv->vm->libvirt_domain);
        return FALSE;
    }
    if ((disks = sp_libvirt_disks(lv, error)) == NULL)
        return FALSE;
    if (disks->len == 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                    "VM '%s' has no writable disk to checkpoint", plan->vm_name);
        return FALSE;
    }
    sp_snapshot_plan_add_disks(plan, disks);
    return sp_plan_overlays(plan, overlay_dir, FALSE, error);
}

static gboolean libvirt_prepare(SpDriver *drv, SpSnapshotPlan *plan, GError **error)
{
    (void)drv;
    for (guint i = 0; i < plan->disks->len; i++) {
        if (!sp_overlay_create(g_ptr_array_index(plan->disks, i), error))
            return FALSE;
    }
    return TRUE;
}

static gboolean libvirt_snapshot(SpDriver *drv, SpSnapshotPlan *plan, guint timeout_ms,
                                 GError **error)
{
    SpLibvirt *lv = domain_of(drv, error);
    g_autoptr(GPtrArray) targets = g_ptr_array_new();
    g_autoptr(GPtrArray) overlays = g_ptr_array_new();
    g_autofree char *name = NULL;
    (void)timeout_ms; /* libvirt bounds its own monitor calls */

    if (lv == NULL)
        return FALSE;
    if (sp_test_fail_at("transaction")) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "test fault at the snapshot");
        return FALSE;
    }
    for (guint i = 0; i < plan->disks->len; i++) {
        SpPlanDisk *pd = g_ptr_array_index(plan->disks, i);
        g_ptr_array_add(targets, pd->disk->name);
        g_ptr_array_add(overlays, pd->overlay);
    }
    g_ptr_array_add(targets, NULL);
    g_ptr_array_add(overlays, NULL);
    name = sp_libvirt_snapshot_name(((SpPlanDisk *)g_ptr_array_index(plan->disks, 0))->overlay);
    if (!sp_libvirt_snapshot(lv, name, plan->checkpoint_name,
                             (const char *const *)targets->pdata,
                             (const char *const *)overlays->pdata,
                             g_strcmp0(plan->type, "standard") == 0 ? plan->state_file : NULL,
                             error)) {
        g_prefix_error(error, "VM '%s': ", plan->vm_name);
        return FALSE;
    }
    return TRUE;
}

static gboolean libvirt_abort(SpDriver *drv, SpSnapshotPlan *plan, GError **error)
{
    gboolean ok = TRUE;
    (void)drv;
    for (guint i = 0; i < plan->disks->len; i++) {
        if (!sp_overlay_remove(g_ptr_array_index(plan->disks, i), ok ? error : NULL))
            ok = FALSE;
    }
    return ok;
}

static gboolean libvirt_committed(SpDriver *drv, SpSnapshotPlan *plan, gboolean *ret_committed,
                                  GError **error)
{
    SpLibvirt *lv = domain_of(drv, error);
    g_autoptr(GPtrArray) disks = NULL;
    if (lv == NULL || (disks = sp_libvirt_disks(lv, error)) == NULL)
        return FALSE;
    return sp_plan_committed(plan, disks, ret_committed, error);
}

static void libvirt_free(SpDriver *drv)
{
    sp_libvirt_free(drv->priv);
}

const SpDriverOps sp_driver_libvirt_ops = {
    .name = "libvirt",
    .plan = libvirt_plan,
    .prepare = libvirt_prepare,
    .snapshot = libvirt_snapshot,
    .abort = libvirt_abort,
    .committed = libvirt_committed,
    .free = libvirt_free,
    .saves_state = TRUE,
};
