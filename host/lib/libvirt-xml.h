/* libvirt's XML, parsed and edited as a tree (libxml2): a domain's disks and their backing
 * chains, a snapshot's own description, a definition's disks pointed at other images. */
#pragma once
#include <glib.h>

typedef struct {
    char *target;
    char *type;       /* the <disk type>: file, block, network, volume */
    char *device;     /* disk, cdrom, floppy, lun */
    char *format;     /* <driver type> */
    char *source;     /* the top of the chain ("" when it is not a file; NULL without <source>) */
    char *serial;
    gboolean readonly;
    GPtrArray *chain; /* source first, then each backing file down */
} SpXmlDisk;

void sp_xml_disk_free(SpXmlDisk *d);
/* The <domain><devices><disk>s of a domain's XML (of SpXmlDisk). */
GPtrArray *sp_libvirt_xml_disks(const char *xml, GError **error);
/* An external snapshot's XML: name, description, the memory saved to memory_file (NULL: a
 * disk-only snapshot), and each disk of targets onto the qcow2 overlay of the same index. */
char *sp_libvirt_xml_snapshot(const char *name, const char *description,
                              const char *const *targets, const char *const *overlays,
                              const char *memory_file, GError **error);
/* The snapshot's own <description> (a child of <domainsnapshot>, never the one of the domain
 * embedded in it) in *ret; NULL when it has none. */
gboolean sp_libvirt_xml_snapshot_description(const char *xml, char **ret, GError **error);
/* A snapshot's XML with its own <description> replaced, or added after its <name>. */
char *sp_libvirt_xml_with_description(const char *xml, const char *description, GError **error);
/* A domain's definition with each disk whose target is a key of sources pointed at that image:
 * its <source file> replaced, its recorded <backingStore> chain dropped (libvirt then reads the
 * chain from the image). An error when a disk is missing or has no file source. */
char *sp_libvirt_xml_point_disks(const char *xml, GHashTable *sources, GError **error);
