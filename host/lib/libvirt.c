/* The coordinator's side of a libvirt domain. libvirt's domain XML is the truth about disks and
 * their chains (it tracks what its snapshots and block jobs did); it is read with GMarkup, which
 * is enough for the few elements needed here. */
#include "stillpoint/libvirt.h"
#include "op-util.h"

#include <gio/gio.h>
#include <libvirt/libvirt-qemu.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <string.h>

#include "libvirt-internal.h"
#include "libvirt-xml.h"
#include "stillpoint/agent.h"
#include "stillpoint/driver.h"
#include "stillpoint/guest-text.h"

#define JOB_POLL_MS 100
#define JOB_STALL_LIMIT_MS 600000 /* a job that makes no progress for this long is stuck */

/* libvirt prints every error to stderr by default; they are reported through GError instead. */
static void quiet_errors(void *data, virErrorPtr err)
{
    (void)data;
    (void)err;
}

static gpointer init_libvirt(gpointer data)
{
    (void)data;
    virInitialize();
    virSetErrorFunc(NULL, quiet_errors);
    return NULL;
}

/* libvirt's message quotes what the guest agent or QEMU said: escaped (guest-text.h). Valid
 * until the next call in this thread. */
const char *sp_libvirt_error_message(void)
{
    static __thread char *escaped;
    const char *msg = virGetLastErrorMessage();
    g_free(escaped);
    escaped = sp_guest_text(msg != NULL ? msg : "unknown libvirt error");
    return escaped;
}

static const char *last_error(void)
{
    return sp_libvirt_error_message();
}

SpLibvirt *sp_libvirt_open(const char *uri, const char *domain, GError **error)
{
    static GOnce once = G_ONCE_INIT;
    g_autoptr(SpLibvirt) lv = g_new0(SpLibvirt, 1);

    g_once(&once, init_libvirt, NULL);
    lv->name = g_strdup(domain);
    lv->conn = virConnectOpen(uri);
    if (lv->conn == NULL) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot connect to libvirt at %s: %s",
                    uri != NULL ? uri : "its default URI", last_error());
        return NULL;
    }
    lv->dom = virDomainLookupByName(lv->conn, domain);
    if (lv->dom == NULL) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "libvirt domain '%s': %s", domain,
                    last_error());
        return NULL;
    }
    return g_steal_pointer(&lv);
}

void sp_libvirt_free(SpLibvirt *lv)
{
    if (lv == NULL)
        return;
    if (lv->dom != NULL)
        virDomainFree(lv->dom);
    if (lv->conn != NULL)
        virConnectClose(lv->conn);
    g_free(lv->name);
    g_free(lv);
}

const char *sp_libvirt_domain_name(SpLibvirt *lv)
{
    return lv->name;
}

gboolean sp_libvirt_is_running(SpLibvirt *lv)
{
    return virDomainIsActive(lv->dom) == 1;
}

gboolean sp_libvirt_open_if_running(const SpVm *vm, SpLibvirt **ret, GError **error)
{
    const SpDriverOps *ops = sp_driver_ops_of(vm);
    *ret = NULL;
    return ops->domain_if_running == NULL || ops->domain_if_running(vm, ret, error);
}

static GPtrArray *domain_disks(SpLibvirt *lv, GError **error)
{
    char *xml = virDomainGetXMLDesc(lv->dom, 0);
    GPtrArray *disks;
    if (xml == NULL) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "libvirt domain '%s': %s", lv->name,
                    last_error());
        return NULL;
    }
    disks = sp_libvirt_xml_disks(xml, error);
    free(xml);
    return disks;
}

static gint64 disk_capacity(SpLibvirt *lv, const char *target, GError **error)
{
    virDomainBlockInfo info = {0};
    if (virDomainGetBlockInfo(lv->dom, target, &info, 0) < 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "disk %s: its size: %s", target,
                    last_error());
        return -1;
    }
    return (gint64)info.capacity;
}

