/* The coordinator: sequences a checkpoint (prepare → freeze → one transaction → thaw → record)
 * with every step journaled, and recovers operations a crash interrupted. Thaw always happens
 * once a freeze was asked for, whatever failed after it. */
#include "stillpoint/coordinator.h"
#include "op-util.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <string.h>

#include "stillpoint/agent.h"
#include "stillpoint/checkpoint-type.h"
#include "stillpoint/driver.h"
#include "stillpoint/ops.h"
#include "stillpoint/present.h"
#include "stillpoint/qmp.h"
#include "stillpoint/standard.h"
#include "stillpoint/verdict.h"
#include "test-hooks.h"

/* Journal steps, in order. "freezing" is written before the freeze is sent: from then on a
 * recovery must make sure the guest is thawed. */
#define STEP_PREPARED "prepared"
#define STEP_FREEZING "freezing"
#define STEP_FROZEN "frozen"
#define STEP_SNAPSHOTTED "snapshotted"
#define STEP_THAWED_CONSISTENT "thawed-consistent"
#define STEP_THAWED_CRASH "thawed-crash"
/* Standard checkpoints: the VM is stopped from "stopping" until it is resumed. */
#define STEP_STOPPING "stopping"
#define STEP_STOPPED "stopped"
#define STEP_STATE_SAVED "state-saved"

typedef struct {
    SpStore *store;
    SpVm *vm;
    SpProgressFn progress;
    gpointer user_data;
    SpQmp *qmp;       /* NULL for a hook VM without QMP */
    SpDriver *driver;
    SpAgent *agent;   /* NULL when not connected */
    SpSnapshotPlan *plan;
    SpQuiescePolicy policy; /* what happens when the guest cannot be quiesced */
    gboolean freeze_sent;
    SpFreezeResult freeze;
    /* What the agent that froze is, for the verdict (the agent may be gone by then). */
    gboolean stillpoint;
    char *backend;
} CreateRun;

