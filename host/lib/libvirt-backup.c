/* libvirt's checkpoint and backup API for a domain: pull-mode backup jobs (the domain's QEMU
 * exports a point in time over NBD, libvirt keeps the scratch images) and the checkpoints whose
 * bitmaps make them incremental. The checkpoints are libvirt's own, so every tool that uses
 * libvirt sees the same chain of bitmaps (virsh checkpoint-list, virtnbdbackup). */
#include "stillpoint/libvirt.h"

#include <gio/gio.h>
#include <libvirt/virterror.h>
#include <string.h>

#include "fields.h"
#include "libvirt-internal.h"

static gboolean fail(GError **error, SpLibvirt *lv, const char *what)
{
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "libvirt domain '%s': %s: %s", lv->name,
                what, sp_libvirt_error_message());
    return FALSE;
}

static gboolean last_error_is(int code)
{
    virErrorPtr err = virGetLastError();
    return err != NULL && err->code == code;
}

static char *backup_xml(const char *socket, const char *const *targets, const char *since)
{
    GString *xml = g_string_new("<domainbackup mode='pull'>");
    g_autofree char *server = g_markup_printf_escaped(
        "<server transport='unix' socket='%s'/><disks>", socket);
    if (since != NULL) {
        g_autofree char *inc = g_markup_printf_escaped("<incremental>%s</incremental>", since);
        g_string_append(xml, inc);
    }
    g_string_append(xml, server);
    for (guint i = 0; targets[i] != NULL; i++) {
        /* The scratch image holds what the guest overwrites while the job runs (the point in
         * time's old data); next to the socket, where QEMU can create it. */
        g_autofree char *disk = g_markup_printf_escaped(
            "<disk name='%s' backup='yes' type='file'><scratch file='%s.%s.scratch'/></disk>",
            targets[i], socket, targets[i]);
        g_string_append(xml, disk);
    }
    g_string_append(xml, "</disks></domainbackup>");
    return g_string_free(xml, FALSE);
}

gboolean sp_libvirt_backup_begin(SpLibvirt *lv, const char *socket, const char *const *targets,
                                 const char *since, const char *checkpoint,
                                 const char *description, GError **error)
{
    g_autofree char *xml = backup_xml(socket, targets, since);
    g_autofree char *cpxml = NULL;

    if (checkpoint != NULL)
        cpxml = g_markup_printf_escaped("<domaincheckpoint><name>%s</name>"
                                        "<description>%s</description></domaincheckpoint>",
                                        checkpoint, description);
    /* The job's point in time is this call's: libvirt starts the backup (fleecing) and creates
     * the checkpoint in one QMP transaction. */
    if (virDomainBackupBegin(lv->dom, xml, cpxml, 0) < 0)
        return fail(error, lv, "starting the backup job");
    return TRUE;
}

gboolean sp_libvirt_backup_running(SpLibvirt *lv, gboolean *ret, GError **error)
{
    char *xml = virDomainBackupGetXMLDesc(lv->dom, 0);
    *ret = xml != NULL;
    free(xml);
    if (xml == NULL && !last_error_is(VIR_ERR_NO_DOMAIN_BACKUP) &&
        !last_error_is(VIR_ERR_OPERATION_INVALID))
        return fail(error, lv, "asking for its backup job");
    return TRUE;
}

gboolean sp_libvirt_backup_end(SpLibvirt *lv, GError **error)
{
    gboolean running = FALSE;
    if (!sp_libvirt_backup_running(lv, &running, error))
        return FALSE;
    /* A pull-mode job ends when it is told to: abort is how its client says "done". */
    if (running && virDomainAbortJob(lv->dom) < 0 &&
        !last_error_is(VIR_ERR_OPERATION_INVALID))
        return fail(error, lv, "ending the backup job");
    return TRUE;
}

/* ---- the job's exports, from libvirt's description of it ---- */

typedef struct {
    GPtrArray *exports; /* of SpLibvirtExport */
    gboolean in_disks;
} ExportParse;

static const SpField export_fields[] = {
    SP_FIELD("target", STRING, SpLibvirtExport, target),
    SP_FIELD("export", STRING, SpLibvirtExport, export_name),
    SP_FIELD("bitmap", OPT_STRING, SpLibvirtExport, bitmap),
};

void sp_libvirt_export_free(SpLibvirtExport *e)
{
    sp_fields_free(export_fields, G_N_ELEMENTS(export_fields), e);
}

