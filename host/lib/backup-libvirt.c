/* Backup sessions of libvirt domains: libvirt's own pull-mode backup job, started inside the
 * guest's frozen window, and a libvirt checkpoint made at the same instant, whose bitmaps make the
 * next session incremental. libvirt owns the domain's QEMU, so the bitmaps are libvirt's: every
 * tool that uses libvirt sees the same checkpoints (virsh checkpoint-list, virtnbdbackup). No
 * checkpoint of stillpoint's tree is made: the job's exports are the point in time, and ending
 * the session is ending the job.
 *
 * The session file (backup.c) journals it: "beginning" before the freeze (a crash there: the
 * guest is thawed, a job that started is ended and its checkpoint deleted), "open" with the
 * exports, "ending", "closed" remembering the checkpoint the next incremental starts from. Only
 * stillpoint's own latest checkpoint is kept in libvirt (an older one is deleted once a newer
 * session closed): each checkpoint is a bitmap every write to the disk updates. */
#include "backup-internal.h"

#include <gio/gio.h>
#include <glib/gstdio.h>

#include "stillpoint/driver.h"
#include "stillpoint/libvirt.h"
#include "test-hooks.h"

/* The domain's QEMU creates the NBD socket, as the user libvirt runs it as: a world-writable
 * sticky directory it can write to, a name nobody can guess ahead. */
#define NBD_SOCKET_DIR "/var/tmp"

typedef struct {
    SpLibvirt *lv;
    const char *socket;
    GPtrArray *targets;
    const char *since;
    const char *checkpoint;
    const char *description;
} BeginJob;

static gboolean begin_job_cb(gpointer data, guint timeout_ms, GError **error)
{
    BeginJob *j = data;
    (void)timeout_ms; /* libvirt bounds its own monitor calls */
    if (sp_test_fail_at("transaction")) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "test fault at the backup job");
        return FALSE;
    }
    return sp_libvirt_backup_begin(j->lv, j->socket, (const char *const *)j->targets->pdata,
                                   j->since, j->checkpoint, j->description, error);
}

/* Plans what libvirt can do: the since checkpoint must still have its bitmaps (an apply onto an
 * older image loses them), and only qcow2 disks hold bitmaps at all. */
static gboolean plan_bitmaps(SpLibvirt *lv, SpJson *session, GPtrArray *disks,
                             const SpBackupReport *r, GError **error)
{
    const char *since = sp_json_object_get_string(session, "since-bitmap");
    gboolean usable = FALSE;

    if (since != NULL && !sp_libvirt_checkpoint_usable(lv, since, &usable, error))
        return FALSE;
    if (since != NULL && !usable) {
        sp_backup_say(r, "WARNING: libvirt checkpoint '%s' of the last backup is gone or lost its "
                         "bitmaps (an apply?): this backup is a full one",
                      since);
        sp_json_free(sp_json_object_take(session, "since-bitmap"));
        sp_json_object_set_bool(session, "incremental", false);
    }
    for (guint i = 0; i < disks->len; i++) {
        SpDisk *d = g_ptr_array_index(disks, i);
        if (g_strcmp0(d->format, "qcow2") != 0 &&
            sp_json_object_get(session, "bitmap") != NULL) {
            sp_backup_say(r, "WARNING: disk %s is %s, which holds no bitmap: libvirt makes no "
                             "checkpoint, the next backup is a full one too",
                          d->name, d->format);
            sp_json_free(sp_json_object_take(session, "bitmap"));
        }
    }
    return TRUE;
}

/* The session's disks: each one's export on libvirt's NBD server, and for an incremental the
 * extents changed since the last backup, read through that export's dirty bitmap. */
static SpJson *session_disks(GPtrArray *exports, GPtrArray *disks, const char *socket,
                             gboolean incremental, GError **error)
{
    g_autoptr(SpJson) out = sp_json_new_array();
    for (guint i = 0; i < exports->len; i++) {
        SpLibvirtExport *e = g_ptr_array_index(exports, i);
        SpJson *d = sp_json_new_object();
        g_autofree char *uri = g_strdup_printf("nbd+unix:///%s?socket=%s", e->export_name,
                                               socket);
        sp_json_array_append(out, d);
        sp_json_object_set_string(d, "disk", e->target);
        if (sp_disk_find(disks, e->target) != NULL)
            sp_json_object_set_int(d, "size", sp_disk_find(disks, e->target)->size);
        sp_json_object_set_string(d, "export", e->export_name);
        sp_json_object_set_string(d, "nbd-uri", uri);
        if (incremental && e->bitmap != NULL) {
            g_autofree char *ctx = g_strdup_printf("qemu:dirty-bitmap:%s", e->bitmap);
            gint64 bytes = 0;
            SpJson *extents = sp_backup_changed_extents(socket, e->export_name, e->bitmap,
                                                        &bytes, error);
            if (extents == NULL)
                return NULL;
            sp_json_object_set_string(d, "dirty-bitmap", ctx);
            sp_json_object_set(d, "changed", extents);
            sp_json_object_set_int(d, "changed-bytes", bytes);
        }
    }
    return g_steal_pointer(&out);
}

