/* blockdev: map a filesystem's device to the virtual disks under it, through sysfs (partitions,
 * device-mapper/LVM, md, loop), and identify devices with libblkid. */
#pragma once
#include <glib.h>
#include <sys/types.h>
#include "mountinfo.h"

typedef struct {
    char *name;          /* kernel name: "vda" */
    char *dev;           /* "/dev/vda" */
    char *serial;        /* NULL when the disk has none */
    const char *bus_type;/* qemu-ga GuestDiskBusType name: "virtio", "scsi", "ide", "sata", "nvme", "unknown" */
    int pci_domain, pci_bus, pci_slot, pci_function; /* -1 when not on PCI */
    int bus, target, unit;
} SpBlockdevDisk;

void sp_blockdev_disk_free(SpBlockdevDisk *disk);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpBlockdevDisk, sp_blockdev_disk_free)

/* sysfs_root: "/sys" (tests pass a fixture tree). */
/* The kernel name of a block device ("vda1", "dm-0"), or NULL. */
char *sp_blockdev_name(const char *sysfs_root, dev_t dev);
/* The whole disks holding dev (a partition's disk, a dm/md device's members, recursively). */
GPtrArray *sp_blockdev_disks(const char *sysfs_root, dev_t dev);
/* Backing files of the loop devices under dev (through partitions, dm, md): their
 * filesystems must be frozen after the one on dev. */
GPtrArray *sp_blockdev_loop_backing(const char *sysfs_root, dev_t dev);
/* libblkid: filesystem type, UUID and label of a device node (each may come back NULL). */
gboolean sp_blockdev_probe(const char *devnode, char **ret_type, char **ret_uuid, char **ret_label);
/* The block device under a mount: its own major:minor, or for filesystems with an anonymous one
 * (btrfs) the device node it was mounted from, as qemu-ga resolves it. 0 when none. */
dev_t sp_blockdev_of_mount(const SpMount *m);
