/* Export: a standalone, flattened copy of every disk at a checkpoint, plus manifest.json. The
 * checkpoint's images are read-only backing files of the running VM (or of nothing), so
 * qemu-img convert reads a chain that does not change under it. Copies are written under a
 * temporary name and renamed at the end; the journal lists them so a killed export is cleaned
 * up (rolled back) by the next run. The journal also records the directory's identity (device,
 * inode, owner): recovery removes files only through a directory that proves to be the export's
 * own, never through a path that may name another one by now (stillpointd exports through
 * /proc/PID/fd/N, which a reused pid makes name anything). */
#include "op-util.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stillpoint/channel.h"
#include "stillpoint/driver.h"
#include "test-hooks.h"

static char *safe_name(const char *s)
{
    char *c = g_strdup(s);
    g_strcanon(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-_", '_');
    return c;
}

static SpJson *manifest_new(const SpVm *vm, const SpCheckpoint *cp)
{
    SpJson *m = sp_json_new_object();
    g_autoptr(GDateTime) t = g_date_time_new_from_unix_utc(cp->created_us / G_USEC_PER_SEC);
    g_autofree char *iso = t != NULL ? g_date_time_format_iso8601(t) : g_strdup("");
    sp_json_object_set_int(m, "stillpoint-export", 1);
    sp_json_object_set_string(m, "vm", vm->name);
    sp_json_object_set_int(m, "checkpoint-id", cp->id);
    sp_json_object_set_string(m, "checkpoint", cp->name);
    sp_json_object_set_string(m, "type", cp->type);
    sp_json_object_set_string(m, "consistency", cp->consistency);
    sp_json_object_set_string(m, "created", iso);
    return m;
}

/* Removes the export's files (names in dir_fd), rolling it back. */
static gboolean remove_names(int dir_fd, const char *dir, const SpJson *names, GError **error)
{
    for (size_t i = 0; i < sp_json_array_len(names); i++) {
        const char *name = sp_json_get_string(sp_json_array_get(names, i));
        if (name == NULL || strchr(name, '/') != NULL || g_str_equal(name, "..") ||
            g_str_equal(name, "."))
            continue;
        if (unlinkat(dir_fd, name, 0) != 0 && errno != ENOENT) {
            int errsv = errno;
            g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errsv), "removing %s/%s: %s",
                        dir, name, g_strerror(errsv));
            return FALSE;
        }
    }
    return TRUE;
}

static gboolean same_dir(const struct stat *st, const SpJson *plan)
{
    return S_ISDIR(st->st_mode) &&
           (gint64)st->st_dev == sp_json_object_get_int(plan, "dir-dev", -1) &&
           (gint64)st->st_ino == sp_json_object_get_int(plan, "dir-ino", -1) &&
           (gint64)st->st_uid == sp_json_object_get_int(plan, "dir-uid", -1);
}

/* The export's directory, by the path given or the one it had when the export began, only if
 * it is still the same directory (device, inode, owner); -1 if neither proves to be. */
