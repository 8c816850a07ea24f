/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "front/conn-poll.h"
#include "shared/log.h"

/* Events taken per epoll_wait(); a wakeup takes at most CONN_POLL_ROUNDS of them, then lets the loop's
 * other sources (accept, the launcher, the store, timers) have their turn before the rest. */
#define CONN_POLL_BATCH  256
#define CONN_POLL_ROUNDS 4

struct ConnPollWatch {
        ConnPoll *poll;
        int fd;
        ConnPollFn fn; /* NULL: removed during a wakeup, freed at its end */
        void *userdata;
        ConnPollWatch *next_dead;
};

struct ConnPoll {
        int epoll_fd;
        sd_event_source *source;
        bool dispatching;
        ConnPollWatch *dead; /* removed while their events may still be in the batch being handled */
};

static void free_dead(ConnPoll *p) {
        while (p->dead) {
                ConnPollWatch *w = p->dead;

                p->dead = w->next_dead;
                free(w);
        }
}

static int on_ready(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        ConnPoll *p = userdata;
        struct epoll_event events[CONN_POLL_BATCH];

        p->dispatching = true;
        for (unsigned round = 0; round < CONN_POLL_ROUNDS; round++) {
                int n = epoll_wait(p->epoll_fd, events, CONN_POLL_BATCH, 0);

                if (n < 0 && errno != EINTR)
                        log_warning_errno(errno, "Cannot poll the client connections: %m");
                for (int i = 0; i < n; i++) {
                        ConnPollWatch *w = events[i].data.ptr;

                        if (w->fn)
                                w->fn(events[i].events, w->userdata);
                }
                if (n < CONN_POLL_BATCH)
                        break;
        }
        p->dispatching = false;
        free_dead(p);
        return 0;
}

int conn_poll_new(sd_event *event, ConnPoll **ret) {
        ConnPoll *p;
        int r;

        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        if (p->epoll_fd < 0) {
                r = -errno;
                free(p);
                return r;
        }
        /* Level-triggered: while connections are left ready after a wakeup's budget, the loop comes
         * back to them. */
        r = sd_event_add_io(event, &p->source, p->epoll_fd, EPOLLIN, on_ready, p);
        if (r < 0) {
                conn_poll_free(p);
                return r;
        }
        *ret = p;
        return 0;
}

ConnPoll *conn_poll_free(ConnPoll *p) {
        if (!p)
                return NULL;
        sd_event_source_disable_unref(p->source);
        free_dead(p);
        if (p->epoll_fd >= 0)
                (void) close(p->epoll_fd);
        free(p);
        return NULL;
}

int conn_poll_add(ConnPoll *p, int fd, uint32_t events, ConnPollFn fn, void *userdata, ConnPollWatch **ret) {
        ConnPollWatch *w;
        struct epoll_event ev = {.events = events | EPOLLET};

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        *w = (ConnPollWatch){.poll = p, .fd = fd, .fn = fn, .userdata = userdata};
        ev.data.ptr = w;
        if (epoll_ctl(p->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                int r = -errno;

                free(w);
                return r;
        }
        *ret = w;
        return 0;
}

ConnPollWatch *conn_poll_remove(ConnPollWatch *w) {
        ConnPoll *p;

        if (!w)
                return NULL;
        p = w->poll;
        (void) epoll_ctl(p->epoll_fd, EPOLL_CTL_DEL, w->fd, NULL);
        if (p->dispatching) {
                w->fn = NULL;
                w->next_dead = p->dead;
                p->dead = w;
        } else
                free(w);
        return NULL;
}
