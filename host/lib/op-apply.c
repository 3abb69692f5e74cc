/* Apply (revert): the VM returns to a checkpoint. For a production checkpoint that means: the VM
 * is off, each disk gets a new overlay on top of the checkpoint's image (its other branches stay
 * as they are), and the stable per-disk path the VM's launcher opens is re-pointed to the new
 * overlay with rename(2) of a symlink, atomic for anyone opening it. A libvirt domain's
 * definition names its images itself: it is redefined onto the new overlays instead.
 *
 * Journal: intent (the plan) -> "prepared" (overlays created) -> "recorded" (tree edit, same
 * SQLite transaction) -> links re-pointed, discarded present removed -> done. Before "recorded"
 * a recovery rolls back (removes the new overlays); from it on, it finishes. */
#include "op-util.h"
#include "image-path.h"

#include <errno.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "stillpoint/channel.h"
#include "stillpoint/checkpoint-type.h"
#include "stillpoint/driver.h"
#include "stillpoint/present.h"
#include "stillpoint/standard.h"
#include "test-hooks.h"

#define STEP_PREPARED "prepared"
#define STEP_RECORDED "recorded"
#define QUIT_WAIT_MS 30000

typedef struct {
    char *disk;
    char *image;    /* the checkpoint's image: the new overlay's backing file */
    char *overlay;  /* the new overlay */
    char *present;  /* what the VM ran on (the current checkpoint's overlay); may be NULL */
    char *link;
    gboolean created; /* this run made the overlay's name (a name found taken is not ours) */
} ApplyDisk;

typedef struct {
    int64_t op_id;
    int64_t target;
    char *target_name;
    int64_t old_current;
    char *save;      /* name of the checkpoint that keeps the present, or NULL */
    GPtrArray *disks;
} ApplyPlan;

/* The plan's journal form (the keys are the journal's: keep them). */
static const SpField apply_plan_fields[] = {
    SP_FIELD("target", INT, ApplyPlan, target),
    SP_FIELD("name", STRING, ApplyPlan, target_name),
    SP_FIELD("old-current", INT, ApplyPlan, old_current),
    SP_FIELD("save", OPT_STRING, ApplyPlan, save),
};

static const SpField apply_disk_fields[] = {
    SP_FIELD("disk", OPT_STRING, ApplyDisk, disk),
    SP_FIELD("image", OPT_STRING, ApplyDisk, image),
    SP_FIELD("overlay", OPT_STRING, ApplyDisk, overlay),
    SP_FIELD("present", OPT_STRING, ApplyDisk, present),
    SP_FIELD("link", OPT_STRING, ApplyDisk, link),
};

static gpointer apply_disk_new(void)
{
    return g_new0(ApplyDisk, 1);
}

static gboolean apply_disk_ok(gconstpointer disk)
{
    const ApplyDisk *d = disk;
    return d->disk != NULL && d->image != NULL && d->overlay != NULL && d->link != NULL;
}

static const SpOpPlanForm apply_form = {
    "apply plan", sizeof(ApplyPlan), G_STRUCT_OFFSET(ApplyPlan, disks), apply_plan_fields,
    G_N_ELEMENTS(apply_plan_fields), apply_disk_fields, G_N_ELEMENTS(apply_disk_fields),
    apply_disk_new, apply_disk_ok};

static void apply_plan_free(ApplyPlan *p)
{
    sp_op_plan_free(&apply_form, p);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ApplyPlan, apply_plan_free)

/* The VM must be off. With force, a running QEMU is told to quit and waited for (the driver
 * stops a VM it reaches otherwise). */