static void say(CreateRun *run, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void say(CreateRun *run, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sp_progress_vsay(run->progress, run->user_data, fmt, ap);
    va_end(ap);
}

char *sp_checkpoint_default_name(const char *vm_name, GDateTime *when)
{
    g_autofree char *stamp = g_date_time_format(when, "%m/%d/%Y - %H:%M:%S");
    g_autofree char *name = g_strdup_printf("%s (%s)", vm_name, stamp);
    /* VM names are at most 64 characters, so this stays under 100. */
    return g_steal_pointer(&name);
}

guint sp_coordinator_lease_for_ms(guint snapshot_ms)
{
    /* The window holds the snapshot (for QMP one transaction, opening nothing: overlays are
     * pre-opened) and the thaw round trip; a slow TCG guest and a busy host get generous slack,
     * a dead host does not. */
    return 15000 + snapshot_ms;
}

guint sp_coordinator_lease_ms(guint n_disks)
{
    return sp_coordinator_lease_for_ms(SP_DRIVER_SNAPSHOT_MS_PER_DISK * MAX(n_disks, 1));
}

/* (A freeze around a caller's own work, sp_coordinator_quiesced, has no plan: its caller keeps
 * the journal.) */
static gboolean journal_step(CreateRun *run, const char *step, GError **error)
{
    if (run->plan != NULL && !sp_store_op_step(run->store, run->plan->op_id, step, error))
        return FALSE;
    sp_test_crash_point(step);
    return TRUE;
}

/* Steps taken while the guest is frozen: every millisecond there stalls its applications. */
static gboolean journal_step_frozen(CreateRun *run, const char *step, GError **error)
{
    if (run->plan != NULL &&
        !sp_store_op_step_in_window(run->store, run->plan->op_id, step, error))
        return FALSE;
    sp_test_crash_point(step);
    return TRUE;
}

/* Thaw after a freeze was asked for. When the freeze call itself failed (a timeout), the guest
 * may be frozen anyway: ask its status and thaw through the standard command. */
static gboolean thaw_guest(CreateRun *run, gboolean freeze_ok, SpThawResult *ret, GError **error)
{
    g_autofree char *status = NULL;
    g_autoptr(SpJson) reply = NULL;
    SpThawResult r = {.held_ms = -1};

    if (freeze_ok) {
        say(run, "thawing the guest");
        return sp_agent_thaw(run->agent, &run->freeze, ret, error);
    }
    status = sp_agent_fsfreeze_status(run->agent, error);
    if (status == NULL)
        return FALSE;
    if (g_strcmp0(status, "frozen") == 0) {
        say(run, "the guest is frozen after a failed freeze: thawing it");
        reply = sp_agent_execute(run->agent, "guest-fsfreeze-thaw", NULL,
                                 SP_AGENT_THAW_TIMEOUT_MS, error);
        if (reply == NULL)
            return FALSE;
    }
    *ret = r;
    return TRUE;
}

/* Undo prepare and close the journal entry as rolled back; the original error stays the one
 * reported, cleanup trouble is added to it. */
static void roll_back(CreateRun *run, GError **error)
{
    g_autoptr(GError) local = NULL;
    if (!run->driver->ops->abort(run->driver, run->plan, &local)) {
        g_prefix_error(error,
                       "(cleanup failed too: %s; the journal keeps operation %" G_GINT64_FORMAT
                       " for the next run) ",
                       local->message, run->plan->op_id);
        return;
    }
    if (run->plan->state_file != NULL)
        g_unlink(run->plan->state_file);
    if (!sp_store_op_finish(run->store, run->plan->op_id, SP_OP_ROLLED_BACK, &local))
        g_prefix_error(error, "(journal: %s) ", local->message);
}

static gboolean connect_agent(CreateRun *run, GError **error)
{
    g_autofree char *where = sp_agent_describe_vm(run->vm);
    say(run, "connecting to the guest agent %s", where);
    run->agent = sp_agent_connect_vm(run->vm, SP_AGENT_SYNC_TIMEOUT_MS, error);
    if (run->agent == NULL)
        return FALSE;
    say(run, "guest agent: %s", sp_agent_is_stillpoint(run->agent) ? "stillpoint (leased freeze)"
                                                                   : "qemu-ga (standard fsfreeze)");
    run->stillpoint = sp_agent_is_stillpoint(run->agent);
    g_free(run->backend);
    run->backend = g_strdup(sp_agent_backend(run->agent));
    return TRUE;
}

/* With an agent that has stillpoint-flush: have it syncfs the filesystems now, while the guest
 * still runs (the overlays are already prepared), so that the syncfs inside stillpoint-freeze,
 * and with it the frozen window, has little left to write. Only a warning when it fails: the
 * freeze flushes anyway. */
static void flush_guest(CreateRun *run)
{
    g_autoptr(GError) local = NULL;
    guint flushed = 0;

    if (!sp_agent_has_command(run->agent, "stillpoint-flush"))
        return;
    if (sp_agent_flush(run->agent, &flushed, &local))
        say(run, "flushed %u filesystem(s) before the freeze", flushed);
    else
        say(run, "WARNING: flushing before the freeze failed (%s); the freeze flushes anyway",
            local->message);
}

/* Freeze the guest. FALSE with error when the guest could not be quiesced. */
static gboolean freeze_guest(CreateRun *run, guint lease_ms, GError **error)
{
    if (!connect_agent(run, error))
        return FALSE;
    flush_guest(run);
    if (!journal_step(run, STEP_FREEZING, error))
        return FALSE;
    run->freeze_sent = TRUE;
    say(run, "freezing the guest's filesystems (lease %u ms)", lease_ms);
    if (!sp_agent_freeze(run->agent, lease_ms, &run->freeze, error))
        return FALSE;
    if (run->freeze.frozen == 0) {
        g_set_error(error, SP_AGENT_ERROR, SP_AGENT_ERROR_COMMAND,
                    "the guest agent froze no filesystem");
        return FALSE;
    }
    if (!journal_step_frozen(run, STEP_FROZEN, error))
        return FALSE;
    if (run->freeze.lease_ms > 0 && run->freeze.lease_ms < lease_ms)
        say(run, "WARNING: the guest agent granted a lease of %" G_GINT64_FORMAT " ms, less than "
                 "the %u ms asked: the snapshot must finish sooner",
            run->freeze.lease_ms, lease_ms);
    return TRUE;
}

/* A standard checkpoint (asked for, or the fallback) saves its state next to its first overlay.
 * Where the driver cannot make one, production's own fallback is none. */
static gboolean plan_state_file(CreateRun *run, const SpCreateOptions *opts, GError **error)
{
    SpPlanDisk *pd0 = run->plan->disks->len > 0 ? g_ptr_array_index(run->plan->disks, 0) : NULL;
    gboolean possible = pd0 != NULL && pd0->overlay != NULL &&
                        (run->qmp != NULL || run->driver->ops->saves_state);

    if (opts->crash_only || (!opts->standard && run->policy != SP_QUIESCE_STANDARD))
        return TRUE;
    if (!possible && !opts->standard && opts->fallback_if_possible) {
        run->policy = SP_QUIESCE_FAIL;
        return TRUE;
    }
    if (!possible) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "VM '%s': standard checkpoints need the qemu or the libvirt driver",
                    run->vm->name);
        return FALSE;
    }
    run->plan->state_file = g_strdup_printf("%.*s.vmstate",
                                            (int)(strlen(pd0->overlay) - strlen(".qcow2")),
                                            pd0->overlay);
    return TRUE;
}

