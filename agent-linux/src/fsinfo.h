/* fsinfo: guest-get-fsinfo from the mount table and sysfs. */
#pragma once
#include <glib.h>
#include "stillpoint/json.h"

/* mountinfo_path NULL = /proc/self/mountinfo; sysfs_root e.g. "/sys". NULL with error set when
 * the mount table cannot be read. */
SpJson *sp_fsinfo_read(const char *mountinfo_path, const char *sysfs_root, GError **error);
