/* SPDX-License-Identifier: MIT */
/* Tests of the client's pure parts: command line, requests, output formatting and exit codes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cli/cli-args.h"
#include "cli/cli-format.h"
#include "shared/limits.h"
#include "shared/util.h"

/* ---- helpers ---------------------------------------------------------------------------------- */

#define MAX_ARGV 32

/* Parses a command line given as separate strings (argv[0] is added). */
static int parse_v(CliOptions *o, char *err, size_t err_size, const char *env, const char *first,
                   va_list ap) {
        static char *argv[MAX_ARGV];
        int argc = 0;

        argv[argc++] = (char *) "asynctask";
        for (const char *a = first; a; a = va_arg(ap, const char *)) {
                assert_true(argc < MAX_ARGV - 1);
                argv[argc++] = (char *) a;
        }
        argv[argc] = NULL;
        return cli_parse_args(argc, argv, env, o, err, err_size);
}

static int parse_env(CliOptions *o, const char *env, const char *first, ...) {
        char err[256] = "";
        va_list ap;

        va_start(ap, first);
        int r = parse_v(o, err, sizeof(err), env, first, ap);
        va_end(ap);
        if (r < 0)
                assert_true(err[0] != 0); /* every usage error says what is wrong */
        return r;
}

#define parse(o, ...)    parse_env(o, NULL, __VA_ARGS__, NULL)
#define parse_ok(o, ...) assert_int_equal(parse(o, __VA_ARGS__), 0)
#define parse_bad(...)                                                                                      \
        do {                                                                                                \
                CliOptions _o;                                                                              \
                assert_int_equal(parse(&_o, __VA_ARGS__), -EINVAL);                                         \
        } while (0)

/* Usage error text for a command line, to check the message names the problem. */
static void parse_error_mentions_(const char *needle, const char *first, ...) {
        char err[256] = "";
        CliOptions o;
        va_list ap;

        va_start(ap, first);
        int r = parse_v(&o, err, sizeof(err), NULL, first, ap);
        va_end(ap);
        assert_int_equal(r, -EINVAL);
        if (!strstr(err, needle))
                fail_msg("error '%s' does not mention '%s'", err, needle);
}

#define parse_error_mentions(needle, ...) parse_error_mentions_(needle, __VA_ARGS__, NULL)

static char *request_string(cJSON *req) {
        assert_non_null(req);
        char *s = cJSON_PrintUnformatted(req);
        cJSON_Delete(req);
        assert_non_null(s);
        return s;
}

static void assert_request(const CliOptions *o, const char *stdin_data, const char *expected) {
        char *s = request_string(cli_build_request(o, stdin_data, stdin_data ? strlen(stdin_data) : 0));
        assert_string_equal(s, expected);
        free(s);
}

static cJSON *json(const char *text) {
        cJSON *j = cJSON_Parse(text);
        assert_non_null(j);
        return j;
}

/* Runs a printer into a string. */
#define CAPTURE(buf, call)                                                                                  \
        do {                                                                                                \
                size_t _size = 0;                                                                           \
                FILE *f = open_memstream(&(buf), &_size);                                                   \
                assert_non_null(f);                                                                         \
                call;                                                                                       \
                assert_int_equal(fclose(f), 0);                                                             \
        } while (0)

static void assert_contains(const char *haystack, const char *needle) {
        if (!strstr(haystack, needle))
                fail_msg("expected to find '%s' in:\n%s", needle, haystack);
}

static void assert_not_contains(const char *haystack, const char *needle) {
        if (strstr(haystack, needle))
                fail_msg("did not expect '%s' in:\n%s", needle, haystack);
}

static int set_tz_cet(void **state) {
        /* A POSIX TZ rule needs no tzdata: CET, CEST from the last Sunday of March to that of October. */
        setenv("TZ", "CET-1CEST,M3.5.0,M10.5.0/3", 1);
        tzset();
        return 0;
}

/* ---- numbers ---------------------------------------------------------------------------------- */

static void test_parse_uint(void **state) {
        uint64_t v = 42;

        assert_int_equal(cli_parse_uint("0", 0, 10, &v), 0);
        assert_int_equal(v, 0);
        assert_int_equal(cli_parse_uint("10", 0, 10, &v), 0);
        assert_int_equal(v, 10);
        assert_int_equal(cli_parse_uint("11", 0, 10, &v), -ERANGE);
        assert_int_equal(cli_parse_uint("0", 1, 10, &v), -ERANGE);
        assert_int_equal(cli_parse_uint("18446744073709551615", 0, UINT64_MAX, &v), 0);
        assert_true(v == UINT64_MAX);
        assert_int_equal(cli_parse_uint("18446744073709551616", 0, UINT64_MAX, &v), -ERANGE);
        v = 7;
        assert_int_equal(cli_parse_uint("", 0, 10, &v), -EINVAL);
        assert_int_equal(cli_parse_uint("-1", 0, 10, &v), -EINVAL);
        assert_int_equal(cli_parse_uint("+1", 0, 10, &v), -EINVAL);
        assert_int_equal(cli_parse_uint(" 1", 0, 10, &v), -EINVAL);
        assert_int_equal(cli_parse_uint("1 ", 0, 10, &v), -EINVAL);
        assert_int_equal(cli_parse_uint("1x", 0, 10, &v), -EINVAL);
        assert_int_equal(cli_parse_uint("0x1", 0, 10, &v), -EINVAL);
        assert_int_equal(cli_parse_uint(NULL, 0, 10, &v), -EINVAL);
        assert_int_equal(v, 7); /* untouched on failure */
}

