/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "launcher/direct-child.h"

/* ---- what the child needs, built in the parent (the child shares our memory until its exec: it allocates
 * nothing) ---- */

static bool env_has_key(char *const *env, size_t n, const char *key) {
        size_t kl = strlen(key);

        for (size_t i = 0; i < n; i++)
                if (strncmp(env[i], key, kl) == 0 && env[i][kl] == '=')
                        return true;
        return false;
}

static int env_push(char **env, size_t *n, const char *fmt, ...) _printf_(3, 4);
static int env_push(char **env, size_t *n, const char *fmt, ...) {
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&env[*n], fmt, ap);
        va_end(ap);
        if (r < 0) {
                env[*n] = NULL;
                return -ENOMEM;
        }
        (*n)++;
        return 0;
}

/* The task's own environment, without what identifies the run (that is always ours). */
static int env_copy_task(const TaskDef *def, char **env, size_t *n) {
        for (size_t i = 0; i < def->n_environment && def->environment && def->environment[i]; i++) {
                const char *e = def->environment[i];

                if (startswith(e, "ASYNCTASK_ID=") || startswith(e, "ASYNCTASK_TASK=") ||
                    startswith(e, "ASYNCTASK_ATTEMPT=") || startswith(e, "NOTIFY_SOCKET="))
                        continue;
                env[*n] = strdup(e);
                if (!env[*n])
                        return -ENOMEM;
                (*n)++;
        }
        return 0;
}

/* Exactly the task's environment plus what identifies the run. PATH, HOME, USER and LOGNAME default
 * to the usual values for the task user unless the task sets them; ASYNCTASK_* are always ours. */
static int build_environment(const Launch *l, const char *user, const char *home, const char *notify_socket,
                             char ***ret) {
        const TaskDef *def = l->def;
        _cleanup_(strv_freep) char **env = NULL; /* calloc'd: NULL-terminated after the last entry made */
        size_t n = 0;
        int r;

        env = calloc(def->n_environment + 9 + 1, sizeof(char *));
        if (!env)
                return -ENOMEM;
        r = env_copy_task(def, env, &n);
        if (r < 0)
                return r;
        if (!env_has_key(env, n, "PATH") &&
            (r = env_push(env, &n, "PATH=%s", DIRECT_CHILD_DEFAULT_PATH)) < 0)
                return r;
        if (!env_has_key(env, n, "HOME") && (r = env_push(env, &n, "HOME=%s", home)) < 0)
                return r;
        if (!env_has_key(env, n, "USER") && (r = env_push(env, &n, "USER=%s", user)) < 0)
                return r;
        if (!env_has_key(env, n, "LOGNAME") && (r = env_push(env, &n, "LOGNAME=%s", user)) < 0)
                return r;
        if ((r = env_push(env, &n, "ASYNCTASK_ID=%" PRIu64, l->id)) < 0 ||
            (r = env_push(env, &n, "ASYNCTASK_TASK=%s", def->is_command ? "command" : def->name)) < 0 ||
            (r = env_push(env, &n, "ASYNCTASK_ATTEMPT=%u", l->attempt)) < 0)
                return r;
        if (notify_socket && (r = env_push(env, &n, "NOTIFY_SOCKET=%s", notify_socket)) < 0)
                return r;
        env[n] = NULL;
        *ret = TAKE_PTR(env);
        return 0;
}

/* The supplementary groups the task user has, with the task's group (initgroups() semantics, but
 * resolved before the clone so the child does no NSS lookups). */
static int build_groups(const char *user, gid_t gid, gid_t **ret, int *ret_n) {
        _cleanup_free_ gid_t *g = NULL;
        int n = 32;

        for (int tries = 0; tries < 8; tries++) {
                gid_t *ng = realloc(g, (size_t) n * sizeof(gid_t));
                int want = n;

                if (!ng)
                        return -ENOMEM;
                g = ng;
                if (!user) {
                        g[0] = gid;
                        *ret_n = 1;
                        *ret = TAKE_PTR(g);
                        return 0;
                }
                if (getgrouplist(user, gid, g, &want) >= 0) {
                        *ret_n = want;
                        *ret = TAKE_PTR(g);
                        return 0;
                }
                n = want > n ? want : n * 2;
                if (n > 65536)
                        break;
        }
        return -E2BIG;
}