static gboolean plan_create(CreateRun *run, const SpCreateOptions *opts, GError **error)
{
    g_autoptr(GDateTime) now = g_date_time_new_now_local();
    g_autofree char *name = opts->name != NULL ? g_strdup(opts->name)
                                               : sp_checkpoint_default_name(run->vm->name, now);
    g_autofree char *payload = NULL;

    if (!sp_checkpoint_name_valid(name, error))
        return FALSE;
    run->plan = sp_snapshot_plan_new(run->vm->name, name);
    run->plan->bitmap_add = opts->bitmap_add;
    run->plan->bitmap_disable = opts->bitmap_disable;
    run->plan->type = g_strdup(opts->crash_only ? "crash" : opts->standard ? "standard"
                                                                           : "production");
    run->plan->requested = g_strdup(opts->requested != NULL ? opts->requested : run->plan->type);
    run->plan->origin = g_strdup(opts->origin != NULL ? opts->origin : SP_ORIGIN_USER);
    run->plan->made_by = opts->made_by != NULL ? g_strdup(opts->made_by)
                                               : sp_checkpoint_made_by_self();
    run->policy = opts->on_quiesce_failure;
    if (!run->driver->ops->plan(run->driver, run->plan, run->vm->overlay_dir, error))
        return FALSE;
    if (!plan_state_file(run, opts, error))
        return FALSE;
    /* The chain's formats and identities checked (and recorded) before anything is journaled
     * or frozen: an image swapped outside stillpoint is refused now, not after the snapshot,
     * when the journal could only record it again and again. */
    if (!sp_plan_record_formats(run->store, run->vm->id, run->plan, error))
        return FALSE;
    payload = sp_snapshot_plan_to_json(run->plan);
    /* Intent before any image is touched: a crash from here on is found by recovery. */
    if (!sp_store_op_begin(run->store, run->vm->id, "create", payload, &run->plan->op_id, error))
        return FALSE;
    sp_test_crash_point("planned");
    return TRUE;
}

static gboolean thaw_by_new_connection(CreateRun *run, gboolean frozen, SpThawResult *ret);
static gboolean recover(SpStore *store, SpVm *vm, gboolean check, guint *ret_recovered,
                        SpProgressFn progress, gpointer user_data, GError **error);

/* How long the work inside the window may take: the lease the agent granted, which may be less
 * than asked (a Windows guest's hold limit), less the thaw's margin; with qemu-ga there is no
 * lease, and the asked one bounds the window anyway. */
static guint window_ms(const CreateRun *run, gboolean frozen, guint lease_ms)
{
    if (frozen && run->freeze.lease_ms > 0 && run->freeze.lease_ms < lease_ms)
        lease_ms = (guint)run->freeze.lease_ms;
    return lease_ms > SP_COORDINATOR_THAW_MARGIN_MS + 1000
               ? lease_ms - SP_COORDINATOR_THAW_MARGIN_MS
               : lease_ms;
}

/* The verdict on a freeze that was made (verdict.h); thaw NULL when its verdict was lost. A
 * crash-consistent one gets its reason into the plan, for the record, and on the terminal. disks:
 * of SpPlanDisk; NULL for every disk of the VM. */
static gboolean judge(CreateRun *run, const SpThawResult *thaw, const GPtrArray *disks)
{
    SpVerdictInput in = {.stillpoint = run->stillpoint, .backend = run->backend,
                         .freeze = &run->freeze, .thaw = thaw, .disks = disks};
    g_autofree char *why = sp_verdict(&in);

    if (why == NULL)
        return TRUE;
    say(run, "WARNING: crash-consistent, not application-consistent: %s", why);
    if (run->plan != NULL && run->plan->reason == NULL)
        run->plan->reason = g_steal_pointer(&why);
    return FALSE;
}

/* Inside the frozen window: the transaction, then the thaw, whatever happened. On failure,
 * *ret_taken says whether the snapshot took effect anyway (then it must not be rolled back). */
