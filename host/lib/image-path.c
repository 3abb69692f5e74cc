/* Safe image directories, exclusive creation and image identity (image-path.h). The directory
 * walk goes component by component with openat(O_NOFOLLOW) from "/", so what is checked is what
 * the next component is looked up in, never a path re-resolved later. */
#include "image-path.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static gboolean unsafe(const char *dir, GError **error, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static gboolean unsafe(const char *dir, GError **error, const char *fmt, ...)
{
    g_autofree char *why = NULL;
    va_list ap;
    va_start(ap, fmt);
    why = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                "image directory %s is not safe: %s", dir, why);
    return FALSE;
}

/* One component: what=its path so far; last: the directory images go into. */
static gboolean component_ok(const char *dir, const char *what, const struct stat *st,
                             gboolean last, uid_t self, GError **error)
{
    gboolean others_write = (st->st_mode & (S_IWGRP | S_IWOTH)) != 0;
    if (S_ISLNK(st->st_mode)) {
        char *real = realpath(dir, NULL);
        gboolean r = unsafe(dir, error,
                            "%s is a symbolic link, which whoever can change it can re-point; "
                            "give the directory's real path%s%s",
                            what, real != NULL ? ", " : "", real != NULL ? real : "");
        free(real);
        return r;
    }
    if (!S_ISDIR(st->st_mode)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_DIRECTORY,
                    "image directory %s: %s is not a directory", dir, what);
        return FALSE;
    }
    if (st->st_uid != 0 && st->st_uid != self)
        return unsafe(dir, error,
                      "%s is owned by uid %u, who could replace the images in it; only root "
                      "or uid %u may own it (chown root %s)",
                      what, (unsigned)st->st_uid, (unsigned)self, what);
    /* Sticky keeps others from renaming root's entries, enough above the image directory;
     * in it they could still take the name of the next overlay first. */
    if (others_write && (last || !(st->st_mode & S_ISVTX)))
        return unsafe(dir, error,
                      "%s is writable by %s (mode %04o), who could replace an image in it "
                      "before qemu-img opens it (chmod go-w %s)",
                      what, (st->st_mode & S_IWOTH) ? "everyone" : "its group",
                      (unsigned)(st->st_mode & 07777), what);
    return TRUE;
}

gboolean sp_image_dir_check_as(const char *dir, uid_t self, GError **error)
{
    g_autofree char *canon = NULL;
    g_auto(GStrv) parts = NULL;
    g_autoptr(GString) so_far = g_string_new("");
    struct stat st;
    __attribute__((cleanup(close_fd))) int cur = -1;

    if (dir == NULL || !g_path_is_absolute(dir)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "image directory '%s' is not an absolute path", dir != NULL ? dir : "");
        return FALSE;
    }
    /* Lexical: ".." cannot hide a symlink, as every component is refused if it is one. */
    canon = g_canonicalize_filename(dir, NULL);
    cur = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (cur < 0 || fstat(cur, &st) != 0) {
        int errsv = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errsv), "opening /: %s",
                    g_strerror(errsv));
        return FALSE;
    }
    parts = g_strsplit(canon + 1, "/", -1);
    if (!component_ok(canon, "/", &st, parts[0] == NULL || parts[0][0] == '\0', self, error))
        return FALSE;
    for (guint i = 0; parts[i] != NULL && parts[i][0] != '\0'; i++) {
        gboolean last = parts[i + 1] == NULL;
        struct stat opened;
        int next;
        g_string_append_printf(so_far, "/%s", parts[i]);
        if (fstatat(cur, parts[i], &st, AT_SYMLINK_NOFOLLOW) != 0) {
            int errsv = errno;
            g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errsv),
                        "image directory %s: %s: %s", canon, so_far->str, g_strerror(errsv));
            return FALSE;
        }
        if (!component_ok(canon, so_far->str, &st, last, self, error))
            return FALSE;
        next = openat(cur, parts[i], O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        /* Checked by lstat, then opened: it must still be the directory that was checked. */
        if (next < 0 || fstat(next, &opened) != 0 || opened.st_dev != st.st_dev ||
            opened.st_ino != st.st_ino) {
            if (next >= 0)
                close(next);
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                        "image directory %s: %s changed while it was checked", canon,
                        so_far->str);
            return FALSE;
        }
        close(cur);
        cur = next;
    }
    return TRUE;
}

gboolean sp_image_dir_check(const char *dir, GError **error)
{
    return sp_image_dir_check_as(dir, geteuid(), error);
}

gboolean sp_image_dir_check_for(const char *image, GError **error)
{
    g_autofree char *dir = g_path_get_dirname(image);
    return sp_image_dir_check(dir, error);
}

gboolean sp_image_create_exclusive(const char *path, uint64_t *ret_dev, uint64_t *ret_ino,
                                   GError **error)
{
    struct stat st;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        int errsv = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errsv), "creating %s: %s%s", path,
                    g_strerror(errsv),
                    errsv == EEXIST ? " (stillpoint never reuses a name it did not create; "
                                      "move that file away)"
                                    : "");
        return FALSE;
    }
    if (fstat(fd, &st) != 0) {
        int errsv = errno;
        close(fd);
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errsv), "creating %s: %s", path,
                    g_strerror(errsv));
        return FALSE;
    }
    close(fd);
    if (ret_dev != NULL)
        *ret_dev = (uint64_t)st.st_dev;
    if (ret_ino != NULL)
        *ret_ino = (uint64_t)st.st_ino;
    return TRUE;
}

static const char *kind_of(mode_t mode)
{
    if (S_ISLNK(mode))
        return "a symbolic link";
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISFIFO(mode))
        return "a FIFO";
    if (S_ISSOCK(mode))
        return "a socket";
    if (S_ISCHR(mode))
        return "a character device";
    return "not a regular file";
}

gboolean sp_image_identify(const char *path, uint64_t *ret_dev, uint64_t *ret_ino,
                           GError **error)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        int errsv = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errsv), "image %s: %s", path,
                    g_strerror(errsv));
        return FALSE;
    }
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_REGULAR_FILE, "image %s is %s", path,
                    kind_of(st.st_mode));
        return FALSE;
    }
    if (ret_dev != NULL)
        *ret_dev = (uint64_t)st.st_dev;
    if (ret_ino != NULL)
        *ret_ino = (uint64_t)st.st_ino;
    return TRUE;
}

gboolean sp_image_same(const char *path, uint64_t dev, uint64_t ino, GError **error)
{
    g_autoptr(GError) local = NULL;
    uint64_t d = 0, i = 0;
    if (!sp_image_identify(path, &d, &i, &local)) {
        if (g_error_matches(local, G_IO_ERROR, G_IO_ERROR_NOT_REGULAR_FILE)) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_WRONG_ETAG,
                        "image path changed outside stillpoint: %s; refusing to follow it "
                        "(put the file stillpoint recorded back at that path)",
                        local->message);
            return FALSE;
        }
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    if (d != dev || i != ino) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_WRONG_ETAG,
                    "image path changed outside stillpoint: %s is no longer the file stillpoint "
                    "recorded (device %" G_GUINT64_FORMAT " inode %" G_GUINT64_FORMAT
                    ", now device %" G_GUINT64_FORMAT " inode %" G_GUINT64_FORMAT
                    "); refusing (put the recorded file back at that path)",
                    path, dev, ino, d, i);
        return FALSE;
    }
    return TRUE;
}
