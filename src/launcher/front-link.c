/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "launcher/front-link.h"
#include "shared/frame.h"
#include "shared/limits.h"
#include "shared/log.h"
#include "shared/outbuf.h"
#include "shared/paths.h"

/* Reads per wake-up of the front connection, so that a flood cannot starve child handling. */
#define READS_PER_WAKEUP 16

typedef struct FrontConn FrontConn;

struct FrontConn {
        FrontLink *link;
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
        bool replay_deferred; /* asked for before the run table was complete: starts when it is */
        uint64_t replay_after;
        FrontConn *next_dropped;
};

struct FrontLink {
        sd_event *event;
        const RunTable *runs;
        FrontLinkEvents events;
        void *userdata;
        size_t message_max;
        bool runs_complete;

        uid_t front_uid;
        bool have_front_uid;

        FrontConn *conn;
        /* Dropped connections, freed from a deferred event so that no caller up the stack is left
         * holding a freed one. */
        FrontConn *dropped;
        sd_event_source *reap;
};

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
DEFINE_TRIVIAL_CLEANUP_FUNC(FrontConn *, conn_free);

static void link_changed(FrontLink *f) {
        if (f->events.changed)
                f->events.changed(f->userdata);
}

static void free_dropped(FrontLink *f) {
        while (f->dropped) {
                FrontConn *c = f->dropped;

                f->dropped = c->next_dropped;
                conn_free(c);
        }
}

static int on_reap(sd_event_source *s, void *userdata) {
        free_dropped(userdata);
        return 0;
}

/* Detaches the connection at once (nothing more is sent on it); it is freed later, from on_reap(). */
static void conn_drop(FrontConn *c) {
        FrontLink *f = c->link;

        if (c->failed)
                return;
        c->failed = true;
        (void) sd_event_source_set_enabled(c->io, SD_EVENT_OFF);
        if (f->conn == c)
                f->conn = NULL;
        c->next_dropped = f->dropped;
        f->dropped = c;
        (void) sd_event_source_set_enabled(f->reap, SD_EVENT_ONESHOT);
        link_changed(f);
}

static void conn_fail(FrontConn *c, int error, const char *fmt, ...) _printf_(3, 4);
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

/* Flushes, then lets the replay queue more. Returns false if the connection failed. */
static bool conn_flush_and_pump(FrontConn *c) {
        int r = conn_flush(c);

        if (r < 0) {
                conn_fail(c, r, "cannot write");
                return false;
        }
        conn_replay_pump(c);
        return !c->failed;
}

static void conn_replay_start(FrontConn *c, bool list_end) {
        c->replay_list_end = c->replay_list_end || list_end;
        if (!c->link->runs_complete) {
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
        while (c->replaying && !c->failed && outbuf_pending(&c->out) < CONN_OUTPUT_HIGH_WATER) {
                const Run *run = run_table_next_after(c->link->runs, c->replay_after);
                LauncherMsg m = {};

                if (!run) {
                        c->replaying = false;
                        if (c->replay_list_end) {
                                c->replay_list_end = false;
                                m.type = LMSG_LIST_END;
                                (void) conn_send(c, &m);
                        }
                        return;
                }
                c->replay_after = run->id;
                m.id = run->id;
                if (run->finished) {
                        m.type = LMSG_FINISHED;
                        m.result = run->result;
                } else {
                        m.type = LMSG_RUNNING;
                        /* Launched, start not yet confirmed: still a live run the front must not
                         * give up on. */
                        m.unit = run->unit ? run->unit : (char *) "starting";
                }
                if (conn_send(c, &m) < 0 || run->finished || !run->progress)
                        continue;
                /* A front that (re)connects learns where a live run is. */
                m = (LauncherMsg){.type = LMSG_PROGRESS, .id = run->id, .text = run->progress};
                (void) conn_send(c, &m);
        }
}

static void conn_dispatch(FrontConn *c, const LauncherMsg *m) {
        FrontLink *f = c->link;

        switch (m->type) {
        case LMSG_LIST:
                conn_replay_start(c, true);
                break;
        case LMSG_LAUNCH:
        case LMSG_STOP:
        case LMSG_ACK:
        case LMSG_RELOAD:
                f->events.message(f->userdata, m);
                break;
        default:
                conn_fail(c, 0, "protocol violation: sent a '%s' message, which only the launcher sends",
                          lmsg_type_to_string(m->type));
                break;
        }
}

static void conn_process_input(FrontConn *c) {
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
                                  c->link->message_max);
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
                conn_dispatch(c, &m);
        }
}

/* Reads what the front sent, a bounded number of times. */
static void conn_read(FrontConn *c) {
        char buf[64 * 1024];
        int r;

        for (unsigned i = 0; i < READS_PER_WAKEUP && !c->failed; i++) {
                ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN)
                                conn_fail(c, errno, "cannot read");
                        return;
                }
                if (n == 0) {
                        if (frame_reader_pending(c->reader) > 0)
                                log_warning("Front connection closed in the middle of a message.");
                        else
                                log_info("Front disconnected.");
                        conn_drop(c);
                        return;
                }
                r = frame_reader_feed(c->reader, buf, (size_t) n);
                if (r < 0) {
                        conn_fail(c, r, "cannot buffer input");
                        return;
                }
                conn_process_input(c);
                if (outbuf_pending(&c->out) >= CONN_OUTPUT_HIGH_WATER)
                        return;
        }
}

