/* The checkpoint store: VMs, the checkpoint tree and the operation journal, in one SQLite file.
 * Every image operation is journaled as intent before it starts and done after (DESIGN.md #6). */
#pragma once
#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

#define SP_STORE_DEFAULT_PATH "/var/lib/stillpoint/store.db"
#define SP_STORE_ENV "STILLPOINT_STORE"
#define SP_NAME_MAX_CHARS 100

typedef struct SpStore SpStore;

/* A disk given at registration (vm add --disk), for a driver that cannot discover disks (the hook
 * driver without QMP). Opaque to stillpoint: only the hook interprets path. */
typedef struct {
    char *name;           /* 1-32 of [A-Za-z0-9._-]: the disk's name in the checkpoint records */
    char *path;           /* what the hook snapshots: a device, a dataset, an RBD image... */
    char *serial;         /* the serial the guest sees, NULL when not given */
    char *format;         /* the image format on path ("raw" when not given) */
} SpVmDisk;

void sp_vm_disk_free(SpVmDisk *disk);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpVmDisk, sp_vm_disk_free)
/* Parses "NAME=PATH[,serial=S][,format=F]" (",," is a comma inside a value). A clear error names
 * the spec and what is wrong with it. */
SpVmDisk *sp_vm_disk_parse(const char *spec, GError **error);
/* Every spec of a NULL-terminated list (may be NULL: none); NULL on the first bad one. */
GPtrArray *sp_vm_disks_parse(const char *const *specs, GError **error);

typedef struct {
    int64_t id;
    char *name;
    char *qmp_socket;
    char *agent_socket;   /* may be NULL: no agent configured */
    char *driver;         /* "qemu", "hook" or "libvirt" */
    char *libvirt_uri;    /* libvirt driver: the connection URI, NULL = libvirt's default */
    char *libvirt_domain; /* libvirt driver: the domain's name */
    char *hook_command;   /* NULL unless driver is "hook" */
    int64_t hook_timeout_ms; /* the hook's deadline; 0 = the default */
    char *overlay_dir;    /* NULL: next to each disk's current image */
    char *checkpoint_type;/* what create makes without --type, as Hyper-V's Set-VM
                           * -CheckpointType: "production" (the default: falls back to standard
                           * when the guest cannot quiesce), "production-only" or "standard" */
    int64_t current;      /* checkpoint the VM runs on, 0 = none */
    int64_t created_us;
    GPtrArray *disks;     /* of SpVmDisk, given at registration; NULL or empty when none */
} SpVm;

typedef struct {
    char *disk;           /* device name, or node name when the disk has no device */
    char *node;           /* block node that was the disk's top when the checkpoint was taken */
    char *image;          /* image file frozen by the checkpoint (its content) */
    char *overlay;        /* overlay the VM wrote to afterwards; NULL for the hook driver */
    char *overlay_node;
    char *image_format;   /* image's format as recorded when it entered the chain (QEMU's drv,
                           * "qcow2" for an overlay stillpoint made); NULL when the record
                           * predates format records: never guessed */
} SpCheckpointDisk;

typedef struct {
    int64_t id;
    int64_t vm_id;
    int64_t parent;       /* 0 = root */
    char *name;
    char *type;           /* "production", "crash" or "standard" */
    char *consistency;    /* "application" or "crash" */
    int64_t created_us;   /* wall clock, microseconds since the epoch */
    GPtrArray *disks;     /* of SpCheckpointDisk */
    char *state;          /* standard checkpoints: the saved device and memory state; else NULL */
    char *requested;      /* what was asked: "production", "production-only", "standard" or
                           * "crash"; NULL in records older than this field */
    char *reason;         /* why type is not what was asked (the fallback's cause); else NULL */
    char *origin;         /* who asked, as retention sees it: SP_ORIGIN_*; NULL = "user" */
    char *made_by;        /* who made it, for people: "root (uid 0)", "uid 1000 through
                           * stillpointd", ...; may be NULL */
    int64_t op_id;        /* the journal entry (ops.id) that made it; 0 = unknown (older) */
} SpCheckpoint;

/* A checkpoint's origin. Retention merges only the checkpoints of its schedule unless told. */
#define SP_ORIGIN_USER "user"
#define SP_ORIGIN_SCHEDULE "schedule"
#define SP_ORIGIN_BACKUP "backup"
#define SP_ORIGIN_APPLY "apply"

/* The checkpoint types of a VM (sp_store_vm_set_checkpoint_type). */
#define SP_CHECKPOINT_TYPE_DEFAULT "production"
gboolean sp_checkpoint_type_valid(const char *type, GError **error);

typedef enum {
    SP_OP_INTENT,
    SP_OP_DONE,
    SP_OP_ROLLED_BACK,
} SpOpState;

typedef struct {
    int64_t id;
    int64_t vm_id;
    char *kind;           /* "create" */
    SpOpState state;
    char *step;           /* last step reached, for diagnostics and recovery */
    char *payload;        /* JSON text describing the plan (files, nodes) */
    int64_t created_us;
} SpOp;

void sp_vm_free(SpVm *vm);
void sp_checkpoint_disk_free(SpCheckpointDisk *disk);
void sp_checkpoint_free(SpCheckpoint *cp);
void sp_op_free(SpOp *op);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpVm, sp_vm_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpCheckpoint, sp_checkpoint_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpOp, sp_op_free)

/* The store path: explicit > $STILLPOINT_STORE > SP_STORE_DEFAULT_PATH. */
const char *sp_store_resolve_path(const char *explicit_path);

/* Opens (creating the directory, file and schema when missing). */
SpStore *sp_store_open(const char *path, GError **error);
void sp_store_close(SpStore *store);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpStore, sp_store_close)
const char *sp_store_get_path(SpStore *store);

