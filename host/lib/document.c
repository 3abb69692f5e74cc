/* document: the data each command that stillpointd offers returns — `vm list`, `checkpoint
 * list`, a created or applied checkpoint, ... — built once, as one JSON document each, by the
 * CLI working directly and by stillpointd alike; both front ends render it the same way. */
#include "stillpoint/document.h"

#include <string.h>
#include <sys/stat.h>

#include "stillpoint/group.h"
#include "stillpoint/present.h"

static char *format_iso(int64_t us)
{
    g_autoptr(GDateTime) t = g_date_time_new_from_unix_utc(us / G_USEC_PER_SEC);
    return t != NULL ? g_date_time_format_iso8601(t) : g_strdup("");
}

/* Bytes the overlay holds on disk; -1 when the file is missing. */
static gint64 overlay_bytes(const char *path)
{
    struct stat st;
    if (path == NULL)
        return 0;
    if (stat(path, &st) != 0)
        return -1;
    return (gint64)st.st_blocks * 512;
}

static gint64 checkpoint_bytes(const SpCheckpoint *cp, gboolean *ret_missing)
{
    gint64 total = 0;
    *ret_missing = FALSE;
    for (guint i = 0; i < cp->disks->len; i++) {
        SpCheckpointDisk *d = g_ptr_array_index(cp->disks, i);
        gint64 n = overlay_bytes(d->overlay);
        if (n < 0 || !g_file_test(d->image, G_FILE_TEST_EXISTS))
            *ret_missing = TRUE;
        if (i == 0 && cp->state != NULL && !g_file_test(cp->state, G_FILE_TEST_EXISTS))
            *ret_missing = TRUE;
        total += MAX(n, 0);
    }
    return total;
}

static SpJson *opt_string(const char *s)
{
    return s != NULL ? sp_json_new_string(s) : sp_json_new_null();
}

SpJson *sp_document_checkpoint(const SpCheckpoint *cp, int64_t current)
{
    SpJson *o = sp_json_new_object();
    SpJson *disks = sp_json_new_array();
    g_autofree char *iso = format_iso(cp->created_us);
    gboolean missing;
    gint64 bytes = checkpoint_bytes(cp, &missing);
    sp_json_object_set_int(o, "id", cp->id);
    sp_json_object_set(o, "parent", cp->parent != 0 ? sp_json_new_int(cp->parent)
                                                    : sp_json_new_null());
    sp_json_object_set_string(o, "name", cp->name);
    sp_json_object_set_string(o, "type", cp->type);
    sp_json_object_set_string(o, "consistency", cp->consistency);
    sp_json_object_set_string(o, "created", iso);
    sp_json_object_set_int(o, "overlay-bytes", bytes);
    sp_json_object_set_bool(o, "current", cp->id == current);
    sp_json_object_set_bool(o, "missing-files", missing);
    sp_json_object_set(o, "state", cp->state != NULL ? sp_json_new_string(cp->state)
                                                     : sp_json_new_null());
    /* What was asked and why it is not what was made (checkpoint-type.h), who asked: NULL in
     * records older than these fields. */
    sp_json_object_set(o, "requested", opt_string(cp->requested));
    sp_json_object_set(o, "reason", opt_string(cp->reason));
    sp_json_object_set(o, "origin", opt_string(cp->origin));
    sp_json_object_set(o, "made-by", opt_string(cp->made_by));
    for (guint i = 0; i < cp->disks->len; i++) {
        SpCheckpointDisk *d = g_ptr_array_index(cp->disks, i);
        SpJson *dj = sp_json_new_object();
        sp_json_object_set_string(dj, "disk", d->disk);
        sp_json_object_set_string(dj, "image", d->image);
        sp_json_object_set(dj, "overlay", d->overlay != NULL ? sp_json_new_string(d->overlay)
                                                             : sp_json_new_null());
        sp_json_object_set_int(dj, "overlay-bytes", overlay_bytes(d->overlay));
        sp_json_object_set_int(dj, "image-bytes", overlay_bytes(d->image));
        sp_json_array_append(disks, dj);
    }
    sp_json_object_set(o, "disks", disks);
    return o;
}

