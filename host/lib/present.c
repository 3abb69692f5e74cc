/* present: the VM's now against what QEMU runs on — stable launch paths, read-only checkpoint
 * images, the check every command makes, and the recovery when QEMU ran on a checkpoint's image
 * (see present.h). */
#include "stillpoint/present.h"

#include <errno.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "op-util.h"
#include "stillpoint/driver.h"

char *sp_present_link_path(SpStore *store, const char *vm_name, const char *disk)
{
    g_autofree char *dir = g_path_get_dirname(sp_store_get_path(store));
    g_autofree char *base = g_strdup_printf("%s.qcow2", disk);
    g_strcanon(base, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-_", '_');
    return g_build_filename(dir, "vms", vm_name, base, NULL);
}

gboolean sp_present_point(const char *link, const char *target, const char *disk,
                          GError **error)
{
    g_autofree char *dir = g_path_get_dirname(link);
    g_autofree char *tmp = g_strdup_printf("%s.new", link);
    if (g_mkdir_with_parents(dir, 0755) != 0 || (g_unlink(tmp) != 0 && errno != ENOENT) ||
        symlink(target, tmp) != 0 || g_rename(tmp, link) != 0) {
        int errsv = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errsv),
                    "disk %s: pointing %s at %s: %s", disk, link, target, g_strerror(errsv));
        return FALSE;
    }
    return TRUE;
}

static gboolean has_stable_links(const SpVm *vm)
{
    return sp_driver_ops_of(vm)->stable_links;
}

/* The link follows target; make: also when it does not exist yet. */
static gboolean follow(SpStore *store, const SpVm *vm, const char *disk, const char *target,
                       gboolean make, GError **error)
{
    g_autofree char *link = sp_present_link_path(store, vm->name, disk);
    g_autofree char *now = g_file_read_link(link, NULL);
    if (target == NULL || g_strcmp0(now, target) == 0)
        return TRUE;
    if (now == NULL && (!make || g_file_test(link, G_FILE_TEST_EXISTS)))
        return TRUE; /* no link, and none wanted; or a file of the user's there: left alone */
    return sp_present_point(link, target, disk, error);
}

gboolean sp_present_link_disks(SpStore *store, const SpVm *vm, GPtrArray *disks,
                               SpJson **ret_links, GError **error)
{
    g_autoptr(SpJson) links = sp_json_new_object();
    for (guint i = 0; i < disks->len; i++) {
        SpDisk *d = g_ptr_array_index(disks, i);
        g_autofree char *link = sp_present_link_path(store, vm->name, d->name);
        if (!follow(store, vm, d->name, d->image, TRUE, error))
            return FALSE;
        sp_json_object_set_string(links, d->name, link);
    }
    if (ret_links != NULL)
        *ret_links = g_steal_pointer(&links);
    return TRUE;
}

/* chmod on the file itself: a checkpoint's image loses every write bit, the now's image gets
 * its owner's back. Best effort, on purpose: the check in sp_present_check is what refuses; the
 * mode only stops a QEMU that is not root (root opens it anyway) and is no reason to fail an
 * operation that already happened. */
static void set_writable(const char *image, gboolean writable)
{
    struct stat st;
    mode_t mode;
    /* lstat: a symlink put in an image's place is not followed (image-path.h); the operation
     * that opens it refuses it. */
    if (image == NULL || lstat(image, &st) != 0 || !S_ISREG(st.st_mode))
        return;
    mode = st.st_mode & 07777;
    mode = writable ? (mode | S_IWUSR) : (mode & ~(mode_t)(S_IWUSR | S_IWGRP | S_IWOTH));
    if (mode != (st.st_mode & 07777) && chmod(image, mode) != 0) {
        /* not ours to change (another owner): the check still holds */
    }
}

void sp_present_make_writable(const char *image)
{
    set_writable(image, TRUE);
}

static SpCheckpoint *find_cp(GPtrArray *cps, int64_t id)
{
    for (guint i = 0; cps != NULL && i < cps->len; i++)
        if (((SpCheckpoint *)g_ptr_array_index(cps, i))->id == id)
            return g_ptr_array_index(cps, i);
    return NULL;
}

/* {disk: image} the VM writes to now, by the store. */
static GHashTable *now_images(GPtrArray *cps, const SpVm *vm, GHashTable *now_if_none)
{
    GHashTable *now = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    SpCheckpoint *cur = find_cp(cps, vm->current);
    if (cur == NULL && now_if_none != NULL) {
        GHashTableIter it;
        gpointer k, v;
        g_hash_table_iter_init(&it, now_if_none);
        while (g_hash_table_iter_next(&it, &k, &v))
            g_hash_table_insert(now, g_strdup(k), g_strdup(v));
    }
    for (guint i = 0; cur != NULL && i < cur->disks->len; i++) {
        SpCheckpointDisk *d = g_ptr_array_index(cur->disks, i);
        if (d->overlay != NULL)
            g_hash_table_insert(now, g_strdup(d->disk), g_strdup(d->overlay));
    }
    return now;
}

