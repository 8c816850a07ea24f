/* SPDX-License-Identifier: MIT */
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "front/ledger.h"
#include "shared/limits.h"
#include "shared/util.h"

#define T0 ((uint64_t) 1700000000 * USEC_PER_SEC)

static int setup(void **state) {
        Ledger *l = NULL;

        if (ledger_new(&l) < 0)
                return -1;
        *state = l;
        return 0;
}

static int teardown(void **state) {
        ledger_free(*state);
        return 0;
}

static TaskRecord *submit_full(Ledger *l, const char *task, const char *cmd, int priority,
                               uint64_t run_after, uint64_t now) {
        TaskSubmission sub = {
                .task = task,
                .cmd = cmd,
                .submitter = "uid:33",
                .priority = priority,
                .max_attempts = 1,
                .run_after = run_after,
        };
        TaskRecord *t = NULL;
        bool existing = true;

        assert_int_equal(ledger_submit(l, &sub, now, &t, &existing), 0);
        assert_non_null(t);
        assert_false(existing);
        return t;
}

static TaskRecord *submit_task(Ledger *l, const char *task, int priority) {
        return submit_full(l, task, NULL, priority, 0, T0);
}

static RunResult result_of(const char *what) {
        RunResult r = {};

        snprintf(r.result, sizeof(r.result), "%s", what);
        if (streq(what, "exit-code")) {
                r.has_exit_status = 1;
                r.exit_status = 3;
                snprintf(r.error, sizeof(r.error), "exited with status 3");
        }
        return r;
}

/* Takes the next runnable task at `now` and marks it running; returns its id or 0. */
static uint64_t run_next(Ledger *l, uint64_t now) {
        TaskRecord *t = ledger_next_runnable(l, now, NULL, NULL);

        if (!t)
                return 0;
        assert_int_equal(ledger_mark_running(l, t, now), 0);
        return t->id;
}

/* ---- submission ---- */

static void test_submit_copies_fields(void **state) {
        Ledger *l = *state;
        char a0[] = "in.png", a1[] = "out.png";
        char *args[] = {a0, a1};
        const char stdin_bytes[] = {'a', 0, 'b'};
        TaskSubmission sub = {
                .task = "resize",
                .args = args,
                .n_args = 2,
                .stdin_data = stdin_bytes,
                .stdin_len = sizeof(stdin_bytes),
                .key = "img-42",
                .submitter = "uid:33",
                .priority = 7,
                .max_attempts = 3,
        };
        TaskRecord *t = NULL;
        bool existing = true;
        LedgerStats st;

        assert_int_equal(ledger_submit(l, &sub, T0, &t, &existing), 0);
        assert_false(existing);
        /* The ledger keeps copies, not the caller's buffers. */
        a0[0] = 'X';
        assert_int_equal(t->id, 1);
        assert_string_equal(t->task, "resize");
        assert_null(t->cmd);
        assert_int_equal(t->n_args, 2);
        assert_string_equal(t->args[0], "in.png");
        assert_string_equal(t->args[1], "out.png");
        assert_null(t->args[2]);
        assert_int_equal(t->stdin_len, 3);
        assert_memory_equal(t->stdin_data, stdin_bytes, 3);
        assert_string_equal(t->key, "img-42");
        assert_string_equal(t->submitter, "uid:33");
        assert_int_equal(t->priority, 7);
        assert_int_equal(t->state, TASK_QUEUED);
        assert_int_equal(t->attempts, 0);
        assert_int_equal(t->max_attempts, 3);
        assert_null(t->unit);
        assert_int_equal(t->created_at, T0);
        assert_int_equal(t->run_after, T0); /* 0 = now */
        assert_int_equal(t->started_at, 0);
        assert_int_equal(t->finished_at, 0);
        assert_int_equal(t->last.result[0], 0);
        assert_ptr_equal(ledger_get(l, 1), t);
        assert_null(ledger_get(l, 2));
        assert_null(ledger_get(l, 0));

        ledger_stats(l, &st);
        assert_int_equal(st.queued, 1);
        assert_int_equal(st.submitted_total, 1);

        /* A raw command, no args, no stdin: ids keep counting. */
        t = submit_full(l, NULL, "echo \"hello world\"", 0, 0, T0);
        assert_int_equal(t->id, 2);
        assert_null(t->task);
        assert_string_equal(t->cmd, "echo \"hello world\"");
        assert_int_equal(t->n_args, 0);
        assert_non_null(t->args);
        assert_null(t->args[0]);
        assert_null(t->stdin_data);
        assert_null(t->key);
}

static void test_submit_invalid(void **state) {
        Ledger *l = *state;
        char a[] = "x";
        char *many[TASK_ARGS_MAX + 1];
        TaskRecord *t = NULL;
        LedgerStats st;

        for (size_t i = 0; i < ELEMENTSOF(many); i++)
                many[i] = a;

        TaskSubmission both = {.task = "a", .cmd = "b", .submitter = "uid:0"};
        TaskSubmission neither = {.submitter = "uid:0"};
        TaskSubmission no_submitter = {.task = "a"};
        TaskSubmission args_null = {.task = "a", .submitter = "uid:0", .n_args = 1};
        char *with_null[] = {a, NULL};
        TaskSubmission arg_null = {.task = "a", .submitter = "uid:0", .args = with_null, .n_args = 2};
        TaskSubmission stdin_null = {.task = "a", .submitter = "uid:0", .stdin_len = 4};
        TaskSubmission too_many = {
                .task = "a", .submitter = "uid:0", .args = many, .n_args = TASK_ARGS_MAX + 1};
        TaskSubmission at_max = {.task = "a", .submitter = "uid:0", .args = many, .n_args = TASK_ARGS_MAX};

        assert_int_equal(ledger_submit(l, &both, T0, &t, NULL), -EINVAL);
        assert_int_equal(ledger_submit(l, &neither, T0, &t, NULL), -EINVAL);
        assert_int_equal(ledger_submit(l, &no_submitter, T0, &t, NULL), -EINVAL);
        assert_int_equal(ledger_submit(l, &args_null, T0, &t, NULL), -EINVAL);
        assert_int_equal(ledger_submit(l, &arg_null, T0, &t, NULL), -EINVAL);
        assert_int_equal(ledger_submit(l, &stdin_null, T0, &t, NULL), -EINVAL);
        assert_int_equal(ledger_submit(l, NULL, T0, &t, NULL), -EINVAL);
        assert_int_equal(ledger_submit(l, &too_many, T0, &t, NULL), -E2BIG);
        assert_null(t); /* ret untouched on failure */

        ledger_stats(l, &st);
        assert_int_equal(st.queued, 0);
        assert_int_equal(st.submitted_total, 0);

        /* N is fine, and the failures did not use up ids. */
        assert_int_equal(ledger_submit(l, &at_max, T0, &t, NULL), 0);
        assert_int_equal(t->n_args, TASK_ARGS_MAX);
        assert_int_equal(t->id, 1);
}

/* ---- queue order ---- */

static void test_order_priority_then_id_across_groups(void **state) {
        Ledger *l = *state;
        /* id: 1    2    3    4    5    6    7 */
        submit_task(l, "a", 0);
        submit_task(l, "b", 5);
        submit_full(l, NULL, "x", 5, 0, T0);
        submit_task(l, "a", 5);
        submit_task(l, "b", -1);
        submit_full(l, NULL, "x", 9, 0, T0);
        submit_task(l, "a", 0);
        static const uint64_t expected[] = {6, 2, 3, 4, 1, 7, 5};

        for (size_t i = 0; i < ELEMENTSOF(expected); i++)
                assert_int_equal(run_next(l, T0), expected[i]);
        assert_int_equal(run_next(l, T0), 0);
}

static void test_task_and_command_of_same_name_are_distinct_groups(void **state) {
        Ledger *l = *state;
        TaskRecord *task = submit_task(l, "same", 0);
        TaskRecord *cmd = submit_full(l, NULL, "same", 0, 0, T0);

        assert_int_equal(ledger_mark_running(l, task, T0), 0);
        assert_ptr_equal(ledger_next_runnable(l, T0, NULL, NULL), cmd);
}

static void test_delay_boundary(void **state) {
        Ledger *l = *state;
        const uint64_t N = 5 * USEC_PER_SEC;
        TaskRecord *later = submit_full(l, "t", NULL, 9, T0 + N, T0);
        TaskRecord *now = submit_full(l, "t", NULL, 0, 0, T0);

        assert_int_equal(later->run_after, T0 + N);
        assert_int_equal(ledger_next_wakeup(l), T0 + N);

        /* N-1 µs: only the undelayed one is runnable, the delayed one still waits. */
        assert_ptr_equal(ledger_next_runnable(l, T0 + N - 1, NULL, NULL), now);
        assert_int_equal(ledger_next_wakeup(l), T0 + N);
        /* N: the delayed one is due and wins on priority. */
        assert_ptr_equal(ledger_next_runnable(l, T0 + N, NULL, NULL), later);
        assert_int_equal(ledger_next_wakeup(l), UINT64_MAX);

        /* Alone and not due yet: nothing is runnable. */
        assert_int_equal(ledger_mark_running(l, later, T0 + N), 0);
        assert_int_equal(ledger_mark_running(l, now, T0 + N), 0);
        TaskRecord *d = submit_full(l, NULL, "c", 0, T0 + 2 * N, T0 + N);
        assert_null(ledger_next_runnable(l, T0 + 2 * N - 1, NULL, NULL));
        assert_ptr_equal(ledger_next_runnable(l, T0 + 2 * N, NULL, NULL), d);

        /* A run_after already past is runnable at once. */
        TaskRecord *past = submit_full(l, "p", NULL, 100, T0, T0 + N);
        assert_ptr_equal(ledger_next_runnable(l, T0 + N, NULL, NULL), past);
}

static void test_delayed_order_among_equal_run_after(void **state) {
        Ledger *l = *state;
        /* Same run_after: priority then id decide once they are due. */
        submit_full(l, "a", NULL, 0, T0 + 10, T0);
        submit_full(l, "b", NULL, 3, T0 + 10, T0);
        submit_full(l, "a", NULL, 3, T0 + 10, T0);
        submit_full(l, "c", NULL, 0, T0 + 5, T0);

        assert_int_equal(ledger_next_wakeup(l), T0 + 5);
        assert_int_equal(run_next(l, T0 + 9), 4);
        assert_int_equal(run_next(l, T0 + 9), 0);
        assert_int_equal(run_next(l, T0 + 10), 2);
        assert_int_equal(run_next(l, T0 + 10), 3);
        assert_int_equal(run_next(l, T0 + 10), 1);
}

static void test_mark_running_a_delayed_task(void **state) {
        Ledger *l = *state;
        TaskRecord *t = submit_full(l, "a", NULL, 0, T0 + 100, T0);

        assert_int_equal(ledger_mark_running(l, t, T0), 0);
        assert_int_equal(ledger_next_wakeup(l), UINT64_MAX);
        assert_null(ledger_next_runnable(l, T0 + 1000, NULL, NULL));
}

typedef struct Refuse {
        const char *name; /* refuse this task name */
        unsigned asked;
        uint64_t asked_ids[16];
} Refuse;

static bool refuse_name(const TaskRecord *t, void *ud) {
        Refuse *r = ud;

        if (r->asked < ELEMENTSOF(r->asked_ids))
                r->asked_ids[r->asked] = t->id;
        r->asked++;
        return !(r->name && t->task && streq(t->task, r->name));
}

