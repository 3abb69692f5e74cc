/* The store's record of disks given at registration (table vm_disks), in registration order. */
#include "store-internal.h"

#include <gio/gio.h>

gboolean sp_db_vm_disks_insert(SpStore *store, int64_t vm_id, GPtrArray *disks, GError **error)
{
    g_autoptr(SpStmt) stmt = NULL;
    if (disks == NULL || disks->len == 0)
        return TRUE;
    stmt = sp_db_prepare(store,
                         "INSERT INTO vm_disks (vm_id, position, name, path, serial, format) "
                         "VALUES (?, ?, ?, ?, ?, ?)",
                         error);
    if (stmt == NULL)
        return FALSE;
    for (guint i = 0; i < disks->len; i++) {
        SpVmDisk *d = g_ptr_array_index(disks, i);
        int rc;
        sqlite3_reset(stmt);
        sqlite3_bind_int64(stmt, 1, vm_id);
        sqlite3_bind_int64(stmt, 2, i);
        sqlite3_bind_text(stmt, 3, d->name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(stmt, 4, d->path, -1, SQLITE_TRANSIENT);
        sp_db_bind_text_or_null(stmt, 5, d->serial);
        sqlite3_bind_text(stmt, 6, d->format != NULL ? d->format : "raw", -1, SQLITE_TRANSIENT);
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

static char *col_dup(sqlite3_stmt *stmt, int col)
{
    const unsigned char *t = sqlite3_column_text(stmt, col);
    return t != NULL ? g_strdup((const char *)t) : NULL;
}

gboolean sp_db_vm_disks_load(SpStore *store, SpVm *vm, GError **error)
{
    g_autoptr(SpStmt) stmt = sp_db_prepare(store,
                                           "SELECT name, path, serial, format FROM vm_disks "
                                           "WHERE vm_id = ? ORDER BY position",
                                           error);
    int rc;
    if (stmt == NULL)
        return FALSE;
    sqlite3_bind_int64(stmt, 1, vm->id);
    vm->disks = g_ptr_array_new_with_free_func((GDestroyNotify)sp_vm_disk_free);
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        SpVmDisk *d = g_new0(SpVmDisk, 1);
        d->name = col_dup(stmt, 0);
        d->path = col_dup(stmt, 1);
        d->serial = col_dup(stmt, 2);
        d->format = col_dup(stmt, 3);
        g_ptr_array_add(vm->disks, d);
    }
    if (rc != SQLITE_DONE)
        return sp_db_error(store, rc, "reading the VM's disks", error);
    return TRUE;
}
