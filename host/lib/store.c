/* The checkpoint store in SQLite: schema, VMs, the checkpoint tree, the operation journal and the
 * per-VM lock. Library code: errors go up as GError, nothing is logged here. */
#include "stillpoint/store.h"
#include "store-internal.h"
#include "fields.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>


/* Version 1 of the schema; later versions add columns below (user_version says which). Times are
 * microseconds since the epoch. */
static const char schema_sql[] =
    "PRAGMA foreign_keys = ON;"
    "CREATE TABLE IF NOT EXISTS vms ("
    "  id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, qmp TEXT NOT NULL, agent TEXT,"
    "  driver TEXT NOT NULL, hook_command TEXT, overlay_dir TEXT, current INTEGER,"
    "  created INTEGER NOT NULL, hook_timeout_ms INTEGER);"
    "CREATE TABLE IF NOT EXISTS checkpoints ("
    "  id INTEGER PRIMARY KEY, vm_id INTEGER NOT NULL REFERENCES vms(id) ON DELETE CASCADE,"
    "  parent INTEGER REFERENCES checkpoints(id), name TEXT NOT NULL, type TEXT NOT NULL,"
    "  consistency TEXT NOT NULL, created INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS checkpoint_disks ("
    "  checkpoint_id INTEGER NOT NULL REFERENCES checkpoints(id) ON DELETE CASCADE,"
    "  disk TEXT NOT NULL, node TEXT NOT NULL, image TEXT NOT NULL, overlay TEXT,"
    "  overlay_node TEXT);"
    "CREATE TABLE IF NOT EXISTS ops ("
    "  id INTEGER PRIMARY KEY, vm_id INTEGER NOT NULL REFERENCES vms(id) ON DELETE CASCADE,"
    "  kind TEXT NOT NULL, state TEXT NOT NULL, step TEXT NOT NULL, payload TEXT NOT NULL,"
    "  created INTEGER NOT NULL, finished INTEGER);"
    /* Version 4: disks given at registration (vm add --disk). */
    "CREATE TABLE IF NOT EXISTS vm_disks ("
    "  vm_id INTEGER NOT NULL REFERENCES vms(id) ON DELETE CASCADE, position INTEGER NOT NULL,"
    "  name TEXT NOT NULL, path TEXT NOT NULL, serial TEXT, format TEXT NOT NULL,"
    "  PRIMARY KEY (vm_id, name));"
    /* Version 6: the format of every image of a VM's chains, recorded when the image entered
     * them (QEMU's drv, or qcow2 for an overlay stillpoint made): never probed from its bytes. */
    "CREATE TABLE IF NOT EXISTS image_formats ("
    "  vm_id INTEGER NOT NULL REFERENCES vms(id) ON DELETE CASCADE, path TEXT NOT NULL,"
    "  format TEXT NOT NULL, PRIMARY KEY (vm_id, path));";

static const char *op_state_names[] = {"intent", "done", "rolled-back"};

/* The records' columns, in the order the SELECTs below name them. */
static const SpField vm_fields[] = {
    SP_FIELD("id", INT, SpVm, id),
    SP_FIELD("name", STRING, SpVm, name),
    SP_FIELD("qmp", STRING, SpVm, qmp_socket),
    SP_FIELD("agent", STRING, SpVm, agent_socket),
    SP_FIELD("driver", STRING, SpVm, driver),
    SP_FIELD("hook_command", STRING, SpVm, hook_command),
    SP_FIELD("overlay_dir", STRING, SpVm, overlay_dir),
    SP_FIELD("current", INT, SpVm, current),
    SP_FIELD("created", INT, SpVm, created_us),
    SP_FIELD("hook_timeout_ms", INT, SpVm, hook_timeout_ms),
    SP_FIELD("libvirt_uri", STRING, SpVm, libvirt_uri),
    SP_FIELD("libvirt_domain", STRING, SpVm, libvirt_domain),
    SP_FIELD("checkpoint_type", STRING, SpVm, checkpoint_type),
};