static void test_parse_int(void **state) {
        int64_t v;

        assert_int_equal(cli_parse_int("-5", -10, 10, &v), 0);
        assert_int_equal(v, -5);
        assert_int_equal(cli_parse_int("+5", -10, 10, &v), 0);
        assert_int_equal(v, 5);
        assert_int_equal(cli_parse_int("-10", -10, 10, &v), 0);
        assert_int_equal(cli_parse_int("-11", -10, 10, &v), -ERANGE);
        assert_int_equal(cli_parse_int("-9223372036854775808", INT64_MIN, INT64_MAX, &v), 0);
        assert_true(v == INT64_MIN);
        assert_int_equal(cli_parse_int("-9223372036854775809", INT64_MIN, INT64_MAX, &v), -ERANGE);
        assert_int_equal(cli_parse_int("9223372036854775807", INT64_MIN, INT64_MAX, &v), 0);
        assert_true(v == INT64_MAX);
        assert_int_equal(cli_parse_int("9223372036854775808", INT64_MIN, INT64_MAX, &v), -ERANGE);
        assert_int_equal(cli_parse_int("-", -10, 10, &v), -EINVAL);
        assert_int_equal(cli_parse_int("--1", -10, 10, &v), -EINVAL);
}

static void test_parse_host_port(void **state) {
        char host[64];
        uint16_t port;

        assert_int_equal(cli_parse_host_port("127.0.0.1:9501", host, sizeof(host), &port), 0);
        assert_string_equal(host, "127.0.0.1");
        assert_int_equal(port, 9501);
        assert_int_equal(cli_parse_host_port("[::1]:1", host, sizeof(host), &port), 0);
        assert_string_equal(host, "::1");
        assert_int_equal(port, 1);
        assert_int_equal(cli_parse_host_port("localhost:65535", host, sizeof(host), &port), 0);
        assert_int_equal(port, 65535);

        assert_int_equal(cli_parse_host_port("localhost:65536", host, sizeof(host), &port), -EINVAL);
        assert_int_equal(cli_parse_host_port("localhost:0", host, sizeof(host), &port), -EINVAL);
        assert_int_equal(cli_parse_host_port("localhost:", host, sizeof(host), &port), -EINVAL);
        assert_int_equal(cli_parse_host_port("localhost", host, sizeof(host), &port), -EINVAL);
        assert_int_equal(cli_parse_host_port(":9501", host, sizeof(host), &port), -EINVAL);
        assert_int_equal(cli_parse_host_port("::1:9501", host, sizeof(host), &port), -EINVAL);
        assert_int_equal(cli_parse_host_port("[::1]9501", host, sizeof(host), &port), -EINVAL);
        assert_int_equal(cli_parse_host_port("[::1:9501", host, sizeof(host), &port), -EINVAL);
        assert_int_equal(cli_parse_host_port("[]:9501", host, sizeof(host), &port), -EINVAL);
        assert_int_equal(cli_parse_host_port("h:http", host, sizeof(host), &port), -EINVAL);

        /* host buffer: a host of size-1 bytes fits, one more does not */
        char small[5];
        assert_int_equal(cli_parse_host_port("abcd:1", small, sizeof(small), &port), 0);
        assert_string_equal(small, "abcd");
        assert_int_equal(cli_parse_host_port("abcde:1", small, sizeof(small), &port), -EINVAL);
}

/* ---- command line ----------------------------------------------------------------------------- */

static void test_args_help_version(void **state) {
        CliOptions o;

        parse_ok(&o, "--help");
        assert_int_equal(o.command, CLI_HELP);
        parse_ok(&o, "-h");
        assert_int_equal(o.command, CLI_HELP);
        parse_ok(&o, "help");
        assert_int_equal(o.command, CLI_HELP);
        /* help wins over what would otherwise be an error (submit without TASK) */
        parse_ok(&o, "submit", "--help");
        assert_int_equal(o.command, CLI_HELP);
        parse_ok(&o, "--version");
        assert_int_equal(o.command, CLI_VERSION);
        parse_ok(&o, "status", "--version");
        assert_int_equal(o.command, CLI_VERSION);
        parse_bad("--help=x");
        /* "version" is not a command (it could be a task's name) */
        parse_bad("version");
}

static void test_args_no_command(void **state) {
        parse_error_mentions_("no command", NULL);
        parse_error_mentions("no command", "--json");
        parse_error_mentions("unknown command 'frobnicate'", "frobnicate");
        parse_error_mentions("unknown option '--frob'", "--frob");
        parse_error_mentions("unknown option '-x'", "ping", "-x");
        /* short options do not bundle or take attached values */
        parse_bad("logs", "1", "-fh");
}

static void test_args_submit_task(void **state) {
        CliOptions o;

        parse_ok(&o, "submit", "checksum");
        assert_int_equal(o.command, CLI_SUBMIT);
        assert_string_equal(o.task, "checksum");
        assert_int_equal(o.n_args, 0);
        assert_false(o.wait);
        assert_false(o.json);
        assert_null(o.cmd);

        /* Everything after TASK is an argument, even when it looks like an option. */
        parse_ok(&o, "submit", "--json", "grep", "-v", "--json", "--", "a b;c");
        assert_true(o.json);
        assert_string_equal(o.task, "grep");
        assert_int_equal(o.n_args, 4);
        assert_string_equal(o.args[0], "-v");
        assert_string_equal(o.args[1], "--json");
        assert_string_equal(o.args[2], "--");
        assert_string_equal(o.args[3], "a b;c");

        /* "--" lets TASK start with a dash */
        parse_ok(&o, "submit", "--", "-odd", "x");
        assert_string_equal(o.task, "-odd");
        assert_int_equal(o.n_args, 1);

        parse_ok(&o, "submit", "--wait", "--timeout", "30", "--key=img-42", "--delay", "5", "--priority=-3",
                 "--stdin-file", "-", "resize", "a.png");
        assert_true(o.wait);
        assert_true(o.has_timeout);
        assert_int_equal(o.timeout_sec, 30);
        assert_string_equal(o.key, "img-42");
        assert_true(o.has_delay);
        assert_int_equal(o.delay_sec, 5);
        assert_true(o.has_priority);
        assert_int_equal(o.priority, -3);
        assert_string_equal(o.stdin_file, "-");
        assert_string_equal(o.task, "resize");

        parse_error_mentions("needs a TASK", "submit");
        parse_error_mentions("needs a TASK", "submit", "--wait");
        parse_error_mentions("not be empty", "submit", "");
        parse_error_mentions("--timeout needs --wait", "submit", "--timeout", "3", "t");
        parse_error_mentions("--key needs a value", "submit", "--key");
        parse_error_mentions("--key must not be empty", "submit", "--key=", "t");
        parse_error_mentions("--wait takes no value", "submit", "--wait=yes", "t");
        parse_error_mentions("not a global option", "--wait", "submit", "t");
        parse_error_mentions("not an option of 'submit'", "submit", "--state", "failed", "t");
}

