/* SPDX-License-Identifier: MIT */
/*
 * asynctask-launcher: the privileged half. It accepts one connection at a time, from the front only
 * (root, its own uid or the "asynctask" user), re-validates every launch against its own copy of the
 * config, runs it through an executor, and keeps each finished result until the front acknowledges
 * it, so results survive a restart of the front. A malformed message costs the connection (the front
 * reconnects), never the launcher.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "shared/config.h"
#include "shared/daemon-cli.h"
#include "launcher/executor.h"
#include "shared/frame.h"
#include "shared/limits.h"
#include "shared/listen-unix.h"
#include "shared/log.h"
#include "shared/lproto.h"
#include "shared/outbuf.h"
#include "shared/util.h"

/* The front's messages: a launch carries up to one client frame's stdin, base64-encoded. */
#define LAUNCHER_FRAME_MAX LAUNCHER_MSG_BYTES_MAX
/* Reads per wake-up of the front connection, so that a flood cannot starve child handling. */
#define READS_PER_WAKEUP 16

#define FRONT_USER "asynctask"

typedef struct Launcher Launcher;

typedef struct Run {
        uint64_t id;
        char *name; /* task name or "command", for logs */
        char *unit; /* NULL until the executor reports the start */
        bool finished;
        RunResult result;
} Run;

typedef struct FrontConn {
        Launcher *l;
        int fd;
        uid_t uid;
        pid_t pid;
        sd_event_source *io;
        FrameReader *reader;
        OutBuf out; /* messages queued for the front */
        bool failed;
        /* Replay of held results and live runs, in id order, paced by the output buffer. */
        bool replaying;
        bool replay_list_end; /* answer to "list": end with list_end */
        bool replay_deferred; /* asked for before the executor was ready: starts when it is */
        uint64_t replay_after;
} FrontConn;

typedef struct Listener {
        int fd;
        sd_event_source *source;
        char *created_path; /* a socket file we made (and remove at exit) */
} Listener;

struct Launcher {
        sd_event *event;
        const char *config_path;
        Config *config;
        Executor *executor;
        const char *executor_name;
        ExecutorType executor_type;
        /* The executor has reported the runs left from before (or EXECUTOR_READY_WAIT_USEC passed).
         * Until then the run table may lack some still running: the replay to the front waits. */
        bool executor_ready;
        sd_event_source *ready_timer;

        Listener *listeners;
        size_t n_listeners;
        FrontConn *conn;
        sd_event_source *reap_conns;
        FrontConn **dead_conns;
        size_t n_dead_conns;

        uid_t front_uid;
        bool have_front_uid;

        Run **runs; /* sorted by id */
        size_t n_runs, cap_runs;
};

/* ---- the run table ---- */

