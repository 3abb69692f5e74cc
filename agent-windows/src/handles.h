/* Closing what may not have been opened, in one line. */
#pragma once
#include <windows.h>

/* Closes h unless it is none (NULL or INVALID_HANDLE_VALUE). */
static inline void sp_close_handle(HANDLE h)
{
    if (h && h != INVALID_HANDLE_VALUE)
        CloseHandle(h);
}

/* Closes *h and leaves INVALID_HANDLE_VALUE there: a field that owns a handle reads as closed. */
static inline void sp_close_handle_at(HANDLE *h)
{
    sp_close_handle(*h);
    *h = INVALID_HANDLE_VALUE;
}
