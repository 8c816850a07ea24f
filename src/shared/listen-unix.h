/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Listening sockets as both daemons set them up. listen_unix() makes the unix socket a daemon creates
 * itself when the service manager passes none: a socket file left by a previous run is replaced, but
 * never a file that is not a socket nor a socket a live process listens on; the file gets its mode at
 * creation (bound under a matching umask, so it is never more open than asked, not even briefly).
 * Nothing here logs: each daemon says what a failure means in its own words.
 */

#include <sys/types.h>

/* Listens (backlog SOMAXCONN) on a new unix stream socket at path, non-blocking and close-on-exec,
 * whose file has permission bits mode. Returns 0 and *ret_fd, or
 *   -EINVAL      path is empty or too long for a unix socket address,
 *   -EEXIST      path exists and is not a socket (it is left alone),
 *   -EADDRINUSE  a process is listening on path (it is left alone),
 *   another -errno from looking at or removing the old file, socket(), bind() or listen() (a file
 *   this call bound is removed again). */
int listen_unix(const char *path, mode_t mode, int *ret_fd);

/* Sets O_NONBLOCK on fd (a socket passed by the service manager comes as it was made). 0 or -errno. */
int fd_nonblock(int fd);
