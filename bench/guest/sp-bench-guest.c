/* sp-bench-guest: the benchmark's helper inside the test guest. It starts and restarts the agents,
 * runs the loads (an fsync writer, a heavy buffered writer) with every write's latency kept in
 * memory, and reads /proc for the agents' memory and CPU. Static, no sanitizers, driven over a
 * virtio-serial port: one command line in, one JSON line out.
 *
 *   sp-bench-guest serve PORT
 *
 * Commands:
 *   spawn NAME PORT        start agent NAME (qemu-ga | stillpoint) on virtio-serial PORT;
 *                          answers once the agent holds PORT open: {"pid", "open_us"}
 *   stop NAME              SIGTERM the agent, reap it
 *   load idle | fsync DIR.. | buffered MBPS DIR..   replace the running load
 *   mark                   {"now_ns"}: the guest's monotonic clock
 *   stall NS               the longest write latency among writes that ended (or are in flight)
 *                          after NS: {"max_us", "writes"}
 *   proc                   per agent: pid, rss/pss/hwm in kB, CPU ticks (utime+stime); "hz"
 *   meminfo                Dirty and Writeback in kB
 *   sync                   sync(2): write back every dirty page now
 *   syncfs DIR             time one syncfs(2) of DIR's filesystem: {"us"}
 *   fill DIR MIB           write MIB MiB of new data to DIR/bench-fill (1 MiB writes), fsync: {"us"}
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SPB_MAX_WRITERS 8
#define SPB_RING 16384                         /* latencies kept per writer */
#define SPB_FSYNC_INTERVAL_NS (20 * 1000000LL) /* the fsync writer: 4 KiB + fsync every 20 ms */
#define SPB_FSYNC_RECORD 4096
#define SPB_FSYNC_WRAP (16LL << 20)
#define SPB_BUF_CHUNK (64 * 1024)              /* the buffered writer: 64 KiB writes, no fsync */
#define SPB_BUF_WRAP (160LL << 20)             /* per file: big enough to keep many pages dirty */
#define SPB_LINE 1024

typedef struct {
        int64_t end_ns;
        uint32_t lat_us;
} SpbSample;

typedef struct {
        pthread_t thread;
        char path[256];
        bool fsync_mode;
        int64_t interval_ns; /* between write starts */
        pthread_mutex_t lock;
        SpbSample ring[SPB_RING];
        uint64_t n;          /* samples ever written */
        int64_t inflight_ns; /* start of the write in flight, 0 = none */
        char error[300];
} SpbWriter;

static SpbWriter writers[SPB_MAX_WRITERS];
static size_t n_writers;
static volatile bool writers_stop;

typedef struct {
        const char *name;
        pid_t pid;
} SpbAgent;

static SpbAgent agents[] = {{"qemu-ga", 0}, {"stillpoint", 0}};

static int64_t now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_until(int64_t t)
{
        struct timespec ts = {.tv_sec = t / 1000000000LL, .tv_nsec = t % 1000000000LL};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
                ;
}

static void *writer_cb(void *arg)
{
        SpbWriter *w = arg;
        size_t size = w->fsync_mode ? SPB_FSYNC_RECORD : SPB_BUF_CHUNK;
        int64_t wrap = w->fsync_mode ? SPB_FSYNC_WRAP : SPB_BUF_WRAP;
        char *buf = malloc(size);
        int fd = open(w->path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0 || buf == NULL) {
                snprintf(w->error, sizeof(w->error), "open %s: %s", w->path, strerror(errno));
                free(buf);
                return NULL;
        }
        int64_t off = 0, next = now_ns();
        uint64_t seq = 0;
        while (!writers_stop) {
                memset(buf, (int)(seq++ & 0xff), size);
                int64_t t0 = now_ns();
                pthread_mutex_lock(&w->lock);
                w->inflight_ns = t0;
                pthread_mutex_unlock(&w->lock);
                ssize_t r = pwrite(fd, buf, size, off);
                if (r == (ssize_t)size && w->fsync_mode)
                        r = fsync(fd) == 0 ? r : -1;
                int64_t t1 = now_ns();
                if (r != (ssize_t)size) {
                        snprintf(w->error, sizeof(w->error), "write %s: %s", w->path,
                                 r < 0 ? strerror(errno) : "short write");
                        break;
                }
                pthread_mutex_lock(&w->lock);
                w->ring[w->n % SPB_RING] = (SpbSample){t1, (uint32_t)((t1 - t0) / 1000)};
                w->n++;
                w->inflight_ns = 0;
                pthread_mutex_unlock(&w->lock);
                off = (off + (int64_t)size) % wrap;
                /* A steady rate: a write that overran its slot is followed at once, no catch-up burst. */
                next += w->interval_ns;
                if (next < t1)
                        next = t1;
                sleep_until(next);
        }
        close(fd);
        free(buf);
        return NULL;
}

