/* The freeze state machine of the Windows agent: a VSS backup whose frozen window is held by
 * the provider, bounded by a lease (as on Linux) and by VSS's flush-and-hold limit. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "vss-backend.h"

typedef enum {
    SP_VSS_OK = 0,
    SP_VSS_E_BUSY = -1,        /* a freeze is already held or in progress */
    SP_VSS_E_NOT_FROZEN = -2,  /* thaw without a freeze */
    SP_VSS_E_BACKEND = -3,     /* a VSS call failed: error.step and error.hr say which */
    SP_VSS_E_TIMEOUT = -4,     /* writers and provider did not reach "frozen" in time */
    SP_VSS_E_ABORTED = -5,     /* thawed, hung up or stopped before the provider committed */
    SP_VSS_E_NO_VOLUMES = -6,  /* nothing to freeze: no volume matched */
    SP_VSS_E_BAD_VOLUME = -7,  /* a requested mount point is not a snapshottable volume */
    SP_VSS_E_EPOCH = -8,       /* thaw named another freeze's epoch */
} SpVssStatus;

typedef enum {
    SP_VSS_STATE_THAWED,
    SP_VSS_STATE_FREEZING,
    SP_VSS_STATE_FROZEN,
} SpVssState;

/* Why a freeze did not hold until thaw (none = it did). */
typedef enum {
    SP_VSS_END_NONE,
    SP_VSS_END_LEASE_EXPIRED,  /* the lease ran out; the agent thawed on its own */
    SP_VSS_END_HOLD_LIMIT,     /* VSS's 10 s flush-and-hold limit was reached */
    SP_VSS_END_HANGUP,         /* the host side of the channel went away */
    SP_VSS_END_WRITER_FAILED,  /* a writer reported failure */
    SP_VSS_END_SNAPSHOT_FAILED,/* DoSnapshotSet or BackupComplete failed */
    SP_VSS_END_STOPPED,        /* the service was stopped */
} SpVssEnd;

typedef struct {
    int code;           /* SpVssStatus */
    const char *step;   /* the backend call that failed, or NULL */
    HRESULT hr;
    char desc[256];
} SpVssError;

typedef struct {
    SpVssBackend *backend;          /* borrowed */
    SpVssBackupType backup_type;    /* 0 = SP_VSS_BT_COPY */
    DWORD hold_limit_ms;            /* 0 = SP_VSS_FLUSH_HOLD_LIMIT_MS */
    DWORD frozen_timeout_ms;        /* writers + commit; 0 = SP_VSS_STEP_TIMEOUT_MS */
    DWORD step_timeout_ms;          /* metadata, prepare, complete; 0 = SP_VSS_STEP_TIMEOUT_MS */
} SpVssFreezerConfig;

typedef struct {
    size_t n_frozen;
    SpVssVolume frozen[SP_VSS_MAX_VOLUMES];
    uint64_t epoch;
    DWORD lease_ms;      /* the effective window: min(requested lease, hold limit) */
    DWORD hold_limit_ms;
} SpVssFreezeResult;

typedef struct {
    bool consistent;
    SpVssEnd end;
    uint64_t epoch;
    uint64_t held_ms;         /* from "frozen" to release */
    size_t n_thawed;
    size_t n_writers;
    SpVssWriterStatus writers[SP_VSS_MAX_WRITERS];
    char failed_writer[SP_VSS_WRITER_NAME_MAX]; /* first failed writer, "" if none */
    HRESULT snapshot_hr;      /* DoSnapshotSet's result */
} SpVssThawResult;

typedef struct SpVssFreezer SpVssFreezer;

SpVssFreezer *sp_vss_freezer_new(const SpVssFreezerConfig *config);
void sp_vss_freezer_free(SpVssFreezer *f); /* thaws first; accepts NULL */

/* Mount points ("C:\") to freeze, or n_mounts 0 for every fixed NTFS/ReFS volume.
 * lease_ms 0 = the hold limit. Blocks until frozen or failed. */
int sp_vss_freezer_freeze(SpVssFreezer *f, const wchar_t *const *mounts, size_t n_mounts,
                          DWORD lease_ms, SpVssFreezeResult *ret, SpVssError *err);
/* epoch 0 = whichever freeze is held. After the agent thawed on its own (lease, limit, hang-up)
 * every thaw reports that freeze again (consistent:false, n_thawed 0) until the next freeze, as
 * on Linux; after a requested thaw, SP_VSS_E_NOT_FROZEN. */
int sp_vss_freezer_thaw(SpVssFreezer *f, uint64_t epoch, SpVssThawResult *ret, SpVssError *err);
/* The host side hung up (or the service stops): thaw now, or cancel a freeze in progress. */
void sp_vss_freezer_end(SpVssFreezer *f, SpVssEnd why);
/* Abandons a freeze in progress and returns at once (safe from a control handler); a freeze
 * already held is left to sp_vss_freezer_end. */
void sp_vss_freezer_cancel(SpVssFreezer *f, SpVssEnd why);

SpVssState sp_vss_freezer_state(SpVssFreezer *f);

typedef struct {
    SpVssState state;
    uint64_t epoch;          /* of the freeze held, or of the last one */
    uint64_t lease_ms, held_ms, remaining_ms; /* while frozen */
    size_t n_frozen;
    SpVssVolume frozen[SP_VSS_MAX_VOLUMES];
    bool have_last;
    SpVssThawResult last;
} SpVssStatusInfo;
void sp_vss_freezer_status(SpVssFreezer *f, SpVssStatusInfo *ret);
/* The volumes a freeze would cover (for guest-get-fsinfo and freeze-list). */
int sp_vss_freezer_list_volumes(SpVssFreezer *f, SpVssVolume *ret, size_t max, size_t *ret_n);
/* Called (from any thread) whenever the state changes, e.g. to hold logs while frozen. */
void sp_vss_freezer_set_state_cb(SpVssFreezer *f, void (*cb)(SpVssState state, void *userdata),
                                 void *userdata);

/* Whether a volume's mount point is the one a client named ("c:" is "C:\"). */
bool sp_vss_mount_matches(const wchar_t *mount, const wchar_t *wanted);

const char *sp_vss_end_str(SpVssEnd end);
/* The name of a VSS error and a hint ("" when unknown). */
const char *sp_vss_hresult_str(HRESULT hr);
const char *sp_vss_status_str(int status);