static size_t run_lower_bound(const Launcher *l, uint64_t id) {
        size_t lo = 0, hi = l->n_runs;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (l->runs[mid]->id < id)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

static Run *run_find(const Launcher *l, uint64_t id) {
        size_t i = run_lower_bound(l, id);
        return i < l->n_runs && l->runs[i]->id == id ? l->runs[i] : NULL;
}

static Run *run_next_after(const Launcher *l, uint64_t id) {
        size_t i = id == UINT64_MAX ? l->n_runs : run_lower_bound(l, id + 1);
        return i < l->n_runs ? l->runs[i] : NULL;
}

static Run *run_add(Launcher *l, uint64_t id, const char *name) {
        size_t i = run_lower_bound(l, id);
        Run *r;

        if (l->n_runs == l->cap_runs) {
                size_t cap = l->cap_runs ? l->cap_runs * 2 : 64;
                Run **p = realloc(l->runs, cap * sizeof(*p));
                if (!p)
                        return NULL;
                l->runs = p;
                l->cap_runs = cap;
        }
        r = calloc(1, sizeof(*r));
        if (!r)
                return NULL;
        r->id = id;
        r->name = strdup(name ? name : "?");
        if (!r->name) {
                free(r);
                return NULL;
        }
        memmove(l->runs + i + 1, l->runs + i, (l->n_runs - i) * sizeof(*l->runs));
        l->runs[i] = r;
        l->n_runs++;
        return r;
}

static void run_remove(Launcher *l, uint64_t id) {
        size_t i = run_lower_bound(l, id);
        Run *r;

        if (i >= l->n_runs || l->runs[i]->id != id)
                return;
        r = l->runs[i];
        memmove(l->runs + i, l->runs + i + 1, (l->n_runs - i - 1) * sizeof(*l->runs));
        l->n_runs--;
        free(r->name);
        free(r->unit);
        free(r);
}

static void run_counts(const Launcher *l, size_t *ret_running, size_t *ret_held) {
        size_t running = 0, held = 0;

        for (size_t i = 0; i < l->n_runs; i++)
                if (l->runs[i]->finished)
                        held++;
                else
                        running++;
        *ret_running = running;
        *ret_held = held;
}

static void update_status(Launcher *l) {
        size_t running, held;

        run_counts(l, &running, &held);
        (void) sd_notifyf(false, "STATUS=%s%zu running, %zu result(s) awaiting acknowledgement, front %s",
                          l->executor_ready ? "" : "Looking for runs left from before; ", running, held,
                          l->conn ? "connected" : "not connected");
}

/* ---- the front connection ---- */

static void conn_fail(FrontConn *c, int error, const char *fmt, ...) _printf_(3, 4);
static int conn_flush(FrontConn *c);
static void conn_replay_pump(FrontConn *c);

static FrontConn *conn_free(FrontConn *c) {
        if (!c)
                return NULL;
        sd_event_source_disable_unref(c->io);
        if (c->fd >= 0)
                (void) close(c->fd);
        frame_reader_free(c->reader);
        outbuf_done(&c->out);
        free(c);
        return NULL;
}

static int reap_conns(sd_event_source *s, void *userdata) {
        Launcher *l = userdata;

        for (size_t i = 0; i < l->n_dead_conns; i++)
                conn_free(l->dead_conns[i]);
        l->n_dead_conns = 0;
        return 0;
}

/* Detaches the connection at once (nothing more is sent on it) and frees it from a deferred event, so
 * that no caller up the stack is left holding a freed connection. */
static void conn_drop(FrontConn *c) {
        Launcher *l = c->l;
        FrontConn **p;

        if (c->failed)
                return;
        c->failed = true;
        (void) sd_event_source_set_enabled(c->io, SD_EVENT_OFF);
        if (l->conn == c)
                l->conn = NULL;

        p = realloc(l->dead_conns, (l->n_dead_conns + 1) * sizeof(*p));
        if (!p) {
                /* Cannot defer: leak the small struct rather than free it under a caller. */
                (void) close(c->fd);
                c->fd = -1;
                return;
        }
        l->dead_conns = p;
        l->dead_conns[l->n_dead_conns++] = c;
        if (!l->reap_conns)
                (void) sd_event_add_defer(l->event, &l->reap_conns, reap_conns, l);
        (void) sd_event_source_set_enabled(l->reap_conns, SD_EVENT_ONESHOT);
        update_status(l);
}

static void conn_fail(FrontConn *c, int error, const char *fmt, ...) {
        char msg[256];
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (error != 0)
                log_warning_errno(error, "Front connection (uid %u, pid %d): %s: %m; closing it.",
                                  (unsigned) c->uid, (int) c->pid, msg);
        else
                log_warning("Front connection (uid %u, pid %d): %s; closing it.", (unsigned) c->uid,
                            (int) c->pid, msg);
        conn_drop(c);
}

static void conn_update_events(FrontConn *c) {
        uint32_t events = 0;

        if (c->failed)
                return;
        /* Stop reading requests while the front does not read our answers. */
        if (outbuf_pending(&c->out) < CONN_OUTPUT_HIGH_WATER)
                events |= EPOLLIN;
        if (outbuf_pending(&c->out) > 0)
                events |= EPOLLOUT;
        (void) sd_event_source_set_io_events(c->io, events);
}

static int conn_send(FrontConn *c, const LauncherMsg *m) {
        _cleanup_free_ char *line = NULL;
        size_t n;

        if (!c || c->failed)
                return -ENOTCONN;
        line = lmsg_format(m, &n);
        if (!line) {
                log_error_errno(ENOMEM, "Cannot format a '%s' message: %m", lmsg_type_to_string(m->type));
                return -ENOMEM;
        }
        if (outbuf_pending(&c->out) + n > LAUNCHER_OUTPUT_MAX) {
                conn_fail(c, 0, "the front does not read its messages (%zu bytes queued)",
                          outbuf_pending(&c->out));
                return -ENOBUFS;
        }
        if (outbuf_append(&c->out, line, n) < 0) {
                conn_fail(c, ENOMEM, "cannot queue a message");
                return -ENOMEM;
        }
        conn_update_events(c);
        return 0;
}

static int conn_flush(FrontConn *c) {
        int r = outbuf_flush(&c->out, c->fd);

        /* Give back a buffer a big replay grew. */
        outbuf_trim(&c->out, CONN_OUTPUT_HIGH_WATER);
        return r;
}

static void conn_replay_start(FrontConn *c, bool list_end) {
        c->replay_list_end = c->replay_list_end || list_end;
        if (!c->l->executor_ready) {
                /* A list now would miss runs left from before that are still running, and the front
                 * would record them as lost. */
                c->replay_deferred = true;
                return;
        }
        c->replay_deferred = false;
        c->replaying = true;
        c->replay_after = 0;
        conn_replay_pump(c);
}

/* Sends held results ("finished") and live runs ("running") in id order while the output buffer has
 * room; resumes when it drains. A run that changes meanwhile is reported again by its own event. */
static void conn_replay_pump(FrontConn *c) {
        Launcher *l = c->l;

        while (c->replaying && !c->failed && outbuf_pending(&c->out) < CONN_OUTPUT_HIGH_WATER) {
                Run *r = run_next_after(l, c->replay_after);
                LauncherMsg m = {};

                if (!r) {
                        c->replaying = false;
                        if (c->replay_list_end) {
                                c->replay_list_end = false;
                                m.type = LMSG_LIST_END;
                                (void) conn_send(c, &m);
                        }
                        return;
                }
                c->replay_after = r->id;
                m.id = r->id;
                if (r->finished) {
                        m.type = LMSG_FINISHED;
                        m.result = r->result;
                } else {
                        m.type = LMSG_RUNNING;
                        /* Launched, start not yet confirmed: still a live run the front must not
                         * give up on. */
                        m.unit = r->unit ? r->unit : "starting";
                }
                (void) conn_send(c, &m);
        }
}

/* ---- configuration ---- */

typedef struct ConfigErrors {
        unsigned n;
        char first[256];
} ConfigErrors;

static void on_config_error(const char *file, const char *key, const char *message, void *userdata) {
        ConfigErrors *e = userdata;

        log_error("%s: %s%s%s", file, key, key[0] ? ": " : "", message);
        if (e->n++ == 0)
                (void) snprintf(e->first, sizeof(e->first), "%s: %s%s%s", file, key, key[0] ? ": " : "",
                                message);
}

static int load_config(const char *path, ConfigErrors *errors, Config **ret) {
        int r = config_load(path, on_config_error, errors, ret);

        if (r < 0 && errors->n == 0) {
                /* Nothing reported (out of memory, say): say it ourselves. */
                on_config_error(path, "", strerror(-r), errors);
        }
        return r;
}

static ExecutorType effective_executor(ExecutorType t) {
        if (t == EXECUTOR_AUTO)
                return sd_booted() > 0 ? EXECUTOR_SYSTEMD : EXECUTOR_DIRECT;
        return t;
}

static void resolve_front_user(Launcher *l) {
        struct passwd *pw;

        /* Looked up at start and on reload, never per connection (NSS may block). */
        errno = 0;
        pw = getpwnam(FRONT_USER);
        l->have_front_uid = pw != NULL;
        if (pw)
                l->front_uid = pw->pw_uid;
}

/* Reloads the config from disk. Returns 0, or -EINVAL with *ret_error describing the first problem
 * (then the old config stays in effect). */
static int launcher_reload(Launcher *l, char *error, size_t error_size) {
        ConfigErrors errors = {};
        Config *c = NULL;
        ExecutorType want;
        int r;

        /* First, before any work: systemd on 252 otherwise races ExecReload= against us. */
        (void) sd_notify(false, "RELOADING=1\nSTATUS=Reloading configuration");
        log_info("Reloading configuration from %s.", l->config_path);

        r = load_config(l->config_path, &errors, &c);
        if (r < 0) {
                log_warning("Keeping the previous configuration: %u problem(s) in the new one.", errors.n);
                char more[48] = "";

                if (errors.n > 1)
                        (void) snprintf(more, sizeof(more), " (and %u more)", errors.n - 1);
                /* The count survives even when the first message has to be cut. */
                (void) snprintf(error, error_size, "%.*s%s", (int) (error_size - strlen(more) - 1),
                                errors.first, more);
        } else {
                want = effective_executor(c->executor);
                if (want != l->executor_type)
                        log_warning("The executor setting changed; it takes effect at the next start (still "
                                    "using %s).",
                                    l->executor_name);
                if (!streq_ptr(c->launcher_socket, l->config->launcher_socket))
                        log_notice("The launcher socket path changed; it takes effect at the next start.");
                /* Runs in progress keep what they were started with: executors copy what they need. */
                config_free(l->config);
                l->config = c;
                resolve_front_user(l);
                log_info("Configuration reloaded: %zu task(s), %zu command(s).", c->n_tasks, c->n_commands);
        }

        (void) sd_notify(false, "READY=1");
        update_status(l);
        return r < 0 ? -EINVAL : 0;
}

/* ---- handling the front's messages ---- */

static void send_rejected(FrontConn *c, uint64_t id, const char *name, const char *fmt, ...) _printf_(4, 5);
static void send_rejected(FrontConn *c, uint64_t id, const char *name, const char *fmt, ...) {
        char error[256];
        LauncherMsg m = {.type = LMSG_REJECTED, .id = id, .error = error};
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(error, sizeof(error), fmt, ap);
        va_end(ap);
        log_task(LOG_WARNING, id, name, NULL, "Rejecting launch of task %" PRIu64 ": %s", id, error);
        (void) conn_send(c, &m);
}

static void handle_launch(Launcher *l, FrontConn *c, const LauncherMsg *m) {
        _cleanup_free_ char **argv = NULL;
        const TaskDef *def;
        const char *name;
        Launch launch;
        size_t running, held, n = 0;
        Run *run;
        int r;

        run = run_find(l, m->id);
        if (run && !run->finished) {
                send_rejected(c, m->id, run->name, "task %" PRIu64 " is already running", m->id);
                return;
        }
        if (run) {
                /* A new attempt means the front has recorded the previous result. */
                log_debug("Task %" PRIu64 " launched again; dropping its previous, unacknowledged result.",
                          m->id);
                (void) executor_release(l->executor, m->id);
                run_remove(l, m->id);
        }

        if (m->task) {
                def = config_find_task(l->config, m->task);
                if (!def) {
                        send_rejected(c, m->id, m->task,
                                      "no task named '%s' in the launcher's configuration", m->task);
                        return;
                }
                name = def->name;
        } else {
                def = config_find_command(l->config, m->cmd);
                if (!def || !def->is_command) {
                        send_rejected(c, m->id, NULL, "the command is not on the launcher's commands list");
                        return;
                }
                name = "command";
        }

        if (def->is_command && m->n_args > 0) {
                send_rejected(c, m->id, name, "commands take no arguments");
                return;
        }
        if (m->n_args > def->max_args) {
                send_rejected(c, m->id, name, "task '%s' takes at most %u argument(s), got %zu", name,
                              def->max_args, m->n_args);
                return;
        }
        for (size_t i = 0; i < m->n_args; i++)
                if (strlen(m->args[i]) > TASK_ARG_BYTES_MAX) {
                        send_rejected(c, m->id, name, "argument %zu is longer than %d bytes", i + 1,
                                      TASK_ARG_BYTES_MAX);
                        return;
                }
        run_counts(l, &running, &held);
        if (running >= RUNNING_MAX) {
                send_rejected(c, m->id, name, "the launcher already runs %zu tasks", running);
                return;
        }

        /* argv comes from the config; client arguments only ever follow it, as separate elements. */
        if (def->is_command) {
                argv = calloc(4, sizeof(char *));
                if (!argv)
                        goto oom;
                argv[n++] = (char *) "/bin/sh";
                argv[n++] = (char *) "-c";
                argv[n++] = def->name;
        } else {
                if (def->n_exec == 0 || !def->exec || !def->exec[0]) {
                        send_rejected(c, m->id, name, "task '%s' has no command line", name);
                        return;
                }
                argv = calloc(def->n_exec + m->n_args + 1, sizeof(char *));
                if (!argv)
                        goto oom;
                for (size_t i = 0; i < def->n_exec; i++)
                        argv[n++] = def->exec[i];
                for (size_t i = 0; i < m->n_args; i++)
                        argv[n++] = m->args[i];
        }
        argv[n] = NULL;

        /* In the table before the executor runs: it may report the start before returning. */
        if (!run_add(l, m->id, name))
                goto oom;

        launch = (Launch){
                .id = m->id,
                .attempt = m->attempt,
                .def = def,
                .argv = argv,
                .stdin_data = m->stdin_data,
                .stdin_len = m->stdin_len,
                .submitter = m->submitter,
        };
        r = executor_launch(l->executor, &launch);
        if (r < 0) {
                run_remove(l, m->id);
                if (r == -EPERM && geteuid() != 0) {
                        if (def->uid != geteuid())
                                send_rejected(c, m->id, name,
                                              "launcher runs as uid %u and cannot switch to user %s",
                                              (unsigned) geteuid(), def->user ? def->user : "?");
                        else
                                send_rejected(c, m->id, name,
                                              "launcher runs as gid %u and cannot switch to group %s",
                                              (unsigned) getegid(), def->group ? def->group : "?");
                } else
                        send_rejected(c, m->id, name, "cannot start: %s", strerror(-r));
                return;
        }
        log_task(LOG_INFO, m->id, name, NULL, "Launching task %" PRIu64 " (%s), attempt %u, for %s.", m->id,
                 name, m->attempt, m->submitter);
        update_status(l);
        return;

oom:
        send_rejected(c, m->id, name, "out of memory");
}

static void handle_ack(Launcher *l, const LauncherMsg *m) {
        Run *run = run_find(l, m->id);
        int r;

        if (!run) {
                log_debug("Front acknowledged task %" PRIu64 ", which holds no result here; ignoring.",
                          m->id);
                return;
        }
        if (!run->finished) {
                log_debug("Front acknowledged task %" PRIu64 ", which is still running; ignoring.", m->id);
                return;
        }
        r = executor_release(l->executor, m->id);
        if (r < 0 && r != -ESRCH)
                log_warning_errno(r, "Cannot release task %" PRIu64 ": %m", m->id);
        run_remove(l, m->id);
        update_status(l);
}

static void handle_stop(Launcher *l, const LauncherMsg *m) {
        Run *run = run_find(l, m->id);
        int r;

        if (!run || run->finished) {
                log_debug("Front asked to stop task %" PRIu64 ", which is not running; ignoring.", m->id);
                return;
        }
        log_task(LOG_INFO, m->id, run->name, run->unit, "Stopping task %" PRIu64 ".", m->id);
        r = executor_stop(l->executor, m->id);
        if (r == -ESRCH)
                log_debug("The executor does not know task %" PRIu64 "; ignoring the stop.", m->id);
        else if (r < 0)
                log_warning_errno(r, "Cannot stop task %" PRIu64 ": %m", m->id);
}

static void handle_message(Launcher *l, FrontConn *c, const LauncherMsg *m) {
        switch (m->type) {
        case LMSG_LAUNCH:
                handle_launch(l, c, m);
                break;
        case LMSG_STOP:
                handle_stop(l, m);
                break;
        case LMSG_ACK:
                handle_ack(l, m);
                break;
        case LMSG_LIST:
                conn_replay_start(c, true);
                break;
        case LMSG_RELOAD: {
                char error[256] = "";
                LauncherMsg reply = {.type = LMSG_RELOADED};

                if (launcher_reload(l, error, sizeof(error)) < 0)
                        reply.error = error[0] ? error : (char *) "invalid configuration";
                (void) conn_send(c, &reply);
                break;
        }
        default:
                conn_fail(c, 0, "protocol violation: sent a '%s' message, which only the launcher sends",
                          lmsg_type_to_string(m->type));
                break;
        }
}

static void conn_process_input(FrontConn *c) {
        Launcher *l = c->l;

        while (!c->failed) {
                _cleanup_(lmsg_done) LauncherMsg m = {};
                const char *line;
                size_t len;
                FrameEvent ev;
                int r;

                /* Hold further requests while the front does not read our answers. */
                if (outbuf_pending(&c->out) >= CONN_OUTPUT_HIGH_WATER)
                        return;

                ev = frame_reader_next(c->reader, &line, &len);
                if (ev == FRAME_NONE)
                        return;
                if (ev == FRAME_TOO_LARGE) {
                        conn_fail(c, 0, "protocol violation: a message longer than %zu bytes",
                                  (size_t) LAUNCHER_FRAME_MAX);
                        return;
                }
                r = lmsg_parse(line, len, &m);
                if (r == -ENOMEM) {
                        conn_fail(c, ENOMEM, "cannot decode a message");
                        return;
                }
                if (r < 0) {
                        conn_fail(c, -r, "protocol violation: malformed message");
                        return;
                }
                handle_message(l, c, &m);
        }
}

static int conn_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        FrontConn *c = userdata;
        char buf[64 * 1024];
        int r;

        if (revents & EPOLLOUT) {
                r = conn_flush(c);
                if (r < 0) {
                        conn_fail(c, r, "cannot write");
                        return 0;
                }
                conn_replay_pump(c);
        }

        if (!c->failed && (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) &&
            outbuf_pending(&c->out) < CONN_OUTPUT_HIGH_WATER) {
                for (unsigned i = 0; i < READS_PER_WAKEUP && !c->failed; i++) {
                        ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);

                        if (n < 0) {
                                if (errno == EINTR)
                                        continue;
                                if (errno == EAGAIN)
                                        break;
                                conn_fail(c, errno, "cannot read");
                                return 0;
                        }
                        if (n == 0) {
                                if (frame_reader_pending(c->reader) > 0)
                                        log_warning("Front connection closed in the middle of a message.");
                                else
                                        log_info("Front disconnected.");
                                conn_drop(c);
                                return 0;
                        }
                        r = frame_reader_feed(c->reader, buf, (size_t) n);
                        if (r < 0) {
                                conn_fail(c, r, "cannot buffer input");
                                return 0;
                        }
                        conn_process_input(c);
                        if (outbuf_pending(&c->out) >= CONN_OUTPUT_HIGH_WATER)
                                break;
                }
        }

        if (!c->failed && outbuf_pending(&c->out) > 0) {
                r = conn_flush(c);
                if (r < 0) {
                        conn_fail(c, r, "cannot write");
                        return 0;
                }
                conn_replay_pump(c);
        }
        if (!c->failed) {
                /* Input held back while output was full is processed once it has drained. */
                conn_process_input(c);
                conn_update_events(c);
        }
        return 0;
}

