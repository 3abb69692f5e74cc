/* Helpers the tree operations share: finding a checkpoint, running qemu-img with progress,
 * locating an image in a running VM's block graph, and driving a QMP block job. */
#pragma once
#include <glib.h>
#include <stdarg.h>
#include "stillpoint/ops.h"
#include "fields.h"
#include "qemu-img.h"
#include "test-hooks.h"

void sp_op_say(const SpOpReport *report, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
/* One progress message to progress (may be NULL), for the say()s of the coordinator, groups and
 * backup sessions. */
void sp_progress_vsay(SpProgressFn progress, gpointer user_data, const char *fmt, va_list ap)
    G_GNUC_PRINTF(3, 0);

/* Journal plans as JSON: the plan's text parsed into its root with a "disks" array, else
 * G_IO_ERROR_INVALID_DATA ("journal entry is not a valid WHAT"); the root serialized with disks
 * (taken) as "disks". */
SpJson *sp_op_plan_parse(const char *text, const char *what, const SpJson **ret_disks,
                         GError **error);
char *sp_op_plan_serialize(SpJson *root, SpJson *disks);
/* A journal plan's form: a record of fields with "disks" (GPtrArray *, at disks_offset), an
 * object for each disk record (of disk_fields, made by new_disk). The plan owns its disks:
 * add only records of disk_fields. disk_ok says a read disk record is complete; what names the
 * plan in errors ("apply plan"). */
typedef struct {
    const char *what;
    gsize size, disks_offset;
    const SpField *fields;
    gsize n;
    const SpField *disk_fields;
    gsize disk_n;
    gpointer (*new_disk)(void);
    gboolean (*disk_ok)(gconstpointer disk);
} SpOpPlanForm;
/* A new plan, with no disks; freed (with its disks) by sp_op_plan_free (NULL is fine). */
gpointer sp_op_plan_new(const SpOpPlanForm *form);
void sp_op_plan_free(const SpOpPlanForm *form, gpointer plan);
char *sp_op_plan_write(const SpOpPlanForm *form, gconstpointer plan);
/* The plan journaled as text, else NULL with G_IO_ERROR_INVALID_DATA. */
gpointer sp_op_plan_read(const SpOpPlanForm *form, const char *text, GError **error);

/* The JSON object in file path (the group file, a backup session) into *ret: FALSE with error
 * when the file exists but cannot be read; else TRUE, *ret NULL when there is no such file or
 * when it holds no JSON object (then *ret_invalid). */
gboolean sp_json_file_read(const char *path, SpJson **ret, gboolean *ret_invalid, GError **error);

/* The deadline of one qemu-img run or block job over bytes of image data: $STILLPOINT_IMAGE_TIMEOUT
 * seconds when set, else 10 min + 2 min per GiB (test builds may shorten it). */
#define SP_IMAGE_TIMEOUT_ENV "STILLPOINT_IMAGE_TIMEOUT"
guint sp_op_deadline_ms(gint64 bytes, SpTestDeadline which);

/* Runs qemu-img with argv (NULL-terminated, without "qemu-img"; build it with qemu-img.h). When
 * report has a percent callback and argv holds "-p", qemu-img's "(NN.NN/100%)" lines are passed
 * on for disk. Killed, with G_IO_ERROR_TIMED_OUT, at its deadline (sp_op_deadline_ms of the
 * files it names). */
gboolean sp_op_qemu_img(const SpOpReport *report, const char *disk, const char *const *argv,
                        GError **error);
/* The same, with stdout returned (JSON of info or map). */
gboolean sp_op_qemu_img_output(const char *const *argv, char **ret_out, GError **error);
/* The same with an explicit deadline; ret_out may be NULL. */
gboolean sp_op_qemu_img_run(const SpOpReport *report, const char *disk, const char *const *argv,
                            guint timeout_ms, char **ret_out, GError **error);

/* The format the store recorded for image (never probed); a clear error when there is none.
 * Also refuses image unless its directory is safe (sp_image_dir_check) and its path still names
 * the file the store recorded (sp_store_image_check): every offline operation asks this first. */
char *sp_op_format_of(SpStore *store, const SpVm *vm, const char *image, GError **error);
/* Before an operation is journaled: image (may be NULL) is in a safe directory and still the
 * file the store recorded, as sp_op_format_of checks again before each step; a missing file is
 * left to the operation. So a swapped image is refused before anything starts. */
gboolean sp_op_image_unchanged(SpStore *store, const SpVm *vm, const char *image,
                               GError **error);
/* Reads each layer of top's chain alone (qemu-img info -f with its recorded format, which opens
 * no backing file) and refuses the chain when a layer names a json:/nbd:/protocol backing, a
 * backing without its format, a data file, or a backing format other than the store's. Run
 * before any qemu-img that opens the chain, so QEMU opens each layer with a known format. */
gboolean sp_op_chain_check(SpStore *store, const SpVm *vm, const SpImg *top, GError **error);

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
