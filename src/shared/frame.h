/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Newline framing of a byte stream, with no I/O: bytes read from a socket are fed in, complete
 * frames come out. A frame is the bytes before "\n", with one trailing "\r" dropped; empty frames
 * are skipped. Frames split across reads and many frames in one read both work. A frame longer than
 * the limit is reported once as FRAME_TOO_LARGE, and the reader then discards input up to the next
 * "\n", so the connection stays usable. Frames may contain NUL bytes (PHP serialize() output does);
 * the parsers decide what to accept.
 */

#include <stddef.h>

typedef struct FrameReader FrameReader;

typedef enum FrameEvent {
        FRAME_NONE,      /* no complete frame buffered: feed more */
        FRAME_LINE,      /* *ret_line, *ret_len hold a frame */
        FRAME_TOO_LARGE, /* a frame exceeded the limit; it has been (or is being) skipped */
} FrameEvent;

int frame_reader_new(size_t max_frame_bytes, FrameReader **ret);
FrameReader *frame_reader_free(FrameReader *r);

/* Changes the limit for frames not yet started (used on config reload). */
void frame_reader_set_max(FrameReader *r, size_t max_frame_bytes);

/* Appends bytes. Memory held stays bounded by the limit plus one feed. Returns 0 or -ENOMEM. */
int frame_reader_feed(FrameReader *r, const void *data, size_t n);

/* Returns the next event. For FRAME_LINE, *ret_line points into the reader's buffer, is
 * NUL-terminated after ret_len bytes, and stays valid until the next call on the reader. For
 * FRAME_TOO_LARGE, *ret_line and *ret_len are the first bytes of the frame (at least 2, not
 * NUL-terminated), valid as long, so that a caller can tell what kind of frame it was. */
FrameEvent frame_reader_next(FrameReader *r, const char **ret_line, size_t *ret_len);

/* Bytes buffered of an incomplete frame (0 between frames): lets a caller see a half frame at EOF. */
size_t frame_reader_pending(const FrameReader *r);
