/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <cjson/cJSON.h>

#include "shared/limits.h"
#include "shared/base64.h"
#include "shared/lproto.h"
#include "shared/util.h"

static int parse_str(const char *s, LauncherMsg *m) {
        return lmsg_parse(s, strlen(s), m);
}

static void assert_rejected(const char *s) {
        LauncherMsg m;
        int r = parse_str(s, &m);

        if (r != -EBADMSG)
                fail_msg("expected -EBADMSG for %s, got %d", s, r);
        /* The contract: *ret is zeroed on failure. */
        assert_null(m.task);
        assert_null(m.args);
        assert_null(m.stdin_data);
        assert_int_equal(m.id, 0);
}

static void assert_accepted(const char *s) {
        LauncherMsg m;
        int r = parse_str(s, &m);

        if (r != 0)
                fail_msg("expected success for %s, got %d", s, r);
        lmsg_done(&m);
}

static void assert_msg_equal(const LauncherMsg *a, const LauncherMsg *b) {
        assert_int_equal(a->type, b->type);
        assert_int_equal(a->id, b->id);
        assert_int_equal(a->attempt, b->attempt);
        assert_true(streq_ptr(a->task, b->task));
        assert_true(streq_ptr(a->cmd, b->cmd));
        assert_true(streq_ptr(a->submitter, b->submitter));
        assert_true(streq_ptr(a->unit, b->unit));
        assert_true(streq_ptr(a->error, b->error));
        assert_true(streq_ptr(a->text, b->text));
        assert_int_equal(a->n_args, b->n_args);
        for (size_t i = 0; i < a->n_args; i++)
                assert_string_equal(a->args[i], b->args[i]);
        assert_int_equal(!!a->stdin_data, !!b->stdin_data);
        assert_int_equal(a->stdin_len, b->stdin_len);
        if (a->stdin_len > 0)
                assert_memory_equal(a->stdin_data, b->stdin_data, a->stdin_len);
        assert_string_equal(a->result.result, b->result.result);
        assert_int_equal(a->result.has_exit_status, b->result.has_exit_status);
        assert_int_equal(a->result.exit_status, b->result.exit_status);
        assert_int_equal(a->result.signal, b->result.signal);
        assert_int_equal(a->result.cpu_usec, b->result.cpu_usec);
        assert_int_equal(a->result.memory_peak, b->result.memory_peak);
        assert_string_equal(a->result.error, b->result.error);
}

/* Formats m, checks it is one line, parses it back and compares. */
static void round_trip(const LauncherMsg *m) {
        _cleanup_free_ char *line = NULL;
        LauncherMsg back;
        size_t len = 0;

        line = lmsg_format(m, &len);
        assert_non_null(line);
        assert_int_equal(len, strlen(line));
        assert_true(len >= 2);
        assert_int_equal(line[len - 1], '\n');
        assert_null(memchr(line, '\n', len - 1));

        assert_int_equal(lmsg_parse(line, len - 1, &back), 0);
        assert_msg_equal(m, &back);
        lmsg_done(&back);

        /* The trailing newline is accepted too. */
        assert_int_equal(lmsg_parse(line, len, &back), 0);
        assert_msg_equal(m, &back);
        lmsg_done(&back);
}

static void test_type_names(void **state) {
        const char *names[] = {"launch",   "stop",    "ack",      "list",   "started",  "finished",
                               "rejected", "running", "list_end", "reload", "reloaded", "progress"};

        assert_int_equal(ELEMENTSOF(names), _LMSG_MAX);
        for (int i = 0; i < _LMSG_MAX; i++)
                assert_string_equal(lmsg_type_to_string((LauncherMsgType) i), names[i]);
        assert_null(lmsg_type_to_string(_LMSG_MAX));
        assert_null(lmsg_type_to_string(_LMSG_INVALID));
}

static void test_round_trip_launch_task(void **state) {
        char *args[] = {"a.png", "b c.png", "$(touch x)", "; rm -rf /", "*", "\"quoted\\\"", "", NULL};
        const char stdin_bytes[] = "line1\nbinary\0\x01\xff\x80 end";
        LauncherMsg m = {
                .type = LMSG_LAUNCH,
                .id = 17,
                .attempt = 2,
                .task = "resize",
                .args = args,
                .n_args = 7,
                .stdin_data = (char *) stdin_bytes,
                .stdin_len = sizeof(stdin_bytes) - 1,
                .submitter = "uid:33",
        };
        round_trip(&m);

        /* Without stdin, without args. */
        m.stdin_data = NULL;
        m.stdin_len = 0;
        m.args = NULL;
        m.n_args = 0;
        round_trip(&m);

        /* Empty stdin is not the same as no stdin. */
        m.stdin_data = (char *) "";
        round_trip(&m);

        /* The largest id that survives a JSON number exactly. */
        m.id = (UINT64_C(1) << 53) - 1;
        m.attempt = UINT32_MAX;
        round_trip(&m);
}

