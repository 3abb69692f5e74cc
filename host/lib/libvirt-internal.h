/* Inside the libvirt module (libvirt.c, libvirt-backup.c): the handle and libvirt's last error. */
#pragma once
#include <libvirt/libvirt.h>

#include "stillpoint/libvirt.h"

struct SpLibvirt {
    virConnectPtr conn;
    virDomainPtr dom;
    char *name;
};

/* libvirt's message for the last failed call in this thread ("unknown libvirt error" if none). */
const char *sp_libvirt_error_message(void);
