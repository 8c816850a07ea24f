/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "shared/daemon-cli.h"
#include "shared/log.h"
#include "tmpdir.h"
#include "shared/util.h"

static unsigned help_calls;

static void count_help(void) {
        help_calls++;
}

static const DaemonCli front = {.program = "front", .version = "9.9", .help = count_help, .state_dir = true};
static const DaemonCli launcher = {.program = "launcher", .version = "9.9", .help = count_help};

/* argv from "prog" and a NULL-terminated argument list; returns argc. */
static int make_argv(char *argv[], size_t size, va_list ap) {
        int argc = 0;

        argv[argc++] = (char *) "prog";
        for (char *a; (a = va_arg(ap, char *));) {
                assert_true((size_t) argc + 1 < size);
                argv[argc++] = a;
        }
        argv[argc] = NULL;
        return argc;
}

static int parse(const DaemonCli *cli, DaemonArgs *args, ...) {
        char *argv[32];
        va_list ap;
        int argc;

        va_start(ap, args);
        argc = make_argv(argv, ELEMENTSOF(argv), ap);
        va_end(ap);
        return daemon_args_parse(cli, argc, argv, args);
}

static void test_defaults(void **state) {
        DaemonArgs args;

        assert_int_equal(parse(&front, &args, NULL), 0);
        assert_string_equal(args.config_path, CONFIG_PATH_DEFAULT);
        assert_false(args.check_config);
        assert_int_equal(args.n_listen, 0);
        assert_int_equal(args.log_level, -1);
        assert_null(args.state_dir);
        daemon_args_done(&args);
}

static void test_all_options(void **state) {
        DaemonArgs args;

        assert_int_equal(parse(&front, &args, "--config", "/x/a.json", "--check-config", "--listen",
                               "unix:/a", "--log-level", "debug", "--listen", "tcp:127.0.0.1:1",
                               "--state-dir", "/var/x", NULL),
                         0);
        assert_string_equal(args.config_path, "/x/a.json");
        assert_true(args.check_config);
        assert_int_equal(args.n_listen, 2);
        assert_string_equal(args.listen[0], "unix:/a");
        assert_string_equal(args.listen[1], "tcp:127.0.0.1:1");
        assert_int_equal(args.log_level, LOG_DEBUG);
        assert_string_equal(args.state_dir, "/var/x");
        daemon_args_done(&args);
        assert_null(args.listen);
        assert_int_equal(args.n_listen, 0);

        /* The "=" form and the launcher's set (no --state-dir). */
        assert_int_equal(parse(&launcher, &args, "--config=/y.json", "--log-level=warning", NULL), 0);
        assert_string_equal(args.config_path, "/y.json");
        assert_int_equal(args.log_level, LOG_WARNING);
        daemon_args_done(&args);
}

static void test_state_dir_only_where_taken(void **state) {
        DaemonArgs args;

        assert_int_equal(parse(&launcher, &args, "--state-dir", "/var/x", NULL), -EINVAL);
        daemon_args_done(&args);
        assert_int_equal(parse(&launcher, &args, "--state", "/var/x", NULL), -EINVAL);
        daemon_args_done(&args);
        /* An abbreviation works where the option exists. */
        assert_int_equal(parse(&front, &args, "--state", "/var/x", NULL), 0);
        assert_string_equal(args.state_dir, "/var/x");
        daemon_args_done(&args);
}

static void test_usage_errors(void **state) {
        DaemonArgs args;

        assert_int_equal(parse(&front, &args, "--log-level", "loud", NULL), -EINVAL);
        daemon_args_done(&args);
        assert_int_equal(parse(&front, &args, "--bogus", NULL), -EINVAL);
        daemon_args_done(&args);
        assert_int_equal(parse(&front, &args, "--config", NULL), -EINVAL); /* missing value */
        daemon_args_done(&args);
        assert_int_equal(parse(&front, &args, "--check-config", "extra", NULL), -EINVAL);
        daemon_args_done(&args);
        /* A usage error after --listen values frees them too (no leak under ASan). */
        assert_int_equal(parse(&front, &args, "--listen", "unix:/a", "--nope", NULL), -EINVAL);
        daemon_args_done(&args);
}

static void test_help_and_version(void **state) {
        DaemonArgs args;

        help_calls = 0;
        assert_int_equal(parse(&front, &args, "--help", NULL), 1);
        daemon_args_done(&args);
        assert_int_equal(parse(&launcher, &args, "-h", NULL), 1);
        daemon_args_done(&args);
        assert_int_equal(help_calls, 2);
        assert_int_equal(parse(&front, &args, "--version", NULL), 1);
        daemon_args_done(&args);
        assert_int_equal(help_calls, 2);
}

/* daemon_main(): which hook ran, with what. */
static unsigned run_calls, check_calls, check_args_calls;
static char seen_path[64];

static int fake_run(const DaemonArgs *args) {
        run_calls++;
        snprintf(seen_path, sizeof(seen_path), "%s", args->config_path);
        return 42;
}

static int fake_check_config(const char *path) {
        check_calls++;
        snprintf(seen_path, sizeof(seen_path), "%s", path);
        return 7;
}

