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
sqlite3_stmt *sp_db_prepare(SpStore *store, const char *sql, GError **error);
/* Steps a statement that returns no rows. */
gboolean sp_db_step_done(SpStore *store, sqlite3_stmt *stmt, const char *what, GError **error);
void sp_db_bind_text_or_null(sqlite3_stmt *stmt, int idx, const char *s);

/* The disks given at registration (store-vm-disk.c): recorded with the VM (inside the caller's
 * transaction), loaded into vm->disks. */
gboolean sp_db_vm_disks_insert(SpStore *store, int64_t vm_id, GPtrArray *disks, GError **error);
gboolean sp_db_vm_disks_load(SpStore *store, SpVm *vm, GError **error);

/* Records the format of an image as it enters a VM's chains (store-tree.c). The first record
 * stays: a path keeps the format it had when stillpoint first saw it. A NULL format is refused. */
gboolean sp_db_image_format_record(SpStore *store, int64_t vm_id, const char *path,
                                   const char *format, GError **error);
