/* state: a small line-oriented file, "stillpoint-agent-state 1", then pid, epoch, and one
 * "fs MAJOR:MINOR MOUNTPOINT" line per frozen filesystem (mountpoint octal-escaped). */
#define _GNU_SOURCE
#include "state.h"
#include "mountinfo.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define SP_STATE_MAGIC "stillpoint-agent-state 1"
#define SP_STATE_MAX_FS 4096

/* mkdir on a path that exists still waits for write access to the parent's filesystem, so with
 * / frozen, mkdir("/run") blocks until the thaw: only missing directories are created. */
static int make_missing_dir(const char *path)
{
    struct stat st;

    if (stat(path, &st) == 0)
        return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
    if (errno != ENOENT)
        return -errno;
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* mkdir -p: a minimal guest (busybox initramfs) may not have /run/stillpoint's parents. */
static int ensure_dir(const char *dir)
{
    char path[4096];
    size_t len = strlen(dir);

    if (len == 0 || len >= sizeof(path))
        return -ENAMETOOLONG;
    memcpy(path, dir, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        path[i] = '\0';
        int r = make_missing_dir(path);
        if (r < 0)
            return r;
        path[i] = i == len ? '\0' : '/';
    }
    return 0;
}

static void write_escaped(FILE *f, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == ' ' || c == '\t' || c == '\n' || c == '\\')
            fprintf(f, "\\%03o", c);
        else
            fputc(c, f);
    }
}

int sp_state_write(const char *dir, long pid, int64_t epoch, const SpStateFs *fs, size_t n_fs)
{
    char path[4096], tmp[4096];
    FILE *f;
    int r = ensure_dir(dir), fd;

    if (r < 0)
        return r;
    snprintf(path, sizeof(path), "%s/%s", dir, SP_STATE_FILE);
    snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, SP_STATE_FILE);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -errno;
    f = fdopen(fd, "w");
    if (!f) {
        r = -errno;
        close(fd);
        unlink(tmp);
        return r;
    }
    fprintf(f, "%s\npid %ld\nepoch %lld\n", SP_STATE_MAGIC, pid, (long long)epoch);
    for (size_t i = 0; i < n_fs; i++) {
        fprintf(f, "fs %u:%u ", major(fs[i].dev), minor(fs[i].dev));
        write_escaped(f, fs[i].mountpoint);
        fputc('\n', f);
    }
    if (fflush(f) != 0 || ferror(f))
        r = -EIO;
    if (fclose(f) != 0 && r == 0)
        r = -errno;
    if (r == 0 && rename(tmp, path) < 0)
        r = -errno;
    if (r < 0)
        unlink(tmp);
    return r;
}

void sp_state_free(SpState *state)
{
    if (!state)
        return;
    for (size_t i = 0; i < state->n_fs; i++)
        free(state->fs[i].mountpoint);
    free(state->fs);
    free(state);
}

static int parse_fs_line(SpState *s, const char *rest)
{
    unsigned maj, min;
    int used = 0;
    SpStateFs *nfs;

    if (s->n_fs >= SP_STATE_MAX_FS)
        return -EBADMSG;
    if (sscanf(rest, "%u:%u %n", &maj, &min, &used) != 2 || used == 0 || rest[used] == '\0')
        return -EBADMSG;
    nfs = realloc(s->fs, (s->n_fs + 1) * sizeof(*nfs));
    if (!nfs)
        return -ENOMEM;
    s->fs = nfs;
    s->fs[s->n_fs].dev = makedev(maj, min);
    s->fs[s->n_fs].mountpoint = sp_mountinfo_unescape(rest + used, strlen(rest + used));
    if (!s->fs[s->n_fs].mountpoint)
        return -ENOMEM;
    s->n_fs++;
    return 0;
}

int sp_state_read(const char *dir, SpState **ret)
{
    char path[4096], *line = NULL;
    size_t cap = 0;
    ssize_t n;
    SpState *s;
    FILE *f;
    int r = 0, lineno = 0;

    snprintf(path, sizeof(path), "%s/%s", dir, SP_STATE_FILE);
    f = fopen(path, "re");
    if (!f)
        return -errno;
    s = calloc(1, sizeof(*s));
    if (!s) {
        fclose(f);
        return -ENOMEM;
    }
    while (r == 0 && (n = getline(&line, &cap, f)) >= 0) {
        long long v;
        if (n > 0 && line[n - 1] == '\n')
            line[n - 1] = '\0';
        if (lineno++ == 0)
            r = strcmp(line, SP_STATE_MAGIC) == 0 ? 0 : -EBADMSG;
        else if (sscanf(line, "pid %lld", &v) == 1)
            s->pid = (long)v;
        else if (sscanf(line, "epoch %lld", &v) == 1)
            s->epoch = v;
        else if (strncmp(line, "fs ", 3) == 0)
            r = parse_fs_line(s, line + 3);
        else
            r = -EBADMSG;
    }
    if (r == 0 && lineno == 0)
        r = -EBADMSG;
    free(line);
    fclose(f);
    if (r < 0) {
        sp_state_free(s);
        return r;
    }
    *ret = s;
    return 0;
}

int sp_state_remove(const char *dir)
{
    char path[4096];

    snprintf(path, sizeof(path), "%s/%s", dir, SP_STATE_FILE);
    if (unlink(path) < 0 && errno != ENOENT)
        return -errno;
    return 0;
}
