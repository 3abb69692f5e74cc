/* daemon-ops: stillpointd's methods on a worker thread — the same library calls the CLI makes,
 * each job with its own store connection (SQLite connections are not shared across threads)
 * and the VM's lock held for anything that changes the VM. */
#include "daemon-ops.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stillpoint/document.h"
#include "stillpoint/document-variant.h"
#include "stillpoint/backup.h"
#include "stillpoint/checkpoint-type.h"
#include "stillpoint/coordinator.h"
#include "stillpoint/group.h"
#include "stillpoint/ops.h"
#include "stillpoint/qmp.h"
#include "stillpoint/retention.h"
#include "stillpoint/schedule.h"
#include "stillpoint/store.h"

void sp_daemon_job_free(SpDaemonJob *job)
{
    if (job == NULL)
        return;
    g_free(job->store_path);
    g_free(job->vm);
    g_clear_pointer(&job->parameters, g_variant_unref);
    g_free(job);
}

static void progress_cb(const char *message, gpointer user_data)
{
    SpDaemonJob *job = user_data;
    job->progress(job, message, -1, job->progress_data);
}

static void percent_cb(const char *disk, double percent, gpointer user_data)
{
    SpDaemonJob *job = user_data;
    job->progress(job, disk, percent, job->progress_data);
}

/* Opens the store, loads and locks the VM, and finishes interrupted operations, as the CLI. */
static gboolean open_vm(SpDaemonJob *job, gboolean recover, SpStore **ret_store,
                        SpVmLock **ret_lock, SpVm **ret_vm, GError **error)
{
    g_autoptr(SpStore) store = sp_store_open(job->store_path, error);
    g_autoptr(SpVmLock) lock = NULL;
    g_autoptr(SpVm) vm = NULL;

    if (store == NULL || (vm = sp_store_vm_get(store, job->vm, error)) == NULL ||
        (lock = sp_vm_lock_acquire(store, job->vm, error)) == NULL)
        return FALSE;
    if (recover && !sp_coordinator_recover(store, vm, NULL, progress_cb, job, error))
        return FALSE;
    *ret_store = g_steal_pointer(&store);
    *ret_lock = g_steal_pointer(&lock);
    *ret_vm = g_steal_pointer(&vm);
    return TRUE;
}

/* ---- the methods ---- */

/* The CLI's own documents (document.h) as typed values (document-variant.h): the reply is the
 * one-element tuple of the document's value, which the CLI turns back into the same document. */
static GVariant *document_reply(SpJson *doc, GError **error)
{
    GVariant *value = doc != NULL ? sp_document_to_variant(doc, error) : NULL;

    sp_json_free(doc);
    return value != NULL ? g_variant_new_tuple(&value, 1) : NULL;
}

/* The same, for a method whose document may be null or an object: its reply is (v). */
static GVariant *document_reply_variant(SpJson *doc, GError **error)
{
    GVariant *value = sp_document_to_variant(doc, error);

    sp_json_free(doc);
    return value != NULL ? g_variant_new("(v)", value) : NULL;
}

