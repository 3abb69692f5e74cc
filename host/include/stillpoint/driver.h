/* The hypervisor driver interface: discover disks, prepare (outside the frozen window), snapshot
 * all disks at once (inside it), abort what was prepared, and recover after a crash; and what the
 * other operations need of a VM's driver (its agent channel, its domain, stopping, re-pointing
 * and resuming it for apply, the merges it can follow, its own snapshot records, backup
 * sessions). The operations ask the VM's SpDriverOps (sp_driver_ops_of), never its driver's
 * name: driver.c maps the name to the ops, in one place. */
#pragma once
#include <glib.h>
#include "stillpoint/qmp.h"
#include "stillpoint/store.h"

G_BEGIN_DECLS

typedef struct {
    char *name;      /* device id (qdev) or BlockBackend name; the node name when neither */
    char *node;      /* the disk's top block node now (libvirt driver: the disk's target) */
    char *image;     /* the top node's image file */
    char *format;    /* its format driver: qcow2, raw */
    gint64 size;     /* virtual size in bytes */
    char *serial;    /* the device's serial property, NULL when none */
    GPtrArray *below;/* of SpDiskLayer: the layers under image as QEMU opened them (qemu driver),
                      * top down; NULL when unknown */
} SpDisk;

/* A backing layer of a disk: its file and the format QEMU opened it with. */
typedef struct {
    char *image;
    char *format;
} SpDiskLayer;

SpDisk *sp_disk_new(const char *name, const char *node, const char *image, const char *format,
                    const char *serial);
void sp_disk_free(SpDisk *disk);
/* The disk named name in disks (of SpDisk; may be NULL), or NULL. */
const SpDisk *sp_disk_find(GPtrArray *disks, const char *name);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpDisk, sp_disk_free)

/* One disk's part of a checkpoint: the image that will be frozen and the overlay on top. */
typedef struct {
    SpDisk *disk;
    char *overlay;       /* overlay image path (NULL for drivers without overlays) */
    char *overlay_node;  /* its block node name */
    gboolean created;    /* overlay file created by us in this run */
    gboolean added;      /* overlay node added by us in this run */
} SpPlanDisk;

typedef struct {
    char *vm_name;
    char *checkpoint_name;
    char *type;          /* "production", "crash" or "standard", as requested */
    /* For the record (SpCheckpoint): what was asked, why type differs from it (the fallback's
     * cause), who asked and who made it. */
    char *requested;
    char *reason;
    char *origin;
    char *made_by;
    char *state_file;    /* standard: where the device and memory state is saved */
    gboolean was_running;/* standard: the VM ran before it was stopped (resume it after) */
    int64_t op_id;
    GPtrArray *disks;    /* of SpPlanDisk */
    /* Backup sessions (backup.c), borrowed from SpCreateOptions: a persistent dirty bitmap added
     * on every frozen node, and one disabled there, in the snapshot's transaction. */
    const char *bitmap_add;
    const char *bitmap_disable;
} SpSnapshotPlan;

/* Records in the store the formats QEMU reports for every disk's image and the layers below it
 * (a path already recorded keeps its record): images that entered the chain outside stillpoint
 * (the VM's own base, a template it was made from) are known before any qemu-img opens them. */
gboolean sp_plan_record_formats(SpStore *store, int64_t vm_id, const SpSnapshotPlan *plan,
                                GError **error);

SpSnapshotPlan *sp_snapshot_plan_new(const char *vm_name, const char *checkpoint_name);
void sp_snapshot_plan_free(SpSnapshotPlan *plan);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpSnapshotPlan, sp_snapshot_plan_free)
/* Moves every disk of disks (of SpDisk; left empty) into the plan. */
void sp_snapshot_plan_add_disks(SpSnapshotPlan *plan, GPtrArray *disks);
/* The checkpoint record of a plan whose snapshot was taken, of the given consistency. */
SpCheckpoint *sp_checkpoint_from_plan(const SpSnapshotPlan *plan, int64_t vm_id,
                                      const char *consistency);
/* The plan as JSON text for the journal, and back (files and nodes only). */
char *sp_snapshot_plan_to_json(const SpSnapshotPlan *plan);
SpSnapshotPlan *sp_snapshot_plan_from_json(const char *text, GError **error);

typedef struct SpDriver SpDriver;
struct SpAgent;
struct SpLibvirt;
struct SpOpReport;
struct SpBackupOps;

