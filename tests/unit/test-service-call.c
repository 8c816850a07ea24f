/* SPDX-License-Identifier: MIT */
/* Answers that come later (service-call.c): waits, reload calls, a shutdown, and store calls without a
 * store, against a real ledger and event loop. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "front/service-call.h"
#include "shared/util.h"

#define T0 1700000000000000ULL

/* What one caller got: its answer lines, in order. */
typedef struct Caller {
        char *lines[4];
        size_t n;
} Caller;

typedef struct Fixture {
        sd_event *event;
        Ledger *ledger;
        ServiceCalls calls;
        Caller callers[4];
        unsigned n_settled;
} Fixture;

static void reply(char *line, size_t len, void *userdata) {
        Caller *c = userdata;

        assert_int_equal(len, strlen(line));
        assert_true(c->n < ELEMENTSOF(c->lines));
        c->lines[c->n++] = line;
}

static void settled(uint64_t submitted_id, int error, void *userdata) {
        Fixture *f = userdata;

        f->n_settled++;
}

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        assert_int_equal(sd_event_new(&f->event), 0);
        assert_int_equal(ledger_new(&f->ledger), 0);
        f->calls = (ServiceCalls){.event = f->event, .ledger = f->ledger, .settled = settled, .userdata = f};
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;

        service_calls_done(&f->calls);
        ledger_free(f->ledger);
        sd_event_unref(f->event);
        for (size_t i = 0; i < ELEMENTSOF(f->callers); i++)
                for (size_t k = 0; k < f->callers[i].n; k++)
                        free(f->callers[i].lines[k]);
        free(f);
        return 0;
}

static ServiceAnswer answer_for(Fixture *f, size_t caller) {
        return (ServiceAnswer){.reply = reply, .userdata = &f->callers[caller]};
}

static TaskRecord *submit(Fixture *f) {
        TaskSubmission sub = {.task = "a", .submitter = "uid:33", .max_attempts = 1};
        TaskRecord *t = NULL;

        assert_int_equal(ledger_submit(f->ledger, &sub, T0, &t, NULL), 0);
        return t;
}

static void assert_answer(const Caller *c, size_t i, const char *part) {
        assert_true(i < c->n);
        if (!strstr(c->lines[i], part))
                fail_msg("answer \"%s\" lacks \"%s\"", c->lines[i], part);
}

static void test_wait_answers_at_the_final_state(void **state) {
        Fixture *f = *state;
        TaskRecord *t = submit(f);
        ServiceAnswer a = answer_for(f, 0);
        RunResult ok = {.result = "success"};

        assert_int_equal(service_call_wait(&f->calls, t, 60 * USEC_PER_SEC, &a), 0);
        assert_non_null(a.call);
        assert_false(service_call_is_store_write(a.call));
        /* A wait holds its connection but is not pending work for a shutdown to wait for. */
        assert_int_equal(f->calls.n_pending, 0);

        assert_int_equal(ledger_mark_running(f->ledger, t, T0 + 1), 0);
        assert_int_equal(f->callers[0].n, 0);
        assert_int_equal(ledger_mark_finished(f->ledger, t, &ok, T0 + 2, 0), 0);
        assert_int_equal(f->callers[0].n, 1);
        assert_answer(&f->callers[0], 0, "\"ok\":true");
        assert_answer(&f->callers[0], 0, "\"state\":\"succeeded\"");
        assert_null(f->calls.head);
}

static void test_wait_on_a_forgotten_task(void **state) {
        Fixture *f = *state;
        TaskRecord *t = submit(f);
        ServiceAnswer a = answer_for(f, 0);
        uint64_t id = t->id;
        char want[64];

        assert_int_equal(service_call_wait(&f->calls, t, 60 * USEC_PER_SEC, &a), 0);
        assert_int_equal(ledger_forget(f->ledger, t), 0);
        snprintf(want, sizeof(want), "task %llu was forgotten", (unsigned long long) id);
        assert_answer(&f->callers[0], 0, "\"code\":\"not_found\"");
        assert_answer(&f->callers[0], 0, want);
        assert_null(f->calls.head);
}

