/* libvirt's XML as text: read with GMarkup (enough for the few elements needed), edited by
 * hand where libvirt's own formatting is known (one "<disk ...>...</disk>" per disk, attributes
 * in single quotes). No libvirt call here: tests/unit/test-host-libvirt-xml.c covers it alone. */
#include "libvirt-xml.h"

#include <gio/gio.h>
#include <string.h>


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

typedef struct {
    GPtrArray *disks; /* of SpXmlDisk */
    SpXmlDisk *cur;     /* the <disk> being read, NULL outside one */
    int depth;
    int disk_depth;   /* depth of cur's <disk> element */
    gboolean in_serial;
} XmlParse;

static const char *attr(const char **names, const char **values, const char *name)
{
    for (guint i = 0; names[i] != NULL; i++)
        if (strcmp(names[i], name) == 0)
            return values[i];
    return NULL;
}

static void on_start(GMarkupParseContext *ctx, const char *element, const char **names,
                     const char **values, gpointer data, GError **error)
{
    XmlParse *p = data;
    const GSList *stack = g_markup_parse_context_get_element_stack(ctx);
    const char *parent = stack->next != NULL ? stack->next->data : NULL;
    gboolean direct;
    (void)error;

    p->depth++;
    if (p->cur == NULL) {
        /* <domain><devices><disk>: the only disks that matter (not a snapshot's). */
        if (strcmp(element, "disk") == 0 && g_strcmp0(parent, "devices") == 0 && p->depth == 3) {
            p->cur = g_new0(SpXmlDisk, 1);
            p->cur->chain = g_ptr_array_new_with_free_func(g_free);
            p->cur->type = g_strdup(attr(names, values, "type"));
            p->cur->device = g_strdup(attr(names, values, "device"));
            p->disk_depth = p->depth;
        }
        return;
    }
    direct = p->depth == p->disk_depth + 1;
    if (strcmp(element, "source") == 0) {
        const char *file = attr(names, values, "file");
        if (file != NULL)
            g_ptr_array_add(p->cur->chain, g_strdup(file));
        if (direct && p->cur->source == NULL)
            p->cur->source = g_strdup(file != NULL ? file : "");
    } else if (direct && strcmp(element, "driver") == 0) {
        g_free(p->cur->format);
        p->cur->format = g_strdup(attr(names, values, "type"));
    } else if (direct && strcmp(element, "target") == 0) {
        g_free(p->cur->target);
        p->cur->target = g_strdup(attr(names, values, "dev"));
    } else if (direct && strcmp(element, "readonly") == 0) {
        p->cur->readonly = TRUE;
    } else if (direct && strcmp(element, "serial") == 0) {
        p->in_serial = TRUE;
    }
}

static void on_end(GMarkupParseContext *ctx, const char *element, gpointer data, GError **error)
{
    XmlParse *p = data;
    (void)ctx;
    (void)element;
    (void)error;
    p->in_serial = FALSE;
    if (p->cur != NULL && p->depth == p->disk_depth) {
        g_ptr_array_add(p->disks, p->cur);
        p->cur = NULL;
    }
    p->depth--;
}

static void on_text(GMarkupParseContext *ctx, const char *text, gsize len, gpointer data,
                    GError **error)
{
    XmlParse *p = data;
    (void)ctx;
    (void)error;
    if (p->in_serial && p->cur != NULL && p->cur->serial == NULL)
        p->cur->serial = g_strndup(text, len);
}

GPtrArray *sp_libvirt_xml_disks(const char *xml, GError **error)
{
    static const GMarkupParser parser = {on_start, on_end, on_text, NULL, NULL};
    XmlParse p = {.disks = g_ptr_array_new_with_free_func((GDestroyNotify)sp_xml_disk_free)};
    GMarkupParseContext *ctx = g_markup_parse_context_new(&parser, 0, &p, NULL);
    gboolean ok = g_markup_parse_context_parse(ctx, xml, -1, error) &&
                  g_markup_parse_context_end_parse(ctx, error);
    g_markup_parse_context_free(ctx);
    if (p.cur != NULL)
        sp_xml_disk_free(p.cur);
    if (!ok) {
        g_prefix_error(error, "libvirt's domain XML: ");
        g_ptr_array_unref(p.disks);
        return NULL;
    }
    return p.disks;
}

