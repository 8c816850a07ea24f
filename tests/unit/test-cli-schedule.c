/* SPDX-License-Identifier: MIT */
/* Tests of the client's schedule parts: submit --slot-key, the slot's key, and `schedules`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli/cli-args.h"
#include "cli/cli-schedule.h"
#include "shared/json-util.h"
#include "shared/limits.h"
#include "shared/util.h"

#define SLOT_USEC (1700000000ULL * USEC_PER_SEC) /* 2023-11-14 22:13:20 UTC */

static int parse_argv(CliOptions *o, char *err, size_t size, const char *const *args) {
        char *argv[2 * SCHEDULE_CALENDARS_MAX + 8] = {(char *) "asynctask"};
        int argc = 1;

        for (; args[argc - 1]; argc++)
                argv[argc] = (char *) args[argc - 1];
        return cli_parse_args(argc, argv, NULL, o, err, size);
}

static void test_args(void **state) {
        static const struct {
                const char *argv[8];
                const char *error; /* NULL: accepted */
                size_t n_slot_calendars;
        } cases[] = {
                {{"submit", "--slot-key", "daily", "report"}, NULL, 1},
                {{"submit", "--slot-key=*-*-* 03:00:00", "--slot-key", "Mon 12:00", "report", "a b"},
                 NULL,
                 2},
                /* after TASK, everything is the task's */
                {{"submit", "report", "--slot-key", "daily"}, NULL, 0},
                {{"submit", "--slot-key", "", "report"}, "--slot-key needs a calendar expression", 0},
                {{"submit", "--slot-key", "daily", "--key", "k", "report"},
                 "give either --key or --slot-key, not both",
                 0},
                {{"submit", "--slot-key", "daily", "--cmd", "true"},
                 "--slot-key is for a TASK, not --cmd",
                 0},
                {{"submit", "--slot-key"}, "--slot-key needs a value", 0},
                {{"status", "--slot-key", "daily", "1"}, "--slot-key is not an option of 'status'", 0},
                {{"submit", "--slot-key", "daily", "--slot-time", "2023-11-14T22:13:20.5Z", "report"},
                 NULL,
                 1},
                {{"submit", "--slot-key", "daily", "--slot-time=@1700000000", "report"}, NULL, 1},
                {{"submit", "--slot-time", "@1700000000", "report"}, "--slot-time needs --slot-key", 0},
                {{"submit", "--slot-key", "daily", "--slot-time", "2023-11-14 22:13:20", "report"},
                 "--slot-time wants a time as 2024-06-06T03:00:00Z (UTC) or @SECONDS, not '2023-11-14 "
                 "22:13:20'",
                 0},
                {{"submit", "--slot-key", "daily", "--slot-time", "@-1", "report"},
                 "--slot-time wants a time as 2024-06-06T03:00:00Z (UTC) or @SECONDS, not '@-1'",
                 0},
                {{"submit", "--slot-key", "daily", "--slot-timer", "asynctask-schedule-report.timer",
                  "report"},
                 NULL,
                 1},
                {{"submit", "--slot-timer", "a.timer", "report"}, "--slot-timer needs --slot-key", 0},
                {{"submit", "--slot-key", "daily", "--slot-timer", "a.service", "report"},
                 "--slot-timer wants a timer unit such as NAME.timer, not 'a.service'",
                 0},
                {{"submit", "--slot-key", "daily", "--slot-timer", "../a.timer", "report"},
                 "--slot-timer wants a timer unit such as NAME.timer, not '../a.timer'",
                 0},
                {{"submit", "--slot-key", "daily", "--slot-timer", ".timer", "report"},
                 "--slot-timer wants a timer unit such as NAME.timer, not '.timer'",
                 0},
                {{"submit", "--slot-key", "daily", "--slot-timer", "a.timer", "--slot-time", "@1", "report"},
                 "give either --slot-time or --slot-timer, not both",
                 0},
                {{"schedules"}, NULL, 0},
                {{"--json", "schedules"}, NULL, 0},
                {{"schedules", "report"}, "unexpected argument 'report'", 0},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                CliOptions o;
                char err[256] = "";
                int r = parse_argv(&o, err, sizeof(err), cases[i].argv);

                if (cases[i].error) {
                        if (r != -EINVAL || !streq(err, cases[i].error))
                                fail_msg("case %zu: %d '%s', want '%s'", i, r, err, cases[i].error);
                        continue;
                }
                if (r != 0)
                        fail_msg("case %zu: refused: %s", i, err);
                assert_int_equal(o.n_slot_calendars, cases[i].n_slot_calendars);
                if (o.has_slot_time)
                        assert_int_equal(o.slot_time_usec / USEC_PER_SEC, 1700000000);
        }

        /* The expressions as given, in order; at most SCHEDULE_CALENDARS_MAX of them. */
        const char *args[2 * SCHEDULE_CALENDARS_MAX + 8] = {"submit"};
        size_t n = 1;
        for (size_t i = 0; i <= SCHEDULE_CALENDARS_MAX; i++) {
                args[n++] = "--slot-key";
                args[n++] = i == 0 ? "first" : "later";
        }
        args[n++] = "report";
        args[n] = NULL;
        CliOptions o;
        char err[256] = "";
        assert_int_equal(parse_argv(&o, err, sizeof(err), args), -EINVAL);
        assert_string_equal(err, "--slot-key may be given at most 32 times");
        args[n - 3] = "report";
        args[n - 2] = NULL;
        assert_int_equal(parse_argv(&o, err, sizeof(err), args), 0);
        assert_int_equal(o.n_slot_calendars, SCHEDULE_CALENDARS_MAX);
        assert_string_equal(o.slot_calendars[0], "first");
        assert_string_equal(o.task, "report");
        assert_int_equal(o.command, CLI_SUBMIT);
        assert_null(cli_build_request(&(CliOptions){.command = CLI_SCHEDULES}, NULL, 0));
}