static void test_round_trip_launch_cmd(void **state) {
        char *no_args[] = {NULL};
        LauncherMsg m = {
                .type = LMSG_LAUNCH,
                .id = 1,
                .attempt = 1,
                .cmd = "echo \"hello world\" | tr a-z A-Z; exit 0",
                .args = no_args,
                .submitter = "tcp:127.0.0.1",
        };
        round_trip(&m);
}

static void test_round_trip_simple(void **state) {
        LauncherMsg m = {.type = LMSG_STOP, .id = 42};
        round_trip(&m);
        m.type = LMSG_ACK;
        round_trip(&m);

        m = (LauncherMsg){.type = LMSG_LIST};
        round_trip(&m);
        m.type = LMSG_LIST_END;
        round_trip(&m);
        m.type = LMSG_RELOAD;
        round_trip(&m);
        m.type = LMSG_RELOADED;
        round_trip(&m);
        m.error = "tasks.d/x.json: timeout_sec: must be a number";
        round_trip(&m);

        m = (LauncherMsg){.type = LMSG_STARTED, .id = 9, .unit = "asynctask-9.service"};
        round_trip(&m);
        m.type = LMSG_RUNNING;
        m.unit = "pid:1234";
        round_trip(&m);

        m = (LauncherMsg){.type = LMSG_REJECTED, .id = 5, .error = "no task named 'resze'"};
        round_trip(&m);
}

static void test_round_trip_finished(void **state) {
        LauncherMsg m = {.type = LMSG_FINISHED, .id = 3};

        strcpy(m.result.result, "success");
        m.result.has_exit_status = 1;
        m.result.exit_status = 0;
        round_trip(&m);

        strcpy(m.result.result, "exit-code");
        m.result.exit_status = 255;
        m.result.cpu_usec = 123456;
        m.result.memory_peak = UINT64_C(1) << 40;
        strcpy(m.result.error, "exited with status 255");
        round_trip(&m);

        m.result = (RunResult){.signal = 9};
        strcpy(m.result.result, "signal");
        round_trip(&m);

        m.result = (RunResult){};
        strcpy(m.result.result, "resources");
        strcpy(m.result.error, "execv(/nonexistent): No such file or directory");
        round_trip(&m);

        /* Minimal: only the result word. */
        m.result = (RunResult){};
        strcpy(m.result.result, "lost");
        round_trip(&m);
}

static void test_format_truncates_errors(void **state) {
        _cleanup_free_ char *line = NULL;
        char error[400];
        LauncherMsg m = {.type = LMSG_REJECTED, .id = 1, .error = error}, back;

        /* 254 ASCII bytes then a 3-byte UTF-8 character: the cut must not split it. */
        memset(error, 'e', 254);
        strcpy(error + 254, "\xe2\x82\xac and more text that does not fit");
        line = lmsg_format(&m, NULL);
        assert_non_null(line);
        assert_int_equal(lmsg_parse(line, strlen(line), &back), 0);
        assert_int_equal(strlen(back.error), 254);
        lmsg_done(&back);
        free(line);

        /* Exactly 255 fits unchanged. */
        memset(error, 'x', 255);
        error[255] = '\0';
        line = lmsg_format(&m, NULL);
        assert_int_equal(lmsg_parse(line, strlen(line), &back), 0);
        assert_int_equal(strlen(back.error), 255);
        lmsg_done(&back);
}

static void test_format_invalid_type(void **state) {
        LauncherMsg m = {.type = _LMSG_MAX};
        assert_null(lmsg_format(&m, NULL));
        m.type = _LMSG_INVALID;
        assert_null(lmsg_format(&m, NULL));
}

static void test_parse_envelope(void **state) {
        assert_accepted("{\"type\":\"list\"}");
        assert_accepted("  {\"type\":\"list\"}  ");
        assert_accepted("{\"type\":\"list\"}\n");
        assert_accepted("\t{ \"type\" : \"list\" }\r\n");
        /* Literals containing 'e' are not exponents. */
        assert_accepted("{\"type\":\"finished\",\"id\":1,\"result\":\"success\",\"error\":\"1e5 2.5\"}");

        assert_rejected("");
        assert_rejected("\n");
        assert_rejected("not json");
        assert_rejected("{\"type\":\"list\"");
        assert_rejected("{\"type\":\"list\"}x");
        assert_rejected("{\"type\":\"list\"}{}");
        assert_rejected("[\"list\"]");
        assert_rejected("\"list\"");
        assert_rejected("null");
        assert_rejected("{}");
        assert_rejected("{\"type\":1}");
        assert_rejected("{\"type\":null}");
        assert_rejected("{\"type\":\"LIST\"}");
        assert_rejected("{\"type\":\"submit\"}");
        assert_rejected("{\"type\":\"list\",\"type\":\"list\"}");
        assert_rejected("{\"type\":\"list\",\"extra\":1}");
        assert_rejected("{\"type\":\"list\",\"id\":1}"); /* key of another type */
        assert_rejected("{\"type\":\"reload\",\"error\":\"x\"}");
        assert_rejected("{\"type\":\"list_end\",\"unit\":\"x\"}");
        assert_rejected("{\"type\":\"list\",\"\":1}");
}