static const SpField checkpoint_fields[] = {
    SP_FIELD("id", INT, SpCheckpoint, id),
    SP_FIELD("vm_id", INT, SpCheckpoint, vm_id),
    SP_FIELD("parent", INT, SpCheckpoint, parent),
    SP_FIELD("name", STRING, SpCheckpoint, name),
    SP_FIELD("type", STRING, SpCheckpoint, type),
    SP_FIELD("consistency", STRING, SpCheckpoint, consistency),
    SP_FIELD("created", INT, SpCheckpoint, created_us),
    SP_FIELD("state", STRING, SpCheckpoint, state),
    SP_FIELD("requested", STRING, SpCheckpoint, requested),
    SP_FIELD("reason", STRING, SpCheckpoint, reason),
    SP_FIELD("origin", STRING, SpCheckpoint, origin),
    SP_FIELD("made_by", STRING, SpCheckpoint, made_by),
    SP_FIELD("op_id", INT, SpCheckpoint, op_id),
};

static const SpField checkpoint_disk_fields[] = {
    SP_FIELD("disk", STRING, SpCheckpointDisk, disk),
    SP_FIELD("node", STRING, SpCheckpointDisk, node),
    SP_FIELD("image", STRING, SpCheckpointDisk, image),
    SP_FIELD("overlay", STRING, SpCheckpointDisk, overlay),
    SP_FIELD("overlay_node", STRING, SpCheckpointDisk, overlay_node),
    SP_FIELD("format", STRING, SpCheckpointDisk, image_format),
};

/* An op's strings, for freeing (op_from_row reads its row: the state is not a string). */
static const SpField op_fields[] = {
    SP_FIELD("kind", STRING, SpOp, kind),
    SP_FIELD("step", STRING, SpOp, step),
    SP_FIELD("payload", STRING, SpOp, payload),
};

/* A record of fields freed with its disks (may be NULL). */
static void record_free(const SpField *fields, gsize n, gpointer record, GPtrArray *disks)
{
    if (disks != NULL)
        g_ptr_array_unref(disks);
    sp_fields_free(fields, n, record);
}

void sp_vm_free(SpVm *vm)
{
    if (vm != NULL)
        record_free(vm_fields, G_N_ELEMENTS(vm_fields), vm, vm->disks);
}

void sp_checkpoint_disk_free(SpCheckpointDisk *disk)
{
    sp_fields_free(checkpoint_disk_fields, G_N_ELEMENTS(checkpoint_disk_fields), disk);
}

void sp_checkpoint_free(SpCheckpoint *cp)
{
    if (cp != NULL)
        record_free(checkpoint_fields, G_N_ELEMENTS(checkpoint_fields), cp, cp->disks);
}

void sp_op_free(SpOp *op)
{
    sp_fields_free(op_fields, G_N_ELEMENTS(op_fields), op);
}

const char *sp_store_resolve_path(const char *explicit_path)
{
    const char *env = g_getenv(SP_STORE_ENV);
    if (explicit_path != NULL && explicit_path[0] != '\0')
        return explicit_path;
    if (env != NULL && env[0] != '\0')
        return env;
    return SP_STORE_DEFAULT_PATH;
}

const char *sp_store_get_path(SpStore *store)
{
    return store->path;
}

gboolean sp_db_error(SpStore *store, int rc, const char *what, GError **error)
{
    int code = (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) ? G_IO_ERROR_BUSY : G_IO_ERROR_FAILED;
    g_set_error(error, G_IO_ERROR, code, "checkpoint store %s: %s: %s", store->path, what,
                sqlite3_errmsg(store->db));
    return FALSE;
}

gboolean sp_db_exec(SpStore *store, const char *sql, GError **error)
{
    int rc = sqlite3_exec(store->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return sp_db_error(store, rc, sql, error);
    return TRUE;
}

static SpStmt *db_prepare(SpStore *store, const char *sql, GError **error)
{
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(store->db, sql, -1, &stmt, NULL);
    if (rc != SQLITE_OK) {
        sp_db_error(store, rc, "prepare", error);
        return NULL;
    }
    return stmt;
}


/* Steps a statement that returns no rows. */
static gboolean db_step_done(SpStore *store, SpStmt *stmt, const char *what, GError **error)
{
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE)
        return sp_db_error(store, rc, what, error);
    return TRUE;
}

