/* What all drivers share: disks, the snapshot plan and its journal form, overlays, disk discovery
 * (QMP, or libvirt), a VM's registration rules and the driver factory. */
#include "stillpoint/driver.h"
#include "op-util.h"
#include "image-path.h"

#include <errno.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>

#include "stillpoint/coordinator.h"

/* The journal form of a plan and its disks (the keys are the journal's: keep them). */
static const SpField disk_fields[] = {
    SP_FIELD("disk", STRING, SpDisk, name),
    SP_FIELD("node", STRING, SpDisk, node),
    SP_FIELD("image", STRING, SpDisk, image),
    SP_FIELD("format", OPT_STRING, SpDisk, format),
    SP_FIELD("size", INT, SpDisk, size),
    SP_FIELD("serial", OPT_STRING, SpDisk, serial),
};

static const SpField plan_disk_fields[] = {
    SP_FIELD("overlay", OPT_STRING, SpPlanDisk, overlay),
    SP_FIELD("overlay-node", OPT_STRING, SpPlanDisk, overlay_node),
};

static const SpField plan_fields[] = {
    SP_FIELD("vm", STRING, SpSnapshotPlan, vm_name),
    SP_FIELD("name", STRING, SpSnapshotPlan, checkpoint_name),
    SP_FIELD("type", OPT_STRING, SpSnapshotPlan, type),
    SP_FIELD("requested", OPT_STRING, SpSnapshotPlan, requested),
    SP_FIELD("reason", OPT_STRING, SpSnapshotPlan, reason),
    SP_FIELD("origin", OPT_STRING, SpSnapshotPlan, origin),
    SP_FIELD("made-by", OPT_STRING, SpSnapshotPlan, made_by),
    SP_FIELD("state-file", OPT_STRING, SpSnapshotPlan, state_file),
    SP_FIELD("was-running", BOOL, SpSnapshotPlan, was_running),
};

void sp_disk_free(SpDisk *disk)
{
    if (disk == NULL)
        return;
    sp_fields_clear(disk_fields, G_N_ELEMENTS(disk_fields), disk);
    if (disk->below != NULL)
        g_ptr_array_unref(disk->below);
    g_free(disk);
}

SpDisk *sp_disk_new(const char *name, const char *node, const char *image, const char *format,
                    const char *serial)
{
    SpDisk *d = g_new0(SpDisk, 1);
    d->name = g_strdup(name);
    d->node = g_strdup(node);
    d->image = g_strdup(image);
    d->format = g_strdup(format);
    d->serial = g_strdup(serial);
    return d;
}

const SpDisk *sp_disk_find(GPtrArray *disks, const char *name)
{
    for (guint i = 0; disks != NULL && i < disks->len; i++) {
        const SpDisk *d = g_ptr_array_index(disks, i);
        if (g_strcmp0(d->name, name) == 0)
            return d;
    }
    return NULL;
}

static void disk_layer_free(SpDiskLayer *l)
{
    g_free(l->image);
    g_free(l->format);
    g_free(l);
}

gboolean sp_plan_record_formats(SpStore *store, int64_t vm_id, const SpSnapshotPlan *plan,
                                GError **error)
{
    for (guint i = 0; i < plan->disks->len; i++) {
        const SpDisk *d = ((SpPlanDisk *)g_ptr_array_index(plan->disks, i))->disk;
        if (d->format != NULL &&
            !sp_store_image_format_record(store, vm_id, d->image, d->format, error))
            return FALSE;
        for (guint j = 0; d->below != NULL && j < d->below->len; j++) {
            const SpDiskLayer *l = g_ptr_array_index(d->below, j);
            if (!sp_store_image_format_record(store, vm_id, l->image, l->format, error))
                return FALSE;
        }
    }
    return TRUE;
}