/* Nothing was begun: the last closed session (and its bitmap) is the VM's again. */
static void begin_undone(SpStore *store, SpVm *vm, SpJson *old)
{
    g_autofree char *path = g_strdup_printf("%s.%s.backup.json", sp_store_get_path(store),
                                            vm->name);
    if (old != NULL)
        sp_backup_session_save(store, vm, old, STATE_CLOSED, NULL);
    else
        g_unlink(path);
}

static gboolean start_job(SpStore *store, SpVm *vm, SpLibvirt *lv, SpJson *session,
                          GPtrArray *disks, const SpBackupReport *r, GError **error)
{
    g_autoptr(GPtrArray) targets = g_ptr_array_new();
    const SpJson *cpj = sp_json_object_get(session, "checkpoint");
    BeginJob job = {.lv = lv, .targets = targets,
                    .socket = sp_json_object_get_string(sp_json_object_get(session, "nbd"),
                                                        "socket"),
                    .since = sp_json_object_get_string(session, "since-bitmap"),
                    .checkpoint = sp_json_object_get_string(session, "bitmap"),
                    .description = sp_json_object_get_string(cpj, "name")};
    gboolean consistent = FALSE;

    for (guint i = 0; i < disks->len; i++)
        g_ptr_array_add(targets, ((SpDisk *)g_ptr_array_index(disks, i))->name);
    g_ptr_array_add(targets, NULL);
    sp_backup_say(r, "starting libvirt's %s backup job of %u disk(s) in the frozen window",
                  job.since != NULL ? "incremental" : "full", disks->len);
    if (!sp_coordinator_quiesced(vm, sp_coordinator_lease_ms(disks->len), begin_job_cb, &job,
                                 &consistent, r->progress, r->user_data, error))
        return FALSE;
    sp_json_object_set_string(session, "consistency", consistent ? "application" : "crash");
    return sp_backup_session_save(store, vm, session, STATE_BEGINNING, error);
}

static SpLibvirt *open_running(SpVm *vm, GError **error)
{
    g_autoptr(SpLibvirt) lv = sp_libvirt_open(vm->libvirt_uri, vm->libvirt_domain, error);
    if (lv != NULL && !sp_libvirt_is_running(lv)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_CONNECTED,
                    "VM '%s': libvirt domain '%s' is not running", vm->name, vm->libvirt_domain);
        return NULL;
    }
    return g_steal_pointer(&lv);
}

static gboolean libvirt_end(SpStore *store, SpVm *vm, SpJson *session, gboolean keep,
                            gboolean aborted, const SpBackupReport *r, GError **error);

static SpJson *libvirt_begin(SpStore *store, SpVm *vm, SpJson *session, SpJson *old,
                             const SpBackupReport *r, GError **error)
{
    g_autoptr(SpJson) s = session;
    g_autoptr(SpLibvirt) lv = open_running(vm, error);
    g_autoptr(GPtrArray) disks = NULL, exports = NULL;
    g_autofree char *socket = g_strdup_printf(NBD_SOCKET_DIR "/stillpoint-%s-%08x.nbd.sock",
                                              vm->name, g_random_int());
    SpJson *nbd = (SpJson *)sp_json_object_get(s, "nbd"), *disks_json = NULL;

    if (lv == NULL || (disks = sp_libvirt_disks(lv, error)) == NULL ||
        !plan_bitmaps(lv, s, disks, r, error))
        return NULL;
    sp_json_object_set_string(nbd, "socket", socket);
    sp_json_object_set_string(nbd, "server", "libvirt");
    if (sp_json_object_get(s, "bitmap") != NULL)
        sp_json_object_set_string((SpJson *)sp_json_object_get(s, "checkpoint"),
                                  "libvirt-checkpoint", sp_json_object_get_string(s, "bitmap"));
    /* Before the freeze: a crash from here on is found by sp_backup_recover. */
    if (!sp_backup_session_save(store, vm, s, STATE_BEGINNING, error))
        return NULL;
    sp_test_crash_point("backup-planned");
    if (!start_job(store, vm, lv, s, disks, r, error)) {
        gboolean running = FALSE;
        g_autoptr(GError) cleanup = NULL;
        /* A job that started (the journal write after it failed) is ended, not left behind. */
        if (!sp_libvirt_backup_running(lv, &running, &cleanup) || running) {
            if (cleanup == NULL && !libvirt_end(store, vm, s, FALSE, TRUE, r, &cleanup))
                g_prefix_error(error, "(ending the session failed too: %s) ", cleanup->message);
            return NULL;
        }
        begin_undone(store, vm, old);
        return NULL;
    }
    if ((exports = sp_libvirt_backup_exports(lv, error)) == NULL ||
        (disks_json = session_disks(exports, disks, socket,
                                    sp_json_object_get(s, "since-bitmap") != NULL, error)) ==
            NULL ||
        (sp_json_object_set(s, "disks", disks_json),
         !sp_backup_session_save(store, vm, s, STATE_OPEN, error))) {
        g_autoptr(GError) cleanup = NULL;
        if (!libvirt_end(store, vm, s, FALSE, TRUE, r, &cleanup))
            g_prefix_error(error, "(ending the session failed too: %s) ", cleanup->message);
        return NULL;
    }
    sp_test_crash_point("backup-exported");
    return g_steal_pointer(&s);
}

