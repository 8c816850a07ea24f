/* SPDX-License-Identifier: MIT */
/*
 * The direct executor, for hosts without systemd as PID 1: each run a child of the launcher (made with
 * clone(CLONE_VM | CLONE_VFORK), see direct-child.h) that execs the task. It mimics a transient unit as far
 * as a plain process can: its own process group, the task's user, groups, environment, working directory,
 * nice level and (as RLIMIT_AS) memory limit, a timeout ending in TERM then KILL of the whole group, and
 * output to the journal when journald is reachable, else to the launcher's stderr with a "[task <id>] "
 * prefix. Sandboxing and CPU quotas need systemd.
 *
 * Nothing here blocks the loop: a child is made without copying the launcher (direct-child.h) and
 * the exec outcome is known when the spawn returns; its exit arrives through its pidfd, its output
 * through a non-blocking pipe.
 *
 * Each run gets a NOTIFY_SOCKET of its own, as a unit with NotifyAccess=all would: an autobound abstract
 * datagram socket, whose STATUS= becomes the run's progress. The kernel tells who sent each datagram
 * (SO_PASSCRED); only the task's user from within the task's process group is heard. File descriptors
 * sent along are closed at once, which is also how a sender waiting on BARRIER=1 (systemd-notify does)
 * learns its message was read.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <systemd/sd-event.h>
#include <systemd/sd-journal.h>

#include "launcher/direct-child.h"
#include "launcher/executor-direct.h"
#include "launcher/executor.h"
#include "launcher/progress-text.h"
#include "shared/limits.h"
#include "shared/log.h"
#include "shared/util.h"

/* Reads per wake-up of one output pipe, so that a chatty task cannot starve the loop. */
#define OUTPUT_READS_PER_WAKEUP 16
/* Datagrams per wake-up of one notify socket, for the same reason. */
#define NOTIFY_READS_PER_WAKEUP 16
/* The longest notification read, as the service manager reads them (a longer one is dropped). */
#define NOTIFY_DATAGRAM_MAX 4096
/* File descriptors taken along with one notification (each is closed at once). */
#define NOTIFY_FDS_MAX 16

#define JOURNAL_SOCKET_PATH "/run/systemd/journal/socket"

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
        sd_event_source *output_source; /* output relay, when not going to the journal */
        int output_fd;
        char *line; /* partial output line, TASK_OUTPUT_LINE_MAX bytes */
        size_t line_len;
        sd_event_source *notify_source; /* the run's NOTIFY_SOCKET, until the run ends */
        int notify_fd;
        uid_t uid; /* the task's user: who may notify */

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
        uint64_t kill_grace_usec; /* DirectExecutorSettings */
        const char *journal_socket;
};

static DirectRun *run_find(DirectExecutor *x, uint64_t id) {
        for (DirectRun *run = x->runs; run; run = run->next)
                if (run->id == id)
                        return run;
        return NULL;
}

static void run_close_output(DirectRun *run) {
        run->output_source = sd_event_source_disable_unref(run->output_source);
        if (run->output_fd >= 0)
                (void) close(run->output_fd);
        run->output_fd = -1;
}

static void run_close_notify(DirectRun *run) {
        run->notify_source = sd_event_source_disable_unref(run->notify_source);
        if (run->notify_fd >= 0)
                (void) close(run->notify_fd);
        run->notify_fd = -1;
}