static void writers_halt(void)
{
        writers_stop = true;
        for (size_t i = 0; i < n_writers; i++)
                pthread_join(writers[i].thread, NULL);
        n_writers = 0;
        writers_stop = false;
}

/* "fsync DIR..." or "buffered MBPS DIR...": one writer thread per directory (filesystem). */
static int load_start(char **argv, int argc, char *err, size_t errlen)
{
        writers_halt();
        if (argc < 1 || strcmp(argv[0], "idle") == 0)
                return 0;
        bool fsync_mode = strcmp(argv[0], "fsync") == 0;
        int first = fsync_mode ? 1 : 2;
        if (!fsync_mode && (strcmp(argv[0], "buffered") != 0 || argc < 3)) {
                snprintf(err, errlen, "load: idle | fsync DIR.. | buffered MBPS DIR..");
                return -1;
        }
        double mbps = fsync_mode ? 0 : atof(argv[1]);
        int n = argc - first;
        if (n < 1 || n > SPB_MAX_WRITERS || (!fsync_mode && mbps <= 0)) {
                snprintf(err, errlen, "load: 1-%d directories, a positive rate", SPB_MAX_WRITERS);
                return -1;
        }
        for (int i = 0; i < n; i++) {
                SpbWriter *w = &writers[i];
                memset(w, 0, sizeof(*w));
                pthread_mutex_init(&w->lock, NULL);
                snprintf(w->path, sizeof(w->path), "%s/bench-%s", argv[first + i],
                         fsync_mode ? "fsync" : "buffered");
                w->fsync_mode = fsync_mode;
                /* The buffered rate is the total over all filesystems. */
                w->interval_ns = fsync_mode ? SPB_FSYNC_INTERVAL_NS
                                            : (int64_t)(1e9 * SPB_BUF_CHUNK * n / (mbps * 1048576.0));
                pthread_create(&w->thread, NULL, writer_cb, w);
                n_writers++;
        }
        return 0;
}

static void stall_since(int64_t since, char *out, size_t len)
{
        int64_t now = now_ns();
        uint32_t max_us = 0;
        uint64_t count = 0;
        char errors[320] = "";
        for (size_t i = 0; i < n_writers; i++) {
                SpbWriter *w = &writers[i];
                pthread_mutex_lock(&w->lock);
                uint64_t lo = w->n > SPB_RING ? w->n - SPB_RING : 0;
                for (uint64_t k = w->n; k > lo; k--) {
                        SpbSample *s = &w->ring[(k - 1) % SPB_RING];
                        if (s->end_ns < since)
                                break;
                        count++;
                        if (s->lat_us > max_us)
                                max_us = s->lat_us;
                }
                if (w->inflight_ns && (now - w->inflight_ns) / 1000 > max_us)
                        max_us = (uint32_t)((now - w->inflight_ns) / 1000);
                pthread_mutex_unlock(&w->lock);
                if (w->error[0] && !errors[0])
                        snprintf(errors, sizeof(errors), "%s", w->error);
        }
        snprintf(out, len, "{\"max_us\": %" PRIu32 ", \"writes\": %" PRIu64 ", \"error\": \"%s\"}",
                 max_us, count, errors);
}

/* A "Key: N kB" value of /proc/PID/FILE (pid 0: /proc/FILE); -1 when missing. */
static long status_kb(pid_t pid, const char *file, const char *key)
{
        char path[64], line[256];
        if (pid > 0)
                snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
        else
                snprintf(path, sizeof(path), "/proc/%s", file);
        FILE *f = fopen(path, "re");
        long v = -1;
        size_t klen = strlen(key);
        if (f == NULL)
                return -1;
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
                        v = strtol(line + klen + 1, NULL, 10);
                        break;
                }
        fclose(f);
        return v;
}

static long cpu_ticks(pid_t pid)
{
        char path[64], buf[1024];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        FILE *f = fopen(path, "re");
        if (f == NULL)
                return -1;
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = 0;
        /* Fields after the command name, which may hold spaces: state is field 3, utime 14. */
        char *p = strrchr(buf, ')');
        long utime = 0, stime = 0;
        if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld",
                                &utime, &stime) != 2)
                return -1;
        return utime + stime;
}

