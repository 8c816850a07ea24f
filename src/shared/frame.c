/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "shared/frame.h"
#include "shared/limits.h"
#include "shared/util.h"

/* A drained buffer larger than this is given back: an idle connection should not pin a frame-sized
 * buffer (thousands of idle connections times max_frame_bytes adds up). */
#define FRAME_BUFFER_KEEP (8 * 1024)

/*
 * Layout of buf: [0, start) consumed, [start, end) unconsumed, [end, cap) free. Bytes in
 * [start, scan) are known to hold no "\n", so each byte is searched once however the input is split.
 * Consumed bytes are reclaimed at most once per feed (compaction), never once per frame, so a feed
 * holding thousands of small pipelined frames costs one pass.
 */
struct FrameReader {
        char *buf;
        size_t cap;
        size_t start;
        size_t end;
        size_t scan;
        size_t max;       /* limit for frames not yet started */
        size_t frame_max; /* limit for the frame at start (the one already begun when set_max ran) */
        bool discarding;  /* dropping the rest of an over-long frame up to its "\n" */
};

static bool frame_max_valid(size_t max) {
        return max > 0 && max <= FRAME_READER_MAX;
}

int frame_reader_new(size_t max_frame_bytes, FrameReader **ret) {
        FrameReader *r;

        if (!frame_max_valid(max_frame_bytes))
                return -EINVAL;

        r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->max = r->frame_max = max_frame_bytes;
        *ret = r;
        return 0;
}

FrameReader *frame_reader_free(FrameReader *r) {
        if (!r)
                return NULL;
        free(r->buf);
        free(r);
        return NULL;
}

void frame_reader_set_max(FrameReader *r, size_t max_frame_bytes) {
        if (max_frame_bytes == 0)
                max_frame_bytes = 1;
        if (max_frame_bytes > FRAME_READER_MAX)
                max_frame_bytes = FRAME_READER_MAX;
        r->max = max_frame_bytes;
        /* Nothing of the next frame has arrived yet: it is "not yet started". */
        if (r->start == r->end && !r->discarding)
                r->frame_max = max_frame_bytes;
}

/* Called whenever start moves past a frame: the next frame is judged by the current limit. */
static void frame_advance(FrameReader *r, size_t new_start) {
        r->start = new_start;
        if (r->scan < new_start)
                r->scan = new_start;
        r->frame_max = r->max;
}

int frame_reader_feed(FrameReader *r, const void *data, size_t n) {
        const char *p = data;
        size_t held, need;

        if (r->discarding) {
                const char *nl = memchr(p, '\n', n);
                if (!nl)
                        return 0; /* all of it belongs to the over-long frame */
                r->discarding = false;
                r->frame_max = r->max;
                n -= (size_t) (nl + 1 - p);
                p = nl + 1;
        }
        if (n == 0)
                return 0;

        held = r->end - r->start;
        if (held == 0) {
                r->start = r->end = r->scan = 0;
        } else if (r->start > 0 && r->cap - r->end < n + 1) {
                /* Reclaim consumed bytes once, for the whole feed. */
                memmove(r->buf, r->buf + r->start, held);
                r->scan -= r->start;
                r->end = held;
                r->start = 0;
        }

        if (n > SIZE_MAX - r->end - 1)
                return -ENOMEM;
        need = r->end + n + 1; /* + 1: room for the NUL after a frame that ends the buffer */
        if (need > r->cap) {
                /* Double while below the limit (few reallocs for a frame arriving in pieces), but past
                 * it take only what this feed needs: memory stays within limit plus one feed. */
                size_t limit = (r->max > r->frame_max ? r->max : r->frame_max) + 2;
                size_t cap = r->cap * 2 < limit ? r->cap * 2 : limit;
                char *b;

                if (cap < need)
                        cap = need;
                if (cap < 256)
                        cap = 256;
                b = realloc(r->buf, cap);
                if (!b)
                        return -ENOMEM;
                r->buf = b;
                r->cap = cap;
        }

        memcpy(r->buf + r->end, p, n);
        r->end += n;
        return 0;
}

/* The unconsumed bytes hold no complete frame. Once their length proves the frame too long,
 * drop them and discard up to the next "\n". */
static bool frame_tail_too_large(FrameReader *r) {
        size_t held = r->end - r->start;

        /* max + 1 bytes may still be a frame of max bytes plus the "\r" of "\r\n". */
        if (held < r->frame_max + 1)
                return false;
        if (held == r->frame_max + 1 && r->buf[r->end - 1] == '\r')
                return false;
        return true;
}

FrameEvent frame_reader_next(FrameReader *r, const char **ret_line, size_t *ret_len) {
        for (;;) {
                char *line, *nl;
                size_t len, max;

                if (r->start == r->end) {
                        /* Drained: give a big buffer back, keep a small one for the next read. */
                        if (r->cap > FRAME_BUFFER_KEEP) {
                                free(r->buf);
                                r->buf = NULL;
                                r->cap = 0;
                        }
                        r->start = r->end = r->scan = 0;
                        r->frame_max = r->max;
                        return FRAME_NONE;
                }

                nl = memchr(r->buf + r->scan, '\n', r->end - r->scan);
                if (!nl) {
                        r->scan = r->end;
                        if (!frame_tail_too_large(r))
                                return FRAME_NONE;
                        /* The bytes stay where they are until the next call on the reader. */
                        *ret_line = r->buf + r->start;
                        *ret_len = r->end - r->start;
                        r->start = r->end = r->scan = 0;
                        r->discarding = true;
                        return FRAME_TOO_LARGE;
                }

                line = r->buf + r->start;
                len = (size_t) (nl - line);
                max = r->frame_max;
                frame_advance(r, (size_t) (nl - r->buf) + 1);
                if (len > 0 && line[len - 1] == '\r')
                        len--;
                if (len == 0)
                        continue; /* empty lines are keep-alives, not requests */
                if (len > max) {
                        *ret_line = line;
                        *ret_len = len;
                        return FRAME_TOO_LARGE;
                }
                line[len] = '\0';
                *ret_line = line;
                *ret_len = len;
                return FRAME_LINE;
        }
}

size_t frame_reader_pending(const FrameReader *r) {
        return r->end - r->start;
}
