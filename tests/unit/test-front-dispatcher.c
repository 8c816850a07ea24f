/* SPDX-License-Identifier: MIT */
/*
 * The dispatcher against a real ledger, a real config and a real launcher link, with the test playing
 * the launcher on the other end of the unix socket.
 */
#include <errno.h>
#include <fcntl.h>
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

#include "shared/config.h"
#include "front/dispatcher.h"
#include "front/launcher-link.h"
#include "front/ledger.h"
#include "shared/log.h"
#include "shared/lproto.h"
#include "shared/util.h"

typedef struct Fixture {
        char dir[64];
        char sock_path[128];
        sd_event *event;
        Config *cfg;
        Ledger *ledger;
        LauncherLink *link;
        Dispatcher *dispatcher;
        int listen_fd;
        int peer_fd; /* the launcher side of the link */
        char in[65536];
        size_t in_len;
        unsigned reconciled;
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

static void write_config(const char *dir, const char *sock_path, bool with_b) {
        char main_json[512], path[256];

        snprintf(path, sizeof(path), "%s/tasks.d", dir);
        (void) mkdir(path, 0755);
        snprintf(main_json, sizeof(main_json), "{\"launcher\": \"%s\", \"max_running\": 2}\n", sock_path);
        write_file(dir, "asynctask.json", main_json);
        write_file(dir, "tasks.d/a.json",
                   "{\"name\": \"a\", \"exec\": [\"/bin/true\"], \"user\": \"root\", \"max_args\": 2,"
                   " \"max_attempts\": 2, \"backoff_sec\": [0]}\n");
        snprintf(path, sizeof(path), "%s/tasks.d/b.json", dir);
        if (with_b)
                write_file(dir, "tasks.d/b.json",
                           "{\"name\": \"b\", \"exec\": [\"/bin/true\"], \"user\": \"root\", "
                           "\"concurrency\": 1}\n");
        else
                (void) unlink(path);
}

static Config *load_config(const char *dir) {
        char path[256];
        Config *c = NULL;

        snprintf(path, sizeof(path), "%s/asynctask.json", dir);
        assert_int_equal(config_load(path, NULL, NULL, &c), 0);
        return c;
}

/* Runs the loop until nothing is pending, then waits up to timeout_usec for something more. */
static void pump_for(Fixture *f, uint64_t timeout_usec) {
        while (sd_event_run(f->event, 0) > 0)
                ;
        if (timeout_usec > 0 && sd_event_run(f->event, timeout_usec) > 0)
                while (sd_event_run(f->event, 0) > 0)
                        ;
}

static void pump(Fixture *f) {
        pump_for(f, 0);
}

/* The next message the front sent to the launcher, or false if none is there. */
static bool peer_next(Fixture *f, LauncherMsg *ret) {
        char *nl;
        ssize_t n;

        pump(f);
        for (;;) {
                nl = memchr(f->in, '\n', f->in_len);
                if (nl)
                        break;
                n = recv(f->peer_fd, f->in + f->in_len, sizeof(f->in) - f->in_len, MSG_DONTWAIT);
                if (n <= 0)
                        return false;
                f->in_len += (size_t) n;
        }
        assert_int_equal(lmsg_parse(f->in, (size_t) (nl - f->in), ret), 0);
        f->in_len -= (size_t) (nl + 1 - f->in);
        memmove(f->in, nl + 1, f->in_len);
        return true;
}

static void expect_msg(Fixture *f, LauncherMsgType type, uint64_t id) {
        LauncherMsg m = {};

        assert_true(peer_next(f, &m));
        assert_string_equal(lmsg_type_to_string(m.type), lmsg_type_to_string(type));
        if (type != LMSG_LIST && type != LMSG_RELOAD)
                assert_int_equal(m.id, id);
        lmsg_done(&m);
}

static void expect_launch(Fixture *f, uint64_t id, unsigned attempt) {
        LauncherMsg m = {};

        assert_true(peer_next(f, &m));
        assert_string_equal(lmsg_type_to_string(m.type), "launch");
        assert_int_equal(m.id, id);
        assert_int_equal(m.attempt, attempt);
        lmsg_done(&m);
}

static void expect_nothing(Fixture *f) {
        LauncherMsg m = {};

        if (peer_next(f, &m))
                fail_msg("unexpected '%s' for task %llu", lmsg_type_to_string(m.type),
                         (unsigned long long) m.id);
}

static void peer_send(Fixture *f, const char *fmt, ...) {
        char line[512];
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
        va_end(ap);
        line[n++] = '\n';
        assert_int_equal(send(f->peer_fd, line, (size_t) n, MSG_NOSIGNAL), n);
        pump(f);
}

static void on_connected(void *userdata) {
        Fixture *f = userdata;
        dispatcher_link_up(f->dispatcher);
}

static void on_disconnected(void *userdata) {
        Fixture *f = userdata;
        dispatcher_link_down(f->dispatcher);
}

static void on_message(const LauncherMsg *m, void *userdata) {
        Fixture *f = userdata;
        dispatcher_handle_message(f->dispatcher, m);
}

static void on_drained(void *userdata) {
        Fixture *f = userdata;
        dispatcher_kick(f->dispatcher);
}

static void on_reconciled(void *userdata) {
        Fixture *f = userdata;
        f->reconciled++;
}

/* Accepts the link's (re)connection and answers its list with the given running ids. */
static void peer_accept(Fixture *f, const uint64_t *running, size_t n_running) {
        if (f->peer_fd >= 0)
                close(f->peer_fd);
        f->peer_fd = accept4(f->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        assert_true(f->peer_fd >= 0);
        f->in_len = 0;
        expect_msg(f, LMSG_LIST, 0);
        for (size_t i = 0; i < n_running; i++)
                peer_send(f, "{\"type\":\"running\",\"id\":%llu,\"unit\":\"pid:%llu\"}",
                          (unsigned long long) running[i], (unsigned long long) (1000 + running[i]));
        peer_send(f, "{\"type\":\"list_end\"}");
}

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));
        struct sockaddr_un sa = {.sun_family = AF_UNIX};

        assert_non_null(f);
        strcpy(f->dir, "/tmp/test-front-dispatcher-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->sock_path, sizeof(f->sock_path), "%s/l.sock", f->dir);
        write_config(f->dir, f->sock_path, true);
        f->cfg = load_config(f->dir);
        f->peer_fd = -1;

        f->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(f->listen_fd >= 0);
        strcpy(sa.sun_path, f->sock_path);
        assert_int_equal(bind(f->listen_fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        assert_int_equal(listen(f->listen_fd, 8), 0);

        assert_int_equal(sd_event_new(&f->event), 0);
        assert_int_equal(ledger_new(&f->ledger), 0);
        assert_int_equal(launcher_link_new(f->event, f->sock_path,
                                           &(LauncherLinkEvents){
                                                   .connected = on_connected,
                                                   .disconnected = on_disconnected,
                                                   .message = on_message,
                                                   .drained = on_drained,
                                           },
                                           f, &f->link),
                         0);
        assert_int_equal(dispatcher_new(f->event, f->ledger, NULL, f->link, f->cfg,
                                        &(DispatcherEvents){.reconciled = on_reconciled}, f, &f->dispatcher),
                         0);
        assert_int_equal(launcher_link_start(f->link), 0);
        assert_false(dispatcher_link_ready(f->dispatcher));
        peer_accept(f, NULL, 0);
        assert_true(dispatcher_link_ready(f->dispatcher));
        assert_int_equal(f->reconciled, 1);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;
        char cmd[128];

        dispatcher_free(f->dispatcher);
        launcher_link_free(f->link);
        ledger_free(f->ledger);
        config_free(f->cfg);
        sd_event_unref(f->event);
        if (f->peer_fd >= 0)
                close(f->peer_fd);
        close(f->listen_fd);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        assert_int_equal(system(cmd), 0);
        free(f);
        return 0;
}

static TaskRecord *submit_at(Fixture *f, const char *task, uint64_t run_after) {
        TaskSubmission sub = {
                .task = task,
                .submitter = "uid:0",
                .max_attempts =
                        config_find_task(f->cfg, task) ? config_find_task(f->cfg, task)->max_attempts : 1,
                .run_after = run_after,
        };
        TaskRecord *t = NULL;
        bool existing = false;

        assert_int_equal(ledger_submit(f->ledger, &sub, now_usec(CLOCK_REALTIME), &t, &existing), 0);
        dispatcher_kick(f->dispatcher);
        return t;
}

static TaskRecord *submit(Fixture *f, const char *task) {
        return submit_at(f, task, 0);
}

static void test_max_running_and_concurrency(void **state) {
        Fixture *f = *state;
        TaskRecord *b1 = submit(f, "b"), *b2 = submit(f, "b"), *a3 = submit(f, "a"), *a4 = submit(f, "a");

        /* max_running 2; b allows one at a time, so the second b waits and a goes first. */
        expect_launch(f, b1->id, 1);
        expect_launch(f, a3->id, 1);
        expect_nothing(f);
        assert_int_equal(dispatcher_n_running(f->dispatcher), 2);
        assert_int_equal(b2->state, TASK_QUEUED);
        assert_int_equal(a4->state, TASK_QUEUED);
        assert_true(b1->launch_pending);

        peer_send(f, "{\"type\":\"started\",\"id\":%llu,\"unit\":\"pid:7\"}", (unsigned long long) b1->id);
        assert_false(b1->launch_pending);
        assert_string_equal(b1->unit, "pid:7");

        /* b1 ends: its result is acked and the next b may start. */
        peer_send(f, "{\"type\":\"finished\",\"id\":%llu,\"result\":\"success\",\"exit_status\":0}",
                  (unsigned long long) b1->id);
        assert_int_equal(b1->state, TASK_SUCCEEDED);
        expect_msg(f, LMSG_ACK, b1->id);
        expect_launch(f, b2->id, 1);
        expect_nothing(f);
        assert_int_equal(a4->state, TASK_QUEUED);
        assert_int_equal(dispatcher_n_running(f->dispatcher), 2);
}

static void test_failure_is_retried_then_final(void **state) {
        Fixture *f = *state;
        TaskRecord *t = submit(f, "a");

        expect_launch(f, t->id, 1);
        peer_send(f, "{\"type\":\"finished\",\"id\":%llu,\"result\":\"exit-code\",\"exit_status\":3}",
                  (unsigned long long) t->id);
        expect_msg(f, LMSG_ACK, t->id);
        /* backoff_sec [0]: queued again and relaunched at once as attempt 2 of 2. */
        expect_launch(f, t->id, 2);
        peer_send(f, "{\"type\":\"finished\",\"id\":%llu,\"result\":\"exit-code\",\"exit_status\":3}",
                  (unsigned long long) t->id);
        expect_msg(f, LMSG_ACK, t->id);
        expect_nothing(f);
        assert_int_equal(t->state, TASK_FAILED);
        assert_int_equal(t->attempts, 2);
        assert_int_equal(t->last.exit_status, 3);
        assert_int_equal(dispatcher_n_running(f->dispatcher), 0);
}

static void test_rejected_is_not_acked(void **state) {
        Fixture *f = *state;
        TaskRecord *t = submit(f, "b");

        expect_launch(f, t->id, 1);
        peer_send(f, "{\"type\":\"rejected\",\"id\":%llu,\"error\":\"no task named 'b' here\"}",
                  (unsigned long long) t->id);
        expect_nothing(f);
        assert_int_equal(t->state, TASK_FAILED);
        assert_string_equal(t->last.result, "rejected");
        assert_string_equal(t->last.error, "no task named 'b' here");
}

static void test_launches_wait_for_the_link(void **state) {
        Fixture *f = *state;
        TaskRecord *t;

        /* The launcher goes away: nothing is launched until it is back and has listed its runs. */
        close(f->peer_fd);
        f->peer_fd = -1;
        pump(f);
        assert_false(dispatcher_link_ready(f->dispatcher));
        assert_false(launcher_link_is_connected(f->link));
        t = submit(f, "a");
        pump(f);
        assert_int_equal(t->state, TASK_QUEUED);

        pump_for(f, 300 * USEC_PER_MSEC); /* the first reconnect comes after 100 ms */
        assert_true(launcher_link_is_connected(f->link));
        f->peer_fd = accept4(f->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        assert_true(f->peer_fd >= 0);
        f->in_len = 0;
        expect_msg(f, LMSG_LIST, 0);
        pump(f);
        assert_int_equal(t->state, TASK_QUEUED); /* still reconciling */
        peer_send(f, "{\"type\":\"list_end\"}");
        expect_launch(f, t->id, 1);
        assert_int_equal(f->reconciled, 2);
}

static void reconnect(Fixture *f, const uint64_t *running, size_t n) {
        close(f->peer_fd);
        f->peer_fd = -1;
        pump(f);
        assert_false(dispatcher_link_ready(f->dispatcher));
        pump_for(f, 300 * USEC_PER_MSEC);
        assert_true(launcher_link_is_connected(f->link));
        peer_accept(f, running, n);
}

static void test_reconcile_marks_unlisted_runs_lost(void **state) {
        Fixture *f = *state;
        TaskRecord *t1 = submit(f, "a"), *t2 = submit(f, "a");
        uint64_t still[] = {t1->id};

        expect_launch(f, t1->id, 1);
        expect_launch(f, t2->id, 1);

        /* Only t1 survived the launcher's restart: t2 is lost, and retried (attempts remain). */
        reconnect(f, still, 1);
        assert_int_equal(t1->state, TASK_RUNNING);
        assert_string_equal(t1->unit, "pid:1001");
        expect_launch(f, t2->id, 2);
        assert_string_equal(t2->last.result, "lost");
        expect_nothing(f);
        assert_int_equal(dispatcher_n_running(f->dispatcher), 2);

        /* A result that was held over the reconnect still lands. */
        peer_send(f, "{\"type\":\"finished\",\"id\":%llu,\"result\":\"success\",\"exit_status\":0}",
                  (unsigned long long) t1->id);
        expect_msg(f, LMSG_ACK, t1->id);
        assert_int_equal(t1->state, TASK_SUCCEEDED);
}

static void test_stop_sent_once_and_again_after_reconnect(void **state) {
        Fixture *f = *state;
        TaskRecord *t = submit(f, "a");
        uint64_t still[] = {t->id};

        expect_launch(f, t->id, 1);
        assert_int_equal(dispatcher_stop_task(f->dispatcher, t), 0);
        assert_int_equal(dispatcher_stop_task(f->dispatcher, t), 0);
        expect_msg(f, LMSG_STOP, t->id);
        expect_nothing(f); /* a client repeating cancel does not repeat the stop */

        /* The launcher restarted before it acted on it: ask again once it has listed the run. */
        reconnect(f, still, 1);
        expect_msg(f, LMSG_STOP, t->id);
        expect_nothing(f);

        peer_send(f, "{\"type\":\"finished\",\"id\":%llu,\"result\":\"cancelled\",\"signal\":15}",
                  (unsigned long long) t->id);
        expect_msg(f, LMSG_ACK, t->id);
        assert_int_equal(t->state, TASK_CANCELLED);

        /* Not running any more: nothing to stop. */
        assert_int_equal(dispatcher_stop_task(f->dispatcher, t), -ESRCH);
}

static void test_task_removed_by_reload_fails(void **state) {
        Fixture *f = *state;
        Config *old = f->cfg;
        TaskRecord *a, *b;

        /* Queue one of each while both slots are taken, then drop "b" from the config. */
        a = submit(f, "a");
        expect_launch(f, a->id, 1);
        b = submit(f, "b");
        expect_launch(f, b->id, 1);
        TaskRecord *b2 = submit(f, "b");
        expect_nothing(f);

        write_config(f->dir, f->sock_path, false);
        f->cfg = load_config(f->dir);
        dispatcher_set_config(f->dispatcher, f->cfg);
        config_free(old);

        peer_send(f, "{\"type\":\"finished\",\"id\":%llu,\"result\":\"success\",\"exit_status\":0}",
                  (unsigned long long) b->id);
        expect_msg(f, LMSG_ACK, b->id);
        expect_nothing(f);                        /* b2 is not launched ... */
        assert_int_equal(b2->state, TASK_FAILED); /* ... but failed for good */
        assert_string_equal(b2->last.result, "rejected");
        assert_string_equal(b2->last.error, "task 'b' is no longer configured");
        assert_int_equal(dispatcher_n_running(f->dispatcher), 1);
}

static void test_unknown_results_are_acked_and_ids_skip_them(void **state) {
        Fixture *f = *state;
        TaskRecord *t;

        peer_send(f, "{\"type\":\"finished\",\"id\":40,\"result\":\"success\",\"exit_status\":0}");
        expect_msg(f, LMSG_ACK, 40);
        t = submit(f, "a");
        assert_int_equal(t->id, 41);
        expect_launch(f, 41, 1);
}

static void test_delayed_task_starts_on_time(void **state) {
        Fixture *f = *state;
        uint64_t start = now_usec(CLOCK_REALTIME);
        TaskRecord *t = submit_at(f, "a", start + 150 * USEC_PER_MSEC);

        expect_nothing(f);
        assert_int_equal(t->state, TASK_QUEUED);
        while (t->state == TASK_QUEUED && now_usec(CLOCK_REALTIME) < start + 2 * USEC_PER_SEC)
                pump_for(f, 50 * USEC_PER_MSEC);
        assert_true(now_usec(CLOCK_REALTIME) >= start + 150 * USEC_PER_MSEC);
        expect_launch(f, t->id, 1);
}

static void test_held_submission_waits_for_release(void **state) {
        Fixture *f = *state;
        TaskRecord *t;

        t = submit(f, "a");
        assert_int_equal(dispatcher_hold(f->dispatcher, t->id), 0);
        /* The hold is taken before the pass runs: nothing goes out until the store committed. */
        expect_nothing(f);
        dispatcher_release(f->dispatcher, t->id);
        expect_launch(f, t->id, 1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_max_running_and_concurrency, setup, teardown),
                cmocka_unit_test_setup_teardown(test_failure_is_retried_then_final, setup, teardown),
                cmocka_unit_test_setup_teardown(test_rejected_is_not_acked, setup, teardown),
                cmocka_unit_test_setup_teardown(test_launches_wait_for_the_link, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reconcile_marks_unlisted_runs_lost, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stop_sent_once_and_again_after_reconnect, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_task_removed_by_reload_fails, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unknown_results_are_acked_and_ids_skip_them, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_delayed_task_starts_on_time, setup, teardown),
                cmocka_unit_test_setup_teardown(test_held_submission_waits_for_release, setup, teardown),
        };

        log_set_max_level(LOG_WARNING);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