/* The layers under a disk's top as QEMU opened them (query-block's nested ImageInfo). */
static GPtrArray *layers_below(const SpJson *image)
{
    GPtrArray *below = g_ptr_array_new_with_free_func((GDestroyNotify)disk_layer_free);
    const SpJson *info = sp_json_object_get(image, "backing-image");
    for (guint depth = 0; info != NULL && depth < 256; depth++) {
        g_autofree char *file = sp_qmp_local_filename(sp_json_object_get_string(info,
                                                                                "filename"));
        const char *format = sp_json_object_get_string(info, "format");
        if (file != NULL && file[0] == '/' && format != NULL) {
            SpDiskLayer *l = g_new0(SpDiskLayer, 1);
            char *real = realpath(file, NULL);
            l->image = g_strdup(real != NULL ? real : file);
            free(real);
            l->format = g_strdup(format);
            g_ptr_array_add(below, l);
        }
        info = sp_json_object_get(info, "backing-image");
    }
    return below;
}

static void plan_disk_free(SpPlanDisk *pd)
{
    sp_disk_free(pd->disk);
    sp_fields_clear(plan_disk_fields, G_N_ELEMENTS(plan_disk_fields), pd);
    g_free(pd);
}

SpSnapshotPlan *sp_snapshot_plan_new(const char *vm_name, const char *checkpoint_name)
{
    SpSnapshotPlan *plan = g_new0(SpSnapshotPlan, 1);
    plan->vm_name = g_strdup(vm_name);
    plan->checkpoint_name = g_strdup(checkpoint_name);
    plan->disks = g_ptr_array_new_with_free_func((GDestroyNotify)plan_disk_free);
    return plan;
}

void sp_snapshot_plan_free(SpSnapshotPlan *plan)
{
    if (plan == NULL)
        return;
    sp_fields_clear(plan_fields, G_N_ELEMENTS(plan_fields), plan);
    g_ptr_array_unref(plan->disks);
    g_free(plan);
}

SpCheckpoint *sp_checkpoint_from_plan(const SpSnapshotPlan *plan, int64_t vm_id,
                                      const char *consistency)
{
    SpCheckpoint *cp = g_new0(SpCheckpoint, 1);
    cp->vm_id = vm_id;
    cp->name = g_strdup(plan->checkpoint_name);
    cp->type = g_strdup(plan->type != NULL ? plan->type : "production");
    cp->consistency = g_strdup(consistency);
    cp->requested = g_strdup(plan->requested);
    cp->reason = g_strdup(plan->reason);
    cp->origin = g_strdup(plan->origin);
    cp->made_by = g_strdup(plan->made_by);
    cp->created_us = g_get_real_time();
    if (g_strcmp0(plan->type, "standard") == 0)
        cp->state = g_strdup(plan->state_file);
    cp->disks = g_ptr_array_new_with_free_func((GDestroyNotify)sp_checkpoint_disk_free);
    for (guint i = 0; i < plan->disks->len; i++) {
        SpPlanDisk *pd = g_ptr_array_index(plan->disks, i);
        SpCheckpointDisk *d = g_new0(SpCheckpointDisk, 1);
        d->disk = g_strdup(pd->disk->name);
        d->node = g_strdup(pd->disk->node);
        d->image = g_strdup(pd->disk->image);
        d->overlay = g_strdup(pd->overlay);
        d->overlay_node = g_strdup(pd->overlay_node);
        /* What QEMU (or the VM's definition) says the image is, never its header. */
        d->image_format = g_strdup(pd->disk->format);
        g_ptr_array_add(cp->disks, d);
    }
    return cp;
}

void sp_snapshot_plan_add_disks(SpSnapshotPlan *plan, GPtrArray *disks)
{
    for (guint i = 0; i < disks->len; i++) {
        SpPlanDisk *pd = g_new0(SpPlanDisk, 1);
        pd->disk = g_steal_pointer(&g_ptr_array_index(disks, i));
        g_ptr_array_add(plan->disks, pd);
    }
    g_ptr_array_set_size(disks, 0);
}

