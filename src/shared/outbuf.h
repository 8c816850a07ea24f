/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Bytes queued for a non-blocking stream socket whose peer may read slowly. Appending never writes;
 * flushing sends what the socket takes now (send() with MSG_NOSIGNAL | MSG_DONTWAIT: a peer that is
 * gone is -EPIPE, not SIGPIPE) and keeps the rest. Space already sent is reused (the queued bytes are
 * moved to the front) before the buffer grows, and it grows by doubling. There is no bound here: each
 * owner applies its own high-water mark and maximum through outbuf_pending(), and decides what an
 * error costs. A zeroed OutBuf is empty and ready to use.
 */

#include <stddef.h>

typedef struct OutBuf {
        char *data;
        size_t start; /* [start, start + len) is queued */
        size_t len;
        size_t cap;
} OutBuf;

/* Queues n bytes after those already queued. Returns 0, or -ENOMEM with the buffer unchanged. */
int outbuf_append(OutBuf *b, const void *data, size_t n);

/* Sends queued bytes until none is left or the socket would block (EINTR is retried). Returns 0, also
 * when bytes remain because the socket is full, or -errno from send() (what was sent before stays
 * sent, the rest stays queued). */
int outbuf_flush(OutBuf *b, int fd);

/* Bytes queued and not yet sent. */
size_t outbuf_pending(const OutBuf *b);

/* Drops what is queued, keeping the memory for the next use (the connection it was for is gone). */
void outbuf_clear(OutBuf *b);

/* When nothing is queued and the buffer has grown beyond keep_cap bytes, gives its memory back: an
 * idle owner should not keep what a burst grew. */
void outbuf_trim(OutBuf *b, size_t keep_cap);

/* Frees the memory. The buffer is then empty and may be used again. */
void outbuf_done(OutBuf *b);