/* An array of each item's object. */
static SpJson *array_of(GPtrArray *items, SpJson *(*item_to_json)(gconstpointer item))
{
    SpJson *arr = sp_json_new_array();
    for (guint i = 0; i < items->len; i++)
        sp_json_array_append(arr, item_to_json(g_ptr_array_index(items, i)));
    return arr;
}

/* A disk given at registration (vm add --disk). */
static SpJson *vm_disk_to_json(gconstpointer item)
{
    const SpVmDisk *d = item;
    SpJson *o = sp_json_new_object();
    sp_json_object_set_string(o, "disk", d->name);
    sp_json_object_set_string(o, "path", d->path);
    sp_json_object_set_string(o, "format", d->format);
    sp_json_object_set(o, "serial", opt_string(d->serial));
    return o;
}

static SpJson *vm_to_json(gconstpointer item)
{
    const SpVm *vm = item;
    SpJson *o = sp_json_new_object();
    sp_json_object_set_string(o, "name", vm->name);
    sp_json_object_set_string(o, "driver", vm->driver);
    sp_json_object_set_string(o, "qmp", vm->qmp_socket);
    sp_json_object_set(o, "agent", opt_string(vm->agent_socket));
    if (vm->hook_command != NULL)
        sp_json_object_set_string(o, "hook-command", vm->hook_command);
    if (vm->hook_timeout_ms > 0)
        sp_json_object_set_int(o, "hook-timeout-ms", vm->hook_timeout_ms);
    if (vm->libvirt_domain != NULL)
        sp_json_object_set_string(o, "libvirt-domain", vm->libvirt_domain);
    if (vm->libvirt_uri != NULL)
        sp_json_object_set_string(o, "libvirt-uri", vm->libvirt_uri);
    if (vm->overlay_dir != NULL)
        sp_json_object_set_string(o, "overlay-dir", vm->overlay_dir);
    sp_json_object_set(o, "checkpoint-type", opt_string(vm->checkpoint_type));
    if (vm->disks != NULL && vm->disks->len > 0)
        sp_json_object_set(o, "disks", array_of(vm->disks, vm_disk_to_json));
    sp_json_object_set(o, "current", vm->current != 0 ? sp_json_new_int(vm->current)
                                                      : sp_json_new_null());
    return o;
}

static SpJson *checkpoint_ref(const SpCheckpoint *cp)
{
    SpJson *o = sp_json_new_object();
    sp_json_object_set_int(o, "id", cp->id);
    sp_json_object_set_string(o, "name", cp->name);
    return o;
}

SpJson *sp_document_checkpoint_show(const SpVm *vm, GPtrArray *cps, const SpCheckpoint *cp)
{
    SpJson *o = sp_document_checkpoint(cp, vm->current);
    SpJson *children = sp_json_new_array();
    SpJson *parent = sp_json_new_null();
    for (guint i = 0; i < cps->len; i++) {
        const SpCheckpoint *other = g_ptr_array_index(cps, i);
        if (other->parent == cp->id)
            sp_json_array_append(children, checkpoint_ref(other));
        if (other->id == cp->parent) {
            sp_json_free(parent);
            parent = checkpoint_ref(other);
        }
    }
    sp_json_object_set_string(o, "vm", vm->name);
    sp_json_object_set(o, "parent-checkpoint", parent);
    sp_json_object_set(o, "children", children);
    return o;
}

SpJson *sp_document_vm_list(GPtrArray *vms)
{
    return array_of(vms, vm_to_json);
}

SpJson *sp_document_checkpoint_list(const SpVm *vm, GPtrArray *cps)
{
    SpJson *out = sp_json_new_object();
    SpJson *arr = sp_json_new_array();
    sp_json_object_set_string(out, "vm", vm->name);
    sp_json_object_set(out, "current", vm->current != 0 ? sp_json_new_int(vm->current)
                                                        : sp_json_new_null());
    for (guint i = 0; i < cps->len; i++)
        sp_json_array_append(arr, sp_document_checkpoint(g_ptr_array_index(cps, i), vm->current));
    sp_json_object_set(out, "checkpoints", arr);
    return out;
}