static bool peer_allowed(const Launcher *l, uid_t uid) {
        return uid == 0 || uid == geteuid() || (l->have_front_uid && uid == l->front_uid);
}

static void accept_connection(Launcher *l, int fd) {
        struct ucred uc = {};
        socklen_t len = sizeof(uc);
        FrontConn *c;
        int r;

        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0) {
                log_warning_errno(errno, "Cannot identify a connecting peer, refusing it: %m");
                (void) close(fd);
                return;
        }
        if (!peer_allowed(l, uc.uid)) {
                log_warning(
                        "Refusing connection from uid %u (pid %d): only the front (root, uid %u%s%s) may "
                        "connect.",
                        (unsigned) uc.uid, (int) uc.pid, (unsigned) geteuid(),
                        l->have_front_uid ? " or user " : "", l->have_front_uid ? FRONT_USER : "");
                (void) close(fd);
                return;
        }

        c = calloc(1, sizeof(*c));
        if (!c) {
                log_error_errno(ENOMEM, "Cannot accept the front's connection: %m");
                (void) close(fd);
                return;
        }
        c->l = l;
        c->fd = fd;
        c->uid = uc.uid;
        c->pid = uc.pid;
        r = frame_reader_new(LAUNCHER_FRAME_MAX, &c->reader);
        if (r >= 0)
                r = sd_event_add_io(l->event, &c->io, fd, EPOLLIN, conn_io, c);
        if (r < 0) {
                log_error_errno(r, "Cannot set up the front's connection: %m");
                conn_free(c);
                return;
        }

        /* One front at a time: a new connection means the old one is stale (a restarted front). */
        if (l->conn) {
                log_info("A new front connection replaces the previous one.");
                conn_drop(l->conn);
        }
        l->conn = c;
        log_info("Front connected (uid %u, pid %d).", (unsigned) uc.uid, (int) uc.pid);

        /* Everything it may have missed: held results and live runs. */
        conn_replay_start(c, false);
        if (outbuf_pending(&c->out) > 0 && (r = conn_flush(c)) < 0) {
                conn_fail(c, r, "cannot write");
                return;
        }
        conn_replay_pump(c);
        conn_update_events(c);
        update_status(l);
}

