/* Renaming a checkpoint: a record change only, so no journal entry; the rules are checked before
 * anything is written. With the libvirt driver, libvirt's snapshot takes the new name as its
 * description (its own name stays), just before the record changes. */
#include "op-util.h"

#include <gio/gio.h>

#include "stillpoint/driver.h"

gboolean sp_op_rename(SpStore *store, SpVm *vm, const char *ref, const char *new_name,
                      GError **error)
{
    g_autoptr(SpCheckpoint) cp = NULL;
    const SpDriverOps *ops = sp_driver_ops_of(vm);
    /* The new name first: a bad name fails the same way whatever ref names. */
    if (!sp_checkpoint_name_valid(new_name, error))
        return FALSE;
    if ((cp = sp_op_find_checkpoint(store, vm, ref, error)) == NULL)
        return FALSE;
    if ((ops->rename != NULL && !ops->rename(store, vm, cp, new_name, error)) ||
        !sp_store_checkpoint_rename(store, cp->id, new_name, error)) {
        g_prefix_error(error, "VM '%s': renaming checkpoint '%s': ", vm->name, cp->name);
        return FALSE;
    }
    return TRUE;
}
