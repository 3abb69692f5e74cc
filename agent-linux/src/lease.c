/* lease: freeze deadlines and the "held continuously" verdict of a thaw. */
#include "lease.h"

#include <string.h>

const char *sp_thaw_reason_str(SpThawReason reason)
{
    switch (reason) {
    case SP_THAW_REQUESTED: return "requested";
    case SP_THAW_EXPIRED: return "lease-expired";
    case SP_THAW_HANGUP: return "channel-hangup";
    case SP_THAW_SHUTDOWN: return "shutdown";
    case SP_THAW_FAILED: return "freeze-failed";
    case SP_THAW_WRITER_FAILED: return "writer-failed";
    }
    return "unknown";
}

void sp_lease_init(SpLease *lease, int64_t first_epoch)
{
    memset(lease, 0, sizeof(*lease));
    lease->epoch = first_epoch > 0 ? first_epoch - 1 : 0;
}

int64_t sp_lease_begin(SpLease *lease, int64_t now_ms, int64_t lease_ms, unsigned owner,
                       bool owner_hangup_thaws)
{
    lease->frozen = true;
    lease->epoch++;
    lease->frozen_at_ms = now_ms;
    lease->lease_ms = lease_ms;
    lease->deadline_ms = now_ms + lease_ms;
    lease->owner = owner;
    lease->owner_hangup_thaws = owner_hangup_thaws;
    return lease->epoch;
}

bool sp_lease_end(SpLease *lease, int64_t now_ms, SpThawReason reason, bool external_thaw)
{
    bool consistent = reason == SP_THAW_REQUESTED && now_ms <= lease->deadline_ms && !external_thaw;

    if (!lease->frozen)
        return false;
    lease->frozen = false;
    lease->last_valid = true;
    lease->last_epoch = lease->epoch;
    lease->last_reason = reason;
    lease->last_consistent = consistent;
    lease->last_held_ms = now_ms - lease->frozen_at_ms;
    lease->external_thaw = external_thaw;
    return consistent;
}

bool sp_lease_expired(const SpLease *lease, int64_t now_ms)
{
    return lease->frozen && now_ms >= lease->deadline_ms;
}

int64_t sp_lease_remaining_ms(const SpLease *lease, int64_t now_ms)
{
    if (!lease->frozen || now_ms >= lease->deadline_ms)
        return 0;
    return lease->deadline_ms - now_ms;
}

bool sp_lease_hangup_thaws(const SpLease *lease, unsigned owner)
{
    return lease->frozen && lease->owner_hangup_thaws && lease->owner == owner;
}