static DirectRun *run_free(DirectRun *run) {
        if (!run)
                return NULL;
        run_close_notify(run);
        run->child_source = sd_event_source_disable_unref(run->child_source);
        run->timer_source = sd_event_source_disable_unref(run->timer_source);
        run->report_source = sd_event_source_disable_unref(run->report_source);
        run_close_output(run);
        free(run->line);
        free(run);
        return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(DirectRun *, run_free);

static void run_unlink(DirectExecutor *x, DirectRun *run) {
        for (DirectRun **p = &x->runs; *p; p = &(*p)->next)
                if (*p == run) {
                        *p = run->next;
                        return;
                }
}

/* Output relay: one write per line, so lines from different tasks do not interleave mid-line. */
static void output_emit(DirectRun *run, const char *data, size_t n) {
        char prefix[48];
        struct iovec iov[3];
        int prefix_len = snprintf(prefix, sizeof(prefix), "[task %" PRIu64 "] ", run->id);

        iov[0] = (struct iovec){.iov_base = prefix, .iov_len = (size_t) prefix_len};
        iov[1] = (struct iovec){.iov_base = (void *) data, .iov_len = n};
        iov[2] = (struct iovec){.iov_base = (void *) "\n", .iov_len = 1};
        /* Best effort: the launcher's stderr is its log; losing a line there must not stop the task.
         * (A (void) cast does not silence glibc's warn_unused_result under _FORTIFY_SOURCE.) */
        if (writev(STDERR_FILENO, iov, 3) < 0)
                return;
}

static void output_consume(DirectRun *run, const char *buf, size_t n) {
        while (n > 0) {
                const char *nl = memchr(buf, '\n', n);
                size_t chunk = nl ? (size_t) (nl - buf) : n;
                size_t room = TASK_OUTPUT_LINE_MAX - run->line_len;

                if (chunk > room)
                        chunk = room;
                memcpy(run->line + run->line_len, buf, chunk);
                run->line_len += chunk;
                buf += chunk;
                n -= chunk;

                if (n > 0 && *buf == '\n') {
                        buf++;
                        n--;
                        output_emit(run, run->line, run->line_len);
                        run->line_len = 0;
                } else if (run->line_len == TASK_OUTPUT_LINE_MAX) {
                        output_emit(run, run->line, run->line_len); /* an over-long line is split */
                        run->line_len = 0;
                }
        }
}

/* Reads what is available. Returns 1 at EOF or on error (then the pipe is closed), 0 otherwise. */
static int output_drain(DirectRun *run, unsigned max_reads) {
        char buf[4096];

        for (unsigned i = 0; max_reads == 0 || i < max_reads; i++) {
                ssize_t n = read(run->output_fd, buf, sizeof(buf));

                if (n > 0) {
                        output_consume(run, buf, (size_t) n);
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return 0;
                /* EOF or a real error: flush the last partial line. */
                if (run->line_len > 0)
                        output_emit(run, run->line, run->line_len);
                run->line_len = 0;
                run_close_output(run);
                return 1;
        }
        return 0;
}

static int on_output(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        (void) output_drain(userdata, OUTPUT_READS_PER_WAKEUP);
        return 0;
}

/* ---- the run's NOTIFY_SOCKET ---- */

/* Closes every descriptor passed with a notification, and returns the sender's credentials. */
static bool notify_take_control(struct msghdr *mh, struct ucred *ret) {
        bool have_creds = false;

        for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
                if (c->cmsg_level != SOL_SOCKET)
                        continue;
                if (c->cmsg_type == SCM_RIGHTS) {
                        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                        size_t n_fds = n < NOTIFY_FDS_MAX ? n : NOTIFY_FDS_MAX;
                        int fds[NOTIFY_FDS_MAX];

                        memcpy(fds, CMSG_DATA(c), n_fds * sizeof(int));
                        for (size_t i = 0; i < n_fds; i++)
                                (void) close(fds[i]);
                } else if (c->cmsg_type == SCM_CREDENTIALS &&
                           c->cmsg_len == CMSG_LEN(sizeof(struct ucred))) {
                        memcpy(ret, CMSG_DATA(c), sizeof(*ret));
                        have_creds = true;
                }
        }
        return have_creds;
}

/* Whether a notification comes from the task: its user, from a process of its group. A sender that is
 * already gone cannot be placed and is not heard (systemd-notify waits until it is read). */
static bool notify_sender_ok(const DirectRun *run, const struct ucred *uc) {
        pid_t pgid;

        if (uc->uid != run->uid || uc->pid <= 0)
                return false;
        pgid = getpgid(uc->pid);
        return pgid == run->pid;
}

/* Reads up to max datagrams (0: all there are). */
static void notify_drain(DirectRun *run, unsigned max_reads) {
        for (unsigned i = 0; max_reads == 0 || i < max_reads; i++) {
                char buf[NOTIFY_DATAGRAM_MAX];
                union {
                        struct cmsghdr align;
                        char space[CMSG_SPACE(sizeof(struct ucred)) +
                                   CMSG_SPACE(sizeof(int) * NOTIFY_FDS_MAX)];
                } control = {};
                struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
                struct msghdr mh = {
                        .msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = &control,
                        .msg_controllen = sizeof(control),
                };
                _cleanup_free_ char *text = NULL;
                struct ucred uc = {};
                ssize_t n;

                n = recvmsg(run->notify_fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return; /* EAGAIN: nothing more */
                if (!notify_take_control(&mh, &uc) || !notify_sender_ok(run, &uc)) {
                        log_task(LOG_DEBUG, run->id, NULL, NULL,
                                 "Ignoring a notification from pid %d, uid %u: not from the task",
                                 (int) uc.pid, (unsigned) uc.uid);
                        continue;
                }
                if ((size_t) n > sizeof(buf) || (mh.msg_flags & MSG_TRUNC)) {
                        log_task(LOG_DEBUG, run->id, NULL, NULL, "Ignoring an over-long notification");
                        continue;
                }
                if (progress_text_from_notify(buf, (size_t) n, &text) > 0 && run->x->events.progress)
                        run->x->events.progress(run->x->userdata, run->id, text);
        }
}

static int on_notify(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        notify_drain(userdata, NOTIFY_READS_PER_WAKEUP);
        return 0;
}

/* A datagram socket with an abstract name the kernel picks (no file to clean up, none to collide
 * with). Returns the fd and "@name", the NOTIFY_SOCKET= value, in address. */
static int notify_socket_open(char *address, size_t size) {
        _cleanup_close_ int fd = -1;
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        socklen_t len = sizeof(sa_family_t);
        int one = 1;

        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0)
                return -errno;
        /* An address of the family alone: autobind. */
        if (bind(fd, (struct sockaddr *) &sa, len) < 0)
                return -errno;
        len = sizeof(sa);
        if (getsockname(fd, (struct sockaddr *) &sa, &len) < 0)
                return -errno;
        if (len <= offsetof(struct sockaddr_un, sun_path) + 1 || sa.sun_path[0] != '\0')
                return -EADDRNOTAVAIL;
        (void) snprintf(address, size, "@%.*s", (int) (len - offsetof(struct sockaddr_un, sun_path) - 1),
                        sa.sun_path + 1);
        return TAKE_FD(fd);
}

static void run_send_started(DirectRun *run) {
        char unit[32];

        if (run->started_sent)
                return;
        run->started_sent = true;
        (void) snprintf(unit, sizeof(unit), "pid:%d", (int) run->pid);
        if (run->x->events.started)
                run->x->events.started(run->x->userdata, run->id, unit);
}

static void group_kill(DirectRun *run, int sig) {
        /* The whole process group; the child may not have called setpgid() yet if we are early. */
        if (kill(-run->pid, sig) < 0 && errno == ESRCH)
                (void) kill(run->pid, sig);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata);

static int arm_timer(DirectRun *run, uint64_t usec_from_now) {
        uint64_t now;
        int r;

        if (!run->timer_source)
                return sd_event_add_time_relative(run->x->event, &run->timer_source, CLOCK_MONOTONIC,
                                                  usec_from_now, USEC_PER_MSEC, on_timer, run);
        r = sd_event_now(run->x->event, CLOCK_MONOTONIC, &now);
        if (r < 0)
                return r;
        r = sd_event_source_set_time(run->timer_source, now + usec_from_now);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(run->timer_source, SD_EVENT_ONESHOT);
}

static void start_termination(DirectRun *run, const char *reason) {
        if (run->kill_stage != KILL_NONE || run->exited)
                return;
        run->kill_reason = reason;
        run->kill_stage = KILL_TERM_SENT;
        group_kill(run, SIGTERM);
        group_kill(run, SIGCONT); /* a stopped process must be able to act on TERM */
        if (arm_timer(run, run->x->kill_grace_usec) < 0) {
                /* Without a timer there is no second chance: kill now rather than never. */
                run->kill_stage = KILL_KILL_SENT;
                group_kill(run, SIGKILL);
        }
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        DirectRun *run = userdata;

        if (run->exited)
                return 0;
        if (run->kill_stage == KILL_NONE) {
                log_task(LOG_NOTICE, run->id, NULL, NULL,
                         "Task ran longer than %" PRIu64 " s, terminating it", run->timeout_sec);
                start_termination(run, "timeout");
        } else if (run->kill_stage == KILL_TERM_SENT) {
                log_task(LOG_NOTICE, run->id, NULL, NULL, "Task still running after SIGTERM, killing it");
                run->kill_stage = KILL_KILL_SENT;
                group_kill(run, SIGKILL);
        }
        return 0;
}

static void fill_result(DirectRun *run, int code, int status, const struct rusage *ru, RunResult *res) {
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

        if (run->exec_failed) {
                /* The task never ran: its 127 is ours, not its exit status. */
                res->has_exit_status = 0;
                res->exit_status = 0;
                res->signal = 0;
                strcpy(res->result, "resources");
                memcpy(res->error, run->exec_error, sizeof(res->error));
        } else if (run->kill_reason) {
                strcpy(res->result, run->kill_reason);
                if (streq(run->kill_reason, "timeout"))
                        (void) snprintf(res->error, sizeof(res->error),
                                        "ran longer than timeout_sec=%" PRIu64, run->timeout_sec);
        } else if (code == CLD_EXITED)
                strcpy(res->result, status == 0 ? "success" : "exit-code");
        else
                strcpy(res->result, code == CLD_DUMPED ? "core-dump" : "signal");
}

/* Reports the run's end, from a defer source of its own: the handler may release this run (freeing it
 * and its sources) or launch new runs, which must not happen inside on_child() while it still works on
 * the run. */
static int on_report(sd_event_source *s, void *userdata) {
        DirectRun *run = userdata;
        DirectExecutor *x = run->x;
        RunResult res;

        run->report_source = sd_event_source_disable_unref(run->report_source);
        if (run->finished)
                return 0;
        if (!run->exec_failed)
                run_send_started(run);
        run->finished = true;
        /* The handler may call back into us (even release this run): use only the copy from here on. */
        res = run->result;
        if (x->events.finished)
                x->events.finished(x->userdata, run->id, &res);
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
        DirectRun *run = userdata;
        struct rusage ru = {};
        int code = CLD_EXITED, status = 0, wstatus = 0, wait_error = 0;
        bool have_rusage = false;
        pid_t p;

        /* What the task said on its socket first: its last progress goes before the result, and its
         * senders can still be placed in its process group (the main process is a zombie until it is
         * reaped below, the others alive until the kill). */
        if (run->notify_fd >= 0)
                notify_drain(run, 0);

        /* Whatever is left of the task's process group goes with its main process, as a unit's
         * processes do when the service ends. The zombie still holds the pid, so the group id cannot
         * have been reused yet. */
        (void) kill(-run->pid, SIGKILL);

        /* Reap it ourselves (sd-event would after this callback) to get its resource usage. */
        do
                p = wait4(run->pid, &wstatus, WNOHANG, &ru);
        while (p < 0 && errno == EINTR);
        if (p < 0)
                wait_error = errno; /* reaped by someone else (SIGCHLD ignored?): the status is gone */
        if (p == 0)
                return 0; /* not exited after all (a spurious wakeup): keep watching */
        run->child_source = sd_event_source_disable_unref(run->child_source);
        if (p == run->pid) {
                have_rusage = true;
                if (WIFEXITED(wstatus)) {
                        code = CLD_EXITED;
                        status = WEXITSTATUS(wstatus);
                } else if (WIFSIGNALED(wstatus)) {
                        code = WCOREDUMP(wstatus) ? CLD_DUMPED : CLD_KILLED;
                        status = WTERMSIG(wstatus);
                }
        }

        /* Nothing the task left behind is heard from now on. */
        run_close_notify(run);
        /* The child is gone, so everything it wrote before dying is in the pipe. */
        if (run->output_fd >= 0)
                (void) output_drain(run, 0);
        /* Something the task started may still hold the output pipe; we do not wait for it. */
        run_close_output(run);
        run->timer_source = sd_event_source_disable_unref(run->timer_source);

        fill_result(run, code, status, have_rusage ? &ru : NULL, &run->result);
        if (wait_error != 0 && !run->exec_failed) {
                /* Not knowing how it ended is not success. */
                run->result.has_exit_status = 0;
                run->result.exit_status = 0;
                run->result.signal = 0;
                strcpy(run->result.result, "lost");
                (void) snprintf(run->result.error, sizeof(run->result.error),
                                "cannot collect the exit status: %s", strerror(wait_error));
        }
        run->exited = true;
        if (sd_event_add_defer(run->x->event, &run->report_source, on_report, run) < 0) {
                /* No memory for the defer source: report now rather than never. */
                (void) on_report(NULL, run);
        }
        return 0;
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
                int r = -errno;
                (void) close(p[0]);
                (void) close(p[1]);
                return r;
        }
        *ret_read = p[0];
        return p[1];
}

