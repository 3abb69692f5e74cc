/* The coordinator: a production checkpoint, step by step (DESIGN.md): lock, journal, prepare,
 * freeze, one transaction, thaw (always), record. And recovery of interrupted operations. */
#pragma once
#include <glib.h>
#include "stillpoint/store.h"

G_BEGIN_DECLS

typedef enum {
    SP_QUIESCE_FAIL,  /* no consistent freeze: no checkpoint */
    SP_QUIESCE_CRASH, /* no consistent freeze: a crash-consistent checkpoint that says so */
    SP_QUIESCE_STANDARD, /* no consistent freeze: a standard checkpoint (memory state saved) */
} SpQuiescePolicy;

typedef struct {
    const char *name;            /* NULL: "VM (MM/DD/YYYY - hh:mm:ss)" */
    gboolean crash_only;         /* --type crash: do not freeze at all */
    gboolean standard;           /* --type standard: stop, save the memory state, no freeze */
    SpQuiescePolicy on_quiesce_failure;
    /* production's own fallback (sp_checkpoint_type_resolve): standard where the driver can
     * make one, none where it cannot */
    gboolean fallback_if_possible;
    const char *requested;       /* for the record: what was asked (checkpoint-type.h); NULL:
                                  * from crash_only and standard */
    const char *origin;          /* SP_ORIGIN_*; NULL: SP_ORIGIN_USER */
    const char *made_by;         /* who, for people; NULL: the user this process runs as */
    const char *bitmap_add;      /* backup.c: dirty bitmaps changed in the transaction (qemu) */
    const char *bitmap_disable;
} SpCreateOptions;

typedef void (*SpProgressFn)(const char *message, gpointer user_data);

/* Timeouts a caller (and the tests) can tighten. */
#define SP_QMP_CONNECT_TIMEOUT_MS 5000

/* Creates a checkpoint of vm (the caller holds the VM's lock). Returns the recorded checkpoint.
 * warnings (may be NULL) collects what went wrong but did not fail the operation. */
SpCheckpoint *sp_coordinator_create(SpStore *store, SpVm *vm, const SpCreateOptions *opts,
                                    SpProgressFn progress, gpointer user_data, GError **error);

/* Finishes or rolls back the VM's unfinished operations (the caller holds the VM's lock), then
 * refuses when the running QEMU writes to a checkpoint's image or to what is not the store's now
 * (sp_present_check). Every command on a VM runs it first. *ret_recovered (may be NULL) counts
 * the operations resolved. */
gboolean sp_coordinator_recover(SpStore *store, SpVm *vm, guint *ret_recovered,
                                SpProgressFn progress, gpointer user_data, GError **error);
/* The same without the check: for the recovery from a QEMU started on a checkpoint's image
 * (sp_present_adopt). */
gboolean sp_coordinator_recover_journal(SpStore *store, SpVm *vm, guint *ret_recovered,
                                        SpProgressFn progress, gpointer user_data,
                                        GError **error);

/* Work done inside the guest's frozen window, within timeout_ms. */
typedef gboolean (*SpQuiescedFn)(gpointer data, guint timeout_ms, GError **error);
/* Freezes the VM's guest as for a production checkpoint (flush, then the leased freeze), runs fn
 * inside the window and thaws, whatever fn did. *ret_consistent: the freeze held until the thaw.
 * FALSE when the guest could not be frozen (fn not run) or fn failed. The caller journals. */
gboolean sp_coordinator_quiesced(SpVm *vm, guint lease_ms, SpQuiescedFn fn, gpointer data,
                                 gboolean *ret_consistent, SpProgressFn progress,
                                 gpointer user_data, GError **error);
/* After a crash inside such a window: thaws a guest left frozen (a stillpoint agent also thaws by
 * itself when its lease ends). Best effort, reported through progress. */
void sp_coordinator_thaw_left(SpVm *vm, SpProgressFn progress, gpointer user_data);

/* "web (11/26/2026 - 04:05:56)", local time, as Hyper-V names checkpoints. */
char *sp_checkpoint_default_name(const char *vm_name, GDateTime *when);

/* The lease for a freeze: long enough for the work inside the window, no longer. */
guint sp_coordinator_lease_ms(guint n_disks);
/* The same when the snapshot inside the window may take snapshot_ms (a hook's deadline). */
guint sp_coordinator_lease_for_ms(guint snapshot_ms);
/* The snapshot's deadline inside the window: it ends this long before the lease, so the thaw
 * still arrives while the freeze holds. */
#define SP_COORDINATOR_THAW_MARGIN_MS 3000

G_END_DECLS
