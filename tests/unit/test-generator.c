/* SPDX-License-Identifier: MIT */
/* asynctask-generator on a temporary tasks.d and output directory: the units it writes, byte for byte,
 * and the files it skips, with what it says about them. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>
#include <syslog.h>

#include <cmocka.h>

#include "generator/generator.h"
#include "shared/util.h"

#include "tmpdir.h"

#define CLI "/usr/bin/asynctask"

typedef struct Fixture {
        TmpDir *tmp;
        char tasks[128], out[128];
        char log[4096];
        size_t log_len;
} Fixture;

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(Fixture));
        void *tmp;

        if (!f || tmpdir_setup(&tmp) < 0)
                return -1;
        f->tmp = tmp;
        (void) snprintf(f->tasks, sizeof(f->tasks), "%s/tasks.d", f->tmp->dir);
        (void) snprintf(f->out, sizeof(f->out), "%s/out", f->tmp->dir);
        if (mkdir(f->tasks, 0755) < 0 || mkdir(f->out, 0755) < 0)
                return -1;
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;
        void *tmp = f->tmp;
        free(f);
        return tmpdir_teardown(&tmp);
}

static void write_task(Fixture *f, const char *name, const char *text) {
        char path[256];
        int fd;

        (void) snprintf(path, sizeof(path), "%s/%s", f->tasks, name);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t) strlen(text));
        assert_int_equal(close(fd), 0);
}

/* Each message as "PRIORITY message\n", with the temporary directory written as "T". */
static void capture(int priority, const char *message, void *userdata) {
        Fixture *f = userdata;
        char line[1200];
        size_t dir_len = strlen(f->tmp->dir), n = 0;

        n += (size_t) snprintf(line, sizeof(line), "%d ", priority);
        for (const char *p = message; *p && n < sizeof(line) - 2;)
                if (startswith(p, f->tmp->dir)) {
                        line[n++] = 'T';
                        p += dir_len;
                } else
                        line[n++] = *p++;
        line[n] = '\0';
        f->log_len += (size_t) snprintf(f->log + f->log_len, sizeof(f->log) - f->log_len, "%s\n", line);
}

static int run(Fixture *f) {
        Generator g = {.tasks_dir = f->tasks,
                       .output_dir = f->out,
                       .cli_path = CLI,
                       .owner = geteuid(),
                       .log = capture,
                       .userdata = f};
        return generator_run(&g);
}

/* A file of the output directory, with the temporary directory written as "T". NULL if absent. */
static char *read_output(Fixture *f, const char *name) {
        char path[256], raw[16384], *out;
        ssize_t n;
        int fd;

        (void) snprintf(path, sizeof(path), "%s/%s", f->out, name);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return NULL;
        n = read(fd, raw, sizeof(raw) - 1);
        assert_true(n >= 0);
        raw[n] = '\0';
        (void) close(fd);
        out = calloc(1, sizeof(raw));
        assert_non_null(out);
        for (char *p = raw, *o = out; *p;)
                if (startswith(p, f->tmp->dir)) {
                        *o++ = 'T';
                        p += strlen(f->tmp->dir);
                } else
                        *o++ = *p++;
        return out;
}

static void assert_output(Fixture *f, const char *name, const char *want) {
        _cleanup_free_ char *got = read_output(f, name);
        if (!got)
                fail_msg("%s was not written", name);
        if (!streq(got, want))
                fail_msg("%s:\n--- want\n%s--- got\n%s---", name, want, got);
}

static const char report_timer[] =
        "# Written by asynctask-generator from T/tasks.d/10-report.json at boot and at \"systemctl "
        "daemon-reload\":\n"
        "# edit that file, then run \"systemctl daemon-reload\".\n"
        "[Unit]\n"
        "Description=Schedule of asynctask task report\n"
        "Documentation=man:asynctask.json(5)\n"
        "SourcePath=T/tasks.d/10-report.json\n"
        "\n"
        "[Timer]\n"
        "OnCalendar=*-*-* 03:00:00\n"
        "AccuracySec=1s\n";

