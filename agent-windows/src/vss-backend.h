/* The VSS calls the agent's requester makes, behind a table of functions: the real one drives
 * COM/VSS (vss-backend-real.c), the fake one simulates writers and the provider in-process
 * (vss-backend-fake.c) so that the sequencing is tested under wine, which has no VSS. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <windows.h>

/* VSS holds the writes of a volume for at most 10 s between flush-and-hold and release
 * (Microsoft: "Windows holds writes for at most 10 seconds"). Our provider never holds longer. */
#define SP_VSS_FLUSH_HOLD_LIMIT_MS 10000u
/* How long writers get for metadata, PrepareForBackup and BackupComplete (VSS's own writer
 * freeze→thaw window defaults to 60 s). */
#define SP_VSS_STEP_TIMEOUT_MS 60000u
#define SP_VSS_WRITER_NAME_MAX 128
#define SP_VSS_MAX_WRITERS 64
#define SP_VSS_MAX_VOLUMES 32
#define SP_VSS_VOLUME_MAX 64 /* \\?\Volume{GUID}\ is 49 characters */

/* VSS_BACKUP_TYPE values, repeated here so that the interface does not need vss.h. */
typedef enum {
    SP_VSS_BT_FULL = 1,
    SP_VSS_BT_COPY = 5, /* the default: a copy backup leaves SQL Server's backup chain alone */
} SpVssBackupType;

/* What the backend reports about one writer after BackupComplete. */
typedef struct {
    char name[SP_VSS_WRITER_NAME_MAX]; /* UTF-8 */
    int state;                          /* VSS_WRITER_STATE */
    HRESULT failure;                    /* hrWriterFailure, S_OK when none */
} SpVssWriterStatus;

#define SP_VSS_MAX_VOLUME_DISKS 4
#define SP_VSS_SERIAL_MAX 64

/* A disk a volume lives on, as guest-get-fsinfo reports it (PROTOCOL.md DISK). */
typedef struct {
    char serial[SP_VSS_SERIAL_MAX];   /* "" when the disk has none */
    char bus_type[24];                /* PROTOCOL.md's BUS names: "scsi", "sata", "nvme"... */
    int bus, target, unit;            /* SCSI address; -1 when unknown */
    unsigned number;                  /* \\.\PhysicalDriveN */
} SpVssDisk;

typedef struct {
    wchar_t name[SP_VSS_VOLUME_MAX];  /* \\?\Volume{GUID}\ (or a fake name) */
    wchar_t mount[MAX_PATH];          /* first mount point, "C:\" */
    wchar_t fstype[16];               /* NTFS, ReFS */
    size_t n_disks;
    SpVssDisk disks[SP_VSS_MAX_VOLUME_DISKS];
} SpVssVolume;

typedef struct SpVssBackend SpVssBackend;

/* Every call returns an HRESULT. They are made in this order for one freeze:
 * init_for_backup, gather_writer_metadata, start_snapshot_set, add_volume..., prepare_for_backup,
 * do_snapshot_set, wait_frozen, (window), release, wait_snapshot_set, backup_complete,
 * writer_statuses, close. On a failure after init: abort, then close. */