static GVariant *run_add_vm(SpDaemonJob *job, GError **error)
{
    g_autoptr(GVariant) opts = NULL;
    const char *name, *qmp = NULL, *agent = NULL, *driver = "qemu", *hook = NULL, *dir = NULL;
    const char *domain = NULL, *uri = NULL, *checkpoint_type = NULL;
    gint64 hook_timeout_ms = 0;
    int64_t id = 0;
    g_autoptr(SpStore) store = NULL;
    g_autofree const char **specs = NULL;
    g_autoptr(GPtrArray) disks = NULL;
    SpVm vm;

    g_variant_get(job->parameters, "(&s@a{sv})", &name, &opts);
    g_variant_lookup(opts, "qmp-socket", "&s", &qmp);
    g_variant_lookup(opts, "agent-socket", "&s", &agent);
    g_variant_lookup(opts, "driver", "&s", &driver);
    g_variant_lookup(opts, "hook-command", "&s", &hook);
    g_variant_lookup(opts, "hook-timeout-ms", "x", &hook_timeout_ms);
    g_variant_lookup(opts, "overlay-dir", "&s", &dir);
    g_variant_lookup(opts, "libvirt-domain", "&s", &domain);
    g_variant_lookup(opts, "libvirt-uri", "&s", &uri);
    g_variant_lookup(opts, "checkpoint-type", "&s", &checkpoint_type);
    g_variant_lookup(opts, "disks", "^a&s", &specs);
    if ((disks = sp_vm_disks_parse(specs, error)) == NULL) {
        g_prefix_error(error, "VM '%s': ", name);
        return NULL;
    }
    vm = (SpVm){.disks = disks,
                .name = (char *)name, .qmp_socket = (char *)(qmp ? qmp : ""),
                .agent_socket = (char *)agent, .driver = (char *)driver,
                .hook_command = (char *)hook, .overlay_dir = (char *)dir,
                .libvirt_domain = (char *)domain, .libvirt_uri = (char *)uri,
                .checkpoint_type = (char *)checkpoint_type,
                .hook_timeout_ms = hook_timeout_ms};
    if (!sp_vm_config_valid(&vm, error)) {
        g_prefix_error(error, "VM '%s': ", name);
        return NULL;
    }
    store = sp_store_open(job->store_path, error);
    if (store == NULL || !sp_store_vm_add(store, &vm, &id, error))
        return NULL;
    return document_reply(sp_document_vm_added(name, id), error);   /* what vm add --json prints */
}

static GVariant *run_remove_vm(SpDaemonJob *job, GError **error)
{
    const char *name;
    gboolean force;
    g_autoptr(SpStore) store = NULL;
    g_autoptr(SpVmLock) lock = NULL;

    g_variant_get(job->parameters, "(&sb)", &name, &force);
    store = sp_store_open(job->store_path, error);
    if (store == NULL || (lock = sp_vm_lock_acquire(store, name, error)) == NULL ||
        !sp_store_vm_remove(store, name, force, error))
        return NULL;
    return g_variant_new("()");
}

static GVariant *run_list_vms(SpDaemonJob *job, GError **error)
{
    g_autoptr(SpStore) store = sp_store_open(job->store_path, error);
    g_autoptr(GPtrArray) vms = NULL;

    if (store == NULL || (vms = sp_store_vm_list(store, error)) == NULL)
        return NULL;
    /* A hook command may hold credentials: a caller who is not a VM administrator sees none. */
    for (guint i = 0; job->hide_hook_commands && i < vms->len; i++)
        g_clear_pointer(&((SpVm *)vms->pdata[i])->hook_command, g_free);
    return document_reply(sp_document_vm_list(vms), error);
}

/* As `stillpoint checkpoint list`: interrupted operations are resolved first when the VM's
 * lock is free (a failure is only logged: listing works with the VM off). */
static GVariant *run_list_checkpoints(SpDaemonJob *job, GError **error)
{
    g_autoptr(SpStore) store = sp_store_open(job->store_path, error);
    g_autoptr(SpVm) vm = NULL;
    g_autoptr(SpVmLock) lock = NULL;
    g_autoptr(GPtrArray) cps = NULL;
    g_autoptr(GError) recover_error = NULL;

    if (store == NULL || (vm = sp_store_vm_get(store, job->vm, error)) == NULL)
        return NULL;
    lock = sp_vm_lock_acquire(store, job->vm, &recover_error);
    if (lock != NULL && !sp_coordinator_recover(store, vm, NULL, progress_cb, job, &recover_error))
        g_message("checkpoint list %s: recovery: %s", job->vm, recover_error->message);
    sp_vm_free(g_steal_pointer(&vm));
    if ((vm = sp_store_vm_get(store, job->vm, error)) == NULL ||
        (cps = sp_store_checkpoint_list(store, vm->id, error)) == NULL)
        return NULL;
    return document_reply(sp_document_checkpoint_list(vm, cps), error);
}

static GVariant *run_vm_disks(SpDaemonJob *job, GError **error)
{
    g_autoptr(SpStore) store = sp_store_open(job->store_path, error);
    g_autoptr(SpVm) vm = NULL;
    g_autoptr(GPtrArray) disks = NULL;

    if (store == NULL || (vm = sp_store_vm_get(store, job->vm, error)) == NULL ||
        (disks = sp_vm_discover_disks(vm, error)) == NULL)
        return NULL;
    return document_reply(sp_document_vm_disks(disks), error);
}

