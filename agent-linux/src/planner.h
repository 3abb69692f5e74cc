/* planner: decide which filesystems to freeze, once per superblock and in a safe order, and
 * why every other mount is skipped (pure C, returns -errno). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include "mountinfo.h"

typedef enum {
    SP_SKIP_PSEUDO,          /* proc, sysfs, cgroup, ...: no data of their own */
    SP_SKIP_MEMORY,          /* tmpfs, ramfs: nothing on disk to make consistent */
    SP_SKIP_NETWORK,         /* nfs, cifs, 9p, virtiofs: the guest cannot quiesce the server */
    SP_SKIP_FUSE,            /* FUSE: a user process serves it and might live on a frozen fs */
    SP_SKIP_STACKED,         /* overlay and the like: FIFREEZE is not supported, the lower fs is */
    SP_SKIP_NO_BLOCK_DEVICE, /* no block device behind it */
    SP_SKIP_READ_ONLY,       /* the superblock is mounted read-only */
    SP_SKIP_EXCLUDED,        /* excluded by mountpoint or type in the configuration */
    SP_SKIP_SAME_FILESYSTEM, /* another mount of a filesystem that is frozen once through `primary` */
    SP_SKIP_NOT_SUPPORTED,   /* FIFREEZE answered EOPNOTSUPP */
    SP_SKIP_FROZEN_BY_OTHER, /* FIFREEZE answered EBUSY: someone else froze it; never thawed by us */
} SpSkipReason;

/* Stable wire names ("read-only", "frozen-by-other"), documented in PROTOCOL.md. */
const char *sp_skip_reason_str(SpSkipReason reason);

typedef struct {
    dev_t dev;
    int mount_id;     /* mountinfo's mount ID: a new mount (e.g. after mkfs) gets a new one */
    char *mountpoint;
    char *fstype;
    char *source;
    unsigned wave;    /* filesystems of one wave are independent and may be frozen together;
                       * wave 0 first (they live on files of later waves' filesystems) */
} SpPlanTarget;

typedef struct {
    char *mountpoint;
    char *fstype;
    SpSkipReason reason;
    char *primary;    /* SP_SKIP_SAME_FILESYSTEM: the mountpoint it is frozen through */
} SpPlanSkip;

typedef struct {
    SpPlanTarget *targets;  /* in freeze order; thaw goes backwards */
    size_t n_targets;
    SpPlanSkip *skips;
    size_t n_skips;
} SpFreezePlan;

typedef struct {
    const char *const *exclude_mountpoints; /* NULL-terminated; exact paths or fnmatch patterns */
    const char *const *exclude_types;       /* NULL-terminated */
    const char *const *mountpoints;         /* NULL-terminated selection; NULL = everything */
    /* Selection by disk: keep a mount when this returns true for it (NULL = all). */
    bool (*select_mount)(const SpMount *mount, void *userdata);
    void *select_userdata;
    /* Where a filesystem's device is a loop (possibly under dm/md), the devices of the
     * filesystems holding its backing files; it must be frozen before them. NULL = none. */
    size_t (*backing_devs)(dev_t dev, dev_t *ret, size_t max, void *userdata);
    void *backing_userdata;
} SpPlanOptions;

/* Plan from a mount table. A selected mountpoint that is not mounted fails with -ENOENT and
 * *ret_missing (if not NULL) points at it. */
int sp_plan_build(const SpMountTable *table, const SpPlanOptions *opts, SpFreezePlan **ret,
                  const char **ret_missing);
void sp_plan_free(SpFreezePlan *plan); /* accepts NULL */
/* Move a planned target to the skip list (after FIFREEZE said EOPNOTSUPP or EBUSY). */
int sp_plan_skip_target(SpFreezePlan *plan, size_t index, SpSkipReason reason);
/* Classify one mount without context: returns true and sets *ret when it is never frozen. */
bool sp_plan_classify(const SpMount *mount, SpSkipReason *ret);
