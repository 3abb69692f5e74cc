/* Deleting a checkpoint = merging it away, the .avhdx merge of the seed. On qcow2 chains a
 * checkpoint C is its frozen image I; the one image that depends on I (a child checkpoint's
 * image, or the VM's present overlay when C is current) is committed down into I, whoever
 * depended on that image is pointed at I, and only then is the merged file removed. Nothing
 * the present or another checkpoint reads changes content.
 *
 * Journal: intent (the plan) -> "merged:DISK" per disk -> "recorded" (the tree edit, in the same
 * SQLite transaction) -> files removed -> done. A delete is always finished, never rolled back:
 * once a commit has started, I no longer holds C's state. */
#include "op-util.h"

#include <gio/gio.h>
#include <string.h>

#include "stillpoint/channel.h"
#include "stillpoint/driver.h"
#include "stillpoint/libvirt.h"
#include "stillpoint/present.h"
#include "test-hooks.h"

#define STEP_RECORDED "recorded"

typedef struct {
    char *disk;
    char *mode;        /* "commit": top into base; "unlink": base has no dependent; "keep";
                        * "stream": several branches depend on base: base's data is copied up
                        * into each of them (the rebase list), which then rest on the parent */
    char *base;        /* the checkpoint's image */
    char *top;         /* commit: the one image that depends on base */
    int64_t child;     /* commit: checkpoint whose image top is; 0 = top is the VM's present */
    gboolean live;     /* top is in the running VM's graph: QMP block-commit */
    gboolean active;   /* ... and the VM writes to it: active commit (ready, complete) */
    char *job;         /* block job id (deterministic: a recovery finds the job again) */
    GPtrArray *rebase; /* images not in the running graph whose backing is top */
    gboolean merged;   /* journaled as merged (recovery skips it) */
    gboolean unlink_parent_overlay; /* the parent still names base as its overlay */
    char *parent_image; /* stream: the parent checkpoint's image, the targets' new backing */
    char *present;      /* stream: the VM's present overlay when the checkpoint is current */
} DelDisk;

typedef struct {
    int64_t op_id;
    int64_t cp_id;
    char *cp_name;
    int64_t parent;
    char *state;      /* a standard checkpoint's saved state, removed with it */
    char *libvirt_snapshot; /* libvirt driver: the checkpoint in libvirt's snapshot list */
    GPtrArray *disks; /* of DelDisk */
} DelPlan;

/* The plan's journal form (the keys are the journal's: keep them). */
static const SpField del_plan_fields[] = {
    SP_FIELD("checkpoint", INT, DelPlan, cp_id),
    SP_FIELD("name", STRING, DelPlan, cp_name),
    SP_FIELD("parent", INT, DelPlan, parent),
    SP_FIELD("state", OPT_STRING, DelPlan, state),
    SP_FIELD("libvirt-snapshot", OPT_STRING, DelPlan, libvirt_snapshot),
};

static const SpField del_disk_fields[] = {
    SP_FIELD("disk", STRING, DelDisk, disk),
    SP_FIELD("mode", STRING, DelDisk, mode),
    SP_FIELD("base", STRING, DelDisk, base),
    SP_FIELD("top", OPT_STRING, DelDisk, top),
    SP_FIELD("child", INT, DelDisk, child),
    SP_FIELD("live", BOOL, DelDisk, live),
    SP_FIELD("active", BOOL, DelDisk, active),
    SP_FIELD("clear-parent-overlay", BOOL, DelDisk, unlink_parent_overlay),
    SP_FIELD("parent-image", OPT_STRING, DelDisk, parent_image),
    SP_FIELD("present", OPT_STRING, DelDisk, present),
    SP_FIELD("job", OPT_STRING, DelDisk, job),
    SP_FIELD("rebase", STRINGS, DelDisk, rebase),
};

static gpointer del_disk_new(void)
{
    DelDisk *d = g_new0(DelDisk, 1);
    d->rebase = g_ptr_array_new_with_free_func(g_free);
    return d;
}

static gboolean del_disk_ok(gconstpointer disk)
{
    const DelDisk *d = disk;
    return d->disk != NULL && d->mode != NULL && d->base != NULL;
}

static const SpOpPlanForm del_form = {
    "delete plan", sizeof(DelPlan), G_STRUCT_OFFSET(DelPlan, disks), del_plan_fields,
    G_N_ELEMENTS(del_plan_fields), del_disk_fields, G_N_ELEMENTS(del_disk_fields), del_disk_new,
    del_disk_ok};

static void del_plan_free(DelPlan *p)
{
    sp_op_plan_free(&del_form, p);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DelPlan, del_plan_free)

static const SpCheckpointDisk *cp_disk(const SpCheckpoint *cp, const char *disk)
{
    for (guint i = 0; cp->disks != NULL && i < cp->disks->len; i++) {
        const SpCheckpointDisk *d = g_ptr_array_index(cp->disks, i);
        if (g_strcmp0(d->disk, disk) == 0)
            return d;
    }
    return NULL;
}