/* As `stillpoint vm recover`: the VM's interrupted operations, then its backup session. */
static GVariant *run_recover_vm(SpDaemonJob *job, GError **error)
{
    g_autoptr(SpStore) store = NULL;
    g_autoptr(SpVmLock) lock = NULL;
    g_autoptr(SpVm) vm = NULL;

    if (!open_vm(job, TRUE, &store, &lock, &vm, error) ||
        !sp_backup_recover(store, vm, progress_cb, job, error))
        return NULL;
    return g_variant_new("()");
}

/* Recorded with each checkpoint: the daemon runs as root, the caller is who asked. */
static char *made_by_caller(const SpDaemonJob *job)
{
    return g_strdup_printf("uid %u through stillpointd", job->caller_uid);
}

static GVariant *run_create(SpDaemonJob *job, GError **error)
{
    g_autoptr(GVariant) opts = NULL;
    const char *name = NULL, *type = NULL, *policy = NULL;
    g_autofree char *made_by = NULL;
    g_autoptr(SpStore) store = NULL;
    g_autoptr(SpVmLock) lock = NULL;
    g_autoptr(SpVm) vm = NULL;
    g_autoptr(SpCheckpoint) cp = NULL;
    SpCreateOptions o = {0};

    g_variant_get(job->parameters, "(&s@a{sv})", NULL, &opts);
    g_variant_lookup(opts, "name", "&s", &name);
    g_variant_lookup(opts, "type", "&s", &type);
    g_variant_lookup(opts, "on-quiesce-failure", "&s", &policy);
    if (name != NULL && !sp_checkpoint_name_valid(name, error))
        return NULL;
    if (!open_vm(job, FALSE, &store, &lock, &vm, error) ||
        !sp_checkpoint_type_resolve(vm, type, policy, &o, error))
        return NULL;
    o.name = name;
    made_by = made_by_caller(job);
    o.made_by = made_by;
    cp = sp_coordinator_create(store, vm, &o, progress_cb, job, error);
    return cp != NULL ? document_reply(sp_document_checkpoint(cp, cp->id), error) : NULL;
}

/* As `stillpoint checkpoint create --group`: the group's members lock themselves (in name order). */
static GVariant *run_create_group(SpDaemonJob *job, GError **error)
{
    g_autoptr(GVariant) opts = NULL;
    const char *group = NULL, *name = NULL;
    g_autofree char *made_by = made_by_caller(job);
    g_autoptr(SpStore) store = NULL;
    g_autoptr(GPtrArray) cps = NULL;
    g_autoptr(SpJson) doc = NULL;

    g_variant_get(job->parameters, "(&s@a{sv})", &group, &opts);
    g_variant_lookup(opts, "name", "&s", &name);
    if ((name != NULL && !sp_checkpoint_name_valid(name, error)) ||
        (store = sp_store_open(job->store_path, error)) == NULL)
        return NULL;
    cps = sp_group_checkpoint(store, group, name, made_by, progress_cb, job, error);
    if (cps == NULL || (doc = sp_document_group_checkpoint(store, group, cps, error)) == NULL) {
        g_prefix_error(error, "group '%s': ", group);
        return NULL;
    }
    return document_reply(g_steal_pointer(&doc), error);
}

static GVariant *run_delete(SpDaemonJob *job, GError **error)
{
    const char *ref;
    gboolean subtree;
    g_autoptr(SpStore) store = NULL;
    g_autoptr(SpVmLock) lock = NULL;
    g_autoptr(SpVm) vm = NULL;
    SpOpReport report = {.progress = progress_cb, .percent = percent_cb, .user_data = job};

    g_variant_get(job->parameters, "(&s&sb)", NULL, &ref, &subtree);
    if (!open_vm(job, TRUE, &store, &lock, &vm, error) ||
        !sp_op_delete(store, vm, ref, subtree, &report, error))
        return NULL;
    return g_variant_new("()");
}

