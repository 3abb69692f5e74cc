/* backend-linux: freeze = plan → hooks → writers Prepare, Freeze → open+syncfs → state file →
 * FIFREEZE → lease timer; thaw = FITHAW in reverse → state file removed → logs flushed →
 * writers Thaw → thaw hooks; flush = plan → syncfs (flush.c); fsinfo (fsinfo.c). */
#define _GNU_SOURCE
#include "backend-linux.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include "blockdev.h"
#include "flush.h"
#include "fsinfo.h"
#include "hooks.h"
#include "lease.h"
#include "log.h"
#include "mountinfo.h"
#include "planner.h"
#include "state.h"

struct SpLinuxBackend {
    const SpConfig *config;
    char *mountinfo_path;
    char *sysfs_root;
    SpFreezer freezer;
    SpLease lease;
    SpHooks *hooks;
    SpWriters *writers;    /* borrowed; NULL = none */
    SpWriterReport *status_writers;
    size_t n_status_writers;
    char *failed_writer;   /* a writer of the last freeze that left the bus while frozen */
    guint lease_timer;
    GArray *frozen_fs;     /* SpFsEntry of the current freeze, for status */
    GArray *status_fs;     /* copy handed out by status */
    GHashTable *probed;    /* "mount-id source" -> SpFsEntry: libblkid results, kept per mount */
};

static gint64 now_ms(void)
{
    return g_get_monotonic_time() / 1000;
}

static void fs_entry_free(SpFsEntry *e)
{
    sp_fs_entry_clear(e);
    g_free(e);
}

static SpFsEntry fs_entry_copy(const SpFsEntry *e)
{
    SpFsEntry c = {g_strdup(e->mountpoint), g_strdup(e->fstype), g_strdup(e->device),
                   g_strdup(e->uuid), g_strdup(e->label)};
    return c;
}

SpLinuxBackend *sp_linux_backend_new(const SpConfig *config, const SpLinuxBackendOptions *opts)
{
    SpLinuxBackend *b = g_new0(SpLinuxBackend, 1);
    static const SpLinuxBackendOptions no_opts;

    opts = opts ? opts : &no_opts;
    b->config = config;
    b->mountinfo_path = g_strdup(opts->mountinfo_path);
    b->sysfs_root = g_strdup(opts->sysfs_root ? opts->sysfs_root : "/sys");
    sp_freezer_init(&b->freezer, opts->fs_ops, opts->fs_ops_userdata);
    /* Epochs start at the wall clock in ms, so a restarted agent never reuses one. */
    sp_lease_init(&b->lease, g_get_real_time() / 1000);
    b->hooks = sp_hooks_new(config->hook_path, config->hook_dir, config->hook_timeout_ms);
    b->frozen_fs = g_array_new(FALSE, TRUE, sizeof(SpFsEntry));
    g_array_set_clear_func(b->frozen_fs, (GDestroyNotify)sp_fs_entry_clear);
    b->status_fs = g_array_new(FALSE, TRUE, sizeof(SpFsEntry));
    g_array_set_clear_func(b->status_fs, (GDestroyNotify)sp_fs_entry_clear);
    b->probed = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                      (GDestroyNotify)fs_entry_free);
    return b;
}

static void thaw_now(SpLinuxBackend *b, SpThawReason reason, SpBackendThawResult *ret);

void sp_linux_backend_free(SpLinuxBackend *b)
{
    if (!b)
        return;
    if (b->lease.frozen) {
        SpBackendThawResult r;
        thaw_now(b, SP_THAW_SHUTDOWN, &r);
    }
    sp_freezer_clear(&b->freezer);
    sp_hooks_free(b->hooks);
    g_array_unref(b->frozen_fs);
    g_array_unref(b->status_fs);
    g_hash_table_unref(b->probed);
    sp_writer_reports_free(b->status_writers, b->n_status_writers);
    g_free(b->failed_writer);
    g_free(b->mountinfo_path);
    g_free(b->sysfs_root);
    g_free(b);
}

