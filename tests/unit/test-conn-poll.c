/* SPDX-License-Identifier: MIT */
/* The connections' epoll set: one loop iteration handles every ready socket, and a watch removed
 * during a wakeup is not called for an event already fetched. Real sockets, a real sd-event loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "front/conn-poll.h"

#define N_SOCKETS 40

typedef struct Peer {
        int fds[2]; /* [0] watched, [1] the writer */
        ConnPollWatch *watch;
        unsigned calls;
        struct Peer *victim; /* removed and closed by this peer's callback */
} Peer;

static void on_ready(uint32_t revents, void *userdata) {
        Peer *p = userdata;
        char buf[16];

        p->calls++;
        if (revents & EPOLLIN)
                (void) recv(p->fds[0], buf, sizeof(buf), MSG_DONTWAIT);
        if (p->victim && p->victim->watch) {
                p->victim->watch = conn_poll_remove(p->victim->watch);
                close(p->victim->fds[0]);
                p->victim->fds[0] = -1;
        }
}

static void peers_open(ConnPoll *poll, Peer *peers, size_t n) {
        for (size_t i = 0; i < n; i++) {
                assert_int_equal(
                        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, peers[i].fds), 0);
                assert_int_equal(
                        conn_poll_add(poll, peers[i].fds[0], EPOLLIN, on_ready, &peers[i], &peers[i].watch),
                        0);
        }
}

static void peers_close(Peer *peers, size_t n) {
        for (size_t i = 0; i < n; i++) {
                peers[i].watch = conn_poll_remove(peers[i].watch);
                if (peers[i].fds[0] >= 0)
                        close(peers[i].fds[0]);
                close(peers[i].fds[1]);
        }
}

/* Every socket written before the loop runs is handled in the one iteration that wakes for them. */
static void test_one_iteration_handles_all_ready(void **state) {
        sd_event *event = NULL;
        ConnPoll *poll = NULL;
        Peer peers[N_SOCKETS] = {};

        assert_int_equal(sd_event_new(&event), 0);
        assert_int_equal(conn_poll_new(event, &poll), 0);
        peers_open(poll, peers, N_SOCKETS);
        for (size_t i = 0; i < N_SOCKETS; i++)
                assert_int_equal(send(peers[i].fds[1], "x", 1, 0), 1);

        assert_int_equal(sd_event_run(event, 1000 * 1000), 1);
        for (size_t i = 0; i < N_SOCKETS; i++)
                assert_int_equal(peers[i].calls, 1);

        /* Edge-triggered: nothing new, no call. */
        assert_int_equal(sd_event_run(event, 0), 0);
        for (size_t i = 0; i < N_SOCKETS; i++)
                assert_int_equal(peers[i].calls, 1);

        peers_close(peers, N_SOCKETS);
        conn_poll_free(poll);
        sd_event_unref(event);
}

/* Each peer removes (and closes) the next one: whichever is handled first, the other is never
 * called, though both were ready in the same wakeup. */
static void test_removed_during_wakeup_not_called(void **state) {
        sd_event *event = NULL;
        ConnPoll *poll = NULL;
        Peer peers[2] = {};

        assert_int_equal(sd_event_new(&event), 0);
        assert_int_equal(conn_poll_new(event, &poll), 0);
        peers_open(poll, peers, 2);
        peers[0].victim = &peers[1];
        peers[1].victim = &peers[0];
        assert_int_equal(send(peers[0].fds[1], "x", 1, 0), 1);
        assert_int_equal(send(peers[1].fds[1], "x", 1, 0), 1);

        assert_int_equal(sd_event_run(event, 1000 * 1000), 1);
        assert_int_equal(peers[0].calls + peers[1].calls, 1);

        peers_close(peers, 2);
        conn_poll_free(poll);
        sd_event_unref(event);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_one_iteration_handles_all_ready),
                cmocka_unit_test(test_removed_during_wakeup_not_called),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
