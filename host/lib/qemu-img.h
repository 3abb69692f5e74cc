/* Every qemu-img command line stillpoint runs is built here, and each names the format of every
 * image it opens, as the checkpoint store recorded it: QEMU never probes a format from bytes a
 * guest may have written (a raw disk whose sector 0 holds a qcow2 header naming a host file as
 * backing file). One place, so that no call site can forget -f or -F. */
#pragma once
#include <glib.h>
#include <stdint.h>

/* An image file and the format the store recorded for it. */
typedef struct {
    const char *path;
    const char *format;
} SpImg;

/* The formats stillpoint opens (QEMU's drv of a disk, or qcow2 for its overlays). */
gboolean sp_img_format_valid(const char *format, GError **error);

/* Each returns a NULL-terminated argv WITHOUT the leading "qemu-img" (sp_op_qemu_img adds it),
 * or NULL with a clear error when an image has no valid format. g_strfreev it. */

/* info of the image alone (qemu-img info never opens the backing chain without
 * --backing-chain): its header's backing file, backing format and data file. */
GStrv sp_img_argv_info(const SpImg *img, GError **error);
/* map of the image (-U: QEMU may hold it). */
GStrv sp_img_argv_map(const SpImg *img, GError **error);
/* A flattened copy of src (and its chain) into out, in out_format. */
GStrv sp_img_argv_convert(const SpImg *src, const char *out_format, const char *out,
                          GError **error);
/* top committed into base (-d: top stays intact). */
GStrv sp_img_argv_commit(const SpImg *top, const SpImg *base, GError **error);
/* img re-pointed at backing: unsafe (-u, header only) or safe (data copied up, -p). */
GStrv sp_img_argv_rebase(const SpImg *img, const SpImg *backing, gboolean safe,
                         GError **error);
/* A new qcow2 overlay on backing. size < 0: qemu-img reads backing's size (opening it with its
 * recorded format); size >= 0: -u, backing is not opened (QEMU holds it read-write). */
GStrv sp_img_argv_create_overlay(const SpImg *backing, const char *overlay, int64_t size,
                                 GError **error);
/* The --image-opts of an NBD export read with a dirty bitmap: the nbd driver is the top, so no
 * format layer exists to probe. */
GStrv sp_img_argv_map_nbd_bitmap(const char *socket, const char *export_name,
                                 const char *bitmap);

/* What one layer's header says, from sp_img_argv_info's JSON. */
typedef struct {
    char *backing;        /* backing file name as written in the header, or NULL */
    char *backing_format; /* the backing format the header records, or NULL */
    gboolean data_file;   /* the qcow2 has an external data file */
} SpImgLayer;
void sp_img_layer_clear(SpImgLayer *l);
/* Parses qemu-img info's JSON of one image. */
gboolean sp_img_layer_parse(const char *json, SpImgLayer *ret, GError **error);

/* Is this layer safe to open with its chain? Refuses a json:/nbd:/protocol backing name, a
 * backing without a recorded format (QEMU would probe it), a data file, and a backing format
 * that differs from the one the store recorded for that file (expected may be NULL: unknown). */
gboolean sp_img_layer_check(const SpImg *img, const SpImgLayer *l, const char *expected,
                            GError **error);
