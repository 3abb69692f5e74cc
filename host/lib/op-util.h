/* Helpers the tree operations share: finding a checkpoint, running qemu-img with progress,
 * locating an image in a running VM's block graph, and driving a QMP block job. */
#pragma once
#include <glib.h>
#include "stillpoint/ops.h"

void sp_op_say(const SpOpReport *report, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

/* Runs qemu-img with argv (NULL-terminated, without "qemu-img"). When report has a percent
 * callback and argv holds "-p", qemu-img's "(NN.NN/100%)" lines are passed on for disk. */
gboolean sp_op_qemu_img(const SpOpReport *report, const char *disk, const char *const *argv,
                        GError **error);
/* The image's format driver ("qcow2", "raw"), read from its header (-U: QEMU may hold it). */
char *sp_op_image_format(const char *image, GError **error);
/* The backing file named in an image's header; NULL (and no error) when it has none. */
gboolean sp_op_image_backing(const char *image, char **ret_backing, GError **error);

typedef struct {
    gboolean found;      /* the file is a node of the running VM's graph */
    gboolean active;     /* it is the top of a disk (the VM writes to it) */
    char *node;          /* its format node */
    char *root_node;     /* the top node of the disk it belongs to */
} SpLiveImage;
void sp_live_image_clear(SpLiveImage *li);
gboolean sp_op_live_find(SpQmp *qmp, const char *image, SpLiveImage *ret, GError **error);

/* The format node QEMU opened filename as (G_IO_ERROR_NOT_FOUND when none). */
gboolean sp_op_node_for_file(SpQmp *qmp, const char *filename, char **ret_node, GError **error);

/* Waits for block job job_id: completes it when it is ready (an active commit), reports
 * percentages, dismisses it when concluded. Resumes a job a killed run left behind just as well.
 * *ret_gone (may be NULL) says the job did not exist at all. */
gboolean sp_op_block_job_wait(SpQmp *qmp, const char *job_id, const SpOpReport *report,
                              const char *disk, gboolean *ret_gone, GError **error);

/* Removes a file; a missing one is fine. */
gboolean sp_op_unlink(const char *path, GError **error);

/* The tree operations work on qcow2 chains stillpoint made; a hook VM's snapshots are opaque. */
gboolean sp_op_images_ours(const SpVm *vm, const char *what, GError **error);