static gboolean snapshot_and_thaw(CreateRun *run, gboolean frozen, guint lease_ms,
                                  gboolean *ret_consistent, gboolean *ret_taken, GError **error)
{
    g_autoptr(GError) snap_error = NULL;
    g_autoptr(GError) thaw_error = NULL;
    SpThawResult thaw = {0};
    guint timeout_ms = window_ms(run, frozen, lease_ms);
    gboolean snapped;

    if (run->driver->ops->one_transaction)
        say(run, "snapshotting %u disk(s) in one transaction", run->plan->disks->len);
    else
        say(run, "taking the snapshot through the %s driver", run->driver->ops->name);
    snapped = run->driver->ops->snapshot(run->driver, run->plan, timeout_ms, &snap_error);
    *ret_taken = snapped;
    if (snapped)
        snapped = journal_step_frozen(run, STEP_SNAPSHOTTED, &snap_error);
    *ret_consistent = FALSE;
    if (run->freeze_sent) {
        gboolean thawed = thaw_guest(run, frozen, &thaw, &thaw_error);
        if (!thawed) {
            say(run, "WARNING: thawing the guest failed: %s; trying again on a new connection",
                thaw_error->message);
            thawed = thaw_by_new_connection(run, frozen, &thaw);
        }
        if (frozen)
            *ret_consistent = judge(run, thawed ? &thaw : NULL, run->plan->disks);
    }
    if (!snapped) {
        g_propagate_error(error, g_steal_pointer(&snap_error));
        if (thaw_error != NULL)
            g_prefix_error(error, "(thaw failed too: %s) ", thaw_error->message);
        return FALSE;
    }
    /* The reason goes into the journal too: a run killed before its record keeps it. */
    if (!*ret_consistent && run->plan->reason != NULL) {
        g_autofree char *payload = sp_snapshot_plan_to_json(run->plan);
        if (!sp_store_op_set_payload(run->store, run->plan->op_id, payload, error))
            return FALSE;
    }
    return journal_step(run, *ret_consistent ? STEP_THAWED_CONSISTENT : STEP_THAWED_CRASH, error);
}

/* A standard checkpoint by a driver whose snapshot saves the state itself (libvirt: one call that
 * pauses the domain, saves its memory, snapshots the disks and runs it on). */
static gboolean standard_by_driver(CreateRun *run, gboolean *ret_taken, GError **error)
{
    g_autofree char *payload = NULL;

    run->plan->type = (g_free(run->plan->type), g_strdup("standard"));
    /* Recovery must know the state file is a standard checkpoint's. */
    payload = sp_snapshot_plan_to_json(run->plan);
    if (!sp_store_op_set_payload(run->store, run->plan->op_id, payload, error))
        return FALSE;
    say(run, "saving the VM's memory with its disks through the %s driver (a standard "
             "checkpoint)",
        run->driver->ops->name);
    *ret_taken = run->driver->ops->snapshot(run->driver, run->plan, SP_QMP_DEFAULT_TIMEOUT_MS,
                                            error);
    return *ret_taken && journal_step(run, STEP_STATE_SAVED, error);
}

/* A standard checkpoint: stop, snapshot, save the state, run on. The VM is resumed whatever
 * failed after the stop. On failure *ret_taken says whether the snapshot took effect. */
static gboolean standard_snapshot(CreateRun *run, gboolean *ret_taken, GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autofree char *payload = NULL;
    gboolean was_running = FALSE, ok;

    g_autofree char *status = NULL;

    *ret_taken = FALSE;
    if (run->driver->ops->saves_state)
        return standard_by_driver(run, ret_taken, error);
    run->plan->type = (g_free(run->plan->type), g_strdup("standard"));
    /* Recovery must know this is a standard run and whether to run the VM again. */
    if (!sp_standard_runstate(run->qmp, &status, error))
        return FALSE;
    run->plan->was_running = g_strcmp0(status, "running") == 0;
    payload = sp_snapshot_plan_to_json(run->plan);
    if (!sp_store_op_set_payload(run->store, run->plan->op_id, payload, error))
        return FALSE;
    say(run, "stopping the VM to save its memory with the disks (a standard checkpoint)");
    if (!journal_step(run, STEP_STOPPING, error) ||
        !sp_standard_stop(run->qmp, &was_running, error))
        return FALSE;
    was_running = run->plan->was_running;
    ok = journal_step(run, STEP_STOPPED, error);
    if (ok) {
        ok = run->driver->ops->snapshot(run->driver, run->plan, SP_QMP_DEFAULT_TIMEOUT_MS, error);
        *ret_taken = ok;
    }
    if (ok)
        ok = journal_step(run, STEP_SNAPSHOTTED, error);
    if (ok) {
        say(run, "saving the VM's device and memory state to %s", run->plan->state_file);
        ok = sp_standard_save(run->qmp, run->plan->state_file, error) &&
             journal_step(run, STEP_STATE_SAVED, error);
    }
    if (!sp_standard_resume(run->qmp, was_running, &local)) {
        if (ok) {
            g_propagate_prefixed_error(error, g_steal_pointer(&local),
                                       "VM '%s' could not be resumed after its checkpoint: ",
                                       run->vm->name);
            return FALSE;
        }
        g_prefix_error(error, "(resuming the VM failed too: %s) ", local->message);
    }
    return ok;
}

