/* Backup sessions: begin = a production checkpoint (plus dirty bitmaps in its transaction) and a
 * read-only NBD export of every frozen node; end = exports removed, the checkpoint merged back.
 * The session lives in "<store>.<vm>.backup.json", rewritten atomically at each step: it is the
 * session's journal, and after "closed" it remembers the bitmap the next incremental starts from.
 *
 * Why the new bitmap goes on the frozen node, not on the overlay: the overlay is merged away at the
 * end, its bitmaps with it. The frozen node receives no guest write while the session is open, and
 * the block-commit that ends it writes exactly the clusters the guest changed meanwhile into that
 * node, which dirties the bitmap; after the merge the node is the disk's top again and the bitmap
 * keeps recording. So at the next begin it holds every change since this one.
 *
 * With the libvirt driver, libvirt owns QEMU's monitor: a session is libvirt's own pull-mode
 * backup job and checkpoint (backup-libvirt.c). */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include "stillpoint/backup.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <string.h>

#include "backup-internal.h"
#include "op-util.h"
#include "stillpoint/driver.h"
#include "stillpoint/ops.h"
#include "stillpoint/qmp.h"
#include "test-hooks.h"

typedef SpBackupReport Report;

void sp_backup_say(const Report *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sp_progress_vsay(r->progress, r->user_data, fmt, ap);
    va_end(ap);
}

static char *session_path(SpStore *store, const SpVm *vm)
{
    return g_strdup_printf("%s.%s.backup.json", sp_store_get_path(store), vm->name);
}

char *sp_backup_socket_path(const char *store_path, const char *vm_name)
{
    if (g_strcmp0(store_path, SP_STORE_DEFAULT_PATH) == 0)
        return g_strdup_printf("%s/%s.nbd/" SP_BACKUP_SOCKET_NAME, SP_RUNTIME_DIR, vm_name);
    return g_strdup_printf("%s.%s.nbd/" SP_BACKUP_SOCKET_NAME, store_path, vm_name);
}

/* Removes the socket's own directory (name in parent_fd) and the socket in it, by fd: nothing
 * in it is followed. The directory stays root's, so nothing but the socket is in it. */
static gboolean socket_dir_remove(int parent_fd, const char *name)
{
    int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        unlinkat(fd, SP_BACKUP_SOCKET_NAME, 0);
        close(fd);
    }
    return unlinkat(parent_fd, name, AT_REMOVEDIR) == 0 || errno == ENOENT;
}

/* The socket's directory, made afresh, root's (0700; 0711 once its socket is given). SP_RUNTIME_DIR
 * is 0711: a caller given its session's socket can reach it, list nothing, write nothing. */
static gboolean socket_dir_make(const char *socket, GError **error)
{
    g_autofree char *dir = g_path_get_dirname(socket);
    g_autofree char *parent = g_path_get_dirname(dir), *name = g_path_get_basename(dir);
    int fd, errsv = 0;

    if (g_strcmp0(parent, SP_RUNTIME_DIR) == 0 &&
        ((g_mkdir(SP_RUNTIME_DIR, 0711) < 0 && errno != EEXIST) || chmod(SP_RUNTIME_DIR, 0711) < 0))
        errsv = errno;
    else if ((fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        errsv = errno;
    else {
        if (!socket_dir_remove(fd, name) || mkdirat(fd, name, 0700) < 0)
            errsv = errno;
        close(fd);
    }
    if (errsv != 0)
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errsv),
                    "cannot make %s for the NBD socket (remove what is left in it): %s", dir,
                    g_strerror(errsv));
    return errsv == 0;
}

