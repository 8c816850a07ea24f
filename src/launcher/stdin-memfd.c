/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <sys/mman.h>

#include "launcher/stdin-memfd.h"
#include "shared/util.h"

#define SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL)

int stdin_memfd_new(const void *data, size_t size) {
        _cleanup_close_ int fd = -1;
        const char *p = data;

        fd = memfd_create("asynctask-stdin", MFD_ALLOW_SEALING | MFD_CLOEXEC);
        if (fd < 0)
                return -errno;
        while (size > 0) {
                ssize_t n = write(fd, p, size);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                size -= (size_t) n;
        }
        if (fcntl(fd, F_ADD_SEALS, SEALS) < 0)
                return -errno;
        if (lseek(fd, 0, SEEK_SET) < 0)
                return -errno;
        return TAKE_FD(fd);
}

int stdin_memfd_reopen(int fd) {
        char path[64];
        int copy;

        if (fd < 0)
                return -EBADF;
        /* Opening the descriptor's /proc entry makes a new open file description; dup() would share
         * the offset. */
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        copy = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (copy < 0)
                return -errno;
        return copy;
}