static int on_listener(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Launcher *l = userdata;

        for (;;) {
                int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

                if (cfd < 0) {
                        if (errno == EINTR || errno == ECONNABORTED)
                                continue;
                        if (errno != EAGAIN)
                                log_warning_errno(errno, "accept() failed: %m");
                        return 0;
                }
                accept_connection(l, cfd);
        }
}

/* ---- executor events ---- */

static void on_run_started(void *userdata, uint64_t id, const char *unit) {
        Launcher *l = userdata;
        Run *run = run_find(l, id);
        LauncherMsg m = {.type = LMSG_STARTED, .id = id, .unit = (char *) unit};
        char *u;

        if (!run) {
                /* A run the executor found (left from before us). */
                run = run_add(l, id, "?");
                if (!run) {
                        log_error_errno(ENOMEM, "Cannot track task %" PRIu64 ": %m", id);
                        return;
                }
        }
        u = strdup(unit);
        if (u) {
                free(run->unit);
                run->unit = u;
        }
        log_task(LOG_INFO, id, run->name, unit, "Task %" PRIu64 " started as %s.", id, unit);
        (void) conn_send(l->conn, &m);
        update_status(l);
}

static void on_run_finished(void *userdata, uint64_t id, const RunResult *result) {
        Launcher *l = userdata;
        Run *run = run_find(l, id);
        LauncherMsg m = {.type = LMSG_FINISHED, .id = id};

        if (!run) {
                run = run_add(l, id, "?");
                if (!run) {
                        log_error_errno(ENOMEM, "Cannot keep the result of task %" PRIu64 ": %m", id);
                        return;
                }
        }
        run->finished = true;
        run->result = *result;
        m.result = *result;

        if (result->has_exit_status)
                log_task(LOG_INFO, id, run->name, run->unit,
                         "Task %" PRIu64 " finished: %s, exit status %d%s%s", id, result->result,
                         result->exit_status, result->error[0] ? ", " : "", result->error);
        else if (result->signal > 0)
                log_task(LOG_INFO, id, run->name, run->unit, "Task %" PRIu64 " finished: %s, signal %s%s%s",
                         id, result->result, strsignal(result->signal), result->error[0] ? ", " : "",
                         result->error);
        else
                log_task(LOG_INFO, id, run->name, run->unit, "Task %" PRIu64 " finished: %s%s%s", id,
                         result->result, result->error[0] ? ", " : "", result->error);

        /* Kept until the front acknowledges it; without a front it is sent on reconnect. */
        (void) conn_send(l->conn, &m);
        update_status(l);
}

