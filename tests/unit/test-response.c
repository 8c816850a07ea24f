/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "front/ledger.h"
#include "front/request.h"
#include "front/utf8.h"
#include "front/response.h"
#include "shared/util.h"

/* len is read through a pointer: it is written by the call that makes line, in the same argument list. */
static void assert_line(char *line, const size_t *lenp, const char *want) {
        size_t len = *lenp;

        assert_non_null(line);
        assert_int_equal(len, strlen(line));
        assert_true(len > 0 && line[len - 1] == '\n');
        /* exactly one line: no newline before the end */
        assert_null(memchr(line, '\n', len - 1));
        assert_string_equal(line, want);
        free(line);
}

static void test_response_ok(void **state) {
        size_t len = 0;
        cJSON *o = response_ok();

        assert_non_null(o);
        assert_line(response_finish(o, &len), &len, "{\"ok\":true}\n");

        o = response_ok();
        assert_non_null(cJSON_AddNumberToObject(o, "id", 17));
        assert_non_null(cJSON_AddStringToObject(o, "state", "queued"));
        assert_line(response_finish(o, &len), &len, "{\"ok\":true,\"id\":17,\"state\":\"queued\"}\n");

        /* Integers print exactly, where a cJSON number would lose digits past 15. */
        o = response_ok();
        assert_int_equal(response_add_integer(o, "a", 9007199254740993LL), 0);
        assert_int_equal(response_add_integer(o, "b", INT64_MIN), 0);
        assert_int_equal(response_add_integer(o, "c", 0), 0);
        assert_line(response_finish(o, &len), &len,
                    "{\"ok\":true,\"a\":9007199254740993,\"b\":-9223372036854775808,\"c\":0}\n");

        /* NULL in (e.g. an earlier allocation failed) gives NULL out. */
        assert_null(response_finish(NULL, &len));
}

static void test_response_no_raw_newlines(void **state) {
        size_t len = 0;
        cJSON *o = response_ok();

        assert_non_null(cJSON_AddStringToObject(o, "s", "a\nb\r\n\t\x01\""));
        assert_line(response_finish(o, &len), &len, "{\"ok\":true,\"s\":\"a\\nb\\r\\n\\t\\u0001\\\"\"}\n");
}

typedef struct ErrorCase {
        ErrorCode code;
        const char *message;
        const char *want;
} ErrorCase;

static const ErrorCase error_cases[] = {
        {ERR_BAD_FRAME, "invalid JSON at byte 3",
         "{\"ok\":false,\"code\":\"bad_frame\",\"error\":\"invalid JSON at byte 3\"}\n"},
        {ERR_FRAME_TOO_LARGE, "frame longer than 65536 bytes",
         "{\"ok\":false,\"code\":\"frame_too_large\",\"error\":\"frame longer than 65536 bytes\"}\n"},
        {ERR_BAD_REQUEST, "unknown key 'x'",
         "{\"ok\":false,\"code\":\"bad_request\",\"error\":\"unknown key 'x'\"}\n"},
        {ERR_UNKNOWN_TASK, "no task named 'resze'",
         "{\"ok\":false,\"code\":\"unknown_task\",\"error\":\"no task named 'resze'\"}\n"},
        {ERR_COMMAND_NOT_ALLOWED, "not allowed",
         "{\"ok\":false,\"code\":\"command_not_allowed\",\"error\":\"not allowed\"}\n"},
        {ERR_FORBIDDEN, "no", "{\"ok\":false,\"code\":\"forbidden\",\"error\":\"no\"}\n"},
        {ERR_NOT_FOUND, "no task 17", "{\"ok\":false,\"code\":\"not_found\",\"error\":\"no task 17\"}\n"},
        {ERR_UNAVAILABLE, "launcher down",
         "{\"ok\":false,\"code\":\"unavailable\",\"error\":\"launcher down\"}\n"},
        {ERR_INTERNAL, "out of memory",
         "{\"ok\":false,\"code\":\"internal\",\"error\":\"out of memory\"}\n"},
        /* quotes, backslashes, control characters are escaped */
        {ERR_BAD_REQUEST, "say \"hi\\\"\n",
         "{\"ok\":false,\"code\":\"bad_request\",\"error\":\"say \\\"hi\\\\\\\"\\n\"}\n"},
        /* an empty message falls back to the code; a code of "none" is never sent as a refusal */
        {ERR_NOT_FOUND, "", "{\"ok\":false,\"code\":\"not_found\",\"error\":\"not_found\"}\n"},
        {ERR_NONE, "odd", "{\"ok\":false,\"code\":\"internal\",\"error\":\"odd\"}\n"},
        /* invalid UTF-8 (e.g. a message cut mid-character) is replaced, keeping the line valid JSON */
        {ERR_BAD_REQUEST, "caf\xc3",
         "{\"ok\":false,\"code\":\"bad_request\",\"error\":\"caf\xef\xbf\xbd\"}\n"},
        {ERR_BAD_REQUEST,
         "\xff\xfe"
         "a",
         "{\"ok\":false,\"code\":\"bad_request\",\"error\":\"\xef\xbf\xbd\xef\xbf\xbd"
         "a\"}\n"},
};