static GVariant *run_rename(SpDaemonJob *job, GError **error)
{
    const char *ref, *new_name;
    g_autoptr(SpStore) store = NULL;
    g_autoptr(SpVmLock) lock = NULL;
    g_autoptr(SpVm) vm = NULL;

    g_variant_get(job->parameters, "(&s&s&s)", NULL, &ref, &new_name);
    if (!open_vm(job, TRUE, &store, &lock, &vm, error) ||
        !sp_op_rename(store, vm, ref, new_name, error))
        return NULL;
    return g_variant_new("()");
}

/* The daemon runs as root and the caller owns the export directory, so the caller could swap
 * paths under it (a symlink to /etc in place of a file or of the directory). So: open the
 * caller's directory once (no symlinks, owner checked on the open file), make a new directory
 * in it that only root can write, and export into that one through /proc/PID/fd/N, which names
 * the directory itself whatever happens to paths. The result is given to the caller at the end. */
typedef struct {
    int dir_fd;       /* the caller's directory */
    int stage_fd;     /* our new directory in it */
    char *name;       /* its name */
} ExportDir;

static void export_dir_clear(ExportDir *e)
{
    if (e->stage_fd >= 0)
        close(e->stage_fd);
    if (e->dir_fd >= 0)
        close(e->dir_fd);
    g_free(e->name);
}

static gboolean export_dir_open(ExportDir *e, const char *dir, const char *vm, guint32 uid,
                                GError **error)
{
    struct stat st;

    e->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (!g_path_is_absolute(dir) || e->dir_fd < 0 || fstat(e->dir_fd, &st) < 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "export directory %s: give the absolute path of an existing directory (not a "
                    "symlink)", dir);
        return FALSE;
    }
    if (uid != 0 && st.st_uid != uid) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                    "export directory %s is not yours (owner uid %u): stillpointd exports only "
                    "into a directory the caller owns", dir, (guint)st.st_uid);
        return FALSE;
    }
    e->name = g_strdup_printf("%s-%" G_GINT64_FORMAT, vm, g_get_real_time());
    if (mkdirat(e->dir_fd, e->name, 0700) < 0 ||
        (e->stage_fd = openat(e->dir_fd, e->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
        fstat(e->stage_fd, &st) < 0 || st.st_uid != geteuid()) {
        int errsv = errno;
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "export directory %s/%s: cannot "
                    "create it: %s", dir, e->name, g_strerror(errsv));
        return FALSE;
    }
    return TRUE;
}

