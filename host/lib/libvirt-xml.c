/* libvirt's XML as a tree: parsed with libxml2 (which libvirt itself uses), edited node by node
 * and written back. Never searched as text: a snapshot's XML embeds its domain's, so the first
 * "<description>" in the text may be the domain's. No libvirt call here:
 * tests/unit/test-host-libvirt-xml.c covers it alone. */
#include "libvirt-xml.h"

#include <gio/gio.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <limits.h>
#include <string.h>

G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlDoc, xmlFreeDoc)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlBuffer, xmlBufferFree)

void sp_xml_disk_free(SpXmlDisk *d)
{
    g_free(d->target);
    g_free(d->type);
    g_free(d->device);
    g_free(d->format);
    g_free(d->source);
    g_free(d->serial);
    g_ptr_array_unref(d->chain);
    g_free(d);
}

/* The document of xml, whose root element must be root. No network, no external entities
 * (neither is asked for), and libxml2's own error printing off: the error says it. */
static xmlDoc *parse(const char *xml, const char *root, GError **error)
{
    size_t len = strlen(xml);
    const xmlError *e;
    xmlDoc *doc = NULL;
    xmlNode *top;

    xmlResetLastError();
    if (len <= INT_MAX)
        doc = xmlReadMemory(xml, (int)len, NULL, "UTF-8",
                            XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (doc == NULL) {
        e = xmlGetLastError();
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "libvirt's <%s> XML is not well-formed: line %d: %s", root,
                    e != NULL ? e->line : 0,
                    e != NULL && e->message != NULL ? g_strchomp(e->message) : "too long");
        return NULL;
    }
    top = xmlDocGetRootElement(doc);
    if (top == NULL || !xmlStrEqual(top->name, BAD_CAST root)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "libvirt's XML: its root element is <%s>, not <%s>",
                    top != NULL ? (const char *)top->name : "", root);
        xmlFreeDoc(doc);
        return NULL;
    }
    return doc;
}

/* The first child element of node named name; NULL when there is none. */
static xmlNode *child(xmlNode *node, const char *name)
{
    for (xmlNode *c = node != NULL ? node->children : NULL; c != NULL; c = c->next)
        if (c->type == XML_ELEMENT_NODE && xmlStrEqual(c->name, BAD_CAST name))
            return c;
    return NULL;
}

/* node's attribute name, g_malloc'ed; NULL when node is NULL or has no such attribute. */
static char *prop(xmlNode *node, const char *name)
{
    xmlChar *v = node != NULL ? xmlGetProp(node, BAD_CAST name) : NULL;
    char *r = g_strdup((const char *)v);
    xmlFree(v);
    return r;
}

static char *text_of(xmlNode *node)
{
    xmlChar *v = node != NULL ? xmlNodeGetContent(node) : NULL;
    char *r = g_strdup((const char *)v);
    xmlFree(v);
    return r;
}

/* Text that can go into XML as is: UTF-8 without the control characters XML 1.0 forbids. */
static gboolean check_text(const char *what, const char *text, GError **error)
{
    if (!g_utf8_validate(text, -1, NULL)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "%s is not UTF-8", what);
        return FALSE;
    }
    for (const char *p = text; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 && *p != '\t' && *p != '\n' && *p != '\r') {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "%s has a control character (0x%02x), which XML cannot hold", what,
                        (unsigned)*p);
            return FALSE;
        }
    }
    return TRUE;
}

/* The root element as text, as libvirt takes it back (no XML declaration). */
static char *dump(xmlDoc *doc, GError **error)
{
    g_autoptr(xmlBuffer) buf = xmlBufferCreate();
    if (buf == NULL || xmlNodeDump(buf, doc, xmlDocGetRootElement(doc), 0, 0) < 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "writing libvirt's XML failed");
        return NULL;
    }
    return g_strdup((const char *)xmlBufferContent(buf));
}