gboolean sp_present_sync(SpStore *store, SpVm *vm, GHashTable *now_if_none, GError **error)
{
    g_autoptr(SpVm) fresh = sp_store_vm_get(store, vm->name, error);
    g_autoptr(GPtrArray) cps = NULL;
    g_autoptr(GHashTable) now = NULL;
    GHashTableIter it;
    gpointer disk, image;

    if (fresh == NULL || (cps = sp_store_checkpoint_list(store, fresh->id, error)) == NULL)
        return FALSE;
    now = now_images(cps, fresh, now_if_none);
    g_hash_table_iter_init(&it, now);
    while (g_hash_table_iter_next(&it, &disk, &image))
        if (!follow(store, fresh, disk, image, has_stable_links(fresh), error))
            return FALSE;
    /* A hook VM's images are the live disks; a libvirt domain's files are libvirt's to label. */
    if (!has_stable_links(fresh))
        return TRUE;
    for (guint i = 0; i < cps->len; i++) {
        SpCheckpoint *cp = g_ptr_array_index(cps, i);
        for (guint j = 0; j < cp->disks->len; j++)
            set_writable(((SpCheckpointDisk *)g_ptr_array_index(cp->disks, j))->image, FALSE);
    }
    g_hash_table_iter_init(&it, now);
    while (g_hash_table_iter_next(&it, &disk, &image))
        set_writable(image, TRUE);
    return TRUE;
}

/* The checkpoint one of whose images is image (NULL: none). */
static SpCheckpoint *image_owner(GPtrArray *cps, const char *image)
{
    for (guint i = 0; i < cps->len; i++) {
        SpCheckpoint *cp = g_ptr_array_index(cps, i);
        for (guint j = 0; j < cp->disks->len; j++)
            if (g_strcmp0(((SpCheckpointDisk *)g_ptr_array_index(cp->disks, j))->image,
                          image) == 0)
                return cp;
    }
    return NULL;
}

/* cp and every checkpoint below it, leaves first. */
static void subtree_post_order(GPtrArray *cps, const SpCheckpoint *cp, GPtrArray *out)
{
    for (guint i = 0; i < cps->len; i++) {
        SpCheckpoint *k = g_ptr_array_index(cps, i);
        if (k->parent == cp->id)
            subtree_post_order(cps, k, out);
    }
    g_ptr_array_add(out, (gpointer)cp);
}

static void refuse_overwritten(SpStore *store, const SpVm *vm, GPtrArray *cps,
                               const SpDisk *d, const SpCheckpoint *owner, const char *now,
                               GError **error)
{
    g_autoptr(GPtrArray) sub = g_ptr_array_new();
    g_autofree char *link = sp_present_link_path(store, vm->name, d->name);
    g_autofree char *dir = g_path_get_dirname(link);
    subtree_post_order(cps, owner, sub);
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                "VM '%s': QEMU runs disk %s (node %s) on %s, the frozen image of checkpoint "
                "'%s' (#%" G_GINT64_FORMAT "), not on the VM's present (%s). QEMU was started "
                "from the checkpoint's image instead of the stable path %s, so what the guest "
                "wrote since went into checkpoint '%s': it no longer holds its content, nor do "
                "the %u checkpoint(s) below it. stillpoint changed nothing and builds nothing on "
                "it. To keep what the guest wrote (it is in that image now) and forget those "
                "checkpoints (their files are kept), run 'stillpoint vm recover %s "
                "--adopt-running' while QEMU runs; from then on start QEMU from the stable "
                "paths in %s",
                vm->name, d->name, d->node != NULL ? d->node : "?", d->image, owner->name,
                owner->id, now != NULL ? now : "its own image", link, owner->name,
                sub->len - 1, vm->name, dir);
}

static void refuse_unknown(SpStore *store, const SpVm *vm, const SpDisk *d, const char *now,
                           GError **error)
{
    g_autofree char *link = sp_present_link_path(store, vm->name, d->name);
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                "VM '%s': QEMU runs disk %s (node %s) on %s, but the VM's present is %s: QEMU "
                "was started on other images than the stable path %s (or another tool "
                "snapshotted the disk). stillpoint changed nothing. Shut the VM down and start "
                "it from the stable paths; if %s is the disk to keep, forget the checkpoints "
                "with 'stillpoint vm remove --force %s' and add the VM again (no file is "
                "deleted)",
                vm->name, d->name, d->node != NULL ? d->node : "?", d->image, now, link,
                d->image, vm->name);
}

