/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "shared/listen-unix.h"
#include "tmpdir.h"
#include "shared/util.h"

#define SUN_PATH_SIZE sizeof(((struct sockaddr_un){}).sun_path)

/* Connects to path: 0, or -errno. */
static int try_connect(const char *path) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd, r = 0;

        assert_true(strlen(path) < sizeof(sa.sun_path));
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                r = -errno;
        close(fd);
        return r;
}

static mode_t file_mode(const char *path) {
        struct stat st;

        assert_int_equal(lstat(path, &st), 0);
        assert_true(S_ISSOCK(st.st_mode));
        return st.st_mode & 07777;
}

static void test_listens(void **state) {
        TmpDir *f = *state;
        int fd = -1, flags;

        assert_int_equal(listen_unix(f->path, 0666, &fd), 0);
        assert_true(fd >= 0);
        flags = fcntl(fd, F_GETFL);
        assert_true(flags & O_NONBLOCK);
        assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        assert_int_equal(file_mode(f->path), 0666);

        assert_int_equal(try_connect(f->path), 0);
        /* Non-blocking: the connection is there to accept, and then there is none. */
        int c = accept(fd, NULL, NULL);
        assert_true(c >= 0);
        close(c);
        assert_int_equal(accept(fd, NULL, NULL), -1);
        assert_int_equal(errno, EAGAIN);
        close(fd);
}

static void test_mode_is_applied_whatever_the_umask(void **state) {
        TmpDir *f = *state;
        const mode_t modes[] = {0600, 0660, 0666};
        const mode_t umasks[] = {0, 022, 077};
        mode_t saved = umask(0);

        for (size_t m = 0; m < ELEMENTSOF(modes); m++)
                for (size_t u = 0; u < ELEMENTSOF(umasks); u++) {
                        int fd = -1;

                        (void) umask(umasks[u]);
                        assert_int_equal(listen_unix(f->path, modes[m], &fd), 0);
                        assert_int_equal(file_mode(f->path), modes[m]);
                        /* The process umask is what it was. */
                        assert_int_equal(umask(umasks[u]), umasks[u]);
                        close(fd);
                        assert_int_equal(unlink(f->path), 0);
                }
        (void) umask(saved);
}

static void test_stale_socket_is_replaced(void **state) {
        TmpDir *f = *state;
        int fd = -1, first = -1;

        /* A previous run that exited without removing its socket file. */
        assert_int_equal(listen_unix(f->path, 0600, &first), 0);
        close(first);
        assert_int_equal(try_connect(f->path), -ECONNREFUSED);

        assert_int_equal(listen_unix(f->path, 0666, &fd), 0);
        assert_int_equal(file_mode(f->path), 0666);
        assert_int_equal(try_connect(f->path), 0);
        close(fd);
}

static void test_live_listener_is_refused(void **state) {
        TmpDir *f = *state;
        struct stat before, after;
        int fd = -1, other = -1;

        assert_int_equal(listen_unix(f->path, 0600, &fd), 0);
        assert_int_equal(lstat(f->path, &before), 0);

        assert_int_equal(listen_unix(f->path, 0666, &other), -EADDRINUSE);
        assert_int_equal(other, -1); /* untouched on failure */
        /* The live socket is left as it was and still answers. */
        assert_int_equal(lstat(f->path, &after), 0);
        assert_int_equal(before.st_ino, after.st_ino);
        assert_int_equal(file_mode(f->path), 0600);
        assert_int_equal(try_connect(f->path), 0);
        close(fd);
}

static void test_non_socket_is_refused(void **state) {
        TmpDir *f = *state;
        char buf[16] = "";
        FILE *file;
        int fd = -1;

        file = fopen(f->path, "we");
        assert_non_null(file);
        fputs("keep me", file);
        fclose(file);

        assert_int_equal(listen_unix(f->path, 0666, &fd), -EEXIST);
        assert_int_equal(fd, -1);
        file = fopen(f->path, "re");
        assert_non_null(file);
        assert_non_null(fgets(buf, sizeof(buf), file));
        fclose(file);
        assert_string_equal(buf, "keep me");

        /* A directory is not a socket either. */
        assert_int_equal(unlink(f->path), 0);
        assert_int_equal(mkdir(f->path, 0700), 0);
        assert_int_equal(listen_unix(f->path, 0666, &fd), -EEXIST);
        assert_int_equal(rmdir(f->path), 0);
}

static void test_path_length(void **state) {
        TmpDir *f = *state;
        char path[SUN_PATH_SIZE + 1];
        size_t dir_len = strlen(f->dir);
        int fd = -1;

        assert_int_equal(listen_unix("", 0666, &fd), -EINVAL);

        /* The longest path that fits (sun_path less its NUL) works; one byte more does not. */
        memset(path, 'a', sizeof(path));
        memcpy(path, f->dir, dir_len);
        path[dir_len] = '/';
        path[SUN_PATH_SIZE - 1] = '\0';
        assert_int_equal(strlen(path), SUN_PATH_SIZE - 1);
        assert_int_equal(listen_unix(path, 0600, &fd), 0);
        assert_int_equal(try_connect(path), 0);
        close(fd);
        assert_int_equal(unlink(path), 0);

        path[SUN_PATH_SIZE - 1] = 'a';
        path[SUN_PATH_SIZE] = '\0';
        fd = -1;
        assert_int_equal(listen_unix(path, 0600, &fd), -EINVAL);
        assert_int_equal(fd, -1);
}

static void test_missing_directory(void **state) {
        TmpDir *f = *state;
        char path[160];
        int fd = -1;

        snprintf(path, sizeof(path), "%s/nowhere/s.sock", f->dir);
        assert_int_equal(listen_unix(path, 0666, &fd), -ENOENT);
        assert_int_equal(fd, -1);
}

static void test_fd_nonblock(void **state) {
        int fds[2];

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
        assert_false(fcntl(fds[0], F_GETFL) & O_NONBLOCK);
        assert_int_equal(fd_nonblock(fds[0]), 0);
        assert_true(fcntl(fds[0], F_GETFL) & O_NONBLOCK);
        /* Already non-blocking: still fine. */
        assert_int_equal(fd_nonblock(fds[0]), 0);
        assert_true(fcntl(fds[0], F_GETFL) & O_NONBLOCK);
        close(fds[0]);
        close(fds[1]);
        assert_int_equal(fd_nonblock(fds[0]), -EBADF);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_listens, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_mode_is_applied_whatever_the_umask, tmpdir_setup,
                                                tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_stale_socket_is_replaced, tmpdir_setup,
                                                tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_live_listener_is_refused, tmpdir_setup,
                                                tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_non_socket_is_refused, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_path_length, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_missing_directory, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test(test_fd_nonblock),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
