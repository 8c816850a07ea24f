/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The launcher's listening sockets: those the service manager passes, else each --listen unix:PATH,
 * else the config's "launcher" path. A socket file made here is created 0600 and opened to the front's
 * group only (never to others), and removed at exit. Accepted connections go to the owner, who checks
 * the peer.
 */

#include <stddef.h>
#include <systemd/sd-event.h>

#include "shared/util.h"

typedef struct Listeners Listeners;

/* Called with each accepted connection (non-blocking, close-on-exec); the callee owns fd. */
typedef void (*ListenersAcceptFn)(void *userdata, int fd);

int listeners_new(sd_event *event, ListenersAcceptFn on_accept, void *userdata, Listeners **ret);
/* Stops listening; removes the socket files made here. */
Listeners *listeners_free(Listeners *ls);
DEFINE_TRIVIAL_CLEANUP_FUNC(Listeners *, listeners_free);

/* Sets up the sockets as described above: listen holds "unix:PATH" values (n_listen of them),
 * default_path is the config's. Logs what it does and why it fails; returns 0 or -errno. */
int listeners_setup(Listeners *ls, char *const *listen, size_t n_listen, const char *default_path);
