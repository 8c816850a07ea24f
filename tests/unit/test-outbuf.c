/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "shared/outbuf.h"
#include "shared/util.h"

/* The queued bytes, in order. */
static const char *queued(const OutBuf *b) {
        return b->data + b->start;
}

/* A byte pattern that shows reordering or loss: byte i is (i * 7 + i / 251) % 256. */
static char pattern_byte(size_t i) {
        return (char) ((i * 7 + i / 251) % 256);
}

static void fill_pattern(char *p, size_t from, size_t n) {
        for (size_t i = 0; i < n; i++)
                p[i] = pattern_byte(from + i);
}

static void test_empty(void **state) {
        OutBuf b = {};

        assert_int_equal(outbuf_pending(&b), 0);
        /* Nothing queued: no send() at all, so even a bad fd is fine. */
        assert_int_equal(outbuf_flush(&b, -1), 0);
        assert_int_equal(outbuf_append(&b, "", 0), 0);
        assert_null(b.data);
        outbuf_done(&b);
}

static void test_append_keeps_order(void **state) {
        OutBuf b = {};

        assert_int_equal(outbuf_append(&b, "hello ", 6), 0);
        assert_int_equal(outbuf_append(&b, "world\n", 6), 0);
        assert_int_equal(outbuf_pending(&b), 12);
        assert_memory_equal(queued(&b), "hello world\n", 12);
        assert_int_equal(b.cap, 1024);
        outbuf_done(&b);
        assert_null(b.data);
        assert_int_equal(outbuf_pending(&b), 0);
        assert_int_equal(b.cap, 0);
}

static void test_growth_doubles(void **state) {
        char big[5000];
        OutBuf b = {};

        fill_pattern(big, 0, sizeof(big));
        /* Exactly the capacity fits without growing; one byte more doubles it. */
        assert_int_equal(outbuf_append(&b, big, 1024), 0);
        assert_int_equal(b.cap, 1024);
        assert_int_equal(outbuf_append(&b, big + 1024, 1), 0);
        assert_int_equal(b.cap, 2048);
        /* Doubling repeats until the new bytes fit: 1025 + 3975 = 5000 needs 8192. */
        assert_int_equal(outbuf_append(&b, big + 1025, sizeof(big) - 1025), 0);
        assert_int_equal(b.cap, 8192);
        assert_int_equal(outbuf_pending(&b), sizeof(big));
        assert_memory_equal(queued(&b), big, sizeof(big));
        outbuf_done(&b);
}

static void test_overflow_is_enomem(void **state) {
        OutBuf b = {};

        assert_int_equal(outbuf_append(&b, "abc", 3), 0);
        /* A length that cannot be added to what is queued fails before touching the buffer. */
        assert_int_equal(outbuf_append(&b, "x", SIZE_MAX - 2), -ENOMEM);
        assert_int_equal(outbuf_pending(&b), 3);
        assert_memory_equal(queued(&b), "abc", 3);
        outbuf_done(&b);
}