static SpbAgent *agent_named(const char *name)
{
        for (size_t i = 0; i < sizeof(agents) / sizeof(agents[0]); i++)
                if (strcmp(agents[i].name, name) == 0)
                        return &agents[i];
        return NULL;
}

/* True once pid holds an fd on the device PORT resolves to. */
static bool holds_port(pid_t pid, dev_t rdev)
{
        char dir[64], path[320];
        snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
        DIR *d = opendir(dir);
        bool found = false;
        struct dirent *e;
        if (d == NULL)
                return false;
        while (!found && (e = readdir(d)) != NULL) {
                struct stat st;
                snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
                if (e->d_name[0] != '.' && stat(path, &st) == 0 && S_ISCHR(st.st_mode) &&
                    st.st_rdev == rdev)
                        found = true;
        }
        closedir(d);
        return found;
}

static void agent_spawn(const char *name, const char *port, char *out, size_t len)
{
        SpbAgent *a = agent_named(name);
        struct stat st;
        if (a == NULL || stat(port, &st) != 0) {
                snprintf(out, len, "{\"error\": \"spawn %s %s: unknown agent or port\"}", name, port);
                return;
        }
        int64_t t0 = now_ns();
        pid_t pid = fork();
        if (pid == 0) {
                if (strcmp(name, "qemu-ga") == 0) {
                        char path[300];
                        snprintf(path, sizeof(path), "--path=%s", port);
                        mkdir("/run/qemu-ga", 0755);
                        execl("/usr/sbin/qemu-ga", "qemu-ga", "--method=virtio-serial", path,
                              "--statedir=/run/qemu-ga", (char *)NULL);
                } else {
                        execl("/usr/bin/stillpoint-agent", "stillpoint-agent", "--virtio", port,
                              (char *)NULL);
                }
                _exit(127);
        }
        a->pid = pid;
        int64_t open_ns = -1;
        while (now_ns() - t0 < 20 * 1000000000LL) {
                if (holds_port(pid, st.st_rdev)) {
                        open_ns = now_ns() - t0;
                        break;
                }
                if (waitpid(pid, NULL, WNOHANG) == pid) {
                        a->pid = 0;
                        break;
                }
                usleep(500);
        }
        snprintf(out, len, "{\"pid\": %d, \"open_us\": %" PRId64 "}", (int)a->pid,
                 open_ns < 0 ? -1 : open_ns / 1000);
}

static void agent_stop(const char *name, char *out, size_t len)
{
        SpbAgent *a = agent_named(name);
        if (a && a->pid > 0) {
                kill(a->pid, SIGTERM);
                waitpid(a->pid, NULL, 0);
                a->pid = 0;
        }
        snprintf(out, len, "{\"stopped\": \"%s\"}", name);
}

static void proc_report(char *out, size_t len)
{
        size_t o = (size_t)snprintf(out, len, "{\"hz\": %ld", sysconf(_SC_CLK_TCK));
        for (size_t i = 0; i < sizeof(agents) / sizeof(agents[0]) && o < len; i++) {
                pid_t p = agents[i].pid;
                if (p <= 0)
                        continue;
                o += (size_t)snprintf(out + o, len - o,
                                      ", \"%s\": {\"pid\": %d, \"rss_kb\": %ld, \"hwm_kb\": %ld, "
                                      "\"pss_kb\": %ld, \"private_kb\": %ld, \"cpu_ticks\": %ld}",
                                      agents[i].name, (int)p, status_kb(p, "status", "VmRSS"),
                                      status_kb(p, "status", "VmHWM"),
                                      status_kb(p, "smaps_rollup", "Pss"),
                                      status_kb(p, "smaps_rollup", "Private_Clean") +
                                              status_kb(p, "smaps_rollup", "Private_Dirty"),
                                      cpu_ticks(p));
        }
        if (o < len)
                snprintf(out + o, len - o, "}");
}

/* New data (a counter in every 8 bytes) so that nothing is shared or zero in the overlay. */
static void fill(const char *dir, int mib, char *out, size_t len)
{
        static uint64_t counter;
        char path[300];
        size_t chunk = 1 << 20;
        uint64_t *buf = malloc(chunk);
        snprintf(path, sizeof(path), "%s/bench-fill", dir);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        int64_t t0 = now_ns();
        int err = fd < 0 || buf == NULL ? errno : 0;
        for (int i = 0; !err && i < mib; i++) {
                for (size_t k = 0; k < chunk / 8; k++)
                        buf[k] = ++counter;
                if (write(fd, buf, chunk) != (ssize_t)chunk)
                        err = errno ? errno : EIO;
        }
        if (!err && fsync(fd) != 0)
                err = errno;
        if (fd >= 0)
                close(fd);
        free(buf);
        if (err)
                snprintf(out, len, "{\"error\": \"fill %s: %s\"}", path, strerror(err));
        else
                snprintf(out, len, "{\"us\": %" PRId64 "}", (now_ns() - t0) / 1000);
}