static SpXmlDisk *read_disk(xmlNode *disk)
{
    SpXmlDisk *d = g_new0(SpXmlDisk, 1);
    xmlNode *source = child(disk, "source");
    xmlNode *serial = child(disk, "serial");

    d->chain = g_ptr_array_new_with_free_func(g_free);
    d->type = prop(disk, "type");
    d->device = prop(disk, "device");
    d->format = prop(child(disk, "driver"), "type");
    d->target = prop(child(disk, "target"), "dev");
    d->readonly = child(disk, "readonly") != NULL;
    d->serial = serial != NULL ? text_of(serial) : NULL;
    if (source != NULL) {
        d->source = prop(source, "file");
        if (d->source == NULL)
            d->source = g_strdup("");
    }
    /* The chain: this disk's file, then each <backingStore>'s, nested one in the other. */
    for (xmlNode *level = disk; level != NULL; level = child(level, "backingStore")) {
        char *file = prop(child(level, "source"), "file");
        if (file != NULL)
            g_ptr_array_add(d->chain, file);
    }
    return d;
}

GPtrArray *sp_libvirt_xml_disks(const char *xml, GError **error)
{
    g_autoptr(xmlDoc) doc = parse(xml, "domain", error);
    GPtrArray *disks;
    xmlNode *devices;

    if (doc == NULL)
        return NULL;
    disks = g_ptr_array_new_with_free_func((GDestroyNotify)sp_xml_disk_free);
    devices = child(xmlDocGetRootElement(doc), "devices");
    for (xmlNode *c = devices != NULL ? devices->children : NULL; c != NULL; c = c->next)
        if (c->type == XML_ELEMENT_NODE && xmlStrEqual(c->name, BAD_CAST "disk"))
            g_ptr_array_add(disks, read_disk(c));
    return disks;
}

/* One <disk name=TARGET snapshot='external' type='file'> onto the qcow2 overlay. */
static gboolean add_snapshot_disk(xmlNode *disks, const char *target, const char *overlay,
                                  GError **error)
{
    xmlNode *disk, *node;
    if (!check_text("a disk's target", target, error) ||
        !check_text("an overlay's path", overlay, error))
        return FALSE;
    disk = xmlNewChild(disks, NULL, BAD_CAST "disk", NULL);
    xmlSetProp(disk, BAD_CAST "name", BAD_CAST target);
    xmlSetProp(disk, BAD_CAST "snapshot", BAD_CAST "external");
    xmlSetProp(disk, BAD_CAST "type", BAD_CAST "file");
    node = xmlNewChild(disk, NULL, BAD_CAST "driver", NULL);
    xmlSetProp(node, BAD_CAST "type", BAD_CAST "qcow2");
    node = xmlNewChild(disk, NULL, BAD_CAST "source", NULL);
    xmlSetProp(node, BAD_CAST "file", BAD_CAST overlay);
    return TRUE;
}

char *sp_libvirt_xml_snapshot(const char *name, const char *description,
                              const char *const *targets, const char *const *overlays,
                              const char *memory_file, GError **error)
{
    g_autoptr(xmlDoc) doc = xmlNewDoc(BAD_CAST "1.0");
    xmlNode *root, *memory, *disks;

    if (!check_text("the snapshot's name", name, error) ||
        !check_text("the snapshot's description", description, error) ||
        (memory_file != NULL && !check_text("the memory file's path", memory_file, error)))
        return NULL;
    root = xmlNewDocNode(doc, NULL, BAD_CAST "domainsnapshot", NULL);
    xmlDocSetRootElement(doc, root);
    /* xmlNewTextChild escapes the text (&, <, >); xmlSetProp's values are escaped on output. */
    xmlNewTextChild(root, NULL, BAD_CAST "name", BAD_CAST name);
    xmlNewTextChild(root, NULL, BAD_CAST "description", BAD_CAST description);
    if (memory_file != NULL) {
        memory = xmlNewChild(root, NULL, BAD_CAST "memory", NULL);
        xmlSetProp(memory, BAD_CAST "snapshot", BAD_CAST "external");
        xmlSetProp(memory, BAD_CAST "file", BAD_CAST memory_file);
    }
    disks = xmlNewChild(root, NULL, BAD_CAST "disks", NULL);
    for (guint i = 0; targets[i] != NULL; i++)
        if (!add_snapshot_disk(disks, targets[i], overlays[i], error))
            return NULL;
    return dump(doc, error);
}

