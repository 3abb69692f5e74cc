/* The coordinator's sequencing with a fake driver and a fake agent: what runs in which order, that
 * the thaw always follows a freeze, what gets recorded, and recovery of journaled operations. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <string.h>

#include "host-fake-agent.h"
#include "stillpoint/checkpoint-type.h"
#include "stillpoint/coordinator.h"
#include "stillpoint/driver.h"

/* One log of events from both fakes, in the order they happened. */
static GMutex events_lock;
static GString *events;
static struct {
    const char *fail_at;    /* fake driver step that fails */
    gboolean committed;     /* what the fake driver's recovery sees */
    gboolean consistent;    /* what the fake agent's thaw says */
    gboolean refuse_freeze; /* the fake agent refuses stillpoint-freeze */
    gboolean refuse_thaw;   /* ... and stillpoint-thaw */
    gboolean frozen;
    /* What the fake agent says (NULL: a clean freeze of one root filesystem on disk vda). */
    const char *backend;    /* stillpoint-capabilities' freeze.backend */
    const char *fsinfo;     /* guest-get-fsinfo's return */
    const char *freeze;     /* stillpoint-freeze's return */
    int thaw_epoch;         /* stillpoint-thaw's epoch (0: the freeze's, 5) */
} fx;

static void event(const char *what)
{
    g_mutex_lock(&events_lock);
    g_string_append_printf(events, "%s%s", events->len > 0 ? " " : "", what);
    g_mutex_unlock(&events_lock);
}

static gboolean fake_step(const char *step, GError **error)
{
    event(step);
    if (g_strcmp0(fx.fail_at, step) == 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "fake %s failed", step);
        return FALSE;
    }
    return TRUE;
}

static gboolean fake_plan(SpDriver *drv, SpSnapshotPlan *plan, const char *dir, GError **error)
{
    SpPlanDisk *pd = g_new0(SpPlanDisk, 1);
    pd->disk = g_new0(SpDisk, 1);
    pd->disk->name = g_strdup("vda");
    pd->disk->node = g_strdup("disk0");
    pd->disk->image = g_strdup("/img/base.qcow2");
    pd->disk->serial = g_strdup("vda-serial");
    pd->disk->format = g_strdup("qcow2");
    pd->overlay = g_strdup("/img/overlay.qcow2");
    pd->overlay_node = g_strdup("sp0");
    g_ptr_array_add(plan->disks, pd);
    return fake_step("plan", error);
}

static gboolean fake_prepare(SpDriver *drv, SpSnapshotPlan *plan, GError **error)
{
    return fake_step("prepare", error);
}

static gboolean fake_snapshot(SpDriver *drv, SpSnapshotPlan *plan, guint timeout_ms,
                              GError **error)
{
    return fake_step("snapshot", error);
}

static gboolean fake_abort(SpDriver *drv, SpSnapshotPlan *plan, GError **error)
{
    return fake_step("abort", error);
}

static gboolean fake_committed(SpDriver *drv, SpSnapshotPlan *plan, gboolean *ret, GError **error)
{
    *ret = fx.committed;
    return fake_step("committed?", error);
}

static const SpDriverOps fake_ops = {
    .name = "fake",
    .plan = fake_plan,
    .prepare = fake_prepare,
    .snapshot = fake_snapshot,
    .abort = fake_abort,
    .committed = fake_committed,
};

/* The same fake with standard checkpoints of its own (as the libvirt driver makes them). */
static const SpDriverOps fake_standard_ops = {
    .name = "fake-standard",
    .plan = fake_plan,
    .prepare = fake_prepare,
    .snapshot = fake_snapshot,
    .abort = fake_abort,
    .committed = fake_committed,
    .saves_state = TRUE,
};

