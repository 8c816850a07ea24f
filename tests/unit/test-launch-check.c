/* SPDX-License-Identifier: MIT */
/*
 * launch_check(): the launcher's decision on each launch a (possibly compromised) front sends, one row
 * per case: the runs the launcher has, the message, and the verdict (the argv built, or the reason).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "launcher/launch-check.h"
#include "launcher/run-table.h"
#include "shared/config.h"
#include "shared/limits.h"
#include "shared/lproto.h"
#include "shared/util.h"

/* ---- the launcher's config ---- */

static char *exec_touch[] = {"/usr/bin/touch", NULL};
static char *exec_true[] = {"/bin/true", NULL};
static char *exec_env[] = {"/usr/bin/env", "-i", "/bin/prog", NULL};

static TaskDef tasks[] = {
        {.name = "touch", .exec = exec_touch, .n_exec = 1, .max_args = 2},
        {.name = "noargs", .exec = exec_true, .n_exec = 1},
        {.name = "prefixed", .exec = exec_env, .n_exec = 3, .max_args = TASK_ARGS_MAX},
        {.name = "empty", .max_args = 1},
        {.name = "conc1", .exec = exec_true, .n_exec = 1, .concurrency = 1},
        {.name = "conc2", .exec = exec_true, .n_exec = 1, .concurrency = 2},
};
static TaskDef commands[] = {
        {.name = "echo \"hello world\"", .is_command = true},
        {.name = "uptime", .is_command = true, .concurrency = 1},
};
static const Config config = {
        .max_running = 16,
        .max_frame_bytes = 100,
        .tasks = tasks,
        .n_tasks = ELEMENTSOF(tasks),
        .commands = commands,
        .n_commands = ELEMENTSOF(commands),
};

/* ---- the cases ---- */

typedef struct RunSpec {
        uint64_t id; /* 0 ends the list */
        const char *task;
        bool is_command;
        bool finished;
} RunSpec;

#define MAX_CASE_RUNS 4
#define MAX_CASE_ARGS 4

static char long_arg[TASK_ARG_BYTES_MAX + 2];  /* TASK_ARG_BYTES_MAX + 1 bytes */
static char limit_arg[TASK_ARG_BYTES_MAX + 1]; /* TASK_ARG_BYTES_MAX bytes */

typedef struct Case {
        const char *label;
        RunSpec runs[MAX_CASE_RUNS + 1];
        size_t more_running;  /* runs of a task "other" in flight, besides runs[] */
        size_t more_finished; /* results of a task "other" not acknowledged yet, besides runs[] */
        uint64_t id;
        const char *task, *cmd;
        const char *args[MAX_CASE_ARGS + 1];
        size_t n_many_args;         /* instead of args: this many "x" */
        const char *const *arg_ref; /* instead of args: one argument from a buffer above */
        size_t stdin_len;
        /* Accepted: the argv, its elements joined by "|". Rejected: "!" and a part of the reason. */
        const char *want;
} Case;

static const char *const long_arg_ref[] = {long_arg};
static const char *const limit_arg_ref[] = {limit_arg};