/* The child's descriptors, and our end of its output pipe. */
typedef struct ChildFds {
        int stdin_fd;
        int output_w, output_r; /* output_r: -1 when the output goes to the journal */
} ChildFds;

#define CHILD_FDS_NONE ((ChildFds){-1, -1, -1})

static void child_fds_close(ChildFds *f) {
        closep(&f->stdin_fd);
        closep(&f->output_w);
        closep(&f->output_r);
        *f = CHILD_FDS_NONE;
}

static int child_fds_open(DirectExecutor *x, const Launch *l, ChildFds *f) {
        int r;

        r = f->stdin_fd = open_stdin(l);
        if (r < 0)
                return r;
        r = f->output_w = open_output(x, l->id, &f->output_r);
        return r < 0 ? r : 0;
}

static int launch_allowed(DirectExecutor *x, const Launch *l, bool root) {
        if (!l || !l->def || l->id == 0 || !l->argv || !l->argv[0])
                return -EINVAL;
        if (run_find(x, l->id))
                return -EEXIST;
        /* Without root we cannot become anybody else: refuse rather than run as the wrong user. */
        if (!root && (l->def->uid != geteuid() || l->def->gid != getegid()))
                return -EPERM;
        return 0;
}

static int run_new(DirectExecutor *x, const Launch *l, bool relay_output, DirectRun **ret) {
        _cleanup_(run_freep) DirectRun *run = NULL;

        run = calloc(1, sizeof(*run));
        if (!run)
                return -ENOMEM;
        *run = (DirectRun){.x = x,
                           .id = l->id,
                           .timeout_sec = l->def->timeout_sec,
                           .output_fd = -1,
                           .notify_fd = -1,
                           .uid = l->def->uid};
        if (relay_output) {
                run->line = malloc(TASK_OUTPUT_LINE_MAX);
                if (!run->line)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(run);
        return 0;
}

/* Starts the child, which becomes the task, and takes what it reported: its pid and pidfd, and
 * whether its exec failed. */
static int spawn(DirectRun *run, DirectChild *child, const ChildFds *fds, int *ret_pidfd) {
        pid_t pid;

        child->stdin_fd = fds->stdin_fd;
        child->output_fd = fds->output_w;
        pid = direct_child_spawn(child, ret_pidfd);
        if (pid < 0)
                return pid;
        run->pid = pid;
        if (child->failure.error != 0) {
                child->failure.message[sizeof(child->failure.message) - 1] = '\0';
                run->exec_failed = true;
                (void) snprintf(run->exec_error, sizeof(run->exec_error), "%s: %s", child->failure.message,
                                strerror(child->failure.error));
        }
        return 0;
}

/* Watches the child's exit (its pidfd, which the run takes), its output, and its timeout. Takes our
 * end of the output pipe. */
static int run_watch(DirectRun *run, int pidfd, ChildFds *fds) {
        DirectExecutor *x = run->x;
        int r;

        r = sd_event_add_io(x->event, &run->child_source, pidfd, EPOLLIN, on_child, run);
        if (r < 0) {
                (void) close(pidfd);
                return r;
        }
        (void) sd_event_source_set_io_fd_own(run->child_source, true);
        if (fds->output_r >= 0) {
                r = sd_event_add_io(x->event, &run->output_source, fds->output_r, EPOLLIN, on_output, run);
                if (r < 0)
                        return r;
                run->output_fd = TAKE_FD(fds->output_r);
        }
        if (run->notify_fd >= 0) {
                r = sd_event_add_io(x->event, &run->notify_source, run->notify_fd, EPOLLIN, on_notify, run);
                if (r < 0)
                        return r;
        }
        if (run->timeout_sec > 0)
                return arm_timer(run, run->timeout_sec * USEC_PER_SEC);
        return 0;
}

/* Nothing was reported yet, so the run must not happen at all. The child has not exec'd for long, if at
 * all; reaping it after SIGKILL returns at once. */
static void kill_unreported(pid_t pid) {
        (void) kill(-pid, SIGKILL);
        (void) kill(pid, SIGKILL);
        (void) waitpid(pid, NULL, 0);
}

static int direct_launch(Executor *e, const Launch *l) {
        DirectExecutor *x = (DirectExecutor *) e;
        _cleanup_(direct_child_done) DirectChild child = {};
        _cleanup_(child_fds_close) ChildFds fds = CHILD_FDS_NONE;
        _cleanup_(run_freep) DirectRun *run = NULL;
        _cleanup_close_ int notify_fd = -1;
        char notify_address[sizeof(((struct sockaddr_un *) NULL)->sun_path) + 1];
        bool root = geteuid() == 0;
        DirectRun *started;
        int pidfd, r;

        r = launch_allowed(x, l, root);
        if (r < 0)
                return r;
        /* Without its socket the task still runs; it only cannot report progress. */
        notify_fd = notify_socket_open(notify_address, sizeof(notify_address));
        if (notify_fd < 0)
                log_task_internal(LOG_WARNING, notify_fd, l->id, l->def->name, NULL,
                                  "Cannot make a notification socket for task %" PRIu64 ": %m", l->id);
        r = direct_child_prepare(l, root, notify_fd >= 0 ? notify_address : NULL, &child);
        if (r < 0)
                return r;
        r = child_fds_open(x, l, &fds);
        if (r < 0)
                return r;
        r = run_new(x, l, fds.output_r >= 0, &run);
        if (r < 0)
                return r;
        run->notify_fd = TAKE_FD(notify_fd);

        r = spawn(run, &child, &fds, &pidfd);
        if (r < 0)
                return r;
        r = run_watch(run, pidfd, &fds);
        if (r < 0) {
                kill_unreported(run->pid);
                return r;
        }

        run->next = x->runs;
        x->runs = started = TAKE_PTR(run);
        /* Its exec is done: the start is reported now (the manager expects it before we return). */
        if (!started->exec_failed)
                run_send_started(started);
        return 0;
}

static int direct_stop(Executor *e, uint64_t id) {
        DirectExecutor *x = (DirectExecutor *) e;
        DirectRun *run = run_find(x, id);

        if (!run)
                return -ESRCH;
        start_termination(run, "cancelled"); /* no-op if it already ended or is being terminated */
        return 0;
}

static int direct_release(Executor *e, uint64_t id) {
        DirectExecutor *x = (DirectExecutor *) e;
        DirectRun *run = run_find(x, id);

        if (!run)
                return -ESRCH;
        if (!run->finished)
                return -EBUSY;
        run_unlink(x, run);
        run_free(run);
        return 0;
}

/* Runs still going are left running (as units would be); their results are lost with us. */
static Executor *direct_free(Executor *e) {
        DirectExecutor *x = (DirectExecutor *) e;

        if (!x)
                return NULL;
        while (x->runs) {
                DirectRun *run = x->runs;
                x->runs = run->next;
                run_free(run);
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

int executor_direct_new_with_settings(sd_event *event, const ExecutorEvents *events, void *userdata,
                                      const DirectExecutorSettings *settings, Executor **ret) {
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
        x->kill_grace_usec =
                settings && settings->kill_grace_usec ? settings->kill_grace_usec : KILL_GRACE_USEC;
        x->journal_socket =
                settings && settings->journal_socket ? settings->journal_socket : JOURNAL_SOCKET_PATH;
        *ret = &x->base;
        return 0;
}

int executor_direct_new(sd_event *event, const ExecutorEvents *events, void *userdata, Executor **ret) {
        return executor_direct_new_with_settings(event, events, userdata, NULL, ret);
}