static void test_response_error(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(error_cases); i++) {
                ErrorReply e = {.code = error_cases[i].code};
                size_t len = 0;

                snprintf(e.message, sizeof(e.message), "%s", error_cases[i].message);
                assert_line(response_error(&e, &len), &len, error_cases[i].want);
        }
}

/* A message that fills the whole buffer without a terminator still gives one bounded line. */
static void test_response_error_unterminated(void **state) {
        ErrorReply e = {.code = ERR_BAD_REQUEST};
        char want[512];
        size_t len = 0;

        memset(e.message, 'm', sizeof(e.message));
        snprintf(want, sizeof(want), "{\"ok\":false,\"code\":\"bad_request\",\"error\":\"%.*s\"}\n",
                 (int) sizeof(e.message) - 1, e.message);
        assert_line(response_error(&e, &len), &len, want);
}

static void test_response_task_full(void **state) {
        char *args[] = {(char *) "a.png", (char *) "b \"c\".png", NULL};
        TaskRecord t = {
                .id = 17,
                .task = (char *) "resize",
                .args = args,
                .n_args = 2,
                .stdin_data = (char *) "secret stdin",
                .stdin_len = 12,
                .key = (char *) "img-42",
                .submitter = (char *) "uid:33",
                .priority = -5,
                .state = TASK_FAILED,
                .attempts = 3,
                .max_attempts = 3,
                .unit = (char *) "asynctask-17.service",
                .created_at = 1795712400123456ULL,
                .started_at = 1795712401000999ULL,
                .finished_at = 1795712461999000ULL,
                .run_after = 1795712400000000ULL,
                .last = {.result = "exit-code",
                         .exit_status = 2,
                         .has_exit_status = 1,
                         .error = "exited with 2"},
                .progress = "40% resized 4 of 10",
        };
        cJSON *o = response_ok();
        size_t len = 0;

        assert_int_equal(response_add_task(o, &t), 0);
        assert_line(
                response_finish(o, &len), &len,
                "{\"ok\":true,\"id\":17,\"task\":\"resize\",\"cmd\":null,\"args\":[\"a.png\",\"b "
                "\\\"c\\\".png\"],"
                "\"state\":\"failed\",\"attempts\":3,\"max_attempts\":3,\"priority\":-5,\"key\":\"img-42\","
                "\"submitter\":\"uid:33\",\"unit\":\"asynctask-17.service\","
                "\"created_at\":\"2026-11-26T17:00:00.123Z\",\"started_at\":\"2026-11-26T17:00:01.000Z\","
                "\"finished_at\":\"2026-11-26T17:01:01.999Z\",\"run_after\":\"2026-11-26T17:00:00.000Z\","
                "\"result\":\"exit-code\",\"exit_status\":2,\"signal\":null,\"error\":\"exited with "
                "2\",\"progress\":\"40% resized 4 of 10\"}\n");
}

