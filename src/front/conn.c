/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <systemd/sd-event.h>

#include "front/conn.h"
#include "front/conn-poll.h"
#include "shared/frame.h"
#include "shared/limits.h"
#include "shared/log.h"
#include "shared/outbuf.h"
#include "front/decode.h"
#include "front/request.h"
#include "front/response.h"
#include "front/seed.h"
#include "shared/util.h"

/*
 * Where a connection stands. Input and answers are ordered: frame N+1 is not looked at before frame N
 * is answered.
 */
typedef enum ConnState {
        CONN_SERVING,  /* answering frames as they come; reading whenever no complete frame is buffered */
        CONN_WAITING,  /* a wait or reload is answered later; the next frame is held and the socket is not
                        * read until the answer is in. (Requests waiting only for a store commit do not
                        * hold the connection: see Slot.) */
        CONN_DRAINING, /* no more input (the peer shut down its side): the frames already received are
                        * answered, the output flushed, then it closes */
        CONN_CLOSED,   /* finished: the owner frees it */
} ConnState;

static const char oom_line[] = "{\"ok\":false,\"code\":\"internal\",\"error\":\"out of memory\"}\n";

/* A request whose answer cannot go out yet: its own answer waits for a store commit, or an earlier
 * request's does. Answers leave strictly in request order; meanwhile later requests are handled, so
 * a pipelining client's submissions share one commit. */
typedef struct Slot {
        Conn *conn;
        ServiceCall *call; /* pending answer; NULL once answered */
        bool answered;
        char *line; /* the answer (NULL with answered: out of memory) */
        size_t len;
        struct Slot *next;
} Slot;

/* A seed frame's submission waiting for a store commit. Seed frames get no answer, so it is not among
 * the ordered answers (a JSON answer behind it goes out without waiting for it); it only counts
 * against CONN_PENDING_MAX. */
typedef struct SeedWait {
        Conn *conn;
        ServiceCall *call;
        struct SeedWait *prev, *next;
} SeedWait;

struct Conn {
        sd_event *event;
        int fd;
        Service *service;
        Identity identity;
        ConnState state;
        bool input_done;   /* EOF seen (or shutdown read the last bytes): never read again */
        bool stopping;     /* daemon shutdown: take what the peer already sent, then drain */
        bool spoke;        /* some byte has come from the peer */
        bool grace_over;   /* stopping, and the peer has had its moment to finish a frame */
        bool in_handle;    /* inside service_handle(): an answer now is synchronous */
        bool reader_empty; /* the reader returned FRAME_NONE and nothing was fed since */
        uint64_t n_frames; /* frames taken from the reader: progress, for the frame deadline */
        /* The socket is watched edge-triggered (ConnPoll): these remember readiness until
         * recv()/send() says EAGAIN, so that input left in the socket while we held back
         * (backpressure, a wait) is read when we go on, without another wakeup. */
        bool readable;
        bool writable;
        /* No answer can reach the peer any more: it reset or closed the connection, or we shut down our
         * side at shutdown. Answers are dropped, but the input is still read and handled to its end. */
        bool output_closed;
        /* Stopping, and the peer had sent nothing more: once the answers so far are out, shut down our
         * side and read on until the peer closes (or SHUTDOWN_LINGER_USEC). */
        bool closing;
        bool broken;              /* an answer could not be queued: close */
        Slot *slots, *slots_tail; /* answers not yet in the output buffer, in request order */
        unsigned n_slots;
        Slot *blocking; /* the pending wait or reload (CONN_WAITING) */
        SeedWait *seed_waits;
        unsigned n_seed_waits;

        FrameReader *reader;
        /* One frame taken from the reader while waiting, so that we know whether more may be read. */
        FrameEvent held_event;
        char *held_line;
        size_t held_len;

        OutBuf out; /* answers queued for the peer */