static int open_own_dir(const SpJson *plan, const char **ret_path)
{
    const char *paths[] = {sp_json_object_get_string(plan, "dir"),
                           sp_json_object_get_string(plan, "dir-real")};

    for (guint i = 0; i < G_N_ELEMENTS(paths); i++) {
        struct stat st;
        int fd;
        if (paths[i] == NULL || (fd = open(paths[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
            continue;
        if (fstat(fd, &st) == 0 && same_dir(&st, plan)) {
            *ret_path = paths[i];
            return fd;
        }
        close(fd);
    }
    return -1;
}

gboolean sp_op_recover_export(SpStore *store, SpOp *op, GError **error)
{
    g_autoptr(SpJson) plan = NULL;
    const char *dir = NULL;
    int fd;
    gboolean ok;

    if (sp_json_parse(op->payload, strlen(op->payload), NULL, &plan, NULL) != SP_OK) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "journal entry is not a valid export plan");
        return FALSE;
    }
    if (sp_json_object_get(plan, "dir-ino") == NULL) {
        /* An entry from before directories were recorded: its paths cannot be re-verified, so
         * nothing is removed (the partial files stay, named in the log). */
        g_message("export journal %" G_GINT64_FORMAT ": no directory identity recorded; its "
                  "files are left in place", op->id);
        return sp_store_op_finish(store, op->id, SP_OP_ROLLED_BACK, error);
    }
    if ((fd = open_own_dir(plan, &dir)) < 0) {
        g_message("export journal %" G_GINT64_FORMAT ": its directory (%s) is gone or is another "
                  "one now; nothing removed", op->id, sp_json_object_get_string(plan, "dir-real"));
        return sp_store_op_finish(store, op->id, SP_OP_ROLLED_BACK, error);
    }
    ok = remove_names(fd, dir, sp_json_object_get(plan, "names"), error);
    close(fd);
    return ok && sp_store_op_finish(store, op->id, SP_OP_ROLLED_BACK, error);
}

typedef struct {
    GPtrArray *partial; /* temporary files */
    GPtrArray *final;   /* their final names */
} ExportFiles;

static gboolean plan_files(const SpVm *vm, const SpCheckpoint *cp, const char *dir,
                           const char *format, ExportFiles *f, GError **error)
{
    for (guint i = 0; i < cp->disks->len; i++) {
        SpCheckpointDisk *d = g_ptr_array_index(cp->disks, i);
        g_autofree char *disk = safe_name(d->disk);
        g_autofree char *base = g_strdup_printf("%s-%s.%s", vm->name, disk, format);
        g_autofree char *tmp = g_strdup_printf(".%s.partial", base);
        char *path = g_build_filename(dir, base, NULL);
        g_ptr_array_add(f->final, path);
        g_ptr_array_add(f->partial, g_build_filename(dir, tmp, NULL));
        if (g_file_test(path, G_FILE_TEST_EXISTS)) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS,
                        "export of checkpoint '%s': %s already exists; choose an empty "
                        "directory",
                        cp->name, path);
            return FALSE;
        }
    }
    return TRUE;
}

/* The journal entry: the files (for people), their names in the directory and the directory's
 * identity (for recovery). */
static char *payload_for(const ExportFiles *f, const char *manifest, const char *dir, int dir_fd)
{
    g_autoptr(SpJson) o = sp_json_new_object();
    SpJson *arr = sp_json_new_array(), *names = sp_json_new_array();
    g_autofree char *fd_link = g_strdup_printf("/proc/self/fd/%d", dir_fd);
    g_autofree char *real = g_file_read_link(fd_link, NULL);
    struct stat st;

    for (guint i = 0; i < f->partial->len; i++)
        sp_json_array_append(arr, sp_json_new_string(g_ptr_array_index(f->partial, i)));
    for (guint i = 0; i < f->final->len; i++)
        sp_json_array_append(arr, sp_json_new_string(g_ptr_array_index(f->final, i)));
    sp_json_array_append(arr, sp_json_new_string(manifest));
    for (size_t i = 0; i < sp_json_array_len(arr); i++) {
        g_autofree char *base = g_path_get_basename(sp_json_get_string(sp_json_array_get(arr, i)));
        sp_json_array_append(names, sp_json_new_string(base));
    }
    sp_json_object_set(o, "partial", arr);
    sp_json_object_set(o, "names", names);
    sp_json_object_set_string(o, "dir", dir);
    if (real != NULL)
        sp_json_object_set_string(o, "dir-real", real);
    if (fstat(dir_fd, &st) == 0) {
        sp_json_object_set_int(o, "dir-dev", (int64_t)st.st_dev);
        sp_json_object_set_int(o, "dir-ino", (int64_t)st.st_ino);
        sp_json_object_set_int(o, "dir-uid", (int64_t)st.st_uid);
    }
    return sp_json_serialize(o, NULL);
}

static gboolean copy_disks(SpStore *store, const SpVm *vm, const SpCheckpoint *cp,
                           const char *format, const ExportFiles *f, const SpOpReport *report,
                           SpJson *disks, GError **error)
{
    for (guint i = 0; i < cp->disks->len; i++) {
        SpCheckpointDisk *d = g_ptr_array_index(cp->disks, i);
        const char *tmp = g_ptr_array_index(f->partial, i);
        g_autofree char *fmt = sp_op_format_of(store, vm, d->image, error);
        SpImg src = {.path = d->image, .format = fmt};
        g_auto(GStrv) argv = NULL;
        SpJson *o = sp_json_new_object();
        sp_json_array_append(disks, o);
        /* The source is opened with its recorded format, its chain checked layer by layer. */
        if (fmt == NULL || !sp_op_chain_check(store, vm, &src, error) ||
            (argv = sp_img_argv_convert(&src, format, tmp, error)) == NULL) {
            g_prefix_error(error, "disk %s: ", d->disk);
            return FALSE;
        }
        sp_op_say(report, "disk %s: copying %s and its backing chain to %s", d->disk, d->image,
                  (const char *)g_ptr_array_index(f->final, i));
        if (!sp_op_qemu_img(report, d->disk, (const char *const *)argv, error))
            return FALSE;
        sp_test_crash_point("exporting");
        sp_json_object_set_string(o, "disk", d->disk);
        {
            g_autofree char *file = g_path_get_basename(g_ptr_array_index(f->final, i));
            sp_json_object_set_string(o, "file", file);
        }
        sp_json_object_set_string(o, "format", format);
    }
    return TRUE;
}

