/* SPDX-License-Identifier: MIT */
/* A run's stdin as a sealed memfd: what it holds, that nobody can change it, and independent readers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "launcher/stdin-memfd.h"
#include "shared/util.h"

static void assert_reads(int fd, const void *data, size_t size) {
        char buf[128 * 1024];
        size_t got = 0;
        ssize_t n;

        while ((n = read(fd, buf + got, sizeof(buf) - got)) > 0)
                got += (size_t) n;
        assert_int_equal(n, 0);
        assert_int_equal(got, size);
        assert_memory_equal(buf, data, size);
}

static void test_contents(void **state) {
        static char big[65536 + 17];
        static const struct {
                const char *data;
                size_t size;
        } cases[] = {
                {"", 0},
                {"x", 1},
                {"O:4:\"Lamb\":0:{}\0binary\n", 24},
                {big, sizeof(big)}, /* more than a frame may carry */
        };

        for (size_t i = 0; i < sizeof(big); i++)
                big[i] = (char) (i * 7);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_close_ int fd = stdin_memfd_new(cases[i].data, cases[i].size);
                struct stat st;

                assert_true(fd >= 0);
                assert_int_equal(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
                assert_int_equal(fstat(fd, &st), 0);
                assert_int_equal(st.st_size, (off_t) cases[i].size);
                assert_reads(fd, cases[i].data, cases[i].size); /* from offset 0 */
        }
}

static void test_sealed(void **state) {
        _cleanup_close_ int fd = stdin_memfd_new("secret", 6);

        assert_true(fd >= 0);
        assert_int_equal(fcntl(fd, F_GET_SEALS), F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
        assert_int_equal(pwrite(fd, "X", 1, 0), -1);
        assert_int_equal(errno, EPERM);
        assert_int_equal(ftruncate(fd, 0), -1);
        assert_int_equal(ftruncate(fd, 100), -1);
        assert_int_equal(fcntl(fd, F_ADD_SEALS, 0), -1); /* F_SEAL_SEAL: the seals are final */
        assert_int_equal(errno, EPERM);
}

/* Each reopened description reads from the start, whatever another one has read. */
static void test_reopen(void **state) {
        _cleanup_close_ int fd = stdin_memfd_new("abcdef", 6);
        _cleanup_close_ int a = -1, b = -1, dup_of_a = -1;
        char c;

        assert_true(fd >= 0);
        a = stdin_memfd_reopen(fd);
        assert_true(a >= 0);
        assert_int_equal(fcntl(a, F_GETFL) & O_ACCMODE, O_RDONLY);
        assert_int_equal(fcntl(a, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
        assert_int_equal(read(a, &c, 1), 1);
        assert_int_equal(c, 'a');

        /* A dup shares the offset; a reopened description does not. */
        dup_of_a = dup(a);
        assert_int_equal(read(dup_of_a, &c, 1), 1);
        assert_int_equal(c, 'b');
        b = stdin_memfd_reopen(fd);
        assert_true(b >= 0);
        assert_reads(b, "abcdef", 6);
        assert_reads(a, "cdef", 4);
        assert_int_equal(write(b, "x", 1), -1); /* read-only */

        assert_int_equal(stdin_memfd_reopen(-1), -EBADF);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_contents),
                cmocka_unit_test(test_sealed),
                cmocka_unit_test(test_reopen),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
