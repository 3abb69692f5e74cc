/* The declarative command table: find a command, refuse it while frozen, check its arguments and
 * run its handler, answering every failure the way qemu-ga's qmp_dispatch() does. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "command-internal.h"

/* qemu-ga's reason for commands outside the frozen allow-list (qemu >= 9.1 wording). */
#define SP_DISABLED_REASON "the command is not allowed"

void sp_command_error_set(SpCommandError *err, const char *klass, const char *code,
                          const char *fmt, ...)
{
    va_list ap;

    if (!err)
        return;
    err->klass = klass ? klass : SP_ERROR_CLASS_GENERIC;
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->desc, sizeof(err->desc), fmt, ap);
    va_end(ap);
}

SpJson *sp_command_reply_errorf(const char *klass, const SpJson *id, const char *fmt, ...)
{
    va_list ap;
    char *desc;
    int n;
    SpJson *reply;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    desc = sp_malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(desc, (size_t)n + 1, fmt, ap);
    va_end(ap);
    reply = sp_reply_new_error(klass, desc, NULL, id);
    free(desc);
    return reply;
}

const SpCommand *sp_command_find(const SpCommandTable *table, const char *name)
{
    if (!table || !name)
        return NULL;
    for (const SpCommand *c = table->commands; c && c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

size_t sp_command_count(const SpCommandTable *table)
{
    size_t n = 0;

    for (const SpCommand *c = table ? table->commands : NULL; c && c->name; c++)
        n++;
    return n;
}

static bool is_extension(const char *name)
{
    return strncmp(name, SP_EXTENSION_PREFIX, strlen(SP_EXTENSION_PREFIX)) == 0;
}

/* Run the handler and turn what it produced into the reply. A code set by the handler of a
 * standard command is dropped: those answer exactly as qemu-ga does. */
static SpJson *run_handler(const SpCommand *cmd, void *ctx, const SpJson *args, const SpJson *id)
{
    SpCommandError err = { 0 };
    SpJson *ret = cmd->fn ? cmd->fn(ctx, args, &err) : NULL;

    if (err.klass || err.desc[0]) {
        /* A handler that both returned a value and set an error failed: the error wins. */
        sp_json_free(ret);
        err.desc[sizeof(err.desc) - 1] = '\0';
        return sp_reply_new_error(err.klass ? err.klass : SP_ERROR_CLASS_GENERIC, err.desc,
                                  is_extension(cmd->name) ? err.code : NULL, id);
    }
    return sp_reply_new_return(ret, id);
}

/* Look the command up and apply the frozen allow-list; NULL with *ret_reply set on refusal. */
static const SpCommand *resolve(const SpCommandTable *table, const SpJson *message,
                                const SpRequest *req, bool frozen, const SpJson *id,
                                SpJson **ret_reply, const char **ret_code)
{
    const SpJson *execute = sp_json_object_get(message, "execute");
    /* A name with an embedded U+0000 must not match the command it starts with. */
    const SpCommand *cmd = strlen(req->execute) == sp_json_get_string_len(execute)
                               ? sp_command_find(table, req->execute)
                               : NULL;

    if (!cmd) {
        *ret_reply = sp_command_reply_errorf(SP_ERROR_CLASS_COMMAND_NOT_FOUND, id,
                                             "The command %s has not been found", req->execute);
        *ret_code = SP_ERROR_CODE_COMMAND_NOT_FOUND;
        return NULL;
    }
    if (frozen && !(cmd->flags & SP_CMD_ALLOWED_WHILE_FROZEN)) {
        *ret_reply = sp_command_reply_errorf(SP_ERROR_CLASS_COMMAND_NOT_FOUND, id,
                                             "Command %s has been disabled: " SP_DISABLED_REASON,
                                             req->execute);
        *ret_code = SP_ERROR_CODE_COMMAND_DISABLED;
        return NULL;
    }
    return cmd;
}

/* stillpoint- commands promise a machine-readable code with every error, also for the errors
 * the dispatcher raises before the handler runs. */
static SpJson *with_code(SpJson *reply, const char *execute, const char *code)
{
    size_t pos;
    SpJsonMember *error;

    if (!reply || !is_extension(execute))
        return reply;
    pos = sp_json_object_find(reply, "error", 5);
    if (pos == SIZE_MAX)
        return reply;
    error = &reply->u.obj.members[pos];
    if (!sp_json_object_get(error->value, "code"))
        sp_json_object_set_string(error->value, "code", code);
    return reply;
}

static bool is_error_reply(const SpJson *reply)
{
    return sp_json_object_get(reply, "error") != NULL;
}

SpJson *sp_command_dispatch(const SpCommandTable *table, void *ctx, const SpJson *message,
                            bool frozen, unsigned *ret_flags)
{
    /* qemu echoes "id" whenever the request is an object that has one, even when it is bad. */
    const SpJson *id = sp_json_object_get(message, "id");
    SpRequest req;
    SpRequestError rerr;
    SpJson *reply = NULL, *empty = NULL;
    const SpCommand *cmd;
    const char *code = NULL;
    unsigned flags = 0;

    if (sp_request_parse(message, &req, &rerr) < 0) {
        reply = sp_reply_new_error(SP_ERROR_CLASS_GENERIC, rerr.desc, NULL, id);
    } else if ((cmd = resolve(table, message, &req, frozen, id, &reply, &code)) == NULL) {
        reply = with_code(reply, req.execute, code);
    } else {
        flags = cmd->flags;
        if (!req.arguments)
            req.arguments = empty = sp_json_new_object();
        if (req.arguments && sp_command_check_args(cmd->args, req.arguments, id, &reply) == SP_OK)
            reply = with_code(run_handler(cmd, ctx, req.arguments, id), req.execute,
                              SP_ERROR_CODE_FAILED);
        else
            reply = with_code(reply, req.execute, SP_ERROR_CODE_INVALID_ARGUMENTS);
        sp_json_free(empty);
    }
    /* An error is always answered, even for a command that normally sends no reply. */
    if (!reply || is_error_reply(reply))
        flags &= ~(unsigned)SP_CMD_NO_REPLY;
    if (ret_flags)
        *ret_flags = flags;
    return reply;
}

/* qemu's JSON streamer and parser messages: limits are reported on their own, everything else
 * as "JSON parse error, ...". Such replies never carry an id: there was no request to take it
 * from. */
SpJson *sp_command_reply_for_bad_input(int status, const char *detail)
{
    if (status == SP_E_TOO_LARGE)
        return sp_reply_new_error(SP_ERROR_CLASS_GENERIC, "JSON token size limit exceeded", NULL,
                                  NULL);
    if (status == SP_E_DEPTH)
        return sp_reply_new_error(SP_ERROR_CLASS_GENERIC, "JSON nesting depth limit exceeded",
                                  NULL, NULL);
    return sp_command_reply_errorf(SP_ERROR_CLASS_GENERIC, NULL, "JSON parse error, %s",
                                   detail && detail[0] ? detail : sp_status_str(status));
}