static void test_args_submit_cmd(void **state) {
        CliOptions o;

        parse_ok(&o, "submit", "--cmd", "echo \"hello world\"", "--wait");
        assert_string_equal(o.cmd, "echo \"hello world\"");
        assert_null(o.task);
        assert_true(o.wait);
        parse_ok(&o, "submit", "--cmd=a=b");
        assert_string_equal(o.cmd, "a=b");

        parse_error_mentions("not both", "submit", "--cmd", "ls", "t");
        parse_error_mentions("--cmd must not be empty", "submit", "--cmd", "");
        parse_error_mentions("--cmd needs a value", "submit", "--cmd");
}

static void test_args_numbers_at_limits(void **state) {
        char buf[64];
        CliOptions o;

        parse_ok(&o, "submit", "--delay", "0", "t");
        assert_int_equal(o.delay_sec, 0);
        snprintf(buf, sizeof(buf), "%d", DELAY_SEC_MAX);
        parse_ok(&o, "submit", "--delay", buf, "t");
        assert_int_equal(o.delay_sec, DELAY_SEC_MAX);
        snprintf(buf, sizeof(buf), "%d", DELAY_SEC_MAX + 1);
        parse_error_mentions("--delay", "submit", "--delay", buf, "t");
        parse_error_mentions("not '-1'", "submit", "--delay", "-1", "t");
        parse_error_mentions("not '1.5'", "submit", "--delay", "1.5", "t");

        parse_ok(&o, "submit", "--wait", "--timeout", "0", "t");
        assert_true(o.has_timeout);
        assert_int_equal(o.timeout_sec, 0);
        snprintf(buf, sizeof(buf), "%llu", (unsigned long long) CLI_TIMEOUT_SEC_MAX);
        parse_ok(&o, "wait", "7", "--timeout", buf);
        assert_true(o.timeout_sec == CLI_TIMEOUT_SEC_MAX);
        snprintf(buf, sizeof(buf), "%llu", (unsigned long long) CLI_TIMEOUT_SEC_MAX + 1);
        parse_bad("wait", "7", "--timeout", buf);
        parse_bad("wait", "7", "--timeout", "soon");

        parse_ok(&o, "submit", "--priority", "2147483647", "t");
        assert_int_equal(o.priority, 2147483647);
        parse_ok(&o, "submit", "--priority", "-2147483648", "t");
        assert_int_equal(o.priority, -2147483647 - 1);
        parse_bad("submit", "--priority", "2147483648", "t");
        parse_bad("submit", "--priority", "-2147483649", "t");
        parse_bad("submit", "--priority", "high", "t");

        parse_bad("list", "--limit", "0");
        parse_ok(&o, "list", "--limit", "1");
        assert_int_equal(o.limit, 1);
        snprintf(buf, sizeof(buf), "%d", LIST_LIMIT_MAX);
        parse_ok(&o, "list", "--limit", buf);
        assert_int_equal(o.limit, LIST_LIMIT_MAX);
        snprintf(buf, sizeof(buf), "%d", LIST_LIMIT_MAX + 1);
        parse_bad("list", "--limit", buf);
}

static void test_args_ids(void **state) {
        static const CliCommand with_id[] = {CLI_STATUS, CLI_WAIT, CLI_CANCEL,
                                             CLI_FORGET, CLI_LOGS, CLI_RETRY};
        CliOptions o;

        for (size_t i = 0; i < ELEMENTSOF(with_id); i++) {
                const char *name = cli_command_to_string(with_id[i]);
                parse_ok(&o, name, "17");
                assert_int_equal(o.command, with_id[i]);
                assert_true(o.has_id);
                assert_int_equal(o.id, 17);
                parse_bad(name);
                parse_bad(name, "0");
                parse_bad(name, "-1");
                parse_bad(name, "x");
                parse_bad(name, "1", "2");
        }
        /* ids travel as JSON numbers: 2^53 - 1 is the largest that survives a double */
        parse_ok(&o, "status", "9007199254740991");
        assert_true(o.id == 9007199254740991ULL);
        parse_bad("status", "9007199254740992");
}

