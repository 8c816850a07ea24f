/* SPDX-License-Identifier: MIT */
/*
 * One client connection end to end: the test holds the client end of a socketpair and plays the
 * launcher on the other end of a real launcher link; conn, service, dispatcher, ledger and config are
 * the real modules.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "shared/limits.h"
#include "shared/config.h"
#include "front/conn.h"
#include "front/conn-poll.h"
#include "front/dispatcher.h"
#include "front/launcher-link.h"
#include "front/ledger.h"
#include "shared/log.h"
#include "shared/lproto.h"
#include "front/service.h"
#include "shared/util.h"

#define MAX_FRAME 1024

typedef struct Fixture {
        char dir[64];
        char sock_path[128];
        sd_event *event;
        ConnPoll *poll;
        Ledger *ledger;
        LauncherLink *link;
        Dispatcher *dispatcher;
        Service *service;
        Conn *conn;
        bool closed;
        int listen_fd;
        int launcher_fd; /* the launcher side of the link */
        int client_fd;   /* the client side of the connection */
        char in[1 << 16];
        size_t in_len;
} Fixture;

static void write_file(const char *dir, const char *name, const char *text) {
        char path[256];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        f = fopen(path, "we");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
}

static void pump(Fixture *f) {
        while (sd_event_run(f->event, 0) > 0)
                ;
}

static void pump_for(Fixture *f, uint64_t usec) {
        uint64_t end = now_usec(CLOCK_MONOTONIC) + usec;

        while (now_usec(CLOCK_MONOTONIC) < end)
                (void) sd_event_run(f->event, 10 * USEC_PER_MSEC);
        pump(f);
}

static void on_closed(Conn *c, void *userdata) {
        Fixture *f = userdata;

        f->closed = true;
        f->conn = conn_free(c);
}

static void on_link_message(const LauncherMsg *m, void *userdata) {
        Fixture *f = userdata;

        if (m->type == LMSG_RELOADED)
                service_launcher_reloaded(f->service, m->error);
        else
                dispatcher_handle_message(f->dispatcher, m);
}

static void on_link_connected(void *userdata) {
        Fixture *f = userdata;
        dispatcher_link_up(f->dispatcher);
}

static void on_link_disconnected(void *userdata) {
        Fixture *f = userdata;
        dispatcher_link_down(f->dispatcher);
        service_launcher_down(f->service);
}

/* Everything the front sent the launcher so far, as one string. */
static char *launcher_read(Fixture *f) {
        static char buf[1 << 16];
        size_t len = 0;
        ssize_t n;

        pump(f);
        while ((n = recv(f->launcher_fd, buf + len, sizeof(buf) - 1 - len, MSG_DONTWAIT)) > 0)
                len += (size_t) n;
        buf[len] = '\0';
        return buf;
}

static void launcher_send(Fixture *f, const char *line) {
        assert_int_equal(send(f->launcher_fd, line, strlen(line), MSG_NOSIGNAL), (ssize_t) strlen(line));
        pump(f);
}

static void client_send(Fixture *f, const char *data, size_t len) {
        assert_int_equal(send(f->client_fd, data, len, MSG_NOSIGNAL), (ssize_t) len);
        pump(f);
}

static void client_sends(Fixture *f, const char *s) {
        client_send(f, s, strlen(s));
}

/* The next answer line (without "\n"), or NULL if none has arrived. */
static const char *client_line(Fixture *f) {
        static char line[1 << 16];
        char *nl;
        ssize_t n;

        pump(f);
        for (;;) {
                nl = memchr(f->in, '\n', f->in_len);
                if (nl)
                        break;
                n = recv(f->client_fd, f->in + f->in_len, sizeof(f->in) - f->in_len, MSG_DONTWAIT);
                if (n <= 0)
                        return NULL;
                f->in_len += (size_t) n;
        }
        memcpy(line, f->in, (size_t) (nl - f->in));
        line[nl - f->in] = '\0';
        f->in_len -= (size_t) (nl + 1 - f->in);
        memmove(f->in, nl + 1, f->in_len);
        return line;
}