static void test_parse_nul_bytes(void **state) {
        const char raw[] = "{\"type\":\"stop\",\"id\":1}\0";
        LauncherMsg m;

        /* A raw NUL inside the line. */
        assert_int_equal(lmsg_parse(raw, sizeof(raw) - 1, &m), -EBADMSG);
        assert_int_equal(lmsg_parse("{\"type\":\"st\0op\",\"id\":1}", 23, &m), -EBADMSG);

        /* An escaped NUL would cut the string short inside cJSON. */
        assert_rejected("{\"type\":\"stop\\u0000\",\"id\":1}");
        assert_rejected(
                "{\"type\":\"launch\",\"id\":1,\"attempt\":1,\"task\":\"t\",\"args\":[\"a\\u0000b\"],"
                "\"submitter\":\"s\"}");
        /* An escaped backslash followed by u0000 is a literal text, not a NUL. */
        assert_accepted(
                "{\"type\":\"launch\",\"id\":1,\"attempt\":1,\"task\":\"t\",\"args\":[\"a\\\\u0000b\"],"
                "\"submitter\":\"s\"}");
        assert_accepted("{\"type\":\"launch\",\"id\":1,\"attempt\":1,\"task\":\"t\",\"args\":[\"\\u0001\"],"
                        "\"submitter\":\"s\"}");
}

static void test_parse_depth(void **state) {
        assert_rejected("{\"type\":\"launch\",\"id\":1,\"attempt\":1,\"task\":\"t\",\"args\":[[\"a\"]],"
                        "\"submitter\":\"s\"}");
        assert_rejected("{\"type\":\"list\",\"x\":{\"y\":{}}}");
        /* Brackets inside strings do not count. */
        assert_accepted("{\"type\":\"launch\",\"id\":1,\"attempt\":1,\"task\":\"t\",\"args\":[\"[[[{{{\"],"
                        "\"submitter\":\"s\"}");
}

static void test_parse_ids(void **state) {
        assert_accepted("{\"type\":\"stop\",\"id\":1}");
        assert_accepted("{\"type\":\"ack\",\"id\":9007199254740991}");
        assert_rejected("{\"type\":\"ack\",\"id\":9007199254740992}");
        assert_rejected("{\"type\":\"ack\",\"id\":1e3}");
        assert_rejected("{\"type\":\"ack\",\"id\":1E3}");
        assert_rejected("{\"type\":\"ack\",\"id\":1.0}");
        assert_rejected("{\"type\":\"ack\",\"id\":9007199254740991.4}");
        assert_rejected("{\"type\":\"stop\"}");
        assert_rejected("{\"type\":\"stop\",\"id\":0}");
        assert_rejected("{\"type\":\"stop\",\"id\":-1}");
        assert_rejected("{\"type\":\"stop\",\"id\":1.5}");
        assert_rejected("{\"type\":\"stop\",\"id\":9007199254740993}");
        assert_rejected("{\"type\":\"stop\",\"id\":1e300}");
        assert_rejected("{\"type\":\"stop\",\"id\":\"1\"}");
        assert_rejected("{\"type\":\"stop\",\"id\":true}");
        assert_rejected("{\"type\":\"stop\",\"id\":null}");
        assert_rejected("{\"type\":\"stop\",\"id\":[1]}");
        assert_rejected("{\"type\":\"ack\",\"id\":1,\"unit\":\"x\"}");
}

#define LAUNCH_HEAD "{\"type\":\"launch\",\"id\":7,\"attempt\":1,"

