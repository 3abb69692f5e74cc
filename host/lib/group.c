/* Consistency groups: the group file, and one checkpoint across several VMs. The sequence is the
 * coordinator's (prepare → freeze → transaction → thaw → record, each step journaled per member as
 * a "create" operation, so sp_coordinator_recover resolves a crash exactly as for one VM), spread
 * over members: every freeze before the first transaction, the freezes and thaws concurrent (one
 * thread per guest: freezing runs the guest's hooks and writers, which take their time). */
#include "stillpoint/group.h"
#include "op-util.h"

#include <gio/gio.h>
#include <stdlib.h>
#include <string.h>

#include "stillpoint/agent.h"
#include "stillpoint/channel.h"
#include "stillpoint/checkpoint-type.h"
#include "stillpoint/driver.h"
#include "stillpoint/ops.h"
#include "stillpoint/present.h"
#include "stillpoint/qmp.h"
#include "stillpoint/verdict.h"
#include "test-hooks.h"

/* The coordinator's journal steps (coordinator.c), so its recovery reads ours. */
#define STEP_PREPARED "prepared"
#define STEP_FREEZING "freezing"
#define STEP_FROZEN "frozen"
#define STEP_SNAPSHOTTED "snapshotted"
#define STEP_THAWED_CONSISTENT "thawed-consistent"
#define STEP_THAWED_CRASH "thawed-crash"

/* ---- the group file ---- */

static char *groups_path(SpStore *store)
{
    return g_strdup_printf("%s.groups.json", sp_store_get_path(store));
}

static SpJson *groups_load(SpStore *store, GError **error)
{
    g_autofree char *path = groups_path(store);
    SpJson *root = NULL;
    gboolean invalid = FALSE;
    if (!sp_json_file_read(path, &root, &invalid, error)) {
        g_prefix_error(error, "groups: ");
        return NULL;
    }
    if (invalid) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "groups file %s is not a JSON object", path);
        return NULL;
    }
    return root != NULL ? root : sp_json_new_object();
}

static gboolean groups_save(SpStore *store, const SpJson *groups, GError **error)
{
    g_autofree char *path = groups_path(store);
    g_autofree char *text = sp_json_serialize(groups, NULL);
    if (!g_file_set_contents(path, text, -1, error)) {
        g_prefix_error(error, "groups: ");
        return FALSE;
    }
    return TRUE;
}

gboolean sp_group_create(SpStore *store, const char *name, const char *const *members,
                         GError **error)
{
    g_autoptr(SpJson) groups = NULL;
    SpJson *list;
    if (!sp_vm_name_valid(name, error)) {
        g_prefix_error(error, "group name: ");
        return FALSE;
    }
    if (members == NULL || members[0] == NULL) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "group '%s': name at least one VM", name);
        return FALSE;
    }
    if ((groups = groups_load(store, error)) == NULL)
        return FALSE;
    if (sp_json_object_get(groups, name) != NULL) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS, "group '%s' already exists", name);
        return FALSE;
    }
    list = sp_json_new_array();
    sp_json_object_set(groups, name, list);
    for (guint i = 0; members[i] != NULL; i++) {
        g_autoptr(SpVm) vm = sp_store_vm_get(store, members[i], error);
        if (vm == NULL) {
            g_prefix_error(error, "group '%s': ", name);
            return FALSE;
        }
        if (g_strv_contains((const char *const *)members + i + 1, members[i])) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "group '%s': VM '%s' is named twice", name, members[i]);
            return FALSE;
        }
        sp_json_array_append(list, sp_json_new_string(members[i]));
    }
    return groups_save(store, groups, error);
}

gboolean sp_group_remove(SpStore *store, const char *name, GError **error)
{
    g_autoptr(SpJson) groups = groups_load(store, error);
    if (groups == NULL)
        return FALSE;
    if (sp_json_object_get(groups, name) == NULL) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "no group '%s'", name);
        return FALSE;
    }
    sp_json_free(sp_json_object_take(groups, name));
    return groups_save(store, groups, error);
}

