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

#include "shared/limits.h"
#include "front/decode.h"
#include "front/request.h"
#include "front/utf8.h"
#include "shared/util.h"

#define S(x) x, sizeof(x) - 1

/* ---- requests that must be refused: exact code and message ---- */

typedef struct BadCase {
        const char *input;
        size_t len;
        ErrorCode code;
        const char *message;
} BadCase;

static const BadCase bad_cases[] = {
        /* not JSON at all, or not strict JSON */
        {S(""), ERR_BAD_FRAME, "invalid JSON at byte 0"},
        {S("hello"), ERR_BAD_FRAME, "invalid JSON at byte 0"},
        {S("{\"op\":\"ping\""), ERR_BAD_FRAME, "invalid JSON at byte 11"},
        {S("{\"op\":\"ping\"}x"), ERR_BAD_FRAME, "invalid JSON: trailing data at byte 13"},
        {S("{\"op\":\"ping\"} {}"), ERR_BAD_FRAME, "invalid JSON: trailing data at byte 14"},
        /* pause, resume, drain, undrain */
        {S("{\"op\":\"pause\"}"), ERR_BAD_REQUEST, "op 'pause' needs 'task'"},
        {S("{\"op\":\"resume\",\"task\":1}"), ERR_BAD_REQUEST, "'task' must be a string"},
        {S("{\"op\":\"pause\",\"task\":\"a b\"}"), ERR_BAD_REQUEST,
         "invalid task name 'a b': 1 to 64 letters, digits, '_', '.' or '-'"},
        {S("{\"op\":\"pause\",\"task\":\"x\",\"args\":[]}"), ERR_BAD_REQUEST,
         "'args' is not allowed with op 'pause'"},
        {S("{\"op\":\"drain\",\"timeout\":-1}"), ERR_BAD_REQUEST,
         "'timeout' must be a number from 0 to 3600"},
        {S("{\"op\":\"drain\",\"timeout\":3601}"), ERR_BAD_REQUEST,
         "'timeout' must be a number from 0 to 3600"},
        {S("{\"op\":\"undrain\",\"timeout\":1}"), ERR_BAD_REQUEST,
         "'timeout' is not allowed with op 'undrain'"},
        {S("{\"op\":\"ping}"), ERR_BAD_FRAME, "invalid JSON: unterminated string at byte 6"},
        {S("{\"op\":\"pi\\"), ERR_BAD_FRAME, "invalid JSON: unterminated string at byte 6"},
        {S("{\"op\":\"pi\tng\"}"), ERR_BAD_FRAME, "invalid JSON: control character in string at byte 9"},
        {S("{\"op\":\"ping\",}"), ERR_BAD_FRAME, "invalid JSON at byte 13"},
        {S("{'op':'ping'}"), ERR_BAD_FRAME, "invalid JSON at byte 2"},
        {S("{\"id\":017,\"op\":\"status\"}"), ERR_BAD_FRAME, "invalid JSON: bad number at byte 6"},
        {S("{\"id\":1.,\"op\":\"status\"}"), ERR_BAD_FRAME, "invalid JSON: bad number at byte 6"},
        {S("{\"id\":.5,\"op\":\"status\"}"), ERR_BAD_FRAME, "invalid JSON at byte 6"},
        {S("{\"id\":-,\"op\":\"status\"}"), ERR_BAD_FRAME, "invalid JSON: bad number at byte 6"},
        {S("{\"id\":1e,\"op\":\"status\"}"), ERR_BAD_FRAME, "invalid JSON: bad number at byte 6"},
        {S("{\"id\":+1,\"op\":\"status\"}"), ERR_BAD_FRAME, "invalid JSON at byte 6"},
        {S("{\"id\":0x10,\"op\":\"status\"}"), ERR_BAD_FRAME, "invalid JSON at byte 7"},
        {S("{\"id\":NaN,\"op\":\"status\"}"), ERR_BAD_FRAME, "invalid JSON at byte 6"},
        {S("{\"op\":\"ping\"}\0"), ERR_BAD_FRAME, "NUL byte at byte 13"},
        {S("{\"op\":\"pi\0ng\"}"), ERR_BAD_FRAME, "NUL byte at byte 9"},
        {S("{\"op\":\"\\ud800\"}"), ERR_BAD_FRAME, "invalid JSON at byte 7"},
        /* UTF-8 */
        {S("{\"task\":\"caf\xc3\"}"), ERR_BAD_FRAME, "invalid UTF-8 at byte 12"},
        {S("{\"task\":\"\xff\"}"), ERR_BAD_FRAME, "invalid UTF-8 at byte 9"},
        {S("{\"task\":\"\xc0\xaf\"}"), ERR_BAD_FRAME, "invalid UTF-8 at byte 9"},         /* overlong "/" */
        {S("{\"task\":\"\xe0\x80\xaf\"}"), ERR_BAD_FRAME, "invalid UTF-8 at byte 9"},     /* overlong */
        {S("{\"task\":\"\xed\xa0\x80\"}"), ERR_BAD_FRAME, "invalid UTF-8 at byte 9"},     /* surrogate */
        {S("{\"task\":\"\xf4\x90\x80\x80\"}"), ERR_BAD_FRAME, "invalid UTF-8 at byte 9"}, /* > U+10FFFF */
        {S("{\"task\":\"\xf0\x80\x80\xaf\"}"), ERR_BAD_FRAME, "invalid UTF-8 at byte 9"}, /* overlong */
        {S("{\"task\":\"a\x80\"}"), ERR_BAD_FRAME, "invalid UTF-8 at byte 10"},
        {S("\xef\xbb\xbf{\"op\":\"ping\"}"), ERR_BAD_FRAME, "invalid JSON at byte 0"}, /* BOM */
        {S("{\"op\":\"ping\"}\xff"), ERR_BAD_FRAME, "invalid UTF-8 at byte 13"},
        /* NUL escapes would silently cut a string short */
        {S("{\"cmd\":\"rm -rf /tmp/x\\u0000 /\"}"), ERR_BAD_REQUEST,
         "strings must not contain \\u0000 (byte 21)"},
        {S("{\"op\\u0000\":\"ping\"}"), ERR_BAD_REQUEST, "strings must not contain \\u0000 (byte 4)"},
        /* depth */
        {S("{\"args\":[[[[\"a\"]]]]}"), ERR_BAD_REQUEST, "nesting too deep (more than 4 levels)"},
        {S("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["), ERR_BAD_REQUEST,
         "nesting too deep (more than 4 levels)"},
        /* shape */
        {S("[]"), ERR_BAD_REQUEST, "a request must be a JSON object"},
        {S("\"ping\""), ERR_BAD_REQUEST, "a request must be a JSON object"},
        {S("17"), ERR_BAD_REQUEST, "a request must be a JSON object"},
        {S("null"), ERR_BAD_REQUEST, "a request must be a JSON object"},
        {S("{}"), ERR_BAD_REQUEST, "missing 'op'"},
        {S("{\"key\":\"k\"}"), ERR_BAD_REQUEST, "missing 'op'"},
        {S("{\"op\":\"ping\",\"verbose\":true}"), ERR_BAD_REQUEST, "unknown key 'verbose'"},
        {S("{\"OP\":\"ping\"}"), ERR_BAD_REQUEST, "unknown key 'OP'"},
        {S("{\"a\\u0001b\":1}"), ERR_BAD_REQUEST, "unknown key 'a?b'"},
        {S("{\"op\":\"ping\",\"op\":\"ping\"}"), ERR_BAD_REQUEST, "duplicate key 'op'"},
        {S("{\"task\":\"a\",\"args\":[],\"args\":[]}"), ERR_BAD_REQUEST, "duplicate key 'args'"},
        {S("{\"op\":1}"), ERR_BAD_REQUEST, "'op' must be a string"},
        {S("{\"op\":null}"), ERR_BAD_REQUEST, "'op' must be a string"},
        {S("{\"op\":\"Ping\"}"), ERR_BAD_REQUEST, "unknown op 'Ping'"},
        {S("{\"op\":\"\"}"), ERR_BAD_REQUEST, "unknown op ''"},
        {S("{\"op\":\"ping\",\"id\":1}"), ERR_BAD_REQUEST, "'id' is not allowed with op 'ping'"},
        {S("{\"op\":\"stats\",\"state\":\"failed\"}"), ERR_BAD_REQUEST,
         "'state' is not allowed with op 'stats'"},
        {S("{\"op\":\"reload\",\"task\":\"x\"}"), ERR_BAD_REQUEST, "'task' is not allowed with op 'reload'"},
        {S("{\"op\":\"status\",\"id\":1,\"timeout\":1}"), ERR_BAD_REQUEST,
         "'timeout' is not allowed with op 'status'"},
        {S("{\"task\":\"a\",\"id\":1}"), ERR_BAD_REQUEST, "'id' is not allowed with op 'submit'"},
        {S("{\"op\":\"list\",\"id\":1}"), ERR_BAD_REQUEST, "'id' is not allowed with op 'list'"},
        /* submit */
        {S("{\"op\":\"submit\"}"), ERR_BAD_REQUEST, "submit needs 'task' or 'cmd'"},
        {S("{\"op\":\"submit\",\"args\":[\"x\"]}"), ERR_BAD_REQUEST, "submit needs 'task' or 'cmd'"},
        {S("{\"task\":\"a\",\"cmd\":\"b\"}"), ERR_BAD_REQUEST, "'task' and 'cmd' are mutually exclusive"},
        {S("{\"task\":1}"), ERR_BAD_REQUEST, "'task' must be a string"},
        {S("{\"task\":[\"a\"]}"), ERR_BAD_REQUEST, "'task' must be a string"},
        {S("{\"task\":\"\"}"), ERR_BAD_REQUEST,
         "invalid task name '': 1 to 64 letters, digits, '_', '.' or '-'"},
        {S("{\"task\":\"a b\"}"), ERR_BAD_REQUEST,
         "invalid task name 'a b': 1 to 64 letters, digits, '_', '.' or '-'"},
        {S("{\"task\":\"../x\"}"), ERR_BAD_REQUEST,
         "invalid task name '../x': 1 to 64 letters, digits, '_', '.' or '-'"},
        {S("{\"task\":\"caf\xc3\xa9\"}"), ERR_BAD_REQUEST,
         "invalid task name 'caf\xc3\xa9': 1 to 64 letters, digits, '_', '.' or '-'"},
        {S("{\"cmd\":true}"), ERR_BAD_REQUEST, "'cmd' must be a string"},
        {S("{\"cmd\":\"\"}"), ERR_BAD_REQUEST, "'cmd' must not be empty"},
        {S("{\"cmd\":\"ls\",\"args\":[\"-l\"]}"), ERR_BAD_REQUEST, "'args' is not allowed with 'cmd'"},
        {S("{\"cmd\":\"ls\",\"args\":[]}"), ERR_BAD_REQUEST, "'args' is not allowed with 'cmd'"},
        {S("{\"cmd\":\"cat\",\"stdin\":\"caf\xc3\xa9\"}"), ERR_BAD_REQUEST,
         "'stdin' is not allowed with 'cmd'"},
        {S("{\"cmd\":\"cat\",\"stdin\":\"\"}"), ERR_BAD_REQUEST, "'stdin' is not allowed with 'cmd'"},
        {S("{\"op\":\"submit\",\"stdin\":\"x\",\"cmd\":\"sh\"}"), ERR_BAD_REQUEST,
         "'stdin' is not allowed with 'cmd'"},
        {S("{\"task\":\"a\",\"args\":\"x\"}"), ERR_BAD_REQUEST, "'args' must be an array of strings"},
        {S("{\"task\":\"a\",\"args\":{}}"), ERR_BAD_REQUEST, "'args' must be an array of strings"},
        {S("{\"task\":\"a\",\"args\":[\"x\",1]}"), ERR_BAD_REQUEST, "'args' element 1 must be a string"},
        {S("{\"task\":\"a\",\"args\":[null]}"), ERR_BAD_REQUEST, "'args' element 0 must be a string"},
        {S("{\"task\":\"a\",\"args\":[[\"x\"]]}"), ERR_BAD_REQUEST, "'args' element 0 must be a string"},
        {S("{\"task\":\"a\",\"key\":\"\"}"), ERR_BAD_REQUEST, "'key' must be 1 to 255 bytes"},
        {S("{\"task\":\"a\",\"key\":5}"), ERR_BAD_REQUEST, "'key' must be a string"},
        {S("{\"task\":\"a\",\"delay\":-1}"), ERR_BAD_REQUEST,
         "'delay' must be an integer from 0 to 31536000"},
        {S("{\"task\":\"a\",\"delay\":31536001}"), ERR_BAD_REQUEST,
         "'delay' must be an integer from 0 to 31536000"},
        {S("{\"task\":\"a\",\"delay\":1.5}"), ERR_BAD_REQUEST,
         "'delay' must be an integer from 0 to 31536000"},
        {S("{\"task\":\"a\",\"delay\":\"5\"}"), ERR_BAD_REQUEST,
         "'delay' must be an integer from 0 to 31536000"},
        {S("{\"task\":\"a\",\"priority\":1001}"), ERR_BAD_REQUEST,
         "'priority' must be an integer from -1000 to 1000"},
        {S("{\"task\":\"a\",\"priority\":-1001}"), ERR_BAD_REQUEST,
         "'priority' must be an integer from -1000 to 1000"},
        {S("{\"task\":\"a\",\"priority\":0.5}"), ERR_BAD_REQUEST,
         "'priority' must be an integer from -1000 to 1000"},
        {S("{\"task\":\"a\",\"priority\":true}"), ERR_BAD_REQUEST,
         "'priority' must be an integer from -1000 to 1000"},
        {S("{\"task\":\"a\",\"stdin\":[]}"), ERR_BAD_REQUEST, "'stdin' must be a string"},
        {S("{\"task\":\"a\",\"stdin\":null}"), ERR_BAD_REQUEST, "'stdin' must be a string"},
        /* ids */
        {S("{\"op\":\"status\"}"), ERR_BAD_REQUEST, "op 'status' needs 'id'"},
        {S("{\"op\":\"wait\",\"timeout\":1}"), ERR_BAD_REQUEST, "op 'wait' needs 'id'"},
        {S("{\"op\":\"cancel\"}"), ERR_BAD_REQUEST, "op 'cancel' needs 'id'"},
        {S("{\"op\":\"forget\"}"), ERR_BAD_REQUEST, "op 'forget' needs 'id'"},
        {S("{\"op\":\"status\",\"id\":0}"), ERR_BAD_REQUEST,
         "'id' must be an integer from 1 to 9007199254740991"},
        {S("{\"op\":\"status\",\"id\":-1}"), ERR_BAD_REQUEST,
         "'id' must be an integer from 1 to 9007199254740991"},
        {S("{\"op\":\"status\",\"id\":1.5}"), ERR_BAD_REQUEST,
         "'id' must be an integer from 1 to 9007199254740991"},
        {S("{\"op\":\"status\",\"id\":\"17\"}"), ERR_BAD_REQUEST,
         "'id' must be an integer from 1 to 9007199254740991"},
        {S("{\"op\":\"status\",\"id\":1e400}"), ERR_BAD_REQUEST,
         "'id' must be an integer from 1 to 9007199254740991"},
        {S("{\"op\":\"status\",\"id\":-1e400}"), ERR_BAD_REQUEST,
         "'id' must be an integer from 1 to 9007199254740991"},
        {S("{\"op\":\"status\",\"id\":9007199254740992}"), ERR_BAD_REQUEST,
         "'id' must be an integer from 1 to 9007199254740991"},
        {S("{\"op\":\"status\",\"id\":9007199254740993}"), ERR_BAD_REQUEST,
         "'id' must be an integer from 1 to 9007199254740991"},
        {S("{\"op\":\"status\",\"id\":18446744073709551617}"), ERR_BAD_REQUEST,
         "'id' must be an integer from 1 to 9007199254740991"},
        {S("{\"op\":\"status\",\"id\":null}"), ERR_BAD_REQUEST,
         "'id' must be an integer from 1 to 9007199254740991"},
        {S("{\"op\":\"status\",\"id\":[1]}"), ERR_BAD_REQUEST,
         "'id' must be an integer from 1 to 9007199254740991"},
        /* wait */
        {S("{\"op\":\"wait\",\"id\":1,\"timeout\":-0.001}"), ERR_BAD_REQUEST,
         "'timeout' must be a number from 0 to 3600"},
        {S("{\"op\":\"wait\",\"id\":1,\"timeout\":3600.001}"), ERR_BAD_REQUEST,
         "'timeout' must be a number from 0 to 3600"},
        {S("{\"op\":\"wait\",\"id\":1,\"timeout\":\"30\"}"), ERR_BAD_REQUEST,
         "'timeout' must be a number from 0 to 3600"},
        {S("{\"op\":\"wait\",\"id\":1,\"timeout\":1e999}"), ERR_BAD_REQUEST,
         "'timeout' must be a number from 0 to 3600"},
        /* retry */
        {S("{\"op\":\"retry\"}"), ERR_BAD_REQUEST, "retry needs 'id' or 'state'"},
        {S("{\"op\":\"retry\",\"id\":1,\"state\":\"failed\"}"), ERR_BAD_REQUEST,
         "retry takes 'id' or 'state', not both"},
        {S("{\"op\":\"retry\",\"state\":\"queued\"}"), ERR_BAD_REQUEST,
         "retry takes 'state' \"failed\" or \"cancelled\", not 'queued'"},
        {S("{\"op\":\"retry\",\"state\":\"broken\"}"), ERR_BAD_REQUEST,
         "unknown state 'broken' (queued, running, succeeded, failed or cancelled)"},
        {S("{\"op\":\"retry\",\"state\":1}"), ERR_BAD_REQUEST, "'state' must be a string"},
        /* list */
        {S("{\"op\":\"list\",\"state\":\"FAILED\"}"), ERR_BAD_REQUEST,
         "unknown state 'FAILED' (queued, running, succeeded, failed or cancelled)"},
        {S("{\"op\":\"list\",\"limit\":0}"), ERR_BAD_REQUEST, "'limit' must be an integer from 1 to 10000"},
        {S("{\"op\":\"list\",\"after_id\":-1}"), ERR_BAD_REQUEST,
         "'after_id' must be an integer from 0 to 9007199254740991"},
        {S("{\"op\":\"list\",\"after_id\":\"3\"}"), ERR_BAD_REQUEST,
         "'after_id' must be an integer from 0 to 9007199254740991"},
        {S("{\"op\":\"status\",\"id\":1,\"after_id\":3}"), ERR_BAD_REQUEST,
         "'after_id' is not allowed with op 'status'"},
        {S("{\"op\":\"list\",\"limit\":10001}"), ERR_BAD_REQUEST,
         "'limit' must be an integer from 1 to 10000"},
        {S("{\"op\":\"list\",\"limit\":2.5}"), ERR_BAD_REQUEST,
         "'limit' must be an integer from 1 to 10000"},
        /* seed frames go to the seed parser */
        {S("s:3:\"ls\";"), ERR_BAD_FRAME, "seed frame: string length 3 does not match the data at byte 4"},
        {S("O:3:\"Foo\":1:{}"), ERR_BAD_FRAME, "seed frame: object at byte 12 claims 1 elements but has 0"},
};

