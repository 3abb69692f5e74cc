/* Shared by the tree operations: checkpoint lookup, qemu-img with progress, the running VM's
 * block graph, QMP block jobs. */
#include "op-util.h"

#include <errno.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "stillpoint/channel.h"
#include "stillpoint/driver.h"
#include "stillpoint/guest-text.h"

#define JOB_POLL_MS 250

void sp_op_say(const SpOpReport *report, const char *fmt, ...)
{
    g_autofree char *msg = NULL;
    va_list ap;
    if (report == NULL || report->progress == NULL)
        return;
    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    report->progress(msg, report->user_data);
}

static int64_t parse_id(const char *ref)
{
    const char *p = ref[0] == '#' ? ref + 1 : ref;
    char *end = NULL;
    gint64 v;
    if (*p == '\0' || !g_ascii_isdigit(*p))
        return 0;
    v = g_ascii_strtoll(p, &end, 10);
    return (end != NULL && *end == '\0' && v > 0) ? v : 0;
}

SpCheckpoint *sp_op_find_checkpoint(SpStore *store, SpVm *vm, const char *ref, GError **error)
{
    g_autoptr(GPtrArray) cps = sp_store_checkpoint_list(store, vm->id, error);
    g_autoptr(GString) ids = g_string_new(NULL);
    int64_t id = parse_id(ref);
    guint match = G_MAXUINT, n = 0;

    if (cps == NULL)
        return NULL;
    for (guint i = 0; i < cps->len; i++) {
        SpCheckpoint *cp = g_ptr_array_index(cps, i);
        if (g_strcmp0(cp->name, ref) == 0) {
            match = i;
            g_string_append_printf(ids, "%s#%" G_GINT64_FORMAT, n++ ? ", " : "", cp->id);
        }
    }
    if (n > 1) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "VM '%s': %u checkpoints are named '%s' (%s); give one by its id, e.g. '#%"
                    G_GINT64_FORMAT "'",
                    vm->name, n, ref,
                    ids->str, ((SpCheckpoint *)g_ptr_array_index(cps, match))->id);
        return NULL;
    }
    for (guint i = 0; n == 0 && id != 0 && i < cps->len; i++) {
        if (((SpCheckpoint *)g_ptr_array_index(cps, i))->id == id) {
            match = i;
            n = 1;
        }
    }
    if (n == 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                    "VM '%s' has no checkpoint '%s' (see 'stillpoint checkpoint list %s')",
                    vm->name, ref, vm->name);
        return NULL;
    }
    return g_ptr_array_steal_index(cps, match);
}

gboolean sp_op_connect_qmp_if_running(SpVm *vm, SpQmp **ret_qmp, GError **error)
{
    g_autoptr(GError) local = NULL;
    SpQmp *qmp;

    *ret_qmp = NULL;
    if (vm->qmp_socket == NULL || vm->qmp_socket[0] == '\0')
        return TRUE;
    if (!g_file_test(vm->qmp_socket, G_FILE_TEST_EXISTS))
        return TRUE; /* QEMU removes nothing, but a VM never started has no socket */
    qmp = sp_qmp_connect(vm->qmp_socket, SP_QMP_CONNECT_TIMEOUT_MS, &local);
    if (qmp == NULL) {
        /* A socket file nobody listens on: QEMU is gone. Anything else (a timeout: another
         * client holds QMP) must not be taken for "off": qemu-img would then fight QEMU. */
        if (g_error_matches(local, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED))
            return TRUE;
        g_propagate_prefixed_error(error, g_steal_pointer(&local), "VM '%s': ", vm->name);
        return FALSE;
    }
    *ret_qmp = qmp;
    return TRUE;
}

typedef struct {
    const SpOpReport *report;
    const char *disk;
    GString *line;
} ProgressParse;

/* qemu-img -p prints "    (12.34/100%)" and a carriage return, over and over. */
static void parse_progress_chunk(ProgressParse *pp, const char *buf, gsize n)
{
    for (gsize i = 0; i < n; i++) {
        if (buf[i] != '\r' && buf[i] != '\n') {
            if (pp->line->len < 128)
                g_string_append_c(pp->line, buf[i]);
            continue;
        }
        const char *open = strchr(pp->line->str, '(');
        if (open != NULL && strstr(open, "/100%)") != NULL)
            pp->report->percent(pp->disk, g_ascii_strtod(open + 1, NULL),
                                pp->report->user_data);
        g_string_truncate(pp->line, 0);
    }
}

