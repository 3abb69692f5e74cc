/* freezer: the FIFREEZE/FITHAW core. What we froze is recorded by dev_t and thawed exactly,
 * in reverse; we never "thaw until it fails" (that would thaw other tools' freezes). */
#define _GNU_SOURCE
#include "freezer.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include "mountinfo.h"

/* At most this many FIFREEZE calls run at once inside one wave. */
#define SP_FREEZER_MAX_PARALLEL 16

static int linux_open_dir(const char *path, void *ud)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    return fd < 0 ? -errno : fd;
}

int sp_fd_mount_id(int fd, int *ret)
{
    char path[64], buf[512];
    ssize_t n;
    const char *p;
    int info;

    snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
    info = open(path, O_RDONLY | O_CLOEXEC);
    if (info < 0)
        return -errno;
    n = read(info, buf, sizeof(buf) - 1);
    close(info);
    if (n < 0)
        return -errno;
    buf[n] = '\0';
    p = strstr(buf, "mnt_id:");
    if (!p || sscanf(p, "mnt_id: %d", ret) != 1)
        return -ENOTSUP; /* kernels before 3.15 */
    return 0;
}

/* mnt_id from fdinfo, then that mount's major:minor from mountinfo. */
int sp_fd_sb_dev(int fd, dev_t *ret)
{
    SpMountTable *table = NULL;
    int id, r = sp_fd_mount_id(fd, &id);

    if (r < 0)
        return r;
    r = sp_mountinfo_read(NULL, &table);
    if (r < 0)
        return r;
    r = -ENOENT;
    for (size_t i = 0; i < table->n_mounts; i++) {
        if (table->mounts[i].id == id) {
            *ret = sp_mount_dev(&table->mounts[i]);
            r = 0;
            break;
        }
    }
    sp_mount_table_free(table);
    return r;
}

static int linux_sb_dev(int fd, dev_t *ret, void *ud)
{
    return sp_fd_sb_dev(fd, ret);
}

static int linux_syncfs(int fd, void *ud)
{
    return syncfs(fd) < 0 ? -errno : 0;
}

/* The kernel ignores the argument, but the ioctls are declared _IOWR(int): pass a real int so
 * that tools checking the declaration (valgrind) see a valid pointer. */
static int linux_freeze(int fd, void *ud)
{
    int unused = 0;
    return ioctl(fd, FIFREEZE, &unused) < 0 ? -errno : 0;
}

static int linux_thaw(int fd, void *ud)
{
    int unused = 0;
    return ioctl(fd, FITHAW, &unused) < 0 ? -errno : 0;
}

static void linux_close(int fd, void *ud)
{
    close(fd);
}

const SpFsOps sp_fs_ops_linux = {
    .open_dir = linux_open_dir,
    .sb_dev = linux_sb_dev,
    .syncfs = linux_syncfs,
    .freeze = linux_freeze,
    .thaw = linux_thaw,
    .close = linux_close,
};

static void set_failure(SpFreezerFailure *f, const char *op, const char *mountpoint, int err)
{
    if (!f)
        return;
    f->op = op;
    snprintf(f->mountpoint, sizeof(f->mountpoint), "%s", mountpoint);
    f->err = err;
}

void sp_freezer_init(SpFreezer *f, const SpFsOps *ops, void *userdata)
{
    memset(f, 0, sizeof(*f));
    f->ops = ops ? ops : &sp_fs_ops_linux;
    f->userdata = userdata;
}

static void close_prepared(SpFreezer *f)
{
    for (size_t i = 0; i < f->n_fds; i++)
        if (f->fds[i] >= 0)
            f->ops->close(f->fds[i], f->userdata);
    free(f->fds);
    f->fds = NULL;
    f->n_fds = 0;
}

void sp_freezer_clear(SpFreezer *f)
{
    if (f->n_frozen > 0) {
        SpThawReport report;
        (void)sp_freezer_thaw_all(f, &report);
    }
    close_prepared(f);
}

bool sp_freezer_is_frozen(const SpFreezer *f)
{
    return f->n_frozen > 0;
}

