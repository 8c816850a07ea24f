/* SPDX-License-Identifier: MIT */
/*
 * systemd executor: its bus traffic against a fake PID 1 on a socket pair (units left from before,
 * ready, calls PID 1 leaves unanswered, releases). The unit's properties and the mapping of its
 * result are tested in test-unit-properties and test-unit-result; the real thing under a booted
 * systemd by tests/e2e.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <inttypes.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "launcher/executor.h"
#include "shared/log.h"
#include "shared/util.h"

/* ---- units left from before, and ready: against a fake PID 1 on a socket pair ---- */

typedef struct FakePid1 {
        sd_bus *bus;               /* the server end */
        sd_bus_message *list;      /* ListUnitsByPatterns, held until the test answers */
        sd_bus_message *getall[8]; /* GetAll calls held, in arrival order */
        size_t n_getall;
        sd_bus_message *start[8]; /* StartTransientUnit calls held, in arrival order */
        size_t n_start;
        sd_bus_message *stop[4]; /* StopUnit calls held, in arrival order */
        size_t n_stop;
        sd_bus_message *reset[4]; /* ResetFailedUnit calls held, in arrival order */
        size_t n_reset;
        unsigned n_subscribe;
} FakePid1;

typedef struct Recorded {
        char log[512];   /* "started 5;finished 6 exit-code;ready;" */
        char error[256]; /* the error of the last run reported finished */
        Executor *x;
        bool ready_when_reported; /* executor_ready() from inside the ready event */
} Recorded;

static void record(Recorded *rec, const char *fmt, ...) _printf_(2, 3);
static void record(Recorded *rec, const char *fmt, ...) {
        size_t n = strlen(rec->log);
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(rec->log + n, sizeof(rec->log) - n, fmt, ap);
        va_end(ap);
}

static void rec_started(void *userdata, uint64_t id, const char *unit) {
        record(userdata, "started %" PRIu64 " %s;", id, unit);
}

static void rec_finished(void *userdata, uint64_t id, const RunResult *r) {
        Recorded *rec = userdata;

        snprintf(rec->error, sizeof(rec->error), "%s", r->error);
        record(rec, "finished %" PRIu64 " %s;", id, r->result);
}

static void rec_ready(void *userdata) {
        Recorded *rec = userdata;

        rec->ready_when_reported = executor_ready(rec->x);
        record(rec, "ready;");
}

static const ExecutorEvents recording_events = {
        .started = rec_started, .finished = rec_finished, .ready = rec_ready};

static int fake_filter(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        FakePid1 *f = userdata;
        const char *member = sd_bus_message_get_member(m);

        if (!sd_bus_message_is_method_call(m, NULL, NULL) || !member)
                return 0;
        if (streq(member, "Subscribe")) {
                f->n_subscribe++;
                assert_true(sd_bus_reply_method_return(m, NULL) >= 0);
        } else if (streq(member, "ListUnitsByPatterns")) {
                assert_null(f->list);
                f->list = sd_bus_message_ref(m);
        } else if (streq(member, "GetAll")) {
                assert_true(f->n_getall < ELEMENTSOF(f->getall));
                f->getall[f->n_getall++] = sd_bus_message_ref(m);
        } else if (streq(member, "StartTransientUnit")) {
                assert_true(f->n_start < ELEMENTSOF(f->start));
                f->start[f->n_start++] = sd_bus_message_ref(m);
        } else if (streq(member, "StopUnit")) {
                assert_true(f->n_stop < ELEMENTSOF(f->stop));
                f->stop[f->n_stop++] = sd_bus_message_ref(m);
        } else if (streq(member, "ResetFailedUnit")) {
                assert_true(f->n_reset < ELEMENTSOF(f->reset));
                f->reset[f->n_reset++] = sd_bus_message_ref(m);
        } else
                fail_msg("unexpected call %s", member);
        return 1;
}