static void create_run_clear(CreateRun *run)
{
    sp_freeze_result_clear(&run->freeze);
    g_free(run->backend);
    sp_agent_free(run->agent);
    sp_snapshot_plan_free(run->plan);
    sp_driver_free(run->driver);
    sp_qmp_free(run->qmp);
}

static gboolean connect_qmp(CreateRun *run, GError **error)
{
    if (run->vm->qmp_socket == NULL || run->vm->qmp_socket[0] == '\0')
        return TRUE; /* a hook VM without QMP */
    say(run, "connecting to QMP on %s", run->vm->qmp_socket);
    run->qmp = sp_qmp_connect(run->vm->qmp_socket, SP_QMP_CONNECT_TIMEOUT_MS, error);
    if (run->qmp == NULL) {
        g_prefix_error(error, "VM '%s': ", run->vm->name);
        return FALSE;
    }
    return TRUE;
}

static const char *quiesce_failure_hint(const CreateRun *run, const SpCreateOptions *opts)
{
    if (g_strcmp0(opts->requested, "production-only") == 0)
        return "the VM's checkpoint type is production-only, which never falls back; ";
    if (opts->fallback_if_possible)
        return "its driver cannot make the standard checkpoint a production one falls back to; ";
    return "";
}

static void thaw_after_failed_freeze(CreateRun *run)
{
    g_autoptr(GError) local = NULL;
    SpThawResult ignored;
    if (!run->freeze_sent || run->agent == NULL)
        return;
    if (!thaw_guest(run, FALSE, &ignored, &local)) {
        say(run, "WARNING: thawing the guest failed: %s; trying again on a new connection",
            local->message);
        thaw_by_new_connection(run, FALSE, &ignored);
    }
}

/* Freeze per policy. Returns FALSE only when the checkpoint must not be made. */
static gboolean quiesce(CreateRun *run, const SpCreateOptions *opts, guint lease_ms,
                        gboolean *ret_frozen, GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autofree char *payload = NULL;
    *ret_frozen = FALSE;
    if (opts->crash_only || opts->standard)
        return TRUE;
    if (freeze_guest(run, lease_ms, &local)) {
        *ret_frozen = TRUE;
        return TRUE;
    }
    if (run->policy == SP_QUIESCE_FAIL) {
        g_propagate_prefixed_error(error, g_steal_pointer(&local),
                                   "VM '%s': could not quiesce the guest, no checkpoint was made "
                                   "(%s--on-quiesce-failure=crash makes a crash-consistent "
                                   "one): ",
                                   run->vm->name, quiesce_failure_hint(run, opts));
        return FALSE;
    }
    /* A freeze that failed late (a reply that timed out, a journal write after it) may still
     * hold the guest, and a standard checkpoint does not thaw: thaw before going on. */
    thaw_after_failed_freeze(run);
    run->freeze_sent = FALSE;
    say(run, "WARNING: could not quiesce the guest (%s); making a %s checkpoint %s", local->message,
        run->policy == SP_QUIESCE_STANDARD ? "standard" : "crash-consistent",
        opts->fallback_if_possible ? "(a production checkpoint falls back to a standard one, as "
                                     "Hyper-V's does; the VM's memory is saved)"
        : run->policy == SP_QUIESCE_STANDARD ? "as --on-quiesce-failure=standard asks"
                                             : "as --on-quiesce-failure=crash asks");
    /* Why it is not what was asked, for the record (and for a recovery's record). */
    run->plan->reason = g_strdup_printf("could not quiesce the guest: %s", local->message);
    payload = sp_snapshot_plan_to_json(run->plan);
    return sp_store_op_set_payload(run->store, run->plan->op_id, payload, error);
}