/* The socket and its directory; a journal of an older session names a bare socket. */
static void socket_remove(const char *socket)
{
    g_autofree char *dir = g_path_get_dirname(socket), *base = g_path_get_basename(socket);
    g_autofree char *parent = g_path_get_dirname(dir), *name = g_path_get_basename(dir);
    int fd;

    if (g_strcmp0(base, SP_BACKUP_SOCKET_NAME) != 0) {
        g_unlink(socket);
        return;
    }
    if ((fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return;
    if (!socket_dir_remove(fd, name))
        g_warning("backup: cannot remove %s: %s", dir, g_strerror(errno));
    close(fd);
}

/* Gives the socket (never the directory, nor anything a symlink points at) in dir_fd, root's. */
static int socket_give_in(int dir_fd, const char *base, guint32 uid)
{
    struct stat st;

    if (fstat(dir_fd, &st) < 0)
        return errno;
    if (st.st_uid != geteuid())
        return EPERM;
    if (fstatat(dir_fd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno;
    /* Only QEMU's socket, still ours: what is given once is not given again. */
    if (!S_ISSOCK(st.st_mode) || st.st_uid != geteuid())
        return EPERM;
    /* The directory stays root's: the caller can reach the socket, and write nothing beside it. */
    if (fchmod(dir_fd, 0711) < 0 || fchmodat(dir_fd, base, 0600, AT_SYMLINK_NOFOLLOW) < 0 ||
        fchownat(dir_fd, base, uid, (gid_t)-1, AT_SYMLINK_NOFOLLOW) < 0)
        return errno;
    return 0;
}

gboolean sp_backup_socket_give(const char *socket, guint32 uid, GError **error)
{
    g_autofree char *dir = g_path_get_dirname(socket), *base = g_path_get_basename(socket);
    int fd, errsv;

    if (uid == 0 || g_strcmp0(base, SP_BACKUP_SOCKET_NAME) != 0)
        return TRUE;
    if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        errsv = errno;
    else {
        errsv = socket_give_in(fd, base, uid);
        close(fd);
    }
    if (errsv != 0)
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errsv),
                    "cannot give %s to uid %u: %s", socket, uid, g_strerror(errsv));
    return errsv == 0;
}

static char *nbd_socket_path(SpStore *store, const SpVm *vm)
{
    return sp_backup_socket_path(sp_store_get_path(store), vm->name);
}

/* The VM's driver's sessions (a session once begun has them). */
static const SpBackupOps *backup_ops(const SpVm *vm)
{
    const SpBackupOps *ops = sp_driver_ops_of(vm)->backup;
    return ops != NULL ? ops : &sp_backup_qemu_ops;
}

/* The QEMU whose NBD server holds the session's exports. */
static SpQmp *exporter_connect(SpStore *store, SpVm *vm, GError **error)
{
    (void)store;
    return sp_qmp_connect(vm->qmp_socket, SP_QMP_CONNECT_TIMEOUT_MS, error);
}

SpJson *sp_backup_status(SpStore *store, SpVm *vm, GError **error)
{
    g_autofree char *path = session_path(store, vm);
    SpJson *root = NULL;
    gboolean invalid = FALSE;

    if (!sp_json_file_read(path, &root, &invalid, error)) {
        g_prefix_error(error, "VM '%s': backup session: ", vm->name);
        return NULL;
    }
    if (invalid)
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "VM '%s': backup session file %s is not a JSON object; move it away after "
                    "checking the VM's chain with 'stillpoint checkpoint list'",
                    vm->name, path);
    return root;
}

/* The session file is replaced atomically (write + rename): a crash leaves the old or new step. */
gboolean sp_backup_session_save(SpStore *store, SpVm *vm, SpJson *session, const char *state,
                                GError **error)
{
    g_autofree char *path = session_path(store, vm);
    g_autofree char *text = NULL;
    sp_json_object_set_string(session, "state", state);
    text = sp_json_serialize(session, NULL);
    if (!g_file_set_contents(path, text, -1, error)) {
        g_prefix_error(error, "VM '%s': writing the backup session: ", vm->name);
        return FALSE;
    }
    return TRUE;
}

static SpJson *qmp_run(SpQmp *qmp, const char *command, SpJson *args, GError **error)
{
    return sp_qmp_execute(qmp, command, args, SP_QMP_DEFAULT_TIMEOUT_MS, error);
}

static gboolean error_says(const GError *error, const char *text)
{
    return error != NULL && strstr(error->message, text) != NULL;
}

/* ---- exports ---- */

static char *export_id(const char *disk)
{
    g_autofree char *id = g_strdup_printf("sp-backup-%s", disk);
    return g_strcanon(g_steal_pointer(&id),
                      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-_", '_');
}

static gboolean nbd_start(SpQmp *qmp, const char *socket, gboolean *ret_started, GError **error)
{
    g_autoptr(SpJson) args = sp_json_new_object();
    g_autoptr(SpJson) ret = NULL;
    g_autoptr(GError) local = NULL;
    SpJson *addr = sp_json_new_object(), *data = sp_json_new_object();

    if (!socket_dir_make(socket, error)) /* a stale socket of a QEMU that died goes with it */
        return FALSE;
    sp_json_object_set_string(data, "path", socket);
    sp_json_object_set_string(addr, "type", "unix");
    sp_json_object_set(addr, "data", data);
    sp_json_object_set(args, "addr", addr);
    ret = qmp_run(qmp, "nbd-server-start", g_steal_pointer(&args), &local);
    if (ret == NULL) {
        g_propagate_prefixed_error(error, g_steal_pointer(&local),
                                   "starting QEMU's NBD server on %s (QEMU runs one NBD server; "
                                   "is another tool using it?): ",
                                   socket);
        return FALSE;
    }
    *ret_started = TRUE;
    return TRUE;
}

static gboolean export_add(SpQmp *qmp, SpJson *disk, const char *bitmap, GError **error)
{
    g_autoptr(SpJson) args = sp_json_new_object();
    g_autoptr(SpJson) ret = NULL;
    const char *name = sp_json_object_get_string(disk, "disk");

    sp_json_object_set_string(args, "type", "nbd");
    sp_json_object_set_string(args, "id", sp_json_object_get_string(disk, "export-id"));
    sp_json_object_set_string(args, "node-name",
                              sp_json_object_get_string(disk, sp_json_object_get(disk, "export-node")
                                                                  ? "export-node"
                                                                  : "node"));
    sp_json_object_set_string(args, "name", sp_json_object_get_string(disk, "export"));
    sp_json_object_set_bool(args, "writable", false);
    if (bitmap != NULL) {
        SpJson *bitmaps = sp_json_new_array();
        sp_json_array_append(bitmaps, sp_json_new_string(bitmap));
        sp_json_object_set(args, "bitmaps", bitmaps);
    }
    ret = qmp_run(qmp, "block-export-add", g_steal_pointer(&args), error);
    if (ret == NULL) {
        g_prefix_error(error, "disk %s: exporting its frozen node over NBD: ", name);
        return FALSE;
    }
    return TRUE;
}

/* Removes the exports ("hard": a backup tool still connected is cut off, the session is over)
 * and the NBD server if the session started it. Missing ones are fine: that makes end resumable. */
static gboolean exports_remove(SpQmp *qmp, SpJson *session, GError **error)
{
    const SpJson *disks = sp_json_object_get(session, "disks");
    const SpJson *nbd = sp_json_object_get(session, "nbd");
    for (size_t i = 0; i < sp_json_array_len(disks); i++) {
        const SpJson *d = sp_json_array_get(disks, i);
        g_autoptr(SpJson) args = sp_json_new_object();
        g_autoptr(SpJson) ret = NULL;
        g_autoptr(GError) local = NULL;
        sp_json_object_set_string(args, "id", sp_json_object_get_string(d, "export-id"));
        sp_json_object_set_string(args, "mode", "hard");
        ret = qmp_run(qmp, "block-export-del", g_steal_pointer(&args), &local);
        if (ret == NULL && !error_says(local, "not found")) {
            g_propagate_error(error, g_steal_pointer(&local));
            return FALSE;
        }
        /* Deletion is asynchronous: the node is in use by the export until this event. */
        if (ret != NULL)
            sp_json_free(sp_qmp_wait_event(qmp, "BLOCK_EXPORT_DELETED", "id",
                                           sp_json_object_get_string(d, "export-id"),
                                           SP_QMP_DEFAULT_TIMEOUT_MS, NULL));
    }
    if (sp_json_object_get_bool(nbd, "started", false)) {
        g_autoptr(SpJson) ret = NULL;
        g_autoptr(GError) local = NULL;
        ret = qmp_run(qmp, "nbd-server-stop", NULL, &local);
        if (ret == NULL && !error_says(local, "not running")) {
            g_propagate_error(error, g_steal_pointer(&local));
            return FALSE;
        }
        socket_remove(sp_json_object_get_string(nbd, "socket"));
    }
    return TRUE;
}

/* ---- changed extents (incremental) ---- */

/* Reads the exported bitmap back through QEMU's own NBD client: with x-dirty-bitmap, qemu-img map
 * reports the bitmap's dirty ranges as "data": false (the meta context replaces block status). */
SpJson *sp_backup_changed_extents(const char *socket, const char *export_name,
                                  const char *bitmap, gint64 *ret_bytes, GError **error)
{
    g_auto(GStrv) argv = sp_img_argv_map_nbd_bitmap(socket, export_name, bitmap);
    g_autofree char *out = NULL;
    g_autoptr(SpJson) map = NULL;
    SpJson *extents = sp_json_new_array();
    gint64 start = -1, end = -1, total = 0;

    if (!sp_op_qemu_img_output((const char *const *)argv, &out, error)) {
        g_prefix_error(error, "export %s: reading bitmap %s: ", export_name, bitmap);
        goto fail;
    }
    if (sp_json_parse(out, strlen(out), NULL, &map, NULL) != SP_OK) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    "export %s: reading bitmap %s with qemu-img map: no JSON map", export_name,
                    bitmap);
        goto fail;
    }
    for (size_t i = 0; i <= sp_json_array_len(map); i++) {
        const SpJson *e = sp_json_array_get(map, i);
        gint64 off = e != NULL ? sp_json_object_get_int(e, "start", 0) : -1;
        gint64 len = e != NULL ? sp_json_object_get_int(e, "length", 0) : 0;
        gboolean dirty = e != NULL && !sp_json_object_get_bool(e, "data", true);
        if (start >= 0 && (!dirty || off != end)) {
            SpJson *x = sp_json_new_object();
            sp_json_object_set_int(x, "offset", start);
            sp_json_object_set_int(x, "length", end - start);
            sp_json_array_append(extents, x);
            total += end - start;
            start = -1;
        }
        if (dirty) {
            if (start < 0)
                start = off;
            end = off + len;
        }
    }
    *ret_bytes = total;
    return extents;
fail:
    sp_json_free(extents);
    return NULL;
}

