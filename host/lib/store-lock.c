/* The per-VM lock: an flock on "<store>.<vm>.lock" next to the store, held for as long as one
 * process works on the VM. */
#include "stillpoint/store.h"
#include "store-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <unistd.h>

struct SpVmLock {
    int fd;
    char *path;
};

/* Reads the pid the current holder wrote into the lock file, for the error message. */
static long lock_holder_pid(int fd)
{
    char buf[32] = {0};
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0)
        return 0;
    return strtol(buf, NULL, 10);
}

SpVmLock *sp_vm_lock_acquire(SpStore *store, const char *vm_name, GError **error)
{
    g_autoptr(SpVmLock) lock = g_new0(SpVmLock, 1);
    char pid[32];
    int len;

    if (!sp_vm_name_valid(vm_name, error))
        return NULL;
    lock->fd = -1;
    lock->path = g_strdup_printf("%s.%s.lock", store->path, vm_name);
    lock->fd = open(lock->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock->fd < 0) {
        int errsv = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errsv),
                    "VM '%s': cannot open lock file %s: %s", vm_name, lock->path,
                    g_strerror(errsv));
        return NULL;
    }
    if (flock(lock->fd, LOCK_EX | LOCK_NB) != 0) {
        int errsv = errno;
        if (errsv == EWOULDBLOCK) {
            long holder = lock_holder_pid(lock->fd);
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_BUSY,
                        "VM '%s' is busy: another stillpoint process (pid %ld) is working on "
                        "it; wait for it to finish (lock %s)",
                        vm_name, holder, lock->path);
        } else {
            g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errsv),
                        "VM '%s': cannot lock %s: %s", vm_name, lock->path, g_strerror(errsv));
        }
        return NULL;
    }
    len = g_snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(lock->fd, 0) != 0 || pwrite(lock->fd, pid, (size_t)len, 0) != len) {
        /* The pid is only for the message of a second process; the lock is what matters. */
    }
    return g_steal_pointer(&lock);
}

void sp_vm_lock_release(SpVmLock *lock)
{
    if (lock == NULL)
        return;
    /* The file stays: unlinking it would let two processes lock two different inodes. */
    if (lock->fd >= 0)
        close(lock->fd);
    g_free(lock->path);
    g_free(lock);
}