/* The checkpoints after the job: aborted, this session's goes (libvirt merges its bitmap into
 * the previous one, which so still covers every change since the last good backup); done, the
 * previous one goes (this one covers everything since). */
static gboolean settle_checkpoints(SpLibvirt *lv, SpJson *session, gboolean aborted,
                                   GError **error)
{
    const char *bitmap = sp_json_object_get_string(session, "bitmap");
    const char *prev = sp_json_object_get_string(session, "previous-bitmap");
    const char *gone = aborted ? bitmap : prev;
    gboolean found = FALSE;

    if (gone != NULL && g_strcmp0(gone, aborted ? prev : bitmap) != 0 &&
        !sp_libvirt_checkpoint_delete(lv, gone, &found, error))
        return FALSE;
    if (aborted && prev != NULL)
        sp_json_object_set_string(session, "bitmap", prev);
    else if (aborted)
        sp_json_free(sp_json_object_take(session, "bitmap"));
    return TRUE;
}

static gboolean libvirt_end(SpStore *store, SpVm *vm, SpJson *session, gboolean keep,
                            gboolean aborted, const SpBackupReport *r, GError **error)
{
    const char *state = sp_json_object_get_string(session, "state");
    gboolean resumed = g_strcmp0(state, STATE_ENDING) == 0;
    g_autoptr(SpLibvirt) lv = NULL;

    if (keep && !resumed) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "VM '%s': a libvirt domain's backup session makes no checkpoint in "
                    "stillpoint's tree to keep (libvirt keeps its checkpoint for the next "
                    "incremental); end it without --keep",
                    vm->name);
        return FALSE;
    }
    /* Killed inside the window: the guest may still be frozen (qemu-ga has no lease). */
    if (g_strcmp0(state, STATE_BEGINNING) == 0)
        sp_coordinator_thaw_left(vm, r->progress, r->user_data);
    sp_backup_say(r, "ending the backup session of VM '%s': ending libvirt's backup job",
                  vm->name);
    if ((lv = sp_libvirt_open(vm->libvirt_uri, vm->libvirt_domain, error)) == NULL ||
        (sp_libvirt_is_running(lv) && !sp_libvirt_backup_end(lv, error)))
        return FALSE;
    if (!resumed)
        sp_json_object_set_bool(session, "aborted", aborted);
    aborted = sp_json_object_get_bool(session, "aborted", aborted);
    if (!sp_backup_session_save(store, vm, session, STATE_ENDING, error))
        return FALSE;
    sp_test_crash_point("backup-ending");
    if (!settle_checkpoints(lv, session, aborted, error))
        return FALSE;
    return sp_backup_session_save(store, vm, session, STATE_CLOSED, error);
}

static gboolean libvirt_alive(SpStore *store, SpVm *vm, SpJson *session, gboolean *ret_alive,
                              GError **error)
{
    g_autoptr(SpLibvirt) lv = sp_libvirt_open(vm->libvirt_uri, vm->libvirt_domain, error);
    (void)store;
    (void)session;
    *ret_alive = FALSE;
    if (lv == NULL)
        return FALSE;
    if (!sp_libvirt_is_running(lv))
        return TRUE; /* shut down or restarted: the job is gone with its QEMU */
    return sp_libvirt_backup_running(lv, ret_alive, error);
}

const SpBackupOps sp_backup_libvirt_ops = {
    .begin = libvirt_begin,
    .end = libvirt_end,
    .alive = libvirt_alive,
};
