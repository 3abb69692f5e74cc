/* Closing what may not have been opened, in one line. */
#pragma once
#include <windows.h>

/* Closes h unless it is none (NULL or INVALID_HANDLE_VALUE). */
static inline void sp_close_handle(HANDLE h)
{
    if (h && h != INVALID_HANDLE_VALUE)
        CloseHandle(h);
}