GPtrArray *sp_libvirt_disks(SpLibvirt *lv, GError **error)
{
    g_autoptr(GPtrArray) xml = domain_disks(lv, error);
    g_autoptr(GPtrArray) disks = g_ptr_array_new_with_free_func((GDestroyNotify)sp_disk_free);
    if (xml == NULL)
        return NULL;
    for (guint i = 0; i < xml->len; i++) {
        SpXmlDisk *x = g_ptr_array_index(xml, i);
        g_autoptr(SpDisk) disk = NULL;
        /* Read-only media (a CD-ROM) have nothing to checkpoint. */
        if (x->readonly || g_strcmp0(x->device, "cdrom") == 0 ||
            g_strcmp0(x->device, "floppy") == 0)
            continue;
        if (g_strcmp0(x->type, "file") != 0 || x->source == NULL || x->source[0] != '/' ||
            x->target == NULL) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                        "libvirt domain '%s', disk %s: a <disk type='%s'> is not a local image "
                        "file, so it cannot get an overlay",
                        lv->name, x->target != NULL ? x->target : "(no target)",
                        x->type != NULL ? x->type : "?");
            return NULL;
        }
        disk = g_new0(SpDisk, 1);
        disk->name = g_strdup(x->target);
        /* libvirt names its block nodes itself, and they change; the target is what stays. */
        disk->node = g_strdup(x->target);
        disk->image = g_strdup(x->source);
        disk->format = g_strdup(x->format != NULL ? x->format : "raw");
        disk->serial = g_strdup(x->serial);
        if ((disk->size = disk_capacity(lv, x->target, error)) < 0)
            return NULL;
        g_ptr_array_add(disks, g_steal_pointer(&disk));
    }
    return g_steal_pointer(&disks);
}

gboolean sp_libvirt_find_image(SpLibvirt *lv, const char *file, char **ret_disk,
                               gboolean *ret_active, GError **error)
{
    g_autoptr(GPtrArray) xml = domain_disks(lv, error);
    *ret_disk = NULL;
    *ret_active = FALSE;
    if (xml == NULL)
        return FALSE;
    for (guint i = 0; i < xml->len; i++) {
        SpXmlDisk *x = g_ptr_array_index(xml, i);
        for (guint j = 0; j < x->chain->len; j++) {
            if (g_strcmp0(g_ptr_array_index(x->chain, j), file) == 0) {
                *ret_disk = g_strdup(x->target);
                *ret_active = j == 0;
                return TRUE;
            }
        }
    }
    return TRUE;
}

/* ---- the guest agent, through libvirt ---- */

char *sp_libvirt_agent_command(SpLibvirt *lv, const char *request, guint timeout_ms,
                               GError **error)
{
    /* libvirt counts in seconds; a sub-second deadline must not become "don't wait" (0). */
    int seconds = (int)MAX((timeout_ms + 999) / 1000, 1);
    char *reply = virDomainQemuAgentCommand(lv->dom, request, seconds, 0);
    virErrorPtr err;
    SpAgentError code = SP_AGENT_ERROR_COMMAND;
    char *copy;

    if (reply != NULL) {
        copy = g_strdup(reply);
        free(reply);
        return copy;
    }
    err = virGetLastError();
    /* libvirt answers an agent's error reply with an error of its own ("unable to execute QEMU
     * agent command"), and a silent or absent agent with AGENT_UNRESPONSIVE. */
    if (err != NULL && err->code == VIR_ERR_AGENT_UNRESPONSIVE)
        code = strstr(last_error(), "timeout") != NULL ? SP_AGENT_ERROR_TIMEOUT
                                                       : SP_AGENT_ERROR_UNREACHABLE;
    else if (err != NULL && err->code == VIR_ERR_OPERATION_TIMEOUT)
        code = SP_AGENT_ERROR_TIMEOUT;
    else if (err != NULL && (err->code == VIR_ERR_OPERATION_INVALID ||
                             err->code == VIR_ERR_NO_DOMAIN || err->code == VIR_ERR_SYSTEM_ERROR))
        code = SP_AGENT_ERROR_UNREACHABLE;
    else if (err != NULL && err->code == VIR_ERR_AGENT_UNSYNCED)
        code = SP_AGENT_ERROR_PROTOCOL;
    g_set_error(error, SP_AGENT_ERROR, code, "through libvirt (domain '%s'): %s", lv->name,
                last_error());
    return NULL;
}

/* ---- snapshots ---- */

char *sp_libvirt_snapshot_name(const char *overlay)
{
    g_autofree char *base = g_path_get_basename(overlay);
    if (g_str_has_suffix(base, ".qcow2"))
        base[strlen(base) - strlen(".qcow2")] = '\0';
    return g_steal_pointer(&base);
}