static void db_bind_text_or_null(SpStmt *stmt, int idx, const char *s)
{
    if (s != NULL)
        sqlite3_bind_text(stmt, idx, s, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(stmt, idx);
}

static SpStmt *db_vquery(SpStore *store, GError **error, const char *sql, const char *binds,
                         va_list ap)
{
    SpStmt *stmt = db_prepare(store, sql, error);
    for (int i = 0; stmt != NULL && binds[i] != '\0'; i++) {
        int64_t v;
        if (binds[i] == 't') {
            db_bind_text_or_null(stmt, i + 1, va_arg(ap, const char *));
            continue;
        }
        v = va_arg(ap, int64_t);
        if (binds[i] == 'z' && v == 0)
            sqlite3_bind_null(stmt, i + 1);
        else
            sqlite3_bind_int64(stmt, i + 1, v);
    }
    return stmt;
}

SpStmt *sp_db_query(SpStore *store, GError **error, const char *sql, const char *binds, ...)
{
    SpStmt *stmt;
    va_list ap;
    va_start(ap, binds);
    stmt = db_vquery(store, error, sql, binds, ap);
    va_end(ap);
    return stmt;
}

gboolean sp_db_run(SpStore *store, const char *what, GError **error, const char *sql,
                   const char *binds, ...)
{
    g_autoptr(SpStmt) stmt = NULL;
    va_list ap;
    va_start(ap, binds);
    stmt = db_vquery(store, error, sql, binds, ap);
    va_end(ap);
    return stmt != NULL && db_step_done(store, stmt, what, error);
}

GPtrArray *sp_db_rows(SpStore *store, SpStmt *stmt, gpointer (*from_row)(SpStmt *stmt),
                      GDestroyNotify free_row, const char *what, GError **error)
{
    g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func(free_row);
    int rc;
    if (stmt == NULL)
        return NULL;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
        g_ptr_array_add(rows, from_row(stmt));
    if (rc != SQLITE_DONE) {
        sp_db_error(store, rc, what, error);
        return NULL;
    }
    return g_steal_pointer(&rows);
}

char *sp_db_col_text(SpStmt *stmt, int col)
{
    const unsigned char *t = sqlite3_column_text(stmt, col);
    return t != NULL ? g_strdup((const char *)t) : NULL;
}

/* A row into record: column i into fields[i] (strings copied). */
static void fields_from_row(SpStmt *stmt, const SpField *fields, gsize n, gpointer record)
{
    for (gsize i = 0; i < n; i++) {
        char *at = (char *)record + fields[i].offset;
        if (fields[i].type == SP_FIELD_INT)
            *(int64_t *)at = sqlite3_column_int64(stmt, (int)i);
        else
            *(char **)at = sp_db_col_text(stmt, (int)i);
    }
}

static int sp_store_user_version(SpStore *store)
{
    g_autoptr(SpStmt) stmt = db_prepare(store, "PRAGMA user_version", NULL);
    return stmt != NULL && sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int(stmt, 0) : 0;
}

/* The schema's versions after the first: each added when its probe (a statement that fails on
 * an older store) fails, or, without one, when the store's user_version is below version. */
static const struct {
    int version;
    const char *probe;
    const char *sql;
} migrations[] = {
    /* Standard checkpoints name their saved state. */
    {2, "SELECT state FROM checkpoints LIMIT 0", "ALTER TABLE checkpoints ADD COLUMN state TEXT;"},
    /* VMs of the libvirt driver name their domain and connection. */
    {3, "SELECT libvirt_domain FROM vms LIMIT 0",
     "BEGIN; ALTER TABLE vms ADD COLUMN libvirt_uri TEXT;"
     "ALTER TABLE vms ADD COLUMN libvirt_domain TEXT; COMMIT;"},
    /* A VM's checkpoint type; what each checkpoint was asked to be, why it is not, and who asked
     * (retention keeps to its schedule's own). */
    {5, "SELECT origin FROM checkpoints LIMIT 0",
     "BEGIN; ALTER TABLE vms ADD COLUMN checkpoint_type TEXT;"
     "ALTER TABLE checkpoints ADD COLUMN requested TEXT;"
     "ALTER TABLE checkpoints ADD COLUMN reason TEXT;"
     "ALTER TABLE checkpoints ADD COLUMN origin TEXT;"
     "ALTER TABLE checkpoints ADD COLUMN made_by TEXT; COMMIT;"},
    /* Records older than image_formats name overlays stillpoint made (qcow2, as is every
     * checkpoint image that has a parent); a root's image stays unknown until recorded. */
    {6, NULL,
     "BEGIN;"
     "INSERT OR IGNORE INTO image_formats (vm_id, path, format)"
     "  SELECT c.vm_id, d.overlay, 'qcow2' FROM checkpoint_disks d"
     "  JOIN checkpoints c ON c.id = d.checkpoint_id WHERE d.overlay IS NOT NULL;"
     "INSERT OR IGNORE INTO image_formats (vm_id, path, format)"
     "  SELECT c.vm_id, d.image, 'qcow2' FROM checkpoint_disks d"
     "  JOIN checkpoints c ON c.id = d.checkpoint_id WHERE c.parent IS NOT NULL;"
     "COMMIT;"},
    /* The identity (st_dev, st_ino) of each recorded image, so that a path swapped outside
     * stillpoint is refused (image-path.h); older records learn it at their next use. */
    {7, "SELECT ino FROM image_formats LIMIT 0",
     "BEGIN; ALTER TABLE image_formats ADD COLUMN dev INTEGER;"
     "ALTER TABLE image_formats ADD COLUMN ino INTEGER; COMMIT;"},
    /* The journal entry that made a checkpoint (a hook's delete finds its snapshot by it); NULL
     * for older records. */
    {8, "SELECT op_id FROM checkpoints LIMIT 0",
     "ALTER TABLE checkpoints ADD COLUMN op_id INTEGER;"},
};

static gboolean store_migrate(SpStore *store, GError **error)
{
    for (guint i = 0; i < G_N_ELEMENTS(migrations); i++) {
        gboolean due = migrations[i].probe != NULL
                           ? sqlite3_exec(store->db, migrations[i].probe, NULL, NULL, NULL) !=
                                 SQLITE_OK
                           : sp_store_user_version(store) < migrations[i].version;
        if (due && !sp_db_exec(store, migrations[i].sql, error))
            return FALSE;
    }
    return sp_db_exec(store, "PRAGMA user_version = 8;", error);
}

SpStore *sp_store_open(const char *path, GError **error)
{
    g_autoptr(SpStore) store = g_new0(SpStore, 1);
    g_autofree char *dir = g_path_get_dirname(path);
    int rc;

    store->path = g_strdup(path);
    if (g_mkdir_with_parents(dir, 0700) != 0) {
        int errsv = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errsv),
                    "checkpoint store %s: cannot create directory %s: %s", path, dir,
                    g_strerror(errsv));
        return NULL;
    }
    rc = sqlite3_open_v2(path, &store->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
    if (rc != SQLITE_OK) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "checkpoint store %s: cannot open: %s",
                    path, store->db != NULL ? sqlite3_errmsg(store->db) : sqlite3_errstr(rc));
        return NULL;
    }
    /* Another process may hold the write lock briefly; a journal write must wait, not fail. */
    sqlite3_busy_timeout(store->db, 10000);
    /* WAL + FULL: a committed journal entry survives a crash of the process or the host. */
    if (!sp_db_exec(store, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;", error))
        return NULL;
    if (!sp_db_exec(store, schema_sql, error) || !store_migrate(store, error))
        return NULL;
    return g_steal_pointer(&store);
}

void sp_store_close(SpStore *store)
{
    if (store == NULL)
        return;
    if (store->db != NULL)
        sqlite3_close(store->db);
    g_free(store->path);
    g_free(store);
}

gboolean sp_vm_name_valid(const char *name, GError **error)
{
    size_t len = name != NULL ? strlen(name) : 0;
    if (len == 0 || len > 64) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "VM name must be 1 to 64 characters");
        return FALSE;
    }
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!g_ascii_isalnum(c) && c != '.' && c != '_' && c != '-') {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "VM name '%s': only letters, digits, '.', '_' and '-' are allowed", name);
            return FALSE;
        }
    }
    if (name[0] == '.' || name[0] == '-') {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "VM name '%s' must not start with '.' or '-'", name);
        return FALSE;
    }
    return TRUE;
}

