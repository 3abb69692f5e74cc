/* The checkpoint store's tree edits for delete, rename and apply, and journal updates they need;
 * each runs inside the caller's transaction when one is open. */
#include <gio/gio.h>
#include <sqlite3.h>

#include "stillpoint/store.h"
#include "image-path.h"
#include "store-internal.h"

gboolean sp_store_transaction_begin(SpStore *store, GError **error)
{
    return sp_db_exec(store, "BEGIN IMMEDIATE", error);
}

gboolean sp_store_transaction_commit(SpStore *store, GError **error)
{
    if (sp_db_exec(store, "COMMIT", error))
        return TRUE;
    sqlite3_exec(store->db, "ROLLBACK", NULL, NULL, NULL);
    return FALSE;
}

void sp_store_transaction_rollback(SpStore *store)
{
    sqlite3_exec(store->db, "ROLLBACK", NULL, NULL, NULL);
}

gboolean sp_store_checkpoint_set_disk_image(SpStore *store, int64_t cp_id, const char *disk,
                                            const char *image, GError **error)
{
    return sp_db_run(store, "updating checkpoint image", error,
                     "UPDATE checkpoint_disks SET image = ? WHERE checkpoint_id = ? AND disk = ?",
                     "tit", image, cp_id, disk);
}

/* The identity recorded for path: FALSE in *ret_known when the record has none yet. */
static gboolean identity_get(SpStore *store, int64_t vm_id, const char *path, gboolean *ret_known,
                             uint64_t *ret_dev, uint64_t *ret_ino, GError **error)
{
    g_autoptr(SpStmt) stmt = sp_db_query(
        store, error, "SELECT dev, ino FROM image_formats WHERE vm_id = ? AND path = ?", "it",
        vm_id, path);
    int rc;
    if (stmt == NULL)
        return FALSE;
    rc = sqlite3_step(stmt);
    *ret_known = rc == SQLITE_ROW && sqlite3_column_type(stmt, 0) != SQLITE_NULL &&
                 sqlite3_column_type(stmt, 1) != SQLITE_NULL;
    if (*ret_known) {
        *ret_dev = (uint64_t)sqlite3_column_int64(stmt, 0);
        *ret_ino = (uint64_t)sqlite3_column_int64(stmt, 1);
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return sp_db_error(store, rc, "reading image identity", error);
    return TRUE;
}

static gboolean identity_set(SpStore *store, int64_t vm_id, const char *path, uint64_t dev,
                             uint64_t ino, GError **error)
{
    return sp_db_run(store, "recording image identity", error,
                     "UPDATE image_formats SET dev = ?, ino = ? WHERE vm_id = ? AND path = ? AND "
                     "dev IS NULL",
                     "iiit", (int64_t)dev, (int64_t)ino, vm_id, path);
}

/* A recorded image meets its record: the same file as first seen, else refused. A record
 * without identity (made before version 7, or while the file did not exist) learns it now.
 * must_exist: the caller is about to open it; else a path that is no file is left alone. */
static gboolean identity_check(SpStore *store, int64_t vm_id, const char *path,
                               gboolean must_exist, GError **error)
{
    g_autoptr(GError) local = NULL;
    uint64_t dev = 0, ino = 0, now_dev = 0, now_ino = 0;
    gboolean known = FALSE;
    if (!identity_get(store, vm_id, path, &known, &dev, &ino, error))
        return FALSE;
    if (known) {
        if (sp_image_same(path, dev, ino, &local))
            return TRUE;
        if (!must_exist && g_error_matches(local, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
            return TRUE;
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    if (!sp_image_identify(path, &now_dev, &now_ino, &local)) {
        /* Recording what a hook snapshots (a /dev/VG/LV symlink) or a file not there yet:
         * no identity, and no offline operation opens such a path without must_exist. */
        if (!must_exist)
            return TRUE;
        g_propagate_prefixed_error(error, g_steal_pointer(&local),
                                   "image path changed outside stillpoint: ");
        return FALSE;
    }
    return identity_set(store, vm_id, path, now_dev, now_ino, error);
}

gboolean sp_db_image_format_record(SpStore *store, int64_t vm_id, const char *path,
                                   const char *format, GError **error)
{
    if (format == NULL || format[0] == '\0') {
        /* Already known (an overlay that becomes a checkpoint's image): nothing to record. */
        g_autofree char *known = sp_store_image_format(store, vm_id, path, NULL);
        if (known != NULL)
            return identity_check(store, vm_id, path, FALSE, error);
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "image %s: no format given for it; stillpoint never guesses one", path);
        return FALSE;
    }
    return sp_db_run(store, "recording image format", error,
                     "INSERT OR IGNORE INTO image_formats (vm_id, path, format) VALUES (?, ?, ?)",
                     "itt", vm_id, path, format) &&
           identity_check(store, vm_id, path, FALSE, error);
}

gboolean sp_store_image_check(SpStore *store, int64_t vm_id, const char *path, GError **error)
{
    return identity_check(store, vm_id, path, TRUE, error);
}

gboolean sp_store_image_format_record(SpStore *store, int64_t vm_id, const char *path,
                                      const char *format, GError **error)
{
    return sp_db_image_format_record(store, vm_id, path, format, error);
}

char *sp_store_image_format(SpStore *store, int64_t vm_id, const char *path, GError **error)
{
    g_autoptr(SpStmt) stmt = sp_db_query(
        store, error, "SELECT format FROM image_formats WHERE vm_id = ? AND path = ?", "it", vm_id,
        path);
    int rc;
    if (stmt == NULL)
        return NULL;
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW && sqlite3_column_text(stmt, 0) != NULL)
        return g_strdup((const char *)sqlite3_column_text(stmt, 0));
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        sp_db_error(store, rc, "reading image format", error);
        return NULL;
    }
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                "image %s: the checkpoint store has no format recorded for it (it entered the "
                "chain before stillpoint recorded formats, or not through stillpoint); "
                "stillpoint never guesses a format from an image's bytes",
                path);
    return NULL;
}