SpCheckpoint *sp_coordinator_create(SpStore *store, SpVm *vm, const SpCreateOptions *opts,
                                    SpProgressFn progress, gpointer user_data, GError **error)
{
    CreateRun run = {.store = store, .vm = vm, .progress = progress, .user_data = user_data};
    g_autoptr(SpCheckpoint) cp = NULL;
    gboolean frozen = FALSE, consistent = FALSE, taken = FALSE;
    guint lease_ms;

    /* The check on this run's own connection: nothing is built on a checkpoint's image. */
    if (!recover(store, vm, FALSE, NULL, progress, user_data, error) ||
        !connect_qmp(&run, error) || !sp_present_check(store, vm, run.qmp, error))
        goto fail;
    if ((run.driver = sp_driver_new(vm, run.qmp, error)) == NULL)
        goto fail;
    if (!plan_create(&run, opts, error))
        goto fail;
    if (run.driver->ops->one_transaction)
        say(&run, "preparing %u overlay(s) before the freeze", run.plan->disks->len);
    if (!run.driver->ops->prepare(run.driver, run.plan, error) ||
        !journal_step(&run, STEP_PREPARED, error)) {
        roll_back(&run, error);
        goto fail;
    }
    lease_ms = sp_coordinator_lease_for_ms(sp_driver_snapshot_ms(run.driver, run.plan));
    if (!quiesce(&run, opts, lease_ms, &frozen, error)) {
        thaw_after_failed_freeze(&run);
        roll_back(&run, error);
        goto fail;
    }
    if (run.plan->state_file != NULL && !frozen) {
        if (!standard_snapshot(&run, &taken, error)) {
            if (taken)
                g_prefix_error(error, "the VM runs on the new overlays, but its state was not "
                                      "saved (the next run records a crash-consistent "
                                      "checkpoint): ");
            else
                roll_back(&run, error);
            goto fail;
        }
    } else if (!snapshot_and_thaw(&run, frozen, lease_ms, &consistent, &taken, error)) {
        if (taken)
            g_prefix_error(error, "the VM runs on the new overlays, but recording the checkpoint "
                                  "failed (the next run finishes it): ");
        else
            roll_back(&run, error);
        goto fail;
    }
    if (run.plan->state_file != NULL && !frozen) {
        /* The state file is the standard checkpoint's; a production one does not keep it. */
    } else if (run.plan->state_file != NULL) {
        g_clear_pointer(&run.plan->state_file, g_free);
    }
    cp = sp_checkpoint_from_plan(run.plan, vm->id, consistent ? "application" : "crash");
    if (!sp_plan_record_formats(store, vm->id, run.plan, error) ||
        !sp_store_checkpoint_add(store, cp, run.plan->op_id, NULL, error))
        goto fail; /* the journal keeps the op: the next run records it */
    sp_test_crash_point("recorded");
    /* A launcher using the stable paths (checkpoint apply) must reopen the new overlays. */
    if (!sp_present_sync(store, vm, NULL, error))
        goto fail;
    create_run_clear(&run);
    return g_steal_pointer(&cp);
fail:
    create_run_clear(&run);
    return NULL;
}

/* A freeze possibly in force (after a crash, or a broken connection): thaw on a new connection.
 * With a stillpoint agent and a freeze of ours, stillpoint-thaw with its epoch gives the verdict
 * (repeated, it answers what the first thaw did, so a lost reply costs nothing); otherwise the
 * standard guest-fsfreeze-thaw, which both agents answer. Returns TRUE when *ret holds a verdict
 * or the guest is not frozen. (A stillpoint agent also thaws by itself when its lease ends or the
 * channel that froze hangs up.) */
static gboolean thaw_by_new_connection(CreateRun *run, gboolean frozen, SpThawResult *ret)
{
    g_autoptr(GError) local = NULL;
    g_autofree char *status = NULL;
    SpThawResult r = {.held_ms = -1};
    gboolean ok = FALSE;

    g_clear_pointer(&run->agent, sp_agent_free);
    run->agent = sp_agent_connect_vm(run->vm, SP_AGENT_SYNC_TIMEOUT_MS, &local);
    if (run->agent != NULL && frozen && sp_agent_is_stillpoint(run->agent) &&
        sp_agent_thaw(run->agent, &run->freeze, &r, NULL)) {
        *ret = r;
        ok = TRUE;
    }
    if (run->agent != NULL)
        status = sp_agent_fsfreeze_status(run->agent, &local);
    if (status != NULL && g_strcmp0(status, "frozen") == 0) {
        g_autoptr(SpJson) reply = sp_agent_execute(run->agent, "guest-fsfreeze-thaw", NULL,
                                                   SP_AGENT_THAW_TIMEOUT_MS, &local);
        if (reply != NULL)
            say(run, "thawed the guest left frozen");
        ok = reply != NULL;
    } else if (status != NULL && !ok) {
        *ret = r; /* thawed, but no verdict: not consistent */
        ok = TRUE;
    }
    if (local != NULL)
        say(run, "WARNING: could not check the guest's freeze state: %s", local->message);
    g_clear_pointer(&run->agent, sp_agent_free);
    return ok;
}

static gboolean step_after_transaction(const char *step)
{
    return g_strcmp0(step, STEP_SNAPSHOTTED) == 0 || g_strcmp0(step, STEP_THAWED_CONSISTENT) == 0 ||
           g_strcmp0(step, STEP_THAWED_CRASH) == 0 || g_strcmp0(step, STEP_STATE_SAVED) == 0;
}

/* A standard checkpoint interrupted while the VM was stopped: cancel a save in progress, run the
 * VM again if it ran, and keep the state file only if its save was journaled complete. */