        ConnPollWatch *watch;
        sd_event_source *resume; /* deferred: continue after an asynchronous answer or on shutdown */
        sd_event_source *grace;  /* shutdown: ends the moment a peer in mid-frame has to finish it */
        sd_event_source *linger; /* shutdown: ends the wait for the peer's end after our half-close */
        ConnClosedFn closed;
        void *userdata;
};

static void conn_free_slots(Conn *c) {
        while (c->slots) {
                Slot *slot = c->slots;

                c->slots = slot->next;
                service_call_free(slot->call);
                free(slot->line);
                free(slot);
        }
        c->slots_tail = c->blocking = NULL;
        c->n_slots = 0;

        /* The seed submissions settle all the same, without us. */
        while (c->seed_waits) {
                SeedWait *w = c->seed_waits;

                c->seed_waits = w->next;
                service_call_free(w->call);
                free(w);
        }
        c->n_seed_waits = 0;
}

/* Requests whose answers (or, for seed frames, commits) are outstanding. */
static unsigned conn_n_pending(const Conn *c) {
        return c->n_slots + c->n_seed_waits;
}

static void conn_close(Conn *c, int error, const char *why) {
        if (c->state == CONN_CLOSED)
                return;
        if (error != 0)
                log_debug("Closing connection from %s: %s: %s", c->identity.description, why,
                          strerror(abs(error)));
        else
                log_debug("Closing connection from %s: %s", c->identity.description, why);
        c->state = CONN_CLOSED;
        conn_free_slots(c);
        c->watch = conn_poll_remove(c->watch);
        (void) sd_event_source_set_enabled(c->resume, SD_EVENT_OFF);
        (void) sd_event_source_set_enabled(c->grace, SD_EVENT_OFF);
        (void) sd_event_source_set_enabled(c->linger, SD_EVENT_OFF);
        if (c->closed)
                c->closed(c, c->userdata); /* may free c */
}

/* Appends one answer line to the output. When even that fails (no memory) the connection is given up:
 * an answer silently missing would shift every later one onto the wrong request. */
static int conn_output_line(Conn *c, const char *line, size_t len) {
        int r;

        if (c->output_closed)
                return 0;
        r = outbuf_append(&c->out, line, len);

        if (r < 0)
                r = outbuf_append(&c->out, oom_line, sizeof(oom_line) - 1);
        if (r < 0)
                c->broken = true;
        return r;
}

static Slot *slot_push(Conn *c) {
        Slot *slot = calloc(1, sizeof(*slot));

        if (!slot) {
                c->broken = true;
                return NULL;
        }
        slot->conn = c;
        if (c->slots_tail)
                c->slots_tail->next = slot;
        else
                c->slots = slot;
        c->slots_tail = slot;
        c->n_slots++;
        return slot;
}

/* Moves the answers at the head of the queue, in order, to the output. */
static void conn_release_slots(Conn *c) {
        while (c->slots && c->slots->answered) {
                Slot *slot = c->slots;

                if (slot->line)
                        (void) conn_output_line(c, slot->line, slot->len);
                else
                        (void) conn_output_line(c, oom_line, sizeof(oom_line) - 1);
                c->slots = slot->next;
                if (!c->slots)
                        c->slots_tail = NULL;
                c->n_slots--;
                free(slot->line);
                free(slot);
        }
}

/* The pending wait or reload of slot has nobody to answer: drop it, so that the frames behind it go on
 * (their submissions stand even though no answer can be delivered). */
static void conn_abandon(Conn *c, Slot *slot) {
        slot->call = service_call_free(slot->call);
        slot->answered = true;
        if (slot == c->blocking) {
                c->blocking = NULL;
                if (c->state == CONN_WAITING)
                        c->state = c->input_done ? CONN_DRAINING : CONN_SERVING;
        }
}

static void conn_close_output(Conn *c, const char *why) {
        if (c->output_closed)
                return;
        log_debug("No more answers to %s (%s); reading on to the end of its input.", c->identity.description,
                  why);
        c->output_closed = true;
        c->writable = false;
        outbuf_clear(&c->out);
        if (c->blocking)
                conn_abandon(c, c->blocking);
        conn_release_slots(c);
}

