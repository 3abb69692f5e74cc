/* Disks given at registration (vm add --disk NAME=PATH[,serial=S][,format=F]): the parser and its
 * rules. The hook driver without QMP knows a VM's disks only from these. */
#include "stillpoint/store.h"

#include <gio/gio.h>
#include <string.h>

#include "fields.h"

#define DISK_NAME_MAX 32
#define DISK_SERIAL_MAX 64
#define DISK_FORMAT_MAX 16

static const SpField vm_disk_fields[] = {
    SP_FIELD("name", STRING, SpVmDisk, name),
    SP_FIELD("path", STRING, SpVmDisk, path),
    SP_FIELD("serial", OPT_STRING, SpVmDisk, serial),
    SP_FIELD("format", STRING, SpVmDisk, format),
};

void sp_vm_disk_free(SpVmDisk *disk)
{
    sp_fields_free(vm_disk_fields, G_N_ELEMENTS(vm_disk_fields), disk);
}

/* Splits at commas; ",," stands for a comma inside a value (QEMU's -drive convention). */
static GPtrArray *split_spec(const char *spec)
{
    GPtrArray *parts = g_ptr_array_new_with_free_func(g_free);
    GString *cur = g_string_new(NULL);
    for (const char *p = spec; *p != '\0'; p++) {
        if (*p == ',' && p[1] == ',') {
            g_string_append_c(cur, ',');
            p++;
        } else if (*p == ',') {
            g_ptr_array_add(parts, g_string_free(cur, FALSE));
            cur = g_string_new(NULL);
        } else {
            g_string_append_c(cur, *p);
        }
    }
    g_ptr_array_add(parts, g_string_free(cur, FALSE));
    return parts;
}

static gboolean has_control(const char *s)
{
    for (const char *p = s; *p != '\0'; p = g_utf8_next_char(p)) {
        if (g_unichar_iscntrl(g_utf8_get_char(p)))
            return TRUE;
    }
    return FALSE;
}

static gboolean is_name_char(char c)
{
    return g_ascii_isalnum(c) || strchr("._-", c) != NULL;
}

static gboolean is_serial_char(char c)
{
    return g_ascii_isgraph(c);
}

static gboolean is_format_char(char c)
{
    return g_ascii_islower(c) || g_ascii_isdigit(c);
}

/* 1 to max characters, each one char_ok accepts. */
static gboolean text_ok(const char *s, size_t max, gboolean (*char_ok)(char c))
{
    size_t len = strlen(s);
    if (len == 0 || len > max)
        return FALSE;
    for (size_t i = 0; i < len; i++) {
        if (!char_ok(s[i]))
            return FALSE;
    }
    return TRUE;
}

static gboolean name_ok(const char *name)
{
    return text_ok(name, DISK_NAME_MAX, is_name_char) && name[0] != '.' && name[0] != '-';
}

static gboolean serial_ok(const char *serial)
{
    return text_ok(serial, DISK_SERIAL_MAX, is_serial_char);
}

static gboolean format_ok(const char *format)
{
    return text_ok(format, DISK_FORMAT_MAX, is_format_char);
}

/* One "key=value" option after NAME=PATH. */
static const char *set_option(SpVmDisk *disk, const char *option)
{
    const char *eq = strchr(option, '=');
    g_autofree char *key = eq != NULL ? g_strndup(option, eq - option) : NULL;
    const char *value = eq != NULL ? eq + 1 : NULL;
    if (g_strcmp0(key, "serial") == 0 && disk->serial == NULL) {
        if (!serial_ok(value))
            return "a serial is 1-64 printable characters without spaces";
        disk->serial = g_strdup(value);
    } else if (g_strcmp0(key, "format") == 0 && disk->format == NULL) {
        if (!format_ok(value))
            return "a format is a format driver's name, such as raw or qcow2";
        disk->format = g_strdup(value);
    } else if (g_strcmp0(key, "serial") == 0 || g_strcmp0(key, "format") == 0) {
        return "an option is given twice";
    } else {
        return "options are serial=S and format=F";
    }
    return NULL;
}

SpVmDisk *sp_vm_disk_parse(const char *spec, GError **error)
{
    g_autoptr(SpVmDisk) disk = g_new0(SpVmDisk, 1);
    g_autoptr(GPtrArray) parts = NULL;
    const char *problem = NULL, *first, *eq;

    if (spec == NULL || !g_utf8_validate(spec, -1, NULL) || has_control(spec)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "disk: the spec is not text without control characters");
        return NULL;
    }
    parts = split_spec(spec);
    first = g_ptr_array_index(parts, 0);
    eq = strchr(first, '=');
    if (eq == NULL || eq[1] == '\0') {
        problem = "expected NAME=PATH[,serial=S][,format=F]";
    } else {
        disk->name = g_strndup(first, eq - first);
        disk->path = g_strdup(eq + 1);
        if (!name_ok(disk->name))
            problem = "a disk's name is 1-32 of letters, digits, '.', '_' and '-', not starting "
                      "with '.' or '-'";
    }
    for (guint i = 1; problem == NULL && i < parts->len; i++)
        problem = set_option(disk, g_ptr_array_index(parts, i));
    if (problem != NULL) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "disk '%s': %s", spec,
                    problem);
        return NULL;
    }
    if (disk->format == NULL)
        disk->format = g_strdup("raw"); /* a device, a zvol, an RBD image: never probed */
    return g_steal_pointer(&disk);
}

GPtrArray *sp_vm_disks_parse(const char *const *specs, GError **error)
{
    g_autoptr(GPtrArray) disks = g_ptr_array_new_with_free_func((GDestroyNotify)sp_vm_disk_free);
    for (guint i = 0; specs != NULL && specs[i] != NULL; i++) {
        SpVmDisk *d = sp_vm_disk_parse(specs[i], error);
        if (d == NULL)
            return NULL;
        g_ptr_array_add(disks, d);
    }
    return g_steal_pointer(&disks);
}
