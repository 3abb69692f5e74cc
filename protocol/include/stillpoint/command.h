/* A declarative command table: agents list their commands with argument specs; dispatch checks
 * arguments exactly as QGA does and calls the handler. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include "stillpoint/json.h"
#include "stillpoint/message.h"

typedef enum {
    SP_ARG_STRING,
    SP_ARG_INT,
    SP_ARG_BOOL,
    SP_ARG_NUMBER,       /* int or double */
    SP_ARG_STRING_LIST,  /* array of strings */
    SP_ARG_ARRAY,
    SP_ARG_OBJECT,
    SP_ARG_ANY,
} SpArgType;

typedef struct {
    const char *name;
    SpArgType type;
    bool optional;
} SpArgSpec;

/* What a handler fills in when it fails. class defaults to GenericError. */
typedef struct {
    const char *klass;   /* SP_ERROR_CLASS_* (static string) */
    const char *code;    /* stable code for stillpoint- commands (static string), or NULL */
    char desc[256];
} SpCommandError;

void sp_command_error_set(SpCommandError *err, const char *klass, const char *code,
                          const char *fmt, ...)
#if defined(__MINGW32__) /* the library formats with mingw's C99 printf, not msvcrt's */
    __attribute__((format(gnu_printf, 4, 5)))
#elif defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* A handler returns the "return" value (owned; NULL with err unset means {}), or sets err.
 * args is always an object (empty when the request had none). */
typedef SpJson *(*SpCommandFn)(void *ctx, const SpJson *args, SpCommandError *err);

enum {
    SP_CMD_ALLOWED_WHILE_FROZEN = 1 << 0, /* qemu-ga's frozen allow-list */
    SP_CMD_DELIMITED_REPLY = 1 << 1,      /* reply is preceded by a 0xFF byte (guest-sync-delimited) */
    SP_CMD_NO_REPLY = 1 << 2,             /* e.g. guest-shutdown; not used by our agents yet */
};

typedef struct {
    const char *name;
    SpCommandFn fn;
    const SpArgSpec *args; /* terminated by an entry with name NULL; NULL = no arguments */
    unsigned flags;
} SpCommand;

typedef struct {
    const SpCommand *commands; /* terminated by an entry with name NULL */
} SpCommandTable;

/* Dispatch one parsed message (any JSON value, as the framer+parser produced it).
 * frozen: refuse commands without SP_CMD_ALLOWED_WHILE_FROZEN the way qemu-ga does.
 * Returns the reply to send (owned, never NULL) and sets *ret_flags to the
 * command's flags (0 when no command was found), so the transport can add the 0xFF byte.
 * SP_CMD_NO_REPLY is cleared from *ret_flags when the reply is an error: errors are always sent.
 * Errors of SP_EXTENSION_PREFIX commands always carry a "code" (SP_ERROR_CODE_*, or the
 * handler's own; SP_ERROR_CODE_FAILED when the handler named none). */
SpJson *sp_command_dispatch(const SpCommandTable *table, void *ctx, const SpJson *message,
                            bool frozen, unsigned *ret_flags);

/* The reply for a frame that was not valid JSON or was too large, in QGA's words. */
SpJson *sp_command_reply_for_bad_input(int status, const char *detail);

const SpCommand *sp_command_find(const SpCommandTable *table, const char *name);
/* Names of all commands, for guest-info's supported_commands. */
size_t sp_command_count(const SpCommandTable *table);
