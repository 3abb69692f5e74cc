/* verdict: application- or crash-consistent, and why. Every filesystem the guest lists must be
 * frozen for the whole window; the disks' serials (guest-get-fsinfo's "serial", the host's
 * device property) only name the disk in the reason. "application-consistent" is never claimed
 * on a guess, e.g. that a filesystem lies on a disk the checkpoint does not hold. */
#include "stillpoint/verdict.h"

#include <string.h>

#include "stillpoint/driver.h"
#include "stillpoint/guest-text.h"

char *sp_verdict_backend(gboolean stillpoint, const char *backend)
{
    g_autofree char *shown = NULL;

    /* A stock qemu-ga freezes with FIFREEZE (Linux) or VSS (Windows) and does not say so. */
    if (!stillpoint || g_strcmp0(backend, "fifreeze") == 0 || g_strcmp0(backend, "vss") == 0)
        return NULL;
    if (backend == NULL)
        return g_strdup("the guest agent does not say what freezes its filesystems "
                        "(stillpoint-capabilities has no freeze backend)");
    shown = sp_guest_text(backend);
    return g_strdup_printf("the guest agent's freeze backend is '%s', not a real one (fifreeze "
                           "or vss): it froze nothing",
                           shown);
}

char *sp_verdict_thaw(gboolean stillpoint, const SpFreezeResult *freeze, const SpThawResult *thaw)
{
    if (thaw == NULL)
        return g_strdup("the thaw's verdict was lost (thawing failed): the freeze is not known "
                        "to have held until the snapshot");
    if (stillpoint && thaw->epoch == 0)
        return g_strdup("the thaw reply does not say which freeze it ended");
    if (stillpoint && thaw->epoch != freeze->epoch)
        return g_strdup_printf("the thaw reply describes freeze %" G_GINT64_FORMAT ", not this "
                               "checkpoint's freeze %" G_GINT64_FORMAT,
                               thaw->epoch, freeze->epoch);
    if (!thaw->consistent)
        return g_strdup_printf("the freeze did not hold until the thaw%s%s%s",
                               thaw->reason[0] != '\0' ? " (" : "", thaw->reason,
                               thaw->reason[0] != '\0' ? ")" : "");
    return NULL;
}

/* A mountpoint as the freeze reply lists it: an object's "mountpoint" (or a bare string). */
static const char *entry_mountpoint(const SpJson *entry)
{
    const char *mp = sp_json_get_string(entry);
    return mp != NULL ? mp : sp_json_object_get_string(entry, "mountpoint");
}

static gboolean frozen_by_reply(const SpJson *reply, const char *mountpoint)
{
    const SpJson *frozen = sp_json_object_get(reply, "frozen");
    for (size_t i = 0; i < sp_json_array_len(frozen); i++)
        if (g_strcmp0(entry_mountpoint(sp_json_array_get(frozen, i)), mountpoint) == 0)
            return TRUE;
    return FALSE;
}

/* The skipped entry of mountpoint, or NULL. */
static const SpJson *skipped_entry(const SpJson *reply, const char *mountpoint)
{
    const SpJson *skipped = sp_json_object_get(reply, "skipped");
    for (size_t i = 0; i < sp_json_array_len(skipped); i++) {
        const SpJson *e = sp_json_array_get(skipped, i);
        if (g_strcmp0(sp_json_object_get_string(e, "mountpoint"), mountpoint) == 0)
            return e;
    }
    return NULL;
}

/* Frozen for the whole window: frozen itself, another mount of a frozen superblock, or a
 * superblock mounted read-only (nothing writes to it). */
static gboolean covered(const SpJson *reply, const char *mountpoint)
{
    const SpJson *skip = skipped_entry(reply, mountpoint);
    const char *reason = sp_json_object_get_string(skip, "reason");

    if (frozen_by_reply(reply, mountpoint))
        return TRUE;
    if (g_strcmp0(reason, "read-only") == 0)
        return TRUE;
    return g_strcmp0(reason, "same-filesystem") == 0 &&
           frozen_by_reply(reply, sp_json_object_get_string(skip, "primary"));
}

/* virtio-blk shows the guest at most this many bytes of the host's serial. */
#define VIRTIO_BLK_SERIAL_MAX 20

