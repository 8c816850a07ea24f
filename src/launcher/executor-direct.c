/* SPDX-License-Identifier: MIT */
/*
 * The direct executor: fork/exec inside the launcher, for hosts without systemd as PID 1. It mimics a
 * transient unit as far as a plain process can: its own process group, the task's user, groups,
 * environment, working directory, nice level and (as RLIMIT_AS) memory limit, a timeout ending in
 * TERM then KILL of the whole group, and output to the journal when journald is reachable, else to
 * the launcher's stderr with a "[task <id>] " prefix. Sandboxing and CPU quotas need systemd.
 *
 * Nothing here blocks the loop: child exits arrive through the child's pidfd, the exec outcome through
 * a close-on-exec pipe (EOF means the exec worked; a record means it did not), output through a
 * non-blocking pipe.
 */
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <systemd/sd-event.h>
#include <systemd/sd-journal.h>

#include "launcher/executor.h"
#include "shared/limits.h"
#include "shared/log.h"
#include "shared/util.h"

/* Reads per wake-up of one output pipe, so that a chatty task cannot starve the loop. */
#define OUTPUT_READS_PER_WAKEUP 16

#define JOURNAL_SOCKET_PATH "/run/systemd/journal/socket"
#define DEFAULT_PATH        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* What a child reports through the close-on-exec pipe when something fails before exec. Small enough
 * to be written atomically (PIPE_BUF). */
typedef struct ExecFailure {
        int error;
        char message[200];
} ExecFailure;

typedef enum KillStage {
        KILL_NONE,      /* running normally */
        KILL_TERM_SENT, /* SIGTERM sent to the group; SIGKILL follows after the grace period */
        KILL_KILL_SENT,
} KillStage;

typedef struct DirectExecutor DirectExecutor;

typedef struct DirectRun {
        DirectExecutor *x;
        uint64_t id;
        pid_t pid;
        uint64_t timeout_sec;

        sd_event_source *child_source;
        sd_event_source *timer_source;
        sd_event_source *exec_source; /* the close-on-exec pipe, until EOF */
        int exec_fd;
        sd_event_source *output_source; /* output relay, when not going to the journal */
        int output_fd;
        char *line; /* partial output line, TASK_OUTPUT_LINE_MAX bytes */
        size_t line_len;

        KillStage kill_stage;
        const char *kill_reason; /* "timeout" or "cancelled" once termination started */
        bool started_sent;
        bool exec_failed;
        char exec_error[sizeof(((RunResult *) NULL)->error)];
        bool exited;   /* reaped; the result is in `result`, reported from report_source */
        bool finished; /* reported */
        RunResult result;
        sd_event_source *report_source;

        struct DirectRun *next;
} DirectRun;

struct DirectExecutor {
        Executor base;
        sd_event *event;
        ExecutorEvents events;
        void *userdata;
        DirectRun *runs;
        uint64_t kill_grace_usec;   /* KILL_GRACE_USEC; tests shorten it */
        const char *journal_socket; /* where journald listens; tests point it elsewhere */
};

static DirectRun *run_find(DirectExecutor *x, uint64_t id) {
        for (DirectRun *r = x->runs; r; r = r->next)
                if (r->id == id)
                        return r;
        return NULL;
}

static void run_close_exec_pipe(DirectRun *r) {
        r->exec_source = sd_event_source_disable_unref(r->exec_source);
        if (r->exec_fd >= 0)
                (void) close(r->exec_fd);
        r->exec_fd = -1;
}

static void run_close_output(DirectRun *r) {
        r->output_source = sd_event_source_disable_unref(r->output_source);
        if (r->output_fd >= 0)
                (void) close(r->output_fd);
        r->output_fd = -1;
}

static DirectRun *run_free(DirectRun *r) {
        if (!r)
                return NULL;
        r->child_source = sd_event_source_disable_unref(r->child_source);
        r->timer_source = sd_event_source_disable_unref(r->timer_source);
        r->report_source = sd_event_source_disable_unref(r->report_source);
        run_close_exec_pipe(r);
        run_close_output(r);
        free(r->line);
        free(r);
        return NULL;
}

static void run_unlink(DirectExecutor *x, DirectRun *r) {
        for (DirectRun **p = &x->runs; *p; p = &(*p)->next)
                if (*p == r) {
                        *p = r->next;
                        return;
                }
}