GHashTable *sp_group_list(SpStore *store, GError **error)
{
    g_autoptr(SpJson) groups = groups_load(store, error);
    GHashTable *out;
    if (groups == NULL)
        return NULL;
    out = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_strfreev);
    for (size_t i = 0; i < sp_json_object_len(groups); i++) {
        const SpJson *list = NULL;
        const char *name = sp_json_object_member(groups, i, &list);
        GStrv members = g_new0(char *, sp_json_array_len(list) + 1);
        for (size_t j = 0; j < sp_json_array_len(list); j++)
            members[j] = g_strdup(sp_json_get_string(sp_json_array_get(list, j)));
        g_hash_table_insert(out, g_strdup(name), members);
    }
    return out;
}

/* ---- one checkpoint across the group ---- */

typedef struct {
    SpStore *store;
    SpVm *vm;
    SpVmLock *lock;
    SpQmp *qmp;
    SpDriver *driver;
    SpAgent *agent;
    SpSnapshotPlan *plan;
    guint lease_ms;
    gboolean journaled, freeze_sent, frozen, taken, consistent;
    SpFreezeResult freeze;
    GError *error;     /* this member's freeze or thaw failure */
} Member;

static void member_free(Member *m)
{
    sp_freeze_result_clear(&m->freeze);
    sp_agent_free(m->agent);
    sp_snapshot_plan_free(m->plan);
    sp_driver_free(m->driver);
    sp_qmp_free(m->qmp);
    sp_vm_lock_release(m->lock);
    sp_vm_free(m->vm);
    g_clear_error(&m->error);
    g_free(m);
}

typedef struct {
    SpProgressFn progress;
    gpointer user_data;
} Report;

static void say(const Report *r, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void say(const Report *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sp_progress_vsay(r->progress, r->user_data, fmt, ap);
    va_end(ap);
}

static gboolean step(Member *m, const char *name, GError **error)
{
    if (!sp_store_op_step(m->store, m->plan->op_id, name, error))
        return FALSE;
    sp_test_crash_point(name);
    return TRUE;
}

/* A step while the members are frozen: not fsynced (sp_store_op_step_in_window). */
static gboolean step_frozen(Member *m, const char *name, GError **error)
{
    if (!sp_store_op_step_in_window(m->store, m->plan->op_id, name, error))
        return FALSE;
    sp_test_crash_point(name);
    return TRUE;
}

/* A member's driver makes the checkpoint of stillpoint's own images; through the VM's QMP socket
 * when it needs it (qemu), else reaching the VM itself (libvirt's domain XML names the disks). */
static gboolean open_member_driver(Member *m, const char *vm_name, GError **error)
{
    const SpDriverOps *ops = sp_driver_ops_of(m->vm);
    if (ops->name == NULL || ops->opaque_storage ||
        (ops->needs_qmp && m->vm->qmp_socket == NULL)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "VM '%s': group members need the qemu or libvirt driver", vm_name);
        return FALSE;
    }
    if (ops->needs_qmp &&
        (m->qmp = sp_qmp_connect(m->vm->qmp_socket, SP_QMP_CONNECT_TIMEOUT_MS, error)) == NULL)
        return FALSE;
    return (m->driver = sp_driver_new(m->vm, m->qmp, error)) != NULL;
}

