/* Records described by a table of their fields (SpField), so that a record's members are listed
 * once for all that walks them. */
#pragma once
#include <glib.h>
#include <stddef.h>
#include <stdint.h>

#include "stillpoint/json.h"

/* A record's fields, listed once: its journal JSON (to and from, in the table's order), its
 * store row (a field per column, in order) and its freeing follow from the table. A string is written always, an optional one when not NULL; a
 * string list (GPtrArray of char *) as an array; a field missing from the JSON reads as NULL, 0
 * or FALSE. */
typedef enum {
    SP_FIELD_STRING,
    SP_FIELD_OPT_STRING,
    SP_FIELD_INT,     /* int64_t */
    SP_FIELD_BOOL,    /* gboolean */
    SP_FIELD_STRINGS, /* GPtrArray * of char * */
} SpFieldType;

typedef struct {
    const char *key;
    SpFieldType type;
    size_t offset;
} SpField;

#define SP_FIELD(key, type, record, member) {key, SP_FIELD_##type, G_STRUCT_OFFSET(record, member)}

void sp_fields_to_json(SpJson *obj, const SpField *fields, gsize n, gconstpointer record);
void sp_fields_from_json(const SpJson *obj, const SpField *fields, gsize n, gpointer record);
/* Frees the record's strings and string lists (not the record). */
void sp_fields_clear(const SpField *fields, gsize n, gpointer record);
/* The same, then the record (NULL is fine). */
void sp_fields_free(const SpField *fields, gsize n, gpointer record);
/* The JSON helpers the tables use: a string member set only when s is not NULL; a member's
 * string, copied. */
void sp_json_set_opt_string(SpJson *obj, const char *key, const char *s);
char *sp_json_dup_string(const SpJson *obj, const char *key);
