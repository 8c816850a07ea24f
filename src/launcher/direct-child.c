/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "launcher/direct-child.h"

/* ---- building what the child needs, in the parent (no allocation after fork) ---- */

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
 * resolved before fork so the child does no NSS lookups). */
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
                .exec_fd = -1,
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

/* ---- the child, after fork(): no allocation, no locks ---- */

_noreturn_ static void child_fail(int fd, int error, const char *fmt, ...) _printf_(3, 4);
_noreturn_ static void child_fail(int fd, int error, const char *fmt, ...) {
        ExecFailure f = {.error = error};
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(f.message, sizeof(f.message), fmt, ap);
        va_end(ap);
        /* Also on the task's own stderr, for whoever reads its output. */
        dprintf(STDERR_FILENO, "asynctask: %s: %s\n", f.message, strerror(error));
        (void) !write(fd, &f, sizeof(f));
        _exit(127);
}

/* Default signal handling, then nothing blocked: the launcher blocks the signals it handles through
 * sd-event, and a task must not inherit that. */
static void child_reset_signals(void) {
        sigset_t none;

        for (int sig = 1; sig < _NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        (void) signal(sig, SIG_DFL);
        sigemptyset(&none);
        (void) sigprocmask(SIG_SETMASK, &none, NULL);
}

static int move_fd_above(int fd, int min) {
        return fcntl(fd, F_DUPFD_CLOEXEC, min);
}

/* stdin, stdout and stderr, the exec pipe as fd 3, nothing else. Returns the exec pipe's fd (3). */
static int child_setup_fds(const DirectChild *c) {
        int in, out, ep;

        /* Move our fds out of the way of 0-3 first, so the dup2()s below cannot clobber one another. */
        in = move_fd_above(c->stdin_fd, 10);
        out = move_fd_above(c->output_fd, 10);
        ep = move_fd_above(c->exec_fd, 10);
        if (ep < 0)
                _exit(127);
        if (in < 0 || out < 0)
                child_fail(c->exec_fd, errno, "fcntl(F_DUPFD)");
        if (dup2(in, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0 || dup2(out, STDERR_FILENO) < 0)
                child_fail(ep, errno, "dup2()");
        if (dup2(ep, 3) < 0 || fcntl(3, F_SETFD, FD_CLOEXEC) < 0)
                child_fail(ep, errno, "dup2()");
        /* Nothing else of the launcher's leaks into the task. */
        if (close_range(4, ~0U, 0) < 0)
                for (int fd = 4; fd < 65536; fd++)
                        (void) close(fd);
        return 3;
}

static void child_apply_limits(const TaskDef *def, int ep) {
        struct rlimit rl;

        if (def->has_nice && setpriority(PRIO_PROCESS, 0, def->nice) < 0)
                child_fail(ep, errno, "setpriority(%d)", def->nice);
        if (def->memory_max == 0)
                return;
        if (getrlimit(RLIMIT_AS, &rl) < 0)
                child_fail(ep, errno, "getrlimit(RLIMIT_AS)");
        /* Never raise the hard limit: only lower it to memory_max. */
        if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max > def->memory_max)
                rl.rlim_max = def->memory_max;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_AS, &rl) < 0)
                child_fail(ep, errno, "setrlimit(RLIMIT_AS, %" PRIu64 ")", def->memory_max);
}

static void child_drop_privileges(const DirectChild *c, int ep) {
        const TaskDef *def = c->launch->def;

        if (setgroups((size_t) c->n_groups, c->groups) < 0)
                child_fail(ep, errno, "setgroups()");
        if (setresgid(def->gid, def->gid, def->gid) < 0)
                child_fail(ep, errno, "setgid(%u)", (unsigned) def->gid);
        if (setresuid(def->uid, def->uid, def->uid) < 0)
                child_fail(ep, errno, "setuid(%u)", (unsigned) def->uid);
        if (getuid() != def->uid || geteuid() != def->uid || getgid() != def->gid || getegid() != def->gid)
                child_fail(ep, EPERM, "changing to uid %u gid %u", (unsigned) def->uid, (unsigned) def->gid);
        /* Belt and braces: a task user other than root must not be able to get root back. */
        if (def->uid != 0 && setuid(0) != -1)
                child_fail(ep, EPERM, "dropping root (setuid(0) still works)");
}

_noreturn_ void direct_child_exec(const DirectChild *c) {
        const TaskDef *def = c->launch->def;
        const char *dir = def->working_directory ? def->working_directory : "/";
        int ep;

        child_reset_signals();
        if (setpgid(0, 0) < 0)
                child_fail(c->exec_fd, errno, "setpgid()");
        ep = child_setup_fds(c);
        child_apply_limits(def, ep);
        if (c->drop_privileges)
                child_drop_privileges(c, ep);
        /* After the user change, so a directory the task user cannot enter fails the start. */
        if (chdir(dir) < 0)
                child_fail(ep, errno, "chdir(%s)", dir);

        execve(c->launch->argv[0], c->launch->argv, c->env);
        child_fail(ep, errno, "execv(%s)", c->launch->argv[0]);
}
