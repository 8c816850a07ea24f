/* SPDX-License-Identifier: MIT */
/*
 * asynctask-exec and its hex codec (src/shared/exec-hex.h): every byte round-trips; malformed arguments are
 * refused with a message and status 203 (systemd's EXIT_EXEC); the built helper executes the program
 * with exactly the decoded argv. The helper is the one built next to this test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "shared/exec-hex.h"
#include "shared/util.h"

static void test_hex_round_trip(void **state) {
        char all[256];
        const char *error = NULL;

        for (int i = 1; i < 256; i++)
                all[i - 1] = (char) i;
        all[255] = 0;
        _cleanup_free_ char *hex = exec_hex_encode(all);
        assert_int_equal(strlen(hex), 2 * 255);
        for (const char *p = hex; *p; p++)
                assert_true((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'));
        assert_memory_equal(hex + 2 * ('$' - 1), "24", 2);
        _cleanup_free_ char *back = exec_hex_decode(hex, &error);
        assert_non_null(back);
        assert_string_equal(back, all);

        _cleanup_free_ char *e = exec_hex_encode("");
        assert_string_equal(e, "");
        _cleanup_free_ char *d = exec_hex_decode("", &error);
        assert_string_equal(d, "");
        _cleanup_free_ char *x = exec_hex_encode("x;$HOME");
        assert_string_equal(x, "783b24484f4d45");
}

static void test_hex_refused(void **state) {
        static const struct {
                const char *hex, *error;
        } bad[] = {
                {"7", "odd number of hex digits"},   {"41424", "odd number of hex digits"},
                {"4G", "not a lowercase hex digit"}, {"4A", "not a lowercase hex digit"},
                {"x1", "not a lowercase hex digit"}, {" 41", "odd number of hex digits"},
                {"-1", "not a lowercase hex digit"}, {"4100", "encodes a NUL byte"},
                {"00", "encodes a NUL byte"},
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                const char *error = NULL;
                char *d = exec_hex_decode(bad[i].hex, &error);
                if (d)
                        fail_msg("'%s' decoded", bad[i].hex);
                assert_string_equal(error, bad[i].error);
        }
}

/* Runs the built helper with args; returns its wait status, its stdout and stderr in out/err. */
static int run_helper(char *const *args, char *out, size_t out_size, char *err, size_t err_size) {
        char self[PATH_MAX], helper[PATH_MAX + 32];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        int o[2], e[2], status;
        char *argv[16];
        size_t k = 0;
        pid_t pid;

        assert_true(n > 0);
        self[n] = 0;
        *strrchr(self, '/') = 0;
        snprintf(helper, sizeof(helper), "%s/asynctask-exec", self);
        argv[k++] = helper;
        for (; *args; args++)
                argv[k++] = *args;
        argv[k] = NULL;
        assert_int_equal(pipe(o), 0);
        assert_int_equal(pipe(e), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                dup2(o[1], 1);
                dup2(e[1], 2);
                execv(helper, argv);
                _exit(99);
        }
        close(o[1]);
        close(e[1]);
        size_t got = 0;
        while ((n = read(o[0], out + got, out_size - 1 - got)) > 0)
                got += (size_t) n;
        out[got] = 0;
        got = 0;
        while ((n = read(e[0], err + got, err_size - 1 - got)) > 0)
                got += (size_t) n;
        err[got] = 0;
        close(o[0]);
        close(e[0]);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        return status;
}

/* The program gets the decoded bytes as its argv: /bin/sh prints each argument between brackets. */
static void test_helper_runs_program(void **state) {
        static const char *const argv[] = {"/bin/sh",
                                           "-c",
                                           "for a; do printf '[%s]' \"$a\"; done",
                                           "sh",
                                           "x;$HOME",
                                           "",
                                           "a\\b \"c\" 'd'",
                                           "tab\there\nline\xc3\xa9",
                                           NULL};
        char *hex[16] = {};
        char out[4096], err[4096];
        size_t i;

        for (i = 0; argv[i]; i++)
                hex[i] = exec_hex_encode(argv[i]);
        int status = run_helper(hex, out, sizeof(out), err, sizeof(err));
        for (i = 0; hex[i]; i++)
                free(hex[i]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        assert_string_equal(err, "");
        assert_string_equal(out, "[x;$HOME][][a\\b \"c\" 'd'][tab\there\nline\xc3\xa9]");
}

static void test_helper_refuses(void **state) {
        char out[4096], err[4096];
        int status;

        /* A bad digit: nothing runs, status 203, the argument named. */
        char *bad[] = {"2f62696e2f7472756", NULL}; /* odd */
        status = run_helper(bad, out, sizeof(out), err, sizeof(err));
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 203);
        assert_string_equal(err, "asynctask-exec: argument 1: odd number of hex digits\n");
        assert_string_equal(out, "");

        char *upper[] = {"2f62696e2f74727565", "4A", NULL};
        status = run_helper(upper, out, sizeof(out), err, sizeof(err));
        assert_int_equal(WEXITSTATUS(status), 203);
        assert_string_equal(err, "asynctask-exec: argument 2: not a lowercase hex digit\n");

        /* No program. */
        char *none[] = {NULL};
        status = run_helper(none, out, sizeof(out), err, sizeof(err));
        assert_int_equal(WEXITSTATUS(status), 203);
        assert_non_null(strstr(err, "usage"));
        char *empty[] = {"", NULL};
        status = run_helper(empty, out, sizeof(out), err, sizeof(err));
        assert_int_equal(WEXITSTATUS(status), 203);
        assert_string_equal(err, "asynctask-exec: the program's path is empty\n");

        /* A program that does not exist: exec fails, 203 with the reason. */
        _cleanup_free_ char *missing = exec_hex_encode("/nonexistent/asynctask-test");
        char *gone[] = {missing, NULL};
        status = run_helper(gone, out, sizeof(out), err, sizeof(err));
        assert_int_equal(WEXITSTATUS(status), 203);
        assert_string_equal(err,
                            "asynctask-exec: cannot execute /nonexistent/asynctask-test: No such file or "
                            "directory\n");

        /* The program's own status is the helper's. */
        _cleanup_free_ char *f = exec_hex_encode("/bin/false");
        char *fl[] = {f, NULL};
        status = run_helper(fl, out, sizeof(out), err, sizeof(err));
        assert_int_equal(WEXITSTATUS(status), 1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_hex_round_trip),
                cmocka_unit_test(test_hex_refused),
                cmocka_unit_test(test_helper_runs_program),
                cmocka_unit_test(test_helper_refuses),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