static void test_slot_key(void **state) {
        char buf[TASK_KEY_BYTES_MAX + 1], name[TASK_NAME_BYTES_MAX + 1];

        assert_int_equal(cli_slot_key("report", SLOT_USEC, buf, sizeof(buf)), 0);
        assert_string_equal(buf, "schedule:report@2023-11-14T22:13:20Z");
        /* to the second: the same slot whatever the microseconds */
        assert_int_equal(cli_slot_key("report", SLOT_USEC + 999999, buf, sizeof(buf)), 0);
        assert_string_equal(buf, "schedule:report@2023-11-14T22:13:20Z");
        /* the longest task name fits a key */
        memset(name, 'n', TASK_NAME_BYTES_MAX);
        name[TASK_NAME_BYTES_MAX] = '\0';
        assert_int_equal(cli_slot_key(name, SLOT_USEC, buf, sizeof(buf)), 0);
        assert_int_equal(cli_slot_key("report", SLOT_USEC, buf, 36), -ENOBUFS);
        assert_int_equal(cli_slot_key("report", SLOT_USEC, buf, 37), 0);
}

static char *entry_text(cJSON *e) {
        assert_non_null(e);
        char *s = cJSON_PrintUnformatted(e);
        cJSON_Delete(e);
        assert_non_null(s);
        return s;
}

static void test_entry(void **state) {
        const char *const two[] = {"*-*-* 03:00:00", "Mon *-*-* 12:00:00"};
        _cleanup_free_ char *a = entry_text(cli_schedule_entry("asynctask-schedule-report.timer", "loaded",
                                                               "active", two, 2, SLOT_USEC + 123456, 0));
        assert_string_equal(
                a, "{\"task\":\"report\",\"timer\":\"asynctask-schedule-report.timer\",\"state\":\"active\","
                   "\"schedule\":[\"*-*-* 03:00:00\",\"Mon *-*-* 12:00:00\"],"
                   "\"next_elapse\":\"2023-11-14T22:13:20.123Z\",\"last_trigger\":null}");
        /* a timer that did not load says so, and has no times */
        _cleanup_free_ char *b = entry_text(cli_schedule_entry("asynctask-schedule-x.y.timer", "bad-setting",
                                                               "inactive", NULL, 0, UINT64_MAX, SLOT_USEC));
        assert_string_equal(
                b, "{\"task\":\"x.y\",\"timer\":\"asynctask-schedule-x.y.timer\",\"state\":\"bad-setting\","
                   "\"schedule\":[],\"next_elapse\":null,\"last_trigger\":\"2023-11-14T22:13:20.000Z\"}");
        assert_null(cli_schedule_entry(NULL, "loaded", "active", NULL, 0, 0, 0));
}

static void test_print(void **state) {
        const char *const one[] = {"*-*-* 03:00:00"}, *const two[] = {"hourly", "Mon *-*-* 12:00:00"};
        _cleanup_(cjson_deletep) cJSON *list = cJSON_CreateArray();
        char *text = NULL;
        size_t len = 0;
        FILE *f;

        assert_int_equal(setenv("TZ", "UTC", 1), 0);
        f = open_memstream(&text, &len);
        cli_print_schedules(f, list);
        assert_int_equal(fclose(f), 0);
        assert_string_equal(text, "no scheduled tasks (no timer asynctask-schedule-*.timer is loaded)\n");
        free(text);

        cJSON_AddItemToArray(list,
                             cli_schedule_entry("asynctask-schedule-a.timer", "loaded", "active", one, 1,
                                                SLOT_USEC, SLOT_USEC - 86400 * USEC_PER_SEC + 500000));
        cJSON_AddItemToArray(list, cli_schedule_entry("asynctask-schedule-longer-name.timer", "loaded",
                                                      "inactive", two, 2, 0, 0));
        f = open_memstream(&text, &len);
        cli_print_schedules(f, list);
        assert_int_equal(fclose(f), 0);
        assert_string_equal(
                text, "TASK         STATE     NEXT                 LAST                 SCHEDULE\n"
                      "a            active    2023-11-14 22:13:20  2023-11-13 22:13:20  *-*-* 03:00:00\n"
                      "longer-name  inactive  -                    -                    "
                      "hourly; Mon *-*-* 12:00:00\n");
        free(text);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_args),
                cmocka_unit_test(test_slot_key),
                cmocka_unit_test(test_entry),
                cmocka_unit_test(test_print),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
