/* freezer: FIFREEZE what a plan names, record each freeze by dev_t, thaw exactly those in
 * reverse. Pure C (returns -errno); the system calls go through SpFsOps so tests can fake them. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include "planner.h"

typedef struct {
    int (*open_dir)(const char *path, void *userdata);       /* fd or -errno */
    /* The superblock an open directory is on, as mountinfo names it (major:minor). Not always
     * fstat's st_dev: btrfs subvolumes have their own st_dev, mountinfo the superblock's. */
    int (*sb_dev)(int fd, dev_t *ret, void *userdata);
    int (*syncfs)(int fd, void *userdata);                   /* 0 or -errno */
    int (*freeze)(int fd, void *userdata);                   /* FIFREEZE: 0 or -errno */
    int (*thaw)(int fd, void *userdata);                     /* FITHAW: 0 or -errno */
    void (*close)(int fd, void *userdata);
} SpFsOps;

/* The real system calls. */
extern const SpFsOps sp_fs_ops_linux;

/* The ID of the mount an open fd is on (mountinfo's first field), from /proc/self/fdinfo. */
int sp_fd_mount_id(int fd, int *ret);
/* The superblock device (mountinfo's major:minor) of the mount an open fd is on. */
int sp_fd_sb_dev(int fd, dev_t *ret);

typedef struct {
    dev_t dev;
    char *mountpoint;
    int fd;
} SpFrozenFs;

typedef struct {
    const SpFsOps *ops;
    void *userdata;
    int *fds;            /* prepared: one per plan target, in plan order */
    size_t n_fds;
    SpFrozenFs *frozen;  /* in freeze order */
    size_t n_frozen;
} SpFreezer;

/* Which filesystem and system call failed, for the error the user sees. */
typedef struct {
    const char *op;         /* "open", "syncfs", "freeze" (static) */
    char mountpoint[4096];
    int err;                /* positive errno */
} SpFreezerFailure;

typedef struct {
    size_t n_thawed;        /* FITHAW succeeded */
    size_t n_not_frozen;    /* FITHAW said EINVAL: someone thawed it behind our back */
    size_t n_failed;        /* any other error (first one in failure) */
    SpFreezerFailure failure;
} SpThawReport;

void sp_freezer_init(SpFreezer *f, const SpFsOps *ops, void *userdata);
/* Thaws anything still frozen (never leaves a filesystem frozen) and frees. */
void sp_freezer_clear(SpFreezer *f);
bool sp_freezer_is_frozen(const SpFreezer *f);

/* Step 1, outside the frozen window: open every target's mountpoint (checking it is still the
 * planned filesystem: -ESTALE if not) and syncfs it, so FIFREEZE has little left to write. */
int sp_freezer_prepare(SpFreezer *f, const SpFreezePlan *plan, SpFreezerFailure *ret_fail);
/* Step 2: FIFREEZE the prepared targets wave by wave (a wave's filesystems concurrently).
 * EOPNOTSUPP and EBUSY move the target to the plan's skips (not-supported, frozen-by-other).
 * Any other error thaws what this call froze, in reverse, and returns it. Returns the number
 * frozen. */
int sp_freezer_freeze(SpFreezer *f, SpFreezePlan *plan, SpFreezerFailure *ret_fail);
/* FITHAW exactly what was frozen, in reverse order, and close. Returns 0, or the first error
 * other than EINVAL (the report says what happened to each). */
int sp_freezer_thaw_all(SpFreezer *f, SpThawReport *ret);

/* Crash recovery: thaw a filesystem a previous agent froze, if it is still mounted at
 * mountpoint with this dev. Returns 1 thawed, 0 not frozen / not there any more, or -errno. */
int sp_freezer_thaw_recorded(const SpFsOps *ops, void *userdata, const char *mountpoint, dev_t dev);