static void fake_start(sd_event *event, FakePid1 *f, sd_bus **ret_client) {
        sd_bus *client = NULL;
        sd_id128_t id;
        int fds[2];

        *f = (FakePid1){};
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds), 0);
        assert_true(sd_id128_randomize(&id) >= 0);
        assert_true(sd_bus_new(&f->bus) >= 0);
        assert_true(sd_bus_set_fd(f->bus, fds[1], fds[1]) >= 0);
        assert_true(sd_bus_set_server(f->bus, 1, id) >= 0);
        assert_true(sd_bus_add_filter(f->bus, NULL, fake_filter, f) >= 0);
        assert_true(sd_bus_start(f->bus) >= 0);
        assert_true(sd_bus_attach_event(f->bus, event, 0) >= 0);

        assert_true(sd_bus_new(&client) >= 0);
        assert_true(sd_bus_set_fd(client, fds[0], fds[0]) >= 0);
        assert_true(sd_bus_start(client) >= 0);
        assert_true(sd_bus_attach_event(client, event, 0) >= 0);
        *ret_client = client;
}

static void fake_stop(FakePid1 *f) {
        sd_bus_message_unref(f->list);
        for (size_t i = 0; i < f->n_getall; i++)
                sd_bus_message_unref(f->getall[i]);
        for (size_t i = 0; i < f->n_start; i++)
                sd_bus_message_unref(f->start[i]);
        for (size_t i = 0; i < f->n_stop; i++)
                sd_bus_message_unref(f->stop[i]);
        for (size_t i = 0; i < f->n_reset; i++)
                sd_bus_message_unref(f->reset[i]);
        sd_bus_flush_close_unref(f->bus);
}

/* Runs the loop until cond holds (or fails after about 5 s). */
#define RUN_UNTIL(event, cond)                                                                              \
        do {                                                                                                \
                for (unsigned _i = 0; !(cond); _i++) {                                                      \
                        if (_i >= 500)                                                                      \
                                fail_msg("timed out waiting for %s", #cond);                                \
                        assert_true(sd_event_run(event, 10 * USEC_PER_MSEC) >= 0);                          \
                }                                                                                           \
        } while (0)

/* A few more turns of the loop, for what must not happen. */
static void run_idle(sd_event *event) {
        for (int i = 0; i < 20; i++)
                assert_true(sd_event_run(event, 2 * USEC_PER_MSEC) >= 0);
}

static void list_entry(sd_bus_message *m, const char *name, const char *active, const char *sub) {
        assert_true(sd_bus_message_append(m, "(ssssssouso)", name, "", "loaded", active, sub, "",
                                          "/org/freedesktop/systemd1/unit/x", (uint32_t) 0, "", "/") >= 0);
}

static void answer_getall(FakePid1 *f, const char *unit, const char *active, const char *sub,
                          const char *result, int32_t code, int32_t status) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *name = NULL;
        sd_bus_message *call = NULL;

        /* The latest one for that unit. */
        for (size_t i = f->n_getall; i > 0 && !call; i--) {
                free(TAKE_PTR(name));
                assert_true(sd_bus_path_decode(sd_bus_message_get_path(f->getall[i - 1]),
                                               "/org/freedesktop/systemd1/unit", &name) > 0);
                if (streq(name, unit))
                        call = f->getall[i - 1];
        }
        if (!call)
                fail_msg("no GetAll for %s", unit);
        assert_true(sd_bus_message_new_method_return(call, &reply) >= 0);
        assert_true(sd_bus_message_append(reply, "a{sv}", 7, "LoadState", "s", "loaded", "ActiveState", "s",
                                          active, "SubState", "s", sub, "Result", "s", result,
                                          "ExecMainCode", "i", code, "ExecMainStatus", "i", status, "Job",
                                          "(uo)", (uint32_t) 0, "/") >= 0);
        assert_true(sd_bus_send(f->bus, reply, NULL) >= 0);
}