static const Case cases[] = {
        /* What the config allows */
        {"task with args", .id = 1, .task = "touch", .args = {"a", "b"}, .want = "/usr/bin/touch|a|b"},
        {"task without args", .id = 1, .task = "touch", .want = "/usr/bin/touch"},
        {"args follow the exec prefix", .id = 1, .task = "prefixed", .args = {"-x", "$(id)"},
         .want = "/usr/bin/env|-i|/bin/prog|-x|$(id)"},
        {"arguments stay literal", .id = 1, .task = "touch", .args = {"; rm -rf /", "`id`"},
         .want = "/usr/bin/touch|; rm -rf /|`id`"},
        {"listed command", .id = 1, .cmd = "echo \"hello world\"",
         .want = "/bin/sh|-c|echo \"hello world\""},
        {"an arg of the longest size", .id = 1, .task = "touch", .arg_ref = limit_arg_ref, .want = "*"},
        {"TASK_ARGS_MAX args", .id = 1, .task = "prefixed", .n_many_args = TASK_ARGS_MAX, .want = "*"},
        {"a finished run of the same id", .runs = {{1, "touch", .finished = true}}, .id = 1, .task = "touch",
         .want = "/usr/bin/touch"},
        {"another run of the same task", .runs = {{2, "touch"}}, .id = 1, .task = "touch",
         .want = "/usr/bin/touch"},

        /* Outside the config */
        {"unknown task", .id = 1, .task = "rm", .want = "!no task named 'rm'"},
        {"task name of another case", .id = 1, .task = "TOUCH", .want = "!no task named 'TOUCH'"},
        {"a path as task name", .id = 1, .task = "../../bin/sh", .want = "!no task named"},
        {"unlisted command", .id = 1, .cmd = "rm -rf /", .want = "!not on the launcher's commands list"},
        {"listed command plus more", .id = 1, .cmd = "echo \"hello world\"; id",
         .want = "!not on the launcher's commands list"},
        {"a task's name as command", .id = 1, .cmd = "touch",
         .want = "!not on the launcher's commands list"},
        {"command with args", .id = 1, .cmd = "echo \"hello world\"", .args = {"x"},
         .want = "!commands take no arguments"},
        {"command with stdin", .id = 1, .cmd = "echo \"hello world\"", .stdin_len = 5,
         .want = "!commands take no standard input"},
        {"args beyond max_args", .id = 1, .task = "touch", .args = {"a", "b", "c"},
         .want = "!takes at most 2 argument(s), got 3"},
        {"args to a task taking none", .id = 1, .task = "noargs", .args = {"a"},
         .want = "!takes at most 0 argument(s), got 1"},
        {"an arg too long", .id = 1, .task = "touch", .arg_ref = long_arg_ref,
         .want = "!argument 1 is longer than 4096 bytes"},
        {"task without a command line", .id = 1, .task = "empty", .want = "!has no command line"},

        /* The runs the launcher has */
        {"same id still running", .runs = {{1, "touch"}}, .id = 1, .task = "touch",
         .want = "!task 1 is already running"},
        {"same id running another task", .runs = {{1, "noargs"}}, .id = 1, .task = "touch",
         .want = "!task 1 is already running"},
        {"the launcher's ceiling", .more_running = RUNNING_MAX, .id = 1, .task = "touch",
         .want = "!already runs 4096 task"},
        {"max_running reached", .more_running = 16, .id = 1, .task = "touch",
         .want = "!the launcher already runs 16 task(s), max_running is 16"},
        {"one below max_running", .more_running = 15, .id = 1, .task = "touch", .want = "/usr/bin/touch"},
        {"held results are not running", .runs = {{2, "touch", .finished = true}}, .more_running = 15,
         .id = 1, .task = "touch", .want = "/usr/bin/touch"},
        {"a run from before counts", .runs = {{2, NULL}}, .more_running = 15, .id = 1, .task = "touch",
         .want = "!max_running is 16"},
        {"concurrency 1, one running", .runs = {{2, "conc1"}}, .id = 1, .task = "conc1",
         .want = "!task 'conc1' already runs 1 time(s), its concurrency is 1"},
        {"concurrency 1, its run finished", .runs = {{2, "conc1", .finished = true}}, .id = 1,
         .task = "conc1", .want = "/bin/true"},
        {"concurrency counts its own task", .runs = {{2, "touch"}, {3, "conc2"}}, .id = 1, .task = "conc1",
         .want = "/bin/true"},
        {"concurrency counts tasks, not commands", .runs = {{2, "conc1", .is_command = true}}, .id = 1,
         .task = "conc1", .want = "/bin/true"},
        {"concurrency 2, one running", .runs = {{2, "conc2"}}, .id = 1, .task = "conc2",
         .want = "/bin/true"},
        {"concurrency 2, two running", .runs = {{2, "conc2"}, {3, "conc2"}}, .id = 1, .task = "conc2",
         .want = "!task 'conc2' already runs 2 time(s), its concurrency is 2"},
        {"a listed command's concurrency", .runs = {{2, "uptime", .is_command = true}}, .id = 1,
         .cmd = "uptime", .want = "!the command already runs 1 time(s), its concurrency is 1"},
        {"results held: one below the bound", .more_finished = 16 * UNACKED_RESULTS_PER_RUNNING - 1, .id = 1,
         .task = "touch", .want = "/usr/bin/touch"},
        {"results held: at the bound", .more_finished = 16 * UNACKED_RESULTS_PER_RUNNING, .id = 1,
         .task = "touch", .want = "!too many unacknowledged results (64, at most 64)"},

        /* stdin: one client frame's worth at most */
        {"stdin of max_frame_bytes", .id = 1, .task = "touch", .stdin_len = 100, .want = "/usr/bin/touch"},
        {"stdin over max_frame_bytes", .id = 1, .task = "touch", .stdin_len = 101,
         .want = "!stdin of 101 bytes is over max_frame_bytes (100)"},
};