/* force: NULL, or why the VM may be stopped (for the message). */
static gboolean ensure_off(SpVm *vm, const char *force, const SpOpReport *report, GError **error)
{
    g_autoptr(SpQmp) qmp = NULL;
    gint64 deadline = g_get_monotonic_time() + QUIT_WAIT_MS * 1000;
    const SpDriverOps *ops = sp_driver_ops_of(vm);
    if (ops->stop != NULL)
        return ops->stop(vm, force, report, error);
    if (!sp_op_connect_qmp_if_running(vm, &qmp, error))
        return FALSE;
    if (qmp == NULL)
        return TRUE;
    if (!force) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_BUSY,
                    "VM '%s' is running; shut it down first, or pass --force to stop it now "
                    "(QMP quit: like pulling the plug, unsaved guest data is lost)",
                    vm->name);
        return FALSE;
    }
    sp_op_say(report, "stopping VM '%s' (QMP quit, %s)", vm->name, force);
    /* The reply may be lost as QEMU exits: whether it stopped is checked below. */
    sp_json_free(sp_qmp_execute(qmp, "quit", NULL, SP_QMP_DEFAULT_TIMEOUT_MS, NULL));
    g_clear_pointer(&qmp, sp_qmp_free);
    /* Off = nothing listens on the QMP socket any more. */
    while (g_get_monotonic_time() < deadline) {
        g_autoptr(GError) local = NULL;
        if (sp_op_connect_qmp_if_running(vm, &qmp, &local) && qmp == NULL)
            return TRUE;
        g_clear_pointer(&qmp, sp_qmp_free);
        g_usleep(100 * 1000);
    }
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                "VM '%s' still answers on its QMP socket %u s after quit", vm->name,
                QUIT_WAIT_MS / 1000);
    return FALSE;
}

static const SpCheckpointDisk *cp_disk(const SpCheckpoint *cp, const char *disk)
{
    for (guint i = 0; cp != NULL && i < cp->disks->len; i++) {
        const SpCheckpointDisk *d = g_ptr_array_index(cp->disks, i);
        if (g_strcmp0(d->disk, disk) == 0)
            return d;
    }
    return NULL;
}

static ApplyPlan *make_plan(SpStore *store, SpVm *vm, const SpCheckpoint *target,
                            const char *save, GError **error)
{
    g_autoptr(ApplyPlan) p = sp_op_plan_new(&apply_form);
    g_autoptr(SpCheckpoint) current = NULL;
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    g_autofree char *stamp = g_date_time_format(now, "%Y%m%dT%H%M%S");
    guint32 nonce = g_random_int();

    if (vm->current != 0) {
        g_autofree char *ref = g_strdup_printf("#%" G_GINT64_FORMAT, vm->current);
        if ((current = sp_op_find_checkpoint(store, vm, ref, error)) == NULL)
            return NULL;
    } else if (save != NULL) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "VM '%s' runs on no checkpoint's overlay, so --save-current has nothing "
                    "stillpoint knows to keep; make a checkpoint while it runs instead",
                    vm->name);
        return NULL;
    }
    p->target = target->id;
    p->target_name = g_strdup(target->name);
    p->old_current = vm->current;
    p->save = g_strdup(save);
    for (guint i = 0; i < target->disks->len; i++) {
        const SpCheckpointDisk *td = g_ptr_array_index(target->disks, i);
        const SpCheckpointDisk *cd = cp_disk(current, td->disk);
        ApplyDisk *d = g_new0(ApplyDisk, 1);
        g_autofree char *dir = vm->overlay_dir != NULL ? g_strdup(vm->overlay_dir)
                                                       : g_path_get_dirname(td->image);
        g_autofree char *base = g_strdup_printf("%s-%s-%s-%08x.qcow2", vm->name, td->disk, stamp,
                                                nonce);
        g_strcanon(base, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-_", '_');
        d->disk = g_strdup(td->disk);
        d->image = g_strdup(td->image);
        d->overlay = g_build_filename(dir, base, NULL);
        d->present = cd != NULL ? g_strdup(cd->overlay) : NULL;
        d->link = sp_present_link_path(store, vm->name, td->disk);
        g_ptr_array_add(p->disks, d);
    }
    return g_steal_pointer(&p);
}