char *sp_snapshot_plan_to_json(const SpSnapshotPlan *plan)
{
    g_autoptr(SpJson) root = sp_json_new_object();
    SpJson *disks = sp_json_new_array();
    sp_fields_to_json(root, plan_fields, G_N_ELEMENTS(plan_fields), plan);
    for (guint i = 0; i < plan->disks->len; i++) {
        SpPlanDisk *pd = g_ptr_array_index(plan->disks, i);
        SpJson *d = sp_json_new_object();
        sp_fields_to_json(d, disk_fields, G_N_ELEMENTS(disk_fields), pd->disk);
        sp_fields_to_json(d, plan_disk_fields, G_N_ELEMENTS(plan_disk_fields), pd);
        sp_json_array_append(disks, d);
    }
    return sp_op_plan_serialize(root, disks);
}

SpSnapshotPlan *sp_snapshot_plan_from_json(const char *text, GError **error)
{
    g_autoptr(SpJson) root = NULL;
    g_autoptr(SpSnapshotPlan) plan = NULL;
    const SpJson *disks;
    SpJsonError jerr;

    if (sp_json_parse(text, strlen(text), NULL, &root, &jerr) != SP_OK ||
        sp_json_type(root) != SP_JSON_OBJECT) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "journal entry is not a valid plan");
        return NULL;
    }
    plan = sp_snapshot_plan_new(NULL, NULL);
    sp_fields_from_json(root, plan_fields, G_N_ELEMENTS(plan_fields), plan);
    disks = sp_json_object_get(root, "disks");
    for (size_t i = 0; i < sp_json_array_len(disks); i++) {
        const SpJson *d = sp_json_array_get(disks, i);
        SpPlanDisk *pd = g_new0(SpPlanDisk, 1);
        pd->disk = g_new0(SpDisk, 1);
        sp_fields_from_json(d, disk_fields, G_N_ELEMENTS(disk_fields), pd->disk);
        sp_fields_from_json(d, plan_disk_fields, G_N_ELEMENTS(plan_disk_fields), pd);
        /* After a crash we do not know how far it got: abort must try everything. */
        pd->created = pd->overlay != NULL;
        pd->added = pd->overlay_node != NULL;
        g_ptr_array_add(plan->disks, pd);
    }
    return g_steal_pointer(&plan);
}

/* The device's serial, when the device has one (virtio-blk, scsi-hd); NULL otherwise. */
static char *disk_serial(SpQmp *qmp, const char *qdev)
{
    g_autofree char *path = NULL;
    g_autoptr(SpJson) args = NULL;
    g_autoptr(SpJson) ret = NULL;
    if (qdev == NULL || qdev[0] == '\0')
        return NULL;
    path = g_strdup(qdev);
    if (g_str_has_suffix(path, "/virtio-backend"))
        path[strlen(path) - strlen("/virtio-backend")] = '\0';
    args = sp_json_new_object();
    sp_json_object_set_string(args, "path", path);
    sp_json_object_set_string(args, "property", "serial");
    ret = sp_qmp_execute(qmp, "qom-get", g_steal_pointer(&args), SP_QMP_DEFAULT_TIMEOUT_MS, NULL);
    if (ret == NULL || sp_json_get_string(ret) == NULL || sp_json_get_string(ret)[0] == '\0')
        return NULL;
    return g_strdup(sp_json_get_string(ret));
}

static char *disk_name(const SpJson *entry, const SpJson *inserted)
{
    const char *device = sp_json_object_get_string(entry, "device");
    const char *qdev = sp_json_object_get_string(entry, "qdev");
    if (device != NULL && device[0] != '\0')
        return g_strdup(device);
    if (qdev != NULL && qdev[0] != '\0') {
        g_auto(GStrv) parts = g_strsplit(qdev, "/", -1);
        guint n = g_strv_length(parts);
        /* "/machine/peripheral/vd0/virtio-backend" names the device "vd0". */
        for (guint i = n; i > 0; i--) {
            if (parts[i - 1][0] != '\0' && g_strcmp0(parts[i - 1], "virtio-backend") != 0)
                return g_strdup(parts[i - 1]);
        }
    }
    return g_strdup(sp_json_object_get_string(inserted, "node-name"));
}

