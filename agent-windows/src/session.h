/* session: the Windows agent's serving loop — one peer at a time on a transport, frames in,
 * replies out through the shared command core (agent-core/) over the VSS freeze backend. */
#pragma once
#include <stdbool.h>
#include <windows.h>
#include "backend-windows.h"
#include "stillpoint/agent-commands.h"
#include "stillpoint/protocol.h"
#include "transport.h"

#define SP_AGENT_VERSION "0.1.0"
/* The lease of the standard guest-fsfreeze-* commands, as on Linux; VSS caps it at 10 s. */
#define SP_AGENT_DEFAULT_LEASE_MS 60000u
#define SP_AGENT_MIN_LEASE_MS 100u
#define SP_AGENT_MAX_LEASE_MS (3600u * 1000u)

typedef struct {
    SpAgentCommands *commands;  /* borrowed */
    SpWindowsBackend *backend;  /* borrowed; told when a peer hangs up */
    SpPeerTransport *transport;     /* borrowed */
    HANDLE stop;                /* borrowed; signalled to end sp_session_serve */
    SpFramer *framer;
    unsigned channel;           /* the current peer's: a new one for every peer */
    bool write_failed;
} SpSession;

/* Serves peers until stop is signalled. Returns 0, or -1 when the transport failed for good. */
int sp_session_serve(SpSession *session);
/* Answers one frame's worth of input (exposed for tests): the reply bytes go to the transport. */
void sp_session_handle_frame(SpSession *session, const SpFrame *frame);