/* Lock, recover, connect, plan and journal one member; nothing is touched yet. */
static Member *member_open(SpStore *store, const char *vm_name, const char *cp_name,
                           const char *made_by, const Report *r, GError **error)
{
    Member *m = g_new0(Member, 1);
    g_autofree char *payload = NULL;
    m->store = store;
    if ((m->vm = sp_store_vm_get(store, vm_name, error)) == NULL ||
        (m->lock = sp_vm_lock_acquire(store, vm_name, error)) == NULL ||
        !sp_coordinator_recover(store, m->vm, NULL, r->progress, r->user_data, error))
        goto fail;
    if (!open_member_driver(m, vm_name, error))
        goto fail;
    m->plan = sp_snapshot_plan_new(vm_name, cp_name);
    m->plan->type = g_strdup("production");
    /* A group never falls back: every member is frozen, or none gets a checkpoint. */
    m->plan->requested = g_strdup("production-only");
    m->plan->origin = g_strdup(SP_ORIGIN_USER);
    m->plan->made_by = made_by != NULL ? g_strdup(made_by) : sp_checkpoint_made_by_self();
    if (!m->driver->ops->plan(m->driver, m->plan, m->vm->overlay_dir, error) ||
        !sp_plan_record_formats(store, m->vm->id, m->plan, error)) /* before the journal */
        goto fail;
    payload = sp_snapshot_plan_to_json(m->plan);
    if (!sp_store_op_begin(store, m->vm->id, "create", payload, &m->plan->op_id, error))
        goto fail;
    m->journaled = TRUE;
    return m;
fail:
    g_prefix_error(error, "group member '%s': ", vm_name);
    member_free(m);
    return NULL;
}

static void member_roll_back(Member *m)
{
    g_autoptr(GError) local = NULL;
    if (!m->journaled || m->taken)
        return;
    if (m->driver->ops->abort(m->driver, m->plan, &local))
        sp_store_op_finish(m->store, m->plan->op_id, SP_OP_ROLLED_BACK, NULL);
}

static gpointer freeze_cb(gpointer data)
{
    Member *m = data;
    if (sp_agent_freeze(m->agent, m->lease_ms, &m->freeze, &m->error) && m->freeze.frozen == 0)
        g_set_error(&m->error, SP_AGENT_ERROR, SP_AGENT_ERROR_COMMAND,
                    "the guest agent froze no filesystem");
    m->frozen = m->error == NULL;
    return NULL;
}

/* Thaws whatever a freeze may have left: the lease's own thaw when it froze, else the standard
 * thaw if the guest says it is frozen (a freeze that timed out may still have happened). */
static gpointer thaw_cb(gpointer data)
{
    Member *m = data;
    SpThawResult thaw = {0};
    g_autoptr(GError) local = NULL;
    g_autofree char *status = NULL;
    if (m->frozen) {
        gboolean thawed = sp_agent_thaw(m->agent, &m->freeze, &thaw, &local);
        SpVerdictInput in = {.stillpoint = sp_agent_is_stillpoint(m->agent),
                             .backend = sp_agent_backend(m->agent), .freeze = &m->freeze,
                             .thaw = thawed ? &thaw : NULL, .disks = m->plan->disks};
        g_autofree char *why = sp_verdict(&in);
        m->consistent = why == NULL;
        if (why != NULL && m->plan->reason == NULL)
            m->plan->reason = g_steal_pointer(&why);
    } else if ((status = sp_agent_fsfreeze_status(m->agent, &local)) != NULL &&
               g_strcmp0(status, "frozen") == 0) {
        sp_json_free(sp_agent_execute(m->agent, "guest-fsfreeze-thaw", NULL,
                                      SP_AGENT_THAW_TIMEOUT_MS, &local));
    }
    if (local != NULL && m->frozen && m->error == NULL)
        m->error = g_steal_pointer(&local);
    return NULL;
}

/* Before the freezes: stillpoint-flush where the agent has it (syncfs now, while the guest runs,
 * so the freeze that follows has little left to write; a failure costs nothing but time), and
 * guest-get-fsinfo for the verdict. */
static gpointer flush_cb(gpointer data)
{
    Member *m = data;
    guint flushed = 0;
    if (sp_agent_has_command(m->agent, "stillpoint-flush"))
        sp_agent_flush(m->agent, &flushed, NULL);
    /* Before any freeze, so that the freezes go out together (a slow guest-get-fsinfo of one
     * member would otherwise delay its freeze behind the others'). */
    sp_agent_read_fsinfo(m->agent, &m->freeze);
    return NULL;
}