gboolean sp_libvirt_snapshot(SpLibvirt *lv, const char *name, const char *description,
                             const char *const *targets, const char *const *overlays,
                             const char *memory_file, GError **error)
{
    g_autofree char *xml =
        sp_libvirt_xml_snapshot(name, description, targets, overlays, memory_file, error);
    virDomainSnapshotPtr snap;

    if (xml == NULL) {
        g_prefix_error(error, "libvirt domain '%s': snapshot '%s': ", lv->name, name);
        return FALSE;
    }
    /* REUSE_EXT: the overlays were created before the freeze; no QUIESCE: the coordinator
     * froze the guest itself, with a lease; ATOMIC: all disks or none. With the memory (not
     * LIVE), libvirt pauses the domain for the save, so memory and disks are of one instant. */
    snap = virDomainSnapshotCreateXML(lv->dom, xml,
                                      (memory_file == NULL ? VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY
                                                           : 0) |
                                          VIR_DOMAIN_SNAPSHOT_CREATE_REUSE_EXT |
                                          VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC);
    if (snap == NULL) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "libvirt domain '%s': %s snapshot: %s",
                    lv->name, memory_file == NULL ? "disk-only" : "memory and disk",
                    last_error());
        return FALSE;
    }
    virDomainSnapshotFree(snap);
    return TRUE;
}

/* Snapshot name of the domain in *ret (NULL when libvirt has none by that name). */
static gboolean find_snapshot(SpLibvirt *lv, const char *name, virDomainSnapshotPtr *ret,
                              GError **error)
{
    virErrorPtr err;
    if ((*ret = virDomainSnapshotLookupByName(lv->dom, name, 0)) != NULL)
        return TRUE;
    err = virGetLastError();
    if (err != NULL && err->code == VIR_ERR_NO_DOMAIN_SNAPSHOT)
        return TRUE;
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "libvirt snapshot '%s': %s", name,
                last_error());
    return FALSE;
}

gboolean sp_libvirt_snapshot_forget(SpLibvirt *lv, const char *name, gboolean *ret_found,
                                    GError **error)
{
    virDomainSnapshotPtr snap = NULL;
    int rc;
    if (!find_snapshot(lv, name, &snap, error))
        return FALSE;
    if ((*ret_found = snap != NULL) == FALSE)
        return TRUE;
    /* Metadata only: the merge already happened; its children move up to its parent. */
    rc = virDomainSnapshotDelete(snap, VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY);
    virDomainSnapshotFree(snap);
    if (rc < 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    "removing libvirt snapshot '%s' from domain '%s': %s", name, lv->name,
                    last_error());
        return FALSE;
    }
    return TRUE;
}

gboolean sp_libvirt_snapshot_find(SpLibvirt *lv, const char *description, char **ret,
                                  GError **error)
{
    virDomainSnapshotPtr *snaps = NULL;
    int n = virDomainListAllSnapshots(lv->dom, &snaps, 0);
    gboolean ok = TRUE;

    *ret = NULL;
    if (n < 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "libvirt domain '%s': snapshots: %s",
                    lv->name, last_error());
        return FALSE;
    }
    for (int i = 0; i < n; i++) {
        /* The snapshot's own description, not the one of the domain its XML embeds. */
        char *xml = ok && *ret == NULL ? virDomainSnapshotGetXMLDesc(snaps[i], 0) : NULL;
        g_autofree char *own = NULL;
        if (xml != NULL && !sp_libvirt_xml_snapshot_description(xml, &own, error)) {
            g_prefix_error(error, "libvirt snapshot '%s': ", virDomainSnapshotGetName(snaps[i]));
            ok = FALSE;
        }
        if (own != NULL && strcmp(own, description) == 0)
            *ret = g_strdup(virDomainSnapshotGetName(snaps[i]));
        free(xml);
        virDomainSnapshotFree(snaps[i]);
    }
    free(snaps);
    if (!ok)
        g_clear_pointer(ret, g_free);
    return ok;
}

