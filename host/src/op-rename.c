/* Renaming a checkpoint: a record change only, so no journal entry; the rules are checked before
 * anything is written. */
#include "op-util.h"

gboolean sp_op_rename(SpStore *store, SpVm *vm, const char *ref, const char *new_name,
                      GError **error)
{
    g_autoptr(SpCheckpoint) cp = NULL;
    /* The new name first: a bad name fails the same way whatever ref names. */
    if (!sp_checkpoint_name_valid(new_name, error))
        return FALSE;
    if ((cp = sp_op_find_checkpoint(store, vm, ref, error)) == NULL)
        return FALSE;
    if (!sp_store_checkpoint_rename(store, cp->id, new_name, error)) {
        g_prefix_error(error, "VM '%s': renaming checkpoint '%s': ", vm->name, cp->name);
        return FALSE;
    }
    return TRUE;
}
