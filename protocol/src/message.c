/* QGA request and reply messages: the envelope around a command, in qemu's exact words. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "json-internal.h"
#include "stillpoint/message.h"

static int request_error(SpRequestError *err, int status, const char *fmt, ...)
#if defined(__MINGW32__) /* the library formats with mingw's C99 printf, not msvcrt's */
    __attribute__((format(gnu_printf, 3, 4)))
#elif defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static int request_error(SpRequestError *err, int status, const char *fmt, ...)
{
    va_list ap;

    if (err) {
        err->status = status;
        va_start(ap, fmt);
        vsnprintf(err->desc, sizeof(err->desc), fmt, ap);
        va_end(ap);
    }
    return status;
}

/* Keys are compared with their full length: "execute\u0000x" is not "execute". */
static bool key_is(const SpJsonMember *m, const char *name)
{
    return m->key_len == strlen(name) && memcmp(m->key, name, m->key_len) == 0;
}

/* Mirrors qmp_dispatch_check_obj(): members are checked in order, and anything but execute,
 * arguments and id is refused (qemu-ga does not accept exec-oob either). */
int sp_request_parse(const SpJson *message, SpRequest *ret, SpRequestError *err)
{
    SpRequest req = { 0 };

    if (!ret)
        return request_error(err, SP_E_INVALID, "%s", sp_status_str(SP_E_INVALID));
    if (sp_json_type(message) != SP_JSON_OBJECT || !message)
        return request_error(err, SP_E_NOT_OBJECT, "QMP input must be a JSON object");
    for (size_t i = 0; i < message->u.obj.len; i++) {
        const SpJsonMember *m = &message->u.obj.members[i];
        if (key_is(m, "execute")) {
            if (m->value->type != SP_JSON_STRING)
                return request_error(err, SP_E_TYPE,
                                     "QMP input member 'execute' must be a string");
            req.execute = m->value->u.str.s;
        } else if (key_is(m, "arguments")) {
            if (m->value->type != SP_JSON_OBJECT)
                return request_error(err, SP_E_TYPE,
                                     "QMP input member 'arguments' must be an object");
            req.arguments = m->value;
        } else if (key_is(m, "id")) {
            req.id = m->value;
        } else {
            return request_error(err, SP_E_UNEXPECTED, "QMP input member '%s' is unexpected",
                                 m->key);
        }
    }
    if (!req.execute)
        return request_error(err, SP_E_MISSING, "QMP input lacks member 'execute'");
    *ret = req;
    return SP_OK;
}

/* Set key to a copy of id when there is one. */
static SpJson *with_id(SpJson *object, const SpJson *id)
{
    if (id)
        sp_json_object_set(object, "id", sp_json_copy(id));
    return object;
}

SpJson *sp_request_new(const char *execute, SpJson *arguments, const SpJson *id)
{
    SpJson *req;

    if (!execute) {
        sp_json_free(arguments);
        return NULL;
    }
    req = sp_json_new_object();
    sp_json_object_set_string(req, "execute", execute);
    if (arguments)
        sp_json_object_set(req, "arguments", arguments);
    return with_id(req, id);
}

SpJson *sp_reply_new_return(SpJson *value, const SpJson *id)
{
    SpJson *reply = sp_json_new_object();

    sp_json_object_set(reply, "return", value ? value : sp_json_new_object());
    return with_id(reply, id);
}

SpJson *sp_reply_new_error(const char *klass, const char *desc, const char *code, const SpJson *id)
{
    SpJson *reply = sp_json_new_object();
    SpJson *error = sp_json_new_object();

    sp_json_object_set_string(error, "class", klass ? klass : SP_ERROR_CLASS_GENERIC);
    sp_json_object_set_string(error, "desc", desc ? desc : "");
    if (code)
        sp_json_object_set_string(error, "code", code);
    sp_json_object_set(reply, "error", error);
    return with_id(reply, id);
}

static int parse_error_member(const SpJson *error, const char **ret_class, const char **ret_desc,
                              const char **ret_code)
{
    const SpJson *klass = sp_json_object_get(error, "class");
    const SpJson *desc = sp_json_object_get(error, "desc");
    const SpJson *code = sp_json_object_get(error, "code");

    if (sp_json_type(error) != SP_JSON_OBJECT || !error)
        return SP_E_TYPE;
    if (!klass || !desc)
        return SP_E_MISSING;
    if (klass->type != SP_JSON_STRING || desc->type != SP_JSON_STRING ||
        (code && code->type != SP_JSON_STRING))
        return SP_E_TYPE;
    if (ret_class)
        *ret_class = klass->u.str.s;
    if (ret_desc)
        *ret_desc = desc->u.str.s;
    if (ret_code)
        *ret_code = code ? code->u.str.s : NULL;
    return SP_OK;
}

int sp_reply_parse(const SpJson *reply, const SpJson **ret_return, const char **ret_class,
                   const char **ret_desc, const char **ret_code)
{
    const SpJson *value, *error;
    int r;

    if (!reply || reply->type != SP_JSON_OBJECT)
        return SP_E_NOT_OBJECT;
    value = sp_json_object_get(reply, "return");
    error = sp_json_object_get(reply, "error");
    if (value) {
        if (ret_return)
            *ret_return = value;
        if (ret_class)
            *ret_class = NULL;
        if (ret_desc)
            *ret_desc = NULL;
        if (ret_code)
            *ret_code = NULL;
        return SP_OK;
    }
    if (!error)
        return SP_E_MISSING;
    r = parse_error_member(error, ret_class, ret_desc, ret_code);
    if (r == SP_OK && ret_return)
        *ret_return = NULL;
    return r;
}
