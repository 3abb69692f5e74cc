/* The libvirt driver: libvirt owns the domain's monitor, so the snapshot is libvirt's own
 * disk-only external snapshot, onto overlays created before the freeze (REUSE_EXT) and without
 * its quiesce (the coordinator froze the guest, with a lease). libvirt then knows the new chain
 * and lists the checkpoint among its snapshots. */
#include "stillpoint/driver.h"

#include <gio/gio.h>
#include <string.h>

#include "backup-internal.h"
#include "op-util.h"
#include "stillpoint/agent.h"
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
    return (disks = sp_libvirt_disks(lv, error)) != NULL &&
           sp_plan_overlay_disks(plan, disks, overlay_dir, FALSE, error);
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

/* ---- What the other operations ask of a libvirt domain. ---- */

static const char *libvirt_config_problem(const SpVm *vm)
{
    if (vm->libvirt_domain == NULL)
        return "the libvirt driver needs the domain's name (--domain)";
    if (sp_vm_has_qmp(vm) || vm->agent_socket != NULL)
        return "libvirt owns the domain's QMP and agent sockets; give the domain (--domain, "
               "--uri), not --qmp or --agent";
    if (vm->disks != NULL && vm->disks->len > 0)
        return SP_DRIVER_PROBLEM_DISKS;
    return NULL;
}

static SpLibvirt *open_domain(const SpVm *vm, GError **error)
{
    return sp_libvirt_open(vm->libvirt_uri, vm->libvirt_domain, error);
}

static GPtrArray *libvirt_discover_disks(const SpVm *vm, GError **error)
{
    g_autoptr(SpLibvirt) lv = open_domain(vm, error);
    return lv != NULL ? sp_libvirt_disks(lv, error) : NULL;
}

static gboolean libvirt_domain_if_running(const SpVm *vm, SpLibvirt **ret, GError **error)
{
    g_autoptr(SpLibvirt) lv = NULL;
    *ret = NULL;
    if ((lv = open_domain(vm, error)) == NULL) {
        g_prefix_error(error, "VM '%s': ", vm->name);
        return FALSE;
    }
    if (sp_libvirt_is_running(lv))
        *ret = g_steal_pointer(&lv);
    return TRUE;
}

static gboolean libvirt_running(const SpVm *vm, gboolean *ret, GError **error)
{
    g_autoptr(SpLibvirt) lv = NULL;
    if (!libvirt_domain_if_running(vm, &lv, error))
        return FALSE;
    *ret = lv != NULL;
    return TRUE;
}

/* Off, or destroyed (force). */
static gboolean libvirt_stop(const SpVm *vm, const char *force, const SpOpReport *report,
                             GError **error)
{
    g_autoptr(SpLibvirt) lv = NULL;
    if (!libvirt_domain_if_running(vm, &lv, error))
        return FALSE;
    if (lv == NULL)
        return TRUE;
    if (!force) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_BUSY,
                    "VM '%s': libvirt domain '%s' is running; shut it down first (virsh "
                    "shutdown), or pass --force to destroy it now (like pulling the plug, "
                    "unsaved guest data is lost)",
                    vm->name, vm->libvirt_domain);
        return FALSE;
    }
    sp_op_say(report, "stopping libvirt domain '%s' (destroy, %s)", vm->libvirt_domain, force);
    return sp_libvirt_destroy(lv, error);
}

/* The domain's definition names its images itself: it is redefined onto the new overlays. */
static gboolean libvirt_point(const SpVm *vm, GHashTable *sources, const SpOpReport *report,
                              GError **error)
{
    g_autoptr(SpLibvirt) lv = NULL;
    sp_op_say(report, "redefining libvirt domain '%s' on the checkpoint's new overlays",
              vm->libvirt_domain);
    return (lv = open_domain(vm, error)) != NULL && sp_libvirt_redefine_disks(lv, sources, error);
}