static void test_request_bad(void **state) {
        unsigned failures = 0;

        for (size_t i = 0; i < ELEMENTSOF(bad_cases); i++) {
                const BadCase *c = &bad_cases[i];
                Request req = {};
                ErrorReply err = {};
                int r;

                r = decode_frame(c->input, c->len, &req, &err);
                if (r != -EBADMSG || err.code != c->code || !streq(err.message, c->message)) {
                        print_error("input %zu '%.*s': got %d %s '%s', want %s '%s'\n", i, (int) c->len,
                                    c->input, r, error_code_to_string(err.code), err.message,
                                    error_code_to_string(c->code), c->message);
                        failures++;
                }
                /* A refused request owns nothing. */
                assert_null(req.task);
                assert_null(req.cmd);
                assert_null(req.args);
                assert_null(req.stdin_data);
                if (r == 0)
                        request_done(&req);
        }
        assert_int_equal(failures, 0);
}

/* ---- requests that must be accepted: every field as parsed ---- */

typedef struct GoodCase {
        const char *input;
        Request want;            /* strings compared by content; args by args_joined */
        const char *args_joined; /* args joined with '|', NULL for none */
} GoodCase;

static const GoodCase good_cases[] = {
        {.input = "{\"op\":\"ping\"}", .want = {.op = OP_PING}},
        {.input = "  {  \"op\" : \"ping\" }  \t", .want = {.op = OP_PING}},
        {.input = "{\"op\":\"stats\"}", .want = {.op = OP_STATS}},
        {.input = "{\"op\":\"reload\"}", .want = {.op = OP_RELOAD}},
        {.input = "{\"op\":\"pause\",\"task\":\"resize\"}", .want = {.op = OP_PAUSE, .task = "resize"}},
        {.input = "{\"op\":\"resume\",\"task\":\"a.b-c_9\"}", .want = {.op = OP_RESUME, .task = "a.b-c_9"}},
        {.input = "{\"op\":\"drain\"}", .want = {.op = OP_DRAIN}},
        {.input = "{\"op\":\"drain\",\"timeout\":2.5}",
         .want = {.op = OP_DRAIN, .timeout_usec = 2500000, .has_timeout = true}},
        {.input = "{\"op\":\"undrain\"}", .want = {.op = OP_UNDRAIN}},
        {.input = "{\"\\u006fp\":\"ping\"}", .want = {.op = OP_PING}},
        {.input = "{\"task\":\"resize\"}", .want = {.op = OP_SUBMIT, .task = "resize"}},
        {.input = "{\"op\":\"submit\",\"task\":\"a.b_c-D9\"}",
         .want = {.op = OP_SUBMIT, .task = "a.b_c-D9"}},
        {.input = "{\"op\":\"submit\",\"task\":\"resize\",\"args\":[\"a.png\",\"b.png\"],\"key\":\"img-42\","
                  "\"delay\":0,"
                  "\"priority\":0,\"stdin\":\"...\"}",
         .want = {.op = OP_SUBMIT,
                  .task = "resize",
                  .n_args = 2,
                  .key = "img-42",
                  .stdin_data = "...",
                  .stdin_len = 3},
         .args_joined = "a.png|b.png"},
        {.input = "{\"task\":\"t\",\"args\":[]}",
         .want = {.op = OP_SUBMIT, .task = "t", .n_args = 0},
         .args_joined = ""},
        {.input = "{\"task\":\"t\",\"args\":[\"\",\"\\u00e9\\n\",\"\\ud83d\\ude00\"]}",
         .want = {.op = OP_SUBMIT, .task = "t", .n_args = 3},
         .args_joined = "|\xc3\xa9\n|\xf0\x9f\x98\x80"},
        {.input = "{\"task\":\"t\",\"delay\":31536000,\"priority\":-1000}",
         .want = {.op = OP_SUBMIT, .task = "t", .delay_sec = 31536000, .priority = -1000}},
        {.input = "{\"task\":\"t\",\"delay\":1e2,\"priority\":1000}",
         .want = {.op = OP_SUBMIT, .task = "t", .delay_sec = 100, .priority = 1000}},
        {.input = "{\"task\":\"t\",\"delay\":-0,\"priority\":5.0}",
         .want = {.op = OP_SUBMIT, .task = "t", .priority = 5}},
        {.input = "{\"task\":\"t\",\"stdin\":\"\"}",
         .want = {.op = OP_SUBMIT, .task = "t", .stdin_data = "", .stdin_len = 0}},
        {.input = "{\"cmd\":\"echo \\\"hello world\\\"\"}",
         .want = {.op = OP_SUBMIT, .cmd = "echo \"hello world\""}},
        {.input = "{\"cmd\":\"cat\",\"key\":\"k\"}", .want = {.op = OP_SUBMIT, .cmd = "cat", .key = "k"}},
        {.input = "{\"op\":\"status\",\"id\":17}", .want = {.op = OP_STATUS, .id = 17, .has_id = true}},
        {.input = "{\"id\":17,\"op\":\"cancel\"}", .want = {.op = OP_CANCEL, .id = 17, .has_id = true}},
        {.input = "{\"op\":\"forget\",\"id\":1}", .want = {.op = OP_FORGET, .id = 1, .has_id = true}},
        {.input = "{\"op\":\"status\",\"id\":9007199254740991}",
         .want = {.op = OP_STATUS, .id = 9007199254740991ULL, .has_id = true}},
        {.input = "{\"op\":\"status\",\"id\":1.7e1}", .want = {.op = OP_STATUS, .id = 17, .has_id = true}},
        {.input = "{\"op\":\"wait\",\"id\":17}", .want = {.op = OP_WAIT, .id = 17, .has_id = true}},
        {.input = "{\"op\":\"wait\",\"id\":17,\"timeout\":30}",
         .want = {.op = OP_WAIT, .id = 17, .has_id = true, .timeout_usec = 30000000, .has_timeout = true}},
        {.input = "{\"op\":\"wait\",\"id\":17,\"timeout\":0.25}",
         .want = {.op = OP_WAIT, .id = 17, .has_id = true, .timeout_usec = 250000, .has_timeout = true}},
        {.input = "{\"op\":\"wait\",\"id\":17,\"timeout\":0}",
         .want = {.op = OP_WAIT, .id = 17, .has_id = true, .timeout_usec = 0, .has_timeout = true}},
        {.input = "{\"op\":\"wait\",\"id\":17,\"timeout\":3600}",
         .want = {.op = OP_WAIT,
                  .id = 17,
                  .has_id = true,
                  .timeout_usec = 3600000000ULL,
                  .has_timeout = true}},
        {.input = "{\"op\":\"retry\",\"id\":17}", .want = {.op = OP_RETRY, .id = 17, .has_id = true}},
        {.input = "{\"op\":\"retry\",\"state\":\"failed\"}",
         .want = {.op = OP_RETRY, .state = TASK_FAILED, .has_state = true}},
        {.input = "{\"op\":\"retry\",\"state\":\"cancelled\"}",
         .want = {.op = OP_RETRY, .state = TASK_CANCELLED, .has_state = true}},
        {.input = "{\"op\":\"list\"}", .want = {.op = OP_LIST, .limit = 100}},
        {.input = "{\"op\":\"list\",\"state\":\"running\",\"limit\":1}",
         .want = {.op = OP_LIST, .state = TASK_RUNNING, .has_state = true, .limit = 1}},
        {.input = "{\"op\":\"list\",\"state\":\"queued\",\"limit\":10000}",
         .want = {.op = OP_LIST, .state = TASK_QUEUED, .has_state = true, .limit = 10000}},
        {.input = "{\"op\":\"list\",\"state\":\"failed\",\"after_id\":9007199254740991,\"limit\":5}",
         .want = {.op = OP_LIST,
                  .state = TASK_FAILED,
                  .has_state = true,
                  .limit = 5,
                  .after_id = 9007199254740991ULL}},
        {.input = "{\"op\":\"list\",\"after_id\":0}", .want = {.op = OP_LIST, .limit = 100}},
        {.input = "{\"op\":\"list\",\"state\":\"succeeded\"}",
         .want = {.op = OP_LIST, .state = TASK_SUCCEEDED, .has_state = true, .limit = 100}},
        {.input = "s:2:\"ls\";", .want = {.op = OP_SUBMIT, .cmd = "ls"}},
};