/* Queues one answer line behind any answer still pending. */
static int conn_queue_line(Conn *c, const char *line, size_t len) {
        Slot *slot;

        if (!c->slots)
                return conn_output_line(c, line, len);
        slot = slot_push(c);
        if (!slot)
                return -ENOMEM;
        slot->answered = true;
        slot->line = malloc(len);
        if (slot->line) {
                memcpy(slot->line, line, len);
                slot->len = len;
        }
        return 0;
}

static void conn_queue_error(Conn *c, const ErrorReply *e) {
        _cleanup_free_ char *line = NULL;
        size_t len = 0;

        service_count_refusal(c->service, e->code);
        line = response_error(e, &len);
        if (line)
                (void) conn_queue_line(c, line, len);
        else
                (void) conn_queue_line(c, oom_line, sizeof(oom_line) - 1);
}

static void conn_reply(char *line, size_t len, void *userdata) {
        Slot *slot = userdata;
        Conn *c = slot->conn;

        slot->line = line;
        slot->len = len;
        slot->answered = true;
        slot->call = NULL;
        if (slot == c->blocking) {
                /* The wait or reload is answered: frames held behind it may go on now. */
                c->blocking = NULL;
                if (c->state == CONN_WAITING)
                        c->state = c->input_done ? CONN_DRAINING : CONN_SERVING;
        }
        if (!c->in_handle) {
                conn_release_slots(c);
                (void) sd_event_source_set_enabled(c->resume, SD_EVENT_ONESHOT);
        }
}

static void conn_seed_settled(void *userdata) {
        SeedWait *w = userdata;
        Conn *c = w->conn;

        if (w->prev)
                w->prev->next = w->next;
        else
                c->seed_waits = w->next;
        if (w->next)
                w->next->prev = w->prev;
        c->n_seed_waits--;
        free(w);
        /* Frames held back by CONN_PENDING_MAX may go on. */
        (void) sd_event_source_set_enabled(c->resume, SD_EVENT_ONESHOT);
}

/* A seed frame: no answer, whatever becomes of it (a refusal is logged and counted by the service). An
 * over-long frame that starts like one is taken for one: a JSON request never starts with "s:" or
 * "O:", and an old client would not read a frame_too_large answer either. */
static void conn_handle_seed(Conn *c, FrameEvent ev, const char *line, size_t len) {
        _cleanup_(request_done) Request req = {};
        ErrorReply err = {};
        SeedWait *w;
        int r;

        if (ev == FRAME_TOO_LARGE) {
                error_reply_set(&err, ERR_FRAME_TOO_LARGE, "frame exceeds %zu bytes",
                                service_config(c->service)->max_frame_bytes);
                service_refuse_seed(c->service, &c->identity, line, len, &err);
                return;
        }
        r = seed_parse(line, len, &req, &err);
        if (r < 0) {
                service_refuse_seed(c->service, &c->identity, line, len, &err);
                return;
        }

        w = calloc(1, sizeof(*w));
        if (!w) {
                error_reply_set(&err, ERR_INTERNAL, "out of memory");
                service_refuse_seed(c->service, &c->identity, line, len, &err);
                return;
        }
        w->conn = c;
        r = service_submit_seed(c->service, &c->identity, &req, line, len, conn_seed_settled, w, &w->call);
        if (r <= 0) {
                free(w);
                return;
        }
        w->next = c->seed_waits;
        if (w->next)
                w->next->prev = w;
        c->seed_waits = w;
        c->n_seed_waits++;
}