/* The disks QEMU runs now; NULL (and TRUE) when QEMU is not running. */
static gboolean running_disks(SpVm *vm, SpQmp *qmp, GPtrArray **ret, GError **error)
{
    g_autoptr(SpQmp) own = NULL;
    *ret = NULL;
    if (qmp == NULL) {
        if (!sp_op_connect_qmp_if_running(vm, &own, error))
            return FALSE;
        if ((qmp = own) == NULL)
            return TRUE;
    }
    return (*ret = sp_qmp_discover_disks_quick(qmp, error)) != NULL;
}

gboolean sp_present_check(SpStore *store, SpVm *vm, SpQmp *qmp, GError **error)
{
    g_autoptr(GPtrArray) disks = NULL, cps = NULL;
    g_autoptr(GHashTable) now = NULL;
    g_autoptr(SpVm) fresh = NULL;

    if (!has_stable_links(vm))
        return TRUE;
    if ((fresh = sp_store_vm_get(store, vm->name, error)) == NULL ||
        (cps = sp_store_checkpoint_list(store, fresh->id, error)) == NULL)
        return FALSE;
    /* Without a checkpoint there is no frozen image to write into, and no present recorded. */
    if (cps->len == 0)
        return TRUE;
    if (!running_disks(vm, qmp, &disks, error))
        return FALSE;
    if (disks == NULL)
        return TRUE;
    now = now_images(cps, fresh, NULL);
    for (guint i = 0; i < disks->len; i++) {
        SpDisk *d = g_ptr_array_index(disks, i);
        SpCheckpoint *owner = image_owner(cps, d->image);
        const char *mine = g_hash_table_lookup(now, d->name);
        if (owner != NULL) {
            refuse_overwritten(store, fresh, cps, d, owner, mine, error);
            return FALSE;
        }
        /* A disk the current checkpoint does not have (added since) is the now by itself. */
        if (mine != NULL && g_strcmp0(mine, d->image) != 0) {
            refuse_unknown(store, fresh, d, mine, error);
            return FALSE;
        }
    }
    return TRUE;
}

/* The one checkpoint on whose images every disk QEMU runs. */
static SpCheckpoint *adopted(const SpVm *vm, GPtrArray *cps, GPtrArray *disks, GError **error)
{
    SpCheckpoint *x = NULL;
    const SpDisk *odd = NULL;
    for (guint i = 0; i < disks->len; i++) {
        SpDisk *d = g_ptr_array_index(disks, i);
        SpCheckpoint *owner = image_owner(cps, d->image);
        if (owner == NULL || (x != NULL && owner != x))
            odd = odd != NULL ? odd : d;
        x = x != NULL ? x : owner;
    }
    if (x == NULL) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "VM '%s' runs on no checkpoint's image: nothing to adopt", vm->name);
        return NULL;
    }
    if (odd != NULL || disks->len != x->disks->len) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "VM '%s': --adopt-running takes over a VM whose every disk runs on the "
                    "images of one checkpoint; here %s, so this needs a look by hand "
                    "(qemu-img info --backing-chain)",
                    vm->name, odd != NULL ? "the disks run on images of different owners"
                                          : "the disks are not those of the checkpoint");
        return NULL;
    }
    return x;
}

static gboolean adopt_record(SpStore *store, const SpVm *vm, GPtrArray *cps, SpCheckpoint *x,
                             GPtrArray *victims, GError **error)
{
    SpCheckpoint *cur = find_cp(cps, vm->current);
    gboolean cur_stays = cur != NULL && g_ptr_array_find(victims, cur, NULL) == FALSE;
    if (!sp_store_transaction_begin(store, error))
        return FALSE;
    for (guint i = 0; i < x->disks->len; i++) {
        SpCheckpointDisk *d = g_ptr_array_index(x->disks, i);
        /* The parent's overlay is the image the VM writes to now. */
        if (x->parent != 0 &&
            !sp_store_checkpoint_set_disk_overlay(store, x->parent, d->disk, d->image, NULL,
                                                  error))
            goto fail;
    }
    /* A current checkpoint elsewhere in the tree: its present is not the VM's any more. */
    for (guint i = 0; cur_stays && cur->id != x->parent && i < cur->disks->len; i++)
        if (!sp_store_checkpoint_set_disk_overlay(
                store, cur->id, ((SpCheckpointDisk *)g_ptr_array_index(cur->disks, i))->disk,
                NULL, NULL, error))
            goto fail;
    for (guint i = 0; i < victims->len; i++)
        if (!sp_store_checkpoint_remove(store, ((SpCheckpoint *)victims->pdata[i])->id, error))
            goto fail;
    if (!sp_store_vm_set_current(store, vm->id, x->parent, error))
        goto fail;
    return sp_store_transaction_commit(store, error);
fail:
    sp_store_transaction_rollback(store);
    return FALSE;
}

