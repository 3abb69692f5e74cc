/* daemon-ops: what stillpointd's methods do, run on a worker thread each with its own store
 * connection, and their results as D-Bus values. */
#pragma once
#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct SpDaemonJob SpDaemonJob;
/* Called on the worker thread; the daemon forwards it to the main loop (the Progress signal). */
typedef void (*SpJobProgressFn)(const SpDaemonJob *job, const char *message, double percent,
                                gpointer user_data);

struct SpDaemonJob {
    const char *method;       /* D-Bus method name */
    const char *operation;    /* "create", ... for Progress; NULL for quick methods */
    char *store_path;
    const char *unit_dir;     /* where schedules' units go: the daemon's (it outlives its
                               * jobs), never the caller's */
    char *vm;                 /* the VM the method names, or NULL */
    GVariant *parameters;     /* the method's parameters */
    guint32 caller_uid;
    gboolean hide_hook_commands;  /* the caller is not a VM administrator (VM lists) */
    SpJobProgressFn progress;
    gpointer progress_data;
};

/* Runs job->method. Returns the reply tuple, or NULL with error set. */
GVariant *sp_daemon_job_run(SpDaemonJob *job, GError **error);
void sp_daemon_job_free(SpDaemonJob *job);

G_END_DECLS