/* Gives (uid != 0) or removes (on failure) what is in our directory, by fd only. */
static void export_dir_finish(ExportDir *e, guint32 uid, gboolean ok)
{
    int fd = dup(e->stage_fd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    struct dirent *ent;

    while (d != NULL && (ent = readdir(d)) != NULL) {
        if (g_str_equal(ent->d_name, ".") || g_str_equal(ent->d_name, ".."))
            continue;
        if (!ok)
            (void)unlinkat(e->stage_fd, ent->d_name, 0);
        else if (uid != 0 && fchownat(e->stage_fd, ent->d_name, uid, (gid_t)-1, AT_SYMLINK_NOFOLLOW) < 0)
            g_warning("export: cannot give %s to uid %u: %s", ent->d_name, uid, g_strerror(errno));
    }
    if (d != NULL)
        closedir(d);
    else if (fd >= 0)
        close(fd);
    if (!ok)
        (void)unlinkat(e->dir_fd, e->name, AT_REMOVEDIR);
    else if (uid != 0 && (fchown(e->stage_fd, uid, (gid_t)-1) < 0 || fchmod(e->stage_fd, 0755) < 0))
        g_warning("export: cannot give %s to uid %u: %s", e->name, uid, g_strerror(errno));
}

static GVariant *run_export(SpDaemonJob *job, GError **error)
{
    const char *ref, *dir, *format;
    g_autoptr(SpStore) store = NULL;
    g_autoptr(SpVmLock) lock = NULL;
    g_autoptr(SpVm) vm = NULL;
    g_autofree char *manifest = NULL, *stage = NULL;
    ExportDir e = {.dir_fd = -1, .stage_fd = -1};
    GVariant *reply = NULL;
    gboolean ok;
    SpOpReport report = {.progress = progress_cb, .percent = percent_cb, .user_data = job};

    g_variant_get(job->parameters, "(&s&s&s&s)", NULL, &ref, &dir, &format);
    if (!open_vm(job, TRUE, &store, &lock, &vm, error) ||
        !export_dir_open(&e, dir, vm->name, job->caller_uid, error)) {
        export_dir_clear(&e);
        return NULL;
    }
    stage = g_strdup_printf("/proc/%d/fd/%d", (int)getpid(), e.stage_fd);
    ok = sp_op_export(store, vm, ref, stage, *format ? format : NULL, &report, &manifest, error);
    export_dir_finish(&e, job->caller_uid, ok);
    if (ok) {
        g_autofree char *path = g_build_filename(dir, e.name, "manifest.json", NULL);
        reply = g_variant_new("(s)", path);
    }
    export_dir_clear(&e);
    return reply;
}

static GVariant *run_apply(SpDaemonJob *job, GError **error)
{
    g_autoptr(GVariant) opts = NULL;
    const char *ref, *save = NULL;
    gboolean force = FALSE;
    g_autoptr(SpStore) store = NULL;
    g_autoptr(SpVmLock) lock = NULL;
    g_autoptr(SpVm) vm = NULL;
    SpOpReport report = {.progress = progress_cb, .percent = percent_cb, .user_data = job};
    SpJson *doc;

    g_variant_get(job->parameters, "(&s&s@a{sv})", NULL, &ref, &opts);
    g_variant_lookup(opts, "save-current", "&s", &save);
    g_variant_lookup(opts, "force", "b", &force);
    if (!open_vm(job, TRUE, &store, &lock, &vm, error) ||
        !sp_op_apply(store, vm, ref, save, force, &report, error) ||
        (doc = sp_document_checkpoint_applied(store, vm->name, error)) == NULL)
        return NULL;
    return document_reply_variant(doc, error);
}

/* As `stillpoint vm set`. */
static GVariant *run_set_vm(SpDaemonJob *job, GError **error)
{
    g_autoptr(GVariant) opts = NULL;
    const char *type = NULL;
    g_autoptr(SpStore) store = NULL;

    g_variant_get(job->parameters, "(&s@a{sv})", NULL, &opts);
    if (!g_variant_lookup(opts, "checkpoint-type", "&s", &type)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "vm set: the option checkpoint-type is missing");
        return NULL;
    }
    store = sp_store_open(job->store_path, error);
    if (store == NULL || !sp_store_vm_set_checkpoint_type(store, job->vm, type, error))
        return NULL;
    return g_variant_new("()");
}

/* As `stillpoint checkpoint show`. */
static GVariant *run_show(SpDaemonJob *job, GError **error)
{
    const char *ref;
    g_autoptr(SpStore) store = sp_store_open(job->store_path, error);
    g_autoptr(SpVm) vm = NULL;
    g_autoptr(SpCheckpoint) cp = NULL;
    g_autoptr(GPtrArray) cps = NULL;

    g_variant_get(job->parameters, "(&s&s)", NULL, &ref);
    if (store == NULL || (vm = sp_store_vm_get(store, job->vm, error)) == NULL ||
        (cp = sp_op_find_checkpoint(store, vm, ref, error)) == NULL ||
        (cps = sp_store_checkpoint_list(store, vm->id, error)) == NULL)
        return NULL;
    return document_reply(sp_document_checkpoint_show(vm, cps, cp), error);
}

/* As `stillpoint checkpoint resume`. */
static GVariant *run_resume(SpDaemonJob *job, GError **error)
{
    g_autoptr(SpStore) store = NULL;
    g_autoptr(SpVmLock) lock = NULL;
    g_autoptr(SpVm) vm = NULL;
    SpOpReport report = {.progress = progress_cb, .percent = percent_cb, .user_data = job};

    if (!open_vm(job, TRUE, &store, &lock, &vm, error) || !sp_op_resume(store, vm, &report, error))
        return NULL;
    return g_variant_new("()");
}