/* Refuses any --listen, as a program with its own rules would. */
static int no_listen(const DaemonArgs *args) {
        check_args_calls++;
        return args->n_listen > 0 ? -EINVAL : 0;
}

static int run_main(const DaemonCli *cli, ...) {
        char *argv[32];
        va_list ap;
        int argc;

        va_start(ap, cli);
        argc = make_argv(argv, ELEMENTSOF(argv), ap);
        va_end(ap);
        run_calls = check_calls = check_args_calls = 0;
        seen_path[0] = '\0';
        return daemon_main(cli, argc, argv);
}

static void test_main(void **state) {
        const DaemonCli cli = {
                .program = "prog",
                .version = "9.9",
                .help = count_help,
                .check_args = no_listen,
                .check_config = fake_check_config,
                .run = fake_run,
        };

        /* Runs, and its exit status is main()'s. */
        assert_int_equal(run_main(&cli, "--config", "/a.json", NULL), 42);
        assert_int_equal(run_calls, 1);
        assert_int_equal(check_calls, 0);
        assert_int_equal(check_args_calls, 1);
        assert_string_equal(seen_path, "/a.json");

        /* --check-config instead of running. */
        assert_int_equal(run_main(&cli, "--check-config", NULL), 7);
        assert_int_equal(check_calls, 1);
        assert_int_equal(run_calls, 0);
        assert_string_equal(seen_path, CONFIG_PATH_DEFAULT);

        /* Usage errors, the program's own included, exit 2 before anything runs. */
        assert_int_equal(run_main(&cli, "--bogus", NULL), 2);
        assert_int_equal(check_args_calls, 0);
        assert_int_equal(run_main(&cli, "--listen", "unix:/x", "--check-config", NULL), 2);
        assert_int_equal(check_args_calls, 1);
        assert_int_equal(run_calls + check_calls, 0);

        /* --help and --version exit 0. */
        assert_int_equal(run_main(&cli, "--help", NULL), 0);
        assert_int_equal(run_main(&cli, "--version", NULL), 0);
        assert_int_equal(run_calls + check_calls + check_args_calls, 0);
}

static void write_config(const TmpDir *f, const char *text) {
        FILE *file = fopen(f->path, "we");

        assert_non_null(file);
        fputs(text, file);
        fclose(file);
}

static size_t count_lines(const char *text) {
        size_t n = 0;

        for (const char *p = text; *p; p++)
                n += *p == '\n';
        return n;
}

/* Runs daemon_check_config() with err captured: returns its result, *ret_text what it printed. */
static int check(const TmpDir *f, char **ret_text, Config **ret_config) {
        char *text = NULL;
        size_t size = 0;
        FILE *err = open_memstream(&text, &size);
        int r;

        assert_non_null(err);
        r = daemon_check_config(f->path, err, ret_config);
        fclose(err);
        *ret_text = text;
        return r;
}

static void test_check_config_valid(void **state) {
        TmpDir *f = *state;
        _cleanup_free_ char *text = NULL;
        Config *c = NULL;

        write_config(f, "{\"commands\": [{\"cmd\": \"true\", \"user\": \"root\"}]}");
        assert_int_equal(check(f, &text, &c), 0);
        assert_string_equal(text, "");
        assert_non_null(c);
        assert_int_equal(c->n_commands, 1);
        config_free(c);
}

static void test_check_config_lists_every_error(void **state) {
        TmpDir *f = *state;
        _cleanup_free_ char *text = NULL, *expect = NULL;
        Config *c = NULL;

        write_config(f, "{\"max_running\": \"many\", \"executor\": \"magic\"}");
        assert_int_equal(check(f, &text, &c), -EINVAL);
        assert_null(c);
        /* One "FILE: KEY: MESSAGE" line per problem. */
        assert_int_equal(asprintf(&expect, "%s: max_running: ", f->path) > 0, 1);
        assert_non_null(strstr(text, expect));
        free(expect);
        assert_int_equal(asprintf(&expect, "%s: executor: ", f->path) > 0, 1);
        assert_non_null(strstr(text, expect));
        assert_int_equal(count_lines(text), 2);
}

static void test_check_config_missing_file(void **state) {
        TmpDir *f = *state;
        _cleanup_free_ char *text = NULL, *expect = NULL;
        Config *c = NULL;

        /* The file as a whole: an empty KEY, still three fields. */
        assert_int_equal(check(f, &text, &c), -ENOENT);
        assert_null(c);
        assert_int_equal(asprintf(&expect, "%s: : ", f->path) > 0, 1);
        assert_true(startswith(text, expect));
        assert_int_equal(count_lines(text), 1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_all_options),
                cmocka_unit_test(test_state_dir_only_where_taken),
                cmocka_unit_test(test_usage_errors),
                cmocka_unit_test(test_help_and_version),
                cmocka_unit_test(test_main),
                cmocka_unit_test_setup_teardown(test_check_config_valid, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_check_config_lists_every_error, tmpdir_setup,
                                                tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_check_config_missing_file, tmpdir_setup,
                                                tmpdir_teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