/* From now on the run table is complete: answer what the front asked meanwhile. */
static void launcher_set_executor_ready(Launcher *l) {
        l->executor_ready = true;
        l->ready_timer = sd_event_source_disable_unref(l->ready_timer);
        if (l->conn && l->conn->replay_deferred)
                conn_replay_start(l->conn, false);
        update_status(l);
}

static void on_executor_ready(void *userdata) {
        Launcher *l = userdata;

        if (l->executor_ready) {
                log_info("The %s executor has now reported the runs left from before.", l->executor_name);
                return;
        }
        log_debug("The %s executor has reported the runs left from before.", l->executor_name);
        launcher_set_executor_ready(l);
}

static int on_executor_ready_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Launcher *l = userdata;

        log_warning("The %s executor has not reported the runs left from before within %llu s; answering "
                    "the front anyway (a run it reports later is sent as it comes).",
                    l->executor_name, (unsigned long long) (EXECUTOR_READY_WAIT_USEC / USEC_PER_SEC));
        launcher_set_executor_ready(l);
        return 0;
}

static const ExecutorEvents executor_events = {
        .started = on_run_started,
        .finished = on_run_finished,
        .ready = on_executor_ready,
};

/* ---- sockets ---- */

static int add_listener(Launcher *l, int fd, const char *created_path) {
        Listener *p = realloc(l->listeners, (l->n_listeners + 1) * sizeof(*p));
        Listener *li;
        int r;

        if (!p)
                return -ENOMEM;
        l->listeners = p;
        li = &l->listeners[l->n_listeners];
        *li = (Listener){.fd = fd};
        if (created_path) {
                li->created_path = strdup(created_path);
                if (!li->created_path)
                        return -ENOMEM;
        }
        r = sd_event_add_io(l->event, &li->source, fd, EPOLLIN, on_listener, l);
        if (r < 0) {
                free(li->created_path);
                return r;
        }
        l->n_listeners++;
        return 0;
}