static void add_unique(GPtrArray *arr, const char *s)
{
    for (guint i = 0; i < arr->len; i++)
        if (g_strcmp0(g_ptr_array_index(arr, i), s) == 0)
            return;
    g_ptr_array_add(arr, g_strdup(s));
}

/* The images whose backing file is checkpoint cp's image of disk: its children's images and,
 * when cp is the VM's current checkpoint, the VM's present overlay. ret_child gets the
 * checkpoint owning the first one (0 for the present). */
static GPtrArray *dependents(GPtrArray *cps, const SpVm *vm, const SpCheckpoint *cp,
                             const char *disk, int64_t *ret_child)
{
    GPtrArray *deps = g_ptr_array_new_with_free_func(g_free);
    *ret_child = 0;
    for (guint i = 0; i < cps->len; i++) {
        const SpCheckpoint *k = g_ptr_array_index(cps, i);
        const SpCheckpointDisk *kd = k->parent == cp->id ? cp_disk(k, disk) : NULL;
        if (kd == NULL)
            continue;
        if (deps->len == 0)
            *ret_child = k->id;
        add_unique(deps, kd->image);
    }
    if (vm->current == cp->id) {
        const SpCheckpointDisk *d = cp_disk(cp, disk);
        if (d != NULL && d->overlay != NULL) {
            if (deps->len == 0)
                *ret_child = 0;
            add_unique(deps, d->overlay);
        }
    }
    return deps;
}

static SpCheckpoint *find_by_id(GPtrArray *cps, int64_t id)
{
    for (guint i = 0; i < cps->len; i++)
        if (((SpCheckpoint *)g_ptr_array_index(cps, i))->id == id)
            return g_ptr_array_index(cps, i);
    return NULL;
}

/* A branch point: each branch gets base's data copied up (safe qemu-img rebase offline,
 * block-stream live) and then rests on the parent's image. A root's branches would each need a
 * full copy of the disk: refused. */
static gboolean plan_stream(GPtrArray *cps, const SpVm *vm, const SpCheckpoint *cp,
                            const SpCheckpointDisk *cd, GPtrArray *deps, DelDisk *d,
                            GError **error)
{
    const SpCheckpoint *parent = cp->parent != 0 ? find_by_id(cps, cp->parent) : NULL;
    const SpCheckpointDisk *pd = parent != NULL ? cp_disk(parent, cd->disk) : NULL;
    if (pd == NULL) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "checkpoint '%s', disk %s: it is the root of %u branches, and deleting it "
                    "would copy the whole disk into each; delete all but one branch first",
                    cp->name, cd->disk, deps->len);
        return FALSE;
    }
    d->mode = g_strdup("stream");
    d->parent_image = g_strdup(pd->image);
    d->unlink_parent_overlay = g_strcmp0(pd->overlay, cd->image) == 0;
    if (vm->current == cp->id)
        d->present = g_strdup(cd->overlay);
    for (guint i = 0; i < deps->len; i++)
        add_unique(d->rebase, g_ptr_array_index(deps, i));
    return TRUE;
}

/* Where the running VM has image: in QEMU's graph (QMP), or in libvirt's chains for the libvirt
 * driver (found and active only). Not found when the VM does not run (both NULL). */
static gboolean find_live(SpQmp *qmp, SpLibvirt *lv, const char *image, SpLiveImage *li,
                          GError **error)
{
    if (lv != NULL) {
        g_autofree char *disk = NULL;
        if (!sp_libvirt_find_image(lv, image, &disk, &li->active, error))
            return FALSE;
        li->found = disk != NULL;
        return TRUE;
    }
    return qmp == NULL || sp_op_live_find(qmp, image, li, error);
}

/* A merge the VM's driver cannot follow is refused (libvirt: branches, or the image its domain
 * writes to while it is shut off). */
static gboolean merge_possible(const SpVm *vm, SpLibvirt *lv, const SpCheckpoint *cp,
                               const DelDisk *d, GError **error)
{
    const SpDriverOps *ops = sp_driver_ops_of(vm);
    return ops->merge_possible == NULL ||
           ops->merge_possible(vm, lv != NULL, cp->name, d->disk, d->mode, d->child == 0, error);
}