/* ---- begin ---- */

static char *new_bitmap_name(void)
{
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    g_autofree char *stamp = g_date_time_format(now, "%Y%m%dT%H%M%S");
    return g_strdup_printf("sp-backup-%s-%04x", stamp, g_random_int() & 0xffff);
}

/* The session's disks from the checkpoint just made: the frozen node and image of each. */
static SpJson *session_disks(const SpCheckpoint *cp, GPtrArray *live, const char *socket)
{
    SpJson *disks = sp_json_new_array();
    for (guint i = 0; i < cp->disks->len; i++) {
        const SpCheckpointDisk *cd = g_ptr_array_index(cp->disks, i);
        SpJson *d = sp_json_new_object();
        g_autofree char *id = export_id(cd->disk);
        g_autofree char *uri = g_strdup_printf("nbd+unix:///%s?socket=%s", cd->disk, socket);
        sp_json_object_set_string(d, "disk", cd->disk);
        sp_json_object_set_string(d, "node", cd->node);
        sp_json_object_set_string(d, "image", cd->image);
        sp_json_object_set_string(d, "overlay", cd->overlay);
        if (sp_disk_find(live, cd->disk) != NULL)
            sp_json_object_set_int(d, "size", sp_disk_find(live, cd->disk)->size);
        sp_json_object_set_string(d, "export", cd->disk);
        sp_json_object_set_string(d, "export-id", id);
        sp_json_object_set_string(d, "nbd-uri", uri);
        sp_json_array_append(disks, d);
    }
    return disks;
}