static void test_wait_times_out_with_the_record_as_it_is(void **state) {
        Fixture *f = *state;
        TaskRecord *t = submit(f);
        ServiceAnswer a = answer_for(f, 0);

        assert_int_equal(service_call_wait(&f->calls, t, 1, &a), 0);
        for (int i = 0; i < 100 && f->callers[0].n == 0; i++)
                assert_true(sd_event_run(f->event, 100 * USEC_PER_MSEC) >= 0);
        assert_int_equal(f->callers[0].n, 1);
        assert_answer(&f->callers[0], 0, "\"ok\":true");
        assert_answer(&f->callers[0], 0, "\"state\":\"queued\"");
        assert_null(f->calls.head);
}

static void test_a_freed_wait_is_not_answered(void **state) {
        Fixture *f = *state;
        TaskRecord *t = submit(f);
        ServiceAnswer a = answer_for(f, 0);

        assert_int_equal(service_call_wait(&f->calls, t, 60 * USEC_PER_SEC, &a), 0);
        assert_null(service_call_free(a.call));
        assert_null(f->calls.head);
        /* Its watch went with it: the task ending answers nobody. */
        assert_int_equal(ledger_cancel(f->ledger, t, T0 + 1), 0);
        assert_int_equal(f->callers[0].n, 0);
        assert_null(service_call_free(NULL));
}

static void test_reload_calls_by_round(void **state) {
        Fixture *f = *state;
        ServiceAnswer a1 = answer_for(f, 0), a2 = answer_for(f, 1);
        ErrorReply refused = {.code = ERR_BAD_REQUEST, .message = "tasks.d/x.json: bad"};

        assert_int_equal(service_call_reload(&f->calls, 1, &a1), 0);
        assert_int_equal(service_call_reload(&f->calls, 2, &a2), 0);
        assert_int_equal(f->calls.n_pending, 2);

        /* Round 1 answers its own call; the one for round 2 waits for that round. */
        service_calls_reload_done(&f->calls, 1, NULL);
        assert_int_equal(f->callers[0].n, 1);
        assert_string_equal(f->callers[0].lines[0], "{\"ok\":true}\n");
        assert_int_equal(f->callers[1].n, 0);
        assert_int_equal(f->calls.n_pending, 1);

        service_calls_reload_done(&f->calls, 2, &refused);
        assert_int_equal(f->callers[1].n, 1);
        assert_answer(&f->callers[1], 0, "\"ok\":false");
        assert_answer(&f->callers[1], 0, "\"code\":\"bad_request\"");
        assert_answer(&f->callers[1], 0, "tasks.d/x.json: bad");
        assert_int_equal(f->calls.n_pending, 0);
        assert_null(f->calls.head);
}

static void test_shutdown_answers_waits_and_refuses_reloads(void **state) {
        Fixture *f = *state;
        TaskRecord *t = submit(f);
        ServiceAnswer wait = answer_for(f, 0), reload = answer_for(f, 1);

        assert_int_equal(service_call_wait(&f->calls, t, 60 * USEC_PER_SEC, &wait), 0);
        assert_int_equal(service_call_reload(&f->calls, 1, &reload), 0);
        service_calls_shutdown(&f->calls);

        assert_answer(&f->callers[0], 0, "\"state\":\"queued\"");
        assert_answer(&f->callers[1], 0, "\"code\":\"unavailable\"");
        assert_answer(&f->callers[1], 0, "the daemon is shutting down");
        assert_int_equal(f->calls.n_pending, 0);
        assert_null(f->calls.head);
}

static int write_never(ServiceCall *c, void *userdata) {
        fail_msg("no store: nothing is written");
        return -EIO;
}

static void test_no_store_answers_at_once(void **state) {
        Fixture *f = *state;
        ServiceAnswer a = answer_for(f, 0);
        char *line = strdup("{\"ok\":true}\n");

        a.line = line;
        a.len = strlen(line);
        assert_int_equal(service_call_after_writes(&f->calls, &a, 17, write_never, NULL), 0);
        assert_ptr_equal(a.line, line);
        assert_null(a.call);
        assert_int_equal(f->n_settled, 0);
        free(line);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_wait_answers_at_the_final_state, setup, teardown),
                cmocka_unit_test_setup_teardown(test_wait_on_a_forgotten_task, setup, teardown),
                cmocka_unit_test_setup_teardown(test_wait_times_out_with_the_record_as_it_is, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_a_freed_wait_is_not_answered, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reload_calls_by_round, setup, teardown),
                cmocka_unit_test_setup_teardown(test_shutdown_answers_waits_and_refuses_reloads, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_no_store_answers_at_once, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