static void test_parse_launch_fields(void **state) {
        LauncherMsg m;

        assert_int_equal(parse_str(LAUNCH_HEAD "\"task\":\"resize\",\"args\":[\"x\"],\"stdin\":\"Zm9v\","
                                               "\"submitter\":\"uid:0\"}",
                                   &m),
                         0);
        assert_int_equal(m.type, LMSG_LAUNCH);
        assert_int_equal(m.id, 7);
        assert_int_equal(m.attempt, 1);
        assert_string_equal(m.task, "resize");
        assert_null(m.cmd);
        assert_int_equal(m.n_args, 1);
        assert_string_equal(m.args[0], "x");
        assert_null(m.args[1]);
        assert_int_equal(m.stdin_len, 3);
        assert_memory_equal(m.stdin_data, "foo", 3);
        assert_string_equal(m.submitter, "uid:0");
        lmsg_done(&m);

        /* args present and NULL-terminated even when empty. */
        assert_int_equal(parse_str(LAUNCH_HEAD "\"cmd\":\"ls\",\"args\":[],\"submitter\":\"uid:0\"}", &m),
                         0);
        assert_non_null(m.args);
        assert_null(m.args[0]);
        assert_int_equal(m.n_args, 0);
        assert_null(m.stdin_data);
        lmsg_done(&m);

        /* Required keys. */
        assert_rejected(
                "{\"type\":\"launch\",\"attempt\":1,\"task\":\"t\",\"args\":[],\"submitter\":\"s\"}");
        assert_rejected("{\"type\":\"launch\",\"id\":1,\"task\":\"t\",\"args\":[],\"submitter\":\"s\"}");
        assert_rejected(LAUNCH_HEAD "\"task\":\"t\",\"submitter\":\"s\"}");
        assert_rejected(LAUNCH_HEAD "\"task\":\"t\",\"args\":[]}");
        /* Exactly one of task and cmd. */
        assert_rejected(LAUNCH_HEAD "\"args\":[],\"submitter\":\"s\"}");
        assert_rejected(LAUNCH_HEAD "\"task\":\"t\",\"cmd\":\"ls\",\"args\":[],\"submitter\":\"s\"}");
        /* Types and ranges. */
        assert_rejected("{\"type\":\"launch\",\"id\":1,\"attempt\":0,\"task\":\"t\",\"args\":[],"
                        "\"submitter\":\"s\"}");
        assert_rejected("{\"type\":\"launch\",\"id\":1,\"attempt\":4294967296,\"task\":\"t\",\"args\":[],"
                        "\"submitter\":\"s\"}");
        assert_rejected("{\"type\":\"launch\",\"id\":1,\"attempt\":\"1\",\"task\":\"t\",\"args\":[],"
                        "\"submitter\":\"s\"}");
        assert_rejected(LAUNCH_HEAD "\"task\":\"\",\"args\":[],\"submitter\":\"s\"}");
        assert_rejected(LAUNCH_HEAD "\"task\":1,\"args\":[],\"submitter\":\"s\"}");
        assert_rejected(LAUNCH_HEAD "\"cmd\":\"\",\"args\":[],\"submitter\":\"s\"}");
        assert_rejected(LAUNCH_HEAD "\"cmd\":null,\"args\":[],\"submitter\":\"s\"}");
        assert_rejected(LAUNCH_HEAD "\"task\":\"t\",\"args\":\"a b\",\"submitter\":\"s\"}");
        assert_rejected(LAUNCH_HEAD "\"task\":\"t\",\"args\":[1],\"submitter\":\"s\"}");
        assert_rejected(LAUNCH_HEAD "\"task\":\"t\",\"args\":[null],\"submitter\":\"s\"}");
        assert_rejected(LAUNCH_HEAD "\"task\":\"t\",\"args\":{},\"submitter\":\"s\"}");
        assert_rejected(LAUNCH_HEAD "\"task\":\"t\",\"args\":[],\"submitter\":\"\"}");
        assert_rejected(LAUNCH_HEAD "\"task\":\"t\",\"args\":[],\"submitter\":5}");
        assert_rejected(LAUNCH_HEAD "\"task\":\"t\",\"args\":[],\"submitter\":\"s\",\"stdin\":5}");
        assert_rejected(LAUNCH_HEAD "\"task\":\"t\",\"args\":[],\"submitter\":\"s\",\"stdin\":\"Zm9\"}");
        assert_rejected(LAUNCH_HEAD "\"task\":\"t\",\"args\":[],\"submitter\":\"s\",\"stdin\":\"Zm9v!\"}");
        assert_rejected(LAUNCH_HEAD "\"task\":\"t\",\"args\":[],\"submitter\":\"s\",\"unit\":\"u\"}");
        assert_rejected(LAUNCH_HEAD "\"task\":\"t\",\"args\":[],\"submitter\":\"s\",\"key\":\"k\"}");
}

/* Builds a launch line with the given task name, args and submitter. */
static char *launch_line(const char *task, size_t n_args, size_t arg_len, const char *submitter) {
        size_t cap = 256 + strlen(task) + strlen(submitter) + n_args * (arg_len + 3);
        char *s = malloc(cap), *p;

        assert_non_null(s);
        p = s + sprintf(s, LAUNCH_HEAD "\"task\":\"%s\",\"submitter\":\"%s\",\"args\":[", task, submitter);
        for (size_t i = 0; i < n_args; i++) {
                if (i > 0)
                        *p++ = ',';
                *p++ = '"';
                memset(p, 'a', arg_len);
                p += arg_len;
                *p++ = '"';
        }
        strcpy(p, "]}");
        return s;
}