static void assert_str_or_null(const char *got, const char *want, const char *what, const char *input) {
        if (!streq_ptr(got, want))
                fail_msg("%s: %s is '%s', want '%s'", input, what, got ? got : "(null)",
                         want ? want : "(null)");
}

static void test_request_good(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(good_cases); i++) {
                const GoodCase *c = &good_cases[i];
                const Request *w = &c->want;
                Request req = {};
                ErrorReply err = {};
                int r;

                r = decode_frame(c->input, strlen(c->input), &req, &err);
                if (r != 0)
                        fail_msg("'%s': refused: %s '%s'", c->input, error_code_to_string(err.code),
                                 err.message);
                assert_int_equal(req.op, w->op);
                assert_str_or_null(req.task, w->task, "task", c->input);
                assert_str_or_null(req.cmd, w->cmd, "cmd", c->input);
                assert_null(req.php_class);
                assert_str_or_null(req.key, w->key, "key", c->input);
                assert_str_or_null(req.stdin_data, w->stdin_data, "stdin", c->input);
                assert_int_equal(req.stdin_len, w->stdin_len);
                assert_int_equal(req.delay_sec, w->delay_sec);
                assert_int_equal(req.priority, w->priority);
                assert_int_equal(req.id, w->id);
                assert_int_equal(req.has_id, w->has_id);
                assert_int_equal(req.timeout_usec, w->timeout_usec);
                assert_int_equal(req.has_timeout, w->has_timeout);
                assert_int_equal(req.has_state, w->has_state);
                if (w->has_state)
                        assert_int_equal(req.state, w->state);
                assert_int_equal(req.limit, w->limit);
                assert_true(req.after_id == w->after_id);
                assert_int_equal(req.n_args, w->n_args);
                if (c->args_joined) {
                        char joined[256] = "";
                        assert_non_null(req.args);
                        for (size_t a = 0; a < req.n_args; a++) {
                                if (a > 0)
                                        strcat(joined, "|");
                                strcat(joined, req.args[a]);
                        }
                        assert_null(req.args[req.n_args]);
                        assert_string_equal(joined, c->args_joined);
                } else
                        assert_null(req.args);

                request_done(&req);
                assert_null(req.task);
                assert_null(req.args);
                assert_int_equal(req.n_args, 0);
        }
}