static void add_kept(GPtrArray *kept, const char *path, GHashTable *skip)
{
    if (path == NULL || g_hash_table_contains(skip, path))
        return;
    g_hash_table_add(skip, (gpointer)path);
    g_ptr_array_add(kept, g_strdup(path));
}

/* The files that no remaining record names: the forgotten checkpoints' and a discarded
 * present's. None is deleted: they are for the user to look at. */
static GPtrArray *kept_files(GPtrArray *cps, const SpVm *vm, SpCheckpoint *x, GPtrArray *victims)
{
    g_autoptr(GHashTable) skip = g_hash_table_new(g_str_hash, g_str_equal);
    GPtrArray *kept = g_ptr_array_new_with_free_func(g_free);
    SpCheckpoint *cur = find_cp(cps, vm->current);
    for (guint i = 0; i < x->disks->len; i++)
        g_hash_table_add(skip, ((SpCheckpointDisk *)x->disks->pdata[i])->image);
    for (guint i = 0; i < cps->len; i++) {
        SpCheckpoint *cp = g_ptr_array_index(cps, i);
        if (g_ptr_array_find(victims, cp, NULL) || cp == cur)
            continue;
        for (guint j = 0; j < cp->disks->len; j++) {
            SpCheckpointDisk *d = g_ptr_array_index(cp->disks, j);
            g_hash_table_add(skip, d->image);
            if (d->overlay != NULL && cp->id == x->parent)
                g_hash_table_add(skip, d->overlay);
        }
    }
    for (guint i = 0; i < victims->len; i++) {
        SpCheckpoint *cp = g_ptr_array_index(victims, i);
        for (guint j = 0; j < cp->disks->len; j++) {
            add_kept(kept, ((SpCheckpointDisk *)cp->disks->pdata[j])->image, skip);
            add_kept(kept, ((SpCheckpointDisk *)cp->disks->pdata[j])->overlay, skip);
        }
        add_kept(kept, cp->state, skip);
    }
    for (guint j = 0; cur != NULL && cur->id != x->parent && j < cur->disks->len; j++)
        add_kept(kept, ((SpCheckpointDisk *)cur->disks->pdata[j])->overlay, skip);
    return kept;
}

gboolean sp_present_adopt(SpStore *store, SpVm *vm, const SpOpReport *report,
                          GPtrArray **ret_forgotten, GPtrArray **ret_kept, GError **error)
{
    g_autoptr(GPtrArray) disks = NULL, cps = NULL, kept = NULL;
    g_autoptr(GPtrArray) victims = g_ptr_array_new();
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GHashTable) now = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(SpVm) fresh = NULL;
    SpCheckpoint *x;

    if (!has_stable_links(vm)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "VM '%s': --adopt-running is for VMs of the qemu driver", vm->name);
        return FALSE;
    }
    if (!running_disks(vm, NULL, &disks, error))
        return FALSE;
    if (disks == NULL) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    "VM '%s' is not running: --adopt-running takes over what the running QEMU "
                    "writes to; start it as it ran last, then run this again", vm->name);
        return FALSE;
    }
    if ((fresh = sp_store_vm_get(store, vm->name, error)) == NULL ||
        (cps = sp_store_checkpoint_list(store, fresh->id, error)) == NULL ||
        (x = adopted(fresh, cps, disks, error)) == NULL)
        return FALSE;
    subtree_post_order(cps, x, victims);
    kept = kept_files(cps, fresh, x, victims);
    for (guint i = 0; i < victims->len; i++)
        g_ptr_array_add(names, g_strdup(((SpCheckpoint *)victims->pdata[i])->name));
    sp_op_say(report, "VM '%s': forgetting checkpoint '%s' and the %u below it; the VM's "
                      "present is what QEMU runs on",
              fresh->name, x->name, victims->len - 1);
    if (!adopt_record(store, fresh, cps, x, victims, error))
        return FALSE;
    for (guint i = 0; i < x->disks->len; i++) {
        SpCheckpointDisk *d = g_ptr_array_index(x->disks, i);
        g_hash_table_insert(now, d->disk, d->image);
    }
    if (!sp_present_sync(store, fresh, now, error))
        return FALSE;
    if (ret_forgotten != NULL)
        *ret_forgotten = g_steal_pointer(&names);
    if (ret_kept != NULL)
        *ret_kept = g_steal_pointer(&kept);
    return TRUE;
}