static char *agent_handler(const char *execute, const SpJson *args, guint *delay_ms)
{
    if (g_strcmp0(execute, "guest-sync-delimited") == 0)
        return fake_agent_sync_reply(args);
    if (g_strcmp0(execute, "stillpoint-capabilities") == 0)
        return g_strdup_printf("{\"return\": {\"freeze\": {\"min-lease-ms\": 1000, "
                               "\"max-lease-ms\": 60000, \"backend\": \"%s\"}}}\n",
                               fx.backend != NULL ? fx.backend : "fifreeze");
    if (g_strcmp0(execute, "guest-get-fsinfo") == 0)
        return g_strdup_printf("{\"return\": %s}\n",
                               fx.fsinfo != NULL ? fx.fsinfo
                                                 : "[{\"mountpoint\": \"/\", \"type\": \"ext4\", "
                                                   "\"disk\": [{\"serial\": \"vda-serial\"}]}]");
    if (g_strcmp0(execute, "stillpoint-freeze") == 0) {
        if (fx.refuse_freeze) {
            event("freeze-refused");
            return g_strdup("{\"error\": {\"class\": \"GenericError\", \"desc\": \"hook "
                            "failed\", \"code\": \"hook-failed\"}}\n");
        }
        event("freeze");
        fx.frozen = TRUE;
        if (fx.freeze != NULL)
            return g_strdup_printf("{\"return\": %s}\n", fx.freeze);
        return g_strdup("{\"return\": {\"epoch\": 5, \"frozen\": [{\"mountpoint\": \"/\"}], "
                        "\"skipped\": []}}\n");
    }
    if (g_strcmp0(execute, "stillpoint-thaw") == 0) {
        if (fx.refuse_thaw) {
            event("thaw-refused");
            return g_strdup("{\"error\": {\"class\": \"GenericError\", \"desc\": \"no\"}}\n");
        }
        event("thaw");
        fx.frozen = FALSE;
        return g_strdup_printf("{\"return\": {\"epoch\": %d, \"consistent\": %s, "
                               "\"held-ms\": 3}}\n",
                               fx.thaw_epoch != 0 ? fx.thaw_epoch : 5,
                               fx.consistent ? "true" : "false");
    }
    if (g_strcmp0(execute, "guest-fsfreeze-status") == 0)
        return g_strdup_printf("{\"return\": \"%s\"}\n", fx.frozen ? "frozen" : "thawed");
    if (g_strcmp0(execute, "guest-fsfreeze-thaw") == 0) {
        event("thaw");
        fx.frozen = FALSE;
        return g_strdup("{\"return\": 1}\n");
    }
    return g_strdup("{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"no\"}}\n");
}

typedef struct {
    char *dir;
    SpStore *store;
    SpVm *vm;
    FakeAgent *agent;
} Fixture;

static int setup(void **state)
{
    Fixture *f = g_new0(Fixture, 1);
    g_autofree char *path = NULL;
    SpVm vm = {.name = (char *)"web", .qmp_socket = (char *)"", .driver = (char *)"fake"};

    memset(&fx, 0, sizeof(fx));
    fx.consistent = TRUE;
    events = g_string_new(NULL);
    f->dir = g_dir_make_tmp("sp-coord-XXXXXX", NULL);
    path = g_build_filename(f->dir, "store.db", NULL);
    f->store = sp_store_open(path, NULL);
    f->agent = fake_agent_start(agent_handler);
    vm.agent_socket = (char *)fake_agent_path(f->agent);
    assert_true(sp_store_vm_add(f->store, &vm, NULL, NULL));
    f->vm = sp_store_vm_get(f->store, "web", NULL);
    sp_driver_register(&fake_ops);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    Fixture *f = *state;
    g_autofree char *db = g_build_filename(f->dir, "store.db", NULL);
    g_autofree char *wal = g_strconcat(db, "-wal", NULL);
    g_autofree char *shm = g_strconcat(db, "-shm", NULL);
    fake_agent_stop(f->agent);
    sp_vm_free(f->vm);
    sp_store_close(f->store);
    g_unlink(db);
    g_unlink(wal);
    g_unlink(shm);
    g_rmdir(f->dir);
    g_free(f->dir);
    g_free(f);
    g_string_free(events, TRUE);
    return 0;
}

static guint n_checkpoints(Fixture *f)
{
    g_autoptr(GPtrArray) cps = sp_store_checkpoint_list(f->store, f->vm->id, NULL);
    return cps->len;
}

static guint n_unfinished(Fixture *f)
{
    g_autoptr(GPtrArray) ops = sp_store_op_list_unfinished(f->store, f->vm->id, NULL);
    return ops->len;
}

static SpCheckpoint *create(Fixture *f, const SpCreateOptions *opts, GError **error)
{
    SpCreateOptions defaults = {.name = "cp"};
    return sp_coordinator_create(f->store, f->vm, opts != NULL ? opts : &defaults, NULL, NULL,
                                 error);
}