static gboolean finish_files(const ExportFiles *f, GError **error)
{
    for (guint i = 0; i < f->partial->len; i++) {
        const char *from = g_ptr_array_index(f->partial, i);
        const char *to = g_ptr_array_index(f->final, i);
        if (g_rename(from, to) != 0) {
            int errsv = errno;
            g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errsv), "renaming %s to %s: %s",
                        from, to, g_strerror(errsv));
            return FALSE;
        }
    }
    return TRUE;
}

gboolean sp_op_export(SpStore *store, SpVm *vm, const char *ref, const char *dir,
                      const char *format, const SpOpReport *report, char **ret_manifest,
                      GError **error)
{
    g_autoptr(SpCheckpoint) cp = NULL;
    g_autoptr(GPtrArray) partial = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) final = g_ptr_array_new_with_free_func(g_free);
    ExportFiles f = {.partial = partial, .final = final};
    g_autoptr(SpJson) manifest = NULL;
    g_autofree char *payload = NULL, *text = NULL, *mpath = NULL;
    g_autoptr(GError) cleanup = NULL;
    SpJson *disks = sp_json_new_array();
    int64_t op_id = 0;
    int dir_fd = -1;
    gboolean ok = FALSE;

    if (format == NULL)
        format = "qcow2";
    if (g_strcmp0(format, "qcow2") != 0 && g_strcmp0(format, "raw") != 0) {
        sp_json_free(disks);
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "export: --format must be qcow2 or raw, not '%s'", format);
        return FALSE;
    }
    if (!sp_op_images_ours(vm, "copy", error) ||
        (cp = sp_op_find_checkpoint(store, vm, ref, error)) == NULL) {
        sp_json_free(disks);
        return FALSE;
    }
    manifest = manifest_new(vm, cp);
    sp_json_object_set(manifest, "disks", disks);
    mpath = g_build_filename(dir, "manifest.json", NULL);
    if (g_mkdir_with_parents(dir, 0755) != 0) {
        int errsv = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errsv),
                    "export: cannot create directory %s: %s", dir, g_strerror(errsv));
        return FALSE;
    }
    if (!plan_files(vm, cp, dir, format, &f, error))
        return FALSE;
    if (g_file_test(mpath, G_FILE_TEST_EXISTS)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS,
                    "export: %s already exists; choose an empty directory", mpath);
        return FALSE;
    }
    if ((dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        int errsv = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errsv),
                    "export: cannot open directory %s: %s", dir, g_strerror(errsv));
        return FALSE;
    }
    payload = payload_for(&f, mpath, dir, dir_fd);
    if (!sp_store_op_begin(store, vm->id, "export", payload, &op_id, error))
        goto done;
    sp_test_crash_point("planned");
    if (!copy_disks(store, vm, cp, format, &f, report, disks, error) || !finish_files(&f, error))
        goto fail;
    text = sp_json_serialize(manifest, NULL);
    if (!g_file_set_contents(mpath, text, -1, error))
        goto fail;
    if (!sp_store_op_finish(store, op_id, SP_OP_DONE, error))
        goto done;
    if (ret_manifest != NULL)
        *ret_manifest = g_steal_pointer(&mpath);
    ok = TRUE;
    goto done;
fail:
    {
        /* Through the directory opened at the start, whatever its path names now. */
        g_autoptr(SpJson) parsed = NULL;
        if (sp_json_parse(payload, strlen(payload), NULL, &parsed, NULL) == SP_OK &&
            remove_names(dir_fd, dir, sp_json_object_get(parsed, "names"), &cleanup))
            sp_store_op_finish(store, op_id, SP_OP_ROLLED_BACK, &cleanup);
        if (cleanup != NULL)
            g_prefix_error(error, "(cleanup failed too: %s) ", cleanup->message);
    }
done:
    close(dir_fd);
    return ok;
}