/* Runs fn on every member at once (members with an agent; only those a freeze was sent to when
 * sent_only) and waits for all. */
static void run_concurrently(GPtrArray *members, GThreadFunc fn, const char *what,
                             gboolean sent_only)
{
    g_autoptr(GPtrArray) threads = g_ptr_array_new();
    for (guint i = 0; i < members->len; i++) {
        Member *m = g_ptr_array_index(members, i);
        if (m->agent != NULL && (m->freeze_sent || !sent_only))
            g_ptr_array_add(threads, g_thread_new(what, fn, m));
    }
    for (guint i = 0; i < threads->len; i++)
        g_thread_join(g_ptr_array_index(threads, i));
}

/* Prepare everything and connect every agent; FALSE leaves nothing frozen. */
static gboolean group_prepare(GPtrArray *members, guint lease_ms, const Report *r,
                              GError **error)
{
    for (guint i = 0; i < members->len; i++) {
        Member *m = g_ptr_array_index(members, i);
        m->lease_ms = lease_ms;
        if (!m->driver->ops->prepare(m->driver, m->plan, error) ||
            !step(m, STEP_PREPARED, error))
            goto fail;
        if ((m->agent = sp_agent_connect_vm(m->vm, SP_AGENT_SYNC_TIMEOUT_MS, error)) == NULL)
            goto fail;
        continue;
fail:
        g_prefix_error(error, "group member '%s': ", m->vm->name);
        return FALSE;
    }
    say(r, "prepared %u member(s); freezing them all at once (lease %u ms)", members->len,
        lease_ms);
    return TRUE;
}

/* All frozen, or an error naming every member that could not be. */
static gboolean group_freeze(GPtrArray *members, GError **error)
{
    g_autoptr(GString) failed = g_string_new(NULL);
    run_concurrently(members, flush_cb, "sp-flush", FALSE);
    for (guint i = 0; i < members->len; i++) {
        Member *m = g_ptr_array_index(members, i);
        if (!step(m, STEP_FREEZING, error))
            return FALSE;
        m->freeze_sent = TRUE;
    }
    run_concurrently(members, freeze_cb, "sp-freeze", TRUE);
    for (guint i = 0; i < members->len; i++) {
        Member *m = g_ptr_array_index(members, i);
        if (m->error != NULL)
            g_string_append_printf(failed, "%s'%s': %s", failed->len ? "; " : "", m->vm->name,
                                   m->error->message);
    }
    if (failed->len > 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    "could not quiesce every member, so no member got a checkpoint (all were "
                    "thawed): %s",
                    failed->str);
        return FALSE;
    }
    for (guint i = 0; i < members->len; i++)
        if (!step_frozen(g_ptr_array_index(members, i), STEP_FROZEN, error))
            return FALSE;
    return TRUE;
}

/* While every member is frozen: each VM's transaction. A failure leaves the members snapshotted
 * before it with their (valid) checkpoints: QEMU cannot undo a finished transaction. */
static gboolean group_snapshot(GPtrArray *members, const Report *r, GError **error)
{
    for (guint i = 0; i < members->len; i++) {
        Member *m = g_ptr_array_index(members, i);
        say(r, "VM '%s': snapshotting %u disk(s) in one transaction", m->vm->name,
            m->plan->disks->len);
        m->taken = m->driver->ops->snapshot(m->driver, m->plan, m->lease_ms / 2, error);
        if (!m->taken || !step_frozen(m, STEP_SNAPSHOTTED, error)) {
            g_prefix_error(error, "group member '%s': ", m->vm->name);
            return FALSE;
        }
    }
    return TRUE;
}