/* ---- limits at N and N+1, built at run time ---- */

static int parse_str(const char *s, Request *req, ErrorReply *err) {
        return decode_frame(s, strlen(s), req, err);
}

static char *repeat(char c, size_t n) {
        char *s = malloc(n + 1);
        assert_non_null(s);
        memset(s, c, n);
        s[n] = '\0';
        return s;
}

static void test_request_string_limits(void **state) {
        Request req = {};
        ErrorReply err = {};
        char buf[16384];
        char *s;

        /* task name: 64 ok, 65 refused */
        s = repeat('t', TASK_NAME_BYTES_MAX);
        snprintf(buf, sizeof(buf), "{\"task\":\"%s\"}", s);
        assert_int_equal(parse_str(buf, &req, &err), 0);
        assert_int_equal(strlen(req.task), TASK_NAME_BYTES_MAX);
        request_done(&req);
        snprintf(buf, sizeof(buf), "{\"task\":\"%st\"}", s);
        assert_int_equal(parse_str(buf, &req, &err), -EBADMSG);
        assert_int_equal(err.code, ERR_BAD_REQUEST);
        assert_non_null(strstr(err.message, "invalid task name"));
        free(s);

        /* key: 255 ok, 256 refused */
        s = repeat('k', TASK_KEY_BYTES_MAX);
        snprintf(buf, sizeof(buf), "{\"task\":\"t\",\"key\":\"%s\"}", s);
        assert_int_equal(parse_str(buf, &req, &err), 0);
        assert_int_equal(strlen(req.key), TASK_KEY_BYTES_MAX);
        request_done(&req);
        snprintf(buf, sizeof(buf), "{\"task\":\"t\",\"key\":\"%sk\"}", s);
        assert_int_equal(parse_str(buf, &req, &err), -EBADMSG);
        assert_string_equal(err.message, "'key' must be 1 to 255 bytes");
        free(s);

        /* one argument: 4096 bytes ok, 4097 refused (bytes after decoding escapes) */
        s = repeat('a', TASK_ARG_BYTES_MAX);
        snprintf(buf, sizeof(buf), "{\"task\":\"t\",\"args\":[\"x\",\"%s\"]}", s);
        assert_int_equal(parse_str(buf, &req, &err), 0);
        assert_int_equal(strlen(req.args[1]), TASK_ARG_BYTES_MAX);
        request_done(&req);
        snprintf(buf, sizeof(buf), "{\"task\":\"t\",\"args\":[\"x\",\"%s\\u00e9\"]}", s + 1);
        assert_int_equal(parse_str(buf, &req, &err), -EBADMSG);
        assert_string_equal(err.message, "'args' element 1 is longer than 4096 bytes");
        free(s);

        /* An unknown key is quoted in the message, cut to a readable length on a character boundary. */
        snprintf(buf, sizeof(buf), "{\"%s\xc3\xa9\":1}",
                 "0123456789012345678901234567890123456789012345678901234567890123");
        assert_int_equal(parse_str(buf, &req, &err), -EBADMSG);
        assert_string_equal(
                err.message,
                "unknown key '0123456789012345678901234567890123456789012345678901234567890123...'");
        snprintf(buf, sizeof(buf), "{\"%s\xc3\xa9\":1}",
                 "012345678901234567890123456789012345678901234567890123456789012");
        assert_int_equal(parse_str(buf, &req, &err), -EBADMSG);
        assert_string_equal(
                err.message,
                "unknown key '012345678901234567890123456789012345678901234567890123456789012...'");
}

