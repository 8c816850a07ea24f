/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The launcher's connection to the front, the only peer it talks to: who may connect (root, the
 * launcher's own uid, or the front's user, by SO_PEERCRED), the framing and decoding of what it sends
 * (a message over the limit or malformed costs the connection, never the launcher), the answer to
 * "list" and the replay of held results and live runs on every connect, paced by what the front reads.
 * One front at a time: a new connection replaces the old one (a restarted front). Launches, stops,
 * acks and reloads go to the owner through FrontLinkEvents.
 */

#include <stdbool.h>
#include <stddef.h>
#include <systemd/sd-event.h>

#include "launcher/run-table.h"
#include "shared/lproto.h"
#include "shared/util.h"

typedef struct FrontLink FrontLink;

typedef struct FrontLinkEvents {
        /* A launch, stop, ack or reload from the front, decoded by lproto's strict parser. Replies go
         * out with front_link_send(). */
        void (*message)(void *userdata, const LauncherMsg *m);
        /* A front connected or went away. May be NULL. */
        void (*changed)(void *userdata);
} FrontLinkEvents;

/* runs is the owner's table, read for the replay; it must outlive the link. message_max is the longest
 * message accepted (see front_link_set_message_max()). */
int front_link_new(sd_event *event, const RunTable *runs, size_t message_max, const FrontLinkEvents *events,
                   void *userdata, FrontLink **ret);
/* Sends nothing more; what is queued and not yet sent is dropped (see front_link_flush()). */
FrontLink *front_link_free(FrontLink *f);
DEFINE_TRIVIAL_CLEANUP_FUNC(FrontLink *, front_link_free);

/* Looks up the front's user (FRONT_USER): at start and on reload, never per connection (NSS may
 * block). Until then, and where it does not exist, only root and our own uid may connect. */
void front_link_resolve_front_user(FrontLink *f);
/* The longest message accepted from now on, on the current connection too (config reload). */
void front_link_set_message_max(FrontLink *f, size_t bytes);
/* Whether the run table is complete, i.e. the executor has reported the runs left from before. Until
 * then the replay and the answer to "list" wait (a run missing from them would be recorded as lost);
 * set to true, they go out. */
void front_link_set_runs_complete(FrontLink *f, bool complete);

/* Takes fd, an accepted connection (non-blocking, close-on-exec): closes it at once if the peer may
 * not connect; else it becomes the connection, and gets every held result and live run. */
void front_link_accept(FrontLink *f, int fd);
bool front_link_connected(const FrontLink *f);

/* Queues m for the front. -ENOTCONN without a front (held results are replayed when one connects);
 * -ENOBUFS or -ENOMEM if the connection was dropped for it. */
int front_link_send(FrontLink *f, const LauncherMsg *m);
/* Sends what the socket takes now, without blocking (at exit). */
void front_link_flush(FrontLink *f);