static int launcher_listen(Launcher *l, const char *path) {
        _cleanup_close_ int fd = -1;
        struct group *gr;
        int r;

        /* Created 0600 so that there is no moment where others could connect; opened up to the group
         * below. */
        r = path[0] == '/' ? listen_unix(path, 0600, &fd) : -EINVAL;
        if (r == -EINVAL)
                return log_error_errno(r,
                                       "Invalid socket path '%s': must be absolute and shorter than %zu "
                                       "bytes.",
                                       path, sizeof(((struct sockaddr_un){}).sun_path));
        if (r == -EADDRINUSE)
                return log_error_errno(r, "%s: another launcher is listening there.", path);
        if (r == -EEXIST)
                return log_error_errno(r, "%s exists and is not a socket; not replacing it.", path);
        if (r < 0)
                return log_error_errno(r, "Cannot listen on %s: %m", path);

        gr = getgrnam(FRONT_USER);
        if (gr) {
                /* NOFOLLOW: should the path have been swapped for a symlink since bind(), the link's
                 * target must not be the file opened up. */
                if (fchownat(AT_FDCWD, path, (uid_t) -1, gr->gr_gid, AT_SYMLINK_NOFOLLOW) < 0 ||
                    fchmodat(AT_FDCWD, path, 0660, AT_SYMLINK_NOFOLLOW) < 0)
                        log_warning_errno(errno, "Cannot give group %s access to %s, keeping it 0600: %m",
                                          FRONT_USER, path);
        }

        r = add_listener(l, fd, path);
        if (r < 0) {
                (void) unlink(path);
                return log_error_errno(r, "Cannot watch %s: %m", path);
        }
        TAKE_FD(fd);
        log_info("Listening on unix:%s%s.", path, gr ? "" : " (mode 0600: no group " FRONT_USER ")");
        return 0;
}