static void test_can_start_refusal_lets_another_group_run(void **state) {
        Ledger *l = *state;
        Refuse ref = {.name = "busy"};

        submit_task(l, "busy", 10); /* 1 */
        submit_task(l, "busy", 9);  /* 2 */
        submit_task(l, "free", 1);  /* 3 */
        submit_task(l, "free", 0);  /* 4 */
        submit_task(l, "other", 0); /* 5 */

        TaskRecord *t = ledger_next_runnable(l, T0, refuse_name, &ref);
        assert_non_null(t);
        assert_int_equal(t->id, 3);
        /* Asked only about the best candidate of a group, never about "busy"'s second task. */
        for (unsigned i = 0; i < ref.asked && i < ELEMENTSOF(ref.asked_ids); i++)
                assert_true(ref.asked_ids[i] == 1 || ref.asked_ids[i] == 3 || ref.asked_ids[i] == 5);
        assert_true(ref.asked <= 3);

        /* Nothing allowed: NULL. */
        Refuse none = {.name = "busy"};
        assert_int_equal(ledger_mark_running(l, t, T0), 0);
        t = ledger_next_runnable(l, T0, refuse_name, &none);
        assert_int_equal(t->id, 4);
        assert_int_equal(ledger_mark_running(l, t, T0), 0);
        t = ledger_next_runnable(l, T0, refuse_name, &none);
        assert_int_equal(t->id, 5);
        assert_int_equal(ledger_mark_running(l, t, T0), 0);
        assert_null(ledger_next_runnable(l, T0, refuse_name, &none));
        /* Allowed again: "busy" is still queued in order. */
        assert_int_equal(run_next(l, T0), 1);
        assert_int_equal(run_next(l, T0), 2);
}

/* The refill of the queue's window counts the records of names that can start: a refused name's are
 * counted apart (however many), delayed ones as able; each name is asked about once. */
static void test_count_queued_by_name(void **state) {
        Ledger *l = *state;
        Refuse ref = {.name = "busy"};
        size_t able = 99, waiting = 99;

        ledger_count_queued(l, refuse_name, &ref, &able, &waiting);
        assert_int_equal(able, 0);
        assert_int_equal(waiting, 0);
        for (int i = 0; i < 5; i++)
                submit_task(l, "busy", i);
        submit_task(l, "free", 0);
        submit_task(l, "free", 0);
        submit_full(l, "busy", NULL, 0, T0 + 1000, T0); /* delayed */
        ref.asked = 0;
        ledger_count_queued(l, refuse_name, &ref, &able, &waiting);
        assert_int_equal(able, 3);
        assert_int_equal(waiting, 5);
        assert_int_equal(ref.asked, 2);
        assert_int_equal(run_next(l, T0), 5);
        ledger_count_queued(l, refuse_name, &ref, &able, &waiting);
        assert_int_equal(waiting, 4);
}

/* ---- idempotency ---- */

static void test_idempotent_keys(void **state) {
        Ledger *l = *state;
        TaskSubmission sub = {.task = "mail", .key = "k1", .submitter = "uid:33", .max_attempts = 1};
        TaskRecord *a = NULL, *b = NULL, *c = NULL, *d = NULL;
        bool existing = false;
        LedgerStats st;

        assert_int_equal(ledger_submit(l, &sub, T0, &a, &existing), 0);
        assert_false(existing);

        /* Same key, same submitter: the first task, nothing new. */
        sub.priority = 9;
        assert_int_equal(ledger_submit(l, &sub, T0 + 1, &b, &existing), 0);
        assert_true(existing);
        assert_ptr_equal(a, b);
        assert_int_equal(b->priority, 0);
        ledger_stats(l, &st);
        assert_int_equal(st.queued, 1);
        assert_int_equal(st.submitted_total, 1);

        /* Same key, another submitter: a new task. */
        sub.submitter = "uid:34";
        assert_int_equal(ledger_submit(l, &sub, T0, &c, &existing), 0);
        assert_false(existing);
        assert_ptr_not_equal(a, c);

        /* Same submitter, another key; and no key at all: new tasks. */
        sub.submitter = "uid:33";
        sub.key = "k2";
        assert_int_equal(ledger_submit(l, &sub, T0, &d, &existing), 0);
        assert_false(existing);
        sub.key = NULL;
        assert_int_equal(ledger_submit(l, &sub, T0, &d, &existing), 0);
        assert_false(existing);
        assert_int_equal(ledger_submit(l, &sub, T0, &b, &existing), 0);
        assert_false(existing);
        assert_ptr_not_equal(b, d);

        /* The key still matches once the first task is final... */
        assert_int_equal(ledger_cancel(l, a, T0), 0);
        sub.key = "k1";
        assert_int_equal(ledger_submit(l, &sub, T0, &b, &existing), 0);
        assert_true(existing);
        assert_ptr_equal(a, b);

        /* ...and is free again after forget. */
        uint64_t old_id = a->id;
        assert_int_equal(ledger_forget(l, a), 0);
        assert_int_equal(ledger_submit(l, &sub, T0, &b, &existing), 0);
        assert_false(existing);
        assert_int_not_equal(b->id, old_id);
        assert_string_equal(b->key, "k1");
}

/* ---- state machine ---- */

static void test_success_path(void **state) {
        Ledger *l = *state;
        TaskRecord *t = submit_task(l, "a", 0);
        RunResult ok = result_of("success");
        LedgerStats st;

        t->unit = strdup("asynctask-old.service");
        assert_int_equal(ledger_mark_running(l, t, T0 + 10), 0);
        assert_int_equal(t->state, TASK_RUNNING);
        assert_int_equal(t->attempts, 1);
        assert_int_equal(t->started_at, T0 + 10);
        assert_null(t->unit);
        ledger_stats(l, &st);
        assert_int_equal(st.queued, 0);
        assert_int_equal(st.running, 1);

        /* Launched; the launcher names the unit (the ledger owns and frees it); the run ends. */
        assert_int_equal(ledger_mark_launching(l, t), 0);
        assert_true(t->launch_pending);
        assert_int_equal(ledger_mark_started(l, t, "asynctask-1.service"), 0);
        assert_false(t->launch_pending);
        ok.cpu_usec = 1234;
        assert_int_equal(ledger_mark_finished(l, t, &ok, T0 + 20, 5), 0);
        assert_int_equal(t->state, TASK_SUCCEEDED);
        assert_int_equal(t->finished_at, T0 + 20);
        assert_string_equal(t->last.result, "success");
        assert_int_equal(t->last.cpu_usec, 1234);
        assert_false(t->launch_pending);
        assert_string_equal(t->unit, "asynctask-1.service");
        ledger_stats(l, &st);
        assert_int_equal(st.running, 0);
        assert_int_equal(st.succeeded, 1);
}

static void test_wrong_state_errors(void **state) {
        Ledger *l = *state;
        TaskRecord *t = submit_task(l, "a", 0);
        RunResult ok = result_of("success"), fail = result_of("exit-code");

        /* queued */
        assert_int_equal(ledger_mark_finished(l, t, &ok, T0, 0), -EINVAL);
        assert_int_equal(ledger_retry(l, t, T0), -EINVAL);
        /* running */
        assert_int_equal(ledger_mark_running(l, t, T0), 0);
        assert_int_equal(ledger_mark_running(l, t, T0), -EINVAL);
        assert_int_equal(ledger_cancel(l, t, T0), -EBUSY);
        assert_int_equal(ledger_retry(l, t, T0), -EINVAL);
        assert_int_equal(ledger_forget(l, t), -EBUSY);
        assert_int_equal(ledger_mark_finished(l, t, NULL, T0, 0), -EINVAL);
        assert_int_equal(t->state, TASK_RUNNING);
        /* succeeded */
        assert_int_equal(ledger_mark_finished(l, t, &ok, T0, 0), 0);
        assert_int_equal(ledger_mark_running(l, t, T0), -EINVAL);
        assert_int_equal(ledger_mark_finished(l, t, &ok, T0, 0), -EINVAL);
        assert_int_equal(ledger_cancel(l, t, T0), -EALREADY);
        assert_int_equal(ledger_retry(l, t, T0), -EINVAL);
        /* failed */
        TaskRecord *f = submit_task(l, "a", 0);
        assert_int_equal(ledger_mark_running(l, f, T0), 0);
        assert_int_equal(ledger_mark_finished(l, f, &fail, T0, 0), 0);
        assert_int_equal(f->state, TASK_FAILED);
        assert_int_equal(ledger_cancel(l, f, T0), -EALREADY);
        assert_int_equal(ledger_mark_running(l, f, T0), -EINVAL);
        /* cancelled */
        TaskRecord *c = submit_task(l, "a", 0);
        assert_int_equal(ledger_cancel(l, c, T0), 0);
        assert_int_equal(ledger_cancel(l, c, T0), -EALREADY);
        assert_int_equal(ledger_mark_running(l, c, T0), -EINVAL);
        assert_int_equal(ledger_mark_finished(l, c, &ok, T0, 0), -EINVAL);
        /* bad arguments */
        assert_int_equal(ledger_mark_running(l, NULL, T0), -EINVAL);
        assert_int_equal(ledger_forget(l, NULL), -EINVAL);
        assert_int_equal(ledger_watch(l, c, NULL, NULL, NULL), -EINVAL);
}

static void test_cancel_queued(void **state) {
        Ledger *l = *state;
        TaskRecord *a = submit_task(l, "a", 5);
        TaskRecord *d = submit_full(l, "a", NULL, 0, T0 + 100, T0);
        TaskRecord *b = submit_task(l, "a", 0);
        LedgerStats st;

        assert_int_equal(ledger_cancel(l, a, T0 + 1), 0);
        assert_int_equal(a->state, TASK_CANCELLED);
        assert_int_equal(a->finished_at, T0 + 1);
        /* A delayed one leaves the delay heap too. */
        assert_int_equal(ledger_cancel(l, d, T0 + 1), 0);
        assert_int_equal(ledger_next_wakeup(l), UINT64_MAX);
        assert_ptr_equal(ledger_next_runnable(l, T0 + 1000, NULL, NULL), b);
        ledger_stats(l, &st);
        assert_int_equal(st.queued, 1);
        assert_int_equal(st.cancelled, 2);
}

static void test_cancelled_result_of_a_run(void **state) {
        Ledger *l = *state;
        TaskRecord *t = submit_task(l, "a", 0);
        RunResult cancelled = result_of("cancelled");

        t->max_attempts = 5; /* attempts left do not matter: a cancelled run is final */
        assert_int_equal(ledger_mark_running(l, t, T0), 0);
        assert_int_equal(ledger_mark_finished(l, t, &cancelled, T0 + 7, 30), 0);
        assert_int_equal(t->state, TASK_CANCELLED);
        assert_int_equal(t->finished_at, T0 + 7);
        assert_string_equal(t->last.result, "cancelled");
}

