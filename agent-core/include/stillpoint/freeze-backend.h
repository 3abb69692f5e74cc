/* freeze-backend: the one platform interface of the agent command core (agent-commands.h): what
 * the commands need from a guest OS to quiesce it. The Linux agent implements it with FIFREEZE
 * (agent-linux/src/backend-linux.c), the Windows agent with VSS (agent-windows/src/
 * backend-windows.c); the commands, their arguments, error codes and replies live once, in the
 * core. Plain C11, no dependencies beyond libstillpoint-protocol. */
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
    int64_t lease_ms;       /* the lease asked for (the core fills in the default) */
    unsigned channel;       /* the channel asking: its hang-up may thaw */
    bool standard;          /* a guest-fsfreeze-* command (qemu-ga semantics): a standard
                             * freeze-list ignores mountpoints that are not mounted */
} SpFreezeRequest;

/* A frozen filesystem (a volume on Windows). Strings are malloc'd by the backend. */
typedef struct {
    char *mountpoint;
    char *fstype;
    char *device;           /* "/dev/vda1", "\\?\Volume{...}\", or NULL */
    char *uuid;             /* filesystem UUID (libblkid), or NULL */
    char *label;            /* filesystem label, or NULL */
} SpFsEntry;

typedef struct {
    char *mountpoint;
    char *fstype;
    const char *reason;     /* stable name: "read-only", "frozen-by-other", ... (PROTOCOL.md) */
    char *primary;          /* "same-filesystem": frozen through this mountpoint */
} SpSkipEntry;

/* What one application writer did in a freeze: a D-Bus writer on Linux (writers.c), a VSS writer
 * on Windows. */
typedef struct {
    char *name;
    const char *phase;        /* the last phase it was asked: "prepare" or "freeze" (static) */
    const char *result;       /* "ok", "failed", "timeout", "vanished" (static) */
    char *message;            /* the writer's error, or NULL */
    int64_t ms;               /* how long that phase took it; -1 = not timed (VSS) */
    const char *thaw_result;  /* NULL until told Thaw; then as result */
    char *thaw_message;
    const char *state;        /* VSS's own writer state ("stable", ...), or NULL (static) */
} SpWriterReport;

void sp_writer_reports_free(SpWriterReport *reports, size_t n);

/* What a freeze froze. Everything is malloc'd; sp_backend_freeze_result_clear frees it. */
typedef struct {
    SpFsEntry *frozen;
    size_t n_frozen;
    SpWriterReport *writers;
    size_t n_writers;
    bool writers_at_thaw;   /* the platform learns how its writers did only at thaw (VSS, after
                             * BackupComplete): the freeze reply has no "writers" */
    SpSkipEntry *skipped;
    size_t n_skipped;
    int64_t epoch;
    int64_t lease_ms;       /* the lease granted */
    int64_t hold_limit_ms;  /* a platform limit that capped the lease (VSS), 0 = none */
} SpBackendFreezeResult;

/* How a freeze ended. writers and failed_writer are malloc'd (sp_backend_thaw_result_clear) in
 * a thaw's result, borrowed from the backend in a status's last_thaw. */
typedef struct {
    int64_t epoch;
    size_t n_thawed;
    bool consistent;        /* held continuously from the freeze reply to this thaw */
    const char *reason;     /* how the freeze ended: "requested", "lease-expired", ... (static) */
    int64_t held_ms;
    SpWriterReport *writers; /* the writers of that freeze, with their Thaw results */
    size_t n_writers;
    char *failed_writer;    /* the first writer that failed, or NULL */
} SpBackendThawResult;

/* The freeze state, shared by all channels. Everything is owned by the backend and valid until
 * its next call. */
typedef struct {
    bool frozen;
    int64_t epoch;          /* current or last; 0 = never frozen */
    int64_t lease_ms;
    int64_t remaining_ms;
    int64_t held_ms;        /* so far, or of the last freeze */
    SpFsEntry *frozen_fs;
    size_t n_frozen_fs;
    bool has_last_thaw;
    SpBackendThawResult last_thaw;
    SpWriterReport *writers;  /* of the current or last freeze */
    size_t n_writers;
} SpBackendStatus;

/* stillpoint-flush: the selected filesystems syncfs'd without freezing, so that the freeze that
 * follows has little left to write inside the frozen window. */
typedef struct {
    size_t n_flushed;       /* filesystems syncfs'd */
    int64_t ms;             /* how long it took */
} SpBackendFlushResult;

/* The longest a flush holds the agent's main loop: the syncfs calls run on worker threads and
 * the command answers "flush-timeout" when they are not done by then (they go on, detached). */
#define SP_FLUSH_DEADLINE_MS 5000

/* A failure: a stable code (SP_CODE_*, PROTOCOL.md "Error codes") and a sentence for humans. */
typedef struct {
    const char *code;       /* static string */
    char desc[512];
} SpBackendError;

/* Sets err's code and formats its sentence (cut to fit). */
void sp_backend_error_set(SpBackendError *err, const char *code, const char *fmt, ...)
#if defined(__MINGW32__) /* mingw's C99 printf, not msvcrt's */
    __attribute__((format(gnu_printf, 3, 4)))
#elif defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

typedef struct {
    /* 0 on success, -1 with err set. Called only while thawed (the core refuses otherwise). */
    int (*freeze)(void *self, const SpFreezeRequest *req, SpBackendFreezeResult *ret,
                  SpBackendError *err);
    /* epoch 0 = whatever is frozen. standard: a guest-fsfreeze-thaw, which thaws a thawed guest
     * without error (ret->epoch 0, n_thawed 0). */
    int (*thaw)(void *self, int64_t epoch, bool standard, SpBackendThawResult *ret,
                SpBackendError *err);
    void (*status)(void *self, SpBackendStatus *ret);
    /* guest-get-fsinfo's return value, in qemu-ga's shape. */
    SpJson *(*fsinfo)(void *self, SpBackendError *err);
    /* syncfs what req selects (its kind and names; lease and standard unused) without
     * freezing, bounded by SP_FLUSH_DEADLINE_MS. NULL = not supported: the agent then has no
     * stillpoint-flush command. */
    int (*flush)(void *self, const SpFreezeRequest *req, SpBackendFlushResult *ret,
                 SpBackendError *err);
    /* n unpredictable bytes (the OS's CSPRNG), for a freeze's lease token. 0, or -1. */
    int (*random)(void *self, uint8_t *buf, size_t n);
} SpFreezeBackendOps;

typedef struct {
    const SpFreezeBackendOps *ops;
    void *self;
} SpFreezeBackend;

/* Free what a backend put in a result (with free(): backends allocate with malloc). */
void sp_fs_entry_clear(SpFsEntry *entry); /* frees its strings */
void sp_backend_freeze_result_clear(SpBackendFreezeResult *result);
void sp_backend_thaw_result_clear(SpBackendThawResult *result);

/* Stable error codes of the stillpoint- commands, besides the dispatcher's SP_ERROR_CODE_*
 * (message.h). One list for both agents. An argument whose value cannot be used (both
 * selections, an empty list or name, a non-positive epoch) is SP_ERROR_CODE_INVALID_ARGUMENTS,
 * like a missing, mistyped or unknown one: one code for every bad argument. */
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
/* A stillpoint-freeze is thawed only from the channel that made it, or with its lease token. */
#define SP_CODE_NOT_OWNER "not-owner"
