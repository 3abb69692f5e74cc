/* sp-vsock-probe: what a process inside the test guest gets when it talks to the agent over
 * AF_VSOCK — with vsock_loopback loaded, CID 1 is the guest itself, the way an unprivileged
 * guest user would reach an agent that listened on any CID. Prints one line, for the console:
 *
 *   sp-vsock-probe: answered: REPLY        the agent served it (it must not)
 *   sp-vsock-probe: closed without an answer
 *   sp-vsock-probe: no listener: ERROR      nothing accepted within the deadline
 *   sp-vsock-probe: no answer within N s
 *
 *   sp-vsock-probe PORT [CID]              (CID defaults to 1, VMADDR_CID_LOCAL)
 *
 * Built static and without sanitizers: it runs alone in the test guest. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PROBE_CONNECT_S 30 /* the agent starts in parallel with the probe */
#define PROBE_ANSWER_S 10

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A connected socket, or -1 after printing why (nothing listens until the deadline). */
static int connect_until(unsigned cid, unsigned port, double deadline)
{
    struct sockaddr_vm addr = {.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port};
    int err = 0;

    while (now_s() < deadline) {
        int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            printf("sp-vsock-probe: no listener: socket: %s\n", strerror(errno));
            return -1;
        }
        if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0)
            return fd;
        err = errno;
        close(fd);
        usleep(200 * 1000);
    }
    printf("sp-vsock-probe: no listener: connect: %s\n", strerror(err));
    return -1;
}

int main(int argc, char **argv)
{
    static const char ping[] = "{\"execute\":\"guest-ping\"}\n";
    char reply[512];
    size_t len = 0;
    unsigned port, cid;
    int fd;

    if (argc < 2) {
        fprintf(stderr, "usage: sp-vsock-probe PORT [CID]\n");
        return 2;
    }
    port = (unsigned)strtoul(argv[1], NULL, 10);
    cid = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : VMADDR_CID_LOCAL;
    setvbuf(stdout, NULL, _IOLBF, 0);
    fd = connect_until(cid, port, now_s() + PROBE_CONNECT_S);
    if (fd < 0)
        return 1;
    if (send(fd, ping, strlen(ping), MSG_NOSIGNAL) < 0) {
        printf("sp-vsock-probe: closed without an answer (send: %s)\n", strerror(errno));
        return 0;
    }
    for (double end = now_s() + PROBE_ANSWER_S; now_s() < end && len < sizeof(reply) - 1;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        ssize_t n;
        if (poll(&pfd, 1, 200) <= 0)
            continue;
        n = read(fd, reply + len, sizeof(reply) - 1 - len);
        if (n <= 0) {
            printf("sp-vsock-probe: closed without an answer\n");
            return 0;
        }
        len += (size_t)n;
        reply[len] = '\0';
        if (strchr(reply, '\n')) {
            *strchr(reply, '\n') = '\0';
            printf("sp-vsock-probe: answered: %s\n", reply);
            return 0;
        }
    }
    printf("sp-vsock-probe: no answer within %d s\n", PROBE_ANSWER_S);
    return 0;
}