char *sp_qmp_local_filename(const char *filename)
{
    g_autoptr(SpJson) spec = NULL;
    const SpJson *file;
    if (filename == NULL || !g_str_has_prefix(filename, "json:"))
        return g_strdup(filename);
    if (sp_json_parse(filename + 5, strlen(filename + 5), NULL, &spec, NULL) != SP_OK)
        return NULL;
    file = sp_json_object_get(spec, "file");
    if (sp_json_type(file) == SP_JSON_STRING)
        return g_strdup(sp_json_get_string(file));
    if (g_strcmp0(sp_json_object_get_string(file, "driver"), "file") != 0)
        return NULL;
    return g_strdup(sp_json_object_get_string(file, "filename"));
}

static GPtrArray *discover(SpQmp *qmp, gboolean with_serials, GError **error);

GPtrArray *sp_qmp_discover_disks(SpQmp *qmp, GError **error)
{
    return discover(qmp, TRUE, error);
}

GPtrArray *sp_qmp_discover_disks_quick(SpQmp *qmp, GError **error)
{
    return discover(qmp, FALSE, error);
}

static GPtrArray *discover(SpQmp *qmp, gboolean with_serials, GError **error)
{
    g_autoptr(SpJson) blocks = sp_qmp_execute(qmp, "query-block", NULL, SP_QMP_DEFAULT_TIMEOUT_MS,
                                              error);
    g_autoptr(GPtrArray) disks = g_ptr_array_new_with_free_func((GDestroyNotify)sp_disk_free);
    if (blocks == NULL)
        return NULL;
    for (size_t i = 0; i < sp_json_array_len(blocks); i++) {
        const SpJson *entry = sp_json_array_get(blocks, i);
        const SpJson *inserted = sp_json_object_get(entry, "inserted");
        const SpJson *image = sp_json_object_get(inserted, "image");
        /* After a snapshot of a node opened by another name than the overlay's header gives
         * its backing file (a launcher on the stable symlink), QEMU names it "json:{...}". */
        g_autofree char *file = sp_qmp_local_filename(sp_json_object_get_string(inserted,
                                                                                "file"));
        g_autoptr(SpDisk) disk = NULL;

        /* Empty drives and read-only media (a CD-ROM) have nothing to checkpoint. */
        if (inserted == NULL || sp_json_object_get_bool(inserted, "ro", FALSE))
            continue;
        if (file == NULL || file[0] != '/') {
            g_autofree char *name = disk_name(entry, inserted); /* "qdev" alone may be absent */
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                        "disk %s: its image '%s' is not a local file named by an absolute path; "
                        "only such disks can get an overlay",
                        name != NULL ? name : "(unnamed)", file != NULL ? file : "");
            return NULL;
        }
        /* blockdev-snapshot names the disk by its node: a disk without one cannot be part of
         * the checkpoint, and leaving it out would make the checkpoint incomplete. */
        if (sp_json_object_get_string(inserted, "node-name") == NULL ||
            sp_json_object_get_string(inserted, "node-name")[0] == '\0') {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                        "disk with image %s: QMP reports no block node name for it, so it "
                        "cannot be snapshotted",
                        file);
            return NULL;
        }
        disk = g_new0(SpDisk, 1);
        disk->name = disk_name(entry, inserted);
        disk->node = sp_json_dup_string(inserted, "node-name");
        /* A launcher may open a stable symlink (see checkpoint apply): overlays and records
         * must name the file itself, or re-pointing the link would change what they mean. */
        {
            char *real = realpath(file, NULL);
            disk->image = g_strdup(real != NULL ? real : file);
            free(real);
        }
        disk->format = sp_json_dup_string(inserted, "drv");
        disk->below = layers_below(image);
        disk->size = sp_json_object_get_int(image, "virtual-size", 0);
        if (with_serials)
            disk->serial = disk_serial(qmp, sp_json_object_get_string(entry, "qdev"));
        g_ptr_array_add(disks, g_steal_pointer(&disk));
    }
    return g_steal_pointer(&disks);
}