static void test_ready_after_recovery(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Recorded rec = {};
        sd_bus *client;
        FakePid1 f;

        assert_true(sd_event_new(&event) >= 0);
        fake_start(event, &f, &client);
        assert_int_equal(executor_systemd_new_with_bus(event, client, &recording_events, &rec, &rec.x), 0);
        sd_bus_unref(client); /* the executor holds its own reference */
        assert_false(executor_ready(rec.x));

        RUN_UNTIL(event, f.list);
        assert_int_equal(f.n_subscribe, 1);
        run_idle(event);
        assert_false(executor_ready(rec.x));

        /* Two units of ours and one that is not. */
        assert_true(sd_bus_message_new_method_return(f.list, &reply) >= 0);
        assert_true(sd_bus_message_open_container(reply, 'a', "(ssssssouso)") >= 0);
        list_entry(reply, "asynctask-5.service", "active", "running");
        list_entry(reply, "asynctask-launcher.service", "active", "running");
        list_entry(reply, "asynctask-6.service", "failed", "failed");
        assert_true(sd_bus_message_close_container(reply) >= 0);
        assert_true(sd_bus_send(f.bus, reply, NULL) >= 0);

        /* Listed, but nothing is known of the units yet: not ready. */
        RUN_UNTIL(event, f.n_getall == 2);
        run_idle(event);
        assert_string_equal(rec.log, "");
        assert_false(executor_ready(rec.x));

        answer_getall(&f, "asynctask-6.service", "failed", "failed", "exit-code", CLD_EXITED, 3);
        RUN_UNTIL(event, rec.log[0]);
        run_idle(event);
        assert_string_equal(rec.log, "finished 6 exit-code;");
        assert_false(executor_ready(rec.x));

        /* The last one reported: ready, once, after it. */
        answer_getall(&f, "asynctask-5.service", "active", "running", "success", 0, 0);
        RUN_UNTIL(event, executor_ready(rec.x));
        run_idle(event);
        assert_string_equal(rec.log, "finished 6 exit-code;started 5 asynctask-5.service;ready;");
        assert_true(rec.ready_when_reported);

        executor_free(rec.x);
        fake_stop(&f);
}

static void test_ready_without_units(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Recorded rec = {};
        sd_bus *client;
        FakePid1 f;

        /* An empty list: ready as soon as it is in. */
        assert_true(sd_event_new(&event) >= 0);
        fake_start(event, &f, &client);
        assert_int_equal(executor_systemd_new_with_bus(event, client, &recording_events, &rec, &rec.x), 0);
        sd_bus_unref(client);
        RUN_UNTIL(event, f.list);
        assert_false(executor_ready(rec.x));
        assert_true(sd_bus_message_new_method_return(f.list, &reply) >= 0);
        assert_true(sd_bus_message_append(reply, "a(ssssssouso)", 0) >= 0);
        assert_true(sd_bus_send(f.bus, reply, NULL) >= 0);
        RUN_UNTIL(event, executor_ready(rec.x));
        run_idle(event);
        assert_string_equal(rec.log, "ready;");
        executor_free(rec.x);
        fake_stop(&f);

        /* A failed listing: nothing better will come, so ready too (the error is logged). */
        rec = (Recorded){};
        fake_start(event, &f, &client);
        assert_int_equal(executor_systemd_new_with_bus(event, client, &recording_events, &rec, &rec.x), 0);
        sd_bus_unref(client);
        RUN_UNTIL(event, f.list);
        log_set_max_level(LOG_CRIT); /* the error it logs is expected */
        assert_true(sd_bus_reply_method_errorf(f.list, SD_BUS_ERROR_ACCESS_DENIED, "no") >= 0);
        RUN_UNTIL(event, executor_ready(rec.x));
        log_set_max_level(LOG_ERR);
        run_idle(event);
        assert_string_equal(rec.log, "ready;");
        executor_free(rec.x);
        fake_stop(&f);
}

/* Answers a held call with an error; from_driver: as dbus-daemon does (sender org.freedesktop.DBus). */
static void answer_error(FakePid1 *f, sd_bus_message *call, const char *name, const char *text,
                         bool from_driver) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;

        assert_true(sd_bus_message_new_method_errorf(call, &reply, name, "%s", text) >= 0);
        if (from_driver)
                assert_true(sd_bus_message_set_sender(reply, "org.freedesktop.DBus") >= 0);
        assert_true(sd_bus_send(f->bus, reply, NULL) >= 0);
}

/* What dbus-daemon says of a call whose recipient left the bus (PID 1 re-executing). */
#define PID1_LEFT "Message recipient disconnected from message bus without replying"