static gboolean overlay_identity_check(SpStore *store, int64_t cp_id, const char *overlay,
                                       GError **error)
{
    g_autoptr(SpStmt) stmt =
        sp_db_query(store, error, "SELECT vm_id FROM checkpoints WHERE id = ?", "i", cp_id);
    if (stmt == NULL)
        return FALSE;
    if (sqlite3_step(stmt) != SQLITE_ROW)
        return TRUE; /* no such checkpoint: the UPDATE below changes nothing either */
    return identity_check(store, sqlite3_column_int64(stmt, 0), overlay, FALSE, error);
}

gboolean sp_store_checkpoint_set_disk_overlay(SpStore *store, int64_t cp_id, const char *disk,
                                              const char *overlay, const char *overlay_node,
                                              GError **error)
{
    /* Every overlay is one stillpoint made: qcow2. */
    if (overlay != NULL &&
        (!sp_db_run(store, "recording overlay format", error,
                    "INSERT OR IGNORE INTO image_formats (vm_id, path, format) "
                    "SELECT vm_id, ?, 'qcow2' FROM checkpoints WHERE id = ?",
                    "ti", overlay, cp_id) ||
         !overlay_identity_check(store, cp_id, overlay, error)))
        return FALSE;
    return sp_db_run(store, "updating checkpoint overlay", error,
                     "UPDATE checkpoint_disks SET overlay = ?, overlay_node = ? WHERE "
                     "checkpoint_id = ? AND disk = ?",
                     "ttit", overlay, overlay_node, cp_id, disk);
}

gboolean sp_store_checkpoint_remove(SpStore *store, int64_t cp_id, GError **error)
{
    static const char *const sql[] = {
        /* children move up to the parent (NULL for a root) */
        "UPDATE checkpoints SET parent = (SELECT parent FROM checkpoints WHERE id = ?1) "
        "WHERE parent = ?1",
        "UPDATE vms SET current = (SELECT parent FROM checkpoints WHERE id = ?1) "
        "WHERE current = ?1",
        "DELETE FROM checkpoints WHERE id = ?1",
    };
    for (guint i = 0; i < G_N_ELEMENTS(sql); i++) {
        if (!sp_db_run(store, "removing checkpoint", error, sql[i], "i", cp_id))
            return FALSE;
    }
    return TRUE;
}

gboolean sp_store_checkpoint_rename(SpStore *store, int64_t cp_id, const char *name,
                                    GError **error)
{
    g_autoptr(SpStmt) dup = NULL;
    int rc;

    if (!sp_checkpoint_name_valid(name, error))
        return FALSE;
    dup = sp_db_query(store, error,
                      "SELECT id FROM checkpoints WHERE name = ?1 AND id != ?2 AND vm_id = "
                      "(SELECT vm_id FROM checkpoints WHERE id = ?2)",
                      "ti", name, cp_id);
    if (dup == NULL)
        return FALSE;
    rc = sqlite3_step(dup);
    if (rc == SQLITE_ROW) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS,
                    "checkpoint #%" G_GINT64_FORMAT " is already named '%s'; names are unique "
                    "per VM",
                    (int64_t)sqlite3_column_int64(dup, 0), name);
        return FALSE;
    }
    if (rc != SQLITE_DONE)
        return sp_db_error(store, rc, "looking up checkpoint name", error);
    if (!sp_db_run(store, "renaming checkpoint", error,
                   "UPDATE checkpoints SET name = ? WHERE id = ?", "ti", name, cp_id))
        return FALSE;
    if (sqlite3_changes(store->db) != 1) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                    "checkpoint #%" G_GINT64_FORMAT " does not exist", cp_id);
        return FALSE;
    }
    return TRUE;
}

gboolean sp_store_vm_set_current(SpStore *store, int64_t vm_id, int64_t cp_id, GError **error)
{
    return sp_db_run(store, "setting current checkpoint", error,
                     "UPDATE vms SET current = ? WHERE id = ?", "zi", cp_id, vm_id);
}

gboolean sp_store_op_set_payload(SpStore *store, int64_t op_id, const char *payload,
                                 GError **error)
{
    return sp_db_run(store, "journaling the plan", error, "UPDATE ops SET payload = ? WHERE id = ?",
                     "ti", payload, op_id);
}