gboolean sp_plan_overlays(SpSnapshotPlan *plan, const char *overlay_dir, gboolean with_nodes,
                          GError **error)
{
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    g_autofree char *stamp = g_date_time_format(now, "%Y%m%dT%H%M%S");
    guint32 nonce = g_random_int();

    for (guint i = 0; i < plan->disks->len; i++) {
        SpPlanDisk *pd = g_ptr_array_index(plan->disks, i);
        g_autofree char *dir = overlay_dir != NULL ? g_strdup(overlay_dir)
                                                   : g_path_get_dirname(pd->disk->image);
        g_autofree char *base = g_strdup_printf("%s-%s-%s-%08x.qcow2", plan->vm_name,
                                                pd->disk->name, stamp, nonce);
        /* Disk names come from the hypervisor; keep only what is safe in a file name. */
        g_strcanon(base, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-_", '_');
        pd->overlay = g_build_filename(dir, base, NULL);
        /* Node names: a letter first, at most 31 characters. */
        if (with_nodes)
            pd->overlay_node = g_strdup_printf("sp%08x-%u", nonce, i);
        /* Before anything is written: the overlay's directory, and the image's, which the
         * overlay names as its backing file and later offline operations open by path. */
        if (!sp_image_dir_check(dir, error) || !sp_image_dir_check_for(pd->disk->image, error)) {
            g_prefix_error(error, "VM '%s', disk %s: ", plan->vm_name, pd->disk->name);
            return FALSE;
        }
        if (g_file_test(pd->overlay, G_FILE_TEST_EXISTS)) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS,
                        "disk %s: overlay %s already exists", pd->disk->name, pd->overlay);
            return FALSE;
        }
    }
    return TRUE;
}

gboolean sp_plan_overlay_disks(SpSnapshotPlan *plan, GPtrArray *disks, const char *overlay_dir,
                               gboolean with_nodes, GError **error)
{
    if (disks->len == 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                    "VM '%s' has no writable disk to checkpoint", plan->vm_name);
        return FALSE;
    }
    sp_snapshot_plan_add_disks(plan, disks);
    return sp_plan_overlays(plan, overlay_dir, with_nodes, error);
}

gboolean sp_overlay_create(SpPlanDisk *pd, GError **error)
{
    /* -F is the format QEMU reports for the disk (its drv), never one guessed from the disk's
     * bytes, which the guest writes. */
    SpImg backing = {.path = pd->disk->image, .format = pd->disk->format};
    g_auto(GStrv) argv = NULL;

    uint64_t dev = 0, ino = 0;

    /* The name is made ours first (O_EXCL|O_NOFOLLOW): qemu-img create would truncate or follow
     * whatever it finds. Marked created only then: a file that was there is not ours to remove,
     * a half-written one of ours is. */
    if (!sp_image_create_exclusive(pd->overlay, &dev, &ino, error)) {
        g_prefix_error(error, "disk %s: cannot create overlay: ", pd->disk->name);
        return FALSE;
    }
    pd->created = TRUE;
    /* -u: the base is open read-write in QEMU, so qemu-img must not open it; the size is known. */
    argv = sp_img_argv_create_overlay(&backing, pd->overlay, pd->disk->size, error);
    if (argv == NULL || !sp_op_qemu_img(NULL, pd->disk->name, (const char *const *)argv, error) ||
        !sp_image_same(pd->overlay, dev, ino, error)) {
        g_prefix_error(error, "disk %s: cannot create overlay %s: ", pd->disk->name,
                       pd->overlay);
        return FALSE;
    }
    return TRUE;
}