void sp_linux_backend_set_keepalive(SpLinuxBackend *b, void (*fn)(void *data), void *data)
{
    sp_hooks_set_keepalive(b->hooks, fn, data);
}

void sp_linux_backend_set_writers(SpLinuxBackend *b, SpWriters *writers)
{
    b->writers = writers;
}

guint sp_linux_backend_hook_count(SpLinuxBackend *b)
{
    return sp_hooks_count(b->hooks);
}

gboolean sp_linux_backend_is_frozen(SpLinuxBackend *b)
{
    return b->lease.frozen;
}

/* ---- planning ---- */

/* The superblock (mountinfo major:minor) a path is on: st_dev would not do (btrfs subvolumes
 * have their own). */
static int path_sb_dev(const char *path, dev_t *ret)
{
    int r, fd = open(path, O_PATH | O_CLOEXEC);

    if (fd < 0)
        return -errno;
    r = sp_fd_sb_dev(fd, ret);
    close(fd);
    return r;
}

typedef struct {
    SpLinuxBackend *b;
    const char *const *serials;
    size_t n_serials;
    GHashTable *seen;   /* serials that matched some filesystem */
} DiskSelect;

static bool select_mount_cb(const SpMount *m, void *userdata)
{
    DiskSelect *ds = userdata;
    dev_t dev = sp_blockdev_of_mount(m);
    g_autoptr(GPtrArray) disks = NULL;
    bool hit = false;

    if (dev == 0)
        return false;
    disks = sp_blockdev_disks(ds->b->sysfs_root, dev);

    for (guint i = 0; i < disks->len; i++) {
        const SpBlockdevDisk *d = disks->pdata[i];
        for (size_t s = 0; d->serial && s < ds->n_serials; s++) {
            if (strcmp(d->serial, ds->serials[s]) == 0) {
                g_hash_table_add(ds->seen, (gpointer)ds->serials[s]);
                hit = true;
            }
        }
    }
    return hit;
}

static size_t backing_devs_cb(dev_t dev, dev_t *ret, size_t max, void *userdata)
{
    SpLinuxBackend *b = userdata;
    g_autoptr(GPtrArray) files = sp_blockdev_loop_backing(b->sysfs_root, dev);
    size_t n = 0;

    for (guint i = 0; i < files->len && n < max; i++)
        if (path_sb_dev(files->pdata[i], &ret[n]) == 0)
            n++;
    return n;
}

/* The standard commands ignore mountpoints that are not mounted, as qemu-ga does. */
static char **existing_mountpoints(const SpMountTable *table, const SpFreezeRequest *req)
{
    GPtrArray *out = g_ptr_array_new();
    for (size_t i = 0; i < req->n_names; i++)
        if (sp_mount_table_find(table, req->names[i]))
            g_ptr_array_add(out, g_strdup(req->names[i]));
    g_ptr_array_add(out, NULL);
    return (char **)g_ptr_array_free(out, FALSE);
}