static void test_retry_with_backoff_until_failed(void **state) {
        Ledger *l = *state;
        TaskSubmission sub = {.task = "flaky", .submitter = "uid:0", .max_attempts = 3};
        static const uint64_t backoff[] = {5, 30};
        RunResult fail = result_of("exit-code");
        TaskRecord *t = NULL;
        uint64_t now = T0;
        LedgerStats st;

        assert_int_equal(ledger_submit(l, &sub, now, &t, NULL), 0);
        for (unsigned attempt = 1; attempt <= 3; attempt++) {
                assert_ptr_equal(ledger_next_runnable(l, now, NULL, NULL), t);
                assert_int_equal(ledger_mark_running(l, t, now), 0);
                assert_int_equal(t->attempts, attempt);
                now += 1000;
                fail.exit_status = (int) attempt;
                assert_int_equal(
                        ledger_mark_finished(l, t, &fail, now, attempt < 3 ? backoff[attempt - 1] : 99), 0);
                assert_int_equal(t->last.exit_status, (int) attempt);
                if (attempt == 3)
                        break;

                uint64_t due = now + backoff[attempt - 1] * USEC_PER_SEC;
                assert_int_equal(t->state, TASK_QUEUED);
                assert_int_equal(t->run_after, due);
                assert_int_equal(t->finished_at, 0);
                assert_int_equal(ledger_next_wakeup(l), due);
                assert_null(ledger_next_runnable(l, due - 1, NULL, NULL));
                ledger_stats(l, &st);
                assert_int_equal(st.queued, 1);
                now = due;
        }
        assert_int_equal(t->state, TASK_FAILED);
        assert_int_equal(t->attempts, 3);
        assert_int_equal(t->finished_at, now);
        assert_string_equal(t->last.result, "exit-code");
        assert_string_equal(t->last.error, "exited with status 3");
        assert_int_equal(ledger_next_wakeup(l), UINT64_MAX);
        ledger_stats(l, &st);
        assert_int_equal(st.queued, 0);
        assert_int_equal(st.failed, 1);

        /* Manual retry: attempts reset, runnable now, last result kept until the next run ends. */
        assert_int_equal(ledger_retry(l, t, now + 50), 0);
        assert_int_equal(t->state, TASK_QUEUED);
        assert_int_equal(t->attempts, 0);
        assert_int_equal(t->run_after, now + 50);
        assert_int_equal(t->finished_at, 0);
        assert_string_equal(t->last.result, "exit-code");
        assert_ptr_equal(ledger_next_runnable(l, now + 50, NULL, NULL), t);
        ledger_stats(l, &st);
        assert_int_equal(st.queued, 1);
        assert_int_equal(st.failed, 0);
        assert_int_equal(ledger_mark_running(l, t, now + 60), 0);
        assert_string_equal(t->last.result, "exit-code");
        RunResult ok = result_of("success");
        assert_int_equal(ledger_mark_finished(l, t, &ok, now + 70, 0), 0);
        assert_string_equal(t->last.result, "success");
        assert_int_equal(t->state, TASK_SUCCEEDED);
}

static void test_backoff_zero_and_huge(void **state) {
        Ledger *l = *state;
        TaskSubmission sub = {.task = "x", .submitter = "uid:0", .max_attempts = 3};
        RunResult fail = result_of("timeout");
        TaskRecord *t = NULL;

        assert_int_equal(ledger_submit(l, &sub, T0, &t, NULL), 0);
        assert_int_equal(ledger_mark_running(l, t, T0), 0);
        assert_int_equal(ledger_mark_finished(l, t, &fail, T0 + 1, 0), 0);
        assert_int_equal(t->run_after, T0 + 1);
        assert_ptr_equal(ledger_next_runnable(l, T0 + 1, NULL, NULL), t);

        /* Saturates instead of wrapping around into the past. */
        assert_int_equal(ledger_mark_running(l, t, T0 + 1), 0);
        assert_int_equal(ledger_mark_finished(l, t, &fail, T0 + 2, UINT64_MAX / 2), 0);
        assert_int_equal(t->run_after, UINT64_MAX);
        assert_null(ledger_next_runnable(l, UINT64_MAX - 1, NULL, NULL));
}

static void test_retry_cancelled(void **state) {
        Ledger *l = *state;
        TaskRecord *t = submit_task(l, "a", 0);

        assert_int_equal(ledger_cancel(l, t, T0), 0);
        assert_int_equal(ledger_retry(l, t, T0 + 5), 0);
        assert_int_equal(t->state, TASK_QUEUED);
        assert_int_equal(t->finished_at, 0);
        assert_ptr_equal(ledger_next_runnable(l, T0 + 5, NULL, NULL), t);
}

static void test_forget(void **state) {
        Ledger *l = *state;
        TaskRecord *q = submit_task(l, "a", 0);
        TaskRecord *d = submit_full(l, "a", NULL, 0, T0 + 9, T0);
        TaskRecord *r = submit_task(l, "b", 0);
        RunResult ok = result_of("success");
        LedgerStats st;

        assert_int_equal(ledger_mark_running(l, r, T0), 0);
        assert_int_equal(ledger_forget(l, r), -EBUSY);
        assert_int_equal(ledger_forget(l, q), 0);
        assert_int_equal(ledger_forget(l, d), 0);
        assert_null(ledger_get(l, 1));
        assert_null(ledger_get(l, 2));
        assert_int_equal(ledger_next_wakeup(l), UINT64_MAX);
        assert_null(ledger_next_runnable(l, T0 + 100, NULL, NULL));
        assert_int_equal(ledger_mark_finished(l, r, &ok, T0, 0), 0);
        assert_int_equal(ledger_forget(l, r), 0);
        ledger_stats(l, &st);
        assert_int_equal(st.queued + st.running + st.succeeded + st.failed + st.cancelled, 0);
        assert_int_equal(st.submitted_total, 3);
        /* Ids are not reused. */
        assert_int_equal(submit_task(l, "a", 0)->id, 4);
}

/* ---- watches ---- */

typedef struct WatchLog {
        unsigned calls;
        bool forgotten;
        TaskState state;
        uint64_t id;
        LedgerWatch *free_other; /* freed from the callback */
        Ledger *ledger;
        TaskRecord *forget; /* forget this record from the callback... */
        int forget_result;  /* ...expecting this */
        bool check_get;     /* the task is still reachable by id from the callback */
} WatchLog;

static void on_watch(const TaskRecord *t, bool forgotten, void *userdata) {
        WatchLog *w = userdata;

        w->calls++;
        w->forgotten = forgotten;
        w->state = t->state;
        w->id = t->id;
        if (w->check_get)
                assert_ptr_equal(ledger_get(w->ledger, t->id), t);
        if (w->free_other)
                w->free_other = ledger_watch_free(w->free_other);
        if (w->forget)
                assert_int_equal(ledger_forget(w->ledger, w->forget), w->forget_result);
}

static void test_watch_fires_once_on_final(void **state) {
        Ledger *l = *state;
        TaskSubmission sub = {.task = "a", .submitter = "uid:0", .max_attempts = 2};
        RunResult fail = result_of("exit-code");
        WatchLog w1 = {.ledger = l, .check_get = true}, w2 = {.ledger = l};
        LedgerWatch *h1 = NULL, *h2 = NULL;
        TaskRecord *t = NULL;

        assert_int_equal(ledger_submit(l, &sub, T0, &t, NULL), 0);
        assert_int_equal(ledger_watch(l, t, on_watch, &w1, &h1), 0);
        assert_int_equal(ledger_watch(l, t, on_watch, &w2, &h2), 0);
        assert_non_null(h1);

        /* A failed run with an attempt left is not final. */
        assert_int_equal(ledger_mark_running(l, t, T0), 0);
        assert_int_equal(ledger_mark_finished(l, t, &fail, T0, 0), 0);
        assert_int_equal(w1.calls + w2.calls, 0);

        assert_int_equal(ledger_mark_running(l, t, T0), 0);
        assert_int_equal(ledger_mark_finished(l, t, &fail, T0, 0), 0);
        assert_int_equal(w1.calls, 1);
        assert_int_equal(w2.calls, 1);
        assert_false(w1.forgotten);
        assert_int_equal(w1.state, TASK_FAILED);
        assert_int_equal(w1.id, t->id);

        /* Already fired and freed: retry + success does not call them again. */
        assert_int_equal(ledger_retry(l, t, T0), 0);
        assert_int_equal(ledger_mark_running(l, t, T0), 0);
        RunResult ok = result_of("success");
        assert_int_equal(ledger_mark_finished(l, t, &ok, T0, 0), 0);
        assert_int_equal(w1.calls, 1);
        assert_int_equal(w2.calls, 1);
}

static void test_watch_on_cancel_and_freed_before_firing(void **state) {
        Ledger *l = *state;
        WatchLog w1 = {.ledger = l}, w2 = {.ledger = l}, w3 = {.ledger = l};
        LedgerWatch *h1 = NULL, *h2 = NULL, *h3 = NULL;
        TaskRecord *t = submit_task(l, "a", 0);

        assert_int_equal(ledger_watch(l, t, on_watch, &w1, &h1), 0);
        assert_int_equal(ledger_watch(l, t, on_watch, &w2, &h2), 0);
        assert_int_equal(ledger_watch(l, t, on_watch, &w3, &h3), 0);
        assert_null(ledger_watch_free(h2)); /* middle of the list */
        assert_null(ledger_watch_free(NULL));
        assert_int_equal(ledger_cancel(l, t, T0), 0);
        assert_int_equal(w1.calls, 1);
        assert_int_equal(w1.state, TASK_CANCELLED);
        assert_int_equal(w2.calls, 0);
        assert_int_equal(w3.calls, 1);
}

static void test_watch_callback_frees_another(void **state) {
        Ledger *l = *state;
        WatchLog w1 = {.ledger = l}, w2 = {.ledger = l};
        LedgerWatch *h1 = NULL, *h2 = NULL;
        TaskRecord *t = submit_task(l, "a", 0);

        assert_int_equal(ledger_watch(l, t, on_watch, &w1, &h1), 0);
        assert_int_equal(ledger_watch(l, t, on_watch, &w2, &h2), 0);
        /* Whichever fires first frees the other, which then never fires. */
        w1.free_other = h2;
        w2.free_other = h1;
        assert_int_equal(ledger_cancel(l, t, T0), 0);
        assert_int_equal(w1.calls + w2.calls, 1);
}

static void test_watch_callback_frees_itself_is_harmless(void **state) {
        Ledger *l = *state;
        WatchLog w = {.ledger = l};
        LedgerWatch *h = NULL;
        TaskRecord *t = submit_task(l, "a", 0);

        assert_int_equal(ledger_watch(l, t, on_watch, &w, &h), 0);
        w.free_other = h; /* its own handle: the ledger frees it after the call, once */
        assert_int_equal(ledger_cancel(l, t, T0), 0);
        assert_int_equal(w.calls, 1);
}

/* A progress watch fires at each change of a running record's progress (and stays until the record is
 * final); a plain watch does not; a new attempt starts without progress. */
static void test_progress_watches(void **state) {
        Ledger *l = *state;
        TaskSubmission sub = {.task = "a", .submitter = "uid:0", .max_attempts = 2};
        RunResult fail = result_of("exit-code");
        WatchLog plain = {.ledger = l}, first = {.ledger = l}, second = {.ledger = l};
        TaskRecord *t = NULL;

        assert_int_equal(ledger_submit(l, &sub, T0, &t, NULL), 0);
        assert_int_equal(ledger_set_progress(l, t, "early"), -EINVAL); /* queued */
        assert_int_equal(ledger_watch(l, t, on_watch, &plain, NULL), 0);
        assert_int_equal(ledger_watch_progress(l, t, on_watch, &first, NULL), 0);
        assert_int_equal(ledger_mark_running(l, t, T0), 0);

        assert_int_equal(ledger_set_progress(l, t, "10%"), 1);
        assert_string_equal(t->progress, "10%");
        assert_int_equal(first.calls, 1);
        assert_false(first.forgotten);
        assert_int_equal(first.state, TASK_RUNNING);
        assert_int_equal(plain.calls, 0);

        /* The same text is no change; the fired watch is gone, a new one waits for the next. */
        assert_int_equal(ledger_watch_progress(l, t, on_watch, &second, NULL), 0);
        assert_int_equal(ledger_set_progress(l, t, "10%"), 0);
        assert_int_equal(second.calls, 0);
        assert_int_equal(ledger_set_progress(l, t, ""), 1);
        assert_int_equal(second.calls, 1);
        assert_int_equal(first.calls, 1);

        /* The next attempt starts without; the plain watch fires only when final. */
        assert_int_equal(ledger_mark_finished(l, t, &fail, T0, 0), 0);
        assert_string_equal(t->progress, "");
        assert_int_equal(ledger_mark_running(l, t, T0), 0);
        assert_null(t->progress);
        assert_int_equal(ledger_set_progress(l, t, "90%"), 1);
        assert_int_equal(ledger_mark_finished(l, t, &fail, T0, 0), 0);
        assert_int_equal(plain.calls, 1);
        assert_int_equal(plain.state, TASK_FAILED);
        assert_string_equal(t->progress, "90%"); /* kept with the result */
}