typedef struct {
    const char *name;
    /* Fills plan->disks' overlay/overlay_node; called before journaling. */
    gboolean (*plan)(SpDriver *drv, SpSnapshotPlan *plan, const char *overlay_dir, GError **error);
    gboolean (*prepare)(SpDriver *drv, SpSnapshotPlan *plan, GError **error);
    /* How long snapshot may take inside the frozen window, for the lease the coordinator asks
     * for; NULL: SP_DRIVER_SNAPSHOT_MS_PER_DISK for each disk. */
    guint (*snapshot_ms)(SpDriver *drv, const SpSnapshotPlan *plan);
    /* Inside the window; must return within timeout_ms, which ends before the lease does. */
    gboolean (*snapshot)(SpDriver *drv, SpSnapshotPlan *plan, guint timeout_ms, GError **error);
    /* Best effort: removes whatever prepare made (nodes, files). */
    gboolean (*abort)(SpDriver *drv, SpSnapshotPlan *plan, GError **error);
    /* After a crash: did the snapshot take effect? NULL when the driver cannot tell (the hook
     * driver's storage is opaque): then the journal decides, by whether the snapshot step was
     * recorded as done. */
    gboolean (*committed)(SpDriver *drv, SpSnapshotPlan *plan, gboolean *ret_committed,
                          GError **error);
    void (*free)(SpDriver *drv);
    /* snapshot of a plan of type "standard" also saves the VM's memory and device state to
     * plan->state_file, pausing and resuming the VM itself (libvirt). Otherwise the coordinator
     * stops the VM, snapshots and saves through QMP. */
    gboolean saves_state;

    /* ---- What the other operations ask of the VM's driver. A NULL function or FALSE flag is
     * the default: the VM is a QEMU reached on its own QMP and agent sockets. ---- */
    /* The driver's plan and snapshot work through the VM's QMP socket, which it needs. */
    gboolean needs_qmp;
    /* Overlays are opened before the freeze and the snapshot is one QMP transaction (for the
     * progress messages). */
    gboolean one_transaction;
    /* The VM's launcher opens its disks by their stable links (present.c), which stillpoint keeps
     * on the present and apply re-points; the checkpoints' files are stillpoint's to make
     * read-only (a libvirt domain's are libvirt's to label, a hook's live in its storage). */
    gboolean stable_links;
    /* SpDisk.node is the driver's name for the disk (libvirt's target), not a QEMU block node. */
    gboolean own_disk_nodes;
    /* Checkpoints live in the driver's own storage (the hook's): stillpoint cannot merge, apply,
     * copy, group or back them up, and deletes them through delete_snapshot. */
    gboolean opaque_storage;
    gboolean (*delete_snapshot)(const SpVm *vm, const SpCheckpoint *cp, GError **error);
    /* The config rules of the driver's VMs (sp_vm_config_valid's driver part). */
    const char *(*config_problem)(const SpVm *vm);
    /* The VM's disks as the hypervisor sees them now (sp_vm_discover_disks). */
    GPtrArray *(*discover_disks)(const SpVm *vm, GError **error);
    /* The guest agent's channel, and how it is described in messages. */
    struct SpAgent *(*agent_connect)(const SpVm *vm, guint timeout_ms, GError **error);
    char *(*agent_describe)(const SpVm *vm);
    /* The VM's domain in libvirt, open when it runs (*ret NULL otherwise): the live merges, and
     * the block jobs' view, go through it. */
    gboolean (*domain_if_running)(const SpVm *vm, struct SpLibvirt **ret, GError **error);
    /* Whether the VM runs, and stopping it (force: why it may be, for the message; NULL: it must
     * be off already) before apply replaces its disks. */
    gboolean (*running)(const SpVm *vm, gboolean *ret, GError **error);
    gboolean (*stop)(const SpVm *vm, const char *force, const struct SpOpReport *report,
                     GError **error);
    /* Apply: the VM starts from the new overlays (sources: disk name -> overlay); NULL: its
     * stable links are re-pointed. */
    gboolean (*point)(const SpVm *vm, GHashTable *sources, const struct SpOpReport *report,
                      GError **error);
    /* Resumes a VM at a standard checkpoint cp from its saved state. */
    gboolean (*resume)(const SpVm *vm, const SpCheckpoint *cp, const struct SpOpReport *report,
                       GError **error);
    /* Delete: refuses a merge of disk (mode "commit" or "stream"; top: into the image the VM
     * writes to) the driver cannot follow; running says whether the VM runs. */
    gboolean (*merge_possible)(const SpVm *vm, gboolean running, const char *cp_name,
                               const char *disk, const char *mode, gboolean top,
                               GError **error);
    /* The hypervisor's own record of checkpoint cp_name (*ret NULL: none), and forgetting it
     * when the checkpoint is deleted (*ret_found: it was there). */
    gboolean (*snapshot_find)(const SpVm *vm, const char *cp_name, char **ret, GError **error);
    gboolean (*snapshot_forget)(const SpVm *vm, const char *snapshot, gboolean *ret_found,
                                GError **error);
    /* Rename: the hypervisor's record of cp follows to new_name (the store is still unchanged). */
    gboolean (*rename)(SpStore *store, const SpVm *vm, const SpCheckpoint *cp,
                       const char *new_name, GError **error);
    /* Backup sessions (backup.c); NULL: the driver has none. */
    const struct SpBackupOps *backup;
} SpDriverOps;