/* Output relay: one write per line, so lines from different tasks do not interleave mid-line. */
static void output_emit(DirectRun *r, const char *data, size_t n) {
        char prefix[48];
        struct iovec iov[3];
        int k = snprintf(prefix, sizeof(prefix), "[task %" PRIu64 "] ", r->id);

        iov[0] = (struct iovec){.iov_base = prefix, .iov_len = (size_t) k};
        iov[1] = (struct iovec){.iov_base = (void *) data, .iov_len = n};
        iov[2] = (struct iovec){.iov_base = (void *) "\n", .iov_len = 1};
        /* Best effort: the launcher's stderr is its log; losing a line there must not stop the task. */
        (void) writev(STDERR_FILENO, iov, 3);
}

static void output_consume(DirectRun *r, const char *buf, size_t n) {
        while (n > 0) {
                const char *nl = memchr(buf, '\n', n);
                size_t chunk = nl ? (size_t) (nl - buf) : n;
                size_t room = TASK_OUTPUT_LINE_MAX - r->line_len;

                if (chunk > room)
                        chunk = room;
                memcpy(r->line + r->line_len, buf, chunk);
                r->line_len += chunk;
                buf += chunk;
                n -= chunk;

                if (n > 0 && *buf == '\n') {
                        buf++;
                        n--;
                        output_emit(r, r->line, r->line_len);
                        r->line_len = 0;
                } else if (r->line_len == TASK_OUTPUT_LINE_MAX) {
                        output_emit(r, r->line, r->line_len); /* an over-long line is split */
                        r->line_len = 0;
                }
        }
}