gboolean sp_libvirt_xml_snapshot_description(const char *xml, char **ret, GError **error)
{
    g_autoptr(xmlDoc) doc = parse(xml, "domainsnapshot", error);
    xmlNode *description;
    if (doc == NULL)
        return FALSE;
    description = child(xmlDocGetRootElement(doc), "description");
    *ret = description != NULL ? text_of(description) : NULL;
    return TRUE;
}

char *sp_libvirt_xml_with_description(const char *xml, const char *description, GError **error)
{
    g_autoptr(xmlDoc) doc = NULL;
    xmlNode *root, *node, *name;

    if (!check_text("the description", description, error) ||
        (doc = parse(xml, "domainsnapshot", error)) == NULL)
        return NULL;
    root = xmlDocGetRootElement(doc);
    node = child(root, "description");
    if (node == NULL) {
        if ((name = child(root, "name")) == NULL) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                        "libvirt's snapshot XML has no <name>");
            return NULL;
        }
        node = xmlNewDocNode(doc, NULL, BAD_CAST "description", NULL);
        xmlAddNextSibling(name, node);
    }
    /* No content of the old one stays; the new text is a text node, escaped on output. */
    xmlNodeSetContent(node, NULL);
    xmlNodeAddContent(node, BAD_CAST description);
    return dump(doc, error);
}

/* disk is pointed at image: its <source file> names it and libvirt's recorded chain below the
 * old image (<backingStore>) goes: libvirt reads the new image's chain from its header. */
static gboolean point_disk(xmlNode *disk, const char *dev, const char *image, GError **error)
{
    xmlNode *source = child(disk, "source"), *bs;
    g_autofree char *file = prop(source, "file");

    if (file == NULL) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "disk %s: its definition has no <source file=...>; point it at %s by hand "
                    "(virsh edit)",
                    dev, image);
        return FALSE;
    }
    if (!check_text("the image's path", image, error)) {
        g_prefix_error(error, "disk %s: ", dev);
        return FALSE;
    }
    xmlSetProp(source, BAD_CAST "file", BAD_CAST image);
    while ((bs = child(disk, "backingStore")) != NULL) {
        xmlUnlinkNode(bs);
        xmlFreeNode(bs);
    }
    return TRUE;
}

char *sp_libvirt_xml_point_disks(const char *xml, GHashTable *sources, GError **error)
{
    g_autoptr(xmlDoc) doc = parse(xml, "domain", error);
    xmlNode *devices;
    guint done = 0;

    if (doc == NULL)
        return NULL;
    devices = child(xmlDocGetRootElement(doc), "devices");
    for (xmlNode *c = devices != NULL ? devices->children : NULL; c != NULL; c = c->next) {
        g_autofree char *dev = NULL;
        const char *image;
        if (c->type != XML_ELEMENT_NODE || !xmlStrEqual(c->name, BAD_CAST "disk"))
            continue;
        dev = prop(child(c, "target"), "dev");
        if (dev == NULL || (image = g_hash_table_lookup(sources, dev)) == NULL)
            continue;
        if (!point_disk(c, dev, image, error))
            return NULL;
        done++;
    }
    if (done != g_hash_table_size(sources)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                    "%u of %u disks found in the domain's definition", done,
                    g_hash_table_size(sources));
        return NULL;
    }
    return dump(doc, error);
}