/* The domain goes on from the saved state through libvirt's restore, its disks on the overlays
 * the apply made. */
static gboolean libvirt_resume(const SpVm *vm, const SpCheckpoint *cp, const SpOpReport *report,
                               GError **error)
{
    g_autoptr(SpLibvirt) lv = open_domain(vm, error);
    g_autoptr(GHashTable) sources = g_hash_table_new(g_str_hash, g_str_equal);

    if (lv == NULL)
        return FALSE;
    if (sp_libvirt_is_running(lv)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    "VM '%s': libvirt domain '%s' is running: resume restores a shut-off domain "
                    "from checkpoint '%s' (apply it again first)",
                    vm->name, vm->libvirt_domain, cp->name);
        return FALSE;
    }
    for (guint i = 0; i < cp->disks->len; i++) {
        SpCheckpointDisk *d = g_ptr_array_index(cp->disks, i);
        g_hash_table_insert(sources, d->disk, d->overlay);
    }
    sp_op_say(report, "restoring libvirt domain '%s' from %s", vm->libvirt_domain, cp->state);
    return sp_libvirt_restore(lv, cp->state, sources, error);
}

/* The domain's definition names the image it writes to; a file-level merge of that image
 * (domain shut off) would leave the definition pointing at a removed file. */
static gboolean libvirt_merge_possible(const SpVm *vm, gboolean running, const char *cp_name,
                                       const char *disk, const char *mode, gboolean top,
                                       GError **error)
{
    if (strcmp(mode, "stream") == 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "checkpoint '%s', disk %s: branches are not supported with the libvirt "
                    "driver", cp_name, disk);
        return FALSE;
    }
    if (!running && strcmp(mode, "commit") == 0 && top) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "checkpoint '%s', disk %s: merging the image libvirt's domain '%s' writes to "
                    "needs the domain running (libvirt moves its definition onto the merged "
                    "image); start it, or delete an older checkpoint",
                    cp_name, disk, vm->libvirt_domain);
        return FALSE;
    }
    return TRUE;
}

static gboolean libvirt_snapshot_find(const SpVm *vm, const char *cp_name, char **ret,
                                      GError **error)
{
    g_autoptr(SpLibvirt) lv = open_domain(vm, error);
    return lv != NULL && sp_libvirt_snapshot_find(lv, cp_name, ret, error);
}

/* libvirt's snapshot takes the new name as its description (its own name stays). */
static gboolean libvirt_rename(SpStore *store, const SpVm *vm, const SpCheckpoint *cp,
                               const char *new_name, GError **error)
{
    g_autoptr(SpLibvirt) lv = NULL;
    g_autofree char *snapshot = NULL;
    gboolean exists = FALSE, found = FALSE;

    /* The store would refuse a taken name: refuse it before libvirt changes anything. */
    if (!sp_store_checkpoint_name_exists(store, vm->id, new_name, &exists, error))
        return FALSE;
    if (exists && g_strcmp0(cp->name, new_name) != 0)
        return TRUE; /* the store's rename reports it */
    if ((lv = open_domain(vm, error)) == NULL ||
        !sp_libvirt_snapshot_find(lv, cp->name, &snapshot, error))
        return FALSE;
    return snapshot == NULL ||
           sp_libvirt_snapshot_describe(lv, snapshot, new_name, &found, error);
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
    .own_disk_nodes = TRUE,
    .config_problem = libvirt_config_problem,
    .discover_disks = libvirt_discover_disks,
    .agent_connect = sp_agent_connect_libvirt,
    .agent_describe = sp_agent_describe_libvirt,
    .domain_if_running = libvirt_domain_if_running,
    .running = libvirt_running,
    .stop = libvirt_stop,
    .point = libvirt_point,
    .resume = libvirt_resume,
    .merge_possible = libvirt_merge_possible,
    .snapshot_find = libvirt_snapshot_find,
    .rename = libvirt_rename,
    .backup = &sp_backup_libvirt_ops,
};
