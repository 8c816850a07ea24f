/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The front's connection to the launcher: a non-blocking unix stream socket to cfg->launcher_socket,
 * re-established with backoff (100 ms doubling to 5 s) whenever it fails or drops. Messages go both
 * ways framed and checked by lproto; output is bounded (see asynctask-limits.h). A malformed message from
 * the launcher costs the connection, never the daemon.
 */

#include <stdbool.h>
#include <stddef.h>
#include <systemd/sd-event.h>

#include "shared/lproto.h"

typedef struct LauncherLink LauncherLink;

typedef struct LauncherLinkEvents {
        /* The socket is connected (first time or again). */
        void (*connected)(void *userdata);
        /* The connection failed or dropped; a reconnect is scheduled. Not called for connect
         * attempts that fail while already disconnected. */
        void (*disconnected)(void *userdata);
        /* One decoded message from the launcher. */
        void (*message)(const LauncherMsg *m, void *userdata);
        /* Queued output dropped below LAUNCHER_LINK_OUTPUT_HIGH_WATER (launches may go on). */
        void (*drained)(void *userdata);
} LauncherLinkEvents;

int launcher_link_new(sd_event *event, const char *socket_path, const LauncherLinkEvents *events,
                      void *userdata, LauncherLink **ret);
LauncherLink *launcher_link_free(LauncherLink *l);

/* First connection attempt. Returns 0 when connected (connected() has been called), or a negative
 * errno when not (a retry is scheduled; the daemon serves meanwhile). */
int launcher_link_start(LauncherLink *l);

/* Stops reconnecting (shutdown); an open connection stays open to flush its output. */
void launcher_link_stop_reconnecting(LauncherLink *l);

bool launcher_link_is_connected(const LauncherLink *l);

/* Queues one message. -ENOTCONN when disconnected, -ENOMEM, or -ENOBUFS when the output bound would
 * be exceeded (the connection is then dropped and re-established: the launcher resends results). */
int launcher_link_send(LauncherLink *l, const LauncherMsg *m);

/* Whether launches may be queued now: connected and output below the high water mark. */
bool launcher_link_can_launch(const LauncherLink *l);

/* Bytes queued and not yet written. */
size_t launcher_link_pending_output(const LauncherLink *l);