static gboolean begin_exports(SpStore *store, SpVm *vm, SpJson *session, const Report *r,
                              GError **error)
{
    g_autoptr(SpQmp) qmp = exporter_connect(store, vm, error);
    SpJson *nbd = (SpJson *)sp_json_object_get(session, "nbd");
    const SpJson *disks = sp_json_object_get(session, "disks");
    const char *since = sp_json_object_get_string(session, "since-bitmap");
    const char *socket = sp_json_object_get_string(nbd, "socket");
    gboolean started = FALSE;

    if (qmp == NULL)
        return FALSE;
    sp_backup_say(r, "exporting %zu frozen disk(s) read-only over NBD on %s", sp_json_array_len(disks),
        socket);
    if (!nbd_start(qmp, socket, &started, error))
        return FALSE;
    sp_json_object_set_bool(nbd, "started", started);
    if (!sp_backup_session_save(store, vm, session, STATE_BEGINNING, error))
        return FALSE;
    for (size_t i = 0; i < sp_json_array_len(disks); i++) {
        SpJson *d = (SpJson *)sp_json_array_get(disks, i);
        gint64 bytes = 0;
        SpJson *extents;
        if (!export_add(qmp, d, since, error))
            return FALSE;
        if (since == NULL)
            continue;
        g_autofree char *ctx = g_strdup_printf("qemu:dirty-bitmap:%s", since);
        sp_json_object_set_string(d, "dirty-bitmap", ctx);
        extents = sp_backup_changed_extents(socket, sp_json_object_get_string(d, "export"), since, &bytes,
                                  error);
        if (extents == NULL)
            return FALSE;
        sp_json_object_set(d, "changed", extents);
        sp_json_object_set_int(d, "changed-bytes", bytes);
    }
    return TRUE;
}

static gboolean end_qemu(SpStore *store, SpVm *vm, SpJson *session, gboolean keep,
                         gboolean aborted, const Report *r, GError **error);

