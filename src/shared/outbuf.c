/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "shared/outbuf.h"

/* The first allocation: one answer line or launcher message usually fits. */
#define OUTBUF_INITIAL_CAP 1024

int outbuf_append(OutBuf *b, const void *data, size_t n) {
        if (n == 0)
                return 0;
        if (n > SIZE_MAX - b->len)
                return -ENOMEM;
        if (b->start > 0 && b->start + b->len + n > b->cap) {
                /* Reuse the space already sent before growing. */
                memmove(b->data, b->data + b->start, b->len);
                b->start = 0;
        }
        if (b->len + n > b->cap) {
                size_t cap = b->cap ? b->cap : OUTBUF_INITIAL_CAP;
                char *p;

                while (cap < b->len + n) {
                        if (cap > SIZE_MAX / 2)
                                return -ENOMEM;
                        cap *= 2;
                }
                p = realloc(b->data, cap);
                if (!p)
                        return -ENOMEM;
                b->data = p;
                b->cap = cap;
        }
        memcpy(b->data + b->start + b->len, data, n);
        b->len += n;
        return 0;
}

int outbuf_flush(OutBuf *b, int fd) {
        while (b->len > 0) {
                ssize_t n = send(fd, b->data + b->start, b->len, MSG_NOSIGNAL | MSG_DONTWAIT);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                break;
                        return -errno;
                }
                b->start += (size_t) n;
                b->len -= (size_t) n;
        }
        if (b->len == 0)
                b->start = 0;
        return 0;
}

size_t outbuf_pending(const OutBuf *b) {
        return b->len;
}

void outbuf_clear(OutBuf *b) {
        b->start = b->len = 0;
}

void outbuf_trim(OutBuf *b, size_t keep_cap) {
        if (b->len > 0 || b->cap <= keep_cap)
                return;
        outbuf_done(b);
}

void outbuf_done(OutBuf *b) {
        free(b->data);
        *b = (OutBuf){};
}