static int build_plan(SpLinuxBackend *b, const SpFreezeRequest *req, SpFreezePlan **ret,
                      SpBackendError *err)
{
    SpMountTable *table = NULL;
    SpPlanOptions o = {
        .exclude_mountpoints = (const char *const *)b->config->exclude_mountpoints,
        .exclude_types = (const char *const *)b->config->exclude_types,
        .backing_devs = backing_devs_cb,
        .backing_userdata = b,
    };
    g_auto(GStrv) selected = NULL;
    g_autoptr(GPtrArray) names = NULL;
    DiskSelect ds = {.b = b, .serials = req->names, .n_serials = req->n_names};
    const char *missing = NULL;
    int r = sp_mountinfo_read(b->mountinfo_path, &table);

    if (r < 0) {
        sp_backend_error_set(err, SP_CODE_DISCOVERY_FAILED, "cannot read the mount table %s: %s",
                             b->mountinfo_path ? b->mountinfo_path : "/proc/self/mountinfo",
                             g_strerror(-r));
        return -1;
    }
    if (req->kind == SP_SELECT_MOUNTPOINTS && req->standard) {
        selected = existing_mountpoints(table, req);
        o.mountpoints = (const char *const *)selected;
    } else if (req->kind == SP_SELECT_MOUNTPOINTS) {
        names = g_ptr_array_new();
        for (size_t i = 0; i < req->n_names; i++)
            g_ptr_array_add(names, (gpointer)req->names[i]);
        g_ptr_array_add(names, NULL);
        o.mountpoints = (const char *const *)names->pdata;
    } else if (req->kind == SP_SELECT_DISKS) {
        ds.seen = g_hash_table_new(g_str_hash, g_str_equal);
        o.select_mount = select_mount_cb;
        o.select_userdata = &ds;
    }
    r = sp_plan_build(table, &o, ret, &missing);
    if (r == -ENOENT)
        sp_backend_error_set(err, SP_CODE_UNKNOWN_MOUNTPOINT,
                             "%s is not a mountpoint in this guest", missing);
    else if (r < 0)
        sp_backend_error_set(err, SP_ERROR_CODE_FAILED,
                             "planning the freeze failed: %s", g_strerror(-r));
    for (size_t i = 0; r == 0 && ds.seen && i < req->n_names; i++) {
        if (!g_hash_table_contains(ds.seen, req->names[i])) {
            sp_backend_error_set(err, SP_CODE_UNKNOWN_DISK,
                                 "no mounted filesystem is on a disk with serial %s",
                                 req->names[i]);
            sp_plan_free(*ret);
            r = -ENOENT;
        }
    }
    if (ds.seen)
        g_hash_table_unref(ds.seen);
    sp_mount_table_free(table);
    return r < 0 ? -1 : 0;
}

/* ---- state file ---- */

static int write_state(SpLinuxBackend *b, const SpFreezePlan *plan, gint64 epoch)
{
    g_autofree SpStateFs *fs = g_new0(SpStateFs, plan->n_targets + 1);
    for (size_t i = 0; i < plan->n_targets; i++) {
        fs[i].dev = plan->targets[i].dev;
        fs[i].mountpoint = plan->targets[i].mountpoint;
    }
    return sp_state_write(b->config->state_dir, (long)getpid(), epoch, fs, plan->n_targets);
}

/* ---- freeze ---- */

static gboolean lease_expired_cb(gpointer data)
{
    SpLinuxBackend *b = data;
    SpBackendThawResult r;

    b->lease_timer = 0;
    thaw_now(b, SP_THAW_EXPIRED, &r);
    g_warning("lease of %" G_GINT64_FORMAT " ms for freeze %" G_GINT64_FORMAT " ran out: thawed "
              "%zu filesystem(s) by itself; the freeze is not consistent",
              b->lease.lease_ms, r.epoch, r.n_thawed);
    return G_SOURCE_REMOVE;
}

/* The uuid and label of a target, probed with libblkid once per mount: probing reads the
 * device and was most of a freeze's time (bench/), while both can only change through a new
 * mount (mkfs, tune2fs on an unmounted filesystem), which gets a new mount ID. */
#define SP_PROBE_CACHE_MAX 1024

static const SpFsEntry *probe_target(SpLinuxBackend *b, const SpPlanTarget *t)
{
    g_autofree char *key = g_strdup_printf("%d %s", t->mount_id, t->source);
    SpFsEntry *e = g_hash_table_lookup(b->probed, key);
    char *type = NULL;

    if (e)
        return e;
    /* Mounts come and go (containers): start over rather than grow without bound. */
    if (g_hash_table_size(b->probed) >= SP_PROBE_CACHE_MAX)
        g_hash_table_remove_all(b->probed);
    e = g_new0(SpFsEntry, 1);
    if (g_str_has_prefix(t->source, "/dev/") &&
        sp_blockdev_probe(t->source, &type, &e->uuid, &e->label))
        g_free(type);
    g_hash_table_replace(b->probed, g_steal_pointer(&key), e);
    return e;
}