/* An executor on the fake PID 1 that found no units of ours at start: ready. */
static void start_without_units(sd_event *event, FakePid1 *f, Recorded *rec) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus *client;

        fake_start(event, f, &client);
        assert_int_equal(executor_systemd_new_with_bus(event, client, &recording_events, rec, &rec->x), 0);
        sd_bus_unref(client);
        RUN_UNTIL(event, f->list);
        assert_true(sd_bus_message_new_method_return(f->list, &reply) >= 0);
        assert_true(sd_bus_message_append(reply, "a(ssssssouso)", 0) >= 0);
        assert_true(sd_bus_send(f->bus, reply, NULL) >= 0);
        RUN_UNTIL(event, executor_ready(rec->x));
}

/* Checks that come before any bus traffic, and ids it does not know. */
static void test_launch_rejects(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        TaskDef def = {.name = "t", .user = "nobody"};
        char *argv[] = {"/bin/true", NULL};
        char *empty[] = {NULL};
        Launch ok = {.id = 1, .def = &def, .argv = argv};
        Recorded rec = {};
        FakePid1 f;
        Launch l;

        assert_true(sd_event_new(&event) >= 0);
        start_without_units(event, &f, &rec);
        l = ok, l.id = 0;
        assert_int_equal(executor_launch(rec.x, &l), -EINVAL);
        l = ok, l.def = NULL;
        assert_int_equal(executor_launch(rec.x, &l), -EINVAL);
        l = ok, l.argv = NULL;
        assert_int_equal(executor_launch(rec.x, &l), -EINVAL);
        l = ok, l.argv = empty;
        assert_int_equal(executor_launch(rec.x, &l), -EINVAL);
        l = ok, l.stdin_len = 3;
        assert_int_equal(executor_launch(rec.x, &l), -EINVAL);
        assert_int_equal(executor_launch(rec.x, NULL), -EINVAL);
        run_idle(event);
        assert_int_equal(f.n_start, 0);

        /* Unknown ids. */
        assert_int_equal(executor_stop(rec.x, 5), -ESRCH);
        assert_int_equal(executor_release(rec.x, 5), -ESRCH);
        assert_null(executor_free(NULL));

        /* A second launch of an id already running is refused. */
        assert_int_equal(executor_launch(rec.x, &ok), 0);
        assert_int_equal(executor_launch(rec.x, &ok), -EEXIST);
        RUN_UNTIL(event, f.n_start == 1);
        executor_free(rec.x);
        fake_stop(&f);
}

/* PID 1 leaving the bus to re-execute (daemon-reexec) leaves its calls unanswered, and dbus-daemon
 * answers them NoReply. A start is sent again, and UnitExists then means that PID 1 had created the
 * unit: the run is watched as usual. A GetAll is sent again. A NoReply of our own (a timeout: no
 * sender) still fails the start. */