gboolean sp_overlay_remove(SpPlanDisk *pd, GError **error)
{
    if (!pd->created)
        return TRUE;
    /* ENOTDIR: the directory itself is missing, so the file cannot exist. */
    if (g_unlink(pd->overlay) != 0 && errno != ENOENT && errno != ENOTDIR) {
        int errsv = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errsv),
                    "disk %s: removing overlay %s: %s", pd->disk->name, pd->overlay,
                    g_strerror(errsv));
        return FALSE;
    }
    pd->created = FALSE;
    return TRUE;
}

gboolean sp_plan_committed(const SpSnapshotPlan *plan, GPtrArray *disks, gboolean *ret_committed,
                           GError **error)
{
    guint on_overlay = 0;
    for (guint i = 0; i < plan->disks->len; i++) {
        SpPlanDisk *pd = g_ptr_array_index(plan->disks, i);
        for (guint j = 0; j < disks->len; j++) {
            SpDisk *d = g_ptr_array_index(disks, j);
            if ((pd->overlay_node != NULL && g_strcmp0(d->node, pd->overlay_node) == 0) ||
                g_strcmp0(d->image, pd->overlay) == 0) {
                on_overlay++;
                break;
            }
        }
    }
    if (on_overlay != 0 && on_overlay != plan->disks->len) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    "VM '%s': only %u of %u disks run on the overlays of checkpoint '%s'; "
                    "this needs a manual check (qemu-img info --backing-chain)",
                    plan->vm_name, on_overlay, plan->disks->len, plan->checkpoint_name);
        return FALSE;
    }
    *ret_committed = on_overlay != 0;
    return TRUE;
}

/* Two disks by one name would be one record; two by one serial, one disk to the guest. */
static gboolean vm_disks_distinct(const SpVm *vm, GError **error)
{
    for (guint i = 0; vm->disks != NULL && i < vm->disks->len; i++) {
        const SpVmDisk *a = g_ptr_array_index(vm->disks, i);
        for (guint j = 0; j < i; j++) {
            const SpVmDisk *b = g_ptr_array_index(vm->disks, j);
            const char *what = g_strcmp0(a->name, b->name) == 0 ? "name"
                             : a->serial != NULL && g_strcmp0(a->serial, b->serial) == 0
                                 ? "serial"
                                 : NULL;
            if (what != NULL) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                            "disks '%s' and '%s' have the same %s", b->name, a->name, what);
                return FALSE;
            }
        }
    }
    return TRUE;
}

/* At vm add, not at the first checkpoint: a mistyped --overlay-dir is found while the user is
 * still looking at it. Absolute, as the daemon and timers do not share the caller's directory. */
static gboolean overlay_dir_valid(const char *dir, GError **error)
{
    if (dir == NULL)
        return TRUE;
    if (!g_path_is_absolute(dir)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "the overlay directory must be an absolute path, not '%s'", dir);
        return FALSE;
    }
    if (!g_file_test(dir, G_FILE_TEST_IS_DIR)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_DIRECTORY,
                    "the overlay directory %s does not exist or is not a directory (create it "
                    "first)",
                    dir);
        return FALSE;
    }
    /* Checked again before every write; here so that vm add refuses it up front. */
    if (!sp_image_dir_check(dir, error)) {
        g_prefix_error(error, "overlay directory: ");
        return FALSE;
    }
    return TRUE;
}

gboolean sp_vm_config_valid(const SpVm *vm, GError **error)
{
    const SpDriverOps *ops = sp_driver_ops_lookup(vm->driver);
    const char *problem = NULL;

    /* Only the drivers a user may register (not the tests' fake) have config rules. */
    if (ops == NULL || ops->config_problem == NULL) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "unknown driver '%s' (qemu, hook or libvirt)", vm->driver);
        return FALSE;
    }
    problem = ops->config_problem(vm);
    if (problem == NULL && (vm->hook_timeout_ms < 0 || vm->hook_timeout_ms > 3600 * 1000))
        problem = "the hook's timeout (--hook-timeout) is 1 to 3600 seconds";
    if (problem != NULL) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "%s", problem);
        return FALSE;
    }
    return overlay_dir_valid(vm->overlay_dir, error) && vm_disks_distinct(vm, error);
}

