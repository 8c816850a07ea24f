/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sys/stat.h>

#include "ledger.h"
#include "snapshot.h"
#include "util.h"

static char dir[] = "/tmp/test-snapshot-XXXXXX";
static char path[256];

static int setup(void **state) {
        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/%s", dir, SNAPSHOT_FILE_NAME);
        return 0;
}

static int teardown(void **state) {
        (void) unlink(path);
        (void) rmdir(dir);
        return 0;
}

static void write_file(const char *content) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(content, f);
        fclose(f);
}

/* Every field survives a save and a load, including stdin with NUL bytes and a run's result. */
static void test_round_trip(void **state) {
        Ledger *a = NULL, *b = NULL;
        TaskRecord *t1, *t2, *t3, *got;
        bool existing;
        char *const args[] = {"a b", "$(x)", "", NULL};
        static const char stdin_bytes[] = "O:4:\"Lamb\":1:{s:7:\"\0*\0name\";N;}";
        RunResult failed = {
                .result = "exit-code", .exit_status = 3, .has_exit_status = 1, .error = "exit 3"};
        size_t skipped = 99;

        assert_int_equal(ledger_new(&a), 0);
        assert_int_equal(ledger_submit(a,
                                       &(TaskSubmission){.task = "resize",
                                                         .args = args,
                                                         .n_args = 3,
                                                         .stdin_data = stdin_bytes,
                                                         .stdin_len = sizeof(stdin_bytes) - 1,
                                                         .key = "img-42",
                                                         .submitter = "uid:33",
                                                         .priority = -7,
                                                         .max_attempts = 3,
                                                         .run_after = 5000000},
                                       1000000, &t1, &existing),
                         0);
        assert_int_equal(ledger_submit(a,
                                       &(TaskSubmission){.cmd = "echo \"hello world\"",
                                                         .submitter = "tcp:127.0.0.1",
                                                         .max_attempts = 1},
                                       2000000, &t2, &existing),
                         0);
        assert_int_equal(
                ledger_submit(a, &(TaskSubmission){.task = "x", .submitter = "uid:0", .max_attempts = 1},
                              3000000, &t3, &existing),
                0);
        assert_ptr_equal(ledger_next_runnable(a, 4000000, NULL, NULL), t2);
        assert_int_equal(ledger_mark_running(a, t2, 4000000), 0);
        assert_int_equal(ledger_mark_finished(a, t2, &failed, 4500000, 0), 0);
        assert_int_equal(ledger_mark_running(a, t3, 4600000), 0);

        assert_int_equal(snapshot_save(a, path), 3);
        assert_int_equal(ledger_new(&b), 0);
        assert_int_equal(snapshot_load(path, b, &skipped), 3);
        assert_int_equal(skipped, 0);
        assert_int_equal(access(path, F_OK), -1); /* loaded once, then removed */

        got = ledger_get(b, t1->id);
        assert_non_null(got);
        assert_string_equal(got->task, "resize");
        assert_null(got->cmd);
        assert_int_equal(got->n_args, 3);
        assert_string_equal(got->args[0], "a b");
        assert_string_equal(got->args[1], "$(x)");
        assert_string_equal(got->args[2], "");
        assert_int_equal(got->stdin_len, sizeof(stdin_bytes) - 1);
        assert_memory_equal(got->stdin_data, stdin_bytes, sizeof(stdin_bytes) - 1);
        assert_string_equal(got->key, "img-42");
        assert_string_equal(got->submitter, "uid:33");
        assert_int_equal(got->priority, -7);
        assert_int_equal(got->state, TASK_QUEUED);
        assert_int_equal(got->max_attempts, 3);
        assert_int_equal(got->created_at, 1000000);
        assert_int_equal(got->run_after, 5000000);

        got = ledger_get(b, t2->id);
        assert_string_equal(got->cmd, "echo \"hello world\"");
        assert_int_equal(got->state, TASK_FAILED);
        assert_int_equal(got->attempts, 1);
        assert_string_equal(got->last.result, "exit-code");
        assert_true(got->last.has_exit_status);
        assert_int_equal(got->last.exit_status, 3);
        assert_string_equal(got->last.error, "exit 3");
        assert_int_equal(got->finished_at, 4500000);

        got = ledger_get(b, t3->id);
        assert_int_equal(got->state, TASK_RUNNING);
        assert_int_equal(got->started_at, 4600000);

        /* The idempotency key still finds the task, and new ids continue after the loaded ones. */
        assert_int_equal(ledger_submit(b,
                                       &(TaskSubmission){.task = "resize",
                                                         .key = "img-42",
                                                         .submitter = "uid:33",
                                                         .max_attempts = 1},
                                       6000000, &got, &existing),
                         0);
        assert_true(existing);
        assert_int_equal(got->id, t1->id);
        assert_int_equal(
                ledger_submit(b, &(TaskSubmission){.task = "y", .submitter = "uid:0", .max_attempts = 1},
                              6000000, &got, &existing),
                0);
        assert_true(got->id > t3->id);

        ledger_free(a);
        ledger_free(b);
}

static void test_missing_file_is_empty(void **state) {
        Ledger *l = NULL;
        size_t skipped = 5;

        assert_int_equal(ledger_new(&l), 0);
        assert_int_equal(snapshot_load(path, l, &skipped), 0);
        assert_int_equal(skipped, 0);
        ledger_free(l);
}

static void test_foreign_file_is_left_alone(void **state) {
        Ledger *l = NULL;
        size_t skipped = 0;

        write_file("{\"asynctask_snapshot\":2}\n");
        assert_int_equal(ledger_new(&l), 0);
        assert_int_equal(snapshot_load(path, l, &skipped), -EBADMSG);
        assert_int_equal(access(path, F_OK), 0);
        ledger_free(l);
}

static void test_unreadable_lines_are_skipped(void **state) {
        Ledger *l = NULL;
        size_t skipped = 0;

        write_file("{\"asynctask_snapshot\":1}\n"
                   "not json\n"
                   "{\"id\":7,\"task\":\"t\",\"args\":[],\"submitter\":\"uid:0\",\"state\":\"bogus\"}\n"
                   "{\"id\":0,\"task\":\"t\",\"args\":[],\"submitter\":\"uid:0\",\"state\":\"queued\"}\n"
                   "{\"id\":8,\"task\":\"t\",\"args\":[1],\"submitter\":\"uid:0\",\"state\":\"queued\"}\n"
                   "{\"id\":9,\"task\":\"t\",\"args\":[],\"submitter\":\"uid:0\",\"state\":\"queued\","
                   "\"stdin_b64\":\"!!\"}\n"
                   "{\"id\":10,\"task\":\"t\",\"args\":[\"a\"],\"submitter\":\"uid:0\",\"state\":\"queued\","
                   "\"max_attempts\":1,\"created_at\":1,\"run_after\":1}\n");
        assert_int_equal(ledger_new(&l), 0);
        assert_int_equal(snapshot_load(path, l, &skipped), 1);
        assert_int_equal(skipped, 5);
        assert_non_null(ledger_get(l, 10));
        assert_null(ledger_get(l, 8));
        ledger_free(l);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_missing_file_is_empty),
                cmocka_unit_test(test_foreign_file_is_left_alone),
                cmocka_unit_test(test_unreadable_lines_are_skipped),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
