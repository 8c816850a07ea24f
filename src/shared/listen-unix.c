/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "shared/listen-unix.h"
#include "shared/util.h"

/* Makes way for a new socket at sa: removes a socket file left behind by a previous run, but never a
 * file that is not a socket, nor one a live process listens on. */
static int clear_stale_socket(const struct sockaddr_un *sa, socklen_t len) {
        struct stat st;
        int fd, r;

        if (lstat(sa->sun_path, &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (!S_ISSOCK(st.st_mode))
                return -EEXIST;

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        r = connect(fd, (const struct sockaddr *) sa, len);
        (void) close(fd);
        if (r == 0)
                return -EADDRINUSE;
        if (unlink(sa->sun_path) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

int listen_unix(const char *path, mode_t mode, int *ret_fd) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        _cleanup_close_ int fd = -1;
        size_t n = strlen(path);
        socklen_t len;
        mode_t old_umask;
        int r;

        if (n == 0 || n >= sizeof(sa.sun_path))
                return -EINVAL;
        memcpy(sa.sun_path, path, n);
        len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n + 1);

        r = clear_stale_socket(&sa, len);
        if (r < 0)
                return r;

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;

        /* The file is created with the mode: there is no moment where others could connect when the
         * mode says they may not. */
        old_umask = umask(~mode & 0777);
        r = bind(fd, (struct sockaddr *) &sa, len);
        (void) umask(old_umask);
        if (r < 0)
                return -errno;

        if (listen(fd, SOMAXCONN) < 0) {
                r = -errno;
                (void) unlink(path);
                return r;
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int fd_nonblock(int fd) {
        int flags = fcntl(fd, F_GETFL);

        if (flags < 0)
                return -errno;
        if (!(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
                return -errno;
        return 0;
}