typedef struct {
    const char *name; /* "vss" or "fake": the agent prints it */
    /* Fixed volumes whose filesystem VSS can snapshot (NTFS, ReFS). */
    HRESULT (*list_volumes)(SpVssBackend *b, SpVssVolume *ret, size_t max, size_t *ret_n);
    HRESULT (*init_for_backup)(SpVssBackend *b, SpVssBackupType type);
    HRESULT (*gather_writer_metadata)(SpVssBackend *b, DWORD timeout_ms);
    HRESULT (*start_snapshot_set)(SpVssBackend *b);
    HRESULT (*add_volume)(SpVssBackend *b, const wchar_t *volume);
    HRESULT (*prepare_for_backup)(SpVssBackend *b, DWORD timeout_ms);
    /* Starts DoSnapshotSet asynchronously: writers freeze, then the provider commits and holds. */
    HRESULT (*do_snapshot_set)(SpVssBackend *b);
    /* Waits until the provider signals "frozen" (S_OK), the snapshot set fails first (its error),
     * cancel is signalled (E_ABORT) or timeout_ms pass (HRESULT_FROM_WIN32(ERROR_TIMEOUT)). */
    HRESULT (*wait_frozen)(SpVssBackend *b, DWORD timeout_ms, HANDLE cancel);
    /* An event that becomes signalled when the provider stops holding on its own (its limit). */
    HANDLE (*hold_expired_event)(SpVssBackend *b);
    /* Tells the provider to return from CommitSnapshots. */
    HRESULT (*release)(SpVssBackend *b);
    /* Waits for DoSnapshotSet to finish; *ret_hold_expired says whether the provider had let go
     * on its own before release. */
    HRESULT (*wait_snapshot_set)(SpVssBackend *b, DWORD timeout_ms, bool *ret_hold_expired);
    HRESULT (*backup_complete)(SpVssBackend *b, DWORD timeout_ms);
    HRESULT (*writer_statuses)(SpVssBackend *b, SpVssWriterStatus *ret, size_t max, size_t *ret_n);
    HRESULT (*abort)(SpVssBackend *b);
    /* Ends the session (releases the backup components); the backend can be used again. */
    void (*close)(SpVssBackend *b);
    void (*free)(SpVssBackend *b);
} SpVssBackendOps;

struct SpVssBackend {
    const SpVssBackendOps *ops;
};

/* VSS_WRITER_STATE values the agent interprets (repeated so tests need no vss.h). */
enum {
    SP_VSS_WS_STABLE = 1,
    SP_VSS_WS_FAILED_AT_IDENTIFY = 6,
    SP_VSS_WS_FAILED_AT_FREEZE = 9,
    SP_VSS_WS_FAILED_AT_THAW = 10,
    SP_VSS_WS_FAILED_AT_BACKUP_COMPLETE = 12,
    SP_VSS_WS_FAILED_AT_BACKUPSHUTDOWN = 15,
};
bool sp_vss_writer_state_failed(int state);
const char *sp_vss_writer_state_str(int state);

/* The real backend (COM/VSS). NULL with *ret_hr set when COM cannot be initialized. */
SpVssBackend *sp_vss_backend_real_new(HRESULT *ret_hr);
/* Fills v->disks from the volume's extents (IOCTLs; used by the real backend). */
void sp_volume_disks(SpVssVolume *v);

#ifdef SP_TEST_HOOKS
/* The fake backend, in test builds only. Its behaviour is set by a config; a test build of the
 * agent builds one from the STILLPOINT_FAKE_VSS environment variable (test-hooks.c). */
typedef struct {
    DWORD commit_delay_ms;      /* time from do_snapshot_set to the provider's "frozen" */
    DWORD hold_limit_ms;        /* the provider's own hold limit (0 = SP_VSS_FLUSH_HOLD_LIMIT_MS) */
    const char *fail_step;      /* a call name from the list above that returns fail_hr */
    HRESULT fail_hr;
    const char *failing_writer; /* this writer fails at freeze (state FAILED_AT_FREEZE) */
    size_t n_volumes;           /* fake fixed volumes, 0 = 2 */
} SpVssFakeConfig;

SpVssBackend *sp_vss_backend_fake_new(const SpVssFakeConfig *config);
/* The names of the calls made so far, comma-separated ("init_for_backup,gather_writer_metadata"). */
const char *sp_vss_backend_fake_calls(SpVssBackend *b);
/* The backup type of the last init_for_backup. */
SpVssBackupType sp_vss_backend_fake_backup_type(SpVssBackend *b);
/* "commit-delay-ms=50,hold-limit-ms=200,fail=prepare_for_backup,fail-hr=80042318,
 * failing-writer=NAME,volumes=3" (fail-hr in hex; fail=commit fails the set before "frozen").
 * Strings point into spec, which must outlive the config. Returns false on a malformed spec. */
bool sp_vss_fake_config_parse(char *spec, SpVssFakeConfig *ret);
#endif