/* Plans one disk: which file merges into which, and what else must be re-pointed. */
static gboolean plan_disk(GPtrArray *cps, const SpVm *vm, const SpCheckpoint *cp,
                          const SpCheckpointDisk *cd, SpQmp *qmp, SpLibvirt *lv, DelDisk *d,
                          GError **error)
{
    g_autoptr(GPtrArray) deps = dependents(cps, vm, cp, cd->disk, &d->child);
    SpLiveImage li = {0};

    d->disk = g_strdup(cd->disk);
    d->base = g_strdup(cd->image);
    if (deps->len > 1)
        return plan_stream(cps, vm, cp, cd, deps, d, error);
    if (deps->len == 0) {
        /* A root checkpoint's image is the VM's own disk: never ours to remove. */
        d->mode = g_strdup(cp->parent != 0 ? "unlink" : "keep");
        if (cp->parent != 0) {
            const SpCheckpoint *parent = find_by_id(cps, cp->parent);
            const SpCheckpointDisk *pd = parent != NULL ? cp_disk(parent, cd->disk) : NULL;
            d->unlink_parent_overlay = pd != NULL && g_strcmp0(pd->overlay, cd->image) == 0;
        }
        if (!find_live(qmp, lv, cd->image, &li, error))
            return FALSE;
        if (li.found) {
            sp_live_image_clear(&li);
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_BUSY,
                        "checkpoint '%s', disk %s: the running VM still reads %s", cp->name,
                        cd->disk, cd->image);
            return FALSE;
        }
        return TRUE;
    }
    d->mode = g_strdup("commit");
    d->top = g_strdup(g_ptr_array_index(deps, 0));
    if (g_strcmp0(d->top, d->base) == 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    "checkpoint '%s', disk %s: the store names %s as both its image and the "
                    "image above it; refusing to merge a file into itself",
                    cp->name, cd->disk, d->base);
        return FALSE;
    }
    if (!find_live(qmp, lv, d->top, &li, error))
        return FALSE;
    d->live = li.found;
    d->active = li.active;
    sp_live_image_clear(&li);
    /* Whatever used top as its backing file is re-pointed at base afterwards; QEMU does that
     * itself for the image above top in the running chain, so rebase_dependents skips what is
     * live when it runs (a live plan finished offline, QEMU gone, must re-point that one too). */
    if (d->child != 0) {
        const SpCheckpoint *k = find_by_id(cps, d->child);
        g_autoptr(GPtrArray) above = dependents(cps, vm, k, cd->disk, &(int64_t){0});
        for (guint i = 0; i < above->len; i++)
            add_unique(d->rebase, g_ptr_array_index(above, i));
    }
    return TRUE;
}

/* ---- running the plan ---- */

typedef struct {
    SpStore *store;
    SpVm *vm;
    SpQmp *qmp;
    SpLibvirt *lv;    /* the libvirt driver's running domain */
    const SpOpReport *report;
    DelPlan *plan;
} DelRun;

static gboolean journal(DelRun *run, const char *step, GError **error)
{
    if (!sp_store_op_step(run->store, run->plan->op_id, step, error))
        return FALSE;
    sp_test_crash_point(step);
    return TRUE;
}

static gboolean block_commit(DelRun *run, DelDisk *d, GError **error)
{
    SpLiveImage top = {0}, base = {0};
    g_autoptr(SpJson) args = sp_json_new_object();
    g_autoptr(SpJson) ret = NULL;
    gboolean ok = FALSE;

    if (!sp_op_live_find(run->qmp, d->top, &top, error) ||
        !sp_op_live_find(run->qmp, d->base, &base, error))
        goto out;
    if (!top.found || !base.found) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    "disk %s: %s or %s is no longer in the running VM's chain", d->disk, d->top,
                    d->base);
        goto out;
    }
    sp_json_object_set_string(args, "job-id", d->job);
    sp_json_object_set_string(args, "device", top.root_node);
    sp_json_object_set_string(args, "top-node", top.node);
    sp_json_object_set_string(args, "base-node", base.node);
    /* Tests throttle the job, so that they can write while it runs. */
    if (sp_test_commit_speed() > 0)
        sp_json_object_set_int(args, "speed", sp_test_commit_speed());
    /* Kept until dismissed: a recovery can still read how it ended. */
    sp_json_object_set_bool(args, "auto-dismiss", false);
    ret = sp_qmp_execute(run->qmp, "block-commit", g_steal_pointer(&args),
                         SP_QMP_DEFAULT_TIMEOUT_MS, error);
    if (ret == NULL)
        goto out;
    sp_test_crash_point("committing");
    ok = sp_op_block_job_wait(run->qmp, d->job, run->report, d->disk, NULL, error);
out:
    sp_live_image_clear(&top);
    sp_live_image_clear(&base);
    return ok;
}

/* The overlay was added by blockdev-add (checkpoint create), so the monitor still holds it open
 * after it left the chain: close it before its file goes. */
static void release_top(DelRun *run, DelDisk *d)
{
    g_autofree char *node = NULL;
    g_autoptr(SpJson) args = sp_json_new_object();
    g_autoptr(SpJson) ret = NULL;
    g_autoptr(GError) local = NULL;
    if (!sp_op_node_for_file(run->qmp, d->top, &node, NULL))
        return; /* not open (any more) */
    sp_json_object_set_string(args, "node-name", node);
    ret = sp_qmp_execute(run->qmp, "blockdev-del", g_steal_pointer(&args),
                         SP_QMP_DEFAULT_TIMEOUT_MS, &local);
    if (ret == NULL)
        sp_op_say(run->report, "note: disk %s: node %s stays open in QEMU: %s", d->disk, node,
                  local->message);
}

/* An inner commit leaves base's new clusters (and qcow2 metadata) to QEMU's next flush, and top
 * is about to be removed: flush base now, so a host crash cannot lose what top held. QMP has no
 * flush command (QEMU 7.2); HMP's qemu-io on the node name attaches a permission-less
 * BlockBackend, which does not disturb the VM's own. An active commit flushed before it was
 * ready. */
