/* libvirt's XML, read and edited as text: a domain's disks and their backing chains, a
 * snapshot's description, a definition's disks pointed at other images. */
#pragma once
#include <glib.h>

typedef struct {
    char *target;
    char *type;       /* the <disk type>: file, block, network, volume */
    char *device;     /* disk, cdrom, floppy, lun */
    char *format;     /* <driver type> */
    char *source;     /* the top of the chain ("" when it is not a file) */
    char *serial;
    gboolean readonly;
    GPtrArray *chain; /* source first, then each backing file down */
} SpXmlDisk;

void sp_xml_disk_free(SpXmlDisk *d);
/* The <devices><disk>s of a domain's XML (of SpXmlDisk). */
GPtrArray *sp_libvirt_xml_disks(const char *xml, GError **error);
/* A snapshot's XML with its <description> replaced (or added after <name>); NULL without
 * <name>. */
char *sp_libvirt_xml_with_description(const char *xml, const char *description);
/* A domain's definition with each disk whose target is a key of sources pointed at that image:
 * its <source file> replaced, its recorded <backingStore> chain dropped (libvirt then reads the
 * chain from the image). An error when a disk is missing or has no file source. */
char *sp_libvirt_xml_point_disks(const char *xml, GHashTable *sources, GError **error);