static void test_request_args_count(void **state) {
        Request req = {};
        ErrorReply err = {};
        size_t cap = 64 + (TASK_ARGS_MAX + 1) * 4, len;
        char *buf = malloc(cap);

        assert_non_null(buf);
        for (int extra = 0; extra <= 1; extra++) {
                len = (size_t) snprintf(buf, cap, "{\"task\":\"t\",\"args\":[");
                for (int i = 0; i < TASK_ARGS_MAX + extra; i++)
                        len += (size_t) snprintf(buf + len, cap - len, "%s\"%c\"", i ? "," : "",
                                                 'a' + i % 26);
                len += (size_t) snprintf(buf + len, cap - len, "]}");
                if (extra == 0) {
                        assert_int_equal(decode_frame(buf, len, &req, &err), 0);
                        assert_int_equal(req.n_args, TASK_ARGS_MAX);
                        assert_string_equal(req.args[TASK_ARGS_MAX - 1], "v");
                        assert_null(req.args[TASK_ARGS_MAX]);
                        request_done(&req);
                } else {
                        assert_int_equal(decode_frame(buf, len, &req, &err), -EBADMSG);
                        assert_int_equal(err.code, ERR_BAD_REQUEST);
                        assert_string_equal(err.message, "'args' has more than 256 elements");
                }
        }
        free(buf);
}