static void conn_handle_frame(Conn *c, FrameEvent ev, const char *line, size_t len) {
        _cleanup_(request_done) Request req = {};
        ErrorReply err = {};
        ServiceCall *call = NULL;
        Slot *slot;
        int r;

        if (seed_frame_detect(line, len)) {
                conn_handle_seed(c, ev, line, len);
                return;
        }
        if (ev == FRAME_TOO_LARGE) {
                error_reply_set(&err, ERR_FRAME_TOO_LARGE, "frame exceeds %zu bytes",
                                service_config(c->service)->max_frame_bytes);
                conn_queue_error(c, &err);
                return;
        }

        r = decode_frame(line, len, &req, &err);
        if (r < 0) {
                log_debug("Bad frame from %s: %s", c->identity.description, err.message);
                conn_queue_error(c, &err);
                return;
        }

        slot = slot_push(c);
        if (!slot)
                return;
        c->in_handle = true;
        r = service_handle(c->service, &c->identity, &req, conn_reply, slot, &call);
        c->in_handle = false;
        if (r < 0) {
                log_error_errno(r, "Cannot answer a request from %s: %m", c->identity.description);
                slot->answered = true; /* with no line: answered "out of memory" */
        } else if (r > 0) {
                slot->call = call;
                if (c->output_closed && !service_call_is_store_write(call))
                        conn_abandon(c, slot);
                else if (!service_call_is_store_write(call)) {
                        c->blocking = slot;
                        c->state = CONN_WAITING;
                }
        }
        conn_release_slots(c);
}

/* The next frame: the held one first, then the reader's. */
static FrameEvent conn_next_frame(Conn *c, const char **ret_line, size_t *ret_len) {
        FrameEvent ev;

        if (c->held_event != FRAME_NONE) {
                ev = c->held_event;
                *ret_line = c->held_line;
                *ret_len = c->held_len;
                c->held_event = FRAME_NONE;
                return ev;
        }
        if (c->reader_empty)
                return FRAME_NONE;
        ev = frame_reader_next(c->reader, ret_line, ret_len);
        if (ev == FRAME_NONE)
                c->reader_empty = true;
        else
                c->n_frames++;
        return ev;
}

/* While waiting, takes one frame out of the reader (if it has one) so that we know whether the socket
 * may be read: a reader with no complete frame can take more input without growing unboundedly. */
static int conn_hold_next(Conn *c) {
        const char *line;
        size_t len;
        FrameEvent ev;

        if (c->held_event != FRAME_NONE || c->reader_empty)
                return 0;
        ev = frame_reader_next(c->reader, &line, &len);
        if (ev == FRAME_NONE) {
                c->reader_empty = true;
                return 0;
        }
        c->n_frames++;
        free(c->held_line);
        c->held_line = NULL;
        c->held_len = 0;
        /* An over-long frame is kept as far as it may be quoted, and one byte more to show it goes on. */
        if (ev == FRAME_TOO_LARGE && len > SEED_LOG_FRAME_BYTES + 1)
                len = SEED_LOG_FRAME_BYTES + 1;
        c->held_line = malloc(len + 1);
        if (!c->held_line)
                return -ENOMEM;
        memcpy(c->held_line, line, len);
        c->held_line[len] = '\0';
        c->held_len = len;
        c->held_event = ev;
        return 0;
}

/* Answers buffered frames in order until one must wait, output backs up, or none is left. */
static int conn_process(Conn *c) {
        for (;;) {
                _cleanup_free_ char *owned = NULL;
                const char *line = NULL;
                size_t len = 0;
                FrameEvent ev;

                if (c->state == CONN_WAITING || c->state == CONN_CLOSED)
                        break;
                if (outbuf_pending(&c->out) >= CONN_OUTPUT_HIGH_WATER ||
                    conn_n_pending(c) >= CONN_PENDING_MAX)
                        break;

                bool was_held = c->held_event != FRAME_NONE;
                ev = conn_next_frame(c, &line, &len);
                if (ev == FRAME_NONE)
                        break;
                if (was_held)
                        owned = TAKE_PTR(c->held_line);
                conn_handle_frame(c, ev, line, len);
        }

        if (c->state == CONN_WAITING)
                return conn_hold_next(c);
        return 0;
}