static void test_watch_fires_on_forget(void **state) {
        Ledger *l = *state;
        WatchLog w1 = {.ledger = l}, w2 = {.ledger = l};
        TaskRecord *t = submit_task(l, "a", 0);
        TaskRecord *f = submit_task(l, "a", 0);
        uint64_t id = t->id;

        assert_int_equal(ledger_watch(l, t, on_watch, &w1, NULL), 0);
        assert_int_equal(ledger_forget(l, t), 0);
        assert_int_equal(w1.calls, 1);
        assert_true(w1.forgotten);
        assert_int_equal(w1.state, TASK_QUEUED); /* state unchanged */
        assert_int_equal(w1.id, id);
        assert_null(ledger_get(l, id));

        /* A watch added to a final task fires when it is forgotten. */
        assert_int_equal(ledger_cancel(l, f, T0), 0);
        assert_int_equal(ledger_watch(l, f, on_watch, &w2, NULL), 0);
        assert_int_equal(ledger_forget(l, f), 0);
        assert_int_equal(w2.calls, 1);
        assert_true(w2.forgotten);
        assert_int_equal(w2.state, TASK_CANCELLED);
}

static void test_watch_callback_forgets_the_task(void **state) {
        Ledger *l = *state;
        WatchLog w1 = {.ledger = l}, w2 = {.ledger = l, .forget_result = -ENOENT};
        TaskRecord *t = submit_task(l, "a", 0);
        uint64_t id = t->id;
        LedgerStats st;

        w1.forget = t;
        w2.forget = t; /* already forgotten by w1: refused, not a double free */

        assert_int_equal(ledger_watch(l, t, on_watch, &w2, NULL), 0);
        assert_int_equal(ledger_watch(l, t, on_watch, &w1, NULL), 0); /* fires first (newest first) */
        assert_int_equal(ledger_cancel(l, t, T0), 0);
        /* w2 still fires, with the record alive until firing is over (ASan checks). */
        assert_int_equal(w1.calls, 1);
        assert_int_equal(w2.calls, 1);
        assert_int_equal(w2.id, id);
        assert_null(ledger_get(l, id));
        ledger_stats(l, &st);
        assert_int_equal(st.cancelled, 0);
}

static void test_watch_fires_on_ledger_free(void **state) {
        Ledger *l = NULL;
        WatchLog w = {};
        TaskRecord *t;

        assert_int_equal(ledger_new(&l), 0);
        w.ledger = l;
        t = submit_task(l, "a", 0);
        assert_int_equal(ledger_watch(l, t, on_watch, &w, NULL), 0);
        ledger_free(l);
        assert_int_equal(w.calls, 1);
        assert_true(w.forgotten);
        assert_null(ledger_free(NULL));

        /* A callback that forgets its task while the ledger is freed (no leak, no double free). */
        WatchLog w2 = {};
        assert_int_equal(ledger_new(&l), 0);
        w2.ledger = l;
        t = submit_task(l, "a", 0);
        w2.forget = t;
        assert_int_equal(ledger_watch(l, t, on_watch, &w2, NULL), 0);
        ledger_free(l);
        assert_int_equal(w2.calls, 1);
}

/* ---- list, purge, adopt ---- */

static void test_list(void **state) {
        Ledger *l = *state;
        TaskRecord *out[16];
        RunResult ok = result_of("success");

        for (int i = 0; i < 6; i++)
                submit_task(l, "a", i); /* ids 1..6, priority rises */
        assert_int_equal(ledger_cancel(l, ledger_get(l, 2), T0), 0);
        assert_int_equal(ledger_cancel(l, ledger_get(l, 5), T0), 0);
        assert_int_equal(ledger_mark_running(l, ledger_get(l, 6), T0), 0);
        assert_int_equal(ledger_mark_running(l, ledger_get(l, 4), T0), 0);
        assert_int_equal(ledger_mark_finished(l, ledger_get(l, 4), &ok, T0, 0), 0);
        assert_int_equal(ledger_forget(l, ledger_get(l, 3)), 0);

        assert_int_equal(ledger_list(l, -1, 16, out), 5);
        static const uint64_t all[] = {1, 2, 4, 5, 6};
        for (size_t i = 0; i < ELEMENTSOF(all); i++)
                assert_int_equal(out[i]->id, all[i]);

        assert_int_equal(ledger_list(l, -1, 2, out), 2);
        assert_int_equal(out[1]->id, 2);
        assert_int_equal(ledger_list(l, TASK_CANCELLED, 16, out), 2);
        assert_int_equal(out[0]->id, 2);
        assert_int_equal(out[1]->id, 5);
        assert_int_equal(ledger_list(l, TASK_CANCELLED, 1, out), 1);
        assert_int_equal(out[0]->id, 2);
        assert_int_equal(ledger_list(l, TASK_QUEUED, 16, out), 1);
        assert_int_equal(out[0]->id, 1);
        assert_int_equal(ledger_list(l, TASK_RUNNING, 16, out), 1);
        assert_int_equal(ledger_list(l, TASK_SUCCEEDED, 16, out), 1);
        assert_int_equal(ledger_list(l, TASK_FAILED, 16, out), 0);
        assert_int_equal(ledger_list(l, -1, 0, out), 0);
        assert_int_equal(ledger_list(l, _TASK_STATE_MAX, 16, out), 0);
}

static void test_list_many_with_removals(void **state) {
        Ledger *l = *state;
        TaskRecord **out = calloc(5000, sizeof(TaskRecord *));
        size_t n;

        assert_non_null(out);
        for (int i = 0; i < 5000; i++)
                submit_task(l, i % 3 ? "a" : "b", i % 7);
        /* Forget most of them so the id index compacts, then check the order still holds. */
        for (uint64_t id = 1; id <= 5000; id++)
                if (id % 5 != 0)
                        assert_int_equal(ledger_forget(l, ledger_get(l, id)), 0);
        n = ledger_list(l, -1, 5000, out);
        assert_int_equal(n, 1000);
        for (size_t i = 0; i < n; i++)
                assert_int_equal(out[i]->id, (i + 1) * 5);
        for (uint64_t id = 1; id <= 5000; id++)
                assert_true((ledger_get(l, id) != NULL) == (id % 5 == 0));
        free(out);
}

/* Pages of a state after an id: ids ascending, each page starting after the last id of the one before,
 * across removals and records adopted out of order. */
static void test_list_after(void **state) {
        Ledger *l = *state;
        RunResult fail = result_of("exit-code");
        TaskRecord *out[8];
        uint64_t seen[64];
        size_t n_seen = 0, n;
        uint64_t after = 0;

        for (int i = 0; i < 40; i++) {
                TaskRecord *t = submit_task(l, "a", 0);

                if (i % 3 == 0) {
                        assert_int_equal(ledger_mark_running(l, t, T0), 0);
                        assert_int_equal(ledger_mark_finished(l, t, &fail, T0 + 1, 0), 0);
                }
        }
        /* failed: 1, 4, 7, ..., 40 (14 records); forget 7 and 22 */
        assert_int_equal(ledger_forget(l, ledger_get(l, 7)), 0);
        assert_int_equal(ledger_forget(l, ledger_get(l, 22)), 0);
        for (uint64_t id = 100; id >= 90; id -= 5) { /* adopted failed, highest first */
                TaskRecord *t = calloc(1, sizeof(*t));

                assert_non_null(t);
                t->id = id;
                t->task = strdup("a");
                t->submitter = strdup("uid:33");
                t->state = TASK_FAILED;
                assert_int_equal(ledger_adopt(l, t), 0);
        }
        while ((n = ledger_list_after(l, TASK_FAILED, after, 5, out)) > 0) {
                for (size_t i = 0; i < n; i++) {
                        assert_int_equal(out[i]->state, TASK_FAILED);
                        assert_true(out[i]->id > after);
                        after = out[i]->id;
                        seen[n_seen++] = after;
                }
        }
        assert_int_equal(n_seen, 12 + 3);
        assert_int_equal(seen[0], 1);
        assert_int_equal(seen[1], 4);
        assert_int_equal(seen[2], 10);
        assert_int_equal(seen[11], 40);
        assert_int_equal(seen[12], 90);
        assert_int_equal(seen[14], 100);
        for (size_t i = 0; i < n_seen; i++)
                assert_true(seen[i] != 22);
        assert_int_equal(ledger_list_after(l, -1, 95, 8, out), 1);
        assert_int_equal(out[0]->id, 100);
        assert_int_equal(ledger_list_after(l, -1, 100, 8, out), 0);
        assert_int_equal(ledger_list_after(l, TASK_QUEUED, 38, 8, out), 1); /* 39 */
        assert_int_equal(out[0]->id, 39);
}

typedef struct DropLog {
        uint64_t ids[16];
        size_t n;
} DropLog;

static void on_dropped(const TaskRecord *t, void *userdata) {
        DropLog *d = userdata;

        assert_true(task_state_is_final(t->state));
        assert_true(d->n < ELEMENTSOF(d->ids));
        d->ids[d->n++] = t->id;
}

/* Past max_finished the oldest finished go first, succeeded and cancelled before failed; queued and
 * running records stay whatever their age; a retried record leaves the finished lists. */