static int setup_sockets(Launcher *l, const DaemonArgs *args) {
        int n = sd_listen_fds(true), r;

        if (n < 0)
                return log_error_errno(n, "Cannot read the sockets passed by the service manager: %m");
        for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + n; fd++) {
                if (sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0) <= 0) {
                        log_warning("Passed fd %d is not a listening unix stream socket; closing it.", fd);
                        (void) close(fd);
                        continue;
                }
                /* sd_listen_fds() made it close-on-exec. */
                r = fd_nonblock(fd);
                if (r < 0)
                        log_warning_errno(r, "Cannot make passed fd %d non-blocking, ignoring: %m", fd);
                r = add_listener(l, fd, NULL);
                if (r < 0)
                        return log_error_errno(r, "Cannot watch passed fd %d: %m", fd);
                log_info("Listening on a socket passed by the service manager (fd %d).", fd);
        }
        if (n > 0) {
                if (l->n_listeners == 0)
                        return log_error_errno(EBADF, "None of the passed sockets is usable.");
                return 0;
        }

        for (size_t i = 0; i < args->n_listen; i++) {
                const char *spec = args->listen[i];

                if (!startswith(spec, "unix:"))
                        return log_error_errno(EINVAL,
                                               "Unsupported --listen '%s': the launcher listens on "
                                               "unix:PATH only.",
                                               spec);
                r = launcher_listen(l, spec + 5);
                if (r < 0)
                        return r;
        }
        if (args->n_listen > 0)
                return 0;

        return launcher_listen(l, l->config->launcher_socket ? l->config->launcher_socket
                                                             : LAUNCHER_SOCKET_DEFAULT);
}

/* ---- signals and life cycle ---- */

static int on_term(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Launcher *l = userdata;

        log_info("Received %s, shutting down.", strsignal((int) si->ssi_signo));
        (void) sd_notify(false, "STOPPING=1\nSTATUS=Shutting down");
        return sd_event_exit(l->event, 0);
}

static int on_hup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Launcher *l = userdata;
        char error[256];

        (void) launcher_reload(l, error, sizeof(error));
        return 0;
}

static int setup_executor(Launcher *l) {
        ExecutorType configured = l->config->executor;
        int r;

        l->executor_type = effective_executor(configured);
        if (l->executor_type == EXECUTOR_SYSTEMD) {
                r = executor_systemd_new(l->event, &executor_events, l, &l->executor);
                if (r < 0)
                        return log_error_errno(
                                r, "Cannot use the systemd executor%s: %m",
                                configured == EXECUTOR_AUTO ? " (chosen because systemd is running)" : "");
                l->executor_name = "systemd";
        } else {
                r = executor_direct_new(l->event, &executor_events, l, &l->executor);
                if (r < 0)
                        return log_error_errno(r, "Cannot set up the direct executor: %m");
                l->executor_name = "direct";
        }
        l->executor_ready = executor_ready(l->executor);
        if (!l->executor_ready) {
                r = sd_event_add_time_relative(l->event, &l->ready_timer, CLOCK_MONOTONIC,
                                               EXECUTOR_READY_WAIT_USEC, 0, on_executor_ready_timeout, l);
                if (r < 0)
                        return log_error_errno(r, "Cannot set up a timer: %m");
        }
        log_info("Using the %s executor%s.", l->executor_name,
                 configured == EXECUTOR_AUTO
                         ? (l->executor_type == EXECUTOR_SYSTEMD ? " (auto: systemd is running)"
                                                                 : " (auto: systemd is not running)")
                         : "");
        if (l->executor_type == EXECUTOR_DIRECT)
                log_notice("The direct executor does not apply sandbox settings or cpu_quota; memory_max is "
                           "applied as an address-space limit.");
        if (geteuid() != 0)
                log_notice("Not running as root: tasks can only run as uid %u; launches for other users are "
                           "rejected.",
                           (unsigned) geteuid());
        return 0;
}