/* Identify each target before anything is frozen (the reply must not wait on probes inside
 * the window): mountpoint -> SpFsEntry with uuid and label. */
static GHashTable *probe_targets(SpLinuxBackend *b, const SpFreezePlan *plan)
{
    GHashTable *ids = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)fs_entry_free);

    for (size_t i = 0; i < plan->n_targets; i++) {
        const SpPlanTarget *t = &plan->targets[i];
        const SpFsEntry *probed = probe_target(b, t);
        SpFsEntry *e = g_new0(SpFsEntry, 1);

        e->mountpoint = g_strdup(t->mountpoint);
        e->uuid = g_strdup(probed->uuid);
        e->label = g_strdup(probed->label);
        g_hash_table_replace(ids, e->mountpoint, e);
    }
    return ids;
}

static void fill_result(SpLinuxBackend *b, const SpFreezePlan *plan, GHashTable *ids,
                        SpBackendFreezeResult *ret)
{
    ret->frozen = g_new0(SpFsEntry, plan->n_targets + 1);
    ret->n_frozen = plan->n_targets;
    for (size_t i = 0; i < plan->n_targets; i++) {
        const SpPlanTarget *t = &plan->targets[i];
        const SpFsEntry *id = g_hash_table_lookup(ids, t->mountpoint);
        SpFsEntry e = {(char *)t->mountpoint, t->fstype, t->source, id ? id->uuid : NULL,
                       id ? id->label : NULL};
        SpFsEntry kept = fs_entry_copy(&e);
        ret->frozen[i] = fs_entry_copy(&e);
        g_array_append_val(b->frozen_fs, kept);
    }
    ret->skipped = g_new0(SpSkipEntry, plan->n_skips + 1);
    ret->n_skipped = plan->n_skips;
    for (size_t i = 0; i < plan->n_skips; i++) {
        const SpPlanSkip *s = &plan->skips[i];
        ret->skipped[i].mountpoint = g_strdup(s->mountpoint);
        ret->skipped[i].fstype = g_strdup(s->fstype);
        ret->skipped[i].reason = sp_skip_reason_str(s->reason);
        ret->skipped[i].primary = g_strdup(s->primary);
    }
}

static void hooks_release(SpLinuxBackend *b)
{
    g_autoptr(GError) e = NULL;
    if (!sp_hooks_thaw(b->hooks, &e))
        g_warning("after the failed freeze: %s", e->message);
}

static gboolean state_dir_frozen(SpLinuxBackend *b, const SpFreezePlan *plan)
{
    dev_t dev;

    if (path_sb_dev(b->config->state_dir, &dev) < 0)
        return TRUE; /* cannot tell: do not risk it */
    for (size_t i = 0; i < plan->n_targets; i++)
        if (plan->targets[i].dev == dev)
            return TRUE;
    return FALSE;
}

/* Everything between the hooks: open+syncfs, record, FIFREEZE. */
static int freeze_plan(SpLinuxBackend *b, SpFreezePlan *plan, gint64 epoch, SpBackendError *err)
{
    SpFreezerFailure fail = {0};
    int r = sp_freezer_prepare(&b->freezer, plan, &fail);

    if (r < 0) {
        sp_backend_error_set(err, SP_CODE_FREEZE_FAILED,
                             "failed to %s %s: %s", fail.op, fail.mountpoint,
                             g_strerror(fail.err));
        return -1;
    }
    /* Recorded before the first FIFREEZE: a crash from here on is recovered by the next start. */
    r = write_state(b, plan, epoch);
    if (r < 0) {
        sp_freezer_clear(&b->freezer);
        sp_backend_error_set(err, SP_CODE_STATE_FAILED,
                             "cannot record the freeze in %s/%s: %s (the agent "
                             "refuses to freeze what it could not thaw after a crash)",
                             b->config->state_dir, SP_STATE_FILE, g_strerror(-r));
        return -1;
    }
    sp_log_set_frozen(TRUE);
    r = sp_freezer_freeze(&b->freezer, plan, &fail);
    if (r < 0) {
        sp_log_set_frozen(FALSE);
        (void)sp_state_remove(b->config->state_dir);
        sp_backend_error_set(err, SP_CODE_FREEZE_FAILED,
                             "failed to %s %s: %s", fail.op, fail.mountpoint,
                             g_strerror(fail.err));
        return -1;
    }
    /* EOPNOTSUPP/EBUSY targets left the plan: record exactly what we hold — unless the state
     * directory is on a filesystem we just froze (no tmpfs /run): writing there would block. */
    if (!state_dir_frozen(b, plan) && write_state(b, plan, epoch) < 0)
        g_warning("cannot update %s/%s", b->config->state_dir, SP_STATE_FILE);
    return 0;
}