/* Names: VM names are 1-64 of [A-Za-z0-9._-] (they name lock files); checkpoint names are 1-100
 * characters of valid UTF-8 with no control characters. */
gboolean sp_vm_name_valid(const char *name, GError **error);
gboolean sp_checkpoint_name_valid(const char *name, GError **error);

gboolean sp_store_vm_add(SpStore *store, const SpVm *vm, int64_t *ret_id, GError **error);
SpVm *sp_store_vm_get(SpStore *store, const char *name, GError **error);
GPtrArray *sp_store_vm_list(SpStore *store, GError **error); /* of SpVm */
/* Sets what `checkpoint create` makes without --type (sp_checkpoint_type_valid). */
gboolean sp_store_vm_set_checkpoint_type(SpStore *store, const char *name, const char *type,
                                         GError **error);
/* Refuses while the VM has checkpoints unless force; removes only records, never images. */
gboolean sp_store_vm_remove(SpStore *store, const char *name, gboolean force, GError **error);

/* Records a checkpoint and makes it the VM's current one. The parent is the VM's current
 * checkpoint. If op_id is not 0 the op is marked done in the same SQLite transaction, so a crash
 * leaves either both or neither. */
gboolean sp_store_checkpoint_add(SpStore *store, SpCheckpoint *cp, int64_t op_id,
                                 int64_t *ret_id, GError **error);
GPtrArray *sp_store_checkpoint_list(SpStore *store, int64_t vm_id, GError **error);
gboolean sp_store_checkpoint_name_exists(SpStore *store, int64_t vm_id, const char *name,
                                         gboolean *ret_exists, GError **error);

/* Tree edits for delete and rename. Each runs inside the caller's transaction when one is open
 * (sp_store_transaction_begin), so a multi-step edit lands at once or not at all. */
gboolean sp_store_transaction_begin(SpStore *store, GError **error);
gboolean sp_store_transaction_commit(SpStore *store, GError **error);
void sp_store_transaction_rollback(SpStore *store);
gboolean sp_store_checkpoint_set_disk_image(SpStore *store, int64_t cp_id, const char *disk,
                                            const char *image, GError **error);
gboolean sp_store_checkpoint_set_disk_overlay(SpStore *store, int64_t cp_id, const char *disk,
                                              const char *overlay, const char *overlay_node,
                                              GError **error);
/* Image formats (DESIGN.md: a format never comes from probing guest-written bytes). Recorded
 * when an image enters a VM's chains (checkpoint disks and overlays record themselves); the
 * first record of a path stays. The lookup fails with G_IO_ERROR_NOT_FOUND for an unknown path. */
gboolean sp_store_image_format_record(SpStore *store, int64_t vm_id, const char *path,
                                      const char *format, GError **error);
char *sp_store_image_format(SpStore *store, int64_t vm_id, const char *path, GError **error);
/* Image identity (issue 15): a record also keeps the file's st_dev/st_ino from when it was first
 * seen (recording fails when a recorded path now names another file or a symlink). This check
 * refuses, with "image path changed outside stillpoint" (G_IO_ERROR_WRONG_ETAG), a path that
 * no longer names that file; a record without identity (older stores) learns it here. */
gboolean sp_store_image_check(SpStore *store, int64_t vm_id, const char *path, GError **error);
/* Records a checkpoint under the VM's current one inside the caller's transaction, and makes it
 * current (sp_store_checkpoint_add without its own transaction). */
gboolean sp_store_checkpoint_insert(SpStore *store, SpCheckpoint *cp, GError **error);
gboolean sp_store_vm_set_current(SpStore *store, int64_t vm_id, int64_t cp_id, GError **error);
/* Removes one checkpoint record: its children move up to its parent, and when it was the VM's
 * current checkpoint its parent (or none) becomes current. Image files are not touched. */
gboolean sp_store_checkpoint_remove(SpStore *store, int64_t cp_id, GError **error);
/* Validates the name and its uniqueness among the VM's other checkpoints before changing it:
 * G_IO_ERROR_INVALID_ARGUMENT or G_IO_ERROR_EXISTS, and nothing changed. */
gboolean sp_store_checkpoint_rename(SpStore *store, int64_t cp_id, const char *name,
                                    GError **error);

/* The journal. */
gboolean sp_store_op_begin(SpStore *store, int64_t vm_id, const char *kind, const char *payload,
                           int64_t *ret_id, GError **error);
gboolean sp_store_op_step(SpStore *store, int64_t op_id, const char *step, GError **error);
/* The same for a step inside the guest's frozen window: written before it returns (a killed
 * process loses nothing) but not fsynced, which took up to tens of ms there (bench/); the next
 * ordinary write makes it durable. Only a host crash inside the window can lose it. */
gboolean sp_store_op_step_in_window(SpStore *store, int64_t op_id, const char *step,
                                    GError **error);
gboolean sp_store_op_set_payload(SpStore *store, int64_t op_id, const char *payload,
                                 GError **error);
gboolean sp_store_op_finish(SpStore *store, int64_t op_id, SpOpState state, GError **error);
GPtrArray *sp_store_op_list_unfinished(SpStore *store, int64_t vm_id, GError **error);
SpOp *sp_store_op_get(SpStore *store, int64_t op_id, GError **error);

/* The per-VM lock: an flock on "<store>.<vm>.lock" next to the store. Held until the lock is
 * freed (or the process dies). A second process gets G_IO_ERROR_BUSY naming the holder's pid. */
typedef struct SpVmLock SpVmLock;
SpVmLock *sp_vm_lock_acquire(SpStore *store, const char *vm_name, GError **error);
void sp_vm_lock_release(SpVmLock *lock);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpVmLock, sp_vm_lock_release)

G_END_DECLS