static void test_args_list_retry_logs(void **state) {
        CliOptions o;

        parse_ok(&o, "list");
        assert_int_equal(o.command, CLI_LIST);
        assert_null(o.state);
        assert_false(o.has_limit);
        assert_true(o.after_id == 0);
        parse_ok(&o, "list", "--state", "failed", "--limit=50");
        assert_string_equal(o.state, "failed");
        assert_int_equal(o.limit, 50);
        parse_ok(&o, "list", "--after", "9007199254740991");
        assert_true(o.after_id == 9007199254740991ULL);
        assert_false(o.has_limit);
        parse_error_mentions("--after wants a task id", "list", "--after", "9007199254740992");
        parse_error_mentions("--after wants a task id", "list", "--after", "x");
        parse_error_mentions("not an option of 'status'", "status", "1", "--after", "3");
        parse_error_mentions("unknown state 'broken'", "list", "--state", "broken");
        parse_error_mentions("unexpected argument 'x'", "list", "x");

        parse_ok(&o, "retry", "--failed");
        assert_true(o.failed);
        assert_false(o.has_id);
        parse_error_mentions("not both", "retry", "--failed", "3");
        parse_error_mentions("needs a task id", "retry");
        parse_error_mentions("not an option of 'status'", "status", "1", "--failed");

        parse_ok(&o, "logs", "3", "-f");
        assert_true(o.follow);
        parse_ok(&o, "logs", "--follow", "3");
        assert_true(o.follow);
        parse_ok(&o, "logs", "3");
        assert_false(o.follow);
        parse_bad("status", "3", "-f");

        parse_ok(&o, "stats");
        assert_int_equal(o.command, CLI_STATS);
        parse_ok(&o, "ping");
        assert_int_equal(o.command, CLI_PING);
        parse_ok(&o, "reload");
        assert_int_equal(o.command, CLI_RELOAD);
        parse_bad("ping", "now");

        parse_ok(&o, "pause", "resize");
        assert_int_equal(o.command, CLI_PAUSE);
        assert_string_equal(o.task, "resize");
        parse_error_mentions("'resume' needs a task name", "resume");
        parse_bad("pause", "a", "b");
        parse_bad("pause", "--timeout", "3", "a");
        parse_ok(&o, "drain");
        assert_int_equal(o.command, CLI_DRAIN);
        assert_false(o.has_timeout);
        parse_ok(&o, "drain", "--timeout", "30");
        assert_true(o.has_timeout);
        assert_int_equal(o.timeout_sec, 30);
        parse_bad("drain", "now");
        parse_bad("undrain", "--timeout", "3");
}

static void test_args_connection(void **state) {
        char path[200];
        CliOptions o;

        parse_ok(&o, "ping");
        assert_string_equal(o.socket_path, "/run/asynctask/asynctask.sock");
        assert_null(o.tcp);

        assert_int_equal(parse_env(&o, "/tmp/a.sock", "ping", NULL), 0);
        assert_string_equal(o.socket_path, "/tmp/a.sock");
        assert_int_equal(parse_env(&o, "", "ping", NULL), 0);
        assert_string_equal(o.socket_path, "/run/asynctask/asynctask.sock");
        /* the option wins over the environment, before or after the command */
        assert_int_equal(parse_env(&o, "/tmp/a.sock", "ping", "--socket", "/tmp/b.sock", NULL), 0);
        assert_string_equal(o.socket_path, "/tmp/b.sock");
        assert_int_equal(parse_env(&o, "/tmp/a.sock", "--socket=/tmp/c.sock", "ping", NULL), 0);
        assert_string_equal(o.socket_path, "/tmp/c.sock");
        /* --tcp replaces the socket, also the one from the environment */
        assert_int_equal(parse_env(&o, "/tmp/a.sock", "--tcp", "127.0.0.1:9501", "ping", NULL), 0);
        assert_string_equal(o.tcp, "127.0.0.1:9501");
        assert_null(o.socket_path);

        parse_error_mentions("cannot be used together", "--socket", "/s", "--tcp", "h:1", "ping");
        parse_error_mentions("HOST:PORT", "--tcp", "h", "ping");
        parse_error_mentions("needs a path", "--socket=", "ping");

        /* sun_path holds 107 bytes and the NUL */
        memset(path, 'a', 107);
        path[0] = '/';
        path[107] = 0;
        parse_ok(&o, "--socket", path, "ping");
        path[107] = 'a';
        path[108] = 0;
        parse_error_mentions("too long", "--socket", path, "ping");
        assert_int_equal(parse_env(&o, path, "ping", NULL), -EINVAL);
}

/* ---- requests --------------------------------------------------------------------------------- */

static void test_requests(void **state) {
        CliOptions o;

        parse_ok(&o, "submit", "checksum");
        assert_request(&o, NULL, "{\"op\":\"submit\",\"task\":\"checksum\"}");

        parse_ok(&o, "submit", "--key", "k", "--delay", "0", "--priority", "-2", "t", "a b", "$(x)", "it's");
        assert_request(
                &o, "in\n",
                "{\"op\":\"submit\",\"task\":\"t\",\"args\":[\"a b\",\"$(x)\",\"it's\"],\"key\":\"k\","
                "\"delay\":0,\"priority\":-2,\"stdin\":\"in\\n\"}");

        parse_ok(&o, "submit", "--cmd", "echo \"hello world\"");
        assert_request(&o, NULL, "{\"op\":\"submit\",\"cmd\":\"echo \\\"hello world\\\"\"}");

        /* stdin with a NUL cannot be a JSON string through cJSON: refused rather than cut short */
        parse_ok(&o, "submit", "t");
        assert_null(cli_build_request(&o, "a\0b", 3));

        parse_ok(&o, "status", "17");
        assert_request(&o, NULL, "{\"op\":\"status\",\"id\":17}");
        parse_ok(&o, "cancel", "17");
        assert_request(&o, NULL, "{\"op\":\"cancel\",\"id\":17}");
        parse_ok(&o, "forget", "9007199254740991");
        assert_request(&o, NULL, "{\"op\":\"forget\",\"id\":9007199254740991}");
        parse_ok(&o, "retry", "17");
        assert_request(&o, NULL, "{\"op\":\"retry\",\"id\":17}");
        parse_ok(&o, "retry", "--failed");
        assert_request(&o, NULL, "{\"op\":\"retry\",\"state\":\"failed\"}");
        parse_ok(&o, "list");
        assert_request(&o, NULL, "{\"op\":\"list\"}");
        parse_ok(&o, "list", "--state", "failed", "--limit", "50");
        assert_request(&o, NULL, "{\"op\":\"list\",\"state\":\"failed\",\"limit\":50}");
        parse_ok(&o, "stats");
        assert_request(&o, NULL, "{\"op\":\"stats\"}");
        parse_ok(&o, "ping");
        assert_request(&o, NULL, "{\"op\":\"ping\"}");
        parse_ok(&o, "reload");
        assert_request(&o, NULL, "{\"op\":\"reload\"}");
        parse_ok(&o, "pause", "resize");
        assert_request(&o, NULL, "{\"op\":\"pause\",\"task\":\"resize\"}");
        parse_ok(&o, "resume", "resize");
        assert_request(&o, NULL, "{\"op\":\"resume\",\"task\":\"resize\"}");
        parse_ok(&o, "undrain");
        assert_request(&o, NULL, "{\"op\":\"undrain\"}");
        {
                _cleanup_free_ char *drain = request_string(cli_drain_request(3600));
                assert_string_equal(drain, "{\"op\":\"drain\",\"timeout\":3600}");
        }

        /* built elsewhere or not at all */
        parse_ok(&o, "wait", "3");
        assert_null(cli_build_request(&o, NULL, 0));
        parse_ok(&o, "drain");
        assert_null(cli_build_request(&o, NULL, 0));
        parse_ok(&o, "logs", "3");
        assert_null(cli_build_request(&o, NULL, 0));

        char *s = request_string(cli_wait_request(17, WAIT_SEC_MAX));
        assert_string_equal(s, "{\"op\":\"wait\",\"id\":17,\"timeout\":3600}");
        free(s);
        s = request_string(cli_wait_request(5, 0));
        assert_string_equal(s, "{\"op\":\"wait\",\"id\":5,\"timeout\":0}");
        free(s);
}

