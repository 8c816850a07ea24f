/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <sched.h>
#include <unistd.h>

#include <cmocka.h>

#include "shared/nss.h"
#include "shared/util.h"

/* An id no database on a test machine has. */
#define NOBODY_HAS_ID ((uint32_t) 3999999999u)

static void test_passwd(void **state) {
        _cleanup_free_ char *buf = NULL, *buf2 = NULL;
        struct passwd pw, pw2;

        assert_int_equal(nss_get_passwd("root", 0, &pw, &buf), 0);
        assert_non_null(buf);
        assert_string_equal(pw.pw_name, "root");
        assert_int_equal(pw.pw_uid, 0);
        assert_int_equal(pw.pw_gid, 0);
        /* The strings live in the returned buffer. */
        assert_true(pw.pw_name >= buf && pw.pw_name < buf + 1024 * 1024);

        /* By uid (name NULL): the same entry. */
        assert_int_equal(nss_get_passwd(NULL, 0, &pw2, &buf2), 0);
        assert_string_equal(pw2.pw_name, "root");
        assert_string_equal(pw2.pw_dir, pw.pw_dir);
}

static void test_group(void **state) {
        _cleanup_free_ char *buf = NULL, *buf2 = NULL;
        struct group gr, gr2;

        assert_int_equal(nss_get_group("root", 0, &gr, &buf), 0);
        assert_string_equal(gr.gr_name, "root");
        assert_int_equal(gr.gr_gid, 0);
        assert_int_equal(nss_get_group(NULL, 0, &gr2, &buf2), 0);
        assert_string_equal(gr2.gr_name, "root");
}

/* "No such entry" is -ESRCH, or an errno nss_error_means_absent() recognizes; nothing is returned to
 * free. */
static void assert_absent(int r, const char *buf) {
        assert_true(r == -ESRCH || (r < 0 && nss_error_means_absent(-r)));
        assert_null(buf);
}

static void test_absent(void **state) {
        char *buf = NULL;
        struct passwd pw;
        struct group gr;

        assert_absent(nss_get_passwd("no-such-user-asynctask-test", 0, &pw, &buf), buf);
        assert_absent(nss_get_passwd(NULL, NOBODY_HAS_ID, &pw, &buf), buf);
        assert_absent(nss_get_group("no-such-group-asynctask-test", 0, &gr, &buf), buf);
        assert_absent(nss_get_group(NULL, NOBODY_HAS_ID, &gr, &buf), buf);
}

/* Writes a copy of /etc/group plus group NAME with n_members members of 8 characters each. */
static void write_group_file(const char *path, const char *name, size_t n_members) {
        FILE *in = fopen("/etc/group", "re"), *out = fopen(path, "we");
        char line[4096];

        assert_non_null(in);
        assert_non_null(out);
        while (fgets(line, sizeof(line), in))
                fputs(line, out);
        fclose(in);
        fprintf(out, "%s:x:3999999998:", name);
        for (size_t i = 0; i < n_members; i++)
                fprintf(out, "%su%07zu", i ? "," : "", i);
        fputs("\n", out);
        assert_int_equal(fclose(out), 0);
}

/* In a child with its own mount namespace, /etc/group replaced by one with a group of n_members:
 * the lookup's result, and the member count it saw. */
static int lookup_big_group(size_t n_members, size_t *ret_n) {
        char path[] = "/tmp/test-nss-group-XXXXXX";
        int fd = mkstemp(path), pfd[2], status;
        size_t n = 0;
        int result = 0;
        pid_t pid;

        assert_true(fd >= 0);
        close(fd);
        write_group_file(path, "asynctask-big", n_members);
        assert_int_equal(pipe(pfd), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                _cleanup_free_ char *buf = NULL;
                struct group gr;
                int out[2] = {0, 0};

                if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
                    mount(path, "/etc/group", NULL, MS_BIND, NULL) < 0)
                        _exit(77);
                out[0] = nss_get_group("asynctask-big", 0, &gr, &buf);
                if (out[0] == 0)
                        while (gr.gr_mem[out[1]])
                                out[1]++;
                if (write(pfd[1], out, sizeof(out)) != sizeof(out))
                        _exit(1);
                _exit(0);
        }
        close(pfd[1]);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        (void) unlink(path);
        assert_true(WIFEXITED(status));
        if (WEXITSTATUS(status) == 77) {
                close(pfd[0]);
                return 77;
        }
        assert_int_equal(WEXITSTATUS(status), 0);
        {
                int out[2];

                assert_int_equal(read(pfd[0], out, sizeof(out)), sizeof(out));
                result = out[0];
                n = (size_t) out[1];
        }
        close(pfd[0]);
        *ret_n = n;
        return result;
}

static void test_buffer_grows(void **state) {
        size_t n = 0;
        int r;

        if (geteuid() != 0)
                skip(); /* needs a mount namespace to put a big group in place */
        /* About 45 KiB of members: far beyond the first 1 KiB buffer. */
        r = lookup_big_group(5000, &n);
        if (r == 77)
                skip();
        assert_int_equal(r, 0);
        assert_int_equal(n, 5000);

        /* An entry beyond the 1 MiB cap (about 1.2 MiB of member names and their pointers) is refused,
         * not grown without end. */
        r = lookup_big_group(70000, &n);
        assert_int_equal(r, -ERANGE);
}

static void test_error_means_absent(void **state) {
        const int absent[] = {ENOENT, ESRCH, EBADF, EPERM};
        const int real[] = {0, ENOMEM, EIO, ERANGE, EAGAIN, EMFILE};

        for (size_t i = 0; i < ELEMENTSOF(absent); i++)
                assert_true(nss_error_means_absent(absent[i]));
        for (size_t i = 0; i < ELEMENTSOF(real); i++)
                assert_false(nss_error_means_absent(real[i]));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_passwd),
                cmocka_unit_test(test_group),
                cmocka_unit_test(test_absent),
                cmocka_unit_test(test_buffer_grows),
                cmocka_unit_test(test_error_means_absent),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
