/* commands: the agent's command table — the standard qemu-ga quiescing commands, answered as
 * qemu-ga answers them, and the stillpoint- extensions. Platform-neutral: everything the guest
 * OS does goes through SpFreezeBackend. */
#pragma once
#include <stdbool.h>
#include "freeze-backend.h"
#include "stillpoint/command.h"

#define SP_AGENT_QGA_VERSION "8.2.0"  /* the qemu-ga version whose replies we match */

typedef struct {
    SpFreezeBackend backend;
    unsigned channel;       /* the channel whose request is being dispatched */
    const char *version;    /* stillpoint-agent version */
    int64_t default_lease_ms, max_lease_ms, min_lease_ms;
    bool thaw_on_hangup, standard_thaw_on_hangup;
    bool hooks;
    bool writers;           /* application writers are served (when a system bus runs) */
} SpCommands;

const SpCommandTable *sp_commands_table(void);
/* Dispatch one parsed message from channel; returns the reply (NULL only if out of memory) and
 * the command's flags (SP_CMD_DELIMITED_REPLY: precede the reply with 0xFF). */
SpJson *sp_commands_dispatch(SpCommands *commands, unsigned channel, const SpJson *message,
                             unsigned *ret_flags);