static void test_freeze_snapshot_thaw_then_record(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(SpCheckpoint) cp = create(f, NULL, &error);
    g_autoptr(SpVm) vm = NULL;

    assert_non_null(cp);
    assert_string_equal(events->str, "plan prepare freeze snapshot thaw");
    assert_string_equal(cp->consistency, "application");
    assert_string_equal(cp->type, "production");
    vm = sp_store_vm_get(f->store, "web", NULL);
    assert_int_equal(vm->current, cp->id);
    assert_int_equal(n_unfinished(f), 0);
    /* The lease asked for is the coordinator's, inside the agent's range. */
    g_autofree char *lease = g_strdup_printf("stillpoint-freeze {\"lease-ms\":%u}",
                                             sp_coordinator_lease_ms(1));
    assert_true(fake_agent_saw(f->agent, lease));
}

static void test_failed_snapshot_thaws_then_cleans_up_and_records_nothing(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(SpCheckpoint) cp = NULL;

    fx.fail_at = "snapshot";
    cp = create(f, NULL, &error);
    assert_null(cp);
    assert_non_null(strstr(error->message, "fake snapshot failed"));
    /* Thaw first, clean up second. */
    assert_string_equal(events->str, "plan prepare freeze snapshot thaw abort");
    assert_int_equal(n_checkpoints(f), 0);
    assert_int_equal(n_unfinished(f), 0);
}

static void test_failed_prepare_never_freezes(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(SpCheckpoint) cp = NULL;

    fx.fail_at = "prepare";
    cp = create(f, NULL, &error);
    assert_null(cp);
    assert_string_equal(events->str, "plan prepare abort");
    assert_int_equal(n_unfinished(f), 0);
}

static void test_freeze_that_did_not_hold_is_recorded_crash_consistent(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(SpCheckpoint) cp = NULL;

    fx.consistent = FALSE;
    cp = create(f, NULL, &error);
    assert_non_null(cp);
    assert_string_equal(cp->consistency, "crash");
}

static void test_failed_thaw_is_retried_and_not_called_consistent(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(SpCheckpoint) cp = NULL;

    fx.refuse_thaw = TRUE;
    cp = create(f, NULL, &error);
    assert_non_null(cp);
    /* On a fresh connection: stillpoint-thaw again (for the verdict), then the standard thaw
     * gets the guest going. */
    assert_string_equal(events->str, "plan prepare freeze snapshot thaw-refused thaw-refused thaw");
    assert_false(fx.frozen);
    assert_string_equal(cp->consistency, "crash");
}

static void test_refused_freeze_fails_by_default(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(SpCheckpoint) cp = NULL;

    fx.refuse_freeze = TRUE;
    cp = create(f, NULL, &error);
    assert_null(cp);
    assert_non_null(strstr(error->message, "could not quiesce the guest, no checkpoint was made"));
    assert_non_null(strstr(error->message, "hook-failed"));
    assert_string_equal(events->str, "plan prepare freeze-refused abort");
    assert_int_equal(n_checkpoints(f), 0);
}

static void test_refused_freeze_with_crash_policy_records_crash(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    SpCreateOptions opts = {.name = "cp", .on_quiesce_failure = SP_QUIESCE_CRASH};
    g_autoptr(SpCheckpoint) cp = NULL;

    fx.refuse_freeze = TRUE;
    cp = create(f, &opts, &error);
    assert_non_null(cp);
    assert_string_equal(cp->consistency, "crash");
    assert_string_equal(events->str, "plan prepare freeze-refused snapshot");
}

static void test_crash_type_never_freezes(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    SpCreateOptions opts = {.name = "cp", .crash_only = TRUE};
    g_autoptr(SpCheckpoint) cp = create(f, &opts, &error);

    assert_non_null(cp);
    assert_string_equal(events->str, "plan prepare snapshot");
    assert_string_equal(cp->type, "crash");
    assert_string_equal(cp->consistency, "crash");
}

static void test_invalid_name_touches_nothing(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    SpCreateOptions opts = {.name = "bad\nname"};
    g_autoptr(SpCheckpoint) cp = create(f, &opts, &error);

    assert_null(cp);
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT));
    assert_string_equal(events->str, "");
}

