/* Where stillpoint may open and create image files, and whether an image path still names the
 * file stillpoint recorded (issue 15, item 3). Whoever can write a directory can swap a file in it
 * between stillpoint's check and qemu-img's open, so root's qemu-img would then read or write
 * through a file of their choosing: images live only in directories nobody else can change. */
#pragma once
#include <glib.h>
#include <stdint.h>
#include <sys/types.h>

/* Refuses dir (G_IO_ERROR_PERMISSION_DENIED, with the chmod/chown that fixes it) unless:
 *  - it is an absolute path and no component of it is a symbolic link (give the real path);
 *  - it and every directory above it is owned by root or by self (the user stillpoint runs as);
 *  - it is writable by its owner only (not group- or world-writable; sticky does not help: a
 *    user could still create the name stillpoint is about to create);
 *  - every directory above it is not group- or world-writable unless sticky (/tmp): in a sticky
 *    directory nobody renames or removes an entry of root's.
 * G_IO_ERROR_NOT_FOUND / NOT_DIRECTORY when it does not exist or is not a directory. */
gboolean sp_image_dir_check_as(const char *dir, uid_t self, GError **error);
/* The same for the user stillpoint runs as (geteuid()). */
gboolean sp_image_dir_check(const char *dir, GError **error);
/* The same for the directory that holds image. */
gboolean sp_image_dir_check_for(const char *image, GError **error);

/* Creates path as a new empty file, mode 0600: O_CREAT|O_EXCL|O_NOFOLLOW, so an existing file
 * or a symlink planted under that name is never opened, truncated or followed
 * (G_IO_ERROR_EXISTS). qemu-img create then writes into the file stillpoint made; its own open
 * truncates whatever is at the path, which is why the name must be ours first. Returns the new
 * file's identity in ret_dev/ret_ino (may be NULL). */
gboolean sp_image_create_exclusive(const char *path, uint64_t *ret_dev, uint64_t *ret_ino,
                                   GError **error);

/* The identity of the file path names without following a symlink: a regular file or a block
 * device (G_IO_ERROR_NOT_REGULAR_FILE for a symlink or anything else, naming what it is). */
gboolean sp_image_identify(const char *path, uint64_t *ret_dev, uint64_t *ret_ino,
                           GError **error);

/* Refuses, with "image path changed outside stillpoint", when path is no longer the file with
 * identity dev/ino (replaced, or now a symlink): G_IO_ERROR_WRONG_ETAG, GIO's "changed
 * externally". G_IO_ERROR_NOT_FOUND when path is gone. */
gboolean sp_image_same(const char *path, uint64_t dev, uint64_t ino, GError **error);
