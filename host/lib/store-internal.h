/* Inside the checkpoint store: its struct and the SQLite helpers store.c and store-tree.c share. */
#pragma once
#include <glib.h>
#include <sqlite3.h>

#include "stillpoint/store.h"

struct SpStore {
    sqlite3 *db;
    char *path;
};

typedef sqlite3_stmt SpStmt;
static inline void sp_stmt_finalize(SpStmt *stmt)
{
    sqlite3_finalize(stmt);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpStmt, sp_stmt_finalize)

/* Sets error from SQLite's message (G_IO_ERROR_BUSY when locked) and returns FALSE. */
gboolean sp_db_error(SpStore *store, int rc, const char *what, GError **error);
gboolean sp_db_exec(SpStore *store, const char *sql, GError **error);
/* The store's one statement pattern: prepares sql and binds its parameters, in order, as binds
 * says: 'i' an int64_t, 'z' an int64_t that binds NULL when 0, 't' a string (NULL binds NULL). */
SpStmt *sp_db_query(SpStore *store, GError **error, const char *sql, const char *binds, ...);
/* The same, stepped once: a statement that returns no rows (what: for the error). */
gboolean sp_db_run(SpStore *store, const char *what, GError **error, const char *sql,
                   const char *binds, ...);
/* Steps stmt to its end, each row made by from_row into the array (freed by free_row). */
GPtrArray *sp_db_rows(SpStore *store, SpStmt *stmt, gpointer (*from_row)(SpStmt *stmt),
                      GDestroyNotify free_row, const char *what, GError **error);
/* A text column, copied (NULL stays NULL). */
char *sp_db_col_text(SpStmt *stmt, int col);

/* The disks given at registration (store-vm-disk.c): recorded with the VM (inside the caller's
 * transaction), loaded into vm->disks. */
gboolean sp_db_vm_disks_insert(SpStore *store, int64_t vm_id, GPtrArray *disks, GError **error);
gboolean sp_db_vm_disks_load(SpStore *store, SpVm *vm, GError **error);

/* Records the format of an image as it enters a VM's chains (store-tree.c). The first record
 * stays: a path keeps the format it had when stillpoint first saw it. A NULL format is refused. */
gboolean sp_db_image_format_record(SpStore *store, int64_t vm_id, const char *path,
                                   const char *format, GError **error);