/* ---- running a case ---- */

static void table_fill(RunTable *t, const Case *c) {
        for (const RunSpec *s = c->runs; s->id != 0; s++) {
                Run *run;

                assert_int_equal(run_table_add(t, s->id, s->task, s->is_command, &run), 0);
                if (s->finished) {
                        RunResult result = {.result = "success"};
                        run_table_finish(t, run, &result);
                }
        }
        for (size_t i = 0; i < c->more_running; i++) {
                Run *run;
                assert_int_equal(run_table_add(t, 1000000 + i, "other", false, &run), 0);
        }
        for (size_t i = 0; i < c->more_finished; i++) {
                RunResult result = {.result = "exit-code"};
                Run *run;

                assert_int_equal(run_table_add(t, 2000000 + i, "other", false, &run), 0);
                run_table_finish(t, run, &result);
        }
}

static void message_fill(LauncherMsg *m, const Case *c) {
        *m = (LauncherMsg){.type = LMSG_LAUNCH, .id = c->id, .attempt = 1};
        m->task = c->task ? strdup(c->task) : NULL;
        m->cmd = c->cmd ? strdup(c->cmd) : NULL;
        m->submitter = strdup("uid:0");
        m->args = calloc(TASK_ARGS_MAX + 1, sizeof(char *));
        assert_non_null(m->args);
        if (c->n_many_args > 0)
                for (; m->n_args < c->n_many_args; m->n_args++)
                        m->args[m->n_args] = strdup("x");
        else if (c->arg_ref)
                m->args[m->n_args++] = strdup(c->arg_ref[0]);
        else
                for (; c->args[m->n_args]; m->n_args++)
                        m->args[m->n_args] = strdup(c->args[m->n_args]);
        if (c->stdin_len > 0) {
                m->stdin_data = calloc(1, c->stdin_len);
                assert_non_null(m->stdin_data);
                m->stdin_len = c->stdin_len;
        }
}

static void argv_join(char *const *argv, char *buf, size_t size) {
        buf[0] = '\0';
        for (size_t i = 0; argv[i]; i++) {
                size_t used = strlen(buf);
                snprintf(buf + used, size - used, "%s%s", i > 0 ? "|" : "", argv[i]);
        }
}

static void check_case(const Case *c) {
        _cleanup_(lmsg_done) LauncherMsg m = {};
        _cleanup_(launch_check_done) LaunchCheck lc = {};
        RunTable t = {};
        char joined[1024];
        int r;

        table_fill(&t, c);
        message_fill(&m, c);
        r = launch_check(&config, &t, &m, &lc);

        if (c->want[0] == '!') {
                if (r != 0)
                        fail_msg("%s: accepted, want rejected (%s)", c->label, c->want + 1);
                if (!strstr(lc.reason, c->want + 1))
                        fail_msg("%s: reason '%s', want '%s' in it", c->label, lc.reason, c->want + 1);
                assert_null(lc.argv);
        } else {
                if (r != 1)
                        fail_msg("%s: rejected (%s), want accepted", c->label, lc.reason);
                assert_non_null(lc.def);
                assert_non_null(lc.argv);
                /* The argv is the config's exec, then exactly the message's args, nothing else. */
                if (c->want[0] == '*') {
                        assert_string_equal(lc.argv[0], lc.def->exec[0]);
                        for (size_t i = 0; i < m.n_args; i++)
                                assert_ptr_equal(lc.argv[lc.def->n_exec + i], m.args[i]);
                        assert_null(lc.argv[lc.def->n_exec + m.n_args]);
                } else {
                        argv_join(lc.argv, joined, sizeof(joined));
                        if (!streq(joined, c->want))
                                fail_msg("%s: argv '%s', want '%s'", c->label, joined, c->want);
                }
        }
        run_table_done(&t);
}