static const char report_service[] =
        "# Written by asynctask-generator from T/tasks.d/10-report.json at boot and at \"systemctl "
        "daemon-reload\":\n"
        "# edit that file, then run \"systemctl daemon-reload\".\n"
        "[Unit]\n"
        "Description=Scheduled run of asynctask task report\n"
        "Documentation=man:asynctask.json(5) man:asynctask(1)\n"
        "SourcePath=T/tasks.d/10-report.json\n"
        "Wants=asynctask.socket\n"
        "After=asynctask.socket\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        "# The scheduled time of the slot the timer elapsed for makes the task's key: one task per\n"
        "# slot, however often and on however many hosts sharing a database this runs.\n"
        "ExecStart=/usr/bin/asynctask submit \"--slot-key\" \"*-*-* 03:00:00\" \"--slot-timer\" "
        "\"asynctask-schedule-report.timer\" \"report\" \"a b\" "
        "\"$$HOME 100%% \\\"q\\\" \\\\ \\x0a;\" \"\"\n"
        "CapabilityBoundingSet=\n"
        "NoNewPrivileges=yes\n"
        "ProtectSystem=strict\n"
        "ProtectHome=yes\n"
        "PrivateTmp=yes\n"
        "PrivateDevices=yes\n"
        "ProtectKernelTunables=yes\n"
        "ProtectKernelModules=yes\n"
        "ProtectKernelLogs=yes\n"
        "ProtectControlGroups=yes\n"
        "RestrictAddressFamilies=AF_UNIX\n"
        "RestrictNamespaces=yes\n"
        "LockPersonality=yes\n"
        "MemoryDenyWriteExecute=yes\n"
        "SystemCallArchitectures=native\n";

static const char multi_timer[] =
        "# Written by asynctask-generator from T/tasks.d/50-per%%cent.json at boot and at \"systemctl "
        "daemon-reload\":\n"
        "# edit that file, then run \"systemctl daemon-reload\".\n"
        "[Unit]\n"
        "Description=Schedule of asynctask task multi.v2\n"
        "Documentation=man:asynctask.json(5)\n"
        "SourcePath=T/tasks.d/50-per%%cent.json\n"
        "\n"
        "[Timer]\n"
        "OnCalendar=Mon..Fri 08:00\n"
        "OnCalendar=Sat,Sun 10:00 Europe/Berlin\n"
        "AccuracySec=1s\n"
        "RandomizedDelaySec=300\n"
        "Persistent=true\n";

static void assert_wants(Fixture *f, const char *task, bool want) {
        char link[256], target[256] = "", expect[128];
        ssize_t n;

        (void) snprintf(link, sizeof(link), "%s/timers.target.wants/asynctask-schedule-%s.timer", f->out,
                        task);
        n = readlink(link, target, sizeof(target) - 1);
        if (!want) {
                assert_true(n < 0);
                return;
        }
        assert_true(n > 0);
        target[n] = '\0';
        (void) snprintf(expect, sizeof(expect), "../asynctask-schedule-%s.timer", task);
        assert_string_equal(target, expect);
}