static gboolean recover_standard(CreateRun *run, SpOp *op, GError **error)
{
    if (g_strcmp0(run->plan->type, "standard") != 0) {
        /* A production run with the standard fallback that did not fall back. */
        g_unlink(run->plan->state_file);
        g_clear_pointer(&run->plan->state_file, g_free);
        return TRUE;
    }
    gboolean stopped = g_strcmp0(op->step, STEP_STOPPING) == 0 ||
                       g_strcmp0(op->step, STEP_STOPPED) == 0 ||
                       g_strcmp0(op->step, STEP_SNAPSHOTTED) == 0 ||
                       g_strcmp0(op->step, STEP_STATE_SAVED) == 0;
    if (stopped) {
        say(run, "recovery: the VM was stopped for a standard checkpoint: %s",
            run->plan->was_running ? "running it again" : "it stays paused, as it was");
        if (!sp_standard_cancel(run->qmp, error) ||
            !sp_standard_resume(run->qmp, run->plan->was_running, error))
            return FALSE;
    }
    if (g_strcmp0(op->step, STEP_STATE_SAVED) != 0) {
        g_unlink(run->plan->state_file);
        run->plan->type = (g_free(run->plan->type), g_strdup("crash"));
    }
    return TRUE;
}

static gboolean recover_create(CreateRun *run, SpOp *op, GError **error)
{
    g_autoptr(SpCheckpoint) cp = NULL;
    gboolean committed = FALSE;
    SpThawResult ignored;

    run->plan = sp_snapshot_plan_from_json(op->payload, error);
    if (run->plan == NULL)
        return FALSE;
    run->plan->op_id = op->id;
    if (run->plan->state_file != NULL && run->qmp != NULL &&
        !recover_standard(run, op, error))
        return FALSE;
    if (g_strcmp0(op->step, STEP_FREEZING) == 0 || g_strcmp0(op->step, STEP_FROZEN) == 0 ||
        g_strcmp0(op->step, STEP_SNAPSHOTTED) == 0)
        thaw_by_new_connection(run, FALSE, &ignored);
    if (run->driver->ops->committed == NULL)
        committed = step_after_transaction(op->step);
    else if (!run->driver->ops->committed(run->driver, run->plan, &committed, error))
        return FALSE;
    if (!committed && step_after_transaction(op->step)) {
        /* The transaction was journaled as done, yet QEMU no longer runs on the overlays (a
         * restart?). They may hold writes made since: never delete them on a guess. */
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    "checkpoint '%s' was taken, but the VM no longer runs on its overlays (was "
                    "QEMU restarted on other images?); they are kept, check them with 'qemu-img "
                    "info --backing-chain' (first: %s)",
                    run->plan->checkpoint_name,
                    run->plan->disks->len > 0
                        ? ((SpPlanDisk *)g_ptr_array_index(run->plan->disks, 0))->overlay
                        : "none");
        return FALSE;
    }
    if (!committed) {
        say(run, "recovery: operation %" G_GINT64_FORMAT " (checkpoint '%s', step %s) did not "
                 "take effect: removing its overlays",
            op->id, run->plan->checkpoint_name, op->step);
        if (!run->driver->ops->abort(run->driver, run->plan, error))
            return FALSE;
        if (run->plan->state_file != NULL)
            g_unlink(run->plan->state_file);
        return sp_store_op_finish(run->store, op->id, SP_OP_ROLLED_BACK, error);
    }
    /* The VM runs on the overlays: the checkpoint exists. Only a journaled thaw verdict makes it
     * application-consistent. */
    cp = sp_checkpoint_from_plan(run->plan, run->vm->id,
                              g_strcmp0(op->step, STEP_THAWED_CONSISTENT) == 0 ? "application"
                                                                               : "crash");
    say(run, "recovery: recording checkpoint '%s' (%s-consistent) of an interrupted run",
        cp->name, cp->consistency);
    return sp_store_checkpoint_add(run->store, cp, op->id, NULL, error);
}

/* Tree operations (op-*.c): a delete is finished (live when QEMU runs, else offline), an export
 * rolled back, an apply finished once recorded and rolled back before. */
static gboolean recover_other(CreateRun *run, SpOp *op, GError **error)
{
    SpOpReport report = {.progress = run->progress, .user_data = run->user_data};
    gboolean ok;
    if (g_strcmp0(op->kind, "export") == 0) {
        ok = sp_op_recover_export(run->store, op, error);
    } else if (g_strcmp0(op->kind, "apply") == 0) {
        ok = sp_op_recover_apply(run->store, run->vm, op, &report, error);
    } else if (g_strcmp0(op->kind, "delete") == 0) {
        ok = (run->qmp != NULL || sp_op_connect_qmp_if_running(run->vm, &run->qmp, error)) &&
             sp_op_recover_delete(run->store, run->vm, run->qmp, op, &report, error);
    } else {
        g_return_val_if_reached(FALSE);
    }
    if (!ok)
        g_prefix_error(error, "VM '%s': recovering operation %" G_GINT64_FORMAT " (%s): ",
                       run->vm->name, op->id, op->kind);
    return ok;
}

