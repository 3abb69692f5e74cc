/* planner: one target per superblock, ordered so that nothing is frozen before a filesystem
 * that depends on it, and every skipped mount carries its reason. */
#define _GNU_SOURCE
#include "planner.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

static const char *const skip_names[] = {
    [SP_SKIP_PSEUDO] = "pseudo",
    [SP_SKIP_MEMORY] = "memory",
    [SP_SKIP_NETWORK] = "network",
    [SP_SKIP_FUSE] = "fuse",
    [SP_SKIP_STACKED] = "stacked",
    [SP_SKIP_NO_BLOCK_DEVICE] = "no-block-device",
    [SP_SKIP_READ_ONLY] = "read-only",
    [SP_SKIP_EXCLUDED] = "excluded",
    [SP_SKIP_SAME_FILESYSTEM] = "same-filesystem",
    [SP_SKIP_NOT_SUPPORTED] = "not-supported",
    [SP_SKIP_FROZEN_BY_OTHER] = "frozen-by-other",
};

const char *sp_skip_reason_str(SpSkipReason reason)
{
    if ((size_t)reason < sizeof(skip_names) / sizeof(skip_names[0]) && skip_names[reason])
        return skip_names[reason];
    return "unknown";
}

static bool in_list(const char *s, const char *const *list)
{
    for (size_t i = 0; list && list[i]; i++)
        if (strcmp(s, list[i]) == 0)
            return true;
    return false;
}

static const char *const pseudo_types[] = {
    "proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "securityfs", "debugfs",
    "tracefs", "pstore", "bpf", "configfs", "mqueue", "hugetlbfs", "autofs", "binfmt_misc",
    "fusectl", "efivarfs", "rpc_pipefs", "nsfs", "selinuxfs", "rootfs", "nfsd", "usbfs",
    "xenfs", "vboxsf_pseudo", "devfs", "pipefs", "sockfs", "anon_inodefs", NULL,
};
static const char *const memory_types[] = {"tmpfs", "ramfs", "zram_tmpfs", NULL};
static const char *const network_types[] = {
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph", "9p", "virtiofs", "glusterfs", "afs",
    "ncpfs", "lustre", "coda", "vboxsf", "vmhgfs", "orangefs", "beegfs", NULL,
};
static const char *const stacked_types[] = {"overlay", "aufs", "unionfs", "ecryptfs", NULL};
/* Filesystems on block devices that report an anonymous (major 0) st_dev. */
static const char *const anon_dev_block_types[] = {"btrfs", "bcachefs", NULL};

bool sp_plan_classify(const SpMount *m, SpSkipReason *ret)
{
    if (in_list(m->fstype, pseudo_types))
        *ret = SP_SKIP_PSEUDO;
    else if (in_list(m->fstype, memory_types))
        *ret = SP_SKIP_MEMORY;
    else if (in_list(m->fstype, network_types))
        *ret = SP_SKIP_NETWORK;
    else if (strcmp(m->fstype, "fuse") == 0 || strcmp(m->fstype, "fuseblk") == 0 ||
             strncmp(m->fstype, "fuse.", 5) == 0)
        *ret = SP_SKIP_FUSE;
    else if (in_list(m->fstype, stacked_types))
        *ret = SP_SKIP_STACKED;
    else if (m->major == 0 && !in_list(m->fstype, anon_dev_block_types))
        *ret = SP_SKIP_NO_BLOCK_DEVICE;
    else if (sp_mount_sb_readonly(m))
        *ret = SP_SKIP_READ_ONLY;
    else
        return false;
    return true;
}

static bool excluded_itself(const SpMount *m, const SpPlanOptions *o)
{
    for (size_t i = 0; o->exclude_mountpoints && o->exclude_mountpoints[i]; i++)
        if (fnmatch(o->exclude_mountpoints[i], m->mountpoint, FNM_PATHNAME) == 0)
            return true;
    return in_list(m->fstype, o->exclude_types);
}

/* Excluding a mountpoint excludes its filesystem: freezing it through another (bind) mount
 * would freeze the excluded mountpoint all the same. */
static bool excluded(const SpMountTable *table, const SpMount *m, const SpPlanOptions *o)
{
    if (excluded_itself(m, o))
        return true;
    for (size_t i = 0; i < table->n_mounts; i++)
        if (sp_mount_dev(&table->mounts[i]) == sp_mount_dev(m) &&
            excluded_itself(&table->mounts[i], o))
            return true;
    return false;
}