static void test_pid1_left_unanswered(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        TaskDef def = {.name = "t", .user = "nobody"};
        char *argv[] = {"/bin/true", NULL};
        Launch l = {.id = 7, .attempt = 1, .def = &def, .argv = argv};
        Recorded rec = {};
        FakePid1 f;

        assert_true(sd_event_new(&event) >= 0);
        start_without_units(event, &f, &rec);

        assert_int_equal(executor_launch(rec.x, &l), 0);
        RUN_UNTIL(event, f.n_start == 1);
        answer_error(&f, f.start[0], SD_BUS_ERROR_NO_REPLY, PID1_LEFT, true);
        RUN_UNTIL(event, f.n_start == 2);
        assert_string_equal(rec.log, "ready;");
        answer_error(&f, f.start[1], "org.freedesktop.systemd1.UnitExists",
                     "Unit asynctask-7.service already exists.", false);
        RUN_UNTIL(event, f.n_getall == 1);
        assert_string_equal(rec.log, "ready;started 7 asynctask-7.service;");

        /* Its GetAll is left unanswered too: asked again, and the end is reported. */
        answer_error(&f, f.getall[0], SD_BUS_ERROR_NO_REPLY, PID1_LEFT, true);
        sd_bus_message_unref(f.getall[0]);
        f.n_getall = 0;
        RUN_UNTIL(event, f.n_getall == 1);
        answer_getall(&f, "asynctask-7.service", "active", "exited", "success", CLD_EXITED, 0);
        RUN_UNTIL(event, strstr(rec.log, "finished"));
        assert_string_equal(rec.log, "ready;started 7 asynctask-7.service;finished 7 success;");

        /* Releasing it: the StopUnit and then the ResetFailedUnit left unanswered are sent again. */
        assert_int_equal(executor_release(rec.x, 7), 0);
        RUN_UNTIL(event, f.n_stop == 1);
        answer_error(&f, f.stop[0], SD_BUS_ERROR_NO_REPLY, PID1_LEFT, true);
        RUN_UNTIL(event, f.n_stop == 2);
        assert_true(sd_bus_reply_method_return(f.stop[1], "o", "/org/freedesktop/systemd1/job/2") >= 0);
        RUN_UNTIL(event, f.n_reset == 1);
        answer_error(&f, f.reset[0], SD_BUS_ERROR_NO_REPLY, PID1_LEFT, true);
        RUN_UNTIL(event, f.n_reset == 2);
        assert_true(sd_bus_reply_method_return(f.reset[1], NULL) >= 0);
        run_idle(event);
        assert_int_equal(f.n_stop, 2);
        assert_int_equal(f.n_reset, 2);
        assert_int_equal(executor_release(rec.x, 7), -ESRCH); /* released */

        /* A start that timed out here is not sent again. */
        l.id = 8;
        assert_int_equal(executor_launch(rec.x, &l), 0);
        RUN_UNTIL(event, f.n_start == 3);
        log_set_max_level(LOG_CRIT);
        answer_error(&f, f.start[2], SD_BUS_ERROR_NO_REPLY, "Method call timed out", false);
        RUN_UNTIL(event, strstr(rec.log, "finished 8"));
        log_set_max_level(LOG_ERR);
        run_idle(event);
        assert_int_equal(f.n_start, 3);
        assert_string_equal(rec.log,
                            "ready;started 7 asynctask-7.service;finished 7 success;finished 8 resources;");

        /* A cancel whose StopUnit is left unanswered is sent again, not forgotten. */
        l.id = 9;
        assert_int_equal(executor_launch(rec.x, &l), 0);
        RUN_UNTIL(event, f.n_start == 4);
        assert_true(sd_bus_reply_method_return(f.start[3], "o", "/org/freedesktop/systemd1/job/9") >= 0);
        RUN_UNTIL(event, strstr(rec.log, "started 9"));
        assert_int_equal(executor_stop(rec.x, 9), 0);
        RUN_UNTIL(event, f.n_stop == 3);
        answer_error(&f, f.stop[2], SD_BUS_ERROR_NO_REPLY, PID1_LEFT, true);
        RUN_UNTIL(event, f.n_stop == 4);

        executor_free(rec.x);
        fake_stop(&f);
}

/* The stdin descriptor a held StartTransientUnit call carries (owned by the message). */
static int start_stdin_fd(sd_bus_message *call) {
        const char *unit, *mode, *name;
        int fd = -1;

        assert_true(sd_bus_message_rewind(call, true) >= 0);
        assert_true(sd_bus_message_read(call, "ss", &unit, &mode) >= 0);
        assert_true(sd_bus_message_enter_container(call, 'a', "(sv)") > 0);
        while (fd < 0 && sd_bus_message_enter_container(call, 'r', "sv") > 0) {
                assert_true(sd_bus_message_read(call, "s", &name) >= 0);
                if (streq(name, "StandardInputFileDescriptor"))
                        assert_true(sd_bus_message_read(call, "v", "h", &fd) >= 0);
                else
                        assert_true(sd_bus_message_skip(call, "v") >= 0);
                assert_true(sd_bus_message_exit_container(call) >= 0);
        }
        return fd;
}

/* A start PID 1 left unanswered is sent again with the stdin: through a descriptor of its own, read
 * from the start however far a reader of the first one got. */