static gboolean create_overlays(SpStore *store, const SpVm *vm, ApplyPlan *p, GError **error)
{
    for (guint i = 0; i < p->disks->len; i++) {
        ApplyDisk *d = g_ptr_array_index(p->disks, i);
        /* -F from the store: the new overlay must never make QEMU guess its backing's format. */
        g_autofree char *fmt = sp_op_format_of(store, vm, d->image, error);
        SpImg backing = {.path = d->image, .format = fmt};
        g_auto(GStrv) argv = NULL;
        uint64_t dev = 0, ino = 0;
        if (fmt == NULL || !sp_op_chain_check(store, vm, &backing, error) ||
            (argv = sp_img_argv_create_overlay(&backing, d->overlay, -1, error)) == NULL ||
            !sp_image_dir_check_for(d->overlay, error)) {
            g_prefix_error(error, "disk %s: ", d->disk);
            return FALSE;
        }
        /* The name is made ours first: qemu-img create follows and truncates what it finds. */
        if (!sp_image_create_exclusive(d->overlay, &dev, &ino, error)) {
            g_prefix_error(error, "disk %s: cannot create overlay: ", d->disk);
            return FALSE;
        }
        d->created = TRUE;
        if (!sp_op_qemu_img(NULL, d->disk, (const char *const *)argv, error) ||
            !sp_image_same(d->overlay, dev, ino, error))
            return FALSE;
    }
    return TRUE;
}

/* only_created: this run's failure removes only the names it made; recovery from the journal
 * removes every planned name (random names in a checked directory: nobody else made them). */
static gboolean remove_overlays(ApplyPlan *p, gboolean only_created, GError **error)
{
    for (guint i = 0; i < p->disks->len; i++) {
        ApplyDisk *d = g_ptr_array_index(p->disks, i);
        if (only_created && !d->created)
            continue;
        if (!sp_op_unlink(d->overlay, error))
            return FALSE;
    }
    return TRUE;
}

static SpCheckpoint *saved_checkpoint(const ApplyPlan *p, int64_t vm_id)
{
    SpCheckpoint *cp = g_new0(SpCheckpoint, 1);
    cp->vm_id = vm_id;
    cp->name = g_strdup(p->save);
    /* Taken with the VM off (a running VM gets a checkpoint of its type first, save_running):
     * nothing vouches for how the guest stopped. */
    cp->type = g_strdup("crash");
    cp->consistency = g_strdup("crash");
    cp->requested = g_strdup("crash");
    cp->reason = g_strdup("the VM was off: only its disks were kept");
    cp->origin = g_strdup(SP_ORIGIN_APPLY);
    cp->made_by = sp_checkpoint_made_by_self();
    cp->disks = g_ptr_array_new_with_free_func((GDestroyNotify)sp_checkpoint_disk_free);
    for (guint i = 0; i < p->disks->len; i++) {
        ApplyDisk *d = g_ptr_array_index(p->disks, i);
        SpCheckpointDisk *cd = g_new0(SpCheckpointDisk, 1);
        cd->disk = g_strdup(d->disk);
        cd->node = g_strdup("");
        cd->image = g_strdup(d->present);
        cd->image_format = g_strdup("qcow2"); /* an overlay stillpoint made */
        g_ptr_array_add(cp->disks, cd);
    }
    return cp;
}

static gboolean record(SpStore *store, SpVm *vm, ApplyPlan *p, GError **error)
{
    if (!sp_store_transaction_begin(store, error))
        return FALSE;
    if (p->save != NULL) {
        g_autoptr(SpCheckpoint) s = saved_checkpoint(p, vm->id);
        if (!sp_store_checkpoint_insert(store, s, error))
            goto fail;
    }
    for (guint i = 0; i < p->disks->len; i++) {
        ApplyDisk *d = g_ptr_array_index(p->disks, i);
        /* A discarded present is no checkpoint's overlay any more. */
        if (p->save == NULL && p->old_current != 0 && p->old_current != p->target &&
            !sp_store_checkpoint_set_disk_overlay(store, p->old_current, d->disk, NULL, NULL,
                                                  error))
            goto fail;
        if (!sp_store_checkpoint_set_disk_overlay(store, p->target, d->disk, d->overlay, NULL,
                                                  error))
            goto fail;
    }
    if (!sp_store_vm_set_current(store, vm->id, p->target, error) ||
        !sp_store_op_step(store, p->op_id, STEP_RECORDED, error))
        goto fail;
    if (!sp_store_transaction_commit(store, error))
        return FALSE;
    sp_test_crash_point(STEP_RECORDED);
    return TRUE;
fail:
    sp_store_transaction_rollback(store);
    return FALSE;
}