/* Reads what is available. Returns 1 at EOF or on error (then the pipe is closed), 0 otherwise. */
static int output_drain(DirectRun *r, unsigned max_reads) {
        char buf[4096];

        for (unsigned i = 0; max_reads == 0 || i < max_reads; i++) {
                ssize_t n = read(r->output_fd, buf, sizeof(buf));

                if (n > 0) {
                        output_consume(r, buf, (size_t) n);
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return 0;
                /* EOF or a real error: flush the last partial line. */
                if (r->line_len > 0)
                        output_emit(r, r->line, r->line_len);
                r->line_len = 0;
                run_close_output(r);
                return 1;
        }
        return 0;
}

static int on_output(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        (void) output_drain(userdata, OUTPUT_READS_PER_WAKEUP);
        return 0;
}

static void run_send_started(DirectRun *r) {
        char unit[32];

        if (r->started_sent)
                return;
        r->started_sent = true;
        (void) snprintf(unit, sizeof(unit), "pid:%d", (int) r->pid);
        if (r->x->events.started)
                r->x->events.started(r->x->userdata, r->id, unit);
}

/* Reads the exec pipe. Returns 1 once it is settled (EOF or a failure record), 0 if nothing yet. */
static int exec_pipe_read(DirectRun *r) {
        ExecFailure f;
        ssize_t n;

        do
                n = read(r->exec_fd, &f, sizeof(f));
        while (n < 0 && errno == EINTR);
        if (n < 0 && errno == EAGAIN)
                return 0;

        if (n == (ssize_t) sizeof(f)) {
                f.message[sizeof(f.message) - 1] = '\0';
                r->exec_failed = true;
                (void) snprintf(r->exec_error, sizeof(r->exec_error), "%s: %s", f.message,
                                strerror(f.error));
        } else if (n != 0) {
                r->exec_failed = true;
                (void) snprintf(r->exec_error, sizeof(r->exec_error),
                                "could not start: lost the exec status");
        }
        run_close_exec_pipe(r);
        return 1;
}

static int on_exec_pipe(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        DirectRun *r = userdata;

        if (exec_pipe_read(r) > 0 && !r->exec_failed)
                run_send_started(r);
        return 0;
}

static void group_kill(DirectRun *r, int sig) {
        /* The whole process group; the child may not have called setpgid() yet if we are early. */
        if (kill(-r->pid, sig) < 0 && errno == ESRCH)
                (void) kill(r->pid, sig);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata);

static int arm_timer(DirectRun *r, uint64_t usec_from_now) {
        uint64_t now;
        int k;

        if (!r->timer_source)
                return sd_event_add_time_relative(r->x->event, &r->timer_source, CLOCK_MONOTONIC,
                                                  usec_from_now, USEC_PER_MSEC, on_timer, r);
        k = sd_event_now(r->x->event, CLOCK_MONOTONIC, &now);
        if (k < 0)
                return k;
        k = sd_event_source_set_time(r->timer_source, now + usec_from_now);
        if (k < 0)
                return k;
        return sd_event_source_set_enabled(r->timer_source, SD_EVENT_ONESHOT);
}

static void start_termination(DirectRun *r, const char *reason) {
        if (r->kill_stage != KILL_NONE || r->exited)
                return;
        r->kill_reason = reason;
        r->kill_stage = KILL_TERM_SENT;
        group_kill(r, SIGTERM);
        group_kill(r, SIGCONT); /* a stopped process must be able to act on TERM */
        if (arm_timer(r, r->x->kill_grace_usec) < 0) {
                /* Without a timer there is no second chance: kill now rather than never. */
                r->kill_stage = KILL_KILL_SENT;
                group_kill(r, SIGKILL);
        }
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        DirectRun *r = userdata;

        if (r->exited)
                return 0;
        if (r->kill_stage == KILL_NONE) {
                log_task(LOG_NOTICE, r->id, NULL, NULL, "Task ran longer than %" PRIu64 " s, terminating it",
                         r->timeout_sec);
                start_termination(r, "timeout");
        } else if (r->kill_stage == KILL_TERM_SENT) {
                log_task(LOG_NOTICE, r->id, NULL, NULL, "Task still running after SIGTERM, killing it");
                r->kill_stage = KILL_KILL_SENT;
                group_kill(r, SIGKILL);
        }
        return 0;
}

static void fill_result(DirectRun *r, int code, int status, const struct rusage *ru, RunResult *res) {
        *res = (RunResult){};

        if (code == CLD_EXITED) {
                res->has_exit_status = 1;
                res->exit_status = status;
        } else
                res->signal = status;

        if (ru) {
                res->cpu_usec = (unsigned long long) ru->ru_utime.tv_sec * USEC_PER_SEC +
                                (unsigned long long) ru->ru_utime.tv_usec +
                                (unsigned long long) ru->ru_stime.tv_sec * USEC_PER_SEC +
                                (unsigned long long) ru->ru_stime.tv_usec;
                res->memory_peak = (unsigned long long) ru->ru_maxrss * 1024ULL; /* kilobytes on Linux */
        }

        if (r->exec_failed) {
                /* The task never ran: its 127 is ours, not its exit status. */
                res->has_exit_status = 0;
                res->exit_status = 0;
                res->signal = 0;
                strcpy(res->result, "resources");
                memcpy(res->error, r->exec_error, sizeof(res->error));
        } else if (r->kill_reason) {
                strcpy(res->result, r->kill_reason);
                if (streq(r->kill_reason, "timeout"))
                        (void) snprintf(res->error, sizeof(res->error),
                                        "ran longer than timeout_sec=%" PRIu64, r->timeout_sec);
        } else if (code == CLD_EXITED)
                strcpy(res->result, status == 0 ? "success" : "exit-code");
        else
                strcpy(res->result, code == CLD_DUMPED ? "core-dump" : "signal");
}

/* Reports the run's end, from a defer source of its own: the handler may release this run (freeing it
 * and its sources) or launch new runs, which must not happen inside on_child() while it still works on
 * the run. */
static int on_report(sd_event_source *s, void *userdata) {
        DirectRun *r = userdata;
        DirectExecutor *x = r->x;
        RunResult res;

        r->report_source = sd_event_source_disable_unref(r->report_source);
        if (r->finished)
                return 0;
        if (!r->exec_failed)
                run_send_started(r);
        r->finished = true;
        /* The handler may call back into us (even release this run): use only the copy from here on. */
        res = r->result;
        if (x->events.finished)
                x->events.finished(x->userdata, r->id, &res);
        return 0;
}

/* The child's pidfd became readable: it has exited. We watch the pidfd as a plain (level-triggered) io
 * source rather than through sd_event_add_child(): sd-event registers a child source's pidfd with
 * EPOLLONESHOT, and when one epoll_wait() fills its event buffer it enlarges the buffer and calls
 * epoll_wait() again into the same buffer, dropping the events already fetched. A level-triggered fd
 * is simply reported again; a oneshot one was disarmed by the kernel when it was delivered, so that
 * exit was never seen (the run stayed a zombie). That happens whenever every watched fd is ready in
 * the same wakeup, e.g. runs launched from a finished handler that end before the loop looks again.
 * Reaping is ours alone, too: sd-event would waitid() the pid after the callback. */
static int on_child(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        DirectRun *r = userdata;
        struct rusage ru = {};
        int code = CLD_EXITED, status = 0, wstatus = 0, wait_error = 0;
        bool have_rusage = false;
        pid_t p;

        /* Whatever is left of the task's process group goes with its main process, as a unit's
         * processes do when the service ends. The zombie still holds the pid, so the group id cannot
         * have been reused yet. */
        (void) kill(-r->pid, SIGKILL);

        /* Reap it ourselves (sd-event would after this callback) to get its resource usage. */
        do
                p = wait4(r->pid, &wstatus, WNOHANG, &ru);
        while (p < 0 && errno == EINTR);
        if (p < 0)
                wait_error = errno; /* reaped by someone else (SIGCHLD ignored?): the status is gone */
        if (p == 0)
                return 0; /* not exited after all (a spurious wakeup): keep watching */
        r->child_source = sd_event_source_disable_unref(r->child_source);
        if (p == r->pid) {
                have_rusage = true;
                if (WIFEXITED(wstatus)) {
                        code = CLD_EXITED;
                        status = WEXITSTATUS(wstatus);
                } else if (WIFSIGNALED(wstatus)) {
                        code = WCOREDUMP(wstatus) ? CLD_DUMPED : CLD_KILLED;
                        status = WTERMSIG(wstatus);
                }
        }

        /* The child is gone, so everything it wrote before dying is in the pipes. */
        if (r->exec_fd >= 0)
                (void) exec_pipe_read(r);
        if (r->output_fd >= 0)
                (void) output_drain(r, 0);
        /* Something the task started may still hold the output pipe; we do not wait for it. */
        run_close_output(r);
        r->timer_source = sd_event_source_disable_unref(r->timer_source);

        fill_result(r, code, status, have_rusage ? &ru : NULL, &r->result);
        if (wait_error != 0 && !r->exec_failed) {
                /* Not knowing how it ended is not success. */
                r->result.has_exit_status = 0;
                r->result.exit_status = 0;
                r->result.signal = 0;
                strcpy(r->result.result, "lost");
                (void) snprintf(r->result.error, sizeof(r->result.error),
                                "cannot collect the exit status: %s", strerror(wait_error));
        }
        r->exited = true;
        if (sd_event_add_defer(r->x->event, &r->report_source, on_report, r) < 0) {
                /* No memory for the defer source: report now rather than never. */
                (void) on_report(NULL, r);
        }
        return 0;
}

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
        int k;

        va_start(ap, fmt);
        k = vasprintf(&env[*n], fmt, ap);
        va_end(ap);
        if (k < 0) {
                env[*n] = NULL;
                return -ENOMEM;
        }
        (*n)++;
        return 0;
}