static void conn_flush(Conn *c) {
        int r;

        if (c->output_closed || !c->writable || outbuf_pending(&c->out) == 0)
                return;
        r = outbuf_flush(&c->out, c->fd);
        if (r < 0) {
                /* A reset, say: what the peer sent before it is still in the socket, and is handled. */
                log_debug("Cannot write to %s: %s", c->identity.description, strerror(-r));
                conn_close_output(c, "write failed");
                return;
        }
        if (outbuf_pending(&c->out) > 0)
                c->writable = false; /* EAGAIN: EPOLLOUT will say when to go on */

        /* An idle connection should not keep the buffer a burst of answers grew. */
        outbuf_trim(&c->out, CONN_READ_BYTES);
}

static bool conn_wants_read(const Conn *c) {
        if (c->input_done || c->state == CONN_CLOSED)
                return false;
        /* Backpressure: answers pile up, so the peer is not reading; stop taking its requests. */
        if (outbuf_pending(&c->out) >= CONN_OUTPUT_HIGH_WATER)
                return false;
        /* Read only when every complete frame has been taken: the reader then holds at most a partial
         * frame plus one read. */
        return c->held_event == FRAME_NONE && c->reader_empty;
}

/* Whether conn_process() could answer more right now. */
static bool conn_can_process(const Conn *c) {
        return c->state != CONN_WAITING && c->state != CONN_CLOSED &&
               outbuf_pending(&c->out) < CONN_OUTPUT_HIGH_WATER && conn_n_pending(c) < CONN_PENDING_MAX &&
               (c->held_event != FRAME_NONE || !c->reader_empty);
}

static int conn_read(Conn *c);

static int conn_linger_end(sd_event_source *s, uint64_t usec, void *userdata) {
        Conn *c = userdata;

        conn_close(c, 0, "daemon stopping; the peer did not close its side in time");
        return 0;
}

/* At shutdown, a peer that has connected but not yet sent a whole frame (a one-shot client between
 * connect() and write(), or one in the middle of a frame) is still read from for a moment, so that
 * the frame it is sending is answered rather than cut off; a peer between frames has had its turn. */
static bool conn_in_grace(const Conn *c) {
        return c->stopping && !c->grace_over && (!c->spoke || frame_reader_pending(c->reader) > 0);
}

/* Answers what is buffered and flushes, for as long as the peer takes the answers, reading more while
 * the socket has some and we want it; closes when everything is done. */
static void conn_run(Conn *c) {
        unsigned reads = 0;
        int r;

        if (c->state == CONN_CLOSED)
                return;

        for (;;) {
                do {
                        r = conn_process(c);
                        if (r < 0 || c->broken) {
                                conn_close(c, r < 0 ? r : -ENOMEM, "out of memory");
                                return;
                        }
                        conn_flush(c);
                        /* The flush may have taken the output below the high water mark: go on. The
                         * reader holds at most one read's worth of frames, so this ends. */
                } while (conn_can_process(c));

                if (c->stopping || !c->readable || !conn_wants_read(c))
                        break;
                if (reads++ >= CONN_READS_PER_RUN) {
                        /* Let other connections have a turn; go on from the next loop iteration. */
                        (void) sd_event_source_set_enabled(c->resume, SD_EVENT_ONESHOT);
                        break;
                }
                r = conn_read(c);
                if (r < 0) {
                        conn_close(c, r, "read failed");
                        return;
                }
        }

        if (c->closing && !c->input_done && !c->linger &&
            (c->output_closed || (c->state != CONN_WAITING && !c->slots && c->held_event == FRAME_NONE &&
                                  c->reader_empty && outbuf_pending(&c->out) == 0))) {
                /* Stopping: everything received is answered (or the peer reads no more). The peer is
                 * shown the end, and what it still sends is read (and refused: the daemon is stopping)
                 * until it closes too, so that our close does not reset the connection under frames it
                 * sent before; but not for longer than SHUTDOWN_LINGER_USEC. */
                if (!c->output_closed) {
                        (void) shutdown(c->fd, SHUT_WR);
                        conn_close_output(c, "daemon stopping");
                }
                if (sd_event_add_time_relative(c->event, &c->linger, CLOCK_MONOTONIC, SHUTDOWN_LINGER_USEC,
                                               0, conn_linger_end, c) < 0) {
                        conn_close(c, 0, "daemon stopping");
                        return;
                }
        }

        if (c->input_done && c->state != CONN_WAITING && c->held_event == FRAME_NONE && c->reader_empty &&
            ((!c->slots && outbuf_pending(&c->out) == 0) || c->output_closed)) {
                /* Everything the peer sent has been handled. With the output closed, a submission stands
                 * even though its answer cannot be delivered, and what is still pending has nobody to go
                 * to. */
                if (frame_reader_pending(c->reader) > 0)
                        log_debug("Connection from %s ended in the middle of a frame; dropping %zu byte(s).",
                                  c->identity.description, frame_reader_pending(c->reader));
                conn_close(c, 0, c->stopping ? "daemon stopping" : "peer finished");
                return;
        }

        if (conn_wants_read(c) && c->stopping && (c->readable || (!conn_in_grace(c) && !c->closing)))
                /* Shutdown reads until the socket has nothing more, then decides to close (in the grace
                 * period, or once closing, the next EPOLLIN or a timer goes on). */
                (void) sd_event_source_set_enabled(c->resume, SD_EVENT_ONESHOT);
}