static gboolean referenced(SpStore *store, SpVm *vm, const char *path, gboolean *ret,
                           GError **error)
{
    g_autoptr(GPtrArray) cps = sp_store_checkpoint_list(store, vm->id, error);
    *ret = FALSE;
    if (cps == NULL)
        return FALSE;
    for (guint i = 0; i < cps->len; i++) {
        SpCheckpoint *cp = g_ptr_array_index(cps, i);
        for (guint j = 0; j < cp->disks->len; j++) {
            SpCheckpointDisk *cd = g_ptr_array_index(cp->disks, j);
            if (g_strcmp0(cd->image, path) == 0 || g_strcmp0(cd->overlay, path) == 0)
                *ret = TRUE;
        }
    }
    return TRUE;
}

/* The VM's launcher starts from the new overlays: its stable links re-pointed, or what its
 * driver keeps instead (a libvirt domain's definition). */
static gboolean point_vm(SpVm *vm, ApplyPlan *p, const SpOpReport *report, GError **error)
{
    g_autoptr(GHashTable) sources = g_hash_table_new(g_str_hash, g_str_equal);
    const SpDriverOps *ops = sp_driver_ops_of(vm);
    for (guint i = 0; i < p->disks->len; i++) {
        ApplyDisk *d = g_ptr_array_index(p->disks, i);
        g_hash_table_insert(sources, d->disk, d->overlay);
        if (ops->point != NULL)
            continue;
        if (!sp_present_point(d->link, d->overlay, d->disk, error))
            return FALSE;
        sp_op_say(report, "disk %s: %s -> %s", d->disk, d->link, d->overlay);
    }
    return ops->point == NULL || ops->point(vm, sources, report, error);
}

static gboolean finish(SpStore *store, SpVm *vm, ApplyPlan *p, const SpOpReport *report,
                       GError **error)
{
    if (!point_vm(vm, p, report, error))
        return FALSE;
    for (guint i = 0; i < p->disks->len; i++) {
        ApplyDisk *d = g_ptr_array_index(p->disks, i);
        gboolean ref = TRUE;
        /* The discarded present goes, unless a checkpoint names it (it was saved). */
        if (d->present == NULL || !referenced(store, vm, d->present, &ref, error))
            continue;
        if (!ref) {
            sp_op_say(report, "disk %s: discarding the changes since the checkpoint (%s)",
                      d->disk, d->present);
            if (!sp_op_unlink(d->present, error))
                return FALSE;
        }
    }
    /* The kept present is a checkpoint's image now: read-only, like every other. */
    return sp_store_op_finish(store, p->op_id, SP_OP_DONE, error) &&
           sp_present_sync(store, vm, NULL, error);
}

static gboolean prepare(SpStore *store, SpVm *vm, ApplyPlan *plan, GError **error)
{
    if (!create_overlays(store, vm, plan, error) ||
        !sp_store_op_step(store, plan->op_id, STEP_PREPARED, error))
        return FALSE;
    sp_test_crash_point(STEP_PREPARED);
    return record(store, vm, plan, error);
}

static gboolean vm_running(SpVm *vm, gboolean *ret, GError **error)
{
    g_autoptr(SpQmp) qmp = NULL;
    const SpDriverOps *ops = sp_driver_ops_of(vm);
    if (ops->running != NULL)
        return ops->running(vm, ret, error);
    if (!sp_op_connect_qmp_if_running(vm, &qmp, error))
        return FALSE;
    *ret = qmp != NULL;
    return TRUE;
}