/* ---- exit codes ------------------------------------------------------------------------------- */

static void test_exit_code_for_error(void **state) {
        static const char *const refused[] = {
                "forbidden", "unknown_task", "command_not_allowed", "bad_request",
                "not_found", "bad_frame",    "frame_too_large",     "quota_exceeded",
        };

        for (size_t i = 0; i < ELEMENTSOF(refused); i++)
                assert_int_equal(cli_exit_code_for_error(refused[i]), CLI_EXIT_REFUSED);
        assert_int_equal(cli_exit_code_for_error("unavailable"), CLI_EXIT_UNAVAILABLE);
        assert_int_equal(cli_exit_code_for_error("internal"), CLI_EXIT_INTERNAL);
        assert_int_equal(cli_exit_code_for_error("something_new"), CLI_EXIT_INTERNAL);
        assert_int_equal(cli_exit_code_for_error(NULL), CLI_EXIT_INTERNAL);
}

static void test_exit_code_for_task(void **state) {
        static const struct {
                const char *record;
                int code;
        } cases[] = {
                {"{\"state\":\"succeeded\",\"exit_status\":0}", 0},
                {"{\"state\":\"failed\",\"result\":\"exit-code\",\"exit_status\":3}", 3},
                {"{\"state\":\"failed\",\"result\":\"exit-code\",\"exit_status\":1}", 1},
                {"{\"state\":\"failed\",\"result\":\"exit-code\",\"exit_status\":255}", 255},
                {"{\"state\":\"failed\",\"result\":\"exit-code\",\"exit_status\":256}", 1},
                {"{\"state\":\"failed\",\"result\":\"exit-code\",\"exit_status\":0}", 1},
                {"{\"state\":\"failed\",\"result\":\"signal\",\"exit_status\":null,\"signal\":9}", 1},
                {"{\"state\":\"failed\",\"result\":\"timeout\"}", 1},
                {"{\"state\":\"failed\",\"result\":\"exit-code\",\"exit_status\":2.5}", 1},
                {"{\"state\":\"cancelled\",\"result\":\"cancelled\",\"exit_status\":null}", 1},
                {"{\"state\":\"cancelled\",\"result\":\"exit-code\",\"exit_status\":143}", 143},
                {"{\"state\":\"queued\"}", CLI_EXIT_TIMEOUT},
                {"{\"state\":\"running\"}", CLI_EXIT_TIMEOUT},
                {"{\"state\":\"exploded\"}", CLI_EXIT_INTERNAL},
                {"{\"id\":1}", CLI_EXIT_INTERNAL},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                cJSON *r = json(cases[i].record);
                if (cli_exit_code_for_task(r) != cases[i].code)
                        fail_msg("%s: got %d, want %d", cases[i].record, cli_exit_code_for_task(r),
                                 cases[i].code);
                cJSON_Delete(r);
        }
}

/* ---- time ------------------------------------------------------------------------------------- */

static void test_parse_timestamp(void **state) {
        int64_t usec;

        assert_int_equal(cli_parse_timestamp("1970-01-01T00:00:00.000Z", &usec), 0);
        assert_true(usec == 0);
        assert_int_equal(cli_parse_timestamp("2026-11-26T17:00:00.123Z", &usec), 0);
        assert_true(usec == 1795712400123000LL);
        assert_int_equal(cli_parse_timestamp("2026-11-26T17:00:00Z", &usec), 0);
        assert_true(usec == 1795712400000000LL);
        assert_int_equal(cli_parse_timestamp("2026-11-26T17:00:00.1Z", &usec), 0);
        assert_true(usec == 1795712400100000LL);
        assert_int_equal(cli_parse_timestamp("2026-11-26T17:00:00.123456789Z", &usec), 0);
        assert_true(usec == 1795712400123456LL);
        assert_int_equal(cli_parse_timestamp("2024-02-29T23:59:59.999Z", &usec), 0);

        usec = 42;
        assert_int_equal(cli_parse_timestamp("2026-11-26T17:00:00.1234567890Z", &usec), -EINVAL);
        assert_int_equal(cli_parse_timestamp("2026-11-26T17:00:00.Z", &usec), -EINVAL);
        assert_int_equal(cli_parse_timestamp("2026-11-26T17:00:00.123", &usec), -EINVAL);
        assert_int_equal(cli_parse_timestamp("2026-11-26T17:00:00.123Zx", &usec), -EINVAL);
        assert_int_equal(cli_parse_timestamp("2026-11-26 17:00:00Z", &usec), -EINVAL);
        assert_int_equal(cli_parse_timestamp("2026-13-01T00:00:00Z", &usec), -EINVAL);
        assert_int_equal(cli_parse_timestamp("2026-00-01T00:00:00Z", &usec), -EINVAL);
        assert_int_equal(cli_parse_timestamp("2025-02-29T00:00:00Z", &usec), -EINVAL);
        assert_int_equal(cli_parse_timestamp("2026-11-26T24:00:00Z", &usec), -EINVAL);
        assert_int_equal(cli_parse_timestamp("26-11-26T17:00:00Z", &usec), -EINVAL);
        assert_int_equal(cli_parse_timestamp("", &usec), -EINVAL);
        assert_int_equal(cli_parse_timestamp(NULL, &usec), -EINVAL);
        assert_true(usec == 42);
}

