/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * One client connection: reads frames (at most 64 KiB per wakeup), answers each non-empty JSON frame
 * with exactly one response line in order (a request answered later holds back the ones after it, so
 * pipelining keeps its order; seed frames get no answer at all, see service.h), and buffers output
 * with backpressure: above CONN_OUTPUT_HIGH_WATER queued bytes the connection is not read until the
 * client drains it. Any error closes only this connection.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <systemd/sd-event.h>

#include "front/conn-poll.h"
#include "front/service.h"

typedef struct Conn Conn;

/* The connection is finished (peer closed, error, or shutdown flushed); the owner must conn_free()
 * it (this may be called from inside the connection's own event handlers; that is safe). */
typedef void (*ConnClosedFn)(Conn *c, void *userdata);

/* Takes ownership of fd (a connected stream socket), also on failure; its socket is watched in poll.
 * peer is the address accept() returned for it, or NULL. */
int conn_new(ConnPoll *poll, sd_event *event, int fd, const struct sockaddr *peer, socklen_t peer_len,
             Service *service, size_t max_frame_bytes, ConnClosedFn closed, void *userdata, Conn **ret);
Conn *conn_free(Conn *c);

/* Applies a reloaded max_frame_bytes to frames not yet started. */
/* Reads and answers what the peer sent already, at once; for a connection the server has taken in (its
 * closed callback may run from here on, freeing c). */
void conn_start(Conn *c);
void conn_set_max_frame(Conn *c, size_t max_frame_bytes);

/* Shutdown: read what the peer has already sent, answer every complete frame, flush, then close. */
void conn_shutdown(Conn *c);

const char *conn_description(const Conn *c);

/* The peer's identity, found at conn_new(). */
const Identity *conn_identity(const Conn *c);
int conn_fd(const Conn *c);

/* Whether the connection waits for the peer to complete a frame (it is connected and silent, or in
 * the middle of a frame, and nothing of ours holds it back), and in *ret_frames how many frames it
 * has received: a change means progress. */
bool conn_awaiting_frame(const Conn *c, uint64_t *ret_frames);

/* Gives up on the connection: sends line (if nothing else is owed to the peer) and closes it. */
void conn_abort(Conn *c, const char *line);
