/* The named events shared with the provider, created with an explicit security descriptor. */
#pragma once
#include <stdbool.h>
#include <windows.h>

/* Creates (or, when open_existing, opens) a manual-reset event restricted by SP_EVENT_SDDL.
 * Returns NULL with GetLastError() set; ERROR_ALREADY_EXISTS when create finds it already made
 * (another agent is running). */
HANDLE sp_named_event_create(const wchar_t *name);