static void test_trim_drops_oldest_finished_first(void **state) {
        Ledger *l = *state;
        RunResult ok = result_of("success"), fail = result_of("exit-code");
        DropLog d = {};
        LedgerStats st;

        TaskRecord *q1 = submit_task(l, "a", 0); /* 1: queued, the oldest of all */
        TaskRecord *r1 = submit_task(l, "b", 0); /* 2: running */
        TaskRecord *f1 = submit_task(l, "a", 0); /* 3: failed first */
        TaskRecord *s1 = submit_task(l, "a", 0); /* 4: succeeded after f1 */
        TaskRecord *c1 = submit_task(l, "a", 0); /* 5: cancelled after s1 */
        TaskRecord *f2 = submit_task(l, "a", 0); /* 6: failed, then retried, then succeeded last */
        TaskRecord *s2 = submit_task(l, "a", 0); /* 7: succeeded before s1 finished */
        TaskRecord *f3 = submit_task(l, "a", 0); /* 8: failed */

        assert_int_equal(ledger_mark_running(l, r1, T0), 0);
        assert_int_equal(ledger_mark_running(l, s2, T0), 0);
        assert_int_equal(ledger_mark_finished(l, s2, &ok, T0 + 1, 0), 0);
        assert_int_equal(ledger_mark_running(l, f1, T0), 0);
        assert_int_equal(ledger_mark_finished(l, f1, &fail, T0 + 2, 0), 0);
        assert_int_equal(ledger_mark_running(l, s1, T0), 0);
        assert_int_equal(ledger_mark_finished(l, s1, &ok, T0 + 3, 0), 0);
        assert_int_equal(ledger_cancel(l, c1, T0 + 4), 0);
        assert_int_equal(ledger_mark_running(l, f2, T0), 0);
        assert_int_equal(ledger_mark_finished(l, f2, &fail, T0 + 5, 0), 0);
        assert_int_equal(ledger_mark_running(l, f3, T0), 0);
        assert_int_equal(ledger_mark_finished(l, f3, &fail, T0 + 6, 0), 0);
        assert_int_equal(ledger_retry(l, f2, T0 + 7), 0);
        assert_int_equal(ledger_mark_running(l, f2, T0 + 7), 0);
        assert_int_equal(ledger_mark_finished(l, f2, &ok, T0 + 8, 0), 0);

        /* Finished now, oldest first: s2, f1, s1, c1, f3, f2. No bound: nothing goes. */
        assert_int_equal(ledger_trim(l, on_dropped, &d), 0);
        ledger_set_max_finished(l, 6);
        assert_int_equal(ledger_trim(l, on_dropped, &d), 0);

        ledger_set_max_finished(l, 3);
        assert_int_equal(ledger_trim(l, on_dropped, &d), 3);
        assert_int_equal(d.n, 3);
        assert_int_equal(d.ids[0], 7); /* s2 */
        assert_int_equal(d.ids[1], 4); /* s1 */
        assert_int_equal(d.ids[2], 5); /* c1 */
        assert_null(ledger_get(l, 7));
        assert_ptr_equal(ledger_get(l, 6), f2); /* succeeded last: the newest */
        assert_ptr_equal(ledger_get(l, 3), f1);
        assert_ptr_equal(ledger_get(l, 8), f3);

        /* Only f2 is droppable before the failed ones. */
        ledger_set_max_finished(l, 1);
        assert_int_equal(ledger_trim(l, on_dropped, &d), 2);
        assert_int_equal(d.ids[3], 6); /* f2 */
        assert_int_equal(d.ids[4], 3); /* f1, the older failed */
        assert_ptr_equal(ledger_get(l, 8), f3);
        assert_ptr_equal(ledger_get(l, 1), q1);
        assert_ptr_equal(ledger_get(l, 2), r1);

        ledger_stats(l, &st);
        assert_int_equal(st.queued, 1);
        assert_int_equal(st.running, 1);
        assert_int_equal(st.succeeded, 0);
        assert_int_equal(st.cancelled, 0);
        assert_int_equal(st.failed, 1);

        /* Queued and running records alone never go, however many. */
        for (int i = 0; i < 20; i++)
                (void) submit_task(l, "c", 0);
        assert_int_equal(ledger_trim(l, on_dropped, &d), 0);
        ledger_stats(l, &st);
        assert_int_equal(st.queued, 21);
}

/* Adopted final records (a store or snapshot loading) count too, in the order adopted; a forgotten
 * record leaves its list. */
static void test_trim_adopted_and_forgotten(void **state) {
        Ledger *l = *state;
        DropLog d = {};

        for (uint64_t id = 1; id <= 6; id++) {
                TaskRecord *t = calloc(1, sizeof(*t));

                assert_non_null(t);
                t->id = id;
                t->task = strdup("a");
                t->submitter = strdup("uid:33");
                t->state = id % 3 == 0 ? TASK_FAILED : id == 5 ? TASK_QUEUED : TASK_SUCCEEDED;
                assert_int_equal(ledger_adopt(l, t), 0);
        }
        /* finished: 1 ok, 2 ok, 3 failed, 4 ok, 6 failed; 5 queued */
        assert_int_equal(ledger_forget(l, ledger_get(l, 2)), 0);
        ledger_set_max_finished(l, 2);
        assert_int_equal(ledger_trim(l, on_dropped, &d), 2);
        assert_int_equal(d.ids[0], 1);
        assert_int_equal(d.ids[1], 4);
        assert_non_null(ledger_get(l, 3));
        assert_non_null(ledger_get(l, 5));
        assert_non_null(ledger_get(l, 6));
}

/* Many records through a small bound: memory held by the ledger does not grow with the records seen. */
static void test_trim_keeps_memory_flat(void **state) {
        Ledger *l = *state;
        RunResult ok = result_of("success");
        struct mallinfo2 before, after;

        ledger_set_max_finished(l, 1000);
        for (int round = 0; round < 2; round++) {
                for (int i = 0; i < 50000; i++) {
                        TaskRecord *t = submit_task(l, "a", 0);

                        assert_int_equal(ledger_mark_running(l, t, T0), 0);
                        assert_int_equal(ledger_mark_finished(l, t, &ok, T0 + 1, 0), 0);
                        if (i % 100 == 0)
                                (void) ledger_trim(l, NULL, NULL);
                }
                (void) ledger_trim(l, NULL, NULL);
                if (round == 0)
                        before = mallinfo2();
        }
        after = mallinfo2();
        LedgerStats st;
        ledger_stats(l, &st);
        assert_int_equal(st.succeeded, 1000);
        /* 50,000 more records kept would be some 10 MB; allow 1 MB of noise. */
        assert_true(after.uordblks < before.uordblks + 1024 * 1024);
}

static void test_purge(void **state) {
        Ledger *l = *state;
        RunResult ok = result_of("success"), fail = result_of("exit-code");
        WatchLog w = {.ledger = l};
        TaskRecord *out[8];

        TaskRecord *s1 = submit_task(l, "a", 0); /* succeeded at T0+10 */
        TaskRecord *s2 = submit_task(l, "a", 0); /* succeeded at T0+20 */
        TaskRecord *c1 = submit_task(l, "a", 0); /* cancelled at T0+9 */
        TaskRecord *f1 = submit_task(l, "a", 0); /* failed at T0+1 */
        TaskRecord *q1 = submit_task(l, "a", 0); /* queued */
        TaskRecord *r1 = submit_task(l, "b", 0); /* running */

        assert_int_equal(ledger_mark_running(l, s1, T0), 0);
        assert_int_equal(ledger_mark_finished(l, s1, &ok, T0 + 10, 0), 0);
        assert_int_equal(ledger_mark_running(l, s2, T0), 0);
        assert_int_equal(ledger_mark_finished(l, s2, &ok, T0 + 20, 0), 0);
        assert_int_equal(ledger_cancel(l, c1, T0 + 9), 0);
        assert_int_equal(ledger_mark_running(l, f1, T0), 0);
        assert_int_equal(ledger_mark_finished(l, f1, &fail, T0 + 1, 0), 0);
        assert_int_equal(ledger_mark_running(l, r1, T0), 0);
        assert_int_equal(ledger_watch(l, s1, on_watch, &w, NULL), 0);

        /* finished_at == before is kept; strictly before is purged. */
        assert_int_equal(ledger_purge(l, T0 + 9), 0);
        assert_int_equal(ledger_purge(l, T0 + 10), 1); /* c1 */
        assert_null(ledger_get(l, 3));
        assert_int_equal(w.calls, 0);
        assert_int_equal(ledger_purge(l, T0 + 11), 1); /* s1 */
        assert_int_equal(w.calls, 1);
        assert_true(w.forgotten);
        assert_int_equal(ledger_purge(l, UINT64_MAX), 1); /* s2; failed, queued, running stay */

        assert_int_equal(ledger_list(l, -1, 8, out), 3);
        assert_ptr_equal(out[0], f1);
        assert_ptr_equal(out[1], q1);
        assert_ptr_equal(out[2], r1);
        LedgerStats st;
        ledger_stats(l, &st);
        assert_int_equal(st.succeeded, 0);
        assert_int_equal(st.cancelled, 0);
        assert_int_equal(st.failed, 1);
        assert_int_equal(st.queued, 1);
        assert_int_equal(st.running, 1);
}

static void test_purge_callback_forgets_others(void **state) {
        Ledger *l = *state;
        TaskRecord *a = submit_task(l, "a", 0);
        TaskRecord *b = submit_task(l, "a", 0);
        TaskRecord *c = submit_task(l, "a", 0);
        WatchLog w1 = {.ledger = l, .forget = b}, w2 = {.ledger = l, .forget = a, .forget_result = -ENOENT};

        for (uint64_t id = 1; id <= 100; id++) /* enough removals to tempt a compaction mid-walk */
                assert_int_equal(ledger_cancel(l, id <= 3 ? ledger_get(l, id) : submit_task(l, "a", 0), T0),
                                 0);
        assert_int_equal(ledger_watch(l, a, on_watch, &w1, NULL), 0);
        assert_int_equal(ledger_watch(l, a, on_watch, &w2, NULL), 0);
        /* a's callbacks forget b (later in the walk) and try a itself (being purged: refused). */
        assert_int_equal(ledger_purge(l, T0 + 1), 99);
        assert_int_equal(w1.calls, 1);
        assert_int_equal(w2.calls, 1);
        assert_true(w1.forgotten);
        assert_null(ledger_get(l, 1));
        assert_null(ledger_get(l, 2));
        assert_null(ledger_get(l, 100));
        (void) c;
        LedgerStats st;
        ledger_stats(l, &st);
        assert_int_equal(st.cancelled, 0);
}

static void test_launch_marks(void **state) {
        Ledger *l = *state;
        TaskRecord *t = submit_task(l, "a", 0);
        RunResult failed = result_of("exit-code");
        char *unit;

        /* Only a running record has a launch. */
        assert_int_equal(ledger_mark_launching(l, t), -EINVAL);
        assert_int_equal(ledger_mark_started(l, t, "asynctask-1.service"), -EINVAL);
        assert_int_equal(ledger_mark_last_attempt(l, t), -EINVAL);
        assert_false(t->launch_pending);
        assert_null(t->unit);

        t->max_attempts = 3;
        assert_int_equal(ledger_mark_running(l, t, T0), 0);
        assert_int_equal(ledger_mark_launching(l, t), 0);
        assert_true(t->launch_pending);
        /* "started" without a unit confirms the run and names nothing. */
        assert_int_equal(ledger_mark_started(l, t, NULL), 0);
        assert_false(t->launch_pending);
        assert_null(t->unit);
        assert_int_equal(ledger_mark_started(l, t, "asynctask-1.service"), 0);
        unit = t->unit;
        assert_string_equal(unit, "asynctask-1.service");
        /* The same unit again keeps the string; NULL keeps the unit. */
        assert_int_equal(ledger_mark_started(l, t, "asynctask-1.service"), 0);
        assert_ptr_equal(t->unit, unit);
        assert_int_equal(ledger_mark_started(l, t, NULL), 0);
        assert_ptr_equal(t->unit, unit);
        assert_int_equal(ledger_mark_started(l, t, "pid:42"), 0);
        assert_string_equal(t->unit, "pid:42");

        /* A last attempt that fails is final, attempts left or not. */
        assert_int_equal(ledger_mark_last_attempt(l, t), 0);
        assert_int_equal(t->max_attempts, 1);
        assert_int_equal(ledger_mark_finished(l, t, &failed, T0 + 5, 30), 0);
        assert_int_equal(t->state, TASK_FAILED);
        assert_int_equal(ledger_mark_started(l, t, NULL), -EINVAL);
}

static void test_finished_clears_launch_pending(void **state) {
        Ledger *l = *state;
        TaskRecord *t = submit_task(l, "a", 0);
        RunResult lost = result_of("lost");

        t->max_attempts = 2;
        assert_int_equal(ledger_mark_running(l, t, T0), 0);
        assert_int_equal(ledger_mark_launching(l, t), 0);
        /* The run ends before any "started": queued again for its second attempt, nothing pending. */
        assert_int_equal(ledger_mark_finished(l, t, &lost, T0 + 5, 30), 0);
        assert_int_equal(t->state, TASK_QUEUED);
        assert_false(t->launch_pending);
        assert_null(t->unit);
}