static void handle(char *line, char *out, size_t len)
{
        char *argv[16];
        int argc = 0;
        for (char *tok = strtok(line, " \t\r\n"); tok && argc < 16; tok = strtok(NULL, " \t\r\n"))
                argv[argc++] = tok;
        if (argc == 0) {
                snprintf(out, len, "{\"error\": \"empty command\"}");
        } else if (strcmp(argv[0], "spawn") == 0 && argc == 3) {
                agent_spawn(argv[1], argv[2], out, len);
        } else if (strcmp(argv[0], "stop") == 0 && argc == 2) {
                agent_stop(argv[1], out, len);
        } else if (strcmp(argv[0], "load") == 0) {
                char err[128];
                if (load_start(argv + 1, argc - 1, err, sizeof(err)) < 0)
                        snprintf(out, len, "{\"error\": \"%s\"}", err);
                else
                        snprintf(out, len, "{\"writers\": %zu}", n_writers);
        } else if (strcmp(argv[0], "mark") == 0) {
                snprintf(out, len, "{\"now_ns\": %" PRId64 "}", now_ns());
        } else if (strcmp(argv[0], "stall") == 0 && argc == 2) {
                stall_since(strtoll(argv[1], NULL, 10), out, len);
        } else if (strcmp(argv[0], "proc") == 0) {
                proc_report(out, len);
        } else if (strcmp(argv[0], "sync") == 0) {
                sync();
                snprintf(out, len, "{\"synced\": true}");
        } else if (strcmp(argv[0], "syncfs") == 0 && argc == 2) {
                int fd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                int64_t t0 = now_ns();
                int r = fd < 0 ? -1 : syncfs(fd);
                int64_t t1 = now_ns();
                if (fd >= 0)
                        close(fd);
                if (r < 0)
                        snprintf(out, len, "{\"error\": \"syncfs %s: %s\"}", argv[1], strerror(errno));
                else
                        snprintf(out, len, "{\"us\": %" PRId64 "}", (t1 - t0) / 1000);
        } else if (strcmp(argv[0], "fill") == 0 && argc == 3) {
                fill(argv[1], atoi(argv[2]), out, len);
        } else if (strcmp(argv[0], "meminfo") == 0) {
                snprintf(out, len, "{\"dirty_kb\": %ld, \"writeback_kb\": %ld}",
                         status_kb(0, "meminfo", "Dirty"), status_kb(0, "meminfo", "Writeback"));
        } else {
                snprintf(out, len, "{\"error\": \"unknown command '%s'\"}", argv[0]);
        }
}

static void reply(int fd, const char *out)
{
        size_t len = strlen(out);
        for (size_t off = 0; off < len;) {
                ssize_t w = write(fd, out + off, len - off);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0)
                        return;
                off += (size_t)w;
        }
}

int main(int argc, char **argv)
{
        if (argc != 3 || strcmp(argv[1], "serve") != 0) {
                fprintf(stderr, "usage: sp-bench-guest serve PORT\n");
                return 2;
        }
        signal(SIGPIPE, SIG_IGN);
        int fd = open(argv[2], O_RDWR | O_CLOEXEC);
        if (fd < 0) {
                fprintf(stderr, "sp-bench-guest: open %s: %s\n", argv[2], strerror(errno));
                return 1;
        }
        char line[SPB_LINE], out[4096];
        size_t len = 0;
        for (;;) {
                ssize_t got = read(fd, line + len, sizeof(line) - 1 - len);
                if (got < 0 && errno == EINTR)
                        continue;
                if (got < 0)
                        return 1;
                if (got == 0) {
                        /* EOF while no host is connected: nothing to wait on but time. */
                        usleep(20 * 1000);
                        continue;
                }
                len += (size_t)got;
                char *nl;
                while ((nl = memchr(line, '\n', len)) != NULL) {
                        *nl = '\0';
                        handle(line, out, sizeof(out) - 1);
                        strcat(out, "\n");
                        reply(fd, out);
                        len -= (size_t)(nl + 1 - line);
                        memmove(line, nl + 1, len);
                }
                if (len == sizeof(line) - 1)
                        len = 0; /* an overlong line: drop it */
        }
}