gboolean sp_checkpoint_name_valid(const char *name, GError **error)
{
    glong chars;
    if (name == NULL || !g_utf8_validate(name, -1, NULL)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "checkpoint name is not valid UTF-8");
        return FALSE;
    }
    chars = g_utf8_strlen(name, -1);
    if (chars < 1 || chars > SP_NAME_MAX_CHARS) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "checkpoint name must be 1 to %d characters (got %ld)", SP_NAME_MAX_CHARS,
                    chars);
        return FALSE;
    }
    /* Names reach hook environments, hook command lines and unit files: no option look-alike,
     * no line break of any kind. */
    if (name[0] == '-') {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "checkpoint name '%s' must not start with '-'", name);
        return FALSE;
    }
    /* '#N' names a checkpoint by id: a name of that form would catch what is meant for another. */
    if (name[0] == '#') {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "checkpoint name '%s' must not start with '#' ('#ID' gives a checkpoint by its id)",
                    name);
        return FALSE;
    }
    for (const char *p = name; *p != '\0'; p = g_utf8_next_char(p)) {
        gunichar c = g_utf8_get_char(p);
        GUnicodeType t = g_unichar_type(c);
        if (g_unichar_iscntrl(c) || t == G_UNICODE_LINE_SEPARATOR ||
            t == G_UNICODE_PARAGRAPH_SEPARATOR) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "checkpoint name must not contain control characters or line breaks");
            return FALSE;
        }
    }
    return TRUE;
}