static gboolean serial_matches(const char *host, const char *guest)
{
    if (host == NULL || host[0] == '\0' || guest == NULL || guest[0] == '\0')
        return FALSE;
    return strcmp(host, guest) == 0 ||
           (strlen(guest) == VIRTIO_BLK_SERIAL_MAX && g_str_has_prefix(host, guest));
}

/* The checkpointed disk fs lives on, for the message; NULL when the serials do not say (none
 * on either side, or one the host does not know). */
static const SpPlanDisk *disk_of(const GPtrArray *disks, const SpJson *fs)
{
    const SpJson *under = sp_json_object_get(fs, "disk");

    for (size_t j = 0; j < sp_json_array_len(under); j++) {
        const char *serial = sp_json_object_get_string(sp_json_array_get(under, j), "serial");
        for (guint i = 0; i < disks->len; i++) {
            const SpPlanDisk *pd = g_ptr_array_index(disks, i);
            if (serial_matches(pd->disk->serial, serial))
                return pd;
        }
    }
    return NULL;
}

static char *not_frozen(const SpJson *reply, const SpJson *fs, const SpPlanDisk *pd,
                        gboolean all)
{
    const char *mp = sp_json_object_get_string(fs, "mountpoint");
    const SpJson *skip = skipped_entry(reply, mp);
    const char *why = sp_json_object_get_string(skip, "reason");
    g_autofree char *mp_shown = sp_guest_text(mp);
    g_autofree char *type_shown = sp_guest_text(sp_json_object_get_string(fs, "type"));
    g_autofree char *why_shown = sp_guest_text(why != NULL ? why : "not in the freeze's lists");
    g_autofree char *where = pd != NULL ? g_strdup_printf("on disk %s", pd->disk->name)
                             : all ? g_strdup("on the guest's disks")
                                   : g_strdup("on a disk the host cannot tell apart from the "
                                              "checkpoint's (no serial, or one it does not "
                                              "know)");

    return g_strdup_printf("filesystem %s (%s) %s was not frozen: %s", mp_shown, type_shown,
                           where, why_shown);
}

/* qemu-ga says only how many it froze; it freezes what its guest-get-fsinfo lists (one entry
 * per device), skipping those whose kernel cannot freeze them. */
static char *coverage_by_count(const SpJson *fsinfo, guint n_frozen)
{
    g_autoptr(GHashTable) devices = g_hash_table_new(g_str_hash, g_str_equal);
    for (size_t i = 0; i < sp_json_array_len(fsinfo); i++) {
        const char *name = sp_json_object_get_string(sp_json_array_get(fsinfo, i), "name");
        g_hash_table_add(devices, (gpointer)(name != NULL ? name : ""));
    }
    if (n_frozen >= g_hash_table_size(devices))
        return NULL;
    return g_strdup_printf("the guest agent (qemu-ga) froze %u of the %u filesystems it lists; "
                           "which it left is not known",
                           n_frozen, g_hash_table_size(devices));
}

char *sp_verdict_coverage(const GPtrArray *disks, const SpJson *fsinfo, const SpJson *reply,
                          guint n_frozen)
{
    if (reply == NULL)
        return coverage_by_count(fsinfo, n_frozen);
    for (size_t i = 0; i < sp_json_array_len(fsinfo); i++) {
        const SpJson *fs = sp_json_array_get(fsinfo, i);

        /* Every unfrozen filesystem counts, also one whose serial matches none of the
         * checkpoint's disks: a serial can be shown differently in the guest (virtio-scsi's
         * wwid), so "not ours" cannot be proven from it. */
        if (!covered(reply, sp_json_object_get_string(fs, "mountpoint")))
            return not_frozen(reply, fs, disks != NULL ? disk_of(disks, fs) : NULL,
                              disks == NULL);
    }
    return NULL;
}

char *sp_verdict(const SpVerdictInput *in)
{
    char *why = sp_verdict_backend(in->stillpoint, in->backend);

    if (why == NULL)
        why = sp_verdict_thaw(in->stillpoint, in->freeze, in->thaw);
    if (why == NULL && in->freeze->fsinfo == NULL) {
        g_autofree char *shown = sp_guest_text(in->freeze->fsinfo_error);
        why = g_strdup_printf("the guest's filesystems could not be mapped to the checkpoint's "
                              "disks: %s",
                              shown);
    }
    if (why == NULL)
        why = sp_verdict_coverage(in->disks, in->freeze->fsinfo, in->freeze->reply,
                                  in->freeze->frozen);
    return why;
}