gboolean sp_libvirt_snapshot_describe(SpLibvirt *lv, const char *name, const char *description,
                                      gboolean *ret_found, GError **error)
{
    virDomainSnapshotPtr snap = NULL, redefined = NULL;
    char *xml = NULL;
    g_autofree char *edited = NULL;

    if (!find_snapshot(lv, name, &snap, error))
        return FALSE;
    if ((*ret_found = snap != NULL) == FALSE)
        return TRUE;
    xml = virDomainSnapshotGetXMLDesc(snap, VIR_DOMAIN_SNAPSHOT_XML_SECURE);
    virDomainSnapshotFree(snap);
    if (xml == NULL) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "libvirt snapshot '%s': %s", name,
                    last_error());
        return FALSE;
    }
    if ((edited = sp_libvirt_xml_with_description(xml, description, error)) == NULL) {
        g_prefix_error(error, "libvirt snapshot '%s': ", name);
        free(xml);
        return FALSE;
    }
    free(xml);
    redefined = virDomainSnapshotCreateXML(lv->dom, edited,
                                           VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE);
    if (redefined == NULL) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    "libvirt snapshot '%s': updating its description: %s", name, last_error());
        return FALSE;
    }
    virDomainSnapshotFree(redefined);
    return TRUE;
}

/* ---- the definition ---- */

#define DESTROY_WAIT_MS 30000

gboolean sp_libvirt_destroy(SpLibvirt *lv, GError **error)
{
    gint64 deadline = g_get_monotonic_time() + (gint64)DESTROY_WAIT_MS * 1000;
    if (virDomainDestroy(lv->dom) < 0 && sp_libvirt_is_running(lv)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "libvirt domain '%s': destroy: %s",
                    lv->name, last_error());
        return FALSE;
    }
    while (sp_libvirt_is_running(lv)) {
        if (g_get_monotonic_time() > deadline) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                        "libvirt domain '%s' still runs %d s after destroy", lv->name,
                        DESTROY_WAIT_MS / 1000);
            return FALSE;
        }
        g_usleep(100 * 1000);
    }
    return TRUE;
}

gboolean sp_libvirt_redefine_disks(SpLibvirt *lv, GHashTable *sources, GError **error)
{
    char *xml = NULL;
    g_autofree char *pointed = NULL;
    virDomainPtr defined;

    if (virDomainIsPersistent(lv->dom) != 1) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "libvirt domain '%s' is transient: it has no definition to point at the "
                    "checkpoint",
                    lv->name);
        return FALSE;
    }
    xml = virDomainGetXMLDesc(lv->dom, VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE);
    if (xml == NULL) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "libvirt domain '%s': %s", lv->name,
                    last_error());
        return FALSE;
    }
    pointed = sp_libvirt_xml_point_disks(xml, sources, error);
    free(xml);
    if (pointed == NULL) {
        g_prefix_error(error, "libvirt domain '%s': ", lv->name);
        return FALSE;
    }
    if ((defined = virDomainDefineXML(lv->conn, pointed)) == NULL) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    "libvirt domain '%s': redefining it on the checkpoint's images: %s",
                    lv->name, last_error());
        return FALSE;
    }
    virDomainFree(defined);
    return TRUE;
}

gboolean sp_libvirt_restore(SpLibvirt *lv, const char *memory_file, GHashTable *sources,
                            GError **error)
{
    char *xml = virDomainSaveImageGetXMLDesc(lv->conn, memory_file,
                                             VIR_DOMAIN_SAVE_IMAGE_XML_SECURE);
    g_autofree char *pointed = NULL;

    if (xml == NULL) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    "libvirt domain '%s': reading the saved state %s: %s", lv->name, memory_file,
                    last_error());
        return FALSE;
    }
    /* The saved definition names the disks as they were at the checkpoint; the domain goes on
     * from new overlays on the checkpoint's images, which hold exactly that content. */
    pointed = sp_libvirt_xml_point_disks(xml, sources, error);
    free(xml);
    if (pointed == NULL) {
        g_prefix_error(error, "libvirt domain '%s', saved state %s: ", lv->name, memory_file);
        return FALSE;
    }
    if (virDomainRestoreFlags(lv->conn, memory_file, pointed, VIR_DOMAIN_SAVE_RUNNING) < 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    "libvirt domain '%s': restoring from %s: %s", lv->name, memory_file,
                    last_error());
        return FALSE;
    }
    return TRUE;
}

/* ---- block commit ---- */

/* Waits for the disk's block job: until it is gone, or (active commit) ready to pivot, which it
 * then does. Fails when the job stops making progress. */