gboolean sp_checkpoint_type_valid(const char *type, GError **error)
{
    if (g_strcmp0(type, "production") == 0 || g_strcmp0(type, "production-only") == 0 ||
        g_strcmp0(type, "standard") == 0)
        return TRUE;
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                "checkpoint type must be production, production-only or standard, not '%s'",
                type != NULL ? type : "");
    return FALSE;
}

static gboolean vm_insert(SpStore *store, const SpVm *vm, int64_t *ret_id, GError **error)
{
    g_autoptr(SpStmt) stmt = sp_db_query(
        store, error,
        "INSERT INTO vms (name, qmp, agent, driver, hook_command, overlay_dir, created, "
        "hook_timeout_ms, libvirt_uri, libvirt_domain, checkpoint_type) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        "ttttttizttt", vm->name, vm->qmp_socket != NULL ? vm->qmp_socket : "", vm->agent_socket,
        vm->driver != NULL ? vm->driver : "qemu", vm->hook_command, vm->overlay_dir,
        (int64_t)g_get_real_time(), vm->hook_timeout_ms > 0 ? vm->hook_timeout_ms : 0,
        vm->libvirt_uri, vm->libvirt_domain, vm->checkpoint_type);
    int rc;

    if (stmt == NULL)
        return FALSE;
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_CONSTRAINT) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS,
                    "VM '%s' is already registered in %s", vm->name, store->path);
        return FALSE;
    }
    if (rc != SQLITE_DONE)
        return sp_db_error(store, rc, "adding VM", error);
    *ret_id = sqlite3_last_insert_rowid(store->db);
    return TRUE;
}

gboolean sp_store_vm_add(SpStore *store, const SpVm *vm, int64_t *ret_id, GError **error)
{
    int64_t id = 0;

    if (!sp_vm_name_valid(vm->name, error))
        return FALSE;
    if (vm->checkpoint_type != NULL && !sp_checkpoint_type_valid(vm->checkpoint_type, error))
        return FALSE;
    /* The VM and its disks land together or not at all. */
    if (!sp_store_transaction_begin(store, error))
        return FALSE;
    if (!vm_insert(store, vm, &id, error) ||
        !sp_db_vm_disks_insert(store, id, vm->disks, error)) {
        sp_store_transaction_rollback(store);
        if (vm->disks != NULL && vm->disks->len > 0)
            g_prefix_error(error, "VM '%s': ", vm->name);
        return FALSE;
    }
    if (!sp_store_transaction_commit(store, error))
        return FALSE;
    if (ret_id != NULL)
        *ret_id = id;
    return TRUE;
}

static gpointer vm_from_row(SpStmt *stmt)
{
    SpVm *vm = g_new0(SpVm, 1);
    fields_from_row(stmt, vm_fields, G_N_ELEMENTS(vm_fields), vm);
    if (vm->checkpoint_type == NULL)
        vm->checkpoint_type = g_strdup(SP_CHECKPOINT_TYPE_DEFAULT);
    return vm;
}

#define VM_COLUMNS                                                                                 \
    "id, name, qmp, agent, driver, hook_command, overlay_dir, current, created, hook_timeout_ms, "  \
    "libvirt_uri, libvirt_domain, checkpoint_type"

SpVm *sp_store_vm_get(SpStore *store, const char *name, GError **error)
{
    g_autoptr(SpStmt) stmt =
        sp_db_query(store, error, "SELECT " VM_COLUMNS " FROM vms WHERE name = ?", "t", name);
    g_autoptr(SpVm) vm = NULL;
    int rc;
    if (stmt == NULL)
        return NULL;
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                    "VM '%s' is not registered (see 'stillpoint vm list', or add it with "
                    "'stillpoint vm add')", name);
        return NULL;
    }
    if (rc != SQLITE_ROW) {
        sp_db_error(store, rc, "reading VM", error);
        return NULL;
    }
    vm = vm_from_row(stmt);
    if (!sp_db_vm_disks_load(store, vm, error))
        return NULL;
    return g_steal_pointer(&vm);
}