static void launcher_done(Launcher *l) {
        size_t running, held;

        run_counts(l, &running, &held);
        if (running > 0 && l->executor_type == EXECUTOR_DIRECT)
                log_warning("%zu task(s) still running are left alone; their results will not be reported.",
                            running);

        /* Answer what we can without blocking. */
        if (l->conn && outbuf_pending(&l->conn->out) > 0)
                (void) conn_flush(l->conn);
        conn_free(l->conn);
        l->conn = NULL;
        reap_conns(NULL, l);
        free(l->dead_conns);
        sd_event_source_disable_unref(l->reap_conns);

        for (size_t i = 0; i < l->n_listeners; i++) {
                sd_event_source_disable_unref(l->listeners[i].source);
                (void) close(l->listeners[i].fd);
                if (l->listeners[i].created_path) {
                        (void) unlink(l->listeners[i].created_path);
                        free(l->listeners[i].created_path);
                }
        }
        free(l->listeners);

        executor_free(l->executor);
        sd_event_source_disable_unref(l->ready_timer);
        while (l->n_runs > 0)
                run_remove(l, l->runs[l->n_runs - 1]->id);
        free(l->runs);
        config_free(l->config);
        sd_event_unref(l->event);
}

static int check_config(const char *path) {
        Config *c = NULL;

        if (daemon_check_config(path, stderr, &c) < 0)
                return EXIT_FAILURE;
        printf("%s: OK, %zu task(s), %zu command(s)\n", path, c->n_tasks, c->n_commands);
        config_free(c);
        return EXIT_SUCCESS;
}

static void help(void) {
        printf("Usage: asynctask-launcher [OPTIONS]\n"
               "\n"
               "The privileged half of asynctask: runs the tasks the front daemon asks for, after checking\n"
               "them against its own configuration.\n"
               "\n"
               "  --config PATH       configuration file (default %s)\n"
               "  --check-config      validate the configuration and tasks.d, then exit\n"
               "  --listen unix:PATH  listen on this unix socket\n"
               "  --log-level LEVEL   debug, info, notice, warning or err (default info)\n"
               "  --help              show this help\n"
               "  --version           show the version\n"
               "\n"
               "Sockets passed by the service manager are used when present; else --listen; else the\n"
               "configuration's \"launcher\" path (default %s).\n",
               CONFIG_PATH_DEFAULT, LAUNCHER_SOCKET_DEFAULT);
}

/* The launcher listens on unix sockets only. */
static int check_args(const DaemonArgs *args) {
        for (size_t i = 0; i < args->n_listen; i++)
                if (!startswith(args->listen[i], "unix:") || args->listen[i][5] != '/') {
                        fprintf(stderr, "asynctask-launcher: --listen takes unix:/ABSOLUTE/PATH, not '%s'\n",
                                args->listen[i]);
                        return -EINVAL;
                }
        return 0;
}

static int run(const DaemonArgs *args) {
        Launcher l = {.config_path = args->config_path};
        ConfigErrors errors = {};
        sigset_t ss;
        int r;

        r = load_config(args->config_path, &errors, &l.config);
        if (r < 0) {
                log_error("Cannot start with this configuration (%u problem(s)).", errors.n);
                goto fail;
        }
        resolve_front_user(&l);

        /* Handled through sd-event, so blocked for normal delivery. SIGCHLD is blocked too, which does
         * not matter to the executors (the direct one watches pidfds) and keeps it from interrupting.
         * Writing to a front that went away must be an error, not death. */
        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        sigaddset(&ss, SIGHUP);
        sigaddset(&ss, SIGCHLD);
        if (sigprocmask(SIG_BLOCK, &ss, NULL) < 0) {
                r = log_error_errno(errno, "Cannot block signals: %m");
                goto fail;
        }
        (void) signal(SIGPIPE, SIG_IGN);

        r = sd_event_default(&l.event);
        if (r < 0) {
                log_error_errno(r, "Cannot create the event loop: %m");
                goto fail;
        }
        if ((r = sd_event_add_signal(l.event, NULL, SIGTERM, on_term, &l)) < 0 ||
            (r = sd_event_add_signal(l.event, NULL, SIGINT, on_term, &l)) < 0 ||
            (r = sd_event_add_signal(l.event, NULL, SIGHUP, on_hup, &l)) < 0) {
                log_error_errno(r, "Cannot watch signals: %m");
                goto fail;
        }
        r = sd_event_set_watchdog(l.event, true);
        if (r < 0)
                log_warning_errno(r, "Cannot set up the watchdog, ignoring: %m");

        r = setup_executor(&l);
        if (r < 0)
                goto fail;
        r = setup_sockets(&l, args);
        if (r < 0)
                goto fail;

        (void) sd_notify(false, "READY=1");
        update_status(&l);
        log_info("asynctask-launcher %s ready (uid %u).", ASYNCTASK_VERSION, (unsigned) geteuid());

        r = sd_event_loop(l.event);
        if (r < 0) {
                log_error_errno(r, "Event loop failed: %m");
                goto fail;
        }
        launcher_done(&l);
        return EXIT_SUCCESS;

fail:
        (void) sd_notifyf(false, "STATUS=Failed to start: %s", strerror(r < 0 ? -r : EINVAL));
        launcher_done(&l);
        return EXIT_FAILURE;
}

int main(int argc, char *argv[]) {
        static const DaemonCli cli = {
                .program = "asynctask-launcher",
                .version = ASYNCTASK_VERSION,
                .help = help,
                .check_args = check_args,
                .check_config = check_config,
                .run = run,
        };

        return daemon_main(&cli, argc, argv);
}
