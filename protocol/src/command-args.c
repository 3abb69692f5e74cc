/* Argument checking for the command table, with qemu's QAPI visitor messages, so a client sees
 * the same GenericError text from our agents as from qemu-ga. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "command-internal.h"

/* The type names qemu's input visitor puts after "expected: ". */
static const char *type_name(SpArgType type)
{
    switch (type) {
    case SP_ARG_STRING: return "string";
    case SP_ARG_INT: return "integer";
    case SP_ARG_BOOL: return "boolean";
    case SP_ARG_NUMBER: return "number";
    case SP_ARG_STRING_LIST:
    case SP_ARG_ARRAY: return "array";
    case SP_ARG_OBJECT: return "object";
    case SP_ARG_ANY: break;
    }
    return "any";
}

static bool type_matches(SpArgType type, SpJsonType have)
{
    switch (type) {
    case SP_ARG_STRING: return have == SP_JSON_STRING;
    case SP_ARG_INT: return have == SP_JSON_INT;
    case SP_ARG_BOOL: return have == SP_JSON_BOOL;
    case SP_ARG_NUMBER: return have == SP_JSON_INT || have == SP_JSON_DOUBLE;
    case SP_ARG_STRING_LIST:
    case SP_ARG_ARRAY: return have == SP_JSON_ARRAY;
    case SP_ARG_OBJECT: return have == SP_JSON_OBJECT;
    case SP_ARG_ANY: return true;
    }
    return false;
}

/* Compared with the key's full length: "mode\u0000x" is not an alias of "mode". */
static bool spec_has(const SpArgSpec *specs, const SpJsonMember *m)
{
    for (const SpArgSpec *s = specs; s && s->name; s++)
        if (strlen(s->name) == m->key_len && memcmp(s->name, m->key, m->key_len) == 0)
            return true;
    return false;
}

/* Like qemu, a bad list element is named with its index: "mountpoints[2]". */
static int check_string_list(const char *name, const SpJson *list, const SpJson *id,
                             SpJson **ret_reply)
{
    for (size_t i = 0; i < sp_json_array_len(list); i++)
        if (sp_json_type(sp_json_array_get(list, i)) != SP_JSON_STRING) {
            *ret_reply = sp_command_reply_errorf(
                SP_ERROR_CLASS_GENERIC, id, "Invalid parameter type for '%s[%zu]', expected: %s",
                name, i, "string");
            return SP_E_TYPE;
        }
    return SP_OK;
}

/* Declared arguments first, in declaration order (missing, then wrong type), then members nobody
 * declared, in the order the client sent them: the order qemu's visitor reports them in. */
int sp_command_check_args(const SpArgSpec *specs, const SpJson *args, const SpJson *id,
                          SpJson **ret_reply)
{
    for (const SpArgSpec *s = specs; s && s->name; s++) {
        const SpJson *v = sp_json_object_get(args, s->name);
        if (!v) {
            if (s->optional)
                continue;
            *ret_reply = sp_command_reply_errorf(SP_ERROR_CLASS_GENERIC, id,
                                                 "Parameter '%s' is missing", s->name);
            return SP_E_MISSING;
        }
        if (!type_matches(s->type, sp_json_type(v))) {
            *ret_reply = sp_command_reply_errorf(SP_ERROR_CLASS_GENERIC, id,
                                                 "Invalid parameter type for '%s', expected: %s",
                                                 s->name, type_name(s->type));
            return SP_E_TYPE;
        }
        if (s->type == SP_ARG_STRING_LIST && check_string_list(s->name, v, id, ret_reply) < 0)
            return SP_E_TYPE;
    }
    for (size_t i = 0; i < sp_json_object_len(args); i++) {
        const SpJsonMember *m = &args->u.obj.members[i];
        if (!spec_has(specs, m)) {
            *ret_reply = sp_command_reply_errorf(SP_ERROR_CLASS_GENERIC, id,
                                                 "Parameter '%s' is unexpected", m->key);
            return SP_E_UNEXPECTED;
        }
    }
    return SP_OK;
}
