/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sys/stat.h>

#include "front/ledger.h"
#include "front/response.h"
#include "front/snapshot.h"
#include "shared/util.h"

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

/* Paused task names are kept with the records, and read back before them. */
static void test_paused_names_round_trip(void **state) {
        Ledger *l = NULL, *back = NULL;
        size_t skipped = 9;

        assert_int_equal(ledger_new(&l), 0);
        assert_int_equal(ledger_pause(l, "resize", "uid:0", 1700000000000001ULL), 1);
        assert_int_equal(ledger_pause(l, "mail", "uid:1000", 1700000000000002ULL), 1);
        assert_int_equal(snapshot_save(l, path), 0); /* records, that is */
        ledger_free(l);

        assert_int_equal(ledger_new(&back), 0);
        assert_int_equal(snapshot_load(path, back, &skipped), 0);
        assert_int_equal(skipped, 0);
        assert_int_equal(ledger_paused(back)->n, 2);
        assert_true(ledger_task_paused(back, "resize"));
        assert_true(ledger_task_paused(back, "mail"));
        assert_string_equal(ledger_paused(back)->items[0].by, "uid:1000");
        assert_int_equal(ledger_paused(back)->items[1].since, 1700000000000001ULL);
        ledger_free(back);
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

static char *read_all(const char *p) {
        FILE *f = fopen(p, "re");
        char *buf = NULL;
        size_t len = 0;

        assert_non_null(f);
        buf = calloc(1, 4096);
        assert_non_null(buf);
        len = fread(buf, 1, 4095, f);
        assert_true(len < 4095);
        fclose(f);
        return buf;
}

static char *render(const TaskRecord *t) {
        cJSON *o = response_ok();
        size_t len = 0;

        assert_non_null(o);
        assert_int_equal(response_add_task(o, t), 0);
        return response_finish(o, &len);
}

/* A record keeps its run's result compactly (TaskResult: no error text stored when there is none)
 * yet every output stays as it was with a full RunResult: the snapshot lines, byte for byte, the
 * error cut at 255 bytes, "error":null in responses when there is none. */
static void test_result_compact(void **state) {
        Ledger *a = NULL, *b = NULL;
        TaskRecord *t1, *t2, *t3, *t4, *got;
        RunResult ok = {.result = "success", .cpu_usec = 1500, .memory_peak = 4096};
        RunResult full = {.result = "exit-code", .exit_status = 255, .has_exit_status = 1};
        RunResult sig = {.result = "signal", .signal = 9, .error = "killed by signal 9 (\"KILL\")"};
        RunResult odd = {.result = "abcdefghijklmnopqrstuvwxyz-abcd"}; /* 31 bytes, a launcher's word */
        char want_error[256], *file, *line, *want;
        size_t skipped = 99;

        memset(full.error, 'x', sizeof(full.error)); /* not terminated: 255 bytes are kept */
        memset(want_error, 'x', 255);
        want_error[255] = 0;

        assert_int_equal(ledger_new(&a), 0);
        for (int i = 0; i < 4; i++)
                assert_int_equal(
                        ledger_submit(
                                a, &(TaskSubmission){.cmd = "true", .submitter = "uid:0", .max_attempts = 1},
                                1000000, &got, NULL),
                        0);
        t1 = ledger_get(a, got->id - 3);
        t2 = ledger_get(a, got->id - 2);
        t3 = ledger_get(a, got->id - 1);
        t4 = got;
        assert_int_equal(t1->last.result[0], 0);
        assert_null(t1->last.error);
        for (int i = 0; i < 4; i++)
                assert_int_equal(
                        ledger_mark_running(a, ledger_next_runnable(a, 2000000, NULL, NULL), 2000000), 0);
        assert_int_equal(ledger_mark_finished(a, t1, &ok, 3000000, 0), 0);
        assert_int_equal(ledger_mark_finished(a, t2, &full, 3000000, 0), 0);
        assert_int_equal(ledger_mark_finished(a, t3, &sig, 3000000, 0), 0);
        assert_int_equal(ledger_mark_finished(a, t4, &odd, 3000000, 0), 0);

        /* In the record: no error text stored when there is none; 255 bytes of a full one. */
        assert_int_equal(t1->state, TASK_SUCCEEDED);
        assert_null(t1->last.error);
        assert_string_equal(task_result_error(&t1->last), "");
        assert_int_equal(t2->state, TASK_FAILED);
        assert_string_equal(t2->last.error, want_error);
        assert_string_equal(t3->last.error, "killed by signal 9 (\"KILL\")");
        assert_int_equal(t4->state, TASK_FAILED); /* decided on the whole word */
        assert_string_equal(t4->last.result, "abcdefghijklmnopqrstuv");

        /* Responses: as with a RunResult (then the running attempt's progress, none here). */
        line = render(t1);
        assert_non_null(strstr(line,
                               "\"result\":\"success\",\"exit_status\":null,\"signal\":null,\"error\":null,"
                               "\"progress\":null}\n"));
        free(line);
        line = render(t3);
        assert_non_null(strstr(line,
                               "\"result\":\"signal\",\"exit_status\":null,\"signal\":9,"
                               "\"error\":\"killed by signal 9 (\\\"KILL\\\")\",\"progress\":null}\n"));
        free(line);

        /* The snapshot, byte for byte as the RunResult records wrote it ("error":"" when none). */
        assert_int_equal(snapshot_save(a, path), 4);
        file = read_all(path);
        assert_true(
                asprintf(&want,
                         "{\"asynctask_snapshot\":1}\n"
                         "{\"args\":[],\"id\":%llu,\"cmd\":\"true\",\"submitter\":\"uid:0\",\"priority\":0,"
                         "\"state\":\"succeeded\",\"attempts\":1,\"max_attempts\":1,\"created_at\":1000000,"
                         "\"started_at\":2000000,\"finished_at\":3000000,\"run_after\":1000000,"
                         "\"result\":\"success\",\"error\":\"\",\"signal\":0,\"cpu_usec\":1500,"
                         "\"memory_peak\":4096}\n"
                         "{\"args\":[],\"id\":%llu,\"cmd\":\"true\",\"submitter\":\"uid:0\",\"priority\":0,"
                         "\"state\":\"failed\",\"attempts\":1,\"max_attempts\":1,\"created_at\":1000000,"
                         "\"started_at\":2000000,\"finished_at\":3000000,\"run_after\":1000000,"
                         "\"result\":\"exit-code\",\"error\":\"%s\",\"signal\":0,\"cpu_usec\":0,"
                         "\"memory_peak\":0,\"exit_status\":255}\n"
                         "{\"args\":[],\"id\":%llu,\"cmd\":\"true\",\"submitter\":\"uid:0\",\"priority\":0,"
                         "\"state\":\"failed\",\"attempts\":1,\"max_attempts\":1,\"created_at\":1000000,"
                         "\"started_at\":2000000,\"finished_at\":3000000,\"run_after\":1000000,"
                         "\"result\":\"signal\",\"error\":\"killed by signal 9 (\\\"KILL\\\")\","
                         "\"signal\":9,\"cpu_usec\":0,\"memory_peak\":0}\n"
                         "{\"args\":[],\"id\":%llu,\"cmd\":\"true\",\"submitter\":\"uid:0\",\"priority\":0,"
                         "\"state\":\"failed\",\"attempts\":1,\"max_attempts\":1,\"created_at\":1000000,"
                         "\"started_at\":2000000,\"finished_at\":3000000,\"run_after\":1000000,"
                         "\"result\":\"abcdefghijklmnopqrstuv\",\"error\":\"\",\"signal\":0,\"cpu_usec\":0,"
                         "\"memory_peak\":0}\n",
                         (unsigned long long) t1->id, (unsigned long long) t2->id, want_error,
                         (unsigned long long) t3->id, (unsigned long long) t4->id) > 0);
        assert_string_equal(file, want);
        free(file);
        free(want);

        /* Loaded back: the same results, no error text where there was none. */
        assert_int_equal(ledger_new(&b), 0);
        assert_int_equal(snapshot_load(path, b, &skipped), 4);
        assert_int_equal(skipped, 0);
        got = ledger_get(b, t1->id);
        assert_string_equal(got->last.result, "success");
        assert_null(got->last.error);
        assert_int_equal(got->last.cpu_usec, 1500);
        assert_int_equal(got->last.memory_peak, 4096);
        assert_false(got->last.has_exit_status);
        line = render(got);
        assert_non_null(strstr(line,
                               "\"result\":\"success\",\"exit_status\":null,\"signal\":null,\"error\":null,"
                               "\"progress\":null}\n"));
        free(line);
        got = ledger_get(b, t2->id);
        assert_string_equal(got->last.error, want_error);
        assert_true(got->last.has_exit_status);
        assert_int_equal(got->last.exit_status, 255);
        got = ledger_get(b, t3->id);
        assert_string_equal(got->last.error, "killed by signal 9 (\"KILL\")");
        assert_int_equal(got->last.signal, 9);

        /* A run's result replaces the error of the previous one (and frees it). */
        assert_int_equal(ledger_retry(b, got, 4000000), 0);
        assert_string_equal(got->last.error, "killed by signal 9 (\"KILL\")"); /* stays until the run ends */
        assert_ptr_equal(ledger_next_runnable(b, 4000000, NULL, NULL), got);
        assert_int_equal(ledger_mark_running(b, got, 4000000), 0);
        assert_int_equal(ledger_mark_finished(b, got, &ok, 5000000, 0), 0);
        assert_null(got->last.error);
        assert_string_equal(got->last.result, "success");
        ledger_free(a);
        ledger_free(b);

        /* An error text longer than a RunResult holds (a file edited by hand) is cut at 255 bytes. */
        assert_true(asprintf(&want,
                             "{\"asynctask_snapshot\":1}\n"
                             "{\"id\":7,\"cmd\":\"true\",\"args\":[],\"submitter\":\"uid:0\",\"state\":"
                             "\"failed\","
                             "\"max_attempts\":1,\"created_at\":1,\"result\":\"exit-code\",\"error\":"
                             "\"%sTAIL\"}\n",
                             want_error) > 0);
        write_file(want);
        free(want);
        assert_int_equal(ledger_new(&b), 0);
        assert_int_equal(snapshot_load(path, b, &skipped), 1);
        got = ledger_get(b, 7);
        assert_non_null(got);
        assert_string_equal(got->last.error, want_error);
        assert_false(got->last.has_exit_status);
        ledger_free(b);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_paused_names_round_trip),
                cmocka_unit_test(test_missing_file_is_empty),
                cmocka_unit_test(test_foreign_file_is_left_alone),
                cmocka_unit_test(test_unreadable_lines_are_skipped),
                cmocka_unit_test(test_result_compact),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