static void expect_line(Fixture *f, const char *expected) {
        const char *l = client_line(f);

        if (!l)
                fail_msg("no answer; expected %s", expected);
        assert_string_equal(l, expected);
}

static void expect_prefix(Fixture *f, const char *prefix) {
        const char *l = client_line(f);

        if (!l)
                fail_msg("no answer; expected %s...", prefix);
        if (!startswith(l, prefix))
                fail_msg("got %s; expected %s...", l, prefix);
}

static void expect_no_line(Fixture *f) {
        const char *l = client_line(f);

        if (l)
                fail_msg("unexpected answer %s", l);
}

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        struct passwd *pw = getpwuid(getuid());
        char text[1024], path[256];
        Config *cfg = NULL;
        int fds[2];

        assert_non_null(f);
        assert_non_null(pw);
        strcpy(f->dir, "/tmp/test-front-conn-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->sock_path, sizeof(f->sock_path), "%s/l.sock", f->dir);
        snprintf(path, sizeof(path), "%s/tasks.d", f->dir);
        assert_int_equal(mkdir(path, 0755), 0);
        snprintf(text, sizeof(text),
                 "{\"launcher\": \"%s\", \"max_frame_bytes\": %d, \"admins\": {\"users\": [\"%s\"]},"
                 " \"commands\": [{\"cmd\": \"true\", \"user\": \"%s\", \"allow\": {\"users\": [\"%s\"]}}],"
                 " \"php_classes\": {\"Lamb\": \"lamb\"}}\n",
                 f->sock_path, MAX_FRAME, pw->pw_name, pw->pw_name, pw->pw_name);
        write_file(f->dir, "asynctask.json", text);
        snprintf(text, sizeof(text),
                 "{\"name\": \"job\", \"exec\": [\"/bin/true\"], \"user\": \"%s\", \"max_args\": 1,"
                 " \"allow\": {\"users\": [\"%s\"]}}\n",
                 pw->pw_name, pw->pw_name);
        write_file(f->dir, "tasks.d/job.json", text);
        /* The php_classes task: it takes no arguments (its clients may not steer the PHP runner). */
        snprintf(text, sizeof(text),
                 "{\"name\": \"lamb\", \"exec\": [\"/bin/true\"], \"user\": \"%s\","
                 " \"allow\": {\"users\": [\"%s\"]}}\n",
                 pw->pw_name, pw->pw_name);
        write_file(f->dir, "tasks.d/lamb.json", text);
        snprintf(path, sizeof(path), "%s/asynctask.json", f->dir);
        assert_int_equal(config_load(path, NULL, NULL, &cfg), 0);

        f->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(f->listen_fd >= 0);
        strcpy(sa.sun_path, f->sock_path);
        assert_int_equal(bind(f->listen_fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        assert_int_equal(listen(f->listen_fd, 8), 0);

        assert_int_equal(sd_event_new(&f->event), 0);
        assert_int_equal(conn_poll_new(f->event, &f->poll), 0);
        assert_int_equal(ledger_new(&f->ledger), 0);
        assert_int_equal(launcher_link_new(f->event, f->sock_path,
                                           &(LauncherLinkEvents){
                                                   .connected = on_link_connected,
                                                   .disconnected = on_link_disconnected,
                                                   .message = on_link_message,
                                           },
                                           f, &f->link),
                         0);
        assert_int_equal(dispatcher_new(f->event, f->ledger, NULL, f->link, cfg, NULL, NULL, &f->dispatcher),
                         0);
        assert_int_equal(
                service_new(f->event, cfg, f->ledger, NULL, f->dispatcher, f->link, NULL, &f->service), 0);
        assert_int_equal(launcher_link_start(f->link), 0);
        f->launcher_fd = accept4(f->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        assert_true(f->launcher_fd >= 0);
        assert_string_equal(launcher_read(f), "{\"type\":\"list\"}\n");
        launcher_send(f, "{\"type\":\"list_end\"}\n");
        assert_true(dispatcher_link_ready(f->dispatcher));

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
        f->client_fd = fds[1];
        assert_int_equal(
                conn_new(f->poll, f->event, fds[0], NULL, 0, f->service, MAX_FRAME, on_closed, f, &f->conn),
                0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;
        char cmd[128];

        conn_free(f->conn);
        service_free(f->service);
        dispatcher_free(f->dispatcher);
        launcher_link_free(f->link);
        ledger_free(f->ledger);
        conn_poll_free(f->poll);
        sd_event_unref(f->event);
        close(f->client_fd);
        close(f->launcher_fd);
        close(f->listen_fd);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        assert_int_equal(system(cmd), 0);
        free(f);
        return 0;
}

#define PONG "{\"ok\":true,\"pong\":true,\"version\":\"" ASYNCTASK_VERSION "\"}"

/* The "seed_refused" count of a stats answer, asked on a connection of its own. */
static long long stats_seed_refused(Fixture *f) {
        static const char req[] = "{\"op\":\"stats\"}\n";
        char buf[4096];
        size_t len = 0;
        Conn *c = NULL;
        const char *p;
        int fds[2];
        ssize_t n;

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
        assert_int_equal(conn_new(f->poll, f->event, fds[0], NULL, 0, f->service, MAX_FRAME, NULL, NULL, &c),
                         0);
        assert_int_equal(send(fds[1], req, sizeof(req) - 1, MSG_NOSIGNAL), (ssize_t) sizeof(req) - 1);
        while (!memchr(buf, '\n', len)) {
                pump(f);
                n = recv(fds[1], buf + len, sizeof(buf) - 1 - len, MSG_DONTWAIT);
                assert_true(n > 0);
                len += (size_t) n;
        }
        buf[len] = '\0';
        conn_free(c);
        close(fds[1]);
        p = strstr(buf, "\"seed_refused\":");
        assert_non_null(p);
        return strtoll(p + strlen("\"seed_refused\":"), NULL, 10);
}

static void test_pipelined_frames_answered_in_order(void **state) {
        Fixture *f = *state;

        /* Many frames in one write, empty lines and CRLF among them, one answer per non-empty frame. */
        client_sends(f, "{\"op\":\"ping\"}\n\n\r\n{\"op\":\"status\",\"id\":99}\r\nnot json\n"
                        "{\"task\":\"job\"}\n{\"op\":\"status\",\"id\":1,\"bogus\":1}\n{\"op\":\"ping\"}\n");
        expect_line(f, PONG);
        expect_line(f, "{\"ok\":false,\"code\":\"not_found\",\"error\":\"no task with id 99\"}");
        expect_prefix(f, "{\"ok\":false,\"code\":\"bad_frame\"");
        expect_line(f, "{\"ok\":true,\"id\":1,\"state\":\"queued\"}");
        expect_prefix(f, "{\"ok\":false,\"code\":\"bad_request\"");
        expect_line(f, PONG);
        expect_no_line(f);
        assert_false(f->closed);
}

static void test_frame_split_across_writes(void **state) {
        Fixture *f = *state;

        client_sends(f, "{\"op\":");
        expect_no_line(f);
        client_sends(f, "\"ping\"}");
        expect_no_line(f);
        client_sends(f, "\n{\"op\":\"ping\"}\n");
        expect_line(f, PONG);
        expect_line(f, PONG);
}

static void test_frame_too_large_costs_only_that_frame(void **state) {
        Fixture *f = *state;
        char big[MAX_FRAME + 64];

        /* Exactly the limit is fine (a valid frame of MAX_FRAME bytes); one byte more is not. */
        for (size_t extra = 0; extra <= 1; extra++) {
                size_t len = MAX_FRAME + extra;
                const char *head = "{\"op\":\"ping\",\"x\":\"", *tail = "\"}";

                memset(big, 'a', sizeof(big));
                memcpy(big, head, strlen(head));
                memcpy(big + len - strlen(tail), tail, strlen(tail));
                big[len] = '\n';
                client_send(f, big, len + 1);
                if (extra == 0)
                        expect_prefix(f, "{\"ok\":false,\"code\":\"bad_request\""); /* "x": unknown key */
                else
                        expect_line(f, "{\"ok\":false,\"code\":\"frame_too_large\",\"error\":\"frame "
                                       "exceeds 1024 bytes\"}");
        }
        client_sends(f, "{\"op\":\"ping\"}\n");
        expect_line(f, PONG);
        assert_false(f->closed);
}

static void test_wait_holds_later_frames(void **state) {
        Fixture *f = *state;

        client_sends(f, "{\"task\":\"job\",\"args\":[\"x\"]}\n");
        expect_line(f, "{\"ok\":true,\"id\":1,\"state\":\"queued\"}");
        assert_non_null(strstr(launcher_read(f), "\"type\":\"launch\",\"id\":1"));

        /* The wait is answered when the task ends; the ping behind it only after that. */
        client_sends(f, "{\"op\":\"wait\",\"id\":1,\"timeout\":10}\n{\"op\":\"ping\"}\n");
        expect_no_line(f);
        launcher_send(f, "{\"type\":\"finished\",\"id\":1,\"result\":\"exit-code\",\"exit_status\":4}\n");
        expect_prefix(f, "{\"ok\":true,\"id\":1,\"task\":\"job\"");
        expect_line(f, PONG);
        assert_string_equal(launcher_read(f), "{\"type\":\"ack\",\"id\":1}\n");
}

static void test_wait_timeout_answers_current_state(void **state) {
        Fixture *f = *state;
        const char *l;

        client_sends(f,
                     "{\"task\":\"job\"}\n{\"op\":\"wait\",\"id\":1,\"timeout\":0.1}\n{\"op\":\"ping\"}\n");
        expect_line(f, "{\"ok\":true,\"id\":1,\"state\":\"queued\"}");
        expect_no_line(f);
        pump_for(f, 200 * USEC_PER_MSEC);
        l = client_line(f);
        assert_non_null(l);
        assert_non_null(strstr(l, "\"state\":\"running\""));
        expect_line(f, PONG);
}

static void test_half_frame_at_eof_is_dropped(void **state) {
        Fixture *f = *state;

        client_sends(f, "{\"op\":\"ping\"}\n{\"task\":\"job\"");
        assert_int_equal(shutdown(f->client_fd, SHUT_WR), 0);
        pump(f);
        expect_line(f, PONG);
        expect_no_line(f);
        assert_true(f->closed);
        assert_int_equal(recv(f->client_fd, f->in, sizeof(f->in), MSG_DONTWAIT), 0); /* EOF */
        assert_null(ledger_get(f->ledger, 1));                                       /* nothing accepted */
}

static void test_answers_flushed_after_peer_half_close(void **state) {
        Fixture *f = *state;

        /* A client may send everything, shut down its side, then read: every answer still comes. */
        client_sends(f,
                     "{\"task\":\"job\"}\n{\"op\":\"wait\",\"id\":1,\"timeout\":10}\n{\"op\":\"ping\"}\n");
        assert_int_equal(shutdown(f->client_fd, SHUT_WR), 0);
        pump(f);
        expect_line(f, "{\"ok\":true,\"id\":1,\"state\":\"queued\"}");
        assert_false(f->closed);
        launcher_send(f, "{\"type\":\"finished\",\"id\":1,\"result\":\"success\",\"exit_status\":0}\n");
        expect_prefix(f, "{\"ok\":true,\"id\":1,");
        expect_line(f, PONG);
        assert_true(f->closed);
}

static void test_peer_gone_during_wait(void **state) {
        Fixture *f = *state;

        client_sends(f, "{\"task\":\"job\"}\n{\"op\":\"wait\",\"id\":1,\"timeout\":10}\n");
        expect_line(f, "{\"ok\":true,\"id\":1,\"state\":\"queued\"}");
        close(f->client_fd);
        f->client_fd = -1;
        pump(f);
        assert_true(f->closed);
        /* The abandoned wait is gone with the connection: the task ending must not touch it. */
        launcher_send(f, "{\"type\":\"started\",\"id\":1,\"unit\":\"pid:5\"}\n");
        launcher_send(f, "{\"type\":\"finished\",\"id\":1,\"result\":\"success\",\"exit_status\":0}\n");
        assert_int_equal(ledger_get(f->ledger, 1)->state, TASK_SUCCEEDED);
        f->client_fd = socket(AF_UNIX, SOCK_STREAM, 0); /* for teardown */
}

static void test_backpressure_bounds_buffering(void **state) {
        Fixture *f = *state;
        const char frame[] = "{\"op\":\"status\",\"id\":1}\n";
        size_t sent = 0, answered = 0, total_frames;
        char chunk[64 * 1024];

        client_sends(f, "{\"task\":\"job\"}\n");
        expect_line(f, "{\"ok\":true,\"id\":1,\"state\":\"queued\"}");

        /* A client that writes requests and never reads: once its answers back up, we stop reading,
         * so its writes stall instead of our memory growing. */
        for (size_t i = 0; i + sizeof(frame) - 1 <= sizeof(chunk); i += sizeof(frame) - 1)
                memcpy(chunk + i, frame, sizeof(frame) - 1);
        fcntl(f->client_fd, F_SETFL, O_NONBLOCK);
        for (int round = 0; round < 200; round++) {
                ssize_t n = send(f->client_fd, chunk, sizeof(chunk) - sizeof(chunk) % (sizeof(frame) - 1),
                                 MSG_NOSIGNAL);
                if (n > 0)
                        sent += (size_t) n;
                pump(f);
        }
        /* 200 rounds could carry 12 MiB; the socket buffers plus one high-water mark hold far less. */
        assert_true(sent < 8u * 1024 * 1024);
        assert_true(sent > CONN_OUTPUT_HIGH_WATER / 8);

        /* Whatever was sent gets answered, in order, once the client reads. (A partial frame may sit
         * at the end of what the socket took: complete it.) */
        while (sent % (sizeof(frame) - 1) != 0) {
                size_t off = sent % (sizeof(frame) - 1);
                ssize_t n = send(f->client_fd, frame + off, sizeof(frame) - 1 - off, MSG_NOSIGNAL);
                if (n > 0)
                        sent += (size_t) n;
                pump(f);
                if (client_line(f))
                        answered++;
        }
        total_frames = sent / (sizeof(frame) - 1);
        for (int idle = 0; answered < total_frames && idle < 1000;) {
                const char *l = client_line(f);
                if (!l) {
                        idle++;
                        continue;
                }
                assert_true(startswith(l, "{\"ok\":true,\"id\":1,"));
                answered++;
        }
        assert_int_equal(answered, total_frames);
        assert_false(f->closed);
}

static void test_shutdown_answers_what_was_received(void **state) {
        Fixture *f = *state;

        client_sends(f, "{\"task\":\"job\"}\n{\"op\":\"wait\",\"id\":1,\"timeout\":60}\n{\"op\":\"ping\"}\n"
                        "{\"task\":\"job\"}\n");
        expect_line(f, "{\"ok\":true,\"id\":1,\"state\":\"queued\"}");
        expect_no_line(f);

        /* SIGTERM: the wait is answered now with the current record, the rest in order; a new
         * submission is refused, since nothing will run it. Then the daemon shuts down its side. */
        service_shutdown(f->service);
        conn_shutdown(f->conn);
        pump(f);
        expect_prefix(f, "{\"ok\":true,\"id\":1,\"task\":\"job\"");
        expect_line(f, PONG);
        expect_line(f, "{\"ok\":false,\"code\":\"unavailable\",\"error\":\"the daemon is shutting down; "
                       "nothing was "
                       "accepted\"}");
        assert_int_equal(recv(f->client_fd, f->in, sizeof(f->in), MSG_DONTWAIT), 0); /* EOF */

        /* What the client still sends is read (a submission is refused, unanswered) until it closes
         * too: closing earlier would reset the connection under it. */
        assert_false(f->closed);
        client_sends(f, "{\"op\":\"ping\"}\ns:4:\"true\";\n");
        assert_false(f->closed);
        assert_int_equal(stats_seed_refused(f), 1);
        assert_int_equal(shutdown(f->client_fd, SHUT_WR), 0);
        pump(f);
        assert_true(f->closed);
        assert_null(ledger_get(f->ledger, 2));
}

static void test_shutdown_waits_a_moment_for_the_peer_to_close(void **state) {
        Fixture *f = *state;

        client_sends(f, "{\"op\":\"ping\"}\n");
        expect_line(f, PONG);
        service_shutdown(f->service);
        conn_shutdown(f->conn);
        pump(f);
        assert_int_equal(recv(f->client_fd, f->in, sizeof(f->in), MSG_DONTWAIT), 0); /* EOF */
        assert_false(f->closed);
        pump_for(f, SHUTDOWN_LINGER_USEC + 200 * USEC_PER_MSEC);
        assert_true(f->closed);
}

static void test_frames_behind_a_wait_handled_after_the_peer_is_gone(void **state) {
        Fixture *f = *state;

        /* The client closes: nobody reads the wait's answer, so the frame behind it goes on at once. */
        client_sends(f,
                     "{\"task\":\"job\"}\n{\"op\":\"wait\",\"id\":1,\"timeout\":60}\n{\"task\":\"job\"}\n");
        expect_line(f, "{\"ok\":true,\"id\":1,\"state\":\"queued\"}");
        close(f->client_fd);
        f->client_fd = -1;
        pump(f);
        assert_true(f->closed);
        assert_non_null(ledger_get(f->ledger, 2));
        f->client_fd = socket(AF_UNIX, SOCK_STREAM, 0); /* for teardown */
}

static void test_input_read_to_the_end_when_answers_cannot_be_written(void **state) {
        Fixture *f = *state;

        /* The client reads no more (writing to it fails): everything it sends is still handled, a wait
         * without holding the frames behind it, until it ends its input. */
        assert_int_equal(shutdown(f->client_fd, SHUT_RD), 0);
        client_sends(f,
                     "{\"task\":\"job\"}\n{\"op\":\"wait\",\"id\":1,\"timeout\":60}\n{\"task\":\"job\"}\n");
        assert_non_null(ledger_get(f->ledger, 2));
        assert_false(f->closed);
        client_sends(f, "s:4:\"true\";\n{\"op\":\"status\",\"id\":1}\n");
        assert_string_equal(ledger_get(f->ledger, 3)->cmd, "true");
        assert_false(f->closed);
        assert_int_equal(shutdown(f->client_fd, SHUT_WR), 0);
        pump(f);
        assert_true(f->closed);
}

static void test_reload_op_answered_when_in_effect(void **state) {
        Fixture *f = *state;
        char path[256];

        /* A new task appears: the reload asks the launcher, and answers once both have it. */
        write_file(f->dir, "tasks.d/new.json", "{\"name\": \"new\", \"exec\": [\"/bin/true\"]}\n");
        client_sends(f, "{\"op\":\"reload\"}\n{\"op\":\"ping\"}\n");
        expect_no_line(f);
        assert_string_equal(launcher_read(f), "{\"type\":\"reload\"}\n");
        assert_null(config_find_task(service_config(f->service), "new"));
        launcher_send(f, "{\"type\":\"reloaded\"}\n");
        expect_line(f, "{\"ok\":true}");
        expect_line(f, PONG);
        assert_non_null(config_find_task(service_config(f->service), "new"));

        /* A broken file: refused with the first error, the old config kept, the launcher not asked. */
        write_file(f->dir, "tasks.d/broken.json", "{\"name\": \"broken\", \"exec\": 5}\n");
        client_sends(f, "{\"op\":\"reload\"}\n");
        expect_prefix(f, "{\"ok\":false,\"code\":\"bad_request\",\"error\":\"");
        assert_string_equal(launcher_read(f), "");
        assert_non_null(config_find_task(service_config(f->service), "new"));
        snprintf(path, sizeof(path), "%s/tasks.d/broken.json", f->dir);
        unlink(path);

        /* The launcher refuses: the old config stays too. */
        snprintf(path, sizeof(path), "%s/tasks.d/new.json", f->dir);
        unlink(path);
        client_sends(f, "{\"op\":\"reload\"}\n");
        assert_string_equal(launcher_read(f), "{\"type\":\"reload\"}\n");
        launcher_send(f, "{\"type\":\"reloaded\",\"error\":\"nope\"}\n");
        expect_line(f, "{\"ok\":false,\"code\":\"bad_request\",\"error\":\"the launcher refused the new "
                       "configuration: nope\"}");
        assert_non_null(config_find_task(service_config(f->service), "new"));
}

static void test_seed_frames_get_no_answer(void **state) {
        Fixture *f = *state;
        char big[MAX_FRAME + 64];

        /* Seed frames, accepted and refused, among JSON ones: only the JSON ones are answered, in
         * order; the refusals are counted. */
        client_sends(f, "s:4:\"true\";\n{\"op\":\"ping\"}\nO:4:\"Lamb\":0:{}\ns:5:\"false\";\n"
                        "s:9:\"true\";\nO:5:\"Sheep\":0:{}\n{\"op\":\"status\",\"id\":2}\n");
        expect_line(f, PONG);
        expect_prefix(f, "{\"ok\":true,\"id\":2,\"task\":\"lamb\"");
        expect_no_line(f);
        assert_string_equal(ledger_get(f->ledger, 1)->cmd, "true");
        assert_string_equal(ledger_get(f->ledger, 2)->task, "lamb");
        assert_null(ledger_get(f->ledger, 3));
        assert_int_equal(stats_seed_refused(f), 3);

        /* An over-long frame that starts like a seed frame is one: no frame_too_large answer. */
        memset(big, 'x', sizeof(big));
        memcpy(big, "s:2000:\"", 8);
        big[sizeof(big) - 1] = '\n';
        client_send(f, big, sizeof(big));
        client_sends(f, "{\"op\":\"ping\"}\n");
        expect_line(f, PONG);
        expect_no_line(f);
        assert_int_equal(stats_seed_refused(f), 4);
        assert_false(f->closed);
}

static void test_seed_frame_behind_a_wait(void **state) {
        Fixture *f = *state;

        client_sends(f, "{\"task\":\"job\"}\n");
        expect_line(f, "{\"ok\":true,\"id\":1,\"state\":\"queued\"}");
        assert_non_null(strstr(launcher_read(f), "\"type\":\"launch\",\"id\":1"));

        /* Held behind the wait like any frame; when it goes on, it adds nothing to the answers. */
        client_sends(f, "{\"op\":\"wait\",\"id\":1,\"timeout\":10}\ns:4:\"true\";\n{\"op\":\"ping\"}\n");
        expect_no_line(f);
        assert_null(ledger_get(f->ledger, 2));
        launcher_send(f, "{\"type\":\"finished\",\"id\":1,\"result\":\"success\",\"exit_status\":0}\n");
        expect_prefix(f, "{\"ok\":true,\"id\":1,\"task\":\"job\"");
        expect_line(f, PONG);
        expect_no_line(f);
        assert_string_equal(ledger_get(f->ledger, 2)->cmd, "true");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_pipelined_frames_answered_in_order, setup, teardown),
                cmocka_unit_test_setup_teardown(test_frame_split_across_writes, setup, teardown),
                cmocka_unit_test_setup_teardown(test_frame_too_large_costs_only_that_frame, setup, teardown),
                cmocka_unit_test_setup_teardown(test_wait_holds_later_frames, setup, teardown),
                cmocka_unit_test_setup_teardown(test_wait_timeout_answers_current_state, setup, teardown),
                cmocka_unit_test_setup_teardown(test_half_frame_at_eof_is_dropped, setup, teardown),
                cmocka_unit_test_setup_teardown(test_answers_flushed_after_peer_half_close, setup, teardown),
                cmocka_unit_test_setup_teardown(test_peer_gone_during_wait, setup, teardown),
                cmocka_unit_test_setup_teardown(test_backpressure_bounds_buffering, setup, teardown),
                cmocka_unit_test_setup_teardown(test_shutdown_answers_what_was_received, setup, teardown),
                cmocka_unit_test_setup_teardown(test_shutdown_waits_a_moment_for_the_peer_to_close, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_frames_behind_a_wait_handled_after_the_peer_is_gone,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_input_read_to_the_end_when_answers_cannot_be_written,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_reload_op_answered_when_in_effect, setup, teardown),
                cmocka_unit_test_setup_teardown(test_seed_frames_get_no_answer, setup, teardown),
                cmocka_unit_test_setup_teardown(test_seed_frame_behind_a_wait, setup, teardown),
        };

        log_set_max_level(LOG_ERR);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