/* Good files give their units; each bad one is skipped, said why, and the others are still written. */
static void test_generate(void **state) {
        Fixture *f = *state;

        /* No user is looked up at boot: "user" and "allow" are not even read. */
        write_task(f, "10-report.json",
                   "{\"name\": \"report\", \"exec\": [\"/usr/bin/report\"], \"max_args\": 3, \"user\": "
                   "\"no-such-user-xyz\", \"allow\": {\"users\": [\"no-such-user-xyz\"]}, \"schedule\": "
                   "\"*-*-* "
                   "03:00:00\", \"schedule_args\": [\"a b\", \"$HOME 100% \\\"q\\\" \\\\ \\n;\", \"\"]}");
        write_task(f, "20-too-many.json",
                   "{\"name\": \"too-many\", \"exec\": [\"/bin/true\"], \"schedule\": \"daily\", "
                   "\"schedule_args\": [\"x\"]}");
        write_task(f, "30-broken.json", "{\"name\": \"broken\", \"schedule\": ");
        write_task(f, "40-unscheduled.json", "{\"name\": \"plain\", \"exec\": [\"/bin/true\"]}");
        write_task(f, "45-injected.json",
                   "{\"name\": \"injected\", \"exec\": [\"/bin/true\"], \"schedule\": "
                   "\"daily\\nExecStartPre=/bin/sh\"}");
        write_task(f, "50-per%cent.json",
                   "{\"name\": \"multi.v2\", \"exec\": [\"/bin/true\"], \"schedule\": [\"Mon..Fri 08:00\", "
                   "\"Sat,Sun "
                   "10:00 Europe/Berlin\"], \"schedule_randomized_delay_sec\": 300, "
                   "\"schedule_persistent\": true}");
        write_task(f, "60-again.json",
                   "{\"name\": \"report\", \"exec\": [\"/bin/true\"], \"schedule\": \"hourly\"}");
        write_task(f, ".hidden.json",
                   "{\"name\": \"hidden\", \"exec\": [\"/bin/true\"], \"schedule\": \"hourly\"}");
        write_task(f, "notes.txt",
                   "{\"name\": \"notes\", \"exec\": [\"/bin/true\"], \"schedule\": \"hourly\"}");

        assert_int_equal(run(f), 2);
        assert_output(f, "asynctask-schedule-report.timer", report_timer);
        assert_output(f, "asynctask-schedule-report.service", report_service);
        assert_output(f, "asynctask-schedule-multi.v2.timer", multi_timer);
        assert_wants(f, "report", true);
        assert_wants(f, "multi.v2", true);
        static const char *const absent[] = {"too-many", "broken", "plain", "injected", "hidden", "notes"};
        for (size_t i = 0; i < ELEMENTSOF(absent); i++) {
                char name[128];
                (void) snprintf(name, sizeof(name), "asynctask-schedule-%s.timer", absent[i]);
                _cleanup_free_ char *text = read_output(f, name);
                if (text)
                        fail_msg("%s was written", name);
                assert_wants(f, absent[i], false);
        }
        assert_string_equal(
                f->log,
                "3 T/tasks.d/20-too-many.json: schedule_args: has 1 entries, but the task takes at most 0 "
                "(max_args)\n"
                "4 T/tasks.d/20-too-many.json: skipped: no timer for it until it is fixed and \"systemctl "
                "daemon-reload\" runs\n"
                "3 T/tasks.d/30-broken.json: invalid JSON at line 1, column 31\n"
                "4 T/tasks.d/30-broken.json: skipped: no timer for it until it is fixed and \"systemctl "
                "daemon-reload\" runs\n"
                "3 T/tasks.d/45-injected.json: schedule: 'daily?ExecStartPre=/bin/sh' is not a calendar "
                "expression such as \"*-*-* 03:00:00\" (letters, digits, spaces and * - : / . , ~ + _ "
                "only)\n"
                "4 T/tasks.d/45-injected.json: skipped: no timer for it until it is fixed and \"systemctl "
                "daemon-reload\" runs\n"
                "3 T/tasks.d/60-again.json: task 'report' is defined in an earlier file too; only that "
                "one's "
                "timer is written\n");
}

/* Nothing to do is no failure: no tasks.d, or nothing scheduled. */
static void test_nothing_scheduled(void **state) {
        Fixture *f = *state;

        assert_int_equal(rmdir(f->tasks), 0);
        assert_int_equal(run(f), 0);
        assert_string_equal(f->log, "");
        assert_int_equal(mkdir(f->tasks, 0755), 0);
        write_task(f, "a.json", "{\"name\": \"a\", \"exec\": [\"/bin/true\"]}");
        assert_int_equal(run(f), 0);
        assert_string_equal(f->log, "");
}