static void flush_image(DelRun *run, const char *disk, const char *image)
{
    g_autofree char *node = NULL;
    g_autofree char *line = NULL;
    g_autoptr(SpJson) args = sp_json_new_object();
    g_autoptr(SpJson) ret = NULL;
    g_autoptr(GError) local = NULL;
    const char *out;
    if (!sp_op_node_for_file(run->qmp, image, &node, NULL))
        return;
    line = g_strdup_printf("qemu-io %s flush", node);
    sp_json_object_set_string(args, "command-line", line);
    ret = sp_qmp_execute(run->qmp, "human-monitor-command", g_steal_pointer(&args),
                         SP_QMP_DEFAULT_TIMEOUT_MS, &local);
    out = ret != NULL ? sp_json_get_string(ret) : NULL;
    if (ret == NULL || (out != NULL && out[0] != '\0'))
        sp_op_say(run->report, "note: disk %s: could not flush %s (%s); QEMU writes it back on "
                               "its next flush",
                  disk, image, ret == NULL ? local->message : out);
}

static void flush_base(DelRun *run, DelDisk *d)
{
    if (!d->active)
        flush_image(run, d->disk, d->base);
}

/* Live: resumes the job a killed run left, or finds the merge done, or starts it. */
static gboolean merge_live(DelRun *run, DelDisk *d, GError **error)
{
    SpLiveImage top = {0};
    gboolean gone = TRUE;

    if (!sp_op_block_job_wait(run->qmp, d->job, run->report, d->disk, &gone, error))
        return FALSE;
    if (!sp_op_live_find(run->qmp, d->top, &top, error))
        return FALSE;
    if (top.found) {
        sp_live_image_clear(&top);
        sp_op_say(run->report, "disk %s: merging %s into %s (live%s)", d->disk, d->top, d->base,
                  d->active ? ", active layer" : "");
        if (!block_commit(run, d, error))
            return FALSE;
    }
    /* merged (by this run's job, or the killed run's) */
    flush_base(run, d);
    release_top(run, d);
    return TRUE;
}

static void libvirt_progress(const char *disk, guint percent, gpointer user_data)
{
    sp_op_say(user_data, "disk %s: merged %u%%", disk, percent);
}

/* libvirt's block commit (and pivot): libvirt's chain, and so its definition, follow. A job a
 * killed run left is found and finished first. */
static gboolean merge_libvirt(DelRun *run, DelDisk *d, GError **error)
{
    sp_op_say(run->report, "disk %s: merging %s into %s (live, through libvirt%s)", d->disk,
              d->top, d->base, d->active ? ", active layer" : "");
    return sp_libvirt_block_commit(run->lv, d->disk, d->base, d->top, d->active,
                                   run->report != NULL ? libvirt_progress : NULL,
                                   (gpointer)run->report, error);
}

/* An image of this VM with its recorded format, its chain checked (sp_op_chain_check). */
static char *checked_format(DelRun *run, const char *image, GError **error)
{
    g_autofree char *fmt = sp_op_format_of(run->store, run->vm, image, error);
    SpImg img = {.path = image, .format = fmt};
    if (fmt == NULL || !sp_op_chain_check(run->store, run->vm, &img, error))
        return NULL;
    return g_steal_pointer(&fmt);
}

static gboolean merge_offline(DelRun *run, DelDisk *d, GError **error)
{
    g_autofree char *top_fmt = checked_format(run, d->top, error);
    g_autofree char *base_fmt = top_fmt != NULL ? checked_format(run, d->base, error) : NULL;
    SpImg top = {.path = d->top, .format = top_fmt}, base = {.path = d->base, .format = base_fmt};
    g_auto(GStrv) argv = NULL;
    if (base_fmt == NULL || (argv = sp_img_argv_commit(&top, &base, error)) == NULL) {
        g_prefix_error(error, "disk %s: ", d->disk);
        return FALSE;
    }
    sp_op_say(run->report, "disk %s: merging %s into %s (offline)", d->disk, d->top, d->base);
    /* -d: top stays intact, so a run killed mid-copy can simply copy again. */
    return sp_op_qemu_img(run->report, d->disk, (const char *const *)argv, error);
}

static gboolean rebase_dependents(DelRun *run, DelDisk *d, GError **error)
{
    g_autofree char *fmt = NULL;
    if (d->rebase->len == 0)
        return TRUE;
    /* -F from the store: base's format as recorded, never read from base's bytes. */
    if ((fmt = sp_op_format_of(run->store, run->vm, d->base, error)) == NULL)
        return FALSE;
    for (guint i = 0; i < d->rebase->len; i++) {
        const char *target = g_ptr_array_index(d->rebase, i);
        g_autofree char *target_fmt = NULL;
        SpImg base = {.path = d->base, .format = fmt}, img = {.path = target};
        g_auto(GStrv) argv = NULL;
        SpLiveImage li = {0};
        gboolean live;
        if (!find_live(run->qmp, run->lv, target, &li, error))
            return FALSE;
        live = li.found;
        sp_live_image_clear(&li);
        if (live)
            continue; /* in the running chain: QEMU's commit re-pointed it */
        if ((target_fmt = sp_op_format_of(run->store, run->vm, target, error)) == NULL)
            return FALSE;
        img.format = target_fmt;
        /* -u: only the header changes; base now holds everything top held. */
        if ((argv = sp_img_argv_rebase(&img, &base, FALSE, error)) == NULL ||
            !sp_op_qemu_img(NULL, d->disk, (const char *const *)argv, error))
            return FALSE;
    }
    return TRUE;
}

