/* Which disks a volume lives on, with the serial the host gave each disk: how the coordinator
 * maps a guest volume to a host disk (guest-get-fsinfo), and how stillpoint-freeze selects
 * volumes by disk. Queries only: no handle here is opened for reading or writing. */
#include "vss-backend.h"
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <wchar.h>
#include <winioctl.h>
#include <ntddscsi.h>

/* STORAGE_BUS_TYPE to PROTOCOL.md's bus names (qemu-ga's GuestDiskBusType). */
static const char *bus_name(STORAGE_BUS_TYPE type)
{
    switch ((int)type) {
    case BusTypeScsi: return "scsi";
    case BusTypeAtapi: return "ide";
    case BusTypeAta: return "ide";
    case BusType1394: return "ieee1394";
    case BusTypeSsa: return "ssa";
    case BusTypeFibre: return "fibre";
    case BusTypeUsb: return "usb";
    case BusTypeRAID: return "raid";
    case BusTypeiScsi: return "iscsi";
    case BusTypeSas: return "sas";
    case BusTypeSata: return "sata";
    case BusTypeSd: return "sd";
    case BusTypeMmc: return "mmc";
    case BusTypeVirtual: return "virtual";
    case BusTypeFileBackedVirtual: return "file-backed-virtual";
    case BusTypeNvme: return "nvme";
    default: return "unknown";
    }
}

/* The descriptor's serial is an ASCII string at an offset, often padded with spaces. */
static void copy_serial(const STORAGE_DEVICE_DESCRIPTOR *d, DWORD got, char *ret, size_t size)
{
    ret[0] = '\0';
    if (d->SerialNumberOffset == 0 || d->SerialNumberOffset >= got)
        return;
    const char *s = (const char *)d + d->SerialNumberOffset;
    size_t max = got - d->SerialNumberOffset, len = strnlen(s, max);
    while (len > 0 && *s == ' ')
        s++, len--;
    while (len > 0 && s[len - 1] == ' ')
        len--;
    if (len >= size)
        len = size - 1;
    memcpy(ret, s, len);
    ret[len] = '\0';
}

static void query_disk(unsigned number, SpVssDisk *disk)
{
    wchar_t path[32];
    swprintf(path, sizeof(path) / sizeof(path[0]), L"\\\\.\\PhysicalDrive%u", number);
    memset(disk, 0, sizeof(*disk));
    disk->number = number;
    disk->bus = disk->target = disk->unit = -1;
    snprintf(disk->bus_type, sizeof(disk->bus_type), "unknown");
    HANDLE h = CreateFileW(path, 0, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL, OPEN_EXISTING, 0,
                           NULL);
    if (h == INVALID_HANDLE_VALUE)
        return;
    STORAGE_PROPERTY_QUERY q = { .PropertyId = StorageDeviceProperty,
                                 .QueryType = PropertyStandardQuery };
    union {
        STORAGE_DEVICE_DESCRIPTOR d;
        char buf[1024];
    } u;
    DWORD got = 0;
    if (DeviceIoControl(h, IOCTL_STORAGE_QUERY_PROPERTY, &q, sizeof(q), &u, sizeof(u), &got,
                        NULL) && got >= sizeof(STORAGE_DEVICE_DESCRIPTOR)) {
        copy_serial(&u.d, got, disk->serial, sizeof(disk->serial));
        snprintf(disk->bus_type, sizeof(disk->bus_type), "%s", bus_name(u.d.BusType));
    }
    SCSI_ADDRESS addr;
    if (DeviceIoControl(h, IOCTL_SCSI_GET_ADDRESS, NULL, 0, &addr, sizeof(addr), &got, NULL)) {
        disk->bus = addr.PathId;
        disk->target = addr.TargetId;
        disk->unit = addr.Lun;
    }
    CloseHandle(h);
}

void sp_volume_disks(SpVssVolume *v)
{
    /* CreateFile wants the volume name without its trailing backslash. */
    wchar_t path[SP_VSS_VOLUME_MAX];
    wcsncpy(path, v->name, SP_VSS_VOLUME_MAX - 1);
    path[SP_VSS_VOLUME_MAX - 1] = L'\0';
    size_t len = wcslen(path);
    if (len > 0 && path[len - 1] == L'\\')
        path[len - 1] = L'\0';
    v->n_disks = 0;
    HANDLE h = CreateFileW(path, 0, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL, OPEN_EXISTING, 0,
                           NULL);
    if (h == INVALID_HANDLE_VALUE)
        return;
    union {
        VOLUME_DISK_EXTENTS e;
        char buf[sizeof(VOLUME_DISK_EXTENTS) + SP_VSS_MAX_VOLUME_DISKS * sizeof(DISK_EXTENT)];
    } u;
    DWORD got = 0;
    if (DeviceIoControl(h, IOCTL_VOLUME_GET_VOLUME_DISK_EXTENTS, NULL, 0, &u, sizeof(u), &got,
                        NULL)) {
        for (DWORD i = 0; i < u.e.NumberOfDiskExtents && v->n_disks < SP_VSS_MAX_VOLUME_DISKS;
             i++) {
            unsigned number = (unsigned)u.e.Extents[i].DiskNumber;
            bool seen = false; /* a volume spanning a disk twice lists it once */
            for (size_t j = 0; j < v->n_disks; j++)
                seen |= v->disks[j].number == number;
            if (!seen)
                query_disk(number, &v->disks[v->n_disks++]);
        }
    }
    CloseHandle(h);
}
