/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The direct executor's child: what runs between the clone and the task's execve(), as root until it
 * becomes the task's user. The child is made with clone(CLONE_VM | CLONE_VFORK), as posix_spawn()
 * makes its own: it runs in the launcher's memory, on a stack of its own, while the launcher waits
 * for its execve() or its exit. So no page table is copied and no page of the launcher is made
 * copy-on-write (with fork(), each launch cost the launcher a copy of its page tables and then a page
 * fault and a TLB flush on every page it wrote next), and an exec failure is known when the clone
 * returns, from the ExecFailure the child wrote into that shared memory: no pipe to watch.
 *
 * Everything that needs memory or NSS (the environment with the run's NOTIFY_SOCKET, the user's
 * groups) is prepared in the parent by direct_child_prepare(); the child only calls into the kernel:
 * no allocation (it would be the launcher's heap), no lock, no glibc wrapper that acts on other
 * threads (the user and group changes are raw system calls), errno aside (shared with the waiting
 * parent thread, which ignores it). The child leads its own process group before its execve(), so
 * when the spawn returns, whatever the task runs is in that group (which is how the executor places
 * the sender of a notification).
 */

#include <stdbool.h>
#include <sys/types.h>

#include "launcher/executor.h"
#include "shared/util.h"

/* PATH for a task whose environment sets none. */
#define DIRECT_CHILD_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* What a child reports, in the memory it shares with the launcher, when something fails before exec. */
typedef struct ExecFailure {
        int error; /* 0: the exec happened */
        char message[200];
} ExecFailure;

typedef struct DirectChild {
        const Launch *launch;
        char **env;    /* exactly the task's environment plus ASYNCTASK_* and the usual defaults */
        gid_t *groups; /* the task user's supplementary groups, when dropping privileges */
        int n_groups;
        bool drop_privileges; /* root: become the task's user and group */
        /* The child's stdin, and its stdout and stderr. Not owned: the caller closes them after the
         * spawn. */
        int stdin_fd, output_fd;
        ExecFailure failure; /* written by the child, read once direct_child_spawn() returned */
} DirectChild;

/* In the parent: looks up the task user (home, name, groups) and builds the environment. drop_privileges
 * is whether the child will change its user (the launcher runs as root); notify_socket, when not NULL,
 * becomes NOTIFY_SOCKET (the task's own, for STATUS=). Returns 0 or -ENOMEM, -E2BIG
 * (more groups than we can take). The fds are set by the caller. */
int direct_child_prepare(const Launch *l, bool drop_privileges, const char *notify_socket, DirectChild *ret);
void direct_child_done(DirectChild *c);

/* Starts the child, which becomes the task: its own process group, default signals, fds 0-2 and nothing
 * else inherited, nice and the address-space limit, the user change, the working directory, execve().
 * Returns when the child has exec'd or failed: its pid, and a pidfd for it (close-on-exec) in
 * *ret_pidfd; c->failure.error is then 0, or the child has exited with 127 after writing why. -errno
 * when no child could be made. Called from the launcher's one loop thread: the child's stack is a
 * static buffer. */
pid_t direct_child_spawn(DirectChild *c, int *ret_pidfd);