/* Other generators write to the same directory: a timers.target.wants/ already there is used. Only an
 * output directory that cannot be written fails the run. */
static void test_output_directory(void **state) {
        Fixture *f = *state;
        char wants[192];

        (void) snprintf(wants, sizeof(wants), "%s/timers.target.wants", f->out);
        assert_int_equal(mkdir(wants, 0755), 0);
        write_task(f, "a.json", "{\"name\": \"a\", \"exec\": [\"/bin/true\"], \"schedule\": \"daily\"}");
        assert_int_equal(run(f), 1);
        assert_wants(f, "a", true);

        Generator g = {.tasks_dir = f->tasks,
                       .output_dir = "/nonexistent/out",
                       .cli_path = CLI,
                       .owner = geteuid(),
                       .log = capture,
                       .userdata = f};
        f->log_len = 0;
        f->log[0] = '\0';
        assert_int_equal(generator_run(&g), -ENOENT);
        assert_string_equal(
                f->log, "3 cannot open the output directory /nonexistent/out: No such file or directory\n");
}

/* As the launcher, only what its owner alone may change: a schedule's runs are submitted by root. */
static void test_untrusted(void **state) {
        Fixture *f = *state;
        char path[256];

        write_task(f, "a.json", "{\"name\": \"a\", \"exec\": [\"/bin/true\"], \"schedule\": \"daily\"}");
        write_task(f, "b.json", "{\"name\": \"b\", \"exec\": [\"/bin/true\"], \"schedule\": \"daily\"}");
        (void) snprintf(path, sizeof(path), "%s/b.json", f->tasks);
        assert_int_equal(chmod(path, 0666), 0);
        assert_int_equal(run(f), 1);
        assert_wants(f, "a", true);
        assert_wants(f, "b", false);
        assert_string_equal(
                f->log,
                "3 T/tasks.d/b.json: file writable by anyone (mode 0666): the launcher reads only what "
                "root owns and no one else may change\n"
                "4 T/tasks.d/b.json: skipped: no timer for it until it is fixed and \"systemctl "
                "daemon-reload\" runs\n");

        /* A directory others may write to: nothing in it is read. */
        f->log_len = 0;
        f->log[0] = '\0';
        assert_int_equal(chmod(f->tasks, 0777), 0);
        assert_int_equal(run(f), 0);
        assert_string_equal(
                f->log,
                "3 T/tasks.d: directory writable by anyone (mode 0777): the launcher reads only what root "
                "owns and no one else may change\n"
                "4 T/tasks.d: skipped: no timers until it is fixed and \"systemctl daemon-reload\" runs\n");
}

static void test_exec_word(void **state) {
        static const struct {
                const char *in, *want;
        } cases[] = {
                {"", "\"\""},
                {"plain", "\"plain\""},
                {"a b", "\"a b\""},
                {"$HOME ${X} $$", "\"$$HOME $${X} $$$$\""},
                {"%n %%", "\"%%n %%%%\""},
                {"\"q\" 'q'", "\"\\\"q\\\" 'q'\""},
                {"back\\slash", "\"back\\\\slash\""},
                {";", "\";\""},
                {"tab\tnl\ncr\rdel\x7f", "\"tab\\x09nl\\x0acr\\x0ddel\\x7f\""},
                {"Grüße", "\"Grüße\""},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *got = generator_exec_word(cases[i].in);
                assert_non_null(got);
                if (!streq(got, cases[i].want))
                        fail_msg("case %zu: %s, want %s", i, got, cases[i].want);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_generate, setup, teardown),
                cmocka_unit_test_setup_teardown(test_nothing_scheduled, setup, teardown),
                cmocka_unit_test_setup_teardown(test_output_directory, setup, teardown),
                cmocka_unit_test_setup_teardown(test_untrusted, setup, teardown),
                cmocka_unit_test(test_exec_word),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
