/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-event.h>

#include "shared/frame.h"
#include "front/launcher-link.h"
#include "shared/limits.h"
#include "shared/log.h"
#include "shared/message-ids.h"
#include "shared/outbuf.h"
#include "shared/util.h"

struct LauncherLink {
        sd_event *event;
        char *path;
        LauncherLinkEvents events;
        void *userdata;

        int fd;
        bool connected;      /* the socket is connected */
        bool connecting;     /* a non-blocking connect() is in progress */
        bool reconnect;      /* false once shutdown began */
        uint64_t generation; /* bumped by every disconnect: a reader loop notices it dropped */
        sd_event_source *io;
        sd_event_source *retry_timer;
        sd_event_source *notify_down; /* reports "disconnected" from the event loop, not mid-call */
        uint64_t backoff_usec;
        bool outage_logged; /* connect failures are logged once per outage, then at debug level */

        FrameReader *reader;

        OutBuf out;            /* messages queued for the launcher */
        bool above_high_water; /* a launch was held back: report "drained" when below again */
};

static int link_io(sd_event_source *s, int fd, uint32_t revents, void *userdata);

static void link_update_events(LauncherLink *l) {
        uint32_t events;

        if (!l->io)
                return;
        if (l->connecting)
                events = EPOLLOUT;
        else
                events = EPOLLIN | (outbuf_pending(&l->out) > 0 ? EPOLLOUT : 0);
        (void) sd_event_source_set_io_events(l->io, events);
}

static void link_schedule_retry(LauncherLink *l) {
        if (!l->reconnect)
                return;
        (void) sd_event_source_set_time_relative(l->retry_timer, l->backoff_usec);
        (void) sd_event_source_set_enabled(l->retry_timer, SD_EVENT_ONESHOT);
        l->backoff_usec *= 2;
        if (l->backoff_usec > LAUNCHER_RECONNECT_MAX_USEC)
                l->backoff_usec = LAUNCHER_RECONNECT_MAX_USEC;
}

static void link_close(LauncherLink *l) {
        l->io = sd_event_source_disable_unref(l->io);
        if (l->fd >= 0)
                (void) close(l->fd);
        l->fd = -1;
        l->connected = l->connecting = false;
        outbuf_clear(&l->out);
        l->above_high_water = false;
        l->generation++;
}

/* Drops a connection that was up. "disconnected" is reported from a deferred event so that callers in
 * the middle of a send (the dispatcher) never see their own state change under them. */
static void link_fail(LauncherLink *l, int error, const char *what) {
        bool was_connected = l->connected;

        if (l->fd < 0)
                return;
        if (was_connected)
                log_event(LOG_WARNING, MESSAGE_ID_LAUNCHER_DOWN, "Launcher connection %s%s%s; reconnecting.",
                          what, error != 0 ? ": " : "", error != 0 ? strerror(abs(error)) : "");
        link_close(l);
        l->outage_logged = was_connected;
        link_schedule_retry(l);
        if (was_connected)
                (void) sd_event_source_set_enabled(l->notify_down, SD_EVENT_ONESHOT);
}

static void link_connected(LauncherLink *l) {
        l->connected = true;
        l->connecting = false;
        l->backoff_usec = LAUNCHER_RECONNECT_MIN_USEC;
        l->outage_logged = false;
        (void) sd_event_source_set_enabled(l->notify_down, SD_EVENT_OFF);
        link_update_events(l);
        log_event(LOG_INFO, MESSAGE_ID_LAUNCHER_UP, "Connected to the launcher at %s.", l->path);
        if (l->events.connected)
                l->events.connected(l->userdata);
}