/* Resolves the journal; with check, then refuses when QEMU runs on what is not the store's now
 * (sp_present_check). */
static gboolean recover(SpStore *store, SpVm *vm, gboolean check, guint *ret_recovered,
                        SpProgressFn progress, gpointer user_data, GError **error)
{
    g_autoptr(GPtrArray) ops = sp_store_op_list_unfinished(store, vm->id, error);
    CreateRun run = {.store = store, .vm = vm, .progress = progress, .user_data = user_data};
    guint done = 0;
    gboolean ok = FALSE;

    if (ops == NULL)
        return FALSE;
    if (ops->len == 0) {
        ok = (!check || sp_present_check(store, vm, NULL, error)) &&
             sp_present_sync(store, vm, NULL, error);
        goto out;
    }
    for (guint i = 0; i < ops->len; i++) {
        SpOp *op = g_ptr_array_index(ops, i);
        if (g_strcmp0(op->kind, "delete") == 0 || g_strcmp0(op->kind, "export") == 0 ||
            g_strcmp0(op->kind, "apply") == 0) {
            if (!recover_other(&run, op, error))
                goto out;
            done++;
            continue;
        }
        if (run.driver == NULL &&
            ((run.qmp == NULL && !connect_qmp(&run, error)) ||
             (run.driver = sp_driver_new(vm, run.qmp, error)) == NULL)) {
            g_prefix_error(error, "VM '%s' has %u unfinished operation(s) that need the VM to be "
                                  "reachable to be resolved: ",
                           vm->name, ops->len);
            goto out;
        }
        if (g_strcmp0(op->kind, "create") != 0) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                        "VM '%s': unfinished operation %" G_GINT64_FORMAT " of unknown kind '%s'",
                        vm->name, op->id, op->kind);
            goto out;
        }
        if (!recover_create(&run, op, error)) {
            g_prefix_error(error, "VM '%s': recovering operation %" G_GINT64_FORMAT ": ",
                           vm->name, op->id);
            goto out;
        }
        g_clear_pointer(&run.plan, sp_snapshot_plan_free);
        done++;
    }
    /* A run killed between its record and its links: the links follow the tree again. */
    ok = (!check || sp_present_check(store, vm, run.qmp, error)) &&
         sp_present_sync(store, vm, NULL, error);
out:
    if (ret_recovered != NULL)
        *ret_recovered = done;
    create_run_clear(&run);
    return ok;
}

gboolean sp_coordinator_recover(SpStore *store, SpVm *vm, guint *ret_recovered,
                                SpProgressFn progress, gpointer user_data, GError **error)
{
    return recover(store, vm, TRUE, ret_recovered, progress, user_data, error);
}

gboolean sp_coordinator_recover_journal(SpStore *store, SpVm *vm, guint *ret_recovered,
                                        SpProgressFn progress, gpointer user_data,
                                        GError **error)
{
    return recover(store, vm, FALSE, ret_recovered, progress, user_data, error);
}

/* ---- a freeze around a caller's own work ---- */

gboolean sp_coordinator_quiesced(SpVm *vm, guint lease_ms, SpQuiescedFn fn, gpointer data,
                                 gboolean *ret_consistent, SpProgressFn progress,
                                 gpointer user_data, GError **error)
{
    CreateRun run = {.vm = vm, .progress = progress, .user_data = user_data};
    g_autoptr(GError) thaw_error = NULL;
    SpThawResult thaw = {0};
    gboolean ran, thawed;

    *ret_consistent = FALSE;
    if (!freeze_guest(&run, lease_ms, error)) {
        thaw_after_failed_freeze(&run);
        create_run_clear(&run);
        g_prefix_error(error, "VM '%s': could not quiesce the guest: ", vm->name);
        return FALSE;
    }
    ran = fn(data, window_ms(&run, TRUE, lease_ms), error);
    thawed = thaw_guest(&run, TRUE, &thaw, &thaw_error);
    if (!thawed) {
        say(&run, "WARNING: thawing the guest failed: %s; trying again on a new connection",
            thaw_error->message);
        thawed = thaw_by_new_connection(&run, TRUE, &thaw);
    }
    *ret_consistent = judge(&run, thawed ? &thaw : NULL, NULL);
    create_run_clear(&run);
    return ran;
}

void sp_coordinator_thaw_left(SpVm *vm, SpProgressFn progress, gpointer user_data)
{
    CreateRun run = {.vm = vm, .progress = progress, .user_data = user_data};
    SpThawResult ignored;
    thaw_by_new_connection(&run, FALSE, &ignored);
    create_run_clear(&run);
}