static void test_response_task_fresh(void **state) {
        TaskRecord t = {
                .id = 9007199254740991ULL,
                .cmd = (char *) "echo \"hello world\"",
                .submitter = (char *) "tcp:127.0.0.1",
                .state = TASK_QUEUED,
                .max_attempts = 1,
                .created_at = 1000000, /* 1970-01-01T00:00:01Z */
        };
        cJSON *o = response_ok();
        size_t len = 0;

        assert_int_equal(response_add_task(o, &t), 0);
        assert_line(
                response_finish(o, &len), &len,
                "{\"ok\":true,\"id\":9007199254740991,\"task\":null,\"cmd\":\"echo \\\"hello world\\\"\","
                "\"args\":[],\"state\":\"queued\",\"attempts\":0,\"max_attempts\":1,\"priority\":0,"
                "\"key\":null,\"submitter\":\"tcp:127.0.0.1\",\"unit\":null,"
                "\"created_at\":\"1970-01-01T00:00:01.000Z\",\"started_at\":null,\"finished_at\":null,"
                "\"run_after\":null,\"result\":null,\"exit_status\":null,\"signal\":null,\"error\":null,"
                "\"progress\":null}\n");
}

static void test_response_task_signal(void **state) {
        TaskRecord t = {
                .id = 3,
                .task = (char *) "t",
                .submitter = (char *) "uid:0",
                .state = TASK_CANCELLED,
                .attempts = 1,
                .max_attempts = 1,
                .created_at = 2147483648000000ULL,
                .last = {.result = "signal", .signal = 15},
        };
        cJSON *o = response_ok();
        cJSON *parsed;
        char *line;
        size_t len = 0;

        assert_int_equal(response_add_task(o, &t), 0);
        line = response_finish(o, &len);
        assert_non_null(line);
        /* Read back rather than compared as text: the fields that matter here. */
        parsed = cJSON_Parse(line);
        assert_non_null(parsed);
        assert_string_equal(cJSON_GetObjectItem(parsed, "state")->valuestring, "cancelled");
        assert_string_equal(cJSON_GetObjectItem(parsed, "result")->valuestring, "signal");
        assert_int_equal(cJSON_GetObjectItem(parsed, "signal")->valueint, 15);
        assert_true(cJSON_IsNull(cJSON_GetObjectItem(parsed, "exit_status")));
        assert_true(cJSON_IsNull(cJSON_GetObjectItem(parsed, "error")));
        assert_string_equal(cJSON_GetObjectItem(parsed, "created_at")->valuestring,
                            "2038-01-19T03:14:08.000Z");
        assert_null(cJSON_GetObjectItem(parsed, "stdin")); /* never echoed */
        cJSON_Delete(parsed);
        free(line);
}

/* Bytes that are not UTF-8 (say, a record read back from an old store) never break the line. */
static void test_response_task_bad_utf8(void **state) {
        char *args[] = {(char *) "ok", (char *) "\xff", NULL};
        TaskRecord t = {
                .id = 1,
                .cmd = (char *) "echo \xe9t\xe9",
                .args = args,
                .n_args = 2,
                .submitter = (char *) "uid:1000",
                .state = TASK_SUCCEEDED,
        };
        cJSON *o = response_ok();
        cJSON *parsed;
        char *line;
        size_t len = 0;

        assert_int_equal(response_add_task(o, &t), 0);
        line = response_finish(o, &len);
        assert_non_null(line);
        assert_int_equal(utf8_valid_len(line, len), len);
        parsed = cJSON_Parse(line);
        assert_non_null(parsed);
        assert_string_equal(cJSON_GetObjectItem(parsed, "cmd")->valuestring,
                            "echo \xef\xbf\xbdt\xef\xbf\xbd");
        assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(parsed, "args"), 1)->valuestring,
                            "\xef\xbf\xbd");
        cJSON_Delete(parsed);
        free(line);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_response_ok),
                cmocka_unit_test(test_response_no_raw_newlines),
                cmocka_unit_test(test_response_error),
                cmocka_unit_test(test_response_error_unterminated),
                cmocka_unit_test(test_response_task_full),
                cmocka_unit_test(test_response_task_fresh),
                cmocka_unit_test(test_response_task_signal),
                cmocka_unit_test(test_response_task_bad_utf8),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