/* Exactly the task's environment plus what identifies the run. PATH, HOME, USER and LOGNAME default
 * to the usual values for the task user unless the task sets them; ASYNCTASK_* are always ours. */
static int build_environment(const Launch *l, const char *user, const char *home, char ***ret) {
        const TaskDef *def = l->def;
        size_t n = 0, cap = def->n_environment + 8;
        char **env = calloc(cap + 1, sizeof(char *));
        int k = 0;

        if (!env)
                return -ENOMEM;
        for (size_t i = 0; i < def->n_environment && def->environment && def->environment[i]; i++) {
                const char *e = def->environment[i];

                if (startswith(e, "ASYNCTASK_ID=") || startswith(e, "ASYNCTASK_TASK=") ||
                    startswith(e, "ASYNCTASK_ATTEMPT="))
                        continue;
                env[n] = strdup(e);
                if (!env[n]) {
                        k = -ENOMEM;
                        goto fail;
                }
                n++;
        }
        if (!env_has_key(env, n, "PATH") && (k = env_push(env, &n, "PATH=%s", DEFAULT_PATH)) < 0)
                goto fail;
        if (!env_has_key(env, n, "HOME") && (k = env_push(env, &n, "HOME=%s", home)) < 0)
                goto fail;
        if (!env_has_key(env, n, "USER") && (k = env_push(env, &n, "USER=%s", user)) < 0)
                goto fail;
        if (!env_has_key(env, n, "LOGNAME") && (k = env_push(env, &n, "LOGNAME=%s", user)) < 0)
                goto fail;
        if ((k = env_push(env, &n, "ASYNCTASK_ID=%" PRIu64, l->id)) < 0 ||
            (k = env_push(env, &n, "ASYNCTASK_TASK=%s", def->is_command ? "command" : def->name)) < 0 ||
            (k = env_push(env, &n, "ASYNCTASK_ATTEMPT=%u", l->attempt)) < 0)
                goto fail;
        env[n] = NULL;
        *ret = env;
        return 0;
fail:
        strv_free(env); /* calloc'd, so NULL-terminated after the last entry made */
        return k;
}

