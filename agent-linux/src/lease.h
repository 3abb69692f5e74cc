/* lease: the freeze/thaw state machine. Every freeze has a deadline; a thaw says whether the
 * freeze held continuously until it was asked for (pure C, times in ms of a monotonic clock). */
#pragma once
#include <stdbool.h>
#include <stdint.h>

typedef enum {
    SP_THAW_REQUESTED,   /* a thaw command */
    SP_THAW_EXPIRED,     /* the lease ran out */
    SP_THAW_HANGUP,      /* the channel that froze hung up */
    SP_THAW_SHUTDOWN,    /* the agent is stopping */
    SP_THAW_FAILED,      /* the freeze itself failed and was rolled back */
    SP_THAW_WRITER_FAILED, /* thawed on request, but a writer left the bus while frozen */
} SpThawReason;

/* Stable wire names: "requested", "lease-expired", "channel-hangup", "shutdown", "freeze-failed",
 * "writer-failed". */
const char *sp_thaw_reason_str(SpThawReason reason);

typedef struct {
    bool frozen;
    int64_t epoch;           /* of the current or last freeze; 0 before the first */
    int64_t frozen_at_ms;
    int64_t deadline_ms;
    int64_t lease_ms;
    unsigned owner;          /* channel that froze */
    bool owner_hangup_thaws; /* thaw when the owner hangs up */
    /* The last thaw, for a thaw command that arrives after an automatic one. */
    bool last_valid;
    int64_t last_epoch;
    SpThawReason last_reason;
    bool last_consistent;
    int64_t last_held_ms;
    bool external_thaw;      /* someone else thawed one of our filesystems (FITHAW said EINVAL) */
} SpLease;

void sp_lease_init(SpLease *lease, int64_t first_epoch);
/* Start a lease; returns its epoch. */
int64_t sp_lease_begin(SpLease *lease, int64_t now_ms, int64_t lease_ms, unsigned owner,
                       bool owner_hangup_thaws);
/* End it. consistent = a requested thaw, at or before the deadline, with nothing thawed behind
 * our back. Returns consistent. */
bool sp_lease_end(SpLease *lease, int64_t now_ms, SpThawReason reason, bool external_thaw);
bool sp_lease_expired(const SpLease *lease, int64_t now_ms);
int64_t sp_lease_remaining_ms(const SpLease *lease, int64_t now_ms); /* 0 when not frozen */
/* True when owner's hang-up must thaw this lease. */
bool sp_lease_hangup_thaws(const SpLease *lease, unsigned owner);
