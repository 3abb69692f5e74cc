/* mountinfo: parse /proc/self/mountinfo (proc(5)) into SpMount records. */
#define _GNU_SOURCE
#include "mountinfo.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* A mount table this large is not a guest we can plan for; bounds what a file makes us allocate. */
#define SP_MOUNTINFO_MAX_BYTES (16u * 1024 * 1024)

static void mount_clear(SpMount *m)
{
    free(m->root);
    free(m->mountpoint);
    free(m->mount_opts);
    free(m->fstype);
    free(m->source);
    free(m->super_opts);
}

void sp_mount_table_free(SpMountTable *table)
{
    if (!table)
        return;
    for (size_t i = 0; i < table->n_mounts; i++)
        mount_clear(&table->mounts[i]);
    free(table->mounts);
    free(table);
}

char *sp_mountinfo_unescape(const char *s, size_t len)
{
    char *out = malloc(len + 1);
    size_t o = 0;

    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\\' && i + 3 < len &&
            s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' && s[i + 2] <= '7' &&
            s[i + 3] >= '0' && s[i + 3] <= '7') {
            out[o++] = (char)(((s[i + 1] - '0') << 6) | ((s[i + 2] - '0') << 3) | (s[i + 3] - '0'));
            i += 3;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

/* Split one line into space-separated fields (no field is empty in mountinfo). */
static size_t split_fields(const char *line, size_t len, const char **starts, size_t *lens, size_t max)
{
    size_t n = 0, i = 0;

    while (i < len) {
        while (i < len && line[i] == ' ')
            i++;
        if (i >= len)
            break;
        if (n == max)
            return max + 1;
        starts[n] = line + i;
        while (i < len && line[i] != ' ')
            i++;
        lens[n] = (size_t)(line + i - starts[n]);
        n++;
    }
    return n;
}

static int parse_int_field(const char *s, size_t len, long *ret, long max)
{
    long v = 0;

    if (len == 0 || len > 10)
        return -EBADMSG;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EBADMSG;
        v = v * 10 + (s[i] - '0');
    }
    if (v > max)
        return -EBADMSG;
    *ret = v;
    return 0;
}

static int parse_devno(const char *s, size_t len, unsigned *ret_major, unsigned *ret_minor)
{
    const char *colon = memchr(s, ':', len);
    long major, minor;

    if (!colon)
        return -EBADMSG;
    if (parse_int_field(s, (size_t)(colon - s), &major, 0xfffff) < 0 ||
        parse_int_field(colon + 1, len - (size_t)(colon - s) - 1, &minor, 0xfffff) < 0)
        return -EBADMSG;
    *ret_major = (unsigned)major;
    *ret_minor = (unsigned)minor;
    return 0;
}

#define SP_MOUNTINFO_MAX_FIELDS 64

/* "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue" */
static int parse_line(const char *line, size_t len, SpMount *m)
{
    const char *f[SP_MOUNTINFO_MAX_FIELDS];
    size_t fl[SP_MOUNTINFO_MAX_FIELDS];
    size_t n = split_fields(line, len, f, fl, SP_MOUNTINFO_MAX_FIELDS), sep = 0;
    long id, parent;

    if (n > SP_MOUNTINFO_MAX_FIELDS || n < 10)
        return -EBADMSG;
    for (size_t i = 6; i < n; i++) {
        if (fl[i] == 1 && f[i][0] == '-') {
            sep = i;
            break;
        }
    }
    /* The separator is followed by exactly fstype, source and super options. */
    if (sep == 0 || sep + 4 != n)
        return -EBADMSG;
    if (parse_int_field(f[0], fl[0], &id, 0x7fffffff) < 0 ||
        parse_int_field(f[1], fl[1], &parent, 0x7fffffff) < 0 ||
        parse_devno(f[2], fl[2], &m->major, &m->minor) < 0)
        return -EBADMSG;
    m->id = (int)id;
    m->parent_id = (int)parent;
    m->root = sp_mountinfo_unescape(f[3], fl[3]);
    m->mountpoint = sp_mountinfo_unescape(f[4], fl[4]);
    m->mount_opts = strndup(f[5], fl[5]);
    m->fstype = sp_mountinfo_unescape(f[sep + 1], fl[sep + 1]);
    m->source = sp_mountinfo_unescape(f[sep + 2], fl[sep + 2]);
    m->super_opts = strndup(f[sep + 3], fl[sep + 3]);
    if (!m->root || !m->mountpoint || !m->mount_opts || !m->fstype || !m->source || !m->super_opts)
        return -ENOMEM;
    return 0;
}

int sp_mountinfo_parse(const char *text, size_t len, SpMountTable **ret)
{
    SpMountTable *t = calloc(1, sizeof(*t));
    size_t cap = 0, pos = 0;
    int r = 0;

    if (!t)
        return -ENOMEM;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t line_len = nl ? (size_t)(nl - (text + pos)) : len - pos;

        if (line_len > 0) {
            if (t->n_mounts == cap) {
                size_t ncap = cap ? cap * 2 : 32;
                SpMount *nm = realloc(t->mounts, ncap * sizeof(*nm));
                if (!nm) {
                    r = -ENOMEM;
                    goto fail;
                }
                t->mounts = nm;
                cap = ncap;
            }
            memset(&t->mounts[t->n_mounts], 0, sizeof(SpMount));
            r = parse_line(text + pos, line_len, &t->mounts[t->n_mounts]);
            t->n_mounts++;
            if (r < 0)
                goto fail;
        }
        pos += line_len + 1;
    }
    *ret = t;
    return 0;
fail:
    sp_mount_table_free(t);
    return r;
}

int sp_mountinfo_read(const char *path, SpMountTable **ret)
{
    int fd = open(path ? path : "/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int r;

    if (fd < 0)
        return -errno;
    for (;;) {
        ssize_t n;
        if (len == cap) {
            char *nb;
            if (cap >= SP_MOUNTINFO_MAX_BYTES) {
                r = -EFBIG;
                goto done;
            }
            cap = cap ? cap * 2 : 16384;
            nb = realloc(buf, cap);
            if (!nb) {
                r = -ENOMEM;
                goto done;
            }
            buf = nb;
        }
        n = read(fd, buf + len, cap - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            r = -errno;
            goto done;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    r = sp_mountinfo_parse(buf ? buf : "", len, ret);
done:
    free(buf);
    close(fd);
    return r;
}

dev_t sp_mount_dev(const SpMount *mount)
{
    return makedev(mount->major, mount->minor);
}

bool sp_mount_has_opt(const char *opts, const char *opt)
{
    size_t ol = strlen(opt);
    const char *p = opts;

    while (p && *p) {
        const char *comma = strchr(p, ',');
        size_t l = comma ? (size_t)(comma - p) : strlen(p);
        if (l == ol && strncmp(p, opt, ol) == 0)
            return true;
        p = comma ? comma + 1 : NULL;
    }
    return false;
}

bool sp_mount_sb_readonly(const SpMount *mount)
{
    return sp_mount_has_opt(mount->super_opts, "ro");
}

const SpMount *sp_mount_table_find(const SpMountTable *table, const char *mountpoint)
{
    for (size_t i = table->n_mounts; i > 0; i--) {
        if (strcmp(table->mounts[i - 1].mountpoint, mountpoint) == 0)
            return &table->mounts[i - 1];
    }
    return NULL;
}