static void test_parse_launch_limits(void **state) {
        char name[TASK_NAME_BYTES_MAX + 2], submitter[65];
        char *s;

        memset(name, 'n', sizeof(name));
        name[TASK_NAME_BYTES_MAX] = '\0';
        s = launch_line(name, 0, 0, "s");
        assert_accepted(s);
        free(s);
        name[TASK_NAME_BYTES_MAX] = 'n';
        name[TASK_NAME_BYTES_MAX + 1] = '\0';
        s = launch_line(name, 0, 0, "s");
        assert_rejected(s);
        free(s);

        s = launch_line("t", TASK_ARGS_MAX, 1, "s");
        assert_accepted(s);
        free(s);
        s = launch_line("t", TASK_ARGS_MAX + 1, 1, "s");
        assert_rejected(s);
        free(s);

        s = launch_line("t", 1, TASK_ARG_BYTES_MAX, "s");
        assert_accepted(s);
        free(s);
        s = launch_line("t", 1, TASK_ARG_BYTES_MAX + 1, "s");
        assert_rejected(s);
        free(s);

        memset(submitter, 'u', 63);
        submitter[63] = '\0';
        s = launch_line("t", 0, 0, submitter);
        assert_accepted(s);
        free(s);
        submitter[63] = 'u';
        submitter[64] = '\0';
        s = launch_line("t", 0, 0, submitter);
        assert_rejected(s);
        free(s);
}

static void test_parse_stdin_limit(void **state) {
        size_t n = FRAME_BYTES_MAX;
        _cleanup_free_ char *data = malloc(n + 1);
        _cleanup_free_ char *b64 = NULL, *line = NULL;
        LauncherMsg m;

        assert_non_null(data);
        for (size_t i = 0; i <= n; i++)
                data[i] = (char) (i * 7);

        /* Exactly FRAME_BYTES_MAX decoded bytes pass... */
        b64 = base64_encode(data, n);
        assert_non_null(b64);
        line = malloc(strlen(b64) + 200);
        sprintf(line, LAUNCH_HEAD "\"task\":\"t\",\"args\":[],\"submitter\":\"s\",\"stdin\":\"%s\"}", b64);
        assert_int_equal(lmsg_parse(line, strlen(line), &m), 0);
        assert_int_equal(m.stdin_len, n);
        assert_memory_equal(m.stdin_data, data, n);
        lmsg_done(&m);
        free(b64);
        free(line);

        /* ...one more does not. */
        b64 = base64_encode(data, n + 1);
        line = malloc(strlen(b64) + 200);
        sprintf(line, LAUNCH_HEAD "\"task\":\"t\",\"args\":[],\"submitter\":\"s\",\"stdin\":\"%s\"}", b64);
        assert_int_equal(lmsg_parse(line, strlen(line), &m), -EBADMSG);
}

static void test_parse_line_limit(void **state) {
        static const char head[] = "{\"type\":\"list\"", tail[] = "}";
        size_t n = LAUNCHER_MSG_BYTES_MAX + 1;
        _cleanup_free_ char *line = malloc(n + 1);
        LauncherMsg m;

        /* A valid message of exactly the limit (padded with whitespace) is accepted... */
        assert_non_null(line);
        memset(line, ' ', n);
        memcpy(line, head, strlen(head));
        memcpy(line + LAUNCHER_MSG_BYTES_MAX - 1, tail, 1);
        line[LAUNCHER_MSG_BYTES_MAX] = '\n';
        assert_int_equal(lmsg_parse(line, LAUNCHER_MSG_BYTES_MAX, &m), 0);
        assert_int_equal(m.type, LMSG_LIST);
        lmsg_done(&m);
        /* ...also with its newline... */
        assert_int_equal(lmsg_parse(line, LAUNCHER_MSG_BYTES_MAX + 1, &m), 0);
        lmsg_done(&m);

        /* ...and one byte more is too big. */
        memset(line, ' ', n);
        memcpy(line, head, strlen(head));
        memcpy(line + n - 1, tail, 1);
        assert_int_equal(lmsg_parse(line, n, &m), -E2BIG);
        assert_int_equal(m.type, 0);
}

static size_t cjson_allocations;

static void *counting_malloc(size_t n) {
        cjson_allocations++;
        return malloc(n);
}

/* n values, each the JSON text item, in an array (the array is one value too). */
static char *array_of(const char *item, size_t n) {
        size_t len = strlen(item);
        char *s = malloc(n * (len + 1) + 3), *p = s;

        assert_non_null(s);
        *p++ = '[';
        for (size_t i = 0; i + 1 < n; i++) {
                memcpy(p, item, len);
                p += len;
                *p++ = i + 2 < n ? ',' : ']';
        }
        *p = '\0';
        return s;
}

