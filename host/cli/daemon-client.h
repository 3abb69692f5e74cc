/* daemon-client: the stillpoint CLI's commands through stillpointd, when it runs. */
#pragma once
#include <glib.h>

/* Runs the command line through stillpointd when asked to (--daemon) or when it is the way in:
 * not root, no --store or $STILLPOINT_STORE, and stillpointd owns its name on the system bus. Returns TRUE when it
 * did (the exit status in *ret_status); FALSE means: work on the store directly. */
gboolean sp_daemon_client_try(int argc, char **argv, int *ret_status);
