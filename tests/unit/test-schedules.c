/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "front/schedules.h"
#include "shared/calendar.h"
#include "shared/util.h"

#include "tmpdir.h"

/* 2023-11-14 22:13:20 UTC */
#define BASE_USEC (1700000000ULL * USEC_PER_SEC)

static void write_file(const char *dir, const char *name, const char *text) {
        char path[256];
        int fd;

        (void) snprintf(path, sizeof(path), "%s/%s", dir, name);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t) strlen(text));
        assert_int_equal(close(fd), 0);
}

/* A config of one task file (in dir/<sub>/) with these fields after its name and exec. */
static Config *load_task(const char *dir, const char *sub, const char *fields) {
        char main_dir[192], tasks_dir[256], main_path[256], text[2048];
        Config *c = NULL;

        (void) snprintf(main_dir, sizeof(main_dir), "%s/%s", dir, sub);
        (void) snprintf(tasks_dir, sizeof(tasks_dir), "%s/tasks.d", main_dir);
        (void) snprintf(main_path, sizeof(main_path), "%s/asynctask.json", main_dir);
        assert_int_equal(mkdir(main_dir, 0755), 0);
        assert_int_equal(mkdir(tasks_dir, 0755), 0);
        write_file(main_dir, "asynctask.json", "{}");
        if (fields) {
                (void) snprintf(text, sizeof(text), "{\"name\": \"t\", \"exec\": [\"/bin/true\"]%s%s}",
                                fields[0] ? ", " : "", fields);
                write_file(tasks_dir, "t.json", text);
        }
        assert_int_equal(config_load(main_path, NULL, NULL, &c), 0);
        return c;
}

typedef struct Problems {
        char text[2048];
        size_t len;
} Problems;

static void collect(const char *file, const char *key, const char *message, void *userdata) {
        Problems *p = userdata;
        const char *base = strrchr(file, '/');

        p->len += (size_t) snprintf(p->text + p->len, sizeof(p->text) - p->len, "%s%s: %s: %s",
                                    p->len ? "\n" : "", base ? base + 1 : file, key, message);
}

static bool have_analyze(void) {
        uint64_t v;
        size_t n;
        return calendar_next_elapses("daily", BASE_USEC, 1, &v, &n, NULL, 0) != -ENOENT;
}

static void test_check(void **state) {
        static const struct {
                const char *fields;
                int r;
                const char *problems;
        } cases[] = {
                {"", 0, ""},
                {"\"schedule\": \"*-*-* 03:00:00\"", 0, ""},
                {"\"schedule\": [\"hourly\", \"Mon..Fri *-*-* 08:30 Europe/Berlin\"], "
                 "\"schedule_persistent\": true",
                 0, ""},
                {"\"schedule\": \"bogus\"", 1,
                 "t.json: schedule: 'bogus' is not a calendar expression systemd accepts (systemd.time(7)): "
                 "Failed to parse calendar specification 'bogus': Invalid argument"},
                {"\"schedule\": [\"daily\", \"*-*-* 25:00\", \"Fri\"]", 1,
                 "t.json: schedule[1]: '*-*-* 25:00' is not a calendar expression systemd accepts "
                 "(systemd.time(7)): Failed to parse calendar specification '*-*-* 25:00': Invalid "
                 "argument"},
                /* the delay and the second of accuracy must fit between two slots */
                {"\"schedule\": \"*:*:0/10\", \"schedule_randomized_delay_sec\": 8", 0, ""},
                {"\"schedule\": \"*:*:0/10\", \"schedule_randomized_delay_sec\": 9", 1,
                 "t.json: schedule_randomized_delay_sec: 9 s, plus the timer's accuracy of 1 s, is not "
                 "shorter "
                 "than the 10 s between two slots of \"schedule\": a run that late would be taken for the "
                 "next "
                 "slot's"},
                {"\"schedule\": [\"*-*-* 03:00\", \"*-*-* 03:10\"], \"schedule_randomized_delay_sec\": 3600",
                 1,
                 "t.json: schedule_randomized_delay_sec: 3600 s, plus the timer's accuracy of 1 s, is not "
                 "shorter than the 600 s between two slots of \"schedule\": a run that late would be taken "
                 "for "
                 "the next slot's"},
                {"\"schedule\": \"daily\", \"schedule_randomized_delay_sec\": 86400", 1,
                 "t.json: schedule_randomized_delay_sec: 86400 s, plus the timer's accuracy of 1 s, is not "
                 "shorter than the 86400 s between two slots of \"schedule\": a run that late would be "
                 "taken "
                 "for the next slot's"},
                /* a single slot has no next one to be mistaken for */
                {"\"schedule\": \"2030-01-01\", \"schedule_randomized_delay_sec\": 86400", 0, ""},
        };
        TmpDir *tmp = *state;

        if (!have_analyze())
                skip();
        assert_int_equal(setenv("TZ", "UTC", 1), 0);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char sub[16];
                Problems p = {};

                (void) snprintf(sub, sizeof(sub), "c%zu", i);
                _cleanup_(config_freep) Config *c = load_task(tmp->dir, sub, cases[i].fields);
                int r = schedules_check(c, BASE_USEC, collect, &p);
                if (r != cases[i].r || !streq(p.text, cases[i].problems))
                        fail_msg("case %zu (%s): %d \"%s\"\n  want %d \"%s\"", i, cases[i].fields, r, p.text,
                                 cases[i].r, cases[i].problems);
        }
}