gboolean sp_op_qemu_img(const SpOpReport *report, const char *disk, const char *const *argv,
                        GError **error)
{
    g_autoptr(GPtrArray) args = g_ptr_array_new();
    g_autoptr(GSubprocess) proc = NULL;
    g_autoptr(GString) line = g_string_new(NULL);
    g_autofree char *err_text = NULL;
    gboolean with_progress = report != NULL && report->percent != NULL;
    GInputStream *out;
    ProgressParse pp = {.report = report, .disk = disk, .line = line};
    char buf[512];
    gssize n;

    g_ptr_array_add(args, (gpointer) "qemu-img");
    for (guint i = 0; argv[i] != NULL; i++)
        g_ptr_array_add(args, (gpointer)argv[i]);
    g_ptr_array_add(args, NULL);
    proc = g_subprocess_newv((const char *const *)args->pdata,
                             G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                             error);
    if (proc == NULL) {
        g_prefix_error(error, "cannot run qemu-img: ");
        return FALSE;
    }
    /* stdout carries only the progress lines; stderr (small) is read after. */
    out = g_subprocess_get_stdout_pipe(proc);
    while ((n = g_input_stream_read(out, buf, sizeof(buf), NULL, NULL)) > 0) {
        if (with_progress)
            parse_progress_chunk(&pp, buf, (gsize)n);
    }
    {
        GInputStream *err = g_subprocess_get_stderr_pipe(proc);
        g_autoptr(GString) e = g_string_new(NULL);
        while ((n = g_input_stream_read(err, buf, sizeof(buf), NULL, NULL)) > 0)
            if (e->len < 4096)
                g_string_append_len(e, buf, n);
        err_text = g_string_free(g_steal_pointer(&e), FALSE);
    }
    if (!g_subprocess_wait(proc, NULL, error))
        return FALSE;
    if (!g_subprocess_get_if_exited(proc) || g_subprocess_get_exit_status(proc) != 0) {
        g_autofree char *cmd = g_strjoinv(" ", (char **)args->pdata);
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s failed: %s", cmd,
                    err_text[0] != '\0' ? g_strstrip(err_text) : "no message");
        return FALSE;
    }
    return TRUE;
}

static SpJson *image_info(const char *image, GError **error)
{
    g_autoptr(GSubprocess) proc = NULL;
    g_autofree char *out = NULL, *err = NULL;
    SpJson *root = NULL;

    proc = g_subprocess_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE, error,
                            "qemu-img", "info", "-U", "--output=json", image, NULL);
    if (proc == NULL || !g_subprocess_communicate_utf8(proc, NULL, NULL, &out, &err, error))
        return NULL;
    if (!g_subprocess_get_if_exited(proc) || g_subprocess_get_exit_status(proc) != 0 ||
        out == NULL || sp_json_parse(out, strlen(out), NULL, &root, NULL) != SP_OK) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "image %s: qemu-img info failed: %s",
                    image, err != NULL ? g_strstrip(err) : "");
        return NULL;
    }
    return root;
}

char *sp_op_image_format(const char *image, GError **error)
{
    g_autoptr(SpJson) info = image_info(image, error);
    const char *fmt;
    if (info == NULL)
        return NULL;
    fmt = sp_json_object_get_string(info, "format");
    return g_strdup(fmt != NULL ? fmt : "raw");
}

gboolean sp_op_image_backing(const char *image, char **ret_backing, GError **error)
{
    g_autoptr(SpJson) info = image_info(image, error);
    const char *b;
    if (info == NULL)
        return FALSE;
    b = sp_json_object_get_string(info, "full-backing-filename");
    if (b == NULL)
        b = sp_json_object_get_string(info, "backing-filename");
    *ret_backing = g_strdup(b);
    return TRUE;
}

void sp_live_image_clear(SpLiveImage *li)
{
    g_clear_pointer(&li->node, g_free);
    g_clear_pointer(&li->root_node, g_free);
    li->found = li->active = FALSE;
}

/* QEMU names a file the way it was opened (maybe through a symlink); the store by real path. */
static gboolean same_file(const char *qemu_name, const char *b)
{
    g_autofree char *a = sp_qmp_local_filename(qemu_name);
    struct stat sa, sb;
    if (a == NULL || b == NULL)
        return FALSE;
    if (strcmp(a, b) == 0)
        return TRUE;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

/* Is filename somewhere in the chain of this image info (query-block's inserted.image)? */
static gboolean chain_has(const SpJson *info, const char *filename, gboolean *ret_top)
{
    *ret_top = TRUE;
    for (guint depth = 0; info != NULL && depth < 1000; depth++) {
        if (same_file(sp_json_object_get_string(info, "filename"), filename))
            return TRUE;
        info = sp_json_object_get(info, "backing-image");
        *ret_top = FALSE;
    }
    return FALSE;
}

gboolean sp_op_node_for_file(SpQmp *qmp, const char *filename, char **ret_node, GError **error)
{
    g_autoptr(SpJson) args = sp_json_new_object();
    g_autoptr(SpJson) nodes = NULL;
    sp_json_object_set_bool(args, "flat", true);
    nodes = sp_qmp_execute(qmp, "query-named-block-nodes", g_steal_pointer(&args),
                           SP_QMP_DEFAULT_TIMEOUT_MS, error);
    if (nodes == NULL)
        return FALSE;
    for (size_t i = 0; i < sp_json_array_len(nodes); i++) {
        const SpJson *n = sp_json_array_get(nodes, i);
        const char *drv = sp_json_object_get_string(n, "drv");
        /* The protocol node (drv "file") names the same file: we want the format node. */
        if (same_file(sp_json_object_get_string(n, "file"), filename) &&
            g_strcmp0(drv, "file") != 0 && g_strcmp0(drv, "host_device") != 0) {
            *ret_node = g_strdup(sp_json_object_get_string(n, "node-name"));
            return TRUE;
        }
    }
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                "image %s is in the VM's block graph but has no named node", filename);
    return FALSE;
}

