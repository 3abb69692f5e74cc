/* flush: stillpoint-flush's syncfs of a plan's filesystems, one worker thread each, so that the
 * agent's main loop waits at most SP_FLUSH_DEADLINE_MS; what is still running then finishes on
 * its own. */
#include "flush.h"

#include <stdarg.h>
#include <stdio.h>

/* One flush: its syncfs calls run on worker threads, one per filesystem, so that the main loop
 * waits at most SP_FLUSH_DEADLINE_MS. Workers still running then finish on their own and the
 * last one out (or the command) frees this. */
typedef struct {
    GMutex lock;
    GCond cond;
    gint refs;
    const SpFsOps *ops;
    void *userdata;
    size_t done, failed;
    int first_err;
    char *first_mountpoint;
} FlushRun;

typedef struct {
    FlushRun *run;
    int fd;
    char *mountpoint;
} FlushJob;

static void flush_run_unref(FlushRun *run)
{
    if (!g_atomic_int_dec_and_test(&run->refs))
        return;
    g_mutex_clear(&run->lock);
    g_cond_clear(&run->cond);
    g_free(run->first_mountpoint);
    g_free(run);
}

static gpointer flush_job_cb(gpointer data)
{
    FlushJob *job = data;
    FlushRun *run = job->run;
    int r = run->ops->syncfs(job->fd, run->userdata);

    run->ops->close(job->fd, run->userdata);
    g_mutex_lock(&run->lock);
    if (r < 0 && run->failed++ == 0) {
        run->first_err = -r;
        run->first_mountpoint = g_strdup(job->mountpoint);
    }
    run->done++;
    g_cond_signal(&run->cond);
    g_mutex_unlock(&run->lock);
    g_free(job->mountpoint);
    g_free(job);
    flush_run_unref(run);
    return NULL;
}

/* Starts one worker per target; returns how many started, or -1 with err set (the ones started
 * go on). */
static int start_jobs(FlushRun *run, const SpFreezePlan *plan, size_t *ret_started,
                      SpBackendError *err)
{
    for (size_t i = 0; i < plan->n_targets; i++) {
        const SpPlanTarget *t = &plan->targets[i];
        int fd = run->ops->open_dir(t->mountpoint, run->userdata);
        FlushJob *job;
        GThread *thread;

        if (fd < 0) {
            sp_backend_error_set(err, SP_CODE_FLUSH_FAILED, "failed to open %s: %s", t->mountpoint,
                                 g_strerror(-fd));
            return -1;
        }
        job = g_new0(FlushJob, 1);
        job->run = run;
        job->fd = fd;
        job->mountpoint = g_strdup(t->mountpoint);
        g_atomic_int_inc(&run->refs);
        thread = g_thread_try_new("sp-flush", flush_job_cb, job, NULL);
        if (thread)
            g_thread_unref(thread); /* detached: it may outlive the deadline */
        else
            flush_job_cb(job);      /* no thread available: do it here */
        (*ret_started)++;
    }
    return 0;
}

int sp_flush_plan(const SpFsOps *ops, void *userdata, const SpFreezePlan *plan,
                  SpBackendFlushResult *ret, SpBackendError *err)
{
    FlushRun *run = g_new0(FlushRun, 1);
    gint64 start = g_get_monotonic_time(), deadline = start + SP_FLUSH_DEADLINE_MS * 1000;
    size_t n_started = 0;
    int r;

    g_mutex_init(&run->lock);
    g_cond_init(&run->cond);
    run->refs = 1;
    run->ops = ops;
    run->userdata = userdata;
    r = start_jobs(run, plan, &n_started, err);
    g_mutex_lock(&run->lock);
    while (run->done < n_started)
        if (!g_cond_wait_until(&run->cond, &run->lock, deadline))
            break;
    if (r == 0 && run->done < n_started) {
        sp_backend_error_set(err, SP_CODE_FLUSH_TIMEOUT,
                             "%zu of %zu filesystem(s) still flushing after %d ms "
                             "(left to finish in the background)", n_started - run->done, n_started,
                             SP_FLUSH_DEADLINE_MS);
        r = -1;
    } else if (r == 0 && run->failed > 0) {
        sp_backend_error_set(err, SP_CODE_FLUSH_FAILED,
                             "failed to syncfs %s: %s", run->first_mountpoint,
                             g_strerror(run->first_err));
        r = -1;
    }
    ret->n_flushed = run->done - run->failed;
    g_mutex_unlock(&run->lock);
    flush_run_unref(run);
    ret->ms = (g_get_monotonic_time() - start) / 1000;
    return r;
}