static TaskRecord *record_new(uint64_t id, TaskState state, const char *task, uint64_t run_after) {
        TaskRecord *t = calloc(1, sizeof(*t));

        assert_non_null(t);
        t->id = id;
        t->state = state;
        t->task = strdup(task);
        t->submitter = strdup("uid:33");
        t->args = calloc(2, sizeof(char *));
        t->args[0] = strdup("arg");
        t->n_args = 1;
        t->max_attempts = 1;
        t->run_after = run_after;
        return t;
}

static void test_adopt(void **state) {
        Ledger *l = *state;
        TaskRecord *out[8];
        LedgerStats st;

        TaskRecord *q_due = record_new(10, TASK_QUEUED, "a", T0);
        TaskRecord *q_later = record_new(12, TASK_QUEUED, "a", T0 + 100);
        TaskRecord *run = record_new(11, TASK_RUNNING, "a", T0);
        TaskRecord *done = record_new(5, TASK_SUCCEEDED, "a", T0);
        TaskRecord *keyed = record_new(3, TASK_FAILED, "a", T0);
        keyed->key = strdup("k");
        keyed->unit = strdup("asynctask-3.service");

        assert_int_equal(ledger_adopt(l, q_due), 0);
        assert_int_equal(ledger_adopt(l, q_later), 0);
        assert_int_equal(ledger_adopt(l, run), 0);
        assert_int_equal(ledger_adopt(l, done), 0); /* out of id order */
        assert_int_equal(ledger_adopt(l, keyed), 0);

        assert_ptr_equal(ledger_get(l, 11), run);
        assert_int_equal(run->state, TASK_RUNNING);
        ledger_stats(l, &st);
        assert_int_equal(st.queued, 2);
        assert_int_equal(st.running, 1);
        assert_int_equal(st.succeeded, 1);
        assert_int_equal(st.failed, 1);
        assert_int_equal(st.submitted_total, 0);

        /* Listed by id even though adopted out of order. */
        assert_int_equal(ledger_list(l, -1, 8, out), 5);
        static const uint64_t ids[] = {3, 5, 10, 11, 12};
        for (size_t i = 0; i < ELEMENTSOF(ids); i++)
                assert_int_equal(out[i]->id, ids[i]);

        /* Queued ones are in the queue; the running one is not. */
        assert_true(ledger_next_wakeup(l) <= T0);
        assert_int_equal(run_next(l, T0), 10);
        assert_int_equal(run_next(l, T0), 0);
        assert_int_equal(ledger_next_wakeup(l), T0 + 100);
        assert_int_equal(run_next(l, T0 + 100), 12);

        /* Duplicates and nonsense are refused; the caller keeps the record. */
        TaskRecord *dup_id = record_new(11, TASK_QUEUED, "a", T0);
        assert_int_equal(ledger_adopt(l, dup_id), -EEXIST);
        task_record_free(dup_id);
        TaskRecord *dup_key = record_new(40, TASK_QUEUED, "a", T0);
        dup_key->key = strdup("k");
        assert_int_equal(ledger_adopt(l, dup_key), -EEXIST);
        task_record_free(dup_key);
        TaskRecord *zero = record_new(0, TASK_QUEUED, "a", T0);
        assert_int_equal(ledger_adopt(l, zero), -EINVAL);
        task_record_free(zero);
        TaskRecord *bad_state = record_new(41, _TASK_STATE_MAX, "a", T0);
        assert_int_equal(ledger_adopt(l, bad_state), -EINVAL);
        task_record_free(bad_state);
        TaskRecord *both = record_new(42, TASK_QUEUED, "a", T0);
        both->cmd = strdup("echo");
        assert_int_equal(ledger_adopt(l, both), -EINVAL);
        task_record_free(both);
        assert_int_equal(ledger_adopt(l, NULL), -EINVAL);

        /* Args missing in the store: an empty NULL-terminated array. */
        TaskRecord *no_args = record_new(43, TASK_FAILED, "a", T0);
        free(no_args->args[0]);
        free(no_args->args);
        no_args->args = NULL;
        no_args->n_args = 0;
        assert_int_equal(ledger_adopt(l, no_args), 0);
        assert_non_null(no_args->args);
        assert_null(no_args->args[0]);

        /* Next id moved past every adopted one; an adopted key is matched by submit. */
        TaskSubmission sub = {.task = "a", .submitter = "uid:33", .key = "k"};
        TaskRecord *t = NULL;
        bool existing = false;
        assert_int_equal(ledger_submit(l, &sub, T0, &t, &existing), 0);
        assert_true(existing);
        assert_ptr_equal(t, keyed);
        assert_int_equal(submit_task(l, "a", 0)->id, 44);

        /* Adopted records can be forgotten and retried like any other. */
        assert_int_equal(ledger_retry(l, keyed, T0), 0);
        assert_int_equal(ledger_forget(l, keyed), 0);
        assert_int_equal(ledger_forget(l, done), 0);
        RunResult ok = result_of("success");
        assert_int_equal(ledger_mark_finished(l, run, &ok, T0, 0), 0);
        assert_int_equal(run->state, TASK_SUCCEEDED);
}

static void test_set_next_id(void **state) {
        Ledger *l = *state;

        ledger_set_next_id(l, 1000);
        assert_int_equal(submit_task(l, "a", 0)->id, 1000);
        ledger_set_next_id(l, 5); /* never backwards */
        assert_int_equal(submit_task(l, "a", 0)->id, 1001);
}

static void ids_low(void *userdata) {
        (*(unsigned *) userdata)++;
}

/* Blocks of ids from a shared counter: ids come from the block in order, a record of another node's
 * block leaves the next id alone, the spare block follows the used-up one, and with none left a
 * submission is refused (-EAGAIN) rather than given an id another node may hold. */
static void test_id_blocks(void **state) {
        Ledger *l = *state;
        unsigned low = 0;
        TaskRecord *t;

        ledger_set_ids_low(l, ids_low, &low);
        ledger_add_id_block(l, 20001, 20001 + LEDGER_ID_BLOCK);
        assert_int_equal(submit_task(l, "a", 0)->id, 20001);
        t = calloc(1, sizeof(*t));
        assert_non_null(t);
        t->id = 90001; /* claimed from another node's block */
        t->task = strdup("a");
        t->submitter = strdup("uid:33");
        t->state = TASK_QUEUED;
        assert_int_equal(ledger_adopt(l, t), 0);
        assert_int_equal(submit_task(l, "a", 0)->id, 20002);
        assert_false(ledger_wants_id_block(l));
        for (unsigned i = 2; i < LEDGER_ID_BLOCK / 2 + 1; i++)
                (void) submit_task(l, "a", 0);
        assert_true(ledger_wants_id_block(l));
        assert_int_equal(low, 1);
        ledger_add_id_block(l, 50001, 50001 + LEDGER_ID_BLOCK); /* kept for later */
        assert_false(ledger_wants_id_block(l));
        for (unsigned i = LEDGER_ID_BLOCK / 2 + 1; i < LEDGER_ID_BLOCK; i++)
                assert_int_equal(submit_task(l, "a", 0)->id, 20001 + i);
        assert_int_equal(submit_task(l, "a", 0)->id, 50001);
        for (unsigned i = 1; i < LEDGER_ID_BLOCK; i++)
                (void) submit_task(l, "a", 0);
        TaskSubmission sub = {.task = "a", .submitter = "uid:33", .max_attempts = 1};
        assert_int_equal(ledger_submit(l, &sub, T0, &t, NULL), -EAGAIN);
        ledger_set_ids_low(l, NULL, NULL);
}

/* ---- randomized cross-check against a brute-force model ---- */

#define MODEL_OPS     10000
#define MODEL_GROUPS  7
#define MODEL_MAX_IDS (MODEL_OPS + 2)

typedef struct ModelTask {
        bool alive;
        TaskState state;
        int priority;
        int group;
        uint64_t run_after;
        uint64_t finished_at;
        unsigned attempts, max_attempts;
        int key, submitter; /* key -1 = none */
        bool in_delay;      /* waiting in the ledger's delay heap (not yet moved to its group) */
} ModelTask;

typedef struct Model {
        ModelTask t[MODEL_MAX_IDS];
        uint64_t next_id;
        uint64_t now;
        uint64_t submitted;
        unsigned refused_mask;
        Ledger *l;
} Model;

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void) {
        /* xorshift64*: the same sequence on every libc */
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return rng_state * 0x2545f4914f6cdd1dULL;
}

static unsigned rnd(unsigned n) {
        return (unsigned) (rng() % n);
}

static const char *group_task(int g) {
        static const char *const names[MODEL_GROUPS] = {"g0", "g1", "g2", "g3", "g4", NULL, NULL};
        return names[g];
}

static const char *group_cmd(int g) {
        static const char *const cmds[MODEL_GROUPS] = {NULL, NULL, NULL, NULL, NULL, "g0", "echo hi"};
        return cmds[g];
}

static int record_group(const TaskRecord *t) {
        for (int g = 0; g < MODEL_GROUPS; g++)
                if (streq_ptr(t->task, group_task(g)) && streq_ptr(t->cmd, group_cmd(g)))
                        return g;
        fail_msg("record %llu has no model group", (unsigned long long) t->id);
        return -1;
}

/* The model's view of the best runnable task of group g at now (no promotion side effects). */
static uint64_t model_best(const Model *m, int group, uint64_t now) {
        uint64_t best = 0;

        for (uint64_t id = 1; id < m->next_id; id++) {
                const ModelTask *t = &m->t[id];

                if (!t->alive || t->state != TASK_QUEUED || t->run_after > now)
                        continue;
                if (group >= 0 && t->group != group)
                        continue;
                if (group < 0 && (m->refused_mask & (1u << t->group)))
                        continue;
                if (!best || t->priority > m->t[best].priority)
                        best = id;
        }
        return best;
}

static bool model_can_start(const TaskRecord *t, void *ud) {
        Model *m = ud;
        int g = record_group(t);

        /* The ledger asks only about each group's best candidate. */
        assert_int_equal(t->id, model_best(m, g, m->now));
        return !(m->refused_mask & (1u << g));
}

static void model_check(Model *m) {
        uint64_t count[_TASK_STATE_MAX] = {}, wake = UINT64_MAX;
        LedgerStats st;

        for (uint64_t id = 1; id < m->next_id; id++) {
                const ModelTask *mt = &m->t[id];
                TaskRecord *t = ledger_get(m->l, id);

                if (!mt->alive) {
                        assert_null(t);
                        continue;
                }
                assert_non_null(t);
                assert_int_equal(t->state, mt->state);
                assert_int_equal(t->attempts, mt->attempts);
                assert_int_equal(t->priority, mt->priority);
                assert_int_equal(t->finished_at, mt->finished_at);
                if (mt->state == TASK_QUEUED)
                        assert_int_equal(t->run_after, mt->run_after);
                if (mt->state == TASK_QUEUED && mt->in_delay && mt->run_after < wake)
                        wake = mt->run_after;
                count[mt->state]++;
        }
        ledger_stats(m->l, &st);
        assert_int_equal(st.queued, count[TASK_QUEUED]);
        assert_int_equal(st.running, count[TASK_RUNNING]);
        assert_int_equal(st.succeeded, count[TASK_SUCCEEDED]);
        assert_int_equal(st.failed, count[TASK_FAILED]);
        assert_int_equal(st.cancelled, count[TASK_CANCELLED]);
        assert_int_equal(st.submitted_total, m->submitted);
        assert_int_equal(ledger_next_wakeup(m->l), wake);
}