static gboolean check_request(SpLinuxBackend *b, gint64 lease_ms, SpBackendError *err)
{
    if (b->lease.frozen) {
        sp_backend_error_set(err, SP_CODE_ALREADY_FROZEN, "filesystems are already frozen (freeze %"
                             G_GINT64_FORMAT "); thaw first", b->lease.epoch);
        return FALSE;
    }
    if (lease_ms < SP_MIN_LEASE_MS || lease_ms > b->config->max_lease_ms) {
        sp_backend_error_set(err, SP_CODE_LEASE_OUT_OF_RANGE,
                             "lease %" G_GINT64_FORMAT " ms is outside %d..%" G_GINT64_FORMAT " ms",
                             lease_ms, SP_MIN_LEASE_MS, b->config->max_lease_ms);
        return FALSE;
    }
    return TRUE;
}

static int backend_freeze(void *self, const SpFreezeRequest *req, SpBackendFreezeResult *ret,
                          SpBackendError *err)
{
    SpLinuxBackend *b = self;
    SpFreezePlan *plan = NULL;
    g_autoptr(GError) hook_error = NULL;
    g_autoptr(GError) writer_error = NULL;
    g_autoptr(GHashTable) ids = NULL;
    gint64 lease_ms = req->lease_ms > 0 ? req->lease_ms : b->config->default_lease_ms;
    gint64 epoch;

    if (!check_request(b, lease_ms, err) || build_plan(b, req, &plan, err) < 0)
        return -1;
    /* A standard freeze-list of nothing mounted freezes nothing, and the guest stays thawed: no
     * lease, no hooks or writers, no command disabled (qemu-ga answers 0 the same way). */
    if (req->standard && plan->n_targets == 0) {
        g_message("froze 0 filesystems: none of those named is mounted");
        sp_plan_free(plan);
        return 0;
    }
    /* The standard commands answer a count: no need to identify anything. */
    ids = req->standard ? g_hash_table_new(g_str_hash, g_str_equal) : probe_targets(b, plan);
    if (!sp_hooks_freeze(b->hooks, &hook_error)) {
        sp_backend_error_set(err, SP_CODE_HOOK_FAILED, "freeze hook failed, nothing was frozen: %s",
                             hook_error->message);
        sp_plan_free(plan);
        return -1;
    }
    epoch = b->lease.epoch + 1;
    /* Writers flush and hold their writes before syncfs, so the flush carries them. */
    if (b->writers && !sp_writers_freeze(b->writers, epoch, &writer_error)) {
        sp_backend_error_set(err, SP_CODE_WRITER_FAILED,
                             "%s; nothing was frozen", writer_error->message);
        g_warning("%s", err->desc);
        hooks_release(b);
        sp_plan_free(plan);
        return -1;
    }
    if (freeze_plan(b, plan, epoch, err) < 0) {
        g_warning("%s", err->desc);
        if (b->writers)
            sp_writers_thaw(b->writers, epoch, "aborted", FALSE);
        hooks_release(b);
        sp_plan_free(plan);
        return -1;
    }
    epoch = sp_lease_begin(&b->lease, now_ms(), lease_ms, req->channel,
                           req->standard ? b->config->standard_thaw_on_hangup
                                         : b->config->thaw_on_hangup);
    b->lease_timer = g_timeout_add_full(G_PRIORITY_HIGH, (guint)lease_ms, lease_expired_cb, b, NULL);
    fill_result(b, plan, ids, ret);
    if (b->writers)
        ret->writers = sp_writers_reports(b->writers, &ret->n_writers);
    ret->epoch = epoch;
    ret->lease_ms = lease_ms;
    g_message("froze %zu filesystem(s) (freeze %" G_GINT64_FORMAT ", lease %" G_GINT64_FORMAT
              " ms, %zu skipped)", plan->n_targets, epoch, lease_ms, plan->n_skips);
    sp_plan_free(plan);
    return 0;
}