static int64_t journal_op(Fixture *f, const char *step)
{
    g_autoptr(SpSnapshotPlan) plan = sp_snapshot_plan_new("web", "interrupted");
    g_autofree char *payload = NULL;
    int64_t op_id = 0;
    fake_plan(NULL, plan, NULL, NULL);
    plan->type = g_strdup("production");
    payload = sp_snapshot_plan_to_json(plan);
    assert_true(sp_store_op_begin(f->store, f->vm->id, "create", payload, &op_id, NULL));
    assert_true(sp_store_op_step(f->store, op_id, step, NULL));
    g_string_truncate(events, 0);
    return op_id;
}

static void test_recovery_rolls_back_what_did_not_take_effect(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    guint n = 0;

    journal_op(f, "frozen");
    fx.frozen = TRUE; /* the interrupted run left the guest frozen */
    fx.committed = FALSE;
    assert_true(sp_coordinator_recover(f->store, f->vm, &n, NULL, NULL, &error));
    assert_int_equal(n, 1);
    assert_string_equal(events->str, "thaw committed? abort");
    assert_int_equal(n_checkpoints(f), 0);
    assert_int_equal(n_unfinished(f), 0);
}

static void test_recovery_records_what_took_effect(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) cps = NULL;

    journal_op(f, "thawed-consistent");
    fx.committed = TRUE;
    assert_true(sp_coordinator_recover(f->store, f->vm, NULL, NULL, NULL, &error));
    cps = sp_store_checkpoint_list(f->store, f->vm->id, NULL);
    assert_int_equal(cps->len, 1);
    /* The thaw verdict was journaled before the crash: it stands. */
    assert_string_equal(((SpCheckpoint *)g_ptr_array_index(cps, 0))->consistency, "application");
    assert_int_equal(n_unfinished(f), 0);

    journal_op(f, "snapshotted");
    assert_true(sp_coordinator_recover(f->store, f->vm, NULL, NULL, NULL, &error));
    g_ptr_array_unref(cps);
    cps = sp_store_checkpoint_list(f->store, f->vm->id, NULL);
    /* No verdict: only crash-consistent can be claimed. */
    assert_string_equal(((SpCheckpoint *)g_ptr_array_index(cps, 1))->consistency, "crash");
}

static void test_recovery_keeps_overlays_of_a_transaction_the_vm_left(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;

    journal_op(f, "snapshotted");
    fx.committed = FALSE;
    assert_false(sp_coordinator_recover(f->store, f->vm, NULL, NULL, NULL, &error));
    assert_non_null(strstr(error->message, "no longer runs on its overlays"));
    assert_null(strstr(events->str, "abort"));
    assert_int_equal(n_unfinished(f), 1);
}

/* Issue #18 item 3: a VM's checkpoint type, as Hyper-V's Set-VM -CheckpointType. */
static void test_checkpoint_type_defaults_to_production_falling_back_to_standard(void **state)
{
    Fixture *f = *state;
    SpCreateOptions o = {0};
    g_autoptr(GError) error = NULL;

    assert_string_equal(f->vm->checkpoint_type, "production");
    assert_true(sp_checkpoint_type_resolve(f->vm, NULL, NULL, &o, &error));
    assert_string_equal(o.requested, "production");
    assert_true(o.fallback_if_possible && o.on_quiesce_failure == SP_QUIESCE_STANDARD);
    assert_false(o.crash_only || o.standard);
    /* An explicit --on-quiesce-failure replaces production's own fallback. */
    assert_true(sp_checkpoint_type_resolve(f->vm, NULL, "crash", &o, &error));
    assert_true(!o.fallback_if_possible && o.on_quiesce_failure == SP_QUIESCE_CRASH);
    assert_true(sp_store_vm_set_checkpoint_type(f->store, "web", "production-only", &error));
    sp_vm_free(f->vm);
    f->vm = sp_store_vm_get(f->store, "web", NULL);
    assert_true(sp_checkpoint_type_resolve(f->vm, NULL, NULL, &o, &error));
    assert_string_equal(o.requested, "production-only");
    assert_true(!o.fallback_if_possible && o.on_quiesce_failure == SP_QUIESCE_FAIL);
    /* --type wins over the VM's type. */
    assert_true(sp_checkpoint_type_resolve(f->vm, "standard", NULL, &o, &error));
    assert_true(o.standard && !o.crash_only);
}

