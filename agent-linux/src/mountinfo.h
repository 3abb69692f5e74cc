/* mountinfo: parse /proc/self/mountinfo into a table of mounts (pure C, returns -errno). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct {
    int id;             /* mount ID */
    int parent_id;      /* parent mount ID */
    unsigned major;     /* st_dev of the superblock: one filesystem, however often mounted */
    unsigned minor;
    char *root;         /* path of the mount's root inside the filesystem (bind mounts) */
    char *mountpoint;   /* unescaped */
    char *mount_opts;   /* per-mount options: "rw,noatime" */
    char *fstype;       /* "ext4", "fuse.sshfs" */
    char *source;       /* "/dev/vda1", "tmpfs", unescaped */
    char *super_opts;   /* per-superblock options */
} SpMount;

typedef struct {
    SpMount *mounts;    /* in the kernel's order: parents before children */
    size_t n_mounts;
} SpMountTable;

/* Parse mountinfo text (need not be NUL-terminated). Lines that do not have the documented
 * shape make the whole parse fail with -EBADMSG: a half-understood mount table is not a safe
 * basis for freezing. On success *ret is set (free with sp_mount_table_free). */
int sp_mountinfo_parse(const char *text, size_t len, SpMountTable **ret);
/* The kernel escapes space, tab, newline and backslash in paths as \ooo (octal); so does the
 * agent's state file. s[0..len) unescaped, malloc'd; NULL without memory. */
char *sp_mountinfo_unescape(const char *s, size_t len);
/* Read and parse a mountinfo file (NULL = /proc/self/mountinfo). */
int sp_mountinfo_read(const char *path, SpMountTable **ret);
void sp_mount_table_free(SpMountTable *table); /* accepts NULL */

dev_t sp_mount_dev(const SpMount *mount);
/* True when the comma-separated option list opts contains exactly opt. */
bool sp_mount_has_opt(const char *opts, const char *opt);
/* The superblock is mounted read-only (per-mount "ro" on a bind of a rw filesystem is not). */
bool sp_mount_sb_readonly(const SpMount *mount);
/* The mount with this mountpoint (the last, i.e. topmost, one), or NULL. */
const SpMount *sp_mount_table_find(const SpMountTable *table, const char *mountpoint);
