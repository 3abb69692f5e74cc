/* The agent: one peer at a time on a transport, frames in, replies out, through the command
 * table of commands.c and the VSS freezer. */
#pragma once
#include <stdbool.h>
#include <windows.h>
#include "stillpoint/protocol.h"
#include "transport.h"
#include "vss-freezer.h"

#define SP_AGENT_VERSION "0.1.0"
/* guest-info's version: the qemu-ga whose replies both agents match (as agent-linux). */
#define SP_AGENT_QGA_VERSION "8.2.0"
/* The lease of the standard guest-fsfreeze-* commands, as on Linux; VSS caps it at 10 s. */
#define SP_AGENT_DEFAULT_LEASE_MS 60000u
#define SP_AGENT_MIN_LEASE_MS 100u
#define SP_AGENT_MAX_LEASE_MS (3600u * 1000u)

typedef struct {
    SpVssFreezer *freezer;      /* borrowed */
    const char *backend_name;   /* "vss" or "fake", reported by stillpoint-capabilities */
    DWORD default_lease_ms;
    /* A hang-up thaws a freeze of stillpoint-freeze always, and one of the standard
     * guest-fsfreeze-freeze(-list) only with this (off by default, as on Linux: hosts like
     * Proxmox open a new connection per command; the lease and VSS's hold limit bound it). */
    bool standard_thaw_on_hangup;
    bool standard_freeze;       /* the freeze held (or last made) came from a standard command */
    SpTransport *transport;     /* borrowed */
    HANDLE stop;                /* borrowed; signalled to end sp_agent_serve */
    SpFramer *framer;
    bool write_failed;
} SpAgent;

extern const SpCommandTable sp_agent_commands;

/* Serves peers until stop is signalled. Returns 0, or -1 when the transport failed for good. */
int sp_agent_serve(SpAgent *agent);
/* Answers one frame's worth of input (exposed for tests): the reply bytes go to the transport. */
void sp_agent_handle_frame(SpAgent *agent, const SpFrame *frame);