static SpCheckpoint *member_record(Member *m, GError **error)
{
    /* plan->type is "production": a group never falls back. */
    SpCheckpoint *cp =
        sp_checkpoint_from_plan(m->plan, m->vm->id, m->consistent ? "application" : "crash");
    if (!step(m, m->consistent ? STEP_THAWED_CONSISTENT : STEP_THAWED_CRASH, error) ||
        !sp_plan_record_formats(m->store, m->vm->id, m->plan, error) ||
        !sp_store_checkpoint_add(m->store, cp, m->plan->op_id, NULL, error) ||
        !sp_present_sync(m->store, m->vm, NULL, error)) {
        sp_checkpoint_free(cp);
        return NULL;
    }
    return cp;
}

static gint compare_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static GStrv group_members(SpStore *store, const char *group, GError **error)
{
    g_autoptr(GHashTable) groups = sp_group_list(store, error);
    GStrv members;
    if (groups == NULL)
        return NULL;
    members = g_hash_table_lookup(groups, group);
    if (members == NULL) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                    "no group '%s' (stillpoint group list shows them)", group);
        return NULL;
    }
    members = g_strdupv(members);
    /* Locks in one global order: two group runs sharing members cannot deadlock. */
    qsort(members, g_strv_length(members), sizeof(char *), compare_names);
    return members;
}

GPtrArray *sp_group_checkpoint(SpStore *store, const char *group, const char *name,
                               const char *made_by, SpProgressFn progress, gpointer user_data,
                               GError **error)
{
    Report r = {progress, user_data};
    g_auto(GStrv) names = group_members(store, group, error);
    g_autoptr(GPtrArray) members = g_ptr_array_new_with_free_func((GDestroyNotify)member_free);
    g_autoptr(GPtrArray) cps = NULL;
    g_autoptr(GDateTime) now = g_date_time_new_now_local();
    g_autofree char *cp_name = name != NULL ? g_strdup(name)
                                            : sp_checkpoint_default_name(group, now);
    guint n_disks = 0;
    gboolean ok;

    if (names == NULL || !sp_checkpoint_name_valid(cp_name, error))
        return NULL;
    for (guint i = 0; names[i] != NULL; i++) {
        Member *m = member_open(store, names[i], cp_name, made_by, &r, error);
        if (m == NULL)
            goto fail;
        g_ptr_array_add(members, m);
        n_disks += m->plan->disks->len;
    }
    /* One lease for all: it covers every member's transaction, made one after another. */
    ok = group_prepare(members, sp_coordinator_lease_ms(n_disks), &r, error) &&
         group_freeze(members, error) && group_snapshot(members, &r, error);
    say(&r, "thawing %u member(s)", members->len);
    run_concurrently(members, thaw_cb, "sp-thaw", TRUE);
    if (!ok)
        goto fail;
    cps = g_ptr_array_new_with_free_func((GDestroyNotify)sp_checkpoint_free);
    for (guint i = 0; i < members->len; i++) {
        Member *m = g_ptr_array_index(members, i);
        SpCheckpoint *cp = member_record(m, error);
        if (cp == NULL) {
            g_prefix_error(error, "group member '%s': recording its checkpoint (the next run "
                                  "finishes it): ", m->vm->name);
            return NULL;
        }
        if (m->error != NULL)
            say(&r, "WARNING: VM '%s': %s", m->vm->name, m->error->message);
        g_ptr_array_add(cps, cp);
    }
    return g_steal_pointer(&cps);
fail:
    for (guint i = 0; i < members->len; i++) {
        Member *m = g_ptr_array_index(members, i);
        if (m->taken) {
            g_autoptr(GError) local = NULL;
            SpCheckpoint *cp = member_record(m, &local);
            say(&r, "VM '%s' was snapshotted before the group failed: %s", m->vm->name,
                cp != NULL ? "its checkpoint is kept" : local->message);
            sp_checkpoint_free(cp);
        }
        member_roll_back(m);
    }
    return NULL;
}