static void conn_input_done(Conn *c) {
        c->input_done = true;
        if (c->state == CONN_SERVING)
                c->state = CONN_DRAINING;
}

/* One read of at most CONN_READ_BYTES. Returns 1 if data came, 0 if none is there, or -errno. EOF
 * marks the input done. */
static int conn_read(Conn *c) {
        char buf[CONN_READ_BYTES];
        ssize_t n;
        int r;

        n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0) {
                if (errno == EINTR)
                        return 0;
                if (errno == EAGAIN) {
                        c->readable = false;
                        return 0;
                }
                return -errno;
        }
        if (n == 0) {
                c->readable = false;
                conn_input_done(c);
                return 0;
        }
        r = frame_reader_feed(c->reader, buf, (size_t) n);
        if (r < 0)
                return r;
        c->reader_empty = false;
        c->spoke = true;
        return 1;
}

static void conn_io(uint32_t revents, void *userdata) {
        Conn *c = userdata;
        int r;

        if (revents & EPOLLOUT) {
                c->writable = true;
                conn_flush(c);
        }

        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
                c->readable = true;
        /* The peer reset the connection or closed it both ways: it reads no more answers, but what it sent
         * before is still in the socket (a read returns it before the error), and is handled. */
        if (revents & (EPOLLHUP | EPOLLERR))
                conn_close_output(c, revents & EPOLLHUP ? "peer hung up" : "socket error");
        if ((revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) && conn_wants_read(c)) {
                r = conn_read(c);
                if (r < 0) {
                        conn_close(c, r, "read failed");
                        return;
                }
        }

        conn_run(c);
}

static int conn_resume(sd_event_source *s, void *userdata) {
        Conn *c = userdata;
        int r;

        if (c->stopping && conn_wants_read(c)) {
                r = conn_read(c);
                if (r < 0) {
                        conn_close(c, r, "read failed");
                        return 0;
                }
                if (r == 0 && !conn_in_grace(c))
                        c->closing = true; /* all the peer had sent is in */
        }

        conn_run(c);
        return 0;
}