/* Hyper-V's "create checkpoint and apply": a running VM gets a checkpoint of its checkpoint type
 * (production: the guest quiesced) before it is stopped. *ret_saved says one was made; the VM
 * then writes on top of it until it stops, and that is discarded like any present. */
static gboolean save_running(SpStore *store, SpVm *vm, const char *name,
                             const SpOpReport *report, gboolean *ret_saved, GError **error)
{
    SpCreateOptions opts = {.name = name, .origin = SP_ORIGIN_APPLY};
    g_autoptr(SpCheckpoint) cp = NULL;
    gboolean running = FALSE;

    *ret_saved = FALSE;
    if (!vm_running(vm, &running, error))
        return FALSE;
    if (!running)
        return TRUE;
    if (!sp_checkpoint_type_resolve(vm, NULL, NULL, &opts, error))
        return FALSE;
    sp_op_say(report, "VM '%s' runs: keeping its present as checkpoint '%s' (%s) before it is "
                      "stopped",
              vm->name, name, opts.requested);
    cp = sp_coordinator_create(store, vm, &opts, report != NULL ? report->progress : NULL,
                               report != NULL ? report->user_data : NULL, error);
    if (cp == NULL) {
        g_prefix_error(error, "VM '%s': nothing was applied, the present could not be kept: ",
                       vm->name);
        return FALSE;
    }
    *ret_saved = TRUE;
    return TRUE;
}

gboolean sp_op_apply(SpStore *store, SpVm *vm, const char *ref, const char *save_current,
                     gboolean force, const SpOpReport *report, GError **error)
{
    g_autoptr(SpCheckpoint) target = NULL;
    g_autoptr(ApplyPlan) plan = NULL;
    g_autoptr(SpVm) fresh = NULL;
    g_autofree char *payload = NULL;
    gboolean exists = FALSE, saved = FALSE;

    if (!sp_op_images_ours(vm, "revert to", error) ||
        (target = sp_op_find_checkpoint(store, vm, ref, error)) == NULL)
        return FALSE;
    if (save_current != NULL) {
        if (!sp_checkpoint_name_valid(save_current, error) ||
            !sp_store_checkpoint_name_exists(store, vm->id, save_current, &exists, error))
            return FALSE;
        if (exists) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS,
                        "VM '%s' already has a checkpoint named '%s'", vm->name, save_current);
            return FALSE;
        }
    }
    if (save_current != NULL && !save_running(store, vm, save_current, report, &saved, error))
        return FALSE;
    /* After a save the VM's current checkpoint is the one just made. */
    if ((fresh = sp_store_vm_get(store, vm->name, error)) == NULL ||
        (plan = make_plan(store, fresh, target, saved ? NULL : save_current, error)) == NULL)
        return FALSE;
    if (!ensure_off(vm, saved ? "its present is kept as a checkpoint" : force ? "as --force asks"
                                                                              : NULL,
                    report, error))
        return FALSE;
    payload = sp_op_plan_write(&apply_form, plan);
    if (!sp_store_op_begin(store, vm->id, "apply", payload, &plan->op_id, error))
        return FALSE;
    sp_test_crash_point("planned");
    sp_op_say(report, "applying checkpoint '%s'%s%s", target->name,
              plan->save != NULL ? ", keeping the present as " : "",
              plan->save != NULL ? plan->save : "");
    if (!prepare(store, vm, plan, error)) {
        g_autoptr(GError) local = NULL;
        if (!remove_overlays(plan, TRUE, &local) ||
            !sp_store_op_finish(store, plan->op_id, SP_OP_ROLLED_BACK, &local))
            g_prefix_error(error, "(cleanup failed too: %s) ", local->message);
        return FALSE;
    }
    return finish(store, vm, plan, report, error);
}