static void test_format_time(void **state) {
        char buf[64];

        cli_format_time("2026-11-26T17:00:00.123Z", true, buf, sizeof(buf));
        assert_string_equal(buf, "2026-11-26 18:00:00.123 CET");
        cli_format_time("2026-11-26T17:00:00.123Z", false, buf, sizeof(buf));
        assert_string_equal(buf, "2026-11-26 18:00:00");
        cli_format_time("2026-07-01T23:30:00.005Z", true, buf, sizeof(buf));
        assert_string_equal(buf, "2026-07-02 01:30:00.005 CEST");
        cli_format_time(NULL, true, buf, sizeof(buf));
        assert_string_equal(buf, "-");
        /* something this client cannot read is shown as it came */
        cli_format_time("yesterday", true, buf, sizeof(buf));
        assert_string_equal(buf, "yesterday");
        /* a short buffer truncates, never overflows */
        cli_format_time("2026-11-26T17:00:00.123Z", true, buf, 5);
        assert_string_equal(buf, "2026");
}

/* ---- text ------------------------------------------------------------------------------------- */

static void test_shell_quote(void **state) {
        static const struct {
                const char *in, *out;
        } cases[] = {
                {"abc", "abc"},
                {"/tmp/a-b_c.txt", "/tmp/a-b_c.txt"},
                {"k=v,x:y@z%+", "k=v,x:y@z%+"},
                {"", "''"},
                {"a b", "'a b'"},
                {"it's", "'it'\\''s'"},
                {"$(rm -rf /)", "'$(rm -rf /)'"},
                {"a;b|c&d>e<f", "'a;b|c&d>e<f'"},
                {"*?[~#!\"`\\", "'*?[~#!\"`\\'"},
                {"caf\xc3\xa9", "'caf\xc3\xa9'"},
                {"a\nb", "$'a\\nb'"},
                {"\t\r", "$'\\t\\r'"},
                {"\x1b[31mred", "$'\\x1b[31mred'"},
                {"x\x7f", "$'x\\x7f'"},
                {"it's\n\\", "$'it\\'s\\n\\\\'"},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *q = cli_shell_quote(cases[i].in);
                assert_non_null(q);
                if (!streq(q, cases[i].out))
                        fail_msg("quote(%s) = %s, want %s", cases[i].in, q, cases[i].out);
                free(q);
        }
}

static void test_task_command_line(void **state) {
        static const struct {
                const char *record, *line;
        } cases[] = {
                {"{\"task\":\"checksum\",\"args\":[\"/tmp/f\",\"a b\"]}", "checksum /tmp/f 'a b'"},
                {"{\"task\":\"checksum\",\"args\":[]}", "checksum"},
                {"{\"task\":\"t\"}", "t"},
                {"{\"task\":\"t\",\"cmd\":null,\"args\":[\"x\",7,\"y\"]}", "t x y"},
                {"{\"task\":null,\"cmd\":\"echo \\\"hello world\\\"\"}", "sh -c 'echo \"hello world\"'"},
                {"{\"task\":null,\"cmd\":null}", "?"},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                cJSON *r = json(cases[i].record);
                char *line = cli_task_command_line(r);
                assert_non_null(line);
                assert_string_equal(line, cases[i].line);
                free(line);
                cJSON_Delete(r);
        }
}

static void test_describe_outcome(void **state) {
        static const struct {
                const char *record, *text;
        } cases[] = {
                {"{\"state\":\"succeeded\",\"result\":\"success\",\"exit_status\":0}", "succeeded"},
                {"{\"state\":\"failed\",\"attempts\":1,\"result\":\"exit-code\",\"exit_status\":3}",
                 "failed: exit status 3"},
                {"{\"state\":\"failed\",\"attempts\":3,\"result\":\"exit-code\",\"exit_status\":3}",
                 "failed after 3 attempts: exit status 3"},
                {"{\"state\":\"failed\",\"attempts\":1,\"result\":\"signal\",\"signal\":9}",
                 "failed: killed by signal 9 (KILL)"},
                {"{\"state\":\"failed\",\"attempts\":1,\"result\":\"core-dump\",\"signal\":11}",
                 "failed: dumped core, killed by signal 11 (SEGV)"},
                {"{\"state\":\"failed\",\"attempts\":1,\"result\":\"timeout\"}", "failed: timed out"},
                {"{\"state\":\"failed\",\"attempts\":1,\"result\":\"oom-kill\"}",
                 "failed: killed for lack of memory (oom-kill)"},
                {"{\"state\":\"failed\",\"attempts\":1,\"result\":\"rejected\",\"error\":\"no such task\"}",
                 "failed: rejected (no such task)"},
                {"{\"state\":\"failed\",\"attempts\":1,\"result\":null}", "failed: no result"},
                {"{\"state\":\"cancelled\",\"result\":\"cancelled\"}", "cancelled"},
                {"{\"state\":\"running\",\"attempts\":2,\"max_attempts\":3}", "running (attempt 2 of 3)"},
                {"{\"state\":\"queued\",\"attempts\":0,\"max_attempts\":3,\"result\":null}", "queued"},
                {"{\"state\":\"queued\",\"attempts\":1,\"max_attempts\":3,\"result\":\"exit-code\","
                 "\"exit_status\":3}",
                 "queued for attempt 2 of 3 (attempt 1: exit status 3)"},
                {"{\"state\":\"failed\",\"attempts\":1,\"result\":\"x\",\"error\":\"line\\nnext\\u001b\"}",
                 "failed: x (line?next?)"},
                {"{}", "unknown"},
        };
        char buf[256];

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                cJSON *r = json(cases[i].record);
                cli_describe_outcome(r, buf, sizeof(buf));
                if (!streq(buf, cases[i].text))
                        fail_msg("%s: got '%s', want '%s'", cases[i].record, buf, cases[i].text);
                cJSON_Delete(r);
        }
}

