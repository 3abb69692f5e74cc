/* The store's record of disks given at registration (table vm_disks), in registration order. */
#include "store-internal.h"

#include <gio/gio.h>

gboolean sp_db_vm_disks_insert(SpStore *store, int64_t vm_id, GPtrArray *disks, GError **error)
{
    if (disks == NULL || disks->len == 0)
        return TRUE;
    for (guint i = 0; i < disks->len; i++) {
        SpVmDisk *d = g_ptr_array_index(disks, i);
        g_autoptr(SpStmt) stmt = sp_db_query(
            store, error,
            "INSERT INTO vm_disks (vm_id, position, name, path, serial, format) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            "iitttt", vm_id, (int64_t)i, d->name, d->path, d->serial,
            d->format != NULL ? d->format : "raw");
        int rc;
        if (stmt == NULL)
            return FALSE;
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_CONSTRAINT) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS, "disk '%s' is given twice",
                        d->name);
            return FALSE;
        }
        if (rc != SQLITE_DONE)
            return sp_db_error(store, rc, "recording the VM's disks", error);
    }
    return TRUE;
}

static gpointer vm_disk_from_row(SpStmt *stmt)
{
    SpVmDisk *d = g_new0(SpVmDisk, 1);
    d->name = sp_db_col_text(stmt, 0);
    d->path = sp_db_col_text(stmt, 1);
    d->serial = sp_db_col_text(stmt, 2);
    d->format = sp_db_col_text(stmt, 3);
    return d;
}

gboolean sp_db_vm_disks_load(SpStore *store, SpVm *vm, GError **error)
{
    g_autoptr(SpStmt) stmt = sp_db_query(store, error,
                                         "SELECT name, path, serial, format FROM vm_disks "
                                         "WHERE vm_id = ? ORDER BY position",
                                         "i", vm->id);
    vm->disks = sp_db_rows(store, stmt, vm_disk_from_row, (GDestroyNotify)sp_vm_disk_free,
                           "reading the VM's disks", error);
    return vm->disks != NULL;
}
