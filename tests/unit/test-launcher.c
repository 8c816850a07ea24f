/* SPDX-License-Identifier: MIT */
/*
 * launcher: what it tells the front while its executor is still finding the runs left from before.
 * The manager is driven with a fake executor (this file's executor_systemd_new() and
 * executor_direct_new() stand in for the real ones, which the linker then leaves out of the launcher
 * archive), and a socket pair as the front's connection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "launcher/executor.h"
#include "launcher/manager.h"
#include "shared/log.h"
#include "shared/lproto.h"
#include "tmpdir.h"

/* ---- a fake executor: the test reports its runs and its readiness ---- */

typedef struct FakeExecutor {
        Executor base;
        ExecutorEvents events;
        void *userdata;
        bool ready;
} FakeExecutor;

static FakeExecutor *fake; /* the one created last */

static int fake_launch(Executor *x, const Launch *l) {
        return 0;
}

static int fake_stop(Executor *x, uint64_t id) {
        return -ESRCH;
}

static int fake_release(Executor *x, uint64_t id) {
        return 0;
}

static Executor *fake_free(Executor *x) {
        if (x && x == &fake->base)
                fake = NULL;
        free(x);
        return NULL;
}

static bool fake_ready(Executor *x) {
        return ((FakeExecutor *) x)->ready;
}

/* Like the systemd executor: ready once it has reported the runs left from before. */
static const ExecutorOps recovering_ops = {
        .name = "systemd",
        .launch = fake_launch,
        .stop = fake_stop,
        .release = fake_release,
        .free = fake_free,
        .ready = fake_ready,
};

/* Like the direct executor: nothing to find, ready from creation. */
static const ExecutorOps immediate_ops = {
        .name = "direct",
        .launch = fake_launch,
        .stop = fake_stop,
        .release = fake_release,
        .free = fake_free,
};

static int fake_new(const ExecutorOps *ops, const ExecutorEvents *events, void *userdata, Executor **ret) {
        FakeExecutor *x = calloc(1, sizeof(*x));

        if (!x)
                return -ENOMEM;
        x->base.ops = ops;
        x->events = *events;
        x->userdata = userdata;
        fake = x;
        *ret = &x->base;
        return 0;
}

int executor_systemd_new(sd_event *event, const ExecutorEvents *events, void *userdata, Executor **ret) {
        return fake_new(&recovering_ops, events, userdata, ret);
}

int executor_direct_new(sd_event *event, const ExecutorEvents *events, void *userdata, Executor **ret) {
        return fake_new(&immediate_ops, events, userdata, ret);
}

static void fake_report_ready(void) {
        fake->ready = true;
        fake->events.ready(fake->userdata);
}

/* ---- a launcher with one front connected ---- */

/* The wait for a recovering executor: shortened where a test sees it pass; where a test needs it
 * not to pass, longer than any machine takes to run the test (the test must not depend on speed). */
#define READY_WAIT_USEC       (300 * USEC_PER_MSEC)
#define READY_WAIT_NEVER_USEC (3600 * USEC_PER_SEC)

typedef struct Harness {
        Manager *m;
        int front; /* the front's end of the connection */
} Harness;

static void harness_start(Harness *h, const TmpDir *t, const char *executor, uint64_t ready_wait_usec) {
        char config[256];
        FILE *f;
        int fds[2];

        snprintf(config, sizeof(config), "%s/asynctask.json", t->dir);
        f = fopen(config, "we");
        assert_non_null(f);
        fprintf(f, "{\"executor\": \"%s\"}\n", executor);
        assert_int_equal(fclose(f), 0);

        *h = (Harness){};
        assert_int_equal(manager_new(config, &h->m), 0);
        manager_set_executor_ready_wait(h->m, ready_wait_usec);
        assert_int_equal(manager_start_executor(h->m), 0);
        assert_non_null(fake);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds), 0);
        manager_accept(h->m, fds[0]); /* our own uid: allowed */
        h->front = fds[1];
}

static void harness_stop(Harness *h) {
        h->m = manager_free(h->m);
        assert_null(fake);
        (void) close(h->front);
}

static void front_send(Harness *h, LauncherMsgType type) {
        LauncherMsg m = {.type = type};
        _cleanup_free_ char *line = NULL;
        size_t n;

        line = lmsg_format(&m, &n);
        assert_non_null(line);
        assert_int_equal(write(h->front, line, n), (ssize_t) n);
}

/* Lets the launcher run, then returns what it sent the front, one "type id [unit|result];" each. */
static const char *front_receive(Harness *h) {
        static char out[1024];
        char buf[8192];
        size_t len = 0;
        ssize_t n;

        for (int i = 0; i < 20; i++)
                assert_true(sd_event_run(manager_event(h->m), 1000) >= 0);
        while ((n = read(h->front, buf + len, sizeof(buf) - len - 1)) > 0)
                len += (size_t) n;
        buf[len] = 0;

        out[0] = 0;
        for (char *line = buf, *end; (end = strchr(line, '\n')); line = end + 1) {
                _cleanup_(lmsg_done) LauncherMsg m = {};
                size_t used = strlen(out);

                assert_int_equal(lmsg_parse(line, (size_t) (end - line), &m), 0);
                if (m.type == LMSG_LIST_END)
                        snprintf(out + used, sizeof(out) - used, "list_end;");
                else if (m.type == LMSG_FINISHED)
                        snprintf(out + used, sizeof(out) - used, "finished %" PRIu64 " %s;", m.id,
                                 m.result.result);
                else
                        snprintf(out + used, sizeof(out) - used, "%s %" PRIu64 " %s;",
                                 lmsg_type_to_string(m.type), m.id, m.unit ? m.unit : "-");
        }
        return out;
}