struct SpDriver {
    const SpDriverOps *ops;
    SpQmp *qmp;         /* borrowed; NULL when the VM has no QMP socket */
    SpVm *vm;           /* borrowed */
    gpointer priv;      /* the driver's own (freed by ops->free) */
};

/* Overlays shared by the drivers that make them (qemu, libvirt): names a new qcow2 overlay for
 * each planned disk, "<vm>-<disk>-<time>-<nonce>.qcow2" in overlay_dir or next to the disk's
 * image (and a block node name for it when with_nodes); creates one (qemu-img, the disk's image
 * as backing file, not opened: QEMU has it open read-write); removes one this run created. */
gboolean sp_plan_overlays(SpSnapshotPlan *plan, const char *overlay_dir, gboolean with_nodes,
                          GError **error);
/* The discovered disks (moved into the plan) with their overlays named; none is an error. */
gboolean sp_plan_overlay_disks(SpSnapshotPlan *plan, GPtrArray *disks, const char *overlay_dir,
                               gboolean with_nodes, GError **error);
gboolean sp_overlay_create(SpPlanDisk *pd, GError **error);
gboolean sp_overlay_remove(SpPlanDisk *pd, GError **error);
/* After a crash: do the VM's disks (as discovered now) run on the plan's overlays? All or none;
 * some is an error for a human to look at. */
gboolean sp_plan_committed(const SpSnapshotPlan *plan, GPtrArray *disks, gboolean *ret_committed,
                           GError **error);

/* A VM's registration is complete and coherent for its driver: qemu needs a QMP socket, hook a
 * command (and a timeout of at most an hour), libvirt a domain and no sockets (libvirt owns
 * them); domain and URI are the libvirt driver's only. */
gboolean sp_vm_config_valid(const SpVm *vm, GError **error);
/* What sp_vm_config_valid says of a VM that names another driver's things. */
#define SP_DRIVER_PROBLEM_LIBVIRT_ONLY \
    "a libvirt domain and URI (--domain, --uri) are for the libvirt driver"
#define SP_DRIVER_PROBLEM_DISKS \
    "disks are given (--disk) for the hook driver only; the qemu driver finds them through " \
    "QMP, the libvirt driver in the domain's XML"
/* The VM's registration names a QMP socket. */
gboolean sp_vm_has_qmp(const SpVm *vm);
/* The disks a checkpoint of the VM would hold: as QMP or libvirt sees them now, or as given at
 * registration (vm add --disk). */
GPtrArray *sp_vm_discover_disks(const SpVm *vm, GError **error);
/* The disks given at registration, as SpDisk (node = name, size unknown: 0). */
GPtrArray *sp_vm_registered_disks(const SpVm *vm);

/* The local file QEMU names by filename: filename itself, or the "file" child's of a
 * "json:{...}" pseudo-filename (QEMU's name for an image whose backing node was opened by
 * another name than the image's header gives); NULL when it names no local file. */
char *sp_qmp_local_filename(const char *filename);

/* Disks from QMP: query-block entries with a medium, file-backed. */
GPtrArray *sp_qmp_discover_disks(SpQmp *qmp, GError **error);
/* The same without the serials (one round trip instead of one per disk more). */
GPtrArray *sp_qmp_discover_disks_quick(SpQmp *qmp, GError **error);

/* The one place a VM's driver name maps to its ops: NULL for a name no driver has. */
const SpDriverOps *sp_driver_ops_lookup(const char *name);
/* The VM's driver's ops; all defaults (none of the above) for an unknown driver. */
const SpDriverOps *sp_driver_ops_of(const SpVm *vm);

SpDriver *sp_driver_new(SpVm *vm, SpQmp *qmp, GError **error);
void sp_driver_free(SpDriver *drv);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpDriver, sp_driver_free)

/* Makes another driver available by its ops->name (the unit tests' fake driver). */
void sp_driver_register(const SpDriverOps *ops);

extern const SpDriverOps sp_driver_qemu_ops;
extern const SpDriverOps sp_driver_hook_ops;
extern const SpDriverOps sp_driver_libvirt_ops;

#define SP_HOOK_DEFAULT_TIMEOUT_MS 30000
/* Runs a hook VM's command with STILLPOINT_ACTION=delete for checkpoint cp (no freeze), under the
 * VM's hook deadline; TRUE when it exited 0 (the snapshot is gone, or was already). */
gboolean sp_driver_hook_delete(const SpVm *vm, const SpCheckpoint *cp, GError **error);
#define SP_DRIVER_SNAPSHOT_MS_PER_DISK 2000
/* How long the driver's snapshot of plan may take (snapshot_ms, or the per-disk default). */
guint sp_driver_snapshot_ms(SpDriver *drv, const SpSnapshotPlan *plan);

G_END_DECLS
