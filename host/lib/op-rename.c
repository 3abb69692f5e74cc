/* Renaming a checkpoint: a record change only, so no journal entry; the rules are checked before
 * anything is written. With the libvirt driver, libvirt's snapshot takes the new name as its
 * description (its own name stays), just before the record changes. */
#include "op-util.h"

#include <gio/gio.h>

#include "stillpoint/libvirt.h"

static gboolean describe_in_libvirt(SpStore *store, SpVm *vm, const SpCheckpoint *cp,
                                    const char *new_name, GError **error)
{
    g_autoptr(SpLibvirt) lv = NULL;
    g_autofree char *snapshot = NULL;
    gboolean exists = FALSE, found = FALSE;

    if (g_strcmp0(vm->driver, "libvirt") != 0)
        return TRUE;
    /* The store would refuse a taken name: refuse it before libvirt changes anything. */
    if (!sp_store_checkpoint_name_exists(store, vm->id, new_name, &exists, error))
        return FALSE;
    if (exists && g_strcmp0(cp->name, new_name) != 0)
        return TRUE; /* the store's rename reports it */
    if ((lv = sp_libvirt_open(vm->libvirt_uri, vm->libvirt_domain, error)) == NULL ||
        !sp_libvirt_snapshot_find(lv, cp->name, &snapshot, error))
        return FALSE;
    return snapshot == NULL ||
           sp_libvirt_snapshot_describe(lv, snapshot, new_name, &found, error);
}

gboolean sp_op_rename(SpStore *store, SpVm *vm, const char *ref, const char *new_name,
                      GError **error)
{
    g_autoptr(SpCheckpoint) cp = NULL;
    /* The new name first: a bad name fails the same way whatever ref names. */
    if (!sp_checkpoint_name_valid(new_name, error))
        return FALSE;
    if ((cp = sp_op_find_checkpoint(store, vm, ref, error)) == NULL)
        return FALSE;
    if (!describe_in_libvirt(store, vm, cp, new_name, error) ||
        !sp_store_checkpoint_rename(store, cp->id, new_name, error)) {
        g_prefix_error(error, "VM '%s': renaming checkpoint '%s': ", vm->name, cp->name);
        return FALSE;
    }
    return TRUE;
}