void sp_plan_free(SpFreezePlan *plan)
{
    if (!plan)
        return;
    for (size_t i = 0; i < plan->n_targets; i++) {
        free(plan->targets[i].mountpoint);
        free(plan->targets[i].fstype);
        free(plan->targets[i].source);
    }
    for (size_t i = 0; i < plan->n_skips; i++) {
        free(plan->skips[i].mountpoint);
        free(plan->skips[i].fstype);
        free(plan->skips[i].primary);
    }
    free(plan->targets);
    free(plan->skips);
    free(plan);
}

/* Room for one more of the n items at *items (size bytes each): the new slot, zeroed; NULL
 * without memory. */
static void *append_slot(void *items, size_t n, size_t size)
{
    char *grown = realloc(*(void **)items, (n + 1) * size);

    if (!grown)
        return NULL;
    *(void **)items = grown;
    memset(grown + n * size, 0, size);
    return grown + n * size;
}

static int add_skip(SpFreezePlan *p, const char *mountpoint, const char *fstype,
                    SpSkipReason reason, const char *primary)
{
    SpPlanSkip *s = append_slot(&p->skips, p->n_skips, sizeof(*s));

    if (!s)
        return -ENOMEM;
    s->mountpoint = strdup(mountpoint);
    s->fstype = strdup(fstype);
    s->primary = primary ? strdup(primary) : NULL;
    s->reason = reason;
    p->n_skips++;
    if (!s->mountpoint || !s->fstype || (primary && !s->primary))
        return -ENOMEM;
    return 0;
}

static int add_target(SpFreezePlan *p, const SpMount *m)
{
    SpPlanTarget *t = append_slot(&p->targets, p->n_targets, sizeof(*t));

    if (!t)
        return -ENOMEM;
    t->dev = sp_mount_dev(m);
    t->mount_id = m->id;
    t->mountpoint = strdup(m->mountpoint);
    t->fstype = strdup(m->fstype);
    t->source = strdup(m->source);
    p->n_targets++;
    if (!t->mountpoint || !t->fstype || !t->source)
        return -ENOMEM;
    return 0;
}

static ssize_t find_target(const SpFreezePlan *p, dev_t dev)
{
    for (size_t i = 0; i < p->n_targets; i++)
        if (p->targets[i].dev == dev)
            return (ssize_t)i;
    return -1;
}

/* btrfs gives each subvolume its own anonymous st_dev, but they share one superblock: freezing
 * a second subvolume would fail with EBUSY and look like someone else's freeze. Same type on
 * the same source device = same filesystem. */
static ssize_t find_target_of(const SpFreezePlan *p, const SpMount *m)
{
    ssize_t t = find_target(p, sp_mount_dev(m));

    if (t >= 0 || !in_list(m->fstype, anon_dev_block_types))
        return t;
    for (size_t i = 0; i < p->n_targets; i++)
        if (strcmp(p->targets[i].fstype, m->fstype) == 0 &&
            strcmp(p->targets[i].source, m->source) == 0)
            return (ssize_t)i;
    return -1;
}

static bool selected(const SpMount *m, const SpPlanOptions *o)
{
    if (o->mountpoints && !in_list(m->mountpoint, o->mountpoints))
        return false;
    if (o->select_mount && !o->select_mount(m, o->select_userdata))
        return false;
    return true;
}

/* A filesystem whose device is backed by a file on filesystem G must be frozen before G (else
 * flushing it writes into a frozen G and blocks forever): G's wave is later than its own. */
static void assign_waves(SpFreezePlan *p, const SpPlanOptions *o)
{
    bool changed = true;

    if (!o->backing_devs)
        return;
    /* Relax until stable; bounded by the number of targets (a cycle cannot be real). */
    for (size_t round = 0; changed && round <= p->n_targets; round++) {
        changed = false;
        for (size_t i = 0; i < p->n_targets; i++) {
            dev_t backing[16];
            size_t n = o->backing_devs(p->targets[i].dev, backing, 16, o->backing_userdata);
            for (size_t b = 0; b < n && b < 16; b++) {
                ssize_t g = find_target(p, backing[b]);
                if (g >= 0 && (size_t)g != i && p->targets[g].wave <= p->targets[i].wave) {
                    p->targets[g].wave = p->targets[i].wave + 1;
                    changed = true;
                }
            }
        }
    }
}

static int cmp_wave(const void *a, const void *b)
{
    const SpPlanTarget *x = a, *y = b;
    return (x->wave > y->wave) - (x->wave < y->wave);
}

/* Stable sort by wave, keeping reverse mount order inside a wave (qsort is not stable, so
 * insertion sort: plans are small). */
