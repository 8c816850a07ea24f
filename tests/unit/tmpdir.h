/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A cmocka fixture for tests that need files: a fresh directory under /tmp for each test, removed
 * with everything in it afterwards. The test's state is a TmpDir.
 */

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct TmpDir {
        char dir[64];
        char path[128]; /* dir + "/file": a name for the test to use (nothing is created there) */
} TmpDir;

static int tmpdir_remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static int tmpdir_setup(void **state) {
        TmpDir *t = calloc(1, sizeof(*t));

        if (!t)
                return -1;
        (void) snprintf(t->dir, sizeof(t->dir), "/tmp/asynctask-test-XXXXXX");
        if (!mkdtemp(t->dir)) {
                free(t);
                return -1;
        }
        (void) snprintf(t->path, sizeof(t->path), "%s/file", t->dir);
        *state = t;
        return 0;
}

static int tmpdir_teardown(void **state) {
        TmpDir *t = *state;
        int r = nftw(t->dir, tmpdir_remove_entry, 16, FTW_DEPTH | FTW_PHYS);

        free(t);
        return r;
}
