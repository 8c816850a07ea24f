/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Listening sockets and accepted connections: socket-activation fds (listening ones are accepted on;
 * a single connected one is served inetd style), or sockets made from --listen specs
 * ("unix:PATH", "tcp:HOST:PORT", "tcp:[::1]:PORT"). Enforces max_connections with a clear refusal,
 * and pauses accepting briefly when the process runs out of file descriptors.
 */

#include <stdbool.h>
#include <stddef.h>
#include <systemd/sd-event.h>

#include "front/service.h"

typedef struct Server Server;

typedef struct ServerEvents {
        /* The number of connections changed (STATUS=, idle exit, shutdown progress, inetd exit). */
        void (*changed)(void *userdata);
} ServerEvents;

int server_new(sd_event *event, Service *service, unsigned max_connections, size_t max_frame_bytes,
               const ServerEvents *events, void *userdata, Server **ret);
Server *server_free(Server *s);

/* Takes the sockets passed by the service manager (sd_listen_fds). Returns how many were taken (0:
 * none passed). Listening stream sockets become listeners; exactly one connected stream socket (and
 * no listener) puts the server in inetd mode; anything else is closed with a warning. */
int server_take_activation_fds(Server *s);

/* Creates a listener from "unix:PATH" or "tcp:HOST:PORT". A unix socket file we create is mode
 * 0666 (authorization is by SO_PEERCRED); a stale one is replaced, a live one is an error. */
int server_listen(Server *s, const char *spec);

/* Starts accepting on the listeners (kept off until the daemon is ready to serve). */
int server_start(Server *s);

/* Reloaded limits: max_connections for future accepts, max_frame_bytes for all connections. */
void server_set_limits(Server *s, unsigned max_connections, size_t max_frame_bytes);

unsigned server_n_connections(const Server *s);
unsigned server_n_listeners(const Server *s);
bool server_is_inetd(const Server *s);

/* Shutdown: closes listeners (unlinking unix socket files we created), then lets each connection
 * answer what it has received, flush and close. */
void server_shutdown(Server *s);