/* The values of a request are counted before cJSON builds a node for each: the largest valid request
 * passes, a frame of many small values is refused without being parsed, and whatever is inside a
 * string is one value however it looks. */
static void test_request_values_limit(void **state) {
        Request req = {};
        ErrorReply err = {};
        static const char *const fill[] = {"0", "true", "false", "null", "[]", "{}", "\"\""};
        size_t cap = 64 + 16 * (REQUEST_VALUES_MAX + 1) + 4096, len;
        char *buf = malloc(cap);

        assert_non_null(buf);
        /* every key a submit takes, and TASK_ARGS_MAX arguments */
        len = (size_t) snprintf(buf, cap,
                                "{\"op\":\"submit\",\"task\":\"t\",\"key\":\"k\",\"delay\":1,"
                                "\"priority\":2,\"stdin\":\"s\",\"args\":[");
        for (int i = 0; i < TASK_ARGS_MAX; i++)
                len += (size_t) snprintf(buf + len, cap - len, "%s\"a\"", i ? "," : "");
        len += (size_t) snprintf(buf + len, cap - len, "]}");
        assert_int_equal(decode_frame(buf, len, &req, &err), 0);
        assert_int_equal(req.n_args, TASK_ARGS_MAX);
        request_done(&req);

        for (size_t f = 0; f < ELEMENTSOF(fill); f++) {
                len = (size_t) snprintf(buf, cap, "{\"op\":\"ping\",\"x\":[");
                for (int i = 0; i < REQUEST_VALUES_MAX; i++)
                        len += (size_t) snprintf(buf + len, cap - len, "%s%s", i ? "," : "", fill[f]);
                len += (size_t) snprintf(buf + len, cap - len, "]}");
                assert_int_equal(decode_frame(buf, len, &req, &err), -EBADMSG);
                assert_int_equal(err.code, ERR_BAD_REQUEST);
                assert_string_equal(err.message, "too many values (more than 1024)");
        }

        /* one string full of brackets, digits and literal letters is one value */
        len = (size_t) snprintf(buf, cap, "{\"task\":\"t\",\"stdin\":\"");
        for (int i = 0; i < 600; i++)
                len += (size_t) snprintf(buf + len, cap - len, "[0,tfn]");
        len += (size_t) snprintf(buf + len, cap - len, "\"}");
        assert_int_equal(decode_frame(buf, len, &req, &err), 0);
        request_done(&req);
        free(buf);
}