/* The bitmap the next incremental starts from, if the last session closed cleanly. */
static char *previous_bitmap(SpJson *old)
{
    if (old == NULL || g_strcmp0(sp_json_object_get_string(old, "state"), STATE_CLOSED) != 0)
        return NULL;
    return g_strdup(sp_json_object_get_string(old, "bitmap"));
}

/* The session as planned, before anything is made: the names, the bitmaps, the socket. */
static SpJson *new_session(SpStore *store, SpVm *vm, gboolean incremental, const char *prev)
{
    SpJson *session = sp_json_new_object();
    SpJson *nbd = sp_json_new_object(), *cpj = sp_json_new_object();
    g_autoptr(GDateTime) now = g_date_time_new_now_local();
    g_autofree char *name = g_date_time_format(now, "backup %Y-%m-%d %H:%M:%S");
    g_autofree char *bitmap = new_bitmap_name(), *socket = nbd_socket_path(store, vm);

    sp_json_object_set_string(session, "vm", vm->name);
    sp_json_object_set_bool(session, "incremental", incremental && prev != NULL);
    sp_json_object_set_string(session, "bitmap", bitmap);
    if (prev != NULL)
        sp_json_object_set_string(session, "previous-bitmap", prev);
    if (incremental && prev != NULL)
        sp_json_object_set_string(session, "since-bitmap", prev);
    sp_json_object_set_string(nbd, "socket", socket);
    sp_json_object_set(session, "nbd", nbd);
    sp_json_object_set_string(cpj, "name", name);
    sp_json_object_set(session, "checkpoint", cpj);
    return session;
}

/* The qemu driver: a production checkpoint whose transaction also handles the bitmaps, then the
 * exports from the VM's own QEMU. */
static SpJson *begin_exports_qemu(SpStore *store, SpVm *vm, SpJson *session, SpJson *old,
                                  const Report *r, GError **error)
{
    SpJson *cpj = (SpJson *)sp_json_object_get(session, "checkpoint");
    const char *socket = sp_json_object_get_string(sp_json_object_get(session, "nbd"), "socket");
    SpCreateOptions opts = {.on_quiesce_failure = SP_QUIESCE_FAIL, .origin = SP_ORIGIN_BACKUP};
    g_autoptr(SpCheckpoint) cp = NULL;
    g_autoptr(GPtrArray) live = NULL;

    opts.name = sp_json_object_get_string(cpj, "name");
    opts.bitmap_add = sp_json_object_get_string(session, "bitmap");
    /* frozen with the disks: the incremental's end point */
    opts.bitmap_disable = sp_json_object_get_string(session, "previous-bitmap");
    cp = sp_coordinator_create(store, vm, &opts, r->progress, r->user_data, error);
    if (cp == NULL) {
        /* No checkpoint, no bitmap change: the previous session's bitmap still holds. */
        g_autofree char *path = session_path(store, vm);
        if (old != NULL)
            sp_backup_session_save(store, vm, old, STATE_CLOSED, NULL);
        else
            g_unlink(path);
        return NULL;
    }
    sp_json_object_set_int(cpj, "id", cp->id);
    sp_json_object_set_string(session, "consistency", cp->consistency);
    live = sp_vm_discover_disks(vm, NULL);
    if (live == NULL)
        live = g_ptr_array_new_with_free_func((GDestroyNotify)sp_disk_free);
    sp_json_object_set(session, "disks", session_disks(cp, live, socket));
    if (!sp_backup_session_save(store, vm, session, STATE_BEGINNING, error) ||
        !begin_exports(store, vm, session, r, error) ||
        (sp_test_crash_point("backup-exported"), FALSE) ||
        !sp_backup_session_save(store, vm, session, STATE_OPEN, error)) {
        g_autoptr(GError) cleanup = NULL;
        if (!end_qemu(store, vm, session, FALSE, TRUE, r, &cleanup))
            g_prefix_error(error, "(ending the session failed too: %s) ", cleanup->message);
        return NULL;
    }
    return session;
}

static SpJson *begin_qemu(SpStore *store, SpVm *vm, SpJson *session, SpJson *old,
                          const Report *r, GError **error)
{
    g_autoptr(SpJson) s = session;
    /* Before the checkpoint: a crash from here on is found by sp_backup_recover. */
    if (!sp_backup_session_save(store, vm, s, STATE_BEGINNING, error))
        return NULL;
    sp_test_crash_point("backup-planned");
    if (begin_exports_qemu(store, vm, s, old, r, error) == NULL)
        return NULL;
    return g_steal_pointer(&s);
}