/* The supplementary groups the task user has, with the task's group (initgroups() semantics, but
 * resolved before fork so the child does no NSS lookups). */
static int build_groups(const char *user, gid_t gid, gid_t **ret, int *ret_n) {
        int n = 32;
        gid_t *g = NULL;

        for (int tries = 0; tries < 8; tries++) {
                gid_t *ng = realloc(g, (size_t) n * sizeof(gid_t));
                int want = n;

                if (!ng) {
                        free(g);
                        return -ENOMEM;
                }
                g = ng;
                if (!user) {
                        g[0] = gid;
                        *ret = g;
                        *ret_n = 1;
                        return 0;
                }
                if (getgrouplist(user, gid, g, &want) >= 0) {
                        *ret = g;
                        *ret_n = want;
                        return 0;
                }
                n = want > n ? want : n * 2;
                if (n > 65536)
                        break;
        }
        free(g);
        return -E2BIG;
}

/* ---- the child ---- */

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

typedef struct ChildSetup {
        const Launch *l;
        char **env;
        gid_t *groups;
        int n_groups;
        bool drop_privileges;
        int stdin_fd, output_fd, exec_fd;
} ChildSetup;

static int move_fd_above(int fd, int min) {
        return fcntl(fd, F_DUPFD_CLOEXEC, min);
}

_noreturn_ static void child_run(const ChildSetup *c) {
        const TaskDef *def = c->l->def;
        int in, out, ep, k;
        sigset_t none;

        /* Default signal handling, then nothing blocked: the launcher blocks the signals it handles
         * through sd-event, and a task must not inherit that. */
        for (int sig = 1; sig < _NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        (void) signal(sig, SIG_DFL);
        sigemptyset(&none);
        (void) sigprocmask(SIG_SETMASK, &none, NULL);

        if (setpgid(0, 0) < 0)
                child_fail(c->exec_fd, errno, "setpgid()");

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
        ep = 3;
        /* Nothing else of the launcher's leaks into the task. */
        if (close_range(4, ~0U, 0) < 0)
                for (int fd = 4; fd < 65536; fd++)
                        (void) close(fd);

        if (def->has_nice && setpriority(PRIO_PROCESS, 0, def->nice) < 0)
                child_fail(ep, errno, "setpriority(%d)", def->nice);

        if (def->memory_max > 0) {
                struct rlimit rl;

                if (getrlimit(RLIMIT_AS, &rl) < 0)
                        child_fail(ep, errno, "getrlimit(RLIMIT_AS)");
                /* Never raise the hard limit: only lower it to memory_max. */
                if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max > def->memory_max)
                        rl.rlim_max = def->memory_max;
                rl.rlim_cur = rl.rlim_max;
                if (setrlimit(RLIMIT_AS, &rl) < 0)
                        child_fail(ep, errno, "setrlimit(RLIMIT_AS, %" PRIu64 ")", def->memory_max);
        }

        if (c->drop_privileges) {
                if (setgroups((size_t) c->n_groups, c->groups) < 0)
                        child_fail(ep, errno, "setgroups()");
                if (setresgid(def->gid, def->gid, def->gid) < 0)
                        child_fail(ep, errno, "setgid(%u)", (unsigned) def->gid);
                if (setresuid(def->uid, def->uid, def->uid) < 0)
                        child_fail(ep, errno, "setuid(%u)", (unsigned) def->uid);
                if (getuid() != def->uid || geteuid() != def->uid || getgid() != def->gid ||
                    getegid() != def->gid)
                        child_fail(ep, EPERM, "changing to uid %u gid %u", (unsigned) def->uid,
                                   (unsigned) def->gid);
                /* Belt and braces: a task user other than root must not be able to get root back. */
                if (def->uid != 0 && setuid(0) != -1)
                        child_fail(ep, EPERM, "dropping root (setuid(0) still works)");
        }

        /* After the user change, so a directory the task user cannot enter fails the start. */
        k = chdir(def->working_directory ? def->working_directory : "/");
        if (k < 0)
                child_fail(ep, errno, "chdir(%s)", def->working_directory ? def->working_directory : "/");

        execve(c->l->argv[0], c->l->argv, c->env);
        child_fail(ep, errno, "execv(%s)", c->l->argv[0]);
}