int conn_new(ConnPoll *poll, sd_event *event, int fd, const struct sockaddr *peer, socklen_t peer_len,
             Service *service, size_t max_frame_bytes, ConnClosedFn closed, void *userdata, Conn **ret) {
        Conn *c;
        int r;

        c = calloc(1, sizeof(*c));
        if (!c) {
                close(fd);
                return -ENOMEM;
        }
        c->fd = fd;
        c->event = sd_event_ref(event);
        c->service = service;
        c->closed = closed;
        c->userdata = userdata;
        c->state = CONN_SERVING;
        c->reader_empty = true;
        c->held_event = FRAME_NONE;

        r = identity_from_socket(fd, &c->identity);
        /* A TCP peer that reset the connection before we accepted it has no name any more, but what it
         * sent before is still there to be read: it is known by the address accept() gave. */
        if (r == -ENOTCONN && peer)
                r = identity_from_sockaddr(peer, peer_len, &c->identity);
        if (r < 0)
                goto fail;
        r = frame_reader_new(max_frame_bytes, &c->reader);
        if (r < 0)
                goto fail;
        c->readable = c->writable = true;
        r = conn_poll_add(poll, fd, EPOLLIN | EPOLLOUT, conn_io, c, &c->watch);
        if (r < 0)
                goto fail;
        r = sd_event_add_defer(event, &c->resume, conn_resume, c);
        if (r < 0)
                goto fail;
        (void) sd_event_source_set_enabled(c->resume, SD_EVENT_OFF);

        log_debug("Connection from %s.", c->identity.description);
        *ret = c;
        return 0;

fail:
        conn_free(c);
        return r;
}

Conn *conn_free(Conn *c) {
        if (!c)
                return NULL;
        conn_free_slots(c);
        c->watch = conn_poll_remove(c->watch);
        sd_event_source_disable_unref(c->resume);
        sd_event_source_disable_unref(c->grace);
        sd_event_source_disable_unref(c->linger);
        if (c->fd >= 0)
                (void) close(c->fd);
        frame_reader_free(c->reader);
        free(c->held_line);
        outbuf_done(&c->out);
        identity_done(&c->identity);
        sd_event_unref(c->event);
        free(c);
        return NULL;
}

void conn_start(Conn *c) {
        /* Now, not after the loop's next wait: a client that connects per request has usually written
         * its frame right after connect(), and is answered from the accept's own wakeup. */
        conn_run(c);
}

void conn_set_max_frame(Conn *c, size_t max_frame_bytes) {
        frame_reader_set_max(c->reader, max_frame_bytes);
}

static int conn_grace_end(sd_event_source *s, uint64_t usec, void *userdata) {
        Conn *c = userdata;

        c->grace_over = true;
        /* The next read that finds nothing ends the input; a partial frame is then dropped. */
        (void) sd_event_source_set_enabled(c->resume, SD_EVENT_ONESHOT);
        return 0;
}

void conn_shutdown(Conn *c) {
        if (c->stopping || c->state == CONN_CLOSED)
                return;
        c->stopping = true;
        /* Armed for every connection: one between frames may still start a frame in the last read. */
        if (sd_event_add_time_relative(c->event, &c->grace, CLOCK_MONOTONIC, SHUTDOWN_FRAME_GRACE_USEC, 0,
                                       conn_grace_end, c) < 0)
                c->grace_over = true;
        (void) sd_event_source_set_enabled(c->resume, SD_EVENT_ONESHOT);
}

const char *conn_description(const Conn *c) {
        return c->identity.description;
}

const Identity *conn_identity(const Conn *c) {
        return &c->identity;
}

int conn_fd(const Conn *c) {
        return c->fd;
}

bool conn_awaiting_frame(const Conn *c, uint64_t *ret_frames) {
        *ret_frames = c->n_frames;
        /* Waiting for the peer, with nothing of its own to answer first: connected and silent, or in
         * the middle of a frame. A peer between frames (a kept-alive connection) is not waited for. */
        return !c->stopping && conn_wants_read(c) && (!c->spoke || frame_reader_pending(c->reader) > 0);
}

void conn_abort(Conn *c, const char *line) {
        /* Only when no earlier answer is owed: the line must not overtake one. */
        if (line && !c->slots && outbuf_pending(&c->out) == 0)
                (void) send(c->fd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT);
        conn_close(c, 0, "frame deadline passed");
}