/* ---- printers --------------------------------------------------------------------------------- */

static const char finished_record[] =
        "{\"ok\":true,\"id\":17,\"task\":\"checksum\",\"cmd\":null,\"args\":[\"/tmp/f\",\"a b\"],"
        "\"state\":\"failed\",\"attempts\":3,\"max_attempts\":3,\"priority\":5,\"key\":\"k\\u001b[2J\","
        "\"submitter\":\"uid:0\",\"unit\":\"pid:42\",\"created_at\":\"2026-11-26T17:00:00.123Z\","
        "\"started_at\":\"2026-11-26T17:00:01.000Z\",\"finished_at\":\"2026-11-26T17:00:02.500Z\","
        "\"run_after\":null,\"result\":\"exit-code\",\"exit_status\":3,\"signal\":null,\"error\":null,"
        "\"brand_new\":\"field\"}";

static void test_print_record(void **state) {
        cJSON *r = json(finished_record);
        char *out = NULL;

        CAPTURE(out, cli_print_record(f, r));
        assert_contains(out, "id:           17\n");
        assert_contains(out, "task:         checksum\n");
        assert_contains(out, "args:         /tmp/f 'a b'\n");
        assert_contains(out, "state:        failed\n");
        assert_contains(out, "attempts:     3 of 3\n");
        assert_contains(out, "priority:     5\n");
        /* control characters from a client never reach the terminal */
        assert_contains(out, "key:          k\\x1b[2J\n");
        assert_not_contains(out, "\x1b");
        assert_contains(out, "unit:         pid:42\n");
        assert_contains(out, "created_at:   2026-11-26 18:00:00.123 CET\n");
        assert_contains(out, "run_after:    -\n");
        assert_contains(out, "finished_at:  2026-11-26 18:00:02.500 CET\n");
        assert_contains(out, "duration:     1.500 s\n");
        assert_contains(out, "exit_status:  3\n");
        assert_contains(out, "signal:       -\n");
        assert_contains(out, "brand_new:    field\n");
        assert_not_contains(out, "cmd:");
        assert_not_contains(out, "ok:");
        free(out);
        cJSON_Delete(r);

        r = json("{\"id\":2,\"task\":null,\"cmd\":\"echo \\\"hi\\\"\",\"args\":[],\"state\":\"running\","
                 "\"signal\":15}");
        CAPTURE(out, cli_print_record(f, r));
        assert_contains(out, "cmd:          echo \"hi\"\n");
        assert_contains(out, "signal:       15 (SIGTERM)\n");
        assert_not_contains(out, "task:");
        assert_not_contains(out, "duration:");
        free(out);
        cJSON_Delete(r);

        /* An every_host parent lists its runs, one a line. */
        r = json("{\"id\":4,\"task\":\"clear\",\"args\":[],\"state\":\"failed\",\"children\":["
                 "{\"id\":5,\"node\":\"web1\",\"state\":\"succeeded\",\"result\":\"success\"},"
                 "{\"id\":6,\"node\":\"web\\u001b2\",\"state\":\"queued\"}]}");
        CAPTURE(out, cli_print_record(f, r));
        assert_contains(out,
                        "children:     5  web1  succeeded (success)\n              6  web\\x1b2  queued\n");
        assert_not_contains(out, "\x1b");
        free(out);
        cJSON_Delete(r);

        r = json("{\"id\":3,\"task\":null,\"cmd\":\"printf 'a\\nb'\",\"args\":[]}");
        CAPTURE(out, cli_print_record(f, r));
        assert_contains(out, "cmd:          $'printf \\'a\\nb\\''\n");
        free(out);
        cJSON_Delete(r);
}