GPtrArray *sp_store_vm_list(SpStore *store, GError **error)
{
    g_autoptr(SpStmt) stmt = db_prepare(store, "SELECT " VM_COLUMNS " FROM vms ORDER BY name",
                                           error);
    g_autoptr(GPtrArray) vms = sp_db_rows(store, stmt, vm_from_row,
                                          (GDestroyNotify)sp_vm_free, "listing VMs", error);
    if (vms == NULL)
        return NULL;
    for (guint i = 0; i < vms->len; i++) {
        if (!sp_db_vm_disks_load(store, g_ptr_array_index(vms, i), error))
            return NULL;
    }
    return g_steal_pointer(&vms);
}

gboolean sp_store_vm_set_checkpoint_type(SpStore *store, const char *name, const char *type,
                                         GError **error)
{
    if (!sp_checkpoint_type_valid(type, error))
        return FALSE;
    if (!sp_db_run(store, "setting the checkpoint type", error,
                   "UPDATE vms SET checkpoint_type = ? WHERE name = ?", "tt", type, name))
        return FALSE;
    if (sqlite3_changes(store->db) == 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                    "VM '%s' is not registered (see 'stillpoint vm list')", name);
        return FALSE;
    }
    return TRUE;
}

gboolean sp_store_vm_remove(SpStore *store, const char *name, gboolean force, GError **error)
{
    g_autoptr(SpVm) vm = sp_store_vm_get(store, name, error);
    g_autoptr(SpStmt) count = NULL;
    int64_t n;

    if (vm == NULL)
        return FALSE;
    count = sp_db_query(store, error,
                        "SELECT (SELECT COUNT(*) FROM checkpoints WHERE vm_id = ?1) + "
                        "(SELECT COUNT(*) FROM ops WHERE vm_id = ?1 AND state = 'intent')",
                        "i", vm->id);
    if (count == NULL)
        return FALSE;
    if (sqlite3_step(count) != SQLITE_ROW)
        return sp_db_error(store, SQLITE_ERROR, "counting checkpoints", error);
    n = sqlite3_column_int64(count, 0);
    if (n > 0 && !force) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_EMPTY,
                    "VM '%s' has %" G_GINT64_FORMAT " checkpoint(s) or unfinished operation(s); "
                    "use --force to forget them (image files are kept)",
                    name, n);
        return FALSE;
    }
    return sp_db_run(store, "removing VM", error, "DELETE FROM vms WHERE id = ?", "i", vm->id);
}

static gboolean checkpoint_insert_disks(SpStore *store, const SpCheckpoint *cp, GError **error)
{
    for (guint i = 0; cp->disks != NULL && i < cp->disks->len; i++) {
        SpCheckpointDisk *d = g_ptr_array_index(cp->disks, i);
        if (!sp_db_image_format_record(store, cp->vm_id, d->image, d->image_format, error) ||
            (d->overlay != NULL &&
             !sp_db_image_format_record(store, cp->vm_id, d->overlay, "qcow2", error)))
            return FALSE;
    }
    for (guint i = 0; cp->disks != NULL && i < cp->disks->len; i++) {
        SpCheckpointDisk *d = g_ptr_array_index(cp->disks, i);
        if (!sp_db_run(store, "recording checkpoint disk", error,
                       "INSERT INTO checkpoint_disks (checkpoint_id, disk, node, image, overlay, "
                       "overlay_node) VALUES (?, ?, ?, ?, ?, ?)",
                       "ittttt", cp->id, d->disk, d->node, d->image, d->overlay, d->overlay_node))
            return FALSE;
    }
    return TRUE;
}

static gboolean op_set_state(SpStore *store, int64_t op_id, SpOpState state, GError **error)
{
    return sp_db_run(store, "finishing operation", error,
                     "UPDATE ops SET state = ?, finished = ? WHERE id = ?", "tii",
                     op_state_names[state], (int64_t)g_get_real_time(), op_id);
}