static gboolean stream_live(DelRun *run, DelDisk *d, const char *target, guint idx,
                            GError **error)
{
    g_autofree char *job = g_strdup_printf("%s-s%u", d->job, idx);
    g_autofree char *target_node = NULL, *parent_node = NULL;
    g_autoptr(SpJson) args = sp_json_new_object();
    g_autoptr(SpJson) ret = NULL;
    SpLiveImage base = {0};

    if (!sp_op_block_job_wait(run->qmp, job, run->report, d->disk, NULL, error) ||
        !sp_op_live_find(run->qmp, d->base, &base, error))
        return FALSE;
    if (!base.found)
        return TRUE; /* streamed already: base left the running chain */
    sp_live_image_clear(&base);
    if (!sp_op_node_for_file(run->qmp, target, &target_node, error) ||
        !sp_op_node_for_file(run->qmp, d->parent_image, &parent_node, error))
        return FALSE;
    sp_op_say(run->report, "disk %s: copying %s up into %s (live)", d->disk, d->base, target);
    sp_json_object_set_string(args, "job-id", job);
    sp_json_object_set_string(args, "device", target_node);
    sp_json_object_set_string(args, "base-node", parent_node);
    sp_json_object_set_bool(args, "auto-dismiss", false);
    ret = sp_qmp_execute(run->qmp, "block-stream", g_steal_pointer(&args),
                         SP_QMP_DEFAULT_TIMEOUT_MS, error);
    if (ret == NULL)
        return FALSE;
    sp_test_crash_point("streaming");
    if (!sp_op_block_job_wait(run->qmp, job, run->report, d->disk, NULL, error))
        return FALSE;
    /* What was copied up must be durable before base goes. */
    flush_image(run, d->disk, target);
    return TRUE;
}

/* Every branch gets base's data and the parent's image as its backing file. */
static gboolean stream_disk(DelRun *run, DelDisk *d, GError **error)
{
    g_autofree char *fmt = checked_format(run, d->parent_image, error);
    if (fmt == NULL)
        return FALSE;
    /* A job a killed run left is waited for and dismissed first: QEMU 7.2 crashed in
     * query-named-block-nodes while a concluded block-stream job was not yet dismissed. */
    for (guint i = 0; run->qmp != NULL && i < d->rebase->len; i++) {
        g_autofree char *job = g_strdup_printf("%s-s%u", d->job, i);
        if (!sp_op_block_job_wait(run->qmp, job, run->report, d->disk, NULL, error))
            return FALSE;
    }
    for (guint i = 0; i < d->rebase->len; i++) {
        const char *target = g_ptr_array_index(d->rebase, i);
        SpLiveImage li = {0};
        if (run->qmp != NULL && !sp_op_live_find(run->qmp, target, &li, error))
            return FALSE;
        if (li.found) {
            sp_live_image_clear(&li);
            if (!stream_live(run, d, target, i, error))
                return FALSE;
            continue;
        }
        {
            g_autofree char *target_fmt = checked_format(run, target, error);
            SpImg img = {.path = target, .format = target_fmt};
            SpImg parent = {.path = d->parent_image, .format = fmt};
            g_auto(GStrv) argv = NULL;
            /* Safe mode (no -u): what target shows stays the same, base's part is copied in. */
            if (target_fmt == NULL ||
                (argv = sp_img_argv_rebase(&img, &parent, TRUE, error)) == NULL)
                return FALSE;
            sp_op_say(run->report, "disk %s: copying %s up into %s (offline)", d->disk, d->base,
                      target);
            if (!sp_op_qemu_img(run->report, d->disk, (const char *const *)argv, error))
                return FALSE;
        }
    }
    return TRUE;
}

