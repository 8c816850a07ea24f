/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "launcher/exec-helper.h"
#include "shared/util.h"

#include "tmpdir.h"

static void make_file(const char *path, mode_t mode) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

        assert_true(fd >= 0);
        assert_int_equal(fchmod(fd, mode), 0);
        close(fd);
}

/* Where the launcher finds asynctask-exec: next to itself, wherever it was installed, else at the
 * path compiled in (LIBEXECDIR). */
static void test_exec_helper_find(void **state) {
        TmpDir *t = *state;
        char dir[256], program[512], helper[512];
        char *found;

        /* As make install and the packages lay them out, in any LIBEXECDIR. */
        (void) snprintf(dir, sizeof(dir), "%s/libexec", t->dir);
        assert_int_equal(mkdir(dir, 0755), 0);
        (void) snprintf(dir, sizeof(dir), "%s/libexec/asynctask", t->dir);
        assert_int_equal(mkdir(dir, 0755), 0);
        (void) snprintf(program, sizeof(program), "%s/asynctask-launcher", dir);
        (void) snprintf(helper, sizeof(helper), "%s/asynctask-exec", dir);
        make_file(program, 0755);

        /* Not there (a launcher copied on its own), or there but not executable: the compiled path. */
        found = exec_helper_find(program);
        assert_string_equal(found, LIBEXECDIR "/asynctask/asynctask-exec");
        free(found);
        make_file(helper, 0644);
        found = exec_helper_find(program);
        assert_string_equal(found, LIBEXECDIR "/asynctask/asynctask-exec");
        free(found);

        make_file(helper, 0755);
        found = exec_helper_find(program);
        assert_string_equal(found, helper);
        free(found);

        /* /proc/self/exe of a launcher whose file an upgrade replaced: still its directory. */
        (void) snprintf(program, sizeof(program), "%s/asynctask-launcher (deleted)", dir);
        found = exec_helper_find(program);
        assert_string_equal(found, helper);
        free(found);

        /* A directory named asynctask-exec is not the helper. */
        (void) snprintf(dir, sizeof(dir), "%s/other", t->dir);
        assert_int_equal(mkdir(dir, 0755), 0);
        (void) snprintf(helper, sizeof(helper), "%s/asynctask-exec", dir);
        assert_int_equal(mkdir(helper, 0755), 0);
        (void) snprintf(program, sizeof(program), "%s/asynctask-launcher", dir);
        found = exec_helper_find(program);
        assert_string_equal(found, LIBEXECDIR "/asynctask/asynctask-exec");
        free(found);

        /* A directory systemd would not keep as it is in ExecStart= (here ";"): the compiled path. */
        (void) snprintf(dir, sizeof(dir), "%s/a;b", t->dir);
        assert_int_equal(mkdir(dir, 0755), 0);
        (void) snprintf(helper, sizeof(helper), "%s/asynctask-exec", dir);
        make_file(helper, 0755);
        (void) snprintf(program, sizeof(program), "%s/asynctask-launcher", dir);
        found = exec_helper_find(program);
        assert_string_equal(found, LIBEXECDIR "/asynctask/asynctask-exec");
        free(found);

        /* No /proc, or not an absolute path. */
        found = exec_helper_find(NULL);
        assert_string_equal(found, LIBEXECDIR "/asynctask/asynctask-exec");
        free(found);
        found = exec_helper_find("asynctask-launcher");
        assert_string_equal(found, LIBEXECDIR "/asynctask/asynctask-exec");
        free(found);
}

/* In a build tree the helper is built next to the programs (and next to this test). */
static void test_exec_helper_find_build_tree(void **state) {
        _cleanup_free_ char *self = exec_helper_self();
        _cleanup_free_ char *found = NULL, *want = NULL;

        assert_non_null(self);
        assert_true(asprintf(&want, "%.*s/asynctask-exec", (int) (strrchr(self, '/') - self), self) > 0);
        found = exec_helper_find(self);
        assert_string_equal(found, want);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_exec_helper_find, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test(test_exec_helper_find_build_tree),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