static void export_start_cb(GMarkupParseContext *ctx, const char *element, const char **names,
                            const char **values, gpointer data, GError **error)
{
    ExportParse *p = data;
    const char *name = NULL, *backup = NULL, *export = NULL, *bitmap = NULL;
    SpLibvirtExport *e;
    (void)ctx;
    if (g_strcmp0(element, "disks") == 0)
        p->in_disks = TRUE;
    if (!p->in_disks || g_strcmp0(element, "disk") != 0)
        return;
    for (guint i = 0; names[i] != NULL; i++) {
        if (g_strcmp0(names[i], "name") == 0)
            name = values[i];
        else if (g_strcmp0(names[i], "backup") == 0)
            backup = values[i];
        else if (g_strcmp0(names[i], "exportname") == 0)
            export = values[i];
        else if (g_strcmp0(names[i], "exportbitmap") == 0)
            bitmap = values[i];
    }
    if (name == NULL || g_strcmp0(backup, "no") == 0)
        return;
    e = g_new0(SpLibvirtExport, 1);
    e->target = g_strdup(name);
    e->export_name = g_strdup(export != NULL ? export : name); /* libvirt's default */
    e->bitmap = g_strdup(bitmap);
    g_ptr_array_add(p->exports, e);
}

static void export_end_cb(GMarkupParseContext *ctx, const char *element, gpointer data,
                          GError **error)
{
    ExportParse *p = data;
    (void)ctx;
    if (g_strcmp0(element, "disks") == 0)
        p->in_disks = FALSE;
}

GPtrArray *sp_libvirt_backup_exports(SpLibvirt *lv, GError **error)
{
    static const GMarkupParser parser = {export_start_cb, export_end_cb, NULL, NULL, NULL};
    char *xml = virDomainBackupGetXMLDesc(lv->dom, 0);
    g_autoptr(GPtrArray) exports =
        g_ptr_array_new_with_free_func((GDestroyNotify)sp_libvirt_export_free);
    ExportParse p = {.exports = exports};
    g_autoptr(GMarkupParseContext) ctx = NULL;
    gboolean ok;

    if (xml == NULL) {
        fail(error, lv, "describing its backup job");
        return NULL;
    }
    ctx = g_markup_parse_context_new(&parser, 0, &p, NULL);
    ok = g_markup_parse_context_parse(ctx, xml, -1, error) &&
         g_markup_parse_context_end_parse(ctx, error);
    free(xml);
    if (!ok) {
        g_prefix_error(error, "libvirt domain '%s': its backup job's XML: ", lv->name);
        return NULL;
    }
    return g_steal_pointer(&exports);
}

/* ---- checkpoints ---- */

static gboolean lookup_checkpoint(SpLibvirt *lv, const char *name, virDomainCheckpointPtr *ret,
                                  GError **error)
{
    *ret = virDomainCheckpointLookupByName(lv->dom, name, 0);
    if (*ret == NULL && !last_error_is(VIR_ERR_NO_DOMAIN_CHECKPOINT)) {
        g_autofree char *what = g_strdup_printf("checkpoint '%s'", name);
        return fail(error, lv, what);
    }
    return TRUE;
}

gboolean sp_libvirt_checkpoint_usable(SpLibvirt *lv, const char *name, gboolean *ret,
                                      GError **error)
{
    virDomainCheckpointPtr cp = NULL;
    char *xml;
    *ret = FALSE;
    if (!lookup_checkpoint(lv, name, &cp, error))
        return FALSE;
    if (cp == NULL)
        return TRUE;
    /* Measuring the changes since the checkpoint needs its bitmap on every disk: libvirt fails
     * it when one is gone (an apply onto an older image, a disk replaced). */
    xml = virDomainCheckpointGetXMLDesc(cp, VIR_DOMAIN_CHECKPOINT_XML_SIZE);
    *ret = xml != NULL;
    free(xml);
    virDomainCheckpointFree(cp);
    return TRUE;
}

gboolean sp_libvirt_checkpoint_delete(SpLibvirt *lv, const char *name, gboolean *ret_found,
                                      GError **error)
{
    virDomainCheckpointPtr cp = NULL;
    int rc;
    if (!lookup_checkpoint(lv, name, &cp, error))
        return FALSE;
    if ((*ret_found = cp != NULL) == FALSE)
        return TRUE;
    /* libvirt merges its bitmaps into its parent's: the changes they recorded stay covered. */
    rc = virDomainCheckpointDelete(cp, 0);
    if (rc < 0 && last_error_is(VIR_ERR_CHECKPOINT_INCONSISTENT))
        rc = virDomainCheckpointDelete(cp, VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY);
    virDomainCheckpointFree(cp);
    if (rc < 0) {
        g_autofree char *what = g_strdup_printf("deleting checkpoint '%s'", name);
        return fail(error, lv, what);
    }
    return TRUE;
}
