/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The client connections' sockets, watched as one set: an epoll instance of their own, which the
 * event loop watches as a single source. One wakeup then handles every connection that became ready,
 * instead of one connection per loop iteration (sd-event dispatches one source per iteration, with an
 * epoll_wait() and its bookkeeping each time): with many busy connections the cost per request no
 * longer grows with their number. Sockets are added edge-triggered; their owner reads and writes
 * until EAGAIN.
 */

#include <stdint.h>
#include <systemd/sd-event.h>

typedef struct ConnPoll ConnPoll;
typedef struct ConnPollWatch ConnPollWatch;

/* fd is ready: revents as epoll_wait() reported them. */
typedef void (*ConnPollFn)(uint32_t revents, void *userdata);

int conn_poll_new(sd_event *event, ConnPoll **ret);
/* Only once no watch is left. */
ConnPoll *conn_poll_free(ConnPoll *p);

/* Watches fd for events (EPOLLET is added) until conn_poll_remove(). */
int conn_poll_add(ConnPoll *p, int fd, uint32_t events, ConnPollFn fn, void *userdata, ConnPollWatch **ret);

/* Stops watching, before fd is closed. Safe from inside any callback of the same wakeup: a watch
 * removed there is not called again, even if its event was fetched already. Returns NULL. */
ConnPollWatch *conn_poll_remove(ConnPollWatch *w);
