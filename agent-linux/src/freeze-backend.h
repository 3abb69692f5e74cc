/* freeze-backend: what the command handlers (commands.c) need from a platform to quiesce it.
 * The Linux backend (backend-linux.c) implements it with FIFREEZE; a Windows agent implements
 * the same contract with VSS, so the command semantics live in one place. Plain C. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "stillpoint/json.h"
#include "stillpoint/message.h"

typedef enum {
    SP_SELECT_ALL,          /* every freezable filesystem */
    SP_SELECT_MOUNTPOINTS,  /* names = mountpoints */
    SP_SELECT_DISKS,        /* names = disk serials */
} SpSelectKind;

typedef struct {
    SpSelectKind kind;
    const char *const *names;
    size_t n_names;
    int64_t lease_ms;       /* 0 = the configured default */
    unsigned channel;       /* the channel asking: its hang-up may thaw */
    bool standard;          /* a guest-fsfreeze-* command (qemu-ga semantics) */
} SpFreezeRequest;

typedef struct {
    char *mountpoint;
    char *fstype;
    char *device;           /* "/dev/vda1" or NULL */
    char *uuid;             /* filesystem UUID (libblkid), or NULL */
    char *label;            /* filesystem label, or NULL */
} SpFsEntry;

typedef struct {
    char *mountpoint;
    char *fstype;
    const char *reason;     /* stable name: "read-only", "frozen-by-other", ... (PROTOCOL.md) */
    char *primary;          /* "same-filesystem": frozen through this mountpoint */
} SpSkipEntry;

/* What one application writer did in a freeze (writers.c; VSS writers on Windows). */
typedef struct {
    char *name;
    const char *phase;        /* the last phase it was asked: "prepare" or "freeze" (static) */
    const char *result;       /* "ok", "failed", "timeout", "vanished" (static) */
    char *message;            /* the writer's error, or NULL */
    int64_t ms;               /* how long that phase took it */
    const char *thaw_result;  /* NULL until told Thaw; then as result */
    char *thaw_message;
} SpWriterReport;

void sp_writer_reports_free(SpWriterReport *reports, size_t n);

typedef struct {
    SpFsEntry *frozen;
    size_t n_frozen;
    SpWriterReport *writers;
    size_t n_writers;
    SpSkipEntry *skipped;
    size_t n_skipped;
    int64_t epoch;
    int64_t lease_ms;
} SpFreezeResult;

typedef struct {
    int64_t epoch;
    size_t n_thawed;
    bool consistent;        /* held continuously from the freeze reply to this thaw */
    const char *reason;     /* how the freeze ended: "requested", "lease-expired", ... */
    int64_t held_ms;
    SpWriterReport *writers; /* the thaw commands' replies: the writers of that freeze, with
                              * their Thaw results (malloc'd; sp_writer_reports_free) */
    size_t n_writers;
} SpThawResult;

typedef struct {
    bool frozen;
    int64_t epoch;          /* current or last; 0 = never frozen */
    int64_t lease_ms;
    int64_t remaining_ms;
    int64_t held_ms;        /* so far, or of the last freeze */
    SpFsEntry *frozen_fs;   /* owned by the backend; valid until the next call */
    size_t n_frozen_fs;
    bool has_last_thaw;
    SpThawResult last_thaw;
    SpWriterReport *writers;  /* of the current or last freeze; owned by the backend */
    size_t n_writers;
} SpFreezeStatus;

/* stillpoint-flush: the selected filesystems syncfs'd without freezing, so that the freeze that
 * follows has little left to write inside the frozen window. */
typedef struct {
    size_t n_flushed;       /* filesystems syncfs'd */
    int64_t ms;             /* how long it took */
} SpFlushResult;

/* The longest a flush holds the agent's main loop: the syncfs calls run on worker threads and
 * the command answers "flush-timeout" when they are not done by then (they go on, detached). */
#define SP_FLUSH_DEADLINE_MS 5000

/* A failure: a stable code (PROTOCOL.md "Error codes") and a sentence for humans. */
typedef struct {
    const char *code;       /* static string */
    char desc[512];
} SpBackendError;

typedef struct {
    /* 0 on success, -1 with err set. */
    int (*freeze)(void *self, const SpFreezeRequest *req, SpFreezeResult *ret, SpBackendError *err);
    /* epoch 0 = whatever is frozen. standard: qemu-ga semantics (thawing nothing is not an error). */
    int (*thaw)(void *self, int64_t epoch, bool standard, SpThawResult *ret, SpBackendError *err);
    void (*status)(void *self, SpFreezeStatus *ret);
    /* guest-get-fsinfo's return value, in qemu-ga's shape. */
    SpJson *(*fsinfo)(void *self, SpBackendError *err);
    /* syncfs what req selects (its kind and names; lease and standard unused) without
     * freezing, bounded by SP_FLUSH_DEADLINE_MS. Refused while frozen. NULL = not supported. */
    int (*flush)(void *self, const SpFreezeRequest *req, SpFlushResult *ret, SpBackendError *err);
} SpFreezeBackendOps;

typedef struct {
    const SpFreezeBackendOps *ops;
    void *self;
} SpFreezeBackend;

/* Frees what a backend put in a result (with free(): backends allocate with malloc). */
void sp_freeze_result_clear(SpFreezeResult *result);

/* Stable error codes of the stillpoint- commands (besides the dispatcher's SP_ERROR_CODE_*). */
/* An argument of the right type with a value that cannot be used (the dispatcher answers
 * wrong types and unknown arguments with SP_ERROR_CODE_INVALID_ARGUMENTS). */
#define SP_CODE_INVALID_ARGUMENT "invalid-argument"
#define SP_CODE_ALREADY_FROZEN "already-frozen"
#define SP_CODE_NOT_FROZEN "not-frozen"
#define SP_CODE_EPOCH_MISMATCH "epoch-mismatch"
#define SP_CODE_UNKNOWN_MOUNTPOINT "unknown-mountpoint"
#define SP_CODE_UNKNOWN_DISK "unknown-disk"
#define SP_CODE_LEASE_OUT_OF_RANGE "lease-out-of-range"
#define SP_CODE_HOOK_FAILED "hook-failed"
#define SP_CODE_WRITER_FAILED "writer-failed"
#define SP_CODE_FREEZE_FAILED "freeze-failed"
#define SP_CODE_STATE_FAILED "state-failed"
#define SP_CODE_DISCOVERY_FAILED "discovery-failed"
#define SP_CODE_FLUSH_FAILED "flush-failed"
#define SP_CODE_FLUSH_TIMEOUT "flush-timeout"