static void test_cases(void **state) {
        memset(long_arg, 'y', TASK_ARG_BYTES_MAX + 1);
        memset(limit_arg, 'z', TASK_ARG_BYTES_MAX);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                check_case(&cases[i]);
}

static void test_not_a_launch(void **state) {
        LauncherMsg m = {.type = LMSG_STOP, .id = 1};
        LaunchCheck lc;
        RunTable t = {};

        assert_int_equal(launch_check(&config, &t, &m, &lc), -EINVAL);
        launch_check_done(&lc);
}

/* A launch of n_args args of arg_len bytes each and stdin_len bytes of stdin, every byte one that JSON
 * escapes at length (\u0001), with the longest task name and submitter: its length as formatted. */
static size_t worst_launch_bytes(const char *task, const char *cmd, size_t n_args, size_t arg_len,
                                 size_t stdin_len) {
        char name[TASK_NAME_BYTES_MAX + 1], submitter[SUBMITTER_BYTES_MAX + 1];
        _cleanup_free_ char *line = NULL;
        LauncherMsg m = {.type = LMSG_LAUNCH, .id = (UINT64_C(1) << 53) - 1, .attempt = UINT32_MAX};
        size_t n;

        memset(name, 'n', TASK_NAME_BYTES_MAX);
        name[TASK_NAME_BYTES_MAX] = '\0';
        memset(submitter, 's', SUBMITTER_BYTES_MAX);
        submitter[SUBMITTER_BYTES_MAX] = '\0';
        m.task = task ? name : NULL;
        m.cmd = (char *) cmd;
        m.submitter = submitter;
        m.args = calloc(n_args + 1, sizeof(char *));
        assert_non_null(m.args);
        for (size_t i = 0; i < n_args; i++) {
                m.args[i] = malloc(arg_len + 1);
                assert_non_null(m.args[i]);
                memset(m.args[i], '\1', arg_len);
                m.args[i][arg_len] = '\0';
        }
        m.n_args = n_args;
        m.stdin_data = malloc(stdin_len + 1);
        assert_non_null(m.stdin_data);
        memset(m.stdin_data, 0xff, stdin_len);
        m.stdin_len = stdin_len;

        line = lmsg_format(&m, &n);
        assert_non_null(line);
        strv_free(m.args);
        free(m.stdin_data);
        return n - 1; /* without its newline, as the frame reader counts */
}

static void test_message_limit(void **state) {
        static char command[1001];
        TaskDef only_command[] = {{.name = command, .is_command = true}};
        Config big = config,
               commands_only = {.max_frame_bytes = 1024, .commands = only_command, .n_commands = 1};
        size_t limit = launch_message_bytes_max(&config), n;

        /* The worst a front following the config can send fits, with little to spare: the widest task's
         * max_args args of the longest size, max_frame_bytes of stdin. */
        n = worst_launch_bytes("t", NULL, TASK_ARGS_MAX, TASK_ARG_BYTES_MAX, config.max_frame_bytes);
        assert_true(n <= limit);
        assert_true(n > limit - LAUNCHER_MSG_ENVELOPE_BYTES);

        /* A listed command, escaped at its worst. */
        memset(command, '\1', sizeof(command) - 1);
        limit = launch_message_bytes_max(&commands_only);
        n = worst_launch_bytes(NULL, command, 0, 0, 1024);
        assert_true(n <= limit);
        assert_true(n > limit - LAUNCHER_MSG_ENVELOPE_BYTES);

        /* Without tasks taking args: an envelope and the stdin. */
        commands_only.n_commands = 0;
        assert_int_equal(launch_message_bytes_max(&commands_only), LAUNCHER_MSG_ENVELOPE_BYTES + 1368 + 2);

        /* Never past the protocol's own limit. */
        big.max_frame_bytes = FRAME_BYTES_MAX;
        assert_true(launch_message_bytes_max(&big) <= LAUNCHER_MSG_BYTES_MAX);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_cases),
                cmocka_unit_test(test_not_a_launch),
                cmocka_unit_test(test_message_limit),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