static void test_parse_values_counted_first(void **state) {
        static const char *const items[] = {"0", "-1", "\"\"", "true", "false", "null", "[]", "{}"};
        const size_t over[] = {LAUNCHER_MSG_VALUES_MAX + 1, 1000 * 1000};
        cJSON_Hooks hooks = {.malloc_fn = counting_malloc, .free_fn = free};
        _cleanup_free_ char *largest = NULL;
        LauncherMsg m;
        char *s;

        cJSON_InitHooks(&hooks);
        for (size_t i = 0; i < ELEMENTSOF(items); i++) {
                /* At the limit the parser runs (and refuses an array: not a message)... */
                s = array_of(items[i], LAUNCHER_MSG_VALUES_MAX);
                cjson_allocations = 0;
                assert_int_equal(lmsg_parse(s, strlen(s), &m), -EBADMSG);
                assert_true(cjson_allocations > 0);
                free(s);
                /* ...past it, up to a million values, they are refused before it allocates anything. */
                for (size_t j = 0; j < ELEMENTSOF(over); j++) {
                        s = array_of(items[i], over[j]);
                        cjson_allocations = 0;
                        assert_int_equal(lmsg_parse(s, strlen(s), &m), -EBADMSG);
                        assert_int_equal(cjson_allocations, 0);
                        free(s);
                }
        }
        cJSON_InitHooks(NULL);

        /* The largest real message, a launch with TASK_ARGS_MAX args and every optional key, passes. */
        s = launch_line("t", TASK_ARGS_MAX, 1, "s");
        assert_true(asprintf(&largest, LAUNCH_HEAD "\"stdin\":\"Zm9v\",%s", s + strlen(LAUNCH_HEAD)) > 0);
        free(s);
        assert_int_equal(lmsg_parse(largest, strlen(largest), &m), 0);
        assert_int_equal(m.n_args, TASK_ARGS_MAX);
        assert_int_equal(m.stdin_len, 3);
        lmsg_done(&m);
}

static void test_parse_started_running(void **state) {
        char unit[300];
        char line[400];

        assert_accepted("{\"type\":\"started\",\"id\":1,\"unit\":\"asynctask-1.service\"}");
        assert_accepted("{\"type\":\"running\",\"id\":1,\"unit\":\"pid:5\"}");
        assert_rejected("{\"type\":\"started\",\"id\":1}");
        assert_rejected("{\"type\":\"started\",\"unit\":\"u\"}");
        assert_rejected("{\"type\":\"started\",\"id\":1,\"unit\":\"\"}");
        assert_rejected("{\"type\":\"running\",\"id\":1,\"unit\":1}");
        assert_rejected("{\"type\":\"running\",\"id\":1,\"unit\":\"u\",\"result\":\"success\"}");

        memset(unit, 'u', 255);
        unit[255] = '\0';
        snprintf(line, sizeof(line), "{\"type\":\"started\",\"id\":1,\"unit\":\"%s\"}", unit);
        assert_accepted(line);
        unit[255] = 'u';
        unit[256] = '\0';
        snprintf(line, sizeof(line), "{\"type\":\"started\",\"id\":1,\"unit\":\"%s\"}", unit);
        assert_rejected(line);
}

static void test_parse_finished(void **state) {
        char error[300], line[400];
        LauncherMsg m;

        assert_int_equal(
                parse_str("{\"type\":\"finished\",\"id\":4,\"result\":\"exit-code\",\"exit_status\":3,"
                          "\"cpu_usec\":12,\"memory_peak\":4096,\"error\":\"bad\"}",
                          &m),
                0);
        assert_string_equal(m.result.result, "exit-code");
        assert_true(m.result.has_exit_status);
        assert_int_equal(m.result.exit_status, 3);
        assert_int_equal(m.result.cpu_usec, 12);
        assert_int_equal(m.result.memory_peak, 4096);
        assert_string_equal(m.result.error, "bad");
        assert_null(m.error);
        lmsg_done(&m);

        assert_accepted("{\"type\":\"finished\",\"id\":4,\"result\":\"signal\",\"signal\":64}");
        assert_accepted("{\"type\":\"finished\",\"id\":4,\"result\":\"exit-code\",\"exit_status\":255}");
        assert_accepted("{\"type\":\"finished\",\"id\":4,\"result\":\"start-limit-hit\"}");
        assert_rejected("{\"type\":\"finished\",\"id\":4}");
        assert_rejected("{\"type\":\"finished\",\"result\":\"success\"}");
        assert_rejected("{\"type\":\"finished\",\"id\":4,\"result\":\"\"}");
        assert_rejected("{\"type\":\"finished\",\"id\":4,\"result\":\"Success\"}");
        assert_rejected("{\"type\":\"finished\",\"id\":4,\"result\":\"exit code\"}");
        assert_rejected("{\"type\":\"finished\",\"id\":4,\"result\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}");
        assert_accepted("{\"type\":\"finished\",\"id\":4,\"result\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}");
        assert_rejected("{\"type\":\"finished\",\"id\":4,\"result\":7}");
        assert_rejected("{\"type\":\"finished\",\"id\":4,\"result\":\"exit-code\",\"exit_status\":256}");
        assert_rejected("{\"type\":\"finished\",\"id\":4,\"result\":\"exit-code\",\"exit_status\":-1}");
        assert_rejected("{\"type\":\"finished\",\"id\":4,\"result\":\"exit-code\",\"exit_status\":\"3\"}");
        assert_rejected("{\"type\":\"finished\",\"id\":4,\"result\":\"signal\",\"signal\":0}");
        assert_rejected("{\"type\":\"finished\",\"id\":4,\"result\":\"signal\",\"signal\":65}");
        assert_rejected(
                "{\"type\":\"finished\",\"id\":4,\"result\":\"signal\",\"signal\":9,\"exit_status\":0}");
        assert_rejected("{\"type\":\"finished\",\"id\":4,\"result\":\"success\",\"cpu_usec\":-1}");
        assert_rejected("{\"type\":\"finished\",\"id\":4,\"result\":\"success\",\"cpu_usec\":0.5}");
        assert_rejected("{\"type\":\"finished\",\"id\":4,\"result\":\"success\",\"memory_peak\":\"1\"}");
        assert_rejected("{\"type\":\"finished\",\"id\":4,\"result\":\"success\",\"error\":7}");
        assert_rejected("{\"type\":\"finished\",\"id\":4,\"result\":\"success\",\"unit\":\"u\"}");

        memset(error, 'e', 255);
        error[255] = '\0';
        snprintf(line, sizeof(line),
                 "{\"type\":\"finished\",\"id\":4,\"result\":\"success\",\"error\":\"%s\"}", error);
        assert_accepted(line);
        error[255] = 'e';
        error[256] = '\0';
        snprintf(line, sizeof(line),
                 "{\"type\":\"finished\",\"id\":4,\"result\":\"success\",\"error\":\"%s\"}", error);
        assert_rejected(line);
}