int direct_child_prepare(const Launch *l, bool drop_privileges, const char *notify_socket,
                         DirectChild *ret) {
        _cleanup_free_ char *user = NULL, *home = NULL;
        _cleanup_free_ gid_t *groups = NULL;
        struct passwd pw, *pwp = NULL;
        char pwbuf[4096];
        int n_groups = 0, r;
        char **env;

        (void) getpwuid_r(l->def->uid, &pw, pwbuf, sizeof(pwbuf), &pwp);
        user = strdup(pwp ? pwp->pw_name : (l->def->user ? l->def->user : "nobody"));
        home = strdup(pwp && pwp->pw_dir && pwp->pw_dir[0] ? pwp->pw_dir : "/");
        if (!user || !home)
                return -ENOMEM;
        if (drop_privileges) {
                r = build_groups(pwp ? pwp->pw_name : NULL, l->def->gid, &groups, &n_groups);
                if (r < 0)
                        return r;
        }
        r = build_environment(l, user, home, notify_socket, &env);
        if (r < 0)
                return r;

        *ret = (DirectChild){
                .launch = l,
                .env = env,
                .groups = TAKE_PTR(groups),
                .n_groups = n_groups,
                .drop_privileges = drop_privileges,
                .stdin_fd = -1,
                .output_fd = -1,
        };
        return 0;
}

void direct_child_done(DirectChild *c) {
        if (!c)
                return;
        strv_free(c->env);
        free(c->groups);
        c->env = NULL;
        c->groups = NULL;
}

/* ---- the child, in the launcher's memory until execve(): no allocation, no locks ---- */

/* The child's stack: the launcher waits while the child runs (CLONE_VFORK), one child at a time. */
#define CHILD_STACK_SIZE (128 * 1024)
static _Alignas(64) char child_stack[CHILD_STACK_SIZE];

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/asan_interface.h>
/* A child that exec'd never left its frames: AddressSanitizer would still see them on the stack. */
#define CHILD_STACK_RESET() ASAN_UNPOISON_MEMORY_REGION(child_stack, sizeof(child_stack))
#else
#define CHILD_STACK_RESET() ((void) 0)
#endif

_noreturn_ static void child_fail(DirectChild *c, int error, const char *fmt, ...) _printf_(3, 4);
_noreturn_ static void child_fail(DirectChild *c, int error, const char *fmt, ...) {
        char line[sizeof(c->failure.message) + 64];
        va_list ap;
        int n;

        va_start(ap, fmt);
        (void) vsnprintf(c->failure.message, sizeof(c->failure.message), fmt, ap);
        va_end(ap);
        c->failure.error = error;
        /* Also on the task's own stderr, for whoever reads its output. */
        n = snprintf(line, sizeof(line), "asynctask: %s: %s\n", c->failure.message, strerror(error));
        if (n > 0)
                (void) !write(STDERR_FILENO, line, (size_t) n < sizeof(line) ? (size_t) n : sizeof(line));
        _exit(127);
}

/* Default signal handling, then nothing blocked: the launcher blocks the signals it handles through
 * sd-event (and every signal around the clone), and a task must not inherit that. The child has its
 * own copy of the dispositions (no CLONE_SIGHAND). */