static void make_pair(int fds[2], int sndbuf) {
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
        if (sndbuf > 0)
                assert_int_equal(setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
}

static size_t read_some(int fd, char *buf, size_t size) {
        ssize_t n = recv(fd, buf, size, MSG_DONTWAIT);

        assert_true(n > 0);
        return (size_t) n;
}

static void test_compaction_reuses_sent_space(void **state) {
        char chunk[1000], got[1000];
        int fds[2];
        OutBuf b = {};

        make_pair(fds, 0);
        fill_pattern(chunk, 0, sizeof(chunk));
        assert_int_equal(outbuf_append(&b, chunk, 600), 0);
        assert_int_equal(outbuf_flush(&b, fds[0]), 0);
        assert_int_equal(outbuf_pending(&b), 0);
        assert_int_equal(b.start, 0); /* emptied: starts over at the front */
        assert_int_equal(read_some(fds[1], got, sizeof(got)), 600);

        /* A partial send, made exact: of 600 queued bytes the first 400 went out. */
        assert_int_equal(outbuf_append(&b, chunk, 600), 0);
        b.start += 400;
        b.len -= 400;
        /* 200 queued at offset 400; 800 more do not fit behind them (1400 > 1024) but do fit once
         * the 400 sent bytes are reused (1000 <= 1024): no growth. */
        assert_int_equal(outbuf_append(&b, chunk + 200, 800), 0);
        assert_int_equal(b.cap, 1024);
        assert_int_equal(b.start, 0);
        assert_int_equal(outbuf_pending(&b), 1000);
        assert_memory_equal(queued(&b), chunk + 400, 200);
        assert_memory_equal(queued(&b) + 200, chunk + 200, 800);

        /* One byte beyond the capacity after compaction grows it. */
        b.start += 1;
        b.len -= 1;
        assert_int_equal(outbuf_append(&b, "xy", 2), 0);
        assert_int_equal(b.cap, 1024); /* 999 + 2 = 1001 fits after compaction */
        assert_int_equal(outbuf_append(&b, chunk, 24), 0);
        assert_int_equal(b.cap, 2048); /* 1001 + 24 = 1025 does not */
        assert_int_equal(outbuf_pending(&b), 1025);
        assert_memory_equal(queued(&b) + 999, "xy", 2);

        outbuf_done(&b);
        close(fds[0]);
        close(fds[1]);
}

static void test_flush_partial_when_socket_full(void **state) {
        const size_t total = 1024 * 1024;
        _cleanup_free_ char *data = malloc(total), *got = malloc(total);
        size_t received = 0;
        unsigned rounds = 0;
        int fds[2];
        OutBuf b = {};

        assert_non_null(data);
        assert_non_null(got);
        make_pair(fds, 4096);
        fill_pattern(data, 0, total);
        assert_int_equal(outbuf_append(&b, data, total), 0);

        /* The socket takes far less than 1 MiB: the flush stops at EAGAIN without an error. */
        assert_int_equal(outbuf_flush(&b, fds[0]), 0);
        assert_true(outbuf_pending(&b) > 0);
        assert_true(outbuf_pending(&b) < total);

        /* Drain and flush until everything went out, in order. */
        while (received < total) {
                received += read_some(fds[1], got + received, total - received);
                assert_int_equal(outbuf_flush(&b, fds[0]), 0);
                assert_true(++rounds < 100000);
        }
        assert_int_equal(outbuf_pending(&b), 0);
        assert_int_equal(b.start, 0);
        assert_memory_equal(got, data, total);
        assert_true(rounds > 1);

        outbuf_done(&b);
        close(fds[0]);
        close(fds[1]);
}

static void test_flush_to_closed_peer_is_epipe(void **state) {
        int fds[2];
        OutBuf b = {};

        make_pair(fds, 0);
        close(fds[1]);
        assert_int_equal(outbuf_append(&b, "lost\n", 5), 0);
        /* SIGPIPE is not ignored here: MSG_NOSIGNAL must keep the test alive. */
        assert_int_equal(outbuf_flush(&b, fds[0]), -EPIPE);
        assert_int_equal(outbuf_pending(&b), 5);
        assert_memory_equal(queued(&b), "lost\n", 5);
        outbuf_done(&b);
        close(fds[0]);
}

static void test_flush_bad_fd(void **state) {
        OutBuf b = {};

        assert_int_equal(outbuf_append(&b, "x", 1), 0);
        assert_int_equal(outbuf_flush(&b, -1), -EBADF);
        assert_int_equal(outbuf_pending(&b), 1);
        outbuf_done(&b);
}

static void test_clear_keeps_memory(void **state) {
        OutBuf b = {};
        char *mem;

        assert_int_equal(outbuf_append(&b, "abc", 3), 0);
        mem = b.data;
        outbuf_clear(&b);
        assert_int_equal(outbuf_pending(&b), 0);
        assert_ptr_equal(b.data, mem);
        assert_int_equal(b.cap, 1024);
        assert_int_equal(outbuf_append(&b, "de", 2), 0);
        assert_memory_equal(queued(&b), "de", 2);
        outbuf_done(&b);
}

static void test_trim(void **state) {
        char big[2000] = {};
        OutBuf b = {};

        assert_int_equal(outbuf_append(&b, big, sizeof(big)), 0);
        assert_int_equal(b.cap, 2048);

        /* Not while anything is queued. */
        outbuf_trim(&b, 1024);
        assert_non_null(b.data);

        outbuf_clear(&b);
        /* A capacity at the limit is kept; above it, the memory goes. */
        outbuf_trim(&b, 2048);
        assert_non_null(b.data);
        assert_int_equal(b.cap, 2048);
        outbuf_trim(&b, 2047);
        assert_null(b.data);
        assert_int_equal(b.cap, 0);

        /* And the buffer works again from scratch. */
        assert_int_equal(outbuf_append(&b, "z", 1), 0);
        assert_int_equal(b.cap, 1024);
        outbuf_done(&b);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_empty),
                cmocka_unit_test(test_append_keeps_order),
                cmocka_unit_test(test_growth_doubles),
                cmocka_unit_test(test_overflow_is_enomem),
                cmocka_unit_test(test_compaction_reuses_sent_space),
                cmocka_unit_test(test_flush_partial_when_socket_full),
                cmocka_unit_test(test_flush_to_closed_peer_is_epipe),
                cmocka_unit_test(test_flush_bad_fd),
                cmocka_unit_test(test_clear_keeps_memory),
                cmocka_unit_test(test_trim),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