static gboolean checkpoint_add_locked(SpStore *store, SpCheckpoint *cp, int64_t op_id,
                                      GError **error)
{
    g_autoptr(SpStmt) cur =
        sp_db_query(store, error, "SELECT current FROM vms WHERE id = ?", "i", cp->vm_id);

    if (cur == NULL)
        return FALSE;
    if (sqlite3_step(cur) != SQLITE_ROW) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                    "checkpoint '%s': its VM (id %" G_GINT64_FORMAT ") is not registered",
                    cp->name, cp->vm_id);
        return FALSE;
    }
    cp->parent = sqlite3_column_int64(cur, 0);
    if (!sp_db_run(store, "recording checkpoint", error,
                   "INSERT INTO checkpoints (vm_id, parent, name, type, consistency, created, "
                   "state, requested, reason, origin, made_by, op_id) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   "iztttitttttz", cp->vm_id, cp->parent, cp->name, cp->type, cp->consistency,
                   cp->created_us != 0 ? cp->created_us : (int64_t)g_get_real_time(), cp->state,
                   cp->requested, cp->reason, cp->origin, cp->made_by, op_id))
        return FALSE;
    cp->id = sqlite3_last_insert_rowid(store->db);
    if (!checkpoint_insert_disks(store, cp, error) ||
        !sp_db_run(store, "setting current checkpoint", error,
                   "UPDATE vms SET current = ? WHERE id = ?", "ii", cp->id, cp->vm_id))
        return FALSE;
    if (op_id != 0 && !op_set_state(store, op_id, SP_OP_DONE, error))
        return FALSE;
    return TRUE;
}

gboolean sp_store_checkpoint_add(SpStore *store, SpCheckpoint *cp, int64_t op_id,
                                 int64_t *ret_id, GError **error)
{
    if (!sp_checkpoint_name_valid(cp->name, error))
        return FALSE;
    if (!sp_db_exec(store, "BEGIN IMMEDIATE", error))
        return FALSE;
    if (!checkpoint_add_locked(store, cp, op_id, error)) {
        sqlite3_exec(store->db, "ROLLBACK", NULL, NULL, NULL);
        return FALSE;
    }
    if (!sp_db_exec(store, "COMMIT", error)) {
        sqlite3_exec(store->db, "ROLLBACK", NULL, NULL, NULL);
        return FALSE;
    }
    if (ret_id != NULL)
        *ret_id = cp->id;
    return TRUE;
}

static gpointer checkpoint_disk_from_row(SpStmt *stmt)
{
    SpCheckpointDisk *d = g_new0(SpCheckpointDisk, 1);
    fields_from_row(stmt, checkpoint_disk_fields, G_N_ELEMENTS(checkpoint_disk_fields), d);
    return d;
}

static gboolean checkpoint_load_disks(SpStore *store, SpCheckpoint *cp, GError **error)
{
    g_autoptr(SpStmt) stmt = sp_db_query(store, error,
                                         "SELECT disk, node, image, overlay, overlay_node, "
                                         "(SELECT format FROM image_formats f WHERE f.vm_id = ?2 "
                                         "AND f.path = image) FROM checkpoint_disks WHERE "
                                         "checkpoint_id = ?1 ORDER BY rowid",
                                         "ii", cp->id, cp->vm_id);
    GPtrArray *disks = sp_db_rows(store, stmt, checkpoint_disk_from_row,
                                  (GDestroyNotify)sp_checkpoint_disk_free,
                                  "reading checkpoint disks", error);
    if (disks == NULL)
        return FALSE;
    g_ptr_array_unref(cp->disks);
    cp->disks = disks;
    return TRUE;
}

static gpointer checkpoint_from_row(SpStmt *stmt)
{
    SpCheckpoint *cp = g_new0(SpCheckpoint, 1);
    fields_from_row(stmt, checkpoint_fields, G_N_ELEMENTS(checkpoint_fields), cp);
    cp->disks = g_ptr_array_new_with_free_func((GDestroyNotify)sp_checkpoint_disk_free);
    return cp;
}

GPtrArray *sp_store_checkpoint_list(SpStore *store, int64_t vm_id, GError **error)
{
    g_autoptr(SpStmt) stmt = sp_db_query(store, error,
                                         "SELECT id, vm_id, parent, name, type, consistency, "
                                         "created, state, requested, reason, origin, made_by, "
                                         "op_id FROM checkpoints WHERE vm_id = ? ORDER BY id",
                                         "i", vm_id);
    g_autoptr(GPtrArray) cps = sp_db_rows(store, stmt, checkpoint_from_row,
                                          (GDestroyNotify)sp_checkpoint_free,
                                          "listing checkpoints", error);
    if (cps == NULL)
        return NULL;
    for (guint i = 0; i < cps->len; i++) {
        if (!checkpoint_load_disks(store, g_ptr_array_index(cps, i), error))
            return NULL;
    }
    return g_steal_pointer(&cps);
}