/* The snapshot's XML with its <description> replaced (or added after <name>). */
char *sp_libvirt_xml_with_description(const char *xml, const char *description)
{
    g_autofree char *element = g_markup_printf_escaped("<description>%s</description>",
                                                       description);
    const char *start = strstr(xml, "<description>");
    const char *end = start != NULL ? strstr(start, "</description>") : NULL;
    if (start != NULL && end != NULL)
        return g_strdup_printf("%.*s%s%s", (int)(start - xml), xml, element,
                               end + strlen("</description>"));
    if ((end = strstr(xml, "</name>")) == NULL)
        return NULL;
    end += strlen("</name>");
    return g_strdup_printf("%.*s%s%s", (int)(end - xml), xml, element, end);
}

/* Where the <backingStore ...> element at start ends (after its "/>" or its matching
 * "</backingStore>"); NULL when the text is cut short. */
static const char *backing_store_end(const char *start)
{
    const char *gt = strchr(start, '>');
    int depth = 1;
    if (gt == NULL)
        return NULL;
    if (gt[-1] == '/')
        return gt + 1;
    for (const char *at = gt + 1; depth > 0;) {
        const char *open = strstr(at, "<backingStore"), *close = strstr(at, "</backingStore>");
        if (close == NULL)
            return NULL;
        if (open != NULL && open < close) {
            const char *ogt = strchr(open, '>');
            if (ogt == NULL)
                return NULL;
            depth += ogt[-1] == '/' ? 0 : 1;
            at = ogt + 1;
        } else {
            depth--;
            at = close + strlen("</backingStore>");
        }
        if (depth == 0)
            return at;
    }
    return NULL;
}

/* In one <disk>...</disk> of the definition: when its target is one of sources, its
 * <source file='...'/> names the new image, and the chain libvirt recorded below the old one
 * (<backingStore>) goes: libvirt reads the new image's chain from its header. */
static gboolean point_disk(GString *out, const char *disk, gsize len, GHashTable *sources,
                           guint *ret_done, GError **error)
{
    g_autofree char *text = g_strndup(disk, len);
    const char *target = strstr(text, "<target dev='");
    const char *source = strstr(text, "<source file='");
    g_autofree char *dev = NULL;
    const char *image, *end = NULL;
    g_autofree char *escaped = NULL;

    if (target != NULL) {
        target += strlen("<target dev='");
        dev = g_strndup(target, strcspn(target, "'"));
    }
    image = dev != NULL ? g_hash_table_lookup(sources, dev) : NULL;
    if (image == NULL) {
        g_string_append(out, text);
        return TRUE;
    }
    if (source != NULL) {
        source += strlen("<source file='");
        end = strchr(source, '\'');
    }
    if (source == NULL || end == NULL) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "disk %s: its definition has no <source file=...>; point it at %s by hand "
                    "(virsh edit)",
                    dev, image);
        return FALSE;
    }
    escaped = g_markup_escape_text(image, -1);
    g_string_append_len(out, text, source - text);
    g_string_append(out, escaped);
    /* The rest of the disk, without its recorded chain. */
    for (const char *at = end;;) {
        const char *bs = strstr(at, "<backingStore"), *bs_end;
        if (bs == NULL) {
            g_string_append(out, at);
            break;
        }
        if ((bs_end = backing_store_end(bs)) == NULL) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                        "disk %s: libvirt's definition has an unterminated <backingStore>", dev);
            return FALSE;
        }
        g_string_append_len(out, at, bs - at);
        at = bs_end;
    }
    (*ret_done)++;
    return TRUE;
}

char *sp_libvirt_xml_point_disks(const char *xml, GHashTable *sources, GError **error)
{
    g_autoptr(GString) out = g_string_new(NULL);
    const char *at = xml;
    guint done = 0;

    /* libvirt formats its XML itself: one "<disk " ... "</disk>" per disk. */
    for (;;) {
        const char *start = strstr(at, "<disk "), *stop;
        if (start == NULL || (stop = strstr(start, "</disk>")) == NULL)
            break;
        stop += strlen("</disk>");
        g_string_append_len(out, at, start - at);
        if (!point_disk(out, start, stop - start, sources, &done, error))
            return NULL;
        at = stop;
    }
    g_string_append(out, at);
    if (done != g_hash_table_size(sources)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                    "%u of %u disks found in the domain's definition", done,
                    g_hash_table_size(sources));
        return NULL;
    }
    return g_string_free(g_steal_pointer(&out), FALSE);
}