/* ---- the executor ---- */

static int open_stdin(const Launch *l) {
        _cleanup_close_ int fd = -1;
        const char *p = l->stdin_data;
        size_t left = l->stdin_len;

        if (!l->stdin_data || l->stdin_len == 0) {
                fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                return fd < 0 ? -errno : TAKE_FD(fd);
        }

        /* An in-memory file the task reads at its own pace; a pipe would need feeding from the loop. */
        fd = memfd_create("asynctask-stdin", MFD_CLOEXEC);
        if (fd < 0)
                return -errno;
        while (left > 0) {
                ssize_t n = write(fd, p, left);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                p += n;
                left -= (size_t) n;
        }
        if (lseek(fd, 0, SEEK_SET) < 0)
                return -errno;
        return TAKE_FD(fd);
}

/* The journal when it is reachable (identifier asynctask-<id>), else a pipe back to us. Returns the
 * fd for the child's stdout/stderr; *ret_read is our end of the pipe, or -1. */
static int open_output(DirectExecutor *x, uint64_t id, int *ret_read) {
        int p[2];

        if (access(x->journal_socket, F_OK) == 0) {
                char ident[48];
                int fd;

                (void) snprintf(ident, sizeof(ident), "asynctask-%" PRIu64, id);
                fd = sd_journal_stream_fd(ident, LOG_INFO, 0);
                if (fd >= 0) {
                        /* sd_journal_stream_fd() does not set close-on-exec; other children must
                         * not inherit this one. */
                        (void) fcntl(fd, F_SETFD, FD_CLOEXEC);
                        *ret_read = -1;
                        return fd;
                }
                log_task_internal(
                        LOG_WARNING, fd, id, NULL, NULL,
                        "Cannot connect the task's output to the journal, relaying it instead: %m");
        }

        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        if (fcntl(p[0], F_SETFL, O_NONBLOCK) < 0) {
                int k = -errno;
                (void) close(p[0]);
                (void) close(p[1]);
                return k;
        }
        *ret_read = p[0];
        return p[1];
}