/* As `stillpoint checkpoint retention`: how many checkpoints were merged away. */
static GVariant *run_retention(SpDaemonJob *job, GError **error)
{
    g_autoptr(GVariant) opts = NULL;
    guint32 keep = 0;
    gboolean all = FALSE;
    guint merged = 0;
    g_autoptr(SpStore) store = NULL;
    g_autoptr(SpVmLock) lock = NULL;
    g_autoptr(SpVm) vm = NULL;
    SpOpReport report = {.progress = progress_cb, .percent = percent_cb, .user_data = job};

    g_variant_get(job->parameters, "(&s@a{sv})", NULL, &opts);
    if (!g_variant_lookup(opts, "keep", "u", &keep)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "checkpoint retention: the option keep (u) is missing");
        return NULL;
    }
    g_variant_lookup(opts, "all", "b", &all);
    if (!open_vm(job, TRUE, &store, &lock, &vm, error) ||
        !sp_retention_apply(store, vm, keep, all, &report, &merged, error))
        return NULL;
    return g_variant_new("(u)", merged);
}

/* ---- schedules: their units go under job->unit_dir ---- */

/* As `stillpoint schedule list [VM]`: "" lists every VM's. */
static GVariant *run_list_schedules(SpDaemonJob *job, GError **error)
{
    const char *vm = job->vm != NULL && job->vm[0] != '\0' ? job->vm : NULL;

    return document_reply(sp_schedule_list(job->unit_dir, vm, error), error);
}

/* As `stillpoint schedule create VM`: the units run the installed CLI on the daemon's store. */
static GVariant *run_create_schedule(SpDaemonJob *job, GError **error)
{
    g_autoptr(GVariant) opts = NULL;
    g_autoptr(SpStore) store = NULL;
    const char *calendar = "daily";
    guint32 keep = 0;
    gboolean has_keep;

    g_variant_get(job->parameters, "(&s@a{sv})", NULL, &opts);
    g_variant_lookup(opts, "on_calendar", "&s", &calendar);
    has_keep = g_variant_lookup(opts, "keep", "u", &keep);
    if (keep > G_MAXINT) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "schedule create: keep %u is too large", keep);
        return NULL;
    }
    if ((store = sp_store_open(job->store_path, error)) == NULL)
        return NULL;
    return document_reply(sp_schedule_create(store, job->unit_dir, job->vm, calendar,
                                             has_keep ? (int)keep : -1, SP_CLI_PATH, error),
                          error);
}

static GVariant *run_remove_schedule(SpDaemonJob *job, GError **error)
{
    return document_reply(sp_schedule_remove(job->unit_dir, job->vm, error), error);
}

/* Authorized: the daemon adds the caller to its watchers (stillpointd.c). */
static GVariant *run_watch(SpDaemonJob *job, GError **error)
{
    return g_variant_new("()");
}

/* ---- consistency groups ---- */

static GVariant *run_list_groups(SpDaemonJob *job, GError **error)
{
    g_autoptr(SpStore) store = sp_store_open(job->store_path, error);
    g_autoptr(GHashTable) groups = store != NULL ? sp_group_list(store, error) : NULL;

    return groups != NULL ? document_reply(sp_document_group_list(groups), error) : NULL;
}

static GVariant *run_create_group_def(SpDaemonJob *job, GError **error)
{
    g_autofree const char **members = NULL;
    g_autoptr(SpStore) store = NULL;

    g_variant_get(job->parameters, "(&s^a&s)", NULL, &members);
    store = sp_store_open(job->store_path, error);
    if (store == NULL || !sp_group_create(store, job->vm, members, error))
        return NULL;
    return g_variant_new("()");
}

static GVariant *run_remove_group(SpDaemonJob *job, GError **error)
{
    g_autoptr(SpStore) store = sp_store_open(job->store_path, error);

    if (store == NULL || !sp_group_remove(store, job->vm, error))
        return NULL;
    return g_variant_new("()");
}

/* ---- backup sessions ---- */