static void sort_by_wave(SpFreezePlan *p)
{
    for (size_t i = 1; i < p->n_targets; i++) {
        SpPlanTarget t = p->targets[i];
        size_t j = i;
        while (j > 0 && cmp_wave(&p->targets[j - 1], &t) > 0) {
            p->targets[j] = p->targets[j - 1];
            j--;
        }
        p->targets[j] = t;
    }
}

static int check_selection(const SpMountTable *table, const SpPlanOptions *o, const char **ret_missing)
{
    for (size_t i = 0; o->mountpoints && o->mountpoints[i]; i++) {
        if (!sp_mount_table_find(table, o->mountpoints[i])) {
            if (ret_missing)
                *ret_missing = o->mountpoints[i];
            return -ENOENT;
        }
    }
    return 0;
}

static bool same_filesystem(const SpMount *a, const SpMount *b)
{
    if (sp_mount_dev(a) == sp_mount_dev(b))
        return true;
    return in_list(a->fstype, anon_dev_block_types) && strcmp(a->fstype, b->fstype) == 0 &&
           strcmp(a->source, b->source) == 0;
}

/* The first (earliest) mount of a superblock names it; later mounts are its bind mounts. */
static const SpMount *first_mount_of(const SpMountTable *table, const SpMount *m)
{
    for (size_t i = 0; i < table->n_mounts; i++)
        if (same_filesystem(&table->mounts[i], m))
            return &table->mounts[i];
    return NULL;
}

static int plan_mount(SpFreezePlan *p, const SpMountTable *table, const SpMount *m,
                      const SpPlanOptions *o)
{
    SpSkipReason reason;
    const SpMount *first;
    ssize_t t;

    if (sp_plan_classify(m, &reason))
        return add_skip(p, m->mountpoint, m->fstype, reason, NULL);
    if (excluded(table, m, o))
        return add_skip(p, m->mountpoint, m->fstype, SP_SKIP_EXCLUDED, NULL);
    t = find_target_of(p, m);
    if (t >= 0 && strcmp(p->targets[t].mountpoint, m->mountpoint) == 0)
        return 0; /* the mount we freeze it through (added when a later bind mount was seen) */
    if (t >= 0)
        return add_skip(p, m->mountpoint, m->fstype, SP_SKIP_SAME_FILESYSTEM,
                        p->targets[t].mountpoint);
    first = first_mount_of(table, m);
    /* Freeze through the original mount when it is selected too, so reports name it (and
     * only when it would be frozen itself: a table can be inconsistent while it changes). */
    if (first && first != m && selected(first, o) && !excluded(table, first, o) &&
        !sp_plan_classify(first, &reason) && strcmp(first->fstype, m->fstype) == 0) {
        ssize_t ft = find_target(p, sp_mount_dev(first));
        if (ft < 0) {
            int r = add_target(p, first);
            if (r < 0)
                return r;
            ft = (ssize_t)p->n_targets - 1;
        }
        return add_skip(p, m->mountpoint, m->fstype, SP_SKIP_SAME_FILESYSTEM,
                        p->targets[ft].mountpoint);
    }
    return add_target(p, m);
}

int sp_plan_build(const SpMountTable *table, const SpPlanOptions *opts, SpFreezePlan **ret,
                  const char **ret_missing)
{
    static const SpPlanOptions no_opts;
    const SpPlanOptions *o = opts ? opts : &no_opts;
    SpFreezePlan *p;
    int r = check_selection(table, o, ret_missing);

    if (r < 0)
        return r;
    p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    /* Reverse mount order: a filesystem mounted on (or from a file in) another was mounted
     * after it, so it is frozen first (qemu-ga and open-vm-tools do the same). */
    for (size_t i = table->n_mounts; i > 0; i--) {
        const SpMount *m = &table->mounts[i - 1];
        if (!selected(m, o))
            continue;
        r = plan_mount(p, table, m, o);
        if (r < 0) {
            sp_plan_free(p);
            return r;
        }
    }
    assign_waves(p, o);
    sort_by_wave(p);
    *ret = p;
    return 0;
}

int sp_plan_skip_target(SpFreezePlan *plan, size_t index, SpSkipReason reason)
{
    SpPlanTarget t;
    int r;

    if (index >= plan->n_targets)
        return -EINVAL;
    t = plan->targets[index];
    r = add_skip(plan, t.mountpoint, t.fstype, reason, NULL);
    memmove(&plan->targets[index], &plan->targets[index + 1],
            (plan->n_targets - index - 1) * sizeof(t));
    plan->n_targets--;
    free(t.mountpoint);
    free(t.fstype);
    free(t.source);
    return r;
}