static void test_checkpoint_type_refuses_what_makes_no_sense(void **state)
{
    Fixture *f = *state;
    SpCreateOptions o = {0};
    g_autoptr(GError) error = NULL;

    assert_false(sp_checkpoint_type_resolve(f->vm, "production-only", "crash", &o, &error));
    assert_non_null(strstr(error->message, "never falls back"));
    g_clear_error(&error);
    assert_false(sp_checkpoint_type_resolve(f->vm, "standard", "fail", &o, &error));
    assert_non_null(strstr(error->message, "does not quiesce"));
    g_clear_error(&error);
    assert_false(sp_checkpoint_type_resolve(f->vm, "Production", NULL, &o, &error));
    g_clear_error(&error);
    assert_false(sp_store_vm_set_checkpoint_type(f->store, "web", "crash", &error));
    g_clear_error(&error);
    assert_false(sp_store_vm_set_checkpoint_type(f->store, "nosuch", "standard", &error));
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND));
}

static SpCheckpoint *create_as_typed(Fixture *f, const char *origin, GError **error)
{
    SpCreateOptions o = {.name = "cp", .origin = origin};
    if (!sp_checkpoint_type_resolve(f->vm, NULL, NULL, &o, error))
        return NULL;
    return sp_coordinator_create(f->store, f->vm, &o, NULL, NULL, error);
}

static void test_production_falls_back_to_standard_and_records_why(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(SpCheckpoint) cp = NULL;
    g_autoptr(GPtrArray) cps = NULL;
    SpCheckpoint *rec;

    sp_driver_register(&fake_standard_ops);
    g_free(f->vm->driver);
    f->vm->driver = g_strdup("fake-standard");
    fx.refuse_freeze = TRUE;
    cp = create_as_typed(f, SP_ORIGIN_SCHEDULE, &error);
    assert_non_null(cp);
    assert_string_equal(events->str, "plan prepare freeze-refused snapshot");
    cps = sp_store_checkpoint_list(f->store, f->vm->id, NULL);
    rec = g_ptr_array_index(cps, 0);
    assert_string_equal(rec->type, "standard");
    assert_string_equal(rec->requested, "production");
    assert_non_null(strstr(rec->reason, "could not quiesce the guest"));
    assert_non_null(strstr(rec->reason, "hook-failed"));
    assert_string_equal(rec->origin, "schedule");
    g_autofree char *me = sp_checkpoint_made_by_self();
    assert_string_equal(rec->made_by, me);
}

static void test_production_without_a_standard_to_fall_back_to_fails_and_says_why(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(SpCheckpoint) cp = NULL;

    fx.refuse_freeze = TRUE;
    cp = create_as_typed(f, NULL, &error);
    assert_null(cp);
    assert_non_null(strstr(error->message, "cannot make the standard checkpoint"));
    assert_string_equal(events->str, "plan prepare freeze-refused abort");
    assert_int_equal(n_checkpoints(f), 0);
}

static void test_production_only_never_falls_back(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(SpCheckpoint) cp = NULL;

    sp_driver_register(&fake_standard_ops);
    assert_true(sp_store_vm_set_checkpoint_type(f->store, "web", "production-only", NULL));
    sp_vm_free(f->vm);
    f->vm = sp_store_vm_get(f->store, "web", NULL);
    g_free(f->vm->driver);
    f->vm->driver = g_strdup("fake-standard");
    fx.refuse_freeze = TRUE;
    cp = create_as_typed(f, NULL, &error);
    assert_null(cp);
    assert_non_null(strstr(error->message, "production-only, which never falls back"));
    assert_int_equal(n_checkpoints(f), 0);
}

static void test_a_consistent_checkpoint_records_what_was_asked_and_no_reason(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(SpCheckpoint) cp = create_as_typed(f, NULL, &error);
    g_autoptr(GPtrArray) cps = sp_store_checkpoint_list(f->store, f->vm->id, NULL);
    SpCheckpoint *rec = g_ptr_array_index(cps, 0);

    assert_non_null(cp);
    assert_string_equal(rec->type, "production");
    assert_string_equal(rec->requested, "production");
    assert_null(rec->reason);
    assert_string_equal(rec->origin, "user");
}


/* The record of a crash-consistent checkpoint made by a freeze that did not cover it. */
static void assert_crash_because(Fixture *f, const char *why)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(SpCheckpoint) cp = create(f, NULL, &error);
    g_autoptr(GPtrArray) cps = sp_store_checkpoint_list(f->store, f->vm->id, NULL);
    SpCheckpoint *rec;

    assert_non_null(cp);
    assert_string_equal(events->str, "plan prepare freeze snapshot thaw");
    rec = g_ptr_array_index(cps, 0);
    assert_string_equal(rec->consistency, "crash");
    assert_string_equal(rec->type, "production");
    if (rec->reason == NULL || strstr(rec->reason, why) == NULL)
        fail_msg("reason '%s' does not say '%s'", rec->reason, why);
}