static int conn_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        FrontConn *c = userdata;

        if ((revents & EPOLLOUT) && !conn_flush_and_pump(c))
                return 0;
        if ((revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) && outbuf_pending(&c->out) < CONN_OUTPUT_HIGH_WATER)
                conn_read(c);
        if (!c->failed && outbuf_pending(&c->out) > 0 && !conn_flush_and_pump(c))
                return 0;
        if (!c->failed) {
                /* Input held back while output was full is processed once it has drained. */
                conn_process_input(c);
                conn_update_events(c);
        }
        return 0;
}

static bool peer_allowed(const FrontLink *f, uid_t uid) {
        return uid == 0 || uid == geteuid() || (f->have_front_uid && uid == f->front_uid);
}

/* The peer's credentials, if it may connect. Returns 0, or -EPERM after logging why not. */
static int check_peer(FrontLink *f, int fd, struct ucred *ret) {
        struct ucred uc = {};
        socklen_t len = sizeof(uc);

        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0) {
                log_warning_errno(errno, "Cannot identify a connecting peer, refusing it: %m");
                return -EPERM;
        }
        if (!peer_allowed(f, uc.uid)) {
                log_warning(
                        "Refusing connection from uid %u (pid %d): only the front (root, uid %u%s%s) may "
                        "connect.",
                        (unsigned) uc.uid, (int) uc.pid, (unsigned) geteuid(),
                        f->have_front_uid ? " or user " : "", f->have_front_uid ? FRONT_USER : "");
                return -EPERM;
        }
        *ret = uc;
        return 0;
}

static int conn_new(FrontLink *f, int fd, const struct ucred *uc, FrontConn **ret) {
        _cleanup_(conn_freep) FrontConn *c = NULL;
        int r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        *c = (FrontConn){.link = f, .fd = -1, .uid = uc->uid, .pid = uc->pid};
        r = frame_reader_new(f->message_max, &c->reader);
        if (r < 0)
                return r;
        r = sd_event_add_io(f->event, &c->io, fd, EPOLLIN, conn_io, c);
        if (r < 0)
                return r;
        c->fd = fd;
        *ret = TAKE_PTR(c);
        return 0;
}

void front_link_accept(FrontLink *f, int fd) {
        _cleanup_close_ int owned_fd = fd;
        struct ucred uc;
        FrontConn *c;
        int r;

        if (check_peer(f, fd, &uc) < 0)
                return;
        r = conn_new(f, fd, &uc, &c);
        if (r < 0) {
                log_error_errno(r, "Cannot set up the front's connection: %m");
                return;
        }
        TAKE_FD(owned_fd);

        /* One front at a time: a new connection means the old one is stale (a restarted front). */
        if (f->conn) {
                log_info("A new front connection replaces the previous one.");
                conn_drop(f->conn);
        }
        f->conn = c;
        log_info("Front connected (uid %u, pid %d).", (unsigned) uc.uid, (int) uc.pid);

        /* Everything it may have missed: held results and live runs. */
        conn_replay_start(c, false);
        if (outbuf_pending(&c->out) > 0 && !conn_flush_and_pump(c))
                return;
        conn_update_events(c);
        link_changed(f);
}

bool front_link_connected(const FrontLink *f) {
        return f->conn != NULL;
}

int front_link_send(FrontLink *f, const LauncherMsg *m) {
        return conn_send(f->conn, m);
}

void front_link_flush(FrontLink *f) {
        if (f->conn && outbuf_pending(&f->conn->out) > 0)
                (void) conn_flush(f->conn);
}

void front_link_resolve_front_user(FrontLink *f) {
        struct passwd *pw;

        errno = 0;
        pw = getpwnam(FRONT_USER);
        f->have_front_uid = pw != NULL;
        if (pw)
                f->front_uid = pw->pw_uid;
}

void front_link_set_message_max(FrontLink *f, size_t bytes) {
        f->message_max = bytes;
        if (f->conn)
                frame_reader_set_max(f->conn->reader, bytes);
}

void front_link_set_runs_complete(FrontLink *f, bool complete) {
        f->runs_complete = complete;
        if (complete && f->conn && f->conn->replay_deferred)
                conn_replay_start(f->conn, false);
}

int front_link_new(sd_event *event, const RunTable *runs, size_t message_max, const FrontLinkEvents *events,
                   void *userdata, FrontLink **ret) {
        _cleanup_(front_link_freep) FrontLink *f = NULL;
        int r;

        if (!event || !runs || !events || !events->message || !ret)
                return -EINVAL;
        f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        f->event = sd_event_ref(event);
        f->runs = runs;
        f->message_max = message_max;
        f->events = *events;
        f->userdata = userdata;
        /* Made now, so that dropping a connection later cannot fail. */
        r = sd_event_add_defer(event, &f->reap, on_reap, f);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(f->reap, SD_EVENT_OFF);
        *ret = TAKE_PTR(f);
        return 0;
}

FrontLink *front_link_free(FrontLink *f) {
        if (!f)
                return NULL;
        conn_free(f->conn);
        free_dropped(f);
        sd_event_source_disable_unref(f->reap);
        sd_event_unref(f->event);
        free(f);
        return NULL;
}