static void test_stdin_sent_again(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        TaskDef def = {.name = "t", .user = "nobody"};
        char *argv[] = {"/bin/cat", NULL};
        static const char data[] = "secret\0stdin";
        Launch l = {.id = 7,
                    .attempt = 1,
                    .def = &def,
                    .argv = argv,
                    .stdin_data = data,
                    .stdin_len = sizeof(data) - 1};
        char buf[64];
        Recorded rec = {};
        FakePid1 f;
        int first, again;

        assert_true(sd_event_new(&event) >= 0);
        start_without_units(event, &f, &rec);
        assert_int_equal(executor_launch(rec.x, &l), 0);
        RUN_UNTIL(event, f.n_start == 1);
        first = start_stdin_fd(f.start[0]);
        assert_true(first >= 0);
        assert_int_equal(read(first, buf, 3), 3); /* a reader got this far */
        answer_error(&f, f.start[0], SD_BUS_ERROR_NO_REPLY, PID1_LEFT, true);
        RUN_UNTIL(event, f.n_start == 2);
        again = start_stdin_fd(f.start[1]);
        assert_true(again >= 0);
        assert_int_equal(read(again, buf, sizeof(buf)), (ssize_t) sizeof(data) - 1);
        assert_memory_equal(buf, data, sizeof(data) - 1);
        assert_true(sd_bus_reply_method_return(f.start[1], "o", "/org/freedesktop/systemd1/job/1") >= 0);
        RUN_UNTIL(event, strstr(rec.log, "started 7"));

        executor_free(rec.x);
        fake_stop(&f);
}

/* The next attempt of a task whose previous unit is still being released: a UnitExists after its
 * unanswered start may be the old unit, so it is not taken over; the start is tried again. */
static void test_unanswered_start_while_releasing(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        TaskDef def = {.name = "t", .user = "nobody"};
        char *argv[] = {"/bin/true", NULL};
        Launch l = {.id = 7, .attempt = 1, .def = &def, .argv = argv};
        Recorded rec = {};
        FakePid1 f;

        assert_true(sd_event_new(&event) >= 0);
        start_without_units(event, &f, &rec);

        /* Attempt 1 runs and fails; its release is in flight (StopUnit unanswered). */
        assert_int_equal(executor_launch(rec.x, &l), 0);
        RUN_UNTIL(event, f.n_start == 1);
        assert_true(sd_bus_reply_method_return(f.start[0], "o", "/org/freedesktop/systemd1/job/1") >= 0);
        RUN_UNTIL(event, f.n_getall == 1);
        answer_getall(&f, "asynctask-7.service", "failed", "failed", "exit-code", CLD_EXITED, 1);
        RUN_UNTIL(event, strstr(rec.log, "finished 7"));
        assert_int_equal(executor_release(rec.x, 7), 0);
        RUN_UNTIL(event, f.n_stop == 1);

        /* Attempt 2: its start is left unanswered, the resent one finds the old unit. */
        l.attempt = 2;
        assert_int_equal(executor_launch(rec.x, &l), 0);
        RUN_UNTIL(event, f.n_start == 2);
        answer_error(&f, f.start[1], SD_BUS_ERROR_NO_REPLY, PID1_LEFT, true);
        RUN_UNTIL(event, f.n_start == 3);
        answer_error(&f, f.start[2], "org.freedesktop.systemd1.UnitExists",
                     "Unit asynctask-7.service already exists.", false);
        /* Not taken over: once the old unit is released, the start is sent once more. */
        assert_true(sd_bus_reply_method_return(f.stop[0], "o", "/org/freedesktop/systemd1/job/2") >= 0);
        RUN_UNTIL(event, f.n_reset == 1);
        assert_true(sd_bus_reply_method_return(f.reset[0], NULL) >= 0);
        RUN_UNTIL(event, f.n_start == 4);
        assert_int_equal(f.n_getall, 1);
        assert_true(sd_bus_reply_method_return(f.start[3], "o", "/org/freedesktop/systemd1/job/3") >= 0);
        RUN_UNTIL(event, strstr(strstr(rec.log, "finished 7") + 1, "started 7"));

        executor_free(rec.x);
        fake_stop(&f);
}

/* PID 1 failing to put a unit's child in its cgroup (219/CGROUP, after a daemon-reexec): the program
 * never ran, the unit is reset and started again with the same stdin, without a second "started",
 * at most CGROUP_RELAUNCHES_MAX (3) times; then the run fails saying how often it was tried. */