/* A random live id in a state (or any state for -1), or 0. */
static uint64_t model_pick(const Model *m, int state) {
        uint64_t n = m->next_id - 1, start;

        if (n == 0)
                return 0;
        start = 1 + rng() % n;
        for (uint64_t k = 0; k < n; k++) {
                uint64_t id = 1 + (start - 1 + k) % n;
                const ModelTask *t = &m->t[id];

                if (t->alive && (state < 0 || (int) t->state == state))
                        return id;
        }
        return 0;
}

static void model_submit(Model *m) {
        static const char *const keys[] = {"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"};
        static const char *const submitters[] = {"uid:0", "uid:33", "tcp:127.0.0.1"};
        int g = (int) rnd(MODEL_GROUPS), key = rnd(3) == 0 ? (int) rnd(ELEMENTSOF(keys)) : -1;
        int submitter = (int) rnd(ELEMENTSOF(submitters));
        uint64_t delay = rnd(2) ? 0 : rnd(2 * USEC_PER_SEC);
        TaskSubmission sub = {
                .task = group_task(g),
                .cmd = group_cmd(g),
                .key = key >= 0 ? keys[key] : NULL,
                .submitter = submitters[submitter],
                .priority = (int) rnd(5) - 2,
                .max_attempts = 1 + rnd(3),
                .run_after = delay ? m->now + delay : 0,
        };
        uint64_t existing_id = 0;
        TaskRecord *t = NULL;
        bool existing = false;

        if (key >= 0)
                for (uint64_t id = 1; id < m->next_id; id++)
                        if (m->t[id].alive && m->t[id].key == key && m->t[id].submitter == submitter)
                                existing_id = id;

        assert_int_equal(ledger_submit(m->l, &sub, m->now, &t, &existing), 0);
        if (existing_id) {
                assert_true(existing);
                assert_int_equal(t->id, existing_id);
                return;
        }
        assert_false(existing);
        assert_int_equal(t->id, m->next_id);
        m->t[m->next_id] = (ModelTask){
                .alive = true,
                .state = TASK_QUEUED,
                .priority = sub.priority,
                .group = g,
                .run_after = delay ? m->now + delay : m->now,
                .max_attempts = sub.max_attempts,
                .key = key,
                .submitter = submitter,
                .in_delay = delay > 0,
        };
        m->next_id++;
        m->submitted++;
}

static void model_next(Model *m) {
        uint64_t expect;
        TaskRecord *t;

        m->refused_mask = rnd(4) == 0 ? rnd(1u << MODEL_GROUPS) : 0;
        expect = model_best(m, -1, m->now);
        t = ledger_next_runnable(m->l, m->now, model_can_start, m);
        for (uint64_t id = 1; id < m->next_id; id++)
                if (m->t[id].alive && m->t[id].state == TASK_QUEUED && m->t[id].run_after <= m->now)
                        m->t[id].in_delay = false;
        if (!expect) {
                assert_null(t);
                return;
        }
        assert_non_null(t);
        assert_int_equal(t->id, expect);
        if (rnd(5) == 0)
                return; /* the dispatcher may not take it (launcher busy) */
        assert_int_equal(ledger_mark_running(m->l, t, m->now), 0);
        m->t[expect].state = TASK_RUNNING;
        m->t[expect].attempts++;
        m->t[expect].in_delay = false;
}

static void model_finish(Model *m) {
        static const char *const results[] = {"success", "exit-code", "cancelled", "timeout", "signal"};
        uint64_t id = model_pick(m, TASK_RUNNING), backoff = rnd(3);
        const char *what = results[rnd(ELEMENTSOF(results))];
        RunResult r = result_of(what);
        ModelTask *mt;

        if (!id)
                return;
        mt = &m->t[id];
        assert_int_equal(ledger_mark_finished(m->l, ledger_get(m->l, id), &r, m->now, backoff), 0);
        if (streq(what, "success"))
                mt->state = TASK_SUCCEEDED;
        else if (streq(what, "cancelled"))
                mt->state = TASK_CANCELLED;
        else if (mt->attempts < mt->max_attempts) {
                mt->state = TASK_QUEUED;
                mt->run_after = m->now + backoff * USEC_PER_SEC;
                mt->in_delay = backoff > 0;
                return;
        } else
                mt->state = TASK_FAILED;
        mt->finished_at = m->now;
}

static void model_cancel(Model *m) {
        uint64_t id = model_pick(m, -1);
        ModelTask *mt;
        int r;

        if (!id)
                return;
        mt = &m->t[id];
        r = ledger_cancel(m->l, ledger_get(m->l, id), m->now);
        if (mt->state == TASK_RUNNING)
                assert_int_equal(r, -EBUSY);
        else if (task_state_is_final(mt->state))
                assert_int_equal(r, -EALREADY);
        else {
                assert_int_equal(r, 0);
                mt->state = TASK_CANCELLED;
                mt->finished_at = m->now;
                mt->in_delay = false;
        }
}

static void model_retry(Model *m) {
        uint64_t id = model_pick(m, rnd(2) ? TASK_FAILED : -1);
        ModelTask *mt;
        int r;

        if (!id)
                return;
        mt = &m->t[id];
        r = ledger_retry(m->l, ledger_get(m->l, id), m->now);
        if (mt->state != TASK_FAILED && mt->state != TASK_CANCELLED) {
                assert_int_equal(r, -EINVAL);
                return;
        }
        assert_int_equal(r, 0);
        mt->state = TASK_QUEUED;
        mt->attempts = 0;
        mt->run_after = m->now;
        mt->finished_at = 0;
        mt->in_delay = false;
}

static void model_forget(Model *m) {
        uint64_t id = model_pick(m, -1);
        int r;

        if (!id)
                return;
        r = ledger_forget(m->l, ledger_get(m->l, id));
        if (m->t[id].state == TASK_RUNNING) {
                assert_int_equal(r, -EBUSY);
                return;
        }
        assert_int_equal(r, 0);
        m->t[id].alive = false;
}

static void model_purge(Model *m) {
        uint64_t before = m->now - rnd(4 * USEC_PER_SEC);
        size_t expect = 0;

        for (uint64_t id = 1; id < m->next_id; id++) {
                ModelTask *t = &m->t[id];
                if (t->alive && (t->state == TASK_SUCCEEDED || t->state == TASK_CANCELLED) &&
                    t->finished_at < before) {
                        t->alive = false;
                        expect++;
                }
        }
        assert_int_equal(ledger_purge(m->l, before), expect);
}

static void model_list(Model *m) {
        static TaskRecord *out[MODEL_MAX_IDS];
        int state = (int) rnd(_TASK_STATE_MAX + 1) - 1;
        size_t limit = rnd(3) ? rnd(20) : MODEL_MAX_IDS, n, k = 0;

        n = ledger_list(m->l, state, limit, out);
        for (uint64_t id = 1; id < m->next_id && k < limit; id++) {
                const ModelTask *t = &m->t[id];
                if (!t->alive || (state >= 0 && (int) t->state != state))
                        continue;
                assert_true(k < n);
                assert_int_equal(out[k]->id, id);
                k++;
        }
        assert_int_equal(n, k);
}

static void test_random_against_model(void **state) {
        Model *m = calloc(1, sizeof(Model));

        assert_non_null(m);
        m->l = *state;
        m->next_id = 1;
        m->now = T0;
        rng_state = 0x9e3779b97f4a7c15ULL;

        for (unsigned op = 0; op < MODEL_OPS; op++) {
                unsigned dice = rnd(100);

                if (dice < 30)
                        model_submit(m);
                else if (dice < 40)
                        m->now += rnd(3) ? rnd(300 * USEC_PER_MSEC) : rnd(3 * USEC_PER_SEC);
                else if (dice < 62)
                        model_next(m);
                else if (dice < 77)
                        model_finish(m);
                else if (dice < 82)
                        model_cancel(m);
                else if (dice < 88)
                        model_retry(m);
                else if (dice < 94)
                        model_forget(m);
                else if (dice < 96)
                        model_purge(m);
                else
                        model_list(m);
                model_check(m);
        }
        free(m);
}

/* ---- long-running behaviour and memory ---- */

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_MALLINFO 0
#else
#define HAVE_MALLINFO 1
#endif

static size_t heap_in_use(void) {
#if HAVE_MALLINFO
        struct mallinfo2 mi = mallinfo2();
        return mi.uordblks + mi.hblkhd;
#else
        return 0;
#endif
}

static void test_many_distinct_commands_do_not_accumulate(void **state) {
        Ledger *l = *state;
        RunResult ok = result_of("success");
        char cmd[64];
        size_t before;

        /* Warm up the indexes so that their first growth is not counted. */
        for (int i = 0; i < 100; i++) {
                snprintf(cmd, sizeof(cmd), "warm %d", i);
                TaskRecord *t = submit_full(l, NULL, cmd, 0, 0, T0);
                assert_int_equal(ledger_mark_running(l, t, T0), 0);
                assert_int_equal(ledger_mark_finished(l, t, &ok, T0, 0), 0);
                assert_int_equal(ledger_forget(l, t), 0);
        }
        before = heap_in_use();
        for (int i = 0; i < 20000; i++) {
                snprintf(cmd, sizeof(cmd), "/usr/bin/job --n %d", i);
                TaskRecord *t = submit_full(l, NULL, cmd, 0, 0, T0);
                assert_ptr_equal(ledger_next_runnable(l, T0, NULL, NULL), t);
                assert_int_equal(ledger_mark_running(l, t, T0), 0);
                assert_int_equal(ledger_mark_finished(l, t, &ok, T0, 0), 0);
                assert_int_equal(ledger_forget(l, t), 0);
        }
        if (HAVE_MALLINFO)
                assert_true(heap_in_use() < before + 64 * 1024);
        assert_null(ledger_next_runnable(l, T0, NULL, NULL));
}

static void test_memory_100k_queued(void **state) {
        Ledger *l = NULL;
        char a0[] = "in.png", a1[] = "out.png";
        char *args[] = {a0, a1};
        TaskSubmission sub = {
                .task = "resize", .args = args, .n_args = 2, .submitter = "uid:33", .max_attempts = 3};
        size_t before, used;
        LedgerStats st;

        if (!HAVE_MALLINFO)
                skip();
        before = heap_in_use();
        assert_int_equal(ledger_new(&l), 0);
        for (int i = 0; i < 100000; i++) {
                sub.priority = i % 10;
                assert_int_equal(ledger_submit(l, &sub, T0, NULL, NULL), 0);
        }
        used = heap_in_use() - before;
        print_message("100000 queued tasks: %zu bytes (%zu per task)\n", used, used / 100000);
        assert_true(used < 64 * 1024 * 1024);
        ledger_stats(l, &st);
        assert_int_equal(st.queued, 100000);
        ledger_free(l);
}

/* ---- paused task names ---- */

/* With a durable store the quotas count rows: the store's totals at start, adopted records (counted
 * in them already) not again; a submission, a finish and a stdin dropped and read back as before. */