static void test_request_depth_limit(void **state) {
        Request req = {};
        ErrorReply err = {};

        /* Depth 4 passes the depth check (and fails the schema); depth 5 does not. */
        assert_int_equal(parse_str("{\"task\":\"t\",\"args\":[[[\"a\"]]]}", &req, &err), -EBADMSG);
        assert_string_equal(err.message, "'args' element 0 must be a string");
        assert_int_equal(parse_str("{\"task\":\"t\",\"args\":[[[[\"a\"]]]]}", &req, &err), -EBADMSG);
        assert_string_equal(err.message, "nesting too deep (more than 4 levels)");
        /* Brackets inside strings are data, not nesting. */
        assert_int_equal(parse_str("{\"task\":\"t\",\"args\":[\"[[[[[{{{{{\"]}", &req, &err), 0);
        assert_string_equal(req.args[0], "[[[[[{{{{{");
        request_done(&req);
        /* An escaped quote does not end a string. */
        assert_int_equal(parse_str("{\"task\":\"t\",\"args\":[\"\\\"[[[[[\"]}", &req, &err), 0);
        assert_string_equal(req.args[0], "\"[[[[[");
        request_done(&req);
}

static void test_request_done_zeroed(void **state) {
        Request req = {};

        request_done(&req);
        request_done(NULL);
        assert_int_equal(req.op, 0);
}