static int link_connect(LauncherLink *l) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        size_t n = strlen(l->path);
        int r;

        if (n >= sizeof(sa.sun_path)) {
                r = -ENAMETOOLONG;
                goto fail;
        }
        memcpy(sa.sun_path, l->path, n);

        l->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (l->fd < 0) {
                r = -errno;
                goto fail;
        }

        /* A fresh reader per connection: a half message from the old one must not prefix the new. */
        l->reader = frame_reader_free(l->reader);
        r = frame_reader_new(LAUNCHER_REPLY_BYTES_MAX, &l->reader);
        if (r < 0)
                goto fail;

        r = sd_event_add_io(l->event, &l->io, l->fd, EPOLLOUT, link_io, l);
        if (r < 0)
                goto fail;

        if (connect(l->fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                if (errno != EINPROGRESS && errno != EAGAIN) {
                        r = -errno;
                        goto fail;
                }
                /* Unix sockets return EAGAIN when the listener's backlog is full; wait for writable. */
                l->connecting = true;
                link_update_events(l);
                return -EINPROGRESS;
        }

        link_connected(l);
        return 0;

fail:
        link_close(l);
        if (!l->outage_logged)
                log_event(LOG_WARNING, MESSAGE_ID_LAUNCHER_DOWN,
                          "Cannot connect to the launcher at %s: %s; retrying.", l->path, strerror(-r));
        else
                log_debug("Cannot connect to the launcher at %s: %s; retrying.", l->path, strerror(-r));
        l->outage_logged = true;
        link_schedule_retry(l);
        return r;
}

static int link_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        LauncherLink *l = userdata;

        if (l->fd < 0 && l->reconnect)
                (void) link_connect(l);
        return 0;
}

static int link_notify_down(sd_event_source *s, void *userdata) {
        LauncherLink *l = userdata;

        if (!l->connected && l->events.disconnected)
                l->events.disconnected(l->userdata);
        return 0;
}

static int link_flush(LauncherLink *l) {
        int r = outbuf_flush(&l->out, l->fd);

        if (r < 0)
                return r;
        link_update_events(l);
        return 0;
}

static void link_dispatch_input(LauncherLink *l) {
        uint64_t generation = l->generation;

        for (;;) {
                _cleanup_(lmsg_done) LauncherMsg m = {};
                const char *line;
                size_t len;
                FrameEvent ev;
                int r;

                ev = frame_reader_next(l->reader, &line, &len);
                if (ev == FRAME_NONE)
                        return;
                if (ev == FRAME_TOO_LARGE) {
                        link_fail(l, EMSGSIZE, "sent an over-long message");
                        return;
                }
                r = lmsg_parse(line, len, &m);
                if (r < 0) {
                        link_fail(l, -r, "sent a malformed message");
                        return;
                }
                if (m.type != LMSG_STARTED && m.type != LMSG_FINISHED && m.type != LMSG_REJECTED &&
                    m.type != LMSG_RUNNING && m.type != LMSG_LIST_END && m.type != LMSG_RELOADED &&
                    m.type != LMSG_PROGRESS) {
                        link_fail(l, EPROTO, "sent a message meant for the launcher");
                        return;
                }
                if (l->events.message)
                        l->events.message(&m, l->userdata);
                /* The handler may have dropped the connection (a send over the bound). */
                if (l->generation != generation)
                        return;
        }
}

static int link_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        LauncherLink *l = userdata;
        uint64_t generation = l->generation;
        int r;

        if (l->connecting) {
                int error = 0;
                socklen_t len = sizeof(error);

                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0)
                        error = errno;
                if (error == 0 && !(revents & (EPOLLERR | EPOLLHUP))) {
                        link_connected(l);
                        return 0;
                }
                link_close(l);
                if (!l->outage_logged)
                        log_event(LOG_WARNING, MESSAGE_ID_LAUNCHER_DOWN,
                                  "Cannot connect to the launcher at %s: %s; retrying.", l->path,
                                  strerror(error ?: ECONNREFUSED));
                l->outage_logged = true;
                link_schedule_retry(l);
                return 0;
        }

        if (revents & EPOLLOUT) {
                r = link_flush(l);
                if (r < 0) {
                        link_fail(l, r, "failed to write");
                        return 0;
                }
                if (l->above_high_water && outbuf_pending(&l->out) < LAUNCHER_LINK_OUTPUT_HIGH_WATER) {
                        l->above_high_water = false;
                        if (l->events.drained)
                                l->events.drained(l->userdata);
                        if (l->generation != generation)
                                return 0;
                }
        }

        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                char buf[CONN_READ_BYTES];
                ssize_t n;

                n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                return 0;
                        link_fail(l, errno, "failed to read");
                        return 0;
                }
                if (n == 0) {
                        link_fail(l, 0, "closed by the launcher");
                        return 0;
                }
                r = frame_reader_feed(l->reader, buf, (size_t) n);
                if (r < 0) {
                        link_fail(l, -r, "could not buffer input");
                        return 0;
                }
                link_dispatch_input(l);
        }
        return 0;
}