gboolean sp_op_live_find(SpQmp *qmp, const char *image, SpLiveImage *ret, GError **error)
{
    g_autoptr(SpJson) blocks = sp_qmp_execute(qmp, "query-block", NULL, SP_QMP_DEFAULT_TIMEOUT_MS,
                                              error);
    memset(ret, 0, sizeof(*ret));
    if (blocks == NULL)
        return FALSE;
    for (size_t i = 0; i < sp_json_array_len(blocks); i++) {
        const SpJson *ins = sp_json_object_get(sp_json_array_get(blocks, i), "inserted");
        gboolean top = FALSE;
        if (ins == NULL || !chain_has(sp_json_object_get(ins, "image"), image, &top))
            continue;
        ret->found = TRUE;
        ret->active = top;
        ret->root_node = g_strdup(sp_json_object_get_string(ins, "node-name"));
        if (!sp_op_node_for_file(qmp, image, &ret->node, error)) {
            sp_live_image_clear(ret);
            return FALSE;
        }
        return TRUE;
    }
    return TRUE;
}

static const SpJson *find_job(const SpJson *jobs, const char *job_id)
{
    for (size_t i = 0; i < sp_json_array_len(jobs); i++) {
        const SpJson *j = sp_json_array_get(jobs, i);
        if (g_strcmp0(sp_json_object_get_string(j, "device"), job_id) == 0)
            return j;
    }
    return NULL;
}

static gboolean job_command(SpQmp *qmp, const char *command, const char *key, const char *job_id,
                            GError **error)
{
    g_autoptr(SpJson) args = sp_json_new_object();
    g_autoptr(SpJson) ret = NULL;
    sp_json_object_set_string(args, key, job_id);
    ret = sp_qmp_execute(qmp, command, g_steal_pointer(&args), SP_QMP_DEFAULT_TIMEOUT_MS, error);
    return ret != NULL;
}

gboolean sp_op_block_job_wait(SpQmp *qmp, const char *job_id, const SpOpReport *report,
                              const char *disk, gboolean *ret_gone, GError **error)
{
    gboolean completing = FALSE, first = TRUE;
    double last = -1;

    if (ret_gone != NULL)
        *ret_gone = FALSE;
    for (;;) {
        g_autoptr(SpJson) jobs = sp_qmp_execute(qmp, "query-block-jobs", NULL,
                                                SP_QMP_DEFAULT_TIMEOUT_MS, error);
        const SpJson *job;
        const char *status;
        g_autoptr(SpJson) ev = NULL;
        if (jobs == NULL)
            return FALSE;
        job = find_job(jobs, job_id);
        if (job == NULL) {
            if (first && ret_gone != NULL)
                *ret_gone = TRUE;
            return TRUE;
        }
        first = FALSE;
        status = sp_json_object_get_string(job, "status");
        {
            int64_t len = sp_json_object_get_int(job, "len", 0);
            int64_t off = sp_json_object_get_int(job, "offset", 0);
            double pct = len > 0 ? 100.0 * (double)off / (double)len : 0;
            if (report != NULL && report->percent != NULL && pct != last)
                report->percent(disk, pct, report->user_data);
            last = pct;
        }
        if (g_strcmp0(status, "concluded") == 0) {
            const char *err = sp_json_object_get_string(job, "error");
            /* QEMU's job error may quote a path the guest's image named. */
            g_autofree char *msg = err != NULL ? sp_guest_text(err) : NULL;
            if (!job_command(qmp, "job-dismiss", "id", job_id, error))
                return FALSE;
            if (msg != NULL) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "block job %s failed: %s",
                            job_id, msg);
                return FALSE;
            }
            return TRUE;
        }
        if (g_strcmp0(status, "ready") == 0 && !completing) {
            /* An active commit mirrors writes until told to pivot: the VM then runs on base. */
            if (!job_command(qmp, "block-job-complete", "device", job_id, error))
                return FALSE;
            completing = TRUE;
        }
        /* Wakes on the job's next status event, or polls again for progress. */
        ev = sp_qmp_wait_event(qmp, "JOB_STATUS_CHANGE", "id", job_id, JOB_POLL_MS, NULL);
    }
}

gboolean sp_op_unlink(const char *path, GError **error)
{
    if (g_unlink(path) != 0 && errno != ENOENT) {
        int errsv = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errsv), "removing %s: %s", path,
                    g_strerror(errsv));
        return FALSE;
    }
    return TRUE;
}

gboolean sp_op_images_ours(const SpVm *vm, const char *what, GError **error)
{
    if (g_strcmp0(vm->driver, "hook") != 0)
        return TRUE;
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                "VM '%s' uses the hook driver: its checkpoints live in the hook's storage (LVM, "
                "ZFS, a cloud API), which stillpoint cannot %s; do it there and remove the record "
                "with 'stillpoint vm remove --force' if needed",
                vm->name, what);
    return FALSE;
}
