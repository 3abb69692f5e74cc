/* sp-workload: the test guest's steady writer. It writes numbered, checksummed, fixed-size records
 * with fsync at a steady rate, keeps each write's latency in memory (never on the disks it
 * measures), and checks a record file afterwards: highest complete record, no torn record, no gap.
 *
 *   sp-workload write [options] FILE...   write record N to every FILE, then N+1, ...
 *   sp-workload check [--record-size B] [--expect N] FILE...
 *
 * Record N (from 1) sits at offset (N-1)*size. Layout, little endian:
 *   0 magic "SPWL" | 4 record size | 8 number | 16 wall-clock ns | 24.. pattern | size-8 FNV-1a 64
 *
 * `write` is driven by a line-based control channel (--control, a virtio-serial port in the test
 * guest); every command is answered with one JSON line:
 *   report            counters, latency summary, stalls, the write in flight (works while frozen)
 *   wait N [MS]       answer once record N is on disk in every file (or {"error":"timeout"})
 *   latencies         every write as [start_ms, latency_us]
 *   stop              stop writing, fsync, close, answer with the final report
 *   check             (after stop) check every file as `sp-workload check` would
 * SIGUSR1 prints the report to stdout; SIGTERM/SIGINT stop, print the final report and exit.
 * Built static and without sanitizers so that it runs alone in the test guest. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SP_WL_MAGIC 0x4c575053u /* "SPWL" read as little endian */
#define SP_WL_HEADER 24
#define SP_WL_MIN_SIZE 64
#define SP_WL_MAX_SIZE (1 << 20)
#define SP_WL_DEFAULT_SIZE 4096
#define SP_WL_DEFAULT_INTERVAL_MS 50
#define SP_WL_DEFAULT_STALL_MS 500
#define SP_WL_MAX_FILES 8
#define SP_WL_MAX_STALLS_SHOWN 32
#define SP_WL_CONTROL_LINE 256

typedef struct {
        int64_t start_ns; /* CLOCK_MONOTONIC, relative to the writer's start */
        uint32_t latency_us;
} SpWlSample;

typedef struct {
        const char *paths[SP_WL_MAX_FILES];
        int fds[SP_WL_MAX_FILES];
        size_t n_files;
        uint32_t record_size;
        int64_t interval_ns;
        int64_t stall_ns;
        uint64_t count;      /* 0 = until stopped */
        uint64_t first;      /* number of the first record this run writes */
        int64_t t0;          /* monotonic start */

        pthread_mutex_t lock;
        pthread_cond_t progress;
        SpWlSample *samples; /* guarded by lock */
        size_t n_samples, cap_samples;
        uint64_t last;       /* last record on disk in every file, 0 = none */
        uint64_t missed;     /* ticks skipped because a write overran its slot */
        int64_t inflight_ns; /* start of the write in flight, 0 = idle */
        uint64_t inflight_record;
        bool stop;
        bool done;
        int error;           /* errno of the failed write, 0 = none */
        char error_path[256];
        const char *control; /* the control channel's path, NULL = none */
} SpWl;

typedef struct {
        char *buf;
        size_t len, cap;
} SpBuf;