static gboolean merge_disk(DelRun *run, DelDisk *d, GError **error)
{
    g_autofree char *step = g_strdup_printf("merged:%s", d->disk);
    if (d->merged)
        return TRUE;
    /* Checkpoint images are read-only files: what this merge writes into (base, or the
     * branches and dependents) gets its owner's write bit back for a QEMU that is not root;
     * sp_present_sync takes it away again from what stays a checkpoint's image. */
    sp_present_make_writable(d->base);
    for (guint i = 0; i < d->rebase->len; i++)
        sp_present_make_writable(g_ptr_array_index(d->rebase, i));
    if (strcmp(d->mode, "stream") == 0)
        return stream_disk(run, d, error) && journal(run, step, error);
    if (strcmp(d->mode, "commit") != 0)
        return TRUE;
    if (d->live && run->lv != NULL) {
        if (!merge_libvirt(run, d, error))
            return FALSE;
    } else if (d->live && run->qmp != NULL) {
        if (!merge_live(run, d, error))
            return FALSE;
    } else if (d->live && d->active) {
        /* Planned live, QEMU gone now: the VM may have written to base after the pivot, and a
         * second copy of top would overwrite that. Only a human can tell. */
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    "disk %s: the live merge of %s into %s was interrupted and QEMU is no longer "
                    "running; check with 'qemu-img info --backing-chain' which image holds the "
                    "VM's latest data before going on",
                    d->disk, d->top, d->base);
        return FALSE;
    } else if (!merge_offline(run, d, error)) {
        return FALSE;
    }
    if (!rebase_dependents(run, d, error))
        return FALSE;
    return journal(run, step, error);
}

static gboolean record(DelRun *run, GError **error)
{
    DelPlan *p = run->plan;
    if (!sp_store_transaction_begin(run->store, error))
        return FALSE;
    for (guint i = 0; i < p->disks->len; i++) {
        DelDisk *d = g_ptr_array_index(p->disks, i);
        gboolean ok = TRUE;
        if (d->unlink_parent_overlay &&
            !sp_store_checkpoint_set_disk_overlay(run->store, p->parent, d->disk, NULL, NULL,
                                                  error))
            goto fail;
        if (strcmp(d->mode, "stream") == 0 && d->present != NULL && p->parent != 0 &&
            !sp_store_checkpoint_set_disk_overlay(run->store, p->parent, d->disk, d->present,
                                                  NULL, error))
            goto fail;
        if (strcmp(d->mode, "commit") != 0)
            continue;
        if (d->child != 0)
            ok = sp_store_checkpoint_set_disk_image(run->store, d->child, d->disk, d->base, error);
        else if (p->parent != 0)
            ok = sp_store_checkpoint_set_disk_overlay(run->store, p->parent, d->disk, d->base,
                                                      NULL, error);
        if (!ok)
            goto fail;
    }
    if (!sp_store_checkpoint_remove(run->store, p->cp_id, error) ||
        !sp_store_op_step(run->store, p->op_id, STEP_RECORDED, error))
        goto fail;
    if (!sp_store_transaction_commit(run->store, error))
        return FALSE;
    sp_test_crash_point(STEP_RECORDED);
    return TRUE;
fail:
    sp_store_transaction_rollback(run->store);
    return FALSE;
}

/* Is path still named by any checkpoint of the VM (as image or overlay)? */
static gboolean still_referenced(DelRun *run, const char *path, gboolean *ret, GError **error)
{
    g_autoptr(GPtrArray) cps = sp_store_checkpoint_list(run->store, run->vm->id, error);
    *ret = FALSE;
    if (cps == NULL)
        return FALSE;
    for (guint i = 0; i < cps->len; i++) {
        SpCheckpoint *cp = g_ptr_array_index(cps, i);
        for (guint j = 0; j < cp->disks->len; j++) {
            SpCheckpointDisk *cd = g_ptr_array_index(cp->disks, j);
            if (g_strcmp0(cd->image, path) == 0 || g_strcmp0(cd->overlay, path) == 0)
                *ret = TRUE;
        }
    }
    return TRUE;
}

/* libvirt's snapshot list follows the tree: the merged checkpoint leaves it (its children move
 * up to its parent there too). */
static gboolean forget_libvirt_snapshot(DelRun *run, GError **error)
{
    g_autoptr(SpLibvirt) lv = NULL;
    gboolean found = FALSE;
    if (run->plan->libvirt_snapshot == NULL)
        return TRUE;
    if ((lv = sp_libvirt_open(run->vm->libvirt_uri, run->vm->libvirt_domain, error)) == NULL ||
        !sp_libvirt_snapshot_forget(lv, run->plan->libvirt_snapshot, &found, error))
        return FALSE;
    if (!found)
        sp_op_say(run->report, "note: libvirt lists no snapshot '%s' (already removed)",
                  run->plan->libvirt_snapshot);
    return TRUE;
}