static void test_cgroup_failure_relaunched(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        TaskDef def = {.name = "t", .user = "nobody"};
        char *argv[] = {"/bin/cat", NULL};
        static const char data[] = "in";
        Launch l = {.id = 7,
                    .attempt = 1,
                    .def = &def,
                    .argv = argv,
                    .stdin_data = data,
                    .stdin_len = sizeof(data) - 1};
        Recorded rec = {};
        char buf[8];
        FakePid1 f;

        assert_true(sd_event_new(&event) >= 0);
        start_without_units(event, &f, &rec);
        assert_int_equal(executor_launch(rec.x, &l), 0);
        for (size_t i = 0; i < 4; i++) {
                int fd;

                RUN_UNTIL(event, f.n_start == i + 1);
                fd = start_stdin_fd(f.start[i]);
                assert_true(fd >= 0);
                assert_int_equal(pread(fd, buf, sizeof(buf), 0), 2);
                assert_true(sd_bus_reply_method_return(f.start[i], "o", "/org/freedesktop/systemd1/job/1") >=
                            0);
                RUN_UNTIL(event, f.n_getall == i + 1);
                answer_getall(&f, "asynctask-7.service", "failed", "failed", "exit-code", CLD_EXITED, 219);
                if (i == 3)
                        break;
                /* Reset, then started again: the launcher sees one run, still running. */
                RUN_UNTIL(event, f.n_reset == i + 1);
                assert_string_equal(rec.log, "ready;started 7 asynctask-7.service;");
                assert_true(sd_bus_reply_method_return(f.reset[i], NULL) >= 0);
        }
        RUN_UNTIL(event, strstr(rec.log, "finished 7"));
        assert_string_equal(rec.log, "ready;started 7 asynctask-7.service;finished 7 resources;");
        assert_non_null(strstr(rec.error, "219/CGROUP"));
        assert_non_null(strstr(rec.error, "tried 4 times"));
        assert_int_equal(f.n_reset, 3);
        assert_int_equal(f.n_start, 4);

        /* 217/USER (and any status but 219) would fail again: reported at once. */
        l.id = 8;
        rec.log[0] = 0;
        assert_int_equal(executor_launch(rec.x, &l), 0);
        RUN_UNTIL(event, f.n_start == 5);
        assert_true(sd_bus_reply_method_return(f.start[4], "o", "/org/freedesktop/systemd1/job/2") >= 0);
        RUN_UNTIL(event, f.n_getall == 5);
        answer_getall(&f, "asynctask-8.service", "failed", "failed", "exit-code", CLD_EXITED, 217);
        RUN_UNTIL(event, strstr(rec.log, "finished 8"));
        assert_string_equal(rec.log, "started 8 asynctask-8.service;finished 8 resources;");
        assert_non_null(strstr(rec.error, "217/USER"));
        assert_null(strstr(rec.error, "tried"));
        run_idle(event);
        assert_int_equal(f.n_reset, 3);

        /* A cancel while the relaunch waits ends the run as cancelled; nothing is started again. */
        l.id = 9;
        rec.log[0] = 0;
        assert_int_equal(executor_launch(rec.x, &l), 0);
        RUN_UNTIL(event, f.n_start == 6);
        assert_true(sd_bus_reply_method_return(f.start[5], "o", "/org/freedesktop/systemd1/job/3") >= 0);
        RUN_UNTIL(event, f.n_getall == 6);
        answer_getall(&f, "asynctask-9.service", "failed", "failed", "exit-code", CLD_EXITED, 219);
        RUN_UNTIL(event, f.n_reset == 4);
        assert_true(sd_bus_reply_method_return(f.reset[3], NULL) >= 0);
        run_idle(event);
        assert_int_equal(executor_stop(rec.x, 9), 0);
        RUN_UNTIL(event, strstr(rec.log, "finished 9"));
        assert_string_equal(rec.log, "started 9 asynctask-9.service;finished 9 cancelled;");
        run_idle(event);
        assert_int_equal(f.n_start, 6);

        executor_free(rec.x);
        fake_stop(&f);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_launch_rejects),
                cmocka_unit_test(test_ready_after_recovery),
                cmocka_unit_test(test_ready_without_units),
                cmocka_unit_test(test_pid1_left_unanswered),
                cmocka_unit_test(test_unanswered_start_while_releasing),
                cmocka_unit_test(test_stdin_sent_again),
                cmocka_unit_test(test_cgroup_failure_relaunched),
        };
        log_set_max_level(LOG_ERR);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
