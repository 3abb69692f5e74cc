/* qemu-img command lines, each with the recorded format of every image it opens (qemu-img.h). */
#include "qemu-img.h"

#include <gio/gio.h>
#include <string.h>

#include "stillpoint/channel.h"

gboolean sp_img_format_valid(const char *format, GError **error)
{
    if (g_strcmp0(format, "raw") == 0 || g_strcmp0(format, "qcow2") == 0)
        return TRUE;
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                "image format '%s' is not one stillpoint works with (raw or qcow2)%s",
                format != NULL ? format : "(none recorded)",
                format == NULL ? "; stillpoint never guesses a format from an image's bytes" : "");
    return FALSE;
}

static gboolean img_ok(const SpImg *img, GError **error)
{
    if (img == NULL || img->path == NULL) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "no image given");
        return FALSE;
    }
    if (!sp_img_format_valid(img->format, error)) {
        g_prefix_error(error, "image %s: ", img->path);
        return FALSE;
    }
    return TRUE;
}

static GStrv argv_of(const char *first, ...)
{
    GStrvBuilder *b = g_strv_builder_new();
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a != NULL; a = va_arg(ap, const char *))
        g_strv_builder_add(b, a);
    va_end(ap);
    GStrv v = g_strv_builder_end(b);
    g_strv_builder_unref(b);
    return v;
}

GStrv sp_img_argv_info(const SpImg *img, GError **error)
{
    if (!img_ok(img, error))
        return NULL;
    return argv_of("info", "-U", "--output=json", "-f", img->format, img->path, NULL);
}

GStrv sp_img_argv_map(const SpImg *img, GError **error)
{
    if (!img_ok(img, error))
        return NULL;
    return argv_of("map", "-U", "--output=json", "-f", img->format, img->path, NULL);
}

GStrv sp_img_argv_convert(const SpImg *src, const char *out_format, const char *out,
                          GError **error)
{
    if (!img_ok(src, error) || !sp_img_format_valid(out_format, error))
        return NULL;
    /* No -B: the copy is flattened, with no backing file. */
    return argv_of("convert", "-p", "-f", src->format, "-O", out_format, src->path, out, NULL);
}

GStrv sp_img_argv_commit(const SpImg *top, const SpImg *base, GError **error)
{
    if (!img_ok(top, error) || !img_ok(base, error))
        return NULL;
    /* qemu-img commit has no option for base's format: base is found in top's chain, opened
     * with the backing format top's header records, which sp_op_chain_check compared with
     * base->format before this runs. */
    return argv_of("commit", "-p", "-d", "-f", top->format, "-b", base->path, top->path, NULL);
}

GStrv sp_img_argv_rebase(const SpImg *img, const SpImg *backing, gboolean safe,
                         GError **error)
{
    if (!img_ok(img, error) || !img_ok(backing, error))
        return NULL;
    return argv_of("rebase", safe ? "-p" : "-u", "-f", img->format, "-b", backing->path, "-F",
                   backing->format, img->path, NULL);
}

GStrv sp_img_argv_create_overlay(const SpImg *backing, const char *overlay, int64_t size,
                                 GError **error)
{
    g_autofree char *sz = NULL;
    if (!img_ok(backing, error))
        return NULL;
    if (size < 0)
        return argv_of("create", "-q", "-f", "qcow2", "-b", backing->path, "-F", backing->format,
                       overlay, NULL);
    sz = g_strdup_printf("%" G_GINT64_FORMAT, size);
    return argv_of("create", "-q", "-f", "qcow2", "-u", "-b", backing->path, "-F",
                   backing->format, overlay, sz, NULL);
}

GStrv sp_img_argv_map_nbd_bitmap(const char *socket, const char *export_name,
                                 const char *bitmap)
{
    g_autofree char *opts = g_strdup_printf("driver=nbd,server.type=unix,server.path=%s,export=%s,"
                                            "x-dirty-bitmap=qemu:dirty-bitmap:%s",
                                            socket, export_name, bitmap);
    return argv_of("map", "--output=json", "--image-opts", opts, NULL);
}

void sp_img_layer_clear(SpImgLayer *l)
{
    g_clear_pointer(&l->backing, g_free);
    g_clear_pointer(&l->backing_format, g_free);
    l->data_file = FALSE;
}

gboolean sp_img_layer_parse(const char *json, SpImgLayer *ret, GError **error)
{
    g_autoptr(SpJson) info = NULL;
    const SpJson *data;
    memset(ret, 0, sizeof(*ret));
    if (json == NULL || sp_json_parse(json, strlen(json), NULL, &info, NULL) != SP_OK ||
        sp_json_object_get(info, "virtual-size") == NULL) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "qemu-img info gave no image information");
        return FALSE;
    }
    /* The name as written in the header, not QEMU's resolved one: that is what it opens. */
    ret->backing = g_strdup(sp_json_object_get_string(info, "backing-filename"));
    ret->backing_format = g_strdup(sp_json_object_get_string(info, "backing-filename-format"));
    data = sp_json_object_get(sp_json_object_get(info, "format-specific"), "data");
    ret->data_file = data != NULL && sp_json_object_get(data, "data-file") != NULL;
    return TRUE;
}

/* A backing name QEMU would open as a plain local file: no "json:", "nbd:", "http://", ... A
 * relative name has no colon either; a file name with a colon QEMU would take for a protocol. */
static gboolean plain_file_name(const char *name)
{
    return name[0] != '\0' && strchr(name, ':') == NULL;
}

gboolean sp_img_layer_check(const SpImg *img, const SpImgLayer *l, const char *expected,
                            GError **error)
{
    if (l->data_file) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                    "image %s names an external data file, which stillpoint did not create; "
                    "refusing to open it",
                    img->path);
        return FALSE;
    }
    if (l->backing == NULL)
        return TRUE;
    if (!plain_file_name(l->backing)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                    "image %s names backing file '%s', which is not a plain local file "
                    "(json:, nbd: and other protocols are refused: stillpoint did not create it)",
                    img->path, l->backing);
        return FALSE;
    }
    if (l->backing_format == NULL) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                    "image %s names backing file %s without its format, so QEMU would guess it "
                    "from the file's bytes; refusing (record it with qemu-img rebase -u -F)",
                    img->path, l->backing);
        return FALSE;
    }
    if (!sp_img_format_valid(l->backing_format, error)) {
        g_prefix_error(error, "image %s, backing file %s: ", img->path, l->backing);
        return FALSE;
    }
    if (expected != NULL && strcmp(expected, l->backing_format) != 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                    "image %s records backing file %s as %s, but the checkpoint store recorded "
                    "it as %s; refusing",
                    img->path, l->backing, l->backing_format, expected);
        return FALSE;
    }
    return TRUE;
}