/* ---- thaw ---- */

/* How the last freeze ended; failed_writer copied (a thaw command's result) or borrowed. */
static void last_thaw(SpLinuxBackend *b, gboolean copy, SpBackendThawResult *ret)
{
    ret->epoch = b->lease.last_epoch;
    ret->n_thawed = 0;
    ret->consistent = b->lease.last_consistent;
    ret->reason = sp_thaw_reason_str(b->lease.last_reason);
    ret->held_ms = b->lease.last_held_ms;
    ret->failed_writer = copy ? g_strdup(b->failed_writer) : b->failed_writer;
}

/* A writer that crashed between Freeze and Thaw held nothing for the rest of the window: the
 * freeze is not consistent, whatever the filesystems did (#15 item 5). */
static void note_writer_left(SpLinuxBackend *b)
{
    const char *name = sp_writers_left_while_frozen(b->writers);

    if (!name)
        return;
    g_free(b->failed_writer);
    b->failed_writer = g_strdup(name);
    b->lease.last_consistent = false;
    if (b->lease.last_reason == SP_THAW_REQUESTED)
        b->lease.last_reason = SP_THAW_WRITER_FAILED;
}

static void thaw_now(SpLinuxBackend *b, SpThawReason reason, SpBackendThawResult *ret)
{
    SpThawReport report;
    int r = sp_freezer_thaw_all(&b->freezer, &report);
    g_autoptr(GError) hook_error = NULL;

    if (b->lease_timer) {
        g_source_remove(b->lease_timer);
        b->lease_timer = 0;
    }
    sp_lease_end(&b->lease, now_ms(), reason, report.n_not_frozen > 0 || report.n_failed > 0);
    g_array_set_size(b->frozen_fs, 0);
    (void)sp_state_remove(b->config->state_dir);
    sp_log_set_frozen(FALSE);
    if (r < 0)
        g_warning("failed to thaw %s: %s", report.failure.mountpoint, g_strerror(report.failure.err));
    if (report.n_not_frozen > 0)
        g_warning("%zu filesystem(s) had been thawed by someone else during freeze %" G_GINT64_FORMAT,
                  report.n_not_frozen, b->lease.last_epoch);
    g_message("thawed %zu filesystem(s) (freeze %" G_GINT64_FORMAT ", %s, held %" G_GINT64_FORMAT
              " ms, %s)", report.n_thawed, b->lease.last_epoch, sp_thaw_reason_str(reason),
              b->lease.last_held_ms, b->lease.last_consistent ? "consistent" : "not consistent");
    g_clear_pointer(&b->failed_writer, g_free);
    /* After FITHAW: a writer releasing its writes must find the disks writable. */
    if (b->writers) {
        sp_writers_thaw(b->writers, b->lease.last_epoch, sp_thaw_reason_str(reason),
                        b->lease.last_consistent && !sp_writers_left_while_frozen(b->writers));
        note_writer_left(b);
    }
    if (!sp_hooks_thaw(b->hooks, &hook_error))
        g_warning("thaw hook: %s", hook_error->message);
    last_thaw(b, FALSE, ret);
    ret->n_thawed = report.n_thawed;
}