static void child_reset_signals(void) {
        sigset_t none;

        for (int sig = 1; sig < _NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        (void) signal(sig, SIG_DFL);
        sigemptyset(&none);
        (void) sigprocmask(SIG_SETMASK, &none, NULL);
}

/* stdin, stdout and stderr, nothing else. */
static void child_setup_fds(DirectChild *c) {
        int in, out;

        /* Move our fds out of the way of 0-2 first, so the dup2()s below cannot clobber one another. */
        in = fcntl(c->stdin_fd, F_DUPFD_CLOEXEC, 10);
        out = fcntl(c->output_fd, F_DUPFD_CLOEXEC, 10);
        if (in < 0 || out < 0)
                child_fail(c, errno, "fcntl(F_DUPFD)");
        if (dup2(in, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0 || dup2(out, STDERR_FILENO) < 0)
                child_fail(c, errno, "dup2()");
        /* Nothing else of the launcher's leaks into the task. */
        if (close_range(3, ~0U, 0) < 0)
                for (int fd = 3; fd < 65536; fd++)
                        (void) close(fd);
}

static void child_apply_limits(DirectChild *c) {
        const TaskDef *def = c->launch->def;
        struct rlimit rl;

        if (def->has_nice && setpriority(PRIO_PROCESS, 0, def->nice) < 0)
                child_fail(c, errno, "setpriority(%d)", def->nice);
        if (def->memory_max == 0)
                return;
        if (getrlimit(RLIMIT_AS, &rl) < 0)
                child_fail(c, errno, "getrlimit(RLIMIT_AS)");
        /* Never raise the hard limit: only lower it to memory_max. */
        if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max > def->memory_max)
                rl.rlim_max = def->memory_max;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_AS, &rl) < 0)
                child_fail(c, errno, "setrlimit(RLIMIT_AS, %" PRIu64 ")", def->memory_max);
}

/* Raw system calls: glibc's wrappers would, in a process with threads, signal every thread of what
 * it takes to be this process (the launcher's) to change theirs too. */
static void child_drop_privileges(DirectChild *c) {
        const TaskDef *def = c->launch->def;

        if (syscall(SYS_setgroups, (size_t) c->n_groups, c->groups) < 0)
                child_fail(c, errno, "setgroups()");
        if (syscall(SYS_setresgid, def->gid, def->gid, def->gid) < 0)
                child_fail(c, errno, "setgid(%u)", (unsigned) def->gid);
        if (syscall(SYS_setresuid, def->uid, def->uid, def->uid) < 0)
                child_fail(c, errno, "setuid(%u)", (unsigned) def->uid);
        if (getuid() != def->uid || geteuid() != def->uid || getgid() != def->gid || getegid() != def->gid)
                child_fail(c, EPERM, "changing to uid %u gid %u", (unsigned) def->uid, (unsigned) def->gid);
        /* Belt and braces: a task user other than root must not be able to get root back. */
        if (def->uid != 0 && syscall(SYS_setresuid, 0, 0, 0) != -1)
                child_fail(c, EPERM, "dropping root (setuid(0) still works)");
}

_noreturn_ static int child_main(void *userdata) {
        DirectChild *c = userdata;
        const TaskDef *def = c->launch->def;
        const char *dir = def->working_directory ? def->working_directory : "/";

        child_reset_signals();
        if (setpgid(0, 0) < 0)
                child_fail(c, errno, "setpgid()");
        child_setup_fds(c);
        child_apply_limits(c);
        if (c->drop_privileges)
                child_drop_privileges(c);
        /* After the user change, so a directory the task user cannot enter fails the start. */
        if (chdir(dir) < 0)
                child_fail(c, errno, "chdir(%s)", dir);

        execve(c->launch->argv[0], c->launch->argv, c->env);
        child_fail(c, errno, "execv(%s)", c->launch->argv[0]);
}

pid_t direct_child_spawn(DirectChild *c, int *ret_pidfd) {
        sigset_t all, saved;
        int pidfd = -1;
        pid_t pid;

        c->failure = (ExecFailure){};
        CHILD_STACK_RESET();
        /* No handler of the launcher's may run in the child, on memory they share. */
        sigfillset(&all);
        (void) pthread_sigmask(SIG_SETMASK, &all, &saved);
        pid = clone(child_main, child_stack + sizeof(child_stack),
                    CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, c, &pidfd);
        if (pid < 0)
                pid = -errno;
        (void) pthread_sigmask(SIG_SETMASK, &saved, NULL);
        if (pid < 0)
                return pid;
        /* Also from this side, so that a stop right after launch finds the group in place. */
        (void) setpgid(pid, pid);
        *ret_pidfd = pidfd;
        return pid;
}