static void test_parse_rejected_reloaded(void **state) {
        char error[300], line[400];
        LauncherMsg m;

        assert_int_equal(parse_str("{\"type\":\"rejected\",\"id\":2,\"error\":\"no such task\"}", &m), 0);
        assert_string_equal(m.error, "no such task");
        lmsg_done(&m);
        assert_rejected("{\"type\":\"rejected\",\"id\":2}");
        assert_rejected("{\"type\":\"rejected\",\"error\":\"x\"}");
        assert_rejected("{\"type\":\"rejected\",\"id\":2,\"error\":\"\"}");
        assert_rejected("{\"type\":\"rejected\",\"id\":2,\"error\":null}");

        assert_int_equal(parse_str("{\"type\":\"reloaded\"}", &m), 0);
        assert_null(m.error);
        lmsg_done(&m);
        assert_accepted("{\"type\":\"reloaded\",\"error\":\"bad config\"}");
        assert_rejected("{\"type\":\"reloaded\",\"error\":\"\"}");
        assert_rejected("{\"type\":\"reloaded\",\"error\":false}");
        assert_rejected("{\"type\":\"reloaded\",\"id\":1}");

        memset(error, 'e', 255);
        error[255] = '\0';
        snprintf(line, sizeof(line), "{\"type\":\"reloaded\",\"error\":\"%s\"}", error);
        assert_accepted(line);
        error[255] = 'e';
        error[256] = '\0';
        snprintf(line, sizeof(line), "{\"type\":\"rejected\",\"id\":1,\"error\":\"%s\"}", error);
        assert_rejected(line);
}

static void test_progress(void **state) {
        char text[PROGRESS_BYTES_MAX + 2], line[PROGRESS_BYTES_MAX + 100];
        LauncherMsg m = {.type = LMSG_PROGRESS, .id = 12, .text = "40% resized 4 of 10"};

        round_trip(&m);
        m.text = ""; /* a task clearing its status */
        round_trip(&m);
        m.text = "caf\xc3\xa9 \"quoted\" \\ back";
        round_trip(&m);

        assert_int_equal(parse_str("{\"type\":\"progress\",\"id\":3,\"text\":\"half\"}", &m), 0);
        assert_string_equal(m.text, "half");
        lmsg_done(&m);
        assert_rejected("{\"type\":\"progress\",\"id\":3}");
        assert_rejected("{\"type\":\"progress\",\"text\":\"x\"}");
        assert_rejected("{\"type\":\"progress\",\"id\":3,\"text\":null}");
        assert_rejected("{\"type\":\"progress\",\"id\":3,\"text\":\"x\",\"unit\":\"u\"}");
        /* Only the launcher's messages carry text. */
        assert_rejected("{\"type\":\"stop\",\"id\":3,\"text\":\"x\"}");

        memset(text, 'p', PROGRESS_BYTES_MAX);
        text[PROGRESS_BYTES_MAX] = '\0';
        snprintf(line, sizeof(line), "{\"type\":\"progress\",\"id\":1,\"text\":\"%s\"}", text);
        assert_accepted(line);
        text[PROGRESS_BYTES_MAX] = 'p';
        text[PROGRESS_BYTES_MAX + 1] = '\0';
        snprintf(line, sizeof(line), "{\"type\":\"progress\",\"id\":1,\"text\":\"%s\"}", text);
        assert_rejected(line);

        /* The encoder cuts over-long text at a character boundary rather than sending what the
         * decoder refuses. */
        {
                _cleanup_free_ char *out = NULL;
                char longer[PROGRESS_BYTES_MAX + 8];
                LauncherMsg back;

                memset(longer, 'a', PROGRESS_BYTES_MAX - 1);
                strcpy(longer + PROGRESS_BYTES_MAX - 1, "\xc3\xa9xyz"); /* é straddles the limit */
                m = (LauncherMsg){.type = LMSG_PROGRESS, .id = 1, .text = longer};
                out = lmsg_format(&m, NULL);
                assert_non_null(out);
                assert_int_equal(parse_str(out, &back), 0);
                assert_int_equal(strlen(back.text), PROGRESS_BYTES_MAX - 1);
                lmsg_done(&back);
        }
}

