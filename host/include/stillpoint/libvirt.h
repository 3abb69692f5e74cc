/* A libvirt domain as the coordinator sees it: libvirt owns QEMU's monitor and the agent channel,
 * so everything goes through its C API — agent commands by passthrough, disk-only external
 * snapshots (libvirt's metadata kept in step, its own quiesce never used), block commit. */
#pragma once
#include <glib.h>
#include "stillpoint/store.h"

G_BEGIN_DECLS

typedef struct SpLibvirt SpLibvirt;

/* Connects to uri (NULL: libvirt's default) and looks the domain up by name. */
SpLibvirt *sp_libvirt_open(const char *uri, const char *domain, GError **error);
void sp_libvirt_free(SpLibvirt *lv);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpLibvirt, sp_libvirt_free)

/* For a VM of the libvirt driver whose domain runs: *ret is its handle; NULL otherwise (another
 * driver, or the domain is shut off). FALSE only when libvirt cannot be asked. */
gboolean sp_libvirt_open_if_running(const SpVm *vm, SpLibvirt **ret, GError **error);
gboolean sp_libvirt_is_running(SpLibvirt *lv);
const char *sp_libvirt_domain_name(SpLibvirt *lv);

/* The domain's writable, file-backed disks (of SpDisk: name = target dev, image = the top of its
 * chain). A writable disk that is not a local file is an error: it could not get an overlay. */
GPtrArray *sp_libvirt_disks(SpLibvirt *lv, GError **error);

/* Where file is in the running domain's backing chains: *ret_disk is the disk's target (NULL when
 * no chain holds it) and *ret_active whether the domain writes to it. */
gboolean sp_libvirt_find_image(SpLibvirt *lv, const char *file, char **ret_disk,
                               gboolean *ret_active, GError **error);

/* One guest agent command through virDomainQemuAgentCommand; returns the reply text. Errors are
 * in the SP_AGENT_ERROR domain, told apart as the socket client tells them apart. */
char *sp_libvirt_agent_command(SpLibvirt *lv, const char *request, guint timeout_ms,
                               GError **error);

/* A disk-only external snapshot of the disks in targets onto the pre-created overlays (same
 * order), atomic across them, recorded in libvirt's snapshot list as name with description.
 * With memory_file, a standard checkpoint: libvirt pauses the domain, saves its memory and device
 * state there, snapshots the disks and runs it on. */
gboolean sp_libvirt_snapshot(SpLibvirt *lv, const char *name, const char *description,
                             const char *const *targets, const char *const *overlays,
                             const char *memory_file, GError **error);
/* Starts the shut-off domain from memory_file (a standard checkpoint's), with the disks named in
 * sources (target -> image) pointed at those images: the guest goes on from the saved instant. */
gboolean sp_libvirt_restore(SpLibvirt *lv, const char *memory_file, GHashTable *sources,
                            GError **error);
/* Removes snapshot name from libvirt's list (metadata only; images are ours). A snapshot that is
 * not there is not an error: *ret_found says whether it was. */
gboolean sp_libvirt_snapshot_forget(SpLibvirt *lv, const char *name, gboolean *ret_found,
                                    GError **error);
/* Sets snapshot name's description (the checkpoint's name) by redefining it. A snapshot that is
 * not there is not an error: *ret_found says whether it was. */
gboolean sp_libvirt_snapshot_describe(SpLibvirt *lv, const char *name, const char *description,
                                      gboolean *ret_found, GError **error);
/* libvirt's snapshot name for a new checkpoint whose first overlay is overlay (its basename). */
char *sp_libvirt_snapshot_name(const char *overlay);
/* The name of the domain's snapshot described as description (a checkpoint's name, unique per
 * VM and kept in step by rename), in *ret; NULL when libvirt lists none. Found by description
 * because a checkpoint's overlay, which named the snapshot, changes when it is applied. */
gboolean sp_libvirt_snapshot_find(SpLibvirt *lv, const char *description, char **ret,
                                  GError **error);

/* Stops the domain the hard way (virDomainDestroy: like pulling the plug) and waits until libvirt
 * reports it off. */
gboolean sp_libvirt_destroy(SpLibvirt *lv, GError **error);
/* Points disks of the domain's persistent definition at other images: sources maps a disk's
 * target to its new top image (a qcow2 whose backing chain is in its header). The domain must be
 * persistent and off. Idempotent. */
gboolean sp_libvirt_redefine_disks(SpLibvirt *lv, GHashTable *sources, GError **error);

typedef void (*SpLibvirtProgress)(const char *disk, guint percent, gpointer user_data);
/* Merges top into base (its backing file) on disk target while the domain runs: block commit,
 * and when active, the pivot onto base. Returns when libvirt's chain no longer holds top. A job
 * already running on the disk (a killed run's) is waited for (and pivoted) first. */
gboolean sp_libvirt_block_commit(SpLibvirt *lv, const char *target, const char *base,
                                 const char *top, gboolean active, SpLibvirtProgress progress,
                                 gpointer user_data, GError **error);

/* ---- libvirt's checkpoint and backup API (libvirt-backup.c) ---- */

/* Starts a pull-mode backup job of the disks in targets (NULL-terminated): the domain's QEMU
 * exports their content at this instant over NBD on the unix socket (a path QEMU can create),
 * each disk's scratch image (what the guest overwrites meanwhile) "SOCKET.TARGET.scratch" next to
 * it, made and removed by libvirt. With since (a checkpoint), each export also carries the
 * changes since it as a dirty-bitmap meta context; with checkpoint, libvirt creates that
 * checkpoint (with description) at the same instant. */
gboolean sp_libvirt_backup_begin(SpLibvirt *lv, const char *socket, const char *const *targets,
                                 const char *since, const char *checkpoint,
                                 const char *description, GError **error);
/* Whether a backup job runs on the domain now. */
gboolean sp_libvirt_backup_running(SpLibvirt *lv, gboolean *ret, GError **error);
/* Ends the domain's backup job, if one runs. */
gboolean sp_libvirt_backup_end(SpLibvirt *lv, GError **error);

typedef struct {
    char *target;      /* the disk */
    char *export_name; /* its NBD export */
    char *bitmap;      /* the export's dirty bitmap (incremental only): qemu:dirty-bitmap:BITMAP */
} SpLibvirtExport;
void sp_libvirt_export_free(SpLibvirtExport *e);
/* The running backup job's exports (of SpLibvirtExport), as libvirt describes them. */
GPtrArray *sp_libvirt_backup_exports(SpLibvirt *lv, GError **error);

/* Whether checkpoint name exists with its bitmaps intact on every disk. */
gboolean sp_libvirt_checkpoint_usable(SpLibvirt *lv, const char *name, gboolean *ret,
                                      GError **error);
/* Deletes checkpoint name (its bitmaps merge into its parent's); *ret_found whether it was
 * there. */
gboolean sp_libvirt_checkpoint_delete(SpLibvirt *lv, const char *name, gboolean *ret_found,
                                      GError **error);

G_END_DECLS