static int direct_launch(Executor *e, const Launch *l) {
        DirectExecutor *x = (DirectExecutor *) e;
        _cleanup_close_ int stdin_fd = -1, output_w = -1, output_r = -1, exec_r = -1, exec_w = -1;
        _cleanup_free_ gid_t *groups = NULL;
        _cleanup_free_ char *home = NULL, *user = NULL;
        char **env = NULL;
        ChildSetup c = {};
        DirectRun *r = NULL;
        struct passwd pw, *pwp = NULL;
        char pwbuf[4096];
        int n_groups = 0, k, pfd[2];
        bool root = geteuid() == 0;
        pid_t pid;
        int pidfd;

        if (!l || !l->def || l->id == 0 || !l->argv || !l->argv[0])
                return -EINVAL;
        if (run_find(x, l->id))
                return -EEXIST;
        /* Without root we cannot become anybody else: refuse rather than run as the wrong user. */
        if (!root && (l->def->uid != geteuid() || l->def->gid != getegid()))
                return -EPERM;

        (void) getpwuid_r(l->def->uid, &pw, pwbuf, sizeof(pwbuf), &pwp);
        user = strdup(pwp ? pwp->pw_name : (l->def->user ? l->def->user : "nobody"));
        home = strdup(pwp && pwp->pw_dir && pwp->pw_dir[0] ? pwp->pw_dir : "/");
        if (!user || !home)
                return -ENOMEM;
        if (root) {
                k = build_groups(pwp ? pwp->pw_name : NULL, l->def->gid, &groups, &n_groups);
                if (k < 0)
                        return k;
        }

        r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        *r = (DirectRun){
                .x = x, .id = l->id, .timeout_sec = l->def->timeout_sec, .exec_fd = -1, .output_fd = -1};

        k = build_environment(l, user, home, &env);
        if (k < 0)
                goto fail;

        k = stdin_fd = open_stdin(l);
        if (k < 0)
                goto fail;
        k = output_w = open_output(x, l->id, &output_r);
        if (k < 0)
                goto fail;
        if (output_r >= 0) {
                r->line = malloc(TASK_OUTPUT_LINE_MAX);
                if (!r->line) {
                        k = -ENOMEM;
                        goto fail;
                }
        }
        if (pipe2(pfd, O_CLOEXEC) < 0) {
                k = -errno;
                goto fail;
        }
        exec_r = pfd[0];
        exec_w = pfd[1];
        if (fcntl(exec_r, F_SETFL, O_NONBLOCK) < 0) {
                k = -errno;
                goto fail;
        }

        c = (ChildSetup){
                .l = l,
                .env = env,
                .groups = groups,
                .n_groups = n_groups,
                .drop_privileges = root,
                .stdin_fd = stdin_fd,
                .output_fd = output_w,
                .exec_fd = exec_w,
        };

        pid = fork();
        if (pid < 0) {
                k = -errno;
                goto fail;
        }
        if (pid == 0)
                child_run(&c);

        /* Also from this side, so that a stop right after launch finds the group in place. */
        (void) setpgid(pid, pid);
        r->pid = pid;

        pidfd = pidfd_open(pid, 0);
        if (pidfd < 0) {
                k = -errno;
                goto fail_child;
        }
        k = sd_event_add_io(x->event, &r->child_source, pidfd, EPOLLIN, on_child, r);
        if (k < 0) {
                (void) close(pidfd);
                goto fail_child;
        }
        (void) sd_event_source_set_io_fd_own(r->child_source, true);
        k = sd_event_add_io(x->event, &r->exec_source, exec_r, EPOLLIN, on_exec_pipe, r);
        if (k < 0)
                goto fail_child;
        r->exec_fd = TAKE_FD(exec_r);
        if (output_r >= 0) {
                k = sd_event_add_io(x->event, &r->output_source, output_r, EPOLLIN, on_output, r);
                if (k < 0)
                        goto fail_child;
                r->output_fd = TAKE_FD(output_r);
        }
        if (l->def->timeout_sec > 0) {
                k = arm_timer(r, l->def->timeout_sec * USEC_PER_SEC);
                if (k < 0)
                        goto fail_child;
        }

        r->next = x->runs;
        x->runs = r;
        strv_free(env);
        return 0;

fail_child:
        /* Nothing was reported yet, so the run must not happen at all. The child has not exec'd for
         * long, if at all; reaping it after SIGKILL returns at once. */
        (void) kill(-pid, SIGKILL);
        (void) kill(pid, SIGKILL);
        (void) waitpid(pid, NULL, 0);
fail:
        strv_free(env);
        run_free(r);
        return k;
}

static int direct_stop(Executor *e, uint64_t id) {
        DirectExecutor *x = (DirectExecutor *) e;
        DirectRun *r = run_find(x, id);

        if (!r)
                return -ESRCH;
        start_termination(r, "cancelled"); /* no-op if it already ended or is being terminated */
        return 0;
}

static int direct_release(Executor *e, uint64_t id) {
        DirectExecutor *x = (DirectExecutor *) e;
        DirectRun *r = run_find(x, id);

        if (!r)
                return -ESRCH;
        if (!r->finished)
                return -EBUSY;
        run_unlink(x, r);
        run_free(r);
        return 0;
}

/* Runs still going are left running (as units would be); their results are lost with us. */
static Executor *direct_free(Executor *e) {
        DirectExecutor *x = (DirectExecutor *) e;

        if (!x)
                return NULL;
        while (x->runs) {
                DirectRun *r = x->runs;
                x->runs = r->next;
                run_free(r);
        }
        sd_event_unref(x->event);
        free(x);
        return NULL;
}

static const ExecutorOps direct_ops = {
        .name = "direct",
        .launch = direct_launch,
        .stop = direct_stop,
        .release = direct_release,
        .free = direct_free,
};

int executor_direct_new(sd_event *event, const ExecutorEvents *events, void *userdata, Executor **ret) {
        DirectExecutor *x;

        if (!event || !events || !ret)
                return -EINVAL;

        x = calloc(1, sizeof(*x));
        if (!x)
                return -ENOMEM;
        x->base.ops = &direct_ops;
        x->event = sd_event_ref(event);
        x->events = *events;
        x->userdata = userdata;
        x->kill_grace_usec = KILL_GRACE_USEC;
        x->journal_socket = JOURNAL_SOCKET_PATH;
        *ret = &x->base;
        return 0;
}