static gboolean remove_files(DelRun *run, GError **error)
{
    g_autoptr(GHashTable) bases = g_hash_table_new(g_str_hash, g_str_equal);
    /* The VM's stable paths follow the present before a file they may name goes. */
    for (guint i = 0; i < run->plan->disks->len; i++) {
        DelDisk *d = g_ptr_array_index(run->plan->disks, i);
        if (strcmp(d->mode, "commit") == 0 && d->child == 0)
            g_hash_table_insert(bases, d->disk, d->base);
    }
    if (!sp_present_sync(run->store, run->vm, bases, error))
        return FALSE;
    for (guint i = 0; i < run->plan->disks->len; i++) {
        DelDisk *d = g_ptr_array_index(run->plan->disks, i);
        const char *victim = strcmp(d->mode, "commit") == 0   ? d->top
                             : strcmp(d->mode, "unlink") == 0 ? d->base
                             : strcmp(d->mode, "stream") == 0 ? d->base
                                                              : NULL;
        gboolean referenced = FALSE;
        if (victim == NULL)
            continue;
        if (!still_referenced(run, victim, &referenced, error))
            return FALSE;
        if (referenced) {
            sp_op_say(run->report, "note: disk %s: %s is still referenced; kept", d->disk,
                      victim);
            continue;
        }
        if (!sp_op_unlink(victim, error))
            return FALSE;
    }
    if (run->plan->state != NULL && !sp_op_unlink(run->plan->state, error))
        return FALSE;
    if (!forget_libvirt_snapshot(run, error))
        return FALSE;
    return sp_store_op_finish(run->store, run->plan->op_id, SP_OP_DONE, error);
}

static gboolean run_plan(DelRun *run, gboolean recorded, GError **error)
{
    if (!recorded) {
        for (guint i = 0; i < run->plan->disks->len; i++) {
            DelDisk *d = g_ptr_array_index(run->plan->disks, i);
            if (!merge_disk(run, d, error)) {
                g_prefix_error(error, "deleting checkpoint '%s': ", run->plan->cp_name);
                return FALSE;
            }
        }
        if (!record(run, error))
            return FALSE;
    }
    return remove_files(run, error);
}

static DelPlan *make_plan(SpStore *store, SpVm *vm, SpQmp *qmp, SpLibvirt *lv,
                          const SpCheckpoint *cp, GError **error)
{
    g_autoptr(GPtrArray) cps = sp_store_checkpoint_list(store, vm->id, error);
    g_autoptr(DelPlan) p = sp_op_plan_new(&del_form);
    const SpDriverOps *ops = sp_driver_ops_of(vm);
    if (cps == NULL)
        return NULL;
    p->cp_id = cp->id;
    p->cp_name = g_strdup(cp->name);
    p->parent = cp->parent;
    p->state = g_strdup(cp->state);
    for (guint i = 0; i < cp->disks->len; i++) {
        DelDisk *d = del_disk_new();
        g_ptr_array_add(p->disks, d);
        if (!plan_disk(cps, vm, cp, g_ptr_array_index(cp->disks, i), qmp, lv, d, error) ||
            !merge_possible(vm, lv, cp, d, error))
            return NULL;
    }
    if (ops->snapshot_find != NULL &&
        !ops->snapshot_find(vm, cp->name, &p->libvirt_snapshot, error))
        return NULL;
    return g_steal_pointer(&p);
}

/* Every image the plan opens, checked before the journal: refused, the delete is not pending. */
static gboolean plan_paths_unchanged(SpStore *store, const SpVm *vm, const DelPlan *plan,
                                     GError **error)
{
    for (guint i = 0; i < plan->disks->len; i++) {
        const DelDisk *d = g_ptr_array_index(plan->disks, i);
        if (!sp_op_image_unchanged(store, vm, d->base, error) ||
            !sp_op_image_unchanged(store, vm, d->top, error) ||
            !sp_op_image_unchanged(store, vm, d->parent_image, error) ||
            !sp_op_image_unchanged(store, vm, d->present, error))
            return FALSE;
        for (guint j = 0; d->rebase != NULL && j < d->rebase->len; j++)
            if (!sp_op_image_unchanged(store, vm, g_ptr_array_index(d->rebase, j), error))
                return FALSE;
    }
    return TRUE;
}

static gboolean delete_one(SpStore *store, SpVm *vm, SpQmp *qmp, SpLibvirt *lv, int64_t cp_id,
                           const SpOpReport *report, GError **error)
{
    g_autofree char *ref = g_strdup_printf("#%" G_GINT64_FORMAT, cp_id);
    g_autoptr(SpCheckpoint) cp = NULL;
    g_autoptr(SpVm) fresh = sp_store_vm_get(store, vm->name, error);
    g_autoptr(DelPlan) plan = NULL;
    g_autofree char *payload = NULL;
    DelRun run = {.store = store, .vm = fresh, .qmp = qmp, .lv = lv, .report = report};

    if (fresh == NULL || (cp = sp_op_find_checkpoint(store, fresh, ref, error)) == NULL)
        return FALSE;
    if ((plan = make_plan(store, fresh, qmp, lv, cp, error)) == NULL)
        return FALSE;
    for (guint i = 0; i < plan->disks->len; i++) {
        DelDisk *d = g_ptr_array_index(plan->disks, i);
        if (strcmp(d->mode, "commit") == 0 || strcmp(d->mode, "stream") == 0)
            d->job = g_strdup_printf("sp-del-%" G_GINT64_FORMAT "-%u", cp->id, i);
    }
    if (!plan_paths_unchanged(store, fresh, plan, error)) {
        g_prefix_error(error, "deleting checkpoint '%s': ", cp->name);
        return FALSE;
    }
    payload = sp_op_plan_write(&del_form, plan);
    if (!sp_store_op_begin(store, fresh->id, "delete", payload, &plan->op_id, error))
        return FALSE;
    sp_test_crash_point("planned");
    sp_op_say(report, "deleting checkpoint '%s' (#%" G_GINT64_FORMAT ")%s", cp->name, cp->id,
              qmp != NULL || lv != NULL ? " while the VM runs" : "");
    run.plan = plan;
    return run_plan(&run, FALSE, error);
}

