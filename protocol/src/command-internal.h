/* Private helpers shared by the command dispatcher and its argument checker. */
#pragma once
#include "json-internal.h"
#include "stillpoint/command.h"

/* An error reply whose desc is formatted without a length limit (a command name can be long). */
SpJson *sp_command_reply_errorf(const char *klass, const SpJson *id, const char *fmt, ...)
#if defined(__MINGW32__) /* the library formats with mingw's C99 printf, not msvcrt's */
    __attribute__((format(gnu_printf, 3, 4)))
#elif defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* SP_OK when args (an object) satisfy specs; otherwise a status and *ret_reply, the GenericError
 * to send (NULL if even that could not be allocated). */
int sp_command_check_args(const SpArgSpec *specs, const SpJson *args, const SpJson *id,
                          SpJson **ret_reply);
