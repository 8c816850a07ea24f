/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The direct executor's child: what runs between fork() and the task's execve(), as root until it
 * becomes the task's user. Everything that needs memory or NSS (the environment, the user's groups) is
 * prepared in the parent by direct_child_prepare(); after fork the child only calls into the kernel
 * (async-signal-safe functions), so it cannot deadlock on a lock another thread of the parent held.
 */

#include <stdbool.h>
#include <sys/types.h>

#include "launcher/executor.h"
#include "shared/util.h"

/* PATH for a task whose environment sets none. */
#define DIRECT_CHILD_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* What a child reports through the close-on-exec pipe when something fails before exec. Small enough
 * to be written atomically (PIPE_BUF). */
typedef struct ExecFailure {
        int error;
        char message[200];
} ExecFailure;

typedef struct DirectChild {
        const Launch *launch;
        char **env;    /* exactly the task's environment plus ASYNCTASK_* and the usual defaults */
        gid_t *groups; /* the task user's supplementary groups, when dropping privileges */
        int n_groups;
        bool drop_privileges; /* root: become the task's user and group */
        /* The child's stdin, its stdout and stderr, and the close-on-exec pipe it reports an
         * ExecFailure through. Not owned: the caller closes them after fork. */
        int stdin_fd, output_fd, exec_fd;
} DirectChild;

/* In the parent: looks up the task user (home, name, groups) and builds the environment. drop_privileges
 * is whether the child will change its user (the launcher runs as root); notify_socket, when not NULL,
 * becomes NOTIFY_SOCKET (the task's own, for STATUS=). Returns 0 or -ENOMEM, -E2BIG
 * (more groups than we can take). The fds are set by the caller. */
int direct_child_prepare(const Launch *l, bool drop_privileges, const char *notify_socket, DirectChild *ret);
void direct_child_done(DirectChild *c);

/* In the child, right after fork(): its own process group, default signals, fds 0-2 and the exec pipe
 * as fd 3 (nothing else inherited), nice and the address-space limit, the user change, the working
 * directory, execve(). Never returns: a failure is reported through the pipe and ends in _exit(127). */
_noreturn_ void direct_child_exec(const DirectChild *c);
