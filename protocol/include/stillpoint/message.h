/* QGA-compatible messages: requests {"execute", "arguments", "id"} and replies {"return"} or
 * {"error": {"class", "desc"[, "code"]}}. */
#pragma once
#include <stdbool.h>
#include "stillpoint/json.h"

/* QGA error classes (QAPI ErrorClass), as they appear on the wire. */
#define SP_ERROR_CLASS_GENERIC "GenericError"
#define SP_ERROR_CLASS_COMMAND_NOT_FOUND "CommandNotFound"
#define SP_ERROR_CLASS_DEVICE_NOT_ACTIVE "DeviceNotActive"
#define SP_ERROR_CLASS_DEVICE_NOT_FOUND "DeviceNotFound"

/* Commands of the stillpoint extensions carry this prefix; every error they answer has a "code"
 * member (PROTOCOL.md "Error codes"). Standard QGA commands never get one. */
#define SP_EXTENSION_PREFIX "stillpoint-"
/* Codes the dispatcher itself sets for stillpoint- commands; handlers define their own. */
#define SP_ERROR_CODE_COMMAND_NOT_FOUND "command-not-found"
#define SP_ERROR_CODE_COMMAND_DISABLED "command-disabled"
#define SP_ERROR_CODE_INVALID_ARGUMENTS "invalid-arguments"
#define SP_ERROR_CODE_FAILED "failed" /* a handler's error that named no code */

/* A parsed request. It borrows from the SpJson it was parsed from. */
typedef struct {
    const char *execute;        /* command name */
    const SpJson *arguments;    /* an object, or NULL when absent */
    const SpJson *id;           /* any JSON value, echoed in the reply; NULL when absent */
} SpRequest;

/* Why a request could not be parsed, in QGA's words ("QMP input lacks member 'execute'"). */
typedef struct {
    int status;       /* SP_E_NOT_OBJECT, SP_E_MISSING, SP_E_TYPE, SP_E_UNEXPECTED */
    char desc[160];
} SpRequestError;

int sp_request_parse(const SpJson *message, SpRequest *ret, SpRequestError *err);

/* Build a request (for the host side): arguments may be NULL; takes ownership of arguments. */
SpJson *sp_request_new(const char *execute, SpJson *arguments, const SpJson *id);

/* {"return": value[, "id": id]}; takes ownership of value (NULL means {}). */
SpJson *sp_reply_new_return(SpJson *value, const SpJson *id);
/* {"error": {"class": klass, "desc": desc[, "code": code]}[, "id": id]}. code is the stable
 * machine-readable code of stillpoint- commands (PROTOCOL.md "Error codes"); NULL for none. */
SpJson *sp_reply_new_error(const char *klass, const char *desc, const char *code, const SpJson *id);

/* Host side: classify a reply. Returns SP_OK with *ret_return (borrowed) for a {"return"},
 * SP_OK with *ret_return NULL and ret_class/ret_desc/ret_code (borrowed, may be NULL) for an
 * {"error"}, or SP_E_NOT_OBJECT/SP_E_MISSING/SP_E_TYPE for anything else. */
int sp_reply_parse(const SpJson *reply, const SpJson **ret_return, const char **ret_class,
                   const char **ret_desc, const char **ret_code);