static void test_print_task_table(void **state) {
        char *out = NULL;
        cJSON *tasks = json("[]");

        CAPTURE(out, cli_print_task_table(f, tasks, 0, true));
        assert_string_equal(out, "no tasks\n");
        free(out);
        cJSON_Delete(tasks);

        int64_t now = 1795712400000000LL; /* 2026-11-26 17:00:00 UTC */
        tasks = json(
                "["
                "{\"id\":9,\"task\":\"checksum\",\"args\":[\"/tmp/"
                "f\"],\"state\":\"succeeded\",\"attempts\":1,"
                "\"max_attempts\":1,\"created_at\":\"2026-11-26T16:59:00.000Z\",\"result\":\"success\","
                "\"exit_status\":0},"
                "{\"id\":10,\"task\":\"flaky\",\"args\":[],\"state\":\"queued\",\"attempts\":1,"
                "\"max_attempts\":3,\"created_at\":\"2026-11-26T16:59:30.000Z\",\"result\":\"exit-code\","
                "\"exit_status\":3,\"run_after\":\"2026-11-26T17:00:05.000Z\"},"
                "{\"id\":11,\"task\":null,\"cmd\":\"echo \\\"hello world\\\"\",\"state\":\"queued\","
                "\"attempts\":0,\"max_attempts\":1,\"created_at\":\"2026-11-26T16:59:59.000Z\","
                "\"result\":null,\"run_after\":\"2026-11-26T16:59:59.000Z\"},"
                "{\"id\":12,\"task\":\"long\",\"args\":["
                "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"],"
                "\"state\":\"failed\",\"attempts\":1,\"max_attempts\":1,"
                "\"created_at\":\"2026-11-26T16:00:00.000Z\",\"result\":\"signal\",\"signal\":9}"
                "]");
        CAPTURE(out, cli_print_task_table(f, tasks, now, true));
        char *line = out, *lines[8];
        size_t n = 0;
        for (char *p; (p = strchr(line, '\n')) && n < ELEMENTSOF(lines); line = p + 1) {
                *p = 0;
                lines[n++] = line;
        }
        assert_int_equal(n, 5);
        assert_true(startswith(lines[0], "ID  STATE      ATTEMPTS  TASK/CMD  "));
        assert_true(startswith(lines[1], " 9  succeeded  1/1       checksum /tmp/f  "));
        assert_contains(lines[1], "  2026-11-26 17:59:00  success");
        /* a queued retry shows its last result and when it runs again (local time) */
        assert_contains(lines[2], "exit status 3, runs at 18:00:05");
        /* run_after in the past says nothing */
        assert_true(startswith(lines[3], "11  queued     0/1       sh -c 'echo \"hello world\"'"));
        assert_true(strlen(lines[3]) >= 2 && streq(lines[3] + strlen(lines[3]) - 3, "  -"));
        /* the TASK/CMD cell is cut at CLI_LIST_COMMAND_WIDTH with "..." */
        char expect[128];
        snprintf(expect, sizeof(expect), "long %.*s...", CLI_LIST_COMMAND_WIDTH - 8,
                 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
        assert_int_equal(strlen(expect), CLI_LIST_COMMAND_WIDTH);
        assert_contains(lines[4], expect);
        assert_contains(lines[4], "killed by signal 9 (KILL)");
        /* all RESULT cells start in the same column */
        const char *result_col = strstr(lines[0], "RESULT");
        assert_non_null(result_col);
        assert_true(startswith(lines[1] + (result_col - lines[0]), "success"));
        assert_true(startswith(lines[4] + (result_col - lines[0]), "killed"));
        free(out);
        cJSON_Delete(tasks);
}

static void test_table_truncates_utf8(void **state) {
        /* 60 two-byte characters: cut to 45 characters + "...", never inside a character */
        char arg[256] = "", record[512];
        for (int i = 0; i < 60; i++)
                strcat(arg, "\xc3\xa9");
        snprintf(record, sizeof(record),
                 "[{\"id\":1,\"task\":\"t\",\"args\":[\"%s\"],\"state\":\"queued\",\"attempts\":0,"
                 "\"max_attempts\":1,\"created_at\":null,\"result\":null}]",
                 arg);
        cJSON *tasks = json(record);
        char *out = NULL;

        CAPTURE(out, cli_print_task_table(f, tasks, 0, true));
        const char *cell = strstr(out, "t '");
        assert_non_null(cell);
        const char *dots = strstr(cell, "...");
        assert_non_null(dots);
        /* "t '" (3 columns) + 42 characters of 2 bytes + "..." = 48 columns */
        assert_int_equal(dots - cell, 3 + 42 * 2);
        assert_true(((unsigned char) dots[-1] & 0xc0) == 0x80); /* ends after a complete character */
        free(out);
        cJSON_Delete(tasks);
}

static void test_print_stats(void **state) {
        cJSON *s = json(
                "{\"ok\":true,\"queued\":2,\"running\":1,\"succeeded\":10,\"failed\":3,\"cancelled\":1,"
                "\"submitted_total\":17,\"connections\":4,\"launcher\":\"connected\",\"store\":\"memory\"}");
        char *out = NULL;

        CAPTURE(out, cli_print_stats(f, s));
        assert_string_equal(out, "tasks:        2 queued, 1 running, 10 succeeded, 3 failed, 1 cancelled\n"
                                 "submitted:    17 since the daemon started\n"
                                 "connections:  4\n"
                                 "launcher:     connected\n"
                                 "store:        memory\n");
        free(out);
        cJSON_Delete(s);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_uint),
                cmocka_unit_test(test_parse_int),
                cmocka_unit_test(test_parse_host_port),
                cmocka_unit_test(test_args_help_version),
                cmocka_unit_test(test_args_no_command),
                cmocka_unit_test(test_args_submit_task),
                cmocka_unit_test(test_args_submit_cmd),
                cmocka_unit_test(test_args_numbers_at_limits),
                cmocka_unit_test(test_args_ids),
                cmocka_unit_test(test_args_list_retry_logs),
                cmocka_unit_test(test_args_connection),
                cmocka_unit_test(test_requests),
                cmocka_unit_test(test_exit_code_for_error),
                cmocka_unit_test(test_exit_code_for_task),
                cmocka_unit_test(test_parse_timestamp),
                cmocka_unit_test(test_format_time),
                cmocka_unit_test(test_shell_quote),
                cmocka_unit_test(test_task_command_line),
                cmocka_unit_test(test_describe_outcome),
                cmocka_unit_test(test_print_record),
                cmocka_unit_test(test_print_task_table),
                cmocka_unit_test(test_table_truncates_utf8),
                cmocka_unit_test(test_print_stats),
        };

        return cmocka_run_group_tests(tests, set_tz_cet, NULL);
}