/* One system call on one prepared fd, possibly on its own thread. */
typedef struct {
    SpFreezer *f;
    int (*op)(int fd, void *userdata); /* syncfs or freeze */
    int fd;
    int result;
    pthread_t thread;
    bool started;
} FreezeJob;

static void *job_cb(void *data)
{
    FreezeJob *job = data;
    job->result = job->op(job->fd, job->f->userdata);
    return NULL;
}

/* Run jobs [begin, end) of one wave; independent filesystems are flushed and frozen
 * concurrently, so the window is as long as the slowest, not the sum. */
static void run_wave(FreezeJob *jobs, size_t begin, size_t end)
{
    if (end - begin == 1) {
        job_cb(&jobs[begin]);
        return;
    }
    for (size_t i = begin; i < end; i++)
        jobs[i].started = pthread_create(&jobs[i].thread, NULL, job_cb, &jobs[i]) == 0;
    for (size_t i = begin; i < end; i++) {
        if (jobs[i].started)
            pthread_join(jobs[i].thread, NULL);
        else
            job_cb(&jobs[i]); /* no thread available: do it here */
    }
}

/* syncfs every prepared target, wave by wave, in parallel inside a wave. */
static int sync_all(SpFreezer *f, const SpFreezePlan *plan, SpFreezerFailure *ret_fail)
{
    size_t n = plan->n_targets, pos = 0;
    FreezeJob *jobs = calloc(n ? n : 1, sizeof(*jobs));
    int r = 0;

    if (!jobs)
        return -ENOMEM;
    while (pos < n) {
        size_t end = pos;
        while (end < n && plan->targets[end].wave == plan->targets[pos].wave &&
               end - pos < SP_FREEZER_MAX_PARALLEL) {
            jobs[end] = (FreezeJob){.f = f, .op = f->ops->syncfs, .fd = f->fds[end]};
            end++;
        }
        run_wave(jobs, pos, end);
        pos = end;
    }
    for (size_t i = 0; i < n && r == 0; i++) {
        if (jobs[i].result < 0) {
            r = jobs[i].result;
            set_failure(ret_fail, "syncfs", plan->targets[i].mountpoint, -r);
        }
    }
    free(jobs);
    return r;
}

int sp_freezer_prepare(SpFreezer *f, const SpFreezePlan *plan, SpFreezerFailure *ret_fail)
{
    if (f->n_frozen > 0)
        return -EBUSY;
    close_prepared(f);
    f->fds = malloc((plan->n_targets ? plan->n_targets : 1) * sizeof(int));
    if (!f->fds)
        return -ENOMEM;
    for (size_t i = 0; i < plan->n_targets; i++)
        f->fds[i] = -1;
    f->n_fds = plan->n_targets;
    /* Open everything before the first freeze: opening can block on a frozen parent. */
    for (size_t i = 0; i < plan->n_targets; i++) {
        const SpPlanTarget *t = &plan->targets[i];
        dev_t dev;
        int r, fd = f->ops->open_dir(t->mountpoint, f->userdata);

        if (fd < 0) {
            set_failure(ret_fail, "open", t->mountpoint, -fd);
            close_prepared(f);
            return fd;
        }
        f->fds[i] = fd;
        r = f->ops->sb_dev(fd, &dev, f->userdata);
        if (r == 0 && dev != t->dev)
            r = -ESTALE; /* another filesystem was mounted over it since we planned */
        if (r < 0) {
            set_failure(ret_fail, "open", t->mountpoint, -r);
            close_prepared(f);
            return r;
        }
    }
    int r = sync_all(f, plan, ret_fail);
    if (r < 0)
        close_prepared(f);
    return r;
}

static int record_frozen(SpFreezer *f, const SpPlanTarget *t, int fd)
{
    SpFrozenFs *e = &f->frozen[f->n_frozen++];
    e->dev = t->dev;
    e->fd = fd;
    e->mountpoint = strdup(t->mountpoint);
    return e->mountpoint ? 0 : -ENOMEM;
}

/* Sort out one wave's results: record successes, move EOPNOTSUPP/EBUSY to the skips (advancing
 * *i_io, the plan index of the wave's next target, past the rest). Returns the first hard error. */