/* No other session open (a closed one is *ret_old, for its bitmap). */
static gboolean none_open(SpStore *store, SpVm *vm, SpJson **ret_old, GError **error)
{
    SpJson *old = sp_backup_status(store, vm, error);
    *ret_old = old;
    if (old == NULL)
        return error == NULL || *error == NULL;
    if (g_strcmp0(sp_json_object_get_string(old, "state"), STATE_CLOSED) != 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_BUSY,
                    "VM '%s' has a backup session open (checkpoint '%s'); end it first with "
                    "'stillpoint backup end %s'",
                    vm->name,
                    sp_json_object_get_string(sp_json_object_get(old, "checkpoint"), "name"),
                    vm->name);
        return FALSE;
    }
    return TRUE;
}

SpJson *sp_backup_begin(SpStore *store, SpVm *vm, gboolean incremental, SpProgressFn progress,
                        gpointer user_data, GError **error)
{
    Report r = {progress, user_data};
    g_autoptr(SpJson) old = NULL;
    g_autoptr(SpJson) session = NULL;
    g_autofree char *prev = NULL;

    const SpDriverOps *driver = sp_driver_ops_of(vm);

    if (driver->backup == NULL || (driver->needs_qmp && vm->qmp_socket == NULL)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "VM '%s': backup sessions need the qemu or libvirt driver (an NBD export of "
                    "the frozen images)",
                    vm->name);
        return NULL;
    }
    if (!sp_backup_recover(store, vm, progress, user_data, error) ||
        !none_open(store, vm, &old, error))
        return NULL;
    prev = previous_bitmap(old);
    if (incremental && prev == NULL)
        sp_backup_say(&r, "WARNING: no bitmap of a previous backup session: this backup is a "
                          "full one");
    session = new_session(store, vm, incremental, prev);
    return driver->backup->begin(store, vm, g_steal_pointer(&session), old, &r, error);
}

/* ---- end ---- */