static void test_base64_vectors(void **state) {
        static const struct {
                const char *plain, *encoded;
        } v[] = {
                {"", ""},
                {"f", "Zg=="},
                {"fo", "Zm8="},
                {"foo", "Zm9v"},
                {"foob", "Zm9vYg=="},
                {"fooba", "Zm9vYmE="},
                {"foobar", "Zm9vYmFy"},
                {"\xff\xfe", "//4="},
        };

        for (size_t i = 0; i < ELEMENTSOF(v); i++) {
                _cleanup_free_ char *e = base64_encode(v[i].plain, strlen(v[i].plain));
                _cleanup_free_ char *d = NULL;
                size_t n;

                assert_string_equal(e, v[i].encoded);
                assert_int_equal(base64_decode(v[i].encoded, strlen(v[i].encoded), &d, &n), 0);
                assert_int_equal(n, strlen(v[i].plain));
                assert_memory_equal(d, v[i].plain, n);
                assert_int_equal(d[n], '\0');
        }
}

static void test_base64_all_lengths(void **state) {
        unsigned char data[300];

        for (size_t i = 0; i < sizeof(data); i++)
                data[i] = (unsigned char) (i * 37 + 11);
        for (size_t len = 0; len <= sizeof(data); len++) {
                _cleanup_free_ char *e = base64_encode(data, len), *d = NULL;
                size_t n;

                assert_int_equal(strlen(e), (len + 2) / 3 * 4);
                assert_int_equal(base64_decode(e, strlen(e), &d, &n), 0);
                assert_int_equal(n, len);
                if (len > 0)
                        assert_memory_equal(d, data, len);
        }
}

static void test_base64_strict(void **state) {
        static const char *const bad[] = {
                "Zg",                     /* missing padding */
                "Zg=",                    /* short padding */
                "Zm9vY",                  /* not a multiple of 4 */
                "Zm9v!A==",               /* character outside the alphabet */
                "Zm 9",                   /* whitespace */
                "Zm9v\nYg==", "Z===",     /* too much padding */
                "====",       "Zg==Zg==", /* padding in the middle */
                "Z=g=",                   /* data after padding */
                "Zh==",                   /* nonzero bits after the last byte (canonical is Zg==) */
                "Zm9=",                   /* canonical is Zm8= */
                "Zm-v",                   /* URL-safe alphabet is not ours */
                "Zm_v",
        };
        char *d = NULL;
        size_t n = 99;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                if (base64_decode(bad[i], strlen(bad[i]), &d, &n) != -EINVAL)
                        fail_msg("accepted bad base64 '%s'", bad[i]);
                assert_null(d);
                assert_int_equal(n, 99);
        }
        /* A NUL inside the given length is a bad character, not an end. */
        assert_int_equal(base64_decode("Zg\0=", 4, &d, &n), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_type_names),
                cmocka_unit_test(test_round_trip_launch_task),
                cmocka_unit_test(test_round_trip_launch_cmd),
                cmocka_unit_test(test_round_trip_simple),
                cmocka_unit_test(test_round_trip_finished),
                cmocka_unit_test(test_format_truncates_errors),
                cmocka_unit_test(test_format_invalid_type),
                cmocka_unit_test(test_parse_envelope),
                cmocka_unit_test(test_parse_nul_bytes),
                cmocka_unit_test(test_parse_depth),
                cmocka_unit_test(test_parse_ids),
                cmocka_unit_test(test_parse_launch_fields),
                cmocka_unit_test(test_parse_launch_limits),
                cmocka_unit_test(test_parse_stdin_limit),
                cmocka_unit_test(test_parse_line_limit),
                cmocka_unit_test(test_parse_values_counted_first),
                cmocka_unit_test(test_parse_started_running),
                cmocka_unit_test(test_parse_finished),
                cmocka_unit_test(test_parse_rejected_reloaded),
                cmocka_unit_test(test_progress),
                cmocka_unit_test(test_base64_vectors),
                cmocka_unit_test(test_base64_all_lengths),
                cmocka_unit_test(test_base64_strict),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