gboolean sp_vm_has_qmp(const SpVm *vm)
{
    return vm->qmp_socket != NULL && vm->qmp_socket[0] != '\0';
}

GPtrArray *sp_vm_registered_disks(const SpVm *vm)
{
    GPtrArray *disks = g_ptr_array_new_with_free_func((GDestroyNotify)sp_disk_free);
    for (guint i = 0; vm->disks != NULL && i < vm->disks->len; i++) {
        const SpVmDisk *vd = g_ptr_array_index(vm->disks, i);
        g_ptr_array_add(disks, sp_disk_new(vd->name, vd->name, vd->path, vd->format, vd->serial));
    }
    return disks;
}

GPtrArray *sp_vm_discover_disks(const SpVm *vm, GError **error)
{
    const SpDriverOps *ops = sp_driver_ops_of(vm);
    g_autoptr(SpQmp) qmp = NULL;

    if (vm->disks != NULL && vm->disks->len > 0)
        return sp_vm_registered_disks(vm);
    if (ops->discover_disks != NULL)
        return ops->discover_disks(vm, error);
    if (!sp_vm_has_qmp(vm)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                    "VM '%s' has no QMP socket: its disks are not known to stillpoint", vm->name);
        return NULL;
    }
    if ((qmp = sp_qmp_connect(vm->qmp_socket, SP_QMP_CONNECT_TIMEOUT_MS, error)) == NULL)
        return NULL;
    return sp_qmp_discover_disks(qmp, error);
}

static const SpDriverOps *registered_ops;

void sp_driver_register(const SpDriverOps *ops)
{
    registered_ops = ops;
}

const SpDriverOps *sp_driver_ops_lookup(const char *name)
{
    static const SpDriverOps *const builtin[] = {&sp_driver_qemu_ops, &sp_driver_hook_ops,
                                                 &sp_driver_libvirt_ops};
    for (guint i = 0; i < G_N_ELEMENTS(builtin); i++)
        if (g_strcmp0(name, builtin[i]->name) == 0)
            return builtin[i];
    if (registered_ops != NULL && g_strcmp0(name, registered_ops->name) == 0)
        return registered_ops;
    return NULL;
}

const SpDriverOps *sp_driver_ops_of(const SpVm *vm)
{
    static const SpDriverOps defaults = {.name = NULL};
    const SpDriverOps *ops = sp_driver_ops_lookup(vm->driver);
    return ops != NULL ? ops : &defaults;
}

SpDriver *sp_driver_new(SpVm *vm, SpQmp *qmp, GError **error)
{
    const SpDriverOps *ops = sp_driver_ops_lookup(vm->driver);
    SpDriver *drv;
    if (ops == NULL) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "VM '%s': unknown driver '%s' (known: qemu, hook, libvirt)", vm->name, vm->driver);
        return NULL;
    }
    drv = g_new0(SpDriver, 1);
    drv->ops = ops;
    drv->vm = vm;
    drv->qmp = qmp;
    return drv;
}

guint sp_driver_snapshot_ms(SpDriver *drv, const SpSnapshotPlan *plan)
{
    if (drv->ops->snapshot_ms != NULL)
        return drv->ops->snapshot_ms(drv, plan);
    return SP_DRIVER_SNAPSHOT_MS_PER_DISK * MAX(plan->disks->len, 1);
}

void sp_driver_free(SpDriver *drv)
{
    if (drv == NULL)
        return;
    if (drv->ops->free != NULL)
        drv->ops->free(drv);
    g_free(drv);
}