static int collect_wave(SpFreezer *f, SpFreezePlan *plan, FreezeJob *jobs, size_t *i_io,
                        size_t begin, size_t end, SpFreezerFailure *ret_fail)
{
    int first_err = 0;
    size_t i = *i_io;

    /* jobs[j] (indexed like the prepared fds) belongs to plan target i, which only advances
     * when the target stays in the plan. */
    for (size_t j = begin; j < end; j++) {
        int res = jobs[j].result;
        if (res == 0) {
            /* An fd is owned by exactly one place: the frozen list from now on. */
            if (record_frozen(f, &plan->targets[i], jobs[j].fd) < 0 && !first_err)
                first_err = -ENOMEM;
            f->fds[j] = -1;
            i++;
        } else if (res == -EOPNOTSUPP || res == -EBUSY) {
            f->ops->close(jobs[j].fd, f->userdata);
            f->fds[j] = -1;
            (void)sp_plan_skip_target(plan, i,
                                      res == -EBUSY ? SP_SKIP_FROZEN_BY_OTHER : SP_SKIP_NOT_SUPPORTED);
        } else {
            if (!first_err) {
                first_err = res;
                set_failure(ret_fail, "freeze", plan->targets[i].mountpoint, -res);
            }
            i++;
        }
    }
    *i_io = i;
    return first_err;
}

int sp_freezer_freeze(SpFreezer *f, SpFreezePlan *plan, SpFreezerFailure *ret_fail)
{
    size_t n = plan->n_targets, pos = 0, ti = 0;
    FreezeJob *jobs;
    int r = 0;

    if (f->n_fds != n || f->n_frozen > 0)
        return -EINVAL;
    f->frozen = calloc(n ? n : 1, sizeof(*f->frozen));
    jobs = calloc(n ? n : 1, sizeof(*jobs));
    if (!f->frozen || !jobs) {
        free(jobs);
        return -ENOMEM;
    }
    while (pos < n && r == 0) {
        unsigned wave = plan->targets[ti].wave;
        size_t end = pos, k = ti;
        while (end < n && k < plan->n_targets && plan->targets[k].wave == wave &&
               end - pos < SP_FREEZER_MAX_PARALLEL) {
            jobs[end] = (FreezeJob){.f = f, .op = f->ops->freeze, .fd = f->fds[end]};
            end++;
            k++;
        }
        run_wave(jobs, pos, end);
        r = collect_wave(f, plan, jobs, &ti, pos, end, ret_fail);
        pos = end;
    }
    free(jobs);
    if (r < 0) {
        SpThawReport report;
        (void)sp_freezer_thaw_all(f, &report);
    }
    close_prepared(f);
    return r < 0 ? r : (int)f->n_frozen;
}

int sp_freezer_thaw_all(SpFreezer *f, SpThawReport *ret)
{
    int first_err = 0;

    memset(ret, 0, sizeof(*ret));
    for (size_t i = f->n_frozen; i > 0; i--) {
        SpFrozenFs *e = &f->frozen[i - 1];
        int r = f->ops->thaw(e->fd, f->userdata);
        if (r == 0) {
            ret->n_thawed++;
        } else if (r == -EINVAL) {
            ret->n_not_frozen++;
        } else {
            if (ret->n_failed++ == 0) {
                set_failure(&ret->failure, "thaw", e->mountpoint, -r);
                first_err = r;
            }
        }
        f->ops->close(e->fd, f->userdata);
        free(e->mountpoint);
    }
    free(f->frozen);
    f->frozen = NULL;
    f->n_frozen = 0;
    return first_err;
}

int sp_freezer_thaw_recorded(const SpFsOps *ops, void *userdata, const char *mountpoint, dev_t dev)
{
    dev_t actual;
    int r, fd;

    ops = ops ? ops : &sp_fs_ops_linux;
    fd = ops->open_dir(mountpoint, userdata);
    if (fd < 0)
        return fd == -ENOENT ? 0 : fd;
    r = ops->sb_dev(fd, &actual, userdata);
    if (r == 0 && actual != dev)
        r = 0; /* another filesystem is mounted there now: not ours to thaw */
    else if (r == 0) {
        r = ops->thaw(fd, userdata);
        r = r == 0 ? 1 : (r == -EINVAL ? 0 : r);
    }
    ops->close(fd, userdata);
    return r;
}