gboolean sp_store_checkpoint_name_exists(SpStore *store, int64_t vm_id, const char *name,
                                         gboolean *ret_exists, GError **error)
{
    g_autoptr(SpStmt) stmt = sp_db_query(store, error,
                                         "SELECT 1 FROM checkpoints WHERE vm_id = ? AND name = ?",
                                         "it", vm_id, name);
    int rc;
    if (stmt == NULL)
        return FALSE;
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return sp_db_error(store, rc, "looking up checkpoint name", error);
    *ret_exists = rc == SQLITE_ROW;
    return TRUE;
}

gboolean sp_store_op_begin(SpStore *store, int64_t vm_id, const char *kind, const char *payload,
                           int64_t *ret_id, GError **error)
{
    if (!sp_db_run(store, "journaling operation", error,
                   "INSERT INTO ops (vm_id, kind, state, step, payload, created) "
                   "VALUES (?, ?, 'intent', 'planned', ?, ?)",
                   "itti", vm_id, kind, payload, (int64_t)g_get_real_time()))
        return FALSE;
    *ret_id = sqlite3_last_insert_rowid(store->db);
    return TRUE;
}

gboolean sp_store_op_step(SpStore *store, int64_t op_id, const char *step, GError **error)
{
    return sp_db_run(store, "journaling step", error, "UPDATE ops SET step = ? WHERE id = ?",
                     "ti", step, op_id);
}

gboolean sp_store_op_step_in_window(SpStore *store, int64_t op_id, const char *step,
                                    GError **error)
{
    /* In WAL mode, synchronous=NORMAL commits to the log without an fsync; the log stays
     * consistent and the next FULL commit syncs it. */
    gboolean ok;
    if (!sp_db_exec(store, "PRAGMA synchronous = NORMAL;", error))
        return FALSE;
    ok = sp_store_op_step(store, op_id, step, error);
    if (!sp_db_exec(store, "PRAGMA synchronous = FULL;", ok ? error : NULL))
        return FALSE;
    return ok;
}

gboolean sp_store_op_finish(SpStore *store, int64_t op_id, SpOpState state, GError **error)
{
    return op_set_state(store, op_id, state, error);
}

static gpointer op_from_row(SpStmt *stmt)
{
    SpOp *op = g_new0(SpOp, 1);
    g_autofree char *state = NULL;
    op->id = sqlite3_column_int64(stmt, 0);
    op->vm_id = sqlite3_column_int64(stmt, 1);
    op->kind = sp_db_col_text(stmt, 2);
    state = sp_db_col_text(stmt, 3);
    op->state = SP_OP_INTENT;
    for (guint i = 0; i < G_N_ELEMENTS(op_state_names); i++) {
        if (g_strcmp0(state, op_state_names[i]) == 0)
            op->state = (SpOpState)i;
    }
    op->step = sp_db_col_text(stmt, 4);
    op->payload = sp_db_col_text(stmt, 5);
    op->created_us = sqlite3_column_int64(stmt, 6);
    return op;
}

#define OP_COLUMNS "id, vm_id, kind, state, step, payload, created"

GPtrArray *sp_store_op_list_unfinished(SpStore *store, int64_t vm_id, GError **error)
{
    g_autoptr(SpStmt) stmt = sp_db_query(store, error,
                                         "SELECT " OP_COLUMNS " FROM ops WHERE vm_id = ? AND "
                                         "state = 'intent' ORDER BY id",
                                         "i", vm_id);
    return sp_db_rows(store, stmt, op_from_row, (GDestroyNotify)sp_op_free, "listing operations",
                      error);
}

SpOp *sp_store_op_get(SpStore *store, int64_t op_id, GError **error)
{
    g_autoptr(SpStmt) stmt =
        sp_db_query(store, error, "SELECT " OP_COLUMNS " FROM ops WHERE id = ?", "i", op_id);
    int rc;
    if (stmt == NULL)
        return NULL;
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                    "operation %" G_GINT64_FORMAT " is not in the journal", op_id);
        return NULL;
    }
    return op_from_row(stmt);
}

gboolean sp_store_checkpoint_insert(SpStore *store, SpCheckpoint *cp, GError **error)
{
    if (!sp_checkpoint_name_valid(cp->name, error))
        return FALSE;
    return checkpoint_add_locked(store, cp, 0, error);
}