static void test_a_disk_whose_filesystem_was_excluded_is_crash_consistent(void **state)
{
    fx.fsinfo = "[{\"mountpoint\": \"/\", \"type\": \"ext4\", \"disk\": [{\"serial\": \"os\"}]},"
                " {\"mountpoint\": \"/data\", \"type\": \"xfs\", "
                "\"disk\": [{\"serial\": \"vda-serial\"}]}]";
    fx.freeze = "{\"epoch\": 5, \"frozen\": [{\"mountpoint\": \"/\"}], \"skipped\": "
                "[{\"mountpoint\": \"/data\", \"type\": \"xfs\", \"reason\": \"excluded\"}]}";
    assert_crash_because(*state, "filesystem /data (xfs) on disk vda was not frozen: excluded");
}

/* The guest names the serial: a serial the host does not know cannot take a filesystem out of
 * the verdict (a hostile guest would name one; an honest one may show it differently). */
static void test_an_unfrozen_filesystem_on_another_disk_still_counts(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(SpCheckpoint) cp = NULL;

    fx.fsinfo = "[{\"mountpoint\": \"/\", \"type\": \"ext4\", "
                "\"disk\": [{\"serial\": \"vda-serial\"}]},"
                " {\"mountpoint\": \"/usb\", \"type\": \"vfat\", \"disk\": [{\"serial\": \"stick\"}]}]";
    fx.freeze = "{\"epoch\": 5, \"frozen\": [{\"mountpoint\": \"/\"}], \"skipped\": "
                "[{\"mountpoint\": \"/usb\", \"type\": \"vfat\", \"reason\": \"not-supported\"}]}";
    cp = create(f, NULL, &error);
    assert_non_null(cp);
    assert_string_equal(cp->consistency, "crash");
    assert_non_null(strstr(cp->reason, "filesystem /usb (vfat) on a disk the host cannot tell "
                                       "apart from the checkpoint's"));
}

static void test_a_fake_backend_is_crash_consistent(void **state)
{
    fx.backend = "fake";
    assert_crash_because(*state, "freeze backend is 'fake'");
}

static void test_a_thaw_of_another_freeze_is_crash_consistent(void **state)
{
    fx.thaw_epoch = 6;
    assert_crash_because(*state, "describes freeze 6, not this checkpoint's freeze 5");
}

static void test_filesystems_that_cannot_be_listed_make_it_crash_consistent(void **state)
{
    fx.fsinfo = "\"not a list\"";
    assert_crash_because(*state, "could not be mapped to the checkpoint's disks");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_freeze_snapshot_thaw_then_record),
        T(test_failed_snapshot_thaws_then_cleans_up_and_records_nothing),
        T(test_failed_prepare_never_freezes),
        T(test_freeze_that_did_not_hold_is_recorded_crash_consistent),
        T(test_failed_thaw_is_retried_and_not_called_consistent),
        T(test_refused_freeze_fails_by_default),
        T(test_refused_freeze_with_crash_policy_records_crash),
        T(test_crash_type_never_freezes),
        T(test_invalid_name_touches_nothing),
        T(test_recovery_rolls_back_what_did_not_take_effect),
        T(test_recovery_records_what_took_effect),
        T(test_recovery_keeps_overlays_of_a_transaction_the_vm_left),
        T(test_checkpoint_type_defaults_to_production_falling_back_to_standard),
        T(test_checkpoint_type_refuses_what_makes_no_sense),
        T(test_production_falls_back_to_standard_and_records_why),
        T(test_production_without_a_standard_to_fall_back_to_fails_and_says_why),
        T(test_production_only_never_falls_back),
        T(test_a_consistent_checkpoint_records_what_was_asked_and_no_reason),
        T(test_a_disk_whose_filesystem_was_excluded_is_crash_consistent),
        T(test_an_unfrozen_filesystem_on_another_disk_still_counts),
        T(test_a_fake_backend_is_crash_consistent),
        T(test_a_thaw_of_another_freeze_is_crash_consistent),
        T(test_filesystems_that_cannot_be_listed_make_it_crash_consistent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