static int backend_thaw(void *self, int64_t epoch, bool standard, SpBackendThawResult *ret,
                        SpBackendError *err)
{
    SpLinuxBackend *b = self;

    memset(ret, 0, sizeof(*ret));
    if (b->lease.frozen) {
        if (epoch != 0 && epoch != b->lease.epoch) {
            sp_backend_error_set(err, SP_CODE_EPOCH_MISMATCH,
                                 "freeze %" G_GINT64_FORMAT " is not the current "
                                 "one (%" G_GINT64_FORMAT "); not thawing another client's freeze",
                                 epoch, b->lease.epoch);
            return -1;
        }
        thaw_now(b, SP_THAW_REQUESTED, ret);
        ret->failed_writer = g_strdup(ret->failed_writer); /* the caller frees its result */
        if (b->writers)
            ret->writers = sp_writers_reports(b->writers, &ret->n_writers);
        return 0;
    }
    if (standard)
        return 0; /* qemu-ga: thawing a thawed guest returns 0 */
    /* Already thawed by the agent itself (lease, hang-up): say so, with consistent false. A
     * thaw repeated with the last epoch (a host retrying after a lost reply) gets the same
     * verdict again. */
    if (b->lease.last_valid &&
        (epoch == b->lease.last_epoch || (epoch == 0 && b->lease.last_reason != SP_THAW_REQUESTED &&
                                          b->lease.last_reason != SP_THAW_WRITER_FAILED))) {
        last_thaw(b, TRUE, ret);
        if (b->writers)
            ret->writers = sp_writers_reports(b->writers, &ret->n_writers);
        return 0;
    }
    if (epoch != 0 && epoch != b->lease.last_epoch) {
        sp_backend_error_set(err, SP_CODE_EPOCH_MISMATCH,
                             "freeze %" G_GINT64_FORMAT " is not the last one (%"
                             G_GINT64_FORMAT ")", epoch, b->lease.last_epoch);
        return -1;
    }
    sp_backend_error_set(err, SP_CODE_NOT_FROZEN, "no filesystems are frozen");
    return -1;
}

static void backend_status(void *self, SpBackendStatus *ret)
{
    SpLinuxBackend *b = self;
    gint64 now = now_ms();

    memset(ret, 0, sizeof(*ret));
    ret->frozen = b->lease.frozen;
    ret->epoch = b->lease.frozen ? b->lease.epoch : b->lease.last_epoch;
    ret->lease_ms = b->lease.lease_ms;
    ret->remaining_ms = sp_lease_remaining_ms(&b->lease, now);
    ret->held_ms = b->lease.frozen ? now - b->lease.frozen_at_ms : b->lease.last_held_ms;
    g_array_set_size(b->status_fs, 0);
    for (guint i = 0; i < b->frozen_fs->len; i++) {
        const SpFsEntry *s = &g_array_index(b->frozen_fs, SpFsEntry, i);
        SpFsEntry e = fs_entry_copy(s);
        g_array_append_val(b->status_fs, e);
    }
    ret->frozen_fs = (SpFsEntry *)(void *)b->status_fs->data;
    ret->n_frozen_fs = b->status_fs->len;
    ret->has_last_thaw = b->lease.last_valid;
    if (b->lease.last_valid)
        last_thaw(b, FALSE, &ret->last_thaw);
    sp_writer_reports_free(b->status_writers, b->n_status_writers);
    b->status_writers = NULL;
    b->n_status_writers = 0;
    if (b->writers)
        b->status_writers = sp_writers_reports(b->writers, &b->n_status_writers);
    ret->writers = b->status_writers;
    ret->n_writers = b->n_status_writers;
}

/* ---- flush ---- */

