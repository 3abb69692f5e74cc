/* state: the record in /run/stillpoint of what this agent froze, so that an agent started after
 * a crash can thaw it (pure C, returns -errno). /run is tmpfs, which is never frozen. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SP_STATE_DIR_DEFAULT "/run/stillpoint"
#define SP_STATE_FILE "frozen"

typedef struct {
    dev_t dev;
    char *mountpoint;
} SpStateFs;

typedef struct {
    long pid;
    int64_t epoch;
    SpStateFs *fs;   /* in freeze order */
    size_t n_fs;
} SpState;

/* Atomically replace dir/frozen (written to a temporary file, then renamed). */
int sp_state_write(const char *dir, long pid, int64_t epoch, const SpStateFs *fs, size_t n_fs);
/* -ENOENT when there is no state file; -EBADMSG when it is not ours or damaged. */
int sp_state_read(const char *dir, SpState **ret);
int sp_state_remove(const char *dir); /* 0 also when there was none */
void sp_state_free(SpState *state);   /* accepts NULL */