static void test_unfinished_counts_rows_with_a_store(void **state) {
        Ledger *l = *state;
        TaskSubmission sub = {.task = "mail",
                              .submitter = "uid:7",
                              .stdin_data = "abcd",
                              .stdin_len = 4,
                              .max_attempts = 1};
        RunResult ok = result_of("success");
        TaskRecord *adopted = calloc(1, sizeof(TaskRecord)), *t = NULL;
        uint64_t tasks, bytes;
        char *back = strdup("abcdef");

        assert_non_null(adopted);
        assert_non_null(back);
        ledger_count_rows(l);
        assert_int_equal(ledger_add_unfinished(l, "uid:7", 100, 1600), 0);
        *adopted = (TaskRecord){.id = 5,
                                .task = strdup("mail"),
                                .submitter = strdup("uid:7"),
                                .state = TASK_QUEUED,
                                .stdin_len = 16,
                                .max_attempts = 1};
        assert_int_equal(ledger_adopt(l, adopted), 0);
        ledger_submitter_unfinished(l, "uid:7", &tasks, &bytes);
        assert_int_equal(tasks, 100);
        assert_int_equal(bytes, 1600);

        ledger_set_next_id(l, 10);
        assert_int_equal(ledger_submit(l, &sub, T0, &t, NULL), 0);
        ledger_drop_stdin(l, t);
        assert_null(t->stdin_data);
        assert_true(ledger_stdin_in_store(t));
        ledger_submitter_unfinished(l, "uid:7", &tasks, &bytes);
        assert_int_equal(tasks, 101);
        assert_int_equal(bytes, 1604);
        /* The row's stdin turned out longer (changed behind us): counted as it is. */
        ledger_set_stdin(l, t, back, 6);
        assert_false(ledger_stdin_in_store(t));
        assert_memory_equal(t->stdin_data, "abcdef", 6);
        ledger_submitter_unfinished(l, "uid:7", NULL, &bytes);
        assert_int_equal(bytes, 1606);

        assert_int_equal(ledger_mark_running(l, adopted, T0), 0);
        assert_int_equal(ledger_mark_finished(l, adopted, &ok, T0, 0), 0);
        ledger_submitter_unfinished(l, "uid:7", &tasks, &bytes);
        assert_int_equal(tasks, 100);
        assert_int_equal(bytes, 1590);
}

/* A queued record unloaded (its row waits in the database) leaves the queue and the indexes but stays
 * counted for its submitter; adopted again, it is not counted twice. A watched or running record stays. */
static void test_unload_keeps_the_row_counted(void **state) {
        Ledger *l = *state;
        TaskSubmission sub = {.task = "mail", .submitter = "uid:7", .key = "k1", .max_attempts = 1};
        TaskRecord *t = NULL, *watched = NULL, *running = NULL, *back = calloc(1, sizeof(TaskRecord));
        WatchLog log = {.ledger = l};
        LedgerWatch *w = NULL;
        LedgerStats st;
        uint64_t tasks, id;

        assert_non_null(back);
        ledger_count_rows(l);
        assert_int_equal(ledger_submit(l, &sub, T0, &t, NULL), 0);
        id = t->id;
        watched = submit_task(l, "mail", 0);
        running = submit_task(l, "mail", 0);
        assert_int_equal(ledger_mark_running(l, running, T0), 0);
        assert_int_equal(ledger_watch(l, watched, on_watch, &log, &w), 0);

        assert_int_equal(ledger_unload(l, watched), -EBUSY);
        assert_int_equal(ledger_unload(l, running), -EBUSY);
        assert_int_equal(ledger_unload(l, t), 0);
        assert_null(ledger_get(l, id));
        assert_null(ledger_get_by_key(l, "uid:7", "k1"));
        assert_int_equal(log.calls, 0);
        ledger_stats(l, &st);
        assert_int_equal(st.queued, 1);
        assert_int_equal(run_next(l, T0), watched->id);
        ledger_submitter_unfinished(l, "uid:7", &tasks, NULL);
        assert_int_equal(tasks, 1);

        *back = (TaskRecord){.id = id,
                             .task = strdup("mail"),
                             .key = strdup("k1"),
                             .submitter = strdup("uid:7"),
                             .state = TASK_QUEUED,
                             .max_attempts = 1};
        assert_int_equal(ledger_adopt(l, back), 0);
        assert_ptr_equal(ledger_get_by_key(l, "uid:7", "k1"), back);
        ledger_submitter_unfinished(l, "uid:7", &tasks, NULL);
        assert_int_equal(tasks, 1);
        assert_int_equal(ledger_cancel(l, back, T0), 0);
        ledger_submitter_unfinished(l, "uid:7", &tasks, NULL);
        assert_int_equal(tasks, 0);
        ledger_watch_free(w);
}

static void test_pause_and_resume_names(void **state) {
        Ledger *l = *state;
        char name[32];

        assert_false(ledger_task_paused(l, "resize"));
        assert_int_equal(ledger_pause(l, "resize", "uid:0", T0), 1);
        assert_int_equal(ledger_pause(l, "resize", "uid:1000", T0 + 1), 0); /* first one stays */
        assert_int_equal(ledger_pause(l, "mail", "uid:0", T0), 1);
        assert_true(ledger_task_paused(l, "resize"));
        assert_false(ledger_task_paused(l, "resiz"));
        assert_false(ledger_task_paused(l, NULL)); /* a raw command is never paused */
        assert_int_equal(ledger_paused(l)->n, 2);
        assert_string_equal(ledger_paused(l)->items[0].task, "mail"); /* by name */
        assert_string_equal(ledger_paused(l)->items[1].by, "uid:0");
        assert_true(ledger_resume(l, "resize"));
        assert_false(ledger_resume(l, "resize"));
        assert_false(ledger_task_paused(l, "resize"));
        assert_true(ledger_task_paused(l, "mail"));

        for (int i = 1; i < PAUSED_TASKS_MAX; i++) {
                snprintf(name, sizeof(name), "task-%04d", i);
                assert_int_equal(ledger_pause(l, name, "uid:0", T0), 1);
        }
        assert_int_equal(ledger_pause(l, "one-too-many", "uid:0", T0), -E2BIG);
        assert_true(ledger_task_paused(l, "task-0500"));
}

typedef struct PausedAsk {
        Ledger *l;
        unsigned asked;
} PausedAsk;

static bool not_paused(const TaskRecord *t, void *ud) {
        PausedAsk *a = ud;

        a->asked++;
        return !ledger_task_paused(a->l, t->task);
}

/* What the dispatcher does with a paused name: asking about the best record of each name only, a
 * paused name with 100000 queued costs one question per pick, and the others run in order. */
static void test_a_paused_name_with_a_long_queue_costs_one_question(void **state) {
        Ledger *l = *state;
        PausedAsk ask = {.l = l};
        TaskSubmission sub = {.task = "bulk", .submitter = "uid:33", .max_attempts = 1, .priority = 5};
        uint64_t start, took;

        for (int i = 0; i < 100000; i++)
                assert_int_equal(ledger_submit(l, &sub, T0, NULL, NULL), 0);
        for (int i = 0; i < 1000; i++)
                submit_task(l, "other", 0);
        assert_int_equal(ledger_pause(l, "bulk", "uid:0", T0), 1);

        start = now_usec(CLOCK_MONOTONIC);
        for (int i = 0; i < 1000; i++) {
                TaskRecord *t = ledger_next_runnable(l, T0, not_paused, &ask);
                assert_non_null(t);
                assert_string_equal(t->task, "other");
                assert_int_equal(ledger_mark_running(l, t, T0), 0);
        }
        took = now_usec(CLOCK_MONOTONIC) - start;
        print_message("1000 picks past a paused name with 100000 queued: %llu us, %u questions\n",
                      (unsigned long long) took, ask.asked);
        assert_true(ask.asked <= 2 * 1000);
        assert_null(ledger_next_runnable(l, T0, not_paused, &ask));

        assert_true(ledger_resume(l, "bulk"));
        TaskRecord *t = ledger_next_runnable(l, T0, not_paused, &ask);
        assert_non_null(t);
        assert_string_equal(t->task, "bulk");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_submit_copies_fields, setup, teardown),
                cmocka_unit_test_setup_teardown(test_submit_invalid, setup, teardown),
                cmocka_unit_test_setup_teardown(test_order_priority_then_id_across_groups, setup, teardown),
                cmocka_unit_test_setup_teardown(test_task_and_command_of_same_name_are_distinct_groups,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_delay_boundary, setup, teardown),
                cmocka_unit_test_setup_teardown(test_delayed_order_among_equal_run_after, setup, teardown),
                cmocka_unit_test_setup_teardown(test_mark_running_a_delayed_task, setup, teardown),
                cmocka_unit_test_setup_teardown(test_can_start_refusal_lets_another_group_run, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_count_queued_by_name, setup, teardown),
                cmocka_unit_test_setup_teardown(test_pause_and_resume_names, setup, teardown),
                cmocka_unit_test_setup_teardown(test_a_paused_name_with_a_long_queue_costs_one_question,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_idempotent_keys, setup, teardown),
                cmocka_unit_test_setup_teardown(test_success_path, setup, teardown),
                cmocka_unit_test_setup_teardown(test_launch_marks, setup, teardown),
                cmocka_unit_test_setup_teardown(test_finished_clears_launch_pending, setup, teardown),
                cmocka_unit_test_setup_teardown(test_wrong_state_errors, setup, teardown),
                cmocka_unit_test_setup_teardown(test_cancel_queued, setup, teardown),
                cmocka_unit_test_setup_teardown(test_cancelled_result_of_a_run, setup, teardown),
                cmocka_unit_test_setup_teardown(test_retry_with_backoff_until_failed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_backoff_zero_and_huge, setup, teardown),
                cmocka_unit_test_setup_teardown(test_retry_cancelled, setup, teardown),
                cmocka_unit_test_setup_teardown(test_forget, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unload_keeps_the_row_counted, setup, teardown),
                cmocka_unit_test_setup_teardown(test_watch_fires_once_on_final, setup, teardown),
                cmocka_unit_test_setup_teardown(test_watch_on_cancel_and_freed_before_firing, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_watch_callback_frees_another, setup, teardown),
                cmocka_unit_test_setup_teardown(test_watch_callback_frees_itself_is_harmless, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_watch_fires_on_forget, setup, teardown),
                cmocka_unit_test_setup_teardown(test_progress_watches, setup, teardown),
                cmocka_unit_test_setup_teardown(test_watch_callback_forgets_the_task, setup, teardown),
                cmocka_unit_test(test_watch_fires_on_ledger_free),
                cmocka_unit_test_setup_teardown(test_list, setup, teardown),
                cmocka_unit_test_setup_teardown(test_list_many_with_removals, setup, teardown),
                cmocka_unit_test_setup_teardown(test_list_after, setup, teardown),
                cmocka_unit_test_setup_teardown(test_purge, setup, teardown),
                cmocka_unit_test_setup_teardown(test_trim_drops_oldest_finished_first, setup, teardown),
                cmocka_unit_test_setup_teardown(test_trim_adopted_and_forgotten, setup, teardown),
                cmocka_unit_test_setup_teardown(test_trim_keeps_memory_flat, setup, teardown),
                cmocka_unit_test_setup_teardown(test_purge_callback_forgets_others, setup, teardown),
                cmocka_unit_test_setup_teardown(test_adopt, setup, teardown),
                cmocka_unit_test_setup_teardown(test_set_next_id, setup, teardown),
                cmocka_unit_test_setup_teardown(test_id_blocks, setup, teardown),
                cmocka_unit_test_setup_teardown(test_random_against_model, setup, teardown),
                cmocka_unit_test_setup_teardown(test_many_distinct_commands_do_not_accumulate, setup,
                                                teardown),
                cmocka_unit_test(test_memory_100k_queued),
                cmocka_unit_test_setup_teardown(test_unfinished_counts_rows_with_a_store, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