int launcher_link_new(sd_event *event, const char *socket_path, const LauncherLinkEvents *events,
                      void *userdata, LauncherLink **ret) {
        LauncherLink *l;
        int r;

        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->event = sd_event_ref(event);
        l->fd = -1;
        l->reconnect = true;
        l->backoff_usec = LAUNCHER_RECONNECT_MIN_USEC;
        l->events = *events;
        l->userdata = userdata;
        l->path = strdup(socket_path);
        if (!l->path) {
                launcher_link_free(l);
                return -ENOMEM;
        }

        r = sd_event_add_time(event, &l->retry_timer, CLOCK_MONOTONIC, 0, 0, link_retry, l);
        if (r >= 0)
                r = sd_event_source_set_enabled(l->retry_timer, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_defer(event, &l->notify_down, link_notify_down, l);
        if (r >= 0)
                r = sd_event_source_set_enabled(l->notify_down, SD_EVENT_OFF);
        if (r < 0) {
                launcher_link_free(l);
                return r;
        }

        *ret = l;
        return 0;
}

LauncherLink *launcher_link_free(LauncherLink *l) {
        if (!l)
                return NULL;
        link_close(l);
        sd_event_source_disable_unref(l->retry_timer);
        sd_event_source_disable_unref(l->notify_down);
        frame_reader_free(l->reader);
        outbuf_done(&l->out);
        free(l->path);
        sd_event_unref(l->event);
        free(l);
        return NULL;
}

int launcher_link_start(LauncherLink *l) {
        if (l->fd >= 0)
                return l->connected ? 0 : -EINPROGRESS;
        return link_connect(l);
}

void launcher_link_stop_reconnecting(LauncherLink *l) {
        l->reconnect = false;
        (void) sd_event_source_set_enabled(l->retry_timer, SD_EVENT_OFF);
        if (!l->connected)
                link_close(l);
}

bool launcher_link_is_connected(const LauncherLink *l) {
        return l->connected;
}

bool launcher_link_can_launch(const LauncherLink *l) {
        return l->connected && outbuf_pending(&l->out) < LAUNCHER_LINK_OUTPUT_HIGH_WATER;
}

size_t launcher_link_pending_output(const LauncherLink *l) {
        return l->connected ? outbuf_pending(&l->out) : 0;
}

int launcher_link_send(LauncherLink *l, const LauncherMsg *m) {
        _cleanup_free_ char *line = NULL;
        size_t len;
        int r;

        if (!l->connected)
                return -ENOTCONN;

        line = lmsg_format(m, &len);
        if (!line)
                return -ENOMEM;

        if (outbuf_pending(&l->out) + len > LAUNCHER_LINK_OUTPUT_MAX) {
                link_fail(l, ENOBUFS, "is not reading its messages");
                return -ENOBUFS;
        }

        r = outbuf_append(&l->out, line, len);
        if (r < 0)
                return r;
        if (outbuf_pending(&l->out) >= LAUNCHER_LINK_OUTPUT_HIGH_WATER)
                l->above_high_water = true;

        r = link_flush(l);
        if (r < 0) {
                link_fail(l, r, "failed to write");
                return r;
        }
        return 0;
}