/* A disk of a VM's disk graph (vm disks). */
static SpJson *disk_to_json(gconstpointer item)
{
    const SpDisk *d = item;
    SpJson *o = sp_json_new_object();
    sp_json_object_set_string(o, "disk", d->name);
    sp_json_object_set(o, "node", opt_string(d->node));
    sp_json_object_set_string(o, "image", d->image);
    sp_json_object_set_string(o, "format", d->format);
    sp_json_object_set_int(o, "size", d->size);
    sp_json_object_set(o, "serial", opt_string(d->serial));
    return o;
}

SpJson *sp_document_vm_disks(GPtrArray *disks)
{
    return array_of(disks, disk_to_json);
}

SpJson *sp_document_vm_added(const char *name, int64_t id)
{
    SpJson *out = sp_json_new_object();
    sp_json_object_set_string(out, "name", name);
    sp_json_object_set_int(out, "id", id);
    return out;
}

SpJson *sp_document_group_list(GHashTable *groups)
{
    SpJson *out = sp_json_new_object();
    g_autoptr(GList) names = g_list_sort(g_hash_table_get_keys(groups), (GCompareFunc)g_strcmp0);

    for (GList *l = names; l != NULL; l = l->next) {
        const char *const *members = g_hash_table_lookup(groups, l->data);
        SpJson *list = sp_json_new_array();
        for (guint i = 0; members[i] != NULL; i++)
            sp_json_array_append(list, sp_json_new_string(members[i]));
        sp_json_object_set(out, l->data, list);
    }
    return out;
}

SpJson *sp_document_group_checkpoint(SpStore *store, const char *group, GPtrArray *cps,
                                     GError **error)
{
    g_autoptr(GHashTable) groups = sp_group_list(store, error);
    const char *const *members = groups != NULL ? g_hash_table_lookup(groups, group) : NULL;
    SpJson *out;
    if (groups == NULL)
        return NULL;
    out = sp_json_new_array();
    for (guint i = 0; i < cps->len; i++) {
        SpJson *o = sp_document_checkpoint(g_ptr_array_index(cps, i),
                                       ((SpCheckpoint *)g_ptr_array_index(cps, i))->id);
        /* sp_group_checkpoint returns them in member order. */
        if (members != NULL && i < g_strv_length((char **)members))
            sp_json_object_set_string(o, "vm", members[i]);
        sp_json_array_append(out, o);
    }
    return out;
}


SpJson *sp_document_checkpoint_applied(SpStore *store, const char *name, GError **error)
{
    g_autoptr(SpVm) vm = sp_store_vm_get(store, name, error);
    g_autoptr(GPtrArray) cps = NULL;

    if (vm == NULL || (cps = sp_store_checkpoint_list(store, vm->id, error)) == NULL)
        return NULL;
    for (guint i = 0; i < cps->len; i++) {
        SpCheckpoint *cp = g_ptr_array_index(cps, i);
        SpJson *out, *links;
        if (cp->id != vm->current)
            continue;
        out = sp_document_checkpoint(cp, vm->current);
        links = sp_json_new_object();
        for (guint j = 0; j < cp->disks->len; j++) {
            SpCheckpointDisk *d = g_ptr_array_index(cp->disks, j);
            g_autofree char *link = sp_present_link_path(store, vm->name, d->disk);
            /* A libvirt domain's definition names the overlays themselves. */
            sp_json_object_set_string(links, d->disk,
                                      vm->libvirt_domain != NULL ? d->overlay : link);
        }
        sp_json_object_set(out, "links", links);
        if (vm->libvirt_domain != NULL)
            sp_json_object_set_string(out, "libvirt-domain", vm->libvirt_domain);
        return out;
    }
    return sp_json_new_null();
}
