/* verdict: whether a checkpoint is application-consistent, from what the guest agent said about
 * its freeze and thaw, mapped onto the disks the checkpoint holds. Application-consistent only
 * when a real backend froze (not a test's fake), every mounted filesystem on a checkpointed disk
 * was frozen, and the thaw that ended that very freeze (its epoch) says it held throughout.
 * Everything else is crash-consistent, with a reason for the record. */
#pragma once
#include <glib.h>
#include "stillpoint/agent.h"
#include "stillpoint/json.h"

G_BEGIN_DECLS

typedef struct {
    gboolean stillpoint;          /* a stillpoint agent (else a stock qemu-ga) */
    const char *backend;          /* sp_agent_backend() */
    const SpFreezeResult *freeze;
    const SpThawResult *thaw;     /* NULL: no thaw verdict (the thaw failed) */
    const GPtrArray *disks;       /* of SpPlanDisk: the checkpoint's disks; NULL: all the VM's */
} SpVerdictInput;

/* NULL when application-consistent; else why not, one sentence (guest text escaped). */
char *sp_verdict(const SpVerdictInput *in);

/* The parts, each NULL when fine. */
char *sp_verdict_backend(gboolean stillpoint, const char *backend);
char *sp_verdict_thaw(gboolean stillpoint, const SpFreezeResult *freeze,
                      const SpThawResult *thaw);
/* Every filesystem guest-get-fsinfo lists on a checkpointed disk (or on a disk the host cannot
 * tell apart from them: no serial) is frozen: in the freeze reply's "frozen", or skipped as
 * "same-filesystem" or "read-only". With qemu-ga (no reply) only the count can be compared. */
char *sp_verdict_coverage(const GPtrArray *disks, const SpJson *fsinfo, const SpJson *reply,
                          guint n_frozen);

G_END_DECLS