static gboolean bitmap_remove(SpQmp *qmp, const char *node, const char *name, GError **error)
{
    g_autoptr(SpJson) args = sp_json_new_object();
    g_autoptr(SpJson) ret = NULL;
    g_autoptr(GError) local = NULL;
    sp_json_object_set_string(args, "node", node);
    sp_json_object_set_string(args, "name", name);
    ret = qmp_run(qmp, "block-dirty-bitmap-remove", g_steal_pointer(&args), &local);
    /* A node kept as a checkpoint is a read-only backing file now: its bitmaps stay in the image,
     * unused (nothing writes there any more), and the session forgets them. */
    if (ret == NULL && !error_says(local, "not found") && !error_says(local, "readonly")) {
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    return TRUE;
}

/* An aborted session (the tool did not finish, or a crash): the previous bitmap records again
 * before the merge, so the merge's writes land in it and it still covers every change since the
 * last good backup; the new one is dropped afterwards. */
static gboolean bitmaps_reenable(SpVm *vm, SpJson *session, GError **error)
{
    const SpJson *disks = sp_json_object_get(session, "disks");
    const char *prev = sp_json_object_get_string(session, "previous-bitmap");
    g_autoptr(SpQmp) qmp = NULL;
    if (prev == NULL)
        return TRUE;
    if ((qmp = sp_qmp_connect(vm->qmp_socket, SP_QMP_CONNECT_TIMEOUT_MS, error)) == NULL)
        return FALSE;
    for (size_t i = 0; i < sp_json_array_len(disks); i++) {
        g_autoptr(SpJson) args = sp_json_new_object();
        g_autoptr(SpJson) ret = NULL;
        const char *node = sp_json_object_get_string(sp_json_array_get(disks, i), "node");
        sp_json_object_set_string(args, "node", node);
        sp_json_object_set_string(args, "name", prev);
        ret = qmp_run(qmp, "block-dirty-bitmap-enable", g_steal_pointer(&args), error);
        if (ret == NULL) {
            g_prefix_error(error, "node %s: re-enabling dirty bitmap %s: ", node, prev);
            return FALSE;
        }
    }
    return TRUE;
}

/* After the merge: the previous bitmap is spent. When the chain no longer ends in this session's
 * frozen nodes (kept as a checkpoint, or another checkpoint was made on top), the new bitmap
 * would miss writes: it goes too, and the next incremental is a full backup. */
static gboolean bitmaps_settle(SpVm *vm, SpJson *session, gboolean chain_ok, gboolean aborted,
                               GError **error)
{
    const SpJson *disks = sp_json_object_get(session, "disks");
    const char *prev = sp_json_object_get_string(session, "previous-bitmap");
    const char *bitmap = sp_json_object_get_string(session, "bitmap");
    g_autoptr(SpQmp) qmp = NULL;
    if (prev == NULL && bitmap == NULL)
        return TRUE; /* a session without bitmaps (libvirt driver) */
    if ((qmp = sp_qmp_connect(vm->qmp_socket, SP_QMP_CONNECT_TIMEOUT_MS, error)) == NULL)
        return FALSE;
    for (size_t i = 0; i < sp_json_array_len(disks); i++) {
        const char *node = sp_json_object_get_string(sp_json_array_get(disks, i), "node");
        if ((prev != NULL && (!aborted || !chain_ok) && !bitmap_remove(qmp, node, prev, error)) ||
            ((aborted || !chain_ok) && !bitmap_remove(qmp, node, bitmap, error))) {
            g_prefix_error(error, "node %s: removing a dirty bitmap: ", node);
            return FALSE;
        }
    }
    return TRUE;
}

static gboolean end_qemu(SpStore *store, SpVm *vm, SpJson *session, gboolean keep,
                         gboolean aborted, const Report *r, GError **error)
{
    const SpJson *cpj = sp_json_object_get(session, "checkpoint");
    int64_t cp_id = sp_json_object_get_int(cpj, "id", 0);
    gboolean resumed = g_strcmp0(sp_json_object_get_string(session, "state"), STATE_ENDING) == 0;
    gboolean chain_ok = resumed ? sp_json_object_get_bool(session, "chain-ok", false) : !keep;
    g_autoptr(SpQmp) qmp = NULL;
    g_autoptr(SpVm) fresh = NULL;

    sp_backup_say(r, "ending the backup session of VM '%s': removing the NBD exports", vm->name);
    if ((qmp = exporter_connect(store, vm, error)) == NULL ||
        !exports_remove(qmp, session, error))
        return FALSE;
    g_clear_pointer(&qmp, sp_qmp_free); /* the merge below connects on its own */
    /* A checkpoint made during the session sits on top of ours: merging ours is still right,
     * but the new bitmap on the frozen nodes then misses that overlay's writes. */
    if ((fresh = sp_store_vm_get(store, vm->name, error)) == NULL)
        return FALSE;
    if (!resumed) {
        chain_ok = chain_ok && fresh->current == cp_id;
        sp_json_object_set_bool(session, "chain-ok", chain_ok);
        sp_json_object_set_bool(session, "kept", keep);
        sp_json_object_set_bool(session, "aborted", aborted);
    }
    keep = sp_json_object_get_bool(session, "kept", keep);
    aborted = sp_json_object_get_bool(session, "aborted", aborted);
    if (!sp_backup_session_save(store, vm, session, STATE_ENDING, error))
        return FALSE;
    sp_test_crash_point("backup-ending");
    if (cp_id != 0 && aborted && chain_ok && !bitmaps_reenable(vm, session, error))
        return FALSE;
    if (cp_id != 0 && !keep) {
        g_autofree char *ref = g_strdup_printf("#%" G_GINT64_FORMAT, cp_id);
        g_autoptr(SpCheckpoint) cp = sp_op_find_checkpoint(store, fresh, ref, NULL);
        SpOpReport report = {.progress = r->progress, .user_data = r->user_data};
        if (cp != NULL) {
            sp_backup_say(r, "merging the session's checkpoint '%s' back", cp->name);
            if (!sp_op_delete(store, fresh, ref, FALSE, &report, error))
                return FALSE;
        }
    }
    if (cp_id == 0) {
        /* No checkpoint was made: the bitmaps were not touched, the previous one still holds. */
        const char *prev = sp_json_object_get_string(session, "previous-bitmap");
        if (prev != NULL)
            sp_json_object_set_string(session, "bitmap", prev);
        else
            sp_json_free(sp_json_object_take(session, "bitmap"));
        return sp_backup_session_save(store, vm, session, STATE_CLOSED, error);
    }
    if (!bitmaps_settle(vm, session, chain_ok, aborted, error))
        return FALSE;
    if (!chain_ok || (aborted && sp_json_object_get(session, "previous-bitmap") == NULL))
        sp_json_free(sp_json_object_take(session, "bitmap"));
    else if (aborted)
        sp_json_object_set_string(session, "bitmap",
                                  sp_json_object_get_string(session, "previous-bitmap"));
    return sp_backup_session_save(store, vm, session, STATE_CLOSED, error);
}

/* A session interrupted in "beginning": the create path's own recovery has recorded or rolled
 * back its checkpoint by now; find it by name. */
static gboolean adopt_checkpoint(SpStore *store, SpVm *vm, SpJson *session, GError **error)
{
    SpJson *cpj = (SpJson *)sp_json_object_get(session, "checkpoint");
    g_autoptr(GPtrArray) cps = NULL;
    if (sp_json_object_get_int(cpj, "id", 0) != 0)
        return TRUE;
    if ((cps = sp_store_checkpoint_list(store, vm->id, error)) == NULL)
        return FALSE;
    for (guint i = 0; i < cps->len; i++) {
        SpCheckpoint *cp = g_ptr_array_index(cps, i);
        if (g_strcmp0(cp->name, sp_json_object_get_string(cpj, "name")) == 0)
            sp_json_object_set_int(cpj, "id", cp->id);
    }
    return TRUE;
}

static gboolean end_session(SpStore *store, SpVm *vm, SpJson *session, gboolean keep,
                            gboolean aborted, const Report *r, GError **error)
{
    return backup_ops(vm)->end(store, vm, session, keep, aborted, r, error);
}

static gboolean alive_qemu(SpStore *store, SpVm *vm, SpJson *session, gboolean *ret_alive,
                           GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autoptr(SpQmp) qmp = NULL;
    g_autoptr(SpJson) list = NULL;
    const SpJson *disk0 = sp_json_array_get(sp_json_object_get(session, "disks"), 0);
    *ret_alive = FALSE;
    if ((qmp = exporter_connect(store, vm, &local)) == NULL) {
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    if ((list = qmp_run(qmp, "query-block-exports", NULL, error)) == NULL)
        return FALSE;
    for (size_t i = 0; i < sp_json_array_len(list); i++)
        if (g_strcmp0(sp_json_object_get_string(sp_json_array_get(list, i), "id"),
                      sp_json_object_get_string(disk0, "export-id")) == 0)
            *ret_alive = TRUE;
    return TRUE;
}

gboolean sp_backup_recover(SpStore *store, SpVm *vm, SpProgressFn progress, gpointer user_data,
                           GError **error)
{
    Report r = {progress, user_data};
    g_autoptr(SpJson) session = sp_backup_status(store, vm, error);
    const char *state;
    gboolean alive = FALSE;
    if (session == NULL)
        return error == NULL || *error == NULL;
    state = sp_json_object_get_string(session, "state");
    if (g_strcmp0(state, STATE_CLOSED) == 0)
        return TRUE;
    if (g_strcmp0(state, STATE_OPEN) == 0) {
        if (!backup_ops(vm)->alive(store, vm, session, &alive, error))
            return FALSE;
        if (alive)
            return TRUE;
        sp_backup_say(&r, "recovery: the backup session's NBD exports are gone (QEMU restarted?): ending "
                "it");
    } else {
        sp_backup_say(&r, "recovery: a backup session was interrupted while %s: ending it", state);
    }
    if (!sp_coordinator_recover(store, vm, NULL, progress, user_data, error) ||
        !adopt_checkpoint(store, vm, session, error) ||
        !end_session(store, vm, session, FALSE, TRUE, &r, error)) {
        g_prefix_error(error, "VM '%s': ending an interrupted backup session: ", vm->name);
        return FALSE;
    }
    return TRUE;
}

gboolean sp_backup_end(SpStore *store, SpVm *vm, gboolean keep, gboolean aborted,
                       SpProgressFn progress, gpointer user_data, GError **error)
{
    Report r = {progress, user_data};
    g_autoptr(SpJson) session = sp_backup_status(store, vm, error);
    const char *state;
    if (session == NULL) {
        if (error == NULL || *error == NULL)
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                        "VM '%s' has no backup session open", vm->name);
        return FALSE;
    }
    state = sp_json_object_get_string(session, "state");
    if (g_strcmp0(state, STATE_CLOSED) == 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                    "VM '%s' has no backup session open", vm->name);
        return FALSE;
    }
    if (!sp_coordinator_recover(store, vm, NULL, progress, user_data, error))
        return FALSE;
    if (g_strcmp0(state, STATE_BEGINNING) == 0 && !adopt_checkpoint(store, vm, session, error))
        return FALSE;
    return end_session(store, vm, session, keep, aborted, &r, error);
}

const SpBackupOps sp_backup_qemu_ops = {
    .begin = begin_qemu,
    .end = end_qemu,
    .alive = alive_qemu,
};
