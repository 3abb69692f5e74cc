/* agent-commands: the guest agents' one command layer — the standard qemu-ga quiescing commands,
 * answered as qemu-ga answers them, and the stillpoint- extensions: their table, argument specs,
 * error codes and reply shapes. Both agents link it; everything the guest OS does goes through
 * the freeze backend (freeze-backend.h). Portable C11 (builds with mingw-w64). */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "stillpoint/command.h"
#include "stillpoint/freeze-backend.h"

#define SP_AGENT_QGA_VERSION "8.2.0"  /* the qemu-ga version whose replies both agents match */

/* What stillpoint-capabilities reports, and the bounds the core enforces. */
typedef struct {
    SpFreezeBackend backend;
    const char *platform;       /* "linux", "windows" */
    const char *backend_name;   /* "fifreeze", "vss"; "fake" for the tests' fake VSS (PROTOCOL.md) */
    const char *version;        /* stillpoint-agent version */
    int64_t default_lease_ms, min_lease_ms, max_lease_ms;
    int64_t hold_limit_ms;      /* a platform cap on every lease (VSS's flush-and-hold), 0 none */
    bool thaw_on_hangup, standard_thaw_on_hangup;
    bool hooks;                 /* freeze hooks are installed */
    bool writers;               /* application writers are served */
} SpAgentCommandsConfig;

typedef struct SpAgentCommands SpAgentCommands;

/* Copies config (its strings are borrowed: they must outlive the commands). */
SpAgentCommands *sp_agent_commands_new(const SpAgentCommandsConfig *config);
void sp_agent_commands_free(SpAgentCommands *commands);

/* Commands an agent answers outside the core (the Linux agent forwards some standard ones to a
 * qemu-ga beside it): guest-info lists them too (borrowed; NULL: none). */
void sp_agent_commands_list_forwarded(SpAgentCommands *commands, const SpCommandTable *forwarded);

/* The commands this agent answers: the backend's optional operations decide some of them. */
const SpCommandTable *sp_agent_commands_table(const SpAgentCommands *commands);

/* Dispatch one parsed message from channel; returns the reply (NULL only if out of memory) and
 * the command's flags (SP_CMD_DELIMITED_REPLY: precede the reply with 0xFF). */
SpJson *sp_agent_commands_dispatch(SpAgentCommands *commands, unsigned channel,
                                   const SpJson *message, unsigned *ret_flags);