/* Without systemd-analyze nothing is checked, and the caller hears why. */
static void test_check_without_analyze(void **state) {
        TmpDir *tmp = *state;
        _cleanup_(config_freep) Config *c = load_task(tmp->dir, "c", "\"schedule\": \"bogus\"");
        _cleanup_(config_freep) Config *none = load_task(tmp->dir, "n", "");
        char *saved = strdup(getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
        Problems p = {};

        assert_int_equal(setenv("PATH", "/nonexistent", 1), 0);
        assert_int_equal(schedules_check(c, BASE_USEC, collect, &p), -ENOENT);
        assert_string_equal(p.text, "");
        /* nothing scheduled, nothing to run */
        assert_int_equal(schedules_check(none, BASE_USEC, collect, &p), 0);
        assert_int_equal(setenv("PATH", saved, 1), 0);
        free(saved);
}

typedef struct Changes {
        char text[512];
        size_t len;
} Changes;

static void note_change(const TaskDef *t, ScheduleChange change, void *userdata) {
        static const char *const names[] = {
                [SCHEDULE_ADDED] = "added", [SCHEDULE_CHANGED] = "changed", [SCHEDULE_REMOVED] = "removed"};
        Changes *c = userdata;
        c->len += (size_t) snprintf(c->text + c->len, sizeof(c->text) - c->len, "%s%s %s", c->len ? " " : "",
                                    t->name, names[change]);
}

static void test_diff(void **state) {
        static const struct {
                const char *old, *new; /* fields of task t; NULL: no task t */
                const char *want;
        } cases[] = {
                {"", "", ""},
                {"\"schedule\": \"daily\"", "\"schedule\": [\"daily\"], \"nice\": 5", ""},
                {"", "\"schedule\": \"daily\"", "t added"},
                {"\"schedule\": \"daily\"", "", "t removed"},
                {"\"schedule\": \"daily\"", "\"schedule\": \"weekly\"", "t changed"},
                {"\"schedule\": \"daily\"", "\"schedule\": \"daily\", \"schedule_persistent\": true",
                 "t changed"},
                {"\"schedule\": \"daily\", \"max_args\": 1",
                 "\"schedule\": \"daily\", \"max_args\": 1, \"schedule_args\": [\"x\"]", "t changed"},
                {"\"schedule\": \"daily\"", NULL, "t removed"},
                {"", NULL, ""},
                {NULL, "\"schedule\": \"daily\"", "t added"},
                {NULL, "", ""},
        };
        TmpDir *tmp = *state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char a[16], b[16];
                Changes ch = {};

                (void) snprintf(a, sizeof(a), "old%zu", i);
                (void) snprintf(b, sizeof(b), "new%zu", i);
                _cleanup_(config_freep) Config *old = load_task(tmp->dir, a, cases[i].old);
                _cleanup_(config_freep) Config *new = load_task(tmp->dir, b, cases[i].new);
                size_t n = schedules_diff(old, new, note_change, &ch);
                if (!streq(ch.text, cases[i].want))
                        fail_msg("case %zu (%s -> %s): \"%s\", want \"%s\"", i, cases[i].old, cases[i].new,
                                 ch.text, cases[i].want);
                assert_int_equal(n, cases[i].want[0] ? 1 : 0);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_check, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_check_without_analyze, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_diff, tmpdir_setup, tmpdir_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