static RunResult result(const char *name) {
        RunResult r = {.has_exit_status = 1, .exit_status = 3};
        snprintf(r.result, sizeof(r.result), "%s", name);
        return r;
}

/* ---- tests ---- */

static void test_list_waits_for_recovery(void **state) {
        Harness h;
        RunResult r = result("exit-code");

        harness_start(&h, *state, "systemd", READY_WAIT_NEVER_USEC);
        assert_false(manager_executor_ready(h.m));

        /* Nothing on connect, no answer to list: the runs from before are not all known yet. */
        front_send(&h, LMSG_LIST);
        assert_string_equal(front_receive(&h), "");

        /* What the executor reports meanwhile goes out as it comes. */
        fake->events.finished(fake->userdata, 6, &r);
        fake->events.started(fake->userdata, 5, "asynctask-5.service");
        assert_string_equal(front_receive(&h), "finished 6 exit-code;started 5 asynctask-5.service;");
        front_send(&h, LMSG_LIST); /* asked again: still one answer, later */
        assert_string_equal(front_receive(&h), "");

        /* Ready: the live run and the held result (in id order), then the end of the list, once. */
        fake_report_ready();
        assert_true(manager_executor_ready(h.m));
        assert_string_equal(front_receive(&h),
                            "running 5 asynctask-5.service;finished 6 exit-code;list_end;");
        assert_string_equal(front_receive(&h), "");

        /* From now on a list is answered at once. */
        front_send(&h, LMSG_LIST);
        assert_string_equal(front_receive(&h),
                            "running 5 asynctask-5.service;finished 6 exit-code;list_end;");
        harness_stop(&h);
}

static void test_ready_ends_the_wait(void **state) {
        Harness h;

        /* Ready before the wait passes (or after: a loaded machine may be that slow): when it
         * passes, nothing more goes out. */
        harness_start(&h, *state, "systemd", READY_WAIT_USEC);
        fake_report_ready();
        front_send(&h, LMSG_LIST);
        assert_string_equal(front_receive(&h), "list_end;");
        usleep(READY_WAIT_USEC + 100 * USEC_PER_MSEC);
        assert_string_equal(front_receive(&h), "");
        harness_stop(&h);
}

static void test_replay_on_connect_waits(void **state) {
        Harness h;
        RunResult r = result("signal");

        /* A result held from before the front connected is replayed on connect, but only once ready
         * (and without list_end: the front did not ask). */
        harness_start(&h, *state, "systemd", READY_WAIT_NEVER_USEC);
        fake->events.finished(fake->userdata, 9, &r);
        assert_string_equal(front_receive(&h), "finished 9 signal;");
        fake_report_ready();
        assert_string_equal(front_receive(&h), "finished 9 signal;");
        harness_stop(&h);
}

static void test_ready_timeout(void **state) {
        Harness h;
        uint64_t start = now_usec(CLOCK_MONOTONIC);
        char got[1024] = "";

        /* An executor that never gets ready (a stuck bus) holds the list only until the wait passes:
         * the run it reported goes out as it comes, the list once the wait is over (read until then,
         * however slowly this machine gets there). */
        harness_start(&h, *state, "systemd", READY_WAIT_USEC);
        fake->events.started(fake->userdata, 5, "asynctask-5.service");
        front_send(&h, LMSG_LIST);
        do
                strncat(got, front_receive(&h), sizeof(got) - strlen(got) - 1);
        while (!strstr(got, "list_end;") && now_usec(CLOCK_MONOTONIC) < start + 60 * USEC_PER_SEC);
        assert_string_equal(got, "started 5 asynctask-5.service;running 5 asynctask-5.service;list_end;");
        assert_true(now_usec(CLOCK_MONOTONIC) >= start + READY_WAIT_USEC);
        assert_true(manager_executor_ready(h.m));

        /* The executor's late ready changes nothing; a run it reports later goes out as it comes. */
        fake->events.started(fake->userdata, 7, "asynctask-7.service");
        fake_report_ready();
        assert_string_equal(front_receive(&h), "started 7 asynctask-7.service;");
        harness_stop(&h);
}

static void test_direct_ready_at_once(void **state) {
        Harness h;

        harness_start(&h, *state, "direct", READY_WAIT_NEVER_USEC);
        assert_true(manager_executor_ready(h.m));
        front_send(&h, LMSG_LIST);
        assert_string_equal(front_receive(&h), "list_end;");
        harness_stop(&h);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_list_waits_for_recovery, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_ready_ends_the_wait, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_replay_on_connect_waits, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_ready_timeout, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_direct_ready_at_once, tmpdir_setup, tmpdir_teardown),
        };
        log_set_max_level(LOG_ERR);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