/* As `stillpoint backup begin` (and `hook pre`): the session document. */
static GVariant *run_begin_backup(SpDaemonJob *job, GError **error)
{
    g_autoptr(GVariant) opts = NULL;
    gboolean incremental = FALSE;
    g_autoptr(SpStore) store = NULL;
    g_autoptr(SpVmLock) lock = NULL;
    g_autoptr(SpVm) vm = NULL;
    SpJson *session;

    g_variant_get(job->parameters, "(&s@a{sv})", NULL, &opts);
    g_variant_lookup(opts, "incremental", "b", &incremental);
    if (!open_vm(job, FALSE, &store, &lock, &vm, error) ||
        (session = sp_backup_begin(store, vm, incremental, progress_cb, job, error)) == NULL)
        return NULL;
    /* The caller reads what it was authorized for, without root; nobody else can. */
    if (!sp_backup_socket_give(
            sp_json_object_get_string(sp_json_object_get(session, "nbd"), "socket"),
            job->caller_uid, error)) {
        sp_json_free(session);
        sp_backup_end(store, vm, FALSE, TRUE, progress_cb, job, NULL);
        return NULL;
    }
    return document_reply(session, error);
}

/* As `stillpoint backup end` (and `hook post`). */
static GVariant *run_end_backup(SpDaemonJob *job, GError **error)
{
    g_autoptr(GVariant) opts = NULL;
    gboolean keep = FALSE, failed = FALSE;
    g_autoptr(SpStore) store = NULL;
    g_autoptr(SpVmLock) lock = NULL;
    g_autoptr(SpVm) vm = NULL;

    g_variant_get(job->parameters, "(&s@a{sv})", NULL, &opts);
    g_variant_lookup(opts, "keep", "b", &keep);
    g_variant_lookup(opts, "failed", "b", &failed);
    if (!open_vm(job, FALSE, &store, &lock, &vm, error) ||
        !sp_backup_end(store, vm, keep, failed, progress_cb, job, error))
        return NULL;
    return g_variant_new("()");
}

/* As `stillpoint backup status`: the session's journal, or null. */
static GVariant *run_backup_status(SpDaemonJob *job, GError **error)
{
    g_autoptr(SpStore) store = sp_store_open(job->store_path, error);
    g_autoptr(SpVm) vm = NULL;
    g_autoptr(GError) local = NULL;
    SpJson *session;

    if (store == NULL || (vm = sp_store_vm_get(store, job->vm, error)) == NULL)
        return NULL;
    session = sp_backup_status(store, vm, &local);
    if (session == NULL && local != NULL) {
        g_propagate_error(error, g_steal_pointer(&local));
        return NULL;
    }
    return document_reply_variant(session != NULL ? session : sp_json_new_null(), error);
}

static const struct {
    const char *method;
    GVariant *(*run)(SpDaemonJob *job, GError **error);
} methods[] = {
    {"ListVms", run_list_vms},
    {"AddVm", run_add_vm},
    {"RemoveVm", run_remove_vm},
    {"ListCheckpoints", run_list_checkpoints},
    {"GetVmDisks", run_vm_disks},
    {"RecoverVm", run_recover_vm},
    {"CreateCheckpoint", run_create},
    {"CreateGroupCheckpoint", run_create_group},
    {"DeleteCheckpoint", run_delete},
    {"RenameCheckpoint", run_rename},
    {"ExportCheckpoint", run_export},
    {"ApplyCheckpoint", run_apply},
    {"SetVm", run_set_vm},
    {"ShowCheckpoint", run_show},
    {"ResumeCheckpoint", run_resume},
    {"ListGroups", run_list_groups},
    {"CreateGroup", run_create_group_def},
    {"RemoveGroup", run_remove_group},
    {"BeginBackup", run_begin_backup},
    {"EndBackup", run_end_backup},
    {"GetBackupStatus", run_backup_status},
    {"Watch", run_watch},
    {"ApplyRetention", run_retention},
    {"ListSchedules", run_list_schedules},
    {"CreateSchedule", run_create_schedule},
    {"RemoveSchedule", run_remove_schedule},
};

GVariant *sp_daemon_job_run(SpDaemonJob *job, GError **error)
{
    for (gsize i = 0; i < G_N_ELEMENTS(methods); i++)
        if (g_str_equal(methods[i].method, job->method))
            return methods[i].run(job, error);
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "unknown method %s", job->method);
    return NULL;
}