static int backend_flush(void *self, const SpFreezeRequest *req, SpBackendFlushResult *ret,
                         SpBackendError *err)
{
    SpLinuxBackend *b = self;
    SpFreezePlan *plan = NULL;
    int r;

    memset(ret, 0, sizeof(*ret));
    if (b->lease.frozen) {
        sp_backend_error_set(err, SP_CODE_ALREADY_FROZEN,
                             "filesystems are frozen (freeze %" G_GINT64_FORMAT
                             "): the freeze has flushed them", b->lease.epoch);
        return -1;
    }
    if (build_plan(b, req, &plan, err) < 0)
        return -1;
    r = sp_flush_plan(b->freezer.ops, b->freezer.userdata, plan, ret, err);
    if (r < 0)
        g_warning("flush: %s", err->desc);
    else
        g_message("flushed %zu filesystem(s) in %" G_GINT64_FORMAT " ms", ret->n_flushed, ret->ms);
    sp_plan_free(plan);
    return r;
}

/* ---- guest-get-fsinfo ---- */

static SpJson *backend_fsinfo(void *self, SpBackendError *err)
{
    SpLinuxBackend *b = self;
    g_autoptr(GError) error = NULL;
    SpJson *out = sp_fsinfo_read(b->mountinfo_path, b->sysfs_root, &error);

    if (!out)
        sp_backend_error_set(err, SP_CODE_DISCOVERY_FAILED, "%s", error->message);
    return out;
}

/* Lease tokens: the kernel's CSPRNG (blocks only before it is seeded, early at boot). */
static int backend_random(void *self, uint8_t *buf, size_t n)
{
    size_t done = 0;

    while (done < n) {
        ssize_t r = getrandom(buf + done, n - done, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        done += (size_t)r;
    }
    return 0;
}

static const SpFreezeBackendOps linux_ops = {
    .freeze = backend_freeze,
    .thaw = backend_thaw,
    .status = backend_status,
    .fsinfo = backend_fsinfo,
    .flush = backend_flush,
    .random = backend_random,
};

SpFreezeBackend sp_linux_backend_interface(SpLinuxBackend *b)
{
    SpFreezeBackend iface = {&linux_ops, b};
    return iface;
}

void sp_linux_backend_channel_closed(SpLinuxBackend *b, unsigned channel)
{
    SpBackendThawResult r;

    if (!sp_lease_hangup_thaws(&b->lease, channel))
        return;
    thaw_now(b, SP_THAW_HANGUP, &r);
    g_warning("the channel that froze (freeze %" G_GINT64_FORMAT ") hung up: thawed %zu "
              "filesystem(s); the freeze is not consistent", r.epoch, r.n_thawed);
}

void sp_linux_backend_thaw_for_shutdown(SpLinuxBackend *b)
{
    SpBackendThawResult r;

    if (!b->lease.frozen)
        return;
    thaw_now(b, SP_THAW_SHUTDOWN, &r);
}

int sp_linux_backend_recover(SpLinuxBackend *b)
{
    SpState *state = NULL;
    int r = sp_state_read(b->config->state_dir, &state), n = 0;

    if (r == -ENOENT)
        return 0;
    if (r < 0) {
        g_warning("ignoring unreadable state file %s/%s: %s", b->config->state_dir, SP_STATE_FILE,
                  g_strerror(-r));
        (void)sp_state_remove(b->config->state_dir);
        return 0;
    }
    /* Reverse freeze order, as a thaw always goes. */
    for (size_t i = state->n_fs; i > 0; i--) {
        const SpStateFs *fs = &state->fs[i - 1];
        r = sp_freezer_thaw_recorded(b->freezer.ops, b->freezer.userdata, fs->mountpoint, fs->dev);
        if (r > 0) {
            n++;
            g_warning("thawed %s, left frozen by a previous agent (pid %ld, freeze %" G_GINT64_FORMAT
                      ")", fs->mountpoint, state->pid, state->epoch);
        } else if (r < 0) {
            g_warning("cannot thaw %s left frozen by a previous agent: %s", fs->mountpoint,
                      g_strerror(-r));
        }
    }
    if (state->epoch > b->lease.epoch)
        b->lease.epoch = state->epoch;
    sp_state_free(state);
    (void)sp_state_remove(b->config->state_dir);
    return n;
}