/* Descendants of id, leaves first. */
static void collect_post_order(GPtrArray *cps, int64_t id, GArray *out)
{
    for (guint i = 0; i < cps->len; i++) {
        SpCheckpoint *k = g_ptr_array_index(cps, i);
        if (k->parent == id)
            collect_post_order(cps, k->id, out);
    }
    g_array_append_val(out, id);
}

/* A hook VM's checkpoint lives in the hook's storage: the hook deletes it (STILLPOINT_ACTION=
 * delete), then the record goes. No journal: a run stopped in between leaves the record, and
 * the next delete asks the hook again (which succeeds when the snapshot is already gone). */
static gboolean delete_by_hook(SpStore *store, SpVm *vm, int64_t cp_id, const SpOpReport *report,
                               GError **error)
{
    g_autofree char *ref = g_strdup_printf("#%" G_GINT64_FORMAT, cp_id);
    g_autoptr(SpCheckpoint) cp = sp_op_find_checkpoint(store, vm, ref, error);
    if (cp == NULL)
        return FALSE;
    sp_op_say(report, "deleting checkpoint '%s' (#%" G_GINT64_FORMAT ") by the VM's hook",
              cp->name, cp->id);
    if (!sp_driver_ops_of(vm)->delete_snapshot(vm, cp, error)) {
        g_prefix_error(error, "checkpoint '%s' is kept: ", cp->name);
        return FALSE;
    }
    if (!sp_store_transaction_begin(store, error))
        return FALSE;
    if (!sp_store_checkpoint_remove(store, cp->id, error)) {
        sp_store_transaction_rollback(store);
        return FALSE;
    }
    return sp_store_transaction_commit(store, error);
}

gboolean sp_op_delete(SpStore *store, SpVm *vm, const char *ref, gboolean subtree,
                      const SpOpReport *report, GError **error)
{
    g_autoptr(SpCheckpoint) cp = sp_op_find_checkpoint(store, vm, ref, error);
    g_autoptr(GPtrArray) cps = NULL;
    g_autoptr(GArray) order = g_array_new(FALSE, FALSE, sizeof(int64_t));
    g_autoptr(SpQmp) qmp = NULL;
    g_autoptr(SpLibvirt) lv = NULL;
    gboolean hook = sp_driver_ops_of(vm)->delete_snapshot != NULL;

    if (cp == NULL || (cps = sp_store_checkpoint_list(store, vm->id, error)) == NULL)
        return FALSE;
    if (subtree)
        collect_post_order(cps, cp->id, order);
    else
        g_array_append_val(order, cp->id);
    for (guint i = 0; hook && i < order->len; i++) {
        if (!delete_by_hook(store, vm, g_array_index(order, int64_t, i), report, error))
            return FALSE;
    }
    if (hook)
        return TRUE;
    if (!sp_op_connect_qmp_if_running(vm, &qmp, error) ||
        !sp_libvirt_open_if_running(vm, &lv, error))
        return FALSE;
    for (guint i = 0; i < order->len; i++) {
        if (!delete_one(store, vm, qmp, lv, g_array_index(order, int64_t, i), report, error))
            return FALSE;
    }
    return TRUE;
}

gboolean sp_op_recover_delete(SpStore *store, SpVm *vm, SpQmp *qmp, SpOp *op,
                              const SpOpReport *report, GError **error)
{
    g_autoptr(DelPlan) plan = sp_op_plan_read(&del_form, op->payload, error);
    g_autoptr(SpLibvirt) lv = NULL;
    DelRun run = {.store = store, .vm = vm, .qmp = qmp, .report = report};
    if (plan == NULL || !sp_libvirt_open_if_running(vm, &lv, error))
        return FALSE;
    run.lv = lv;
    plan->op_id = op->id;
    run.plan = plan;
    sp_op_say(report, "recovery: finishing the deletion of checkpoint '%s' (step %s)",
              plan->cp_name, op->step);
    if (g_strcmp0(op->step, STEP_RECORDED) == 0)
        return remove_files(&run, error);
    for (guint i = 0; i < plan->disks->len; i++) {
        DelDisk *d = g_ptr_array_index(plan->disks, i);
        g_autofree char *step = g_strdup_printf("merged:%s", d->disk);
        /* Disks journaled as merged before this one are done; redoing an offline commit of an
         * intact top is harmless, and a live one is found done or resumed. */
        if (g_strcmp0(op->step, step) == 0) {
            for (guint j = 0; j <= i; j++)
                ((DelDisk *)g_ptr_array_index(plan->disks, j))->merged = TRUE;
        }
    }
    if (!run_plan(&run, FALSE, error))
        return FALSE;
    return TRUE;
}