static int64_t now_ns(clockid_t clock)
{
        struct timespec ts;
        clock_gettime(clock, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void buf_printf(SpBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_printf(SpBuf *b, const char *fmt, ...)
{
        for (;;) {
                va_list ap;
                va_start(ap, fmt);
                int n = vsnprintf(b->buf ? b->buf + b->len : NULL, b->buf ? b->cap - b->len : 0, fmt, ap);
                va_end(ap);
                if (n < 0)
                        abort();
                if (b->buf && b->len + (size_t)n < b->cap) {
                        b->len += (size_t)n;
                        return;
                }
                size_t cap = b->cap ? b->cap * 2 : 1024;
                while (cap < b->len + (size_t)n + 1)
                        cap *= 2;
                char *p = realloc(b->buf, cap);
                if (!p)
                        abort();
                b->buf = p;
                b->cap = cap;
        }
}

static void put_le32(uint8_t *p, uint32_t v)
{
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
        for (int i = 0; i < 8; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
        uint32_t v = 0;
        for (int i = 3; i >= 0; i--)
                v = (v << 8) | p[i];
        return v;
}

static uint64_t get_le64(const uint8_t *p)
{
        uint64_t v = 0;
        for (int i = 7; i >= 0; i--)
                v = (v << 8) | p[i];
        return v;
}

static uint64_t fnv1a64(const uint8_t *p, size_t n)
{
        uint64_t h = 0xcbf29ce484222325ull;
        for (size_t i = 0; i < n; i++) {
                h ^= p[i];
                h *= 0x100000001b3ull;
        }
        return h;
}

static void record_fill(uint8_t *rec, uint32_t size, uint64_t number)
{
        put_le32(rec, SP_WL_MAGIC);
        put_le32(rec + 4, size);
        put_le64(rec + 8, number);
        put_le64(rec + 16, (uint64_t)now_ns(CLOCK_REALTIME));
        for (uint32_t i = SP_WL_HEADER; i < size - 8; i++)
                rec[i] = (uint8_t)(number * 31 + i);
        put_le64(rec + size - 8, fnv1a64(rec, size - 8));
}

static bool record_valid(const uint8_t *rec, uint32_t size, uint64_t number)
{
        if (get_le32(rec) != SP_WL_MAGIC || get_le32(rec + 4) != size || get_le64(rec + 8) != number)
                return false;
        for (uint32_t i = SP_WL_HEADER; i < size - 8; i++)
                if (rec[i] != (uint8_t)(number * 31 + i))
                        return false;
        return get_le64(rec + size - 8) == fnv1a64(rec, size - 8);
}

static bool all_zero(const uint8_t *p, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (p[i])
                        return false;
        return true;
}

typedef struct {
        uint64_t highest;  /* highest valid record number */
        uint64_t valid;    /* valid records */
        uint64_t torn;     /* slots holding data that is not the expected record */
        uint64_t gaps;     /* empty slots below a valid record */
        uint64_t first_bad; /* first torn or missing slot below highest, 0 = none */
} SpWlCheck;

/* A record slot is empty (never written: a hole or zeroes), valid, or torn. A crash may leave
 * the slot being written empty or torn, but after fsync or a freeze nothing may be missing. */
static int check_file(const char *path, uint32_t size, SpWlCheck *ret)
{
        SpWlCheck c = {0};
        uint64_t empty_run = 0, empty_first = 0;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        uint8_t *rec = malloc(size);
        if (!rec) {
                close(fd);
                return -ENOMEM;
        }
        int r = 0;
        for (uint64_t n = 1;; n++) {
                ssize_t got = pread(fd, rec, size, (off_t)((n - 1) * size));
                if (got < 0) {
                        r = -errno;
                        break;
                }
                if (got == 0)
                        break;
                if ((size_t)got < size || !record_valid(rec, size, n)) {
                        if (all_zero(rec, (size_t)got)) {
                                if (!empty_run++)
                                        empty_first = n;
                                continue;
                        }
                        c.torn++;
                        if (!c.first_bad)
                                c.first_bad = n;
                        continue;
                }
                if (empty_run) {
                        c.gaps += empty_run;
                        if (!c.first_bad || empty_first < c.first_bad)
                                c.first_bad = empty_first;
                        empty_run = 0;
                }
                c.valid++;
                c.highest = n;
        }
        free(rec);
        close(fd);
        if (r == 0)
                *ret = c;
        return r;
}

static void check_json(SpBuf *b, const char *path, uint32_t size, uint64_t expect)
{
        SpWlCheck c;
        int r = check_file(path, size, &c);
        if (r < 0) {
                buf_printf(b, "{\"file\":\"%s\",\"ok\":false,\"error\":\"%s\"}", path, strerror(-r));
                return;
        }
        bool ok = c.torn == 0 && c.gaps == 0 && (!expect || c.highest == expect);
        buf_printf(b,
                   "{\"file\":\"%s\",\"ok\":%s,\"highest\":%" PRIu64 ",\"valid\":%" PRIu64
                   ",\"torn\":%" PRIu64 ",\"gaps\":%" PRIu64 ",\"first_bad\":%" PRIu64 "}",
                   path, ok ? "true" : "false", c.highest, c.valid, c.torn, c.gaps, c.first_bad);
}

static int cmp_u32(const void *a, const void *b)
{
        uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
        return (x > y) - (x < y);
}

/* Called with wl->lock held. */
static void report_json(SpWl *wl, SpBuf *b)
{
        int64_t now = now_ns(CLOCK_MONOTONIC);
        uint32_t *lat = malloc((wl->n_samples ? wl->n_samples : 1) * sizeof(*lat));
        if (!lat)
                abort();
        for (size_t i = 0; i < wl->n_samples; i++)
                lat[i] = wl->samples[i].latency_us;
        qsort(lat, wl->n_samples, sizeof(*lat), cmp_u32);
        size_t n = wl->n_samples;
        buf_printf(b, "{\"first\":%" PRIu64 ",\"last\":%" PRIu64 ",\"writes\":%zu,\"missed\":%" PRIu64
                   ",\"files\":%zu,\"record_size\":%" PRIu32 ",\"interval_ms\":%" PRId64
                   ",\"running_ms\":%" PRId64 ",\"inflight_ms\":%" PRId64 ",\"inflight_record\":%" PRIu64,
                   wl->first, wl->last, n, wl->missed, wl->n_files, wl->record_size,
                   wl->interval_ns / 1000000, (now - wl->t0) / 1000000,
                   wl->inflight_ns ? (now - wl->t0 - wl->inflight_ns) / 1000000 : 0,
                   wl->inflight_ns ? wl->inflight_record : 0);
        if (n)
                buf_printf(b, ",\"latency_us\":{\"min\":%" PRIu32 ",\"p50\":%" PRIu32 ",\"p99\":%" PRIu32
                           ",\"max\":%" PRIu32 "}",
                           lat[0], lat[n / 2], lat[(n * 99) / 100], lat[n - 1]);
        free(lat);
        /* The writes that took longer than --stall-ms: what a guest application felt of a freeze. */
        size_t total = 0, seen = 0;
        for (size_t i = 0; i < n; i++)
                total += wl->samples[i].latency_us >= wl->stall_ns / 1000;
        size_t skip = total > SP_WL_MAX_STALLS_SHOWN ? total - SP_WL_MAX_STALLS_SHOWN : 0;
        buf_printf(b, ",\"stall_ms\":%" PRId64 ",\"stalls_total\":%zu,\"stalls\":[", wl->stall_ns / 1000000, total);
        for (size_t i = 0; i < n; i++) {
                const SpWlSample *s = &wl->samples[i];
                if (s->latency_us < wl->stall_ns / 1000 || seen++ < skip)
                        continue;
                buf_printf(b, "%s{\"record\":%" PRIu64 ",\"at_ms\":%" PRId64 ",\"ms\":%" PRIu32 "}",
                           seen - 1 > skip ? "," : "", wl->first + i, s->start_ns / 1000000,
                           s->latency_us / 1000);
        }
        buf_printf(b, "],\"stopped\":%s", wl->done ? "true" : "false");
        if (wl->error)
                buf_printf(b, ",\"error\":\"%s: %s\"", wl->error_path, strerror(wl->error));
        buf_printf(b, "}");
}

static void fail_write(SpWl *wl, const char *path, int err)
{
        pthread_mutex_lock(&wl->lock);
        wl->error = err;
        snprintf(wl->error_path, sizeof(wl->error_path), "%s", path);
        pthread_mutex_unlock(&wl->lock);
        fprintf(stderr, "sp-workload: writing %s: %s\n", path, strerror(err));
}

static int write_record(SpWl *wl, uint8_t *rec, uint64_t number)
{
        record_fill(rec, wl->record_size, number);
        for (size_t i = 0; i < wl->n_files; i++) {
                off_t off = (off_t)((number - 1) * wl->record_size);
                ssize_t w = pwrite(wl->fds[i], rec, wl->record_size, off);
                if (w != (ssize_t)wl->record_size) {
                        fail_write(wl, wl->paths[i], w < 0 ? errno : EIO);
                        return -1;
                }
                if (fsync(wl->fds[i]) < 0) {
                        fail_write(wl, wl->paths[i], errno);
                        return -1;
                }
        }
        return 0;
}

static void record_sample(SpWl *wl, int64_t start, int64_t end, uint64_t number)
{
        pthread_mutex_lock(&wl->lock);
        if (wl->n_samples == wl->cap_samples) {
                size_t cap = wl->cap_samples ? wl->cap_samples * 2 : 4096;
                SpWlSample *p = realloc(wl->samples, cap * sizeof(*p));
                if (!p)
                        abort();
                wl->samples = p;
                wl->cap_samples = cap;
        }
        int64_t lat_us = (end - start) / 1000;
        wl->samples[wl->n_samples++] = (SpWlSample){
                .start_ns = start - wl->t0,
                .latency_us = lat_us > UINT32_MAX ? UINT32_MAX : (uint32_t)lat_us,
        };
        wl->last = number;
        wl->inflight_ns = 0;
        pthread_cond_broadcast(&wl->progress);
        pthread_mutex_unlock(&wl->lock);
}

static void *writer_thread(void *arg)
{
        SpWl *wl = arg;
        uint8_t *rec = malloc(wl->record_size);
        if (!rec)
                abort();
        int64_t next = wl->t0;
        for (uint64_t n = wl->first; !wl->count || n < wl->first + wl->count; n++) {
                struct timespec ts = { .tv_sec = next / 1000000000, .tv_nsec = next % 1000000000 };
                while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
                        ;
                int64_t start = now_ns(CLOCK_MONOTONIC);
                pthread_mutex_lock(&wl->lock);
                bool stop = wl->stop;
                if (!stop) {
                        wl->inflight_ns = start - wl->t0;
                        wl->inflight_record = n;
                }
                pthread_mutex_unlock(&wl->lock);
                if (stop || write_record(wl, rec, n) < 0)
                        break;
                int64_t end = now_ns(CLOCK_MONOTONIC);
                record_sample(wl, start, end, n);
                /* A steady rate, not a burst after a stall: skip the slots a long write overran. */
                next += wl->interval_ns;
                if (next < end) {
                        int64_t behind = (end - next) / wl->interval_ns + 1;
                        pthread_mutex_lock(&wl->lock);
                        wl->missed += (uint64_t)behind;
                        pthread_mutex_unlock(&wl->lock);
                        next += behind * wl->interval_ns;
                }
        }
        free(rec);
        pthread_mutex_lock(&wl->lock);
        wl->done = true;
        wl->inflight_ns = 0;
        pthread_cond_broadcast(&wl->progress);
        pthread_mutex_unlock(&wl->lock);
        kill(getpid(), SIGUSR2); /* tell the main thread */
        return NULL;
}

static pthread_t writer;

static void writer_stop(SpWl *wl)
{
        static pthread_mutex_t once = PTHREAD_MUTEX_INITIALIZER;
        static bool joined;
        pthread_mutex_lock(&once);
        if (!joined) {
                pthread_mutex_lock(&wl->lock);
                wl->stop = true;
                pthread_mutex_unlock(&wl->lock);
                pthread_join(writer, NULL);
                for (size_t i = 0; i < wl->n_files; i++) {
                        if (close(wl->fds[i]) < 0)
                                fprintf(stderr, "sp-workload: closing %s: %s\n", wl->paths[i], strerror(errno));
                        wl->fds[i] = -1;
                }
                joined = true;
        }
        pthread_mutex_unlock(&once);
}

static void print_report(SpWl *wl, const char *what)
{
        SpBuf b = {0};
        pthread_mutex_lock(&wl->lock);
        report_json(wl, &b);
        pthread_mutex_unlock(&wl->lock);
        printf("sp-workload: %s %s\n", what, b.buf);
        fflush(stdout);
        free(b.buf);
}

static void control_wait(SpWl *wl, SpBuf *b, uint64_t target, int64_t timeout_ms)
{
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += timeout_ms / 1000;
        deadline.tv_nsec += (timeout_ms % 1000) * 1000000;
        if (deadline.tv_nsec >= 1000000000) {
                deadline.tv_sec++;
                deadline.tv_nsec -= 1000000000;
        }
        pthread_mutex_lock(&wl->lock);
        int r = 0;
        while (wl->last < target && !wl->done && !wl->error && r != ETIMEDOUT)
                r = pthread_cond_timedwait(&wl->progress, &wl->lock, &deadline);
        if (wl->last >= target)
                report_json(wl, b);
        else
                buf_printf(b, "{\"error\":\"%s\",\"last\":%" PRIu64 "}",
                           wl->error ? "write failed" : wl->done ? "stopped" : "timeout", wl->last);
        pthread_mutex_unlock(&wl->lock);
}

static void control_latencies(SpWl *wl, SpBuf *b)
{
        pthread_mutex_lock(&wl->lock);
        buf_printf(b, "{\"first\":%" PRIu64 ",\"samples\":[", wl->first);
        for (size_t i = 0; i < wl->n_samples; i++)
                buf_printf(b, "%s[%" PRId64 ",%" PRIu32 "]", i ? "," : "",
                           wl->samples[i].start_ns / 1000000, wl->samples[i].latency_us);
        buf_printf(b, "]}");
        pthread_mutex_unlock(&wl->lock);
}

static void control_command(SpWl *wl, char *line, SpBuf *b)
{
        char *cmd = strtok(line, " \t\r");
        char *arg1 = strtok(NULL, " \t\r");
        char *arg2 = strtok(NULL, " \t\r");
        if (!cmd) {
                buf_printf(b, "{\"error\":\"empty command\"}");
        } else if (!strcmp(cmd, "report")) {
                pthread_mutex_lock(&wl->lock);
                report_json(wl, b);
                pthread_mutex_unlock(&wl->lock);
        } else if (!strcmp(cmd, "wait") && arg1) {
                control_wait(wl, b, strtoull(arg1, NULL, 10), arg2 ? strtoll(arg2, NULL, 10) : 60000);
        } else if (!strcmp(cmd, "latencies")) {
                control_latencies(wl, b);
        } else if (!strcmp(cmd, "stop")) {
                writer_stop(wl);
                pthread_mutex_lock(&wl->lock);
                report_json(wl, b);
                pthread_mutex_unlock(&wl->lock);
        } else if (!strcmp(cmd, "check")) {
                pthread_mutex_lock(&wl->lock);
                bool done = wl->done;
                uint64_t last = wl->last;
                pthread_mutex_unlock(&wl->lock);
                if (!done) {
                        buf_printf(b, "{\"error\":\"still writing: send stop first\"}");
                        return;
                }
                buf_printf(b, "{\"files\":[");
                for (size_t i = 0; i < wl->n_files; i++) {
                        buf_printf(b, i ? "," : "");
                        check_json(b, wl->paths[i], wl->record_size, last);
                }
                buf_printf(b, "]}");
        } else {
                buf_printf(b, "{\"error\":\"unknown command: %s\"}", cmd);
        }
}

static void *control_thread(void *arg)
{
        SpWl *wl = arg;
        const char *path = wl->control;
        int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0) {
                fprintf(stderr, "sp-workload: opening control channel %s: %s\n", path, strerror(errno));
                return NULL;
        }
        char line[SP_WL_CONTROL_LINE];
        size_t len = 0;
        for (;;) {
                ssize_t got = read(fd, line + len, sizeof(line) - 1 - len);
                if (got < 0 && errno == EINTR)
                        continue;
                if (got < 0) {
                        fprintf(stderr, "sp-workload: reading %s: %s\n", path, strerror(errno));
                        break;
                }
                if (got == 0) {
                        /* virtio-serial returns EOF (and poll() POLLHUP) while no host is
                         * connected; there is no event to wait on, so look again shortly. */
                        usleep(50 * 1000);
                        continue;
                }
                len += (size_t)got;
                char *nl;
                while ((nl = memchr(line, '\n', len))) {
                        *nl = '\0';
                        SpBuf b = {0};
                        control_command(wl, line, &b);
                        buf_printf(&b, "\n");
                        for (size_t off = 0; off < b.len;) {
                                ssize_t w = write(fd, b.buf + off, b.len - off);
                                if (w < 0 && errno == EINTR)
                                        continue;
                                if (w < 0)
                                        break;
                                off += (size_t)w;
                        }
                        free(b.buf);
                        len -= (size_t)(nl + 1 - line);
                        memmove(line, nl + 1, len);
                }
                if (len == sizeof(line) - 1)
                        len = 0; /* an overlong line: drop it */
        }
        close(fd);
        return NULL;
}

static void usage(FILE *f)
{
        fprintf(f,
                "usage: sp-workload write [options] FILE...\n"
                "       sp-workload check [--record-size B] [--expect N] FILE...\n"
                "write options:\n"
                "  --interval-ms N   one record every N ms (default %d)\n"
                "  --record-size B   record size in bytes (default %d, %d..%d, a multiple of 8)\n"
                "  --count N         stop after N records (default: run until stopped)\n"
                "  --resume          continue after the highest valid record instead of starting over\n"
                "  --stall-ms N      report writes slower than N ms as stalls (default %d)\n"
                "  --control PATH    line-based control channel (a virtio-serial port)\n",
                SP_WL_DEFAULT_INTERVAL_MS, SP_WL_DEFAULT_SIZE, SP_WL_MIN_SIZE, SP_WL_MAX_SIZE,
                SP_WL_DEFAULT_STALL_MS);
}

static bool parse_u64(const char *s, uint64_t *ret)
{
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || end == s || *end || s[0] == '-')
                return false;
        *ret = v;
        return true;
}

static int cmd_check(int argc, char **argv)
{
        static const struct option opts[] = {
                { "record-size", required_argument, NULL, 's' },
                { "expect", required_argument, NULL, 'e' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        uint64_t size = SP_WL_DEFAULT_SIZE, expect = 0;
        int c;
        while ((c = getopt_long(argc, argv, "s:e:h", opts, NULL)) != -1) {
                if (c == 's' && parse_u64(optarg, &size) && size >= SP_WL_MIN_SIZE && size <= SP_WL_MAX_SIZE)
                        continue;
                if (c == 'e' && parse_u64(optarg, &expect))
                        continue;
                usage(c == 'h' ? stdout : stderr);
                return c == 'h' ? 0 : 2;
        }
        if (optind >= argc) {
                usage(stderr);
                return 2;
        }
        bool ok = true;
        for (int i = optind; i < argc; i++) {
                SpBuf b = {0};
                check_json(&b, argv[i], (uint32_t)size, expect);
                printf("%s\n", b.buf);
                ok = ok && strstr(b.buf, "\"ok\":true");
                free(b.buf);
        }
        return ok ? 0 : 1;
}

static int parse_write_options(SpWl *wl, int argc, char **argv, bool *ret_resume)
{
        static const struct option opts[] = {
                { "interval-ms", required_argument, NULL, 'i' },
                { "record-size", required_argument, NULL, 's' },
                { "count", required_argument, NULL, 'n' },
                { "resume", no_argument, NULL, 'r' },
                { "stall-ms", required_argument, NULL, 't' },
                { "control", required_argument, NULL, 'c' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        uint64_t interval = SP_WL_DEFAULT_INTERVAL_MS, size = SP_WL_DEFAULT_SIZE;
        uint64_t stall = SP_WL_DEFAULT_STALL_MS, count = 0;
        int c;
        while ((c = getopt_long(argc, argv, "i:s:n:rt:c:h", opts, NULL)) != -1) {
                bool ok = true;
                switch (c) {
                case 'i': ok = parse_u64(optarg, &interval) && interval >= 1 && interval <= 3600000; break;
                case 's': ok = parse_u64(optarg, &size) && size >= SP_WL_MIN_SIZE && size <= SP_WL_MAX_SIZE &&
                               size % 8 == 0; break;
                case 'n': ok = parse_u64(optarg, &count); break;
                case 'r': *ret_resume = true; break;
                case 't': ok = parse_u64(optarg, &stall) && stall <= 3600000; break;
                case 'c': wl->control = optarg; break;
                case 'h': usage(stdout); exit(0);
                default: ok = false;
                }
                if (!ok) {
                        fprintf(stderr, "sp-workload: bad value for option %s\n", argv[optind - 1]);
                        usage(stderr);
                        return -EINVAL;
                }
        }
        if (optind >= argc || argc - optind > SP_WL_MAX_FILES) {
                fprintf(stderr, "sp-workload: give 1 to %d files\n", SP_WL_MAX_FILES);
                return -EINVAL;
        }
        for (int i = optind; i < argc; i++)
                wl->paths[wl->n_files++] = argv[i];
        wl->interval_ns = (int64_t)interval * 1000000;
        wl->record_size = (uint32_t)size;
        wl->stall_ns = (int64_t)stall * 1000000;
        wl->count = count;
        return 0;
}

/* With --resume, continue after the highest record that every file holds. */
static uint64_t resume_point(const SpWl *wl)
{
        uint64_t lowest = UINT64_MAX;
        for (size_t i = 0; i < wl->n_files; i++) {
                SpWlCheck c;
                if (check_file(wl->paths[i], wl->record_size, &c) < 0)
                        return 1;
                if (c.highest < lowest)
                        lowest = c.highest;
        }
        return lowest + 1;
}

static int cmd_write(int argc, char **argv)
{
        static SpWl wl = { .lock = PTHREAD_MUTEX_INITIALIZER, .progress = PTHREAD_COND_INITIALIZER };
        bool resume = false;
        if (parse_write_options(&wl, argc, argv, &resume) < 0)
                return 2;
        wl.first = resume ? resume_point(&wl) : 1;
        for (size_t i = 0; i < wl.n_files; i++) {
                wl.fds[i] = open(wl.paths[i], O_WRONLY | O_CREAT | O_CLOEXEC | (resume ? 0 : O_TRUNC), 0644);
                if (wl.fds[i] < 0) {
                        fprintf(stderr, "sp-workload: opening %s: %s\n", wl.paths[i], strerror(errno));
                        return 1;
                }
        }
        /* Signals go to the main thread only, which waits for them below. */
        sigset_t sigs;
        sigemptyset(&sigs);
        sigaddset(&sigs, SIGTERM);
        sigaddset(&sigs, SIGINT);
        sigaddset(&sigs, SIGUSR1);
        sigaddset(&sigs, SIGUSR2);
        pthread_sigmask(SIG_BLOCK, &sigs, NULL);

        wl.t0 = now_ns(CLOCK_MONOTONIC);
        printf("sp-workload: writing %zu file(s) from record %" PRIu64 ", %" PRIu32 " bytes every %" PRId64 " ms\n",
               wl.n_files, wl.first, wl.record_size, wl.interval_ns / 1000000);
        fflush(stdout);
        if (pthread_create(&writer, NULL, writer_thread, &wl) != 0)
                return 1;
        pthread_t ctl;
        if (wl.control) {
                if (pthread_create(&ctl, NULL, control_thread, &wl) != 0)
                        return 1;
                pthread_detach(ctl);
        }
        for (;;) {
                int sig;
                if (sigwait(&sigs, &sig) != 0)
                        continue;
                if (sig == SIGUSR1) {
                        print_report(&wl, "report");
                        continue;
                }
                /* The writer ended (--count reached or a write failed): with a control channel,
                 * stay to answer `check` and `report`. */
                if (sig == SIGUSR2 && wl.control) {
                        print_report(&wl, "final");
                        continue;
                }
                writer_stop(&wl);
                print_report(&wl, "final");
                return wl.error ? 1 : 0;
        }
}

int main(int argc, char **argv)
{
        if (argc < 2) {
                usage(stderr);
                return 2;
        }
        if (!strcmp(argv[1], "write"))
                return cmd_write(argc - 1, argv + 1);
        if (!strcmp(argv[1], "check"))
                return cmd_check(argc - 1, argv + 1);
        if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
                usage(stdout);
                return 0;
        }
        usage(stderr);
        return 2;
}