static gboolean wait_job(SpLibvirt *lv, const char *target, SpLibvirtProgress progress,
                         gpointer user_data, GError **error)
{
    gint64 last_change = g_get_monotonic_time(), deadline = 0;
    unsigned long long last_cur = 0;
    int last_percent = -1;
    guint deadline_ms = 0;

    for (;;) {
        virDomainBlockJobInfo info = {0};
        int rc = virDomainGetBlockJobInfo(lv->dom, target, &info, 0);
        if (rc < 0) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "disk %s: block job: %s", target,
                        last_error());
            return FALSE;
        }
        if (rc == 0)
            return TRUE; /* finished (and libvirt has updated its chain) */
        if (deadline == 0) {
            /* The overall deadline (op-util.h), from the job's size when first seen. */
            deadline_ms = sp_op_deadline_ms((gint64)info.end, SP_TEST_DEADLINE_JOB);
            deadline = g_get_monotonic_time() + (gint64)deadline_ms * 1000;
        }
        if (g_get_monotonic_time() >= deadline) {
            virDomainBlockJobAbort(lv->dom, target, VIR_DOMAIN_BLOCK_JOB_ABORT_ASYNC); /* never waits */
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                        "disk %s: the block job did not finish within its deadline of %u s and "
                        "was cancelled; running the operation again goes on from where it "
                        "stopped (the deadline is set with " SP_IMAGE_TIMEOUT_ENV ")",
                        target, deadline_ms / 1000 > 0 ? deadline_ms / 1000 : 1);
            return FALSE;
        }
        if (info.end > 0) {
            int percent = (int)(info.cur * 100 / info.end);
            if (progress != NULL && percent != last_percent)
                progress(target, (guint)percent, user_data);
            last_percent = percent;
        }
        /* cur == end: the copy is done; the pivot is refused with BLOCK_COPY_ACTIVE until
         * libvirt has seen the job's ready event itself, so that means "not yet". */
        if (info.type == VIR_DOMAIN_BLOCK_JOB_TYPE_ACTIVE_COMMIT && info.end > 0 &&
            info.cur == info.end &&
            virDomainBlockJobAbort(lv->dom, target, VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT) < 0) {
            virErrorPtr err = virGetLastError();
            if (err == NULL || err->code != VIR_ERR_BLOCK_COPY_ACTIVE) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                            "disk %s: pivot onto the merged image: %s", target, last_error());
                return FALSE;
            }
        }
        if (info.cur != last_cur) {
            last_cur = info.cur;
            last_change = g_get_monotonic_time();
        } else if (g_get_monotonic_time() - last_change > (gint64)JOB_STALL_LIMIT_MS * 1000) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                        "disk %s: the block job made no progress for %d s; it is left running "
                        "(see 'virsh blockjob')",
                        target, JOB_STALL_LIMIT_MS / 1000);
            return FALSE;
        }
        g_usleep(JOB_POLL_MS * 1000);
    }
}

gboolean sp_libvirt_block_commit(SpLibvirt *lv, const char *target, const char *base,
                                 const char *top, gboolean active, SpLibvirtProgress progress,
                                 gpointer user_data, GError **error)
{
    g_autofree char *disk = NULL;
    gboolean top_active = FALSE;
    unsigned int flags = active ? VIR_DOMAIN_BLOCK_COMMIT_ACTIVE : 0;

    /* A killed run's job first: it may have merged already, or be waiting for its pivot. */
    if (!wait_job(lv, target, progress, user_data, error) ||
        !sp_libvirt_find_image(lv, top, &disk, &top_active, error))
        return FALSE;
    if (disk == NULL)
        return TRUE;
    if (top_active != active) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    "disk %s: %s is %s the active layer now, unlike when the merge was planned",
                    target, top, top_active ? "" : "no longer");
        return FALSE;
    }
    if (virDomainBlockCommit(lv->dom, target, base, top, 0, flags) < 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    "disk %s: libvirt block commit of %s into %s: %s", target, top, base,
                    last_error());
        return FALSE;
    }
    g_clear_pointer(&disk, g_free);
    if (!wait_job(lv, target, progress, user_data, error) ||
        !sp_libvirt_find_image(lv, top, &disk, &top_active, error))
        return FALSE;
    if (disk != NULL) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    "disk %s: the block job ended but libvirt's chain still holds %s", target,
                    top);
        return FALSE;
    }
    return TRUE;
}