static void test_utf8_valid_len(void **state) {
        assert_int_equal(utf8_valid_len(S("")), 0);
        assert_int_equal(utf8_valid_len(S("abc")), 3);
        assert_int_equal(utf8_valid_len(S("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80")), 9);
        assert_int_equal(utf8_valid_len(S("ab\xc3")), 2);
        assert_int_equal(utf8_valid_len(S("ab\xc3\xa9\x80")), 4);
        assert_int_equal(utf8_valid_len(S("\xef\xbf\xbf")), 3);     /* U+FFFF */
        assert_int_equal(utf8_valid_len(S("\xf4\x8f\xbf\xbf")), 4); /* U+10FFFF */
        assert_int_equal(utf8_valid_len(S("\xed\x9f\xbf")), 3);     /* U+D7FF */
        assert_int_equal(utf8_valid_len(S("\xed\xa0\x80")), 0);     /* U+D800 */
        assert_int_equal(utf8_valid_len(S("\xf5\x80\x80\x80")), 0);
        assert_int_equal(utf8_valid_len(S("\xc1\xbf")), 0);
        assert_int_equal(utf8_valid_len(S("a\0b")), 3); /* NUL is valid UTF-8; JSON checks it */
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_request_bad),           cmocka_unit_test(test_request_good),
                cmocka_unit_test(test_request_string_limits), cmocka_unit_test(test_request_args_count),
                cmocka_unit_test(test_request_depth_limit),   cmocka_unit_test(test_request_done_zeroed),
                cmocka_unit_test(test_utf8_valid_len),        cmocka_unit_test(test_request_values_limit),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