gboolean sp_op_recover_apply(SpStore *store, SpVm *vm, SpOp *op, const SpOpReport *report,
                             GError **error)
{
    g_autoptr(ApplyPlan) plan = sp_op_plan_read(&apply_form, op->payload, error);
    if (plan == NULL)
        return FALSE;
    plan->op_id = op->id;
    if (g_strcmp0(op->step, STEP_RECORDED) == 0) {
        sp_op_say(report, "recovery: finishing the apply of checkpoint '%s'", plan->target_name);
        return finish(store, vm, plan, report, error);
    }
    sp_op_say(report, "recovery: rolling back the apply of checkpoint '%s' (step %s)",
              plan->target_name, op->step);
    return remove_overlays(plan, FALSE, error) &&
           sp_store_op_finish(store, op->id, SP_OP_ROLLED_BACK, error);
}

/* Has anything been written to the overlay itself (not its backing chain)? */
static gboolean overlay_written(SpStore *store, const SpVm *vm, const char *overlay,
                                gboolean *ret, GError **error)
{
    g_autofree char *out = NULL, *fmt = NULL;
    g_autoptr(SpJson) map = NULL;
    g_auto(GStrv) argv = NULL;
    SpImg img = {.path = overlay};
    *ret = TRUE;
    if ((fmt = sp_op_format_of(store, vm, overlay, error)) == NULL)
        return FALSE;
    img.format = fmt;
    if (!sp_op_chain_check(store, vm, &img, error) ||
        (argv = sp_img_argv_map(&img, error)) == NULL ||
        !sp_op_qemu_img_output((const char *const *)argv, &out, error))
        return FALSE;
    if (out == NULL || sp_json_parse(out, strlen(out), NULL, &map, NULL) != SP_OK) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "qemu-img map %s failed", overlay);
        return FALSE;
    }
    *ret = FALSE;
    for (size_t i = 0; i < sp_json_array_len(map); i++) {
        const SpJson *e = sp_json_array_get(map, i);
        if (sp_json_object_get_int(e, "depth", 1) == 0 && sp_json_object_get_bool(e, "data", false))
            *ret = TRUE;
    }
    return TRUE;
}

gboolean sp_op_resume(SpStore *store, SpVm *vm, const SpOpReport *report, GError **error)
{
    g_autoptr(SpCheckpoint) cp = NULL;
    g_autoptr(SpQmp) qmp = NULL;
    g_autofree char *ref = g_strdup_printf("#%" G_GINT64_FORMAT, vm->current);
    g_autofree char *status = NULL;
    g_autoptr(SpJson) ret = NULL;

    if (vm->current == 0 || (cp = sp_op_find_checkpoint(store, vm, ref, error)) == NULL ||
        cp->state == NULL) {
        if (error != NULL && *error == NULL)
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "VM '%s' is not at a standard checkpoint: nothing to resume (apply one "
                        "first)",
                        vm->name);
        return FALSE;
    }
    for (guint i = 0; i < cp->disks->len; i++) {
        SpCheckpointDisk *d = g_ptr_array_index(cp->disks, i);
        gboolean written = TRUE;
        if (!overlay_written(store, vm, d->overlay, &written, error))
            return FALSE;
        if (written) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                        "VM '%s', disk %s: written since checkpoint '%s' was applied; its saved "
                        "memory no longer matches the disk (apply it again first)",
                        vm->name, d->disk, cp->name);
            return FALSE;
        }
    }
    if (sp_driver_ops_of(vm)->resume != NULL)
        return sp_driver_ops_of(vm)->resume(vm, cp, report, error);
    if (!sp_op_connect_qmp_if_running(vm, &qmp, error))
        return FALSE;
    if (qmp == NULL || !sp_standard_runstate(qmp, &status, error) ||
        g_strcmp0(status, "inmigrate") != 0) {
        if (error != NULL && *error == NULL)
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                        "VM '%s': start QEMU with '-incoming defer' from the stable disk paths "
                        "first (QEMU is %s)",
                        vm->name, qmp == NULL ? "not running" : status);
        return FALSE;
    }
    sp_op_say(report, "loading the VM's state from %s", cp->state);
    if (!sp_standard_load(qmp, cp->state, error))
        return FALSE;
    ret = sp_qmp_execute(qmp, "cont", NULL, SP_QMP_DEFAULT_TIMEOUT_MS, error);
    return ret != NULL;
}
